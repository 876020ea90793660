// The connection pool against real sshd hosts (MaxSessions 2): one connection per host shared by
// concurrent commands with FIFO queueing, the circuit breaker on an unreachable host, drops,
// reconnects, keepalive, host key refusals, aborts, jump hosts, status, and the sandbox probe (h4 has
// no bubblewrap).
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { DEFAULT_SECURE_PATH } from '../../src/config/config.js';
import type { SandboxSpec } from '../../src/exec/types.js';
import type { SshHostEntry } from '../../src/hosts/inventory.js';
import { EarlySockets } from '../../src/hosts/early-sockets.js';
import { ConnectionPool, type PoolOptions } from '../../src/hosts/pool.js';
import { TransportError, type Host } from '../../src/hosts/types.js';
import { type Fleet, type FleetHost, runningOn, startFleet } from '../fleet/fleet.js';
import { execOn } from '../support/host-exec.js';

let fleet: Fleet;
let h1: FleetHost;
let h2: FleetHost;
let h3: FleetHost;
let h4: FleetHost;
let dir: string;
const pools: ConnectionPool[] = [];
const isRoot = process.getuid?.() === 0;

before(async () => {
  fleet = await startFleet({ count: 4, maxSessions: 2, withoutBwrap: isRoot ? ['h4'] : [] });
  [h1, h2, h3, h4] = fleet.hosts as [FleetHost, FleetHost, FleetHost, FleetHost];
  dir = mkdtempSync(join(fleet.dir, 'pool-test-'));
});

after(async () => {
  await Promise.all(pools.map((p) => p.closeAll()));
  await fleet.stop();
});

function entry(h: FleetHost, jump: string | null = null): SshHostEntry {
  return {
    name: h.name,
    transport: 'ssh',
    address: h.address,
    port: h.port,
    user: h.user,
    auth: { method: 'identity', file: h.identityFile },
    labels: {},
    jump,
    builtin: false,
  };
}

function pool(opts: PoolOptions = {}): ConnectionPool {
  const p = new ConnectionPool({ knownHostsFile: fleet.knownHostsFile, maxChannels: 2, connectTimeoutMs: 5000, ...opts });
  pools.push(p);
  return p;
}


const run = execOn;

/** The TransportError a command fails with, and how long it took. */
async function failure(host: Host, argv: string[] = ['true']): Promise<{ err: TransportError; ms: number }> {
  const started = Date.now();
  try {
    await run(host, argv);
  } catch (err) {
    assert.ok(err instanceof TransportError, `expected a TransportError, got ${String(err)}`);
    return { err, ms: Date.now() - started };
  }
  throw new assert.AssertionError({ message: 'the command was expected to fail' });
}

/** Established SSH connections on the host's sshd. */
async function connections(h: FleetHost): Promise<number> {
  const res = await h.exec(['ss', '-Htn', 'state', 'established', `( sport = :${h.port} )`]);
  return res.stdout.split('\n').filter((l) => l.trim() !== '').length;
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new assert.AssertionError({ message: `timed out waiting for ${what}` });
    await new Promise((r) => setTimeout(r, 20));
  }
}

function status(p: ConnectionPool, name: string): ReturnType<ConnectionPool['status']>[number] {
  const s = p.status().find((x) => x.name === name);
  assert.ok(s, `no status for ${name}`);
  return s;
}

