// The agents' tmux server: socket `remux` (tmux -L remux). REMUX_TMUX_SOCKET names another one so tests
// never touch a developer's sessions.
import { execFileSync, spawnSync } from 'node:child_process';
import type { HostEntry, Inventory } from '../hosts/inventory.js';

/** The host name the gateway (console, API) gives the agents' tmux server. */
export const AGENTS_HOST = 'agents';

export function socketName(env: NodeJS.ProcessEnv = process.env): string {
  return env.REMUX_TMUX_SOCKET || 'remux';
}

/** Host `agents` as scopes see it: hosts.yaml's entry of that name, else this machine's agents' tmux server. */
export function agentsHostEntry(inventory: Inventory, env: NodeJS.ProcessEnv = process.env): HostEntry {
  return inventory.hosts.find((h) => h.name === AGENTS_HOST) ?? { name: AGENTS_HOST, transport: 'local', labels: {}, builtin: true, tmuxSocket: { kind: 'name', name: socketName(env) } };
}

export function tmux(args: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync('tmux', ['-L', socketName(env), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function hasSession(name: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return spawnSync('tmux', ['-L', socketName(env), 'has-session', '-t', `=${name}`], { stdio: 'ignore' }).status === 0;
}

/** Names of the sessions alive on the socket (none when its server is not running). */
export function liveSessions(env: NodeJS.ProcessEnv = process.env): Set<string> {
  const r = spawnSync('tmux', ['-L', socketName(env), 'list-sessions', '-F', '#{session_name}'], { encoding: 'utf8' });
  return new Set(r.status === 0 ? r.stdout.split('\n').filter(Boolean) : []);
}

/**
 * Variables the pane takes from this CLI rather than from the tmux server (started by whichever CLI came
 * first): where remux's files are, and the PATH the agent is found on. Never secrets: tmux's argv is public.
 */
const PANE_ENV = ['PATH', 'HOME', 'REMUX_HOME', 'XDG_CONFIG_HOME'];

/** A detached session whose only pane runs `argv` (tmux execs it without a shell when given several words), in `cwd`. */
export function newSession(name: string, cwd: string, argv: string[], env: NodeJS.ProcessEnv = process.env): number {
  const vars = PANE_ENV.filter((n) => env[n] !== undefined).flatMap((n) => ['-e', `${n}=${env[n]}`]);
  // -P -F: the pane's pid from the same tmux run, not a second one.
  return Number(tmux(['new-session', '-d', '-P', '-F', '#{pane_pid}', '-s', name, '-c', cwd, '-x', '200', '-y', '50', ...vars, '--', ...argv], env).trim());
}

export function killSession(name: string, env: NodeJS.ProcessEnv = process.env): void {
  spawnSync('tmux', ['-L', socketName(env), 'kill-session', '-t', `=${name}`], { stdio: 'ignore' });
}

/** The pane's whole scrollback. */
export function capture(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return tmux(['capture-pane', '-p', '-J', '-S', '-', '-t', `=${name}:`], env);
}
