// The strict command parser: a single forward pass over UTF-16 code units, no regexes, no backtracking.
// It accepts the subset of POSIX sh / bash syntax whose meaning is fully static (words, quotes, pipes,
// && || ;, simple file redirections) and rejects everything else with the construct's name and position.

import { ParseError } from './types.js';
import type { CommandList, Connector, Pipeline, Redirect, Stage } from './types.js';

const TAB = 9;
const SPACE = 32;
const BANG = 33;
const DQUOTE = 34;
const HASH = 35;
const DOLLAR = 36;
const AMP = 38;
const SQUOTE = 39;
const LPAREN = 40;
const RPAREN = 41;
const PLUS = 43;
const DIGIT_0 = 48;
const DIGIT_9 = 57;
const SEMI = 59;
const LT = 60;
const EQUALS = 61;
const GT = 62;
const BACKSLASH = 92;
const BACKTICK = 96;
const LBRACE = 123;
const PIPE = 124;

// Classes of ASCII code units outside quotes.
const K_WORD = 0; // literal word character
const K_END = 1; // ends a word: blank or one of | & ; < > ( )
const K_SQUOTE = 2;
const K_DQUOTE = 3;
const K_BACKSLASH = 4;
const K_DOLLAR = 5;
const K_BACKTICK = 6;
const K_GLOB = 7; // * ? [
const K_BRACE = 8; // { }
const K_BANG = 9;
const K_HASH = 10; // comment at word start, literal inside a word (as in bash)
const K_TILDE = 11;
const K_EQCOLON = 12; // literal, but a following ~ could be tilde-expanded by bash
const K_CONTROL = 13;

const CLASS = new Uint8Array(128);
for (let c = 0; c < 32; c++) CLASS[c] = K_CONTROL;
CLASS[127] = K_CONTROL;
for (const ch of ' \t|&;<>()') CLASS[ch.charCodeAt(0)] = K_END;
CLASS[SQUOTE] = K_SQUOTE;
CLASS[DQUOTE] = K_DQUOTE;
CLASS[BACKSLASH] = K_BACKSLASH;
CLASS[DOLLAR] = K_DOLLAR;
CLASS[BACKTICK] = K_BACKTICK;
for (const ch of '*?[') CLASS[ch.charCodeAt(0)] = K_GLOB;
for (const ch of '{}') CLASS[ch.charCodeAt(0)] = K_BRACE;
CLASS[BANG] = K_BANG;
CLASS[HASH] = K_HASH;
CLASS['~'.charCodeAt(0)] = K_TILDE;
CLASS[EQUALS] = K_EQCOLON;
CLASS[':'.charCodeAt(0)] = K_EQCOLON;

// Words bash treats as syntax when unquoted in command position.
export const RESERVED = new Set([
  'if', 'then', 'else', 'elif', 'fi', 'do', 'done', 'case', 'esac', 'while', 'until', 'for',
  'function', 'select', 'time', 'coproc', ']]', 'in',
]);

/** Parses a command string in the strict grammar. Throws ParseError for anything outside it. */
export function parseCommand(source: string): CommandList {
  return new Parser(source).parse();
}

function isDigit(c: number): boolean {
  return c >= DIGIT_0 && c <= DIGIT_9;
}

function isIdentStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}

/** Whether code unit `c` (NaN past the end of input) ends a word: end of input, a blank or an operator. */
function endsWord(c: number): boolean {
  return Number.isNaN(c) || (c < 128 && CLASS[c] === K_END);
}

