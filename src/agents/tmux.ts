// The agents' tmux server: socket `remux` (tmux -L remux). REMUX_TMUX_SOCKET names another one so tests
// never touch a developer's sessions. tmux puts a named socket under the caller's $TMUX_TMPDIR, so a
// session records the absolute path its server had when it started (AgentSession.socket), and every later
// command addresses that server by path (tmux -S), whatever TMUX_TMPDIR the CLI, daemon or console runs with.
import { execFileSync, spawnSync } from 'node:child_process';
import type { HostEntry, Inventory, TmuxSocket } from '../hosts/inventory.js';
import { againIfServerExited, tmuxArgv } from '../sessions/tmux.js';
import { isOver, readSessions, supervisorRuns, type AgentSession } from './store.js';

/** The host name the gateway (console, API) gives the agents' tmux server. */
export const AGENTS_HOST = 'agents';

export function socketName(env: NodeJS.ProcessEnv = process.env): string {
  return env.REMUX_TMUX_SOCKET || 'remux';
}

/** The server new sessions start on: `tmux -L NAME` as this process's TMUX_TMPDIR places it. */
export function newServer(env: NodeJS.ProcessEnv = process.env): TmuxSocket {
  return { kind: 'name', name: socketName(env) };
}

/** The server session `s` runs on: the path it recorded, else (a record from before paths were kept) the one new sessions start on. */
export function serverOf(s: Pick<AgentSession, 'socket'>, env: NodeJS.ProcessEnv = process.env): TmuxSocket {
  return s.socket ? { kind: 'path', path: s.socket } : newServer(env);
}

/** The server of the agent session whose tmux session is `name`, when its record names one; else null. */
export function recordedServer(name: string, env: NodeJS.ProcessEnv = process.env): TmuxSocket | null {
  let sessions: AgentSession[];
  try {
    sessions = readSessions(env);
  } catch {
    return null; // an unreadable store: the host's own server, as before paths were recorded
  }
  const socket = sessions.findLast((s) => s.tmux === name)?.socket;
  return socket ? { kind: 'path', path: socket } : null;
}

/**
 * The servers agent sessions' records place them on, each with the tmux sessions that run there by their
 * records: what `session ls --host agents` lists besides the caller's own server. Sessions over are left out.
 */
export function recordedServers(env: NodeJS.ProcessEnv = process.env): Array<{ server: TmuxSocket; sessions: Set<string> }> {
  let sessions: AgentSession[];
  try {
    sessions = readSessions(env);
  } catch {
    return []; // an unreadable store: the host's own server, as before paths were recorded
  }
  const byPath = new Map<string, Set<string>>();
  for (const s of sessions) if (s.socket && !isOver(s)) (byPath.get(s.socket) ?? byPath.set(s.socket, new Set()).get(s.socket)!).add(s.tmux);
  return [...byPath].map(([path, names]) => ({ server: { kind: 'path', path }, sessions: names }));
}

/** Host `agents` as scopes see it: hosts.yaml's entry of that name, else this machine's agents' tmux server. */
export function agentsHostEntry(inventory: Inventory, env: NodeJS.ProcessEnv = process.env): HostEntry {
  return inventory.hosts.find((h) => h.name === AGENTS_HOST) ?? { name: AGENTS_HOST, transport: 'local', labels: {}, builtin: true, tmuxSocket: newServer(env) };
}

/** tmux's arguments for `server` (this user's own: no sudo). */
function on(server: TmuxSocket, args: string[]): string[] {
  return tmuxArgv({ loginUser: '', user: '', socket: server }, args).slice(1);
}

