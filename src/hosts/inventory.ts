// The host inventory, $REMUX_HOME/hosts.yaml: which machines remux can reach and how.
// Loading validates strictly with file:line errors; editing goes through the yaml Document
// API so users' comments survive `remux hosts add/remove`.
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import { isMap, isSeq } from 'yaml';
import { z } from 'zod';
import { withFileLock, writeAtomic } from '../config/atomic-file.js';
import { expandHome, hostsFile } from '../config/paths.js';
import { ConfigError, editableDocument, loadSourceFile, parseSource, renderPath, strictObject, topLevelMap, validate, type SourceDoc } from '../config/source.js';
import { LOCAL_HOST_NAMES, isLocalHostName } from './local.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const LABEL = /^[A-Za-z0-9_.-]{1,63}$/;
const USER = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** tmux users are Unix login names (they follow sudo -u): no leading digit, dot or dash. */
const TMUX_USER = /^[a-z_][a-z0-9_-]{0,31}$/;
/** `-L NAME`: a socket name in the user's tmux directory. */
const TMUX_SOCKET_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
/** One segment of a `-S PATH` socket path. */
const TMUX_PATH_SEGMENT = /^[A-Za-z0-9._@%+=,-]{1,255}$/;

/** Names a file may not define: the built-in local host, and the selector keyword `all`. */
export const RESERVED_HOST_NAMES: readonly string[] = [...LOCAL_HOST_NAMES, 'all'];

/** Bad input on the command line (a host spec, a selector, a label): a usage error, exit 2. */
export class InventoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InventoryError';
  }
}

export type Transport = 'ssh' | 'local' | 'agent';

export type HostAuth =
  | { method: 'identity'; file: string }
  | { method: 'agent' }
  | { method: 'password'; env: string }
  /** Nothing configured: ssh's own defaults (agent, then ~/.ssh/id_*). */
  | { method: 'default' };

/** Which tmux server a host's sessions live on: `-L NAME` (per user, in their tmux directory) or `-S PATH`. */
export type TmuxSocket = { kind: 'name'; name: string } | { kind: 'path'; path: string };

interface HostCommon {
  name: string;
  labels: Record<string, string>;
  /** True for the built-in localhost/local, which no file defines. */
  builtin: boolean;
  /** tmux_socket; absent: tmux's default socket. */
  tmuxSocket?: TmuxSocket;
  /** tmux_users, in file order; absent: only the login user. */
  tmuxUsers?: string[];
}

export interface SshHostEntry extends HostCommon {
  transport: 'ssh';
  address: string;
  port: number;
  user: string;
  auth: HostAuth;
  /** Name of the host to jump through (ssh ProxyJump), or null. */
  jump: string | null;
}

export interface LocalHostEntry extends HostCommon {
  transport: 'local';
}

/** A machine that dials the daemon (`remux agent`): the token it must present is kept only as a hash. */
export interface AgentHostEntry extends HostCommon {
  transport: 'agent';
  tokenSha256: string;
}

export type HostEntry = SshHostEntry | LocalHostEntry | AgentHostEntry;

export interface Inventory {
  file: string;
  /** In file order. */
  hosts: HostEntry[];
}

export { hostsFile };

/** Why `name` cannot name a host in the file, or null if it can. */
export function hostNameProblem(name: string): string | null {
  if (RESERVED_HOST_NAMES.includes(name.toLowerCase())) {
    return `"${name}" is reserved (${RESERVED_HOST_NAMES.join(', ')}: the built-in local host and the selector for every host)`;
  }
  if (!NAME.test(name)) return `bad host name "${name}": use up to 64 letters, digits, ".", "_", "-", starting with a letter or digit`;
  return null;
}

/** A hostname (RFC 1123) or an IPv4/IPv6 address, written without brackets. */
export function isValidAddress(address: string): boolean {
  if (isIP(address) !== 0) return true;
  if (address.length > 253) return false;
  const labels = address.split('.');
  // An all-numeric last label is a mistyped IPv4 address (10.0.0.256), not a hostname.
  return labels.every((l) => DNS_LABEL.test(l)) && !/^[0-9]+$/.test(labels[labels.length - 1] ?? '');
}

