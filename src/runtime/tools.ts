// The built-in tools: each method names its remote function (remote/tools/*.py) and declares what it
// does on the host (method.ts's Operation), which guard.ts checks against the principal's policy before
// anything is sent: file operations on paths, programs it runs, or a command (Exec, parsed and checked
// like `client run`). Service, User, Apt, Pacman, Logger and Quit are in tools-*.ts.
import { remoteSource, toolSource, type ToolSource } from './bootstrap.js';
import { ArgumentError, checkArgTypes, fileMode, lazyTool, type ArgTypes, type Method, type Operation } from './method.js';
import { Logger, Quit } from './tools-session.js';
import { Service } from './tools-service.js';
import { User } from './tools-user.js';
import { Apt, AptRepository, Pacman, PacmanRepository } from './tools-packages.js';

export type { CliSpec, HostFacts, Method, Operation, Resolved } from './method.js';
export { ArgumentError } from './method.js';
export { Apt, AptRepository, Logger, Pacman, PacmanRepository, Quit, Service, User };
export { Template } from './template.js';
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
  /** Bytes for the program's stdin; default: none (/dev/null). */
  input?: Buffer | string;
}

/** A chunk of a running command's output, redacted and capped by the policy's output limits. */
export interface OutputChunk {
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

export interface ExecResult {
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
): Method<A, R> {
  return {
    get tool() {
      return fsTool();
    },
    name: `FileSystem.${remote}`,
    remote,
    operations: (args) => (checkArgTypes(`FileSystem.${remote}`, types, args), [{ kind, path: target(args[0]) }]),
    // The checked path as resolved on the host replaces what it was resolved from.
    encode: (args, resolved) => [(resolved.paths[target(args[0])] ?? '') + args[0].slice(target(args[0]).length), ...rest(args)],
    decode,
  };
}

/** A method whose value is a file's content handed to the caller (Method.fileContent); its tool stays loaded on first use. */
function fileContent<A extends unknown[], R>(method: Method<A, R>): Method<A, R> {
  return Object.defineProperty(method, 'fileContent', { value: true, enumerable: true });
}

const asString = (v: unknown): string => {
  if (typeof v !== 'string') throw new TypeError(`expected a string from the host, got ${typeof v}`);
  return v;
};

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

export const FileSystem = {
  readText: fileContent(fileMethod<[path: string, encoding?: string], string>('readText', 'file.read', { positional: [PATH, ['encoding', 'string', true]] }, asString, (a) => (a[1] ? [a[1]] : []))),
  readBytes: fileContent(fileMethod<[path: string], Buffer>('readBytes', 'file.read', { positional: [PATH] }, (v) => Buffer.from(asString(v), 'base64'))),
  // Checked as a read of where the path leads; the host also gets the path as given, to report a symlink it ends in.
  stat: fileMethod<[path: string], Stat>('stat', 'file.read', { positional: [PATH] }, (v) => v as Stat, (a) => [a[0]]),
  /** Matches sorted; the policy must let the caller list the pattern's literal directory and every directory a match is in. */
  glob: fileMethod<[pattern: string], string[]>('glob', 'file.list', { positional: [['pattern', 'string']] }, (v) => (v as Array<[string, string]>).map(([m]) => m), undefined, globRoot),
  /** Atomic; unchanged content and mode: no write. The mode is never set-user-ID or set-group-ID (method.ts fileMode). */
  writeText: {
    get tool() {
      return fsTool();
    },
    name: 'FileSystem.writeText',
    remote: 'writeText',
    operations: ([path, text, opts]) => {
      checkArgTypes('FileSystem.writeText', { positional: [PATH, ['text', 'string']], options: { mode: 'number' } }, [path, text, opts]);
      if (opts?.mode !== undefined) fileMode(opts.mode);
      return [{ kind: 'file.write', path, content: text }];
    },
    encode: ([path, text, opts], resolved) => [resolved.paths[path], text, opts?.mode ?? null],
    decode: (v) => v as { changed: boolean; created: boolean },
  } satisfies Method<[path: string, text: string, opts?: { mode?: number }], { changed: boolean; created: boolean }>,
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
  checkArgTypes('Exec', { positional: [['argv', 'words']], options: { cwd: 'string', input: 'bytes' } }, [argv, opts]);
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
  'Exec.command': Exec.command,
  'Exec.stream': Exec.stream,
  ...byName(Service, User, Apt, AptRepository, Pacman, PacmanRepository, Logger, Quit),
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
