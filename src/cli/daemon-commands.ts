// Implementations of `remux daemon start|stop|status` and `remux status info|health`.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statfsSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSecureContext } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { AuditStore } from '../audit/store.js';
import { configFileDigest, loadConfig, loadConfigFile, type Config } from '../config/config.js';
import { ConfigError } from '../config/source.js';
import { auditDbFile, daemonLockFile, daemonLogFile, expandHome, knownHostsFile, policiesFile, principalsFile, recordingsDir, remuxHome, socketFile } from '../config/paths.js';
import { loadPrincipals } from '../config/principals.js';
import { loadPolicies } from '../core/context.js';
import type { Policy } from '../policy/types.js';
import { UsageError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { processAlive, sameProcessAlive } from '../core/process.js';
import { bwrapAvailable, landlockScopes } from '../exec/sandbox.js';
import { sandboxSpec } from '../policy/evaluate.js';
import { askDaemon } from '../gateway/client.js';
import { addressInUse } from '../gateway/http/listen.js';
import { movedMessage, ownSocket, runningDaemon, type DaemonRecord } from '../config/daemon-record.js';
import type { SlotsStatus } from '../gateway/attach-slots.js';
import type { DaemonStartOptions, DaemonStatus } from '../gateway/protocol.js';
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

interface FoundDaemon {
  /** Where the daemon answers; when none does, where one would start. */
  socket: string;
  running: DaemonStatus | null;
  /** The running daemon is not on the socket named now (--socket, REMUX_SOCKET, config.yaml): what to do. */
  moved?: { configured: string; message: string };
}

/**
 * The daemon of this REMUX_HOME: on the socket named now, else where its record says it runs (config.yaml
 * named another socket when it started); found even when config.yaml does not load now (status, doctor
 * and restart must say so, and a running daemon is what it goes on with), then also on REMUX_SOCKET or
 * the default socket. A config error is thrown only when no daemon answers.
 */
async function findDaemon(flag?: string): Promise<FoundDaemon> {
  let configured: string | null = null;
  let configError: ConfigError | null = null;
  try {
    configured = daemonSocket(flag);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    configError = err;
  }
  const here = configured ? await status(configured) : null;
  if (configured && here) return { socket: configured, running: here };
  const record = runningDaemon();
  const there = record && record.socket !== configured && ownSocket(record.socket) ? await status(record.socket) : null;
  if (record && there) {
    if (!configured) return { socket: record.socket, running: there };
    return { socket: record.socket, running: there, moved: { configured, message: movedMessage(record.socket, configured, process.env, flag) } };
  }
  if (configError) {
    const fallback = socketFile(process.env);
    const running = await status(fallback);
    if (!running) throw configError;
    return { socket: fallback, running };
  }
  return { socket: configured!, running: null };
}

/**
 * A daemon that answers but does not hold this REMUX_HOME (its record names another, or none): one started
 * by a remux from before one daemon per home (it took no claim), or of another REMUX_HOME on this socket.
 * What to say of it; null for the home's own daemon.
 */
function unclaimed(s: DaemonStatus): string | null {
  if (runningDaemon()?.pid === s.pid) return null;
  return `a daemon (pid ${s.pid}, remux ${s.version}) answers on ${s.socket} without holding ${remuxHome()} (${daemonLockFile()}): one of an older remux, or of another REMUX_HOME; \`remux daemon restart\` replaces it, or stop it with: remux daemon stop`;
}

async function status(socket: string): Promise<DaemonStatus | null> {
  const answer = await askDaemon(socket, { type: 'status' });
  return answer?.type === 'status' ? answer.status : null;
}

/** The start options with their paths made absolute: a restart, from any directory, means the same files. */
function resolvedStartOptions(opts: DaemonStartOptions): DaemonStartOptions {
  const path = (p: string | undefined): string | undefined => (p ? resolve(expandHome(p)) : undefined);
  const all: DaemonStartOptions = {
    knownHosts: path(opts.knownHosts),
    auditLogDir: path(opts.auditLogDir),
    listen: opts.listen,
    tlsCert: path(opts.tlsCert),
    tlsKey: path(opts.tlsKey),
    // commander sets tls: true unless --no-tls.
    tls: opts.tls === false ? false : undefined,
    insecureNoTls: opts.insecureNoTls === true ? true : undefined,
  };
  return Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined));
}

