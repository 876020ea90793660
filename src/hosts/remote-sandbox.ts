// bubblewrap on a remote host: the POSIX-sh prologue that builds remux's bwrap options ON that host
// (paths resolved there, system directories as found there), and the probe behind sandboxSupport().
//
// The options mirror the local sandbox (src/exec/sandbox.ts): every namespace (the network too unless
// the policy grants it), no capabilities, no nested user namespace, --die-with-parent, --new-session
// (not for a tmux pane, whose terminal the sandbox keeps);
// system directories read-only (symlinked ones as symlinks) and a few /etc files; a fresh /tmp unless a
// policy path covers it; the policy's read and write trees by their physical paths (absent ones are not
// mounted: granting a parent instead would widen the policy), parents before children, write winning
// over read for the same tree; --proc and --dev after them (a policy path of / cannot bring in the
// host's); then read-only binds over writable trees (the spec's readOnly: only inside a writable mount,
// elsewhere a bind would show what is not granted), the Unix sockets shown but not writable covered, and the
// hidden paths emptied (hide: last, so nothing mounted later shows them again); --chdir to the physical working directory, --clearenv, --setenv.
//
// Safety of the generated text: every path is a quoteWord() word, variables are always expanded in
// double quotes, and the only eval'd text is fixed templates with a numeric index (POSIX sh has no
// arrays). The prologue leaves bwrap's path in $b and its options in "$@"; runBwrap() starts it.
import fs from 'node:fs';
import { quoteWord } from '../command/render.js';
import { ENTER_HELPER, oldBubblewrapWarning, SYSTEM_DIRS, SYSTEM_ETC } from '../exec/sandbox.js';
import type { SandboxSpec, SandboxSupport } from '../exec/types.js';
import { PASSED_ENV } from './local.js';
import { searchDirs } from './remote-resolver.js';

/** The shell that runs the command list inside: the login shell, as for commands outside the sandbox. */
export const INNER_SHELL = '"${SHELL:-/bin/sh}"';

const EMPTY_SPEC: SandboxSpec = { read: [], write: [], hide: [], readOnly: [], network: false, owner: 'probe' };

export interface PrologueOptions {
  /** PATH inside the sandbox; its directories are where bwrap itself is looked for. */
  securePath: string;
  /** sh run when no PATH directory holds bwrap. */
  noBwrap: string;
  /** sh run when the working directory ($c, physical) is not visible inside; null: not checked. */
  cwdHidden: string | null;
  /**
   * Print what decides the working directory's visibility, as NUL-terminated tokens on stdout: `v<path>`
   * for each tree shown (physical path), then `h<path>` for each hidden one (see holderScript).
   */
  reportRoots?: boolean;
  /**
   * The program of a tmux pane (sessions/pane-sandbox.ts): no --new-session (the pane is the sandbox's
   * controlling terminal, see bwrapOptions), and no environment beyond PATH (the pane adds its own).
   */
  pane?: boolean;
}

