// An agent process that is stopped (SIGSTOP: as a laptop put to sleep, or a path that drops everything)
// while the gateway sends it a command. Its kernel keeps taking the gateway's frames meanwhile; once the
// gateway has given up on the connection (and told the caller "may have run"), those frames must not run
// when the process resumes. A stop shorter than the pong deadline loses nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { remux } from '../support/cli.js';
import { ECHO_POLICY } from '../support/policies.js';
import { AgentDaemon, waitFor, type AgentProcess } from './agent-process.js';

const d = new AgentDaemon();

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
    agent.child.kill('SIGSTOP');
    const running = remux(['client', 'run', 'laptop', '--', 'echo', 'short-stop'], { env: d.gw.env });
    await sleep(2000);
    agent.child.kill('SIGCONT');
    const r = await running;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'short-stop\n');
    assert.equal((await d.hostRow()).connected, true);
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
    agent.child.kill('SIGSTOP');
    const running = remux(['client', 'run', 'laptop', '--', 'echo', 'brief-stop'], { env: dd.gw.env });
    await sleep(2000);
    agent.child.kill('SIGCONT');
    const r = await running;
    assert.equal(r.stdout, 'brief-stop\n', r.stderr);
    assert.equal((await dd.hostRow()).connected, true);
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
