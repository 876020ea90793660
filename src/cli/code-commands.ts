// Implementations of `remux code start|ls|attach|status|logs|restart|kill|rm`. Sessions are local: tmux on the agents' socket, records in
// $REMUX_HOME/agents, each command acting as REMUX_TOKEN's principal (else the local user). Start, restart and kill go through
// perform() as agent actions on host `agents` (scope, then audited, begun before they act), and so does rm; attach is a session attach there.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { fileURLToPath } from 'node:url';
import { AuditStore } from '../audit/store.js';
import { writeAtomic } from '../config/atomic-file.js';
import { cliPrincipal, loadConfig, type Config } from '../config/config.js';
import { auditDbFile, expandHome, principalsFile, remuxHome, socketFile } from '../config/paths.js';
import { ADMIN_SCOPE, loadPrincipals, tokenPrincipal } from '../config/principals.js';
import { ScopeError } from '../core/errors.js';
import { connectDaemon } from '../gateway/client.js';
import { clientSocket } from '../config/daemon-record.js';
import { perform } from '../core/perform.js';
import { hostInScope } from '../core/scope.js';
import type { AgentAction, AgentReadAction, Principal } from '../core/types.js';
import { hostsFile, loadInventory } from '../hosts/inventory.js';
import { isKnownAgent, LAUNCH, launchArgv } from '../agents/launch.js';
import { hookDirOf } from '../agents/hook-endpoint.js';
import { checkAgentProgram, checkBackend, checkWorkspace, removeAgentTmp } from '../agents/sandbox.js';
import { changeSessions, endedUnsaid, envFileOf, findSession, isOver, logFileOf, newId, readSessions, SANDBOX_KINDS, type AgentSession, type SandboxKind } from '../agents/store.js';
import { AGENTS_HOST, agentsHostEntry, capture, hasSession, killSession, liveness, newSession, placeSessions, serverOf, socketName } from '../agents/tmux.js';
import { processInvocation } from './invocation.js';
import { printJson, printTable, UsageError, utcCell } from './output.js';

export interface StartOptions {
  name?: string;
  prompt?: string;
  continue?: boolean;
  attach?: boolean;
  agent?: string;
  sandbox?: string;
  worktree?: string;
  json?: boolean;
}

const YOURSELF = 'or unset REMUX_TOKEN to act as yourself';

/**
 * Who acts on agent sessions: REMUX_TOKEN's principal (as for every command line), else the local user,
 * who owns every file remux reads and so is an admin. A token that matches no one is refused, never ignored.
 */
function actor(): Principal {
  return tokenPrincipal(process.env, () => loadPrincipals(principalsFile())) ?? { name: cliPrincipal(loadConfig().config), via: 'cli', scope: ADMIN_SCOPE };
}

/**
 * The principal, once its scope reaches host `agents`, as finding a session by `ref` needs: one out of it
 * is refused through perform (audited, an `agent.list` of what it asked for) before any record is read,
 * so that no ID or name leaks through what is found.
 */
async function finder(ref: string | null, purpose: string): Promise<Principal> {
  const principal = actor();
  const detail = ref === null ? `find agent sessions to ${purpose}` : `find agent session ${ref} to ${purpose}`;
  if (!hostInScope(principal.scope, agentsHost())) await performed(principal, reading('agent.list', detail, ref ?? undefined), () => {});
  return principal;
}

function reading(kind: AgentReadAction['kind'], detail: string, session?: string): AgentReadAction {
  return { kind, host: AGENTS_HOST, detail, ...(session !== undefined ? { session } : {}) };
}

function agentsHost(): ReturnType<typeof agentsHostEntry> {
  return agentsHostEntry(loadInventory(hostsFile()));
}

/**
 * An agent action through the one door: perform() checks the principal's scope, begins the audit record
 * durably, runs `act` (which changes things only then), and ends the record with how it went. What `act`
 * throws is thrown again as it was (a UsageError stays one); a refusal is a ScopeError (exit 77).
 */
