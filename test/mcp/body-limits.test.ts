// What an MCP request body may be over HTTP, refused as it arrives rather than parsed on the daemon's one
// thread (where a 64 MiB body held every other client up for seconds): larger than write_file's content
// needs (413, before any of it is read when Content-Length says so), of more values than a tool call
// carries (413), or large while its principal already sends two large ones (429). Each answer is a
// JSON-RPC error naming the limit; the SDK's client reads it as such.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { ClientRequest } from 'node:http';
import https from 'node:https';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REMUX_BIN, REPO_ROOT, remux, tempHome } from '../support/cli.js';
import type { Client as HttpsClient } from '../support/https.js';
import { MCP_MESSAGE_VALUES, ValueCounter } from '../../src/gateway/mcp/line-transport.js';
import { startMcpDaemon } from './support.js';

const ACCEPT = { accept: 'application/json, text/event-stream', 'content-type': 'application/json' };
const MiB = 1 << 20;

interface Answer {
  status: number;
  connection: string | undefined;
  error: { code: number; message: string } | undefined;
  text: string;
}

describe('MCP request bodies over HTTP: refused as they arrive, past what a tool call carries', () => {
  const h = tempHome();
  let tokens = { boss: '', local: '' };
  let url: URL;
  let ca = '';
  let raw: HttpsClient;
  let dir = '';
  const sessions = new Map<string, string>();

  before(async () => {
    let base: string;
    ({ tokens, url: base, ca, raw } = await startMcpDaemon(h));
    url = new URL(base);
    dir = mkdtempSync(join(tmpdir(), 'remux-mcp-body-'));
    for (const [name, token] of Object.entries(tokens)) {
      const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } };
      const r = await raw.request('POST', '/mcp', { headers: { ...ACCEPT, authorization: `Bearer ${token}` }, body: init });
      assert.equal(r.status, 200, r.text);
      sessions.set(name, String(r.headers['mcp-session-id']));
    }
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    rmSync(dir, { recursive: true, force: true });
    h.remove();
  });

  /** A POST to /mcp in `who`'s session whose body the caller writes (and may never end); its answer, whenever it comes. */
  function post(who: 'boss' | 'local', headers: Record<string, string | number> = {}): { req: ClientRequest; answer: Promise<Answer> } {
    const req = https.request({
      method: 'POST',
      host: url.hostname,
      port: url.port,
      path: '/mcp',
      ca,
      agent: false,
      headers: { ...ACCEPT, authorization: `Bearer ${tokens[who === 'boss' ? 'boss' : 'local']}`, 'mcp-session-id': sessions.get(who)!, 'mcp-protocol-version': '2025-06-18', ...headers },
    });
    // The daemon answers and closes before the whole body is sent: writing on then fails, as it should.
    req.on('error', () => undefined);
    const answer = new Promise<Answer>((resolve, reject) => {
      req.once('response', (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => {
          const parsed = (() => {
            try {
              return (JSON.parse(text) as { error?: Answer['error'] }).error;
            } catch {
              return undefined;
            }
          })();
          resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, error: parsed, text });
        });
      });
      req.once('close', () => reject(new Error('the connection closed with no answer')));
    });
    return { req, answer };
  }

  /** `answer` within `ms`, or null. */
  const within = <T>(answer: Promise<T>, ms: number): Promise<T | null> => Promise.race([answer, new Promise<null>((resolve) => setTimeout(() => resolve(null), ms).unref())]);

  /** Writes `total` bytes of `fill` (a JSON string's content, say) in 1 MiB pieces, each once the last is taken; stops once `stop` settles. */
  async function send(req: ClientRequest, fill: string, total: number, stop: Promise<unknown>): Promise<void> {
    let stopped = false;
    void stop.then(() => (stopped = true), () => (stopped = true));
    const piece = fill.repeat(Math.ceil(MiB / fill.length)).slice(0, MiB);
    for (let sent = 0; sent < total && !stopped && !req.destroyed; sent += MiB) {
      if (!req.write(piece.slice(0, Math.min(MiB, total - sent)))) await new Promise((resolve) => req.once('drain', resolve).once('close', resolve));
    }
  }

  const writeCall = (id: number, path: string): string => `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"write_file","arguments":{"host":"localhost","path":"${path}","content":"`;

  test('a body Content-Length says is over 25 MiB: 413 and -32600 naming the limit, before any of it is read', async () => {
    const { req, answer } = post('boss', { 'content-length': 30 * MiB });
    req.write(writeCall(2, join(dir, 'never')));
    const got = await within(answer, 10_000);
    assert.ok(got, 'no answer while the body was not sent: the daemon waited to read 30 MiB');
    assert.equal(got.status, 413, got.text);
    assert.equal(got.connection, 'close');
    assert.deepEqual(got.error, { code: -32600, message: 'the message of 30 MiB is larger than the 25 MiB remux reads: send less in one call (write_file takes at most 8 MiB of text)' });
    req.destroy();
  });

  test('a chunked body past 25 MiB: 413 naming the limit as it arrives, the rest not read', async () => {
    const { req, answer } = post('boss');
    req.write(writeCall(3, join(dir, 'never')));
    // 40 MiB would be sent; the answer comes at 25, and the rest is never sent.
    void send(req, 'x', 40 * MiB, answer);
    const got = await within(answer, 60_000);
    assert.ok(got, 'no answer within a minute');
    assert.equal(got.status, 413, got.text);
    assert.deepEqual(got.error, { code: -32600, message: 'the message of more than 25 MiB is larger than the 25 MiB remux reads: send less in one call (write_file takes at most 8 MiB of text)' });
    req.destroy();
  });

  test('a body of more values than a tool call carries is refused as it arrives (413), and nobody else waits on it', async () => {
    // 24 MiB of empty arrays (8 million values): JSON.parse alone takes seconds over them.
    const body = `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"list_hosts","arguments":{},"_pad":[${'[],'.repeat(8 * MiB)}[]]}}`;
    const pings: number[] = [];
    let pinging = true;
    const pinger = (async () => {
      for (let id = 100; pinging; id++) {
        const started = performance.now();
        const r = await raw.request('POST', '/mcp', { headers: { ...ACCEPT, authorization: `Bearer ${tokens.local}`, 'mcp-session-id': sessions.get('local')!, 'mcp-protocol-version': '2025-06-18' }, body: { jsonrpc: '2.0', id, method: 'ping' } });
        assert.equal(r.status, 200, r.text);
        pings.push(performance.now() - started);
      }
    })();
    const { req, answer } = post('boss', { 'content-length': Buffer.byteLength(body) });
    req.end(body);
    const got = await within(answer, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    pinging = false;
    await pinger;
    assert.ok(got, 'no answer within a minute');
    assert.equal(got.status, 413, got.text);
    assert.deepEqual(got.error, { code: -32600, message: `the message holds more than the ${MCP_MESSAGE_VALUES} JSON values remux reads in one: send fewer in one call` });
    // Rough (the machine is shared): parsed, it held the other principal's pings up for seconds.
    assert.ok(Math.max(...pings) < 2000, `another client's ping waited ${Math.round(Math.max(...pings))} ms`);
  });

  test('a principal sending two large bodies is refused a third (429) until one is answered; another principal is not', async () => {
    const held = [0, 1].map((i) => {
      const path = join(dir, `held-${i}`);
      const head = writeCall(10 + i, path);
      const p = post('boss', { 'content-length': head.length + 3 * MiB + 4 });
      p.req.write(head);
      p.req.write('y'.repeat(2 * MiB));
      return { ...p, path, head };
    });
    // Both are under way (their first 2 MiB sent) before the third asks.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const third = post('boss', { 'content-length': 2 * MiB });
    third.req.write('{');
    const refused = await within(third.answer, 10_000);
    assert.ok(refused, 'no answer to the third');
    assert.equal(refused.status, 429, refused.text);
    assert.deepEqual(refused.error, { code: -32600, message: 'principal boss is already sending 2 MCP messages over 1 MiB: send this one once one of them is answered' });
    third.req.destroy();
    // The same chunked, refused once it is past 1 MiB.
    const chunked = post('boss');
    void send(chunked.req, ' ', 3 * MiB, chunked.answer);
    assert.equal((await within(chunked.answer, 10_000))?.status, 429);
    chunked.req.destroy();

    const other = post('local', {});
    other.req.end(`${writeCall(20, join(dir, 'other'))}${'z'.repeat(2 * MiB)}"}}}`);
    assert.equal((await other.answer).status, 200, 'another principal is not held to boss\'s places');
    assert.equal(statSync(join(dir, 'other')).size, 2 * MiB);

    for (const { req, answer, path } of held) {
      req.end(`${'y'.repeat(MiB)}"}}}`);
      const got = await answer;
      assert.equal(got.status, 200, got.text);
      assert.equal(statSync(path).size, 3 * MiB);
    }
    const after = post('boss');
    after.req.end(`${writeCall(30, join(dir, 'after'))}${'w'.repeat(2 * MiB)}"}}}`);
    assert.equal((await after.answer).status, 200, 'a place is free again once a body was read');
  });

  test("a principal's bodies arriving at once are bounded in bytes (64 MiB), however many connections hold them: past it 429, another principal not held; given back once answered", async () => {
    // Each just under 1 MiB (no large-message place), its last byte never sent: held while the connection
    // lasts. 64 of them fill the 64 MiB but 64 bytes.
    const held = Array.from({ length: 64 }, () => {
      const p = post('local', { 'content-length': MiB });
      p.req.write(' '.repeat(MiB - 1));
      return p;
    });
    // Once all of it has arrived (64 MiB through TLS, on a loaded machine: seconds), an API body (of more
    // than 64 bytes) is refused too: they count together. Until then it is read, and refused for its
    // unknown field (nothing runs).
    const run = (): ReturnType<typeof raw.request> => raw.request('POST', '/api/run', { headers: { authorization: `Bearer ${tokens.local}` }, body: { selector: 'localhost', command: 'true', padding: 'x'.repeat(200) } });
    let refusedRun = await run();
    for (let i = 0; i < 300 && refusedRun.status === 400; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      refusedRun = await run();
    }
    assert.equal(refusedRun.status, 429, refusedRun.text);
    assert.equal(refusedRun.json<{ error: string }>().error, 'too_busy');
    // More MCP bodies: refused as their first bytes arrive.
    const more = Array.from({ length: 4 }, () => {
      const p = post('local', { 'content-length': MiB });
      p.req.write(' '.repeat(MiB - 1));
      return p;
    });
    for (const p of more) {
      const a = await within(p.answer, 10_000);
      assert.equal(a?.status, 429, a?.text);
      assert.match(a.error?.message ?? '', /^principal local-ops already has 64 MiB of request bodies arriving \(its limit is 64 MiB\): send this one once they are answered$/);
      p.req.destroy();
    }
    assert.deepEqual(await Promise.all(held.map((p) => within(p.answer, 10))), held.map(() => null), 'the 64 are held, not answered');
    const other = post('boss');
    other.req.end(`${writeCall(40, join(dir, 'not-held'))}x"}}}`);
    assert.equal((await other.answer).status, 200, "another principal is not held to local's bytes");
    for (const p of held) p.req.destroy();
    // Given back as the connections close.
    let again: Answer | null = null;
    for (let i = 0; i < 50 && again?.status !== 200; i++) {
      const p = post('local');
      p.req.end(`${writeCall(41, join(dir, 'again'))}x"}}}`);
      again = await p.answer;
      if (again.status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(again?.status, 200, again?.text);
  });

  test('a large body is parsed off the daemon\'s thread as fastify parses the rest: not JSON, or with a __proto__ key, is a 400 parse error', async () => {
    const pad = 'q'.repeat(2 * MiB);
    for (const body of [`${writeCall(40, join(dir, 'never'))}${pad}"}}`, `{"jsonrpc":"2.0","id":41,"method":"ping","params":{"_meta":{"pad":"${pad}","__proto__":{"polluted":true}}}}`]) {
      const { req, answer } = post('boss');
      req.end(body);
      const got = await answer;
      assert.equal(got.status, 400, got.text);
      assert.equal(got.error?.code, -32700, got.text);
      assert.match(got.error?.message ?? '', /^Parse error: Body is not valid JSON/);
    }
    const { req, answer } = post('boss');
    req.end(JSON.stringify({ jsonrpc: '2.0', id: 42, method: 'ping', params: { _meta: { pad } } }));
    const got = await answer;
    assert.equal(got.status, 200, got.text);
    assert.deepEqual((JSON.parse(got.text) as { id: number; result: object }).result, {});
  });

  /** `remux mcp --stdio` relayed by the daemon, as `token`'s principal, initialized: its lines written raw, its answers by id. */
  async function stdioClient(token: string): Promise<{ child: ChildProcessWithoutNullStreams; answer: (id: number) => Promise<{ error?: { code: number; message: string }; result?: { isError?: boolean } }> }> {
    const child = spawn(REMUX_BIN, ['mcp', '--stdio'], { env: { ...process.env, ...h.env, REMUX_TOKEN: token }, cwd: REPO_ROOT });
    child.stderr.resume();
    const answers = new Map<number, (message: object) => void>();
    const early = new Map<number, object>();
    let buffered = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buffered += d;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const message = JSON.parse(buffered.slice(0, nl)) as { id: number };
        buffered = buffered.slice(nl + 1);
        const waiting = answers.get(message.id);
        if (waiting) waiting(message);
        else early.set(message.id, message);
      }
    });
    const answer = (id: number): Promise<never> => (early.has(id) ? Promise.resolve(early.get(id) as never) : new Promise((resolve) => answers.set(id, resolve as (m: object) => void)));
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } })}\n`);
    await answer(1);
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
    return { child, answer };
  }

  test('stdio clients relayed by the daemon count with the principal\'s HTTP bodies: a third large message is refused under its id until one is read', async () => {
    const clients = await Promise.all([tokens.boss, tokens.boss, tokens.boss, tokens.local].map((t) => stdioClient(t)));
    const [a, b, c, other] = clients as [Awaited<ReturnType<typeof stdioClient>>, Awaited<ReturnType<typeof stdioClient>>, Awaited<ReturnType<typeof stdioClient>>, Awaited<ReturnType<typeof stdioClient>>];
    try {
      // Two of boss's clients are each 2 MiB into a write_file line.
      for (const [i, held] of [a, b].entries()) held.child.stdin.write(`${writeCall(10, join(dir, `stdio-held-${i}`))}${'y'.repeat(2 * MiB)}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const busy = 'principal boss is already sending 2 MCP messages over 1 MiB: send this one once one of them is answered';
      c.child.stdin.write(`${writeCall(11, join(dir, 'stdio-third'))}${'x'.repeat(2 * MiB)}"}}}\n`);
      assert.deepEqual((await c.answer(11)).error, { code: -32600, message: busy });
      // Small messages go on meanwhile; so does boss over HTTP with no large body, and refused with one.
      c.child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id: 12, method: 'ping' })}\n`);
      assert.deepEqual((await c.answer(12)).result, {});
      const http = post('boss');
      void send(http.req, ' ', 3 * MiB, http.answer);
      const refused = await within(http.answer, 10_000);
      assert.equal(refused?.status, 429);
      http.req.destroy();
      // Another principal's are its own.
      other.child.stdin.write(`${writeCall(13, join(dir, 'stdio-other'))}${'z'.repeat(2 * MiB)}"}}}\n`);
      assert.equal((await other.answer(13)).result?.isError, undefined);
      assert.equal(statSync(join(dir, 'stdio-other')).size, 2 * MiB);
      // Once the held lines are read, their places are free again.
      for (const [i, held] of [a, b].entries()) {
        held.child.stdin.write(`${'y'.repeat(MiB)}"}}}\n`);
        assert.equal((await held.answer(10)).result?.isError, undefined);
        assert.equal(statSync(join(dir, `stdio-held-${i}`)).size, 3 * MiB);
      }
      c.child.stdin.write(`${writeCall(14, join(dir, 'stdio-third'))}${'x'.repeat(2 * MiB)}"}}}\n`);
      assert.equal((await c.answer(14)).result?.isError, undefined);
      assert.equal(statSync(join(dir, 'stdio-third')).size, 2 * MiB);
    } finally {
      for (const { child } of clients) {
        child.stdin.end();
        if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
      }
    }
  });
});

