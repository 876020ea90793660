// Notification channels against a real local HTTP server standing in for each service: every payload
// checked field by field against the service's documented format; the internal-address guard.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ChannelSchema, notifyAll, type ChannelConfig, type Notification } from '../../src/notify/channels.js';
import { isInternalAddress } from '../../src/notify/http-post.js';
import { httpRecorder, type Recorded } from '../support/http-recorder.js';

const APPROVAL: Notification = {
  title: 'Approval needed on web1',
  message: 'ci-bot wants to run `rm -r /tmp/build` (admin#3: rm asks)',
  priority: 'high',
  url: 'https://gw.example:7777/#/approvals/abc',
  attach: 'remux session attach agent-1 --host web1',
  event: 'approval.requested',
  actions: [
    { label: 'Approve', effect: 'allow', confirmUrl: 'https://gw.example:7777/approvals/abc?option=approve&token=T1', answer: { url: 'https://gw.example:7777/api/approvals/abc/answer', body: '{"option":"approve","token":"T1"}' } },
    { label: 'Deny', effect: 'deny', confirmUrl: 'https://gw.example:7777/approvals/abc?option=deny&token=T2', answer: { url: 'https://gw.example:7777/api/approvals/abc/answer', body: '{"option":"deny","token":"T2"}' } },
  ],
};

function channel(raw: object): ChannelConfig {
  return ChannelSchema.parse({ allow_internal: true, ...raw });
}

