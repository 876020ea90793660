// The tmux session actions behind the one door (perform.ts): host lookup -> tmux user -> session name
// -> [principal scope] -> policy (a startup command only) -> audit.begin -> tmux -> audit.end -> the
// host's inventory refreshed after a change. The tmux commands are remux's own fixed argv (tmux.ts);
// a startup command is parsed, checked like `client run`, and handed to tmux rendered as POSIX sh: in
// the OS sandbox wherever `client run` would use it (pane-sandbox.ts), the pane's program being bwrap.
import { performance } from 'node:perf_hooks';
import { renderCommandList } from '../command/render.js';
import { parseCommand } from '../command/parser.js';
import { ParseError, type CommandList } from '../command/types.js';
import { evaluate, everyStageLetOut, ruleAt } from '../policy/evaluate.js';
import type { Decision, Enforcement } from '../policy/types.js';
import type { Host } from '../hosts/types.js';
import { openAttach, type AttachStream } from '../sessions/attach.js';
import type { TerminalSize } from '../sessions/terminal-size.js';
import { localSandboxedSession, remoteSandboxedSession, unsandboxedPaneProgram } from '../sessions/pane-sandbox.js';
import type { SandboxSpec } from '../exec/types.js';
import { TmuxUserError, type Sessions, type TmuxRun } from '../sessions/service.js';
import {
  captureCommand,
  captureLinesProblem,
  killCommand,
  lastLines,
  newSessionCommand,
  NO_SUCH_SESSION,
  parseSize,
  sendCommand,
  sendProblem,
  SESSION_EXISTS,
  sessionMissing,
  sessionNameProblem,
  sessionTaken,
  shellProgram,
  sizeCommand,
  type TmuxTarget,
} from '../sessions/tmux.js';
import { EXIT } from './exit-codes.js';
import { checkFacts, factsOf, tmuxUserInScope, type ScopeFacts } from './scope.js';
import { askedFor, auditAction, unknownPolicyOf, settleAsk, enforcementOn, errorText, nothingRan, refuse, ruleText, sandboxOn, type Asked, type PerformContext } from './perform.js';
import type { Outcome, PerformIO, PerformResult, SessionAction, SessionAttachAction, SessionNewAction } from './types.js';

/** A pane's history can be long; more than this is cut. */
const CAPTURE_MAX_BYTES = 16 << 20;
/** tmux's answers to new, kill, send: a line or two. */
const SMALL_MAX_BYTES = 64 << 10;

type Refusal = { outcome: Outcome; exitCode: number; message: string; decision: Decision | null };
/** A checked startup command: the tmux command list that starts it, and how it is enforced (for the audit record). */
type Startup = { command: string; decision: Decision; list: CommandList; enforced: string; sandbox: SandboxSpec | null };

