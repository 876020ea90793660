// The agentless runtime: typed calls into a bare python3 on a host (≥ 3.8, stdlib only), nothing
// installed there. connect('web1') bootstraps over the host's pooled SSH connection (or a local
// process for the local host); connectStreams() over any stdin/stdout pair; fanout() over a
// selector's hosts. Every call is checked and audited (guard.ts) before it is sent. Without a
// `context` option they act as the CLI does: the user's $REMUX_HOME files (runtime/context.ts).
// Published as `remux/runtime` (package.json "exports"), the tools as `remux/runtime/tools`.
//
//   await using host = await connect('web1');
//   const text = await host.call(FileSystem.readText, '/etc/hostname');
//   const r = await host.exec(['uname', '-r']);            // { code, stdout, stderr, … }
//   for await (const c of host.stream(['journalctl', '-f'])) …
//   await host.close();
import type { Readable, Writable } from 'node:stream';
import { DEFAULT_SECURE_PATH } from '../config/config.js';
import type { GatewayContext } from '../core/context.js';
import type { PerformContext } from '../core/perform.js';
import { MAX_TIMER_MS } from '../core/timers.js';
import type { PerformIO } from '../core/types.js';
import { commandEnv } from '../hosts/local.js';
import { WhichCache } from '../hosts/remote-resolver.js';
import type { Host } from '../hosts/types.js';
import { DEFAULT_PYTHON, stage0Command } from './bootstrap.js';
import { acquireDefaultContext, releaseDefaultContext } from './context.js';
import { admitInterpreter, guardedCall, guardedExec, guardedToolCall, type CallDone, type Guard } from './guard.js';
import { keepIdle, takeIdle, type HostLookups } from './links.js';
import { ResolvedPaths } from './resolved.js';
import { Link, type CallOptions, type Hello, type LogRecord, type Transport } from './link.js';
import { ChunkQueue, type CallStream } from './queue.js';
import { ArgumentError, ArgumentTypeError, ProtocolError } from './errors.js';
import { channelTransport, processTransport, streamTransport } from './transports.js';
import { Template, type RenderOptions, type Variables } from './template.js';
import type { ExecMethod, ExecOptions, ExecResult, Method, OutputChunk, ToolMethod } from './tools.js';

export { Apt, AptRepository, ArgumentError, defineMethod, defineTool, Exec, FileSystem, Logger, METHODS, Pacman, PacmanRepository, Quit, Service, User } from './tools.js';
export type { ExecOptions, ExecResult, MethodDefinition, OutputChunk, Stat, Tool, ToolDefinition, ToolMethod } from './tools.js';
export { parseCallArgs } from './call-args.js';
export { Template } from './template.js';
export type { RenderOptions, TemplateFileOptions, TemplateFileResult, Variables } from './template.js';
export { ArgumentTypeError, CallTimeoutError, DeniedError, ProtocolError, RemoteError, ResultTypeError, WindowOverrunError } from './errors.js';
export { stage0Argv } from './bootstrap.js';
export type { CallOptions, Hello, LogRecord } from './link.js';
export type { CliSpec, Method, Operation } from './method.js';
export type { CallStream } from './queue.js';
export type { CallDone } from './guard.js';
export { fanout, type FanoutOptions, type FanoutResults, type FanoutSummary, type HostResult } from './fanout.js';

/** A context that can also pick hosts by selector and reach them (the CLI's and the daemon's). */
export type RuntimeContext = PerformContext & Partial<Pick<GatewayContext, 'registry' | 'config'>>;

export interface ConnectOptions {
  /** Who calls, under which policies, audited where; default: the CLI's, from $REMUX_HOME (closed with the last host using it). */
  context?: RuntimeContext;
  /** The interpreter on the host; default python3. */
  python?: string;
  /** Policy name; the principal's default when absent. */
  policy?: string;
  securePath?: string;
  onLog?(record: LogRecord): void;
  approve?: PerformIO['approve'];
}

export class RuntimeHost {
  private released = false;

  constructor(
    private readonly guard: Guard,
    private readonly link: Link,
    /** Lets go of what connect() took for this host (the shared default context). */
    private readonly release: () => Promise<void> = async () => {},
    /** Where the link may be kept for reuse once closed. */
    private readonly reuse: { context: object; key: string } | null = null,
  ) {}

  get name(): string {
    return this.guard.hostName;
  }

  /** The handshake: protocol version, capabilities, the host's Python version, pid and cwd. */
  get hello(): Hello {
    return this.link.hello as Hello;
  }

  /** A tool's method, built in or custom (defineTool), checked and audited, its value typed. */
  call<A extends unknown[], R, F>(method: Method<A, R, F> | ToolMethod<A, R>, ...args: A): Promise<R> {
    return this.callWith({}, method, ...args);
  }