describe('one connection per host', () => {
  test('6 concurrent commands share one connection, at most 2 channels at once, in FIFO order', async () => {
    const p = pool();
    const host = p.host(entry(h1));
    let inFlight = 0;
    let peak = 0;
    const starts: number[] = [];
    const all = Array.from({ length: 6 }, (_, i) => {
      let started = false;
      return run(host, ['sh', '-c', 'echo go; sleep 0.3'], {
        onStdout: () => {
          if (started) return;
          started = true;
          starts.push(i);
          peak = Math.max(peak, ++inFlight);
        },
      }).then((r) => {
        inFlight--;
        return r;
      });
    });
    await until('the queue to fill', () => status(p, 'h1').queued === 4);
    assert.equal(status(p, 'h1').activeChannels, 2);
    const results = await Promise.all(all);
    assert.deepEqual(results.map((r) => r.exitCode), [0, 0, 0, 0, 0, 0]);
    assert.equal(peak, 2);
    assert.deepEqual([starts.slice(0, 2).sort(), starts.slice(2, 4).sort(), starts.slice(4).sort()], [[0, 1], [2, 3], [4, 5]]);
    assert.equal(await connections(h1), 1);
    const s = status(p, 'h1');
    assert.deepEqual([s.connected, s.activeChannels, s.queued, s.breaker.state], [true, 0, 0, 'closed']);
    assert.equal(typeof s.lastRttMs, 'number');
  });

  test('twelve hosts connected to at once raise no listener warning (each connect listens to the pool\'s signal)', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const p = pool();
      // Port 1 of loopback refuses at once; the twelve connects are under way together all the same.
      const hosts = Array.from({ length: 12 }, (_, i) => p.host({ ...entry(h1), name: `many${i}`, port: 1 }));
      const results = await Promise.allSettled(hosts.map((host) => run(host, ['true'])));
      assert.ok(results.every((r) => r.status === 'rejected'));
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(warnings.filter((w) => /MaxListeners/.test(w)), []);
    } finally {
      process.off('warning', onWarning);
    }
  });

  test('a burst of 40 short commands at the server\'s session limit: none fails', async () => {
    const host = pool().host(entry(h1));
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => run(host, ['echo', String(i)])));
    assert.deepEqual(results.map((r) => r.stdout), Array.from({ length: 40 }, (_, i) => `${i}\n`));
  });

  test('an abort while queued never runs the command; an abort while running kills it', async () => {
    const host = pool().host(entry(h1));
    const stopFirst = new AbortController();
    const first = run(host, ['sleep', '46.1'], { signal: stopFirst.signal });
    // Its timeout outlasts the wait for both slots below (3 s), however slowly a loaded machine shows them.
    const second = run(host, ['sleep', '46.2'], { timeoutMs: 5000 });
    const queued = new AbortController();
    const waiting = run(host, ['touch', join(dir, 'never')], { signal: queued.signal });
    await until('both slots busy', async () => (await runningOn(h1, '^sleep 46.1$')) && runningOn(h1, '^sleep 46.2$'));
    queued.abort();
    const r = await waiting;
    assert.deepEqual([r.exitCode, r.aborted], [130, true]);
    stopFirst.abort();
    assert.deepEqual([(await first).exitCode, (await second).exitCode], [130, 124]);
    await until('the sleeps to be gone', async () => !(await runningOn(h1, '^sleep 46.[12]$')), 5000);
    assert.throws(() => readFileSync(join(dir, 'never')), 'the queued command never ran');
  });

  test('a timed out command is killed on the host and frees its slot', async () => {
    const host = pool().host(entry(h1));
    const r = await run(host, ['sleep', '47'], { timeoutMs: 200 });
    assert.deepEqual([r.exitCode, r.timedOut], [124, true]);
    await until('sleep 47 to be gone', async () => !(await runningOn(h1, '^sleep 47$')), 1500);
    assert.equal((await run(host, ['true'])).exitCode, 0);
  });
});

