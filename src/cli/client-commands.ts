// `remux client run` and `remux client batch`. With a daemon running, the whole command line goes to it
// (warm pooled connections) and the daemon runs this same code for it (gateway/cli-session.ts);
// otherwise it runs here with cold connections. Either way every command goes fanOut() -> perform().
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
// Only what forwarding needs is imported up front; the in-process machinery (policy engine, audit
// store, SSH) loads when there is no daemon, keeping a warm `client run` light.
import { parseCommand } from '../command/parser.js';
import { ParseError } from '../command/types.js';
import { auditDbFile, envFirst, knownHostsFile, policiesFile, socketFileFast } from '../config/paths.js';
import type { GatewayContext } from '../core/context.js';
import { EXIT } from '../core/exit-codes.js';
import { MAX_TIMER_MS } from '../core/timers.js';
import { approvalText, type ApprovalAnswer, type ExecAction, type PerformIO } from '../core/types.js';
import { clientSocket } from '../config/daemon-record.js';
import { cliRequest, forwardToDaemon } from '../gateway/forward.js';
import type { CliRequest } from '../gateway/protocol.js';
import { rateLimitedMessage, type TakeResult } from '../hosts/rate-limit.js';
import { isSingleHostName, selectionFailureExit } from '../hosts/selectors.js';
import type { BatchOptions, RunOptions } from './commands/client.js';
import type { Invocation } from './invocation.js';
import { UsageError, visible } from './output.js';
import { createRunView, type ViewMode } from './run-view.js';

/** How long an `ask` waits for the user's answer before it expires (expired is never allow). */
const ASK_TIMEOUT_MS = 5 * 60_000;

/** What a fan-out runs in: the daemon's long-lived context, or one built for this process. */
export interface Runner {
  /** The context to run `selector`'s commands in; throws a UsageError when it cannot serve this invocation. */
  context(selector: string): Promise<GatewayContext>;
  /**
   * Admits one request, however many hosts it fans out to (the daemon's per-principal rate limit: a
   * short wait for the next token is waited, a longer one refused).
   */
  admit(ctx: GatewayContext): Promise<TakeResult>;
  /** This process changed `host`'s tmux sessions: a running daemon refreshes its cache of them. */
  sessionsChanged(host: string): Promise<void>;
  /** An attach is about to start in this process: a running daemon counts it in its limits, or refuses. */
  attachSlot(): Promise<{ release(): void } | { refusal: string; exitCode: number }>;
  close(): Promise<void>;
}

/** Where `client run|batch` execute for one invocation. */
export interface ClientHost {
  invocation: Invocation;
  /**
   * Runs `work` with a runner, or hands the whole command line to a daemon; resolves with the exit status.
   * `daemon: false`: never the daemon (`local`: why, as a daemon handing the line back says; default: it
   * needs the client's terminal). `policiesWhenNeeded`: a command that may need no policy (see ContextOptions).
   */
  run(opts: { daemon?: boolean; local?: string; policiesWhenNeeded?: boolean }, work: (runner: Runner) => Promise<number>): Promise<number>;
  /**
   * Hands a running daemon the command line `args` instead of the one typed (part of it, which the daemon
   * serves, where this process does the rest), without this process's stdin: its exit status, or null
   * when no daemon serves it (none runs, or it declined: said). A daemon forwards nothing: null.
   */
  forward(args: string[]): Promise<number | null>;
}

/** The CLI process: forward to a running daemon (unless --no-daemon), else run in this process. */
export function processClientHost(inv: Invocation): ClientHost {
  const toDaemon = async (request: CliRequest): Promise<number | null> => {
    const outcome = await forwardToDaemon(await daemonSocket(inv), request, inv);
    if (outcome && 'exitCode' in outcome) return outcome.exitCode;
    if (outcome) inv.stderr.write(`remux: the running daemon does not serve this command (${outcome.declined}); running it in this process\n`);
    return null;
  };
  return {
    invocation: inv,
    async run(opts, work) {
      const served = opts.daemon === false ? null : await toDaemon(cliRequest(inv));
      if (served !== null) return served;
      // The connections are this process's own: Ctrl-C ends one still being made (a host down or slow)
      // at once, as it stops a command that runs, and the command exits 130 as it then does.
      const interrupt = new AbortController();
      const release = inv.onInterrupt((why) => interrupt.abort(why));
      try {
        const code = await work(inProcessRunner(inv, { policiesWhenNeeded: opts.policiesWhenNeeded === true, connectSignal: interrupt.signal }));
        return interruptedExit(interrupt.signal.aborted, code);
      } finally {
        release();
      }
    },
    forward(args) {
      const request: CliRequest = { ...cliRequest(inv), args };
      delete request.stdin;
      return toDaemon(request);
    },
  };
}

