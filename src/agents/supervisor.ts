// `remux code supervise ID`: the process in an agent session's tmux pane. It starts sandbox-runtime's
// proxies (in this process, plus their socat bridges) and the sandboxed agent as its child, so the pane
// owns everything: the session ends when the agent does, and killing the pane (or this process, even
// with SIGKILL: the terminal's hang-up reaches the whole process group, and bwrap --die-with-parent and
// its PID namespace take the agent's tools with it) leaves nothing behind.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { getgid, getuid } from 'node:process';
import { writeAtomic } from '../config/atomic-file.js';
import { loadConfig, loadConfigFile, type Config } from '../config/config.js';
import { configFile, remuxHome } from '../config/paths.js';
import { ReloadingFile } from '../config/reloading.js';
import { quoteWord } from '../command/render.js';
import { HOOK_CLIENT_FILE, startClaudeHooks } from './claude-hooks.js';
import { launchArgv } from './launch.js';
import { dockerArgv, ensureAgentState, makeAgentTmp, removeAgentTmp, srtConfig } from './sandbox.js';
import { envFileOf, findSession, logFileOf, readSessions, reportExit, reportStart, type AgentSession } from './store.js';

/** How often the supervisor checks that its parent (the pane's tmux server) is still there. */
const ORPHAN_CHECK_MS = 1000;
/** An agent still running this long after SIGTERM is killed. */
const STOP_GRACE_MS = 5000;

/** KEY=VALUE lines of the session's env file (written 0600 by `code start`). */
function readEnvFile(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  const vars: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) vars[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return vars;
}

/**
 * remux's own credentials, never the agent's: the pane inherits the environment of the tmux server, that
 * is of whichever CLI started it first — with its REMUX_TOKEN, a principal's token, when it had one.
 */
const REMUX_CREDENTIALS = ['REMUX_TOKEN'];

function withoutRemuxCredentials(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const own = { ...env };
  for (const name of REMUX_CREDENTIALS) delete own[name];
  return own;
}

/** What a sandboxed agent gets of that environment (besides its own keys and agents.pass_env), as docker's gets only its keys. */
const SANDBOX_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TERM', 'COLORTERM', 'TZ', 'TMUX', 'TMUX_PANE', 'NO_COLOR', 'FORCE_COLOR'];

/** The tmux server's environment cut to what a sandboxed agent needs: other secrets there (cloud keys, SSH_AUTH_SOCK) stay out. */
function sandboxedEnv(env: NodeJS.ProcessEnv, passEnv: readonly string[]): NodeJS.ProcessEnv {
  const wanted = new Set([...SANDBOX_ENV, ...passEnv]);
  return Object.fromEntries(Object.entries(env).filter(([name]) => wanted.has(name) || name.startsWith('LC_')));
}

/**
 * notify as config.yaml says it now: the session's questions follow an edit (a channel taken out, a token
 * replaced) as the daemon's do once restarted; read once, a channel taken out would get them, its buttons
 * answering, until the session ended. An edit that does not load keeps the last one that did, as the
 * daemon keeps its own (`remux daemon restart` and `remux doctor` say what is wrong with it).
 */
function liveNotify(config: Config, env: NodeJS.ProcessEnv): () => Config['notify'] {
  const file = new ReloadingFile(configFile(env), (f) => loadConfigFile(f, env).config.notify);
  let last = config.notify;
  return () => {
    try {
      last = file.get();
    } catch {
      // keeps `last`: see above
    }
    return last;
  };
}

/** What a wrapper set or changed in the environment it hands back (sandbox-runtime returns the whole of process.env on Linux). */
function addedBy(wrapped: NodeJS.ProcessEnv, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(wrapped).filter(([name, value]) => env[name] !== value));
}

