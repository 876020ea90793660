// Issue 3 end to end: the real `remux` binary against a fleet of real sshd hosts (network
// namespaces as root, loopback ports otherwise): fan-out, selectors, host keys, failures,
// breaker, daemon restart, rate limiting, and quoting through a real remote shell. Issue 7: the OS
// sandbox on hosts with bubblewrap and static checks on h4, which has none (as root).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_SECURE_PATH } from '../../src/config/config.js';
import { assertSlowClientHoldsCommand } from '../support/backpressure.js';
import { remux, spawnRemux, tempHome, type RunResult } from '../support/cli.js';
import { startFleet, waitRunning, type Fleet } from './fleet.js';

// ops: the fan-out tests, which look at the session (SSH_CONNECTION) and run in the login directory.
// boxed, open and strict: the same rules over `box`, with the sandbox on, off and required.
const POLICY = `policies:
  ops:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: uptime|printenv|printf|echo|true|false|sleep|cat|uname|head }
      - { operation: read_file, resource: [/proc/**, /dev/zero] }
      - { operation: write_stdout, resource: null }
  builtins:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: printf|test|true }
      - { operation: write_stdout, resource: null }
`;

function boxPolicies(box: string): string {
  const rules = `    capabilities:
      - { operation: execute_binary, resource: cat|grep|true }
      - { operation: read_file, resource: [${box}, ${box}/**] }
      - { operation: list_directory, resource: [${box}, ${box}/**] }
      - { operation: write_stdout, resource: null }
`;
  const tmp = `    capabilities:
      - { operation: execute_binary, resource: ls }
      - { operation: read_file, resource: /tmp/** }
      - { operation: list_directory, resource: /tmp/** }
      - { operation: write_stdout, resource: null }
`;
  // ps reports on the host: its rule lets it out of the sandbox, grep stays in.
  const host = `    capabilities:
      - { operation: execute_binary, resource: ps, sandbox: false }
      - { operation: execute_binary, resource: grep }
      - { operation: read_file, resource: [${box}, ${box}/**] }
      - { operation: list_directory, resource: [${box}, ${box}/**] }
      - { operation: write_stdout, resource: null }
`;
  return `  hostbox:\n${host}  boxed:\n${rules}  open:\n    sandbox: false\n${rules}  strict:\n    sandbox: required\n${rules}  tmp-boxed:\n${tmp}  tmp-open:\n    sandbox: false\n${tmp}`;
}

const isRoot = process.getuid?.() === 0;
const bwrapVersion = /(\d+\.\d+\.\d+)/.exec(execFileSync('bwrap', ['--version']).toString())?.[1];

interface Enforcement {
  mode: string;
  detail: string;
  warning: string | null;
}

const CONFIG = `default_policy: ops
ssh:
  # A cut host fails after this; a loaded machine (4 test files on 2 cores) took over 1 s for a handshake.
  connect_timeout_seconds: 4
  keepalive_interval_seconds: 1
  # Long enough that a loaded machine still sees the breaker open a few CLI runs after it opened.
  breaker: { failure_threshold: 2, cooldown_seconds: 3 }
  backoff: { base_ms: 50, cap_ms: 200 }
daemon:
  rate_limit: { requests_per_second: 1000, burst: 1000 }
`;

function lines(r: RunResult): string[] {
  return r.stdout.split('\n').filter((l) => l !== '');
}

/** The server address each host saw us connect to: proves which host answered. */
const WHO = 'printenv SSH_CONNECTION';

