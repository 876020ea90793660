// Long-lived sandboxes: one bubblewrap per (owner, layout), kept while it is used and for a while after.
// A fresh bwrap per command costs several milliseconds; a stage joins a running one instead: forked inside
// by the sandbox's stage server (remux-sandbox-enter --serve, which joined its namespaces once), or when
// that cannot, through remux-sandbox-enter itself (native/sandbox-enter.c). Owners (principals) never
// share a sandbox, so their commands cannot see or signal each other's processes, nor share files in its /tmp.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { bwrapOptions, ENTER_HELPER, ENTER_NAMESPACES, type SandboxLayout } from './sandbox.js';
import { reopenPath, spawnPipeline } from './spawner.js';

/** A sandbox unused this long is stopped; the next command under its layout starts a new one. */
const IDLE_MS = 60_000;
const START_TIMEOUT_MS = 10_000;
/** A stage server that ended (killed, or remux-spawner restarted) is started again, at most this often. */
const SERVER_RESTART_MS = 1_000;
/** The waiting program inside: it echoes one byte once the sandbox is built, and exits when its stdin closes. */
const HOLDER = ['/usr/bin/cat', '/bin/cat'];

/** One command's use of a sandbox. */
export interface SandboxLease {
  /** fds of the sandbox's namespaces, for remux-sandbox-enter's fds 4-9. */
  readonly namespaceFds: readonly number[];
  /** The key of the sandbox's running stage server (remux-sandbox-enter --serve), or null: see StageSpec.server. */
  readonly server: number | null;
  /** The sandbox is still running (asks the kernel, see Sandbox.alive). */
  readonly alive: boolean;
  release(): void;
  /** The sandbox was found dead: stops it (the next acquire() starts a new one) and releases. */
  discard(): void;
}

/** A sandbox's `remux-sandbox-enter --serve`: it ends when `control` (its fd 0) closes. */
interface StageServer {
  key: number;
  control: net.Socket;
  running: boolean;
}

/** What status shows of a running sandbox. */
export interface SandboxStatus {
  owner: string;
  /** The trees it shows, `path (rw)` for writable ones. */
  shows: string[];
  network: boolean;
  /** Commands running in it now. */
  commands: number;
  /** Its stage server runs: commands are forked inside by it (else each starts through remux-sandbox-enter). */
  stageServer: boolean;
  startedAt: string;
}

class Sandbox {
  users = 0;
  readonly startedAt = new Date();
  private idleTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** When its stage server was last started, and whether a start is under way (keepServer). */
  private serverStartedAt = performance.now();
  private serverStarting = false;

  constructor(
    readonly key: string,
    readonly layout: SandboxLayout,
    private readonly holder: ChildProcess,
    /** /proc/PID/stat of the holder (bwrap) and of the sandbox's first process (bwrap's child), kept open. */
    private readonly statFds: number[],
    readonly namespaceFds: number[],
    /** Its stage server (remux-sandbox-enter --serve), or null when none runs. */
    private server: StageServer | null,
    private readonly onGone: (s: Sandbox) => void,
  ) {
    holder.once('exit', () => this.stop());
  }

  get serving(): boolean {
    return this.server?.running ?? false;
  }

  /** Starts a new stage server in the background when the last one ended; meanwhile stages start through the helper. */
  private keepServer(): void {
    if (this.server?.running || this.serverStarting || this.stopped || performance.now() - this.serverStartedAt < SERVER_RESTART_MS) return;
    this.serverStarting = true;
    this.serverStartedAt = performance.now();
    void startServer(this.namespaceFds).then((server) => {
      this.serverStarting = false;
      if (this.stopped) server?.control.destroy();
      else this.server = server;
    });
  }

  /**
   * Also asks the kernel: stages now end through remux-spawner, so a command can finish before Node has
   * reaped a holder killed from outside, and the next one would join namespaces whose init is gone (its
   * PID namespace takes no new process: a fork there fails with ENOMEM). Killing bwrap ends its init a
   * moment later: both are asked, on every command, through descriptors kept open (one read each).
   */
  get alive(): boolean {
    return !this.stopped && this.statFds.every(running);
  }

