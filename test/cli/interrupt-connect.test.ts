// Ctrl-C while an SSH host is still being connected to (down, or slow to answer): the command exits 130 at
// once, as Ctrl-C does during a run, instead of after the connect timeout, in its own process and through
// a daemon (whose connect, shared with other callers, goes on without it). The host here accepts TCP and
// never says a word, as a wedged sshd does.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { remux, spawnRemux, tempHome } from '../support/cli.js';

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
    // mute for the commands run in their own process; one host for each command through the daemon, whose
    // connect to a host goes on after an interrupted caller (a second caller would only wait on it).
    const host = (name: string): string => `  ${name}:\n    address: 127.0.0.1\n    port: ${port}\n    user: nobody\n    identity: ${join(h.home, 'id_ed25519')}\n`;
    writeFileSync(join(h.home, 'hosts.yaml'), `hosts:\n${host('mute')}${host('mute-run')}${host('mute-read')}`);
    // Far longer than the test waits: an exit within it is Ctrl-C's doing.
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: p\nssh:\n  connect_timeout_seconds: 60\n');
    writeFileSync(join(h.home, 'policies.yaml'), 'policies:\n  p:\n    sandbox: false\n    capabilities:\n      - { operation: execute_binary, resource: /usr/bin/true }\n      - { operation: read_file, resource: "/etc/**" }\n');
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    for (const s of held) s.destroy();
    server.close();
    h.remove();
  });

  /** `remux ARGS` sent SIGINT once `ready`: it exits 130 within 5 s; its stderr. */
  async function interrupted(args: string[], ready: () => Promise<unknown>): Promise<string> {
    const child = spawnRemux(args, { env: h.env });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await ready();
    const pressed = performance.now();
    child.kill('SIGINT');
    const code = await exited;
    const seconds = (performance.now() - pressed) / 1000;
    assert.equal(code, 130, stderr);
    assert.ok(seconds < 5, `exited ${seconds.toFixed(1)} s after Ctrl-C: ${stderr}`);
    return stderr;
  }

  for (const args of [
    ['client', 'run', 'mute', '--', 'true'],
    ['client', 'read', 'mute', '/etc/hostname'],
    ['session', 'new', 'build', '--host', 'mute'],
    ['rpc', 'mute', 'Exec.command', '--', 'true'],
  ]) {
    test(`remux ${args.join(' ')}: exit 130 at once`, async () => {
      const before = accepted;
      // No daemon runs for this REMUX_HOME: the command runs in its own process.
      const stderr = await interrupted(args, async () => {
        // The connect is under way: the host took the TCP connection and says nothing.
        for (let waited = 0; accepted === before && waited < 20_000; waited += 50) await sleep(50);
        assert.ok(accepted > before, 'the host was never connected to');
        await sleep(300);
      });
      assert.match(stderr, /mute \(127\.0\.0\.1:\d+\): connect interrupted/);
    });
  }

  test('through a daemon: exit 130 at once, and the daemon audits the call as interrupted', async () => {
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
    for (const [host, args] of [
      ['mute-run', ['client', 'run', 'mute-run', '--', 'true']],
      ['mute-read', ['client', 'read', 'mute-read', '/etc/hostname']],
    ] as const) {
      // The CLI opens a TCP connection to a host it names before it knows a daemon runs: the count of
      // connections accepted cannot tell the daemon's connect under way. Ctrl-C before it comes to the
      // connect must end the call at once all the same.
      const stderr = await interrupted([...args], () => sleep(1500));
      assert.match(stderr, new RegExp(`${host}: connect interrupted`));
      const audit = await remux(['audit', 'ls', '--json', '--host', host], { env: h.env });
      const rows = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { status: string; error: string | null });
      assert.equal(rows.length, 1, audit.stdout);
      assert.match(rows[0]!.error ?? '', new RegExp(`${host}: connect interrupted`), audit.stdout);
    }
  });
});
