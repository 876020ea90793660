// The daemon's side of a forwarded command line: `remux client run|batch …` as typed on the client,
// parsed and run here by the CLI's own code (cli/program.ts, cli/client-commands.ts) against the
// daemon's warm context, with output, questions and Ctrl-C carried in frames (protocol.ts).
import type net from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { explicitFiles, interruptedExit, type ClientHost, type Runner } from '../cli/client-commands.js';
import { registerClient } from '../cli/commands/client.js';
import { registerRpc } from '../cli/commands/rpc.js';
import { registerSession } from '../cli/commands/session.js';
import type { Invocation } from '../cli/invocation.js';
import { CreditedInput } from '../exec/input-credit.js';
import { writableFlow } from '../exec/output.js';
import { UsageError } from '../cli/output.js';
import { createProgram, runProgram } from '../cli/program.js';
import type { GatewayContext } from '../core/context.js';
import { EXIT } from '../core/exit-codes.js';
import { owned } from '../core/frames.js';
import { takeOrWait, type RateLimiter } from '../hosts/rate-limit.js';
import { exitFrame, FRAME, frame, FrameReader, type CliRequest } from './protocol.js';

export interface CliSessionDeps {
  ctx: GatewayContext;
  limiter: RateLimiter;
  version: string;
}

/**
 * A command whose next token is at most this far away waits for it (a shell loop of `remux client run`
 * runs at the rate instead of failing); further away, it is refused (exit 75) with the wait.
 */
const CLI_WAIT_MS = 1_000;

const cliRequestSchema = z.strictObject({
  type: z.literal('cli'),
  version: z.string(),
  args: z.array(z.string()).max(100_000),
  cwd: z.string().startsWith('/'),
  env: z.record(z.string(), z.string()),
  stdinIsTTY: z.boolean(),
  stderrIsTTY: z.boolean(),
  stdin: z.boolean().optional(),
  columns: z.number().int().positive().optional(),
});

/** Client frames are small: Ctrl-C and typed answers. */
const MAX_CLIENT_FRAME_BYTES = 64 << 10;
/** Output goes out in frames of at most this size, so a client never buffers a huge one. */
const MAX_OUTPUT_FRAME_BYTES = 1 << 20;

/** Variables naming files: made absolute with the client's HOME and working directory, since the daemon has its own. */
const PATH_VARIABLES = [
  'REMUX_HOME', 'XDG_CONFIG_HOME', 'REMUX_POLICY_CONFIG', 'RPIPE_POLICY_CONFIG', 'REMUX_AUDIT_DB', 'RPIPE_AUDIT_LOG_DIR',
  'REMUX_KNOWN_HOSTS', 'RPIPE_KNOWN_HOSTS', 'REMUX_SOCKET', 'RPIPE_SOCKET',
];

export function clientEnv(env: Record<string, string>, cwd: string): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const name of PATH_VARIABLES) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const home = env.HOME || homedir();
    const expanded = value === '~' ? home : value.startsWith('~/') ? join(home, value.slice(2)) : value;
    out[name] = resolve(cwd, expanded);
  }
  return out;
}

/** Session commands of the client's own terminal (attach) or files (recordings, play: its $REMUX_HOME). */
const CLIENT_SESSION_COMMANDS = new Set(['attach', 'recordings', 'play']);

/**
 * The daemon runs `client run|batch|read|ls|edit`, `client write` when the client sends its stdin (the
 * content; a terminal's is not forwarded), `rpc`, and the `session` commands that need no terminal or file of the
 * client's (attach, recordings and play do), and nothing with --no-daemon. What it can tell only once the line is
 * parsed (`rpc --tools`, `session new -a`) it hands back then (daemonHost's run). An rpc writeText without stdin
 * is refused as the CLI refuses it.
 */
function declineReason(args: string[], offersStdin: boolean): string | null {
  const options = args.indexOf('--') < 0 ? args : args.slice(0, args.indexOf('--'));
  const words = options.filter((a) => !a.startsWith('-'));
  const served =
    (words[0] === 'client' && ['run', 'batch', 'read', 'ls', 'write', 'edit'].includes(words[1] ?? '')) ||
    (words[0] === 'session' && !CLIENT_SESSION_COMMANDS.has(words[1] ?? '') && !options.includes('--attach') && !options.includes('-a')) ||
    words[0] === 'rpc';
  if (!served) return 'the daemon runs only `client run|batch|read|ls|write|edit`, `rpc` and `session` commands other than attach, recordings and play';
  if (options.includes('--no-daemon')) return '--no-daemon';
  if (words[0] === 'client' && words[1] === 'write' && !offersStdin) return 'client write reads its content from a terminal or /dev/null here, which is not forwarded';
  return null;
}

