// Exec's remote `run` (tools/exec.py) starts a program with os.posix_spawn where it can (Python ≥ 3.8)
// and with Popen otherwise (3.6, 3.7, a cwd that is not the interpreter's, any doubt): on every Python
// here, the program sees what Popen would give it. Descriptors the interpreter holds (one made
// inheritable on purpose) are closed, SIGPIPE is back at its default, the PATH is searched as execvpe
// does (a file that is not executable is passed over), a missing program is Popen's FileNotFoundError,
// the working directory is the one asked for, stdin is streamed (a big one under credit, one the program
// leaves unread ending nothing), and a death by signal is reported as one.
// An interpreter killed under a running program leaves its watcher to kill the program's group.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { toolSource } from '../../src/runtime/bootstrap.js';
import { RemoteError } from '../../src/runtime/index.js';
import { Link } from '../../src/runtime/link.js';
import { Exec } from '../../src/runtime/tools.js';
import { processTransport } from '../../src/runtime/transports.js';
import { endless } from '../support/backpressure.js';
import { liveWithArg, parentOf } from '../support/procs.js';
import { pythonsHere, tempRoot } from '../support/runtime.js';

const PATH = '/usr/local/bin:/usr/bin:/bin';

interface Ran {
  code: number | null;
  signal: number | null;
  stdout: string;
  stderr: string;
}

async function run(link: Link, argv: string[], opts: { cwd?: string; path?: string; input?: string | Readable } = {}): Promise<Ran> {
  const input = opts.input === undefined ? null : typeof opts.input === 'string' ? Readable.from([opts.input]) : opts.input;
  const call = link.call<[1 | 2, Buffer], { code: number | null; signal: number | null }>(Exec.command.tool, 'run', [argv, opts.cwd ?? null, opts.path ?? PATH, input !== null], {}, input);
  const out = { 1: '', 2: '' };
  for await (const [fd, data] of call) out[fd] += data.toString();
  return { ...(await call.result), stdout: out[1], stderr: out[2] };
}

async function linkOn(t: TestContext, python: string): Promise<Link> {
  const link = await Link.open(processTransport({ python, env: { PATH } }));
  t.after(() => link.close());
  return link;
}

test('Exec run starts programs as Popen would, on every Python here', async (t) => {
  const root = tempRoot(t, 'remux-spawn-');
  mkdirSync(join(root, 'a'));
  mkdirSync(join(root, 'b'));
  writeFileSync(join(root, 'a/prog'), '#!/bin/sh\necho from a\n', { mode: 0o644 });
  writeFileSync(join(root, 'b/prog'), '#!/bin/sh\necho from b\n');
  chmodSync(join(root, 'b/prog'), 0o755);
  const leak = toolSource('Leak', 'import os\ndef f():\n    fd = os.open("/dev/null", os.O_RDONLY)\n    os.set_inheritable(fd, True)\n    return fd\n');
  const pythons = pythonsHere();
  t.diagnostic(`interpreters: ${pythons.join(', ')}`);
  for (const python of pythons) {
    const link = await linkOn(t, python);
    const fd = await link.call<never, number>(leak, 'f', []).result;
    assert.equal((await run(link, ['sh', '-c', `test -e /proc/$$/fd/${fd} && echo open || echo closed`])).stdout, 'closed\n', `${python}: a descriptor made inheritable`);
    // ls's own: the directory it lists (3).
    assert.equal((await run(link, ['ls', '/proc/self/fd'])).stdout, '0\n1\n2\n3\n', `${python}: only stdin, stdout and stderr reach the program`);

    assert.deepEqual(await run(link, ['sh', '-c', 'yes | head -c 3; echo done']), { code: 0, signal: null, stdout: 'y\nydone\n', stderr: '' }, `${python}: SIGPIPE at its default (yes dies quietly)`);
    assert.deepEqual(await run(link, ['sh', '-c', 'echo out; echo err >&2; kill -TERM $$']), { code: null, signal: 15, stdout: 'out\n', stderr: 'err\n' }, python);
    assert.equal((await run(link, ['prog'], { path: `${root}/a:${root}/b` })).stdout, 'from b\n', `${python}: a file that is not executable is passed over`);
    await assert.rejects(run(link, ['prog'], { path: `${root}/a` }), (e: Error) => e instanceof RemoteError && e.type === 'PermissionError' && e.errno === 13, python);
    await assert.rejects(run(link, ['nonexistent-remux'], { path: PATH }), (e: Error) => e instanceof RemoteError && e.type === 'FileNotFoundError' && /nonexistent-remux/.test(e.message), python);
    assert.equal((await run(link, ['pwd'], { cwd: root })).stdout, `${root}\n`, `${python}: another working directory`);
    assert.equal((await run(link, ['pwd'], { cwd: link.hello?.cwd as string })).stdout, `${link.hello?.cwd}\n`, `${python}: the interpreter's own`);
    assert.equal((await run(link, [`${root}/b/prog`])).stdout, 'from b\n', `${python}: an absolute path`);
    assert.equal((await run(link, ['cat'], { input: 'fed\n' })).stdout, 'fed\n', `${python}: stdin`);
    // More than the window the host holds: written on as the program reads, the host granting more.
    assert.equal((await run(link, ['wc', '-c'], { input: 'x'.repeat(1 << 20) })).stdout.trim(), String(1 << 20), `${python}: a big stdin`);
    // Every byte value in and out, raw (binary frames both ways).
    const bytes = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
    const echoed = link.call<[1 | 2, Buffer], unknown>(Exec.command.tool, 'run', [['cat'], null, PATH, true], {}, Readable.from([bytes]));
    const back: Buffer[] = [];
    for await (const [, data] of echoed) back.push(data);
    assert.ok(Buffer.concat(back).equals(bytes), `${python}: every byte value through cat`);
    // A program that stops reading ends the call; the input that still comes is dropped.
    const src = endless();
    assert.equal((await run(link, ['head', '-c', '3'], { input: src.stream })).stdout, 'aaa', `${python}: a stdin the program leaves`);
    src.stream.destroy();
  }
});

