// The relay's wire protocol between the gateway and an outbound agent (`remux agent`): JSON text frames
// over one WebSocket the agent dials. Every frame received, on either side, is checked against these
// schemas; a frame that fails is a protocol error and closes the connection (never guessed at).
//
//   agent -> gateway  hello      first frame: who the agent is and what its host offers
//   gateway -> agent  registered the name is the agent's now (a second agent with it replaced the first)
//   gateway -> agent  exec | resolve | terminal       a request {id, ...}; ids are the gateway's, never reused
//   agent -> gateway  out {id, stream, data}          output, streamed; at most WINDOW bytes unacknowledged
//   gateway -> agent  credit {id, bytes}              the caller took `bytes` of output: send more
//   agent -> gateway  result | resolved | opened | exit | error {id}   the end of a request (opened: a terminal runs)
//   gateway -> agent  cancel {id}                     the caller went away or timed out: stop it
//   gateway -> agent  input | resize {id}             to a terminal
//   agent -> gateway  input-taken {id, bytes}         (protocol 3, when the terminal asked for it) its pty took
//                                                     `bytes` more of the input: the gateway holds its client
//                                                     back while much is untaken; past TERMINAL_INPUT_MAX_BYTES
//                                                     untaken the agent stops the terminal
//   gateway -> agent  stdin {id, data} | stdin-end {id}   a command's standard input (exec with stdin: true),
//   agent -> gateway  stdin-credit {id, bytes}            sent only as far as the agent granted (exec/input-credit.ts):
//                                                         it grants as the command reads, so a command that does not
//                                                         read holds the caller's input back
//   gateway -> agent  go {id}                         (protocol 4) an exec sent with hold: true may start. The gateway
//                                                     sends it while its own audit begin is still going to disk; the
//                                                     agent checks its policy and writes its own begin meanwhile, then
//                                                     waits for go: nothing runs before both begins are durable. A
//                                                     cancel instead (the gateway's begin failed, its caller went
//                                                     away), or no go within HOLD_TIMEOUT_MS: the agent runs nothing
//                                                     and records it as not run
//
// Liveness uses WebSocket ping/pong control frames (the gateway pings, with a deadline), not JSON frames.
// A request the agent never answered is never sent again after a reconnect: it fails on the gateway
// with "may have run".
//
//   gateway -> agent  file-resolve | file-read | file-write | file-list {id, ...}   the Host's file operations
//   agent -> gateway  file-done {id, ...} | file-error {id, message}               (the agent's own perform()
//                     checks its policy on each read, write and listing, as it does for commands)
// A read asks for at most FILE_CHUNK_BYTES, a listing holds at most FILE_LIST_FRAME_ENTRIES entries. A write
// carries at most FILE_CHUNK_BYTES in its frame; a longer one (protocol 2) says how many file-write-part
// frames of the rest follow it, and the agent writes the whole content, atomically, once they are all in.
import { z } from 'zod';
import { printable } from '../../command/invisible.js';
import { INPUT_CHUNK_BYTES, INPUT_WINDOW_BYTES } from '../../exec/input-credit.js';

/**
 * 2 added standard input (stdin, stdin-end, stdin-credit; exec.stdin), 3 input-taken, 4 exec.hold and go,
 * 5 exec.outside. The gateway accepts agents of MIN_PROTOCOL_VERSION and up and asks of each only what its
 * version offers.
 */
export const PROTOCOL_VERSION = 5;
export const MIN_PROTOCOL_VERSION = 1;
/**
 * Version 2: a command's standard input, writes longer than a frame (file-write-part), a session's
 * sandbox built by the agent from the one sent with remux's own tmux command, file-error.denied.
 */
export const PROTOCOL_V2 = 2;
/** Version 3: an agent reports the input its terminals took (terminal.inputTaken, input-taken). */
export const PROTOCOL_V3 = 3;
/** Version 4: an exec sent before the gateway's audit begin is durable waits on the agent for its go (exec.hold). */
export const PROTOCOL_V4 = 4;
/**
 * Version 5: an exec says which of its stages the gateway's policy lets out of its sandbox (exec.outside).
 * An older agent is not told, and runs every stage in the gateway's sandbox.
 */
export const PROTOCOL_V5 = 5;
/**
 * How long an agent holds a command for its go. The gateway sends it once its begin is on disk: within a
 * millisecond or so, at worst after its audit store's lock wait (10 s).
 */