/** The daemon's socket (clientSocket): a daemon that runs on another than the one named now is said, unless only JSON is to come out. */
async function daemonSocket(inv: Invocation): Promise<string> {
  const configured = await socketFileFast(inv.env, async () => (await import('../config/config.js')).loadConfig(inv.env).config.daemon.socket);
  const options = inv.args.includes('--') ? inv.args.slice(0, inv.args.indexOf('--')) : inv.args;
  return clientSocket(configured, inv.env, options.includes('--json') ? undefined : (moved) => inv.stderr.write(`warning: ${moved}\n`));
}

/** sh's status for a command stopped by Ctrl-C (SIGINT). */
const EXIT_INTERRUPTED = 130;

/**
 * A command Ctrl-C interrupted exits 130, as one it stopped while running does, also when something else
 * ended it first (a host still being connected to: 255), in the client's own process and through a daemon.
 */
export function interruptedExit(interrupted: boolean, code: number): number {
  return interrupted && code !== EXIT.OK ? EXIT_INTERRUPTED : code;
}

/** Without a daemon there is no shared limit to take from. */
const ADMITTED: TakeResult = { ok: true, remaining: Infinity };

/** A runner in this process (no daemon). `contextOptions`: see ContextOptions (policiesWhenNeeded). */
function inProcessRunner(inv: Invocation, contextOptions: { policiesWhenNeeded?: boolean; connectSignal?: AbortSignal } = {}): Runner {
  let ctx: GatewayContext | null = null;
  return {
    async context(selector) {
      return (ctx ??= await inProcessContext(inv.env, selector, contextOptions));
    },
    admit: () => Promise.resolve(ADMITTED),
    async sessionsChanged(host) {
      const { askDaemon } = await import('../gateway/client.js');
      // No daemon, or one that does not know the host: nothing to keep fresh.
      await askDaemon(await daemonSocket(inv), { type: 'sessions-changed', host }).catch(() => null);
    },
    async attachSlot() {
      const { holdAttachSlot } = await import('../gateway/client.js');
      // No daemon: nothing else to count this attach against.
      return (await holdAttachSlot(await daemonSocket(inv), inv.env.REMUX_TOKEN)) ?? { release: () => {} };
    },
    async close() {
      await ctx?.close();
    },
  };
}

/**
 * The in-process context. TCP connections to the selected SSH hosts start first, so the servers'
 * start-up overlaps the loading of the policy engine, the audit store and ssh2 (see early-sockets.ts).
 */
async function inProcessContext(env: NodeJS.ProcessEnv, selector: string, contextOptions: { policiesWhenNeeded?: boolean; connectSignal?: AbortSignal }): Promise<GatewayContext> {
  const { hostsFile, loadInventory, select } = await import('../hosts/inventory.js');
  const { EarlySockets } = await import('../hosts/early-sockets.js');
  const earlySockets = new EarlySockets();
  try {
    for (const h of select(loadInventory(hostsFile(env), env), selector)) {
      if (h.transport === 'ssh' && h.jump === null) earlySockets.start(h.name, h.address, h.port);
    }
  } catch {
    // A bad selector or hosts.yaml is reported, with its details, by the regular path below.
  }
  try {
    return (await import('../core/context.js')).createContext({ env, earlySockets, ...contextOptions });
  } catch (err) {
    // A config.yaml, policies.yaml or audit store that does not load: no context owns the sockets, and
    // left open they kept this process alive after its error until each sshd gave up on the login (2 min).
    earlySockets.closeUnused();
    throw err;
  }
}

