// Who is asking over HTTP: a bearer token (scripts) or a browser session cookie, and the checks that
// make a cookie safe to accept: the Origin of POSTs and WebSocket upgrades, a CSRF token on every
// state-changing request, failed logins slowed then locked out per address, and what a change of the
// principals file revokes at once (browser sessions, open WebSockets, requests still being answered).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { WebSocket } from 'ws';
import { authenticate, hashToken, type PrincipalEntry, type Principals } from '../../config/principals.js';
import { MAX_TIMER_MS } from '../../core/timers.js';
import { RateLimiter } from '../../hosts/rate-limit.js';
import { clientKey } from '../relay/network.js';
import { CLOSE } from '../terminal.js';

export const SESSION_COOKIE = '__Host-remux_session';
export const CSRF_HEADER = 'x-csrf-token';

export interface BrowserSession {
  principal: string;
  /** The principal's token hash at login: a rotated or removed token ends the session. */
  tokenSha256: string;
  csrfToken: string;
  expiresAt: number;
}

/** A session as a stopping daemon hands it to the next: keyed by the SHA-256 of its cookie, never the cookie. */
export interface HandedSession extends BrowserSession {
  key: string;
}

/** Browser sessions kept at most: per principal, and in the daemon. */
export const SESSION_LIMITS = { perPrincipal: 100, total: 10_000 } as const;

/**
 * Server-side sessions: the cookie holds only a random id, so logout and expiry really end a session.
 *
 * A login costs what it ends, not what the daemon holds: each principal's sessions are indexed too, oldest
 * first, and expiry is pruned from the front. Sessions expire in the order they were made (each lives
 * the same ttlMs from the clock's now, and takeBack() keeps the order it was handed); after the clock is
 * set back a newer one may expire before an older one: find() refuses it, and it goes once it reaches the front.
 */
export class SessionStore {
  /** Keyed by the SHA-256 of the cookie value, so the map's lookups never compare secrets directly; oldest first (Map keeps insertion order). */
  private readonly sessions = new Map<string, BrowserSession>();
  /** The same sessions by principal, oldest first; a principal with none has no entry. */
  private readonly byPrincipal = new Map<string, Map<string, BrowserSession>>();

  /** `ended` hears of each session that ends before it expires, and why: what is open under it closes then. */
  constructor(
    private readonly ttlMs: number,
    private readonly limits: { perPrincipal: number; total: number } = SESSION_LIMITS,
    private readonly ended: (session: BrowserSession, why: string) => void = () => undefined,
  ) {}

  create(entry: PrincipalEntry): { cookie: string; session: BrowserSession } {
    this.prune();
    // Bounded, the oldest going first. A principal's logins push out its own sessions before the total
    // is reached: a script logging in over and over (any principal, read-only included) cannot end everyone else's.
    const mine = this.byPrincipal.get(entry.name) ?? new Map<string, BrowserSession>();
    for (const k of mine.keys()) {
      if (mine.size < this.limits.perPrincipal) break;
      this.end(k, `a newer login of ${entry.name} replaced this browser session (${this.limits.perPrincipal} at most)`);
    }
    while (this.sessions.size >= this.limits.total) this.end(this.sessions.keys().next().value!, `the daemon holds ${this.limits.total} browser sessions at most`);
    const cookie = randomBytes(32).toString('base64url');
    const session: BrowserSession = {
      principal: entry.name,
      tokenSha256: entry.tokenSha256,
      csrfToken: randomBytes(32).toString('base64url'),
      expiresAt: Date.now() + this.ttlMs,
    };
    this.add(key(cookie), session);
    return { cookie, session };
  }

  /** The live session for a cookie and its principal as configured now, or null. */
  find(cookie: string, principals: Principals): { session: BrowserSession; entry: PrincipalEntry } | null {
    const k = key(cookie);
    const session = this.sessions.get(k);
    if (!session) return null;
    const entry = principals.entries.find((e) => e.name === session.principal);
    if (session.expiresAt <= Date.now() || !entry || entry.tokenSha256 !== session.tokenSha256) {
      this.forget(k);
      return null;
    }
    return { session, entry };
  }

  delete(cookie: string, why: string): void {
    this.end(key(cookie), why);
  }

  private end(k: string, why: string): void {
    const session = this.forget(k);
    if (session) this.ended(session, why);
  }

  /** Forgets the sessions of removed principals and rotated tokens now (find() refuses them anyway). */
  dropRevoked(principals: Principals): void {
    for (const [k, s] of this.sessions) {
      const entry = principals.entries.find((e) => e.name === s.principal);
      if (!entry || entry.tokenSha256 !== s.tokenSha256) this.forget(k);
    }
  }

