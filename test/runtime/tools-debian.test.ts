// Apt, AptRepository and User for real, inside a throwaway Debian root (this machine's / under an
// overlay with a temporary upper layer, chrooted into: test/support/throwaway-root.ts), never on this
// machine's own system: a signed local apt repository added with its key, a package installed, upgraded
// and removed; an account, its authorized key and a sudoers drop-in validated by visudo. Second runs
// report changed: false. Plus policy denials of each, and the audit record of a call.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import { Apt, AptRepository, ArgumentError, connectProcess, DeniedError, RemoteError, User } from '../../src/runtime/index.js';
import type { ApprovalSubject, PerformIO } from '../../src/core/types.js';
import { aptRepo } from '../support/apt-repo.js';
import { runtimeContext } from '../support/runtime.js';
import { throwawayRoot } from '../support/throwaway-root.js';

const PROGRAMS = 'apt-get|apt-cache|dpkg-query|useradd|usermod|userdel|visudo|ln|mkdir';
const POLICIES = `policies:
  system:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: "${PROGRAMS}" }
      - { operation: write_file, resource: "/**" }
      - { operation: read_file, resource: "/**" }
      - { operation: write_stdout }
  readonly:
    sandbox: false
    capabilities:
      - { operation: read_file, resource: "/**" }
  guarded:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: "${PROGRAMS}" }
      - { operation: write_file, resource: "/etc/sudoers.d/**", effect: deny, reason: no sudo grants here }
      - { operation: write_file, resource: "/etc/shadow", effect: deny, reason: no account changes }
      - { operation: write_file, resource: "/**" }
      - { operation: read_file, resource: "/**" }
  asked:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: "${PROGRAMS}" }
      - { operation: write_file, resource: "/etc/sudoers.d/**", effect: ask, reason: a person grants sudo }
      - { operation: write_file, resource: "/**" }
      - { operation: read_file, resource: "/**" }
  noapt:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: "dpkg-query|apt-cache" }
      - { operation: write_file, resource: "/**" }
      - { operation: read_file, resource: "/**" }
`;

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBwN1mvkO2Ixq7sYy7Xl5S0eE7tWn7m6rJb5v7zD0Xlq bob@laptop';

/** Every path under dir, for "nothing changed" (entering the root itself drops its apt sources). */
function listing(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort();
}

async function enter(t: TestContext, policy: string, binds: string[] = [], approve?: PerformIO['approve']) {
  const root = throwawayRoot(t, binds);
  const { context, audit } = runtimeContext(t, POLICIES, policy);
  const host = await connectProcess('debian-root', { context, argvPrefix: root.argvPrefix, ...(approve ? { approve } : {}) });
  t.after(() => host.close());
  // The interpreter is up: the overlay is mounted and the root set up.
  return { root, host, audit, before: listing(root.upper) };
}