export async function performSession(ctx: PerformContext, action: SessionAction, io: PerformIO): Promise<PerformResult> {
  const started = performance.now();
  const asked = askedFor(ctx, action);
  const sessions = ctx.sessions;
  if (!sessions) throw new Error(`internal: this context serves no session actions (${action.kind})`);
  const refused = (r: Refusal): Promise<PerformResult> => refuse(ctx, asked, started, r.outcome, r.exitCode, r.message, r.decision);
  const outOfScope = (facts: ScopeFacts): Promise<PerformResult> | null => {
    const scoped = checkFacts(ctx.principal, facts, ctx.defaultPolicy, (name) => ctx.hostEntry(name));
    return scoped.ok ? null : refused({ outcome: 'denied', exitCode: EXIT.DENIED, message: scoped.reason, decision: null });
  };
  // The host first, before it is even looked up: an out-of-scope host reads like an unknown one.
  const hostRefusal = outOfScope({ host: action.host });
  if (hostRefusal) return hostRefusal;

  let host: Host;
  try {
    host = ctx.host(action.host);
  } catch (err) {
    return refused({ outcome: 'unreachable', exitCode: EXIT.TRANSPORT, message: errorText(err), decision: null });
  }
  let target: TmuxTarget;
  try {
    // An agent session (host agents) is on the tmux server its record names.
    target = sessions.target(action.host, action.tmuxUser, action.kind === 'session.list' ? undefined : action.session);
  } catch (err) {
    if (!(err instanceof TmuxUserError)) throw err;
    return refused({ outcome: 'rejected', exitCode: EXIT.USAGE, message: err.message, decision: null });
  }
  // A listing without a user covers every configured one.
  const everyUser = action.kind === 'session.list' && action.tmuxUser === undefined;
  const configured = everyUser ? sessions.users(action.host).users : [target.user];
  asked.resource = `${configured.join(',')}@${action.host}${action.kind === 'session.list' ? '' : `:${action.session}`}`;
  const badRequest = requestProblem(action);
  if (badRequest !== null) return refused({ outcome: 'rejected', exitCode: EXIT.USAGE, message: badRequest, decision: null });
  // Then the tmux user (as resolved), what the action does to the session, the startup command's
  // policy: before any policy work or tmux command. A listing of every user shows the ones in scope.
  const userRefusal = everyUser
    ? configured.some((u) => tmuxUserInScope(ctx.principal.scope, u))
      ? null
      : outOfScope({ host: action.host, tmuxUser: configured[0] ?? target.user })
    : outOfScope({ ...factsOf(ctx.principal, action, ctx.defaultPolicy), tmuxUser: target.user });
  if (userRefusal) return userRefusal;

  let startup: Startup | null = null;
  if (action.kind === 'session.new' && action.command !== undefined) {
    const checked = await checkStartupCommand(ctx, sessions, action, action.command, host, target, asked);
    if ('outcome' in checked) return refused(checked);
    startup = checked;
  }

  // An attach first asks the session's size, which also tells whether it is there: the record names the
  // recording only of an attach that can begin (one to a missing session never writes it: the console
  // linked to nothing). A question, not an act: the record is still begun before the attach is.
  const sized = action.kind === 'session.attach' ? await sessions.run(action.host, sizeCommand(target, action.session), SMALL_MAX_BYTES).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))) : null;
  const recording = action.kind === 'session.attach' && sized !== null && !(sized instanceof Error) && sized.exitCode === 0 ? (action.recording ?? null) : null;
  const decision = startup?.decision ?? null;
  const audit = await auditAction(
    ctx,
    {
      ...asked,
      decision: decision?.effect ?? 'allow',
      rule: decision ? ruleText(decision) : null,
      reason: startup ? `${startup.decision.reason}; ${startup.enforced}` : `remux's own tmux command (${action.kind}${action.kind === 'session.attach' && action.readOnly ? ', read-only' : ''})`,
      recording,
    },
    false,
  );
  const actionId = audit.id;
  if (startup !== null) {
    const asking = await settleAsk(ctx, { kind: 'exec', host: action.host, command: startup.command }, startup.decision, io, audit, started);
    if ('refused' in asking) return asking.refused;
  }

  if (action.kind === 'session.attach') return attach(ctx, sessions, host, target, action, sized as TmuxRun | Error, actionId, started);

  let listed: PerformResult['sessions'];
  let ran: TmuxRun;
  try {
    switch (action.kind) {
      case 'session.list':
        listed = action.fresh ? await sessions.refresh(action.host) : await sessions.list(action.host);
        listed = { ...listed, users: listed.users.filter((u) => (action.tmuxUser === undefined ? tmuxUserInScope(ctx.principal.scope, u.user) : u.user === target.user)) };
        ran = { exitCode: listed.error === null ? 0 : EXIT.TRANSPORT, stdout: '', stderr: '', error: listed.error };
        break;
      case 'session.new':
        ran = await sessions.run(action.host, startup?.list ?? newSessionCommand(target, action.session, host.defaultCwd(action.callerCwd, null), null), SMALL_MAX_BYTES, startup?.sandbox ?? null);
        break;
      case 'session.kill':
        ran = await sessions.run(action.host, killCommand(target, action.session), SMALL_MAX_BYTES);
        break;
      case 'session.send':
        ran = await sessions.run(action.host, sendCommand(target, action.session, action.items), SMALL_MAX_BYTES);
        break;
      case 'session.capture':
        ran = await sessions.run(action.host, captureCommand(target, action.session, action.lines ?? null), CAPTURE_MAX_BYTES);
        if (ran.exitCode === 0) io.onStdout(Buffer.from(lastLines(ran.stdout, action.lines ?? null)));
        break;
    }
  } catch (err) {
    const durationMs = performance.now() - started;
    await audit.finish({ exitCode: EXIT.TRANSPORT, durationMs, error: errorText(err) });
    return { ...nothingRan(actionId, 'unreachable', EXIT.TRANSPORT, errorText(err), durationMs), decision };
  }
  // An agent checks remux's tmux commands against its own policy and tmux users too: its refusal is a denial.
  const deniedThere = ran.exitCode === EXIT.DENIED && ctx.hostEntry(action.host)?.transport === 'agent';
  let failure = ran.exitCode === 0 ? null : deniedThere ? `agent ${action.host} refused it: ${tmuxFailure(ran)}` : tmuxFailure(ran);
  if (failure !== null && !deniedThere && action.kind !== 'session.list') failure = await sessionFailure(sessions, action.host, target, action.session, ran);
  const durationMs = performance.now() - started;
  const exitCode = failure === null ? 0 : deniedThere ? EXIT.DENIED : action.kind === 'session.list' ? EXIT.TRANSPORT : EXIT.FAILURE;
  const bytesOut = Buffer.byteLength(ran.stdout);
  await audit.finish({ exitCode, durationMs, bytesOut, error: failure });
  // Recording from the start: `session new` returns once the recorder runs, so nothing sent after is missed.
  if (failure === null && action.kind === 'session.new') await sessions.recorder?.created(action.host, target, action.session, ctx.principal.name);
  if (failure === null && (action.kind === 'session.new' || action.kind === 'session.kill')) await sessions.refresh(action.host);
  const outcome: Outcome = failure === null ? 'ok' : deniedThere ? 'denied' : action.kind === 'session.list' ? 'unreachable' : 'failed';
  return {
    actionId,
    outcome,
    exitCode,
    decision,
    message: failure,
    durationMs,
    bytesOut,
    truncated: false,
    timedOut: false,
    ...(listed ? { sessions: listed } : {}),
  };
}

