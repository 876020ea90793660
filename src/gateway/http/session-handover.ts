// The web console's browser sessions and login lockouts across a graceful stop (`remux daemon restart`,
// `stop` + `start`, SIGTERM): the stopping daemon writes what still counts to $REMUX_HOME/run/browser-sessions.json
// (0600, atomically), the next reads it once, removes it and takes back what is still valid
// (SessionStore.takeBack, LoginGuard.takeBack). A crash leaves nothing: its browsers log in again, and
// its lockouts start over. As the agent prompts' hand-over (agents/daemon-watch.ts), a file that is not
// what a stopping daemon of this REMUX_HOME writes is ignored, with a log line.
//
// The file holds what the daemon's memory held: each session under the SHA-256 of its cookie (never the
// cookie: the file lets no one in), its principal, the token hash it was opened with, CSRF token, expiry;
// and each client address's failed token checks and the SHA-256 of the tokens accepted from it.
import { rmSync } from 'node:fs';
import { readPrivate, writeAtomic } from '../../config/atomic-file.js';
import type { HandedFailures, HandedLogins, HandedSession } from './auth.js';

/**
 * What this version writes: 2 added the login guard's state (`logins`). It reads 1 too (sessions only,
 * as the remux before wrote); a file of another format is ignored (its browsers log in again).
 */
const FORMAT = 2;
const READS = [1, 2];
/** Far above the limits' worth: SESSION_LIMITS.total sessions (~250 bytes each), the guard's addresses and known tokens (~100 bytes each). */
const MAX_BYTES = 16 << 20;

export interface SessionHandover {
  /** When it was written, by the stopping daemon's clock. */
  writtenAt: number;
  sessions: HandedSession[];
  /** None from a file of format 1. */
  logins: HandedLogins;
}

/** Leaves what `left` holds in `file` for the next daemon of REMUX_HOME `home`. */
export function leaveHandover(file: string, home: string, left: Omit<SessionHandover, 'writtenAt'>): void {
  writeAtomic(file, `${JSON.stringify({ format: FORMAT, home, writtenAt: Date.now(), sessions: left.sessions, logins: left.logins })}\n`);
}

/**
 * What the daemon before this one left in `file`, which is removed (taken once), or null: none left, or
 * not usable (a link, another owner's or a file others may read or write, malformed, another home's or
 * format's), which `log` says.
 */
export function takeHandover(file: string, home: string, log: (line: string) => void): SessionHandover | null {
  const ignored = (why: string): null => {
    log(`browser sessions: ${file} ${why}: ignored, removed; the browsers of the daemon before log in again, and its login lockouts start over`);
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
  const f = record(left);
  if (!READS.includes(f.format as number)) return ignored(`is of another remux's format (${JSON.stringify(f.format ?? null)}, this one reads ${READS.join(' and ')})`);
  if (f.home !== home) return ignored(`was left by the daemon of another REMUX_HOME (${JSON.stringify(f.home ?? null)})`);
  const sessions = Array.isArray(f.sessions) ? f.sessions.map(session) : null;
  const loginState = f.format === 1 ? { failures: [], known: [] } : logins(f.logins);
  if (!finite(f.writtenAt) || !sessions || sessions.includes(null) || !loginState) return ignored('is not what a stopping daemon writes');
  return { writtenAt: f.writtenAt, sessions: sessions as HandedSession[], logins: loginState };
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
  const { key, principal, tokenSha256, csrfToken, expiresAt } = record(x);
  if (!sha256(key)) return null;
  if (typeof principal !== 'string' || typeof tokenSha256 !== 'string' || typeof csrfToken !== 'string' || csrfToken === '') return null;
  if (!finite(expiresAt)) return null;
  return { key, principal, tokenSha256, csrfToken, expiresAt };
}

/** The login guard's state, only the fields it has, or null when anything is missing or of another shape. */
function logins(x: unknown): HandedLogins | null {
  const { failures, known } = record(x);
  if (!Array.isArray(failures) || !Array.isArray(known)) return null;
  const f = failures.map(failure);
  const k = known.map(knownAt);
  if (f.includes(null) || k.includes(null)) return null;
  return { failures: f as HandedFailures[], known: k as HandedLogins['known'] };
}

function failure(x: unknown): HandedFailures | null {
  const { address, count, lockedUntil, lastAt } = record(x);
  if (!clientAddress(address) || !Number.isSafeInteger(count) || (count as number) < 1 || !finite(lockedUntil) || !finite(lastAt)) return null;
  return { address, count: count as number, lockedUntil, lastAt };
}

function knownAt(x: unknown): HandedLogins['known'][number] | null {
  const { address, tokens } = record(x);
  if (!clientAddress(address) || !Array.isArray(tokens)) return null;
  const t = tokens.map((y) => {
    const { sha256: digest, at } = record(y);
    return sha256(digest) && finite(at) ? { sha256: digest, at } : null;
  });
  return t.includes(null) ? null : { address, tokens: t as { sha256: string; at: number }[] };
}

function record(x: unknown): Record<string, unknown> {
  return (typeof x === 'object' && x !== null ? x : {}) as Record<string, unknown>;
}

function finite(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

function sha256(x: unknown): x is string {
  return typeof x === 'string' && /^[0-9a-f]{64}$/.test(x);
}

/** What LoginGuard keys an address by (relay/network.ts clientKey): an address, a /64, an IPv4 one marked NAT64. */
function clientAddress(x: unknown): x is string {
  return typeof x === 'string' && x.length > 0 && x.length <= 100;
}
