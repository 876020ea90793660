// The browser terminal: one WebSocket carries one attach (sessions/attach.ts) with flow control end to
// end. The route that upgrades the request authenticates it, checks its Origin and scope, and opens the
// attach through perform(); this file only moves bytes and enforces the limits.
//
// Protocol (one attach per socket):
//   server -> client  binary frame: terminal output, in order.
//                     text frame, JSON: {"type":"ready","readOnly","recording"} once, then at the end
//                     {"type":"exit","reason","code"} before the close. A watch that follows its
//                     session's size (attach.ts) has "size":{"cols","rows"} in ready, and each change
//                     as {"type":"size","cols","rows"}, after the output that came before it.
//                     An attach refused (http/sessions-routes.ts) gets {"type":"refused","code","message"}
//                     instead, then the close: its reason is the message when that fits (123 bytes).
//   client -> server  text frame, JSON: {"type":"input","data":string} (dropped when read-only),
//                     {"type":"resize","cols","rows"} (clamped by the attach; dropped when it follows),
//                     {"type":"ack","bytes":N}: N output bytes rendered so far, counted from the start.
//   Anything else (binary frames, other JSON, a frame over MAX_CLIENT_FRAME) closes the socket 1003/1009.
//
// Flow control: the browser acknowledges what xterm.js has rendered (its write callback), not what it
// received. While more than highWater bytes are sent and not acknowledged, or the socket's own send
// buffer holds more than highWater, the attach is paused: the pty (or the SSH channel) is no longer
// read, so tmux itself blocks and nothing piles up here. Resumed below lowWater. A client that never
// acknowledges gets at most highWater plus one read; it cannot make the daemon's memory grow.
// Input the other way: what the session has not taken yet (a program that reads nothing, tmux slower
// than a flood of pastes) waits in the host terminal's queue, so past INPUT_FLOW.highWater the socket
// is no longer read (the client's sends wait in its own buffers) until the session has taken it down
// to lowWater. A client that types without end cannot make the daemon's memory grow either.
//
// Coalescing: tmux writes a screen update in many small pieces (about 50 bytes each in a flood), and
// a frame per piece made the browser and the daemon spend their time on frames, not text (10,600
// frames for 0.5 MiB). Output that follows other output within COALESCE.delayMs is gathered into one
// frame, sent at most every delayMs or once COALESCE.maxBytes are held; output after a quiet moment
// (a keystroke's echo) goes at once. When output keeps coming while a frame is due (a flood), frames go
// every COALESCE.floodDelayMs until a quiet moment or a keystroke (then delayMs again for typingMs):
// each frame cost Chromium, whose page renders a flood at most every 100 ms anyway, and the daemon about
// as much as its text (bench/console.ts, 64 MiB, five paired runs: daemon 0.20-0.36 -> 0.04-0.10 CPU-s,
// all of Chromium 0.76-1.26 -> 0.49-0.77).
// During a flood a local session is read one piece per COALESCE.readRestMs. Reading slower than tmux
// writes makes tmux find its client busy and skip the screens no one would see (64 MiB `cat`, tmux
// alone: 33-37 MiB/s with a client that reads everything, 45 when read every 20 ms). Resting much
// longer (once per frame, 100 ms) made the flood's end late: tmux redraws once its client has drained,
// and draining a pty a piece per 100 ms left the last screen 0.9-1.4 s behind the end of `cat` (every
// 50 ms: 0.3-0.4 s; every 20 ms: 0.1 s, the time tmux itself waits before it redraws). A session over
// SSH or an agent is never rested: tmux's client there is sshd (or the agent), which reads on until a
// 2 MiB window fills, so resting only left megabytes to drain a piece at a time (the last screen of a
// 64 MiB `cat` 18 s late); the socket's acknowledgements still pause it.
import { WebSocket } from 'ws';
import type { AttachEnd, AttachStream } from '../sessions/attach.js';

export const TERMINAL_FLOW = {
  highWater: 256 << 10,
  lowWater: 64 << 10,
} as const;

export const COALESCE = {
  delayMs: 8,
  floodDelayMs: 100,
  typingMs: 500,
  maxBytes: 64 << 10,
  readRestMs: 20,
} as const;

/** Input waiting for the session beyond which the socket is not read, and when reading resumes (checked every checkMs). */
export const INPUT_FLOW = { highWater: 1 << 20, lowWater: 256 << 10, checkMs: 20 } as const;

