// A tmux session whose startup command runs in the OS sandbox: the pane's program is bubblewrap, for
// the pane's whole life, with the policy's paths and network rule; the tmux server stays outside. The
// bwrap options are built here for this machine (exec/sandbox.ts), or on an SSH host by the prologue its
// sandboxed commands use (hosts/remote-sandbox.ts), as the paths are when the session is made. Either
// way tmux starts bwrap through paneScript. No long-lived holder: the session is long-lived itself. An
// outbound agent builds it on its machine with localPaneProgram (agent/serve.ts): the gateway sends the
// plain startup command and the sandbox it asks for (paneScript's lines would not pass the agent's parser).
import fs from 'node:fs';
import { quoteWord } from '../command/render.js';
import type { CommandList } from '../command/types.js';
import { directoryProblem } from '../exec/local.js';
import { bwrapAvailable, bwrapOptions, sandboxLayout, visibleInside } from '../exec/sandbox.js';
import type { SandboxSpec } from '../exec/types.js';
import { PASSED_ENV } from '../hosts/local.js';
import { bwrapPrologue, passEnvLines } from '../hosts/remote-sandbox.js';
import { newSessionArgv, single, type TmuxTarget } from './tmux.js';

/**
 * The pane's program: "$@" is bwrap and its options (ending in --clearenv), $0 the rendered command. It
 * adds the pane's own environment (PASSED_ENV as for commands: TERM as tmux sets it, HOME of the tmux
 * user) and makes the tmux server unreachable inside: TMUX names its socket ("path,pid,index"), and a
 * tmux client there could have the server run anything outside. tmux's own directory (tmux-UID) is
 * emptied, any other socket path covered with /dev/null; nothing is needed where the sandbox already
 * hides the socket's directory (`hidden`: a mount point made in a hidden, read-only directory fails bwrap).
 * A cover (/dev/null over a socket or a hidden file) whose path is gone since the options were made (the
 * host's sockets are looked at once a second) is left out: bwrap would fail making its mount point (as
 * exec/sandbox-pool.ts does for commands' sandboxes).
 */
function paneScript(hidden: readonly string[]): string {
  const alreadyHidden = hidden.flatMap((h) => [quoteWord(h), `${quoteWord(h)}/*`]).join('|');
  return [
    ...passEnvLines(),
    'n=$#',
    'while [ $n -gt 0 ]; do',
    '  a=$1; shift; n=$((n - 1))',
    '  if [ "$a" = --ro-bind ] && [ $n -ge 2 ] && [ "$1" = /dev/null ] && [ ! -e "$2" ] && [ ! -L "$2" ]; then shift 2; n=$((n - 2)); continue; fi',
    '  set -- "$@" "$a"',
    'done',
    's=${TMUX%,*}; s=${s%,*}; d=${s%/*}',
    `case $d in ""${alreadyHidden ? `|${alreadyHidden}` : ''}) ;; */tmux-[0-9]*) set -- "$@" --tmpfs "$d" --remount-ro "$d" ;; /*) set -- "$@" --ro-bind /dev/null "$s" ;; esac`,
    // bwrap takes its options from a file (--args, NUL-separated; it closes the fd), not its argv, which
    // its copy that is the sandbox's pid 1 keeps: /proc/1/cmdline inside would name every hidden path.
    // A file, not a pipe: bwrap stays the pane's program (exec), with no shell left waiting for it.
    'b=$1; shift',
    'f=$(umask 077; command -p mktemp) || exit 125',
    `printf '%s\\0' "$@" >"$f" && exec 9<"$f"; r=$?; command -p rm -f "$f"; [ $r = 0 ] || exit 125`,
    'exec "$b" --args 9 -- /bin/sh -c "$0"',
  ].join('\n');
}

/**
 * The program of a pane whose startup command runs outside the sandbox: the minimal environment, as for
 * commands. A pane starts with the tmux server's environment, which is whatever the shell that started
 * the server held (cloud keys, REMUX_TOKEN): only PASSED_ENV, PATH (the secure one, which tmux takes from
 * remux's tmux client) and tmux's TMUX and TMUX_PANE are kept. On an outbound agent's host the agent
 * builds it (agent/serve.ts): what the gateway sends is the plain startup command.
 */
