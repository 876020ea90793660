// tmux as remux drives it: fixed argv built here (never a user string handed to a shell), the command
// lists that run them on a host (Host.execute: no shell locally, render.ts quoting over SSH), and the
// parsing of what tmux answers.
import type { CommandList, Stage } from '../command/types.js';
import { argvWordProblem } from '../command/render.js';
import { UsageError } from '../core/errors.js';
import type { TmuxSocket } from '../hosts/inventory.js';

/**
 * Names remux creates and targets: nothing a shell or tmux's target syntax (`:` `.`) reads specially.
 * A leading `-` is harmless: a name is always the value of -s, or follows `=` in a target.
 */
const SESSION_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Why `name` cannot name a session, or null. */
export function sessionNameProblem(name: string): string | null {
  if (SESSION_NAME.test(name)) return null;
  const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
  return `bad session name ${shown}: use 1-64 letters, digits, "_" or "-"`;
}

/** Which tmux server, as whom: the host's login user runs tmux directly, anyone else through `sudo -n -u`. */
export interface TmuxTarget {
  loginUser: string;
  user: string;
  socket: TmuxSocket | null;
}

export function tmuxArgv(target: TmuxTarget, args: readonly string[]): string[] {
  const socket = target.socket === null ? [] : target.socket.kind === 'name' ? ['-L', target.socket.name] : ['-S', target.socket.path];
  const tmux = ['tmux', ...socket, ...args];
  return target.user === target.loginUser ? tmux : ['sudo', '-n', '-u', target.user, ...tmux];
}

/** `=NAME` matches the session exactly (a bare name also matches any session it is a prefix of). */
export const sessionTarget = (name: string): string => `=${name}`;
/** The active pane of the session's current window. */
export const paneTarget = (name: string): string => `=${name}:`;

function stage(argv: string[], redirects: Stage['redirects'] = []): Stage {
  return { argv, redirects, pos: 0 };
}

/** Stages run one after another: each only if the one before succeeded (&&) or failed (||). */
export function commandList(first: Stage, ...rest: Array<['&&' | '||', Stage]>): CommandList {
  return {
    items: [{ op: null, pipeline: { stages: [first] } }, ...rest.map(([op, s]) => ({ op, pipeline: { stages: [s] } }))],
  };
}

export function single(argv: string[]): CommandList {
  return commandList(stage(argv));
}

// ---- Listing ---------------------------------------------------------------------------------

/** Numbers first and the name last: a name is the rest of the line, whatever it holds. */
export const LIST_FORMAT = '#{session_windows}:#{session_created}:#{session_activity}:#{session_attached}:#{session_name}';
const LIST_LINE = /^(\d+):(\d+):(\d+):(\d+):(.*)$/;
/** The clients, listed by the same tmux invocation (`;`): remux's session recorders are not counted as attached. */
export const CLIENT_FORMAT = 'client:#{client_flags}:#{session_name}';
const CLIENT_LINE = /^client:([^:]*):(.*)$/;
/** A session recorder (session-recorder.ts): a control client, read-only, ignoring size. A person's client is not all three. */
const RECORDER_FLAGS = ['control-mode', 'read-only', 'ignore-size'];
/** Printed when sudo itself refuses (the probe `sudo -n -u U tmux -V` failed too). */
export const SUDO_REFUSED = 'remux:sudo-refused';
/** tmux's words when no server listens on the socket (3.3: ENOENT of a missing directory says "error connecting"). */
const NO_SERVER = /no server running on |error connecting to .*\(No such file or directory\)/;
/** tmux's words when a command's session is not there: no such session, or no server at all. */
const NO_SESSION = new RegExp(`can't find session|session not found|${NO_SERVER.source}`);

/** tmux's words when a new session's name is taken. */
export function sessionTaken(stderr: string): boolean {
  return /duplicate session/.test(stderr);
}

/** How remux's message for a session name already taken begins (the HTTP API answers it with 409). */
export const SESSION_EXISTS = 'a session named';

/** How remux's message for a session that is not there begins (the HTTP API answers it with 404). */
export const NO_SUCH_SESSION = 'no session';

/** Whether tmux's stderr says the session it was asked about does not exist. */
export function sessionMissing(stderr: string): boolean {
  return NO_SESSION.test(stderr);
}

/**
 * Whether tmux's stderr says its server went away while the command was under way: a server exits once
 * its last session is killed, and a command sent to it meanwhile (a new session as another's last one
 * ends) fails so. Nothing it did outlives the server: the command may be run again, against a new one.
 */
