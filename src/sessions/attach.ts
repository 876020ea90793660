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
import type { Host, HostTerminal } from '../hosts/types.js';
import { attachArgv, type TmuxTarget } from './tmux.js';

export const TERMINAL_LIMITS = { minCols: 2, maxCols: 1000, minRows: 1, maxRows: 500 } as const;

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
}

export interface AttachStream {
  /** Keystrokes for the session (ignored by tmux when read-only). */
  write(data: string | Buffer): void;
  /** Clamped to TERMINAL_LIMITS; non-numbers are ignored. */
  resize(cols: number, rows: number): void;
  /** The consumer fell behind: stop reading until resume(). */
  pause(): void;
  resume(): void;
  /** The host terminal's (HostTerminal.pausesAtOnce): whether tmux itself feels a pause at once. */
  readonly pausesAtOnce: boolean;
  onData(listener: (chunk: Buffer) => void): void;
  /** Ends the attach; resolves once its process is gone. */
  close(): Promise<AttachEnd>;
  /** Settles once, when the attach ends for any reason. */
  readonly ended: Promise<AttachEnd>;
}

export function clampSize(cols: number, rows: number): { cols: number; rows: number } {
  const clamp = (n: number, min: number, max: number): number => Math.min(max, Math.max(min, Math.round(n)));
  return { cols: clamp(cols, TERMINAL_LIMITS.minCols, TERMINAL_LIMITS.maxCols), rows: clamp(rows, TERMINAL_LIMITS.minRows, TERMINAL_LIMITS.maxRows) };
}

export async function openAttach(host: Host, target: TmuxTarget, session: string, opts: AttachOptions): Promise<AttachStream> {
  const terminal: HostTerminal = await host.openTerminal(attachArgv(target, session, opts.readOnly), clampSize(opts.cols, opts.rows));
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
  const ended = terminal.exited.then((exit): AttachEnd => {
    over = true;
    clearTimeout(lifetime);
    return { reason: reason ?? 'exited', ...exit };
  });
  return {
    // Input that arrives as the attach ends (a late keystroke, a resize) goes nowhere, without an error.
    write: (data) => {
      if (!stopping && !over) terminal.write(data);
    },
    resize: (cols, rows) => {
      if (stopping || over || !Number.isFinite(cols) || !Number.isFinite(rows)) return;
      const size = clampSize(cols, rows);
      terminal.resize(size.cols, size.rows);
    },
    pause: () => terminal.pause(),
    resume: () => terminal.resume(),
    pausesAtOnce: terminal.pausesAtOnce,
    onData: (listener) =>
      terminal.onData((chunk) => {
        if (!stopping) listener(chunk);
      }),
    close: () => {
      stop('closed');
      return ended;
    },
    ended,
  };
}
