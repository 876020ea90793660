// Scope checks on their own: hosts by selector (without probing the inventory), what a refusal says
// when the inventory lacks the hosts, policies, and the tmux facts session actions will carry.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMIN_SCOPE } from '../../src/config/principals.js';
import { checkFacts, checkScope, selectInScope } from '../../src/core/scope.js';
import type { Principal, Scope } from '../../src/core/types.js';
import type { HostEntry } from '../../src/hosts/inventory.js';

const HOSTS: HostEntry[] = [
  { name: 'web1', transport: 'local', labels: { env: 'prod', role: 'web' }, builtin: false },
  { name: 'web2', transport: 'local', labels: { env: 'dev', role: 'web' }, builtin: false },
  { name: 'db1', transport: 'local', labels: { env: 'prod', role: 'db' }, builtin: false },
  { name: 'localhost', transport: 'local', labels: {}, builtin: true },
];
const entry = (name: string): HostEntry | undefined => HOSTS.find((h) => h.name === name);

function principal(scope: Partial<Scope>): Principal {
  return { name: 'p', via: 'token', scope: { admin: false, hosts: 'all', users: [], createAs: [], attach: 'interactive', policies: [], ...scope } };
}

const hostsIn = (hosts: string): string[] =>
  HOSTS.filter((h) => checkScope(principal({ hosts }), { kind: 'probe', host: h.name }, 'read_only', entry).ok).map((h) => h.name);

test('hosts: names, globs, label terms; all is every inventory host but not the local one, which is named', () => {
  assert.deepEqual(hostsIn('all'), ['web1', 'web2', 'db1']);
  assert.deepEqual(hostsIn('web*'), ['web1', 'web2']);
  assert.deepEqual(hostsIn('env=prod'), ['web1', 'db1']);
  assert.deepEqual(hostsIn('env=prod,role!=db'), ['web1']);
  assert.deepEqual(hostsIn('db1,nothing-by-this-name'), ['db1'], 'a term matching nothing does not void the others');
  assert.deepEqual(hostsIn('localhost'), ['localhost']);
  assert.deepEqual(hostsIn('local*'), [], 'the local host only by its exact name');
});

test('an unknown host is refused in the same words as one out of scope', () => {
  const p = principal({ hosts: 'web1' });
  const unknown = checkScope(p, { kind: 'probe', host: 'ghost' }, 'read_only', entry);
  const outside = checkScope(p, { kind: 'probe', host: 'db1' }, 'read_only', entry);
  assert.deepEqual([unknown, outside], [
    { ok: false, reason: 'out of scope for p: host ghost is not among its hosts (web1)' },
    { ok: false, reason: 'out of scope for p: host db1 is not among its hosts (web1)' },
  ]);
});