/** sh lines (see the header); $c must hold the physical working directory. */
export function bwrapPrologue(spec: SandboxSpec, o: PrologueOptions): string[] {
  for (const p of [...spec.read, ...spec.write, ...spec.hide, ...spec.readOnly]) {
    if (!p.startsWith('/')) throw new TypeError(`sandbox path must be absolute: ${p}`);
  }
  const words = (list: readonly string[]): string => list.map(quoteWord).join(' ');
  const forEach = (list: readonly string[], body: string): string[] => (list.length === 0 ? [] : [`for a in ${words(list)}; do ${body}; done`]);
  // Mount table: m<i> physical path, k<i> r|w, z<i> how many other mounts hold it.
  const each = (body: string): string => `i=0; while [ $i -lt $n ]; do ${body}; i=$((i + 1)); done`;
  return [
    // Found the way the wrapper's shell finds programs (remote-resolver.ts): a regular executable file.
    'b=',
    `for d in ${words(searchDirs(o.securePath))}; do if [ -f "$d/bwrap" ] && [ -x "$d/bwrap" ]; then b=$d/bwrap; break; fi; done`,
    `[ -n "$b" ] || ${o.noBwrap}`,
    // rp PATH: $p = its physical path. A directory costs no fork: `cd -P` sets PWD to it.
    'rp() { if [ -d "$1" ] && cd -P -- "$1" 2>/dev/null; then p=$PWD; return 0; fi; [ -e "$1" ] || return 1; p=$(command -p realpath -e -- "$1" 2>/dev/null && echo .) || return 1; p=${p%?.}; }',
    // under A B: A is B or lies below it (whole segments).
    'under() { case $1 in "$2" | "$2"/*) return 0 ;; esac; [ "$2" = / ]; }',
    'n=0',
    `add() { rp "$2" || return 0; ${each('eval "q=\\$m$i"; if [ "$q" = "$p" ]; then [ "$1" = r ] || eval "k$i=w"; return 0; fi')}; eval "m$n=\\$p k$n=\\$1"; n=$((n + 1)); }`,
    ...spec.read.map((p) => `add r ${quoteWord(p)}`),
    ...spec.write.map((p) => `add w ${quoteWord(p)}`),
    `set -- --die-with-parent${o.pane ? '' : ' --new-session'} --unshare-all${spec.network ? ' --share-net' : ''} --unshare-user --disable-userns --cap-drop ALL`,
    // v: the working directory is visible inside (`/` is the sandbox's own root: always).
    'v=0',
    '[ "$c" != / ] || v=1',
    `for d in ${words(SYSTEM_DIRS)}; do if [ -L "$d" ] && rp "$d"; then set -- "$@" --symlink "$p" "$d"; elif rp "$d"; then set -- "$@" --ro-bind "$d" "$d"; under "$c" "$p" && v=1;${o.reportRoots ? ` printf 'v%s\\0' "$p";` : ''} fi; done`,
    `for d in ${words(SYSTEM_ETC)}; do if [ -e "$d" ]; then set -- "$@" --ro-bind "$d" "$d"; fi; done`,
    `t=1; ${each('eval "q=\\$m$i"; under /tmp "$q" && t=0')}`,
    '[ $t = 0 ] || set -- "$@" --tmpfs /tmp',
    `${each('eval "a=\\$m$i"; l=0; j=0; while [ $j -lt $n ]; do eval "q=\\$m$j"; [ "$q" != "$a" ] && under "$a" "$q" && l=$((l + 1)); j=$((j + 1)); done; eval "z$i=$l"')}`,
    `l=0; while [ $l -lt $n ]; do ${each(`eval "a=\\$m$i e=\\$z$i k=\\$k$i"; if [ "$e" = $l ]; then if [ "$k" = w ]; then set -- "$@" --bind "$a" "$a"; else set -- "$@" --ro-bind "$a" "$a"; fi; under "$c" "$a" && v=1;${o.reportRoots ? ` printf 'v%s\\0' "$a";` : ''} fi`)}; l=$((l + 1)); done`,
    'set -- "$@" --proc /proc --dev /dev',
    ...forEach(spec.readOnly, `rp "$a" || continue; ${each('eval "q=\\$m$i k=\\$k$i"; if [ "$k" = w ] && under "$p" "$q"; then set -- "$@" --ro-bind "$p" "$p"; break; fi')}`),
    // Unix sockets shown but not writable, covered with /dev/null (connect(2) ignores a read-only mount; see
    // hostSockets in src/exec/sandbox.ts): those bound in this network namespace and those under /run.
    // The innermost tree showing one decides, as locally; before the hidden paths, which may hold some.
    `sk() { rp "$1" || return 1; S=$p; [ -S "$S" ] || return 1; d=-1; k=r; ${each('eval "q=\\$m$i"; if under "$S" "$q" && [ ${#q} -gt $d ]; then d=${#q}; eval "k=\\$k$i"; fi')}; [ $d -ge 0 ] || return 1; ${spec.readOnly.length === 0 ? '' : `if [ $k = w ]; then for a in ${words(spec.readOnly)}; do rp "$a" && under "$S" "$p" && k=r; done; fi; `}[ $k != w ]; }`,
    `[ $n = 0 ] || { set -f; o=$IFS; IFS='\n'; for a in $( { sed -n 's|^[^ ]*: [^ ]* [^ ]* [^ ]* [^ ]* [^ ]*  *[0-9]* \\(/.*\\)$|\\1|p' /proc/net/unix; find /run -xdev -maxdepth 6 -type s; } 2>/dev/null | LC_ALL=C sort -u); do IFS=$o; sk "$a" && set -- "$@" --ro-bind /dev/null "$S"; done; IFS=$o; set +f; }`,
    ...forEach(spec.hide, `rp "$a" || continue; if [ -d "$p" ]; then set -- "$@" --tmpfs "$p" --remount-ro "$p"; else set -- "$@" --ro-bind /dev/null "$p"; fi; under "$c" "$p" && v=0${o.reportRoots ? `; printf 'h%s\\0' "$p"` : ''}`),
    // This user's tmux directory: a tmux client inside could have its server run anything outside (a pane's
    // own program hides its server's; on this machine it is one of remux's own files, hosts/local.ts).
    ...(o.pane ? [] : ['for a in "${TMUX_TMPDIR:-/tmp}"/tmux-*; do if [ -d "$a" ] && [ -O "$a" ]; then set -- "$@" --tmpfs "$a" --remount-ro "$a"; fi; done']),
    ...(o.cwdHidden === null ? [] : [`[ $v = 1 ] || ${o.cwdHidden}`]),
    `set -- "$@" --chdir "$c" --clearenv --setenv PATH ${quoteWord(o.securePath)}`,
    ...(o.pane ? [] : passEnvLines()),
  ];
}