export function unsandboxedPaneProgram(shellCommand: string): string[] {
  const kept = ['PATH', ...PASSED_ENV, 'TMUX', 'TMUX_PANE'].map((name) => `[ -z "\${${name}+x}" ] || set -- "$@" "${name}=$${name}"`);
  return ['/bin/sh', '-c', ['set --', ...kept, 'exec env -i "$@" /bin/sh -c "$0"'].join('\n'), shellCommand];
}

/** What the pane needs of remux's side: the sandbox, where the command starts, the PATH inside. */
export interface SandboxedPane {
  target: TmuxTarget;
  session: string;
  cwd: string;
  spec: SandboxSpec;
  securePath: string;
  /** The startup command rendered as POSIX sh. */
  shellCommand: string;
}

/** Why the session cannot start: the sandbox refuses it (`sandbox`), or its working directory is unusable. */
export interface PaneProblem {
  problem: string;
  kind: 'sandbox' | 'cwd';
}

/** The pane's program around `shellCommand`, before bwrap and its options are added where the pane runs. */
function paneProgram(shellCommand: string, hidden: readonly string[]): string[] {
  return ['/bin/sh', '-c', paneScript(hidden), shellCommand];
}

/** The tmux command that makes the session on this machine, or why it cannot start. */
export function localSandboxedSession(p: SandboxedPane): CommandList | PaneProblem {
  const program = localPaneProgram(p);
  return 'problem' in program ? program : single(newSessionArgv(p.target, p.session, p.cwd, program));
}

/** The pane's program on this machine (bwrap with its options for `p.spec`), or why it cannot start. */
export function localPaneProgram(p: Omit<SandboxedPane, 'target' | 'session'>): string[] | PaneProblem {
  const bwrap = bwrapAvailable();
  if (!bwrap.ok || bwrap.path === null) return { kind: 'sandbox', problem: `the OS sandbox cannot be used: ${bwrap.reason ?? 'bubblewrap is not usable'}` };
  const layout = sandboxLayout(p.spec);
  const problem = directoryProblem(p.cwd);
  if (problem !== null) return { kind: 'cwd', problem: `cannot use working directory ${p.cwd}: ${problem}` };
  const cwd = fs.realpathSync(p.cwd);
  // `/` is the sandbox's own root: always there, showing only what the sandbox shows.
  if (cwd !== '/' && !visibleInside(layout, cwd)) return { kind: 'sandbox', problem: cwdHidden(p.cwd, layout.mounts.map((m) => m.path).join(', ') || 'none') };
  const hiddenDirectories = layout.hidden.filter((h) => h.directory).map((h) => h.path);
  return [...paneProgram(p.shellCommand, hiddenDirectories), bwrap.path, ...bwrapOptions(layout, { cwd }), '--setenv', 'PATH', p.securePath];
}

/**
 * The command list that makes the session on an SSH host: a sh there builds the bwrap options (paths
 * as resolved there now), refuses (125, why on stderr) when it cannot, and becomes tmux new-session.
 */
export function remoteSandboxedSession(p: SandboxedPane): CommandList {
  const refuse = (why: string): string => `{ echo ${quoteWord(why)} >&2; exit 125; }`;
  const tmux = newSessionArgv(p.target, p.session, p.cwd, paneProgram(p.shellCommand, p.spec.hide));
  const shown = [...p.spec.read, ...p.spec.write].join(', ') || 'none';
  const script = [
    // Only physical paths exist inside the sandbox.
    `cd -P -- ${quoteWord(p.cwd)} 2>/dev/null || ${refuse(`cannot use working directory ${p.cwd}`)}`,
    'c=$PWD',
    ...bwrapPrologue(p.spec, {
      securePath: p.securePath,
      noBwrap: refuse(`the OS sandbox cannot be used: no bwrap in the secure PATH ${p.securePath}`),
      cwdHidden: refuse(cwdHidden(p.cwd, shown)),
      pane: true,
    }),
    `exec ${tmux.map(quoteWord).join(' ')} "$b" "$@"`,
  ].join('\n');
  return single(['/bin/sh', '-c', script]);
}

function cwdHidden(cwd: string, shown: string): string {
  return `working directory ${cwd} is not visible in the sandbox, which shows only the policy's paths (${shown}): start the session from one of them`;
}
