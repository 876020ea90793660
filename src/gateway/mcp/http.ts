// MCP on the daemon's HTTPS server: Streamable HTTP at /mcp (protocol 2025-11-25 and 2025-06-18) and the
// legacy HTTP+SSE transport (GET /sse, POST /messages) for older clients. Authentication is never off:
// a principal's bearer token on every request (401 with the RFC 9728 metadata pointer otherwise), a
// foreign Origin is refused (403), and a session answers only the principal that opened it.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { errorCodes, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { principalOf } from '../../config/principals.js';
import type { GatewayContext } from '../../core/context.js';
import type { Principal } from '../../core/types.js';
import type { RateLimiter } from '../../hosts/rate-limit.js';
import type { PrincipalEntry, Principals } from '../../config/principals.js';
import { bearerToken, checkToken, type LiveCredentials, type LoginGuard } from '../http/auth.js';
import { BodyRefused, lingerOnClose, type BodyBudget } from '../http/body-budget.js';
import { fail, forbiddenOrigin, principalsInvalid, tooManyFailures } from '../http/errors.js';
import { shownAddress } from '../http/routes.js';
import { SessionEvents } from './events.js';
import { JsonPostTransport } from './json-post.js';
import { busyText, LARGE_MESSAGE, type LargeMessages, MCP_ANSWER_MAX, MCP_MESSAGE_MAX, MCP_MESSAGE_VALUES, TOO_MANY_VALUES, tooLarge, ValueCounter } from './line-transport.js';
import { parseOffThread } from './parse-worker.js';
import { auditConnect, createMcpServer, type McpConnection } from './server.js';
import { McpSessions, type SessionLimits } from './sessions.js';
import type { ToolDeps } from './tools.js';

export interface McpHttpDeps {
  ctx: GatewayContext;
  limiter: RateLimiter;
  guard: LoginGuard;
  /** The Origins a browser page may call from (the daemon's own and http.origins); filled in once listening. */
  allowedOrigins: ReadonlySet<string>;
  /** The origin the daemon is reached by when a request names none of the allowed ones: the first of http.origins, else its listen address. */
  publicOrigin: () => string;
  /** What is going on under each credential: a removed principal, a rotated token or a changed scope ends its sessions at once. */
  live: LiveCredentials;
  limits?: SessionLimits;
  /** Each principal's places for large messages, shared with the daemon's stdio clients. */
  large: LargeMessages;
  /** Each principal's bodies arriving, in bytes, shared with the API's routes. */
  bodies: BodyBudget;
}

export const METADATA_PATH = '/.well-known/oauth-protected-resource';
const SESSION_HEADER = 'mcp-session-id';

/** JSON-RPC's code for a message that is not a valid request. */
const INVALID_REQUEST = -32600;
const PARSE_ERROR = -32700;

/** A JSON-RPC error body, as MCP clients expect from the transport endpoints. */
function rpcError(reply: FastifyReply, status: number, message: string, code = -32000): FastifyReply {
  return reply.code(status).type('application/json').send({ jsonrpc: '2.0', error: { code, message }, id: null });
}

/** The raw response is handed to the SDK: the headers set on the reply so far (security headers) go with it. */
function hijack(reply: FastifyReply): void {
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) reply.raw.setHeader(name, value);
  reply.hijack();
}

