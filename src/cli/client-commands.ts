// `remux client run` and `remux client batch`: build the request, send it to the daemon when one is
// running (warm pooled connections) or run it in-process (cold connections) through the same
// fanOut() -> perform() path, and render the results.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { setTimeout as sleep } from 'node:timers/promises';
// Only what the daemon path needs is imported up front; the in-process machinery (policy engine,
// audit store, SSH) loads when there is no daemon, keeping a warm `client run` light.
import { parseCommand } from '../command/parser.js';
import { ParseError } from '../command/types.js';
import { auditDbFile, envFirst, policiesFile, socketFileFast } from '../config/paths.js';
import type { GatewayContext } from '../core/context.js';
import { EXIT } from '../core/exit-codes.js';
import type { ApprovalAnswer, ExecAction, PerformResult } from '../core/types.js';
import { DaemonClient } from '../gateway/client.js';
import { isSingleHostName, selectionFailureExit } from '../hosts/selectors.js';
import type { BatchOptions, RunOptions } from './commands/client.js';
import { UsageError } from './output.js';
import { createRunView, type ViewMode } from './run-view.js';

interface Job {
  command: string;
  /** Extra fields for --json lines (e.g. the batch file line). */
  extra?: Record<string, unknown>;
}

function timeoutMs(opts: RunOptions): number | null | undefined {
  if (opts.timeout === undefined) return undefined;
  const seconds = Number(opts.timeout);
  if (!Number.isFinite(seconds) || seconds < 0) throw new UsageError(`--timeout must be a number of seconds, got "${opts.timeout}"`);
  return seconds === 0 ? null : seconds * 1000;
}

/** A selector naming one host (no list, label, glob or `all`) shows raw output, like ssh. */
function viewMode(selector: string, opts: RunOptions): ViewMode {
  if (opts.json) return 'json';
  if (opts.group) return 'grouped';
  return isSingleHostName(selector) ? 'single' : 'prefixed';
}

async function askOnTerminal(host: string, command: string, reason: string): Promise<ApprovalAnswer> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`remux: approval needed on ${host}: ${reason}\nrun \`${command}\`? [y/N] `);
    return /^y(es)?$/i.test(answer.trim()) ? 'allow' : 'deny';
  } finally {
    rl.close();
  }
}

const interactive = (): boolean => process.stdin.isTTY === true && process.stderr.isTTY === true;

/** Ctrl-C cancels the running command (its whole process group, locally or remotely); a second Ctrl-C exits at once. */
function onInterrupt(cancel: () => void): () => void {
  let pressed = false;
  const handler = (): void => {
    if (pressed) process.exit(130);
    pressed = true;
    cancel();
  };
  process.on('SIGINT', handler);
  return () => process.off('SIGINT', handler);
}

/** Runs jobs one after another on the hosts `selector` picks; returns the combined exit status. */
async function runJobs(
  selector: string,
  jobs: Job[],
  opts: RunOptions & { stopOnError?: boolean },
  onJobStart?: (job: Job, index: number) => void,
): Promise<number> {
  const mode = viewMode(selector, opts);
  const timeout = timeoutMs(opts);
  // An explicit --cwd applies on every host; otherwise only the local host starts in our directory.
  const cwd = opts.cwd ? resolve(opts.cwd) : undefined;
  const socket = await socketFileFast(process.env, async () => (await import('../config/config.js')).loadConfig().config.daemon.socket);
  const daemon = opts.daemon === false ? null : await DaemonClient.connect(socket);
  let ctx: GatewayContext | null = null;
  const exits: number[] = [];
  try {
    for (const [index, job] of jobs.entries()) {
      onJobStart?.(job, index);
      const exit = daemon
        ? await viaDaemon(daemon, selector, job, mode, { ...opts, cwd, timeout }, jobs.length > 1)
        : await inProcess((ctx ??= await inProcessContext(selector)), selector, job, mode, { ...opts, cwd, timeout });
      exits.push(exit);
      if (exit === 130 || (opts.stopOnError && exit !== 0)) break;
    }
  } finally {
    daemon?.close();
    await ctx?.close();
  }
  if (exits.at(-1) === 130) return 130;
  return exits.find((e) => e === EXIT.TRANSPORT) ?? exits.find((e) => e === EXIT.DENIED) ?? exits.find((e) => e !== 0) ?? EXIT.OK;
}

