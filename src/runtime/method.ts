// What a tool method is: its remote function, the operations it DECLARES it performs on the host (which
// guard.ts checks against the principal's policy before anything is sent), how its arguments are sent
// and its result read, and how `remux rpc` maps a command line onto its arguments.
import { remoteSource, toolSource, type ToolSource } from './bootstrap.js';
import { ArgumentError, ArgumentTypeError } from './errors.js';

/** What a call does on the host, as the policy sees it; a method declares all of them. */
export type Operation =
  | { kind: 'file.read' | 'file.list'; path: string }
  /**
   * write_file of `path`; `tree`: anywhere under it (a package manager writes all over `/`), so a deny or
   * ask rule of write_file on anything inside it applies too. `reads`: the call also returns what the file
   * held (a diff), so read_file of it is checked too. `content`: what is written, when known.
   */
  | { kind: 'file.write'; path: string; content?: string; tree?: boolean; reads?: boolean }
  /**
   * A command (argv, no shell), checked as `client run` checks it (every program it runs, each found in
   * the secure PATH on the host, and every path it names), but for write_stdout: its output goes to the
   * tool, not the caller. A built-in tool declares each program it runs as argv [name].
   */
  | { kind: 'exec'; argv: string[]; cwd?: string };

/** What remux knows of the host a call goes to: its inventory name and labels (a template's `host`). */
export interface HostFacts {
  name: string;
  labels: Record<string, string>;
}

/** What the check resolved on the host (the call acts on exactly these), and the host's facts. */
export interface Resolved {
  /** Each declared path as resolved on the host (symlinks followed). */
  paths: Record<string, string>;
  /** Each declared command's program (argv[0]) as found in the secure PATH on the host. */
  programs: Record<string, string>;
  /** The secure PATH, for what those programs run in turn. */
  path: string;
  host: HostFacts;
}

/** `remux rpc HOST Tool.method POSITIONAL… --option value`: positional names, then the options object's fields. */
export interface CliSpec {
  /** In order; a name ending in `...` takes every remaining positional argument (a list). */
  positional: string[];
  /**
   * Option types; `text` is a string the audit records by its size only (a key); `mode` a file mode
   * written in octal (0644). Absent: no options object.
   */
  options?: Record<string, 'string' | 'strings' | 'boolean' | 'number' | 'text' | 'mode'>;
  /**
   * The arguments from what `positional` and `options` parsed, when the command line gives them otherwise
   * than as themselves (Template's: a local template file, variables from --var and --vars-file); files
   * it names are relative to `cwd`. A bad one is an ArgumentError. The audit then records the method's
   * `words`, if it has them.
   */
  toArgs?(parsed: unknown[], cwd: string): unknown[];
  /** The value as `remux rpc` prints it without --json; default: a string as is, a list a line per item, else JSON. */
  print?(value: never): string;
}

export interface Method<A extends unknown[], R, F = null> {
  readonly tool: ToolSource;
  /** `Tool.method`, as the CLI and the audit name it. */
  readonly name: string;
  readonly remote: string;
  /** A read-only question the host answers before the check (a user's home); the answer goes to operations() and encode(). */
  readonly lookup?: {
    remote: string;
    args(args: A): unknown[];
    /**
     * What is checked before the host is asked (ensureDirectory: the directory itself): a caller denied
     * that much is refused with an answer that does not depend on what exists there.
     */
    before?(args: A): Operation[];
  };
  /** Everything the call does on the host. Throws an ArgumentError on bad arguments: nothing is sent. */
  operations(args: A, facts: F): Operation[];
  /** The arguments as sent: paths and programs as they were resolved and checked. */
  encode(args: A, resolved: Resolved, facts: F): unknown[];
  decode(value: unknown): R;
  readonly cli?: CliSpec;
  /**
   * The call as words for the audit and an approver, when its command line does not say its arguments
   * back (writeText, Template): content by its size, options as flags.
   */
  words?(args: A): string[];
  /**
   * Where its value hands the caller what a file holds, to which the policy's redaction applies as to a
   * command's output: the whole value (a read), or its `diff` (an edit showing what the file held).
   */
  readonly content?: 'value' | 'diff';
  /**
   * Its value may come as chunks (a file read larger than one piece): decode is then given the list of
   * them, gathered under flow control and at most READ_MAX bytes.
   */
  readonly chunked?: boolean;
}