test('a host its scope names but the inventory lacks is said to be missing; under a label scope it reads as any host outside', () => {
  const refusal = (hosts: string, host: string): string => (checkScope(principal({ hosts }), { kind: 'probe', host }, 'read_only', entry) as { reason: string }).reason;
  assert.equal(refusal('web*', 'web9'), "host web9 is in principal p's scope (web*) but not in the inventory (hosts.yaml): check the name, or add the host (remux hosts add web9 USER@ADDRESS)");
  assert.match(refusal('all', 'ghost'), /^host ghost is in principal p's scope \(all\) but not in the inventory/);
  // env!=prod covers a new host without labels: saying so of ghost, but not of db1 (env=prod), would tell that db1 exists.
  assert.deepEqual([refusal('env!=prod', 'ghost'), refusal('env!=prod', 'db1')], ['out of scope for p: host ghost is not among its hosts (env!=prod)', 'out of scope for p: host db1 is not among its hosts (env!=prod)']);
});

test('a selector that picks none of its hosts: a host it names is missing, its hosts match no host at all, or the selector misses them', () => {
  const inventory = { file: '/etc/remux/hosts.yaml', hosts: HOSTS.filter((h) => !h.builtin) };
  const refusal = (hosts: string, selector: string): string => {
    try {
      selectInScope(principal({ hosts }), inventory, selector);
    } catch (err) {
      assert.equal((err as Error).name, 'ScopeError');
      return (err as Error).message;
    }
    return assert.fail(`"${selector}" picked hosts`);
  };
  assert.equal(refusal('web*', 'web1,web9'), "host web9 is in principal p's scope (web*) but not in the inventory (hosts.yaml): check the name, or add the host (remux hosts add web9 USER@ADDRESS)");
  const none = "principal p's hosts (app*) match no host in the inventory (hosts.yaml): add one (remux hosts add NAME USER@ADDRESS), or change its selector (remux principal set p --hosts SELECTOR)";
  assert.deepEqual([refusal('app*', 'all'), refusal('app*', 'web1')], [none, none]);
  // A label scope: the labels to add the host with (not those it must lack).
  assert.equal(
    refusal('env=staging,role!=db', 'all'),
    "principal p's hosts (env=staging,role!=db) match no host in the inventory (hosts.yaml): add one (remux hosts add NAME USER@ADDRESS --label env=staging), or change its selector (remux principal set p --hosts SELECTOR)",
  );
  // Hosts outside its scope, there or not, read alike.
  assert.deepEqual([refusal('web*', 'db1'), refusal('web*', 'ghost')], ['out of scope for p: "db1" picks none of its hosts (web*)', 'out of scope for p: "ghost" picks none of its hosts (web*)']);
  assert.equal(refusal('env=prod', 'ghost'), 'out of scope for p: "ghost" picks none of its hosts (env=prod)');
  // A list with one term outside: refused whole, naming that term (the list as a whole picks web1), as an
  // admin's list with an unknown name is; the local host outside the scope too, never dropped quietly.
  assert.equal(refusal('web1', 'web1,db1'), 'out of scope for p: "db1" picks none of its hosts (web1)');
  assert.equal(refusal('web1', 'web1,db*'), 'out of scope for p: "db*" picks none of its hosts (web1)');
  assert.equal(refusal('web1', 'web1,localhost'), 'out of scope for p: "localhost" picks none of its hosts (web1)');
  assert.deepEqual(selectInScope(principal({ hosts: 'web1,localhost' }), inventory, 'web1,localhost').map((h) => h.name), ['web1', 'localhost']);
  assert.deepEqual(selectInScope(principal({ hosts: 'web*' }), inventory, 'web*,web1').map((h) => h.name), ['web1', 'web2']);
});

test('policies: the allowed list, else only the configured default; admins anything', () => {
  const exec = (policy?: string) => ({ kind: 'exec' as const, host: 'web1', command: 'true', ...(policy ? { policy } : {}) });
  assert.equal(checkScope(principal({}), exec(), 'read_only', entry).ok, true);
  assert.equal(checkScope(principal({}), exec('admin'), 'read_only', entry).ok, false);
  assert.equal(checkScope(principal({ policies: ['ops', 'logs'] }), exec(), 'read_only', entry).ok, true, 'its first policy is its default');
  assert.equal(checkScope(principal({ policies: ['ops', 'logs'] }), exec('read_only'), 'read_only', entry).ok, false);
  assert.equal(checkScope({ ...principal({}), scope: ADMIN_SCOPE }, exec('anything'), 'read_only', entry).ok, true);
});

test('tmux users, creating as a user, read-only attach', () => {
  const p = principal({ users: ['deploy', 'www'], createAs: ['deploy'], attach: 'read-only' });
  const check = (facts: { tmuxUser: string; createsSession?: boolean; interactive?: boolean }) => checkFacts(p, { host: 'web1', ...facts }, 'read_only', entry);
  assert.deepEqual(check({ tmuxUser: 'www' }), { ok: true });
  assert.match((check({ tmuxUser: 'root' }) as { reason: string }).reason, /tmux user root is not among its users \(deploy, www\)/);
  assert.deepEqual(check({ tmuxUser: 'deploy', createsSession: true }), { ok: true });
  assert.match((check({ tmuxUser: 'www', createsSession: true }) as { reason: string }).reason, /may not create sessions as www/);
  assert.match((check({ tmuxUser: 'www', interactive: true }) as { reason: string }).reason, /it may only watch sessions \(attach: read-only\)/);
  assert.deepEqual(checkFacts(principal({ users: ['*'], createAs: ['*'] }), { host: 'web1', tmuxUser: 'anyone', createsSession: true, interactive: true }, 'read_only', entry), { ok: true });
});
