// The relay end to end in one process: the gateway's real route and perform(), real agents with their
// own policies and audit stores, real commands. Both policies must allow; results are pushed; timeouts,
// cancellation, 100 concurrent requests over one agent, a dead agent, duplicate names, protocol abuse.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { runAgent } from '../../src/agent/run.js';
import { createContext } from '../../src/core/context.js';
import { MAX_CLOSE_REASON_BYTES } from '../../src/gateway/close-reason.js';
import { PROTOCOL_VERSION, AGENT_PATH, CHUNK_BYTES, INPUT_TAKEN_STEP_BYTES, MAX_FRAME_BYTES } from '../../src/gateway/relay/protocol.js';
import { MAX_UNCREDITED_BYTES } from '../../src/gateway/relay/hub.js';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { AuditAction } from '../../src/audit/types.js';
import type { CommandList } from '../../src/command/types.js';
import { recorderArgv, screenCommands } from '../../src/sessions/session-recorder.js';
import { attachArgv, killCommand, listCommand, newSessionCommand, shellProgram, single, type TmuxTarget } from '../../src/sessions/tmux.js';
import { hashToken, newToken } from '../../src/config/principals.js';
import { perform } from '../../src/core/perform.js';
import { POLICY, PROGRAMS, startRelay, type Relay, type StartedAgent } from './harness.js';

/** Every action of an audit store, flattened to what the tests look at. */
const trail = (store: { list(o: object): AuditAction[] }): Array<{ principal: string; argv: string; decision: string; exitCode: number | null }> =>
  store.list({ level: 'info' }).map((a) => ({ principal: a.begin.principal, argv: (a.begin.argv ?? []).join(' '), decision: a.begin.decision, exitCode: a.end?.exitCode ?? null }));

const hello = (name: string): string =>
  JSON.stringify({ type: 'hello', v: PROTOCOL_VERSION, name, user: 'x', home: '/', securePath: '/usr/bin:/bin', sandbox: { available: false, detail: 'test', staticFallback: false }, version: 't' });

