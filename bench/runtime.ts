// The agentless runtime (src/runtime): bytes sent before the handshake, time to the first result on a
// fresh SSH connection, sequential per-call latency on one warm host (Exec.command true and
// FileSystem.readText, through policy and audit, and the bare protocol beside them), 1,000 calls in
// flight on one connection, and a fan-out to 20 hosts (runtime-fanout.ts), against Mitogen
// (Debian python3-mitogen, an anchor in scripts/bench.sh) measured in the same run on the same fleet
// sshd. rmote 0.3.1 cannot be installed here (no PyPI): its figures are quoted from FIELD-NOTES §5.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { AuditStore } from '../src/audit/store.js';
import { ADMIN_SCOPE } from '../src/config/principals.js';
import type { PerformContext } from '../src/core/perform.js';
import { ConnectionPool } from '../src/hosts/pool.js';
import { parsePolicies } from '../src/policy/load.js';
import { remoteSource, stage0Command, stage1Frame, stage2Source, toolSource } from '../src/runtime/bootstrap.js';
import { connect, FileSystem, type RuntimeHost } from '../src/runtime/index.js';
import { Link } from '../src/runtime/link.js';
import { channelTransport } from '../src/runtime/transports.js';
import { inventoryEntry, startFleet, type FleetHost } from '../test/fleet/fleet.js';
import { percentile } from './measure.js';
import { benchRuntimeFanout } from './runtime-fanout.js';
import type { BenchResult } from './types.js';

const RUNS = 500;
/**
 * Calls before the measured ones. V8 keeps optimizing the SDK's code for a few thousand calls here
 * (readText at durability normal: 0.84 ms p50 over the first 250 calls, 0.53 at 1,000, settled at 0.38
 * from about 3,000), so the figure is the steady state a long-running caller sees; the first EARLY
 * calls' p50 is printed beside it.
 */
const WARM_UP = 3000;
const EARLY = 300;
const CONCURRENT = 1000;
const FRESH = 5;
const RMOTE_BOOTSTRAP = 11_117;
const MITOGEN_PYTHON = '/usr/bin/python3';

