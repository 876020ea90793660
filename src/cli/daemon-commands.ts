// Implementations of `remux daemon start|stop|status` and `remux status info|health`.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statfsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { AuditStore } from '../audit/store.js';
import { loadConfig, type Config } from '../config/config.js';
import { auditDbFile, daemonLogFile, expandHome, knownHostsFile, policiesFile, principalsFile, recordingsDir, remuxHome, socketFile } from '../config/paths.js';
import { loadPrincipals } from '../config/principals.js';
import { loadPolicies } from '../core/context.js';
import type { Policy } from '../policy/types.js';
import { EXIT } from '../core/exit-codes.js';
import { bwrapAvailable, landlockScopes } from '../exec/sandbox.js';
import { sandboxSpec } from '../policy/evaluate.js';
import { askDaemon } from '../gateway/client.js';
import type { DaemonStatus } from '../gateway/protocol.js';
import { hostsFile, loadInventory } from '../hosts/inventory.js';
import { channelName } from '../notify/channels.js';
import { unreachableLinks } from '../notify/service.js';
import { recordingsUsage } from '../sessions/retention.js';
import type { StartOptions } from './commands/daemon.js';
import { printJson } from './output.js';
import { packageVersion } from './program.js';

const BIN = fileURLToPath(new URL('../../../bin/remux.js', import.meta.url));


function daemonSocket(flag?: string): string {
  return flag ? resolve(expandHome(flag)) : socketFile(process.env, loadConfig().config.daemon.socket);
}

async function status(socket: string): Promise<DaemonStatus | null> {
  const answer = await askDaemon(socket, { type: 'status' });
  return answer?.type === 'status' ? answer.status : null;
}

export async function startDaemonCommand(opts: StartOptions): Promise<void> {
  const socket = daemonSocket(opts.socket);
  const contextOptions = {
    ...(opts.knownHosts ? { knownHosts: resolve(expandHome(opts.knownHosts)) } : {}),
    ...(opts.auditLogDir ? { auditDb: join(resolve(expandHome(opts.auditLogDir)), 'audit.db') } : {}),
  };
  const http = { listen: opts.listen, tlsCert: opts.tlsCert, tlsKey: opts.tlsKey, tls: opts.tls === false ? false : undefined, insecureNoTls: opts.insecureNoTls };
  if (opts.foreground) {
    const { startDaemon } = await import('../gateway/daemon.js');
    const daemon = await startDaemon({ socket, version: packageVersion(), ...contextOptions, http });
    const stop = (): void => void daemon.stop();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    await daemon.stopped;
    return;
  }

  const running = await status(socket);
  if (running) {
    process.stdout.write(`already running: pid ${running.pid}, socket ${socket}\n`);
    return;
  }
  const log = daemonLogFile();
  mkdirSync(dirname(log), { recursive: true, mode: 0o700 });
  const fd = openSync(log, 'a', 0o600);
  const args = [BIN, 'daemon', 'start', '--foreground', '--socket', socket];
  if (contextOptions.knownHosts) args.push('--known-hosts', contextOptions.knownHosts);
  if (opts.auditLogDir) args.push('--audit-log-dir', resolve(expandHome(opts.auditLogDir)));
  if (http.listen) args.push('--listen', http.listen);
  if (http.tlsCert) args.push('--tls-cert', resolve(expandHome(http.tlsCert)));
  if (http.tlsKey) args.push('--tls-key', resolve(expandHome(http.tlsKey)));
  if (http.tls === false) args.push('--no-tls');
  if (http.insecureNoTls) args.push('--insecure-no-tls');
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
    const s = await status(socket);
    if (s) {
      process.stdout.write(`started: pid ${s.pid}, socket ${socket}, log ${log}\n`);
      process.stdout.write(httpLine(s));
      return;
    }
    const code = await Promise.race([exited, sleep(100).then(() => undefined)]);
    if (code !== undefined) break;
  }
  const tail = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').slice(-5).join('\n') : '';
  process.stderr.write(`remux: the daemon did not start; last lines of ${log}:\n${tail}\n`);
  process.exitCode = EXIT.FAILURE;
}

