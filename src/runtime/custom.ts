// Custom tools: a user's own tool, its remote body in Python (a source string or a file), its argument
// and result types as zod schemas, and the operations each method performs as the policy sees them.
// Called exactly like a built-in (`host.call(Disk.usage, '/')`) and checked like one (guard.ts
// guardedToolCall): the declared operations, plus running the interpreter (an execute_code grant for
// python3), since the body is arbitrary Python. The code goes to a host on its first call on a
// connection, keyed by its hash (link.ts), so an edited tool is sent again and an unchanged one never twice.
//
//   const Disk = defineTool({
//     name: 'Disk',
//     python: 'import os\ndef usage(path):\n    s = os.statvfs(path)\n    return {"free": s.f_bavail * s.f_frsize}\n',
//     methods: {
//       usage: defineMethod({ args: z.tuple([z.string()]), result: z.object({ free: z.number() }), operations: (path) => [{ kind: 'file.read', path }] }),
//     },
//   });
//   await host.call(Disk.usage, '/');   // Promise<{ free: number }>
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { toolSource, type ToolSource } from './bootstrap.js';
import { ArgumentTypeError, ResultTypeError } from './errors.js';
import type { Operation, ToolMethod } from './tools.js';

export interface MethodDefinition<Args extends z.ZodType<unknown[]>, Result extends z.ZodType> {
  /** The arguments, as a tuple: z.tuple([z.string(), z.object({ … })]). */
  args: Args;
  result: Result;
  /** What the method does on the host, for the policy: files it reads, writes or lists, commands it runs. */
  operations(...args: z.output<Args>): Operation[];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any schema: each method keeps its own types (Tool below).
type AnyMethod = MethodDefinition<any, any>;

/** One method: defineMethod() makes TypeScript type `operations`' parameters from `args`. */
export function defineMethod<Args extends z.ZodType<unknown[]>, Result extends z.ZodType>(m: MethodDefinition<Args, Result>): MethodDefinition<Args, Result> {
  return m;
}

export interface ToolDefinition<M extends Record<string, AnyMethod>> {
  /** The tool's name: calls are audited as Name.method. */
  name: string;
  /**
   * The remote body: Python source, or { file } a .py file read now; each method is a top-level function of
   * that name. A path is from the working directory; `new URL('./disk.py', import.meta.url)` is beside the module.
   */
  python: string | { file: string | URL };
  methods: M;
}

export type Tool<M extends Record<string, AnyMethod>> = {
  readonly [K in keyof M & string]: M[K] extends MethodDefinition<infer A, infer R> ? ToolMethod<z.output<A>, z.output<R>> : never;
};

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/**
 * Where a tool keeps its definition, in the global symbol registry: `remux rpc --tools` recognizes a tool
 * made by the copy of remux the user's module imported, not only by its own (customTool below).
 */
const DEFINITION = Symbol.for('remux.customTool');

interface Recorded {
  name: string;
  python: string;
  methods: Record<string, AnyMethod>;
}

export function defineTool<M extends Record<string, AnyMethod>>(def: ToolDefinition<M>): Tool<M> {
  if (!NAME.test(def.name)) throw new TypeError(`defineTool: the name ${JSON.stringify(def.name)} is not an identifier (letters, digits, _; a letter first)`);
  const source = typeof def.python === 'string' ? def.python : readSource(def.name, def.python.file);
  const tool = toolSource(def.name, source);
  const methods = Object.entries(def.methods);
  if (methods.length === 0) throw new TypeError(`defineTool ${def.name}: no methods`);
  const made = Object.fromEntries(methods.map(([name, m]) => [name, toolMethod(tool, name, m)]));
  const recorded: Recorded = { name: def.name, python: source, methods: { ...def.methods } };
  return Object.defineProperty(made, DEFINITION, { value: recorded }) as Tool<M>;
}

/** A tool as `remux rpc --tools` calls it: each method, and its definition (its argument schema shapes the command line). */
export interface CustomTool {
  name: string;
  methods: Record<string, { method: ToolMethod<unknown[], unknown>; definition: AnyMethod }>;
}

/**
 * A value made by defineTool, in this copy of remux or another (the one a user's module imports), made
 * again by this one, so its errors are this copy's classes; null for anything else.
 */
export function customTool(value: unknown): CustomTool | null {
  if (typeof value !== 'object' || value === null) return null;
  const recorded = (value as { [DEFINITION]?: Recorded })[DEFINITION];
  if (!recorded) return null;
  const tool = defineTool(recorded) as Record<string, ToolMethod<unknown[], unknown>>;
  return {
    name: recorded.name,
    methods: Object.fromEntries(Object.entries(recorded.methods).map(([name, definition]) => [name, { method: tool[name] as ToolMethod<unknown[], unknown>, definition }])),
  };
}

function readSource(tool: string, file: string | URL): string {
  const shown = file instanceof URL ? file.href : resolve(file);
  try {
    return readFileSync(file instanceof URL ? fileURLToPath(file) : shown, 'utf8');
  } catch (err) {
    // A relative path is from the working directory, which need not be the module's (`remux rpc --tools DIR/x.mjs`).
    const beside = typeof file === 'string' && !isAbsolute(file) ? ` (a relative path is from the working directory; for a file beside the module give new URL(${JSON.stringify(file)}, import.meta.url))` : '';
    throw new Error(`defineTool ${tool}: cannot read its Python from ${shown}: ${(err as Error).message}${beside}`, { cause: err });
  }
}

function toolMethod(tool: ToolSource, remote: string, m: AnyMethod): ToolMethod<unknown[], unknown> {
  const name = `${tool.name}.${remote}`;
  // Stage 1 refuses names starting with _ (the tool's private helpers).
  if (!NAME.test(remote)) throw new TypeError(`defineTool ${tool.name}: the method name ${JSON.stringify(remote)} is not an identifier starting with a letter`);
  for (const [key, schema] of [['args', m.args], ['result', m.result]] as const) {
    if (!(schema instanceof z.ZodType)) throw new TypeError(`defineTool ${name}: ${key} must be a zod schema`);
  }
  if (typeof m.operations !== 'function') throw new TypeError(`defineTool ${name}: operations must be a function of the arguments giving what the method does on the host`);
  return {
    tool,
    name,
    remote,
    runsCallerCode: true,
    parseArgs(args) {
      const r = m.args.safeParse(args);
      if (!r.success) throw new ArgumentTypeError(name, z.prettifyError(r.error));
      return r.data;
    },
    operations: (...args) => m.operations(...args),
    decode(value) {
      const r = m.result.safeParse(value);
      if (!r.success) throw new ResultTypeError(name, z.prettifyError(r.error));
      return r.data;
    },
  };
}
