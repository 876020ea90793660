// `remux __complete -- WORDS…`: what may come at the last word, read from commander's command tree and,
// for values, from the user's files. It only reads: no audit record, no daemon, no question, no
// connection to a host (tmux sessions are this machine's, asked of its tmux with a short timeout). A
// file that is missing or is not YAML completes nothing for its part and says nothing: whatever is
// printed lands in the user's prompt line. The files are read without the loaders' validation (zod), so
// an entry the loader would refuse does not hide the others, and to answer fast.
import type BetterSqlite3 from 'better-sqlite3';
import type { Command, Option } from 'commander';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { userInfo } from 'node:os';
import { parseDocument } from 'yaml';
import { approvalsDbFile, configFile, hostsFile, policiesFile, principalsFile, recordingsDir } from '../config/paths.js';
import { LOCAL_HOST_NAMES, isLocalHostName } from '../hosts/selectors.js';
import { declaredSources, type ValueSource } from './commands/completion.js';
import { utcCell } from './output.js';

export interface Candidate {
  value: string;
  description?: string;
}

export interface Completion {
  candidates: Candidate[];
  /** Nothing remux knows: the shell completes file names. */
  files?: boolean;
}

/** What a value whose option or argument says nothing is, by its name. */
const BY_NAME: Record<string, ValueSource> = {
  host: 'host',
  hosts: 'hosts',
  selector: 'hosts',
  policy: 'policy',
  principal: 'principal',
};

/** Longer than a local tmux takes to answer, short enough not to be felt. */
const TMUX_TIMEOUT_MS = 150;

/** The candidates for the last of `words` (the words after `remux`; the last is '' at a new word). */
export async function complete(program: Command, words: readonly string[], env: NodeJS.ProcessEnv): Promise<Completion> {
  const current = words[words.length - 1] ?? '';
  const line = walk(program, words.slice(0, -1));
  const { cmd } = line;
  if (line.pendingOption !== undefined) return valuesOf(sourceOfOption(cmd, line.pendingOption), current, line, env);
  if (!line.afterDashDash && current.startsWith('-')) {
    const eq = current.indexOf('=');
    if (current.startsWith('--') && eq > 0) {
      const option = findOption(cmd, current.slice(0, eq));
      if (option === undefined) return { candidates: [] };
      const completion = await valuesOf(sourceOfOption(cmd, option), current.slice(eq + 1), line, env);
      return { ...completion, candidates: completion.candidates.map((c) => ({ ...c, value: `${current.slice(0, eq + 1)}${c.value}` })) };
    }
    return { candidates: optionsOf(cmd).filter((c) => c.value.startsWith(current)) };
  }
  const subcommands = subcommandsOf(cmd);
  if (subcommands.length > 0 && line.operands.length === 0) return { candidates: subcommands.filter((c) => c.value.startsWith(current)) };
  const args = cmd.registeredArguments;
  const last = args[args.length - 1];
  const arg = args[line.operands.length] ?? (last?.variadic === true ? last : undefined);
  if (arg === undefined) return { candidates: [] };
  const source = declaredSources(cmd)[arg.name()] ?? arg.argChoices ?? BY_NAME[arg.name()];
  return valuesOf(source, current, line, env);
}

/** `value\tdescription` lines, then `:N`, N a set of bits: 2 complete file names (the others are free for more). */
export function formatCompletion(c: Completion): string {
  // A value with a space or a control character (a tmux session made by hand, a key in a file) would split
  // into several lines or words, and no remux command takes one: it is left out.
  const usable = c.candidates.filter((x) => !/[\s\p{Cc}]/u.test(x.value));
  const lines = usable.map((x) => (x.description ? `${x.value}\t${oneLine(x.description)}` : x.value));
  return `${[...lines, `:${c.files ? 2 : 0}`].join('\n')}\n`;
}

/** The command line up to the word being completed, as commander would read it. */
interface Line {
  cmd: Command;
  operands: string[];
  /** Values given so far, by the option's attribute name (`host`, `user`). */
  values: Map<string, string>;
  afterDashDash: boolean;
  /** The option whose value the word being completed is. */
  pendingOption?: Option;
}

function walk(program: Command, words: readonly string[]): Line {
  const line: Line = { cmd: program, operands: [], values: new Map(), afterDashDash: false };
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    line.pendingOption = undefined;
    if (!line.afterDashDash && word === '--') {
      line.afterDashDash = true;
    } else if (!line.afterDashDash && word.startsWith('-') && word !== '-') {
      const eq = word.startsWith('--') ? word.indexOf('=') : -1;
      const short = !word.startsWith('--');
      const option = findOption(line.cmd, eq > 0 ? word.slice(0, eq) : short ? word.slice(0, 2) : word);
      if (option === undefined || option.isBoolean() || option.negate) continue;
      const inline = eq > 0 ? word.slice(eq + 1) : short && word.length > 2 ? word.slice(2) : undefined;
      if (inline !== undefined) {
        line.values.set(option.attributeName(), inline);
      } else if (i + 1 < words.length) {
        // An optional value ([value]) is taken only when the next word is not an option.
        if (option.optional && words[i + 1]!.startsWith('-')) continue;
        line.values.set(option.attributeName(), words[++i]!);
      } else {
        line.pendingOption = option;
      }
    } else {
      const sub = line.operands.length === 0 && !line.afterDashDash ? line.cmd.commands.find((c) => c.name() === word || c.aliases().includes(word)) : undefined;
      if (sub !== undefined) line.cmd = sub;
      else line.operands.push(word);
    }
  }
  return line;
}