describe('sandbox support', () => {
  const version = /(\d+\.\d+\.\d+)/.exec(execFileSync('bwrap', ['--version']).toString())?.[1];

  test('probed once per connection and shown in status; a new connection probes again', async () => {
    const p = pool();
    const host = p.host(entry(h1));
    assert.equal(status(p, 'h1').sandbox, null, 'nothing known before connecting');
    const support = await host.sandboxSupport();
    assert.equal(support.available, true);
    assert.equal(support.detail, `bubblewrap ${version}`);
    assert.equal(support.staticFallback, true);
    assert.equal(support.warning === undefined, !/^0\./.test(version ?? ''), 'a bubblewrap older than 0.12.0 is worth a warning');
    if (support.warning) assert.match(support.warning, /^bubblewrap .* on h1 is older than 0\.12\.0, which fixes a known sandbox escape/);
    const again = await Promise.all([host.sandboxSupport(), host.sandboxSupport()]);
    assert.ok(again.every((s) => s === support), 'the same answer, not a new probe');
    assert.deepEqual(status(p, 'h1').sandbox, support);

    await h1.restart();
    await until('the drop to be noticed', () => !status(p, 'h1').connected);
    assert.equal(status(p, 'h1').sandbox, null);
    const reprobed = await host.sandboxSupport();
    assert.notEqual(reprobed, support);
    assert.deepEqual(reprobed, support);
  });

  test('concurrent first commands share one probe', async () => {
    const p = pool();
    const host = p.host(entry(h2));
    const answers = await Promise.all(Array.from({ length: 5 }, () => host.sandboxSupport()));
    assert.ok(answers.every((s) => s === answers[0]));
  });

  test('a host without bwrap: static checks only, saying why', { skip: !isRoot && 'a host without bwrap needs root' }, async () => {
    const support = await pool().host(entry(h4)).sandboxSupport();
    assert.deepEqual(support, { available: false, detail: `no bwrap in PATH ${DEFAULT_SECURE_PATH}`, staticFallback: true });
  });

  test('a bwrap that cannot start a sandbox: its version and the first line it said', async () => {
    const fake = mkdtempSync(join(dir, 'fakebin-'));
    writeFileSync(
      join(fake, 'bwrap'),
      '#!/bin/sh\nif [ "$1" = --version ]; then echo "bubblewrap 0.8.0"; exit 0; fi\necho "bwrap: No permissions to create a new namespace" >&2\necho "more" >&2\nexit 1\n',
      { mode: 0o755 },
    );
    const support = await pool({ securePath: `${fake}:${DEFAULT_SECURE_PATH}` }).host(entry(h1)).sandboxSupport();
    assert.deepEqual(support, { available: false, detail: 'bwrap 0.8.0 cannot start a sandbox: bwrap: No permissions to create a new namespace', staticFallback: true });
  });

  test('an unreachable host rejects like execute() does', async () => {
    const host = pool().host({ ...entry(h2), name: 'nowhere', port: 1 });
    await assert.rejects(host.sandboxSupport(), (err: unknown) => err instanceof TransportError && /^nowhere .*ECONNREFUSED/.test(err.message));
  });

  test('execute() runs a sandboxed command on the pooled connection', async () => {
    const root = mkdtempSync(join(dir, 'sandboxed-'));
    mkdirSync(join(root, 'box'));
    writeFileSync(join(root, 'secret'), 'SECRET\n');
    writeFileSync(join(root, 'box', 'data'), 'data\n');
    symlinkSync(join(root, 'secret'), join(root, 'box', 'link'));
    const sandbox: SandboxSpec = { read: [join(root, 'box')], write: [], hide: [], readOnly: [], network: false, owner: 'test' };
    const host = pool().host(entry(h1));
    const cwd = join(root, 'box');
    assert.equal((await run(host, ['cat', 'data'], { cwd, sandbox })).stdout, 'data\n');
    const escape = await run(host, ['cat', 'link'], { cwd, sandbox });
    assert.deepEqual([escape.exitCode, escape.stdout], [1, '']);
    const write = await run(host, ['touch', 'new'], { cwd, sandbox });
    assert.notEqual(write.exitCode, 0);
    assert.equal(existsSync(join(cwd, 'new')), false);
  });

  test('long-lived sandboxes: one per owner, each holding a channel slot, stopped when unused', { skip: !isRoot && 'long-lived sandboxes need a root login' }, async (t) => {
    const root = mkdtempSync(join(dir, 'held-'));
    const spec = (owner: string): SandboxSpec => ({ read: [root], write: [], hide: [], readOnly: [], network: false, owner });
    // This file's fleet allows 2 sessions; holders need more.
    const wide = await startFleet({ count: 1, prefix: 'w', maxSessions: 4 });
    t.after(() => wide.stop());
    const w1 = wide.hosts[0] as FleetHost;
    // Idle long enough that a loaded machine runs the next owner's command before the first holder stops.
    const p = pool({ maxChannels: 4, holderIdleMs: 2000, knownHostsFile: wide.knownHostsFile });
    const host = p.host(entry(w1));
    await host.sandboxSupport();
    const status = (q: ConnectionPool, _name: string): ReturnType<ConnectionPool['status']>[number] => q.status()[0] as ReturnType<ConnectionPool['status']>[number];
    const ns = async (owner: string): Promise<string> => (await run(host, ['readlink', '/proc/self/ns/pid'], { cwd: root, sandbox: spec(owner) })).stdout;
    const alice = await ns('alice');
    assert.match(alice, /^pid:\[\d+\]\n$/);
    assert.equal(status(p, 'h1').sandboxHolders, 1);
    assert.equal(await ns('alice'), alice, 'reused');
    const bob = await ns('bob');
    assert.notEqual(bob, alice, 'owners never share');
    assert.equal(status(p, 'h1').sandboxHolders, 2);
    // 4 slots, 2 holders: a third owner would leave no slot free beside the running command, so it gets its own bwrap.
    const carol = await ns('carol');
    assert.ok(![alice, bob].includes(carol));
    assert.equal(status(p, 'h1').sandboxHolders, 2);
    // Commands still run two at a time next to the holders.
    const both = await Promise.all([run(host, ['sleep', '0.2']), run(host, ['true'])]);
    assert.deepEqual(both.map((r) => r.exitCode), [0, 0]);
    await until('unused holders to stop', () => status(p, 'h1').sandboxHolders === 0, 10_000);
    const again = await ns('alice');
    assert.notEqual(again, alice, 'a new holder after the idle stop');
    assert.equal(status(p, 'h1').sandboxHolders, 1);
    await p.closeAll();
    assert.equal(status(p, 'h1').sandboxHolders, 0);
  });

  test('sandboxHolders: false keeps a bwrap per command', async () => {
    const root = mkdtempSync(join(dir, 'unheld-'));
    const sandbox: SandboxSpec = { read: [root], write: [], hide: [], readOnly: [], network: false, owner: 'a' };
    const p = pool({ maxChannels: 4, sandboxHolders: false });
    const host = p.host(entry(h1));
    await host.sandboxSupport();
    const a = await run(host, ['readlink', '/proc/self/ns/pid'], { cwd: root, sandbox });
    const b = await run(host, ['readlink', '/proc/self/ns/pid'], { cwd: root, sandbox });
    assert.notEqual(a.stdout, b.stdout);
    assert.equal(status(p, 'h1').sandboxHolders, 0);
  });
});

