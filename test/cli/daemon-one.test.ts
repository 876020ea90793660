// One daemon per REMUX_HOME: starts at the same moment, a socket changed in config.yaml, a daemon killed
// (SIGKILL), a record naming a pid another program has now, and a restart whose console address is taken.
// Real daemons, started as a user would.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { runningDaemon } from '../../src/config/daemon-record.js';
import { processAlive, processStartId } from '../../src/core/process.js';
import { remux, tempHome } from '../support/cli.js';
import { call, stdioClient } from '../mcp/support.js';
import { until } from '../support/until.js';

const POLICY = `policies:
  read_only:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: echo }
      - { operation: write_stdout, resource: null }
`;

/** A home with policies (and no principal: no console, unless a test adds one). */
function home(): ReturnType<typeof tempHome> {
  const h = tempHome();
  writeFileSync(join(h.home, 'policies.yaml'), POLICY);
  return h;
}

/** The daemon processes of HOME, found from outside: whatever each start said, these are what runs. */
function daemonsOf(home: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      const state = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.[0];
      if (args.includes('--foreground') && args.includes('daemon') && env.includes(`REMUX_HOME=${home}`) && state !== 'Z') found.push(Number(entry));
    } catch {
      // ended while we looked
    }
  }
  return found;
}

async function statusPid(env: Record<string, string>): Promise<number | null> {
  const r = await remux(['daemon', 'status', '--json'], { env });
  return r.code === 0 ? (JSON.parse(r.stdout) as { pid: number }).pid : null;
}

/** Stops whatever daemons of H a failed test left, then removes H. */
function cleanUp(h: ReturnType<typeof tempHome>): void {
  for (const pid of daemonsOf(h.home)) process.kill(pid, 'SIGKILL');
  h.remove();
}