/** The policies file, audit store and known_hosts the environment names explicitly (a daemon refuses to run under others). */
export function explicitFiles(env: NodeJS.ProcessEnv): { policiesFile?: string; auditDb?: string; knownHosts?: string } {
  return {
    ...(envFirst(env, 'REMUX_POLICY_CONFIG', 'RPIPE_POLICY_CONFIG') ? { policiesFile: policiesFile(env) } : {}),
    ...(envFirst(env, 'REMUX_AUDIT_DB', 'RPIPE_AUDIT_LOG_DIR') ? { auditDb: auditDbFile(env) } : {}),
    ...(envFirst(env, 'REMUX_KNOWN_HOSTS', 'RPIPE_KNOWN_HOSTS') ? { knownHosts: knownHostsFile(env) } : {}),
  };
}

interface Job {
  command: string;
  /** Extra fields for --json lines (e.g. the batch file line). */
  extra?: Record<string, unknown>;
}

interface Resolved {
  cwd: string | undefined;
  timeout: number | null | undefined;
  policy: string | undefined;
  pipefail: boolean;
}

/** --timeout in ms: null for 0 (no limit), undefined when not given (the configured one applies); `remux rpc`'s too. */
export function timeoutMs(opts: { timeout?: string }): number | null | undefined {
  if (opts.timeout === undefined) return undefined;
  const seconds = Number(opts.timeout);
  // Number('') is 0: an empty value (an unset shell variable) would read as no limit at all. A timer
  // longer than Node keeps (2^31-1 ms) would fire at once: such a limit is refused, not turned into none.
  if (opts.timeout.trim() === '' || !Number.isFinite(seconds) || seconds < 0 || seconds * 1000 > MAX_TIMER_MS) {
    throw new UsageError(`--timeout must be a number of seconds up to ${Math.floor(MAX_TIMER_MS / 1000)} (about 24 days; 0 for no limit), got "${opts.timeout}"`);
  }
  return seconds === 0 ? null : seconds * 1000;
}

/** A selector naming one host (no list, label, glob or `all`) shows raw output, like ssh. */
function viewMode(selector: string, opts: RunOptions): ViewMode {
  if (opts.json) return 'json';
  if (opts.group) return 'grouped';
  return isSingleHostName(selector) ? 'single' : 'prefixed';
}

function actionFor(inv: Invocation, host: string, command: string, opts: Resolved): ExecAction {
  return {
    kind: 'exec',
    host,
    command,
    callerCwd: inv.cwd,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.policy ? { policy: opts.policy } : {}),
    ...(opts.timeout !== undefined ? { timeoutMs: opts.timeout } : {}),
    ...(opts.pipefail ? { pipefail: true } : {}),
  };
}

/**
 * Asks on the user's terminal, one question at a time; no answer within ASK_TIMEOUT_MS is `expired`, a
 * cancelled run `cancelled`. `who` is the principal the terminal's user runs remux as: the answer is theirs.
 */
export function approver(inv: Invocation, who: string, signal: AbortSignal): NonNullable<PerformIO['approve']> {
  let turn: Promise<unknown> = Promise.resolve();
  return (subject, decision) => {
    const answer = turn.then(async (): Promise<ApprovalAnswer> => {
      const deadline = AbortSignal.any([signal, AbortSignal.timeout(ASK_TIMEOUT_MS)]);
      // Shown as a listing shows it: escape sequences in a command would drive this terminal, and bidi or
      // zero-width characters make it look like another (cli/output.ts visible).
      const line = await inv.question(`remux: approval needed on ${visible(subject.host)}: ${visible(decision.reason)}\n${visible(approvalText(subject))}? [y/N] `, deadline);
      if (deadline.aborted) return signal.aborted ? 'cancelled' : 'expired';
      return { effect: /^y(es)?$/i.test(line.trim()) ? 'allow' : 'deny', by: who, via: 'terminal' };
    });
    turn = answer.catch(() => undefined);
    return answer;
  };
}

/** Who answers a policy `ask`: a terminal asks its user; anywhere else it becomes an approval (console, phone, CLI). */
export async function approverFor(inv: Invocation, ctx: GatewayContext, signal: AbortSignal): Promise<NonNullable<PerformIO['approve']>> {
  if (inv.stdinIsTTY && inv.stderrIsTTY) return approver(inv, ctx.principal.name, signal);
  const { approvalsApprover } = await import('../notify/service.js');
  return approvalsApprover(ctx.approvals, ctx.principal.name, (text) => inv.stderr.write(`remux: ${text}`), signal);
}

