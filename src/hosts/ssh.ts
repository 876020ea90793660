// One SSH connection through ssh2, and commands run over its exec channels.
//
// Host keys are checked strictly against a known_hosts file (known-hosts.ts): an unknown, changed or
// revoked key refuses. With acceptNew an UNKNOWN key (never a changed one) is trusted, appended to the
// file and reported through a callback so it can be audited. A jump host (ProxyJump) is an existing
// connection: the target is reached over one of its direct-tcpip channels, and each hop checks its own
// key against the same file.
//
// Commands: sshd runs what we send with the user's login shell (`$SHELL -c`), so the parsed command list
// is rendered with render.ts quoting inside a small POSIX-sh wrapper (wrapScript), which works the same
// in dash and bash:
//   - PATH is the secure PATH the policy resolved programs in; `cd -- CWD` comes first (125 on failure).
//   - Without the caller's stdin, the command's stdin is /dev/null and the channel's stdin is the
//     wrapper's kill switch. A background watcher blocks reading it; EOF means we stopped the
//     command (timeout, abort, output cap: we send EOF) or the connection died (sshd closes the pipe).
//     The watcher then signals its whole process group: sshd starts every session with setsid(), so the
//     group is everything the command started (a program that makes its own group escapes, as under
//     local exec). TERM first, KILL after the grace; the watcher ignores TERM to live until the KILL.
//     (`set -m` would give the command its own group too, but dash turns job control off without a tty.)
//   - With the caller's stdin (req.stdin), the channel's stdin is the command's, and its EOF is only
//     the command's EOF. The kill switch is then a second exec channel on the same connection, whose
//     watcher kills the same group on EOF of its own stdin; the wrapper reports its group and waits at a
//     gate until that watcher is armed, so the list never runs unguarded (ssh-input.ts).
//   - On normal completion the watcher and anything left in the group are killed, and the wrapper exits
//     with the list's status; a stage killed by signal N gives 128+N, as in sh.
//   - Right before the list starts, the wrapper prints `<marker>run` on stderr; before it, stderr is the
//     wrapper's own (its refusals: `<marker><what>`, exit 125) or bwrap's (see PrologueSniffer).
//   - With an OS sandbox, the options of bwrap are built on the host (remote-sandbox.ts) and the whole
//     list, redirections included, runs in one bwrap under the login shell (`$SHELL -c`), stdin passed
//     through. The watcher's TERM kills bwrap, and --die-with-parent then kills everything inside (its
//     PID namespace).
//     bwrap that does not get as far as `<marker>run` is a refusal: the command never runs unsandboxed.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { constants, homedir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, Client, ClientChannel, ConnectConfig, ParsedKey, SFTPWrapper } from 'ssh2';
import { quoteWord, renderCommandList } from '../command/render.js';
import type { CommandList, Stage } from '../command/types.js';
import { OutputGate, type OutputSource } from '../exec/output.js';
import type { ExecErrorKind, ExecResult, OutputFlow, SandboxSpec } from '../exec/types.js';
import type { HostAuth } from './inventory.js';
import type { EarlySocket } from './early-sockets.js';
import {
  appendKnownHost,
  checkHostKey,
  findHostEntries,
  fingerprint,
  hostKeyRefusalMessage,
  keyBlobType,
  knownHostsLine,
} from './known-hosts.js';
import { PASSED_ENV } from './local.js';
import { ENTER_NAMESPACES, parseEnterReport, sandboxGone, type EnterReport } from '../exec/sandbox.js';
import { bwrapPrologue, HELPER_FD, INNER_SHELL, runBwrap, type HolderInfo } from './remote-sandbox.js';
import { GROUP_REPORT, GuardedInput, inputGate } from './ssh-input.js';
import { TransportError, type HostExecRequest, type HostStream, type HostTerminal, type TerminalSize } from './types.js';

/** Why a connection or channel failed. */
export type SshFailure = 'config' | 'host-key' | 'auth' | 'connect' | 'timeout' | 'dropped' | 'channel' | 'interrupted';

/** A connection-level failure (exit 255), naming the host. */
export class SshError extends TransportError {
  constructor(
    message: string,
    readonly kind: SshFailure,
  ) {
    super(message);
    this.name = 'SshError';
  }

  /** Network trouble that may pass. A refused key, bad credentials or configuration do not get better by retrying. */
  get transient(): boolean {
    return this.kind !== 'config' && this.kind !== 'host-key' && this.kind !== 'auth';
  }
}

export interface SshEndpoint {
  /** The inventory name, used in messages and in the accept-new callback. */
  name: string;
  address: string;
  port: number;
  user: string;
  auth: HostAuth;
}

export interface ConnectOptions {
  knownHostsFile: string;
  /** Trust (and record) a key the file does not know at all; a changed or revoked key still refuses. */
  acceptNew?: boolean;
  /** Told about every key trusted through acceptNew, so it can be audited. */
  onHostKeyAccepted?: (host: string, fingerprint: string) => void;
  /** TCP connect + handshake + authentication. */
  readyTimeoutMs?: number;
  /** SSH-level keepalive; after keepaliveCountMax unanswered ones the connection is dropped. */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Reach the target through this (jump host) connection. */
  via?: SshConnection;
  /** A TCP connection to the endpoint already begun (early-sockets.ts): used instead of connecting. */
  early?: EarlySocket;
  /** Where SSH_AUTH_SOCK, password variables and HOME are read. */
  env?: NodeJS.ProcessEnv;
  /** Gives the connect up at once (Ctrl-C): what was begun is closed. */
  signal?: AbortSignal;
}

export const SSH_DEFAULTS = { readyTimeoutMs: 10_000, keepaliveIntervalMs: 15_000, keepaliveCountMax: 3, killGraceMs: 2000 } as const;

// ssh2's default host key algorithm order; the types known_hosts already holds for a host go first.
const HOST_KEY_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];
/** After the wrapper's kill grace, how much longer a stopped channel may take to close before we close it. */
const CLOSE_MARGIN_MS = 1000;

