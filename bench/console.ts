// The browser terminal (issue 8): 64 MiB of text lines `cat` in a tmux session reaching xterm.js, and
// keystroke echo, through a real daemon in Chromium; beside `tmux attach` in a PTY (node-pty) and ttyd
// running `tmux attach` (when installed), in the same run, one client attached at a time, ROUNDS floods each in turn.
// Then the same flood in a session on a host over SSH (a test fleet host's sshd on this machine).
//
// Measured in the browser: a script added before the page's own wraps WebSocket. Throughput runs from
// the moment the command is sent to the moment the end marker is rendered: for remux, when the page
// acknowledges the bytes holding it (its ack follows xterm's write callback); ttyd has no such signal,
// so there it is the next animation frame after the marker arrives. Echo: keydown to the animation frame
// after the first output frame that follows it, the same rule for both pages. CPU-seconds per process
// during each flood (bench/cpu.ts) show where the machine's two cores went.
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as NodePty from 'node-pty';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startConsoleDaemon, type ConsoleDaemon } from '../test/support/console-daemon.js';
import { startFleet, type Fleet } from '../test/fleet/fleet.js';
import { chromiumRole, cpuBetween, descendants, kernelWorkers, sampleCpu, type CpuGroup } from './cpu.js';
import { percentile } from './measure.js';
import type { BenchResult } from './types.js';

const MIB = 1 << 20;
const FLOOD_BYTES = 64 * MIB;
const ECHO_KEYS = 100;
/**
 * The gap between keystrokes: random over more than a frame (16.7 ms at 60 Hz), so each key lands at
 * its own point of Chromium's frame clock. A fixed gap near the frame period (as before: 15 ms plus the
 * press) kept the keys in step with the frames for a whole run, and each run's p50 said only where the
 * first key happened to land: 2.9, 6.7 and 18.3 ms in three runs of one day.
 */
const echoGap = (): number => 10 + Math.random() * 25;
/** Floods per client, in turn: single runs on this 2-core VM vary by ±20%. */
const ROUNDS = 3;
/** ttyd from PATH: Debian 12 has no package; build it from source (README, Benchmarks) to get the anchor. */
const TTYD = ['/usr/bin/ttyd', '/usr/local/bin/ttyd'].find((p) => existsSync(p)) ?? null;
const VIEWPORT = { width: 1280, height: 800 };

/**
 * Runs in the page before its scripts (an init script: the page's CSP does not apply to it): watches
 * the terminal's socket (output in, acks out) and keydowns, into window.__probe.
 */
const PROBE = `(() => {
  const p = { start: 0, marker: '', markerAt: 0, markerTime: 0, received: 0, end: 0, keyAt: 0, echoes: [], arrivals: [] };
  window.__probe = p;
  const decoder = new TextDecoder();
  let tail = '';
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      const remux = String(url).includes('/api/ws/terminal');
      this.addEventListener('message', (e) => {
        if (!(e.data instanceof ArrayBuffer)) return;
        const bytes = new Uint8Array(e.data);
        p.received += bytes.length;
        if (p.keyAt > 0) {
          const at = p.keyAt;
          p.keyAt = 0;
          p.arrivals.push(performance.now() - at);
          requestAnimationFrame(() => p.echoes.push(performance.now() - at));
        }
        if (p.marker && !p.markerAt) {
          const text = tail + decoder.decode(bytes);
          if (text.includes(p.marker)) {
            p.markerAt = p.received;
            p.markerTime = performance.now();
            // ttyd: no acknowledgement to wait for; the frame after the marker arrived.
            if (!remux) requestAnimationFrame(() => (p.end = performance.now()));
          }
          tail = text.slice(-64);
        }
      });
    }
    send(data) {
      if (typeof data === 'string' && data.startsWith('{"type":"ack"')) {
        const rendered = JSON.parse(data).bytes;
        if (p.markerAt && !p.end && rendered >= p.markerAt) p.end = performance.now();
      }
      super.send(data);
    }
  };
  document.addEventListener('keydown', () => (p.keyAt = performance.now()), true);
})();`;

/** One page's flood: its time (ms), the render tail (ms), echo samples (ms; round 1 only), bytes, CPU-seconds. */
interface PageRound {
  floodMs: number;
  tailMs: number;
  echo: number[];
  /** Keydown to the echo's arrival in the page, before the frame that shows it. */
  arrival: number[];
  bytes: number;
  cpu: Record<string, number>;
}