export async function stopDaemonCommand(opts: { socket?: string }): Promise<void> {
  const socket = daemonSocket(opts.socket);
  const answer = await askDaemon(socket, { type: 'stop' });
  if (!answer) {
    process.stdout.write(`not running (no daemon answers on ${socket})\n`);
    return;
  }
  const pid = answer.type === 'status' ? answer.status.pid : null;
  // Wait until it is really gone, so a following `daemon start` cannot race it.
  for (const deadline = Date.now() + 10_000; Date.now() < deadline && existsSync(socket); ) await sleep(50);
  process.stdout.write(`stopped${pid ? ` (pid ${pid})` : ''}\n`);
}

function httpLine(s: DaemonStatus): string {
  if (!('url' in s.http)) return `web console and API: off: ${s.http.off}\n`;
  return `web console and API: ${s.http.url}${s.http.refusing ? `, admitting nobody: ${s.http.refusing}` : ''}\n`;
}

function formatUptime(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h > 0 ? `${h}h${m}m` : m > 0 ? `${m}m${seconds % 60}s` : `${seconds}s`;
}

function printDaemonStatus(s: DaemonStatus): void {
  const connected = s.hosts.filter((h) => h.connected).length;
  process.stdout.write(`running: pid ${s.pid}, version ${s.version}, up ${formatUptime(s.uptimeSeconds)}, ${(s.memoryRssBytes / 2 ** 20).toFixed(0)} MB RSS\n`);
  process.stdout.write(`socket ${s.socket}; audit ${s.auditDb}; known_hosts ${s.knownHosts}\n`);
  process.stdout.write(httpLine(s));
  // The pooled connections: the inventory's hosts (localhost, always there, needs none).
  process.stdout.write(`hosts: ${connected} of ${s.hosts.length} in the inventory connected (localhost needs no connection)\n`);
  for (const h of s.hosts.filter((x) => x.breaker && x.breaker.state !== 'closed')) {
    process.stdout.write(`  breaker ${h.breaker?.state} for ${h.name}: ${h.breaker?.consecutiveFailures} failures, last: ${h.breaker?.lastError ?? '-'}\n`);
  }
  process.stdout.write(`rate limit: ${s.rateLimit.ratePerSec}/s, burst ${s.rateLimit.burst}`);
  process.stdout.write(s.rateLimit.buckets.length ? `; ${s.rateLimit.buckets.map((b) => `${b.key}: ${b.tokens} tokens left`).join(', ')}\n` : '; no recent requests\n');
  process.stdout.write(`sandboxes: ${s.sandboxes.length} running\n`);
  for (const b of s.sandboxes) {
    const shows = b.shows.join(', ') || 'no policy paths';
    const starts = b.stageServer ? 'its stage server forks commands' : 'no stage server: commands start through remux-sandbox-enter';
    process.stdout.write(`  for ${b.owner}, since ${b.startedAt}: ${b.commands} commands running; shows ${shows}${b.network ? '; network' : ''}; ${starts}\n`);
  }
}

export async function daemonStatusCommand(opts: { socket?: string; json?: boolean }): Promise<void> {
  const socket = daemonSocket(opts.socket);
  const s = await status(socket);
  if (opts.json) printJson(s ? { running: true, ...s } : { running: false, socket });
  else if (s) printDaemonStatus(s);
  else process.stdout.write(`not running (no daemon answers on ${socket}); start it with: remux daemon start\n`);
  // LSB convention for "program is not running".
  if (!s) process.exitCode = 3;
}

export async function statusInfoCommand(opts: { json?: boolean }): Promise<void> {
  const { config, file } = loadConfig();
  const socket = socketFile(process.env, config.daemon.socket);
  const daemon = await status(socket);
  let policies: string[] | string;
  try {
    policies = [...loadPolicies(policiesFile()).keys()];
  } catch (err) {
    policies = (err as Error).message;
  }
  let hosts: number | string;
  try {
    hosts = loadInventory(hostsFile()).hosts.length;
  } catch (err) {
    hosts = (err as Error).message;
  }
  const info = {
    version: packageVersion(),
    node: process.version,
    home: remuxHome(),
    config: file,
    policiesFile: policiesFile(),
    policies,
    hostsFile: hostsFile(),
    hosts,
    auditDb: auditDbFile(),
    knownHosts: knownHostsFile(process.env, config.ssh.known_hosts),
    sandbox: bwrapAvailable(),
    daemon: daemon ? { running: true, ...daemon } : { running: false, socket },
  };
  if (opts.json) return printJson(info);
  const out = (k: string, v: unknown): boolean => process.stdout.write(`${k.padEnd(13)} ${String(v)}\n`);
  out('remux', `${info.version} (node ${info.node})`);
  out('home', info.home);
  out('policies', Array.isArray(policies) ? `${policies.length} in ${info.policiesFile}` : `error: ${policies}`);
  out('hosts', typeof hosts === 'number' ? `${hosts} in ${info.hostsFile} (+ localhost)` : `error: ${hosts}`);
  out('audit', info.auditDb);
  out('known_hosts', info.knownHosts);
  out('sandbox', info.sandbox.ok ? `bubblewrap ${info.sandbox.version ?? ''}${info.sandbox.warning ? ` (${info.sandbox.warning})` : ''}` : `unavailable: ${info.sandbox.reason}`);
  if (daemon) printDaemonStatus(daemon);
  else out('daemon', `not running (${socket})`);
}

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** A warning does not make the system unhealthy. */
  warning?: boolean;
}