/** The words of `remux daemon start` that give these options. */
function startArgs(o: DaemonStartOptions): string[] {
  const args: string[] = [];
  if (o.knownHosts) args.push('--known-hosts', o.knownHosts);
  if (o.auditLogDir) args.push('--audit-log-dir', o.auditLogDir);
  if (o.listen) args.push('--listen', o.listen);
  if (o.tlsCert) args.push('--tls-cert', o.tlsCert);
  if (o.tlsKey) args.push('--tls-key', o.tlsKey);
  if (o.tls === false) args.push('--no-tls');
  if (o.insecureNoTls) args.push('--insecure-no-tls');
  return args;
}

export async function startDaemonCommand(opts: StartOptions): Promise<void> {
  const socket = daemonSocket(opts.socket);
  const flags = resolvedStartOptions(opts);
  if (opts.foreground) {
    const { startDaemon } = await import('../gateway/daemon.js');
    const daemon = await startDaemon({
      socket,
      version: packageVersion(),
      detached: opts.detached === true,
      ...(flags.knownHosts ? { knownHosts: flags.knownHosts } : {}),
      ...(flags.auditLogDir ? { auditDb: join(flags.auditLogDir, 'audit.db') } : {}),
      http: { listen: flags.listen, tlsCert: flags.tlsCert, tlsKey: flags.tlsKey, tls: flags.tls, insecureNoTls: flags.insecureNoTls },
    });
    const stop = (): void => void daemon.stop();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    await daemon.stopped;
    return;
  }

  const found = await findDaemon(opts.socket);
  if (found.moved) {
    process.stderr.write(`remux: not started: ${found.moved.message}, or stop it with: remux daemon stop\n`);
    process.exitCode = EXIT.FAILURE;
    return;
  }
  if (found.running) {
    const unheld = unclaimed(found.running);
    if (unheld) {
      process.stderr.write(`remux: not started: ${unheld}\n`);
      process.exitCode = EXIT.FAILURE;
      return;
    }
    process.stdout.write(`already running: pid ${found.running.pid}, socket ${socket}\n`);
    return;
  }
  if (!(await spawnDaemon(socket, flags))) process.exitCode = EXIT.FAILURE;
}

/** Starts a daemon in the background and waits until it answers; false (the log's last lines said) if it does not. */
async function spawnDaemon(socket: string, flags: DaemonStartOptions): Promise<boolean> {
  const log = daemonLogFile();
  mkdirSync(dirname(log), { recursive: true, mode: 0o700 });
  const fd = openSync(log, 'a', 0o600);
  const child = spawn(process.execPath, [BIN, 'daemon', 'start', '--foreground', '--detached', '--socket', socket, ...startArgs(flags)], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
    const s = await status(socket);
    // Ours, not one that another start at the same moment started (ours then ends, refused).
    if (s && s.pid === child.pid) {
      process.stdout.write(`started: pid ${s.pid}, socket ${socket}, log ${log}\n`);
      process.stdout.write(httpLine(s));
      return true;
    }
    const code = await Promise.race([exited, sleep(100).then(() => undefined)]);
    if (code !== undefined) break;
  }
  const other = runningDaemon();
  if (other && other.pid !== child.pid) {
    process.stderr.write(`remux: not started: another daemon of ${remuxHome()} started meanwhile: pid ${other.pid}, socket ${other.socket}; stop it with: remux daemon stop\n`);
    return false;
  }
  const tail = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').slice(-5).join('\n') : '';
  process.stderr.write(`remux: the daemon did not start; last lines of ${log}:\n${tail}\n`);
  return false;
}

