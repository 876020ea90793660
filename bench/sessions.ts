// Session inventory sweep (issue 8): 20 real sshd hosts with a tmux session each. The daemon's warm
// sweep (one exec per host and tmux user over pooled connections, in parallel; target ≤ 200 ms), the
// first sweep that connects, and `remux session ls` reading the daemon's cache, beside the anchor:
// `ssh HOST tmux ls` to every host at once (what a sweep without pooled connections costs).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createContext } from '../src/core/context.js';
import { startFleet } from '../test/fleet/fleet.js';
import { percentile, run } from './measure.js';
import type { BenchResult } from './types.js';

const HOSTS = 20;
const ROUNDS = 15;
/** The `remux` command as installed: the native launcher forwards `session ls` to the daemon without Node. */
const REMUX_BIN = fileURLToPath(new URL('../../bin/remux', import.meta.url));

const median = (samples: readonly number[]): number => percentile(samples, 50);

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export async function benchSessions(): Promise<BenchResult> {
  const fleet = await startFleet({ count: HOSTS });
  const home = mkdtempSync(join(tmpdir(), 'remux-bench-sessions-'));
  const env = { ...process.env, REMUX_HOME: home, REMUX_KNOWN_HOSTS: fleet.knownHostsFile };
  try {
    const hosts = fleet.hosts.map((h) => `  ${h.name}: { address: ${h.address}, port: ${h.port}, user: ${h.user}, identity: ${h.identityFile} }`);
    writeFileSync(join(home, 'hosts.yaml'), `hosts:\n${hosts.join('\n')}\n`);
    writeFileSync(join(home, 'policies.yaml'), 'policies:\n  none:\n    sandbox: false\n    capabilities: []\n');
    writeFileSync(join(home, 'config.yaml'), 'default_policy: none\nsessions: { sweep_interval_seconds: 3600 }\n');
    await Promise.all(fleet.hosts.map((h) => h.exec(['tmux', 'new-session', '-d', '-s', 'bench'])));

    const ctx = createContext({ env });
    let cold: number;
    const warm: number[] = [];
    try {
      cold = await timed(() => ctx.sessions.sweep());
      for (let i = 0; i < ROUNDS; i++) warm.push(await timed(() => ctx.sessions.sweep()));
      const listed = await ctx.sessions.sweep();
      const seen = listed.filter((h) => h.users[0]?.state === 'ok' && h.users[0].sessions[0]?.name === 'bench').length;
      if (seen !== HOSTS) throw new Error(`the sweep saw the session on ${seen} of ${HOSTS} hosts`);
    } finally {
      await ctx.close();
    }

    const start = await run([REMUX_BIN, 'daemon', 'start'], env);
    if (start.code !== 0) throw new Error(`daemon start failed: ${start.stderr}`);
    const ls: number[] = [];
    try {
      for (let i = 0; i < ROUNDS; i++) {
        const r = await run([REMUX_BIN, 'session', 'ls', '--json'], env);
        if (r.code !== 0) throw new Error(`session ls failed: ${r.stderr}`);
        ls.push(r.ms);
      }
    } finally {
      await run([REMUX_BIN, 'daemon', 'stop'], env);
    }

    const ssh: number[] = [];
    for (let i = 0; i < 5; i++) {
      ssh.push(
        await timed(() =>
          Promise.all(
            fleet.hosts.map((h) =>
              run(['ssh', '-T', '-i', h.identityFile, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${fleet.knownHostsFile}`, '-p', String(h.port), `${h.user}@${h.address}`, 'tmux', 'ls']),
            ),
          ),
        ),
      );
    }
    const figures = { hosts: HOSTS, warmSweepMs: median(warm), coldSweepMs: cold, sessionLsMs: median(ls), sshParallelMs: median(ssh) };
    return {
      name: `session inventory sweep, ${HOSTS} hosts (${fleet.mode})`,
      figures,
      lines: [
        `warm sweep (pooled connections, one exec per host and user): p50 ${figures.warmSweepMs.toFixed(1)} ms (target ≤ 200 ms)`,
        `first sweep (connects to every host): ${figures.coldSweepMs.toFixed(1)} ms`,
        `remux session ls --json (launcher -> daemon, reads its cache): p50 ${figures.sessionLsMs.toFixed(1)} ms`,
        `anchor: ssh HOST tmux ls to every host at once: p50 ${figures.sshParallelMs.toFixed(1)} ms (${(figures.sshParallelMs / figures.warmSweepMs).toFixed(1)}x the warm sweep)`,
      ],
    };
  } finally {
    await fleet.stop();
    rmSync(home, { recursive: true, force: true });
  }
}
