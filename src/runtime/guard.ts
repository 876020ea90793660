// The runtime behind the one door (ARCHITECTURE §1): every call is checked and audited like a front
// end's action, before a frame is sent. scope -> policy -> what the call does, resolved on the host by
// the runtime itself -> policy decision -> audit.begin -> ask -> the remote call -> audit.end.
// A tool method declares what it does (method.ts's Operation): file actions are checked as perform-file
// checks them (read_file, write_file, list_directory on the path as resolved on the host), programs as
// execute_binary of what the host's secure PATH finds; the call then acts on exactly what was resolved,
// opening paths without following symlinks. Exec is checked as the command it runs, like `client run`.
import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { performance } from 'node:perf_hooks';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { parseCommand } from '../command/parser.js';
import { renderCommandList } from '../command/render.js';
import { ParseError, type CommandList } from '../command/types.js';
import { EXIT } from '../core/exit-codes.js';
import { decide, FILE_OPERATIONS, pathProblem, type Answer } from '../core/perform-file.js';
import { askedFor, auditAction, unknownPolicyOf, enforcementOn, errorText, finishRun, perform, refuse, ruleText, settleAsk, type Asked, type PerformContext } from '../core/perform.js';
import { checkScope } from '../core/scope.js';
import { InputFailed, type Action, type ApprovalSubject, type ExecAction, type Outcome, type PerformIO } from '../core/types.js';
import { OutputGate, readPart, redactAll, redacts } from '../exec/output.js';
import type { ExecResult, OutputFlow } from '../exec/types.js';
import type { WhichCache } from '../hosts/remote-resolver.js';
import type { Host } from '../hosts/types.js';
import { combine, evaluate, evaluatePath, outputRedaction } from '../policy/evaluate.js';
import { ResolveError } from '../policy/resolve.js';
import type { Check, Decision, Enforcement, PathResolver, Policy } from '../policy/types.js';
import { ArgumentError, DeniedError, CallTimeoutError, ProtocolError, RemoteError, ResultTypeError } from './errors.js';
import type { CallOptions, Link } from './link.js';
import { ChunkQueue, type CallStream } from './queue.js';
import { renderCallArgs } from './call-args.js';
import { shownDiff } from './diff-view.js';
import { auditOperation, describeOperations, nothingTouched, operationTarget, treeChecks } from './checks.js';
import { isReadable, type Method, type Operation, type Resolved } from './method.js';
import type { ResolvedPaths } from './resolved.js';
import { checkExecArgs, Exec, FileSystem, READ_MAX, type ExecOptions, type OutputChunk, type ToolMethod } from './tools.js';

/** Output of a running command in flight or waiting for its consumer, at most (link.ts CallOptions.window). */
const STREAM_WINDOW = 256 * 1024;

/** Rule prefixes may need a second round of answers from the host; more never happens (as perform-file). */
const MAX_RESOLVE_ROUNDS = 3;

export interface Guard {
  ctx: PerformContext;
  /** The name the audit and the scope check know the host by. */
  hostName: string;
  /** The inventory host, for its sandbox support; null for a runtime on a given stdin/stdout pair. */
  host: Host | null;
  link: Link;
  /** The interpreter the runtime runs in on the host (as the policy sees a custom tool's code run). */
  python: string;
  /** Where Exec looks programs up (and the policy resolves them): never the caller's PATH. */
  securePath: string;
  /** Program lookups on this host, kept briefly as the SSH pool keeps its own (hosts/remote-resolver.ts). */
  whichCache: WhichCache;
  /** File methods' path resolutions on this host, kept briefly (resolved.ts says why that is safe). */
  resolvedPaths: ResolvedPaths;
  policy?: string;
  approve?: PerformIO['approve'];
}

export interface CallDone {
  code: number | null;
  signal: number | null;
  truncated: boolean;
}

/** Refusals are audited, then thrown: nothing reached the host. */
async function refused(g: Guard, asked: Asked, started: number, outcome: Outcome, exitCode: number, message: string, decision: Decision | null = null): Promise<never> {
  const r = await refuse(g.ctx, asked, started, outcome, exitCode, message, decision);
  throw refusalError(outcome, message, r.actionId, decision);
}

/**
 * What a refusal is to the caller: a host that cannot answer what the call touches (its interpreter gone,
 * the link down) is unreachable, a command or path the parser or the checks reject is a usage error
 * (exit 2, as `client run` says), and only the rest is a denial (77).
 */
function refusalError(outcome: Outcome, message: string, actionId: number | null, decision: Decision | null = null): Error {
  if (outcome === 'unreachable') return new ProtocolError(message);
  if (outcome !== 'rejected') return new DeniedError(message, actionId, decision);
  const err = new ArgumentError(message);
  err.actionId = actionId;
  return err;
}

