// The built-in tools: each method names its remote function (remote/tools/*.py) and declares what it
// does on the host, which guard.ts checks against the principal's policy before anything is sent:
// a file operation on a path (read_file, write_file, list_directory) or a command (exec, parsed and
// checked like `client run`).
import { remoteSource, toolSource, type ToolSource } from './bootstrap.js';

/** What a call does on the host, as the policy sees it. */
export type Operation =
  | { kind: 'file.read' | 'file.list'; path: string }
  | { kind: 'file.write'; path: string; content: string }
  | { kind: 'exec'; argv: string[]; cwd?: string };

export interface Method<A extends unknown[], R> {
  readonly tool: ToolSource;
  /** `Tool.method`, as the CLI and the audit name it. */
  readonly name: string;
  readonly remote: string;
  operation(...args: A): Operation;
  /** The arguments as sent: a file method gets the path as resolved on the host (`real`), which was checked. */
  encode(args: A, real: string | null): unknown[];
  decode(value: unknown): R;
}

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

let fsSource: ToolSource | null = null;
let execSource: ToolSource | null = null;
const fsTool = (): ToolSource => (fsSource ??= toolSource('FileSystem', remoteSource('tools/filesystem.py')));
const execTool = (): ToolSource => (execSource ??= toolSource('Exec', remoteSource('tools/exec.py')));

function fileMethod<A extends [string, ...unknown[]], R>(
  remote: string,
  kind: 'file.read' | 'file.list',
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
    operation: (...args) => ({ kind, path: target(args[0]) }),
    // The checked path as resolved on the host replaces what it was resolved from.
    encode: (args, real) => [real === null ? args[0] : real + args[0].slice(target(args[0]).length), ...rest(args)],
    decode,
  };
}

const asString = (v: unknown): string => {
  if (typeof v !== 'string') throw new TypeError(`expected a string from the host, got ${typeof v}`);
  return v;
};

export interface Stat {
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
}

export const FileSystem = {
  readText: fileMethod<[path: string, encoding?: string], string>('readText', 'file.read', asString, (a) => (a[1] ? [a[1]] : [])),
  readBytes: fileMethod<[path: string], Buffer>('readBytes', 'file.read', (v) => Buffer.from(asString(v), 'base64')),
  stat: fileMethod<[path: string], Stat>('stat', 'file.read', (v) => v as Stat),
  /** Matches sorted; the policy must let the caller list the pattern's literal directory and every directory a match is in. */
  glob: fileMethod<[pattern: string], string[]>('glob', 'file.list', (v) => (v as Array<[string, string]>).map(([m]) => m), undefined, globRoot),
  writeText: {
    get tool() {
      return fsTool();
    },
    name: 'FileSystem.writeText',
    remote: 'writeText',
    operation: (path, text) => ({ kind: 'file.write', path, content: text }),
    encode: ([path, text, opts], real) => [real ?? path, text, opts?.mode ?? null],
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

export { defineMethod, defineTool, type MethodDefinition, type Tool, type ToolDefinition } from './custom.js';

/** Every method by `Tool.method`, for the CLI. */
export const METHODS: Record<string, Method<never, unknown> | ExecMethod> = {
  'FileSystem.readText': FileSystem.readText,
  'FileSystem.readBytes': FileSystem.readBytes,
  'FileSystem.stat': FileSystem.stat,
  'FileSystem.glob': FileSystem.glob,
  'FileSystem.writeText': FileSystem.writeText,
  'Exec.command': Exec.command,
  'Exec.stream': Exec.stream,
};

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
