// Deterministic generator of shell-like command strings for the differential and fuzz tests.
// The strings never contain `/`, so whatever a real shell does with them stays inside its cwd.

import { seededRandom, type Random } from '../../support/random.js';

export { seededRandom, type Random };

export class Picker {
  constructor(readonly random: Random) {}

  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  chance(p: number): boolean {
    return this.random() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  /** `count` characters (code points) drawn from `alphabet`. */
  chars(alphabet: readonly string[], count: number): string {
    let out = '';
    for (let i = 0; i < count; i++) out += this.pick(alphabet);
    return out;
  }
}

/** Files the differential test creates in bash's cwd, so `<` has something to read. */
export const INPUT_FILES = ['in1', 'in 2', 'ïn3'] as const;
const INPUT_SOURCES = ['in1', "'in1'", '"in1"', "'in 2'", '"in 2"', 'in\\ 2', "in' '2", 'ïn3', '"ïn3"', '\\ïn3'];

const UNICODE = ['é', 'ü', 'ß', 'Ω', '中文', '😀', '\u00a0', '\u2028', 'e\u0301', '\u200b', 'ﬁ', '\uff04'];
const PLAIN = [...'abcxyzABZ0129-_.,:=@%+^]', ...UNICODE];
/** Printable ASCII except `/` (see the file comment), plus tab and a little unicode. */
const PRINTABLE = [
  ...Array.from({ length: 95 }, (_, k) => String.fromCharCode(32 + k)).filter((ch) => ch !== '/'),
  '\t',
  ...UNICODE,
];
const IN_SINGLE = PRINTABLE.filter((ch) => ch !== "'");
const IN_DOUBLE = PRINTABLE.filter((ch) => !'"\\$`'.includes(ch));
const RESERVED = ['if', 'then', 'fi', 'do', 'done', 'time', 'in', ']]', 'case', 'while', 'function', 'coproc'];

/**
 * Snippets that are mostly outside the grammar. They are spliced in at random offsets, so some land inside
 * quotes (where they are literal) and some shift the quoting of the rest of the string.
 */
export const HOSTILE = [
  '$HOME', '${x}', '$(a)', '$((1+1))', "$'a'", '$"a"', '`a`', '$1', '$?', '$', '*', '?', '[a]', ']', '{a,b}',
  '{', '}', '~', '~a', 'a=~', 'x:~', '!', '&', '(', ')', '<<a', '<<<a', '>|w', '&>w', '&>>w', '>&2', '1>&2',
  '3>w', '0<in1', '<>w', '<&0', '<(a)', '>(a)', '\n', '\r', '\0', '\x01', '\x1b', '\x7f', '\x85', '#c', ' #c',
  ';;', ';&', '|&', '| |', '&& &&', ';', '|', '&&', '||', "'", '"', '\\', '\\\n', '\ud800', '\udc00', '"$x"',
  '"a`b"', 'FOO=bar ', 'a+=b ', 'if ', 'time ', '\t', '  ', '2>&1', '2>&12', '2>&-', '>', '<', '>>', '12>w',
];

function plainWord(p: Picker): string {
  return p.chars(PLAIN, 1 + p.int(6));
}

function singleQuoted(p: Picker): string {
  return `'${p.chars(IN_SINGLE, p.int(8))}'`;
}

function doubleQuoted(p: Picker): string {
  let body = '';
  const parts = p.int(6);
  for (let i = 0; i < parts; i++) {
    const r = p.int(10);
    if (r < 6) body += p.pick(IN_DOUBLE);
    else if (r < 8) body += `\\${p.pick(['"', '\\', '$', '`'])}`;
    else body += `\\${p.pick(IN_DOUBLE)}`; // bash keeps this backslash
  }
  return `"${body}"`;
}

function fragment(p: Picker): string {
  const r = p.int(100);
  if (r < 35) return plainWord(p);
  if (r < 50) return singleQuoted(p);
  if (r < 65) return doubleQuoted(p);
  if (r < 75) return `\\${p.pick(PRINTABLE)}`;
  if (r < 80) return p.pick(["''", '""']);
  if (r < 86) return p.pick(['1', '2', '0', '12', '2', '1']);
  if (r < 90) return p.pick(['#x', 'a#b', 'x~', 'HEAD~1', '-', '--', '-n', '--opt=val']);
  if (r < 95) return p.pick(UNICODE);
  return p.pick([...RESERVED, 'FOO=bar', 'a+=b', 'a-b=c', 'A_1=x']);
}

function word(p: Picker): string {
  let w = fragment(p);
  while (p.chance(0.3)) w += fragment(p);
  return w;
}

function spacing(p: Picker): string {
  return p.pick([' ', ' ', ' ', ' ', '', '  ', '\t', ' \t ']);
}

/** A write target name unique to this string and redirection, decorated with some quoting. */
function writeTarget(p: Picker, stem: string): string {
  switch (p.int(8)) {
    case 0:
      return `'${stem} x'`;
    case 1:
      return `"${stem}\\"q"`;
    case 2:
      return `${stem}\\ é`;
    case 3:
      return `${stem}'#|&;'`;
    case 4:
      return `${stem}~`;
    default:
      return stem;
  }
}

function redirection(p: Picker, stem: string): string {
  const r = p.int(10);
  if (r < 2) return `<${spacing(p)}${p.pick(INPUT_SOURCES)}`;
  if (r < 3) return '2>&1';
  const op = p.pick(['>', '>', '>>', '2>', '2>>', '1>', '1>>']);
  return `${op}${spacing(p)}${writeTarget(p, stem)}`;
}

function stage(p: Picker, id: string, counter: { n: number }): string {
  const words = 1 + p.int(4);
  const parts: string[] = [];
  for (let i = 0; i < words; i++) parts.push(word(p));
  const redirects = p.chance(0.45) ? 1 + p.int(3) : 0;
  for (let i = 0; i < redirects; i++) {
    parts.splice(p.int(parts.length + 1), 0, redirection(p, `w${id}_${counter.n++}`));
  }
  return parts.map((part, i) => (i === 0 ? part : spacing(p) + part)).join('');
}

/** One command string; `id` makes its write targets unique in a corpus. */
export function generateCommand(p: Picker, id: string): string {
  const counter = { n: 0 };
  const pipelines = 1 + (p.chance(0.4) ? p.int(3) : 0);
  let out = p.chance(0.1) ? spacing(p) : '';
  for (let i = 0; i < pipelines; i++) {
    if (i > 0) out += spacing(p) + p.pick(['&&', '||', ';']) + spacing(p);
    const stages = 1 + (p.chance(0.4) ? p.int(3) : 0);
    for (let j = 0; j < stages; j++) {
      if (j > 0) out += spacing(p) + '|' + spacing(p);
      out += stage(p, id, counter);
    }
  }
  if (p.chance(0.05)) out += p.pick([';', ' ;', '; ', ' ']);
  if (p.chance(0.25)) {
    const at = p.int(out.length + 1);
    out = out.slice(0, at) + p.pick(HOSTILE) + out.slice(at);
  }
  return out;
}

export function generateCorpus(count: number, seed: number): string[] {
  const p = new Picker(seededRandom(seed));
  return Array.from({ length: count }, (_, k) => generateCommand(p, String(k)));
}
