// A tool method's arguments as words, both ways, by its CliSpec: `remux rpc HOST Apt.package nginx
// --state present` → ['nginx'], { state: 'present' }], and back into words for the audit's argv.
import { ArgumentError, type CliSpec } from './method.js';

const camel = (flag: string): string => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Words → arguments. Options take `--name value` or `--name=value` (kebab or camel case); a boolean alone is true. */
export function parseCallArgs(method: string, spec: CliSpec, words: readonly string[]): unknown[] {
  const positional: string[] = [];
  const options: Record<string, unknown> = {};
  const types = spec.options ?? {};
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string;
    if (word === '--') {
      positional.push(...words.slice(i + 1));
      break;
    }
    if (!word.startsWith('--')) {
      positional.push(word);
      continue;
    }
    const [flag, attached] = word.includes('=') ? [word.slice(2, word.indexOf('=')), word.slice(word.indexOf('=') + 1)] : [word.slice(2), undefined];
    const name = camel(flag);
    const type = types[name];
    if (type === undefined) {
      const known = Object.keys(types).map((n) => `--${kebab(n)}`);
      throw new ArgumentError(`${method} has no option --${flag} (${known.length > 0 ? `its options: ${known.join(', ')}` : 'it takes none'})`);
    }
    let value = attached;
    if (value === undefined && type === 'boolean') {
      if (words[i + 1] === 'true' || words[i + 1] === 'false') value = words[++i];
      else value = 'true';
    }
    if (value === undefined) {
      if (i + 1 >= words.length) throw new ArgumentError(`${method}: --${flag} needs a value`);
      value = words[++i] as string;
    }
    if (type === 'strings') options[name] = [...((options[name] as string[] | undefined) ?? []), value];
    else if (name in options) throw new ArgumentError(`${method}: --${flag} is given twice`);
    else options[name] = convert(method, flag, type, value);
  }
  const args: unknown[] = [];
  for (const [i, spot] of spec.positional.entries()) {
    const bare = spot.replace(/(\.\.\.|\?)$/, '');
    if (spot.endsWith('...')) {
      if (positional.length <= i) throw new ArgumentError(`${method} needs at least one ${bare.replace(/s$/, '')}`);
      args.push(positional.slice(i));
    } else if (positional[i] !== undefined) args.push(positional[i]);
    else if (spot.endsWith('?')) args.push(undefined);
    else throw new ArgumentError(`${method} needs its ${bare}: remux rpc HOST ${method} ${usage(spec)}`);
  }
  const rest = spec.positional.at(-1)?.endsWith('...') ? [] : positional.slice(spec.positional.length);
  const n = spec.positional.length;
  if (rest.length > 0) throw new ArgumentError(`${method} takes ${n === 0 ? 'no arguments' : `${n} argument${n === 1 ? '' : 's'} (${usage(spec)})`}; left over: ${rest.join(' ')}`);
  if (spec.options) args.push(options);
  return args;
}

function convert(method: string, flag: string, type: string, value: string): unknown {
  if (type === 'boolean') {
    if (value !== 'true' && value !== 'false') throw new ArgumentError(`${method}: --${flag} is true or false, got ${JSON.stringify(value)}`);
    return value === 'true';
  }
  if (type === 'mode') {
    if (!/^0?[0-7]{3,4}$/.test(value)) throw new ArgumentError(`${method}: --${flag} is an octal mode such as 0644, got ${JSON.stringify(value)}`);
    return parseInt(value, 8);
  }
  if (type === 'number') {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new ArgumentError(`${method}: --${flag} needs a number, got ${JSON.stringify(value)}`);
    return n;
  }
  return value;
}

/** `NAME --state VALUE`, for messages. */
export function usage(spec: CliSpec): string {
  const pos = spec.positional.map((p) => (p.endsWith('?') ? `[${p.slice(0, -1).toUpperCase()}]` : p.endsWith('...') ? `${p.slice(0, -3).toUpperCase()}...` : p.toUpperCase()));
  const opts = Object.entries(spec.options ?? {}).map(([n, t]) => `[--${kebab(n)}${t === 'boolean' ? '' : ` ${t === 'strings' ? 'VALUE...' : 'VALUE'}`}]`);
  return [...pos, ...opts].join(' ');
}

/** Content the audit records by its size only: `<N bytes>` (anything else as it is, for a call refused for its types). */
export function sizeWord(v: unknown): unknown {
  return typeof v === 'string' || Buffer.isBuffer(v) ? `<${Buffer.byteLength(v)} bytes>` : v;
}

/** Arguments → words, for the audit: a `text` option (a key) by its size only. */
export function renderCallArgs(spec: CliSpec, args: readonly unknown[]): string[] {
  const words: string[] = [];
  const word = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v) ?? String(v));
  for (const [i, spot] of spec.positional.entries()) {
    const v = args[i];
    if (v === undefined) continue;
    if (spot.endsWith('...') && Array.isArray(v)) words.push(...v.map(word));
    else words.push(word(v));
  }
  const options = spec.options ? (args[spec.positional.length] as Record<string, unknown> | undefined) : undefined;
  for (const [name, v] of Object.entries(options ?? {})) {
    if (v === undefined) continue;
    const type = spec.options?.[name];
    const values = Array.isArray(v) ? v : [v];
    // A text given as a { file } (PacmanRepository's key) is recorded by its name.
    const secret = (one: unknown): one is string | Buffer => type === 'text' && (typeof one === 'string' || Buffer.isBuffer(one));
    const shown = (one: unknown): string => (secret(one) ? `<${Buffer.byteLength(one)} bytes>` : type === 'mode' && typeof one === 'number' ? `0${one.toString(8)}` : word(one));
    for (const one of values) words.push(`--${kebab(name)}`, shown(one));
  }
  return words;
}
