// The daemon's HTTPS server (fastify): the web console's files and the JSON API. Every route is a thin
// adapter: actions go through perform() (core/fanout.ts), queries read the daemon's own state; the
// principal comes from auth.ts and its scope decides what it may see or do.
import cookie from '@fastify/cookie';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { readFileSync } from 'node:fs';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { resolve } from 'node:path';
import type { Config } from '../../config/config.js';
import { expandHome } from '../../config/paths.js';
import { principalOf, type PrincipalEntry, type Principals } from '../../config/principals.js';
import type { GatewayContext } from '../../core/context.js';
import { UsageError } from '../../core/errors.js';
import type { Principal } from '../../core/types.js';
import type { RateLimiter } from '../../hosts/rate-limit.js';
import { bearerToken, checkToken, CSRF_HEADER, LiveCredentials, LoginGuard, LoginRate, sameSecret, SESSION_COOKIE, SESSION_LIMITS, SessionStore, type BrowserSession } from './auth.js';
import { fail, forbiddenOrigin, principalsInvalid, tooManyFailures } from './errors.js';
import { addressInUse, isLoopback, parseListen } from './listen.js';
import type { AttachSlots } from '../attach-slots.js';
import { CLOSE, MAX_CLIENT_FRAME } from '../terminal.js';
import { registerAgentRoutes } from './agents-routes.js';
import { registerApprovalLinks, registerApprovalRoutes } from './approvals-routes.js';
import { registerMcp } from '../mcp/http.js';
import type { LargeMessages } from '../mcp/line-transport.js';
import { DEFAULT_LIMITS } from '../mcp/sessions.js';
import { Networks } from '../relay/network.js';
import { registerRelay, relaySettings } from '../relay/route.js';
import { registerAuditRoutes } from './audit-routes.js';
import { BodyBudget, BodyRefused, lingerOnClose } from './body-budget.js';
import { limitConnections } from './connections.js';
import { registerRecordingRoutes } from './recordings-routes.js';
import { principalOfRequest, registerApi } from './routes.js';
import type { SessionHandover } from './session-handover.js';
import { registerSessionRoutes } from './sessions-routes.js';
import { registerStatic } from './static.js';
import { ensureSelfSigned, type TlsFiles } from './tls.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the API's authentication hook; null on public routes (login, the console's files). */
    principal: Principal | null;
    /** The browser session the request came with, when it was authenticated by cookie. */
    browserSession: { cookie: string; session: BrowserSession } | null;
  }
  interface FastifyContextConfig {
    /** The route needs no principal (POST /api/login). */
    public?: boolean;
    /** The route is a WebSocket endpoint (set from its `websocket` option). */
    websocket?: boolean;
  }
}

/** --listen, --tls-cert, --tls-key, --no-tls, --insecure-no-tls of `remux daemon start`. */
export interface HttpFlags {
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  tls?: boolean;
  insecureNoTls?: boolean;
}

export interface HttpSettings {
  host: string;
  port: number;
  /** Configured PEM files, 'self-signed' (kept in $REMUX_HOME/tls), or null for plain HTTP. */
  tls: TlsFiles | 'self-signed' | null;
  origins: readonly string[];
  sessionTtlMs: number;
  /** Proxies whose X-Forwarded-For entry names the client (http.trusted_proxies). */
  trustedProxies: Networks;
  /** How long a request may take to arrive whole (http.request_timeout_seconds). */
  requestTimeoutMs: number;
}

export interface HttpServer {
  url: string;
  /** The principals file changed: browser sessions, WebSockets and requests it no longer accepts end now. */
  revoke(now: Principals | Error): void;
  /** The live browser sessions and login lockouts, for the next daemon. */
  handOver(): Omit<SessionHandover, 'writtenAt'>;
  close(): Promise<void>;
}

