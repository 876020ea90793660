// Exec's stdin streamed while the command runs (the runtime protocol's input and credit messages, stage
// 2's rt.feed): the SDK's host.exec / host.stream with { input } as a string, bytes, an async iterable or
// a Readable, and `remux rpc HOST Exec.command|Exec.stream` with the caller's stdin (in process and through
// the daemon), on a fleet sshd host and on the local host, with and without the OS sandbox. Input is read
// as the command reads it, its end is the command's EOF, and the command's exit ends the call whatever is
// left of it: a stdin never closed does not hold remux.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { GatewayContext } from '../../src/core/context.js';
import { ArgumentTypeError, CallTimeoutError, connect, type RuntimeHost } from '../../src/runtime/index.js';
import { endless } from '../support/backpressure.js';
import { remux, remuxFed, type RunOptions } from '../support/cli.js';
import { goneFrom, waitRunning, type FleetHost } from '../fleet/fleet.js';
import { startFleetHome, type FleetHome } from '../support/runtime.js';

const MiB = 1 << 20;
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
/** 8 MiB of text (Exec.command's output is a string): random, so nothing repeats. */
const BIG = Buffer.from(randomBytes(6 * MiB).toString('base64').slice(0, 8 * MiB));

const POLICIES = `policies:
  direct:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: "cat|head|true|wc|sleep" }
      - { operation: write_stdout }
  boxed:
    capabilities:
      - { operation: execute_binary, resource: "cat|head|true|wc|sleep" }
      - { operation: write_stdout }
`;

/** Every way Exec runs: over SSH and locally, by the runtime itself (direct) and in the OS sandbox (boxed). */
const WAYS = ['h1', 'localhost'].flatMap((host) => ['direct', 'boxed'].map((policy) => ({ host, policy, name: `${host}, ${policy}` })));

