// The JSON API (README "HTTP API"). Thin adapters: /api/run fans out through perform() exactly like
// `remux client run` (scope, policy, audit, rate limit, exit semantics); the queries read the
// daemon's own state through the code the CLI uses, cut to the principal's scope.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PassThrough } from 'node:stream';
import { principalOf } from '../../config/principals.js';
import { asPrincipal, type GatewayContext } from '../../core/context.js';
import { EXIT } from '../../core/exit-codes.js';
import { combinedExit, fanOut, selectHosts } from '../../core/fanout.js';
import { writableFlow } from '../../exec/output.js';
import { recordRefusal } from '../../core/perform.js';
import { DAEMON_HOST } from '../../core/refusal-digest.js';
import { hostsInScope, noHostsInScope } from '../../core/scope.js';
import type { ExecAction, Principal } from '../../core/types.js';
import { parseSelector } from '../../hosts/inventory.js';
import { rateLimitedMessage, type RateLimiter } from '../../hosts/rate-limit.js';
import { approvalsApprover } from '../../notify/service.js';
import { hostRows, hostStatuses } from '../../hosts/view.js';
import { resultJson } from '../../cli/run-view.js';
import { AttachSlots } from '../attach-slots.js';
import { TERMINAL_FLOW } from '../terminal.js';
import { normalizeAddress } from '../relay/network.js';
import { checkToken, SESSION_COOKIE, type LiveCredentials, type LoginGuard, type LoginRate, type SessionStore } from './auth.js';
import { fail, rateLimited, tooManyFailures, tooManyLogins } from './errors.js';

export interface ApiDeps {
  ctx: GatewayContext;
  limiter: RateLimiter;
  sessions: SessionStore;
  /** What is open under each credential and browser session (ended with the session at logout). */
  live: LiveCredentials;
  guard: LoginGuard;
  logins: LoginRate;
  sessionTtlMs: number;
}


const ERROR = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } } as const;
const SCOPE = {
  type: 'object',
  properties: {
    admin: { type: 'boolean' },
    hosts: { type: 'string' },
    users: { type: 'array', items: { type: 'string' } },
    createAs: { type: 'array', items: { type: 'string' } },
    attach: { type: 'string' },
    policies: { type: 'array', items: { type: 'string' } },
  },
} as const;
const ME = {
  type: 'object',
  properties: { name: { type: 'string' }, via: { type: 'string' }, scope: SCOPE, csrfToken: { type: ['string', 'null'] } },
} as const;

/**
 * The body of a route that carries a command (/api/run, POST /api/sessions): 65536 characters of it, each
 * up to 3 bytes of UTF-8, and the rest. Larger than the server's own limit, which is for bodies read before
 * any credential: these are read once the request's credential was checked.
 */
export const COMMAND_BODY_LIMIT = 256 << 10;

/**
 * Ping WebSockets open at once. Each may hold a message arriving (up to 1 MiB) and an answer its client
 * does not read: about 2.4 MB of the daemon's memory, and any principal (read-only too) opened as many as
 * its connections allowed (1024 from one address: 2.4 GB).
 */
export const PING_LIMITS = { perPrincipal: 8, total: 64 } as const;

export function principalOfRequest(request: FastifyRequest): Principal {
  // The authentication hook runs before every non-public route; a missing principal is a bug, and denies.
  if (!request.principal) throw new Error('internal: an API route ran without an authenticated principal');
  return request.principal;
}

/**
 * A preHandler that takes the principal's rate-limit tokens for a request, as every CLI command and MCP
 * call takes one: `cost` of them (a page of rows costs a token per 100 asked for), at most a whole burst.
 * Past the limit: 429, and nothing is done. Reads take them too: a loop of them is as much a flood.
 * A refusal is audited as every refusal is, a flood of them as a count (core/refusal-digest.ts).
 */
export function admittedBy(ctx: GatewayContext, limiter: RateLimiter, cost: (request: FastifyRequest) => number = () => 1) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const principal = principalOfRequest(request).name;
    const taken = limiter.take(principal, Math.min(cost(request), limiter.burst));
    if (taken.ok) return undefined;
    const reason = rateLimitedMessage(taken.retryInMs);
    if (ctx.refusals?.admit(principal, HTTP_REQUEST) !== false) {
      const resource = `${request.method} ${request.url.split('?')[0]}`;
      await ctx.audit.record({ principal, host: DAEMON_HOST, operation: HTTP_REQUEST, resource, decision: 'deny', reason }, { exitCode: EXIT.RATE_LIMITED, durationMs: 0, refusal: reason });
    }
    return rateLimited(reply, taken.retryInMs);
  };
}