/** Keystrokes and control messages are small; a paste of a few hundred KiB still fits. */
export const MAX_CLIENT_FRAME = 1 << 20;

/** WebSocket close codes of the terminal (4000-4999 are the application's). */
export const CLOSE = {
  normal: 1000,
  unsupported: 1003,
  policy: 1008,
  tooBig: 1009,
  internal: 1011,
  unauthenticated: 4001,
  forbidden: 4003,
  notFound: 4004,
  lifetime: 4008,
  tooMany: 4029,
} as const;

export interface TerminalBridgeOptions {
  readOnly: boolean;
  /** Recording id, shown to the client; null when not recorded. */
  recording: string | null;
  /** Every output chunk, as sent (the recording). */
  onOutput?: (chunk: Buffer) => void;
  onResize?: (cols: number, rows: number) => void;
  flow?: { highWater: number; lowWater: number };
  /** The framing's timing (default COALESCE); tests widen it so a busy machine cannot blur what they check. */
  coalesce?: { delayMs: number; floodDelayMs: number; typingMs: number; maxBytes: number; readRestMs: number };
}

/** What a bridge did, for the audit record and tests. */
export interface BridgeEnd {
  end: AttachEnd;
  bytesOut: number;
  /** Most bytes ever sent and not yet acknowledged. */
  maxUnacked: number;
  /** How many times the attach was paused because the client fell behind. */
  pauses: number;
}

type ClientMessage = { type: 'input'; data: string } | { type: 'resize'; cols: number; rows: number } | { type: 'ack'; bytes: number };

function parseClientMessage(text: string): ClientMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof m !== 'object' || m === null) return null;
  const o = m as Record<string, unknown>;
  if (o.type === 'input' && typeof o.data === 'string') return { type: 'input', data: o.data };
  if (o.type === 'resize' && typeof o.cols === 'number' && typeof o.rows === 'number') return { type: 'resize', cols: o.cols, rows: o.rows };
  if (o.type === 'ack' && typeof o.bytes === 'number' && Number.isSafeInteger(o.bytes) && o.bytes >= 0) return { type: 'ack', bytes: o.bytes };
  return null;
}

