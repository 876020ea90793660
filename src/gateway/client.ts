// The CLI side of the daemon socket: connect if a daemon is there, send requests, receive events.
import net from 'node:net';
import { LineReader, type Event, type Request } from './protocol.js';

/** Events can be large (base64 output); the daemon caps output per command by policy. */
const MAX_EVENT_BYTES = 64 << 20;

export class DaemonClient {
  private nextId = 1;
  private readonly listeners = new Map<number, (event: Event) => void>();
  private closedError: Error | null = null;

  private constructor(private readonly socket: net.Socket) {
    const reader = new LineReader((line) => {
      const event = JSON.parse(line) as Event;
      this.listeners.get(event.id)?.(event);
    }, MAX_EVENT_BYTES);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => reader.push(chunk));
    socket.on('close', () => {
      this.closedError ??= new Error('the daemon closed the connection');
      for (const listener of this.listeners.values()) listener({ id: 0, type: 'error', message: this.closedError.message, exitCode: 255 });
      this.listeners.clear();
    });
    socket.on('error', (err) => {
      this.closedError = err;
    });
  }

  /** Connects to a running daemon, or returns null when none answers on `path` (no socket, stale socket). */
  static connect(path: string, timeoutMs = 2000): Promise<DaemonClient | null> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(path);
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(null);
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new DaemonClient(socket));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve(null);
        else if (err.code === 'EACCES') reject(new Error(`cannot open the daemon socket ${path}: permission denied (it belongs to another user)`));
        else reject(err);
      });
    });
  }

  /** Sends a request; `onEvent` gets every event for it until `isLast` says it ended. */
  request(body: DistributiveOmit<Request, 'id'>, onEvent: (event: Event) => void, isLast: (event: Event) => boolean): { id: number; done: Promise<void> } {
    const id = this.nextId++;
    const done = new Promise<void>((resolve) => {
      this.listeners.set(id, (event) => {
        onEvent(event);
        if (isLast(event) || event.id === 0) {
          this.listeners.delete(id);
          resolve();
        }
      });
    });
    this.send({ ...body, id } as Request);
    return { id, done };
  }

  send(request: Request): void {
    this.socket.write(`${JSON.stringify(request)}\n`);
  }

  /** One request, one answer (status, stop). */
  async call(body: DistributiveOmit<Request, 'id'>): Promise<Event> {
    let answer: Event | undefined;
    await this.request(body, (e) => (answer = e), () => true).done;
    return answer!;
  }

  close(): void {
    this.socket.end();
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