export function serverExited(stderr: string): boolean {
  return /^server exited unexpectedly$/m.test(stderr);
}

/** `run` (a tmux command run with execFileSync), once more when it failed as serverExited says. */
export function againIfServerExited<T>(run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (!serverExited(String((err as { stderr?: unknown }).stderr ?? ''))) throw err;
    return run();
  }
}

/**
 * One exec lists one user's sessions. For a user reached through sudo, a failed listing is followed by a
 * probe that needs only what a minimal sudoers rule grants (`tmux`): if that fails too, sudo refused.
 */
export function listCommand(target: TmuxTarget): CommandList {
  const list = stage(tmuxArgv(target, ['list-sessions', '-F', LIST_FORMAT, ';', 'list-clients', '-F', CLIENT_FORMAT]));
  if (target.user === target.loginUser) return commandList(list);
  return commandList(list, ['||', sudoProbe(target)], ['||', stage(['printf', '%s\\n', SUDO_REFUSED])]);
}

/** Succeeds when sudo lets the login user run tmux as the target user; needs nothing more than a rule for tmux. */
function sudoProbe(target: TmuxTarget): Stage {
  return stage(tmuxArgv(target, ['-V']), [{ kind: 'write', fd: 1, path: '/dev/null', append: false, pos: 0 }]);
}

export function sudoProbeCommand(target: TmuxTarget): CommandList {
  return commandList(sudoProbe(target));
}

export interface TmuxSession {
  name: string;
  windows: number;
  /** ISO times. */
  created: string;
  activity: string;
  /** Clients attached right now (remux's session recorders left out). */
  attached: number;
}

/** One tmux user's sessions on one host, or why there are none to show. Empty and forbidden are different facts. */
export type UserSessions =
  | { user: string; state: 'ok'; sessions: TmuxSession[] }
  | { user: string; state: 'no_server'; sessions: [] }
  | { user: string; state: 'sudo_refused'; detail: string; sessions: [] }
  | { user: string; state: 'error'; detail: string; sessions: [] };

/** Why a user has no sessions to show, in words (the CLI's table, the MCP tool): undefined when some are listed. */
export function noSessionsText(u: UserSessions): string | undefined {
  if (u.sessions.length > 0) return undefined;
  switch (u.state) {
    case 'ok':
      return 'no sessions';
    case 'no_server':
      return 'no sessions, no tmux server running';
    case 'sudo_refused':
      return `sudo refused: ${u.detail}`;
    case 'error':
      return `error: ${u.detail}`;
  }
}

export function parseList(user: string, exitCode: number, stdout: string, stderr: string): UserSessions {
  const lines = stdout.split('\n').filter((l) => l !== '');
  const errLine = stderr.split('\n').find((l) => l.trim() !== '')?.trim() ?? `exit status ${exitCode}`;
  if (lines.includes(SUDO_REFUSED)) return { user, state: 'sudo_refused', detail: errLine, sessions: [] };
  if (NO_SERVER.test(stderr)) return { user, state: 'no_server', sessions: [] };
  if (exitCode !== 0) {
    const detail = exitCode === 127 ? `tmux is not installed or not in the secure PATH (${errLine})` : errLine;
    return { user, state: 'error', detail, sessions: [] };
  }
  const recorders = new Map<string, number>();
  for (const line of lines) {
    const c = CLIENT_LINE.exec(line);
    if (c && RECORDER_FLAGS.every((f) => c[1]!.split(',').includes(f))) recorders.set(c[2]!, (recorders.get(c[2]!) ?? 0) + 1);
  }
  const sessions: TmuxSession[] = [];
  for (const line of lines) {
    const m = LIST_LINE.exec(line);
    if (!m) continue;
    sessions.push({
      name: m[5]!,
      windows: Number(m[1]),
      created: new Date(Number(m[2]) * 1000).toISOString(),
      activity: new Date(Number(m[3]) * 1000).toISOString(),
      attached: Math.max(0, Number(m[4]) - (recorders.get(m[5]!) ?? 0)),
    });
  }
  sessions.sort(bySessionName);
  return { user, state: 'ok', sessions };
}

/** The order listings show sessions in: by name, numbers by value (web2 before web10). */
export function bySessionName(a: TmuxSession, b: TmuxSession): number {
  return a.name.localeCompare(b.name, 'en', { numeric: true });
}

