import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Backoff, BACKOFF_DEFAULTS } from '../../src/hosts/backoff.js';
import { seededRandom } from '../support/random.js';


describe('Backoff (full jitter)', () => {
  test('ceiling doubles from base and stops at the cap', () => {
    const b = new Backoff({ baseMs: 100, capMs: 1_000 });
    assert.deepEqual([0, 1, 2, 3, 4, 5, 50].map((n) => b.ceiling(n)), [100, 200, 400, 800, 1_000, 1_000, 1_000]);
  });

  test('the extremes of random map to 0 and to the ceiling', () => {
    assert.equal(new Backoff({ baseMs: 100, capMs: 1_000, random: () => 0 }).nextDelay(3), 0);
    assert.equal(new Backoff({ baseMs: 100, capMs: 1_000, random: () => 0.999_999_999 }).nextDelay(3), 800);
    assert.equal(new Backoff({ baseMs: 100, capMs: 1_000, random: () => 0.5 }).nextDelay(2), 200);
  });

  test('a misbehaving random source cannot escape [0, ceiling]', () => {
    for (const r of [1, 7, -3, Number.NaN, Number.POSITIVE_INFINITY]) {
      const d = new Backoff({ baseMs: 100, capMs: 1_000, random: () => r }).nextDelay(2);
      assert.ok(d >= 0 && d <= 400, `random() = ${r} gave ${d}`);
    }
  });

  test('every delay is a whole number of ms within [0, min(cap, base * 2^attempt)]', () => {
    const b = new Backoff({ baseMs: 50, capMs: 5_000, random: seededRandom(1) });
    for (let attempt = 0; attempt < 40; attempt++) {
      for (let i = 0; i < 200; i++) {
        const d = b.nextDelay(attempt);
        assert.ok(Number.isInteger(d), `${d} is not whole`);
        assert.ok(d >= 0 && d <= Math.min(5_000, 50 * 2 ** attempt), `attempt ${attempt}: ${d} out of bounds`);
      }
    }
  });

  test('the cap holds for absurd attempt numbers (no overflow to Infinity or NaN)', () => {
    const b = new Backoff({ baseMs: 1_000, capMs: 60_000, random: seededRandom(2) });
    for (const attempt of [64, 1_024, 1_100, 100_000]) {
      assert.equal(b.ceiling(attempt), 60_000);
      const d = b.nextDelay(attempt);
      assert.ok(d >= 0 && d <= 60_000, `attempt ${attempt}: ${d}`);
    }
  });

  test('distribution is uniform over [0, ceiling]: mean, spread, and both halves used', () => {
    const b = new Backoff({ baseMs: 100, capMs: 10_000, random: seededRandom(42) });
    const n = 20_000;
    const samples = Array.from({ length: n }, () => b.nextDelay(4)); // ceiling 1600
    const mean = samples.reduce((a, x) => a + x, 0) / n;
    assert.ok(Math.abs(mean - 800) < 20, `mean ${mean} should be near 800`);
    // Ten equal bins each hold about a tenth of the samples.
    const bins = new Array<number>(10).fill(0);
    for (const s of samples) {
      const i = Math.min(9, Math.floor(s / 160.1));
      bins[i] = (bins[i] ?? 0) + 1;
    }
    for (const count of bins) assert.ok(Math.abs(count - n / 10) < n / 50, `bins ${bins.join(',')} are not uniform`);
    assert.ok(Math.min(...samples) < 20 && Math.max(...samples) > 1_580, 'full jitter reaches both ends');
  });

  test('the same seed gives the same sequence', () => {
    const a = new Backoff({ baseMs: 10, capMs: 10_000, random: seededRandom(7) });
    const b = new Backoff({ baseMs: 10, capMs: 10_000, random: seededRandom(7) });
    const seqA = Array.from({ length: 12 }, (_, i) => a.nextDelay(i));
    const seqB = Array.from({ length: 12 }, (_, i) => b.nextDelay(i));
    assert.deepEqual(seqA, seqB);
    assert.ok(new Set(seqA).size > 6, 'the delays vary');
  });

  test('defaults are used when options are omitted', () => {
    const b = new Backoff();
    assert.equal(b.baseMs, BACKOFF_DEFAULTS.baseMs);
    assert.equal(b.capMs, BACKOFF_DEFAULTS.capMs);
    assert.equal(b.ceiling(100), BACKOFF_DEFAULTS.capMs);
  });

  test('rejects bad options and attempts', () => {
    assert.throws(() => new Backoff({ baseMs: 0 }), RangeError);
    assert.throws(() => new Backoff({ baseMs: -5 }), RangeError);
    assert.throws(() => new Backoff({ baseMs: 100, capMs: 50 }), RangeError);
    assert.throws(() => new Backoff({ baseMs: 100, capMs: Number.POSITIVE_INFINITY }), RangeError);
    const b = new Backoff({ baseMs: 100, capMs: 1_000 });
    assert.throws(() => b.nextDelay(-1), RangeError);
    assert.throws(() => b.nextDelay(1.5), RangeError);
  });
});
