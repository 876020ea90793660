// remux's own commands on an agent's machine: the tmux command lines of the gateway's session layer
// (sessions/tmux.ts), the whole-session recorder's (sessions/session-recorder.ts) and the host check's
// `true`. The policy engine refuses tmux as a program (it runs commands it cannot see), so the agent does
// what the gateway's session path does: it accepts only those exact shapes, as tmux users this machine
// lists for itself, and checks the one user string inside them, a new session's startup command, against
// its own policy. Anything else sent as "remux's own" is refused.
import { parseCommand } from '../command/parser.js';
import type { CommandList, Stage } from '../command/types.js';
import { evaluate } from '../policy/evaluate.js';
import type { PathResolver, Policy } from '../policy/types.js';
import { CLIENT_FORMAT, isKeyName, LIST_FORMAT, sessionNameProblem, SIZE_FORMAT, SUDO_REFUSED, type SendItem } from '../sessions/tmux.js';

const USER = /^[a-z_][a-z0-9_-]{0,31}$/;

/** A tmux invocation: the tmux user (null: the login user), where tmux's own words start, and those words. */
interface TmuxCall {
  user: string | null;
  at: number;
  words: string[];
}

/** The tmux words after `sudo -n -u USER` (another tmux user) and the socket option, or null when not tmux. */
function tmuxCall(argv: readonly string[]): TmuxCall | null {
  let at = 0;
  let user: string | null = null;
  if (argv[0] === 'sudo') {
    if (argv[1] !== '-n' || argv[2] !== '-u' || !USER.test(argv[3] ?? '')) return null;
    user = argv[3]!;
    at = 4;
  }
  if (argv[at] !== 'tmux') return null;
  at += 1;
  if ((argv[at] === '-L' || argv[at] === '-S') && argv[at + 1] !== undefined && !argv[at + 1]!.startsWith('-')) at += 2;
  return { user, at, words: argv.slice(at) };
}

/** The tmux users this machine lets the gateway act as (its own hosts.yaml: tmux_users of localhost). */
export interface OwnTmuxUsers {
  loginUser: string;
  users: readonly string[];
}

function userProblem(call: TmuxCall, users: OwnTmuxUsers): string | null {
  const user = call.user ?? users.loginUser;
  return users.users.includes(user) ? null : `tmux user ${user} is not one of this agent's tmux users (${users.users.join(', ')}); list it in tmux_users of localhost in hosts.yaml there`;
}

/** A new session's startup command, as the gateway sent it: the agent decides how it is enforced here. */
export interface OwnStartup {
  /** The stage's words up to and including `--`: sudo, tmux, socket, `new-session -d -s NAME -c CWD --`. */
  prefix: string[];
  cwd: string;
  /** The startup command, rendered as POSIX sh (checked against this machine's policy). */
  command: string;
  /** It parsed. */
  list: CommandList;
}

/** Keys typed into a session: checked and audited here as perform-session checks and audits `session.send`. */
export interface OwnSend {
  user: string;
  session: string;
  items: SendItem[];
}

export type OwnCheck = { ok: true; startup: OwnStartup | null; send: OwnSend | null } | { refusal: string };

/** `=NAME` (or `=NAME:` for a pane) of a valid session name. */
function isTarget(word: string | undefined, pane: boolean): boolean {
  if (word === undefined || !word.startsWith('=') || (pane && !word.endsWith(':'))) return false;
  return sessionNameProblem(word.slice(1, pane ? -1 : undefined)) === null;
}

const NOT_OURS = `not one of remux's tmux commands`;

/** What one tmux invocation is, when it is exactly one of the session layer's or the recorder's commands. */
type Shape = { kind: 'plain' } | { kind: 'send'; session: string; item: SendItem } | { kind: 'startup'; cwd: string; command: string };

/**
 * Why `words` (tmux's arguments) is not exactly one of the session layer's commands, or its shape. Exact,
 * because tmux runs commands from more places than `--` (a trailing shell-command, `-c`, `#()` in a format).
 */
