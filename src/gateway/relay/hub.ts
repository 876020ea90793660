// The gateway's connected agents: one live connection per name, requests correlated in memory by id.
// A result is pushed to the waiting caller the moment its frame arrives (no queue, no polling). When a
// connection ends, everything still waiting on it fails at once with "may have run" and is never sent
// again. A second connection with the same name replaces the first; the first one's teardown then
// removes nothing but itself (code-remote removed by name and could drop the new socket).
import type { WebSocket } from 'ws';
import { TransportError } from '../../hosts/types.js';
import { printable } from '../../command/invisible.js';
import { closeReason } from '../close-reason.js';
import { AgentFrameSchema, BINARY_FRAME, CLOSE, MAX_FRAME_BYTES, parseFrame, WINDOW_BYTES, type AgentFrame, type GatewayFrame, type Hello } from './protocol.js';

/**
 * Output bytes of a request an agent may have sent past the credit granted back: the window, and much
 * more for what an honest agent's command adds while it ends (its pipes are then drained whatever the
 * window: exec/local.ts). An agent past it has the request stopped: one that ignores credit cannot fill
 * the gateway's memory behind a slow reader.
 */
export const MAX_UNCREDITED_BYTES = 16 * WINDOW_BYTES;

/** A ping not even sent out (our side's buffer stuck behind an agent that reads nothing) fails after this many pong timeouts. */
const STALLED_PINGS = 3;

/** Someone waiting on a request's frames. */
export interface PendingRequest {
  /** A frame for this request; returns true when it was the last one. */
  onFrame(frame: Exclude<AgentFrame, { type: 'hello' }>): boolean;
  /** The connection ended first. */
  fail(err: TransportError): void;
}

export interface LiveOptions {
  pingIntervalMs: number;
  pongTimeoutMs: number;
  /** Control requests (path lookups, opening a terminal) fail after this long. */
  requestTimeoutMs: number;
}

type Outgoing = GatewayFrame extends infer F ? (F extends { id: number } ? Omit<F, 'id'> : never) : never;

export class AgentConnection {
  readonly since = Date.now();
  lastRttMs: number | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, PendingRequest>();
  /** Per request: output bytes received that no credit was sent back for yet. */
  private readonly uncredited = new Map<number, number>();
  private pingTimer: NodeJS.Timeout | null = null;
  private pongDeadline: NodeJS.Timeout | null = null;
  private pingSentAt = 0;
  private closed = false;
  private readonly closeListeners: Array<(why: string) => void> = [];

  constructor(
    private readonly socket: WebSocket,
    readonly hello: Hello,
    /** The client's address (after the trusted proxy hop). */
    readonly address: string,
    /** The hash of the token it was admitted with: a rotated one ends the connection (AgentHub.revoke). */
    readonly tokenSha256: string,
    readonly options: LiveOptions,
  ) {
    socket.on('message', (data, isBinary) => {
      this.heard();
      this.receive(data as Buffer, isBinary);
    });
    socket.on('pong', () => this.heard(true));
    socket.on('close', (code, reason) => this.ended(`connection closed (${code}${reason.length ? `: ${reason.toString()}` : ''})`));
    socket.on('error', (err) => this.ended(`connection failed: ${err.message}`));
    this.pingTimer = setInterval(() => this.ping(), options.pingIntervalMs);
    this.pingTimer.unref();
  }

  get name(): string {
    return this.hello.name;
  }

