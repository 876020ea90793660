// Agent sessions (issue 10): time from `remux code start` to the pane showing the agent (a fake agent's
// banner), under sandbox-runtime, with --sandbox none, and, as the anchor, plain bubblewrap started in
// a tmux pane directly (no CLI, no proxies), interleaved in the same run. Target: ≤ 1 s.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { percentile } from './measure.js';
import type { BenchResult } from './types.js';
import { endTmuxServer } from '../test/support/tmux.js';

const REMUX_JS = fileURLToPath(new URL('../../bin/remux.js', import.meta.url));
const FAKE = fileURLToPath(new URL('../../test/agents/fixtures/fake-agent.mjs', import.meta.url));
const ROUNDS = 10;

export async function benchAgents(): Promise<BenchResult> {
  const home = mkdtempSync(join(tmpdir(), 'remux-bench-agents-'));
  const socket = `remux-bench-${process.pid}`;
  const env = { ...process.env, REMUX_HOME: home, REMUX_TMUX_SOCKET: socket };
  const workspace = join(home, 'workspace');
  mkdirSync(workspace);
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  const shows = (session: string): boolean => spawnSync('tmux', ['-L', socket, 'capture-pane', '-p', '-t', `=${session}:`], { encoding: 'utf8' }).stdout.includes('FAKE-AGENT ready');
  async function waitFor(session: () => string | undefined, t0: number): Promise<number> {
    for (;;) {
      const name = session();
      if (name && shows(name)) return performance.now() - t0;
      if (performance.now() - t0 > 10_000) throw new Error('the agent did not show within 10 s');
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  async function viaCli(sandbox: string): Promise<number> {
    const t0 = performance.now();
    const out = execFileSync(process.execPath, [REMUX_JS, 'code', 'start', workspace, '--no-attach', '--sandbox', sandbox, '--agent', `node ${FAKE}`], { env, encoding: 'utf8' });
    const ms = await waitFor(() => `agent-${out.split(' ')[0]}`, t0);
    execFileSync(process.execPath, [REMUX_JS, 'code', 'kill', '-f', out.split(' ')[0] as string], { env });
    return ms;
  }
  async function plainBwrap(i: number): Promise<number> {
    const t0 = performance.now();
    const name = `bwrap-${i}`;
    tmux('new-session', '-d', '-s', name, '-c', workspace, '--', 'bwrap', '--new-session', '--die-with-parent', '--unshare-net', '--unshare-pid', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--bind', workspace, workspace, '--chdir', workspace, process.execPath, FAKE);
    const ms = await waitFor(() => name, t0);
    tmux('kill-session', '-t', `=${name}`);
    return ms;
  }
  const samples: Record<string, number[]> = { srt: [], bwrap: [], none: [] };
  try {
    for (let i = 0; i < ROUNDS; i++) {
      samples.srt!.push(await viaCli('srt'));
      samples.bwrap!.push(await plainBwrap(i));
      samples.none!.push(await viaCli('none'));
    }
  } finally {
    endTmuxServer(socket);
    rmSync(home, { recursive: true, force: true });
  }
  const figures: Record<string, number> = {};
  const lines = [`agent session start to the pane showing the agent, ${ROUNDS} rounds interleaved (target ≤ 1000 ms):`];
  for (const [what, label] of [['srt', 'remux code start, sandbox-runtime'], ['bwrap', 'plain bubblewrap in a tmux pane (no CLI)'], ['none', 'remux code start --sandbox none']] as const) {
    const s = samples[what]!;
    figures[`${what}_p50_ms`] = percentile(s, 50);
    figures[`${what}_p90_ms`] = percentile(s, 90);
    lines.push(`  ${label.padEnd(44)} p50 ${percentile(s, 50).toFixed(0)} ms  p90 ${percentile(s, 90).toFixed(0)} ms`);
  }
  return { name: 'agents', figures, lines };
}
