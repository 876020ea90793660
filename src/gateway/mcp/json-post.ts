// Streamable HTTP's everyday request, one JSON-RPC message POSTed in a live session, answered straight on
// Node's response. The SDK's transport turns every request into a Web-standard Request and its answer
// into a Response (through @hono/node-server), even when the answer is one JSON body: that round trip
// was most of what an MCP call over HTTP cost beyond the command itself. A call that asked for progress
// (a progressToken) is answered as a stream of server-sent events instead: its progress notifications,
// then its answer. Anything else (initialize,
// GET streams, DELETE, a header the SDK would refuse) goes to the SDK's transport unchanged,
// which also words every error.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { JSONRPCMessageSchema, SUPPORTED_PROTOCOL_VERSIONS, type JSONRPCMessage, type MessageExtraInfo, type RequestId } from '@modelcontextprotocol/sdk/types.js';

/** An answer owed on an HTTP response; `stream`: as server-sent events, the request asked for progress. */
interface Owed {
  res: ServerResponse;
  stream: boolean;
}

export class JsonPostTransport implements Transport {
  /** The HTTP responses still owed, by the id of the request each carried. */
  private readonly waiting = new Map<RequestId, Owed>();
  private closeHandler: Transport['onclose'];

  constructor(readonly sdk: StreamableHTTPServerTransport) {}

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

  /** As a request arriving after the end is answered: the session is gone. */
  private endWaiting(): void {
    for (const { res } of this.waiting.values()) {
      if (res.destroyed) continue;
      // A stream already under way just ends: its client asks again and hears that the session is gone.
      if (res.headersSent) res.end();
      else res.writeHead(404, { 'content-type': 'application/json' }).end(SESSION_GONE);
    }
    this.waiting.clear();
  }

  /** The stream's head, once: what comes before the answer goes out as it happens. */
  private opened(res: ServerResponse): ServerResponse {
    if (!res.headersSent) res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...this.sessionHeader() });
    return res;
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
    this.waiting.set(message.id, { res, stream: message.params?._meta?.progressToken !== undefined });
    this.onmessage?.(message, extra);
    return true;
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (!('method' in message) && message.id !== undefined) {
      const owed = this.waiting.get(message.id);
      if (owed) {
        this.waiting.delete(message.id);
        // A client that went away meanwhile has nobody left to read the answer.
        if (owed.res.destroyed) return;
        if (owed.stream) this.opened(owed.res).end(event(message));
        else owed.res.writeHead(200, { 'content-type': 'application/json', ...this.sessionHeader() }).end(JSON.stringify(message));
        return;
      }
    } else if (options?.relatedRequestId !== undefined) {
      const owed = this.waiting.get(options.relatedRequestId);
      if (owed) {
        // A JSON answer has no stream for what comes before it: the SDK's JSON mode drops these too.
        if (owed.stream && !owed.res.destroyed) this.opened(owed.res).write(event(message));
        return;
      }
    }
    return this.sdk.send(message, options);
  }
}

/** One message as a server-sent event, as the SDK's transport writes them. */
const event = (message: JSONRPCMessage): string => `event: message\ndata: ${JSON.stringify(message)}\n\n`;

const SESSION_GONE = JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