export function serveCli(socket: net.Socket, raw: unknown, rest: Buffer, deps: CliSessionDeps): void {
  const parsed = cliRequestSchema.safeParse(raw);
  if (!parsed.success) {
    const problem = parsed.error.issues[0];
    socket.write(frame(FRAME.stderr, `remux: malformed request from the client: ${problem?.path.join('.') ?? ''}: ${problem?.message ?? ''}\n`));
    socket.end(exitFrame(EXIT.USAGE));
    return;
  }
  const request: CliRequest = parsed.data;
  if (request.version !== deps.version) {
    socket.end(frame(FRAME.decline, `the daemon is remux ${deps.version}, this client ${request.version}; restart it: remux daemon restart`));
    return;
  }
  const declined = declineReason(request.args, request.stdin === true);
  if (declined) {
    socket.end(frame(FRAME.decline, declined));
    return;
  }

  const session = new Session(socket, request);
  const reader = new FrameReader((type, payload) => session.onFrame(type, payload), MAX_CLIENT_FRAME_BYTES);
  const onData = (chunk: Buffer): void => {
    try {
      reader.push(chunk);
    } catch {
      socket.destroy();
    }
  };
  socket.on('data', onData);
  socket.on('close', () => session.disconnected());
  onData(rest);

  const inv = session.invocation;
  const program = createProgram(inv);
  const host = (): Promise<ClientHost> => Promise.resolve(daemonHost(session, deps));
  registerClient(program, host);
  registerSession(program, host);
  registerRpc(program, host);
  void runProgram(program, request.args, inv).finally(() => socket.end(session.declined === null ? exitFrame(session.exitCode) : frame(FRAME.decline, session.declined)));
}

/** A client whose environment names other files must not silently get this daemon's policies, audit or host keys: why not, or null. */
export function filesMismatch(ctx: GatewayContext, env: NodeJS.ProcessEnv): string | null {
  const { policiesFile, auditDb, knownHosts } = explicitFiles(env);
  const mismatch = [
    ...(policiesFile !== undefined && policiesFile !== ctx.policiesFile ? [`policies ${ctx.policiesFile} (you named ${policiesFile})`] : []),
    ...(auditDb !== undefined && auditDb !== ctx.auditFile ? [`audit store ${ctx.auditFile} (you named ${auditDb})`] : []),
    ...(knownHosts !== undefined && knownHosts !== ctx.knownHostsFile ? [`known_hosts ${ctx.knownHostsFile} (you named ${knownHosts})`] : []),
  ];
  return mismatch.length > 0 ? `the running daemon uses ${mismatch.join(' and ')}` : null;
}

function daemonHost(session: Session, deps: CliSessionDeps): ClientHost {
  const inv = session.invocation;
  const runner: Runner = {
    async context() {
      const mismatch = filesMismatch(deps.ctx, inv.env);
      if (mismatch !== null) {
        throw new UsageError(mismatch, 'run with --no-daemon, or restart the daemon in this environment: remux daemon restart');
      }
      return deps.ctx;
    },
    admit: (ctx) => takeOrWait(deps.limiter, ctx.principal.name, CLI_WAIT_MS),
    // perform() refreshed the daemon's own cache already.
    sessionsChanged: () => Promise.resolve(),
    // Attach always runs in the CLI process, which asks for its slot itself.
    attachSlot: () => Promise.reject(new Error('internal: attach is not served by the daemon')),
    close: () => Promise.resolve(),
  };
  return {
    invocation: inv,
    // A command that needs the client's own process (its terminal: `session new -a`; its code: `rpc --tools`),
    // however its flags are written, is handed back before it does anything: the client runs it itself.
    async run(opts, work) {
      if (opts.daemon === false) return session.decline(opts.local ?? 'it needs your terminal');
      const code = await work(runner);
      return interruptedExit(session.interrupted, code);
    },
    forward: () => Promise.resolve(null),
  };
}

