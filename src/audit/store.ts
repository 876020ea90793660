// The audit store: an append-only, hash-chained SQLite table (WAL), safe for several processes.
//
// Every action is two rows, never an UPDATE: `begin` (committed before anything runs) and `end`.
// An action's id is its begin row's seq. Each row carries the hash of the row before it:
//
//   hash = sha256hex(prev_hash + JSON.stringify(row))
//
// where `row` holds the HASHED_COLUMNS in that order with null columns left out (so a column added by
// a later migration does not change the hashes of older rows), and the first row's prev_hash is
// GENESIS_HASH. exportJsonl() writes exactly that object plus prev_hash and hash, so an external
// verifier hashes each line with those two keys removed.
//
// verify() detects an edited, deleted, inserted or reordered row. Rows removed from the *end* leave a
// valid shorter chain: only a head recorded elsewhere (head(), verify(anchor)) can reveal that.
//
// Writes are group-committed. begin(), end() and record() queue their rows and return a promise; a
// flush scheduled with setImmediate writes everything queued by then in ONE `BEGIN IMMEDIATE`
// transaction (the chain head read once under the write lock, the rows chained in queue order), commits
// it, fsyncs the WAL, and only then settles the begins' promises. So a begin's promise resolves once its
// row is durable, and a 20-host fan-out costs one or two commits instead of forty. An end's promise
// resolves once its row is committed, and the row reaches the disk with the next begin's fsync, or
// END_SYNC_DELAY_MS after its commit when no begin comes. A process crash loses nothing committed; an
// OS crash or power cut within that moment can lose end rows only, and the store then shows their actions
// as begun with no outcome (never an action that ran without its begin). So an action costs one fsync,
// not two, and what it returns goes back to its caller without waiting for the disk — nor for the end's
// commit: perform's callers queue the end and go on (auditAction), the flush in the same turn of the event
// loop writes it, and a reader in the process or an exit writes what is queued first; only a crash within
// that turn loses the end, as a power cut would. The fsync is ours, not
// SQLite's: the connection runs synchronous=NORMAL (in WAL mode: no fsync at commit, the WAL synced
// before each checkpoint) and every commit is followed by an fsync of the WAL file — what
// synchronous=FULL does. While the disk answers fast, that fsync runs inline: a trip through libuv's
// thread pool and back cost 0.2 ms more than the fsync itself here (two cross-thread wake-ups on a VM),
// a begin+end 0.53 -> 0.32 ms. When the recent inline fsyncs average more than inlineSyncMaxMs, or one
// takes INLINE_SYNC_STALL times that, the next ones go to the thread pool for a while (1 s, twice as long
// each time it happens again within INLINE_SYNC_PAUSE_MS, at most that), so a slow or busy disk does not
// hold the event loop, and one slow moment (a daemon starting beside a busy disk) no longer costs 30 s (a cold fan-out's SSH handshakes go on meanwhile; a
// daemon keeps serving). A few slow ones among fast ones (a WAL still growing, the journal committing:
// 1-4 ms here, against 0.1 ms usually) do not.
// If the transaction fails (lock timeout, I/O error), nothing of that batch is written and every one of
// its promises rejects. An end for an unknown or already ended action rejects on its own (its row is
// not written) and does not affect the rest of its batch.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsync, fsyncSync, mkdirSync, openSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { useWal } from '../core/sqlite.js';
import { beginLevel, endLevel, levelsShown } from './level.js';
import { redactArgv, redactText } from './redact.js';
import type {
  AuditAction,
  AuditApproval,
  AuditBegin,
  AuditDecision,
  AuditEnd,
  AuditFilter,
  AuditLevel,
  AuditPage,
  ChainHead,
  Durability,
  FollowOptions,
  ListOptions,
  OpenOptions,
  VerifyResult,
} from './types.js';

export const GENESIS_HASH = '0'.repeat(64);

/** Rows read per step of following. */
const CHANGES_BATCH = 500;

/** Hashed columns, in hash order. New columns go at the end. */
export const HASHED_COLUMNS = [
  'seq',
  'action_id',
  'kind',
  'ts',
  'level',
  'principal',
  'host',
  'operation',
  'argv',
  'command',
  'resource',
  'policy',
  'rule',
  'decision',
  'reason',
  'exit_code',
  'signal',
  'duration_ms',
  'bytes_out',
  'bytes_err',
  'truncated',
  'timed_out',
  'error',
  'recording',
  'approval',
] as const;

type Column = (typeof HASHED_COLUMNS)[number];
type RowFields = Record<Column, string | number | null>;
type Row = RowFields & { prev_hash: string; hash: string };

/** 'RMXA': marks the file as a remux audit store. */
const APPLICATION_ID = 0x524d5841;

