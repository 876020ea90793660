import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { AuditStore, AuditStoreError } from '../../src/audit/index.js';
import { recordDenied, sampleBegin, tamper, tempDbPath } from './helpers.js';

/** Three complete actions and one denial: rows 1..8. */
async function populated(path: string): Promise<void> {
  const store = AuditStore.open(path);
  for (let i = 0; i < 3; i++) {
    const id = await store.begin(sampleBegin({ argv: ['cat', `/var/log/f${i}`] }));
    await store.end(id, { exitCode: i, durationMs: 12, bytesOut: 100 * i, bytesErr: 0 });
  }
  await recordDenied(store, { principal: 'bob', host: 'db1', operation: 'execute_binary', argv: ['rm', '-rf', '/'], reason: 'rm is denied' });
  store.close();
}

function verifyAt(path: string): ReturnType<AuditStore['verify']> {
  const store = AuditStore.open(path);
  try {
    return store.verify();
  } finally {
    store.close();
  }
}

test('an untouched chain verifies, and head() names its last record', async (t) => {
  const path = tempDbPath(t);
  await populated(path);
  const store = AuditStore.open(path);
  const result = store.verify();
  assert.equal(result.ok, true);
  assert.equal(result.checked, 8);
  assert.deepEqual(result.head, store.head());
  assert.equal(store.head().seq, 8);
  store.close();
});

test('an empty store verifies and has the genesis head', (t) => {
  const store = AuditStore.open(tempDbPath(t));
  assert.deepEqual(store.verify(), { ok: true, checked: 0, head: { seq: 0, hash: '0'.repeat(64) } });
  store.close();
});

test('an edited field is reported at its record', async (t) => {
  const path = tempDbPath(t);
  await populated(path);
  tamper(path, (db) => db.prepare('UPDATE audit SET exit_code = 0 WHERE seq = 6').run());
  const result = verifyAt(path);
  assert.equal(result.ok, false);
  assert.equal(result.firstBad?.seq, 6);
  assert.match(result.firstBad?.reason ?? '', /edited/);
  assert.equal(result.checked, 5);
});

test('an edited and re-hashed record is caught by the next one', async (t) => {
  const path = tempDbPath(t);
  await populated(path);
  tamper(path, (db) => {
    const row = db.prepare('SELECT * FROM audit WHERE seq = 3').get() as Record<string, unknown>;
    const fields = { ...row, principal: 'mallory' } as Record<string, unknown>;
    delete fields.prev_hash;
    delete fields.hash;
    for (const k of Object.keys(fields)) if (fields[k] === null) delete fields[k];
    const hash = createHash('sha256').update(String(row.prev_hash)).update(JSON.stringify(fields)).digest('hex');
    db.prepare("UPDATE audit SET principal = 'mallory', hash = ? WHERE seq = 3").run(hash);
  });
  const result = verifyAt(path);
  assert.equal(result.firstBad?.seq, 4);
  assert.match(result.firstBad?.reason ?? '', /prev_hash/);
});

test('a deleted middle record is reported', async (t) => {
  const path = tempDbPath(t);
  await populated(path);
  tamper(path, (db) => db.prepare('DELETE FROM audit WHERE seq = 4').run());
  const result = verifyAt(path);
  assert.equal(result.ok, false);
  assert.equal(result.firstBad?.seq, 5);
  assert.match(result.firstBad?.reason ?? '', /records 4\.\.4 are missing/);
});

test('a deleted first record is reported', async (t) => {
  const path = tempDbPath(t);
  await populated(path);
  tamper(path, (db) => db.prepare('DELETE FROM audit WHERE seq = 1').run());
  assert.match(verifyAt(path).firstBad?.reason ?? '', /starts at 2/);
});

test('two records with swapped contents are reported at the first', async (t) => {
  const path = tempDbPath(t);
  await populated(path);
  tamper(path, (db) => {
    const get = db.prepare('SELECT * FROM audit WHERE seq = ?');
    const a = get.get(3) as Record<string, unknown>;
    const b = get.get(5) as Record<string, unknown>;
    const cols = Object.keys(a).filter((c) => c !== 'seq');
    const set = db.prepare(`UPDATE audit SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE seq = @seq`);
    db.transaction(() => {
      set.run({ ...b, seq: 3 });
      set.run({ ...a, seq: 5 });
    })();
  });
  const result = verifyAt(path);
  assert.equal(result.firstBad?.seq, 3);
});

test('removing records from the end is only caught against an anchored head', async (t) => {
  const path = tempDbPath(t);
  await populated(path);
  let store = AuditStore.open(path);
  const anchor = store.head();
  store.close();
  tamper(path, (db) => db.prepare('DELETE FROM audit WHERE seq >= 7').run());
  store = AuditStore.open(path);
  assert.equal(store.verify().ok, true, 'a shorter chain is still a valid chain');
  const result = store.verify(anchor);
  assert.equal(result.ok, false);
  assert.equal(result.firstBad?.seq, 8);
  assert.match(result.firstBad?.reason ?? '', /removed from the end/);
  store.close();
});

