// Rendering shared by every command: tables for people, JSON for scripts, errors that say what to do next.
export { UsageError } from '../core/errors.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** One compact JSON document per line (NDJSON), for streams and fan-outs. */
export function printJsonLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export type Cell = string | number | null | undefined;

/** A time for a table column headed "(UTC)": `2026-12-05 09:10:47`, to the minute, second or millisecond. */
export function utcCell(time: string | number, to?: 'minute' | 'second' | 'ms'): string;
export function utcCell(time: string | number | null, to?: 'minute' | 'second' | 'ms'): string | null;
export function utcCell(time: string | number | null, to: 'minute' | 'second' | 'ms' = 'second'): string | null {
  if (time === null) return null;
  const iso = typeof time === 'number' ? new Date(time).toISOString() : time;
  return iso.slice(0, { minute: 16, second: 19, ms: 23 }[to]).replace('T', ' ');
}

/** A plain aligned table; cells are stringified, nothing is truncated. */
export function printTable(headers: string[], rows: Cell[][]): void {
  process.stdout.write(formatTable(headers, rows));
}

/** The text of printTable, for output that goes elsewhere than this process's stdout. */
export function formatTable(headers: string[], rows: Cell[][]): string {
  const cells = rows.map((row) => row.map((c) => (c === null || c === undefined ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [headers, ...cells].map((r) => `${line(r)}\n`).join('');
}

/** A command's Examples section, for `.addHelpText('after', examples(…))`. */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  ${line}`).join('\n')}`;
}
