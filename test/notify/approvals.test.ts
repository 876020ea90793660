// Approvals: decision-link tokens (forged, moved, replayed, siblings, expired, across a restart) and waiting.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { ApprovalError, ApprovalStore, HANDED_OVER, type ApprovalRequest } from '../../src/notify/approvals.js';

function files(t: TestContext): { db: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'remux-approvals-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { db: join(dir, 'approvals.db'), key: join(dir, 'approvals.key') };
}

function open(t: TestContext, f: { db: string; key: string }, now?: () => number): ApprovalStore {
  const store = ApprovalStore.open(f.db, f.key, now ? { now } : {});
  t.after(() => store.close());
  return store;
}

const REQUEST: ApprovalRequest = { principal: 'ci-bot', host: 'web1', what: 'run `rm -r /tmp/x` on web1', reason: 'admin#3 asks for rm', source: 'policy', ttlMs: 60_000 };

function refusal(fn: () => unknown, code: ApprovalError['code']): void {
  assert.throws(fn, (e: unknown) => e instanceof ApprovalError && e.code === code, `expected ${code}`);
}

test('a decision link answers once; its replay and its sibling are refused', (t) => {
  const store = open(t, files(t));
  const a = store.create(REQUEST);
  assert.match(a.id, /^[0-9a-f]{32}$/, '128-bit id, never read as a CLI option');
  const approveToken = store.token(a, 'approve');
  assert.equal(Buffer.from(approveToken, 'base64url').length, 32, 'full-length HMAC-SHA256');
  const denyToken = store.token(a, 'deny');

  const answered = store.answerWithToken(a.id, 'approve', approveToken, 'link');
  assert.equal(answered.status, 'answered');
  assert.equal(answered.answer, 'approve');
  assert.equal(answered.answeredBy, 'link', 'a link holder answered, not ci-bot who asked');
  refusal(() => store.answerWithToken(a.id, 'approve', approveToken, 'link'), 'conflict');
  refusal(() => store.answerWithToken(a.id, 'deny', denyToken, 'link'), 'conflict');
  assert.equal(store.get(a.id)?.answer, 'approve', 'the first answer stands');
});

test('what an approval shows is stored with secrets redacted, whoever asked: its page reaches whoever holds a link', (t) => {
  const f = files(t);
  const store = open(t, f);
  const token = 'ghp_' + 'a'.repeat(36);
  const a = store.create({ ...REQUEST, what: `answer claude's prompt: Run curl -H "Authorization: Bearer ${token}" https://api.example/?`, reason: `GITHUB_TOKEN=${token} gh pr create` });
  for (const shown of [a, store.get(a.id)!]) {
    assert.equal(shown.what, 'answer claude\'s prompt: Run curl -H "Authorization: Bearer [REDACTED]" https://api.example/?');
    assert.equal(shown.reason, 'GITHUB_TOKEN=[REDACTED] gh pr create');
  }
  const raw = new Database(f.db, { readonly: true });
  t.after(() => raw.close());
  assert.equal(JSON.stringify(raw.prepare('SELECT * FROM approvals').all()).includes(token), false, 'not on disk either');
});

test('a link answer names the channels its links were sent to; a file of an older remux gains the column', (t) => {
  const f = files(t);
  const old = new Database(f.db);
  old.exec(`CREATE TABLE approvals (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, principal TEXT NOT NULL, host TEXT,
    what TEXT NOT NULL, reason TEXT NOT NULL, source TEXT NOT NULL, options TEXT NOT NULL, status TEXT NOT NULL, answer TEXT, answered_by TEXT,
    answered_via TEXT, answered_at INTEGER)`);
  old.close();
  const store = open(t, f);
  const a = store.create(REQUEST);
  assert.deepEqual(store.get(a.id)?.sentTo, []);
  store.sentThrough(a.id, ['ntfy', 'ops-hook']);
  const answered = store.answerWithToken(a.id, 'deny', store.token(a, 'deny'), 'ntfy');
  assert.deepEqual([answered.answeredBy, answered.answeredVia, answered.sentTo], ['link (sent to ntfy, ops-hook)', 'ntfy', ['ntfy', 'ops-hook']]);
});

