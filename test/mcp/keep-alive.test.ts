// A call's stream of server-sent events (json-post.ts) with nothing to say, a call waiting for an approval
// say, carries keep-alive comments, so that proxies do not end it as idle; they stop with the stream.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { SessionEvents } from '../../src/gateway/mcp/events.js';
import { JsonPostTransport } from '../../src/gateway/mcp/json-post.js';

test('a progress stream idle for longer than the keep-alive interval carries comments until its answer ends it', async (t) => {
  const transport = new JsonPostTransport(new StreamableHTTPServerTransport({ sessionIdGenerator: () => 's1' }), new SessionEvents(), 50);
  transport.onmessage = () => {}; // the call runs on: nothing answers it until the test does
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => assert.ok(transport.answer(req, res, JSON.parse(body)), 'taken by the fast path'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const call = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'run_command', arguments: {}, _meta: { progressToken: 1 } } };
  const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify(call),
  });
  assert.equal(response.headers.get('content-type'), 'text/event-stream');
  const reader = response.body!.getReader();
  let text = '';
  // A read still pending when time is up is kept for the next readFor: its chunk must not be lost.
  let pending: ReturnType<typeof reader.read> | null = null;
  const readFor = async (ms: number): Promise<void> => {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      pending ??= reader.read();
      const chunk = await Promise.race([pending, sleep(until - Date.now()).then(() => null)]);
      if (chunk === null) return;
      pending = null;
      if (chunk.done) return;
      text += new TextDecoder().decode(chunk.value);
    }
  };
  await readFor(280);
  assert.ok((text.match(/^: keep-alive$/gm) ?? []).length >= 3, text);
  await transport.send({ jsonrpc: '2.0', id: 7, result: { content: [] } });
  await readFor(100);
  assert.match(text, /event: message\nid: \S+\ndata: \{"jsonrpc":"2\.0","id":7,"result":\{"content":\[\]\}\}\n\n$/, 'the answer ends the stream');
  // An interval left running would write after the end: an error on the response, which fails the test.
  await sleep(150);
});