/** The policy an action is checked against, once the principal's scope admits it; else why not. */
function scopedPolicy(ctx: PerformContext, action: Action, asked: Asked): { ok: true; policy: Policy } | { ok: false; outcome: Outcome; exitCode: number; reason: string } {
  const scoped = checkScope(ctx.principal, action, ctx.defaultPolicy, (name) => ctx.hostEntry(name));
  if (!scoped.ok) return { ok: false, outcome: 'denied', exitCode: EXIT.DENIED, reason: scoped.reason };
  const policy = ctx.policies.get(asked.policy);
  if (!policy) return { ok: false, outcome: 'rejected', exitCode: EXIT.USAGE, reason: unknownPolicyOf(ctx, action, asked.policy) };
  return { ok: true, policy };
}

/**
 * A question the check asked the host that got no answer. Past the call's timeout that is the call's own end
 * (124, as for a command that ran too long), and the caller's abort (Ctrl-C) its own too (130), thrown as
 * the reason it gave, as an abort once the call runs is: neither is a host out of reach. Anything else
 * leaves the host unreachable.
 */
async function unanswered(g: Guard, asked: Asked, started: number, what: string, err: unknown, opts: CallOptions): Promise<never> {
  const message = `${what}: ${errorText(err)}`;
  if (opts.signal?.aborted && err === opts.signal.reason) {
    await refuse(g.ctx, asked, started, 'unreachable', EXIT_INTERRUPTED, message, null);
    throw err;
  }
  if (!(err instanceof CallTimeoutError)) return refused(g, asked, started, 'unreachable', EXIT.TRANSPORT, message);
  await refuse(g.ctx, asked, started, 'unreachable', EXIT_TIMED_OUT, message, null);
  err.message = message;
  throw err;
}

/** sh's statuses for a command stopped at its timeout (timeout(1)'s) and one interrupted (SIGINT), as `client run` gives them. */
const EXIT_TIMED_OUT = 124;
const EXIT_INTERRUPTED = 130;

function admitted(g: Guard, action: Action, asked: Asked, started: number): Promise<Policy> {
  const p = scopedPolicy(g.ctx, action, asked);
  return p.ok ? Promise.resolve(p.policy) : refused(g, asked, started, p.outcome, p.exitCode, p.reason);
}

const io = (g: Guard): PerformIO => ({ onStdout: () => {}, onStderr: () => {}, ...(g.approve ? { approve: g.approve } : {}) });

/**
 * A tool method (not Exec): every operation it declares is checked, as one decision (any deny denies,
 * any ask asks), before anything but the read-only questions of the check reaches the host: files as
 * the file actions they are on the path as resolved on the host (a write never to a symlink; a tree
 * write also against the rules inside the tree), programs as execute_binary of what the secure PATH
 * finds there. The call then acts on exactly what was resolved and checked.
 */
