// The notification flood limit (notify.flood): an agent session's supervisor, as `remux code start`
// runs it (its hook endpoint, approvals and channels), flooded with hook calls from inside the session;
// a local HTTP server stands in for the push service and records what reached it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startClaudeHooks } from '../../src/agents/claude-hooks.js';
import { askHookEndpoint } from '../../src/agents/hook-client.js';
import { AuditStore } from '../../src/audit/store.js';
import { ConfigSchema, type Config } from '../../src/config/config.js';
import { ApprovalStore } from '../../src/notify/approvals.js';
import { Approvals } from '../../src/notify/service.js';
import { httpRecorder, type HttpRecorder } from '../support/http-recorder.js';
import { until } from '../support/until.js';

async function setup(t: TestContext, flood: object): Promise<{ home: string; env: NodeJS.ProcessEnv; config: Config; push: HttpRecorder }> {
  const home = mkdtempSync(join(tmpdir(), 'remux-flood-'));
  const push = httpRecorder();
  await push.listen();
  t.after(async () => {
    await push.close();
    rmSync(home, { recursive: true, force: true });
  });
  const config = ConfigSchema.parse({ notify: { channels: [{ type: 'webhook', url: `${push.base()}/hook`, allow_internal: true }], flood } });
  return { home, env: { ...process.env, REMUX_HOME: home }, config, push };
}

const events = (push: HttpRecorder): string[] => push.requests.map((r) => (JSON.parse(r.body) as { event: string }).event);

test('a session flooding its hooks pages a person burst times, then once with how many were held; every question stays answerable', async (t) => {
  const { home, env, config, push } = await setup(t, { burst: 3, per_minute: 60 });
  const hooks = await startClaudeHooks('s1', config, env, () => {});
  const input = (o: object): string => JSON.stringify({ session_id: 'c', cwd: '/w', ...o });
  // Questions that wait (at most 8 may), and notifications that return at once.
  const asking = Array.from({ length: 6 }, (_, i) =>
    askHookEndpoint(hooks.dir, 's1', input({ hook_event_name: 'PermissionRequest', tool_name: 'Bash', tool_input: { command: `make flood-${i}` } }), env).catch(() => null),
  );
  for (let i = 0; i < 14; i++) await askHookEndpoint(hooks.dir, 's1', input({ hook_event_name: 'Notification', message: `ping ${i}` }), env);
  const store = ApprovalStore.open(join(home, 'approvals.db'), join(home, 'approvals.key'));
  try {
    await until('6 approvals', () => store.list().length === 6);
    assert.equal(push.requests.length, 3, `burst 3: ${events(push).join(', ')}`);
    // The bucket refills one a second: one message then counts the 17 held, and nothing else is sent late.
    await until('the summary', () => events(push).includes('notification.held'));
    const summary = JSON.parse(push.requests.at(-1)!.body) as { title: string; message: string };
    assert.equal(summary.title, '17 more messages from agent:s1 held');
    assert.match(summary.message, /remux approvals ls/);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(push.requests.length, 4);
    // The held questions are still there to answer; the next message goes out in its turn.
    assert.equal(store.list().filter((a) => a.principal === 'agent:s1' && a.status === 'pending').length, 6);
    await askHookEndpoint(hooks.dir, 's1', input({ hook_event_name: 'Notification', message: 'after the flood' }), env);
    assert.match(push.requests.at(-1)!.body, /after the flood/);
    for (const a of store.list()) store.answer(a.id, 'deny', { by: 'alice', via: 'test' });
    await Promise.all(asking);
  } finally {
    store.close();
    await hooks.close();
  }
});

test('every asker has its own share, and all share one: beyond that the waiting caller is told its message was held', async (t) => {
  const { home, env, config, push } = await setup(t, { burst: 2, per_minute: 1, overall_burst: 3, overall_per_minute: 1 });
  const audit = AuditStore.open(join(home, 'audit.db'));
  const approvals = new Approvals({ env, config, audit });
  t.after(() => {
    approvals.close();
    audit.close();
  });
  const abort = new AbortController();
  const told = new Map<string, string>();
  const ask = (principal: string, what: string): Promise<unknown> =>
    approvals.ask({ principal, host: null, what, reason: 'r', source: 'policy:p' }, abort.signal, ({ deliveries }) => told.set(what, deliveries[0]!.error ?? 'sent'));
  const waiting = [ask('agent:a', 'a1'), ask('agent:a', 'a2'), ask('agent:a', 'a3'), ask('agent:b', 'b1'), ask('agent:b', 'b2')];
  await until('all five asked', () => told.size === 5);
  assert.deepEqual(
    ['a1', 'a2', 'a3', 'b1', 'b2'].map((w) => (told.get(w)!.startsWith('held') ? 'held' : told.get(w))),
    ['sent', 'sent', 'held', 'sent', 'held'],
    'a: its burst of 2, b: the one left of the overall 3',
  );
  assert.equal(push.requests.length, 3);
  assert.equal(approvals.store.list().length, 5, 'held questions are asked all the same');
  abort.abort();
  await Promise.all(waiting);
});

test('messages no channel takes (below every min_priority) page nobody and count for nothing: the question after them is sent', async (t) => {
  const { home, env, push } = await setup(t, { burst: 3, per_minute: 1 });
  const config = ConfigSchema.parse({ notify: { channels: [{ type: 'webhook', url: `${push.base()}/hook`, allow_internal: true, min_priority: 'high' }], flood: { burst: 3, per_minute: 1 } } });
  const hooks = await startClaudeHooks('s2', config, env, () => {});
  const input = (o: object): string => JSON.stringify({ session_id: 'c', cwd: '/w', ...o });
  // Idle notifications (normal priority), which the phone's channel is set to leave out.
  for (let i = 0; i < 5; i++) await askHookEndpoint(hooks.dir, 's2', input({ hook_event_name: 'Notification', notification_type: 'idle_prompt', message: `idle ${i}` }), env);
  const asking = askHookEndpoint(hooks.dir, 's2', input({ hook_event_name: 'PermissionRequest', tool_name: 'Bash', tool_input: { command: 'make deploy' } }), env).catch(() => null);
  const store = ApprovalStore.open(join(home, 'approvals.db'), join(home, 'approvals.key'));
  try {
    await until('the question', () => store.list().length === 1);
    await until('its page', () => push.requests.length === 1);
    assert.equal((JSON.parse(push.requests[0]!.body) as { event: string }).event, 'approval.requested');
    for (const a of store.list()) store.answer(a.id, 'deny', { by: 'alice', via: 'test' });
    await asking;
  } finally {
    store.close();
    await hooks.close();
  }
});
