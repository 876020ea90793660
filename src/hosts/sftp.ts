// File operations on an SSH host (HostFiles, see types.ts) over ssh2's SFTP subsystem: no shell, no
// command. Paths are resolved by the server (realpath, then lstat/readlink for what does not exist).
//
// The check-to-open race: SFTP (v3, OpenSSH) has no no-follow open, no openat and no inode numbers, so
// it is narrowed, not closed as locally (local-files.ts). Before an open the final component is
// lstat'ed (a symlink is refused, never followed); after it the handle's fstat must agree with that
// lstat (type, size, mode, owner, mtime), and the server's realpath of the path must still be the path
// itself (no component became a symlink). A component swapped for a symlink and back between those
// steps is not seen: grant writes only where the principal is the only one who can change the tree.
// Writes are atomic: a new file beside the target (opened exclusive, which never follows a symlink),
// then posix-rename@openssh.com over it (plain SFTP rename refuses an existing target).
// No program runs, so the OS sandbox does not apply here.
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { SFTPWrapper, Stats } from 'ssh2';
import { FileError, type DirEntry, type HostFiles } from './types.js';

/** Runs `use` on an SFTP session of the host's connection (a channel slot of the pool). */
export type WithSftp = <T>(use: (sftp: SFTPWrapper) => Promise<T>) => Promise<T>;

/** SFTP status codes (draft-ietf-secsh-filexfer-02). */
const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;
const MAX_SYMLINKS = 40;

export function sftpFiles(withSftp: WithSftp): HostFiles {
  const on = <T>(use: (s: Session) => Promise<T>): Promise<T> => withSftp((sftp) => use(new Session(sftp)));
  return {
    resolve: (paths) =>
      on((s) =>
        // Requests on one session are pipelined: all paths in about one round trip.
        Promise.all(
          paths.map(async (path) => {
            try {
              const real = await resolveOn(s, path, 0);
              const st = await lstat(s, path).catch(() => null);
              return { real, finalLink: st?.isSymbolicLink() ?? false };
            } catch (err) {
              return { error: (err as Error).message };
            }
          }),
        ),
      ),

    read: (path, { offset, length }) =>
      on(async (s) => {
        const before = await plainEntry(s, path);
        if (!before.isFile()) throw new FileError(`${path}: not a regular file`);
        const handle = await s.call<Buffer>((cb) => s.sftp.open(path, 'r', cb)).catch((err: unknown) => {
          throw fileError(err, path);
        });
        try {
          const st = await s.call<Stats>((cb) => s.sftp.fstat(handle, cb));
          if (!sameFile(before, st)) throw new FileError(`${path}: changed while being opened; not read`);
          const want = Math.max(0, Math.min(length, st.size - offset));
          const content = Buffer.alloc(want);
          let got = 0;
          while (got < want) {
            const n = await s.call<number>((cb) => s.sftp.read(handle, content, got, want - got, offset + got, cb));
            if (n === 0) break;
            got += n;
          }
          await unchanged(s, path);
          return { content: content.subarray(0, got), size: st.size };
        } finally {
          await close(s, handle);
        }
      }),

    write: (path, content, { createDirs }) =>
      on(async (s) => {
        const name = posix.basename(path);
        if (name === '' || name === '.' || name === '..') throw new FileError(`${path}: is a directory`);
        const dir = posix.dirname(path);
        if (createDirs) await makeDirs(s, dir);
        else if (!(await plainEntry(s, dir)).isDirectory()) throw new FileError(`${dir}: not a directory`);
        const target = await lstat(s, path).catch((err: unknown) => {
          if (code(err) === NO_SUCH_FILE) return null;
          throw fileError(err, path);
        });
        if (target?.isSymbolicLink()) throw new FileError(`${path}: is a symlink; a write never follows one`);
        if (target && !target.isFile()) throw new FileError(`${path}: not a regular file`);
        const temp = posix.join(dir, `.remux-${randomBytes(8).toString('hex')}.tmp`);
        const handle = await s.call<Buffer>((cb) => s.sftp.open(temp, 'wx', { mode: target ? 0o600 : 0o666 }, cb)).catch((err: unknown) => {
          throw fileError(err, path);
        });
        let closed = false;
        let renamed = false;
        try {
          if (content.length > 0) await s.call((cb) => s.sftp.write(handle, content, 0, content.length, 0, cb));
          if (target) {
            await s.call((cb) => s.sftp.fchmod(handle, target.mode & 0o7777, cb));
            // The owner is kept where the login may change it; otherwise the login owns the new file.
            await s.call((cb) => s.sftp.fchown(handle, target.uid, target.gid, cb)).catch(() => undefined);
          }
          await fsync(s, handle);
          closed = true;
          await close(s, handle);
          await unchanged(s, dir);
          await renameOver(s, temp, path, target !== null);
          renamed = true;
        } catch (err) {
          throw err instanceof FileError ? err : fileError(err, path);
        } finally {
          if (!closed) await close(s, handle).catch(() => undefined);
          if (!renamed) await s.call((cb) => s.sftp.unlink(temp, cb)).catch(() => undefined);
        }
        return { created: target === null };
      }),

    list: (path, maxEntries) =>
      on(async (s) => {
        if (!(await plainEntry(s, path)).isDirectory()) throw new FileError(`${path}: not a directory`);
        const listed = await s.call<Array<{ filename: string; attrs: Stats }>>((cb) => s.sftp.readdir(path, cb)).catch((err: unknown) => {
          throw fileError(err, path);
        });
        await unchanged(s, path);
        const sorted = listed.filter((e) => e.filename !== '.' && e.filename !== '..').sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
        // OpenSSH's readdir attributes are the entries' lstat.
        const entries: DirEntry[] = sorted.slice(0, maxEntries).map(({ filename, attrs }) => ({
          name: filename,
          type: attrs.isSymbolicLink() ? 'symlink' : attrs.isFile() ? 'file' : attrs.isDirectory() ? 'directory' : 'other',
          size: attrs.size,
          mode: attrs.mode & 0o7777,
          mtimeMs: attrs.mtime * 1000,
        }));
        return { entries, truncated: sorted.length > maxEntries };
      }),
  };
}

