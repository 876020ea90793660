// Every MCP connection attempt is in the audit trail (operation mcp.connect), with its principal, where it
// came from and how its handshake ended: initialized, failed (why), or abandoned (the connection ended
// first); over Streamable HTTP, legacy SSE and stdio (in the CLI process and through the daemon).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { REMUX_BIN, REPO_ROOT, remux, tempHome } from '../support/cli.js';
import type { Client as HttpsClient } from '../support/https.js';
import { httpClient, startMcpDaemon } from './support.js';

const ACCEPT = { accept: 'application/json, text/event-stream' };
const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'half', version: '1' } } };

interface Row {
  principal: string;
  operation: string;
  resource: string | null;
  reason: string | null;
  exitCode: number | null;
  error: string | null;
}

describe('mcp.connect: each connection attempt audited with how its handshake ended', () => {
  const h = tempHome();
  let tokens = { boss: '', local: '' };
  let url = '';
  let ca = '';
  let raw: HttpsClient;

  before(async () => {
    ({ tokens, url, ca, raw } = await startMcpDaemon(h));
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  /** The mcp.connect records written since `seen` of them were, once `count` more are there. */
  async function connects(seen: number, count: number): Promise<Row[]> {
    for (let i = 0; ; i++) {
      const r = await remux(['audit', 'ls', '--json', '-n', '0'], { env: h.env });
      const rows = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Row).filter((row) => row.operation === 'mcp.connect').slice(seen);
      if (rows.length >= count || i === 50) return rows;
      await sleep(100);
    }
  }
  const count = async (): Promise<number> => (await connects(0, 0)).length;

  test('Streamable HTTP: a first request that is not initialize, garbage, a refused initialize, and one never finished', async () => {
    const seen = await count();
    const auth = { ...ACCEPT, authorization: `Bearer ${tokens.local}` };
    assert.equal((await raw.request('POST', '/mcp', { headers: auth, body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } })).status, 400);
    assert.equal((await raw.request('POST', '/mcp', { headers: auth, body: '{"jsonrpc": "2.0", "id": ' })).status, 400);
    // An initialize the SDK's transport refuses (a client that does not take event streams).
    const refused = await raw.request('POST', '/mcp', { headers: { ...auth, accept: 'application/json' }, body: INIT });
    assert.equal(refused.status, 406, refused.text);
    // Initialized by its answer, never by the client's notification; then ended.
    const half = await raw.request('POST', '/mcp', { headers: auth, body: INIT });
    assert.equal(half.status, 200, half.text);
    const session = String(half.headers['mcp-session-id']);
    assert.equal((await raw.request('DELETE', '/mcp', { headers: { ...auth, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' } })).status, 200);

    const rows = await connects(seen, 4);
    assert.equal(rows.length, 4, JSON.stringify(rows));
    for (const row of rows) {
      assert.equal(row.principal, 'local-ops');
      assert.match(row.reason ?? '', /over streamable-http from 127\.0\.0\.1/);
      assert.equal(row.exitCode, null, 'none of them connected');
    }
    assert.equal(rows[0]!.error, 'no Mcp-Session-Id header: the first request of a session is initialize');
    assert.match(rows[1]!.error ?? '', /^Parse error: Body is not valid JSON/);
    assert.match(rows[2]!.error ?? '', /^Not Acceptable: /);
    assert.match(rows[2]!.reason ?? '', /^MCP client unnamed client over streamable-http from 127\.0\.0\.1 failed the handshake$/);
    assert.equal(rows[3]!.error, 'abandoned: no initialized notification came');
    assert.equal(rows[3]!.reason, 'MCP client half 1 over streamable-http from 127.0.0.1 ended the connection before the handshake finished');
  });

  test('legacy SSE: an event stream opened and closed with no handshake is abandoned', async () => {
    const seen = await count();
    const stream = https.get(new URL('/sse', url), { ca, headers: { accept: 'text/event-stream', authorization: `Bearer ${tokens.boss}` } });
    await new Promise<void>((resolve, reject) => stream.once('response', (res) => res.once('data', () => resolve())).once('error', reject));
    stream.destroy();
    const [row] = await connects(seen, 1);
    assert.ok(row);
    assert.equal(row.principal, 'boss');
    assert.equal(row.error, 'abandoned: no initialized notification came');
    assert.match(row.reason ?? '', /^MCP client unnamed client over sse from 127\.0\.0\.1 ended/);
  });

  for (const where of ['through the daemon', 'in the CLI process'] as const) {
    test(`stdio ${where}: a line that is not JSON fails the handshake; a client that says nothing abandons it; one that initializes connects`, async () => {
      const seen = await count();
      const session = async (lines: string[]): Promise<void> => {
        const child = spawn(REMUX_BIN, ['mcp', '--stdio', ...(where === 'in the CLI process' ? ['--no-daemon'] : [])], { env: { ...process.env, ...h.env }, cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        let asked = 0;
        for (const line of lines) {
          child.stdin.write(`${line}\n`);
          // Each line but a notification is answered (a parse error too) before the next is sent.
          if (line.includes('notifications/')) continue;
          asked++;
          for (let i = 0; i < 200 && out.split('\n').length - 1 < asked; i++) await sleep(50);
        }
        child.stdin.end();
        await new Promise((resolve) => child.once('exit', resolve));
      };
      await session(['not json']);
      await session([]);
      await session([JSON.stringify(INIT), JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })]);
      const rows = await connects(seen, 3);
      assert.equal(rows.length, 3, JSON.stringify(rows));
      assert.match(rows[0]!.error ?? '', /^Parse error: /);
      assert.match(rows[0]!.reason ?? '', /^MCP client unnamed client over stdio from a process on this machine failed the handshake$/);
      assert.equal(rows[1]!.error, 'abandoned: no initialized notification came');
      assert.deepEqual([rows[2]!.resource, rows[2]!.error, rows[2]!.exitCode, rows[2]!.reason], ['half 1', null, 0, 'MCP client half 1 connected over stdio from a process on this machine']);
    });
  }
});

describe('an HTTP session whose client never finishes its handshake is ended as a request\'s headers would be', () => {
  const h = tempHome();
  let tokens = { boss: '', local: '' };
  let url = '';
  let ca = '';
  let raw: HttpsClient;

  before(async () => {
    // Headers within 2 s: so is a session's first request after its initialize.
    ({ tokens, url, ca, raw } = await startMcpDaemon(h, { config: 'http:\n  request_timeout_seconds: 2\n' }));
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  test('initialize answered and nothing after, or an SSE stream with no message: ended within seconds and audited abandoned; a client that initialized goes on', async () => {
    const rowsOf = async (): Promise<Array<Row & { durationMs: number }>> => {
      const r = await remux(['audit', 'ls', '--json', '-n', '0'], { env: h.env });
      return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Row & { durationMs: number }).filter((row) => row.operation === 'mcp.connect');
    };
    const started = Date.now();
    const client = await httpClient(url, ca, tokens.boss);
    const auth = { ...ACCEPT, authorization: `Bearer ${tokens.local}` };
    const half = await raw.request('POST', '/mcp', { headers: auth, body: INIT });
    assert.equal(half.status, 200, half.text);
    const stream = https.get(new URL('/sse', url), { ca, headers: { accept: 'text/event-stream', authorization: `Bearer ${tokens.boss}` } });
    const streamEnded = new Promise<void>((resolve, reject) => stream.once('response', (res) => res.resume().once('end', resolve).once('error', resolve)).once('error', reject));
    let abandoned: Array<Row & { durationMs: number }> = [];
    for (let i = 0; i < 150 && abandoned.length < 2; i++) {
      await sleep(100);
      abandoned = (await rowsOf()).filter((row) => row.error === 'abandoned: no initialized notification came');
    }
    assert.deepEqual(abandoned.map((row) => row.reason?.replace(/ from .*/, '')).sort(), ['MCP client half 1 over streamable-http', 'MCP client unnamed client over sse']);
    for (const row of abandoned) assert.ok(row.durationMs >= 1900 && row.durationMs < 15_000, `ended after ${row.durationMs} ms`);
    assert.ok(Date.now() - started < 20_000);
    await streamEnded;
    const gone = await raw.request('POST', '/mcp', { headers: { ...auth, 'mcp-session-id': String(half.headers['mcp-session-id']), 'mcp-protocol-version': '2025-06-18' }, body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
    assert.equal(gone.status, 404, gone.text);
    // The client that initialized, more than the 2 s ago, still has its session.
    assert.ok((await client.listTools()).tools.length > 0);
    await client.close();
  });
});

