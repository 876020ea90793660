// fanout(selector, fn): one runtime connection per host a selector picks, `fn` run on each, at most
// `concurrency` hosts at once (core/fanout.ts's bounded loop), every host independent: one failing never
// stops the others. Each host's outcome is a HostResult; a summary counts them. `remux rpc` with a
// selector is this.
//
//   const results = await fanout('env=prod', (h) => h.call(FileSystem.readText, '/etc/hostname'));
//   for (const r of results) console.log(r.host, r.ok ? r.value : r.error.message);
//   results.summary   // { total, ok, changed, failed, denied, unreachable }
import { eachBounded } from '../core/fanout.js';
import { isSingleHostName } from '../hosts/selectors.js';
import { acquireDefaultContext, releaseDefaultContext } from './context.js';
import { ArgumentError, DeniedError, ProtocolError } from './errors.js';
import { connect, type ConnectOptions, type RuntimeContext, type RuntimeHost } from './index.js';
import type { LogRecord } from './link.js';

/** Why a host has no value: the call failed there, the policy (or scope, or an approver) refused it, or the host could not be reached. */
export type HostFailure = 'failed' | 'denied' | 'unreachable';

export type HostResult<T> = { host: string; ok: true; value: T } | { host: string; ok: false; kind: HostFailure; error: Error };

export interface FanoutSummary {
  total: number;
  ok: number;
  /** Of the ok ones, those whose value says `changed: true`. */
  changed: number;
  failed: number;
  denied: number;
  unreachable: number;
}

/** Every host's result, in the order the selector listed the hosts, and their summary. */
export type FanoutResults<T> = Array<HostResult<T>> & { summary: FanoutSummary };

/** Fewer than this when neither the option nor the config (fanout.concurrency) says. */
const DEFAULT_CONCURRENCY = 32;

export interface FanoutOptions extends Omit<ConnectOptions, 'onLog'> {
  /** Hosts worked on at once; default: the config's fanout.concurrency (32). */
  concurrency?: number;
  /** Each host's result as it is known (done of total so far). */
  onProgress?(result: HostResult<unknown>, done: number, total: number): void;
  /** A remote tool's log record, with the host it came from. */
  onLog?(host: string, record: LogRecord): void;
}

export async function fanout<T>(selector: string, fn: (host: RuntimeHost) => Promise<T>, opts: FanoutOptions = {}): Promise<FanoutResults<T>> {
  // Plain JavaScript can pass anything; NaN would start no host at all.
  if (opts.concurrency !== undefined && !(Number.isInteger(opts.concurrency) && opts.concurrency >= 1)) {
    throw new ArgumentError(`fanout("${selector}"): concurrency is how many hosts are worked on at once, a whole number from 1; got ${String(opts.concurrency)}`);
  }
  const own = opts.context ? null : acquireDefaultContext();
  const context: RuntimeContext = opts.context ?? (own as RuntimeContext);
  try {
    const hosts = selectHosts(context, selector);
    const byHost = new Map<string, HostResult<T>>();
    await eachBounded(hosts, opts.concurrency ?? context.config?.fanout.concurrency ?? DEFAULT_CONCURRENCY, async (name) => {
      const result = await onHost(name, fn, { ...opts, context });
      byHost.set(name, result);
      opts.onProgress?.(result, byHost.size, hosts.length);
    });
    const results = hosts.map((h) => byHost.get(h) as HostResult<T>);
    return Object.assign(results, { summary: summarize(results) });
  } finally {
    if (own) await releaseDefaultContext(own);
  }
}

/**
 * One host name as itself (its scope is checked, and audited, with the call); else the selector's hosts in
 * the principal's scope. Either way an inventory that does not load (hosts.yaml:LINE) is the caller's to
 * fix, thrown here as a selector's is, never one host's failure to be reached.
 */
function selectHosts(context: RuntimeContext, selector: string): string[] {
  if (isSingleHostName(selector)) {
    context.hostEntry(selector);
    return [selector];
  }
  if (!context.registry) throw new TypeError(`fanout("${selector}"): the context has no inventory to select hosts from (give one with a registry, or no context)`);
  return context.registry.select(selector, context.principal);
}

async function onHost<T>(name: string, fn: (host: RuntimeHost) => Promise<T>, opts: FanoutOptions & { context: RuntimeContext }): Promise<HostResult<T>> {
  const { onLog, ...connectOpts } = opts;
  let host: RuntimeHost;
  try {
    host = await connect(name, { ...connectOpts, ...(onLog ? { onLog: (r: LogRecord) => onLog(name, r) } : {}) });
  } catch (err) {
    // Refused before it started (another interpreter the policy does not allow), or not reached.
    return { host: name, ok: false, kind: err instanceof DeniedError ? 'denied' : 'unreachable', error: asError(err) };
  }
  try {
    return { host: name, ok: true, value: await fn(host) };
  } catch (err) {
    return { host: name, ok: false, kind: failureKind(err), error: asError(err) };
  } finally {
    await host.close();
  }
}

export function failureKind(err: unknown): HostFailure {
  if (err instanceof DeniedError) return 'denied';
  if (err instanceof ProtocolError) return 'unreachable';
  return 'failed';
}

export function summarize(results: ReadonlyArray<HostResult<unknown>>): FanoutSummary {
  const s: FanoutSummary = { total: results.length, ok: 0, changed: 0, failed: 0, denied: 0, unreachable: 0 };
  for (const r of results) {
    if (!r.ok) s[r.kind]++;
    else {
      s.ok++;
      if (typeof r.value === 'object' && r.value !== null && (r.value as { changed?: unknown }).changed === true) s.changed++;
    }
  }
  return s;
}

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));