/** MIGRATIONS[i] takes the schema from user_version i to i + 1. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE audit (
     seq         INTEGER PRIMARY KEY,
     action_id   INTEGER NOT NULL,  -- seq of the action's begin row
     kind        TEXT NOT NULL CHECK (kind IN ('begin', 'end')),
     ts          TEXT NOT NULL,     -- ISO 8601 UTC with milliseconds
     level       TEXT NOT NULL CHECK (level IN ('info', 'warn', 'error', 'deny')),
     principal   TEXT,              -- begin columns
     host        TEXT,
     operation   TEXT,
     argv        TEXT,              -- JSON array, redacted
     command     TEXT,              -- redacted
     resource    TEXT,
     policy      TEXT,
     rule        TEXT,
     decision    TEXT CHECK (decision IN ('allow', 'deny', 'ask')),
     reason      TEXT,              -- begin: why the decision; end: why an ask was refused
     exit_code   INTEGER,           -- end columns
     signal      TEXT,
     duration_ms INTEGER,
     bytes_out   INTEGER,
     bytes_err   INTEGER,
     truncated   INTEGER,
     timed_out   INTEGER,
     error       TEXT,
     prev_hash   TEXT NOT NULL,
     hash        TEXT NOT NULL
   ) STRICT;
   CREATE UNIQUE INDEX audit_end_once ON audit (action_id) WHERE kind = 'end';
   -- Guards against our own mistakes, not against an attacker (who can drop these): verify() is the check.
   CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
   CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;`,
  // v2: the recording an action wrote (an attach, a session recording). Hashed like every column: older
  // rows hold null there, which the hash leaves out, so their hashes and the chain stay as they were.
  `ALTER TABLE audit ADD COLUMN recording TEXT;  -- begin: recording id (asciicast in $REMUX_HOME/recordings)`,
  // v3: how an ask was answered (who, through what), on the end row; hashed, and null before, as v2's column.
  `ALTER TABLE audit ADD COLUMN approval TEXT;  -- end: JSON {outcome, by, via, id} (AuditApproval)`,
  // v4: `audit ls --host`/`--principal` (and a scoped principal's view, always by principal) read only the
  // matching rows, not every row down to the limit (the whole table for a host with none). Every index ends
  // with the rowid (seq), so `= ? ORDER BY seq DESC LIMIT n` walks one back from the end. Begin rows only:
  // list() asks for kind = 'begin', and an end row's insert touches neither index.
  `CREATE INDEX audit_host ON audit (host) WHERE kind = 'begin';
   CREATE INDEX audit_principal ON audit (principal) WHERE kind = 'begin';`,
];

export class AuditStoreError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AuditStoreError';
  }
}

export function hashRow(prevHash: string, row: RowFields): string {
  return createHash('sha256').update(prevHash).update(JSON.stringify(canonical(row))).digest('hex');
}

function canonical(row: RowFields): Partial<RowFields> {
  const out: Partial<RowFields> = {};
  for (const c of HASHED_COLUMNS) if (row[c] !== null) out[c] = row[c];
  return out;
}

/** Lone surrogates become U+FFFD on their way into SQLite; hash what will be read back. */
function wellFormed(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

function text(s: string | null | undefined): string | null {
  return s === null || s === undefined ? null : wellFormed(s);
}

function secretText(s: string | null | undefined): string | null {
  return s === null || s === undefined ? null : redactText(wellFormed(s));
}

function int(n: number | null | undefined): number | null {
  return n === null || n === undefined ? null : Math.round(n);
}

function flag(b: boolean | undefined): number | null {
  return b === undefined ? null : b ? 1 : 0;
}

const EMPTY_ROW: Omit<RowFields, 'seq' | 'action_id' | 'kind' | 'ts' | 'level'> = {
  principal: null,
  host: null,
  operation: null,
  argv: null,
  command: null,
  resource: null,
  policy: null,
  rule: null,
  decision: null,
  reason: null,
  exit_code: null,
  signal: null,
  duration_ms: null,
  bytes_out: null,
  bytes_err: null,
  truncated: null,
  timed_out: null,
  error: null,
  recording: null,
  approval: null,
};

/** A row as queued: `ts` is stamped when it is written (under the write lock), `level` of an end then too. */
type BeginFields = Omit<RowFields, 'seq' | 'action_id' | 'ts'>;
type EndFields = Omit<RowFields, 'seq' | 'action_id' | 'ts' | 'level'>;

function beginRow(rec: AuditBegin): BeginFields {
  return {
    ...EMPTY_ROW,
    kind: 'begin',
    level: beginLevel(rec.decision),
    principal: wellFormed(rec.principal),
    host: wellFormed(rec.host),
    operation: wellFormed(rec.operation),
    argv: rec.argv ? JSON.stringify(redactArgv(rec.argv.map(wellFormed))) : null,
    command: secretText(rec.command),
    resource: secretText(rec.resource),
    policy: text(rec.policy),
    rule: text(rec.rule),
    decision: rec.decision,
    reason: secretText(rec.reason),
    recording: text(rec.recording),
  };
}

function endRow(rec: AuditEnd): EndFields {
  return {
    ...EMPTY_ROW,
    kind: 'end',
    reason: secretText(rec.refusal),
    exit_code: int(rec.exitCode),
    signal: text(rec.signal),
    duration_ms: int(rec.durationMs),
    bytes_out: int(rec.bytesOut),
    bytes_err: int(rec.bytesErr),
    truncated: flag(rec.truncated),
    timed_out: flag(rec.timedOut),
    error: secretText(rec.error),
    approval: rec.approval ? JSON.stringify(rec.approval) : null,
  };
}

const END_COLUMNS = [
  'seq',
  'ts',
  'level',
  'reason',
  'exit_code',
  'signal',
  'duration_ms',
  'bytes_out',
  'bytes_err',
  'truncated',
  'timed_out',
  'error',
  'approval',
] as const;

const SELECT_ACTIONS = `SELECT b.*, ${END_COLUMNS.map((c) => `e.${c} AS e_${c}`).join(', ')}
  FROM audit b LEFT JOIN audit e ON e.action_id = b.seq AND e.kind = 'end'
  WHERE b.kind = 'begin'`;

type JoinedRow = Row & { [K in (typeof END_COLUMNS)[number] as `e_${K}`]: string | number | null };

const str = (v: string | number | null): string | null => (v === null ? null : String(v));
const num = (v: string | number | null): number | null => (v === null ? null : Number(v));

function toAction(r: JoinedRow): AuditAction {
  const begin = {
    seq: Number(r.seq),
    ts: String(r.ts),
    principal: String(r.principal),
    host: String(r.host),
    operation: String(r.operation),
    argv: r.argv === null ? null : (JSON.parse(String(r.argv)) as string[]),
    command: str(r.command),
    resource: str(r.resource),
    policy: str(r.policy),
    rule: str(r.rule),
    decision: String(r.decision) as AuditDecision,
    reason: str(r.reason),
    recording: str(r.recording),
    level: String(r.level) as AuditLevel,
  };
  const end =
    r.e_seq === null
      ? null
      : {
          seq: Number(r.e_seq),
          ts: String(r.e_ts),
          exitCode: num(r.e_exit_code),
          signal: str(r.e_signal),
          durationMs: num(r.e_duration_ms),
          bytesOut: num(r.e_bytes_out),
          bytesErr: num(r.e_bytes_err),
          truncated: r.e_truncated === 1,
          timedOut: r.e_timed_out === 1,
          error: str(r.e_error),
          refusal: str(r.e_reason),
          approval: r.e_approval === null ? null : (JSON.parse(String(r.e_approval)) as AuditApproval),
          level: String(r.e_level) as AuditLevel,
        };
  return { id: begin.seq, status: end ? 'complete' : 'incomplete', level: end?.level ?? begin.level, begin, end };
}

/** list()'s query, newest first (the tests read its plan: host and principal use the v4 indexes). */
export function listQuery(options: ListOptions): { sql: string; params: Array<string | number> } {
  const levels = levelsShown(options.level ?? 'info');
  const sql = `${SELECT_ACTIONS} AND b.seq > ? AND b.seq < ? AND coalesce(e.level, b.level) IN (${levels.map(() => '?').join(', ')})
    ${options.host === undefined ? '' : 'AND b.host = ?'} ${options.principal === undefined ? '' : 'AND b.principal = ?'} ${options.since === undefined ? '' : 'AND b.ts >= ?'}
    ORDER BY b.seq DESC LIMIT ?`;
  const params: Array<string | number> = [options.sinceSeq ?? 0, options.beforeSeq ?? Number.MAX_SAFE_INTEGER, ...levels];
  if (options.host !== undefined) params.push(options.host);
  if (options.principal !== undefined) params.push(options.principal);
  if (options.since !== undefined) params.push(options.since);
  params.push(options.limit ?? -1);
  return { sql, params };
}

/** Whether a follower asking for `f` is shown `a`. */
export function matches(a: AuditAction, f: AuditFilter): boolean {
  return (
    (f.level === undefined || levelsShown(f.level).includes(a.level)) &&
    (f.host === undefined || a.begin.host === f.host) &&
    (f.principal === undefined || a.begin.principal === f.principal) &&
    (f.since === undefined || a.begin.ts >= f.since)
  );
}

function sqliteCode(e: unknown): string {
  return e instanceof Database.SqliteError ? e.code : '';
}

/** Under this much free space, a failed write is put down to a full disk. */
const NEARLY_FULL_BYTES = 1 << 20;

/**
 * What to add to a failed open, write or sync of the store at `path`: that its disk is full, when it is
 * (SQLite often says only "disk I/O error" then), and what to do; else nothing.
 */
export function fullDiskNote(path: string, e: unknown): string {
  let free: number | null = null;
  try {
    const st = statfsSync(dirname(path));
    free = st.bavail * st.bsize;
  } catch {
    // No answer: the error says what it says.
  }
  const code = sqliteCode(e) || ((e as NodeJS.ErrnoException | null)?.code ?? '');
  if (code !== 'SQLITE_FULL' && code !== 'ENOSPC' && (free === null || free >= NEARLY_FULL_BYTES)) return '';
  const left = free === null ? '' : ` (${Math.floor(free / 1024)} KiB free)`;
  return `; the disk holding it is full${left}: nothing runs until the audit can be written. Free space on it (remux doctor shows what recordings take), then try again`;
}

interface Settle<T> {
  resolve(value: T): void;
  reject(reason: unknown): void;
}

/** A queued write. A begin may carry its end (record()): both rows go into the same transaction. */
type Queued =
  | { kind: 'begin'; fields: BeginFields; decision: AuditDecision; end: { fields: EndFields; rec: AuditEnd } | null; settle: Settle<number> }
  | { kind: 'end'; actionId: number; fields: EndFields; rec: AuditEnd; settle: Settle<void> };

/** What a flush did for one queued write, delivered only once the transaction has committed. */
type Outcome = { ok: true; id: number } | { ok: false; error: AuditStoreError };

export interface WriteStats {
  /** Committed write transactions (each followed by one fsync of the WAL under full durability). */
  transactions: number;
  /** Rows written by them. */
  rows: number;
}

/** Where the WAL's fsyncs ran: inline (on the event loop) or on libuv's thread pool. */
export interface SyncStats {
  inline: number;
  pooled: number;
}

/** An end committed with no begin is fsynced this long after at the latest (see the header). */
const END_SYNC_DELAY_MS = 5;
/** Inline fsyncs averaging more than this (ms, exponentially weighted) move the next ones off the event loop... */
const INLINE_SYNC_MAX_MS = 2;
/** ...as does one that takes this many times as long... */
const INLINE_SYNC_STALL = 25;
/** ...for this long, doubled each time they move again within INLINE_SYNC_PAUSE_MS; then they are tried inline again. */
const INLINE_SYNC_FIRST_PAUSE_MS = 1_000;
/** The longest pause, and how long fsyncs must stay inline for the next pause to start again from the first. */
const INLINE_SYNC_PAUSE_MS = 30_000;
/** The weight of the latest inline fsync in the average. */
const INLINE_SYNC_WEIGHT = 0.2;


/** Stores open in this process, closed as it exits (AuditStore.open). */
const openStores = new Set<AuditStore>();
function closeOpenStores(): void {
  for (const store of openStores) {
    try {
      store.close();
    } catch (e) {
      process.stderr.write(`remux: the audit store could not be closed at exit: ${(e as Error).message}\n`);
    }
  }
}

export class AuditStore {
  private readonly lastRow: Database.Statement<[], { seq: number; hash: string }>;
  private readonly insertRow: Database.Statement<[Row]>;
  private readonly beginOf: Database.Statement<[number], { decision: AuditDecision }>;
  private readonly endOf: Database.Statement<[number], { seq: number }>;
  private readonly rowsAfter: Database.Statement<[number, number], { seq: number; action_id: number }>;
  private readonly actionById: Database.Statement<[number], JoinedRow>;
  private readonly allRows: Database.Statement<[], Row>;
  /** writeBatch as a transaction, made once: better-sqlite3 builds a wrapper per transaction() call. */
  private readonly writeTransaction: Database.Transaction<(batch: readonly Queued[]) => { outcomes: Outcome[]; rows: number }>;
  private queue: Queued[] = [];
  private scheduled: NodeJS.Immediate | null = null;
  private closed = false;
  private readonly stats: WriteStats = { transactions: 0, rows: 0 };
  /** The WAL file, opened at the first commit to fsync it; closed once the store is closed and no fsync is pending. */
  private walFd: number | null = null;
  private pendingSyncs = 0;
  private readonly syncs: SyncStats = { inline: 0, pooled: 0 };
  /** performance.now() from which an fsync may run inline again (after slow ones). */
  private inlineFrom: number;
  /** Exponentially weighted average of the inline fsyncs' durations (ms). */
  private inlineAverageMs = 0;
  /** How long the next move to the thread pool lasts, and when the last one began. */
  private inlinePauseMs = INLINE_SYNC_FIRST_PAUSE_MS;
  private movedAt = -Infinity;
  /** Set while ends are committed but not yet fsynced: fires the fsync no begin brought. */
  private endSync: NodeJS.Timeout | null = null;

  private constructor(
    private readonly db: Database.Database,
    private readonly path: string,
    private readonly durability: Durability,
    private readonly inlineSyncMaxMs: number,
  ) {
    this.lastRow = db.prepare('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1');
    this.insertRow = db.prepare(
      `INSERT INTO audit (${HASHED_COLUMNS.join(', ')}, prev_hash, hash)
       VALUES (${HASHED_COLUMNS.map((c) => `@${c}`).join(', ')}, @prev_hash, @hash)`,
    );
    this.beginOf = db.prepare("SELECT decision FROM audit WHERE seq = ? AND kind = 'begin'");
    this.endOf = db.prepare("SELECT seq FROM audit WHERE action_id = ? AND kind = 'end'");
    this.rowsAfter = db.prepare('SELECT seq, action_id FROM audit WHERE seq > ? ORDER BY seq LIMIT ?');
    this.actionById = db.prepare(`${SELECT_ACTIONS} AND b.seq = ?`);
    this.allRows = db.prepare(`SELECT ${HASHED_COLUMNS.join(', ')}, prev_hash, hash FROM audit ORDER BY seq`);
    this.writeTransaction = db.transaction((batch: readonly Queued[]) => this.writeBatch(batch));
    this.inlineFrom = inlineSyncMaxMs > 0 ? 0 : Infinity;
  }

  /** Open (creating if needed) the store at `path`. Throws AuditStoreError naming the path on failure. */
  static open(path: string, options: OpenOptions = {}): AuditStore {
    const store = AuditStore.openDatabase(path, options);
    openStores.add(store);
    // Ends are queued without their callers waiting (auditAction): a process.exit() right after a result
    // must not drop them, so every store still open is closed (its queue written) as the process exits.
    if (!process.listeners('exit').includes(closeOpenStores)) process.on('exit', closeOpenStores);
    return store;
  }

  private static openDatabase(path: string, options: OpenOptions): AuditStore {
    let db: Database.Database | undefined;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      // SQLite gives the -wal and -shm files the main file's mode, so creating it 0600 covers all three.
      if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
      const busyTimeoutMs = options.busyTimeoutMs ?? 10_000;
      db = new Database(path, { timeout: busyTimeoutMs });
      const mode = useWal(db, busyTimeoutMs);
      if (mode !== 'wal') throw new AuditStoreError(`audit store ${path}: cannot use WAL mode (got ${String(mode)})`);
      // Full durability comes from our own fsync after each commit (see the header), not SQLite's.
      db.pragma('synchronous = NORMAL');
      migrate(db, path);
      return new AuditStore(db, path, options.durability ?? 'full', options.inlineSyncMaxMs ?? INLINE_SYNC_MAX_MS);
    } catch (e) {
      db?.close();
      if (e instanceof AuditStoreError) throw e;
      const code = sqliteCode(e);
      if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
        throw new AuditStoreError(
          `audit store ${path} is not a readable SQLite database (${(e as Error).message}). ` +
            `Move it aside (mv ${path} ${path}.corrupt) to start a new store, and keep the old file for investigation.`,
          { cause: e },
        );
      }
      throw new AuditStoreError(`cannot open audit store ${path}: ${(e as Error).message}${fullDiskNote(path, e)}`, { cause: e });
    }
  }

  /**
   * Record an action before it runs: resolves with its id once the row is committed and (under full
   * durability) fsynced, so awaiting it is what makes "written before anything runs" hold. If it rejects,
   * nothing may run. Argv, command, resource and reason are redacted here.
   */
  begin(rec: AuditBegin): Promise<number> {
    return this.enqueue<number>((settle) => ({ kind: 'begin', fields: beginRow(rec), decision: rec.decision, end: null, settle }));
  }

  /**
   * Complete an action: resolves once the row is committed; the next begin's fsync, or one soon after,
   * makes it durable (see the header). Rejects if the action does not exist or already has an end (nothing is written).
   */
  end(actionId: number, rec: AuditEnd): Promise<void> {
    return this.enqueue<void>((settle) => ({ kind: 'end', actionId, fields: endRow(rec), rec, settle }));
  }

  /**
   * An action that is over as it is recorded (a refusal, a host key trusted): begin and end in one
   * transaction, so it is never seen incomplete. Resolves with its id once both rows are committed.
   */
  record(rec: AuditBegin, end: AuditEnd): Promise<number> {
    return this.enqueue<number>((settle) => ({
      kind: 'begin',
      fields: beginRow(rec),
      decision: rec.decision,
      end: { fields: endRow(end), rec: end },
      settle,
    }));
  }

  /** Committed transactions and rows of this connection so far (the bench reports rows per commit). */
  writeStats(): WriteStats {
    return { ...this.stats };
  }

  /** How many fsyncs of the WAL ran inline and how many on the thread pool. */
  syncStats(): SyncStats {
    return { ...this.syncs };
  }

  private enqueue<T>(make: (settle: Settle<T>) => Queued): Promise<T> {
    if (this.closed) return Promise.reject(new AuditStoreError('the audit store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push(make({ resolve, reject }));
      // setImmediate, not a microtask: it runs after the poll phase, so every caller woken by I/O in this
      // turn of the event loop (one per host of a fan-out) joins the batch. While a commit's fsync runs,
      // the next callers pile up and join the next batch together (flush waits for the fsync).
      this.scheduled ??= setImmediate(() => this.flush());
    });
  }

  /** A reader in this process sees every row queued before it asked (an end its caller did not wait for). */
  private writeQueued(): void {
    if (this.queue.length > 0) this.flush(true);
  }

  /**
   * Writes every queued row in one IMMEDIATE transaction, then settles their promises. While the last
   * commit's fsync is still running, writes wait for it and go together in the next transaction (writing
   * into WAL pages the kernel is flushing would stall on them); `now` (close, a reader) does not wait.
   */
  private flush(now = false): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = null;
    if (this.pendingSyncs > 0 && !now) return;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    let written: { outcomes: Outcome[]; rows: number };
    try {
      written = this.writeTransaction.immediate(batch);
    } catch (e) {
      // Rolled back: none of the batch was written, so every begin fails and nothing may run for it.
      const note = fullDiskNote(this.path, e);
      const error = note ? new AuditStoreError(`audit store ${this.path}: cannot write: ${(e as Error).message}${note}`, { cause: e }) : e;
      for (const q of batch) q.settle.reject(error);
      return;
    }
    this.stats.transactions++;
    this.stats.rows += written.rows;
    const settle = (kind: Queued['kind']): void => {
      for (const [i, q] of batch.entries()) {
        if (q.kind !== kind) continue;
        const outcome = written.outcomes[i];
        if (!outcome?.ok) q.settle.reject(outcome?.error ?? new AuditStoreError('audit write lost'));
        else if (q.kind === 'begin') q.settle.resolve(outcome.id);
        else q.settle.resolve();
      }
    };
    settle('end');
    if (this.durability === 'normal') return settle('begin');
    if (!batch.some((q) => q.kind === 'begin')) return this.syncEndsSoon();
    // This fsync carries the ends committed before it too.
    if (this.endSync) clearTimeout(this.endSync);
    this.endSync = null;
    this.syncWal((err) => {
      // Committed but maybe not on disk: a begin that fails here lets nothing run.
      if (!err) return settle('begin');
      const why = new AuditStoreError(`audit store ${this.path}: cannot sync the write-ahead log: ${err.message}${fullDiskNote(this.path, err)}`);
      for (const q of batch) if (q.kind === 'begin') q.settle.reject(why);
    });
  }

  /** Ends alone are not worth an fsync of their own at once: the next begin's carries them, or this one. */
  private syncEndsSoon(): void {
    this.endSync ??= setTimeout(() => {
      this.endSync = null;
      // An error here reaches no one (the ends resolved): the next begin's fsync fails and refuses it.
      if (!this.closed) this.syncWal(() => {});
    }, END_SYNC_DELAY_MS);
    // Pending ends never keep a process alive: close() syncs them, and an exit loses no committed row.
    this.endSync.unref();
  }

  /**
   * fsync of the WAL, inline or on the thread pool (see the header): everything committed before the
   * call is on disk when `done` runs.
   */
  private syncWal(done: (err: Error | null) => void): void {
    try {
      // An fsync through any descriptor of the file flushes the file: SQLite's own stays SQLite's.
      this.walFd ??= openSync(`${this.path}-wal`, 'r');
    } catch (e) {
      return done(e as Error);
    }
    const started = performance.now();
    if (started >= this.inlineFrom) {
      this.syncs.inline++;
      let error: Error | null = null;
      try {
        fsyncSync(this.walFd);
      } catch (e) {
        error = e as Error;
      }
      const ended = performance.now();
      const took = ended - started;
      this.inlineAverageMs += INLINE_SYNC_WEIGHT * (took - this.inlineAverageMs);
      if (this.inlineAverageMs > this.inlineSyncMaxMs || took > INLINE_SYNC_STALL * this.inlineSyncMaxMs) {
        if (ended - this.movedAt > INLINE_SYNC_PAUSE_MS) this.inlinePauseMs = INLINE_SYNC_FIRST_PAUSE_MS;
        this.inlineFrom = ended + this.inlinePauseMs;
        this.inlinePauseMs = Math.min(2 * this.inlinePauseMs, INLINE_SYNC_PAUSE_MS);
        this.movedAt = ended;
        this.inlineAverageMs = 0;
      }
      return done(error);
    }
    this.syncs.pooled++;
    this.pendingSyncs++;
    fsync(this.walFd, (err) => {
      this.pendingSyncs--;
      if (this.closed) this.closeWal();
      done(err);
      if (this.queue.length > 0 && !this.closed) this.scheduled ??= setImmediate(() => this.flush());
    });
  }

  private closeWal(): void {
    if (this.walFd === null || this.pendingSyncs > 0) return;
    closeSync(this.walFd);
    this.walFd = null;
  }

  /** Must run inside an IMMEDIATE transaction: the write lock makes the last row ours to chain to. */
  private writeBatch(batch: readonly Queued[]): { outcomes: Outcome[]; rows: number } {
    const last = this.lastRow.get();
    let seq = last?.seq ?? 0;
    let prev = last?.hash ?? GENESIS_HASH;
    const first = seq;
    const append = (fields: Omit<RowFields, 'seq' | 'action_id' | 'ts'>, actionId: number | null): number => {
      seq++;
      const row: RowFields = { ...fields, seq, action_id: actionId ?? seq, ts: new Date().toISOString() };
      const hash = hashRow(prev, row);
      this.insertRow.run({ ...row, prev_hash: prev, hash });
      prev = hash;
      return seq;
    };
    const outcomes = batch.map((q): Outcome => {
      if (q.kind === 'begin') {
        const id = append(q.fields, null);
        if (q.end) append({ ...q.end.fields, level: endLevel(q.decision, q.end.rec) }, id);
        return { ok: true, id };
      }
      // These SELECTs see the rows written earlier in this transaction: an end may follow its begin
      // in the same batch, and a second end of one action in a batch is refused like any other.
      const begin = this.beginOf.get(q.actionId);
      if (!begin) return { ok: false, error: new AuditStoreError(`no audit action ${q.actionId}`) };
      if (this.endOf.get(q.actionId)) return { ok: false, error: new AuditStoreError(`audit action ${q.actionId} has already ended`) };
      append({ ...q.fields, level: endLevel(begin.decision, q.rec) }, q.actionId);
      return { ok: true, id: q.actionId };
    });
    return { outcomes, rows: seq - first };
  }

  /** Actions oldest first; with `limit`, the newest `limit` of them (of those before `beforeSeq`: a range of the seq key). */
  list(options: ListOptions = {}): AuditAction[] {
    this.writeQueued();
    const { sql, params } = listQuery(options);
    const rows = this.db.prepare<Array<string | number>, JoinedRow>(sql).all(...params);
    return rows.reverse().map(toAction);
  }

  /**
   * list() as a page: `next` is the `beforeSeq` of the page older than it (the id of its oldest action),
   * or null when no older action matches. One more row is read to know.
   */
  page(options: ListOptions = {}): AuditPage {
    if (options.limit === undefined) return { actions: this.list(options), next: null };
    const actions = this.list({ ...options, limit: options.limit + 1 });
    if (actions.length <= options.limit) return { actions, next: null };
    actions.shift();
    return { actions, next: actions[0]!.id };
  }

  /**
   * page() and the head it reflects, read from one snapshot: following from `head` then misses nothing
   * and repeats nothing that the list already shows complete.
   */
  snapshot(options: ListOptions = {}): AuditPage & { head: number } {
    this.writeQueued();
    return this.db.transaction(() => ({ ...this.page(options), head: this.head().seq }))();
  }

  /**
   * Call onAction for each action touched by a row after `fromSeq` until `signal` aborts: once when its
   * begin appears (incomplete) and once when its end does; both at once are reported once, complete.
   * Actions come in the order of their latest row (cursorOf), so a reader that stops after any of them
   * and follows again from its cursor misses nothing.
   */
  async follow(
    fromSeq: number,
    onAction: (action: AuditAction) => void,
    signal: AbortSignal,
    options: FollowOptions = {},
  ): Promise<void> {
    let last = fromSeq;
    while (!signal.aborted) {
      if (this.head().seq > last) {
        const { actions, upTo, full } = this.changesAfter(last);
        for (const a of actions) if (matches(a, options)) onAction(a);
        last = upTo;
        if (full) continue;
      }
      try {
        await sleep(options.intervalMs ?? 250, undefined, { signal });
      } catch {
        return;
      }
    }
  }

  /**
   * One step of following: the actions touched by up to CHANGES_BATCH rows after `after`, as they stood
   * at the last of them (`upTo`, where the next step starts), in cursorOf order. `full`: more rows wait.
   * Rows and actions come from one read transaction, so they agree.
   */
  changesAfter(after: number): { actions: AuditAction[]; upTo: number; full: boolean } {
    this.writeQueued();
    return this.db.transaction(() => {
      const rows = this.rowsAfter.all(after, CHANGES_BATCH);
      const upTo = rows.at(-1)?.seq ?? after;
      const actions: AuditAction[] = [];
      for (const id of new Set(rows.map((r) => r.action_id))) {
        const row = this.actionById.get(id);
        if (row) actions.push(asOf(toAction(row), upTo));
      }
      actions.sort((a, b) => cursorOf(a) - cursorOf(b));
      return { actions, upTo, full: rows.length === CHANGES_BATCH };
    })();
  }

  /**
   * Every row, oldest first, as one JSON object per call (no newline), in hash order (see the top). With
   * `only` (a non-admin's view, core/scope.ts auditFilterFor): the begin and end rows of that principal's
   * actions begun at or after `since`, without prev_hash and hash. A part of the chain cannot be verified
   * anyway, and a prev_hash is the hash of the row before, which may be another principal's: with the
   * hashes around it, a guess at that row's content could be confirmed.
   */
  exportJsonl(write: (line: string) => void, only?: { principal: string; since?: string }): void {
    this.writeQueued();
    if (only) {
      const rows = this.db.prepare<[string, string], Row>(
        `SELECT ${HASHED_COLUMNS.join(', ')} FROM audit
         WHERE action_id IN (SELECT seq FROM audit WHERE kind = 'begin' AND principal = ? AND ts >= ?) ORDER BY seq`,
      );
      for (const row of rows.iterate(only.principal, only.since ?? '')) write(JSON.stringify(canonical(row)));
      return;
    }
    for (const row of this.allRows.iterate()) {
      write(JSON.stringify({ ...canonical(row), prev_hash: row.prev_hash, hash: row.hash }));
    }
  }

  /** Check the whole chain; with `anchor` (an earlier head()), also that it still contains that record. */
  verify(anchor?: ChainHead): VerifyResult {
    this.writeQueued();
    let prev = GENESIS_HASH;
    let expected = 1;
    const result = (seq: number, reason: string): VerifyResult => ({
      ok: false,
      checked: expected - 1,
      head: { seq: expected - 1, hash: prev },
      firstBad: { seq, reason },
    });
    for (const row of this.allRows.iterate()) {
      const seq = Number(row.seq);
      if (seq !== expected) {
        return result(seq, expected === 1 ? `the chain starts at ${seq}: earlier records were deleted` : `records ${expected}..${seq - 1} are missing (deleted)`);
      }
      if (row.prev_hash !== prev) {
        return result(seq, 'prev_hash does not match the previous record: a record was inserted, reordered, or edited and re-hashed');
      }
      if (hashRow(prev, row) !== row.hash) return result(seq, 'the hash does not match the record: it was edited');
      if (anchor && seq === anchor.seq && row.hash !== anchor.hash) return result(seq, 'differs from the anchored record');
      prev = row.hash;
      expected++;
    }
    if (anchor && anchor.seq >= expected) {
      return result(anchor.seq, `the anchored record ${anchor.seq} is missing: records were removed from the end`);
    }
    return { ok: true, checked: expected - 1, head: { seq: expected - 1, hash: prev } };
  }

  /** The last record, to anchor elsewhere (another host, a log): the chain alone cannot show tail truncation. */
  head(): ChainHead {
    this.writeQueued();
    const last = this.lastRow.get();
    return last ? { seq: last.seq, hash: last.hash } : { seq: 0, hash: GENESIS_HASH };
  }

  /** Writes what is still queued (its promises settle as usual), then closes. Later writes reject. */
  close(): void {
    if (this.closed) return;
    openStores.delete(this);
    this.flush(true);
    this.closed = true;
    if (this.endSync) {
      clearTimeout(this.endSync);
      this.endSync = null;
      fsyncSync((this.walFd ??= openSync(`${this.path}-wal`, 'r')));
    }
    this.db.close();
    this.closeWal();
  }
}