/** Connects and authenticates; rejects with an SshError that names the host. */
export async function connectSsh(endpoint: SshEndpoint, options: ConnectOptions): Promise<SshConnection> {
  const env = options.env ?? process.env;
  const where = describe(endpoint, options.via);
  const creds = await credentials(endpoint, env, where);
  const knownHosts = await readKnownHosts(options.knownHostsFile);
  const timeoutMs = options.readyTimeoutMs ?? SSH_DEFAULTS.readyTimeoutMs;
  const deadline = Date.now() + timeoutMs;
  let sock: Duplex | undefined;
  if (options.early) {
    const { socket, error } = options.early;
    if (error !== null || socket.destroyed) {
      socket.destroy();
      throw new SshError(`${where}: cannot connect: ${error?.message ?? 'connection closed'}`, 'connect');
    }
    sock = socket;
  } else if (options.via) {
    const via = options.via;
    sock = await via.forwardOut(endpoint.address, endpoint.port, timeoutMs).catch((err: unknown) => {
      throw new SshError(`${where}: cannot reach it through ${via.endpoint.name}: ${errorText(err)}`, err instanceof SshError ? err.kind : 'connect');
    });
  }

  const client = new ssh2.Client();
  const conn = new SshConnection(client, endpoint, where);
  let refusal: string | null = null;
  const hostVerifier = (key: Buffer, verify: (ok: boolean) => void): void => {
    const ctx = { name: endpoint.name, host: endpoint.address, port: endpoint.port, file: options.knownHostsFile, key };
    const keyType = keyBlobType(key);
    if (keyType === null) {
      refusal = `${where}: presented a malformed or unsupported host key: refusing`;
      return verify(false);
    }
    const check = checkHostKey(knownHosts, endpoint.address, endpoint.port, keyType, key);
    if (check.status === 'trusted') return verify(true);
    if (check.status !== 'unknown' || !options.acceptNew) {
      refusal = hostKeyRefusalMessage(check, ctx);
      return verify(false);
    }
    const line = knownHostsLine(endpoint.address, endpoint.port, keyType, key.toString('base64'), { hashed: false });
    appendKnownHost(options.knownHostsFile, line).then(
      () => {
        options.onHostKeyAccepted?.(endpoint.name, fingerprint(key));
        verify(true);
      },
      (err: unknown) => {
        refusal = `${where}: cannot record its new host key in ${options.knownHostsFile}: ${errorText(err)}`;
        verify(false);
      },
    );
  };
  const algorithms = hostKeyPreference(knownHosts, endpoint.address, endpoint.port);
  const config: ConnectConfig = {
    host: endpoint.address,
    port: endpoint.port,
    username: endpoint.user,
    authHandler: creds.methods,
    hostVerifier,
    // The connect timeout covers the jump's forward too.
    readyTimeout: Math.max(1, deadline - Date.now()),
    keepaliveInterval: options.keepaliveIntervalMs ?? SSH_DEFAULTS.keepaliveIntervalMs,
    keepaliveCountMax: options.keepaliveCountMax ?? SSH_DEFAULTS.keepaliveCountMax,
    ...(sock ? { sock } : {}),
    ...(algorithms ? { algorithms: { serverHostKey: algorithms as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] } } : {}),
  };

  return new Promise((resolve, reject) => {
    let settled = false;
    const onAbort = (): void => fail(new SshError(`${where}: connect interrupted`, 'interrupted'));
    const fail = (err: SshError): void => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      client.destroy();
      sock?.destroy();
      reject(err);
    };
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    client.on('error', (err: Error & { level?: string }) => {
      // An agent key that fails to sign is skipped by ssh2, which goes on with the next method.
      if (err.level === 'agent') return;
      if (refusal !== null) return fail(new SshError(refusal, 'host-key'));
      switch (err.level) {
        case 'client-authentication':
          return fail(new SshError(`${where}: authentication as ${endpoint.user} failed (tried ${creds.tried.join(', ')})`, 'auth'));
        case 'client-timeout':
          return fail(new SshError(`${where}: no SSH session within ${timeoutMs} ms (connect timeout)`, 'timeout'));
        case 'client-socket':
          return fail(new SshError(`${where}: cannot connect: ${err.message}`, 'connect'));
        default:
          return fail(new SshError(`${where}: SSH connection failed: ${err.message}`, 'connect'));
      }
    });
    client.once('close', () => fail(new SshError(refusal ?? `${where}: connection closed before the session was ready`, refusal ? 'host-key' : 'connect')));
    client.once('ready', () => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      resolve(conn);
    });
    try {
      client.connect(config);
    } catch (err) {
      fail(new SshError(`${where}: ${errorText(err)}`, 'config'));
      return;
    }
    // Requests and replies are small: without this, Nagle's algorithm and delayed ACKs add tens of ms.
    client.setNoDelay(true);
  });
}

export interface ExecOptions {
  onStdout(chunk: Buffer): void;
  onStderr(chunk: Buffer): void;
  /** Aborting sends EOF on the channel's stdin: the wrapper's signal to kill the remote command. */
  stop?: AbortSignal;
  /** After stop, how long the channel may stay open before we close it ourselves. */
  stopGraceMs?: number;
  /** Not a command (a sandbox holder): not counted in `channels`, so losing it idle is no failure. */
  background?: boolean;
  /** Written to the channel's stdin once it is open; stdin stays open until stop. */
  input?: Buffer;
  /**
   * The command reads the channel's stdin (ssh-input.ts): given the channel once it is open, and stop
   * leaves the channel's stdin alone (the kill switch is another channel).
   */
  takeStdin?: (channel: ClientChannel) => void;
  /** While full, the channel is not read: the SSH window closes and the remote command blocks. */
  flow?: OutputFlow;
}