/**
 * The in-process context. TCP connections to the selected SSH hosts start first, so the servers'
 * start-up overlaps the loading of the policy engine, the audit store and ssh2 (see early-sockets.ts).
 */
async function inProcessContext(selector: string): Promise<GatewayContext> {
  const { hostsFile, loadInventory, select } = await import('../hosts/inventory.js');
  const { EarlySockets } = await import('../hosts/early-sockets.js');
  const earlySockets = new EarlySockets();
  try {
    for (const h of select(loadInventory(hostsFile()), selector)) {
      if (h.transport === 'ssh' && h.jump === null) earlySockets.start(h.name, h.address, h.port);
    }
  } catch {
    // A bad selector or hosts.yaml is reported, with its details, by the regular path below.
  }
  return (await import('../core/context.js')).createContext({ earlySockets });
}

interface Resolved extends Omit<RunOptions, 'cwd' | 'timeout'> {
  cwd: string | undefined;
  timeout: number | null | undefined;
}

function actionFor(host: string, command: string, opts: Resolved): ExecAction {
  return {
    kind: 'exec',
    host,
    command,
    callerCwd: process.cwd(),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.policy ? { policy: opts.policy } : {}),
    ...(opts.timeout !== undefined ? { timeoutMs: opts.timeout } : {}),
    ...(opts.pipefail ? { pipefail: true } : {}),
  };
}

async function inProcess(ctx: GatewayContext, selector: string, job: Job, mode: ViewMode, opts: Resolved): Promise<number> {
  const { combinedExit, fanOut, summarize } = await import('../core/fanout.js');
  let hosts: string[];
  try {
    hosts = ctx.registry.select(selector);
  } catch (err) {
    if ((err as Error).name !== 'InventoryError') throw err;
    process.stderr.write(`remux: ${(err as Error).message}\n`);
    return selectionFailureExit(selector);
  }
  await ctx.registry.prepare(hosts);
  const view = createRunView(mode, job.command, job.extra);
  const controller = new AbortController();
  const release = onInterrupt(() => controller.abort());
  try {
    view.hosts(hosts);
    const results = await fanOut(
      ctx,
      hosts,
      (host) => actionFor(host, job.command, opts),
      { onOutput: (h, s, c) => view.output(h, s, c), onResult: (h, r) => view.result(h, r) },
      {
        concurrency: ctx.config.fanout.concurrency,
        signal: controller.signal,
        ...(interactive() ? { approve: (action, decision) => askOnTerminal(action.host, action.command, decision.reason) } : {}),
      },
    );
    view.done(summarize(results.values()));
    return controller.signal.aborted ? 130 : combinedExit(results.values());
  } finally {
    release();
  }
}

/** The policies file and audit store this environment names explicitly, for the daemon to check against its own. */
function explicitFiles(): { policiesFile?: string; auditDb?: string } {
  return {
    ...(envFirst(process.env, 'REMUX_POLICY_CONFIG', 'RPIPE_POLICY_CONFIG') ? { policiesFile: policiesFile() } : {}),
    ...(envFirst(process.env, 'REMUX_AUDIT_DB', 'RPIPE_AUDIT_LOG_DIR') ? { auditDb: auditDbFile() } : {}),
  };
}

/**
 * Runs one job through the daemon. With `waitWhenLimited` (batches), a rate-limit refusal is honoured
 * by waiting the time the daemon names and asking again, instead of failing the job.
 */
