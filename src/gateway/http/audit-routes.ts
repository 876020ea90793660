// The audit trail over HTTP: GET /api/audit (the newest actions, or a page of older ones) and
// GET /api/audit/stream (Server-Sent Events: the newest, then every action as it begins and as it
// completes). Both cut to the principal's scope: a non-admin sees only its own actions, made since it was
// created (a name used again is someone new).
//
// New records come from one AuditFollower for the daemon (audit/follower.ts): it polls the store once per
// tick and fans the changes out to every open stream, each filtered by its own query and scope.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuditFollower } from '../../audit/follower.js';
import { cursorOf } from '../../audit/store.js';
import { actionJson, isActionId } from '../../audit/json.js';
import { AUDIT_LEVELS, type AuditFilter, type AuditLevel } from '../../audit/types.js';
import type { GatewayContext } from '../../core/context.js';
import type { RateLimiter } from '../../hosts/rate-limit.js';
import { auditFilterFor, auditOutOfScope } from '../../core/scope.js';
import { fail } from './errors.js';
import { admittedBy, pageCost, principalOfRequest } from './routes.js';

type Query = { principal?: string; host?: string; level?: AuditLevel; limit: number };
type PageQuery = Query & { before?: string };

const QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    principal: { type: 'string', minLength: 1 },
    host: { type: 'string', minLength: 1 },
    level: { type: 'string', enum: [...AUDIT_LEVELS] },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  },
} as const;

/**
 * GET /api/audit's, and the stream's: the filters and `before`, an action id (checked in the route, to say
 * what it is). The stream takes `before` only to refuse it by name: it goes forward from the newest (or
 * from Last-Event-ID), and an older page under it comes from the listing.
 */
const PAGE_QUERY = { ...QUERY, properties: { ...QUERY.properties, before: { type: 'string' } } } as const;

const STREAM = {
  /** Bytes of changes a client may leave unread before its stream is closed (it reconnects from its last id). */
  maxUnreadBytes: 1 << 20,
  /** Streams open at once per principal, and in the daemon: each holds a socket and up to maxUnreadBytes. */
  maxPerPrincipal: 8,
  maxStreams: 64,
  heartbeatMs: 15_000,
  pollMs: 200,
};

/** The filter a request may use (auditFilterFor, as `remux audit` with REMUX_TOKEN), or null when it asks for another principal's actions without being an admin. */
function scopedFilter(ctx: GatewayContext, request: FastifyRequest<{ Querystring: Query }>): AuditFilter | null {
  const { principal, host, level } = request.query;
  return auditFilterFor(principalOfRequest(request), { ...(principal ? { principal } : {}), ...(host ? { host } : {}), ...(level ? { level } : {}) }, ctx.principals());
}

function outOfScope(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return fail(reply, 403, 'out_of_scope', auditOutOfScope(principalOfRequest(request)));
}

export function registerAuditRoutes(api: FastifyInstance, ctx: GatewayContext, limiter: RateLimiter): void {
  const follower = new AuditFollower(ctx.audit, { pollMs: STREAM.pollMs, maxPerPrincipal: STREAM.maxPerPrincipal, maxStreams: STREAM.maxStreams });
  api.addHook('onClose', async () => follower.close());
  /**
   * A page: the newest `limit` actions older than the id `before`, oldest first; while older ones are left,
   * a `Link: <…>; rel="next"` header (RFC 8288) to them, its `before` the page's oldest id, the filters kept.
   * The scope is part of the query, so a page is `limit` actions this principal may see.
   */
  api.get<{ Querystring: PageQuery }>('/api/audit', { preHandler: admittedBy(ctx, limiter, pageCost), schema: { querystring: PAGE_QUERY } }, async (request, reply) => {
    const { limit, before, principal, host, level } = request.query;
    if (before !== undefined && !isActionId(before)) {
      return fail(reply, 400, 'bad_request', `before ${JSON.stringify(before)}: not an action id; give the id of the oldest action of the page before (a whole number, like 1234)`);
    }
    const filter = scopedFilter(ctx, request);
    if (!filter) return outOfScope(request, reply);
    const page = ctx.audit.page({ ...filter, limit, ...(before === undefined ? {} : { beforeSeq: Number(before) }) });
    if (page.next !== null) {
      const next = new URLSearchParams({ limit: String(limit), before: String(page.next), ...(principal ? { principal } : {}), ...(host ? { host } : {}), ...(level ? { level } : {}) });
      reply.header('link', `</api/audit?${next}>; rel="next"`);
    }
    return page.actions.map(actionJson);
  });

  /**
   * Without Last-Event-ID: the newest `limit` actions (no ids), then an `event: live` whose id is the
   * store's head at that moment; after that one event per change, its id the row it reflects. With
   * Last-Event-ID (a reconnecting EventSource sends it): `live` at once, then the changes after that row.
   */
  api.get<{ Querystring: PageQuery; Headers: { 'last-event-id'?: string } }>(
    '/api/audit/stream',
    { preHandler: admittedBy(ctx, limiter, pageCost), schema: { querystring: PAGE_QUERY, headers: { type: 'object', properties: { 'last-event-id': { type: 'string', pattern: '^[0-9]{1,15}$' } } } } },
    async (request, reply) => {
      // Following from an older page would skip what lies between it and the newest (as `audit ls --before --follow`).
      if (request.query.before !== undefined) {
        return fail(reply, 400, 'bad_request', 'before: the stream only goes forward, from the newest actions (or from Last-Event-ID); page back with GET /api/audit?before=ID, with the same filters');
      }
      const filter = scopedFilter(ctx, request);
      if (!filter) return outOfScope(request, reply);
      const name = principalOfRequest(request).name;
      const lastId = request.headers['last-event-id'];
      // The first answer and the subscription start from the same snapshot: nothing missed, nothing twice.
      const first = lastId === undefined ? ctx.audit.snapshot({ ...filter, limit: request.query.limit }) : { actions: [], head: Number(lastId) };
      const res = reply.raw;
      let ended = false;
      // What the socket has not taken yet is the only queue: past the bound the stream ends with a
      // last event saying why, and the client's next connection resumes from the last id it got.
      const send = (text: string): void => {
        if (ended) return;
        if (res.writableLength > STREAM.maxUnreadBytes) {
          res.end('event: overflow\ndata: {"message":"this client fell behind; reconnect to resume from the last event"}\n\n');
          finish();
          // A client that never reads again does not keep the socket and its buffer forever.
          setTimeout(() => res.destroy(), 30_000).unref();
          return;
        }
        res.write(text);
      };
      const subscription = follower.subscribe(name, first.head, filter, (a) => send(`id: ${cursorOf(a)}\ndata: ${JSON.stringify(actionJson(a))}\n\n`));
      if ('refusal' in subscription) return fail(reply, 429, 'too_many_streams', subscription.refusal);
      const heartbeat = setInterval(() => send(': heartbeat\n\n'), STREAM.heartbeatMs);
      const finish = (): void => {
        if (ended) return;
        ended = true;
        subscription.close();
        clearInterval(heartbeat);
        if (!res.writableEnded) res.end();
      };
      reply.hijack();
      res.on('close', finish);
      // A client gone before this point would never free its place.
      if (res.destroyed) return finish();
      for (const [header, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(header, value);
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'x-accel-buffering': 'no' });
      // The first answer is bounded by `limit`, and written whole: the bound applies to the changes after it.
      res.write('retry: 1000\n\n');
      for (const a of first.actions) res.write(`data: ${JSON.stringify(actionJson(a))}\n\n`);
      res.write(`event: live\nid: ${first.head}\ndata: {}\n\n`);
    },
  );
}
