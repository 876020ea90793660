// The daemon follows the principals file while it runs (src/gateway/web-console.ts): a real daemon,
// real `remux principal` commands, HTTPS, and the terminal WebSocket on real tmux. Nothing is restarted.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchChromium } from '../support/browser.js';
import { remux, tempHome } from '../support/cli.js';
import { openTerminal, startConsoleDaemon, type ConsoleDaemon, type TerminalClient } from '../support/console-daemon.js';
import { client, type Client } from '../support/https.js';
import { ECHO_POLICY } from '../support/policies.js';

/** The daemon checks the file every 250 ms; a change must show well within this. */
const BOUND_MS = 3000;

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

type Http = { url?: string; off?: string; refusing?: string };

async function httpStatus(env: Record<string, string>): Promise<Http> {
  const r = await remux(['daemon', 'status', '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { http: Http }).http;
}

/** Polls `probe` until it gives a value; fails after `bound` ms. Returns the value and how long it took. */
async function within<T>(what: string, probe: () => Promise<T | undefined>, bound = BOUND_MS): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return { value, ms: Date.now() - started };
    if (Date.now() - started > bound) assert.fail(`${what}: not within ${bound} ms`);
    await sleep(50);
  }
}

async function addPrincipal(env: Record<string, string>, ...args: string[]): Promise<string> {
  const r = await remux(['principal', 'add', ...args, '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { token: string }).token;
}

describe('a daemon started with no principal', { timeout: 60_000 }, () => {
  const h = tempHome();
  before(() => {
    writeFileSync(join(h.home, 'policies.yaml'), ECHO_POLICY);
    writeFileSync(join(h.home, 'config.yaml'), 'http:\n  listen: 127.0.0.1:0\n');
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  test('serves no HTTP; the first `principal add` starts the API, the last `principal rm` stops it; status says why', async () => {
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /web console and API: off: no principal is configured in .*principals\.yaml; .*remux principal add NAME --admin/);
    const off = await httpStatus(h.env);
    assert.equal(off.url, undefined);
    assert.match(off.off ?? '', /no principal is configured/);
    const text = await remux(['daemon', 'status'], { env: h.env });
    assert.match(text.stdout, /web console and API: off: no principal is configured/);

    const boss = await addPrincipal(h.env, 'boss', '--admin');
    const served = await within('the API served after principal add', async () => (await httpStatus(h.env)).url);
    const ca = readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8');
    const api: Client = client(served.value, ca);
    const me = await api.request('GET', '/api/me', { headers: bearer(boss) });
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json<{ name: string }>().name, 'boss');
    assert.equal((await api.request('GET', '/api/me', { headers: bearer('rmx_wrong') })).status, 401);

    // Another principal: removing boss (the last admin: --force) refuses boss's token on the very next request.
    const ops = await addPrincipal(h.env, 'ops', '--hosts', 'localhost');
    assert.equal((await remux(['principal', 'rm', 'boss', '--force'], { env: h.env })).code, 0);
    const gone = await api.request('GET', '/api/me', { headers: bearer(boss) });
    assert.equal(gone.status, 401, gone.text);
    assert.equal((await api.request('GET', '/api/me', { headers: bearer(ops) })).status, 200);

    // The last one removed: the server stops listening (fail closed), and status says why.
    assert.equal((await remux(['principal', 'rm', 'ops'], { env: h.env })).code, 0);
    const stopped = await within('HTTP stopped after the last principal was removed', async () => (await httpStatus(h.env)).off);
    assert.match(stopped.value, /no principal is configured/);
    await assert.rejects(api.request('GET', '/api/me', { headers: bearer(ops) }), /ECONNREFUSED/);

    // And it comes back with the next one, with the new token only.
    const again = await addPrincipal(h.env, 'boss', '--admin');
    const back = await within('HTTP served again', async () => (await httpStatus(h.env)).url);
    const api2 = client(back.value, ca);
    assert.equal((await api2.request('GET', '/api/me', { headers: bearer(again) })).status, 200);
    assert.equal((await api2.request('GET', '/api/me', { headers: bearer(boss) })).status, 401, 'a removed principal\'s token does not come back with its name');
  });
});

describe('a port taken when the first principal is added', { timeout: 60_000 }, () => {
  const h = tempHome();
  const squatter = net.createServer();
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    squatter.close();
    h.remove();
  });

  test('status says why it is off, and the console starts once the port is free', async () => {
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as net.AddressInfo).port;
    writeFileSync(join(h.home, 'policies.yaml'), ECHO_POLICY);
    writeFileSync(join(h.home, 'config.yaml'), `http:\n  listen: 127.0.0.1:${port}\n`);
    assert.equal((await remux(['daemon', 'start'], { env: h.env })).code, 0);
    const token = await addPrincipal(h.env, 'boss', '--admin');
    const refused = await within('status names the failure', async () => {
      const http = await httpStatus(h.env);
      return http.off && /cannot serve/.test(http.off) ? http.off : undefined;
    });
    assert.match(refused.value, new RegExp(`cannot serve on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE.*; trying again every 5s`));
    await new Promise((resolve) => squatter.close(resolve));
    const served = await within('served after the port was freed', async () => (await httpStatus(h.env)).url, 8000);
    assert.equal(served.value, `https://127.0.0.1:${port}/`);
    const api = client(served.value, readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8'));
    assert.equal((await api.request('GET', '/api/me', { headers: bearer(token) })).status, 200);
  });
});

