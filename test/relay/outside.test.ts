// A stage the agent's own policy lets out of the sandbox (sandbox: false, for programs that report on the
// host) stays in the sandbox the gateway's policy asks for: both policies must let it out, and the gateway
// never says which stages its own lets out.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { remux } from '../support/cli.js';
import { AgentDaemon, type AgentProcess } from './agent-process.js';

const policies = (psOutside: boolean): string => `policies:
  read_only:
    sandbox: true
    capabilities:
      - { operation: execute_binary, resource: ps${psOutside ? ', sandbox: false' : ''} }
      - { operation: write_stdout, resource: null }
`;

const d = new AgentDaemon();

describe('a stage let out of the sandbox on an agent host', () => {
  let agent: AgentProcess;
  // A process of the agent's host, which a ps in any sandbox cannot see.
  const marker = spawn('sleep', ['12345.5'], { stdio: 'ignore' });
  before(async () => {
    await d.setUp({ gatewayPolicies: policies(false), agentPolicies: policies(true) });
    agent = await d.connectAgent();
  });
  after(async () => {
    marker.kill();
    await once(marker, 'exit');
    await d.tearDown(agent);
  });

  test("runs in the gateway's sandbox when only the agent's policy lets it out", async () => {
    const here = await remux(['client', 'run', 'localhost', '--', 'ps', '-eo', 'args'], { env: d.ag.env });
    assert.equal(here.code, 0, here.stderr);
    assert.match(here.stdout, /^sleep 12345\.5$/m, "the agent's own policy lets ps out on its host");
    const relayed = await remux(['client', 'run', 'laptop', '--', 'ps', '-eo', 'args'], { env: d.gw.env });
    assert.equal(relayed.code, 0, relayed.stderr);
    assert.match(relayed.stdout, /^ps -eo args$/m);
    assert.doesNotMatch(relayed.stdout, /sleep 12345\.5/, "ps ran outside the gateway policy's sandbox");
  });
});