/** The audit's operation for an API request refused before its route ran (its resource: method and path). */
const HTTP_REQUEST = 'http.request';

/** The cost of a page of `limit` rows (GET /api/audit, /api/recordings: 100 by default, up to 1000). */
export function pageCost(request: FastifyRequest): number {
  return Math.max(1, Math.ceil(((request.query as { limit?: number }).limit ?? 100) / 100));
}

export function registerApi(api: FastifyInstance, deps: ApiDeps): void {
  const { ctx } = deps;
  const audit = (principal: string, operation: string, allowed: boolean, reason: string): Promise<number> =>
    ctx.audit.record(
      { principal, host: DAEMON_HOST, operation, decision: allowed ? 'allow' : 'deny', reason },
      { exitCode: allowed ? 0 : EXIT.DENIED, durationMs: 0, ...(allowed ? {} : { refusal: reason }) },
    );

  api.post<{ Body: { token: string } }>(
    '/api/login',
    {
      config: { public: true },
      schema: {
        body: { type: 'object', required: ['token'], additionalProperties: false, properties: { token: { type: 'string', minLength: 1, maxLength: 256 } } },
        response: { 200: ME, '4xx': ERROR },
      },
    },
    async (request, reply) => {
      const checked = await checkToken(deps.guard, request.ip, request.body.token, ctx.principals());
      if ('locked' in checked) return tooManyFailures(reply, checked.locked);
      if ('bad' in checked) {
        await audit('(unknown)', 'login', false, `a token matching no principal, from ${shownAddress(request.ip)}`);
        return fail(reply, 401, 'unauthenticated', 'the token matches no principal');
      }
      // Refused before anything is written: the audit rows of logins (and their logouts) stay bounded.
      const wait = deps.logins.take(request.ip, checked.entry.name);
      if (wait !== null) return tooManyLogins(reply, wait);
      // The session the browser came with ends here, not when it expires: a cookie planted or left behind
      // before this login (another principal's, an old one) authenticates nothing from now on.
      const previous = request.cookies[SESSION_COOKIE];
      if (previous) deps.sessions.delete(previous, 'this browser logged in again');
      const { cookie, session } = deps.sessions.create(checked.entry);
      reply.setCookie(SESSION_COOKIE, cookie, { httpOnly: true, secure: true, sameSite: 'strict', path: '/', maxAge: Math.floor(deps.sessionTtlMs / 1000) });
      await audit(checked.entry.name, 'login', true, `browser session from ${shownAddress(request.ip)}`);
      const principal = principalOf(checked.entry, 'cookie');
      return { name: principal.name, via: principal.via, scope: principal.scope, csrfToken: session.csrfToken };
    },
  );

  api.post('/api/logout', { schema: { response: { '4xx': ERROR } } }, async (request, reply) => {
    const principal = principalOfRequest(request);
    if (!request.browserSession) return fail(reply, 400, 'bad_request', 'no browser session to end (bearer tokens are not sessions)');
    // Everything opened with this session ends with it, this request aside: its answer clears the cookie.
    deps.live.untrack(request.raw);
    deps.sessions.delete(request.browserSession.cookie, 'this browser session was logged out');
    reply.clearCookie(SESSION_COOKIE, { path: '/', secure: true, httpOnly: true, sameSite: 'strict' });
    await audit(principal.name, 'logout', true, `browser session from ${shownAddress(request.ip)}`);
    return reply.code(204).send();
  });

  api.get('/api/me', { schema: { response: { 200: ME } } }, async (request) => {
    const principal = principalOfRequest(request);
    return { name: principal.name, via: principal.via, scope: principal.scope, csrfToken: request.browserSession?.session.csrfToken ?? null };
  });

  api.get('/api/hosts', { preHandler: admittedBy(ctx, deps.limiter) }, async (request, reply) => {
    const principal = principalOfRequest(request);
    const visible = hostsInScope(principal.scope, ctx.registry.inventory());
    if (visible.length === 0 && !principal.scope.admin) {
      return fail(reply, 403, 'out_of_scope', noHostsInScope(principal));
    }
    const live = new Map(hostStatuses(ctx).map((h) => [h.name, h]));
    return hostRows(visible, live, ctx.config.exec.secure_path);
  });

  api.post<{ Body: { selector: string; command: string; cwd?: string; policy?: string } }>(
    '/api/run',
    {
      bodyLimit: COMMAND_BODY_LIMIT,
      schema: {
        body: {
          type: 'object',
          required: ['selector', 'command'],
          additionalProperties: false,
          properties: {
            selector: { type: 'string', minLength: 1, maxLength: 4096 },
            command: { type: 'string', minLength: 1, maxLength: 65536 },
            cwd: { type: 'string', pattern: '^/' },
            policy: { type: 'string', minLength: 1 },
          },
        },
      },
    },
    async (request, reply) => {
      const as = asPrincipal(ctx, principalOfRequest(request));
      const body = request.body;
      const action = (host: string): ExecAction => ({
        kind: 'exec',
        host,
        command: body.command,
        ...(body.cwd ? { cwd: body.cwd } : {}),
        ...(body.policy ? { policy: body.policy } : {}),
      });
      let hosts: string[];
      try {
        parseSelector(body.selector);
      } catch (err) {
        return fail(reply, 400, 'bad_request', (err as Error).message);
      }
      try {
        hosts = await selectHosts(as, body.selector, action);
      } catch (err) {
        const { name, message } = err as Error;
        if (name === 'ScopeError') return fail(reply, 403, 'out_of_scope', message);
        if (name === 'InventoryError') return fail(reply, 404, 'not_found', message);
        throw err;
      }
      const admitted = deps.limiter.take(as.principal.name);
      if (!admitted.ok) {
        const message = rateLimitedMessage(admitted.retryInMs);
        await Promise.all(hosts.map((host) => recordRefusal(as, action(host), 'rate_limited', EXIT.RATE_LIMITED, message)));
        return rateLimited(reply, admitted.retryInMs);
      }
      // A principal at its bound of commands running is refused the whole request at once (a 429 rather
      // than a stream of refusals); one under it may still see some hosts of a wide fan-out refused.
      const full = as.running?.refusalFor(as.principal.name) ?? null;
      if (full !== null) {
        await Promise.all(hosts.map((host) => recordRefusal(as, action(host), 'rate_limited', EXIT.RATE_LIMITED, full)));
        return fail(reply, 429, 'too_many_commands', full);
      }
      await as.registry.prepare(hosts);

      // NDJSON: the hosts, output as it comes, one result per host, then the exit status `client run` would give.
      const stream = new PassThrough();
      const cancel = new AbortController();
      stream.on('close', () => cancel.abort());
      const line = (value: unknown): void => void stream.write(`${JSON.stringify(value)}\n`);
      void reply.type('application/x-ndjson; charset=utf-8').send(stream);
      line({ type: 'hosts', hosts });
      const results = await fanOut(
        as,
        hosts,
        action,
        {
          onOutput: (host, which, chunk) => line({ type: 'output', host, stream: which, data: chunk.toString('utf8') }),
          onResult: (host, result) => {
            const { stdout: _stdout, stderr: _stderr, ...rest } = resultJson(host, body.command, result, [], []);
            line({ type: 'result', ...rest });
          },
        },
        // A client that stops reading holds the commands (their output is not read), never the daemon's memory.
        {
          concurrency: as.config.fanout.concurrency,
          signal: cancel.signal,
          flow: writableFlow([stream]),
          // A policy `ask` becomes an approval; the stream says what it waits for.
          approve: approvalsApprover(as.approvals, as.principal.name, (message, approval) => line({ type: 'waiting', approval: approval.id, message: message.trim() }), cancel.signal),
        },
      );
      line({ type: 'exit', exitCode: combinedExit(results.values()) });
      stream.end();
      return reply;
    },
  );

  const pings = new AttachSlots(PING_LIMITS, 'ping WebSockets');
  api.get(
    '/api/ws/ping',
    {
      websocket: true,
      // Taken before the upgrade (a refusal is an HTTP 429), given back when the connection ends, however it ends.
      preHandler: async (request, reply) => {
        const slot = pings.acquire(principalOfRequest(request).name);
        if ('refusal' in slot) return fail(reply, 429, 'too_many_sockets', slot.refusal);
        request.raw.socket.once('close', () => slot.release());
      },
    },
    (socket, request) => {
      // A trivial WebSocket behind the same authentication and Origin checks as the terminal will be.
      const name = principalOfRequest(request).name;
      // Answers the client does not read wait in the daemon's memory: one that sent on without reading grew
      // it without end. Past the terminal's high-water mark nothing more is read from it until they have gone.
      const sent = (): void => {
        if (socket.isPaused && socket.bufferedAmount <= TERMINAL_FLOW.lowWater) socket.resume();
      };
      socket.on('message', (data: Buffer) => {
        socket.send(JSON.stringify({ type: 'pong', principal: name, data: data.toString('utf8') }), sent);
        if (socket.bufferedAmount > TERMINAL_FLOW.highWater) socket.pause();
      });
    },
  );
}

/** The client's address as the audit names it: `::ffff:203.0.113.3` is 203.0.113.3, as the lockouts count it. */
export function shownAddress(ip: string): string {
  return normalizeAddress(ip) ?? ip;
}