// ---- Changes -----------------------------------------------------------------------------------

/**
 * A detached session in `cwd`, running `program` (argv: tmux executes it directly, so the user's
 * default-shell, fish say, never reinterprets it), or the user's shell when null.
 */
export function newSessionArgv(target: TmuxTarget, name: string, cwd: string, program: readonly string[] | null): string[] {
  return tmuxArgv(target, ['new-session', '-d', '-s', name, '-c', cwd, ...(program === null ? [] : ['--', ...program])]);
}

export function newSessionCommand(target: TmuxTarget, name: string, cwd: string, program: readonly string[] | null): CommandList {
  return single(newSessionArgv(target, name, cwd, program));
}

/** A startup command (already rendered as POSIX sh) as a pane's program: /bin/sh, whatever the user's shell. */
export const shellProgram = (shellCommand: string): string[] => ['/bin/sh', '-c', shellCommand];

export function killCommand(target: TmuxTarget, name: string): CommandList {
  return single(tmuxArgv(target, ['kill-session', '-t', sessionTarget(name)]));
}

export const MAX_CAPTURE_LINES = 1_000_000;

/** Why `lines` cannot be a capture's line count, or null. */
export function captureLinesProblem(lines: number): string | null {
  return Number.isInteger(lines) && lines >= 1 && lines <= MAX_CAPTURE_LINES ? null : `lines to capture must be a whole number from 1 to ${MAX_CAPTURE_LINES}, got ${lines}`;
}

/** The visible pane, or with `lines` the last that many lines of history and pane together. */
export function captureCommand(target: TmuxTarget, name: string, lines: number | null): CommandList {
  const start = lines === null ? [] : ['-S', String(-lines)];
  return single(tmuxArgv(target, ['capture-pane', '-p', '-J', '-t', paneTarget(name), ...start]));
}

/** The last `lines` lines of a capture, trailing blank rows of the pane left out. */
export function lastLines(text: string, lines: number | null): string {
  const rows = text.replace(/\n+$/, '').split('\n');
  const kept = lines === null ? rows : rows.slice(-lines);
  return kept.length === 1 && kept[0] === '' ? '' : `${kept.join('\n')}\n`;
}

/** What `session send` types: text as is (`send-keys -l`), or a key by its tmux name (Enter, C-c). */
export type SendItem = { text: string } | { key: string };

const KEY_NAMES = 'Enter|Escape|Tab|BTab|BSpace|Space|Up|Down|Left|Right|Home|End|PageUp|PageDown|PgUp|PgDn|PPage|NPage|IC|DC|Insert|Delete|F[1-9]|F1[0-2]';
/** A named key with optional modifiers (C-, M-, S-), or one printable character with at least one. */
const KEY = new RegExp(`^(?:[CMS]-)*(?:${KEY_NAMES})$|^(?:[CMS]-)+[!-~]$`);

export function isKeyName(word: string): boolean {
  return KEY.test(word);
}

/** A function key by a name tmux does not have (F0, F13, …): tmux would type the name as text. */
const NO_SUCH_FUNCTION_KEY = /^(?:[CMS]-)*F\d+$/;

/** Words of `session send`: key names are keys, anything else is text (with `literal`, every word is text). */
export function sendItems(words: readonly string[], literal: boolean): SendItem[] {
  return words.map((w, i) => {
    // Nothing would be typed, and the send would report success.
    if (w === '') throw new UsageError(`item ${i + 1} to send is empty: nothing would be typed`, 'name a key (Enter, C-c) or give the text to type');
    if (literal) return { text: w };
    if (isKeyName(w)) return { key: w };
    if (NO_SUCH_FUNCTION_KEY.test(w)) throw new UsageError(`"${w}" is not a key tmux has (F1 to F12)`, 'to type it as text, send it with --literal (MCP send_keys: literal: true)');
    return { text: w };
  });
}

/**
 * What one send may carry: its items, and their text in all (UTF-16 code units, as JavaScript and
 * JSON Schema's maxLength count). Over SSH the whole && chain is one argument of the host's shell
 * (`$SHELL -c`), which Linux caps at 128 KiB: 16384 characters are 64 KiB at most once quoted (a `'`
 * becomes 4 bytes; a character 3 UTF-8 bytes at most), leaving room for 100 stages' tmux words.
 */
export const SEND_ITEMS_MAX = 100;
export const SEND_TEXT_MAX = 16_384;