export async function guardedCall<A extends unknown[], R, F>(g: Guard, method: Method<A, R, F>, args: A, opts: CallOptions = {}): Promise<R> {
  const started = performance.now();
  // Scope looks at the host and the policy only; the audit says which method and what it does.
  const scopeAction: ExecAction = { kind: 'exec', host: g.hostName, command: method.name, ...(g.policy ? { policy: g.policy } : {}) };
  // A command-line shape that is not the arguments' own (toArgs: Template's) cannot say them back as words: the method's own words do.
  const words = method.words ? method.words(args) : method.cli && !method.cli.toArgs ? renderCallArgs(method.cli, args) : null;
  const asked: Asked = { ...askedFor(g.ctx, scopeAction), operation: 'runtime.call', command: method.name, argv: words ? [method.name, ...words] : null };
  // Bad arguments: audited as rejected, and thrown as the ArgumentError they are (a usage error).
  const rejected = async (err: unknown): Promise<never> => {
    if (!(err instanceof ArgumentError)) throw err;
    if (!err.message.startsWith(`${method.name}: `)) err.message = `${method.name}: ${err.message}`;
    err.actionId = (await refuse(g.ctx, asked, started, 'rejected', EXIT.USAGE, err.message, null)).actionId;
    throw err;
  };
  const badPath = (declared: Operation[]): string | null => {
    for (const op of declared) {
      const problem = op.kind === 'exec' ? null : pathProblem(op.path);
      if (problem) return `${method.name} ${JSON.stringify(operationTarget(op))}: ${problem}`;
    }
    return null;
  };
  const declare = (facts: F): Operation[] => {
    const ops = method.operations(args, facts);
    asked.operation = auditOperation(ops);
    if (ops.length > 0) asked.resource = ops.map(operationTarget).join(' ');
    return ops;
  };
  let ops: Operation[] | null = null;
  try {
    if (!method.lookup) ops = declare(null as F);
  } catch (err) {
    return rejected(err);
  }
  const policy = await admitted(g, scopeAction, asked, started);
  let facts = null as F;
  if (method.lookup) {
    let lookupArgs: unknown[];
    try {
      lookupArgs = method.lookup.args(args);
    } catch (err) {
      return rejected(err);
    }
    if (method.lookup.before) {
      const first = method.lookup.before(args);
      asked.operation = auditOperation(first);
      asked.resource = first.map(operationTarget).join(' ');
      const problem = badPath(first);
      if (problem) return refused(g, asked, started, 'rejected', EXIT.USAGE, problem);
      let early: Checked | { refusal: string };
      try {
        early = await checkOperations(g, policy, method.name, first, opts);
      } catch (err) {
        return unanswered(g, asked, started, `${method.name}: cannot resolve what it touches on ${g.hostName}`, err, opts);
      }
      if ('refusal' in early) return refused(g, asked, started, 'denied', EXIT.DENIED, early.refusal);
      if (early.decision.effect === 'deny') return refused(g, asked, started, 'denied', EXIT.DENIED, early.decision.reason, early.decision);
    }
    try {
      facts = await g.link.call<never, F>(method.tool, method.lookup.remote, lookupArgs, opts).result;
    } catch (err) {
      return unanswered(g, asked, started, `${method.name}: cannot ask ${g.hostName} before the check`, err, opts);
    }
    try {
      ops = declare(facts);
    } catch (err) {
      return rejected(err);
    }
  }
  const declared = ops as Operation[];
  const problem = badPath(declared);
  if (problem) return refused(g, asked, started, 'rejected', EXIT.USAGE, problem);
  let checked: Checked | { refusal: string };
  try {
    // FileSystem's methods open what was checked without following a symlink: their answers may be reused briefly (resolved.ts).
    checked = await checkOperations(g, policy, method.name, declared, opts, method.tool === FileSystem.readText.tool);
  } catch (err) {
    return unanswered(g, asked, started, `${method.name}: cannot resolve what it touches on ${g.hostName}`, err, opts);
  }
  if ('refusal' in checked) return refused(g, asked, started, 'denied', EXIT.DENIED, checked.refusal);
  const { decision, resolved } = checked;
  if (decision.effect === 'deny') return refused(g, asked, started, 'denied', EXIT.DENIED, decision.reason, decision);
  if (declared.length > 0) asked.resource = checked.resources.join(' ');
  // A call that only reads (every operation it declares is a read, and it declares all it does) is
  // begun while it reads and handed over once that is on disk; anything else is begun before it is sent (auditAction).
  const readsOnly = decision.effect === 'allow' && declared.length > 0 && declared.every((op) => op.kind === 'file.read' || op.kind === 'file.list');
  const audit = await auditAction(g.ctx, { ...asked, decision: decision.effect, rule: ruleText(decision), reason: decision.reason }, readsOnly);
  if (audit.id !== null) {
    const asking = await settleAsk(g.ctx, approvalSubject(g, method.name, asked.argv, declared, resolved), decision, io(g), audit, started);
    if ('refused' in asking) throw new DeniedError(asking.refused.message ?? 'refused', audit.id);
  }
  try {
    const called = async (callArgs: A): Promise<R> => {
      const encoded = method.encode(callArgs, resolved, facts);
      const raw = method.chunked ? await gathered(g.link, method, encoded, opts) : await g.link.call(method.tool, method.remote, encoded, opts).result;
      if (method === (FileSystem.glob as unknown)) globDirsAllowed(policy, raw as Array<[string, string]>);
      return method.decode(raw);
    };
    const part = redactedPartOf(policy, method, args);
    const value = part ? ((await part.read((partArgs) => called(partArgs as A))) as R) : method.content ? redactedContent(policy, await called(args), method.content) : await called(args);
    await audit.finish({ exitCode: EXIT.OK, durationMs: performance.now() - started, bytesOut: sizeOf(value) });
    return value;
  } catch (err) {
    const denied = err instanceof DeniedError;
    const id = await audit.finish({
      exitCode: denied ? EXIT.DENIED : err instanceof RemoteError || err instanceof ResultTypeError ? EXIT.FAILURE : EXIT.TRANSPORT,
      durationMs: performance.now() - started,
      timedOut: err instanceof CallTimeoutError,
      ...(denied ? { refusal: err.message } : { error: errorText(err) }),
    });
    throw denied ? new DeniedError(err.message, id) : err;
  }
}

/** Room for a read's chunks not yet taken here: the host holds the rest back. */
const READ_WINDOW = 8 << 20;

/**
 * A chunked method's value: its result, or the chunks it came in (a large file: readBytes's as Buffers,
 * readText's as text, never longer than its bytes). A host sending more than a read may hand over
 * (READ_MAX) has the call cancelled.
 */
async function gathered(link: Link, method: Pick<Method<never, unknown>, 'tool' | 'remote' | 'name'>, args: unknown[], opts: CallOptions): Promise<unknown> {
  const over = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, over.signal]) : over.signal;
  const call = link.call<string | Buffer>(method.tool, method.remote, args, { ...opts, signal, window: READ_WINDOW });
  const chunks: Array<string | Buffer> = [];
  let size = 0;
  for await (const chunk of call) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > READ_MAX + READ_WINDOW) over.abort(new ProtocolError(`${method.name}: the host sent more than a read hands over (${READ_MAX >> 20} MiB); the call was cancelled`));
  }
  const result = await call.result;
  return chunks.length > 0 ? chunks : result;
}

/**
 * A readBytes of a part (an offset or a length) under a policy that redacts: how to read it so that it is
 * handed over as a read of the whole file hands it over (readPart: a part alone could start inside a key
 * block or cut a secret's line, which redaction sees only whole). null for any other call.
 */