export async function benchRuntime(): Promise<BenchResult> {
  const fleet = await startFleet({ count: 1 });
  const h = fleet.hosts[0] as FleetHost;
  const dir = mkdtempSync(join(tmpdir(), 'remux-bench-rt-'));
  const file = join(dir, 'hostname');
  writeFileSync(file, 'bench\n');
  const audit = AuditStore.open(join(dir, 'audit.db'));
  const entry = inventoryEntry(h);
  const policies = parsePolicies(
    `policies:\n  bench:\n    sandbox: false\n    capabilities: &caps\n      - { operation: read_file, resource: "${dir}/**" }\n      - { operation: execute_binary, resource: "true" }\n      - { operation: write_stdout }\n  boxed:\n    capabilities: *caps\n`,
    'bench.yaml',
    {},
  );
  // The store's other durability, for comparison only: commits not fsynced (survives a process crash, not a power cut).
  const auditNormal = AuditStore.open(join(dir, 'audit-normal.db'), { durability: 'normal' });
  const contextFor = (pool: ConnectionPool, store = audit): PerformContext => ({
    principal: { name: 'bench', via: 'cli', scope: ADMIN_SCOPE },
    policies,
    defaultPolicy: 'bench',
    defaultTimeoutMs: null,
    defaultPipefail: false,
    audit: store,
    host: () => pool.host(entry),
    hostEntry: () => entry,
  });
  try {
    const before = Buffer.byteLength(stage0Command()) + stage1Frame().length;

    // A fresh pool each time: TCP, SSH handshake and auth, channel, bootstrap, first call.
    const fresh: number[] = [];
    for (let i = 0; i < FRESH; i++) {
      const pool = new ConnectionPool({ knownHostsFile: fleet.knownHostsFile });
      const started = performance.now();
      const host = await connect(h.name, { context: contextFor(pool) });
      await host.call(FileSystem.readText, file);
      fresh.push(performance.now() - started);
      await host.close();
      await pool.closeAll();
    }

    const pool = new ConnectionPool({ knownHostsFile: fleet.knownHostsFile });
    const host = await connect(h.name, { context: contextFor(pool) });
    const [execP50, execWarmUpP50] = await perCallWithWarmUp(() => host.exec(['true']));
    const [readP50, readWarmUpP50] = await perCallWithWarmUp(() => host.call(FileSystem.readText, file));
    const unsynced = await connect(h.name, { context: contextFor(pool, auditNormal) });
    const execNormalP50 = await perCall(() => unsynced.exec(['true']));
    const readNormalP50 = await perCall(() => unsynced.call(FileSystem.readText, file));
    await closeQuietly(unsynced);
    // Under a policy that sandboxes commands (the templates' default), Exec goes through perform to the host's executor, in the OS sandbox.
    const boxed = await connect(h.name, { context: contextFor(pool), policy: 'boxed' });
    const execBoxedP50 = await perCall(() => boxed.exec(['true']));
    await closeQuietly(boxed);
    // The protocol alone (no policy, no audit): a call that returns at once, on its own channel.
    const link = await Link.open(channelTransport(await pool.host(entry).openStream!(stage0Command()), h.name));
    const noop = toolSource('Noop', 'def f():\n    return None\n');
    const linkP50 = await perCall(() => link.call(noop, 'f', []).result);
    const execTool = toolSource('Exec', remoteSource('tools/exec.py'));
    // Beside it, the floor under Exec: a call that only starts /bin/true and waits for it (posix_spawn, no pipes).
    const spawnTrue = toolSource('SpawnTrue', 'import os\ndef f():\n    os.waitpid(os.posix_spawn("/bin/true", ["true"], dict(os.environ)), 0)\n');
    const [linkExecP50, linkSpawnP50] = await perCallPair(
      () => link.call(execTool, 'run', [['/bin/true'], null, null, null]).result,
      () => link.call(spawnTrue, 'f', []).result,
    );
    link.close();
    // 1,000 calls in flight at once on the one connection: all complete; what memory it took here and on the host.
    const rssBefore = process.memoryUsage().rss;
    const t0 = performance.now();
    const many = await Promise.all(Array.from({ length: CONCURRENT }, () => host.call(FileSystem.readText, file)));
    const concurrentMs = performance.now() - t0;
    if (many.some((x) => x !== 'bench\n')) throw new Error('a concurrent call returned something else');
    const rssAfter = process.memoryUsage().rss;
    const remotePeakKb = remotePeak(host.hello.pid);
    // What the audit trail costs a call: a begin and an end, each committed before it resolves.
    const auditP50 = await perCall(async () => audit.end(await audit.begin({ principal: 'bench', host: h.name, operation: 'read_file', decision: 'allow' }), { exitCode: 0, durationMs: 0 }));
    await closeQuietly(host);
    await pool.closeAll();

    const mitogen = await mitogenFigures(h, fleet.knownHostsFile, file);
    const figures: Record<string, number> = {
      bytesBeforeHandshake: before,
      rmoteBytesBeforeHandshake: RMOTE_BOOTSTRAP,
      freshFirstResultMs: percentile(fresh, 50),
      execTrueP50Ms: execP50,
      readTextP50Ms: readP50,
      execTrueWarmUpP50Ms: execWarmUpP50,
      readTextWarmUpP50Ms: readWarmUpP50,
      execTrueNormalDurabilityP50Ms: execNormalP50,
      execTrueSandboxedP50Ms: execBoxedP50,
      readTextNormalDurabilityP50Ms: readNormalP50,
      bareCallP50Ms: linkP50,
      bareExecTrueP50Ms: linkExecP50,
      bareSpawnTrueP50Ms: linkSpawnP50,
      auditBeginEndP50Ms: auditP50,
      concurrent1000Ms: concurrentMs,
      concurrent1000RssGrowthMb: (rssAfter - rssBefore) / 2 ** 20,
      processMaxRssMb: process.resourceUsage().maxRSS / 1024,
    };
    const lines = [
      `bytes before the handshake: ${before} (stage 0 ${Buffer.byteLength(stage0Command())} + stage 1 ${stage1Frame().length}); rmote 11,117 (${(before / RMOTE_BOOTSTRAP).toFixed(2)}×); ` +
        `then stage 2 (the protocol loop, uncompressed) ${Buffer.byteLength(stage2Source())} B as the first frame once the hello is checked`,
      `fresh SSH connection to first result (readText), median of ${FRESH}: ${fresh.map((x) => x.toFixed(0)).join(', ')} → ${percentile(fresh, 50).toFixed(1)} ms`,
      `warm, sequential, ${RUNS} each after ${WARM_UP}, p50 per call: Exec.command true ${execP50.toFixed(3)} ms, FileSystem.readText ${readP50.toFixed(3)} ms (policy + audit + call; over the first ${EARLY} calls: ${execWarmUpP50.toFixed(3)} and ${readWarmUpP50.toFixed(3)} ms); bare protocol: a round trip ${linkP50.toFixed(3)} ms, Exec run of /bin/true ${linkExecP50.toFixed(3)} ms (a call that only starts /bin/true and waits for it: ${linkSpawnP50.toFixed(3)} ms); audit begin + end ${auditP50.toFixed(3)} ms (a begin waits for its fsync, which also carries the last end; an end for its commit)`,
      `the same with the audit store at durability normal (commits not fsynced: survives a process crash, not a power cut; for comparison only): Exec.command true ${execNormalP50.toFixed(3)} ms, FileSystem.readText ${readNormalP50.toFixed(3)} ms`,
    ];
    lines.push(`Exec.command true under a policy that sandboxes commands (through perform and the host's executor, in the OS sandbox, as client run): ${execBoxedP50.toFixed(3)} ms`);
    lines.push(
      `${CONCURRENT} concurrent readText calls on one connection: all complete in ${concurrentMs.toFixed(0)} ms; this process (no daemon: the SDK runs in it) RSS ${(rssBefore / 2 ** 20).toFixed(0)} → ${(rssAfter / 2 ** 20).toFixed(0)} MB, peak ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB; ` +
        `the host's interpreter peak ${remotePeakKb === null ? 'n/a' : `${(remotePeakKb / 1024).toFixed(0)} MB`}`,
    );
    if (remotePeakKb !== null) figures.remotePeakRssMb = remotePeakKb / 1024;
    if ('error' in mitogen) lines.push(`Mitogen: not measured (${mitogen.error})`);
    else {
      Object.assign(figures, { mitogenFreshMs: mitogen.fresh, mitogenExecTrueP50Ms: mitogen.exec, mitogenReadP50Ms: mitogen.read });
      lines.push(
        `Mitogen 0.3.3 (same host): fresh connection to first result ${mitogen.fresh.toFixed(1)} ms (remux ${(percentile(fresh, 50) / mitogen.fresh).toFixed(2)}×); ` +
          `p50 subprocess true ${mitogen.exec.toFixed(3)} ms (remux ${(execP50 / mitogen.exec).toFixed(2)}×), read a file ${mitogen.read.toFixed(3)} ms (remux ${(readP50 / mitogen.read).toFixed(2)}×)`,
      );
    }
    lines.push('rmote 0.3.1: not installable here (no PyPI access); FIELD-NOTES §5: 11,117 B bootstrap, about 1.9 ms per call');
    const fan = await benchRuntimeFanout();
    Object.assign(figures, fan.figures);
    lines.push(...fan.lines);
    return { name: 'runtime (agentless RPC over SSH)', figures, lines };
  } finally {
    audit.close();
    auditNormal.close();
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The peak resident memory (VmHWM, kB) of the host's interpreter: the fleet's hosts share this machine's process table. */
function remotePeak(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function closeQuietly(host: RuntimeHost): Promise<void> {
  await host.close().catch(() => undefined);
}

async function perCall(call: () => Promise<unknown>): Promise<number> {
  return (await perCallWithWarmUp(call))[0];
}

/** p50 of RUNS sequential calls after WARM_UP, and p50 of the first EARLY calls of the warm-up. */
async function perCallWithWarmUp(call: () => Promise<unknown>): Promise<[number, number]> {
  const timed = async (runs: number): Promise<number> => {
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      await call();
      samples.push(performance.now() - started);
    }
    return percentile(samples, 50);
  };
  const early = await timed(EARLY);
  await timed(WARM_UP - EARLY);
  return [await timed(RUNS), early];
}

/** p50 of each of two calls, made alternately: a load that comes and goes weighs on both alike. */
async function perCallPair(a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<[number, number]> {
  const timed = async (call: () => Promise<unknown>): Promise<number> => {
    const started = performance.now();
    await call();
    return performance.now() - started;
  };
  for (let i = 0; i < WARM_UP; i++) await a().then(b);
  const as: number[] = [];
  const bs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    as.push(await timed(a));
    bs.push(await timed(b));
  }
  return [percentile(as, 50), percentile(bs, 50)];
}

// Mitogen's own timing, in its own interpreter: a fresh connection to the first result, then p50 of
// sequential calls on it (subprocess.call(['true']) and reading a file).
const MITOGEN_SCRIPT = `
import json, linecache, sys, time, subprocess, statistics
import mitogen.master
host, port, user, key, known, path, runs = sys.argv[1:8]
# Stdlib functions only: Mitogen 0.3.3 cannot import this __main__ into Python 3.11 on the host.
# linecache.updatecache reads the file from disk on every call.
read = linecache.updatecache
broker = mitogen.master.Broker()
router = mitogen.master.Router(broker)
try:
    t = time.perf_counter()
    ctx = router.ssh(python_path=['/usr/bin/python3'], hostname=host, port=int(port), username=user, identity_file=key, check_host_keys='enforce',
                     ssh_args=['-o', 'UserKnownHostsFile=' + known, '-o', 'GlobalKnownHostsFile=/dev/null', '-F', '/dev/null'])
    ctx.call(read, path)
    fresh = (time.perf_counter() - t) * 1000
    def p50(fn, *a):
        for _ in range(20):
            ctx.call(fn, *a)
        s = []
        for _ in range(int(runs)):
            t = time.perf_counter(); ctx.call(fn, *a); s.append((time.perf_counter() - t) * 1000)
        return statistics.median(s)
    print(json.dumps({'fresh': fresh, 'exec': p50(subprocess.call, ['true']), 'read': p50(read, path)}))
finally:
    broker.shutdown()
    broker.join()
`;

function mitogenFigures(h: FleetHost, knownHosts: string, file: string): Promise<{ fresh: number; exec: number; read: number } | { error: string }> {
  if (!existsSync('/usr/lib/python3/dist-packages/mitogen')) return Promise.resolve({ error: 'python3-mitogen is not installed' });
  return new Promise((resolve) => {
    const child = spawn(MITOGEN_PYTHON, ['-c', MITOGEN_SCRIPT, h.address, String(h.port), h.user, h.identityFile, knownHosts, file, String(RUNS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('close', (code) => {
      try {
        if (code !== 0) throw new Error(`exit ${code}: ${err.trim().split('\n').slice(-1)[0] ?? ''}`);
        resolve(JSON.parse(out) as { fresh: number; exec: number; read: number });
      } catch (e) {
        resolve({ error: (e as Error).message });
      }
    });
  });
}
