// Agent sessions' records: one JSON file in $REMUX_HOME, written atomically under a lock, so sessions
// outlive the CLI and the daemon, and two CLIs starting sessions at once never lose one.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { withFileLock, writeAtomic } from '../config/atomic-file.js';
import { remuxHome } from '../config/paths.js';
import { findByIdPrefix } from '../core/errors.js';

/** What `code start --sandbox` takes (agents.default_sandbox too). */
export const SANDBOX_KINDS = ['srt', 'docker', 'none'] as const;
export type SandboxKind = (typeof SANDBOX_KINDS)[number];

export interface AgentSession {
  /** Short random id; any unique prefix names the session. */
  id: string;
  name: string;
  /** claude | codex | gemini | aider, or the custom command line. */
  agent: string;
  /** Where the agent works (the worktree when there is one); the only place it may write. */
  workspace: string;
  /** The worktree's branch, else the workspace's current branch at start, else null. */
  branch: string | null;
  /** The repository a --worktree was made from (git worktree remove runs there). */
  repo: string | null;
  sandbox: SandboxKind;
  /** tmux session name on the agents' tmux server. */
  tmux: string;
  /**
   * The absolute path of that server's socket, as `tmux -L NAME` resolved it when the session (re)started
   * (under the TMUX_TMPDIR of the CLI that started it): every later command addresses it by this path.
   * Absent in records written before paths were kept: those are looked for on `tmux -L NAME` of the caller.
   */
  socket?: string;
  prompt: string | null;
  created: string;
  /**
   * starting (until the supervisor has the sandbox up), running, exited, or failed (the sandbox could not
   * start: see `error`); the watcher adds finer running states (waiting, permission, idle).
   */
  state: string;
  error?: string | null;
  /** Set once the supervisor serves the session's Claude Code hooks: its permission prompts are the hooks' to ask about. */
  hooks?: boolean;
  /** The supervisor: the pane's process, parent of the sandbox and its proxies. */
  pid: number | null;
  /** The agent's exit status, once its supervisor saw it exit (not when the session was killed). */
  exitStatus?: number | null;
}

export function agentsDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(remuxHome(env), 'agents');
}

export function sessionsFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(agentsDir(env), 'sessions.json');
}

/** The session's secrets (0600), read by its supervisor; never on a command line. */
export function envFileOf(id: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(agentsDir(env), `${id}.env`);
}

/** The pane's scrollback as the agent left it (0600), saved by its supervisor when the agent exits. */
export function logFileOf(id: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(agentsDir(env), `${id}.log`);
}

export function readSessions(env: NodeJS.ProcessEnv = process.env): AgentSession[] {
  const file = sessionsFile(env);
  if (!existsSync(file)) return [];
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { sessions?: AgentSession[] };
  return parsed.sessions ?? [];
}

/** Read-modify-write of the records under FILE.lock. */
export function changeSessions<T>(change: (sessions: AgentSession[]) => T, env: NodeJS.ProcessEnv = process.env): T {
  const file = sessionsFile(env);
  return withFileLock(file, () => {
    const sessions = readSessions(env);
    const result = change(sessions);
    writeAtomic(file, `${JSON.stringify({ sessions }, null, 2)}\n`);
    return result;
  });
}

export function newId(taken: AgentSession[]): string {
  for (;;) {
    const id = randomBytes(4).toString('hex');
    if (!taken.some((s) => s.id.startsWith(id.slice(0, 4)) || id.startsWith(s.id.slice(0, 4)))) return id;
  }
}

/** Over: its tmux session is gone (or never ran its agent). */
export function isOver(s: AgentSession): boolean {
  return s.state === 'exited' || s.state === 'failed';
}

/**
 * Whether the session's supervisor still runs: its pid is a process whose argv names the session
 * (`node supervisor.mjs ID`), not one the system gave the pid to since. A record without a socket path is
 * looked for on the caller's tmux server, which may be another than the one it was started on (another
 * TMUX_TMPDIR): its supervisor, the pane's process, says it lives.
 */
export function supervisorRuns(s: AgentSession): boolean {
  if (s.pid === null) return false;
  try {
    const argv = readFileSync(`/proc/${s.pid}/cmdline`, 'utf8').split('\0');
    return argv[2] === s.id && argv[1]?.endsWith('supervisor.mjs') === true;
  } catch {
    return false;
  }
}

/** Over though its record does not say so: its tmux session is not `live` on its server and its supervisor is gone. */
export function endedUnsaid(s: AgentSession, live: (s: AgentSession) => boolean): boolean {
  return !isOver(s) && !live(s) && !supervisorRuns(s);
}

/** The supervisor's word on its sandbox: running (with or without hooks), or failed with why. */
export function reportStart(id: string, outcome: { error: string } | { hooks: boolean }, env: NodeJS.ProcessEnv = process.env): void {
  changeSessions((sessions) => Object.assign(findSession(sessions, id), 'error' in outcome ? { state: 'failed', error: outcome.error } : { state: 'running', error: null, hooks: outcome.hooks }), env);
}

/** The supervisor's word that the agent exited, with its status. */
export function reportExit(id: string, status: number, env: NodeJS.ProcessEnv = process.env): void {
  changeSessions((sessions) => Object.assign(findSession(sessions, id), { state: 'exited', exitStatus: status }), env);
}

/**
 * The session an id or unique prefix (or exact name) names. A name may have been used again once its
 * session ended: it names the session running under it, else the newest that had it.
 */
export function findSession(sessions: AgentSession[], ref: string): AgentSession {
  const exact = sessions.find((s) => s.id === ref) ?? sessions.find((s) => s.name === ref && !isOver(s)) ?? sessions.findLast((s) => s.name === ref);
  return exact ?? findByIdPrefix(sessions, ref, { missing: `no agent session ${ref}`, hint: 'see them with remux code ls -a', plural: 'agent sessions' });
}
