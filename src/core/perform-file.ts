// File actions behind the one door (perform.ts): scope -> the path's own checks (absolute, no NUL) ->
// policy and host lookup -> the path resolved ON THE HOST (symlinks followed there) -> the policy's
// read_file / write_file / list_directory rules matched against that resolved path, with the matching
// of a command's path arguments (evaluatePath: deny beats ask beats allow, whole segments, so
// /tmp/allowed/** never covers /tmp/allowed_evil) -> audit.begin -> ask -> the host's operation on the
// resolved path, which opens it without following a symlink anywhere (hosts/local-files.ts,
// hosts/sftp.ts) -> audit.end.
// No program runs, so the OS sandbox does not apply to file actions: the check against the path as
// resolved on the host plus those no-follow opens are the whole enforcement. The audit records the
// operation, the path and the byte count, never the content.
import { performance } from 'node:perf_hooks';
import { posix } from 'node:path';
import { readPart } from '../exec/output.js';
import { evaluatePath, outputRedaction } from '../policy/evaluate.js';
import { ResolveError } from '../policy/resolve.js';
import type { PathOperation } from '../policy/schema.js';
import type { Decision, PathResolver, Policy, Redaction } from '../policy/types.js';
import { FileError, TransportError, type Host, type HostFiles, type ResolvedPath } from '../hosts/types.js';
import { EXIT } from './exit-codes.js';
import { askedFor, auditAction, settleAsk, errorText, nothingRan, refuse, ruleText, type PerformContext } from './perform.js';
import { checkScope } from './scope.js';
import type { FileAction, Outcome, PerformIO, PerformResult } from './types.js';

/** A read returns at most this much unless the caller asks for more (up to FILE_READ_MAX_BYTES). */
export const FILE_READ_DEFAULT_BYTES = 1 << 20;
export const FILE_READ_MAX_BYTES = 16 << 20;
/** Content larger than this is refused before anything is written. */
export const FILE_WRITE_MAX_BYTES = 16 << 20;
/** A listing shows at most this many entries (then `truncated`). */
export const FILE_LIST_MAX_ENTRIES = 10_000;
const PATH_MAX = 4096;
/** Rule prefixes may need a second round of answers from the host; more never happens. */
const MAX_RESOLVE_ROUNDS = 3;

export const FILE_OPERATIONS: Record<FileAction['kind'], PathOperation> = {
  'file.read': 'read_file',
  'file.write': 'write_file',
  'file.list': 'list_directory',
};

export type Answer = ResolvedPath | { error: string };

export async function performFile(ctx: PerformContext, action: FileAction, io: PerformIO): Promise<PerformResult> {
  const started = performance.now();
  const asked = askedFor(ctx, action);
  const op = FILE_OPERATIONS[action.kind];
  const refused = (outcome: Outcome, exitCode: number, message: string, decision: Decision | null = null): Promise<PerformResult> =>
    refuse(ctx, asked, started, outcome, exitCode, message, decision);

  const scoped = checkScope(ctx.principal, action, ctx.defaultPolicy, (name) => ctx.hostEntry(name));
  if (!scoped.ok) return refused('denied', EXIT.DENIED, scoped.reason);
  const problem = pathProblem(action.path) ?? argumentProblem(action);
  if (problem) return refused('rejected', EXIT.USAGE, `${op} ${JSON.stringify(action.path)}: ${problem}`);
  const policy = ctx.policies.get(asked.policy);
  if (!policy) return refused('rejected', EXIT.USAGE, `unknown policy "${asked.policy}" (known: ${[...ctx.policies.keys()].join(', ') || 'none'})`);
  let host: Host;
  try {
    host = ctx.host(action.host);
  } catch (err) {
    return refused('unreachable', EXIT.TRANSPORT, errorText(err));
  }
  const files = host.files;
  if (!files) return refused('rejected', EXIT.USAGE, `host ${host.name} offers no file operations`);

  let decided: { decision: Decision; resolved: Answer };
  try {
    decided = await decide(policy, op, action.path, files);
  } catch (err) {
    if (!(err instanceof TransportError)) throw err;
    return refused('unreachable', EXIT.TRANSPORT, errorText(err));
  }
  let { decision } = decided;
  const { resolved } = decided;
  if (decision.effect === 'deny' || 'error' in resolved) return refused('denied', EXIT.DENIED, decision.reason, decision);
  asked.resource = resolved.real;
  if (action.kind === 'file.write' && resolved.finalLink) {
    return refused('denied', EXIT.DENIED, `write_file ${action.path}: is a symlink (to ${resolved.real}); a write never follows one, name the file itself`, decision);
  }

  // A write is begun before anything is touched; a read or a listing is recorded once done (auditAction).
  const audit = await auditAction(ctx, { ...asked, decision: decision.effect, rule: ruleText(decision), reason: decision.reason }, action.kind !== 'file.write' && decision.effect === 'allow');
  if (audit.id !== null) {
    const asking = await settleAsk(ctx, action, decision, io, audit, started);
    if ('refused' in asking) return asking.refused;
    decision = asking.decision;
  }

  const done = await operate(files, action, resolved.real, outputRedaction(policy)).catch((err: unknown) => ({ failure: err }));
  const durationMs = performance.now() - started;
  if ('failure' in done) {
    const transport = done.failure instanceof TransportError;
    const known = transport || done.failure instanceof FileError;
    const message = known ? errorText(done.failure) : `${op} ${resolved.real}: ${errorText(done.failure)}`;
    const denied = done.failure instanceof FileError && done.failure.denied;
    const exitCode = transport ? EXIT.TRANSPORT : denied ? EXIT.DENIED : EXIT.FAILURE;
    const actionId = await audit.finish({ exitCode, durationMs, error: message });
    return { ...nothingRan(actionId, transport ? 'unreachable' : denied ? 'denied' : 'failed', exitCode, message, durationMs), decision, path: resolved.real };
  }
  const actionId = await audit.finish({ exitCode: EXIT.OK, durationMs, bytesOut: done.bytesOut, truncated: done.truncated });
  const { bytesOut, truncated, ...fields } = done;
  return { actionId, outcome: 'ok', exitCode: EXIT.OK, decision, message: null, durationMs, bytesOut, truncated, timedOut: false, path: resolved.real, ...fields };
}