test('Apt, AptRepository and User in a throwaway Debian root', { timeout: 90_000 }, async (t) => {
  const repo = aptRepo();
  t.after(() => repo.remove());
  repo.add('remux-hello', '1.0', 'usr/share/remux-hello/hello.txt', 'hello 1\n');
  const { root, host, audit } = await enter(t, 'system', [repo.dir]);

  await t.test('AptRepository adds a DEB822 source and its key; Apt installs, upgrades and removes a package from it; second runs change nothing', async () => {
    const opts = { uris: `file:${repo.dir}`, suites: './', key: repo.key };
    const added = await host.call(AptRepository.present, 'remux-test', opts);
    assert.equal(added.changed, true);
    assert.match(added.diff, /^\+URIs: file:\/tmp\//m);
    const sources = readFileSync(root.changed('/etc/apt/sources.list.d/remux-test.sources'), 'utf8');
    assert.equal(sources, `Types: deb\nURIs: file:${repo.dir}\nSuites: ./\nSigned-By: /etc/apt/keyrings/remux-test.asc\n`);
    assert.equal(readFileSync(root.changed('/etc/apt/keyrings/remux-test.asc'), 'utf8'), repo.key);
    assert.deepEqual(await host.call(AptRepository.present, 'remux-test', opts), { changed: false, diff: '' });

    assert.equal((await host.call(Apt.update)).changed, true);
    const installed = await host.call(Apt.package, 'remux-hello', { state: 'present' });
    assert.deepEqual(installed, { changed: true, versions: { 'remux-hello': '1.0' } });
    assert.equal(readFileSync(root.changed('/usr/share/remux-hello/hello.txt'), 'utf8'), 'hello 1\n');
    assert.equal(existsSync('/usr/share/remux-hello'), false, 'the machine itself is untouched');
    assert.deepEqual(await host.call(Apt.package, 'remux-hello', { state: 'present' }), { changed: false, versions: { 'remux-hello': '1.0' } });
    assert.deepEqual(await host.call(Apt.update, { ttl: 3600 }), { changed: false, skipped: true });

    repo.add('remux-hello', '2.0', 'usr/share/remux-hello/hello.txt', 'hello 2\n');
    assert.equal((await host.call(Apt.update)).changed, true);
    assert.deepEqual(await host.call(Apt.package, ['remux-hello'], { state: 'latest' }), { changed: true, versions: { 'remux-hello': '2.0' } });
    assert.equal((await host.call(Apt.package, 'remux-hello', { state: 'latest' })).changed, false);
    assert.deepEqual(await host.call(Apt.package, 'remux-hello', { state: 'absent' }), { changed: true, versions: { 'remux-hello': null } });
    assert.equal((await host.call(Apt.package, 'remux-hello', { state: 'absent' })).changed, false);
    await assert.rejects(host.call(Apt.package, 'remux-nonexistent'), (e: Error) => e instanceof RemoteError && e.type === 'CommandError' && /Unable to locate package remux-nonexistent/.test(e.message));

    const removed = await host.call(AptRepository.absent, 'remux-test');
    assert.equal(removed.changed, true);
    assert.match(removed.diff, /^-Suites: \.\/$/m);
    assert.equal((await host.call(AptRepository.absent, 'remux-test')).changed, false);
  });

  await t.test('the audit records a package call: what it ran and wrote, resolved, and its arguments', async () => {
    const record = audit.list().find((a) => a.begin.command === 'Apt.package');
    assert.ok(record);
    assert.deepEqual(
      [record.begin.operation, record.begin.decision, record.begin.argv, record.begin.resource, record.end?.exitCode],
      ['execute_binary,write_file', 'allow', ['Apt.package', 'remux-hello', '--state', 'present'], '/usr/bin/apt-get /usr/bin/dpkg-query /', 0],
    );
    const key = audit.list().find((a) => a.begin.command === 'AptRepository.present');
    assert.ok(key?.begin.argv?.includes('<' + Buffer.byteLength(repo.key) + ' bytes>'), 'a key is recorded by its size only');
  });

  await t.test('AptRepository refuses values that would add fields to the stanza, before anything is sent', async () => {
    await assert.rejects(host.call(AptRepository.present, 'evil', { uris: 'file:/x\nTrusted: yes', suites: './' }), (e: Error) => e instanceof ArgumentError && /^AptRepository.present: URIs: .* is not one word/.test(e.message));
    await assert.rejects(host.call(AptRepository.present, '../../etc/passwd', { uris: 'file:/x', suites: './' }), /is not a repository name/);
    await assert.rejects(host.call(Apt.package, '--force-yes'), /is not a package name/);
    // A version pin would be reported as holding while another version stays installed: refused.
    await assert.rejects(host.call(Apt.package, ['remux-hello', 'coreutils=1.0-1'], { state: 'present' }), (e: Error) => e instanceof ArgumentError && /^Apt\.package: the package "coreutils=1\.0-1": a version \(=VERSION\) is not supported/.test(e.message));
    assert.equal(existsSync(root.changed('/etc/apt/sources.list.d/evil.sources')), false);
  });

  await t.test('User: an account, its authorized key (0700/0600, the user\'s) and a sudoers drop-in, idempotent', async () => {
    const made = await host.call(User.present, 'bob', { shell: '/bin/sh', groups: ['adm'] });
    assert.equal(made.changed, true);
    assert.deepEqual([made.home, made.shell, made.groups], ['/home/bob', '/bin/sh', ['adm']]);
    assert.match(readFileSync(root.changed('/etc/passwd'), 'utf8'), /^bob:x:\d+:\d+::\/home\/bob:\/bin\/sh$/m);
    assert.equal((await host.call(User.present, 'bob', { shell: '/bin/sh', groups: ['adm'] })).changed, false);
    assert.equal((await host.call(User.present, 'bob', { shell: '/bin/bash' })).changed, true);

    const key = await host.call(User.authorizedKey, 'bob', KEY);
    assert.equal(key.changed, true);
    assert.match(key.diff, /^\+ssh-ed25519 AAAA/m);
    const file = root.changed('/home/bob/.ssh/authorized_keys');
    assert.equal(readFileSync(file, 'utf8'), `${KEY}\n`);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(root.changed('/home/bob/.ssh')).mode & 0o777, 0o700);
    assert.equal(statSync(file).uid, made.uid);
    assert.deepEqual(await host.call(User.authorizedKey, 'bob', KEY.replace('bob@laptop', 'other comment')), { changed: false, diff: '' });
    assert.equal((await host.call(User.authorizedKey, 'bob', KEY, { state: 'absent' })).changed, true);
    assert.equal(readFileSync(file, 'utf8'), '');
    // eve points her ~/.ssh at root's: her key must not land in /root/.ssh/authorized_keys.
    await host.call(User.present, 'eve');
    assert.equal((await host.exec(['mkdir', '-p', '/root/.ssh'])).code, 0);
    assert.equal((await host.exec(['ln', '-s', '/root/.ssh', '/home/eve/.ssh'])).code, 0);
    await assert.rejects(host.call(User.authorizedKey, 'eve', KEY), (e: Error) => e instanceof RemoteError && e.type === 'PermissionError' && /\/home\/eve\/.ssh\/authorized_keys is a symlink to \/root\/.ssh\/authorized_keys: refused/.test(e.message));
    assert.equal(existsSync(root.changed('/root/.ssh/authorized_keys')), false);
    await assert.rejects(host.call(User.authorizedKey, 'nobody-here', KEY), (e: Error) => e instanceof ArgumentError && /there is no user nobody-here/.test(e.message));

    const rules = ['bob ALL=(root) NOPASSWD: /usr/bin/systemctl restart nginx'];
    const sudo = await host.call(User.sudoer, 'bob', { rules });
    assert.equal(sudo.changed, true);
    const drop = root.changed('/etc/sudoers.d/bob');
    assert.equal(readFileSync(drop, 'utf8'), `${rules[0]}\n`);
    assert.deepEqual([statSync(drop).mode & 0o777, statSync(drop).uid], [0o440, 0]);
    assert.deepEqual(await host.call(User.sudoer, 'bob', { rules }), { changed: false, diff: '' });
    // visudo refuses it: nothing is written, the drop-in in place stays as it was, no temporary file is left.
    await assert.rejects(host.call(User.sudoer, 'bob', { rules: ['bob ALL=(root) NOPASSWD /bin/sh'] }), (e: Error) => e instanceof RemoteError && e.type === 'ValueError' && /visudo refused/.test(e.message));
    await assert.rejects(host.call(User.sudoer, 'alice', { rules: ['alice ALL=(root NOPASSWD: ALL'] }), /visudo refused the sudoers rules for alice, nothing was written: .*syntax error/);
    assert.equal(readFileSync(drop, 'utf8'), `${rules[0]}\n`);
    assert.equal(existsSync(root.changed('/etc/sudoers.d/alice')), false);
    assert.deepEqual(readdirSync(root.changed('/etc/sudoers.d')).filter((f) => f.includes('remux')), []);
    await assert.rejects(host.call(User.sudoer, 'bob.conf', { rules }), /sudoers.d file name/);
    assert.equal((await host.call(User.sudoer, 'bob', { state: 'absent' })).changed, true);
    assert.equal(existsSync(drop), false);

    assert.equal((await host.call(User.absent, 'bob', { removeHome: true })).changed, true);
    assert.doesNotMatch(readFileSync(root.changed('/etc/passwd'), 'utf8'), /^bob:/m);
    assert.equal((await host.call(User.absent, 'bob')).changed, false);
  });
});

