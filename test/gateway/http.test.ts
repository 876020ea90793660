// End-to-end and adversarial: a real daemon serving HTTPS on loopback, real principals, a real audit
// store. Every request goes over TLS trusting only the certificate the daemon generated.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import { ADMIN_SCOPE, type PrincipalEntry, type Principals } from '../../src/config/principals.js';
import { LOGIN_RATE, SessionStore } from '../../src/gateway/http/auth.js';
import { limitConnections } from '../../src/gateway/http/connections.js';
import { remux, REMUX_BIN, tempHome } from '../support/cli.js';
import { openTerminal, startConsoleDaemon } from '../support/console-daemon.js';
import { client, wsRoundTrip, type Answer, type Client } from '../support/https.js';
import { until } from '../support/until.js';

const POLICY = `policies:
  read_only:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: echo|true|yes }
      - { operation: write_stdout, resource: null }
`;
// Never connected to: listing hosts needs no connection, and scoped runs are refused before one.
const HOSTS = `hosts:
  web1: { address: 192.0.2.1, user: ops, labels: { env: prod } }
  db1: { address: 192.0.2.2, user: ops, labels: { env: dev } }
`;

async function addPrincipal(env: Record<string, string>, ...args: string[]): Promise<string> {
  const r = await remux(['principal', 'add', ...args, '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { token: string }).token;
}

async function daemonUrl(env: Record<string, string>): Promise<string> {
  const status = JSON.parse((await remux(['daemon', 'status', '--json'], { env })).stdout) as { http: { url?: string; off?: string } };
  assert.ok(status.http.url, `the daemon serves HTTP: ${status.http.off}`);
  return status.http.url;
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

describe('the daemon\'s HTTPS API', () => {
  const h = tempHome();
  const tokens = { admin: '', prod: '', local: '', nowhere: '' };
  let api: Client;
  let ca = '';
  let origin = '';
  const evil = 'https://evil.example';

  before(async () => {
    writeFileSync(join(h.home, 'policies.yaml'), POLICY);
    writeFileSync(join(h.home, 'hosts.yaml'), HOSTS);
    tokens.admin = await addPrincipal(h.env, 'boss', '--admin');
    tokens.prod = await addPrincipal(h.env, 'prod-ops', '--hosts', 'env=prod');
    tokens.local = await addPrincipal(h.env, 'local-ops', '--hosts', 'localhost');
    tokens.nowhere = await addPrincipal(h.env, 'nowhere-ops', '--hosts', 'gone*');
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /web console and API: https:\/\/127\.0\.0\.1:\d+\//);
    const url = await daemonUrl(h.env);
    origin = new URL(url).origin;
    ca = readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8');
    api = client(url, ca);
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  /** Logs in as a browser on the daemon's own page would; returns the cookie header and CSRF token. */
  async function login(token: string): Promise<{ cookie: string; csrf: string }> {
    const r = await api.request('POST', '/api/login', { headers: { origin }, body: { token } });
    assert.equal(r.status, 200, r.text);
    const setCookie = String(r.headers['set-cookie']);
    assert.match(setCookie, /^__Host-remux_session=[A-Za-z0-9_-]{43}; Max-Age=\d+; Path=\/; HttpOnly; Secure; SameSite=Strict$/);
    return { cookie: setCookie.split(';')[0]!, csrf: r.json<{ csrfToken: string }>().csrfToken };
  }

  test('no credentials, a bad token or a malformed header: 401 with a JSON error; security headers on every answer', async () => {
    for (const headers of [{}, bearer('rmx_wrong'), { authorization: 'Basic Ym9zczp4' }, { cookie: '__Host-remux_session=forged' }]) {
      const r = await api.request('GET', '/api/hosts', { headers });
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(r.json().error, 'unauthenticated');
      assert.match(String(r.headers['content-security-policy']), /default-src 'self'; script-src 'self'/);
      assert.equal(r.headers['x-frame-options'], 'DENY');
      assert.equal(r.headers['strict-transport-security'], 'max-age=31536000');
    }
    const page = await api.request('GET', '/');
    assert.equal(page.status, 200);
    assert.match(page.text, /<script type="module" src="\/main.js"><\/script>/);
    assert.doesNotMatch(page.text, /<script>|<style|\son[a-z]+=/, 'no inline code: the CSP forbids it');
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    assert.equal((await api.request('GET', '/main.js')).status, 200);
    assert.equal((await api.request('GET', '/api/nothing-here', { headers: bearer(tokens.admin) })).status, 404);
  });

  test('a bearer token acts as its principal; scoped principals see only their hosts', async () => {
    const me = await api.request('GET', '/api/me', { headers: bearer(tokens.prod) });
    assert.equal(me.status, 200);
    assert.deepEqual(me.json(), {
      name: 'prod-ops',
      via: 'token',
      scope: { admin: false, hosts: 'env=prod', users: [], createAs: [], attach: 'interactive', policies: [] },
      csrfToken: null,
    });
    const all = await api.request('GET', '/api/hosts', { headers: bearer(tokens.admin) });
    // An admin also has this machine, listed first; `--hosts env=prod` does not (only its own name selects it).
    assert.deepEqual(all.json<Array<{ name: string; transport: string; connected: boolean }>>().map((x) => [x.name, x.transport]), [['localhost', 'local'], ['web1', 'ssh'], ['db1', 'ssh']]);
    assert.equal(all.json<Array<{ connected: boolean }>>()[0]!.connected, true);
    const scoped = await api.request('GET', '/api/hosts', { headers: bearer(tokens.prod) });
    assert.deepEqual(scoped.json<Array<{ name: string; labels: unknown; transport: string }>>().map((x) => [x.name, x.labels, x.transport]), [['web1', { env: 'prod' }, 'ssh']]);
    const local = await api.request('GET', '/api/hosts', { headers: bearer(tokens.local) });
    assert.deepEqual(local.json<Array<{ name: string }>>().map((x) => x.name), ['localhost']);
    const none = await api.request('GET', '/api/hosts', { headers: bearer(tokens.nowhere) });
    assert.equal(none.status, 403, 'a scope that lists no host is a 403, not a silent empty list');
    assert.equal(none.json().error, 'out_of_scope');
  });

  test('run streams NDJSON through perform(); out-of-scope and unknown hosts are 403 alike for a scoped principal, 404 for an admin', async () => {
    const run = await api.request('POST', '/api/run', { headers: bearer(tokens.local), body: { selector: 'localhost', command: 'echo from the api' } });
    assert.equal(run.status, 200, run.text);
    assert.match(String(run.headers['content-type']), /^application\/x-ndjson/);
    const lines = run.text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines[0], { type: 'hosts', hosts: ['localhost'] });
    assert.deepEqual(lines[1], { type: 'output', host: 'localhost', stream: 'stdout', data: 'from the api\n' });
    assert.equal(lines[2]?.type, 'result');
    assert.equal(lines[2]?.exitCode, 0);
    assert.deepEqual(lines[3], { type: 'exit', exitCode: 0 });
    const denied = await api.request('POST', '/api/run', { headers: bearer(tokens.local), body: { selector: 'localhost', command: 'cat /etc/passwd' } });
    assert.deepEqual(denied.text.trim().split('\n').map((l) => JSON.parse(l) as { type: string; exitCode?: number }).at(-1), { type: 'exit', exitCode: 77 });

    for (const selector of ['db1', 'no-such-host', 'env=dev']) {
      const r = await api.request('POST', '/api/run', { headers: bearer(tokens.prod), body: { selector, command: 'true' } });
      assert.equal(r.status, 403, selector);
      assert.match(r.json<{ message: string }>().message, new RegExp(`out of scope for prod-ops: "${selector}" picks none of its hosts \\(env=prod\\)`));
      assert.doesNotMatch(r.text, /db1|web1/.test(selector) ? /web1/ : /db1|web1/, 'no other host is named');
    }
    assert.equal((await api.request('POST', '/api/run', { headers: bearer(tokens.admin), body: { selector: 'no-such-host', command: 'true' } })).status, 404);
    assert.equal((await api.request('POST', '/api/run', { headers: bearer(tokens.admin), body: { selector: 'a,b=c', command: 'true' } })).status, 400);
    const extra = await api.request('POST', '/api/run', { headers: bearer(tokens.admin), body: { selector: 'localhost', command: 'true', shell: true } });
    assert.equal(extra.status, 400, 'unknown body properties are refused, not dropped');
    assert.equal(extra.json<{ message: string }>().message, 'body must NOT have additional properties (unknown: "shell")', 'the refusal names the field');
    // curl -d without -H 'content-type: application/json' sends a form: the answer says what to send.
    const form = await api.request('POST', '/api/run', { headers: { ...bearer(tokens.admin), 'content-type': 'application/x-www-form-urlencoded' }, body: '{"selector":"localhost","command":"true"}' });
    assert.equal(form.status, 415);
    assert.deepEqual(form.json(), {
      error: 'bad_request',
      message: "send the body as JSON with the header Content-Type: application/json (this request's: application/x-www-form-urlencoded)",
    });

    const mine = await api.request('GET', '/api/audit', { headers: bearer(tokens.prod) });
    const records = mine.json<Array<{ principal: string; host: string; level: string }>>();
    assert.deepEqual(records.map((a) => [a.principal, a.host, a.level]), [['prod-ops', 'db1', 'deny'], ['prod-ops', 'no-such-host', 'deny'], ['prod-ops', 'env=dev', 'deny']]);
    const others = await api.request('GET', '/api/audit?principal=local-ops', { headers: bearer(tokens.prod) });
    assert.equal(others.status, 403);
    const admin = await api.request('GET', '/api/audit?principal=local-ops&level=deny', { headers: bearer(tokens.admin) });
    assert.deepEqual(admin.json<Array<{ command: string }>>().map((a) => a.command), ['cat /etc/passwd']);
  });

  test('browser login: the cookie needs the CSRF token and an allowed Origin to change anything; logout ends it', async () => {
    assert.equal((await api.request('POST', '/api/login', { body: { token: tokens.local } })).status, 403, 'a login without Origin');
    const forged = await api.request('POST', '/api/login', { headers: { origin: evil }, body: { token: tokens.local } });
    assert.equal(forged.status, 403);
    assert.equal(forged.json().error, 'forbidden_origin');
    assert.doesNotMatch(forged.text, new RegExp(origin.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'the allowed origins are not told to whoever forged one');
    assert.equal(forged.headers['set-cookie'], undefined);

    const { cookie, csrf } = await login(tokens.local);
    const me = await api.request('GET', '/api/me', { headers: { cookie } });
    assert.equal(me.json().csrfToken, csrf);
    assert.equal(me.json().via, 'cookie');
    const body = { selector: 'localhost', command: 'echo via cookie' };
    const attempts: Array<[Record<string, string>, number, string]> = [
      [{ cookie, origin }, 403, 'csrf'],
      [{ cookie, origin, 'x-csrf-token': `${csrf.slice(0, -1)}${csrf.endsWith('x') ? 'y' : 'x'}` }, 403, 'csrf'],
      [{ cookie, 'x-csrf-token': csrf }, 403, 'forbidden_origin'],
      [{ cookie, origin: evil, 'x-csrf-token': csrf }, 403, 'forbidden_origin'],
      [{ cookie, origin: `${origin}.evil.example`, 'x-csrf-token': csrf }, 403, 'forbidden_origin'],
    ];
    for (const [headers, status, error] of attempts) {
      const r = await api.request('POST', '/api/run', { headers, body });
      assert.equal(r.status, status, JSON.stringify(headers));
      assert.equal(r.json().error, error);
    }
    const ok = await api.request('POST', '/api/run', { headers: { cookie, origin, 'x-csrf-token': csrf }, body });
    assert.equal(ok.status, 200, ok.text);
    assert.match(ok.text, /"data":"via cookie\\n"/);
    assert.equal((await api.request('POST', '/api/run', { headers: { ...bearer(tokens.local), origin: evil }, body })).status, 403, 'a forged Origin is refused with a bearer token too');

    assert.equal((await api.request('POST', '/api/logout', { headers: { cookie, origin } })).status, 403, 'logout is a state change: CSRF token needed');
    const out = await api.request('POST', '/api/logout', { headers: { cookie, origin, 'x-csrf-token': csrf } });
    assert.equal(out.status, 204);
    assert.match(String(out.headers['set-cookie']), /__Host-remux_session=;/);
    assert.equal((await api.request('GET', '/api/me', { headers: { cookie } })).status, 401, 'the session is gone server-side');
  });

  test('logging in again ends the session the browser came with, whoever it was of', async () => {
    const first = await login(tokens.local);
    const again = await api.request('POST', '/api/login', { headers: { origin, cookie: first.cookie }, body: { token: tokens.local } });
    assert.equal(again.status, 200, again.text);
    const second = String(again.headers['set-cookie']).split(';')[0]!;
    assert.notEqual(second, first.cookie);
    assert.equal((await api.request('GET', '/api/me', { headers: { cookie: first.cookie } })).status, 401, 'the old session is gone server-side');
    assert.equal((await api.request('GET', '/api/me', { headers: { cookie: second } })).status, 200);

    const other = await api.request('POST', '/api/login', { headers: { origin, cookie: second }, body: { token: tokens.admin } });
    assert.equal(other.json().name, 'boss');
    assert.equal((await api.request('GET', '/api/me', { headers: { cookie: second } })).status, 401, "another principal's session ends too");
    const third = String(other.headers['set-cookie']).split(';')[0]!;
    assert.equal((await api.request('POST', '/api/login', { headers: { origin, cookie: third }, body: { token: 'rmx_wrong' } })).status, 401);
    assert.equal((await api.request('GET', '/api/me', { headers: { cookie: third } })).status, 200, 'a failed login ends nothing');
  });

  test('rotating a token ends the browser sessions made with it', async () => {
    const { cookie } = await login(tokens.prod);
    assert.equal((await api.request('GET', '/api/me', { headers: { cookie } })).status, 200);
    const r = await remux(['principal', 'rotate', 'prod-ops', '--json'], { env: h.env });
    tokens.prod = (JSON.parse(r.stdout) as { token: string }).token;
    assert.equal((await api.request('GET', '/api/me', { headers: { cookie } })).status, 401);
    assert.equal((await api.request('GET', '/api/me', { headers: bearer(tokens.prod) })).status, 200);
  });

  test('WebSocket upgrades: authenticated, and with a cookie only from an allowed Origin', async () => {
    const { cookie } = await login(tokens.local);
    const refused: Array<[Record<string, string>, number]> = [
      [{}, 401],
      [{ origin }, 401],
      [{ cookie }, 403],
      [{ cookie, origin: evil }, 403],
      [{ ...bearer(tokens.local), origin: evil }, 403],
      [bearer('rmx_wrong'), 401],
    ];
    for (const [headers, status] of refused) {
      const r = await api.upgrade('/api/ws/ping', headers);
      assert.equal(r.status, status, JSON.stringify(Object.keys(headers)));
    }
    for (const headers of [{ cookie, origin }, bearer(tokens.local)]) {
      const r = await api.upgrade('/api/ws/ping', headers);
      assert.equal(r.status, 101);
      assert.ok('socket' in r);
      assert.deepEqual(JSON.parse(await wsRoundTrip(r.socket, 'hello')), { type: 'pong', principal: 'local-ops', data: 'hello' });
    }
  });

  test('REMUX_TOKEN through the daemon: the CLI acts as the token\'s principal, a token of nobody exits 77', async () => {
    const scoped = await remux(['client', 'run', 'db1', '--', 'true'], { env: { ...h.env, REMUX_TOKEN: tokens.prod } });
    assert.equal(scoped.code, 77);
    assert.match(scoped.stderr, /out of scope for prod-ops/);
    const stranger = await remux(['client', 'run', 'localhost', '--', 'true'], { env: { ...h.env, REMUX_TOKEN: 'rmx_wrong' } });
    assert.equal(stranger.code, 77);
    assert.match(stranger.stderr, /REMUX_TOKEN matches no principal/);
  });

  test('a run whose client stops reading is held, not buffered; hanging up ends it', async () => {
    const rss = async (): Promise<number> => (JSON.parse((await remux(['daemon', 'status', '--json'], { env: h.env })).stdout) as { memoryRssBytes: number }).memoryRssBytes;
    const flood = async (): Promise<{ status: string; exitCode: number } | undefined> =>
      (await api.request('GET', '/api/audit?principal=local-ops', { headers: bearer(tokens.admin) })).json<Array<{ command: string; status: string; exitCode: number }>>().find((a) => a.command === 'yes');
    const before = await rss();
    const base = new URL(origin);
    const body = JSON.stringify({ selector: 'localhost', command: 'yes' });
    const req = https.request({ method: 'POST', host: base.hostname, port: base.port, path: '/api/run', ca, agent: false, headers: { ...bearer(tokens.local), 'content-type': 'application/json' } });
    req.on('response', (res) => res.pause()); // never read
    req.on('error', () => undefined);
    req.end(body);
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const grew = (await rss()) - before;
      assert.ok(grew < 32 << 20, `the daemon grew by ${(grew / 2 ** 20).toFixed(1)} MiB for a client that does not read`);
      assert.equal((await flood())?.status, 'incomplete', 'the command waits for the client');
    } finally {
      req.destroy();
    }
    for (const deadline = Date.now() + 10_000; (await flood())?.status !== 'complete'; ) {
      assert.ok(Date.now() < deadline, 'the flood was still running 10 s after the client hung up');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.notEqual((await flood())?.exitCode, 0);
  });

  test('a body read before any credential is checked is refused past 16 KiB, from its Content-Length or as it arrives; a run takes more once authenticated', async () => {
    /** Sends `head` and `body` (never ended: the request stays open) and resolves with the answer's status line, if one comes within 10 s. */
    const answerTo = (head: string, body = ''): Promise<string> =>
      new Promise((resolve, reject) => {
        const base = new URL(origin);
        const socket = tls.connect({ host: base.hostname, port: Number(base.port), ca }, () => socket.write(`${head}\r\n${body}`));
        const timer = setTimeout(() => {
          socket.destroy();
          resolve('no answer within 10 s: the server waits for the body');
        }, 10_000);
        socket.once('data', (d: Buffer) => {
          clearTimeout(timer);
          socket.destroy();
          resolve(d.toString('latin1').split('\r\n')[0]!);
        });
        socket.on('error', reject);
      });
    const host = `Host: ${new URL(origin).host}\r\n`;
    const declared = `Content-Type: application/json\r\nContent-Length: ${1 << 20}\r\n`;
    // A login (its Origin is a header anyone may send), a decision link's answer, a route that does not exist.
    for (const [method, path, extra] of [['POST', '/api/login', `Origin: ${origin}\r\n`], ['POST', '/api/approvals/x/answer', ''], ['DELETE', '/nowhere', '']]) {
      assert.equal(await answerTo(`${method} ${path} HTTP/1.1\r\n${host}${declared}${extra}`), 'HTTP/1.1 413 Payload Too Large', `${method} ${path}`);
    }
    // No length said: refused once 16 KiB came, the rest never read.
    const chunk = `{"token":"${'x'.repeat(8 << 10)}`;
    const chunked = `POST /api/login HTTP/1.1\r\n${host}Origin: ${origin}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n`;
    assert.equal(await answerTo(chunked, `${chunk.length.toString(16)}\r\n${chunk}\r\n`.repeat(3)), 'HTTP/1.1 413 Payload Too Large');
    // A run's body is read after its credential: without one, a large one is refused unread.
    assert.equal(await answerTo(`POST /api/run HTTP/1.1\r\n${host}${declared}`), 'HTTP/1.1 401 Unauthorized');
    // With one, its command may be 65536 characters of three bytes each (192 KiB; in words: one argument holds 128 KiB).
    const wide = await api.request('POST', '/api/run', { headers: bearer(tokens.local), body: { selector: 'localhost', command: `echo${` ${'€'.repeat(999)}`.repeat(65)}` } });
    assert.equal(wide.status, 200, wide.text.slice(0, 300));
    assert.ok(wide.text.endsWith('{"type":"exit","exitCode":0}\n'), wide.text.slice(-300));
    const tooLarge = await api.request('POST', '/api/login', { headers: { origin }, body: { token: 'x'.repeat(20_000) } });
    assert.equal(tooLarge.status, 413);
    assert.deepEqual(tooLarge.json(), { error: 'too_large', message: 'the request body is larger than POST /api/login takes (16384 bytes)' });
  });

  test('successful logins are limited per principal (429 with Retry-After): past the limit none is audited, none makes a session', async () => {
    const token = await addPrincipal(h.env, 'busy-ops', '--hosts', 'localhost');
    const logins = (): Promise<unknown[]> => api.request('GET', '/api/audit?principal=busy-ops', { headers: bearer(tokens.admin) }).then((r) => r.json<unknown[]>());
    for (let i = 0; i < LOGIN_RATE.principal.burst; i++) await login(token);
    const refused = await api.request('POST', '/api/login', { headers: { origin }, body: { token } });
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.json().error, 'too_many_logins');
    assert.match(refused.json<{ message: string }>().message, /too many logins from this address or of this principal; try again in \d+ s/);
    assert.ok(Number(refused.headers['retry-after']) > 50, `Retry-After: ${refused.headers['retry-after']}`);
    assert.equal(refused.headers['set-cookie'], undefined);
    assert.equal((await logins()).length, LOGIN_RATE.principal.burst, 'one audit row per login let in, none for the refused one');
    assert.equal((await api.request('GET', '/api/me', { headers: bearer(token) })).status, 200, 'its bearer token still works');
    assert.equal((await api.request('POST', '/api/login', { headers: { origin }, body: { token: tokens.admin } })).status, 200, 'another principal still logs in');
  });

  test('a principal\'s logins end its own oldest browser sessions past its limit, never another principal\'s', () => {
    const store = new SessionStore(60_000, { perPrincipal: 3, total: 5 });
    const entry = (name: string): PrincipalEntry => ({ name, tokenSha256: name, created: null, scope: ADMIN_SCOPE });
    const principals: Principals = { file: 'principals.yaml', entries: [entry('boss'), entry('ops')] };
    const boss = store.create(entry('boss')).cookie;
    const ops = Array.from({ length: 6 }, () => store.create(entry('ops')).cookie);
    assert.ok(store.find(boss, principals), 'the other principal keeps its session');
    assert.deepEqual(ops.map((c) => store.find(c, principals) !== null), [false, false, false, true, true, true], 'ops keeps its newest 3');
  });

  // Last: it locks this address out for the rest of the daemon's life.
  test('failed logins from one address are slowed, then lock it out for any token not yet accepted from there; one that was passes', async () => {
    const newcomer = await addPrincipal(h.env, 'late-ops', '--hosts', 'localhost');
    const took: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const r = await api.request('POST', '/api/login', { headers: { origin }, body: { token: `rmx_guess${i}` } });
      took.push(Date.now() - t0);
      assert.equal(r.status, 401);
    }
    assert.ok(took[3]! >= 240 && took[4]! >= 490, `the 4th and 5th failures waited: ${took.join(', ')} ms`);
    for (const attempt of [
      () => api.request('POST', '/api/login', { headers: { origin }, body: { token: newcomer } }),
      () => api.request('GET', '/api/me', { headers: bearer(newcomer) }),
    ]) {
      const r = await attempt();
      assert.equal(r.status, 429);
      assert.equal(r.json().error, 'locked_out');
      assert.ok(Number(r.headers['retry-after']) > 800);
    }
    const forged = await api.request('GET', '/api/me', { headers: { ...bearer(newcomer), 'x-forwarded-for': '203.0.113.9' } });
    assert.equal(forged.status, 429, 'X-Forwarded-For from a client is not believed: it names no other address');
    // The address is shared (a NAT, an office): whoever was in before the guessing goes on, at once.
    const t0 = Date.now();
    assert.equal((await api.request('GET', '/api/me', { headers: bearer(tokens.admin) })).status, 200, 'a token accepted from here before passes the lockout');
    assert.ok(Date.now() - t0 < 240, 'and is not slowed');
    assert.equal((await api.request('POST', '/api/login', { headers: { origin }, body: { token: `rmx_guess9` } })).status, 429, "its requests did not wipe the guesser's count");
    // Rotated, the known token is refused once (401), then counted like a guess: locked out.
    const old = tokens.admin;
    const rotated = await remux(['principal', 'rotate', 'boss', '--json'], { env: h.env });
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.equal((await api.request('GET', '/api/me', { headers: bearer(old) })).status, 401);
    assert.equal((await api.request('GET', '/api/me', { headers: bearer(old) })).status, 429);
    const audit = JSON.parse((await remux(['audit', 'ls', '--json', '--principal', '(unknown)'], { env: h.env })).stdout.split('\n')[0]!) as { operation: string; level: string };
    assert.deepEqual([audit.operation, audit.level], ['login', 'deny']);
  });
});

describe('when the daemon serves HTTP', () => {
  const h = tempHome();
  before(() => writeFileSync(join(h.home, 'policies.yaml'), POLICY));
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  test('no principal: the socket is served but not HTTP, with or without HTTP flags; status says why', async () => {
    // The console starts when a principal is added (test/gateway/principals-live.test.ts).
    for (const args of [['daemon', 'start'], ['daemon', 'start', '--listen', '127.0.0.1:0']]) {
      const started = await remux(args, { env: h.env });
      assert.equal(started.code, 0, started.stderr);
      assert.match(started.stdout, /web console and API: off: no principal is configured .*remux principal add NAME --admin/);
      const status = JSON.parse((await remux(['daemon', 'status', '--json'], { env: h.env })).stdout) as { http: { url?: string; off?: string } };
      assert.equal(status.http.url, undefined);
      assert.match(status.http.off ?? '', /remux principal add/);
      await remux(['daemon', 'stop'], { env: h.env });
    }
  });

  test('plain HTTP on a non-loopback address is refused unless --insecure-no-tls', async () => {
    const r = await remux(['daemon', 'start', '--foreground', '--listen', '0.0.0.0:0', '--no-tls'], { env: h.env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /refusing to serve plain HTTP on 0\.0\.0\.0/);
    assert.match(r.stderr, /--insecure-no-tls/);
  });

  test('the generated certificate is signed by a CA made for it alone (its key kept nowhere), generated once (key 0600) and reused; an old self-signed one is replaced', async () => {
    await addPrincipal(h.env, 'boss', '--admin');
    const certFile = join(h.home, 'tls', 'cert.pem');
    // What remux made before: a server certificate that signs itself, which Claude Code and Codex refuse to trust.
    const old = await generate([{ name: 'commonName', value: 'remux' }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256', extensions: [{ name: 'basicConstraints', cA: false }, { name: 'keyUsage', digitalSignature: true, keyEncipherment: true }, { name: 'extKeyUsage', serverAuth: true }, { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }] });
    mkdirSync(join(h.home, 'tls'), { recursive: true, mode: 0o700 });
    writeFileSync(certFile, old.cert);
    writeFileSync(join(h.home, 'tls', 'key.pem'), old.private, { mode: 0o600 });
    assert.equal((await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env })).code, 0);
    const cert = readFileSync(certFile, 'utf8');
    assert.notEqual(cert, old.cert, 'the self-signed one was replaced');
    assert.match(readFileSync(join(h.home, 'run', 'daemon.log'), 'utf8'), /signs itself, which some clients \(Claude Code, Codex\) refuse to trust/);
    const [server, ca, ...more] = (cert.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map((pem) => new X509Certificate(pem));
    assert.ok(server && ca && more.length === 0, 'the server certificate, then its CA');
    assert.deepEqual([server.ca, ca.ca], [false, true]);
    assert.ok(server.checkIssued(ca) && server.verify(ca.publicKey), 'signed by that CA');
    assert.equal(server.verify(server.publicKey), false, 'not signed by itself');
    assert.ok(server.checkPrivateKey(createPrivateKey(readFileSync(join(h.home, 'tls', 'key.pem')))));
    assert.equal(readdirSync(join(h.home, 'tls')).sort().join(' '), 'cert.pem key.pem', "the CA's key is not kept");
    assert.equal(statSync(join(h.home, 'tls', 'key.pem')).mode & 0o777, 0o600);
    assert.equal(statSync(join(h.home, 'tls')).mode & 0o777, 0o700);
    await remux(['daemon', 'stop'], { env: h.env });
    assert.equal((await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env })).code, 0);
    assert.equal(readFileSync(certFile, 'utf8'), cert);
    const url = await daemonUrl(h.env);
    const r = await client(url, cert).request('GET', '/api/me');
    assert.equal(r.status, 401, 'the restarted daemon serves with the kept certificate');
  });
});

describe('a flood of connections', () => {
  const h = tempHome();
  let url: URL;
  let api: Client;
  let token = '';
  before(async () => {
    writeFileSync(join(h.home, 'policies.yaml'), POLICY);
    // 127.0.0.3 plays a proxy in front of the daemon: every client behind it shares its address.
    writeFileSync(join(h.home, 'config.yaml'), 'http:\n  trusted_proxies: [127.0.0.3]\n');
    token = await addPrincipal(h.env, 'boss', '--admin');
    // 256 open files: a flood of 300 idle connections, taken whole, left the daemon none for its own work.
    // The cap is then 128 connections, 32 of them from one address.
    await new Promise<void>((resolve, reject) =>
      execFile('bash', ['-c', 'ulimit -n 256 && exec "$0" "$@"', REMUX_BIN, 'daemon', 'start', '--listen', '127.0.0.1:0'], { env: { PATH: process.env.PATH, ...h.env } }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    url = new URL(await daemonUrl(h.env));
    api = client(url.href, readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8'));
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  /** Opens `count` idle TCP connections from `from`, one after the other; those the daemon refuses are closed. */
  async function connectMany(count: number, from: string): Promise<net.Socket[]> {
    const sockets: net.Socket[] = [];
    for (let i = 0; i < count; i++) {
      const socket = net.connect({ port: Number(url.port), host: url.hostname, localAddress: from }).on('error', () => undefined);
      sockets.push(socket);
      await new Promise((resolve) => socket.once('connect', resolve).once('close', resolve));
    }
    // The daemon's refusals arrive a moment after the connect.
    await new Promise((resolve) => setTimeout(resolve, 500));
    return sockets;
  }
  const stillOpen = (sockets: net.Socket[]): number => sockets.filter((s) => !s.destroyed).length;

  /** GET /api/me from `from`, over a connection of its own. */
  function meFrom(from: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = https.request({ host: url.hostname, port: url.port, path: '/api/me', localAddress: from, ca: readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8'), headers: bearer(token), agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** Served again once the daemon has seen the flood's connections close (a moment after they are destroyed here). */
  async function servedAgain(): Promise<void> {
    let me: Awaited<ReturnType<typeof api.request>> | null = null;
    for (const deadline = Date.now() + 5000; me === null; ) {
      me = await api.request('GET', '/api/me', { headers: bearer(token) }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ECONNRESET' || Date.now() > deadline) throw err;
        return new Promise<null>((resolve) => setTimeout(() => resolve(null), 50));
      });
    }
    assert.equal(me.status, 200);
  }

  test('takes half the daemon\'s open files at most: the CLI is served meanwhile, the API once it ends', async () => {
    // From ten addresses, none past its own share: the total is what refuses.
    const flood: net.Socket[] = [];
    try {
      for (let i = 1; i <= 10; i++) flood.push(...(await connectMany(30, `127.0.0.${i + 10}`)));
      const open = stillOpen(flood);
      assert.ok(open <= 128, `${open} connections were kept open`);
      const run = await remux(['client', 'run', 'localhost', '--', 'echo served'], { env: h.env });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, 'served\n');
    } finally {
      for (const socket of flood) socket.destroy();
    }
    await servedAgain();
    assert.match(readFileSync(join(h.home, 'run', 'daemon.log'), 'utf8'), /HTTP: refused \d+ connections?: 128 are open, the most served at once .*; the last from 127\.0\.0\.\d+/);
  });

  test('one address is served a quarter of the connections at most: another is served meanwhile; a trusted proxy is held to the total only', async () => {
    const mine: net.Socket[] = [];
    try {
      mine.push(...(await connectMany(40, '127.0.0.1')));
      assert.equal(stillOpen(mine), 32, 'the first 32 are kept, the rest closed');
      await assert.rejects(meFrom('127.0.0.1'), { code: 'ECONNRESET' }, 'the full address is refused');
      assert.equal(await meFrom('127.0.0.2'), 200, 'another address is served');
      mine.push(...(await connectMany(40, '127.0.0.3')));
      assert.equal(stillOpen(mine), 72, 'the proxy keeps all 40');
      assert.equal(await meFrom('127.0.0.3'), 200);
    } finally {
      for (const socket of mine) socket.destroy();
    }
    await servedAgain();
    assert.match(readFileSync(join(h.home, 'run', 'daemon.log'), 'utf8'), /HTTP: refused \d+ connections? from addresses that held 32 already, the most one address is served \(a quarter of 128\); the last from 127\.0\.0\.1/);
  });
});

describe('connections counted per client', () => {
  test('an IPv6 /64 is one client, an IPv4-mapped address its IPv4 address', () => {
    const server = net.createServer();
    limitConnections(server, () => false, () => undefined);
    const perAddress = Math.floor(server.maxConnections / 4);
    /** A connection as the server announces it; true when it was let through. */
    const connect = (remoteAddress: string): boolean => {
      let destroyed = false;
      const socket = Object.assign(new EventEmitter(), { remoteAddress, destroy: () => void (destroyed = true) });
      server.emit('connection', socket);
      return !destroyed;
    };
    for (let i = 0; i < perAddress; i++) assert.equal(connect(`2001:db8:1:2::${(i + 1).toString(16)}`), true);
    assert.equal(connect('2001:db8:1:2:ffff::1'), false, 'another address of the full /64');
    assert.equal(connect('2001:db8:1:3::1'), true, 'the next /64');
    for (let i = 0; i < perAddress; i++) assert.equal(connect(i % 2 ? '203.0.113.7' : '::ffff:203.0.113.7'), true);
    assert.equal(connect('203.0.113.7'), false, 'both spellings are one address');
    assert.equal(connect('203.0.113.8'), true);
  });
});

describe('behind a proxy (http.trusted_proxies)', () => {
  const h = tempHome();
  before(() => writeFileSync(join(h.home, 'policies.yaml'), POLICY));
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  test('failed token checks lock out the client the proxy names, not the proxy and everyone behind it', async () => {
    // The proxy is this test, on loopback.
    writeFileSync(join(h.home, 'config.yaml'), 'http:\n  trusted_proxies: [127.0.0.1]\n');
    const token = await addPrincipal(h.env, 'boss', '--admin');
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
    const api = client(await daemonUrl(h.env), readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8'));
    const from = (address: string, t: string): Promise<{ status: number }> => api.request('GET', '/api/me', { headers: { ...bearer(t), 'x-forwarded-for': address } });
    for (let i = 0; i < 5; i++) assert.equal((await from('203.0.113.1', `rmx_guess${i}`)).status, 401);
    assert.equal((await from('203.0.113.1', token)).status, 429, 'the guesser is locked out');
    // What a client writes left of the proxy's own entry proves nothing.
    assert.equal((await from('203.0.113.2, 203.0.113.1', token)).status, 429);
    assert.equal((await from('203.0.113.2', token)).status, 200, 'another client behind the same proxy is not');
    // An IPv4 client as an IPv6 proxy names it: the audit names it as the lockouts count it, by its IPv4 address.
    const login = await api.request('POST', '/api/login', { headers: { origin: new URL(await daemonUrl(h.env)).origin, 'x-forwarded-for': '::ffff:203.0.113.3' }, body: { token: 'rmx_wrong' } });
    assert.equal(login.status, 401);
    const audit = JSON.parse((await remux(['audit', 'ls', '--json', '--principal', '(unknown)'], { env: h.env })).stdout.split('\n')[0]!) as { reason: string };
    assert.match(audit.reason, / from 203\.0\.113\.3$/, 'the audit names the client');
  });

  test('successful logins from one client address are limited whichever principals they are of; another client is not', async () => {
    const url = await daemonUrl(h.env);
    const api = client(url, readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8'));
    const tokens: string[] = [];
    for (const name of ['in1', 'in2', 'in3', 'in4']) tokens.push(await addPrincipal(h.env, name, '--hosts', 'localhost'));
    const loginFrom = (address: string, token: string): Promise<Answer> =>
      api.request('POST', '/api/login', { headers: { origin: new URL(url).origin, 'x-forwarded-for': address }, body: { token } });
    // Spread over four principals, each stays within its own limit.
    for (let i = 0; i < LOGIN_RATE.address.burst; i++) assert.equal((await loginFrom('203.0.113.7', tokens[i % 4]!)).status, 200);
    const refused = await loginFrom('203.0.113.7', tokens[0]!);
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.json().error, 'too_many_logins');
    assert.ok(Number(refused.headers['retry-after']) > 0);
    assert.equal((await loginFrom('203.0.113.8', tokens[0]!)).status, 200);
  });

  test('logins a principal\'s own limit refuses use up nothing of its address\'s: one token cannot keep everyone else at that address out', async () => {
    const url = await daemonUrl(h.env);
    const api = client(url, readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8'));
    const [noisy, other] = [await addPrincipal(h.env, 'noisy', '--hosts', 'localhost'), await addPrincipal(h.env, 'other', '--hosts', 'localhost')];
    const loginFrom = (token: string): Promise<Answer> => api.request('POST', '/api/login', { headers: { origin: new URL(url).origin, 'x-forwarded-for': '203.0.113.9' }, body: { token } });
    for (let i = 0; i < LOGIN_RATE.principal.burst; i++) assert.equal((await loginFrom(noisy)).status, 200);
    // Past its own limit, a script goes on asking: each is refused for its principal.
    for (let i = 0; i < LOGIN_RATE.address.burst; i++) assert.equal((await loginFrom(noisy)).status, 429);
    const r = await loginFrom(other);
    assert.equal(r.status, 200, r.text);
  });

  test('failed token checks count an IPv6 client by its /64 and an IPv4-mapped one as its IPv4 address', async () => {
    const url = await daemonUrl(h.env);
    const api = client(url, readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8'));
    const token = await addPrincipal(h.env, 'v6-ops', '--hosts', 'localhost');
    const from = (address: string, t: string): Promise<{ status: number }> => api.request('GET', '/api/me', { headers: { ...bearer(t), 'x-forwarded-for': address } });
    // Five guesses, each from another address of one /64.
    for (let i = 1; i <= 5; i++) assert.equal((await from(`2001:db8:1:2::${i}`, `rmx_guess${i}`)).status, 401);
    assert.equal((await from('2001:db8:1:2:ffff::99', token)).status, 429, 'the whole /64 is locked out');
    assert.equal((await from('2001:db8:1:3::1', token)).status, 200, 'the next /64 is not');
    for (let i = 1; i <= 5; i++) assert.equal((await from('::ffff:203.0.113.40', `rmx_guess${i}`)).status, 401);
    assert.equal((await from('203.0.113.40', token)).status, 429, 'the mapped address is the IPv4 address');
    assert.equal((await from('203.0.113.41', token)).status, 200, 'IPv4 addresses are counted one by one');
  });

  test('a bad entry is refused at start, naming it', async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    writeFileSync(join(h.home, 'config.yaml'), 'http:\n  trusted_proxies: [proxy.example.com]\n');
    const r = await remux(['daemon', 'start', '--foreground', '--listen', '127.0.0.1:0'], { env: h.env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /http\.trusted_proxies: "proxy\.example\.com" is not an address or CIDR block/);
  });
});

/** A response read as it streams in: its status, what has come so far, and whether it has ended. */
interface Streaming {
  status: number;
  text(): string;
  ended(): boolean;
  end(): void;
}

function openStream(url: string, ca: string, path: string, headers: Record<string, string>): Promise<Streaming> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, url), { ca, headers, agent: false }, (res) => {
      let text = '';
      let ended = false;
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('close', () => (ended = true));
      resolve({ status: res.statusCode ?? 0, text: () => text, ended: () => ended, end: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a request that trickles in (http.request_timeout_seconds)', { timeout: 60_000 }, () => {
  test('is cut at the limit with a 408, while a terminal attach, a streamed run, the audit stream and MCP\'s streams outlive it', async () => {
    const d = await startConsoleDaemon({ boss: ['--admin'] }, 'http: { request_timeout_seconds: 2 }\n');
    try {
      const api = client(d.url, d.ca);
      const auth = bearer(d.tokens.boss!);
      const mcpHeaders = { ...auth, accept: 'application/json, text/event-stream' };

      // What lives long is opened first: each is checked once the limit is well past.
      d.tmux('new-session', '-d', '-s', 'long', 'cat');
      const terminal = await openTerminal(d, { host: 'box', name: 'long' }, auth);
      assert.equal(terminal.control[0]?.type, 'ready');
      const audit = await openStream(d.url, d.ca, '/api/audit/stream', auth);
      assert.equal(audit.status, 200);
      // Its answer streams for 4 s; cut before its end (once in CI: 'aborted'), it says so where it is checked.
      const run = api.request('POST', '/api/run', { headers: auth, body: { selector: 'box', command: 'sleep 4' } }).catch((err: Error) => ({ status: 0, text: `the answer was cut after ${Date.now() - runAt} ms: ${err.message}` }));
      const runAt = Date.now();
      const legacy = await openStream(d.url, d.ca, '/sse', mcpHeaders);
      assert.equal(legacy.status, 200);
      // In use: a legacy session that sends nothing within the limit is ended as abandoned (test/mcp/connect-audit).
      const endpoint = (await until('the SSE endpoint event', () => /event: endpoint\ndata: (\S+)/.exec(legacy.text()) ?? undefined))[1]!;
      assert.equal((await api.request('POST', endpoint, { headers: auth, body: { jsonrpc: '2.0', id: 6, method: 'tools/list' } })).status, 202);
      const init = await api.request('POST', '/mcp', {
        headers: mcpHeaders,
        body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } },
      });
      assert.equal(init.status, 200, init.text);
      const session = { 'mcp-session-id': String(init.headers['mcp-session-id']), 'mcp-protocol-version': '2025-11-25' };
      const mcpStream = await openStream(d.url, d.ca, '/mcp', { ...auth, ...session, accept: 'text/event-stream' });
      assert.equal(mcpStream.status, 200);

      // Headers, then one byte of the body every 250 ms: the 64 bytes it announces would take 16 s.
      const url = new URL(d.url);
      const started = Date.now();
      const trickled = await new Promise<{ text: string; sent: number }>((resolve, reject) => {
        const socket = tls.connect({ host: url.hostname, port: Number(url.port), ca: d.ca });
        let text = '';
        let sent = 0;
        let drip: NodeJS.Timeout | undefined;
        socket.once('secureConnect', () => {
          socket.write(`POST /api/login HTTP/1.1\r\nhost: ${url.host}\r\norigin: ${d.origin}\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n`);
          drip = setInterval(() => sent < 64 && socket.write(' ', () => sent++), 250);
        });
        socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        socket.on('error', reject);
        socket.on('close', () => {
          clearInterval(drip);
          resolve({ text, sent });
        });
      });
      const cutAfter = Date.now() - started;
      assert.match(trickled.text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.match(trickled.text, /"error":"request_timeout","message":"the request did not arrive whole within 2 s; .*http\.request_timeout_seconds/);
      assert.ok(trickled.sent < 64, `cut while the body was still coming (${trickled.sent} bytes of 64 sent)`);
      assert.ok(cutAfter >= 1900 && cutAfter < 8000, `cut at the limit, after ${cutAfter} ms`);

      await new Promise((resolve) => setTimeout(resolve, 4500 - (Date.now() - started)));
      terminal.send({ type: 'input', data: 'still attached\r' });
      await terminal.shows(/still attached\r?\n.*still attached/s);
      const ran = await run;
      assert.equal(ran.status, 200, ran.text);
      assert.match(ran.text, /\{"type":"exit","exitCode":0\}\n$/, 'the run streamed to its end, 4 s after it began');
      await until('the run\'s end on the audit stream', () => /"command":"sleep 4",.*"exitCode":0/.test(audit.text()));
      // The legacy SSE session: a message POSTed now is answered on the stream opened before the limit.
      const posted = await api.request('POST', endpoint, { headers: auth, body: { jsonrpc: '2.0', id: 7, method: 'tools/list' } });
      assert.equal(posted.status, 202, posted.text);
      await until('the answer on the SSE stream', () => /"id":7/.test(legacy.text()));
      assert.equal(mcpStream.ended(), false, 'the Streamable HTTP GET stream is still open');
      assert.equal((await api.request('DELETE', '/mcp', { headers: { ...auth, ...session } })).status, 200);
      await until('the GET stream to end with its session', () => mcpStream.ended());
      assert.equal(audit.ended() || legacy.ended(), false);
      for (const s of [audit, legacy]) s.end();
      terminal.ws.close();
    } finally {
      await d.stop();
    }
  });
});