describe('principal changes reach open browser sessions and terminals', { timeout: 120_000 }, () => {
  let d: ConsoleDaemon;
  let api: Client;
  const env = (): Record<string, string> => ({ REMUX_HOME: d.home });
  const file = (): string => join(d.home, 'principals.yaml');

  before(async () => {
    d = await startConsoleDaemon({ boss: ['--admin'], ops: ['--hosts', 'box', '--users', '*'] });
    api = client(d.url, d.ca);
    d.tmux('new-session', '-d', '-s', 'long', 'cat');
  });
  after(() => d.stop());

  async function login(token: string): Promise<string> {
    const r = await api.request('POST', '/api/login', { headers: { origin: d.origin }, body: { token } });
    assert.equal(r.status, 200, r.text);
    return String(r.headers['set-cookie']).split(';')[0]!;
  }

  async function attach(headers: Record<string, string>, query: Record<string, string> = {}): Promise<TerminalClient> {
    const t = await openTerminal(d, { host: 'box', name: 'long', ...query }, headers);
    assert.equal(t.control[0]?.type, 'ready', JSON.stringify(await Promise.race([t.closed, sleep(100)])));
    return t;
  }

  async function closesWith(t: TerminalClient, code: number, reason: RegExp): Promise<void> {
    const closed = await within('the terminal closed', () => Promise.race([t.closed, sleep(50).then(() => undefined)]));
    assert.equal(closed.value.code, code, closed.value.reason);
    assert.match(closed.value.reason, reason);
  }

  test('logging out, or in again, closes the terminals opened with that browser session; other sessions of the principal and its token go on', async () => {
    const logIn = async (cookie?: string): Promise<{ cookie: string; csrf: string }> => {
      const r = await api.request('POST', '/api/login', { headers: { origin: d.origin, ...(cookie ? { cookie } : {}) }, body: { token: d.tokens.boss } });
      assert.equal(r.status, 200, r.text);
      return { cookie: String(r.headers['set-cookie']).split(';')[0]!, csrf: r.json<{ csrfToken: string }>().csrfToken };
    };
    const first = await logIn();
    const second = await logIn();
    const byFirst = await attach({ cookie: first.cookie, origin: d.origin });
    const bySecond = await attach({ cookie: second.cookie, origin: d.origin });
    const byToken = await attach(bearer(d.tokens.boss!));

    const out = await api.request('POST', '/api/logout', { headers: { cookie: first.cookie, origin: d.origin, 'x-csrf-token': first.csrf } });
    assert.equal(out.status, 204, out.text);
    await closesWith(byFirst, 4001, /^this browser session was logged out$/);
    bySecond.send({ type: 'input', data: 'second goes on\r' });
    await bySecond.shows(/second goes on/);

    await logIn(second.cookie);
    await closesWith(bySecond, 4001, /^this browser logged in again$/);
    byToken.send({ type: 'input', data: 'token goes on\r' });
    await byToken.shows(/token goes on/);
    byToken.ws.close();
  });

  test('logging out ends the audit stream opened with that browser session; one opened with the token goes on', async () => {
    const r = await api.request('POST', '/api/login', { headers: { origin: d.origin }, body: { token: d.tokens.boss } });
    assert.equal(r.status, 200, r.text);
    const cookie = String(r.headers['set-cookie']).split(';')[0]!;
    const stream = (headers: Record<string, string>): Promise<{ ended: () => boolean; end: () => void }> =>
      new Promise((resolve, reject) => {
        const req = https.request(new URL('/api/audit/stream', d.url), { ca: d.ca, headers, agent: false }, (res) => {
          assert.equal(res.statusCode, 200);
          let ended = false;
          res.resume().on('close', () => (ended = true));
          resolve({ ended: () => ended, end: () => req.destroy() });
        });
        req.on('error', reject);
        req.end();
      });
    const byCookie = await stream({ cookie });
    const byToken = await stream(bearer(d.tokens.boss!));

    const out = await api.request('POST', '/api/logout', { headers: { cookie, origin: d.origin, 'x-csrf-token': r.json<{ csrfToken: string }>().csrfToken } });
    assert.equal(out.status, 204, out.text);
    await within('the cookie\'s audit stream ended', async () => (byCookie.ended() ? true : undefined));
    assert.equal(byToken.ended(), false);
    byToken.end();
  });

  test('a rotated token ends its cookie sessions and terminals at once; other principals go on', async () => {
    const cookie = await login(d.tokens.ops!);
    const byToken = await attach(bearer(d.tokens.ops!));
    const byCookie = await attach({ cookie, origin: d.origin });
    const boss = await attach(bearer(d.tokens.boss!));

    const r = await remux(['principal', 'rotate', 'ops', '--json'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const fresh = (JSON.parse(r.stdout) as { token: string }).token;
    assert.equal((await api.request('GET', '/api/me', { headers: bearer(d.tokens.ops!) })).status, 401, 'the old token');
    assert.equal((await api.request('GET', '/api/me', { headers: { cookie } })).status, 401, 'the cookie made with it');
    await closesWith(byToken, 4001, /^the token of ops was rotated$/);
    await closesWith(byCookie, 4001, /^the token of ops was rotated$/);
    d.tokens.ops = fresh;

    // The boss's terminal is untouched: it still types into the session.
    boss.send({ type: 'input', data: 'still here\r' });
    await boss.shows(/still here/);
    boss.ws.close();
    assert.equal(d.hasSession('long'), true, 'closing attaches never ends the session');
  });

  test('an edited scope ends the principal\'s terminals (reconnecting decides again)', async () => {
    const t = await attach(bearer(d.tokens.ops!));
    const before = readFileSync(file(), 'utf8');
    assert.match(before, /attach: interactive/);
    writeFileSync(file(), before.replace(/(ops:[\s\S]*?)attach: interactive/, '$1attach: read-only'));
    await closesWith(t, 4003, /^the scope of ops changed; reconnect$/);
    const refused = await openTerminal(d, { host: 'box', name: 'long' }, bearer(d.tokens.ops!));
    assert.deepEqual(await refused.closed, { code: 4003, reason: 'out of scope for ops: it may only watch sessions (attach: read-only)' }, 'the new scope decides');
    const again = await attach(bearer(d.tokens.ops!), { readOnly: 'true' });
    assert.equal(again.control[0]?.readOnly, true);
    again.ws.close();
  });

  test('`principal set` reaches the running daemon: open terminals close, the next request is held to the new scope; the token and cookie go on', async () => {
    const cookie = await login(d.tokens.ops!);
    const t = await attach(bearer(d.tokens.ops!), { readOnly: 'true' }); // ops is read-only since the test before
    const hosts = (): ReturnType<Client['request']> => api.request('GET', '/api/hosts', { headers: { cookie } });
    assert.equal((await hosts()).status, 200);

    const r = await remux(['principal', 'set', 'ops', '--hosts', 'web*'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'changed principal ops (its token stays the same):\n  hosts: web* (was box)\n');
    await closesWith(t, 4003, /^the scope of ops changed; reconnect$/);
    const narrowed = await hosts();
    assert.equal(narrowed.status, 403, narrowed.text);
    assert.match(narrowed.json<{ message: string }>().message, /^principal ops's hosts \(web\*\) match no host in the inventory .*\(remux principal set ops --hosts SELECTOR\)$/);
    const refused = await openTerminal(d, { host: 'box', name: 'long', readOnly: 'true' }, bearer(d.tokens.ops!));
    assert.equal((await refused.closed).code, 4003, 'the new scope decides a new attach');

    assert.equal((await remux(['principal', 'set', 'ops', '--hosts', 'box'], { env: env() })).code, 0);
    assert.equal((await hosts()).status, 200, 'the same cookie, under the scope as it is now');
    const again = await attach(bearer(d.tokens.ops!), { readOnly: 'true' });
    again.ws.close();
  });

  test('a removed principal: its token and cookie get 401, its open terminal closes with the reason', async () => {
    const cookie = await login(d.tokens.ops!);
    const t = await attach({ cookie, origin: d.origin }, { readOnly: 'true' }); // ops is read-only since the test before
    assert.equal((await remux(['principal', 'rm', 'ops'], { env: env() })).code, 0);
    assert.equal((await api.request('GET', '/api/me', { headers: bearer(d.tokens.ops!) })).status, 401);
    assert.equal((await api.request('GET', '/api/me', { headers: { cookie } })).status, 401);
    await closesWith(t, 4001, /^principal ops was removed$/);
    assert.equal(d.hasSession('long'), true);
  });

  test('a streaming run of a rotated token is cut, and its command ends', async () => {
    const token = await addPrincipal(env(), 'runner', '--hosts', 'box', '--policy', 'read_only');
    const base = new URL(d.url);
    const req = https.request({ method: 'POST', host: base.hostname, port: base.port, path: '/api/run', ca: d.ca, agent: false, headers: { ...bearer(token), 'content-type': 'application/json' } });
    const ended = new Promise<string>((resolve) => {
      req.on('error', (err) => resolve(`error: ${err.message}`));
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve('end'));
        res.on('error', (err) => resolve(`error: ${err.message}`));
        res.on('aborted', () => resolve('aborted'));
      });
    });
    req.end(JSON.stringify({ selector: 'box', command: 'sleep 30' }));
    const run = async (): Promise<{ status: string } | undefined> =>
      (await api.request('GET', '/api/audit?principal=runner', { headers: bearer(d.tokens.boss!) })).json<Array<{ command: string; status: string }>>().find((a) => a.command === 'sleep 30');
    await within('the run started', async () => ((await run())?.status === 'incomplete' ? true : undefined));
    assert.equal((await remux(['principal', 'rotate', 'runner'], { env: env() })).code, 0);
    const how = await within('the stream was cut', () => Promise.race([ended, sleep(50).then(() => undefined)]));
    assert.match(how.value, /error|aborted/, 'cut, not finished');
    await within('the command ended', async () => ((await run())?.status === 'complete' ? true : undefined), 10_000);
  });

  test('an invalid principals file admits nobody (a 503 that names no file; the log and status name file:line) and ends open terminals; fixing it restores access', async () => {
    const t = await attach(bearer(d.tokens.boss!));
    const good = readFileSync(file(), 'utf8');
    writeFileSync(file(), `${good}  broken: [\n`);
    await closesWith(t, 4001, /principals file is invalid/);
    const refused = await api.request('GET', '/api/me', { headers: bearer(d.tokens.boss!) });
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.json().error, 'principals_invalid');
    // Whoever asks is not authenticated: the answer tells them to ask the operator, and names none of the daemon's files.
    assert.equal(refused.json<{ message: string }>().message, "the server's configuration is invalid: nobody is admitted until it is fixed; ask its operator (remux daemon status says what is wrong)");
    const login503 = await api.request('POST', '/api/login', { headers: { origin: d.origin }, body: { token: d.tokens.boss } });
    assert.equal(login503.status, 503);
    assert.doesNotMatch(login503.text, /principals\.yaml|\.config|\/tmp\//);
    // MCP says so too (not an internal error).
    const mcp503 = await api.request('POST', '/mcp', { headers: { ...bearer(d.tokens.boss!), accept: 'application/json, text/event-stream' }, body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
    assert.equal(mcp503.status, 503, mcp503.text);
    assert.equal(mcp503.json().error, 'principals_invalid');
    assert.doesNotMatch(mcp503.text, /principals\.yaml|\.config|\/tmp\//);
    const status = await within('status shows the invalid file', async () => (await httpStatus(env())).refusing);
    assert.match(status.value, /principals file is invalid: .*principals\.yaml:\d+/);
    assert.match(readFileSync(join(d.home, 'run', 'daemon.log'), 'utf8'), new RegExp(`admitting nobody: the principals file is invalid: .*${file()}:\\d+`));

    writeFileSync(file(), good);
    assert.equal((await api.request('GET', '/api/me', { headers: bearer(d.tokens.boss!) })).status, 200);
    await within('status clears', async () => ((await httpStatus(env())).refusing === undefined ? true : undefined));
  });
});

describe('a browser session that expires (http.session_hours)', { timeout: 60_000 }, () => {
  let d: ConsoleDaemon;
  before(async () => {
    d = await startConsoleDaemon({ boss: ['--admin'] }, 'http:\n  session_hours: 0.001\n'); // 3.6 s
    d.tmux('new-session', '-d', '-s', 'long', 'cat');
  });
  after(() => d.stop());

  test('ends the terminals and the audit stream opened with it, saying so; the token\'s go on', async () => {
    const api = client(d.url, d.ca);
    const r = await api.request('POST', '/api/login', { headers: { origin: d.origin }, body: { token: d.tokens.boss } });
    assert.equal(r.status, 200, r.text);
    const cookie = String(r.headers['set-cookie']).split(';')[0]!;
    const byCookie = await openTerminal(d, { host: 'box', name: 'long' }, { cookie, origin: d.origin });
    assert.equal(byCookie.control[0]?.type, 'ready');
    const byToken = await openTerminal(d, { host: 'box', name: 'long' }, bearer(d.tokens.boss!));
    let streamEnded = false;
    await new Promise<void>((resolve, reject) => {
      const req = https.request(new URL('/api/audit/stream', d.url), { ca: d.ca, headers: { cookie }, agent: false }, (res) => {
        assert.equal(res.statusCode, 200);
        res.resume().on('close', () => (streamEnded = true));
        resolve();
      });
      req.on('error', reject);
      req.end();
    });
    const closed = await within('the cookie\'s terminal closed', () => Promise.race([byCookie.closed, sleep(50).then(() => undefined)]), 8000);
    assert.deepEqual(closed.value, { code: 4001, reason: 'the browser session expired; log in again' });
    await within('the cookie\'s audit stream ended', async () => (streamEnded ? true : undefined));
    assert.equal((await api.request('GET', '/api/me', { headers: { cookie } })).status, 401);
    byToken.send({ type: 'input', data: 'token goes on\r' });
    await byToken.shows(/token goes on/);
    byToken.ws.close();
  });
});

describe('in the browser', { timeout: 180_000 }, () => {
  test('the terminal page says the principal was removed; a reload asks to log in again', async () => {
    const d = await startConsoleDaemon({ boss: ['--admin'], ops: ['--hosts', 'box', '--users', '*'] });
    const browser = await launchChromium();
    try {
      d.tmux('new-session', '-d', '-s', 'work', 'cat');
      const page = await browser.newPage({ ignoreHTTPSErrors: true });
      await page.goto(d.url);
      await page.locator('#token').fill(d.tokens.ops!);
      await page.locator('#login button[type=submit]').click();
      await page.locator('#who', { hasText: 'ops' }).waitFor();
      await page.goto(`${d.url}#/terminal?host=box&name=work`);
      await page.locator('.term-status', { hasText: 'attached' }).waitFor();

      assert.equal((await remux(['principal', 'rm', 'ops'], { env: { REMUX_HOME: d.home } })).code, 0);
      await page.locator('.term-status.closed', { hasText: 'Logged out: principal ops was removed' }).waitFor({ timeout: BOUND_MS });
      assert.equal(d.hasSession('work'), true);
      // Its cookie is worth nothing now: the console shows the login form again.
      await page.goto(d.url);
      await page.locator('#token').waitFor();
      assert.equal(await page.locator('#who', { hasText: 'ops' }).count(), 0);
    } finally {
      await browser.close();
      await d.stop();
    }
  });
});
