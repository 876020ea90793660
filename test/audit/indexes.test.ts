// The filters `audit ls` and the console run (host, principal, and a scoped principal's principal + since)
// read through an index (schema v4), not every row down to the limit. A store written before them (the v1
// fixture, as every older store) gets them when opened and keeps verifying; list() answers as before.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { AuditStore, listQuery } from '../../src/audit/store.js';
import type { ListOptions } from '../../src/audit/types.js';
import { sampleBegin, tempDbPath } from './helpers.js';

const V1_STORE = fileURLToPath(new URL('../../../test/audit/fixtures/v1-store.db', import.meta.url));

/** SQLite's plan for list(options) on the store at `path`, its steps joined. */
function planOf(path: string, options: ListOptions): string {
  const db = new Database(path, { readonly: true });
  try {
    const { sql, params } = listQuery(options);
    return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail).join(' | ');
  } finally {
    db.close();
  }
}

function indexesOf(path: string): string[] {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);
  } finally {
    db.close();
  }
}

test('an older store gets the host and principal indexes when opened, keeps verifying, and its filters use them', async (t) => {
  const path = tempDbPath(t);
  mkdirSync(dirname(path), { recursive: true });
  copyFileSync(V1_STORE, path);
  assert.deepEqual(indexesOf(path), ['audit_end_once']);

  const store = AuditStore.open(path);
  const old = store.list();
  assert.deepEqual(indexesOf(path), ['audit_end_once', 'audit_host', 'audit_principal']);
  assert.equal(store.verify().ok, true);
  // New records go on the chain and into the indexes; the filters answer as they did, newest last.
  await store.record(sampleBegin({ host: 'db9', principal: 'zed' }), { exitCode: 0, durationMs: 1 });
  const id = await store.record(sampleBegin({ host: 'db9', principal: 'zed' }), { exitCode: 1, durationMs: 1 });
  assert.equal(store.verify().ok, true);
  for (const a of old) {
    assert.ok(store.list({ host: a.begin.host }).some((b) => b.id === a.id), `${a.id} by its host`);
    assert.ok(store.list({ principal: a.begin.principal }).some((b) => b.id === a.id), `${a.id} by its principal`);
  }
  assert.deepEqual(store.list({ host: 'db9', limit: 1 }).map((a) => a.id), [id]);
  assert.deepEqual(store.list({ principal: 'zed', level: 'warn' }).map((a) => a.id), [id]);
  store.close();

  // Ordered by the index too: no sort of every match for the newest `limit`.
  for (const [options, index] of [
    [{ host: 'web1', limit: 50 }, 'audit_host'],
    [{ host: 'web1', limit: 50, beforeSeq: 5, level: 'warn' }, 'audit_host'],
    [{ principal: 'alice', limit: 50 }, 'audit_principal'],
    [{ principal: 'alice', since: '2026-01-01T00:00:00.000Z', limit: 100 }, 'audit_principal'],
  ] as const) {
    const plan = planOf(path, options);
    assert.match(plan, new RegExp(`^SEARCH b USING INDEX ${index} `), `${JSON.stringify(options)}: ${plan}`);
    assert.doesNotMatch(plan, /TEMP B-TREE/, `${JSON.stringify(options)}: ${plan}`);
  }
});
