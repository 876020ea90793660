// Spawn benchmark (issue 9): what starting one stage costs in a process of the daemon's size, through
// Node's child_process.spawn (which forks the whole process) against remux-spawner (native/spawner.c),
// in the same run: `true` to its exit with stdout and stderr piped to us, directly and inside a running
// sandbox (remux-sandbox-enter with the sandbox's namespaces), as src/exec/local.ts starts stages.
// Usage: node dist/bench/spawn.js [runs]  (also `npm run bench spawn`)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { bwrapAvailable, ENTER_HELPER, sandboxLayout } from '../src/exec/sandbox.js';
import { SandboxPool } from '../src/exec/sandbox-pool.js';
import { reopenPath, spawnPipeline, type StageSpec } from '../src/exec/spawner.js';
import { percentile } from './measure.js';
import type { BenchResult } from './types.js';

const TRUE = ['/usr/bin/true', '/bin/true'].find((p) => fs.existsSync(p)) ?? 'true';
/** The daemon's heap after start-up and some use is of this order; fork's cost grows with it. */
const HEAP_MB = 150;

/** Keeps ~HEAP_MB of small live objects, like a daemon's heap. */
function ballast(): unknown[] {
  const chunks: unknown[] = [];
  for (let i = 0; i < HEAP_MB * 1024; i++) chunks.push({ i, text: 'x'.repeat(900) + i });
  return chunks;
}

function closed(s: Readable | net.Socket | null | undefined): Promise<void> {
  if (!s) return Promise.resolve();
  s.resume();
  return new Promise((resolve) => s.once('close', () => resolve()));
}

async function nodeSpawn(program: string, args: string[], extra: Array<number | 'pipe'> = []): Promise<void> {
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe', ...extra], detached: true, env: { PATH: '/usr/bin:/bin' } });
  const exit = new Promise((resolve) => child.once('exit', resolve));
  await Promise.all([exit, closed(child.stdout), closed(child.stderr), ...(extra[0] === 'pipe' ? [closed(child.stdio[3] as Readable)] : [])]);
}

async function spawnerSpawn(stage: StageSpec): Promise<void> {
  const [started] = await spawnPipeline({ cwd: '/', env: { PATH: '/usr/bin:/bin' }, stages: [stage] });
  if (!started || 'error' in started) throw new Error(`spawner: ${JSON.stringify(started)}`);
  await Promise.all([started.exit, closed(started.stdio[1]), closed(started.stdio[2])]);
}

async function time(runs: number, body: () => Promise<void>): Promise<{ p50: number; p95: number }> {
  for (let i = 0; i < 20; i++) await body(); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await body();
    ms.push(performance.now() - t0);
  }
  return { p50: percentile(ms, 50), p95: percentile(ms, 95) };
}

export async function benchSpawn(runs = 500): Promise<BenchResult> {
  const heap = ballast();
  const figures: Record<string, number> = {};
  const lines: string[] = [`${runs} runs of ${TRUE}, ${HEAP_MB} MB of live heap, rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MB`];
  const row = async (name: string, body: () => Promise<void>): Promise<void> => {
    const { p50, p95 } = await time(runs, body);
    figures[`${name}_p50_ms`] = p50;
    figures[`${name}_p95_ms`] = p95;
    lines.push(`${name.padEnd(26)} p50 ${p50.toFixed(3)} ms   p95 ${p95.toFixed(3)} ms`);
  };
  const direct: StageSpec = { program: TRUE, argv: [TRUE], fds: ['null', 'caller', 'caller'], report: false, opens: [] };
  await row('node_spawn', () => nodeSpawn(TRUE, []));
  await row('spawner', () => spawnerSpawn(direct));

  const bwrap = bwrapAvailable();
  if (bwrap.ok && bwrap.path && fs.existsSync(ENTER_HELPER)) {
    const pool = new SandboxPool(bwrap.path);
    const lease = await pool.acquire(sandboxLayout({ read: [], write: [], hide: [], readOnly: [], network: false, owner: 'bench' }));
    const args = ['--cwd', '/', '--', TRUE, TRUE];
    await row('node_spawn_sandboxed', () => nodeSpawn(ENTER_HELPER, args, ['pipe', ...lease.namespaceFds]));
    const opens = lease.namespaceFds.map((fd, i) => ({ fd: 4 + i, flags: fs.constants.O_RDONLY, path: reopenPath(fd) }));
    const enter: StageSpec = { program: ENTER_HELPER, argv: [ENTER_HELPER, ...args], fds: ['null', 'caller', 'caller'], report: true, opens };
    await row('spawner_sandboxed', () => spawnerSpawn(enter));
    // As remux starts a sandboxed stage: through the sandbox's stage server (remux-sandbox-enter --serve).
    if (lease.server === null) throw new Error('the sandbox has no stage server');
    const server = lease.server;
    await row('spawner_sandboxed_served', () => spawnerSpawn({ ...enter, server: { via: server } }));
    lease.release();
  } else {
    lines.push(`sandboxed rows skipped: ${bwrap.reason ?? 'bin/remux-sandbox-enter is missing'}`);
  }
  if (heap.length === 0) throw new Error('unreachable'); // keeps the ballast alive through the runs
  return { name: 'spawn: one stage, Node spawn vs remux-spawner', figures, lines };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await benchSpawn(Number(process.argv[2] ?? 500));
  for (const line of result.lines) console.log(line);
  process.exit(0);
}
