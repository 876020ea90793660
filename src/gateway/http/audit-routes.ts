// The audit trail over HTTP: GET /api/audit (the newest actions) and GET /api/audit/stream (Server-Sent
// Events: those, then every action as it begins and as it completes). Both cut to the principal's scope:
// a non-admin sees only its own actions.
//
// New records are found by polling the store (AuditStore.follow: one `max(seq)` lookup per interval,
// then only the new rows). A listener inside the store would hear only this process's writes; polling
// also sees what other processes append to the same file (a local `remux run` without the daemon).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { cursorOf } from '../../audit/store.js';
import { actionJson } from '../../audit/json.js';
import { AUDIT_LEVELS, type AuditAction, type AuditFilter, type AuditLevel } from '../../audit/types.js';
import type { GatewayContext } from '../../core/context.js';
import { fail } from './errors.js';
import { principalOfRequest } from './routes.js';

type Query = { principal?: string; host?: string; level?: AuditLevel; limit: number };

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

const STREAM = {
  /** Bytes of changes a client may leave unread before its stream is closed (it reconnects from its last id). */
  maxUnreadBytes: 1 << 20,
  /** Streams open at once per principal: each holds a socket, up to maxUnreadBytes and a poller. */
  maxPerPrincipal: 8,
  heartbeatMs: 15_000,
  pollMs: 200,
};

/** The filter a request may use, or null when it asks for another principal's actions without being an admin. */
function scopedFilter(request: FastifyRequest<{ Querystring: Query }>): AuditFilter | null {
  const principal = principalOfRequest(request);
  const q = request.query;
  if (!principal.scope.admin && q.principal !== undefined && q.principal !== principal.name) return null;
  const who = principal.scope.admin ? q.principal : principal.name;
  return { ...(who ? { principal: who } : {}), ...(q.host ? { host: q.host } : {}), ...(q.level ? { level: q.level } : {}) };
}

function outOfScope(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return fail(reply, 403, 'out_of_scope', `out of scope for ${principalOfRequest(request).name}: only admins see other principals' actions`);
}

export function registerAuditRoutes(api: FastifyInstance, ctx: GatewayContext): void {
  const streams = new Map<string, number>();
  api.get<{ Querystring: Query }>('/api/audit', { schema: { querystring: QUERY } }, async (request, reply) => {
    const filter = scopedFilter(request);
    if (!filter) return outOfScope(request, reply);
    return ctx.audit.list({ ...filter, limit: request.query.limit }).map(actionJson);
  });

  /**
   * Without Last-Event-ID: the newest `limit` actions (no ids), then an `event: live` whose id is the
   * store's head at that moment; after that one event per change, its id the row it reflects. With
   * Last-Event-ID (a reconnecting EventSource sends it): `live` at once, then the changes after that row.
   */
  api.get<{ Querystring: Query; Headers: { 'last-event-id'?: string } }>(
    '/api/audit/stream',
    { schema: { querystring: QUERY, headers: { type: 'object', properties: { 'last-event-id': { type: 'string', pattern: '^[0-9]{1,15}$' } } } } },
    async (request, reply) => {
      const filter = scopedFilter(request);
      if (!filter) return outOfScope(request, reply);
      const name = principalOfRequest(request).name;
      const open = streams.get(name) ?? 0;
      if (open >= STREAM.maxPerPrincipal) {
        return fail(reply, 429, 'too_many_streams', `${name} has ${open} audit streams open, the most it may; close one (another tab?)`);
      }
      streams.set(name, open + 1);
      const lastId = request.headers['last-event-id'];
      reply.hijack();
      const res = reply.raw;
      const stop = new AbortController();
      res.on('close', () => stop.abort());
      // What the socket has not taken yet is the only queue: past the bound the stream ends with a
      // last event saying why, and the client's next connection resumes from the last id it got.
      const send = (text: string): void => {
        if (stop.signal.aborted) return;
        if (res.writableLength > STREAM.maxUnreadBytes) {
          res.end('event: overflow\ndata: {"message":"this client fell behind; reconnect to resume from the last event"}\n\n');
          stop.abort();
          // A client that never reads again does not keep the socket and its buffer forever.
          setTimeout(() => res.destroy(), 30_000).unref();
          return;
        }
        res.write(text);
      };
      const change = (a: AuditAction): void => send(`id: ${cursorOf(a)}\ndata: ${JSON.stringify(actionJson(a))}\n\n`);
      let heartbeat: NodeJS.Timeout | undefined;
      try {
        for (const [header, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(header, value);
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'x-accel-buffering': 'no' });
        // The first answer is bounded by `limit`, and written whole: the bound applies to the changes after it.
        res.write('retry: 1000\n\n');
        let from: number;
        if (lastId === undefined) {
          const { actions, head } = ctx.audit.snapshot({ ...filter, limit: request.query.limit });
          for (const a of actions) res.write(`data: ${JSON.stringify(actionJson(a))}\n\n`);
          from = head;
        } else from = Number(lastId);
        res.write(`event: live\nid: ${from}\ndata: {}\n\n`);
        heartbeat = setInterval(() => send(': heartbeat\n\n'), STREAM.heartbeatMs);
        await ctx.audit.follow(from, change, stop.signal, { ...filter, intervalMs: STREAM.pollMs });
      } finally {
        clearInterval(heartbeat);
        if (!res.writableEnded) res.end();
        const left = (streams.get(name) ?? 1) - 1;
        if (left === 0) streams.delete(name);
        else streams.set(name, left);
      }
    },
  );
}
