// The resident executor (ssh-executor.ts) through the pool against real sshd hosts: started once a
// connection serves its second command, used when ready, its death never losing or repeating a
// command, backpressure reaching the remote command, and hosts without it staying on channels. The
// wrapper's whole contract through it is test/hosts/ssh-resident.test.ts (ssh.test.ts through the executor).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { OutputFlow } from '../../src/exec/types.js';
import { ConnectionPool, type PoolOptions } from '../../src/hosts/pool.js';
import { ShellExecutor } from '../../src/hosts/ssh-executor.js';
import { connectSsh } from '../../src/hosts/ssh.js';
import { ENTER_NAMESPACES } from '../../src/exec/sandbox.js';
import { PASSED_ENV } from '../../src/hosts/local.js';
import type { Host, HostExecRequest } from '../../src/hosts/types.js';
import { type Fleet, type FleetHost, goneFrom, inventoryEntry, startFleet } from '../fleet/fleet.js';
import { rawCommand } from '../policy/fixture.js';
import { execOn } from '../support/host-exec.js';

let fleet: Fleet;
let h1: FleetHost;
let dir: string;
const pools: ConnectionPool[] = [];

before(async () => {
  fleet = await startFleet({ count: 1 });
  h1 = fleet.hosts[0] as FleetHost;
  dir = mkdtempSync(join(fleet.dir, 'executor-test-'));
});

after(async () => {
  await Promise.all(pools.map((p) => p.closeAll()));
  await fleet.stop();
});

function hostOf(opts: PoolOptions = {}): Host {
  const p = new ConnectionPool({ knownHostsFile: fleet.knownHostsFile, connectTimeoutMs: 5000, ...opts });
  pools.push(p);
  return p.host(inventoryEntry(h1));
}

const run = (host: Host, script: string, req: Partial<HostExecRequest> = {}): ReturnType<typeof execOn> => execOn(host, ['sh', '-c', script], req);

// What started the command: sshd for a channel (sshd → the wrapper shell → this `sh -c`), python3 for
// the executor (python3 → this `sh -c`, started directly as a single program).
const LAUNCHER = 'p=$PPID; case $(cat /proc/$p/comm) in python*) ;; *) read -r _ _ _ p _ </proc/$p/stat ;; esac; printf "%s %s\\n" "$(cat /proc/$p/comm)" "$p"';

async function launcher(host: Host): Promise<{ comm: string; pid: number }> {
  const r = await run(host, LAUNCHER);
  assert.equal(r.exitCode, 0);
  const [comm = '', pid = ''] = r.stdout.trim().split(' ');
  return { comm, pid: Number(pid) };
}

/** Runs commands until one goes through the executor (it starts in the background). */
async function untilResident(host: Host): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const l = await launcher(host);
    if (l.comm.startsWith('python')) return l.pid;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new assert.AssertionError({ message: 'no command went through the resident executor' });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('the first command takes a channel; after the second, commands go through the executor', async () => {
  const host = hostOf();
  assert.match((await launcher(host)).comm, /^sshd/, 'a one-shot command starts no executor');
  await sleep(300);
  assert.match((await launcher(host)).comm, /^sshd/, 'still a channel: the executor was not started by one command');
  await untilResident(host);
});

test('off: never an executor', async () => {
  const host = hostOf({ residentExecutor: 'off' });
  for (let i = 0; i < 4; i++) assert.match((await launcher(host)).comm, /^sshd/);
});

test('a host without the interpreter stays on channels, and commands still run', async () => {
  const host = hostOf({ residentExecutor: 'always', residentPython: 'no-such-python3' });
  for (let i = 0; i < 5; i++) {
    assert.match((await launcher(host)).comm, /^sshd/);
    await sleep(50);
  }
});

test('the executor killed between commands: the next one runs once, on a channel or a new executor', async () => {
  const host = hostOf({ residentExecutor: 'always' });
  const pid = await untilResident(host);
  process.kill(pid, 'SIGKILL');
  await sleep(100);
  const counter = join(dir, 'between');
  const r = await run(host, `echo x >> ${counter}`);
  assert.equal(r.exitCode, 0);
  assert.equal(readFileSync(counter, 'utf8'), 'x\n', 'ran exactly once');
  const again = await untilResident(host);
  assert.notEqual(again, pid, 'a new executor');
});

