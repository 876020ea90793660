// The CLI side of the daemon socket: find a running daemon, ask it for its status or to stop.
// Forwarding a command line is in forward.ts.
import net from 'node:net';
import { FirstLine, type Event, type Request } from './protocol.js';

/** Status answers are small; a larger line means something else is on the socket. */
const MAX_ANSWER_BYTES = 16 << 20;

/** Connects to a running daemon, or resolves null when none answers on `path` (no socket, stale socket). */
export function connectDaemon(path: string, timeoutMs = 2000): Promise<net.Socket | null> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(null);
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve(null);
      else if (err.code === 'EACCES') reject(new Error(`cannot open the daemon socket ${path}: permission denied (it belongs to another user)`));
      else reject(err);
    });
  });
}

/**
 * An attach slot from a running daemon (protocol.ts `attach-slot`), held until release(); null when no
 * daemon runs (nothing counts attaches then), or the daemon's refusal.
 */
export async function holdAttachSlot(path: string, token: string | undefined): Promise<{ release(): void } | { refusal: string; exitCode: number } | null> {
  const socket = await connectDaemon(path);
  if (!socket) return null;
  return new Promise((resolve, reject) => {
    const reader = new FirstLine(MAX_ANSWER_BYTES);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('the daemon closed the connection without answering')));
    socket.on('data', (chunk: Buffer) => {
      const got = reader.push(chunk);
      if (!got) return;
      const event = JSON.parse(got.line) as Event;
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      if (event.type === 'done') resolve({ release: () => socket.end() });
      else resolve({ refusal: event.type === 'error' ? event.message : 'unexpected answer from the daemon', exitCode: event.type === 'error' ? event.exitCode : 1 });
    });
    socket.write(`${JSON.stringify({ type: 'attach-slot', ...(token ? { token } : {}) })}\n`);
  });
}

/** How long a daemon that took a connection has to answer a status or stop request. */
const ANSWER_MS = 5000;

/**
 * One request, one answer line (status, stop); the connection is closed afterwards. null: no answer
 * within ANSWER_MS (a daemon that accepts connections but never answers, hung or stopped, does not run).
 */
function callDaemon(socket: net.Socket, request: Exclude<Request, { type: 'cli' }>): Promise<Event | null> {
  return new Promise((resolve, reject) => {
    const reader = new FirstLine(MAX_ANSWER_BYTES);
    const timer = setTimeout(() => {
      socket.removeAllListeners('close');
      socket.destroy();
      resolve(null);
    }, ANSWER_MS);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.on('data', (chunk: Buffer) => {
      try {
        const got = reader.push(chunk);
        if (!got) return;
        clearTimeout(timer);
        socket.end();
        resolve(JSON.parse(got.line) as Event);
      } catch (err) {
        fail(err as Error);
      }
    });
    socket.once('error', fail);
    socket.once('close', () => fail(new Error('the daemon closed the connection without answering')));
    socket.write(`${JSON.stringify(request)}\n`);
  });
}

/** Asks the daemon on `path` for one answer; null when no daemon is running there, or it does not answer. */
export async function askDaemon(path: string, request: Exclude<Request, { type: 'cli' }>): Promise<Event | null> {
  const socket = await connectDaemon(path);
  return socket ? callDaemon(socket, request) : null;
}
