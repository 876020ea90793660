// The caller's stdin for a command on an SSH host (ssh-input.ts), against real sshd hosts (test/fleet):
// byte-exact at several MiB (unsandboxed, in a bwrap per command and in a long-lived sandbox), EOF
// delivered and not a kill, a command that never reads taking no more than the windows, the kill switch
// on its second channel still killing the process group on timeout, abort, a command ignoring TERM and a
// lost connection, a kill switch that cannot start running nothing and reading nothing, the wrapper's
// gate and the watcher in dash and bash, and `remux client run h1 -- cat` in process and through the daemon.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { renderCommandList } from '../../src/command/render.js';
import type { ExecResult, SandboxSpec } from '../../src/exec/types.js';
import { captureScript, connectSsh, runCommand, SshError, wrapScript, type SshConnection } from '../../src/hosts/ssh.js';
import { HolderSet } from '../../src/hosts/holder.js';
import { ConnectionPool } from '../../src/hosts/pool.js';
import { parseHolderProbe, probeScript } from '../../src/hosts/remote-sandbox.js';
import { killSwitchScript } from '../../src/hosts/ssh-input.js';
import type { HostExecRequest } from '../../src/hosts/types.js';
import { remux, remuxFed, tempHome } from '../support/cli.js';
import { until } from '../support/until.js';
import { type Fleet, type FleetHost, goneFrom, inventoryEntry, startFleet, waitRunning } from '../fleet/fleet.js';
import { endless } from '../support/backpressure.js';
import { rawCommand } from '../policy/fixture.js';
import { killHolders } from '../support/holders.js';

const SECURE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const GRACE_MS = 500;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const MiB = 1 << 20;

let fleet: Fleet;
let h1: FleetHost;
let h2: FleetHost;
const open: SshConnection[] = [];

before(async () => {
  fleet = await startFleet({ count: 2 });
  [h1, h2] = fleet.hosts as [FleetHost, FleetHost];
});

after(async () => {
  await Promise.all(open.map((c) => c.close()));
  await fleet.stop();
});

async function connect(h: FleetHost): Promise<SshConnection> {
  const conn = await connectSsh({ name: h.name, address: h.address, port: h.port, user: h.user, auth: { method: 'identity', file: h.identityFile } }, { knownHostsFile: fleet.knownHostsFile, readyTimeoutMs: 5000 });
  open.push(conn);
  return conn;
}

const list = rawCommand;

interface Ran {
  result: ExecResult;
  stdout: Buffer;
  stderr: string;
}

type Execute = (req: HostExecRequest) => Promise<ExecResult>;

async function run(execute: Execute, argv: string[], stdin: NodeJS.ReadableStream | null, req: Partial<HostExecRequest> = {}): Promise<Ran> {
  const out: Buffer[] = [];
  let stderr = '';
  const result = await execute({
    list: list(argv),
    cwd: '/',
    timeoutMs: null,
    pipefail: false,
    output: { maxBytes: null, redact: [], redactBlocks: [] },
    sandbox: null,
    stdin,
    onStdout: (c) => out.push(c),
    onStderr: (c) => (stderr += c.toString()),
    ...req,
  });
  return { result, stdout: Buffer.concat(out), stderr };
}