export function registerMcp(app: FastifyInstance, deps: McpHttpDeps): void {
  const { ctx } = deps;
  const sessions = new McpSessions(deps.limits);
  /** Each legacy session's event stream, where all of its answers go. */
  const streams = new WeakMap<SSEServerTransport, ServerResponse>();
  const toolDeps = (principal: Principal): ToolDeps => ({ ctx, principal, admit: (name) => deps.limiter.take(name) });
  /** The principal file entry each request was authenticated with (its scope is the session's). */
  const entries = new WeakMap<object, PrincipalEntry>();
  /** A session runs with the scope its principal had when it began: any change to the principal ends it. */
  const open = (id: string, principal: Principal, transport: Transport, entry: PrincipalEntry): void => {
    sessions.add(id, principal.name, transport);
    deps.live.track(transport, entry, () => sessions.end(id));
  };
  /** How a request whose large body is being read or parsed gives its place back. */
  const releases = new WeakMap<IncomingMessage, () => void>();
  const forget = (id: string | undefined, transport: Transport): void => {
    deps.live.untrack(transport);
    if (id) sessions.forget(id);
  };
  app.addHook('onClose', async () => sessions.closeAll());
  const connection = (request: FastifyRequest, transport: McpConnection['transport']): McpConnection => ({ transport, from: shownAddress(request.ip) });
  /**
   * Refuses a POST /mcp with no session: the first request of one, which must be initialize. The attempt
   * to connect is audited as failed, saying why (a session's own handshake is audited by its server).
   */
  const refuseConnect = (request: FastifyRequest, reply: FastifyReply, status: number, message: string, code?: number): FastifyReply => {
    auditConnect(toolDeps(request.principal!), connection(request, 'streamable-http'), 'unnamed client', { failed: message });
    return rpcError(reply, status, message, code);
  };
  /** Whether `request` is a POST /mcp that would begin a session. */
  const connecting = (request: FastifyRequest): boolean =>
    request.method === 'POST' && request.routeOptions.url === '/mcp' && request.headers[SESSION_HEADER] === undefined && request.principal !== undefined;
  /**
   * The origin for the metadata document and its pointer: the one the client named (Host) when it is
   * one of the daemon's own or configured origins, else the daemon's public origin. Host is the client's
   * to write: echoed, a forged one pointed clients of a shared cache or a proxy elsewhere.
   */
  const baseUrl = (request: FastifyRequest): string => {
    const named = `${request.protocol}://${request.host}`;
    return deps.allowedOrigins.has(named) ? named : deps.publicOrigin();
  };

  // RFC 9728: where a client learns how to authenticate to this resource. There is no authorization
  // server to send it to: tokens are made with `remux principal add` and sent as a bearer header.
  const metadata = async (request: FastifyRequest): Promise<Record<string, unknown>> => ({
    resource: `${baseUrl(request)}/mcp`,
    resource_name: 'remux MCP endpoint',
    authorization_servers: [],
    bearer_methods_supported: ['header'],
  });
  app.get(METADATA_PATH, metadata);
  app.get(`${METADATA_PATH}/mcp`, metadata);

  const authenticate = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const origin = request.headers.origin;
    // Browsers always send Origin on these requests; non-browser clients send none and are allowed.
    if (origin !== undefined && !deps.allowedOrigins.has(origin)) return forbiddenOrigin(reply, origin);
    // RFC 6750 §3.1: an error code only when credentials were sent (and were wrong).
    const challenge = (why: string, sent: boolean): FastifyReply => {
      reply.header('www-authenticate', `Bearer resource_metadata="${baseUrl(request)}${METADATA_PATH}/mcp"${sent ? `, error="invalid_token", error_description="${why}"` : ''}`);
      return fail(reply, 401, 'unauthenticated', `${why}: send Authorization: Bearer TOKEN (a token from \`remux principal add NAME\`)`);
    };
    const bearer = bearerToken(request.headers.authorization);
    if (bearer === null || bearer === '') return challenge('no bearer token', false);
    let principals: Principals;
    try {
      principals = ctx.principals();
    } catch {
      return principalsInvalid(reply);
    }
    const checked = await checkToken(deps.guard, request.ip, bearer, principals);
    if ('locked' in checked) return tooManyFailures(reply, checked.locked);
    if ('bad' in checked) return challenge('the bearer token matches no principal', true);
    request.principal = principalOf(checked.entry, 'mcp');
    entries.set(request.raw, checked.entry);
    // A call still running when its credential is revoked is cut, as the API's requests are.
    deps.live.track(request.raw, checked.entry, () => request.raw.socket.destroy());
    reply.raw.once('close', () => deps.live.untrack(request.raw));
    return undefined;
  };

  app.register(async (mcp) => {
    mcp.addHook('onRequest', authenticate);
    // DELETE ends a session and has no body; a client that still says content-type: application/json
    // would otherwise get fastify's 400 (empty JSON body) instead of the session ended.
    const json = mcp.getDefaultJsonParser('error', 'error');
    // A large body (a write_file) is parsed off the daemon's one thread, its place held until then.
    mcp.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, raw, done) => {
      const body = raw as Buffer;
      if (request.method === 'DELETE' && body.length === 0) return done(null, undefined);
      if (body.length <= LARGE_MESSAGE) return json(request, body.toString('utf8'), done);
      parseOffThread([body]).then(
        (value) => done(null, value),
        () => done(new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY(), undefined),
      );
    });
    // A body is refused as it arrives, before it is parsed: past MCP_MESSAGE_MAX (the route's bodyLimit,
    // from Content-Length before reading any, else once that much came), of too many values to parse in
    // reasonable time, or large while its principal already sends LARGE_BODIES such.
    mcp.addHook('preParsing', async (request, reply, payload) => {
      const declared = Number(request.headers['content-length']);
      if (request.method !== 'POST' || declared > MCP_MESSAGE_MAX) return payload;
      const principal = request.principal!.name;
      let held = false;
      const take = (): boolean => {
        const release = deps.large.take(principal);
        if (release === null) return false;
        held = true;
        releases.set(request.raw, release);
        reply.raw.once('close', release);
        return true;
      };
      const busy = (): BodyRefused => new BodyRefused(429, busyText(principal));
      if (declared > LARGE_MESSAGE && !take()) throw busy();
      const values = new ValueCounter();
      let bytes = 0;
      const body = deps.bodies.open(principal, reply.raw);
      return payload.pipe(
        new Transform({
          transform(chunk: Buffer, _encoding, done) {
            // Answered (refused, or past the body limit): what still comes while the connection lingers
            // is dropped, and takes no place (nothing would give it back).
            if (reply.sent || reply.raw.writableEnded) return done();
            bytes += chunk.length;
            const refused = body.take(chunk.length);
            if (refused) return done(refused);
            if (!held && bytes > LARGE_MESSAGE && !take()) return done(busy());
            if (values.push(chunk) > MCP_MESSAGE_VALUES) return done(new BodyRefused(413, TOO_MANY_VALUES));
            done(null, chunk);
          },
        }),
      );
    });
    mcp.addHook('preValidation', async (request) => releases.get(request.raw)?.());
    // A body that is not JSON is answered as JSON-RPC says (-32700), as the SDK's transport does: the
    // client's JSON-RPC layer shows that, where the API's {error: 'bad_request'} reads as no answer at all.
    // So is one refused as it arrived, saying why, and the connection closed: the rest of it is not read.
    mcp.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
      const refuse = connecting(request) ? (status: number, message: string, code: number) => refuseConnect(request, reply, status, message, code) : (status: number, message: string, code: number) => rpcError(reply, status, message, code);
      if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return refuse(400, `Parse error: ${err.message}`, PARSE_ERROR);
      if (err instanceof BodyRefused) {
        lingerOnClose(request.raw.socket);
        return refuse(err.statusCode, err.message, INVALID_REQUEST).header('connection', 'close');
      }
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        lingerOnClose(request.raw.socket);
        const declared = Number(request.headers['content-length']);
        return refuse(413, tooLarge(Number.isNaN(declared) ? null : declared), INVALID_REQUEST).header('connection', 'close');
      }
      throw err; // the server's own handler
    });
    // The server's 1 MiB body limit would refuse a write_file the tool advertises: MCP messages get their own.

    // Streamable HTTP: POST carries client messages, GET opens the server's stream, DELETE ends the session.
    mcp.all('/mcp', { bodyLimit: MCP_MESSAGE_MAX }, async (request, reply) => {
      const principal = request.principal!;
      // Protocol 2025-06-18 removed JSON-RPC batches, and every revision served here is as new or newer;
      // the SDK still takes them. Refused before it, whatever the session.
      if (request.method === 'POST' && Array.isArray(request.body)) {
        const why = 'JSON-RPC batches (arrays) are not supported: MCP removed them in protocol 2025-06-18; send each message in a POST of its own';
        return connecting(request) ? refuseConnect(request, reply, 400, why, INVALID_REQUEST) : rpcError(reply, 400, why, INVALID_REQUEST);
      }
      const id = request.headers[SESSION_HEADER];
      if (typeof id === 'string') {
        const session = sessions.use(id, principal.name);
        if (!(session?.transport instanceof JsonPostTransport)) return rpcError(reply, 404, 'no such MCP session (expired or ended): initialize a new one');
        hijack(reply);
        if (session.transport.answer(request.raw, reply.raw, request.body) || session.transport.resume(request.raw, reply.raw)) return;
        return session.transport.sdk.handleRequest(request.raw, reply.raw, request.body);
      }
      if (request.method !== 'POST' || !isInitializeRequest(request.body)) {
        const why = 'no Mcp-Session-Id header: the first request of a session is initialize';
        return connecting(request) ? refuseConnect(request, reply, 400, why) : rpcError(reply, 400, why);
      }
      if (!sessions.admit(principal.name)) return refuseConnect(request, reply, 503, `too many MCP sessions on this daemon (${sessions.size}); try again later`);
      // The session's streams, ours and the SDK's, resume from one store: an event id is only ever this session's.
      const events = new SessionEvents();
      const sdk = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        // One JSON answer per request: no stream to set up when a call has nothing to send along the way.
        enableJsonResponse: true,
        eventStore: events,
        onsessioninitialized: (sid): void => open(sid, principal, transport, entries.get(request.raw)!),
      });
      const transport = new JsonPostTransport(sdk, events);
      transport.onclose = () => forget(transport.sessionId, transport);
      await createMcpServer(toolDeps(principal), connection(request, 'streamable-http')).connect(transport);
      hijack(reply);
      return sdk.handleRequest(request.raw, reply.raw, request.body);
    });

    // Legacy HTTP+SSE (protocol 2024-11-05): a GET opens the event stream, which names the POST endpoint.
    mcp.get('/sse', async (request, reply) => {
      const principal = request.principal!;
      if (!sessions.admit(principal.name)) return rpcError(reply, 503, `too many MCP sessions on this daemon (${sessions.size}); try again later`);
      hijack(reply);
      const transport = new SSEServerTransport('/messages', reply.raw);
      streams.set(transport, reply.raw);
      open(transport.sessionId, principal, transport, entries.get(request.raw)!);
      transport.onclose = () => forget(transport.sessionId, transport);
      await createMcpServer(toolDeps(principal), connection(request, 'sse')).connect(transport);
    });

    mcp.post<{ Querystring: { sessionId?: string } }>('/messages', { bodyLimit: MCP_MESSAGE_MAX }, async (request, reply) => {
      const id = request.query.sessionId;
      const session = id ? sessions.use(id, request.principal!.name) : null;
      // A Streamable HTTP session's id here would have its request hang, never answered.
      if (!(session?.transport instanceof SSEServerTransport)) return rpcError(reply, 404, 'no such MCP session: open one with GET /sse');
      // Every answer goes out on the event stream: a client that posted on and never read it piled them up in
      // the daemon's memory (a tools/list of a few bytes, tens of KiB of answer). Past one answer's worth unread, none is taken.
      const unread = streams.get(session.transport)?.writableLength ?? 0;
      if (unread > MCP_ANSWER_MAX) {
        return rpcError(reply, 429, `this session's event stream (GET /sse) holds ${Math.round(unread / (1 << 20))} MiB its client has not read: read it before sending more`);
      }
      hijack(reply);
      return session.transport.handlePostMessage(request.raw, reply.raw, request.body);
    });
  });
}