  /** The live sessions, oldest first: what a stopping daemon leaves to the next (session-handover.ts). */
  handOver(): HandedSession[] {
    const now = Date.now();
    return [...this.sessions].filter(([, s]) => s.expiresAt > now).map(([k, s]) => ({ key: k, ...s }));
  }

  /**
   * Takes back the sessions a daemon before this one handed over at `writtenAt` (by its clock), before
   * any login here: those still live, whose principal has the token it had at login, within the limits
   * (the newest kept). None outlives this daemon's lifetime of a new one; a clock set back since then
   * (written "later" than now) counts no time as passed, so a session gets only what it had left.
   */
  takeBack(handed: readonly HandedSession[], writtenAt: number, principals: Principals): { taken: number; expired: number; revoked: number; overLimit: number } {
    const now = Date.now();
    const behind = Math.max(0, writtenAt - now);
    const counts = { taken: 0, expired: 0, revoked: 0, overLimit: 0 };
    const live: HandedSession[] = [];
    for (const s of handed) {
      const expiresAt = Math.min(s.expiresAt - behind, now + this.ttlMs);
      const entry = principals.entries.find((e) => e.name === s.principal);
      if (expiresAt <= now) counts.expired++;
      else if (!entry || entry.tokenSha256 !== s.tokenSha256) counts.revoked++;
      else live.push({ ...s, expiresAt });
    }
    // Newest first, as create() would have kept them.
    const perPrincipal = new Map<string, number>();
    const kept = live.reverse().filter((s) => {
      const n = (perPrincipal.get(s.principal) ?? 0) + 1;
      perPrincipal.set(s.principal, n);
      return n <= this.limits.perPrincipal;
    });
    for (const { key: k, principal, tokenSha256, csrfToken, expiresAt } of kept.slice(0, this.limits.total).reverse()) {
      this.add(k, { principal, tokenSha256, csrfToken, expiresAt });
    }
    counts.taken = Math.min(kept.length, this.limits.total);
    counts.overLimit = live.length - counts.taken;
    return counts;
  }

  /** The expired sessions at the front: no more are looked at than go. */
  private prune(): void {
    const now = Date.now();
    for (const [k, s] of this.sessions) {
      if (s.expiresAt > now) return;
      this.forget(k);
    }
  }

  /** Every session goes in and out through add() and forget(): the index never names one the store has not. */
  private add(k: string, session: BrowserSession): void {
    this.forget(k);
    this.sessions.set(k, session);
    const mine = this.byPrincipal.get(session.principal) ?? new Map<string, BrowserSession>();
    this.byPrincipal.set(session.principal, mine);
    mine.set(k, session);
  }

  private forget(k: string): BrowserSession | undefined {
    const session = this.sessions.get(k);
    if (!session) return undefined;
    this.sessions.delete(k);
    const mine = this.byPrincipal.get(session.principal)!;
    mine.delete(k);
    if (mine.size === 0) this.byPrincipal.delete(session.principal);
    return session;
  }
}

/**
 * Why a connection authenticated as `entry` may no longer go on under `now` (the principals file as it
 * is, or the error that makes it unreadable), or null. A changed scope ends it too: what it was allowed
 * to open was decided under the old scope, and reconnecting decides again.
 */
export function revocation(entry: PrincipalEntry, now: Principals | Error): { code: number; reason: string } | null {
  if (now instanceof Error) return { code: CLOSE.unauthenticated, reason: 'the principals file is invalid; see remux daemon status' };
  const current = now.entries.find((e) => e.name === entry.name);
  if (!current) return { code: CLOSE.unauthenticated, reason: `principal ${entry.name} was removed` };
  if (current.tokenSha256 !== entry.tokenSha256) return { code: CLOSE.unauthenticated, reason: `the token of ${entry.name} was rotated` };
  if (JSON.stringify(current.scope) !== JSON.stringify(entry.scope)) return { code: CLOSE.forbidden, reason: `the scope of ${entry.name} changed; reconnect` };
  return null;
}

/** Grace for a revoked WebSocket's closing handshake before its connection is cut. */
const REVOKE_GRACE_MS = 1000;

const SESSION_EXPIRED = 'the browser session expired; log in again';

type Revocation = NonNullable<ReturnType<typeof revocation>>;

interface Tracked {
  entry: PrincipalEntry;
  session: BrowserSession | null;
  end(why: Revocation): void;
  /** Ends it when its browser session expires. */
  expiry: NodeJS.Timeout | null;
}

/**
 * What is still going on under a credential (an open WebSocket, an HTTP request still being answered:
 * a streaming run), so that a revoked one ends at once rather than when it finishes.
 */
