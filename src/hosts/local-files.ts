// File operations on the local host (HostFiles, see types.ts). The policy was checked against a path
// with every symlink resolved; here that exact path is opened and nothing else. Every open goes through
// a directory fd: the parent is opened with O_NOFOLLOW and /proc/self/fd tells which directory was
// really opened (a component swapped for a symlink after the check shows up as another path), then the
// file is opened relative to that fd (/proc/self/fd/N/name, Node has no openat) with O_NOFOLLOW. So
// the check-to-open race is closed: what is opened is what was checked, or the operation fails.
// No program runs here, so the OS sandbox does not apply: the policy check plus these opens are the
// enforcement.
import { randomBytes } from 'node:crypto';
import { constants, lstatSync } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, rename, unlink, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import type { PathResolver } from '../policy/types.js';
import { FileError, type DirEntry, type HostFiles } from './types.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK } = constants;

export function localFiles(resolver: PathResolver): HostFiles {
  return {
    resolve(paths) {
      return Promise.resolve(
        paths.map((path) => {
          let real: string;
          try {
            real = resolver.realpath(path, '/');
          } catch (err) {
            return { error: (err as Error).message };
          }
          let finalLink = false;
          try {
            finalLink = lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() ?? false;
          } catch {
            // realpath answered for the path; a component that is not a directory is no link.
          }
          return { real, finalLink };
        }),
      );
    },

    async read(path, { offset, length }) {
      return inParent(path, false, async (dir, name) => {
        // O_NONBLOCK: opening a FIFO must not hang (it is refused below as not a regular file).
        const file = await open(at(dir, name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK).catch((err: unknown) => {
          throw fileError(err, path);
        });
        try {
          const st = await file.stat();
          if (!st.isFile()) throw new FileError(`${path}: not a regular file`);
          const want = Math.max(0, Math.min(length, st.size - offset));
          const content = Buffer.alloc(want);
          let got = 0;
          while (got < want) {
            const { bytesRead } = await file.read(content, got, want - got, offset + got);
            if (bytesRead === 0) break;
            got += bytesRead;
          }
          return { content: content.subarray(0, got), size: st.size };
        } finally {
          await file.close();
        }
      });
    },

    async write(path, content, { createDirs }) {
      return inParent(path, createDirs, async (dir, name) => {
        const target = await lstat(at(dir, name)).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return null;
          throw fileError(err, path);
        });
        if (target?.isSymbolicLink()) throw new FileError(`${path}: is a symlink; a write never follows one`);
        if (target && !target.isFile()) throw new FileError(`${path}: not a regular file`);
        const temp = at(dir, `.remux-${randomBytes(8).toString('hex')}.tmp`);
        // Private until it has the old file's mode; a new file gets the usual 0666 less the umask.
        const file = await open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, target ? 0o600 : 0o666).catch((err: unknown) => {
          throw fileError(err, path);
        });
        let closed = false;
        let renamed = false;
        try {
          await file.writeFile(content);
          if (target) {
            await file.chmod(target.mode & 0o7777);
            // The owner is kept where we may change it (as root); otherwise the writer owns the new file.
            if (target.uid !== process.getuid?.() || target.gid !== process.getgid?.()) await file.chown(target.uid, target.gid).catch(() => undefined);
          }
          await file.sync();
          await file.close();
          closed = true;
          await rename(temp, at(dir, name));
          renamed = true;
          await dir.sync();
        } catch (err) {
          throw err instanceof FileError ? err : fileError(err, path);
        } finally {
          if (!closed) await file.close().catch(() => undefined);
          if (!renamed) await unlink(temp).catch(() => undefined);
        }
        return { created: target === null };
      });
    },

    async list(path, maxEntries) {
      const dir = await openDir(path);
      try {
        const names = (await readdir(`/proc/self/fd/${dir.fd}`).catch((err: unknown) => {
          throw fileError(err, path);
        })).sort();
        const entries: DirEntry[] = [];
        for (const name of names.slice(0, maxEntries)) {
          // An entry removed meanwhile is left out.
          const st = await lstat(at(dir, name)).catch(() => null);
          if (st) entries.push({ name, type: entryType(st), size: st.size, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs });
        }
        return { entries, truncated: names.length > maxEntries };
      } finally {
        await dir.close();
      }
    },
  };
}

/** Runs `use` with the parent directory of `path` open (made first with createDirs) and the final name. */
async function inParent<T>(path: string, createDirs: boolean, use: (dir: FileHandle, name: string) => Promise<T>): Promise<T> {
  const name = posix.basename(path);
  if (name === '' || name === '.' || name === '..') throw new FileError(`${path}: is a directory`);
  const parent = posix.dirname(path);
  const dir = createDirs ? await makeDirs(parent) : await openDir(parent);
  try {
    return await use(dir, name);
  } finally {
    await dir.close();
  }
}

/** The entry `name` of the open directory `dir`, as a path the kernel resolves through the fd. */
function at(dir: FileHandle, name: string): string {
  return `/proc/self/fd/${dir.fd}/${name}`;
}

/** Opens the directory `path` (symlink-free, absolute) and proves the directory opened is the one at that path. */
async function openDir(path: string): Promise<FileHandle> {
  const dir = await open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW).catch(async (err: unknown) => {
    // A file named where a directory was meant (`ls` of a file) is no swapped link: said as SFTP says it.
    const st = (err as NodeJS.ErrnoException).code === 'ENOTDIR' ? await lstat(path).catch(() => null) : null;
    if (st && !st.isSymbolicLink() && !st.isDirectory()) throw new FileError(`${path}: not a directory`);
    throw fileError(err, path);
  });
  const opened = await readlink(`/proc/self/fd/${dir.fd}`).catch(() => null);
  if (opened !== path) {
    await dir.close();
    // Without /proc the directory cannot be verified: refused, not trusted.
    if (opened === null) throw new FileError(`${path}: cannot verify the directory opened (/proc/self/fd is not readable); not used`);
    throw new FileError(`${path}: changed after it was checked (a symlink on the way?); not followed`);
  }
  return dir;
}

/** Opens `path` component by component from `/`, each with O_NOFOLLOW, making the missing ones. */
async function makeDirs(path: string): Promise<FileHandle> {
  let dir = await openDir('/');
  let here = '';
  try {
    for (const part of path.split('/').filter((p) => p !== '')) {
      here += `/${part}`;
      await mkdir(at(dir, part), 0o777).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw fileError(err, here);
      });
      const next = await open(at(dir, part), O_RDONLY | O_DIRECTORY | O_NOFOLLOW).catch((err: unknown) => {
        throw fileError(err, here);
      });
      await dir.close();
      dir = next;
    }
    return dir;
  } catch (err) {
    await dir.close().catch(() => undefined);
    throw err;
  }
}

function entryType(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): DirEntry['type'] {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFile()) return 'file';
  return st.isDirectory() ? 'directory' : 'other';
}

/** An errno from an open or lstat, in words naming the path the principal asked about. */
function fileError(err: unknown, path: string): FileError {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return new FileError(`${path}: no such file or directory`);
    case 'ELOOP':
      return new FileError(`${path}: is a symlink now (it was not when checked); not followed`);
    case 'ENOTDIR':
      return new FileError(`${path}: not a directory (or a component became a symlink); not followed`);
    case 'EISDIR':
      return new FileError(`${path}: is a directory`);
    case 'EACCES':
    case 'EPERM':
      return new FileError(`${path}: permission denied`);
    default:
      return new FileError(`${path}: ${(err as Error).message}`);
  }
}
