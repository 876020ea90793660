// Path globs of policy rules. Hand-written rather than picomatch so the grammar is exactly the documented
// one (no extglobs, ranges or negation to disable), and matched without a backtracking RegExp: paths are
// attacker-controlled and `/**/a/**/a/**/b` as a RegExp is polynomial in the path length.
//   *  any characters within one segment, dotfiles included      ?  one character within a segment
//   [abc] [a-z] [!x] [^x]  one character of / not of a class     {a,b}  alternatives within a segment
//   ** as a whole segment: zero or more segments, so /var/log/** matches /var/log, /var/log/syslog and deeper
// Patterns are absolute and normalised and are matched against normalised absolute paths, segment by
// segment, so /var/log/** never matches /var/logs.

export class GlobError extends Error {
  override name = 'GlobError';
}

export interface GlobMatcher {
  test(path: string): boolean;
  /** Whether it matches `dir` or some path below it: what a program reading `dir` recursively may reach. */
  below(dir: string): boolean;
}

/** Within one segment: a literal run, one character (? or a class), or * (any run). */
type Token = { lit: string } | { one: RegExp | null } | 'star';
/** A pattern segment: its brace alternatives, each a token list; or ** (any number of segments). */
type Unit = Token[][] | 'globstar';

const SPECIAL = /[*?[{]/;
const MAX_ALTERNATIVES = 1024; // {a,b}{c,d}… multiplies; policies are small, so this is only a backstop

function isGlob(pattern: string): boolean {
  return SPECIAL.test(pattern);
}

const cache = new Map<string, GlobMatcher>();

/** The matcher for a path glob, built once per pattern; throws GlobError describing what is wrong. */
export function compileGlob(pattern: string): GlobMatcher {
  let matcher = cache.get(pattern);
  if (!matcher) {
    matcher = build(pattern);
    if (cache.size >= 10_000) cache.clear();
    cache.set(pattern, matcher);
  }
  return matcher;
}

/** Null when the pattern is a valid path glob, else why not. */
export function globError(pattern: string): string | null {
  try {
    compileGlob(pattern);
    return null;
  } catch (err) {
    if (err instanceof GlobError) return err.message;
    throw err;
  }
}

/** The literal directories before the first glob character, whole segments only: /srv/*.txt → /srv. */
export function globPrefix(pattern: string): string {
  const segments = pattern.split('/');
  const literal = segments.findIndex((s) => SPECIAL.test(s));
  const kept = literal < 0 ? segments : segments.slice(0, literal);
  return kept.join('/') || '/';
}

function build(pattern: string): GlobMatcher {
  const units = parse(pattern);
  const segments = (path: string): string[] => (path === '/' ? [] : path.slice(1).split('/'));
  // The common shapes need no segment walk: a literal path, and a literal tree (/var/log/**).
  if (!isGlob(pattern)) return { test: (path) => path === pattern, below: (dir) => isInside(pattern, dir) };
  const prefix = globPrefix(pattern);
  if (pattern === `${prefix === '/' ? '' : prefix}/**`) {
    return { test: (path) => isInside(path, prefix), below: (dir) => isInside(dir, prefix) || isInside(prefix, dir) };
  }
  return { test: (path) => matchUnits(units, segments(path)), below: (dir) => startsMatch(units, segments(dir)) };
}

/** `path` is `dir` or lies below it, by whole segments. */
function isInside(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(`${dir}/`);
}

/**
 * Whether some path made of `segments` and then any more matches the units: the units that can follow
 * each prefix are tracked (a ** stays, or is passed over), O(segments × units). Every unit left after
 * the segments can match some name, so any left means a match below.
 */
function startsMatch(units: readonly Unit[], segments: readonly string[]): boolean {
  const passGlobstars = (at: Set<number>): Set<number> => {
    for (const u of at) if (units[u] === 'globstar') at.add(u + 1);
    return at;
  };
  let at = passGlobstars(new Set([0]));
  for (const seg of segments) {
    const next = new Set<number>();
    for (const u of at) {
      const unit = units[u];
      if (unit === 'globstar') next.add(u);
      else if (unit !== undefined && unit.some((alt) => matchTokens(alt, seg))) next.add(u + 1);
    }
    if (next.size === 0) return false;
    at = passGlobstars(next);
  }
  return true;
}

function parse(pattern: string): Unit[] {
  if (!pattern.startsWith('/')) throw new GlobError('must be an absolute path (start with /)');
  if (pattern.includes('\0')) throw new GlobError('contains a NUL byte');
  if (pattern.includes('\\')) throw new GlobError('backslash escapes are not supported (use [*] for a literal *)');
  if (pattern === '/') return [];
  return pattern
    .slice(1)
    .split('/')
    .map((seg): Unit => {
      if (seg === '') throw new GlobError('empty path segment (// or a trailing /)');
      if (seg === '.' || seg === '..') throw new GlobError(`"${seg}" segments are not allowed; write the normalised path`);
      if (seg === '**') return 'globstar';
      if (seg.includes('**')) throw new GlobError('** must be a whole path segment (/a/**/b), not part of a name');
      return alternatives(seg).map(tokens);
    });
}

/** Brace alternatives of a segment, expanded: `a{b,c}d` → abd, acd. Braces inside [ ] are members. */
function alternatives(seg: string): string[] {
  const open = findOutsideClasses(seg, '{', 0);
  const close = findOutsideClasses(seg, '}', open < 0 ? 0 : open);
  if (open < 0) {
    if (close >= 0) throw new GlobError('unbalanced }');
    return [seg];
  }
  if (close < 0) throw new GlobError('unbalanced {');
  const body = seg.slice(open + 1, close);
  if (findOutsideClasses(body, '{', 0) >= 0) throw new GlobError('nested { } are not supported');
  if (findOutsideClasses(seg.slice(0, open), '}', 0) >= 0) throw new GlobError('unbalanced }');
  const rest = alternatives(seg.slice(close + 1));
  const out = body.split(',').flatMap((alt) => rest.map((r) => seg.slice(0, open) + alt + r));
  if (out.length > MAX_ALTERNATIVES) throw new GlobError(`more than ${MAX_ALTERNATIVES} { } alternatives`);
  return out;
}

function findOutsideClasses(seg: string, char: string, from: number): number {
  for (let i = from; i < seg.length; i++) {
    if (seg[i] === '[') i = classEnd(seg, i);
    else if (seg[i] === char) return i;
  }
  return -1;
}

function tokens(seg: string): Token[] {
  const out: Token[] = [];
  let lit = '';
  const flush = (): void => {
    if (lit) out.push({ lit });
    lit = '';
  };
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i] as string;
    if (c === '*') {
      flush();
      if (out[out.length - 1] !== 'star') out.push('star');
    } else if (c === '?') {
      flush();
      out.push({ one: null });
    } else if (c === '[') {
      flush();
      const end = classEnd(seg, i);
      out.push({ one: characterClass(seg.slice(i + 1, end)) });
      i = end;
    } else if (c === ']') {
      throw new GlobError('unbalanced ]');
    } else {
      lit += c;
    }
  }
  flush();
  return out;
}

