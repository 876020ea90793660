// Runtime links to SSH hosts kept idle for a while after their RuntimeHost is closed, per context, so the
// next connect() to the host (the next fan-out) skips the channel, the interpreter's start and the
// bootstrap, as Mitogen keeps its contexts. Only a quiet link is kept (no call was running when it was
// closed: closing cancels running calls by ending the interpreter, as before); a kept link holds one
// channel of the host's pooled SSH connection and its interpreter until it is reused or IDLE_MS pass.
import type { Link } from './link.js';

const IDLE_MS = 30_000;
/** Kept per host and interpreter at most (several connect()s to one host at once each had their own). */
const MAX_IDLE = 4;

type Idle = Map<string, Array<{ link: Link; timer: NodeJS.Timeout }>>;
const byContext = new WeakMap<object, Idle>();

/** A kept, still working link for `key` in `context`, or null. */
export function takeIdle(context: object, key: string): Link | null {
  const kept = byContext.get(context)?.get(key);
  for (let next = kept?.pop(); next; next = kept?.pop()) {
    clearTimeout(next.timer);
    if (!next.link.closed) return next.link;
  }
  return null;
}

/** Keeps `link` for the next connect() of `key`, or ends it when it is busy, broken or one too many. */
export function keepIdle(context: object, key: string, link: Link): void {
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
  kept.push({ link, timer });
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