/** An option of `cmd` or of a command above it (commander reads those after the subcommand too). */
function findOption(cmd: Command, flag: string): Option | undefined {
  for (let c: Command | null = cmd; c !== null; c = c.parent) {
    const option = c.options.find((o) => o.long === flag || o.short === flag);
    if (option !== undefined) return option;
  }
  return undefined;
}

function sourceOfOption(cmd: Command, option: Option): ValueSource | undefined {
  const long = option.long ?? '';
  for (let c: Command | null = cmd; c !== null; c = c.parent) {
    const declared = declaredSources(c)[long];
    if (declared !== undefined) return declared;
  }
  return option.argChoices ?? BY_NAME[long.replace(/^--/, '')];
}

function optionsOf(cmd: Command): Candidate[] {
  const help = cmd.createHelp();
  return help.visibleOptions(cmd).flatMap((o) => {
    const flag = o.long ?? o.short;
    return flag === undefined ? [] : [{ value: flag, description: o.description }];
  });
}

function subcommandsOf(cmd: Command): Candidate[] {
  const help = cmd.createHelp();
  return help
    .visibleCommands(cmd)
    .filter((c) => c.name() !== 'help' || cmd.commands.includes(c))
    .map((c) => ({ value: c.name(), description: c.description() }));
}

async function valuesOf(source: ValueSource | undefined, current: string, line: Line, env: NodeJS.ProcessEnv): Promise<Completion> {
  if (source === undefined) return { candidates: [], files: true };
  if (typeof source !== 'string') return { candidates: source.filter((v) => v.startsWith(current)).map((value) => ({ value })) };
  switch (source) {
    case 'hosts':
      return listOf(current, hostCandidates(env, true));
    case 'host':
      return matching(current, hostCandidates(env, false));
    case 'inventory-host':
      return matching(current, inventory(env).names);
    case 'policy':
      return matching(current, keysOf(policiesFile(env), 'policies').map((value) => ({ value })));
    case 'policies':
      return listOf(current, keysOf(policiesFile(env), 'policies').map((value) => ({ value })));
    case 'policy-template':
      return matching(current, (await import('../policy/templates.js')).TEMPLATE_NAMES.map((value) => ({ value })));
    case 'principal':
      return matching(current, keysOf(principalsFile(env), 'principals').map((value) => ({ value })));
    case 'tmux-session':
      return matching(current, await localTmuxSessions(line, env));
    case 'agent-session':
      return matching(current, await agentSessions(env));
    case 'agent':
      return matching(current, await agents(env));
    case 'approval':
      return matching(current, openApprovals(env).map((a) => ({ value: a.id, description: a.what })));
    case 'approval-option':
      return matching(current, approvalOptions(line.operands[0] ?? '', env));
    case 'recording':
      return matching(current, await recordings(env));
    case 'rpc-method': {
      const { METHODS } = await import('../runtime/tools.js');
      return matching(current, Object.keys(METHODS).map((value) => ({ value })));
    }
  }
}

function matching(current: string, candidates: Candidate[]): Completion {
  return { candidates: candidates.filter((c) => c.value !== '' && c.value.startsWith(current)) };
}

/** `a,b,c`: the candidates for what follows the last comma, after what is already there, not repeating it. */
function listOf(current: string, candidates: Candidate[]): Completion {
  const comma = current.lastIndexOf(',');
  const head = current.slice(0, comma + 1);
  // `all` is every host already: it is no item of a list.
  const given = new Set(['', ...head.split(','), ...(head === '' ? [] : ['all'])]);
  return { candidates: matching(current.slice(comma + 1), candidates.filter((c) => !given.has(c.value))).candidates.map((c) => ({ ...c, value: head + c.value })) };
}

/** Host names, then (for a selector) `all` and every label as key=value. */
function hostCandidates(env: NodeJS.ProcessEnv, selector: boolean): Candidate[] {
  const { names, labels } = inventory(env);
  const local = { value: LOCAL_HOST_NAMES[0], description: 'this machine' };
  if (!selector) return [...names, local];
  return [...names, local, { value: 'all', description: 'every host' }, ...[...labels].sort().map((value) => ({ value, description: 'label' }))];
}