test('starts at the same moment: exactly one daemon runs, the others exit non-zero naming it', { timeout: 90_000 }, async () => {
  const h = home();
  try {
    const starts = await Promise.all([1, 2, 3, 4].map(() => remux(['daemon', 'start'], { env: h.env })));
    const started = starts.filter((r) => r.code === 0);
    assert.equal(started.length, 1, starts.map((r) => r.stdout + r.stderr).join('\n'));
    const pid = Number(/^started: pid (\d+)/m.exec(started[0]!.stdout)?.[1]);
    for (const r of starts.filter((x) => x.code !== 0)) {
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^remux: not started: another daemon of ${h.home} started meanwhile: pid ${pid}, socket ${join(h.home, 'run', 'remux.sock')}; stop it with: remux daemon stop$`, 'm'));
    }
    await until('the refused daemons ended', () => daemonsOf(h.home).length === 1);
    assert.deepEqual(daemonsOf(h.home), [pid]);
    assert.equal(await statusPid(h.env), pid);
    const r = await remux(['client', 'run', 'local', '--', 'echo one'], { env: h.env });
    assert.equal(r.stdout, 'one\n', r.stderr);
    assert.equal((await remux(['daemon', 'stop'], { env: h.env })).code, 0);
    assert.deepEqual(daemonsOf(h.home), []);
  } finally {
    cleanUp(h);
  }
});

test('a socket changed in config.yaml: a second start is refused, status says where it runs, stop stops it, restart moves it', { timeout: 90_000 }, async () => {
  const h = home();
  const config = join(h.home, 'config.yaml');
  const first = join(h.home, 'run', 'remux.sock');
  const second = join(h.home, 'other', 'remux.sock');
  try {
    const started = await remux(['daemon', 'start'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
    const pid = await statusPid(h.env);
    // Named by the flag or the variable instead, the message says which, and how to move it there.
    const flagged = await remux(['daemon', 'status', '--socket', second], { env: h.env });
    assert.match(flagged.stdout, new RegExp(`^warning: the daemon runs on ${first}; --socket now says ${second}: \`remux daemon restart --socket ${second}\` moves it$`, 'm'));
    const variable = await remux(['daemon', 'status'], { env: { ...h.env, REMUX_SOCKET: second } });
    assert.match(variable.stdout, new RegExp(`^warning: the daemon runs on ${first}; REMUX_SOCKET now says ${second}: \`remux daemon restart\` moves it$`, 'm'));
    writeFileSync(config, `daemon:\n  socket: ${second}\n`);
    const moved = `the daemon runs on ${first}; config.yaml now says ${second}: \`remux daemon restart\` moves it`;

    const again = await remux(['daemon', 'start'], { env: h.env });
    assert.equal(again.code, 1, again.stdout + again.stderr);
    assert.equal(again.stderr, `remux: not started: ${moved}, or stop it with: remux daemon stop\n`);
    // The daemon itself refuses too, whoever starts it: on a socket of its own, in the foreground.
    const foreground = await remux(['daemon', 'start', '--foreground', '--socket', second], { env: h.env, via: 'node' });
    assert.equal(foreground.code, 1);
    assert.match(foreground.stderr, new RegExp(`a daemon of ${h.home} is already running \\(pid ${pid}\\) on ${first}, not on ${second} \\(one daemon serves a REMUX_HOME\\): \`remux daemon restart\` moves it, or stop it with: remux daemon stop`));
    assert.deepEqual(daemonsOf(h.home), [pid]);

    const status = await remux(['daemon', 'status'], { env: h.env });
    assert.equal(status.code, 0);
    assert.match(status.stdout, new RegExp(`^running: pid ${pid},`, 'm'));
    assert.match(status.stdout, new RegExp(`^warning: ${escape(moved)}$`, 'm'));
    const json = JSON.parse((await remux(['daemon', 'status', '--json'], { env: h.env })).stdout) as { socket: string; moved: { configured: string; message: string } };
    assert.deepEqual([json.socket, json.moved], [first, { configured: second, message: moved }]);
    assert.match((await remux(['doctor'], { env: h.env })).stdout, new RegExp(`^warn +daemon socket +${escape(moved)}$`, 'm'));
    const info = await remux(['status'], { env: h.env });
    assert.match(info.stdout, new RegExp(`^running: pid ${pid},[^]*^warning: ${escape(moved)}$`, 'm'), info.stdout + info.stderr);

    const stop = await remux(['daemon', 'stop'], { env: h.env });
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(stop.stdout, `the daemon runs on ${first}, not on ${second}: stopping it there\nstopped (pid ${pid})\n`);
    assert.deepEqual(daemonsOf(h.home), []);

    // Started on the first socket again, then moved by restart to the one config.yaml names.
    writeFileSync(config, '');
    assert.equal((await remux(['daemon', 'start'], { env: h.env })).code, 0);
    const before = await statusPid(h.env);
    writeFileSync(config, `daemon:\n  socket: ${second}\n`);
    const restart = await remux(['daemon', 'restart'], { env: h.env });
    assert.equal(restart.code, 0, restart.stderr);
    assert.match(restart.stdout, new RegExp(`^moving the daemon from ${first} to ${second}\nstopping pid ${before}; .*\nstarted: pid \\d+, socket ${second},`, 'm'));
    const after = JSON.parse((await remux(['daemon', 'status', '--json'], { env: h.env })).stdout) as { pid: number; socket: string; moved?: unknown };
    assert.equal(after.socket, second);
    assert.equal(after.moved, undefined);
    assert.deepEqual(daemonsOf(h.home), [after.pid]);
    assert.equal((await remux(['daemon', 'stop'], { env: h.env })).code, 0);
  } finally {
    cleanUp(h);
  }
});

