// MCP `run_command` of `true`, one call after another through the SDK's own clients: over stdio (the real
// `remux mcp --stdio`, handed to the daemon, and in its own process with --no-daemon) and over
// Streamable HTTP to the daemon, on localhost, on one warm SSH host (a fleet sshd) and on an outbound
// agent on loopback (`remux agent` dialing the daemon: through the relay); MCP ping over both
// is the transport's own share (no tool, no perform()); and the issue's own try, `remux client batch` of
// 100 `true` through the daemon, localhost and SSH (same goals per command). Anchors measured in the same run: `remux client
// run localhost true` and `bash -c true`. Issue goal: p50 <= 2 ms on localhost, <= 3 ms on a warm SSH
// host. Each row measures a warm path, after WARMUP calls: V8 keeps optimizing the daemon's path for a
// couple of thousand calls (stdio localhost, p50 per 250 calls: 2.90, 2.43, 2.40 … 2.26 at 1,500, about
// 2.0 from 2,000 on), so the figure is what an AI client sees after its first minutes; the p50 of the
// first EARLY calls (a daemon just started) is printed beside. The issue set its goals where bash ran /bin/true 100
// times in about 0.1 s: the same loop here scales them to this machine. Beside it, the floor under a
// call here: a posix_spawn of /bin/true waited for (what remux-spawner does, timed by python3) and an
// audit begin + end (the one fsync a run_command waits for) on the same disk. Run: node dist/bench/run.js mcp
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { AuditStore } from '../src/audit/store.js';
import { startFleet } from '../test/fleet/fleet.js';
import { caFetch } from '../test/mcp/fetch.js';
import { REMUX_BIN, remux, spawnRemux, tempHome } from '../test/support/cli.js';
import { percentile, run } from './measure.js';
import type { BenchResult } from './types.js';

const CALLS = 300;
const WARMUP = 3000;
const EARLY = 300;
const PROCESS_RUNS = 30;
/** `client batch` rows: commands per batch, and batches measured after WARMUP commands' worth. */
const BATCH = 100;
const BATCH_RUNS = 10;
// Static checks only (sandbox: false): what is measured is the MCP path. Beside it, the same calls with
// the OS sandbox on, as every policy template has it: a principal whose policy is \`sandboxed\`.
const POLICY = `policies:
  bench:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: "true" }
      - { operation: write_stdout, resource: null }
  sandboxed:
    capabilities:
      - { operation: execute_binary, resource: "true" }
      - { operation: write_stdout, resource: null }
`;

interface Stats {
  p50: number;
  p95: number;
  /** p50 of perform()'s own duration (the result's durationMs): the rest of a call is MCP, transport and client. */
  performP50?: number;
  /** p50 of the first EARLY warm-up calls: the same path before V8 has optimized it (a daemon just started). */
  warmupP50?: number;
}

const p50 = (samples: number[]): number => percentile(samples, 50);

/** The issue's reference: bash starting /bin/true 100 times took about 0.1 s where its goals were set. */
const ISSUE_LOOP_MS = 100;
const LOOP = ['bash', '-c', 'for i in {1..100}; do /bin/true; done'];

/** p50 of a posix_spawn of /bin/true waited for, timed inside one python3 process (ms). */
const SPAWN_FLOOR = [
  'python3',
  '-c',
  `import os, time
xs = []
for _ in range(${CALLS}):
    t = time.perf_counter(); os.waitpid(os.posix_spawn('/bin/true', ['true'], {}), 0); xs.append(time.perf_counter() - t)
print(sorted(xs)[len(xs) // 2] * 1000)`,
];

/** An audit begin + end on a store in `dir` (as the daemon's: full durability, one fsync per action). */
async function auditFloor(dir: string): Promise<number> {
  const store = AuditStore.open(join(dir, 'floor.db'));
  try {
    const samples: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.now();
      await store.end(await store.begin({ principal: 'bench', host: 'localhost', operation: 'exec', decision: 'allow' }), { exitCode: 0, durationMs: 0 });
      samples.push(performance.now() - t0);
    }
    return p50(samples);
  } finally {
    store.close();
  }
}

function stats(samples: number[]): Stats {
  return { p50: percentile(samples, 50), p95: percentile(samples, 95) };
}

