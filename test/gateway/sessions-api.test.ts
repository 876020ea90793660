// The sessions API and the terminal WebSocket against a real daemon and real tmux, adversarially: no
// cookie, forged Origin, missing CSRF token, out-of-scope users and hosts, the 6th attach, hostile names.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { remux } from '../support/cli.js';
import { cpuSeconds } from '../support/procs.js';
import { WebSocket } from 'ws';
import { client, type Client } from '../support/https.js';
import { openTerminal, startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

describe('sessions over HTTPS and the terminal WebSocket', { timeout: 60_000 }, () => {
  let d: ConsoleDaemon;
  let api: Client;
  let cookie = '';
  let csrf = '';

  before(async () => {
    d = await startConsoleDaemon({ boss: ['--admin'], stranger: ['--hosts', 'box', '--users', 'nobody-here'], watcher: ['--hosts', 'box', '--users', '*', '--read-only'], elsewhere: ['--hosts', 'web*'] });
    api = client(d.url, d.ca);
    const r = await api.request('POST', '/api/login', { headers: { origin: d.origin }, body: { token: d.tokens.boss } });
    cookie = String(r.headers['set-cookie']).split(';')[0]!;
    csrf = r.json<{ csrfToken: string }>().csrfToken;
  });
  after(() => d.stop());

  const browser = (extra: Record<string, string> = {}): Record<string, string> => ({ cookie, origin: d.origin, 'x-csrf-token': csrf, ...extra });

  test('list, create with a policy-checked command, capture, kill only with the name repeated', async () => {
    const empty = await api.request('GET', '/api/sessions', { headers: bearer(d.tokens.boss!) });
    assert.equal(empty.status, 200, empty.text);
    // This machine is listed first, as in every listing; the admin's scope includes it.
    const listedEmpty = empty.json<{ hosts: Array<{ host: string; users: Array<{ state: string }> }> }>().hosts;
    assert.deepEqual(listedEmpty.map((h) => h.host), ['localhost', 'box']);
    assert.deepEqual(listedEmpty[1]!.users.map((u) => u.state), ['no_server']);

    const made = await api.request('POST', '/api/sessions', { headers: browser(), body: { host: 'box', name: 'job', command: 'echo from-the-api' } });
    assert.equal(made.status, 201, made.text);
    // tmux keeps nothing of a command that exits; a long one shows in the pane.
    assert.equal((await api.request('POST', '/api/sessions', { headers: browser(), body: { host: 'box', name: 'cat1', command: 'cat' } })).status, 201);
    const denied = await api.request('POST', '/api/sessions', { headers: browser(), body: { host: 'box', name: 'evil', command: 'rm -rf /tmp/x' } });
    assert.equal(denied.status, 403, denied.text);
    assert.equal(d.hasSession('evil'), false);
    const taken = await api.request('POST', '/api/sessions', { headers: browser(), body: { host: 'box', name: 'cat1' } });
    assert.equal(taken.status, 409, taken.text);
    assert.match(taken.json<{ message: string }>().message, /^a session named "cat1" already exists on box for tmux user \S+: pick another name, or attach to it$/);

    const list = await api.request('GET', '/api/sessions', { headers: bearer(d.tokens.boss!) });
    const users = list.json<{ hosts: Array<{ host: string; users: Array<{ user: string; state: string; sessions: Array<{ name: string; windows: number }> }> }> }>().hosts.find((h) => h.host === 'box')!.users;
    assert.deepEqual(users.map((u) => [u.user, u.state, u.sessions.map((s) => s.name)]), [[d.me, 'ok', ['cat1']]]);

    d.tmux('send-keys', '-t', '=cat1:', 'typed-by-tmux', 'Enter');
    let text = '';
    for (let i = 0; i < 100 && !/typed-by-tmux\n.*typed-by-tmux/s.test(text); i++) {
      text = (await api.request('GET', '/api/sessions/capture?host=box&name=cat1&lines=50', { headers: bearer(d.tokens.boss!) })).json<{ text: string }>().text;
    }
    assert.match(text, /typed-by-tmux\n.*typed-by-tmux/s);
    assert.equal((await api.request('GET', '/api/sessions/capture?host=box&name=nope', { headers: bearer(d.tokens.boss!) })).status, 404);

    const wrong = await api.request('POST', '/api/sessions/kill', { headers: browser(), body: { host: 'box', name: 'cat1', confirm: 'cat' } });
    assert.equal(wrong.status, 400);
    assert.equal(d.hasSession('cat1'), true);
    const killed = await api.request('POST', '/api/sessions/kill', { headers: browser(), body: { host: 'box', name: 'cat1', confirm: 'cat1' } });
    assert.equal(killed.status, 200, killed.text);
    assert.equal(d.hasSession('cat1'), false);
  });

  test('no cookie, forged Origin, missing CSRF token: refused before tmux is touched', async () => {
    assert.equal((await api.request('GET', '/api/sessions')).status, 401);
    const body = { host: 'box', name: 'forged' };
    assert.equal((await api.request('POST', '/api/sessions', { body })).status, 401);
    const forged = await api.request('POST', '/api/sessions', { headers: browser({ origin: 'https://evil.example' }), body });
    assert.equal(forged.status, 403);
    assert.equal(forged.json().error, 'forbidden_origin');
    const { 'x-csrf-token': _, ...noCsrf } = browser();
    const missing = await api.request('POST', '/api/sessions', { headers: noCsrf, body });
    assert.equal(missing.status, 403);
    assert.equal(missing.json().error, 'csrf');
    d.tmux('new-session', '-d', '-s', 'victim');
    const kill = await api.request('POST', '/api/sessions/kill', { headers: browser({ origin: 'https://evil.example' }), body: { host: 'box', name: 'victim', confirm: 'victim' } });
    assert.equal(kill.status, 403);
    assert.equal(d.hasSession('forged'), false);
    assert.equal(d.hasSession('victim'), true);

    // The terminal: no credentials, then a cookie from a page of another origin.
    for (const headers of [{ origin: d.origin }, { cookie, origin: 'https://evil.example' }, { cookie }] as Array<Record<string, string>>) {
      const t = await openTerminal(d, { host: 'box', name: 'victim' }, headers).catch((err: Error) => err);
      assert.ok(t instanceof Error && /Unexpected server response: (401|403)/.test(t.message), `${JSON.stringify(Object.keys(headers))}: ${String(t)}`);
    }
  });

  test('scope: a user or host out of scope is a 403 (never an empty list); read-only principals only watch', async () => {
    for (const who of ['stranger', 'elsewhere'] as const) {
      const r = await api.request('GET', '/api/sessions', { headers: bearer(d.tokens[who]!) });
      assert.equal(r.status, 403, `${who}: ${r.text}`);
      assert.equal(r.json().error, 'out_of_scope');
      assert.match(r.json<{ message: string }>().message, new RegExp(`^(out of scope for ${who}: tmux user ${d.me} is not among its users|principal ${who}'s hosts \\(web\\*\\) match no host in the inventory)`));
    }
    const create = await api.request('POST', '/api/sessions', { headers: bearer(d.tokens.stranger!), body: { host: 'box', name: 'mine' } });
    assert.equal(create.status, 403, create.text);
    const otherHost = await api.request('POST', '/api/sessions', { headers: bearer(d.tokens.stranger!), body: { host: 'web1', name: 'mine' } });
    assert.equal(otherHost.status, 403, 'an unknown host reads like one out of scope');
    assert.equal((await api.request('POST', '/api/sessions', { headers: bearer(d.tokens.boss!), body: { host: 'web1', name: 'mine' } })).status, 404);
    assert.equal((await api.request('POST', '/api/sessions', { headers: bearer(d.tokens.boss!), body: { host: 'box', user: 'nobody-here', name: 'mine' } })).status, 404);

    d.tmux('new-session', '-d', '-s', 'scoped');
    const outside = await openTerminal(d, { host: 'box', name: 'scoped' }, bearer(d.tokens.stranger!));
    const closed = await outside.closed;
    assert.equal(closed.code, 4003);
    assert.match(closed.reason, /nobody-here|not in|out of scope/);
    const typing = await openTerminal(d, { host: 'box', name: 'scoped' }, bearer(d.tokens.watcher!));
    assert.equal((await typing.closed).code, 4003, 'a read-only principal may not attach interactively');
    const watching = await openTerminal(d, { host: 'box', name: 'scoped', readOnly: 'true' }, bearer(d.tokens.watcher!));
    assert.equal(watching.control[0]?.type, 'ready');
    watching.ws.close();
    await watching.closed;
  });

  test('the 6th attach of one principal closes 4029; every attach is recorded and audited; slots come back', async () => {
    d.tmux('new-session', '-d', '-s', 'busy', 'cat');
    const open = [];
    for (let i = 0; i < 5; i++) open.push(await openTerminal(d, { host: 'box', name: 'busy', cols: '100', rows: '30' }, bearer(d.tokens.boss!)));
    for (const t of open) assert.equal(t.control[0]?.type, 'ready', JSON.stringify(t.control));
    const sixth = await openTerminal(d, { host: 'box', name: 'busy' }, bearer(d.tokens.boss!));
    const refused = await sixth.closed;
    assert.equal(refused.code, 4029);
    assert.match(refused.reason, /boss already has 5 attaches open/);
    const refusals = await api.request('GET', '/api/audit?level=deny&limit=5', { headers: bearer(d.tokens.boss!) });
    assert.ok(refusals.json<Array<{ reason: string }>>().some((a) => /already has 5 attaches open/.test(a.reason)), 'the refusal is audited');

    // Several viewers of one session: what one types, all see.
    open[0]!.send({ type: 'input', data: 'shared-line\r' });
    for (const t of open) await t.shows(/shared-line/);
    open[0]!.send({ type: 'resize', cols: 5000, rows: 0 });
    // The same size again, and one that is no number (1e400 is Infinity), are not sizes the attach took.
    open[0]!.send({ type: 'resize', cols: 4000, rows: 0 });
    open[0]!.ws.send('{"type":"resize","cols":1e400,"rows":30}');
    const id = String(open[0]!.control[0]!.recording);
    assert.match(id, /^\d{8}T\d{6}Z-[0-9a-f]{12}$/);
    for (const t of open) t.ws.close();
    await Promise.all(open.map((t) => t.closed));

    const cast = join(d.home, 'recordings', `${id}.cast`);
    for (let i = 0; i < 100 && !readFileSync(cast, 'utf8').includes('shared-line'); i++) await new Promise((r) => setTimeout(r, 10));
    const [header, ...events] = readFileSync(cast, 'utf8').trim().split('\n');
    assert.deepEqual(JSON.parse(header!).remux.session, 'busy');
    assert.ok(events.some((e) => e.includes('shared-line')), 'the output is in the recording');
    assert.deepEqual(events.map((e) => JSON.parse(e) as [number, string, string]).filter((e) => e[1] === 'r').map((e) => e[2]), ['1000x1'], 'resizes recorded as clamped, once, and only those taken');
    const audit = await api.request('GET', '/api/audit?limit=20', { headers: bearer(d.tokens.boss!) });
    assert.ok(audit.json<Array<{ operation: string; recording: string | null }>>().some((a) => a.operation === 'session.attach' && a.recording === id), 'the audit record names the recording');

    // The slots come back once the attaches are gone (their processes end a moment after the sockets close).
    let again = await openTerminal(d, { host: 'box', name: 'busy' }, bearer(d.tokens.boss!));
    for (let i = 0; i < 50 && again.control[0]?.type !== 'ready'; i++) {
      assert.equal((await again.closed).code, 4029, JSON.stringify(again.control));
      await new Promise((r) => setTimeout(r, 20));
      again = await openTerminal(d, { host: 'box', name: 'busy' }, bearer(d.tokens.boss!));
    }
    assert.equal(again.control[0]?.type, 'ready');
    again.ws.close();
    await again.closed;
  });

  test('hostile session names and attach targets are refused, never passed to tmux', async () => {
    for (const name of ['a;id', '$(id)', '../x', 'x'.repeat(65), 'ünï', '', 'a b', 'a:b', '=x', 'a\nb']) {
      const r = await api.request('POST', '/api/sessions', { headers: bearer(d.tokens.boss!), body: { host: 'box', name } });
      assert.equal(r.status, 400, `${JSON.stringify(name)}: ${r.text}`);
    }
    // Hostile startup commands: what the parser does not understand, or the policy does not allow.
    for (const command of ['echo $(id)', 'sleep 1; rm -rf /', 'cat /etc/shadow', 'sh -c id', 'echo `id`']) {
      const r = await api.request('POST', '/api/sessions', { headers: bearer(d.tokens.boss!), body: { host: 'box', name: 'hostile', command } });
      assert.ok(r.status === 400 || r.status === 403, `${command}: ${r.status} ${r.text}`);
      assert.equal(d.hasSession('hostile'), false, command);
    }
    // Valid but option-like: tmux gets it as a value, and it names exactly that session.
    assert.equal((await api.request('POST', '/api/sessions', { headers: bearer(d.tokens.boss!), body: { host: 'box', name: '-t' } })).status, 201);
    assert.equal(d.hasSession('-t'), true);
    const recordings = (): number => readdirSync(join(d.home, 'recordings')).length;
    const before = recordings();
    const t = await openTerminal(d, { host: 'box', name: '$(id)' }, bearer(d.tokens.boss!));
    assert.equal((await t.closed).code, 1008);
    const missing = await openTerminal(d, { host: 'box', name: 'no-such-session' }, bearer(d.tokens.boss!));
    assert.equal((await missing.closed).code, 4004);
    const unknown = await openTerminal(d, { host: 'nowhere', name: 'x' }, bearer(d.tokens.boss!));
    assert.equal((await unknown.closed).code, 4004);
    assert.equal(recordings(), before, 'a refused attach leaves no recording');
    // Nor does its audit record name one: the console's audit page linked it to a recording that never was.
    const audit = await api.request('GET', '/api/audit?limit=50', { headers: bearer(d.tokens.boss!) });
    const failed = audit.json<Array<{ operation: string; resource: string | null; recording: string | null; error: string | null }>>().find((a) => a.operation === 'session.attach' && (a.resource ?? '').endsWith(':no-such-session'));
    assert.match(failed?.error ?? '', /no session "no-such-session" on box/, JSON.stringify(failed));
    assert.equal(failed?.recording, null);
  });

  test('a refused attach says why whole: in a refused message before the close, and as the close reason when that fits 123 bytes', async () => {
    const SHORT = 'refused: the reason is in the refused message before this close';
    const unknown = await openTerminal(d, { host: 'nowhere', name: 'x' }, bearer(d.tokens.boss!));
    const unknownClosed = await unknown.closed;
    assert.equal(unknownClosed.code, 4004);
    assert.ok(Buffer.byteLength(unknownClosed.reason) <= 123 && unknownClosed.reason !== SHORT, unknownClosed.reason);
    assert.deepEqual(unknown.control, [{ type: 'refused', code: 4004, message: unknownClosed.reason }], 'a reason that fits is the close reason too, as before');
    // Reasons over 123 bytes were cut mid-word to fit: one naming the sessions there, one quoting a name in two-byte characters.
    for (let i = 0; i < 4; i++) d.tmux('new-session', '-d', '-s', `many-sessions-here-${i}`);
    const missing = await openTerminal(d, { host: 'box', name: 'no-such-session' }, bearer(d.tokens.boss!));
    assert.deepEqual(await missing.closed, { code: 4004, reason: SHORT });
    assert.equal(missing.control.length, 1);
    assert.match(String(missing.control[0]!.message), /^no session "no-such-session" on box for tmux user \S+ \(sessions there: .*many-sessions-here-3.*\); see `remux session ls --host box`$/);
    const name = 'é'.repeat(60);
    const long = await openTerminal(d, { host: 'box', name }, bearer(d.tokens.boss!));
    assert.deepEqual(await long.closed, { code: 1008, reason: SHORT });
    assert.deepEqual(long.control, [{ type: 'refused', code: 1008, message: `bad session name ${JSON.stringify(name)}: use 1-64 letters, digits, "_" or "-"` }]);
  });

  test('a paste into a pane that reads nothing waits without spinning the daemon, and nothing is written after the attach ends', async () => {
    d.tmux('new-session', '-d', '-s', 'deaf', 'sleep 600');
    const status = await remux(['daemon', 'status', '--json'], { env: { REMUX_HOME: d.home } });
    const pid = (JSON.parse(status.stdout) as { pid: number }).pid;
    const t = await openTerminal(d, { host: 'box', name: 'deaf' }, bearer(d.tokens.boss!));
    assert.equal(t.control[0]?.type, 'ready');
    // 30 MiB of lines, in frames under the 1 MiB a client may send: the pane's pty fills at once and tmux
    // takes keys about a MiB a second, so the daemon has input waiting on a full pty for as long as this
    // test looks (the sockets' buffers hold some MiB of the rest, this client the others).
    const paste = JSON.stringify({ type: 'input', data: 'x'.repeat(63).concat('\r').repeat(15 << 10) });
    for (let i = 0; i < 32; i++) t.ws.send(paste);
    await sleep(500);
    const [cpu, wall] = [cpuSeconds(pid), performance.now()];
    await sleep(3000);
    const busy = (cpuSeconds(pid) - cpu) / ((performance.now() - wall) / 1000);
    assert.ok(t.ws.readyState === WebSocket.OPEN && t.ws.bufferedAmount > 0, 'the paste was still waiting all along');
    // node-pty's own writer retried a full pty at once, over and over: 70% of a core and more here.
    assert.ok(busy < 0.3, `the daemon used ${(busy * 100).toFixed(0)}% of a core while the paste waited`);
    // Gone without a closing handshake, which would wait behind the client's unsent paste.
    t.ws.terminate();
    const detached = (): boolean => /^deaf:0$/m.test(d.tmux('list-sessions', '-F', '#{session_name}:#{session_attached}'));
    for (let i = 0; i < 100 && !detached(); i++) await sleep(20);
    assert.ok(detached(), 'the attach ended');
    // node-pty's writer went on a moment later, on the closed descriptor.
    await sleep(500);
    const log = readFileSync(join(d.home, 'run', 'daemon.log'), 'utf8');
    assert.doesNotMatch(log, /EBADF|pty write error/, 'input written after the pty was closed');
    d.tmux('kill-session', '-t', '=deaf');
  });
});

describe('the attach lifetime over the terminal WebSocket', { timeout: 30_000 }, () => {
  test('an attach past sessions.attach_lifetime_seconds closes 4008 with an exit message; the session goes on', async () => {
    const d = await startConsoleDaemon({ boss: ['--admin'] }, 'sessions: { attach_lifetime_seconds: 1 }\n');
    try {
      d.tmux('new-session', '-d', '-s', 'long', 'cat');
      const t = await openTerminal(d, { host: 'box', name: 'long' }, { authorization: `Bearer ${d.tokens.boss!}` });
      assert.equal(t.control[0]?.type, 'ready');
      const started = Date.now();
      const closed = await t.closed;
      assert.equal(closed.code, 4008);
      assert.ok(Date.now() - started < 5000, 'closed at the lifetime, not later');
      assert.deepEqual(t.control.at(-1), { type: 'exit', reason: 'lifetime', code: t.control.at(-1)?.code ?? null });
      assert.equal(d.hasSession('long'), true, 'the session outlives the attach');
    } finally {
      await d.stop();
    }
  });
});

describe('the sessions API under the principal\'s rate limit', { timeout: 30_000 }, () => {
  test('past the burst, creating (which runs a command), listing, capturing and killing are refused 429 and do nothing', async () => {
    const d = await startConsoleDaemon({ looper: ['--hosts', 'box', '--users', '*'] }, 'daemon:\n  rate_limit: { requests_per_second: 0.001, burst: 2 }\n');
    try {
      const api = client(d.url, d.ca);
      const auth = { authorization: `Bearer ${d.tokens.looper!}` };
      assert.equal((await api.request('POST', '/api/sessions', { headers: auth, body: { host: 'box', name: 'one', command: 'cat' } })).status, 201);
      assert.equal((await api.request('GET', '/api/sessions/capture?host=box&name=one', { headers: auth })).status, 200);
      // The burst of 2 is spent: /api/run would be refused now, and so is every session call.
      const calls: Array<[string, string, object?]> = [
        ['POST', '/api/sessions', { host: 'box', name: 'two', command: 'cat' }],
        ['GET', '/api/sessions'],
        ['GET', '/api/sessions/capture?host=box&name=one'],
        ['POST', '/api/sessions/kill', { host: 'box', name: 'one', confirm: 'one' }],
      ];
      for (const [method, path, body] of calls) {
        const r = await api.request(method, path, { headers: auth, ...(body ? { body } : {}) });
        assert.equal(r.status, 429, `${method} ${path}: ${r.text}`);
        assert.equal(r.json().error, 'rate_limited');
        assert.match(String(r.headers['retry-after']), /^\d+$/);
      }
      assert.equal(d.hasSession('two'), false, 'the refused create ran nothing');
      assert.equal(d.hasSession('one'), true, 'the refused kill killed nothing');
    } finally {
      await d.stop();
    }
  });
});
