// Streamable HTTP's everyday request, one JSON-RPC message POSTed in a live session, answered straight on
// Node's response. The SDK's transport turns every request into a Web-standard Request and its answer
// into a Response (through @hono/node-server), even when the answer is one JSON body: that round trip
// was most of what an MCP call over HTTP cost beyond the command itself. A call that asked for progress
// (a progressToken) is answered as a stream of server-sent events instead: its progress notifications,
// then its answer, each with an event id, kept in the session's event store, so that a client whose
// stream broke resumes it (GET with Last-Event-ID) as it resumes the SDK's. Anything else (initialize,
// GET streams, DELETE, a header the SDK would refuse) goes to the SDK's transport unchanged,
// which also words every error.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventId, StreamableHTTPServerTransport, StreamId } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { DEFAULT_NEGOTIATED_PROTOCOL_VERSION, JSONRPCMessageSchema, SUPPORTED_PROTOCOL_VERSIONS, type JSONRPCMessage, type MessageExtraInfo, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import { EVENT_BYTES_KEPT, EVENTS_KEPT, RECONNECT_MS, type SessionEvents } from './events.js';

/**
 * An answer owed on an HTTP response. `stream`: the request asked for progress, so it is answered as
 * server-sent events on that stream; `res` is then the client's latest connection to it (a resume's).
 */
interface Owed {
  res: ServerResponse;
  stream: StreamId | null;
}

const KEEP_ALIVE_MS = 15_000;

/** How our streams' ids begin, telling them from the SDK transport's (which it resumes itself). */
const CALL_STREAM = 'call-';

export class JsonPostTransport implements Transport {
  /** The HTTP responses still owed, by the id of the request each carried. */
  private readonly waiting = new Map<RequestId, Owed>();
  private closeHandler: Transport['onclose'];

  constructor(
    readonly sdk: StreamableHTTPServerTransport,
    private readonly events: SessionEvents,
    /** How often an open stream with nothing to say carries a comment (the SDK's streams: every 15 s). */
    private readonly keepAliveMs = KEEP_ALIVE_MS,
  ) {}

  get sessionId(): string | undefined {
    return this.sdk.sessionId;
  }
  get onmessage(): Transport['onmessage'] {
    return this.sdk.onmessage;
  }
  set onmessage(handler: Transport['onmessage']) {
    this.sdk.onmessage = handler;
  }
  get onclose(): Transport['onclose'] {
    return this.closeHandler;
  }
  /** However the session ends (DELETE, expiry, a revoked credential), the calls it still owes are answered. */
  set onclose(handler: Transport['onclose']) {
    this.closeHandler = handler;
    this.sdk.onclose = () => {
      this.endWaiting();
      this.closeHandler?.();
    };
  }
  get onerror(): Transport['onerror'] {
    return this.sdk.onerror;
  }
  set onerror(handler: Transport['onerror']) {
    this.sdk.onerror = handler;
  }

  start(): Promise<void> {
    return this.sdk.start();
  }

  async close(): Promise<void> {
    this.endWaiting();
    await this.sdk.close();
  }

  /** As a request arriving after the end is answered: the session is gone, and so is what it could resume. */
  private endWaiting(): void {
    this.events.clear();
    for (const { res } of this.waiting.values()) {
      if (res.destroyed) continue;
      // A stream already under way just ends: its client asks again and hears that the session is gone.
      if (res.headersSent) res.end();
      else res.writeHead(404, { 'content-type': 'application/json' }).end(SESSION_GONE);
    }
    this.waiting.clear();
  }