test('an anchored head that was rewritten is reported', async (t) => {
  const path = tempDbPath(t);
  await populated(path);
  const store = AuditStore.open(path);
  assert.equal(store.verify({ seq: 5, hash: 'f'.repeat(64) }).firstBad?.seq, 5);
  assert.equal(store.verify(store.head()).ok, true);
  store.close();
});

test('the table refuses UPDATE and DELETE through ordinary SQL', async (t) => {
  const path = tempDbPath(t);
  await populated(path);
  const db = new Database(path);
  assert.throws(() => db.prepare('UPDATE audit SET host = ? WHERE seq = 1').run('x'), /append-only/);
  assert.throws(() => db.prepare('DELETE FROM audit').run(), /append-only/);
  db.close();
});

test('end() of an unknown or already ended action rejects and writes nothing', async (t) => {
  const store = AuditStore.open(tempDbPath(t));
  const id = await store.begin(sampleBegin());
  await store.end(id, { exitCode: 0, durationMs: 1 });
  await assert.rejects(store.end(id, { exitCode: 0, durationMs: 1 }), /already ended/);
  await assert.rejects(store.end(999, { exitCode: 0, durationMs: 1 }), /no audit action 999/);
  await assert.rejects(store.end(id + 1, { exitCode: 0, durationMs: 1 }), /no audit action/, 'an end row is not an action');
  assert.equal(store.head().seq, 2);
  assert.equal(store.verify().ok, true);
  store.close();
});

test('strings SQLite cannot keep verbatim (lone surrogates, NUL) still verify', async (t) => {
  const path = tempDbPath(t);
  const store = AuditStore.open(path);
  const id = await store.begin(sampleBegin({ argv: ['echo', 'a\uD800b', 'nul\0byte'], command: 'echo \uDC00' }));
  await store.end(id, { exitCode: 0, durationMs: 1, error: 'x\uD83D' });
  assert.equal(store.verify().ok, true);
  assert.deepEqual(store.list()[0]?.begin.argv, ['echo', 'a\uFFFDb', 'nul\0byte']);
  store.close();
});

test('exported JSONL re-verifies with an independent implementation', async (t) => {
  const path = tempDbPath(t);
  await populated(path);
  const store = AuditStore.open(path);
  const lines: string[] = [];
  store.exportJsonl((line) => lines.push(line));
  store.close();
  assert.equal(lines.length, 8);

  // The documented rule: hash = sha256(prev_hash + JSON of the line without prev_hash and hash).
  const check = (jsonl: string[]): number | null => {
    let prev = '0'.repeat(64);
    for (const [i, line] of jsonl.entries()) {
      const { prev_hash, hash, ...fields } = JSON.parse(line) as Record<string, unknown>;
      const recomputed = createHash('sha256').update(prev + JSON.stringify(fields)).digest('hex');
      if (fields.seq !== i + 1 || prev_hash !== prev || recomputed !== hash) return i + 1;
      prev = String(hash);
    }
    return null;
  };
  assert.equal(check(lines), null);
  const first = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
  assert.equal(first.kind, 'begin');
  assert.equal(first.argv, JSON.stringify(['cat', '/var/log/f0']));
  assert.equal('exit_code' in first, false, 'null columns are left out');

  const edited = [...lines];
  edited[5] = (edited[5] ?? '').replace('"exit_code":2', '"exit_code":0');
  assert.notEqual(edited[5], lines[5]);
  assert.equal(check(edited), 6);
});

test('a new store is created with private permissions and reopens', async (t) => {
  const path = tempDbPath(t);
  const store = AuditStore.open(path);
  await store.begin(sampleBegin());
  assert.equal(statSync(dirname(path)).mode & 0o777, 0o700);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(statSync(`${path}-wal`).mode & 0o777, 0o600);
  store.close();
  const again = AuditStore.open(path);
  assert.equal(again.list()[0]?.status, 'incomplete');
  again.close();
});

test('a file that is not SQLite gets an error naming the path and the way out', (t) => {
  const path = tempDbPath(t);
  AuditStore.open(path).close();
  writeFileSync(path, 'this is not a database, just some text that is long enough to look like a header'.repeat(100));
  assert.throws(
    () => AuditStore.open(path),
    (e: unknown) => e instanceof AuditStoreError && e.message.includes(path) && /not a readable SQLite database.*mv /.test(e.message),
  );
});

test('another SQLite database, or a newer schema, is refused', (t) => {
  const path = tempDbPath(t);
  AuditStore.open(path).close();
  const other = `${path}.other`;
  const db = new Database(other);
  db.exec('CREATE TABLE notes (x TEXT)');
  db.close();
  assert.throws(() => AuditStore.open(other), /not a remux audit store/);

  const raw = new Database(path);
  raw.pragma('user_version = 99');
  raw.close();
  assert.throws(() => AuditStore.open(path), /schema version 99.*upgrade remux/);
});