async function calls(client: Client, host: string): Promise<Stats> {
  const once = async (): Promise<[number, number]> => {
    const t0 = performance.now();
    const r = await client.callTool({ name: 'run_command', arguments: { host, command: 'true' } });
    const ms = performance.now() - t0;
    if (r.isError) throw new Error(`run_command on ${host} failed: ${JSON.stringify(r.content)}`);
    return [ms, (r.structuredContent as { durationMs: number }).durationMs];
  };
  const warmup: number[] = [];
  for (let i = 0; i < WARMUP; i++) warmup.push((await once())[0]);
  warmup.length = EARLY;
  const samples: number[] = [];
  const performed: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const [ms, performMs] = await once();
    samples.push(ms);
    performed.push(performMs);
  }
  return { ...stats(samples), performP50: p50(performed), warmupP50: p50(warmup) };
}

/**
 * The issue's try as a new user: `remux client batch HOST -f FILE` with 100 lines of `true`, a whole CLI
 * process each (the native launcher hands it to the daemon), its wall time per command; measured after
 * WARMUP commands' worth of batches, as the MCP rows are, and the first EARLY commands' batches beside.
 */
async function batches(host: string, file: string, env: NodeJS.ProcessEnv): Promise<Stats> {
  const once = async (): Promise<number> => {
    const t = await run([REMUX_BIN, 'client', 'batch', host, '-f', file], env);
    if (t.code !== 0) throw new Error(`client batch on ${host}: exit ${t.code}: ${t.stderr}`);
    return t.ms / BATCH;
  };
  const warmup: number[] = [];
  for (let i = 0; i < WARMUP / BATCH; i++) warmup.push(await once());
  const samples: number[] = [];
  for (let i = 0; i < BATCH_RUNS; i++) samples.push(await once());
  return { ...stats(samples), warmupP50: p50(warmup.slice(0, EARLY / BATCH)) };
}

/** MCP `ping`: the transport and the SDK's round trip alone, no tool and no perform(). */
async function pings(client: Client): Promise<Stats> {
  for (let i = 0; i < WARMUP; i++) await client.ping();
  const samples: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now();
    await client.ping();
    samples.push(performance.now() - t0);
  }
  return stats(samples);
}

async function processes(argv: string[], env: NodeJS.ProcessEnv): Promise<Stats> {
  const samples: number[] = [];
  for (let i = 0; i < PROCESS_RUNS + 3; i++) {
    const t = await run(argv, env);
    if (t.code !== 0) throw new Error(`${argv.join(' ')}: exit ${t.code}: ${t.stderr}`);
    if (i >= 3) samples.push(t.ms);
  }
  return stats(samples);
}

