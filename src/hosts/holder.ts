// Long-lived sandboxes on an SSH host: one bwrap per (connection, SandboxSpec incl. its owner) that
// commands join with remux-sandbox-enter instead of starting their own (remote-sandbox.ts holderScript,
// ssh.ts holderWrapScript). A holder runs over its own exec channel of the pooled connection with that
// channel's stdin held open: closing the channel or losing the connection ends it (EOF, and bwrap's
// --die-with-parent). It is stopped after IDLE_MS without commands; one that ended is started again by
// the next command. Its layout is resolved on the host when it starts: each command resolves the spec
// again and refuses ('holder-stale') when the result differs, and then gets a fresh holder.
import { randomBytes } from 'node:crypto';
import type { ExecResult, SandboxSpec } from '../exec/types.js';
import { holderScript, parseHolderInfo, type EnterHelper, type HolderInfo } from './remote-sandbox.js';
import { runCommandOutcome, type RunOptions, type SshConnection } from './ssh.js';
import type { HostExecRequest } from './types.js';

/** A holder nobody used for this long is stopped. */
export const HOLDER_IDLE_MS = 60_000;
/** bwrap's set-up: a few mounts. */
const HOLDER_START_TIMEOUT_MS = 10_000;
const HOLDER_MAX_OUTPUT = 64 << 10;

export class SandboxHolder {
  /** The holder reported itself; rejects when it could not start. */
  readonly ready: Promise<HolderInfo>;
  /** Its channel has closed (or never opened): it is gone. */
  ended = false;
  /** It ended without remux stopping it (killed on the host, say). */
  endedByItself = false;
  private users = 0;
  private idle: NodeJS.Timeout | null = null;
  private readonly stopper = new AbortController();

  constructor(
    readonly conn: SshConnection,
    readonly spec: SandboxSpec,
    helper: EnterHelper,
    securePath: string,
    onEnd: (holder: SandboxHolder) => void,
    readonly idleMs: number = HOLDER_IDLE_MS,
  ) {
    const marker = `remux-${randomBytes(8).toString('hex')}:`;
    let out: Buffer = Buffer.alloc(0);
    let err = '';
    let settle: { resolve: (info: HolderInfo) => void; reject: (e: Error) => void } | null = null;
    const ready = new Promise<HolderInfo>((resolve, reject) => (settle = { resolve, reject }));
    const fail = (why: string): void => {
      settle?.reject(new Error(`${conn.where}: cannot start a long-lived sandbox: ${why}`));
      settle = null;
      this.stop();
    };
    const timer = setTimeout(() => fail(`no answer within ${HOLDER_START_TIMEOUT_MS} ms`), HOLDER_START_TIMEOUT_MS);
    const channel = conn.exec(holderScript(spec, securePath, marker, helper.binary.length), {
      input: helper.binary,
      onStdout: (chunk) => {
        if (settle === null) return;
        out = Buffer.concat([out, chunk]);
        if (out.length > HOLDER_MAX_OUTPUT) return fail('too much output');
        try {
          const info = parseHolderInfo(out);
          if (info === null) return;
          clearTimeout(timer);
          settle.resolve(info);
          settle = null;
        } catch (e) {
          fail(e instanceof Error ? e.message : String(e));
        }
      },
      onStderr: (chunk) => {
        if (err.length < 4096) err += chunk.toString('utf8');
      },
      stop: this.stopper.signal,
      background: true,
    });
    const ended = (): void => {
      clearTimeout(timer);
      this.endedByItself = !this.stopper.signal.aborted;
      this.ended = true;
      if (this.idle) clearTimeout(this.idle);
      const said = err.split('\n').find((l) => l.trim() !== '' && !l.startsWith(marker))?.trim();
      fail(said ?? (err.includes(`${marker}no-bwrap`) ? 'no bwrap' : err.includes(`${marker}no-helper`) ? 'remux-sandbox-enter cannot run from any of $XDG_RUNTIME_DIR, /dev/shm, $TMPDIR, $HOME' : 'it ended'));
      onEnd(this);
    };
    channel.then(ended, ended);
    this.ready = ready;
    this.ready.catch(() => undefined);
  }

  /** Neither ended nor being stopped: new commands may join it. */
  get usable(): boolean {
    return !this.ended && !this.stopping;
  }

  /** Being stopped, or stopped: by remux (idle, the connection's sandboxes closed), or after it ended. */
  get stopping(): boolean {
    return this.stopper.signal.aborted;
  }

  /** A command is about to use it. */
  acquire(): void {
    this.users++;
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
  }

  /** A command is done with it; unused for idleMs, it stops. */
  release(): void {
    this.users--;
    if (this.users > 0 || this.ended) return;
    this.idle = setTimeout(() => this.stop(), this.idleMs);
    this.idle.unref();
  }