test('the executor killed mid-command: a failure, never a second run; the command\'s group is killed', async () => {
  const host = hostOf({ residentExecutor: 'always' });
  const pid = await untilResident(host);
  const counter = join(dir, 'mid');
  const done = join(dir, 'mid-done');
  const running = run(host, `echo x >> ${counter}; sleep 3; echo late > ${done}`).then(
    () => assert.fail('a command whose executor died must not report a status'),
    (err: Error) => err,
  );
  for (let i = 0; i < 100; i++) {
    try {
      if (readFileSync(counter, 'utf8')) break;
    } catch {
      // not yet
    }
    await sleep(20);
  }
  process.kill(pid, 'SIGKILL');
  const err = await running;
  assert.match(err.message, /resident executor.*outcome is unknown/);
  await sleep(3500);
  assert.equal(readFileSync(counter, 'utf8'), 'x\n', 'ran exactly once');
  assert.throws(() => readFileSync(done), 'the watcher killed the group when the interpreter died');
  assert.equal((await run(host, 'true')).exitCode, 0, 'the next command runs');
});

test('a slow reader pauses the remote command (the link\'s window), and nothing is lost', async () => {
  const host = hostOf({ residentExecutor: 'always' });
  await untilResident(host);
  const flag = join(dir, 'flow-done');
  let full = true;
  let room: (() => void) | null = null;
  const flow: OutputFlow = { full: () => full, onRoom: (cb) => void (room = cb) };
  let bytes = 0;
  const total = 8 << 20;
  const running = host.execute({
    list: rawCommand(['sh', '-c', `head -c ${total} /dev/zero; echo done > ${flag}`]),
    cwd: '/',
    timeoutMs: null,
    pipefail: false,
    output: { maxBytes: null, redact: [], redactBlocks: [] },
    sandbox: null,
    flow,
    onStdout: (c) => (bytes += c.length),
    onStderr: () => undefined,
  });
  await sleep(800);
  assert.ok(bytes < total, `paused after ${bytes} bytes`);
  assert.throws(() => readFileSync(flag), 'the command is blocked on its output');
  full = false;
  (room as (() => void) | null)?.();
  const result = await running;
  assert.equal(result.exitCode, 0);
  assert.equal(bytes, total);
  assert.equal(readFileSync(flag, 'utf8'), 'done\n');
});

test('the executor holds a channel slot: with 4 slots, three commands run while it lives and a fourth queues', async () => {
  const p = new ConnectionPool({ knownHostsFile: fleet.knownHostsFile, connectTimeoutMs: 5000, maxChannels: 4, residentExecutor: 'always' });
  pools.push(p);
  const host = p.host(inventoryEntry(h1));
  await untilResident(host);
  const all = Array.from({ length: 4 }, () => run(host, 'sleep 0.4'));
  await sleep(150);
  const status = p.status().find((s) => s.name === h1.name);
  assert.equal(status?.activeChannels, 3);
  assert.equal(status?.queued, 1);
  for (const r of await Promise.all(all)) assert.equal(r.exitCode, 0);
});

test('a single program starts without the shell and behaves as under the wrapper (same status, output, PATH, PWD, refusals)', async () => {
  const channel = hostOf({ residentExecutor: 'off' });
  const resident = hostOf({ residentExecutor: 'always' });
  await untilResident(resident);
  const cwd = join(dir, 'via-link');
  symlinkSync(dir, cwd);
  const cases: Array<[string[], Partial<HostExecRequest>]> = [
    [['printenv', 'PATH'], {}],
    [['sh', '-c', 'echo "$PWD"; pwd -P; echo err >&2; exit 42'], { cwd }],
  ];
  for (const [argv, req] of cases) {
    const a = await execOn(channel, argv, req);
    const b = await execOn(resident, argv, req);
    assert.deepEqual(pick(b), pick(a), `${argv.join(' ')}: as on a channel`);
  }
  // The status of a program killed by a signal; bash's own "Killed" line on stderr is not there.
  const killed = ['sh', '-c', 'kill -s KILL $$'];
  assert.equal((await execOn(resident, killed)).exitCode, (await execOn(channel, killed)).exitCode);
  assert.equal((await execOn(resident, killed)).stderr, '');
  const missingCwd = await execOn(resident, ['true'], { cwd: join(dir, 'no-such-dir') });
  assert.deepEqual(pick(missingCwd), pick(await execOn(channel, ['true'], { cwd: join(dir, 'no-such-dir') })));
  assert.equal(missingCwd.errorKind, 'cwd');
  const missing = await execOn(resident, ['no-such-program-here']);
  assert.equal(missing.exitCode, 127);
  assert.match(missing.stderr, /no-such-program-here/);
  assert.equal((await execOn(channel, ['no-such-program-here'])).exitCode, 127);
  assert.match((await launcher(resident)).comm, /^python/, 'it went through the executor');
});

