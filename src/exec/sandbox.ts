// bubblewrap wrapping for local stages: only the policy's paths, no network, no capabilities.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { BwrapInfo, SandboxSpec } from './types.js';

const BWRAP_CANDIDATES = ['/usr/bin/bwrap', '/usr/local/bin/bwrap', '/bin/bwrap'];
/** FIELD-NOTES §12: bubblewrap before 0.12.0 has a known CVE. We warn, we do not refuse. */
const MIN_SAFE_VERSION = [0, 12, 0] as const;

/** Read-only system trees programs need; mirrored as symlinks where the host has symlinks (merged /usr). */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32'];
/** The few /etc files programs need to start and to print user names; nothing with secrets (no shadow, no ssh). */
const SYSTEM_ETC = [
  '/etc/ld.so.cache',
  '/etc/alternatives',
  '/etc/localtime',
  '/etc/passwd',
  '/etc/group',
  '/etc/nsswitch.conf',
];

/** Paths a sandboxed stage can see, after normalisation: what the mount arguments and the inside-checks agree on. */
export interface SandboxLayout {
  /** Host-existing policy paths, symlinks resolved, parents before children; write wins over read for the same path. */
  mounts: Array<{ path: string; writable: boolean }>;
  /** True when no policy path covers /tmp: the sandbox gets an empty private /tmp. */
  privateTmp: boolean;
  /** Trees visible inside (system dirs and mounts), for the cwd and program checks. */
  visible: string[];
  writable: string[];
}

export function sandboxLayout(paths: SandboxSpec): SandboxLayout {
  const byPath = new Map<string, boolean>();
  const add = (p: string, writable: boolean): void => {
    if (!path.isAbsolute(p)) throw new Error(`sandbox path must be absolute: ${p}`);
    let real: string;
    try {
      real = fs.realpathSync(p);
    } catch {
      return; // Absent paths are not mounted: granting a parent instead would widen the policy.
    }
    byPath.set(real, writable || (byPath.get(real) ?? false));
  };
  paths.read.forEach((p) => add(p, false));
  paths.write.forEach((p) => add(p, true));
  const mounts = [...byPath.entries()]
    .map(([p, writable]) => ({ path: p, writable }))
    .sort((a, b) => depth(a.path) - depth(b.path) || a.path.localeCompare(b.path));
  const systemReal = SYSTEM_DIRS.flatMap((d) => {
    try {
      return [fs.realpathSync(d)];
    } catch {
      return [];
    }
  });
  return {
    mounts,
    privateTmp: !mounts.some((m) => isInside('/tmp', m.path)),
    visible: [...new Set([...systemReal, ...mounts.map((m) => m.path)])],
    writable: mounts.filter((m) => m.writable).map((m) => m.path),
  };
}

/**
 * bwrap options (everything before `--`) for one stage. Passed through `--args FD`, not argv, so the
 * environment (which may hold tokens) never shows in `ps` and bwrap itself runs with an empty environment.
 */
export function bwrapOptions(layout: SandboxLayout, cwd: string, env: Record<string, string>): string[] {
  const args = [
    '--die-with-parent',
    '--new-session', // no TIOCSTI into the caller's terminal (CVE-2017-5226)
    '--unshare-all', // net, pid, ipc, uts, cgroup
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
  // After the policy mounts, so a policy path of `/` cannot bring in the host's /proc or /dev.
  args.push('--proc', '/proc', '--dev', '/dev');
  args.push('--chdir', cwd, '--clearenv');
  for (const [k, v] of Object.entries(env)) args.push('--setenv', k, v);
  return args;
}

/** `p` equals `root` or lies below it, comparing whole segments. Both must be absolute and normalised. */
export function isInside(p: string, root: string): boolean {
  if (root === '/') return true;
  return p === root || p.startsWith(root + '/');
}

function depth(p: string): number {
  return p === '/' ? 0 : p.split('/').length - 1;
}

let cached: BwrapInfo | null = null;

/** Whether bubblewrap can sandbox here (see probeBwrap). Probed once per process, synchronously (~10 ms). */
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
    const opts = bwrapOptions(sandboxLayout({ read: [], write: [], hide: [], readOnly: [], network: false, owner: 'probe' }), '/', {});
    execFileSync(bin, [...opts, '--', truePath], { encoding: 'utf8', timeout: 10000, env: {}, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    return { ok: false, path: bin, version, reason: `probe sandbox failed to start: ${errorText(e)}` };
  }
  const info: BwrapInfo = { ok: true, path: bin, version };
  if (version === null || olderThan(version, MIN_SAFE_VERSION)) {
    info.warning = `bubblewrap ${version ?? '(unknown version)'} is older than ${MIN_SAFE_VERSION.join('.')}, which fixes a known sandbox escape CVE; upgrade bubblewrap`;
  }
  return info;
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