test('a read-only policy: every tool that changes something is denied, naming what the policy does not allow; nothing changes', async (t) => {
  const { host, root, audit, before } = await enter(t, 'readonly');
  await assert.rejects(host.call(Apt.package, 'remux-hello'), (e: Error) => e instanceof DeniedError && /execute_binary \/usr\/bin\/apt-get: no rule of policy readonly/.test(e.message));
  await assert.rejects(host.call(Apt.update), DeniedError);
  await assert.rejects(host.call(AptRepository.present, 'r', { uris: 'file:/x', suites: './' }), /write_file \/etc\/apt\/sources.list.d\/r.sources: no rule of policy readonly/);
  await assert.rejects(host.call(User.present, 'carol'), /execute_binary \/usr\/sbin\/useradd/);
  await assert.rejects(host.call(User.sudoer, 'carol', { rules: ['carol ALL=ALL'] }), DeniedError);
  assert.deepEqual(listing(root.upper), before, 'the root is unchanged');
  const denials = audit.list().map((a) => [a.begin.command, a.begin.decision, a.end?.refusal !== undefined]);
  assert.deepEqual(denials, ['Apt.package', 'Apt.update', 'AptRepository.present', 'User.present', 'User.sudoer'].map((m) => [m, 'deny', true]));
});