describe('channels send what each service documents', () => {
  const r = httpRecorder();
  before(() => r.listen());
  after(() => r.close());
  const last = (): Recorded => r.requests.at(-1) as Recorded;

  test('ntfy: JSON publish to the root with topic, priority 5, tags, click and http actions', async () => {
    const [d] = await notifyAll([channel({ type: 'ntfy', url: `${r.base()}/`, topic: 'remux-alerts', token: 'tk_secret' })], APPROVAL);
    assert.deepEqual(d, { channel: 'ntfy', ok: true, status: 200 });
    const req = last();
    assert.equal(req.path, '/');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers.authorization, 'Bearer tk_secret');
    const body = JSON.parse(req.body) as Record<string, unknown>;
    assert.equal(body.topic, 'remux-alerts');
    assert.equal(body.title, APPROVAL.title);
    assert.equal(body.message, `${APPROVAL.message}\n\nattach: ${APPROVAL.attach}`);
    assert.equal(body.priority, 5);
    assert.deepEqual(body.tags, ['warning']);
    assert.equal(body.click, APPROVAL.url);
    assert.deepEqual(body.actions, [
      { action: 'http', label: 'Approve', url: 'https://gw.example:7777/api/approvals/abc/answer', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"option":"approve","token":"T1"}', clear: true },
      { action: 'http', label: 'Deny', url: 'https://gw.example:7777/api/approvals/abc/answer', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"option":"deny","token":"T2"}', clear: true },
      { action: 'view', label: 'Open', url: APPROVAL.url },
    ]);
  });

  test('ntfy: a configured priority mapping wins; no more than three actions', async () => {
    const many = { ...APPROVAL, priority: 'low' as const, actions: [...APPROVAL.actions!, ...APPROVAL.actions!] };
    await notifyAll([channel({ type: 'ntfy', url: r.base(), topic: 't', priority: { low: 1 } })], many);
    const body = JSON.parse(last().body) as { priority: number; actions: unknown[]; tags: unknown[] };
    assert.equal(body.priority, 1);
    assert.equal(body.actions.length, 3);
    assert.deepEqual(body.tags, []);
    assert.equal(last().headers.authorization, undefined);
  });

  test('ntfy and Slack: when not every answer fits, one that denies is kept and the message lists them all', async () => {
    const option = (label: string, effect: 'allow' | 'deny', i: number): NonNullable<Notification['actions']>[number] => ({
      label,
      effect,
      confirmUrl: `https://gw.example:7777/approvals/abc?option=${i}&token=T${i}`,
      answer: { url: 'https://gw.example:7777/api/approvals/abc/answer', body: `{"option":"${i}","token":"T${i}"}` },
    });
    const claude = { ...APPROVAL, attach: undefined, actions: [option('Yes', 'allow', 1), option("Yes, and don't ask again", 'allow', 2), option('No, and tell Claude what to do', 'deny', 3)] };
    await notifyAll([channel({ type: 'ntfy', url: r.base(), topic: 't' })], claude);
    const ntfy = JSON.parse(last().body) as { message: string; actions: Array<{ label: string; body?: string }> };
    assert.deepEqual(ntfy.actions.map((a) => [a.label, a.body ?? null]), [
      ['Yes', '{"option":"1","token":"T1"}'],
      ['No, and tell Claude what to do', '{"option":"3","token":"T3"}'],
      ['Open', null],
    ]);
    assert.equal(ntfy.message, `${APPROVAL.message}\n\nOptions: Yes · Yes, and don't ask again · No, and tell Claude what to do (not a button here: Yes, and don't ask again; open the approval to choose it)`);

    const six = { ...claude, actions: [1, 2, 3, 4, 5].map((i) => option(`Yes ${i}`, 'allow', i)).concat(option('No', 'deny', 6)) };
    await notifyAll([channel({ type: 'slack', webhook_url: `${r.base()}/slack` })], six);
    const slack = JSON.parse(last().body) as { blocks: Array<{ type: string; text?: { text: string }; elements?: Array<{ text: { text: string } }> }> };
    assert.deepEqual(slack.blocks.find((b) => b.type === 'actions')!.elements!.map((e) => e.text.text), ['Yes 1', 'Yes 2', 'Yes 3', 'No', 'Open']);
    assert.match(slack.blocks.find((b) => b.type === 'section')!.text!.text, /Options: Yes 1 · Yes 2 · Yes 3 · Yes 4 · Yes 5 · No \(not a button here: Yes 4 · Yes 5;/);

    await notifyAll([channel({ type: 'ntfy', url: r.base(), topic: 't' })], APPROVAL);
    assert.doesNotMatch((JSON.parse(last().body) as { message: string }).message, /Options:/, 'all fit: nothing to add');
  });

  test('Pushover: form fields token, user, title, message with the links, priority, url', async () => {
    await notifyAll([channel({ type: 'pushover', url: `${r.base()}/1/messages.json`, token: 'app-token', user: 'user-key' })], APPROVAL);
    const req = last();
    assert.equal(req.path, '/1/messages.json');
    assert.equal(req.headers['content-type'], 'application/x-www-form-urlencoded');
    const form = new URLSearchParams(req.body);
    assert.equal(form.get('token'), 'app-token');
    assert.equal(form.get('user'), 'user-key');
    assert.equal(form.get('title'), APPROVAL.title);
    assert.equal(form.get('priority'), '1');
    assert.equal(form.get('url'), APPROVAL.url);
    assert.equal(form.get('url_title'), 'Open in remux');
    assert.match(form.get('message') ?? '', /Approve: https:\/\/gw\.example:7777\/approvals\/abc\?option=approve&token=T1\nDeny: /);
  });

  test('Slack: text fallback, header and section blocks, link buttons to the confirm pages', async () => {
    await notifyAll([channel({ type: 'slack', webhook_url: `${r.base()}/services/T/B/X` })], { ...APPROVAL, message: 'a <b> & c' });
    const body = JSON.parse(last().body) as { text: string; blocks: Array<Record<string, unknown>> };
    assert.equal(body.text, `${APPROVAL.title}: a <b> & c`);
    assert.deepEqual(body.blocks[0], { type: 'header', text: { type: 'plain_text', text: APPROVAL.title } });
    assert.deepEqual(body.blocks[1], { type: 'section', text: { type: 'mrkdwn', text: `a &lt;b&gt; &amp; c\n\`${APPROVAL.attach}\`` } });
    assert.deepEqual(body.blocks[2], {
      type: 'actions',
      elements: [
        { type: 'button', text: { type: 'plain_text', text: 'Approve' }, url: APPROVAL.actions![0]!.confirmUrl, style: 'primary' },
        { type: 'button', text: { type: 'plain_text', text: 'Deny' }, url: APPROVAL.actions![1]!.confirmUrl },
        { type: 'button', text: { type: 'plain_text', text: 'Open' }, url: APPROVAL.url },
      ],
    });
  });

  test('Discord: content, no parsed mentions, an embed with the links and the priority colour', async () => {
    await notifyAll([channel({ type: 'discord', webhook_url: `${r.base()}/api/webhooks/1/abc` })], { ...APPROVAL, message: '@everyone look' });
    const body = JSON.parse(last().body) as { content: string; allowed_mentions: unknown; embeds: Array<Record<string, unknown>> };
    assert.equal(body.content, APPROVAL.title);
    assert.deepEqual(body.allowed_mentions, { parse: [] });
    assert.equal(body.embeds[0]!.color, 0xef4444);
    assert.equal(body.embeds[0]!.url, APPROVAL.url);
    assert.equal(body.embeds[0]!.description, `@everyone look\n\nattach: ${APPROVAL.attach}\n\n[Approve](${APPROVAL.actions![0]!.confirmUrl}) · [Deny](${APPROVAL.actions![1]!.confirmUrl})`);
  });

  test('webhook: documented JSON, custom headers, and an HMAC signature the receiver can check', async () => {
    const secret = 'a-long-shared-secret';
    await notifyAll([channel({ type: 'webhook', url: `${r.base()}/hook`, headers: { 'x-team': 'ops' }, secret })], APPROVAL);
    const req = last();
    assert.equal(req.headers['x-team'], 'ops');
    assert.equal(req.headers['x-remux-signature'], `sha256=${createHmac('sha256', secret).update(req.body).digest('hex')}`);
    const body = JSON.parse(req.body) as Record<string, unknown>;
    assert.equal(body.event, 'approval.requested');
    assert.equal(body.priority, 'high');
    assert.deepEqual(body.actions, [
      { label: 'Approve', url: APPROVAL.actions![0]!.confirmUrl },
      { label: 'Deny', url: APPROVAL.actions![1]!.confirmUrl },
    ]);
    assert.ok(!Number.isNaN(Date.parse(body.sent_at as string)));
  });

  test("secrets in the text never leave: redacted as in the audit trail, on every channel; an approval's message says to open it", async () => {
    const token = `ghp_${'a'.repeat(36)}`;
    const asked: Notification = {
      ...APPROVAL,
      title: 'Approval needed on localhost',
      message: `agent:1 wants to Bash: curl -H "Authorization: Bearer s3cr3t-value" -u deploy:hunter2 https://api.example/ && GITHUB_TOKEN=${token} gh pr create\nClaude Code asks to use Bash in /w`,
    };
    const kinds = [
      { type: 'ntfy', url: r.base(), topic: 't' },
      { type: 'pushover', url: r.base(), token: 'app', user: 'u' },
      { type: 'slack', webhook_url: r.base() },
      { type: 'discord', webhook_url: r.base() },
      { type: 'webhook', url: r.base() },
    ];
    const before = r.requests.length;
    const results = await notifyAll(kinds.map(channel), asked);
    assert.deepEqual(results.map((d) => d.ok), [true, true, true, true, true]);
    const bodies = r.requests.slice(before).map((q) => (q.headers['content-type']?.startsWith('application/json') ? q.body : new URLSearchParams(q.body).get('message') ?? ''));
    assert.equal(bodies.length, kinds.length);
    for (const body of bodies) {
      for (const secret of ['s3cr3t-value', 'hunter2', token]) assert.equal(body.includes(secret), false, `${secret} in ${body}`);
      for (const kept of [/Authorization: Bearer \[REDACTED\]/, /-u deploy:\[REDACTED\] https:\/\/api\.example\//, /GITHUB_TOKEN=\[REDACTED\] gh pr create/]) assert.match(body, kept);
      assert.match(body, /a secret's value, hidden here and on the approval's page as in the audit trail/);
    }
    // A plain message is redacted too, with no word of an approval.
    await notifyAll([channel({ type: 'webhook', url: r.base() })], { title: 't', message: `deployed with GITHUB_TOKEN=${token}`, priority: 'normal' });
    assert.equal((JSON.parse(last().body) as { message: string }).message, 'deployed with GITHUB_TOKEN=[REDACTED]');
  });

  test('several channels at once; a failing one is reported on its own; min_priority skips', async () => {
    const before = r.requests.length;
    r.status.code = 429;
    const results = await notifyAll(
      [
        channel({ type: 'webhook', name: 'hook-a', url: `${r.base()}/a` }),
        channel({ type: 'slack', name: 'quiet', webhook_url: `${r.base()}/b`, min_priority: 'high' }),
        channel({ type: 'webhook', name: 'dead', url: 'http://127.0.0.1:1/' }),
      ],
      { title: 't', message: 'm', priority: 'normal' },
    );
    r.status.code = 200;
    assert.equal(r.requests.length, before + 1);
    assert.deepEqual(results[0], { channel: 'hook-a', ok: false, status: 429, error: 'HTTP 429', answer: 'rate limited, slow down' });
    assert.deepEqual(results[1], { channel: 'quiet', ok: true, skipped: true });
    assert.equal(results[2]!.ok, false);
    assert.match(results[2]!.error ?? '', /ECONNREFUSED/);
  });
});

describe('internal addresses are refused unless the channel allows them', () => {
  const r = httpRecorder();
  before(() => r.listen());
  after(() => r.close());
  const port = (): number => (r.server.address() as AddressInfo).port;

  test('literal loopback, IPv4-mapped IPv6, metadata address and a name resolving to loopback', async () => {
    const urls = [`http://127.0.0.1:${port()}/`, `http://[::ffff:127.0.0.1]:${port()}/`, 'http://169.254.169.254/latest/meta-data', `http://localhost:${port()}/`, 'http://[::1]:9/', 'http://10.1.2.3/'];
    const results = await notifyAll(
      urls.map((url) => ChannelSchema.parse({ type: 'webhook', url })),
      { title: 't', message: 'm', priority: 'high' },
      2_000,
    );
    for (const [i, d] of results.entries()) {
      assert.equal(d.ok, false, urls[i]);
      assert.match(d.error ?? '', /internal address .*allow_internal: true/, urls[i]);
    }
    assert.equal(r.requests.length, 0, 'nothing reached the server');
  });

  test('the range table: private, shared and link-local ranges in, public addresses out', () => {
    for (const a of ['10.0.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '169.254.1.1', '0.0.0.0', 'fd12::1', 'fe80::1', '::', '::ffff:10.0.0.1', '224.0.0.1']) assert.ok(isInternalAddress(a), a);
    for (const a of ['8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:1.1.1.1']) assert.ok(!isInternalAddress(a), a);
  });

  test('config errors name the field', () => {
    const bad = ChannelSchema.safeParse({ type: 'ntfy', topic: 'has space' });
    assert.equal(bad.success, false);
    assert.match(JSON.stringify(bad.error?.issues), /topic/);
    assert.equal(ChannelSchema.safeParse({ type: 'carrier-pigeon', url: 'x' }).success, false);
    assert.equal(ChannelSchema.safeParse({ type: 'webhook', url: 'http://x', secret: 'short' }).success, false);
  });
});