export interface ExecExit {
  /** The remote shell's exit status; null when it reported none (killed by a signal, or closed after stop). */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class SshConnection {
  /** Exec channels open right now. */
  channels = 0;
  /** Time to open the latest exec channel and start its command: two request round trips plus the server's fork. */
  lastSetupMs: number | null = null;
  private closeReason: string | null = null;
  private lastError: string | null = null;
  private readonly closeListeners: Array<(reason: string) => void> = [];
  private readonly closedPromise: Promise<void>;

  constructor(
    private readonly client: Client,
    readonly endpoint: SshEndpoint,
    /** `name (address:port)`, for messages. */
    readonly where: string,
  ) {
    client.on('error', (err: Error) => (this.lastError = err.message));
    this.closedPromise = new Promise((resolve) =>
      client.once('close', () => {
        this.closeReason ??= `${where}: connection lost${this.lastError ? ` (${this.lastError})` : ''}`;
        for (const listener of this.closeListeners) listener(this.closeReason);
        resolve();
      }),
    );
  }

  get closed(): boolean {
    return this.closeReason !== null;
  }

  /** Called once when the connection closes, for whatever reason. */
  onClose(listener: (reason: string) => void): void {
    this.closeListeners.push(listener);
  }

  /** Runs a command string (see wrapScript) and streams its output; rejects with an SshError if the connection fails under it. */
  exec(command: string, opts: ExecOptions): Promise<ExecExit> {
    return new Promise((resolve, reject) => {
      if (this.closeReason !== null) return reject(new SshError(this.closeReason, 'dropped'));
      const started = performance.now();
      const counted = opts.background !== true;
      if (counted) this.channels++;
      let done = false;
      const finish = (settle: () => void): void => {
        if (done) return;
        done = true;
        if (counted) this.channels--;
        settle();
      };
      const failed = (err: Error): void => {
        const failure = this.closeReason !== null
          ? new SshError(this.closeReason, 'dropped')
          : new SshError(`${this.where}: cannot start a command: ${err.message}`, 'channel');
        finish(() => reject(failure));
      };
      const onChannel = (err: Error | undefined, channel: ClientChannel): void => {
        if (err) return failed(err);
        if (counted) this.lastSetupMs = performance.now() - started;
        let exit: ExecExit | null = null;
        let stopped = false;
        let forceClose: NodeJS.Timeout | undefined;
        const stop = (): void => {
          stopped = true;
          if (!opts.takeStdin) channel.end();
          // sshd answers our close only once its child has exited: a command the wrapper failed to
          // kill must not hold the caller, so give up on the channel after the grace.
          forceClose = setTimeout(() => {
            channel.close();
            finish(() => resolve(exit ?? { code: null, signal: null }));
          }, opts.stopGraceMs ?? SSH_DEFAULTS.killGraceMs + CLOSE_MARGIN_MS);
        };
        opts.takeStdin?.(channel);
        if (opts.stop?.aborted) stop();
        else opts.stop?.addEventListener('abort', stop, { once: true });
        const flow = opts.flow;
        const deliver = (to: (chunk: Buffer) => void) => (chunk: Buffer): void => {
          to(chunk);
          if (flow?.full()) {
            channel.pause();
            channel.stderr.pause();
            flow.onRoom(() => {
              channel.resume();
              channel.stderr.resume();
            });
          }
        };
        channel.on('data', deliver(opts.onStdout));
        channel.stderr.on('data', deliver(opts.onStderr));
        if (opts.input && !stopped) channel.write(opts.input);
        // ssh2 names signals like Node does (SIGTERM).
        channel.on('exit', (code: number | null, signal?: string) => {
          exit = { code, signal: (signal as NodeJS.Signals | undefined) ?? null };
        });
        channel.on('close', () => {
          clearTimeout(forceClose);
          opts.stop?.removeEventListener('abort', stop);
          if (exit !== null || stopped) return finish(() => resolve(exit ?? { code: null, signal: null }));
          const why = this.closeReason ?? `${this.where}: the server closed the channel`;
          finish(() => reject(new SshError(`${why}; the command's outcome is unknown`, 'dropped')));
        });
      };
      // ssh2 throws rather than calls back when the socket is already gone.
      try {
        this.client.exec(command, onChannel);
      } catch (err) {
        failed(err as Error);
      }
    });
  }

  /**
   * Runs `argv` (remux's own words) in a pseudo-terminal on an exec channel: `exec` leaves it the pty's
   * session leader, so closing the channel hangs it up. Its window is only re-opened as we read, so
   * pause() stops the remote program once the SSH window fills.
   */
  openTerminal(argv: readonly string[], size: TerminalSize, securePath: string): Promise<HostTerminal> {
    const command = `PATH=${quoteWord(securePath)}; export PATH; exec ${argv.map(quoteWord).join(' ')}`;
    return new Promise((resolve, reject) => {
      if (this.closeReason !== null) return reject(new SshError(this.closeReason, 'dropped'));
      this.channels++;
      const opened = (err: Error | undefined, channel: ClientChannel): void => {
        if (err) {
          this.channels--;
          return reject(new SshError(`${this.where}: cannot open a terminal: ${err.message}`, 'channel'));
        }
        let exit: { code: number | null; signal: string | null } = { code: null, signal: null };
        channel.on('exit', (code: number | null, signal?: string) => (exit = { code, signal: signal ?? null }));
        // How the channel ends is told by 'close'; an error event (a write racing the end) must not throw.
        channel.on('error', () => undefined);
        const exited = new Promise<typeof exit>((done) =>
          channel.once('close', () => {
            this.channels--;
            done(exit);
          }),
        );
        resolve({
          write: (data) => void channel.write(data),
          resize: (cols, rows) => void channel.setWindow(rows, cols, 0, 0),
          pause: () => void channel.pause(),
          resume: () => void channel.resume(),
          pausesAtOnce: false,
          pendingInput: () => channel.writableLength,
          onData: (listener) => void channel.on('data', listener),
          kill: () => void channel.close(),
          exited,
        });
      };
      try {
        this.client.exec(command, { pty: { cols: size.cols, rows: size.rows, term: 'xterm-256color' } }, opened);
      } catch (err) {
        this.channels--;
        reject(new SshError(`${this.where}: cannot open a terminal: ${errorText(err)}`, 'channel'));
      }
    });
  }

  /**
   * Runs remux's own `command` on an exec channel kept open with its pipes (the runtime, a kill switch),
   * counted in `channels` unless `background` (the resident executor: losing it idle is no failure).
   */
  openStream(command: string, purpose = 'the runtime', background = false): Promise<HostStream> {
    return new Promise((resolve, reject) => {
      if (this.closeReason !== null) return reject(new SshError(this.closeReason, 'dropped'));
      const failed = (err: unknown): void => reject(new SshError(`${this.where}: cannot start ${purpose}: ${errorText(err)}`, 'channel'));
      try {
        this.client.exec(command, (err, channel) => {
          if (err) return failed(err);
          if (!background) this.channels++;
          let exit: { code: number | null; signal: string | null } | null = null;
          channel.on('exit', (code: number | null, signal?: string) => (exit = { code, signal: signal ?? null }));
          channel.on('error', () => undefined);
          const exited = new Promise<{ code: number | null; signal: string | null }>((done, lost) =>
            channel.once('close', () => {
              if (!background) this.channels--;
              if (exit === null && this.closeReason !== null) lost(new SshError(this.closeReason, 'dropped'));
              else done(exit ?? { code: null, signal: null });
            }),
          );
          resolve({
            write: (data) => void channel.write(data),
            onData: (listener) => void channel.on('data', listener),
            onStderr: (listener) => void channel.stderr.on('data', listener),
            end: () => void channel.end(),
            kill: () => void channel.close(),
            exited,
          });
        });
      } catch (err) {
        failed(err);
      }
    });
  }

  /** An SFTP session (its own channel, counted in `channels` while open): file operations, no shell (sftp.ts). */
  sftp(): Promise<SFTPWrapper> {
    return new Promise((resolve, reject) => {
      if (this.closeReason !== null) return reject(new SshError(this.closeReason, 'dropped'));
      const failed = (err: unknown): void => reject(new SshError(`${this.where}: cannot start SFTP: ${errorText(err)}`, 'channel'));
      try {
        this.client.sftp((err, sftp) => {
          if (err) return failed(err);
          this.channels++;
          sftp.once('close', () => this.channels--);
          resolve(sftp);
        });
      } catch (err) {
        failed(err);
      }
    });
  }

  /**
   * A direct-tcpip channel to address:port as seen from this host (for a jump). sshd answers only when
   * its own connect is done, which for an unreachable target is the kernel's timeout: ours is shorter.
   */
  forwardOut(address: string, port: number, timeoutMs: number): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      if (this.closeReason !== null) return reject(new SshError(this.closeReason, 'dropped'));
      let late = false;
      const timer = setTimeout(() => {
        late = true;
        reject(new SshError(`no connection from ${this.endpoint.name} within ${timeoutMs} ms (connect timeout)`, 'timeout'));
      }, timeoutMs);
      try {
        this.client.forwardOut('127.0.0.1', 0, address, port, (err, stream) => {
          clearTimeout(timer);
          if (late) stream?.destroy();
          else if (err) reject(err);
          else resolve(stream);
        });
      } catch (err) {
        clearTimeout(timer);
        reject(err);
      }
    });
  }

  /** Closes the connection (open channels fail as dropped); resolves once it is closed. */
  close(): Promise<void> {
    this.closeReason ??= `${this.where}: connection closed by remux`;
    this.client.end();
    // A peer that never answers the disconnect must not hold the caller.
    const timer = setTimeout(() => this.client.destroy(), CLOSE_MARGIN_MS);
    return this.closedPromise.finally(() => clearTimeout(timer));
  }
}

