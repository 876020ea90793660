// Service, Pacman and PacmanRepository, Logger and Quit, and `remux rpc` with a tool's --options.
// This machine runs no systemd and is no Arch system: Service runs a fake systemctl, Pacman a fake
// pacman and PacmanRepository's keys a fake pacman-key (test/support/fake-programs.ts) placed first on the runtime's PATH, inside a throwaway root;
// they record their argv, so what a second run did (nothing but queries) shows. PacmanRepository edits
// the root's real /etc/pacman.conf.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { DEFAULT_SECURE_PATH } from '../../src/config/config.js';
import { ADMIN_SCOPE } from '../../src/config/principals.js';
import { ArgumentError, connectProcess, DeniedError, FileSystem, Logger, Pacman, PacmanRepository, ProtocolError, Quit, Service, type LogRecord } from '../../src/runtime/index.js';
import { remux, tempHome } from '../support/cli.js';
import { fakePacman, fakePacmanKey, fakeSystemctl } from '../support/fake-programs.js';
import { runtimeContext } from '../support/runtime.js';
import { throwawayRoot } from '../support/throwaway-root.js';

const POLICIES = `policies:
  system:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: "systemctl|pacman|pacman-key|sleep" }
      - { operation: write_file, resource: "/**" }
      - { operation: read_file, resource: "/**" }
      - { operation: write_stdout }
  nosystemctl:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: "pacman" }
      - { operation: write_file, resource: "/**" }
      - { operation: read_file, resource: "/**" }
  noconf:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: "pacman" }
      - { operation: write_file, resource: "/etc/pacman.conf", effect: deny, reason: the repositories are fixed }
      - { operation: write_file, resource: "/**" }
      - { operation: read_file, resource: "/**" }
  nokeyring:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: "pacman|pacman-key" }
      - { operation: write_file, resource: "/etc/pacman.d/gnupg/**", effect: deny, reason: the keyring is managed elsewhere }
      - { operation: write_file, resource: "/**" }
      - { operation: read_file, resource: "/**" }
  boxed:
    capabilities:
      - { operation: execute_binary, resource: "systemctl" }
`;

const PACMAN_CONF = `[options]
HoldPkg = pacman glibc

#[core-testing]
#Include = /etc/pacman.d/mirrorlist

[core]
Include = /etc/pacman.d/mirrorlist

#[extra-testing]
#Include = /etc/pacman.d/mirrorlist
`;

async function enter(t: TestContext, policy: string, onLog?: (r: LogRecord) => void, python?: string) {
  const root = throwawayRoot(t);
  root.place('/usr/local/sbin/systemctl', fakeSystemctl('/var/lib/fake-systemd'), 0o755);
  root.place('/usr/local/sbin/pacman', fakePacman('/var/lib/fake-pacman'), 0o755);
  root.place('/usr/local/sbin/pacman-key', fakePacmanKey('/var/lib/fake-pacman-key'), 0o755);
  root.place('/etc/pacman.conf', PACMAN_CONF);
  const { context, audit } = runtimeContext(t, POLICIES, policy);
  const host = await connectProcess('root', { context, argvPrefix: root.argvPrefix, ...(onLog ? { onLog } : {}), ...(python ? { python } : {}) });
  t.after(() => host.close());
  const log = (state: string): string[] => {
    const file = root.changed(`/var/lib/${state}/log`);
    return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : [];
  };
  return { root, host, audit, log };
}

