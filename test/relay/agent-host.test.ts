// An agent host whose agent is not connected (gone since the policy check, or never here) answers with a
// rejected promise, never a throw: perform() catches a rejection and audits the action's end; a throw
// would pass it by and leave the action begun with no outcome.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AgentHub } from '../../src/gateway/relay/hub.js';
import { createAgentHost } from '../../src/hosts/agent.js';
import { TransportError, type HostExecRequest } from '../../src/hosts/types.js';

test("an agent host without its agent rejects execute, openTerminal and sandboxSupport (no synchronous throw)", async () => {
  const hub = new AgentHub();
  hub.relaying = true;
  const host = createAgentHost('laptop', hub);
  const req = { list: { items: [] }, output: { maxBytes: null, redact: [], redactBlocks: [] }, sandbox: null, onStdout: () => {}, onStderr: () => {} } as unknown as HostExecRequest;
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['execute', () => host.execute(req)],
    ['openTerminal', () => host.openTerminal(['true'], { cols: 80, rows: 24 })],
    ['sandboxSupport', () => host.sandboxSupport!()],
  ];
  for (const [name, call] of calls) {
    const answer = call();
    assert.ok(answer instanceof Promise, name);
    await assert.rejects(answer, (e: unknown) => e instanceof TransportError && /agent laptop is not connected/.test(e.message), name);
  }
});
