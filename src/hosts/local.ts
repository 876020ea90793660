// The local host: commands run on this machine with no SSH and no shell, through exec/local.ts.
import { createRequire } from 'node:module';
import type * as NodePty from 'node-pty';
import { homedir, userInfo } from 'node:os';
import { runLocal } from '../exec/local.js';
import fs from 'node:fs';
import { bwrapAvailable, sandboxLayout, visibleInside } from '../exec/sandbox.js';
import type { ExecResult } from '../exec/types.js';
import { createLocalResolver } from '../policy/resolve.js';
import { localFiles } from './local-files.js';
import { TransportError, type Host, type HostExecRequest, type HostTerminal, type TerminalSize } from './types.js';

/** SIGTERM to a terminal's process group, then SIGKILL after this long. */
const TERMINAL_KILL_GRACE_MS = 2000;

export const LOCAL_HOST_NAMES = ['localhost', 'local'] as const;

export function isLocalHostName(name: string): boolean {
  return (LOCAL_HOST_NAMES as readonly string[]).includes(name);
}

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

export function createLocalHost(name: string, securePath: string): Host {
  const resolver = createLocalResolver({ securePath });
  const env = commandEnv(securePath);
  const unsandboxedEnv = commandEnv(securePath, process.env, [...PASSED_ENV, ...UNSANDBOXED_ENV]);
  return {
    name,
    resolver,
    defaultCwd: (callerCwd, sandbox) => {
      const cwd = callerCwd ?? process.cwd();
      if (sandbox === null) return cwd;
      try {
        return visibleInside(sandboxLayout(sandbox), fs.realpathSync(cwd)) ? cwd : '/';
      } catch {
        return cwd; // unusable: the run says why
      }
    },
    execute(req: HostExecRequest): Promise<ExecResult> {
      return runLocal({ ...req, env: req.sandbox ? env : unsandboxedEnv });
    },
    async openTerminal(argv, size) {
      const [program, ...args] = argv;
      const file = program === undefined ? null : resolver.which(program);
      if (file === null) throw new TransportError(`${name}: ${program ?? '(nothing)'} is not in the secure PATH ${securePath}`);
      return localTerminal(file, args, size, unsandboxedEnv);
    },
    files: localFiles(resolver),
    sandboxSupport() {
      const bwrap = bwrapAvailable();
      const detail = bwrap.ok ? `bubblewrap ${bwrap.version ?? '(unknown version)'}` : (bwrap.reason ?? 'bubblewrap is not usable');
      return Promise.resolve({ available: bwrap.ok, detail, ...(bwrap.warning ? { warning: bwrap.warning } : {}), staticFallback: false });
    },
  };
}

/**
 * What node-pty holds for the pty and has not written yet: its write queue (internal: node-pty keeps no
 * count of it). A node-pty that moves it fails test/gateway/terminal.test.ts rather than lifting the limit unseen.
 */
function queuedInput(pty: NodePty.IPty): number {
  const queue = (pty as unknown as { _writeStream?: { _writeQueue?: Array<{ buffer: Buffer; offset: number }> } })._writeStream?._writeQueue;
  return queue?.reduce((bytes, task) => bytes + task.buffer.length - task.offset, 0) ?? 0;
}

/** node-pty starts the program as the leader of a new session, so its pid names the whole process group. */
function localTerminal(file: string, args: string[], size: TerminalSize, env: Record<string, string>): HostTerminal {
  // Loaded on first use, by require: the CLI's bundle keeps the native addon outside (scripts/bundle.mjs).
  const { spawn } = createRequire(import.meta.url)('node-pty') as typeof NodePty;
  const pty = spawn(file, args, { name: 'xterm-256color', cols: size.cols, rows: size.rows, cwd: '/', env: { ...env, TERM: 'xterm-256color' }, encoding: null });
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
    write: (data) => pty.write(typeof data === 'string' ? Buffer.from(data) : data),
    resize: (cols, rows) => {
      if (!gone) pty.resize(cols, rows);
    },
    pause: () => pty.pause(),
    resume: () => pty.resume(),
    pausesAtOnce: true,
    pendingInput: () => queuedInput(pty),
    onData: (listener) => pty.onData((chunk) => listener(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)),
    kill: () => {
      signalGroup('SIGTERM');
      // A leader that ignored TERM goes after the grace (once it is gone, its group id may be reused).
      setTimeout(() => {
        if (!gone) signalGroup('SIGKILL');
      }, TERMINAL_KILL_GRACE_MS).unref();
    },
    exited,
  };
}
