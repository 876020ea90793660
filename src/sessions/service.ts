// tmux sessions across the fleet: who the tmux users of a host are, running remux's own tmux command
// lists there (Host.execute: the pooled SSH connection, or this machine without a shell), and the
// inventory cache. The daemon sweeps every host in the background so listing reads the cache and
// never waits on SSH; a change made through remux refreshes its host at once.
import { userInfo } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { CommandList } from '../command/types.js';
import type { SandboxSpec } from '../exec/types.js';
import type { HostEntry } from '../hosts/inventory.js';
import { isLocalHostName } from '../hosts/local.js';
import type { HostRegistry } from '../hosts/registry.js';
import { TransportError } from '../hosts/types.js';
import { bySessionName, listCommand, parseList, serverExited, sudoProbeCommand, type TmuxTarget, type UserSessions } from './tmux.js';

/** tmux answers in milliseconds; a host that takes longer is shown as failing, not waited for. */
const TMUX_TIMEOUT_MS = 10_000;
/** A listing is a line per session. */
const LIST_MAX_BYTES = 1 << 20;

export interface HostSessions {
  host: string;
  /** When this host was last asked (ISO time). */
  checkedAt: string;
  /** How long asking took. */
  sweepMs: number;
  /** Why the host could not be asked at all (unreachable, unknown); null when it answered. */
  error: string | null;
  /** Per configured tmux user, in configuration order. */
  users: UserSessions[];
}

export interface TmuxRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Why it did not run as asked (a program missing, a timeout), or null. */
  error: string | null;
}

/** The daemon's whole-session recorder (session-recorder.ts), told of each session remux creates. */
export interface SessionRecorderHook {
  /** Starts recording a session `principal` just created; resolves once recording (never rejects). */
  created(host: string, target: TmuxTarget, session: string, principal: string): Promise<void>;
  /** The id of the recording running for that session, or null. */
  recordingOf(host: string, user: string, session: string): string | null;
}

/** A tmux user the host does not list in tmux_users: a usage error (exit 2). */
export class TmuxUserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TmuxUserError';
  }
}

export class Sessions {
  private readonly cache = new Map<string, HostSessions>();
  /** The ask running per host, and the one queued behind it. */
  private readonly asking = new Map<string, Promise<HostSessions>>();
  private readonly queued = new Map<string, Promise<HostSessions>>();
  private timer: NodeJS.Timeout | null = null;
  /** Set by the daemon when `sessions.record` is `sessions`. */
  recorder: SessionRecorderHook | null = null;

  constructor(
    private readonly registry: HostRegistry,
    /** How long an attach may last before it is closed. */
    readonly attachLifetimeMs: number,
  ) {}

  /** The PATH of a sandboxed pane: the secure PATH of commands. */
  get securePath(): string {
    return this.registry.securePath;
  }

  /** The login user and the configured tmux users of a host (default: the login user alone). */
  users(host: string): { loginUser: string; users: string[] } {
    const entry = this.entry(host);
    const loginUser = entry.transport === 'ssh' ? entry.user : entry.transport === 'agent' ? this.registry.agentUser(host) : userInfo().username;
    return { loginUser, users: entry.tmuxUsers ?? [loginUser] };
  }

  /** Whom and which server a command for `user` (default: the login user) on `host` (about `session`) addresses. */
  target(host: string, user?: string, session?: string): TmuxTarget {
    const { loginUser, users } = this.users(host);
    const wanted = user ?? loginUser;
    if (!users.includes(wanted)) {
      throw new TmuxUserError(`tmux user "${wanted}" is not configured for ${host} (configured: ${users.join(', ')}); add it to tmux_users of ${host} in hosts.yaml`);
    }
    return { loginUser, user: wanted, socket: this.registry.tmuxSocket(host, session) };
  }

  /** Runs one of remux's tmux command lists on `host`; rejects with the transport's error when unreachable. */
  /** `sandbox`: for an agent host, the sandbox the gateway's policy asks for a new session's pane (the agent builds it). */
  async run(host: string, list: CommandList, maxBytes: number, sandbox: SandboxSpec | null = null): Promise<TmuxRun> {
    const r = await this.runOnce(host, list, maxBytes, sandbox);
    // Sent to a server ending with its last session: again, once (serverExited).
    return r.exitCode !== 0 && serverExited(r.stderr) ? this.runOnce(host, list, maxBytes, sandbox) : r;
  }