/**
 * The OS sandbox: policies that use it need a working bubblewrap here (their local commands are refused
 * without one: unhealthy); a policy that turned it off is shown, as a warning.
 */
function sandboxChecks(): Check[] {
  let policies: Policy[];
  try {
    policies = [...loadPolicies(policiesFile()).values()];
  } catch {
    policies = []; // the policies check reports it
  }
  const sandboxed = policies.filter((p) => p.sandbox !== 'off').map((p) => p.name);
  const sandbox = bwrapAvailable();
  const checks: Check[] = [];
  if (sandbox.ok) {
    checks.push({ name: 'sandbox', ok: true, warning: !!sandbox.warning, detail: sandbox.warning ?? `bubblewrap ${sandbox.version}` });
    const networked = policies.filter((p) => p.sandbox !== 'off' && sandboxSpec(p, 'doctor').network).map((p) => p.name);
    if (networked.length > 0 && !landlockScopes()) {
      checks.push({
        name: 'sandbox',
        ok: true,
        warning: true,
        detail: `${networked.join(', ')} grant network: their sandboxed commands share the host's abstract Unix sockets (X11, D-Bus, …) on this kernel; Linux 6.12 or later keeps them out (Landlock scopes)`,
      });
    }
  } else {
    const refused = sandboxed.length > 0 ? `; local commands under ${sandboxed.join(', ')} are refused until bubblewrap works` : '';
    checks.push({ name: 'sandbox', ok: sandboxed.length === 0, detail: `unavailable: ${sandbox.reason}${refused}` });
  }
  for (const p of policies.filter((x) => x.sandbox === 'off')) {
    checks.push({ name: `policy ${p.name}`, ok: true, warning: true, detail: `static checks only (sandbox: false at ${p.source.file}:${p.source.line})` });
  }
  return checks;
}

const MIB = 2 ** 20;
const GIB = 2 ** 30;

/**
 * Free space where the audit store is written: a full disk refuses every action, since nothing runs
 * whose audit record cannot be written.
 */
function diskCheck(): Check {
  let dir = dirname(auditDbFile());
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  const st = statfsSync(dir);
  const free = st.bavail * st.bsize;
  const total = st.blocks * st.bsize;
  const size = (bytes: number): string => (bytes >= GIB ? `${(bytes / GIB).toFixed(1)} GiB` : `${Math.round(bytes / MIB)} MiB`);
  const detail = `${size(free)} free of ${size(total)} where the audit store is written (${dir})`;
  if (free < 64 * MIB) return { name: 'disk', ok: false, detail: `${detail}: actions are refused once the audit store cannot write` };
  return { name: 'disk', ok: true, warning: free < GIB || free < total * 0.05, detail };
}

/** What recordings take, and the limit the daemon keeps them within. */
function recordingsCheck(): Check {
  const dir = recordingsDir();
  const { count, bytes } = recordingsUsage(dir);
  const maxMb = loadConfig().config.sessions.recordings_max_total_mb;
  const used = `${count} in ${dir}, ${(bytes / MIB).toFixed(1)} MB`;
  if (maxMb === null) return { name: 'recordings', ok: true, warning: true, detail: `${used}, kept without limit (sessions.recordings_max_total_mb: null): they may fill the disk` };
  return { name: 'recordings', ok: true, detail: `${used}; the daemon keeps at most ${maxMb} MB` };
}

