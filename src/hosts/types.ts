// A host is where actions run. The core sees only this interface; transports (local today,
// SSH and outbound agents later) implement it.
import type { CommandList } from '../command/types.js';
import type { OutputLimits, PathResolver, Policy } from '../policy/types.js';
import type { ExecResult, OutputFlow, SandboxSpec, SandboxSupport } from '../exec/types.js';

export interface HostExecRequest {
  list: CommandList;
  cwd: string;
  timeoutMs: number | null;
  pipefail: boolean;
  output: OutputLimits;
  /** The OS sandbox to run in, or null to run with static checks only. */
  sandbox: SandboxSpec | null;
  /** With a sandbox: the stages (0-based, across the list) that run outside it (ExecRequest.outside). */
  outside?: readonly number[];
  /** The policy the command runs under, for messages; absent for remux's own commands (tmux, host checks). */
  policy?: string;
  stdin?: NodeJS.ReadableStream | null;
  onStdout(chunk: Buffer): void;
  onStderr(chunk: Buffer): void;
  flow?: OutputFlow;
  signal?: AbortSignal;
  /**
   * The action's audit begin, still on its way to disk (only for a host that startsOnceDurable): nothing
   * may start before it resolves, nor at all if it rejects.
   */
  durable?: Promise<unknown>;
}

/** A program running on a host in a pseudo-terminal: node-pty locally, an exec channel with a pty over SSH. */
export interface HostTerminal {
  write(data: string | Buffer): void;
  resize(cols: number, rows: number): void;
  /** Stop reading the terminal (the program blocks once the kernel's or SSH window fills), and go on. */
  pause(): void;
  resume(): void;
  /**
   * Whether a pause reaches the program at once (a local pty: the kernel holds a few KiB), or only once
   * a transport's buffers have filled (an SSH channel's 2 MiB window and read buffer, an agent's credit).
   */
  readonly pausesAtOnce: boolean;
  /** Input written and not yet taken: what a local pty's writer queues, what an SSH channel holds beyond its window. */
  pendingInput(): number;
  onData(listener: (chunk: Buffer) => void): void;
  /** Ends the program's process group (locally TERM, then KILL) or closes the channel (its pty hangs up). */
  kill(): void;
  /** Settles once the program is gone. */
  exited: Promise<{ code: number | null; signal: string | null }>;
}

/** A long-lived program with pipes, no pty (the runtime's interpreter): an exec channel over SSH. */
export interface HostStream {
  write(data: Buffer): void;
  onData(listener: (chunk: Buffer) => void): void;
  onStderr(listener: (chunk: Buffer) => void): void;
  /** Sends EOF on its stdin. */
  end(): void;
  /** Closes the channel at once. */
  kill(): void;
  /** Settles once the program is gone; rejects when the connection dropped under it. */
  exited: Promise<{ code: number | null; signal: string | null }>;
}

export interface TerminalSize {
  cols: number;
  rows: number;
}

export interface Host {
  name: string;
  /** How the policy engine resolves paths and program names on this host. */
  resolver: PathResolver;
  /**
   * For hosts whose resolver needs a round trip (SSH): answers every path and program query that
   * evaluating `list` under `policy` in `cwd` makes, fetched at once. Use it instead of `resolver`.
   */
  resolverFor?(policy: Policy, list: CommandList, cwd: string): Promise<PathResolver>;
  /**
   * Working directory used when the action names none; `callerCwd` is the caller's own, which only the
   * local host can use. When the command runs in a sandbox that does not show that directory, `/` of
   * the sandbox (an explicit --cwd the sandbox does not show is an error instead).
   */
  defaultCwd(callerCwd: string | undefined, sandbox: SandboxSpec | null): string;
  execute(req: HostExecRequest): Promise<ExecResult>;
  /**
   * execute() takes a command before its audit begin is durable (HostExecRequest.durable) and starts it
   * only once it is: the host prepares meanwhile (an agent checks its own policy and writes its own begin).
   */
  startsOnceDurable?: boolean;
  /** Starts remux's own `argv` (never a user string) in a pseudo-terminal; PATH is the secure PATH. */
  openTerminal(argv: readonly string[], size: TerminalSize): Promise<HostTerminal>;
  /** Starts remux's own command line (the runtime's stage 0, never a user string) with pipes; absent where the transport has none. */
  openStream?(command: string): Promise<HostStream>;
  /** Whether this host can sandbox commands (remote hosts: probed once per connection). Rejects like execute() when unreachable. */
  sandboxSupport(): Promise<SandboxSupport>;
  /** File operations; absent on a transport that has none (the file actions are then refused). */
  files?: HostFiles;
  /**
   * remux's own files on this host, which every sandbox there hides whatever the policy shows (its
   * resolver refuses them to the checks too: see hosts/local.ts ownPaths).
   */
  ownPaths?: readonly string[];
}

/**
 * Reading, writing and listing files on a host, for core/perform-file.ts, which checks the policy
 * against resolve()'s answer and then hands that resolved path to read/write/list. Those must act on
 * exactly that path: a symlink met in any component (swapped in after the check) is a FileError, never
 * followed. No program runs, so the OS sandbox does not apply: the policy check plus these no-follow
 * opens are the whole enforcement.
 * Failures of the file itself (missing, a directory, a symlink met) throw FileError; an unreachable
 * host throws TransportError.
 */
export interface HostFiles {
  /** Resolves absolute paths on the host, all at once (one round trip); a path that cannot be resolved (loop, unreadable) answers its error. */
  resolve(paths: readonly string[]): Promise<Array<ResolvedPath | { error: string }>>;
  /** Up to `length` bytes from `offset` of the regular file at `path`, and its size. */
  read(path: string, range: { offset: number; length: number }): Promise<{ content: Buffer; size: number }>;
  /**
   * Replaces (or creates) the regular file at `path` atomically: a new file beside it, renamed over it,
   * so a reader sees the old content or the new, never a part; on failure the old file is untouched.
   * An existing file keeps its mode. `createDirs`: missing parent directories are made (never through a
   * symlink).
   */
  write(path: string, content: Buffer, opts: { createDirs: boolean }): Promise<{ created: boolean }>;
  /** The directory's entries (not `.` and `..`), sorted by name, at most `maxEntries`. */
  list(path: string, maxEntries: number): Promise<{ entries: DirEntry[]; truncated: boolean }>;
}

export interface ResolvedPath {
  /** Absolute, every symlink resolved on the host; a missing path as far as it exists, then the rest. */
  real: string;
  /** The final component of the path as given is a symlink (a write through it is refused). */
  finalLink: boolean;
}

export interface DirEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  mtimeMs: number;
}

/** A file operation failed on the host (missing, not a regular file, a symlink met): exit 1. */
export class FileError extends Error {
  /** The host's own policy refused it (an agent's): a denial (exit 77), not a failure. */
  readonly denied: boolean;
  constructor(message: string, opts: { denied?: boolean } = {}) {
    super(message);
    this.name = 'FileError';
    this.denied = opts.denied === true;
  }
}

/** The host could not be reached or used; maps to exit 255. */
export class TransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransportError';
  }
}
