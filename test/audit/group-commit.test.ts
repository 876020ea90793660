// Group commit: concurrent writes share one transaction (one fsync), and every guarantee of a lone
// write still holds: a begin resolves only once committed, a failed commit fails its whole batch, and
// perform() runs nothing whose begin was not written.
import { ADMIN_SCOPE } from '../../src/config/principals.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { AuditStore } from '../../src/audit/index.js';
import { fanOut } from '../../src/core/fanout.js';
import type { PerformContext } from '../../src/core/perform.js';
import type { ExecResult } from '../../src/exec/types.js';
import type { Host } from '../../src/hosts/types.js';
import { parsePolicies } from '../../src/policy/load.js';
import type { PathResolver } from '../../src/policy/types.js';
import { assertFourWritersChained, recordDenied, sampleBegin, spawnWriter, tempDbPath, waitForExit, waitForLine, WRITER } from './helpers.js';

/** Begin rows another connection can see: only committed ones. */
function committedBegins(reader: Database.Database, where = '1'): number {
  return (reader.prepare(`SELECT count(*) AS n FROM audit WHERE kind = 'begin' AND ${where}`).get() as { n: number }).n;
}

test('20 concurrent begins are one commit, chained in call order, resolved only once committed', async (t) => {
  const path = tempDbPath(t);
  const store = AuditStore.open(path);
  const reader = new Database(path, { readonly: true });
  t.after(() => reader.close());

  const begins = Array.from({ length: 20 }, (_, i) =>
    store.begin(sampleBegin({ command: `c${i}` })).then((id) => {
      assert.equal(committedBegins(reader, `seq = ${id}`), 1, `begin ${id} is committed when its promise resolves`);
      return id;
    }),
  );
  assert.equal(committedBegins(reader), 0, 'nothing is written before the flush');
  const ids = await Promise.all(begins);
  assert.deepEqual(ids, Array.from({ length: 20 }, (_, i) => i + 1), 'rows in call order');
  assert.deepEqual(store.writeStats(), { transactions: 1, rows: 20 });

  await Promise.all(ids.map((id) => store.end(id, { exitCode: 0, durationMs: 1 })));
  assert.deepEqual(store.writeStats(), { transactions: 2, rows: 40 });
  const result = store.verify();
  assert.equal(result.ok, true, result.firstBad?.reason);
  assert.equal(result.checked, 40);
  assert.deepEqual(
    store.list().map((a) => [a.begin.command, a.status]),
    ids.map((_, i) => [`c${i}`, 'complete']),
  );
  store.close();
});

/**
 * Runs the writer fixture in `mode` (begun or ended) under strace and reports, for each line it printed
 * (`begun ID`, `ended ID`, `quiet`), whether the WAL's latest write had been fsynced (the fsync returned) before
 * the line went out.
 */