/**
 * A startup command is checked like `client run` would check it, under the same enforcement: where
 * `client run` would use the OS sandbox, the pane's program is a sandbox (pane-sandbox.ts) running the
 * command rendered for /bin/sh; with static checks only (sandbox: false, or an SSH host without one
 * under sandbox: true), /bin/sh runs it as is.
 */
async function checkStartupCommand(
  ctx: PerformContext,
  sessions: Sessions,
  action: SessionNewAction,
  command: string,
  host: Host,
  target: TmuxTarget,
  asked: Asked,
): Promise<Startup | Refusal> {
  const policy = ctx.policies.get(asked.policy);
  if (!policy) return { outcome: 'rejected', exitCode: EXIT.USAGE, message: unknownPolicyOf(ctx, action, asked.policy), decision: null };
  let enforcement: Enforcement | { refusal: string };
  try {
    enforcement = await enforcementOn(policy, host);
  } catch (err) {
    return { outcome: 'unreachable', exitCode: EXIT.TRANSPORT, message: errorText(err), decision: null };
  }
  if ('refusal' in enforcement) return { outcome: 'denied', exitCode: EXIT.DENIED, message: enforcement.refusal, decision: null };
  let list: CommandList;
  try {
    list = parseCommand(command);
  } catch (err) {
    if (!(err instanceof ParseError)) throw err;
    return { outcome: 'rejected', exitCode: EXIT.USAGE, message: err.message, decision: null };
  }
  asked.argv = list.items.flatMap((item) => item.pipeline.stages.flatMap((stage) => stage.argv));
  const sandbox = enforcement.sandbox ? { spec: sandboxOn(policy, ctx.principal.name, host) } : { spec: null, why: enforcement.why };
  const cwd = host.defaultCwd(action.callerCwd, sandbox.spec);
  let resolver = host.resolver;
  if (host.resolverFor) {
    try {
      resolver = await host.resolverFor(policy, list, cwd);
    } catch (err) {
      return { outcome: 'unreachable', exitCode: EXIT.TRANSPORT, message: errorText(err), decision: null };
    }
  }
  const decision = evaluate(policy, list, { cwd, resolver, enforcement });
  if (decision.effect === 'deny') return { outcome: 'denied', exitCode: EXIT.DENIED, message: decision.reason, decision };
  const shellCommand = renderCommandList(list);
  const letOut = sandbox.spec === null ? null : paneLetOut(decision, list);
  if (letOut !== null && 'refusal' in letOut) return { outcome: 'denied', exitCode: EXIT.DENIED, message: letOut.refusal, decision };
  const transport = ctx.hostEntry(action.host)?.transport;
  if (sandbox.spec === null || letOut?.outside === true) {
    // On an agent's host, the agent lets it out where its own policy does too, and builds the pane's program (agent/serve.ts).
    const enforced = sandbox.spec === null ? `static checks only (${sandbox.why})` : LET_OUT;
    const program = transport === 'agent' ? shellProgram(shellCommand) : unsandboxedPaneProgram(shellCommand);
    return { command, decision, list: newSessionCommand(target, action.session, cwd, program), enforced, sandbox: null };
  }
  const pane = { target, session: action.session, cwd, spec: sandbox.spec, securePath: sessions.securePath, shellCommand };
  // An agent builds the sandbox on its machine from this spec and its own policy's (agent/serve.ts).
  if (transport === 'agent') {
    const list = newSessionCommand(target, action.session, cwd, shellProgram(shellCommand));
    return { command, decision, list, enforced: 'runs in the OS sandbox (bubblewrap) the agent builds, for the life of the session', sandbox: sandbox.spec };
  }
  const made = transport === 'local' ? localSandboxedSession(pane) : remoteSandboxedSession(pane);
  if ('problem' in made) {
    return made.kind === 'sandbox'
      ? { outcome: 'denied', exitCode: EXIT.DENIED, message: made.problem, decision }
      : { outcome: 'failed', exitCode: EXIT.FAILURE, message: made.problem, decision };
  }
  return { command, decision, list: made, enforced: 'runs in the OS sandbox (bubblewrap) for the life of the session', sandbox: null };
}

