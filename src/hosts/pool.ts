// The SSH connection pool: ONE connection per host, connected on first use and shared by every command
// to that host, which multiplexes them over channels.
//
// - Channels: at most maxChannels commands run at once per host (sshd's MaxSessions, 10 by default,
//   refuses more); the rest wait in FIFO order. A command given the caller's stdin takes two (its kill
//   switch has a channel of its own, ssh-input.ts). A command's timeout starts when it starts, not while queued.
// - Connections: concurrent commands share one connection attempt. After a failed attempt the next one
//   waits a Backoff delay (exponential, full jitter); a connection that dropped is re-made on next use.
//   A refused host key, failed authentication or bad configuration are not transient: they get no
//   backoff (a fixed known_hosts works at once), but they count for the breaker like any failure.
// - Breaker: every failed connection attempt, and every drop under running commands, is a failure; a
//   connection made or found alive is a success. While open, commands fail at once with its reason.
// - Keepalive (ssh2's) notices a dead peer; lastRttMs is the exec channel setup time of the latest
//   command (two request round trips plus the server's fork), a cheap and honest proxy for latency.
// - Jump hosts are pooled hosts too: the target connects through the jump host's pooled connection.
// - Sandbox support (bubblewrap on the host, remote-sandbox.ts) is probed once per connection, on the
//   first command that needs it, and shown in status(); a new connection probes again.
import { setMaxListeners } from 'node:events';
import type { CommandList } from '../command/types.js';
import { DEFAULT_SECURE_PATH } from '../config/config.js';
import type { ExecResult, SandboxSpec, SandboxSupport } from '../exec/types.js';
import type { PathResolver, Policy } from '../policy/types.js';
import type { SFTPWrapper } from 'ssh2';
import { Backoff, type BackoffOptions } from './backoff.js';
import { CircuitBreaker, type BreakerOptions, type BreakerState } from './breaker.js';
import type { SshHostEntry } from './inventory.js';
import { knownHostsFile } from '../config/paths.js';
import type { EarlySockets } from './early-sockets.js';
import { prefetchResolver, WhichCache } from './remote-resolver.js';
import { HOLDER_IDLE_MS, HolderSet } from './holder.js';
import { parseHolderProbe, parseProbe, probeScript, type EnterHelper } from './remote-sandbox.js';
import { sftpFiles } from './sftp.js';
import { captureScript, connectSsh, runCommand, SshError, SSH_DEFAULTS, type ResidentExec, type SshConnection } from './ssh.js';
import { ShellExecutor } from './ssh-executor.js';
import { TransportError, type Host, type HostExecRequest, type HostStream, type HostTerminal, type TerminalSize } from './types.js';

