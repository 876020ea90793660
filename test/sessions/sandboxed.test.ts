// A session's startup command under a sandboxed policy, on this machine: the pane's program is a real
// bubblewrap running the command for the pane's life (tmux on a private socket in a temp dir). What it
// may write, what a path swapped after the check reaches (the kernel has the last word), the tmux
// server out of reach, the pane's terminal and environment, and what the audit record says.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { createContext, type GatewayContext } from '../../src/core/context.js';
import { EXIT } from '../../src/core/exit-codes.js';
import { perform } from '../../src/core/perform.js';
import type { PerformResult, SessionAction } from '../../src/core/types.js';
import { bwrapAvailable } from '../../src/exec/sandbox.js';
import { localPaneProgram } from '../../src/sessions/pane-sandbox.js';

const bwrap = bwrapAvailable();

describe('a startup command in a sandboxed pane, on the local host', { timeout: 60_000, skip: bwrap.ok ? false : `no usable bubblewrap: ${bwrap.reason}` }, () => {
  const home = mkdtempSync(join(tmpdir(), 'remux-pane-'));
  const work = join(home, 'work');
  const socket = join(home, 'tmux.sock');
  const policies = (): string => `policies:
  pane:
    capabilities:
      - { operation: execute_binary, resource: sleep|echo|touch|ls|env|tty|stty|cat }
      - { operation: read_file, resource: ${home}/** }
      - { operation: list_directory, resource: ${home}/** }
      - { operation: write_file, resource: ${work}/** }
      - { operation: write_stdout, resource: null }
  reports:
    capabilities:
      - { operation: execute_binary, resource: ps|sleep, sandbox: false }
      - { operation: execute_binary, resource: cat }
      - { operation: write_stdout, resource: null }
`;
  let ctx: GatewayContext;
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
  const run = async (action: SessionAction): Promise<PerformResult & { out: string }> => {
    let out = '';
    const r = await perform(ctx, action, { onStdout: (c) => (out += c.toString()), onStderr: () => {} });
    return { ...r, out };
  };
  const start = (session: string, command: string, callerCwd = work): Promise<PerformResult> =>
    run({ kind: 'session.new', host: 'box', session, command, policy: 'pane', callerCwd });
  /** Polls the pane until `pattern` shows. */
  const paneShows = async (name: string, pattern: RegExp): Promise<string> => {
    let text = '';
    for (let i = 0; i < 150 && !pattern.test(text); i++) {
      if (i > 0) await sleep(20);
      text = (await run({ kind: 'session.capture', host: 'box', session: name })).out;
    }
    assert.match(text, pattern);
    return text;
  };
  const panePid = (name: string): number => Number(tmux('display-message', '-p', '-t', `=${name}:`, '#{pane_pid}').trim());
  /** A process and all its descendants. */
  const tree = (pid: number): number[] => {
    let children: number[] = [];
    try {
      children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
    } catch {
      // pgrep exits 1 when there are none.
    }
    return [pid, ...children.flatMap(tree)];
  };

  before(() => {
    mkdirSync(join(work, 'inside'), { recursive: true });
    mkdirSync(join(home, 'readonly'));
    mkdirSync(join(work, 'bin'));
    writeFileSync(join(home, 'policies.yaml'), policies());
    writeFileSync(join(home, 'hosts.yaml'), `hosts:\n  box:\n    transport: local\n    tmux_socket: ${socket}\n`);
    ctx = createContext({ env: { REMUX_HOME: home, HOME: home } });
  });
  after(async () => {
    try {
      tmux('kill-server');
    } catch {
      // No server left.
    }
    await ctx.close();
    for (let i = 0; i < 100 && existsSync(socket); i++) await sleep(10);
    rmSync(home, { recursive: true, force: true });
  });

  test('runs in bubblewrap for the life of the pane: its output shows, a granted write lands, the audit record says sandboxed', async () => {
    const made = await start('boxed', `echo started; env; tty; stty size; touch ${work}/made && echo made-ok; sleep 30`);
    assert.equal(made.outcome, 'ok', made.message ?? '');
    assert.equal(made.decision?.sandbox, true);
    const pane = await paneShows('boxed', /^made-ok$/m);
    assert.match(pane, /^started$/m);
    assert.ok(existsSync(join(work, 'made')));
    // The pane's program is bwrap itself; the tmux server stays outside.
    assert.equal(readlinkSync(`/proc/${panePid('boxed')}/exe`), bwrap.path);
    // The pane is the sandbox's controlling terminal, sized by tmux.
    assert.match(pane, /^\/dev\/console$/m);
    assert.match(pane, /^\d+ \d+$/m);
    // The environment: PASSED_ENV from the pane (TERM as tmux sets it for panes), nothing else of tmux's.
    const term = tmux('show-options', '-gv', 'default-terminal').trim();
    assert.match(pane, new RegExp(`^TERM=${term}$`, 'm'));
    assert.match(pane, /^PWD=.*\/work$/m);
    assert.doesNotMatch(pane, /^(TMUX|TMUX_PANE|REMUX_HOME)=/m);
    const record = ctx.audit.list({}).filter((a) => a.begin.operation === 'session.new' && a.begin.resource?.endsWith(':boxed')).at(-1);
    assert.equal(record?.begin.decision, 'allow');
    assert.match(record?.begin.reason ?? '', /^allowed: all \d+ checks pass under policy pane; runs in the OS sandbox \(bubblewrap\) for the life of the session$/);
    // Killing the session ends the sandbox and everything in it (the sleep).
    const inside = tree(panePid('boxed'));
    assert.ok(inside.length >= 3, `bwrap, its child and the command: ${inside.join(' ')}`);
    assert.equal((await run({ kind: 'session.kill', host: 'box', session: 'boxed' })).outcome, 'ok');
    for (let i = 0; i < 100 && inside.some((pid) => existsSync(`/proc/${pid}`)); i++) await sleep(20);
    assert.deepEqual(inside.filter((pid) => existsSync(`/proc/${pid}`)), []);
  });

  test('adversarial: paths swapped after the check reach nothing the policy does not grant', async () => {
    // At the check: a link into the writable tree, and a program name that is `ls`.
    const link = join(work, 'link');
    const etc = join(work, 'etc');
    const program = join(work, 'bin', 'x');
    symlinkSync(join(work, 'inside'), link);
    symlinkSync(join(work, 'inside'), etc);
    symlinkSync('/usr/bin/ls', program);
    const command = [
      'sleep 1',
      `touch ${link}/pwned || echo readonly-refused`,
      `touch ${etc}/remux-pane-escape && echo etc-private`,
      `${program} -S ${socket} ls || echo tmux-refused`,
      'sleep 30',
    ].join('; ');
    const made = await start('swapped', command);
    assert.equal(made.outcome, 'ok', made.message ?? '');
    // Then, while the pane sleeps: the links point at a read-only tree and at /etc, and `x` is tmux,
    // which would ask the server (its socket is in a tree the policy shows) to run anything outside.
    for (const [path, to] of [[link, join(home, 'readonly')], [etc, '/etc'], [program, '/usr/bin/tmux']] as const) {
      rmSync(path);
      symlinkSync(to, path);
    }
    const pane = await paneShows('swapped', /tmux-refused/);
    assert.match(pane, /Read-only file system\nreadonly-refused/);
    // The sandbox's /etc is its own (a few files bound read-only in its private root): nothing reaches the host's.
    assert.match(pane, /^etc-private$/m);
    assert.doesNotMatch(pane, /^\w+: 1 windows/m, "the sandbox cannot list the server's sessions");
    assert.ok(!existsSync(join(home, 'readonly', 'pwned')));
    assert.ok(!existsSync('/etc/remux-pane-escape'));
    // The same client outside the sandbox does reach the server: the test could have failed.
    assert.match(execFileSync(program, ['-S', socket, 'ls'], { encoding: 'utf8' }), /^swapped: /m);
  });

  test('a working directory the sandbox does not show starts it in / of the sandbox; one that does not exist is an error', async () => {
    const rooted = await start('rooted', 'env; sleep 30', '/var');
    assert.equal(rooted.outcome, 'ok', rooted.message ?? '');
    await paneShows('rooted', /^PWD=\/$/m);
    const missing = await start('missing', 'sleep 30', join(home, 'gone'));
    assert.equal(missing.exitCode, EXIT.FAILURE);
    assert.equal(missing.message, `cannot use working directory ${join(home, 'gone')}: no such directory`);
    assert.doesNotMatch(tmux('list-sessions', '-F', '#{session_name}'), /^missing$/m);
  });

  test('every stage let out by a rule with sandbox: false: the pane runs outside the sandbox, and ps lists the host', async () => {
    // A process of the host, which a ps in any sandbox cannot see.
    const marker = spawn('sleep', ['12345.5'], { stdio: 'ignore' });
    try {
      const made = await run({ kind: 'session.new', host: 'box', session: 'host', command: `ps -o args= -p ${marker.pid}; sleep 30`, policy: 'reports', callerCwd: work });
      assert.equal(made.outcome, 'ok', made.message ?? '');
      await paneShows('host', /^sleep 12345\.5$/m);
      assert.notEqual(readlinkSync(`/proc/${panePid('host')}/exe`), bwrap.path, 'the pane is no sandbox');
      const record = ctx.audit.list({}).filter((a) => a.begin.operation === 'session.new' && a.begin.resource?.endsWith(':host')).at(-1);
      assert.match(record?.begin.reason ?? '', /; outside the OS sandbox, with static checks only: the rule of every stage says sandbox: false$/);
    } finally {
      marker.kill();
    }
  });

  test('some stages let out, others not: refused (a pane runs in one sandbox or none), rather than ps reporting on the sandbox', async () => {
    const mixed = await run({ kind: 'session.new', host: 'box', session: 'mixed', command: 'ps -eo args | cat', policy: 'reports', callerCwd: work });
    assert.equal(mixed.exitCode, EXIT.DENIED);
    assert.match(mixed.message ?? '', /^sandbox: false lets stage 1 \(ps\) by rule reports#0 \(policies\.yaml:\d+\) out of the OS sandbox and keeps the other stages in it, but a session's pane runs in one sandbox for its whole life, or in none/);
    assert.doesNotMatch(tmux('list-sessions', '-F', '#{session_name}'), /^mixed$/m);
  });

  test('a denied command is still refused with its rule, and creates nothing', async () => {
    const denied = await start('denied', `rm -rf ${work}`);
    assert.equal(denied.exitCode, EXIT.DENIED);
    assert.match(denied.message ?? '', /execute_binary \/usr\/bin\/rm: no rule of policy pane allows it/);
    const writes = await start('denied', 'touch /etc/remux-pane-x');
    assert.equal(writes.exitCode, EXIT.DENIED);
    assert.match(writes.message ?? '', /write_file \/etc\/remux-pane-x: no rule of policy pane allows it/);
    assert.doesNotMatch(tmux('list-sessions', '-F', '#{session_name}'), /^denied$/m);
  });
});

describe("a pane's sandbox made while a socket it covers went away", { skip: bwrap.ok ? false : `no usable bubblewrap: ${bwrap.reason}` }, () => {
  test('the cover of a socket gone since the options were made is left out: the pane starts', async () => {
    const tree = mkdtempSync(join(tmpdir(), 'remux-pane-gone-'));
    const sock = join(tree, 'api.sock');
    const server = net.createServer((c) => c.end('api'));
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    // The host's sockets are looked at once a second (exec/sandbox.ts): one made since the last look (this
    // file's probe of bubblewrap, when run alone) is covered from the next.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    try {
      const program = localPaneProgram({ cwd: tree, spec: { read: [tree], write: [], hide: [], readOnly: [], network: false, owner: 'pane-gone' }, securePath: '/usr/bin:/bin', shellCommand: 'echo inside' });
      assert.ok(Array.isArray(program), JSON.stringify(program));
      assert.ok(program.join(' ').includes(`--ro-bind /dev/null ${sock}`), 'the live socket is covered');
      await new Promise((resolve) => server.close(resolve));
      assert.equal(existsSync(sock), false);
      // As tmux starts it, a moment later (TMUX unset here: no tmux socket to cover).
      const r = spawnSync(program[0]!, program.slice(1), { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
      assert.deepEqual([r.status, r.stdout], [0, 'inside\n'], r.stderr);
    } finally {
      server.close();
      rmSync(tree, { recursive: true, force: true });
    }
  });
});

describe("a pane's sandbox keeps bwrap's options out of sight", { skip: bwrap.ok ? false : `no usable bubblewrap: ${bwrap.reason}` }, () => {
  test("adversarial: no /proc/PID/cmdline inside names a hidden path (bwrap reads its options from a file it closes); no file is left", () => {
    const tree = mkdtempSync(join(tmpdir(), 'remux-pane-args-'));
    const scratch = mkdtempSync(join(tmpdir(), 'remux-pane-tmp-'));
    mkdirSync(join(tree, 'hidden-dir'));
    writeFileSync(join(tree, 'hidden-file'), 'secret\n');
    try {
      const spec = { read: [tree], write: [], hide: [join(tree, 'hidden-dir'), join(tree, 'hidden-file')], readOnly: [], network: false, owner: 'pane-args' };
      const look = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done; ls /proc/1/fd /proc/self/fd";
      const program = localPaneProgram({ cwd: tree, spec, securePath: '/usr/bin:/bin', shellCommand: look });
      assert.ok(Array.isArray(program), JSON.stringify(program));
      const r = spawnSync(program[0]!, program.slice(1), { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', TMPDIR: scratch } });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^\S*bwrap --args 9 -- \/bin\/sh -c /m, "the listing shows the sandbox's pid 1");
      for (const name of ['hidden-dir', 'hidden-file', '--ro-bind']) assert.equal(r.stdout.includes(name), false, `${name} in:\n${r.stdout}`);
      // The options' file: closed by bwrap (no fd 9 inside) and removed before bwrap ran.
      assert.doesNotMatch(r.stdout, /^9$/m);
      assert.deepEqual(readdirSync(scratch), []);
    } finally {
      rmSync(tree, { recursive: true, force: true });
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
