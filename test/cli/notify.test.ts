// `remux notify test|send` and `remux approvals ls|approve|deny|answer` through the real binary.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { approvalsDbFile, approvalsKeyFile } from '../../src/config/paths.js';
import { ApprovalStore } from '../../src/notify/approvals.js';
import { remux, tempHome } from '../support/cli.js';
import { httpRecorder } from '../support/http-recorder.js';

describe('remux notify', () => {
  const h = tempHome();
  const r = httpRecorder();
  before(() => r.listen());
  after(async () => {
    await r.close();
    h.remove();
  });
  const config = (channels: string): void => writeFileSync(join(h.home, 'config.yaml'), `notify:\n  channels:\n${channels}`);

  test('no channel configured: exit 2, and what to do', async () => {
    const res = await remux(['notify', 'test'], { env: h.env });
    assert.equal(res.code, 2);
    assert.match(res.stderr, /no notification channels are configured/);
    assert.match(res.stderr, /notify\.channels/);
  });

  test('test reaches each channel and says so; a failing one makes exit 1', async () => {
    config(`    - { type: webhook, name: ok-hook, url: "${r.base()}/hook", allow_internal: true }\n    - { type: webhook, name: blocked, url: "${r.base()}/hook" }\n`);
    const res = await remux(['notify', 'test'], { env: h.env });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stdout, /^ok-hook: delivered \(HTTP 200\)$/m);
    assert.match(res.stdout, /^blocked: FAILED: .*internal address/m);
    assert.equal(r.requests.length, 1);
    assert.equal((JSON.parse(r.requests[0]!.body) as { event: string }).event, 'test');
  });

  test('send: title, message, priority and url reach the channel; --json results', async () => {
    config(`    - { type: ntfy, url: "${r.base()}", topic: ops, allow_internal: true }\n`);
    const res = await remux(['notify', 'send', '--title', 'Deploy done', '--message', 'v2.3 everywhere', '--priority', 'low', '--url', 'https://x.example/d', '--json'], { env: h.env });
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(JSON.parse(res.stdout), [{ channel: 'ntfy', ok: true, status: 200 }]);
    const body = JSON.parse(r.requests.at(-1)!.body) as Record<string, unknown>;
    assert.deepEqual([body.topic, body.title, body.message, body.priority, body.click], ['ops', 'Deploy done', 'v2.3 everywhere', 2, 'https://x.example/d']);
  });

  test('bad input: an unknown priority, a bad channel in config.yaml with its line', async () => {
    const res = await remux(['notify', 'send', '--title', 't', '--message', 'm', '--priority', 'urgent'], { env: h.env });
    assert.equal(res.code, 2);
    assert.match(res.stderr, /--priority must be one of low, normal, high/);
    config('    - { type: ntfy, topic: "no spaces allowed" }\n');
    const bad = await remux(['notify', 'test'], { env: h.env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /config\.yaml:3/);
    assert.match(bad.stderr, /topic/);
  });
});

describe('remux approvals', () => {
  const h = tempHome();
  after(() => h.remove());
  const store = (): ApprovalStore => ApprovalStore.open(approvalsDbFile(h.env), approvalsKeyFile(h.env));
  const ask = { principal: 'ci-bot', host: 'web1', what: 'run `rm -r /tmp/x` on web1', reason: 'admin#3 asks', source: 'policy', ttlMs: 60_000 };

  test('ls, approve by a unique prefix, then deny is refused: already answered', async () => {
    const s = store();
    const a = s.create(ask);
    s.close();
    const ls = await remux(['approvals', 'ls', '--json'], { env: h.env });
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual((JSON.parse(ls.stdout) as Array<{ id: string }>).map((x) => x.id), [a.id]);

    const ok = await remux(['approvals', 'approve', a.id.slice(0, 8)], { env: h.env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /answered "Approve"/);
    const again = await remux(['approvals', 'deny', a.id], { env: h.env });
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already answered "Approve" by cli:.* via cli/);

    const check = store();
    assert.equal(check.get(a.id)?.answer, 'approve');
    check.close();
    const open = await remux(['approvals', 'ls'], { env: h.env });
    assert.match(open.stdout, /no open approvals/);
  });

  test("an agent prompt's own options: answer picks one; an unknown option is named", async () => {
    const s = store();
    const a = s.create({ ...ask, source: 'agent:claude', options: [{ id: '1', label: 'Yes', effect: 'allow' }, { id: '2', label: 'No', effect: 'deny' }] });
    s.close();
    const bad = await remux(['approvals', 'answer', a.id, '7'], { env: h.env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /has no option "7" \(options: 1, 2\)/);
    const deny = await remux(['approvals', 'deny', a.id], { env: h.env });
    assert.equal(deny.code, 0, deny.stderr);
    assert.match(deny.stdout, /answered "No"/);
  });

  test('an unknown id', async () => {
    const res = await remux(['approvals', 'approve', 'zzzz'], { env: h.env });
    assert.equal(res.code, 2);
    assert.match(res.stderr, /no approval zzzz/);
  });
});
