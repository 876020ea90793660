// Implementations of `remux hosts …`.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadConfig } from '../config/config.js';
import { expandHome, socketFile } from '../config/paths.js';
import { createContext } from '../core/context.js';
import { EXIT } from '../core/exit-codes.js';
import { combinedExit, fanOut, summarize } from '../core/fanout.js';
import type { PerformResult } from '../core/types.js';
import { askDaemon } from '../gateway/client.js';
import { clientSocket } from '../config/daemon-record.js';
import type { HostStatus } from '../gateway/protocol.js';
import { addHost, hostsFile, listedHosts, loadInventory, parseHostSpec, parseLabels, removeHost } from '../hosts/inventory.js';
import { agentNotConnected } from '../hosts/agent.js';
import { enforcementText, hostAddress, type Enforcement } from '../hosts/describe.js';
import { enforcement, hostRows } from '../hosts/view.js';
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
  // Typed here, a relative path means this directory; in hosts.yaml it would mean the file's. ~ stays as written.
  const identity = opts.identity === undefined ? undefined : opts.identity.startsWith('~') ? opts.identity : resolve(opts.identity);
  const status = usage(() =>
    addHost(
      file,
      {
        name,
        address,
        ...(opts.user ?? user ? { user: opts.user ?? user } : {}),
        ...(port !== undefined ? { port } : {}),
        ...(identity ? { identity } : {}),
        ...(opts.agent ? { agent: true } : {}),
        ...(opts.passwordEnv ? { passwordEnv: opts.passwordEnv } : {}),
        ...(opts.label ? { labels: parseLabels(opts.label) } : {}),
        ...(opts.jump ? { jump: opts.jump } : {}),
        ...(opts.tmuxSocket ? { tmuxSocket: opts.tmuxSocket } : {}),
        ...(opts.tmuxUsers ? { tmuxUsers: opts.tmuxUsers.split(',').map((u) => u.trim()) } : {}),
      },
      { replace: opts.replace === true },
    ),
  );
  process.stdout.write(`${status} ${name} in ${file}\n`);
  // Added all the same: the key may be made or copied there next. Said now, not first at the connection.
  if (identity && !existsSync(expandHome(identity))) process.stderr.write(`note: the identity file ${identity} does not exist (yet): connections to ${name} fail until it does\n`);
  process.stdout.write(`next: remux hosts check ${name}   (its host key must be in known_hosts; --accept-new trusts a first-seen key)\n`);
}

export function removeHostCommand(name: string): void {
  const file = hostsFile();
  usage(() => removeHost(file, name));
  process.stdout.write(`removed ${name} from ${file}\n`);
}

function printWarnings(warnings: Array<string | null>): void {
  for (const w of new Set(warnings)) if (w !== null) process.stderr.write(`warning: ${w}\n`);
}

/** Live connection state from a running daemon, or null when none runs; one on another socket than the one named now is said, unless --json. */
async function daemonHosts(json: boolean | undefined): Promise<Map<string, HostStatus> | null> {
  const configured = socketFile(process.env, loadConfig().config.daemon.socket);
  const socket = clientSocket(configured, process.env, json ? undefined : (moved) => process.stderr.write(`warning: ${moved}\n`));
  const answer = await askDaemon(socket, { type: 'status' });
  return answer?.type === 'status' ? new Map(answer.status.hosts.map((h) => [h.name, h])) : null;
}

export async function listHostsCommand(opts: { json?: boolean }): Promise<void> {
  const inventory = loadInventory(hostsFile());
  const live = await daemonHosts(opts.json);
  const hosts = listedHosts(inventory);
  const rows = await hostRows(hosts, live, loadConfig().config.exec.secure_path);
  if (opts.json) return printJson(rows);
  printTable(
    ['NAME', 'ADDRESS', 'LABELS', 'CONNECTED', 'BREAKER', 'RTT', 'ENFORCEMENT', 'LAST ERROR'],
    hosts.map((h, i) => {
      const r = rows[i]!;
      const labels = Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(',');
      return [
        h.name,
        hostAddress(r),
        labels || null,
        live ? (r.connected ? 'yes' : 'no') : '-',
        r.breaker,
        r.lastRttMs === null ? null : `${r.lastRttMs.toFixed(1)}ms`,
        enforcementText(r.enforcement),
        r.lastError,
      ];
    }),
  );
  printWarnings(rows.map((r) => r.enforcement.warning));
  if (inventory.hosts.length === 0) process.stderr.write(`no hosts in ${inventory.file} yet; add one with: remux hosts add web1 ops@10.0.0.5\n`);
  if (!live) process.stderr.write('(no daemon running: connection state unknown; start one with: remux daemon start)\n');
}

