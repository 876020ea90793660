// The one door (ARCHITECTURE.md §1): every action on a host goes through perform().
// Order: policy lookup -> parse -> host lookup -> resolve paths on the host -> policy decision -> audit.begin
// -> ask -> host.execute -> audit.end, after the principal's scope (core/scope.ts) admits the action.
// Every refusal is audited too.
// Adapters (CLI, daemon; HTTP, MCP later) only build an Action and render the result.
import { constants } from 'node:os';
import { performance } from 'node:perf_hooks';
import { approvalWords } from '../audit/json.js';
import type { AuditStore } from '../audit/store.js';
import type { AuditApproval, AuditBegin, AuditEnd } from '../audit/types.js';
import { leadingCd } from '../command/cd.js';
import { parseCommand } from '../command/parser.js';
import { ParseError, type CommandList } from '../command/types.js';
import type { ExecResult, SandboxSpec } from '../exec/types.js';
import { evaluate, sandboxSpec, unknownPolicyMessage } from '../policy/evaluate.js';
import type { Decision, Enforcement, Policy } from '../policy/types.js';
import type { HostEntry } from '../hosts/inventory.js';
import { TransportError, type Host } from '../hosts/types.js';
import type { Sessions } from '../sessions/service.js';
import { isAgentAction, performAgent, type AgentActions } from './perform-agent.js';
import { FILE_OPERATIONS, pathProblem, performFile } from './perform-file.js';
import { performSession } from './perform-session.js';
import { EXIT } from './exit-codes.js';
import type { RefusalDigest } from './refusal-digest.js';
import { checkScope, policyFor } from './scope.js';
import { InputFailed, OutputCapReached, OutputClosed, type Action, type ApprovalSubject, type Outcome, type PerformIO, type PerformResult, type Principal, type ProbeAction } from './types.js';

export interface PerformContext {
  principal: Principal;
  policies: ReadonlyMap<string, Policy>;
  defaultPolicy: string;
  defaultTimeoutMs: number | null;
  defaultPipefail: boolean;
  audit: AuditStore;
  /** Looks a host up by name; throws TransportError (unknown or unreachable host). */
  host(name: string): Host;
  /** tmux on the hosts: absent where no session action is served. */
  sessions?: Sessions;
  /** The coding-agent sessions (`remux code`): absent where no agent action is served. */
  agents?: AgentActions;
  /** The inventory entry of a host (its labels), for the scope check; undefined when unknown. */
  hostEntry(name: string): HostEntry | undefined;
  /**
   * The daemon's bound on commands running at once (daemon.running_limit): absent in a CLI process of its
   * own, whose commands are its user's.
   */
  running?: RunningLimit;
  /** The daemon's: refusals for too much (outcome rate_limited) past the first few of a window are counted, not each recorded. */
  refusals?: RefusalDigest;
}

/** Slots for commands running at once, per principal and in total (gateway/attach-slots.ts). */
export interface RunningLimit {
  acquire(principal: string): { release(): void } | { refusal: string };
  /** Why `principal` would be refused one now, or null. */
  refusalFor(principal: string): string | null;
}

/** What was asked, in the shape the audit store records. */
export interface Asked {
  principal: string;
  host: string;
  operation: string;
  command: string | null;
  /** What a session action applies to: `user@host:session`. */
  resource?: string;
  /** Every stage's argv, flattened (the command string keeps the structure). */
  argv: string[] | null;
  policy: string;
}