  lease(): SandboxLease {
    this.users++;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    let released = false;
    this.keepServer();
    const server = (): number | null => (this.server?.running ? this.server.key : null);
    const alive = (): boolean => this.alive;
    const lease: SandboxLease = {
      namespaceFds: this.namespaceFds,
      get server() {
        return server();
      },
      get alive() {
        return alive();
      },
      discard: () => {
        this.stop();
        lease.release();
      },
      release: () => {
        if (released) return;
        released = true;
        if (--this.users > 0) return;
        // A holder that ended unseen is stopped when Node sees it exit, or found dead by the next acquire().
        if (!this.stopped) {
          this.idleTimer = setTimeout(() => this.stop(), IDLE_MS);
          this.idleTimer.unref();
        } else {
          this.closeNamespaces();
        }
      },
    };
    return lease;
  }

  /** Ends the holder, and with it (its PID namespace's init gone) anything left inside. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.holder.stdin?.destroy();
    this.holder.kill('SIGKILL');
    this.server?.control.destroy();
    for (const fd of this.statFds.splice(0)) fs.closeSync(fd);
    // A stage being spawned may still pass these fd numbers: closed only once no lease holds them, so a
    // number cannot be reused by another sandbox's namespace in between.
    if (this.users === 0) this.closeNamespaces();
    this.onGone(this);
  }

  private closeNamespaces(): void {
    for (const fd of this.namespaceFds.splice(0)) fs.closeSync(fd);
  }
}

export class SandboxPool {
  private readonly running = new Map<string, Sandbox>();
  private readonly starting = new Map<string, Promise<Sandbox>>();

  constructor(private readonly bwrapPath: string) {}

  /** A lease on the running sandbox for this layout, started if needed. Rejects with bwrap's own words when it cannot start. */
  async acquire(layout: SandboxLayout): Promise<SandboxLease> {
    let sandbox = this.running.get(layout.key);
    if (!sandbox?.alive) {
      let pending = this.starting.get(layout.key);
      if (!pending) {
        pending = this.start(layout).finally(() => this.starting.delete(layout.key));
        this.starting.set(layout.key, pending);
      }
      sandbox = await pending;
    }
    return sandbox.lease();
  }

  status(): SandboxStatus[] {
    return [...this.running.values()].map((s) => ({
      owner: s.layout.owner,
      shows: s.layout.mounts.map((m) => (m.writable ? `${m.path} (rw)` : m.path)),
      network: s.layout.network,
      commands: s.users,
      stageServer: s.serving,
      startedAt: s.startedAt.toISOString(),
    }));
  }