describe('failures', () => {
  test('an unreachable host: connect timeouts open the breaker, then it fails fast; it closes when the host returns', async () => {
    const p = pool({ connectTimeoutMs: 800, breaker: { failureThreshold: 2, cooldownMs: 1000 }, backoff: { baseMs: 20, capMs: 40 } });
    const host = p.host(entry(h2));
    await h2.cut();
    try {
      for (let i = 0; i < 2; i++) {
        const { err, ms } = await failure(host);
        assert.match(err.message, /^h2 \(.*\): no SSH session within 800 ms \(connect timeout\)$/);
        assert.ok(ms >= 700 && ms < 2000, `attempt ${i + 1} took ${ms} ms`);
      }
      assert.equal(status(p, 'h2').breaker.state, 'open');
      const fast = await failure(host);
      assert.ok(fast.ms < 50, `took ${fast.ms} ms`);
      assert.match(fast.err.message, /^circuit open for h2 after 2 consecutive failures \(last: h2 .*connect timeout\)\); next probe in/);
    } finally {
      await h2.heal();
    }
    const probeAt = status(p, 'h2').breaker.nextProbeAt as number;
    await new Promise((r) => setTimeout(r, Math.max(0, probeAt - Date.now()) + 10));
    assert.equal((await run(host, ['true'])).exitCode, 0);
    const s = status(p, 'h2');
    assert.deepEqual([s.breaker.state, s.breaker.consecutiveFailures, s.connected], ['closed', 0, true]);
  });

  test('sshd killed mid-command: TransportError naming the host within 2 s; the next command reconnects', async () => {
    const p = pool();
    const host = p.host(entry(h3));
    assert.equal((await run(host, ['true'])).exitCode, 0);
    const pending = failure(host, ['sleep', '5']);
    await until('sleep 5 to run', () => runningOn(h3, '^sleep 5$'));
    h3.kill();
    const { err, ms } = await pending;
    assert.ok(ms < 2000, `took ${ms} ms`);
    assert.match(err.message, /^h3 \(.*\): connection lost/);
    assert.equal(status(p, 'h3').breaker.consecutiveFailures, 1);
    assert.match((await failure(host)).err.message, /^h3 .*cannot connect: .*ECONNREFUSED/);
    await h3.restart();
    // Full-jitter backoff after the refused attempt: at most 500 ms by default.
    await until('a reconnect', async () => (await run(host, ['true']).catch(() => null))?.exitCode === 0);
    assert.equal(status(p, 'h3').breaker.consecutiveFailures, 0);
  });

  test('an idle connection that drops is re-made on next use, without counting as a failure', async () => {
    const p = pool();
    const host = p.host(entry(h3));
    assert.equal((await run(host, ['true'])).exitCode, 0);
    await h3.restart();
    await until('the drop to be noticed', () => !status(p, 'h3').connected);
    assert.equal((await run(host, ['true'])).exitCode, 0);
    assert.equal(status(p, 'h3').breaker.consecutiveFailures, 0);
  });

  test('keepalive notices a host that went silent', async () => {
    const p = pool({ keepaliveIntervalMs: 150, keepaliveCountMax: 2 });
    const host = p.host(entry(h2));
    assert.equal((await run(host, ['true'])).exitCode, 0);
    await h2.cut();
    try {
      await until('the keepalive to give up', () => !status(p, 'h2').connected, 2000);
      assert.match(status(p, 'h2').lastError ?? '', /Keepalive timeout/);
    } finally {
      await h2.heal();
    }
  });

  test('a refused host key is not retried with backoff but counts for the breaker; --accept-new trusts it once', async () => {
    const file = join(dir, 'known_hosts_h1_missing');
    writeFileSync(file, `${h2.hostKeyLine}\n`);
    const p = pool({ knownHostsFile: file, breaker: { failureThreshold: 3, cooldownMs: 60_000 }, backoff: { baseMs: 5000, capMs: 5000 } });
    const host = p.host(entry(h1));
    for (let i = 0; i < 3; i++) {
      const { err, ms } = await failure(host);
      assert.match(err.message, /host key for h1 .* is not in/);
      assert.ok(ms < 1000, `attempt ${i + 1} waited ${ms} ms: no backoff for a refused key`);
    }
    assert.match((await failure(host)).err.message, /^circuit open for h1 after 3 consecutive failures \(last: host key for h1/);

    const accepted: string[] = [];
    const trusting = pool({ knownHostsFile: file, acceptNew: true, onHostKeyAccepted: (name, fp) => accepted.push(`${name} ${fp}`) });
    assert.equal((await run(trusting.host(entry(h1)), ['true'])).exitCode, 0);
    assert.equal(accepted.length, 1);
    assert.match(accepted[0] as string, /^h1 SHA256:/);
    assert.ok(readFileSync(file, 'utf8').includes(h1.hostKeyLine.split(' ')[2] as string));
  });

  test('failed authentication names the host and the key tried', async () => {
    const key = join(dir, 'stranger');
    await promisify(execFile)('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', key]);
    const host = pool().host({ ...entry(h1), auth: { method: 'identity', file: key } });
    assert.match((await failure(host)).err.message, /^h1 \(.*\): authentication as \S+ failed \(tried key .*stranger\)$/);
  });
});