// ---- Running a command list -----------------------------------------------------------------

export interface WrapOptions {
  /** The directories programs are looked up in, `:`-separated. */
  securePath: string;
  /** `cd -- cwd` before anything runs; null stays in the login directory. */
  cwd: string | null;
  pipefail: boolean;
  /** Prefix of the wrapper's own lines on stderr (`<marker><what>`); a fresh random token per run. */
  marker: string;
  /** TERM → this long → KILL when we stop the command. */
  killGraceMs: number;
  /** Run the list inside bubblewrap as this spec says (options built on the host); null or absent: as is. */
  sandbox?: SandboxSpec | null;
  /** With a sandbox: join this long-lived one (remote-sandbox.ts holderScript) instead of starting a bwrap. */
  holder?: HolderInfo | null;
  /**
   * In a holder: the list is this one program and its arguments (no pipe, no redirection), executed
   * directly by remux-sandbox-enter, found in the secure PATH as the policy check found it, without a
   * shell inside (a shell's start-up is most of what a sandboxed command would cost).
   */
  argv?: string[] | null;
  /** The list reads the channel's stdin: the wrapper reports its process group and waits for `go` (ssh-input.ts) instead of watching stdin. */
  stdin?: boolean;
  /**
   * With a sandbox: the list, when some of its stages (0-based, across it) run outside the sandbox
   * (HostExecRequest.outside). The wrapper's shell then runs the list and enters the sandbox stage by stage.
   */
  mixed?: { list: CommandList; outside: readonly number[] } | null;
}


/** The wrapper's refusals (exit 125), and its announcement that the list starts. */
type Refusal = 'cwd' | 'pipefail' | 'no-bwrap' | 'cwd-hidden' | HolderRefusal;
/** The holder is not the one we started: it ended. */
export type HolderRefusal = 'holder-gone';
const STARTED = 'run';

/** The argv of a list that is one program with no redirection; null for anything else. */
function singleProgram(list: CommandList): string[] | null {
  const [only, ...more] = list.items;
  const stage = only?.pipeline.stages.length === 1 ? only.pipeline.stages[0] : undefined;
  return more.length === 0 && stage !== undefined && stage.redirects.length === 0 ? stage.argv : null;
}

function refusal(marker: string): (what: Refusal) => string {
  if (!/^[A-Za-z0-9_-]+:$/.test(marker)) throw new TypeError(`bad marker ${JSON.stringify(marker)}`);
  return (what) => `{ echo ${marker}${what} >&2; exit 125; }`;
}

/** The list's own lines: pipefail when asked (refused where the shell lacks it), the `run` announcement, the list. */
function listLines(body: string, o: Pick<WrapOptions, 'marker' | 'pipefail'>): { pipefail: string[]; list: string[] } {
  // `command` keeps dash, where `set -o pipefail` is an error in a special builtin, from exiting.
  const pipefail = o.pipefail ? [`command set -o pipefail 2>/dev/null || ${refusal(o.marker)('pipefail')}`] : [];
  return { pipefail, list: [`echo ${o.marker}${STARTED} >&2`, body] };
}

/** The POSIX-sh text sent over an exec channel to run `body` (see the header comment). */
export function wrapScript(body: string, o: WrapOptions): string {
  const refuse = refusal(o.marker);
  const { pipefail, list } = listLines(body, o);
  const sandbox = o.sandbox ?? null;
  const holder = sandbox === null ? null : (o.holder ?? null);
  if (sandbox !== null && o.mixed) return mixedWrapScript(o, sandbox, holder, o.mixed, refuse);
  if (sandbox !== null && holder !== null) return holderWrapScript(o, holder, refuse, pipefail, list);
  return [
    `PATH=${quoteWord(o.securePath)}; export PATH`,
    ...(sandbox === null
      ? [...(o.cwd === null ? [] : [`cd -- ${quoteWord(o.cwd)} 2>/dev/null || ${refuse('cwd')}`]), ...pipefail]
      : [
          // Only physical paths exist inside the sandbox.
          `cd -P -- ${quoteWord(o.cwd ?? '.')} 2>/dev/null || ${refuse('cwd')}`,
          'c=$PWD',
          ...bwrapPrologue(sandbox, { securePath: o.securePath, noBwrap: refuse('no-bwrap'), cwdHidden: refuse('cwd-hidden') }),
        ]),
    ...(o.stdin === true
      ? inputGate(o.marker)
      : [
          // A background list without job control gets /dev/null as stdin: the watcher reads a saved copy.
          'exec 3<&0 </dev/null',
          // `command -p`: our own tools come from the system's default PATH, whatever the secure PATH holds.
          `{ trap '' TERM; read -r _ <&3; kill -s TERM 0; command -p sleep ${o.killGraceMs / 1000}; kill -s KILL 0; } >/dev/null 2>&1 &`,
          'w=$!',
          'exec 3<&-',
        ]),
    ...(sandbox === null ? list : [runBwrap(`-- ${INNER_SHELL} -c ${quoteWord([...pipefail, ...list].join('\n'))}`)]),
    // bash reports background jobs killed by a signal on stderr: the command's streams are done here.
    's=$?; exec >/dev/null 2>&1',
    ...(o.stdin === true ? [] : ['kill -s KILL $w']),
    "trap '' TERM; kill -s TERM 0",
    'exit $s',
  ].join('\n');
}

/**
 * wrapScript with a holder: the working directory (physical) must lie in a tree the holder shows and
 * not in one it hides (as the holder resolved them when it started). The sandbox's namespaces are opened
 * as fds 4-9 from its init's /proc entry, and only then is it checked that the pid is still that init
 * and the keeper still the holder's (same start times), else 'holder-gone'. The wrapper then becomes
 * remux-sandbox-enter, run from the keeper's fd: it joins them, drops every capability, sets
 * no_new_privs and runs the list in the login shell inside, with the environment bwrap --clearenv
 * --setenv would give; its report (`<marker>enter WHAT STATUS ERRNO [INDEX]`, see
 * native/sandbox-enter.c) says what failed before the list started. It also does the watcher's work
 * (--watch on the channel's stdin, moved to fd 10): the list stays in the wrapper's process group, so
 * TERM/KILL reach it as without a sandbox. With the caller's stdin it does not watch: the list reads the
 * channel's stdin, and the second channel's watcher kills that group (ssh-input.ts). Processes that
 * leave the group (setsid) stay in the holder's PID namespace until the holder ends (HOLDER_IDLE_MS
 * unused at most, or with the connection).
 */
