// How `client run` shows results. One host named directly: raw output, like ssh. A fan-out: every
// line prefixed with its host (or grouped per host at the end with --group), a progress line on a
// terminal, and a summary. --json: one object per host (NDJSON), output collected.
import { quoteWord } from '../command/render.js';
import type { FanoutSummary } from '../core/fanout.js';
import type { PerformResult } from '../core/types.js';
import type { Invocation } from './invocation.js';

export type ViewMode = 'single' | 'prefixed' | 'grouped' | 'json';

export interface RunView {
  hosts(names: string[]): void;
  output(host: string, stream: 'stdout' | 'stderr', chunk: Buffer): void;
  result(host: string, result: PerformResult): void;
  done(summary: FanoutSummary): void;
}

interface HostBuffers {
  stdout: Buffer[];
  stderr: Buffer[];
  /** Partial last line per stream, kept until its newline arrives (prefixed mode). */
  partial: { stdout: string; stderr: string };
}

/**
 * `hintsShown`: hints already printed by the views of the same batch; each is printed once. `cwd`: the
 * run's --cwd, which a denial's hint must pass on for policy check to look at the same paths.
 */
export function createRunView(
  inv: Invocation,
  mode: ViewMode,
  command: string,
  extra: Record<string, unknown> = {},
  hintsShown = new Set<string>(),
  cwd?: string,
): RunView {
  const buffers = new Map<string, HostBuffers>();
  const resultsByHost = new Map<string, PerformResult>();
  let order: string[] = [];
  let width = 0;
  let finished = 0;
  const progressOn = mode !== 'single' && mode !== 'json' && inv.stderrIsTTY;
  const counts = { ok: 0, failed: 0, denied: 0, unreachable: 0 };

  const bufferFor = (host: string): HostBuffers => {
    let b = buffers.get(host);
    if (!b) {
      b = { stdout: [], stderr: [], partial: { stdout: '', stderr: '' } };
      buffers.set(host, b);
    }
    return b;
  };
  const clearProgress = (): void => {
    if (progressOn) inv.stderr.write('\r\x1b[2K');
  };
  const drawProgress = (): void => {
    if (!progressOn) return;
    inv.stderr.write(
      `\r\x1b[2K[${finished}/${order.length}] ok ${counts.ok}  failed ${counts.failed}  denied ${counts.denied}  unreachable ${counts.unreachable}`,
    );
  };
  const writePrefixed = (host: string, stream: 'stdout' | 'stderr', text: string, flush: boolean): void => {
    const b = bufferFor(host);
    const lines = (b.partial[stream] + text).split('\n');
    b.partial[stream] = flush ? '' : (lines.pop() ?? '');
    const body = lines.filter((l, i) => !(flush && i === lines.length - 1 && l === '')).map((l) => `${host.padEnd(width)} | ${l}\n`).join('');
    if (body === '') return;
    clearProgress();
    (stream === 'stdout' ? inv.stdout : inv.stderr).write(body);
    drawProgress();
  };

  return {
    hosts(names) {
      order = names;
      width = Math.max(0, ...names.map((n) => n.length));
      drawProgress();
    },
    output(host, stream, chunk) {
      if (mode === 'single') (stream === 'stdout' ? inv.stdout : inv.stderr).write(chunk);
      else if (mode === 'prefixed') writePrefixed(host, stream, chunk.toString('utf8'), false);
      else bufferFor(host)[stream].push(chunk);
    },
    result(host, result) {
      finished++;
      if (result.outcome === 'ok') counts.ok++;
      else if (result.outcome === 'denied' || result.outcome === 'rejected' || result.outcome === 'rate_limited') counts.denied++;
      else if (result.outcome === 'unreachable') counts.unreachable++;
      else counts.failed++;

      if (mode === 'json') {
        const b = bufferFor(host);
        inv.stdout.write(`${JSON.stringify({ ...extra, ...resultJson(host, command, result, b.stdout, b.stderr) })}\n`);
        buffers.delete(host);
      } else if (mode === 'single') {
        reportProblem(inv, result, null, command, hintsShown, cwd);
      } else if (mode === 'prefixed') {
        writePrefixed(host, 'stdout', '', true);
        writePrefixed(host, 'stderr', '', true);
        clearProgress();
        reportProblem(inv, result, host, command, hintsShown);
        drawProgress();
      } else {
        // grouped: results arrive in any order; printed per host in done(), so the progress line is all there is meanwhile.
        bufferFor(host);
        resultsByHost.set(host, result);
        drawProgress();
      }
    },
    done(summary) {
      clearProgress();
      if (mode === 'grouped') {
        for (const host of order) {
          const b = buffers.get(host);
          const r = resultsByHost.get(host);
          inv.stdout.write(`── ${host} ── ${r ? describe(r) : 'no result'}\n`);
          if (b) {
            inv.stdout.write(Buffer.concat(b.stdout));
            inv.stderr.write(Buffer.concat(b.stderr));
          }
          if (r?.message && r.outcome !== 'ok') inv.stdout.write(`   ${r.message}\n`);
        }
      }
      if (mode === 'prefixed' || mode === 'grouped') {
        inv.stderr.write(
          `${summary.total} host${summary.total === 1 ? '' : 's'}: ${summary.ok} ok, ${summary.failed} failed, ${summary.denied} denied, ${summary.unreachable} unreachable\n`,
        );
      }
    },
  };
}

function describe(r: PerformResult): string {
  if (r.outcome === 'ok') return 'ok';
  if (r.outcome === 'failed') return `exit ${r.exitCode}`;
  return `${r.outcome} (exit ${r.exitCode})`;
}

function reportProblem(inv: Invocation, result: PerformResult, host: string | null, command: string, hintsShown: Set<string>, cwd?: string): void {
  const where = host ? `${host}: ` : '';
  if (result.outcome === 'ok' || result.outcome === 'failed') {
    if (result.message) inv.stderr.write(`remux: ${where}${result.message}\n`);
    return;
  }
  const label = result.outcome === 'rate_limited' ? 'rate limited' : result.outcome;
  inv.stderr.write(`remux: ${where}${label}: ${result.message ?? ''}\n`);
  if (result.outcome === 'denied' && host === null) {
    const at = cwd === undefined ? '' : ` --cwd ${quoteWord(cwd)}`;
    const hint = `hint: see why with \`remux policy check ${result.decision?.policy ?? 'POLICY'}${at} -- ${quoteWord(command)}\`\n`;
    if (!hintsShown.has(hint)) inv.stderr.write(hint);
    hintsShown.add(hint);
  }
}

export function resultJson(host: string, command: string, result: PerformResult, stdout: Buffer[], stderr: Buffer[]): Record<string, unknown> {
  return {
    host,
    command,
    outcome: result.outcome,
    exitCode: result.exitCode,
    stdout: Buffer.concat(stdout).toString('utf8'),
    stderr: Buffer.concat(stderr).toString('utf8'),
    message: result.message,
    decision: result.decision
      ? {
          effect: result.decision.effect,
          policy: result.decision.policy,
          reason: result.decision.reason,
          rule: result.decision.rule,
          enforcement: result.decision.sandbox ? 'sandbox' : 'static checks only',
          // Stages (0-based, as policy check --json's bounds) that a rule with sandbox: false let out of it: ps, df.
          outside: result.decision.sandbox ? result.decision.bounds.filter((b) => b.outside !== undefined).map((b) => b.stage) : [],
        }
      : null,
    durationMs: Math.round(result.durationMs * 10) / 10,
    truncated: result.truncated,
    timedOut: result.timedOut,
    auditId: result.actionId,
  };
}
