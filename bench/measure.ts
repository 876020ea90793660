import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

export interface Timed {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end: wall time, exit status and what it printed. */
export function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<Timed> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: performance.now() - t0, code, stdout, stderr }));
  });
}

/** Runs `body` over the items repeatedly for about `ms` milliseconds (after one warm-up pass); returns operations per second. */
export function throughput<T>(items: readonly T[], ms: number, body: (item: T) => unknown): number {
  let sink = 0;
  for (const item of items) if (body(item)) sink++; // warm-up
  let ops = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (const item of items) if (body(item)) sink++;
    ops += items.length;
    elapsed = performance.now() - started;
  }
  if (sink < 0) throw new Error('unreachable'); // keeps the results observable to the optimiser
  return (ops / elapsed) * 1000;
}

/** The p-th percentile (nearest rank) of samples: percentile(xs, 50) is the median. */
export function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}
