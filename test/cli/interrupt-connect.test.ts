// Ctrl-C while an SSH host is still being connected to (down, or slow to answer): the command exits 130 at
// once, as Ctrl-C does during a run, instead of after the connect timeout. The host here accepts TCP and
// never says a word, as a wedged sshd does.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnRemux, tempHome } from '../support/cli.js';

describe('Ctrl-C during an SSH connect', { timeout: 120_000 }, () => {
  const h = tempHome();
  const held: Socket[] = [];
  let accepted = 0;
  let server: Server;
  before(async () => {
    server = createServer((socket) => {
      accepted++;
      held.push(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(h.home, 'id_ed25519')]);
    writeFileSync(join(h.home, 'hosts.yaml'), `hosts:\n  mute:\n    address: 127.0.0.1\n    port: ${port}\n    user: nobody\n    identity: ${join(h.home, 'id_ed25519')}\n`);
    // Far longer than the test waits: an exit within it is Ctrl-C's doing.
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: p\nssh:\n  connect_timeout_seconds: 60\n');
    writeFileSync(join(h.home, 'policies.yaml'), 'policies:\n  p:\n    sandbox: false\n    capabilities:\n      - { operation: execute_binary, resource: /usr/bin/true }\n      - { operation: read_file, resource: "/etc/**" }\n');
  });
  after(() => {
    for (const s of held) s.destroy();
    server.close();
    h.remove();
  });

  for (const args of [
    ['client', 'run', 'mute', '--', 'true'],
    ['client', 'read', 'mute', '/etc/hostname'],
    ['session', 'new', 'build', '--host', 'mute'],
    ['rpc', 'mute', 'Exec.command', '--', 'true'],
  ]) {
    test(`remux ${args.join(' ')}: exit 130 at once`, async () => {
      const before = accepted;
      // No daemon runs for this REMUX_HOME: the command runs in its own process.
      const child = spawnRemux(args, { env: h.env });
      let stderr = '';
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      // The connect is under way: the host took the TCP connection and says nothing.
      for (let waited = 0; accepted === before && waited < 20_000; waited += 50) await sleep(50);
      assert.ok(accepted > before, stderr);
      await sleep(300);
      const pressed = performance.now();
      child.kill('SIGINT');
      const code = await exited;
      const seconds = (performance.now() - pressed) / 1000;
      assert.equal(code, 130, stderr);
      assert.ok(seconds < 5, `exited ${seconds.toFixed(1)} s after Ctrl-C: ${stderr}`);
      assert.match(stderr, /mute \(127\.0\.0\.1:\d+\): connect interrupted/);
    });
  }
});