/**
 * sh that runs bwrap ($b) with the prologue's options ("$@") followed by `rest` (`-- PROGRAM ARGS` and
 * redirections), its stdin that of the whole. The options reach bwrap through fd 9 (--args: read
 * NUL-separated, then closed), not its argv: bwrap's copy that is the sandbox's pid 1 keeps that argv,
 * and /proc/1/cmdline inside would name every hidden path and covered socket (as would `ps` on the host).
 */
export function runBwrap(rest: string): string {
  return `{ printf '%s\\0' "$@" | "$b" --args 9 ${rest} 9<&0 <&8 8<&-; } 8<&0`;
}

/** sh lines that add `--setenv NAME VALUE` to "$@" for each of PASSED_ENV this shell has. */
export function passEnvLines(): string[] {
  return PASSED_ENV.map((name) => `[ -z "\${${name}+x}" ] || set -- "$@" --setenv ${name} "$${name}"`);
}

/**
 * The probe: is there a bwrap in the secure PATH, which version, and does a sandbox with remux's exact
 * options start? NUL-terminated tokens: `none`, or `found`, the version text, then `ok` or `failed` and
 * what bwrap printed.
 */
export function probeScript(securePath: string): string {
  return [
    'c=/',
    ...bwrapPrologue(EMPTY_SPEC, { securePath, noBwrap: "{ printf 'none\\0'; exit 0; }", cwdHidden: null }),
    `printf 'found\\0%s\\0' "$("$b" --version 2>&1)"`,
    `if e=$(${runBwrap(`-- ${INNER_SHELL} -c true 2>&1 >/dev/null`)}); then printf 'ok\\0'; else printf 'failed\\0%s\\0' "$e"; exit 0; fi`,
    // Long-lived sandboxes (holderScript) are entered with remux's own helper, sent by remux: it runs
    // where its architecture matches.
    `printf 'arch\\0%s\\0' "$(command -p uname -m 2>/dev/null)"`,
  ].join('\n');
}

/**
 * remux-sandbox-enter as sent to hosts: the built file and the architecture it is for, as `uname -m`
 * names it (from its ELF header); null when it is not built.
 */
export interface EnterHelper {
  binary: Buffer;
  arch: string;
}

const ELF_MACHINES: Record<number, string> = { 62: 'x86_64', 183: 'aarch64' };
let enterHelper: EnterHelper | null | undefined;