function redactedPartOf(policy: Policy, method: unknown, args: unknown[]): { read: (call: (args: unknown[]) => Promise<unknown>) => Promise<Buffer> } | null {
  if (method !== FileSystem.readBytes) return null;
  const [path, options = {}] = args as [string, { offset?: number; length?: number }?];
  const { offset = 0, length } = options;
  const redaction = outputRedaction(policy);
  if ((offset === 0 && length === undefined) || !redacts(redaction)) return null;
  return {
    read: async (call) => {
      const ranged = async (range: { offset: number; length: number }): Promise<{ content: Buffer }> => ({
        content: (await call([path, { ...options, offset: range.offset, ...(Number.isFinite(range.length) ? { length: range.length } : {}) }])) as Buffer,
      });
      const { available, take } = await readPart(redaction, offset, length ?? Infinity, ranged);
      return take(available);
    },
  };
}

/**
 * What a value hands over of a file (its whole content, text or bytes, or its diff) with the policy's
 * redaction applied, as `cat FILE` would print it (a diff: as it would print the file before and after).
 */
function redactedContent<R>(policy: Policy, value: R, content: 'value' | 'diff'): R {
  const redaction = outputRedaction(policy);
  if (content === 'diff') {
    const edit = value as { diff?: unknown };
    return typeof edit.diff === 'string' ? ({ ...edit, diff: shownDiff(edit.diff, redaction) } as R) : value;
  }
  if (typeof value === 'string') return redactAll(redaction, Buffer.from(value)).toString() as R;
  if (Buffer.isBuffer(value)) return redactAll(redaction, value) as R;
  return value;
}

interface Checked {
  decision: Decision;
  resolved: Resolved;
  /** What each operation was checked on (resolved paths and programs), for the audit. */
  resources: string[];
}

/** Every declared operation decided; paths and programs resolved on the host, in one round each where it can. */
async function checkOperations(g: Guard, policy: Policy, name: string, ops: readonly Operation[], opts: CallOptions, reusePaths = false): Promise<Checked | { refusal: string }> {
  const resolved: Resolved = { paths: {}, programs: {}, path: g.securePath, host: { name: g.hostName, labels: { ...(g.ctx.hostEntry(g.hostName)?.labels ?? {}) } } };
  if (ops.length === 0) return { decision: nothingTouched(policy, name), resolved, resources: [] };
  const commands = ops.filter((op): op is Extract<Operation, { kind: 'exec' }> => op.kind === 'exec');
  const files = ops.filter((op) => op.kind !== 'exec');
  const commandDecisions: Decision[] = [];
  if (commands.length > 0) {
    // The runtime runs these itself, outside any OS sandbox: refused where the policy wants one.
    const enforcement = await runtimeEnforcement(g, policy).catch((err: unknown) => ({ refusal: `${g.hostName}: ${errorText(err)}` }));
    if ('refusal' in enforcement) return enforcement;
    if (enforcement.sandbox) {
      const programs = [...new Set(commands.map((op) => op.argv[0]))].join(', ');
      return { refusal: `policy ${policy.name} runs commands in the OS sandbox, but ${name} runs ${programs} on ${g.hostName} itself, outside it; call it under a policy with sandbox: false` };
    }
    // One list per working directory, one stage per command: a round of answers from the host for all.
    for (const cwd of new Set(commands.map((op) => op.cwd ?? '/'))) {
      const here = commands.filter((op) => (op.cwd ?? '/') === cwd);
      const list: CommandList = { items: here.map((op) => ({ op: null, pipeline: { stages: [{ argv: [...op.argv], redirects: [], pos: 0 }] } })) };
      const d = await decideCommand(g, policy, list, cwd, enforcement, opts);
      // Their output goes to the tool, not to the caller: no write_stdout.
      commandDecisions.push(combine(policy, [{ ...d, checks: d.checks.filter((c) => c.operation !== 'write_stdout') }], d));
      here.forEach((op, i) => {
        const found = d.checks.find((c) => c.operation === 'execute_binary' && c.stage === i);
        if (found) resolved.programs[op.argv[0] as string] = found.resource;
      });
    }
  }
  const ask = (paths: string[]): Promise<Answer[]> => g.link.call<never, Answer[]>(FileSystem.readText.tool, 'resolve', [paths], opts).result;
  const resolve = reusePaths ? (paths: string[]): Promise<Answer[]> => g.resolvedPaths.resolve(paths, ask) : ask;
  const fileDecisions = await Promise.all(
    files.map(async (op) => {
      const { decision, resolved: answer } = await decide(policy, FILE_OPERATIONS[op.kind], op.path, { resolve });
      if ('error' in answer) return decision.effect === 'deny' ? decision : { ...decision, effect: 'deny' as const, reason: `${name} ${op.path}: ${answer.error}` };
      resolved.paths[op.path] = answer.real;
      if (op.kind === 'file.write' && answer.finalLink) {
        return { ...decision, effect: 'deny' as const, reason: `${name} ${op.path}: is a symlink (to ${answer.real}); a write never follows one, name the file itself` };
      }
      const more: Decision[] = [];
      if (op.kind === 'file.write' && op.tree) more.push({ ...decision, checks: treeChecks(policy, answer.real) });
      // What the file held comes back too (a diff): reading it must be allowed as well.
      if (op.kind === 'file.write' && op.reads) {
        const read = (await decide(policy, 'read_file', op.path, { resolve })).decision;
        const why = (c: Check): Check => (c.effect === 'deny' ? { ...c, reason: `${name} returns a diff of what ${answer.real} held, and the policy does not let you read it: ${c.reason}` } : c);
        more.push({ ...read, checks: read.checks.map(why) });
      }
      return more.length > 0 ? combine(policy, [decision, ...more], decision) : decision;
    }),
  );
  const decisions = [...commandDecisions, ...fileDecisions];
  // A refusal a check made itself (a symlink, an unresolvable path) carries no check: it decides first.
  const own = decisions.find((d) => d.effect === 'deny' && !d.checks.some((c) => c.effect === 'deny'));
  const decision = own ?? (decisions.length === 1 ? (decisions[0] as Decision) : combine(policy, decisions, decisions[0] as Decision));
  const resources = ops.map((op) => (op.kind === 'exec' ? [resolved.programs[op.argv[0] as string] ?? op.argv[0], ...op.argv.slice(1)].join(' ') : (resolved.paths[op.path] ?? op.path)));
  return { decision, resolved, resources };
}