export async function benchMcp(): Promise<BenchResult> {
  const fleet = await startFleet({ count: 1 });
  const h = tempHome();
  const env = { ...h.env, REMUX_KNOWN_HOSTS: fleet.knownHostsFile };
  let agent: { stop(): void } | null = null;
  try {
    writeFileSync(join(h.home, 'policies.yaml'), POLICY);
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: bench\ndaemon:\n  rate_limit: { requests_per_second: 100000, burst: 100000 }\n');
    const host = fleet.hosts[0]!;
    await remux(['hosts', 'add', 'h1', `${host.user}@${host.address}`, '--port', String(host.port), '--identity', host.identityFile], { env });
    const added = await remux(['principal', 'add', 'bench', '--admin', '--json'], { env });
    const token = (JSON.parse(added.stdout) as { token: string }).token;
    const boxed = await remux(['principal', 'add', 'boxed', '--hosts', 'localhost,h1', '--policy', 'sandboxed', '--json'], { env });
    const boxedToken = (JSON.parse(boxed.stdout) as { token: string }).token;
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env });
    if (started.code !== 0) throw new Error(`daemon start: ${started.stderr}`);
    const status = JSON.parse((await remux(['daemon', 'status', '--json'], { env })).stdout) as { http: { url: string } };
    const ca = readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8');
    agent = await startAgent(env, status.http.url, join(h.home, 'tls', 'cert.pem'));

    // This machine first, while nothing else of the benchmark runs: the issue's loop, and the floor under a call.
    const loop = await processes(LOOP, process.env);
    const spawned = await run(SPAWN_FLOOR);
    if (spawned.code !== 0) throw new Error(`python3 posix_spawn: ${spawned.stderr}`);
    const startMs = Number(spawned.stdout);
    const auditMs = await auditFloor(h.home);
    const scale = loop.p50 / ISSUE_LOOP_MS;

    // One client connected at a time, as a user's AI client would be: each is closed after its rows.
    const withClient = async <T>(transport: StdioClientTransport | StreamableHTTPClientTransport, use: (client: Client) => Promise<T>): Promise<T> => {
      const client = new Client({ name: 'remux-bench', version: '1' });
      await client.connect(transport);
      try {
        return await use(client);
      } finally {
        await client.close();
      }
    };
    const stdio = await withClient(new StdioClientTransport({ command: REMUX_BIN, args: ['mcp', '--stdio'], env }), async (c) => ({
      local: await calls(c, 'localhost'),
      ssh: await calls(c, 'h1'),
      agent: await calls(c, AGENT),
      ping: await pings(c),
    }));
    const sandboxed = await withClient(new StdioClientTransport({ command: REMUX_BIN, args: ['mcp', '--stdio', '--principal', 'boxed'], env: { ...env, REMUX_TOKEN: boxedToken } }), async (c) => ({
      local: await calls(c, 'localhost'),
      ssh: await calls(c, 'h1'),
    }));
    const alone = await withClient(new StdioClientTransport({ command: REMUX_BIN, args: ['mcp', '--stdio', '--no-daemon'], env }), async (c) => ({
      local: await calls(c, 'localhost'),
      ssh: await calls(c, 'h1'),
    }));
    const http = await withClient(new StreamableHTTPClientTransport(new URL('mcp', status.http.url), { fetch: caFetch(ca), requestInit: { headers: { authorization: `Bearer ${token}` } } }), async (c) => ({
      local: await calls(c, 'localhost'),
      ssh: await calls(c, 'h1'),
      ping: await pings(c),
    }));

    const trueFile = join(h.home, 'true100.txt');
    writeFileSync(trueFile, 'true\n'.repeat(BATCH));
    const batchLocal = await batches('localhost', trueFile, env);
    const batchSsh = await batches('h1', trueFile, env);

    const r = {
      stdioLocal: stdio.local,
      stdioSsh: stdio.ssh,
      stdioAgent: stdio.agent,
      sandboxedLocal: sandboxed.local,
      sandboxedSsh: sandboxed.ssh,
      stdioAloneLocal: alone.local,
      stdioAloneSsh: alone.ssh,
      httpLocal: http.local,
      httpSsh: http.ssh,
      stdioPing: stdio.ping,
      httpPing: http.ping,
      batchLocal,
      batchSsh,
      clientRun: await processes([REMUX_BIN, 'client', 'run', 'localhost', 'true'], { ...process.env, ...env }),
      bash: await processes(['bash', '-c', 'true'], process.env),
    };
    const figures: Record<string, number> = {};
    for (const [name, s] of Object.entries(r)) {
      Object.assign(figures, {
        [`${name}P50Ms`]: s.p50,
        [`${name}P95Ms`]: s.p95,
        ...(s.performP50 !== undefined ? { [`${name}PerformP50Ms`]: s.performP50 } : {}),
        ...(s.warmupP50 !== undefined ? { [`${name}WarmupP50Ms`]: s.warmupP50 } : {}),
      });
    }
    figures.bashLoopP50Ms = loop.p50;
    figures.spawnTrueP50Ms = startMs;
    figures.auditBeginEndP50Ms = auditMs;
    const goalFor = (ms: number): string => `  goal p50 <= ${ms} ms (${(ms * scale).toFixed(1)} ms scaled to this machine)`;
    const line = (label: string, s: Stats, goal = ''): string =>
      `${label.padEnd(50)} p50 ${s.p50.toFixed(2).padStart(6)} ms  p95 ${s.p95.toFixed(2).padStart(6)} ms  ` +
      (s.performP50 !== undefined ? `perform() p50 ${s.performP50.toFixed(2).padStart(6)} ms  ` : '') +
      `(${(s.p50 / r.clientRun.p50).toFixed(3)}x client run, ${(s.p50 / r.bash.p50).toFixed(2)}x bash -c true)${goal}` +
      (s.warmupP50 !== undefined ? `; its first ${EARLY} calls' p50 ${s.warmupP50.toFixed(2)} ms` : '');
    return {
      name: 'mcp',
      figures,
      lines: [
        `run_command \`true\`: ${WARMUP} warm-up + ${CALLS} sequential calls per row, SDK client (fleet ${fleet.mode}; policy sandbox: false unless the row says); ` +
          `the warm-up lets V8 optimize the path as in a daemon in use; its first ${EARLY} calls are a daemon just started`,
        line('stdio via the daemon, localhost', r.stdioLocal, goalFor(2)),
        line('stdio via the daemon, warm SSH host', r.stdioSsh, goalFor(3)),
        line('stdio via the daemon, agent on loopback (relay)', r.stdioAgent, goalFor(3)),
        line('the same with the OS sandbox on, localhost', r.sandboxedLocal),
        line('the same with the OS sandbox on, warm SSH host', r.sandboxedSsh),
        line('stdio in its own process (--no-daemon), localhost', r.stdioAloneLocal),
        line('stdio in its own process (--no-daemon), SSH', r.stdioAloneSsh),
        line('Streamable HTTP (TLS) to the daemon, localhost', r.httpLocal, goalFor(2)),
        line('Streamable HTTP (TLS) to the daemon, SSH host', r.httpSsh, goalFor(3)),
        `\`remux client batch HOST -f FILE\` of ${BATCH} \`true\` through the daemon, wall time per command (p50 of ${BATCH_RUNS} batches after ${WARMUP / BATCH}; the first ${EARLY / BATCH} batches' beside):`,
        line('client batch, localhost', r.batchLocal, goalFor(2)),
        line('client batch, warm SSH host', r.batchSsh, goalFor(3)),
        'transport floor: MCP ping (no tool, no perform()), same clients:',
        line('ping, stdio via the daemon', r.stdioPing),
        line('ping, Streamable HTTP (TLS) to the daemon', r.httpPing),
        `anchors, ${PROCESS_RUNS} runs each (a process per command):`,
        line('remux client run localhost true', r.clientRun),
        line('bash -c true', r.bash),
        `this machine: bash starts /bin/true 100 times in ${loop.p50.toFixed(0)} ms (where the goals were set: about ${ISSUE_LOOP_MS} ms; ${scale.toFixed(1)}×); ` +
          `under a run_command of \`true\` on localhost: a posix_spawn of /bin/true ${startMs.toFixed(2)} ms + an audit begin and end (its fsync) ${auditMs.toFixed(2)} ms = ${(startMs + auditMs).toFixed(2)} ms`,
      ],
    };
  } finally {
    agent?.stop();
    await remux(['daemon', 'stop'], { env });
    await fleet.stop();
    h.remove();
  }
}

