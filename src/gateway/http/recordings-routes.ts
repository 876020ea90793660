// Recordings (asciicast v2 in $REMUX_HOME/recordings: attaches, written by the terminal and the CLI, and whole
// sessions, by the daemon's session recorder): a list and the files themselves. An admin sees every
// recording, anyone else only those of its own attaches and of the sessions it created since it was created
// (a name used again is someone new), and of those only the ones whose host and tmux user its scope still
// reaches: a narrowed scope holds for what was recorded too.
import type { FastifyInstance } from 'fastify';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { GatewayContext } from '../../core/context.js';
import type { RateLimiter } from '../../hosts/rate-limit.js';
import { recordingOutOfScope } from '../../core/scope.js';
import { describeRecording, isRecordingId, pageOfRecordings, recordingPath } from '../../sessions/recording.js';
import { fail } from './errors.js';
import { admittedBy, pageCost, principalOfRequest } from './routes.js';

type Query = { limit: number; before?: string };

/** `limit` as GET /api/audit takes it. */
const QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    before: { type: 'string' },
  },
} as const;

export function registerRecordingRoutes(api: FastifyInstance, ctx: GatewayContext, dir: string, limiter: RateLimiter): void {
  /**
   * A page of the recordings the principal may see, newest first; a full one links to the next in a
   * `Link: <…>; rel="next"` header (RFC 8288), its `before` the page's last id. The body stays an array.
   */
  api.get<{ Querystring: Query }>('/api/recordings', { preHandler: admittedBy(ctx, limiter, pageCost), schema: { querystring: QUERY } }, async (request, reply) => {
    const principal = principalOfRequest(request);
    const { limit, before } = request.query;
    if (before !== undefined && !isRecordingId(before)) {
      return fail(reply, 400, 'bad_request', `before ${JSON.stringify(before)}: not a recording id; give the id of the last recording of the page before (like 20261205T021044Z-3f2a9c0d11be)`);
    }
    // Scope first, then the limit: a page is `limit` recordings this principal may see.
    const principals = ctx.principals();
    const page = pageOfRecordings(dir, { limit, before, visible: (r) => recordingOutOfScope(principal, r, principals, (name) => ctx.registry.entry(name)) === null });
    if (page.next !== null) reply.header('link', `</api/recordings?${new URLSearchParams({ limit: String(limit), before: page.next })}>; rel="next"`);
    return page.recordings;
  });

  api.get<{ Params: { id: string } }>('/api/recordings/:id', { preHandler: admittedBy(ctx, limiter) }, async (request, reply) => {
    const principal = principalOfRequest(request);
    const { id } = request.params;
    let file: string;
    try {
      file = recordingPath(dir, id);
    } catch (err) {
      return fail(reply, 400, 'bad_request', (err as Error).message);
    }
    const info = describeRecording(dir, id);
    if (!info) return fail(reply, 404, 'not_found', `no recording ${id}`);
    const refusal = recordingOutOfScope(principal, info, ctx.principals(), (name) => ctx.registry.entry(name));
    if (refusal !== null) return fail(reply, 403, 'out_of_scope', `out of scope for ${principal.name}: recording ${id} ${refusal}`);
    // O_NOFOLLOW as describeRecording: a link planted in place of a recording is not followed.
    const body = (await open(file, constants.O_RDONLY | constants.O_NOFOLLOW)).createReadStream();
    return reply.type('application/x-asciicast').header('content-disposition', `attachment; filename="${id}.cast"`).send(body);
  });
}
