// Approvals: a question put to a human (a policy `ask`, an agent's permission prompt) and its one answer.
//
// Each approval is a row in its own SQLite file (approvals.db, WAL), so an answer survives a daemon
// restart and a used link stays used. A decision link carries, for one option, the full-length
// HMAC-SHA256 of (approval id, option, expiry) under a key kept in $REMUX_HOME (0600): it cannot be
// forged, moved to another approval or option, or stretched past its expiry. Answering is one
// conditional UPDATE (`… WHERE status = 'pending'`): the first answer wins, and every other option's
// link — its siblings — stops working with it. No answer by the deadline is `expired`, never an allow.
//
// Each row names the process that waits for its answer (pid, and what tells it from a later process given
// that pid), which marks it alive while it waits: one that ended without settling its questions (a crash)
// left questions nobody would hear the answer to, which the daemon withdraws as it starts and while it
// runs (orphans()). An asker of another boot (another machine sharing this REMUX_HOME, or this one before
// it restarted) is judged by those marks alone: its pid means nothing here.
import { createHmac, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { EventEmitter } from 'node:events';
import Database from 'better-sqlite3';
import { redactText } from '../audit/redact.js';
import { bootId, bootOf, processStartId, sameProcessAlive } from '../core/process.js';
import { useWal } from '../core/sqlite.js';
import { sameSecret } from '../gateway/http/auth.js';
import { howClosed } from './closed.js';

/** One way to answer: "approve", "deny", or an agent prompt's own choices ("1", "2", …). */
export interface ApprovalOption {
  id: string;
  label: string;
  /** What choosing it means for the caller that waits: only `allow` lets an action run. */
  effect: 'allow' | 'deny';
}

export const APPROVE_DENY: readonly ApprovalOption[] = [
  { id: 'approve', label: 'Approve', effect: 'allow' },
  { id: 'deny', label: 'Deny', effect: 'deny' },
];

export type ApprovalStatus = 'pending' | 'answered' | 'expired' | 'cancelled';

export interface ApprovalRequest {
  /** Who asked (the principal whose action waits). */
  principal: string;
  host: string | null;
  /** What would happen, in one line: "run `rm -r /tmp/x` on web1". */
  what: string;
  /** Why it needs a human: the policy rule, or the agent's own prompt text. */
  reason: string;
  /**
   * What asked, as programs tell it apart: "policy:NAME", "agent:claude" (a Claude Code hook's
   * PermissionRequest, which the watcher matches on), the watcher's "the screen of agent session …".
   */
  source: string;
  /** Where it came from, for a person (the console's "From", messages): `source` unless told. */
  from?: string;
  options?: readonly ApprovalOption[];
  /** How long the answer may take. */
  ttlMs: number;
}

/**
 * What an asker hands the approvals service: the request, and for its messages (not stored) where to
 * attach and what an expiry leaves behind (default: nothing was done on its behalf).
 */
export type AskRequest = Omit<ApprovalRequest, 'ttlMs'> & { attach?: string; whenExpired?: string };

export interface Approval {
  id: string;
  createdAt: number;
  expiresAt: number;
  principal: string;
  host: string | null;
  what: string;
  reason: string;
  source: string;
  /** Where it came from, for a person: "Claude Code in agent session NAME (ID)" where `source` is agent:claude. */
  from: string;
  options: ApprovalOption[];
  status: ApprovalStatus;
  /** The chosen option's id, once answered. */
  answer: string | null;
  answeredBy: string | null;
  answeredVia: string | null;
  answeredAt: number | null;
  /** The notification channels its decision links were sent to: who may hold them. */
  sentTo: string[];
  /** Why it was withdrawn, when remux said (cancelled: its asker stopped); null otherwise. */
  why: string | null;
}

/** An open approval whose asker ended without settling it: nobody hears its answer. */
export interface Orphan {
  approval: Approval;
  /** The asker in words ("the daemon", "remux (pid 4242)"). */
  asker: string;
  /** Its pid, where it ran. */
  pid: number;
  /**
   * When the asker was last seen alive (ms). One of this boot ended within HEARTBEAT_MS after; one of
   * another boot (`otherBoot`) was not heard from for STALE_MS since, which is all that can be told.
   */
  seen: number;
  otherBoot: boolean;
}

/**
 * The reason to abort a wait with (ApprovalStore.wait) when another process takes the approval over (the
 * next daemon, after a restart): this one stops waiting, and the approval stays open.
 */
export const HANDED_OVER = Symbol('approval handed over');

/**
 * The reason to abort a wait with when its asker gives up on the question (a hook interrupted or killed):
 * the approval ends cancelled with `why`, which `approvals ls --all`, the console and the phone show.
 */
export class Withdrawal {
  constructor(readonly why: string) {}
}

/** How an approval ended, as its waiting caller sees it. */
export type ApprovalOutcome = { status: 'answered'; option: ApprovalOption; by: string; via: string } | { status: 'expired' | 'cancelled' };

/** Who answered and through what ("cli", "web", "link", "ntfy"). */
export interface Answerer {
  by: string;
  via: string;
}

export class ApprovalError extends Error {
  constructor(
    message: string,
    /** not_found → 404, conflict (answered/expired) → 409, forbidden (bad token) → 403, invalid → 400 */
    readonly code: 'not_found' | 'conflict' | 'forbidden' | 'invalid',
  ) {
    super(message);
    this.name = 'ApprovalError';
  }
}

interface Row {
  id: string;
  created_at: number;
  expires_at: number;
  principal: string;
  host: string | null;
  what: string;
  reason: string;
  source: string;
  from_text: string | null;
  options: string;
  status: ApprovalStatus;
  answer: string | null;
  answered_by: string | null;
  answered_via: string | null;
  answered_at: number | null;
  sent_to: string | null;
  why: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS approvals (
  id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  principal TEXT NOT NULL,
  host TEXT,
  what TEXT NOT NULL,
  reason TEXT NOT NULL,
  source TEXT NOT NULL,
  options TEXT NOT NULL,
  status TEXT NOT NULL,
  answer TEXT,
  answered_by TEXT,
  answered_via TEXT,
  answered_at INTEGER,
  sent_to TEXT,
  from_text TEXT,
  asker TEXT,
  asker_pid INTEGER,
  asker_start TEXT,
  asker_seen INTEGER,
  why TEXT
);
CREATE INDEX IF NOT EXISTS approvals_by_status ON approvals (status, expires_at);
`;

/** Answered and expired approvals are kept this long after their expiry (listing, audit links), then purged. */
const KEEP_AFTER_EXPIRY_MS = 7 * 24 * 3600_000;
const MAX_TTL_MS = 7 * 24 * 3600_000;
const OPTION_ID = /^[A-Za-z0-9_-]{1,32}$/;
/** How often a process that waits for answers marks its open questions as still waited for. */
export const HEARTBEAT_MS = 30_000;
/** An asker of another boot unheard of this long has ended: three marks missed, room for a slow disk or clock skew. */
export const STALE_MS = 3 * HEARTBEAT_MS;

export interface ApprovalStoreOptions {
  now?: () => number;
}

export class ApprovalStore {
  private readonly now: () => number;
  private readonly events = new EventEmitter();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** This process, as its rows name their asker. */
  private readonly self = { pid: process.pid, start: processStartId(process.pid) };
  private waiters = 0;
  private heartbeat: NodeJS.Timeout | undefined = undefined;

  private constructor(
    private readonly db: Database.Database,
    private readonly key: Buffer,
    options: ApprovalStoreOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.events.setMaxListeners(0);
  }

  /** Opens (creating when absent) the store and its link key. */
  static open(dbFile: string, keyFile: string, options: ApprovalStoreOptions = {}): ApprovalStore {
    mkdirSync(dirname(dbFile), { recursive: true, mode: 0o700 });
    if (!existsSync(dbFile)) closeSync(openSync(dbFile, 'a', 0o600));
    const db = new Database(dbFile, { timeout: 5_000 });
    useWal(db, 5_000);
    db.exec(SCHEMA);
    addColumn(db, 'sent_to TEXT');
    addColumn(db, 'from_text TEXT');
    for (const column of ['asker TEXT', 'asker_pid INTEGER', 'asker_start TEXT', 'asker_seen INTEGER', 'why TEXT']) addColumn(db, column);
    return new ApprovalStore(db, linkKey(keyFile), options);
  }

  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    clearInterval(this.heartbeat);
    this.db.close();
  }

  /** A new pending approval, asked by this process (`asker`: it in words, for the reason it may be withdrawn with). */
  create(request: ApprovalRequest, asker = `remux (pid ${process.pid})`): Approval {
    const options = [...(request.options ?? APPROVE_DENY)];
    if (options.length === 0 || options.some((o) => !OPTION_ID.test(o.id)) || new Set(options.map((o) => o.id)).size !== options.length) {
      throw new ApprovalError('approval options need distinct ids of 1-32 letters, digits, _ or -', 'invalid');
    }
    if (!(request.ttlMs > 0 && request.ttlMs <= MAX_TTL_MS)) throw new ApprovalError(`an approval lives between 1 ms and 7 days, not ${request.ttlMs} ms`, 'invalid');
    const created = this.now();
    const approval: Approval = {
      // 128 random bits in hex: never starts with "-", so `remux approvals approve ID` never reads it as an option.
      id: randomBytes(16).toString('hex'),
      createdAt: created,
      expiresAt: created + request.ttlMs,
      principal: request.principal,
      host: request.host,
      // Its page and `approvals ls` show these to whoever holds a link, which went through push services:
      // secrets redacted as in the audit trail, whoever asked (a prompt read off an agent's screen too).
      what: redactText(request.what),
      reason: redactText(request.reason),
      source: request.source,
      from: redactText(request.from ?? request.source),
      options,
      status: 'pending',
      answer: null,
      answeredBy: null,
      answeredVia: null,
      answeredAt: null,
      sentTo: [],
      why: null,
    };
    this.db
      .prepare(
        `INSERT INTO approvals (id, created_at, expires_at, principal, host, what, reason, source, from_text, options, status, asker, asker_pid, asker_start, asker_seen)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)`,
      )
      .run(approval.id, approval.createdAt, approval.expiresAt, approval.principal, approval.host, approval.what, approval.reason, approval.source, approval.from, JSON.stringify(options), asker, this.self.pid, this.self.start, created);
    this.scheduleExpiry(approval.id, approval.expiresAt);
    return approval;
  }

  get(id: string): Approval | null {
    this.expireDue();
    const row = this.db.prepare<[string], Row>('SELECT * FROM approvals WHERE id = ?').get(id);
    return row ? fromRow(row) : null;
  }

  /** Newest first; `pending` only unless `all`. */
  list({ all = false, limit = 100 }: { all?: boolean; limit?: number } = {}): Approval[] {
    this.expireDue();
    const sql = `SELECT * FROM approvals ${all ? '' : "WHERE status = 'pending'"} ORDER BY created_at DESC LIMIT ?`;
    return this.db.prepare<[number], Row>(sql).all(limit).map(fromRow);
  }

  /** The token a decision link carries for `option` of approval `id`. */
  token(approval: Pick<Approval, 'id' | 'expiresAt'>, option: string): string {
    return createHmac('sha256', this.key).update(`remux-approval\0${approval.id}\0${option}\0${approval.expiresAt}`).digest('base64url');
  }

  /** Whether `token` is the one issued for `option` of `approval` (constant time). */
  verifies(approval: Pick<Approval, 'id' | 'expiresAt'>, option: string, token: string): boolean {
    return sameSecret(token, this.token(approval, option));
  }

  /** Records the channels approval `id`'s decision links go to (before they are sent: a link may be used at once). */
  sentThrough(id: string, channels: readonly string[]): void {
    this.db.prepare('UPDATE approvals SET sent_to = ? WHERE id = ?').run(JSON.stringify(channels), id);
  }

  /**
   * Answers through a decision link: the token must be the one issued for this approval and option.
   * Whoever holds a link answers, never the asker: the answer is by "link", naming where it was sent.
   */
  answerWithToken(id: string, option: string, token: string, via: string): Approval {
    const approval = this.get(id);
    // Same refusal for an unknown id and a bad token: a link prober learns nothing.
    if (approval === null || !this.verifies(approval, option, token)) throw new ApprovalError('this decision link is not valid', 'forbidden');
    return this.answer(id, option, { by: approval.sentTo.length > 0 ? `link (sent to ${approval.sentTo.join(', ')})` : 'link', via });
  }

  /** Answers as an authenticated principal (CLI, console); the caller checked they may. */
  answer(id: string, option: string, who: Answerer): Approval {
    const approval = this.get(id);
    if (approval === null) throw new ApprovalError(`no approval ${id}`, 'not_found');
    const chosen = approval.options.find((o) => o.id === option);
    if (!chosen) throw new ApprovalError(`approval ${id} has no option "${option}" (options: ${approval.options.map((o) => o.id).join(', ')})`, 'invalid');
    const at = this.now();
    const changed = this.db
      .prepare(
        `UPDATE approvals SET status = 'answered', answer = ?, answered_by = ?, answered_via = ?, answered_at = ?
         WHERE id = ? AND status = 'pending' AND expires_at > ?`,
      )
      .run(option, who.by, who.via, at, id, at).changes;
    if (changed === 0) {
      const now = this.get(id) as Approval;
      throw new ApprovalError(`approval ${id} is no longer open: ${now.status === 'answered' ? 'already ' : ''}${howClosed(now)}`, 'conflict');
    }
    this.settle(id, { status: 'answered', option: chosen, by: who.by, via: who.via });
    return this.get(id) as Approval;
  }

  /** Withdraws an approval nobody answered yet (its caller went away), saying `why` where known. False: it was no longer open. */
  cancel(id: string, why: string | null = null): boolean {
    const changed = this.db.prepare("UPDATE approvals SET status = 'cancelled', why = ? WHERE id = ? AND status = 'pending'").run(why, id).changes;
    if (changed > 0) this.settle(id, { status: 'cancelled' });
    return changed > 0;
  }

  /** This process waits for approval `id` from now on (taken over from the daemon before): not an orphan. */
  claim(id: string, asker: string): void {
    this.db.prepare("UPDATE approvals SET asker = ?, asker_pid = ?, asker_start = ?, asker_seen = ? WHERE id = ? AND status = 'pending'").run(asker, this.self.pid, this.self.start, this.now(), id);
  }

  /**
   * The open approvals whose asker no longer runs: nobody hears their answer. An asker of this boot is
   * looked up by pid and start; one of another boot, whose pid names nothing here, runs while it marks
   * its questions (within STALE_MS). Rows of a remux that kept no asker are left to expire.
   */
  orphans(): Orphan[] {
    this.expireDue();
    const rows = this.db.prepare<[], Row & { asker: string | null; asker_pid: number; asker_start: string | null; asker_seen: number | null }>("SELECT * FROM approvals WHERE status = 'pending' AND asker_pid IS NOT NULL").all();
    const boot = bootId();
    const now = this.now();
    return rows.flatMap((r) => {
      const seen = r.asker_seen ?? r.created_at;
      const otherBoot = r.asker_start !== null && bootOf(r.asker_start) !== boot;
      const alive = otherBoot ? now - seen < STALE_MS : sameProcessAlive(r.asker_pid, r.asker_start);
      return alive ? [] : [{ approval: fromRow(r), asker: r.asker ?? `remux (pid ${r.asker_pid})`, pid: r.asker_pid, seen, otherBoot }];
    });
  }

  /**
   * Resolves once the approval is answered, expires, or is cancelled. Answers given in this process
   * arrive at once; an answer written by another process sharing the file is seen within `pollMs`.
   * An aborted signal cancels the approval (one no longer open: resolves with how it ended), with the
   * reason's `why` when it is a Withdrawal; aborted with reason HANDED_OVER, it stops the wait instead,
   * which then never resolves, and leaves the approval open.
   */
  wait(id: string, signal?: AbortSignal, pollMs = 500): Promise<ApprovalOutcome> {
    return new Promise((resolve) => {
      let poll: NodeJS.Timeout | undefined = undefined;
      let over = false;
      const stop = (): void => {
        if (!over) this.waiting(-1);
        over = true;
        clearInterval(poll);
        this.events.off(id, finish);
        signal?.removeEventListener('abort', onAbort);
      };
      const finish = (outcome: ApprovalOutcome): void => {
        stop();
        resolve(outcome);
      };
      const onAbort = (): void => {
        if (signal?.reason === HANDED_OVER) stop();
        else this.cancel(id, signal?.reason instanceof Withdrawal ? signal.reason.why : null);
      };
      const check = (): void => {
        const approval = this.get(id);
        const outcome = approval ? outcomeOf(approval) : { status: 'cancelled' as const };
        if (outcome) finish(outcome);
      };
      this.events.on(id, finish);
      this.waiting(+1);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) onAbort();
      if (over) return;
      // Not unref'd: a caller waiting for an answer keeps its process alive until it comes.
      poll = setInterval(check, pollMs);
      check();
    });
  }

  /**
   * Counts this process's waits; while there are any, its open approvals are marked as waited for every
   * HEARTBEAT_MS (asker_seen, set at create and claim too), which dates a crash — the one who withdraws
   * its orphans says when it was — and is all that tells a daemon of another boot that this one still runs.
   */
  private waiting(change: 1 | -1): void {
    this.waiters += change;
    if (this.waiters === 0) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    } else if (this.heartbeat === undefined) {
      const mark = this.db.prepare("UPDATE approvals SET asker_seen = ? WHERE status = 'pending' AND asker_pid = ? AND asker_start IS ?");
      this.heartbeat = setInterval(() => {
        try {
          mark.run(this.now(), this.self.pid, this.self.start);
        } catch {
          // The file busy past its busy timeout: a missed mark is made up by the next (STALE_MS allows two).
        }
      }, HEARTBEAT_MS);
      this.heartbeat.unref();
    }
  }

  private settle(id: string, outcome: ApprovalOutcome): void {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    this.events.emit(id, outcome);
  }

  private scheduleExpiry(id: string, expiresAt: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(id);
      // Timers run on the monotonic clock and may fire a millisecond before the wall clock reaches
      // expiresAt: then this approval is not due yet, and without a new timer its waiter would hang.
      if (this.now() < expiresAt) return this.scheduleExpiry(id, expiresAt);
      this.expireDue();
    }, Math.max(0, expiresAt - this.now()));
    timer.unref();
    this.timers.set(id, timer);
  }

  /** Marks overdue pending approvals expired (telling their waiters) and purges long-closed ones. */
  private expireDue(): void {
    const now = this.now();
    const due = this.db.prepare<[number], { id: string }>("SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= ?").all(now);
    if (due.length > 0) {
      this.db.prepare("UPDATE approvals SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?").run(now);
      for (const { id } of due) this.settle(id, { status: 'expired' });
    }
    this.db.prepare("DELETE FROM approvals WHERE status != 'pending' AND expires_at <= ?").run(now - KEEP_AFTER_EXPIRY_MS);
  }
}

function outcomeOf(approval: Approval): ApprovalOutcome | null {
  if (approval.status === 'pending') return null;
  if (approval.status !== 'answered') return { status: approval.status };
  const option = approval.options.find((o) => o.id === approval.answer) as ApprovalOption;
  return { status: 'answered', option, by: approval.answeredBy ?? '?', via: approval.answeredVia ?? '?' };
}

function fromRow(row: Row): Approval {
  return {
    id: row.id,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    principal: row.principal,
    host: row.host,
    what: row.what,
    reason: row.reason,
    source: row.source,
    // Asked by a remux that kept no such words: its source is all there is.
    from: row.from_text ?? row.source,
    options: JSON.parse(row.options) as ApprovalOption[],
    status: row.status,
    answer: row.answer,
    answeredBy: row.answered_by,
    answeredVia: row.answered_via,
    answeredAt: row.answered_at,
    sentTo: row.sent_to === null ? [] : (JSON.parse(row.sent_to) as string[]),
    why: row.why,
  };
}

/** Adds a column a file made by an older remux lacks (two processes may race to: one finds it added). */
function addColumn(db: Database.Database, column: string): void {
  const name = column.split(' ')[0] as string;
  if (db.prepare<[], { name: string }>('PRAGMA table_info(approvals)').all().some((c) => c.name === name)) return;
  try {
    db.exec(`ALTER TABLE approvals ADD COLUMN ${column}`);
  } catch (err) {
    if (!/duplicate column/i.test((err as Error).message)) throw err;
  }
}

/** The HMAC key of decision links: 32 random bytes, created once (0600, never overwritten). */
function linkKey(file: string): Buffer {
  try {
    writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length < 32) throw new ApprovalError(`${file} holds no usable key (32 bytes, base64); remove it to have a new one made (open links stop working)`, 'invalid');
  return key;
}
