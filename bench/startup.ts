// CLI start-up: `remux --version` as a whole process (the native launcher, which runs the Node CLI for
// it), against a bare `node -e 0` measured in the same run.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { BenchResult } from './types.js';

const REMUX_BIN = fileURLToPath(new URL('../../bin/remux', import.meta.url));

function medianMs(argv: string[], runs: number): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    times.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}`);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? NaN;
}

export async function benchStartup(runs = 21): Promise<BenchResult> {
  const node = medianMs([process.execPath, '-e', '0'], runs);
  const version = medianMs([REMUX_BIN, '--version'], runs);
  const help = medianMs([REMUX_BIN, 'client', 'run', '--help'], runs);
  return {
    name: 'startup',
    figures: { nodeBareMs: node, versionMs: version, helpMs: help, versionOverNode: version / node },
    lines: [
      `node -e 0 (anchor)           ${node.toFixed(1)} ms`,
      `remux --version              ${version.toFixed(1)} ms  (${(version / node).toFixed(2)}x bare node; goal <= 150 ms)`,
      `remux client run --help      ${help.toFixed(1)} ms`,
    ],
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of (await benchStartup()).lines) console.log(line);
}
