// bubblewrap on a remote host: the POSIX-sh prologue that builds remux's bwrap options ON that host
// (paths resolved there, system directories as found there), and the probe behind sandboxSupport().
//
// The options mirror the local sandbox (src/exec/sandbox.ts): every namespace (the network too unless
// the policy grants it), no capabilities, no nested user namespace, --die-with-parent, --new-session;
// system directories read-only (symlinked ones as symlinks) and a few /etc files; a fresh /tmp unless a
// policy path covers it; the policy's read and write trees by their physical paths (absent ones are not
// mounted: granting a parent instead would widen the policy), parents before children, write winning
// over read for the same tree; --proc and --dev after them (a policy path of / cannot bring in the
// host's); then read-only binds over writable trees (the spec's readOnly: only inside a writable mount,
// elsewhere a bind would show what is not granted) and the hidden paths emptied (hide: last, so nothing
// mounted later shows them again); --chdir to the physical working directory, --clearenv, --setenv.
//
// Safety of the generated text: every path is a quoteWord() word, variables are always expanded in
// double quotes, and the only eval'd text is fixed templates with a numeric index (POSIX sh has no
// arrays). The prologue leaves bwrap's path in $b and its options in "$@".
import { quoteWord } from '../command/render.js';
import { oldBubblewrapWarning, SYSTEM_DIRS, SYSTEM_ETC } from '../exec/sandbox.js';
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
    `set -- --die-with-parent --new-session --unshare-all${spec.network ? ' --share-net' : ''} --unshare-user --disable-userns --cap-drop ALL`,
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
    ...forEach(spec.hide, `rp "$a" || continue; if [ -d "$p" ]; then set -- "$@" --tmpfs "$p" --remount-ro "$p"; else set -- "$@" --ro-bind /dev/null "$p"; fi; under "$c" "$p" && v=0${o.reportRoots ? `; printf 'h%s\\0' "$p"` : ''}`),
    ...(o.cwdHidden === null ? [] : [`[ $v = 1 ] || ${o.cwdHidden}`]),
    `set -- "$@" --chdir "$c" --clearenv --setenv PATH ${quoteWord(o.securePath)}`,
    ...PASSED_ENV.map((name) => `[ -z "\${${name}+x}" ] || set -- "$@" --setenv ${name} "$${name}"`),
  ];
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
    `if e=$("$b" "$@" -- ${INNER_SHELL} -c true 2>&1 >/dev/null); then printf 'ok\\0'; else printf 'failed\\0%s\\0' "$e"; exit 0; fi`,
    // Long-lived sandboxes (holderScript) need nsenter, setpriv and env, and a root login: nsenter run by
    // anyone else cannot join namespaces that bwrap --disable-userns leaves owned by a user namespace
    // nobody is in (EPERM). Without them every command starts its own bwrap.
    // Only from system directories, which the sandbox shows read-only: nsenter runs setpriv inside the
    // sandbox's mount namespace with the user namespace's capabilities still held.
    'N= S= E=',
    `for d in ${HOLDER_TOOL_DIRS.join(' ')}; do for t in nsenter setpriv env; do if [ -f "$d/$t" ] && [ -x "$d/$t" ]; then case $t in nsenter) [ -n "$N" ] || N=$d/$t ;; setpriv) [ -n "$S" ] || S=$d/$t ;; *) [ -n "$E" ] || E=$d/$t ;; esac; fi; done; done`,
    'u=$(command -p id -u 2>/dev/null)',
    `if [ "$u" = 0 ] && [ -n "$N" ] && [ -n "$S" ] && [ -n "$E" ]; then printf 'holder\\0%s\\0%s\\0%s\\0' "$N" "$S" "$E"; else printf 'noholder\\0uid %s, nsenter %s, setpriv %s, env %s\\0' "$u" "\${N:-none}" "\${S:-none}" "\${E:-none}"; fi`,
  ].join('\n');
}

/** Where nsenter, setpriv and env are looked for (see holderUsable). */
const HOLDER_TOOL_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];

/**
 * Whether commands of this spec may join a long-lived sandbox: not when a writable tree could hold the
 * system programs or libraries (setpriv is run in the sandbox before it drops the capabilities).
 */
export function holderUsable(spec: SandboxSpec): boolean {
  return !spec.write.some((w) => w === '/' || /^\/(usr|bin|sbin|lib[^/]*)(\/|$)/.test(w) || w.startsWith('/etc/ld.so'));
}