describe('stdin to a command on an SSH host', () => {
  let conn: SshConnection;
  let direct: Execute;
  before(async () => {
    conn = await connect(h1);
    direct = (req) => runCommand(conn, req, { securePath: SECURE_PATH, killGraceMs: GRACE_MS });
  });

  test('echo hi | cat prints hi; without stdin the command reads nothing, as before', async () => {
    const r = await run(direct, ['cat'], Readable.from([Buffer.from('hi\n')]));
    assert.deepEqual({ code: r.result.exitCode, out: r.stdout.toString(), err: r.stderr }, { code: 0, out: 'hi\n', err: '' });
    const none = await run(direct, ['cat'], null);
    assert.deepEqual({ code: none.result.exitCode, out: none.stdout.toString() }, { code: 0, out: '' });
    assert.equal(conn.channels, 0, 'both channels are gone when the command returns');
  });

  test('8 MiB through cat come back byte for byte (printed: MiB/s)', async (t) => {
    const input = randomBytes(8 * MiB);
    const started = performance.now();
    const r = await run(direct, ['cat'], Readable.from([input.subarray(0, 3 * MiB), input.subarray(3 * MiB)]));
    const seconds = (performance.now() - started) / 1000;
    assert.equal(r.result.exitCode, 0, r.stderr);
    assert.equal(r.stdout.length, input.length);
    assert.equal(sha(r.stdout), sha(input));
    t.diagnostic(`stdin to an SSH host and back through cat: ${(input.length / MiB / seconds).toFixed(1)} MiB/s each way (8 MiB in ${seconds.toFixed(2)} s)`);
  });

  test('EOF of stdin is the command\'s EOF, not a kill: wc -c counts every byte and the command goes on', async () => {
    const input = randomBytes(3 * MiB + 7);
    const r = await run(direct, ['sh', '-c', 'wc -c; sleep 0.3; echo after-eof'], Readable.from([input]));
    assert.equal(r.result.exitCode, 0, r.stderr);
    assert.equal(r.stdout.toString().replace(/^\s+/, ''), `${input.length}\nafter-eof\n`);
    const empty = await run(direct, ['wc', '-c'], Readable.from([]));
    assert.equal(empty.stdout.toString().trim(), '0');
  });

  test('a command that never reads: it finishes, and no more than the windows are taken from the caller', async () => {
    const src = endless();
    const started = Date.now();
    const r = await run(direct, ['sleep', '1.5'], src.stream);
    assert.equal(r.result.exitCode, 0, r.stderr);
    assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
    // Our credit (256 KiB), the server's SSH window (2 MiB), the pipe and a chunk of the source's.
    assert.ok(src.taken() <= 3 * MiB, `took ${src.taken()} bytes from the caller`);
    const taken = src.taken();
    await sleep(300);
    assert.equal(src.taken(), taken, 'nothing is read once the command ended');
    const quick = endless();
    const t = await run(direct, ['true'], quick.stream);
    assert.equal(t.result.exitCode, 0);
    src.stream.destroy();
    quick.stream.destroy();
  });

  test('head takes what it wants from an endless stdin; the rest is not needed', async () => {
    const src = endless();
    const r = await run(direct, ['head', '-c', '5'], src.stream, { timeoutMs: 10_000 });
    assert.deepEqual({ code: r.result.exitCode, out: r.stdout.toString() }, { code: 0, out: 'aaaaa' });
    src.stream.destroy();
  });

  test('timeout: 124, the remote process group is gone, and stdin is no longer read', async () => {
    const src = endless();
    const started = Date.now();
    const r = await run(direct, ['sh', '-c', 'sleep 51.1 & cat >/dev/null'], src.stream, { timeoutMs: 500 });
    assert.equal(r.result.exitCode, 124);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    assert.ok(await goneFrom(h1, '^sleep 51.1$', 1000), 'sleep 51.1 was killed');
    assert.ok(src.taken() > 0, 'input flowed before the timeout');
    const taken = src.taken();
    await sleep(300);
    assert.equal(src.taken(), taken, 'nothing is read once the command was stopped');
    src.stream.destroy();
  });

  test('abort: 130, and a group that ignores TERM is killed after the grace', async () => {
    const controller = new AbortController();
    const stdin = new PassThrough();
    const pending = run(direct, ['sh', '-c', "trap '' TERM; sleep 52.1 & sleep 52.2; echo survived"], stdin, { signal: controller.signal });
    await waitRunning(h1, '^sleep 52.2$');
    controller.abort();
    const r = await pending;
    assert.equal(r.result.exitCode, 130);
    assert.ok(await goneFrom(h1, '^sleep 52\\.[12]$', GRACE_MS + 1500), 'the whole group was killed');
    assert.equal(r.stdout.toString(), '');
  });

  test('an output cap stops the command: the kill switch fires', async () => {
    const r = await run(direct, ['sh', '-c', 'cat; sleep 53.1'], Readable.from([Buffer.alloc(200_000, 0x62)]), { output: { maxBytes: 1000, redact: [], redactBlocks: [] } });
    assert.equal(r.result.truncated, true);
    assert.ok(await goneFrom(h1, '^sleep 53.1$', 1000), 'sleep 53.1 was killed');
  });

  test('a lost connection kills the command (remux closes it, or sshd dies)', async () => {
    const doomed = await connect(h1);
    const lost = run((req) => runCommand(doomed, req, { securePath: SECURE_PATH, killGraceMs: GRACE_MS }), ['sleep', '54.1'], new PassThrough()).catch((err: unknown) => err);
    await waitRunning(h1, '^sleep 54.1$');
    await doomed.close();
    assert.ok((await lost) instanceof SshError);
    assert.ok(await goneFrom(h1, '^sleep 54.1$', 1500), 'sleep 54.1 was killed');

    const c2 = await connect(h2);
    const killed = run((req) => runCommand(c2, req, { securePath: SECURE_PATH, killGraceMs: GRACE_MS }), ['sleep', '54.2'], new PassThrough()).catch((err: unknown) => err);
    await waitRunning(h2, '^sleep 54.2$');
    h2.kill();
    assert.ok((await killed) instanceof SshError);
    assert.ok(await goneFrom(h2, '^sleep 54.2$', 1500), 'sleep 54.2 was killed');
    await h2.restart();
  });

  test('cost per command: without stdin, with an empty stdin (printed)', async (t) => {
    const N = 30;
    const p50 = async (stdin: () => NodeJS.ReadableStream | null): Promise<number> => {
      const times: number[] = [];
      for (let i = 0; i <= N; i++) {
        const started = performance.now();
        assert.equal((await run(direct, ['true'], stdin())).result.exitCode, 0);
        if (i > 0) times.push(performance.now() - started);
      }
      return times.sort((a, b) => a - b)[N >> 1] as number;
    };
    const without = await p50(() => null);
    const withStdin = await p50(() => Readable.from([]));
    t.diagnostic(`p50 of ${N}x true: without stdin ${without.toFixed(2)} ms, with stdin ${withStdin.toFixed(2)} ms (+${(withStdin - without).toFixed(2)} ms: the kill switch's channel and the gate)`);
  });

  test('a kill switch that cannot start (sshd MaxSessions full): nothing runs and nothing is read from stdin', async () => {
    const c = await connect(h1);
    const dir = mkdtempSync(join(fleet.dir, 'stdin-'));
    const stop = new AbortController();
    // Nine sessions held open: the command's channel is the tenth, its kill switch would be the eleventh.
    const holders = Array.from({ length: 9 }, () => c.exec('sleep 55.1', { onStdout: () => {}, onStderr: () => {}, stop: stop.signal }));
    await until('nine sessions', () => c.channels === 9);
    const src = endless();
    const marker = join(dir, 'ran');
    const err = await run((req) => runCommand(c, req, { securePath: SECURE_PATH, killGraceMs: GRACE_MS }), ['touch', marker], src.stream).catch((e: unknown) => e);
    stop.abort();
    await Promise.all(holders);
    assert.ok(err instanceof SshError, String(err));
    assert.equal(err.kind, 'channel', 'nothing ran: the pool may try again');
    assert.match(err.message, /^h1 \([^)]*\): cannot start the kill switch for a command: \(SSH\) Channel open failure/);
    assert.equal(existsSync(marker), false, 'the command did not run');
    assert.equal(src.taken(), 0, 'nothing was read from stdin');
    src.stream.destroy();
  });
});

