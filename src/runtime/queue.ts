// A stream of chunks then one result, filled by a producer, drained by whoever iterates (or nobody:
// the chunks wait, the result settles all the same).

export interface CallStream<C = unknown, R = unknown> extends AsyncIterable<C> {
  readonly result: Promise<R>;
}

export class ChunkQueue<C, R> implements CallStream<C, R> {
  readonly result: Promise<R>;
  private readonly chunks: C[] = [];
  private wake: (() => void) | null = null;
  private over = false;
  private settleResult!: (err: Error | null, value?: R) => void;

  constructor() {
    this.result = new Promise<R>((resolve, reject) => {
      this.settleResult = (err, value) => (err ? reject(err) : resolve(value as R));
    });
    // A caller that only iterates still sees the failure (thrown by the iterator): never unhandled.
    this.result.catch(() => undefined);
  }

  get settled(): boolean {
    return this.over;
  }

  push(chunk: C): void {
    if (this.over) return;
    this.chunks.push(chunk);
    this.wake?.();
  }

  /** Settles once; later calls do nothing. */
  settle(err: Error | null, value?: R): void {
    if (this.over) return;
    this.over = true;
    this.settleResult(err, value);
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<C> {
    for (;;) {
      const next = this.chunks.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.over) break;
      await new Promise<void>((wake) => (this.wake = wake));
      this.wake = null;
    }
    // Every chunk delivered: the call's failure, if it failed, is thrown here.
    await this.result;
  }
}
