// Outbound agents on loopback: the round trip of `true` through the relay (the gateway's perform, the
// relay, the agent's perform), against the same command on this machine directly and over SSH (a fleet
// sshd, pooled connection), measured in the same run. Then 1,000 agent connections held by one gateway:
// its RSS (the agents live in a child process, so they do not count).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseCommand } from '../src/command/parser.js';
import { perform } from '../src/core/perform.js';
import { ConnectionPool } from '../src/hosts/pool.js';
import type { Host } from '../src/hosts/types.js';
import { AGENT_PATH, PROTOCOL_VERSION } from '../src/gateway/relay/protocol.js';
import { inventoryEntry, startFleet, type FleetHost } from '../test/fleet/fleet.js';
import { REPO_ROOT } from '../test/support/cli.js';
import { startRelay, type Relay } from '../test/relay/harness.js';
import { percentile } from './measure.js';
import type { BenchResult } from './types.js';

const RUNS = 300;
const CONNECTIONS = 1000;

/** p50 and p95 of `runs` sequential calls, in ms. */
async function latency(fn: () => Promise<void>, runs = RUNS): Promise<{ p50: number; p95: number }> {
  for (let i = 0; i < 20; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return { p50: percentile(times, 50), p95: percentile(times, 95) };
}

async function performTrue(relay: Relay, host: string): Promise<void> {
  const r = await perform(relay.ctx, { kind: 'exec', host, command: 'true' }, { onStdout: () => undefined, onStderr: () => undefined });
  if (r.exitCode !== 0) throw new Error(`true on ${host}: exit ${r.exitCode}: ${r.message}`);
}

async function executeTrue(host: Host): Promise<void> {
  const r = await host.execute({
    list: parseCommand('true'),
    cwd: '/',
    timeoutMs: null,
    pipefail: false,
    output: { maxBytes: null, redact: [], redactBlocks: [] },
    sandbox: null,
    onStdout: () => undefined,
    onStderr: () => undefined,
  });
  if (r.exitCode !== 0) throw new Error(`true on ${host.name}: exit ${r.exitCode}`);
}

async function sshAnchor(): Promise<number | null> {
  let fleet;
  try {
    fleet = await startFleet({ count: 1 });
  } catch {
    return null; // no sshd here: the anchor is left out, said in the output
  }
  const h = fleet.hosts[0] as FleetHost;
  const pool = new ConnectionPool({ knownHostsFile: fleet.knownHostsFile });
  try {
    const entry = inventoryEntry(h);
    return (await latency(() => executeTrue(pool.host(entry)), 100)).p50;
  } finally {
    await pool.closeAll();
    await fleet.stop();
  }
}

/** Opens `tokens.length` agent connections from a child process; resolves once all are registered. */
async function swarm(url: string, tokens: Record<string, string>, dir: string): Promise<{ stop(): void }> {
  const file = join(dir, 'swarm.json');
  writeFileSync(file, JSON.stringify({ url: `${url}${AGENT_PATH}`, tokens, v: PROTOCOL_VERSION }));
  const script = `
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
const { url, tokens, v } = JSON.parse(readFileSync(${JSON.stringify(file)}, 'utf8'));
let registered = 0;
const names = Object.keys(tokens);
const open = (i) => {
  if (i >= names.length) return;
  const name = names[i];
  const ws = new WebSocket(url, { headers: { authorization: 'Bearer ' + tokens[name] }, perMessageDeflate: false });
  ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v, name, user: 'bench', home: '/', securePath: '/usr/bin:/bin', sandbox: { available: false, detail: 'bench', staticFallback: false }, version: 'bench' })));
  // Only the registration counts; the gateway's first session listing goes unanswered here.
  ws.on('message', (m) => { if (String(m).includes('"registered"') && ++registered === names.length) process.stdout.write('ready\\n'); });
  ws.on('error', (e) => { process.stderr.write(name + ': ' + e.message + '\\n'); process.exit(1); });
  // A few at a time: the gateway checks each token against every agent host.
  setImmediate(() => open(i + 1));
};
open(0);
`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`the agent swarm exited ${code}`)));
  });
  return { stop: () => child.kill('SIGKILL') };
}

export async function benchAgent(): Promise<BenchResult> {
  const relay = await startRelay({ relay: '  ping_interval_seconds: 10\n  pong_timeout_seconds: 5\n' });
  let relayP50: number;
  let relayP95: number;
  let localP50: number;
  let relayExecP50: number;
  try {
    relay.startAgent('laptop');
    await relay.waitConnected('laptop');
    ({ p50: relayP50, p95: relayP95 } = await latency(() => performTrue(relay, 'laptop')));
    relayExecP50 = (await latency(() => executeTrue(relay.ctx.registry.host('laptop')))).p50;
    localP50 = (await latency(() => performTrue(relay, 'localhost'))).p50;
  } finally {
    await relay.close();
  }
  const sshP50 = await sshAnchor();

  const names = Array.from({ length: CONNECTIONS }, (_, i) => `a${i}`);
  const many = await startRelay({ agents: names, relay: '  ping_interval_seconds: 10\n  pong_timeout_seconds: 5\n' });
  let rssBefore: number;
  let rssAfter: number;
  const gc = (globalThis as { gc?: () => void }).gc;
  try {
    gc?.();
    rssBefore = process.memoryUsage().rss;
    const agents = await swarm(many.url, many.tokens, many.ctx.auditFile.replace(/\/audit\.db$/, ''));
    try {
      if (many.ctx.registry.agents.size !== CONNECTIONS) throw new Error(`${many.ctx.registry.agents.size} of ${CONNECTIONS} agents registered`);
      gc?.();
      rssAfter = process.memoryUsage().rss;
    } finally {
      agents.stop();
    }
  } finally {
    await many.close();
  }
  const mb = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MB`;
  return {
    name: 'agent',
    figures: { relayP50Ms: relayP50, relayP95Ms: relayP95, relayExecuteP50Ms: relayExecP50, localP50Ms: localP50, sshExecuteP50Ms: sshP50 ?? NaN, rss1000AgentsBytes: rssAfter, rssPerAgentBytes: (rssAfter - rssBefore) / CONNECTIONS },
    lines: [
      `\`true\`, ${RUNS} sequential, p50 (p95)`,
      `local host, perform (anchor)              ${localP50.toFixed(2)} ms`,
      sshP50 === null ? 'SSH pooled, Host.execute (anchor)         (no sshd here)' : `SSH pooled, Host.execute (anchor)         ${sshP50.toFixed(2)} ms`,
      `relay, Host.execute (agent's perform)     ${relayExecP50.toFixed(2)} ms`,
      `relay, perform both sides                 ${relayP50.toFixed(2)} ms (${relayP95.toFixed(2)})  (${(relayP50 / localP50).toFixed(2)}x local; goal <= 3 ms)`,
      `${CONNECTIONS} agent connections held: gateway RSS ${mb(rssAfter)} (before ${mb(rssBefore)}; ${((rssAfter - rssBefore) / CONNECTIONS / 1024).toFixed(1)} KiB each)  (goal <= 300 MB)`,
    ],
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of (await benchAgent()).lines) console.log(line);
}