export function localEnterHelper(): EnterHelper | null {
  if (enterHelper === undefined) {
    try {
      const binary = fs.readFileSync(ENTER_HELPER);
      const arch = binary.subarray(0, 4).toString('latin1') === '\x7fELF' ? ELF_MACHINES[binary.readUInt16LE(18)] : undefined;
      enterHelper = arch === undefined ? null : { binary, arch };
    } catch {
      enterHelper = null;
    }
  }
  return enterHelper;
}

/** Whether this host's commands may join long-lived sandboxes (the probe said `ok` and the helper fits its architecture), and why not. */
export function parseHolderProbe(out: Buffer, helper: EnterHelper | null = localEnterHelper()): { helper: EnterHelper | null; detail: string } {
  const tokens = out.toString('utf8').split('\0');
  if (tokens[2] !== 'ok') return { helper: null, detail: 'no sandbox' };
  const arch = tokens[3] === 'arch' ? (tokens[4] ?? '') : '';
  if (helper === null) return { helper: null, detail: 'no long-lived sandboxes (remux-sandbox-enter is not built)' };
  if (arch !== helper.arch) return { helper: null, detail: `no long-lived sandboxes (the host is ${arch || 'of an unknown architecture'}, remux-sandbox-enter is built for ${helper.arch})` };
  return { helper, detail: 'long-lived sandboxes' };
}

/** What a started holder reported: its keeper (outside) and the sandbox's init, each with its start time, and the trees shown. */
export interface HolderInfo {
  /** The holder's shell outside the sandbox: it keeps the helper open as fd HELPER_FD. */
  keeper: number;
  keeperStart: string;
  /** The sandbox's first process (bwrap's child): whose namespaces commands join. */
  init: number;
  initStart: string;
  /** Physical paths of the trees shown inside, and of the hidden ones (for the working directory's check). */
  visible: string[];
  hidden: string[];
}

/** The keeper's fd holding remux-sandbox-enter, unlinked: commands execute /proc/KEEPER/fd/5. */
export const HELPER_FD = 5;

/**
 * A long-lived sandbox: the spec's bwrap, with its paths resolved on the host NOW, running the login
 * shell blocked on reading the channel's stdin. Paths that change on the host later (a directory
 * replaced, a symlink pointed elsewhere, a policy path created) are seen only by a new holder: after
 * HOLDER_IDLE_MS unused, or on a new connection. (Resolving the layout again per command to compare
 * costs ~2 ms of sh: the price the holder is there to avoid.)
 *
 * The first `size` bytes on stdin are remux-sandbox-enter. The shell writes them to a file of its own
 * (a directory that mktemp makes, 0700), keeps it open as fd HELPER_FD, deletes it, and checks that it
 * runs from there (noexec mounts: the next candidate directory). Nothing stays on the host's disk, and
 * nothing in any sandbox can reach the file: the keeper stays outside (bwrap is its child, started with
 * that fd closed), and its /proc entry is not visible from a sandbox's PID namespace.
 *
 * EOF on stdin (we stop it, or the connection is gone) ends the shell inside, bwrap and the sandbox's PID
 * namespace; --die-with-parent ties bwrap to the keeper. Output on stdout, NUL-terminated, in this order
 * (each process writes only after the one before): the trees (reportRoots), `keeper`, its pid and start
 * time (field 22 of /proc/PID/stat), bwrap's --info-fd JSON, then `ready` and the start time of the
 * sandbox's pid 1 from the shell inside, once every mount is done.
 */
