// Writing the user's files so that a crash or a concurrent reader never sees half of one, and changing
// them so that two concurrent writers (two `remux principal add` at once) never lose one's change.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { UsageError } from '../core/errors.js';
import { processAlive } from '../core/process.js';

/**
 * Temp file + fsync + rename in the same directory: readers see the old file or the new one, never half.
 * The file is 0600, or with keepMode, a file replaced keeps the mode someone gave it (never a bit more),
 * bits beyond `atMost` dropped: the config files remux rewrites keep their mode, principals.yaml (token
 * hashes) at most 0600.
 */
export function writeAtomic(file: string, text: string, { keepMode = false, atMost = 0o7777 } = {}): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const replaced = keepMode ? statSync(file, { throwIfNoEntry: false }) : undefined;
  const tmp = join(dir, `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      // fchmod, not open's mode: the umask would take bits off it.
      if (replaced) fchmodSync(fd, replaced.mode & 0o7777 & atMost);
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * The text of a file this process wrote for a later one (a stopping daemon's hand-overs), if it is a regular
 * file of this user's that only this user may read or write, of at most maxBytes; never through a link
 * (ELOOP). Throws saying what it is instead.
 */
export function readPrivate(file: string, maxBytes: number): string {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    const why = !st.isFile()
      ? 'is not a regular file'
      : st.uid !== process.getuid!()
        ? `belongs to uid ${st.uid}, not this daemon's user`
        : (st.mode & 0o077) !== 0
          ? `may be read or written by others (mode ${(st.mode & 0o777).toString(8)})`
          : st.size > maxBytes
            ? `is larger than ${maxBytes} bytes`
            : null;
    if (why) throw new Error(why);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

export const LOCK_TIMEOUT_MS = 5000;

export function lockFileOf(file: string): string {
  return `${file}.lock`;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Runs `change` (a read-modify-write of `file`) while holding FILE.lock, a file created with O_EXCL:
 * concurrent changers queue up instead of overwriting each other. The lock records its holder (pid,
 * host, time). It is never broken automatically (a holder may be alive on another host of a shared
 * home); after timeoutMs, or at once when its holder is a process of this host that is gone, the
 * error names the lock file, its holder and how to remove it.
 */
export function withFileLock<T>(file: string, change: () => T, timeoutMs = LOCK_TIMEOUT_MS): T {
  const lock = lockFileOf(file);
  mkdirSync(dirname(lock), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + timeoutMs;
  let fd: number;
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      fd = openSync(lock, 'wx', 0o600);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = lockHolder(lock);
    if (holder?.gone || Date.now() >= deadline) throw staleLock(file, lock, holder, timeoutMs);
    Atomics.wait(sleeper, 0, 0, wait);
  }
  try {
    writeSync(fd, `${JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() })}\n`);
  } finally {
    closeSync(fd);
  }
  try {
    return change();
  } finally {
    rmSync(lock, { force: true });
  }
}

interface Holder {
  pid: number | null;
  host: string | null;
  since: string;
  /** Its pid is of this host and no such process runs: the lock was left behind. */
  gone: boolean;
}

function lockHolder(lock: string): Holder | null {
  let text: string;
  let mtime: Date;
  try {
    text = readFileSync(lock, 'utf8');
    mtime = statSync(lock).mtime;
  } catch {
    return null; // released meanwhile
  }
  let recorded: { pid?: unknown; host?: unknown; since?: unknown } = {};
  try {
    recorded = JSON.parse(text) as typeof recorded;
  } catch {
    // being written, or not ours: only its age is known
  }
  const pid = typeof recorded.pid === 'number' ? recorded.pid : null;
  const host = typeof recorded.host === 'string' ? recorded.host : null;
  return { pid, host, since: typeof recorded.since === 'string' ? recorded.since : mtime.toISOString(), gone: pid !== null && host === hostname() && !processAlive(pid) };
}

function staleLock(file: string, lock: string, holder: Holder | null, timeoutMs: number): UsageError {
  const who = holder?.pid ? `pid ${holder.pid}${holder.host ? ` on ${holder.host}` : ''}` : 'an unknown process';
  if (holder?.gone) {
    return new UsageError(`${file} is locked by ${lock}, left by ${who} (since ${holder.since}), which is no longer running`, `nothing else is changing it: remove the stale lock (rm ${lock}) and try again`);
  }
  return new UsageError(
    `${file} is locked: ${lock} has been held by ${who} since ${holder?.since ?? 'just now'}; gave up after ${timeoutMs / 1000}s`,
    `if no remux command is changing ${basename(file)} now, the lock is stale: remove it (rm ${lock}) and try again`,
  );
}
