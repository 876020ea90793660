// `remux rpc HOSTS Tool.method ARGS…`: one runtime call per host (src/runtime), through a running daemon
// (forwarded like `client run`) or in this process; with --tools FILE, also a custom tool's method (always
// in this process: rpc-tools.ts).
import { quoteWord } from '../command/render.js';
import { EXIT } from '../core/exit-codes.js';
import { nearName } from '../core/spelling.js';
import type * as RuntimeModule from '../runtime/index.js';
import type { FanoutResults, HostResult, RuntimeHost } from '../runtime/index.js';
import { rateLimitedMessage } from '../hosts/rate-limit.js';
import { isSingleHostName, selectionFailureExit } from '../hosts/selectors.js';
import type { Runner } from './client-commands.js';
import { approverFor, checkPolicyOption, timeoutMs } from './client-commands.js';
import { readAll } from './file-commands.js';
import { loadTools } from './rpc-tools.js';
import type { RpcOptions } from './commands/rpc.js';
import type { Invocation } from './invocation.js';
import { UsageError, visible } from './output.js';

type Runtime = typeof RuntimeModule;

/** writeText's command line: the path, then options (its content comes on stdin). */
const WRITE_TEXT: RuntimeModule.CliSpec = { positional: ['path'], options: { mode: 'mode', owner: 'string', group: 'string', diff: 'boolean' } };

/** Stdin beyond this is refused for writeText (the file actions' write cap). */
const WRITE_MAX_BYTES = 16 << 20;