  private async runOnce(host: string, list: CommandList, maxBytes: number, sandbox: SandboxSpec | null): Promise<TmuxRun> {
    await this.registry.prepare([host]);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const result = await this.registry.host(host).execute({
      list,
      cwd: '/',
      timeoutMs: TMUX_TIMEOUT_MS,
      pipefail: false,
      output: { maxBytes, redact: [], redactBlocks: [] },
      sandbox,
      onStdout: (chunk) => out.push(chunk),
      onStderr: (chunk) => err.push(chunk),
    });
    const error = result.timedOut ? `tmux did not answer within ${TMUX_TIMEOUT_MS} ms` : result.error;
    return { exitCode: result.exitCode, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), error };
  }

  /**
   * After a command as another user failed: sudo's own refusal (its first line) when sudo is what said
   * no, else null (tmux refused, or the user is the login user).
   */
  async sudoRefusal(host: string, target: TmuxTarget): Promise<string | null> {
    if (target.user === target.loginUser) return null;
    const probe = await this.run(host, sudoProbeCommand(target), LIST_MAX_BYTES);
    return probe.exitCode === 0 ? null : (probe.stderr.split('\n').find((l) => l.trim() !== '')?.trim() ?? probe.error ?? `exit status ${probe.exitCode}`);
  }

  /** What the cache holds for `host`; a host never asked yet is asked now (once: later reads never wait). */
  async list(host: string): Promise<HostSessions> {
    return this.cache.get(host) ?? this.refresh(host);
  }

  /**
   * Asks `host` (one exec per tmux user, in parallel) and caches the answer, which reflects the host as it
   * is after this call: an ask already running may have read it before the caller's change, so the
   * caller waits for one started after it (shared by everyone who asks meanwhile).
   */
  refresh(host: string): Promise<HostSessions> {
    const queued = this.queued.get(host);
    if (queued) return queued;
    const running = this.asking.get(host);
    if (!running) return this.start(host);
    // ask() never rejects: its failures are answers.
    const next = running.then(() => {
      this.queued.delete(host);
      return this.start(host);
    });
    this.queued.set(host, next);
    return next;
  }

  private start(host: string): Promise<HostSessions> {
    const asked: Promise<HostSessions> = this.ask(host).finally(() => {
      if (this.asking.get(host) === asked) this.asking.delete(host);
    });
    this.asking.set(host, asked);
    return asked;
  }

  /** Asks every inventory host at once, and the built-in local host once someone has listed it. */
  async sweep(): Promise<HostSessions[]> {
    let names: string[];
    try {
      names = this.registry.inventory().hosts.map((h) => h.name);
    } catch {
      return []; // a broken hosts.yaml: commands report it with file:line; the next sweep tries again
    }
    // Hosts removed from the inventory leave the cache.
    for (const name of this.cache.keys()) {
      if (isLocalHostName(name)) names.push(name);
      else if (!names.includes(name)) this.cache.delete(name);
    }
    await this.registry.prepare(names);
    return Promise.all(names.map((name) => this.refresh(name)));
  }

  /** Sweeps now and every `intervalMs` after the previous sweep ended (the daemon). */
  startSweeping(intervalMs: number): void {
    const loop = (): void => {
      // Each host's failure is kept in its cache entry; only loading the SSH machinery could fail here, and the next sweep retries it.
      void this.sweep()
        .catch(() => undefined)
        .finally(() => {
          if (this.timer !== null) this.timer = setTimeout(loop, intervalMs).unref();
        });
    };
    this.timer = setTimeout(loop, 0).unref();
  }

  stopSweeping(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private async ask(host: string): Promise<HostSessions> {
    const started = performance.now();
    const checkedAt = new Date().toISOString();
    let users: UserSessions[] = [];
    let error: string | null = null;
    try {
      users = await Promise.all(this.users(host).users.map((user) => this.listUser(host, user)));
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    const answer: HostSessions = { host, checkedAt, sweepMs: Math.round((performance.now() - started) * 10) / 10, error, users };
    this.cache.set(host, answer);
    return answer;
  }

  /**
   * One tmux user's sessions on `host`: its own server's, and (agent sessions started under another
   * TMUX_TMPDIR) those other servers run by their records, each session once. A server of theirs that is
   * gone or does not answer lists nothing; the host's own server's failure is the user's.
   */
  private async listUser(host: string, user: string): Promise<UserSessions> {
    const target = this.target(host, user);
    const list = async (socket: TmuxTarget['socket']): Promise<UserSessions> => {
      const r = await this.run(host, listCommand({ ...target, socket }), LIST_MAX_BYTES);
      if (r.error !== null && r.exitCode !== 127 && r.exitCode !== 0) return { user, state: 'error', detail: r.error, sessions: [] };
      return parseList(user, r.exitCode, r.stdout, r.stderr);
    };
    const others = this.registry.otherTmuxServers(host);
    const [own, elsewhere] = await Promise.all([list(target.socket), Promise.all(others.map(({ server }) => list(server)))]);
    if (own.state !== 'ok' && own.state !== 'no_server') return own;
    // Where a record places a session first: a session of the same name on the own server is not that one.
    const found = elsewhere.flatMap((u, i) => u.sessions.filter((s) => others[i]!.sessions.has(s.name)));
    const names = new Set(found.map((s) => s.name));
    const sessions = [...found, ...own.sessions.filter((s) => !names.has(s.name))].sort(bySessionName);
    return sessions.length === 0 ? own : { user, state: 'ok', sessions };
  }

  private entry(host: string): HostEntry {
    const entry = this.registry.entry(host);
    if (!entry) throw new TransportError(`unknown host "${host}"`);
    return entry;
  }
}
