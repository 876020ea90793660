// Scope: may this principal touch this host, tmux user, session, policy? Checked by perform() before
// anything else (ARCHITECTURE §1: 403, never a silent empty list). For principals that are not admin
// every field of the scope is an allowlist, and a host the scope does not name is refused in the same
// words whether or not it exists, so a scoped principal cannot probe the inventory. What the inventory
// lacks of its own hosts (all of them, or one its names cover) it is told, with what to do.
import type { AuditFilter } from '../audit/types.js';
import { createdOf, type Principals } from '../config/principals.js';
import { builtinLocalHost, InventoryError, listedHosts, parseSelector, select, selectorMatches, type HostEntry, type Inventory } from '../hosts/inventory.js';
import { isLocalHostName } from '../hosts/local.js';
import type { RecordingInfo } from '../sessions/recording.js';
import { ScopeError } from './errors.js';
import type { Action, Principal, Scope } from './types.js';

/**
 * What scope looks at in an action. Each action kind maps itself onto these facts in factsOf(); a
 * session action names its tmux user, whether it creates a session as that user, and whether its
 * attach takes input.
 */
export interface ScopeFacts {
  host: string;
  /** The policy a command runs or a file action is checked under. */
  policy?: string;
  tmuxUser?: string;
  createsSession?: boolean;
  /** Takes input or changes a session (attach that types, send-keys, kill): refused for read-only principals. */
  interactive?: boolean;
}

export type ScopeCheck = { ok: true } | { ok: false; reason: string };

/** The policy an exec action runs under: its own, else the principal's first allowed one, else the configured default. */
export function policyFor(principal: Principal, requested: string | undefined, defaultPolicy: string): string {
  return requested ?? principal.scope.policies[0] ?? defaultPolicy;
}

export function factsOf(principal: Principal, action: Action, defaultPolicy: string): ScopeFacts {
  switch (action.kind) {
    case 'exec':
    case 'file.read':
    case 'file.write':
    case 'file.edit':
    case 'file.list':
      return { host: action.host, policy: policyFor(principal, action.policy, defaultPolicy) };
    case 'probe':
      return { host: action.host };
    case 'session.list':
    case 'session.capture':
      return { host: action.host, ...(action.tmuxUser !== undefined ? { tmuxUser: action.tmuxUser } : {}) };
    case 'session.new':
      return { host: action.host, ...(action.tmuxUser !== undefined ? { tmuxUser: action.tmuxUser } : {}), createsSession: true, interactive: true, ...(action.command !== undefined ? { policy: policyFor(principal, action.policy, defaultPolicy) } : {}) };
    case 'session.attach':
      return { host: action.host, ...(action.tmuxUser !== undefined ? { tmuxUser: action.tmuxUser } : {}), interactive: !action.readOnly };
    case 'session.send':
    case 'session.kill':
      return { host: action.host, ...(action.tmuxUser !== undefined ? { tmuxUser: action.tmuxUser } : {}), interactive: true };
    case 'agent.list':
    case 'agent.logs':
      return { host: action.host };
    case 'agent.start':
    case 'agent.restart':
    case 'agent.kill':
    case 'agent.remove':
      // An agent types into its session and changes its workspace, a removal deletes what it left: no action for a principal that only watches.
      return { host: action.host, interactive: true };
  }
}

export function checkScope(
  principal: Principal,
  action: Action,
  defaultPolicy: string,
  hostEntry: (name: string) => HostEntry | undefined,
): ScopeCheck {
  return principal.scope.admin ? { ok: true } : checkFacts(principal, factsOf(principal, action, defaultPolicy), defaultPolicy, hostEntry);
}

