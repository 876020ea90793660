// Path and program resolution on the local host, the way the kernel will see them when the command runs.
import { lstatSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { posix } from 'node:path';
import { DEFAULT_SECURE_PATH } from '../config/config.js';
import type { PathResolver } from './types.js';

/** A path that cannot be resolved (symlink loop, too long, NUL byte, unreadable directory): the check denies. */
export class ResolveError extends Error {
  override name = 'ResolveError';
}

export interface LocalResolverOptions {
  /** Directories searched for bare program names, `:`-separated; never the caller's $PATH. */
  securePath?: string;
  /**
   * How long a `which` answer is reused. The secure PATH holds root-owned directories, so swapping a
   * program there already needs root; reusing the answer briefly saves ~5 stat calls per program per
   * decision. File paths are never cached across calls (a symlink in /tmp can change between commands).
   * 0 disables the cache.
   */
  whichTtlMs?: number;
  /** Paths no check may reach (remux's own files, hosts/local.ts ownPaths): resolving into one throws. */
  own?: readonly string[];
}

const MAX_SYMLINKS = 40; // Linux's own limit (ELOOP)
const PATH_MAX = 4096; // bytes with the NUL; longer paths fail with ENAMETOOLONG when the command runs
const WHICH_CACHE_MAX = 1024; // program names come from callers: bound the memory they can claim

export function createLocalResolver(options: LocalResolverOptions = {}): PathResolver {
  const dirs = (options.securePath ?? DEFAULT_SECURE_PATH).split(':').filter((d) => d.startsWith('/'));
  const ttl = options.whichTtlMs ?? 1000;
  const whichCache = new Map<string, { path: string | null; until: number }>();
  // As given and as resolved now (a REMUX_HOME reached through a link is the same files).
  const own = [
    ...new Set(
      (options.own ?? []).flatMap((p) => {
        try {
          return [p, walk(p, () => {})];
        } catch {
          return [p];
        }
      }),
    ),
  ];
  const refuseOwn = (current: string, path: string): void => {
    if (own.some((p) => current === p || current.startsWith(`${p}/`))) throw new ResolveError(`${shorten(path)} is remux's own (its keys, configuration, stores or sockets), which no command or file action reaches`);
  };

  function lookup(name: string): string | null {
    for (const dir of dirs) {
      const candidate = `${dir}/${name}`;
      const st = statSync(candidate, { throwIfNoEntry: false });
      if (st?.isFile() && (st.mode & 0o111) !== 0) return realpathSync.native(candidate);
    }
    return null;
  }

  return {
    realpath: (path, cwd) => resolveLocal(path, cwd, refuseOwn),
    which(name) {
      if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) return null;
      if (ttl <= 0) return lookup(name);
      const now = Date.now();
      const hit = whichCache.get(name);
      if (hit && hit.until > now) return hit.path;
      const path = lookup(name);
      if (whichCache.size >= WHICH_CACHE_MAX) whichCache.clear();
      whichCache.set(name, { path, until: now + ttl });
      return path;
    },
  };
}

export const localResolver: PathResolver = createLocalResolver();

/**
 * realpath(3) when the path exists; otherwise the realpath of the longest existing prefix plus the rest.
 * Resolved component by component (walk): as fast as realpath(3) here, and it sees every link on the way.
 */
function resolveLocal(path: string, cwd: string, refuse: (current: string, path: string) => void = () => {}): string {
  if (path.includes('\0')) throw new ResolveError('path contains a NUL byte');
  if (!cwd.startsWith('/')) throw new ResolveError(`working directory ${cwd} is not absolute`);
  // Joined as a string, not with path.resolve: `..` must apply after symlinks are followed, as the kernel does.
  const abs = path.startsWith('/') ? path : `${cwd}/${path}`;
  if (abs.length >= PATH_MAX / 3 && Buffer.byteLength(abs) >= PATH_MAX) throw resolveError('ENAMETOOLONG', abs);
  return walk(abs, refuse);
}

/**
 * /proc/self, /proc/thread-self, /dev/fd and /dev/std* lead into the resolving process's own /proc entry:
 * resolved here they would name remux's working directory, descriptors and files, while the program
 * will find its own there (`cat /proc/self/cwd/key` run elsewhere than remux's directory). Refused.
 */
const OWN_PROC = `/proc/${process.pid}`;

function refuseSelfReference(current: string, path: string): void {
  if (current === OWN_PROC || current.startsWith(`${OWN_PROC}/`)) throw selfReference(path);
}

/** The refusal of a path that leads into the resolving process's own /proc entry (every resolver words it so). */
export function selfReference(path: string): ResolveError {
  return new ResolveError(`${shorten(path)} leads into the running program's own /proc entry (/proc/self, /dev/fd, /dev/stdin…), which remux cannot check before the program runs; name the file itself`);
}

function shorten(path: string): string {
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}

function resolveError(code: string | undefined, path: string): ResolveError {
  const shown = shorten(path);
  if (code === 'ELOOP') return new ResolveError(`too many symlinks (a loop?) in ${shown}`);
  if (code === 'ENAMETOOLONG') return new ResolveError(`path too long (${path.length} characters)`);
  return new ResolveError(`cannot resolve ${shown}: ${code ?? 'unknown error'}`);
}

/**
 * Component by component, following symlinks even when their target does not exist: a write to a
 * dangling link creates the target, so the target is what must be checked.
 */
function walk(abs: string, refuse: (current: string, path: string) => void): string {
  const pending = abs.split('/').reverse();
  let current = '/';
  let missing = false;
  let links = 0;
  while (pending.length > 0) {
    const part = pending.pop() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      current = posix.dirname(current);
      continue;
    }
    const next = current === '/' ? `/${part}` : `${current}/${part}`;
    if (missing) {
      current = next;
      continue;
    }
    let st: Stats | undefined;
    try {
      st = lstatSync(next, { throwIfNoEntry: false });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTDIR') throw resolveError(code, abs);
    }
    if (st?.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw resolveError('ELOOP', abs);
      const target = readlinkSync(next);
      pending.push(...target.split('/').reverse());
      if (target.startsWith('/')) current = '/';
      continue;
    }
    missing = st === undefined;
    current = next;
    refuseSelfReference(current, abs);
    refuse(current, abs);
  }
  return current;
}
