// The terminal WebSocket on a session over SSH (a real sshd of test/fleet): a flood's last screen reaches
// the client soon after the flood ends. Resting reads (gateway/terminal.ts) only works where tmux's
// client is our pty; over SSH it left megabytes in the channel's window to drain a piece at a time.
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { startFleet, type Fleet, type FleetHost } from '../fleet/fleet.js';
import { INPUT_FLOW } from '../../src/gateway/terminal.js';
import { startDaemon, type TestDaemon } from '../support/browser-daemon.js';
import { remux } from '../support/cli.js';

const FLOOD_BYTES = 32 << 20;

describe('the terminal WebSocket on a session over SSH', { timeout: 120_000 }, () => {
  let fleet: Fleet;
  let h1: FleetHost;
  let d: TestDaemon;
  const dir = mkdtempSync(join(tmpdir(), 'remux-terminal-ssh-'));
  const file = join(dir, 'flood.txt');
  const socketName = 'remux-terminal-ssh';

  before(async () => {
    const line = Buffer.from(`${'the quick brown fox jumps over the lazy dog '.repeat(2)}0123456789\n`);
    const fd = openSync(file, 'w');
    for (let written = 0; written < FLOOD_BYTES; written += line.length) writeSync(fd, line);
    closeSync(fd);
    fleet = await startFleet({ count: 1 });
    h1 = fleet.hosts[0]!;
    d = await startDaemon(
      {
        'hosts.yaml': `hosts:\n  h1:\n    address: ${h1.address}\n    port: ${h1.port}\n    user: ${h1.user}\n    identity: ${h1.identityFile}\n    tmux_socket: ${socketName}\n`,
        'config.yaml': `ssh:\n  known_hosts: ${fleet.knownHostsFile}\nsessions: { record: none }\n`,
        'policies.yaml': 'policies:\n  none:\n    capabilities: []\n',
      },
      { name: 'boss', flags: ['--admin'] },
    );
  });
  after(async () => {
    await d?.stop();
    await fleet?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a flood's last screen arrives within seconds of its end, not after the channel's backlog is drained", async (t) => {
    const tmux = (...args: string[]) => h1.exec(['tmux', '-L', socketName, ...args]);
    assert.equal((await tmux('new-session', '-d', '-s', 'flood', '-x', '150', '-y', '45', 'sh')).code, 0);
    const ws = new WebSocket(`${d.url.replace(/^https/, 'wss')}api/ws/terminal?${new URLSearchParams({ host: 'h1', name: 'flood', cols: '150', rows: '45' })}`, {
      rejectUnauthorized: false,
      headers: { authorization: `Bearer ${d.token}` },
    });
    t.after(() => ws.terminate());
    // A client as fast as a browser can be: everything acknowledged as it arrives.
    let bytes = 0;
    let tail = '';
    let done: { at: number; printed: number } | null = null;
    ws.on('message', (data: Buffer, isBinary) => {
      if (!isBinary) return;
      bytes += data.length;
      ws.send(JSON.stringify({ type: 'ack', bytes }));
      const text = tail + data.toString('latin1');
      const m = /DONE(\d{13})/.exec(text);
      if (m && !done) done = { at: Date.now(), printed: Number(m[1]) };
      tail = text.slice(-64);
    });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    // The host shares this machine's clock: the flood prints when it ended, in ms.
    const sent = Date.now();
    await tmux('send-keys', '-t', '=flood:', `cat ${file}; printf 'DONE%s\\n' "$(date +%s%3N)"`, 'Enter');
    while (!done && Date.now() - sent < 90_000) await sleep(10);
    assert.ok(done, `the flood's end never reached the client (${bytes} bytes did)`);
    const { at, printed } = done as { at: number; printed: number };
    // Resting reads over SSH: 18 s for a 64 MiB flood here, more than 90 s for this one; read on: 0.1-0.2 s.
    assert.ok(at - printed < 10_000, `the last screen came ${at - printed} ms after the flood ended (${((printed - sent) / 1000).toFixed(1)} s of cat)`);
  });

  test('input the host has not taken is held to INPUT_FLOW.highWater: the daemon stops reading the socket, its memory does not grow', async (t) => {
    const tmux = (...args: string[]) => h1.exec(['tmux', '-L', socketName, ...args]);
    assert.equal((await tmux('new-session', '-d', '-s', 'deaf', 'sleep 600')).code, 0);
    const rss = async (): Promise<number> => (JSON.parse((await remux(['daemon', 'status', '--json'], { env: d.env })).stdout) as { memoryRssBytes: number }).memoryRssBytes;
    const ws = new WebSocket(`${d.url.replace(/^https/, 'wss')}api/ws/terminal?${new URLSearchParams({ host: 'h1', name: 'deaf' })}`, {
      rejectUnauthorized: false,
      headers: { authorization: `Bearer ${d.token}` },
    });
    t.after(() => ws.terminate());
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const before = await rss();
    // 128 MiB of pastes at once; tmux takes keys a few MiB a second, so nearly all of it waits (read
    // whole, it grew the daemon by more than that; the margin is for the collector's timing).
    const paste = JSON.stringify({ type: 'input', data: 'x'.repeat(INPUT_FLOW.highWater - 64) });
    for (let i = 0; i < 128; i++) ws.send(paste);
    await sleep(3000);
    const grew = (await rss()) - before;
    assert.ok(grew < 64 << 20, `the daemon grew by ${(grew / 2 ** 20).toFixed(1)} MiB holding input`);
    assert.ok(ws.bufferedAmount > 64 << 20, `the client still holds its input (${ws.bufferedAmount} bytes): the daemon stopped reading`);
  });
});
