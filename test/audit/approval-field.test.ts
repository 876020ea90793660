// The end record's `approval` field (schema v3): how an ask was answered. A store written before it
// (the v1 fixture) migrates and keeps verifying; new ends carry the field, read back as written, exported,
// and covered by the hash like every column.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { actionJson } from '../../src/audit/json.js';
import { AuditStore, type AuditApproval } from '../../src/audit/index.js';
import { sampleBegin, tamper, tempDbPath } from './helpers.js';

const V1_STORE = fileURLToPath(new URL('../../../test/audit/fixtures/v1-store.db', import.meta.url));
const APPROVED: AuditApproval = { outcome: 'approved', by: 'ops-admin', via: 'web', id: '0123456789abcdef0123456789abcdef' };

test('an end carries how its ask was answered: read back, in the JSON, exported; v1 records verify and have none', async (t) => {
  const path = tempDbPath(t);
  mkdirSync(dirname(path), { recursive: true });
  copyFileSync(V1_STORE, path);
  const store = AuditStore.open(path);
  const id = await store.begin(sampleBegin({ decision: 'ask', reason: 'rm needs a person' }));
  await store.end(id, { exitCode: 0, durationMs: 12, approval: APPROVED });
  const refused = await store.record(sampleBegin({ decision: 'ask' }), { exitCode: 77, durationMs: 3, refusal: 'approval refused by ops-admin via web', approval: { ...APPROVED, outcome: 'refused' } });
  assert.equal(store.verify().ok, true);
  const actions = store.list();
  assert.deepEqual(actions.find((a) => a.id === id)?.end?.approval, APPROVED);
  assert.deepEqual(actionJson(actions.find((a) => a.id === refused)!).approval, { ...APPROVED, outcome: 'refused' });
  assert.equal(actions.find((a) => a.id === refused)?.level, 'deny');
  assert.deepEqual(actions.filter((a) => a.id < id).map((a) => actionJson(a).approval), [null, null, null, null]);
  const exported: Array<Record<string, unknown>> = [];
  store.exportJsonl((line) => exported.push(JSON.parse(line) as Record<string, unknown>));
  assert.deepEqual(JSON.parse(String(exported.find((r) => r.action_id === id && r.kind === 'end')?.approval)), APPROVED);
  store.close();

  // Naming another approver afterwards is an edit like any other.
  tamper(path, (db) => db.prepare("UPDATE audit SET approval = ? WHERE action_id = ? AND kind = 'end'").run(JSON.stringify({ ...APPROVED, by: 'mallory' }), id));
  const reopened = AuditStore.open(path);
  const result = reopened.verify();
  reopened.close();
  assert.equal(result.ok, false);
  assert.match(result.firstBad?.reason ?? '', /edited/);
});
