// A template and its variables as a command line gives them, for `remux template render` and `remux rpc
// HOST Template.render|file`: the template a local file, variables from --var KEY=VALUE (a string) and
// --vars-file FILE (a YAML or JSON mapping, typed), --var winning. Bad input is an ArgumentError.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { ArgumentError } from './errors.js';
import type { Variables } from './template.js';

/** A variable name a template can use: not private (_x), not the reserved `host`. */
const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/** A local file's text; `file` as given (relative to `cwd`) is what the error names. */
export function readLocalText(file: string, cwd: string): string {
  try {
    return readFileSync(resolve(cwd, file), 'utf8');
  } catch (err) {
    throw new ArgumentError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

/** The variables of --vars-file (if any) and then each --var KEY=VALUE. */
export function commandLineVariables(flags: readonly string[], varsFile: string | undefined, cwd: string): Variables {
  return { ...(varsFile === undefined ? {} : fromFile(varsFile, cwd)), ...fromFlags(flags) };
}

function checkName(name: string, where: string): void {
  if (!NAME.test(name)) throw new ArgumentError(`${where}: "${name}" is not a variable name (letters, digits and _, starting with a letter)`);
  if (name === 'host') throw new ArgumentError(`${where}: the variable host is reserved: it holds the host's facts (host.name, host.labels, …)`);
}

function fromFlags(flags: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    if (eq <= 0) throw new ArgumentError(`--var ${flag}: expected KEY=VALUE`);
    const key = flag.slice(0, eq);
    checkName(key, `--var ${flag}`);
    out[key] = flag.slice(eq + 1);
  }
  return out;
}

/** A YAML (or JSON) mapping of variables; errors name file:line. */
function fromFile(file: string, cwd: string): Variables {
  const lines = new LineCounter();
  const doc = parseDocument(readLocalText(file, cwd), { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) throw new ArgumentError(`${file}:${lines.linePos(first.pos[0]).line}: ${first.message}`);
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ArgumentError(`${file}: expected a mapping of variable names to values`);
  for (const key of Object.keys(value)) checkName(key, file);
  return value as Variables;
}
