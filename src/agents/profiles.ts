// What a TUI coding agent's screen says: a permission prompt (its question and options), waiting for
// input, working, rate limited. One profile per agent; a profile's patterns can be overridden
// (withOverrides) so a UI change needs config, not a release. The keystrokes for each option are the
// ones that agent's prompt reads. Claude Code (verified live on 2.1.197): arrows from where the ❯
// cursor is, then Enter, one key at a time — a digit is typed into option 2's editable "don't ask
// again for: …" field when the cursor is on it, and Down Down Enter sent in one burst chose the wrong
// option. Gemini CLI's radio list takes the same arrows; Codex CLI the letter shown in parentheses;
// aider reads a line ("y" then Enter).
import { createHash } from 'node:crypto';
import type { SendItem } from '../sessions/tmux.js';

/** `running`: nothing the profile knows is on the screen (always so for a custom command's generic profile). */
export type AgentState = 'permission' | 'waiting' | 'working' | 'rate_limited' | 'idle' | 'running';

export const AGENT_NAMES = ['claude', 'codex', 'gemini', 'aider', 'generic'] as const;
export type AgentName = (typeof AGENT_NAMES)[number];

export interface PromptOption {
  /** The approval option id: the menu digit, or the letter of a y/n prompt. */
  id: string;
  label: string;
  effect: 'allow' | 'deny';
  /** What to type to choose it, as tmux send-keys items. */
  keys: SendItem[];
}

export interface Prompt {
  /** The question with the context above it (the command or file it is about). */
  question: string;
  options: PromptOption[];
  /** Same question and options on screen: same prompt. Cursor moves do not change it. */
  fingerprint: string;
}

export interface Detection {
  state: AgentState;
  prompt?: Prompt;
  /** The line that decided it (a rate limit's "resets 3pm", …). */
  detail?: string;
}

/** How a profile chooses an option of a menu: Up/Down from the cursor then Enter, its digit, or its "(y)" letter. */
export type MenuKeys = 'arrows' | 'digit' | 'shortcut';

export interface AgentPatterns {
  /** A numbered option line: group 1 the number, group 2 the label. Cursor glyphs are stripped first. */
  menuOption: RegExp;
  /** A y/n prompt on the last line: group 1 the question; its letters are parsed from it. */
  lineChoice: RegExp;
  waiting: RegExp[];
  working: RegExp[];
  rateLimit: RegExp[];
  /** Labels whose choice lets the agent go ahead. */
  allowLabel: RegExp;
  /** Unchanged this long while not working: idle. */
  idleMs: number;
}

export interface AgentProfile extends AgentPatterns {
  name: AgentName;
  menuKeys: MenuKeys;
  /** Pause between keys of one answer: a TUI that reads a burst as one input mis-parses it. */
  keyGapMs: number;
}

/** Left and right borders of boxes Ink UIs draw, and the cursor glyphs in front of the chosen option. */
const BOX = /^[\s\u2502\u2503\u2551|]+|[\s\u2502\u2503\u2551|]+$/g;
const CURSOR = /^[\u276f\u203a>\u25b6\u25cf\u258c*]\s*/;

