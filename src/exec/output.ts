// Output delivery: byte cap over stdout+stderr and line-buffered redaction, before anything reaches the
// caller; and backpressure from where the output goes (writableFlow).

import { isUtf8 } from 'node:buffer';
import type { Writable } from 'node:stream';
import type { OutputLimits, RedactBlock, Redaction } from '../policy/types.js';
import type { OutputFlow } from './types.js';

export const REDACTED = '[REDACTED]';
/**
 * A line longer than this is redacted and delivered in pieces (a secret straddling the cut can escape);
 * inside a redaction block every piece stays redacted.
 */
export const MAX_LINE_BUFFER = 64 * 1024;

const NEWLINE = 0x0a;

export type Destination = 'stdout' | 'stderr';

export interface OutputSinks {
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
}

/** One byte stream from a child (a pipe), feeding one destination. Each has its own line buffer. */
export interface OutputSource {
  write(chunk: Buffer): void;
  /** Flush what is buffered (the stream ended). */
  end(): void;
}

export class OutputGate {
  bytesOut = 0;
  bytesErr = 0;
  truncated = false;
  private readonly patterns: RegExp[];
  private readonly blocks: RedactBlock[];

  constructor(
    private readonly limits: OutputLimits,
    private readonly sinks: OutputSinks,
    /** Called once, when the cap is hit: the runner stops reading and kills the command. */
    private readonly onLimit: () => void,
  ) {
    this.patterns = limits.redact.map(ownCopy);
    this.blocks = limits.redactBlocks.map((b) => ({ from: ownCopy(b.from), to: ownCopy(b.to) }));
  }

  source(dest: Destination): OutputSource {
    if (this.patterns.length === 0 && this.blocks.length === 0) {
      return { write: (chunk) => this.deliver(dest, chunk), end: () => {} };
    }
    return new LineRedactor(this.patterns, this.blocks, (buf) => this.deliver(dest, buf));
  }

  /** A whole message of ours (e.g. `remux: foo: command not found`), subject to cap and redaction like the rest. */
  message(dest: Destination, text: string): void {
    const src = this.source(dest);
    src.write(Buffer.from(text));
    src.end();
  }

  private deliver(dest: Destination, chunk: Buffer): void {
    if (this.truncated || chunk.length === 0) return;
    const max = this.limits.maxBytes;
    const room = max === null ? Infinity : max - this.bytesOut - this.bytesErr;
    const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
    if (part.length > 0) {
      if (dest === 'stdout') {
        this.bytesOut += part.length;
        this.sinks.stdout(part);
      } else {
        this.bytesErr += part.length;
        this.sinks.stderr(part);
      }
    }
    if (part.length < chunk.length) {
      this.truncated = true;
      this.onLimit();
    }
  }
}

/** `data` (all of it: a file's content) with a policy's redaction applied, as a command's output would have it. */
export function redactAll(redaction: Redaction, data: Buffer): Buffer {
  if (!redacts(redaction)) return data;
  const pieces: Buffer[] = [];
  const gate = new OutputGate({ maxBytes: null, ...redaction }, { stdout: (chunk) => pieces.push(chunk), stderr: () => {} }, () => {});
  const source = gate.source('stdout');
  source.write(data);
  source.end();
  return Buffer.concat(pieces);
}

/** The policy redacts what it hands over (a part of a file read is then read with its surroundings: readPart). */
export function redacts(redaction: Redaction): boolean {
  return redaction.redact.length + redaction.redactBlocks.length > 0;
}

/**
 * How much of a file around a part redaction must see to judge the part as in the whole file: a key block
 * reaching into the part begins at most this far before it (a PEM private key is a few KiB), a line
 * cut by the part's end ends at most this far after it.
 */
export const REDACTION_CONTEXT_BYTES = 64 << 10;
/** A ranged read of a file: `length` Infinity reads to its end. */
export type RangedRead<T extends { content: Buffer }> = (range: { offset: number; length: number }) => Promise<T>;

/**
 * Up to `length` bytes of a file at `offset` (Infinity: to its end) through `read`, handed over as a
 * read of the whole file under `redaction` hands them over: read with REDACTION_CONTEXT_BYTES either side
 * (redactedPart; longLinePart when the part's line began before that). Without redaction, or for an
 * offset the host refuses (negative, not a whole number), the part alone is read. `available`: how many
 * of the bytes asked for the file has; `take(n)`: the first n of them as handed over.
 */
