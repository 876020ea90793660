// The runtime over real SSH: an exec channel on the daemon's pooled connection to a fleet sshd, the
// handshake, tools, 100 concurrent calls on the one channel, a killed sshd failing calls in flight
// within 5 s, `remux rpc` on one host and fanned out to two with its summary, and the SDK as a user's
// own project imports it (`remux/runtime` through package.json "exports", no options: $REMUX_HOME).
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { type GatewayContext } from '../../src/core/context.js';
import { stage0Command, stage1Frame } from '../../src/runtime/bootstrap.js';
import { ArgumentError, connect, DeniedError, fanout, FileSystem, ProtocolError, RemoteError } from '../../src/runtime/index.js';
import { AuditStore } from '../../src/audit/store.js';
import { REMUX_BIN, REPO_ROOT, remux, spawnRemux } from '../support/cli.js';
import { waitRunning, type Fleet } from '../fleet/fleet.js';
import { startFleetHome, type FleetHome } from '../support/runtime.js';

describe('the runtime over SSH', { timeout: 120_000 }, () => {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'remux-rt-ssh-')));
  let f: FleetHome;
  let fleet: Fleet;
  let ctx: GatewayContext;
  const env = (): Record<string, string> => f.env();

  before(async () => {
    writeFileSync(join(root, 'a.txt'), 'over ssh\n');
    f = await startFleetHome({
      policies: `policies:
  rt:
    sandbox: false
    capabilities:
      - { operation: read_file, resource: "${root}/**" }
      - { operation: list_directory, resource: "${root}|${root}/**" }
      - { operation: write_file, resource: "${root}/w/**" }
      - { operation: execute_binary, resource: "true|echo|sleep|uname" }
      - { operation: write_stdout }
  boxed:
    capabilities:
      - { operation: execute_binary, resource: cat }
      - { operation: read_file, resource: /proc/** }
      - { operation: write_stdout }
`,
      config: 'default_policy: rt\n',
    });
    fleet = f.fleet;
    ctx = await f.context();
  });
  after(async () => {
    await f?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test('Exec under a policy that sandboxes commands runs in the OS sandbox on the host (through the pool, as client run does)', async () => {
    const host = await connect('h1', { context: ctx, policy: 'boxed' });
    try {
      // The fleet's hosts share this machine's PID namespace: PID 1 there is the sandbox's init, not ours.
      const r = await host.exec(['cat', '/proc/1/comm']);
      assert.equal(r.code, 0, r.stderr);
      assert.notEqual(r.stdout, readFileSync('/proc/1/comm', 'utf8'));
      const [record] = ctx.audit.list({ host: 'h1' }).filter((a) => a.begin.command === 'cat /proc/1/comm');
      assert.deepEqual([record?.begin.policy, record?.begin.decision, record?.end?.exitCode], ['boxed', 'allow', 0]);
    } finally {
      await host.close();
    }
  });

  test('connect over the pooled connection: handshake, a file, a command, typed errors, a denial', async () => {
    const host = await connect('h1', { context: ctx });
    try {
      assert.equal(host.hello.v, 1);
      assert.match(host.hello.py, /^3\./);
      assert.equal(await host.call(FileSystem.readText, `${root}/a.txt`), 'over ssh\n');
      assert.equal((await host.exec(['echo', 'hi'])).stdout, 'hi\n');
      await assert.rejects(host.call(FileSystem.readText, `${root}/missing`), (e: Error) => e instanceof RemoteError && e.type === 'FileNotFoundError' && e.errno === 2);
      await assert.rejects(host.call(FileSystem.readText, '/etc/shadow'), DeniedError);
      const audit = ctx.audit.list().filter((a) => a.begin.host === 'h1');
      assert.ok(audit.some((a) => a.begin.command === 'FileSystem.readText' && a.end?.exitCode === 0));
    } finally {
      await host.close();
    }
  });

  test('100 concurrent calls share one channel; the bootstrap is the same small one', async () => {
    const host = await connect('h1', { context: ctx });
    try {
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => host.exec(['echo', String(i)])));
      assert.deepEqual(results.map((r) => r.stdout), Array.from({ length: 100 }, (_, i) => `${i}\n`));
      assert.ok(Buffer.byteLength(stage0Command()) + stage1Frame().length < 1024);
    } finally {
      await host.close();
    }
  });

  test('a dead peer (sshd killed under a running call) fails the call within 5 s', async () => {
    const host = await connect('h2', { context: ctx });
    const pending = host.exec(['sleep', '60']);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    fleet.hosts[1]!.kill();
    await assert.rejects(pending, ProtocolError);
    assert.ok(Date.now() - started < 5000, `${Date.now() - started} ms`);
    await host.close();
    await fleet.hosts[1]!.restart();
  });

  test('a host cut off the network (no FIN: packets dropped, or sshd stopped) fails the call within 5 s', async () => {
    const host = await connect('h2', { context: ctx });
    const pending = host.exec(['sleep', '60']);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await fleet.hosts[1]!.cut();
    try {
      await assert.rejects(pending, /has not answered/);
      assert.ok(Date.now() - started < 5000, `${Date.now() - started} ms`);
    } finally {
      await fleet.hosts[1]!.heal();
      await host.close();
    }
  });

  test('a closed quiet connection is kept for the next connect() to the host; a closed host sends nothing more; a busy one is not kept', async () => {
    const first = await connect('h1', { context: ctx });
    const pid = first.hello.pid;
    await first.call(FileSystem.readText, `${root}/a.txt`);
    await first.close();
    await assert.rejects(first.call(FileSystem.readText, `${root}/a.txt`), (e: Error) => e instanceof ProtocolError && /closed/.test(e.message));
    const second = await connect('h1', { context: ctx });
    assert.equal(second.hello.pid, pid, 'the same interpreter');
    // With what it learnt of the host: the path resolved by the first read is not asked for again.
    const sent = (): number => (second as unknown as { link: { nextId: number } }).link.nextId;
    const before = sent();
    assert.equal(await second.call(FileSystem.readText, `${root}/a.txt`), 'over ssh\n');
    assert.equal(sent() - before, 1, 'one round trip: the read itself');
    // Closed while a call runs: the call is cancelled with the interpreter, which is not kept.
    const running = second.exec(['sleep', '30']);
    await new Promise((r) => setTimeout(r, 200));
    await second.close();
    await assert.rejects(running, ProtocolError);
    const third = await connect('h1', { context: ctx });
    assert.notEqual(third.hello.pid, pid);
    await third.close();
  });

  test('fanout: a host that is down is unreachable in its result; the others go on; concurrency bounds the hosts at once', async () => {
    fleet.hosts[1]!.kill();
    try {
      let inFlight = 0;
      let most = 0;
      const results = await fanout(
        'env=prod',
        async (host) => {
          most = Math.max(most, ++inFlight);
          try {
            return await host.call(FileSystem.readText, `${root}/a.txt`);
          } finally {
            inFlight--;
          }
        },
        { context: ctx, concurrency: 1 },
      );
      assert.deepEqual(results.map((r) => [r.host, r.ok, r.ok ? r.value : r.kind]), [['h1', true, 'over ssh\n'], ['h2', false, 'unreachable']]);
      assert.deepEqual(results.summary, { total: 2, ok: 1, changed: 0, failed: 0, denied: 0, unreachable: 1 });
      assert.equal(most, 1);
      await assert.rejects(fanout('env=nowhere', async () => 1, { context: ctx }), /env=nowhere|no host/i);
      // A concurrency that is not a whole number from 1 (NaN would start no host and leave no results) is refused, naming it.
      for (const concurrency of [Number.NaN, 0, 1.5]) {
        await assert.rejects(fanout('env=prod', async () => 1, { context: ctx, concurrency }), (e: Error) => e instanceof ArgumentError && e.message === `fanout("env=prod"): concurrency is how many hosts are worked on at once, a whole number from 1; got ${concurrency}`);
      }
    } finally {
      await fleet.hosts[1]!.restart();
    }
  });

  test('remux rpc: one host prints the value; a selector prints a line per host and a summary', async () => {
    const one = await remux(['rpc', 'h1', 'FileSystem.readText', `${root}/a.txt`], { env: env() });
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout, 'over ssh\n');
    const cmd = await remux(['rpc', 'h1', 'Exec.command', '--', 'uname', '-s'], { env: env() });
    assert.deepEqual([cmd.code, cmd.stdout], [0, 'Linux\n']);
    const fan = await remux(['rpc', 'env=prod', 'FileSystem.stat', `${root}/a.txt`], { env: env() });
    assert.equal(fan.code, 0, fan.stderr);
    assert.match(fan.stdout, /^h1: \{"type":"file","size":9/m);
    assert.match(fan.stdout, /^h2: \{"type":"file","size":9/m);
    assert.match(fan.stderr, /2 hosts: 0 changed, 2 ok, 0 failed, 0 denied, 0 unreachable/);
    const json = await remux(['rpc', 'env=prod', 'FileSystem.readText', '/etc/shadow', '--json'], { env: env() });
    assert.equal(json.code, 77);
    const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { host?: string; ok?: boolean; kind?: string; error?: { type: string }; summary?: unknown });
    assert.deepEqual(lines.filter((l) => l.host).map((l) => [l.host, l.ok, l.kind, l.error?.type]).sort(), [['h1', false, 'denied', 'DeniedError'], ['h2', false, 'denied', 'DeniedError']]);
    assert.deepEqual(lines.at(-1)?.summary, { total: 2, ok: 0, changed: 0, failed: 0, denied: 2, unreachable: 0, hosts: 2 });
    // One host denied: the refusal, and where to look next.
    const denied = await remux(['rpc', 'h1', 'FileSystem.readText', '/etc/shadow'], { env: env() });
    assert.equal(denied.code, 77);
    assert.match(denied.stderr, /^remux: .*\/etc\/shadow.*\nhint: FileSystem\.readText asks for read_file \/etc\/shadow, which policy (\S+) denies \(no rule allows it\): see its rules with `remux policy show \1`, or call with --policy NAME to use another one\n$/s);
    // A mistyped method, or the hosts left out: exit 2 and what was most likely meant.
    const typo = await remux(['rpc', 'h1', 'FileSytem.readText', `${root}/a.txt`], { env: env() });
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /^remux: unknown method "FileSytem\.readText" \(known: FileSystem\.readText, .*\)\nhint: did you mean FileSystem\.readText\?\n$/);
    const swapped = await remux(['rpc', 'FileSystem.readText', `${root}/a.txt`], { env: env() });
    assert.equal(swapped.code, 2);
    assert.match(swapped.stderr, new RegExp(`\\nhint: the hosts come first: remux rpc HOSTS FileSystem\\.readText ${root}/a\\.txt …\\n$`));
    // Hosts that are not there, as `client run` says it: a selector picking none is a usage error (2), one unknown name unreachable (255).
    const none = await remux(['rpc', 'env=nowhere', 'FileSystem.stat', `${root}/a.txt`], { env: env() });
    assert.deepEqual([none.code, none.stderr], [2, 'remux: no host matches "env=nowhere"; labels in the inventory: env=prod\n']);
    const listed = await remux(['rpc', 'h1,h9', 'FileSystem.stat', `${root}/a.txt`], { env: env() });
    assert.deepEqual([listed.code, listed.stderr], [2, 'remux: no host named "h9"; hosts in the inventory: h1, h2 (and the built-in localhost/local)\n']);
    const unknown = await remux(['rpc', 'h9', 'FileSystem.stat', `${root}/a.txt`], { env: env() });
    assert.deepEqual([unknown.code, unknown.stderr], [255, 'remux: no host named "h9"; hosts in the inventory: h1, h2 (and the built-in localhost/local)\n']);
  });

  test('remux rpc FileSystem.lineInFile and ensureDirectory: options from the command line, --mode in octal; a method without a mode refuses --mode', async () => {
    const dir = join(root, 'w/conf.d');
    const made = await remux(['rpc', 'h1', 'FileSystem.ensureDirectory', dir, '--parents', '--mode', '0750'], { env: env() });
    assert.equal(made.code, 0, made.stderr);
    assert.equal(statSync(dir).mode & 0o7777, 0o750);
    writeFileSync(join(dir, 'app.conf'), 'port=80\n');
    const edited = await remux(['rpc', 'h1', 'FileSystem.lineInFile', join(dir, 'app.conf'), 'port=443', '--regexp', '^port='], { env: env() });
    assert.equal(edited.code, 0, edited.stderr);
    assert.match(edited.stdout, /^changed\n[\s\S]*^-port=80\n\+port=443$/m);
    // Both hosts share this machine's disk: fanned out, each finds it done.
    const again = await remux(['rpc', 'env=prod', 'FileSystem.lineInFile', join(dir, 'app.conf'), 'port=443', '--regexp', '^port=', '--json'], { env: env() });
    assert.equal(again.code, 0, again.stderr);
    const values = again.stdout.trim().split('\n').map((l) => JSON.parse(l) as { value?: { changed: boolean; diff: string } }).filter((l) => l.value);
    assert.deepEqual(values.map((l) => [l.value?.changed, l.value?.diff]), [[false, ''], [false, '']]);
    assert.equal(readFileSync(join(dir, 'app.conf'), 'utf8'), 'port=443\n');
    const written = await remux(['rpc', 'h1', 'FileSystem.writeText', join(dir, 'app.conf'), '--diff', '--owner', 'nobody', '--mode', '0640', '--json'], { env: env(), input: 'port=8443\n' });
    assert.equal(written.code, 0, written.stderr);
    assert.match((JSON.parse(written.stdout) as { value: { diff: string } }).value.diff, /^-port=443\n\+port=8443$/m);
    assert.deepEqual([statSync(join(dir, 'app.conf')).uid, statSync(join(dir, 'app.conf')).mode & 0o777], [Number(execFileSync('id', ['-u', 'nobody']).toString()), 0o640]);
    // Its content is a pipe or a file: /dev/null, which is no content at all, is refused saying how to write an empty file.
    const fromNull = spawnSync(REMUX_BIN, ['rpc', 'h1', 'FileSystem.writeText', join(dir, 'app.conf')], { env: { ...process.env, ...env() }, stdio: [openSync('/dev/null', 'r'), 'pipe', 'pipe'], encoding: 'utf8' });
    assert.deepEqual([fromNull.status, fromNull.stderr], [2, "remux: FileSystem.writeText reads the content from stdin, a pipe or a file (not a terminal or /dev/null): remux rpc HOST FileSystem.writeText PATH < file; for an empty file, printf '' | remux rpc …\n"]);
    const stat = await remux(['rpc', 'h1', 'FileSystem.stat', dir, '--mode', '0700'], { env: env() });
    assert.deepEqual([stat.code, stat.stderr], [2, "remux: FileSystem.stat takes no --mode (it is the mode of what FileSystem.writeText, lineInFile, ensureDirectory and Template.file write, or a custom tool's mode option)\n"]);
    const audit = AuditStore.open(join(f.home, 'audit.db'));
    try {
      const record = audit.list().find((a) => a.begin.command === 'FileSystem.ensureDirectory');
      assert.deepEqual(record?.begin.argv, ['FileSystem.ensureDirectory', dir, '--parents', 'true', '--mode', '0750'], 'the audit records the mode as given');
    } finally {
      audit.close();
    }
  });

  test("remux rpc Exec: client run's exit statuses (a signal 128+N, a timeout 124, a malformed command 2) and --json output as JSON lines", async () => {
    // Killed by SIGKILL on the host (the fleet shares this machine's processes): 137, as client run says.
    const killed = spawnRemux(['rpc', 'h1', 'Exec.command', '--', 'sleep', '29.37'], { env: env() });
    const status = new Promise<number | null>((resolve) => killed.once('exit', resolve));
    await waitRunning(fleet.hosts[0]!, '^\\S*sleep 29\\.37$');
    await promisify(execFile)('pkill', ['-KILL', '-xf', 'sleep 29.37']);
    assert.equal(await status, 137);
    // Interrupted (Ctrl-C) over several hosts: 130, each host's line saying so, as client run's.
    const fanned = spawnRemux(['rpc', 'env=prod', 'Exec.stream', '--', 'sleep', '29.38'], { env: env() });
    let fannedErr = '';
    fanned.stderr?.setEncoding('utf8').on('data', (d: string) => (fannedErr += d));
    const fannedStatus = new Promise<number | null>((resolve) => fanned.once('exit', resolve));
    // Both hosts' commands running (the fleet's hosts share this machine's processes).
    const running = (): number => Number(spawnSync('pgrep', ['-fc', '^\\S*sleep 29\\.38$'], { encoding: 'utf8' }).stdout.trim() || '0');
    for (let waited = 0; running() < 2 && waited < 10_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    fanned.kill('SIGINT');
    assert.equal(await fannedStatus, 130, fannedErr);
    assert.deepEqual(fannedErr.split('\n').filter((l) => /^h\d: /.test(l)).sort(), ['h1: interrupted', 'h2: interrupted']);
    const late = await remux(['rpc', 'h1', '--timeout', '1', 'Exec.command', '--', 'sleep', '5'], { env: env() });
    assert.equal(late.code, 124, late.stderr);
    // A word the parser refuses (a newline): a usage error, as client run's, not a denial.
    const malformed = await remux(['rpc', 'h1', 'Exec.command', '--', 'echo', 'a\nb'], { env: env() });
    assert.equal(malformed.code, 2, malformed.stderr);
    assert.match(malformed.stderr, /newline/);
    const streamed = await remux(['rpc', 'env=prod', 'Exec.stream', '--json', '--', 'echo', 'hi'], { env: env() });
    assert.equal(streamed.code, 0, streamed.stderr);
    const lines = streamed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { host?: string; stream?: string; data?: string; summary?: { ok: number } });
    assert.deepEqual(lines.filter((l) => l.stream).map((l) => [l.host, l.stream, l.data]).sort(), [['h1', 'stdout', 'hi\n'], ['h2', 'stdout', 'hi\n']]);
    assert.equal(lines.at(-1)?.summary?.ok, 2);
  });

  test('a user project: import { connect, fanout } from "remux/runtime" with no options acts as the CLI would', async () => {
    // The package as a dependency: node_modules/remux is this checkout, resolved through its "exports".
    const project = mkdtempSync(join(tmpdir(), 'remux-sdk-user-'));
    try {
      mkdirSync(join(project, 'node_modules'));
      symlinkSync(REPO_ROOT, join(project, 'node_modules', 'remux'));
      writeFileSync(
        join(project, 'deploy.mjs'),
        `import { connect, fanout, DeniedError } from 'remux/runtime';
import { FileSystem } from 'remux/runtime/tools';
const out = {};
const host = await connect('h1');
try {
  out.text = await host.call(FileSystem.readText, ${JSON.stringify(`${root}/a.txt`)});
  out.uname = (await host.exec(['uname', '-s'])).stdout;
  out.denied = await host.call(FileSystem.readText, '/etc/shadow').then(() => false, (e) => e instanceof DeniedError);
} finally {
  await host.close();
}
const seen = [];
const results = await fanout('env=prod', (h) => h.call(FileSystem.stat, ${JSON.stringify(`${root}/a.txt`)}), { concurrency: 1, onProgress: (r, done, total) => seen.push([r.host, done, total]) });
out.fan = results.map((r) => [r.host, r.ok, r.ok ? r.value.size : r.error.message]);
out.summary = results.summary;
out.seen = seen;
const denied = await fanout('env=prod', (h) => h.call(FileSystem.readText, '/etc/shadow'));
out.deniedSummary = denied.summary;
// Back to back: the second fan-out finds each host's interpreter kept from the first.
const pids = async () => (await fanout('env=prod', async (h) => h.hello.pid)).map((r) => r.value);
out.samePids = JSON.stringify(await pids()) === JSON.stringify(await pids());
console.log(JSON.stringify(out));
`,
      );
      const earlier = new Set(ctx.audit.list().map((a) => a.id));
      // No explicit exit: the process ends by itself once the shared context (its SSH connections) is closed.
      const run = await promisify(execFile)(process.execPath, ['deploy.mjs'], { cwd: project, env: { ...process.env, ...env() }, timeout: 30_000 });
      const out = JSON.parse(run.stdout) as Record<string, unknown>;
      assert.equal(out.text, 'over ssh\n');
      assert.equal(out.uname, 'Linux\n');
      assert.equal(out.denied, true);
      assert.deepEqual(out.fan, [['h1', true, 9], ['h2', true, 9]]);
      assert.deepEqual(out.summary, { total: 2, ok: 2, changed: 0, failed: 0, denied: 0, unreachable: 0 });
      assert.deepEqual(out.seen, [['h1', 1, 2], ['h2', 2, 2]]);
      assert.deepEqual(out.deniedSummary, { total: 2, ok: 0, changed: 0, failed: 0, denied: 2, unreachable: 0 });
      assert.equal(out.samePids, true);
      // Audited in $REMUX_HOME's store, as the local user (the CLI's principal).
      const audit = AuditStore.open(join(f.home, 'audit.db'));
      try {
        const rows = audit.list().filter((a) => !earlier.has(a.id));
        assert.equal(rows.filter((a) => a.begin.command === 'FileSystem.stat' && a.end?.exitCode === 0).length, 2);
        assert.deepEqual([...new Set(rows.map((a) => a.begin.principal))], [`cli:${userInfo().username}`]);
        assert.equal(rows.filter((a) => a.begin.resource === '/etc/shadow' && a.begin.decision === 'deny').length, 3);
      } finally {
        audit.close();
      }
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });
});