const COMMON: AgentPatterns = {
  menuOption: /^(\d{1,2})\.\s+(.+?)\s*$/,
  lineChoice: /^(.*?\S)\s*(\[[yYnN]\/[yYnN]\]|(?:\([A-Za-z]\)[\w' ]*\/?){2,}\s*(?:\[\w+\])?)\s*:?\s*$/,
  waiting: [/^\s*[>\u276f\u203a]\s*$/, /Press Enter to continue/i],
  working: [/esc to (interrupt|cancel)/i],
  rateLimit: [/usage limit (reached|will reset)/i, /\blimit reached\b.*\breset/i, /hit your (\w+ )?(usage |rate )?limit/i, /\b429\b.*(too many requests|rate limit|rejected)/i, /rate_limit_error|RESOURCE_EXHAUSTED|quota exceeded/i],
  allowLabel: /^(yes|allow|approve|always|proceed|run|all|trust)\b/i,
  idleMs: 60_000,
};

const PROFILES: Record<AgentName, AgentProfile> = {
  claude: {
    ...COMMON,
    name: 'claude',
    menuKeys: 'arrows',
    keyGapMs: 150,
    // The input box is a ❯ line between two rules; "? for shortcuts" under it when nothing runs.
    waiting: [/^\s*[\u276f>]\s*$/, /\? for shortcuts/],
    working: [/esc to interrupt/i],
  },
  codex: { ...COMMON, name: 'codex', menuKeys: 'shortcut', keyGapMs: 0, waiting: [/^\s*[\u203a\u258c>]\s*(\S.*)?$/, /send\s+.*newline/i], working: [/esc to interrupt/i, /^\s*[\u2022\u25e6]\s*Working\b/] },
  gemini: { ...COMMON, name: 'gemini', menuKeys: 'arrows', keyGapMs: 150, waiting: [/Type your message/i], working: [/esc to cancel/i] },
  aider: { ...COMMON, name: 'aider', menuKeys: 'digit', keyGapMs: 0, waiting: [/^\s*(\w+ )?> ?$/], working: [/^\s*[\u2591\u2588\u2581\u2582\u2583\u2584\u2585\u2586\u2587]+\s*(Waiting|Updating)/] },
  generic: { ...COMMON, name: 'generic', menuKeys: 'digit', keyGapMs: 100 },
};

export function profile(name: AgentName): AgentProfile {
  return PROFILES[name];
}

export function isAgentName(name: string): name is AgentName {
  return (AGENT_NAMES as readonly string[]).includes(name);
}

/** Pattern overrides as config would hold them: regex sources, replacing the profile's lists. */
export interface PatternOverrides {
  waiting?: string[];
  working?: string[];
  rate_limit?: string[];
  allow_label?: string;
  idle_seconds?: number;
}

/** A profile with some of its patterns replaced; a bad regex is an error naming the field. */
export function withOverrides(base: AgentProfile, overrides: PatternOverrides): AgentProfile {
  const compile = (field: string, source: string): RegExp => {
    try {
      return new RegExp(source, 'i');
    } catch (err) {
      throw new Error(`agent ${base.name}: ${field}: bad regular expression ${JSON.stringify(source)}: ${(err as Error).message}`, { cause: err });
    }
  };
  const list = (field: string, sources: string[] | undefined, current: RegExp[]): RegExp[] => (sources ? sources.map((s, i) => compile(`${field}[${i}]`, s)) : current);
  if (overrides.idle_seconds !== undefined && !(overrides.idle_seconds > 0)) throw new Error(`agent ${base.name}: idle_seconds must be positive, got ${overrides.idle_seconds}`);
  return {
    ...base,
    waiting: list('waiting', overrides.waiting, base.waiting),
    working: list('working', overrides.working, base.working),
    rateLimit: list('rate_limit', overrides.rate_limit, base.rateLimit),
    allowLabel: overrides.allow_label === undefined ? base.allowLabel : compile('allow_label', overrides.allow_label),
    idleMs: overrides.idle_seconds === undefined ? base.idleMs : overrides.idle_seconds * 1000,
  };
}

/**
 * How much of a line the patterns read: its end, where a prompt's choices are. A line joined from its
 * wrapped rows can fill the screen, and the patterns' work grows with the square of a line's length: an
 * agent drawing such lines would otherwise keep the daemon's watcher busy for most of each tick.
 */
const MAX_LINE = 1000;

/** The screen's lines (each its last MAX_LINE characters) without box borders, trailing blank rows dropped. */
function rows(screen: string): string[] {
  const lines = screen.split('\n').map((l) => (l.length > MAX_LINE ? l.slice(-MAX_LINE) : l).replace(BOX, ''));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** How far from the bottom a prompt may sit (hint and status lines below it) and still be current. */
const PROMPT_ZONE = 8;
const CONTEXT_LINES = 8;

/** Detects the state of one screen (the visible pane). Idle needs time and is the watcher's call. */
export function detect(p: AgentProfile, screen: string): Detection {
  const lines = rows(screen);
  const prompt = findMenu(p, lines) ?? findLineChoice(p, lines);
  if (prompt) return { state: 'permission', prompt };
  const tail = lines.filter((l) => l.trim() !== '').slice(-PROMPT_ZONE * 2);
  const hit = (patterns: RegExp[]): string | undefined => tail.find((l) => patterns.some((r) => r.test(l)));
  const limited = hit(p.rateLimit);
  if (limited !== undefined) return { state: 'rate_limited', detail: limited.trim() };
  const working = hit(p.working);
  if (working !== undefined) return { state: 'working', detail: working.trim() };
  const waiting = lines.filter((l) => l.trim() !== '').slice(-PROMPT_ZONE).find((l) => p.waiting.some((r) => r.test(l)));
  if (waiting !== undefined) return { state: 'waiting' };
  return { state: 'running' };
}

/**
 * The last run of numbered options 1..n near the bottom, with a question above it. It is a permission
 * prompt when some option allows and some does not (a theme picker is not one).
 */
function findMenu(p: AgentProfile, lines: string[]): Prompt | null {
  let end = -1;
  for (let i = lines.length - 1, seen = 0; i >= 0 && seen <= PROMPT_ZONE; i--) {
    if (lines[i]!.trim() === '') continue;
    seen++;
    if (option(p, lines[i]!) !== null) {
      end = i;
      break;
    }
  }
  if (end < 0) return null;
  let start = end;
  while (start > 0 && (option(p, lines[start - 1]!) !== null || lines[start - 1]!.trim() === '')) start--;
  const parsed = lines.slice(start, end + 1).map((l) => option(p, l)).filter((o) => o !== null);
  if (!parsed.every((o, i) => o.n === i + 1) || parsed.length < 2) return null;
  const cursor = parsed.find((o) => o.current)?.n ?? null;
  const options = parsed.map((o): PromptOption => ({ id: String(o.n), label: o.label, effect: p.allowLabel.test(o.label) ? 'allow' : 'deny', keys: menuKeys(p, o, cursor) }));
  if (!options.some((o) => o.effect === 'allow') || !options.some((o) => o.effect === 'deny')) return null;
  const question = context(lines, start);
  if (question === null) return null;
  return { question, options, fingerprint: fingerprint(question, options) };
}

interface MenuLine {
  n: number;
  label: string;
  shortcut: string | null;
  /** The cursor glyph is in front of it. */
  current: boolean;
}

function option(p: AgentProfile, line: string): MenuLine | null {
  const trimmed = line.trim();
  const m = p.menuOption.exec(trimmed.replace(CURSOR, ''));
  if (!m) return null;
  const label = m[2]!;
  const shortcut = /\((esc|[a-z])\)\s*$/i.exec(label)?.[1] ?? null;
  return { n: Number(m[1]), label, shortcut, current: CURSOR.test(trimmed) };
}

function menuKeys(p: AgentProfile, o: MenuLine, cursor: number | null): SendItem[] {
  if (p.menuKeys === 'shortcut' && o.shortcut !== null) return o.shortcut.toLowerCase() === 'esc' ? [{ key: 'Escape' }] : [{ text: o.shortcut.toLowerCase() }];
  if (p.menuKeys === 'arrows' && cursor !== null) {
    const moves = o.n - cursor;
    return [...Array<SendItem>(Math.abs(moves)).fill({ key: moves > 0 ? 'Down' : 'Up' }), { key: 'Enter' }];
  }
  return [{ text: String(o.n) }];
}

/** The lines above the options up to a rule (at most CONTEXT_LINES); one of them must ask ("?" or a final ":"). */
function context(lines: string[], optionsStart: number): string | null {
  const kept: string[] = [];
  for (let i = optionsStart - 1; i >= 0 && kept.length < CONTEXT_LINES; i--) {
    const line = lines[i]!.trim();
    if (/^[\u2500\u2501\u2550\u256d\u2570-]{3,}/.test(line)) break;
    if (line !== '') kept.unshift(line);
  }
  return kept.some((l) => l.includes('?') || l.endsWith(':')) ? kept.join('\n') : null;
}

/** A y/n line prompt on the last non-blank line: "Continue? [y/N]", aider's "(Y)es/(N)o/(D)on't ask again [Yes]:". */
function findLineChoice(p: AgentProfile, lines: string[]): Prompt | null {
  const last = lines.filter((l) => l.trim() !== '').at(-1);
  if (last === undefined) return null;
  const m = p.lineChoice.exec(last.trim());
  if (!m) return null;
  const choices = m[2]!;
  const options: PromptOption[] = [];
  if (choices.startsWith('[')) {
    for (const [id, label] of [
      ['y', 'Yes'],
      ['n', 'No'],
    ] as const) {
      options.push({ id, label, effect: id === 'y' ? 'allow' : 'deny', keys: [{ text: id }, { key: 'Enter' }] });
    }
  } else {
    for (const c of choices.matchAll(/\(([A-Za-z])\)([\w' ]*)/g)) {
      const label = `${c[1]!}${c[2]!}`.trim();
      const id = c[1]!.toLowerCase();
      options.push({ id, label, effect: p.allowLabel.test(label) ? 'allow' : 'deny', keys: [{ text: id }, { key: 'Enter' }] });
    }
  }
  if (!options.some((o) => o.effect === 'allow') || !options.some((o) => o.effect === 'deny')) return null;
  const question = m[1]!.trim();
  return { question, options, fingerprint: fingerprint(question, options) };
}

function fingerprint(question: string, options: PromptOption[]): string {
  return createHash('sha256').update(JSON.stringify([question, options.map((o) => [o.id, o.label])])).digest('hex').slice(0, 16);
}