function syncedBeforeEachLine(path: string, mode: 'begun' | 'ended', durability: 'full' | 'normal', fsyncs: 'inline' | 'pooled' = 'inline'): { lines: string[]; synced: boolean[]; walSyncs: number } {
  mkdirSync(dirname(path), { recursive: true });
  const trace = `${path}.strace`;
  const r = spawnSync('strace', ['-f', '-y', '-qq', '-e', 'trace=pwrite64,fsync,fdatasync,write', '-o', trace, process.execPath, WRITER, mode, path, '3'], {
    encoding: 'utf8',
    // Inline unless one takes a minute (strace slows them); pooled: every fsync on the thread pool.
    env: { ...process.env, WRITER_DURABILITY: durability, WRITER_INLINE_SYNC_MAX_MS: fsyncs === 'inline' ? '60000' : '0' },
  });
  assert.equal(r.status, 0, r.stderr);
  let written = -1;
  let synced = -1;
  let walSyncs = 0;
  const pendingSync = new Set<string>();
  const before: boolean[] = [];
  for (const [i, line] of readFileSync(trace, 'utf8').split('\n').entries()) {
    const pid = line.split(' ')[0] ?? '';
    if (/ pwrite64\(\d+<[^>]*-wal>/.test(line)) written = i;
    const sync = / f(data)?sync\(\d+<[^>]*-wal>/.test(line);
    if (sync && line.endsWith('<unfinished ...>')) pendingSync.add(pid);
    const resumed = /<\.\.\. f(data)?sync resumed>/.test(line) && pendingSync.delete(pid);
    if ((sync || resumed) && / = 0$/.test(line)) {
      synced = i;
      walSyncs++;
    }
    if (/ write\(1<[^>]*>, "(begun \d|ended \d|quiet)/.test(line)) before.push(synced > written);
  }
  return { lines: r.stdout.trim().split('\n'), synced: before, walSyncs };
}

test('a begin resolves only once the WAL holding its row is fsynced, inline or on the thread pool (strace of a writer)', (t) => {
  for (const fsyncs of ['inline', 'pooled'] as const) {
    const full = syncedBeforeEachLine(tempDbPath(t), 'begun', 'full', fsyncs);
    assert.deepEqual(full.lines, ['begun 1', 'begun 2', 'begun 3'], fsyncs);
    assert.deepEqual(full.synced, [true, true, true], fsyncs);
    assert.ok(full.walSyncs >= 3, `${fsyncs}: ${full.walSyncs} fsyncs of the WAL for 3 commits`);
  }
  // The same trace reading sees the difference when nothing syncs: the check above can fail.
  const normal = syncedBeforeEachLine(tempDbPath(t), 'begun', 'normal');
  assert.deepEqual(normal.synced, [false, false, false]);
});

test('an end resolves once committed, and reaches the disk with the next begin or soon after (strace of a writer)', (t) => {
  for (const fsyncs of ['inline', 'pooled'] as const) {
    const path = tempDbPath(t);
    const r = syncedBeforeEachLine(path, 'ended', 'full', fsyncs);
    assert.deepEqual(r.lines, ['begun 1', 'ended 1', 'begun 3', 'ended 3', 'begun 5', 'ended 5', 'quiet'], fsyncs);
    // `begun 3`: the fsync after begin 3's write carries end 1 (written before it). `quiet`: no begin came, the end was synced anyway.
    assert.deepEqual(r.synced, [true, false, true, false, true, false, true], `${fsyncs}: begins wait for the disk, ends for the commit`);
    const store = AuditStore.open(path);
    assert.deepEqual(store.list().map((a) => a.status), ['complete', 'complete', 'complete']);
    store.close();
  }
});

test('fsyncs run inline until they are slower than the limit; the next ones go to the thread pool for 1 s, then 2 s, …', async (t) => {
  const actions = async (store: AuditStore): Promise<void> => {
    for (let i = 0; i < 5; i++) await store.end(await store.begin(sampleBegin({ command: `c${i}` })), { exitCode: 0, durationMs: 1 });
  };
  const fast = AuditStore.open(tempDbPath(t), { inlineSyncMaxMs: 60_000 });
  await actions(fast);
  assert.deepEqual(fast.syncStats(), { inline: 5, pooled: 0 }, 'a begin each, inline: none took a minute');
  fast.close();
  // No real fsync takes less than a nanosecond: the first one is slow by this limit (on average too), and moves the rest.
  const slow = AuditStore.open(tempDbPath(t), { inlineSyncMaxMs: 1e-6 });
  await actions(slow);
  assert.deepEqual(slow.syncStats(), { inline: 1, pooled: 4 });
  assert.equal(slow.verify().ok, true);
  // A second later they are tried inline again: the first moves them for 2 s now.
  // (The last end's own fsync, 5 ms after it, is one more on the thread pool each time.)
  await sleep(1_100);
  await actions(slow);
  assert.deepEqual(slow.syncStats(), { inline: 2, pooled: 9 });
  await sleep(1_100);
  await actions(slow);
  assert.deepEqual(slow.syncStats(), { inline: 2, pooled: 15 }, 'not yet: 2 s');
  slow.close();
  const never = AuditStore.open(tempDbPath(t), { inlineSyncMaxMs: 0 });
  await actions(never);
  assert.deepEqual(never.syncStats(), { inline: 0, pooled: 5 });
  never.close();
});

test('a fan-out of 20 begin+end pairs takes two commits, and a lone pair two', async (t) => {
  const store = AuditStore.open(tempDbPath(t));
  await store.end(await store.begin(sampleBegin()), { exitCode: 0, durationMs: 1 });
  assert.deepEqual(store.writeStats(), { transactions: 2, rows: 2 });
  await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const id = await store.begin(sampleBegin({ command: `c${i}` }));
      await store.end(id, { exitCode: 0, durationMs: 1 });
    }),
  );
  assert.deepEqual(store.writeStats(), { transactions: 4, rows: 42 });
  assert.equal(store.verify().ok, true);
  store.close();
});

test('a commit that fails rejects every write of its batch and writes none; the next batch goes on', async (t) => {
  const path = tempDbPath(t);
  const store = AuditStore.open(path, { busyTimeoutMs: 50 });
  const running = await store.begin(sampleBegin({ command: 'running' }));
  const head = store.head();

  const locker = new Database(path);
  locker.exec('BEGIN IMMEDIATE');
  const batch = [
    store.begin(sampleBegin({ command: 'a' })),
    store.end(running, { exitCode: 0, durationMs: 1 }),
    store.begin(sampleBegin({ command: 'b' })),
    recordDenied(store, sampleBegin({ command: 'c' })),
  ];
  const settled = await Promise.allSettled(batch);
  locker.exec('ROLLBACK');
  locker.close();
  for (const s of settled) {
    assert.equal(s.status, 'rejected');
    assert.match(String((s as PromiseRejectedResult).reason), /locked|busy/i);
  }
  assert.deepEqual(store.head(), head, 'nothing of the failed batch was written');
  assert.deepEqual(store.writeStats(), { transactions: 1, rows: 1 });

  const next = await store.begin(sampleBegin({ command: 'after' }));
  assert.equal(next, head.seq + 1);
  await store.end(running, { exitCode: 0, durationMs: 1 });
  assert.equal(store.verify().ok, true);
  assert.deepEqual(
    store.list().map((a) => [a.begin.command, a.status]),
    [
      ['running', 'complete'],
      ['after', 'incomplete'],
    ],
  );
  store.close();
});

test('a refused end fails alone: the rest of its batch is written', async (t) => {
  const store = AuditStore.open(tempDbPath(t));
  const id = await store.begin(sampleBegin());
  const [first, again, unknown, other] = await Promise.allSettled([
    store.end(id, { exitCode: 0, durationMs: 1 }),
    store.end(id, { exitCode: 1, durationMs: 1 }),
    store.end(999, { exitCode: 0, durationMs: 1 }),
    store.begin(sampleBegin({ command: 'other' })),
  ]);
  assert.equal(first.status, 'fulfilled');
  assert.match(String(again.status === 'rejected' && again.reason), /action 1 has already ended/);
  assert.match(String(unknown.status === 'rejected' && unknown.reason), /no audit action 999/);
  assert.deepEqual(other, { status: 'fulfilled', value: 3 });
  assert.deepEqual(store.writeStats(), { transactions: 2, rows: 3 });
  assert.equal(store.list()[0]?.end?.exitCode, 0, 'the first end queued is the one written');
  assert.equal(store.verify().ok, true);
  store.close();
});

test('an end queued behind its begin in the same batch is written after it', async (t) => {
  const store = AuditStore.open(tempDbPath(t));
  // The id is not known before the begin resolves; on an empty store it will be 1.
  const [id] = await Promise.all([store.begin(sampleBegin()), store.end(1, { exitCode: 0, durationMs: 1 })]);
  assert.equal(id, 1);
  assert.deepEqual(store.writeStats(), { transactions: 1, rows: 2 });
  assert.equal(store.list()[0]?.status, 'complete');
  store.close();
});

test('record() writes a finished action in one transaction with its own decision', async (t) => {
  const store = AuditStore.open(tempDbPath(t));
  const id = await store.record(sampleBegin({ decision: 'allow', operation: 'host_key.accept' }), { exitCode: 0, durationMs: 0 });
  const denied = await recordDenied(store, sampleBegin());
  assert.deepEqual([id, denied], [1, 3]);
  assert.deepEqual(store.writeStats(), { transactions: 2, rows: 4 });
  assert.deepEqual(
    store.list().map((a) => [a.status, a.level, a.end?.exitCode]),
    [
      ['complete', 'info', 0],
      ['complete', 'deny', 77],
    ],
  );
  store.close();
});

test('close() writes what is still queued; writes after it reject', async (t) => {
  const path = tempDbPath(t);
  const store = AuditStore.open(path);
  const queued = store.begin(sampleBegin());
  const recorded = store.record(sampleBegin({ command: 'done' }), { exitCode: 0, durationMs: 0 });
  store.close();
  assert.equal(await queued, 1);
  assert.equal(await recorded, 2);
  await assert.rejects(store.begin(sampleBegin()), /closed/);
  store.close();

  const again = AuditStore.open(path);
  assert.equal(again.verify().checked, 3);
  again.close();
});

test('4 processes × 25 fan-outs of 8 actions (multi-row commits) keep one linear chain', async (t) => {
  const path = tempDbPath(t);
  const startAt = String(Date.now() + 400);
  const children = [0, 1, 2, 3].map((i) => spawnWriter(['fanout', path, '25', '8', `writer${i}`, startAt]));
  const stats = await Promise.all(children.map((c) => waitForLine(c, 'stats ')));
  const exits = await Promise.all(children.map(waitForExit));
  assert.deepEqual(exits, children.map(() => ({ code: 0, signal: null })));
  for (const s of stats) assert.equal(s, '50 400', 'each process: one commit per round of begins, one per round of ends');

  assertFourWritersChained(path);

  const db = new Database(path, { readonly: true });
  const { rows, uniq } = db.prepare('SELECT count(*) AS rows, count(DISTINCT prev_hash) AS uniq FROM audit').get() as { rows: number; uniq: number };
  db.close();
  assert.equal(uniq, rows, 'no two records chain to the same predecessor');
});

// perform() through a fan-out, with fake hosts.

const POLICIES = parsePolicies(
  `policies:
  p:
    capabilities:
      - operation: execute_binary
        resource: uptime
      - operation: write_stdout
        resource: { max_bytes: 4096 }
`,
  'test-policies.yaml',
);

const RESOLVER: PathResolver = { realpath: (p, cwd) => resolvePath(cwd, p), which: (name) => `/usr/bin/${name}` };

const OK: ExecResult = { exitCode: 0, signal: null, timedOut: false, aborted: false, truncated: false, bytesOut: 0, bytesErr: 0, durationMs: 1, error: null, errorKind: null };

function context(store: AuditStore, onExecute: (host: string) => void): PerformContext {
  return {
    principal: { name: 'tester', via: 'cli', scope: ADMIN_SCOPE },
    policies: POLICIES,
    defaultPolicy: 'p',
    defaultTimeoutMs: null,
    defaultPipefail: false,
    audit: store,
    hostEntry: (name) => ({ name, transport: 'local', labels: {}, builtin: false }),
    host: (name): Host => ({
      name,
      resolver: RESOLVER,
      // Like an SSH host: the resolver's answers come back over the network.
      resolverFor: async () => RESOLVER,
      defaultCwd: () => '/',
      sandboxSupport: () => Promise.resolve({ available: false, detail: 'test host', staticFallback: true }),
      openTerminal: () => Promise.reject(new Error('no terminals on this test host')),
      execute: async () => {
        onExecute(name);
        // The commands end together (in one turn of the event loop), so their ends share one commit.
        await new Promise((resolve) => setImmediate(resolve));
        return OK;
      },
    }),
  };
}

const HOSTS = Array.from({ length: 20 }, (_, i) => `h${i}`);
const NO_EVENTS = { onOutput: () => {}, onResult: () => {} };

test('a 20-host fan-out runs each command only after its begin is committed, in two commits', async (t) => {
  const path = tempDbPath(t);
  const store = AuditStore.open(path);
  const reader = new Database(path, { readonly: true });
  t.after(() => reader.close());
  const ran: string[] = [];
  const ctx = context(store, (host) => {
    assert.equal(committedBegins(reader, `host = '${host}'`), 1, `the begin for ${host} is committed before it runs`);
    ran.push(host);
  });
  const results = await fanOut(ctx, HOSTS, (host) => ({ kind: 'exec', host, command: 'uptime' }), NO_EVENTS, { concurrency: 20 });
  assert.equal(ran.length, 20);
  assert.ok([...results.values()].every((r) => r.outcome === 'ok'));
  // The ends are queued as the commands return (nobody waits for them): the reader writes them first.
  assert.ok(store.list().every((a) => a.status === 'complete'));
  assert.deepEqual(store.writeStats(), { transactions: 2, rows: 40 });
  store.close();
});

test('when the begins cannot be committed, nothing runs on any host of the fan-out', async (t) => {
  const path = tempDbPath(t);
  const store = AuditStore.open(path, { busyTimeoutMs: 50 });
  const ran: string[] = [];
  const ctx = context(store, (host) => ran.push(host));
  const locker = new Database(path);
  locker.exec('BEGIN IMMEDIATE');
  const results = await fanOut(ctx, HOSTS, (host) => ({ kind: 'exec', host, command: 'uptime' }), NO_EVENTS, { concurrency: 20 });
  locker.exec('ROLLBACK');
  locker.close();
  assert.deepEqual(ran, []);
  assert.equal(results.size, 20);
  for (const r of results.values()) {
    assert.equal(r.outcome, 'error');
    assert.equal(r.actionId, null);
    assert.match(r.message ?? '', /locked|busy/i);
  }
  assert.equal(store.head().seq, 0);
  store.close();
});