export async function rpcCommand(inv: Invocation, runner: Runner, target: string, methodName: string, args: string[], opts: RpcOptions): Promise<number> {
  const runtime = await import('../runtime/index.js');
  const custom = opts.tools !== undefined && opts.tools.length > 0 ? await customCall(runtime, inv, methodName, args, opts) : null;
  if (!custom && opts.argsJson !== undefined) throw new UsageError('--args-json gives the arguments of a custom tool\'s method (one from --tools FILE)');
  const method = runtime.METHODS[methodName];
  if (!method && !custom) throw unknownMethod(methodName, target, Object.keys(runtime.METHODS));
  const isExec = method !== undefined && 'exec' in method;
  // Methods with a command-line shape (Service, User, Apt, Template, …) take positionals and --options by it.
  const spec = method && 'cli' in method ? method.cli : undefined;
  // writeText's line says what it did as the other edits' do (lineInFile, Template.file), then its --diff.
  const print = spec?.print ?? (methodName === 'FileSystem.writeText' ? (await import('../runtime/method.js')).editOutcome : undefined);
  const words = custom ? args : withMode(methodName, methodName === 'FileSystem.writeText' || spec?.options?.mode !== undefined, args, opts.mode);
  const parsed = spec ? asUsage(runtime, () => callArgs(runtime, methodName, spec, words, inv.cwd)) : null;
  if (!custom && isExec && args.length === 0) throw new UsageError(`${methodName} needs a command: remux rpc HOST ${methodName} -- PROGRAM ARGS…`);
  // writeText takes its path and options as words, its content on stdin.
  const written = !custom && methodName === 'FileSystem.writeText' ? asUsage(runtime, () => runtime.parseCallArgs(methodName, WRITE_TEXT, words)) : null;
  // As `client run`: 0 is no limit; none given is the configured one (exec.timeout_seconds), for every method.
  const givenTimeoutMs = timeoutMs(opts);
  const content = methodName === 'FileSystem.writeText' ? (await readAll(stdinOf(inv, methodName), WRITE_MAX_BYTES)).toString('utf8') : null;
  // As `client run` on one named host (and ssh), Exec there reads the caller's stdin when it is a pipe or
  // a file, streamed as the command reads it (never waited for: the command's exit ends the call); on
  // several hosts stdin is no one's.
  const execOpts = isExec && isSingleHostName(target) && inv.stdin !== null ? { input: inv.stdin } : {};
  try {
    const { contextFor } = await import('../core/context.js');
    const ctx = contextFor(await runner.context(target), inv.env);
    await checkPolicyOption(ctx, opts.policy);
    const admitted = await runner.admit(ctx);
    if (!admitted.ok) {
      inv.stderr.write(`remux: ${rateLimitedMessage(admitted.retryInMs)}\n`);
      return EXIT.RATE_LIMITED;
    }
    const controller = new AbortController();
    // Each host's call ends with this reason, which its line then says, as `client run`'s do.
    const release = inv.onInterrupt((why) => controller.abort(why ?? new Error('interrupted')));
    const single = isSingleHostName(target);
    // As `client run`: a terminal asks its user; anywhere else (a script, writeText's stdin) an ask becomes an approval.
    const approve = await approverFor(inv, ctx, controller.signal);
    const callOpts = { signal: controller.signal, timeoutMs: givenTimeoutMs === undefined ? ctx.defaultTimeoutMs : givenTimeoutMs };

    // What one host does; the value is what render() prints. Exec's own exit status is its outcome.
    const callOn = async (host: RuntimeHost): Promise<unknown> => {
      if (custom) return host.callWith(callOpts, custom.method, ...custom.args);
      if (methodName === 'Exec.stream') {
        const stream = host.stream(args, execOpts, callOpts);
        for await (const c of stream) {
          // --json: every line of stdout is a JSON object, output as it comes included.
          if (opts.json) inv.stdout.write(`${JSON.stringify({ host: host.name, stream: c.stream, data: c.data.toString() })}\n`);
          else (c.stream === 'stdout' ? inv.stdout : inv.stderr).write(single ? c.data : prefixed(host.name, c.data));
        }
        return stream.result;
      }
      // Printed as it came, bytes (--json: the SDK's strings).
      if (methodName === 'Exec.command') return opts.json ? host.exec(args, execOpts, callOpts) : captured(host.stream(args, execOpts, callOpts));
      const m = method as typeof runtime.FileSystem.readText;
      const callArgs = parsed ?? [written?.[0], content, written?.[1]];
      return host.callWith(callOpts, m as never, ...(callArgs as never[]));
    };

    const logs = logLines(inv);
    let results: FanoutResults<unknown>;
    try {
      results = await runtime.fanout(target, callOn, {
        context: ctx,
        securePath: ctx.config.exec.secure_path,
        ...(opts.python ? { python: opts.python } : {}),
        ...(opts.policy ? { policy: opts.policy } : {}),
        approve,
        onLog: logs.write,
        onProgress: (r) => render(inv, r, methodName, print, opts.json === true, single, () => denialHint(runtime, r, methodName, isExec ? args : null)),
      });
    } catch (err) {
      // A selector that picks no host is the caller's mistake, exiting as `client run`'s does.
      if ((err as Error).name !== 'InventoryError') throw err;
      inv.stderr.write(`remux: ${(err as Error).message}\n`);
      return selectionFailureExit(target);
    } finally {
      release();
      logs.end();
    }
    const codes = results.map((r) => exitCodeOf(runtime, r, controller.signal.aborted));
    if (single) return codes[0] ?? EXIT.FAILURE;
    // A command that ran but exited non-zero is a failure of its host.
    const exitedBadly = results.filter((r, i) => r.ok && codes[i] !== EXIT.OK).length;
    const s = { ...results.summary, ok: results.summary.ok - exitedBadly, failed: results.summary.failed + exitedBadly };
    // The SDK's summary (`hosts` too: what this line said before it had every kind).
    if (opts.json) inv.stdout.write(`${JSON.stringify({ summary: { ...s, hosts: s.total } })}\n`);
    else inv.stderr.write(`${s.total} host${s.total === 1 ? '' : 's'}: ${s.changed} changed, ${s.ok} ok, ${s.failed} failed, ${s.denied} denied, ${s.unreachable} unreachable\n`);
    if (codes.every((c) => c === EXIT.OK)) return EXIT.OK;
    if (controller.signal.aborted) return EXIT_INTERRUPTED;
    if (s.unreachable > 0) return EXIT.TRANSPORT;
    if (s.denied > 0) return EXIT.DENIED;
    return EXIT.FAILURE;
  } finally {
    await runner.close();
  }
}

/** An unknown method, and what the caller most likely meant: the hosts and the method the other way round, or a near spelling. */
function unknownMethod(name: string, target: string, known: string[]): UsageError {
  const message = `unknown method "${name}" (known: ${known.join(', ')})`;
  if (known.includes(target)) return new UsageError(message, `the hosts come first: remux rpc HOSTS ${target} ${name} …`);
  const near = nearName(name, known);
  return new UsageError(message, near ? `did you mean ${near}?` : undefined);
}

/**
 * --mode is rpc's own option (commander takes it from any method's words): it goes back among the words
 * of a method with a mode in its shape (a custom tool's too); any other refuses it.
 */
function withMode(methodName: string, takesMode: boolean, words: string[], mode: string | undefined): string[] {
  if (mode === undefined) return words;
  if (!takesMode) throw new UsageError(`${methodName} takes no --mode (it is the mode of what FileSystem.writeText, lineInFile, ensureDirectory and Template.file write, or a custom tool's mode option)`);
  return [...words, '--mode', mode];
}