function inventory(env: NodeJS.ProcessEnv): { names: Candidate[]; labels: Set<string> } {
  const hosts = mapAt(readYaml(hostsFile(env)), 'hosts');
  const labels = new Set<string>();
  const names = Object.entries(hosts).map(([name, entry]) => {
    const fields = isMap(entry) ? entry : {};
    for (const [key, value] of Object.entries(mapAt(fields, 'labels'))) {
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') labels.add(`${key}=${String(value)}`);
    }
    const address = typeof fields.address === 'string' ? fields.address : typeof fields.transport === 'string' ? fields.transport : undefined;
    return address === undefined ? { value: name } : { value: name, description: address };
  });
  return { names, labels };
}

/** The keys of the map `key` of a YAML file (policies:, principals:); none when it is missing or broken. */
function keysOf(file: string, key: string): string[] {
  return Object.keys(mapAt(readYaml(file), key));
}

/** The file's content; undefined when it is missing or not YAML throughout (a half-read file would offer wrong names). */
function readYaml(file: string): unknown {
  try {
    const doc = parseDocument(readFileSync(file, 'utf8'));
    return doc.errors.length === 0 ? doc.toJS() : undefined;
  } catch {
    return undefined;
  }
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mapAt(value: unknown, key: string): Record<string, unknown> {
  const inner = isMap(value) ? value[key] : undefined;
  return isMap(inner) ? inner : {};
}

/**
 * Sessions of this machine's tmux server (the one `tmux ls` lists) when the command's --host is this
 * machine (or left out) and its --user the login user: nothing else can be asked without a connection
 * or sudo, and the daemon's cache is read only through an audited session.list.
 */
async function localTmuxSessions(line: Line, env: NodeJS.ProcessEnv): Promise<Candidate[]> {
  const host = line.values.get('host') ?? 'localhost';
  const user = line.values.get('user');
  if (!isLocalHostName(host) || (user !== undefined && user !== userInfo().username)) return [];
  const out = await new Promise<string>((resolve) => {
    execFile('tmux', ['list-sessions', '-F', '#{session_name}'], { env, timeout: TMUX_TIMEOUT_MS, killSignal: 'SIGKILL' }, (err, stdout) => resolve(err ? '' : stdout));
  });
  return out.split('\n').filter((name) => name !== '').map((value) => ({ value }));
}

async function agentSessions(env: NodeJS.ProcessEnv): Promise<Candidate[]> {
  try {
    const { readSessions } = await import('../agents/store.js');
    return readSessions(env).map((s) => ({ value: s.id, description: `${s.name} (${s.state})` }));
  } catch {
    return [];
  }
}

/** The agents `code start --agent` knows by name (their screen profiles; generic is a custom command's), the configured default said. */
async function agents(env: NodeJS.ProcessEnv): Promise<Candidate[]> {
  const { AGENT_NAMES } = await import('../agents/profiles.js');
  const configured = mapAt(readYaml(configFile(env)), 'agents').default_agent;
  const fallback = typeof configured === 'string' ? configured : 'claude';
  return AGENT_NAMES.filter((name) => name !== 'generic').map((value) => (value === fallback ? { value, description: 'the default (agents.default_agent)' } : { value }));
}

interface OpenApproval {
  id: string;
  what: string;
  options: Array<{ id: string; label: string }>;
}

/**
 * The open approvals, newest first, read from approvals.db as it is (notify/approvals.ts's table) without
 * the store, which would create the file and its link key; none when there is no such file yet.
 */
function openApprovals(env: NodeJS.ProcessEnv): OpenApproval[] {
  // Loaded on first use, by require: the CLI's bundle keeps the native addon outside (scripts/bundle.mjs).
  const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  let db: BetterSqlite3.Database | undefined;
  try {
    db = new Database(approvalsDbFile(env), { readonly: true, fileMustExist: true, timeout: 100 });
    const rows = db.prepare<[number], { id: string; what: string; options: string }>("SELECT id, what, options FROM approvals WHERE status = 'pending' AND expires_at > ? ORDER BY created_at DESC LIMIT 100").all(Date.now());
    return rows.map((r) => ({ id: r.id, what: r.what, options: JSON.parse(r.options) as OpenApproval['options'] }));
  } catch {
    return [];
  } finally {
    db?.close();
  }
}

/** The options of the one open approval whose ID starts with `prefix` (as `approvals answer` finds it), with their labels. */
function approvalOptions(prefix: string, env: NodeJS.ProcessEnv): Candidate[] {
  const named = openApprovals(env).filter((a) => prefix !== '' && a.id.startsWith(prefix));
  return named.length === 1 ? named[0]!.options.map((o) => ({ value: o.id, description: o.label })) : [];
}

/** Recording IDs, newest first, with the host and session each recorded. */
async function recordings(env: NodeJS.ProcessEnv): Promise<Candidate[]> {
  const { listRecordings } = await import('../sessions/recording.js');
  return listRecordings(recordingsDir(env)).map((r) => ({ value: r.id, description: `${r.session} on ${r.host} (${r.user}), ${utcCell(r.started, 'minute')} UTC` }));
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
