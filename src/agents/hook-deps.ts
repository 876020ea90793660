// What answering a hook needs (hooks.ts HookDeps), from remux's own parts: approvals, the notification
// channels, the session's policy for PreToolUse, the audit trail. Shared by `remux code hook` run
// directly and by the session supervisor's hook endpoint.
import { redactText } from '../audit/redact.js';
import type { AuditStore } from '../audit/store.js';
import { parseCommand } from '../command/parser.js';
import type { Config } from '../config/config.js';
import { createLocalHost } from '../hosts/local.js';
import type { Approvals, Waiting } from '../notify/service.js';
import { evaluate, unknownPolicyMessage } from '../policy/evaluate.js';
import type { Policy } from '../policy/types.js';
import { AGENT_HOST, hookPrincipal, POLICY_SOURCE, sessionTitle, type HookDeps } from './hooks.js';
import { readSessions } from './store.js';

export interface HookParts {
  config: Config;
  approvals: Approvals;
  audit: AuditStore;
  /** Read at each check, so an edited policies file applies to the next command. */
  policies(): ReadonlyMap<string, Policy>;
  /** The policy PreToolUse checks Bash commands with. */
  policyName: string;
  /** Where the session store is ($REMUX_HOME): the session's name for its approvals. */
  env: NodeJS.ProcessEnv;
  /** Told of each approval the hook asks, once it exists: whoever waits on the hook hears what for. */
  onWaiting?: (w: Waiting) => void;
}

export function hookDeps(session: string, parts: HookParts): HookDeps {
  const { config, approvals, audit, policies, policyName, env } = parts;
  const principal = hookPrincipal(session);
  return {
    session,
    title: sessionTitle(session, nameOf(session, env)),
    ask: (request, signal) => approvals.ask(request, signal, parts.onWaiting),
    timeoutSeconds: config.approvals.timeout_seconds,
    notify: (n) => approvals.notify(principal, n),
    checkCommand: (command, cwd) => {
      const known = policies();
      const policy = known.get(policyName);
      if (!policy) throw new Error(unknownPolicyMessage(policyName, known));
      if (!cwd.startsWith('/')) throw new Error(`the hook's cwd is not absolute: ${JSON.stringify(cwd)}`);
      const host = createLocalHost('localhost', config.exec.secure_path, config.daemon.socket);
      // Static checks: the command runs in the agent's own sandbox, not in remux's.
      return Promise.resolve(evaluate(policy, parseCommand(command), { cwd, resolver: host.resolver, enforcement: { sandbox: false, why: 'checked before Claude Code runs it' } }));
    },
    policyAskExpired: (what, withinMs) => {
      const since = Date.now() - withinMs;
      // As the store keeps it: redacted.
      const shown = redactText(what);
      return approvals.store.list({ all: true, limit: 50 }).some((a) => a.principal === principal && a.source.startsWith(POLICY_SOURCE) && a.what === shown && a.status === 'expired' && a.expiresAt >= since);
    },
    record: async ({ command, decision, reason, checked }) => {
      await audit.record(
        { principal, host: AGENT_HOST, operation: 'agent.bash', command, resource: session, policy: policyName, rule: checked?.rule ? `${checked.rule.policy}#${checked.rule.index}` : null, decision, reason },
        { exitCode: null, durationMs: 0, ...(decision === 'deny' ? { refusal: reason } : {}) },
      );
    },
  };
}

/** Agent session `id`'s name; null for a session the store does not know (a hook run by hand) or cannot tell. */
function nameOf(id: string, env: NodeJS.ProcessEnv): string | null {
  try {
    return readSessions(env).find((s) => s.id === id)?.name ?? null;
  } catch {
    return null; // an unreadable store: its approvals name the session by ID, and still ask
  }
}
