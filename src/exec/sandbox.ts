// The local OS sandbox (bubblewrap): what a policy's sandbox shows, the bwrap options that build it, and
// whether bubblewrap works here. Sandboxes are kept running and reused: see sandbox-pool.ts.

import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileGlob } from '../policy/glob.js';
import type { BwrapInfo, SandboxSpec } from './types.js';

/** In secure_path's order: a bubblewrap built from source into /usr/local wins over the distribution's. */
const BWRAP_CANDIDATES = ['/usr/local/bin/bwrap', '/usr/bin/bwrap', '/bin/bwrap'];
/** FIELD-NOTES §12: bubblewrap before 0.12.0 has a known CVE. We warn, we do not refuse. */
const MIN_SAFE_VERSION = [0, 12, 0] as const;

/** Read-only system trees programs need; mirrored as symlinks where the host has symlinks (merged /usr). */
/** Joins a long-lived sandbox (native/sandbox-enter.c, built by `npm run build`): locally per stage, and sent to SSH hosts. */
export const ENTER_HELPER = fileURLToPath(new URL('../../../bin/remux-sandbox-enter', import.meta.url));

/** The namespaces a stage joins, in the order remux-sandbox-enter expects them on fds 4-9. */
export const ENTER_NAMESPACES = ['user', 'mnt', 'net', 'ipc', 'uts', 'pid'] as const;
const NAMESPACE_WORDS = ['user', 'mount', 'network', 'IPC', 'UTS', 'PID'];
const ERRNO_NAMES = new Map(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

/** remux-sandbox-enter's report "WHAT STATUS ERRNO [INDEX]" (native/sandbox-enter.c: fail()), errno by name. */
export interface EnterReport {
  what: string;
  status: number;
  err: string;
  index: number;
  /** For `join`: the namespace, in words. */
  namespace: string;
}

export function parseEnterReport(report: string): EnterReport {
  const [what = '', status = '126', errno = '0', index = '-1'] = report.trim().split(' ');
  return { what, status: Number(status), err: ERRNO_NAMES.get(Number(errno)) ?? `errno ${errno}`, index: Number(index), namespace: NAMESPACE_WORDS[Number(index)] ?? '' };
}

/**
 * The sandbox the stage was to enter is gone, so nothing ran: its namespaces cannot be joined, or its PID
 * namespace lost its first process (killed from outside) and takes no new one (fork: ENOMEM).
 */
export function sandboxGone(report: EnterReport): boolean {
  return report.what === 'join' || (report.what === 'fork' && report.err === 'ENOMEM');
}

export const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32'];
/** The few /etc files programs need to start and to print user names; nothing with secrets (no shadow, no ssh). */
export const SYSTEM_ETC = [
  '/etc/ld.so.cache',
  '/etc/alternatives',
  '/etc/localtime',
  '/etc/passwd',
  '/etc/group',
  '/etc/nsswitch.conf',
];

/** What a sandbox shows, resolved on this host: the mount plan and the inside-checks agree on it. */
export interface SandboxLayout {
  /** Host-existing policy paths, symlinks resolved, parents before children; write wins over read for the same path. */
  mounts: Array<{ path: string; writable: boolean }>;
  /** Existing paths inside writable mounts that stay read-only (deny/ask rules on writes). */
  readOnly: string[];
  /** Existing paths inside visible mounts that stay hidden (deny/ask rules on reads); directories become empty. */
  hidden: Array<{ path: string; directory: boolean }>;
  /**
   * Unix sockets shown but not writable, each covered with /dev/null: connecting to one needs write
   * permission on the host, but connect(2) ignores a read-only mount (see hostSockets).
   */
  sockets: string[];
  /** No policy path covers /tmp: the sandbox gets an empty /tmp of its own, shared by its commands. */
  privateTmp: boolean;
  network: boolean;
  /** Whom it runs commands for (SandboxSpec.owner). */
  owner: string;
  /** Trees visible inside (system dirs and mounts), for the cwd and program checks. */
  visible: string[];
  writable: string[];
  /**
   * Identity of this layout for reusing a running sandbox: owner, options, and every mounted path with
   * its inode, so a policy change, a path that appears, or a directory replaced on the host gives a new one.
   */
  key: string;
}

/**
 * `p` with symlinks resolved and what it is, or null when it cannot be reached. Runs for every path of
 * every sandboxed command: most of a policy's hidden paths do not exist, and a stat that says so costs a
 * fraction of the exception fs.realpathSync throws (libc's realpath beats its JS walk as well).
 */
export function existingReal(p: string): { real: string; stat: fs.Stats } | null {
  try {
    if (fs.statSync(p, { throwIfNoEntry: false }) === undefined) return null;
    const real = fs.realpathSync.native(p);
    return { real, stat: fs.statSync(real) };
  } catch {
    return null;
  }
}

function absolute(p: string): string {
  if (!path.isAbsolute(p)) throw new Error(`sandbox path must be absolute: ${p}`);
  return p;
}

export function sandboxLayout(spec: SandboxSpec): SandboxLayout {
  const identity: string[] = [];
  /** The real path and its identity, or null when absent (absent paths are not mounted: a parent would widen the policy). */
  const resolve = (p: string): { real: string; stat: fs.Stats } | null => {
    const found = existingReal(absolute(p));
    if (found) identity.push(`${found.real}:${found.stat.dev}:${found.stat.ino}`);
    return found;
  };
  const byPath = new Map<string, boolean>();
  const add = (p: string, writable: boolean): void => {
    const found = resolve(p);
    if (found) byPath.set(found.real, writable || (byPath.get(found.real) ?? false));
  };
  spec.read.forEach((p) => add(p, false));
  spec.write.forEach((p) => add(p, true));
  const mounts = [...byPath.entries()]
    .map(([p, writable]) => ({ path: p, writable }))
    .sort((a, b) => depth(a.path) - depth(b.path) || a.path.localeCompare(b.path));
  const visible = [...new Set([...systemDirs(), ...mounts.map((m) => m.path)])];
  const writable = mounts.filter((m) => m.writable).map((m) => m.path);
  const inside = (roots: string[]) => (p: string) => roots.some((root) => isInside(p, root));
  const readOnly = spec.readOnly.flatMap((p) => resolve(p)?.real ?? []).filter(inside(writable));
  const hidden = [...spec.hide, ...(spec.hideMatching ?? []).flatMap(matchingNames)]
    .flatMap((p) => {
      const found = resolve(p);
      return found ? [{ path: found.real, directory: found.stat.isDirectory() }] : [];
    })
    .filter((h) => inside(visible)(h.path));
  const privateTmp = !mounts.some((m) => isInside('/tmp', m.path));
  // The innermost tree showing a socket decides: writable (and no deny-write rule over it), or not.
  const connectable = (p: string): boolean => {
    const tree = mounts.filter((m) => isInside(p, m.path)).at(-1);
    return tree !== undefined && tree.writable && !readOnly.some((r) => isInside(p, r));
  };
  const sockets = hostSockets()
    .filter((s) => inside(visible)(s.path) && !connectable(s.path) && !hidden.some((h) => isInside(s.path, h.path)))
    .map((s) => {
      // A socket made anew at the same path (a daemon restarted) is a new sandbox: the cover bound over
      // the old one goes with it, and would show the new one.
      identity.push(`${s.path}:${s.id}`);
      return s.path;
    });
  const options = { owner: spec.owner, network: spec.network, privateTmp, mounts, readOnly, hidden, sockets };
  return {
    mounts,
    readOnly: sortByDepth(readOnly),
    hidden: hidden.sort((a, b) => depth(a.path) - depth(b.path)),
    sockets,
    privateTmp,
    network: spec.network,
    owner: spec.owner,
    visible,
    writable,
    key: JSON.stringify([options, identity.sort()]),
  };
}

/** Where daemons whose sockets this network namespace does not list keep them (rootless containers' APIs). */
const SOCKET_DIRS = ['/run'];
/** Bounds of the walk of SOCKET_DIRS: 5,000 entries take about 7 ms here, once a second while commands run. */
const SOCKET_WALK_DEPTH = 6;
const SOCKET_WALK_ENTRIES = 10_000;
/** How long one look at this host's sockets serves the layouts of the commands that follow. */
const SOCKETS_TTL_MS = 1000;

let socketsSeen: { at: number; sockets: Array<{ path: string; id: string }> } | null = null;

/**
 * This host's Unix sockets by physical path with their identity: every one bound in this network namespace
 * (/proc/net/unix names them wherever they lie) and those under SOCKET_DIRS. A socket in a tree the
 * sandbox shows read-only would otherwise be open to it: the kernel checks write permission on connect,
 * not the mount's read-only flag, and a container engine's or the system bus's socket is root on the host.
 */
export function hostSockets(): Array<{ path: string; id: string }> {
  const now = performance.now();
  if (socketsSeen && now - socketsSeen.at < SOCKETS_TTL_MS) return socketsSeen.sockets;
  const names = new Set<string>();
  try {
    // "Num: RefCount Protocol Flags Type St Inode Path": the path is the rest of the line (spaces and all).
    for (const line of fs.readFileSync('/proc/net/unix', 'latin1').split('\n')) {
      const named = /^\S+: \S+ \S+ \S+ \S+ \S+ +\d+ (\/.*)$/.exec(line);
      if (named?.[1]) names.add(Buffer.from(named[1], 'latin1').toString());
    }
  } catch {
    // No procfs: the walk below still runs.
  }
  let budget = SOCKET_WALK_ENTRIES;
  const walk = (dir: string, level: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (--budget < 0) return;
      const p = path.join(dir, e.name);
      if (e.isSocket()) names.add(p);
      else if (e.isDirectory() && level < SOCKET_WALK_DEPTH) walk(p, level + 1);
    }
  };
  for (const dir of SOCKET_DIRS) walk(dir, 1);
  const sockets = new Map<string, string>();
  for (const name of names) {
    // Gone since it was bound, or its directory is not ours to see: null.
    const found = existingReal(name);
    // ctime too: a socket made anew often gets the inode number its predecessor freed.
    if (found?.stat.isSocket()) sockets.set(found.real, `${found.stat.dev}:${found.stat.ino}:${found.stat.ctimeMs}`);
  }
  socketsSeen = { at: now, sockets: [...sockets].map(([p, id]) => ({ path: p, id })) };
  return socketsSeen.sockets;
}

