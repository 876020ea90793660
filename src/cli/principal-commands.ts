// Implementations of `remux principal add|ls|rm|rotate`.
import { existsSync } from 'node:fs';
import { policiesFile, principalsFile } from '../config/paths.js';
import { loadPolicyFile } from '../policy/load.js';
import { ADMIN_SCOPE, addPrincipal, checkNewPrincipal, loadPrincipals, removePrincipal, rotatePrincipal } from '../config/principals.js';
import type { Scope } from '../core/types.js';
import { InventoryError, parseSelector } from '../hosts/inventory.js';
import type { AddPrincipalOptions } from './commands/principal.js';
import { printJson, printTable, UsageError, utcCell } from './output.js';

function list(value: string | undefined): string[] | undefined {
  return value === undefined ? undefined : value.split(',').map((v) => v.trim()).filter((v) => v !== '');
}

function scopeFrom(opts: AddPrincipalOptions): Scope {
  const scoped = ['hosts', 'users', 'createAs', 'readOnly', 'policy'].filter((k) => opts[k as keyof AddPrincipalOptions] !== undefined);
  if (opts.admin) {
    if (scoped.length > 0) throw new UsageError('an admin reaches everything: --admin takes no scope options', 'drop --admin to give a scope, or drop the scope options');
    return ADMIN_SCOPE;
  }
  if (opts.hosts === undefined) throw new UsageError('say which hosts it may use: --hosts SELECTOR (e.g. web1,web2, env=prod or all), or --admin');
  try {
    parseSelector(opts.hosts);
  } catch (err) {
    if (err instanceof InventoryError) throw new UsageError(`--hosts: ${err.message}`);
    throw err;
  }
  const users = list(opts.users) ?? [];
  const policies = (opts.policy ?? []).flatMap((p) => list(p) ?? []);
  checkPolicies(policies);
  return { admin: false, hosts: opts.hosts, users, createAs: list(opts.createAs) ?? users, attach: opts.readOnly ? 'read-only' : 'interactive', policies };
}

/** --policy names policies of the policies file (when there is one yet): a typo would fail every command of the principal. */
function checkPolicies(names: string[]): void {
  const file = policiesFile();
  if (names.length === 0 || !existsSync(file)) return;
  const known = loadPolicyFile(file);
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) throw new UsageError(`--policy: no policy named ${unknown.join(', ')} in ${file} (known: ${[...known.keys()].join(', ') || 'none'})`, 'remux policy list shows them; remux policy create NAME --template T adds one');
}

function printToken(name: string, token: string, json: boolean | undefined, what: string): void {
  if (json) return printJson({ name, token });
  process.stdout.write(`${what} ${name}; its token (shown only now, keep it safe):\n${token}\n`);
}

export function addPrincipalCommand(name: string, opts: AddPrincipalOptions): void {
  // The name first: what is wrong with it matters before what the scope lacks (checked again under the file's lock).
  checkNewPrincipal(loadPrincipals(principalsFile()), name);
  const token = addPrincipal(principalsFile(), name, scopeFrom(opts));
  printToken(name, token, opts.json, 'added principal');
}

export function listPrincipalsCommand(opts: { json?: boolean }): void {
  const { file, entries } = loadPrincipals(principalsFile());
  const rows = entries.map((e) => ({ name: e.name, created: e.created, ...e.scope }));
  if (opts.json) return printJson(rows);
  if (rows.length === 0) {
    process.stderr.write(`no principals in ${file}; add one with: remux principal add NAME --admin\n`);
    return;
  }
  const users = (u: readonly string[]): string => u.join(',') || '-';
  printTable(
    ['NAME', 'ADMIN', 'HOSTS', 'USERS', 'CREATE AS', 'ATTACH', 'POLICIES', 'CREATED (UTC)'],
    rows.map((r) => (r.admin ? [r.name, 'yes', 'all', '*', '*', 'interactive', 'any', utcCell(r.created)] : [r.name, 'no', r.hosts, users(r.users), users(r.createAs), r.attach, r.policies.join(',') || '(default)', utcCell(r.created)])),
  );
}

export function removePrincipalCommand(name: string): void {
  removePrincipal(principalsFile(), name);
  process.stdout.write(`removed principal ${name}\n`);
}

export function rotatePrincipalCommand(name: string, opts: { json?: boolean }): void {
  printToken(name, rotatePrincipal(principalsFile(), name), opts.json, 'new token for');
}
