// The agentless runtime: typed calls into a bare python3 on a host (≥ 3.8, stdlib only), nothing
// installed there. connect('web1') bootstraps over the host's pooled SSH connection (or a local
// process for the local host); connectStreams() over any stdin/stdout pair. Every call is checked
// and audited (guard.ts) before it is sent.
//
//   const host = await connect('web1');
//   const text = await host.call(FileSystem.readText, '/etc/hostname');
//   const r = await host.exec(['uname', '-r']);            // { code, stdout, stderr, … }
//   for await (const c of host.stream(['journalctl', '-f'])) …
//   await host.close();
import type { Readable, Writable } from 'node:stream';
import { DEFAULT_SECURE_PATH } from '../config/config.js';
import type { PerformContext } from '../core/perform.js';
import type { PerformIO } from '../core/types.js';
import { commandEnv } from '../hosts/local.js';
import { WhichCache } from '../hosts/remote-resolver.js';
import type { Host } from '../hosts/types.js';
import { stage0Command } from './bootstrap.js';
import { guardedCall, guardedExec, type CallDone, type Guard } from './guard.js';
import { Link, type CallOptions, type Hello, type LogRecord, type Transport } from './link.js';
import type { CallStream } from './queue.js';
import { channelTransport, processTransport, streamTransport } from './transports.js';
import { Template, type RenderOptions, type Variables } from './template.js';
import type { ExecOptions, ExecResult, Method, OutputChunk } from './tools.js';

export { Apt, AptRepository, ArgumentError, Exec, FileSystem, Logger, METHODS, Pacman, PacmanRepository, Quit, Service, User } from './tools.js';
export { parseCallArgs } from './call-args.js';
export { Template } from './template.js';
export type { RenderOptions, TemplateFileOptions, TemplateFileResult, Variables } from './template.js';
export { CallTimeoutError, DeniedError, ProtocolError, RemoteError } from './errors.js';
export { stage0Argv } from './bootstrap.js';
export type { CallOptions, Hello, LogRecord } from './link.js';
export type { CliSpec, Method, Operation } from './method.js';

export interface ConnectOptions {
  /** Who calls, under which policies, audited where. */
  context: PerformContext;
  /** The interpreter on the host; default python3. */
  python?: string;
  /** Policy name; the principal's default when absent. */
  policy?: string;
  securePath?: string;
  onLog?(record: LogRecord): void;
  approve?: PerformIO['approve'];
}

export class RuntimeHost {
  constructor(
    private readonly guard: Guard,
    private readonly link: Link,
  ) {}

  get name(): string {
    return this.guard.hostName;
  }

  /** The handshake: protocol version, capabilities, the host's Python version, pid and cwd. */
  get hello(): Hello {
    return this.link.hello as Hello;
  }

  call<A extends unknown[], R, F>(method: Method<A, R, F>, ...args: A): Promise<R> {
    return guardedCall(this.guard, method, args);
  }

  /** call() with a timeout or an AbortSignal: either stops the work on the host. */
  callWith<A extends unknown[], R, F>(opts: CallOptions, method: Method<A, R, F>, ...args: A): Promise<R> {
    return guardedCall(this.guard, method, args, opts);
  }

  /** Exec.command: argv without a shell, its output captured. */
  async exec(argv: readonly string[], execOpts: ExecOptions = {}, opts: CallOptions = {}): Promise<ExecResult> {
    const stream = guardedExec(this.guard, argv, execOpts, opts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    for await (const chunk of stream) (chunk.stream === 'stdout' ? out : err).push(chunk.data);
    const done = await stream.result;
    return { ...done, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
  }

  /** Exec.stream: the same, its output as it comes. */
  stream(argv: readonly string[], execOpts: ExecOptions = {}, opts: CallOptions = {}): CallStream<OutputChunk, CallDone> {
    return guardedExec(this.guard, argv, execOpts, opts);
  }

  /** Ends the interpreter (what still runs is cancelled there) and frees the channel. */
  async close(): Promise<void> {
    this.link.close();
  }
}

// `await using host = await connect(…)` where the runtime has Symbol.asyncDispose (Node ≥ 20.4).
const asyncDispose = (Symbol as { asyncDispose?: symbol }).asyncDispose;
if (asyncDispose) Object.defineProperty(RuntimeHost.prototype, asyncDispose, { value: RuntimeHost.prototype.close });

async function start(transport: Transport, hostName: string, host: Host | null, opts: ConnectOptions): Promise<RuntimeHost> {
  const link = await Link.open(transport, opts.onLog ? { onLog: opts.onLog } : {});
  const guard: Guard = {
    ctx: opts.context,
    hostName,
    host,
    link,
    securePath: opts.securePath ?? DEFAULT_SECURE_PATH,
    whichCache: new WhichCache(),
    ...(opts.policy ? { policy: opts.policy } : {}),
    ...(opts.approve ? { approve: opts.approve } : {}),
  };
  return new RuntimeHost(guard, link);
}

/** An inventory host: over an exec channel of its pooled SSH connection, or a local process for a local host. */
export async function connect(name: string, opts: ConnectOptions): Promise<RuntimeHost> {
  const entry = opts.context.hostEntry(name);
  if (!entry) throw new Error(`unknown host "${name}"`);
  const host = opts.context.host(name);
  if (entry.transport === 'local') return start(processTransport(localProcess(opts)), name, host, opts);
  if (!host.openStream) throw new Error(`${name}: its transport (${entry.transport}) cannot start the runtime`);
  const stream = await host.openStream(stage0Command(opts.python));
  return start(channelTransport(stream, name), name, host, opts);
}

/** A process already running stage 0 (started with stage0Argv(), e.g. behind `docker exec -i`), by its pipes. */
export function connectStreams(stdin: Writable, stdout: Readable, name: string, opts: ConnectOptions & { stderr?: Readable }): Promise<RuntimeHost> {
  return start(streamTransport(stdin, stdout, name, opts.stderr), name, null, opts);
}

/** Starts `argv` + stage 0 as a local process (`['docker', 'exec', '-i', 'c']`, or nothing: this machine). */
export function connectProcess(name: string, opts: ConnectOptions & { argvPrefix?: readonly string[] }): Promise<RuntimeHost> {
  const t = processTransport({ ...localProcess(opts), ...(opts.argvPrefix ? { argvPrefix: opts.argvPrefix } : {}) });
  return start(t, name, null, opts);
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
