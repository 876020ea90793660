// A command's standard input through the relay (protocol 2): the gateway's real route and perform(), a
// real agent, real commands. Byte-exact at several MiB, EOF delivered, the agent's credit holding the
// caller's input back while the command does not read, a cancelled call stopping the stream, an agent of
// protocol 1 refused clearly, gateways of protocols 1 and 2 spoken to in theirs, a peer that sends past
// its credit cut off, and a terminal stopped when a gateway does not hold its input back.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';
import { runAgent } from '../../src/agent/run.js';
import { AgentSession } from '../../src/agent/serve.js';
import { createContext } from '../../src/core/context.js';
import { CreditedInput, CreditedSender, INPUT_CHUNK_BYTES, INPUT_WINDOW_BYTES } from '../../src/exec/input-credit.js';
import { AGENT_PATH, FILE_CHUNK_BYTES, HelloSchema, parseFrame, PROTOCOL_VERSION, TERMINAL_INPUT_MAX_BYTES, type AgentFrame } from '../../src/gateway/relay/protocol.js';
import { attachArgv } from '../../src/sessions/tmux.js';
import { POLICY, PROGRAMS, startRelay, type Relay } from './harness.js';
import { endless } from '../support/backpressure.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');


describe('relay: standard input', () => {
  let relay: Relay;
  before(async () => {
    relay = await startRelay();
    relay.startAgent('laptop');
    await relay.waitConnected('laptop');
  });
  after(() => relay.close());

  test('8 MiB through cat on the agent come back byte for byte, and cat sees EOF', async () => {
    const input = randomBytes(8 << 20);
    const out: Buffer[] = [];
    const started = performance.now();
    const r = await relay.run('laptop', 'cat', { stdin: Readable.from([input.subarray(0, 3 << 20), input.subarray(3 << 20)]), onStdout: (c) => out.push(Buffer.from(c)) });
    const seconds = (performance.now() - started) / 1000;
    assert.equal(r.exitCode, 0, r.stderr);
    const got = Buffer.concat(out);
    assert.equal(got.length, input.length);
    assert.equal(sha(got), sha(input));
    console.log(`# stdin through the relay and back: ${((2 * input.length) / (1 << 20) / seconds).toFixed(1)} MiB/s (8 MiB each way in ${seconds.toFixed(2)} s)`);
  });

  test('empty input: cat ends at once; head takes what it wants and the rest is not needed', async () => {
    const empty = await relay.run('laptop', 'cat', { stdin: Readable.from([]) });
    assert.equal(empty.exitCode, 0, empty.stderr);
    assert.equal(empty.stdout, '');
    const src = endless();
    const head = await relay.run('laptop', 'head -c 5', { stdin: src.stream, timeoutMs: 10_000 });
    assert.equal(head.exitCode, 0, head.stderr);
    assert.equal(head.stdout, 'aaaaa');
    src.stream.destroy();
  });

  test('a command that does not read holds the input back: no more than a window is taken from the caller', async () => {
    const src = endless();
    const r = await relay.run('laptop', 'sleep 1.5', { stdin: src.stream });
    assert.equal(r.exitCode, 0, r.stderr);
    // The agent granted one window; the gateway's sender holds at most one chunk of the source besides.
    assert.ok(src.taken() <= INPUT_WINDOW_BYTES + 4 * INPUT_CHUNK_BYTES, `took ${src.taken()} bytes from the caller`);
    const after = src.taken();
    await sleep(300);
    assert.equal(src.taken(), after, 'nothing is read once the command ended');
    src.stream.destroy();
  });

  test('a cancelled call stops the command and the stream', async () => {
    const src = endless();
    const abort = new AbortController();
    let seen = 0;
    setTimeout(() => abort.abort(), 500);
    const started = Date.now();
    const r = await relay.run('laptop', 'cat', { stdin: src.stream, signal: abort.signal, onStdout: (c) => (seen += c.length) });
    assert.equal(r.exitCode, 130);
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    assert.ok(seen > 0, 'input flowed before the cancel');
    const stopped = src.taken();
    await sleep(300);
    assert.equal(src.taken(), stopped, 'the caller\'s input is no longer read');
    assert.equal(relay.ctx.registry.agents.get('laptop')!.inFlight, 0);
    src.stream.destroy();
  });

  test('an agent of relay protocol 1 gets no input: refused with why, not run with none', async () => {
    const old = await startRelay();
    try {
      const ws = new WebSocket(`${old.url}${AGENT_PATH}`, { headers: { authorization: `Bearer ${old.tokens.laptop}` } });
      const frames: string[] = [];
      ws.on('message', (d) => frames.push(String(d)));
      await new Promise((resolve) => ws.once('open', resolve));
      ws.send(JSON.stringify({ type: 'hello', v: 1, name: 'laptop', user: 'x', home: '/', securePath: '/usr/bin:/bin', sandbox: { available: false, detail: 't', staticFallback: false }, version: 'old' }));
      await old.waitConnected('laptop');
      const r = await old.run('laptop', 'cat', { stdin: Readable.from([Buffer.from('hi')]) });
      assert.equal(r.exitCode, 125);
      assert.match(r.stderr + (r.message ?? ''), /older remux \(relay protocol 1\) that cannot take standard input/);
      assert.ok(!frames.some((f) => f.includes('"type":"exec","command":"cat')), 'cat was never sent to it');
      ws.close();
    } finally {
      await old.close();
    }
  });
});

