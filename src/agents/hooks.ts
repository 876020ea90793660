// Claude Code hooks answered by remux (FIELD-NOTES §11). Claude Code runs `remux code hook` with the
// event's JSON on stdin and reads the decision from stdout:
// - PermissionRequest (a dialog would show): an approval; allow or deny goes back as the hook's
//   decision. No answer by the deadline prints nothing, so Claude Code's dialog stays for the terminal,
//   which the message replacing the question says (ntfy). The daemon's watcher leaves these prompts to
//   this approval (watcher.ts), so the phone sees one question per prompt.
// - PreToolUse for Bash: the command under the session's remux policy. deny → denied with the rule's
//   reason; ask → an approval (no answer: "ask", the terminal dialog, whose PermissionRequest then asks
//   no second time); allow → no output, so Claude Code's own permission rules still apply.
// - Notification: sent on the notification channels; it cannot decide anything.
import { redactText } from '../audit/redact.js';
import { quoteWord } from '../command/render.js';
import type { Notification } from '../notify/channels.js';
import type { Decision } from '../policy/types.js';
import type { Asker } from './watcher.js';

export const HOOK_EVENTS = ['PermissionRequest', 'PreToolUse', 'Notification'] as const;
export type HookEvent = (typeof HOOK_EVENTS)[number];

/** Who an agent session's approvals (its hooks' and the watcher's) say asked, and where a PermissionRequest's approval comes from. */
export const hookPrincipal = (session: string): string => `agent:${session}`;
/** Agent session `id` as its approvals name it to a person: as `remux code ls` shows it (its name, when known). */
export const sessionTitle = (id: string, name: string | null): string => (name === null ? `agent session ${id}` : `agent session ${name} (${id})`);
/** The command that attaches to agent session `session`, which its approvals' messages carry. */
export const attachCommand = (session: string): string => `remux code attach ${session}`;
/** The host an agent session's approvals name: its agents run on this machine. */
export const AGENT_HOST = 'localhost';
/** The source of a PermissionRequest's approval: a key the watcher tells them by, never shown as their "From". */
export const PERMISSION_REQUEST_SOURCE = 'agent:claude';
/** The source of a PreToolUse approval: the policy whose `ask` it is (`policy:NAME`). */
export const POLICY_SOURCE = 'policy:';

/** The fields remux reads of a hook's input; Claude Code sends more. */
export interface HookInput {
  session_id: string;
  cwd: string;
  hook_event_name: HookEvent;
  tool_name?: string;
  tool_input?: Record<string, unknown>;
  tool_use_id?: string;
  message?: string;
  notification_type?: string;
}

export type HookOutput =
  | { hookSpecificOutput: { hookEventName: 'PermissionRequest'; decision: { behavior: 'allow' } | { behavior: 'deny'; message: string } } }
  | { hookSpecificOutput: { hookEventName: 'PreToolUse'; permissionDecision: 'allow' | 'deny' | 'ask'; permissionDecisionReason: string } };

