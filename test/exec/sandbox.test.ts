import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { bwrapAvailable, probeBwrap } from '../../src/exec/index.js';
import { bwrapOptions, ENTER_HELPER, ENTER_NAMESPACES, sandboxLayout, showsPath, visibleInside, type SandboxLayout } from '../../src/exec/sandbox.js';
import { SPAWNER } from '../../src/exec/spawner.js';
import type { SandboxSpec } from '../../src/exec/index.js';
import { liveWithArg, parentOf } from '../support/procs.js';
import { until } from '../support/until.js';
import { errToOut, from, list, pipeline, run, stage, tmpdir, to, writeScript, PATH } from './helpers.js';

const info = bwrapAvailable();
/** The kernel's Landlock ABI (landlock_create_ruleset with LANDLOCK_CREATE_RULESET_VERSION); 6 brought scopes (Linux 6.12). */
const landlockAbi = Number(spawnSync('python3', ['-c', 'import ctypes; print(ctypes.CDLL(None).syscall(444, None, 0, 1))']).stdout?.toString().trim()) || 0;

describe('sandbox availability', () => {
  test('a requested sandbox that bubblewrap cannot provide refuses; nothing runs unsandboxed', async () => {
    const dir = tmpdir();
    const marker = path.join(dir, 'ran');
    const unavailable = () => ({ ok: false, path: null, version: null, reason: 'stubbed out' });
    const r = await run(['touch', marker], { cwd: dir, sandbox: { read: [dir], write: [dir], hide: [], readOnly: [], network: false, owner: 'test' } }, unavailable);
    assert.equal(r.res.exitCode, 125);
    assert.equal(r.res.errorKind, 'sandbox_unavailable');
    assert.equal(r.res.error, 'the OS sandbox cannot be used: stubbed out');
    assert.equal(fs.existsSync(marker), false);
    const plain = await run(['touch', marker], { cwd: dir }, unavailable);
    assert.equal(plain.res.exitCode, 0, 'no sandbox asked: the probe is not consulted');
  });

  test('probeBwrap explains a missing or broken bubblewrap', () => {
    assert.match(probeBwrap(['/nonexistent/bwrap']).reason ?? '', /bwrap not found \(looked for \/nonexistent\/bwrap\)/);
    const fake = writeScript(tmpdir(), 'bwrap', '#!/bin/sh\n[ "$1" = --version ] && echo "bubblewrap 0.13.1" && exit 0\necho "bwrap: No permissions to creating new namespace" >&2\nexit 1\n');
    const broken = probeBwrap([fake]);
    assert.equal(broken.ok, false);
    assert.equal(broken.version, '0.13.1');
    assert.equal(broken.reason, 'probe sandbox failed to start: bwrap: No permissions to creating new namespace');
  });
});

test('showsPath answers as the whole layout does: symlinked trees, hidden trees and names, a hidden parent of a shown tree, missing paths', () => {
  const root = fs.realpathSync(tmpdir('remux-shows-'));
  const at = (...parts: string[]): string => path.join(root, ...parts);
  for (const d of ['proj/src', 'proj/.git', 'data/keys', 'other', 'top/shown/deep']) fs.mkdirSync(at(d), { recursive: true });
  fs.symlinkSync(at('proj'), at('link-to-proj'));
  fs.symlinkSync(at('data/keys'), at('link-to-keys'));
  fs.writeFileSync(at('data', 'secret.pem'), '');
  const spec: SandboxSpec = {
    read: [at('link-to-proj'), at('data'), at('top/shown'), at('missing')],
    write: [at('other')],
    // A link to a hidden tree hides its target; a hidden parent of a shown tree hides nothing of it (the layout drops it).
    hide: [at('proj/.git'), at('link-to-keys'), at('top'), at('gone')],
    hideMatching: [at('data/*.pem')],
    readOnly: [],
    network: false,
    owner: 'test',
  };
  const layout = sandboxLayout(spec);
  const paths = ['proj', 'proj/src', 'proj/.git', 'proj/.git/x', 'data', 'data/keys', 'data/keys/k', 'data/secret.pem', 'other', 'top', 'top/shown', 'top/shown/deep', 'missing', 'elsewhere'].map((p) => at(p));
  const answers = paths.map((p) => [p.slice(root.length), showsPath(spec, p)]);
  assert.deepEqual(answers, paths.map((p) => [p.slice(root.length), visibleInside(layout, p)]));
  assert.deepEqual(answers.filter(([, shown]) => shown).map(([p]) => p), ['/proj', '/proj/src', '/data', '/other', '/top/shown', '/top/shown/deep']);
  assert.equal(showsPath(spec, '/usr/bin'), true, 'the system directories are shown');
  assert.throws(() => showsPath({ ...spec, read: ['relative/path'] }, at('proj')), /sandbox path must be absolute: relative\/path/);
});

