// Sandbox benchmark (issue 7): what the OS sandbox adds to a command, measured through what a user runs
// (the installed `remux`, a daemon on its default configuration, `client batch --json`, whose per-command
// durationMs spans check, audit and run), beside the anchor: plain bubblewrap started per command with
// the same options, against the same program unsandboxed, in the same run.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { bwrapAvailable, bwrapOptions, sandboxLayout } from '../src/exec/sandbox.js';
import { run } from './measure.js';
import type { BenchResult } from './types.js';

const REMUX_BIN = fileURLToPath(new URL('../../bin/remux', import.meta.url));
const TRUE = '/usr/bin/true';
const ROUNDS = 8;
const PER_ROUND = 100;

const POLICIES = `policies:
  static_only:
    sandbox: false
    capabilities: &caps
      - { operation: execute_binary, resource: "true" }
      - { operation: read_file, resource: [/var/log/**, /tmp/**] }
      - { operation: write_stdout, resource: null }
  sandboxed:
    capabilities: *caps
`;

/** Wall time of one spawn to exit, as remux itself spawns a stage. */
function spawnMs(argv: string[]): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: {}, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.stdout.resume();
    child.stderr.resume();
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${argv.join(' ')} exited ${code}`))));
  });
}

const sorted = (samples: number[]): number[] => [...samples].sort((a, b) => a - b);
const p50 = (samples: number[]): number => sorted(samples)[Math.floor(samples.length / 2)]!;
/** Mean of the middle half: as robust as the median, finer than durationMs's 0.1 ms steps. */
const middleMean = (samples: number[]): number => {
  const s = sorted(samples).slice(Math.floor(samples.length / 4), Math.ceil((samples.length * 3) / 4));
  return s.reduce((a, b) => a + b, 0) / s.length;
};

export async function benchSandbox(): Promise<BenchResult> {
  const bwrap = bwrapAvailable();
  if (!bwrap.ok || bwrap.path === null) return { name: 'sandbox', figures: {}, lines: [`skipped: ${bwrap.reason}`] };
  const home = mkdtempSync(join(tmpdir(), 'remux-bench-sandbox-'));
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!/^(REMUX|RPIPE)_/.test(name)) env[name] = value;
  env.REMUX_HOME = home;
  writeFileSync(join(home, 'policies.yaml'), POLICIES);
  const commands = join(home, 'true.txt');
  writeFileSync(commands, 'true\n'.repeat(PER_ROUND));
  const samples: Record<string, number[]> = { static_only: [], sandboxed: [], true: [], bwrap: [] };
  const start = await run([REMUX_BIN, 'daemon', 'start'], env);
  if (start.code !== 0) throw new Error(`remux daemon start failed: ${start.stderr}`);
  try {
    const bwrapArgv = [bwrap.path, ...bwrapOptions(sandboxLayout({ read: ['/var/log', '/tmp'], write: [], hide: [], readOnly: [], network: false, owner: 'bench' })), '--', TRUE];
    // Rounds interleave the variants, so a busy moment of the machine falls on all of them alike.
    for (let round = 0; round < ROUNDS; round++) {
      // Alternating which goes first cancels a drift of the machine within a round.
      for (const policy of round % 2 === 0 ? ['static_only', 'sandboxed'] : ['sandboxed', 'static_only']) {
        const r = await run([REMUX_BIN, 'client', 'batch', 'localhost', '--policy', policy, '--cwd', '/var/log', '--json', '-f', commands], env);
        if (r.code !== 0) throw new Error(`remux client batch --policy ${policy} failed (exit ${r.code}): ${r.stderr.slice(0, 500)}`);
        const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { durationMs: number; exitCode: number });
        // The first sandboxed command starts the sandbox: that is start-up, not per-command cost.
        samples[policy]!.push(...lines.slice(round < 2 ? 1 : 0).map((l) => l.durationMs));
      }
      for (let i = 0; i < PER_ROUND / 4; i++) {
        samples.true!.push(await spawnMs([TRUE]));
        samples.bwrap!.push(await spawnMs(bwrapArgv));
      }
    }
  } finally {
    await run([REMUX_BIN, 'daemon', 'stop'], env);
    rmSync(home, { recursive: true, force: true });
  }
  const f = Object.fromEntries(Object.entries(samples).flatMap(([k, v]) => [[`${k}P50Ms`, p50(v)], [`${k}MiddleMeanMs`, middleMean(v)]])) as Record<string, number>;
  const remuxOverhead = f.sandboxedP50Ms! - f.static_onlyP50Ms!;
  const remuxOverheadMiddle = f.sandboxedMiddleMeanMs! - f.static_onlyMiddleMeanMs!;
  const bwrapOverhead = f.bwrapP50Ms! - f.trueP50Ms!;
  const ms = (x: number): string => `${x.toFixed(2)} ms`;
  return {
    name: 'sandbox',
    figures: { ...f, remuxOverheadMs: remuxOverhead, remuxOverheadMiddleMeanMs: remuxOverheadMiddle, bwrapOverheadMs: bwrapOverhead },
    lines: [
      `per command, p50 of durationMs from \`remux client batch --json\` through the daemon (${ROUNDS} x ${PER_ROUND} \`true\` each):`,
      `  static checks only ${ms(f.static_onlyP50Ms!)}, sandboxed ${ms(f.sandboxedP50Ms!)} (+${ms(remuxOverhead)}; goal <= 1 ms); mean of the middle half +${ms(remuxOverheadMiddle)}`,
      `anchor, spawned per command: \`true\` ${ms(f.trueP50Ms!)}, \`bwrap <remux's options> true\` ${ms(f.bwrapP50Ms!)} (+${ms(bwrapOverhead)}): the long-lived sandbox costs ${(remuxOverhead / bwrapOverhead).toFixed(2)}x plain bubblewrap's overhead`,
      `bubblewrap ${bwrap.version}`,
    ],
  };
}