function tmuxShape(words: readonly string[]): Shape | string {
  const [sub, ...args] = words;
  const plain: Shape = { kind: 'plain' };
  switch (sub) {
    case '-V':
      return args.length === 0 ? plain : NOT_OURS;
    case 'list-sessions':
      // The sessions, then (after tmux's own `;`) the clients, to tell remux's recorders from attaches.
      return args.length === 6 && args[0] === '-F' && args[1] === LIST_FORMAT && args[2] === ';' && args[3] === 'list-clients' && args[4] === '-F' && args[5] === CLIENT_FORMAT ? plain : NOT_OURS;
    case 'kill-session':
      return args.length === 2 && args[0] === '-t' && isTarget(args[1], false) ? plain : NOT_OURS;
    case 'capture-pane': {
      const [p, j, t, target, ...start] = args;
      const ok = p === '-p' && j === '-J' && t === '-t' && isTarget(target, true) && (start.length === 0 || (start.length === 2 && start[0] === '-S' && /^-\d{1,7}$/.test(start[1]!)));
      return ok ? plain : NOT_OURS;
    }
    case 'has-session': {
      // An attach's question: the session is there, and (after tmux's `;`) its size (sizeCommand).
      const [t, target, semi, display, p, t2, pane, format, ...rest] = args;
      const ok = t === '-t' && isTarget(target, false) && semi === ';' && display === 'display-message' && p === '-p' && t2 === '-t' && pane === `${target}:` && format === SIZE_FORMAT && rest.length === 0;
      return ok ? plain : NOT_OURS;
    }
    case 'send-keys': {
      const [t, target, ...keys] = args;
      if (t !== '-t' || !isTarget(target, true)) return NOT_OURS;
      const session = target!.slice(1, -1);
      if (keys.length === 1 && isKeyName(keys[0]!)) return { kind: 'send', session, item: { key: keys[0]! } };
      // Literal text; sendCommand escapes a final `;` (tmux would end the command there).
      if (keys.length === 3 && keys[0] === '-l' && keys[1] === '--') return { kind: 'send', session, item: { text: keys[2]!.endsWith('\\;') ? `${keys[2]!.slice(0, -2)};` : keys[2]! } };
      return NOT_OURS;
    }
    case 'new-session': {
      const [d, s, name, c, cwd, ...run] = args;
      if (d !== '-d' || s !== '-s' || sessionNameProblem(name ?? '') !== null || c !== '-c' || !cwd?.startsWith('/')) return NOT_OURS;
      if (run.length === 0) return plain; // the login shell: what the owner's account runs anyway
      // `-- /bin/sh -c COMMAND` and nothing more (a sandboxed pane's program is built here, not sent).
      const [dash, sh, dashC, command, ...rest] = run;
      return dash === '--' && sh === '/bin/sh' && dashC === '-c' && command !== undefined && rest.length === 0 ? { kind: 'startup', cwd, command } : NOT_OURS;
    }
    default:
      return NOT_OURS;
  }
}

/** What a stage is, or why it is not remux's own. */
function stageShape(stage: Stage, users: OwnTmuxUsers): { shape: Shape; call: TmuxCall | null } | string {
  const shown = stage.argv.join(' ');
  for (const r of stage.redirects) {
    if (!(r.kind === 'write' && r.path === '/dev/null')) return `${shown}: only a redirect to /dev/null is remux's own`;
  }
  if (stage.argv.length === 1 && stage.argv[0] === 'true') return { shape: { kind: 'plain' }, call: null };
  if (stage.argv.length === 3 && stage.argv[0] === 'printf' && stage.argv[1] === '%s\\n' && stage.argv[2] === SUDO_REFUSED) return { shape: { kind: 'plain' }, call: null };
  const call = tmuxCall(stage.argv);
  if (call === null) return `${shown}: ${NOT_OURS}`;
  const shape = tmuxShape(call.words);
  if (typeof shape === 'string') return `${shown}: ${shape}`;
  const badUser = userProblem(call, users);
  return badUser === null ? { shape, call } : badUser;
}

