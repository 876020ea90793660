import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CircuitBreaker, type BreakerOptions } from '../../src/hosts/breaker.js';

function setup(options: Omit<BreakerOptions, 'now'> = {}): { breaker: CircuitBreaker; clock: { t: number } } {
  const clock = { t: 1_000_000 };
  const breaker = new CircuitBreaker('web1', { ...options, now: () => clock.t });
  return { breaker, clock };
}

function refusal(breaker: CircuitBreaker): { reason: string; retryInMs: number } {
  const d = breaker.canPass();
  assert.equal(d.ok, false, 'expected the breaker to refuse');
  return d.ok ? { reason: '', retryInMs: -1 } : d;
}

function failTimes(breaker: CircuitBreaker, n: number, error = 'connect ETIMEDOUT'): void {
  for (let i = 0; i < n; i++) breaker.recordFailure(error);
}

describe('CircuitBreaker', () => {
  test('starts closed and lets calls through', () => {
    const { breaker } = setup();
    assert.deepEqual(breaker.canPass(), { ok: true });
    assert.deepEqual(breaker.state(), { state: 'closed', consecutiveFailures: 0, lastError: null, openedAt: null, nextProbeAt: null });
  });

  test('stays closed below the threshold, and a success resets the count', () => {
    const { breaker } = setup({ failureThreshold: 3 });
    failTimes(breaker, 2);
    assert.equal(breaker.state().state, 'closed');
    assert.equal(breaker.state().consecutiveFailures, 2);
    breaker.recordSuccess();
    failTimes(breaker, 2);
    assert.equal(breaker.state().state, 'closed', 'failures must be consecutive');
    assert.deepEqual(breaker.canPass(), { ok: true });
  });

  test('opens after N consecutive failures and fails fast with the reason', () => {
    const { breaker, clock } = setup({ failureThreshold: 3, cooldownMs: 10_000 });
    failTimes(breaker, 3);
    const s = breaker.state();
    assert.equal(s.state, 'open');
    assert.equal(s.consecutiveFailures, 3);
    assert.equal(s.lastError, 'connect ETIMEDOUT');
    assert.equal(s.openedAt, clock.t);
    assert.equal(s.nextProbeAt, clock.t + 10_000);

    clock.t += 1_800;
    const r = refusal(breaker);
    assert.equal(r.retryInMs, 8_200);
    assert.equal(r.reason, 'circuit open for web1 after 3 consecutive failures (last: connect ETIMEDOUT); next probe in 8.2 s');
  });

  test('the reason rounds the wait up, never showing 0.0 s while refusing', () => {
    const { breaker, clock } = setup({ failureThreshold: 1, cooldownMs: 1_000 });
    breaker.recordFailure('boom');
    clock.t += 999;
    const r = refusal(breaker);
    assert.equal(r.retryInMs, 1);
    assert.match(r.reason, /after 1 consecutive failure \(last: boom\); next probe in 0\.1 s$/);
  });

  test('open → half-open exactly when the cool-down ends', () => {
    const { breaker, clock } = setup({ failureThreshold: 1, cooldownMs: 5_000 });
    breaker.recordFailure('refused');
    clock.t += 4_999;
    assert.equal(breaker.state().state, 'open');
    refusal(breaker);
    clock.t += 1;
    assert.equal(breaker.state().state, 'half-open');
    assert.equal(breaker.state().nextProbeAt, null);
    assert.deepEqual(breaker.canPass(), { ok: true });
  });

  test('half-open: a probe success closes and clears the failure count', () => {
    const { breaker, clock } = setup({ failureThreshold: 2, cooldownMs: 1_000 });
    failTimes(breaker, 2);
    clock.t += 1_000;
    assert.deepEqual(breaker.canPass(), { ok: true });
    breaker.recordSuccess();
    const s = breaker.state();
    assert.equal(s.state, 'closed');
    assert.equal(s.consecutiveFailures, 0);
    assert.equal(s.nextProbeAt, null);
    assert.deepEqual(breaker.canPass(), { ok: true });
    assert.deepEqual(breaker.canPass(), { ok: true });
    // Closed again means the full threshold applies again.
    breaker.recordFailure('x');
    assert.equal(breaker.state().state, 'closed');
  });

  test('half-open: a probe failure re-opens with a fresh cool-down', () => {
    const { breaker, clock } = setup({ failureThreshold: 2, cooldownMs: 1_000 });
    failTimes(breaker, 2);
    clock.t += 1_500;
    assert.deepEqual(breaker.canPass(), { ok: true });
    breaker.recordFailure('auth failed');
    const s = breaker.state();
    assert.equal(s.state, 'open');
    assert.equal(s.openedAt, clock.t);
    assert.equal(s.nextProbeAt, clock.t + 1_000);
    assert.equal(s.consecutiveFailures, 3);
    const r = refusal(breaker);
    assert.equal(r.retryInMs, 1_000);
    assert.match(r.reason, /after 3 consecutive failures \(last: auth failed\)/);
  });

  test('half-open lets exactly one probe through by default; the second caller is refused', () => {
    const { breaker, clock } = setup({ failureThreshold: 1, cooldownMs: 2_000 });
    breaker.recordFailure('down');
    clock.t += 2_000;
    const first = breaker.canPass();
    const second = breaker.canPass();
    assert.deepEqual(first, { ok: true });
    assert.equal(second.ok, false);
    assert.match(second.ok ? '' : second.reason, /^circuit half-open for web1 after 1 consecutive failure \(last: down\); a probe is in progress/);
    assert.equal(breaker.state().state, 'half-open');
  });

  test('halfOpenMaxProbes = N lets exactly N concurrent probes through', () => {
    const { breaker, clock } = setup({ failureThreshold: 1, cooldownMs: 100, halfOpenMaxProbes: 3 });
    breaker.recordFailure('down');
    clock.t += 100;
    const decisions = Array.from({ length: 5 }, () => breaker.canPass().ok);
    assert.deepEqual(decisions, [true, true, true, false, false]);
  });

  test('one probe success among several closes; later probe failures count from zero', () => {
    const { breaker, clock } = setup({ failureThreshold: 2, cooldownMs: 100, halfOpenMaxProbes: 2 });
    failTimes(breaker, 2);
    clock.t += 100;
    assert.ok(breaker.canPass().ok);
    assert.ok(breaker.canPass().ok);
    breaker.recordSuccess();
    breaker.recordFailure('second probe failed');
    assert.equal(breaker.state().state, 'closed');
    assert.equal(breaker.state().consecutiveFailures, 1);
  });

  test('outcomes reported while open are stale and ignored', () => {
    const { breaker, clock } = setup({ failureThreshold: 1, cooldownMs: 1_000 });
    breaker.recordFailure('first');
    const opened = breaker.state();
    clock.t += 500;
    breaker.recordSuccess();
    breaker.recordFailure('late');
    assert.deepEqual(breaker.state(), opened, 'a late result must neither close nor extend the cool-down');
  });

  test('a probe that never reports frees its slot after one cool-down', () => {
    const { breaker, clock } = setup({ failureThreshold: 1, cooldownMs: 1_000 });
    breaker.recordFailure('down');
    clock.t += 1_000;
    assert.ok(breaker.canPass().ok);
    clock.t += 400;
    const r = refusal(breaker);
    assert.equal(r.retryInMs, 600);
    clock.t += 600;
    assert.ok(breaker.canPass().ok, 'the hung probe must not wedge the circuit');
    assert.equal(breaker.canPass().ok, false);
  });

  test('re-opening after a failed probe starts a new cycle that can probe again', () => {
    const { breaker, clock } = setup({ failureThreshold: 1, cooldownMs: 1_000 });
    breaker.recordFailure('a');
    for (let cycle = 0; cycle < 3; cycle++) {
      clock.t += 1_000;
      assert.ok(breaker.canPass().ok, `probe of cycle ${cycle}`);
      breaker.recordFailure(`probe ${cycle}`);
      assert.equal(breaker.state().state, 'open');
    }
    clock.t += 1_000;
    assert.ok(breaker.canPass().ok);
    breaker.recordSuccess();
    assert.equal(breaker.state().state, 'closed');
    assert.equal(breaker.state().lastError, 'probe 2', 'the last error stays visible after recovery');
  });

  test('a zero cool-down probes on the next call', () => {
    const { breaker } = setup({ failureThreshold: 1, cooldownMs: 0 });
    breaker.recordFailure('x');
    assert.equal(breaker.state().state, 'half-open');
    assert.ok(breaker.canPass().ok);
    assert.equal(breaker.canPass().ok, false, 'still only one probe at a time');
  });

  test('rejects nonsensical options', () => {
    assert.throws(() => new CircuitBreaker('h', { failureThreshold: 0 }), RangeError);
    assert.throws(() => new CircuitBreaker('h', { failureThreshold: 1.5 }), RangeError);
    assert.throws(() => new CircuitBreaker('h', { cooldownMs: -1 }), RangeError);
    assert.throws(() => new CircuitBreaker('h', { cooldownMs: Number.POSITIVE_INFINITY }), RangeError);
    assert.throws(() => new CircuitBreaker('h', { halfOpenMaxProbes: 0 }), RangeError);
  });

  test('defaults: 3 failures, 10 s cool-down, 1 probe', () => {
    const { breaker, clock } = setup();
    failTimes(breaker, 3);
    assert.equal(breaker.state().nextProbeAt, clock.t + 10_000);
    clock.t += 10_000;
    assert.deepEqual([breaker.canPass().ok, breaker.canPass().ok], [true, false]);
  });
});