const HostNameSchema = z.string().superRefine((name, ctx) => {
  const problem = hostNameProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** Surfaces the key schema's own message instead of zod's "Invalid key in record". */
const keyError = (iss: z.core.$ZodRawIssue): string | undefined =>
  iss.code === 'invalid_key' ? iss.issues[0]?.message : undefined;

const LabelKey = z.string().regex(LABEL, 'bad label key: use 1-63 letters, digits, ".", "_", "-"');
const LabelValue = z
  .string({ error: 'label values are strings: quote numbers and booleans (tier: "1")' })
  .regex(LABEL, 'bad label value: use 1-63 letters, digits, ".", "_", "-"');

const AUTH_KEYS = ['identity', 'agent', 'password_env'] as const;
const SSH_ONLY_KEYS = ['address', 'port', 'user', ...AUTH_KEYS, 'jump'] as const;

const HostSchema = strictObject({
  address: z.string().refine(isValidAddress, 'not a hostname or IP address').optional(),
  port: z.number().int().min(1).max(65535).optional(),
  user: z.string().regex(USER, 'bad user name: use letters, digits, ".", "_", "-", not starting with "-" or "."').optional(),
  identity: z
    .string()
    .min(1)
    .refine((p) => !p.startsWith('-'), 'must not start with "-"')
    .optional(),
  agent: z.boolean().optional(),
  password_env: z.string().regex(ENV_NAME, 'expected an environment variable name').optional(),
  labels: z.record(LabelKey, LabelValue, { error: keyError }).optional(),
  jump: z.string().optional(),
  transport: z.enum(['ssh', 'local', 'agent']).optional(),
  token_sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected the 64 hex digits of a SHA-256 (made by `remux agent token NAME`)').optional(),
  tmux_socket: z.string().superRefine((socket, ctx) => {
    const problem = tmuxSocketProblem(socket);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }).optional(),
  tmux_users: z
    .array(z.string().regex(TMUX_USER, 'bad tmux user: use a login name (lower-case letters, digits, "_", "-", not starting with a digit or "-")'))
    .min(1, 'list at least one user, or leave tmux_users out (the login user)')
    .refine((users) => new Set(users).size === users.length, 'a user is listed twice')
    .optional(),
}).superRefine((host, ctx) => {
  const transport = host.transport ?? 'ssh';
  if (transport !== 'agent' && host.token_sha256 !== undefined) ctx.addIssue({ code: 'custom', path: ['token_sha256'], message: 'only used with transport agent' });
  if (transport === 'agent') {
    if (host.token_sha256 === undefined) ctx.addIssue({ code: 'custom', path: ['token_sha256'], message: 'missing: an agent host needs the hash of its token (`remux agent token NAME` makes both)' });
    for (const key of SSH_ONLY_KEYS) {
      if (host[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'not used with transport agent (the agent dials the daemon)' });
    }
  } else if (transport === 'local') {
    for (const key of SSH_ONLY_KEYS) {
      if (host[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'not used with transport local' });
    }
  } else {
    if (host.address === undefined) ctx.addIssue({ code: 'custom', path: ['address'], message: 'missing (expected a hostname or IP address)' });
    const given = AUTH_KEYS.filter((k) => (k === 'agent' ? host.agent === true : host[k] !== undefined));
    const second = given[1];
    if (second) ctx.addIssue({ code: 'custom', path: [second], message: `use only one of identity, agent: true, password_env (${given.join(' and ')} given)` });
  }
});

type HostFields = z.infer<typeof HostSchema>;

/** Why `socket` cannot be a tmux_socket (a `-L` name, or an absolute `-S` path of plain segments), or null. */
function tmuxSocketProblem(socket: string): string | null {
  if (!socket.startsWith('/')) {
    return TMUX_SOCKET_NAME.test(socket) ? null : 'bad tmux_socket: a socket name (tmux -L) is 1-64 letters, digits, "_", ".", "-"; a path (tmux -S) is absolute';
  }
  if (socket.length > 1024) return 'bad tmux_socket: path longer than 1024 characters';
  const segments = socket.slice(1).split('/');
  const bad = segments.find((seg) => !TMUX_PATH_SEGMENT.test(seg) || seg === '.' || seg === '..');
  if (bad !== undefined) return `bad tmux_socket: path segment "${bad}" (use letters, digits and ._@%+=,- ; no empty, . or .. segments)`;
  return null;
}

function tmuxSocketOf(socket: string): TmuxSocket {
  return socket.startsWith('/') ? { kind: 'path', path: socket } : { kind: 'name', name: socket };
}

/** The tmux fields of an entry, present only when the file sets them. */
function tmuxFields(h: HostFields): Pick<HostCommon, 'tmuxSocket' | 'tmuxUsers'> {
  return {
    ...(h.tmux_socket !== undefined ? { tmuxSocket: tmuxSocketOf(h.tmux_socket) } : {}),
    ...(h.tmux_users !== undefined ? { tmuxUsers: h.tmux_users } : {}),
  };
}

const InventorySchema = strictObject({
  hosts: z.record(HostNameSchema, HostSchema, { error: keyError }).nullish(),
}).superRefine((inv, ctx) => {
  for (const issue of jumpProblems(inv.hosts ?? {})) ctx.addIssue({ code: 'custom', ...issue });
});

/** Unknown or local jump hosts, and jump cycles (each cycle reported once). */
function jumpProblems(hosts: Record<string, HostFields>): Array<{ path: string[]; message: string }> {
  const problems: Array<{ path: string[]; message: string }> = [];
  const inCycle = new Set<string>();
  for (const [name, host] of Object.entries(hosts)) {
    const jump = host.jump;
    if (jump === undefined) continue;
    const target = Object.hasOwn(hosts, jump) ? hosts[jump] : undefined;
    if (isLocalHostName(jump)) {
      problems.push({ path: ['hosts', name, 'jump'], message: 'the local host cannot be a jump host' });
    } else if (!target) {
      problems.push({ path: ['hosts', name, 'jump'], message: `jump host "${jump}" is not in the inventory` });
    } else if (target.transport === 'local') {
      problems.push({ path: ['hosts', name, 'jump'], message: `jump host "${jump}" uses transport local; a jump host is reached over ssh` });
    }
    const chain = [name];
    for (let next: string | undefined = jump; next !== undefined; next = hosts[next]?.jump) {
      if (!Object.hasOwn(hosts, next)) break;
      const seen = chain.indexOf(next);
      if (seen >= 0) {
        const cycle = chain.slice(seen);
        const [first] = cycle;
        if (first !== undefined && !inCycle.has(first)) {
          cycle.forEach((h) => inCycle.add(h));
          problems.push({ path: ['hosts', first, 'jump'], message: `jump cycle: ${[...cycle, first].join(' -> ')}` });
        }
        break;
      }
      chain.push(next);
    }
  }
  return problems;
}

/** Reads the inventory; a missing file is an empty inventory. Throws ConfigError with file:line. */
export function loadInventory(file: string, env: NodeJS.ProcessEnv = process.env): Inventory {
  if (!existsSync(file)) return { file, hosts: [] };
  return inventoryOf(loadSourceFile(file, env), env);
}

function inventoryOf(doc: SourceDoc, env: NodeJS.ProcessEnv): Inventory {
  // An empty file (or one with only comments) parses to null: no hosts.
  const parsed = validate({ ...doc, value: doc.value ?? {} }, InventorySchema);
  const hosts = Object.entries(parsed.hosts ?? {}).map(([name, fields]) => toEntry(name, fields, doc.file, env));
  return { file: doc.file, hosts };
}

function toEntry(name: string, h: HostFields, file: string, env: NodeJS.ProcessEnv): HostEntry {
  const labels = { ...h.labels };
  if (h.transport === 'local') return { name, transport: 'local', labels, builtin: false, ...tmuxFields(h) };
  // The schema refuses an agent host without a token hash.
  if (h.transport === 'agent') return { name, transport: 'agent', tokenSha256: h.token_sha256 ?? '', labels, builtin: false, ...tmuxFields(h) };
  let auth: HostAuth = { method: 'default' };
  // Relative identity paths are relative to the inventory file, not to wherever the daemon runs.
  if (h.identity !== undefined) auth = { method: 'identity', file: resolve(dirname(file), expandHome(h.identity)) };
  else if (h.agent === true) auth = { method: 'agent' };
  else if (h.password_env !== undefined) auth = { method: 'password', env: h.password_env };
  return {
    name,
    transport: 'ssh',
    // The schema refuses an ssh host without an address.
    address: h.address ?? '',
    port: h.port ?? 22,
    user: h.user ?? loginName(env),
    auth,
    labels,
    jump: h.jump ?? null,
    builtin: false,
    ...tmuxFields(h),
  };
}

function loginName(env: NodeJS.ProcessEnv): string {
  try {
    return userInfo().username;
  } catch {
    // No passwd entry for this uid (common in containers).
    const name = env.LOGNAME ?? env.USER;
    if (!name) throw new Error('cannot tell the current login name: set user: for each host in the inventory');
    return name;
  }
}

// ---- Editing -------------------------------------------------------------------------------

export interface HostInput {
  name: string;
  address?: string;
  port?: number;
  user?: string;
  identity?: string;
  agent?: boolean;
  passwordEnv?: string;
  labels?: Record<string, string>;
  jump?: string;
  transport?: Transport;
  /** Agent hosts: the SHA-256 of the token the agent presents. */
  tokenSha256?: string;
  /** tmux_socket as written: a -L name or a -S path. */
  tmuxSocket?: string;
  tmuxUsers?: string[];
}

export interface AddHostOptions {
  /** Overwrite an existing host of the same name instead of refusing. */
  replace?: boolean;
  env?: NodeJS.ProcessEnv;
}

const HEADER = ' remux host inventory: `remux hosts add` edits this file and keeps comments.';

/** Adds (or with `replace`, overwrites) one host, keeping the rest of the file and its comments. */
export function addHost(file: string, host: HostInput, options: AddHostOptions = {}): 'added' | 'replaced' {
  // Two `hosts add` at once queue up instead of one overwriting the other's host.
  return withFileLock(file, () => addHostLocked(file, host, options));
}

function addHostLocked(file: string, host: HostInput, options: AddHostOptions): 'added' | 'replaced' {
  const env = options.env ?? process.env;
  const nameProblem = hostNameProblem(host.name);
  if (nameProblem) throw new InventoryError(nameProblem);
  const fields = fileFields(host);
  const checked = HostSchema.safeParse(fields);
  if (!checked.success) {
    const details = checked.error.issues.map((i) => `${renderPath(i.path)}: ${i.message}`);
    throw new InventoryError(`bad host ${host.name}: ${details.join('; ')}`);
  }

  // Refuse to edit a file that is already broken: its own errors, with its own lines, come first.
  loadInventory(file, env);
  const doc = editableDocument(file, HEADER);
  const hosts = topLevelMap(doc, 'hosts');
  const existed = hosts.has(host.name);
  if (existed && !options.replace) throw new InventoryError(`host ${host.name} already exists in ${file}: add --replace to overwrite it, or pick another name`);
  // A `hosts: {}` left by removing the last host would otherwise keep growing in flow style.
  if (hosts.items.length === 0) hosts.flow = false;
  const node = doc.createNode(fields);
  const labels = node.get('labels', true);
  if (isMap(labels)) labels.flow = true;
  const tmuxUsers = node.get('tmux_users', true);
  if (isSeq(tmuxUsers)) tmuxUsers.flow = true;
  hosts.set(host.name, node);

  const text = doc.toString();
  try {
    inventoryOf(parseSource(text, file, env), env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new InventoryError(`cannot add host ${host.name}: ${err.issues.map((i) => i.detail).join('; ')}`);
  }
  writeAtomic(file, text, { keepMode: true });
  return existed ? 'replaced' : 'added';
}

/** Removes one host; refuses while another host jumps through it. */
export function removeHost(file: string, name: string, env: NodeJS.ProcessEnv = process.env): void {
  withFileLock(file, () => removeHostLocked(file, name, env));
}

function removeHostLocked(file: string, name: string, env: NodeJS.ProcessEnv): void {
  const inventory = loadInventory(file, env);
  if (!inventory.hosts.some((h) => h.name === name)) throw new InventoryError(`no host named "${name}" in ${file}`);
  const dependents = inventory.hosts.filter((h) => h.transport === 'ssh' && h.jump === name).map((h) => h.name);
  if (dependents.length > 0) {
    throw new InventoryError(`host ${name} is the jump host of ${dependents.join(', ')}; change or remove ${dependents.length === 1 ? 'it' : 'them'} first`);
  }
  const doc = editableDocument(file, HEADER);
  topLevelMap(doc, 'hosts').delete(name);
  writeAtomic(file, doc.toString(), { keepMode: true });
}

/** The input in the file's own shape and key order, leaving out what was not given. */
function fileFields(host: HostInput): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    address: host.address,
    port: host.port,
    user: host.user,
    // `$` would otherwise start a ${VAR} reference when the file is read back.
    identity: host.identity?.replaceAll('$', () => '$$'),
    agent: host.agent,
    password_env: host.passwordEnv,
    labels: host.labels && Object.keys(host.labels).length > 0 ? host.labels : undefined,
    jump: host.jump,
    transport: host.transport,
    token_sha256: host.tokenSha256,
    tmux_socket: host.tmuxSocket,
    tmux_users: host.tmuxUsers,
  };
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

// ---- Command-line helpers -----------------------------------------------------------------

/** `ops@10.0.0.5`, `ops@[::1]`, `10.0.0.5`, `::1` → user (if given) and address. */
export function parseHostSpec(spec: string): { user?: string; address: string } {
  const at = spec.lastIndexOf('@');
  const user = at >= 0 ? spec.slice(0, at) : undefined;
  let address = spec.slice(at + 1);
  if (address.startsWith('[') && address.endsWith(']')) {
    address = address.slice(1, -1);
    if (isIP(address) !== 6) throw new InventoryError(`bad address in "${spec}": only IPv6 addresses go in brackets`);
  }
  if (user !== undefined && !USER.test(user)) throw new InventoryError(`bad user name in "${spec}"`);
  if (!isValidAddress(address)) {
    const hint = address.includes(':') && isIP(address) === 0 ? ' (give the port with --port, not host:port)' : '';
    throw new InventoryError(`bad address in "${spec}": not a hostname or IP address${hint}`);
  }
  return user === undefined ? { address } : { user, address };
}

/** `--label env=prod --label role=web` → { env: 'prod', role: 'web' }; a key given twice is an error. */
export function parseLabels(terms: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const term of terms) {
    const eq = term.indexOf('=');
    const key = term.slice(0, eq);
    const value = term.slice(eq + 1);
    if (eq < 0 || !LabelKey.safeParse(key).success || !LabelValue.safeParse(value).success) {
      throw new InventoryError(`bad label "${term}": write key=value with 1-63 letters, digits, ".", "_", "-" on each side`);
    }
    if (Object.hasOwn(labels, key)) throw new InventoryError(`label ${key} given twice ("${key}=${labels[key]}" and "${term}")`);
    labels[key] = value;
  }
  return labels;
}

// ---- Selectors -----------------------------------------------------------------------------
//
//   selector   := "all" | name-list | label-list
//   name-list  := name-term ("," name-term)*     union, in the order written, duplicates dropped
//   name-term  := host-name | glob               glob: "*" any run, "?" one character (web*, db-?)
//   label-list := label-term ("," label-term)*   intersection: every term must hold (env=prod,role=web)
//   label-term := key "=" value | key "!=" value  "!=" also matches hosts without the key (as in Kubernetes)
//
// "all" is every host in the inventory, not the built-in local host, which is selected only by
// its exact name (localhost or local). Names and labels do not mix in one selector: "web1,env=prod"
// could mean OR or AND, so it is refused. Spaces around terms are ignored. Host names cannot
// contain "=", ",", "!", "*" or "?", and "all" is reserved, so every term has one reading.

const GLOB_TERM = /^[A-Za-z0-9_.*?-]+$/;
const LABEL_TERM = /^([^=!]+)(!?=)(.*)$/;
const LIST_MAX = 20;

/** A selector checked for syntax once: which terms, of which kind. */
export type Selector =
  | { kind: 'all' }
  | { kind: 'names'; terms: Array<{ term: string; glob: RegExp | null }> }
  | { kind: 'labels'; terms: LabelTerm[] };

interface LabelTerm {
  key: string;
  negated: boolean;
  value: string;
}

/** Parses a selector; throws InventoryError for bad syntax (never for what the inventory holds). */
export function parseSelector(selector: string): Selector {
  const terms = selector.split(',').map((t) => t.trim());
  if (terms.some((t) => t === '')) throw new InventoryError(`empty term in selector "${selector}"`);
  if (terms.includes('all')) {
    if (terms.length > 1) throw new InventoryError(`"all" selects every host; it cannot be combined with other terms ("${selector}")`);
    return { kind: 'all' };
  }
  const labelTerms = terms.filter((t) => t.includes('='));
  if (labelTerms.length === 0) {
    return {
      kind: 'names',
      terms: terms.map((term) => {
        if (!isLocalHostName(term) && !GLOB_TERM.test(term)) {
          throw new InventoryError(`bad selector term "${term}" in "${selector}": expected a host name, a glob (web*) or key=value`);
        }
        return { term, glob: /[*?]/.test(term) ? globRegExp(term) : null };
      }),
    };
  }
  if (labelTerms.length < terms.length) {
    throw new InventoryError(`selector "${selector}" mixes host names and labels; use names (web1,web2) or labels (env=prod,role=web), not both`);
  }
  return {
    kind: 'labels',
    terms: terms.map((term): LabelTerm => {
      const m = LABEL_TERM.exec(term);
      const [, key = '', op = '', value = ''] = m ?? [];
      if (!m || !LABEL.test(key) || !LABEL.test(value)) {
        throw new InventoryError(`bad label term "${term}" in "${selector}": write key=value or key!=value`);
      }
      return { key, negated: op === '!=', value };
    }),
  };
}

/**
 * Whether a selector picks `entry`, term by term, without requiring every term to match some host:
 * the test a principal's host scope uses (the built-in local host only by its exact name, as in select()).
 */
export function selectorMatches(selector: Selector, entry: HostEntry): boolean {
  switch (selector.kind) {
    case 'all':
      return !entry.builtin;
    case 'names':
      return selector.terms.some((t) => (entry.builtin ? t.term === entry.name : t.glob ? t.glob.test(entry.name) : t.term === entry.name));
    case 'labels':
      return !entry.builtin && selector.terms.every((t) => (Object.hasOwn(entry.labels, t.key) && entry.labels[t.key] === t.value) !== t.negated);
  }
}

export function select(inventory: Inventory, selector: string): HostEntry[] {
  const parsed = parseSelector(selector);
  if (parsed.kind === 'all') {
    if (inventory.hosts.length === 0) throw new InventoryError(`no hosts in the inventory (${inventory.file}); add one with: remux hosts add NAME USER@ADDRESS`);
    return [...inventory.hosts];
  }
  return parsed.kind === 'names' ? selectNames(inventory, parsed.terms) : selectLabels(inventory, parsed, selector);
}

/** This machine, as the built-in host `localhost` (or `local`): no file defines it. */
export function builtinLocalHost(name = 'localhost'): HostEntry {
  return { name, transport: 'local', labels: {}, builtin: true };
}

/**
 * The hosts a listing shows (hosts list, the console, GET /api/hosts and /api/sessions, MCP list_hosts,
 * session ls): this machine first, then the inventory's. The selector `all` stays the inventory's hosts.
 */
export function listedHosts(inventory: Inventory): HostEntry[] {
  return [builtinLocalHost(), ...inventory.hosts];
}

function selectNames(inventory: Inventory, terms: Array<{ term: string; glob: RegExp | null }>): HostEntry[] {
  const picked = new Map<string, HostEntry>();
  for (const { term, glob } of terms) {
    if (isLocalHostName(term)) {
      // localhost and local are one machine: the first spelling given names it.
      if (![...picked.values()].some((h) => h.builtin)) picked.set(term, builtinLocalHost(term));
      continue;
    }
    const matches = inventory.hosts.filter((h) => (glob ? glob.test(h.name) : h.name === term));
    if (matches.length === 0) {
      const what = glob ? `no host matches "${term}"` : `no host named "${term}"`;
      throw new InventoryError(`${what}; ${describeHosts(inventory)}`);
    }
    // Re-setting a key keeps its first position: duplicates drop out in the order written.
    for (const h of matches) picked.set(h.name, h);
  }
  return [...picked.values()];
}

function selectLabels(inventory: Inventory, parsed: Selector, selector: string): HostEntry[] {
  const matches = inventory.hosts.filter((h) => selectorMatches(parsed, h));
  if (matches.length > 0) return matches;
  const known = [...new Set(inventory.hosts.flatMap((h) => Object.entries(h.labels).map(([k, v]) => `${k}=${v}`)))];
  const labels = known.length > 0 ? `labels in the inventory: ${listSome(known)}` : 'the inventory has no labels';
  throw new InventoryError(`no host matches "${selector}"; ${labels}`);
}

function describeHosts(inventory: Inventory): string {
  const names = inventory.hosts.map((h) => h.name);
  const builtin = `the built-in ${LOCAL_HOST_NAMES.join('/')}`;
  return names.length > 0
    ? `hosts in the inventory: ${listSome(names)} (and ${builtin})`
    : `the inventory is empty (only ${builtin} exists); add one with: remux hosts add NAME USER@ADDRESS`;
}

function listSome(items: string[]): string {
  const shown = items.slice(0, LIST_MAX).join(', ');
  return items.length > LIST_MAX ? `${shown}, … (${items.length - LIST_MAX} more)` : shown;
}

function globRegExp(glob: string): RegExp {
  // GLOB_TERM admits only name characters plus * and ?; "." is the one that needs escaping.
  const body = glob.replace(/\./g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}
