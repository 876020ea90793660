// A stage let out of the OS sandbox (sandbox: false, for programs that report on the host: ps) on an agent
// host: both policies must let it out. The gateway says which stages its policy lets out (relay protocol
// 5); the agent lets one out only where its own policy does too, or has no sandbox of its own. A list the
// gateway makes up never lets out a stage the agent's own sandbox keeps.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { AgentSession } from '../../src/agent/serve.js';
import { createContext } from '../../src/core/context.js';
import type { SandboxSpec } from '../../src/exec/types.js';
import { AGENT_PATH, GatewayFrameSchema, parseFrame, type AgentFrame } from '../../src/gateway/relay/protocol.js';
import { remux } from '../support/cli.js';
import { AgentDaemon, type AgentProcess } from './agent-process.js';
import { startRelay, type Relay } from './harness.js';

/** A policy running ps (outside the sandbox with `psOutside`), echo and cat, in the sandbox or not. */
const policy = (name: string, o: { sandbox: boolean; psOutside: boolean }): string => `  ${name}:
    sandbox: ${o.sandbox}
    capabilities:
      - { operation: execute_binary, resource: ps${o.psOutside ? ', sandbox: false' : ''} }
      - { operation: execute_binary, resource: echo|cat }
      - { operation: write_stdout, resource: null }
`;
const policies = (...named: string[]): string => `policies:\n${named.join('')}`;

// A process of the host, which a ps in any sandbox cannot see.
const MARKER = /^sleep 12345\.5$/m;
const PS = 'ps -eo args';

describe('a stage let out of the sandbox on an agent host', () => {
  const d = new AgentDaemon();
  let agent: AgentProcess;
  const marker = spawn('sleep', ['12345.5'], { stdio: 'ignore' });
  before(async () => {
    await d.setUp({ gatewayPolicies: policies(policy('read_only', { sandbox: true, psOutside: false })), agentPolicies: policies(policy('read_only', { sandbox: true, psOutside: true })) });
    agent = await d.connectAgent();
  });
  after(async () => {
    marker.kill();
    await once(marker, 'exit');
    await d.tearDown(agent);
  });

  test("runs in the gateway's sandbox when only the agent's policy lets it out", async () => {
    const here = await remux(['client', 'run', 'localhost', '--', ...PS.split(' ')], { env: d.ag.env });
    assert.equal(here.code, 0, here.stderr);
    assert.match(here.stdout, MARKER, "the agent's own policy lets ps out on its host");
    const relayed = await remux(['client', 'run', 'laptop', '--', ...PS.split(' ')], { env: d.gw.env });
    assert.equal(relayed.code, 0, relayed.stderr);
    assert.match(relayed.stdout, /^ps -eo args$/m);
    assert.doesNotMatch(relayed.stdout, /sleep 12345\.5/, "ps ran outside the gateway policy's sandbox");
  });
});

describe('which stages leave the sandbox on an agent host: both policies decide', () => {
  let relay: Relay;
  const marker = spawn('sleep', ['12345.5'], { stdio: 'ignore' });
  before(async () => {
    relay = await startRelay({
      agents: ['outs', 'keeps', 'bare', 'old'],
      gatewayPolicy: policies(policy('read_only', { sandbox: true, psOutside: true }), policy('keeps', { sandbox: true, psOutside: false }), policy('bare', { sandbox: false, psOutside: false })),
    });
    relay.startAgent('outs', { policy: policies(policy('read_only', { sandbox: true, psOutside: true })) });
    relay.startAgent('keeps', { policy: policies(policy('read_only', { sandbox: true, psOutside: false })) });
    relay.startAgent('bare', { policy: policies(policy('read_only', { sandbox: false, psOutside: false })) });
    for (const name of ['outs', 'keeps', 'bare']) await relay.waitConnected(name);
  });
  after(async () => {
    marker.kill();
    await once(marker, 'exit');
    await relay.close();
  });

  /** ps's output on `host` under the gateway's `gatewayPolicy`. */
  const ps = async (host: string, gatewayPolicy: string, command = PS): Promise<string> => {
    // `/`: shown by every sandbox (its own root), where the caller's directory may not be.
    const r = await relay.run(host, command, { policy: gatewayPolicy, cwd: '/' });
    assert.equal(r.exitCode, 0, r.stderr + (r.message ?? ''));
    assert.match(r.stdout, /^ps -eo args$/m);
    return r.stdout;
  };

  test('both policies let it out: ps lists the host', async () => {
    assert.match(await ps('outs', 'read_only'), MARKER);
  });

  test('counted across the command: the second stage of a list, the first of a pipeline, out; the rest in', async () => {
    assert.match(await ps('outs', 'read_only', `echo first; ${PS} | cat`), MARKER);
    // cat runs inside: a file of the host that neither policy shows is not there.
    const r = await relay.run('outs', `echo first; ${PS} | cat /etc/hostname`, { policy: 'read_only' });
    assert.notEqual(r.exitCode, 0, 'cat ran outside the sandbox');
  });

  test("the agent has no sandbox of its own and the gateway's policy lets it out: ps lists the host", async () => {
    assert.match(await ps('bare', 'read_only'), MARKER);
  });

  test("the agent has no sandbox of its own, the gateway's policy keeps it in: in the gateway's sandbox", async () => {
    assert.doesNotMatch(await ps('bare', 'keeps'), MARKER);
  });

  test("only the gateway's policy lets it out, the agent's sandbox keeps it: inside", async () => {
    assert.doesNotMatch(await ps('keeps', 'read_only'), MARKER);
  });

  test("only the agent's policy lets it out, the gateway's sandbox keeps it: inside", async () => {
    assert.doesNotMatch(await ps('outs', 'keeps'), MARKER);
  });

  test("the gateway has no sandbox, the agent's policy lets it out: ps lists the host", async () => {
    assert.match(await ps('outs', 'bare'), MARKER);
  });

  test('an agent of protocol 4 is not told (it would refuse the field): the stage runs in the sandbox there', async () => {
    // A raw agent of protocol 4 with a sandbox: it answers the gateway's lookups and records the exec it gets.
    const ws = new WebSocket(`${relay.url}${AGENT_PATH}`, { headers: { authorization: `Bearer ${relay.tokens.old}` } });
    const execs: Array<Record<string, unknown>> = [];
    ws.on('message', (d) => {
      const f = JSON.parse(String(d)) as { type: string; id: number; own?: boolean; paths?: string[]; names?: string[] };
      if (f.type === 'resolve') ws.send(JSON.stringify({ type: 'resolved', id: f.id, paths: f.paths!.map((path) => ({ path })), names: f.names!.map((n) => ({ path: `/usr/bin/${n}` })) }));
      if (f.type !== 'exec') return;
      if (f.own === false) execs.push(f);
      ws.send(JSON.stringify({ type: 'result', id: f.id, result: { exitCode: 0, signal: null, timedOut: false, aborted: false, truncated: false, bytesOut: 0, bytesErr: 0, durationMs: 1, error: null, errorKind: null } }));
    });
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'hello', v: 4, name: 'old', user: 'x', home: '/', securePath: '/usr/bin:/bin', sandbox: { available: true, detail: 't', staticFallback: false }, version: 't' }));
    try {
      await relay.waitConnected('old');
      const r = await relay.run('old', PS, { policy: 'read_only' });
      assert.equal(r.exitCode, 0, r.stderr + (r.message ?? ''));
      assert.equal(execs.length, 1);
      assert.notEqual(execs[0]!.sandbox, null, "the gateway's sandbox goes with it");
      assert.equal('outside' in execs[0]!, false, 'a frame protocol 4 knows');
    } finally {
      ws.close();
    }
  });

});

