// One event line of an asciicast v2 recording, read the same way by `remux session play` and the
// console's player (no Node imports: the console bundles it).

/** [seconds since the start, kind ("o" output, "r" resize, "m" marker), data]. */
export type CastEvent = [number, string, string];

/** The event a line holds; null for a line that is not one (the last line of a recording cut short when the daemon was killed, or one still being written). */
export function parseCastEvent(line: string): CastEvent | null {
  if (line === '') return null;
  try {
    const e = JSON.parse(line) as unknown;
    return Array.isArray(e) && typeof e[0] === 'number' && typeof e[1] === 'string' && typeof e[2] === 'string' ? [e[0], e[1], e[2]] : null;
  } catch {
    return null;
  }
}
