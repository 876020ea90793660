// The local host: commands run on this machine with no SSH and no shell, through exec/local.ts.
import { createRequire } from 'node:module';
import type * as NodePty from 'node-pty';
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { agentsDir } from '../agents/store.js';
import { approvalsDbFile, approvalsKeyFile, auditDbFile, codeCacheDir, configFile, expandHome, hostsFile, policiesFile, principalsFile, recordingsDir, remuxHome, socketFile, tlsDir } from '../config/paths.js';
import { runLocal } from '../exec/local.js';
import { runningDaemon } from '../config/daemon-record.js';
import fs from 'node:fs';
import { bwrapAvailable, showsPath } from '../exec/sandbox.js';
import type { ExecResult } from '../exec/types.js';
import { createLocalResolver } from '../policy/resolve.js';
import { localFiles } from './local-files.js';
import { TransportError, type Host, type HostExecRequest, type HostTerminal, type TerminalSize } from './types.js';

/** SIGTERM to a terminal's process group, then SIGKILL after this long. */
const TERMINAL_KILL_GRACE_MS = 2000;

export { LOCAL_HOST_NAMES, isLocalHostName } from './selectors.js';

/** Variables passed through from the caller; everything else (tokens, keys, agent sockets) stays out. */
export const PASSED_ENV = ['HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TERM'];

/**
 * Passed to what runs outside a sandbox too: which tmux server is the caller's. remux's own tmux
 * commands and attaches must reach the server the caller's `tmux ls` lists (on SSH hosts they get the
 * login environment); without it, sessions were made on another server. A sandbox never gets it.
 */
const UNSANDBOXED_ENV = ['TMUX_TMPDIR'];

export function commandEnv(securePath: string, from: NodeJS.ProcessEnv = process.env, names: readonly string[] = PASSED_ENV): Record<string, string> {
  const env: Record<string, string> = { PATH: securePath };
  for (const name of names) {
    const value = from[name];
    if (value !== undefined) env[name] = value;
  }
  env.HOME ??= homedir();
  env.USER ??= userInfo().username;
  return env;
}

/**
 * What remux keeps for itself on this machine, out of every command's and file action's reach whatever a
 * policy grants (one showing $HOME shows them otherwise): approvals.key signs approval links, a principal
 * able to write policies.yaml or principals.yaml would grant itself anything, the stores and recordings
 * hold everyone's actions and sessions, agents/ their hook tokens, the CLI's code caches run as the next
 * remux (launch.cts: V8 trusts them); through the daemon's socket or tmux's
 * (a tmux client has the server run anything) a command would act outside its sandbox. `configuredSocket`:
 * config.yaml's daemon.socket, which may lie outside $REMUX_HOME.
 */
export function ownPaths(env: NodeJS.ProcessEnv = process.env, configuredSocket?: string): string[] {
  const store = (file: string): string[] => [file, ...SQLITE_SIDECARS.map((suffix) => file + suffix)];
  const tmux = join(env.TMUX_TMPDIR || '/tmp', `tmux-${process.getuid?.() ?? userInfo().uid}`);
  const daemon = runningDaemon(env);
  const paths = new Set([
    configFile(env),
    join(remuxHome(env), 'policies.yaml'),
    policiesFile(env),
    principalsFile(env),
    hostsFile(env),
    approvalsKeyFile(env),
    ...store(auditDbFile(env)),
    ...store(approvalsDbFile(env)),
    tlsDir(env),
    recordingsDir(env),
    agentsDir(env),
    join(remuxHome(env), 'run'),
    codeCacheDir(env),
    socketFile(env),
    // config.yaml's, where the daemon listens when the environment names none.
    ...(configuredSocket ? [resolve(expandHome(configuredSocket))] : []),
    // Where this home's daemon serves, as its record says: one started with --socket, or on a socket
    // config.yaml named before it changed (the daemon itself included: its record names its own).
    ...(daemon ? [daemon.socket] : []),
    tmux,
  ]);
  // What lies in a directory already listed goes with it (a sandbox cannot mount inside an emptied one).
  return [...paths].filter((p) => ![...paths].some((dir) => p.startsWith(`${dir}/`)));
}

/** Files SQLite keeps beside a store while it is open, removed when it closes. */
const SQLITE_SIDECARS = ['-wal', '-shm', '-journal'];

/** `configuredSocket`: config.yaml's daemon.socket (its socket is remux's own wherever it lies). */
export function createLocalHost(name: string, securePath: string, configuredSocket: string | undefined): Host {
  const own = ownPaths(process.env, configuredSocket);
  const resolver = createLocalResolver({ securePath, own });
  // A sandbox starting as a sidecar goes would fail to mount over it (or create it): its store is hidden.
  const hidden = own.filter((p) => !SQLITE_SIDECARS.some((suffix) => p.endsWith(suffix)));
  const env = commandEnv(securePath);
  const unsandboxedEnv = commandEnv(securePath, process.env, [...PASSED_ENV, ...UNSANDBOXED_ENV]);
  return {
    name,
    resolver,
    defaultCwd: (callerCwd, sandbox) => {
      const cwd = callerCwd ?? process.cwd();
      if (sandbox === null) return cwd;
      try {
        return showsPath(sandbox, fs.realpathSync.native(cwd)) ? cwd : '/';
      } catch {
        return cwd; // unusable: the run says why
      }
    },
    execute(req: HostExecRequest): Promise<ExecResult> {
      return runLocal({ ...req, env: req.sandbox ? env : unsandboxedEnv });
    },
    // Its stages are forked and set up while the begin goes to disk, and execute once it is there.
    startsOnceDurable: true,
    async openTerminal(argv, size) {
      const [program, ...args] = argv;
      const file = program === undefined ? null : resolver.which(program);
      if (file === null) throw new TransportError(`${name}: ${program ?? '(nothing)'} is not in the secure PATH ${securePath}`);
      return localTerminal(file, args, size, unsandboxedEnv);
    },
    files: localFiles(resolver),
    ownPaths: hidden,
    sandboxSupport() {
      const bwrap = bwrapAvailable();
      const detail = bwrap.ok ? `bubblewrap ${bwrap.version ?? '(unknown version)'}` : (bwrap.reason ?? 'bubblewrap is not usable');
      return Promise.resolve({ available: bwrap.ok, detail, ...(bwrap.warning ? { warning: bwrap.warning } : {}), staticFallback: false });
    },
  };
}

