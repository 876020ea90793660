// Reconnect delays: exponential backoff with FULL jitter
// (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/):
//   sleep = random(0, min(cap, base * 2^attempt))
// Full jitter spreads the reconnects of many clients after a shared outage instead of having
// them retry in lock-step. No retry loop here: the pool owns the loop and asks for each delay.

export interface BackoffOptions {
  baseMs?: number;
  capMs?: number;
  /** Uniform in [0, 1), like Math.random (injectable so tests are deterministic). */
  random?: () => number;
}

export const BACKOFF_DEFAULTS = { baseMs: 500, capMs: 30_000 } as const;

export class Backoff {
  readonly baseMs: number;
  readonly capMs: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? BACKOFF_DEFAULTS.baseMs;
    this.capMs = options.capMs ?? BACKOFF_DEFAULTS.capMs;
    this.random = options.random ?? Math.random;
    if (!Number.isFinite(this.baseMs) || this.baseMs <= 0) throw new RangeError(`baseMs must be a finite number > 0, got ${this.baseMs}`);
    if (!Number.isFinite(this.capMs) || this.capMs < this.baseMs) {
      throw new RangeError(`capMs must be a finite number >= baseMs (${this.baseMs}), got ${this.capMs}`);
    }
  }

  /** Upper bound of the delay before retry number `attempt` (0 = the first retry). */
  ceiling(attempt: number): number {
    if (!Number.isInteger(attempt) || attempt < 0) throw new RangeError(`attempt must be an integer >= 0, got ${attempt}`);
    // 2 ** 1100 is Infinity, and min() turns that into the cap: no overflow for long outages.
    return Math.min(this.capMs, this.baseMs * 2 ** attempt);
  }

  /** Whole milliseconds, uniform over [0, ceiling(attempt)]. */
  nextDelay(attempt: number): number {
    const ceiling = Math.floor(this.ceiling(attempt));
    const r = this.random();
    // A broken source must not produce negative or over-cap sleeps.
    const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1 - Number.EPSILON) : 0;
    return Math.floor(unit * (ceiling + 1));
  }
}
