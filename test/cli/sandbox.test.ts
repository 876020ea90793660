// End-to-end, as a new user meets it: the default policy (sandbox on), symlinks planted in a tree the
// policy may read, programs that follow them while recursing, and a path swapped between check and open.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { remux, REMUX_BIN, spawnRemux, tempHome } from '../support/cli.js';
import { liveWithArg, parentOf } from '../support/procs.js';

const MARKER = `remux-secret-${process.pid}`;

describe('the OS sandbox by default: symlinks met while recursing, and check-then-use races', () => {
  const h = tempHome();
  // /tmp is readable under the read_only template; the secret lies outside every policy path.
  const tree = mkdtempSync(join(tmpdir(), 'remux-links-'));
  const secretDir = mkdtempSync('/var/tmp/remux-secret-');
  const env = { ...h.env, SECRET: secretDir };
  const shadowFirstLine = readFileSync('/etc/shadow', 'utf8').split('\n')[0] as string;

  before(async () => {
    assert.equal((await remux(['config', 'init'], { env })).code, 0);
    writeFileSync(join(secretDir, 'key'), `${MARKER}\n`);
    mkdirSync(join(tree, 'sub'));
    writeFileSync(join(tree, 'plain'), 'root is here\n');
    symlinkSync('/etc/shadow', join(tree, 'sub', 'shadow-link'));
    symlinkSync(join(secretDir, 'key'), join(tree, 'sub', 'key-link'));
    symlinkSync('/etc', join(tree, 'etcdir'));
    symlinkSync(secretDir, join(tree, 'secretdir'));
    // The same policy with the sandbox turned off, as a user would write it.
    const policies = readFileSync(join(h.home, 'policies.yaml'), 'utf8');
    writeFileSync(join(h.home, 'policies.yaml'), policies.replace(/^ {2}read_only:\n(( {4}.*|\s*#.*)\n)*/m, (m) => m + m.replace('read_only:', 'static_read_only:').replace('sandbox: true', 'sandbox: false')));
  });
  after(() => {
    h.remove();
    rmSync(tree, { recursive: true, force: true });
    rmSync(secretDir, { recursive: true, force: true });
  });

  const commands = [`grep -R root ${tree}`, `grep -r --dereference-recursive -e root -e ${MARKER} ${tree}`, `find -L ${tree}`, `du -L -a ${tree}`, `ls -LR ${tree}`];

  for (const command of commands) {
    test(`${command}: in the sandbox it cannot reach /etc/shadow, the secret, or the host's /etc`, async () => {
      const r = await remux(['client', 'run', 'localhost', '--', command], { env, cwd: tree });
      assert.notEqual(r.code, 77, r.stderr);
      assert.ok(!r.stdout.includes(shadowFirstLine), 'a line of /etc/shadow was printed');
      assert.ok(!r.stdout.includes(MARKER) && !r.stdout.includes('key-link:'), r.stdout);
      // The sandbox's /etc holds a few files programs need; the host's has many more.
      for (const hostOnly of ['shadow', 'hostname', 'ssh', 'fstab']) assert.ok(!new RegExp(`etcdir/${hostOnly}\\b`).test(r.stdout), `${hostOnly} listed:\n${r.stdout}`);
      assert.match(r.stdout, /plain/, 'the allowed tree itself was read');
    });

    test(`${command}: refused with static checks only, naming why`, async () => {
      const r = await remux(['client', 'run', 'localhost', '--policy', 'static_read_only', '--', command], { env, cwd: tree });
      assert.equal(r.code, 77, r.stdout + r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /only the OS sandbox can confine; this command would run with static checks only \(policy static_read_only has sandbox: false\)/);
    });
  }

  test('a deny rule inside a tree the policy shows holds inside the sandbox too, against a link met while recursing', async () => {
    const masked = `policies:
  masked:
    capabilities:
      - { operation: execute_binary, resource: grep }
      - { operation: read_file, resource: [${tree}/**, ${secretDir}/**] }
      - { operation: list_directory, resource: [${tree}/**, ${secretDir}/**] }
      - { operation: read_file, resource: ${secretDir}/key*, effect: deny }
      - { operation: write_stdout, resource: null }
`;
    const file = join(h.home, 'masked.yaml');
    writeFileSync(file, masked);
    // Nothing denied lies under the tree, so the static check allows the recursion; tree/sub/key-link leads to the denied key.
    const r = await remux(['client', 'run', 'localhost', '--policy', 'masked', '--', `grep -R -e root -e ${MARKER} ${tree}`], { env: { ...env, REMUX_POLICY_CONFIG: file }, cwd: tree });
    assert.notEqual(r.code, 77, r.stderr);
    assert.match(r.stdout, /plain:root is here/, r.stderr);
    assert.ok(!r.stdout.includes(MARKER), r.stdout);
  });

  test('a path flipped between an allowed file and a link to a secret: zero leaks in the sandbox', async () => {
    const race = join(tree, 'race');
    const commandsFile = join(h.home, 'race.txt');
    const runs = 300;
    writeFileSync(commandsFile, `cat ${race}\n`.repeat(runs));
    // Atomic renames: at every instant the path is either the allowed file or the link.
    const flipper = spawn(process.execPath, [
      '-e',
      `const fs = require('fs'); const [race, secret] = process.argv.slice(1); const end = Date.now() + 60000; let n = 0;
       while (Date.now() < end) {
         fs.writeFileSync(race + '.f', 'allowed content\\n'); fs.renameSync(race + '.f', race);
         try { fs.unlinkSync(race + '.l'); } catch {} fs.symlinkSync(secret, race + '.l'); fs.renameSync(race + '.l', race);
         if (++n % 1000 === 0 && !fs.existsSync(race + '.run')) break;
       }`,
      race,
      join(secretDir, 'key'),
    ]);
    writeFileSync(`${race}.run`, '');
    try {
      const r = await remux(['client', 'batch', 'localhost', '--commands-file', commandsFile], { env, cwd: tree, timeoutMs: 120_000 });
      assert.ok(!r.stdout.includes(MARKER) && !r.stderr.includes(MARKER), 'the secret leaked');
      const allowed = r.stdout.split('\n').filter((l) => l.endsWith('allowed content')).length;
      // The race was really run: many reads saw the allowed file, others were refused or failed inside.
      assert.ok(allowed > 0 && allowed < runs, `allowed reads: ${allowed} of ${runs}`);
    } finally {
      rmSync(`${race}.run`, { force: true });
      flipper.kill();
    }
  });

  test('a working directory the sandbox does not show: `/` of the sandbox by default, an error when asked for', async () => {
    const implicit = await remux(['client', 'run', 'localhost', '--', 'uptime'], { env, cwd: secretDir });
    assert.equal(implicit.code, 0, implicit.stderr);
    // Relative paths are taken against `/` then: the policy check says so.
    const relative = await remux(['client', 'run', 'localhost', '--', 'cat key'], { env, cwd: secretDir });
    assert.equal(relative.code, 77);
    assert.match(relative.stderr, /read_file \/key: no rule of policy read_only allows it/);
    const shown = await remux(['client', 'run', 'localhost', '--', 'cat plain'], { env, cwd: tree });
    assert.equal(shown.stdout, 'root is here\n');
    const r = await remux(['client', 'run', 'localhost', '--cwd', secretDir, '--', 'uptime'], { env });
    assert.equal(r.code, 125);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      `remux: working directory ${secretDir} is not visible in the sandbox, which shows only the policy's paths (/tmp, /var/log): pass one of them with --cwd DIR, or run remux from there\n`,
    );
  });

  test('policy check and policy list show how a command is enforced', async () => {
    const on = await remux(['policy', 'check', 'read_only', '--json', '--', `cat ${tree}/plain`], { env });
    assert.equal(JSON.parse(on.stdout).enforcement, 'sandbox');
    const off = await remux(['policy', 'check', 'static_read_only', '--', `cat ${tree}/plain`], { env });
    assert.match(off.stdout, /static checks only: policy static_read_only has sandbox: false/);
    const ran = await remux(['client', 'run', 'localhost', '--json', '--', `cat ${tree}/plain`], { env });
    assert.deepEqual([JSON.parse(ran.stdout).decision.enforcement, JSON.parse(ran.stdout).decision.outside], ['sandbox', []]);
    const ranStatic = await remux(['client', 'run', 'localhost', '--json', '--policy', 'static_read_only', '--', `cat ${tree}/plain`], { env });
    assert.deepEqual([JSON.parse(ranStatic.stdout).decision.enforcement, JSON.parse(ranStatic.stdout).decision.outside], ['static checks only', []]);
    // ps runs on the host, grep in the sandbox (read_only's rule for host-inspection programs says sandbox: false).
    const letOut = await remux(['client', 'run', 'localhost', '--json', '--', 'ps -e | grep -c .'], { env });
    assert.deepEqual([JSON.parse(letOut.stdout).decision.enforcement, JSON.parse(letOut.stdout).decision.outside], ['sandbox', [0]], letOut.stderr);
    const list = await remux(['policy', 'list', '--json'], { env });
    const modes = Object.fromEntries((JSON.parse(list.stdout) as Array<{ name: string; sandbox: string }>).map((p) => [p.name, p.sandbox]));
    assert.deepEqual([modes.read_only, modes.static_read_only], ['on', 'off']);
    const health = await remux(['status', 'health', '--json'], { env });
    const checks = JSON.parse(health.stdout).checks as Array<{ name: string; warning?: boolean; detail: string }>;
    assert.match(checks.find((c) => c.name === 'policy static_read_only')?.detail ?? '', /static checks only \(sandbox: false at .*policies\.yaml:\d+\)/);
  });
});

describe('policy check answers for the directory a run would start in', () => {
  const h = tempHome();
  // A caller's directory that the read_only policy's sandbox does not show: a run starts in its `/`.
  const hidden = mkdtempSync('/var/tmp/remux-cwd-');
  after(() => {
    h.remove();
    rmSync(hidden, { recursive: true, force: true });
  });

  test('adversarial: a relative path is checked from `/` of the sandbox, as the run resolves it, not from the caller directory', async () => {
    assert.equal((await remux(['config', 'init'], { env: h.env })).code, 0);
    writeFileSync(join(hidden, 'notes'), 'x\n');
    mkdirSync(join(hidden, 'var', 'log'), { recursive: true });
    for (const [command, effect] of [
      ['ls var/log', 'ALLOW'], // /var/log, which read_only shows
      ['cat notes', 'DENY'], // /notes: nothing grants it, and the caller's notes are not there
    ] as const) {
      const check = await remux(['policy', 'check', 'read_only', '--', command], { env: h.env, cwd: hidden });
      assert.match(check.stdout, new RegExp(`^${effect} under policy read_only`), check.stdout + check.stderr);
      assert.match(check.stdout, /^ {2}working directory: \/$/m);
      const run = await remux(['client', 'run', 'localhost', '--', command], { env: h.env, cwd: hidden });
      assert.equal(run.code, effect === 'ALLOW' ? 0 : 77, run.stdout + run.stderr);
    }
    // --cwd names the directory itself, as client run --cwd does.
    const named = await remux(['policy', 'check', 'read_only', '--cwd', '/var/log', '--', 'ls .'], { env: h.env, cwd: hidden });
    assert.match(named.stdout, /^ALLOW/);
  });
});

describe('descriptors remux inherited stay out of the sandbox', () => {
  const h = tempHome();
  const secret = join(mkdtempSync('/var/tmp/remux-inherited-'), 'secret');
  after(() => {
    h.remove();
    rmSync(join(secret, '..'), { recursive: true, force: true });
  });

  test('adversarial: a file left open by whoever started remux is not readable inside as /proc/2/fd/N (the holder bwrap starts)', async () => {
    assert.equal((await remux(['config', 'init'], { env: h.env })).code, 0);
    writeFileSync(secret, `${MARKER}\n`);
    writeFileSync(
      join(h.home, 'policies.yaml'),
      'policies:\n  procs:\n    capabilities:\n      - { operation: execute_binary, resource: ls|cat }\n      - { operation: read_file, resource: /proc/** }\n      - { operation: list_directory, resource: /proc/** }\n      - { operation: write_stdout, resource: null }\n',
    );
    const fd = openSync(secret, 'r');
    try {
      // As a shell's `40<secret` (or a supervisor's stray descriptor): the child gets it as fd 40, without
      // close-on-exec. (Node's own start-up reuses low numbers, so a low one would prove nothing.)
      const child = spawn(REMUX_BIN, ['client', 'run', 'localhost', '--policy', 'procs', '--', 'ls /proc/1/fd /proc/2/fd && cat /proc/2/fd/40'], {
        env: { ...process.env, ...h.env },
        cwd: '/',
        stdio: ['ignore', 'pipe', 'pipe', ...Array<'ignore'>(37).fill('ignore'), fd],
      });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      await new Promise((resolve) => child.once('close', resolve));
      assert.match(out, /^\/proc\/2\/fd:\n0\n1\n2\n/m, 'the listing ran in the sandbox');
      assert.doesNotMatch(out, /^40$/m);
      assert.equal(out.includes(MARKER), false, out);
    } finally {
      closeSync(fd);
    }
  });
});

describe('sandboxes live as long as the process that runs the commands', () => {
  const h = tempHome();
  const env = h.env;
  /** bwrap holders (remux's long-lived sandboxes) whose parent is `pid`. */
  const holdersOf = (pid: number): number[] =>
    readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .flatMap((d) => {
        try {
          const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
          const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
          const args = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
          return ppid === pid && args.includes('--args') && args.includes('--info-fd') ? [Number(d)] : [];
        } catch {
          return [];
        }
      });
  const daemonPid = async (): Promise<number> => (JSON.parse((await remux(['daemon', 'status', '--json'], { env })).stdout) as { pid: number }).pid;

  before(async () => assert.equal((await remux(['config', 'init'], { env })).code, 0));
  after(async () => {
    await remux(['daemon', 'stop'], { env });
    h.remove();
  });

  test('the daemon keeps one sandbox for its clients, and it ends with the daemon', async () => {
    // config init made a principal, so the daemon serves HTTP too: on a free port, never a fixed one.
    assert.equal((await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env })).code, 0);
    const pid = await daemonPid();
    for (let i = 0; i < 3; i++) assert.equal((await remux(['client', 'run', 'localhost', '--', 'uptime'], { env })).code, 0);
    const holders = holdersOf(pid);
    assert.equal(holders.length, 1, 'three clients, one principal and one policy: one sandbox');
    const status = JSON.parse((await remux(['daemon', 'status', '--json'], { env })).stdout) as { sandboxes: Array<{ owner: string; shows: string[]; commands: number; stageServer: boolean }> };
    assert.deepEqual(status.sandboxes.map((s) => [s.owner, s.shows, s.commands, s.stageServer]), [[`cli:${userInfo().username}`, ['/tmp', '/var/log'], 0, true]]);
    assert.match((await remux(['daemon', 'status'], { env })).stdout, /sandboxes: 1 running\n {2}for cli:\S+, since \S+: 0 commands running; shows \/tmp, \/var\/log; its stage server forks commands\n/);
    // The stage server: remux-sandbox-enter --serve under the daemon's remux-spawner.
    const servers = liveWithArg('--serve').filter((p) => parentOf(parentOf(p)) === pid);
    assert.equal(servers.length, 1);
    assert.equal((await remux(['daemon', 'stop'], { env })).code, 0);
    const gone = Date.now() + 5000;
    const running = (p: number): boolean => {
      try {
        return !/\) [ZX] /.test(readFileSync(`/proc/${p}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    const left = (): number[] => [...holders, ...servers].filter(running);
    while (left().length > 0 && Date.now() < gone) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(left(), [], 'a sandbox or its stage server outlived the daemon');
  });

  test('in-process, the sandbox ends when the command does', async () => {
    const followed = join(h.home, 'followed.log');
    writeFileSync(followed, '');
    // read_only reads /tmp, where the test home is: tail -f runs until remux is killed.
    const child = spawnRemux(['client', 'run', 'localhost', '--no-daemon', '--', `tail -f ${followed}`], { env });
    let holders: number[] = [];
    const until = Date.now() + 10_000;
    while (holders.length === 0 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      holders = child.pid === undefined ? [] : holdersOf(child.pid);
    }
    assert.equal(holders.length, 1);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('close', resolve));
    const gone = Date.now() + 5000;
    while (holders.some((p) => existsSync(`/proc/${p}`)) && Date.now() < gone) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(holders.filter((p) => existsSync(`/proc/${p}`)), [], 'the sandbox outlived a SIGKILLed remux');
    const tails = readdirSync('/proc').filter((d) => /^\d+$/.test(d) && (() => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8') === `tail\0-f\0${followed}\0`;
      } catch {
        return false;
      }
    })());
    assert.deepEqual(tails, [], 'the command outlived its sandbox');
  });
});

describe('execute_code: a Makefile runs inside the OS sandbox (real bubblewrap), bounded by the policy paths', () => {
  const h = tempHome();
  // Outside /tmp, whose sandbox view is private unless a policy shows it.
  const root = mkdtempSync('/var/tmp/remux-code-');
  const app = join(root, 'projects', 'app');
  const shown = join(root, 'shown'); //    visible read-only (read_file), never writable
  const hidden = join(root, 'hidden'); //  not in the policy at all
  const policyFile = join(h.home, 'code.yaml');
  const env = { ...h.env, REMUX_POLICY_CONFIG: policyFile, HOME: root };

  before(async () => {
    assert.equal((await remux(['config', 'init'], { env: h.env })).code, 0);
    for (const dir of [app, shown, hidden]) mkdirSync(dir, { recursive: true });
    writeFileSync(join(shown, 'victim'), 'keep me\n');
    writeFileSync(join(hidden, 'victim'), 'keep me too\n');
    // The route around a static `rm` check: the recipe is code remux never sees.
    writeFileSync(join(app, 'Makefile'), `all:\n\t-rm -f ${shown}/victim\n\t-rm -rf ${hidden}\n\t-rm -f made.txt && echo made > made.txt\n\tcat ${shown}/victim\n`);
    const caps = `
      - { operation: execute_binary, resource: "make|rm|cat|ls" }
      - { operation: execute_code, resource: make }
      - { operation: read_file, resource: ["${app}/**", "${shown}/**"] }
      - { operation: list_directory, resource: ["${app}/**", "${shown}/**"] }
      - { operation: write_file, resource: "${app}/**/*" }
      - { operation: write_stdout, resource: null }`;
    writeFileSync(policyFile, `policies:\n  dev:\n    capabilities:${caps}\n  dev_static:\n    sandbox: false\n    capabilities:${caps}\n`);
  });
  after(() => {
    h.remove();
    rmSync(root, { recursive: true, force: true });
  });

  test('make runs, writes its workspace, and cannot delete outside the write paths', async () => {
    const r = await remux(['client', 'run', 'localhost', '--policy', 'dev', '--', `make -C ${app}`], { env, cwd: app });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(app, 'made.txt'), 'utf8'), 'made\n', 'the recipe ran, in the workspace');
    assert.match(r.stderr, /Read-only file system/, 'rm of a visible file outside the write paths failed inside');
    assert.equal(readFileSync(join(shown, 'victim'), 'utf8'), 'keep me\n');
    assert.equal(readFileSync(join(hidden, 'victim'), 'utf8'), 'keep me too\n', 'a tree outside the policy is not even there');
    assert.match(r.stdout, /keep me/);
    // The same rm, typed directly, is refused by the static check before anything runs.
    const direct = await remux(['client', 'run', 'localhost', '--policy', 'dev', '--', `rm -f ${shown}/victim`], { env, cwd: app });
    assert.equal(direct.code, 77);
    assert.match(direct.stderr, new RegExp(`write_file ${shown}/victim: no rule of policy dev allows it`));
  });

  test('with static checks only the Makefile is refused before anything runs, naming the rule and the fix', async () => {
    rmSync(join(app, 'made.txt'), { force: true });
    const r = await remux(['client', 'run', 'localhost', '--policy', 'dev_static', '--', 'make'], { env, cwd: app });
    assert.equal(r.code, 77, r.stdout + r.stderr);
    assert.match(r.stderr, /execute_code \S+make: make runs a Makefile's recipes, code that remux cannot check; allowed by dev_static#1 \(code\.yaml:\d+\) only inside the OS sandbox, but this command would run with static checks only \(policy dev_static has sandbox: false\); add unsandboxed: true to that rule/);
    assert.ok(!existsSync(join(app, 'made.txt')), 'nothing ran');
  });

  test('cd DIR && make: runs in DIR; a cd outside the policy is refused', async () => {
    rmSync(join(app, 'made.txt'), { force: true });
    const r = await remux(['client', 'run', 'localhost', '--policy', 'dev', '--', `cd ${app} && make && ls`], { env, cwd: '/' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Makefile\nmade\.txt\n$/m, 'ls ran in the directory too');
    const out = await remux(['client', 'run', 'localhost', '--policy', 'dev', '--', `cd ${hidden} && ls`], { env, cwd: app });
    assert.equal(out.code, 77);
    assert.match(out.stderr, new RegExp(`list_directory ${hidden}: no rule of policy dev allows it`));
  });

  test('policy check says which layer bounds each stage', async () => {
    const r = await remux(['policy', 'check', 'dev', '--', `cd ${app} && make | cat`], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ALLOW under policy dev/);
    assert.match(r.stdout, new RegExp(`working directory: ${app}\n`));
    assert.match(r.stdout, /stage 2 {2}bounded by the OS sandbox alone: make runs a Makefile's recipes, code that remux cannot check\n/);
    assert.match(r.stdout, /stage 3 {2}bounded by static checks, then the OS sandbox\n/);
    const j = JSON.parse((await remux(['policy', 'check', 'dev', '--json', '--', 'make'], { env, cwd: app })).stdout);
    assert.equal(j.cwd, app);
    assert.deepEqual(j.bounds, [{ stage: 0, layer: 'sandbox', code: "make runs a Makefile's recipes, code that remux cannot check" }]);
    assert.ok(j.checks.some((c: { operation: string; effect: string }) => c.operation === 'execute_code' && c.effect === 'allow'));
  });
});