export class LiveCredentials {
  private readonly live = new Map<object, Tracked>();
  /** Sessions ended, and why: a WebSocket authenticated by one just before it ended is closed once it opens. */
  private readonly endedSessions = new WeakMap<BrowserSession, string>();

  /** `current` reads the principals file as it is now (or the error that makes it unreadable). */
  constructor(private readonly current: () => Principals | Error) {}

  /**
   * Tracks `key` until untrack(); one whose credential was revoked since it was checked ends at once.
   * With `session` (the browser session it was authenticated by) it ends with that session too: at its
   * logout, the browser's next login, and its expiry.
   */
  track(key: object, entry: PrincipalEntry, end: (why: Revocation) => void, session: BrowserSession | null = null): void {
    this.live.set(key, { entry, session, end, expiry: session && this.expireWith(key, session) });
    const ended = session && this.endedSessions.get(session);
    if (ended) this.endSession(session, ended);
    else this.endIfRevoked(key, this.current());
  }

  untrack(key: object): void {
    this.release(key);
  }

  /** A WebSocket, closed with the code and reason; nothing more is read from it, and a peer that does not answer the close is cut. */
  trackSocket(ws: WebSocket, entry: PrincipalEntry, session: BrowserSession | null): void {
    ws.once('close', () => this.untrack(ws));
    this.track(
      ws,
      entry,
      (why) => {
        ws.close(why.code, why.reason);
        ws.pause();
        setTimeout(() => ws.terminate(), REVOKE_GRACE_MS).unref();
      },
      session,
    );
  }

  /** A browser session ended (logout, a new login): what was opened with it closes, saying why. */
  endSession(session: BrowserSession, why: string): void {
    this.endedSessions.set(session, why);
    for (const [key, tracked] of [...this.live]) if (tracked.session === session) this.finish(key, { code: CLOSE.unauthenticated, reason: why });
  }

  /** Ends everything whose credential `now` no longer accepts as it was; returns how many. */
  revoke(now: Principals | Error): number {
    let ended = 0;
    for (const key of [...this.live.keys()]) if (this.endIfRevoked(key, now)) ended++;
    return ended;
  }

  private endIfRevoked(key: object, now: Principals | Error): boolean {
    const tracked = this.live.get(key);
    const why = tracked && revocation(tracked.entry, now);
    if (!tracked || !why) return false;
    this.finish(key, why);
    return true;
  }

  /** A session's lifetime (http.session_hours) is its end too: what was opened with it does not outlive it. */
  private expireWith(key: object, session: BrowserSession): NodeJS.Timeout {
    const timer = setTimeout(
      () => {
        const tracked = this.live.get(key);
        if (!tracked) return;
        if (session.expiresAt > Date.now()) tracked.expiry = this.expireWith(key, session);
        else this.finish(key, { code: CLOSE.unauthenticated, reason: SESSION_EXPIRED });
      },
      Math.min(MAX_TIMER_MS, Math.max(0, session.expiresAt - Date.now())),
    );
    timer.unref();
    return timer;
  }

  private finish(key: object, why: Revocation): void {
    this.release(key)?.end(why);
  }

  private release(key: object): Tracked | undefined {
    const tracked = this.live.get(key);
    if (!tracked) return undefined;
    this.live.delete(key);
    if (tracked.expiry) clearTimeout(tracked.expiry);
    return tracked;
  }
}

function key(cookie: string): string {
  return createHash('sha256').update(cookie).digest('hex');
}

export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface GuardOptions {
  /** Failures after which each attempt waits: delayStepMs × (failures − slowAfter + 1). */
  slowAfter: number;
  delayStepMs: number;
  /** Failures that lock the address out for lockMs; a new token's success clears the count. */
  lockAfter: number;
  lockMs: number;
  /** Addresses remembered at most (the oldest forgotten first): memory stays bounded under a spray. */
  maxAddresses: number;
  /** A token accepted from an address passes its lockouts for this long after its last success. */
  knownMs: number;
  /** Tokens remembered per address, and addresses with any: bounded by the clients that hold a token. */
  knownPerAddress: number;
  maxKnownAddresses: number;
}

const DEFAULT_GUARD: GuardOptions = { slowAfter: 3, delayStepMs: 250, lockAfter: 5, lockMs: 15 * 60_000, maxAddresses: 10_000, knownMs: 24 * 3600_000, knownPerAddress: 8, maxKnownAddresses: 4096 };