test('a daemon killed with SIGKILL leaves nothing that blocks the next start', { timeout: 60_000 }, async () => {
  const h = home();
  try {
    assert.equal((await remux(['daemon', 'start'], { env: h.env })).code, 0);
    const pid = (await statusPid(h.env))!;
    assert.equal(runningDaemon(h.env)?.pid, pid, 'its record names it');
    process.kill(pid, 'SIGKILL');
    // Ended, not only on its way out (its command line is empty well before it has ended).
    await until('the killed daemon gone', () => !processAlive(pid));
    assert.equal(runningDaemon(h.env), null, 'the record of a daemon that is gone names none');

    const r = await remux(['daemon', 'start'], { env: h.env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const next = (await statusPid(h.env))!;
    assert.notEqual(next, pid);
    assert.equal(runningDaemon(h.env)?.pid, next);
    assert.equal((await remux(['daemon', 'stop'], { env: h.env })).code, 0);
    assert.equal(existsSync(join(h.home, 'run', 'daemon.json')), false, 'stop removes the record');
  } finally {
    cleanUp(h);
  }
});

test('a record naming a pid that another program has now is no daemon: start works, the program is left alone', { timeout: 60_000 }, async () => {
  const h = home();
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  const gone = new Promise((resolve) => sleeper.once('exit', resolve));
  try {
    const pid = sleeper.pid!;
    await until('sleep running', () => processStartId(pid));
    // As a daemon killed long ago would have left it, its pid since given to `sleep`: another start time.
    const record = join(h.home, 'run', 'daemon.json');
    const stale = { pid, home: h.home, socket: join(h.home, 'old.sock'), startedAt: '2026-01-01T00:00:00.000Z', process: `${processStartId(pid)!.split('/')[0]}/1` };
    mkdirSync(join(h.home, 'run'));
    writeFileSync(join(h.home, 'run', 'daemon.lock'), '');
    writeFileSync(record, JSON.stringify(stale), { mode: 0o600 });
    assert.equal(runningDaemon(h.env), null, 'not the process that wrote it');
    // The same record with the process's own start time names it: the start time is what tells them apart.
    writeFileSync(record, JSON.stringify({ ...stale, process: processStartId(pid) }));
    assert.equal(runningDaemon(h.env)?.pid, pid);
    writeFileSync(record, JSON.stringify(stale));

    const r = await remux(['daemon', 'start'], { env: h.env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const daemon = (await statusPid(h.env))!;
    assert.equal(runningDaemon(h.env)?.pid, daemon);
    assert.equal((await remux(['daemon', 'stop'], { env: h.env })).code, 0);
    assert.equal(sleeper.exitCode, null, 'sleep still runs');
    assert.equal(sleeper.signalCode, null);
  } finally {
    sleeper.kill();
    await gone;
    cleanUp(h);
  }
});

test('restart to a console address another program holds: refused before anything stops, the daemon goes on', { timeout: 60_000 }, async () => {
  const h = home();
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as AddressInfo).port;
  try {
    assert.equal((await remux(['principal', 'add', 'admin', '--admin'], { env: h.env })).code, 0);
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
    const pid = await statusPid(h.env);

    const r = await remux(['daemon', 'restart', '--listen', `127.0.0.1:${port}`], { env: h.env });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`^remux: not restarted: a new daemon would not start; the running one \\(pid ${pid}\\) goes on as it was\nremux: cannot serve on 127\\.0\\.0\\.1:${port}: address in use \\(EADDRINUSE\\): something else listens there .*; stop it, or start with --listen 127\\.0\\.0\\.1:${port + 1}`));
    assert.equal(await statusPid(h.env), pid, 'the same daemon still answers');
    const run = await remux(['client', 'run', 'local', '--', 'echo still'], { env: h.env });
    assert.equal(run.stdout, 'still\n', run.stderr);

    // Free again: the restart goes ahead.
    await new Promise((resolve) => taken.close(resolve));
    const ok = await remux(['daemon', 'restart', '--listen', `127.0.0.1:${port}`], { env: h.env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`^web console and API: https://127\\.0\\.0\\.1:${port}/$`, 'm'));
    // The address the running daemon holds itself is no obstacle: it frees it as it stops.
    const same = await remux(['daemon', 'restart'], { env: h.env });
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stdout, new RegExp(`^web console and API: https://127\\.0\\.0\\.1:${port}/$`, 'm'));
    assert.equal((await remux(['daemon', 'stop'], { env: h.env })).code, 0);
  } finally {
    taken.close();
    cleanUp(h);
  }
});

/** Makes the daemon of H one of a remux from before one daemon per home: the same protocol, but no claim (run/daemon.lock) and no record. */
function disclaim(h: ReturnType<typeof tempHome>): void {
  rmSync(join(h.home, 'run', 'daemon.lock'));
  rmSync(join(h.home, 'run', 'daemon.json'));
  assert.equal(runningDaemon(h.env), null);
}

