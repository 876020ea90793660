// Contracts of the local executor: what the caller asks for and what it gets back.

import type { CommandList } from '../command/types.js';
import type { OutputLimits } from '../policy/types.js';

/**
 * The OS sandbox a command runs in, from its policy (sandboxSpec() in policy/evaluate.ts). Paths are
 * absolute and literal (no globs), as the policy names them; the host that runs the command resolves them.
 */
export interface SandboxSpec {
  /** Trees visible read-only, and writable. */
  read: string[];
  write: string[];
  /** Paths inside those trees that stay hidden: what the policy's deny and ask rules on reads cover. */
  hide: string[];
  /**
   * Globs of deny and ask rules on reads whose wildcards are in the last segment only (`/var/log/secure*`):
   * what they match when the command starts stays hidden too (the local sandbox; remote hosts leave them
   * to the static check).
   */
  hideMatching?: string[];
  /** Paths inside writable trees that stay read-only: what its deny and ask rules on writes cover. */
  readOnly: string[];
  /** The policy grants `network`: the host's network is shared; otherwise only a private loopback. */
  network: boolean;
  /** Who the command runs for (principal): commands of different owners never share a sandbox instance. */
  owner: string;
}

export interface ExecRequest {
  list: CommandList;
  /** Working directory on the host; relative programs and redirect paths resolve against it. */
  cwd: string;
  /** The exact environment of every stage. Its PATH (absolute entries only) is the one programs are looked up in. */
  env: Record<string, string>;
  /** Limit for the whole command list; null = none. */
  timeoutMs: number | null;
  /** SIGTERM → this long → SIGKILL (default 2000). */
  killGraceMs?: number;
  /** Pipeline status = last non-zero stage status (bash `set -o pipefail`) instead of the last stage's. */
  pipefail: boolean;
  /** maxBytes counts stdout+stderr bytes delivered to the caller; redact patterns are applied before delivery. */
  output: OutputLimits;
  /** Run every stage inside bubblewrap as this spec says; null = no sandbox (static checks only). */
  sandbox: SandboxSpec | null;
  /**
   * With a sandbox: the stages (0-based, counted across the list) that run outside it, as without one,
   * because the execute_binary rule that allowed them says sandbox: false (Decision.bounds' `outside`).
   */
  outside?: readonly number[];
  /** Fed to the first stage that reads the caller's stdin; default /dev/null. */
  stdin?: NodeJS.ReadableStream | null;
  onStdout(chunk: Buffer): void;
  onStderr(chunk: Buffer): void;
  /** The consumer of onStdout/onStderr can fall behind: the command's output is not read while it is full. */
  flow?: OutputFlow;
  /** Ctrl-C / caller cancel: every process group is killed and the result says `aborted`. */
  signal?: AbortSignal;
  /**
   * The action's audit begin on its way to disk: nothing starts before it resolves, nor at all if it
   * rejects (the result is then exit 125, nothing run). Meanwhile the command is prepared.
   */
  durable?: Promise<unknown>;
}

/**
 * Backpressure from whoever reads a command's output (the CLI's socket, a browser): while full(), the
 * readers stop reading the command's pipes (or its SSH channel), so the command blocks on its own
 * writes and its output never piles up in remux's memory.
 */
export interface OutputFlow {
  full(): boolean;
  /** Calls back once there is room again (or the consumer is gone). */
  onRoom(callback: () => void): void;
}

/**
 * Why something did not run as asked. Stage failures (`not_found` … `sandbox`) are also written to the
 * caller's stderr as `remux: …` lines, like sh does; the list goes on per sh semantics.
 * `cwd`, `invalid`, `sandbox_unavailable` (and `sandbox` for a cwd outside the sandbox) are refusals
 * before anything ran: exitCode 125, nothing written to the streams.
 */
export type ExecErrorKind =
  | 'not_found' //            127
  | 'not_executable' //       126
  | 'spawn' //                126: any other exec failure (E2BIG, ENOEXEC …)
  | 'redirect' //             1: a redirect file could not be opened (or lies outside the sandbox paths)
  | 'sandbox' //              126: bwrap failed to start the program; 127: program outside the sandbox; 125: cwd outside;
  //                          137: its sandbox was stopped (from outside) while it ran
  | 'cwd' //                  125: the working directory is unusable
  | 'invalid' //              125: malformed request (bad env name, NUL in env, relative sandbox path)
  | 'sandbox_unavailable'; // 125: a sandbox was required and bubblewrap cannot provide one; nothing ran

export interface ExecResult {
  /** sh semantics over the list; 128+N for a stage killed by signal N; 124 on timeout; 130 on abort. */
  exitCode: number;
  /** Signal that killed the stage whose status is the result, if any. */
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  /** The output cap was hit: delivery stopped at exactly maxBytes and the command was killed. */
  truncated: boolean;
  /** Bytes delivered to onStdout / onStderr (after redaction and the cap). */
  bytesOut: number;
  bytesErr: number;
  durationMs: number;
  /** First failure, naming the program or path; null when everything that ran could be started. */
  error: string | null;
  errorKind: ExecErrorKind | null;
}

/** Whether a host can run commands inside the OS sandbox (Host.sandboxSupport). */
export interface SandboxSupport {
  available: boolean;
  /** "bubblewrap 0.8.0", or why there is no sandbox. */
  detail: string;
  /** Usable, but worth telling the operator (a bubblewrap older than a known escape fix). */
  warning?: string;
  /**
   * When not available: may a policy with `sandbox: true` still run here with static checks only? True for
   * SSH hosts without bubblewrap (shown in hosts list); false for the local host, where remux installs it.
   */
  staticFallback: boolean;
}

export interface BwrapInfo {
  /** bwrap exists and a probe sandbox (all namespaces, no capabilities) started. */
  ok: boolean;
  path: string | null;
  /** e.g. "0.8.0" */
  version: string | null;
  /** Why it is not usable (when !ok). */
  reason?: string;
  /** Usable but worth telling the operator (old version with known CVEs). */
  warning?: string;
}
