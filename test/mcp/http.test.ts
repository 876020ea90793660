// MCP over the daemon's HTTPS server: the SDK's Streamable HTTP and legacy SSE clients against a real
// daemon with real principals, and the adversarial cases: no token, a wrong token, a forged Origin,
// another principal's session id.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { remux, tempHome } from '../support/cli.js';
import type { Client as HttpsClient } from '../support/https.js';
import { approvalsDbFile, approvalsKeyFile } from '../../src/config/paths.js';
import { ApprovalStore } from '../../src/notify/approvals.js';
import { caFetch } from './fetch.js';
import { addPrincipal, assertLongCallProgress, call, daemonUrl, httpClient, longCall, startMcpDaemon, stdioClient, writeHome } from './support.js';

const INIT = (version: string) => ({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
});
const ACCEPT = { accept: 'application/json, text/event-stream' };

describe('MCP on the daemon (Streamable HTTP at /mcp, legacy SSE at /sse)', () => {
  const h = tempHome();
  let tokens = { boss: '', local: '' };
  let url = '';
  let ca = '';
  let raw: HttpsClient;
  let boss: Client;

  before(async () => {
    ({ tokens, url, ca, raw } = await startMcpDaemon(h, { hosts: 'hosts:\n  web1: { address: 192.0.2.1, user: ops }\n' }));
    boss = await httpClient(url, ca, tokens.boss);
  });
  after(async () => {
    await boss?.close();
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  test('a bearer token\'s principal runs commands through the policy; refusals name the rule; the client is in the audit trail', async () => {
    const { tools } = await boss.listTools();
    assert.ok(tools.some((t) => t.name === 'run_command' && t.outputSchema));
    const ok = await call(boss, 'run_command', { host: 'localhost', command: 'echo over https' });
    assert.equal(ok.data.stdout, 'over https\n');
    assert.equal(ok.data.exitCode, 0);
    const denied = await call(boss, 'run_command', { host: 'localhost', command: 'rm -r /' });
    assert.equal(denied.result.isError, true);
    assert.match(denied.text, /nothing is removed through MCP .*\nrule: ops#1 deny execute_binary \(.*policies\.yaml:6\)$/);
    const rejected = await call(boss, 'run_command', { host: 'localhost', command: 'echo $HOME' });
    assert.equal(rejected.data.outcome, 'rejected');
    const audit = await remux(['audit', 'ls', '--json', '-n', '0'], { env: h.env });
    const rows = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { principal: string; operation: string; resource: string | null; reason: string; command: string | null });
    assert.ok(rows.some((r) => r.operation === 'mcp.connect' && r.principal === 'boss' && r.resource === 'remux-http-test 2.0.0' && /streamable-http/.test(r.reason)));
    assert.ok(rows.some((r) => r.command === 'echo over https' && r.principal === 'boss'));
  });

  test('a scoped principal sees and reaches only its hosts', async () => {
    const local = await httpClient(url, ca, tokens.local);
    try {
      const hosts = await call(local, 'list_hosts', {});
      assert.deepEqual((hosts.result.structuredContent as { hosts: Array<{ name: string }> }).hosts.map((x) => x.name), ['localhost']);
      const out = await call(local, 'run_command', { host: 'web1', command: 'true' });
      assert.equal(out.result.isError, true);
      assert.match(out.text, /out of scope for local-ops/);
    } finally {
      await local.close();
    }
  });

  test('no token or a wrong one: 401 with WWW-Authenticate pointing at the RFC 9728 metadata, which is served', async () => {
    const origin = new URL(url).origin;
    for (const headers of [{}, { authorization: 'Bearer rmx_wrong' }, { authorization: 'Basic Ym9zczp4' }, { authorization: `Bearer ${tokens.boss}x` }] as Array<Record<string, string>>) {
      const r = await raw.request('POST', '/mcp', { headers: { ...ACCEPT, ...headers }, body: INIT('2025-11-25') });
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.match(String(r.headers['www-authenticate']), new RegExp(`^Bearer resource_metadata="${origin}/\\.well-known/oauth-protected-resource/mcp"`));
      // RFC 6750 §3.1: no error code when no bearer credentials were sent.
      const sent = headers.authorization?.startsWith('Bearer ') === true;
      assert.equal(String(r.headers['www-authenticate']).includes('error="invalid_token"'), sent, JSON.stringify(headers));
    }
    for (const path of ['/sse', '/messages?sessionId=x']) {
      const r = await raw.request(path === '/sse' ? 'GET' : 'POST', path, { headers: ACCEPT, ...(path === '/sse' ? {} : { body: {} }) });
      assert.equal(r.status, 401, path);
    }
    const meta = await raw.request('GET', '/.well-known/oauth-protected-resource/mcp');
    assert.equal(meta.status, 200);
    assert.deepEqual(meta.json(), {
      resource: url,
      resource_name: 'remux MCP endpoint',
      authorization_servers: [],
      bearer_methods_supported: ['header'],
    });
    const bad = new StreamableHTTPClientTransport(new URL(url), { fetch: caFetch(ca), requestInit: { headers: { authorization: 'Bearer rmx_wrong' } } });
    await assert.rejects(new Client({ name: 'x', version: '1' }).connect(bad));
  });

  test('the metadata document and its pointer name the daemon\'s own origins, never a forged Host', async () => {
    const own = new URL(url);
    // The certificate is checked against the daemon's own name, whatever Host says.
    const withHost = (method: string, path: string, host: string, body?: unknown): Promise<{ status: number; text: string; headers: IncomingHttpHeaders }> =>
      new Promise((resolve, reject) => {
        const req = https.request({ method, host: own.hostname, port: own.port, path, ca, agent: false, headers: { ...ACCEPT, host, 'content-type': 'application/json' }, checkServerIdentity: (_name, cert) => tls.checkServerIdentity(own.hostname, cert) }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
        });
        req.on('error', reject);
        req.end(body === undefined ? undefined : JSON.stringify(body));
      });
    for (const host of ['evil.example', `evil.example:${own.port}`, `${own.hostname}:1`]) {
      const meta = await withHost('GET', '/.well-known/oauth-protected-resource/mcp', host);
      assert.equal(meta.status, 200, meta.text);
      assert.equal((JSON.parse(meta.text) as { resource: string }).resource, url, host);
      assert.doesNotMatch(meta.text, /evil|:1\//);
      const challenge = await withHost('POST', '/mcp', host, INIT('2025-11-25'));
      assert.equal(challenge.status, 401);
      assert.equal(String(challenge.headers['www-authenticate']), `Bearer resource_metadata="${own.origin}/.well-known/oauth-protected-resource/mcp"`, host);
    }
    // Another of the daemon's own origins, as the client named it.
    const local = await withHost('GET', '/.well-known/oauth-protected-resource', `localhost:${own.port}`);
    assert.equal((JSON.parse(local.text) as { resource: string }).resource, `https://localhost:${own.port}/mcp`);
  });

  test('a foreign Origin is refused (403) even with a valid token; the daemon\'s own origin and none at all are served', async () => {
    const auth = { authorization: `Bearer ${tokens.local}` };
    for (const origin of ['https://evil.example', 'null', `${new URL(url).origin}.evil.example`]) {
      const r = await raw.request('POST', '/mcp', { headers: { ...ACCEPT, ...auth, origin }, body: INIT('2025-11-25') });
      assert.equal(r.status, 403, origin);
      assert.equal(r.json().error, 'forbidden_origin');
      assert.ok(!r.json<{ message: string }>().message.replace(origin, '').includes(new URL(url).host), `the allowed origins are not told to whoever forged one: ${r.text}`);
      const sse = await raw.request('GET', '/sse', { headers: { ...ACCEPT, ...auth, origin } });
      assert.equal(sse.status, 403, origin);
    }
    const own = await raw.request('POST', '/mcp', { headers: { ...ACCEPT, ...auth, origin: new URL(url).origin }, body: INIT('2025-11-25') });
    assert.equal(own.status, 200, own.text);
  });

  test('serves protocol 2025-06-18 as well as 2025-11-25; a session id answers only the principal that opened it', async () => {
    for (const version of ['2025-06-18', '2025-11-25']) {
      const r = await raw.request('POST', '/mcp', { headers: { ...ACCEPT, authorization: `Bearer ${tokens.boss}` }, body: INIT(version) });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json<{ result: { protocolVersion: string } }>().result.protocolVersion, version);
      const session = String(r.headers['mcp-session-id']);
      assert.match(session, /^[0-9a-f-]{36}$/);
      const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
      const stolen = await raw.request('POST', '/mcp', { headers: { ...ACCEPT, authorization: `Bearer ${tokens.local}`, 'mcp-session-id': session, 'mcp-protocol-version': version }, body: list });
      assert.equal(stolen.status, 404, 'another principal cannot use the session');
      const own = await raw.request('POST', '/mcp', { headers: { ...ACCEPT, authorization: `Bearer ${tokens.boss}`, 'mcp-session-id': session, 'mcp-protocol-version': version }, body: list });
      assert.equal(own.status, 200, own.text);
    }
    const noSession = await raw.request('POST', '/mcp', { headers: { ...ACCEPT, authorization: `Bearer ${tokens.boss}` }, body: { jsonrpc: '2.0', id: 2, method: 'tools/list' } });
    assert.equal(noSession.status, 400);
    assert.match(noSession.text, /first request of a session is initialize/);
    const unknown = await raw.request('POST', '/mcp', { headers: { ...ACCEPT, authorization: `Bearer ${tokens.boss}`, 'mcp-session-id': 'nope' }, body: { jsonrpc: '2.0', id: 2, method: 'tools/list' } });
    assert.equal(unknown.status, 404);
  });

  test('a Streamable HTTP session\'s id at the legacy POST endpoint is unknown there (404), not a request left hanging', async () => {
    const auth = { ...ACCEPT, authorization: `Bearer ${tokens.boss}` };
    const session = String((await raw.request('POST', '/mcp', { headers: auth, body: INIT('2025-11-25') })).headers['mcp-session-id']);
    const posted = raw.request('POST', `/messages?sessionId=${session}`, { headers: auth, body: { jsonrpc: '2.0', id: 2, method: 'tools/list' } });
    const answered = await Promise.race([posted, sleep(5000).then(() => null)]);
    assert.ok(answered, 'answered within 5 s');
    assert.equal(answered.status, 404, answered.text);
    assert.match(answered.text, /no such MCP session: open one with GET \/sse/);
  });

  test('a write_file as large as the tool advertises is taken (not refused by the server\'s 1 MiB body limit)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'remux-mcp-http-'));
    try {
      const r = await call(boss, 'write_file', { host: 'localhost', path: join(dir, 'big.txt'), content: 'x'.repeat(8 << 20) });
      assert.equal(r.result.isError, undefined, r.text);
      assert.equal(statSync(join(dir, 'big.txt')).size, 8 << 20);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an unknown host is a tool error naming the known ones', async () => {
    const r = await call(boss, 'run_command', { host: 'nowhere', command: 'true' });
    assert.equal(r.result.isError, true);
    assert.match(r.text, /^remux not run: unknown host "nowhere" \(known: localhost, web1\); add it with: remux hosts add nowhere USER@ADDRESS/);
    // A selector is not one host: a model is told to name one, not to add a host that no name can be.
    for (const selector of ['all', 'web*', 'env=prod']) {
      const s = await call(boss, 'run_command', { host: selector, command: 'true' });
      assert.equal(s.result.isError, true);
      assert.equal(s.text, `remux not run: "${selector}" is not a host name: name one host (known: localhost, web1)`);
    }
  });

  test('the legacy SSE transport works with the same tools and the same authentication', async () => {
    const headers = { authorization: `Bearer ${tokens.boss}` };
    const transport = new SSEClientTransport(new URL('/sse', url), { fetch: caFetch(ca), requestInit: { headers }, eventSourceInit: { fetch: (u, init) => caFetch(ca)(u, { ...init, headers: { ...(init?.headers as Record<string, string>), ...headers } }) } });
    const legacy = new Client({ name: 'legacy', version: '0.1' });
    await legacy.connect(transport);
    try {
      const r = await call(legacy, 'run_shell_command', { machine: 'localhost', command: 'echo legacy' });
      assert.equal(r.data.stdout, 'legacy\n');
      const denied = await call(legacy, 'run_command', { host: 'localhost', command: 'rm x' });
      assert.equal(denied.result.isError, true);
    } finally {
      await legacy.close();
    }
  });

  test('a JSON-RPC batch (protocol 2025-06-18 removed them) is refused before anything in it runs: 400, -32600 Invalid Request', async () => {
    const auth = { ...ACCEPT, authorization: `Bearer ${tokens.boss}` };
    const dir = mkdtempSync(join(tmpdir(), 'remux-batch-'));
    try {
      const init = await raw.request('POST', '/mcp', { headers: auth, body: INIT('2025-06-18') });
      const headers = { ...auth, 'mcp-session-id': String(init.headers['mcp-session-id']), 'mcp-protocol-version': '2025-06-18' };
      const marker = join(dir, 'ran');
      const run = (id: number): object => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'run_command', arguments: { host: 'localhost', command: `echo batched > ${marker}` } } });
      for (const [body, h] of [[[run(2), { jsonrpc: '2.0', id: 3, method: 'tools/list' }], headers], [[INIT('2025-06-18')], auth], [[], headers]] as const) {
        const r = await raw.request('POST', '/mcp', { headers: h, body });
        assert.equal(r.status, 400, r.text);
        assert.deepEqual(r.json(), {
          jsonrpc: '2.0',
          error: { code: -32600, message: 'JSON-RPC batches (arrays) are not supported: MCP removed them in protocol 2025-06-18; send each message in a POST of its own' },
          id: null,
        });
      }
      await sleep(200);
      assert.equal(existsSync(marker), false, 'nothing in the batch ran');
      const single = await raw.request('POST', '/mcp', { headers, body: run(4) });
      assert.equal(single.status, 200, single.text);
      assert.equal(existsSync(marker), true, 'the same call alone runs');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a body that is not JSON is answered as JSON-RPC says: 400, -32700 Parse error (with a session and without)', async () => {
    const auth = { ...ACCEPT, authorization: `Bearer ${tokens.boss}` };
    const init = await raw.request('POST', '/mcp', { headers: auth, body: INIT('2025-06-18') });
    const headers = { ...auth, 'mcp-session-id': String(init.headers['mcp-session-id']), 'mcp-protocol-version': '2025-06-18' };
    for (const [body, h] of [['{"jsonrpc": "2.0", "id": 2, "method": ', headers], ['not json', auth], ['{"__proto__": {"x": 1}}', headers], [' ', headers]] as const) {
      const r = await raw.request('POST', '/mcp', { headers: h, body });
      assert.equal(r.status, 400, r.text);
      const answer = r.json() as { jsonrpc: string; id: null; error: { code: number; message: string } };
      assert.equal(answer.jsonrpc, '2.0', r.text);
      assert.equal(answer.id, null);
      assert.equal(answer.error.code, -32700, r.text);
      assert.match(answer.error.message, /^Parse error: Body (is not valid JSON|cannot be empty)/);
    }
    // What is not a parse error is answered as before (here by the SDK's transport: another media type).
    const plain = await raw.request('POST', '/mcp', { headers: { ...headers, 'content-type': 'text/plain' }, body: 'hello' });
    assert.equal(plain.status, 415, plain.text);
  });

  test('a message POSTed in a session is answered as the SDK transport answers it: JSON with the session and security headers, 202 for a notification, its refusals for odd headers', async () => {
    const auth = { ...ACCEPT, authorization: `Bearer ${tokens.boss}` };
    const init = await raw.request('POST', '/mcp', { headers: auth, body: INIT('2025-11-25') });
    const session = String(init.headers['mcp-session-id']);
    const headers = { ...auth, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
    assert.equal((await raw.request('POST', '/mcp', { headers, body: { jsonrpc: '2.0', method: 'notifications/initialized' } })).status, 202);

    const ran = await raw.request('POST', '/mcp', { headers, body: { jsonrpc: '2.0', id: 'a1', method: 'tools/call', params: { name: 'run_command', arguments: { host: 'localhost', command: 'echo raw' } } } });
    assert.equal(ran.status, 200, ran.text);
    assert.match(String(ran.headers['content-type']), /^application\/json/);
    assert.equal(ran.headers['mcp-session-id'], session);
    assert.equal(ran.headers['x-content-type-options'], 'nosniff');
    const answer = ran.json<{ jsonrpc: string; id: string; result: { structuredContent: { stdout: string } } }>();
    assert.equal(answer.id, 'a1');
    assert.equal(answer.result.structuredContent.stdout, 'raw\n');
    const badArgs = await raw.request('POST', '/mcp', { headers, body: { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'run_command', arguments: { host: 'localhost' } } } });
    assert.equal(badArgs.status, 200);
    const refusal = badArgs.json<{ result: { isError: boolean; content: Array<{ text: string }> } }>().result;
    assert.equal(refusal.isError, true);
    assert.match(refusal.content[0]!.text, /Invalid arguments for tool run_command: .* at command/);

    const list = { jsonrpc: '2.0', id: 3, method: 'tools/list' };
    const oldVersion = await raw.request('POST', '/mcp', { headers: { ...headers, 'mcp-protocol-version': '1999-01-01' }, body: list });
    assert.equal(oldVersion.status, 400);
    assert.match(oldVersion.text, /Unsupported protocol version: 1999-01-01/);
    const jsonOnly = await raw.request('POST', '/mcp', { headers: { ...headers, accept: 'application/json' }, body: list });
    assert.equal(jsonOnly.status, 406);
    const notRpc = await raw.request('POST', '/mcp', { headers, body: { hello: 'world' } });
    assert.equal(notRpc.status, 400);
    const again = await raw.request('POST', '/mcp', { headers, body: INIT('2025-11-25') });
    assert.equal(again.status, 400);
    assert.match(again.text, /already initialized/);
  });

  test('a client saying initialized over and over is audited as connected once (notifications take no rate-limit token)', async () => {
    const auth = { ...ACCEPT, authorization: `Bearer ${tokens.local}` };
    const init = INIT('2025-11-25');
    const opened = await raw.request('POST', '/mcp', { headers: auth, body: { ...init, params: { ...init.params, clientInfo: { name: 'repeater', version: '1' } } } });
    const headers = { ...auth, 'mcp-session-id': String(opened.headers['mcp-session-id']), 'mcp-protocol-version': '2025-11-25' };
    for (let i = 0; i < 5; i++) assert.equal((await raw.request('POST', '/mcp', { headers, body: { jsonrpc: '2.0', method: 'notifications/initialized' } })).status, 202);
    const connects = async (): Promise<number> => {
      const audit = await remux(['audit', 'ls', '--json', '-n', '0', '--principal', 'local-ops'], { env: h.env });
      return audit.stdout.trim().split('\n').filter((l) => l !== '' && (JSON.parse(l) as { resource: string | null }).resource === 'repeater 1').length;
    };
    // Each is recorded just after its notification is handled: the first is there, and the others would be by now.
    for (let i = 0; i < 50 && (await connects()) === 0; i++) await sleep(50);
    await sleep(300);
    assert.equal(await connects(), 1);
  });

  test('a call still waiting (an approval) when its session is deleted is answered 404, not left hanging', async () => {
    const auth = { ...ACCEPT, authorization: `Bearer ${tokens.boss}` };
    const init = await raw.request('POST', '/mcp', { headers: auth, body: INIT('2025-11-25') });
    const headers = { ...auth, 'mcp-session-id': String(init.headers['mcp-session-id']), 'mcp-protocol-version': '2025-11-25' };
    // uname is `ask` in the test policy: the call waits for an approval nobody gives.
    const waiting = raw.request('POST', '/mcp', { headers, body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'run_command', arguments: { host: 'localhost', command: 'uname' } } } });
    let pending = true;
    void waiting.finally(() => (pending = false));
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(pending, 'the call waits for its approval');
    assert.equal((await raw.request('DELETE', '/mcp', { headers })).status, 200);
    const answer = await waiting;
    assert.equal(answer.status, 404);
    assert.match(answer.text, /Session not found/);
  });

  test('an approval awaited reaches an HTTP client that asked for progress: its question as a server-sent event, then the result once approved', async () => {
    const store = ApprovalStore.open(approvalsDbFile(h.env), approvalsKeyFile(h.env));
    try {
      const progress: string[] = [];
      const called = boss.callTool({ name: 'run_command', arguments: { host: 'localhost', command: 'uname' } }, undefined, { onprogress: (p) => progress.push(p.message ?? '') });
      for (let i = 0; i < 500 && progress.length === 0; i++) await sleep(20);
      assert.match(progress[0] ?? '', /^waiting for approval \S+ \(\d+ s\): execute_binary \/usr\/bin\/uname: needs approval/, 'told while it waits, before any answer');
      const [open] = store.list();
      assert.ok(open, 'an approval was created');
      store.answer(open.id, 'approve', { by: 'cli:test', via: 'cli' });
      const ran = await called;
      assert.equal((ran.structuredContent as { stdout: string }).stdout, 'Linux\n');
    } finally {
      store.close();
    }
  });

  test('DELETE ends the session even when it says content-type: application/json with no body', async () => {
    const auth = { ...ACCEPT, authorization: `Bearer ${tokens.boss}` };
    const init = await raw.request('POST', '/mcp', { headers: auth, body: INIT('2025-11-25') });
    const headers = { ...auth, 'mcp-session-id': String(init.headers['mcp-session-id']), 'mcp-protocol-version': '2025-11-25' };
    const deleted = await raw.request('DELETE', '/mcp', { headers: { ...headers, 'content-type': 'application/json' } });
    assert.equal(deleted.status, 200, deleted.text);
    const after = await raw.request('POST', '/mcp', { headers, body: { jsonrpc: '2.0', id: 2, method: 'tools/list' } });
    assert.equal(after.status, 404, 'the session is gone');
  });

  test('a long command asked with progress is answered as a stream: its progress (after 1, 2 and 4 s, with the last line), then its result', async () => {
    assertLongCallProgress(await longCall(boss));
  });

  // Last: it locks this test's address out.
  test('guessing tokens is slowed, then locked out (429) for a right token not used from here yet; a client already in goes on', async () => {
    const newcomer = await addPrincipal(h.env, 'late-ops', '--hosts', 'localhost');
    let last = 0;
    for (let i = 0; i < 6 && last !== 429; i++) {
      last = (await raw.request('POST', '/mcp', { headers: { ...ACCEPT, authorization: `Bearer rmx_guess${i}` }, body: INIT('2025-11-25') })).status;
    }
    assert.equal(last, 429);
    const right = await raw.request('POST', '/mcp', { headers: { ...ACCEPT, authorization: `Bearer ${newcomer}` }, body: INIT('2025-11-25') });
    assert.equal(right.status, 429);
    assert.match(String(right.headers['retry-after']), /^\d+$/);
    // Same address, a token accepted from it before: its session goes on (an MCP client behind the guesser's NAT).
    assert.equal((await call(boss, 'run_command', { host: 'localhost', command: 'echo still' })).data.stdout, 'still\n');
  });
});

