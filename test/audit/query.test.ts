import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuditStore, cursorOf, levelsShown, type AuditAction, type AuditLevel } from '../../src/audit/index.js';
import { recordDenied, sampleBegin, spawnWriter, tempDbPath, waitForExit } from './helpers.js';

test('levelsShown: info shows all, warn shows warn and worse, error and deny only themselves', () => {
  assert.deepEqual(levelsShown('info'), ['info', 'warn', 'error', 'deny']);
  assert.deepEqual(levelsShown('warn'), ['warn', 'error', 'deny']);
  assert.deepEqual(levelsShown('error'), ['error']);
  assert.deepEqual(levelsShown('deny'), ['deny']);
});

/** One action of each outcome; returns the expected level by command. */
async function mixed(store: AuditStore): Promise<Map<string, AuditLevel>> {
  const expected = new Map<string, AuditLevel>();
  const run = async (command: string, level: AuditLevel, end: Parameters<AuditStore['end']>[1] | null, decision: 'allow' | 'ask' = 'allow'): Promise<void> => {
    const id = await store.begin(sampleBegin({ command, argv: command.split(' '), decision }));
    if (end) await store.end(id, end);
    expected.set(command, level);
  };
  await run('ok', 'info', { exitCode: 0, durationMs: 5 });
  await run('fails', 'warn', { exitCode: 1, durationMs: 5 });
  await run('slow', 'warn', { exitCode: null, signal: 'SIGKILL', timedOut: true, durationMs: 5000 });
  await run('chatty', 'warn', { exitCode: 0, truncated: true, durationMs: 5, bytesOut: 1 << 20 });
  await run('unreachable', 'error', { exitCode: null, error: 'connect ECONNREFUSED', durationMs: 30 });
  await run('refused', 'deny', { exitCode: 77, refusal: 'approval expired', durationMs: 60_000 }, 'ask');
  await run('running', 'info', null);
  await recordDenied(store, { principal: 'bob', host: 'db1', operation: 'execute_binary', command: 'forbidden', reason: 'no rule allows it' });
  expected.set('forbidden', 'deny');
  return expected;
}

test('each outcome gets its level, and --level filters by it', async (t) => {
  const store = AuditStore.open(tempDbPath(t));
  const expected = await mixed(store);
  const all = store.list();
  assert.deepEqual(
    all.map((a) => [a.begin.command, a.level]),
    [...expected.entries()],
  );
  const commands = (level: AuditLevel): Array<string | null> => store.list({ level }).map((a) => a.begin.command);
  assert.deepEqual(commands('info'), [...expected.keys()]);
  assert.deepEqual(commands('warn'), ['fails', 'slow', 'chatty', 'unreachable', 'refused', 'forbidden']);
  assert.deepEqual(commands('error'), ['unreachable']);
  assert.deepEqual(commands('deny'), ['refused', 'forbidden']);
  store.close();
});

test('list joins begin and end, and marks an action without end incomplete', async (t) => {
  const store = AuditStore.open(tempDbPath(t));
  await mixed(store);
  const [refused, running, forbidden] = store.list({ limit: 3 });
  assert.equal(refused?.end?.refusal, 'approval expired');
  assert.equal(refused?.begin.decision, 'ask');
  assert.equal(running?.status, 'incomplete');
  assert.equal(running?.end, null);
  assert.equal(forbidden?.status, 'complete', 'a denial is written with its end');
  assert.equal(forbidden?.end?.exitCode, 77);
  assert.equal(forbidden?.begin.decision, 'deny');
  store.close();
});

test('list filters by host, principal and seq, and limit keeps the newest', async (t) => {
  const store = AuditStore.open(tempDbPath(t));
  const ids: number[] = [];
  for (let i = 0; i < 6; i++) {
    const id = await store.begin(sampleBegin({ host: i % 2 ? 'odd' : 'even', principal: i < 3 ? 'alice' : 'bob', command: `c${i}` }));
    await store.end(id, { exitCode: 0, durationMs: 1 });
    ids.push(id);
  }
  const cmds = (o: Parameters<AuditStore['list']>[0]): Array<string | null> => store.list(o).map((a) => a.begin.command);
  assert.deepEqual(cmds({ host: 'odd' }), ['c1', 'c3', 'c5']);
  assert.deepEqual(cmds({ principal: 'bob', host: 'even' }), ['c4']);
  assert.deepEqual(cmds({ sinceSeq: ids[3] }), ['c4', 'c5']);
  assert.deepEqual(cmds({ limit: 2 }), ['c4', 'c5']);
  assert.deepEqual(cmds({ host: 'nowhere' }), []);
  store.close();
});