const pick = (r: Awaited<ReturnType<typeof execOn>>): object => ({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, error: r.error, errorKind: r.errorKind });

test('a program run directly: what it leaves in its group gets TERM when it ends (as the wrapper does), and the command returns', async () => {
  const host = hostOf({ residentExecutor: 'always' });
  await untilResident(host);
  const started = Date.now();
  // The leftover holds the command's stdout: without the TERM the command would wait for it.
  const r = await execOn(host, ['sh', '-c', 'sleep 61.1 & echo left']);
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout, 'left\n');
  assert.ok(Date.now() - started < 5000, 'returns once the program ends');
  assert.ok(await goneFrom(h1, '^sleep 61.1$', 1000), 'the leftover was killed');
  // Its pipes closed before it ended: the TERM still comes, once it has.
  const quiet = await execOn(host, ['sh', '-c', 'exec >/dev/null 2>&1; sleep 61.2 & sleep 0.3']);
  assert.equal(quiet.exitCode, 0);
  assert.ok(await goneFrom(h1, '^sleep 61.2$', 1000), 'the leftover of a program that closed its pipes was killed');
});

test('a program run directly that ignores TERM: KILL after the grace on timeout', async () => {
  const host = hostOf({ residentExecutor: 'always' });
  await untilResident(host);
  const started = Date.now();
  const r = await execOn(host, ['sh', '-c', "trap '' TERM; sleep 62.1; echo survived"], { timeoutMs: 300 });
  assert.equal(r.exitCode, 124);
  assert.equal(r.stdout, '');
  const took = Date.now() - started;
  assert.ok(took >= 2000 && took < 4500, `returns after the grace of 2 s (${took} ms)`);
  assert.ok(await goneFrom(h1, '^sleep 62.1$', 1000), 'sleep 62.1 was killed');
  assert.ok(await goneFrom(h1, 'sleep 62.1; echo survived', 1000), 'and its shell');
});

test('a holder whose keeper ends between the checks and the start: refused as gone (nothing ran), not a lost command', async () => {
  const conn = await connectSsh({ name: h1.name, address: h1.address, port: h1.port, user: h1.user, auth: { method: 'identity', file: h1.identityFile } }, { knownHostsFile: fleet.knownHostsFile, readyTimeoutMs: 5000 });
  try {
    const executor = await ShellExecutor.start(conn);
    assert.ok(executor);
    // A "holder" that passes every check (this live process, its own start time and namespaces) but
    // whose helper descriptor is not there: what the executor finds when the keeper ends in between.
    const start = readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]!;
    const holder = { keeper: process.pid, keeperStart: start, init: process.pid, initStart: start, visible: ['/'], hidden: [] };
    const marker = 'remux-test:';
    let stderr = '';
    const exit = await executor.exec(
      () => 'unused',
      { onStdout: () => undefined, onStderr: (c) => (stderr += c.toString()) },
      { enter: { holder, cwd: '/', securePath: '/usr/bin:/bin', marker, killGraceMs: 2000, argv: ['true'], script: '', namespaces: ENTER_NAMESPACES, passedEnv: PASSED_ENV, helperFd: 999 } },
    );
    assert.deepEqual(exit, { code: 125, signal: null });
    assert.equal(stderr, `${marker}holder-gone\n`);
    executor.close();
  } finally {
    await conn.close();
  }
});