  /** call() with a timeout or an AbortSignal: either stops the work on the host. */
  callWith<A extends unknown[], R, F>(opts: CallOptions, method: Method<A, R, F> | ToolMethod<A, R>, ...args: A): Promise<R> {
    if (this.released) return Promise.reject(this.closedError());
    const badOptions = callOptionsProblem(opts);
    if (badOptions) return Promise.reject(badOptions);
    if (typeof method === 'object' && method !== null && 'parseArgs' in method) return guardedToolCall(this.guard, method, args, opts);
    return guardedCall(this.guard, typeof method?.operations === 'function' ? method : notAMethod(method), args, opts);
  }

  /** Exec.command: argv without a shell, its output captured. */
  async exec(argv: readonly string[], execOpts: ExecOptions = {}, opts: CallOptions = {}): Promise<ExecResult> {
    const stream = this.stream(argv, execOpts, opts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    for await (const chunk of stream) (chunk.stream === 'stdout' ? out : err).push(chunk.data);
    const done = await stream.result;
    return { ...done, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
  }

  /** Exec.stream: the same, its output as it comes. */
  stream(argv: readonly string[], execOpts: ExecOptions = {}, opts: CallOptions = {}): CallStream<OutputChunk, CallDone> {
    const refused = this.released ? this.closedError() : callOptionsProblem(opts);
    if (refused) {
      const failed = new ChunkQueue<OutputChunk, CallDone>();
      failed.settle(refused);
      return failed;
    }
    return guardedExec(this.guard, argv, execOpts, opts);
  }

  /** Its link may serve another host now: a closed host sends nothing more. */
  private closedError(): ProtocolError {
    return new ProtocolError(`${this.name}: this runtime connection was closed`);
  }

  /**
   * Ends the interpreter (what still runs is cancelled there) and frees the channel; over SSH a quiet
   * one is kept a while for the next connect() to the host with the same context (links.ts).
   */
  async close(): Promise<void> {
    if (this.released) return;
    if (this.reuse) keepIdle(this.reuse.context, this.reuse.key, { link: this.link, lookups: { whichCache: this.guard.whichCache, resolvedPaths: this.guard.resolvedPaths } });
    else this.link.close();
    this.released = true;
    await this.release();
  }

  /** `await using host = await connect(…)` (Node ≥ 20.4 has Symbol.asyncDispose). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * A timeoutMs that would end the call at once (0, negative, NaN, Infinity) or is no number, as an
 * ArgumentError; null for good options. No limit at all is `timeoutMs: null`.
 */
function callOptionsProblem(opts: CallOptions): ArgumentError | null {
  const t: unknown = opts.timeoutMs;
  if (t === undefined || t === null || (typeof t === 'number' && t > 0 && t <= MAX_TIMER_MS)) return null;
  return new ArgumentError(`timeoutMs: milliseconds, more than 0 and at most ${MAX_TIMER_MS}, or null for no limit; got ${typeof t === 'number' ? t : typeof t}`);
}

/**
 * What call() got instead of a tool's method (Exec's, which exec() and stream() run; or anything else),
 * as a method whose arguments are refused: audited as rejected, nothing sent.
 */
function notAMethod(given: unknown): Method<unknown[], never> {
  const named = typeof given === 'object' && given !== null && typeof (given as { name?: unknown }).name === 'string' ? (given as { name: string }).name : null;
  const refusal = (): never => {
    if ((given as Partial<ExecMethod> | null)?.exec === true) throw new ArgumentError(`${named}: call() does not run it; use host.exec(argv, options, { timeoutMs, signal }), or host.stream() for its output as it comes`);
    throw new ArgumentTypeError(named ?? 'call', `the method (argument 1): expected a tool's method (FileSystem.readText, a defineTool method), got ${named ?? typeof given}`);
  };
  return {
    get tool(): never {
      return refusal();
    },
    name: named ?? 'call',
    remote: '',
    operations: refusal,
    encode: refusal,
    decode: refusal,
  };
}

type Contextual = ConnectOptions & { context: RuntimeContext };

async function start(transport: Transport, hostName: string, host: Host | null, opts: Contextual, release?: () => Promise<void>): Promise<RuntimeHost> {
  return hostOn(await Link.open(transport, opts.onLog ? { onLog: opts.onLog } : {}), hostName, host, opts, release);
}

function hostOn(link: Link, hostName: string, host: Host | null, opts: Contextual, release?: () => Promise<void>, reuse: { context: object; key: string } | null = null, lookups: HostLookups | null = null): RuntimeHost {
  const guard: Guard = {
    ctx: opts.context,
    hostName,
    host,
    link,
    python: opts.python ?? DEFAULT_PYTHON,
    securePath: securePathOf(opts),
    ...(lookups ?? { whichCache: new WhichCache(), resolvedPaths: new ResolvedPaths() }),
    ...(opts.policy ? { policy: opts.policy } : {}),
    ...(opts.approve ? { approve: opts.approve } : {}),
  };
  return new RuntimeHost(guard, link, release, reuse);
}

/** An inventory host: over an exec channel of its pooled SSH connection, or a local process for a local host. */
export async function connect(name: string, opts: ConnectOptions = {}): Promise<RuntimeHost> {
  return withContext(opts, async (o, release) => {
    const entry = o.context.hostEntry(name);
    if (!entry) throw unknownHost(o.context, name);
    await o.context.registry?.prepare([name]);
    // Another interpreter than the host's python3 runs before any call: the policy says first whether it may.
    if (o.python !== undefined && o.python !== DEFAULT_PYTHON) await admitInterpreter(o.context, name, o.python, o.policy);
    const host = o.context.host(name);
    if (entry.transport === 'local') return start(processTransport(localProcess({ ...o, securePath: securePathOf(o) })), name, host, o, release);
    if (!host.openStream) throw new Error(`${name}: its transport (${entry.transport}) cannot start the runtime`);
    // Lookups answer for one secure PATH: a link kept under another is not this one's.
    const reuse = { context: o.context, key: `${name}\0${o.python ?? DEFAULT_PYTHON}\0${securePathOf(o)}` };
    const kept = takeIdle(reuse.context, reuse.key);
    if (kept) kept.link.onLog = o.onLog;
    const link = kept?.link ?? (await Link.open(channelTransport(await host.openStream(stage0Command(o.python)), name), o.onLog ? { onLog: o.onLog } : {}));
    return hostOn(link, name, host, o, release, reuse, kept?.lookups ?? null);
  });
}

/** A name the inventory lacks, in the inventory's own words where there is one (what exists, how to add a host), as `client run` says it. */
function unknownHost(context: RuntimeContext, name: string): Error {
  try {
    context.registry?.select(name, context.principal);
  } catch (err) {
    return err as Error;
  }
  return new Error(`unknown host "${name}"`);
}

/** A process already running stage 0 (started with stage0Argv(), e.g. behind `docker exec -i`), by its pipes. */
export function connectStreams(stdin: Writable, stdout: Readable, name: string, opts: ConnectOptions & { stderr?: Readable } = {}): Promise<RuntimeHost> {
  return withContext(opts, (o, release) => start(streamTransport(stdin, stdout, name, o.stderr), name, null, o, release));
}

/** Starts `argv` + stage 0 as a local process (`['docker', 'exec', '-i', 'c']`, or nothing: this machine). */
export function connectProcess(name: string, opts: ConnectOptions & { argvPrefix?: readonly string[] } = {}): Promise<RuntimeHost> {
  return withContext(opts, (o, release) => {
    const t = processTransport({ ...localProcess({ ...o, securePath: securePathOf(o) }), ...(o.argvPrefix ? { argvPrefix: o.argvPrefix } : {}) });
    return start(t, name, null, o, release);
  });
}

/** Runs `open` with the caller's context, or the shared default one, which is let go if `open` fails. */
async function withContext<O extends ConnectOptions>(opts: O, open: (o: O & { context: RuntimeContext }, release?: () => Promise<void>) => Promise<RuntimeHost>): Promise<RuntimeHost> {
  if (opts.context) return open(opts as O & { context: RuntimeContext });
  const context = acquireDefaultContext();
  const release = (): Promise<void> => releaseDefaultContext(context);
  try {
    return await open({ ...opts, context }, release);
  } catch (err) {
    await release();
    throw err;
  }
}

/** Where programs are looked up: the option, else the config's exec.secure_path, else the built-in one. */
function securePathOf(opts: Contextual): string {
  return opts.securePath ?? opts.context.registry?.securePath ?? DEFAULT_SECURE_PATH;
}

/**
 * Renders a template in a local python3 with no host behind it (`remux template render`): the one
 * implementation of the language, `host` being this machine. It touches nothing, and there is no host
 * or principal to check, so no policy applies and nothing is audited.
 */
export async function renderLocally(text: string, variables: Variables, opts: RenderOptions & { python?: string; securePath?: string } = {}): Promise<string> {
  const link = await Link.open(processTransport(localProcess(opts)));
  try {
    const m = Template.render;
    const nothing = { paths: {}, programs: {}, path: opts.securePath ?? DEFAULT_SECURE_PATH, host: { name: 'localhost', labels: {} } };
    return m.decode(await link.call(m.tool, m.remote, m.encode([text, variables, opts], nothing, null)).result);
  } finally {
    link.close();
  }
}

/** A local interpreter starts like a local command: from the secure PATH, with none of our secrets (REMUX_TOKEN, agent sockets). */
function localProcess(opts: { python?: string; securePath?: string }): { python?: string; env: Record<string, string> } {
  return { ...(opts.python ? { python: opts.python } : {}), env: commandEnv(opts.securePath ?? DEFAULT_SECURE_PATH) };
}