describe('the pool counts both channels of a command with stdin', () => {
  test('with sshd\'s ten sessions nine taken, a command with stdin waits for a second slot instead of failing', async () => {
    const pool = new ConnectionPool({ knownHostsFile: fleet.knownHostsFile, maxChannels: 10, connectTimeoutMs: 5000, securePath: SECURE_PATH });
    try {
      const host = pool.host(inventoryEntry(h1));
      const execute: Execute = (req) => host.execute(req);
      const busy = Array.from({ length: 9 }, () => run(execute, ['sleep', '1'], null));
      await until('nine commands running', () => pool.status()[0]?.activeChannels === 9);
      const started = Date.now();
      const r = await run(execute, ['cat'], Readable.from([Buffer.from('hi\n')]));
      assert.deepEqual({ code: r.result.exitCode, out: r.stdout.toString(), err: r.stderr }, { code: 0, out: 'hi\n', err: '' });
      assert.ok(Date.now() - started > 300, 'it waited for the sleeps to end');
      for (const b of await Promise.all(busy)) assert.equal(b.result.exitCode, 0);
      assert.equal(pool.status()[0]?.activeChannels, 0);
    } finally {
      await pool.closeAll();
    }
  });
});

/** The connection's long-lived sandboxes, made as the pool makes them: after the probe. */
async function holderSet(conn: SshConnection): Promise<HolderSet> {
  const out = await captureScript(conn, probeScript(SECURE_PATH), { securePath: SECURE_PATH, timeoutMs: 10_000, maxBytes: 65536 });
  const { helper } = parseHolderProbe(out);
  assert.ok(helper, 'the host can have long-lived sandboxes');
  return new HolderSet(conn, helper);
}