/** The entries of the glob's directory that it matches (`/var/log/secure*` → /var/log/secure, secure.1 …). */
function matchingNames(glob: string): string[] {
  const dir = path.posix.dirname(glob);
  const matcher = compileGlob(glob);
  try {
    return fs.readdirSync(dir).map((name) => path.posix.join(dir, name)).filter((p) => matcher.test(p));
  } catch {
    return [];
  }
}

let systemReal: string[] | null = null;

/** SYSTEM_DIRS with symlinks resolved (/bin → /usr/bin on merged-/usr systems), once per process. */
function systemDirs(): string[] {
  systemReal ??= SYSTEM_DIRS.flatMap((d) => {
    try {
      return [fs.realpathSync(d)];
    } catch {
      return [];
    }
  });
  return systemReal;
}

/** The cwd, a program or a redirect target is reachable inside: under a visible tree and not hidden. */
export function visibleInside(layout: SandboxLayout, p: string): boolean {
  return layout.visible.some((root) => isInside(p, root)) && !layout.hidden.some((h) => isInside(p, h.path));
}

/**
 * visibleInside(sandboxLayout(spec), p) without the rest of the layout (sockets, read-only paths, its key),
 * and the hidden paths resolved only when a visible tree holds `p`: asked of the working directory before
 * every sandboxed command that names none, usually one the policy does not show.
 */
