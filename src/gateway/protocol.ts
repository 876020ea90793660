// The daemon's protocol on its Unix socket. A connection starts with one JSON line, the request.
// `status` and `stop` are answered with one JSON line. `cli` forwards a whole `remux client …` command
// line: the daemon runs it as the CLI would and the connection carries binary frames from then on
// (below), so the thin clients (native/launcher.c, gateway/forward.ts) only copy bytes.
import { ReadBuffer } from '../core/frames.js';
import type { SlotsStatus } from './attach-slots.js';
import type { SandboxStatus } from '../exec/sandbox-pool.js';
import type { SandboxSupport } from '../exec/types.js';

/** A command line forwarded by a client: the words after `remux`, and what of its process they need. */
export interface CliRequest {
  type: 'cli';
  /** The client's remux version: a daemon of another version declines, and the client runs the command itself. */
  version: string;
  args: string[];
  cwd: string;
  /** REMUX_*, RPIPE_*, HOME and XDG_CONFIG_HOME: what decides which files a command line means. */
  env: Record<string, string>;
  stdinIsTTY: boolean;
  stderrIsTTY: boolean;
  /** The client's stdin (a pipe or file) is offered to the command: stdin frames, sent as the daemon grants credit. */
  stdin?: boolean;
  columns?: number;
}

/** Largest request line the daemon accepts: a command line with its environment. */
export const MAX_REQUEST_BYTES = 1 << 20;

/**
 * `sessions-changed`: a CLI process changed a host's tmux sessions itself (attach runs in the client, as
 * does anything with --no-daemon): the daemon refreshes its cache of that host, then answers `done`.
 */
/**
 * `attach-slot`: a CLI process is about to attach (attach runs in the client): the daemon counts it in
 * the same limits as its browser terminals, as the principal of `token` (REMUX_TOKEN) or the socket's
 * owner, and answers `done` (held until the connection closes) or an error with the limit's words.
 */
/**
 * `mcp`: `remux mcp --stdio` hands its MCP session to the daemon. The daemon answers `done` (the
 * connection carries the client's MCP messages as they are from then on), `declined` (the client serves
 * the session itself) or an error (the principal was refused). With `pid` (its stdin and stdout are pipes
 * or sockets), the daemon may take them over: it answers `handoff` naming the process that takes them
 * (which the client allows to, PR_SET_PTRACER, then says `ready`), and then `done` with `handoff: true`
 * (it reads and writes the client's own stdin and stdout: the connection only says, with `ended`, that
 * the client closed its input) or plain `done` (the copying as before).
 */
export interface McpRequest {
  type: 'mcp';
  version: string;
  cwd: string;
  env: Record<string, string>;
  /** REMUX_TOKEN: the session acts as its principal; absent, as the socket's owner. */
  token?: string;
  /** --principal NAME: the token must be NAME's. */
  principal?: string;
  /** The client process, whose stdin and stdout the daemon may take over (see above). */
  pid?: number;
}

export type Request = CliRequest | McpRequest | { type: 'status' } | { type: 'stop' } | { type: 'sessions-changed'; host: string } | { type: 'attach-slot'; token?: string };

export type Event =
  | { type: 'status'; status: DaemonStatus }
  | { type: 'done'; handoff?: true }
  /** `mcp` with a pid: the process `ptracer` takes the client's stdin and stdout once it says `ready`. */
  | { type: 'handoff'; ptracer: number }
  /** `mcp` handed off: the client closed its input, and the session is over. */
  | { type: 'ended' }
  /** The daemon will not serve this request; the client does it itself. */
  | { type: 'declined'; reason: string }
  /** The request failed as a whole. */
  | { type: 'error'; message: string; exitCode: number };

/**
 * Frames after a `cli` request: one type byte, a 4-byte big-endian payload length, the payload.
 * Daemon to client: stdout and stderr bytes, a question for the user's terminal, the exit status, or
 * a refusal to serve (the client then runs the command itself). Client to daemon: Ctrl-C, an answer.
 * With `stdin: true` in the request, the client's stdin goes in `stdin` frames (at most 64 KiB each) and
 * ends with `stdin-end`, never more than the daemon granted in `stdin-credit` frames: the daemon grants
 * as the command reads (exec/input-credit.ts), so a command that never reads its stdin takes none.
 */