export interface PoolOptions {
  /** Default: $REMUX_KNOWN_HOSTS, else ~/.ssh/known_hosts. */
  knownHostsFile?: string;
  /** Trust unknown host keys on first use (recorded in known_hosts). Never trusts a changed key. */
  acceptNew?: boolean;
  /** Told when a new host key was trusted because of acceptNew, so it can be audited. */
  onHostKeyAccepted?: (host: string, fingerprint: string) => void;
  /** PATH of remote commands, and where the remote resolver looks programs up. */
  securePath?: string;
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Concurrent channels per connection; keep at or below the server's MaxSessions. */
  maxChannels?: number;
  breaker?: Omit<BreakerOptions, 'now'>;
  backoff?: BackoffOptions;
  /** How long a remote `which` answer is reused (see WhichCache); 0 disables. */
  whichTtlMs?: number;
  /** Finds jump hosts by name. */
  lookup?: (name: string) => SshHostEntry | undefined;
  /** TCP connections begun before the pool existed (in-process fan-outs); used by the first connect. */
  earlySockets?: EarlySockets;
  /**
   * Ends every connect under way, and any begun after, at once: the Ctrl-C of a CLI process whose own pool
   * this is (a daemon's connections are shared: it gives none). Without it a host that is down or slow
   * held Ctrl-C for the whole connect timeout.
   */
  connectSignal?: AbortSignal;
  /** Long-lived sandboxes (holder.ts) on hosts that can have them (default true); false: a bwrap per command. */
  sandboxHolders?: boolean;
  /**
   * Commands run through a resident executor on the host (ssh-executor.ts) once a connection has
   * served a second command: 'auto' (default); 'always' starts it with the first (tests); 'off'.
   */
  residentExecutor?: 'auto' | 'always' | 'off';
  /** The executor's interpreter on the hosts (default python3). */
  residentPython?: string;
  /** How long an unused long-lived sandbox is kept (default HOLDER_IDLE_MS). */
  holderIdleMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface PoolHostStatus {
  name: string;
  address: string;
  port: number;
  connected: boolean;
  breaker: BreakerState;
  lastRttMs: number | null;
  lastError: string | null;
  activeChannels: number;
  queued: number;
  /** What the live connection's probe found; null when not connected or not probed yet. */
  sandbox: SandboxSupport | null;
  /** Long-lived sandboxes running on the live connection. */
  sandboxHolders: number;
}

export const POOL_DEFAULTS = { maxChannels: 10, whichTtlMs: 5000 } as const;
/** The remote resolver's script: a few stats and one realpath. */
const RESOLVE_TIMEOUT_MS = 10_000;
const RESOLVE_MAX_BYTES = 1 << 20;
/** The sandbox probe: a few tests, bwrap --version and one sandbox running `true`. */
const PROBE_TIMEOUT_MS = 10_000;
const PROBE_MAX_BYTES = 64 << 10;
/**
 * Retries of a refused channel open, CHANNEL_RETRY_MS doubling each time (10 … 320 ms, 0.63 s in all):
 * a busy host's sshd can take that long to free the session of a channel already closed.
 */
const CHANNEL_RETRIES = 6;
const CHANNEL_RETRY_MS = 10;
/** Jump chains longer than this are refused (the inventory refuses cycles; lookup may not). */
const MAX_JUMPS = 8;

export class ConnectionPool {
  readonly knownHostsFile: string;
  readonly securePath: string;
  readonly maxChannels: number;
  readonly backoff: Backoff;
  private readonly hosts = new Map<string, PooledHost>();
  private closed = false;
  /**
   * Ends the connects under way when the pool closes: one to a host that never answers (its caller gone,
   * interrupted) otherwise kept a stopping daemon alive until its connect timeout.
   */
  private readonly closing = new AbortController();
  /** What ends a connect: the pool closing, or its owner's connectSignal. */
  readonly connectSignal: AbortSignal;

  constructor(readonly options: PoolOptions = {}) {
    this.knownHostsFile = options.knownHostsFile ?? knownHostsFile(options.env);
    this.securePath = options.securePath ?? DEFAULT_SECURE_PATH;
    this.maxChannels = options.maxChannels ?? POOL_DEFAULTS.maxChannels;
    if (!Number.isInteger(this.maxChannels) || this.maxChannels < 1) throw new RangeError(`maxChannels must be an integer >= 1, got ${this.maxChannels}`);
    this.backoff = new Backoff(options.backoff);
    this.connectSignal = options.connectSignal ? AbortSignal.any([options.connectSignal, this.closing.signal]) : this.closing.signal;
    // Every connect under way listens to it until it ends: a fan-out has one per host at once, past
    // Node's warning at 10 (which a user would see on stderr).
    setMaxListeners(0, this.connectSignal);
  }

  /** The Host for an inventory entry; commands to it share the host's pooled connection. */
  host(entry: SshHostEntry): Host {
    return this.pooled(entry).api;
  }

  status(): PoolHostStatus[] {
    return [...this.hosts.values()].map((h) => h.status());
  }

