// File actions behind the one door (perform.ts): scope -> the path's own checks (absolute, no NUL) ->
// policy and host lookup -> the path resolved ON THE HOST (symlinks followed there) -> the policy's
// read_file / write_file / list_directory rules matched against that resolved path, with the matching
// of a command's path arguments (evaluatePath: deny beats ask beats allow, whole segments, so
// /tmp/allowed/** never covers /tmp/allowed_evil) -> audit.begin -> ask -> the host's operation on the
// resolved path, which opens it without following a symlink anywhere (hosts/local-files.ts,
// hosts/sftp.ts) -> audit.end. An edit reads the file and writes it back through those same operations,
// checked as write_file and read_file. Writes and edits of one file take turns in this process, and an edit
// reads the file again right before its write, refusing to write over a change made meanwhile: another
// process's write can still fall between that second read and the rename, a window of one write.
// No program runs, so the OS sandbox does not apply to file actions: the check against the path as
// resolved on the host plus those no-follow opens are the whole enforcement. The audit records the
// operation, the path and the byte count, never the content.
import { isUtf8 } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { posix } from 'node:path';
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import { readPart, redactAll, REDACTED, type RangedRead } from '../exec/output.js';
import { combine, evaluatePath, outputRedaction } from '../policy/evaluate.js';
import { ResolveError } from '../policy/resolve.js';
import type { PathOperation } from '../policy/schema.js';
import type { Check, Decision, PathResolver, Policy, Redaction } from '../policy/types.js';
import { FileError, TransportError, type Host, type HostFiles, type ResolvedPath } from '../hosts/types.js';
import { EXIT } from './exit-codes.js';
import { askedFor, auditAction, unknownPolicyOf, settleAsk, errorText, nothingRan, refuse, ruleText, unlessInterrupted, type PerformContext } from './perform.js';
import { checkScope } from './scope.js';
import type { FileAction, Outcome, PerformIO, PerformResult, TextEdit } from './types.js';

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

/** The policy operation each file action is checked as (an edit: also read_file, see decideAction). */
export const FILE_OPERATIONS: Record<FileAction['kind'], PathOperation> = {
  'file.read': 'read_file',
  'file.write': 'write_file',
  'file.edit': 'write_file',
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
  if (!policy) return refused('rejected', EXIT.USAGE, unknownPolicyOf(ctx, action, asked.policy));
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
    decided = await unlessInterrupted(decideAction(policy, action, files), io.signal, host.name);
  } catch (err) {
    if (!(err instanceof TransportError)) throw err;
    return refused('unreachable', EXIT.TRANSPORT, errorText(err));
  }
  let { decision } = decided;
  const { resolved } = decided;
  if (decision.effect === 'deny' || 'error' in resolved) return refused('denied', EXIT.DENIED, decision.reason, decision);
  asked.resource = resolved.real;
  if ((action.kind === 'file.write' || action.kind === 'file.edit') && resolved.finalLink) {
    return refused('denied', EXIT.DENIED, `${asked.operation} ${action.path}: is a symlink (to ${resolved.real}); a write never follows one, name the file itself`, decision);
  }

  // A write is begun before anything is touched; a read or a listing is recorded once done (auditAction).
  const writes = action.kind === 'file.write' || action.kind === 'file.edit';
  const audit = await auditAction(ctx, { ...asked, decision: decision.effect, rule: ruleText(decision), reason: decision.reason }, !writes && decision.effect === 'allow');
  if (audit.id !== null) {
    const asking = await settleAsk(ctx, action, decision, io, audit, started);
    if ('refused' in asking) return asking.refused;
    decision = asking.decision;
  }

  const run = (): Promise<Done> => operate(files, action, resolved.real, outputRedaction(policy));
  const done = await (writes ? inTurn(`${host.name}\0${resolved.real}`, run) : run()).catch((err: unknown) => ({ failure: err }));
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

type Done = Pick<PerformResult, 'content' | 'size' | 'offset' | 'nextOffset' | 'lines' | 'firstLine' | 'bytes' | 'created' | 'entries' | 'changed' | 'diff'> & { bytesOut: number; truncated: boolean };

