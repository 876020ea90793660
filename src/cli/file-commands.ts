// `remux client read|write|ls`: one file action on one host through perform() (core/perform-file.ts).
// They go to a running daemon like `client run`; write's content is its stdin, forwarded to the daemon
// as `client run` forwards it (a terminal's is read in this process).
import { isUtf8 } from 'node:buffer';
import { EXIT } from '../core/exit-codes.js';
import type { FileAction, PerformResult } from '../core/types.js';
import { rateLimitedMessage } from '../hosts/rate-limit.js';
import { isSingleHostName } from '../hosts/selectors.js';
import type { DirEntry } from '../hosts/types.js';
import { approver, type Runner } from './client-commands.js';
import type { FileEditOptions, FileListOptions, FileReadOptions, FileWriteOptions } from './commands/client.js';
import type { Invocation } from './invocation.js';
import { formatTable, UsageError, utcCell } from './output.js';

/** Stdin beyond this is refused, and a read cap above it (perform-file's FILE_WRITE_MAX_BYTES and FILE_READ_MAX_BYTES; kept here so the CLI stays light). */
const WRITE_MAX_BYTES = 16 << 20;
const READ_MAX_BYTES = 16 << 20;

export function readFileCommand(inv: Invocation, runner: Runner, host: string, path: string, opts: FileReadOptions): Promise<number> {
  const action: FileAction = {
    kind: 'file.read',
    host,
    path,
    ...(opts.offset !== undefined ? { offset: count(opts.offset, '--offset') } : {}),
    ...(opts.length !== undefined ? { length: count(opts.length, '--length') } : {}),
    ...(opts.maxBytes !== undefined ? { maxBytes: count(opts.maxBytes, '--max-bytes', 'bytes', 1, READ_MAX_BYTES) } : {}),
    ...(opts.head !== undefined ? { head: count(opts.head, '--head', 'lines', 1) } : {}),
    ...(opts.tail !== undefined ? { tail: count(opts.tail, '--tail', 'lines', 1) } : {}),
    ...(opts.policy ? { policy: opts.policy } : {}),
  };
  return fileAction(inv, runner, action, (r) => {
    const content = r.content ?? Buffer.alloc(0);
    if (opts.json) {
      const body = isUtf8(content) ? { encoding: 'utf8', content: content.toString('utf8') } : { encoding: 'base64', content: content.toString('base64') };
      const byLines = r.lines !== undefined ? { lines: r.lines, firstLine: r.firstLine ?? null } : {};
      inv.stdout.write(`${JSON.stringify({ path: r.path, size: r.size, offset: r.offset, bytes: content.length, truncated: r.truncated, ...byLines, ...body })}\n`);
    } else if (content.length > 0) inv.stdout.write(content);
    if (!r.truncated) return EXIT.OK;
    if (action.tail !== undefined) inv.stderr.write(`remux: ${path}: the lines before byte ${r.offset} did not fit in the read cap; raise it with --max-bytes\n`);
    else inv.stderr.write(`remux: ${path}: cut at byte ${r.nextOffset} of ${r.size ?? '?'} (the read cap); read on with --offset ${r.nextOffset}, or raise it with --max-bytes\n`);
    return EXIT.OK;
  });
}

export async function writeFileCommand(inv: Invocation, runner: Runner, host: string, path: string, opts: FileWriteOptions, stdin: NodeJS.ReadableStream): Promise<number> {
  const content = await readAll(stdin, WRITE_MAX_BYTES);
  const action: FileAction = { kind: 'file.write', host, path, content, ...(opts.createDirs ? { createDirs: true } : {}), ...(opts.policy ? { policy: opts.policy } : {}) };
  return fileAction(inv, runner, action, (r) => {
    if (opts.json) inv.stdout.write(`${JSON.stringify({ path: r.path, bytes: r.bytes, created: r.created === true })}\n`);
    return EXIT.OK;
  });
}