/**
 * A real agent (runAgent) dialling `server` with a home of its own (the test policy in it); `end()` stops
 * it, closes the server and removes the home.
 */
async function agentDialling(server: WebSocketServer, home: string): Promise<{ log: string[]; end(): Promise<void> }> {
  await new Promise((resolve) => server.once('listening', resolve));
  writeFileSync(join(home, 'policies.yaml'), POLICY(PROGRAMS));
  const ctx = createContext({ env: { REMUX_HOME: home } });
  const stop = new AbortController();
  const log: string[] = [];
  const done = runAgent({ gateway: `ws://127.0.0.1:${(server.address() as { port: number }).port}`, name: 'laptop', token: 'rmx_x', ctx, version: 't', log: (l) => log.push(l), signal: stop.signal, backoff: { baseMs: 50, capMs: 100 } });
  return {
    log,
    async end() {
      stop.abort();
      await done;
      await ctx.close();
      server.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** The versions an agent offers, newest first, until a gateway of `oldest` takes its hello. */
const offered = (oldest: number): number[] => Array.from({ length: PROTOCOL_VERSION - oldest + 1 }, (_, i) => PROTOCOL_VERSION - i);

describe('relay protocol versions', () => {
  test('an agent meeting a gateway of protocol 1 (which refuses its hello for v alone) speaks protocol 1 to it, and serves it', async () => {
    // The gateway of protocol 1 as it was: `v` a literal 1, a refused hello closed with its first issue.
    const OldHello = HelloSchema.extend({ v: z.literal(1) });
    const home = mkdtempSync(join(tmpdir(), 'remux-old-gw-'));
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1', path: AGENT_PATH });
    const hellos: number[] = [];
    const results: unknown[] = [];
    server.on('connection', (ws) => {
      ws.once('message', (data) => {
        const parsed = parseFrame(OldHello, data as Buffer);
        hellos.push((JSON.parse(String(data)) as { v: number }).v);
        if (!parsed.ok) return ws.close(4002, `expected hello: ${parsed.error}`.slice(0, 120));
        ws.send(JSON.stringify({ type: 'registered', name: 'laptop', pingIntervalMs: 1000 }));
        ws.send(JSON.stringify({ type: 'exec', id: 1, command: "'echo' old", cwd: '/', timeoutMs: 5000, pipefail: false, sandbox: null, policy: null, own: false }));
        // A write the agent's policy refuses: protocol 1's file-error has no `denied`.
        ws.send(JSON.stringify({ type: 'file-write', id: 2, path: join(home, 'never.txt'), content: 'eA==', createDirs: false }));
        ws.on('message', (m) => results.push(JSON.parse(String(m))));
      });
    });
    const { log, end } = await agentDialling(server, home);
    try {
      const has = (type: string): boolean => results.some((r) => (r as { type: string }).type === type);
      for (let i = 0; i < 100 && !(has('result') && has('file-error')); i++) await sleep(50);
      assert.deepEqual(hellos, offered(1), 'refused for each newer version, then accepted as 1');
      assert.ok(log.some((l) => /older relay protocol .*speaking protocol 1: commands there get no standard input/.test(l)), log.join('\n'));
      const out = results.find((r) => (r as { type: string }).type === 'out') as { data: string } | undefined;
      assert.equal(Buffer.from(out?.data ?? '', 'base64').toString(), 'old\n');
      // Every frame it sent parses as protocol 1 did (no field or type the old gateway does not know).
      assert.ok(results.every((r) => ['out', 'result', 'file-error'].includes((r as { type: string }).type)), JSON.stringify(results));
      const refused = results.find((r) => (r as { type: string }).type === 'file-error') as Record<string, unknown>;
      assert.deepEqual(Object.keys(refused).sort(), ['id', 'message', 'type']);
    } finally {
      await end();
    }
  });

  test('an agent meeting a gateway of protocol 2 speaks protocol 2 to it, not 1 (its commands keep their standard input)', async () => {
    // A gateway of protocol 2: `v` at most 2, a refused hello closed with its first issue.
    const OldHello = HelloSchema.extend({ v: z.number().int().min(1).max(2) });
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1', path: AGENT_PATH });
    const hellos: number[] = [];
    server.on('connection', (ws) => {
      ws.once('message', (data) => {
        hellos.push((JSON.parse(String(data)) as { v: number }).v);
        const parsed = parseFrame(OldHello, data as Buffer);
        if (!parsed.ok) return ws.close(4002, `expected hello: ${parsed.error}`.slice(0, 120));
        ws.send(JSON.stringify({ type: 'registered', name: 'laptop', pingIntervalMs: 1000 }));
      });
    });
    const { log, end } = await agentDialling(server, mkdtempSync(join(tmpdir(), 'remux-old-gw-')));
    try {
      for (let i = 0; i < 100 && hellos.length < offered(2).length; i++) await sleep(50);
      await sleep(200);
      assert.deepEqual(hellos, offered(2));
      assert.ok(log.some((l) => /older relay protocol .*speaking protocol 2: it does not hold back what is typed into a terminal here/.test(l)), log.join('\n'));
    } finally {
      await end();
    }
  });
});

describe('what an agent takes from a gateway', () => {
  const home = mkdtempSync(join(tmpdir(), 'remux-agent-session-'));
  writeFileSync(join(home, 'policies.yaml'), `${POLICY(PROGRAMS)}      - { operation: write_file, resource: "${home}/**" }\n`);
  const ctx = createContext({ env: { REMUX_HOME: home } });
  const frames: AgentFrame[] = [];
  const session = new AgentSession('laptop', ctx, (f) => frames.push(f));
  const of = (id: number): AgentFrame[] => frames.filter((f) => 'id' in f && f.id === id);
  const until = async (what: string, ok: () => boolean): Promise<void> => {
    for (let i = 0; i < 200 && !ok(); i++) await sleep(25);
    assert.ok(ok(), what);
  };
  after(async () => {
    session.cancelAll();
    await ctx.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('stdin past the credit the agent granted stops the command, with an error naming it', async () => {
    session.handle({ type: 'exec', id: 1, command: 'cat', cwd: '/', timeoutMs: 10_000, pipefail: false, sandbox: null, policy: null, own: false, stdin: true });
    await until('cat asks for input', () => of(1).some((f) => f.type === 'stdin-credit'));
    const granted = of(1).filter((f) => f.type === 'stdin-credit').reduce((n, f) => n + (f as { bytes: number }).bytes, 0);
    const chunk = Buffer.alloc(INPUT_CHUNK_BYTES).toString('base64');
    for (let sent = 0; sent <= granted + INPUT_CHUNK_BYTES; sent += INPUT_CHUNK_BYTES) session.handle({ type: 'stdin', id: 1, data: chunk });
    await until('an error for the overrun', () => of(1).some((f) => f.type === 'error'));
    assert.match((of(1).find((f) => f.type === 'error') as { message: string }).message, /standard input sent past its credit/);
    await until('the command is gone', () => session.active === 0);
  });

  test('a terminal whose session has not taken TERMINAL_INPUT_MAX_BYTES of input is stopped, with an error naming it (a gateway that does not hold back)', async () => {
    const socket = join(home, 'tmux.sock');
    execFileSync('tmux', ['-S', socket, 'new-session', '-d', '-s', 'deaf', 'sleep 600']);
    try {
      const me = userInfo().username;
      session.handle({ type: 'terminal', id: 5, argv: attachArgv({ loginUser: me, user: me, socket: { kind: 'path', path: socket } }, 'deaf', false), cols: 80, rows: 24 });
      await until('the terminal opens', () => of(5).some((f) => f.type === 'opened'));
      // Lines for a pane that reads none: the pty takes a few KiB, tmux a MiB a second, the rest waits here.
      const chunk = Buffer.from('x'.repeat(63).concat('\r').repeat(1 << 10)).toString('base64');
      for (let sent = 0; sent <= TERMINAL_INPUT_MAX_BYTES; sent += 64 << 10) session.handle({ type: 'input', id: 5, data: chunk });
      await until('an error for the input waiting', () => of(5).some((f) => f.type === 'error'));
      assert.match((of(5).find((f) => f.type === 'error') as { message: string }).message, /^agent laptop stopped the terminal: its session has not taken \d+ bytes of input \(at most 4194304 may wait\)$/);
      await until('the terminal is gone', () => of(5).some((f) => f.type === 'exit'));
      assert.ok(!of(5).some((f) => f.type === 'input-taken'), 'nothing reported to a gateway that did not ask');
    } finally {
      execFileSync('tmux', ['-S', socket, 'kill-server']);
    }
  });

  test('a write in parts: written whole once all are in; extra parts, and parts for no write, are dropped', async () => {
    const target = join(home, 'parts.bin');
    const a = Buffer.alloc(FILE_CHUNK_BYTES, 1);
    const b = Buffer.from('tail');
    session.handle({ type: 'file-write-part', id: 9, content: b.toString('base64') });
    session.handle({ type: 'file-write', id: 2, path: target, content: a.toString('base64'), createDirs: false, more: 1 });
    await sleep(50);
    assert.ok(!of(2).length, 'nothing is written before the last part');
    session.handle({ type: 'file-write-part', id: 2, content: b.toString('base64') });
    session.handle({ type: 'file-write-part', id: 2, content: b.toString('base64') });
    await until('the write is done', () => of(2).some((f) => f.type === 'file-done'));
    assert.ok(readFileSync(target).equals(Buffer.concat([a, b])));
    assert.equal(of(9).length, 0);
  });

  test('a write whose parts never come is cancelled with why, and writes nothing', async () => {
    const target = join(home, 'never.bin');
    session.handle({ type: 'file-write', id: 3, path: target, content: 'eA==', createDirs: false, more: 2 });
    session.handle({ type: 'cancel', id: 3 });
    await until('the write ends', () => of(3).some((f) => f.type === 'file-error'));
    assert.match((of(3)[0] as { message: string }).message, /cancelled before all of its content arrived/);
    assert.throws(() => readFileSync(target));
  });
});

describe('credit for standard input', () => {
  test('a sender never sends past its credit, and sends the end once everything went', async () => {
    const sent: number[] = [];
    let ended = 0;
    const sender = new CreditedSender(Readable.from([Buffer.alloc(100_000), Buffer.alloc(50_000)]), { data: (c) => sent.push(c.length), end: () => ended++ });
    await sleep(20);
    assert.deepEqual(sent, [], 'nothing without credit');
    sender.grant(30_000);
    await sleep(20);
    assert.equal(sent.reduce((a, b) => a + b, 0), 30_000);
    sender.grant(1 << 20);
    await sleep(20);
    assert.equal(sent.reduce((a, b) => a + b, 0), 150_000);
    assert.ok(sent.every((n) => n <= INPUT_CHUNK_BYTES));
    assert.equal(ended, 1);
  });

  test('a peer that sends past what was granted is cut off', async () => {
    const grants: number[] = [];
    const input = new CreditedInput((b) => grants.push(b));
    input.on('error', () => {});
    input.resume();
    await sleep(10);
    assert.deepEqual(grants, [INPUT_WINDOW_BYTES]);
    assert.equal(input.received(Buffer.alloc(1000)), null);
    assert.match(input.received(Buffer.alloc(INPUT_WINDOW_BYTES)) ?? '', /past its credit/);
    assert.equal(input.destroyed, true);
  });
});