for (const mode of ['bwrap', 'holder'] as const) describe(`stdin inside bubblewrap (${mode === 'bwrap' ? 'a bwrap per command' : 'a long-lived sandbox'})`, () => {
  let conn: SshConnection;
  let boxed: Execute;
  let spec: SandboxSpec;
  let holders: HolderSet | null = null;
  before(async () => {
    conn = await connect(h1);
    const box = mkdtempSync(join(fleet.dir, 'box-'));
    spec = { read: [box], write: [], hide: [], readOnly: [], network: false, owner: 'test' };
    const opts = { securePath: SECURE_PATH, killGraceMs: GRACE_MS };
    holders = mode === 'holder' ? await holderSet(conn) : null;
    boxed = (req) => (holders ? holders.run({ ...req, cwd: box, sandbox: spec }, opts) : runCommand(conn, { ...req, cwd: box, sandbox: spec }, opts));
  });

  test('6 MiB through cat byte for byte, wc -c exact, and a single program reads it too', async () => {
    const input = randomBytes(6 * MiB);
    const r = await run(boxed, ['sh', '-c', 'cat'], Readable.from([input]));
    assert.equal(r.result.exitCode, 0, r.stderr);
    assert.equal(sha(r.stdout), sha(input));
    const single = await run(boxed, ['cat'], Readable.from([input]));
    assert.equal(sha(single.stdout), sha(input), single.stderr);
    const wc = await run(boxed, ['wc', '-c'], Readable.from([input.subarray(0, 12345)]));
    assert.equal(wc.stdout.toString().trim(), '12345');
  });

  test('a long-lived sandbox killed under us: the retry in a new one gets all of stdin', { skip: mode !== 'holder' && 'long-lived sandboxes only' }, async () => {
    assert.ok(holders);
    await run(boxed, ['true'], null);
    await killHolders(holders);
    const input = randomBytes(MiB);
    const r = await run(boxed, ['cat'], Readable.from([input]));
    assert.equal(r.result.exitCode, 0, r.stderr);
    assert.equal(sha(r.stdout), sha(input));
  });

  test('bwrap failing to start: refused with its words, and nothing is read from stdin', { skip: mode !== 'bwrap' && 'a bwrap per command' }, async () => {
    const fake = mkdtempSync(join(fleet.dir, 'fakebin-'));
    writeFileSync(join(fake, 'bwrap'), '#!/bin/sh\necho "bwrap: setting up uid map: Permission denied" >&2\nexit 1\n', { mode: 0o755 });
    const src = endless();
    const req = { list: list(['cat']), cwd: spec.read[0]!, timeoutMs: null, pipefail: false, output: { maxBytes: null, redact: [], redactBlocks: [] }, sandbox: spec, stdin: src.stream, onStdout: () => {}, onStderr: () => {} };
    const r = await runCommand(conn, req, { securePath: `${fake}:${SECURE_PATH}`, killGraceMs: GRACE_MS });
    assert.equal(r.errorKind, 'sandbox_unavailable');
    assert.equal(r.error, 'bwrap could not start the sandbox on h1 (bwrap: setting up uid map: Permission denied); the command was not run');
    assert.equal(src.taken(), 0);
    src.stream.destroy();
  });

  test('timeout and abort kill everything inside', async () => {
    const timedOut = await run(boxed, ['sh', '-c', 'sleep 56.1 & cat >/dev/null'], new PassThrough(), { timeoutMs: 500 });
    assert.equal(timedOut.result.exitCode, 124);
    assert.ok(await goneFrom(h1, '^sleep 56.1$', 1000), 'sleep 56.1 was killed');
    const controller = new AbortController();
    const pending = run(boxed, ['sh', '-c', "trap '' TERM; sleep 56.2 & cat"], new PassThrough(), { signal: controller.signal });
    await waitRunning(h1, '^sleep 56.2$');
    controller.abort();
    assert.equal((await pending).result.exitCode, 130);
    assert.ok(await goneFrom(h1, '^sleep 56.2$', GRACE_MS + 1500), 'sleep 56.2 was killed');
  });
});