test('a daemon of an older remux (it holds no claim on the home) on the socket: start refuses naming it, status says so, stop stops it, restart replaces it', { timeout: 90_000 }, async () => {
  const h = home();
  const socket = join(h.home, 'run', 'remux.sock');
  try {
    assert.equal((await remux(['daemon', 'start'], { env: h.env })).code, 0);
    const pid = (await statusPid(h.env))!;
    disclaim(h);
    const words = `a daemon \\(pid ${pid}, remux [^)]+\\) answers on ${socket} without holding ${h.home} \\(${join(h.home, 'run', 'daemon.lock')}\\): one of an older remux, or of another REMUX_HOME; \`remux daemon restart\` replaces it, or stop it with: remux daemon stop`;
    // Before, "already running" (exit 0), as if it were the home's own daemon.
    const refused = await remux(['daemon', 'start'], { env: h.env });
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.equal(refused.stdout, '');
    assert.match(refused.stderr, new RegExp(`^remux: not started: ${words}\n$`));
    // On another socket the new daemon itself refuses: before, it started, a second daemon of the home.
    const other = await remux(['daemon', 'start', '--socket', join(h.home, 'other.sock')], { env: h.env });
    assert.equal(other.code, 1, other.stdout + other.stderr);
    assert.match(other.stderr, new RegExp(`a daemon is already running on ${socket} \\(pid ${pid}\\) without holding ${h.home}: one of an older remux, or of another REMUX_HOME; stop it with: remux daemon stop --socket ${socket}`));
    assert.deepEqual(daemonsOf(h.home), [pid]);
    assert.match((await remux(['daemon', 'status'], { env: h.env })).stdout, new RegExp(`^running: pid ${pid},[^]*^warning: ${words}$`, 'm'));
    assert.match((await remux(['doctor'], { env: h.env })).stdout, new RegExp(`^warn +daemon lock +${words}$`, 'm'));

    const stop = await remux(['daemon', 'stop'], { env: h.env });
    assert.deepEqual([stop.code, stop.stdout], [0, `stopped (pid ${pid})\n`], stop.stderr);
    assert.deepEqual(daemonsOf(h.home), []);

    // Replaced by restart with one that holds the home.
    assert.equal((await remux(['daemon', 'start'], { env: h.env })).code, 0);
    const old = (await statusPid(h.env))!;
    disclaim(h);
    const restart = await remux(['daemon', 'restart'], { env: h.env });
    assert.equal(restart.code, 0, restart.stdout + restart.stderr);
    const next = (await statusPid(h.env))!;
    assert.notEqual(next, old);
    assert.equal(runningDaemon(h.env)?.pid, next);
    assert.deepEqual(daemonsOf(h.home), [next]);
    assert.equal((await remux(['daemon', 'stop'], { env: h.env })).code, 0);
  } finally {
    cleanUp(h);
  }
});

/** A program that prints its own pid and its ancestors', one a line: which process ran it. */
// The parent pid follows the state after the last ')': a name may hold spaces (npm names itself "npm test").
const ANCESTORS = '#!/bin/sh\np=$$\nwhile [ "$p" -gt 1 ]; do echo "$p"; p=$(sed -n \'s/.*) . \\([0-9]*\\) .*/\\1/p\' /proc/$p/stat); done\n';

/** A home whose policy (the default) runs HOME/ancestors and reads /etc/hostname; the program's path. */
function ancestorsHome(h: ReturnType<typeof tempHome>): string {
  const program = join(h.home, 'ancestors');
  writeFileSync(program, ANCESTORS, { mode: 0o755 });
  writeFileSync(join(h.home, 'policies.yaml'), POLICY.replace('resource: echo }', `resource: echo|${program} }\n      - { operation: read_file, resource: /etc/hostname }`));
  writeFileSync(join(h.home, 'config.yaml'), 'default_policy: read_only\n');
  return program;
}

const ranUnder = (stdout: string, pid: number): boolean => stdout.split('\n').includes(String(pid));