export const HOLD_TIMEOUT_MS = 30_000;
/** The gateway's WebSocket route for agents. */
export const AGENT_PATH = '/agent/connect';
/** Largest frame either side sends or accepts (output is cut into chunks well below it). */
export const MAX_FRAME_BYTES = 1 << 20;
/** Output bytes (before base64) per `out` frame. */
export const CHUNK_BYTES = 64 << 10;
/** Output bytes in flight per request before the agent waits for credit: the caller's backpressure reaches the command. */
export const WINDOW_BYTES = 256 << 10;
/**
 * Input for a terminal that its session has not taken, past which the agent stops the terminal. A gateway
 * of protocol 3 stops reading its client at 1 MiB untaken (gateway/terminal.ts INPUT_FLOW), so it stays
 * well below this with the frames already on their way; one that does not hold back (older, or broken)
 * cannot fill the agent's memory either.
 */
export const TERMINAL_INPUT_MAX_BYTES = 4 << 20;
/** An agent reports input taken in steps of this much (typing sends none back until then). */
export const INPUT_TAKEN_STEP_BYTES = 64 << 10;
/** File bytes per read or write frame (base64 keeps the frame under MAX_FRAME_BYTES). */
export const FILE_CHUNK_BYTES = 512 << 10;
/** The most a write carries (perform-file's FILE_WRITE_MAX_BYTES), so the most parts that may follow its frame. */
export const FILE_WRITE_MAX_PARTS = (16 << 20) / FILE_CHUNK_BYTES - 1;
/** Entries per listing frame. */
export const FILE_LIST_FRAME_ENTRIES = 4000;
/** Close codes (4000-4999 are the application's). */
export const CLOSE = {
  /** Another connection registered the same name. */
  replaced: 4001,
  /** A frame that is too big, malformed, or out of order. */
  protocol: 4002,
  /** The pong deadline passed. */
  dead: 4003,
  /** The gateway is shutting down. */
  shutdown: 4004,
  /** The agent's token was rotated, or its host removed, in the gateway's hosts.yaml. */
  revoked: 4005,
} as const;

/** The longest command an exec carries; it holds fewer stages than characters (exec.outside's bound). */
const MAX_COMMAND_CHARS = 256 << 10;

const Id = z.number().int().positive();
const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');
const AbsPath = z.string().min(1).startsWith('/').refine((p) => !p.includes('\0'), 'NUL in path');

const SandboxSupport = z.strictObject({
  available: z.boolean(),
  detail: z.string().max(1000),
  warning: z.string().max(1000).optional(),
  staticFallback: z.boolean(),
});

export const SandboxSpecSchema = z.strictObject({
  read: z.array(AbsPath),
  write: z.array(AbsPath),
  hide: z.array(AbsPath),
  hideMatching: z.array(AbsPath).optional(),
  readOnly: z.array(AbsPath),
  network: z.boolean(),
  owner: z.string().min(1).max(200),
});

/**
 * What an agent words itself (a refusal, an error, its login name) is shown to the gateway's users and
 * written in its log: escapes and invisible characters made visible, so that an agent cannot drive their
 * terminal (OSC 52, CSI) or forge a line.
 */
const Words = (max: number, oneLine = false) => z.string().max(max).transform((text) => printable(text, oneLine));

const Answer = z.union([z.strictObject({ path: AbsPath }), z.strictObject({ error: Words(4096) })]);

// ---- agent -> gateway -------------------------------------------------------------------------

export const HelloSchema = z.strictObject({
  type: z.literal('hello'),
  v: z.number().int().min(MIN_PROTOCOL_VERSION).max(PROTOCOL_VERSION),
  name: z.string().min(1).max(64),
  /** The login user on the agent's machine: the default tmux user there. */
  user: Words(64, true).pipe(z.string().min(1)),
  home: AbsPath,
  /** Where the agent looks programs up: the gateway's placeholders for path questions use it. */
  securePath: z.string().max(4096),
  sandbox: SandboxSupport,
  version: Words(64, true),
});