  get open(): boolean {
    return !this.closed;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  onClose(listener: (why: string) => void): void {
    if (this.closed) listener('closed');
    else this.closeListeners.push(listener);
  }

  /** Sends a request and routes its frames to `waiter` until it says it is done; returns the request's id. */
  request(frame: Outgoing, waiter: PendingRequest): number {
    if (this.closed) throw new TransportError(`agent ${this.name} is not connected`);
    const id = this.nextId++;
    this.pending.set(id, waiter);
    this.send({ ...frame, id } as GatewayFrame);
    return id;
  }

  /** Stops waiting on a request (its caller gave up); frames that still arrive for it are dropped. */
  forget(id: number): void {
    this.pending.delete(id);
    this.uncredited.delete(id);
  }

  send(frame: GatewayFrame): void {
    if (this.closed) return;
    if (frame.type === 'credit') {
      const owed = this.uncredited.get(frame.id);
      if (owed !== undefined) this.uncredited.set(frame.id, Math.max(0, owed - frame.bytes));
    }
    const text = JSON.stringify(frame);
    if (Buffer.byteLength(text) > MAX_FRAME_BYTES) throw new TransportError(`a ${frame.type} frame for agent ${this.name} is over the frame limit of ${MAX_FRAME_BYTES} bytes`);
    this.socket.send(text);
  }

  close(code: number, why: string): void {
    this.socket.close(code, why);
    // A peer that does not answer the close handshake is cut off; waiters fail now either way.
    setTimeout(() => this.socket.terminate(), 1000).unref();
    this.ended(why);
  }

  private receive(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    const parsed = isBinary ? BINARY_FRAME : parseFrame(AgentFrameSchema, data);
    if (!parsed.ok) return this.close(CLOSE.protocol, closeReason(parsed.error, parsed.brief));
    const frame = parsed.frame;
    if (frame.type === 'hello') return this.close(CLOSE.protocol, 'hello was sent twice');
    const waiter = this.pending.get(frame.id);
    // A frame for a request the caller already gave up on (cancelled, timed out) is expected: dropped.
    if (!waiter) return;
    if (frame.type === 'out') {
      const owed = (this.uncredited.get(frame.id) ?? 0) + Buffer.byteLength(frame.data, 'base64');
      if (owed > MAX_UNCREDITED_BYTES) {
        this.forget(frame.id);
        this.send({ type: 'cancel', id: frame.id });
        return waiter.fail(new TransportError(`agent ${this.name} sent ${owed} bytes of output past the credit it was given (at most ${MAX_UNCREDITED_BYTES}); the request was stopped there`));
      }
      this.uncredited.set(frame.id, owed);
    }
    if (waiter.onFrame(frame)) this.forget(frame.id);
  }

  /**
   * A ping the agent must answer within pongTimeoutMs of its leaving here: queued behind a large
   * transfer of ours, it waits its turn, and the deadline with it (up to STALLED_PINGS timeouts: an
   * agent that takes in nothing at all is dead too). Any frame from the agent answers it as well, since
   * its pong may wait behind the output it is sending.
   */
  private ping(): void {
    if (this.closed || this.pongDeadline) return;
    this.pingSentAt = 0;
    const timeout = this.options.pongTimeoutMs;
    this.deadline(STALLED_PINGS * timeout, `the agent took in nothing sent to it for ${STALLED_PINGS * timeout} ms`);
    this.socket.ping(undefined, undefined, (err) => {
      if (err || this.closed || this.pongDeadline === null) return;
      this.pingSentAt = performance.now();
      this.deadline(timeout, `no pong within ${timeout} ms`);
    });
  }

  private deadline(ms: number, why: string): void {
    if (this.pongDeadline) clearTimeout(this.pongDeadline);
    const timer = setTimeout(() => {
      // Timers run before sockets are read: after this process was stalled (a busy machine, a suspend),
      // the pong that came meanwhile is still unread. The verdict waits until they are (setImmediate).
      setImmediate(() => {
        if (this.closed || this.pongDeadline !== timer) return;
        this.socket.terminate();
        this.ended(why);
      });
    }, ms);
    this.pongDeadline = timer;
    timer.unref();
  }

  /** The agent is alive: its pong (which also times the round trip), or any frame of its own. */
  private heard(pong = false): void {
    if (!this.pongDeadline) return;
    clearTimeout(this.pongDeadline);
    this.pongDeadline = null;
    if (pong && this.pingSentAt > 0) this.lastRttMs = performance.now() - this.pingSentAt;
  }

  private ended(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    // It may quote the agent (its close reason, a bad frame's key): said to callers and in the log.
    const why = printable(reason, true);
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.pongDeadline) clearTimeout(this.pongDeadline);
    const err = new TransportError(`agent ${this.name} disconnected (${why}); a command that was running there may have run`);
    const waiters = [...this.pending.values()];
    this.pending.clear();
    this.uncredited.clear();
    for (const w of waiters) w.fail(err);
    for (const l of this.closeListeners) l(why);
  }
}

export interface AgentStatus {
  name: string;
  connected: boolean;
  /** ISO time of the current connection, or of the last disconnect. */
  since: string | null;
  address: string | null;
  user: string | null;
  lastRttMs: number | null;
  lastError: string | null;
  inFlight: number;
  sandbox: Hello['sandbox'] | null;
}

export class AgentHub {
  private readonly live = new Map<string, AgentConnection>();
  private readonly gone = new Map<string, { at: number; why: string }>();
  /** Set where agents can connect (the daemon's relay route): elsewhere (a CLI process) none ever will. */
  relaying = false;

  get(name: string): AgentConnection | undefined {
    return this.live.get(name);
  }

  /** Makes `conn` the connection of its name; an older one is closed (its requests fail, "may have run"). */
  register(conn: AgentConnection): void {
    const old = this.live.get(conn.name);
    this.live.set(conn.name, conn);
    this.gone.delete(conn.name);
    conn.onClose((why) => {
      // Only the connection that is still registered is removed: a replaced one's teardown leaves the new one.
      if (this.live.get(conn.name) !== conn) return;
      this.live.delete(conn.name);
      this.gone.set(conn.name, { at: Date.now(), why });
    });
    old?.close(CLOSE.replaced, closeReason(`replaced by a new connection of agent ${conn.name} from ${conn.address}`, `replaced by a new connection from ${conn.address}`));
  }

  /**
   * Closes every connection whose token is no longer its host's (`tokenOf`: the agent host's token hash
   * in hosts.yaml now, undefined when there is none): a rotated token stops serving as its host at once,
   * not whenever its connection happens to end.
   */
  revoke(tokenOf: (name: string) => string | undefined): void {
    for (const c of [...this.live.values()]) {
      const now = tokenOf(c.name);
      if (now === c.tokenSha256) continue;
      c.close(CLOSE.revoked, now === undefined ? `agent host ${c.name} is no longer in hosts.yaml` : `the token of agent host ${c.name} was rotated`);
    }
  }

  status(name: string): AgentStatus {
    const c = this.live.get(name);
    if (c) {
      const h = c.hello;
      return { name, connected: true, since: new Date(c.since).toISOString(), address: c.address, user: h.user, lastRttMs: c.lastRttMs, lastError: null, inFlight: c.inFlight, sandbox: h.sandbox };
    }
    const g = this.gone.get(name);
    return { name, connected: false, since: g ? new Date(g.at).toISOString() : null, address: null, user: null, lastRttMs: null, lastError: g ? `disconnected: ${g.why}` : 'never connected', inFlight: 0, sandbox: null };
  }

  get size(): number {
    return this.live.size;
  }

  closeAll(): void {
    for (const c of [...this.live.values()]) c.close(CLOSE.shutdown, 'the gateway is shutting down');
  }
}