function holderWrapScript(o: WrapOptions, h: HolderInfo, refuse: (what: Refusal) => string, pipefail: string[], list: string[]): string {
  const argv = o.argv ?? null;
  const run = argv !== null && argv.length > 0
    ? `--started ${quoteWord(`${o.marker}${STARTED}`)} -- ${[argv[0]!, ...argv].map(quoteWord).join(' ')}`
    : `-- ${INNER_SHELL} ${INNER_SHELL} -c ${quoteWord([...pipefail, ...list].join('\n'))}`;
  return [
    `PATH=${quoteWord(o.securePath)}; export PATH`,
    `cd -P -- ${quoteWord(o.cwd ?? '.')} 2>/dev/null || ${refuse('cwd')}`,
    'c=$PWD',
    ...holderChecks(h, refuse),
    // With stdin, the helper leaves it to the list and the kill switch is another channel (ssh-input.ts).
    ...(o.stdin === true ? inputGate(o.marker) : []),
    `exec /proc/${h.keeper}/fd/${HELPER_FD}${o.stdin === true ? '' : ` --watch 10 ${o.killGraceMs}`} --report-prefix ${quoteWord(`${o.marker}enter `)} ${enterEnv(o)} --cwd "$c" ${run} 3>&2${o.stdin === true ? '' : ' 10<&0 0</dev/null'}`,
  ].join('\n');
}

/**
 * The holder's checks before entering it ($c: the physical working directory): $c visible in it, its
 * namespaces open as fds 4-9, its init and keeper the same processes (see holderWrapScript).
 */
function holderChecks(h: HolderInfo, refuse: (what: Refusal) => string): string[] {
  // case patterns: the path itself, and anything below it (quoted: literal).
  const under = (p: string): string[] => (p === '/' ? ["'/'*"] : [quoteWord(p), `${quoteWord(p)}/*`]);
  for (const n of [h.keeper, h.init]) if (!Number.isSafeInteger(n) || n <= 1) throw new TypeError(`bad holder pid ${n}`);
  for (const t of [h.keeperStart, h.initStart]) if (!/^\d+$/.test(t)) throw new TypeError(`bad holder start time ${t}`);
  const fds = ENTER_NAMESPACES.map((ns, i) => `${i + 4}</proc/${h.init}/ns/${ns}`).join(' ');
  const sameProcess = (pid: number, start: string): string[] => [`{ read -r q </proc/${pid}/stat; } 2>/dev/null || ${refuse('holder-gone')}`, `f \${q##*) }; [ "$s" = ${start} ] || ${refuse('holder-gone')}`];
  return [
    'v=0',
    `case $c in ${['/', ...h.visible.flatMap(under)].join(' | ')}) v=1 ;; esac`,
    ...(h.hidden.length === 0 ? [] : [`case $c in ${h.hidden.flatMap(under).join(' | ')}) v=0 ;; esac`]),
    `[ $v = 1 ] || ${refuse('cwd-hidden')}`,
    // `command`: a failed redirection of the special builtin exec would end the shell.
    `{ command exec ${fds}; } 2>/dev/null || ${refuse('holder-gone')}`,
    'f() { shift 19; s=$1; }',
    ...sameProcess(h.init, h.initStart),
    ...sameProcess(h.keeper, h.keeperStart),
  ];
}

/** remux-sandbox-enter's --env options: the environment bwrap --clearenv --setenv would give. */
function enterEnv(o: WrapOptions): string {
  return [`--env PATH=${quoteWord(o.securePath)}`, ...PASSED_ENV.map((name) => `\${${name}+--env "${name}=$${name}"}`)].join(' ');
}

/**
 * wrapScript for a list some of whose stages run outside the sandbox (rules with sandbox: false: ps, df
 * report on the host). The wrapper's shell runs the list as without a sandbox, in its physical working
 * directory (which the sandbox must show, as always), and each other stage enters the sandbox on its own:
 * with a holder, through remux-sandbox-enter (the holder's namespaces opened and checked as in
 * holderWrapScript), which performs the stage's redirections inside; without one, in a bwrap of its own
 * whose shell performs them (a sandbox per stage: they share no /tmp). The stages let out have no file
 * redirections (the policy check refuses them) and do not keep the namespaces' descriptors.
 */
function mixedWrapScript(o: WrapOptions, sandbox: SandboxSpec, h: HolderInfo | null, mixed: NonNullable<WrapOptions['mixed']>, refuse: (what: Refusal) => string): string {
  const closeNs = ENTER_NAMESPACES.map((_, i) => `${i + 4}<&-`).join(' ');
  const inside = (stage: Stage, text: string): string => {
    if (h === null) return runBwrap(`-- ${INNER_SHELL} -c ${quoteWord(`exec ${text}`)}`);
    const [program, ...args] = stage.argv as [string, ...string[]];
    const path = (p: string): string => (p.startsWith('/') ? quoteWord(p) : `"$c"/${quoteWord(p)}`);
    const redirects = stage.redirects.map((r) => (r.kind === 'dup' ? '--dup' : r.kind === 'read' ? `--read ${path(r.path)}` : `${r.append ? '--append' : '--write'} ${r.fd} ${path(r.path)}`));
    const report = `--report-prefix ${quoteWord('remux: the sandbox could not run a stage: ')}`;
    return [`/proc/${h.keeper}/fd/${HELPER_FD}`, report, enterEnv(o), ...redirects, '--cwd "$c" --', ...[program, program, ...args].map(quoteWord), '3>&2'].join(' ');
  };
  const body = renderCommandList(mixed.list, 'quoted', (stage, i, text) => (mixed.outside.includes(i) ? `${text} ${closeNs}` : inside(stage, text)));
  const { pipefail, list } = listLines(body, o);
  const enter = h === null ? bwrapPrologue(sandbox, { securePath: o.securePath, noBwrap: refuse('no-bwrap'), cwdHidden: refuse('cwd-hidden') }) : holderChecks(h, refuse);
  return [
    `PATH=${quoteWord(o.securePath)}; export PATH`,
    `cd -P -- ${quoteWord(o.cwd ?? '.')} 2>/dev/null || ${refuse('cwd')}`,
    'c=$PWD',
    ...enter,
    ...(o.stdin === true
      ? inputGate(o.marker)
      : [
          'exec 3<&0 </dev/null',
          `{ trap '' TERM; read -r _ <&3; kill -s TERM 0; command -p sleep ${o.killGraceMs / 1000}; kill -s KILL 0; } >/dev/null 2>&1 ${closeNs} &`,
          'w=$!',
          'exec 3<&-',
        ]),
    ...pipefail,
    ...list,
    's=$?; exec >/dev/null 2>&1',
    ...(o.stdin === true ? [] : ['kill -s KILL $w']),
    "trap '' TERM; kill -s TERM 0",
    'exit $s',
  ].join('\n');
}

export interface RunOptions {
  securePath: string;
  killGraceMs?: number;
  /** Join this long-lived sandbox (with req.sandbox) instead of starting a bwrap. */
  holder?: HolderInfo | null;
  /**
   * Runs the wrapper instead of an exec channel (ssh-executor.ts, same contract). Not for commands
   * with the caller's stdin: they keep their two channels (ssh-input.ts).
   */
  exec?: ResidentExec | null;
}

/** A resident executor's way to run the wrapper script (built when asked for), or (where it can) what the wrapper would run, without it. */
export type ResidentExec = (command: () => string, opts: ExecOptions, how: ResidentRun | null) => Promise<ExecExit>;