describe('the gate and the watcher in dash and bash', () => {
  for (const shell of ['dash', 'bash']) {
    test(`${shell}: the wrapper takes the go line and no more of stdin`, async () => {
      const wrapped = (argv: string[]): string => wrapScript(renderCommandList(list(argv)), { securePath: SECURE_PATH, cwd: null, pipefail: false, marker: 'm:', killGraceMs: GRACE_MS, stdin: true });
      // A session of its own, as under sshd: the wrapper signals its whole group when it ends.
      const child = spawn(shell, ['-c', wrapped(['cat'])], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      const input = randomBytes(100_000);
      child.stdin.end(Buffer.concat([Buffer.from('go\n'), input]));
      const code = await new Promise((resolve) => child.on('close', resolve));
      assert.equal(code, 0, err);
      assert.equal(err, `m:pg ${child.pid}\nm:run\n`);
      assert.equal(sha(Buffer.concat(out)), sha(input));
      // EOF before `go`: the list never runs.
      const marker = join(mkdtempSync(join(fleet.dir, 'gate-')), 'ran');
      const refused = spawn(shell, ['-c', wrapped(['touch', marker])], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
      refused.stdin.end();
      assert.equal(await new Promise((resolve) => refused.on('close', resolve)), 125);
      assert.equal(existsSync(marker), false);
    });

    test(`${shell}: the watcher kills the group on EOF, and goes quietly on done`, async () => {
      const victim = spawn('setsid', ['sleep', '57'], { stdio: 'ignore' });
      const pgid = victim.pid!;
      const watch = async (last: string | null): Promise<string> => {
        const w = spawn(shell, ['-c', killSwitchScript(GRACE_MS)], { stdio: ['pipe', 'pipe', 'inherit'] });
        let said = '';
        w.stdout.on('data', (c: Buffer) => (said += c.toString()));
        w.stdin.write(`${pgid}\n`);
        await until('the watcher armed', () => said === 'armed\n');
        w.stdin.end(last ?? undefined);
        await new Promise((resolve) => w.on('close', resolve));
        return said;
      };
      await watch('done\n');
      assert.equal(victim.exitCode ?? victim.signalCode, null, 'done leaves the group alone');
      // Anything but a group id (the broadcast -1, 0, text) arms nothing: the watcher just goes.
      for (const bad of ['1', '0', '-1', '01', 'x', '']) {
        const w = spawn(shell, ['-c', killSwitchScript(GRACE_MS)], { stdio: ['pipe', 'pipe', 'inherit'] });
        let said = '';
        w.stdout.on('data', (c: Buffer) => (said += c.toString()));
        w.stdin.end(`${bad}\n`);
        assert.equal(await new Promise((resolve) => w.on('close', resolve)), 0);
        assert.equal(said, '', `${JSON.stringify(bad)} armed the watcher`);
      }
      await watch(null);
      await new Promise((resolve) => (victim.exitCode !== null || victim.signalCode !== null ? resolve(null) : victim.on('exit', resolve)));
      assert.equal(victim.signalCode, 'SIGTERM');
    });
  }
});

describe('remux client run h1 -- cat: in process and through the daemon', { timeout: 120_000 }, () => {
  const h = tempHome();
  const env = (): Record<string, string> => ({ ...h.env, REMUX_KNOWN_HOSTS: fleet.knownHostsFile });
  before(async () => {
    mkdirSync(h.home, { recursive: true });
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: ops\n');
    writeFileSync(join(h.home, 'policies.yaml'), `policies:
  ops:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: cat|wc|sleep|true }
      - { operation: write_stdout, resource: null }
`);
    const r = await remux(['hosts', 'add', h1.name, `${h1.user}@${h1.address}`, '--port', String(h1.port), '--identity', h1.identityFile], { env: env() });
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: env() });
    h.remove();
  });

  /** `remux client run h1 -- ARGV` with `input` piped to it; stdout as bytes. */
  const client = (argv: string[], input: Buffer | Readable): ReturnType<typeof remuxFed> => remuxFed(['client', 'run', 'h1', '--', ...argv], input, { env: env() });

  const both = async (t: { diagnostic(s: string): void }, where: string): Promise<void> => {
    const hi = await client(['cat'], Buffer.from('hi\n'));
    assert.deepEqual({ code: hi.code, out: hi.stdout.toString() }, { code: 0, out: 'hi\n' }, hi.stderr);
    const input = randomBytes(16 * MiB);
    const big = await client(['cat'], input);
    assert.equal(big.code, 0, big.stderr);
    assert.equal(sha(big.stdout), sha(input));
    t.diagnostic(`${where}: 16 MiB through cat on h1 and back in ${big.seconds.toFixed(2)} s: ${(input.length / MiB / big.seconds).toFixed(1)} MiB/s each way`);
    const wc = await client(['wc', '-c'], input.subarray(0, 1_000_001));
    assert.equal(wc.stdout.toString().trim(), '1000001', wc.stderr);
    // A command that never reads, with a caller that never stops writing: it finishes.
    const src = endless();
    const idle = await client(['sleep', '1'], src.stream);
    assert.equal(idle.code, 0, idle.stderr);
    src.stream.destroy();
  };

  test('in process (no daemon)', async (t) => {
    await both(t, 'in process');
  });

  test('through the daemon', async (t) => {
    const start = await remux(['daemon', 'start'], { env: env() });
    assert.equal(start.code, 0, start.stderr);
    await both(t, 'through the daemon');
  });
});
