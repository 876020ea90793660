// The one door's vocabulary: who asks (Principal), what they ask (Action), and what came of it.
import type { OutputFlow } from '../exec/types.js';
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
  /** Working directory on the host (explicit --cwd). */
  cwd?: string;
  /** The caller's own working directory: the default on hosts sharing this machine's filesystem. */
  callerCwd?: string;
  /** Overrides the configured timeout; null = none. */
  timeoutMs?: number | null;
  pipefail?: boolean;
}

/** Reach a host and run `true` there (remux's own fixed command, so no policy applies): `hosts check`. */
export interface ProbeAction {
  kind: 'probe';
  host: string;
}

export type Action = ExecAction | ProbeAction;

/** What an approver (TTY prompt, phone, web) answers when a decision is `ask`. Expired is never allow. */
export type ApprovalAnswer = 'allow' | 'deny' | 'expired';

export interface PerformIO {
  onStdout(chunk: Buffer): void;
  onStderr(chunk: Buffer): void;
  /** Backpressure from whoever reads the output: the command is not read while it is full. */
  flow?: OutputFlow;
  signal?: AbortSignal;
  stdin?: NodeJS.ReadableStream | null;
  /** Asked when policy says `ask`; absent = no approver reachable, which denies. */
  approve?(action: ExecAction, decision: Decision): Promise<ApprovalAnswer>;
}

export type Outcome = 'ok' | 'failed' | 'denied' | 'rejected' | 'rate_limited' | 'unreachable' | 'error';

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