  private async start(layout: SandboxLayout): Promise<Sandbox> {
    const holderPath = HOLDER.find((p) => fs.existsSync(p));
    if (holderPath === undefined) throw new Error(`no ${HOLDER.join(' or ')} to hold the sandbox open`);
    // The options come through fd 4 (bwrap --args reads them NUL-separated, then closes it), not argv:
    // bwrap's copy that is the sandbox's pid 1 keeps its argv, and /proc/1/cmdline inside would name every
    // hidden path and covered socket, and so would `ps` on the host to every user.
    const holder = spawn(this.bwrapPath, ['--args', '4', '--info-fd', '3', '--', holderPath], {
      env: {},
      // Its own process group: a Ctrl-C at the terminal reaches remux, which stops commands itself.
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
    });
    // The sandbox never keeps remux running; bwrap --die-with-parent ends it with remux.
    holder.unref();
    const [stdin, stdout, stderr, info, args] = [holder.stdin as Writable, holder.stdout as Readable, holder.stderr as Readable, holder.stdio[3] as Readable, holder.stdio[4] as Writable];
    for (const s of [stdin, stdout, stderr, info, args]) (s as unknown as { unref?: () => void }).unref?.();
    stdin.on('error', () => {});
    args.on('error', () => {});
    args.end(bwrapOptions(stillThere(layout)).map((a) => `${a}\0`).join(''));
    let errors = '';
    let infoText = '';
    stderr.on('data', (d: Buffer) => (errors += d.toString()));
    info.on('data', (d: Buffer) => (infoText += d.toString()));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`bwrap did not start a sandbox within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
        const failed = (why: string): void => {
          clearTimeout(timer);
          reject(new Error(errors.trim().split('\n')[0] || why));
        };
        holder.once('error', (e) => failed(e.message));
        holder.once('exit', (code) => failed(`bwrap exited with status ${code}`));
        // Ready when the holder echoed (the sandbox is built) and bwrap has written and closed its info.
        let waiting = 2;
        const ready = (): void => {
          if (--waiting > 0) return;
          clearTimeout(timer);
          resolve();
        };
        stdout.once('data', ready);
        info.once('end', ready);
        stdin.write('\n');
      });
      const initPid = Number((JSON.parse(infoText) as { 'child-pid'?: unknown })['child-pid']);
      if (!Number.isInteger(initPid) || initPid <= 0) throw new Error(`bwrap reported no child pid: ${infoText}`);
      const statFds = openAll([`/proc/${holder.pid}/stat`, `/proc/${initPid}/stat`]);
      let namespaceFds: number[];
      try {
        namespaceFds = openAll(ENTER_NAMESPACES.map((ns) => `/proc/${initPid}/ns/${ns}`));
      } catch (e) {
        for (const fd of statFds) fs.closeSync(fd);
        throw e;
      }
      const server = await startServer(namespaceFds);
      const sandbox = new Sandbox(layout.key, layout, holder, statFds, namespaceFds, server, (s) => {
        if (this.running.get(s.key) === s) this.running.delete(s.key);
      });
      this.running.set(layout.key, sandbox);
      return sandbox;
    } catch (e) {
      holder.kill('SIGKILL');
      throw e;
    }
  }
}

let nextServerKey = 1;

/**
 * Starts the sandbox's stage server (native/sandbox-enter.c, --serve): its stages then cost one fork each.
 * Null when it cannot start: they start through remux-sandbox-enter as before.
 */
async function startServer(namespaceFds: readonly number[]): Promise<StageServer | null> {
  const key = nextServerKey++;
  const opens = namespaceFds.map((fd, i) => ({ fd: 4 + i, flags: fs.constants.O_RDONLY, path: reopenPath(fd) }));
  const [start] = await spawnPipeline({
    cwd: '/',
    env: {},
    stages: [{ program: ENTER_HELPER, argv: [ENTER_HELPER, '--serve'], fds: ['caller', 'null', 'null'], report: false, opens, server: { serve: key } }],
  }).catch(() => [null]);
  const control = start && 'pid' in start ? start.stdio[0] : null;
  if (!start || !('pid' in start) || control === null) return null;
  control.on('error', () => {});
  control.unref();
  const server = { key, control, running: true };
  void start.exit.then(() => (server.running = false));
  return server;
}

const statLine = Buffer.alloc(512);

/**
 * The process of this open /proc/PID/stat has not exited: a zombie (not reaped yet) reads as state Z,
 * a reaped one fails (ESRCH), even if its PID was given to another process since.
 */
function running(statFd: number): boolean {
  try {
    const stat = statLine.toString('latin1', 0, fs.readSync(statFd, statLine, 0, statLine.length, 0));
    // "pid (comm) state …": comm may contain spaces and parentheses.
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Opens every path read-only, or none (the ones opened are closed again if one fails). */
function openAll(paths: readonly string[]): number[] {
  const fds: number[] = [];
  try {
    for (const p of paths) fds.push(fs.openSync(p, fs.constants.O_RDONLY));
    return fds;
  } catch (e) {
    for (const fd of fds) fs.closeSync(fd);
    throw e;
  }
}

/**
 * `layout` without the covers (over a socket or a hidden path) of what is gone since it was made (the
 * host's sockets are looked at once a second): bwrap would fail making their mount points, and there is
 * nothing left to cover. Sandboxed panes do the same in their script (sessions/pane-sandbox.ts).
 */
function stillThere(layout: SandboxLayout): SandboxLayout {
  const exists = (p: string): boolean => {
    try {
      fs.lstatSync(p);
      return true;
    } catch {
      return false;
    }
  };
  return { ...layout, sockets: layout.sockets.filter(exists), hidden: layout.hidden.filter((h) => exists(h.path)) };
}