/**
 * What an approver is asked: a call with one file operation is that file action (a write only when what
 * it writes is known); any other call is put as the method with its arguments and everything it does.
 */
function approvalSubject(g: Guard, name: string, argv: string[] | null, ops: readonly Operation[], resolved: Resolved): ApprovalSubject {
  const policy = g.policy ? { policy: g.policy } : {};
  const [only] = ops;
  if (ops.length === 1 && only && only.kind !== 'exec' && !(only.kind === 'file.write' && only.content === undefined)) {
    const path = resolved.paths[only.path] ?? only.path;
    return only.kind === 'file.write' ? { kind: 'file.write', host: g.hostName, path, content: only.content as string, ...policy } : { kind: only.kind, host: g.hostName, path, ...policy };
  }
  return { kind: 'exec', host: g.hostName, command: `${(argv ?? [name]).join(' ')} (${describeOperations(ops)})`, ...policy };
}

/** A glob may walk into directories through symlinks: each directory a match is in must be listable too. */
function globDirsAllowed(policy: Policy, matches: Array<[string, string]>): void {
  // The host sent them resolved already.
  const resolver: PathResolver = { realpath: (p, cwd) => posix.resolve(cwd, p), which: () => null };
  for (const dir of new Set(matches.map(([, d]) => d))) {
    const d = evaluatePath(policy, 'list_directory', dir, { cwd: '/', resolver });
    if (d.effect !== 'allow') throw new DeniedError(`FileSystem.glob: a match is in ${dir}, which the policy does not let you list: ${d.reason}`, null);
  }
}

function sizeOf(value: unknown): number {
  if (Buffer.isBuffer(value)) return value.length;
  if (typeof value === 'string') return Buffer.byteLength(value);
  return 0;
}

/**
 * Exec: argv (no shell) checked as the command `client run` would run, then run on the host in its own
 * process group. Output comes as chunks through the policy's output limits and redaction.
 */
export function guardedExec(g: Guard, argv: readonly string[], execOpts: ExecOptions = {}, opts: CallOptions = {}): CallStream<OutputChunk, CallDone> {
  // A consumer that stops iterating cancels the call, as its AbortSignal would: the command is killed, its
  // record closed. So does a failure of its input.
  const stopped = new AbortController();
  const out = new ChunkQueue<OutputChunk, CallDone>({ onAbandon: () => stopped.abort(new Error('the caller stopped reading its output; the command was stopped')) });
  const signal = opts.signal ? AbortSignal.any([opts.signal, stopped.signal]) : stopped.signal;
  runExec(g, argv, execOpts, { ...opts, signal }, out, (why) => stopped.abort(why)).then(
    (done) => out.settle(null, done),
    (err: Error) => out.settle(err),
  );
  return out;
}

async function runExec(g: Guard, argv: readonly string[], execOpts: ExecOptions, opts: CallOptions, out: ChunkQueue<OutputChunk, CallDone>, stop: (why: Error) => void): Promise<CallDone> {
  const started = performance.now();
  try {
    checkExecArgs(argv, execOpts);
  } catch (err) {
    // Plain JavaScript can pass anything: refused as a usage error and audited, nothing sent.
    const command = Array.isArray(argv) ? argv.map((a: unknown) => (typeof a === 'string' ? a : typeof a)).join(' ') : typeof argv === 'string' ? argv : typeof argv;
    const asked = askedFor(g.ctx, { kind: 'exec', host: g.hostName, command, ...(g.policy ? { policy: g.policy } : {}) });
    (err as ArgumentError).actionId = (await refuse(g.ctx, asked, started, 'rejected', EXIT.USAGE, (err as Error).message, null)).actionId;
    throw err;
  }
  const failed: { error: Error | null } = { error: null };
  const input = execInput(execOpts.input, (err) => {
    failed.error ??= new InputFailed(`Exec ${argv.join(' ')}: its input failed (${err.message}); the command was stopped`);
    stop(failed.error);
  });
  try {
    const done = await runChecked(g, argv, execOpts, input.stream, opts, out, started);
    // The sandboxed path answers a command stopped this way with its status (130): the failure is the answer.
    if (failed.error) throw failed.error;
    return done;
  } finally {
    input.done();
  }
}

