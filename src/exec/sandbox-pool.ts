// Long-lived sandboxes: one bubblewrap per (owner, layout), kept while it is used and for a while after.
// A fresh bwrap per command costs several milliseconds; joining a running one's namespaces
// (native/sandbox-enter.c) costs about one fork. Owners (principals) never share a sandbox, so their
// commands cannot see or signal each other's processes, nor share files in its /tmp.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { bwrapOptions, ENTER_NAMESPACES, type SandboxLayout } from './sandbox.js';

/** A sandbox unused this long is stopped; the next command under its layout starts a new one. */
const IDLE_MS = 60_000;
const START_TIMEOUT_MS = 10_000;
/** The waiting program inside: it echoes one byte once the sandbox is built, and exits when its stdin closes. */
const HOLDER = ['/usr/bin/cat', '/bin/cat'];

/** One command's use of a sandbox. */
export interface SandboxLease {
  /** fds of the sandbox's namespaces, for remux-sandbox-enter's fds 4-9. */
  readonly namespaceFds: readonly number[];
  release(): void;
}

/** What status shows of a running sandbox. */
export interface SandboxStatus {
  owner: string;
  /** The trees it shows, `path (rw)` for writable ones. */
  shows: string[];
  network: boolean;
  /** Commands running in it now. */
  commands: number;
  startedAt: string;
}

class Sandbox {
  users = 0;
  readonly startedAt = new Date();
  private idleTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    readonly key: string,
    readonly layout: SandboxLayout,
    private readonly holder: ChildProcess,
    /** The sandbox's first process (bwrap's child): its PID namespace takes no new process once it is gone. */
    private readonly initPid: number,
    readonly namespaceFds: number[],
    private readonly onGone: (s: Sandbox) => void,
  ) {
    holder.once('exit', () => this.stop());
  }

  /**
   * Also asks the kernel: stages now end through remux-spawner, so a command can finish before Node has
   * reaped a holder killed from outside, and the next one would join namespaces whose init is gone (its
   * fork there fails with ENOMEM). Killing bwrap ends its init a moment later: both are asked.
   */
  get alive(): boolean {
    return !this.stopped && running(this.holder.pid) && running(this.initPid);
  }

  lease(): SandboxLease {
    this.users++;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    let released = false;
    return {
      namespaceFds: this.namespaceFds,
      release: () => {
        if (released) return;
        released = true;
        if (--this.users > 0) return;
        if (this.alive) {
          this.idleTimer = setTimeout(() => this.stop(), IDLE_MS);
          this.idleTimer.unref();
        } else {
          this.closeNamespaces();
        }
      },
    };
  }

  /** Ends the holder, and with it (its PID namespace's init gone) anything left inside. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.holder.stdin?.destroy();
    this.holder.kill('SIGKILL');
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
      startedAt: s.startedAt.toISOString(),
    }));
  }

  private async start(layout: SandboxLayout): Promise<Sandbox> {
    const holderPath = HOLDER.find((p) => fs.existsSync(p));
    if (holderPath === undefined) throw new Error(`no ${HOLDER.join(' or ')} to hold the sandbox open`);
    const holder = spawn(this.bwrapPath, [...bwrapOptions(layout), '--info-fd', '3', '--', holderPath], {
      env: {},
      // Its own process group: a Ctrl-C at the terminal reaches remux, which stops commands itself.
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    // The sandbox never keeps remux running; bwrap --die-with-parent ends it with remux.
    holder.unref();
    const [stdin, stdout, stderr, info] = [holder.stdin as Writable, holder.stdout as Readable, holder.stderr as Readable, holder.stdio[3] as Readable];
    for (const s of [stdin, stdout, stderr, info]) (s as unknown as { unref?: () => void }).unref?.();
    stdin.on('error', () => {});
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
      const sandbox = new Sandbox(layout.key, layout, holder, initPid, openNamespaces(initPid), (s) => {
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

/** The process has not exited (one that Node has not reaped yet is a zombie). */
function running(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state …": comm may contain spaces and parentheses.
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function openNamespaces(pid: number): number[] {
  const fds: number[] = [];
  try {
    for (const ns of ENTER_NAMESPACES) fds.push(fs.openSync(`/proc/${pid}/ns/${ns}`, fs.constants.O_RDONLY));
    return fds;
  } catch (e) {
    for (const fd of fds) fs.closeSync(fd);
    throw e;
  }
}
