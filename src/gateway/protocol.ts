// The daemon's protocol on its Unix socket: one JSON object per line, both ways. Requests carry an
// id; every event answering a request carries the same id. Output bytes travel base64-encoded.
import type { FanoutSummary } from '../core/fanout.js';
import type { ApprovalAnswer, ExecAction, PerformResult } from '../core/types.js';

/** What `client run` asks for: an exec action (without its host) on the hosts a selector picks. */
export type RunRequest = Omit<ExecAction, 'kind' | 'host'> & {
  id: number;
  type: 'run';
  selector: string;
  /** The client has a terminal and can answer `ask` decisions. */
  interactive?: boolean;
  /** Files the client's environment names explicitly (REMUX_POLICY_CONFIG, REMUX_AUDIT_DB): the daemon refuses to run under others. */
  expect?: { policiesFile?: string; auditDb?: string };
};

export type Request =
  | RunRequest
  | { id: number; type: 'status' }
  | { id: number; type: 'stop' }
  | { id: number; type: 'cancel'; ref: number }
  | { id: number; type: 'approve'; ref: number; askId: number; answer: ApprovalAnswer };

export type Event =
  /** The hosts the selector picked, in order: sent before any output. */
  | { id: number; type: 'hosts'; hosts: string[] }
  | { id: number; type: 'out'; host: string; stream: 'stdout' | 'stderr'; data: string }
  | { id: number; type: 'result'; host: string; result: PerformResult }
  /** Every host has a result. */
  | { id: number; type: 'done'; summary: FanoutSummary; exitCode: number }
  /** A policy said `ask`: the client answers with an `approve` request carrying askId. */
  | { id: number; type: 'ask'; askId: number; host: string; command: string; reason: string }
  /** The request failed as a whole (bad selector, rate limited, …): nothing ran. */
  | { id: number; type: 'error'; message: string; hint?: string; exitCode: number; retryInMs?: number }
  | { id: number; type: 'status'; status: DaemonStatus };

export interface DaemonStatus {
  pid: number;
  version: string;
  startedAt: string;
  uptimeSeconds: number;
  socket: string;
  auditDb: string;
  knownHosts: string;
  principal: string;
  hosts: HostStatus[];
  rateLimit: { ratePerSec: number; burst: number; buckets: Array<{ key: string; tokens: number }> };
  memoryRssBytes: number;
}

export interface HostStatus {
  name: string;
  address: string | null;
  port: number | null;
  transport: string;
  labels: Record<string, string>;
  connected: boolean;
  breaker: { state: string; consecutiveFailures: number; lastError: string | null; nextProbeAt: number | null } | null;
  lastRttMs: number | null;
  lastError: string | null;
  activeChannels: number;
  queued: number;
}

/** Largest line the daemon accepts from a client; requests are small. */
export const MAX_REQUEST_BYTES = 1 << 20;

/** Splits a byte stream into JSON lines; a line over `maxBytes` is an error, never buffered without bound. */
export class LineReader {
  private buffer = '';
  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxBytes: number,
  ) {}

  push(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line.trim() !== '') this.onLine(line);
    }
    if (this.buffer.length > this.maxBytes) throw new Error(`protocol line longer than ${this.maxBytes} bytes`);
  }
}