describe("an agent given a made-up list of the gateway's let-out stages", () => {
  const marker = spawn('sleep', ['12345.5'], { stdio: 'ignore' });
  const homes: string[] = [];
  const contexts: Array<ReturnType<typeof createContext>> = [];
  const gatewaySandbox: SandboxSpec = { read: [], write: [], hide: [], readOnly: [], network: false, owner: 'gateway' };
  after(async () => {
    marker.kill();
    await once(marker, 'exit');
    for (const ctx of contexts) await ctx.close();
    for (const home of homes) rmSync(home, { recursive: true, force: true });
  });

  /** The output of `command` on an agent of `agentPolicy`, sent with the gateway's sandbox and `outside` as given. */
  const run = async (agentPolicy: string, command: string, outside: unknown): Promise<string> => {
    const home = mkdtempSync(join(tmpdir(), 'remux-agent-outside-'));
    homes.push(home);
    writeFileSync(join(home, 'policies.yaml'), agentPolicy);
    const ctx = createContext({ env: { REMUX_HOME: home } });
    contexts.push(ctx);
    const frames: AgentFrame[] = [];
    const session = new AgentSession('laptop', ctx, (f) => frames.push(f));
    const parsed = parseFrame(GatewayFrameSchema, JSON.stringify({ type: 'exec', id: 1, command, cwd: '/', timeoutMs: 10_000, pipefail: false, sandbox: gatewaySandbox, policy: 'read_only', own: false, outside }));
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
    session.handle(parsed.frame);
    for (let i = 0; i < 400 && !frames.some((f) => f.type === 'result' || f.type === 'error'); i++) await sleep(25);
    const result = frames.find((f) => f.type === 'result');
    assert.equal(result?.type === 'result' ? result.result.exitCode : frames, 0);
    return frames.flatMap((f) => (f.type === 'out' && f.stream === 'stdout' ? [Buffer.from(f.data, 'base64').toString()] : [])).join('');
  };
  const keeps = policies(policy('read_only', { sandbox: true, psOutside: false }));

  test("never lets out a stage the agent's own sandbox keeps", async () => {
    assert.doesNotMatch(await run(keeps, PS, [0]), MARKER);
    assert.doesNotMatch(await run(keeps, `echo x | ${PS}`, [0, 1, 2, 3]), MARKER);
  });

  test("lets out no stage the gateway's list does not name, whatever the agent's own policy says", async () => {
    const outs = policies(policy('read_only', { sandbox: true, psOutside: true }));
    assert.doesNotMatch(await run(outs, PS, [1, 7]), MARKER, 'an index of no ps stage');
    assert.match(await run(outs, PS, [0]), MARKER, 'the same ps, named');
  });

  test('a malformed list is a protocol error, not a list', () => {
    for (const outside of [[-1], [0.5], ['0'], 0, [2 ** 40], null]) {
      const r = parseFrame(GatewayFrameSchema, JSON.stringify({ type: 'exec', id: 1, command: PS, cwd: '/', timeoutMs: 1000, pipefail: false, sandbox: gatewaySandbox, policy: null, own: false, outside }));
      assert.equal(r.ok, false, JSON.stringify(outside));
    }
  });

});