/** What a resident executor may run without the wrapper's shell; null: the wrapper, in the login shell. */
export type ResidentRun = { program: DirectProgram } | { enter: DirectEnter };

/**
 * A list for a long-lived sandbox, with what holderWrapScript would check and hand remux-sandbox-enter:
 * the executor does both itself (ssh-executor.ts enter) and runs the helper directly.
 */
export interface DirectEnter {
  holder: HolderInfo;
  cwd: string | null;
  securePath: string;
  marker: string;
  killGraceMs: number;
  /** The one program the helper executes, or null: `script` runs in the login shell inside. */
  argv: string[] | null;
  /** The list for the login shell inside (empty with `argv`). */
  script: string;
  namespaces: readonly string[];
  passedEnv: readonly string[];
  helperFd: number;
}

/** How a resident executor may run this command without the wrapper's shell, or null. */
function residentRun(body: string, req: HostExecRequest, o: WrapOptions): ResidentRun | null {
  // A list with stages outside its sandbox: the wrapper's shell runs it (mixedWrapScript).
  if (o.stdin === true || o.mixed) return null;
  const argv = o.argv ?? null;
  if (req.sandbox === null) return argv !== null && argv.length > 0 ? { program: { argv, cwd: o.cwd, securePath: o.securePath, marker: o.marker, killGraceMs: o.killGraceMs } } : null;
  if (!o.holder) return null;
  const program = argv !== null && argv.length > 0 ? argv : null;
  const lines = (): string => {
    const { pipefail, list } = listLines(body, o);
    return [...pipefail, ...list].join('\n');
  };
  return {
    enter: {
      holder: o.holder,
      cwd: o.cwd,
      securePath: o.securePath,
      marker: o.marker,
      killGraceMs: o.killGraceMs,
      argv: program,
      script: program === null ? lines() : '',
      namespaces: ENTER_NAMESPACES,
      passedEnv: PASSED_ENV,
      helperFd: HELPER_FD,
    },
  };
}

/** A list that is one unsandboxed program without stdin, with what the wrapper around it would use. */
export interface DirectProgram {
  argv: string[];
  cwd: string | null;
  securePath: string;
  /** The wrapper's marker: the program's start and a refused working directory are said with it. */
  marker: string;
  killGraceMs: number;
}

/** runCommand's result, and whether it was refused because the holder ended or no longer fits (nothing ran: start a new one and retry). */
export interface RunOutcome {
  result: ExecResult;
  holderRefusal: HolderRefusal | null;
}

type StopReason = 'timeout' | 'abort' | 'truncated';

/**
 * Runs a parsed command list on the connection's host with the local executor's contract: output cap
 * and redaction through OutputGate, 124 on timeout, 130 on abort, 125 when the working directory is
 * unusable or not visible in the sandbox. Rejects with an SshError when the connection fails.
 */
export async function runCommand(conn: SshConnection, req: HostExecRequest, opts: RunOptions): Promise<ExecResult> {
  return (await runCommandOutcome(conn, req, opts)).result;
}

export async function runCommandOutcome(conn: SshConnection, req: HostExecRequest, opts: RunOptions): Promise<RunOutcome> {
  const started = performance.now();
  if (req.signal?.aborted) return { result: { ...notRun(null, null, started), exitCode: 130, aborted: true }, holderRefusal: null };
  const killGraceMs = opts.killGraceMs ?? SSH_DEFAULTS.killGraceMs;
  const marker = `remux-${randomBytes(8).toString('hex')}:`;
  const stdin = req.stdin ?? null;
  const mixed = req.sandbox !== null && (req.outside?.length ?? 0) > 0 ? { list: req.list, outside: req.outside ?? [] } : null;
  const wrap: WrapOptions = { securePath: opts.securePath, cwd: req.cwd, pipefail: req.pipefail, marker, killGraceMs, sandbox: req.sandbox, holder: opts.holder ?? null, argv: mixed ? null : singleProgram(req.list), stdin: stdin !== null, mixed };
  const body = renderCommandList(req.list);
  // Built only when it runs: a resident executor mostly runs what it would run without it.
  const script = (): string => wrapScript(body, wrap);
  // With stdin, the kill switch is a second channel (ssh-input.ts), opened alongside the command's.
  const input = stdin === null ? null : new GuardedInput(stdin, killGraceMs);

  const stopper = new AbortController();
  const state: { stopped: StopReason | null } = { stopped: null };
  const stop = (why: StopReason): void => {
    if (state.stopped !== null) return;
    state.stopped = why;
    input?.stop();
    stopper.abort();
  };
  const gate = new OutputGate(req.output, { stdout: req.onStdout, stderr: req.onStderr }, () => stop('truncated'));
  const stdout = gate.source('stdout');
  const stderr = new PrologueSniffer(marker, gate.source('stderr'), { holdEarly: req.sandbox !== null, ...(input ? { onGroup: (id: string) => input.group(id), onStart: () => input.listStarted() } : {}) });
  const onAbort = (): void => stop('abort');
  req.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = req.timeoutMs === null ? null : setTimeout(() => stop('timeout'), req.timeoutMs);
  let exit: ExecExit;
  try {
    // The caller's stdin (two channels, ssh-input.ts) stays on channels; so do terminals (openTerminal).
    const viaChannel = opts.exec == null || input !== null;
    const options: ExecOptions = {
      onStdout: (chunk) => stdout.write(chunk),
      onStderr: (chunk) => stderr.write(chunk),
      stop: stopper.signal,
      stopGraceMs: killGraceMs + CLOSE_MARGIN_MS,
      ...(req.flow ? { flow: req.flow } : {}),
      ...(input ? { takeStdin: (channel: ClientChannel) => input.attach(channel) } : {}),
    };
    const running = viaChannel ? conn.exec(script(), options) : opts.exec!(script, options, residentRun(body, req, wrap));
    // Asked for after the command's channel: with one session left, the command gets it and waits at its gate.
    input?.openWatcher(conn);
    exit = await running;
  } finally {
    if (timer) clearTimeout(timer);
    req.signal?.removeEventListener('abort', onAbort);
    input?.finish();
  }
  // Its channel is a slot of the connection's too: free only once it is gone.
  await input?.settled();
  stdout.end();
  stderr.end();

  const { stopped } = state;
  if (input?.failure != null && !input.wentAhead && stopped === null && stderr.refusal === null) {
    // The wrapper ended at its gate: nothing ran, and nothing was read from stdin.
    throw new SshError(input.failure, 'channel');
  }
  const report = stderr.refusal?.startsWith(ENTER_REPORT) && !stderr.started ? parseEnterReport(stderr.refusal.slice(ENTER_REPORT.length)) : null;
  if (report !== null) {
    // remux-sandbox-enter could not put the list in the holder. A holder that is gone (its namespaces
    // cannot be joined, or its PID namespace lost its init: no fork there): a new one, once.
    const failure = enterFailure(report, conn, req);
    return { result: notRun(failure.kind, failure.message, started), holderRefusal: sandboxGone(report) ? 'holder-gone' : null };
  }
  const refused = stderr.refusal !== null && exit.code === 125 ? refusalResult(stderr.refusal, conn, req, opts.securePath) : null;
  if (refused !== null) {
    const holderRefusal = stderr.refusal === 'holder-gone' ? stderr.refusal : null;
    return { result: notRun(refused.kind, refused.message, started), holderRefusal };
  }
  if (req.sandbox !== null && !stderr.started && stopped === null) {
    // bwrap failed and said why: nothing ran, and nothing runs without it.
    const why = stderr.earlyText().split('\n').find((l) => l.trim() !== '')?.trim() ?? `exit status ${exit.code ?? exit.signal}`;
    return { result: notRun('sandbox_unavailable', `bwrap could not start the sandbox on ${conn.endpoint.name} (${why}); the command was not run`, started), holderRefusal: null };
  }
  const status = exit.code ?? (exit.signal ? 128 + (constants.signals[exit.signal] ?? 0) : 255);
  const result: ExecResult = {
    exitCode: stopped === 'timeout' ? 124 : stopped === 'abort' ? 130 : status,
    signal: exit.signal,
    timedOut: stopped === 'timeout',
    aborted: stopped === 'abort',
    truncated: gate.truncated,
    bytesOut: gate.bytesOut,
    bytesErr: gate.bytesErr,
    durationMs: performance.now() - started,
    error: null,
    errorKind: null,
  };
  return { result, holderRefusal: null };
}

