// What each coding agent's launch command is, and how -p PROMPT / --continue map to its own flags.
// A custom agent is a command line in remux's strict grammar (one simple command, no shell).
import { AGENT_NAMES } from '../config/config.js';
import { parseCommand } from '../command/parser.js';
import { ParseError } from '../command/types.js';
import { UsageError } from '../core/errors.js';

export type KnownAgent = (typeof AGENT_NAMES)[number];

interface AgentLaunch {
  program: string;
  /** Flags it always gets, before the rest. */
  flags: string[];
  /** Flags that start it on a first prompt (the prompt is one argv element, never shell text). */
  prompt: (text: string) => string[];
  /** Flags that resume the previous conversation in this workspace; null when the agent has none. */
  resume: string[] | null;
  /** Domains its sandbox reaches by default: the model provider's API. */
  domains: string[];
  /** Its own state directories under $HOME: writable inside the sandbox (made first when missing: a bind needs them). */
  stateDirs: string[];
  /**
   * Its settings files that can run commands (hooks, MCP servers), turn remux's hooks off or lift its
   * permission prompts, under $HOME and in the workspace: read-only in the sandbox (as Claude Code's own
   * sandbox keeps them), so the agent cannot rewrite what its next start, sandboxed or not, loads. JSON, or
   * TOML for a `.toml` name. ~/.claude.json holds the user's MCP servers, each a command the next `claude`
   * starts: Claude Code's own writes of it never land in the sandbox anyway (it replaces the file by a rename
   * in $HOME, which is read-only there). Codex writes its config.toml when a folder is trusted at its start:
   * inside the sandbox that answer is not saved (trust the folder outside it).
   */
  settings: { home: string[]; workspace: string[] };
  /**
   * What else its next start loads and runs or obeys: directories (plugins and extensions with their hooks
   * and MCP servers, hook scripts, slash commands and custom prompts, subagents, skills, output styles, and
   * codex's rules and gemini's policies, whose allow rules lift its approval prompts) under $HOME (made when
   * missing) and in the workspace (never made there: sandbox-runtime keeps a missing one from being created
   * while the agent runs, with a stand-in it removes after), and instruction files under $HOME (made empty
   * when missing: codex and gemini skip an empty one). Read-only in the sandbox (one that is the agent's own
   * state directory, in a workspace of $HOME, stays writable). The workspace's own instructions (CLAUDE.md,
   * AGENTS.md, GEMINI.md, in any of its directories) stay the project's, writable: they are text for the model,
   * and what the agent may do without asking is for its settings, rules, policies and hooks to say. So is the
   * GEMINI.md gemini reads from a subdirectory (and those above it) once a tool touches a file there.
   */
  codeDirs: { home: string[]; workspace: string[] };
  instructions: string[];
  /** Environment variables that carry its credentials (passed through the session's 0600 env file). */
  secrets: string[];
  /** How its makers say to install it, for a machine without it. */
  install: string;
}