interface Probe {
  start: number;
  marker: string;
  markerAt: number;
  /** When the frame holding the marker arrived. */
  markerTime: number;
  end: number;
  echoes: number[];
  arrivals: number[];
}

/** Per-process CPU-seconds, then the machine's busy total (every core; other load included) over the wall time. */
const cpuLine = (cpu: Record<string, number>): string => {
  const { machine, wall, ...groups } = cpu;
  return `${Object.entries(groups).map(([name, s]) => `${name} ${s.toFixed(2)}`).join(', ')}; whole machine ${machine!.toFixed(2)} busy in ${wall!.toFixed(2)} s`;
};

const median = (samples: readonly number[]): number => percentile(samples, 50);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A file of numbered text lines, `bytes` long. */
function textFile(path: string, bytes: number): void {
  const line = (n: number): string => `${String(n).padStart(8, '0')} the quick brown fox jumps over the lazy dog 0123456789 abcdefghij\n`;
  const block = Buffer.from(Array.from({ length: 4096 }, (_, i) => line(i)).join(''));
  const fd = openSync(path, 'w');
  for (let written = 0; written < bytes; written += block.length) writeSync(fd, block, 0, Math.min(block.length, bytes - written));
  closeSync(fd);
}

export async function benchConsole(): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'remux-bench-console-'));
  const file = join(dir, 'flood.txt');
  textFile(file, FLOOD_BYTES);
  let d: ConsoleDaemon | null = null;
  let browser: Browser | null = null;
  let ttyd: ChildProcess | null = null;
  let fleet: Fleet | null = null;
  try {
    fleet = await startFleet({ count: 1 });
    const remote = fleet.hosts[0]!;
    const remoteSocket = 'remux-bench-console';
    const remoteHost = `  ${remote.name}:\n    address: ${remote.address}\n    port: ${remote.port}\n    user: ${remote.user}\n    identity: ${remote.identityFile}\n    tmux_socket: ${remoteSocket}\n`;
    [d, browser] = await Promise.all([
      startConsoleDaemon({ bench: ['--admin'] }, `sessions: { record: none }\nssh:\n  known_hosts: ${fleet.knownHostsFile}\n`, {}, remoteHost),
      chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] }),
    ]);
    const daemon = d;
    daemon.tmux('new-session', '-d', '-s', 'flood', '-x', '150', '-y', '45', 'sh');
    const socket = join(daemon.home, 'tmux.sock');
    let round = 0;
    /** A marker the flood's end prints; its command line echoes only `DONE%s`, never the marker itself. */
    const nextMarker = (): { id: string; marker: string } => {
      const id = `${Date.now().toString(36)}x${round++}`;
      return { id, marker: `DONE${id}` };
    };
    // C-u first: the echo keystrokes of an earlier round must not end up on the command line.
    const flood = (id: string): void => void daemon.tmux('send-keys', '-t', '=flood:', 'C-u', `cat ${file}; printf 'DONE%s\\n' ${id}`, 'Enter');
    const clientsGone = async (): Promise<void> => {
      for (let i = 0; i < 500 && daemon.tmux('list-clients', '-t', '=flood').trim() !== ''; i++) await sleep(10);
    };

    const tmuxPid = Number(daemon.tmux('display-message', '-p', '-t', '=flood:', '#{pid}').trim());
    const shellPid = Number(daemon.tmux('display-message', '-p', '-t', '=flood:', '#{pane_pid}').trim());

    /** Anchor: tmux attach in a PTY, read by node-pty as fast as it comes; keystroke echo when asked. */
    const anchorRound = async (withEcho: boolean): Promise<{ floodMs: number; cpu: Record<string, number>; echo: number[] }> => {
      const pty = (createRequire(import.meta.url)('node-pty') as typeof NodePty).spawn('tmux', ['-S', socket, 'attach', '-t', '=flood'], { cols: 150, rows: 45, env: { ...process.env, TERM: 'xterm-256color' } });
      let seen = '';
      let waiting: { marker: string; done: () => void } | null = null;
      pty.onData((data) => {
        if (!waiting) return;
        seen = (seen + data).slice(-4096);
        if (seen.includes(waiting.marker)) waiting.done();
      });
      await sleep(300);
      // Where the cores went during the anchor's flood too: beside the remux flood's, it shows what tmux
      // does with a client that reads everything at once.
      const groups: CpuGroup[] = [
        { name: 'tmux', pids: [tmuxPid] },
        { name: 'sh+cat', pids: [shellPid], withChildren: true },
        { name: 'tmux attach', pids: [pty.pid] },
        { name: 'node-pty reader', pids: [process.pid] },
        { name: 'kworkers', pids: kernelWorkers() },
      ];
      const cpuBefore = sampleCpu(groups);
      const floodMs = await new Promise<number>((resolve) => {
        const t0 = performance.now();
        const { id, marker } = nextMarker();
        waiting = { marker, done: () => resolve(performance.now() - t0) };
        flood(id);
      });
      waiting = null;
      const cpu = cpuBetween(cpuBefore, sampleCpu(groups));
      const echo: number[] = [];
      for (let i = 0; withEcho && i < ECHO_KEYS; i++) {
        await sleep(5);
        echo.push(
          await new Promise<number>((resolve) => {
            const t0 = performance.now();
            seen = '';
            waiting = { marker: 'k', done: () => resolve(performance.now() - t0) };
            pty.write('k');
          }),
        );
        waiting = null;
      }
      pty.kill();
      await clientsGone();
      return { floodMs, cpu, echo };
    };

    // CPU per process during a flood: tmux, the pane's shell with the `cat` it reaped, the server
    // between tmux and the page (daemon or ttyd) and the `tmux attach` client it runs, and Chromium's
    // processes by role.
    const daemonPid = Number(readFileSync(readdirSync(daemon.home, { recursive: true, encoding: 'utf8' }).map((f) => join(daemon.home, f)).find((f) => f.endsWith('remux.pid'))!, 'utf8').trim());
    const cpuGroups = (server: CpuGroup): CpuGroup[] => {
      const client = descendants(server.pids[0]!);
      const chromium = new Map<string, number[]>();
      for (const pid of descendants(process.pid).filter((pid) => pid !== server.pids[0] && !client.includes(pid))) chromium.set(chromiumRole(pid), [...(chromium.get(chromiumRole(pid)) ?? []), pid]);
      return [
        { name: 'tmux', pids: [tmuxPid] },
        { name: 'sh+cat', pids: [shellPid], withChildren: true },
        server,
        { name: 'tmux attach', pids: client },
        ...[...chromium].map(([role, pids]) => ({ name: `chromium ${role}`, pids })),
        { name: 'kworkers', pids: kernelWorkers() },
      ];
    };

    /** One page's figures: flood time (ms), echo samples (ms, when asked) and CPU-seconds during the flood. */
    const measure = async (page: Page, server: CpuGroup, settle: () => Promise<void>, withEcho: boolean): Promise<PageRound> => {
      await settle();
      const groups = cpuGroups(server);
      const cpuBefore = sampleCpu(groups);
      const { id, marker } = nextMarker();
      await page.evaluate((m) => {
        const p = (globalThis as unknown as { __probe: Probe }).__probe;
        p.marker = m;
        p.markerAt = 0;
        p.markerTime = 0;
        p.end = 0;
        p.start = performance.now();
      }, marker);
      flood(id);
      await page.waitForFunction(() => (globalThis as unknown as { __probe: Probe }).__probe.end > 0, undefined, { timeout: 300_000, polling: 50 });
      const cpu = cpuBetween(cpuBefore, sampleCpu(groups));
      const { start, end, markerAt, markerTime } = await page.evaluate(() => (globalThis as unknown as { __probe: Probe }).__probe);
      // The marker the page saw must be the flood's end, not something earlier on the screen.
      if (!daemon.tmux('capture-pane', '-p', '-t', '=flood:').includes(marker)) throw new Error(`the page saw ${marker} before the flood ended`);
      if (!withEcho) return { floodMs: end - start, tailMs: end - markerTime, echo: [], arrival: [], bytes: markerAt, cpu };
      await sleep(500);
      for (let i = 0; i < ECHO_KEYS; i++) {
        await page.keyboard.press('k');
        await sleep(echoGap());
      }
      await sleep(200);
      const { echoes: echo, arrivals: arrival } = await page.evaluate(() => (globalThis as unknown as { __probe: Probe }).__probe);
      return { floodMs: end - start, tailMs: end - markerTime, echo, arrival, bytes: markerAt, cpu };
    };

    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: VIEWPORT });
    await context.addInitScript({ content: PROBE });
    const login = await context.newPage();
    await login.goto(daemon.url);
    await login.locator('#token').fill(daemon.tokens.bench!);
    await login.locator('#login button[type=submit]').click();
    await login.locator('#who').filter({ hasText: 'bench' }).waitFor();
    await login.close();
    /** One flood in a new page at `url`: the page is closed and its tmux client gone before the next round. */
    const pageRound = async (url: string, server: CpuGroup, settle: (page: Page) => Promise<void>, withEcho: boolean): Promise<PageRound> => {
      const page = await context.newPage();
      await page.goto(url);
      try {
        return await measure(page, server, () => settle(page), withEcho);
      } finally {
        await page.close();
        await clientsGone();
      }
    };
    const remuxRound = (withEcho: boolean): Promise<PageRound> =>
      pageRound(
        `${daemon.url}#/terminal?host=box&name=flood`,
        { name: 'daemon', pids: [daemonPid] },
        async (page) => {
          await page.locator('.term-status').filter({ hasText: 'attached' }).waitFor();
          await page.locator('.xterm-helper-textarea').focus();
          await sleep(300);
        },
        withEcho,
      );
    let ttydRound: ((withEcho: boolean) => Promise<PageRound>) | null = null;
    if (TTYD !== null) {
      const port = await freePort();
      ttyd = spawn(TTYD, ['-p', String(port), '-i', '127.0.0.1', '-W', 'tmux', '-S', socket, 'attach', '-t', '=flood'], { stdio: 'ignore' });
      await sleep(500);
      const server = { name: 'ttyd', pids: [ttyd.pid!] };
      ttydRound = (withEcho) =>
        pageRound(
          `http://127.0.0.1:${port}/`,
          server,
          async (page) => {
            for (let i = 0; i < 500 && daemon.tmux('list-clients', '-t', '=flood').trim() === ''; i++) await sleep(10);
            await page.locator('.xterm-helper-textarea').focus();
            await sleep(500);
          },
          withEcho,
        );
    }
    /** The same flood in a session on the SSH host (no CPU figures: its tmux is the host's). */
    const remoteTmux = async (...args: string[]): Promise<string> => {
      const r = await remote.exec(['tmux', '-L', remoteSocket, ...args]);
      if (r.code !== 0) throw new Error(`tmux on ${remote.name}: ${r.stderr}`);
      return r.stdout;
    };
    await remoteTmux('new-session', '-d', '-s', 'flood', '-x', '150', '-y', '45', 'sh');
    const sshRound = async (): Promise<{ floodMs: number; tailMs: number }> => {
      const page = await context.newPage();
      await page.goto(`${daemon.url}#/terminal?host=${remote.name}&name=flood`);
      try {
        await page.locator('.term-status').filter({ hasText: 'attached' }).waitFor();
        await sleep(300);
        const { id, marker } = nextMarker();
        await page.evaluate((m) => Object.assign((globalThis as unknown as { __probe: Probe }).__probe, { marker: m, markerAt: 0, markerTime: 0, end: 0, start: performance.now() }), marker);
        await remoteTmux('send-keys', '-t', '=flood:', 'C-u', `cat ${file}; printf 'DONE%s\\n' ${id}`, 'Enter');
        await page.waitForFunction(() => (globalThis as unknown as { __probe: Probe }).__probe.end > 0, undefined, { timeout: 300_000, polling: 50 });
        const { start, end, markerTime } = await page.evaluate(() => (globalThis as unknown as { __probe: Probe }).__probe);
        if (!(await remoteTmux('capture-pane', '-p', '-t', '=flood:')).includes(marker)) throw new Error(`the page saw ${marker} before the flood ended`);
        return { floodMs: end - start, tailMs: end - markerTime };
      } finally {
        await page.close();
      }
    };

    // Rounds in turn (anchor, remux, ttyd, remux over SSH): a machine whose speed drifts weighs on all alike.
    const anchorRounds: Array<Awaited<ReturnType<typeof anchorRound>>> = [];
    const remuxRounds: PageRound[] = [];
    const ttydRounds: PageRound[] = [];
    const sshRounds: Array<{ floodMs: number; tailMs: number }> = [];
    for (let i = 0; i < ROUNDS; i++) {
      anchorRounds.push(await anchorRound(i === 0));
      remuxRounds.push(await remuxRound(i === 0));
      if (ttydRound) ttydRounds.push(await ttydRound(i === 0));
      sshRounds.push(await sshRound());
    }
    await context.close();

    const rate = (ms: number): number => FLOOD_BYTES / MIB / (ms / 1000);
    const rates = (rounds: ReadonlyArray<{ floodMs: number }>): number[] => rounds.map((r) => rate(r.floodMs));
    /** `a / b / c MiB/s (median m)`, in round order. */
    const rateText = (values: number[]): string => `${values.map((v) => v.toFixed(1)).join(' / ')} MiB/s (median ${median(values).toFixed(1)})`;
    const [remuxRates, ptyRates, ttydRates, sshRates] = [rates(remuxRounds), rates(anchorRounds), rates(ttydRounds), rates(sshRounds)];
    const [first, anchorFirst, ttydFirst] = [remuxRounds[0]!, anchorRounds[0]!, ttydRounds[0] ?? null];
    const ratios = (anchor: number[]): string => `remux is ${remuxRates.map((r, i) => (r / anchor[i]!).toFixed(2)).join(' / ')}x of it round by round, ${(median(remuxRates) / median(anchor)).toFixed(2)}x by medians`;
    const figures: Record<string, number> = {
      remuxMiBps: median(remuxRates),
      remuxMiBpsMin: Math.min(...remuxRates),
      remuxMiBpsMax: Math.max(...remuxRates),
      remuxBytesRendered: first.bytes,
      remuxEchoP50Ms: median(first.echo),
      remuxEchoP90Ms: percentile(first.echo, 90),
      remuxEchoArrivalP50Ms: median(first.arrival),
      sshMiBps: median(sshRates),
      ptyMiBps: median(ptyRates),
      ptyEchoP50Ms: median(anchorFirst.echo),
      ...Object.fromEntries(Object.entries(first.cpu).map(([name, s]) => [`remuxCpuS ${name}`, s])),
      ...(ttydFirst ? { ttydMiBps: median(ttydRates), ttydEchoP50Ms: median(ttydFirst.echo), ttydEchoArrivalP50Ms: median(ttydFirst.arrival) } : {}),
    };
    const lines = [
      `64 MiB cat in tmux -> xterm.js through remux (rendered, acknowledged), ${ROUNDS} rounds: ${rateText(remuxRates)} (target ≥ 30 MB/s = 28.6 MiB/s); ` +
        `round 1: ${(first.floodMs / 1000).toFixed(2)} s, of which ${first.tailMs.toFixed(0)} ms from the end marker's arrival in the page to its rendering; ${(first.bytes / MIB).toFixed(1)} MiB of tmux output reached the page`,
      `anchor: tmux attach in a PTY (node-pty): ${rateText(ptyRates)}; ${ratios(ptyRates)}`,
      ttydFirst ? `anchor: ttyd running tmux attach (received + next frame): ${rateText(ttydRates)}; ${ratios(ttydRates)}` : 'anchor: ttyd not installed (/usr/bin or /usr/local/bin); skipped',
      `the same through remux from a session on a host over SSH (this machine's sshd): ${rateText(sshRates)}, ${(median(sshRates) / median(remuxRates)).toFixed(2)}x of the local session's by medians; ` +
        `the end marker's arrival in the page to its rendering ${sshRounds.map((r) => r.tailMs.toFixed(0)).join(' / ')} ms`,
      `keystroke echo, keydown to the frame after the echo, p50 of ${ECHO_KEYS} keys at random gaps: remux ${figures.remuxEchoP50Ms!.toFixed(2)} ms (target ≤ 5 ms; p90 ${figures.remuxEchoP90Ms!.toFixed(2)})` +
        (ttydFirst ? `, ttyd ${figures.ttydEchoP50Ms!.toFixed(2)} ms (${(figures.remuxEchoP50Ms! / figures.ttydEchoP50Ms!).toFixed(2)}x)` : '') +
        `, tmux attach in a PTY (write to echo read) ${figures.ptyEchoP50Ms!.toFixed(2)} ms; ` +
        `keydown to the echo's arrival in the page (before that frame): remux ${figures.remuxEchoArrivalP50Ms!.toFixed(2)} ms${ttydFirst ? `, ttyd ${figures.ttydEchoArrivalP50Ms!.toFixed(2)} ms` : ''}`,
      `CPU-seconds during round 1's floods: the anchor's (tmux attach in a PTY): ${cpuLine(anchorFirst.cpu)}`,
      `  remux: ${cpuLine(first.cpu)}`,
      ...(ttydFirst ? [`  ttyd: ${cpuLine(ttydFirst.cpu)}`] : []),
    ];
    return { name: 'browser terminal: throughput and keystroke echo', figures, lines };
  } finally {
    ttyd?.kill();
    await browser?.close();
    await d?.stop();
    await fleet?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