describe('remux over a real SSH fleet', { timeout: 300_000 }, () => {
  let fleet: Fleet;
  const h = tempHome();
  const env = (): Record<string, string> => ({ ...h.env, REMUX_KNOWN_HOSTS: fleet.knownHostsFile });
  const box = join(h.home, 'box');
  const SECRET = 'TOP-SECRET-7f3a';
  /** What hosts check / list say about h1..h4: the sandbox, except on h4 without bubblewrap. */
  const expected = (i: number, unknown?: string): Pick<Enforcement, 'mode' | 'detail'> =>
    unknown !== undefined
      ? { mode: 'unknown', detail: unknown }
      : i === 3 && isRoot
        ? { mode: 'static', detail: `no bwrap in PATH ${DEFAULT_SECURE_PATH}` }
        : { mode: 'sandbox', detail: `bubblewrap ${bwrapVersion}` };
  const enforcements = (objs: Array<{ enforcement: Enforcement }>): Array<Pick<Enforcement, 'mode' | 'detail'>> =>
    objs.map(({ enforcement: { mode, detail } }) => ({ mode, detail }));

  before(async () => {
    fleet = await startFleet({ count: 4, withoutBwrap: isRoot ? ['h4'] : [] });
    writeFileSync(join(h.home, 'config.yaml'), CONFIG);
    writeFileSync(join(h.home, 'policies.yaml'), POLICY + boxPolicies(box));
    mkdirSync(box);
    writeFileSync(join(box, 'data.txt'), 'visible\n');
    writeFileSync(join(h.home, 'secret.txt'), `${SECRET}\n`);
    symlinkSync(join(h.home, 'secret.txt'), join(box, 'link'));
    const labels = [['env=prod', 'role=web'], ['env=prod', 'role=db'], ['env=dev', 'role=web'], ['env=dev', 'role=db']];
    for (const [i, host] of fleet.hosts.entries()) {
      const args = ['hosts', 'add', host.name, `${host.user}@${host.address}`, '--port', String(host.port), '--identity', host.identityFile];
      for (const l of labels[i]!) args.push('--label', l);
      const r = await remux(args, { env: env() });
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: env() });
    await fleet?.stop();
    h.remove();
  });

  test('hosts check connects, verifies host keys and runs a trivial command everywhere', async () => {
    const r = await remux(['hosts', 'check', '--json'], { env: env() });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const results = lines(r).map((l) => JSON.parse(l) as { host: string; ok: boolean; enforcement: Enforcement });
    assert.deepEqual(results.map((x) => x.host).sort(), fleet.hosts.map((x) => x.name).sort());
    assert.ok(results.every((x) => x.ok));
    // Each host's enforcement, probed on the connection the check made.
    results.sort((a, b) => a.host.localeCompare(b.host));
    assert.deepEqual(enforcements(results), fleet.hosts.map((_, i) => expected(i)));
    const text = await remux(['hosts', 'check', 'h1,h4'], { env: env() });
    assert.match(text.stdout, new RegExp(`^h1  ok  \\d+ms  sandbox \\(bubblewrap ${bwrapVersion}\\)$`, 'm'));
    if (isRoot) assert.match(text.stdout, new RegExp(`^h4  ok  \\d+ms  static checks only \\(no bwrap in PATH ${DEFAULT_SECURE_PATH}\\)$`, 'm'));
    if (bwrapVersion?.startsWith('0.')) assert.match(text.stderr, /^warning: bubblewrap .* on h1 is older than 0\.12\.0/m);
  });

  test('hosts list without a daemon connects nowhere: enforcement unknown (not connected)', async () => {
    const r = await remux(['hosts', 'list', '--json'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Array<{ name: string; enforcement: Enforcement }>;
    assert.equal(rows[0]!.name, 'localhost', 'this machine is listed first');
    assert.deepEqual(enforcements(rows.slice(1)), fleet.hosts.map((_, i) => expected(i, 'not connected')));
    const table = await remux(['hosts', 'list'], { env: env() });
    assert.match(table.stdout, /^h1 .* unknown \(not connected\)/m);
  });

  test('sandboxed: a symlink to a secret leads nowhere (refused with static checks only, caught by the sandbox)', async () => {
    const grep = (policy: string, host: string): Promise<RunResult> => remux(['client', 'run', host, '--policy', policy, '--cwd', box, '--', `grep -R TOP-SECRET ${box}`], { env: env() });
    const open = await grep('open', 'h1');
    assert.equal(open.code, 77, 'without the sandbox grep -R could follow the link: refused');
    assert.match(open.stderr, /grep -R follows symlinks.*only the OS sandbox can confine/);
    const boxed = await grep('boxed', 'h1');
    assert.doesNotMatch(boxed.stdout + boxed.stderr, new RegExp(SECRET));
    assert.equal(boxed.code, 2, boxed.stderr);
    const data = await remux(['client', 'run', 'h1', '--policy', 'boxed', '--cwd', box, '--', 'cat data.txt'], { env: env() });
    assert.equal(data.stdout, 'visible\n', data.stderr);
  });

  test('sandboxed: ps (sandbox: false) sees the host while grep, piped from it, stays in the sandbox', async () => {
    const sleeper = fleet.hosts[0]!.spawn(['sleep', '34567']);
    try {
      const r = await remux(['client', 'run', 'h1', '--policy', 'hostbox', '--cwd', box, '--', `ps ax | grep -R -e 'sleep 34567' -e TOP-SECRET - ${box}`], { env: env() });
      // 2: the link to the secret leads nowhere inside.
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stdout, /^\(standard input\):.*\bsleep 34567$/m, r.stdout);
      assert.doesNotMatch(r.stdout, new RegExp(`link:${SECRET}`));
    } finally {
      sleeper.kill();
    }
  });

  test("sandboxed: the host's tmux directory is empty inside though the policy shows it (a tmux client there could have the server run anything outside)", async () => {
    // h1's tmux directory (its sessions' TMUX_TMPDIR), with a server of the login user in it.
    const tmuxTmp = join(fleet.dir, 'h1', 'tmux');
    const dir = join(tmuxTmp, `tmux-${process.getuid?.() ?? 0}`);
    const name = `rmx-fleet-${process.pid}`;
    const tmuxEnv = { ...process.env, TMUX_TMPDIR: tmuxTmp };
    execFileSync('tmux', ['-L', name, 'new-session', '-d', 'sleep 60'], { env: tmuxEnv });
    try {
      const list = (policy: string): Promise<RunResult> => remux(['client', 'run', 'h1', '--policy', policy, '--cwd', '/tmp', '--', `ls -a ${dir}`], { env: env() });
      const open = await list('tmp-open');
      assert.equal(open.code, 0, open.stderr);
      assert.match(open.stdout, new RegExp(`^${name}$`, 'm'), 'static checks only: the socket is there to see');
      const boxed = await list('tmp-boxed');
      assert.equal(boxed.code, 0, boxed.stderr);
      assert.equal(boxed.stdout, '.\n..\n', 'in the sandbox the directory is empty');
    } finally {
      execFileSync('tmux', ['-L', name, 'kill-server'], { env: tmuxEnv });
    }
  });

  test('sandboxed: a login directory the sandbox does not show gives way to its /; an explicit one is refused (125)', async () => {
    const implicit = await remux(['client', 'run', 'h1', '--policy', 'boxed', '--', 'true'], { env: env() });
    assert.equal(implicit.code, 0, implicit.stderr);
    const relative = await remux(['client', 'run', 'h1', '--policy', 'boxed', '--', 'cat data.txt'], { env: env() });
    assert.equal(relative.code, 77, 'relative paths are checked against / then');
    assert.match(relative.stderr, /read_file \/data\.txt: no rule of policy boxed allows it/);
    const r = await remux(['client', 'run', 'h1', '--policy', 'boxed', '--cwd', '/root', '--', 'true'], { env: env() });
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, new RegExp(`working directory /root is not visible in the sandbox of policy boxed on h1; give --cwd inside the policy's paths \\(${box}\\)`));
  });

  test('sandbox: required refuses the host without bubblewrap (77, naming it); sandbox on runs there with static checks', { skip: !isRoot && 'a host without bwrap needs root' }, async () => {
    const strict = await remux(['client', 'run', 'h4', '--policy', 'strict', '--cwd', box, '--', 'cat data.txt'], { env: env() });
    assert.equal(strict.code, 77, strict.stderr);
    assert.match(strict.stderr, new RegExp(`policy strict requires the OS sandbox \\(sandbox: required\\), but h4 cannot provide one: no bwrap in PATH`));
    assert.equal(strict.stdout, '');
    const onH1 = await remux(['client', 'run', 'h1', '--policy', 'strict', '--cwd', box, '--', 'cat data.txt'], { env: env() });
    assert.equal(onH1.stdout, 'visible\n', onH1.stderr);
    const all = await remux(['client', 'run', 'all', '--policy', 'boxed', '--cwd', box, '--json', '--', 'cat data.txt'], { env: env() });
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(lines(all).map((l) => (JSON.parse(l) as { stdout: string }).stdout), fleet.hosts.map(() => 'visible\n'));
  });

  test('cd DIR && …: the rest runs in DIR over SSH, sandboxed or not; a cd the policy does not list is refused', async () => {
    for (const policy of ['boxed', 'open']) {
      const r = await remux(['client', 'run', 'h1', '--policy', policy, '--', `cd ${box} && cat data.txt`], { env: env() });
      assert.deepEqual([r.code, r.stdout], [0, 'visible\n'], `${policy}: ${r.stderr}`);
    }
    const out = await remux(['client', 'run', 'h1', '--policy', 'boxed', '--', `cd ${h.home} && cat secret.txt`], { env: env() });
    assert.equal(out.code, 77);
    assert.match(out.stderr, new RegExp(`list_directory ${h.home}: no rule of policy boxed allows it`));
    assert.ok(!out.stdout.includes(SECRET));
  });

  test('fan-out to every host prefixes each line with its host, in-process', async () => {
    const r = await remux(['client', 'run', 'all', '--', WHO], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    for (const host of fleet.hosts) {
      const line = lines(r).find((l) => l.startsWith(`${host.name} `));
      assert.ok(line, `no output from ${host.name}: ${r.stdout}`);
      assert.ok(line.split(' ').includes(host.address), `${host.name} answered from elsewhere: ${line}`);
    }
    assert.match(r.stderr, /4 hosts: 4 ok, 0 failed, 0 denied, 0 unreachable/);
  });

  test('--group prints each host as one block, in selector order, with its outcome', async () => {
    const r = await remux(['client', 'run', 'all', '--group', '--', WHO], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const headers = lines(r).filter((l) => l.startsWith('── '));
    assert.deepEqual(headers, fleet.hosts.map((host) => `── ${host.name} ── ok`));
    for (const [i, host] of fleet.hosts.entries()) {
      const at = lines(r).indexOf(headers[i]!);
      assert.ok(lines(r)[at + 1]!.split(' ').includes(host.address), `block of ${host.name} holds another host's output`);
    }
  });

  test('label selectors pick exactly the matching hosts; --json gives one object per host', async () => {
    const r = await remux(['client', 'run', 'env=prod,role=web', '--json', '--', WHO], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const objs = lines(r).map((l) => JSON.parse(l) as { host: string; exitCode: number; stdout: string });
    assert.deepEqual(objs.map((o) => o.host), [fleet.hosts[0]!.name]);
    const dev = await remux(['client', 'run', 'env=dev', '--json', '--', 'true'], { env: env() });
    assert.deepEqual(lines(dev).map((l) => (JSON.parse(l) as { host: string }).host).sort(), [fleet.hosts[2]!.name, fleet.hosts[3]!.name].sort());
    const none = await remux(['client', 'run', 'env=staging', '--', 'true'], { env: env() });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /env=staging/);
  });

  test('hostile arguments survive the round trip through the remote shell byte for byte', async () => {
    const words = ['a b', "it's", '"dq"', '$HOME', '`id`', '$(id)', '\\back', '-n', '~', '*', 'ünï', ';', '|', '&&', ''];
    const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
    const r = await remux(['client', 'run', fleet.hosts[0]!.name, '--', `printf '[%s]\\n' ${quoted}`], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, words.map((w) => `[${w}]\n`).join(''));
  });

  test("printf -v and test -v, whose variable's subscript the login shell's builtins run, never reach the host's shell", async () => {
    const marker = join(h.home, 'builtin-ran');
    // A list, so the login shell (bash) runs it, and runs its own printf and test.
    for (const command of [`printf -v 'a[$(touch ${marker})]' x && true`, `test -v 'a[$(touch ${marker})]' || true`]) {
      const r = await remux(['client', 'run', fleet.hosts[0]!.name, '--policy', 'builtins', '--', command], { env: env() });
      assert.equal(r.code, 77, `${command}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /-v names a shell variable/);
      assert.ok(!existsSync(marker), `${command} ran a command on the host`);
    }
    const plain = await remux(['client', 'run', fleet.hosts[0]!.name, '--policy', 'builtins', '--', `printf '%s\\n' -v && test -n x`], { env: env() });
    assert.deepEqual([plain.code, plain.stdout], [0, '-v\n'], plain.stderr);
  });

  test("a remote command's exit status comes back; a denied one never reaches the host", async () => {
    const r = await remux(['client', 'run', fleet.hosts[1]!.name, '--', 'false'], { env: env() });
    assert.equal(r.code, 1);
    const denied = await remux(['client', 'run', fleet.hosts[1]!.name, '--', 'cat /etc/shadow'], { env: env() });
    assert.equal(denied.code, 77);
    assert.match(denied.stderr, /\/etc\/shadow/);
  });

  test("the caller's environment stays here: a secret set for remux is not in the remote command's, whose PATH is the secure one", async () => {
    const secret = `leak-${process.pid}-${Date.now()}`;
    const r = await remux(['client', 'run', fleet.hosts[0]!.name, '--no-daemon', '--', 'printenv'], { env: { ...env(), LEAK_TEST_SECRET: secret } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(secret), r.stdout);
    assert.ok(r.stdout.split('\n').includes(`PATH=${DEFAULT_SECURE_PATH}`), r.stdout);
  });

  test('a changed host key is refused with a clear message (exit 255)', async () => {
    const [a, b] = fleet.hosts;
    const forged = join(h.home, 'forged_known_hosts');
    // a's address with b's key: what a man in the middle presenting b's key looks like.
    const bKey = b!.hostKeyLine.split(' ').slice(1).join(' ');
    const aHost = a!.hostKeyLine.split(' ')[0]!;
    writeFileSync(forged, `${aHost} ${bKey}\n`);
    const r = await remux(['client', 'run', a!.name, '--', 'true'], { env: { ...env(), REMUX_KNOWN_HOSTS: forged } });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /CHANGED/i);
    // What to do once the new key is confirmed: drop the old line the way ssh-keygen names the entry, then trust the new.
    const entry = aHost.startsWith('[') ? `'${aHost}'` : aHost;
    assert.ok(r.stderr.includes(`\`ssh-keygen -f ${forged} -R ${entry}\`, then \`remux hosts check ${a!.name} --accept-new\``), r.stderr);
  });

  test('an unknown host key is refused; hosts check --accept-new trusts and records it', async () => {
    const empty = join(h.home, 'tofu_known_hosts');
    writeFileSync(empty, '');
    const host = fleet.hosts[2]!;
    const refused = await remux(['client', 'run', host.name, '--', 'true'], { env: { ...env(), REMUX_KNOWN_HOSTS: empty } });
    assert.equal(refused.code, 255);
    assert.match(refused.stderr, /not in|unknown/i);
    assert.match(refused.stderr, /SHA256:/);
    // client run has no --accept-new: the hint names the command that has.
    assert.ok(refused.stderr.includes(`then trust it with \`remux hosts check ${host.name} --accept-new\``), refused.stderr);
    const accepted = await remux(['hosts', 'check', host.name, '--accept-new', '--known-hosts', empty], { env: env() });
    assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr);
    assert.match(accepted.stderr, new RegExp(`^trusted the new host key of ${host.name} \\(SHA256:[A-Za-z0-9+/]+\\), recorded in ${empty}$`, 'm'));
    assert.notEqual(readFileSync(empty, 'utf8').trim(), '', 'the key was recorded');
    const now = await remux(['client', 'run', host.name, '--', 'true'], { env: { ...env(), REMUX_KNOWN_HOSTS: empty } });
    assert.equal(now.code, 0, now.stderr);
    const audit = await remux(['audit', 'ls', '--json', '--limit', '0'], { env: env() });
    assert.ok(lines(audit).some((l) => (JSON.parse(l) as { operation: string }).operation === 'host_key.accept'));
  });

  test('hosts add: a relative --identity is the file where it was typed, not one beside hosts.yaml', async () => {
    const host = fleet.hosts[0]!;
    const added = await remux(['hosts', 'add', 'rel-key', `${host.user}@${host.address}`, '--port', String(host.port), '--identity', basename(host.identityFile)], { env: env(), cwd: dirname(host.identityFile) });
    assert.equal(added.code, 0, added.stderr);
    try {
      assert.match(readFileSync(join(h.home, 'hosts.yaml'), 'utf8'), new RegExp(`rel-key:[^]*identity: ${host.identityFile}\n`));
      const checked = await remux(['hosts', 'check', 'rel-key'], { env: env() });
      assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    } finally {
      assert.equal((await remux(['hosts', 'remove', 'rel-key'], { env: env() })).code, 0);
    }
  });

  test('a config.yaml or policies.yaml that does not load: exit 2 with file:line at once, not once sshd gives up on the early connection', async () => {
    const broken = tempHome();
    const brokenEnv = { ...broken.env, REMUX_KNOWN_HOSTS: fleet.knownHostsFile };
    const host = fleet.hosts[0]!;
    try {
      const added = await remux(['hosts', 'add', host.name, `${host.user}@${host.address}`, '--port', String(host.port), '--identity', host.identityFile], { env: brokenEnv });
      assert.equal(added.code, 0, added.stderr);
      writeFileSync(join(broken.home, 'policies.yaml'), POLICY);
      // The TCP connection to the host starts before the files load; sshd keeps it 2 minutes (LoginGraceTime).
      writeFileSync(join(broken.home, 'config.yaml'), 'default_policy: ops\nexec:\n  pipefail: "false"\n');
      const badConfig = await remux(['client', 'run', host.name, '--', 'true'], { env: brokenEnv, timeoutMs: 20_000 });
      assert.equal(badConfig.code, 2, badConfig.stderr);
      assert.match(badConfig.stderr, /config\.yaml:3: exec\.pipefail/);
      writeFileSync(join(broken.home, 'config.yaml'), 'default_policy: ops\n');
      writeFileSync(join(broken.home, 'policies.yaml'), `${POLICY}\tbad: tab\n`);
      const badPolicies = await remux(['client', 'batch', host.name, '--commands-file', '-'], { env: brokenEnv, input: 'true\n', timeoutMs: 20_000 });
      assert.equal(badPolicies.code, 2, badPolicies.stderr);
      assert.match(badPolicies.stderr, /policies\.yaml:\d+:/);
    } finally {
      broken.remove();
    }
  });

  test('sshd killed mid-command: a clean transport error, no hang', async () => {
    const host = fleet.hosts[3]!;
    // A duration no other test uses: the host's processes are this machine's (network namespaces only).
    const child = spawnRemux(['client', 'run', host.name, '--', 'sleep 20.37'], { env: env() });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      // Mid-command: the command runs on the host.
      await waitRunning(host, '^\\S*sleep 20\\.37$');
      const t0 = Date.now();
      host.kill();
      const code = await Promise.race([exited, sleep(10_000).then(() => 'hung' as const)]);
      assert.notEqual(code, 'hung', 'remux hung after sshd died');
      assert.equal(code, 255, stderr);
      assert.ok(Date.now() - t0 < 8000);
      assert.match(stderr, new RegExp(host.name));
    } finally {
      child.kill('SIGKILL');
      // The tests after this one use the host.
      await host.restart();
    }
  });

  test('through the daemon: warm connections, breaker opens on an unreachable host, fails fast, closes when it returns', async () => {
    const start = await remux(['daemon', 'start'], { env: env() });
    assert.equal(start.code, 0, start.stderr);
    // Only the owner can reach the daemon: a private directory and socket.
    const socket = join(h.home, 'run', 'remux.sock');
    assert.equal(statSync(join(h.home, 'run')).mode & 0o777, 0o700);
    assert.equal(statSync(socket).mode & 0o777, 0o600);
    assert.ok(statSync(socket).isSocket());
    const warm = await remux(['client', 'run', 'all', '--json', '--', 'true'], { env: env() });
    assert.equal(warm.code, 0, warm.stderr);
    const listed = JSON.parse((await remux(['hosts', 'list', '--json'], { env: env() })).stdout) as Array<{ name: string; connected: boolean }>;
    assert.ok(listed.every((x) => x.connected), JSON.stringify(listed));

    const down = fleet.hosts[3]!;
    await down.cut();
    try {
      for (let i = 0; i < 2; i++) {
        const r = await remux(['client', 'run', down.name, '--', 'true'], { env: env() });
        assert.equal(r.code, 255, r.stderr);
      }
      const t0 = Date.now();
      const fast = await remux(['client', 'run', down.name, '--', 'true'], { env: env() });
      assert.equal(fast.code, 255);
      assert.match(fast.stderr, /circuit open/);
      assert.ok(Date.now() - t0 < 900, `breaker did not fail fast: ${Date.now() - t0} ms`);
      // One host down never cancels the others.
      const all = await remux(['client', 'run', 'all', '--', 'true'], { env: env() });
      assert.equal(all.code, 255);
      assert.match(all.stderr, /3 ok, 0 failed, 0 denied, 1 unreachable/);
      const status = JSON.parse((await remux(['daemon', 'status', '--json'], { env: env() })).stdout) as { hosts: Array<{ name: string; breaker: { state: string } | null }> };
      assert.equal(status.hosts.find((x) => x.name === down.name)?.breaker?.state, 'open');
    } finally {
      await down.heal();
    }
    await sleep(3200); // the cool-down
    const back = await remux(['client', 'run', down.name, '--', 'true'], { env: env() });
    assert.equal(back.code, 0, back.stderr);
    const status = JSON.parse((await remux(['daemon', 'status', '--json'], { env: env() })).stdout) as { hosts: Array<{ name: string; breaker: { state: string } | null }> };
    assert.equal(status.hosts.find((x) => x.name === down.name)?.breaker?.state, 'closed');
  });

  test('the daemon restarts cleanly and serves again', async () => {
    const stop = await remux(['daemon', 'stop'], { env: env() });
    assert.equal(stop.code, 0, stop.stderr);
    const gone = await remux(['daemon', 'status'], { env: env() });
    assert.equal(gone.code, 3);
    const start = await remux(['daemon', 'start'], { env: env() });
    assert.equal(start.code, 0, start.stderr);
    const r = await remux(['client', 'run', 'all', '--', 'true'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const again = await remux(['daemon', 'start'], { env: env() });
    assert.match(again.stdout, /already running/);
  });

  test('a client that stops reading stops the remote command (the channel is not read); nothing is lost', async () => {
    await assertSlowClientHoldsCommand(env(), 'h1');
  });

  test('hosts list through the daemon: enforcement as probed on its connections', async () => {
    // The fleet's rows (this machine's, listed first, is not on a connection).
    const list = async (): Promise<Array<{ connected: boolean; enforcement: Enforcement }>> =>
      (JSON.parse((await remux(['hosts', 'list', '--json'], { env: env() })).stdout) as Array<{ connected: boolean; enforcement: Enforcement }>).slice(1);
    const r = await remux(['client', 'run', 'all', '--', 'true'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const unprobed = await list();
    assert.ok(unprobed.every((x) => x.connected));
    assert.deepEqual(enforcements(unprobed), fleet.hosts.map((_, i) => expected(i, 'not probed yet: no sandboxed command ran on this connection')));
    // The table says it in its first words (the whole reason is in --json), and round trips to 0.01 ms.
    const table = await remux(['hosts', 'list'], { env: env() });
    for (const host of fleet.hosts) assert.match(table.stdout, new RegExp(`^${host.name} .* unknown \\(not probed yet\\)( |$)`, 'm'), table.stdout);
    const rtts = (JSON.parse((await remux(['hosts', 'list', '--json'], { env: env() })).stdout) as Array<{ lastRttMs: number | null }>).map((x) => x.lastRttMs).filter((x) => x !== null);
    assert.ok(rtts.length > 0 && rtts.every((x) => /^\d+(\.\d{1,2})?$/.test(String(x))), `rounded: ${rtts.join(', ')}`);
    const boxed = await remux(['client', 'run', 'all', '--policy', 'boxed', '--cwd', box, '--', 'true'], { env: env() });
    assert.equal(boxed.code, 0, boxed.stderr);
    assert.deepEqual(enforcements(await list()), fleet.hosts.map((_, i) => expected(i)));
  });
});

/** A home with a daemon running at this rate limit, for the tests of one describe(). */
function daemonLimitedTo(requestsPerSecond: number, burst: number): ReturnType<typeof tempHome> {
  const h = tempHome();
  before(async () => {
    writeFileSync(join(h.home, 'config.yaml'), `daemon:\n  rate_limit: { requests_per_second: ${requestsPerSecond}, burst: ${burst} }\n`);
    writeFileSync(join(h.home, 'policies.yaml'), POLICY.replace('ops:', 'read_only:'));
    const start = await remux(['daemon', 'start'], { env: h.env });
    assert.equal(start.code, 0, start.stderr);
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });
  return h;
}

describe('rate limiting in the daemon', { timeout: 60_000 }, () => {
  const h = daemonLimitedTo(0.5, 2);

  test('a batch is one request: its six commands take one token, none waits', async () => {
    const file = join(h.home, 'six.txt');
    writeFileSync(file, 'true\n'.repeat(6));
    const r = await remux(['client', 'batch', 'localhost', '-f', file, '--json'], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(lines(r).length, 6);
    const info = JSON.parse((await remux(['status', 'info', '--json'], { env: h.env })).stdout) as { daemon: { rateLimit: { buckets: Array<{ tokens: number }> } } };
    // Burst 2 at 0.5/s: a token per command would have emptied the bucket and made the batch wait 8 s.
    // (A bucket refilled to full is not listed.)
    assert.ok((info.daemon.rateLimit.buckets[0]?.tokens ?? 2) >= 1, JSON.stringify(info.daemon.rateLimit));
    // Refill to a full bucket before the next test counts its requests.
    await sleep(2100);
  });

  test('past the burst, requests whose next token is over a second away are refused with "rate limited, retry in N ms" (exit 75) and audited', async () => {
    const codes: number[] = [];
    let message = '';
    for (let i = 0; i < 4; i++) {
      const r = await remux(['client', 'run', 'localhost', '--', 'true'], { env: h.env });
      codes.push(r.code ?? -1);
      if (r.code === 75) message = r.stderr;
    }
    assert.deepEqual(codes, [0, 0, 75, 75]);
    assert.match(message, /rate limited, retry in \d+ ms/);
    const info = JSON.parse((await remux(['status', 'info', '--json'], { env: h.env })).stdout) as { daemon: { rateLimit: { buckets: Array<{ key: string; tokens: number }> } } };
    assert.equal(info.daemon.rateLimit.buckets.length, 1);
    const denied = await remux(['audit', 'ls', '--json', '--level', 'deny'], { env: h.env });
    assert.equal(lines(denied).length, 2);
  });
});

describe('rate limiting a loop of commands', { timeout: 60_000 }, () => {
  const h = daemonLimitedTo(20, 2);

  test('commands run one after another past the burst wait for their token (the next is 50 ms away): none refused, none audited as refused', async () => {
    const t0 = performance.now();
    for (let i = 0; i < 6; i++) {
      const r = await remux(['client', 'run', 'localhost', '--', 'true'], { env: h.env });
      assert.equal(r.code, 0, r.stderr);
    }
    // Four past the burst of two, at 20 per second.
    assert.ok(performance.now() - t0 >= 150, `${(performance.now() - t0).toFixed(0)} ms`);
    const denied = await remux(['audit', 'ls', '--json', '--level', 'deny'], { env: h.env });
    assert.equal(lines(denied).length, 0);
  });
});