  /** Closes every connection; running commands fail as dropped, later ones are refused. */
  async closeAll(): Promise<void> {
    this.closed = true;
    this.closing.abort();
    await Promise.all([...this.hosts.values()].map((h) => h.shutdown()));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The connection to `entry`'s jump host (pooled like any host), refusing chains that loop. */
  async jumpConnection(entry: SshHostEntry, chain: readonly string[]): Promise<SshConnection> {
    const name = entry.jump as string;
    if (chain.includes(name) || chain.length >= MAX_JUMPS) {
      throw new SshError(`${entry.name}: jump chain ${[...chain, name].join(' -> ')} loops or is too long`, 'config');
    }
    const jump = this.options.lookup?.(name);
    if (!jump) throw new SshError(`${entry.name}: jump host "${name}" is not an ssh host in the inventory`, 'config');
    return this.pooled(jump).open([...chain, name]).catch((err: unknown) => {
      // The jump host's error alone names only the jump host: `client run db1` said "web1 (…): connect timeout".
      const message = `${entry.name} is reached through ${name}: ${err instanceof Error ? err.message : String(err)}`;
      // Its kind decides whether retrying may help, for this host as for the jump host.
      throw err instanceof SshError ? new SshError(message, err.kind) : new TransportError(message);
    });
  }

  private pooled(entry: SshHostEntry): PooledHost {
    const current = this.hosts.get(entry.name);
    if (current && sameTarget(current.entry, entry)) return current;
    // The inventory changed where this name points: new commands use a new connection.
    current?.retire();
    const fresh = new PooledHost(entry, this);
    this.hosts.set(entry.name, fresh);
    return fresh;
  }
}

interface Resident {
  conn: SshConnection;
  /** Commands the connection served while no executor was ready. */
  served: number;
  state: 'idle' | 'starting' | 'ready' | 'none';
  executor: ShellExecutor | null;
}

interface Probe {
  conn: SshConnection;
  answer: Promise<SandboxSupport>;
  /** The answer once it came. */
  known: SandboxSupport | null;
  /** The helper that joins long-lived sandboxes there (null: none, or not known yet). */
  enterHelper: EnterHelper | null;
}

class PooledHost {
  readonly api: Host;
  private readonly breaker: CircuitBreaker;
  private readonly whichCache: WhichCache;
  private conn: SshConnection | null = null;
  private connecting: Promise<SshConnection> | null = null;
  private failedAttempts = 0;
  private retryAt = 0;
  private lastRttMs: number | null = null;
  private lastError: string | null = null;
  private active = 0;
  private readonly queue: Waiter[] = [];
  private retired = false;
  private probe: Probe | null = null;
  /** Long-lived sandboxes of the live connection; each holds a channel slot. */
  private holders: HolderSet | null = null;
  /** The live connection's resident executor (ssh-executor.ts): starting, ready, or not to be had there. */
  private resident: Resident | null = null;

  constructor(
    readonly entry: SshHostEntry,
    private readonly pool: ConnectionPool,
  ) {
    this.breaker = new CircuitBreaker(entry.name, pool.options.breaker);
    this.whichCache = new WhichCache(pool.options.whichTtlMs ?? POOL_DEFAULTS.whichTtlMs);
    this.api = {
      name: entry.name,
      resolver: remoteOnly(entry.name),
      // sshd starts sessions in the user's home; the usual layout is assumed rather than asked for
      // (it must be known before the policy check). Where it differs, the action names its cwd.
      defaultCwd: (_callerCwd, sandbox) => remoteDefaultCwd(entry.user, sandbox),
      execute: (req) => this.execute(req),
      openTerminal: (argv, size) => this.openTerminal(argv, size),
      openStream: (command) => this.openStream(command),
      resolverFor: (policy, list, cwd) => this.resolverFor(policy, list, cwd),
      sandboxSupport: () => this.sandboxSupport(),
      files: sftpFiles((use) => this.withSftp(use)),
    };
  }

