// One run of a CLI command as its code sees it: where output goes, whether there is a terminal, the
// environment and working directory, how questions are asked and how Ctrl-C arrives. The CLI process
// builds one from itself; the daemon builds one for a command line a client forwarded to it
// (gateway/cli-session.ts), so `client run` is the same code wherever it runs.
import { fstatSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { writableFlow } from '../exec/output.js';
import type { OutputFlow } from '../exec/types.js';
import { OutputClosed } from '../core/types.js';

export interface Sink {
  write(chunk: string | Uint8Array): void;
}

export interface Invocation {
  /** The words after `remux`. */
  args: string[];
  stdout: Sink;
  stderr: Sink;
  /** Backpressure of stdout and stderr: commands are not read while the reader of this output lags. */
  outputFlow?: OutputFlow;
  stdinIsTTY: boolean;
  /** What a command reads as its stdin: the caller's when it is a pipe, file or socket; null for a terminal or /dev/null. */
  stdin: NodeJS.ReadableStream | null;
  stderrIsTTY: boolean;
  /** Terminal width for help text, when stdout is a terminal. */
  columns: number | undefined;
  env: NodeJS.ProcessEnv;
  /** The user's working directory: relative paths in flags and variables resolve against it. */
  cwd: string;
  /** Shows `prompt` on the user's terminal and resolves with the line typed ('' when there is none or `signal` aborts). */
  question(prompt: string, signal: AbortSignal): Promise<string>;
  /**
   * Calls `handler` on Ctrl-C (a second Ctrl-C exits at once), and with OutputClosed when stdout's reader
   * went away while it is registered (what runs is then stopped, and its end audited, as for Ctrl-C);
   * returns a function that removes it.
   */
  onInterrupt(handler: (reason?: Error) => void): () => void;
  setExitCode(code: number): void;
  /** The command has returned: what it no longer reads is let go (this process's stdin). */
  done?(): void;
}

/** How long a stop of what runs may take once stdout's reader went away (see processInvocation). */
const OUTPUT_CLOSED_GRACE_MS = 10_000;

/**
 * Whether this process's stdin is input for a command, as ssh would pass it: a pipe, a file or a socket.
 * Not a terminal (that is for questions) nor a character device such as /dev/null. Asked without touching
 * process.stdin, which would start reading it.
 */
export function stdinIsInput(): boolean {
  try {
    const st = fstatSync(0);
    return st.isFIFO() || st.isFile() || st.isSocket();
  } catch {
    return false;
  }
}

/**
 * The invocation of this process: its own streams, terminal, environment and signals. A reader of stdout
 * that goes away (`remux … | head`; ECONNRESET when stdout is a socket, as Node gives its children) ends
 * it quietly with status 0, as it always has (a `| head` under pipefail passes); while something runs that
 * an interrupt stops, that is stopped first (its end audited: 141, as SIGPIPE gives) and the process ends
 * once it has.
 */
export function processInvocation(): Invocation {
  const interruptible = new Set<(reason?: Error) => void>();
  let outputClosed = false;
  let stdinTaken = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') throw err;
    // Every later write says so again.
    if (outputClosed) return;
    outputClosed = true;
    if (interruptible.size === 0) process.exit(process.exitCode ?? 0);
    process.once('exit', () => (process.exitCode = 0));
    for (const handler of interruptible) handler(new OutputClosed());
    // What was stopped ends in a moment; a stop that never returns does not keep the process.
    setTimeout(() => process.exit(0), OUTPUT_CLOSED_GRACE_MS).unref();
  });
  return {
    args: process.argv.slice(2),
    stdout: process.stdout,
    stderr: process.stderr,
    outputFlow: writableFlow([process.stdout, process.stderr]),
    stdinIsTTY: process.stdin.isTTY === true,
    get stdin() {
      if (!stdinIsInput()) return null;
      stdinTaken = true;
      return process.stdin;
    },
    stderrIsTTY: process.stderr.isTTY === true,
    columns: process.stdout.isTTY && process.stdout.columns > 0 ? process.stdout.columns : undefined,
    env: process.env,
    cwd: process.cwd(),
    async question(prompt, signal) {
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return await rl.question(prompt, { signal });
      } catch {
        return '';
      } finally {
        rl.close();
      }
    },
    onInterrupt(handler) {
      let pressed = false;
      const onSigint = (): void => {
        if (pressed) process.exit(130);
        pressed = true;
        handler();
      };
      process.on('SIGINT', onSigint);
      interruptible.add(handler);
      return () => {
        process.off('SIGINT', onSigint);
        interruptible.delete(handler);
      };
    },
    setExitCode(code) {
      process.exitCode = code;
    },
    done() {
      // A pipe a command was fed from and then unpiped from (its program exited) is paused, but Node can
      // have restarted a read on it after its own pause handler stopped the last one: that read would keep
      // this process for as long as the pipe's writer keeps it open (`remux client run … < <(tail -f …)`
      // hung about 1 run in 10). Nothing reads it any more: closed. One still read (mcp --stdio) is left.
      if (!stdinTaken) return;
      const stdin = process.stdin;
      if (stdin.readableFlowing === true || stdin.listenerCount('data') > 0 || stdin.listenerCount('readable') > 0) return;
      stdin.destroy();
    },
  };
}