/** A method's arguments by its command-line shape, rpc's --mode in its options (a mode the shape declares). */
function callArgs(runtime: Runtime, methodName: string, spec: RuntimeModule.CliSpec, words: string[], cwd: string): unknown[] {
  const parsed = runtime.parseCallArgs(methodName, spec, words);
  return spec.toArgs ? spec.toArgs(parsed, cwd) : parsed;
}

/** A method's arguments from the command line; arguments it refuses are a usage error. */
function asUsage<T>(runtime: Runtime, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof runtime.ArgumentError) throw new UsageError(err.message);
    throw err;
  }
}

/**
 * A custom tool's method (--tools) and its arguments from the words, or --args-json; null for a built-in
 * method (callable beside them). An unknown one lists what the files and the built-ins have.
 */
async function customCall(runtime: Runtime, inv: Invocation, methodName: string, args: string[], opts: RpcOptions): Promise<{ method: RuntimeModule.ToolMethod<unknown[], unknown>; args: unknown[] } | null> {
  const builtIn = Object.keys(runtime.METHODS);
  const methods = await loadTools(opts.tools ?? [], inv.cwd, builtIn);
  const found = methods.get(methodName);
  if (!found) {
    if (builtIn.includes(methodName)) return null;
    const tool = methodName.includes('.') ? methodName.slice(0, methodName.indexOf('.')) : methodName;
    const its = [...methods.keys()].filter((m) => m.startsWith(`${tool}.`));
    if (its.length > 0) throw new UsageError(`${tool} has no method "${methodName.slice(tool.length + 1)}" (its methods: ${its.join(', ')})`);
    throw new UsageError(`unknown method "${methodName}" (from --tools: ${[...methods.keys()].join(', ')}; built in: ${builtIn.join(', ')})`);
  }
  const { cliShape, customCallArgs } = await import('../runtime/custom-cli.js');
  const shape = cliShape(found.args);
  const words = withMode(methodName, 'options' in shape && shape.options?.mode !== undefined, args, opts.mode);
  return { method: found.method, args: asUsage(runtime, () => customCallArgs(methodName, found.args, words, opts.argsJson)) };
}

/**
 * One host's exit status, as `client run` gives it: Exec's own (128+N for a command killed by signal N),
 * 124 for a call past its timeout, 130 once interrupted, 0 for any other value, 2 for arguments or a
 * command the method refused (a template error included), else the kind of failure's.
 */
function exitCodeOf(runtime: Runtime, r: HostResult<unknown>, interrupted: boolean): number {
  if (interrupted) return EXIT_INTERRUPTED;
  if (!r.ok) {
    // A template the host cannot render is a bad argument too, as for `remux template render`.
    if (r.error instanceof runtime.ArgumentError || (r.error instanceof runtime.RemoteError && r.error.type === 'TemplateError')) return EXIT.USAGE;
    if (r.error instanceof runtime.CallTimeoutError) return EXIT_TIMED_OUT;
    return r.kind === 'denied' ? EXIT.DENIED : r.kind === 'unreachable' ? EXIT.TRANSPORT : EXIT.FAILURE;
  }
  const v = r.value as { code?: unknown; signal?: unknown; truncated?: unknown } | null;
  if (typeof v !== 'object' || v === null || !('truncated' in v && 'code' in v)) return EXIT.OK;
  if (typeof v.code === 'number') return v.code;
  return typeof v.signal === 'number' ? 128 + v.signal : EXIT.FAILURE;
}

/** sh's statuses for a command past its timeout (as timeout(1) says) and one interrupted (SIGINT). */
const EXIT_TIMED_OUT = 124;
const EXIT_INTERRUPTED = 130;

function errorJson(err: Error): { type: string; message: string; errno: number | null } {
  const e = err as Error & { type?: unknown; errno?: unknown };
  return { type: typeof e.type === 'string' ? e.type : e.name, message: e.message, errno: typeof e.errno === 'number' ? e.errno : null };
}

/**
 * How to see why a host refused the call, as `client run`'s denial says it: a command's `policy check`
 * line (`command`: Exec's words), else the operation and path the policy denied, under which rule.
 */
function denialHint(runtime: Runtime, r: HostResult<unknown>, method: string, command: readonly string[] | null): string {
  const decision = !r.ok && r.error instanceof runtime.DeniedError ? r.error.decision : null;
  // Refused by the principal's scope or an approver: no rule to look at.
  if (decision === null) return "hint: `remux policy show NAME` lists a policy's rules; call with --policy NAME to use another one\n";
  if (command !== null) return `hint: see why with \`remux policy check ${decision.policy} -- ${quoteWord(command.map(quoteWord).join(' '))}\`\n`;
  const denied = decision.checks.find((c) => c.effect === decision.effect);
  const what = denied ? `${denied.operation} ${denied.resource}` : method;
  const rule = decision.rule ? `rule #${decision.rule.index} at ${decision.rule.source.file}:${decision.rule.source.line}` : 'no rule allows it';
  return `hint: ${method} asks for ${what}, which policy ${decision.policy} denies (${rule}): see its rules with \`remux policy show ${decision.policy}\`, or call with --policy NAME to use another one\n`;
}

