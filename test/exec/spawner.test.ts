// remux-spawner (native/spawner.c, src/exec/spawner.ts): stages are started by it, not forked from remux,
// get nothing of it (fds, environment), and a spawner that dies fails its commands cleanly.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { bwrapAvailable } from '../../src/exec/index.js';
import { spawnPipeline, SpawnerDiedError } from '../../src/exec/spawner.js';
import { childrenOf, heldStages, list, processGone, run, spawnerPids, stage, tmpdir, to, PATH } from './helpers.js';

const bwrap = bwrapAvailable();

/** Whether every one of `pids` is gone within 5 s. */
async function allGone(pids: number[]): Promise<boolean> {
  const deadline = Date.now() + 5000;
  while (!pids.every((pid) => processGone(pid)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  return pids.every((pid) => processGone(pid));
}

describe('remux-spawner', () => {
  test('stages are children of remux-spawner, not forks of this process', async () => {
    const r = await run(['sh', '-c', 'echo $PPID']);
    assert.equal(r.res.exitCode, 0, r.err);
    const parent = Number(r.out.trim());
    assert.notEqual(parent, process.pid);
    assert.deepEqual(spawnerPids(), [parent]);
  });

  test('a stage gets its stdio and nothing else: no fd of the spawner, no environment of its own', async () => {
    const fds = await run(['ls', '/proc/self/fd']);
    assert.equal(fds.out, '0\n1\n2\n3\n', 'fd 3 is ls reading the directory');
    const env = await run(['env']);
    assert.equal(env.out, `PATH=${PATH}\n`);
  });

  // As SCHED_BATCH (tried: no wake-up preemption of remux), the spawner woken by a held stage's exec waited
  // behind the program it had just let run, and reported its start only once it had ended (0.7 ms for true).
  test('the spawner and its stages run with remux\'s own scheduling policy, held or not', async () => {
    for (const durable of [undefined, Promise.resolve()]) {
      const r = await run(['chrt', '-p', '0'], durable ? { durable } : {});
      assert.match(r.out, /^pid \d+'s current scheduling policy: SCHED_OTHER\n/, r.err);
    }
    const [spawner] = spawnerPids();
    assert.match(execFileSync('chrt', ['-p', String(spawner)], { encoding: 'utf8' }), /scheduling policy: SCHED_OTHER/);
  });

  test('inside the sandbox too: neither the namespaces nor the report pipe reach the program', { skip: bwrap.ok ? false : `bwrap unusable: ${bwrap.reason}` }, async () => {
    const dir = fs.realpathSync(tmpdir());
    const sandbox = { read: [dir], write: [], hide: [], readOnly: [], network: false, owner: 'spawner-test' };
    const r = await run(['ls', '/proc/self/fd'], { cwd: dir, sandbox });
    assert.equal(r.res.exitCode, 0, r.err);
    assert.equal(r.out, '0\n1\n2\n3\n');
  });

  test('a stage killed by a signal without a name (real-time) reports 128+N', async () => {
    const r = await run(['sh', '-c', 'kill -35 $$']);
    assert.equal(r.res.exitCode, 128 + 35);
    assert.equal(r.res.signal, null);
  });

  test('concurrent commands each get their own output and status', async () => {
    const runs = await Promise.all(Array.from({ length: 20 }, (_, i) => run(['sh', '-c', `echo out${i}; echo err${i} >&2; exit ${i % 4}`])));
    runs.forEach((r, i) => {
      assert.equal(r.out, `out${i}\n`);
      assert.equal(r.err, `err${i}\n`);
      assert.equal(r.res.exitCode, i % 4);
    });
  });

  test('a NUL byte in an argument, or more arguments than exec takes, is refused; the spawner goes on', async () => {
    await run(['true']);
    const [before] = spawnerPids();
    const r = await run(['echo', 'a\0b']);
    assert.equal(r.res.exitCode, 126);
    assert.equal(r.res.errorKind, 'spawn');
    assert.equal(r.err, 'remux: echo: cannot execute: ERR_INVALID_ARG_VALUE\n');
    const long = await run(['true', ...Array.from({ length: 300_000 }, () => 'argument')]);
    assert.equal(long.res.exitCode, 126);
    assert.equal(long.err, 'remux: true: cannot execute: E2BIG\n');
    const after = await run(['echo', 'ok']);
    assert.equal(after.out, 'ok\n');
    assert.deepEqual(spawnerPids(), [before]);
  });

  test('a spawner killed mid-command: the command fails and its processes end; the next one gets a new spawner', async () => {
    const dir = tmpdir();
    const pidFile = `${dir}/pid`;
    const running = run(['sh', '-c', `echo $$ > ${pidFile}; exec sleep 30`], { timeoutMs: 20_000 });
    while (!fs.existsSync(pidFile) || fs.readFileSync(pidFile, 'utf8') === '') await new Promise((resolve) => setTimeout(resolve, 20));
    const stage = Number(fs.readFileSync(pidFile, 'utf8'));
    const [killed] = spawnerPids();
    process.kill(killed as number, 'SIGKILL');
    const r = await running;
    assert.equal(r.res.exitCode, 126);
    assert.equal(r.res.errorKind, 'spawn');
    // Killed after it reported the start, the stage is known and killed as lost; killed before (a loaded
    // machine may run the stage's first line first), whether it ran is unknown and it died with the spawner.
    assert.match(r.res.error ?? '', /^remux: sh: remux-spawner (stopped while the command ran|exited \(SIGKILL\) before it reported the start: whether the command ran is unknown)$/);
    assert.ok(r.res.durationMs < 5000, `${r.res.durationMs} ms`);
    assert.ok(processGone(stage), 'the stage was killed with its group');
    const next = await run(['echo', 'again']);
    assert.equal(next.out, 'again\n');
    assert.notDeepEqual(spawnerPids(), [killed]);
  });

  test('a spawner killed between starting a stage and reporting it: the start fails as unknown, and the stage dies with it', async () => {
    const dir = tmpdir();
    const pidFile = `${dir}/pid`;
    // The second stage's open of a FIFO blocks the spawner (it waits for each stage's exec) after the first
    // stage runs and before 'started' is sent: the window where only remux-spawner knows the first stage.
    const fifo = `${dir}/fifo`;
    execFileSync('mkfifo', [fifo]);
    const starting = spawnPipeline({
      cwd: '/',
      env: { PATH },
      stages: [
        { program: '/bin/sh', argv: ['sh', '-c', `echo $$ > ${pidFile}; exec sleep 30.8`], fds: ['null', 'null', 'null'], report: false, opens: [] },
        { program: '/bin/true', argv: ['true'], fds: ['null', 'null', 'null'], report: false, opens: [{ fd: 5, flags: fs.constants.O_RDONLY, path: fifo }] },
      ],
    });
    const failed = assert.rejects(starting, (e: Error) => e instanceof SpawnerDiedError && e.message === 'remux-spawner exited (SIGKILL)');
    while (!fs.existsSync(pidFile) || fs.readFileSync(pidFile, 'utf8') === '') await new Promise((resolve) => setTimeout(resolve, 20));
    const stage = Number(fs.readFileSync(pidFile, 'utf8'));
    const [spawner] = spawnerPids();
    // Its children: the first stage, and the second still in its open (holding the spawner's channels).
    let children = childrenOf(spawner as number);
    for (const deadline = Date.now() + 5000; children.length < 2 && Date.now() < deadline; children = childrenOf(spawner as number)) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(children.includes(stage) && children.length === 2, `children ${children.join(', ')}`);
    process.kill(spawner as number, 'SIGKILL');
    assert.ok(await allGone(children), 'a stage outlived its spawner');
    // Nobody ever opens the FIFO: the child in its open died with the spawner, so remux sees the channels close.
    await failed;
  });

  /**
   * A remux of its own (this file's test process must live on) whose one stage runs `script` with
   * `$PIDS` a file the script writes its pids to, one line; resolves once that line is there.
   */
  async function ownRemux(script: string): Promise<{ remux: ChildProcess; spawner: number; pids: number[] }> {
    const pidFile = `${tmpdir()}/pids`;
    const code = `const { spawnPipeline } = await import(${JSON.stringify(new URL('../../src/exec/spawner.js', import.meta.url).href)});
      await spawnPipeline({ cwd: '/', env: { PATH: ${JSON.stringify(PATH)}, PIDS: ${JSON.stringify(pidFile)} }, stages: [{ program: '/bin/sh', argv: ['sh', '-c', ${JSON.stringify(script)}], fds: ['null', 'null', 'null'], report: false, opens: [] }] });
      setInterval(() => {}, 1000);`;
    const remux = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: 'ignore' });
    while (!fs.existsSync(pidFile) || !fs.readFileSync(pidFile, 'utf8').includes('\n')) await new Promise((resolve) => setTimeout(resolve, 20));
    const pids = fs.readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    const spawner = childrenOf(remux.pid as number)[0];
    assert.ok(spawner !== undefined && pids.every((pid) => !processGone(pid)), 'the spawner and the stage run');
    return { remux, spawner, pids };
  }

  test('remux killed with kill -9 mid-command: the spawner kills what it started (grandchildren too) and exits', async () => {
    // The stage leaves a background grandchild in its group, then waits.
    const { remux, spawner, pids } = await ownRemux('sleep 30.5 & echo $$ $! > "$PIDS"; wait');
    remux.kill('SIGKILL');
    assert.ok(await allGone(pids), 'what remux started outlived it');
    assert.ok(await allGone([spawner]), 'the spawner outlived remux');
  });

  test('a spawner killed with kill -9 before remux can act: its stage dies with it', async (t) => {
    // remux is stopped, so it cannot kill the stage it knows of: this is the case of a spawner killed
    // between starting a stage and telling remux its pid, where only the stage's parent-death signal acts.
    const { remux, spawner, pids } = await ownRemux('echo $$ > "$PIDS"; exec sleep 30.6');
    t.after(() => void remux.kill('SIGKILL'));
    remux.kill('SIGSTOP');
    process.kill(spawner, 'SIGKILL');
    assert.ok(await allGone(pids), 'the stage outlived its spawner');
  });
});

/** A promise to settle from outside, as the audit store settles a begin. */
function deferred(): { promise: Promise<void>; resolve(): void; reject(e: Error): void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 5000; !ok() && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(ok(), what);
}

describe('a command held until its audit begin is durable (ExecRequest.durable)', () => {
  test('its stage is forked and set up at once, and runs its program only once the begin is durable', async () => {
    const file = `${tmpdir()}/ran`;
    const begin = deferred();
    const running = run(['touch', file], { durable: begin.promise });
    await until('the stage is forked and waits', () => heldStages().length === 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(fs.existsSync(file), false, 'the program ran before its begin was durable');
    begin.resolve();
    const r = await running;
    assert.equal(r.res.exitCode, 0, r.err);
    assert.ok(fs.existsSync(file));
    assert.deepEqual(heldStages(), []);
  });

  test('a begin that fails: the held stage is killed unrun, nothing is said on stderr, and what follows `&&` does not run', async () => {
    const dir = tmpdir();
    const begin = deferred();
    const running = run(list(['touch', `${dir}/a`], '&&', ['touch', `${dir}/b`], ';', ['touch', `${dir}/c`]), { durable: begin.promise });
    await until('the stage is forked and waits', () => heldStages().length === 1);
    const [held] = heldStages();
    begin.reject(new Error('the disk is gone'));
    const r = await running;
    assert.equal(r.res.exitCode, 125);
    assert.equal(r.res.error, 'not run: its audit record could not be written');
    assert.equal(r.err, '');
    assert.deepEqual(fs.readdirSync(dir), []);
    await until('the held stage is gone', () => processGone(held as number));
  });

  test('a first pipeline that starts nothing (its program missing) still holds back what follows `;` until the begin is durable', async () => {
    const dir = tmpdir();
    const begin = deferred();
    const running = run(list(['no-such-program-remux'], ';', ['touch', `${dir}/after`]), { durable: begin.promise });
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.deepEqual(fs.readdirSync(dir), [], 'what follows ran before the begin was durable');
    begin.resolve();
    assert.equal((await running).res.exitCode, 0);
    assert.deepEqual(fs.readdirSync(dir), ['after']);
    const failing = deferred();
    const refused = run(list(['no-such-program-remux'], ';', ['touch', `${dir}/never`]), { durable: failing.promise });
    failing.reject(new Error('the disk is gone'));
    assert.equal((await refused).res.exitCode, 125);
    assert.deepEqual(fs.readdirSync(dir), ['after']);
  });

  test('stopped while held (the caller went away): not run, exit 130', async () => {
    const file = `${tmpdir()}/ran`;
    const begin = deferred();
    const caller = new AbortController();
    const running = run(['touch', file], { durable: begin.promise, signal: caller.signal });
    await until('the stage is forked and waits', () => heldStages().length === 1);
    caller.abort();
    begin.resolve();
    const r = await running;
    assert.equal(r.res.exitCode, 130);
    assert.equal(r.res.aborted, true);
    assert.equal(r.err, '');
    assert.equal(fs.existsSync(file), false);
  });

  test('a redirect is not opened (its file not created) before the begin is durable, nor at all when it fails', async () => {
    const dir = tmpdir();
    const begin = deferred();
    const running = run(list(stage(['echo', 'x'], to(`${dir}/out`))), { durable: begin.promise });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(heldStages(), [], 'nothing forked before the begin');
    assert.equal(fs.existsSync(`${dir}/out`), false);
    begin.resolve();
    assert.equal((await running).res.exitCode, 0);
    assert.equal(fs.readFileSync(`${dir}/out`, 'utf8'), 'x\n');
    const failing = deferred();
    const refused = run(list(stage(['echo', 'x'], to(`${dir}/never`))), { durable: failing.promise });
    failing.reject(new Error('the disk is gone'));
    assert.equal((await refused).res.exitCode, 125);
    assert.equal(fs.existsSync(`${dir}/never`), false);
  });

  test('a held stage killed before its go is reported as not started (ECANCELED), not waited for', async () => {
    const begin = deferred();
    const running = run(['true'], { durable: begin.promise });
    await until('the stage is forked and waits', () => heldStages().length === 1);
    process.kill(heldStages()[0] as number, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 100));
    begin.resolve();
    const r = await running;
    assert.equal(r.res.exitCode, 126);
    assert.equal(r.err, 'remux: true: cannot execute: ECANCELED\n');
  });

  test('a held stage whose set-up fails (an open) reports its errno at its go', async () => {
    const starts = await spawnPipeline(
      { cwd: '/', env: { PATH }, stages: [{ program: '/bin/true', argv: ['true'], fds: ['null', 'null', 'null'], report: false, opens: [{ fd: 5, flags: fs.constants.O_RDONLY, path: '/nonexistent/remux' }] }] },
      Promise.resolve(true),
    );
    assert.deepEqual(starts, [{ error: 'ENOENT' }]);
  });
});

test('an exec that fails after the stage placed fds 4-9 still reports its errno (the status pipe is kept above them)', async () => {
  const opens = [4, 5, 6, 7, 8, 9].map((fd) => ({ fd, flags: fs.constants.O_RDONLY, path: '/dev/null' }));
  for (const release of [undefined, Promise.resolve(true)]) {
    const starts = await spawnPipeline({ cwd: '/', env: { PATH }, stages: [{ program: '/nonexistent/remux', argv: ['x'], fds: ['null', 'null', 'null'], report: false, opens }] }, release);
    assert.deepEqual(starts, [{ error: 'ENOENT' }], release ? 'held' : 'run at once');
  }
});
