// tmux sessions over real SSH: the `remux session` CLI through a daemon, per tmux user (the login user
// directly, others through real sudo with the host's own sudoers: allowed, refused), a custom socket,
// startup commands in a real bubblewrap on the host (and on a host without one: static checks only, or
// refused), and the attach primitive over an SSH exec channel with a pty.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { createContext, type GatewayContext } from '../../src/core/context.js';
import { perform } from '../../src/core/perform.js';
import type { HostSessions } from '../../src/sessions/service.js';
import { remux, tempHome } from '../support/cli.js';
import { startFleet, type Fleet } from './fleet.js';

const isRoot = process.getuid?.() === 0;
const NOBODY_UID = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());

const POLICIES = `policies:
  sess:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: sleep|echo }
      - { operation: write_stdout, resource: null }
`;
/** A sandboxed policy (`sandbox` its mode) over `dir` (writable: dir/work) and the fleet host's tmux directory (read). */
const sandboxedPolicy = (name: string, sandbox: string, dir: string, tmuxDir: string): string => `  ${name}:
    sandbox: ${sandbox}
    capabilities:
      - { operation: execute_binary, resource: [ sleep, echo, touch, env, ls, ${dir}/work/x ] }
      - { operation: read_file, resource: [ ${dir}/**, ${tmuxDir}/** ] }
      - { operation: list_directory, resource: [ ${dir}/**, ${tmuxDir}/** ] }
      - { operation: write_file, resource: ${dir}/work/** }
      - { operation: write_stdout, resource: null }
`;

