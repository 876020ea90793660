// Where remux keeps its files. One function per location so every command agrees,
// and the seed's RPIPE_* variables keep working as aliases.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

type Env = NodeJS.ProcessEnv;

/** First non-empty value among the given variable names. */
export function envFirst(env: Env, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== '') return value;
  }
  return undefined;
}

/** Expands a leading `~/` the way users write paths in flags and variables. */
export function expandHome(path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return join(homedir(), path.slice(2));
  return path;
}

/** $REMUX_HOME, else $XDG_CONFIG_HOME/remux, else ~/.config/remux. */
export function remuxHome(env: Env = process.env): string {
  const explicit = envFirst(env, 'REMUX_HOME');
  if (explicit) return resolve(expandHome(explicit));
  const xdg = envFirst(env, 'XDG_CONFIG_HOME');
  return resolve(xdg ? join(xdg, 'remux') : join(homedir(), '.config', 'remux'));
}

export function configFile(env: Env = process.env): string {
  return join(remuxHome(env), 'config.yaml');
}

/** The host inventory (hosts/inventory.ts). */
export function hostsFile(env: Env = process.env): string {
  return join(remuxHome(env), 'hosts.yaml');
}

/** The policies file: $REMUX_POLICY_CONFIG (alias $RPIPE_POLICY_CONFIG), else $REMUX_HOME/policies.yaml. */
export function policiesFile(env: Env = process.env): string {
  const explicit = envFirst(env, 'REMUX_POLICY_CONFIG', 'RPIPE_POLICY_CONFIG');
  return explicit ? resolve(expandHome(explicit)) : join(remuxHome(env), 'policies.yaml');
}

/** The audit store: $REMUX_AUDIT_DB, else $RPIPE_AUDIT_LOG_DIR/audit.db, else $REMUX_HOME/audit.db. */
export function auditDbFile(env: Env = process.env): string {
  const explicit = envFirst(env, 'REMUX_AUDIT_DB');
  if (explicit) return resolve(expandHome(explicit));
  const legacyDir = envFirst(env, 'RPIPE_AUDIT_LOG_DIR');
  if (legacyDir) return join(resolve(expandHome(legacyDir)), 'audit.db');
  return join(remuxHome(env), 'audit.db');
}

/** Principals (who may use the HTTP API, the web console and REMUX_TOKEN) with their token hashes and scopes. */
export function principalsFile(env: Env = process.env): string {
  return join(remuxHome(env), 'principals.yaml');
}

/** The certificate the daemon generates on first start when none is configured. */
export function tlsDir(env: Env = process.env): string {
  return join(remuxHome(env), 'tls');
}

/**
 * The CLI's V8 code caches (written and read by src/cli/launch.cts, which computes the same path on its
 * own so as to load nothing first): V8 runs what a cache holds, so whoever writes one runs code as remux.
 */
export function codeCacheDir(env: Env = process.env): string {
  return resolve(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'remux');
}

/** Attach recordings (asciicast v2). */
export function recordingsDir(env: Env = process.env): string {
  return join(remuxHome(env), 'recordings');
}

/** Approvals (policy asks, agent prompts) and their answers. */
export function approvalsDbFile(env: Env = process.env): string {
  return join(remuxHome(env), 'approvals.db');
}

/** The key that signs approval decision links (created on first use, 0600). */
export function approvalsKeyFile(env: Env = process.env): string {
  return join(remuxHome(env), 'approvals.key');
}

/** The daemon's Unix socket: --socket, else $REMUX_SOCKET (alias $RPIPE_SOCKET), else config, else $REMUX_HOME/run/remux.sock. */
export function socketFile(env: Env = process.env, configured?: string): string {
  const explicit = envFirst(env, 'REMUX_SOCKET', 'RPIPE_SOCKET') ?? configured;
  return explicit ? resolve(expandHome(explicit)) : defaultSocketFile(env);
}

/** The socket when none is named: where a daemon of this home serves unless told otherwise. */
export function defaultSocketFile(env: Env = process.env): string {
  return join(remuxHome(env), 'run', 'remux.sock');
}

/**
 * Where the daemon says, while it serves the web console, at which URL ({url, pid}): approvals raised
 * in other remux processes (an agent session's hooks) link to it when notify.base_url is unset.
 */
export function consoleUrlFile(env: Env = process.env): string {
  return join(remuxHome(env), 'run', 'console.json');
}

/**
 * The agent prompts' approvals a stopping daemon left open for the next one ([{session, fingerprint,
 * approval, hook?}]), read and removed as it starts (agents/daemon-watch.ts).
 */
export function promptHandoverFile(env: Env = process.env): string {
  return join(remuxHome(env), 'run', 'agent-prompts.json');
}

/**
 * The web console's browser sessions and login lockouts a stopping daemon left for the next one
 * (gateway/http/session-handover.ts), read and removed as it starts.
 */
export function sessionHandoverFile(env: Env = process.env): string {
  return join(remuxHome(env), 'run', 'browser-sessions.json');
}

/**
 * Held (an exclusive SQLite lock, which the kernel drops when the holder ends, however it ends) by the
 * one daemon of this REMUX_HOME while it runs; never removed: a lock on a file others may have opened
 * would not exclude them any more once the file is replaced.
 */
export function daemonLockFile(env: Env = process.env): string {
  return join(remuxHome(env), 'run', 'daemon.lock');
}

/** Which daemon holds daemonLockFile: {pid, socket, startedAt, process} (gateway/daemon-lock.ts). */
export function daemonRecordFile(env: Env = process.env): string {
  return join(remuxHome(env), 'run', 'daemon.json');
}

/** Where a background daemon writes its own log (not the audit trail). */
export function daemonLogFile(env: Env = process.env): string {
  return join(remuxHome(env), 'run', 'daemon.log');
}

/** known_hosts: $REMUX_KNOWN_HOSTS (alias $RPIPE_KNOWN_HOSTS), else config, else ~/.ssh/known_hosts. */
export function knownHostsFile(env: Env = process.env, configured?: string): string {
  const explicit = envFirst(env, 'REMUX_KNOWN_HOSTS', 'RPIPE_KNOWN_HOSTS') ?? configured;
  return resolve(expandHome(explicit ?? join(homedir(), '.ssh', 'known_hosts')));
}

/**
 * The daemon socket without loading and validating config.yaml (yaml + zod cost ~50 ms of start-up):
 * only when the file mentions a `socket:` key can it change the answer, and then `loadConfigured` runs.
 */
export async function socketFileFast(env: Env, loadConfigured: () => Promise<string | undefined>): Promise<string> {
  if (envFirst(env, 'REMUX_SOCKET', 'RPIPE_SOCKET')) return socketFile(env);
  const file = configFile(env);
  const mentionsSocket = existsSync(file) && /^\s*socket\s*:/m.test(readFileSync(file, 'utf8'));
  return socketFile(env, mentionsSocket ? await loadConfigured() : undefined);
}
