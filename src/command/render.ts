// Renders a parsed command back into POSIX sh syntax, for the one place a remote shell is unavoidable
// (an SSH exec channel). The output means exactly the given argv and redirections to sh, dash and bash.
// Rendered for people (`names: 'plain'`: the audit, approvals), a command name stays bare where remux's
// own parser reads it back as that name; that string is never given to a shell.

import { RESERVED } from './parser.js';
import type { CommandList, Redirect, Stage } from './types.js';

/** `quoted`: every command name quoted, for a shell. `plain`: bare where remux's parser reads it back the same. */
export type NameQuoting = 'quoted' | 'plain';

// Characters that are literal in every POSIX shell wherever they appear in a word. `=` is excluded at the
// start of a word (zsh expands `=cmd`); everything else is single-quoted.
const BARE = new Uint8Array(128);
for (const ch of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./@%+,:=-') {
  BARE[ch.charCodeAt(0)] = 1;
}

/** Why `word` cannot be an argv element (a NUL, or invalid UTF-16: it is sent as UTF-8), or null. */
export function argvWordProblem(word: string): string | null {
  for (let i = 0; i < word.length; i++) {
    const c = word.charCodeAt(i);
    if (c === 0) return `NUL (at index ${i})`;
    if (c >= 0xd800 && c <= 0xdfff) {
      const low = word.charCodeAt(i + 1);
      if (c > 0xdbff || !(low >= 0xdc00 && low <= 0xdfff)) return `an unpaired surrogate (at index ${i})`;
      i++;
    }
  }
  return null;
}

function checkArgvString(word: string): void {
  const problem = argvWordProblem(word);
  if (problem !== null) throw new TypeError(`cannot quote a word containing ${problem}`);
}

function singleQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Quotes one argument word so that a POSIX shell reads it back as exactly `word`. */
export function quoteWord(word: string): string {
  checkArgvString(word);
  if (word.length === 0 || word.charCodeAt(0) === 61) return singleQuote(word);
  for (let i = 0; i < word.length; i++) {
    const c = word.charCodeAt(i);
    if (c >= 128 || BARE[c] === 0) return singleQuote(word);
  }
  return word;
}

/**
 * The command name is always quoted: a quoted word is never a reserved word (`time`, `if`), an alias or
 * a variable assignment (`A=b`) to the shell.
 */
function quoteCommandName(word: string, names: NameQuoting): string {
  checkArgvString(word);
  // remux's parser refuses an unquoted reserved word or assignment as a name; anything else plain reads back as itself.
  if (names === 'plain' && !word.includes('=') && !RESERVED.has(word)) return quoteWord(word);
  return singleQuote(word);
}

function renderRedirect(r: Redirect): string {
  if (r.kind === 'dup') return '2>&1';
  if (r.path === '') throw new TypeError('redirection target must not be empty');
  if (r.kind === 'read') return `< ${quoteWord(r.path)}`;
  return `${r.fd === 2 ? '2' : ''}${r.append ? '>>' : '>'} ${quoteWord(r.path)}`;
}

function renderStage(stage: Stage, names: NameQuoting): string {
  const [name, ...args] = stage.argv;
  if (name === undefined) throw new TypeError('a stage needs at least one argv word');
  // Operators are always preceded by a space, so an argument such as `2` is never read as a descriptor.
  return [quoteCommandName(name, names), ...args.map(quoteWord), ...stage.redirects.map(renderRedirect)].join(' ');
}

/**
 * Renders `list` as one line of POSIX sh (`names: 'plain'`: for people and remux's parser, see the header).
 * `stageText` may replace each stage's text (its index counted across the list; `text` is as rendered).
 */
export function renderCommandList(list: CommandList, names: NameQuoting = 'quoted', stageText?: (stage: Stage, index: number, text: string) => string): string {
  let index = 0;
  if (list.items.length === 0) throw new TypeError('a command list needs at least one pipeline');
  return list.items
    .map(({ op, pipeline }, k) => {
      if ((k === 0) !== (op === null)) throw new TypeError('only the first pipeline has no connector');
      if (pipeline.stages.length === 0) throw new TypeError('a pipeline needs at least one stage');
      const text = pipeline.stages
        .map((stage) => {
          const own = renderStage(stage, names);
          return stageText ? stageText(stage, index++, own) : own;
        })
        .join(' | ');
      return op === null ? text : ` ${op} ${text}`;
    })
    .join('');
}