describe('tmux sessions over SSH', { timeout: 60_000, skip: isRoot ? false : 'needs root (a sudoers of its own on a fleet host)' }, () => {
  let fleet: Fleet;
  const h = tempHome();
  const env = (): Record<string, string> => ({ ...h.env, REMUX_KNOWN_HOSTS: fleet.knownHostsFile });
  // -L names a socket in each user's tmux directory; nobody's is under /tmp/tmux-65534 (sudo resets TMUX_TMPDIR).
  const socketName = `rmx-test-${randomBytes(4).toString('hex')}`;
  // What the sandboxed policies grant; hosts share this machine's filesystem.
  const granted = mkdtempSync(join(tmpdir(), 'remux-fleet-pane-'));
  const work = join(granted, 'work');
  let ctx: GatewayContext;
  const ls = async (host: string): Promise<HostSessions> => {
    const r = await remux(['session', 'ls', '--host', host, '--json'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const [listed] = JSON.parse(r.stdout) as HostSessions[];
    assert.ok(listed);
    return listed;
  };
  const states = (listed: HostSessions): Record<string, string> => Object.fromEntries(listed.users.map((u) => [u.user, u.state === 'ok' ? u.sessions.map((s) => s.name).join(',') : u.state]));
  const capture = async (host: string, name: string, pattern: RegExp): Promise<string> => {
    let out = '';
    for (let i = 0; i < 100 && !pattern.test(out); i++) {
      if (i > 0) await sleep(20);
      out = (await remux(['session', 'capture', name, '--host', host], { env: env() })).stdout;
    }
    assert.match(out, pattern);
    return out;
  };

  before(async () => {
    // Real sudo on h1: root may run tmux as nobody, and nothing as daemon.
    fleet = await startFleet({ count: 3, withoutBwrap: ['h3'], sudoers: { h1: 'Defaults env_reset\nroot ALL=(nobody) NOPASSWD: /usr/bin/tmux\n' } });
    const [h1, h2, h3] = fleet.hosts as [Fleet['hosts'][0], Fleet['hosts'][0], Fleet['hosts'][0]];
    const host = (x: typeof h1): string => `address: ${x.address}\n    port: ${x.port}\n    user: ${x.user}\n    identity: ${x.identityFile}`;
    writeFileSync(
      join(h.home, 'hosts.yaml'),
      `hosts:\n  h1:\n    ${host(h1)}\n    tmux_socket: ${socketName}\n    tmux_users: [root, nobody, daemon]\n  h2:\n    ${host(h2)}\n  h3:\n    ${host(h3)}\n`,
    );
    mkdirSync(join(work, 'inside'), { recursive: true });
    mkdirSync(join(granted, 'readonly'));
    const tmuxDir = join(fleet.dir, 'h1', 'tmux');
    // `homeless`: the login user's home is granted, then hidden by a deny rule (deny beats allow).
    const homeless = `${sandboxedPolicy('homeless', 'true', granted, tmuxDir)}      - { operation: read_file, resource: /root/** }\n      - { operation: read_file, effect: deny, resource: /root/** }\n`;
    // `reports`: programs that report on the host, let out of the sandbox.
    const reports = '  reports:\n    sandbox: true\n    capabilities:\n      - { operation: execute_binary, resource: ps|echo|sleep, sandbox: false }\n      - { operation: write_stdout, resource: null }\n';
    writeFileSync(join(h.home, 'policies.yaml'), POLICIES + sandboxedPolicy('boxed', 'true', granted, tmuxDir) + sandboxedPolicy('strict', 'required', granted, tmuxDir) + homeless + reports);
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: sess\nsessions: { sweep_interval_seconds: 3600 }\n');
    const start = await remux(['daemon', 'start'], { env: env() });
    assert.equal(start.code, 0, start.stderr);
    ctx = createContext({ env: env() });
  });
  after(async () => {
    await ctx?.close();
    await remux(['daemon', 'stop'], { env: env() });
    // nobody's server lives in the machine's /tmp: it ends with the fleet (its network namespace), its socket here.
    await fleet?.stop();
    rmSync(join('/tmp', `tmux-${NOBODY_UID}`, socketName), { force: true });
    rmSync(granted, { recursive: true, force: true });
    h.remove();
  });

  test('per tmux user: no server, and sudo refused shown as such', async () => {
    const listed = await ls('h1');
    assert.equal(listed.error, null);
    assert.deepEqual(states(listed), { root: 'no_server', nobody: 'no_server', daemon: 'sudo_refused' });
    const daemon = listed.users.find((u) => u.user === 'daemon');
    assert.match(daemon?.state === 'sudo_refused' ? daemon.detail : '', /not allowed to execute .* as daemon/);
    const table = await remux(['session', 'ls', '--host', 'h1'], { env: env() });
    assert.match(table.stdout, /^h1\s+daemon\s+\(sudo refused: /m);
    // With no --host: this machine first, then every inventory host.
    const everywhere = await remux(['session', 'ls', '--json'], { env: env() });
    assert.equal(everywhere.code, 0, everywhere.stderr);
    assert.deepEqual((JSON.parse(everywhere.stdout) as HostSessions[]).map((x) => x.host), ['localhost', ...fleet.hosts.map((x) => x.name)]);
  });

  test('create as the login user and, through sudo, as another; the cache shows both at once; a refused user gets nothing', async () => {
    const mine = await remux(['session', 'new', 'w1', '--host', 'h1'], { env: env() });
    assert.equal(mine.code, 0, mine.stderr);
    const theirs = await remux(['session', 'new', 'n1', '--host', 'h1', '--user', 'nobody', '--cmd', 'sleep 60'], { env: env() });
    assert.equal(theirs.code, 0, theirs.stderr);
    assert.deepEqual(states(await ls('h1')), { root: 'w1', nobody: 'n1', daemon: 'sudo_refused' });
    const refused = await remux(['session', 'new', 'd1', '--host', 'h1', '--user', 'daemon'], { env: env() });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^remux: sudo refused to run tmux as daemon on h1 \(.*not allowed to execute.*\); give root a NOPASSWD sudo rule for tmux as daemon there$/m);
    // tmux's own refusal as an allowed user is not mistaken for sudo's.
    const duplicate = await remux(['session', 'new', 'n1', '--host', 'h1', '--user', 'nobody'], { env: env() });
    assert.equal(duplicate.code, 1);
    assert.match(duplicate.stderr, /^remux: a session named "n1" already exists on h1 for tmux user nobody: pick another name, or attach to it$/m);
    // The custom socket: w1 lives on -L <name>, not on the default server.
    const h1 = fleet.hosts[0]!;
    assert.equal((await h1.exec(['tmux', '-L', socketName, 'has-session', '-t', '=w1'])).code, 0);
    assert.notEqual((await h1.exec(['tmux', 'has-session', '-t', '=w1'])).code, 0);
  });

  test('send, capture and kill on an SSH host; a denied startup command creates nothing', async () => {
    assert.equal((await remux(['session', 'new', 'job', '--host', 'h2'], { env: env() })).code, 0);
    const sent = await remux(['session', 'send', 'job', '--host', 'h2', '--', "echo 'remote;' $((2*21))", 'Enter'], { env: env() });
    assert.equal(sent.code, 0, sent.stderr);
    await capture('h2', 'job', /^remote; 42$/m);
    const denied = await remux(['session', 'new', 'bad', '--host', 'h2', '--cmd', 'rm -rf /tmp/nothing'], { env: env() });
    assert.equal(denied.code, 77, denied.stderr);
    assert.match(denied.stderr, /execute_binary \/usr\/bin\/rm: no rule of policy sess allows it/);
    const unconfirmed = await remux(['session', 'kill', 'job', '--host', 'h2'], { env: env() });
    assert.equal(unconfirmed.code, 2);
    assert.match(unconfirmed.stderr, /pass -f/);
    const killed = await remux(['session', 'kill', 'job', '--host', 'h2', '-f'], { env: env() });
    assert.equal(killed.code, 0, killed.stderr);
    assert.deepEqual(states(await ls('h2')), { root: 'no_server' });
    const audit = await remux(['audit', 'ls', '--json'], { env: env() });
    const records = audit.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { operation: string; resource: string | null; decision: string });
    const ops = records.map((a) => `${a.operation} ${a.resource} ${a.decision}`);
    for (const op of ['session.new root@h2:job allow', 'session.send root@h2:job allow', 'session.new root@h2:bad deny', 'session.kill root@h2:job allow']) assert.ok(ops.includes(op), op);
  });

  test('a startup command under a sandboxed policy runs in bubblewrap on the host, for the life of the pane; paths swapped after the check reach nothing more', async () => {
    const link = join(work, 'link');
    const program = join(work, 'x');
    symlinkSync(join(work, 'inside'), link);
    // echo when checked (a program is checked as the file it runs, and echo's words are no paths); tmux when it runs.
    symlinkSync('/usr/bin/echo', program);
    const socket = join(fleet.dir, 'h1', 'tmux', 'tmux-0', socketName);
    const command = [
      'echo started',
      'env',
      `touch ${work}/made && echo made-ok`,
      'sleep 1',
      `touch ${link}/pwned || echo readonly-refused`,
      `${program} -S ${socket} ls || echo tmux-refused`,
      'sleep 60',
    ].join('; ');
    const made = await remux(['session', 'new', 'boxed', '--host', 'h1', '--policy', 'boxed', '--cmd', command], { env: env() });
    assert.equal(made.code, 0, made.stderr);
    // After the check: the link points at a read-only tree, and `x` is tmux, which would ask the
    // session's own server (its socket is in a tree the policy shows) to run anything outside.
    for (const [path, to] of [[link, join(granted, 'readonly')], [program, '/usr/bin/tmux']] as const) {
      rmSync(path);
      symlinkSync(to, path);
    }
    const pane = await capture('h1', 'boxed', /tmux-refused/);
    assert.match(pane, /^started$/m);
    assert.match(pane, /^made-ok$/m);
    assert.ok(existsSync(join(work, 'made')));
    assert.match(pane, /Read-only file system\nreadonly-refused/);
    assert.ok(!existsSync(join(granted, 'readonly', 'pwned')));
    assert.doesNotMatch(pane, /^\w+: 1 windows/m, "the sandbox cannot list the server's sessions");
    // The pane's environment: the secure PATH and TERM as tmux sets it, nothing else of the pane's.
    assert.match(pane, /^TERM=\S+$/m);
    assert.match(pane, /^PATH=\S+$/m);
    assert.doesNotMatch(pane, /^(TMUX|TMUX_TMPDIR|RMXF_FLEET)=/m);
    const h1 = fleet.hosts[0]!;
    const panePid = (await h1.exec(['tmux', '-L', socketName, 'display-message', '-p', '-t', '=boxed:', '#{pane_pid}'])).stdout.trim();
    assert.match(readlinkSync(`/proc/${panePid}/exe`), /\/bwrap$/);
    // The same client outside the sandbox does reach the server: the test could have failed.
    assert.match((await h1.exec([program, '-L', socketName, 'ls'])).stdout, /^boxed: /m);

    const denied = await remux(['session', 'new', 'denied', '--host', 'h1', '--policy', 'boxed', '--cmd', `touch /etc/remux-x`], { env: env() });
    assert.equal(denied.code, 77, denied.stderr);
    assert.match(denied.stderr, /write_file \/etc\/remux-x: no rule of policy boxed allows it/);
    // Started in the login user's home, which the sandbox hides: the host's own check says so, nothing is created.
    const hidden = await remux(['session', 'new', 'hidden', '--host', 'h1', '--policy', 'homeless', '--cmd', 'sleep 60'], { env: env() });
    assert.equal(hidden.code, 1, hidden.stderr);
    assert.match(hidden.stderr, /^remux: working directory \/root is not visible in the sandbox, which shows only the policy's paths \(.*\): start the session from one of them$/m);
    assert.notEqual((await h1.exec(['tmux', '-L', socketName, 'has-session', '-t', '=hidden'])).code, 0);
    const records = (await remux(['audit', 'ls', '--json'], { env: env() })).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { operation: string; resource: string | null; reason: string | null });
    const record = records.find((a) => a.operation === 'session.new' && a.resource === 'root@h1:boxed');
    assert.match(record?.reason ?? '', /; runs in the OS sandbox \(bubblewrap\) for the life of the session$/);
  });

  test('a startup command whose every stage a rule with sandbox: false lets out runs outside the sandbox on the host: ps lists the host', async () => {
    // A process of the host (the fleet's hosts share this machine's processes), which a ps in any sandbox cannot see.
    const marker = spawn('sleep', ['12345.5'], { stdio: 'ignore' });
    try {
      const made = await remux(['session', 'new', 'reports', '--host', 'h2', '--policy', 'reports', '--cmd', `ps -o args= -p ${marker.pid}; echo listed; sleep 60`], { env: env() });
      assert.equal(made.code, 0, made.stderr);
      assert.match(made.stderr, /its command outside the OS sandbox/);
      const pane = await capture('h2', 'reports', /^listed$/m);
      assert.match(pane, /^sleep 12345\.5$/m);
    } finally {
      marker.kill();
    }
  });

  test('on a host without bubblewrap: sandbox true runs the startup command with static checks only (said so), required refuses', async () => {
    const made = await remux(['session', 'new', 'plain', '--host', 'h3', '--policy', 'boxed', '--cmd', 'echo unsandboxed; sleep 60'], { env: env() });
    assert.equal(made.code, 0, made.stderr);
    await capture('h3', 'plain', /^unsandboxed$/m);
    const strict = await remux(['session', 'new', 'strict', '--host', 'h3', '--policy', 'strict', '--cmd', 'echo never'], { env: env() });
    assert.equal(strict.code, 77, strict.stderr);
    assert.match(strict.stderr, /policy strict requires the OS sandbox \(sandbox: required\), but h3 cannot provide one: no bwrap in PATH/);
    assert.deepEqual(states(await ls('h3')), { root: 'plain' });
    const records = (await remux(['audit', 'ls', '--json'], { env: env() })).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { operation: string; resource: string | null; reason: string | null; decision: string });
    const plain = records.find((a) => a.operation === 'session.new' && a.resource === 'root@h3:plain');
    assert.match(plain?.reason ?? '', /; static checks only \(host h3 has no OS sandbox: no bwrap in PATH .*\)$/);
    assert.equal(records.find((a) => a.operation === 'session.new' && a.resource === 'root@h3:strict')?.decision, 'deny');
  });

  test('attach over SSH: typing reaches the session, pause holds the output, close leaves no client', async () => {
    assert.equal((await remux(['session', 'new', 'att', '--host', 'h2'], { env: env() })).code, 0);
    await ctx.registry.prepare(['h2']);
    const r = await perform(ctx, { kind: 'session.attach', host: 'h2', session: 'att', readOnly: false, cols: 100, rows: 30 }, { onStdout: () => {}, onStderr: () => {} });
    assert.ok(r.attach, r.message ?? r.outcome);
    const stream = r.attach;
    let seen = '';
    stream.onData((c) => (seen += c.toString()));
    stream.write('echo over-ssh-$((40+2))\r');
    await capture('h2', 'att', /^over-ssh-42$/m);
    const h2 = fleet.hosts[1]!;
    const size = async (): Promise<string> => (await h2.exec(['tmux', 'list-clients', '-F', '#{client_width}x#{client_height}'])).stdout.trim();
    assert.equal(await size(), '100x30');
    stream.resize(5000, 40);
    for (let i = 0; i < 100 && (await size()) !== '1000x40'; i++) await sleep(10);
    assert.equal(await size(), '1000x40');

    stream.pause();
    await sleep(100);
    const atPause = seen.length;
    stream.write('echo while-paused\r');
    await capture('h2', 'att', /^while-paused$/m);
    await sleep(100);
    assert.equal(seen.length, atPause, 'nothing delivered while paused');
    stream.resume();
    for (let i = 0; i < 100 && !seen.includes('while-paused'); i++) await sleep(10);
    assert.ok(seen.includes('while-paused'), 'what the session printed meanwhile arrives on resume');

    // Closed while paused, with output waiting: the channel still closes.
    stream.pause();
    stream.write('seq 1 20000\r');
    await sleep(300);
    const end = await stream.close();
    assert.equal(end.reason, 'closed');
    stream.write('late\r');
    stream.resize(80, 24);
    await sleep(50);
    assert.equal((await h2.exec(['tmux', 'list-clients'])).stdout, '');
    assert.equal((await h2.exec(['pgrep', '-f', 'tmux attach-session'])).stdout, '');
  });

  test('a warm sweep asks every host and user in one exec each, in parallel', async () => {
    await ctx.sessions.sweep();
    const started = performance.now();
    const swept = await ctx.sessions.sweep();
    const ms = performance.now() - started;
    assert.deepEqual(swept.map((s) => s.host), ['h1', 'h2', 'h3']);
    assert.ok(swept.every((s) => s.error === null));
    assert.ok(ms < 1000, `warm sweep took ${ms.toFixed(1)} ms`);
  });

  test('a host that cannot be reached is shown as such, with exit 255', async () => {
    fleet.hosts[1]!.kill();
    const r = await remux(['session', 'ls', '--host', 'h1,h2', '--refresh'], { env: env() });
    assert.equal(r.code, 255, r.stderr);
    assert.match(r.stdout, /^h1\s+root\s+w1\s/m);
    assert.match(r.stdout, /^h2\s+-\s+\(unreachable: h2 \(.*\): cannot connect: connect ECONNREFUSED/m);
  });
});
