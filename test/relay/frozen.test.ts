// An agent process that is stopped (SIGSTOP: as a laptop put to sleep, or a path that drops everything)
// while the gateway sends it a command. Its kernel keeps taking the gateway's frames meanwhile; once the
// gateway has given up on the connection (and told the caller "may have run"), those frames must not run
// when the process resumes. A stop shorter than the pong deadline loses nothing.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { remux } from '../support/cli.js';
import { ECHO_POLICY } from '../support/policies.js';
import { AgentDaemon, waitFor, type AgentProcess } from './agent-process.js';

const d = new AgentDaemon();

/** The agent stopped for 2 s while `echo WORD` is sent to it: the command runs once it resumes, and it stays connected. */
async function survivesBriefStop(daemon: AgentDaemon, agent: AgentProcess, word: string): Promise<void> {
  agent.child.kill('SIGSTOP');
  const running = remux(['client', 'run', 'laptop', '--', 'echo', word], { env: daemon.gw.env });
  await sleep(2000);
  agent.child.kill('SIGCONT');
  const r = await running;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${word}\n`);
  assert.equal((await daemon.hostRow()).connected, true);
}

describe('a stopped agent', () => {
  let agent: AgentProcess;
  before(async () => {
    // Pings every second, a pong within 3 s.
    await d.setUp({ gatewayPolicies: ECHO_POLICY, agentPolicies: ECHO_POLICY, pongTimeoutSeconds: 3 });
    agent = await d.connectAgent();
  });
  after(() => d.tearDown(agent));

  const ranOnAgent = async (word: string): Promise<boolean> => (await remux(['audit', 'ls', '--json'], { env: d.ag.env })).stdout.includes(word);

  test('stopped for less than the pong deadline: a command sent meanwhile runs once it resumes', async () => {
    await survivesBriefStop(d, agent, 'short-stop');
  });

  test('stopped past the pong deadline: the caller fails within seconds, and the command never runs when the agent resumes', async () => {
    agent.child.kill('SIGSTOP');
    const started = Date.now();
    const r = await remux(['client', 'run', 'laptop', '--', 'echo', 'sent-while-stopped'], { env: d.gw.env });
    assert.equal(r.code, 255, r.stderr);
    assert.match(r.stderr, /agent laptop disconnected \(no pong within 3000 ms\); a command that was running there may have run/);
    assert.ok(Date.now() - started < 6000, `failed after ${Date.now() - started} ms`);
    assert.equal((await d.hostRow()).connected, false);
    agent.child.kill('SIGCONT');
    await waitFor('the agent to connect again', async () => (await d.hostRow()).connected);
    assert.equal(await ranOnAgent('sent-while-stopped'), false, 'the stale command ran on the agent');
    assert.match(agent.output(), /dropped \d+ frames? that came after a silence/);
    const again = await remux(['client', 'run', 'laptop', '--', 'echo', 'after'], { env: d.gw.env });
    assert.equal(again.stdout, 'after\n', again.stderr);
  });
});

describe('a stopped agent, with the daemon\'s default ping settings', () => {
  const dd = new AgentDaemon();
  let agent: AgentProcess;
  before(async () => {
    await dd.setUp({ gatewayPolicies: ECHO_POLICY, agentPolicies: ECHO_POLICY, pongTimeoutSeconds: 'defaults' });
    agent = await dd.connectAgent();
  });
  after(() => dd.tearDown(agent));

  test('stopped for 2 s: still connected, the command runs once it resumes', async () => {
    await survivesBriefStop(dd, agent, 'brief-stop');
  });

  test('stopped for good: down within about 5 s (a ping every 2 s, its pong due within 3 s), not 15', async () => {
    agent.child.kill('SIGSTOP');
    const started = Date.now();
    const r = await remux(['client', 'run', 'laptop', '--', 'echo', 'never'], { env: dd.gw.env });
    assert.equal(r.code, 255, r.stderr);
    assert.match(r.stderr, /agent laptop disconnected \(no pong within 3000 ms\)/);
    assert.ok(Date.now() - started < 7000, `failed after ${Date.now() - started} ms`);
    agent.child.kill('SIGCONT');
    await waitFor('the agent to connect again', async () => (await dd.hostRow()).connected);
  });
});

describe('the daemon stopped while a pong is on its way', () => {
  const dd = new AgentDaemon();
  let agent: AgentProcess;
  let proxy: net.Server;
  before(async () => {
    // Pings every 0.5 s, a pong due within 1 s; the agent's side of the path takes 0.3 s, so a pong is on
    // its way most of the time.
    await dd.setUp({ gatewayPolicies: ECHO_POLICY, agentPolicies: ECHO_POLICY, pongTimeoutSeconds: 'defaults', gatewayConfig: 'relay:\n  ping_interval_seconds: 0.5\n  pong_timeout_seconds: 1\n' });
    const daemon = new URL(dd.url.replace('wss:', 'https:'));
    proxy = net.createServer((from) => {
      const to = net.connect(Number(daemon.port), daemon.hostname);
      from.on('data', (chunk) => setTimeout(() => to.write(chunk), 300));
      to.pipe(from);
      from.on('close', () => to.destroy());
      to.on('close', () => from.destroy());
      from.on('error', () => to.destroy());
      to.on('error', () => from.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    dd.url = `wss://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    agent = await dd.connectAgent();
  });
  after(async () => {
    await dd.tearDown(agent);
    proxy.close();
  });

  test('a daemon stopped past the pong deadline (a busy or suspended machine) reads the pong that came meanwhile before it gives up', async () => {
    const status = await remux(['daemon', 'status'], { env: dd.gw.env });
    const pid = Number(/running: pid (\d+)/.exec(status.stdout)![1]);
    const connected = await dd.hostRow();
    for (let i = 0; i < 5; i++) {
      process.kill(pid, 'SIGSTOP');
      await sleep(1600);
      process.kill(pid, 'SIGCONT');
      await sleep(400 + i * 70);
      const row = await dd.hostRow();
      assert.equal(row.connected && row.since === connected.since, true, `stop ${i + 1}: the same connection (${row.lastError})`);
    }
  });
});