describe('sandbox (bubblewrap)', { skip: info.ok ? false : `bwrap unusable: ${info.reason}` }, () => {
  const root = fs.realpathSync(tmpdir('remux-sandbox-'));
  const allowed = path.join(root, 'allowed');
  const writable = path.join(root, 'writable');
  const secret = path.join(root, 'secret');
  const sandbox: SandboxSpec = { read: [allowed], write: [writable], hide: [], readOnly: [], network: false, owner: 'test' };
  const inSandbox = { sandbox, cwd: allowed };

  before(() => {
    for (const d of [allowed, writable, secret]) fs.mkdirSync(d);
    fs.writeFileSync(path.join(allowed, 'data.txt'), 'public\n');
    fs.writeFileSync(path.join(secret, 'key.txt'), 'top secret\n');
  });

  test('bwrapAvailable reports path and version, and warns below 0.12.0', () => {
    assert.equal(info.ok, true);
    assert.match(info.version ?? '', /^\d+\.\d+\.\d+$/);
    assert.ok(info.path?.endsWith('/bwrap'));
    const [major, minor] = (info.version ?? '0.0').split('.').map(Number);
    if ((major ?? 0) === 0 && (minor ?? 0) < 12) assert.match(info.warning ?? '', /older than 0\.12\.0/);
  });

  test('the same allowed command reads a policy path but not a path outside the policy', async () => {
    const outside = await run(['cat', path.join(secret, 'key.txt')]);
    assert.equal(outside.out, 'top secret\n', 'unsandboxed, nothing stops it');
    const denied = await run(['cat', path.join(secret, 'key.txt')], inSandbox);
    assert.equal(denied.out, '');
    assert.notEqual(denied.res.exitCode, 0);
    assert.match(denied.err, /No such file or directory/);
    const ok = await run(['cat', 'data.txt'], inSandbox);
    assert.equal(ok.out, 'public\n');
    assert.equal(ok.res.exitCode, 0);
    assert.equal(ok.res.error, null);
  });

  test('/etc holds only what programs need: no shadow, names still resolve', async () => {
    const shadow = await run(['cat', '/etc/shadow'], inSandbox);
    assert.notEqual(shadow.res.exitCode, 0);
    const etc = await run(['ls', '/etc'], inSandbox);
    const names = etc.out.trim().split('\n');
    assert.ok(!names.includes('shadow') && !names.includes('hostname') && !names.includes('ssh'), names.join(' '));
    assert.ok(names.includes('passwd'));
    const id = await run(['id', '-un'], inSandbox);
    assert.equal(id.out, `${(await run(['id', '-un'])).out}`);
  });

  test('no network: a TCP connect to 127.0.0.1 works outside and fails inside', async () => {
    const server = net.createServer((s) => s.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const probe = ['bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port} && echo connected`];
      const outside = await run(probe);
      assert.equal(outside.out, 'connected\n');
      const inside = await run(probe, inSandbox);
      assert.equal(inside.out, '');
      assert.notEqual(inside.res.exitCode, 0);
    } finally {
      server.close();
    }
  });

  test('writes succeed only under write paths; root cannot remount a read-only bind', async () => {
    const w = await run(['sh', '-c', `echo x > ${writable}/made`], inSandbox);
    assert.equal(w.res.exitCode, 0, w.err);
    assert.equal(fs.readFileSync(path.join(writable, 'made'), 'utf8'), 'x\n');
    const ro = await run(['sh', '-c', `echo x > ${allowed}/made`], inSandbox);
    assert.notEqual(ro.res.exitCode, 0);
    assert.match(ro.err, /Read-only file system/);
    const hidden = await run(['touch', path.join(secret, 'made')], inSandbox);
    assert.notEqual(hidden.res.exitCode, 0);
    const remount = await run(['sh', '-c', `mount -o remount,rw,bind ${allowed} 2>/dev/null; echo x > ${allowed}/made2`], inSandbox);
    assert.notEqual(remount.res.exitCode, 0);
    for (const f of [path.join(allowed, 'made'), path.join(allowed, 'made2'), path.join(secret, 'made')]) {
      assert.equal(fs.existsSync(f), false, `${f} was created`);
    }
    const caps = await run(['grep', 'CapEff', '/proc/self/status'], inSandbox);
    assert.match(caps.out, /CapEff:\s+0+\n/);
  });

  test('redirects are checked against the sandbox paths too', async () => {
    const out = await run(list(stage(['echo', 'x'], to(path.join(secret, 'r')))), inSandbox);
    assert.equal(out.res.exitCode, 1);
    assert.equal(out.res.errorKind, 'redirect');
    assert.match(out.err, /cannot open .*secret\/r for writing: outside the sandbox's write paths/);
    assert.equal(fs.existsSync(path.join(secret, 'r')), false);
    const inp = await run(list(stage(['cat'], from(path.join(secret, 'key.txt')))), inSandbox);
    assert.equal(inp.res.exitCode, 1);
    assert.equal(inp.out, '');
    const ok = await run(list(stage(['cat'], from('data.txt'), to(path.join(writable, 'copy')))), inSandbox);
    assert.equal(ok.res.exitCode, 0);
    assert.equal(fs.readFileSync(path.join(writable, 'copy'), 'utf8'), 'public\n');
    const devnull = await run(list(stage(['echo', 'x'], to('/dev/null'))), inSandbox);
    assert.equal(devnull.res.exitCode, 0);
  });

  test('the environment is exactly the given one; cwd is kept', async () => {
    const r = await run(list(['env'], ';', ['pwd']), { ...inSandbox, env: { PATH, TOKEN: 'abc def', EMPTY: '' } });
    const lines = r.out.trim().split('\n');
    assert.equal(lines.pop(), allowed);
    assert.deepEqual(lines.sort(), ['EMPTY=', `PATH=${PATH}`, 'TOKEN=abc def']);
  });

  test('pipelines connect sandboxed stages; SIGPIPE and 2>&1 still work', async () => {
    const p = await run(list(pipeline(['cat', 'data.txt'], ['tr', 'a-z', 'A-Z'])), inSandbox);
    assert.equal(p.out, 'PUBLIC\n');
    const t0 = Date.now();
    const y = await run(list(pipeline(['yes'], ['head', '-n', '1'])), { ...inSandbox, pipefail: true });
    assert.equal(y.out, 'y\n');
    assert.equal(y.res.exitCode, 141);
    assert.ok(Date.now() - t0 < 2000);
    const m = await run(list(pipeline(stage(['sh', '-c', 'echo out; echo err >&2'], errToOut), ['sort'])), inSandbox);
    assert.equal(m.out, 'err\nout\n');
  });

  test('timeout kills the sandboxed command and everything in its namespace', async () => {
    const marker = `30.${process.pid}`; // unique per test process: parallel runs must not see each other's
    const t0 = Date.now();
    const r = await run(['sh', '-c', `sleep ${marker} & sleep ${marker}`], { ...inSandbox, timeoutMs: 300 });
    assert.equal(r.res.timedOut, true);
    assert.equal(r.res.exitCode, 124);
    assert.ok(Date.now() - t0 < 1500);
    assert.deepEqual(liveWithArg(marker), []);
  });

  test('a cwd outside the sandbox refuses before anything runs', async () => {
    const r = await run(['pwd'], { sandbox, cwd: secret });
    assert.equal(r.res.exitCode, 125);
    assert.equal(r.res.errorKind, 'sandbox');
    assert.match(r.res.error ?? '', /^working directory .*secret is not visible in the sandbox, which shows only the policy's paths \(.*allowed, .*writable\): pass one of them with --cwd DIR/);
    assert.equal(r.out + r.err, '');
  });

  test('a program outside the sandbox paths is not found (127); one inside runs', async () => {
    writeScript(secret, 'tool', '#!/bin/sh\necho tool ran\n');
    writeScript(allowed, 'tool', '#!/bin/sh\necho tool ran\n');
    const out = await run([path.join(secret, 'tool')], inSandbox);
    assert.equal(out.res.exitCode, 127);
    assert.equal(out.res.errorKind, 'sandbox');
    assert.equal(out.out, '');
    const inside = await run(['./tool'], inSandbox);
    assert.equal(inside.out, 'tool ran\n');
  });

  test('a program that cannot be executed inside is reported as it would be outside', async () => {
    writeScript(allowed, 'badinterp', '#!/nonexistent/interpreter\n');
    const inside = await run(['./badinterp'], inSandbox);
    const outside = await run(['./badinterp'], { cwd: allowed });
    assert.deepEqual([inside.res.exitCode, inside.res.errorKind, inside.err], [127, 'not_found', 'remux: ./badinterp: cannot execute: ENOENT\n']);
    assert.deepEqual([outside.res.exitCode, outside.res.errorKind, outside.err], [inside.res.exitCode, inside.res.errorKind, inside.err]);
  });
});

/** The sandbox stage servers (remux-sandbox-enter --serve) of this process's remux-spawner. */
function ownServers(): number[] {
  return liveWithArg('--serve').filter((pid) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/exe`) === fs.realpathSync(ENTER_HELPER) && parentOf(parentOf(pid)) === process.pid;
    } catch {
      return false;
    }
  });
}

/** The stage server of the sandbox this process is in. */
function serverOf(pid: number): number | undefined {
  return ownServers().find((p) => fs.readlinkSync(`/proc/${p}/ns/mnt`) === fs.readlinkSync(`/proc/${pid}/ns/mnt`));
}

/** Starts `sleep SECONDS` (an argument no other test uses) in the sandbox and returns its pid and its run. */
async function sleeping(seconds: string, opts: Parameters<typeof run>[1]): Promise<{ pid: number; ran: ReturnType<typeof run> }> {
  const ran = run(['sleep', seconds], opts);
  for (let i = 0; i < 200; i++) {
    const [pid] = liveWithArg(seconds).filter((p) => fs.readlinkSync(`/proc/${p}/exe`).endsWith('/sleep'));
    if (pid !== undefined) return { pid, ran };
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`sleep ${seconds} did not start`);
}

const statusField = (pid: number, name: string): string | undefined =>
  fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${name}:\\s*(.*)$`, 'm'))?.[1];

describe('long-lived sandboxes', { skip: info.ok ? false : `bwrap unusable: ${info.reason}` }, () => {
  const root = fs.realpathSync(tmpdir('remux-sandboxes-'));
  const tree = path.join(root, 'tree');
  const out = path.join(root, 'out');
  const spec = (owner: string, extra: Partial<SandboxSpec> = {}): SandboxSpec => ({ read: [tree], write: [out], hide: [], readOnly: [], network: false, owner, ...extra });
  const holderLines = (out: string): string[] => out.trim().split('\n').filter((l) => /\/cat$/.test(l));
  /** The bwrap (outside) holding the sandbox of `s`: its child is the first process of the sandbox's PID namespace. */
  const holdersOf = async (s: SandboxSpec): Promise<number[]> => {
    const ns = (await run(['readlink', '/proc/self/ns/pid'], { sandbox: s, cwd: tree })).out.trim();
    return liveWithArg('--info-fd').filter((pid) => {
      try {
        const init = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0];
        return init !== '' && fs.readlinkSync(`/proc/${init}/ns/pid`) === ns && fs.readlinkSync(`/proc/${pid}/ns/pid`) !== ns;
      } catch {
        return false;
      }
    });
  };

  test("a sandbox's start leaves the daemon's own descriptors alone: a terminal node-pty holds (no close-on-exec) still answers", async () => {
    const term = (await import('node-pty')).spawn('/bin/cat', [], {});
    let echoed = '';
    term.onData((d) => (echoed += d));
    try {
      // An owner of its own: a sandbox started now, with the terminal open.
      const r = await run(['true'], { sandbox: spec('pty-test'), cwd: tree });
      assert.equal(r.res.exitCode, 0, r.err);
      term.write('still-here\r');
      await until('the echo', () => echoed.includes('still-here'), 5000);
    } finally {
      term.kill();
    }
  });

  before(() => {
    fs.mkdirSync(path.join(tree, 'private'), { recursive: true });
    fs.mkdirSync(path.join(out, 'locked'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'public.txt'), 'public\n');
    fs.writeFileSync(path.join(tree, 'secret.txt'), 'hidden file\n');
    fs.writeFileSync(path.join(tree, 'private', 'key'), 'hidden dir\n');
  });

  test('commands of one owner reuse one sandbox; another owner gets its own', async () => {
    const pidNamespace = async (owner: string): Promise<string> => {
      const r = await run(['readlink', '/proc/self/ns/pid'], { sandbox: spec(owner), cwd: tree });
      assert.equal(r.res.exitCode, 0, r.err);
      return r.out;
    };
    const [a1, a2, b] = [await pidNamespace('alice'), await pidNamespace('alice'), await pidNamespace('bob')];
    assert.match(a1, /^pid:\[\d+\]\n$/);
    assert.equal(a1, a2);
    assert.notEqual(a1, b);
    assert.notEqual(a1, fs.readlinkSync('/proc/self/ns/pid') + '\n');
  });

  test("the sandbox's /tmp: empty at first, kept across one owner's commands, never another owner's or the host's", async () => {
    // Nothing of the policy under /tmp (this test's tree is in /var/tmp): /tmp is the sandbox's own.
    const elsewhere = fs.mkdtempSync('/var/tmp/remux-sandbox-');
    try {
      const s = (owner: string): SandboxSpec => spec(owner, { read: [elsewhere], write: [] });
      const empty = await run(['ls', '-A', '/tmp'], { sandbox: s('tmp-a'), cwd: elsewhere });
      assert.deepEqual([empty.res.exitCode, empty.out], [0, '']);
      const first = await run(list(['sh', '-c', 'echo mine > /tmp/f'], '&&', ['cat', '/tmp/f']), { sandbox: s('tmp-a'), cwd: elsewhere });
      assert.deepEqual([first.res.exitCode, first.out], [0, 'mine\n'], first.res.error ?? first.err);
      assert.equal((await run(['cat', '/tmp/f'], { sandbox: s('tmp-a'), cwd: elsewhere })).out, 'mine\n');
      const other = await run(['ls', '-A', '/tmp'], { sandbox: s('tmp-b'), cwd: elsewhere });
      assert.deepEqual([other.res.exitCode, other.out], [0, '']);
      assert.equal(fs.existsSync('/tmp/f') && fs.readFileSync('/tmp/f', 'utf8') === 'mine\n', false, 'written to the host /tmp');
    } finally {
      fs.rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  test("no process inside shows bwrap's options: the hidden paths' names are in no /proc/PID/cmdline", async () => {
    const s = spec('cmdline', { hide: [path.join(tree, 'secret.txt'), path.join(tree, 'private')], readOnly: [path.join(out, 'locked')] });
    // pid 1 is bwrap's own copy, with bwrap's argv; the holder and this command follow.
    const r = await run(['sh', '-c', "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done"], { sandbox: s, cwd: tree });
    assert.equal(r.res.exitCode, 0, r.err);
    for (const name of ['secret.txt', 'private', 'locked', '--ro-bind', '--tmpfs']) assert.equal(r.out.includes(name), false, `${name} in:\n${r.out}`);
    assert.match(r.out, /^\S*bwrap --args 4 --info-fd 3 -- \/usr\/bin\/cat $/m, "the listing shows the sandbox's pid 1");
  });

  test('deny and ask rules of whole trees are enforced by the mounts: hidden, read-only', async () => {
    const s = spec('masks', { hide: [path.join(tree, 'secret.txt'), path.join(tree, 'private')], readOnly: [path.join(out, 'locked')] });
    const read = await run(['sh', '-c', `cat ${tree}/public.txt ${tree}/secret.txt ${tree}/private/key; ls -A ${tree}/private`], { sandbox: s, cwd: tree });
    assert.equal(read.out, 'public\n');
    assert.doesNotMatch(read.out + read.err, /hidden/);
    const write = await run(['sh', '-c', `echo a > ${out}/ok && echo b > ${out}/locked/no`], { sandbox: s, cwd: tree });
    assert.notEqual(write.res.exitCode, 0);
    assert.match(write.err, /Read-only file system/);
    assert.equal(fs.readFileSync(path.join(out, 'ok'), 'utf8'), 'a\n');
    assert.equal(fs.existsSync(path.join(out, 'locked', 'no')), false);
  });

  test("names a deny rule's glob matches in one directory are hidden, including ones that appear later", async () => {
    const s = spec('matching', { hideMatching: [path.join(tree, 'secret*')] });
    const r = await run(['grep', '-r', 'hidden', tree], { sandbox: s, cwd: tree });
    assert.equal(r.out, `${tree}/private/key:hidden dir\n`, 'secret.txt is hidden, the rest of the tree is not');
    fs.writeFileSync(path.join(tree, 'secret-new.txt'), 'hidden later\n');
    try {
      const later = await run(['cat', path.join(tree, 'secret-new.txt')], { sandbox: s, cwd: tree });
      assert.equal(later.out, '');
      assert.equal((await run(['cat', 'public.txt'], { sandbox: s, cwd: tree })).out, 'public\n');
    } finally {
      fs.rmSync(path.join(tree, 'secret-new.txt'));
    }
  });

  test('a policy path replaced on the host is seen by the next command (new sandbox)', async () => {
    const moving = path.join(root, 'moving');
    fs.mkdirSync(moving);
    fs.writeFileSync(path.join(moving, 'v'), 'one\n');
    const s = spec('moving', { read: [moving] });
    assert.equal((await run(['cat', 'v'], { sandbox: s, cwd: moving })).out, 'one\n');
    fs.rmSync(moving, { recursive: true });
    fs.mkdirSync(moving);
    fs.writeFileSync(path.join(moving, 'v'), 'two\n');
    assert.equal((await run(['cat', 'v'], { sandbox: s, cwd: moving })).out, 'two\n');
  });

  // What a client inside gets from each socket: its greeting, or the error connect(2) gave.
  const connectFrom = async (s: SandboxSpec, ...sockets: string[]): Promise<string[]> => {
    const client = 'import socket, sys\nfor p in sys.argv[1:]:\n    s = socket.socket(socket.AF_UNIX)\n    try:\n        s.connect(p)\n        print(s.recv(16).decode())\n    except OSError as e:\n        print(type(e).__name__)\n';
    const r = await run(['python3', '-c', client, ...sockets], { sandbox: s, cwd: tree });
    assert.equal(r.res.exitCode, 0, r.err);
    return r.out.trim().split('\n');
  };
  // The sockets a layout covers are looked for at most once a second (hostSockets): a new one is covered from then on.
  const socketsSeen = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1100));
  const serve = async (at: string, greeting: string): Promise<net.Server> => {
    const server = net.createServer((c) => c.end(greeting));
    await new Promise<void>((resolve) => server.listen(at, resolve));
    await socketsSeen();
    return server;
  };

  test('a Unix socket shown read-only cannot be connected to (connect needs write); one in a writable tree can', async () => {
    const shown = path.join(tree, 'api.sock');
    const open = path.join(out, 'ok.sock');
    const servers = [await serve(shown, 'root-api'), await serve(open, 'mine')];
    try {
      // Outside, both answer; inside, the read-only one is covered whatever the command tries.
      assert.deepEqual(await connectFrom(spec('sockets'), shown, open), ['ConnectionRefusedError', 'mine']);
      // A daemon restarted on the same path: its new socket is covered too (a new sandbox).
      await new Promise((resolve) => servers[0]!.close(resolve));
      servers[0] = await serve(shown, 'root-api-2');
      assert.deepEqual(await connectFrom(spec('sockets'), shown, open), ['ConnectionRefusedError', 'mine']);
      // A deny-write rule over the writable socket's directory takes it away as well.
      fs.mkdirSync(path.join(out, 'locked'), { recursive: true });
      const locked = path.join(out, 'locked', 'l.sock');
      servers.push(await serve(locked, 'locked'));
      assert.deepEqual(await connectFrom(spec('sockets-locked', { readOnly: [path.join(out, 'locked')] }), locked, open), ['ConnectionRefusedError', 'mine']);
    } finally {
      for (const s of servers) s.close();
    }
  });

  test('a covered socket that went away since the last look does not keep the next sandbox from starting (looked at again)', async () => {
    const gone = path.join(tree, 'gone.sock');
    const server = await serve(gone, 'gone');
    // Seen, and covered: this look serves the layouts of the next second.
    assert.deepEqual(await connectFrom(spec('gone-1'), gone), ['ConnectionRefusedError']);
    await new Promise((resolve) => server.close(resolve));
    assert.equal(fs.existsSync(gone), false);
    // A new sandbox at once: bwrap could not bind the cover over what is no longer there.
    const r = await run(['cat', 'public.txt'], { sandbox: spec('gone-2'), cwd: tree });
    assert.equal(r.res.exitCode, 0, r.res.error ?? r.err);
    assert.equal(r.out, 'public\n');
  });

  test("abstract Unix sockets: sharing the host's network, a command cannot reach the host's (Landlock scope) but can its own; without network there are none of the host's", { skip: landlockAbi < 6 && `the kernel's Landlock ABI is ${landlockAbi}: scopes need 6 (Linux 6.12)` }, async () => {
    const name = `remux-abstract-${process.pid}`;
    // A Python server: Node 20's net binds a name starting with NUL as a path, not in the abstract namespace.
    const serving = 'import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.bind("\\0" + sys.argv[1])\ns.listen()\nprint("ready", flush=True)\nwhile True:\n    c, _ = s.accept()\n    c.sendall(b"host")\n    c.close()\n';
    const server = spawn('python3', ['-c', serving, name], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
    // What a client gets from the host's abstract socket, then from one it makes itself.
    const client = [
      'import socket, sys, threading',
      'def hello(addr):',
      '    s = socket.socket(socket.AF_UNIX)',
      '    try:',
      '        s.connect(addr)',
      '        return s.recv(16).decode()',
      '    except OSError as e:',
      '        return type(e).__name__',
      'print(hello("\\0" + sys.argv[1]))',
      'own = socket.socket(socket.AF_UNIX)',
      'own.bind("\\0" + sys.argv[1] + "-own")',
      'own.listen()',
      'threading.Thread(target=lambda: own.accept()[0].sendall(b"own"), daemon=True).start()',
      'print(hello("\\0" + sys.argv[1] + "-own"))',
    ].join('\n');
    try {
      assert.equal(spawnSync('python3', ['-c', client, name]).stdout.toString(), 'host\nown\n', 'outside, both answer');
      const shared = await run(['python3', '-c', client, name], { sandbox: spec('abstract-shared', { network: true }), cwd: tree });
      assert.equal(shared.res.exitCode, 0, shared.res.error ?? shared.err);
      assert.equal(shared.out, 'PermissionError\nown\n');
      const own = await run(['python3', '-c', client, name], { sandbox: spec('abstract-own'), cwd: tree });
      assert.equal(own.out, 'ConnectionRefusedError\nown\n');
    } finally {
      server.kill();
    }
  });

  test('a socket bound in another network namespace under /run is covered too (found by looking there)', { skip: process.getuid?.() !== 0 && 'needs root for unshare -n' }, async () => {
    const dir = fs.mkdtempSync('/run/remux-sockets-');
    const at = path.join(dir, 'engine.sock');
    // As a rootless container engine binds its API socket: not listed in this namespace's /proc/net/unix.
    const server = spawn('unshare', ['-n', 'python3', '-c', 'import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\ns.listen()\nprint("up", flush=True)\nwhile True:\n    c, _ = s.accept()\n    c.sendall(b"engine")\n    c.close()\n', at], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
      assert.equal(fs.readFileSync('/proc/net/unix', 'utf8').includes(at), false, 'the socket is listed here: the test proves nothing');
      await socketsSeen();
      assert.deepEqual(await connectFrom(spec('netns-socket', { read: [tree, dir] }), at), ['ConnectionRefusedError']);
      assert.deepEqual(await connectFrom(spec('netns-socket-w', { write: [dir] }), at), ['engine']);
    } finally {
      server.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a sandbox killed from outside is replaced; the command that was in it dies with it', async () => {
    const s = spec('killed');
    const before = holderLines((await run(['ps', '-eo', 'pid,args'], { sandbox: s, cwd: tree })).out);
    const holders = await holdersOf(s);
    assert.equal(holders.length, 1);
    const long = run(['sleep', '30'], { sandbox: s, cwd: tree, timeoutMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const pid of holders) process.kill(pid, 'SIGKILL');
    const killed = await long;
    assert.deepEqual([killed.res.exitCode, killed.res.errorKind], [137, 'sandbox']);
    assert.equal(killed.err, 'remux: sleep: killed: its sandbox was stopped while it ran (from outside remux)\n');
    assert.ok(killed.res.durationMs < 5000, `${killed.res.durationMs} ms`);
    const after = await run(['ps', '-eo', 'pid,args'], { sandbox: s, cwd: tree });
    assert.equal(after.res.exitCode, 0, after.err);
    assert.deepEqual(holderLines(after.out).length, before.length);
  });

  test('a sandboxed program killed by SIGKILL while its sandbox runs on: 137 and nothing more said', async () => {
    const r = await run(['sh', '-c', 'kill -9 $$'], { sandbox: spec('self-killed'), cwd: tree });
    assert.deepEqual([r.res.exitCode, r.res.errorKind, r.err], [137, null, '']);
  });

  test('a sandbox whose first process was killed is replaced at once: the next command runs', async () => {
    const s = spec('init-killed');
    const before = holderLines((await run(['ps', '-eo', 'pid,args'], { sandbox: s, cwd: tree })).out);
    const [holder] = await holdersOf(s);
    assert.ok(holder, 'the sandbox holder (bwrap) is running');
    const init = Number(fs.readFileSync(`/proc/${holder}/task/${holder}/children`, 'utf8').trim().split(' ')[0]);
    const server = serverOf(init);
    assert.ok(server, "the sandbox's stage server is running");
    // Dead, but not yet reaped by bwrap, which has not noticed: a command joining now would find a PID
    // namespace that takes no process. (Killed is not dead at once: on a busy machine the process may
    // not run for a while, and a command joining meanwhile dies with it, as one running there would.)
    process.kill(init, 'SIGKILL');
    const dead = (): boolean => {
      try {
        return / Z /.test(fs.readFileSync(`/proc/${init}/stat`, 'utf8').replace(/^.*\)/, ')'));
      } catch {
        return true;
      }
    };
    for (let i = 0; i < 250 && !dead(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
    const after = await run(['ps', '-eo', 'pid,args'], { sandbox: s, cwd: tree });
    assert.equal(after.res.exitCode, 0, after.err);
    assert.deepEqual(holderLines(after.out).length, before.length);
    // The dead sandbox's server ended with it.
    for (let i = 0; i < 100 && liveWithArg('--serve').includes(server); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(liveWithArg('--serve').includes(server), false);
  });

  test("a stage is forked by the sandbox's stage server: in the sandbox, no capabilities, and the server out of its sight", async () => {
    const s = spec('served');
    const { pid, ran } = await sleeping('7.125', { sandbox: s, cwd: tree });
    // Forked by the server with CLONE_PARENT: remux-spawner is its parent (under remux-sandbox-enter, the helper would be).
    assert.equal(fs.readlinkSync(`/proc/${parentOf(pid)}/exe`), fs.realpathSync(SPAWNER));
    assert.deepEqual([statusField(pid, 'CapEff'), statusField(pid, 'CapBnd'), statusField(pid, 'NoNewPrivs')], ['0000000000000000', '0000000000000000', '1']);
    const server = serverOf(pid);
    assert.ok(server, "the sandbox's stage server runs in its mount namespace");
    // The server's own PID namespace is ours; only its children enter the sandbox's.
    assert.equal(fs.readlinkSync(`/proc/${server}/ns/pid`), fs.readlinkSync('/proc/self/ns/pid'));
    assert.equal(fs.readlinkSync(`/proc/${server}/ns/pid_for_children`), fs.readlinkSync(`/proc/${pid}/ns/pid`));
    assert.notEqual(fs.readlinkSync(`/proc/${pid}/ns/pid`), fs.readlinkSync('/proc/self/ns/pid'));
    // From inside, nothing can name it: not in /proc, no signal reaches it.
    const look = await run(['sh', '-c', `cat /proc/[0-9]*/cmdline | tr '\\0' ' '; kill -0 ${server} || echo refused`], { sandbox: s, cwd: tree });
    assert.doesNotMatch(look.out, /--serve/);
    assert.match(look.out, /refused\n$/);
    assert.match(look.out, /7\.125/, "the listing does show the sandbox's own processes");
    process.kill(pid, 'SIGTERM');
    assert.equal((await ran).res.exitCode, 128 + 15);
  });

  test('a request too large for the stage server starts through remux-sandbox-enter, the same; a server that is gone is replaced', async () => {
    const s = spec('server-gone');
    const first = await sleeping('7.25', { sandbox: s, cwd: tree });
    const server = serverOf(first.pid);
    assert.ok(server, 'the new sandbox started its stage server');
    process.kill(first.pid, 'SIGTERM');
    const servedEnd = (await first.ran).res;
    // More than a server takes in one request (128 KiB; one argument takes 128 KiB at most).
    const pad = 'x'.repeat(70 * 1024);
    const big = run(['env', `PAD1=${pad}`, `PAD2=${pad}`, 'sleep', '7.375'], { sandbox: s, cwd: tree });
    let helped: number | undefined;
    for (let i = 0; i < 200 && helped === undefined; i++) {
      [helped] = liveWithArg('7.375').filter((p) => fs.readlinkSync(`/proc/${p}/exe`).endsWith('/sleep'));
      if (helped === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(helped, 'the large command runs');
    assert.equal(fs.readlinkSync(`/proc/${parentOf(helped)}/exe`), fs.realpathSync(ENTER_HELPER));
    process.kill(helped, 'SIGTERM');
    const helpedEnd = (await big).res;
    assert.deepEqual([helpedEnd.exitCode, helpedEnd.signal], [servedEnd.exitCode, servedEnd.signal], 'the same status either way');
    // Killed from outside: commands go on (through the helper until a new server runs), and a new server serves them.
    process.kill(server, 'SIGKILL');
    let parent = '';
    for (let i = 0; i < 30 && parent !== fs.realpathSync(SPAWNER); i++) {
      const r = await run(['cat', 'public.txt'], { sandbox: s, cwd: tree });
      assert.deepEqual([r.res.exitCode, r.out], [0, 'public\n'], r.err);
      const next = await sleeping(`7.5${i}`, { sandbox: s, cwd: tree });
      parent = fs.readlinkSync(`/proc/${parentOf(next.pid)}/exe`);
      assert.notEqual(serverOf(next.pid), server);
      process.kill(next.pid, 'SIGTERM');
      await next.ran;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(parent, fs.realpathSync(SPAWNER), 'a new server forks the stages');
  });

  test('a sandbox that cannot start refuses the command; nothing runs', async () => {
    const fake = writeScript(tmpdir(), 'bwrap', '#!/bin/sh\necho "bwrap: Creating new namespace failed: Operation not permitted" >&2\nexit 1\n');
    const marker = path.join(out, 'ran');
    const probe = () => ({ ok: true, path: fake, version: '0.13.0' });
    const r = await run(['touch', marker], { sandbox: spec('fake'), cwd: tree }, probe);
    assert.equal(r.res.exitCode, 125);
    assert.equal(r.res.errorKind, 'sandbox_unavailable');
    assert.equal(r.res.error, 'the OS sandbox could not be started: bwrap: Creating new namespace failed: Operation not permitted');
    assert.equal(fs.existsSync(marker), false);
  });
});

describe('remux-sandbox-enter', () => {
  const enter = path.join(path.dirname(new URL(import.meta.url).pathname), '../../../bin/remux-sandbox-enter');

  /** A bwrap sandbox holding still, and fds of its namespaces in ENTER_NAMESPACES order (fds 4-9 of the helper). */
  async function holdSandbox(layout: SandboxLayout, as: { uid?: number; gid?: number } = {}): Promise<{ holder: ChildProcess; namespaceFds: number[] }> {
    // bwrap reports the pid as soon as it has cloned, before it has set the sandbox up: join only once
    // the program inside says it runs.
    const holder = spawn(info.path!, [...bwrapOptions(layout), '--info-fd', '3', '--', '/bin/sh', '-c', 'echo ready; exec cat'], { ...as, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    const [json] = await Promise.all([
      new Promise<string>((resolve) => (holder.stdio[3] as NodeJS.ReadableStream).once('data', (d: Buffer) => resolve(d.toString()))),
      new Promise((resolve) => holder.stdout!.once('data', resolve)),
    ]);
    const pid = /"child-pid"\s*:\s*(\d+)/.exec(json)?.[1];
    return { holder, namespaceFds: ENTER_NAMESPACES.map((ns) => fs.openSync(`/proc/${pid}/ns/${ns}`, 'r')) };
  }

  test('fds that are not the sandbox namespaces: refused with a report, nothing runs', () => {
    const dir = tmpdir();
    const marker = path.join(dir, 'ran');
    const devnull = fs.openSync('/dev/null', 'r');
    const r = spawnSync(enter, ['--cwd', '/', '--', '/usr/bin/touch', 'touch', marker], { stdio: ['ignore', 'pipe', 'pipe', 'pipe', devnull, devnull, devnull, devnull, devnull, devnull] });
    fs.closeSync(devnull);
    assert.equal(r.status, 126);
    assert.equal(r.output[3]?.toString(), 'join 126 22 0\n');
    assert.equal(fs.existsSync(marker), false);
  });

  test('an unprivileged user joins a sandbox that shares the network; PATH search, --env, --started', { skip: (!info.ok || process.getuid?.() !== 0) && 'needs bwrap and root (to become another user)' }, async () => {
    // The helper where user 65534 can run it (the checkout may not be readable by that user).
    const dir = fs.mkdtempSync('/tmp/remux-enter-test-');
    fs.chmodSync(dir, 0o755);
    const helper = path.join(dir, 'enter');
    fs.copyFileSync(enter, helper);
    const nobody = { uid: 65534, gid: 65534 };
    const { holder, namespaceFds: fds } = await holdSandbox(sandboxLayout({ read: [], write: [], hide: [], readOnly: [], network: true, owner: 'test' }), nobody);
    try {
      const runIn = (args: string[]) => spawnSync(helper, args, { ...nobody, env: { LEAK: 'x' }, stdio: ['ignore', 'pipe', 'pipe', 'pipe', ...fds] });
      const ok = runIn(['--env', 'PATH=/usr/bin:/bin', '--env', 'ONLY=1', '--started', 'STARTED', '--cwd', '/', '--', 'sh', 'sh', '-c', 'id -u; echo "$ONLY${LEAK-}"; readlink /proc/self/ns/net']);
      assert.equal(ok.output[3]?.toString(), '', 'no report');
      assert.equal(ok.status, 0, ok.stderr.toString());
      const [uid, env, net] = ok.stdout.toString().trim().split('\n');
      assert.equal(uid, '65534');
      assert.equal(env, '1', 'exactly the --env environment');
      assert.equal(net, fs.readlinkSync('/proc/self/ns/net'), "the host's network, shared");
      assert.equal(ok.stderr.toString(), 'STARTED\n');
      const missing = runIn(['--env', 'PATH=/nonexistent:/usr/bin', '--started', 'STARTED', '--cwd', '/', '--', 'no-such-program', 'no-such-program']);
      assert.equal(missing.status, 127);
      assert.equal(missing.stderr.toString(), 'STARTED\nno-such-program: not found\n');
      for (const fd of fds) fs.closeSync(fd);
    } finally {
      holder.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('--serve: malformed requests (fd counts, field counts, truncation) are refused with EINVAL, nothing forked, no fd kept; it serves on', { skip: !info.ok && `bwrap unusable: ${info.reason}` }, async () => {
    const { holder, namespaceFds: fds } = await holdSandbox(sandboxLayout({ read: [], write: [], hide: [], readOnly: [], network: false, owner: 'serve-protocol' }));
    try {
      const client = path.join(path.dirname(new URL(import.meta.url).pathname), '../../../test/exec/fixtures/serve-client.py');
      const r = spawnSync('python3', [client, enter, '3', '4', '5', '6', '7', '8'], { stdio: ['ignore', 'pipe', 'pipe', ...fds], timeout: 30_000 });
      for (const fd of fds) fs.closeSync(fd);
      assert.equal(r.status, 0, r.stderr.toString());
      const out = JSON.parse(r.stdout.toString()) as Record<string, unknown>;
      assert.ok(typeof out.first === 'number' && out.first > 0, `first: ${String(out.first)}`);
      // Its stdio and the pipe ls reads /proc/self/fd through: not the report pipe, no namespace, nothing of the server.
      assert.deepEqual([out['first output'], out['first report'], out['first status']], ['ran\n0 1 2 3 ', '', 0]);
      for (const refused of ['three fds', 'five fds', 'no fds', 'counts beyond the fields', 'a count too long', 'a count that is not a number', 'no NUL at the end', 'fields beyond the counts', 'larger than the server reads']) {
        assert.equal(out[refused], -22, refused);
      }
      assert.deepEqual([out['after output'], out['after status']], ['still\n', 0]);
      assert.deepEqual(out['server fds'], [0, 1, 2, 3]);
      assert.deepEqual(out.children, [out.server], 'nothing forked for a refused request');
      assert.equal(out['server exit'], 0, 'it ends when its fd 0 reaches EOF');
    } finally {
      holder.kill('SIGKILL');
    }
  });

  test('a malformed command line is refused the same way', () => {
    for (const args of [[], ['--cwd'], ['--cwd', '/', '--', '/usr/bin/true'], ['--bogus', '--cwd', '/', '--', '/usr/bin/true', 'true']]) {
      const r = spawnSync(enter, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
      assert.equal(r.status, 126, args.join(' '));
      assert.match(r.output[3]?.toString() ?? '', /^usage 126 22/, args.join(' '));
    }
  });
});