export async function stopDaemonCommand(opts: { socket?: string }): Promise<void> {
  const { socket, moved } = await findDaemon(opts.socket);
  if (moved) process.stdout.write(`the daemon runs on ${socket}, not on ${moved.configured}: stopping it there\n`);
  const stopped = await stopDaemon(socket);
  if (stopped === null) {
    const silent = runningDaemon();
    if (silent) await stopSilent(silent);
    else process.stdout.write(`not running (no daemon answers on ${socket})\n`);
  } else if (stopped.gone) process.stdout.write(`stopped${stopped.pid ? ` (pid ${stopped.pid})` : ''}\n`);
  else {
    process.stderr.write(`remux: ${notEnded(stopped.pid)}\n`);
    process.exitCode = EXIT.FAILURE;
  }
}

const STOP_WAIT_MS = 30_000;
/** How long a daemon that answers on no socket gets to end after SIGTERM before it is killed. */
const SILENT_STOP_MS = 5_000;

/** What `daemon status` says of a daemon that holds REMUX_HOME but answers on no socket (still starting, or hung). */
const silentWords = (d: DaemonRecord): string =>
  `the daemon of ${remuxHome()} (pid ${d.pid}, started ${d.startedAt}) answers on no socket (it serves ${d.socket}): starting, or hung; see ${daemonLogFile()}; \`remux daemon stop\` ends it`;

/**
 * Ends a daemon that holds REMUX_HOME but answers on no socket (hung: nothing else would end it, and it
 * keeps every start out): SIGTERM, which it handles as a stop when its loop runs, then SIGKILL.
 */
async function stopSilent(d: DaemonRecord): Promise<void> {
  process.stdout.write(`the daemon (pid ${d.pid}) answers on no socket (${d.socket}): sending it SIGTERM\n`);
  const gone = async (ms: number): Promise<boolean> => {
    for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(50)) if (!sameProcessAlive(d.pid, d.process)) return true;
    return !sameProcessAlive(d.pid, d.process);
  };
  process.kill(d.pid, 'SIGTERM');
  if (await gone(SILENT_STOP_MS)) return void process.stdout.write(`stopped (pid ${d.pid})\n`);
  process.kill(d.pid, 'SIGKILL');
  if (await gone(SILENT_STOP_MS)) {
    process.stdout.write(`killed (pid ${d.pid}, SIGKILL): it had not ended ${SILENT_STOP_MS / 1000} s after SIGTERM; it handed nothing over, as after a crash\n`);
    return;
  }
  process.stderr.write(`remux: the daemon (pid ${d.pid}) has not ended even after SIGKILL; see ${daemonLogFile()}\n`);
  process.exitCode = EXIT.FAILURE;
}

const notEnded = (pid: number | null): string => `the daemon (pid ${pid}) was asked to stop and has not ended after ${STOP_WAIT_MS / 1000} s; see ${daemonLogFile()}`;

/**
 * Asks the daemon on SOCKET to stop, and waits until its process has ended (so that a following start
 * cannot race it for the socket, the pid file or the console's port). null: no daemon answered.
 */
async function stopDaemon(socket: string): Promise<{ pid: number | null; gone: boolean } | null> {
  const answer = await askDaemon(socket, { type: 'stop' });
  if (!answer) return null;
  const pid = answer.type === 'status' ? answer.status.pid : null;
  const ended = (): boolean => !existsSync(socket) && (pid === null || !processAlive(pid));
  for (const deadline = Date.now() + STOP_WAIT_MS; Date.now() < deadline && !ended(); ) await sleep(50);
  return { pid, gone: ended() };
}

/**
 * What would keep a daemon from starting with these options (config.yaml, policies, principals, the
 * console's flags, certificate and address), found while the running one still serves: throws as
 * `daemon start` would.
 */
async function checkStartable(flags: DaemonStartOptions, running: DaemonStatus | null): Promise<void> {
  const { config } = loadConfig();
  loadPolicies(policiesFile());
  const principals = loadPrincipals(principalsFile());
  const { httpSettings } = await import('../gateway/http/server.js');
  const settings = httpSettings(config.http, flags);
  // The console's certificate and address matter once it is served (a principal exists).
  if (principals.entries.length === 0) return;
  const { tls } = settings;
  if (tls !== null && tls !== 'self-signed') {
    try {
      createSecureContext({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) });
    } catch (err) {
      throw new UsageError(`the console's certificate ${tls.cert} and key ${tls.key} cannot serve: ${(err as Error).message}`, 'fix them, or name others with --tls-cert and --tls-key');
    }
  }
  if (running) await checkListenable(settings, running);
}