/** What the wrapper's refusal line means, in words that say what to do. */
function refusalResult(what: string, conn: SshConnection, req: HostExecRequest, securePath: string): { kind: ExecErrorKind; message: string } | null {
  const host = conn.endpoint.name;
  switch (what as Refusal) {
    case 'cwd':
      return { kind: 'cwd', message: `cannot use working directory ${req.cwd} on ${host}` };
    case 'pipefail':
      return { kind: 'invalid', message: `pipefail was asked for, but the login shell of ${conn.endpoint.user}@${host} does not support it` };
    case 'no-bwrap':
      return { kind: 'sandbox_unavailable', message: `${host} cannot sandbox the command: no bwrap in PATH ${securePath}; the command was not run` };
    case 'cwd-hidden': {
      const paths = [...new Set([...(req.sandbox?.read ?? []), ...(req.sandbox?.write ?? [])])].join(', ') || 'it names none';
      const policy = req.policy === undefined ? '' : ` of policy ${req.policy}`;
      return { kind: 'sandbox', message: `working directory ${req.cwd} is not visible in the sandbox${policy} on ${host}; give --cwd inside the policy's paths (${paths})` };
    }
    case 'holder-gone':
      return { kind: 'sandbox_unavailable', message: `the long-lived sandbox on ${host} has ended; the command was not run` };
    default:
      return null;
  }
}

/** The prefix of remux-sandbox-enter's report after the marker (holderWrapScript). */
const ENTER_REPORT = 'enter ';

/** remux-sandbox-enter's report, in words that say what to do. */
function enterFailure(r: EnterReport, conn: SshConnection, req: HostExecRequest): { kind: ExecErrorKind; message: string } {
  const host = conn.endpoint.name;
  switch (r.what) {
    case 'join':
      return { kind: 'sandbox_unavailable', message: `cannot join the long-lived sandbox's ${r.namespace} namespace on ${host} (${r.err}); the command was not run` };
    case 'cwd':
      return { kind: 'cwd', message: `cannot use working directory ${req.cwd ?? '(login directory)'} inside the sandbox on ${host}: ${r.err}` };
    case 'exec':
      return { kind: r.err === 'ENOENT' ? 'not_found' : 'spawn', message: `the login shell of ${conn.endpoint.user}@${host} cannot run inside the sandbox (${r.err}): the policy's paths must include it` };
    default:
      return { kind: 'sandbox_unavailable', message: `the sandbox on ${host} could not start the command (${r.what}: ${r.err}); the command was not run` };
  }
}

function notRun(kind: ExecErrorKind | null, error: string | null, started: number): ExecResult {
  return {
    exitCode: 125,
    signal: null,
    timedOut: false,
    aborted: false,
    truncated: false,
    bytesOut: 0,
    bytesErr: 0,
    durationMs: performance.now() - started,
    error,
    errorKind: kind,
  };
}

/** Bytes of stderr kept before the list starts: bwrap's complaints are a line or two. */
const EARLY_MAX = 4096;

/**
 * Stderr up to the wrapper's `<marker>run` line is the wrapper's own: a refusal line (`<marker><what>`)
 * is taken out; anything else is the login shell's or bwrap's. Unsandboxed, that passes through as it
 * comes. Sandboxed, it is held (up to EARLY_MAX) until the list starts, and if it never does, it is why
 * bwrap failed. After the `run` line everything passes through.
 */
class PrologueSniffer implements OutputSource {
  refusal: string | null = null;
  /** The `run` line came: the list (inside the sandbox, when there is one) started. */
  started = false;
  private readonly marker: Buffer;
  private held: Buffer = Buffer.alloc(0);
  private early: Buffer[] = [];
  private earlyBytes = 0;

  constructor(
    marker: string,
    private readonly sink: OutputSource,
    private readonly opts: { holdEarly: boolean; onGroup?: (id: string) => void; onStart?: () => void },
  ) {
    this.marker = Buffer.from(marker);
  }

  write(chunk: Buffer): void {
    if (this.started) return this.sink.write(chunk);
    this.held = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk]);
    for (let nl = this.held.indexOf(0x0a); nl >= 0 && !this.started; nl = this.held.indexOf(0x0a)) {
      const line = this.held.subarray(0, nl + 1);
      this.held = this.held.subarray(nl + 1);
      const ours = line.subarray(0, this.marker.length).equals(this.marker);
      const what = ours ? line.subarray(this.marker.length, -1).toString() : null;
      if (what === null) this.other(line);
      else if (what === STARTED) this.start();
      else if (what.startsWith(GROUP_REPORT) && this.opts.onGroup) this.opts.onGroup(what.slice(GROUP_REPORT.length));
      else this.refusal ??= what;
    }
    if (this.started && this.held.length > 0) this.sink.write(this.held);
    else if (this.held.length > EARLY_MAX) this.other(this.held);
    else return;
    this.held = Buffer.alloc(0);
  }

  end(): void {
    if (!this.started && this.held.length > 0) this.other(this.held);
    this.held = Buffer.alloc(0);
    this.sink.end();
  }

  /** What was said before the list started (sandboxed runs: bwrap's words). */
  earlyText(): string {
    return Buffer.concat(this.early).toString();
  }

  private other(bytes: Buffer): void {
    if (!this.opts.holdEarly) return this.sink.write(bytes);
    const room = EARLY_MAX - this.earlyBytes;
    if (room <= 0) return;
    const kept = bytes.subarray(0, room);
    this.early.push(kept);
    this.earlyBytes += kept.length;
  }

  private start(): void {
    this.started = true;
    this.opts.onStart?.();
    for (const bytes of this.early) this.sink.write(bytes);
    this.early = [];
  }
}

// ---- Scripts of our own ----------------------------------------------------------------------

