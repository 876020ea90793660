// $REMUX_HOME/principals.yaml: who may use the daemon's HTTP API, the web console and REMUX_TOKEN, and
// what each may touch. A token is shown once when made; the file keeps only its SHA-256.
//
// principals:
//   ci:
//     token_sha256: 3f1c…               # 64 hex digits
//     created: 2026-12-04T07:00:00.000Z
//     hosts: env=prod                   # a selector, as in `client run` (required unless admin)
//     users: [deploy]                   # tmux users it may use ("*" any; default none)
//     create_as: [deploy]               # tmux users it may create sessions as (default: users)
//     attach: read-only                 # or interactive (default)
//     policies: [read_only]             # allowed policies, the first its default (default: default_policy)
//   admin:
//     token_sha256: …
//     admin: true                       # everything; no other scope keys
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isMap, isSeq, YAMLMap } from 'yaml';
import { z } from 'zod';
import { AuthError, UsageError } from '../core/errors.js';
import type { Principal, Scope } from '../core/types.js';
import { InventoryError, parseSelector } from '../hosts/inventory.js';
import { withFileLock, writeAtomic } from './atomic-file.js';
import { editableDocument, loadSourceFile, renderPath, strictObject, topLevelMap, validate } from './source.js';

const PRINCIPAL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** tmux users as the sessions layer accepts them (login-name rules), or "*" for any. */
const TMUX_USER = /^(\*|[a-z_][a-z0-9_-]{0,31})$/;
/** Tokens carry a prefix so that secret scanners and people can tell them apart from other strings. */
const TOKEN_PREFIX = 'rmx_';

export interface PrincipalEntry {
  name: string;
  tokenSha256: string;
  created: string | null;
  scope: Scope;
}

export interface Principals {
  file: string;
  entries: PrincipalEntry[];
}

export const ADMIN_SCOPE: Scope = { admin: true, hosts: 'all', users: ['*'], createAs: ['*'], attach: 'interactive', policies: [] };

const User = z.string().regex(TMUX_USER, 'a tmux user is a login name ([a-z_][a-z0-9_-]*, at most 32 characters) or "*"');

const EntrySchema = strictObject({
  token_sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected the 64 hex digits of a SHA-256 (made by `remux principal add`)'),
  created: z.string().optional(),
  admin: z.boolean().default(false),
  hosts: z
    .string()
    .min(1)
    .superRefine((sel, ctx) => {
      try {
        parseSelector(sel);
      } catch (err) {
        if (!(err instanceof InventoryError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message });
      }
    })
    .optional(),
  users: z.array(User).optional(),
  create_as: z.array(User).optional(),
  attach: z.enum(['interactive', 'read-only']).optional(),
  policies: z.array(z.string().min(1)).optional(),
}).superRefine((e, ctx) => {
  if (e.admin) {
    for (const key of ['hosts', 'users', 'create_as', 'attach', 'policies'] as const) {
      if (e[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'an admin reaches everything; remove this key or set admin: false' });
    }
    return;
  }
  if (e.hosts === undefined) ctx.addIssue({ code: 'custom', path: ['hosts'], message: 'missing: a principal that is not admin names its hosts (a selector, or all)' });
  const users = e.users ?? [];
  for (const [i, u] of (e.create_as ?? []).entries()) {
    if (!users.includes('*') && !users.includes(u)) ctx.addIssue({ code: 'custom', path: ['create_as', i], message: `${u} is not in users: it may create sessions only as tmux users it may use; add ${u} to its users too (--users)` });
  }
});

const FileSchema = strictObject({
  principals: z.record(z.string().regex(PRINCIPAL_NAME, 'a principal name is 1-64 letters, digits, ".", "_", "-", starting with a letter or digit'), EntrySchema).default({}),
});

/** Reads the principals file; a missing file means none. Bad content throws ConfigError with file:line. */
export function loadPrincipals(file: string): Principals {
  if (!existsSync(file)) return { file, entries: [] };
  const doc = loadSourceFile(file);
  const parsed = validate({ ...doc, value: doc.value ?? {} }, FileSchema);
  const entries = Object.entries(parsed.principals).map(([name, e]): PrincipalEntry => {
    const users = e.users ?? [];
    const scope: Scope = e.admin
      ? ADMIN_SCOPE
      : { admin: false, hosts: e.hosts ?? '', users, createAs: e.create_as ?? users, attach: e.attach ?? 'interactive', policies: e.policies ?? [] };
    return { name, tokenSha256: e.token_sha256, created: e.created ?? null, scope };
  });
  return { file, entries };
}

