// The diff an edit hands the caller (Method.content 'diff'), redacted as reads of the file before and
// after would be. The host sends every line of both as context (common.py _diff): redaction works line
// by line and follows blocks (a private key) from their first line, and a diff with only 3 lines of
// context, or lines behind a -/+ mark, would show a block's inner lines or slip a ^-anchored pattern.
// Each side is redacted whole here, then 3 lines of context are kept around each change. Where the host
// left the diff out (a file over 1 MiB, a change too costly to compare), its one-line note comes instead.
import { redactAll } from '../exec/output.js';
import type { Redaction } from '../policy/types.js';

/** What a diff shows at most; the rest is cut with a note. */
export const MAX_DIFF = 256 << 10;

/** Context lines kept on each side of a change, as diff -u. */
const CONTEXT = 3;

interface DiffLine {
  /** ' ' in both texts, '-' only in the old one, '+' only in the new one. */
  tag: string;
  text: string;
  /** The line's text ends with a newline (only a text's last line may not). */
  newline: boolean;
}

/** The full-context diff `full` as diff -u shows it, each side with the policy's redaction. */
export function shownDiff(full: string, redaction: Redaction): string {
  if (full === '') return '';
  // The host's note in place of a diff holds nothing of the file.
  if (!full.startsWith('--- ')) return full;
  // --- old, +++ new, one @@ hunk of every line, then the lines; anything else is the host's note (a cut).
  const [from, to, , ...rows] = full.endsWith('\n') ? full.slice(0, -1).split('\n') : full.split('\n');
  const lines: DiffLine[] = [];
  const notes: string[] = [];
  for (const row of rows) {
    const last = lines.at(-1);
    if (row.startsWith('\\') && last) last.newline = false;
    else if (row !== '' && ' -+'.includes(row[0] as string)) lines.push({ tag: row[0] as string, text: row.slice(1), newline: true });
    else notes.push(row);
  }
  const before = redactedSide(lines, ' -', redaction);
  const after = redactedSide(lines, ' +', redaction);
  // A line in both shows as either side redacted it, if one did.
  const shown = lines.map((l) => (l.tag === '-' ? before.get(l) : l.tag === '+' ? after.get(l) : before.get(l) !== l.text ? before.get(l) : after.get(l)) as string);
  // Lines of the old and the new text before each line of the diff, for the hunks' ranges.
  const olds = [0];
  const news = [0];
  lines.forEach((l, i) => {
    olds.push((olds[i] as number) + (l.tag === '+' ? 0 : 1));
    news.push((news[i] as number) + (l.tag === '-' ? 0 : 1));
  });
  const span = (at: number[], start: number, end: number): string => range(at[start] as number, (at[end] as number) - (at[start] as number));
  let out = `${from ?? ''}\n${to ?? ''}\n`;
  for (const [start, end] of hunks(lines)) {
    out += `@@ -${span(olds, start, end)} +${span(news, start, end)} @@\n`;
    for (let i = start; i < end; i++) {
      const l = lines[i] as DiffLine;
      out += `${l.tag}${shown[i] as string}\n${l.newline ? '' : '\\ No newline at end of file\n'}`;
    }
  }
  if (out.length > MAX_DIFF) out = `${out.slice(0, MAX_DIFF)}\n… (diff cut at ${MAX_DIFF} characters)\n`;
  return out + notes.map((n) => `${n}\n`).join('');
}

/** Each line of one side (those tagged with `tags`) as redacting that side's whole text gives it. */
function redactedSide(lines: readonly DiffLine[], tags: string, redaction: Redaction): Map<DiffLine, string> {
  const side = lines.filter((l) => tags.includes(l.tag));
  // Redaction keeps every newline (a line becomes a line), so the i-th line out is the i-th line in.
  const out = redactAll(redaction, Buffer.from(side.map((l) => l.text + (l.newline ? '\n' : '')).join(''))).toString().split('\n');
  return new Map(side.map((l, i) => [l, out[i] as string]));
}

/** [start, end) of each hunk: the changes, with CONTEXT lines around them; hunks that would touch merge. */
function hunks(lines: readonly DiffLine[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  lines.forEach((l, i) => {
    if (l.tag === ' ') return;
    const start = Math.max(0, i - CONTEXT);
    const end = Math.min(lines.length, i + 1 + CONTEXT);
    const open = out.at(-1);
    if (open && start <= open[1]) open[1] = end;
    else out.push([start, end]);
  });
  return out;
}

/** A hunk's range as diff -u writes it: the first line (1-based) and the count, ",1" left out, an empty one after the line before. */
function range(before: number, count: number): string {
  if (count === 1) return String(before + 1);
  return `${count === 0 ? before : before + 1},${count}`;
}