  status(): PoolHostStatus {
    return {
      name: this.entry.name,
      address: this.entry.address,
      port: this.entry.port,
      connected: this.conn !== null,
      breaker: this.breaker.state(),
      lastRttMs: this.conn?.lastSetupMs ?? this.lastRttMs,
      lastError: this.lastError,
      activeChannels: this.active,
      queued: this.queue.length,
      sandbox: this.conn !== null && this.probe?.conn === this.conn ? this.probe.known : null,
      sandboxHolders: this.holderCount(),
    };
  }

  async execute(req: HostExecRequest): Promise<ExecResult> {
    const started = Date.now();
    // A command given the caller's stdin holds two sessions: its own and its kill switch's (ssh-input.ts).
    const slots = req.stdin != null ? Math.min(2, this.pool.maxChannels) : 1;
    const result = await this.withChannel(req.signal, (conn) => this.run(conn, req), slots);
    return result ?? abortedWhileQueued(started);
  }

  /** An SFTP session for one file operation, on a channel slot; closed after it. */
  private async withSftp<T>(use: (sftp: SFTPWrapper) => Promise<T>): Promise<T> {
    // Without an abort signal the slot is always granted: never null.
    return (await this.withChannel(undefined, async (conn) => {
      const sftp = await conn.sftp();
      // ssh2 fails the pending requests of a dying connection before it reports the connection closed.
      let lost = false;
      const onLost = (): void => void (lost = true);
      sftp.once('end', onLost).once('close', onLost);
      try {
        return await use(sftp);
      } catch (err) {
        // A failure because the session or connection went is the transport's (255), not the file's.
        if (lost || conn.closed) throw new SshError(`${this.entry.name}: the connection was lost during a file operation; its outcome is unknown`, 'dropped');
        throw err;
      } finally {
        sftp.end();
      }
    })) as T;
  }

  /** A terminal holds its channel slot for as long as it runs (sshd's MaxSessions counts it). */
  private openTerminal(argv: readonly string[], size: TerminalSize): Promise<HostTerminal> {
    return new Promise((resolve, reject) => {
      this.withChannel(undefined, async (conn) => {
        const terminal = await conn.openTerminal(argv, size, this.pool.securePath);
        resolve(terminal);
        await terminal.exited;
      }).catch(reject);
    });
  }

  /** A runtime holds its channel slot for as long as it runs, like a terminal. */
  private openStream(command: string): Promise<HostStream> {
    return new Promise((resolve, reject) => {
      this.withChannel(undefined, async (conn) => {
        const stream = await conn.openStream(command);
        resolve(stream);
        await stream.exited.catch(() => undefined);
      }).catch(reject);
    });
  }

  /** One command: sandboxed ones join the spec's long-lived sandbox when the host can have them. */
  private run(conn: SshConnection, req: HostExecRequest): Promise<ExecResult> {
    const securePath = this.pool.securePath;
    if (req.sandbox !== null && this.pool.options.sandboxHolders !== false) {
      const helper = this.probe?.conn === conn ? this.probe.enterHelper : null;
      if (helper !== null && this.holders?.conn !== conn) {
        this.holders?.stopAll();
        this.holders = new HolderSet(conn, helper, {
          idleMs: this.pool.options.holderIdleMs ?? HOLDER_IDLE_MS,
          // A holder keeps its channel open: it takes a slot, and one always stays for commands (this
          // command holds one already).
          mayStart: () => this.active + this.backgroundSlots() + 2 <= this.pool.maxChannels,
          onEnd: () => this.pump(),
        });
      }
      if (this.holders?.conn === conn) return this.holders.run(req, { securePath, exec: this.executorFor(conn) });
    }
    return runCommand(conn, req, { securePath, exec: this.executorFor(conn) });
  }