/** `redaction`: the policy's, applied to what a read hands over as to a command's output (evaluate.ts outputRedaction). */
async function operate(files: HostFiles, action: FileAction, real: string, redaction: Redaction): Promise<Done> {
  switch (action.kind) {
    case 'file.read': {
      const cap = action.maxBytes ?? FILE_READ_DEFAULT_BYTES;
      const read: HostRead = (range) => files.read(real, range);
      // Lines become a byte range decided here, so the hosts only ever read bytes; that range is then
      // read and redacted as any part of a file is.
      const span = action.head !== undefined ? await headSpan(read, action.head, cap) : action.tail !== undefined ? await tailSpan(read, real, action.tail, cap) : null;
      const offset = span?.offset ?? action.offset ?? 0;
      // One byte past the cap tells whether the cap cut the read short.
      const length = Math.min(span?.length ?? action.length ?? Infinity, cap + 1);
      const { size, available, take } = await readPart(redaction, offset, length, read);
      const shown = Math.min(available, cap);
      const content = take(shown);
      const lines = span ? { lines: lineCount(span.raw.subarray(0, shown)), firstLine: span.firstLine } : {};
      // Where the next read goes on: past the file's bytes this one covered, which redaction may have shown shorter or longer.
      const next = available > cap && action.tail === undefined ? { nextOffset: offset + shown } : {};
      return { content, size, offset, ...next, ...lines, bytesOut: content.length, truncated: available > cap || span?.cut === true };
    }
    case 'file.write': {
      const content = typeof action.content === 'string' ? Buffer.from(action.content, 'utf8') : action.content;
      const createDirs = action.createDirs === true;
      const { created } = await files.write(real, content, { createDirs }).catch((err: unknown) => {
        throw createDirs ? err : missingParentHint(err, real);
      });
      return { bytes: content.length, created, bytesOut: content.length, truncated: false };
    }
    case 'file.edit': {
      // One byte past the cap tells a file too big to edit from one that fits.
      const whole = async (): Promise<Buffer> => (await files.read(real, { offset: 0, length: FILE_WRITE_MAX_BYTES + 1 })).content;
      const content = await whole();
      const before = editableText(real, content);
      const after = applyEdits(real, before, action.edits);
      const changed = after !== before;
      const diff = changed ? editDiff(real, before, after, redaction) : '';
      if (!changed || action.dryRun === true) return { changed, diff, bytesOut: 0, truncated: false };
      const written = Buffer.from(after, 'utf8');
      if (written.length > FILE_WRITE_MAX_BYTES) throw new FileError(`edit_file ${real}: the edited file would be ${written.length} bytes, more than the ${FILE_WRITE_MAX_BYTES} a write may carry`);
      if (!(await whole()).equals(content)) throw new FileError(`edit_file ${real}: the file changed while the edit was worked out (another writer); nothing was written: read it again and redo the edit`);
      await files.write(real, written, { createDirs: false });
      return { changed, diff, bytes: written.length, bytesOut: written.length, truncated: false };
    }
    case 'file.list': {
      const { entries, truncated } = await files.list(real, FILE_LIST_MAX_ENTRIES);
      return { entries, bytesOut: 0, truncated };
    }
  }
}

type HostRead = RangedRead<{ content: Buffer; size: number }>;

/** A head or tail read looks at this much of the file first, then twice as much each time, up to the read's cap. */
const LINE_WINDOW_BYTES = 64 << 10;
const NEWLINE = 0x0a;

/** The bytes a head or tail read hands over, decided from the raw bytes of the file. */
interface LineSpan {
  offset: number;
  /** Bytes from offset: one past the cap when the lines asked for go on past it (the cap then cuts them). */
  length: number;
  /** The file's bytes from offset as read while deciding (at least what the cap lets through): lines are counted in them, not in the redacted content. */
  raw: Buffer;
  /** The number of the line at offset; null when the file before it was not read. */
  firstLine: number | null;
  /** A tail whose lines did not all fit in the cap: only the whole lines that do (or the cap's last bytes of one longer line). */
  cut: boolean;
}

