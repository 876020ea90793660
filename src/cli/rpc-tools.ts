// `remux rpc --tools FILE`: the custom tools (defineTool) an ES module exports, by `Tool.method`. The
// module is the user's own code and runs in this CLI process with the user's privileges, never in the
// daemon (which declines such a command line: gateway/cli-session.ts).
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CustomTool } from '../runtime/custom.js';
import { UsageError } from './output.js';

export interface LoadedMethod {
  method: CustomTool['methods'][string]['method'];
  /** The zod tuple of its arguments (the command line is read by it: runtime/custom-cli.ts). */
  args: unknown;
}

/** Every custom method of `files` by `Tool.method`; a clash with a built-in tool or between files is refused, naming both. */
export async function loadTools(files: readonly string[], cwd: string, builtIn: readonly string[]): Promise<Map<string, LoadedMethod>> {
  const { customTool } = await import('../runtime/custom.js');
  const builtInTools = new Set(builtIn.map((m) => m.slice(0, m.indexOf('.'))));
  /** Tool name → the file (as given and resolved) that defines it. */
  const from = new Map<string, { file: string; path: string }>();
  const methods = new Map<string, LoadedMethod>();
  for (const file of files) {
    const path = resolve(cwd, file);
    const exports = await importFile(file, path);
    // A CommonJS file's exports come as `default`: tools are looked for among its properties too.
    const inDefault = typeof exports.default === 'object' && exports.default !== null && customTool(exports.default) === null ? Object.values(exports.default) : [];
    const tools = [...Object.values(exports), ...inDefault].map(customTool).filter((t): t is CustomTool => t !== null);
    if (tools.length === 0) {
      const names = Object.keys(exports);
      throw new UsageError(`--tools ${file}: it exports no tool made with defineTool (its exports: ${names.length > 0 ? names.join(', ') : 'none'})`);
    }
    for (const tool of tools) {
      if (builtInTools.has(tool.name)) throw new UsageError(`--tools ${file}: its tool ${tool.name} has the name of the built-in tool ${tool.name} (${builtIn.filter((m) => m.startsWith(`${tool.name}.`)).join(', ')}); rename it`);
      const earlier = from.get(tool.name);
      // The same tool exported twice by one module (named and default) is one tool.
      if (earlier !== undefined && earlier.path !== path) throw new UsageError(`--tools ${file}: its tool ${tool.name} is also defined by --tools ${earlier.file}; rename one`);
      from.set(tool.name, { file, path });
      for (const [name, m] of Object.entries(tool.methods)) methods.set(`${tool.name}.${name}`, { method: m.method, args: m.definition.args });
    }
  }
  return methods;
}

async function importFile(file: string, path: string): Promise<Record<string, unknown>> {
  if (!existsSync(path)) throw new UsageError(`--tools ${file}: no such file (${path})`);
  if (!statSync(path).isFile()) throw new UsageError(`--tools ${file}: not a file (${path})`);
  const ext = extname(path);
  if (['.ts', '.mts', '.cts', '.tsx'].includes(ext)) {
    throw new UsageError(`--tools ${file}: a TypeScript file; Node 20 has no TypeScript loader, so compile it first (tsc, or esbuild ${file} --format=esm --outfile=${file.replace(/\.[cm]?tsx?$/, '.mjs')}) and give the .js or .mjs`);
  }
  if (ext !== '.js' && ext !== '.mjs') throw new UsageError(`--tools ${file}: not a JavaScript module (.js or .mjs)`);
  const importModule = createRequire(import.meta.url)('./import-module.cjs') as (url: string) => Promise<Record<string, unknown>>;
  try {
    return { ...(await importModule(pathToFileURL(path).href)) };
  } catch (err) {
    throw new UsageError(`--tools ${file}: cannot load it as an ES module: ${(err as Error).message}`);
  }
}
