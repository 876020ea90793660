// `remux notify test|send` and `remux approvals ls|approve|deny|answer` through the real binary.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { approvalsDbFile, approvalsKeyFile } from '../../src/config/paths.js';
import { ApprovalStore } from '../../src/notify/approvals.js';
import { remux, spawnRemux, tempHome } from '../support/cli.js';
import { httpRecorder } from '../support/http-recorder.js';
import { until } from '../support/until.js';

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

  test("test warns when an approval's links would lead to a loopback console, naming notify.base_url; not once it is set", async () => {
    config(`    - { type: webhook, url: "${r.base()}/hook", allow_internal: true }\n`);
    const res = await remux(['notify', 'test'], { env: h.env });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^webhook: delivered \(HTTP 200\)$/m);
    assert.match(
      res.stderr,
      /^warning: the links in notifications \(approve, deny, open\) lead to the daemon's console at 127\.0\.0\.1:7777 \(http\.listen\), an address only this machine reaches: a phone cannot open them; set notify\.base_url in config\.yaml .*"base_url: https:\/\/remux\.example\.com:7777" under notify:\)$/m,
    );
    writeFileSync(join(h.home, 'config.yaml'), `notify:\n  base_url: https://gw.example:7777\n  channels:\n    - { type: webhook, url: "${r.base()}/hook", allow_internal: true }\n`);
    const set = await remux(['notify', 'test'], { env: h.env });
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stderr, '');
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
    const sent = r.requests.length;
    for (const [title, message, flag] of [['', 'm', '--title'], ['t', ' ', '--message']] as const) {
      const empty = await remux(['notify', 'send', '--title', title, '--message', message], { env: h.env });
      assert.equal(empty.code, 2);
      assert.match(empty.stderr, new RegExp(`${flag} is empty: say what the message is about`));
    }
    assert.equal(r.requests.length, sent, 'no blank message sent');
    config('    - { type: ntfy, topic: "no spaces allowed" }\n');
    const bad = await remux(['notify', 'test'], { env: h.env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /config\.yaml:3/);
    assert.match(bad.stderr, /topic/);
    // Behind a proxy's path the links would lead to the proxy's root instead: the console is served only at the root.
    writeFileSync(join(h.home, 'config.yaml'), `notify:\n  base_url: https://proxy.example/remux\n  channels:\n    - { type: webhook, url: "${r.base()}/hook", allow_internal: true }\n`);
    const pathed = await remux(['notify', 'test'], { env: h.env });
    assert.equal(pathed.code, 2);
    assert.match(pathed.stderr, /config\.yaml:2: notify\.base_url: the console's address only, as https:\/\/HOST\[:PORT\]/);
  });
});