  /**
   * The connection's resident executor when it is ready, else null (the command takes a channel). It is
   * started in the background once the connection serves its second command (a one-shot fan-out
   * starts none), and holds a channel slot for as long as it lives; a host where it cannot start stays
   * on channels for the connection's life. One that died is started again by a later command.
   */
  private executorFor(conn: SshConnection): ResidentExec | null {
    const mode = this.pool.options.residentExecutor ?? 'auto';
    if (mode === 'off') return null;
    if (this.resident?.conn !== conn) this.resident = { conn, served: 0, state: 'idle', executor: null };
    const r = this.resident;
    if (r.state === 'ready' && r.executor?.closed) {
      r.state = 'idle';
      r.executor = null;
      this.pump();
    }
    if (r.state === 'ready' && r.executor) {
      const executor = r.executor;
      return (command, opts, how) => executor.exec(command, opts, how);
    }
    r.served++;
    // It takes a slot, and only where that leaves one for a command and one for a sandbox holder beside
    // this command's (a few sessions are better spent on those).
    if (r.state === 'idle' && (mode === 'always' || r.served >= 2) && this.active + this.backgroundSlots() + 3 <= this.pool.maxChannels) {
      r.state = 'starting';
      void ShellExecutor.start(conn, this.pool.options.residentPython).then(
        (executor) => {
          if (this.resident !== r || conn.closed) return executor?.close();
          r.executor = executor;
          r.state = executor === null ? 'none' : 'ready';
          if (executor === null) this.pump();
          // Its slot passes on when it ends (killed on the host, say); a later command starts another.
          else void executor.ended.then(() => this.pump());
        },
        () => {
          if (this.resident === r) r.state = 'none';
          this.pump();
        },
      );
    }
    return null;
  }

  private holderCount(): number {
    return this.holders !== null && this.holders.conn === this.conn ? this.holders.size : 0;
  }

  /** Slots held by channels that are not commands: the holders', and the resident executor's (sshd's MaxSessions counts it). */
  private backgroundSlots(): number {
    const r = this.resident;
    const resident = r !== null && r.conn === this.conn && (r.state === 'starting' || (r.state === 'ready' && !r.executor?.closed)) ? 1 : 0;
    return this.holderCount() + resident;
  }

  private async resolverFor(policy: Policy, list: CommandList, cwd: string): Promise<PathResolver> {
    const run = async (script: string): Promise<Buffer> => {
      const out = await this.withChannel(undefined, (conn) =>
        captureScript(conn, script, { securePath: this.pool.securePath, timeoutMs: RESOLVE_TIMEOUT_MS, maxBytes: RESOLVE_MAX_BYTES }),
      );
      // Without an abort signal the slot is always granted: never null.
      return out as Buffer;
    };
    return prefetchResolver(policy, list, cwd, { run, securePath: this.pool.securePath, whichCache: this.whichCache });
  }

  /** Whether the host can sandbox commands: probed once per connection, concurrent callers share the probe. */
  private async sandboxSupport(): Promise<SandboxSupport> {
    const conn = await this.open();
    if (this.probe?.conn === conn) return this.probe.answer;
    // Without an abort signal the slot is always granted: never null.
    return (await this.withChannel(undefined, (c) => this.probeOn(c))) as SandboxSupport;
  }

  private probeOn(conn: SshConnection): Promise<SandboxSupport> {
    if (this.probe?.conn !== conn) {
      const probe: Probe = { conn, answer: this.runProbe(conn, (helper) => (probe.enterHelper = helper)), known: null, enterHelper: null };
      probe.answer.then((support) => (probe.known = support), () => undefined);
      this.probe = probe;
    }
    return this.probe.answer;
  }