test('ValueCounter counts the values outside strings, however the text is cut into chunks', () => {
  const text = JSON.stringify({ a: [1, 2, { b: 'x,[{' }], c: 'quote \\" and \\\\", [{,', d: ['\\', '"', '\u0001,'], e: {}, f: [`${'\\'.repeat(5)}"${'\\'.repeat(4)}`, '\u0001\u0002,\u0003"'] });
  const whole = new ValueCounter().push(Buffer.from(text));
  // { a [ , , { } ] , c , d [ , , ] , e {  → the opens and commas outside strings.
  assert.equal(whole, [...JSON.stringify(JSON.parse(text), (_k, v: unknown) => (typeof v === 'string' ? '' : v))].filter((c) => c === '[' || c === '{' || c === ',').length);
  const bytes = Buffer.from(text);
  for (let cut = 1; cut < bytes.length; cut++) {
    for (const size of [1, 2, 3, 7]) {
      const counter = new ValueCounter();
      const pieces = [bytes.subarray(0, cut), ...Array.from({ length: Math.ceil((bytes.length - cut) / size) }, (_, i) => bytes.subarray(cut + i * size, cut + (i + 1) * size))];
      let got = 0;
      for (const piece of pieces) got = counter.push(piece);
      assert.equal(got, whole, `cut at ${cut}, then ${size} bytes at a time`);
    }
  }
});
