// Per-host circuit breaker: after N consecutive failures the host fails fast with a reason
// instead of making every fan-out wait for a connect timeout; after a cool-down a limited
// number of probes decide whether it is back.
//
//   closed --N consecutive failures--> open --cool-down elapsed--> half-open
//   half-open --probe succeeds--> closed;  half-open --probe fails--> open (fresh cool-down)

export type BreakerStateName = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive failures that open the circuit. */
  failureThreshold?: number;
  /** Time the circuit stays open before a probe is allowed. */
  cooldownMs?: number;
  /** Callers let through at once while half-open. */
  halfOpenMaxProbes?: number;
  now?: () => number;
}

export interface BreakerState {
  state: BreakerStateName;
  consecutiveFailures: number;
  lastError: string | null;
  /** When the circuit last opened (epoch ms), or null if it never has. */
  openedAt: number | null;
  /** When a probe is allowed (epoch ms); null unless open. */
  nextProbeAt: number | null;
}

export type BreakerDecision = { ok: true } | { ok: false; reason: string; retryInMs: number };

export const BREAKER_DEFAULTS = { failureThreshold: 3, cooldownMs: 10_000, halfOpenMaxProbes: 1 } as const;

export class CircuitBreaker {
  readonly name: string;
  private readonly failureThreshold: number;
  private readonly cooldownMs: number;
  private readonly halfOpenMaxProbes: number;
  private readonly now: () => number;

  private current: BreakerStateName = 'closed';
  private consecutiveFailures = 0;
  private lastError: string | null = null;
  private openedAt: number | null = null;
  private nextProbeAt: number | null = null;
  /** Start times of the probes let through in this half-open period. */
  private probes: number[] = [];

  constructor(name: string, options: BreakerOptions = {}) {
    this.name = name;
    this.failureThreshold = options.failureThreshold ?? BREAKER_DEFAULTS.failureThreshold;
    this.cooldownMs = options.cooldownMs ?? BREAKER_DEFAULTS.cooldownMs;
    this.halfOpenMaxProbes = options.halfOpenMaxProbes ?? BREAKER_DEFAULTS.halfOpenMaxProbes;
    this.now = options.now ?? Date.now;
    if (!Number.isInteger(this.failureThreshold) || this.failureThreshold < 1) {
      throw new RangeError(`failureThreshold must be an integer >= 1, got ${this.failureThreshold}`);
    }
    if (!Number.isFinite(this.cooldownMs) || this.cooldownMs < 0) {
      throw new RangeError(`cooldownMs must be a finite number >= 0, got ${this.cooldownMs}`);
    }
    if (!Number.isInteger(this.halfOpenMaxProbes) || this.halfOpenMaxProbes < 1) {
      throw new RangeError(`halfOpenMaxProbes must be an integer >= 1, got ${this.halfOpenMaxProbes}`);
    }
  }

  /** Asks to make one attempt. An `ok` in half-open takes a probe slot: report its outcome. */
  canPass(): BreakerDecision {
    const now = this.advance();
    if (this.current === 'closed') return { ok: true };
    if (this.current === 'open') {
      const retryInMs = Math.max(0, (this.nextProbeAt ?? now) - now);
      return { ok: false, retryInMs, reason: `circuit open for ${this.name} ${this.history()}; next probe in ${seconds(retryInMs)}` };
    }
    // A probe that never reports (its caller crashed or hung) must not wedge the circuit in
    // half-open forever: its slot is reclaimed after one cool-down.
    this.probes = this.probes.filter((start) => now - start < this.probeLeaseMs());
    if (this.probes.length < this.halfOpenMaxProbes) {
      this.probes.push(now);
      return { ok: true };
    }
    const oldest = this.probes[0] ?? now;
    const retryInMs = Math.max(0, oldest + this.probeLeaseMs() - now);
    return {
      ok: false,
      retryInMs,
      reason: `circuit half-open for ${this.name} ${this.history()}; a probe is in progress, retry in ${seconds(retryInMs)}`,
    };
  }

  recordSuccess(): void {
    this.advance();
    // Outcomes reported while open belong to attempts started before the circuit opened: stale.
    if (this.current === 'open') return;
    this.current = 'closed';
    this.consecutiveFailures = 0;
    this.nextProbeAt = null;
    this.probes = [];
  }

  recordFailure(error: string): void {
    const now = this.advance();
    if (this.current === 'open') return;
    this.consecutiveFailures += 1;
    this.lastError = error;
    if (this.current === 'half-open' || this.consecutiveFailures >= this.failureThreshold) this.open(now);
  }

  state(): BreakerState {
    this.advance();
    return {
      state: this.current,
      consecutiveFailures: this.consecutiveFailures,
      lastError: this.lastError,
      openedAt: this.openedAt,
      nextProbeAt: this.nextProbeAt,
    };
  }

  /** Applies the one time-driven transition (open → half-open) and returns the current time. */
  private advance(): number {
    const now = this.now();
    if (this.current === 'open' && this.nextProbeAt !== null && now >= this.nextProbeAt) {
      this.current = 'half-open';
      this.nextProbeAt = null;
      this.probes = [];
    }
    return now;
  }

  private open(now: number): void {
    this.current = 'open';
    this.openedAt = now;
    this.nextProbeAt = now + this.cooldownMs;
    this.probes = [];
  }

  private probeLeaseMs(): number {
    // A zero cool-down would reclaim a probe's slot the moment it is taken.
    return Math.max(this.cooldownMs, 1);
  }

  private history(): string {
    const n = this.consecutiveFailures;
    return `after ${n} consecutive failure${n === 1 ? '' : 's'} (last: ${this.lastError ?? 'unknown'})`;
  }
}

/** 8200 → "8.2 s"; rounded up so "next probe in 0.0 s" never shows while still refusing. */
function seconds(ms: number): string {
  return `${(Math.ceil(ms / 100) / 10).toFixed(1)} s`;
}