/** The first `lines` lines: windows from the file's start until they hold that many newlines, its end, or the cap. */
async function headSpan(read: HostRead, lines: number, cap: number): Promise<LineSpan> {
  let seen = Buffer.alloc(0);
  for (let window = LINE_WINDOW_BYTES; ; window *= 2) {
    const want = Math.min(window, cap + 1);
    seen = Buffer.concat([seen, (await read({ offset: seen.length, length: want - seen.length })).content]);
    const end = afterNewlines(seen, lines);
    if (end !== null || seen.length < want || want > cap) return { offset: 0, length: end ?? seen.length, raw: seen, firstLine: 1, cut: false };
  }
}

/**
 * The last `lines` lines: windows back from the file's end (as its size was when the read began) until
 * they hold that many lines, reach its start, or fill the cap.
 */
async function tailSpan(read: HostRead, real: string, lines: number, cap: number): Promise<LineSpan> {
  // One byte, not none: an outbound agent's host answers an empty read without the size.
  const { size } = await read({ offset: 0, length: 1 });
  let seen = Buffer.alloc(0);
  let from = size;
  for (let window = LINE_WINDOW_BYTES; ; window *= 2) {
    const start = Math.max(0, size - Math.min(window, cap + 1));
    const before = (await read({ offset: start, length: from - start })).content;
    if (before.length !== from - start) throw new FileError(`read_file ${real}: the file was cut short while its last lines were read; read it again`);
    seen = Buffer.concat([before, seen]);
    from = start;
    const at = lastLinesStart(seen, lines) ?? (from === 0 ? 0 : null);
    if (at !== null) return { offset: from + at, length: seen.length - at, raw: seen.subarray(at), firstLine: from === 0 ? newlines(seen.subarray(0, at)) + 1 : null, cut: false };
    if (seen.length > cap) {
      // seen is the cap and one byte more: from its first whole line on (a newline at index 0 ends the line before the cap).
      const newline = seen.indexOf(NEWLINE);
      const whole = newline >= 0 && newline < seen.length - 1 ? newline + 1 : seen.length - cap;
      return { offset: from + whole, length: seen.length - whole, raw: seen.subarray(whole), firstLine: null, cut: true };
    }
  }
}

/** Where the `n`th line of `data` ends (past its newline); null when data holds fewer newlines. */
function afterNewlines(data: Buffer, n: number): number | null {
  let at = -1;
  for (let i = 0; i < n; i++) {
    at = data.indexOf(NEWLINE, at + 1);
    if (at < 0) return null;
  }
  return at + 1;
}

/** Where the last `n` lines of `data`, which ends where the file ends, begin; null when it holds fewer whole ones. */
function lastLinesStart(data: Buffer, n: number): number | null {
  // A final newline ends the last line; it does not begin another (as tail -n counts).
  let at = data.at(-1) === NEWLINE ? data.length - 1 : data.length;
  for (let i = 0; i < n; i++) {
    // lastIndexOf counts a negative start from the end: at 0 there is nothing before.
    at = at === 0 ? -1 : data.lastIndexOf(NEWLINE, at - 1);
    if (at < 0) return null;
  }
  return at + 1;
}

function newlines(data: Buffer): number {
  let count = 0;
  for (let at = data.indexOf(NEWLINE); at >= 0; at = data.indexOf(NEWLINE, at + 1)) count++;
  return count;
}

/** Lines in `data`: its newlines, and a last line without one. */
function lineCount(data: Buffer): number {
  return newlines(data) + (data.length > 0 && data.at(-1) !== NEWLINE ? 1 : 0);
}

/** The write or edit of each file (host NUL path) now running here, which the next one of that file waits for. */
const fileTurns = new Map<string, Promise<unknown>>();

/** Runs `work` once the writes and edits of `key` before it have ended (whichever way). */
async function inTurn<T>(key: string, work: () => Promise<T>): Promise<T> {
  const before = fileTurns.get(key);
  const mine = (before ?? Promise.resolve()).catch(() => {}).then(work);
  fileTurns.set(key, mine);
  try {
    return await mine;
  } finally {
    if (fileTurns.get(key) === mine) fileTurns.delete(key);
  }
}

