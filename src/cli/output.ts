// Rendering shared by every command: tables for people, JSON for scripts, errors that say what to do next.
import { showInvisible } from '../command/invisible.js';
import { UsageError } from '../core/errors.js';

export { UsageError };

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

/**
 * The text of printTable, for output that goes elsewhere than this process's stdout. A row shorter than
 * the headers ends in a note (a host's error, sudo's words) that runs on to the end of its line and
 * widens no column: one long error would otherwise stretch every row of the table.
 */
export function formatTable(headers: string[], rows: Cell[][]): string {
  const cells = rows.map((row) => row.map(cellText));
  const sized = (r: string[], i: number): number => (r.length < headers.length && i === r.length - 1 ? 0 : (r[i] ?? '').length);
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => sized(r, i))));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [headers, ...cells].map((r) => `${line(r)}\n`).join('');
}

/** A table cell as text: a missing value is `-`; what could forge a line or drive the terminal is escaped (visible). */
export function cellText(c: Cell): string {
  return c === null || c === undefined ? '-' : visible(String(c));
}

/**
 * Text others wrote (paths, commands, an MCP client's name), made safe to print in a listing: control
 * characters (a newline would start a forged row, ESC drives the reader's terminal) become escapes such
 * as `\n`, `\x1b`, a backslash doubled so that an escape cannot be faked; the bidirectional controls
 * and zero-width characters that change what a line shows are named, `<U+202E>` (showInvisible).
 */
export function visible(text: string): string {
  return showInvisible(text.replace(UNSAFE, (ch) => ESCAPES[ch] ?? `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

const UNSAFE = /[\\\u0000-\u001f\u007f-\u009f]/g;

const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A command's Examples section, for `.addHelpText('after', examples(…))`. */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  ${line}`).join('\n')}`;
}

/** A listing's --limit: a whole number, 0 for all; `fallback` when none is given. */
export function limitOption(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  // Number() would take "" (an unset variable) for 0, all, and "1e3" for a thousand.
  if (!/^\d+$/.test(text)) throw new UsageError(`--limit must be a whole number, 0 or more (0 lists all), got "${text}"`);
  return Number(text);
}