  private async runProbe(conn: SshConnection, holders: (helper: EnterHelper | null) => void): Promise<SandboxSupport> {
    const securePath = this.pool.securePath;
    try {
      const out = await captureScript(conn, probeScript(securePath), { securePath, timeoutMs: PROBE_TIMEOUT_MS, maxBytes: PROBE_MAX_BYTES });
      const support = parseProbe(out, this.entry.name, securePath);
      if (support.available) holders(parseHolderProbe(out).helper);
      return support;
    } catch (err) {
      // Not kept: the next command asks again. Only a host that answered is judged.
      if (this.probe?.conn === conn) this.probe = null;
      if (err instanceof TransportError) throw err;
      throw new TransportError(`${this.entry.name}: cannot tell whether it can sandbox commands: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** The live connection, made (once, shared by concurrent callers) if needed. Fails fast while the breaker is open. */
  async open(chain: readonly string[] = [this.entry.name]): Promise<SshConnection> {
    if (this.pool.isClosed) throw new TransportError(`${this.entry.name}: the connection pool is closed`);
    const pass = this.breaker.canPass();
    if (!pass.ok) throw new TransportError(pass.reason);
    if (this.conn !== null) {
      this.breaker.recordSuccess();
      return this.conn;
    }
    this.connecting ??= this.connect(chain).finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async connect(chain: readonly string[]): Promise<SshConnection> {
    const wait = this.retryAt - Date.now();
    // A half-open probe has already waited the breaker's cool-down.
    if (wait > 0 && this.breaker.state().state === 'closed') await sleep(wait);
    const { options } = this.pool;
    try {
      const via = this.entry.jump === null ? undefined : await this.pool.jumpConnection(this.entry, chain);
      const early = via ? undefined : options.earlySockets?.take(this.entry.name, this.entry.address, this.entry.port);
      const conn = await connectSsh(this.entry, {
        knownHostsFile: this.pool.knownHostsFile,
        acceptNew: options.acceptNew ?? false,
        ...(options.onHostKeyAccepted ? { onHostKeyAccepted: options.onHostKeyAccepted } : {}),
        readyTimeoutMs: options.connectTimeoutMs ?? SSH_DEFAULTS.readyTimeoutMs,
        keepaliveIntervalMs: options.keepaliveIntervalMs ?? SSH_DEFAULTS.keepaliveIntervalMs,
        keepaliveCountMax: options.keepaliveCountMax ?? SSH_DEFAULTS.keepaliveCountMax,
        ...(via ? { via } : {}),
        ...(early ? { early } : {}),
        ...(options.env ? { env: options.env } : {}),
        signal: this.pool.connectSignal,
      });
      if (this.pool.isClosed) {
        await conn.close();
        throw new TransportError(`${this.entry.name}: the connection pool is closed`);
      }
      conn.onClose((reason) => this.dropped(conn, reason));
      this.conn = conn;
      this.failedAttempts = 0;
      this.retryAt = 0;
      this.lastError = null;
      this.whichCache.clear();
      this.breaker.recordSuccess();
      return conn;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.lastError = message;
      this.breaker.recordFailure(message);
      const transient = !(err instanceof SshError) || err.transient;
      this.retryAt = transient ? Date.now() + this.pool.backoff.nextDelay(this.failedAttempts++) : 0;
      throw err instanceof TransportError ? err : new TransportError(`${this.entry.name}: ${message}`);
    }
  }

  private dropped(conn: SshConnection, reason: string): void {
    // shutdown() lets go of the connection before closing it: only drops nobody asked for get past here.
    if (this.conn !== conn) return;
    this.conn = null;
    this.probe = null;
    this.holders = null;
    this.lastRttMs = conn.lastSetupMs;
    this.whichCache.clear();
    this.lastError = reason;
    // An idle connection the server closed says little about the host; losing running commands does
    // (on channels or through the resident executor, whose own channel is no command).
    const viaExecutor = this.resident?.conn === conn ? (this.resident.executor?.running ?? 0) : 0;
    this.resident = null;
    if (conn.channels + viaExecutor > 0) this.breaker.recordFailure(reason);
  }

  /** Runs `use` on `slots` channel slots of the live connection; null when aborted while queued. */
  private async withChannel<T>(signal: AbortSignal | undefined, use: (conn: SshConnection) => Promise<T>, slots = 1): Promise<T | null> {
    // Fail fast on an open breaker instead of queueing behind commands that will fail anyway.
    if (this.breaker.state().state === 'open') {
      const pass = this.breaker.canPass();
      if (!pass.ok) throw new TransportError(pass.reason);
    }
    if (!(await this.acquire(signal, slots))) return null;
    try {
      for (let attempt = 1; ; attempt++) {
        const conn = await this.open();
        try {
          return await use(conn);
        } catch (err) {
          // sshd frees a session only after its channel is gone, so an open right after a close can be
          // refused for a moment. Nothing ran (the channel never opened): try again shortly.
          if (!(err instanceof SshError) || err.kind !== 'channel' || conn.closed || attempt > CHANNEL_RETRIES) throw err;
          await sleep(CHANNEL_RETRY_MS * 2 ** (attempt - 1));
        }
      }
    } finally {
      this.release(slots);
    }
  }

  private acquire(signal: AbortSignal | undefined, slots: number): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    // FIFO: nobody overtakes a command waiting for two slots.
    if (this.queue.length === 0 && this.active + this.backgroundSlots() + slots <= this.pool.maxChannels) {
      this.active += slots;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        slots,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(true);
        },
      };
      const onAbort = (): void => {
        this.queue.splice(this.queue.indexOf(waiter), 1);
        resolve(false);
        // Whoever waited behind it may fit now.
        this.pump();
      };
      this.queue.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private release(slots: number): void {
    this.active -= slots;
    // The slots pass straight to the next in line.
    this.pump();
    if (this.retired && this.active === 0) void this.shutdown();
  }

  /** Slots came free (a command's or a holder's): grant them to the next in line, in order. */
  private pump(): void {
    for (let next = this.queue[0]; next !== undefined && this.active + this.backgroundSlots() + next.slots <= this.pool.maxChannels; next = this.queue[0]) {
      this.queue.shift();
      this.active += next.slots;
      next.grant();
    }
  }

  /**
   * The inventory changed where this name points: the pool hands out a fresh host from now on. Commands
   * already holding this one still run; the connection closes once they are done.
   */
  retire(): void {
    this.retired = true;
    if (this.active === 0) void this.shutdown();
  }

  async shutdown(): Promise<void> {
    const conn = this.conn;
    this.conn = null;
    this.holders?.stopAll();
    this.holders = null;
    await conn?.close();
  }
}

/**
 * The login's home, or `/` of the sandbox when the policy's paths do not cover it (compared as written:
 * the host resolves them when it builds the sandbox).
 */
function remoteDefaultCwd(user: string, sandbox: SandboxSpec | null): string {
  const home = user === 'root' ? '/root' : `/home/${user}`;
  if (sandbox === null) return home;
  return [...sandbox.read, ...sandbox.write].some((root) => root === '/' || home === root || home.startsWith(`${root}/`)) ? home : '/';
}

/** Commands to an SSH host must be checked with answers from that host: see Host.resolverFor. */
function remoteOnly(name: string): PathResolver {
  const refuse = (): never => {
    throw new Error(`paths on ${name} are resolved on the host: the caller must use resolverFor()`);
  };
  return { realpath: refuse, which: refuse };
}

function sameTarget(a: SshHostEntry, b: SshHostEntry): boolean {
  return a.address === b.address && a.port === b.port && a.user === b.user && a.jump === b.jump && JSON.stringify(a.auth) === JSON.stringify(b.auth);
}

function abortedWhileQueued(started: number): ExecResult {
  return {
    exitCode: 130,
    signal: null,
    timedOut: false,
    aborted: true,
    truncated: false,
    bytesOut: 0,
    bytesErr: 0,
    durationMs: Date.now() - started,
    error: null,
    errorKind: null,
  };
}

/** A caller waiting for channel slots. */
interface Waiter {
  slots: number;
  grant(): void;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