/** What config.yaml and the flags ask for; throws UsageError for what must not be served. */
export function httpSettings(config: Config['http'], flags: HttpFlags): HttpSettings {
  const { host, port } = parseListen(flags.listen ?? config.listen);
  const insecure = flags.insecureNoTls === true || config.insecure_no_tls;
  const plain = insecure || flags.tls === false || !config.tls;
  if (plain && !isLoopback(host) && !insecure) {
    throw new UsageError(
      `refusing to serve plain HTTP on ${host}, which is not a loopback address: tokens and session cookies would cross the network in clear`,
      'keep TLS (the default), listen on 127.0.0.1, or pass --insecure-no-tls if something else (a TLS proxy on this machine) protects the traffic',
    );
  }
  const cert = flags.tlsCert ?? config.tls_cert;
  const key = flags.tlsKey ?? config.tls_key;
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  const tls = plain ? null : cert && key ? { cert: resolve(expandHome(cert)), key: resolve(expandHome(key)) } : 'self-signed';
  const trustedProxies = new Networks(config.trusted_proxies, 'http.trusted_proxies');
  return {
    host,
    port,
    tls,
    origins: config.origins,
    sessionTtlMs: config.session_hours * 3600_000,
    trustedProxies,
    requestTimeoutMs: Math.round(config.request_timeout_seconds * 1000),
  };
}

/**
 * A request body is held in the daemon's memory while it arrives, for up to http.request_timeout_seconds.
 * One read before any credential is checked (a login, a decision link's answer, an unknown route's) is
 * kept small: at 1 MiB each, the connections one address may hold took 1.6 GB of the heap and a few
 * addresses ended the daemon (heap out of memory). A route that takes more says so, and is authenticated
 * before its body is read.
 */
const PUBLIC_BODY_LIMIT = 16 << 10;

const SECURITY_HEADERS = {
  // The console's script and styles come from this origin only: no inline code, no CDN, no framing.
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

/**
 * What Node hands over before a request reaches a route: one that did not arrive in time (408), headers
 * too large (431), a malformed request (400), answered as the API words its errors, and the connection closed.
 */
function answerClientError(requestTimeoutMs: number): (err: NodeJS.ErrnoException, socket: Duplex) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const [status, error, message] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'request_timeout', `the request did not arrive whole within ${requestTimeoutMs / 1000} s; a larger upload over a slow link needs a higher http.request_timeout_seconds (config.yaml)`]
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'headers_too_large', 'the request headers are larger than the server accepts']
          : [400, 'bad_request', 'a malformed HTTP request'];
    const body = JSON.stringify({ error, message });
    if (socket.writable) {
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    }
    socket.destroy();
  };
}

