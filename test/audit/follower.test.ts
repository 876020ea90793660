// The daemon's one audit follower: several streams with different filters (and one resuming from an old
// row) each get exactly their own changes, in cursor order, from one read per change however many are
// open; the per-principal and daemon-wide caps refuse with their own reasons and free their places.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AuditFollower, type Subscription } from '../../src/audit/follower.js';
import { AuditStore, cursorOf, type AuditAction } from '../../src/audit/index.js';
import { recordDenied, sampleBegin, spawnWriter, tempDbPath, waitForExit } from './helpers.js';

const LIMITS = { pollMs: 20, maxPerPrincipal: 8, maxStreams: 64 };

function subscribed(s: Subscription | { refusal: string }): Subscription {
  if ('refusal' in s) assert.fail(`refused: ${s.refusal}`);
  return s;
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 5000; !ok(); await sleep(10)) assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
}

test('one follower fans each change out to every matching stream, one read per change', async (t) => {
  const path = tempDbPath(t);
  const store = AuditStore.open(path);
  t.after(() => store.close());
  await store.end(await store.begin(sampleBegin({ command: 'old' })), { exitCode: 0, durationMs: 1 });
  const follower = new AuditFollower(store, LIMITS);
  t.after(() => follower.close());
  const head = store.head().seq;
  const seen = new Map<string, AuditAction[]>();
  const watch = (name: string, from: number, filter: Parameters<AuditFollower['subscribe']>[2]): void => {
    seen.set(name, []);
    subscribed(follower.subscribe(name, from, filter, (a) => seen.get(name)!.push(a)));
  };
  watch('all', head, {});
  watch('bob', head, { principal: 'bob' });
  watch('warn', head, { level: 'warn' });
  watch('db1', head, { host: 'db1' });
  watch('resumed', 0, {});
  assert.equal(follower.open(), 5);

  await recordDenied(store, { principal: 'bob', host: 'db1', operation: 'execute_binary', argv: ['rm', '-rf', '/'], reason: 'rm is denied' });
  const failing = await store.begin(sampleBegin({ command: 'make' }));
  await until('the first changes to reach every stream', () => seen.get('all')!.length === 2 && seen.get('resumed')!.length === 3);
  await store.end(failing, { exitCode: 2, durationMs: 5 });
  // Another process's writes are seen too.
  assert.equal((await waitForExit(spawnWriter(['pairs', path, '1', 'remote']))).code, 0);
  await until('every change to reach the unfiltered streams', () => seen.get('all')!.filter((a) => a.status === 'complete').length === 3);

  const summary = (name: string): string[] => seen.get(name)!.map((a) => `${a.begin.principal}:${a.begin.command ?? a.begin.argv?.join(' ')}:${a.status}`);
  const changes = ['bob:rm -rf /:complete', 'alice:make:incomplete', 'alice:make:complete', 'remote:echo 0:incomplete', 'remote:echo 0:complete'];
  const all = summary('all');
  // The writer's begin and end may be read in one tick (then reported once, complete).
  assert.deepEqual(all.filter((c) => !c.startsWith('remote:echo 0:incomplete')), changes.filter((c) => c !== 'remote:echo 0:incomplete'));
  assert.deepEqual(summary('bob'), ['bob:rm -rf /:complete']);
  assert.deepEqual(summary('db1'), ['bob:rm -rf /:complete']);
  assert.deepEqual(summary('warn'), ['bob:rm -rf /:complete', 'alice:make:complete']);
  assert.deepEqual(summary('resumed').slice(0, 1), ['alice:old:complete'], 'a stream resuming from row 0 is caught up first');
  assert.deepEqual(summary('resumed').slice(1), all);
  for (const list of seen.values()) {
    const cursors = list.map(cursorOf);
    assert.deepEqual(cursors, [...cursors].sort((a, b) => a - b), 'in cursor order');
  }

  // With every stream at the head, one new action costs one read, not one per stream.
  await sleep(LIMITS.pollMs * 3);
  const reads = follower.reads;
  await store.record(sampleBegin({ command: 'once' }), { exitCode: 0, durationMs: 1 });
  await until('the last change to reach the unfiltered streams', () => seen.get('all')!.at(-1)?.begin.command === 'once' && seen.get('resumed')!.at(-1)?.begin.command === 'once');
  await sleep(LIMITS.pollMs * 3);
  assert.equal(follower.reads - reads, 1);
});

test('the caps: per principal, then daemon-wide, each refused with its own reason; closing frees a place', async (t) => {
  const store = AuditStore.open(tempDbPath(t));
  t.after(() => store.close());
  const follower = new AuditFollower(store, { pollMs: 20, maxPerPrincipal: 2, maxStreams: 3 });
  t.after(() => follower.close());
  const none = (): void => undefined;
  const alice = [subscribed(follower.subscribe('alice', 0, {}, none)), subscribed(follower.subscribe('alice', 0, {}, none))];
  const third = follower.subscribe('alice', 0, {}, none);
  assert.ok('refusal' in third);
  assert.match(third.refusal, /^alice has 2 audit streams open, the most it may/);
  const bob = subscribed(follower.subscribe('bob', 0, {}, none));
  const carol = follower.subscribe('carol', 0, {}, none);
  assert.ok('refusal' in carol);
  assert.match(carol.refusal, /^the daemon has 3 audit streams open, the most it serves/);
  assert.deepEqual([follower.open('alice'), follower.open('bob'), follower.open()], [2, 1, 3]);
  alice[0]!.close();
  const carolAgain = subscribed(follower.subscribe('carol', 0, {}, none));
  assert.equal(follower.open(), 3);
  bob.close();
  carolAgain.close();
  alice[1]!.close();
  assert.equal(follower.open(), 0);
});

test('a closed stream gets nothing more, and a closed follower stops polling', async (t) => {
  const store = AuditStore.open(tempDbPath(t));
  t.after(() => store.close());
  const follower = new AuditFollower(store, LIMITS);
  const got: string[] = [];
  const kept: string[] = [];
  const closing: Subscription = subscribed(
    follower.subscribe('alice', 0, {}, (a) => {
      got.push(a.begin.command ?? '');
      closing.close(); // as the route does when its client fell behind
    }),
  );
  subscribed(follower.subscribe('alice', 0, {}, (a) => kept.push(a.begin.command ?? '')));
  await store.record(sampleBegin({ command: 'one' }), { exitCode: 0, durationMs: 1 });
  await store.record(sampleBegin({ command: 'two' }), { exitCode: 0, durationMs: 1 });
  await until('both actions', () => kept.length === 2);
  assert.deepEqual(got, ['one'], 'closed during the first delivery of a batch');
  follower.close();
  const reads = follower.reads;
  await store.record(sampleBegin({ command: 'three' }), { exitCode: 0, durationMs: 1 });
  await sleep(LIMITS.pollMs * 5);
  assert.equal(follower.reads, reads);
  assert.deepEqual(kept, ['one', 'two']);
  assert.ok('refusal' in follower.subscribe('alice', 0, {}, () => undefined));
});
