// The built-in tools: each method names its remote function (remote/tools/*.py) and declares what it
// does on the host (method.ts's Operation), which guard.ts checks against the principal's policy before
// anything is sent: file operations on paths, programs it runs, or a command (Exec, parsed and checked
// like `client run`). Service, User, Apt, Pacman, Logger and Quit are in tools-*.ts.
import { remoteSource, toolSource, type ToolSource } from './bootstrap.js';
import { renderCallArgs, sizeWord } from './call-args.js';
import { ArgumentError, checkArgTypes, directoryMode, editOutcome, fileMode, lazyTool, type ArgTypes, type CliSpec, type Method, type Operation } from './method.js';
import { Logger, Quit } from './tools-session.js';
import { Service } from './tools-service.js';
import { User } from './tools-user.js';
import { Apt, AptRepository, Pacman, PacmanRepository } from './tools-packages.js';
import { Template } from './template.js';

export type { CliSpec, HostFacts, Method, Operation, Resolved } from './method.js';
export { ArgumentError } from './method.js';
export { Apt, AptRepository, Logger, Pacman, PacmanRepository, Quit, Service, User };
export { Template };
export type { ServiceState } from './tools-service.js';
export type { UserOptions, UserState } from './tools-user.js';
export type { PackageResult, RepositoryResult, AptRepositoryOptions, PacmanRepositoryOptions } from './tools-packages.js';

/**
 * A method that declares everything it does on the host as a list of operations, each checked against
 * the policy before the call is sent (all must be allowed; one asking asks once). Custom tools
 * (custom.ts defineTool) are these.
 */
export interface ToolMethod<A extends unknown[], R> {
  readonly tool: ToolSource;
  readonly name: string;
  readonly remote: string;
  /** The arguments checked (and made what is sent) before anything else: a bad one is refused, audited. */
  parseArgs(args: unknown[]): A;
  operations(...args: A): Operation[];
  /** The tool's Python is the caller's own: the call also counts as running the interpreter (execute_binary python3). */
  readonly runsCallerCode: boolean;
  /** The host's value as R, or a ResultTypeError. */
  decode(value: unknown): R;
}

export interface ExecOptions {
  /** Working directory on the host; default: the runtime's (the login directory over SSH). */
  cwd?: string;
  /**
   * The program's stdin; default: none (/dev/null). Bytes (a string as UTF-8), or a stream of them (an
   * AsyncIterable<Uint8Array>, a Node Readable such as process.stdin), read as the program reads: never
   * ahead of it by more than a window (256 KiB), so input of any size runs in bounded memory. Its end is
   * the program's end of input; the program's exit ends the call whatever is left of it (then nothing more
   * is read: a Readable is left paused, an iterable's return() is called). A stream that fails (an
   * error, an iterable that throws or yields something other than bytes) fails the call.
   */
  input?: string | Uint8Array | AsyncIterable<Uint8Array> | NodeJS.ReadableStream;
}