export { ArgumentError } from './errors.js';

/** A tool whose remote code is common.py (the shared file and process helpers) and its own file. */
export function lazyTool(name: string, file: string): () => ToolSource {
  let source: ToolSource | null = null;
  return () => (source ??= toolSource(name, `${remoteSource('tools/common.py')}\n${remoteSource(`tools/${file}`)}`));
}

interface MethodDef<A extends unknown[], R, F> {
  tool: () => ToolSource;
  name: string;
  remote: string;
  cli?: CliSpec;
  lookup?: Method<A, R, F>['lookup'];
  content?: Method<A, R, F>['content'];
  operations(args: A, facts: F): Operation[];
  /** The arguments after the context (resolved paths and programs); default: as given. */
  args?(args: A, resolved: Resolved, facts: F): unknown[];
}

/**
 * A method whose remote function takes the resolved context first: f(cx, …args). Its arguments are
 * checked against the types its command-line shape gives them before anything else, and it gets an
 * empty options object when given none.
 */
export function method<A extends unknown[], R, F = null>(def: MethodDef<A, R, F>): Method<A, R, F> {
  const types = def.cli ? cliTypes(def.cli) : null;
  const checked = (args: A): A => {
    if (!types) return args;
    checkArgTypes(def.name, types, args);
    if (!types.options || args[types.positional.length] !== undefined) return args;
    const full = [...args];
    full[types.positional.length] = {};
    return full as A;
  };
  const lookup = def.lookup;
  return {
    get tool() {
      return def.tool();
    },
    name: def.name,
    remote: def.remote,
    ...(lookup ? { lookup: { ...lookup, args: (args: A) => lookup.args(checked(args)) } } : {}),
    ...(def.cli ? { cli: def.cli } : {}),
    ...(def.content ? { content: def.content } : {}),
    operations: (args, facts) => def.operations(checked(args), facts),
    encode: (args, resolved, facts) => [resolved, ...(def.args ? def.args(checked(args), resolved, facts) : args)],
    decode: (v) => v as R,
  };
}

// Argument types: TypeScript checks them at compile time, but plain JavaScript (or a cast) can pass
// anything, which must be refused here (an ArgumentTypeError naming each), not sent to the host.

type Expect = 'string' | 'strings' | 'words' | 'boolean' | 'number' | 'object' | 'text' | 'input';

/** A Node Readable, or an old-style one (it has on, pause, resume, but perhaps no async iterator). */
export const isReadable = (v: unknown): v is NodeJS.ReadableStream =>
  typeof v === 'object' && v !== null && ['on', 'removeListener', 'pause', 'resume'].every((f) => typeof (v as Record<string, unknown>)[f] === 'function');
