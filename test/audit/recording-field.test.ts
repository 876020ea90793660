// The audit record's `recording` field (schema v2): a store written by remux before the field existed
// (test/audit/fixtures/v1-store.db, made by the v1 code: 7 rows, an attach whose reason named its
// recording, an action left incomplete) opens, migrates, keeps verifying — with the store and with
// `remux audit verify` — and goes on chaining records that carry the field, which the hash covers.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { actionJson } from '../../src/audit/json.js';
import { AuditStore } from '../../src/audit/index.js';
import { remux, tempHome } from '../support/cli.js';
import { sampleBegin, tamper, tempDbPath } from './helpers.js';

const V1_STORE = fileURLToPath(new URL('../../../test/audit/fixtures/v1-store.db', import.meta.url));
const REC_ID = '20261204T091500Z-00112233aabb';

function v1Copy(path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  copyFileSync(V1_STORE, path);
}

function schemaOf(path: string): { version: number; columns: string[] } {
  const db = new Database(path, { readonly: true });
  try {
    return {
      version: Number(db.pragma('user_version', { simple: true })),
      columns: (db.prepare('PRAGMA table_info(audit)').all() as Array<{ name: string }>).map((c) => c.name),
    };
  } finally {
    db.close();
  }
}

test('a v1 store migrates to v2: its records keep verifying and read back with recording null', (t) => {
  const path = tempDbPath(t);
  v1Copy(path);
  assert.equal(schemaOf(path).version, 1);
  assert.ok(!schemaOf(path).columns.includes('recording'));
  const store = AuditStore.open(path);
  const verified = store.verify();
  assert.deepEqual({ ok: verified.ok, checked: verified.checked }, { ok: true, checked: 7 });
  assert.equal(verified.head.hash, 'ff308f47c779af11cbf5a83f6f613ff58a8f562f726b808031333fd12a04ae7e', 'the head the v1 code wrote');
  const actions = store.list();
  assert.deepEqual(actions.map((a) => [a.begin.operation, a.status, a.begin.recording]), [
    ['execute_binary', 'complete', null],
    ['execute_binary', 'complete', null],
    ['session.attach', 'complete', null],
    ['execute_binary', 'incomplete', null],
  ]);
  assert.equal(actionJson(actions[2]!).recording, null);
  store.close();
  // Migrated to the current version: v2's column and those after it (v3: approval; v4: indexes).
  assert.equal(schemaOf(path).version, 4);
  assert.ok(schemaOf(path).columns.includes('recording'));
});

test('after migrating, new records carry the field, the chain links across the versions, and the hash covers it', async (t) => {
  const path = tempDbPath(t);
  v1Copy(path);
  const store = AuditStore.open(path);
  const id = await store.begin(sampleBegin({ operation: 'session.attach', argv: null, command: null, resource: 'me@local:work', recording: REC_ID }));
  await store.end(id, { exitCode: 0, durationMs: 40 });
  // The action v1 left running can still be completed.
  await store.end(7, { exitCode: 0, durationMs: 100 });
  assert.deepEqual(store.verify().ok, true);
  assert.equal(store.verify().checked, 10);
  const attach = store.list().find((a) => a.id === id)!;
  assert.equal(attach.begin.recording, REC_ID);
  assert.equal(actionJson(attach).recording, REC_ID);
  const exported: Array<Record<string, unknown>> = [];
  store.exportJsonl((line) => exported.push(JSON.parse(line) as Record<string, unknown>));
  assert.equal(exported.find((r) => r.seq === id)?.recording, REC_ID);
  assert.ok(!('recording' in exported[0]!), 'a v1 row hashes (and exports) without the column');
  store.close();

  // Pointing an attach's record at another recording is an edit like any other.
  tamper(path, (db) => db.prepare('UPDATE audit SET recording = ? WHERE seq = ?').run('20261204T091500Z-ffffffffffff', id));
  const reopened = AuditStore.open(path);
  const result = reopened.verify();
  reopened.close();
  assert.equal(result.ok, false);
  assert.equal(result.firstBad?.seq, id);
  assert.match(result.firstBad?.reason ?? '', /edited/);
});

test('a recording added afterwards to a v1 record is caught as an edit', async (t) => {
  const path = tempDbPath(t);
  v1Copy(path);
  AuditStore.open(path).close();
  tamper(path, (db) => db.prepare("UPDATE audit SET recording = ? WHERE seq = 5").run(REC_ID));
  const store = AuditStore.open(path);
  const result = store.verify();
  store.close();
  assert.equal(result.firstBad?.seq, 5);
});

test('`remux audit verify` verifies a v1 store it migrates, and `audit ls --json` shows the field', async (t) => {
  const h = tempHome();
  t.after(() => h.remove());
  v1Copy(join(h.home, 'audit.db'));
  const v = await remux(['audit', 'verify'], { env: h.env });
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout + v.stderr, /7/);
  const store = AuditStore.open(join(h.home, 'audit.db'));
  await store.record(sampleBegin({ operation: 'session.attach', recording: REC_ID }), { exitCode: 0, durationMs: 1 });
  store.close();
  const ls = await remux(['audit', 'ls', '--json', '--limit', '0'], { env: h.env });
  assert.equal(ls.code, 0, ls.stderr);
  const rows = ls.stdout.trim().split('\n').map((l) => JSON.parse(l) as { recording: string | null });
  assert.deepEqual(rows.map((r) => r.recording), [null, null, null, null, REC_ID]);
  assert.equal((await remux(['audit', 'verify'], { env: h.env })).code, 0);
});