/** An address's failed token checks as a stopping daemon hands them to the next (times by its clock). */
export interface HandedFailures {
  address: string;
  count: number;
  /** 0 while the address is not locked out: a streak of failures. */
  lockedUntil: number;
  lastAt: number;
}

/** The login guard's state across a graceful stop (LoginGuard.handOver), least recently used first. */
export interface HandedLogins {
  failures: HandedFailures[];
  /** The SHA-256 of each token accepted from an address, and when it last was. */
  known: { address: string; tokens: { sha256: string; at: number }[] }[];
}

/** An attempt let through: the caller reports how the check ended (a failure is counted already, but a known token's). */
type Attempt = { locked: true; retryAfterMs: number } | { locked: false; delayMs: number; succeeded(): void; failed(): void };

/**
 * Failed token checks per client address, an IPv6 one by its /64 (logins and bearer tokens alike). An attempt counts as a
 * failure from the moment it starts, so parallel guesses cannot all slip in before the first is counted.
 *
 * An address is often shared (a NAT, an office, a VPN exit): one client guessing there must not lock out
 * the others. A token accepted from an address is known there for knownMs: it passes the address's
 * lockout and its delays, and counts as nothing. A guesser gains nothing from that (a known token is a
 * right one), and the others' traffic does not wipe the guesser's count either (only a token's first
 * success there does, a mistyped login's usual end). Clients that were not in before the lockout wait it out.
 */
export class LoginGuard {
  private readonly failures = new Map<string, { count: number; lockedUntil: number; lastAt: number }>();
  /** Per address: the SHA-256 of each token accepted from it, and when it was last. */
  private readonly known = new Map<string, Map<string, number>>();

  constructor(private readonly opts: GuardOptions = DEFAULT_GUARD) {}

  /**
   * What still counts, least recently used first: what a stopping daemon leaves to the next
   * (session-handover.ts), so that a restart gives a locked-out address no new guesses.
   *
   * The tokens known at each address go too. That is safe: only a token accepted from the address is
   * there, under its SHA-256 (as principals.yaml and agents' tokens keep it), and what it passes it
   * passed before the stop; one rotated or removed meanwhile is refused and forgotten at its first use,
   * as it would have been in this daemon. Left behind, the clients of a shared address (a NAT, an
   * office) would wait out the lockout a guesser among them earned, which they passed before the restart.
   */
  handOver(): HandedLogins {
    const now = Date.now();
    const failures = [...this.failures]
      .filter(([, f]) => (f.lockedUntil === 0 ? now - f.lastAt <= this.opts.lockMs : f.lockedUntil > now))
      .map(([address, f]) => ({ address, ...f }));
    const known = [...this.known]
      .map(([address, tokens]) => ({ address, tokens: [...tokens].filter(([, at]) => now - at <= this.opts.knownMs).map(([sha256, at]) => ({ sha256, at })) }))
      .filter((k) => k.tokens.length > 0);
    return { failures, known };
  }

  /**
   * Takes back what the daemon before this one handed over at `writtenAt` (by its clock), before any
   * attempt here, within this guard's limits (the most recent kept). A clock set back since (written
   * "later" than now) counts no time as passed: a lockout ends no earlier than it would have, and none
   * ends later than lockMs from now (nor does a streak or a known token last longer than it had left).
   */
  takeBack(handed: HandedLogins, writtenAt: number): { locked: number; streaks: number; knownAt: number; expired: number } {
    const now = Date.now();
    const behind = Math.max(0, writtenAt - now);
    const counts = { locked: 0, streaks: 0, knownAt: 0, expired: 0 };
    for (const f of handed.failures.slice(-this.opts.maxAddresses)) {
      const lastAt = Math.min(f.lastAt - behind, now);
      const lockedUntil = f.lockedUntil === 0 ? 0 : Math.min(f.lockedUntil - behind, now + this.opts.lockMs);
      if (lockedUntil === 0 ? now - lastAt > this.opts.lockMs : lockedUntil <= now) {
        counts.expired++;
        continue;
      }
      this.failures.delete(f.address);
      this.failures.set(f.address, { count: Math.min(f.count, this.opts.lockAfter), lockedUntil, lastAt });
      counts[lockedUntil === 0 ? 'streaks' : 'locked']++;
    }
    for (const k of handed.known.slice(-this.opts.maxKnownAddresses)) {
      const tokens = new Map<string, number>();
      for (const t of k.tokens.slice(-this.opts.knownPerAddress)) {
        const at = Math.min(t.at - behind, now);
        if (now - at > this.opts.knownMs) continue;
        tokens.delete(t.sha256);
        tokens.set(t.sha256, at);
      }
      if (tokens.size === 0) continue;
      this.known.delete(k.address);
      this.known.set(k.address, tokens);
      counts.knownAt++;
    }
    return counts;
  }

