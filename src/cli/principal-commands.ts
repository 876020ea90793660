// Implementations of `remux principal add|set|ls|rm|rotate`.
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { cliPrincipal, loadConfig } from '../config/config.js';
import { policiesFile, principalsFile } from '../config/paths.js';
import { EXIT } from '../core/exit-codes.js';
import { loadPolicyFile } from '../policy/load.js';
import { ADMIN_SCOPE, addPrincipal, checkNewPrincipal, loadPrincipals, removePrincipal, rotatePrincipal, setPrincipal, type PrincipalEntry } from '../config/principals.js';
import type { Scope } from '../core/types.js';
import { InventoryError, parseSelector } from '../hosts/inventory.js';
import type { AddPrincipalOptions, RemovePrincipalOptions, SetPrincipalOptions } from './commands/principal.js';
import { openAudit } from './context.js';
import { printJson, printTable, UsageError, utcCell } from './output.js';

function list(value: string | undefined): string[] | undefined {
  return value === undefined ? undefined : value.split(',').map((v) => v.trim()).filter((v) => v !== '');
}

/** The options that say what a scoped principal may do (none of them goes with --admin). */
const SCOPE_OPTIONS = ['hosts', 'users', 'createAs', 'readOnly', 'interactive', 'policy'] as const;

function scopeOptionsGiven(opts: SetPrincipalOptions): string[] {
  return SCOPE_OPTIONS.filter((k) => opts[k] !== undefined);
}

function scopeFrom(opts: SetPrincipalOptions): Scope {
  if (opts.admin) {
    if (scopeOptionsGiven(opts).length > 0) throw new UsageError('an admin reaches everything: --admin takes no scope options', 'drop --admin to give a scope, or drop the scope options');
    return ADMIN_SCOPE;
  }
  if (opts.hosts === undefined) throw new UsageError('say which hosts it may use: --hosts SELECTOR (e.g. web1,web2, env=prod or all), or --admin');
  const users = list(opts.users) ?? [];
  return { admin: false, hosts: checkedHosts(opts.hosts), users, createAs: list(opts.createAs) ?? users, attach: opts.readOnly ? 'read-only' : 'interactive', policies: policiesFrom(opts.policy ?? []) };
}

function checkedHosts(selector: string): string {
  try {
    parseSelector(selector);
  } catch (err) {
    if (err instanceof InventoryError) throw new UsageError(`--hosts: ${err.message}`);
    throw err;
  }
  return selector;
}

/** --policy, repeatable or a,b: the names, each of a policy of the policies file (when there is one yet). */
function policiesFrom(values: readonly string[]): string[] {
  const names = values.flatMap((p) => list(p) ?? []);
  const file = policiesFile();
  if (names.length === 0 || !existsSync(file)) return names;
  // A typo would fail every command of the principal.
  const known = loadPolicyFile(file);
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) throw new UsageError(`--policy: no policy named ${unknown.join(', ')} in ${file} (known: ${[...known.keys()].join(', ') || 'none'})`, 'remux policy list shows them; remux policy create NAME --template T adds one');
  return names;
}

/** What `principal set` makes of a principal's scope: what is given changes, as `principal add` reads it; the rest stays. */
function changedScope(name: string, current: Scope, opts: SetPrincipalOptions): Scope {
  const given = scopeOptionsGiven(opts);
  if (given.length === 0 && opts.admin === undefined) {
    throw new UsageError(`nothing to change for principal ${name}: give what changes (--hosts, --users, --create-as, --read-only or --interactive, --policy, --admin or --no-admin)`, 'remux principal ls shows its scope now');
  }
  if (opts.readOnly && opts.interactive) throw new UsageError('--read-only and --interactive contradict each other: give one');
  if (opts.admin) return scopeFrom(opts);
  if (current.admin) {
    if (opts.admin === undefined) throw new UsageError(`${name} is an admin: it reaches everything, so it has no scope to change`, `to limit it, make it a scoped principal: remux principal set ${name} --no-admin --hosts SELECTOR [--users …]`);
    // --no-admin: a scope made as `principal add` makes one.
    if (opts.hosts === undefined) throw new UsageError(`--no-admin: say which hosts ${name} may use from now on: --hosts SELECTOR (e.g. web1,web2, env=prod or all)`);
    return scopeFrom(opts);
  }
  const users = list(opts.users) ?? current.users;
  // Left as `principal add` made it (the same as users), create_as follows users; narrowed, it keeps
  // those of its users still there (it may only create sessions it may use).
  const followsUsers = JSON.stringify(current.createAs) === JSON.stringify(current.users);
  const createAs = list(opts.createAs) ?? (followsUsers ? users : current.createAs.filter((u) => users.includes('*') || users.includes(u)));
  return {
    admin: false,
    hosts: opts.hosts === undefined ? current.hosts : checkedHosts(opts.hosts),
    users,
    createAs,
    attach: opts.readOnly ? 'read-only' : opts.interactive ? 'interactive' : current.attach,
    policies: opts.policy === undefined ? current.policies : policiesFrom(opts.policy),
  };
}

function printToken(name: string, token: string, json: boolean | undefined, what: string): void {
  if (json) return printJson({ name, token });
  process.stdout.write(`${what} ${name}; its token (shown only now, keep it safe):\n${token}\n`);
}