const HEADER = ' remux principals: managed with `remux principal add|set|ls|rm|rotate`, which keep comments. Tokens are stored only as SHA-256 hashes.';

/** An entry as the file keeps it: a scoped one with every scope key written out, so the file says all it may do. */
function fileFields(e: PrincipalEntry): Record<string, unknown> {
  const s = e.scope;
  return {
    token_sha256: e.tokenSha256,
    ...(e.created ? { created: e.created } : {}),
    ...(s.admin ? { admin: true } : { hosts: s.hosts, users: [...s.users], create_as: [...s.createAs], attach: s.attach, policies: [...s.policies] }),
  };
}

/** What is written is read back literally: a `$` would otherwise start a ${VAR} reference. */
function literal(value: unknown): unknown {
  if (typeof value === 'string') return value.replaceAll('$', () => '$$');
  return Array.isArray(value) ? value.map(literal) : value;
}

/**
 * Writes `after` over the file that held `before`, changing only the keys that changed: comments, key
 * order, ${VAR} references and what else is written by hand stay as they were.
 */
function savePrincipals(file: string, before: readonly PrincipalEntry[], after: readonly PrincipalEntry[]): void {
  const wanted = new Map(after.map((e) => [e.name, fileFields(e)]));
  // What is written must load: a bad value from the command line is refused here, before the file changes.
  const checked = FileSchema.safeParse({ principals: Object.fromEntries(wanted) });
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new UsageError(`${renderPath(issue?.path.slice(2).map((k) => (typeof k === 'number' ? k : String(k))) ?? [])}: ${issue?.message ?? 'invalid'}`);
  }
  const doc = editableDocument(file, HEADER);
  const principals = topLevelMap(doc, 'principals');
  const had = new Map(before.map((e) => [e.name, fileFields(e)]));
  for (const name of had.keys()) if (!wanted.has(name)) principals.delete(name);
  // A `principals: {}` left by removing the last one would otherwise keep growing in flow style.
  if (principals.items.length === 0) principals.flow = false;
  for (const [name, fields] of wanted) {
    const existing: unknown = principals.get(name, true);
    const node: YAMLMap = isMap(existing) ? existing : new YAMLMap(doc.schema);
    if (node !== existing) principals.set(name, node);
    const was: Record<string, unknown> = node === existing ? (had.get(name) ?? {}) : {};
    for (const key of Object.keys(was)) if (!(key in fields)) node.delete(key);
    for (const [key, value] of Object.entries(fields)) {
      if (JSON.stringify(value) === JSON.stringify(was[key])) continue;
      const written = doc.createNode(literal(value));
      if (isSeq(written)) written.flow = true;
      node.set(key, written);
    }
  }
  // Token hashes: a mode someone gave it is kept, never a group or other bit of it.
  writeAtomic(file, doc.toString(), { keepMode: true, atMost: 0o600 });
}

/**
 * Tokens are 256 random bits, so a plain SHA-256 is the right hash: nobody can search that space, and
 * a slow password hash would only make every API request slow.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function newToken(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/**
 * The principal a token belongs to, or null. Every stored hash is compared, in constant time, so the
 * answer's timing says nothing about which entry (or how much of a hash) matched.
 */
export function authenticate(principals: Principals, token: string): PrincipalEntry | null {
  const presented = Buffer.from(hashToken(token), 'hex');
  let found: PrincipalEntry | null = null;
  for (const e of principals.entries) {
    if (timingSafeEqual(presented, Buffer.from(e.tokenSha256, 'hex')) && !found) found = e;
  }
  return found;
}

/**
 * When the configured principal of this name was created (null: a local user, or an entry older than the
 * field). One removed and added again under its name is someone new: what the old one did or recorded
 * before that time is not its (the audit and recordings APIs cut a non-admin's view there).
 */
export function createdOf(principals: Principals, name: string): string | null {
  return principals.entries.find((e) => e.name === name)?.created ?? null;
}

export function principalOf(entry: PrincipalEntry, via: Principal['via']): Principal {
  return { name: entry.name, via, scope: entry.scope };
}

/**
 * The principal a command line acts for: the one whose token REMUX_TOKEN holds (read from `principals`
 * only then), or null when it is unset (the local user). A token that matches no principal is refused
 * (exit 77), never ignored.
 */
export function tokenPrincipal(env: NodeJS.ProcessEnv, principals: () => Principals): Principal | null {
  const token = env.REMUX_TOKEN;
  if (token === undefined || token === '') return null;
  const loaded = principals();
  const entry = authenticate(loaded, token);
  if (!entry) throw unknownTokenError(loaded.file);
  return principalOf(entry, 'token');
}