const ExecResultSchema = z.strictObject({
  exitCode: z.number().int(),
  signal: z.string().max(16).nullable(),
  timedOut: z.boolean(),
  aborted: z.boolean(),
  truncated: z.boolean(),
  bytesOut: z.number().int().nonnegative(),
  bytesErr: z.number().int().nonnegative(),
  durationMs: z.number().nonnegative(),
  error: Words(8192).nullable(),
  errorKind: z.enum(['not_found', 'not_executable', 'spawn', 'redirect', 'sandbox', 'cwd', 'invalid', 'sandbox_unavailable']).nullable(),
});

export const AgentFrameSchema = z.discriminatedUnion('type', [
  HelloSchema,
  z.strictObject({ type: z.literal('out'), id: Id, stream: z.enum(['stdout', 'stderr', 'pty']), data: Base64 }),
  z.strictObject({ type: z.literal('result'), id: Id, result: ExecResultSchema }),
  z.strictObject({ type: z.literal('resolved'), id: Id, paths: z.array(Answer), names: z.array(Answer.nullable()) }),
  z.strictObject({ type: z.literal('opened'), id: Id }),
  z.strictObject({ type: z.literal('exit'), id: Id, code: z.number().int().nullable(), signal: z.string().max(16).nullable() }),
  z.strictObject({ type: z.literal('error'), id: Id, message: Words(8192) }),
  /** The command wants `bytes` more of its standard input. */
  z.strictObject({ type: z.literal('stdin-credit'), id: Id, bytes: z.number().int().positive().max(INPUT_WINDOW_BYTES) }),
  /** Protocol 3: the terminal's pty took `bytes` more of its input. */
  z.strictObject({ type: z.literal('input-taken'), id: Id, bytes: z.number().int().positive() }),
  z.strictObject({
    type: z.literal('file-done'),
    id: Id,
    resolved: z.array(z.union([z.strictObject({ real: AbsPath, finalLink: z.boolean() }), z.strictObject({ error: Words(4096) })])).max(4096).optional(),
    content: Base64.optional(),
    size: z.number().int().nonnegative().optional(),
    created: z.boolean().optional(),
    entries: z
      .array(z.strictObject({ name: z.string().min(1).max(4096), type: z.enum(['file', 'directory', 'symlink', 'other']), size: z.number().nonnegative(), mode: z.number().int().nonnegative(), mtimeMs: z.number() }))
      .max(FILE_LIST_FRAME_ENTRIES)
      .optional(),
    truncated: z.boolean().optional(),
  }),
  /** The file operation failed there (missing, not a regular file, a symlink met, or the agent's own policy said no). */
  /** denied (protocol 2): the agent's own policy refused it, rather than the operation failing. */
  z.strictObject({ type: z.literal('file-error'), id: Id, message: Words(8192), denied: z.boolean().optional() }),
]);

// ---- gateway -> agent -------------------------------------------------------------------------