export const FRAME = {
  stdout: 0x6f, // 'o'
  stderr: 0x65, // 'e'
  question: 0x71, // 'q': payload is a 4-byte big-endian question id, then the prompt
  exit: 0x78, // 'x': payload is the exit status as a 4-byte big-endian integer
  decline: 0x64, // 'd': payload says why; nothing was run or printed
  interrupt: 0x69, // 'i': empty payload
  answer: 0x61, // 'a': payload is the question's id, then the line typed without its newline
  stdin: 0x73, // 's': client to daemon, bytes of the client's stdin
  stdinEnd: 0x6e, // 'n': client to daemon, the client's stdin ended; empty payload
  stdinCredit: 0x63, // 'c': daemon to client, a 4-byte big-endian count of stdin bytes the daemon takes more
} as const;

export const FRAME_HEADER_BYTES = 5;

export function frame(type: number, payload: string | Uint8Array = new Uint8Array(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  out[0] = type;
  out.writeUInt32BE(body.length, 1);
  out.set(body, FRAME_HEADER_BYTES);
  return out;
}

export function exitFrame(code: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeInt32BE(code);
  return frame(FRAME.exit, payload);
}

/**
 * Splits a byte stream into frames; a frame over `maxBytes` is an error, never buffered without bound. A
 * payload is a view of the bytes read (core/frames.ts): one to keep is owned() first.
 */
export class FrameReader {
  private readonly read = new ReadBuffer();
  constructor(
    private readonly onFrame: (type: number, payload: Buffer) => void,
    private readonly maxBytes: number,
  ) {}

  push(chunk: Buffer): void {
    this.read.push(chunk);
    while (this.read.length >= FRAME_HEADER_BYTES) {
      const length = this.read.peek(FRAME_HEADER_BYTES).readUInt32BE(1);
      if (length > this.maxBytes) throw new Error(`protocol frame of ${length} bytes is over the ${this.maxBytes} limit`);
      if (this.read.length < FRAME_HEADER_BYTES + length) return;
      const whole = this.read.take(FRAME_HEADER_BYTES + length);
      this.onFrame(whole[0] as number, whole.subarray(FRAME_HEADER_BYTES));
    }
  }
}

export interface DaemonStatus {
  pid: number;
  version: string;
  startedAt: string;
  uptimeSeconds: number;
  socket: string;
  auditDb: string;
  knownHosts: string;
  principal: string;
  /** The web console and API: where (and why it admits nobody, when the principals file is invalid), or why it is off. */
  http: { url: string; refusing?: string } | { off: string };
  hosts: HostStatus[];
  rateLimit: { ratePerSec: number; burst: number; buckets: Array<{ key: string; tokens: number }> };
  /** Commands running now (daemon.running_limit), by principal; absent from older daemons. */
  commands?: SlotsStatus;
  /** Terminal attaches open now (CLI and browser), by principal; absent from older daemons. */
  attaches?: SlotsStatus;
  /** The local host's long-lived OS sandboxes (src/exec/sandbox-pool.ts). */
  sandboxes: SandboxStatus[];
  memoryRssBytes: number;
  /** The config.yaml it read at start (file: where it looked) and its configDigest (null: there was none); absent from older daemons. */
  config?: { file: string; digest: string | null };
  /** Started in the background by `remux daemon start` (false: in the foreground, by a terminal or a service manager); absent from older daemons. */
  detached?: boolean;
  /** The options of `remux daemon start` it runs with, paths absolute: what `remux daemon restart` uses again; absent from older daemons. */
  startOptions?: DaemonStartOptions;
}

/** The options of `remux daemon start` that shape a daemon (the socket aside, which names it). */
export interface DaemonStartOptions {
  knownHosts?: string;
  auditLogDir?: string;
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** false with --no-tls. */
  tls?: boolean;
  insecureNoTls?: boolean;
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
  /** What the pooled connection's sandbox probe found (SSH hosts, agents); null when unknown. */
  sandbox: SandboxSupport | null;
  /** Agent hosts: since when connected, or since the last disconnect (ISO time). */
  since?: string | null;
}


/** Collects bytes up to the first newline: a connection's request line, or the answer to it. */
export class FirstLine {
  private buffer: Buffer = Buffer.alloc(0);
  constructor(private readonly maxBytes: number) {}

  /** The line (without its newline) and the bytes after it once the newline arrived, else null. */
  push(chunk: Buffer): { line: string; rest: Buffer } | null {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const nl = this.buffer.indexOf(0x0a);
    if (nl < 0) {
      if (this.buffer.length > this.maxBytes) throw new Error(`protocol line longer than ${this.maxBytes} bytes`);
      return null;
    }
    return { line: this.buffer.subarray(0, nl).toString('utf8'), rest: this.buffer.subarray(nl + 1) };
  }
}