/** A scope's columns as `principal ls` shows them, in its order. */
const COLUMNS: ReadonlyArray<readonly [keyof Scope, string]> = [
  ['admin', 'ADMIN'],
  ['hosts', 'HOSTS'],
  ['users', 'USERS'],
  ['createAs', 'CREATE AS'],
  ['attach', 'ATTACH'],
  ['policies', 'POLICIES'],
];

function cells(s: Scope): Record<keyof Scope, string> {
  const users = (u: readonly string[]): string => u.join(',') || '-';
  if (s.admin) return { admin: 'yes', hosts: 'all', users: '*', createAs: '*', attach: 'interactive', policies: 'any' };
  return { admin: 'no', hosts: s.hosts, users: users(s.users), createAs: users(s.createAs), attach: s.attach, policies: s.policies.join(',') || '(default)' };
}

/** A principal as `principal ls --json` shows it: never its token or hash. */
function row(e: PrincipalEntry): Record<string, unknown> {
  return { name: e.name, created: e.created, ...e.scope };
}

/**
 * A change of who may do what is audited like any action: begun (durably) before principals.yaml is
 * written, by the CLI's principal, and ended with how it went; what was asked is the record's command
 * (a token never is). The audit store cannot be written: nothing changes.
 */
async function audited<T>(operation: string, name: string, asked: string, change: () => T): Promise<T> {
  const audit = openAudit();
  try {
    const started = performance.now();
    const id = await audit.begin({ principal: cliPrincipal(loadConfig().config), host: CONFIG_HOST, operation, resource: name, command: asked, decision: 'allow', reason: 'the local user administers principals.yaml' });
    try {
      const result = change();
      await audit.end(id, { exitCode: EXIT.OK, durationMs: performance.now() - started });
      return result;
    } catch (err) {
      // A change refused for what was asked (a usage error) reads as refused, as perform's rejections do.
      const how = err instanceof UsageError ? { exitCode: EXIT.USAGE, refusal: err.message } : { exitCode: EXIT.FAILURE, error: (err as Error).message };
      await audit.end(id, { ...how, durationMs: performance.now() - started });
      throw err;
    }
  } finally {
    audit.close();
  }
}

/** The audit's host for changes of remux's own configuration. */
const CONFIG_HOST = '(config)';

/** The options as given, for the audit: `--hosts web* --read-only`. */
function given(opts: object): string {
  return Object.entries(opts)
    .filter(([key, v]) => v !== undefined && key !== 'json')
    .map(([key, v]) => `--${key === 'admin' && v === false ? 'no-admin' : key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}${typeof v === 'boolean' ? '' : ` ${Array.isArray(v) ? v.join(' ') : String(v)}`}`)
    .join(' ');
}

export async function addPrincipalCommand(name: string, opts: AddPrincipalOptions): Promise<void> {
  // The name first: what is wrong with it matters before what the scope lacks (checked again under the file's lock).
  checkNewPrincipal(loadPrincipals(principalsFile()), name);
  const token = await audited('principal.add', name, `principal add ${name} ${given(opts)}`.trim(), () => addPrincipal(principalsFile(), name, scopeFrom(opts)));
  printToken(name, token, opts.json, 'added principal');
}

export async function setPrincipalCommand(name: string, opts: SetPrincipalOptions): Promise<void> {
  const { before, after } = await audited('principal.set', name, `principal set ${name} ${given(opts)}`.trim(), () => setPrincipal(principalsFile(), name, (current) => changedScope(name, current, opts), { force: opts.force === true }));
  const changed = COLUMNS.map(([key]) => key).filter((key) => JSON.stringify(before.scope[key]) !== JSON.stringify(after.scope[key]));
  if (opts.json) return printJson({ ...row(after), changed });
  if (changed.length === 0) {
    process.stdout.write(`principal ${name} already has that scope; nothing changed\n`);
    return;
  }
  const was = cells(before.scope);
  const now = cells(after.scope);
  const lines = COLUMNS.filter(([key]) => changed.includes(key)).map(([key, header]) => `  ${header.toLowerCase()}: ${now[key]} (was ${was[key]})\n`);
  process.stdout.write(`changed principal ${name} (its token stays the same):\n${lines.join('')}`);
}

export function listPrincipalsCommand(opts: { json?: boolean }): void {
  const { file, entries } = loadPrincipals(principalsFile());
  if (opts.json) return printJson(entries.map(row));
  if (entries.length === 0) {
    process.stderr.write(`no principals in ${file}; add one with: remux principal add NAME --admin\n`);
    return;
  }
  printTable(
    ['NAME', ...COLUMNS.map(([, header]) => header), 'CREATED (UTC)'],
    entries.map((e) => {
      const c = cells(e.scope);
      return [e.name, ...COLUMNS.map(([key]) => c[key]), utcCell(e.created)];
    }),
  );
}

export async function removePrincipalCommand(name: string, opts: RemovePrincipalOptions): Promise<void> {
  await audited('principal.rm', name, `principal rm ${name} ${given(opts)}`.trim(), () => removePrincipal(principalsFile(), name, { force: opts.force === true }));
  process.stdout.write(`removed principal ${name}\n`);
}

export async function rotatePrincipalCommand(name: string, opts: { json?: boolean }): Promise<void> {
  printToken(name, await audited('principal.rotate', name, `principal rotate ${name}`, () => rotatePrincipal(principalsFile(), name)), opts.json, 'new token for');
}
