// The sandboxes an agent runs in: sandbox-runtime's configuration (bubblewrap with writes only to the
// workspace and the agent's state dirs, denied reads, domain-allowlist proxies), and the Docker argv.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { SandboxRuntimeConfig } from '@anthropic-ai/sandbox-runtime';
import { parse as parseToml } from 'smol-toml';
import type { Config } from '../config/config.js';
import { expandHome } from '../config/paths.js';
import { UsageError } from '../core/errors.js';
import { nearName } from '../core/spelling.js';
import { HOOK_DIR_ENV, HOOK_HOST } from './hook-wire.js';
import { allowedDomains, isKnownAgent, LAUNCH } from './launch.js';
import type { AgentSession } from './store.js';

/** Never readable inside any agent sandbox, whatever the config says. */
export const ALWAYS_DENY_READ = ['~/.ssh', '~/.gnupg', '~/.aws', '~/.config/remux'];

function statePaths(agent: string, home: string): string[] {
  return isKnownAgent(agent) ? LAUNCH[agent].stateDirs.map((p) => join(home, p)) : [];
}

/**
 * What the agent must not change for its next start: its settings files, code directories and instructions.
 * Not its own state directory (a workspace of $HOME has ~/.codex as its .codex), which it writes as it runs.
 */
function settingsPaths(agent: string, workspace: string, home: string): string[] {
  if (!isKnownAgent(agent)) return [];
  const { settings, codeDirs, instructions } = LAUNCH[agent];
  const state = statePaths(agent, home);
  return [...[...settings.home, ...codeDirs.home, ...instructions].map((p) => join(home, p)), ...[...settings.workspace, ...codeDirs.workspace].map((p) => join(workspace, p)).filter((p) => !state.includes(p))];
}

/**
 * Keys of the agents' settings whose values are commands they run: MCP servers' and hooks' (all three),
 * Claude Code's helpers, codex's `notify` program.
 */
const COMMAND_KEYS = new Set(['command', 'args', 'apiKeyHelper', 'awsAuthRefresh', 'awsCredentialExport', 'otelHeadersHelper', 'notify']);
/** At most this many programs are protected (a settings file is the user's; this bounds a strange one). */
const MAX_SETTINGS_PROGRAMS = 256;

/**
 * The files that the agent's settings run: each word of a hook's or the status line's command, an
 * apiKeyHelper, an MCP server's command and arguments, codex's notify program, that names an existing file in $HOME or the
 * workspace (`~`, $HOME and $CLAUDE_PROJECT_DIR or $GEMINI_PROJECT_DIR expanded). Read-only in the sandbox like the settings
 * themselves: rewritten, a script such as ~/.claude/statusline.sh would run at the next start of the
 * agent, sandboxed or not. Programs elsewhere (/usr/bin) are read-only there anyway.
 */