function render(inv: Invocation, r: HostResult<unknown>, method: string, print: RuntimeModule.CliSpec['print'], json: boolean, single: boolean, hint: () => string): void {
  const host = r.host;
  if (json) {
    const value = r.ok && Buffer.isBuffer(r.value) ? r.value.toString('base64') : r.ok ? r.value : undefined;
    inv.stdout.write(`${JSON.stringify(r.ok ? { host, ok: true, value } : { host, ok: false, kind: r.kind, error: errorJson(r.error) })}\n`);
    return;
  }
  if (!r.ok) {
    inv.stderr.write(`${single ? 'remux' : host}: ${r.error.message}\n`);
    if (single && r.kind === 'denied') inv.stderr.write(hint());
    return;
  }
  const v = r.value;
  let text: string | Buffer;
  if (method === 'Exec.stream') return;
  if (method === 'Exec.command') {
    const x = v as Captured;
    for (const [sink, pieces] of [[inv.stdout, x.stdout], [inv.stderr, x.stderr]] as const) {
      if (!single) sink.write(prefixed(host, Buffer.concat(pieces)));
      else for (const piece of pieces) sink.write(piece);
    }
    return;
  }
  if (print) text = print(v as never);
  // A method with nothing to say (Logger.log, a custom tool's None): no line of `null`.
  else if (v === null || v === undefined) return;
  else if (Buffer.isBuffer(v) || typeof v === 'string') text = v;
  // A line each: a name with a newline or an escape in it (a glob's match) must not forge a line or drive the terminal.
  else if (Array.isArray(v)) text = v.map((x) => `${visible(String(x))}\n`).join('');
  else text = `${JSON.stringify(v)}\n`;
  inv.stdout.write(single ? text : prefixed(host, Buffer.from(text)));
}

/**
 * Hosts' log records as lines on stderr. Nothing holds a host's records back (a tool, or a compromised
 * host, may send them without end): while the caller does not read what is written (through a daemon,
 * its socket), they are left out and counted, rather than held in memory, and the count is said.
 */
function logLines(inv: Invocation): { write(host: string, r: RuntimeModule.LogRecord): void; end(): void } {
  let left = 0;
  const sayLeft = (): void => {
    if (left > 0) inv.stderr.write(`remux: ${left} log record${left === 1 ? '' : 's'} left out while the output was not read\n`);
    left = 0;
  };
  return {
    write: (host, r) => {
      if (inv.outputFlow?.full()) {
        left += 1;
        return;
      }
      sayLeft();
      inv.stderr.write(`${host}: ${r.level} ${r.name}: ${r.msg}\n`);
    },
    end: sayLeft,
  };
}

/** Exec.command's output for the terminal: its bytes as they came, each stream printed whole once the command is over. */
type Captured = RuntimeModule.CallDone & { stdout: Buffer[]; stderr: Buffer[] };

/**
 * Exec.command's output kept as the chunks it came in: not joined, decoded to a string and encoded back
 * as host.exec() would have it (three copies of it, the most of a large output's time and memory).
 */
async function captured(stream: RuntimeModule.CallStream<RuntimeModule.OutputChunk, RuntimeModule.CallDone>): Promise<Captured> {
  const out: Captured = { code: null, signal: null, truncated: false, stdout: [], stderr: [] };
  for await (const c of stream) out[c.stream].push(c.data);
  return Object.assign(out, await stream.result);
}

function prefixed(host: string, data: Buffer): string {
  const text = data.toString();
  if (text === '') return '';
  return text.replace(/\n$/, '').split('\n').map((line) => `${host}: ${line}\n`).join('');
}

/** The content of a write: the caller's stdin when it is a pipe or a file (through the daemon too). */
function stdinOf(inv: Invocation, methodName: string): NodeJS.ReadableStream {
  // A terminal or /dev/null is not read (nor forwarded to a daemon): only a pipe or a file is content.
  if (inv.stdin === null) throw new UsageError(`${methodName} reads the content from stdin, a pipe or a file (not a terminal or /dev/null): remux rpc HOST ${methodName} PATH < file; for an empty file, printf '' | remux rpc …`);
  return inv.stdin;
}