/** The check itself, on an action's facts: the first thing out of scope, named. */
export function checkFacts(
  principal: Principal,
  facts: ScopeFacts,
  defaultPolicy: string,
  hostEntry: (name: string) => HostEntry | undefined,
): ScopeCheck {
  const { scope } = principal;
  if (scope.admin) return { ok: true };
  const refuse = (what: string): ScopeCheck => ({ ok: false, reason: `out of scope for ${principal.name}: ${what}` });

  const entry = hostEntry(facts.host);
  if (!entry && inScopeOnceAdded(scope, facts.host)) return { ok: false, reason: notInInventory(principal, facts.host) };
  if (!entry || !hostInScope(scope, entry)) return refuse(`host ${facts.host} is not among its hosts (${scope.hosts})`);
  if (facts.policy !== undefined) {
    const allowed = scope.policies.length > 0 ? scope.policies : [defaultPolicy];
    if (!allowed.includes(facts.policy)) return refuse(`policy ${facts.policy} is not allowed (allowed: ${allowed.join(', ')})`);
  }
  if (facts.tmuxUser !== undefined) {
    if (!listed(scope.users, facts.tmuxUser)) return refuse(`tmux user ${facts.tmuxUser} is not among its users (${scope.users.join(', ') || 'none'})`);
    if (facts.createsSession && !listed(scope.createAs, facts.tmuxUser)) {
      return refuse(`it may not create sessions as ${facts.tmuxUser} (create_as: ${scope.createAs.join(', ') || 'none'})`);
    }
  }
  if (facts.interactive && scope.attach === 'read-only') return refuse('it may only watch sessions (attach: read-only)');
  return { ok: true };
}

export function hostInScope(scope: Scope, entry: HostEntry): boolean {
  return scope.admin || selectorMatches(parseSelector(scope.hosts), entry);
}

/**
 * Whether a host `name` that the inventory lacks would be in the scope once added. Said only of scopes
 * that go by names (all, names, globs): under a label scope, "not in the inventory" for an absent name
 * against "not among its hosts" for one with other labels would tell which hosts exist outside it.
 */
function inScopeOnceAdded(scope: Scope, name: string): boolean {
  const selector = parseSelector(scope.hosts);
  return selector.kind !== 'labels' && !isLocalHostName(name) && selectorMatches(selector, { name, transport: 'local', labels: {}, builtin: false });
}

function notInInventory(principal: Principal, host: string): string {
  return `host ${host} is in principal ${principal.name}'s scope (${principal.scope.hosts}) but not in the inventory (hosts.yaml): check the name, or add the host (remux hosts add ${host} USER@ADDRESS)`;
}

/** A principal whose hosts selector matches no host at all: what is the case, and what to do. */
export function noHostsInScope(principal: Principal): string {
  const selector = parseSelector(principal.scope.hosts);
  // Under a label scope, a host added with the labels it asks for is in it.
  const labels = selector.kind === 'labels' ? selector.terms.flatMap((t) => (t.negated ? [] : [` --label ${t.key}=${t.value}`])).join('') : '';
  return (
    `principal ${principal.name}'s hosts (${principal.scope.hosts}) match no host in the inventory (hosts.yaml): ` +
    `add one (remux hosts add NAME USER@ADDRESS${labels}), or change its selector (remux principal set ${principal.name} --hosts SELECTOR)`
  );
}

/** The hosts a listing shows this principal: this machine first, then the inventory, those in its scope only. */
export function hostsInScope(scope: Scope, inventory: Inventory): HostEntry[] {
  return listedHosts(inventory).filter((h) => hostInScope(scope, h));
}

/** May the principal see and use this tmux user's sessions? */
export function tmuxUserInScope(scope: Scope, user: string): boolean {
  return scope.admin || listed(scope.users, user);
}

/**
 * Why `principal` may not see recording `r`, or null when it may (the console's API and the CLI's
 * `session recordings`/`play` alike). An admin sees every recording, anyone else only those of its own
 * attaches and of the sessions it created since it was created (a name used again is someone new), and
 * of those only the ones whose host and tmux user its scope still reaches.
 */
