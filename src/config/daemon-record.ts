// The record the daemon of a REMUX_HOME keeps of itself while it holds the home (daemon-lock.ts), and
// what clients make of it: where that daemon serves when the socket named now (REMUX_SOCKET, config.yaml's
// daemon.socket) is another, changed while it ran. Apart from the lock so that a client reading it does
// not load SQLite.
import { lstatSync, realpathSync } from 'node:fs';
import { readPrivate } from './atomic-file.js';
import { daemonRecordFile, envFirst, remuxHome } from './paths.js';
import { sameProcessAlive } from '../core/process.js';

export interface DaemonRecord {
  pid: number;
  /** The REMUX_HOME it holds, its real path: a record copied or moved with a home names another home's daemon. */
  home: string;
  socket: string;
  startedAt: string;
  /** processStartId(pid) when it started: the same pid in a later process (pids are reused) is not it. */
  process: string | null;
}

/** A record is a line of JSON. */
const MAX_RECORD_BYTES = 64 << 10;

/** The real path of this REMUX_HOME, as a record names it; null when it does not exist. */
export function realHome(env: NodeJS.ProcessEnv = process.env): string | null {
  try {
    return realpathSync(remuxHome(env));
  } catch {
    return null;
  }
}

/**
 * The running daemon of this REMUX_HOME as its record names it; null when none runs (or has written it
 * yet). Only a record of this user's that nobody else may write (readPrivate), of this home, whose
 * process still runs, names one.
 */
export function runningDaemon(env: NodeJS.ProcessEnv = process.env): DaemonRecord | null {
  const record = readRecord(env);
  return record && running(record, env) ? record : null;
}

/** The record as written, if it is one of this user's that nobody else may write; whether it names a daemon that runs is running()'s question. */
function readRecord(env: NodeJS.ProcessEnv): DaemonRecord | null {
  let record: Partial<DaemonRecord>;
  try {
    record = JSON.parse(readPrivate(daemonRecordFile(env), MAX_RECORD_BYTES)) as Partial<DaemonRecord>;
  } catch {
    return null;
  }
  const { pid, home, socket, startedAt, process: started } = record;
  if (typeof pid !== 'number' || typeof home !== 'string' || typeof socket !== 'string' || typeof startedAt !== 'string') return null;
  return { pid, home, socket, startedAt, process: typeof started === 'string' ? started : null };
}

/** Whether RECORD names this home and a process that still runs: a killed daemon's names a pid that is gone, or that another program has now. */
function running(record: DaemonRecord, env: NodeJS.ProcessEnv): boolean {
  return record.home === realHome(env) && sameProcessAlive(record.pid, record.process);
}

/** Whether PATH is a socket of this user's: what a record leads a client to, never another user's daemon. */
export function ownSocket(path: string): boolean {
  try {
    const st = lstatSync(path);
    return st.isSocket() && st.uid === process.getuid!();
  } catch {
    return false;
  }
}

/**
 * What to say when the daemon runs on RUNNING while CONFIGURED is named now: by `flag` (--socket),
 * REMUX_SOCKET or config.yaml, and how to move it there.
 */
export function movedMessage(running: string, configured: string, env: NodeJS.ProcessEnv, flag?: string): string {
  const named = flag ? '--socket' : envFirst(env, 'REMUX_SOCKET', 'RPIPE_SOCKET') ? 'REMUX_SOCKET' : 'config.yaml';
  const restart = flag ? `remux daemon restart --socket ${configured}` : 'remux daemon restart';
  return `the daemon runs on ${running}; ${named} now says ${configured}: \`${restart}\` moves it`;
}

let warned = false;

/**
 * The socket a client of this REMUX_HOME finds its daemon on: CONFIGURED (REMUX_SOCKET, config.yaml, the
 * default), unless the home's daemon runs on a socket of this user's elsewhere (the socket was changed
 * while it ran: until `remux daemon restart` moves it, it serves there, and a client that looked only
 * at CONFIGURED would run everything in its own process). Then there, said once per process through
 * `warn` (left out where the output must stay quiet).
 */
export function clientSocket(configured: string, env: NodeJS.ProcessEnv, warn?: (line: string) => void): string {
  // Looked at in this order, a client of a daemon where it should be reads one small file, no more.
  const record = readRecord(env);
  if (!record || record.socket === configured || !running(record, env) || !ownSocket(record.socket)) return configured;
  if (warn && !warned) {
    warned = true;
    warn(movedMessage(record.socket, configured, env));
  }
  return record.socket;
}