export interface CaptureOptions {
  securePath: string;
  timeoutMs: number;
  /** More stdout than this is an error. */
  maxBytes: number;
}

/** Runs a script of ours (inside the wrapper, so a timeout kills it) and returns its stdout. */
export async function captureScript(conn: SshConnection, body: string, opts: CaptureOptions): Promise<Buffer> {
  const marker = `remux-${randomBytes(8).toString('hex')}:`;
  const script = wrapScript(body, { securePath: opts.securePath, cwd: null, pipefail: false, marker, killGraceMs: SSH_DEFAULTS.killGraceMs });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stderr = new PrologueSniffer(marker, { write: (chunk) => err.push(chunk), end: () => {} }, { holdEarly: false });
  let size = 0;
  let problem: string | null = null;
  const stopper = new AbortController();
  const fail = (why: string): void => {
    problem ??= why;
    stopper.abort();
  };
  const timer = setTimeout(() => fail(`no answer within ${opts.timeoutMs} ms`), opts.timeoutMs);
  let exit: ExecExit;
  try {
    exit = await conn.exec(script, {
      onStdout: (chunk) => {
        size += chunk.length;
        if (size > opts.maxBytes) fail(`more than ${opts.maxBytes} bytes of output`);
        else out.push(chunk);
      },
      onStderr: (chunk) => stderr.write(chunk),
      stop: stopper.signal,
    });
  } finally {
    clearTimeout(timer);
  }
  stderr.end();
  if (problem === null && exit.code !== 0) {
    const detail = Buffer.concat(err).toString().trim().slice(0, 200);
    problem = `exit status ${exit.code ?? exit.signal}${detail ? `: ${detail}` : ''}`;
  }
  if (problem !== null) throw new Error(`${conn.where}: script failed: ${problem}`);
  return Buffer.concat(out);
}

// ---- Helpers ---------------------------------------------------------------------------------

function describe(endpoint: SshEndpoint, via: SshConnection | undefined): string {
  const host = endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address;
  return `${endpoint.name} (${host}:${endpoint.port}${via ? ` via ${via.endpoint.name}` : ''})`;
}

async function readKnownHosts(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    // A missing file knows no host: every key is unknown (refused unless acceptNew).
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw new SshError(`cannot read known hosts file ${file}: ${errorText(err)}`, 'config');
  }
}

/** Key types known_hosts holds for the host first, so a host known by its RSA key is not refused for offering ed25519. */
function hostKeyPreference(knownHosts: string, address: string, port: number): string[] | null {
  const entries = [...findHostEntries(knownHosts, address, port), ...(port === 22 ? [] : findHostEntries(knownHosts, address, 22))];
  const known = new Set(entries.filter((e) => e.marker === 'none').map((e) => e.keyType));
  if (known.size === 0) return null;
  const isKnown = (alg: string): boolean => known.has(alg.startsWith('rsa-sha2-') ? 'ssh-rsa' : alg);
  return [...HOST_KEY_ALGORITHMS.filter(isKnown), ...HOST_KEY_ALGORITHMS.filter((alg) => !isKnown(alg))];
}

interface Credentials {
  methods: AnyAuthMethod[];
  /** What was tried, for the authentication failure message. */
  tried: string[];
}

async function credentials(endpoint: SshEndpoint, env: NodeJS.ProcessEnv, where: string): Promise<Credentials> {
  const username = endpoint.user;
  const auth = endpoint.auth;
  switch (auth.method) {
    case 'identity': {
      const key = await loadKey(auth.file);
      if ('problem' in key) throw new SshError(`${where}: ${key.problem}`, 'config');
      return { methods: [{ type: 'publickey', username, key: key.key }], tried: [`key ${auth.file}`] };
    }
    case 'agent': {
      const agent = env.SSH_AUTH_SOCK;
      if (!agent) throw new SshError(`${where}: agent authentication is configured, but SSH_AUTH_SOCK is not set`, 'config');
      return { methods: [{ type: 'agent', username, agent }], tried: [`ssh-agent (${agent})`] };
    }
    case 'password': {
      const password = env[auth.env];
      if (password === undefined) throw new SshError(`${where}: the password comes from $${auth.env}, which is not set`, 'config');
      return { methods: [{ type: 'password', username, password }], tried: [`password from $${auth.env}`] };
    }
    case 'default': {
      // Like ssh without configuration: the agent, then the usual key files.
      const creds: Credentials = { methods: [], tried: [] };
      const skipped: string[] = [];
      if (env.SSH_AUTH_SOCK) {
        creds.methods.push({ type: 'agent', username, agent: env.SSH_AUTH_SOCK });
        creds.tried.push('ssh-agent');
      }
      for (const name of DEFAULT_KEYS) {
        const file = join(env.HOME || homedir(), '.ssh', name);
        const key = await loadKey(file);
        if ('key' in key) {
          creds.methods.push({ type: 'publickey', username, key: key.key });
          creds.tried.push(`key ${file}`);
        } else if (!key.missing) {
          skipped.push(key.problem);
        }
      }
      if (creds.methods.length === 0) {
        const why = skipped.length > 0 ? `; ${skipped.join('; ')}` : '';
        // No "credentials: X" in the text: the audit trail's redaction would take X for a secret's value.
        throw new SshError(
          `${where}: no credentials (SSH_AUTH_SOCK is not set and ~/.ssh has no usable ${DEFAULT_KEYS.join(', ')}${why}): give the host an identity file (identity: FILE in hosts.yaml) or load a key into ssh-agent`,
          'config',
        );
      }
      return creds;
    }
  }
}

type LoadedKey = { key: ParsedKey } | { problem: string; missing: boolean };

/** The last parse of each identity file: a fan-out reads the same key for every host, parsing it is the costly part. */
const parsedKeys = new Map<string, { data: Buffer; loaded: LoadedKey }>();

async function loadKey(file: string): Promise<LoadedKey> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      return { problem: `identity file ${file} does not exist: make the key there (ssh-keygen -t ed25519 -f ${quoteWord(file)}, its .pub in the host's authorized_keys) or change the host's identity in hosts.yaml`, missing: true };
    }
    return { problem: `cannot read identity file ${file}: ${code ?? errorText(err)}`, missing: false };
  }
  const last = parsedKeys.get(file);
  if (last?.data.equals(data)) return last.loaded;
  const loaded = parseIdentity(file, data);
  parsedKeys.set(file, { data, loaded });
  return loaded;
}

function parseIdentity(file: string, data: Buffer): LoadedKey {
  const parsed = ssh2.utils.parseKey(data);
  if (parsed instanceof Error) {
    // remux runs unattended and never prompts: an encrypted key must come through the agent.
    if (/passphrase/i.test(parsed.message)) {
      return { problem: `identity file ${file} is protected by a passphrase, which remux cannot ask for: add it to ssh-agent (ssh-add ${file}) and use agent authentication`, missing: false };
    }
    return { problem: `identity file ${file} is not a usable private key: ${parsed.message}`, missing: false };
  }
  const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
  if (!key.isPrivateKey()) return { problem: `identity file ${file} holds a public key, not a private one`, missing: false };
  return { key };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
