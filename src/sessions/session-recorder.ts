// Whole-session recordings (`sessions.record: sessions`): every session remux creates is recorded by the
// daemon from its creation to its end, whether or not anyone is attached. One tmux control-mode client
// per session, read-only and ignoring size (so it never shrinks the session or types into it), runs on
// the session's host through the host's own transport (Host.openTerminal: node-pty here, an SSH channel
// there) with remux's fixed argv. Its `%output %PANE DATA` lines (DATA octal-escaped by tmux) become
// asciicast v2 output events, `%layout-change` a resize; `%exit` (the session ended) ends the recording.
//
// The recording starts with the screen as it was (capture-pane), so what a startup command printed before
// the client attached is not lost. The control client itself is asked for it: its answer comes in order
// with the pane's %output, so output before the answer is in the screen and output after it is recorded,
// none lost between a separate capture and the client's attach, none twice. A session of several panes or windows has their output interleaved,
// as tmux sends it. Each recording is its own audit action, `session.record` (as the principal that
// created the session, with the recording id), begun before the client runs and ended with it.
import { performance } from 'node:perf_hooks';
import type { AuditStore } from '../audit/store.js';
import type { HostRegistry } from '../hosts/registry.js';
import type { HostTerminal } from '../hosts/types.js';
import { AttachRecorder, newRecordingId } from './recording.js';
import { recordingRoom } from './retention.js';
import type { Sessions, SessionRecorderHook } from './service.js';
import { paneTarget, sessionTarget, tmuxArgv, type TmuxTarget } from './tmux.js';

/** The session's size and cursor, then its screen: two commands, written to the control client. */
const SCREEN_FORMAT = '#{window_width}x#{window_height}:#{cursor_x}:#{cursor_y}';
/** The one input the recorder gives its control client (an agent passes on this and nothing else). */
export const screenCommands = (session: string): string =>
  `display-message -p -t '${paneTarget(session)}' '${SCREEN_FORMAT}'\ncapture-pane -p -e -t '${paneTarget(session)}'\n`;
/** How long the control client may take to attach and answer (a loaded host, an SSH round trip). */
const SCREEN_TIMEOUT_MS = 15_000;

/** The control client's argv: read-only, never resizing the session (tmux 3.2+ `-f ignore-size`). */
export function recorderArgv(target: TmuxTarget, name: string): string[] {
  return tmuxArgv(target, ['-C', 'attach-session', '-r', '-f', 'ignore-size', '-t', sessionTarget(name)]);
}

/** tmux's control-mode escaping undone: `\ooo` (three octal digits) is that byte, anything else as is. */
export function unescapeOutput(data: Buffer): Buffer {
  const out = Buffer.alloc(data.length);
  let n = 0;
  const octal = (b: number | undefined): boolean => b !== undefined && b >= 0x30 && b <= 0x37;
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    if (b === 0x5c && octal(data[i + 1]) && octal(data[i + 2]) && octal(data[i + 3])) {
      out[n++] = ((data[i + 1]! - 0x30) << 6) | ((data[i + 2]! - 0x30) << 3) | (data[i + 3]! - 0x30);
      i += 3;
    } else out[n++] = b;
  }
  return out.subarray(0, n);
}

/** What one line of control-mode output means to a recording. */
export type ControlLine =
  | { kind: 'output'; data: Buffer }
  | { kind: 'size'; cols: number; rows: number }
  | { kind: 'exit' }
  /** A command's answer, its lines; `own`: this client sent it (flags 1; else the attach itself); `error`: it failed. */
  | { kind: 'reply'; lines: string[]; error: boolean; own: boolean }
  /** The client is attached (`%session-changed`): from now on it gets the session's output. */
  | { kind: 'attached' }
  | { kind: 'other' };

const OUTPUT = Buffer.from('%output %');
const LAYOUT = /^%layout-change @\d+ [0-9a-f]+,(\d+)x(\d+),/;

/**
 * Reads control-mode lines (a terminal adds `\r` before each `\n`; tmux escapes every `\r` and `\n` of
 * the data, so a trailing one is the terminal's). Lines between %begin and %end/%error are a command's
 * answer, never notifications, whatever they look like.
 */
export class ControlParser {
  private pending = Buffer.alloc(0);
  /** Inside %begin … %end: the answer's lines so far, and whether this client sent the command. */
  private block: { lines: string[]; own: boolean } | null = null;

  push(chunk: Buffer): ControlLine[] {
    const lines: ControlLine[] = [];
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    for (let nl = buf.indexOf(0x0a); nl !== -1; nl = buf.indexOf(0x0a)) {
      let end = nl;
      while (end > 0 && buf[end - 1] === 0x0d) end--;
      lines.push(this.line(buf.subarray(0, end)));
      buf = buf.subarray(nl + 1);
    }
    this.pending = Buffer.from(buf);
    return lines;
  }