test('Service: each verb acts only when the unit is not already so; converge does what differs; second runs change nothing', async (t) => {
  const { host, log } = await enter(t, 'system');
  assert.deepEqual(await host.call(Service.start, 'nginx'), { changed: true, active: true, enabled: false });
  assert.deepEqual(await host.call(Service.start, 'nginx'), { changed: false, active: true, enabled: false });
  assert.deepEqual(await host.call(Service.converge, 'nginx', { started: true, enabled: true }), { changed: true, active: true, enabled: true });
  assert.deepEqual(await host.call(Service.converge, 'nginx', { started: true, enabled: true }), { changed: false, active: true, enabled: true });
  assert.equal((await host.call(Service.restart, 'nginx')).changed, true, 'restart always acts');
  assert.equal((await host.call(Service.reload, 'nginx')).changed, true);
  assert.deepEqual(await host.call(Service.stop, 'nginx'), { changed: true, active: false, enabled: true });
  assert.equal((await host.call(Service.stop, 'nginx')).changed, false);
  assert.deepEqual(await host.call(Service.converge, 'nginx', { enabled: false }), { changed: true, active: false, enabled: false });
  assert.equal((await host.call(Service.disable, 'nginx')).changed, false);
  assert.equal((await host.call(Service.enable, 'getty@tty1.service')).changed, true);
  const actions = log('fake-systemd').filter((l) => !l.startsWith('is-'));
  assert.deepEqual(actions, ['start -- nginx', 'enable -- nginx', 'restart -- nginx', 'reload -- nginx', 'stop -- nginx', 'disable -- nginx', 'enable -- getty@tty1.service']);
});