function controlName(c: number): string {
  if (c === 0) return 'NUL byte';
  if (c === 10) return 'newline';
  if (c === 13) return 'carriage return';
  return `control character U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** A construct the grammar forbids: "… is not allowed (at column N)". */
function fail(construct: string, position: number): never {
  throw new ParseError(construct, position);
}

/** Input that is malformed rather than forbidden: "construct (at column N)". */
function malformed(construct: string, position: number): never {
  throw new ParseError(construct, position, `${construct} (at column ${position + 1})`);
}

class Parser {
  private i = 0;
  private readonly n: number;
  /** Set by word(): whether any part of the last word was quoted or backslash-escaped. */
  private quoted = false;

  constructor(private readonly s: string) {
    this.n = s.length;
  }

  parse(): CommandList {
    const s = this.s;
    const items: CommandList['items'] = [];
    let op: Connector | null = null;
    for (;;) {
      items.push({ op, pipeline: this.pipeline() });
      if (this.i >= this.n) return { items };
      // pipeline() returns only at end of input or before `||`, `&&` or `;`.
      const c = s.charCodeAt(this.i);
      if (c === SEMI) {
        op = ';';
        this.i++;
        this.skipBlanks();
        if (this.i >= this.n) return { items }; // a trailing `;` is valid sh and adds nothing
      } else {
        op = c === AMP ? '&&' : '||';
        this.i += 2;
      }
    }
  }

  private pipeline(): Pipeline {
    const s = this.s;
    const stages = [this.stage()];
    while (this.i < this.n && s.charCodeAt(this.i) === PIPE) {
      const next = s.charCodeAt(this.i + 1);
      if (next === PIPE) break;
      if (next === AMP) fail('pipe |&', this.i);
      this.i++;
      stages.push(this.stage());
    }
    return { stages };
  }

  private stage(): Stage {
    const s = this.s;
    const n = this.n;
    this.skipBlanks();
    const pos = this.i;
    const argv: string[] = [];
    const redirects: Redirect[] = [];
    loop: for (;;) {
      this.skipBlanks();
      const i = this.i;
      if (i >= n) break;
      const c = s.charCodeAt(i);
      switch (c) {
        case PIPE:
          break loop;
        case SEMI: {
          const next = s.charCodeAt(i + 1);
          if (next === SEMI) fail('case terminator ;;', i);
          if (next === AMP) fail('case terminator ;&', i);
          break loop;
        }
        case AMP: {
          const next = s.charCodeAt(i + 1);
          if (next === AMP) break loop;
          if (next === GT) fail('redirection &>', i);
          return fail('background &', i);
        }
        case LPAREN:
        case RPAREN:
          return fail(`subshell ${String.fromCharCode(c)}`, i);
        case LT:
          redirects.push(this.readRedirect(i));
          continue;
        case GT:
          redirects.push(this.writeRedirect(i, 1, i));
          continue;
      }
      if (isDigit(c)) {
        // Like bash: an unquoted all-digit word directly followed by < or > is a file descriptor number.
        let j = i + 1;
        while (j < n && isDigit(s.charCodeAt(j))) j++;
        const after = s.charCodeAt(j);
        if (after === GT || after === LT) {
          const fd = j === i + 1 ? c - DIGIT_0 : -1;
          if (after === GT && (fd === 1 || fd === 2)) {
            redirects.push(this.writeRedirect(i, fd, j));
            continue;
          }
          fail(`redirection of file descriptor ${s.slice(i, Math.min(j, i + 12))}`, i);
        }
      }
      const word = this.word();
      if (argv.length === 0) this.checkCommandWord(word, i);
      argv.push(word);
    }
    if (argv.length === 0) {
      if (redirects.length > 0) malformed('redirection without a command', pos);
      malformed('empty command', this.i);
    }
    return { argv, redirects, pos };
  }

  /** Rejects what bash would not run as a plain command name: assignments and reserved words. */
  private checkCommandWord(word: string, start: number): void {
    const s = this.s;
    if (isIdentStart(s.charCodeAt(start))) {
      let j = start + 1;
      let c = s.charCodeAt(j);
      while (isIdentStart(c) || isDigit(c)) c = s.charCodeAt(++j);
      if (c === PLUS) c = s.charCodeAt(j + 1);
      if (c === EQUALS) fail('variable assignment', start);
    }
    if (!this.quoted && RESERVED.has(word)) fail(`reserved word ${word}`, start);
  }

  /** `<` at `pos`: only a plain input file. */
  private readRedirect(pos: number): Redirect {
    const next = this.s.charCodeAt(pos + 1);
    if (next === LT) {
      if (this.s.charCodeAt(pos + 2) === LT) fail('here-string <<<', pos);
      fail('here-document <<', pos);
    }
    if (next === GT) fail('read-write redirection <>', pos);
    if (next === AMP) fail('file descriptor duplication <&', pos);
    if (next === LPAREN) fail('process substitution <(…)', pos);
    this.i = pos + 1;
    return { kind: 'read', fd: 0, path: this.target(), pos };
  }

  /** `>` at `gt` for descriptor `fd`, the redirection starting at `pos` (the fd digit, if written). */
  private writeRedirect(pos: number, fd: 1 | 2, gt: number): Redirect {
    const s = this.s;
    let k = gt + 1;
    const next = s.charCodeAt(k);
    if (next === PIPE) fail('clobber redirection >|', pos);
    if (next === LPAREN) fail('process substitution >(…)', pos);
    if (next === AMP) {
      if (fd === 2 && s.charCodeAt(k + 1) === DIGIT_0 + 1 && endsWord(s.charCodeAt(k + 2))) {
        this.i = k + 2;
        return { kind: 'dup', fd: 2, to: 1, pos };
      }
      fail('file descriptor duplication >&', pos);
    }
    const append = next === GT;
    if (append) k++;
    this.i = k;
    return { kind: 'write', fd, path: this.target(), append, pos };
  }

  private target(): string {
    const s = this.s;
    this.skipBlanks();
    const start = this.i;
    const c = s.charCodeAt(start);
    if (endsWord(c)) malformed('missing redirection target', start);
    if (isDigit(c)) {
      // bash reads `> 2>f` as two redirections with no target for the first.
      let j = start + 1;
      while (isDigit(s.charCodeAt(j))) j++;
      const after = s.charCodeAt(j);
      if (after === GT || after === LT) malformed('missing redirection target', start);
    }
    const path = this.word();
    if (path === '') malformed('empty redirection target', start);
    return path;
  }

  /** Reads one word starting at this.i (which is not blank or an operator), removing quotes. */
  private word(): string {
    const s = this.s;
    const n = this.n;
    const start = this.i;
    let i = start;
    let out = '';
    let run = i; // start of the pending run of literal characters, copied with one slice
    let quoted = false;
    // Whether the previous character was an unquoted literal other than = and :, after which a ~ is
    // never tilde-expanded by bash. Deliberately conservative: quotes and escapes reset it.
    let plainBefore = false;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c >= 128) {
        i += this.nonAscii(c, i);
        plainBefore = true;
        continue;
      }
      switch (CLASS[c]) {
        case K_WORD:
          plainBefore = true;
          i++;
          continue;
        case K_EQCOLON:
          plainBefore = false;
          i++;
          continue;
        case K_END:
          break;
        case K_SQUOTE: {
          const close = this.singleQuoteEnd(i);
          out += s.slice(run, i) + s.slice(i + 1, close);
          i = run = close + 1;
          quoted = true;
          plainBefore = false;
          continue;
        }
        case K_DQUOTE:
          out += s.slice(run, i);
          out += this.doubleQuoted(i);
          i = run = this.i;
          quoted = true;
          plainBefore = false;
          continue;
        case K_BACKSLASH: {
          out += s.slice(run, i);
          if (i + 1 >= n) fail('trailing backslash', i);
          const d = s.charCodeAt(i + 1);
          if ((d < 32 && d !== TAB) || d === 127) fail(controlName(d), i + 1);
          const len = d >= 128 ? this.nonAscii(d, i + 1) : 1;
          out += s.slice(i + 1, i + 1 + len);
          i += 1 + len;
          run = i;
          quoted = true;
          plainBefore = false;
          continue;
        }
        case K_HASH:
          if (i === start) fail('comment #', i);
          plainBefore = true;
          i++;
          continue;
        case K_TILDE:
          if (!plainBefore) fail('tilde expansion ~', i);
          i++;
          continue;
        case K_DOLLAR:
          return this.dollar(i, false);
        case K_BACKTICK:
          return fail('command substitution `…`', i);
        case K_GLOB:
          return fail(`unquoted glob ${String.fromCharCode(c)}`, i);
        case K_BRACE:
          return fail(`unquoted brace ${String.fromCharCode(c)}`, i);
        case K_BANG:
          return fail('unquoted !', i);
        default:
          return fail(controlName(c), i);
      }
      break;
    }
    this.i = i;
    this.quoted = quoted;
    return run === start ? s.slice(start, i) : out + s.slice(run, i);
  }

  /** Checks a code unit ≥ 128 at `i`; returns how many code units its character spans. */
  private nonAscii(c: number, i: number): number {
    if (c < 0xd800 || c > 0xdfff) {
      if (c <= 0x9f) fail(controlName(c), i);
      return 1;
    }
    const low = this.s.charCodeAt(i + 1);
    if (c <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) return 2;
    return fail('unpaired UTF-16 surrogate', i);
  }

  /** Validates '…' opened at `open`; returns the index of the closing quote. */
  private singleQuoteEnd(open: number): number {
    const s = this.s;
    const n = this.n;
    let i = open + 1;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === SQUOTE) return i;
      i += this.quotedCharWidth(c, i);
    }
    return malformed('unterminated single quote', open);
  }

  /** Reads "…" opened at `open` with bash's backslash rules; sets this.i after the close. */
  private doubleQuoted(open: number): string {
    const s = this.s;
    const n = this.n;
    let i = open + 1;
    let out = '';
    let run = i;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === DQUOTE) {
        this.i = i + 1;
        return out + s.slice(run, i);
      }
      if (c === BACKSLASH) {
        const d = s.charCodeAt(i + 1);
        // Only \" \\ \$ \` lose the backslash; before anything else it stays (and the next char is read normally).
        if (d === DQUOTE || d === BACKSLASH || d === DOLLAR || d === BACKTICK) {
          out += s.slice(run, i);
          run = i + 1;
          i += 2;
        } else {
          i++;
        }
        continue;
      }
      if (c === DOLLAR) this.dollar(i, true);
      if (c === BACKTICK) fail('command substitution `…`', i);
      i += this.quotedCharWidth(c, i);
    }
    return malformed('unterminated double quote', open);
  }

  /** Inside quotes: rejects control characters and returns how many code units the character at `i` spans. */
  private quotedCharWidth(c: number, i: number): number {
    if ((c < 32 && c !== TAB) || c === 127) fail(controlName(c), i);
    return c > 127 ? this.nonAscii(c, i) : 1;
  }

  /** Rejects the `$` at `i`, naming the expansion bash would perform. */
  private dollar(i: number, inDoubleQuotes: boolean): never {
    const s = this.s;
    const d = s.charCodeAt(i + 1);
    if (d === LPAREN) {
      if (s.charCodeAt(i + 2) === LPAREN) fail('arithmetic expansion $((…))', i);
      fail('command substitution $(…)', i);
    }
    if (d === LBRACE) fail('parameter expansion ${…}', i);
    if (!inDoubleQuotes && d === SQUOTE) fail("ANSI-C quoting $'…'", i);
    if (!inDoubleQuotes && d === DQUOTE) fail('locale translation $"…"', i);
    if (isIdentStart(d)) fail('parameter expansion $NAME', i);
    if (isDigit(d) || (d < 128 && '@*#?-$!'.includes(String.fromCharCode(d)))) {
      fail(`special parameter $${String.fromCharCode(d)}`, i);
    }
    return fail('dollar sign $', i);
  }

  private skipBlanks(): void {
    const s = this.s;
    let i = this.i;
    for (let c = s.charCodeAt(i); c === SPACE || c === TAB; c = s.charCodeAt(++i));
    this.i = i;
  }
}
