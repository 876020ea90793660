// What `remux hosts list --json` and the HTTP API's GET /api/hosts show about hosts: inventory, live
// connection state (from the daemon's pool, or for agent hosts its relay) and how commands are enforced there.
import type { GatewayContext } from '../core/context.js';
import type { HostStatus } from '../gateway/protocol.js';
import type { SandboxSupport } from '../exec/types.js';
import type { Enforcement } from './describe.js';
import type { HostEntry } from './inventory.js';
import { createLocalHost } from './local.js';

export function enforcement(support: SandboxSupport | null, unknownWhy: string): Enforcement {
  if (support === null) return { mode: 'unknown', detail: unknownWhy, warning: null };
  if (support.available) return { mode: 'sandbox', detail: support.detail, warning: support.warning ?? null };
  return { mode: support.staticFallback ? 'static' : 'none', detail: support.detail, warning: null };
}

/** What is known without connecting: this machine is probed here; SSH hosts only through the daemon's connections. */
async function knownEnforcement(h: HostEntry, live: HostStatus | undefined, securePath: string): Promise<Enforcement> {
  // Only its sandbox support is asked: no command runs, so no socket needs hiding.
  if (h.transport === 'local') return enforcement(await createLocalHost(h.name, securePath, undefined).sandboxSupport(), '');
  if (!live?.connected) return enforcement(null, 'not connected');
  return enforcement(live.sandbox, 'not probed yet: no sandboxed command ran on this connection');
}

/** One row per host; `live` is the daemon's connection state, null when no daemon runs. */
export async function hostRows(hosts: readonly HostEntry[], live: ReadonlyMap<string, HostStatus> | null, securePath: string) {
  const enforcements = await Promise.all(hosts.map((h) => knownEnforcement(h, live?.get(h.name), securePath)));
  return hosts.map((h, i) => {
    const s = live?.get(h.name);
    return {
      name: h.name,
      transport: h.transport,
      address: h.transport === 'ssh' ? h.address : (s?.address ?? null),
      port: h.transport === 'ssh' ? h.port : null,
      user: h.transport === 'ssh' ? h.user : null,
      jump: h.transport === 'ssh' ? h.jump : null,
      labels: h.labels,
      daemon: live !== null,
      connected: s?.connected ?? h.transport === 'local',
      breaker: s?.breaker?.state ?? null,
      // To 0.01 ms: the measured float (5.784399000000008) says nothing more.
      lastRttMs: s?.lastRttMs == null ? null : Math.round(s.lastRttMs * 100) / 100,
      // The breaker keeps its last failure's error after the host recovers: shown only while failures are current.
      lastError: s?.lastError ?? (s?.breaker && (s.breaker.consecutiveFailures > 0 || s.breaker.state !== 'closed') ? s.breaker.lastError : null),
      /** Agent hosts: since when connected (or disconnected). */
      since: s?.since ?? null,
      enforcement: enforcements[i]!,
    };
  });
}

/** The daemon's view of every inventory host: its pooled connection's state (empty when hosts.yaml is broken). */
export function hostStatuses(ctx: GatewayContext): HostStatus[] {
  const pool = new Map(ctx.registry.poolStatus().map((s) => [s.name, s]));
  try {
    return ctx.registry.inventory().hosts.map((entry): HostStatus => {
      if (entry.transport === 'agent') return agentStatus(ctx, entry.name, entry.labels);
      const s = pool.get(entry.name);
      return {
        name: entry.name,
        address: entry.transport === 'ssh' ? entry.address : null,
        port: entry.transport === 'ssh' ? entry.port : null,
        transport: entry.transport,
        labels: entry.labels,
        connected: s?.connected ?? entry.transport === 'local',
        breaker: s ? s.breaker : null,
        lastRttMs: s?.lastRttMs ?? null,
        lastError: s?.lastError ?? null,
        activeChannels: s?.activeChannels ?? 0,
        queued: s?.queued ?? 0,
        sandbox: s?.sandbox ?? null,
      };
    });
  } catch {
    // A broken hosts.yaml must not break status; the next run request reports it with file:line.
    return [];
  }
}

/** An agent host's liveness: connected (the daemon's pings get answers), since when, the last ping's round trip. */
function agentStatus(ctx: GatewayContext, name: string, labels: Record<string, string>): HostStatus {
  const a = ctx.registry.agents.status(name);
  return {
    name,
    address: a.address,
    port: null,
    transport: 'agent',
    labels,
    connected: a.connected,
    breaker: null,
    lastRttMs: a.lastRttMs,
    lastError: a.lastError,
    activeChannels: a.inFlight,
    queued: 0,
    sandbox: a.sandbox,
    since: a.since,
  };
}