/**
 * Exec's input as the stream its call reads (null: none, /dev/null), read from only once the command
 * runs. An error of it fails the call (`failed`) rather than passing for its end; done(), once the call
 * is over, lets it go: a caller's stream is left as it is (paused), one made here from bytes or an
 * iterable is destroyed (the iterable's return() runs).
 */
function execInput(input: ExecOptions['input'], failed: (err: Error) => void): { stream: NodeJS.ReadableStream | null; done(): void } {
  if (input === undefined) return { stream: null, done: () => {} };
  const own = typeof input === 'string' || input instanceof Uint8Array ? Readable.from([input], { objectMode: false }) : isReadable(input) ? null : Readable.from(input, { objectMode: false });
  const stream = own ?? (input as NodeJS.ReadableStream);
  const onError = (err: Error): void => failed(err);
  stream.on('error', onError);
  return {
    stream,
    done() {
      stream.removeListener('error', onError);
      if (!own) return;
      // It may still fail as it is torn down (an iterable's return() throwing): nobody is left to tell.
      own.on('error', () => {});
      own.destroy();
    },
  };
}

async function runChecked(g: Guard, argv: readonly string[], execOpts: ExecOptions, stdin: NodeJS.ReadableStream | null, opts: CallOptions, out: ChunkQueue<OutputChunk, CallDone>, started: number): Promise<CallDone> {
  const list: CommandList = { items: [{ op: null, pipeline: { stages: [{ argv: [...argv], redirects: [], pos: 0 }] } }] };
  // As people read it in the audit and approvals (`uname -r`), and as the parser below reads it back.
  const command = renderCommandList(list, 'plain');
  const action: ExecAction = { kind: 'exec', host: g.hostName, command, ...(execOpts.cwd ? { cwd: execOpts.cwd } : {}), ...(g.policy ? { policy: g.policy } : {}) };
  const asked = askedFor(g.ctx, action);
  const policy = await admitted(g, action, asked, started);
  const enforcement = await runtimeEnforcement(g, policy).catch((err: unknown) => ({ refusal: `${g.hostName}: ${errorText(err)}` }));
  if ('refusal' in enforcement) return refused(g, asked, started, 'denied', EXIT.DENIED, enforcement.refusal);
  // The runtime cannot sandbox what it starts: the host runs it, exactly as for `client run`.
  if (enforcement.sandbox) return execOnHost(g, action, stdin, opts, out);
  asked.argv = [...argv];
  // The command as `client run` would parse it: the same checks, from the same parser.
  let parsed: CommandList;
  try {
    parsed = parseCommand(command);
  } catch (err) {
    if (!(err instanceof ParseError)) throw err;
    return refused(g, asked, started, 'rejected', EXIT.USAGE, err.message);
  }
  const cwd = execOpts.cwd ?? g.link.hello?.cwd ?? '/';
  let decision: Decision;
  try {
    decision = await decideCommand(g, policy, parsed, cwd, enforcement, opts);
  } catch (err) {
    return unanswered(g, asked, started, `Exec: cannot resolve the command's paths on ${g.hostName}`, err, opts);
  }
  if (decision.effect === 'deny') return refused(g, asked, started, 'denied', EXIT.DENIED, decision.reason, decision);
  const audit = await auditAction(g.ctx, { ...asked, decision: decision.effect, rule: ruleText(decision), reason: decision.reason }, false);
  const asking = await settleAsk(g.ctx, action, decision, io(g), audit, started);
  if ('refused' in asking) throw new DeniedError(asking.refused.message ?? 'refused', audit.id);
  decision = asking.decision;

  // The output cap stops the command as the executors stop one (TERM, then KILL), not by a cancel: the call
  // still answers how the command ended, which the audit records as perform records it (finishRun).
  const key = randomBytes(8).toString('hex');
  const stopAtCap = (): void => void g.link.call(Exec.command.tool, 'stop', [key]).result.catch(() => {});
  const gate = new OutputGate(decision.output, { stdout: (data) => out.push({ stream: 'stdout', data }, data.length), stderr: (data) => out.push({ stream: 'stderr', data }, data.length) }, stopAtCap);
  const sources = { 1: gate.source('stdout'), 2: gate.source('stderr') };
  const timeoutMs = opts.timeoutMs !== undefined ? opts.timeoutMs : g.ctx.defaultTimeoutMs;
  const remote = g.link.call<[1 | 2, Buffer], { code: number | null; signal: number | null }>(
    Exec.command.tool,
    'run',
    [argv, decision.cwd, g.securePath, stdin !== null, key],
    { ...(opts.signal ? { signal: opts.signal } : {}), timeoutMs, window: STREAM_WINDOW },
    stdin,
  );
  const ended = remote.result.then(
    () => undefined,
    () => undefined,
  );
  try {
    for await (const [fd, data] of remote) {
      sources[fd].write(data);
      // A consumer slower than the command: wait for it, and the host holds the rest back (backpressure),
      // until the call ends anyway (a timeout, a cancel, the output cap).
      await Promise.race([out.room(STREAM_WINDOW), ended]);
    }
    sources[1].end();
    sources[2].end();
    const r = await remote.result;
    const durationMs = performance.now() - started;
    const signal = r.signal === null ? null : signalName(r.signal);
    const result: ExecResult = {
      exitCode: r.code ?? 128 + (r.signal ?? 0),
      signal,
      timedOut: false,
      aborted: false,
      truncated: gate.truncated,
      bytesOut: gate.bytesOut,
      bytesErr: gate.bytesErr,
      durationMs,
      error: null,
      errorKind: null,
    };
    await finishRun(audit, result, decision, undefined, durationMs);
    return { code: r.code, signal: r.signal, truncated: gate.truncated };
  } catch (err) {
    await audit.finish({
      exitCode: null,
      durationMs: performance.now() - started,
      bytesOut: gate.bytesOut,
      bytesErr: gate.bytesErr,
      truncated: gate.truncated,
      timedOut: err instanceof CallTimeoutError,
      error: errorText(err),
    });
    // Named as the caller knows it (as execOnHost does), not by the remote function that ran it.
    if (err instanceof CallTimeoutError) throw new CallTimeoutError(`Exec ${action.command}`, timeoutMs ?? 0);
    throw err;
  }
}

