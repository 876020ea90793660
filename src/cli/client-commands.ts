// Implementations of `remux client run` and `remux client batch`: build Actions, call perform(), render.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseCommand } from '../command/parser.js';
import { ParseError } from '../command/types.js';
import { EXIT } from '../core/exit-codes.js';
import { perform } from '../core/perform.js';
import type { ExecAction, PerformIO, PerformResult } from '../core/types.js';
import type { Decision } from '../policy/types.js';
import type { BatchOptions, RunOptions } from './commands/client.js';
import { loadContext } from './context.js';
import { printJsonLine, UsageError } from './output.js';

function timeoutMs(opts: RunOptions): number | null | undefined {
  if (opts.timeout === undefined) return undefined;
  const seconds = Number(opts.timeout);
  if (!Number.isFinite(seconds) || seconds < 0) throw new UsageError(`--timeout must be a number of seconds, got "${opts.timeout}"`);
  return seconds === 0 ? null : seconds * 1000;
}

function actionFor(host: string, command: string, opts: RunOptions): ExecAction {
  const timeout = timeoutMs(opts);
  return {
    kind: 'exec',
    host,
    command,
    ...(opts.policy ? { policy: opts.policy } : {}),
    ...(opts.cwd ? { cwd: resolve(opts.cwd) } : {}),
    ...(timeout !== undefined ? { timeoutMs: timeout } : {}),
    ...(opts.pipefail ? { pipefail: true } : {}),
  };
}

/** Asks on the terminal when the policy says `ask`; without a terminal there is no approver (deny). */
function terminalApprover(): PerformIO['approve'] {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return undefined;
  return async (action, decision: Decision) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      const answer = await rl.question(`remux: approval needed on ${action.host}: ${decision.reason}\nrun \`${action.command}\`? [y/N] `);
      return /^y(es)?$/i.test(answer.trim()) ? 'allow' : 'deny';
    } finally {
      rl.close();
    }
  };
}

/** Ctrl-C cancels the running command (its whole process group); a second Ctrl-C exits at once. */
function interruptSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onInt = (): void => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onInt);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', onInt) };
}

function jsonResult(host: string, command: string, result: PerformResult, stdout: Buffer[], stderr: Buffer[]): Record<string, unknown> {
  return {
    host,
    command,
    outcome: result.outcome,
    exitCode: result.exitCode,
    stdout: Buffer.concat(stdout).toString('utf8'),
    stderr: Buffer.concat(stderr).toString('utf8'),
    message: result.message,
    decision: result.decision
      ? { effect: result.decision.effect, policy: result.decision.policy, reason: result.decision.reason, rule: result.decision.rule }
      : null,
    durationMs: Math.round(result.durationMs * 10) / 10,
    truncated: result.truncated,
    timedOut: result.timedOut,
    auditId: result.actionId,
  };
}

function reportRefusal(result: PerformResult): void {
  if (result.outcome === 'ok' || result.outcome === 'failed') {
    if (result.message) process.stderr.write(`remux: ${result.message}\n`);
    return;
  }
  const label = result.outcome === 'denied' ? 'denied' : result.outcome === 'unreachable' ? 'unreachable' : 'rejected';
  process.stderr.write(`remux: ${label}: ${result.message ?? ''}\n`);
  if (result.outcome === 'denied') process.stderr.write(`hint: see why with \`remux policy check ${result.decision?.policy ?? 'POLICY'} -- '…'\`\n`);
}

/** Runs one command through perform(), streaming output unless --json collects it. */
async function runOne(ctx: ReturnType<typeof loadContext>, action: ExecAction, opts: RunOptions, extra: Record<string, unknown> = {}): Promise<PerformResult> {
  const interrupt = interruptSignal();
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  try {
    const result = await perform(ctx, action, {
      onStdout: (c) => (opts.json ? stdout.push(c) : process.stdout.write(c)),
      onStderr: (c) => (opts.json ? stderr.push(c) : process.stderr.write(c)),
      signal: interrupt.signal,
      stdin: process.stdin.isTTY ? null : process.stdin,
      approve: terminalApprover(),
    });
    if (opts.json) printJsonLine({ ...extra, ...jsonResult(action.host, action.command, result, stdout, stderr) });
    else reportRefusal(result);
    if (interrupt.signal.aborted) result.exitCode = 130;
    return result;
  } finally {
    interrupt.dispose();
  }
}

export async function runCommand(host: string, words: string[], opts: RunOptions): Promise<void> {
  // Like ssh: several words are joined by spaces, then parsed as one command string.
  const command = words.join(' ');
  const ctx = loadContext();
  try {
    const result = await runOne(ctx, actionFor(host, command, opts), opts);
    process.exitCode = result.exitCode;
  } finally {
    ctx.close();
  }
}

interface BatchLine {
  line: number;
  command: string;
}

/** Reads a commands file and parses every line first, so a bad line stops the batch before anything runs. */
export function readCommandsFile(file: string): BatchLine[] {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read commands file ${path}: ${(err as Error).message}`);
  }
  const lines: BatchLine[] = [];
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

/** Exit status of several results: 0 if all succeeded, else the most serious kind of failure. */
export function combinedExit(results: PerformResult[]): number {
  if (results.every((r) => r.exitCode === 0)) return EXIT.OK;
  if (results.some((r) => r.outcome === 'unreachable')) return EXIT.TRANSPORT;
  if (results.some((r) => r.outcome === 'denied')) return EXIT.DENIED;
  if (results.some((r) => r.outcome === 'rejected')) return EXIT.USAGE;
  return EXIT.FAILURE;
}

export async function runBatch(host: string, opts: BatchOptions): Promise<void> {
  const lines = readCommandsFile(opts.commandsFile);
  const ctx = loadContext();
  const results: PerformResult[] = [];
  try {
    for (const [i, { line, command }] of lines.entries()) {
      if (!opts.json) process.stderr.write(`==> [${i + 1}/${lines.length}] ${command}\n`);
      const result = await runOne(ctx, actionFor(host, command, opts), opts, { line });
      results.push(result);
      if (result.exitCode === 130) break;
      if (opts.stopOnError && result.exitCode !== 0) break;
    }
  } finally {
    ctx.close();
  }
  const last = results.at(-1);
  process.exitCode = last?.exitCode === 130 ? 130 : combinedExit(results);
}