test('apt-get not allowed: Apt.package is denied though dpkg-query is; a deny rule inside the system refuses a write of the whole system', async (t) => {
  const noapt = await enter(t, 'noapt');
  await assert.rejects(noapt.host.call(Apt.package, 'remux-hello'), /execute_binary \/usr\/bin\/apt-get: no rule of policy noapt/);
  const guarded = await enter(t, 'guarded');
  await assert.rejects(guarded.host.call(Apt.package, 'remux-hello'), (e: Error) => e instanceof DeniedError && /write_file anywhere under \/, which includes \/etc\/sudoers.d\/\*\*: denied by guarded#1 .*no sudo grants here/.test(e.message));
  await assert.rejects(guarded.host.call(User.sudoer, 'carol', { rules: ['carol ALL=ALL'] }), /no sudo grants here/);
  await assert.rejects(guarded.host.call(User.present, 'carol'), /write_file \/etc\/shadow: denied by guarded#2/);
  // What the policy allows still works under it.
  assert.equal((await guarded.host.call(AptRepository.present, 'ok', { uris: 'file:/srv', suites: './' })).changed, true);
  assert.deepEqual(listing(noapt.root.upper), noapt.before);
});

test('an ask rule on what a tool writes goes to the approver, who sees the call and everything it does; refused, nothing is written', async (t) => {
  const asked: ApprovalSubject[] = [];
  let answer: 'allow' | 'deny' = 'deny';
  const { host, root, audit } = await enter(t, 'asked', [], async (subject) => {
    asked.push(subject);
    return answer;
  });
  const rules = ['root ALL=(ALL) ALL'];
  await assert.rejects(host.call(User.sudoer, 'ops', { rules }), (e: Error) => e instanceof DeniedError && /a person grants sudo; approval refused/.test(e.message));
  assert.equal(existsSync(root.changed('/etc/sudoers.d/ops')), false);
  assert.deepEqual(asked[0], {
    kind: 'exec',
    host: 'debian-root',
    command: 'User.sudoer ops --rules root ALL=(ALL) ALL (execute_binary visudo, write_file /etc/sudoers.d/ops (and read_file))',
  });
  answer = 'allow';
  assert.equal((await host.call(User.sudoer, 'ops', { rules })).changed, true);
  assert.deepEqual(audit.list().map((a) => [a.begin.decision, a.end?.exitCode]), [['ask', 77], ['ask', 0]]);
});
