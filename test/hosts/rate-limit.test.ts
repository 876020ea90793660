import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RateLimiter, rateLimitedMessage, takeOrWait, type RateLimitOptions, type TakeResult } from '../../src/hosts/rate-limit.js';

function setup(options: Omit<RateLimitOptions, 'now'>): { limiter: RateLimiter; clock: { t: number } } {
  const clock = { t: 5_000_000 };
  return { limiter: new RateLimiter({ ...options, now: () => clock.t }), clock };
}

function retryIn(result: TakeResult): number {
  assert.equal(result.ok, false, 'expected a refusal');
  return result.ok ? -1 : result.retryInMs;
}

describe('RateLimiter', () => {
  test('a new key gets the full burst, then is refused', () => {
    const { limiter } = setup({ ratePerSec: 1, burst: 3 });
    assert.deepEqual(limiter.take('alice'), { ok: true, remaining: 2 });
    assert.deepEqual(limiter.take('alice'), { ok: true, remaining: 1 });
    assert.deepEqual(limiter.take('alice'), { ok: true, remaining: 0 });
    assert.deepEqual(limiter.take('alice'), { ok: false, retryInMs: 1_000 });
  });

  test('waitMs says when a token is there and takes none', () => {
    const { limiter, clock } = setup({ ratePerSec: 10, burst: 1 });
    assert.equal(limiter.waitMs('k'), 0);
    assert.equal(limiter.waitMs('k'), 0, 'asking took nothing');
    assert.ok(limiter.take('k').ok);
    assert.equal(limiter.waitMs('k'), 100);
    clock.t += 40;
    assert.equal(limiter.waitMs('k'), 60);
    clock.t += 60;
    assert.equal(limiter.waitMs('k'), 0);
    assert.ok(limiter.take('k').ok);
  });

  test('keys are independent', () => {
    const { limiter } = setup({ ratePerSec: 1, burst: 1 });
    assert.ok(limiter.take('alice').ok);
    assert.equal(limiter.take('alice').ok, false);
    assert.ok(limiter.take('bob').ok, 'bob is not limited by alice');
  });

  test('refill timing is exact: refused 1 ms before the advertised time, allowed at it', () => {
    const { limiter, clock } = setup({ ratePerSec: 10, burst: 1 });
    assert.ok(limiter.take('k').ok);
    assert.equal(retryIn(limiter.take('k')), 100);
    clock.t += 99;
    assert.equal(retryIn(limiter.take('k')), 1);
    clock.t += 1;
    assert.deepEqual(limiter.take('k'), { ok: true, remaining: 0 });
  });

  test('non-integral periods round the wait up (3/s → 334 ms, not 333)', () => {
    const { limiter, clock } = setup({ ratePerSec: 3, burst: 1 });
    assert.ok(limiter.take('k').ok);
    assert.equal(retryIn(limiter.take('k')), 334);
    clock.t += 333;
    assert.equal(retryIn(limiter.take('k')), 1);
    clock.t += 1;
    assert.ok(limiter.take('k').ok);
  });

  test('fractional rates: 0.5/s refills one token every 2 s', () => {
    const { limiter, clock } = setup({ ratePerSec: 0.5, burst: 2 });
    assert.ok(limiter.take('k').ok);
    assert.ok(limiter.take('k').ok);
    assert.equal(retryIn(limiter.take('k')), 2_000);
    clock.t += 1_000;
    assert.equal(retryIn(limiter.take('k')), 1_000, 'half a token is not enough');
    clock.t += 1_000;
    assert.deepEqual(limiter.take('k'), { ok: true, remaining: 0 });
  });

  test('a rate like 0.1/s survives float rounding over many small steps', () => {
    // Burst 2, so the bucket is never near full and never evicted while it refills.
    const { limiter, clock } = setup({ ratePerSec: 0.1, burst: 2 });
    assert.ok(limiter.take('k', 2).ok);
    // Polling every ms sums 0.0001 ten thousand times, which lands just below 1 in floats.
    for (let i = 1; i < 10_000; i++) {
      clock.t += 1;
      const r = limiter.take('k');
      assert.equal(r.ok, false, `at ${i} ms`);
      assert.equal(r.ok ? -1 : r.retryInMs, 10_000 - i, `at ${i} ms`);
    }
    clock.t += 1; // 10 s after the first take, exactly one token has accrued
    assert.ok(limiter.take('k').ok);
  });

  test('refill never exceeds the burst', () => {
    const { limiter, clock } = setup({ ratePerSec: 100, burst: 5 });
    assert.ok(limiter.take('k').ok);
    clock.t += 3_600_000;
    assert.deepEqual(limiter.take('k'), { ok: true, remaining: 4 });
  });

  test('take(n) takes n tokens and reports the wait for all n', () => {
    const { limiter } = setup({ ratePerSec: 2, burst: 4 });
    assert.deepEqual(limiter.take('k', 3), { ok: true, remaining: 1 });
    assert.equal(retryIn(limiter.take('k', 3)), 1_000, 'two more tokens at 2/s');
    assert.deepEqual(limiter.take('k', 1), { ok: true, remaining: 0 }, 'a refusal takes nothing');
    assert.throws(() => limiter.take('k', 5), RangeError, 'more than the burst can never pass');
    assert.throws(() => limiter.take('k', 0), RangeError);
  });

  test('a refused caller that keeps retrying does not starve itself (refusals cost nothing)', () => {
    const { limiter, clock } = setup({ ratePerSec: 1, burst: 1 });
    assert.ok(limiter.take('k').ok);
    for (let i = 0; i < 9; i++) {
      clock.t += 100;
      limiter.take('k');
    }
    clock.t += 100;
    assert.ok(limiter.take('k').ok);
  });

  test('a clock stepping backwards refills nothing and drains nothing', () => {
    const { limiter, clock } = setup({ ratePerSec: 1, burst: 2 });
    assert.ok(limiter.take('k').ok);
    clock.t -= 60_000;
    assert.deepEqual(limiter.take('k'), { ok: true, remaining: 0 });
    assert.equal(limiter.take('k').ok, false);
  });

  test('snapshot shows current tokens; full (idle) buckets are evicted', () => {
    const { limiter, clock } = setup({ ratePerSec: 2, burst: 4 });
    limiter.take('alice', 4);
    limiter.take('bob', 1);
    clock.t += 250;
    assert.deepEqual(limiter.snapshot(), [
      { key: 'alice', tokens: 0.5, ratePerSec: 2, burst: 4 },
      { key: 'bob', tokens: 3.5, ratePerSec: 2, burst: 4 },
    ]);
    clock.t += 250; // bob is full again: the same as never having been seen
    assert.deepEqual(
      limiter.snapshot().map((s) => [s.key, s.tokens]),
      [['alice', 1]],
    );
    assert.equal(limiter.size, 1);
    clock.t += 1_500;
    assert.deepEqual(limiter.snapshot(), []);
    assert.equal(limiter.size, 0);
  });

  test('a flood of 100k distinct keys keeps memory bounded by maxKeys', () => {
    const { limiter, clock } = setup({ ratePerSec: 1, burst: 10, maxKeys: 1_000 });
    for (let i = 0; i < 100_000; i++) {
      assert.ok(limiter.take(`flood-${i}`).ok);
      if (i % 1_000 === 0) clock.t += 1;
      assert.ok(limiter.size <= 1_000);
    }
    assert.equal(limiter.size, 1_000);
    // The most recent keys are the ones kept.
    assert.ok(limiter.snapshot().some((s) => s.key === 'flood-99999'));
    assert.ok(!limiter.snapshot().some((s) => s.key === 'flood-0'));
  });

  test('a flood over time is swept as buckets refill, below the hard cap', () => {
    const { limiter, clock } = setup({ ratePerSec: 100, burst: 1 }); // full again 10 ms after a take
    for (let i = 0; i < 100_000; i++) {
      limiter.take(`k${i}`);
      clock.t += 1;
    }
    assert.ok(limiter.size <= 11, `${limiter.size} buckets kept`);
  });

  test('an active key survives a flood that evicts by recency', () => {
    const { limiter } = setup({ ratePerSec: 1, burst: 2, maxKeys: 100 });
    limiter.take('victim', 2);
    for (let i = 0; i < 10_000; i++) {
      limiter.take(`flood-${i}`);
      if (i % 50 === 0) assert.equal(limiter.take('victim').ok, false, 'the victim stays limited while it keeps asking');
    }
  });

  test('rejects bad options', () => {
    assert.throws(() => new RateLimiter({ ratePerSec: 0, burst: 1 }), RangeError);
    assert.throws(() => new RateLimiter({ ratePerSec: -1, burst: 1 }), RangeError);
    assert.throws(() => new RateLimiter({ ratePerSec: Number.NaN, burst: 1 }), RangeError);
    assert.throws(() => new RateLimiter({ ratePerSec: 1, burst: 0.5 }), RangeError);
    assert.throws(() => new RateLimiter({ ratePerSec: 1, burst: 1, maxKeys: 0 }), RangeError);
  });
});

