// `remux rpc HOSTS Tool.method ARGS…`: one runtime call per host (src/runtime), in this process.
import { EXIT } from '../core/exit-codes.js';
import type * as RuntimeModule from '../runtime/index.js';
import { rateLimitedMessage } from '../hosts/rate-limit.js';
import { isSingleHostName } from '../hosts/selectors.js';
import type { Runner } from './client-commands.js';
import { approver } from './client-commands.js';
import { readAll } from './file-commands.js';
import type { RpcOptions } from './commands/rpc.js';
import type { Invocation } from './invocation.js';
import { UsageError } from './output.js';

type Runtime = typeof RuntimeModule;

/** Stdin beyond this is refused for writeText (the file actions' write cap). */
const WRITE_MAX_BYTES = 16 << 20;

type Outcome = { ok: true; value: unknown; exitCode: number } | { ok: false; kind: 'failed' | 'denied' | 'unreachable'; error: { type: string; message: string; errno: number | null }; exitCode: number };

export async function rpcCommand(inv: Invocation, runner: Runner, target: string, methodName: string, args: string[], opts: RpcOptions): Promise<number> {
  const runtime = await import('../runtime/index.js');
  const method = runtime.METHODS[methodName];
  if (!method) throw new UsageError(`unknown method "${methodName}" (known: ${Object.keys(runtime.METHODS).join(', ')})`);
  const isExec = 'exec' in method;
  // Methods with a command-line shape (Service, User, Apt, …) take positionals and --options by it.
  const spec = 'cli' in method ? method.cli : undefined;
  const parsed = spec ? cliArgs(runtime, methodName, spec, args) : null;
  if (!spec && (isExec ? args.length === 0 : args.length !== 1)) {
    throw new UsageError(isExec ? `${methodName} needs a command: remux rpc HOST ${methodName} -- PROGRAM ARGS…` : `${methodName} takes one path, got ${args.length} arguments`);
  }
  const timeoutMs = opts.timeout === undefined ? undefined : seconds(opts.timeout);
  const mode = opts.mode === undefined ? undefined : octal(opts.mode);
  const content = methodName === 'FileSystem.writeText' ? (await readAll(process.stdin, WRITE_MAX_BYTES)).toString('utf8') : null;
  try {
    const { contextFor } = await import('../core/context.js');
    const ctx = contextFor(await runner.context(target), inv.env);
    const admitted = runner.admit(ctx);
    if (!admitted.ok) {
      inv.stderr.write(`remux: ${rateLimitedMessage(admitted.retryInMs)}\n`);
      return EXIT.RATE_LIMITED;
    }
    const hosts = isSingleHostName(target) ? [target] : ctx.registry.select(target, ctx.principal);
    await ctx.registry.prepare(hosts);
    const controller = new AbortController();
    const release = inv.onInterrupt(() => controller.abort());
    const single = hosts.length === 1 && isSingleHostName(target);
    const ask = inv.stdinIsTTY && inv.stderrIsTTY && content === null ? approver(inv, controller.signal) : null;
    const callOpts = { signal: controller.signal, ...(timeoutMs !== undefined ? { timeoutMs } : {}) };

    const callOn = async (name: string): Promise<Outcome> => {
      let host: Awaited<ReturnType<typeof runtime.connect>> | null = null;
      try {
        host = await runtime.connect(name, {
          context: ctx,
          securePath: ctx.config.exec.secure_path,
          ...(opts.python ? { python: opts.python } : {}),
          ...(opts.policy ? { policy: opts.policy } : {}),
          ...(ask ? { approve: ask } : {}),
          onLog: (r) => inv.stderr.write(`${name}: ${r.level} ${r.name}: ${r.msg}\n`),
        });
        if (methodName === 'Exec.stream') {
          const stream = host.stream(args, {}, callOpts);
          for await (const c of stream) {
            const sink = c.stream === 'stdout' ? inv.stdout : inv.stderr;
            sink.write(single ? c.data : prefixed(name, c.data));
          }
          const done = await stream.result;
          return { ok: true, value: done, exitCode: done.code ?? EXIT.FAILURE };
        }
        if (methodName === 'Exec.command') {
          const r = await host.exec(args, {}, callOpts);
          return { ok: true, value: r, exitCode: r.code ?? EXIT.FAILURE };
        }
        const m = method as typeof runtime.FileSystem.readText;
        const callArgs = parsed ?? (methodName === 'FileSystem.writeText' ? [args[0], content, mode === undefined ? {} : { mode }] : [args[0]]);
        const value = await host.callWith(callOpts, m as never, ...(callArgs as never[]));
        return { ok: true, value, exitCode: EXIT.OK };
      } catch (err) {
        return failure(runtime, err);
      } finally {
        await host?.close();
      }
    };

    const results = new Map<string, Outcome>();
    const concurrency = Math.max(1, ctx.config.fanout.concurrency);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < hosts.length) {
        const name = hosts[next++] as string;
        const outcome = await callOn(name);
        results.set(name, outcome);
        render(inv, name, methodName, outcome, opts.json === true, single);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(concurrency, hosts.length) }, worker));
    } finally {
      release();
    }
    const all = [...results.values()];
    if (single) return all[0]?.exitCode ?? EXIT.FAILURE;
    const count = (p: (o: Outcome) => boolean): number => all.filter(p).length;
    const changed = count((o) => o.ok && isChanged(o.value));
    const ok = count((o) => o.ok && o.exitCode === 0);
    const summary = `${hosts.length} hosts: ${changed} changed, ${ok} ok, ${count((o) => (!o.ok && o.kind === 'failed') || (o.ok && o.exitCode !== 0))} failed, ${count((o) => !o.ok && o.kind === 'denied')} denied, ${count((o) => !o.ok && o.kind === 'unreachable')} unreachable`;
    if (opts.json) inv.stdout.write(`${JSON.stringify({ summary: { hosts: hosts.length, changed, ok, failed: hosts.length - ok } })}\n`);
    else inv.stderr.write(`${summary}\n`);
    if (all.every((o) => o.exitCode === 0)) return EXIT.OK;
    if (all.some((o) => !o.ok && o.kind === 'unreachable')) return EXIT.TRANSPORT;
    if (all.some((o) => !o.ok && o.kind === 'denied')) return EXIT.DENIED;
    return EXIT.FAILURE;
  } finally {
    await runner.close();
  }
}