/**
 * How long input waits before it is tried again on a full pty (a program that reads nothing, tmux slower
 * than a paste): from the first wait, doubled on each wait in a row, to the last (a pty that takes a
 * little at a time gets it as soon as it can; one that takes nothing costs a wakeup every 16 ms).
 */
const PTY_FULL_RETRY_MS = { first: 1, last: 16 } as const;

/** node-pty's UnixTerminal beyond its typings: the pty's descriptor and the stream that reads it (which closes it). */
interface UnixPty extends NodePty.IPty {
  readonly fd: number;
  readonly _socket: { readonly destroyed: boolean };
}

/**
 * Input for a local pty, written here rather than by node-pty: node-pty 1.1 retries a full pty with
 * setImmediate (a paste into a pane that reads nothing spun a core for as long as it waited) and goes on
 * writing after it closed the descriptor (EBADF in the daemon's log, or a write into whatever file took
 * the number next). Here a full pty is tried again every PTY_FULL_RETRY_MS; nothing is written once
 * node-pty's reader is destroyed (the descriptor is closed with it), after a write failed (the program
 * hung up), or after close().
 */
function ptyInput(pty: NodePty.IPty): { write(data: Buffer): void; pending(): number; close(): void } {
  const unix = pty as UnixPty;
  // A node-pty that moved these fails test/gateway/sessions-api.test.ts here, not with writes to a wrong descriptor.
  if (typeof unix.fd !== 'number' || typeof unix._socket?.destroyed !== 'boolean') {
    pty.kill('SIGKILL');
    throw new Error('node-pty no longer offers its pty descriptor (fd, _socket): remux cannot write to it safely');
  }
  const queue: Buffer[] = [];
  let pending = 0;
  let retry: NodeJS.Timeout | null = null;
  let wait: number = PTY_FULL_RETRY_MS.first;
  let closed = false;
  const close = (): void => {
    closed = true;
    queue.length = 0;
    pending = 0;
    if (retry) clearTimeout(retry);
    retry = null;
  };
  const flush = (): void => {
    retry = null;
    while (queue.length > 0) {
      if (unix._socket.destroyed) return close();
      const head = queue[0]!;
      let written: number;
      try {
        // The descriptor is non-blocking (node-pty sets it so): a full pty throws EAGAIN, never waits.
        written = fs.writeSync(unix.fd, head);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          retry = setTimeout(flush, wait);
          wait = Math.min(2 * wait, PTY_FULL_RETRY_MS.last);
        } else close(); // EIO: the program is gone, and its input with it
        return;
      }
      wait = PTY_FULL_RETRY_MS.first;
      pending -= written;
      if (written === head.length) queue.shift();
      else queue[0] = head.subarray(written);
    }
  };
  return {
    write(data) {
      if (closed || data.length === 0) return;
      queue.push(data);
      pending += data.length;
      if (queue.length === 1) flush();
    },
    pending: () => pending,
    close,
  };
}

/** node-pty starts the program as the leader of a new session, so its pid names the whole process group. */
function localTerminal(file: string, args: string[], size: TerminalSize, env: Record<string, string>): HostTerminal {
  // Loaded on first use, by require: the CLI's bundle keeps the native addon outside (scripts/bundle.mjs).
  const { spawn } = createRequire(import.meta.url)('node-pty') as typeof NodePty;
  const pty = spawn(file, args, { name: 'xterm-256color', cols: size.cols, rows: size.rows, cwd: '/', env: { ...env, TERM: 'xterm-256color' }, encoding: null });
  const input = ptyInput(pty);
  let gone = false;
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    pty.onExit(({ exitCode, signal }) => {
      gone = true;
      resolve({ code: signal ? null : exitCode, signal: signal ? String(signal) : null });
    }),
  );
  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-pty.pid, signal);
    } catch {
      // The group is already gone.
    }
  };
  return {
    write: (data) => input.write(typeof data === 'string' ? Buffer.from(data) : data),
    resize: (cols, rows) => {
      if (!gone) pty.resize(cols, rows);
    },
    pause: () => pty.pause(),
    resume: () => pty.resume(),
    pausesAtOnce: true,
    pendingInput: () => input.pending(),
    onData: (listener) => pty.onData((chunk) => listener(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)),
    kill: () => {
      // Input still waiting, or arriving now, goes nowhere: the program is being ended.
      input.close();
      signalGroup('SIGTERM');
      // A leader that ignored TERM goes after the grace (once it is gone, its group id may be reused).
      setTimeout(() => {
        if (!gone) signalGroup('SIGKILL');
      }, TERMINAL_KILL_GRACE_MS).unref();
    },
    exited,
  };
}