  /** Ends it: EOF on its stdin (the shell in it returns, and the sandbox's PID namespace ends). */
  stop(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    this.stopper.abort();
  }
}

/** The holder map's key: every field of the spec, the owner included (owners never share). */
export function holderKey(spec: SandboxSpec): string {
  return JSON.stringify([spec.owner, spec.network, spec.read, spec.write, spec.hide, spec.readOnly]);
}

export interface HolderSetOptions {
  idleMs?: number;
  /** May one more holder (one more open channel) start now? Default: yes. */
  mayStart?: () => boolean;
  /** A holder ended (its channel slot is free). */
  onEnd?: () => void;
}

/** The long-lived sandboxes of one connection, by spec (owner included) and secure PATH. */
export class HolderSet {
  private readonly holders = new Map<string, SandboxHolder>();
  /** When a holder for a key last failed to start: its commands use their own bwrap for a while. */
  private readonly failedAt = new Map<string, number>();

  constructor(
    readonly conn: SshConnection,
    readonly helper: EnterHelper,
    private readonly opts: HolderSetOptions = {},
  ) {}

  get size(): number {
    return this.holders.size;
  }

  /** Runs a sandboxed command in its spec's holder (started if needed), or with its own bwrap when no holder may start. */
  async run(req: HostExecRequest, runOpts: RunOptions): Promise<ExecResult> {
    const spec = req.sandbox;
    if (spec === null) return (await runCommandOutcome(this.conn, req, runOpts)).result;
    // A holder that ended, or no longer matches the host's paths, refuses before anything runs: one
    // retry with a fresh holder.
    for (let attempt = 1; ; attempt++) {
      const holder = this.holderFor(spec, runOpts.securePath);
      if (holder === null) return (await runCommandOutcome(this.conn, req, runOpts)).result;
      holder.acquire();
      try {
        let entry: HolderInfo;
        try {
          entry = await holder.ready;
        } catch {
          // No holder (its channel refused, bwrap failed, …): this spec's commands start their own bwrap
          // for a while, which refuses with bwrap's own words if bwrap is what fails.
          this.failedAt.set(this.key(spec, runOpts.securePath), Date.now());
          return (await runCommandOutcome(this.conn, req, runOpts)).result;
        }
        const outcome = await runCommandOutcome(this.conn, req, { ...runOpts, holder: entry });
        if (outcome.holderRefusal === null || attempt > 1) return await this.sayIfKilledWith(holder, req, outcome.result);
        holder.stop();
        this.drop(holder);
      } finally {
        holder.release();
      }
    }
  }

  /**
   * A command killed (137, not by remux) because its holder ended under it says so, as a local one does:
   * the holder's channel closes a moment after the sandbox's processes are killed, so it is waited for.
   */
  private async sayIfKilledWith(holder: SandboxHolder, req: HostExecRequest, result: ExecResult): Promise<ExecResult> {
    if (result.exitCode !== 137 || result.timedOut || result.aborted || result.error !== null) return result;
    for (let i = 0; i < 20 && !holder.ended && !holder.stopping; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    if (!holder.endedByItself) return result;
    const message = `remux: killed: its sandbox on ${this.conn.where} was stopped while it ran (from outside remux)`;
    req.onStderr(Buffer.from(`${message}\n`));
    return { ...result, error: message, errorKind: 'sandbox', bytesErr: result.bytesErr + message.length + 1 };
  }

  /** The host pids of the running holders' bwrap and sandbox init (for tests and diagnostics). */
  async pids(): Promise<number[]> {
    const entries = await Promise.allSettled([...this.holders.values()].map((h) => h.ready));
    return entries.flatMap((e) => (e.status === 'fulfilled' ? [e.value.init, e.value.keeper] : []));
  }

  stopAll(): void {
    for (const holder of this.holders.values()) holder.stop();
    this.holders.clear();
  }

  private key(spec: SandboxSpec, securePath: string): string {
    return `${securePath}\0${holderKey(spec)}`;
  }

  private holderFor(spec: SandboxSpec, securePath: string): SandboxHolder | null {
    const key = this.key(spec, securePath);
    const current = this.holders.get(key);
    if (current?.usable) return current;
    if (current) this.holders.delete(key);
    const failed = this.failedAt.get(key);
    if (failed !== undefined && Date.now() - failed < (this.opts.idleMs ?? HOLDER_IDLE_MS)) return null;
    if (this.opts.mayStart && !this.opts.mayStart()) return null;
    const holder = new SandboxHolder(this.conn, spec, this.helper, securePath, (h) => {
      this.drop(h);
      this.opts.onEnd?.();
    }, this.opts.idleMs ?? HOLDER_IDLE_MS);
    this.holders.set(key, holder);
    return holder;
  }

  private drop(holder: SandboxHolder): void {
    for (const [key, h] of this.holders) if (h === holder) this.holders.delete(key);
  }
}