/** The notification channels, and whether the links they carry open on a phone (a warning if not). */
function notifyCheck(config: Config): Check {
  const channels = config.notify.channels.map(channelName);
  if (channels.length === 0) return { name: 'notify', ok: true, detail: 'no channels (notify.channels): approvals are answered in the console or with remux approvals' };
  // An ntfy topic without a token is readable (and its buttons usable) by whoever subscribes to its name.
  const open = config.notify.channels.flatMap((c) => (c.type === 'ntfy' && c.token === undefined ? [`${c.url.replace(/\/$/, '')}/${c.topic}`] : []));
  const openTopics = open.length === 0 ? null : `ntfy topic ${open.join(', ')} has no token: whoever subscribes to the topic's name reads every question and can answer it with its buttons (ntfy.sh topics are public); use a protected topic and set its token (token: tk_… in the channel)`;
  const warnings = [unreachableLinks(config, process.env), openTopics].filter((w): w is string => Boolean(w));
  if (warnings.length > 0) return { name: 'notify', ok: true, warning: true, detail: warnings.join('; and ') };
  return { name: 'notify', ok: true, detail: `${channels.length} channel${channels.length === 1 ? '' : 's'} (${channels.join(', ')}); links lead to ${config.notify.base_url ?? "the console's own address"}` };
}

export async function statusHealthCommand(opts: { json?: boolean }): Promise<void> {
  const checks: Check[] = [];
  const attempt = (name: string, fn: () => string): void => {
    try {
      checks.push({ name, ok: true, detail: fn() });
    } catch (err) {
      checks.push({ name, ok: false, detail: (err as Error).message });
    }
  };
  attempt('config', () => loadConfig().file ?? 'defaults (no config.yaml)');
  attempt('policies', () => `${loadPolicies(policiesFile()).size} policies in ${policiesFile()}`);
  attempt('hosts', () => `${loadInventory(hostsFile()).hosts.length} hosts in ${hostsFile()}`);
  try {
    const file = principalsFile();
    const { entries } = loadPrincipals(file);
    const admins = entries.filter((e) => e.scope.admin).length;
    // No principal is a choice (the socket still serves its owner), not a fault: a warning.
    checks.push(
      entries.length > 0
        ? { name: 'principals', ok: true, detail: `${entries.length} in ${file} (${admins} admin)` }
        : { name: 'principals', ok: true, warning: true, detail: `none in ${file}: the web console and API stay off (remux principal add NAME --admin)` },
    );
  } catch (err) {
    checks.push({ name: 'principals', ok: false, detail: (err as Error).message });
  }
  attempt('audit', () => {
    const store = AuditStore.open(auditDbFile());
    try {
      const v = store.verify();
      if (!v.ok) throw new Error(`chain broken at record #${v.firstBad?.seq}: ${v.firstBad?.reason}`);
      return `${v.checked} records verified`;
    } finally {
      store.close();
    }
  });
  try {
    checks.push(diskCheck(), recordingsCheck());
  } catch (err) {
    checks.push({ name: 'disk', ok: false, detail: (err as Error).message });
  }
  checks.push(...sandboxChecks());
  try {
    checks.push(notifyCheck(loadConfig().config));
  } catch {
    // the config check above already reports it
  }
  let socket = '';
  try {
    socket = socketFile(process.env, loadConfig().config.daemon.socket);
  } catch {
    // the config check above already reports it
  }
  const daemon = socket ? await status(socket) : null;
  checks.push({ name: 'daemon', ok: true, warning: !daemon, detail: daemon ? `pid ${daemon.pid}, ${daemon.hosts.filter((h) => h.connected).length} hosts connected` : 'not running (commands run in-process)' });
  for (const h of daemon?.hosts ?? []) {
    if (h.breaker && h.breaker.state !== 'closed') checks.push({ name: `host ${h.name}`, ok: true, warning: true, detail: `breaker ${h.breaker.state}: ${h.breaker.lastError ?? ''}` });
  }
  const healthy = checks.every((c) => c.ok);
  process.exitCode = healthy ? EXIT.OK : EXIT.FAILURE;
  if (opts.json) return printJson({ healthy, checks });
  const width = Math.max(10, ...checks.map((c) => c.name.length));
  for (const c of checks) process.stdout.write(`${(c.ok ? (c.warning ? 'warn' : 'ok') : 'FAIL').padEnd(5)} ${c.name.padEnd(width)} ${c.detail}\n`);
  process.stdout.write(healthy ? 'healthy\n' : 'unhealthy\n');
}