async function command(session: AgentSession, resume: boolean, env: NodeJS.ProcessEnv): Promise<{ argv: string[]; env: NodeJS.ProcessEnv; hooks: boolean; cleanup: () => Promise<void> }> {
  const secrets = readEnvFile(envFileOf(session.id, env));
  const { config } = loadConfig(env);
  // Claude Code's permission requests and notifications reach remux through its hooks.
  const hooks =
    session.agent === 'claude' ? await startClaudeHooks(session.id, config, env, (line) => process.stdout.write(`${line}\n`), session.sandbox === 'docker' ? 'docker' : 'remux', liveNotify(config, env)) : null;
  try {
    const argv = launchArgv({ agent: session.agent, prompt: resume ? undefined : (session.prompt ?? undefined), continue: resume, settings: hooks?.settingsFile });
    const cleanup = async (): Promise<void> => {
      await hooks?.close();
    };
    if (session.sandbox === 'docker') {
      const { docker } = config.agents;
      const opts = { image: docker.image, memory: docker.memory, pidsLimit: docker.pids_limit, uid: getuid?.() ?? 1000, gid: getgid?.() ?? 1000, envFile: envFileOf(session.id, env) };
      return { argv: dockerArgv(session, argv, hooks ? { ...opts, hooks: { dir: hooks.dir, client: HOOK_CLIENT_FILE } } : opts), env, hooks: hooks !== null, cleanup };
    }
    if (session.sandbox === 'none') return { argv, env: { ...env, ...hooks?.env, ...secrets }, hooks: hooks !== null, cleanup };
    ensureAgentState(session.agent);
    const { SandboxManager } = await import('@anthropic-ai/sandbox-runtime');
    // The session's own TMPDIR: sandbox-runtime hands the agent $CLAUDE_CODE_TMPDIR (Claude Code's name for it).
    removeAgentTmp(session.id); // a previous run's, left when its supervisor was killed
    const tmp = makeAgentTmp(session.id);
    process.env.CLAUDE_CODE_TMPDIR = tmp;
    try {
      await SandboxManager.initialize(srtConfig({ ...session, tmp }, config.agents, remuxHome(env), undefined, hooks ?? undefined));
      const wrapped = await SandboxManager.wrapWithSandboxArgv(argv.map(quoteWord).join(' '), '/bin/bash', undefined, undefined, session.workspace, { commandId: session.id });
      return {
        argv: wrapped.argv,
        env: { ...sandboxedEnv(env, config.agents.pass_env), ...addedBy(wrapped.env, env), CLAUDE_CODE_TMPDIR: tmp, ...hooks?.env, ...secrets },
        hooks: hooks !== null,
        cleanup: async () => {
          await SandboxManager.reset();
          rmSync(tmp, { recursive: true, force: true });
          await cleanup();
        },
      };
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
  } catch (err) {
    await hooks?.close();
    throw err;
  }
}

export async function supervise(id: string, resume: boolean, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const session = findSession(readSessions(env), id);
  process.stdout.write(session.sandbox === 'none' ? `remux: ${session.agent}: --sandbox none: running UNSANDBOXED in ${session.workspace}\n` : `remux: ${session.agent}: sandbox ${session.sandbox}, workspace ${session.workspace}\n`);
  let started;
  try {
    started = await command(session, resume, env);
  } catch (err) {
    // Fail closed: no sandbox, no agent.
    const error = `the ${session.sandbox} sandbox cannot start, the agent was not started: ${err instanceof Error ? err.message : String(err)}`;
    process.stderr.write(`remux: ${error}\n`);
    reportStart(session.id, { error }, env);
    process.exitCode = 1;
    return;
  }
  const [program, ...args] = started.argv as [string, ...string[]];
  const child = spawn(program, args, { stdio: 'inherit', env: withoutRemuxCredentials(started.env), cwd: session.workspace });
  // The daemon's watcher leaves the permission prompts of a hooked session to its hooks.
  const hooks = started.hooks;
  child.once('spawn', () => reportStart(session.id, { hooks }, env));
  let killTimer: NodeJS.Timeout | undefined;
  // Stopped (the session killed, the pane hung up): not an exit of the agent's own, and the pane is going.
  let stopped = false;
  const stop = (): void => {
    stopped = true;
    child.kill('SIGTERM');
    killTimer ??= setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS).unref();
  };
  for (const signal of ['SIGHUP', 'SIGTERM', 'SIGINT'] as const) process.on(signal, stop);
  // The pane's tmux server is our parent. Should it go without its hang-up reaching us (a full test run
  // once left a supervisor and its agent running, orphaned, with their terminal gone), the agent must
  // not outlive it: a new parent stops it too.
  const parent = process.ppid;
  const orphaned = setInterval(() => {
    if (process.ppid !== parent) stop();
  }, ORPHAN_CHECK_MS);
  const status = await new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    child.on('error', (err) => {
      process.stderr.write(`remux: cannot start ${program}: ${err.message}\n`);
      resolve(127);
    });
  });
  clearInterval(orphaned);
  clearTimeout(killTimer);
  await started.cleanup();
  process.stdout.write(`remux: ${session.agent} exited (status ${status})\n`);
  // The pane closes with us, and its scrollback with it: kept for `remux code logs`, say an agent that
  // exited at once with why.
  if (!stopped) {
    const scrollback = ownScrollback();
    if (scrollback !== null) writeAtomic(logFileOf(session.id, env), scrollback);
    reportExit(session.id, status, env);
  }
  process.exitCode = status;
}

/** Scrollback lines kept when the agent exits. */
const SAVED_LINES = 2000;

/** This pane's scrollback, from the tmux server it runs in ($TMUX, $TMUX_PANE); null outside tmux. */
function ownScrollback(): string | null {
  const pane = process.env.TMUX_PANE;
  if (!pane || !process.env.TMUX) return null;
  const r = spawnSync('tmux', ['capture-pane', '-p', '-J', '-S', `-${SAVED_LINES}`, '-t', pane], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.replace(/\n+$/, '\n') : null;
}