/** A raw agent: the upgrade with `headers`, then whatever the test sends. */
function rawAgent(relay: Relay, headers: Record<string, string>, path = AGENT_PATH): { ws: WebSocket; opened: Promise<number>; closed: Promise<{ code: number; reason: string }> } {
  const ws = new WebSocket(`${relay.url}${path}`, { headers });
  const opened = new Promise<number>((resolve) => {
    ws.once('open', () => resolve(101));
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => resolve(0));
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return { ws, opened, closed };
}

describe('relay: commands through an agent', () => {
  let relay: Relay;
  let agent: StartedAgent;
  before(async () => {
    relay = await startRelay({
      gatewayPolicy: POLICY(PROGRAMS),
      // The owner's policy on the agent does not allow seq, which the gateway's does.
      agentPolicy: POLICY(PROGRAMS.replace('|seq', '')),
    });
    agent = relay.startAgent('laptop');
    await relay.waitConnected('laptop');
  });
  after(() => relay.close());

  test('a command runs on the agent and its output and status come back', async () => {
    const r = await relay.run('laptop', 'echo hello relay; sleep not-a-number');
    assert.equal(r.exitCode, 1, r.message ?? r.stderr);
    assert.equal(r.stdout, 'hello relay\n');
    assert.match(r.stderr, /invalid time interval/);
    assert.equal((await relay.run('laptop', 'true')).exitCode, 0);
  });

  test('the agent\'s own policy is enforced too: the gateway allows seq, the agent refuses it (77) and audits it', async () => {
    const r = await relay.run('laptop', 'seq 3');
    assert.equal(r.exitCode, 77, r.stderr);
    assert.match(r.stderr, /^remux: agent laptop's own policy: execute_binary \S*seq: no rule of policy read_only allows it \(resolved from seq\)\n$/, 'which side refused, said once');
    assert.equal(r.stdout, '');
    assert.ok(trail(relay.ctx.audit).some((a) => a.argv === 'seq 3' && a.exitCode === 77), 'the gateway records the refusal as the result');
  });

  test('the gateway\'s policy is checked first: what it denies never reaches the agent', async () => {
    const r = await relay.run('laptop', 'rm -rf /tmp/never');
    assert.equal(r.exitCode, 77);
    assert.equal(r.outcome, 'denied');
    assert.match(r.message ?? '', /rm/);
  });

  test('the agent audits what it ran as agent:gateway-laptop', async () => {
    await relay.run('laptop', 'echo audited-here');
    const rows = trail(agent.ctx.audit);
    assert.ok(rows.some((a) => a.principal === 'agent:gateway-laptop' && a.argv === 'echo audited-here' && a.exitCode === 0), JSON.stringify(rows));
    assert.ok(rows.some((a) => a.principal === 'agent:gateway-laptop' && a.argv === 'seq 3' && a.decision === 'deny'), 'the refusal is in the agent\'s own trail');
  });

  test('a request timing out: the command is killed on the agent and the caller gets 124', async () => {
    const started = Date.now();
    const r = await relay.run('laptop', 'sleep 30', { timeoutMs: 500 });
    assert.equal(r.exitCode, 124, r.stderr);
    assert.equal(r.timedOut, true);
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    assert.equal(relay.ctx.registry.agents.get('laptop')!.inFlight, 0, 'nothing is left waiting');
  });

  test('a caller that goes away cancels the command on the agent', async () => {
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 300);
    const started = Date.now();
    const r = await relay.run('laptop', 'sleep 7', { signal: abort.signal });
    assert.equal(r.exitCode, 130);
    assert.ok(Date.now() - started < 2500, `cancel took ${Date.now() - started} ms`);
    await sleep(300);
    assert.ok(trail(agent.ctx.audit).some((a) => a.argv === 'sleep 7' && a.exitCode === 130), 'the agent interrupted the command itself and recorded it');
  });

  test('100 concurrent requests over one agent all come back, each with its own output', async () => {
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => relay.run('laptop', `echo req-${i}`)));
    results.forEach((r, i) => {
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, `req-${i}\n`);
    });
  });

  test('tmux through the agent: remux\'s own commands run, an attach terminal streams both ways, anything else is refused', async () => {
    const host = relay.ctx.registry.host('laptop');
    const target: TmuxTarget = { loginUser: userInfo().username, user: userInfo().username, socket: { kind: 'path', path: join(agent.home, 'tmux.sock') } };
    const own = async (list: CommandList): Promise<{ exitCode: number; out: string }> => {
      let out = '';
      const r = await host.execute({ list, cwd: '/', timeoutMs: 10_000, pipefail: false, output: { maxBytes: null, redact: [], redactBlocks: [] }, sandbox: null, onStdout: (c) => (out += c.toString()), onStderr: (c) => (out += c.toString()) });
      return { exitCode: r.exitCode, out };
    };
    assert.equal((await own(newSessionCommand(target, 'relayed', '/', null))).exitCode, 0);
    try {
      const listed = await own(listCommand(target));
      assert.match(listed.out, /:relayed\n/);
      const terminal = await host.openTerminal(attachArgv(target, 'relayed', false), { cols: 80, rows: 24 });
      let screen = '';
      terminal.onData((c) => (screen += c.toString()));
      terminal.write('echo through-the-relay\r');
      for (let i = 0; i < 100 && !screen.includes('through-the-relay'); i++) await sleep(50);
      assert.match(screen, /through-the-relay/);
      terminal.kill();
      await terminal.exited; // settles once the tmux client on the agent is gone
      // The recorder's control client opens and its screen question is answered; anything else typed into
      // it (tmux commands: a read-only control client still runs display-message, even run-shell) stops it.
      const control = await host.openTerminal(recorderArgv(target, 'relayed'), { cols: 80, rows: 24 });
      let controlOut = '';
      control.onData((c) => (controlOut += c.toString()));
      for (let i = 0; i < 100 && !/%session-changed/.test(controlOut); i++) await sleep(50);
      assert.match(controlOut, /%session-changed \$\d+ relayed/, 'the control client was attached');
      control.write(screenCommands('relayed'));
      const size = /^\d+x\d+:\d+:\d+\r?$/m;
      for (let i = 0; i < 100 && !size.test(controlOut); i++) await sleep(50);
      assert.match(controlOut, size, 'the screen question was answered');
      control.write('display-message -p typed-into-control\n');
      assert.equal(await Promise.race([control.exited.then(() => 'ended'), sleep(5000).then(() => 'running')]), 'ended', 'anything else stops it');
      assert.doesNotMatch(controlOut, /typed-into-control/);
      // Not an attach: refused by the agent, whatever the gateway asks.
      await assert.rejects(host.openTerminal(['sh'], { cols: 80, rows: 24 }), /agent laptop: the agent opens terminals only for remux's tmux attach/);
      const sneaky = await own(single(['tmux', '-S', target.socket!.kind === 'path' ? target.socket!.path : '', 'run-shell', 'id']));
      assert.equal(sneaky.exitCode, 77);
      assert.match(sneaky.out, /not one of remux's tmux commands/);
    } finally {
      await own(killCommand(target, 'relayed'));
    }
  });

  test('input an attach on the agent has not taken shows as waiting at the gateway, and goes as the agent\'s pty takes it', async () => {
    const host = relay.ctx.registry.host('laptop');
    const target: TmuxTarget = { loginUser: userInfo().username, user: userInfo().username, socket: { kind: 'path', path: join(agent.home, 'tmux.sock') } };
    const own = (list: CommandList): Promise<unknown> =>
      host.execute({ list, cwd: '/', timeoutMs: 10_000, pipefail: false, output: { maxBytes: null, redact: [], redactBlocks: [] }, sandbox: null, onStdout: () => {}, onStderr: () => {} });
    await own(newSessionCommand(target, 'deaf', '/', shellProgram("'sleep' 600")));
    try {
      const terminal = await host.openTerminal(attachArgv(target, 'deaf', false), { cols: 80, rows: 24 });
      terminal.onData(() => {});
      // tmux takes keys a MiB or two a second: this waits on the agent for a while.
      terminal.write('x'.repeat(4 << 20));
      assert.ok(terminal.pendingInput() > 2 << 20, `${terminal.pendingInput()} bytes waiting`);
      // As long as it goes down: how fast tmux takes keys depends on what else the machine runs (CI had
      // 2.7 MiB left after 15 s while other test files ran).
      let least = Infinity;
      for (let progressAt = Date.now(); terminal.pendingInput() >= INPUT_TAKEN_STEP_BYTES && Date.now() - progressAt < 10_000; ) {
        await sleep(50);
        if (terminal.pendingInput() < least) [least, progressAt] = [terminal.pendingInput(), Date.now()];
      }
      // Reported in steps: less than one step may still show as waiting once all is taken.
      assert.ok(least < INPUT_TAKEN_STEP_BYTES, `still ${terminal.pendingInput()} bytes waiting`);
      terminal.kill();
      await terminal.exited;
    } finally {
      await own(killCommand(target, 'deaf'));
    }
  });

  test('output past the gateway policy\'s cap is cut there and the command is stopped', async () => {
    const capped = await startRelay({ gatewayPolicy: POLICY(PROGRAMS, '{ max_bytes: 1000 }') });
    try {
      capped.startAgent('laptop');
      await capped.waitConnected('laptop');
      const started = Date.now();
      const r = await capped.run('laptop', 'yes');
      assert.equal(r.truncated, true);
      assert.equal(r.stdout.length, 1000);
      assert.ok(Date.now() - started < 5000);
    } finally {
      await capped.close();
    }
  });
});