test('beforeSeq lists only older actions, limit the newest of those, filters before the limit; page() names where the older ones start', async (t) => {
  const store = AuditStore.open(tempDbPath(t));
  const ids: number[] = [];
  for (let i = 0; i < 10; i++) {
    const id = await store.begin(sampleBegin({ host: i % 3 === 0 ? 'three' : 'other', command: `c${i}` }));
    await store.end(id, { exitCode: i === 4 ? 1 : 0, durationMs: 1 });
    ids.push(id);
  }
  const cmds = (o: Parameters<AuditStore['list']>[0]): Array<string | null> => store.list(o).map((a) => a.begin.command);
  assert.deepEqual(cmds({ beforeSeq: ids[3] }), ['c0', 'c1', 'c2']);
  assert.deepEqual(cmds({ beforeSeq: ids[8], limit: 3 }), ['c5', 'c6', 'c7']);
  // c0, c3, c6, c9 are on host three: the two newest of those before c9.
  assert.deepEqual(cmds({ beforeSeq: ids[9], host: 'three', limit: 2 }), ['c3', 'c6']);
  assert.deepEqual(cmds({ beforeSeq: ids[9], level: 'warn' }), ['c4']);
  assert.deepEqual(cmds({ beforeSeq: ids[0] }), []);

  const page = (o: Parameters<AuditStore['page']>[0]): [Array<string | null>, number | null] => {
    const p = store.page(o);
    return [p.actions.map((a) => a.begin.command), p.next];
  };
  assert.deepEqual(page({ limit: 4 }), [['c6', 'c7', 'c8', 'c9'], ids[6]]);
  assert.deepEqual(page({ limit: 4, beforeSeq: ids[6] }), [['c2', 'c3', 'c4', 'c5'], ids[2]]);
  assert.deepEqual(page({ limit: 2, beforeSeq: ids[2] }), [['c0', 'c1'], null], 'a page holding the oldest ones has no next');
  assert.deepEqual(page({ limit: 2, host: 'three', beforeSeq: ids[6] }), [['c0', 'c3'], null]);
  assert.deepEqual(page({}), [['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9'], null], 'no limit: all');
  store.close();
});

test('secrets never reach the store', async (t) => {
  const store = AuditStore.open(tempDbPath(t));
  const id = await store.begin(
    sampleBegin({
      argv: ['mysql', '-phunter2'],
      command: 'mysql -phunter2',
      resource: 'https://u:hunter2@h/x',
      reason: 'PASSWORD=hunter2 seen',
    }),
  );
  await store.end(id, { exitCode: 1, durationMs: 1, error: 'auth failed for --password hunter2' });
  const lines: string[] = [];
  store.exportJsonl((l) => lines.push(l));
  assert.equal(lines.length, 2);
  assert.ok(!lines.join('\n').includes('hunter2'));
  store.close();
});

test('follow reports actions appended by another process, incomplete then complete', async (t) => {
  const path = tempDbPath(t);
  const store = AuditStore.open(path);
  await store.end(await store.begin(sampleBegin({ command: 'before' })), { exitCode: 0, durationMs: 1 });
  const seen: AuditAction[] = [];
  const controller = new AbortController();
  let done: () => void = () => undefined;
  const allComplete = new Promise<void>((resolve) => (done = resolve));
  const following = store.follow(
    store.head().seq,
    (a) => {
      seen.push(a);
      if (seen.filter((s) => s.status === 'complete').length === 3) done();
    },
    controller.signal,
    { intervalMs: 20 },
  );
  // Pausing 150 ms between each begin and end lets the poller see every action running first.
  const child = spawnWriter(['pairs', path, '3', 'remote', '150']);
  const timeout = setTimeout(() => controller.abort(), 5000);
  await allComplete;
  controller.abort();
  clearTimeout(timeout);
  await following;
  assert.equal((await waitForExit(child)).code, 0);
  assert.ok(seen.every((a) => a.begin.principal === 'remote'), 'nothing from before fromSeq');
  assert.deepEqual(
    seen.map((a) => [a.id, a.status]),
    [2, 4, 6].flatMap((id) => [
      [id + 1, 'incomplete'],
      [id + 1, 'complete'],
    ]),
  );
  store.close();
});

test('follow reports a begin and end seen together once, and applies the filter', async (t) => {
  const store = AuditStore.open(tempDbPath(t));
  const seen: AuditAction[] = [];
  const controller = new AbortController();
  const following = store.follow(0, (a) => seen.push(a), controller.signal, { intervalMs: 10, level: 'warn' });
  await store.end(await store.begin(sampleBegin({ command: 'ok' })), { exitCode: 0, durationMs: 1 });
  await store.end(await store.begin(sampleBegin({ command: 'bad' })), { exitCode: 2, durationMs: 1 });
  await recordDenied(store, sampleBegin({ command: 'no' }));
  while (seen.length < 2) await new Promise((r) => setTimeout(r, 10));
  controller.abort();
  await following;
  assert.deepEqual(
    seen.map((a) => [a.begin.command, a.status, a.level]),
    [
      ['bad', 'complete', 'warn'],
      ['no', 'complete', 'deny'],
    ],
  );
  store.close();
});

test('follow reports actions in the order of their latest row: resuming from any cursor it gave misses nothing', async (t) => {
  const store = AuditStore.open(tempDbPath(t));
  const first = await store.begin(sampleBegin({ command: 'first' }));
  await store.begin(sampleBegin({ command: 'second' }));
  await store.end(first, { exitCode: 0, durationMs: 1 });
  const follow = async (from: number): Promise<AuditAction[]> => {
    const seen: AuditAction[] = [];
    const controller = new AbortController();
    const following = store.follow(from, (a) => seen.push(a), controller.signal, { intervalMs: 10 });
    while (seen.length < 1) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    await following;
    return seen;
  };
  // Rows: 1 begin first, 2 begin second, 3 end first. In action order, `first` (cursor 3) would come
  // before `second` (cursor 2), and a reader resuming from 3 would never see `second`.
  const seen = await follow(0);
  assert.deepEqual(seen.map((a) => [a.begin.command, a.status, cursorOf(a)]), [['second', 'incomplete', 2], ['first', 'complete', 3]]);
  assert.deepEqual((await follow(cursorOf(seen[0]!))).map((a) => [a.begin.command, a.status]), [['first', 'complete']]);
  store.close();
});