function tmux(server: TmuxSocket, args: string[]): string {
  // Sent to a server ending with its last session (another agent's killed meanwhile): again, once.
  return againIfServerExited(() => execFileSync('tmux', on(server, args), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
}

export function hasSession(server: TmuxSocket, name: string): boolean {
  return spawnSync('tmux', on(server, ['has-session', '-t', `=${name}`]), { stdio: 'ignore' }).status === 0;
}

/** Names of the sessions alive on the server (none when it is not running). */
export function liveSessions(server: TmuxSocket): Set<string> {
  const r = spawnSync('tmux', on(server, ['list-sessions', '-F', '#{session_name}']), { encoding: 'utf8' });
  return new Set(r.status === 0 ? r.stdout.split('\n').filter(Boolean) : []);
}

/**
 * Whether a session's tmux session is alive on its own server, each server listed once (at its first
 * session asked about), not once per session.
 */
export function liveness(env: NodeJS.ProcessEnv = process.env): (s: Pick<AgentSession, 'socket' | 'tmux'>) => boolean {
  const servers = new Map<string, Set<string>>();
  return (s) => {
    const key = s.socket || '';
    let live = servers.get(key);
    if (!live) servers.set(key, (live = liveSessions(serverOf(s, env))));
    return live.has(s.tmux);
  };
}

/**
 * Variables the pane takes from this CLI rather than from the tmux server (started by whichever CLI came
 * first): where remux's files are, and the PATH the agent is found on. Never secrets: tmux's argv is public.
 */
const PANE_ENV = ['PATH', 'HOME', 'REMUX_HOME', 'XDG_CONFIG_HOME'];

/**
 * A detached session whose only pane runs `argv` (tmux execs it without a shell when given several words),
 * in `cwd`, on the server new sessions start on: the pane's pid, and the absolute path of that server's
 * socket, which the session's record keeps.
 */
export function newSession(name: string, cwd: string, argv: string[], env: NodeJS.ProcessEnv = process.env): PaneAt {
  const vars = PANE_ENV.filter((n) => env[n] !== undefined).flatMap((n) => ['-e', `${n}=${env[n]}`]);
  // -P -F: the pane's pid and the server's socket from the same tmux run, not a second one.
  return paneAt(tmux(newServer(env), ['new-session', '-d', '-P', '-F', PANE_AT, '-s', name, '-c', cwd, '-x', '200', '-y', '50', ...vars, '--', ...argv]));
}

/** A pane's process and the absolute path of its server's socket. */
interface PaneAt {
  pid: number;
  socket: string;
}

const PANE_AT = '#{pane_pid} #{socket_path}';

/** PANE_AT as tmux printed it. The path is last: it is the rest of the line, whatever it holds. */
function paneAt(out: string): PaneAt {
  const line = out.replace(/\n$/, '');
  const at = line.indexOf(' ');
  return { pid: Number(line.slice(0, at)), socket: line.slice(at + 1) };
}

/** Session `name`'s pane on `server` and that server's socket path; null when the server has no such session. */
function paneOf(server: TmuxSocket, name: string): PaneAt | null {
  const r = spawnSync('tmux', on(server, ['display-message', '-p', '-t', `=${name}:`, PANE_AT]), { encoding: 'utf8' });
  return r.status === 0 ? paneAt(r.stdout) : null;
}

/** A running session whose record is from before socket paths were kept. */
function unplaced(s: AgentSession): boolean {
  return !s.socket && !isOver(s) && s.pid !== null;
}

/**
 * Gives each running session recorded without a socket path the path of the server new sessions start on
 * (this process's), when it runs there: from then on every command finds it by that path, from anywhere.
 * Only where that server's session of its name has the record's supervisor as its pane's process: a
 * session of the same name there that is not its own (on another server since the record was written)
 * never becomes its server. Changes `sessions` in place; says how many it placed.
 */
export function placeSessions(sessions: AgentSession[], env: NodeJS.ProcessEnv = process.env): number {
  const candidates = sessions.filter(unplaced);
  if (candidates.length === 0) return 0;
  const server = newServer(env);
  const live = liveSessions(server);
  let placed = 0;
  for (const s of candidates) {
    if (!live.has(s.tmux)) continue;
    const pane = paneOf(server, s.tmux);
    if (pane?.pid !== s.pid || !supervisorRuns(s)) continue;
    s.socket = pane.socket;
    placed++;
  }
  return placed;
}

export function killSession(server: TmuxSocket, name: string): void {
  spawnSync('tmux', on(server, ['kill-session', '-t', `=${name}`]), { stdio: 'ignore' });
}

/** The pane's whole scrollback. */
export function capture(server: TmuxSocket, name: string): string {
  return tmux(server, ['capture-pane', '-p', '-J', '-S', '-', '-t', `=${name}:`]);
}
