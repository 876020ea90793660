// A caller's stdin carried to a command somewhere else (CLI client -> daemon, gateway -> agent) in
// chunks, under credit: the receiving side grants bytes only when whoever reads its stream wants more
// (a Readable's _read), and the sending side sends no more than it was granted. So the command's
// reading pace reaches the original source, both sides hold at most one window, and nothing is read
// from the source for a command that never reads its stdin.
import { Readable } from 'node:stream';

/** Bytes the receiving side lets be in flight unread. */
export const INPUT_WINDOW_BYTES = 256 << 10;
/** Largest chunk sent at once. */
export const INPUT_CHUNK_BYTES = 64 << 10;

/**
 * The receiving side: a Readable fed with received chunks. `grant(bytes)` is called when its reader wants
 * more; a peer that sends past its credit is a protocol error (`overrun`), the stream is destroyed.
 */
export class CreditedInput extends Readable {
  /** Granted and not yet received. */
  private granted = 0;
  private ended = false;

  constructor(
    private readonly grant: (bytes: number) => void,
    private readonly window = INPUT_WINDOW_BYTES,
  ) {
    super({ highWaterMark: INPUT_CHUNK_BYTES });
  }

  override _read(): void {
    if (this.ended) return;
    const room = this.window - this.granted;
    // Small grants are batched: one frame per chunk of room at most.
    if (room < Math.min(INPUT_CHUNK_BYTES, this.window) && this.granted > 0) return;
    this.granted += room;
    this.grant(room);
  }

  /** A chunk arrived; returns an error message (and destroys the stream) when it was more than granted. */
  received(chunk: Buffer): string | null {
    if (this.ended || this.destroyed) return null;
    if (chunk.length > this.granted) {
      const message = `standard input sent past its credit (${chunk.length} bytes with ${this.granted} granted)`;
      this.destroy(new Error(message));
      return message;
    }
    this.granted -= chunk.length;
    this.push(chunk);
    return null;
  }

  /** End of input. */
  finish(): void {
    if (this.ended || this.destroyed) return;
    this.ended = true;
    this.push(null);
  }
}

/**
 * The sending side: reads `source` only while it holds credit, cutting chunks to what it holds (the rest
 * waits). Sends `end` once at the source's end. stop() leaves the source paused and unread.
 */
export class CreditedSender {
  private credit = 0;
  private held: Buffer | null = null;
  private sourceEnded = false;
  private stopped = false;
  private readonly onData = (chunk: Buffer | Uint8Array | string): void => {
    // A string as UTF-8; a Uint8Array (an object-mode stream's) as a Buffer over the same bytes.
    this.held = Buffer.isBuffer(chunk) ? chunk : typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.source.pause();
    this.flush();
  };
  private readonly onEnd = (): void => {
    this.sourceEnded = true;
    this.flush();
  };

  constructor(
    private readonly source: NodeJS.ReadableStream,
    private readonly sink: { data(chunk: Buffer): void; end(): void },
  ) {
    source.pause();
    source.on('data', this.onData);
    source.once('end', this.onEnd);
    // A read error ends the input as the command sees it; the source's owner reports the error.
    source.once('error', this.onEnd);
    // Already at its end (an empty file, a stream someone else finished): 'end' will not come again.
    if ((source as Partial<Readable>).readableEnded === true) this.onEnd();
  }

  /** The receiver wants `bytes` more. */
  grant(bytes: number): void {
    if (this.stopped) return;
    this.credit += bytes;
    this.flush();
  }

  /** The command ended (or was cancelled): nothing more is read or sent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.source.removeListener('data', this.onData);
    this.source.removeListener('end', this.onEnd);
    this.source.removeListener('error', this.onEnd);
    this.source.pause();
  }

  private flush(): void {
    if (this.stopped) return;
    while (this.held !== null && this.credit > 0) {
      const n = Math.min(this.held.length, this.credit, INPUT_CHUNK_BYTES);
      this.sink.data(this.held.subarray(0, n));
      this.credit -= n;
      this.held = n === this.held.length ? null : this.held.subarray(n);
    }
    if (this.held !== null) return;
    if (this.sourceEnded) {
      this.sink.end();
      this.stop();
      return;
    }
    if (this.credit > 0) this.source.resume();
  }
}