const isStream = (v: unknown): boolean => isReadable(v) || (typeof v === 'object' && v !== null && typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function');
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
const EXPECT: Record<Expect, [said: string, ok: (v: unknown) => boolean]> = {
  string: ['a string', (v) => typeof v === 'string'],
  strings: ['a string or a list of strings', (v) => typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'))],
  words: ['a list of strings (no shell splits a string into words)', (v) => Array.isArray(v) && v.every((x) => typeof x === 'string')],
  boolean: ['true or false', (v) => typeof v === 'boolean'],
  number: ['a number', (v) => typeof v === 'number' && Number.isFinite(v)],
  object: ['an object', isObject],
  text: ['a string, a Buffer or { file }', (v) => typeof v === 'string' || Buffer.isBuffer(v) || (isObject(v) && typeof v.file === 'string')],
  input: ['a string, a Buffer (Uint8Array), an async iterable of them or a Readable', (v) => typeof v === 'string' || v instanceof Uint8Array || isStream(v)],
};

/** Each positional argument's name and type (optional: it may be left out), then the options object's fields. */
export interface ArgTypes {
  positional: Array<[name: string, expect: Expect, optional?: boolean]>;
  options?: Record<string, Expect>;
}

const kindOf = (v: unknown): string => {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (Buffer.isBuffer(v)) return 'a Buffer';
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
};

/** Throws an ArgumentTypeError of `method` naming every argument (and option) of the wrong type. */
export function checkArgTypes(method: string, types: ArgTypes, args: readonly unknown[]): void {
  const problems: string[] = [];
  const check = (where: string, expect: Expect, v: unknown, optional = true): void => {
    if (!(optional && v === undefined) && !EXPECT[expect][1](v)) problems.push(`${where}: expected ${EXPECT[expect][0]}, got ${kindOf(v)}`);
  };
  types.positional.forEach(([name, expect, optional], i) => check(`${name} (argument ${i + 1})`, expect, args[i], optional === true));
  const options = args[types.positional.length];
  if (types.options) {
    check(`the options (argument ${types.positional.length + 1})`, 'object', options);
    if (isObject(options)) for (const [name, expect] of Object.entries(types.options)) check(`option ${name}`, expect, options[name]);
  }
  if (problems.length > 0) throw new ArgumentTypeError(method, problems.join('\n'));
}

/** A command-line shape's types: positionals strings (a `name...` one a string or a list), options as declared. */
function cliTypes(spec: CliSpec): ArgTypes {
  return {
    positional: spec.positional.map((p) => [p.replace(/(\.\.\.|\?)$/, ''), p.endsWith('...') ? 'strings' : 'string', p.endsWith('?')]),
    // A mode is a number once read (octal on the command line).
    ...(spec.options ? { options: Object.fromEntries(Object.entries(spec.options).map(([n, t]) => [n, t === 'mode' ? 'number' : t])) } : {}),
  };
}

// Argument checks: values end up in argv and config files on the host, so each is held to its grammar.

export function matching(what: string, value: unknown, pattern: RegExp, grammar: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw new ArgumentError(`${what}: ${JSON.stringify(value)} is not ${grammar}`);
  return value;
}

export function oneOf<T extends string>(what: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new ArgumentError(`${what} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

/** One line of a config file: no line breaks or other control characters (they would add settings). */
export function line(what: string, value: unknown): string {
  return matching(what, value, /^[^\x00-\x1f\x7f]*$/, 'a single line without control characters');
}

/**
 * A mode the caller gives a file it writes (FileSystem.writeText, Template.file): permission bits and the
 * sticky bit, never set-user-ID or set-group-ID. The runtime writes as its own user (root, often), so
 * such a bit would make a program that runs as that user for whoever may run it: write_file of a path
 * grants no such thing. The sticky bit grants nothing on a file (Linux ignores it there; it only
 * restricts deletion inside a directory), so it passes.
 */
export function fileMode(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 0o7777) {
    throw new ArgumentError(`mode: ${Number.isInteger(value) && value >= 0 ? `0${value.toString(8)}` : String(value)} is not a file mode (a whole number from 0 to 0o7777, e.g. 0o644)`);
  }
  const bits = [...(value & 0o4000 ? ['set-user-ID (04000)'] : []), ...(value & 0o2000 ? ['set-group-ID (02000)'] : [])];
  if (bits.length > 0) throw new ArgumentError(`mode 0${value.toString(8)} has the ${bits.join(' and ')} bit${bits.length > 1 ? 's' : ''}: refused, a file the runtime writes is never set-ID (it would run as its owner)`);
  return value;
}

/**
 * A directory's mode (FileSystem.ensureDirectory): any permission and special bits, since none runs
 * anything there (set-group-ID makes new files take the directory's group, the sticky bit restricts
 * deletion, and Linux ignores set-user-ID on a directory).
 */
export function directoryMode(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 0o7777) throw new ArgumentError(`mode: ${String(value)} is not a directory mode (a whole number from 0 to 0o7777, e.g. 0o755)`);
  return value;
}

/**
 * What an edit did, then its diff if it has one (writeText's only with `diff: true`), as `remux rpc` prints
 * it (a file without a final newline: its last line still ends one).
 */
export const editOutcome = ({ changed, created, diff = '' }: { changed: boolean; created: boolean; diff?: string }): string =>
  `${created ? 'created' : changed ? 'changed' : 'unchanged'}\n${diff}${diff === '' || diff.endsWith('\n') ? '' : '\n'}`;

/** One string or a list of them, as a list. */
export function list(value: string | readonly string[]): string[] {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) throw new ArgumentError(`expected a string or a list of strings, got ${JSON.stringify(value)}`);
  return [...(value as string[])];
}