async function viaDaemon(daemon: DaemonClient, selector: string, job: Job, mode: ViewMode, opts: Resolved, waitWhenLimited: boolean): Promise<number> {
  for (;;) {
    const outcome = await viaDaemonOnce(daemon, selector, job, mode, opts, waitWhenLimited);
    if (outcome.retryInMs === null) return outcome.exit;
    await sleep(outcome.retryInMs);
  }
}

async function viaDaemonOnce(
  daemon: DaemonClient,
  selector: string,
  job: Job,
  mode: ViewMode,
  opts: Resolved,
  waitWhenLimited: boolean,
): Promise<{ exit: number; retryInMs: number | null }> {
  const view = createRunView(mode, job.command, job.extra);
  let exit: number = EXIT.FAILURE;
  let retryInMs: number | null = null;
  let interrupted = false;
  const results: PerformResult[] = [];
  const request = daemon.request(
    {
      type: 'run',
      selector,
      command: job.command,
      callerCwd: process.cwd(),
      expect: explicitFiles(),
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      interactive: interactive(),
      ...(opts.policy ? { policy: opts.policy } : {}),
      ...(opts.timeout !== undefined ? { timeoutMs: opts.timeout } : {}),
      ...(opts.pipefail ? { pipefail: true } : {}),
    },
    (event) => {
      switch (event.type) {
        case 'hosts':
          return view.hosts(event.hosts);
        case 'out':
          return view.output(event.host, event.stream, Buffer.from(event.data, 'base64'));
        case 'result':
          results.push(event.result);
          return view.result(event.host, event.result);
        case 'done':
          view.done(event.summary);
          exit = event.exitCode;
          return;
        case 'ask':
          void askOnTerminal(event.host, event.command, event.reason).then((answer) =>
            daemon.send({ id: 0, type: 'approve', ref: event.id, askId: event.askId, answer }),
          );
          return;
        case 'error':
          if (waitWhenLimited && event.exitCode === EXIT.RATE_LIMITED && event.retryInMs !== undefined) {
            retryInMs = event.retryInMs;
            return;
          }
          process.stderr.write(`remux: ${event.message}\n`);
          if (event.hint) process.stderr.write(`hint: ${event.hint}\n`);
          exit = event.exitCode;
          return;
        default:
          return;
      }
    },
    (event) => event.type === 'done' || event.type === 'error',
  );
  const release = onInterrupt(() => {
    interrupted = true;
    daemon.send({ id: 0, type: 'cancel', ref: request.id });
  });
  try {
    await request.done;
  } finally {
    release();
  }
  if (interrupted) return { exit: 130, retryInMs: null };
  return { exit, retryInMs };
}

export async function runCommand(selector: string, words: string[], opts: RunOptions): Promise<void> {
  // Like ssh: several words are joined by spaces, then parsed as one command string.
  process.exitCode = await runJobs(selector, [{ command: words.join(' ') }], opts);
}

/** Reads a commands file and parses every line first, so a bad line stops the batch before anything runs. */
export function readCommandsFile(file: string): Array<{ line: number; command: string }> {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read commands file ${path}: ${(err as Error).message}`);
  }
  const lines: Array<{ line: number; command: string }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const command = raw.trim();
    if (command === '' || command.startsWith('#')) return;
    try {
      parseCommand(command);
    } catch (err) {
      if (err instanceof ParseError) throw new UsageError(`${path}:${i + 1}: ${err.message}`, 'fix that line; no command of the batch was run');
      throw err;
    }
    lines.push({ line: i + 1, command });
  });
  if (lines.length === 0) throw new UsageError(`${path} holds no commands`);
  return lines;
}

export async function runBatch(selector: string, opts: BatchOptions): Promise<void> {
  const lines = readCommandsFile(opts.commandsFile);
  const jobs = lines.map(({ line, command }): Job => ({ command, extra: { line } }));
  const announce = (job: Job, index: number): void => {
    if (!opts.json) process.stderr.write(`==> [${index + 1}/${jobs.length}] ${job.command}\n`);
  };
  process.exitCode = await runJobs(selector, jobs, opts, announce);
}
