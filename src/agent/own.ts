// remux's own commands on an agent's machine: the tmux command lines of the gateway's session layer
// (sessions/tmux.ts) and the host check's `true`. The policy engine refuses tmux as a program (it runs
// commands it cannot see), so the agent does what the gateway's session path does: it accepts only
// those exact shapes, and checks the one user string inside them, a new session's startup command,
// against its own policy. Anything else sent as "remux's own" is refused.
import { parseCommand } from '../command/parser.js';
import type { CommandList, Stage } from '../command/types.js';
import { evaluate } from '../policy/evaluate.js';
import type { PathResolver, Policy } from '../policy/types.js';

/** tmux subcommands the session layer sends, with whether a startup command can follow `--`. */
const SUBCOMMANDS = new Set(['list-sessions', 'new-session', 'kill-session', 'capture-pane', 'send-keys', '-V']);
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
  if ((words[0] === '-L' || words[0] === '-S') && words[1] !== undefined) words = words.slice(2);
  return words;
}

export type OwnCheck = { ok: true } | { refusal: string };

function stageProblem(stage: Stage, policy: Policy, resolver: PathResolver): string | null {
  const shown = stage.argv.join(' ');
  for (const r of stage.redirects) {
    if (!(r.kind === 'write' && r.path === '/dev/null')) return `${shown}: only a redirect to /dev/null is remux's own`;
  }
  if (stage.argv.length === 1 && stage.argv[0] === 'true') return null;
  if (stage.argv[0] === 'printf' && stage.argv[1] === '%s\\n' && stage.argv.length === 3) return null;
  const words = tmuxWords(stage.argv);
  if (words === null || !SUBCOMMANDS.has(words[0] ?? '')) return `${shown}: not one of remux's tmux commands`;
  if (words[0] !== 'new-session') return null;
  const dash = words.indexOf('--');
  if (dash < 0) return null; // the user's login shell: what the owner's account already runs
  const [sh, c, command, ...rest] = words.slice(dash + 1);
  if (sh !== '/bin/sh' || c !== '-c' || command === undefined || rest.length > 0) return `${shown}: a startup command is given as /bin/sh -c COMMAND`;
  const cwdAt = words.indexOf('-c');
  const cwd = cwdAt >= 0 && cwdAt < dash ? (words[cwdAt + 1] ?? '/') : '/';
  let list: CommandList;
  try {
    list = parseCommand(command);
  } catch (err) {
    return `startup command: ${(err as Error).message}`;
  }
  const decision = evaluate(policy, list, { cwd: cwd.startsWith('/') ? cwd : '/', resolver });
  return decision.effect === 'allow' ? null : `startup command denied by the agent's own policy ${policy.name}: ${decision.reason}`;
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
