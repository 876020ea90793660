// The console's browser session store on its own: a login ends only what it must (the principal's oldest
// past its limit, the daemon's oldest past the total), and costs that, not a pass over every session the
// daemon holds; its per-principal index follows every way a session goes (expiry, a rotated token, logout,
// a login's eviction, a hand-over).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { ADMIN_SCOPE, type PrincipalEntry, type Principals } from '../../src/config/principals.js';
import { SessionStore, type HandedSession } from '../../src/gateway/http/auth.js';

const entry = (name: string, tokenSha256 = name): PrincipalEntry => ({ name, tokenSha256, created: null, scope: ADMIN_SCOPE });
const principalsOf = (...entries: PrincipalEntry[]): Principals => ({ file: 'principals.yaml', entries });

/** A store whose `ended` calls are recorded as [cookie's csrf token, why]. */
function recorded(ttlMs: number, limits: { perPrincipal: number; total: number }): { store: SessionStore; ended: string[] } {
  const ended: string[] = [];
  const store = new SessionStore(ttlMs, limits, (s, why) => ended.push(`${s.principal} ${s.csrfToken.slice(0, 6)}: ${why}`));
  return { store, ended };
}

describe('SessionStore: the per-principal index', { timeout: 60_000 }, () => {
  const replaced = (name: string, s: { session: { csrfToken: string } }, n: number): string =>
    `${name} ${s.session.csrfToken.slice(0, 6)}: a newer login of ${name} replaced this browser session (${n} at most)`;

  test('sessions gone by expiry, a rotated token and logout no longer count: the next logins end the principal\'s oldest live ones only', async () => {
    const { store, ended } = recorded(200, { perPrincipal: 3, total: 100 });
    let principals = principalsOf(entry('boss'), entry('ops'));
    const ops = store.create(entry('ops'));
    // Three that expire (pruned at the next login), then three that the token's rotation revokes.
    for (let i = 0; i < 3; i++) store.create(entry('boss'));
    await sleep(250);
    const ops2 = store.create(entry('ops'));
    const old = [store.create(entry('boss')), store.create(entry('boss')), store.create(entry('boss'))];
    assert.deepEqual(ended, [], 'the expired went by expiry, not as replaced');
    principals = principalsOf(entry('boss', 'rotated'), entry('ops'));
    assert.equal(store.find(old[0]!.cookie, principals), null, 'found revoked: forgotten');
    store.dropRevoked(principals);
    // Logged in with the new token: four, past the limit of three.
    const fresh = Array.from({ length: 4 }, () => store.create(entry('boss', 'rotated')));
    assert.deepEqual(ended, [replaced('boss', fresh[0]!, 3)], 'only the oldest of the live ones is ended');
    assert.deepEqual(fresh.map((s) => store.find(s.cookie, principals) !== null), [false, true, true, true]);
    // A logout in the middle: the next login has room and ends none.
    store.delete(fresh[2]!.cookie, 'logout');
    const after = store.create(entry('boss', 'rotated'));
    assert.equal(ended.length, 2);
    assert.deepEqual(
      store.handOver().map((s) => s.csrfToken),
      [ops2, fresh[1]!, fresh[3]!, after].map((s) => s.session.csrfToken),
      'the live ones, oldest first: the first ops session expired',
    );
    assert.equal(store.find(ops.cookie, principals), null);
  });

  test('sessions taken back from a hand-over are indexed: logins end the oldest of them first', () => {
    const { store, ended } = recorded(3600_000, { perPrincipal: 2, total: 100 });
    const handed = (i: number): HandedSession => ({
      key: createHash('sha256').update(`boss${i}`).digest('hex'),
      principal: 'boss',
      tokenSha256: 'boss',
      csrfToken: `tok${i}xx`,
      expiresAt: Date.now() + 60_000,
    });
    store.takeBack([handed(0), handed(1)], Date.now(), principalsOf(entry('boss')));
    const mine = [store.create(entry('boss')), store.create(entry('boss'))];
    assert.deepEqual(ended, [
      'boss tok0xx: a newer login of boss replaced this browser session (2 at most)',
      'boss tok1xx: a newer login of boss replaced this browser session (2 at most)',
    ]);
    assert.deepEqual(
      store.handOver().map((s) => s.csrfToken),
      mine.map((s) => s.session.csrfToken),
    );
  });

  test('past the total the daemon\'s oldest goes, whoever\'s it is, and its principal\'s index with it', () => {
    const { store, ended } = recorded(3600_000, { perPrincipal: 2, total: 3 });
    const [boss, ops] = [store.create(entry('boss')), store.create(entry('ops'))];
    store.create(entry('dev'));
    store.create(entry('ops'));
    assert.deepEqual(ended, [`boss ${boss.session.csrfToken.slice(0, 6)}: the daemon holds 3 browser sessions at most`]);
    // boss has none left: its next logins end none of its own until it has two again.
    store.create(entry('boss'));
    assert.deepEqual(ended.slice(1), [`ops ${ops.session.csrfToken.slice(0, 6)}: the daemon holds 3 browser sessions at most`]);
  });

  test('a login costs what it ends, not a pass over every session: with 50 000 of others\' it is about as fast as with none', () => {
    // 500 principals with 100 sessions each (their limit), and boss.
    const others = 50_000;
    const names = Array.from({ length: others / 100 }, (_, i) => `p${i}`);
    const principals = principalsOf(entry('boss'), ...names.map((n) => entry(n)));
    const handed = Array.from({ length: others }, (_, i): HandedSession => ({
      key: createHash('sha256').update(`s${i}`).digest('hex'),
      principal: names[i % names.length]!,
      tokenSha256: names[i % names.length]!,
      csrfToken: `c${i}`,
      expiresAt: Date.now() + 3600_000,
    }));
    const logins = (store: SessionStore): number => {
      const t0 = performance.now();
      for (let i = 0; i < 300; i++) store.create(entry('boss'));
      return performance.now() - t0;
    };
    const limits = { perPrincipal: 100, total: others + 1000 };
    const alone = new SessionStore(3600_000, limits);
    const crowded = new SessionStore(3600_000, limits);
    assert.equal(crowded.takeBack(handed, Date.now(), principals).taken, others);
    // The best of three of each, interleaved: the machine's load weighs on both alike.
    const best = { alone: Infinity, crowded: Infinity };
    for (let round = 0; round < 3; round++) {
      best.alone = Math.min(best.alone, logins(alone));
      best.crowded = Math.min(best.crowded, logins(crowded));
    }
    // A pass over the 50 000 per login makes it hundreds of times slower.
    assert.ok(best.crowded < Math.max(10 * best.alone, 100), `300 logins: ${best.crowded.toFixed(1)} ms among ${others} sessions of others, ${best.alone.toFixed(1)} ms alone`);
  });
});
