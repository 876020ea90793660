// The fleet harness against the real OpenSSH client: reachability, identity, cut/heal, kill/restart,
// hosts without bubblewrap, and that nothing (namespace, interface, address, process, temp dir)
// survives stop() or a crash.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { FLEET_ENV, startFleet, type Fleet, type FleetHost } from './fleet.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

function sshArgs(h: FleetHost, knownHosts: string, command: string, connectTimeout = 5): string[] {
  return [
    '-F', '/dev/null',
    '-i', h.identityFile,
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', `ConnectTimeout=${connectTimeout}`,
    '-p', String(h.port),
    `${h.user}@${h.address}`,
    command,
  ];
}

function ssh(fleet: Fleet, h: FleetHost, command: string, connectTimeout?: number): Promise<Run> {
  return run('ssh', sshArgs(h, fleet.knownHostsFile, command, connectTimeout));
}

async function interfacesAndAddresses(): Promise<string> {
  return (await run('ip', ['-o', 'addr', 'show'])).stdout;
}

/** Processes still carrying the fleet's marker or naming its directory (zombies excluded). */
function fleetProcesses(fleet: Fleet): number[] {
  const id = fleet.dir.split('/').pop() as string;
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        if (/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return false;
        const env = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
        return env.includes(`${FLEET_ENV}=${id}`) || readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(fleet.dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function assertGone(fleet: Fleet): Promise<void> {
  const id = fleet.dir.split('/').pop() as string;
  assert.equal(existsSync(fleet.dir), false, 'temp dir removed');
  assert.deepEqual(fleetProcesses(fleet), [], 'no fleet process left');
  const namespaces = (await run('ip', ['netns', 'list'])).stdout;
  assert.equal(namespaces.includes(id), false, `no namespace left: ${namespaces}`);
  if (fleet.mode === 'netns') {
    const subnet = (fleet.hosts[0] as FleetHost).address.replace(/\.\d+$/, '.');
    assert.equal((await interfacesAndAddresses()).includes(` ${subnet}`), false, 'no address left in the fleet subnet');
  }
}

describe('fleet', () => {
  let fleet: Fleet;
  const host = (i: number): FleetHost => fleet.hosts[i] as FleetHost;

  before(async () => {
    fleet = await startFleet({ count: 3 });
  });
  after(() => fleet?.stop());

  test('every host answers real OpenSSH with strict host key checking', async () => {
    assert.equal(fleet.mode, process.getuid?.() === 0 ? 'netns' : 'loopback');
    const runs = await Promise.all(fleet.hosts.map((h) => ssh(fleet, h, 'echo "$RMXF_HOST $SSH_CONNECTION"; id -un; echo "$HOME"')));
    runs.forEach((r, i) => {
      const h = host(i);
      assert.equal(r.code, 0, r.stderr);
      const [line, user, home] = r.stdout.trim().split('\n');
      assert.equal(home, `${fleet.dir}/${h.name}/home`, 'a home of its own, free of the real user\'s rc files');
      const [name, , , serverAddr, serverPort] = (line ?? '').split(' ');
      assert.equal(name, h.name);
      assert.equal(serverAddr, h.address);
      assert.equal(Number(serverPort), h.port);
      assert.equal(user, h.user);
    });
  });

  test('host keys differ and are checked: a swapped key is refused, an unknown host too', async () => {
    const keys = fleet.hosts.map((h) => h.hostKeyLine.split(' ').slice(1).join(' '));
    assert.equal(new Set(keys).size, fleet.hosts.length);
    const h1 = host(0);
    const swapped = `${fleet.dir}/known_hosts.swapped`;
    writeFileSync(swapped, `${h1.hostKeyLine.split(' ')[0]} ${keys[1]}\n`);
    const changed = await run('ssh', sshArgs(h1, swapped, 'true'));
    assert.equal(changed.code, 255);
    assert.match(changed.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED/);
    const empty = `${fleet.dir}/known_hosts.empty`;
    writeFileSync(empty, '');
    const unknown = await run('ssh', sshArgs(h1, empty, 'true'));
    assert.equal(unknown.code, 255);
    assert.match(unknown.stderr, /No ED25519 host key is known/);
  });

  test('each host has its own tmux server', async () => {
    const [h1, h2] = [host(0), host(1)];
    assert.equal((await h1.exec(['tmux', 'new-session', '-d', '-s', 'only-on-h1'])).code, 0);
    const seen = await ssh(fleet, h1, 'tmux list-sessions -F "#{session_name}"');
    assert.equal(seen.stdout.trim(), 'only-on-h1');
    const other = await ssh(fleet, h2, 'tmux list-sessions');
    assert.notEqual(other.code, 0);
  });

  test('cut() makes connects time out; heal() restores', async () => {
    const h = host(2);
    await h.cut();
    const cut = await ssh(fleet, h, 'true', 1);
    assert.equal(cut.code, 255);
    assert.match(cut.stderr, /timed out/i);
    assert.ok(cut.ms >= 900 && cut.ms < 5000, `timed out after ${cut.ms} ms`);
    await h.heal();
    const healed = await ssh(fleet, h, 'echo back');
    assert.equal(healed.stdout.trim(), 'back', healed.stderr);
  });

  test('kill() drops a running command promptly; restart() brings sshd back', async () => {
    const h = host(1);
    const before = h.sshdPid();
    assert.ok(before);
    const long = spawn('ssh', sshArgs(h, fleet.knownHostsFile, 'echo started; sleep 30'), { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => long.once('close', resolve));
    await new Promise<void>((resolve) => long.stdout.on('data', (d: Buffer) => d.includes('started') && resolve()));
    const t0 = Date.now();
    h.kill();
    assert.equal(await exited, 255);
    assert.ok(Date.now() - t0 < 3000, 'the client noticed quickly');
    assert.equal(h.sshdPid(), null);
    const refused = await ssh(fleet, h, 'true');
    assert.match(refused.stderr, /Connection refused/);
    await h.restart();
    assert.ok(h.sshdPid());
    assert.notEqual(h.sshdPid(), before);
    assert.equal((await ssh(fleet, h, 'echo again')).stdout.trim(), 'again');
  });

  test('stop() leaves no namespace, interface, address, process or directory', async () => {
    // Two fleets at once, as two concurrent test files would have.
    const [a, b] = await Promise.all([startFleet({ count: 2 }), startFleet({ count: 2, prefix: 'web' })]);
    assert.notEqual(a.dir, b.dir);
    const endpoint = (f: Fleet): string => `${f.hosts[0]?.address}:${f.hosts[0]?.port}`;
    assert.notEqual(endpoint(a), endpoint(b));
    assert.equal(b.hosts[1]?.name, 'web2');
    for (const f of [a, b]) {
      const h = f.hosts[0] as FleetHost;
      const r = await ssh(f, h, 'tmux new-session -d -s s; sleep 60 >/dev/null 2>&1 & echo ok');
      assert.equal(r.stdout.trim(), 'ok', r.stderr);
      assert.ok(fleetProcesses(f).length >= 3, 'sshd, tmux and sleep are running');
    }
    await Promise.all([a.stop(), b.stop()]);
    await assertGone(a);
    await assertGone(b);
  });

  test('withoutBwrap: that host\'s sessions find no bubblewrap, the others do, and a restart keeps it so', { skip: process.getuid?.() !== 0 && 'needs root' }, async () => {
    const f = await startFleet({ count: 2, withoutBwrap: ['h2'] });
    try {
      const probe = 'test -f /usr/bin/bwrap && bwrap --version || echo none';
      const [has, lacks] = await Promise.all(f.hosts.map((x) => ssh(f, x, probe)));
      assert.match(has?.stdout ?? '', /^bubblewrap \d/);
      assert.equal(lacks?.stdout, 'none\n');
      await f.hosts[1]!.restart();
      assert.equal((await ssh(f, f.hosts[1]!, probe)).stdout, 'none\n');
      assert.equal((await f.hosts[1]!.exec(['sh', '-c', probe])).stdout.startsWith('bubblewrap'), true, 'only its sshd is affected');
    } finally {
      await f.stop();
    }
    await assertGone(f);
  });

  test('loopback mode works too (SIGSTOP stands in for a cut)', async () => {
    const lo = await startFleet({ count: 2, mode: 'loopback' });
    try {
      assert.equal(lo.mode, 'loopback');
      const h = lo.hosts[0] as FleetHost;
      assert.equal(h.address, '127.0.0.1');
      assert.match(h.hostKeyLine, /^\[127\.0\.0\.1\]:\d+ ssh-ed25519 AAAA/);
      assert.equal((await ssh(lo, h, 'echo "$RMXF_HOST"')).stdout.trim(), 'h1');
      await h.cut();
      const cut = await ssh(lo, h, 'true', 1);
      assert.match(cut.stderr, /timed out/i);
      await h.heal();
      assert.equal((await ssh(lo, h, 'echo up')).stdout.trim(), 'up');
    } finally {
      await lo.stop();
    }
    await assertGone(lo);
  });

  test('a run that exits without stop(), or is SIGKILLed, leaves nothing behind', async () => {
    const fleetModule = new URL('./fleet.js', import.meta.url).href;
    const script = (ending: string): string =>
      `const { startFleet } = await import(${JSON.stringify(fleetModule)});
       const f = await startFleet({ count: 2 });
       console.log(JSON.stringify({ dir: f.dir, mode: f.mode, hosts: f.hosts.map((h) => ({ address: h.address })) }));
       ${ending}`;
    const forgot = await run(process.execPath, ['--input-type=module', '-e', script('throw new Error("crash");')]);
    assert.notEqual(forgot.code, 0);
    await assertGone(JSON.parse(forgot.stdout) as Fleet);

    const killed = await run(process.execPath, ['--input-type=module', '-e', script('process.kill(process.pid, "SIGKILL");')]);
    const dead = JSON.parse(killed.stdout) as Fleet;
    assert.equal(existsSync(dead.dir), true, 'SIGKILL skips the exit hook');
    // The next fleet started anywhere sweeps fleets whose owner is gone.
    const next = await startFleet({ count: 1 });
    await next.stop();
    await assertGone(dead);
  });
});
