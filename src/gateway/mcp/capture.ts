// A tool call's output, kept in memory up to a per-call cap: past it the command is stopped (as the
// policy's write_stdout limit stops it) and the text ends with a marker a model cannot miss.

/** Bytes of stdout and of stderr an MCP tool result carries at most: a model's context is not a log file. */
export const MCP_OUTPUT_CAP = 64 << 10;

export class CappedOutput {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  /** Bytes the command wrote past the cap (0 unless capped). */
  dropped = 0;

  constructor(
    private readonly cap: number,
    private readonly onFull: () => void,
  ) {}

  push(chunk: Buffer): void {
    const room = this.cap - this.kept;
    if (chunk.length > room) {
      if (room > 0) this.chunks.push(chunk.subarray(0, room));
      this.kept += Math.max(room, 0);
      const first = this.dropped === 0;
      this.dropped += chunk.length - Math.max(room, 0);
      if (first) this.onFull();
      return;
    }
    this.chunks.push(chunk);
    this.kept += chunk.length;
  }

  get capped(): boolean {
    return this.dropped > 0;
  }

  /** The kept text; a multi-byte character cut at the cap becomes U+FFFD, never an exception. */
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

export function truncationMarker(stream: 'stdout' | 'stderr', cap: number): string {
  return `\n[remux: ${stream} truncated: the MCP per-call cap of ${cap} bytes was reached and the command was stopped; narrow the command (head, grep, a smaller range)]`;
}

export const POLICY_LIMIT_MARKER = '\n[remux: output truncated: the policy\'s write_stdout limit was reached and the command was stopped]';

/**
 * The latest lines of a tmux capture that fit `cap` bytes (a screen is read for its end: where an agent
 * is now), after a line saying how many earlier ones were left out. Of a last line longer than the cap,
 * its end.
 */
export function latestLines(text: string, cap: number): { text: string; truncated: boolean } {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= cap) return { text, truncated: false };
  const count = (t: string): number => (t.endsWith('\n') ? t.slice(0, -1) : t).split('\n').length;
  // Room for the line that says so, whatever its numbers.
  let from = bytes.length - (cap - 200);
  const newline = bytes.indexOf(0x0a, from - 1);
  const whole = newline !== -1 && newline < bytes.length - 1;
  if (whole) from = newline + 1;
  else while ((bytes[from]! & 0xc0) === 0x80) from++; // not inside a character
  const kept = bytes.subarray(from).toString('utf8');
  const lines = count(text);
  const leftOut = lines - count(kept) + (whole ? 0 : 1);
  const what = whole ? `the first ${leftOut} of ${lines} lines` : `${leftOut > 1 ? `the first ${leftOut - 1} of ${lines} lines and ` : ''}the start of the last line`;
  return { text: `[remux: ${what} left out: a capture returns its latest ${cap} bytes; ask for fewer lines]\n${kept}`, truncated: true };
}