export async function readPart<T extends { content: Buffer }>(
  redaction: Redaction,
  offset: number,
  length: number,
  read: RangedRead<T>,
): Promise<T & { available: number; take: (n: number) => Buffer }> {
  if (!redacts(redaction) || !Number.isSafeInteger(offset) || offset < 0) {
    const r = await read({ offset, length });
    return { ...r, available: r.content.length, take: (n) => r.content.subarray(0, n) };
  }
  const before = Math.min(offset, REDACTION_CONTEXT_BYTES);
  const r = await read({ offset: offset - before, length: before + length + REDACTION_CONTEXT_BYTES });
  const available = Math.max(0, Math.min(r.content.length - before, length));
  const newline = r.content.indexOf(NEWLINE);
  // Read from the file's start, or past its end, or with a line starting before the part.
  const lineSeen = before === offset || r.content.length <= before || (newline >= 0 && newline < before);
  const take = (n: number): Buffer => {
    const end = before + Math.min(n, available);
    return lineSeen ? redactedPart(redaction, r.content, before, end, before < offset) : longLinePart(redaction, r.content, before, end);
  };
  return { ...r, available, take };
}

/**
 * A part inside a line that began more than REDACTION_CONTEXT_BYTES before it. Redaction cuts a line
 * longer than MAX_LINE_BUFFER into pieces counted from the line's start, which is not in `read`: cut from
 * elsewhere, the pieces would fall where the caller's offset puts them (between `SEC` and `RET=…`). So
 * what is read up to the end of the part's last line is redacted twice, its pieces half a piece apart
 * (a match up to that long lies whole in a piece of one of them), and if either finds anything, the
 * whole part is handed over as one [REDACTED].
 */
function longLinePart(redaction: Redaction, read: Buffer, start: number, end: number): Buffer {
  const part = read.subarray(start, end);
  const lineEnd = end > start ? read.indexOf(NEWLINE, end - 1) : -1;
  const judged = read.subarray(0, lineEnd >= 0 ? lineEnd + 1 : read.length);
  const finds = (b: Buffer): boolean => !redactAll(redaction, b).equals(b);
  if (!finds(judged) && !finds(judged.subarray(Math.min(MAX_LINE_BUFFER / 2, judged.length)))) return part;
  return Buffer.from(part.at(-1) === NEWLINE ? `${REDACTED}\n` : REDACTED);
}

/**
 * Bytes [start, end) of `read` (a part of a file with what readPart read around it; `midFile`: read from
 * elsewhere than the file's start, so that what comes before its first newline is the end of a line) as
 * a read of the whole file hands them over. Redaction works on whole lines and follows blocks from their
 * first line, so a part starting inside a key block or cutting a secret's line in two would slip past
 * it: each line the redaction changes that the part touches is shown whole, as redacted (its newline
 * kept); the other lines as the part cuts them.
 */
function redactedPart(redaction: Redaction, read: Buffer, start: number, end: number, midFile: boolean): Buffer {
  // Left out, so that redaction sees whole lines only (readPart made sure one starts before the part).
  const newline = midFile ? read.indexOf(NEWLINE) : -1;
  const skip = newline >= 0 && newline < start ? newline + 1 : 0;
  return partAsShown(redaction, read.subarray(skip), start - skip, end - skip);
}

function partAsShown(redaction: Redaction, around: Buffer, start: number, end: number): Buffer {
  const redacted = redactAll(redaction, around);
  if (redacted.equals(around)) return around.subarray(start, end);
  const shown = lineStarts(redacted);
  const pieces: Buffer[] = [];
  // Redaction keeps every newline (a redacted line or block line keeps its own): line i is line i in both.
  lineStarts(around).forEach((from, i) => {
    const to = around.indexOf(NEWLINE, from) + 1 || around.length;
    if (to <= start || from >= end) return;
    const own = around.subarray(from, to);
    const asShown = redacted.subarray(shown[i], redacted.indexOf(NEWLINE, shown[i]) + 1 || redacted.length);
    pieces.push(own.equals(asShown) ? around.subarray(Math.max(from, start), Math.min(to, end)) : asShown);
  });
  return Buffer.concat(pieces);
}

function lineStarts(data: Buffer): number[] {
  const starts = [0];
  for (let at = data.indexOf(NEWLINE); at >= 0 && at + 1 < data.length; at = data.indexOf(NEWLINE, at + 1)) starts.push(at + 1);
  return starts;
}

/** Own copies: global for replace-all and lastIndex searches, never sticky, no lastIndex shared with the caller. */
function ownCopy(re: RegExp): RegExp {
  return new RegExp(re.source, re.flags.replace(/[gy]/g, '') + 'g');
}

/**
 * One source's redaction. Buffers up to a newline (or MAX_LINE_BUFFER bytes) so patterns see whole lines
 * even across chunk boundaries, and keeps the block state (which block is open) from line to line.
 * Every line of a block becomes one [REDACTED] (its newline kept); other lines get the patterns.
 */
class LineRedactor implements OutputSource {
  private pending: Buffer = Buffer.alloc(0);
  /** Index of the block whose `to` is awaited, or -1 outside blocks. */
  private openBlock = -1;
  /** The last piece emitted ended inside a line (a forced cut)… */
  private midLine = false;
  /** …and that line was replaced by [REDACTED] already: its further pieces are dropped. */
  private midLineRedacted = false;

