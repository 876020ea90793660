// Output delivery: byte cap over stdout+stderr and line-buffered redaction, before anything reaches the caller.

import { isUtf8 } from 'node:buffer';
import type { OutputLimits } from '../policy/types.js';

export const REDACTED = '[REDACTED]';
/** A line longer than this is redacted and delivered in pieces (a secret straddling the cut can escape). */
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

  constructor(
    private readonly limits: OutputLimits,
    private readonly sinks: OutputSinks,
    /** Called once, when the cap is hit: the runner stops reading and kills the command. */
    private readonly onLimit: () => void,
  ) {
    // Own copies: global for replace-all, never sticky, and no lastIndex shared with the caller.
    this.patterns = limits.redact.map(
      (r) => new RegExp(r.source, r.flags.replace(/[gy]/g, '') + 'g'),
    );
  }

  source(dest: Destination): OutputSource {
    if (this.patterns.length === 0) {
      return { write: (chunk) => this.deliver(dest, chunk), end: () => {} };
    }
    return new LineRedactor((buf) => this.deliver(dest, this.redact(buf)));
  }

  /** A whole message of ours (e.g. `remux: foo: command not found`), subject to cap and redaction like the rest. */
  message(dest: Destination, text: string): void {
    const src = this.source(dest);
    src.write(Buffer.from(text));
    src.end();
  }

  private redact(block: Buffer): Buffer {
    // Latin-1 keeps arbitrary bytes intact; valid UTF-8 is decoded so non-ASCII patterns match.
    const encoding = isUtf8(block) ? 'utf8' : 'latin1';
    const text = block.toString(encoding);
    const out = text
      .split('\n')
      .map((line) => this.patterns.reduce((acc, re) => acc.replace(re, REDACTED), line))
      .join('\n');
    return out === text ? block : Buffer.from(out, encoding);
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

/** Buffers up to a newline (or MAX_LINE_BUFFER bytes) so patterns see whole lines even across chunk boundaries. */
class LineRedactor implements OutputSource {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly emit: (block: Buffer) => void) {}

  write(chunk: Buffer): void {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const lastNl = buf.lastIndexOf(NEWLINE);
    if (lastNl >= 0) {
      this.emit(buf.subarray(0, lastNl + 1));
      buf = buf.subarray(lastNl + 1);
    }
    while (buf.length >= MAX_LINE_BUFFER) {
      const cut = utf8Boundary(buf, MAX_LINE_BUFFER);
      this.emit(buf.subarray(0, cut));
      buf = buf.subarray(cut);
    }
    // Copy so the child's (possibly large) chunk is not kept alive by a small tail.
    this.pending = Buffer.from(buf);
  }

  end(): void {
    if (this.pending.length > 0) this.emit(this.pending);
    this.pending = Buffer.alloc(0);
  }
}

/** Largest cut ≤ at that does not split a UTF-8 sequence (falls back to `at` for non-UTF-8 data). */
function utf8Boundary(buf: Buffer, at: number): number {
  for (let i = at; i > at - 4 && i > 0; i--) {
    const b = buf[i];
    if (b === undefined || (b & 0xc0) !== 0x80) return i;
  }
  return at;
}
