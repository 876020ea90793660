// The context an SDK user gets without building one: the CLI's own (core/context.ts createContext,
// then contextFor), from $REMUX_HOME — inventory, policies, the local user as admin (or REMUX_TOKEN's
// principal), the audit store. One per process, shared by every connect() and fanout() that did not
// bring their own, and closed (its SSH connections, the audit store) when the last of them lets go.
import { contextFor, createContext, type GatewayContext } from '../core/context.js';
import { closeIdle } from './links.js';

let shared: { ctx: GatewayContext; users: number } | null = null;

/** The shared context, created on first use; each acquire() is matched by one release(). */
export function acquireDefaultContext(env: NodeJS.ProcessEnv = process.env): GatewayContext {
  if (!shared) {
    const base = createContext({ env });
    try {
      shared = { ctx: contextFor(base, env), users: 0 };
    } catch (err) {
      void base.close();
      throw err;
    }
  }
  shared.users++;
  return shared.ctx;
}

export async function releaseDefaultContext(ctx: GatewayContext): Promise<void> {
  if (!shared || shared.ctx !== ctx) return;
  if (--shared.users > 0) return;
  shared = null;
  closeIdle(ctx);
  // The base context behind contextFor's prototype link: closing either closes the same things.
  await ctx.close();
}
