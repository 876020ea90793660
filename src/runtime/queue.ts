// A stream of chunks then one result, filled by a producer, drained by whoever iterates (or nobody:
// the chunks wait, the result settles all the same). Chunks may carry a size: the queue counts the
// bytes waiting, tells the producer when there is room (room()) and says what the consumer took
// (onTaken), which is how a slow consumer holds back a call's producer on the host (link.ts, stage2.py).

export interface CallStream<C = unknown, R = unknown> extends AsyncIterable<C> {
  readonly result: Promise<R>;
}

export interface QueueOptions {
  /** The consumer took a chunk of this size. */
  onTaken?(size: number): void;
  /** The consumer stopped iterating (a break, a throw, return()) before the end: nobody wants the rest. */
  onAbandon?(): void;
}

export class ChunkQueue<C, R> implements CallStream<C, R> {
  readonly result: Promise<R>;
  private readonly chunks: Array<{ chunk: C; size: number }> = [];
  private bytes = 0;
  private wake: (() => void) | null = null;
  private roomWaiters: Array<{ limit: number; resolve(): void }> = [];
  private over = false;
  /** The consumer stopped iterating: nobody will take what waits, so nobody waits for room. */
  private abandoned = false;
  private settleResult!: (err: Error | null, value?: R) => void;

  constructor(private readonly opts: QueueOptions = {}) {
    this.result = new Promise<R>((resolve, reject) => {
      this.settleResult = (err, value) => (err ? reject(err) : resolve(value as R));
    });
    // A caller that only iterates still sees the failure (thrown by the iterator): never unhandled.
    this.result.catch(() => undefined);
  }

  get settled(): boolean {
    return this.over;
  }

  /** Bytes of chunks pushed and not yet taken. */
  get bufferedBytes(): number {
    return this.bytes;
  }

  push(chunk: C, size = 0): void {
    if (this.over) return;
    this.chunks.push({ chunk, size });
    this.bytes += size;
    this.wake?.();
  }

  /** Resolves once at most `limit` bytes wait, or the consumer is gone. */
  room(limit: number): Promise<void> {
    if (this.bytes <= limit || this.abandoned) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push({ limit, resolve }));
  }

  /** Settles once; later calls do nothing. */
  settle(err: Error | null, value?: R): void {
    if (this.over) return;
    this.over = true;
    this.settleResult(err, value);
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<C> {
    try {
      for (;;) {
        const next = this.chunks.shift();
        if (next !== undefined) {
          this.taken(next.size);
          yield next.chunk;
          continue;
        }
        if (this.over) break;
        await new Promise<void>((wake) => (this.wake = wake));
        this.wake = null;
      }
    } finally {
      this.abandoned = true;
      this.freeRoom();
      if (!this.over) this.opts.onAbandon?.();
    }
    // Every chunk delivered: the call's failure, if it failed, is thrown here.
    await this.result;
  }

  private taken(size: number): void {
    this.bytes -= size;
    this.opts.onTaken?.(size);
    this.freeRoom();
  }

  private freeRoom(): void {
    if (this.roomWaiters.length === 0) return;
    const waiting = this.roomWaiters;
    this.roomWaiters = waiting.filter((w) => !(this.abandoned || this.bytes <= w.limit));
    for (const w of waiting) if (this.abandoned || this.bytes <= w.limit) w.resolve();
  }
}