export async function startHttp(
  ctx: GatewayContext,
  limiter: RateLimiter,
  settings: HttpSettings,
  daemon: { tlsDir: string; recordingsDir: string; slots: AttachSlots; inherited: SessionHandover | null; large: LargeMessages },
  log: (line: string) => void,
): Promise<HttpServer> {
  const tlsFiles = settings.tls === 'self-signed' ? await ensureSelfSigned(daemon.tlsDir, settings.host, log) : settings.tls;
  const secure = (reply: FastifyReply): void => {
    reply.headers(SECURITY_HEADERS);
    if (tlsFiles) reply.header('strict-transport-security', 'max-age=31536000');
  };
  const options = {
    logger: false,
    bodyLimit: PUBLIC_BODY_LIMIT,
    forceCloseConnections: true,
    // Unknown body properties are errors, not silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
    // request.ip, which failed token checks are counted by: behind a proxy, the client the proxy names (the
    // rightmost X-Forwarded-For hop that is not a trusted proxy), or every client shared the proxy's lockout.
    ...(settings.trustedProxies.size > 0 ? { trustProxy: (address: string) => settings.trustedProxies.has(address) } : {}),
    // Headers, then a byte of body now and then, held a connection for ever (slowloris). Node counts this
    // until the request has arrived, not while it is answered: streamed answers (/api/run, the audit
    // stream, MCP's streams) and upgraded WebSockets (terminals, agents) take as long as they need.
    requestTimeout: settings.requestTimeoutMs,
    clientErrorHandler: answerClientError(settings.requestTimeoutMs),
    // A URL that does not decode (`/%E0%A4%A`) is refused before any route or hook. Node hands a WebSocket
    // upgrade's socket over whole, past every timeout of its own, and only @fastify/websocket's onResponse
    // hook (which this answer skips) ended it: each such upgrade held a connection for ever, before any
    // credential, and a few addresses took every place the connection limits leave.
    frameworkErrors: (err: Error, request: FastifyRequest, reply: FastifyReply) => {
      secure(reply);
      if (request.headers.upgrade !== undefined) reply.raw.once('finish', () => request.raw.socket.destroy());
      return fail(reply, 400, 'bad_request', `${err.message}: a % in a URL starts the escape of a UTF-8 byte (%2F, %C3%A9)`);
    },
  };
  // Node's own defaults: headers within 60 s (never more than the whole request), both limits checked every
  // 30 s; at a quarter of the limit when that is shorter, so that a short one is kept close to its word.
  const timeouts = { headersTimeout: Math.min(60_000, settings.requestTimeoutMs), connectionsCheckingInterval: Math.ceil(Math.min(30_000, settings.requestTimeoutMs / 4)) };
  const app = (
    tlsFiles
      ? Fastify({ ...options, https: { ...timeouts, cert: readFileSync(tlsFiles.cert), key: readFileSync(tlsFiles.key) } })
      : Fastify({ ...options, http: timeouts })
  ) as unknown as FastifyInstance;

  // Proxies in front of the daemon (of the console and API, of agents) carry many clients each.
  const relay = relaySettings(ctx.config.relay);
  limitConnections(app.server, (address) => settings.trustedProxies.has(address) || relay.trusted.has(address), log);

  const scheme = tlsFiles ? 'https' : 'http';
  const allowedOrigins = new Set(settings.origins);
  const guard = new LoginGuard();
  const currentPrincipals = (): Principals | Error => {
    try {
      return ctx.principals();
    } catch (err) {
      return err as Error;
    }
  };
  const live = new LiveCredentials(currentPrincipals);
  const sessions = new SessionStore(settings.sessionTtlMs, SESSION_LIMITS, (session, why) => live.endSession(session, why));
  if (daemon.inherited) {
    const { sessions: handed, logins, writtenAt } = daemon.inherited;
    const { locked, streaks, knownAt, expired } = guard.takeBack(logins, writtenAt);
    if (logins.failures.length + logins.known.length > 0) {
      log(`login lockouts: took back ${locked} locked-out addresses, ${streaks} with failed token checks short of a lockout and the tokens known at ${knownAt} (${expired} whose lockout or failures ran out since)`);
    }
    const principals = currentPrincipals();
    if (principals instanceof Error) log(`browser sessions: none of the daemon before taken back: ${principals.message}`);
    else {
      const { taken, expired, revoked, overLimit } = sessions.takeBack(handed, writtenAt, principals);
      log(`browser sessions: took back ${taken} of the ${handed.length} the daemon before left (${expired} expired, ${revoked} of a principal removed or a token rotated since, ${overLimit} past the limits)`);
    }
  }
  /** The credential (and browser session) each WebSocket upgrade was authenticated with, until its socket is open and tracked. */
  const upgrades = new WeakMap<object, { entry: PrincipalEntry; session: BrowserSession | null }>();
  /**
   * An authenticated request is tracked while it is answered: a revoked credential cuts a streaming run
   * too. One opened with a cookie (a WebSocket, the audit stream, a streamed run) also ends when its
   * browser session ends (logout, a new login).
   */
  const admit = (request: FastifyRequest, reply: FastifyReply, entry: PrincipalEntry, upgrade: boolean, session: BrowserSession | null = null): void => {
    if (upgrade) return void upgrades.set(request.raw, { entry, session });
    live.track(request.raw, entry, () => request.raw.socket.destroy(), session);
    reply.raw.once('close', () => live.untrack(request.raw));
  };

  app.decorateRequest('principal', null);
  app.decorateRequest('browserSession', null);
  await app.register(cookie);
  // Before the websocket plugin's own (which closes them without a code): a stopping daemon says it goes
  // away (1001), and the console's terminals reconnect to the next one.
  app.addHook('preClose', (done) => {
    for (const ws of app.websocketServer.clients) ws.close(1001, 'the daemon is stopping');
    done();
  });
  // A frame past the terminal's own limit (a paste of up to 1 MiB) is refused by ws before it is buffered.
  await app.register(websocket, { options: { maxPayload: MAX_CLIENT_FRAME } });
  // The API's WebSockets are tracked under the principal they were authenticated as. Outbound agents
  // (/agent/connect) authenticate with their own host tokens before the upgrade (gateway/relay/route.ts).
  app.websocketServer.on('connection', (ws: WebSocket, raw: IncomingMessage) => {
    const upgrade = upgrades.get(raw);
    if (upgrade) live.trackSocket(ws, upgrade.entry, upgrade.session);
    else if (raw.url?.startsWith('/api/')) ws.close(CLOSE.unauthenticated, 'not authenticated'); // not reached: the API's hook refused it
  });
  // @fastify/websocket upgrades a request on any GET route, then closes it where the route is not a
  // WebSocket (after a close handshake of up to 30 s): a 101 to anyone, before any credential was asked for.
  // Such an upgrade is answered instead, and its connection closed.
  app.addHook('onRoute', (route) => {
    if (route.websocket) route.config = { ...route.config, websocket: true };
  });
  app.addHook('onRequest', async (request, reply) => {
    secure(reply);
    if (request.ws && !request.is404 && !request.routeOptions.config.websocket) {
      return fail(reply, 400, 'bad_request', `${request.url.split('?')[0]} is not a WebSocket endpoint`);
    }
  });
  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; code?: string }, request, reply) => {
    // Bodies are JSON: one sent as anything else (curl -d sends a form) is told what to send, not only "Unsupported Media Type".
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return fail(reply, 415, 'bad_request', `send the body as JSON with the header Content-Type: application/json (this request's: ${request.headers['content-type'] ?? 'none'})`);
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return fail(reply, 413, 'too_large', `the request body is larger than ${request.method} ${request.url.split('?')[0]} takes (${request.routeOptions.bodyLimit} bytes)`);
    }
    if (err instanceof BodyRefused) {
      lingerOnClose(request.raw.socket);
      return fail(reply, err.statusCode, err.code, err.message).header('connection', 'close');
    }
    if (err.validation || (err.statusCode !== undefined && err.statusCode < 500)) return fail(reply, err.statusCode ?? 400, 'bad_request', validationMessage(err));
    log(`HTTP ${request.method} ${request.url}: ${err.stack ?? err.message}`);
    return fail(reply, 500, 'internal', 'internal error; the daemon log has the details');
  });
  app.setNotFoundHandler((request, reply) => fail(reply, 404, 'not_found', `no such route: ${request.method} ${request.url.split('?')[0]}`));

  /**
   * Every /api route but login: who is asking (bearer token, else session cookie), and for a cookie,
   * the checks that keep another site from using it (Origin on anything that changes state or opens a
   * WebSocket, plus the CSRF token on state changes). A wrong Origin is refused whatever the credential.
   */
  const authenticate = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const origin = request.headers.origin;
    if (origin !== undefined && !allowedOrigins.has(origin)) return forbiddenOrigin(reply, origin);
    const principals = currentPrincipals();
    if (principals instanceof Error) return principalsInvalid(reply);
    if (request.routeOptions.config.public) {
      // A login sets a cookie for browsers: only a page of an allowed origin may ask for one.
      return origin === undefined ? fail(reply, 403, 'forbidden_origin', 'a login must carry the Origin header of an allowed page') : undefined;
    }
    const upgrade = request.headers.upgrade?.toLowerCase() === 'websocket';
    const bearer = bearerToken(request.headers.authorization);
    if (bearer !== null) {
      const checked = await checkToken(guard, request.ip, bearer, principals);
      if ('locked' in checked) return tooManyFailures(reply, checked.locked);
      if ('bad' in checked) return fail(reply, 401, 'unauthenticated', 'the bearer token matches no principal');
      request.principal = principalOf(checked.entry, 'token');
      admit(request, reply, checked.entry, upgrade);
      return undefined;
    }
    const sessionCookie = request.cookies[SESSION_COOKIE];
    const found = sessionCookie ? sessions.find(sessionCookie, principals) : null;
    if (!sessionCookie || !found) return fail(reply, 401, 'unauthenticated', 'log in (POST /api/login) or send Authorization: Bearer TOKEN');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      if (origin === undefined) return fail(reply, 403, 'forbidden_origin', 'a request with a session cookie that changes state must carry an Origin header');
      const csrf = request.headers[CSRF_HEADER];
      if (typeof csrf !== 'string' || !sameSecret(csrf, found.session.csrfToken)) {
        return fail(reply, 403, 'csrf', `missing or wrong ${CSRF_HEADER} header (GET /api/me gives the token)`);
      }
    } else if (upgrade && origin === undefined) {
      return fail(reply, 403, 'forbidden_origin', 'a WebSocket opened with a session cookie must carry an Origin header');
    }
    request.principal = principalOf(found.entry, 'cookie');
    request.browserSession = { cookie: sessionCookie, session: found.session };
    admit(request, reply, found.entry, upgrade, found.session);
    return undefined;
  };

  // One count of each principal's bodies arriving, for the API's routes and MCP's.
  const bodies = new BodyBudget();
  await app.register(async (api) => {
    api.addHook('onRequest', authenticate);
    // A body before any credential (a login) is bounded by PUBLIC_BODY_LIMIT and the connections per address.
    api.addHook('preParsing', async (request, reply, payload) => {
      const hasBody = request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined;
      return request.principal && hasBody ? bodies.counted(request.principal.name, payload, reply.raw) : payload;
    });
    registerApi(api, { ctx, limiter, sessions, live, guard, logins: new LoginRate(), sessionTtlMs: settings.sessionTtlMs });
    registerAuditRoutes(api, ctx, limiter);
    registerApprovalRoutes(api, ctx, limiter);
    registerRecordingRoutes(api, ctx, daemon.recordingsDir, limiter);
    registerSessionRoutes(api, { ctx, limiter, slots: daemon.slots, recordingsDir: daemon.recordingsDir, principalOf: principalOfRequest });
    registerAgentRoutes(api, ctx, limiter, principalOfRequest);
  });
  registerApprovalLinks(app, ctx);
  // MCP clients authenticate with bearer tokens only (never the console's cookie): their own hook.
  let publicOrigin = ''; // known once listening (the port may be chosen then)
  // A session whose client never finishes its handshake is ended as soon as a request's headers would be.
  registerMcp(app, { ctx, limiter, guard, allowedOrigins, publicOrigin: () => publicOrigin, live, large: daemon.large, bodies, limits: { ...DEFAULT_LIMITS, firstUseMs: timeouts.headersTimeout } });
  registerRelay(app, ctx, relay, guard, log);
  registerStatic(app, log);

  try {
    await app.listen({ host: settings.host, port: settings.port });
  } catch (err) {
    await app.close();
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    throw new Error(addressInUse(settings), { cause: err });
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : settings.port;
  for (const origin of ownOrigins(scheme, settings.host, port)) allowedOrigins.add(origin);
  const shownHost = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  const url = `${scheme}://${shownHost}:${port}/`;
  publicOrigin = settings.origins[0] ?? new URL(url).origin;
  log(`web console and API on ${url}${tlsFiles ? ` (certificate ${tlsFiles.cert})` : ' (plain HTTP)'}`);
  ctx.approvals.publishConsoleUrl(url);
  return {
    url,
    revoke(now) {
      if (!(now instanceof Error)) sessions.dropRevoked(now);
      const closed = live.revoke(now);
      if (closed > 0) log(`principals changed: ended ${closed} connection${closed === 1 ? '' : 's'} (WebSockets, requests) of revoked credentials`);
    },
    handOver: () => ({ sessions: sessions.handOver(), logins: guard.handOver() }),
    close: () => {
      ctx.approvals.publishConsoleUrl(null);
      return app.close();
    },
  };
}