test('Service: denied without systemctl in the policy, refused under a sandboxing policy and for a unit that is an option; nothing runs', async (t) => {
  const { host, log, audit } = await enter(t, 'nosystemctl');
  await assert.rejects(host.call(Service.start, 'nginx'), (e: Error) => e instanceof DeniedError && /execute_binary \/usr\/local\/sbin\/systemctl: no rule of policy nosystemctl/.test(e.message));
  await assert.rejects(host.call(Service.start, '--root=/tmp'), (e: Error) => e instanceof ArgumentError && /the unit name: "--root=\/tmp" is not a systemd unit name/.test(e.message));
  assert.deepEqual(log('fake-systemd'), []);
  const [denied, rejected] = audit.list();
  assert.deepEqual([denied?.begin.operation, denied?.begin.command, denied?.begin.argv, denied?.begin.decision], ['execute_binary', 'Service.start', ['Service.start', 'nginx'], 'deny']);
  assert.equal(rejected?.end?.exitCode, 2);
  const boxed = await enter(t, 'boxed');
  await assert.rejects(boxed.host.call(Service.start, 'nginx'), /^DeniedError: policy boxed runs commands in the OS sandbox, which a runtime on a process's own pipes cannot provide/);
  assert.deepEqual(boxed.log('fake-systemd'), []);
});

test('Pacman through a fake pacman: present, latest, absent and update, each idempotent; denied without pacman', async (t) => {
  const { host, log } = await enter(t, 'system');
  assert.deepEqual(await host.call(Pacman.package, ['nginx', 'curl']), { changed: true, versions: { nginx: '1.0-1', curl: '1.0-1' } });
  assert.equal((await host.call(Pacman.package, 'nginx')).changed, false);
  // Through the runtime: the root's files change only from inside it while it is mounted.
  await host.call(FileSystem.writeText, '/var/lib/fake-pacman/nginx.new', '1.1-1\n');
  assert.deepEqual(await host.call(Pacman.package, 'nginx', { state: 'latest' }), { changed: true, versions: { nginx: '1.1-1' } });
  assert.equal((await host.call(Pacman.package, 'nginx', { state: 'latest' })).changed, false);
  assert.deepEqual(await host.call(Pacman.package, 'curl', { state: 'absent' }), { changed: true, versions: { curl: null } });
  assert.equal((await host.call(Pacman.package, 'curl', { state: 'absent' })).changed, false);
  await host.call(FileSystem.writeText, '/var/lib/fake-pacman/.db-stale', '');
  assert.deepEqual(await host.call(Pacman.update), { changed: true });
  assert.deepEqual(await host.call(Pacman.update), { changed: false });
  const actions = log('fake-pacman').filter((l) => !l.startsWith('-Q'));
  assert.deepEqual(actions, ['--noconfirm --noprogressbar -S --needed -- nginx curl', '--noconfirm --noprogressbar -S -- nginx', '--noconfirm --noprogressbar -R -- curl', '--noconfirm --noprogressbar -Sy', '--noconfirm --noprogressbar -Sy']);
  await assert.rejects(host.call(Pacman.package, '-Syu'), /is not a package name/);
  const boxed = await enter(t, 'boxed');
  await assert.rejects(boxed.host.call(Pacman.package, 'nginx'), DeniedError);
});

test('PacmanRepository: a section of the real pacman.conf added, changed and removed with diffs, comments kept; denied by a rule on the file', async (t) => {
  const { host, root } = await enter(t, 'system');
  const conf = root.changed('/etc/pacman.conf');
  const opts = { servers: 'https://repo.example/$arch', sigLevel: 'Required DatabaseOptional' };
  const added = await host.call(PacmanRepository.present, 'custom', opts);
  assert.equal(added.changed, true);
  assert.match(added.diff, /^\+\[custom\]\n\+SigLevel = Required DatabaseOptional\n\+Server = https:\/\/repo.example\/\$arch$/m);
  assert.equal(readFileSync(conf, 'utf8'), `${PACMAN_CONF}\n[custom]\nSigLevel = Required DatabaseOptional\nServer = https://repo.example/$arch\n`);
  assert.deepEqual(await host.call(PacmanRepository.present, 'custom', opts), { changed: false, diff: '' });
  const moved = await host.call(PacmanRepository.present, 'core', { include: '/etc/pacman.d/other-mirrorlist' });
  assert.match(moved.diff, /^-Include = \/etc\/pacman.d\/mirrorlist\n\+Include = \/etc\/pacman.d\/other-mirrorlist$/m);
  assert.match(readFileSync(conf, 'utf8'), /\[core\]\nInclude = \/etc\/pacman.d\/other-mirrorlist\n\n#\[extra-testing\]\n/, 'the commented-out section after it stays');
  assert.equal((await host.call(PacmanRepository.absent, 'custom')).changed, true);
  assert.equal((await host.call(PacmanRepository.absent, 'custom')).changed, false);
  assert.doesNotMatch(readFileSync(conf, 'utf8'), /custom/);
  await assert.rejects(host.call(PacmanRepository.present, 'x', { servers: 'https://a\n[options]\nXferCommand = /bin/evil' }), /a single line without control characters/);
  await assert.rejects(host.call(PacmanRepository.present, 'options', { servers: 'https://a' }), /pacman's own section/);
  const noconf = await enter(t, 'noconf');
  await assert.rejects(noconf.host.call(PacmanRepository.present, 'custom', opts), /write_file \/etc\/pacman.conf: denied by noconf#1.*the repositories are fixed/);
  assert.equal(readFileSync(noconf.root.changed('/etc/pacman.conf'), 'utf8'), PACMAN_CONF);
});

const KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGRlbXV4IGtleQ==\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n';
const FINGERPRINT = '0123456789ABCDEF0123456789ABCDEF01234567';

test('PacmanRepository with a key: added with pacman-key and locally signed, once, before the section is written; declared for the policy', async (t) => {
  const { host, root, log, audit } = await enter(t, 'system');
  // The fingerprint as gpg prints it (groups, lower case) is the same key.
  const opts = { servers: 'https://repo.example/$arch', key: KEY, keyFingerprint: FINGERPRINT.toLowerCase().replace(/(.{4})/g, '$1 ').trim() };
  const added = await host.call(PacmanRepository.present, 'custom', opts);
  assert.equal(added.changed, true);
  assert.deepEqual(log('fake-pacman-key'), [`--list-keys ${FINGERPRINT}`, '--add', `--lsign-key ${FINGERPRINT}`]);
  assert.equal(readFileSync(root.changed('/var/lib/fake-pacman-key/added.asc'), 'utf8'), KEY, 'the key went to --add on its stdin');
  assert.match(readFileSync(root.changed('/etc/pacman.conf'), 'utf8'), /\[custom\]\nServer = https:\/\/repo.example\/\$arch\n$/);
  assert.deepEqual(await host.call(PacmanRepository.present, 'custom', opts), { changed: false, diff: '' });
  assert.deepEqual(log('fake-pacman-key').slice(3), [`--list-keys ${FINGERPRINT}`], 'a second run only asks');
  // A new key for a section already in place: changed, with no diff; from a local file.
  const dir = mkdtempSync(join(tmpdir(), 'remux-key-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'repo.asc'), KEY);
  const other = '89ABCDEF0123456789ABCDEF0123456789ABCDEF';
  assert.deepEqual(await host.call(PacmanRepository.present, 'custom', { ...opts, key: { file: join(dir, 'repo.asc') }, keyFingerprint: other }), { changed: true, diff: '' });
  assert.deepEqual(log('fake-pacman-key').slice(4), [`--list-keys ${other}`, '--add', `--lsign-key ${other}`]);
  const record = audit.list().find((a) => a.begin.command === 'PacmanRepository.present');
  assert.ok(record?.begin.argv?.includes(`<${Buffer.byteLength(KEY)} bytes>`), 'a key is recorded by its size only');

  // Bad keys are refused before anything runs.
  const bad: Array<[Parameters<typeof PacmanRepository.present.operations>[0][1], RegExp]> = [
    [{ servers: 'https://a', key: 'mQINBGRl' }, /the key must be ASCII-armored/],
    [{ servers: 'https://a', key: KEY }, /a key needs its keyFingerprint/],
    [{ servers: 'https://a', key: KEY, keyFingerprint: '--lsign-key' }, /keyFingerprint: "--lsign-key" is not a key fingerprint \(40 hex digits\)/],
    [{ servers: 'https://a', keyFingerprint: FINGERPRINT }, /keyFingerprint names the key given as key: give both/],
    [{ servers: 'https://a', key: { file: join(dir, 'missing.asc') }, keyFingerprint: FINGERPRINT }, /key: cannot read .*missing\.asc/],
  ];
  for (const [o, message] of bad) await assert.rejects(host.call(PacmanRepository.present, 'x', o), (e: Error) => e instanceof ArgumentError && message.test(e.message));
  assert.equal(log('fake-pacman-key').length, 7);

  // Policies: pacman-key is a program to allow, the keyring a tree to write; refused, nothing runs or changes.
  for (const [policy, message] of [
    ['noconf', /execute_binary \/usr\/local\/sbin\/pacman-key: no rule of policy noconf/],
    ['nokeyring', /write_file \/etc\/pacman.d\/gnupg: denied by nokeyring#1.*the keyring is managed elsewhere/],
  ] as const) {
    const refused = await enter(t, policy);
    await assert.rejects(refused.host.call(PacmanRepository.present, 'custom', opts), (e: Error) => e instanceof DeniedError && message.test(e.message));
    assert.deepEqual(refused.log('fake-pacman-key'), []);
    assert.equal(readFileSync(refused.root.changed('/etc/pacman.conf'), 'utf8'), PACMAN_CONF);
  }
});

test('Logger: a record logged on the host arrives through onLog; setLevel filters on the host; audited as touching nothing', async (t) => {
  const logs: LogRecord[] = [];
  const { host, audit } = await enter(t, 'system', (r) => logs.push(r));
  assert.equal(await host.call(Logger.log, 'warning', 'deploying', 'deploy'), null);
  assert.equal(await host.call(Logger.setLevel, 'error'), 'ERROR');
  await host.call(Logger.log, 'warning', 'not sent');
  await host.call(Logger.log, 'error', 'sent');
  assert.deepEqual(logs.map((r) => [r.level, r.name, r.msg]), [['WARNING', 'deploy', 'deploying'], ['ERROR', 'remux', 'sent']]);
  const first = audit.list()[0];
  assert.deepEqual([first?.begin.operation, first?.begin.command, first?.begin.decision, first?.end?.exitCode], ['runtime.call', 'Logger.log', 'allow', 0]);
  await assert.rejects(host.call(Logger.setLevel, 'loud' as never), /level must be one of debug, info, warning, error, critical/);
});

test('the tools run on Python 3.8, the stated floor', async (t) => {
  const python = '/root/.pyenv/versions/3.8.18/bin/python3';
  if (!existsSync(python)) return t.skip(`${python} is not installed`);
  const { host } = await enter(t, 'system', undefined, python);
  assert.match(host.hello.py, /^3\.8\./);
  assert.equal((await host.call(Service.converge, 'nginx', { started: true, enabled: true })).changed, true);
  assert.equal((await host.call(PacmanRepository.present, 'custom', { servers: 'https://repo.example' })).changed, true);
  assert.deepEqual(await host.call(PacmanRepository.present, 'custom', { servers: 'https://repo.example' }), { changed: false, diff: '' });
  assert.equal((await host.call(Pacman.package, 'nginx')).changed, true);
});

test('Logger and Quit touch nothing, yet a principal whose scope does not reach the host is refused them', async (t) => {
  const root = throwawayRoot(t);
  const { context, audit } = runtimeContext(t, POLICIES, 'system');
  const scoped = { ...context, principal: { name: 'bot', via: 'token' as const, scope: { ...ADMIN_SCOPE, admin: false, hosts: 'web*', policies: [] } } };
  const host = await connectProcess('root', { context: scoped, argvPrefix: root.argvPrefix });
  t.after(() => host.close());
  await assert.rejects(host.call(Logger.log, 'info', 'x'), (e: Error) => e instanceof DeniedError && /out of scope for bot: host root/.test(e.message));
  await assert.rejects(host.call(Quit.now), DeniedError);
  assert.deepEqual(audit.list().map((a) => [a.begin.principal, a.begin.command, a.begin.decision]), [['bot', 'Logger.log', 'deny'], ['bot', 'Quit.now', 'deny']]);
});

/** Neither gone nor a zombie (a killed child of an interpreter that exited waits for PID 1 to reap it). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The pid of the process whose argv is exactly `argv`, once it runs. */
async function pidOf(argv: string[]): Promise<number> {
  const want = `${argv.join('\0')}\0`;
  for (let i = 0; i < 100; i++) {
    for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
      try {
        if (readFileSync(`/proc/${entry}/cmdline`, 'utf8') === want) return Number(entry);
      } catch {
        // gone meanwhile
      }
    }
    await sleep(30);
  }
  throw new Error(`no process ${argv.join(' ')}`);
}

test('Quit: the interpreter exits once the result is sent, killing what still runs there; later calls fail at once', async (t) => {
  const { host } = await enter(t, 'system');
  const inFlight = host.exec(['sleep', '63.5']);
  const sleeper = await pidOf(['sleep', '63.5']);
  const { pid } = await host.call(Quit.now);
  assert.ok(pid > 0);
  await assert.rejects(inFlight, ProtocolError);
  await assert.rejects(host.call(Logger.log, 'info', 'x'), ProtocolError);
  for (let i = 0; i < 50 && running(sleeper); i++) await sleep(30);
  assert.equal(running(sleeper), false, 'the running sleep was killed');
  assert.equal(running(pid), false, 'the interpreter is gone');
});

test("remux rpc: a tool's arguments and --options from the command line, its result as JSON; usage errors and denials exit 2 and 77", async (t) => {
  const h = tempHome();
  t.after(() => h.remove());
  const fake = mkdtempSync(join(tmpdir(), 'remux-fake-'));
  t.after(() => rmSync(fake, { recursive: true, force: true }));
  mkdirSync(join(fake, 'bin'));
  writeFileSync(join(fake, 'bin/systemctl'), fakeSystemctl(join(fake, 'state')));
  chmodSync(join(fake, 'bin/systemctl'), 0o755);
  writeFileSync(join(h.home, 'policies.yaml'), POLICIES);
  writeFileSync(join(h.home, 'config.yaml'), `default_policy: system\nexec:\n  secure_path: ${join(fake, 'bin')}:${DEFAULT_SECURE_PATH}\n`);
  const rpc = (...args: string[]) => remux(['rpc', 'localhost', ...args], { env: h.env, via: 'node' });

  const first = await rpc('Service.converge', 'nginx', '--started', '--enabled', 'true', '--json');
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(JSON.parse(first.stdout), { host: 'localhost', ok: true, value: { changed: true, active: true, enabled: true } });
  const again = await rpc('Service.converge', 'nginx', '--started=true', '--enabled=true');
  assert.deepEqual([again.code, again.stdout], [0, '{"changed":false,"active":true,"enabled":true}\n']);

  const bad = await rpc('Service.converge', 'nginx', '--running', 'true');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Service.converge has no option --running \(its options: --started, --enabled\)/);
  const unit = await rpc('Service.start', '../nginx');
  assert.deepEqual([unit.code, /Service.start: the unit name: "..\/nginx" is not a systemd unit name/.test(unit.stderr)], [2, true]);
  // FileSystem's methods take one path: an option or a word beyond it is named.
  const bogus = await rpc('FileSystem.readText', '/etc/hostname', '--bogus', '1');
  assert.deepEqual([bogus.code, bogus.stderr], [2, 'remux: FileSystem.readText has no option --bogus (it takes none)\n']);
  const extra = await rpc('FileSystem.stat', '/etc/hostname', '/etc/passwd');
  assert.deepEqual([extra.code, /FileSystem.stat takes 1 argument \(PATH\); left over: \/etc\/passwd/.test(extra.stderr)], [2, true]);
  const missing = await rpc('Service.start');
  assert.deepEqual([missing.code, /Service.start needs its name/.test(missing.stderr)], [2, true]);
  const denied = await rpc('Service.stop', 'nginx', '-p', 'nosystemctl');
  assert.equal(denied.code, 77);
  assert.match(denied.stderr, /execute_binary .*systemctl: no rule of policy nosystemctl/);
  // The issue's own example, under a policy without apt-get: parsed, checked, refused; nothing runs here.
  const apt = await rpc('Apt.package', 'nginx', '--state', 'present', '-p', 'nosystemctl');
  assert.equal(apt.code, 77);
  assert.match(apt.stderr, /execute_binary \/usr\/bin\/apt-get: no rule of policy nosystemctl/);
  // PacmanRepository's key from the command line (--key, --key-fingerprint): a bad fingerprint is refused before anything runs.
  const key = await rpc('PacmanRepository.present', 'custom', '--servers', 'https://a', '--key', KEY, '--key-fingerprint', '0123');
  assert.equal(key.code, 2);
  assert.match(key.stderr, /keyFingerprint: "0123" is not a key fingerprint \(40 hex digits\)/);
  assert.deepEqual(readFileSync(join(fake, 'state/log'), 'utf8').split('\n').filter((l) => l && !l.startsWith('is-')), ['enable -- nginx', 'start -- nginx']);
});

test("remux rpc: every call stops at the configured timeout (exec.timeout_seconds, as client run's commands), 124; --timeout overrides it, 0 is no limit", async (t) => {
  const h = tempHome();
  t.after(() => h.remove());
  const fake = mkdtempSync(join(tmpdir(), 'remux-fake-'));
  t.after(() => rmSync(fake, { recursive: true, force: true }));
  mkdirSync(join(fake, 'bin'));
  // A systemctl that takes a second to answer: a tool call (not Exec) that outlasts the configured half second.
  writeFileSync(join(fake, 'bin/systemctl'), '#!/bin/sh\nsleep 1\necho active\n');
  chmodSync(join(fake, 'bin/systemctl'), 0o755);
  writeFileSync(join(h.home, 'policies.yaml'), POLICIES);
  writeFileSync(join(h.home, 'config.yaml'), `default_policy: system\nexec:\n  timeout_seconds: 0.5\n  secure_path: ${join(fake, 'bin')}:${DEFAULT_SECURE_PATH}\n`);
  const rpc = (...args: string[]) => remux(['rpc', 'localhost', ...args], { env: h.env, via: 'node' });

  const late = await rpc('Service.start', 'nginx');
  assert.equal(late.code, 124, late.stderr);
  assert.match(late.stderr, /^remux: Service\.start: no result within 500 ms; the host was told to stop it\n$/);
  const streamed = await rpc('Exec.stream', '--', 'sleep', '5');
  assert.equal(streamed.code, 124, streamed.stderr);
  for (const timeout of ['0', '30']) {
    const r = await rpc('--timeout', timeout, 'Service.start', 'nginx');
    assert.deepEqual([r.code, r.stdout], [0, '{"changed":false,"active":true,"enabled":false}\n'], r.stderr);
  }
  // Not a number, or nothing (an unset variable: --timeout "$T"), which must not read as 0, no limit; or
  // longer than a timer holds (it would fire at once: 3000000 s ended the call with 124 before it began).
  for (const timeout of ['soon', '', ' ', '3000000']) {
    const bad = await rpc('--timeout', timeout, 'Service.start', 'nginx');
    assert.deepEqual([bad.code, bad.stderr], [2, `remux: --timeout must be a number of seconds up to 2147483 (about 24 days; 0 for no limit), got "${timeout}"\n`]);
  }
  const long = await remux(['client', 'run', 'localhost', '--timeout', '3000000', '--', 'echo', 'ran'], { env: h.env, via: 'node' });
  assert.deepEqual([long.code, long.stdout], [2, ''], long.stderr);
});
