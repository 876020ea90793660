// Per-principal token buckets: each key holds up to `burst` tokens, refilled continuously at
// `ratePerSec`; a request takes one token (or n) or is refused with the exact wait.

export interface RateLimitOptions {
  ratePerSec: number;
  burst: number;
  now?: () => number;
  /**
   * Most buckets kept at once. Past it the least recently used bucket is dropped, which hands
   * that key a fresh burst: bounded memory under a flood of distinct keys matters more.
   */
  maxKeys?: number;
}

export type TakeResult = { ok: true; remaining: number } | { ok: false; retryInMs: number };

export interface BucketSnapshot {
  key: string;
  tokens: number;
  ratePerSec: number;
  burst: number;
}

export const DEFAULT_MAX_KEYS = 10_000;

// Float refills (e.g. 0.1 token/ms) land a hair below whole numbers; this absorbs that so a
// request made exactly at the advertised retry time passes.
const EPSILON = 1e-9;

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export class RateLimiter {
  readonly ratePerSec: number;
  readonly burst: number;
  readonly maxKeys: number;
  private readonly now: () => number;
  /** Insertion order = least recently used first: every take re-inserts its key. */
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: RateLimitOptions) {
    this.ratePerSec = options.ratePerSec;
    this.burst = options.burst;
    this.maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
    this.now = options.now ?? Date.now;
    if (!Number.isFinite(this.ratePerSec) || this.ratePerSec <= 0) {
      throw new RangeError(`ratePerSec must be a finite number > 0, got ${this.ratePerSec}`);
    }
    if (!Number.isFinite(this.burst) || this.burst < 1) throw new RangeError(`burst must be a finite number >= 1, got ${this.burst}`);
    if (!Number.isInteger(this.maxKeys) || this.maxKeys < 1) throw new RangeError(`maxKeys must be an integer >= 1, got ${this.maxKeys}`);
  }

  take(key: string, n = 1): TakeResult {
    if (!Number.isFinite(n) || n <= 0 || n > this.burst) {
      throw new RangeError(`cannot take ${n} tokens from a bucket of burst ${this.burst}`);
    }
    const now = this.now();
    this.evictIdle(now);
    const tokens = this.tokensAt(this.buckets.get(key), now);
    this.buckets.delete(key);
    if (tokens + EPSILON >= n) {
      const left = Math.max(0, tokens - n);
      this.store(key, { tokens: left, updatedAt: now });
      return { ok: true, remaining: Math.floor(left + EPSILON) };
    }
    this.store(key, { tokens, updatedAt: now });
    return { ok: false, retryInMs: this.retryInMs(tokens, n) };
  }

  /** Milliseconds until `key` has a token (0: it has one now); takes none. */
  waitMs(key: string): number {
    const tokens = this.tokensAt(this.buckets.get(key), this.now());
    return tokens + EPSILON >= 1 ? 0 : this.retryInMs(tokens, 1);
  }

  /** Current tokens of every key still refilling; full buckets are dropped, not listed. */
  snapshot(): BucketSnapshot[] {
    const now = this.now();
    const out: BucketSnapshot[] = [];
    for (const [key, bucket] of this.buckets) {
      const tokens = this.tokensAt(bucket, now);
      if (this.isFull(tokens)) {
        this.buckets.delete(key);
        continue;
      }
      out.push({ key, tokens: Math.floor((tokens + EPSILON) * 1000) / 1000, ratePerSec: this.ratePerSec, burst: this.burst });
    }
    return out;
  }

  /** Keys currently tracked. */
  get size(): number {
    return this.buckets.size;
  }

  private retryInMs(tokens: number, n: number): number {
    return Math.max(1, Math.ceil(((n - tokens) * 1000) / this.ratePerSec - EPSILON));
  }

  private tokensAt(bucket: Bucket | undefined, now: number): number {
    if (!bucket) return this.burst;
    // A clock that steps backwards refills nothing rather than draining the bucket.
    const elapsed = Math.max(0, now - bucket.updatedAt);
    return Math.min(this.burst, bucket.tokens + (elapsed * this.ratePerSec) / 1000);
  }

  private store(key: string, bucket: Bucket): void {
    this.buckets.set(key, bucket);
    if (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next();
      if (!oldest.done) this.buckets.delete(oldest.value);
    }
  }

  private isFull(tokens: number): boolean {
    return tokens + EPSILON >= this.burst;
  }

  /**
   * A bucket that has refilled to full is the same as no bucket: drop such buckets, least
   * recently used first, stopping at the first one still refilling (amortized O(1) per take).
   */
  private evictIdle(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (!this.isFull(this.tokensAt(bucket, now))) return;
      this.buckets.delete(key);
    }
  }
}

/**
 * Takes a token, waiting for it while the wait is short: a loop of commands run one after another is
 * slowed to the rate instead of refused. Refused (with the wait) when the next token is further away
 * than `maxWaitMs` from the first try.
 */
export async function takeOrWait(limiter: RateLimiter, key: string, maxWaitMs: number): Promise<TakeResult> {
  const until = performance.now() + maxWaitMs;
  for (;;) {
    const taken = limiter.take(key);
    if (taken.ok || performance.now() + taken.retryInMs > until) return taken;
    await new Promise((resolve) => setTimeout(resolve, taken.retryInMs));
  }
}

export function rateLimitedMessage(retryInMs: number): string {
  return `rate limited, retry in ${Math.max(0, Math.ceil(retryInMs))} ms`;
}