  constructor(
    private readonly patterns: readonly RegExp[],
    private readonly blocks: readonly RedactBlock[],
    private readonly emit: (block: Buffer) => void,
  ) {}

  write(chunk: Buffer): void {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const lastNl = buf.lastIndexOf(NEWLINE);
    if (lastNl >= 0) {
      this.emit(this.redact(buf.subarray(0, lastNl + 1)));
      buf = buf.subarray(lastNl + 1);
    }
    while (buf.length >= MAX_LINE_BUFFER) {
      const cut = utf8Boundary(buf, MAX_LINE_BUFFER);
      this.emit(this.redact(buf.subarray(0, cut)));
      buf = buf.subarray(cut);
    }
    // Copy so the child's (possibly large) chunk is not kept alive by a small tail.
    this.pending = Buffer.from(buf);
  }

  end(): void {
    if (this.pending.length > 0) this.emit(this.redact(this.pending));
    this.pending = Buffer.alloc(0);
  }

  /** A piece of whole lines, possibly ending (and, after a forced cut, starting) inside a line. */
  private redact(piece: Buffer): Buffer {
    // Latin-1 keeps arbitrary bytes intact; valid UTF-8 is decoded so non-ASCII patterns match.
    const encoding = isUtf8(piece) ? 'utf8' : 'latin1';
    const text = piece.toString(encoding);
    const lines = text.split('\n');
    const last = lines.length - 1;
    const out = lines
      .map((line, i) => {
        // The piece ended with its newline: nothing follows, and the next piece starts a line.
        if (i === last && line === '' && last > 0) {
          this.midLine = false;
          return line;
        }
        const continued = i === 0 && this.midLine;
        const marked = continued && this.midLineRedacted;
        const inBlock = this.scanBlocks(line);
        let result: string;
        if (inBlock || marked) {
          result = (marked ? '' : REDACTED) + (line.endsWith('\r') ? '\r' : '');
        } else {
          result = this.patterns.reduce((acc, re) => acc.replace(re, REDACTED), line);
        }
        if (i === last) {
          this.midLine = true;
          this.midLineRedacted = inBlock || marked;
        }
        return result;
      })
      .join('\n');
    return out === text ? piece : Buffer.from(out, encoding);
  }

  /**
   * Follows the blocks through one line (or piece of one); true if any of it is inside a block. A `to`
   * closes only after its `from`: on a later line, or further along the same one.
   */
  private scanBlocks(line: string): boolean {
    if (this.blocks.length === 0) return false;
    let touched = this.openBlock >= 0;
    let pos = 0;
    for (;;) {
      const open = this.blocks[this.openBlock];
      if (open) {
        const end = matchEnd(open.to, line, pos);
        if (end === null) break;
        this.openBlock = -1;
        pos = end;
        continue;
      }
      let first = -1;
      let firstAt = Infinity;
      let firstEnd = 0;
      this.blocks.forEach((b, j) => {
        b.from.lastIndex = pos;
        const m = b.from.exec(line);
        if (m && m.index < firstAt) {
          first = j;
          firstAt = m.index;
          firstEnd = endOf(m);
        }
      });
      if (first < 0) break;
      this.openBlock = first;
      touched = true;
      pos = firstEnd;
    }
    return touched;
  }
}

/** Where the first match of `re` at or after `pos` ends (one past an empty match, so scanning moves on). */
function matchEnd(re: RegExp, line: string, pos: number): number | null {
  re.lastIndex = pos;
  const m = re.exec(line);
  return m ? endOf(m) : null;
}

function endOf(m: RegExpExecArray): number {
  return m.index + Math.max(m[0].length, 1);
}

/** Largest cut ≤ at that does not split a UTF-8 sequence (falls back to `at` for non-UTF-8 data). */
function utf8Boundary(buf: Buffer, at: number): number {
  for (let i = at; i > at - 4 && i > 0; i--) {
    const b = buf[i];
    if (b === undefined || (b & 0xc0) !== 0x80) return i;
  }
  return at;
}

/** More than this waiting in an output stream's buffer: its reader lags, stop reading the command. */
export const OUTPUT_BACKLOG_BYTES = 256 << 10;

/** Backpressure from writable streams: full while any holds more than the backlog; room once each drained or closed. */
export function writableFlow(streams: Writable[], backlog = OUTPUT_BACKLOG_BYTES): OutputFlow {
  const lagging = (): Writable[] => streams.filter((s) => !s.destroyed && s.writableLength > backlog);
  return {
    full: () => lagging().length > 0,
    onRoom(callback) {
      const waiting = lagging();
      if (waiting.length === 0) return void queueMicrotask(callback);
      let left = waiting.length;
      for (const stream of waiting) {
        const done = (): void => {
          stream.off('drain', done);
          stream.off('close', done);
          if (--left === 0) callback();
        };
        stream.on('drain', done);
        stream.on('close', done);
      }
    },
  };
}