/** A signal's name (SIGTERM) from its number on the host, as the executors name it; null when unknown. */
function signalName(n: number): NodeJS.Signals | null {
  const found = Object.entries(osConstants.signals).find(([, v]) => v === n);
  return found ? (found[0] as NodeJS.Signals) : null;
}

/**
 * The runtime runs programs without the OS sandbox: a policy that sandboxes its commands on this host
 * refuses them here (fail closed), as does a sandboxing policy on a runtime with no inventory host.
 */
async function runtimeEnforcement(g: Guard, policy: Policy): Promise<Enforcement | { refusal: string }> {
  if (policy.sandbox === 'off') return { sandbox: false, why: `policy ${policy.name} has sandbox: false` };
  if (g.host) return enforcementOn(policy, g.host);
  return {
    refusal: `policy ${policy.name} runs commands in the OS sandbox, which a runtime on a process's own pipes cannot provide on ${g.hostName} (only an inventory host's can); use a policy with sandbox: false`,
  };
}

/**
 * Exec under a policy whose commands run in the OS sandbox: through perform, on the host's own
 * transport (the SSH pool, the local spawner, the agent) as `client run` runs it — checked, audited,
 * sandboxed, its output streamed with the same backpressure — since what the runtime starts itself
 * would run outside the sandbox.
 */
async function execOnHost(g: Guard, action: ExecAction, stdin: NodeJS.ReadableStream | null, opts: CallOptions, out: ChunkQueue<OutputChunk, CallDone>): Promise<CallDone> {
  const flow: OutputFlow = { full: () => out.bufferedBytes > STREAM_WINDOW, onRoom: (resume) => void out.room(STREAM_WINDOW).then(resume) };
  const r = await perform(
    g.ctx,
    { ...action, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) },
    {
      onStdout: (data) => out.push({ stream: 'stdout', data }, data.length),
      onStderr: (data) => out.push({ stream: 'stderr', data }, data.length),
      flow,
      stdin,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(g.approve ? { approve: g.approve } : {}),
    },
  );
  const message = r.message ?? r.outcome;
  switch (r.outcome) {
    case 'denied':
    case 'rejected':
    case 'rate_limited':
      throw refusalError(r.outcome, message, r.actionId, r.decision ?? null);
    case 'unreachable':
      throw new ProtocolError(`${g.hostName}: ${message}`);
    case 'error':
      throw new Error(message);
  }
  if (r.timedOut) throw new CallTimeoutError(`Exec ${action.command}`, opts.timeoutMs ?? g.ctx.defaultTimeoutMs ?? 0);
  const signal = r.signal ? (osConstants.signals[r.signal] ?? null) : null;
  return { code: signal === null ? r.exitCode : null, signal, truncated: r.truncated };
}

/** evaluate() with every path and program it asks about answered by the runtime on the host, in rounds. */
async function decideCommand(g: Guard, policy: Policy, list: CommandList, cwd: string, enforcement: Enforcement, opts: CallOptions): Promise<Decision> {
  const paths = new Map<string, Answer>();
  const programs = new Map<string, string | null>();
  for (let round = 0; ; round++) {
    const missingPaths = new Set<string>();
    const missingPrograms = new Set<string>();
    const resolver: PathResolver = {
      realpath(p, base) {
        const abs = posix.resolve(base, p);
        const known = paths.get(abs);
        if (known === undefined) {
          missingPaths.add(abs);
          return abs;
        }
        if ('error' in known) throw new ResolveError(known.error);
        return known.real;
      },
      which(name) {
        if (!programs.has(name)) {
          const cached = g.whichCache.get(name);
          if (cached === undefined) missingPrograms.add(name);
          else programs.set(name, cached);
        }
        return programs.get(name) ?? null;
      },
    };
    const decision = evaluate(policy, list, { cwd, resolver, enforcement });
    if ((missingPaths.size === 0 && missingPrograms.size === 0) || round >= MAX_RESOLVE_ROUNDS) return decision;
    const askPaths = [...missingPaths];
    const askPrograms = [...missingPrograms];
    const [pathAnswers, programAnswers] = await Promise.all([
      askPaths.length > 0 ? g.link.call<never, Answer[]>(FileSystem.readText.tool, 'resolve', [askPaths], opts).result : [],
      askPrograms.length > 0 ? g.link.call<never, Array<string | null>>(Exec.command.tool, 'which', [askPrograms, g.securePath], opts).result : [],
    ]);
    pathAnswers.forEach((a, i) => paths.set(askPaths[i] as string, a));
    programAnswers.forEach((a, i) => {
      programs.set(askPrograms[i] as string, a);
      g.whichCache.set(askPrograms[i] as string, a);
    });
  }
}

