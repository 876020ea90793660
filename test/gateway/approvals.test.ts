// Approvals through the daemon: a policy `ask` from a forwarded command announces an approval on a
// channel (a local HTTP server standing in for the push service), its links lead to a confirm page that
// changes nothing on GET, and its POST (form or ntfy's JSON) releases the waiting command. Adversarial:
// tampered and replayed links, siblings, a principal answering its own question, a non-admin.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { approvalsDbFile, approvalsKeyFile } from '../../src/config/paths.js';
import { ApprovalStore } from '../../src/notify/approvals.js';
import { ASK_ON_TOUCH_POLICY } from '../support/approvals.js';
import { remux, spawnRemux, tempHome } from '../support/cli.js';
import { httpRecorder } from '../support/http-recorder.js';
import { client, type Client } from '../support/https.js';

const pick = <T extends object, K extends keyof T>(o: T, ...keys: K[]): Pick<T, K> => Object.fromEntries(keys.map((k) => [k, o[k]])) as Pick<T, K>;

interface Hook {
  event: string;
  url: string;
  actions: Array<{ label: string; url: string }>;
}

describe('approvals over HTTP', () => {
  const h = tempHome();
  const hook = httpRecorder();
  const tokens = { boss: '', bot: '', viewer: '' };
  let api: Client;
  let base = '';

  const add = async (...args: string[]): Promise<string> => {
    const r = await remux(['principal', 'add', ...args, '--json'], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { token: string }).token;
  };

  before(async () => {
    await hook.listen();
    writeFileSync(join(h.home, 'policies.yaml'), ASK_ON_TOUCH_POLICY);
    writeFileSync(join(h.home, 'config.yaml'), `default_policy: ops\nnotify:\n  channels:\n    - { type: webhook, url: "${hook.base()}/hook", allow_internal: true }\n`);
    tokens.boss = await add('boss', '--admin');
    tokens.bot = await add('bot', '--admin');
    tokens.viewer = await add('viewer', '--hosts', 'localhost');
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
    base = /web console and API: (\S+)/.exec(started.stdout)![1]!;
    api = client(base, readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8'));
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    await hook.close();
    h.remove();
  });

  /** Starts `touch [OPTIONS] FILE` as bot through the daemon; resolves once the approval was announced (`sent`: the message as sent). */
  async function askToTouch(
    file: string,
    options = '',
  ): Promise<{ id: string; links: Hook['actions']; exited: Promise<number | null>; stderr: () => string; sent: string; interrupt: () => void }> {
    const seen = hook.requests.length;
    const run = spawnRemux(['client', 'run', 'localhost', '--', `touch ${options}${file}`], { env: { ...h.env, REMUX_TOKEN: tokens.bot } });
    let stderr = '';
    run.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => run.once('exit', resolve));
    while (hook.requests.length === seen) await sleep(20);
    const body = JSON.parse(hook.requests[seen]!.body) as Hook;
    assert.equal(body.event, 'approval.requested');
    const id = /\/approvals\/([^?]+)\?/.exec(body.actions[0]!.url)![1]!;
    return { id, links: body.actions, exited, stderr: () => stderr, sent: hook.requests[seen]!.body, interrupt: () => run.kill('SIGINT') };
  }

  const pathOf = (url: string): string => {
    const u = new URL(url);
    assert.equal(u.origin, new URL(base).origin, 'links point at the console the daemon serves');
    return u.pathname + u.search;
  };
  const formOf = (url: string): string => {
    const q = new URL(url).searchParams;
    return new URLSearchParams({ option: q.get('option')!, token: q.get('token')! }).toString();
  };
  const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

  test('GET the link shows a confirm page and changes nothing; the form POST runs the command; replay and sibling are refused', async () => {
    const file = join(h.home, 'approved');
    const { id, links, exited } = await askToTouch(file);
    const approve = links.find((l) => l.label === 'Approve')!.url;
    const deny = links.find((l) => l.label === 'Deny')!.url;

    const confirm = await api.request('GET', pathOf(approve));
    assert.equal(confirm.status, 200);
    assert.match(confirm.text, /run `touch .*approved` on localhost/);
    assert.match(confirm.text, /<form class="decision" method="post" action="\/api\/approvals\/[^"]+\/answer">/);
    // To the second, UTC said in words (a raw ISO string with milliseconds before).
    assert.match(confirm.text, /<th>Expires<\/th><td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC<\/td>/);
    assert.doesNotMatch(confirm.text, /<script/);
    await api.request('GET', pathOf(approve)); // twice: still nothing
    const listed = await api.request('GET', '/api/approvals', { headers: { authorization: `Bearer ${tokens.boss}` } });
    assert.deepEqual(listed.json<{ approvals: Array<{ id: string; status: string }> }>().approvals.map((a) => [a.id, a.status]), [[id, 'pending']]);
    assert.ok(!existsSync(file));

    const answered = await api.request('POST', `/api/approvals/${id}/answer`, { headers: FORM, body: formOf(approve) });
    assert.equal(answered.status, 200, answered.text);
    assert.match(answered.text, /You answered <strong>Approve<\/strong>/);
    assert.equal(await exited, 0);
    assert.ok(existsSync(file), 'the command ran once approved');

    const replay = await api.request('POST', `/api/approvals/${id}/answer`, { headers: FORM, body: formOf(approve) });
    assert.equal(replay.status, 409);
    const sibling = await api.request('POST', `/api/approvals/${id}/answer`, { headers: FORM, body: formOf(deny) });
    assert.equal(sibling.status, 409);
    assert.match(sibling.text, /already answered &#34;Approve&#34;/);
    const closedPage = await api.request('GET', pathOf(deny));
    assert.match(closedPage.text, /This approval is closed/);
  });

  test("a link to an approval withdrawn (its asker stopped waiting) says what that means", async () => {
    const { id, links, exited, interrupt } = await askToTouch(join(h.home, 'withdrawn'));
    interrupt();
    await exited;
    const page = await api.request('GET', pathOf(links.find((l) => l.label === 'Approve')!.url));
    assert.match(page.text, /This approval is closed: withdrawn before anyone answered: whoever asked stopped waiting, or the prompt was answered at its terminal\./);
    const listed = await remux(['approvals', 'ls', '--all', '--json'], { env: h.env });
    assert.equal((JSON.parse(listed.stdout) as Array<{ id: string; status: string }>).find((a) => a.id === id)?.status, 'cancelled');
  });

  test('a link to an approval remux withdrew with a reason (its asker crashed) says that reason', async () => {
    const store = ApprovalStore.open(approvalsDbFile(h.env), approvalsKeyFile(h.env));
    try {
      const asked = store.create({ principal: 'bot', host: 'localhost', what: 'run `touch x` on localhost', reason: 'r', source: 'policy:ops', ttlMs: 60_000 });
      const why = 'the daemon that asked stopped (crash between 2026-12-07 06:41:10 and 06:41:40 UTC); nothing was done on its behalf';
      store.cancel(asked.id, why);
      const page = await api.request('GET', `/approvals/${asked.id}?option=approve&token=${store.token(asked, 'approve')}`);
      assert.match(page.text, /This approval is closed: withdrawn: the daemon that asked stopped \(crash between 2026-12-07 06:41:10 and 06:41:40 UTC\); nothing was done on its behalf\./);
    } finally {
      store.close();
    }
  });

  test("a link to an agent session's question that expired says its prompt was left to the terminal, not that it counts as a denial", async () => {
    const store = ApprovalStore.open(approvalsDbFile(h.env), approvalsKeyFile(h.env));
    try {
      const asked = store.create({ principal: 'agent:ab12cd34', host: 'localhost', what: 'Bash: npm publish', reason: 'Claude Code asks to use Bash in /w', source: 'agent:claude', ttlMs: 50 });
      await new Promise((r) => setTimeout(r, 100));
      const page = await api.request('GET', `/approvals/${asked.id}?option=approve&token=${store.token(asked, 'approve')}`);
      assert.match(page.text, /This approval is closed: expired: nobody answered in time; the agent&#39;s prompt was left to its terminal\./);
    } finally {
      store.close();
    }
  });

  test('tampered links are refused on GET and POST; ntfy-style JSON with the deny token refuses the command', async () => {
    const file = join(h.home, 'denied');
    const { id, links, exited, stderr } = await askToTouch(file);
    const deny = links.find((l) => l.label === 'Deny')!.url;
    const approve = new URL(links.find((l) => l.label === 'Approve')!.url);
    const forged = new URL(approve);
    forged.searchParams.set('token', `${approve.searchParams.get('token')!.slice(0, -2)}AA`);
    assert.equal((await api.request('GET', pathOf(forged.href))).status, 403);
    const swapped = new URL(approve);
    swapped.searchParams.set('option', 'deny'); // approve's token on the deny option
    assert.equal((await api.request('GET', pathOf(swapped.href))).status, 403);
    const forgedPost = await api.request('POST', `/api/approvals/${id}/answer`, { body: { option: 'approve', token: forged.searchParams.get('token') } });
    assert.equal(forgedPost.status, 403);
    assert.equal(forgedPost.json().error, 'forbidden');

    const q = new URL(deny).searchParams;
    const ntfy = await api.request('POST', `/api/approvals/${id}/answer`, { body: { option: 'deny', token: q.get('token') } });
    assert.equal(ntfy.status, 200, ntfy.text);
    // A link's holder answered, not bot who asked: the answer names where the link was sent.
    assert.deepEqual(pick(ntfy.json<{ approval: { answeredBy: string; answeredVia: string } }>().approval, 'answeredBy', 'answeredVia'), { answeredBy: 'link (sent to webhook)', answeredVia: 'ntfy' });
    assert.equal(await exited, 77);
    assert.match(stderr(), /approval refused by link \(sent to webhook\)/);
    assert.ok(!existsSync(file));
  });

  test('signed in: the asker cannot answer its own question, a non-admin cannot answer, an admin can', async () => {
    const file = join(h.home, 'by-boss');
    const { id, exited } = await askToTouch(file);
    const own = await api.request('POST', `/api/approvals/${id}`, { headers: { authorization: `Bearer ${tokens.bot}` }, body: { option: 'approve' } });
    assert.equal(own.status, 403);
    assert.match(own.json<{ message: string }>().message, /bot asked this question/);
    const viewer = await api.request('POST', `/api/approvals/${id}`, { headers: { authorization: `Bearer ${tokens.viewer}` }, body: { option: 'approve' } });
    assert.equal(viewer.status, 403);
    const seenByViewer = await api.request('GET', '/api/approvals', { headers: { authorization: `Bearer ${tokens.viewer}` } });
    assert.deepEqual(seenByViewer.json<{ approvals: unknown[] }>().approvals, []);
    const boss = await api.request('POST', `/api/approvals/${id}`, { headers: { authorization: `Bearer ${tokens.boss}` }, body: { option: 'approve' } });
    assert.equal(boss.status, 200, boss.text);
    assert.equal(await exited, 0);
    // One approval, answered too (what a notification's link opens), to those who may see it: the asker and admins.
    const one = (who: keyof typeof tokens) => api.request('GET', `/api/approvals/${id}`, { headers: { authorization: `Bearer ${tokens[who]}` } });
    for (const who of ['boss', 'bot'] as const) assert.deepEqual(pick((await one(who)).json<{ approval: { status: string; answeredBy: string } }>().approval, 'status', 'answeredBy'), { status: 'answered', answeredBy: 'boss' });
    assert.equal((await one('viewer')).status, 404);
    const audit = await remux(['audit', 'ls', '--json'], { env: h.env });
    const answers = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { operation: string; principal: string; reason: string }).filter((a) => a.operation === 'approval.answer');
    assert.deepEqual(answers.map((a) => a.principal), ['link', 'link', 'boss']);
    assert.match(answers[0]!.reason, /^answered "Approve" by link \(sent to webhook\) for bot: /);
    assert.match(answers[1]!.reason, /^answered "Deny" by link \(sent to webhook\) via ntfy for bot: /);
    const listed = await remux(['approvals', 'ls', '--all'], { env: h.env });
    assert.match(listed.stdout, /answered "Deny" by link \(sent to webhook\)/);
  });

  test('a command\'s secrets stay out of its question: not in the message sent, on the confirm page or in the approvals list', async () => {
    const secret = 'hunter2-not-for-phones';
    const { id, links, exited, sent } = await askToTouch(join(h.home, 'secret'), `--password=${secret} `);
    assert.match(sent, /--password=\[REDACTED\]/);
    const confirm = await api.request('GET', pathOf(links.find((l) => l.label === 'Deny')!.url));
    assert.equal(confirm.status, 200);
    const listed = await api.request('GET', '/api/approvals', { headers: { authorization: `Bearer ${tokens.boss}` } });
    assert.equal(listed.json<{ approvals: Array<{ id: string }> }>().approvals[0]?.id, id);
    for (const [where, text] of [['message', sent], ['confirm page', confirm.text], ['approvals list', listed.text]]) assert.ok(!text!.includes(secret), `${where}: ${text}`);
    const denied = await api.request('POST', `/api/approvals/${id}/answer`, { headers: FORM, body: formOf(links.find((l) => l.label === 'Deny')!.url) });
    assert.equal(denied.status, 200, denied.text);
    assert.equal(await exited, 77);
  });
  test('bidi controls and zero-width characters in a command are named where its question is read, so it cannot look like another (Trojan Source)', async () => {
    // Shown as is, `touch x\u202Etxt.exe` reads "touch xexe.txt"; the zero-width space hides in a word.
    const { id, links, exited, sent } = await askToTouch(join(h.home, 'x\u202etxt.exe\u200b'));
    const deny = links.find((l) => l.label === 'Deny')!.url;
    const confirm = await api.request('GET', pathOf(deny));
    assert.equal(confirm.status, 200);
    const listed = await remux(['approvals', 'ls'], { env: h.env });
    assert.equal(listed.code, 0, listed.stderr);
    for (const [where, text, marked] of [
      ['message sent', JSON.parse(sent).message as string, /x<U\+202E>txt\.exe<U\+200B>/],
      ['confirm page', confirm.text, /x&#60;U\+202E&#62;txt\.exe&#60;U\+200B&#62;/],
      ['remux approvals ls', listed.stdout, /x<U\+202E>txt\.exe<U\+200B>/],
    ] as const) {
      assert.match(text, marked, where);
      assert.doesNotMatch(text, /[\u202e\u200b]/u, where);
    }
    const denied = await api.request('POST', `/api/approvals/${id}/answer`, { headers: FORM, body: formOf(deny) });
    assert.equal(denied.status, 200, denied.text);
    assert.equal(await exited, 77);
  });
});