/**
 * realpath on the server; a missing path resolves as far as it exists, then the rest, following a
 * dangling symlink to its target (a write there creates the target), like the local resolver.
 */
async function resolveOn(s: Session, path: string, links: number): Promise<string> {
  try {
    return await s.call<string>((cb) => s.sftp.realpath(path, cb));
  } catch (err) {
    if (code(err) !== NO_SUCH_FILE) throw new Error(`cannot resolve ${path}: ${(err as Error).message}`, { cause: err });
  }
  const name = posix.basename(path);
  const parent = path === '/' || name === '' ? '/' : await resolveOn(s, posix.dirname(path), links);
  if (name === '' || name === '.') return parent;
  if (name === '..') return posix.dirname(parent);
  const candidate = posix.join(parent, name);
  const st = await lstat(s, candidate).catch(() => null);
  if (!st?.isSymbolicLink()) return candidate;
  if (links >= MAX_SYMLINKS) throw new Error(`too many symlinks (a loop?) in ${path}`);
  const target = await s.call<string>((cb) => s.sftp.readlink(candidate, cb));
  return resolveOn(s, target.startsWith('/') ? target : posix.join(parent, target), links + 1);
}

/** The lstat of `path`, which must not be a symlink (it was resolved: one now was swapped in). */
async function plainEntry(s: Session, path: string): Promise<Stats> {
  const st = await lstat(s, path).catch((err: unknown) => {
    throw fileError(err, path);
  });
  if (st.isSymbolicLink()) throw new FileError(`${path}: is a symlink now (it was not when checked); not followed`);
  return st;
}

/** The server still resolves `path` to itself: no component became a symlink. */
async function unchanged(s: Session, path: string): Promise<void> {
  const real = await s.call<string>((cb) => s.sftp.realpath(path, cb)).catch(() => null);
  if (real !== path) throw new FileError(`${path}: changed after it was checked (a symlink on the way?); not followed`);
}

/** Makes the missing directories of `path` one by one; each must then be a directory, not a symlink. */
async function makeDirs(s: Session, path: string): Promise<void> {
  let here = '';
  for (const part of path.split('/').filter((p) => p !== '')) {
    here += `/${part}`;
    const st = await lstat(s, here).catch(() => null);
    if (st === null) await s.call((cb) => s.sftp.mkdir(here, cb)).catch(() => undefined);
    if (!(await plainEntry(s, here)).isDirectory()) throw new FileError(`${here}: not a directory`);
  }
}

/** Replaces `to` with `from` atomically (posix-rename@openssh.com); plain rename only where `to` is new. */
async function renameOver(s: Session, from: string, to: string, exists: boolean): Promise<void> {
  let posixRename = true;
  await s.call((cb) => {
    try {
      s.sftp.ext_openssh_rename(from, to, cb);
    } catch {
      // ssh2 throws when the server did not announce the extension.
      posixRename = false;
      cb(undefined);
    }
  });
  if (posixRename) return;
  if (exists) throw new FileError(`${to}: the server has no posix-rename@openssh.com, so the file cannot be replaced atomically; not written`);
  await s.call((cb) => s.sftp.rename(from, to, cb));
}

async function fsync(s: Session, handle: Buffer): Promise<void> {
  await s.call((cb) => {
    try {
      s.sftp.ext_openssh_fsync(handle, cb);
    } catch {
      cb(undefined); // no fsync@openssh.com: the rename still makes it all or nothing
    }
  });
}

function close(s: Session, handle: Buffer): Promise<void> {
  return s.call((cb) => s.sftp.close(handle, cb));
}

function lstat(s: Session, path: string): Promise<Stats> {
  return s.call<Stats>((cb) => s.sftp.lstat(path, cb));
}

/**
 * The file opened is the one lstat'ed before, as far as SFTP can tell (it has no inode numbers): type,
 * mode and owner agree. Size and mtime may differ (a log being appended to).
 */
function sameFile(a: Stats, b: Stats): boolean {
  return b.isFile() && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid;
}

/**
 * An SFTP session whose requests fail once it closes: ssh2 answers the requests pending when the
 * connection dies, but never calls back those sent after (a cleanup's close or unlink would hang).
 */
class Session {
  private closed = false;
  private readonly pending = new Set<(err: Error) => void>();

  constructor(readonly sftp: SFTPWrapper) {
    const gone = (): void => {
      this.closed = true;
      for (const fail of this.pending) fail(new Error('the SFTP session closed'));
      this.pending.clear();
    };
    sftp.once('close', gone);
    sftp.once('end', gone);
  }

  call<T = void>(fn: (cb: (err: Error | null | undefined, value: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('the SFTP session closed'));
      this.pending.add(reject);
      fn((err, value) => {
        this.pending.delete(reject);
        if (err) reject(err);
        else resolve(value);
      });
    });
  }
}

function code(err: unknown): number | undefined {
  const c = (err as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}

function fileError(err: unknown, path: string): FileError {
  switch (code(err)) {
    case NO_SUCH_FILE:
      return new FileError(`${path}: no such file or directory`);
    case PERMISSION_DENIED:
      return new FileError(`${path}: permission denied`);
    default:
      return new FileError(`${path}: ${(err as Error).message}`);
  }
}
