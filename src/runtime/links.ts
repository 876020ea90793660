// Runtime links to SSH hosts kept idle for a while after their RuntimeHost is closed, per context, so the
// next connect() to the host (the next fan-out) skips the channel, the interpreter's start and the
// bootstrap, as Mitogen keeps its contexts. Only a quiet link is kept (no call was running when it was
// closed: closing cancels running calls by ending the interpreter, as before); a kept link holds one
// channel of the host's pooled SSH connection and its interpreter until it is reused or IDLE_MS pass.
// Its lookups (programs, file paths) stay with it, each within its own lifetime, so a warm fan-out asks
// the host no more than a host held connected does.
import type { WhichCache } from '../hosts/remote-resolver.js';
import type { Link } from './link.js';
import type { ResolvedPaths } from './resolved.js';

const IDLE_MS = 30_000;
/** Kept per host and interpreter at most (several connect()s to one host at once each had their own). */
const MAX_IDLE = 4;

/** What a runtime connection learnt of its host (guard.ts Guard), kept with its link. */
export interface HostLookups {
  whichCache: WhichCache;
  resolvedPaths: ResolvedPaths;
}

export interface KeptLink {
  link: Link;
  lookups: HostLookups;
}

type Idle = Map<string, Array<KeptLink & { timer: NodeJS.Timeout }>>;
const byContext = new WeakMap<object, Idle>();

/** A kept, still working link for `key` in `context`, with its lookups, or null. */
export function takeIdle(context: object, key: string): KeptLink | null {
  const kept = byContext.get(context)?.get(key);
  for (let next = kept?.pop(); next; next = kept?.pop()) {
    clearTimeout(next.timer);
    if (!next.link.closed) return { link: next.link, lookups: next.lookups };
  }
  return null;
}

/** Keeps `link` for the next connect() of `key`, or ends it when it is busy, broken or one too many. */
export function keepIdle(context: object, key: string, { link, lookups }: KeptLink): void {
  let idle = byContext.get(context);
  if (!idle) byContext.set(context, (idle = new Map()));
  const kept = idle.get(key) ?? [];
  if (link.closed || link.busy || kept.length >= MAX_IDLE) return link.close();
  link.onLog = undefined;
  const timer = setTimeout(() => {
    const i = kept.findIndex((k) => k.link === link);
    if (i >= 0) kept.splice(i, 1);
    link.close();
  }, IDLE_MS);
  // A kept link never keeps the process alive.
  timer.unref();
  kept.push({ link, lookups, timer });
  idle.set(key, kept);
}

/** Ends every link kept for `context` (it is being closed). */
export function closeIdle(context: object): void {
  const idle = byContext.get(context);
  byContext.delete(context);
  for (const kept of idle?.values() ?? []) {
    for (const { link, timer } of kept) {
      clearTimeout(timer);
      link.close();
    }
  }
}