/** Why `items` cannot be sent in one send, or null. */
export function sendProblem(items: readonly SendItem[]): string | null {
  if (items.length === 0) return 'nothing to send: give text or key names';
  if (items.length > SEND_ITEMS_MAX) return `${items.length} items to send: at most ${SEND_ITEMS_MAX} go in one send; send the rest in another`;
  const typed = items.map((item) => ('text' in item ? item.text : item.key));
  for (const [i, t] of typed.entries()) {
    // No command's argument holds it: tmux would not run, after the items before it were typed.
    const problem = argvWordProblem(t);
    if (problem !== null) return `item ${i + 1} to send has ${problem}, which no argument of tmux can carry; send valid text`;
  }
  const text = typed.reduce((n, t) => n + t.length, 0);
  return text <= SEND_TEXT_MAX ? null : `${text} characters to send: at most ${SEND_TEXT_MAX} go in one send; send the rest in another`;
}

/**
 * Text typed by one tmux command at most (UTF-8 bytes). tmux's client sends a command's arguments to its
 * server in one message of at most 16 KiB (MAX_IMSGSIZE, less headers; tmux 3.3a takes 16364 bytes of
 * arguments, NULs included): past it tmux says "command too long" and types nothing. Half that leaves
 * room for the other words whatever the session's name.
 */
const TEXT_PIECE_BYTES = 8192;

/** `text` cut into pieces of at most TEXT_PIECE_BYTES as UTF-8, between characters (typed one after another, they are the text). */
function textPieces(text: string): string[] {
  const pieces: string[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < text.length; ) {
    const code = text.codePointAt(i)!;
    const units = code > 0xffff ? 2 : 1;
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code > 0xffff ? 4 : 3;
    if (bytes + size > TEXT_PIECE_BYTES) {
      pieces.push(text.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += size;
    i += units;
  }
  pieces.push(text.slice(start));
  return pieces;
}

/**
 * One tmux invocation per item (a long text: per piece of it, see TEXT_PIECE_BYTES), joined by &&, in
 * one exec. tmux ends a command at an argument ending in `;` (and unescapes a final `\;`), so text
 * ending in `;` gets that escape to arrive as typed.
 */
export function sendCommand(target: TmuxTarget, name: string, items: readonly SendItem[]): CommandList {
  const words = items.flatMap((item) => ('key' in item ? [[item.key]] : textPieces(item.text).map((text) => ['-l', '--', text.endsWith(';') ? `${text.slice(0, -1)}\\;` : text])));
  const [first, ...rest] = words.map((args) => stage(tmuxArgv(target, ['send-keys', '-t', paneTarget(name), ...args])));
  if (first === undefined) throw new Error('nothing to send');
  return commandList(first, ...rest.map((s): ['&&', Stage] => ['&&', s]));
}

/**
 * A session's size as its clients show it: the current window's columns, and its rows with the status
 * lines (`status` is on, off or 2-5). What a watch's terminal takes (attach.ts `follow`).
 */
export const SIZE_FORMAT = '#{window_width} #{window_height} #{status}';

/**
 * The session's size (SIZE_FORMAT), after has-session in the same tmux run: display-message alone
 * answers, with blanks, for a session that is not there.
 */
export function sizeCommand(target: TmuxTarget, name: string): CommandList {
  return single(tmuxArgv(target, ['has-session', '-t', sessionTarget(name), ';', 'display-message', '-p', '-t', paneTarget(name), SIZE_FORMAT]));
}

/** What sizeCommand printed, as a terminal's size; null when it is not that. */
export function parseSize(stdout: string): { cols: number; rows: number } | null {
  const m = /^(\d+) (\d+) (on|off|[2-5])$/.exec(stdout.trim());
  if (!m) return null;
  const statusLines = m[3] === 'off' ? 0 : m[3] === 'on' ? 1 : Number(m[3]);
  return { cols: Number(m[1]), rows: Number(m[2]) + statusLines };
}

/**
 * -r: read-only, and (tmux 3.2+) ignoring size while an interactive client is attached; with none, a
 * watcher's size is the window's, so the console's watch opens at the session's size (attach.ts).
 */
export function attachArgv(target: TmuxTarget, name: string, readOnly: boolean): string[] {
  return tmuxArgv(target, ['attach-session', ...(readOnly ? ['-r'] : []), '-t', sessionTarget(name)]);
}