/** The pid of the process whose whole command line is `line`, or null when none runs here. */
function pidOf(line: string): number | null {
  try {
    return Number(execFileSync('pgrep', ['-fx', line.replace(/\./g, '\\.')], { encoding: 'utf8' }).split('\n')[0]);
  } catch {
    return null;
  }
}

function running(line: string): boolean {
  return pidOf(line) !== null;
}

/**
 * Whether `pid` is in the interpreter's table of groups its watcher kills (stage2.py's memfd), or null
 * when it keeps none (Python < 3.8 tells its watcher through a pipe, which cannot be looked at). A program
 * runs (pgrep sees it) a moment before the interpreter has written it there, and an interpreter killed in
 * that moment leaves it unwatched.
 */
function registered(interpreter: number, pid: number): boolean | null {
  let table: Buffer | null = null;
  for (const fd of readdirSync(`/proc/${interpreter}/fd`)) {
    try {
      if (readlinkSync(`/proc/${interpreter}/fd/${fd}`).includes('memfd:remux-groups')) table = readFileSync(`/proc/${interpreter}/fd/${fd}`);
    } catch {
      // Closed while we looked.
    }
  }
  if (table === null) return null;
  for (let at = 0; at + 4 <= table.length; at += 4) if (table.readInt32LE(at) === pid) return true;
  return false;
}

async function until(what: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 25))) if (what()) return true;
  return what();
}

test('an interpreter killed under a running program: its watcher kills the program\'s whole group, on every Python here', async (t) => {
  for (const [i, python] of pythonsHere().entries()) {
    const link = await linkOn(t, python);
    const [bg, fg] = [`sleep 63.${process.pid}${i}`, `sleep 64.${process.pid}${i}`];
    const call = link.call(Exec.command.tool, 'run', [['sh', '-c', `${bg} & ${fg}; wait`], null, PATH, null]);
    assert.ok(await until(() => running(bg) && running(fg), 5000), `${python}: the program runs`);
    process.kill(link.hello!.pid, 'SIGKILL');
    await assert.rejects(call.result);
    assert.ok(await until(() => !running(bg) && !running(fg), 3000), `${python}: the group was killed`);
  }
});

/** The interpreter's watcher (stage2.py): its child started with `-S -c`. */
function watcherOf(interpreter: number): number[] {
  return liveWithArg('-S').filter((pid) => parentOf(pid) === interpreter);
}

test('a watcher killed while programs run is replaced by the next start, and still kills the groups started before it', async (t) => {
  for (const [i, python] of pythonsHere().entries()) {
    const link = await linkOn(t, python);
    const [first, second] = [`sleep 65.${process.pid}${i}`, `sleep 66.${process.pid}${i}`];
    const calls = [link.call(Exec.command.tool, 'run', [['sh', '-c', `exec ${first}`], null, PATH, null])];
    assert.ok(await until(() => running(first), 5000), `${python}: the first program runs`);
    const [watcher] = watcherOf(link.hello!.pid);
    assert.ok(watcher, `${python}: a watcher runs`);
    process.kill(watcher, 'SIGKILL');
    assert.ok(await until(() => !watcherOf(link.hello!.pid).includes(watcher), 3000), `${python}: the watcher is gone`);
    calls.push(link.call(Exec.command.tool, 'run', [['sh', '-c', `exec ${second}`], null, PATH, null]));
    const seen = (): boolean | null => (running(second) && watcherOf(link.hello!.pid).length === 1 ? registered(link.hello!.pid, pidOf(second) ?? -1) : false);
    // A new watcher is a new python3 -S started under load: seconds, at worst, on a busy machine.
    // What is missing, said when it fails (twice in CI under load, on 3.8, never reproduced here).
    const state = (): string => `second ${running(second) ? 'runs' : 'not running'}, watchers ${JSON.stringify(watcherOf(link.hello!.pid))}, registered ${String(registered(link.hello!.pid, pidOf(second) ?? -1))}`;
    assert.ok(await until(() => seen() !== false, 15_000), `${python}: the second program runs, under a new watcher (${state()})`);
    // Without a table to look at, the write to the watcher's pipe follows the start by far less than this.
    if (seen() === null) await new Promise((r) => setTimeout(r, 200));
    const [replacement] = watcherOf(link.hello!.pid);
    process.kill(link.hello!.pid, 'SIGKILL');
    for (const call of calls) await assert.rejects(call.result);
    // What is left, said when it fails (once seen in CI under load, never reproduced): which program, and the watcher.
    const left = (): string => `first ${running(first) ? 'runs' : 'gone'}, second ${running(second) ? 'runs' : 'gone'}, watcher ${replacement} ${existsSync(`/proc/${replacement}`) ? readFileSync(`/proc/${replacement}/stat`, 'utf8').split(' ')[2] : 'gone'}`;
    assert.ok(await until(() => !running(first) && !running(second), 3000), `${python}: both groups were killed (${left()})`);
  }
});
