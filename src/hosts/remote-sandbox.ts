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
    `for d in ${words(SYSTEM_DIRS)}; do if [ -L "$d" ] && rp "$d"; then set -- "$@" --symlink "$p" "$d"; elif rp "$d"; then set -- "$@" --ro-bind "$d" "$d"; under "$c" "$p" && v=1; fi; done`,
    `for d in ${words(SYSTEM_ETC)}; do if [ -e "$d" ]; then set -- "$@" --ro-bind "$d" "$d"; fi; done`,
    `t=1; ${each('eval "q=\\$m$i"; under /tmp "$q" && t=0')}`,
    '[ $t = 0 ] || set -- "$@" --tmpfs /tmp',
    `${each('eval "a=\\$m$i"; l=0; j=0; while [ $j -lt $n ]; do eval "q=\\$m$j"; [ "$q" != "$a" ] && under "$a" "$q" && l=$((l + 1)); j=$((j + 1)); done; eval "z$i=$l"')}`,
    `l=0; while [ $l -lt $n ]; do ${each('eval "a=\\$m$i e=\\$z$i k=\\$k$i"; if [ "$e" = $l ]; then if [ "$k" = w ]; then set -- "$@" --bind "$a" "$a"; else set -- "$@" --ro-bind "$a" "$a"; fi; under "$c" "$a" && v=1; fi')}; l=$((l + 1)); done`,
    'set -- "$@" --proc /proc --dev /dev',
    ...forEach(spec.readOnly, `rp "$a" || continue; ${each('eval "q=\\$m$i k=\\$k$i"; if [ "$k" = w ] && under "$p" "$q"; then set -- "$@" --ro-bind "$p" "$p"; break; fi')}`),
    ...forEach(spec.hide, 'rp "$a" || continue; if [ -d "$p" ]; then set -- "$@" --tmpfs "$p" --remount-ro "$p"; else set -- "$@" --ro-bind /dev/null "$p"; fi; under "$c" "$p" && v=0'),
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
    `if e=$("$b" "$@" -- ${INNER_SHELL} -c true 2>&1 >/dev/null); then printf 'ok\\0'; else printf 'failed\\0%s\\0' "$e"; fi`,
  ].join('\n');
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