/** Connects an open attach to an accepted WebSocket until either ends; resolves when both are done. */
export function bridgeTerminal(ws: WebSocket, stream: AttachStream, opts: TerminalBridgeOptions): Promise<BridgeEnd> {
  const flow = opts.flow ?? TERMINAL_FLOW;
  const coalesce = opts.coalesce ?? COALESCE;
  let sent = 0;
  let acked = 0;
  let maxUnacked = 0;
  let pauses = 0;
  let paused = false;
  // Reading also rests for readRestMs after each piece of a flood (see COALESCE).
  let resting = false;
  let restTimer: NodeJS.Timeout | null = null;
  let reading = true;
  let closing = false;

  const setReading = (): void => {
    const want = !paused && !resting;
    if (want === reading) return;
    reading = want;
    if (want) stream.resume();
    else stream.pause();
  };
  const rest = (): void => {
    resting = true;
    setReading();
    restTimer ??= setTimeout(endRest, coalesce.readRestMs);
  };
  const endRest = (): void => {
    if (restTimer) clearTimeout(restTimer);
    restTimer = null;
    resting = false;
    setReading();
  };
  const behind = (): boolean => sent - acked > flow.highWater || ws.bufferedAmount > flow.highWater;
  const caughtUp = (): boolean => sent - acked <= flow.lowWater && ws.bufferedAmount <= flow.lowWater;
  const check = (): void => {
    if (!paused && behind()) {
      paused = true;
      pauses++;
    } else if (paused && caughtUp()) {
      paused = false;
    }
    setReading();
  };
  // While the session holds more than INPUT_FLOW.highWater of input, the socket is not read.
  let inputCheck: NodeJS.Timeout | null = null;
  const readInputAgain = (): void => {
    if (!inputCheck) return;
    clearInterval(inputCheck);
    inputCheck = null;
    ws.resume();
  };
  const holdInput = (): void => {
    if (inputCheck || stream.pendingInput() <= INPUT_FLOW.highWater) return;
    ws.pause();
    inputCheck = setInterval(() => {
      if (stream.pendingInput() <= INPUT_FLOW.lowWater) readInputAgain();
    }, INPUT_FLOW.checkMs);
  };
  const close = (code: number, reason: string): void => {
    if (closing) return;
    closing = true;
    if (ws.readyState === WebSocket.OPEN) ws.close(code, reason);
    void stream.close();
  };

  // Output read but not yet framed (counted in `sent`, so the pause decision sees it).
  let held: Buffer[] = [];
  let heldBytes = 0;
  let lastFrameAt = 0;
  let interval: number = coalesce.delayMs;
  let lastInputAt = -Infinity;
  // Output came while the frame being sent was due: a flood (frames every floodDelayMs).
  let flooding = false;
  let timer: NodeJS.Timeout | null = null;
  const sendHeld = (): void => {
    if (timer) clearTimeout(timer);
    timer = null;
    const typing = performance.now() - lastInputAt < coalesce.typingMs;
    interval = flooding && !typing ? coalesce.floodDelayMs : coalesce.delayMs;
    flooding = false;
    // Not (or no longer) a flood, or someone types: the rest of a burst is read at once.
    if (interval === coalesce.delayMs) endRest();
    if (heldBytes === 0 || ws.readyState !== WebSocket.OPEN) return;
    const frame = held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held, heldBytes);
    held = [];
    heldBytes = 0;
    lastFrameAt = performance.now();
    // The send callback runs when the frame has left the socket's buffer: a client that reads slowly
    // at the TCP level is caught here even if it acknowledges honestly.
    ws.send(frame, { binary: true }, () => check());
    check();
  };

  const following = stream.sessionSize;
  ws.send(JSON.stringify({ type: 'ready', readOnly: opts.readOnly, recording: opts.recording, ...(following ? { size: following.current } : {}) }));
  following?.onChange((size) => {
    // What was read before the resize goes first: the client draws it at the old size.
    sendHeld();
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'size', ...size }));
    opts.onResize?.(size.cols, size.rows);
  });
  stream.onData((chunk) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    sent += chunk.length;
    maxUnacked = Math.max(maxUnacked, sent - acked);
    opts.onOutput?.(chunk);
    held.push(chunk);
    heldBytes += chunk.length;
    const sinceFrame = performance.now() - lastFrameAt;
    if (heldBytes >= coalesce.maxBytes || sinceFrame >= interval) return sendHeld();
    if (timer) {
      flooding = true;
      if (stream.pausesAtOnce) rest();
      return;
    }
    timer = setTimeout(sendHeld, interval - sinceFrame);
    check();
  });

  ws.on('message', (data, isBinary) => {
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : (data as Buffer | ArrayBuffer).byteLength;
    if (size > MAX_CLIENT_FRAME) return close(CLOSE.tooBig, 'message too big');
    const message = isBinary ? null : parseClientMessage(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8'));
    if (message === null) return close(CLOSE.unsupported, 'unsupported message');
    switch (message.type) {
      case 'input':
        if (opts.readOnly) return;
        stream.write(message.data);
        holdInput();
        // Someone types: what is held goes now and frames come every delayMs again (its echo, a redraw).
        lastInputAt = performance.now();
        interval = coalesce.delayMs;
        endRest();
        if (timer) sendHeld();
        return;
      case 'resize': {
        // A watch that follows the session's size has no size of its own.
        if (following) return;
        const taken = stream.resize(message.cols, message.rows);
        if (taken) opts.onResize?.(taken.cols, taken.rows);
        return;
      }
      case 'ack':
        // Acknowledging more than was sent is a broken or hostile client: it could unpause a flood.
        if (message.bytes > sent) return close(CLOSE.policy, 'acknowledged more than was sent');
        acked = Math.max(acked, message.bytes);
        check();
        return;
    }
  });
  const socketClosed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  ws.once('close', () => {
    closing = true;
    if (inputCheck) clearInterval(inputCheck);
    void stream.close();
  });
  ws.on('error', () => close(CLOSE.internal, 'socket error'));

  return stream.ended.then(async (end) => {
    // The closing handshake below needs the client's close frame read.
    readInputAgain();
    endRest();
    sendHeld();
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: 'exit', reason: end.reason, code: end.code }));
      close(end.reason === 'lifetime' ? CLOSE.lifetime : CLOSE.normal, end.reason === 'lifetime' ? 'attach lifetime reached' : 'session ended');
    }
    await socketClosed;
    return { end, bytesOut: sent, maxUnacked, pauses };
  });
}
