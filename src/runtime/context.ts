// The context an SDK user gets without building one: the CLI's own (core/context.ts createContext,
// then contextFor), from $REMUX_HOME — inventory, policies, the local user as admin (or REMUX_TOKEN's
// principal), the audit store. One per process, shared by every connect() and fanout() that did not
// bring their own, and closed (its SSH connections, kept runtimes, the audit store) on the turn of the
// event loop after the last of them lets go: calls made back to back (a loop of fanout()s) stay warm,
// and a script still ends by itself.
import { contextFor, createContext, type GatewayContext } from '../core/context.js';
import { closeIdle } from './links.js';

let shared: { ctx: GatewayContext; users: number; closing: NodeJS.Timeout | null } | null = null;

/** The shared context, created on first use; each acquire() is matched by one release(). */
export function acquireDefaultContext(env: NodeJS.ProcessEnv = process.env): GatewayContext {
  if (!shared) {
    const base = createContext({ env });
    try {
      shared = { ctx: contextFor(base, env), users: 0, closing: null };
    } catch (err) {
      void base.close();
      throw err;
    }
  }
  if (shared.closing) clearTimeout(shared.closing);
  shared.closing = null;
  shared.users++;
  return shared.ctx;
}

export function releaseDefaultContext(ctx: GatewayContext): Promise<void> {
  const s = shared;
  if (!s || s.ctx !== ctx || --s.users > 0) return Promise.resolve();
  s.closing = setTimeout(() => {
    if (shared === s) shared = null;
    closeIdle(ctx);
    // The base context behind contextFor's prototype link: closing either closes the same things.
    ctx.close().catch((err: unknown) => process.stderr.write(`remux: closing the runtime's context: ${err instanceof Error ? err.message : String(err)}\n`));
  }, 0);
  return Promise.resolve();
}
