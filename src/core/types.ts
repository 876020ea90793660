// The one door's vocabulary: who asks (Principal), what they ask (Action), and what came of it.
import { isUtf8 } from 'node:buffer';
import type { OutputFlow } from '../exec/types.js';
import type { Decision } from '../policy/types.js';
import type { AttachStream } from '../sessions/attach.js';
import type { HostSessions } from '../sessions/service.js';
import type { SendItem } from '../sessions/tmux.js';
import type { DirEntry } from '../hosts/types.js';

export interface Principal {
  /** Stable name recorded in the audit trail: "cli:alice" for the local user, else the configured name ("ci-bot"). */
  name: string;
  /** How the principal proved who it is. */
  via: 'cli' | 'token' | 'cookie' | 'mcp' | 'agent';
  /** What it may touch (core/scope.ts checks every action against it). */
  scope: Scope;
}

/** A principal's reach. Admins reach everything; for the others each field is an allowlist (fail closed). */
export interface Scope {
  admin: boolean;
  /** Host selector (hosts.yaml syntax: names, globs, labels, all); the local host only by its own name. */
  hosts: string;
  /** tmux users whose sessions it may list and attach to; "*" is any user. */
  users: readonly string[];
  /** tmux users it may create sessions as ("*" any); each must also be in `users`. */
  createAs: readonly string[];
  attach: 'interactive' | 'read-only';
  /** Policies its commands may run under; the first is its default. Empty: the configured default policy only. */
  policies: readonly string[];
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

/**
 * The tmux session actions. Each names everything principal scope is checked on: the host, the tmux
 * user (absent: the host's login user, resolved by perform before anything else looks at it) and the
 * session. Their tmux commands are remux's own fixed argv; only a startup command is the principal's,
 * and it goes through the policy like `client run`.
 */
interface SessionActionBase {
  host: string;
  tmuxUser?: string;
}

/** One host's sessions per tmux user, from the inventory cache (`fresh`: ask the host now). */
export interface SessionListAction extends SessionActionBase {
  kind: 'session.list';
  fresh?: boolean;
}

export interface SessionNewAction extends SessionActionBase {
  kind: 'session.new';
  session: string;
  /** Startup command, checked against the policy; absent: the user's shell. */
  command?: string;
  policy?: string;
  /** The caller's working directory: where a session on the local host starts. */
  callerCwd?: string;
}

export interface SessionKillAction extends SessionActionBase {
  kind: 'session.kill';
  session: string;
}

export interface SessionCaptureAction extends SessionActionBase {
  kind: 'session.capture';
  session: string;
  /** The last N lines of history and pane; absent: the visible pane. */
  lines?: number;
}

export interface SessionSendAction extends SessionActionBase {
  kind: 'session.send';
  session: string;
  items: SendItem[];
}

export interface SessionAttachAction extends SessionActionBase {
  kind: 'session.attach';
  session: string;
  /** tmux attach -r: the client can watch, not type. */
  readOnly: boolean;
  cols: number;
  rows: number;
  /** Read-only only: the terminal takes the session's size and follows it, not cols x rows (the console's watch). */
  followSize?: boolean;
  /** The recording this attach is written to, named in its audit record. */
  recording?: string;
}

export type SessionAction = SessionListAction | SessionNewAction | SessionKillAction | SessionCaptureAction | SessionSendAction | SessionAttachAction;

/**
 * File actions (core/perform-file.ts). `path` is absolute; the policy is checked against it as resolved
 * on the host (symlinks followed there), and the host opens exactly that path, meeting no symlink.
 */
export interface FileReadAction {
  kind: 'file.read';
  host: string;
  path: string;
  /** First byte to read (default 0). */
  offset?: number;
  /** Bytes to read from offset (default: to the end); more than maxBytes is cut, with `truncated`. */
  length?: number;
  /** The output cap of this read (default FILE_READ_DEFAULT_BYTES, at most FILE_READ_MAX_BYTES). */
  maxBytes?: number;
  /** Only the first this many lines, as `head -n` (lines end at \n bytes); not with offset, length or tail. */
  head?: number;
  /** Only the last this many lines, as `tail -n` (a final \n ends the last line); not with offset, length or head. */
  tail?: number;
  policy?: string;
}

export interface FileWriteAction {
  kind: 'file.write';
  host: string;
  path: string;
  /** The whole new content (strings as UTF-8): written to a temporary file beside the target, then renamed over it. */
  content: Buffer | string;
  /** Create missing parent directories: those of the checked (resolved) path, each made without following a symlink. */
  createDirs?: boolean;
  policy?: string;
}

/** One replacement of an edit: `oldText` must occur exactly once in the text as the edits before it left it. */
export interface TextEdit {
  oldText: string;
  newText: string;
}

/**
 * Replacements in a UTF-8 text file, applied in order, then the file replaced atomically as a write is
 * (its mode kept): the rest of the file stays as it is, including what the policy's redaction hides
 * from the caller. Checked as write_file and read_file of the path (the diff shows what it held).
 */
export interface FileEditAction {
  kind: 'file.edit';
  host: string;
  path: string;
  edits: TextEdit[];
  /** Only check and diff: nothing is written. */
  dryRun?: boolean;
  policy?: string;
}

export interface FileListAction {
  kind: 'file.list';
  host: string;
  path: string;
  policy?: string;
}

export type FileAction = FileReadAction | FileWriteAction | FileEditAction | FileListAction;

/**
 * The AI coding-agent sessions of `remux code` (agents/), on host `agents`: start, restart, kill, and
 * remove an ended one (`code rm`). What starts is remux's own launch of the program the user named,
 * bounded by the agent's sandbox (srt, docker, or none, said in the audit), not by a policy; the context
 * carries them out (PerformContext.agents).
 */
export interface AgentAction {
  kind: 'agent.start' | 'agent.restart' | 'agent.kill' | 'agent.remove';
  host: string;
  /** The agent session's id. */
  session: string;
  workspace: string;
  /** The agent: claude, codex, … or the command given. */
  agent: string;
  sandbox: 'srt' | 'docker' | 'none';
  /** What the action does, in words (the audit record's reason). */
  detail: string;
}

/**
 * Reading the agent sessions' records (host `agents`): the list (`code ls`, `code status`, finding a
 * session by its reference) and a session's screen or saved scrollback (`code logs`). A principal that
 * only watches may read them.
 */
export interface AgentReadAction {
  kind: 'agent.list' | 'agent.logs';
  host: string;
  /** agent.logs, and a lookup: the session as referred to (an id, its prefix or a name). */
  session?: string;
  /** What the reading is for, in words (the audit record's reason). */
  detail: string;
}

export type Action = ExecAction | ProbeAction | SessionAction | FileAction | AgentAction | AgentReadAction;

/** What an approver is asked about: a command, or a file action (describeAction() says it in words). */
export type ApprovalSubject = ExecAction | FileAction;

/** A text in an approval's question: on one line, at most 60 characters. */
function quoted(text: string): string {
  const line = JSON.stringify(text);
  return line.length > 62 ? `${line.slice(0, 60)}…"` : line;
}

/**
 * The action in words, for an approval's question: `run \`cmd\``, `write_file /path (12 bytes): "its start…"`,
 * what an edit replaces with what. `redact` hides the secrets of what it quotes (a question sent to a push
 * service is redacted as the audit trail is; the caller's own terminal needs not).
 */
export function approvalText(subject: ApprovalSubject, redact: (text: string) => string = (t) => t): string {
  switch (subject.kind) {
    case 'exec':
      return `run \`${redact(subject.command)}\``;
    case 'file.read':
      return `read_file ${subject.path}`;
    case 'file.write': {
      // Its start, so that an approver judges the content and not only the file (binary content: its size alone).
      const content = typeof subject.content === 'string' ? subject.content : isUtf8(subject.content) ? subject.content.toString('utf8') : null;
      const bytes = typeof subject.content === 'string' ? Buffer.byteLength(subject.content) : subject.content.length;
      return `write_file ${subject.path} (${bytes} bytes)${content === null || content === '' ? '' : `: ${quoted(redact(content))}`}`;
    }
    case 'file.edit': {
      // What changes, so that an approver judges the edit and not only the file: the first few, each cut short.
      const [first, second] = subject.edits.map((e) => `${quoted(redact(e.oldText))} with ${quoted(redact(e.newText))}`);
      const more = subject.edits.length > 2 ? ` and ${subject.edits.length - 2} more` : '';
      return `edit_file ${subject.path}: replace ${first}${second === undefined ? '' : `; ${second}`}${more}`;
    }
    case 'file.list':
      return `list_directory ${subject.path}`;
  }
}

type ApprovalEffect = 'allow' | 'deny' | 'expired' | 'cancelled';

/**
 * What an approver (TTY prompt, phone, web) answers when a decision is `ask`. Expired (nobody answered
 * in time) and cancelled (the caller went away first) are never allow. An answer says what it knows of
 * who gave it (the approvals' principal), through what ("terminal", "cli", "web", "link", "ntfy") and
 * which approval, so the action's audit record and a refusal name them.
 */
export type ApprovalAnswer = ApprovalEffect | { effect: ApprovalEffect; by?: string; via?: string; approval?: string };

export interface PerformIO {
  onStdout(chunk: Buffer): void;
  onStderr(chunk: Buffer): void;
  /** Backpressure from whoever reads the output: the command is not read while it is full. */
  flow?: OutputFlow;
  signal?: AbortSignal;
  stdin?: NodeJS.ReadableStream | null;
  /** Asked when policy says `ask`; absent = no approver reachable, which denies. */
  approve?(action: ApprovalSubject, decision: Decision): Promise<ApprovalAnswer>;
}

/** `truncated`: the command ran and its output reached a cap (the message names it), so it was stopped. */
export type Outcome = 'ok' | 'failed' | 'truncated' | 'denied' | 'rejected' | 'rate_limited' | 'unreachable' | 'error';

/** Why an action was stopped whose caller stopped reading its output (`remux client run … | head -1`). */
export class OutputClosed extends Error {
  constructor() {
    super('stopped: the output was closed before the command ended (its reader went away, as `| head` does)');
    this.name = 'OutputClosed';
  }
}

/**
 * The reason a caller aborts PerformIO.signal with when the command's stdin failed (a read error, an SDK
 * input that threw): its audit record ends with this message as its error, not as a bare interruption.
 */
export class InputFailed extends Error {
  constructor(message: string) {
    super(message);
    // Shown as the plain Error it was before it had a class of its own.
    this.name = 'Error';
  }
}

/**
 * The reason a caller aborts PerformIO.signal with when an output cap of its own (the MCP per-call cap)
 * stopped the command: reported and audited as truncated at that cap, not as an interruption.
 */
export class OutputCapReached extends Error {
  /** `cap` names it: "the MCP per-call cap of 65536 bytes per stream". */
  constructor(cap: string) {
    super(`${cap} was reached; the command was stopped`);
    this.name = 'OutputCapReached';
  }
}

export interface PerformResult {
  /** Audit action id (null only if the audit store itself failed, in which case nothing ran). */
  actionId: number | null;
  outcome: Outcome;
  exitCode: number;
  decision: Decision | null;
  /** Why it was refused, failed or was truncated, in words; null when the command ran and succeeded. */
  message: string | null;
  durationMs: number;
  bytesOut: number;
  truncated: boolean;
  timedOut: boolean;
  /** exec: the signal that ended the command (exitCode is then 128 + its number), or null. */
  signal?: NodeJS.Signals | null;
  /** session.list: the host's sessions per tmux user. */
  sessions?: HostSessions;
  /** session.attach: the live attach; its audit record is completed when it exits. */
  attach?: AttachStream;
  /** File actions: the path acted on, as resolved on the host. */
  path?: string;
  /** file.read: the bytes read (bytesOut counts them; `truncated` when the cap cut the read short). */
  content?: Buffer;
  /** file.read: the file's whole size. */
  size?: number;
  /** file.read: where in the file the content starts (bytes). */
  offset?: number;
  /** file.read cut by its cap (not a tail): the offset to read on from (redaction may change the content's length). */
  nextOffset?: number;
  /** file.read by head or tail: how many lines the content holds (a last one without its \n counts). */
  lines?: number;
  /** file.read by head or tail: the number of its first line; null when a tail did not read back to the file's start. */
  firstLine?: number | null;
  /** file.write: bytes written (also bytesOut); `created` when the file did not exist before. */
  bytes?: number;
  created?: boolean;
  /** file.edit: whether the edits change the file, and their unified diff, redacted as the policy redacts output. */
  changed?: boolean;
  diff?: string;
  /** file.list: the directory's entries, by name (`truncated` when there were more than the cap). */
  entries?: DirEntry[];
}
