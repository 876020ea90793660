// Several processes writing at once, and processes killed with SIGKILL mid-write.
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { AuditStore } from '../../src/audit/index.js';
import { assertFourWritersChained, sampleBegin, spawnWriter, tempDbPath, waitForExit, waitForLine } from './helpers.js';

test('4 processes × 200 actions on a new store keep one linear chain', async (t) => {
  const path = tempDbPath(t);
  // All start at once and pause 1 ms inside each action (as a command would run), so they interleave.
  // Chain linearity does not depend on fsync; skipping it keeps the test quick on a busy disk.
  const startAt = String(Date.now() + 400);
  const children = [0, 1, 2, 3].map((i) =>
    spawnWriter(['pairs', path, '200', `writer${i}`, '1', startAt], { WRITER_DURABILITY: 'normal' }),
  );
  const exits = await Promise.all(children.map(waitForExit));
  assert.deepEqual(exits, children.map(() => ({ code: 0, signal: null })));

  const actions = assertFourWritersChained(path);
  const switches = actions.filter((a, i) => i > 0 && a.begin.principal !== actions[i - 1]?.begin.principal).length;
  assert.ok(switches > 50, `the writers really interleaved (${switches} switches)`);

  const db = new Database(path, { readonly: true });
  const { rows, uniq } = db.prepare('SELECT count(*) AS rows, count(DISTINCT prev_hash) AS uniq FROM audit').get() as {
    rows: number;
    uniq: number;
  };
  db.close();
  assert.equal(uniq, rows, 'no two records chain to the same predecessor');
});

test('a new store opened while another connection writes to it: the open waits for it, where SQLite alone refuses at once', async (t) => {
  const path = tempDbPath(t);
  // A new, empty database (still in rollback mode), written to by another connection: as when several
  // processes open a new store at once and one is turning it to WAL.
  mkdirSync(dirname(path), { recursive: true });
  const other = new Database(path);
  other.exec('BEGIN IMMEDIATE');
  const child = spawnWriter(['pairs', path, '1', 'opener'], { WRITER_DURABILITY: 'normal' });
  await new Promise((r) => setTimeout(r, 1500));
  other.exec('ROLLBACK');
  other.close();
  assert.deepEqual(await waitForExit(child), { code: 0, signal: null });
  const store = AuditStore.open(path);
  assert.equal(store.list().length, 1);
  store.close();
});

test('a new store another process sets up while this one checks what the file is: taken as the store it now is, not refused', (t) => {
  const path = tempDbPath(t);
  // The other process's setup lands right between this open's look at the file and its reading of it:
  // as soon as this open prepares its look at the schema, another opener sets the store up and commits.
  const prepare = Database.prototype.prepare;
  let other: AuditStore | null = null;
  let started = false;
  Database.prototype.prepare = function (this: Database.Database, sql: string) {
    if (!started && sql.includes('sqlite_schema')) {
      started = true;
      other = AuditStore.open(path);
    }
    return prepare.call(this, sql);
  } as typeof prepare;
  try {
    AuditStore.open(path).close();
  } finally {
    Database.prototype.prepare = prepare;
    (other as AuditStore | null)?.close();
  }
  assert.ok(other !== null, 'the other opener ran in between');
});

test('SIGKILL during a tight write loop leaves a store that opens, verifies and shows the cut action', async (t) => {
  const path = tempDbPath(t);
  const child = spawnWriter(['loop', path]);
  const longId = Number(await waitForLine(child, 'long '));
  await waitForLine(child, 'running');
  child.kill('SIGKILL');
  assert.equal((await waitForExit(child)).signal, 'SIGKILL');

  const store = AuditStore.open(path);
  const result = store.verify();
  assert.equal(result.ok, true, result.firstBad?.reason);
  assert.ok(result.checked > 200);
  const incomplete = store.list().filter((a) => a.status === 'incomplete');
  assert.equal(incomplete[0]?.id, longId);
  assert.ok(incomplete.length <= 2, 'at most the long action and the one in flight');
  // Writing goes on from the surviving head.
  await store.end(longId, { exitCode: null, error: 'remux was killed', durationMs: 0 });
  assert.equal(store.verify().ok, true);
  store.close();
});

test('SIGKILL while holding an uncommitted transaction: the lock goes with it and nothing half-written remains', async (t) => {
  const path = tempDbPath(t);
  const child = spawnWriter(['hold', path]);
  const begun = Number(await waitForLine(child, 'begun '));
  await waitForLine(child, 'holding');
  assert.ok(statSync(`${path}-wal`).size > 500_000, 'uncommitted pages were spilled into the WAL');

  const blocked = AuditStore.open(path, { busyTimeoutMs: 50 });
  await assert.rejects(blocked.begin(sampleBegin()), /locked|busy/i, 'a writer fails rather than skipping the audit');
  blocked.close();

  child.kill('SIGKILL');
  await waitForExit(child);
  const store = AuditStore.open(path);
  const result = store.verify();
  assert.equal(result.ok, true, result.firstBad?.reason);
  assert.equal(result.checked, 1, 'the uncommitted rows are gone');
  assert.deepEqual(
    store.list().map((a) => [a.id, a.status]),
    [[begun, 'incomplete']],
  );
  await store.end(await store.begin(sampleBegin()), { exitCode: 0, durationMs: 1 });
  assert.equal(store.verify().checked, 3);
  store.close();
});

test('an end queued without waiting (perform returns before its commit) is written when the process exits at once', async (t) => {
  const path = tempDbPath(t);
  const child = spawnWriter(['exit', path]);
  const id = Number(await waitForLine(child, 'finished '));
  assert.deepEqual(await waitForExit(child), { code: 0, signal: null });
  const store = AuditStore.open(path);
  t.after(() => store.close());
  const [action] = store.list();
  assert.deepEqual([action?.id, action?.status, action?.end?.exitCode], [id, 'complete', 0]);
});
