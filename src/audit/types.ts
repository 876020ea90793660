// The audit record model: what callers hand to the store and what queries return.

/** info: allowed, exit 0. warn: allowed but non-zero exit, signal, timeout or truncated output.
 *  error: transport or internal failure. deny: refused by policy or by an approver. */
export type AuditLevel = 'info' | 'warn' | 'error' | 'deny';

export const AUDIT_LEVELS: readonly AuditLevel[] = ['info', 'warn', 'error', 'deny'];

export type AuditDecision = 'allow' | 'deny' | 'ask';

/** Written before anything runs. Free-text fields are redacted by the store, not by the caller. */
export interface AuditBegin {
  principal: string;
  host: string;
  /** Policy operation, e.g. execute_binary, read_file, session.kill. */
  operation: string;
  /** The parsed command, flattened across stages, when the action runs a command. */
  argv?: readonly string[] | null;
  /** The command string as the principal wrote it. */
  command?: string | null;
  /** What a non-command operation applies to: a path, a session, a tool name. */
  resource?: string | null;
  policy?: string | null;
  /** Rule reference text, e.g. "read_only#2 (policies.yaml:14)". */
  rule?: string | null;
  decision: AuditDecision;
  reason?: string | null;
  /** The recording the action writes (asciicast id in $REMUX_HOME/recordings), when it is recorded. */
  recording?: string | null;
}

/**
 * How an `ask` was answered, on the action's end record: who answered and through what. `approved` and
 * `refused` name them; `expired` (nobody answered in time) and `cancelled` (the caller went away first)
 * have no answerer.
 */
export interface AuditApproval {
  outcome: 'approved' | 'refused' | 'expired' | 'cancelled';
  /** The principal that answered ("cli:alice", "ops-admin", "link (sent to ntfy)"); null when nobody did. */
  by: string | null;
  /** Through what: "terminal" (the asking CLI's own prompt), "cli", "web", "link", "ntfy"; null when nobody answered. */
  via: string | null;
  /** The approval's id (`remux approvals ls --all`); null for a terminal's prompt, which makes none. */
  id: string | null;
}

/** Written once the action is over. */
export interface AuditEnd {
  /** null when no process ran (file operations, refusals, transport errors) or it died by a signal. */
  exitCode: number | null;
  signal?: string | null;
  durationMs: number;
  bytesOut?: number | null;
  bytesErr?: number | null;
  truncated?: boolean;
  timedOut?: boolean;
  /** Transport or internal error: makes the action level `error`. */
  error?: string | null;
  /** Why an `ask` was refused (approver said no, or the request expired): makes the action level `deny`. */
  refusal?: string | null;
  /** How its `ask` was answered; absent when it asked nobody. */
  approval?: AuditApproval | null;
}

export interface AuditBeginRecord {
  seq: number;
  ts: string;
  principal: string;
  host: string;
  operation: string;
  argv: string[] | null;
  command: string | null;
  resource: string | null;
  policy: string | null;
  rule: string | null;
  decision: AuditDecision;
  reason: string | null;
  recording: string | null;
  level: AuditLevel;
}

export interface AuditEndRecord {
  seq: number;
  ts: string;
  exitCode: number | null;
  signal: string | null;
  durationMs: number | null;
  bytesOut: number | null;
  bytesErr: number | null;
  truncated: boolean;
  timedOut: boolean;
  error: string | null;
  refusal: string | null;
  approval: AuditApproval | null;
  level: AuditLevel;
}

/** A begin joined with its end. `incomplete`: no end row — still running, or its process died. */
export interface AuditAction {
  id: number;
  status: 'complete' | 'incomplete';
  /** The end's level when complete, else the begin's. */
  level: AuditLevel;
  begin: AuditBeginRecord;
  end: AuditEndRecord | null;
}

export interface AuditFilter {
  /** Minimum interest, see levelsShown(). */
  level?: AuditLevel;
  host?: string;
  principal?: string;
  /** Only actions begun at or after this time (ISO 8601, as the records' ts). */
  since?: string;
}

export interface ListOptions extends AuditFilter {
  /** Only actions whose begin seq is greater. */
  sinceSeq?: number;
  /** Only actions whose begin seq (their id) is lower: the page older than one ending at that action. */
  beforeSeq?: number;
  /** Keep the newest N matching actions (still returned oldest first). */
  limit?: number;
}

/** Actions oldest first, and the `beforeSeq` of the older ones left (null when none is). */
export interface AuditPage {
  actions: AuditAction[];
  next: number | null;
}

export interface FollowOptions extends AuditFilter {
  intervalMs?: number;
}

export interface ChainHead {
  seq: number;
  hash: string;
}

export interface VerifyResult {
  ok: boolean;
  /** Records found valid (before the first bad one). */
  checked: number;
  head: ChainHead;
  firstBad?: { seq: number; reason: string };
}

/** `full`: fsync the WAL on every commit (survives power loss). `normal`: survives a process crash only. */
export type Durability = 'full' | 'normal';

export interface OpenOptions {
  durability?: Durability;
  /** Inline fsyncs averaging more than this (ms, default 2) send the next ones to the thread pool for a while (store.ts); 0: always there. */
  inlineSyncMaxMs?: number;
  /** How long a writer waits for another process's transaction before failing. */
  busyTimeoutMs?: number;
}