describe('relay: connections', () => {
  test('an agent killed mid-command: the caller gets a clean transport error at once, and the host is down', async () => {
    const relay = await startRelay();
    try {
      const agent = relay.startAgent('laptop');
      await relay.waitConnected('laptop');
      const running = relay.run('laptop', 'sleep 30');
      await sleep(300);
      const started = Date.now();
      await agent.stop(); // closes its connection, as a killed process's socket closes
      const r = await running;
      assert.equal(r.exitCode, 255);
      assert.equal(r.outcome, 'unreachable');
      assert.match(r.message ?? '', /agent laptop disconnected .*may have run/);
      assert.ok(Date.now() - started < 2000);
      assert.equal(relay.ctx.registry.agents.status('laptop').connected, false);
      const next = await relay.run('laptop', 'true');
      assert.equal(next.exitCode, 255);
      assert.match(next.message ?? '', /agent laptop is not connected/);
    } finally {
      await relay.close();
    }
  });

  test('an agent that stops answering pings is marked down within seconds, and its requests fail', async () => {
    const relay = await startRelay({ relay: '  ping_interval_seconds: 0.3\n  pong_timeout_seconds: 0.5\n' });
    try {
      const raw = rawAgent(relay, { authorization: `Bearer ${relay.tokens.laptop}` });
      assert.equal(await raw.opened, 101);
      raw.ws.send(hello('laptop'));
      await relay.waitConnected('laptop');
      const waiting = relay.run('laptop', 'true');
      // The agent's process hangs: its socket is no longer read, so no pong (ws answers pings itself otherwise).
      (raw.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const started = Date.now();
      const r = await waiting;
      assert.equal(r.exitCode, 255);
      assert.match(r.message ?? '', /no pong within 500 ms/);
      assert.ok(Date.now() - started < 3000, `down after ${Date.now() - started} ms`);
      assert.equal(relay.ctx.registry.agents.status('laptop').connected, false);
      raw.ws.terminate();
    } finally {
      await relay.close();
    }
  });

  test('an agent whose pong waits behind its own output is not marked down: any frame it sends answers the ping', async () => {
    const relay = await startRelay({ relay: '  ping_interval_seconds: 0.3\n  pong_timeout_seconds: 0.5\n' });
    try {
      // An agent that never pongs (as one whose pong sits behind a large transfer), but sends frames all along.
      const ws = new WebSocket(`${relay.url}${AGENT_PATH}`, { headers: { authorization: `Bearer ${relay.tokens.laptop}` }, autoPong: false });
      await new Promise((resolve) => ws.once('open', resolve));
      ws.send(hello('laptop'));
      await relay.waitConnected('laptop');
      const talking = setInterval(() => ws.send(JSON.stringify({ type: 'out', id: 999, stream: 'stdout', data: 'eA==' })), 100);
      await sleep(2000);
      clearInterval(talking);
      assert.equal(relay.ctx.registry.agents.status('laptop').connected, true, 'up while its frames flow, four pong deadlines later');
      const started = Date.now();
      while (relay.ctx.registry.agents.status('laptop').connected && Date.now() - started < 3000) await sleep(50);
      assert.equal(relay.ctx.registry.agents.status('laptop').connected, false, 'down once it is silent');
      ws.terminate();
    } finally {
      await relay.close();
    }
  });

  test('the gateway goes away: the agent reconnects with backoff and serves again', async () => {
    const relay = await startRelay();
    try {
      const agent = relay.startAgent('laptop');
      await relay.waitConnected('laptop');
      // Every connection is cut (as when the daemon restarts); the agent dials again.
      relay.ctx.registry.agents.get('laptop')!.close(4004, 'restart');
      await sleep(50);
      await relay.waitConnected('laptop', 5000);
      const r = await relay.run('laptop', 'echo back');
      assert.equal(r.stdout, 'back\n');
      assert.ok(agent.log.some((l) => /connecting again in \d+ ms/.test(l)), agent.log.join('\n'));
    } finally {
      await relay.close();
    }
  });

  test('two agents with the same name: the newer one takes the name, the older stops, the new one stays', async () => {
    const relay = await startRelay();
    try {
      const first = relay.startAgent('laptop');
      await relay.waitConnected('laptop');
      const firstConn = relay.ctx.registry.agents.get('laptop');
      const second = relay.startAgent('laptop');
      const end = await first.done;
      assert.equal(end.exitCode, 1);
      assert.match(end.message, /another agent took the name laptop/);
      await relay.waitConnected('laptop');
      assert.notEqual(relay.ctx.registry.agents.get('laptop'), firstConn);
      // The old connection's teardown has run by now: it must not have removed the new one.
      await sleep(300);
      assert.equal(relay.ctx.registry.agents.status('laptop').connected, true);
      const r = await relay.run('laptop', 'echo from-second');
      assert.equal(r.stdout, 'from-second\n');
      assert.ok(trail(second.ctx.audit).some((a) => a.argv === 'echo from-second'), 'it ran on the second agent');
    } finally {
      await relay.close();
    }
  });

  test("a rotated token, or a removed host, ends its agent's connection at once; the agent then stops (77)", async () => {
    const relay = await startRelay({ agents: ['laptop', 'desk'] });
    try {
      const laptop = relay.startAgent('laptop');
      const desk = relay.startAgent('desk');
      await relay.waitConnected('laptop');
      await relay.waitConnected('desk');
      const running = relay.run('laptop', 'sleep 30');
      await sleep(300);
      // As `remux agent token laptop --rotate` and `remux hosts remove desk` leave hosts.yaml.
      writeFileSync(relay.ctx.registry.inventory().file, `hosts:\n  laptop:\n    transport: agent\n    token_sha256: ${hashToken(newToken())}\n`);
      const r = await running;
      assert.equal(r.exitCode, 255);
      assert.match(r.message ?? '', /agent laptop disconnected \(the token of agent host laptop was rotated\)/);
      const status = relay.ctx.registry.agents.status('desk');
      assert.equal(status.connected, false);
      assert.match(status.lastError ?? '', /agent host desk is no longer in hosts\.yaml/);
      // Dialing again with the old token is refused: each agent ends, saying so.
      for (const end of await Promise.all([laptop.done, desk.done])) {
        assert.equal(end.exitCode, 77);
        assert.match(end.message, /HTTP 401: the token matches no agent host/);
      }
    } finally {
      await relay.close();
    }
  });
});

describe('relay: who may connect, and what they may send', () => {
  let relay: Relay;
  before(async () => {
    relay = await startRelay({ agents: ['laptop', 'desk'] });
  });
  after(() => relay.close());

  test('no token, a wrong token, or a token in the URL: 401 before the upgrade', async () => {
    assert.equal(await rawAgent(relay, {}).opened, 401);
    assert.equal(await rawAgent(relay, { authorization: 'Bearer rmx_wrong' }).opened, 401);
    assert.equal(await rawAgent(relay, {}, `${AGENT_PATH}?token=${relay.tokens.laptop}`).opened, 401);
  });

  test('a browser page (any Origin header) is refused even with a good token', async () => {
    assert.equal(await rawAgent(relay, { authorization: `Bearer ${relay.tokens.laptop}`, origin: 'https://evil.example' }).opened, 403);
  });

  test('a token registers only its own name', async () => {
    const raw = rawAgent(relay, { authorization: `Bearer ${relay.tokens.desk}` });
    assert.equal(await raw.opened, 101);
    raw.ws.send(hello('laptop'));
    const closed = await raw.closed;
    assert.equal(closed.code, 4002);
    assert.match(closed.reason, /token is for agent desk, not laptop/);
    assert.equal(relay.ctx.registry.agents.get('laptop'), undefined);
  });

  test("what an agent words itself reaches the gateway's callers and log with its escapes made visible: its login name, its answers, its close reason", async () => {
    // OSC 52 would write the clipboard of whoever reads the message, CSI clear their screen; a newline in a log line forges the next.
    const evil = '\x1b]52;c;ZWNobyBoaQ==\x07\x1b[2J\r\u009b31m\u202e';
    const shown = '\\x1b]52;c;ZWNobyBoaQ==\\x07\\x1b[2J\\x0d\\x9b31m<U+202E>';
    const raw = rawAgent(relay, { authorization: `Bearer ${relay.tokens.desk}` });
    assert.equal(await raw.opened, 101);
    raw.ws.send(JSON.stringify({ ...(JSON.parse(hello('desk')) as object), user: `x${evil}\nrelay: forged` }));
    await relay.waitConnected('desk');
    const user = `x${shown}\\x0arelay: forged`;
    assert.equal(relay.ctx.registry.agents.status('desk').user, user);
    assert.ok(relay.gatewayLog.includes(`relay: agent desk connected from 127.0.0.1 as ${user}`), relay.gatewayLog.join('\n'));
    raw.ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as { type: string; id: number; paths?: string[]; names?: string[] };
      const answer = (p: string): object => ({ path: p.startsWith('/') ? p : `/usr/bin/${p}` });
      if (f.type === 'resolve') raw.ws.send(JSON.stringify({ type: 'resolved', id: f.id, paths: f.paths!.map(answer), names: f.names!.map(answer) }));
      if (f.type === 'exec') raw.ws.send(JSON.stringify({ type: 'error', id: f.id, message: `refused${evil}\nline 2` }));
    });
    const failed = await relay.run('desk', 'true');
    assert.ok(failed.message?.includes(`agent desk: refused${shown}\nline 2`), failed.message ?? '');
    raw.ws.close(4000, `bye${evil}\nforged`);
    await raw.closed;
    for (let i = 0; i < 100 && relay.ctx.registry.agents.status('desk').connected; i++) await sleep(20);
    const gone = await relay.run('desk', 'true');
    assert.ok(gone.message?.includes(`connection closed (4000: bye${shown}\\x0aforged)`), gone.message ?? '');
    const said = [failed.message, gone.message, relay.ctx.registry.agents.status('desk').lastError, ...relay.gatewayLog].join('');
    assert.doesNotMatch(said, /[\x1b\r\x9b\u202e]/, 'no escape reaches a caller or the log');
  });

  test('a close reason longer than the protocol allows (123 bytes) is said whole in fewer words; the gateway serves on', async () => {
    // The longest host names there are (64 characters).
    const long = `a${'b'.repeat(63)}`;
    const other = `c${'d'.repeat(63)}`;
    const relay = await startRelay({ agents: [long, other] });
    const dial = async (): Promise<ReturnType<typeof rawAgent>> => {
      const raw = rawAgent(relay, { authorization: `Bearer ${relay.tokens[long]}` });
      assert.equal(await raw.opened, 101);
      return raw;
    };
    const fits = (reason: string): void => assert.ok(Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES, reason);
    try {
      // A registered agent sending an unknown frame type: the error lists every type (188 bytes), which
      // the WebSocket library refuses to send by throwing, out of the gateway's message handler.
      const unknown = await dial();
      unknown.ws.send(hello(long));
      await relay.waitConnected(long);
      unknown.ws.send(JSON.stringify({ type: 'bogus', id: 1 }));
      assert.deepEqual(await unknown.closed, { code: 4002, reason: 'bad frame at type (invalid_union)' });
      // A hello quoting a long key in UTF-8 is not cut mid-character.
      const key = await dial();
      key.ws.send(JSON.stringify({ ...(JSON.parse(hello(long)) as object), ['é'.repeat(80)]: 1 }));
      const keyClosed = await key.closed;
      assert.deepEqual(keyClosed, { code: 4002, reason: 'expected hello: bad frame at (top) (unrecognized_keys)' });
      // Two long names: the one the token is for comes whole (the agent's hint names it); the other it gave itself.
      const named = await dial();
      named.ws.send(hello(other));
      const namedClosed = await named.closed;
      assert.deepEqual(namedClosed, { code: 4002, reason: `this token is for agent ${long}, not the name this agent gave` });
      for (const reason of [keyClosed.reason, namedClosed.reason]) fits(reason);
      // Short reasons are as they were.
      const short = rawAgent(relay, { authorization: `Bearer ${relay.tokens[other]}` });
      assert.equal(await short.opened, 101);
      short.ws.send('not json');
      assert.deepEqual(await short.closed, { code: 4002, reason: 'expected hello: frame is not JSON' });
      const agent = relay.startAgent(long);
      await relay.waitConnected(long);
      assert.equal((await relay.run(long, 'echo still-serving')).stdout, 'still-serving\n');
      await agent.stop();
    } finally {
      await relay.close();
    }
  });

  test("the agent closes on a gateway's bad frame with a reason that fits whole", async () => {
    const home = mkdtempSync(join(tmpdir(), 'remux-relay-'));
    writeFileSync(join(home, 'policies.yaml'), POLICY(PROGRAMS));
    const ctx = createContext({ env: { REMUX_HOME: home } });
    // A gateway that registers the agent, then sends a frame with a key of 80 two-byte characters.
    const gateway = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => gateway.once('listening', resolve));
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      gateway.once('connection', (ws) => {
        ws.once('message', () => {
          ws.send(JSON.stringify({ type: 'registered', name: 'laptop', pingIntervalMs: 60_000 }));
          ws.send(JSON.stringify({ type: 'cancel', id: 1, ['é'.repeat(80)]: 1 }));
        });
        ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
      }),
    );
    const stop = new AbortController();
    const log: string[] = [];
    const done = runAgent({ gateway: `ws://127.0.0.1:${(gateway.address() as AddressInfo).port}`, name: 'laptop', token: 'rmx_test', ctx, version: 't', log: (l) => log.push(l), signal: stop.signal, backoff: { baseMs: 60_000, capMs: 60_000 } });
    try {
      assert.deepEqual(await closed, { code: 4002, reason: 'bad frame at (top) (unrecognized_keys)' });
      for (let i = 0; i < 100 && log.length < 2; i++) await sleep(20);
      assert.match(log.join('\n'), /the gateway sent a bad frame \(bad frame at \(top\): Unrecognized key: "é+"\); connecting again/);
    } finally {
      stop.abort();
      await done;
      gateway.close();
      await ctx.close();
      rmSync(home, { recursive: true, force: true });
    }
  });

  test('malformed, unknown and oversized frames close the connection', async () => {
    for (const bad of ['not json', JSON.stringify({ type: 'result', id: 1 }), JSON.stringify({ type: 'hello', v: 99 })]) {
      const raw = rawAgent(relay, { authorization: `Bearer ${relay.tokens.laptop}` });
      assert.equal(await raw.opened, 101);
      raw.ws.send(bad);
      assert.equal((await raw.closed).code, 4002, bad);
    }
    const raw = rawAgent(relay, { authorization: `Bearer ${relay.tokens.laptop}` });
    assert.equal(await raw.opened, 101);
    raw.ws.send(hello('laptop'));
    await relay.waitConnected('laptop');
    raw.ws.send(JSON.stringify({ type: 'out', id: 1, stream: 'stdout', data: 'A'.repeat(MAX_FRAME_BYTES + 10) }));
    assert.equal((await raw.closed).code, 1009, 'too big: refused by the WebSocket layer before it is buffered');
    assert.equal(relay.ctx.registry.agents.status('laptop').connected, false);
  });

  test('output past the credit given: the request is stopped (cancelled on the agent), the connection serves on', async () => {
    const raw = rawAgent(relay, { authorization: `Bearer ${relay.tokens.desk}` });
    assert.equal(await raw.opened, 101);
    raw.ws.send(hello('desk'));
    await relay.waitConnected('desk');
    let execId = 0;
    const cancelled = new Promise<number>((resolve) => {
      raw.ws.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as { type: string; id: number };
        // The test's command's own cancel: the gateway asks a new agent other things as it connects
        // (request 1, before this listener), which this one never answers and which may be cancelled meanwhile.
        if (frame.type === 'cancel' && frame.id === execId) resolve(frame.id);
        // Output as fast as it goes, never waiting for credit (the gateway grants none: its reader is slow).
        if (frame.type !== 'exec') return;
        execId = frame.id;
        const chunk = Buffer.alloc(CHUNK_BYTES, 'x').toString('base64');
        for (let sent = 0; sent <= MAX_UNCREDITED_BYTES; sent += CHUNK_BYTES) raw.ws.send(JSON.stringify({ type: 'out', id: frame.id, stream: 'stdout', data: chunk }));
      });
    });
    const slowReader = { full: () => true, onRoom: () => {} };
    const r = await perform(relay.ctx, { kind: 'exec', host: 'desk', command: 'yes', timeoutMs: 3000 }, { onStdout: () => {}, onStderr: () => {}, flow: slowReader });
    assert.equal(r.exitCode, 255);
    assert.match(r.message ?? '', /agent desk sent \d+ bytes of output past the credit it was given \(at most \d+\); the request was stopped there/);
    assert.equal(await cancelled, execId);
    assert.equal(relay.ctx.registry.agents.status('desk').connected, true);
    raw.ws.close();
  });

  test('a read answered with more bytes than asked is refused, not passed on past the caller\'s cap', async () => {
    // The test before closed its desk without waiting: gone first, so that the read goes to this one.
    for (let i = 0; i < 250 && relay.ctx.registry.agents.status('desk').connected; i++) await sleep(20);
    const raw = rawAgent(relay, { authorization: `Bearer ${relay.tokens.desk}` });
    assert.equal(await raw.opened, 101);
    raw.ws.send(hello('desk'));
    await relay.waitConnected('desk');
    raw.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { type: string; id: number; length?: number };
      if (frame.type === 'file-read') raw.ws.send(JSON.stringify({ type: 'file-done', id: frame.id, content: Buffer.alloc((frame.length ?? 0) + 100, 'a').toString('base64'), size: 1 << 20 }));
    });
    const files = relay.ctx.registry.host('desk').files;
    assert.ok(files);
    await assert.rejects(files.read('/etc/hostname', { offset: 0, length: 10 }), /agent desk answered a read of at most 10 bytes of \/etc\/hostname with 110: it does not speak the relay protocol as remux does/);
    raw.ws.close();
  });

  test('a frame for a request id the gateway never sent is dropped, not crashed on', async () => {
    const raw = rawAgent(relay, { authorization: `Bearer ${relay.tokens.laptop}` });
    assert.equal(await raw.opened, 101);
    raw.ws.send(hello('laptop'));
    await relay.waitConnected('laptop');
    raw.ws.send(JSON.stringify({ type: 'result', id: 999, result: { exitCode: 0, signal: null, timedOut: false, aborted: false, truncated: false, bytesOut: 0, bytesErr: 0, durationMs: 1, error: null, errorKind: null } }));
    await sleep(100);
    assert.equal(relay.ctx.registry.agents.status('laptop').connected, true);
    raw.ws.close();
  });
});