/** An agent host as the running daemon's relay sees it: ok while its agent is connected (and answers pings). */
function relayedResult(host: string, status: HostStatus | undefined): PerformResult {
  const connected = status?.connected === true;
  return {
    actionId: null,
    outcome: connected ? 'ok' : 'unreachable',
    exitCode: connected ? EXIT.OK : EXIT.TRANSPORT,
    decision: null,
    message: connected ? null : agentNotConnected(host, status?.lastError ?? null),
    durationMs: status?.lastRttMs ?? 0,
    bytesOut: 0,
    truncated: false,
    timedOut: false,
  };
}

export async function checkHostsCommand(selector: string, opts: { acceptNew?: boolean; knownHosts?: string; json?: boolean }): Promise<void> {
  const ctx = createContext({
    acceptNew: opts.acceptNew === true,
    ...(opts.knownHosts ? { knownHosts: opts.knownHosts } : {}),
    // Said, not only audited: through a jump host, the jump host's key is trusted too, though not named.
    onHostKeyAccepted: (host, fingerprint, file) => process.stderr.write(`trusted the new host key of ${host} (${fingerprint}), recorded in ${file}\n`),
  });
  try {
    const names = usage(() => ctx.registry.select(selector, ctx.principal));
    await ctx.registry.prepare(names);
    const width = Math.max(...names.map((n) => n.length));
    // A host that answered is asked whether it can sandbox commands (SSH hosts: the probe, on the same connection).
    const enforcementOf = async (host: string, r: PerformResult): Promise<Enforcement> => {
      if (r.outcome !== 'ok') return enforcement(null, 'the host did not answer');
      return ctx.registry
        .host(host)
        .sandboxSupport()
        .then(
          (support) => enforcement(support, ''),
          (err: unknown) => enforcement(null, err instanceof Error ? err.message : String(err)),
        );
    };
    const printed: Array<Promise<Enforcement>> = [];
    const print = (host: string, r: PerformResult, e: Enforcement): Enforcement => {
      if (opts.json) {
        printJsonLine({ host, ok: r.outcome === 'ok', outcome: r.outcome, exitCode: r.exitCode, durationMs: Math.round(r.durationMs), message: r.message || null, enforcement: e });
      } else {
        const outcome = r.outcome === 'ok' ? `ok  ${Math.round(r.durationMs)}ms  ${enforcementText(e)}` : `${r.outcome.padEnd(11)}  ${Math.round(r.durationMs)}ms  ${r.message}`;
        process.stdout.write(`${host.padEnd(width)}  ${outcome}\n`);
      }
      return e;
    };
    // An agent host answers only the daemon its agent dials, never this process: with a daemon running, the
    // daemon's relay says whether it is there (it pings every agent every few seconds and knows its sandbox).
    const isAgent = (host: string): boolean => ctx.registry.entry(host)?.transport === 'agent';
    const live = names.some(isAgent) ? await daemonHosts(opts.json) : null;
    const relayed = live === null ? [] : names.filter(isAgent);
    const relayedResults = relayed.map((host) => {
      const status = live?.get(host);
      const r = relayedResult(host, status);
      printed.push(Promise.resolve(print(host, r, r.outcome === 'ok' ? enforcement(status?.sandbox ?? null, 'not probed yet') : enforcement(null, 'the host did not answer'))));
      return r;
    });
    const results = await fanOut(
      ctx,
      names.filter((host) => !relayed.includes(host)),
      (host) => ({ kind: 'probe', host }),
      { onOutput: () => {}, onResult: (host, r) => printed.push(enforcementOf(host, r).then((e) => print(host, r, e))) },
      { concurrency: ctx.config.fanout.concurrency },
    );
    const all = [...relayedResults, ...results.values()];
    const checked = await Promise.all(printed);
    if (!opts.json) printWarnings(checked.map((e) => e.warning));
    const summary = summarize(all);
    if (!opts.json) process.stderr.write(`${summary.total} checked: ${summary.ok} ok, ${summary.total - summary.ok} failing (known_hosts: ${ctx.knownHostsFile})\n`);
    process.exitCode = combinedExit(all);
  } finally {
    await ctx.close();
  }
}