export const GatewayFrameSchema = z.discriminatedUnion('type', [
  /** pingIntervalMs: the agent takes a gateway that stops pinging for much longer than this as gone. */
  z.strictObject({ type: z.literal('registered'), name: z.string(), pingIntervalMs: z.number().positive() }),
  z.strictObject({
    type: z.literal('exec'),
    id: Id,
    /** The gateway's parsed command rendered back to sh syntax; the agent parses it again with its own strict parser. */
    command: z.string().min(1).max(MAX_COMMAND_CHARS),
    cwd: AbsPath,
    timeoutMs: z.number().int().positive().nullable(),
    pipefail: z.boolean(),
    /**
     * The sandbox the gateway's policy asks for; the agent runs in the intersection with its own. With
     * `own` (protocol 2): the sandbox of a new session's startup command, which the agent builds there.
     */
    sandbox: SandboxSpecSchema.nullable(),
    /** The gateway's policy, for messages. */
    policy: z.string().max(200).nullable(),
    /**
     * remux's own command (a tmux command of the session layer, the host check's `true`), not a principal's:
     * the agent accepts only those shapes (agent/own.ts) instead of running it through its policy.
     */
    own: z.boolean(),
    /** Standard input follows in stdin frames (protocol 2); absent or false: the command reads /dev/null. */
    stdin: z.boolean().optional(),
    /** Protocol 4: check and record it, then start it only on its go frame. */
    hold: z.boolean().optional(),
    /**
     * Protocol 5, with a sandbox: the stages (0-based, counted across the command as the agent parses it)
     * that the gateway's policy runs outside it (rules with sandbox: false). The agent lets a stage out
     * only where its own policy does too (agent/serve.ts); absent: none.
     */
    outside: z.array(z.number().int().nonnegative().lt(MAX_COMMAND_CHARS)).max(MAX_COMMAND_CHARS).optional(),
  }),
  z.strictObject({ type: z.literal('go'), id: Id }),
  z.strictObject({ type: z.literal('resolve'), id: Id, paths: z.array(AbsPath).max(4096), names: z.array(z.string().min(1).max(255)).max(4096) }),
  z.strictObject({
    type: z.literal('terminal'),
    id: Id,
    argv: z.array(z.string().max(4096)).min(1).max(64),
    cols: z.number().int().min(1).max(1000),
    rows: z.number().int().min(1).max(1000),
    /** Protocol 3: report the input its pty takes, in input-taken frames. */
    inputTaken: z.boolean().optional(),
  }),
  z.strictObject({ type: z.literal('input'), id: Id, data: Base64 }),
  z.strictObject({ type: z.literal('resize'), id: Id, cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) }),
  z.strictObject({ type: z.literal('credit'), id: Id, bytes: z.number().int().positive() }),
  z.strictObject({ type: z.literal('stdin'), id: Id, data: Base64.max(Math.ceil(INPUT_CHUNK_BYTES / 3) * 4) }),
  z.strictObject({ type: z.literal('stdin-end'), id: Id }),
  z.strictObject({ type: z.literal('cancel'), id: Id }),
  z.strictObject({ type: z.literal('file-resolve'), id: Id, paths: z.array(AbsPath).min(1).max(4096) }),
  z.strictObject({ type: z.literal('file-read'), id: Id, path: AbsPath, offset: z.number().int().nonnegative(), length: z.number().int().positive().max(FILE_CHUNK_BYTES) }),
  z.strictObject({
    type: z.literal('file-write'),
    id: Id,
    path: AbsPath,
    content: Base64.max(Math.ceil(FILE_CHUNK_BYTES / 3) * 4),
    createDirs: z.boolean(),
    /** Protocol 2: this many file-write-part frames with the rest of the content follow. */
    more: z.number().int().min(1).max(FILE_WRITE_MAX_PARTS).optional(),
  }),
  z.strictObject({ type: z.literal('file-write-part'), id: Id, content: Base64.max(Math.ceil(FILE_CHUNK_BYTES / 3) * 4) }),
  z.strictObject({ type: z.literal('file-list'), id: Id, path: AbsPath }),
]);

export type Hello = z.infer<typeof HelloSchema>;
export type AgentFrame = z.infer<typeof AgentFrameSchema>;
export type GatewayFrame = z.infer<typeof GatewayFrameSchema>;
export type ExecFrame = Extract<GatewayFrame, { type: 'exec' }>;
export type RelayAnswer = z.infer<typeof Answer>;
export type FileFrame = Extract<GatewayFrame, { type: 'file-resolve' | 'file-read' | 'file-write' | 'file-list' }>;
export type FileDone = Extract<AgentFrame, { type: 'file-done' }>;

/** Parses one received frame, or says what is wrong with it (size, JSON, or the first schema issue). */
/** A frame that failed: why, and `brief`, a wording of it short enough for a close reason (the message may quote the frame). */
export type FrameError = { ok: false; error: string; brief: string };

export function parseFrame<T>(schema: z.ZodType<T>, raw: Buffer | string, maxBytes = MAX_FRAME_BYTES): { ok: true; frame: T } | FrameError {
  const size = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
  if (size > maxBytes) return { ok: false, error: `frame of ${size} bytes is over the limit of ${maxBytes}`, brief: 'frame over the size limit' };
  let value: unknown;
  try {
    value = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch {
    return { ok: false, error: 'frame is not JSON', brief: 'frame is not JSON' };
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, frame: parsed.data };
  const issue = parsed.error.issues[0];
  const at = issue ? ` at ${issue.path.join('.') || '(top)'}` : '';
  return { ok: false, error: `bad frame${issue ? `${at}: ${issue.message}` : ''}`, brief: `bad frame${at}${issue ? ` (${issue.code})` : ''}` };
}

/** A binary frame, which the protocol has none of. */
export const BINARY_FRAME: FrameError = { ok: false, error: 'binary frames are not part of the protocol', brief: 'binary frame' };
