// A call's stream of server-sent events over Streamable HTTP resumes after it broke: the SDK's client,
// cut off from a real daemon mid-call (a TCP proxy in between, then broken), reconnects with
// Last-Event-ID and still gets the progress and the result; only the session that owns a stream
// replays it; and a session's event store keeps its bound (an event it dropped is refused, saying so).
import assert from 'node:assert/strict';
import { rmSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { remux, tempHome } from '../support/cli.js';
import type { Client as HttpsClient } from '../support/https.js';
import { EVENT_BYTES_KEPT } from '../../src/gateway/mcp/events.js';
import { assertLongCallProgress, httpClient, startMcpDaemon } from './support.js';

const ACCEPT = { accept: 'application/json, text/event-stream' };
const VERSION = '2025-11-25';

/** A TCP proxy to `port` whose connections, all at once, can be broken as a network would. */
async function tcpProxy(port: number): Promise<{ port: number; cut(): number; close(): void }> {
  const open = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const up = net.connect(port, '127.0.0.1');
    for (const s of [down, up]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {});
    }
    down.pipe(up).pipe(down);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      const n = open.size;
      for (const s of open) s.destroy();
      return n;
    },
    close() {
      for (const s of open) s.destroy();
      server.close();
    },
  };
}

interface SseEvent {
  id?: string;
  data: string;
}

function events(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const e: SseEvent = { data: '' };
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) e.id = line.slice(4);
        if (line.startsWith('data: ')) e.data = line.slice(6);
      }
      return e;
    });
}

describe('MCP Streamable HTTP: a call\'s stream resumes (event ids, Last-Event-ID)', () => {
  const h = tempHome();
  const dir = mkdtempSync(join(tmpdir(), 'remux-mcp-resume-'));
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
    rmSync(dir, { recursive: true, force: true });
  });

  /** A new session of `token`'s principal: the headers its requests carry. */
  const session = async (token: string): Promise<Record<string, string>> => {
    const auth = { ...ACCEPT, authorization: `Bearer ${token}` };
    const init = await raw.request('POST', '/mcp', { headers: auth, body: { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'raw', version: '0' } } } });
    assert.equal(init.status, 200, init.text);
    return { ...auth, 'mcp-session-id': String(init.headers['mcp-session-id']), 'mcp-protocol-version': VERSION };
  };
  /** A tool call that asks for progress, read to its end: its events. */
  const streamed = async (headers: Record<string, string>, name: string, args: Record<string, unknown>): Promise<SseEvent[]> => {
    const r = await raw.request('POST', '/mcp', { headers, body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args, _meta: { progressToken: 'p' } } } });
    assert.equal(r.status, 200, r.text);
    assert.match(String(r.headers['content-type']), /^text\/event-stream/);
    return events(r.text);
  };
  const resume = (headers: Record<string, string>, lastEventId: string): ReturnType<HttpsClient['request']> => raw.request('GET', '/mcp', { headers: { ...headers, accept: 'text/event-stream', 'last-event-id': lastEventId } });

  test('the SDK\'s client, cut off mid-call, resumes the stream: the progress from before and after the break, then the result', async () => {
    const proxy = await tcpProxy(Number(new URL(url).port));
    const proxied = new URL(url);
    proxied.port = String(proxy.port);
    const client = await httpClient(proxied.href, ca, tokens.boss);
    try {
      const progress: string[] = [];
      let cut = 0;
      const started = Date.now();
      const result = (await client.callTool({ name: 'run_command', arguments: { host: 'localhost', command: 'echo compiling && sleep 5' } }, undefined, {
        onprogress: (p) => {
          progress.push(p.message ?? '');
          // Broken just after the first progress: the next comes while the client is away.
          if (cut === 0) cut = proxy.cut();
        },
        timeout: 2500,
        resetTimeoutOnProgress: true,
      })) as CallToolResult;
      assert.ok(cut > 0, 'the call\'s connection was broken');
      assertLongCallProgress({ result, progress, ms: Date.now() - started });
    } finally {
      await client.close();
      proxy.close();
    }
  });

  test('only the session that owns a stream replays it: another session of the same principal is refused, another principal\'s token does not reach the session', async () => {
    const owner = await session(tokens.boss);
    const sent = await streamed(owner, 'run_command', { host: 'localhost', command: 'echo only-mine' });
    const [priming, ...rest] = sent;
    assert.ok(priming?.id !== undefined && priming.data === '', `the stream opens with an event id and no data: ${JSON.stringify(sent)}`);
    assert.ok(rest.every((e) => e.id !== undefined), 'every event has an id');
    assert.match(rest.at(-1)!.data, /only-mine/);

    const other = await session(tokens.boss);
    const refused = await resume(other, priming.id);
    assert.equal(refused.status, 400, refused.text);
    assert.match(refused.json<{ error: { message: string } }>().error.message, /^no event \S+ in this MCP session: unknown, or dropped/);
    assert.doesNotMatch(refused.text, /only-mine/);
    const stolen = await resume({ ...owner, authorization: `Bearer ${tokens.local}` }, priming.id);
    assert.equal(stolen.status, 404, stolen.text);
    assert.doesNotMatch(stolen.text, /only-mine/);

    // Its own session replays it: everything after the priming event, with the ids it had.
    const replayed = await resume(owner, priming.id);
    assert.equal(replayed.status, 200, replayed.text);
    assert.deepEqual(events(replayed.text).slice(1), rest);
  });

  test('a session keeps its latest events up to its bound: an event it dropped cannot be resumed from (a clear 400), the newest answer is kept whatever its size', async () => {
    const headers = await session(tokens.boss);
    const [first] = await streamed(headers, 'run_command', { host: 'localhost', command: 'echo early' });
    assert.ok(first?.id !== undefined);
    assert.equal((await resume(headers, first.id)).status, 200, 'held before the large answer');
    // An answer carries the content twice: 3 MiB of text is more than the store's bound alone.
    const big = join(dir, 'big.txt');
    writeFileSync(big, 'x'.repeat(3 << 20));
    assert.ok(2 * (3 << 20) > EVENT_BYTES_KEPT);
    const [largePriming, ...large] = await streamed(headers, 'read_file', { host: 'localhost', path: big, length: 3 << 20 });
    assert.ok(largePriming?.id !== undefined);

    const dropped = await resume(headers, first.id);
    assert.equal(dropped.status, 400, dropped.text);
    assert.match(dropped.json<{ error: { message: string } }>().error.message, /^no event \S+ in this MCP session: unknown, or dropped \(a session keeps its latest 1000 events and 4 MiB of them\)/);
    const kept = await resume(headers, largePriming.id);
    assert.equal(kept.status, 200);
    assert.deepEqual(events(kept.text).slice(1), large, 'the large answer itself is replayed');
  });
});
