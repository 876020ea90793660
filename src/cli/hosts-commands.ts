// Implementations of `remux hosts …`.
import { loadConfig } from '../config/config.js';
import { socketFile } from '../config/paths.js';
import { createContext } from '../core/context.js';
import { combinedExit, fanOut, summarize } from '../core/fanout.js';
import { askDaemon } from '../gateway/client.js';
import type { HostStatus } from '../gateway/protocol.js';
import { addHost, hostsFile, loadInventory, parseHostSpec, parseLabels, removeHost, type HostEntry } from '../hosts/inventory.js';
import type { AddOptions } from './commands/hosts.js';
import { printJson, printJsonLine, printTable, UsageError } from './output.js';

/** Inventory mistakes typed on the command line are usage errors (exit 2). */
function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if ((err as Error).name === 'InventoryError') throw new UsageError((err as Error).message);
    throw err;
  }
}

export function addHostCommand(name: string, spec: string, opts: AddOptions): void {
  const file = hostsFile();
  const { user, address } = usage(() => parseHostSpec(spec));
  const port = opts.port === undefined ? undefined : Number(opts.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new UsageError(`--port must be 1-65535, got "${opts.port}"`);
  const status = usage(() =>
    addHost(
      file,
      {
        name,
        address,
        ...(opts.user ?? user ? { user: opts.user ?? user } : {}),
        ...(port !== undefined ? { port } : {}),
        ...(opts.identity ? { identity: opts.identity } : {}),
        ...(opts.agent ? { agent: true } : {}),
        ...(opts.passwordEnv ? { passwordEnv: opts.passwordEnv } : {}),
        ...(opts.label ? { labels: parseLabels(opts.label) } : {}),
        ...(opts.jump ? { jump: opts.jump } : {}),
      },
      { replace: opts.replace === true },
    ),
  );
  process.stdout.write(`${status} ${name} in ${file}\n`);
  process.stdout.write(`next: remux hosts check ${name}   (its host key must be in known_hosts; --accept-new trusts a first-seen key)\n`);
}

export function removeHostCommand(name: string): void {
  const file = hostsFile();
  usage(() => removeHost(file, name));
  process.stdout.write(`removed ${name} from ${file}\n`);
}

function addressOf(h: HostEntry): string {
  if (h.transport !== 'ssh') return '(this machine)';
  const host = h.address.includes(':') ? `[${h.address}]` : h.address;
  return `${h.user}@${host}${h.port === 22 ? '' : `:${h.port}`}`;
}

/** Live connection state from a running daemon, or null when none runs. */
async function daemonHosts(): Promise<Map<string, HostStatus> | null> {
  const answer = await askDaemon(socketFile(process.env, loadConfig().config.daemon.socket), { type: 'status' });
  return answer?.type === 'status' ? new Map(answer.status.hosts.map((h) => [h.name, h])) : null;
}

export async function listHostsCommand(opts: { json?: boolean }): Promise<void> {
  const inventory = loadInventory(hostsFile());
  const live = await daemonHosts();
  const rows = inventory.hosts.map((h) => {
    const s = live?.get(h.name);
    return {
      name: h.name,
      transport: h.transport,
      address: h.transport === 'ssh' ? h.address : null,
      port: h.transport === 'ssh' ? h.port : null,
      user: h.transport === 'ssh' ? h.user : null,
      jump: h.transport === 'ssh' ? h.jump : null,
      labels: h.labels,
      daemon: live !== null,
      connected: s?.connected ?? false,
      breaker: s?.breaker?.state ?? null,
      lastRttMs: s?.lastRttMs ?? null,
      lastError: s?.lastError ?? s?.breaker?.lastError ?? null,
    };
  });
  if (opts.json) return printJson(rows);
  if (rows.length === 0) {
    process.stderr.write(`no hosts in ${inventory.file}; add one with: remux hosts add web1 ops@10.0.0.5\n`);
    return;
  }
  printTable(
    ['NAME', 'ADDRESS', 'LABELS', 'CONNECTED', 'BREAKER', 'RTT', 'LAST ERROR'],
    inventory.hosts.map((h, i) => {
      const r = rows[i]!;
      const labels = Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(',');
      return [
        h.name,
        addressOf(h),
        labels || null,
        live ? (r.connected ? 'yes' : 'no') : '-',
        r.breaker,
        r.lastRttMs === null ? null : `${r.lastRttMs.toFixed(1)}ms`,
        r.lastError,
      ];
    }),
  );
  if (!live) process.stderr.write('(no daemon running: connection state unknown; start one with: remux daemon start)\n');
}

export async function checkHostsCommand(selector: string, opts: { acceptNew?: boolean; knownHosts?: string; json?: boolean }): Promise<void> {
  const ctx = createContext({ acceptNew: opts.acceptNew === true, ...(opts.knownHosts ? { knownHosts: opts.knownHosts } : {}) });
  try {
    const names = usage(() => ctx.registry.select(selector));
    await ctx.registry.prepare(names);
    const width = Math.max(...names.map((n) => n.length));
    const results = await fanOut(
      ctx,
      names,
      (host) => ({ kind: 'probe', host }),
      {
        onOutput: () => {},
        onResult: (host, r) => {
          if (opts.json) printJsonLine({ host, ok: r.outcome === 'ok', outcome: r.outcome, exitCode: r.exitCode, durationMs: Math.round(r.durationMs), message: r.message || null });
          else process.stdout.write(`${host.padEnd(width)}  ${r.outcome === 'ok' ? 'ok' : r.outcome.padEnd(11)}  ${Math.round(r.durationMs)}ms${r.outcome === 'ok' ? '' : `  ${r.message}`}\n`);
        },
      },
      { concurrency: ctx.config.fanout.concurrency },
    );
    const summary = summarize(results.values());
    if (!opts.json) process.stderr.write(`${summary.total} checked: ${summary.ok} ok, ${summary.total - summary.ok} failing (known_hosts: ${ctx.knownHostsFile})\n`);
    process.exitCode = combinedExit(results.values());
  } finally {
    await ctx.close();
  }
}