/** Where the tools that enter a long-lived sandbox are on the host; null: every command starts its own bwrap. */
export interface HolderTools {
  nsenter: string;
  setpriv: string;
  env: string;
}

/** The probe's answer about long-lived sandboxes (see probeScript); the reason when there are none. */
export function parseHolderProbe(out: Buffer): { tools: HolderTools | null; detail: string } {
  const tokens = out.toString('utf8').split('\0');
  const at = tokens.indexOf('ok');
  if (at !== 2) return { tools: null, detail: 'no sandbox' };
  const [what, nsenter = '', setpriv = '', env = ''] = tokens.slice(at + 1);
  if (what === 'holder' && [nsenter, setpriv, env].every((p) => p.startsWith('/'))) return { tools: { nsenter, setpriv, env }, detail: 'long-lived sandboxes' };
  return { tools: null, detail: what === 'noholder' ? `no long-lived sandboxes (${nsenter})` : 'no long-lived sandboxes' };
}

/** What a started holder reported: its bwrap (outer, with its start time), the sandbox's first process, and its trees. */
export interface HolderInfo {
  outer: number;
  start: string;
  pid: number;
  /** Physical paths of the trees shown inside, and of the hidden ones (for the working directory's check). */
  visible: string[];
  hidden: string[];
}

/**
 * A long-lived sandbox: the spec's bwrap, with its paths resolved on the host NOW, running the login
 * shell blocked on reading the channel's stdin. Paths that change on the host later (a directory
 * replaced, a symlink pointed elsewhere, a policy path created) are seen only by a new holder: after
 * HOLDER_IDLE_MS unused, or on a new connection. (Resolving the layout again per command to compare
 * costs ~2 ms of sh: the price the holder is there to avoid.) EOF on that stdin (we stop it, or the
 * connection is gone) ends the shell, bwrap and the sandbox's PID namespace; --die-with-parent ties it to
 * the session. Output on stdout, NUL-terminated: the trees (reportRoots), `end`, bwrap's pid and its start
 * time (field 22 of /proc/PID/stat); then bwrap's --info-fd JSON.
 */
export function holderScript(spec: SandboxSpec, securePath: string, marker: string): string {
  if (!/^[A-Za-z0-9_-]+:$/.test(marker)) throw new TypeError(`bad marker ${JSON.stringify(marker)}`);
  return [
    `PATH=${quoteWord(securePath)}; export PATH`,
    'c=/',
    ...bwrapPrologue(spec, { securePath, noBwrap: `{ echo ${marker}no-bwrap >&2; exit 125; }`, cwdHidden: null, reportRoots: true }),
    'f() { shift 19; s=$1; }',
    'read -r q </proc/$$/stat; f ${q##*) }',
    `printf 'end\\0%s\\0%s\\0' "$$" "$s"`,
    // bwrap writes --info-fd as soon as it has cloned, while the sandbox is still being mounted: commands
    // may join only once the shell inside says `ready` (it runs after every mount).
    `exec "$b" "$@" --info-fd 3 -- ${INNER_SHELL} -c ${quoteWord("printf 'ready\\0'; read -r _")} 3>&1`,
  ].join('\n');
}

/** Parses holderScript's output once it is complete; null while more is to come. */
export function parseHolderInfo(out: Buffer): HolderInfo | null {
  const parts = out.toString('utf8').split('\0');
  const end = parts.indexOf('end');
  if (end < 0 || parts.length < end + 4) return null;
  const [outer = '', start = ''] = parts.slice(end + 1);
  // The JSON (bwrap) and `ready` (the shell inside) come from two processes: in either order.
  const rest = parts.slice(end + 3).join('\0');
  const json = rest.replace('ready\0', '');
  if (!json.includes('}') || json === rest) return null;
  const pid = /"child-pid"\s*:\s*(\d+)/.exec(json)?.[1];
  const roots = parts.slice(0, end);
  if (!/^\d+$/.test(outer) || !/^\d+$/.test(start) || pid === undefined || !roots.every((r) => /^[vh]\//.test(r))) {
    throw new Error(`unexpected answer from the sandbox holder: ${JSON.stringify(out.toString('utf8').slice(0, 300))}`);
  }
  const of = (kind: string): string[] => roots.filter((r) => r[0] === kind).map((r) => r.slice(1));
  return { outer: Number(outer), start, pid: Number(pid), visible: of('v'), hidden: of('h') };
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