/** One forwarded command line's connection: its invocation, and the frames the client sends. */
class Session {
  exitCode: number = EXIT.OK;
  /** Why the command was handed back to the client to run itself, or null. */
  declined: string | null = null;
  readonly invocation: Invocation;
  private gone = false;
  /** The client pressed Ctrl-C (or went away). */
  interrupted = false;
  private readonly interruptHandlers = new Set<() => void>();
  private readonly pendingAnswers = new Map<number, (line: string) => void>();
  private nextQuestionId = 1;
  /** The client's stdin, when it offered it: granted to the client as the command reads. */
  private readonly stdin: CreditedInput | null;

  constructor(
    private readonly socket: net.Socket,
    request: CliRequest,
  ) {
    const stream = (type: number) => ({ write: (chunk: string | Uint8Array) => this.sendOutput(type, chunk) });
    this.stdin = request.stdin === true ? new CreditedInput((bytes) => this.grantStdin(bytes)) : null;
    this.stdin?.on('error', () => {}); // a client that overran its credit: its connection is cut (onFrame)
    this.invocation = {
      args: request.args,
      stdout: stream(FRAME.stdout),
      stderr: stream(FRAME.stderr),
      // Both go into the one socket: while the client does not read it, the command is not read either.
      outputFlow: writableFlow([socket]),
      stdinIsTTY: request.stdinIsTTY,
      stdin: this.stdin,
      stderrIsTTY: request.stderrIsTTY,
      columns: request.columns,
      env: clientEnv(request.env, request.cwd),
      cwd: request.cwd,
      question: (prompt, signal) => this.question(prompt, signal),
      onInterrupt: (handler) => {
        this.interruptHandlers.add(handler);
        if (this.gone) queueMicrotask(handler);
        return () => this.interruptHandlers.delete(handler);
      },
      setExitCode: (code) => (this.exitCode = code),
    };
  }

  /** Hands the command back to the client (a decline frame instead of its exit); its exit status meanwhile. */
  decline(why: string): number {
    this.declined = why;
    return EXIT.OK;
  }

  onFrame(type: number, payload: Buffer): void {
    if (type === FRAME.interrupt) this.interrupt();
    else if (type === FRAME.answer && payload.length >= 4) this.pendingAnswers.get(payload.readUInt32BE(0))?.(payload.subarray(4).toString('utf8'));
    // Input past the credit granted cuts the client off.
    else if (type === FRAME.stdin && this.stdin?.received(owned(payload))) this.socket.destroy();
    else if (type === FRAME.stdinEnd) this.stdin?.finish();
  }

  private interrupt(): void {
    this.interrupted = true;
    for (const handler of [...this.interruptHandlers]) handler();
  }

  private grantStdin(bytes: number): void {
    if (this.gone) return;
    const count = Buffer.alloc(4);
    count.writeUInt32BE(bytes);
    this.socket.write(frame(FRAME.stdinCredit, count));
  }

  /** The client went away (Ctrl-C twice, killed, closed): whatever it started is cancelled, its questions go unanswered. */
  disconnected(): void {
    this.gone = true;
    this.stdin?.destroy();
    this.interrupt();
    for (const settle of [...this.pendingAnswers.values()]) settle('');
  }

  private sendOutput(type: number, chunk: string | Uint8Array): void {
    if (this.gone) return;
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    for (let at = 0; at < bytes.length; at += MAX_OUTPUT_FRAME_BYTES) this.socket.write(frame(type, bytes.subarray(at, at + MAX_OUTPUT_FRAME_BYTES)));
  }

  private question(prompt: string, signal: AbortSignal): Promise<string> {
    return new Promise((resolveAnswer) => {
      if (this.gone || signal.aborted) return resolveAnswer('');
      const id = this.nextQuestionId++;
      const settle = (line: string): void => {
        this.pendingAnswers.delete(id);
        signal.removeEventListener('abort', onAbort);
        resolveAnswer(line);
      };
      const onAbort = (): void => settle('');
      signal.addEventListener('abort', onAbort, { once: true });
      this.pendingAnswers.set(id, settle);
      const header = Buffer.alloc(4);
      header.writeUInt32BE(id);
      this.socket.write(frame(FRAME.question, Buffer.concat([header, Buffer.from(prompt, 'utf8')])));
    });
  }
}
