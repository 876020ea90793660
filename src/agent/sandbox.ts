// Both policies hold on an agent's machine: the command runs in a sandbox that shows only what the
// gateway's policy AND the agent's own policy show, writable only where both allow writes.
import { isInside } from '../exec/sandbox.js';
import type { SandboxSpec } from '../exec/types.js';

/** Trees in both lists: where one list's tree lies inside the other's, the deeper one. */
function common(a: readonly string[], b: readonly string[]): string[] {
  const out = new Set<string>();
  for (const x of a) {
    for (const y of b) {
      if (isInside(x, y)) out.add(x);
      else if (isInside(y, x)) out.add(y);
    }
  }
  return [...out];
}

const union = (a: readonly string[] = [], b: readonly string[] = []): string[] => [...new Set([...a, ...b])];

/** The sandbox both specs allow; null when neither asks for one. */
export function intersectSandbox(agent: SandboxSpec | null, gateway: SandboxSpec | null): SandboxSpec | null {
  if (agent === null || gateway === null) return agent ?? gateway;
  const write = common(agent.write, gateway.write);
  const read = common([...agent.read, ...agent.write], [...gateway.read, ...gateway.write]).filter((p) => !write.includes(p));
  const hideMatching = union(agent.hideMatching, gateway.hideMatching);
  return {
    read,
    write,
    hide: union(agent.hide, gateway.hide),
    ...(hideMatching.length > 0 ? { hideMatching } : {}),
    readOnly: union(agent.readOnly, gateway.readOnly),
    network: agent.network && gateway.network,
    owner: agent.owner,
  };
}

/**
 * The stages that run outside the sandbox of both policies: a stage leaves it only where each side lets it
 * out (that side's decision's stages under a rule with sandbox: false) or asks for no sandbox at all
 * (null). The gateway's list is only ever narrowed by this machine's: however it is made, it lets out no
 * stage this machine's own sandbox keeps.
 */
export function outsideOfBoth(agent: readonly number[] | null, gateway: readonly number[] | null): number[] {
  if (agent === null || gateway === null) return [...(agent ?? gateway ?? [])];
  return agent.filter((stage) => gateway.includes(stage));
}
