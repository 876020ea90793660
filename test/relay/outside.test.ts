// A stage let out of the OS sandbox (sandbox: false, for programs that report on the host: ps) on an agent
// host: both policies must let it out. The gateway says which stages its policy lets out (relay protocol
// 5); the agent lets one out only where its own policy does too, or has no sandbox of its own. A list the
// gateway makes up never lets out a stage the agent's own sandbox keeps.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
import { AgentDaemon, waitFor, type AgentProcess } from './agent-process.js';
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

/** A sandboxed policy for a session's startup command: `out` runs outside the sandbox (sandbox: false), `inside` in it. */
const sessionPolicy = (name: string, out: string | null, inside: string | null): string => `  ${name}:
    sandbox: true
    capabilities:
${out === null ? '' : `      - { operation: execute_binary, resource: ${out}, sandbox: false }\n`}${inside === null ? '' : `      - { operation: execute_binary, resource: ${inside} }\n`}      - { operation: write_stdout, resource: null }
`;

/**
 * A session's startup command on an agent host: its pane runs in one sandbox for its whole life, or in none.
 * The gateway sends no sandbox when its policy lets every stage out; the agent then runs the pane outside
 * only where its own policy lets every stage out too.
 */
function sessionsOnAgent(title: string, agentPolicy: string, tests: (t: { startup(name: string, policy: string, command: (pid: number) => string): Promise<Awaited<ReturnType<typeof remux>>>; pane(name: string): Promise<{ bwrap: boolean; host: boolean }> }) => void): void {
  describe(title, { timeout: 120_000 }, () => {
    const d = new AgentDaemon();
    let agent: AgentProcess | undefined;
    const socket = join(d.ag.home, 'tmux.sock');
    const marker = spawn('sleep', ['12345.5'], { stdio: 'ignore' });
    before(async () => {
      await d.setUp({
        gatewayPolicies: policies(sessionPolicy('read_only', 'ps|sleep|echo|cat', null), sessionPolicy('keeps', null, 'ps|sleep|echo|cat')),
        agentPolicies: policies(agentPolicy),
        gatewayConfig: 'sessions: { sweep_interval_seconds: 3600 }\n',
      });
      const hosts = join(d.gw.home, 'hosts.yaml');
      writeFileSync(hosts, readFileSync(hosts, 'utf8').replace('    transport: agent\n', `    transport: agent\n    tmux_socket: ${socket}\n`));
      agent = await d.connectAgent();
    });
    after(async () => {
      marker.kill();
      await once(marker, 'exit');
      try {
        execFileSync('tmux', ['-S', socket, 'kill-server'], { stdio: 'ignore' });
      } catch {
        // no server left
      }
      await d.tearDown(agent);
    });
    tests({
      startup: (name, policy, command) => remux(['session', 'new', name, '--host', 'laptop', '--policy', policy, '-c', command(marker.pid!)], { env: d.gw.env }),
      // Whether the pane's program is bubblewrap, and whether its ps saw the host's marker process.
      async pane(name) {
        let text = '';
        await waitFor(`session ${name} to list`, async () => {
          text = (await remux(['session', 'capture', name, '--host', 'laptop'], { env: d.gw.env })).stdout;
          return /^listed$/m.test(text);
        });
        const pid = execFileSync('tmux', ['-S', socket, 'list-panes', '-t', `=${name}`, '-F', '#{pane_pid}'], { encoding: 'utf8' }).trim();
        const program = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]!;
        return { bwrap: /bwrap$/.test(program), host: MARKER.test(text) };
      },
    });
  });
}

const LISTS = (pid: number): string => `ps -o args= -p ${pid}; echo listed; sleep 60`;

sessionsOnAgent("a session's startup command on an agent host whose policy lets ps, sleep and echo out", sessionPolicy('read_only', 'ps|sleep|echo', 'cat'), ({ startup, pane }) => {
  test('both policies let every stage out: the pane runs outside the sandbox, and ps lists the host', async () => {
    const made = await startup('out', 'read_only', LISTS);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stderr, /its command outside the OS sandbox/);
    assert.deepEqual(await pane('out'), { bwrap: false, host: true });
  });

  test("the gateway's policy keeps them in: the pane runs in the sandbox of both", async () => {
    const made = await startup('kept', 'keeps', LISTS);
    assert.equal(made.code, 0, made.stderr);
    assert.deepEqual(await pane('kept'), { bwrap: true, host: false });
  });

  test("the gateway's policy lets every stage out, the agent's only some: refused there (77), nothing reports on a sandbox", async () => {
    const made = await startup('mixed', 'read_only', (pid) => `ps -o args= -p ${pid} | cat; sleep 60`);
    assert.equal(made.code, 77, made.stderr);
    assert.match(made.stderr, /agent laptop refused it: .*sandbox: false lets stage 1 \(ps\) .*one sandbox for its whole life, or in none/);
  });
});

sessionsOnAgent("a session's startup command on an agent host whose policy keeps every stage in its sandbox", sessionPolicy('read_only', null, 'ps|sleep|echo|cat'), ({ startup, pane }) => {
  test("the gateway's policy lets every stage out (it sends no sandbox): the pane runs in the agent's", async () => {
    const made = await startup('agents', 'read_only', LISTS);
    assert.equal(made.code, 0, made.stderr);
    assert.deepEqual(await pane('agents'), { bwrap: true, host: false });
  });
});
