// Starts the CLI from its bundle (remux.cjs, built by scripts/bundle.mjs from main.ts) with a V8 code
// cache, so a cold process neither resolves and loads ~150 modules nor compiles again the functions an
// earlier run of the same command compiled: together about a third of a cold fan-out's CPU time.
//
// The cache is per command (`client`, `audit`, ...: each compiles different code) and per bundle and
// Node version (its name holds a hash of both), in $XDG_CACHE_HOME/remux (default ~/.cache/remux). A
// missing, unreadable or rejected cache only costs the compile; it is then written once, at exit, to a
// temporary file renamed into place, so concurrent runs never see a partial one, and the command's
// caches of other builds are removed then. V8 trusts what a cache holds, so one is read only from a
// directory and file that belong to this user and that nobody else can write (`sudo -E remux` must
// not run bytecode the invoking user left in their ~/.cache).
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

const bundle = fileURLToPath(new URL('./remux.cjs', import.meta.url));
const bytes = readFileSync(bundle);
const cache = codeCache(bytes, process.argv[2]);
const cacheFile = join(cache.dir, cache.file);
const cachedData = readOwnFile(cache.dir, cacheFile);

// The bundle is ASCII outside its comments (charset: 'ascii'): latin1 decodes it exactly, and fast.
// Strict, as the ES modules it was built from were (esbuild's CommonJS output does not say so).
const script = new Script(`(function (exports, require, module, __filename, __dirname) {'use strict';${bytes.toString('latin1')}\n})`, {
  filename: bundle,
  ...(cachedData ? { cachedData } : {}),
});
if (cachedData === undefined || script.cachedDataRejected === true) process.once('exit', () => writeCodeCache(script, cache));
const cjsModule = { exports: {} };
(script.runInThisContext() as (...args: unknown[]) => void)(cjsModule.exports, createRequire(bundle), cjsModule, bundle, dirname(bundle));

/** The file's bytes if it and its directory belong to this user and only this user can write them; else undefined. */
function readOwnFile(dir: string, file: string): Buffer | undefined {
  const uid = process.getuid?.();
  const own = (st: { uid: number; mode: number }): boolean => (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0;
  let fd: number | undefined;
  try {
    if (!own(statSync(dir))) return undefined;
    fd = openSync(file, 'r');
    return own(fstatSync(fd)) ? readFileSync(fd) : undefined;
  } catch {
    return undefined; // no cache yet, or none readable: compile, and write one at exit
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

interface CodeCache {
  dir: string;
  /** `<hash of Node version and bundle>-<command>.v8cache` */
  file: string;
  command: string;
}

function codeCache(source: Buffer, command: string | undefined): CodeCache {
  const key = createHash('sha256').update(`${process.version} ${process.arch}\0`).update(source).digest('hex').slice(0, 32);
  const name = command !== undefined && /^[a-z][a-z-]{0,31}$/.test(command) ? command : 'other';
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return { dir: join(base, 'remux'), file: `${key}-${name}.v8cache`, command: name };
}

/** After the run, so the cache also holds every function this command compiled on the way. */
function writeCodeCache(compiled: Script, cache: CodeCache): void {
  try {
    mkdirSync(cache.dir, { recursive: true, mode: 0o700 });
    const temp = join(cache.dir, `${cache.file}.${process.pid}.tmp`);
    writeFileSync(temp, compiled.createCachedData(), { mode: 0o600 });
    renameSync(temp, join(cache.dir, cache.file));
    // Earlier builds' caches of this command will never be read again.
    for (const old of readdirSync(cache.dir)) {
      if (old !== cache.file && old === `${old.slice(0, 32)}-${cache.command}.v8cache`) rmSync(join(cache.dir, old), { force: true });
    }
  } catch {
    // A read-only or full cache directory: the next run compiles again, nothing worse.
  }
}