/** A chunk of a running command's output, redacted and capped by the policy's output limits. */
export interface OutputChunk {
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

export interface ExecResult {
  /** How the command ended: its exit status, or null and the signal that killed it (at the output cap, SIGTERM's). */
  code: number | null;
  signal: number | null;
  stdout: string;
  stderr: string;
  /** The policy's output cap cut the output short (and the command was stopped). */
  truncated: boolean;
}

/** Exec's methods run through guard.ts's output path (output limits and redaction apply to their chunks). */
export interface ExecMethod {
  readonly tool: ToolSource;
  readonly name: 'Exec.command' | 'Exec.stream';
  readonly exec: true;
}

let execSource: ToolSource | null = null;
const fsTool = lazyTool('FileSystem', 'filesystem.py');
const execTool = (): ToolSource => (execSource ??= toolSource('Exec', remoteSource('tools/exec.py')));

function fileMethod<A extends [string, ...unknown[]], R>(
  remote: string,
  kind: 'file.read' | 'file.list',
  types: ArgTypes,
  decode: (v: unknown) => R,
  rest: (args: A) => unknown[] = () => [],
  /** The path the policy checks, when it is not the first argument itself (glob: its literal directory). */
  target: (first: string) => string = (first) => first,
  /** Its value is the file's content (Method.content), which may come in chunks (Method.chunked). */
  content?: 'value',
): Method<A, R> {
  return {
    get tool() {
      return fsTool();
    },
    name: `FileSystem.${remote}`,
    remote,
    ...(content ? { content, chunked: true } : {}),
    // `remux rpc HOST FileSystem.readBytes PATH --offset N`: the words are the arguments.
    cli: { positional: types.positional.map(([name, , optional]) => (optional ? `${name}?` : name)), ...(types.options ? { options: types.options as CliSpec['options'] } : {}) },
    operations: (args) => (checkArgTypes(`FileSystem.${remote}`, types, args), [{ kind, path: target(args[0]) }]),
    // The checked path as resolved on the host replaces what it was resolved from.
    encode: (args, resolved) => [(resolved.paths[target(args[0])] ?? '') + args[0].slice(target(args[0]).length), ...rest(args)],
    decode,
  };
}

const asString = (v: unknown): string => {
  if (typeof v !== 'string') throw new TypeError(`expected a string from the host, got ${typeof v}`);
  return v;
};
/** A read's value: one string, or the chunks it came in. */
const pieces = (v: unknown): string[] => (Array.isArray(v) ? v.map(asString) : [asString(v)]);
/** readBytes's value: base64 (one piece or less), or the chunks of bytes it came in. */
const bytesOf = (v: unknown): Buffer => {
  if (!Array.isArray(v)) return Buffer.from(asString(v), 'base64');
  for (const p of v) if (!Buffer.isBuffer(p)) throw new TypeError(`expected chunks of bytes from the host, got ${typeof p}`);
  return Buffer.concat(v as Buffer[]);
};

/** What one read hands over at most (remote/tools/filesystem.py MAX_READ): a larger file is read in parts, readBytes with offset and length. */
export const READ_MAX = 256 << 20;

/** As lstat: a path that ends in a symlink is the link itself (its mode, owner, size), with its target. */
export interface Stat {
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  /** A symlink's target as written (readlink), not resolved. */
  target?: string;
}

const PATH: ArgTypes['positional'][number] = ['path', 'string'];

/** Who a written file or directory belongs to, and its mode; each left as it is (a new one: 0644 or 0755, the runtime's user) when not given. */
export interface WriteOptions {
  mode?: number;
  /** A user on the host, by name or number. */
  owner?: string;
  /** A group on the host, by name or number. */
  group?: string;
}

export interface LineOptions extends WriteOptions {
  regexp?: string;
  state?: 'present' | 'absent';
  insertAfter?: string;
  insertBefore?: string;
  create?: boolean;
}

export interface DirectoryOptions extends WriteOptions {
  /** Make missing directories above it too (each checked as a write_file). */
  parents?: boolean;
}

/** What a write did; `diff` (unified, from what the file held or /dev/null) when the method returns one. */
export interface FileEdit {
  changed: boolean;
  created: boolean;
  diff?: string;
}

const OWNERSHIP = { mode: 'number', owner: 'string', group: 'string' } as const;
const WRITE_OPTIONS: ArgTypes['options'] = { ...OWNERSHIP, diff: 'boolean' };
const LINE_OPTIONS: ArgTypes['options'] = { ...OWNERSHIP, regexp: 'string', state: 'string', insertAfter: 'string', insertBefore: 'string', create: 'boolean' };
const DIRECTORY_OPTIONS: ArgTypes['options'] = { ...OWNERSHIP, parents: 'boolean' };
const ownership = (o: WriteOptions = {}): unknown[] => [o.mode ?? null, o.owner ?? null, o.group ?? null];
const LINE_IN_FILE_CLI: CliSpec = {
  positional: ['path', 'line'],
  options: { regexp: 'string', state: 'string', insertAfter: 'string', insertBefore: 'string', create: 'boolean', mode: 'mode', owner: 'string', group: 'string' },
  print: editOutcome,
};

export const FileSystem = {
  /** The whole file (at most READ_MAX bytes), decoded on the host (default UTF-8). */
  readText: fileMethod<[path: string, encoding?: string], string>('readText', 'file.read', { positional: [PATH, ['encoding', 'string', true]] }, (v) => pieces(v).join(''), (a) => (a[1] ? [a[1]] : []), undefined, 'value'),
  /** The file's bytes, or `length` of them from `offset`: at most READ_MAX in one call, a larger file read in parts. */
  readBytes: fileMethod<[path: string, opts?: { offset?: number; length?: number }], Buffer>(
    'readBytes',
    'file.read',
    { positional: [PATH], options: { offset: 'number', length: 'number' } },
    bytesOf,
    ([, o]) => [o?.offset ?? 0, o?.length ?? null],
    undefined,
    'value',
  ),
  // Checked as a read of where the path leads; the host also gets the path as given, to report a symlink it ends in.
  stat: fileMethod<[path: string], Stat>('stat', 'file.read', { positional: [PATH] }, (v) => v as Stat, (a) => [a[0]]),
  /** Matches sorted; the policy must let the caller list the pattern's literal directory and every directory a match is in. */
  glob: fileMethod<[pattern: string], string[]>('glob', 'file.list', { positional: [['pattern', 'string']] }, (v) => (v as Array<[string, string]>).map(([m]) => m), undefined, globRoot),
  /**
   * Atomic; unchanged content, mode and owner: no write. The mode is never set-user-ID or set-group-ID
   * (method.ts fileMode). With `diff: true` the result has a diff of what changed, so read_file of the
   * path is checked too.
   */
  writeText: {
    get tool() {
      return fsTool();
    },
    name: 'FileSystem.writeText',
    remote: 'writeText',
    content: 'diff',
    operations: ([path, text, opts]) => {
      checkArgTypes('FileSystem.writeText', { positional: [PATH, ['text', 'string']], options: WRITE_OPTIONS }, [path, text, opts]);
      if (opts?.mode !== undefined) fileMode(opts.mode);
      return [{ kind: 'file.write', path, content: text, ...(opts?.diff ? { reads: true } : {}) }];
    },
    encode: ([path, text, opts], resolved) => [resolved.paths[path], text, ...ownership(opts), opts?.diff === true],
    words: ([path, text, opts]) => renderCallArgs({ positional: ['path', 'text'], options: { mode: 'mode', owner: 'string', group: 'string', diff: 'boolean' } }, [path, sizeWord(text), opts]),
    decode: (v) => v as FileEdit,
  } satisfies Method<[path: string, text: string, opts?: WriteOptions & { diff?: boolean }], FileEdit>,

  /**
   * As Ansible's lineinfile: with `state: 'present'` (the default) the last line matching `regexp` (a
   * Python regular expression, searched in each line) becomes `line`; with no match, or no regexp, `line`
   * is added unless the file has it: after the last line matching `insertAfter`, before the first
   * matching `insertBefore`, or at the end. `state: 'absent'` removes every line matching `regexp` (or
   * equal to `line`). A missing file is an error unless `create`. Atomic; returns a diff, so read_file
   * of the path is checked with write_file.
   */
  lineInFile: {
    get tool() {
      return fsTool();
    },
    name: 'FileSystem.lineInFile',
    remote: 'lineInFile',
    content: 'diff',
    cli: LINE_IN_FILE_CLI,
    // The line may be a secret (a password line): the audit has its size, as writeText's content.
    words: ([path, line, opts]) => renderCallArgs(LINE_IN_FILE_CLI, [path, sizeWord(line), opts]),
    operations: ([path, line, opts]) => {
      checkArgTypes('FileSystem.lineInFile', { positional: [PATH, ['line', 'string']], options: LINE_OPTIONS }, [path, line, opts]);
      if (line.includes('\n') || line.includes('\r')) throw new ArgumentError(`line: one line, without a line break (got ${JSON.stringify(line)})`);
      if (opts?.state !== undefined && opts.state !== 'present' && opts.state !== 'absent') throw new ArgumentError(`option state: present or absent, got ${JSON.stringify(opts.state)}`);
      if (opts?.mode !== undefined) fileMode(opts.mode);
      return [{ kind: 'file.write', path, content: line, reads: true }];
    },
    encode: ([path, line, opts = {}], resolved) => [resolved.paths[path], line, opts.regexp ?? null, opts.state ?? 'present', opts.insertAfter ?? null, opts.insertBefore ?? null, opts.create === true, ...ownership(opts)],
    decode: (v) => v as FileEdit & { diff: string },
  } satisfies Method<[path: string, line: string, opts?: LineOptions], FileEdit & { diff: string }>,

  /**
   * The directory exists, with this mode and owner where given (a new one: 0755). Checked as write_file
   * of the path; with `parents: true` each missing directory above it is made too, each checked as a
   * write_file of its own.
   */
  ensureDirectory: {
    get tool() {
      return fsTool();
    },
    name: 'FileSystem.ensureDirectory',
    remote: 'ensureDirectory',
    cli: { positional: ['path'], options: { mode: 'mode', owner: 'string', group: 'string', parents: 'boolean' } },
    lookup: {
      remote: 'missingParents',
      args: ([path, opts]) => {
        checkArgTypes('FileSystem.ensureDirectory', { positional: [PATH], options: DIRECTORY_OPTIONS }, [path, opts]);
        // Refused by its own name, before the host is asked about the directories above it.
        if (!path.startsWith('/')) throw new ArgumentError(`path: an absolute path is needed, got ${JSON.stringify(path)}`);
        return [path, opts?.parents === true];
      },
      // Which directories above it exist is the host's answer to a write there: only for a caller who may write the path.
      before: ([path]) => [{ kind: 'file.write', path }],
    },
    operations: ([path, opts], missing) => {
      if (opts?.mode !== undefined) directoryMode(opts.mode);
      return [...missing, path].map((p): Operation => ({ kind: 'file.write', path: p }));
    },
    encode: ([path, opts], resolved, missing) => [resolved.paths[path], ...ownership(opts), missing.map((p) => resolved.paths[p])],
    decode: (v) => v as { changed: boolean },
  } satisfies Method<[path: string, opts?: DirectoryOptions], { changed: boolean }, string[]>,
};

export const Exec = {
  /** argv without a shell; output captured (after the policy's limits and redaction). */
  command: {
    get tool() {
      return execTool();
    },
    name: 'Exec.command',
    exec: true,
  } as ExecMethod,
  /** The same, its output streamed as it comes. */
  stream: {
    get tool() {
      return execTool();
    },
    name: 'Exec.stream',
    exec: true,
  } as ExecMethod,
};

/** Exec's arguments as plain JavaScript may pass them: an ArgumentError (a type error: ArgumentTypeError) unless argv is a non-empty list of strings without NUL bytes. */
export function checkExecArgs(argv: unknown, opts: unknown): void {
  checkArgTypes('Exec', { positional: [['argv', 'words']], options: { cwd: 'string', input: 'input' } }, [argv, opts]);
  if ((argv as string[]).length === 0 || (argv as string[]).some((a) => a.includes('\0'))) throw new ArgumentError('Exec: argv must be a non-empty list of strings without NUL bytes');
}

export { defineMethod, defineTool, type MethodDefinition, type Tool, type ToolDefinition } from './custom.js';

/** Every method by `Tool.method`, for the CLI. */
export const METHODS: Record<string, Method<never, unknown, never> | ExecMethod> = {
  'FileSystem.readText': FileSystem.readText,
  'FileSystem.readBytes': FileSystem.readBytes,
  'FileSystem.stat': FileSystem.stat,
  'FileSystem.glob': FileSystem.glob,
  'FileSystem.writeText': FileSystem.writeText,
  'FileSystem.lineInFile': FileSystem.lineInFile,
  'FileSystem.ensureDirectory': FileSystem.ensureDirectory,
  'Exec.command': Exec.command,
  'Exec.stream': Exec.stream,
  ...byName(Service, User, Apt, AptRepository, Pacman, PacmanRepository, Logger, Quit, Template),
};

function byName(...tools: Array<Record<string, Method<never, unknown, never>>>): Record<string, Method<never, unknown, never>> {
  return Object.fromEntries(tools.flatMap((t) => Object.values(t).map((m) => [m.name, m])));
}

/** The literal directory a glob pattern starts in: /etc for /etc/*.conf. */
export function globRoot(pattern: string): string {
  const parts = pattern.split('/');
  const literal: string[] = [];
  for (const part of parts) {
    if (/[*?[]/.test(part)) break;
    literal.push(part);
  }
  if (literal.length === parts.length) literal.pop();
  return literal.join('/') || '/';
}