  private line(line: Buffer): ControlLine {
    const text = line.subarray(0, 64).toString('latin1');
    if (this.block) {
      const end = /^%(end|error) \S+ \S+/.exec(text);
      if (!end) {
        this.block.lines.push(line.toString('utf8'));
        return { kind: 'other' };
      }
      const { lines, own } = this.block;
      this.block = null;
      return { kind: 'reply', lines, error: end[1] === 'error', own };
    }
    if (text.startsWith('%begin ')) {
      // `%begin TIME NUMBER FLAGS`: flags 1 when this client sent the command (not the attach's own).
      this.block = { lines: [], own: text.split(' ')[3] === '1' };
      return { kind: 'other' };
    }
    if (line.subarray(0, OUTPUT.length).equals(OUTPUT)) {
      const space = line.indexOf(0x20, OUTPUT.length);
      return space === -1 ? { kind: 'other' } : { kind: 'output', data: unescapeOutput(line.subarray(space + 1)) };
    }
    const layout = LAYOUT.exec(text);
    if (layout) return { kind: 'size', cols: Number(layout[1]), rows: Number(layout[2]) };
    if (text === '%exit' || text.startsWith('%exit ')) return { kind: 'exit' };
    if (text.startsWith('%session-changed ')) return { kind: 'attached' };
    return { kind: 'other' };
  }
}

interface Running {
  id: string;
  terminal: HostTerminal;
  /** Settles once the recording is written and its audit action ended. */
  done: Promise<void>;
}

export interface SessionRecordingsDeps {
  sessions: Sessions;
  registry: HostRegistry;
  audit: AuditStore;
  /** $REMUX_HOME/recordings */
  dir: string;
  /** sessions.recordings_max_total_mb: a recording stops where the recordings together would pass it. */
  maxTotalMb: number | null;
  log?: (line: string) => void;
}

/** The daemon's session recorders: started when remux creates a session, ended with it or the daemon. */
export class SessionRecordings implements SessionRecorderHook {
  private readonly running = new Map<string, Running>();
  private stopping = false;

  constructor(private readonly deps: SessionRecordingsDeps) {}

  recordingOf(host: string, user: string, session: string): string | null {
    return this.running.get(key(host, user, session))?.id ?? null;
  }

  /**
   * Starts recording a session just created by `principal`; resolves once the control client runs (or
   * failed: then its audit action says why). Never rejects: a recording that cannot start does not undo
   * the session.
   */
  async created(host: string, target: TmuxTarget, session: string, principal: string): Promise<void> {
    const k = key(host, target.user, session);
    if (this.stopping || this.running.has(k)) return;
    const id = newRecordingId();
    const started = performance.now();
    let actionId: number;
    try {
      actionId = await this.deps.audit.begin({
        principal,
        host,
        operation: 'session.record',
        resource: `${target.user}@${host}:${session}`,
        decision: 'allow',
        reason: 'sessions.record is sessions: remux records every session it creates, from its creation to its end',
        recording: id,
      });
    } catch (err) {
      this.deps.log?.(`cannot record session ${session} on ${host}: the audit store refused: ${(err as Error).message}`);
      return;
    }
    let recorder: AttachRecorder | null = null;
    let terminal: HostTerminal | null = null;
    try {
      await this.deps.registry.prepare([host]);
      // Its own size does not matter (ignore-size): the screen's answer says the session's.
      terminal = await this.deps.registry.host(host).openTerminal(recorderArgv(target, session), { cols: 80, rows: 24 });
      const feed = new ControlFeed(terminal);
      const screen = await feed.screen(session);
      recorder = new AttachRecorder(
        this.deps.dir,
        { host, user: target.user, session, principal, readOnly: true, actionId, kind: 'session' },
        { cols: screen.cols, rows: screen.rows },
        recordingRoom(this.deps.dir, this.deps.maxTotalMb),
        id,
      );
      recorder.output(screen.frame);
      const done = this.follow(terminal, feed, recorder, screen, actionId, started).finally(() => {
        if (this.running.get(k)?.id === id) this.running.delete(k);
      });
      this.running.set(k, { id, terminal, done });
    } catch (err) {
      terminal?.kill();
      recorder?.end();
      await this.deps.audit
        .end(actionId, { exitCode: null, durationMs: performance.now() - started, error: `the recording could not start: ${(err as Error).message}` })
        .catch(() => undefined);
    }
  }