/** The hook input as Claude Code sends it, or an error naming the field that is wrong. */
export function parseHookInput(text: string): HookInput {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`hook input on stdin is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('hook input on stdin must be a JSON object');
  const o = value as Record<string, unknown>;
  const event = o.hook_event_name;
  if (typeof event !== 'string' || !(HOOK_EVENTS as readonly string[]).includes(event)) {
    throw new Error(`hook input: hook_event_name must be one of ${HOOK_EVENTS.join(', ')}, got ${JSON.stringify(event)}`);
  }
  for (const field of ['session_id', 'cwd'] as const) if (typeof o[field] !== 'string') throw new Error(`hook input: ${field} must be a string`);
  if (event !== 'Notification') {
    if (typeof o.tool_name !== 'string' || o.tool_name === '') throw new Error(`hook input: ${event} needs tool_name (a string)`);
    if (typeof o.tool_input !== 'object' || o.tool_input === null || Array.isArray(o.tool_input)) throw new Error(`hook input: ${event} needs tool_input (an object)`);
  } else if (typeof o.message !== 'string') {
    throw new Error('hook input: Notification needs message (a string)');
  }
  return o as unknown as HookInput;
}

const SHORT = 200;

/** One line saying what the tool would do: the Bash command, the file path, the URL, else the input's JSON. */
export function describeToolCall(tool: string, input: Record<string, unknown>): string {
  const pick = ['command', 'file_path', 'notebook_path', 'url', 'pattern', 'path'].map((k) => input[k]).find((v) => typeof v === 'string');
  // An approval's question goes to push services and whoever holds a link: secrets redacted, as in the audit trail.
  const detail = redactText(typeof pick === 'string' ? pick : JSON.stringify(input));
  const line = `${tool}: ${detail.replace(/\s*\n\s*/g, ' ⏎ ')}`;
  return line.length > SHORT ? `${line.slice(0, SHORT - 1)}…` : line;
}

export interface HookDeps {
  /** The remux agent session the hook belongs to (from --session). */
  session: string;
  /** That session as its approvals name it to a person (sessionTitle). */
  title: string;
  ask: Asker['ask'];
  timeoutSeconds: number;
  notify(n: Notification): Promise<unknown>;
  /** The Bash command under the session's policy; throws when it cannot be checked. */
  checkCommand(command: string, cwd: string): Promise<Decision>;
  /** Writes a PreToolUse verdict into the audit trail. */
  record(entry: { command: string; decision: 'allow' | 'deny' | 'ask'; reason: string; checked: Decision | null }): Promise<void>;
  /** Whether a policy `ask` of this session about `what` (PreToolUse) expired unanswered within the last `withinMs`. */
  policyAskExpired(what: string, withinMs: number): boolean;
}

/**
 * A PreToolUse `ask` that expired makes Claude Code show its dialog, whose PermissionRequest would ask
 * the same question again; within this long after the expiry it is left to the terminal instead.
 */
const ASKED_ALREADY_MS = 60_000;
/** What an approval of a hook that expires leaves: said by the message that replaces its question. */
const LEFT_TO_THE_TERMINAL = 'the prompt waits at the terminal';

/** The hook's answer (printed as JSON), or null: print nothing and exit 0. */
export async function answerHook(input: HookInput, deps: HookDeps): Promise<HookOutput | null> {
  switch (input.hook_event_name) {
    case 'PermissionRequest':
      return permissionRequest(input, deps);
    case 'PreToolUse':
      return preToolUse(input, deps);
    case 'Notification':
      await deps.notify({
        title: `Claude Code in ${deps.title}${input.notification_type ? `: ${input.notification_type.replaceAll('_', ' ')}` : ''}`,
        message: input.message ?? '',
        priority: input.notification_type === 'permission_prompt' ? 'high' : 'normal',
        event: 'agent.notification',
      });
      return null;
  }
}

async function permissionRequest(input: HookInput, deps: HookDeps): Promise<HookOutput | null> {
  const what = describeToolCall(input.tool_name as string, input.tool_input ?? {});
  // The policy's ask for this very call just went unanswered (the message replacing it said the dialog
  // waits): no second question, nothing more to say.
  if (deps.policyAskExpired(what, ASKED_ALREADY_MS)) return null;
  const outcome = await deps.ask({
    principal: hookPrincipal(deps.session),
    host: AGENT_HOST,
    attach: attachCommand(deps.session),
    what,
    reason: `Claude Code asks to use ${input.tool_name} in ${input.cwd}`,
    source: PERMISSION_REQUEST_SOURCE,
    from: `Claude Code in ${deps.title}`,
    whenExpired: LEFT_TO_THE_TERMINAL,
  });
  // Unanswered: Claude Code's dialog stays for the terminal (the message replacing the question says so).
  if (outcome.status !== 'answered') return null;
  const decision = outcome.option.effect === 'allow' ? { behavior: 'allow' as const } : { behavior: 'deny' as const, message: `denied by ${outcome.by} through remux` };
  return { hookSpecificOutput: { hookEventName: 'PermissionRequest', decision } };
}

async function preToolUse(input: HookInput, deps: HookDeps): Promise<HookOutput | null> {
  const command = input.tool_input?.command;
  if (input.tool_name !== 'Bash' || typeof command !== 'string') return null;
  let checked = null as Decision | null;
  const out = await bashVerdict(command, input.cwd, deps, (d) => (checked = d));
  const said = out?.hookSpecificOutput;
  const verdict = said && 'permissionDecision' in said ? said : null;
  await deps.record({ command, decision: verdict?.permissionDecision ?? 'allow', reason: verdict?.permissionDecisionReason ?? checked?.reason ?? 'allowed', checked });
  return out;
}

async function bashVerdict(command: string, cwd: string, deps: HookDeps, checked: (d: Decision) => void): Promise<HookOutput | null> {
  const pre = (permissionDecision: 'allow' | 'deny' | 'ask', permissionDecisionReason: string): HookOutput => ({
    hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision, permissionDecisionReason },
  });
  let decision: Decision;
  try {
    decision = await deps.checkCommand(command, cwd);
    checked(decision);
  } catch (err) {
    // Fail closed: a command remux cannot check does not run on remux's word.
    return pre('deny', `remux could not check this command: ${(err as Error).message}`);
  }
  if (decision.effect === 'allow') return null;
  if (decision.effect === 'deny') return pre('deny', `remux policy ${decision.policy}: ${decision.reason}`);
  const outcome = await deps.ask({
    principal: hookPrincipal(deps.session),
    host: AGENT_HOST,
    attach: attachCommand(deps.session),
    what: describeToolCall('Bash', { command }),
    reason: decision.reason,
    source: `${POLICY_SOURCE}${decision.policy}`,
    from: `policy ${decision.policy} on Claude Code's Bash in ${deps.title}`,
    // "ask": Claude Code shows its dialog.
    whenExpired: LEFT_TO_THE_TERMINAL,
  });
  if (outcome.status !== 'answered') {
    const unanswered = outcome.status === 'expired' ? `none came within ${deps.timeoutSeconds} s` : 'it was withdrawn before an answer came';
    return pre('ask', `remux policy ${decision.policy} asks for approval and ${unanswered}`);
  }
  if (outcome.option.effect === 'allow') return pre('allow', `approved by ${outcome.by} through remux`);
  return pre('deny', `denied by ${outcome.by} through remux (policy ${decision.policy}: ${decision.reason})`);
}