async function performed(principal: Principal, action: AgentAction | AgentReadAction, act: () => Promise<void> | void): Promise<void> {
  const audit = AuditStore.open(auditDbFile());
  const failed: { error?: unknown } = {};
  try {
    const result = await perform(
      {
        principal,
        // No policy decides an agent action (perform-agent.ts); no host is reached but the agents' tmux server.
        policies: new Map(),
        defaultPolicy: loadConfig().config.default_policy,
        defaultTimeoutMs: null,
        defaultPipefail: false,
        audit,
        host: (name) => {
          throw new Error(`internal: agent actions reach no host (${name})`);
        },
        hostEntry: (name) => (name === AGENTS_HOST ? agentsHost() : undefined),
        agents: {
          async run() {
            try {
              await act();
            } catch (error) {
              failed.error = error;
              throw error;
            }
          },
        },
      },
      action,
      { onStdout: () => {}, onStderr: () => {} },
    );
    if ('error' in failed) throw failed.error;
    if (result.exitCode !== 0) {
      const may = action.kind === 'agent.list' || action.kind === 'agent.logs' ? '' : ' and that may act, not only watch';
      throw new ScopeError(result.message ?? `${action.kind} refused`, `use a principal whose hosts include ${AGENTS_HOST}${may}, ${YOURSELF}`);
    }
  } finally {
    audit.close();
  }
}

/** The action on an existing session, as perform() and the audit see it. */
function actionOn(kind: 'agent.restart' | 'agent.kill' | 'agent.remove', session: AgentSession, detail: string): AgentAction {
  return { kind, host: AGENTS_HOST, session: session.id, workspace: session.workspace, agent: session.agent, sandbox: session.sandbox, detail };
}