/** How a startup command whose every stage is let out of the sandbox is enforced (the audit record's reason). */
export const LET_OUT = 'outside the OS sandbox, with static checks only: the rule of every stage says sandbox: false';

/**
 * Whether a sandboxed startup command runs outside the sandbox: a pane runs in one sandbox for its whole
 * life, or in none. Every stage let out by a rule with sandbox: false (ps, df: programs that report on the
 * host), it runs in none, as each of its stages would under `client run`; none let out, in the sandbox.
 * Some but not all: refused, rather than reporting on the sandbox where the policy says the host.
 */
export function paneLetOut(decision: Decision, list: CommandList): { outside: boolean } | { refusal: string } {
  const out = decision.bounds.filter((b) => b.outside !== undefined);
  if (out.length === 0 || everyStageLetOut(decision)) return { outside: out.length > 0 };
  const stages = list.items.flatMap((item) => item.pipeline.stages);
  const named = out.map((b) => `stage ${b.stage + 1} (${stages[b.stage]?.argv[0] ?? '?'}) by rule ${ruleAt(b.outside!)}`).join(', ');
  return {
    refusal:
      `sandbox: false lets ${named} out of the OS sandbox and keeps the other stages in it, but a session's pane runs in one sandbox for its ` +
      `whole life, or in none: start the session with the programs that report on the host alone, or run the command with remux client run`,
  };
}