export const LAUNCH: Record<KnownAgent, AgentLaunch> = {
  claude: { program: 'claude', flags: [], prompt: (t) => [t], resume: ['--continue'], domains: ['api.anthropic.com', 'statsig.anthropic.com', 'sentry.io'], stateDirs: ['.claude'], settings: { home: ['.claude.json', '.claude/settings.json'], workspace: ['.claude/settings.json', '.claude/settings.local.json', '.mcp.json'] }, codeDirs: { home: ['.claude/plugins', '.claude/hooks', '.claude/commands', '.claude/agents', '.claude/skills', '.claude/output-styles'], workspace: ['.claude/hooks', '.claude/skills', '.claude/commands', '.claude/agents', '.claude/output-styles'] }, instructions: ['.claude/CLAUDE.md'], secrets: ['ANTHROPIC_API_KEY', 'CLAUDE_CODE_OAUTH_TOKEN'], install: 'npm install -g @anthropic-ai/claude-code' },
  // Codex's shared background server cannot start in a sandbox's PID namespace ("failed to read start time
  // for pid-managed app server"): each session runs without it. Inside, codex cannot refresh the bundled
  // skills it keeps in ~/.codex/skills/.system (it logs that and goes on): a codex started outside does.
  // Codex loads DIR/.codex (config.toml: approval and sandbox policy, notify, MCP servers; hooks.json, rules,
  // agents, skills) for each DIR from where it starts up to the project root (the nearest with a .git), once:
  // the agent's `cd` is its shell's, not codex's. It starts in the workspace, whose .codex is read-only as a
  // whole; those above lie outside the workspace, read-only anyway. A missing one cannot be made: sandbox-runtime
  // holds its name with an empty read-only directory (its config.toml is denied beneath it), an empty folder
  // to codex. A subdirectory's .codex is loaded only by a codex started there (by hand, or a session with that
  // workspace), and no mount can keep the agent from making one (it makes new directories, or moves one aside).
  codex: { program: 'codex', flags: ['--no-daemon'], prompt: (t) => [t], resume: ['resume', '--last'], domains: ['api.openai.com', 'chatgpt.com'], stateDirs: ['.codex'], settings: { home: ['.codex/config.toml', '.codex/hooks.json'], workspace: ['.codex/config.toml', '.codex/hooks.json'] }, codeDirs: { home: ['.codex/prompts', '.codex/skills', '.codex/rules', '.codex/agents', '.codex/plugins'], workspace: ['.codex', '.agents/skills'] }, instructions: ['.codex/AGENTS.md', '.codex/AGENTS.override.md'], secrets: ['OPENAI_API_KEY'], install: 'npm install -g @openai/codex' },
  gemini: { program: 'gemini', flags: [], prompt: (t) => ['-i', t], resume: null, domains: ['generativelanguage.googleapis.com', 'oauth2.googleapis.com'], stateDirs: ['.gemini'], settings: { home: ['.gemini/settings.json', '.gemini/trustedFolders.json'], workspace: ['.gemini/settings.json'] }, codeDirs: { home: ['.gemini/extensions', '.gemini/commands', '.gemini/skills', '.gemini/agents', '.gemini/policies'], workspace: ['.gemini/extensions', '.gemini/commands', '.gemini/skills', '.gemini/agents', '.gemini/policies', '.agents/skills'] }, instructions: ['.gemini/GEMINI.md'], secrets: ['GEMINI_API_KEY', 'GOOGLE_API_KEY'], install: 'npm install -g @google/gemini-cli' },
  aider: { program: 'aider', flags: [], prompt: (t) => ['--message', t], resume: ['--restore-chat-history'], domains: ['api.anthropic.com', 'api.openai.com'], stateDirs: ['.aider'], settings: { home: [], workspace: [] }, codeDirs: { home: [], workspace: [] }, instructions: [], secrets: ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY'], install: 'python3 -m pip install aider-install && aider-install' },
};

export function isKnownAgent(agent: string): agent is KnownAgent {
  return (AGENT_NAMES as readonly string[]).includes(agent);
}

export interface LaunchRequest {
  agent: string;
  prompt?: string | undefined;
  continue?: boolean | undefined;
  /** Claude Code only: a settings file loaded on top of the user's (the session's hooks). */
  settings?: string | undefined;
}

/** The agent's argv. A custom command takes no -p/--continue: it is run exactly as written. */
export function launchArgv(req: LaunchRequest): string[] {
  if (isKnownAgent(req.agent)) {
    const launch = LAUNCH[req.agent];
    if (req.continue && !launch.resume) throw new UsageError(`${req.agent} cannot resume a conversation: --continue is not available for it`);
    // Claude's -p is "print and exit"; an interactive session takes the prompt as its first argument.
    const settings = req.settings !== undefined && req.agent === 'claude' ? ['--settings', req.settings] : [];
    return [launch.program, ...launch.flags, ...settings, ...(req.continue && launch.resume ? launch.resume : []), ...(req.prompt !== undefined ? launch.prompt(req.prompt) : [])];
  }
  if (req.prompt !== undefined || req.continue) throw new UsageError(`-p and --continue apply to claude, codex, gemini and aider, not to the custom command "${req.agent}"`, 'put the prompt into the command line itself');
  return customArgv(req.agent);
}

function customArgv(source: string): string[] {
  let list;
  try {
    list = parseCommand(source);
  } catch (err) {
    if (err instanceof ParseError) throw new UsageError(`--agent "${source}": ${err.message}`, 'a custom agent is one command with its arguments, without shell syntax');
    throw err;
  }
  const stage = list.items.length === 1 && list.items[0]?.pipeline.stages.length === 1 ? list.items[0].pipeline.stages[0] : undefined;
  if (!stage || stage.redirects.length > 0 || stage.argv.length === 0) throw new UsageError(`--agent "${source}" must be one command with its arguments: no pipes, lists or redirections`);
  return stage.argv;
}

/** Domains the agent's sandbox may reach: config's list for it (or its defaults), plus extra_domains. */
export function allowedDomains(agent: string, network: Partial<Record<string, string[]>>, extra: string[]): string[] {
  const key = isKnownAgent(agent) ? agent : 'custom';
  const own = network[key] ?? (isKnownAgent(agent) ? LAUNCH[agent].domains : []);
  return [...new Set([...own, ...extra])];
}