/** REMUX_TOKEN set to a token of nobody: every command that reads it says the same. */
export function unknownTokenError(principalsFile: string): AuthError {
  return new AuthError(`REMUX_TOKEN matches no principal in ${principalsFile}`, 'check the token (remux principal rotate NAME makes a new one), or unset REMUX_TOKEN to act as yourself');
}

/**
 * Every change is a read-modify-write under the principals file's lock (atomic-file.ts): two commands
 * at once both land, in some order, instead of the second overwriting the first.
 */
function change<T>(file: string, edit: (p: Principals) => { entries: PrincipalEntry[]; result: T }): T {
  return withFileLock(file, () => {
    const before = loadPrincipals(file);
    const { entries, result } = edit(before);
    // Nothing changed: the file stays as it is, and the daemon has nothing to reload.
    if (entries !== before.entries) savePrincipals(file, before.entries, entries);
    return result;
  });
}

/** Throws a UsageError unless `name` is a good name for a new principal of `p`. */
export function checkNewPrincipal(p: Principals, name: string): void {
  if (!PRINCIPAL_NAME.test(name)) throw new UsageError(`bad principal name "${name}": use 1-64 letters, digits, ".", "_", "-", starting with a letter or digit`);
  if (p.entries.some((e) => e.name === name)) throw new UsageError(`principal ${name} already exists in ${p.file}`, `remux principal rotate ${name} gives it a new token; remux principal rm ${name} removes it`);
}

/** Adds a principal and returns its token (shown once: only its hash is kept). */
export function addPrincipal(file: string, name: string, scope: Scope): string {
  return change(file, (p) => {
    checkNewPrincipal(p, name);
    const token = newToken();
    return { entries: [...p.entries, { name, tokenSha256: hashToken(token), created: new Date().toISOString(), scope }], result: token };
  });
}

/** Removes a principal; never the last admin unless forced (keepAnAdmin). */
export function removePrincipal(file: string, name: string, { force = false } = {}): void {
  change(file, (p) => {
    const entry = find(p, name);
    const entries = p.entries.filter((e) => e !== entry);
    if (!force) keepAnAdmin(p, entries, name);
    return { entries, result: undefined };
  });
}

/** Replaces a principal's token; the old one stops working at once (daemon sessions made with it included). */
export function rotatePrincipal(file: string, name: string): string {
  return change(file, (p) => {
    const entry = find(p, name);
    const token = newToken();
    return { entries: p.entries.map((e) => (e === entry ? { ...e, tokenSha256: hashToken(token) } : e)), result: token };
  });
}

/**
 * Gives a principal the scope `rescope` makes of the one it has (read under the file's lock, so that
 * two changes at once both land); its token stays. The last admin is never made a scoped principal
 * unless forced (keepAnAdmin).
 */
export function setPrincipal(file: string, name: string, rescope: (current: Scope) => Scope, { force = false } = {}): { before: PrincipalEntry; after: PrincipalEntry } {
  return change(file, (p) => {
    const before = find(p, name);
    const after = { ...before, scope: rescope(before.scope) };
    if (JSON.stringify(after.scope) === JSON.stringify(before.scope)) return { entries: p.entries, result: { before, after: before } };
    const entries = p.entries.map((e) => (e === before ? after : e));
    if (!force) keepAnAdmin(p, entries, name);
    return { entries, result: { before, after } };
  });
}

/**
 * Refuses a change (of `name`) that leaves principals which had an admin without one: nobody could then
 * answer approvals or see the whole audit trail in the web console. Checked under the file's lock, so
 * two changes at once cannot each take one of two admins away.
 */
function keepAnAdmin(p: Principals, after: readonly PrincipalEntry[], name: string): void {
  if (!p.entries.some((e) => e.scope.admin) || after.some((e) => e.scope.admin)) return;
  throw new UsageError(
    `${name} is the only admin principal: without one, nobody could answer approvals or see the whole audit trail in the web console`,
    'make another principal admin first (remux principal set OTHER --admin, or remux principal add NAME --admin), then run this again; --force does it anyway',
  );
}

function find(p: Principals, name: string): PrincipalEntry {
  const entry = p.entries.find((e) => e.name === name);
  if (!entry) throw new UsageError(`no principal named ${name} in ${p.file} (known: ${p.entries.map((e) => e.name).join(', ') || 'none'})`);
  return entry;
}