export function holderScript(spec: SandboxSpec, securePath: string, marker: string, size: number): string {
  if (!/^[A-Za-z0-9_-]+:$/.test(marker)) throw new TypeError(`bad marker ${JSON.stringify(marker)}`);
  if (!Number.isSafeInteger(size) || size <= 0) throw new TypeError(`bad helper size ${size}`);
  const refuse = (what: string): string => `{ echo ${marker}${what} >&2; exit 125; }`;
  const startTime = (file: string, into: string): string => `f() { shift 19; ${into}=$1; }; read -r q <${file}; f \${q##*) }`;
  const inner = `${startTime('/proc/1/stat', 's')}; printf 'ready\\0%s\\0' "$s"; read -r _`;
  return [
    `PATH=${quoteWord(securePath)}; export PATH`,
    'c=/',
    ...bwrapPrologue(spec, { securePath, noBwrap: refuse('no-bwrap'), cwdHidden: null, reportRoots: true }),
    'umask 077',
    'n=0',
    `for d in "\${XDG_RUNTIME_DIR:-/nonexistent}" /dev/shm "\${TMPDIR:-/tmp}" "\${HOME:-/nonexistent}"; do`,
    '  t=$(command -p mktemp -d "$d/remux-enter.XXXXXX" 2>/dev/null) || continue',
    // The first copy comes from stdin, later ones (after a noexec mount) from the one before.
    `  if [ $n = 0 ]; then command -p head -c ${size}; else command -p cat <&${HELPER_FD}; fi >"$t/e"`,
    `  command -p chmod 500 "$t/e" && { command exec ${HELPER_FD}<"$t/e"; } 2>/dev/null; command -p rm -rf "$t"`,
    '  n=1',
    `  if /proc/$$/fd/${HELPER_FD} --check 2>/dev/null; then n=2; break; fi`,
    'done',
    `[ $n = 2 ] || ${refuse('no-helper')}`,
    startTime('/proc/$$/stat', 'k'),
    `printf 'keeper\\0%s\\0%s\\0' "$$" "$k"`,
    runBwrap(`--info-fd 3 -- ${INNER_SHELL} -c ${quoteWord(inner)} 3>&1 ${HELPER_FD}<&-`),
  ].join('\n');
}

/** Parses holderScript's output once it is complete; null while more is to come. */
export function parseHolderInfo(out: Buffer): HolderInfo | null {
  const text = out.toString('utf8');
  const parts = text.split('\0');
  const at = parts.indexOf('keeper');
  if (at < 0 || parts.length < at + 4) return null;
  const [keeper = '', keeperStart = ''] = parts.slice(at + 1);
  // bwrap's JSON (not NUL-terminated) and the shell's `ready` come from two processes: in either order.
  const rest = parts.slice(at + 3).join('\0');
  const ready = /ready\0(\d+)\0/.exec(rest);
  const json = ready === null ? '' : rest.replace(ready[0], '');
  if (ready === null || !json.includes('}')) return null;
  const initStart = ready[1] ?? '';
  const init = /"child-pid"\s*:\s*(\d+)/.exec(json)?.[1];
  const roots = parts.slice(0, at);
  if (!/^\d+$/.test(keeper) || !/^\d+$/.test(keeperStart) || init === undefined || !roots.every((r) => /^[vh]\//.test(r))) {
    throw new Error(`unexpected answer from the sandbox holder: ${JSON.stringify(out.toString('utf8').slice(0, 300))}`);
  }
  const of = (kind: string): string[] => roots.filter((r) => r[0] === kind).map((r) => r.slice(1));
  return { keeper: Number(keeper), keeperStart, init: Number(init), initStart, visible: of('v'), hidden: of('h') };
}

export function parseProbe(out: Buffer, host: string, securePath: string): SandboxSupport {
  const tokens = out.toString('utf8').split('\0');
  if (tokens.pop() !== '') throw new Error('the bubblewrap probe answer does not end with NUL');
  if (tokens[0] === 'none' && tokens.length === 1) return { available: false, detail: `no bwrap in PATH ${securePath}`, staticFallback: true };
  const [found, versionText = '', outcome, stderr = ''] = tokens;
  if (found !== 'found' || (outcome !== 'ok' && outcome !== 'failed')) throw new Error(`unexpected bubblewrap probe answer ${JSON.stringify(tokens)}`);
  const version = /(\d+\.\d+\.\d+)/.exec(versionText)?.[1] ?? null;
  if (outcome === 'failed') {
    const why = stderr.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'it exited with an error and said nothing';
    return { available: false, detail: `bwrap ${version ?? '(unknown version)'} cannot start a sandbox: ${why}`, staticFallback: true };
  }
  const support: SandboxSupport = { available: true, detail: `bubblewrap ${version ?? '(unknown version)'}`, staticFallback: true };
  const warning = oldBubblewrapWarning(version, host);
  if (warning) support.warning = warning;
  return support;
}
