// The one door's vocabulary: who asks (Principal), what they ask (Action), and what came of it.
import type { Decision } from '../policy/types.js';

export interface Principal {
  /** Stable name recorded in the audit trail, e.g. "cli:alice", later "token:ci-bot". */
  name: string;
  /** How the principal proved who it is. */
  via: 'cli' | 'token' | 'cookie' | 'mcp' | 'agent';
}

/** Run a command string on a host. Later issues add file, directory and session actions. */
export interface ExecAction {
  kind: 'exec';
  host: string;
  command: string;
  /** Policy name; the configured default when absent. */
  policy?: string;
  cwd?: string;
  /** Overrides the configured timeout; null = none. */
  timeoutMs?: number | null;
  pipefail?: boolean;
}

export type Action = ExecAction;

/** What an approver (TTY prompt, phone, web) answers when a decision is `ask`. Expired is never allow. */
export type ApprovalAnswer = 'allow' | 'deny' | 'expired';

export interface PerformIO {
  onStdout(chunk: Buffer): void;
  onStderr(chunk: Buffer): void;
  signal?: AbortSignal;
  stdin?: NodeJS.ReadableStream | null;
  /** Asked when policy says `ask`; absent = no approver reachable, which denies. */
  approve?(action: Action, decision: Decision): Promise<ApprovalAnswer>;
}

export type Outcome = 'ok' | 'failed' | 'denied' | 'rejected' | 'unreachable' | 'error';

export interface PerformResult {
  /** Audit action id (null only if the audit store itself failed, in which case nothing ran). */
  actionId: number | null;
  outcome: Outcome;
  exitCode: number;
  decision: Decision | null;
  /** Why it was refused or failed, in words; null when the command ran and succeeded. */
  message: string | null;
  durationMs: number;
  bytesOut: number;
  truncated: boolean;
  timedOut: boolean;
}