export function editFileCommand(inv: Invocation, runner: Runner, host: string, path: string, opts: FileEditOptions): Promise<number> {
  if (opts.old.length !== opts.new.length) throw new UsageError(`--old and --new go in pairs: got ${opts.old.length} --old and ${opts.new.length} --new`);
  const edits = opts.old.map((oldText, i) => ({ oldText, newText: opts.new[i] as string }));
  const action: FileAction = { kind: 'file.edit', host, path, edits, ...(opts.dryRun ? { dryRun: true } : {}), ...(opts.policy ? { policy: opts.policy } : {}) };
  return fileAction(inv, runner, action, (r) => {
    const changed = r.changed === true;
    if (opts.json) inv.stdout.write(`${JSON.stringify({ path: r.path, changed, written: changed && !opts.dryRun, diff: r.diff ?? '' })}\n`);
    else if (changed) inv.stdout.write(r.diff ?? '');
    else inv.stderr.write(`remux: ${r.path ?? path}: unchanged (the edits leave it as it is)\n`);
    return EXIT.OK;
  });
}

export function listDirectoryCommand(inv: Invocation, runner: Runner, host: string, path: string, opts: FileListOptions): Promise<number> {
  const action: FileAction = { kind: 'file.list', host, path, ...(opts.policy ? { policy: opts.policy } : {}) };
  return fileAction(inv, runner, action, (r) => {
    const entries = r.entries ?? [];
    if (opts.json) inv.stdout.write(`${JSON.stringify({ path: r.path, entries, truncated: r.truncated })}\n`);
    else if (entries.length > 0) inv.stdout.write(formatTable(['TYPE', 'MODE', 'SIZE', 'MODIFIED (UTC)', 'NAME'], entries.map(row)));
    if (r.truncated && !opts.json) inv.stderr.write(`remux: ${path}: only the first ${entries.length} entries are shown\n`);
    return EXIT.OK;
  });
}

/** Admits and performs `action`, reports a refusal or failure on stderr, else renders the result. */
async function fileAction(inv: Invocation, runner: Runner, action: FileAction, render: (result: PerformResult) => number): Promise<number> {
  if (!isSingleHostName(action.host)) throw new UsageError(`file commands act on one host, got "${action.host}"`);
  try {
    const { contextFor } = await import('../core/context.js');
    const ctx = contextFor(await runner.context(action.host), inv.env);
    const { perform, recordRefusal } = await import('../core/perform.js');
    const admitted = await runner.admit(ctx);
    if (!admitted.ok) {
      const message = rateLimitedMessage(admitted.retryInMs);
      await recordRefusal(ctx, action, 'rate_limited', EXIT.RATE_LIMITED, message);
      inv.stderr.write(`remux: ${message}\n`);
      return EXIT.RATE_LIMITED;
    }
    await ctx.registry.prepare([action.host]);
    const controller = new AbortController();
    const release = inv.onInterrupt((why) => controller.abort(why));
    try {
      // write's stdin is its content: no question can be asked there.
      const ask = action.kind !== 'file.write' && inv.stdinIsTTY && inv.stderrIsTTY ? approver(inv, ctx.principal.name, controller.signal) : null;
      const result = await perform(ctx, action, { onStdout: () => {}, onStderr: () => {}, signal: controller.signal, ...(ask ? { approve: ask } : {}) });
      if (result.outcome !== 'ok') {
        inv.stderr.write(`remux: ${result.message ?? result.outcome}\n`);
        return result.exitCode;
      }
      return render(result);
    } finally {
      release();
    }
  } finally {
    await runner.close();
  }
}

function row(e: DirEntry): string[] {
  return [e.type, e.mode.toString(8).padStart(4, '0'), String(e.size), utcCell(e.mtimeMs), e.name];
}

/** A whole number given for `flag`, from `min` to `max`: refused here, naming the flag, not later by the action's own words. */
function count(text: string, flag: string, unit = 'bytes', min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `from ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`${flag} must be a whole number of ${unit} ${range}, got "${text}"`);
  }
  return n;
}

export async function readAll(stream: NodeJS.ReadableStream, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += bytes.length;
    if (size > max) throw new UsageError(`stdin holds more than ${max} bytes, the most a write may carry; nothing was written`);
    chunks.push(bytes);
  }
  return Buffer.concat(chunks);
}
