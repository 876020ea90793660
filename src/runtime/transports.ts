// The pipes the runtime runs over: a local process, an SSH exec channel on the daemon's pooled
// connection (hosts/pool.ts openStream), or any stdin/stdout pair (`docker exec -i c python3 -c …`).
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { HostStream } from '../hosts/types.js';
import { stage0Argv } from './bootstrap.js';
import type { Transport } from './link.js';

/** What the host said on stderr before stage 1 closed it: why python did not start, say. */
const STDERR_KEEP = 2048;

/** A writable stdin and readable stdout of a process already running stage 0 (see stage0Argv). */
export function streamTransport(stdin: Writable, stdout: Readable, what: string, stderr?: Readable): Transport {
  let said = '';
  stderr?.on('data', (chunk: Buffer) => void (said = (said + chunk.toString()).slice(-STDERR_KEEP)));
  const closeListeners: Array<(reason: string) => void> = [];
  let closed = false;
  const closeWith = (reason: string): void => {
    if (closed) return;
    closed = true;
    const why = said.trim() ? `${reason}: ${said.trim()}` : reason;
    for (const listener of closeListeners) listener(why);
  };
  // A write to a peer that is gone fails on close; the error event alone must not throw.
  stdin.on('error', () => undefined);
  stdout.on('end', () => closeWith(`${what}: the runtime's process closed its output`));
  stdout.on('error', (err) => closeWith(`${what}: ${err.message}`));
  return {
    write: (data) => void stdin.write(data),
    // Corked, the pieces go out in one writev when uncorked: one system call, no copy.
    writev: (data) => {
      stdin.cork();
      for (const piece of data) stdin.write(piece);
      stdin.uncork();
    },
    onData: (listener) => void stdout.on('data', listener),
    onClose: (listener) => void closeListeners.push(listener),
    close: () => {
      stdin.end();
      closeWith(`${what}: closed`);
    },
  };
}

/** Starts `python` locally with stage 0 and speaks over its pipes. `argvPrefix` wraps it (`docker exec -i c`). */
export function processTransport(opts: { python?: string; argvPrefix?: readonly string[]; env?: NodeJS.ProcessEnv } = {}): Transport & { pid: number | undefined } {
  const argv = [...(opts.argvPrefix ?? []), ...stage0Argv(opts.python)];
  // A bare name is looked up in env.PATH (the caller gives the secure PATH), not in ours.
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], ...(opts.env ? { env: opts.env } : {}) });
  const what = `${argv[0]} (local process)`;
  const transport = streamTransport(child.stdin, child.stdout, what, child.stderr);
  const closeListeners: Array<(reason: string) => void> = [];
  transport.onClose((reason) => closeListeners.forEach((l) => l(reason)));
  child.on('error', (err) => closeListeners.forEach((l) => l(`${what}: ${notStarted(argv[0] as string, err, opts.env?.PATH ?? process.env.PATH, opts.argvPrefix === undefined)}`)));
  return {
    ...transport,
    onClose: (listener) => void closeListeners.push(listener),
    pid: child.pid,
    close: () => {
      transport.close();
      // Stage 1 exits on EOF; one that does not is killed.
      setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), 2000).unref();
    },
  };
}

/** Why a local program did not start, in words: a missing one says where it was looked for (and, the interpreter itself, what to do). */
function notStarted(program: string, err: NodeJS.ErrnoException, path: string | undefined, isPython: boolean): string {
  if (err.code !== 'ENOENT') return err.message;
  const missing = program.includes('/') ? `there is no ${program}` : `${program} is not in the PATH it was looked up in (${path ?? 'none'})`;
  return isPython ? `${missing}; the runtime needs a python3, 3.8 or later: install one there, or name another interpreter (--python PATH)` : missing;
}

/** Over a long-lived exec channel of a pooled SSH connection. */
export function channelTransport(stream: HostStream, what: string): Transport {
  let said = '';
  stream.onStderr((chunk) => void (said = (said + chunk.toString()).slice(-STDERR_KEEP)));
  const closeListeners: Array<(reason: string) => void> = [];
  void stream.exited.then(
    ({ code, signal }) => {
      const how = signal ? `signal ${signal}` : `exit status ${code ?? 'unknown'}`;
      const why = `${what}: the runtime ended (${how})${said.trim() ? `: ${said.trim()}` : ''}`;
      closeListeners.forEach((l) => l(why));
    },
    (err: Error) => closeListeners.forEach((l) => l(`${what}: ${err.message}`)),
  );
  return {
    write: (data) => stream.write(data),
    onData: (listener) => stream.onData(listener),
    onClose: (listener) => void closeListeners.push(listener),
    close: () => stream.end(),
  };
}