/**
 * A runtime started in another interpreter than the host's python3 (`remux rpc --python`, connect()'s
 * `python`): that program runs before any call, whatever the calls are, so it is checked first as
 * `client run` checks running it (the principal's scope, execute_binary of what it is on the host under
 * the call's policy; it runs outside any sandbox, so only a rule that allows it outright admits it) and
 * audited. A refusal is audited and thrown (DeniedError): nothing is started.
 */
export async function admitInterpreter(ctx: PerformContext, hostName: string, python: string, policyName?: string): Promise<void> {
  const started = performance.now();
  const list: CommandList = { items: [{ op: null, pipeline: { stages: [{ argv: [python], redirects: [], pos: 0 }] } }] };
  const action: ExecAction = { kind: 'exec', host: hostName, command: renderCommandList(list), ...(policyName !== undefined ? { policy: policyName } : {}) };
  const asked: Asked = { ...askedFor(ctx, action), argv: [python] };
  const refusal = async (outcome: Outcome, exitCode: number, message: string, decision: Decision | null = null): Promise<never> => {
    const r = await refuse(ctx, asked, started, outcome, exitCode, `the runtime's interpreter ${python}: ${message}`, decision);
    throw refusalError(outcome, `the runtime's interpreter ${python}: ${message}`, r.actionId);
  };
  const p = scopedPolicy(ctx, action, asked);
  if (!p.ok) return refusal(p.outcome, p.exitCode, p.reason);
  const policy = p.policy;
  let decision: Decision;
  try {
    const host = ctx.host(hostName);
    const cwd = host.defaultCwd(undefined, null);
    const resolver = host.resolverFor ? await host.resolverFor(policy, list, cwd) : host.resolver;
    decision = runningOnly(evaluate(policy, list, { cwd, resolver, enforcement: { sandbox: false, why: "the runtime's interpreter runs outside the sandbox" } }));
  } catch (err) {
    return refusal('unreachable', EXIT.TRANSPORT, errorText(err));
  }
  if (decision.effect === 'deny') return refusal('denied', EXIT.DENIED, decision.reason, decision);
  if (decision.effect === 'ask') return refusal('denied', EXIT.DENIED, `${decision.reason}; an interpreter the runtime starts in needs a rule that allows it outright`, decision);
  await ctx.audit.record(
    { ...asked, decision: 'allow', rule: ruleText(decision), reason: `the runtime starts in it: ${decision.reason}` },
    { exitCode: EXIT.OK, durationMs: performance.now() - started },
  );
}

/** A decision on running the program alone: what the interpreter writes is the protocol, which no write_stdout rule bounds. */
function runningOnly(decision: Decision): Decision {
  const checks = decision.checks.filter((c) => c.operation !== 'write_stdout');
  const decisive = checks.find((c) => c.effect === 'deny') ?? checks.find((c) => c.effect === 'ask');
  if (!decisive) return { ...decision, effect: 'allow', rule: null, reason: `allowed: all ${checks.length} checks pass under policy ${decision.policy}`, checks };
  return { ...decision, effect: decisive.effect, rule: decisive.rule, reason: decisive.reason, checks };
}

/**
 * A custom tool's method (ToolMethod): checked and audited exactly as a built-in one (guardedCall), with
 * its arguments parsed by its declared types first (a bad one is refused and audited), its declared
 * operations plus running the interpreter its Python runs in (the caller's code), and its value checked
 * by its declared result type. Its Python gets the arguments as given.
 */
export function guardedToolCall<A extends unknown[], R>(g: Guard, method: ToolMethod<A, R>, raw: unknown[], opts: CallOptions = {}): Promise<R> {
  let parsed: A | undefined;
  const args = (): A => (parsed ??= method.parseArgs(raw));
  const interpreter: Operation[] = method.runsCallerCode ? [{ kind: 'exec', argv: [g.python] }] : [];
  const asBuiltIn: Method<unknown[], R, null> = {
    tool: method.tool,
    name: method.name,
    remote: method.remote,
    operations: () => [...method.operations(...args()), ...interpreter],
    encode: () => args(),
    decode: (value) => method.decode(value),
  };
  return guardedCall(g, asBuiltIn, raw, opts);
}