type Done = Pick<PerformResult, 'content' | 'size' | 'bytes' | 'created' | 'entries'> & { bytesOut: number; truncated: boolean };

/** `redaction`: the policy's, applied to what a read hands over as to a command's output (evaluate.ts outputRedaction). */
async function operate(files: HostFiles, action: FileAction, real: string, redaction: Redaction): Promise<Done> {
  switch (action.kind) {
    case 'file.read': {
      const cap = action.maxBytes ?? FILE_READ_DEFAULT_BYTES;
      const offset = action.offset ?? 0;
      // One byte past the cap tells whether the cap cut the read short.
      const length = Math.min(action.length ?? Infinity, cap + 1);
      const { size, available, take } = await readPart(redaction, offset, length, (range) => files.read(real, range));
      const content = take(Math.min(available, cap));
      return { content, size, bytesOut: content.length, truncated: available > cap };
    }
    case 'file.write': {
      const content = typeof action.content === 'string' ? Buffer.from(action.content, 'utf8') : action.content;
      const { created } = await files.write(real, content, { createDirs: action.createDirs === true });
      return { bytes: content.length, created, bytesOut: content.length, truncated: false };
    }
    case 'file.list': {
      const { entries, truncated } = await files.list(real, FILE_LIST_MAX_ENTRIES);
      return { entries, bytesOut: 0, truncated };
    }
  }
}

/**
 * The policy's verdict on `path`, with every path it asks about (the path, the deny/ask rules' literal
 * prefixes) resolved on the host: a recording pass collects them, one batch answers them. Also the
 * runtime's file tools' check (src/runtime/guard.ts), answered by the runtime on the host.
 */
export async function decide(policy: Policy, op: PathOperation, path: string, files: Pick<HostFiles, 'resolve'>): Promise<{ decision: Decision; resolved: Answer }> {
  const answers = new Map<string, Answer>();
  for (let round = 0; ; round++) {
    const missing = new Set<string>();
    const resolver: PathResolver = {
      realpath(p, cwd) {
        const abs = p.startsWith('/') ? p : posix.join(cwd, p);
        const known = answers.get(abs);
        if (known === undefined) {
          missing.add(abs);
          return posix.resolve(abs);
        }
        if ('error' in known) throw new ResolveError(known.error);
        return known.real;
      },
      which: () => null,
    };
    const decision = evaluatePath(policy, op, path, { cwd: '/', resolver });
    if (missing.size === 0 || round >= MAX_RESOLVE_ROUNDS) return { decision, resolved: answers.get(path) ?? { error: 'not resolved' } };
    const asked = [...missing];
    (await files.resolve(asked)).forEach((answer, i) => answers.set(asked[i] as string, answer));
  }
}

/** What is wrong with a path as given, before the host is asked anything; null when nothing. */
export function pathProblem(path: string): string | null {
  if (typeof path !== 'string' || path === '') return 'empty path';
  if (path.includes('\0')) return 'the path contains a NUL byte';
  if (!path.startsWith('/')) return 'the path must be absolute';
  if (Buffer.byteLength(path) >= PATH_MAX) return `the path is too long (${Buffer.byteLength(path)} bytes)`;
  return null;
}

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function argumentProblem(action: FileAction): string | null {
  const count = (v: number | undefined, name: string, max = Number.MAX_SAFE_INTEGER): string | null =>
    v === undefined || (Number.isSafeInteger(v) && v >= 0 && v <= max) ? null : `${name} must be a whole number from 0 to ${max}, got ${v}`;
  switch (action.kind) {
    case 'file.read':
      return count(action.offset, 'offset') ?? count(action.length, 'length') ?? count(action.maxBytes, 'the read cap', FILE_READ_MAX_BYTES);
    case 'file.write': {
      const bytes = typeof action.content === 'string' ? Buffer.byteLength(action.content) : action.content.length;
      if (bytes > FILE_WRITE_MAX_BYTES) return `the content is ${bytes} bytes, more than the ${FILE_WRITE_MAX_BYTES} a write may carry`;
      // UTF-8 cannot hold one: it would be written as U+FFFD, not as what was sent.
      const lone = typeof action.content === 'string' ? LONE_SURROGATE.exec(action.content) : null;
      return lone ? `the content has an unpaired UTF-16 surrogate (\\u${lone[0].charCodeAt(0).toString(16)}) at character ${lone.index}, which is not text a file can hold; send valid text` : null;
    }
    case 'file.list':
      return null;
  }
}