export async function perform(ctx: PerformContext, action: Action, io: PerformIO): Promise<PerformResult> {
  // File, agent and session actions have their own paths (perform-file.ts, perform-agent.ts, perform-session.ts).
  if (action.kind === 'file.read' || action.kind === 'file.write' || action.kind === 'file.edit' || action.kind === 'file.list') return performFile(ctx, action, io);
  if (isAgentAction(action)) return performAgent(ctx, action);
  if (action.kind !== 'exec' && action.kind !== 'probe') return performSession(ctx, action, io);
  const started = performance.now();
  const asked = askedFor(ctx, action);
  const scoped = checkScope(ctx.principal, action, ctx.defaultPolicy, (name) => ctx.hostEntry(name));
  if (!scoped.ok) return refuse(ctx, asked, started, 'denied', EXIT.DENIED, scoped.reason, null);
  if (action.kind === 'probe') return probe(ctx, action, asked, started);
  const policyName = asked.policy;
  const command = action.command;

  const policy = ctx.policies.get(policyName);
  if (!policy) return refuse(ctx, asked, started, 'rejected', EXIT.USAGE, unknownPolicyOf(ctx, action, policyName), null);

  // Parsed before the host is looked up or reached: a command the parser rejects is rejected as such on
  // every host of a fan-out, reachable or not, rather than reported as the host's connection error.
  let list: CommandList;
  try {
    list = parseCommand(command);
  } catch (err) {
    if (!(err instanceof ParseError)) throw err;
    return refuse(ctx, asked, started, 'rejected', EXIT.USAGE, err.message, null);
  }
  asked.argv = list.items.flatMap((item) => item.pipeline.stages.flatMap((stage) => stage.argv));
  // Checked as a file tool's path is: a NUL or an unpaired surrogate never reaches a host (nor a policy's checks in another form).
  const badCwd = action.cwd === undefined ? null : pathProblem(action.cwd);
  if (badCwd !== null) return refuse(ctx, asked, started, 'rejected', EXIT.USAGE, `working directory ${JSON.stringify(action.cwd)}: ${badCwd}`, null);

  let host: Host;
  try {
    host = ctx.host(action.host);
  } catch (err) {
    return refuse(ctx, asked, started, 'unreachable', EXIT.TRANSPORT, errorText(err), null);
  }

  let enforcement: Enforcement | { refusal: string };
  try {
    enforcement = await unlessInterrupted(enforcementOn(policy, host), io.signal, host.name);
  } catch (err) {
    return refuse(ctx, asked, started, 'unreachable', EXIT.TRANSPORT, errorText(err), null);
  }
  if ('refusal' in enforcement) return refuse(ctx, asked, started, 'denied', EXIT.DENIED, enforcement.refusal, null);

  const sandbox = enforcement.sandbox ? sandboxOn(policy, ctx.principal.name, host) : null;
  const cwd = action.cwd ?? host.defaultCwd(action.callerCwd, sandbox);
  let resolver = host.resolver;
  if (host.resolverFor) {
    // Remote hosts answer path and program lookups themselves (symlinks resolved there), in one round trip.
    try {
      resolver = await unlessInterrupted(host.resolverFor(policy, list, cwd), io.signal, host.name);
    } catch (err) {
      return refuse(ctx, asked, started, 'unreachable', EXIT.TRANSPORT, errorText(err), null);
    }
  }
  let decision = evaluate(policy, list, { cwd, resolver, enforcement });
  if (decision.effect === 'deny') return refuse(ctx, asked, started, 'denied', EXIT.DENIED, decision.reason, decision);

  // Held from here (an approval's wait included) to its end: one principal's commands, each up to the
  // timeout (tail -f), cannot pile up past the daemon's bound.
  const slot = ctx.running?.acquire(ctx.principal.name) ?? null;
  if (slot !== null && 'refusal' in slot) return refuse(ctx, asked, started, 'rate_limited', EXIT.RATE_LIMITED, slot.refusal, decision);
  try {
    // Written before anything runs (and before waiting for an approver, so pending asks are visible):
    // begin() resolves once its row is committed durably. If it rejects, nothing runs. A host that starts a
    // command only once its begin is durable gets it at once, and prepares while the begin goes to disk.
    const handOver = host.startsOnceDurable === true && decision.effect === 'allow';
    const audit = await auditAction(ctx, { ...asked, decision: decision.effect, rule: ruleText(decision), reason: decision.reason }, handOver);
    const asking = await settleAsk(ctx, action, decision, io, audit, started);
    if ('refused' in asking) return asking.refused;
    decision = asking.decision;
    let bytesOut = 0;
    const cd = leadingCd(list);
    const outside = sandbox === null ? [] : outsideStages(decision, cd.dirs.length);
    const result = await host
      .execute({
        // Leading `cd DIR &&` stages were checked as the directory the rest runs in.
        list: cd.rest,
        cwd: decision.cwd,
        timeoutMs: action.timeoutMs !== undefined ? action.timeoutMs : ctx.defaultTimeoutMs,
        pipefail: action.pipefail ?? ctx.defaultPipefail,
        output: decision.output,
        sandbox,
        ...(outside.length > 0 ? { outside } : {}),
        policy: policy.name,
        stdin: io.stdin ?? null,
        onStdout: (chunk) => {
          bytesOut += chunk.length;
          io.onStdout(chunk);
        },
        onStderr: io.onStderr,
        ...(io.flow ? { flow: io.flow } : {}),
        ...(io.signal ? { signal: io.signal } : {}),
        ...(handOver ? { durable: audit.durable } : {}),
      })
      .catch((err: unknown) => ({ transportError: errorText(err) }));
    // A begin that failed ran nothing (the host started nothing without it): the caller gets the store's error.
    const actionId = await audit.durable;

    if ('transportError' in result) {
      const durationMs = performance.now() - started;
      await audit.finish({ exitCode: EXIT.TRANSPORT, durationMs, bytesOut, error: result.transportError });
      return {
        actionId,
        outcome: 'unreachable',
        exitCode: EXIT.TRANSPORT,
        decision,
        message: result.transportError,
        durationMs,
        bytesOut,
        truncated: false,
        timedOut: false,
      };
    }

    const durationMs = performance.now() - started;
    if (result.errorKind === 'sandbox_unavailable') {
      // The sandbox could not be started after all: refused, never run unsandboxed.
      const reason = result.error ?? 'the OS sandbox could not be started';
      await audit.finish({ exitCode: EXIT.DENIED, durationMs, refusal: reason });
      return { ...nothingRan(actionId, 'denied', EXIT.DENIED, reason, durationMs), decision };
    }
    // The client's result and the audit record say the same: every front end reports a run through here.
    const ended = await finishRun(audit, result, decision, io.signal, durationMs);
    return {
      actionId,
      outcome: ended.outcome,
      exitCode: ended.exitCode,
      signal: result.signal,
      decision,
      message: ended.message,
      durationMs,
      bytesOut: result.bytesOut,
      truncated: ended.truncated,
      timedOut: result.timedOut,
    };
  } finally {
    slot?.release();
  }
}

