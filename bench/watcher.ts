// Agent watcher cost (issue 10: 20 agent sessions at the default interval use ≤ 2% of one core, and a
// prompt is detected within 1 s). 20 tmux sessions on a private server: half "working" (a Claude-Code-
// like spinner line redrawn every 100 ms, so their panes change on every tick), half waiting at an
// input line. CPU over 20 s: the watcher's process (process.cpuUsage), the tmux clients it spawned
// (cutime+cstime of /proc/self/stat), and the tmux server's extra over a 10 s baseline without the
// watcher. Then latency: a permission prompt appears in each waiting pane in turn; time to detection.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { profile } from '../src/agents/profiles.js';
import type { ApprovalOutcome } from '../src/notify/approvals.js';
import { DEFAULT_INTERVAL_MS, Watcher, type Asker } from '../src/agents/watcher.js';
import { percentile } from './measure.js';
import type { BenchResult } from './types.js';

const SESSIONS = 20;
const WINDOW_MS = 20_000;
const BASELINE_MS = 10_000;
const PROMPT = fileURLToPath(new URL('../../test/agents/fixtures/screens/claude-bash-permission.txt', import.meta.url));
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** utime+stime (and with `children`, cutime+cstime) of a process, in ms. */
function procCpuMs(pid: number | 'self', children = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  // Fields 14-17 of proc(5), counted from field 3 (state) at index 0.
  const ticks = children ? f[13]! + f[14]! : f[11]! + f[12]!;
  return (ticks * 1000) / TICKS_PER_SECOND;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An approver that never answers: the bench measures detection, not people. */
const waitForAbort = (signal?: AbortSignal): Promise<ApprovalOutcome> => new Promise((resolve) => signal?.addEventListener('abort', () => resolve({ status: 'cancelled' })));
const silent: Asker = { ask: (_request, signal) => waitForAbort(signal), resume: (_id, signal) => waitForAbort(signal) };

export async function benchWatcher(): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'remux-bench-watcher-'));
  const socket = join(dir, 'tmux.sock');
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
  const spinner = `while :; do for s in '✻' '✽' '✶' '✳'; do printf '\\r%s Thinking… (esc to interrupt)' "$s"; sleep 0.1; done; done`;
  const waiter = `printf '❯ \\n  ? for shortcuts\\n'; read x; cat '${PROMPT}'; sleep 3600`;
  const watcher = new Watcher({ socket: { kind: 'path', path: socket }, approvals: silent });
  try {
    for (let i = 0; i < SESSIONS; i++) {
      tmux('new-session', '-d', '-s', `agent${i}`, '-x', '120', '-y', '40', '--', '/bin/sh', '-c', i % 2 === 0 ? spinner : waiter);
      watcher.add({ session: `agent${i}`, agent: profile('claude'), principal: `agent${i}` });
    }
    const server = Number(tmux('display-message', '-p', '#{pid}').trim());
    await sleep(1000);
    const base0 = procCpuMs(server);
    await sleep(BASELINE_MS);
    const serverBaseline = (procCpuMs(server) - base0) / BASELINE_MS;

    watcher.start();
    await sleep(2000); // first captures of every pane
    const cpu0 = process.cpuUsage();
    const kids0 = procCpuMs('self', true);
    const server0 = procCpuMs(server);
    const t0 = performance.now();
    await sleep(WINDOW_MS);
    const elapsed = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const watcherPct = ((cpu.user + cpu.system) / 1000 / elapsed) * 100;
    const clientsPct = ((procCpuMs('self', true) - kids0) / elapsed) * 100;
    const serverPct = ((procCpuMs(server) - server0) / elapsed - serverBaseline) * 100;

    const latencies: number[] = [];
    for (let i = 1; i < SESSIONS; i += 2) {
      const session = `agent${i}`;
      const seen = new Promise<number>((resolve) => {
        const on = (c: { session: string; state: string }): void => {
          if (c.session === session && c.state === 'permission') {
            watcher.off('state', on);
            resolve(performance.now());
          }
        };
        watcher.on('state', on);
      });
      const shown = performance.now();
      tmux('send-keys', '-t', `=${session}:`, 'Enter');
      latencies.push((await seen) - shown);
      await sleep(137); // prompts appear at unrelated moments of the tick
    }
    const figures = {
      sessions: SESSIONS,
      intervalMs: DEFAULT_INTERVAL_MS,
      watcherCpuPct: watcherPct,
      tmuxClientsCpuPct: clientsPct,
      tmuxServerExtraCpuPct: serverPct,
      detectMedianMs: percentile(latencies, 50),
      detectMaxMs: Math.max(...latencies),
    };
    return {
      name: `agent watcher, ${SESSIONS} sessions (${SESSIONS / 2} redrawing every 100 ms) at ${DEFAULT_INTERVAL_MS} ms`,
      figures,
      lines: [
        `watcher process CPU          ${watcherPct.toFixed(2)} % of one core over ${(elapsed / 1000).toFixed(0)} s (target ≤ 2 %)`,
        `tmux clients it ran          ${clientsPct.toFixed(2)} % (one run per tick: list-panes with busy panes' captures; one more when other panes changed)`,
        `tmux server, extra           ${serverPct.toFixed(2)} % (over ${(serverBaseline * 100).toFixed(2)} % without the watcher)`,
        `prompt detected after        median ${figures.detectMedianMs.toFixed(0)} ms, max ${figures.detectMaxMs.toFixed(0)} ms over ${latencies.length} prompts (target ≤ 1000 ms)`,
      ],
    };
  } finally {
    await watcher.stop();
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