describe('rateLimitedMessage', () => {
  test('states the wait in whole milliseconds, rounded up', () => {
    assert.equal(rateLimitedMessage(334), 'rate limited, retry in 334 ms');
    assert.equal(rateLimitedMessage(12.2), 'rate limited, retry in 13 ms');
  });
});

describe('takeOrWait (what the CLI gets through the daemon)', () => {
  test('a short wait is waited, then the token is taken; a longer one is refused at once with the wait', async () => {
    const limiter = new RateLimiter({ ratePerSec: 50, burst: 1 });
    assert.equal((await takeOrWait(limiter, 'alice', 1000)).ok, true);
    const t0 = performance.now();
    assert.equal((await takeOrWait(limiter, 'alice', 1000)).ok, true, 'the next token is 20 ms away');
    const waited = performance.now() - t0;
    assert.ok(waited >= 15 && waited < 500, `waited ${waited.toFixed(1)} ms`);
    const t1 = performance.now();
    const refused = await takeOrWait(limiter, 'alice', 5);
    assert.ok(!refused.ok && refused.retryInMs > 5, JSON.stringify(refused));
    assert.ok(performance.now() - t1 < 5, 'refused without waiting');
  });

  test('a sequential loop past the burst runs at the rate: none refused', async () => {
    const limiter = new RateLimiter({ ratePerSec: 100, burst: 2 });
    const t0 = performance.now();
    for (let i = 0; i < 8; i++) assert.equal((await takeOrWait(limiter, 'bob', 1000)).ok, true, `request ${i}`);
    // 6 past the burst at 100/s: about 60 ms.
    assert.ok(performance.now() - t0 >= 50, `${(performance.now() - t0).toFixed(1)} ms`);
  });
});