describe('MCP sessions follow their principal: a changed scope ends them at once', () => {
  const h = tempHome();
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  test('an open session of a principal whose hosts were narrowed is ended; a new one runs under the new scope', async () => {
    writeHome(h.home, { hosts: 'hosts:\n  web1: { address: 192.0.2.1, user: ops }\n' });
    const token = await addPrincipal(h.env, 'shrink', '--hosts', 'localhost');
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
    const url = new URL('mcp', await daemonUrl(h.env)).href;
    const ca = readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8');
    const session = await httpClient(url, ca, token);
    assert.equal((await call(session, 'run_command', { host: 'localhost', command: 'echo before' })).data.stdout, 'before\n');

    const file = join(h.home, 'principals.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('hosts: localhost', 'hosts: web1'));
    // The daemon re-reads the file within a few hundred milliseconds; the old session must not outlive that.
    let ended = false;
    for (let i = 0; i < 50 && !ended; i++) {
      await new Promise((r) => setTimeout(r, 100));
      ended = await session.callTool({ name: 'run_command', arguments: { host: 'localhost', command: 'echo still' } }).then(
        (r) => (r as { isError?: boolean }).isError === true && false,
        (err: Error) => /no such MCP session|404/.test(err.message),
      );
    }
    assert.ok(ended, 'the session begun under the old scope was ended');
    await session.close();
    const fresh = await httpClient(url, ca, token);
    const refused = await call(fresh, 'run_command', { host: 'localhost', command: 'echo after' });
    assert.equal(refused.result.isError, true, 'localhost is out of the new scope');
    await fresh.close();
  });
});

describe('the daemon\'s rate limit counts every MCP tool call, not only run_command, per principal over HTTP and stdio', () => {
  const h = tempHome();
  const dir = mkdtempSync(join(tmpdir(), 'remux-mcp-limit-'));
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  test('past the burst, reads, writes, listings and keys are refused as a command is, the file actions audited as rate limited', async () => {
    writeHome(h.home);
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: ops\ndaemon:\n  rate_limit: { requests_per_second: 0.001, burst: 2 }\n');
    const token = await addPrincipal(h.env, 'looper', '--hosts', 'localhost');
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
    const looper = await httpClient(new URL('mcp', await daemonUrl(h.env)).href, readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8'), token);
    try {
      const path = join(dir, 'f.txt');
      assert.equal((await call(looper, 'write_file', { host: 'localhost', path, content: 'first' })).result.isError, undefined);
      assert.equal((await call(looper, 'read_file', { host: 'localhost', path })).text, 'first');
      // The burst of 2 is spent: whatever the tool, the next call is refused and does nothing.
      const calls: Array<[string, Record<string, unknown>]> = [
        ['write_file', { host: 'localhost', path, content: 'second' }],
        ['read_file', { host: 'localhost', path }],
        ['list_directory', { host: 'localhost', path: dir }],
        ['list_hosts', {}],
        ['list_sessions', {}],
        ['capture_session', { host: 'localhost', session: 'none' }],
        ['send_keys', { host: 'localhost', session: 'none', keys: ['x'] }],
        ['run_command', { host: 'localhost', command: 'echo no' }],
      ];
      for (const [name, args] of calls) {
        const r = await call(looper, name, args);
        assert.equal(r.result.isError, true, `${name}: ${r.text}`);
        assert.match(r.text, /rate limited, retry in \d+/, name);
      }
      assert.equal(readFileSync(path, 'utf8'), 'first', 'the refused write changed nothing');
    } finally {
      await looper.close();
    }
    // Its stdio session through the daemon draws on the same principal's bucket.
    const stdio = await stdioClient({ ...h.env, REMUX_TOKEN: token });
    try {
      const r = await call(stdio.client, 'read_file', { host: 'localhost', path: join(dir, 'f.txt') });
      assert.equal(r.result.isError, true, r.text);
      assert.match(r.text, /^remux rate limited: rate limited, retry in \d+/);
    } finally {
      await stdio.client.close();
    }
    const audit = await remux(['audit', 'ls', '--json', '-n', '0', '--principal', 'looper'], { env: h.env });
    const limited = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { operation: string; exitCode: number | null }).filter((r) => r.exitCode === 75);
    assert.deepEqual(limited.map((r) => r.operation).sort(), ['exec', 'list_directory', 'read_file', 'read_file', 'session.capture', 'session.list', 'session.send', 'write_file']);
  });
});