test('forged tokens: made up, for another option, for another approval, truncated', (t) => {
  const store = open(t, files(t));
  const a = store.create(REQUEST);
  const b = store.create(REQUEST);
  const good = store.token(a, 'deny');
  refusal(() => store.answerWithToken(a.id, 'approve', 'A'.repeat(43), 'link'), 'forbidden');
  refusal(() => store.answerWithToken(a.id, 'approve', good, 'link'), 'forbidden'); // deny's token on approve
  refusal(() => store.answerWithToken(b.id, 'deny', good, 'link'), 'forbidden'); // a's token on b
  refusal(() => store.answerWithToken(a.id, 'deny', good.slice(0, 20), 'link'), 'forbidden');
  refusal(() => store.answerWithToken('0'.repeat(32), 'deny', good, 'link'), 'forbidden');
  assert.equal(store.get(a.id)?.status, 'pending', 'nothing answered');
});

test('a token signed by another key (another remux home) is refused', (t) => {
  const mine = open(t, files(t));
  const theirs = open(t, files(t));
  const a = mine.create(REQUEST);
  refusal(() => mine.answerWithToken(a.id, 'approve', theirs.token(a, 'approve'), 'link'), 'forbidden');
});

test('past its expiry an approval cannot be answered, and its waiter hears expired, never allow', async (t) => {
  let now = 1_000_000;
  const store = open(t, files(t), () => now);
  const a = store.create({ ...REQUEST, ttlMs: 5_000 });
  const token = store.token(a, 'approve');
  now += 5_000;
  refusal(() => store.answerWithToken(a.id, 'approve', token, 'link'), 'conflict');
  assert.equal(store.get(a.id)?.status, 'expired');
  assert.deepEqual(await store.wait(a.id), { status: 'expired' });
  // A token whose expiry was rewritten does not verify: the expiry is inside the HMAC.
  assert.notEqual(store.token({ id: a.id, expiresAt: a.expiresAt + 60_000 }, 'approve'), token);
});

test('an expiry timer tells a waiter without anyone looking', async (t) => {
  const store = open(t, files(t));
  const a = store.create({ ...REQUEST, ttlMs: 50 });
  const started = Date.now();
  assert.deepEqual(await store.wait(a.id, undefined, 60_000), { status: 'expired' });
  assert.ok(Date.now() - started < 1_000);
});

test('an expiry timer that fires before the wall clock reaches the expiry tries again', async (t) => {
  // Timers run on the monotonic clock, and can fire a millisecond early by the wall clock: here the
  // wall clock lags the timer by the whole ttl, and catches up only later.
  let now = Date.now();
  const store = open(t, files(t), () => now);
  const a = store.create({ ...REQUEST, ttlMs: 20 });
  const outcome = store.wait(a.id, undefined, 60_000);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(store.get(a.id)?.status, 'pending', 'not due by the wall clock yet');
  now += 20;
  const started = Date.now();
  assert.deepEqual(await outcome, { status: 'expired' });
  assert.ok(Date.now() - started < 1_000, 'the waiter heard it from a timer, not from its 60 s poll');
});

test('links survive a restart; used links stay used; the key file is private', (t) => {
  const f = files(t);
  const first = ApprovalStore.open(f.db, f.key);
  const a = first.create(REQUEST);
  const b = first.create(REQUEST);
  const aToken = first.token(a, 'approve');
  const bToken = first.token(b, 'deny');
  first.answerWithToken(a.id, 'approve', aToken, 'link');
  first.close();
  assert.equal(statSync(f.key).mode & 0o777, 0o600);

  const second = open(t, f);
  refusal(() => second.answerWithToken(a.id, 'approve', aToken, 'link'), 'conflict');
  assert.equal(second.answerWithToken(b.id, 'deny', bToken, 'link').answer, 'deny');
});