function cliArgs(runtime: Runtime, methodName: string, spec: RuntimeModule.CliSpec, args: string[]): unknown[] {
  try {
    return runtime.parseCallArgs(methodName, spec, args);
  } catch (err) {
    if (err instanceof runtime.ArgumentError) throw new UsageError(err.message);
    throw err;
  }
}

function failure(runtime: Runtime, err: unknown): Outcome {
  if (err instanceof runtime.ArgumentError) return { ok: false, kind: 'failed', error: { type: 'ArgumentError', message: err.message, errno: null }, exitCode: EXIT.USAGE };
  if (err instanceof runtime.DeniedError) return { ok: false, kind: 'denied', error: { type: 'DeniedError', message: err.message, errno: null }, exitCode: EXIT.DENIED };
  if (err instanceof runtime.RemoteError) return { ok: false, kind: 'failed', error: { type: err.type, message: err.message, errno: err.errno }, exitCode: EXIT.FAILURE };
  const e = err instanceof Error ? err : new Error(String(err));
  if (e instanceof runtime.CallTimeoutError) return { ok: false, kind: 'failed', error: { type: e.name, message: e.message, errno: null }, exitCode: EXIT.FAILURE };
  return { ok: false, kind: 'unreachable', error: { type: e.name, message: e.message, errno: null }, exitCode: EXIT.TRANSPORT };
}

function isChanged(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { changed?: unknown }).changed === true;
}

function render(inv: Invocation, host: string, method: string, o: Outcome, json: boolean, single: boolean): void {
  if (json) {
    const value = o.ok && Buffer.isBuffer(o.value) ? o.value.toString('base64') : o.ok ? o.value : undefined;
    inv.stdout.write(`${JSON.stringify(o.ok ? { host, ok: true, value } : { host, ok: false, error: o.error })}\n`);
    return;
  }
  if (!o.ok) {
    inv.stderr.write(`${single ? 'remux' : host}: ${o.error.message}\n`);
    return;
  }
  const v = o.value;
  let text: string | Buffer;
  if (method === 'Exec.stream') return;
  if (method === 'Exec.command') {
    const r = v as { stdout: string; stderr: string };
    inv.stdout.write(single ? r.stdout : prefixed(host, Buffer.from(r.stdout)));
    inv.stderr.write(single ? r.stderr : prefixed(host, Buffer.from(r.stderr)));
    return;
  }
  if (Buffer.isBuffer(v) || typeof v === 'string') text = v;
  else if (Array.isArray(v)) text = v.map((x) => `${String(x)}\n`).join('');
  else text = `${JSON.stringify(v)}\n`;
  inv.stdout.write(single ? text : prefixed(host, Buffer.from(text)));
}

function prefixed(host: string, data: Buffer): string {
  const text = data.toString();
  if (text === '') return '';
  return text.replace(/\n$/, '').split('\n').map((line) => `${host}: ${line}\n`).join('');
}

function seconds(text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || n <= 0) throw new UsageError(`--timeout must be a positive number of seconds, got "${text}"`);
  return n * 1000;
}

function octal(text: string): number {
  if (!/^0?[0-7]{3,4}$/.test(text)) throw new UsageError(`--mode must be an octal mode such as 0644, got "${text}"`);
  return parseInt(text, 8);
}