  /** Ends every recording (the daemon stops): their files closed, their audit actions ended. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    const all = [...this.running.values()];
    for (const r of all) r.terminal.kill();
    await Promise.all(all.map((r) => r.done));
  }

  private async follow(terminal: HostTerminal, feed: ControlFeed, recorder: AttachRecorder, screen: { cols: number; rows: number }, actionId: number, started: number): Promise<void> {
    let size = `${screen.cols}x${screen.rows}`;
    let sawExit = false;
    feed.onLines((lines) => {
      for (const line of lines) {
        if (line.kind === 'output') recorder.output(line.data);
        else if (line.kind === 'size' && `${line.cols}x${line.rows}` !== size) {
          size = `${line.cols}x${line.rows}`;
          recorder.resize(line.cols, line.rows);
        } else if (line.kind === 'exit') sawExit = true;
      }
      // Past its size limit the recording has stopped: the client has nothing left to do.
      if (recorder.stopped) terminal.kill();
    });
    const exit = await terminal.exited;
    const truncated = recorder.stopped;
    recorder.end();
    // Ended with the session, at the size limit, or by the daemon stopping (its signal shows): as meant.
    // Anything else (the SSH connection dropped, tmux died) is an error: the session may go on unrecorded.
    const error = sawExit || truncated || this.stopping ? null : 'the control client ended before the session did';
    await this.deps.audit
      .end(actionId, { exitCode: exit.code, signal: exit.signal, durationMs: performance.now() - started, bytesOut: recorder.bytesWritten, truncated, error })
      .catch((err: unknown) => this.deps.log?.(`cannot end the audit action ${actionId} of recording ${recorder.id}: ${(err as Error).message}`));
  }
}

/**
 * The control client's lines, first to screen() and then to the recording (onLines): one reader of the
 * terminal, so no line falls between the two.
 */
class ControlFeed {
  private readonly parser = new ControlParser();
  private queued: ControlLine[] = [];
  private listener: ((lines: ControlLine[]) => void) | null = null;
  /** While screen() waits: takes each line; true once it has what it waited for. */
  private taker: ((line: ControlLine) => boolean) | null = null;

  constructor(private readonly terminal: HostTerminal) {
    terminal.onData((chunk) => {
      const lines = this.parser.push(chunk);
      let from = 0;
      while (this.taker && from < lines.length) if (this.taker(lines[from++]!)) this.taker = null;
      const rest = lines.slice(from);
      if (this.listener) this.listener(rest);
      else this.queued.push(...rest);
    });
  }

  /**
   * Once the client is attached, asks it for the session's size, cursor and screen; the pane's output
   * that came before the answer is in that screen, so it is dropped here.
   */
  screen(session: string): Promise<{ cols: number; rows: number; frame: Buffer }> {
    return new Promise((resolve, reject) => {
      const replies: Array<{ lines: string[]; error: boolean }> = [];
      const fail = (why: string): void => {
        clearTimeout(timer);
        this.taker = null;
        reject(new Error(why));
      };
      const timer = setTimeout(() => fail(`the control client gave no screen within ${SCREEN_TIMEOUT_MS / 1000} s`), SCREEN_TIMEOUT_MS);
      void this.terminal.exited.then(() => fail('the control client ended before it gave the screen'));
      this.taker = (line) => {
        if (line.kind === 'attached' && replies.length === 0) this.terminal.write(screenCommands(session));
        else if (line.kind === 'exit') fail('the session ended before the recording began');
        else if (line.kind === 'reply' && line.own) replies.push(line);
        // The attach itself failed (no such session): tmux says why.
        else if (line.kind === 'reply' && line.error) fail(`tmux: ${line.lines.join(' ').trim()}`);
        if (replies.length < 2) return false;
        clearTimeout(timer);
        const [size, screen] = replies as [{ lines: string[]; error: boolean }, { lines: string[]; error: boolean }];
        const m = /^(\d+)x(\d+):(\d+):(\d+)$/.exec(size.lines[0] ?? '');
        if (size.error || screen.error || !m) fail(`tmux could not give the screen: ${[...size.lines, ...screen.lines].join(' ').trim() || 'no answer'}`);
        else resolve({ cols: Number(m[1]), rows: Number(m[2]), frame: Buffer.from(`\x1b[H\x1b[2J${screen.lines.join('\r\n')}\x1b[${Number(m[4]) + 1};${Number(m[3]) + 1}H`) });
        return true;
      };
    });
  }

  /** Every line from now on (those that came after the screen first). */
  onLines(listener: (lines: ControlLine[]) => void): void {
    this.listener = listener;
    const queued = this.queued;
    this.queued = [];
    if (queued.length > 0) listener(queued);
  }
}

function key(host: string, user: string, session: string): string {
  return JSON.stringify([host, user, session]);
}