test('a socket changed while the daemon runs: client run, rpc and mcp --stdio, through the launcher and the Node CLI, use the daemon where it runs, and say so once', { timeout: 120_000 }, async () => {
  const h = tempHome();
  const program = ancestorsHome(h);
  const first = join(h.home, 'run', 'remux.sock');
  const second = join(h.home, 'other', 'remux.sock');
  try {
    assert.equal((await remux(['daemon', 'start'], { env: h.env })).code, 0);
    const pid = (await statusPid(h.env))!;
    const before = await remux(['client', 'run', 'local', '--', program], { env: h.env });
    assert.ok(ranUnder(before.stdout, pid), `served by the daemon: ${before.stdout}`);

    writeFileSync(join(h.home, 'config.yaml'), `default_policy: read_only\ndaemon:\n  socket: ${second}\n`);
    const moved = `warning: the daemon runs on ${first}; config.yaml now says ${second}: \`remux daemon restart\` moves it\n`;
    // Before, both ran it in their own process (no pooled connections, no approvals through the daemon), silently.
    for (const via of ['node', 'launcher'] as const) {
      const r = await remux(['client', 'run', 'local', '--', program], { env: { ...h.env, REMUX_LAUNCHER_DEBUG: '1' }, via });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(ranUnder(r.stdout, pid), `${via}: served by the daemon (pid ${pid}): ${r.stdout}`);
      // The launcher leaves a socket named in config.yaml to the Node CLI, which finds the daemon.
      assert.equal(r.stderr, `${via === 'launcher' ? 'remux launcher: running the Node CLI (config.yaml names the socket)\n' : ''}${moved}`);
    }
    // A variable naming another socket: the launcher finds no daemon there and hands over to Node, which does.
    const third = join(h.home, 'third.sock');
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: read_only\n');
    const variable = await remux(['client', 'run', 'local', '--', program], { env: { ...h.env, REMUX_SOCKET: third, REMUX_LAUNCHER_DEBUG: '1' } });
    assert.ok(ranUnder(variable.stdout, pid), variable.stdout + variable.stderr);
    assert.match(variable.stderr, new RegExp(`^remux launcher: running the Node CLI \\(no daemon on ${escape(third)}: .*\\)\nwarning: the daemon runs on ${escape(first)}; REMUX_SOCKET now says ${escape(third)}: \`remux daemon restart\` moves it\n$`));
    writeFileSync(join(h.home, 'config.yaml'), `default_policy: read_only\ndaemon:\n  socket: ${second}\n`);

    // --json: only JSON comes out, not even on stderr.
    const json = await remux(['client', 'run', 'local', '--json', '--', program], { env: h.env });
    assert.equal(json.stderr, '');
    assert.ok(ranUnder((JSON.parse(json.stdout) as { stdout: string }).stdout, pid), json.stdout);
    const rpc = await remux(['rpc', 'localhost', 'FileSystem.readText', '/etc/hostname'], { env: h.env });
    assert.deepEqual([rpc.code, rpc.stdout, rpc.stderr], [0, readFileSync('/etc/hostname', 'utf8'), moved]);

    const mcp = await stdioClient(h.env);
    try {
      const r = await call(mcp.client, 'run_command', { host: 'localhost', command: program });
      assert.ok(ranUnder(r.data.stdout, pid), `mcp: served by the daemon: ${r.text}`);
      assert.equal(mcp.stderr(), moved);
    } finally {
      await mcp.client.close();
    }
    assert.deepEqual(daemonsOf(h.home), [pid], 'no other daemon started');
    assert.equal((await remux(['daemon', 'stop'], { env: h.env })).code, 0);
  } finally {
    cleanUp(h);
  }
});