export function showsPath(spec: SandboxSpec, p: string): boolean {
  const real = (q: string): string[] => {
    const found = existingReal(absolute(q));
    return found ? [found.real] : [];
  };
  const visible = [...systemDirs(), ...spec.read.flatMap(real), ...spec.write.flatMap(real)];
  if (!visible.some((root) => isInside(p, root))) return false;
  const hidden = [...spec.hide, ...(spec.hideMatching ?? []).flatMap(matchingNames)].flatMap(real).filter((h) => visible.some((root) => isInside(h, root)));
  return !hidden.some((h) => isInside(p, h));
}

/**
 * bwrap options (everything before `--`) for a sandbox with this layout, ending in `--clearenv`. For a
 * long-lived sandbox its program only waits; stages join it through remux-sandbox-enter, which sets
 * their cwd and environment. For a tmux pane the program starts in `pane.cwd` (physical); the caller
 * adds the environment.
 */
export function bwrapOptions(layout: SandboxLayout, pane?: { cwd: string }): string[] {
  const args = [
    '--die-with-parent',
    // No TIOCSTI into the caller's terminal (CVE-2017-5226). A pane's terminal has no caller behind it:
    // only the sandbox reads it, and needs it as its controlling terminal (Ctrl-C, job control, /dev/tty).
    ...(pane ? [] : ['--new-session']),
    '--unshare-all', // net, pid, ipc, uts, cgroup
    ...(layout.network ? ['--share-net'] : []),
    '--unshare-user',
    '--disable-userns', // no nested user namespace to regain capabilities in
    // As root, bwrap keeps every capability inside; CAP_SYS_ADMIN could remount the read-only binds writable.
    '--cap-drop',
    'ALL',
  ];
  for (const dir of [...SYSTEM_DIRS, ...SYSTEM_ETC]) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(dir);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) args.push('--symlink', fs.readlinkSync(dir), dir);
    else args.push('--ro-bind', dir, dir);
  }
  if (layout.privateTmp) args.push('--tmpfs', '/tmp');
  for (const m of layout.mounts) args.push(m.writable ? '--bind' : '--ro-bind', m.path, m.path);
  // Deny beats allow: read-only binds come after the writable trees, hidden paths after everything.
  for (const p of layout.readOnly) args.push('--ro-bind', p, p);
  for (const h of layout.hidden) {
    if (h.directory) args.push('--tmpfs', h.path, '--remount-ro', h.path);
    else args.push('--ro-bind', '/dev/null', h.path);
  }
  for (const s of layout.sockets) args.push('--ro-bind', '/dev/null', s);
  // After the policy mounts, so a policy path of `/` cannot bring in the host's /proc or /dev.
  args.push('--proc', '/proc', '--dev', '/dev', '--chdir', pane?.cwd ?? '/', '--clearenv');
  return args;
}

