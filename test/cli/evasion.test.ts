// End to end, as an attacker would try it: commands that dress up what they run so that the static check
// analyses something else. Real CLI, real programs, the real sandbox where the policy has one.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { remux, tempHome } from '../support/cli.js';

describe('what a command really runs is what is checked: programs under other names, wrappers', () => {
  const h = tempHome();
  const root = mkdtempSync(join(tmpdir(), 'remux-alias-'));
  const work = join(root, 'work');
  const secret = join(mkdtempSync('/var/tmp/remux-alias-secret-'), 'key');
  const SECRET = `alias-secret-${process.pid}`;
  const env = { ...h.env, REMUX_POLICY_CONFIG: join(h.home, 'alias.yaml') };

  before(async () => {
    assert.equal((await remux(['config', 'init'], { env: h.env })).code, 0);
    // An ask nobody answers is refused after a second.
    const config = join(h.home, 'config.yaml');
    writeFileSync(config, readFileSync(config, 'utf8').replace(/^(approvals:\n\s+timeout_seconds:) \d+/m, '$1 1'));
    // admin: every program, rm only after approval (no approver here: refused), the sandbox on.
    assert.equal((await remux(['policy', 'create', 'admin', '--template', 'admin', '--output', env.REMUX_POLICY_CONFIG], { env: h.env })).code, 0);
    const policies = readFileSync(env.REMUX_POLICY_CONFIG, 'utf8');
    writeFileSync(
      env.REMUX_POLICY_CONFIG,
      `${policies}  tools:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: cat|bash|grep|rm|tar }
      - { operation: read_file, resource: "${root}/**" }
      - { operation: read_file, resource: "${work}/private/**", effect: deny }
      - { operation: list_directory, resource: "${root}/**" }
      - { operation: write_file, resource: "${work}/**/*" }
      - { operation: write_stdout, resource: null }
`,
    );
    mkdirSync(work);
    writeFileSync(secret, `${SECRET}\n`);
  });
  after(() => {
    h.remove();
    rmSync(root, { recursive: true, force: true });
    rmSync(join(secret, '..'), { recursive: true, force: true });
  });

  test('a link named foo to bash: its -c string is checked, so rm in it still needs approval', async () => {
    symlinkSync('/usr/bin/bash', join(work, 'foo'));
    const victim = join(work, 'victim');
    writeFileSync(victim, 'keep me\n');
    const r = await remux(['client', 'run', 'localhost', '--policy', 'admin', '--', `${work}/foo -c 'rm -f ${victim}'`], { env, cwd: work });
    assert.equal(r.code, 77, r.stdout + r.stderr);
    assert.match(r.stderr, /execute_binary \/usr\/bin\/rm: needs approval under admin#\d+ .*destructive or disruptive program.*approval expired/);
    assert.ok(existsSync(victim), 'rm ran without approval');
  });

  test('a link named cat to bash, allowed as bash: what its -c string reads is checked', async () => {
    // Made by the caller, who may write the workspace.
    symlinkSync('/usr/bin/bash', join(work, 'cat'));
    const r = await remux(['client', 'run', 'localhost', '--policy', 'tools', '--', `./cat -c 'cat ${secret}'`], { env, cwd: work });
    assert.equal(r.code, 77, r.stdout + r.stderr);
    assert.ok(!r.stdout.includes(SECRET), 'the secret was printed');
    assert.match(r.stderr, new RegExp(`read_file ${secret}: no rule of policy tools allows it`));
    // The same file under its own name is analysed the same way.
    const plain = await remux(['policy', 'check', 'tools', '--', `bash -c 'cat ${secret}'`], { env, cwd: work });
    assert.equal(plain.code, 77);
  });

  for (const wrapper of ['setarch x86_64 -R', 'linux64', 'prlimit --nofile=64', 'setpriv --nnp', 'choom -n 0 --', 'fakeroot', '/lib64/ld-linux-x86-64.so.2']) {
    const program = wrapper.split(' ')[0] as string;
    const missing = !existsSync(program.startsWith('/') ? program : `/usr/bin/${program}`) && `no ${program} here`;
    test(`${wrapper} rm …: the wrapped program is seen, so rm still needs approval (or the wrapper is refused)`, { skip: missing }, async () => {
      const victim = join(work, 'wrapped-victim');
      writeFileSync(victim, 'keep me\n');
      const r = await remux(['client', 'run', 'localhost', '--policy', 'admin', '--', `${wrapper} /usr/bin/rm -f ${victim}`], { env, cwd: work });
      assert.equal(r.code, 77, r.stdout + r.stderr);
      assert.match(r.stderr, /needs approval .*destructive or disruptive program.*approval expired|dynamic loader runs the program given to it/);
      assert.ok(existsSync(victim), `${wrapper} ran rm without approval`);
    });
  }

  test('grep -r over a tree holding a .ssh directory asks, as reading the key there would (admin: /**/.ssh/**)', async () => {
    const home = join(work, 'home');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    writeFileSync(join(home, '.ssh', 'id_test'), `${SECRET}\n`);
    const r = await remux(['client', 'run', 'localhost', '--policy', 'admin', '--', `grep -r ${SECRET} ${home}`], { env, cwd: work });
    assert.equal(r.code, 77, r.stdout + r.stderr);
    assert.ok(!r.stdout.includes(SECRET), 'the key was read without approval');
    assert.match(r.stderr, new RegExp(`read_file ${home}: needs approval under admin#\\d+ .*: credentials; it covers paths below ${home}, which the command goes through`));
  });

  test('with static checks only, grep -r over a tree with a denied directory below it is denied', async () => {
    mkdirSync(join(work, 'private'));
    writeFileSync(join(work, 'private', 'notes'), `${SECRET}\n`);
    const r = await remux(['client', 'run', 'localhost', '--policy', 'tools', '--', `grep -r ${SECRET} ${work}`], { env, cwd: work });
    assert.equal(r.code, 77, r.stdout + r.stderr);
    assert.ok(!r.stdout.includes(SECRET), 'the denied tree was read');
    assert.match(r.stderr, new RegExp(`read_file ${work}: denied by tools#\\d+ .*; it covers paths below`));
  });

  test('with static checks only, rm of a link that leads into the write paths, lying where the policy only reads, is denied', async () => {
    const readOnly = join(root, 'ro');
    mkdirSync(readOnly);
    writeFileSync(join(work, 'target'), 'x\n');
    symlinkSync(join(work, 'target'), join(readOnly, 'link'));
    const r = await remux(['client', 'run', 'localhost', '--policy', 'tools', '--', `rm ${readOnly}/link`], { env, cwd: work });
    assert.equal(r.code, 77, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`write_file ${readOnly}/link: the symlink itself, which the command may replace or remove`));
    assert.ok(existsSync(join(readOnly, 'link')), 'the link was removed');
  });

  test('tar --use=PROG, an abbreviation of --use-compress-program, is refused like the option in full', async () => {
    const marker = join(root, 'use-ran');
    writeFileSync(join(work, 'a.tar'), '');
    const r = await remux(['client', 'run', 'localhost', '--policy', 'tools', '--', `tar -tf ${work}/a.tar '--use=bash -c "touch ${marker}" x'`], { env, cwd: work });
    assert.equal(r.code, 77, r.stdout + r.stderr);
    assert.match(r.stderr, /tar --use-compress-program runs a program that cannot be checked/);
    assert.ok(!existsSync(marker), 'tar ran the program');
  });

  test("the secure PATH's own names for multi-call programs keep their meaning (xzcat is xz, reading)", { skip: !existsSync('/usr/bin/xzcat') && 'no xzcat' }, async () => {
    const r = await remux(['policy', 'check', 'admin', '--', `xzcat ${work}/none.xz`], { env, cwd: work });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /write_file/);
  });
});

