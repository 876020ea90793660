// `remux rpc HOST Tool.method WORDS…` for a custom tool (--tools): the command line mapped onto its zod
// argument tuple, predictably. Leading string, number, boolean or enum items are positional words (in
// order; an optional one may be left out); a last item that is an object of such fields (or lists of
// strings) takes `--name value` options, as a built-in's options object does (call-args.ts). Any other
// shape takes only `--args-json '[…]'`, the arguments as a JSON array, which every custom method accepts.
// The arguments are checked against the schema here, so a bad one is a usage error naming it.
import { parseCallArgs, usage } from './call-args.js';
import { ArgumentError, type CliSpec } from './method.js';

/** The part of a zod (v4) schema read here: its definition, the same in any copy of zod. */
interface Schema {
  _zod: { def: Def };
  description?: string;
  safeParse(value: unknown): { success: true } | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } };
}
interface Def {
  type: string;
  innerType?: Schema;
  items?: Schema[];
  rest?: Schema | null;
  shape?: Record<string, Schema>;
  element?: Schema;
  entries?: Record<string, unknown>;
  values?: unknown[];
}
type OptionType = NonNullable<CliSpec['options']>[string];

const WRAPPERS = new Set(['optional', 'default', 'prefault', 'nullable', 'readonly', 'nonoptional']);
const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function unwrap(schema: Schema): { def: Def; optional: boolean } {
  let def = schema._zod.def;
  let optional = false;
  while (WRAPPERS.has(def.type) && def.innerType) {
    if (def.type === 'optional' || def.type === 'default' || def.type === 'prefault') optional = true;
    def = def.innerType._zod.def;
  }
  return { def, optional };
}

/** string, number or boolean (an enum or literal of one kind counts as it); null for anything else. */
function scalar(def: Def): 'string' | 'number' | 'boolean' | null {
  if (def.type === 'string' || def.type === 'number' || def.type === 'boolean') return def.type;
  const values = def.type === 'enum' ? Object.values(def.entries ?? {}) : def.type === 'literal' ? (def.values ?? []) : [];
  const kinds = new Set(values.map((v) => typeof v));
  const [kind] = kinds;
  return kinds.size === 1 && (kind === 'string' || kind === 'number' || kind === 'boolean') ? kind : null;
}

/** The method's command-line shape, or why it has none. */
export function cliShape(args: unknown): CliSpec | { reason: string } {
  const top = unwrap(args as Schema).def;
  if (top.type !== 'tuple' || !top.items) return { reason: 'its arguments are not a z.tuple' };
  if (top.rest) return { reason: 'its tuple has a rest element' };
  const spec: CliSpec = { positional: [] };
  for (const [i, item] of top.items.entries()) {
    const { def, optional } = unwrap(item);
    if (def.type === 'object' && def.shape && i === top.items.length - 1) {
      const options: Record<string, OptionType> = {};
      for (const [field, schema] of Object.entries(def.shape)) {
        const f = unwrap(schema).def;
        const type = scalar(f) ?? (f.type === 'array' && f.element && scalar(unwrap(f.element).def) === 'string' ? 'strings' : null);
        if (type === null) return { reason: `the field ${field} of its options (argument ${i + 1}) is of type ${f.type}, not a string, number, boolean or list of strings` };
        // A number named mode is a file mode: `--mode 0644` reads in octal, as the built-ins' --mode.
        options[field] = field === 'mode' && type === 'number' ? 'mode' : type;
      }
      spec.options = options;
      continue;
    }
    if (scalar(def) === null) return { reason: `argument ${i + 1} is of type ${def.type}, not a string, number or boolean${def.type === 'object' ? ' (an options object comes last)' : ''}` };
    const described = item.description ?? '';
    spec.positional.push(`${/^[A-Za-z][A-Za-z0-9_-]*$/.test(described) ? described : `arg${i + 1}`}${optional ? '?' : ''}`);
  }
  return spec;
}

/** `Deploy.status WORDS…` or `--args-json '[…]'` → the arguments, checked against the method's schema. */
export function customCallArgs(method: string, args: unknown, words: readonly string[], json: string | undefined): unknown[] {
  const schema = args as Schema;
  if (json !== undefined) {
    if (words.length > 0) throw new ArgumentError(`${method}: give its arguments as words or as --args-json, not both (left over: ${words.join(' ')})`);
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch (err) {
      throw new ArgumentError(`${method}: --args-json is not JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(value)) throw new ArgumentError(`${method}: --args-json is the arguments as a JSON array, got ${JSON.stringify(value)}`);
    return checked(method, schema, value, null);
  }
  const spec = cliShape(schema);
  if ('reason' in spec) throw new ArgumentError(`${method} takes its arguments only as --args-json '[…]': ${spec.reason}`);
  const parsed = parseCallArgs(method, spec, words);
  // Words that read as the item's type become it; any other word goes as it is, for zod to name.
  const items = (unwrap(schema).def.items ?? []).map((item) => scalar(unwrap(item).def));
  const values = parsed.map((v, i) => (typeof v === 'string' && i < spec.positional.length ? typed(v, items[i] ?? null) : v));
  return checked(method, schema, values, spec);
}

function typed(word: string, kind: 'string' | 'number' | 'boolean' | null): unknown {
  if (kind === 'number' && word.trim() !== '' && Number.isFinite(Number(word))) return Number(word);
  if (kind === 'boolean' && (word === 'true' || word === 'false')) return word === 'true';
  return word;
}

/** The schema's verdict; each problem named as the command line gave it (NAME, --option, or the JSON's index). */
function checked(method: string, schema: Schema, values: unknown[], spec: CliSpec | null): unknown[] {
  const r = schema.safeParse(values);
  if (r.success) return values;
  const where = (path: PropertyKey[]): string => {
    const [index, field, ...rest] = path;
    const tail = rest.map((p) => `[${String(p)}]`).join('');
    if (typeof index !== 'number') return 'its arguments';
    if (spec === null) return `argument ${index + 1}${[field, ...rest].filter((p) => p !== undefined).map((p) => `[${JSON.stringify(p)}]`).join('')}`;
    if (index < spec.positional.length) return `${(spec.positional[index] as string).replace(/\?$/, '').toUpperCase()} (argument ${index + 1})`;
    return field === undefined ? 'its options' : `--${kebab(String(field))}${tail}`;
  };
  const problems = r.error.issues.map((issue) => `${where(issue.path)}: ${issue.message}`);
  throw new ArgumentError(`${method}: ${problems.join('; ')}${spec ? ` (usage: ${method} ${usage(spec)})` : ''}`);
}
