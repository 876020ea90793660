// The one attach primitive: `tmux attach-session -t =NAME [-r]` in a pseudo-terminal on the session's
// host (node-pty locally, an SSH exec channel with a pty remotely), as a stream any front end drives:
// the CLI's raw terminal now, the browser's WebSocket terminal later.
//
// - Backpressure is real: pause() stops reading the pty (locally) or the channel (SSH: its window is
//   not re-opened, so at most ssh2's 2 MiB window and 2 MiB read buffer wait), so the tmux client
//   blocks and a flood never piles up in our memory.
// - Sizes are clamped; a lifetime limit ends the attach; close() resolves once the tmux client (its
//   process group locally, the channel's pty remotely) is gone, paused or not. Every end is reported
//   once, with why.
// - A watch may take its session's size, and follow it, instead of its client's: tmux sizes a window to
//   its interactive clients, and a watcher sized otherwise (a phone) sees it clipped, or, alone with
//   the session, resizes it.
import type { Host, HostTerminal } from '../hosts/types.js';
import { clampSize, type TerminalSize } from './terminal-size.js';
import { attachArgv, type TmuxTarget } from './tmux.js';

/** How often a watch that follows its session asks for the session's size (one tmux command each). */
export const FOLLOW_SIZE_MS = 2000;

/** Why an attach ended: tmux exited (detach, session killed), close() was called, or the lifetime ran out. */
export type AttachEndReason = 'exited' | 'closed' | 'lifetime';

export interface AttachEnd {
  reason: AttachEndReason;
  code: number | null;
  signal: string | null;
}

export interface AttachOptions {
  readOnly: boolean;
  cols: number;
  rows: number;
  lifetimeMs: number;
  /**
   * A watch that takes the session's size (the console's read-only terminal): cols x rows are the
   * session's (or its client's, when it could not be told), this asks for it again every FOLLOW_SIZE_MS
   * (null: unknown now), and resize() is ignored.
   */
  follow?: () => Promise<TerminalSize | null>;
}

/** A following watch's size: the session's now, and each change (the pty has already taken it). */
export interface SessionSize {
  readonly current: TerminalSize;
  onChange(listener: (size: TerminalSize) => void): void;
}

export interface AttachStream {
  /** Keystrokes for the session (ignored by tmux when read-only). */
  write(data: string | Buffer): void;
  /**
   * Clamped to TERMINAL_LIMITS; non-numbers are ignored, and so is every size when the attach follows the
   * session's. The size the terminal took, or null when it took none (ignored, or the size it has): what a
   * recording holds, so that a player replays the sizes there were, not a flood of frames.
   */
  resize(cols: number, rows: number): TerminalSize | null;
  /** The consumer fell behind: stop reading until resume(). */
  pause(): void;
  resume(): void;
  /** The host terminal's (HostTerminal.pausesAtOnce): whether tmux itself feels a pause at once. */
  readonly pausesAtOnce: boolean;
  /** The host terminal's (HostTerminal.pendingInput): input written and not yet taken. */
  pendingInput(): number;
  onData(listener: (chunk: Buffer) => void): void;
  /** Ends the attach; resolves once its process is gone. */
  close(): Promise<AttachEnd>;
  /** Settles once, when the attach ends for any reason. */
  readonly ended: Promise<AttachEnd>;
  /** Set when the attach follows the session's size (AttachOptions.follow). */
  readonly sessionSize?: SessionSize;
}

export async function openAttach(host: Host, target: TmuxTarget, session: string, opts: AttachOptions): Promise<AttachStream> {
  let taken = clampSize(opts.cols, opts.rows);
  const terminal: HostTerminal = await host.openTerminal(attachArgv(target, session, opts.readOnly), taken);
  let reason: AttachEndReason | null = null;
  // Once stopping, output is read and dropped: a paused terminal would keep the tmux client blocked on
  // its writes (deaf to TERM) and the SSH channel from ever closing.
  let stopping = false;
  const stop = (why: AttachEndReason): void => {
    reason ??= why;
    stopping = true;
    terminal.resume();
    terminal.kill();
  };
  const lifetime = setTimeout(() => stop('lifetime'), opts.lifetimeMs);
  lifetime.unref();
  let over = false;
  const following = opts.follow
    ? followSize(opts.follow, clampSize(opts.cols, opts.rows), (size) => {
        if (stopping || over) return false;
        terminal.resize(size.cols, size.rows);
        return true;
      })
    : null;
  const ended = terminal.exited.then((exit): AttachEnd => {
    over = true;
    clearTimeout(lifetime);
    following?.stop();
    return { reason: reason ?? 'exited', ...exit };
  });
  return {
    // Input that arrives as the attach ends (a late keystroke, a resize) goes nowhere, without an error.
    write: (data) => {
      if (!stopping && !over) terminal.write(data);
    },
    resize: (cols, rows) => {
      if (following || stopping || over || !Number.isFinite(cols) || !Number.isFinite(rows)) return null;
      const size = clampSize(cols, rows);
      if (size.cols === taken.cols && size.rows === taken.rows) return null;
      terminal.resize(size.cols, size.rows);
      taken = size;
      return size;
    },
    pause: () => terminal.pause(),
    resume: () => terminal.resume(),
    pausesAtOnce: terminal.pausesAtOnce,
    pendingInput: () => terminal.pendingInput(),
    onData: (listener) =>
      terminal.onData((chunk) => {
        if (!stopping) listener(chunk);
      }),
    close: () => {
      stop('closed');
      return ended;
    },
    ended,
    ...(following ? { sessionSize: following.size } : {}),
  };
}

/**
 * Asks `ask` every FOLLOW_SIZE_MS (one question at a time) and, when the size changed and `apply` took
 * it, tells the listeners. A question that fails is asked again next time.
 */
function followSize(ask: () => Promise<TerminalSize | null>, initial: TerminalSize, apply: (size: TerminalSize) => boolean): { size: SessionSize; stop(): void } {
  let current = initial;
  const listeners: Array<(size: TerminalSize) => void> = [];
  let asking = false;
  const timer = setInterval(() => {
    if (asking) return;
    asking = true;
    ask()
      .then((answer) => {
        if (answer === null) return;
        const size = clampSize(answer.cols, answer.rows);
        if ((size.cols === current.cols && size.rows === current.rows) || !apply(size)) return;
        current = size;
        for (const listener of listeners) listener(size);
      })
      // The host did not answer this time: asked again at the next tick.
      .catch(() => {})
      .finally(() => (asking = false));
  }, FOLLOW_SIZE_MS);
  timer.unref();
  return {
    size: {
      get current() {
        return current;
      },
      onChange: (listener) => void listeners.push(listener),
    },
    stop: () => clearInterval(timer),
  };
}