/**
 * Whether `list` is one of remux's own command lines, as tmux users this machine lists, with any startup
 * command allowed by `policy`. A startup command and keys to send are handed back: the agent enforces
 * the first and audits the second.
 */
export function checkOwnCommand(list: CommandList, policy: Policy, resolver: PathResolver, users: OwnTmuxUsers): OwnCheck {
  let startup: OwnStartup | null = null;
  const sends: Array<{ user: string; session: string; item: SendItem }> = [];
  let stages = 0;
  for (const item of list.items) {
    for (const stage of item.pipeline.stages) {
      stages += 1;
      const checked = stageShape(stage, users);
      if (typeof checked === 'string') return { refusal: checked };
      const { shape, call } = checked;
      if (shape.kind === 'send') sends.push({ user: call!.user ?? users.loginUser, session: shape.session, item: shape.item });
      if (shape.kind !== 'startup') continue;
      let parsed: CommandList;
      try {
        parsed = parseCommand(shape.command);
      } catch (err) {
        return { refusal: `startup command: ${(err as Error).message}` };
      }
      const decision = evaluate(policy, parsed, { cwd: shape.cwd, resolver });
      if (decision.effect !== 'allow') return { refusal: `startup command denied by the agent's own policy ${policy.name}: ${decision.reason}` };
      // The words through `--` (new-session -d -s NAME -c CWD --), to which the pane's program is added here.
      startup = { prefix: stage.argv.slice(0, call!.at + 7), cwd: shape.cwd, command: shape.command, list: parsed };
    }
  }
  // A startup command comes alone, as newSessionCommand makes it: it is rebuilt here, nothing else with it.
  if (startup !== null && stages !== 1) return { refusal: 'a new session with a startup command comes alone' };
  // Keys: every stage one session's send-keys (sendCommand's && chain), or none.
  const first = sends[0];
  if (first !== undefined && (sends.length !== stages || sends.some((x) => x.user !== first.user || x.session !== first.session))) return { refusal: 'keys go to one session, in send-keys alone' };
  const send = first === undefined ? null : { user: first.user, session: first.session, items: sends.map((x) => x.item) };
  return { ok: true, startup, send };
}

/**
 * A read-only listing (the session layer's periodic sweep, the host check, a watch asking for its
 * session's size every few seconds): not worth an audit record each time.
 */
export function isListing(argv: readonly string[]): boolean {
  if ((argv.length === 1 && argv[0] === 'true') || argv[0] === 'printf') return true;
  const sub = tmuxCall(argv)?.words[0];
  return sub === 'list-sessions' || sub === '-V' || sub === 'has-session';
}

/**
 * What a terminal's argv is: `attach` for `tmux [-L N|-S P] attach-session [-r] -t =NAME` (sessions/tmux.ts
 * attachArgv), `control` for the session recorder's read-only control client (recorderArgv), whose input
 * would be tmux commands (a read-only client may still run-shell): only the recorder's screen question is
 * passed on (agent/terminal.ts); else why not.
 */
export function terminalKind(argv: readonly string[], users: OwnTmuxUsers): { kind: 'attach' | 'control'; session: string } | { refusal: string } {
  const call = tmuxCall(argv);
  const not = { refusal: `the agent opens terminals only for remux's tmux attach, not: ${argv.join(' ')}` };
  if (call === null) return not;
  const w = call.words;
  let kind: 'attach' | 'control' | null = null;
  if (w[0] === 'attach-session') {
    const rest = w.slice(1).filter((x, i) => !(i === 0 && x === '-r'));
    if (rest.length === 2 && rest[0] === '-t' && isTarget(rest[1], false)) kind = 'attach';
  } else if (w.length === 7 && w[0] === '-C' && w[1] === 'attach-session' && w[2] === '-r' && w[3] === '-f' && w[4] === 'ignore-size' && w[5] === '-t' && isTarget(w[6], false)) {
    kind = 'control';
  }
  if (kind === null) return not;
  const badUser = userProblem(call, users);
  return badUser === null ? { kind, session: (w[w.length - 1] as string).slice(1) } : { refusal: badUser };
}