const AGENT = 'a1';

/**
 * `remux agent` on this machine as a user starts one (issue: the relay to an agent on loopback): a
 * REMUX_HOME and a login HOME of its own, its token from `remux agent token`, the daemon's certificate
 * trusted with --ca-file. Resolves once the gateway lists it connected.
 */
async function startAgent(gatewayEnv: Record<string, string>, url: string, caFile: string): Promise<{ stop(): void }> {
  const made = await remux(['agent', 'token', AGENT, '--json'], { env: gatewayEnv });
  if (made.code !== 0) throw new Error(`agent token: ${made.stderr}`);
  const [ag, login] = [tempHome(), tempHome()];
  writeFileSync(join(ag.home, 'policies.yaml'), POLICY);
  writeFileSync(join(ag.home, 'config.yaml'), 'default_policy: bench\n');
  const tokenFile = join(ag.home, 'agent.token');
  writeFileSync(tokenFile, `${(JSON.parse(made.stdout) as { token: string }).token}\n`, { mode: 0o600 });
  const gateway = url.replace('https://', 'wss://').replace(/\/$/, '');
  const child = spawnRemux(['agent', '--gateway', gateway, '--name', AGENT, '--token-file', tokenFile, '--ca-file', caFile], { env: { ...ag.env, HOME: login.home } });
  let output = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  const stop = (): void => {
    child.kill('SIGKILL');
    ag.remove();
    login.remove();
  };
  for (let i = 0; i < 150; i++) {
    const listed = await remux(['hosts', 'list', '--json'], { env: gatewayEnv });
    if ((JSON.parse(listed.stdout) as Array<{ name: string; connected?: boolean }>).some((row) => row.name === AGENT && row.connected)) return { stop };
    await sleep(100);
  }
  stop();
  throw new Error(`remux agent did not connect in 15 s: ${output}`);
}
