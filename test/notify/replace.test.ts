// An approval that ends unanswered (expired, or withdrawn) leaves no buttons on a phone that would answer
// nothing: ntfy (2.16 and later) replaces the notification with the same sequence ID by one saying how it
// ended; the other services, which cannot replace a message, get nothing more. A local HTTP server stands
// in for ntfy and for a webhook and records what reached them.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AuditStore } from '../../src/audit/store.js';
import { ConfigSchema } from '../../src/config/config.js';
import { Approvals } from '../../src/notify/service.js';
import { httpRecorder } from '../support/http-recorder.js';
import { until } from '../support/until.js';

test('ntfy: an expired or withdrawn approval replaces its notification (same sequence ID, no answer buttons); an answered one does not; a webhook hears only the question', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'remux-replace-'));
  const push = httpRecorder();
  await push.listen();
  const config = ConfigSchema.parse({
    // min_priority high: the replacement, sent at low priority, still reaches the channel the question did.
    notify: { base_url: 'https://gw.example:7777', channels: [{ type: 'ntfy', url: push.base(), topic: 't', allow_internal: true, min_priority: 'high' }, { type: 'webhook', url: `${push.base()}/hook`, allow_internal: true }] },
    approvals: { timeout_seconds: 1 },
  });
  const audit = AuditStore.open(join(home, 'audit.db'));
  const approvals = new Approvals({ env: { ...process.env, REMUX_HOME: home }, config, audit });
  t.after(async () => {
    approvals.close();
    audit.close();
    await push.close();
    rmSync(home, { recursive: true, force: true });
  });
  type Published = { topic: string; title: string; message: string; priority: number; sequence_id?: string; actions?: Array<{ action: string; label: string }> };
  const ntfy = (): Published[] => push.requests.filter((r) => r.path === '/').map((r) => JSON.parse(r.body) as Published);
  const webhook = (): string[] => push.requests.filter((r) => r.path === '/hook').map((r) => (JSON.parse(r.body) as { event: string }).event);
  const ask = (what: string, signal?: AbortSignal): { id: Promise<string>; outcome: ReturnType<Approvals['ask']> } => {
    let told: (id: string) => void = () => {};
    const id = new Promise<string>((resolve) => (told = resolve));
    return { id, outcome: approvals.ask({ principal: 'agent:3f2a', host: 'web1', what, reason: 'r', source: 'policy:p' }, signal, ({ approval }) => told(approval.id)) };
  };

  const expiring = ask('run `make release` on web1');
  const expiredId = await expiring.id;
  assert.deepEqual(await expiring.outcome, { status: 'expired' });
  const [question, replacement] = ntfy();
  assert.equal(question?.sequence_id, expiredId);
  assert.deepEqual(question?.actions?.map((a) => [a.action, a.label]), [['http', 'Approve'], ['http', 'Deny'], ['view', 'Open']]);
  assert.equal(replacement?.sequence_id, expiredId, 'the same notification, replaced');
  assert.equal(replacement?.title, 'Approval expired on web1');
  assert.equal(replacement?.message, 'agent:3f2a wanted to run `make release` on web1\nNo answer within 1 s: not allowed, nothing was done on its behalf.');
  assert.deepEqual(replacement?.actions?.map((a) => a.action), ['view'], 'no button that answers');
  assert.equal(replacement?.priority, 2);
  assert.deepEqual(webhook(), ['approval.requested'], 'a webhook cannot replace a message: nothing more');

  const abort = new AbortController();
  const withdrawn = ask('run `make other` on web1', abort.signal);
  const withdrawnId = await withdrawn.id;
  abort.abort();
  assert.deepEqual(await withdrawn.outcome, { status: 'cancelled' });
  assert.deepEqual(ntfy().slice(2).map((p) => [p.sequence_id, p.title]), [
    [withdrawnId, 'Approval needed on web1'],
    [withdrawnId, 'Approval withdrawn on web1'],
  ]);

  const answering = ask('run `make third` on web1');
  const answeredId = await answering.id;
  approvals.store.answer(answeredId, 'approve', { by: 'alice', via: 'test' });
  assert.equal((await answering.outcome).status, 'answered');
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(ntfy().slice(4).map((p) => [p.sequence_id, p.title]), [[answeredId, 'Approval needed on web1']], 'answered: the button that answered cleared it; nothing brings it back');
  await until('every webhook message', () => webhook().length === 3);
});
