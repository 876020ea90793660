// `remux template render FILE`: the runtime's Template.render in a local python3 (runtime/index.ts
// renderLocally), so the CLI and the hosts share one implementation of the language.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { EXIT } from '../core/exit-codes.js';
import type { TemplateRenderOptions } from './commands/template.js';
import type { Invocation } from './invocation.js';
import { UsageError } from './output.js';

/** A variable name a template can use: not private (_x), not the reserved `host`. */
const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

export async function templateRender(inv: Invocation, file: string, opts: TemplateRenderOptions): Promise<number> {
  const text = readText(resolve(inv.cwd, file), file);
  const variables = { ...(opts.varsFile ? varsFile(resolve(inv.cwd, opts.varsFile), opts.varsFile) : {}), ...varFlags(opts.var) };
  const runtime = await import('../runtime/index.js');
  let rendered: string;
  try {
    rendered = await runtime.renderLocally(text, variables, { name: file, ...(opts.python ? { python: opts.python } : {}) });
  } catch (err) {
    const templateError = err instanceof runtime.RemoteError && err.type === 'TemplateError';
    // The host's message is already `FILE:LINE: what`; the RemoteError adds its type in front.
    const message = templateError ? err.message.replace(/^TemplateError: /, '') : err instanceof Error ? err.message : String(err);
    if (opts.json) {
      const at = new RegExp(`^${escapeRegExp(file)}:(\\d+): `).exec(message);
      const error = { type: templateError ? 'TemplateError' : err instanceof Error ? err.name : 'Error', message, file, line: at ? Number(at[1]) : null };
      inv.stdout.write(`${JSON.stringify({ error })}\n`);
    } else inv.stderr.write(`remux: ${message}\n`);
    return templateError ? EXIT.USAGE : EXIT.FAILURE;
  }
  inv.stdout.write(opts.json ? `${JSON.stringify({ text: rendered })}\n` : rendered);
  return EXIT.OK;
}

function readText(path: string, shown: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${shown}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

function checkName(name: string, where: string): void {
  if (!NAME.test(name)) throw new UsageError(`${where}: "${name}" is not a variable name (letters, digits and _, starting with a letter)`);
  if (name === 'host') throw new UsageError(`${where}: the variable host is reserved: it holds the host's facts (host.name, host.labels, …)`);
}

function varFlags(flags: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    if (eq <= 0) throw new UsageError(`--var ${flag}: expected KEY=VALUE`);
    const key = flag.slice(0, eq);
    checkName(key, `--var ${flag}`);
    out[key] = flag.slice(eq + 1);
  }
  return out;
}

/** A YAML (or JSON) mapping of variables; errors name file:line. */
function varsFile(path: string, shown: string): Record<string, unknown> {
  const lines = new LineCounter();
  const doc = parseDocument(readText(path, shown), { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) throw new UsageError(`${shown}:${lines.linePos(first.pos[0]).line}: ${first.message}`);
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new UsageError(`${shown}: expected a mapping of variable names to values`);
  for (const key of Object.keys(value)) checkName(key, shown);
  return value as Record<string, unknown>;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