/**
 * The daemon's own origins, always allowed: what a browser sends for a page loaded from it. A wildcard
 * address (0.0.0.0, ::) has no name of its own here: its public origin must be configured.
 */
function ownOrigins(scheme: string, host: string, port: number): string[] {
  const defaultPort = scheme === 'https' ? 443 : 80;
  const at = (h: string): string => `${scheme}://${h}${port === defaultPort ? '' : `:${port}`}`;
  if (isLoopback(host)) return [at('127.0.0.1'), at('localhost'), at('[::1]'), ...(host.startsWith('127.') && host !== '127.0.0.1' ? [at(host)] : [])];
  if (host === '0.0.0.0' || host === '::') return [];
  return [at(host.includes(':') ? `[${host}]` : host)];
}

/**
 * A refused request in the validator's words, naming the field it does not know: ajv says only that
 * there is one ("body must NOT have additional properties"), which leaves the client guessing which.
 */
function validationMessage(err: Error & { validation?: unknown }): string {
  const errors = Array.isArray(err.validation) ? (err.validation as Array<{ keyword?: string; params?: { additionalProperty?: unknown } }>) : [];
  const unknown = errors.flatMap((e) => (e.keyword === 'additionalProperties' && typeof e.params?.additionalProperty === 'string' ? [e.params.additionalProperty] : []));
  return unknown.length > 0 ? `${err.message} (unknown: ${unknown.map((name) => JSON.stringify(name)).join(', ')})` : err.message;
}