test('wait: an answer in this process arrives at once; one from another process by polling', async (t) => {
  const f = files(t);
  const store = open(t, f);
  const a = store.create(REQUEST);
  const waiting = store.wait(a.id, undefined, 60_000);
  store.answer(a.id, 'deny', { by: 'cli:alice', via: 'cli' });
  const outcome = await waiting;
  assert.equal(outcome.status, 'answered');
  assert.equal(outcome.status === 'answered' && outcome.option.effect, 'deny');

  const b = store.create(REQUEST);
  const other = open(t, f);
  const polled = store.wait(b.id, undefined, 20);
  other.answer(b.id, 'approve', { by: 'cli:bob', via: 'cli' });
  const seen = await polled;
  assert.equal(seen.status === 'answered' && seen.by, 'cli:bob');
});

test('an aborted waiter cancels its approval; its links stop working', async (t) => {
  const store = open(t, files(t));
  const a = store.create(REQUEST);
  const controller = new AbortController();
  const waiting = store.wait(a.id, controller.signal, 60_000);
  controller.abort();
  assert.deepEqual(await waiting, { status: 'cancelled' });
  refusal(() => store.answerWithToken(a.id, 'approve', store.token(a, 'approve'), 'link'), 'conflict');
});

test('a waiter aborted with HANDED_OVER stops waiting and leaves the approval open: the next process takes it over, answer and all', async (t) => {
  const f = files(t);
  const store = open(t, f);
  const a = store.create(REQUEST);
  const controller = new AbortController();
  let heard = false;
  void store.wait(a.id, controller.signal, 20).then(() => (heard = true));
  controller.abort(HANDED_OVER);
  store.answer(a.id, 'approve', { by: 'cli:alice', via: 'cli' });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(heard, false, 'the stopped waiter hears nothing, neither from this process nor by polling');
  const next = open(t, f);
  assert.equal((await next.wait(a.id)).status, 'answered');
  // Withdrawing one no longer open, as the next process does when its prompt is gone: says how it ended.
  assert.equal((await next.wait(a.id, AbortSignal.abort())).status, 'answered');
  const b = store.create(REQUEST);
  void next.wait(b.id, AbortSignal.abort(HANDED_OVER)); // never settles; no poll keeps the test alive
  assert.equal(store.get(b.id)?.status, 'pending', 'handed over before waiting: still open');
});

test('concurrent answers from two processes: exactly one wins', (t) => {
  const f = files(t);
  const one = open(t, f);
  const two = open(t, f);
  const a = one.create(REQUEST);
  one.answer(a.id, 'approve', { by: 'x', via: 'cli' });
  refusal(() => two.answer(a.id, 'deny', { by: 'y', via: 'cli' }), 'conflict');
  // The row itself says approve, written once.
  const raw = new Database(f.db, { readonly: true });
  t.after(() => raw.close());
  assert.deepEqual(raw.prepare('SELECT status, answer FROM approvals WHERE id = ?').get(a.id), { status: 'answered', answer: 'approve' });
});

test('bad requests: unknown option, bad option ids, ttl out of range', (t) => {
  const store = open(t, files(t));
  const a = store.create(REQUEST);
  refusal(() => store.answer(a.id, 'maybe', { by: 'x', via: 'cli' }), 'invalid');
  refusal(() => store.create({ ...REQUEST, options: [{ id: 'a b', label: 'x', effect: 'allow' }] }), 'invalid');
  refusal(() => store.create({ ...REQUEST, options: [] }), 'invalid');
  refusal(() => store.create({ ...REQUEST, ttlMs: 0 }), 'invalid');
  refusal(() => store.answer('nope', 'approve', { by: 'x', via: 'cli' }), 'not_found');
  const custom = store.create({ ...REQUEST, options: [{ id: '1', label: 'Yes', effect: 'allow' }, { id: '2', label: "Yes, don't ask again", effect: 'allow' }, { id: '3', label: 'No', effect: 'deny' }] });
  assert.equal(store.answer(custom.id, '2', { by: 'x', via: 'web' }).answer, '2');
  assert.deepEqual(store.list().map((x) => x.id), [a.id]);
  assert.equal(store.list({ all: true }).length, 2);
});
