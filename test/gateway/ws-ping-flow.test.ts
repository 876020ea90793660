// Adversarial: /api/ws/ping answers every message. A client that sends on and never reads the answers
// left them in the daemon's memory: any principal's token (a read-only one here) grew it without end.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';
import { until } from '../support/until.js';

const FRAME = 1 << 20;
const FRAMES = 64;

describe('a WebSocket client that sends and never reads', { timeout: 120_000 }, () => {
  let d: ConsoleDaemon;
  before(async () => {
    d = await startConsoleDaemon({ viewer: ['--hosts', 'box', '--read-only'] });
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
});
