// Adversarial: /api/ws/ping answers every message. A client that sends on and never reads the answers
// left them in the daemon's memory: any principal's token (a read-only one here) grew it without end.
// And each socket may hold that much: one principal opening a thousand of them held gigabytes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { PING_LIMITS } from '../../src/gateway/http/routes.js';
import { startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';
import { client } from '../support/https.js';
import { until } from '../support/until.js';

const FRAME = 1 << 20;
const FRAMES = 64;

describe('a WebSocket client that sends and never reads', { timeout: 120_000 }, () => {
  let d: ConsoleDaemon;
  before(async () => {
    d = await startConsoleDaemon({ viewer: ['--hosts', 'box', '--read-only'], other: ['--hosts', 'box', '--read-only'] });
  });
  after(() => d.stop());

  test('is no longer read once its unread answers pass the high-water mark; reading them, it is answered in full', async () => {
    const ws = new WebSocket(`${d.url.replace(/^https/, 'wss')}api/ws/ping`, { ca: d.ca, headers: { authorization: `Bearer ${d.tokens.viewer}` } });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    let pongs = 0;
    ws.on('message', () => pongs++);
    // The client's own socket is not read: the daemon's answers pile up on its side of the connection.
    const socket = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    const frame = 'x'.repeat(FRAME);
    for (let i = 0; i < FRAMES; i++) {
      ws.send(frame);
      // A turn of the event loop between frames: queued all at once, this client's TLS socket sent none while paused.
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const total = FRAMES * (FRAME + 8);
    // What the daemon took of the 64 MiB is what left this client; the rest waits in its buffer.
    let taken = 0;
    for (let still = 0; still < 10; ) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const now = total - ws.bufferedAmount;
      still = now === taken ? still + 1 : 0;
      taken = now;
    }
    assert.ok(taken < 24 * FRAME, `the daemon stopped reading: it took ${(taken / FRAME).toFixed(1)} MiB of the ${FRAMES} MiB sent without reading its answers`);
    socket.resume();
    await until(`all ${FRAMES} answers`, () => pongs === FRAMES, 60_000);
    ws.close();
  });

  test(`a principal holds ${PING_LIMITS.perPrincipal} at most: the next is refused before its upgrade (429), another principal is not; one closed gives its place back`, async () => {
    const api = client(d.url, d.ca);
    const open = async (principal: string): Promise<{ status: number; close(): void; error?: string; message?: string }> => {
      const r = await api.upgrade('/api/ws/ping', { authorization: `Bearer ${d.tokens[principal]}` });
      if ('socket' in r) return { status: r.status, close: () => r.socket.destroy() };
      return { status: r.status, close: () => undefined, ...r.json<{ error: string; message: string }>() };
    };
    const held = [];
    for (let i = 0; i < PING_LIMITS.perPrincipal; i++) held.push(await open('viewer'));
    assert.deepEqual(held.map((s) => s.status), Array(PING_LIMITS.perPrincipal).fill(101));
    const refused = await open('viewer');
    assert.deepEqual([refused.status, refused.error, refused.message], [429, 'too_many_sockets', `viewer already has ${PING_LIMITS.perPrincipal} ping WebSockets open (the limit per principal is ${PING_LIMITS.perPrincipal}); close one first`]);
    const other = await open('other');
    assert.equal(other.status, 101, 'another principal opens one meanwhile');
    other.close();
    held.pop()!.close();
    // Given back once the daemon has seen the connection close.
    for (const deadline = Date.now() + 10_000; ; ) {
      const again = await open('viewer');
      again.close();
      if (again.status === 101) break;
      assert.ok(Date.now() < deadline, `still refused 10 s after one closed: ${again.message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const s of held) s.close();
  });
});