/** Index of the `]` closing the class opened at `start`; a `]` right after `[` or `[!` is a member. */
function classEnd(seg: string, start: number): number {
  let i = start + 1;
  if (seg[i] === '!' || seg[i] === '^') i++;
  if (seg[i] === ']') i++;
  const end = seg.indexOf(']', i);
  if (end < 0) throw new GlobError('unbalanced [');
  return end;
}

function characterClass(body: string): RegExp {
  const negated = body.startsWith('!') || body.startsWith('^');
  const members = negated ? body.slice(1) : body;
  if (members.includes('[:')) throw new GlobError('POSIX classes such as [[:alpha:]] are not supported');
  // Members are escaped except `-`, which keeps its range meaning.
  const escaped = members.replace(/[\]\\^[]/g, '\\$&');
  try {
    return new RegExp(negated ? `^[^${escaped}]$` : `^[${escaped}]$`);
  } catch {
    throw new GlobError(`invalid character class [${body}]`);
  }
}

/**
 * Wildcard matching that backtracks only to the last star: O(pattern × input) at both levels, with **
 * over segments and * over characters within a segment.
 */
function matchUnits(units: readonly Unit[], segments: readonly string[]): boolean {
  let u = 0;
  let s = 0;
  let starU = -1;
  let starS = 0;
  while (s < segments.length || u < units.length) {
    const unit = units[u];
    if (unit === 'globstar') {
      starU = u++;
      starS = s;
      continue;
    }
    if (unit !== undefined && s < segments.length && unit.some((alt) => matchTokens(alt, segments[s] as string))) {
      u++;
      s++;
      continue;
    }
    if (starU < 0 || starS >= segments.length) return false;
    s = ++starS;
    u = starU + 1;
  }
  return true;
}

function matchTokens(toks: readonly Token[], text: string): boolean {
  let t = 0;
  let i = 0;
  let starT = -1;
  let starI = 0;
  while (i < text.length || t < toks.length) {
    const tok = toks[t];
    if (tok === 'star') {
      starT = t++;
      starI = i;
      continue;
    }
    if (tok !== undefined) {
      if ('lit' in tok) {
        if (text.startsWith(tok.lit, i)) {
          i += tok.lit.length;
          t++;
          continue;
        }
      } else if (i < text.length && (tok.one === null || tok.one.test(text[i] as string))) {
        i++;
        t++;
        continue;
      }
    }
    if (starT < 0 || starI >= text.length) return false;
    i = ++starI;
    t = starT + 1;
  }
  return true;
}