/**
 * A console address other than the running daemon's (which frees its own as it stops) must be free now:
 * bound and closed at once. Port 0 is always free.
 */
async function checkListenable({ host, port }: { host: string; port: number }, running: DaemonStatus): Promise<void> {
  if (port === 0) return;
  if ('url' in running.http) {
    const url = new URL(running.http.url);
    if (url.hostname.replace(/^\[(.*)\]$/, '$1') === host && Number(url.port) === port) return;
  }
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, resolve);
    });
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? addressInUse({ host, port }) : (err as Error).message;
    throw new UsageError(`cannot serve on ${host}:${port}: ${why}`);
  }
  await new Promise((resolve) => server.close(resolve));
}

export async function restartDaemonCommand(opts: StartOptions): Promise<void> {
  const { socket, running, moved } = await findDaemon(opts.socket);
  if (running?.detached === false) {
    throw new UsageError(
      `the daemon (pid ${running.pid}) runs in the foreground (remux daemon start --foreground): what started it, a terminal or a service manager, would not start it again`,
      'restart it there (systemctl restart …, or Ctrl-C and start it again), or stop it and run remux daemon start',
    );
  }
  const given = resolvedStartOptions(opts);
  // As pg_ctl restart does: without options, the ones the running daemon was started with.
  const flags = running?.startOptions && Object.keys(given).length === 0 ? running.startOptions : given;
  const reused = flags !== given;
  try {
    await checkStartable(flags, running);
  } catch (err) {
    if (running) process.stderr.write(`remux: not restarted: a new daemon would not start; the running one (pid ${running.pid}) goes on as it was\n`);
    throw err;
  }
  if (running) {
    const words = startArgs(flags).join(' ');
    if (moved) process.stdout.write(`moving the daemon from ${socket} to ${moved.configured}\n`);
    process.stdout.write(`stopping pid ${running.pid}; starting again with ${reused ? 'the options it was started with' : 'the options given'}: ${words || 'none'}\n`);
    const stopped = await stopDaemon(socket);
    if (stopped && !stopped.gone) {
      process.stderr.write(`remux: ${notEnded(stopped.pid)}; not starting another\n`);
      process.exitCode = EXIT.FAILURE;
      return;
    }
  } else {
    process.stdout.write(`not running (no daemon answers on ${socket}): starting it\n`);
  }
  if (await spawnDaemon(moved?.configured ?? socket, flags)) return;
  if (running) process.stderr.write('remux: no daemon runs now: fix what the log says, then run remux daemon start\n');
  process.exitCode = EXIT.FAILURE;
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

interface ConfigState {
  /** The config.yaml the daemon read at start (where it looked, if there was none). */
  file: string;
  /** configDigest of what it read; null: there was none. */
  digest: string | null;
  /** Whether the file says something else now (a touch, a comment, the layout are no change). */
  changed: boolean;
  /** When changed: what changed, and what to do. */
  message?: string;
  /** When changed into a file that does not load: the first problem, as config errors name it. */
  error?: { file: string; line: number; detail: string };
}

/** Whether config.yaml still says what the daemon read when it started, and what to do when not. */
function configState(s: DaemonStatus): ConfigState | null {
  if (!s.config) return null;
  const { file, digest } = s.config;
  const since = `${file} changed since the daemon started at ${s.startedAt.replace(/\.\d+Z$/, 'Z')}`;
  let now: string | null | undefined;
  try {
    now = configFileDigest(file);
    if (now === digest) return { file, digest, changed: false };
  } catch {
    // Not YAML any more: loadConfigFile says where.
  }
  try {
    loadConfigFile(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const first = err.line > 0 ? `${err.file}:${err.line}: ${err.detail}` : `${err.file}: ${err.detail}`;
    return { file, digest, changed: true, error: { file: err.file, line: err.line, detail: err.detail }, message: `${since} and does not load: ${first}; the daemon goes on with what it read: fix the file, then run \`remux daemon restart\`` };
  }
  if (now === null) return { file, digest, changed: true, message: `${file} was removed since the daemon started: run \`remux daemon restart\` to go back to the defaults` };
  return { file, digest, changed: true, message: `${since}: run \`remux daemon restart\` to apply it` };
}

/** The daemon's status as printed with --json: with its config's state, and where config.yaml now names its socket if elsewhere. */
function statusJson(s: DaemonStatus, moved?: FoundDaemon['moved']): Omit<DaemonStatus, 'config'> & { running: true; config?: ConfigState; moved?: FoundDaemon['moved'] } {
  return { running: true, ...s, config: configState(s) ?? undefined, ...(moved ? { moved } : {}) };
}

/** e.g. `commands running: 5 (limits: 3 per principal, 5 in all): viewer 3, other 2` */
function slotsLine(what: string, slots: SlotsStatus): string {
  const who = slots.principals.map((p) => `${p.principal} ${p.held}`).join(', ');
  return `${what}: ${slots.held} (limits: ${slots.limit.perPrincipal} per principal, ${slots.limit.total} in all)${who ? `: ${who}` : ''}\n`;
}

function printDaemonStatus(s: DaemonStatus, moved?: FoundDaemon['moved']): void {
  const connected = s.hosts.filter((h) => h.connected).length;
  process.stdout.write(`running: pid ${s.pid}, version ${s.version}, up ${formatUptime(s.uptimeSeconds)}, ${(s.memoryRssBytes / 2 ** 20).toFixed(0)} MB RSS\n`);
  const config = configState(s);
  if (config?.changed) process.stdout.write(`warning: ${config.message}\n`);
  else if (config) process.stdout.write(`config ${config.digest === null ? `defaults (no ${config.file})` : config.file}, unchanged since the daemon started\n`);
  if (moved) process.stdout.write(`warning: ${moved.message}\n`);
  const unheld = unclaimed(s);
  if (unheld) process.stdout.write(`warning: ${unheld}\n`);
  process.stdout.write(`socket ${s.socket}; audit ${s.auditDb}; known_hosts ${s.knownHosts}\n`);
  process.stdout.write(httpLine(s));
  // The pooled connections: the inventory's hosts (localhost, always there, needs none).
  process.stdout.write(`hosts: ${connected} of ${s.hosts.length} in the inventory connected (localhost needs no connection)\n`);
  for (const h of s.hosts.filter((x) => x.breaker && x.breaker.state !== 'closed')) {
    process.stdout.write(`  breaker ${h.breaker?.state} for ${h.name}: ${h.breaker?.consecutiveFailures} failures, last: ${h.breaker?.lastError ?? '-'}\n`);
  }
  process.stdout.write(`rate limit: ${s.rateLimit.ratePerSec}/s, burst ${s.rateLimit.burst}`);
  process.stdout.write(s.rateLimit.buckets.length ? `; ${s.rateLimit.buckets.map((b) => `${b.key}: ${b.tokens} tokens left`).join(', ')}\n` : '; no recent requests\n');
  if (s.commands) process.stdout.write(slotsLine('commands running', s.commands));
  if (s.attaches) process.stdout.write(slotsLine('attaches open', s.attaches));
  process.stdout.write(`sandboxes: ${s.sandboxes.length} running\n`);
  for (const b of s.sandboxes) {
    const shows = b.shows.join(', ') || 'no policy paths';
    const starts = b.stageServer ? 'its stage server forks commands' : 'no stage server: commands start through remux-sandbox-enter';
    process.stdout.write(`  for ${b.owner}, since ${b.startedAt}: ${b.commands} commands running; shows ${shows}${b.network ? '; network' : ''}; ${starts}\n`);
  }
}

export async function daemonStatusCommand(opts: { socket?: string; json?: boolean }): Promise<void> {
  const { socket, running: s, moved } = await findDaemon(opts.socket);
  if (s) return opts.json ? printJson(statusJson(s, moved)) : printDaemonStatus(s, moved);
  const silent = runningDaemon();
  if (opts.json) printJson({ running: false, socket, ...(silent ? { silent } : {}) });
  else process.stdout.write(silent ? `not answering: ${silentWords(silent)}\n` : `not running (no daemon answers on ${socket}); start it with: remux daemon start\n`);
  // LSB conventions: 3 "program is not running", 4 "program or service status is unknown".
  process.exitCode = silent ? 4 : 3;
}

export async function statusInfoCommand(opts: { json?: boolean }): Promise<void> {
  const { config, file } = loadConfig();
  const { socket, running: daemon, moved } = await findDaemon();
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
    daemon: daemon ? statusJson(daemon, moved) : { running: false, socket },
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
  if (daemon) printDaemonStatus(daemon, moved);
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
  for (const p of policies) {
    if (p.sandbox === 'off') {
      checks.push({ name: `policy ${p.name}`, ok: true, warning: true, detail: `static checks only (sandbox: false at ${p.source.file}:${p.source.line})` });
      continue;
    }
    // Rules that let their programs out (ps, df: they report on the host) are a choice made on purpose: shown, not warned of.
    const outside = p.rules.filter((r) => r.sandbox === false && r.effect !== 'deny');
    if (outside.length === 0) continue;
    const programs = outside.flatMap((r) => r.resources ?? []).join(', ');
    const at = outside.map((r) => `${basename(r.source.file)}:${r.source.line}`).join(', ');
    checks.push({ name: `policy ${p.name}`, ok: true, detail: `runs ${programs} outside the OS sandbox, under static checks alone (sandbox: false at ${at})` });
  }
  return checks;
}

function counted(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
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
  attempt('policies', () => `${counted(loadPolicies(policiesFile()).size, 'policy', 'policies')} in ${policiesFile()}`);
  attempt('hosts', () => `${counted(loadInventory(hostsFile()).hosts.length, 'host', 'hosts')} in ${hostsFile()}`);
  try {
    // Each file loads, yet every command without --policy would be refused (exit 2) naming neither file.
    const { config, file } = loadConfig();
    const policies = loadPolicies(policiesFile());
    if (!policies.has(config.default_policy)) {
      checks.push({ name: 'default policy', ok: false, detail: `default_policy ${config.default_policy} (${file ?? 'the built-in default'}) is not a policy of ${policiesFile()} (${[...policies.keys()].join(', ') || 'none'}): commands without --policy are refused` });
    }
  } catch {
    // the config and policies checks above report it
  }
  try {
    // Found missing only when a command connects, as an error that is not about the file that names it.
    for (const h of loadInventory(hostsFile()).hosts) {
      if (h.transport === 'ssh' && h.auth.method === 'identity' && !existsSync(h.auth.file)) {
        checks.push({ name: `host ${h.name}`, ok: true, warning: true, detail: `identity file ${h.auth.file} (${hostsFile()}) does not exist: connections to ${h.name} fail until it does` });
      }
    }
  } catch {
    // the hosts check above reports it
  }
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
  let daemon: DaemonStatus | null = null;
  let moved: FoundDaemon['moved'];
  try {
    ({ running: daemon, moved } = await findDaemon());
  } catch {
    // the config check above already reports it
  }
  checks.push({ name: 'daemon', ok: true, warning: !daemon, detail: daemon ? `pid ${daemon.pid}, ${counted(daemon.hosts.filter((h) => h.connected).length, 'host', 'hosts')} connected` : 'not running (commands run in-process)' });
  if (moved) checks.push({ name: 'daemon socket', ok: true, warning: true, detail: moved.message });
  const unheld = daemon ? unclaimed(daemon) : null;
  if (unheld) checks.push({ name: 'daemon lock', ok: true, warning: true, detail: unheld });
  const config = daemon ? configState(daemon) : null;
  if (config?.changed) checks.push({ name: 'daemon config', ok: true, warning: true, detail: config.message ?? '' });
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