describe('jump hosts, status, shutdown', () => {
  test('a host behind a jump host connects through the jump host\'s pooled connection', async () => {
    const entries = new Map([h1, h2, h3].map((h) => [h.name, entry(h)]));
    const p = pool({ lookup: (name) => entries.get(name) });
    const target = p.host(entry(h3, 'h2'));
    assert.equal((await run(target, ['printenv', 'RMXF_HOST'])).stdout, 'h3\n');
    assert.deepEqual(p.status().map((s) => [s.name, s.connected]).sort(), [['h2', true], ['h3', true]]);
    assert.match((await failure(p.host(entry(h1, 'nowhere')))).err.message, /jump host "nowhere" is not an ssh host in the inventory/);
  });

  test('a jump host that cannot be reached fails the host behind it naming both, not the jump host alone', async () => {
    const down: SshHostEntry = { ...entry(h1), name: 'jumpy', address: '127.0.0.1', port: 1 };
    const p = pool({ lookup: (name) => (name === 'jumpy' ? down : undefined) });
    const { err } = await failure(p.host(entry(h3, 'jumpy')));
    assert.match(err.message, /^h3 is reached through jumpy: jumpy \(127\.0\.0\.1:1\): cannot connect: /);
  });

  test('a changed inventory entry gets a fresh connection; a Host taken before the change still works', async () => {
    const p = pool();
    const before = p.host(entry(h1));
    assert.equal((await run(before, ['true'])).exitCode, 0);
    const moved = p.host({ ...entry(h1), address: '127.0.0.2', port: 1 });
    assert.match((await failure(moved)).err.message, /^h1 \(127\.0\.0\.2:1\): cannot connect/);
    assert.equal((await run(before, ['true'])).exitCode, 0);
  });

  test('closeAll closes connections and refuses later commands', async () => {
    const p = pool();
    const host = p.host(entry(h1));
    assert.equal((await run(host, ['true'])).exitCode, 0);
    await p.closeAll();
    assert.equal(status(p, 'h1').connected, false);
    assert.match((await failure(host)).err.message, /connection pool is closed/);
  });
});

