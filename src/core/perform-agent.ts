// The coding-agent session actions behind the one door (perform.ts): [principal scope] -> audit.begin
// -> the context carries the action out (PerformContext.agents: the supervisor's launch, tmux, the
// session records) -> audit.end. No policy decides: what starts is remux's own launch of the agent the
// user named, bounded by its sandbox, which the audit record names; what is read is remux's own records.
import { performance } from 'node:perf_hooks';
import { exitCodeOf } from './errors.js';
import { EXIT } from './exit-codes.js';
import { askedFor, errorText, refuse, type PerformContext } from './perform.js';
import { checkScope } from './scope.js';
import type { Action, AgentAction, AgentReadAction, PerformResult } from './types.js';

/** Where agent actions are carried out: the local agents' tmux server and their records (cli/code-commands.ts). */
export interface AgentActions {
  /** Does what an admitted action asks; throws with why it failed (the action ends failed, with that error). */
  run(action: AgentAction | AgentReadAction): Promise<void>;
}

export function isAgentAction(action: Action): action is AgentAction | AgentReadAction {
  return action.kind.startsWith('agent.');
}

export async function performAgent(ctx: PerformContext, action: AgentAction | AgentReadAction): Promise<PerformResult> {
  const started = performance.now();
  const asked = askedFor(ctx, action);
  const scoped = checkScope(ctx.principal, action, ctx.defaultPolicy, (name) => ctx.hostEntry(name));
  if (!scoped.ok) return refuse(ctx, asked, started, 'denied', EXIT.DENIED, scoped.reason, null);
  if (!ctx.agents) throw new Error(`internal: this context serves no agent actions (${action.kind})`);
  // Begun durably before anything changes: a session never runs unrecorded, whatever happens to this process.
  const actionId = await ctx.audit.begin({ ...asked, decision: 'allow', rule: null, reason: action.detail });
  let error: string | null = null;
  // As the CLI exits: a session that is not there is the caller's mistake (2), not a failure (1).
  let exitCode: number = EXIT.OK;
  try {
    await ctx.agents.run(action);
  } catch (err) {
    error = errorText(err);
    exitCode = exitCodeOf(err);
  }
  const durationMs = performance.now() - started;
  await ctx.audit.end(actionId, { exitCode, durationMs, ...(error === null ? {} : { error }) });
  return { actionId, outcome: error === null ? 'ok' : 'failed', exitCode, decision: null, message: error, durationMs, bytesOut: 0, truncated: false, timedOut: false };
}