/**
 * The file's text, or why it cannot be edited by replacing text: too big, not UTF-8, or as this side
 * read it redacted (an outbound agent's own policy redacts what it hands over: written back, its
 * secrets would become the marker).
 */
function editableText(real: string, content: Buffer): string {
  if (content.length > FILE_WRITE_MAX_BYTES) throw new FileError(`edit_file ${real}: the file is larger than the ${FILE_WRITE_MAX_BYTES} bytes an edit may rewrite`);
  if (!isUtf8(content)) throw new FileError(`edit_file ${real}: not UTF-8 text; replace it whole with write_file`);
  const text = content.toString('utf8');
  if (text.includes(REDACTED)) throw new FileError(`edit_file ${real}: the file as read holds ${REDACTED}, as redaction leaves it; an edit would write that back: change it where it is read whole`);
  return text;
}

/** How long working out an edit's diff may hold the event loop: a huge rewrite is written, its diff left out. */

/**
 * A write whose directory is missing says how to make it: the hosts (local, SFTP, an agent's) all name
 * that directory as `DIR: no such file or directory`, which alone leaves a caller guessing.
 */
function missingParentHint(err: unknown, real: string): unknown {
  if (!(err instanceof FileError) || err.denied || err.message !== `${posix.dirname(real)}: no such file or directory`) return err;
  return new FileError(`${err.message}; nothing was written: create_dirs (--create-dirs on the command line) makes the missing directories`);
}

const EDIT_DIFF_TIMEOUT_MS = 250;

/** The unified diff of an edit, redacted as output is; a note instead when it would take too long to work out. */
function editDiff(real: string, before: string, after: string, redaction: Redaction): string {
  const patch = createTwoFilesPatch(real, real, before, after, undefined, undefined, { context: 3, headerOptions: FILE_HEADERS_ONLY, timeout: EDIT_DIFF_TIMEOUT_MS });
  if (patch === undefined) return `[remux: the diff of ${real} is left out: the change is too large to work out in ${EDIT_DIFF_TIMEOUT_MS} ms; read the file to see it]\n`;
  return redactAll(redaction, Buffer.from(patch)).toString('utf8');
}

/** An edit's old text in the words of both front ends: MCP's edits[].old_text, the command line's --old. */
function editField(index: number, count: number): string {
  return count === 1 ? 'old_text (--old)' : `edit ${index + 1} of ${count}: old_text (--old)`;
}

