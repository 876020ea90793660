// Adversarial: the legacy HTTP+SSE transport answers every POST /messages on the session's event stream.
// A client that posted on and never read that stream piled the answers up in the daemon's memory: a
// tools/list of a few bytes left tens of KiB there, without end, for any principal's token.
import assert from 'node:assert/strict';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { MCP_ANSWER_MAX } from '../../src/gateway/mcp/line-transport.js';
import { remux, tempHome } from '../support/cli.js';
import { until } from '../support/until.js';
import { startMcpDaemon } from './support.js';

describe('a legacy SSE client that never reads its event stream', { timeout: 180_000 }, () => {
  const h = tempHome();
  let d: Awaited<ReturnType<typeof startMcpDaemon>>;
  before(async () => {
    d = await startMcpDaemon(h);
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  test('is refused more once one answer\'s worth is unread (429), and served again once it has read them', async () => {
    const base = new URL(d.url);
    const auth = { authorization: `Bearer ${d.tokens.local}` };
    const agent = new https.Agent({ keepAlive: true, maxSockets: 8, ca: d.ca });
    const stream = await new Promise<IncomingMessage>((resolve, reject) =>
      https.get(new URL('/sse', base), { ca: d.ca, headers: { ...auth, accept: 'text/event-stream' } }, resolve).on('error', reject),
    );
    let text = '';
    stream.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    const endpoint = await until('the endpoint event', () => /event: endpoint\ndata: (\S+)/.exec(text)?.[1]);
    const post = (message: object): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const q = https.request(new URL(endpoint, base), { method: 'POST', agent, headers: { ...auth, 'content-type': 'application/json' } }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        q.on('error', reject);
        q.end(JSON.stringify(message));
      });
    assert.equal((await post({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } })).status, 202);
    assert.equal((await post({ jsonrpc: '2.0', method: 'notifications/initialized' })).status, 202);
    const before = text.length;
    assert.equal((await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' })).status, 202);
    await until('the first answer', () => text.includes('"id":1}'));
    const answerBytes = text.length - before;

    // Nothing more is read from the stream: what the daemon sends waits on its side of the connection.
    stream.pause();
    stream.socket.pause();
    // Beyond what the daemon may keep unread, the connection's buffers in the kernel (a few MiB) take some.
    const bound = Math.ceil((MCP_ANSWER_MAX + (16 << 20)) / answerBytes);
    let id = 1;
    let refused: { status: number; body: string } | null = null;
    while (refused === null && id < bound) {
      const answers = await Promise.all(Array.from({ length: 8 }, () => post({ jsonrpc: '2.0', id: ++id, method: 'tools/list' })));
      refused = answers.find((a) => a.status !== 202) ?? null;
    }
    assert.ok(refused, `a POST was refused before ${bound} answers of ${answerBytes} bytes were left unread (${id} posted)`);
    assert.equal(refused.status, 429);
    assert.match(refused.body, /this session's event stream \(GET \/sse\) holds \d+ MiB its client has not read: read it before sending more/);

    stream.socket.resume();
    stream.resume();
    await until('the answer to the first POST left unread', () => text.includes('"id":2}'), 60_000);
    let again = await post({ jsonrpc: '2.0', id: ++id, method: 'tools/list' });
    for (let tries = 0; again.status !== 202 && tries < 100; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      again = await post({ jsonrpc: '2.0', id: ++id, method: 'tools/list' });
    }
    assert.equal(again.status, 202, 'taken again once the stream is read');
    await until(`the answer to ${id}`, () => text.includes(`"id":${id}}`), 60_000);
    stream.destroy();
    agent.destroy();
  });
});