export function recordingOutOfScope(principal: Principal, r: RecordingInfo, principals: Principals, hostEntry: (name: string) => HostEntry | undefined): string | null {
  if (principal.scope.admin) return null;
  if (r.principal !== principal.name) return "is of another principal's attach or session";
  const created = createdOf(principals, principal.name);
  // A recording's start is kept to the second: one started in the second of the creation is the new one's.
  if (created && Date.parse(r.started) < Math.floor(Date.parse(created) / 1000) * 1000) return `was recorded before principal ${principal.name} was created (${created})`;
  // Looked up as the attach's scope check looks it up: the built-in hosts (localhost, agents) included.
  const host = hostEntry(r.host);
  if (host === undefined || !hostInScope(principal.scope, host)) return `is of host ${r.host}, outside its scope`;
  if (!tmuxUserInScope(principal.scope, r.user)) return `is of tmux user ${r.user}, outside its scope`;
  return null;
}

/**
 * The audit filter `principal` reads the trail with when it asks for `asked` (GET /api/audit and its
 * stream; `remux audit ls`, `--follow` and `export` with REMUX_TOKEN), or null when it may not: a
 * non-admin naming another principal. An admin gets what it asks; anyone else only its own actions, made
 * since it was created (a name used again is someone new).
 */
export function auditFilterFor(principal: Principal, asked: Omit<AuditFilter, 'since'>, principals: Principals): AuditFilter | null {
  if (principal.scope.admin) return asked;
  if (asked.principal !== undefined && asked.principal !== principal.name) return null;
  const created = createdOf(principals, principal.name);
  return { ...asked, principal: principal.name, ...(created ? { since: created } : {}) };
}

/** Why auditFilterFor gave null, in the API's 403 and the CLI's refusal (exit 77) alike. */
export function auditOutOfScope(principal: Principal): string {
  return `out of scope for ${principal.name}: only admins see other principals' actions`;
}

function listed(allowed: readonly string[], user: string): boolean {
  return allowed.includes('*') || allowed.includes(user);
}

/**
 * The hosts `selector` picks for a principal: among the hosts in its scope only, so that a label
 * selector means "of the hosts I can see". Bad syntax throws InventoryError (usage); a selector that
 * picks nothing in a scope throws ScopeError (403, exit 77) naming the scope, never the other hosts.
 */
export function selectInScope(principal: Principal, inventory: Inventory, selector: string): HostEntry[] {
  if (principal.scope.admin) return select(inventory, selector);
  const parsed = parseSelector(selector);
  const visible: Inventory = { ...inventory, hosts: inventory.hosts.filter((h) => hostInScope(principal.scope, h)) };
  let picked: HostEntry[];
  try {
    picked = select(visible, selector).filter((h) => hostInScope(principal.scope, h));
  } catch (err) {
    // Its message would list the visible hosts; the scope refusal below says enough.
    if (!(err instanceof InventoryError)) throw err;
    picked = [];
  }
  // Each name or glob of a list must pick one of its hosts, as each must pick a host for an admin: `web1,db1`
  // never runs on web1 alone, whether db1 is out of scope or the local host (which select() always gives).
  const picks = (t: { term: string; glob: RegExp | null }): boolean =>
    isLocalHostName(t.term) ? hostInScope(principal.scope, builtinLocalHost(t.term)) : visible.hosts.some((h) => (t.glob ? t.glob.test(h.name) : h.name === t.term));
  const unpicked = parsed.kind === 'names' ? parsed.terms.find((t) => !picks(t)) : undefined;
  if (picked.length > 0 && unpicked === undefined) return picked;
  // Why, in the words that fit: a host it names is missing, it has no host at all, or the selector misses its hosts.
  const missing = parsed.kind === 'names' ? parsed.terms.find((t) => !t.glob && !inventory.hosts.some((h) => h.name === t.term) && inScopeOnceAdded(principal.scope, t.term)) : undefined;
  if (missing) throw new ScopeError(notInInventory(principal, missing.term));
  if (hostsInScope(principal.scope, inventory).length === 0) throw new ScopeError(noHostsInScope(principal));
  // The term that picks none of them: of `web1,db1`, db1 (the list as a whole picks web1).
  throw new ScopeError(`out of scope for ${principal.name}: "${unpicked?.term ?? selector}" picks none of its hosts (${principal.scope.hosts})`);
}