/** `text` with each edit applied in turn; an edit whose old text is not there exactly once changes nothing at all. */
function applyEdits(real: string, text: string, edits: readonly TextEdit[]): string {
  let out = text;
  edits.forEach((edit, i) => {
    const which = editField(i, edits.length);
    const at = out.indexOf(edit.oldText);
    if (at < 0) throw new FileError(`edit_file ${real}: ${which} is not in the file${i > 0 ? ' (as the edits before it left it)' : ''}; read the file again and copy the text exactly, whitespace included`);
    const again = out.indexOf(edit.oldText, at + 1);
    if (again >= 0) {
      const line = (offset: number): number => out.slice(0, offset).split('\n').length;
      const [first, second] = [line(at), line(again)];
      const where = first === second ? `twice on line ${first}` : `lines ${first} and ${second}`;
      throw new FileError(`edit_file ${real}: ${which} is in the file more than once (${where}${out.indexOf(edit.oldText, again + 1) >= 0 ? ', and more' : ''}); include more of the lines around it so that it names one place`);
    }
    out = out.slice(0, at) + edit.newText + out.slice(at + edit.oldText.length);
  });
  return out;
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

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** What is wrong with a path as given, before the host is asked anything; null when nothing. */
export function pathProblem(path: string): string | null {
  if (typeof path !== 'string' || path === '') return 'empty path';
  if (path.includes('\0')) return 'the path contains a NUL byte';
  // No file name holds one: the host would be asked for U+FFFD in its place, not what the policy was checked on.
  const lone = LONE_SURROGATE.exec(path);
  if (lone) return `the path has an unpaired UTF-16 surrogate (\\u${lone[0].charCodeAt(0).toString(16)}) at character ${lone.index}`;
  if (!path.startsWith('/')) return 'the path must be absolute';
  if (Buffer.byteLength(path) >= PATH_MAX) return `the path is too long (${Buffer.byteLength(path)} bytes)`;
  return null;
}


function argumentProblem(action: FileAction): string | null {
  const count = (v: number | undefined, name: string, max = Number.MAX_SAFE_INTEGER): string | null =>
    v === undefined || (Number.isSafeInteger(v) && v >= 0 && v <= max) ? null : `${name} must be a whole number from 0 to ${max}, got ${v}`;
  switch (action.kind) {
    case 'file.read': {
      const lines = (v: number | undefined, name: string): string | null =>
        v === undefined || (Number.isSafeInteger(v) && v >= 1) ? null : `${name} must be a whole number of lines from 1, got ${v}`;
      const given = (['head', 'tail', 'offset', 'length'] as const).filter((k) => action[k] !== undefined);
      const mixed = (action.head !== undefined || action.tail !== undefined) && given.length > 1;
      return (
        count(action.offset, 'offset') ??
        count(action.length, 'length') ??
        count(action.maxBytes, 'the read cap', FILE_READ_MAX_BYTES) ??
        lines(action.head, 'head') ??
        lines(action.tail, 'tail') ??
        (mixed ? `${given.join(' and ')} cannot be used together: head and tail count lines from the file's start or end, offset and length pick bytes; give one of them` : null)
      );
    }
    case 'file.write': {
      const bytes = typeof action.content === 'string' ? Buffer.byteLength(action.content) : action.content.length;
      if (bytes > FILE_WRITE_MAX_BYTES) return `the content is ${bytes} bytes, more than the ${FILE_WRITE_MAX_BYTES} a write may carry`;
      // UTF-8 cannot hold one: it would be written as U+FFFD, not as what was sent.
      const lone = typeof action.content === 'string' ? LONE_SURROGATE.exec(action.content) : null;
      return lone ? `the content has an unpaired UTF-16 surrogate (\\u${lone[0].charCodeAt(0).toString(16)}) at character ${lone.index}, which is not text a file can hold; send valid text` : null;
    }
    case 'file.edit': {
      if (!Array.isArray(action.edits) || action.edits.length === 0) return 'no edits: give at least one {old_text, new_text} (--old and --new on the command line)';
      let bytes = 0;
      for (const [i, e] of action.edits.entries()) {
        if (e.oldText === '') return `${editField(i, action.edits.length)} is empty; name the text to replace (to add text, include the line it goes after)`;
        bytes += Buffer.byteLength(e.newText);
        const lone = LONE_SURROGATE.exec(e.oldText + e.newText);
        if (lone) return `edit ${i + 1}: an unpaired UTF-16 surrogate (\\u${lone[0].charCodeAt(0).toString(16)}), which is not text a file can hold; send valid text`;
      }
      return bytes > FILE_WRITE_MAX_BYTES ? `the edits' new text is ${bytes} bytes, more than the ${FILE_WRITE_MAX_BYTES} a write may carry` : null;
    }
    case 'file.list':
      return null;
  }
}

/**
 * The policy's verdict on a file action: its operation on the path, and for an edit also read_file (what
 * the file held comes back as the diff). Both resolved in one go on the host.
 */
async function decideAction(policy: Policy, action: FileAction, files: Pick<HostFiles, 'resolve'>): Promise<{ decision: Decision; resolved: Answer }> {
  const decided = await decide(policy, FILE_OPERATIONS[action.kind], action.path, files);
  if (action.kind !== 'file.edit') return decided;
  const read = (await decide(policy, 'read_file', action.path, files)).decision;
  const why = (c: Check): Check => (c.effect === 'deny' ? { ...c, reason: `edit_file returns a diff of what ${action.path} holds, and the policy does not let you read it: ${c.reason}` } : c);
  return { decision: combine(policy, [decided.decision, { ...read, checks: read.checks.map(why) }], decided.decision), resolved: decided.resolved };
}