describe('Exec input streamed as the command runs', { timeout: 300_000 }, () => {
  let f: FleetHome;
  let ctx: GatewayContext;
  const hosts = new Map<string, RuntimeHost>();
  const env = (): Record<string, string> => f.env();
  const h1 = (): FleetHost => f.fleet.hosts[0] as FleetHost;

  before(async () => {
    f = await startFleetHome({ policies: POLICIES, config: 'default_policy: direct\n' }, 1);
    ctx = await f.context();
    for (const w of WAYS) hosts.set(w.name, await connect(w.host, { context: ctx, policy: w.policy }));
  });
  after(async () => {
    for (const host of hosts.values()) await host.close();
    await f?.stop();
  });
  const on = (w: { name: string }): RuntimeHost => hosts.get(w.name) as RuntimeHost;

  test('SDK: a string, bytes, an async iterable or a Readable reaches cat, through exec() and stream()', async () => {
    for (const w of WAYS) {
      const host = on(w);
      assert.equal((await host.exec(['cat'], { input: 'a string\n' })).stdout, 'a string\n', w.name);
      assert.equal((await host.exec(['cat'], { input: new Uint8Array([104, 105, 10]) })).stdout, 'hi\n', w.name);
      async function* parts(): AsyncGenerator<Uint8Array> {
        yield Buffer.from('one\n');
        await sleep(50);
        yield new Uint8Array([116, 119, 111, 10]);
      }
      assert.deepEqual(await host.exec(['cat'], { input: parts() }), { code: 0, signal: null, truncated: false, stdout: 'one\ntwo\n', stderr: '' }, w.name);
      const chunks: string[] = [];
      const stream = host.stream(['wc', '-c'], { input: Readable.from([Buffer.from('12345'), Buffer.from('678')]) });
      for await (const c of stream) chunks.push(c.data.toString());
      assert.deepEqual([chunks.join('').trim(), (await stream.result).code], ['8', 0], w.name);
      // Every byte value, through cat and back.
      const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));
      const back: Buffer[] = [];
      const echoed = host.stream(['cat'], { input: bytes });
      for await (const c of echoed) back.push(c.data);
      assert.deepEqual([Buffer.concat(back).equals(bytes), (await echoed.result).code], [true, 0], w.name);
    }
    // Anything else is refused before anything runs, naming what it takes.
    await assert.rejects(on(WAYS[0] as { name: string }).exec(['cat'], { input: 42 as never }), (e: Error) => e instanceof ArgumentTypeError && /option input: expected a string, a Buffer \(Uint8Array\), an async iterable of them or a Readable, got number 42/.test(e.message));
  });

  test('SDK: 8 MiB through cat comes back whole; a command that never reads takes no more than a window of an endless input', async (t) => {
    for (const w of WAYS) {
      const started = performance.now();
      // In 64 KiB pieces, as a pipe gives them.
      const pieces = Array.from({ length: BIG.length / (64 << 10) }, (_, i) => BIG.subarray(i * (64 << 10), (i + 1) * (64 << 10)));
      const r = await on(w).exec(['cat'], { input: Readable.from(pieces) });
      assert.equal(r.code, 0, `${w.name}: ${r.stderr}`);
      assert.equal(sha(r.stdout), sha(BIG), `${w.name}: the output is the input`);
      t.diagnostic(`${w.name}: 8 MiB through cat in ${((performance.now() - started) / 1000).toFixed(2)} s`);
      // sleep never reads its stdin, which never ends. What is taken of it is the window the host may hold
      // unwritten and the pipes on the way (over SSH in the sandbox, also the SSH channel's window: 2 MiB
      // for OpenSSH), never the whole input.
      const src = endless();
      const idle = await on(w).exec(['sleep', '1'], { input: src.stream });
      assert.equal(idle.code, 0, w.name);
      const bound = w.policy === 'boxed' && w.host === 'h1' ? 4 * MiB : 1 * MiB;
      assert.ok(src.taken() < bound, `${w.name}: ${src.taken()} bytes were taken from an input the command did not read`);
      t.diagnostic(`${w.name}: sleep 1 took ${(src.taken() / 1024).toFixed(0)} KiB of an endless input`);
    }
  });

  test('SDK: the command ending ends the call, whatever is left of its input: head -c 5 of an endless one, a stdin never closed', async () => {
    for (const w of WAYS) {
      const src = endless();
      assert.deepEqual(await on(w).exec(['head', '-c', '5'], { input: src.stream }), { code: 0, signal: null, truncated: false, stdout: 'aaaaa', stderr: '' }, w.name);
      const open = new PassThrough();
      open.write('ab');
      const started = performance.now();
      assert.equal((await on(w).exec(['head', '-c', '2'], { input: open })).stdout, 'ab', w.name);
      assert.equal((await on(w).exec(['true'], { input: open })).code, 0, w.name);
      assert.ok(performance.now() - started < 10_000, `${w.name}: the calls waited for an input that never ends`);
      // Nothing more is read once the call is over.
      const taken = src.taken();
      await sleep(100);
      assert.equal(src.taken(), taken, w.name);
    }
  });

  test('SDK: a timeout or an abort mid-input stops the command; an input that fails fails the call', async () => {
    for (const [i, w] of WAYS.entries()) {
      // head waits for more input than ever comes: its unique count tells it apart on this machine.
      const timedOut = `head -c 7700${i}1`;
      const open = new PassThrough();
      open.write('partial');
      await assert.rejects(on(w).exec(timedOut.split(' '), { input: open }, { timeoutMs: 1000 }), CallTimeoutError, w.name);
      assert.ok(await goneFrom(h1(), `^${timedOut}$`, 5000), `${w.name}: ${timedOut} was stopped`);
      const aborted = `head -c 7700${i}2`;
      const controller = new AbortController();
      const call = on(w).exec(aborted.split(' '), { input: open }, { signal: controller.signal });
      await waitRunning(h1(), `^${aborted}$`);
      controller.abort();
      // The call ends (the sandboxed path answers with the status the stop left, as client run does).
      await call.catch(() => undefined);
      assert.ok(await goneFrom(h1(), `^${aborted}$`, 5000), `${w.name}: ${aborted} was stopped`);
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield Buffer.from('a');
        await sleep(200);
        throw new Error('the source broke');
      }
      await assert.rejects(on(w).exec(['cat'], { input: failing() }), /^Error: Exec cat: its input failed \(the source broke\); the command was stopped$/, w.name);
      // Its record says why it was stopped, in the OS sandbox too (not a bare interruption).
      const record = ctx.audit.list().findLast((a) => a.begin.command === 'cat');
      assert.equal(record?.end?.error, 'Exec cat: its input failed (the source broke); the command was stopped', w.name);
    }
  });

  /** `remux ARGS` with stdin from `input` (remuxFed). */
  const run = (args: string[], input: Buffer | Readable | 'open', via: RunOptions['via'] = 'launcher'): ReturnType<typeof remuxFed> => remuxFed(args, input, { env: env(), via });

  const cli = async (t: { diagnostic(s: string): void }, where: string, via: RunOptions['via'] = 'launcher'): Promise<void> => {
    for (const [i, w] of WAYS.entries()) {
      const rpc = (method: string, ...argv: string[]): string[] => ['rpc', w.host, '-p', w.policy, method, '--', ...argv];
      const what = `${where}, ${w.name}`;
      for (const method of ['Exec.command', 'Exec.stream']) {
        const hi = await run(rpc(method, 'cat'), Buffer.from('hi\n'), via);
        assert.deepEqual([hi.code, hi.stdout.toString()], [0, 'hi\n'], `${what}, ${method}: ${hi.stderr}`);
      }
      const big = await run(rpc('Exec.stream', 'cat'), BIG, via);
      assert.equal(big.code, 0, `${what}: ${big.stderr}`);
      assert.equal(sha(big.stdout), sha(BIG), `${what}: 8 MiB through cat`);
      t.diagnostic(`${what}: 8 MiB through remux rpc … cat in ${big.seconds.toFixed(2)} s`);
      // A stdin that stays open: the command's exit ends remux, which never waits for the input's end.
      const part = await run(rpc('Exec.command', 'head', '-c', '2'), 'open', via);
      assert.deepEqual([part.code, part.stdout.toString()], [0, 'ab'], `${what}: ${part.stderr}`);
      const done = await run(rpc('Exec.command', 'true'), 'open', via);
      assert.equal(done.code, 0, `${what}: ${done.stderr}`);
      assert.ok(part.seconds < 20 && done.seconds < 20, `${what}: ${part.seconds} s, ${done.seconds} s with a stdin never closed`);
      const src = endless();
      const head = await run(rpc('Exec.command', 'head', '-c', '5'), src.stream, via);
      assert.deepEqual([head.code, head.stdout.toString()], [0, 'aaaaa'], `${what}: ${head.stderr}`);
      src.stream.destroy();
      // Past --timeout while it waits for more input: 124, and the command is stopped.
      const waiting = `head -c 7800${i}1`;
      const late = await run(['rpc', w.host, '-p', w.policy, '--timeout', '1', 'Exec.command', '--', ...waiting.split(' ')], 'open', via);
      assert.equal(late.code, 124, `${what}: ${late.stderr}`);
      assert.ok(await goneFrom(h1(), `^${waiting}$`, 5000), `${what}: ${waiting} was stopped`);
    }
    // Several hosts: stdin is no one's, as with client run.
    const fan = await run(['rpc', 'h1,localhost', 'Exec.command', '--', 'wc', '-c'], Buffer.from('not for a fan-out\n'), via);
    assert.equal(fan.code, 0, fan.stderr);
    assert.deepEqual(fan.stdout.toString().split('\n').filter(Boolean).sort(), ['h1: 0', 'localhost: 0'], where);
  };

  test('remux rpc HOST Exec.command|Exec.stream: the caller\'s stdin streamed to the command, in process', async (t) => {
    await cli(t, 'in process');
  });

  test('remux rpc HOST Exec.command|Exec.stream: the caller\'s stdin streamed to the command, through the daemon', async (t) => {
    const start = await remux(['daemon', 'start'], { env: env() });
    assert.equal(start.code, 0, start.stderr);
    try {
      await cli(t, 'daemon, native launcher');
      await cli(t, 'daemon, node', 'node');
    } finally {
      await remux(['daemon', 'stop'], { env: env() });
    }
  });
});
