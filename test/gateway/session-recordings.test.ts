// `sessions.record: sessions` against a real daemon, real tmux and the system Chromium: a session created
// through remux is recorded from its creation while nobody is attached (a control client that `session
// ls` does not count), its `session.record` audit action names the recording, an attach to it names the
// same recording instead of writing its own, a resize and the session's end are in the file, which plays
// in the console; a session created outside remux is recorded only while attached.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchChromium } from '../support/browser.js';
import { remux } from '../support/cli.js';
import { client, type Client } from '../support/https.js';
import { openTerminal, startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

interface Action {
  id: number;
  status: string;
  principal: string;
  operation: string;
  resource: string | null;
  recording: string | null;
  exitCode: number | null;
  error: string | null;
  bytesOut: number | null;
}

describe('whole-session recordings', { timeout: 90_000 }, () => {
  let d: ConsoleDaemon;
  let api: Client;
  let cookie = '';
  let csrf = '';

  before(async () => {
    d = await startConsoleDaemon({ boss: ['--admin'], ops: ['--hosts', 'box', '--users', '*'] }, 'sessions:\n  record: sessions\n');
    api = client(d.url, d.ca);
    const r = await api.request('POST', '/api/login', { headers: { origin: d.origin }, body: { token: d.tokens.ops } });
    cookie = String(r.headers['set-cookie']).split(';')[0]!;
    csrf = r.json<{ csrfToken: string }>().csrfToken;
  });
  after(() => d.stop());

  const browser = (): Record<string, string> => ({ cookie, origin: d.origin, 'x-csrf-token': csrf });
  const audit = async (): Promise<Action[]> => (await api.request('GET', '/api/audit?limit=1000', { headers: bearer(d.tokens.boss!) })).json<Action[]>();
  const until = async <T>(what: string, get: () => Promise<T | undefined>): Promise<T> => {
    for (const deadline = Date.now() + 10_000; ; await sleep(50)) {
      const v = await get();
      if (v !== undefined) return v;
      assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    }
  };

  test('recorded from creation with nobody attached, named by its audit action and by an attach, played back', async () => {
    const made = await api.request('POST', '/api/sessions', { headers: browser(), body: { host: 'box', name: 'whole' } });
    assert.equal(made.status, 201, made.text);
    const record = (await audit()).find((a) => a.operation === 'session.record');
    assert.ok(record, 'the recording start is audited by the time the session is created');
    assert.deepEqual([record.principal, record.resource, record.status], ['ops', `${d.me}@box:whole`, 'incomplete']);
    const id = record.recording!;
    assert.match(id, /^\d{8}T\d{6}Z-[0-9a-f]{12}$/);

    // Output while nobody is attached (typed by tmux itself, not through any remux attach).
    d.tmux('send-keys', '-t', '=whole:', 'echo alone-$((6*7))', 'Enter');
    // tmux sees the recorder as a client; the listing does not count it.
    assert.match(d.tmux('list-clients', '-F', '#{client_flags}:#{session_name}'), /control-mode.*read-only.*:whole/);
    assert.match(d.tmux('list-sessions', '-F', '#{session_name}:#{session_attached}'), /^whole:1$/m);
    const listed = (await api.request('GET', '/api/sessions?fresh=true', { headers: bearer(d.tokens.ops!) })).json<{ hosts: Array<{ users: Array<{ sessions: Array<{ name: string; attached: number }> }> }> }>();
    assert.deepEqual(listed.hosts[0]!.users[0]!.sessions.map((s) => [s.name, s.attached]), [['whole', 0]]);

    // An attach names the session's recording and writes none of its own.
    const t = await openTerminal(d, { host: 'box', name: 'whole', cols: '70', rows: '20' }, bearer(d.tokens.ops!));
    assert.equal(t.control[0]?.recording, id);
    await t.shows(/alone-42/);
    t.ws.close();
    await t.closed;
    const attach = await until('the attach audited', async () => (await audit()).find((a) => a.operation === 'session.attach' && a.status === 'complete'));
    assert.equal(attach.recording, id);
    assert.deepEqual([attach.exitCode, attach.error], [0, null], 'the viewer leaving is a detach, not a failure');
    assert.deepEqual(readdirSync(join(d.home, 'recordings')), [`${id}.cast`]);

    d.tmux('resize-window', '-t', '=whole', '-x', '100', '-y', '30');
    d.tmux('send-keys', '-t', '=whole:', 'echo after-the-attach', 'Enter');
    await sleep(300);
    const killed = await api.request('POST', '/api/sessions/kill', { headers: browser(), body: { host: 'box', name: 'whole', confirm: 'whole' } });
    assert.equal(killed.status, 200, killed.text);
    const ended = await until('the recording to end with the session', async () => (await audit()).find((a) => a.id === record.id && a.status === 'complete'));
    assert.deepEqual([ended.exitCode, ended.error], [0, null]);

    const file = await api.request('GET', `/api/recordings/${id}`, { headers: bearer(d.tokens.ops!) });
    assert.equal(file.status, 200, file.text);
    const [header, ...events] = file.text.trim().split('\n').map((l) => JSON.parse(l) as unknown);
    const h = header as { version: number; width: number; height: number; remux: Record<string, unknown> };
    assert.deepEqual([h.version, h.width, h.height], [2, 80, 24], "the session's size (tmux's default), not the attach's 70x20");
    assert.deepEqual([h.remux.kind, h.remux.principal, h.remux.session, h.remux.actionId], ['session', 'ops', 'whole', record.id]);
    const evs = events as Array<[number, string, string]>;
    const output = evs.filter((e) => e[1] === 'o').map((e) => e[2]).join('');
    assert.match(output, /alone-42/);
    assert.match(output, /after-the-attach/);
    assert.ok(evs.some((e) => e[1] === 'r' && e[2] === '100x30'), 'the resize is an event');
    assert.deepEqual(evs.map((e) => e[0]), evs.map((e) => e[0]).sort((a, b) => a - b), 'timestamps never go back');
    assert.equal(ended.bytesOut, Buffer.byteLength(file.text));

    const listing = (await api.request('GET', '/api/recordings', { headers: bearer(d.tokens.ops!) })).json<Array<{ id: string; kind: string }>>();
    assert.deepEqual(listing.map((r) => [r.id, r.kind]), [[id, 'session']]);

    // Played back in the console, from the list.
    const chrome = await launchChromium();
    try {
      const page = await (await chrome.newContext({ ignoreHTTPSErrors: true })).newPage();
      await page.goto(`${d.url}#/recordings`);
      await page.locator('#token').fill(d.tokens.ops!);
      await page.locator('#login button[type=submit]').click();
      const row = page.locator(`tr[data-id="${id}"]`);
      assert.match((await row.textContent())!, /ops.*box.*whole \(whole session\)/);
      await row.locator('button', { hasText: 'Play' }).click();
      await page.locator('.player-screen .xterm-rows', { hasText: 'after-the-attach' }).waitFor({ timeout: 15_000 });
    } finally {
      await chrome.close();
    }
  });

  test('a window made 10000x10000 from inside the session is recorded so, and played at the size a watch takes (1000x500 at most)', async () => {
    const made = await api.request('POST', '/api/sessions', { headers: browser(), body: { host: 'box', name: 'huge' } });
    assert.equal(made.status, 201, made.text);
    const record = await until('the recording start audited', async () => (await audit()).find((a) => a.operation === 'session.record' && a.resource === `${d.me}@box:huge`));
    const id = record.recording!;
    // Anyone with a shell in the session may run this (its $TMUX names the server).
    d.tmux('resize-window', '-t', '=huge', '-x', '10000', '-y', '10000');
    await sleep(300);
    d.tmux('send-keys', '-t', '=huge:', 'echo after-the-$((3*7))-resize', 'Enter');
    await sleep(300);
    d.tmux('kill-session', '-t', '=huge');
    await until('the recording to end with the session', async () => (await audit()).find((a) => a.id === record.id && a.status === 'complete'));
    const file = await api.request('GET', `/api/recordings/${id}`, { headers: bearer(d.tokens.ops!) });
    assert.ok(file.text.includes('"r","10000x10000"]'), 'the recording has the size the window had');

    const chrome = await launchChromium();
    try {
      const page = await (await chrome.newContext({ ignoreHTTPSErrors: true })).newPage();
      await page.goto(`${d.url}#/recordings?id=${id}`);
      await page.locator('#token').fill(d.tokens.ops!);
      await page.locator('#login button[type=submit]').click();
      await page.locator('.player-screen .xterm-rows', { hasText: 'after-the-21-resize' }).waitFor({ timeout: 15_000 });
      // xterm.js draws a row element per row: 10000 of them, with a buffer of 10000 columns each, froze the page.
      assert.equal(await page.locator('.player-screen .xterm-rows > div').count(), 500);
    } finally {
      await chrome.close();
    }
  });

  test('a session created outside remux is not recorded whole: an attach to it is recorded as an attach', async () => {
    d.tmux('new-session', '-d', '-s', 'outside');
    const before = (await audit()).filter((a) => a.operation === 'session.record').length;
    const t = await openTerminal(d, { host: 'box', name: 'outside' }, bearer(d.tokens.ops!));
    const id = t.control[0]?.recording as string;
    assert.match(id, /^\d{8}T\d{6}Z-[0-9a-f]{12}$/);
    t.ws.close();
    await t.closed;
    const attach = await until('the attach audited', async () => (await audit()).find((a) => a.operation === 'session.attach' && a.recording === id && a.status === 'complete'));
    assert.equal(attach.principal, 'ops');
    assert.equal((await audit()).filter((a) => a.operation === 'session.record').length, before);
    const listing = (await api.request('GET', '/api/recordings', { headers: bearer(d.tokens.ops!) })).json<Array<{ id: string; kind: string }>>();
    assert.equal(listing.find((r) => r.id === id)?.kind, 'attach');
    d.tmux('kill-session', '-t', '=outside');
  });

  test('session new -a in the CLI (-ac CMD): the daemon makes the session and records it whole from its start, the CLI attaches', async () => {
    const r = await remux(['session', 'new', 'cliwhole', '--host', 'box', '-ac', 'echo from-the-start && sleep 600'], { env: { REMUX_HOME: d.home }, input: '' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^created session cliwhole on box/m);
    const of = (operation: string): Action | undefined => all.find((a) => a.operation === operation && a.resource === `${d.me}@box:cliwhole`);
    let all = await audit();
    const [made, record, attach] = [of('session.new'), of('session.record'), of('session.attach')];
    assert.ok(made && record && attach, JSON.stringify(all.filter((a) => a.resource?.endsWith(':cliwhole'))));
    assert.ok(made.id < record.id && record.id < attach.id, 'recorded from its creation, before the attach');
    assert.equal(attach.recording, null, 'the attach writes no recording of its own');
    d.tmux('kill-session', '-t', '=cliwhole');
    await until('the recording to end with the session', async () => (all = await audit()).find((a) => a.id === record.id && a.status === 'complete'));
    const file = await api.request('GET', `/api/recordings/${record.recording!}`, { headers: bearer(d.tokens.boss!) });
    assert.equal(file.status, 200, file.text);
    assert.match(file.text, /"kind":"session"/);
    assert.match(file.text, /from-the-start/);
  });
});