/** The last row an action reported by follow() reflects: where to follow from after it. */
export function cursorOf(a: AuditAction): number {
  return a.end?.seq ?? a.begin.seq;
}

/** The action as it stood once row `upTo` was written. */
function asOf(a: AuditAction, upTo: number): AuditAction {
  return a.end && a.end.seq > upTo ? { ...a, status: 'incomplete', level: a.begin.level, end: null } : a;
}

function migrate(db: Database.Database, path: string): void {
  const current = (): number => Number(db.pragma('user_version', { simple: true }));
  const check = (): void => {
    // One statement, so one snapshot: read apart, another process's migration committed in between showed
    // its tables but not yet its id, and a new store opened by several processes at once was refused.
    const { appId, tables } = db
      .prepare("SELECT (SELECT application_id FROM pragma_application_id) AS appId, (SELECT count(*) FROM sqlite_schema WHERE type = 'table') AS tables")
      .get() as { appId: number; tables: number };
    if (appId !== APPLICATION_ID && (appId !== 0 || tables > 0)) {
      throw new AuditStoreError(`${path} is an SQLite database but not a remux audit store; point REMUX_AUDIT_DB elsewhere`);
    }
    if (current() > MIGRATIONS.length) {
      throw new AuditStoreError(
        `audit store ${path} has schema version ${current()}; this remux knows up to ${MIGRATIONS.length}: upgrade remux`,
      );
    }
  };
  check();
  if (current() === MIGRATIONS.length) return;
  // Several processes may open a new store at once: migrate under the write lock and re-read the version.
  db.transaction(() => {
    check();
    for (let v = current(); v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v] ?? '');
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  }).immediate();
}