function git(cwd: string, args: string[]): string {
  return execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function currentBranch(dir: string): string | null {
  const r = spawnSync('git', ['-C', dir, 'rev-parse', '--abbrev-ref', 'HEAD'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Where `code start --worktree` puts session `id`'s worktree. */
function worktreeDirOf(id: string): string {
  return join(remuxHome(), 'worktrees', id);
}

/** `git worktree add` under $REMUX_HOME/worktrees/ID: beside no one's repository; `code rm` removes it once the session ended, if clean. */
function addWorktree(repo: string, branch: string, id: string): string {
  if (spawnSync('git', ['-C', repo, 'rev-parse', '--git-dir'], { stdio: 'ignore' }).status !== 0) throw new UsageError(`--worktree: ${repo} is not a git repository`);
  const dir = worktreeDirOf(id);
  mkdirSync(join(remuxHome(), 'worktrees'), { recursive: true, mode: 0o700 });
  const exists = spawnSync('git', ['-C', repo, 'rev-parse', '--verify', '--quiet', `refs/heads/${branch}`], { stdio: 'ignore' }).status === 0;
  try {
    git(repo, ['worktree', 'add', ...(exists ? [dir, branch] : ['-b', branch, dir])]);
  } catch (err) {
    // Mostly a branch that another worktree has checked out: an ended session's stays (see remux code ls -a).
    throw new UsageError(
      `--worktree ${branch}: git worktree add failed: ${(err as { stderr?: string }).stderr?.trim() ?? String(err)}`,
      `a branch is checked out in one worktree at a time: choose another branch, restart the session whose worktree has it (remux code restart ID), remove that ended session with its worktree (remux code rm ID), or remove that worktree (git -C ${repo} worktree remove PATH)`,
    );
  }
  return dir;
}

/** The agent's credentials from this environment, into a 0600 file its supervisor reads: never on a command line. */
function writeSecrets(session: AgentSession): void {
  const names = isKnownAgent(session.agent) ? LAUNCH[session.agent].secrets : [];
  const lines = names.filter((n) => process.env[n]).map((n) => `${n}=${process.env[n]}`);
  writeAtomic(envFileOf(session.id), lines.length ? `${lines.join('\n')}\n` : '');
}

// The bundled supervisor (scripts/bundle.mjs): it starts in half the time its ~300 modules took.
const SUPERVISOR = fileURLToPath(new URL('../agents/supervisor.mjs', import.meta.url));

/**
 * Starts the session's pane: the supervisor (this CLI, `code supervise`), which starts the sandbox. On the
 * server new sessions start on: the record takes its socket's path with the supervisor's pid.
 */
function launch(session: AgentSession, resume: boolean): Pick<AgentSession, 'pid' | 'socket'> {
  writeSecrets(session);
  return newSession(session.tmux, session.workspace, [process.execPath, SUPERVISOR, session.id, ...(resume ? ['--resume'] : [])]);
}

const START_TIMEOUT_MS = 15_000;

/** Waits for the supervisor's word: the sandbox is up and the agent started, or the sandbox failed (fail closed). */
async function started(id: string): Promise<void> {
  const end = Date.now() + START_TIMEOUT_MS;
  const first = findSession(readSessions(), id);
  const { tmux } = first;
  const server = serverOf(first);
  for (;;) {
    // Whether the pane lives, then what it reported: a report written just before it ended is read.
    const alive = hasSession(server, tmux);
    const s = findSession(readSessions(), id);
    if (s.state === 'failed') throw new Error(s.error ?? 'the sandbox cannot start');
    // running, or already one of the states the daemon's watcher tells (waiting, working, …); or the
    // agent started and already exited by itself (its status is recorded: `code ls -a` shows it).
    if (s.state !== 'starting' && !isOver(s)) return;
    if (s.state === 'exited' && typeof s.exitStatus === 'number') return;
    if (!alive) throw new Error(`the session's supervisor exited before starting the agent`);
    if (Date.now() > end) throw new Error(`the sandbox did not start within ${START_TIMEOUT_MS / 1000} s (see remux code logs ${id})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function startCommand(path: string, opts: StartOptions): Promise<void> {
  const { config } = loadConfig();
  const dir = resolve(expandHome(path));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`workspace ${dir} is not a directory`);
  const agent = opts.agent ?? config.agents.default_agent;
  const sandbox = (opts.sandbox ?? config.agents.default_sandbox) as SandboxKind;
  if (!SANDBOX_KINDS.includes(sandbox)) throw new UsageError(`--sandbox must be srt, docker or none, got "${sandbox}"`);
  // Bad -p/--continue/CMD, a backend that cannot start, a program not installed: refused before anything exists.
  const [program] = launchArgv({ agent, prompt: opts.prompt, continue: opts.continue }) as [string];
  checkBackend(sandbox);
  checkAgentProgram(agent, program, dir, sandbox);
  // With --worktree the agent works in a worktree of its own, not in DIR.
  if (sandbox !== 'none' && !opts.worktree) checkWorkspace(realpathSync(dir), config.agents, remuxHome());
  const principal = actor();
  // Its ID now, for the audit record; the session's record is written once perform() has admitted the start.
  const id = newId(readSessions());
  const name = opts.name ?? `${agent.split(' ')[0]}-${id.slice(0, 4)}`;
  const session: AgentSession = { id, name, agent, workspace: realpathSync(dir), branch: null, repo: null, sandbox, tmux: `agent-${id}`, prompt: opts.prompt ?? null, created: new Date().toISOString(), state: 'starting', pid: null };
  // The supervisor reads the record (workspace first) and reports on it: write each field as it is known.
  const update = (fields: Partial<AgentSession>): void => {
    Object.assign(session, fields);
    changeSessions((sessions) => Object.assign(findSession(sessions, session.id), fields));
  };
  const what = `${agent} in ${session.workspace}, sandbox ${sandbox}${opts.worktree ? `, worktree of branch ${opts.worktree}` : ''}`;
  await performed(principal, { kind: 'agent.start', host: AGENTS_HOST, session: id, workspace: session.workspace, agent, sandbox, detail: what }, async () => {
    changeSessions((sessions) => {
      if (sessions.some((s) => s.name === name && !isOver(s))) throw new UsageError(`an agent session is already named ${name}`);
      // Another start may have drawn an ID with the same first four characters since (they name sessions on the command line).
      if (sessions.some((s) => s.id.slice(0, 4) === id.slice(0, 4))) throw new Error(`another agent session took ID ${id.slice(0, 4)}… meanwhile: start again`);
      sessions.push({ ...session });
    });
    try {
      if (opts.worktree) update({ repo: session.workspace, workspace: addWorktree(session.workspace, opts.worktree, id) });
      update({ branch: currentBranch(session.workspace) });
      update(launch(session, opts.continue === true));
    } catch (err) {
      // Nothing was launched: no record is left to list or restart (a restart would start the agent in the
      // repository itself instead of the worktree asked for), and no copy of its keys.
      changeSessions((sessions) => void sessions.splice(sessions.findIndex((s) => s.id === id), 1));
      rmSync(envFileOf(id), { force: true });
      throw err;
    }
    // A start the sandbox refused ends the action as failed, with the supervisor's reason.
    await started(id);
  });
  if (opts.json) {
    // A script goes on by the ID: the record as `code ls --json` shows it, where it runs, and what comes next.
    const next = { attach: `remux code attach ${session.id}`, logs: `remux code logs ${session.id}`, kill: `remux code kill ${session.id} -f` };
    printJson({ ...findSession(readSessions(), session.id), host: AGENTS_HOST, ...next });
    return tellUnwatched(session.id, config);
  }
  process.stdout.write(`${session.id} ${session.name}: ${session.agent} in ${session.workspace} (sandbox ${session.sandbox}${session.sandbox === 'none' ? ': UNSANDBOXED' : ''})\n`);
  await tellUnwatched(session.id, config);
  if (opts.attach !== false && process.stdin.isTTY && process.stdout.isTTY) await attachCommand(session.id);
  else process.stdout.write(`attach: remux code attach ${session.id}\n`);
}

/**
 * The daemon's watcher turns a permission prompt on an agent's screen into an approval (a notification
 * on the phone): without a daemon nothing does, unless the agent's own hooks ask (claude's).
 */
async function tellUnwatched(id: string, config: Config): Promise<void> {
  if (findSession(readSessions(), id).hooks === true) return;
  const daemon = await connectDaemon(clientSocket(socketFile(process.env, config.daemon.socket), process.env, (moved) => process.stderr.write(`warning: ${moved}\n`)));
  if (daemon) return void daemon.destroy();
  process.stderr.write('remux: no daemon runs: the permission prompts on this session\'s screen become approvals (and notifications) once one does (remux daemon start)\n');
}

/**
 * The records, with state reconciled against tmux: a session whose tmux session is gone has exited; one
 * recorded before socket paths were kept that runs on this process's server gets that server's path.
 */
function reconciled(): AgentSession[] {
  const live = liveness();
  return changeSessions((sessions) => {
    placeSessions(sessions);
    for (const s of sessions) {
      // One its tmux server does not list whose supervisor runs lives on (an old record's, on another server).
      if (!endedUnsaid(s, live)) continue;
      s.state = 'exited';
      removeAgentTmp(s.id); // its supervisor may have been killed before it could
    }
    return sessions.map((s) => ({ ...s }));
  });
}

export async function lsCommand(opts: { all?: boolean; json?: boolean }): Promise<void> {
  await performed(actor(), reading('agent.list', opts.all ? 'list agent sessions, exited ones too' : 'list running agent sessions'), () => {
    const sessions = reconciled().filter((s) => opts.all || !isOver(s));
    if (opts.json) return printJson(sessions);
    if (sessions.length === 0) {
      process.stdout.write(opts.all ? 'no agent sessions\n' : 'no running agent sessions (remux code ls -a shows exited ones)\n');
      return;
    }
    printTable(
      ['ID', 'NAME', 'AGENT', 'STATE', 'SANDBOX', 'WORKSPACE', 'BRANCH', 'CREATED (UTC)'],
      sessions.map((s) => [s.id, s.name, s.agent, stateText(s), s.sandbox, s.workspace, s.branch ?? '-', utcCell(s.created)]),
    );
  });
}

export async function statusCommand(opts: { json?: boolean }): Promise<void> {
  await performed(actor(), reading('agent.list', 'show the state of agent sessions'), () => {
    // An ended session's pid is no longer its supervisor's: the system may have given it to another process.
    const sessions = reconciled().map((s) => (isOver(s) ? { ...s, pid: null } : s));
    if (opts.json) return printJson(sessions.map(({ id, name, agent, state, pid }) => ({ id, name, agent, state, pid })));
    if (sessions.length === 0) return void process.stdout.write('no agent sessions\n');
    printTable(['ID', 'NAME', 'AGENT', 'STATE', 'PID'], sessions.map((s) => [s.id, s.name, s.agent, stateText(s), s.pid]));
  });
}

function running(ref: string): AgentSession {
  const session = findSession(reconciled(), ref);
  if (isOver(session)) throw new UsageError(`agent session ${session.id} (${session.name}) has exited`, `start it again with remux code restart ${session.id}`);
  return seen(session);
}

/**
 * The session (of reconciled()), when its tmux server has it or it is over. One whose supervisor runs though
 * the server does not list it is refused: its pane is out of reach, and a kill here would remove its files
 * while its agent went on. A record from before socket paths were kept that still has none runs on
 * another server than this process's (another TMUX_TMPDIR or REMUX_TMUX_SOCKET), whatever session of its
 * name this one has; a recorded path fails only once its socket file is gone (removed by a /tmp cleaner).
 */
function seen(session: AgentSession): AgentSession {
  if (isOver(session) || (session.socket && hasSession(serverOf(session), session.tmux))) return session;
  const runs = `agent session ${session.id} (${session.name}) runs (its supervisor is pid ${session.pid})`;
  if (session.socket) throw new UsageError(`${runs}, but its tmux server does not answer on ${session.socket}`, 'tmux makes its socket again when its server gets SIGUSR1 (kill -USR1 with the pid of the tmux server, the parent of that supervisor)');
  throw new UsageError(
    `${runs} on a tmux server this command does not see: tmux -L ${socketName()} in ${process.env.TMUX_TMPDIR || '/tmp'} has no session ${session.tmux} running it`,
    'run remux with the TMUX_TMPDIR (and REMUX_TMUX_SOCKET) the session was started with (it was started before remux recorded where)',
  );
}

/**
 * Attaches this terminal to the agent's pane as `remux session attach` does on host `agents`: through
 * perform() (scope, with the tmux users the principal may use, and the audit), recorded, counted in a
 * running daemon's attach limits. Read-only, it only watches: all a principal with read-only attaches may do.
 */
export async function attachCommand(ref: string, opts: { readOnly?: boolean } = {}): Promise<void> {
  await finder(ref, 'attach to it');
  const session = running(ref);
  const inv = processInvocation();
  const [{ processClientHost }, { attachSession }] = await Promise.all([import('./client-commands.js'), import('./session-commands.js')]);
  // An attach needs no policy: `remux code` works before `remux config init` has written any.
  const code = await processClientHost(inv).run({ daemon: false, policiesWhenNeeded: true }, (runner) => attachSession(inv, runner, session.tmux, { host: AGENTS_HOST, daemon: false, readOnly: opts.readOnly === true }));
  if (code !== 0) process.exitCode = code;
  // The session ended under the terminal (not a detach): its screen is gone, so say how it ended.
  const after = findSession(reconciled(), session.id);
  if (isOver(after)) process.stderr.write(`remux: ${after.agent} exited${exitText(after)}; its output: remux code logs ${after.id}\n`);
}

/** The state as a table shows it: an agent that exited by itself with its status. */
function stateText(s: AgentSession): string {
  return s.state === 'exited' && typeof s.exitStatus === 'number' ? `exited (${s.exitStatus})` : s.state;
}

/** ` with status N` when the supervisor saw the agent exit, else nothing. */
function exitText(s: AgentSession): string {
  return typeof s.exitStatus === 'number' ? ` with status ${s.exitStatus}` : '';
}

export async function logsCommand(ref: string, opts: { follow?: boolean }): Promise<void> {
  const detail = opts.follow ? "follow an agent session's screen" : "read an agent session's screen or saved scrollback";
  await performed(actor(), reading('agent.logs', detail, ref), () => printLogs(ref, opts.follow === true));
}

/** The session's screen now (and, following, what it shows next until it ends), or its scrollback saved at its exit. */
async function printLogs(ref: string, follow: boolean): Promise<void> {
  const session = seen(findSession(reconciled(), ref));
  const server = serverOf(session);
  if (!hasSession(server, session.tmux)) {
    // Its supervisor kept the scrollback when the agent exited (not when the session was killed).
    const saved = existsSync(logFileOf(session.id)) ? readFileSync(logFileOf(session.id), 'utf8') : null;
    if (saved === null) throw new UsageError(`agent session ${session.id} has exited: its pane and scrollback are gone`);
    process.stdout.write(saved);
    process.stderr.write(`remux: agent session ${session.id} has exited${exitText(session)}: this is its scrollback when it did\n`);
    return;
  }
  let last = capture(server, session.tmux).replace(/\n+$/, '');
  process.stdout.write(`${last}\n`);
  // Follow by diffing successive captures: new lines at the end are printed, a redraw prints the new tail.
  while (follow && hasSession(server, session.tmux)) {
    await new Promise((r) => setTimeout(r, 250));
    let now: string;
    try {
      now = capture(server, session.tmux).replace(/\n+$/, '');
    } catch {
      break;
    }
    if (now === last) continue;
    process.stdout.write(now.startsWith(last) ? `${now.slice(last.length).replace(/^\n/, '')}\n` : `${now.split('\n').slice(-10).join('\n')}\n`);
    last = now;
  }
  if (!follow) return;
  // The pane is gone: what the agent wrote after the last look is in the scrollback its supervisor kept
  // (none when the session was killed), then how it ended.
  const saved = existsSync(logFileOf(session.id)) ? readFileSync(logFileOf(session.id), 'utf8').replace(/\n+$/, '') : '';
  if (saved.startsWith(last) && saved.length > last.length) process.stdout.write(`${saved.slice(last.length).replace(/^\n/, '')}\n`);
  process.stderr.write(`remux: agent session ${session.id} has ended${exitText(findSession(reconciled(), session.id))}\n`);
}

export async function restartCommand(ref: string): Promise<void> {
  const principal = await finder(ref, 'restart it');
  const session = seen(findSession(reconciled(), ref));
  checkBackend(session.sandbox);
  checkAgentProgram(session.agent, launchArgv({ agent: session.agent })[0] as string, session.workspace, session.sandbox);
  if (session.sandbox !== 'none') checkWorkspace(session.workspace, loadConfig().config.agents, remuxHome());
  const resume = isKnownAgent(session.agent) && LAUNCH[session.agent].resume !== null;
  const detail = `${session.agent} in ${session.workspace}${resume ? ', resuming its conversation' : ''}`;
  await performed(principal, actionOn('agent.restart', session, detail), async () => {
    killSession(serverOf(session), session.tmux);
    changeSessions((sessions) => Object.assign(findSession(sessions, session.id), { state: 'starting', error: null }));
    // A new pane, on the server a new session would start on: its path replaces the old one (or is recorded at last).
    const launched = launch(session, resume);
    changeSessions((sessions) => Object.assign(findSession(sessions, session.id), launched));
    await started(session.id);
  });
  process.stdout.write(`${session.id} ${session.name}: restarted\n`);
}

export async function killCommand(ref: string, opts: { force?: boolean; json?: boolean }): Promise<void> {
  const principal = await finder(ref, 'kill it');
  const session = seen(findSession(reconciled(), ref));
  if (!opts.force) {
    if (!process.stdin.isTTY) throw new UsageError(`remux code kill ${ref} asks to type the session's ID, and stdin is not a terminal`, 'add -f to kill without asking');
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const typed = (await rl.question(`Kill ${session.name} (${session.agent} in ${session.workspace})? Type its ID ${session.id} to confirm: `)).trim();
    rl.close();
    if (typed !== session.id) throw new UsageError('the ID typed does not match: nothing was killed');
  }
  await performed(principal, actionOn('agent.kill', session, `tmux session ${session.tmux}`), () => {
    killSession(serverOf(session), session.tmux);
    rmSync(envFileOf(session.id), { force: true });
    removeAgentTmp(session.id);
    rmSync(hookDirOf(session.id), { recursive: true, force: true }); // left behind when the supervisor was SIGKILLed
    changeSessions((sessions) => Object.assign(findSession(sessions, session.id), { state: 'exited' }));
  });
  if (opts.json) return printJson({ id: session.id, name: session.name, host: AGENTS_HOST, state: 'exited' });
  process.stdout.write(`${session.id} ${session.name}: killed\n`);
}

/** What `code rm` did with a session's worktree: only one remux made (--worktree), and only if git finds it clean. */
interface WorktreeOutcome {
  path: string;
  removed: boolean;
  /** Why it was kept: git's refusal (changes or untracked files, a lock), or a repository gone. */
  why?: string;
}

/** Removes the session's worktree the way a person would, `git worktree remove` without --force: git keeps one with changes. */
function removeWorktree(session: AgentSession): WorktreeOutcome | null {
  const path = worktreeDirOf(session.id);
  if (session.repo === null || session.workspace !== path || !existsSync(path)) return null;
  const r = spawnSync('git', ['-C', session.repo, 'worktree', 'remove', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status === 0) return { path, removed: true };
  return { path, removed: false, why: (r.stderr || r.error?.message || `git exited with ${r.status}`).trim().replace(/^fatal: /, '') };
}

export async function rmCommand(refs: string[], opts: { allEnded?: boolean; json?: boolean }): Promise<void> {
  if (opts.allEnded && refs.length > 0) throw new UsageError('give session IDs or --all-ended, not both');
  if (!opts.allEnded && refs.length === 0) throw new UsageError('no agent session given', 'name the ended sessions to remove (remux code ls -a lists them), or --all-ended');
  const principal = await finder(opts.allEnded ? null : refs.join(' '), opts.allEnded ? 'remove the ended ones' : 'remove them');
  // Every session named is found and checked before any is removed: a running one among them removes none.
  const all = reconciled();
  const sessions = opts.allEnded ? all.filter(isOver) : [...new Map(refs.map((ref) => findSession(all, ref)).map((s) => [s.id, s])).values()];
  const live = sessions.find((s) => !isOver(s));
  if (live) throw new UsageError(`agent session ${live.id} (${live.name}) is running: nothing was removed`, `end it first with remux code kill ${live.id}`);
  const done: Array<{ id: string; name: string; worktree: WorktreeOutcome | null }> = [];
  for (const session of sessions) {
    let worktree: WorktreeOutcome | null = null;
    const detail = `remove ended session ${session.name}: its record, saved screen and a clean worktree remux made`;
    await performed(principal, actionOn('agent.remove', session, detail), () => {
      // A restart since the check above brought it back: it is not removed from under its agent.
      if (!isOver(findSession(readSessions(), session.id))) throw new UsageError(`agent session ${session.id} (${session.name}) was restarted meanwhile: not removed`);
      worktree = removeWorktree(session);
      for (const file of [logFileOf(session.id), envFileOf(session.id), hookDirOf(session.id)]) rmSync(file, { recursive: true, force: true });
      removeAgentTmp(session.id);
      changeSessions((all) => {
        const at = all.findIndex((s) => s.id === session.id);
        if (at >= 0 && !isOver(all[at] as AgentSession)) throw new UsageError(`agent session ${session.id} (${session.name}) was restarted meanwhile: its record stays`);
        if (at >= 0) all.splice(at, 1);
      });
    });
    done.push({ id: session.id, name: session.name, worktree });
    if (opts.json) continue;
    process.stdout.write(`${session.id} ${session.name}: removed\n`);
    const w = worktree as WorktreeOutcome | null;
    if (w?.removed) process.stdout.write(`  worktree ${w.path} removed${session.branch ? ` (branch ${session.branch} stays in ${session.repo})` : ''}\n`);
    else if (w) process.stdout.write(`  worktree ${w.path} kept: ${w.why}\n  (commit or drop its changes there, then: git -C ${session.repo} worktree remove ${w.path})\n`);
  }
  if (opts.json) return printJson(done);
  if (sessions.length === 0) process.stdout.write('no ended agent sessions to remove\n');
}
