// Starts the CLI from its bundle (remux.cjs, built by scripts/bundle.mjs from main.ts) with a V8 code
// cache, so a cold process neither resolves and loads ~150 modules nor compiles again the functions an
// earlier run of the same command compiled: together about a third of a cold fan-out's CPU time. This
// file is CommonJS (.cts) so that Node, started on it by the native launcher, never sets up its ES
// module loader (~5 ms).
//
// The cache is per command (`client`, `audit`, ...: each compiles different code) and per bundle and
// Node version (its name holds a hash of both), in $XDG_CACHE_HOME/remux (default ~/.cache/remux). A
// missing, unreadable or rejected cache only costs the compile; it is then written once, at exit, to a
// temporary file renamed into place, so concurrent runs never see a partial one, and the command's
// caches of other builds are removed then. V8 trusts what a cache holds, so one is read only from a
// directory and file that belong to this user and that nobody else can write (`sudo -E remux` must
// not run bytecode the invoking user left in their ~/.cache).
import crypto = require('node:crypto');
import fs = require('node:fs');
import nodeModule = require('node:module');
import os = require('node:os');
import path = require('node:path');
import vm = require('node:vm');

closeInheritedDescriptors();
const bundle = path.join(__dirname, 'remux.cjs');
const bytes = fs.readFileSync(bundle);
const cache = codeCache(bytes, process.argv[2]);
const cacheFile = path.join(cache.dir, cache.file);
const cachedData = readOwnFile(cache.dir, cacheFile);

// The bundle is ASCII outside its comments (charset: 'ascii'): latin1 decodes it exactly, and fast.
// Strict, as the ES modules it was built from were (esbuild's CommonJS output does not say so).
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {'use strict';${bytes.toString('latin1')}\n})`, {
  filename: bundle,
  ...(cachedData ? { cachedData } : {}),
});
if (cachedData === undefined || script.cachedDataRejected === true) process.once('exit', () => writeCodeCache(script, cache));
const cjsModule = { exports: {} };
(script.runInThisContext() as (...args: unknown[]) => void)(cjsModule.exports, nodeModule.createRequire(bundle), cjsModule, bundle, path.dirname(bundle));

/** The file's bytes if it and its directory belong to this user and only this user can write them; else undefined. */
function readOwnFile(dir: string, file: string): Buffer | undefined {
  const uid = process.getuid?.();
  const own = (st: { uid: number; mode: number }): boolean => (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0;
  let fd: number | undefined;
  try {
    if (!own(fs.statSync(dir))) return undefined;
    fd = fs.openSync(file, 'r');
    return own(fs.fstatSync(fd)) ? fs.readFileSync(fd) : undefined;
  } catch {
    return undefined; // no cache yet, or none readable: compile, and write one at exit
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

interface CodeCache {
  dir: string;
  /** `<hash of Node version and bundle>-<command>.v8cache` */
  file: string;
  command: string;
}

function codeCache(source: Buffer, command: string | undefined): CodeCache {
  const key = crypto.createHash('sha256').update(`${process.version} ${process.arch}\0`).update(source).digest('hex').slice(0, 32);
  // `__complete` (what shell completion runs at every Tab) has its own too.
  const name = command !== undefined && /^(?:__)?[a-z][a-z-]{0,31}$/.test(command) ? command : 'other';
  // As codeCacheDir (config/paths.ts), which keeps it out of every command's reach.
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return { dir: path.join(base, 'remux'), file: `${key}-${name}.v8cache`, command: name };
}

/** After the run, so the cache also holds every function this command compiled on the way. */
function writeCodeCache(compiled: vm.Script, cache: CodeCache): void {
  try {
    fs.mkdirSync(cache.dir, { recursive: true, mode: 0o700 });
    const temp = path.join(cache.dir, `${cache.file}.${process.pid}.tmp`);
    fs.writeFileSync(temp, compiled.createCachedData(), { mode: 0o600 });
    fs.renameSync(temp, path.join(cache.dir, cache.file));
    // Earlier builds' caches of this command will never be read again.
    for (const old of fs.readdirSync(cache.dir)) {
      if (old !== cache.file && old === `${old.slice(0, 32)}-${cache.command}.v8cache`) fs.rmSync(path.join(cache.dir, old), { force: true });
    }
  } catch {
    // A read-only or full cache directory: the next run compiles again, nothing worse.
  }
}

/**
 * Closes what whoever started this process left open to it without close-on-exec (a shell's `40<secret`,
 * a supervisor's stray), but stdio and Node's IPC channel. remux never uses such a descriptor, and every
 * process it starts would inherit it: bwrap hands all it has to the sandbox's first process, where any
 * command inside reads it as /proc/2/fd/N. Only now, before anything is loaded: later, descriptors without
 * close-on-exec are remux's own (node-pty's terminals).
 */
function closeInheritedDescriptors(): void {
  const channel = Number(process.env.NODE_CHANNEL_FD ?? -1);
  let fds: string[];
  try {
    fds = fs.readdirSync('/proc/self/fdinfo');
  } catch {
    return; // no procfs
  }
  for (const name of fds) {
    const fd = Number(name);
    if (fd <= 2 || fd === channel) continue;
    try {
      const flags = /^flags:\s+([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'))?.[1];
      // O_CLOEXEC as fdinfo shows it (02000000 on every architecture remux builds for).
      if (flags !== undefined && (parseInt(flags, 8) & 0o2000000) === 0) fs.closeSync(fd);
    } catch {
      // Closed meanwhile (the directory's own descriptor, among others).
    }
  }
}