describe('early sockets (TCP begun before the pool existed)', () => {
  test('the first connect uses the early socket; host keys are still checked on it', async () => {
    const h = fleet.hosts[0]!;
    const early = new EarlySockets();
    early.start(h.name, h.address, h.port);
    const p = pool({ earlySockets: early });
    const r = await run(p.host(entry(h)), ['echo', 'via early socket']);
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, 'via early socket\n');
    assert.equal(early.take(h.name, h.address, h.port), undefined, 'handed out once');

    // Same early path, but a known_hosts that does not know the host: refused.
    const dir = mkdtempSync('/tmp/remux-kh-');
    const empty = join(dir, 'known_hosts');
    writeFileSync(empty, '');
    const strict = new EarlySockets();
    strict.start(h.name, h.address, h.port);
    const refusing = pool({ earlySockets: strict, knownHostsFile: empty });
    try {
      await assert.rejects(run(refusing.host(entry(h)), ['true']), (err: Error) => err instanceof TransportError && /not in|unknown/i.test(err.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a refused early connection is a clean transport error, and unused sockets are closed', async () => {
    const early = new EarlySockets();
    // A port nothing listens on (the fleet host's address, port 1).
    const h = fleet.hosts[1]!;
    const dead = { ...entry(h), port: 1 };
    early.start(dead.name, dead.address, dead.port);
    early.start('other', h.address, h.port);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const p = pool({ earlySockets: early });
    await assert.rejects(run(p.host(dead), ['true']), (err: Error) => err instanceof TransportError && /cannot connect/.test(err.message));
    const taken = early.take('other', h.address, h.port);
    assert.ok(taken && !taken.socket.destroyed);
    const left = early.start('left', h.address, h.port);
    early.closeUnused();
    assert.equal(left.socket.destroyed, true, 'an early socket no command took is closed');
    assert.equal(taken.socket.destroyed, false, 'one already taken is not');
    taken.socket.destroy();
  });
});