/** `p` equals `root` or lies below it, comparing whole segments. Both must be absolute and normalised. */
export function isInside(p: string, root: string): boolean {
  if (root === '/') return true;
  return p === root || p.startsWith(root + '/');
}

function sortByDepth(paths: string[]): string[] {
  return [...new Set(paths)].sort((a, b) => depth(a) - depth(b) || a.localeCompare(b));
}

function depth(p: string): number {
  return p === '/' ? 0 : p.split('/').length - 1;
}

let cached: BwrapInfo | null = null;

/** Whether bubblewrap can sandbox here (see probeBwrap). Probed once per process, synchronously (~10 ms). */
/**
 * Whether each sandboxed stage can be kept from the host's abstract Unix sockets when it shares the host's
 * network (Landlock scopes, ABI 6: Linux 6.12): remux-sandbox-enter asks the kernel.
 */
export function landlockScopes(): boolean {
  const r = spawnSync(ENTER_HELPER, ['--landlock-abi'], { timeout: 5000 });
  return r.status !== null && r.status >= 6;
}

export function bwrapAvailable(): BwrapInfo {
  cached ??= probeBwrap(BWRAP_CANDIDATES);
  return cached;
}

/** First executable candidate, its version, and whether a sandbox with our exact flags starts. */
export function probeBwrap(candidates: string[]): BwrapInfo {
  const bin = candidates.find((p) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (bin === undefined) return { ok: false, path: null, version: null, reason: `bwrap not found (looked for ${candidates.join(', ')})` };
  let version: string | null = null;
  try {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000, env: {} });
    version = /(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? null;
  } catch (e) {
    return { ok: false, path: bin, version, reason: `${bin} --version failed: ${errorText(e)}` };
  }
  const truePath = ['/usr/bin/true', '/bin/true'].find((p) => fs.existsSync(p));
  if (truePath === undefined) return { ok: false, path: bin, version, reason: 'no /usr/bin/true to probe the sandbox with' };
  try {
    const opts = bwrapOptions(sandboxLayout({ read: [], write: [], hide: [], readOnly: [], network: false, owner: 'probe' }));
    execFileSync(bin, [...opts, '--', truePath], { encoding: 'utf8', timeout: 10000, env: {}, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    return { ok: false, path: bin, version, reason: `probe sandbox failed to start: ${errorText(e)}` };
  }
  const info: BwrapInfo = { ok: true, path: bin, version };
  const warning = oldBubblewrapWarning(version);
  if (warning) info.warning = warning;
  return info;
}

/** The warning for a bubblewrap older than the fix of its known escape (README: bubblewrap before 0.12.0); `host` names a remote one. */
export function oldBubblewrapWarning(version: string | null, host?: string): string | undefined {
  if (version !== null && !olderThan(version, MIN_SAFE_VERSION)) return undefined;
  const where = host === undefined ? '' : ` on ${host}`;
  return `bubblewrap ${version ?? '(unknown version)'}${where} is older than ${MIN_SAFE_VERSION.join('.')}, which fixes a known sandbox escape CVE; upgrade bubblewrap${host === undefined ? '' : ' there'}`;
}

function olderThan(version: string, min: readonly number[]): boolean {
  const v = version.split('.').map(Number);
  for (let i = 0; i < min.length; i++) {
    const a = v[i] ?? 0;
    const b = min[i] ?? 0;
    if (a !== b) return a < b;
  }
  return false;
}

function errorText(e: unknown): string {
  const stderr = (e as { stderr?: unknown }).stderr;
  const text = typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim() : e instanceof Error ? e.message : String(e);
  return text.split('\n')[0] ?? text;
}