/**
 * `work` (what reaches the host before a command runs: its connect, its probe), or once the caller's
 * `signal` aborts (Ctrl-C), a TransportError saying so: the caller stops waiting at once. A daemon's
 * connect to a host is shared by its callers and not ended for one: it goes on without this one. The
 * error waits a turn of the event loop, so that a connect `signal` ended itself (a CLI process's own,
 * PoolOptions.connectSignal) says so in its own words.
 */
export function unlessInterrupted<T>(work: Promise<T>, signal: AbortSignal | undefined, host: string): Promise<T> {
  if (!signal) return work;
  return new Promise((resolve, reject) => {
    const onAbort = (): void => void setImmediate(() => reject(new TransportError(`${host}: connect interrupted`)));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

type Ended = Pick<PerformResult, 'outcome' | 'exitCode' | 'message' | 'truncated'>;

/**
 * Ends the audit record of a command that ran with how it ended (howItEnded), which it returns: perform's
 * and the runtime's own Exec (runtime/guard.ts) alike, so that the same end reads the same in the audit.
 */
export async function finishRun(audit: AuditedAction, result: ExecResult, decision: Decision, signal: AbortSignal | undefined, durationMs: number): Promise<Ended> {
  const ended = howItEnded(result, decision, signal);
  const inputFailed = result.aborted && signal?.reason instanceof InputFailed ? signal.reason.message : null;
  await audit.finish({
    exitCode: ended.exitCode,
    signal: result.signal,
    durationMs,
    bytesOut: result.bytesOut,
    bytesErr: result.bytesErr,
    truncated: ended.truncated,
    timedOut: result.timedOut,
    error: result.error ?? inputFailed,
  });
  return ended;
}

/**
 * A command that ran: its outcome, exit status and note. Output stopped at a cap is `truncated`, the cap
 * named: the policy's write_stdout limit (the executor stopped it), or the caller's own (it aborted
 * `signal` with OutputCapReached), whose stop the executor reports as an interruption (130): the
 * status is then how the command ended, 128 + the signal that stopped it.
 */
function howItEnded(result: ExecResult, decision: Decision, signal: AbortSignal | undefined): Ended {
  const callerCap = result.aborted && signal?.reason instanceof OutputCapReached ? signal.reason : null;
  if (callerCap !== null) {
    const exitCode = result.signal ? 128 + (constants.signals[result.signal] ?? 0) : result.exitCode;
    return { outcome: 'truncated', exitCode, message: callerCap.message, truncated: true };
  }
  // A timeout that came first is what stopped it, whatever output arrived after.
  if (result.truncated && !result.timedOut) {
    const cap = `the output cap of policy ${decision.policy} (write_stdout max_bytes: ${decision.output.maxBytes})`;
    return { outcome: 'truncated', exitCode: result.exitCode, message: `${cap} was reached; the command was stopped`, truncated: true };
  }
  // Stopped because its reader went away (`| head`): quietly, with the status of a writer killed by SIGPIPE, as in sh.
  if (result.aborted && signal?.reason instanceof OutputClosed) return { outcome: 'failed', exitCode: 128 + constants.signals.SIGPIPE, message: null, truncated: result.truncated };
  // Stage failures were already written to stderr like sh does; only refusals before the run (125) were not.
  const message = result.exitCode === 125 ? result.error : result.timedOut ? 'timed out; the process group was killed' : result.aborted ? 'interrupted' : null;
  return { outcome: result.exitCode === 0 ? 'ok' : 'failed', exitCode: result.exitCode, message, truncated: result.truncated };
}

/** The stages of the list after its leading `cd`s (`cds` of them) that a rule with sandbox: false runs outside the sandbox. */
export function outsideStages(decision: Decision, cds: number): number[] {
  return decision.bounds.filter((b) => b.outside !== undefined).map((b) => b.stage - cds);
}

/** The OS sandbox of a command under `policy` on `host`: the policy's, with remux's own files there hidden (Host.ownPaths). */
export function sandboxOn(policy: Policy, principal: string, host: Host): SandboxSpec {
  const spec = sandboxSpec(policy, principal);
  return host.ownPaths ? { ...spec, hide: [...spec.hide, ...host.ownPaths] } : spec;
}

/**
 * How the command will be enforced on this host, or why it is refused: a policy with the sandbox on
 * (ARCHITECTURE §1.3) runs unsandboxed only where the host allows a static fallback and the policy does
 * not say `required`.
 */
export async function enforcementOn(policy: Policy, host: Host): Promise<Enforcement | { refusal: string }> {
  if (policy.sandbox === 'off') return { sandbox: false, why: `policy ${policy.name} has sandbox: false` };
  const support = await host.sandboxSupport();
  if (support.available) return { sandbox: true };
  if (policy.sandbox === 'on' && support.staticFallback) return { sandbox: false, why: `host ${host.name} has no OS sandbox: ${support.detail}` };
  const wants = policy.sandbox === 'required' ? 'requires the OS sandbox (sandbox: required)' : 'runs commands in the OS sandbox';
  const hint = policy.sandbox === 'required' ? '' : '; install bubblewrap (apt-get install bubblewrap), or set sandbox: false in the policy to run with static checks only';
  return { refusal: `policy ${policy.name} ${wants}, but ${host.name} cannot provide one: ${support.detail}${hint}` };
}

/**
 * The refusal of an action whose policy policies.yaml lacks, saying who named it when the action did not:
 * the principal's scope, or config.yaml's default_policy (a typo there fails every command).
 */
export function unknownPolicyOf(ctx: PerformContext, action: Action, name: string): string {
  const given = 'policy' in action && typeof action.policy === 'string';
  const namedBy = given ? undefined : ctx.principal.scope.policies[0] !== undefined ? `principal ${ctx.principal.name}'s scope` : 'default_policy in config.yaml';
  return unknownPolicyMessage(name, ctx.policies, namedBy);
}

export function askedFor(ctx: PerformContext, action: Action): Asked {
  const asked = { principal: ctx.principal.name, host: action.host, operation: action.kind, argv: null };
  switch (action.kind) {
    case 'exec':
      return { ...asked, command: action.command, policy: policyFor(ctx.principal, action.policy, ctx.defaultPolicy) };
    case 'probe':
      return { ...asked, command: 'true', policy: '(none: remux probe)' };
    case 'session.new':
      if (action.command !== undefined) return { ...asked, command: action.command, policy: policyFor(ctx.principal, action.policy, ctx.defaultPolicy) };
      break;
    case 'file.read':
    case 'file.write':
    case 'file.edit':
    case 'file.list':
      // The path as asked; perform-file puts the path as resolved on the host once it knows it. An edit is
      // recorded as what it is (it is checked as a write and a read).
      return {
        ...asked,
        operation: action.kind === 'file.edit' ? 'edit_file' : FILE_OPERATIONS[action.kind],
        command: null,
        resource: action.path,
        policy: policyFor(ctx.principal, action.policy, ctx.defaultPolicy),
      };
    case 'agent.start':
    case 'agent.restart':
    case 'agent.kill':
      return { ...asked, command: action.agent, resource: `${action.session} ${action.workspace}`, policy: `(none: the agent's sandbox, ${action.sandbox})` };
    case 'agent.remove':
      return { ...asked, command: action.agent, resource: `${action.session} ${action.workspace}`, policy: '(none: remux agent records)' };
    case 'agent.list':
    case 'agent.logs':
      return { ...asked, command: null, ...(action.session !== undefined ? { resource: action.session } : {}), policy: '(none: remux agent records)' };
  }
  return { ...asked, command: null, policy: '(none: remux tmux command)' };
}

const PROBE_COMMAND: CommandList = { items: [{ op: null, pipeline: { stages: [{ argv: ['true'], redirects: [], pos: 0 }] } }] };

/** Connects (verifying the host key) and runs `true`: audited like any action, no policy (the command is ours). */
async function probe(ctx: PerformContext, action: ProbeAction, asked: Asked, started: number): Promise<PerformResult> {
  let host: Host;
  try {
    host = ctx.host(action.host);
  } catch (err) {
    return refuse(ctx, asked, started, 'unreachable', EXIT.TRANSPORT, errorText(err), null);
  }
  const actionId = await ctx.audit.begin({ ...asked, decision: 'allow', rule: null, reason: 'host check' });
  // Only the transport may fail here; the audit end is written once, whatever happened.
  const ran = await host
    .execute({
      list: PROBE_COMMAND,
      cwd: '/',
      timeoutMs: 30_000,
      pipefail: false,
      output: { maxBytes: 0, redact: [], redactBlocks: [] },
      sandbox: null,
      onStdout: () => {},
      onStderr: () => {},
    })
    .then(
      (r) => ({ outcome: r.exitCode === 0 ? ('ok' as const) : ('failed' as const), exitCode: r.exitCode, error: r.error }),
      (err: unknown) => ({ outcome: 'unreachable' as const, exitCode: EXIT.TRANSPORT as number, error: errorText(err) }),
    );
  const durationMs = performance.now() - started;
  await ctx.audit.end(actionId, { exitCode: ran.exitCode, durationMs, error: ran.error });
  return { actionId, outcome: ran.outcome, exitCode: ran.exitCode, decision: null, message: ran.error, durationMs, bytesOut: 0, truncated: false, timedOut: false };
}

/** Records an action an adapter refused before perform() (e.g. rate limited): audited all the same. */
export function recordRefusal(ctx: PerformContext, action: Action, outcome: Outcome, exitCode: number, message: string): Promise<PerformResult> {
  return refuse(ctx, askedFor(ctx, action), performance.now(), outcome, exitCode, message, null);
}

/**
 * After the action's begin: a decision that says ask is put to the approver, and the answer (who gave it,
 * through what) goes into the action's end, however it ends; a refusal (denied, expired, no approver)
 * completes the audit record and is the action's result. Any other decision passes through.
 */
export async function settleAsk(
  ctx: PerformContext,
  action: ApprovalSubject,
  decision: Decision,
  io: PerformIO,
  audit: AuditedAction,
  started: number,
): Promise<{ decision: Decision } | { refused: PerformResult }> {
  if (decision.effect !== 'ask') return { decision };
  const answered = await askApprover(action, decision, io);
  audit.approval = answered.approval;
  if (answered.decision.effect === 'allow') return { decision: answered.decision };
  const durationMs = performance.now() - started;
  const reason = answered.decision.reason;
  const actionId = await audit.finish({ exitCode: EXIT.DENIED, durationMs, refusal: reason });
  return { refused: { ...nothingRan(actionId, 'denied', EXIT.DENIED, reason, durationMs), decision: answered.decision } };
}

const APPROVAL_OUTCOMES = { allow: 'approved', deny: 'refused', expired: 'expired', cancelled: 'cancelled' } as const;

async function askApprover(action: ApprovalSubject, decision: Decision, io: PerformIO): Promise<{ decision: Decision; approval: AuditApproval | null }> {
  if (!io.approve) {
    return { decision: { ...decision, effect: 'deny', reason: `${decision.reason}; approval required but no approver is available` }, approval: null };
  }
  const answer = await io.approve(action, decision);
  const { effect, by, via, approval: id } = typeof answer === 'string' ? { effect: answer } : answer;
  const approval: AuditApproval = { outcome: APPROVAL_OUTCOMES[effect], by: by ?? null, via: via ?? null, id: id ?? null };
  const words = effect === 'cancelled' ? 'approval cancelled: the caller went away or cancelled before an answer' : `${effect === 'allow' ? '' : 'approval '}${approvalWords(approval)}`;
  return { decision: { ...decision, effect: effect === 'allow' ? 'allow' : 'deny', reason: `${decision.reason}; ${words}` }, approval };
}

/** An action's audit record once admitted: its id while it runs (null when its begin was queued, not awaited), and its end. */
export interface AuditedAction {
  id: number | null;
  /** Resolves with the action's id once its begin is durable; rejects if it is not written. */
  durable: Promise<number>;
  /** How its ask was answered (settleAsk): written with its end, whichever way it ends. */
  approval: AuditApproval | null;
  /** Queues the end (committed with the store's next batch); resolves with the action's id once the begin is durable. */
  finish(end: AuditEnd): Promise<number>;
}

/**
 * The audit of an admitted action, begun before it runs (and before an approver is asked, so pending asks
 * are visible): by default it returns once the begin is durable. `queued`: it returns at once, for an
 * action that waits on `durable` itself. One that only reads changes nothing: its begin is written while
 * it reads (the fsync overlaps the read), and what it read is handed over only after finish() resolved,
 * so nothing read reaches the caller before its record is on disk. A command handed to a host that starts
 * it only once `durable` resolved (Host.startsOnceDurable) is prepared there meanwhile.
 */
export async function auditAction(ctx: PerformContext, begin: AuditBegin, queued: false): Promise<AuditedAction & { id: number }>;
export async function auditAction(ctx: PerformContext, begin: AuditBegin, queued: boolean): Promise<AuditedAction>;
export async function auditAction(ctx: PerformContext, begin: AuditBegin, queued: boolean): Promise<AuditedAction> {
  const begun = ctx.audit.begin(begin);
  // A queued begin is awaited later (durable, finish()): until then a failure is theirs to report.
  if (queued) begun.catch(() => {});
  const id = queued ? null : await begun;
  const audited: AuditedAction = {
    id,
    durable: begun,
    approval: null,
    async finish(end) {
      const actionId = await begun;
      // Not awaited: the end is committed with the store's next batch, after the caller has its result
      // (0.07-0.12 ms a call here). Its durability does not change (the next begin's fsync), and the
      // store's own readers and its close (at exit too) write what is queued first.
      ctx.audit.end(actionId, { ...end, approval: audited.approval }).catch((err: unknown) => {
        process.emitWarning(`audit: the end of action ${actionId} was not written (the action shows as begun with no outcome): ${errorText(err)}`);
      });
      return actionId;
    },
  };
  return audited;
}

/** Records an action refused before it ran (begin + end at once) and returns its result. */
export async function refuse(
  ctx: PerformContext,
  asked: Asked,
  started: number,
  outcome: Outcome,
  exitCode: number,
  message: string,
  decision: Decision | null,
): Promise<PerformResult> {
  const durationMs = performance.now() - started;
  // Counted into its window's summary row instead (refusal-digest.ts): a flood of them writes a bounded number of rows.
  if (outcome === 'rate_limited' && ctx.refusals?.admit(asked.principal, asked.operation) === false) {
    return { actionId: null, outcome, exitCode, decision, message, durationMs, bytesOut: 0, truncated: false, timedOut: false };
  }
  // An unreachable host is an error (level error); a policy or parser refusal is a denial (level deny).
  const why = outcome === 'unreachable' ? { error: message } : { refusal: message };
  const actionId = await ctx.audit.record(
    { ...asked, decision: 'deny', rule: decision ? ruleText(decision) : null, reason: message },
    { exitCode, durationMs, bytesOut: 0, ...why },
  );
  return { ...nothingRan(actionId, outcome, exitCode, message, durationMs), decision };
}

export function nothingRan(actionId: number, outcome: Outcome, exitCode: number, message: string, durationMs: number): PerformResult {
  return { actionId, outcome, exitCode, decision: null, message, durationMs, bytesOut: 0, truncated: false, timedOut: false };
}

export function ruleText(decision: Decision): string | null {
  const rule = decision.rule;
  return rule ? `${rule.policy}#${rule.index} ${rule.effect} ${rule.operation} (${rule.source.file}:${rule.source.line})` : null;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