test("a client follows only its home's record, of this user's, to a socket of this user's", { timeout: 60_000, skip: process.getuid?.() !== 0 && 'needs root to make a socket of another user' }, async () => {
  const h = tempHome();
  const program = ancestorsHome(h);
  const socket = join(h.home, 'elsewhere.sock');
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  const gone = new Promise((resolve) => sleeper.once('exit', resolve));
  let connections = 0;
  const listener = createServer((c) => {
    connections++;
    c.destroy();
  });
  try {
    await new Promise<void>((resolve) => listener.listen(socket, resolve));
    const pid = sleeper.pid!;
    await until('sleep running', () => processStartId(pid));
    mkdirSync(join(h.home, 'run'));
    const record = join(h.home, 'run', 'daemon.json');
    // A live process of this user's as its daemon, on a socket of another user's (or one someone else could have written).
    const valid = { pid, home: h.home, socket, startedAt: new Date().toISOString(), process: processStartId(pid) };
    const cases: Array<[string, object, number]> = [
      ["another user's socket", valid, 0o600],
      ['a record others may write', valid, 0o622],
      ["another home's record", { ...valid, home: join(h.home, 'other') }, 0o600],
    ];
    chownSync(socket, 65534, 65534);
    for (const [what, content, mode] of cases) {
      writeFileSync(record, JSON.stringify(content));
      chmodSync(record, mode);
      if (what !== "another user's socket") chownSync(socket, 0, 0);
      const r = await remux(['client', 'run', 'local', '--', program], { env: h.env, via: 'node' });
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      assert.equal(r.stderr, '', what);
      assert.equal(connections, 0, `${what}: nothing connected to ${socket}`);
    }
    // The same record as it should be is followed: the listener is connected to (and answers nothing: run here).
    chmodSync(record, 0o600);
    writeFileSync(record, JSON.stringify(valid));
    const followed = await remux(['client', 'run', 'local', '--', program], { env: h.env, via: 'node' });
    assert.equal(connections, 1, followed.stdout + followed.stderr);
  } finally {
    listener.close();
    sleeper.kill();
    await gone;
    h.remove();
  }
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether PID has SIGTERM pending (a stopped process keeps it until it runs again): /proc's ShdPnd mask. */
function termPending(pid: number): boolean {
  const mask = /^ShdPnd:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '0';
  return (BigInt(`0x${mask}`) & (1n << 14n)) !== 0n;
}

test('a daemon that answers on no socket (stopped with SIGSTOP: hung) is said so by status (exit 4), and stop ends it: SIGTERM handled once it runs, else SIGKILL', { timeout: 120_000 }, async () => {
  const h = home();
  const socket = join(h.home, 'run', 'remux.sock');
  try {
    // Before, status and stop waited forever for its answer, and start (refused: it holds the home) named
    // a stop that found nothing to stop.
    assert.equal((await remux(['daemon', 'start'], { env: h.env })).code, 0);
    const pid = (await statusPid(h.env)) as number;
    process.kill(pid, 'SIGSTOP');
    const status = await remux(['daemon', 'status'], { env: h.env });
    assert.equal(status.code, 4, status.stdout + status.stderr);
    const words = `the daemon of ${h.home} \\(pid ${pid}, started [^)]+\\) answers on no socket \\(it serves ${socket}\\): starting, or hung; see ${join(h.home, 'run', 'daemon.log')}; \`remux daemon stop\` ends it`;
    assert.match(status.stdout, new RegExp(`^not answering: ${words}\\n$`));
    const json = await remux(['daemon', 'status', '--json'], { env: h.env });
    assert.equal(json.code, 4);
    assert.deepEqual((JSON.parse(json.stdout) as { silent: { pid: number; socket: string } }).silent.pid, pid);
    const refused = await remux(['daemon', 'start'], { env: h.env });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stdout + refused.stderr, new RegExp(`pid ${pid}.*stop it with: remux daemon stop`));

    // It runs again once SIGTERM is pending: it stops as on `daemon stop`.
    const stopping = remux(['daemon', 'stop'], { env: h.env });
    await until('SIGTERM sent', () => termPending(pid) || undefined, 60_000);
    process.kill(pid, 'SIGCONT');
    const stopped = await stopping;
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stdout, `the daemon (pid ${pid}) answers on no socket (${socket}): sending it SIGTERM\nstopped (pid ${pid})\n`);
    assert.deepEqual(daemonsOf(h.home), []);

    // One that stays stopped is killed.
    assert.equal((await remux(['daemon', 'start'], { env: h.env })).code, 0);
    const again = (await statusPid(h.env)) as number;
    process.kill(again, 'SIGSTOP');
    const killed = await remux(['daemon', 'stop'], { env: h.env });
    assert.equal(killed.code, 0, killed.stderr);
    assert.match(killed.stdout, new RegExp(`sending it SIGTERM\\nkilled \\(pid ${again}, SIGKILL\\): it had not ended 5 s after SIGTERM; it handed nothing over, as after a crash\\n$`));
    await until('the killed daemon reaped', () => daemonsOf(h.home).length === 0 || undefined);
    const started = await remux(['daemon', 'start'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
    assert.equal((await remux(['daemon', 'stop'], { env: h.env })).code, 0);
  } finally {
    cleanUp(h);
  }
});