/**
 * The hooks section of the session's Claude Code settings: every hook runs `code hook --session ID` of
 * `remux` (the argv that starts remux, or its hook client: claude-hooks.ts) for this session. Claude Code runs hook commands through a shell,
 * so the words are quoted; its timeout outlasts remux's approval deadline, so remux — not a killed
 * hook — decides what a silence means. PreToolUse only where a remux policy applies to the session.
 */
export function claudeHookSettings(remux: string[], sessionId: string, approvalTimeoutSeconds = 300, preToolUse = true): { hooks: Partial<Record<HookEvent, Array<{ matcher?: string; hooks: Array<{ type: 'command'; command: string; timeout: number }> }>>> } {
  const hook = (timeout: number): { type: 'command'; command: string; timeout: number } => ({
    type: 'command',
    command: [...remux, 'code', 'hook', '--session', sessionId].map(quoteWord).join(' '),
    timeout,
  });
  const waits = approvalTimeoutSeconds + 30;
  return {
    hooks: {
      PermissionRequest: [{ matcher: '*', hooks: [hook(waits)] }],
      ...(preToolUse ? { PreToolUse: [{ matcher: 'Bash', hooks: [hook(waits)] }] } : {}),
      Notification: [{ hooks: [hook(30)] }],
    },
  };
}
