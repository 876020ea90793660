// The web console's browser sessions across a graceful stop (`remux daemon restart`, `stop` + `start`,
// SIGTERM): the stopping daemon writes the live ones to $REMUX_HOME/run/browser-sessions.json (0600,
// atomically), the next reads it once, removes it and takes back what is still valid (SessionStore.takeBack).
// A crash leaves nothing: its browsers log in again. As the agent prompts' hand-over (agents/daemon-watch.ts),
// a file that is not what a stopping daemon of this REMUX_HOME writes is ignored, with a log line.
//
// The file holds what the daemon's memory held: each session under the SHA-256 of its cookie (never the
// cookie: the file lets no one in), its principal, the token hash it was opened with, CSRF token, expiry.
import { rmSync } from 'node:fs';
import { readPrivate, writeAtomic } from '../../config/atomic-file.js';
import type { HandedSession } from './auth.js';

/** What this version writes and reads; a file of another format is ignored (its browsers log in again). */
const FORMAT = 1;
/** Far above SESSION_LIMITS.total sessions' worth (~250 bytes each). */
const MAX_BYTES = 16 << 20;

export interface SessionHandover {
  /** When it was written, by the stopping daemon's clock. */
  writtenAt: number;
  sessions: HandedSession[];
}

/** Leaves `sessions` in `file` for the next daemon of REMUX_HOME `home`. */
export function leaveSessions(file: string, home: string, sessions: readonly HandedSession[]): void {
  writeAtomic(file, `${JSON.stringify({ format: FORMAT, home, writtenAt: Date.now(), sessions })}\n`);
}

/**
 * What the daemon before this one left in `file`, which is removed (taken once), or null: none left, or
 * not usable (a link, another owner's or a file others may read or write, malformed, another home's or
 * format's), which `log` says.
 */
export function takeSessions(file: string, home: string, log: (line: string) => void): SessionHandover | null {
  const ignored = (why: string): null => {
    log(`browser sessions: ${file} ${why}: ignored, removed; the browsers of the daemon before log in again`);
    return null;
  };
  let text: string;
  try {
    text = readPrivate(file, MAX_BYTES);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    remove(file);
    return ignored(code === 'ELOOP' ? 'is a symbolic link, not followed' : (err as Error).message);
  }
  remove(file);
  let left: unknown;
  try {
    left = JSON.parse(text);
  } catch (err) {
    return ignored(`is not what a stopping daemon writes (${(err as Error).message})`);
  }
  const f = (typeof left === 'object' && left !== null ? left : {}) as Record<string, unknown>;
  if (f.format !== FORMAT) return ignored(`is of another remux's format (${JSON.stringify(f.format ?? null)}, this one reads ${FORMAT})`);
  if (f.home !== home) return ignored(`was left by the daemon of another REMUX_HOME (${JSON.stringify(f.home ?? null)})`);
  const sessions = Array.isArray(f.sessions) ? f.sessions.map(session) : null;
  if (typeof f.writtenAt !== 'number' || !Number.isFinite(f.writtenAt) || !sessions || sessions.includes(null)) return ignored('is not what a stopping daemon writes');
  return { writtenAt: f.writtenAt, sessions: sessions as HandedSession[] };
}

function remove(file: string): void {
  try {
    rmSync(file, { force: true });
  } catch {
    // A directory in its place: nothing to take from it.
  }
}

/** One session, only the fields a session has, or null when anything is missing or of another shape. */
function session(x: unknown): HandedSession | null {
  const s = (typeof x === 'object' && x !== null ? x : {}) as Record<string, unknown>;
  const { key, principal, tokenSha256, csrfToken, expiresAt } = s;
  if (typeof key !== 'string' || !/^[0-9a-f]{64}$/.test(key)) return null;
  if (typeof principal !== 'string' || typeof tokenSha256 !== 'string' || typeof csrfToken !== 'string' || csrfToken === '') return null;
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) return null;
  return { key, principal, tokenSha256, csrfToken, expiresAt };
}