  attempt(peer: string, token: string): Attempt {
    const address = clientKey(peer);
    const now = Date.now();
    const digest = hashToken(token);
    const lastKnown = this.known.get(address)?.get(digest);
    if (lastKnown !== undefined && now - lastKnown <= this.opts.knownMs) {
      // Refused now (rotated, removed): known no more, so a script that goes on with it is counted like a guesser.
      return { locked: false, delayMs: 0, succeeded: () => this.remember(address, digest), failed: () => void this.known.get(address)?.delete(digest) };
    }
    let f = this.failures.get(address);
    if (f && f.lockedUntil > now) return { locked: true, retryAfterMs: f.lockedUntil - now };
    if (f && (f.lockedUntil !== 0 || now - f.lastAt > this.opts.lockMs)) f = undefined; // a served lockout or an old streak starts over
    if (!f) {
      while (this.failures.size >= this.opts.maxAddresses) this.failures.delete(this.failures.keys().next().value!);
      f = { count: 0, lockedUntil: 0, lastAt: now };
    }
    this.failures.delete(address);
    this.failures.set(address, f);
    const before = f.count;
    f.count++;
    f.lastAt = now;
    if (f.count >= this.opts.lockAfter) f.lockedUntil = now + this.opts.lockMs;
    const delayMs = before >= this.opts.slowAfter ? this.opts.delayStepMs * (before - this.opts.slowAfter + 1) : 0;
    return {
      locked: false,
      delayMs,
      succeeded: () => {
        this.failures.delete(address);
        this.remember(address, digest);
      },
      failed: () => {},
    };
  }

  /** Most recently used last, in both maps: the oldest is forgotten first. */
  private remember(address: string, digest: string): void {
    const tokens = this.known.get(address) ?? new Map<string, number>();
    this.known.delete(address);
    while (this.known.size >= this.opts.maxKnownAddresses) this.known.delete(this.known.keys().next().value!);
    this.known.set(address, tokens);
    tokens.delete(digest);
    while (tokens.size >= this.opts.knownPerAddress) tokens.delete(tokens.keys().next().value!);
    tokens.set(digest, Date.now());
  }
}

/**
 * Successful browser logins allowed at once, then so many a minute: a principal's, from anywhere; an
 * address's, of any principals (more: a shared address, NAT or a proxy, carries many people).
 */
export const LOGIN_RATE = { principal: { burst: 10, perMinute: 1 }, address: { burst: 30, perMinute: 10 } } as const;

/**
 * Successful browser logins per principal and per client address. Each writes an audit row (and its
 * logout another): a script holding a valid token filled the audit store. The principal's limit keeps
 * the rows bounded however many addresses it comes from; the address's keeps one client from running
 * through the limits of every principal it holds a token of.
 */
export class LoginRate {
  private readonly byPrincipal = limiter(LOGIN_RATE.principal);
  private readonly byAddress = limiter(LOGIN_RATE.address);

  /**
   * null when the login may go on (one taken from both limits), else how long until the next one may.
   * A refused login takes from neither: a token past its own principal's limit, asking on, would
   * otherwise keep its address's empty and every other principal at that address out.
   */
  take(address: string, principal: string): number | null {
    const limits = [[this.byAddress, clientKey(address)], [this.byPrincipal, principal]] as const;
    const wait = Math.max(...limits.map(([bucket, key]) => bucket.waitMs(key)));
    if (wait > 0) return wait;
    for (const [bucket, key] of limits) bucket.take(key);
    return null;
  }
}

function limiter(rate: { burst: number; perMinute: number }): RateLimiter {
  return new RateLimiter({ ratePerSec: rate.perMinute / 60, burst: rate.burst });
}

/** Checks a token with the guard: the principal, or why not (`locked` carries the wait). */
export async function checkToken(
  guard: LoginGuard,
  address: string,
  token: string,
  principals: Principals,
): Promise<{ entry: PrincipalEntry } | { locked: number } | { bad: true }> {
  const attempt = guard.attempt(address, token);
  if (attempt.locked) return { locked: attempt.retryAfterMs };
  if (attempt.delayMs > 0) await new Promise((r) => setTimeout(r, attempt.delayMs));
  const entry = authenticate(principals, token);
  if (!entry) {
    attempt.failed();
    return { bad: true };
  }
  attempt.succeeded();
  return { entry };
}

/** Bearer token from an Authorization header, or null when there is none (a malformed header is an empty token). */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const m = /^Bearer +(\S+) *$/i.exec(header);
  return m ? m[1]! : '';
}