/** Runs jobs one after another on the hosts `selector` picks; returns the combined exit status. */
async function runJobs(
  inv: Invocation,
  runner: Runner,
  selector: string,
  jobs: Job[],
  opts: RunOptions & { stopOnError?: boolean; readsStdin?: boolean },
  onJobStart?: (job: Job, index: number) => void,
): Promise<number> {
  const mode = viewMode(selector, opts);
  const resolved: Resolved = {
    // An explicit --cwd applies on every host; otherwise only the local host starts in the caller's directory.
    cwd: opts.cwd ? resolve(inv.cwd, opts.cwd) : undefined,
    timeout: timeoutMs(opts),
    policy: opts.policy,
    pipefail: opts.pipefail === true,
  };
  const exits: number[] = [];
  // A batch denied line after line says how to see why once per distinct hint, not once per line.
  const hintsShown = new Set<string>();
  try {
    await checkPolicyOption(await runner.context(selector), opts.policy);
    for (const [index, job] of jobs.entries()) {
      const { exit, picked } = await runJob(inv, runner, selector, job, mode, resolved, {
        admit: index === 0,
        waitWhenLimited: jobs.length > 1,
        stdin: opts.readsStdin === true,
        hintsShown,
        onStart: () => onJobStart?.(job, index),
      });
      exits.push(exit);
      // A selector that picks no host picks none for the next line either: said once, and nothing ran.
      if (exit === 130 || !picked || (opts.stopOnError && exit !== 0)) break;
    }
  } finally {
    await runner.close();
  }
  if (exits.at(-1) === 130) return 130;
  return exits.find((e) => e === EXIT.TRANSPORT) ?? exits.find((e) => e === EXIT.DENIED) ?? exits.find((e) => e !== 0) ?? EXIT.OK;
}

/** --policy NAME missing from the policies file: refused once, before any host is reached (each host of a fan-out would say it). */
export async function checkPolicyOption(ctx: GatewayContext, name: string | undefined): Promise<void> {
  if (name === undefined || ctx.policies.has(name)) return;
  const { unknownPolicyMessage } = await import('../policy/evaluate.js');
  throw new UsageError(unknownPolicyMessage(name, ctx.policies), '`remux policy list` shows each with its rules');
}

/**
 * One command on the selected hosts (`picked`: false when the selector picked none). The rate limit counts
 * requests, so a batch (one request, every line parsed before any runs) is admitted once, at its first
 * command. With `waitWhenLimited` (batches), a refusal is honoured by waiting the time it names and trying again.
 * `onStart` runs once the hosts are picked: a selection error is said before any progress line.
 */