  /**
   * A stream's head, and the event id it resumes from for a client that reads an event with no data
   * (protocol 2025-11-25 on, as the SDK primes its streams): with one, a client whose stream breaks
   * before anything else came resumes it.
   */
  private openStream(req: IncomingMessage, res: ServerResponse, resumesFrom: () => EventId): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...this.sessionHeader() });
    // A call waiting for an approval says nothing for minutes: proxies end streams idle that long (nginx after 60 s).
    const beat = setInterval(() => res.write(': keep-alive\n\n'), this.keepAliveMs);
    beat.unref();
    res.once('close', () => clearInterval(beat));
    if ((req.headers['mcp-protocol-version'] ?? DEFAULT_NEGOTIATED_PROTOCOL_VERSION) >= '2025-11-25') res.write(`id: ${resumesFrom()}\nretry: ${RECONNECT_MS}\ndata: \n\n`);
  }

  /** A new stream for a call that asked for progress, primed with its first event id. */
  private callStream(req: IncomingMessage, res: ServerResponse): StreamId {
    const stream = `${CALL_STREAM}${randomUUID()}`;
    this.openStream(req, res, () => this.events.add(stream, ''));
    return stream;
  }

  private sessionHeader(): Record<string, string> {
    return this.sessionId !== undefined ? { 'mcp-session-id': this.sessionId } : {};
  }

  /**
   * Takes `body` (fastify parsed it) when it is one request or notification that the SDK's transport
   * would accept as is; false leaves the whole request to the SDK's transport.
   */
  answer(req: IncomingMessage, res: ServerResponse, body: unknown): boolean {
    const { accept, 'content-type': type, 'mcp-protocol-version': version } = req.headers;
    if (req.method !== 'POST' || type !== 'application/json' || !accept?.includes('application/json') || !accept.includes('text/event-stream')) return false;
    if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(version as string)) return false;
    const parsed = JSONRPCMessageSchema.safeParse(body);
    if (!parsed.success || !('method' in parsed.data) || parsed.data.method === 'initialize') return false;
    const message = parsed.data;
    const extra: MessageExtraInfo = { requestInfo: { headers: req.headers } };
    if (!('id' in message)) {
      this.onmessage?.(message, extra);
      res.writeHead(202).end();
      return true;
    }
    // Two calls in flight under one id cannot both be answered: the SDK's transport says what it says.
    if (this.waiting.has(message.id)) return false;
    const stream = message.params?._meta?.progressToken !== undefined ? this.callStream(req, res) : null;
    this.waiting.set(message.id, { res, stream });
    this.onmessage?.(message, extra);
    return true;
  }

  /**
   * Takes a GET with Last-Event-ID that resumes one of our streams: what it carried after that event,
   * then, while its call runs, the rest as it comes. An id this session does not hold is refused as the
   * SDK refuses it (400), saying why; false leaves the request to the SDK's transport.
   */
  resume(req: IncomingMessage, res: ServerResponse): boolean {
    const { 'last-event-id': last, accept, 'mcp-protocol-version': version } = req.headers;
    if (req.method !== 'GET' || typeof last !== 'string' || !accept?.includes('text/event-stream')) return false;
    if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(version as string)) return false;
    const found = this.events.after(last);
    if (!found) {
      const message = `no event ${last} in this MCP session: unknown, or dropped (a session keeps its latest ${EVENTS_KEPT} events and ${EVENT_BYTES_KEPT >> 20} MiB of them), so what came after it cannot be replayed; see the audit trail (remux audit ls) for what ran before sending a request again`;
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
      return true;
    }
    if (!found.stream.startsWith(CALL_STREAM)) return false;
    const owed = [...this.waiting.values()].find((o) => o.stream === found.stream);
    // The newest connection wins: one its client gave up on may look open here for minutes (a laptop
    // asleep), and the SDK's client tries to resume only twice.
    owed?.res.destroy();
    this.openStream(req, res, () => last);
    for (const [id, data] of found.events) res.write(event(id, data));
    if (owed) owed.res = res;
    else res.end();
    return true;
  }

  /** One event of a call's stream: kept for a resume, and written now if its client is connected. */
  private streamEvent(stream: StreamId, res: ServerResponse, message: JSONRPCMessage, last: boolean): void {
    const data = JSON.stringify(message);
    const chunk = event(this.events.add(stream, data), data);
    if (res.destroyed) return;
    if (last) res.end(chunk);
    else res.write(chunk);
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (!('method' in message) && message.id !== undefined) {
      const owed = this.waiting.get(message.id);
      if (owed) {
        this.waiting.delete(message.id);
        if (owed.stream !== null) this.streamEvent(owed.stream, owed.res, message, true);
        // A client that went away meanwhile has nobody left to read the answer.
        else if (!owed.res.destroyed) owed.res.writeHead(200, { 'content-type': 'application/json', ...this.sessionHeader() }).end(JSON.stringify(message));
        return;
      }
    } else if (options?.relatedRequestId !== undefined) {
      const owed = this.waiting.get(options.relatedRequestId);
      if (owed) {
        // A JSON answer has no stream for what comes before it: the SDK's JSON mode drops these too.
        if (owed.stream !== null) this.streamEvent(owed.stream, owed.res, message, false);
        return;
      }
    }
    return this.sdk.send(message, options);
  }
}

/** One message (as JSON) as a server-sent event, as the SDK's transport writes them. */
const event = (id: EventId, data: string): string => `event: message\nid: ${id}\ndata: ${data}\n\n`;

const SESSION_GONE = JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