describe("remux's own files and sockets are out of every command's reach, whatever the policy shows", () => {
  const h = tempHome();
  const outside = mkdtempSync(join(tmpdir(), 'remux-own-out-'));
  const marker = join(outside, 'ran-outside');
  const tmuxDir = join(h.home, 'tmux');
  // Where config.yaml's daemon.socket may put the daemon's socket: outside $REMUX_HOME, shown by the policy.
  const sockets = mkdtempSync(join(tmpdir(), 'remux-own-sock-'));
  // A policy showing the directory remux's files live in, as one showing $HOME would.
  const env = { ...h.env, REMUX_POLICY_CONFIG: join(h.home, 'own.yaml'), TMUX_TMPDIR: tmuxDir };
  const tmux = (...args: string[]): void => void execFileSync('tmux', ['-L', 'own', ...args], { env: { ...process.env, TMUX_TMPDIR: tmuxDir } });

  before(async () => {
    assert.equal((await remux(['config', 'init'], { env: h.env })).code, 0);
    writeFileSync(
      env.REMUX_POLICY_CONFIG,
      `policies:
  home:
    capabilities:
      - { operation: execute_binary, resource: cat|tee|python3 }
      - { operation: execute_code, resource: python3 }
      - { operation: read_file, resource: "${h.home}/**" }
      - { operation: list_directory, resource: "${h.home}/**" }
      - { operation: write_file, resource: "${h.home}/**/*" }
      - { operation: read_file, resource: "${sockets}/**" }
      - { operation: list_directory, resource: "${sockets}/**" }
      - { operation: write_file, resource: "${sockets}/**/*" }
      - { operation: write_stdout, resource: null }
`,
    );
    mkdirSync(tmuxDir, { mode: 0o700 });
    tmux('new-session', '-d', '-s', 'own', 'sleep 600');
  });
  after(() => {
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
    h.remove();
    rmSync(outside, { recursive: true, force: true });
    rmSync(sockets, { recursive: true, force: true });
  });

  test('its principals, policies and keys: refused by the check, unreadable in the sandbox', async () => {
    const principals = join(h.home, 'principals.yaml');
    const r = await remux(['client', 'run', 'localhost', '--policy', 'home', '--', `cat ${principals}`], { env, cwd: h.home });
    assert.equal(r.code, 77, r.stdout + r.stderr);
    assert.match(r.stderr, /is remux's own \(its keys, configuration, stores or sockets\), which no command or file action reaches/);
    const py = await remux(['client', 'run', 'localhost', '--policy', 'home', '--', `python3 -c 'print(open("${principals}").read())'`], { env, cwd: h.home });
    assert.notEqual(py.code, 0, py.stdout);
    assert.doesNotMatch(py.stdout, /token|principals/);
  });

  test("adversarial: the CLI's code cache, which the next remux runs (V8 trusts it), is out of reach of commands and file writes", async () => {
    // A cache directory inside what the policy may write, as ~/.cache is for a policy writing $HOME.
    const cacheEnv = { ...env, XDG_CACHE_HOME: join(h.home, 'cache') };
    const caches = join(h.home, 'cache', 'remux');
    assert.equal((await remux(['policy', 'list'], { env: cacheEnv })).code, 0);
    assert.ok(readdirSync(caches).some((f) => f.endsWith('-policy.v8cache')), 'the run wrote its cache');
    const py = `python3 -c 'import os; open("${caches}/evil-policy.v8cache", "w").write("x"); print("wrote")'`;
    const r = await remux(['client', 'run', 'localhost', '--policy', 'home', '--', py], { env: cacheEnv, cwd: h.home });
    assert.doesNotMatch(r.stdout, /wrote/, r.stderr);
    const write = await remux(['client', 'write', 'localhost', join(caches, 'evil-policy.v8cache'), '--policy', 'home'], { env: cacheEnv, input: 'x' });
    assert.equal(write.code, 77, write.stdout + write.stderr);
    assert.match(write.stderr, /is remux's own/);
    assert.equal(existsSync(join(caches, 'evil-policy.v8cache')), false);
  });

  test('its policies cannot be rewritten to grant more, by a command or a file write', async () => {
    const policies = env.REMUX_POLICY_CONFIG;
    const before = readFileSync(policies, 'utf8');
    try {
      const tee = await remux(['client', 'run', 'localhost', '--policy', 'home', '--', `tee ${policies}`], { env, cwd: h.home, input: 'policies: {}\n' });
      assert.equal(tee.code, 77, tee.stdout + tee.stderr);
      const write = await remux(['client', 'write', 'localhost', policies, '--policy', 'home'], { env, input: 'policies: {}\n' });
      assert.equal(write.code, 77, write.stdout + write.stderr);
      assert.equal(readFileSync(policies, 'utf8'), before);
    } finally {
      writeFileSync(policies, before);
    }
  });

  test("tmux's socket directory is hidden: a sandboxed program cannot have the tmux server run a command outside", async () => {
    const socket = join(tmuxDir, `tmux-${process.getuid?.() ?? 0}`, 'own');
    assert.ok(existsSync(socket), socket);
    const escape = `import subprocess; subprocess.run(["tmux", "-S", "${socket}", "run-shell", "touch ${marker}"])`;
    const r = await remux(['client', 'run', 'localhost', '--policy', 'home', '--', `python3 -c '${escape}'`], { env, cwd: h.home });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(marker), 'the tmux server ran a command for the sandbox');
  });

  test("the daemon's socket where config.yaml's daemon.socket puts it, outside $REMUX_HOME: refused by the check, unreachable in the sandbox", async () => {
    const config = join(h.home, 'config.yaml');
    const original = readFileSync(config, 'utf8');
    const socket = join(sockets, 'daemon.sock');
    // Stands in for the daemon: it counts who connects (--no-daemon below keeps remux itself away).
    let connections = 0;
    const server = createServer((c) => {
      connections++;
      c.destroy();
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      writeFileSync(config, original.replace(/^ {2}# socket: .*$/m, `  socket: ${socket}`));
      const cat = await remux(['client', 'run', 'localhost', '--no-daemon', '--policy', 'home', '--', `cat ${socket}`], { env, cwd: h.home });
      assert.equal(cat.code, 77, cat.stdout + cat.stderr);
      assert.match(cat.stderr, /is remux's own \(its keys, configuration, stores or sockets\)/);
      const connect = `import socket; s = socket.socket(socket.AF_UNIX); s.connect("${socket}"); print("connected")`;
      const py = await remux(['client', 'run', 'localhost', '--no-daemon', '--policy', 'home', '--', `python3 -c '${connect}'`], { env, cwd: h.home });
      assert.notEqual(py.code, 0, py.stdout);
      assert.doesNotMatch(py.stdout, /connected/);
      assert.equal(connections, 0, 'a sandboxed program reached the daemon socket');
    } finally {
      writeFileSync(config, original);
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("the socket a daemon was started on with --socket, outside $REMUX_HOME: refused by the check, unreachable in the sandbox of its commands", async () => {
    // In a directory the policy writes: there the sandbox leaves sockets open, as on the host.
    const socket = join(sockets, 'flag', 'remux.sock');
    assert.equal((await remux(['daemon', 'start', '--socket', socket, '--listen', '127.0.0.1:0'], { env })).code, 0);
    try {
      // Through the daemon, found by its record (config.yaml names no socket).
      const cat = await remux(['client', 'run', 'localhost', '--policy', 'home', '--', `cat ${socket}`], { env, cwd: h.home });
      assert.equal(cat.code, 77, cat.stdout + cat.stderr);
      assert.match(cat.stderr, /is remux's own \(its keys, configuration, stores or sockets\)/);
      // A command run by it that tries to ask it for more: its own sandbox does not show it its socket.
      const connect = `import socket; s = socket.socket(socket.AF_UNIX); s.connect("${socket}"); print("connected")`;
      for (const via of [[], ['--no-daemon']]) {
        const py = await remux(['client', 'run', 'localhost', ...via, '--policy', 'home', '--', `python3 -c '${connect}'`], { env, cwd: h.home });
        assert.notEqual(py.code, 0, `${via.join(' ')}: ${py.stdout}`);
        assert.doesNotMatch(py.stdout, /connected/);
      }
    } finally {
      await remux(['daemon', 'stop', '--socket', socket], { env });
    }
  });
});
