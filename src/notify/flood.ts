// A flood limit on the messages one process sends. Code inside an agent session can raise hook calls
// and prompts as fast as it likes, and each would page a person: every sender (an approval's principal,
// `agent:ID` for an agent session) has a token bucket, and all senders share one more. A message beyond
// them is held, never sent late; once the buckets refill, one message per sender says how many were
// held. What they were about stays in the approvals store, answerable in the console and the CLI.
import type { Delivery, Notification } from './channels.js';

export interface FloodLimits {
  /** Messages one sender may send at once… */
  burst: number;
  /** …and after that, per minute. */
  per_minute: number;
  /** The same for all senders together. */
  overall_burst: number;
  overall_per_minute: number;
}

class Bucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly capacity: number,
    private readonly perMinute: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.at = now;
  }

  /** Milliseconds until a token is there (0: now). */
  waitMs(now: number): number {
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.at) * this.perMinute) / 60_000);
    this.at = now;
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 60_000) / this.perMinute);
  }

  take(): void {
    this.tokens -= 1;
  }
}

export class FloodGate {
  private readonly senders = new Map<string, Bucket>();
  private readonly overall: Bucket;
  /** Messages held per sender since its last message went out. */
  private readonly held = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly limits: FloodLimits,
    private readonly send: (n: Notification) => Promise<Delivery[]>,
    /** The one message that says `count` messages of `sender` were held. */
    private readonly summary: (sender: string, count: number) => Notification,
    private readonly now: () => number = Date.now,
  ) {
    this.overall = new Bucket(limits.overall_burst, limits.overall_per_minute, now());
  }

  /** Sends `n` for `sender` within the limits; null: held (counted for the summary). */
  async pass(sender: string, n: Notification): Promise<Delivery[] | null> {
    if (!this.room(sender)) {
      this.held.set(sender, (this.held.get(sender) ?? 0) + 1);
      this.schedule();
      return null;
    }
    const deliveries = this.send(n);
    // Held ones are told first, by the same token, so the next message is not left to suggest it was all.
    this.flush(sender);
    return deliveries;
  }

  /** Takes a token from the sender's bucket and the shared one when both have one. */
  private room(sender: string): boolean {
    const now = this.now();
    let bucket = this.senders.get(sender);
    if (bucket === undefined) this.senders.set(sender, (bucket = new Bucket(this.limits.burst, this.limits.per_minute, now)));
    if (bucket.waitMs(now) > 0 || this.overall.waitMs(now) > 0) return false;
    bucket.take();
    this.overall.take();
    return true;
  }

  private flush(sender: string): void {
    const count = this.held.get(sender);
    if (count === undefined) return;
    this.held.delete(sender);
    void this.send(this.summary(sender, count));
  }

  /** Once a bucket can take one more, each sender with held messages gets its summary (if there is room). */
  private schedule(): void {
    if (this.timer !== null) return;
    const now = this.now();
    const waits = [...this.held.keys()].map((s) => Math.max(this.senders.get(s)?.waitMs(now) ?? 0, this.overall.waitMs(now)));
    this.timer = setTimeout(
      () => {
        this.timer = null;
        for (const sender of [...this.held.keys()]) if (this.room(sender)) this.flush(sender);
        if (this.held.size > 0) this.schedule();
      },
      Math.max(10, Math.min(...waits)),
    );
    // A CLI that asked once exits without waiting for a summary; the daemon and supervisors stay to send it.
    this.timer.unref();
  }

  /** Stops the summary timer (the process is closing what it opened). */
  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
