// Runs one action on many hosts: bounded concurrency, every host independent (one failing never
// cancels the others), each through perform(). Used in-process by the CLI and by the daemon.
import { setMaxListeners } from 'node:events';
import { EXIT } from './exit-codes.js';
import type { HostRegistry } from '../hosts/registry.js';
import { perform, recordRefusal, type PerformContext } from './perform.js';
import type { Action, PerformIO, PerformResult } from './types.js';

export interface FanoutEvents {
  onOutput(host: string, stream: 'stdout' | 'stderr', chunk: Buffer): void;
  onResult(host: string, result: PerformResult): void;
}

export interface FanoutOptions {
  concurrency: number;
  signal?: AbortSignal;
  approve?: PerformIO['approve'];
  /** Backpressure from where every host's output goes (they share it). */
  flow?: PerformIO['flow'];
  /** The caller's stdin: given to the command only when there is one host (one stream cannot feed several). */
  stdin?: PerformIO['stdin'];
}

export async function fanOut(
  ctx: PerformContext,
  hosts: readonly string[],
  actionFor: (host: string) => Action,
  events: FanoutEvents,
  opts: FanoutOptions,
): Promise<Map<string, PerformResult>> {
  const results = new Map<string, PerformResult>();
  // Every host's command listens on the one cancel signal: that many listeners is by design.
  if (opts.signal) setMaxListeners(0, opts.signal);
  await eachBounded(hosts, opts.concurrency, async (host) => {
    // stdin goes to a command on one host only: a fan-out gets none.
    const result = await performOne(ctx, host, actionFor(host), events, { ...opts, stdin: hosts.length === 1 ? opts.stdin : null });
    results.set(host, result);
    events.onResult(host, result);
  });
  return results;
}

/** Runs `work` on every item, at most `concurrency` at once, in order of starting; `work` must not throw. */
export async function eachBounded<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, concurrency), items.length) }, worker));
}

async function performOne(ctx: PerformContext, host: string, action: Action, events: FanoutEvents, opts: FanoutOptions): Promise<PerformResult> {
  try {
    return await perform(ctx, action, {
      onStdout: (chunk) => events.onOutput(host, 'stdout', chunk),
      onStderr: (chunk) => events.onOutput(host, 'stderr', chunk),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.approve ? { approve: opts.approve } : {}),
      ...(opts.flow ? { flow: opts.flow } : {}),
      ...(opts.stdin ? { stdin: opts.stdin } : {}),
    });
  } catch (err) {
    // perform() refuses before running when it can; anything thrown here (e.g. the audit store
    // failing) means nothing ran on this host. Report it for this host only.
    const message = err instanceof Error ? err.message : String(err);
    return { actionId: null, outcome: 'error', exitCode: EXIT.FAILURE, decision: null, message, durationMs: 0, bytesOut: 0, truncated: false, timedOut: false };
  }
}

export interface FanoutSummary {
  total: number;
  ok: number;
  failed: number;
  denied: number;
  unreachable: number;
}

export function summarize(results: Iterable<PerformResult>): FanoutSummary {
  const s: FanoutSummary = { total: 0, ok: 0, failed: 0, denied: 0, unreachable: 0 };
  for (const r of results) {
    s.total++;
    if (r.outcome === 'ok') s.ok++;
    else if (r.outcome === 'denied' || r.outcome === 'rejected' || r.outcome === 'rate_limited') s.denied++;
    else if (r.outcome === 'unreachable') s.unreachable++;
    else s.failed++;
  }
  return s;
}

/** Exit status of several results: 0 if all succeeded, else the most serious kind of failure. */
export function combinedExit(results: Iterable<PerformResult>): number {
  const all = [...results];
  if (all.every((r) => r.exitCode === 0)) return EXIT.OK;
  if (all.some((r) => r.outcome === 'unreachable')) return EXIT.TRANSPORT;
  if (all.some((r) => r.outcome === 'denied')) return EXIT.DENIED;
  if (all.some((r) => r.outcome === 'rate_limited')) return EXIT.RATE_LIMITED;
  if (all.some((r) => r.outcome === 'rejected')) return EXIT.USAGE;
  if (all.length === 1) return all[0]!.exitCode;
  return EXIT.FAILURE;
}

/**
 * The hosts `selector` picks among those the principal may use. A selector that picks none of them is
 * audited (under the selector, as perform() audits a host out of scope) and thrown as ScopeError;
 * bad syntax or, for admins, no such host throws InventoryError.
 */
export async function selectHosts(ctx: PerformContext & { registry: HostRegistry }, selector: string, actionFor: (host: string) => Action): Promise<string[]> {
  try {
    return ctx.registry.select(selector, ctx.principal);
  } catch (err) {
    if ((err as Error).name === 'ScopeError') await recordRefusal(ctx, actionFor(selector), 'denied', EXIT.DENIED, (err as Error).message);
    throw err;
  }
}