/** The live attach is the result; its audit record is completed when it ends. */
async function attach(
  ctx: PerformContext,
  sessions: Sessions,
  host: Host,
  target: TmuxTarget,
  action: SessionAttachAction,
  /** The session's size, asked before its record was begun. */
  sized: TmuxRun | Error,
  actionId: number,
  started: number,
): Promise<PerformResult> {
  const fail = async (outcome: Outcome, exitCode: number, message: string): Promise<PerformResult> => {
    const durationMs = performance.now() - started;
    await ctx.audit.end(actionId, { exitCode, durationMs, error: message });
    return nothingRan(actionId, outcome, exitCode, message, durationMs);
  };
  try {
    // The session's size also makes a clear "no such session" instead of a terminal that flashes tmux's
    // complaint and closes.
    if (sized instanceof Error) throw sized;
    if (sized.exitCode !== 0) return await fail('failed', EXIT.FAILURE, await sessionFailure(sessions, action.host, target, action.session, sized));
    const follows = action.readOnly && action.followSize === true;
    // Unknown now (an answer it cannot read): the watch opens at its client's size and still ignores the
    // client's resizes (a watcher alone with the session would size its window), taking the session's at
    // the first answer it can read.
    const sessionSize = follows ? parseSize(sized.stdout) : null;
    const askAgain = async (): Promise<TerminalSize | null> => {
      const again = await sessions.run(action.host, sizeCommand(target, action.session), SMALL_MAX_BYTES);
      return again.exitCode === 0 ? parseSize(again.stdout) : null;
    };
    const stream = await openAttach(host, target, action.session, {
      readOnly: action.readOnly,
      cols: sessionSize?.cols ?? action.cols,
      rows: sessionSize?.rows ?? action.rows,
      lifetimeMs: sessions.attachLifetimeMs,
      ...(follows ? { follow: askAgain } : {}),
    });
    // The attach's end is reported once its audit record is complete.
    const ended = stream.ended.then(async (end) => {
      // Closed by us because the viewer left (the page, the socket): a detach, whatever tmux's killed client exited with.
      const left = end.reason === 'closed';
      await ctx.audit.end(actionId, {
        exitCode: left ? 0 : end.code,
        signal: left ? null : end.signal,
        durationMs: performance.now() - started,
        ...(end.reason === 'lifetime' ? { error: 'attach lifetime limit reached; detached' } : {}),
      });
      return end;
    });
    const audited: AttachStream = {
      ...stream,
      ended,
      close: async () => {
        await stream.close();
        return ended;
      },
    };
    return { ...nothingRan(actionId, 'ok', EXIT.OK, '', performance.now() - started), message: null, attach: audited };
  } catch (err) {
    return fail('unreachable', EXIT.TRANSPORT, errorText(err));
  }
}

/** What is wrong with the request itself (name, keys, line count), or null. */
function requestProblem(action: SessionAction): string | null {
  if (action.kind === 'session.list') return null;
  const badName = sessionNameProblem(action.session);
  if (badName !== null) return badName;
  if (action.kind === 'session.send') return sendProblem(action.items);
  if (action.kind === 'session.capture' && action.lines !== undefined) return captureLinesProblem(action.lines);
  return null;
}

/** Why a failed command as another user failed, when it was sudo that said no: with what to do about it. */
async function sudoRefused(sessions: Sessions, host: string, target: TmuxTarget): Promise<string | null> {
  const refusal = await sessions.sudoRefusal(host, target);
  if (refusal === null) return null;
  return `sudo refused to run tmux as ${target.user} on ${host} (${refusal}); give ${target.loginUser} a NOPASSWD sudo rule for tmux as ${target.user} there`;
}

/**
 * Why a command on one session failed: sudo's refusal, a new session's name already taken, a session
 * that is not there (named, with the sessions that are), or tmux's own words.
 */
async function sessionFailure(sessions: Sessions, host: string, target: TmuxTarget, session: string, ran: TmuxRun): Promise<string> {
  const refused = await sudoRefused(sessions, host, target);
  if (refused !== null) return refused;
  if (ran.error === null && sessionTaken(ran.stderr)) return `${SESSION_EXISTS} "${session}" already exists on ${host} for tmux user ${target.user}: pick another name, or attach to it`;
  if (ran.error !== null || !sessionMissing(ran.stderr)) return tmuxFailure(ran);
  const listed = (await sessions.refresh(host)).users.find((u) => u.user === target.user);
  const names = listed?.sessions.map((s) => s.name) ?? [];
  const there = names.length === 0 ? 'none' : names.length <= 10 ? names.join(', ') : `${names.slice(0, 10).join(', ')} and ${names.length - 10} more`;
  return `${NO_SUCH_SESSION} "${session}" on ${host} for tmux user ${target.user} (sessions there: ${there}); see \`remux session ls --host ${host}\``;
}

/** tmux's own words (first line of stderr), or why it did not run. */
function tmuxFailure(run: TmuxRun): string {
  const line = run.stderr.split('\n').find((l) => l.trim() !== '')?.trim();
  return run.error ?? line ?? `tmux exited with status ${run.exitCode}`;
}
