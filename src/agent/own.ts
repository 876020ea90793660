// remux's own commands on an agent's machine: the tmux command lines of the gateway's session layer
// (sessions/tmux.ts) and the host check's `true`. The policy engine refuses tmux as a program (it runs
// commands it cannot see), so the agent does what the gateway's session path does: it accepts only
// those exact shapes, and checks the one user string inside them, a new session's startup command,
// against its own policy. Anything else sent as "remux's own" is refused.
import { parseCommand } from '../command/parser.js';
import type { CommandList, Stage } from '../command/types.js';
import { evaluate } from '../policy/evaluate.js';
import type { PathResolver, Policy } from '../policy/types.js';
import { CLIENT_FORMAT, isKeyName, LIST_FORMAT, sessionNameProblem, SUDO_REFUSED } from '../sessions/tmux.js';

const USER = /^[a-z_][a-z0-9_-]{0,31}$/;

/** The tmux words after `sudo -n -u USER` (another tmux user) and the socket option, or null when not tmux. */
function tmuxWords(argv: readonly string[]): string[] | null {
  let words = [...argv];
  if (words[0] === 'sudo') {
    if (words[1] !== '-n' || words[2] !== '-u' || !USER.test(words[3] ?? '')) return null;
    words = words.slice(4);
  }
  if (words[0] !== 'tmux') return null;
  words = words.slice(1);
  if ((words[0] === '-L' || words[0] === '-S') && words[1] !== undefined && !words[1].startsWith('-')) words = words.slice(2);
  return words;
}

export type OwnCheck = { ok: true } | { refusal: string };

/** `=NAME` (or `=NAME:` for a pane) of a valid session name. */
function isTarget(word: string | undefined, pane: boolean): boolean {
  if (word === undefined || !word.startsWith('=') || (pane && !word.endsWith(':'))) return false;
  return sessionNameProblem(word.slice(1, pane ? -1 : undefined)) === null;
}

/**
 * Why `words` (tmux's arguments) is not exactly one of the session layer's commands, or null. Exact, because
 * tmux runs commands from more places than `--` (a trailing shell-command, `-c`, `#()` in a format).
 */
function tmuxProblem(words: readonly string[], policy: Policy, resolver: PathResolver): string | null {
  const [sub, ...args] = words;
  const not = `not one of remux's tmux commands`;
  switch (sub) {
    case '-V':
      return args.length === 0 ? null : not;
    case 'list-sessions':
      // The sessions, then (after tmux's own `;`) the clients, to tell remux's recorders from attaches.
      return args.length === 6 && args[0] === '-F' && args[1] === LIST_FORMAT && args[2] === ';' && args[3] === 'list-clients' && args[4] === '-F' && args[5] === CLIENT_FORMAT ? null : not;
    case 'kill-session':
      return args.length === 2 && args[0] === '-t' && isTarget(args[1], false) ? null : not;
    case 'capture-pane': {
      const [p, j, t, target, ...start] = args;
      const ok = p === '-p' && j === '-J' && t === '-t' && isTarget(target, true) && (start.length === 0 || (start.length === 2 && start[0] === '-S' && /^-\d{1,7}$/.test(start[1]!)));
      return ok ? null : not;
    }
    case 'send-keys': {
      const [t, target, ...keys] = args;
      if (t !== '-t' || !isTarget(target, true)) return not;
      // One key by name, or literal text: what is typed into a session is the session's business.
      return (keys.length === 1 && isKeyName(keys[0]!)) || (keys.length === 3 && keys[0] === '-l' && keys[1] === '--') ? null : not;
    }
    case 'new-session': {
      const [d, s, name, c, cwd, ...run] = args;
      if (d !== '-d' || s !== '-s' || sessionNameProblem(name ?? '') !== null || c !== '-c' || !cwd?.startsWith('/')) return not;
      if (run.length === 0) return null; // the login shell: what the owner's account runs anyway
      const [dash, sh, dashC, command, ...rest] = run;
      if (dash !== '--' || sh !== '/bin/sh' || dashC !== '-c' || command === undefined || rest.length > 0) return not;
      let list: CommandList;
      try {
        list = parseCommand(command);
      } catch (err) {
        return `startup command: ${(err as Error).message}`;
      }
      const decision = evaluate(policy, list, { cwd, resolver });
      return decision.effect === 'allow' ? null : `startup command denied by the agent's own policy ${policy.name}: ${decision.reason}`;
    }
    default:
      return not;
  }
}

function stageProblem(stage: Stage, policy: Policy, resolver: PathResolver): string | null {
  const shown = stage.argv.join(' ');
  for (const r of stage.redirects) {
    if (!(r.kind === 'write' && r.path === '/dev/null')) return `${shown}: only a redirect to /dev/null is remux's own`;
  }
  if (stage.argv.length === 1 && stage.argv[0] === 'true') return null;
  if (stage.argv.length === 3 && stage.argv[0] === 'printf' && stage.argv[1] === '%s\\n' && stage.argv[2] === SUDO_REFUSED) return null;
  const words = tmuxWords(stage.argv);
  const problem = words === null ? `not one of remux's tmux commands` : tmuxProblem(words, policy, resolver);
  return problem === null ? null : `${shown}: ${problem}`;
}

/** Whether `list` is one of remux's own command lines, with any startup command allowed by `policy`. */
export function checkOwnCommand(list: CommandList, policy: Policy, resolver: PathResolver): OwnCheck {
  for (const item of list.items) {
    for (const stage of item.pipeline.stages) {
      const problem = stageProblem(stage, policy, resolver);
      if (problem) return { refusal: problem };
    }
  }
  return { ok: true };
}

/** A read-only listing (the session layer's periodic sweep, the host check): not worth an audit record each time. */
export function isListing(argv: readonly string[]): boolean {
  if ((argv.length === 1 && argv[0] === 'true') || argv[0] === 'printf') return true;
  const sub = tmuxWords(argv)?.[0];
  return sub === 'list-sessions' || sub === '-V';
}

/** `tmux [-L N|-S P] attach-session [-r] -t =NAME`, as sessions/tmux.ts attachArgv makes it. */
export function isAttachArgv(argv: readonly string[]): boolean {
  const words = tmuxWords(argv);
  if (words === null || words[0] !== 'attach-session') return false;
  const rest = words.slice(1).filter((w) => w !== '-r');
  return rest.length === 2 && rest[0] === '-t' && rest[1]!.startsWith('=');
}