async function runJob(
  inv: Invocation,
  runner: Runner,
  selector: string,
  job: Job,
  mode: ViewMode,
  opts: Resolved,
  { admit, waitWhenLimited, stdin, hintsShown, onStart }: { admit: boolean; waitWhenLimited: boolean; stdin: boolean; hintsShown: Set<string>; onStart: () => void },
): Promise<{ exit: number; picked: boolean }> {
  const { contextFor } = await import('../core/context.js');
  const ctx = contextFor(await runner.context(selector), inv.env);
  const { combinedExit, fanOut, selectHosts, summarize } = await import('../core/fanout.js');
  const { recordRefusal } = await import('../core/perform.js');
  const action = (host: string): ExecAction => actionFor(inv, host, job.command, opts);
  let hosts: string[];
  try {
    hosts = await selectHosts(ctx, selector, action);
  } catch (err) {
    const { name, message } = err as Error;
    if (name !== 'InventoryError' && name !== 'ScopeError') throw err;
    inv.stderr.write(`remux: ${message}\n`);
    return { exit: name === 'ScopeError' ? EXIT.DENIED : selectionFailureExit(selector), picked: false };
  }
  onStart();
  const controller = new AbortController();
  const release = inv.onInterrupt((why) => controller.abort(why));
  try {
    for (let admitted = admit ? await runner.admit(ctx) : ADMITTED; !admitted.ok; admitted = await runner.admit(ctx)) {
      const message = rateLimitedMessage(admitted.retryInMs);
      await Promise.all(hosts.map((host) => recordRefusal(ctx, action(host), 'rate_limited', EXIT.RATE_LIMITED, message)));
      if (!waitWhenLimited) {
        inv.stderr.write(`remux: ${message}\n`);
        return { exit: EXIT.RATE_LIMITED, picked: true };
      }
      await sleep(admitted.retryInMs, undefined, { signal: controller.signal }).catch(() => undefined);
      if (controller.signal.aborted) return { exit: 130, picked: true };
    }

    await ctx.registry.prepare(hosts);
    const view = createRunView(inv, mode, job.command, job.extra, hintsShown, opts.cwd);
    const approve = await approverFor(inv, ctx, controller.signal);
    view.hosts(hosts);
    const results = await fanOut(
      ctx,
      hosts,
      action,
      { onOutput: (h, s, c) => view.output(h, s, c), onResult: (h, r) => view.result(h, r) },
      {
        concurrency: ctx.config.fanout.concurrency,
        signal: controller.signal,
        ...(inv.outputFlow ? { flow: inv.outputFlow } : {}),
        // `client run` on one named host reads the caller's stdin, as ssh does; a batch's lines share none.
        ...(mode === 'single' && stdin && inv.stdin !== null ? { stdin: inv.stdin } : {}),
        approve,
      },
    );
    view.done(summarize(results.values()));
    return { exit: controller.signal.aborted ? 130 : combinedExit(results.values()), picked: true };
  } finally {
    release();
  }
}

export function runCommand(inv: Invocation, runner: Runner, selector: string, words: string[], opts: RunOptions): Promise<number> {
  // Like ssh: several words are joined by spaces, then parsed as one command string.
  return runJobs(inv, runner, selector, [{ command: words.join(' ') }], { ...opts, readsStdin: true });
}

/** Reads a commands file and parses every line first, so a bad line stops the batch before anything runs. */
export function readCommandsFile(file: string): Array<{ line: number; command: string }> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read commands file ${file}: ${(err as Error).message}`);
  }
  return parseCommandsText(text, file);
}

/** The commands of a batch, one a line (`#` comments, blank lines skipped), every line parsed; `name` is where they came from, for errors. */
export function parseCommandsText(text: string, name: string): Array<{ line: number; command: string }> {
  const lines: Array<{ line: number; command: string }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const command = raw.trim();
    if (command === '' || command.startsWith('#')) return;
    try {
      parseCommand(command);
    } catch (err) {
      if (err instanceof ParseError) throw new UsageError(`${name}:${i + 1}: ${err.message}`, 'fix that line; no command of the batch was run');
      throw err;
    }
    lines.push({ line: i + 1, command });
  });
  if (lines.length === 0) throw new UsageError(`${name} holds no commands`);
  return lines;
}

/** `-f -`: the commands come from stdin, read to its end before any runs (the commands themselves then get no stdin). */
async function readCommandsFromStdin(inv: Invocation): Promise<Array<{ line: number; command: string }>> {
  if (!inv.stdin) throw new UsageError('--commands-file - reads the commands from stdin, but nothing is piped in (stdin is a terminal or /dev/null)', 'pipe them in (remux client batch HOST -f - < cmds.txt) or name a file');
  const chunks: Buffer[] = [];
  for await (const chunk of inv.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return parseCommandsText(Buffer.concat(chunks).toString('utf8'), 'stdin');
}

export async function runBatch(inv: Invocation, runner: Runner, selector: string, opts: BatchOptions): Promise<number> {
  const lines = opts.commandsFile === '-' ? await readCommandsFromStdin(inv) : readCommandsFile(resolve(inv.cwd, opts.commandsFile));
  const jobs = lines.map(({ line, command }): Job => ({ command, extra: { line } }));
  const announce = (job: Job, index: number): void => {
    if (!opts.json) inv.stderr.write(`==> [${index + 1}/${jobs.length}] ${job.command}\n`);
  };
  return runJobs(inv, runner, selector, jobs, opts, announce);
}