describe('config init: the notification channels it suggests', () => {
  const h = tempHome();
  after(() => h.remove());

  test('uncommented, its examples are channels, their ${VAR} values taken from the environment; unquoted, the error says to quote them', async () => {
    assert.equal((await remux(['config', 'init'], { env: h.env })).code, 0);
    const file = join(h.home, 'config.yaml');
    const written = readFileSync(file, 'utf8');
    const uncommented = written.replace('  channels: []\n', '  channels:\n').replace(/^ {2}# (- \{ type: .*)$/gm, '    $1');
    assert.notEqual(uncommented, written);
    writeFileSync(file, uncommented);
    const secrets = { NTFY_TOKEN: 'tk_n', PUSHOVER_APP_TOKEN: 'p_app', PUSHOVER_USER_KEY: 'p_user', SLACK_WEBHOOK_URL: 'https://hooks.slack.example/x', DISCORD_WEBHOOK_URL: 'https://discord.example/x', WEBHOOK_SECRET: 'a-secret-of-16-chars' };
    const shown = await remux(['config', 'show', '--json'], { env: { ...h.env, ...secrets } });
    assert.equal(shown.code, 0, shown.stderr);
    const channels = (JSON.parse(shown.stdout) as { config: { notify: { channels: Array<Record<string, unknown>> } } }).config.notify.channels;
    assert.deepEqual(channels.map((c) => [c.type, c.token ?? c.webhook_url ?? c.secret]), [['ntfy', 'tk_n'], ['pushover', 'p_app'], ['slack', secrets.SLACK_WEBHOOK_URL], ['discord', secrets.DISCORD_WEBHOOK_URL], ['webhook', secrets.WEBHOOK_SECRET]]);
    // In a { … } mapping a brace ends the mapping: yaml's error alone did not say what to do.
    writeFileSync(file, 'notify:\n  channels:\n    - { type: ntfy, topic: ops, token: ${NTFY_TOKEN} }\n');
    const unquoted = await remux(['config', 'show'], { env: { ...h.env, ...secrets } });
    assert.equal(unquoted.code, 2);
    assert.match(unquoted.stderr, /config\.yaml:3: .*\(inside \{ … \} or \[ … \], quote a \$\{VAR\} value: "\$\{VAR\}"\)/);
  });
});

describe('remux approvals', () => {
  const h = tempHome();
  const r = httpRecorder();
  before(async () => {
    await r.listen();
    const init = await remux(['config', 'init'], { env: h.env });
    assert.equal(init.code, 0, init.stderr);
    const policy = await remux(['policy', 'create', 'admin', '--template', 'admin'], { env: h.env });
    assert.equal(policy.code, 0, policy.stderr);
    writeFileSync(
      join(h.home, 'config.yaml'),
      `approvals:\n  timeout_seconds: 20\nnotify:\n  base_url: https://gw.example:7777\n  channels:\n    - { type: webhook, url: "${r.base()}/hook", allow_internal: true }\n`,
    );
  });
  after(async () => {
    await r.close();
    h.remove();
  });
  const store = (): ApprovalStore => ApprovalStore.open(approvalsDbFile(h.env), approvalsKeyFile(h.env));
  type Approval = { outcome: string; by: string | null; via: string | null; id: string | null };
  /** The audit record of the last command run as `command`. */
  const auditOf = async (command: string): Promise<{ decision: string; level: string; approval: Approval | null; error: string | null }> => {
    const ls = await remux(['audit', 'ls', '--json', '--limit', '0'], { env: h.env });
    const rows = ls.stdout.trim().split('\n').map((l) => JSON.parse(l) as { command: string | null; decision: string; level: string; approval: Approval | null; error: string | null });
    const row = rows.filter((r) => r.command === command).at(-1);
    assert.ok(row, ls.stdout);
    return row;
  };
  const answererOf = async (id: string): Promise<string> =>
    (JSON.parse((await remux(['approvals', 'ls', '--all', '--json'], { env: h.env })).stdout) as Array<{ id: string; answeredBy: string }>).find((a) => a.id === id)!.answeredBy;
  const ask = { principal: 'ci-bot', host: 'web1', what: 'run `rm -r /tmp/x` on web1', reason: 'admin#3 asks', source: 'policy', ttlMs: 60_000 };

  test('ls, approve by a unique prefix (audited), then deny is refused: already answered', async () => {
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
    const audit = await remux(['audit', 'ls', '--json'], { env: h.env });
    const answer = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { operation: string; resource?: string; principal: string; reason: string }).find((x) => x.operation === 'approval.answer');
    assert.ok(answer, audit.stdout);
    assert.match(answer.reason, /answered "Approve" via cli for ci-bot/);
  });

  test('a prefix names the one open approval it starts, whatever closed ones also start with it; an empty one nothing', async () => {
    const s = store();
    // 17 IDs: two at least share their first character.
    const made = Array.from({ length: 17 }, () => s.create(ask));
    const shared = made.find((a) => made.some((b) => b !== a && b.id[0] === a.id[0]))!;
    const prefix = shared.id[0]!;
    for (const a of made) if (a !== shared) s.answer(a.id, 'deny', { by: 'x', via: 'cli' });
    s.close();
    const empty = await remux(['approvals', 'approve', ''], { env: h.env });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /no approval ID given/);
    const ok = await remux(['approvals', 'approve', prefix], { env: h.env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`^${shared.id}: answered "Approve"`));
    // Once none is open, the closed ones it starts are named.
    const closed = await remux(['approvals', 'deny', prefix], { env: h.env });
    assert.equal(closed.code, 2);
    assert.match(closed.stderr, new RegExp(`approvals start with ${prefix}: `));
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

  test('a token principal may not answer its own question; a non-admin none at all (exit 77)', async () => {
    const add = await remux(['principal', 'add', 'ci-bot', '--admin', '--json'], { env: h.env });
    const { token } = JSON.parse(add.stdout) as { token: string };
    const viewer = JSON.parse((await remux(['principal', 'add', 'viewer', '--hosts', 'all', '--json'], { env: h.env })).stdout) as { token: string };
    const s = store();
    const a = s.create(ask);
    s.close();
    const own = await remux(['approvals', 'approve', a.id], { env: { ...h.env, REMUX_TOKEN: token } });
    assert.equal(own.code, 77, own.stderr);
    assert.match(own.stderr, /ci-bot asked this question and may not answer it/);
    const scoped = await remux(['approvals', 'approve', a.id], { env: { ...h.env, REMUX_TOKEN: viewer.token } });
    assert.equal(scoped.code, 77);
    assert.match(scoped.stderr, /only admin principals may/);
  });

  /** `client run … rm FILE` under the admin policy's ask, without a terminal: it waits; the approval's id once announced. */
  async function removalAsked(victim: string): Promise<{ id: string; stderr: () => string; exited: Promise<number | null> }> {
    const run = spawnRemux(['client', 'run', 'localhost', '-p', 'admin', '--', `rm ${victim}`], { env: h.env });
    let stderr = '';
    run.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => run.once('exit', resolve));
    const deadline = Date.now() + 15_000;
    while (!/waiting for approval (\S+)/.test(stderr) && Date.now() < deadline) await sleep(50);
    const id = /waiting for approval (\S+)/.exec(stderr)?.[1];
    assert.ok(id, stderr);
    return { id, stderr: () => stderr, exited };
  }

  test('a policy ask without a terminal waits for an approval, announced with links; approve runs it', async () => {
    const victim = join(h.home, 'victim');
    writeFileSync(victim, 'x');
    const sent = r.requests.length;
    const { id, stderr, exited } = await removalAsked(victim);
    assert.match(stderr(), /answer: remux approvals approve \S+ \(or deny\)/);
    assert.match(stderr(), /sent to webhook/);
    assert.ok(existsSync(victim), 'nothing ran before the answer');
    const hook = JSON.parse(r.requests[sent]!.body) as { event: string; actions: Array<{ label: string; url: string }> };
    assert.equal(hook.event, 'approval.requested');
    assert.deepEqual(hook.actions.map((x) => x.label), ['Approve', 'Deny']);
    assert.match(hook.actions[0]!.url, new RegExp(`^https://gw\\.example:7777/approvals/${id}\\?option=approve&token=[A-Za-z0-9_-]{43}$`));

    const ok = await remux(['approvals', 'approve', id], { env: h.env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await exited, 0, stderr());
    assert.ok(!existsSync(victim), 'rm ran once approved');
    // The command's own record names who approved it, through what, and the approval.
    const answerer = await answererOf(id);
    const record = await auditOf(`rm ${victim}`);
    assert.deepEqual([record.decision, record.level, record.approval], ['ask', 'info', { outcome: 'approved', by: answerer, via: 'cli', id }]);
    const text = await remux(['audit', 'ls', '--limit', '0'], { env: h.env });
    assert.match(text.stdout, new RegExp(`rm ${victim}  \\(approved by ${answerer} via cli\\)`));
  });

  test('deny, and no answer by the deadline, both refuse (77) and nothing runs', async () => {
    const victim = join(h.home, 'victim2');
    writeFileSync(victim, 'x');
    const { id, stderr, exited } = await removalAsked(victim);
    assert.equal((await remux(['approvals', 'deny', id], { env: h.env })).code, 0);
    assert.equal(await exited, 77);
    // The refusal names who gave it: the principal that answered, and through what; so does the audit record.
    const answerer = await answererOf(id);
    assert.match(stderr(), new RegExp(`approval refused by ${answerer} via cli\\b`));
    const refused = await auditOf(`rm ${victim}`);
    assert.deepEqual([refused.decision, refused.level, refused.approval], ['ask', 'deny', { outcome: 'refused', by: answerer, via: 'cli', id }]);
    assert.match(refused.error ?? '', new RegExp(`approval refused by ${answerer} via cli$`));

    writeFileSync(join(h.home, 'config.yaml'), 'approvals:\n  timeout_seconds: 1\n');
    const late = await remux(['client', 'run', 'localhost', '-p', 'admin', '--', `rm ${victim}`], { env: h.env });
    assert.equal(late.code, 77);
    assert.match(late.stderr, /approval expired/);
    assert.match(late.stderr, /no notification channel configured/);
    assert.ok(existsSync(victim));
    const expired = await auditOf(`rm ${victim}`);
    assert.deepEqual(expired.approval && [expired.approval.outcome, expired.approval.by, expired.approval.via], ['expired', null, null]);
    assert.match(expired.approval?.id ?? '', /^[0-9a-f]{32}$/);
  });

  test("a service that refuses the question and echoes it back does not hand its decision links to the one who asked", async (t) => {
    const echoed: string[] = [];
    const echo = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      // What a service checking its payload may answer: the payload, from where it went wrong.
      req.on('end', () => {
        echoed.push(body);
        res.statusCode = 400;
        res.end(`unexpected field in ${body.slice(body.indexOf('"actions"'))}`);
      });
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    t.after(() => echo.close());
    const base = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
    writeFileSync(join(h.home, 'config.yaml'), `approvals:\n  timeout_seconds: 20\nnotify:\n  base_url: https://gw.example:7777\n  channels:\n    - { type: webhook, url: "${base}/hook", allow_internal: true }\n`);
    const victim = join(h.home, 'victim4');
    writeFileSync(victim, 'x');
    const { id, stderr, exited } = await removalAsked(victim);
    await until('the failed delivery said', () => /not delivered: .*\n/.test(stderr()) || undefined);
    assert.match(stderr(), /not delivered: webhook \(HTTP 400\) \(`remux notify test` shows what the service answered\)\n/);
    const links = (JSON.parse(echoed[0]!) as { actions: Array<{ url: string }> }).actions.map((a) => a.url);
    assert.equal(links.length, 2);
    for (const link of links) assert.ok(!stderr().includes(new URL(link).searchParams.get('token')!), `the asker was shown ${link}`);
    // Whoever set the channel up sees what the service said.
    const tested = await remux(['notify', 'test'], { env: h.env });
    assert.equal(tested.code, 1);
    assert.match(tested.stdout, /^webhook: FAILED: HTTP 400: unexpected field in "actions":\[\]/m);
    assert.equal((await remux(['approvals', 'deny', id], { env: h.env })).code, 0);
    assert.equal(await exited, 77);
  });

  test('with no console to link to and no notify.base_url, the message says how to answer on this machine', async () => {
    writeFileSync(join(h.home, 'config.yaml'), `approvals:\n  timeout_seconds: 20\nnotify:\n  channels:\n    - { type: webhook, url: "${r.base()}/hook", allow_internal: true }\n`);
    const victim = join(h.home, 'victim3');
    writeFileSync(victim, 'x');
    const sent = r.requests.length;
    const { id, exited } = await removalAsked(victim);
    const hook = JSON.parse(r.requests[sent]!.body) as { url: string | null; message: string; actions: unknown[] };
    assert.deepEqual([hook.url, hook.actions], [null, []]);
    assert.match(hook.message, new RegExp(`\nNo links \\(no console is served and notify\\.base_url is unset\\): answer on this machine with remux approvals approve ${id} \\(or deny\\)$`));
    assert.equal((await remux(['approvals', 'deny', id], { env: h.env })).code, 0);
    assert.equal(await exited, 77);
  });

  test('an unknown id', async () => {
    const res = await remux(['approvals', 'approve', 'zzzz'], { env: h.env });
    assert.equal(res.code, 2);
    assert.match(res.stderr, /no approval zzzz/);
  });
});