export function settingsPrograms(agent: string, workspace: string, home: string): string[] {
  const words: string[] = [];
  const collect = (value: unknown, commandish: boolean): void => {
    if (typeof value === 'string') {
      if (commandish) words.push(...value.split(/[\s"'`;&|()<>=]+/));
    } else if (Array.isArray(value)) {
      for (const v of value) collect(v, commandish);
    } else if (value !== null && typeof value === 'object') {
      for (const [key, v] of Object.entries(value)) collect(v, commandish || COMMAND_KEYS.has(key));
    }
  };
  for (const parsed of readSettings(agent, workspace, home)) collect(parsed, false);
  const expanded = words.map((w) =>
    w.replace(/^(~|\$HOME|\$\{HOME\})(?=\/|$)/, home).replace(/^(\$(CLAUDE|GEMINI)_PROJECT_DIR|\$\{(CLAUDE|GEMINI)_PROJECT_DIR\})(?=\/|$)/, workspace),
  );
  const found = new Set<string>();
  for (const path of expanded) {
    if (found.size >= MAX_SETTINGS_PROGRAMS) break;
    if (!isAbsolute(path) || !(within(path, home) || within(path, workspace))) continue;
    try {
      if (statSync(path).isFile()) found.add(resolve(path));
    } catch {
      // Not there: nothing to protect.
    }
  }
  return [...found];
}

/** The agent's settings files (home and workspace) that are there and parse: JSON, or TOML for a `.toml` name. */
function readSettings(agent: string, workspace: string, home: string): unknown[] {
  if (!isKnownAgent(agent)) return [];
  const { settings } = LAUNCH[agent];
  const parsed: unknown[] = [];
  for (const file of [...settings.home.map((p) => join(home, p)), ...settings.workspace.map((p) => join(workspace, p))]) {
    try {
      const text = readFileSync(file, 'utf8');
      parsed.push(file.endsWith('.toml') ? parseToml(text) : JSON.parse(text));
    } catch {
      // Missing, or not JSON (TOML): the agent reads nothing from it either.
    }
  }
  return parsed;
}

/**
 * Gemini CLI's instructions under other names: its settings' `context.fileName` (a name or a list) replaces
 * GEMINI.md, ~/.gemini's too (a project's AGENTS.md, say). Those under ~/.gemini are read-only like
 * GEMINI.md (a missing one cannot be made while the agent runs); the workspace's stay the project's.
 */
function geminiContextFiles(agent: string, workspace: string, home: string): string[] {
  if (agent !== 'gemini') return [];
  const names = readSettings(agent, workspace, home).flatMap((parsed) => {
    const name = (parsed as { context?: { fileName?: unknown } } | null)?.context?.fileName;
    return typeof name === 'string' ? [name] : Array.isArray(name) ? name.filter((n): n is string => typeof n === 'string') : [];
  });
  // A plain file name: anything else names no file in ~/.gemini.
  return names.filter((n) => n !== '' && n !== '.' && n !== '..' && !n.includes('/')).map((n) => join(home, '.gemini', n));
}

/**
 * Gemini CLI's `.env` files: it loads the first of DIR/.gemini/.env and DIR/.env from the workspace up to /,
 * then ~/.gemini/.env and ~/.env, and what they set holds for its next start. Each that is there is
 * read-only. A missing one is not blocked with a stand-in (the sandbox's placeholder is an empty file, which
 * gemini would load instead of the project's .env or ~/.env), except ~/.gemini/.env when there is no ~/.env
 * to hide. A project's own `.env` stays the project's.
 */
function geminiEnvFiles(agent: string, workspace: string, home: string): string[] {
  if (agent !== 'gemini') return [];
  const own = join(home, '.gemini', '.env');
  return [join(workspace, '.gemini', '.env'), own].filter((p) => existsSync(p) || (p === own && !existsSync(join(home, '.env'))));
}

/** A session's own TMPDIR (srt): made by its supervisor, which removes it when the agent ends. */
export function makeAgentTmp(id: string): string {
  return mkdtempSync(join(tmpdir(), `${AGENT_TMP_PREFIX}${id}-`));
}

/** Removes what a session's supervisor could not (it was SIGKILLed): its TMPDIRs (links are removed, not followed). */
export function removeAgentTmp(id: string): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) if (name.startsWith(`${AGENT_TMP_PREFIX}${id}-`)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
}

const AGENT_TMP_PREFIX = 'remux-agent-';

/**
 * The agent's state directories under $HOME, made when missing (0700): the sandbox binds them writable
 * only if they exist, and an agent run for the first time would find $HOME read-only (codex: "Read-only
 * file system" at start). Its settings files under $HOME too (`{}`, 0600), its instruction files (empty) and its code directories: the
 * sandbox would otherwise hold an empty stand-in there while it runs (and leave it when killed). An
 * existing one, or a link, is left as it is.
 */
export function ensureAgentState(agent: string, home = homedir()): void {
  if (!isKnownAgent(agent)) return;
  for (const dir of [...LAUNCH[agent].stateDirs, ...LAUNCH[agent].codeDirs.home]) mkdirSync(join(home, dir), { recursive: true, mode: 0o700 });
  const empty = (file: string): string => (file.endsWith('.json') ? '{}\n' : '');
  for (const file of [...LAUNCH[agent].settings.home, ...LAUNCH[agent].instructions]) {
    try {
      writeFileSync(join(home, file), empty(file), { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/** A session's hook endpoint (hook-endpoint.ts): its directory and the socket its proxy routes HOOK_HOST to. */
export interface SandboxHook {
  dir: string;
  socket: string;
}

/** A configured path with `~` as `home`. */
function expandIn(home: string): (p: string) => string {
  return (p) => (p === '~' || p.startsWith('~/') ? join(home, p.slice(2)) : expandHome(p));
}

/** What every sandbox hides from its agent: remux's own home, the ALWAYS_DENY_READ places, agents.deny_read. */
function hiddenPaths(agents: Config['agents'], remuxHome: string, home: string): string[] {
  return [...ALWAYS_DENY_READ.map(expandIn(home)), remuxHome, ...agents.deny_read.map(expandIn(home))];
}

/** `path` is `dir` or lies below it. */
function within(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * The agent writes its workspace, and that write access opens what lies inside it again: a workspace at or
 * inside what the sandbox hides (remux's home with its tokens, audit store and approvals key; ~/.ssh;
 * agents.deny_read) would hand the agent all of it. Refused, except remux's own worktrees (--worktree).
 * `workspace` is a real path; a hidden one that is a link counts where it leads.
 */
export function checkWorkspace(workspace: string, agents: Config['agents'], remuxHome: string, home = homedir()): void {
  const real = (p: string): string => (existsSync(p) ? realpathSync(p) : resolve(p));
  const worktrees = real(join(remuxHome, 'worktrees'));
  if (within(workspace, worktrees) && workspace !== worktrees) return;
  // Globs and relative entries name no one directory here (sandbox-runtime reads them against the workspace).
  const hidden = hiddenPaths(agents, remuxHome, home).filter((p) => isAbsolute(p) && !p.includes('*'));
  const covering = hidden.find((p) => within(workspace, real(p)));
  if (covering !== undefined) {
    throw new UsageError(`workspace ${workspace} is inside ${covering}, which agent sandboxes hide (remux's own files, keys, agents.deny_read): its agent could read and change all of it`, 'choose a directory outside it (for a repository there, --worktree BRANCH gives the agent a worktree of its own)');
  }
}

/**
 * `tmp`: the session's own temporary directory, its TMPDIR inside (sandbox-runtime's default, /tmp/claude,
 * is writable there only when it already exists, and would be shared by every session).
 */
export function srtConfig(session: Pick<AgentSession, 'agent' | 'workspace'> & { tmp: string }, agents: Config['agents'], remuxHome: string, home = homedir(), hook?: SandboxHook): SandboxRuntimeConfig {
  const expand = expandIn(home);
  return {
    network: {
      allowedDomains: [...allowedDomains(session.agent, agents.network, agents.extra_domains), ...(hook ? [HOOK_HOST] : [])],
      deniedDomains: [],
      // Only this session's proxy leads to this session's endpoint.
      ...(hook ? { mitmProxy: { socketPath: hook.socket, domains: [HOOK_HOST] } } : {}),
    },
    filesystem: {
      // remux's own home holds the audit store, the approvals key and every session's env file and hook
      // token; of it, the sandbox sees its own session's hook directory only.
      denyRead: hiddenPaths(agents, remuxHome, home),
      ...(hook ? { allowRead: [hook.dir] } : {}),
      allowWrite: [session.workspace, session.tmp, ...statePaths(session.agent, home)],
      // Once each: gemini's context.fileName may name GEMINI.md again.
      denyWrite: [...new Set([...agents.credentials.map(expand), ...settingsPaths(session.agent, session.workspace, home), ...geminiContextFiles(session.agent, session.workspace, home), ...geminiEnvFiles(session.agent, session.workspace, home), ...settingsPrograms(session.agent, session.workspace, home)])],
    },
  };
}

export interface DockerOptions {
  image: string;
  memory: string;
  pidsLimit: number;
  uid: number;
  gid: number;
  envFile: string;
  /** Claude Code's hooks: the session's hook directory (token, endpoint socket, settings) and the hook client (hook.cjs). */
  hooks?: { dir: string; client: string };
}

/**
 * A `--mount` value: docker reads it as one CSV record, a later field winning over an earlier one, so each
 * field that holds a comma or quote is quoted — a workspace `/tmp/a,source=/` would mount the host's root.
 */
function mountSpec(fields: string[]): string {
  return fields.map((f) => (/[",\r\n]/.test(f) ? `"${f.replaceAll('"', '""')}"` : f)).join(',');
}

/** Where the container finds the hook client (dist/src/hook.cjs); its hook command names it (claude-hooks.ts). */
export const DOCKER_HOOK_CLIENT = '/opt/remux/hook.cjs';

/**
 * A hardened `docker run`: non-root, no capabilities, no privilege gain, limits, read-only root, secrets by
 * file. Hooks reach the session's endpoint through its socket, mounted read-only at the same path (a
 * socket on a read-only mount still connects; nothing in the directory can be changed), with no network.
 */
export function dockerArgv(session: Pick<AgentSession, 'id' | 'workspace'>, agentArgv: string[], opts: DockerOptions): string[] {
  const hooks = opts.hooks
    ? [
        '--mount', mountSpec(['type=bind', `source=${opts.hooks.dir}`, `target=${opts.hooks.dir}`, 'readonly']),
        '--mount', mountSpec(['type=bind', `source=${opts.hooks.client}`, `target=${DOCKER_HOOK_CLIENT}`, 'readonly']),
        '--env', `${HOOK_DIR_ENV}=${opts.hooks.dir}`,
      ]
    : [];
  return [
    'docker', 'run', '--rm', '-it', '--init',
    '--name', `remux-agent-${session.id}`,
    '--user', `${opts.uid}:${opts.gid}`,
    '--cap-drop', 'ALL',
    '--security-opt', 'no-new-privileges',
    '--pids-limit', String(opts.pidsLimit),
    '--memory', opts.memory,
    '--read-only',
    '--tmpfs', '/tmp:rw,nosuid,nodev,size=512m',
    '--tmpfs', '/home/agent:rw,nosuid,nodev,size=256m',
    '--env', 'HOME=/home/agent',
    '--env-file', opts.envFile,
    '--mount', mountSpec(['type=bind', `source=${session.workspace}`, 'target=/workspace']),
    ...hooks,
    '--workdir', '/workspace',
    opts.image,
    ...agentArgv,
  ];
}

/**
 * The agent's program must be on this machine under srt and none (the pane runs it from this PATH, in
 * the workspace), or its session would end at once with 127; under docker it comes from the image.
 */
export function checkAgentProgram(agent: string, program: string, workspace: string, sandbox: AgentSession['sandbox']): void {
  if (sandbox === 'docker') return;
  if (program.includes('/') ? existsSync(resolve(workspace, program)) : onPath(program)) return;
  // A known agent's program, given its own arguments too (`--agent 'aider --model sonnet'`), is installed as that agent is.
  const hint = isKnownAgent(program) ? `install it (${LAUNCH[program].install}), or choose another --agent` : customHint(program);
  throw new UsageError(`--agent ${agent}: ${program} is not installed here (not found ${program.includes('/') ? `at ${resolve(workspace, program)}` : 'on PATH'})`, hint);
}

/** A name not found that is near one of remux's agents (`claud`) is most likely that one misspelt. */
function customHint(program: string): string {
  const near = program.includes('/') ? undefined : nearName(program, Object.keys(LAUNCH));
  return near === undefined ? 'install it, or give its full path' : `did you mean --agent ${near}? Otherwise install ${program}, or give its full path`;
}

/** Fails (closed) with what is missing when the chosen backend cannot start here. */
const SRT_PROGRAMS = ['bwrap', 'socat', 'rg'];

function onPath(program: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, program)));
}

export function checkBackend(sandbox: AgentSession['sandbox']): void {
  if (sandbox === 'docker') {
    const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8' });
    if (r.status !== 0) {
      const why = r.error ? `docker is not installed (${r.error.message})` : (r.stderr.trim().split('\n')[0] ?? `docker info exited ${r.status}`);
      throw new UsageError(`--sandbox docker: no Docker engine answers: ${why}`, 'start one, or use --sandbox srt (the default)');
    }
  }
  if (sandbox === 'srt') {
    // sandbox-runtime's own check needs an ES import the CLI's bundle cannot do; the supervisor fails closed too.
    const missing = SRT_PROGRAMS.filter((p) => !onPath(p));
    if (missing.length > 0) {
      throw new UsageError(`--sandbox srt cannot start here: ${missing.join(', ')} not found on PATH`, 'install bubblewrap, socat and ripgrep (scripts/install.sh does), or choose --sandbox none to run the agent unsandboxed');
    }
  }
}
