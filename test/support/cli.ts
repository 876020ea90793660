// Runs the real CLI as a user would, with its own REMUX_HOME: `remux` (the native launcher, bin/remux,
// which forwards client commands to a running daemon and runs the Node CLI for the rest), or with
// `via: 'node'` the Node CLI itself (bin/remux.js), which forwards on its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const REMUX_BIN = join(REPO_ROOT, 'bin', 'remux');
export const REMUX_NODE_BIN = join(REPO_ROOT, 'bin', 'remux.js');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  input?: string;
  cwd?: string;
  timeoutMs?: number;
  via?: 'launcher' | 'node';
}

/** A fresh REMUX_HOME (and audit store inside it); remove() deletes it. */
export function tempHome(): { home: string; env: Record<string, string>; remove(): void } {
  const home = mkdtempSync(join(tmpdir(), 'remux-home-'));
  return {
    home,
    env: { REMUX_HOME: home },
    // Retried: a process of the test still ending may write a last file (its code cache) meanwhile.
    remove: () => rmSync(home, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 }),
  };
}

export function spawnRemux(args: string[], opts: RunOptions = {}): ChildProcess {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Tests control every remux variable; none leaks in from the developer's shell.
  for (const name of Object.keys(env)) if (name.startsWith('REMUX_') || name.startsWith('RPIPE_')) delete env[name];
  for (const [name, value] of Object.entries(opts.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  const argv = opts.via === 'node' ? [process.execPath, REMUX_NODE_BIN, ...args] : [REMUX_BIN, ...args];
  return spawn(argv[0]!, argv.slice(1), { env, cwd: opts.cwd ?? REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
}

/**
 * `remux ARGS` with its stdin from `input`: bytes (then closed), a Readable (piped), or 'open' ("ab", never
 * closed, as a harness's pipe); its stdout as bytes, and how long it ran. Killed after a minute.
 */
export function remuxFed(args: string[], input: Buffer | Readable | 'open', opts: RunOptions = {}): Promise<{ code: number | null; stdout: Buffer; stderr: string; seconds: number }> {
  const child = spawnRemux(args, opts);
  const started = performance.now();
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin!.on('error', () => undefined);
  if (input === 'open') child.stdin!.write('ab');
  else if (Buffer.isBuffer(input)) child.stdin!.end(input);
  else input.pipe(child.stdin!);
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(killer);
      if (input instanceof Readable) input.unpipe(child.stdin!);
      child.stdin!.destroy();
      resolve({ code, stdout: Buffer.concat(out), stderr, seconds: (performance.now() - started) / 1000 });
    }),
  );
}

export function remux(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const child = spawnRemux(args, opts);
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`remux ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 30000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 30000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    // A client that has already exited (the launcher can be that fast) closes its stdin: not an error.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}
