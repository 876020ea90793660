// One daemon per REMUX_HOME, whatever socket each start is given (two on one audit store would both watch
// the agent sessions and race for the console's port). The claim is an exclusive SQLite lock on
// $REMUX_HOME/run/daemon.lock (fcntl underneath): taken atomically, and dropped by the kernel when its
// holder ends, however it ends, so a crash (SIGKILL) never leaves a claim that blocks the next start and
// no stale claim is ever taken over (which is where pid-file schemes race). Beside it the holder keeps
// a record of itself (pid, home, socket, start time: config/daemon-record.ts) for the commands and clients that
// look for it and for the refusal.
import Database from 'better-sqlite3';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeAtomic } from '../config/atomic-file.js';
import { daemonLockFile, daemonRecordFile, remuxHome } from '../config/paths.js';
import { processStartId } from '../core/process.js';
import { realHome, runningDaemon, type DaemonRecord } from '../config/daemon-record.js';

export interface DaemonClaim {
  /** Removes the record and drops the lock (at stop; a crash drops the lock all the same). */
  release(): void;
}

/** How long a start that found the lock held waits for its holder's record (written right after taking it). */
const RECORD_WAIT_MS = 2000;

/** Claims REMUX_HOME for the daemon that will serve on SOCKET; throws, naming the daemon that has it. */
export async function claimDaemon(socket: string, env: NodeJS.ProcessEnv = process.env): Promise<DaemonClaim> {
  const lockFile = daemonLockFile(env);
  mkdirSync(dirname(lockFile), { recursive: true, mode: 0o700 });
  // timeout 0: a held lock is an answer now, not something to wait for.
  const db = new Database(lockFile, { timeout: 0 });
  try {
    chmodSync(lockFile, 0o600);
    // Kept open for the daemon's life: it writes nothing (no journal either), the lock is all it is for.
    db.pragma('journal_mode = MEMORY');
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if ((err as { code?: unknown }).code !== 'SQLITE_BUSY') throw err;
    throw new Error(await refusal(socket, env), { cause: err });
  }
  const record: DaemonRecord = { pid: process.pid, home: realHome(env) ?? remuxHome(env), socket, startedAt: new Date().toISOString(), process: processStartId(process.pid) };
  const recordFile = daemonRecordFile(env);
  try {
    writeAtomic(recordFile, `${JSON.stringify(record)}\n`);
  } catch (err) {
    db.close();
    throw err;
  }
  return {
    release: () => {
      // Ours while the lock is held: nobody else writes it meanwhile.
      rmSync(recordFile, { force: true });
      db.close();
    },
  };
}

async function refusal(socket: string, env: NodeJS.ProcessEnv): Promise<string> {
  let holder = runningDaemon(env);
  for (const deadline = Date.now() + RECORD_WAIT_MS; !holder && Date.now() < deadline; holder = runningDaemon(env)) await sleep(50);
  const home = remuxHome(env);
  if (!holder) return `a daemon of ${home} is already running or starting (it holds ${daemonLockFile(env)}); stop it with: remux daemon stop`;
  if (holder.socket === socket) return `a daemon is already running on ${socket} (pid ${holder.pid}); stop it with: remux daemon stop`;
  return `a daemon of ${home} is already running (pid ${holder.pid}) on ${holder.socket}, not on ${socket} (one daemon serves a REMUX_HOME): \`remux daemon restart\` moves it, or stop it with: remux daemon stop`;
}
