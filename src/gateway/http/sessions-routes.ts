// tmux sessions over HTTP and the browser terminal: thin adapters over perform() (scope, audit, policy
// for a startup command), as `remux session …` is. The listing reads the daemon's inventory cache; the
// terminal WebSocket opens a session.attach and hands it to the flow-controlled bridge (terminal.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { asPrincipal, type GatewayContext } from '../../core/context.js';
import { EXIT } from '../../core/exit-codes.js';
import { perform, recordRefusal } from '../../core/perform.js';
import { hostsInScope, noHostsInScope } from '../../core/scope.js';
import type { PerformResult, Principal, SessionAction, SessionAttachAction } from '../../core/types.js';
import type { RateLimiter } from '../../hosts/rate-limit.js';
import { clampSize } from '../../sessions/terminal-size.js';
import { AttachRecorder, newRecordingId } from '../../sessions/recording.js';
import { recordingRoom } from '../../sessions/retention.js';
import type { HostSessions } from '../../sessions/service.js';
import { NO_SUCH_SESSION, SESSION_EXISTS, sessionMissing, sessionTaken } from '../../sessions/tmux.js';
import type { AttachSlots } from '../attach-slots.js';
import { closeReason } from '../close-reason.js';
import { bridgeTerminal, CLOSE } from '../terminal.js';
import { fail } from './errors.js';
import { admittedBy, COMMAND_BODY_LIMIT } from './routes.js';

export interface SessionRouteDeps {
  ctx: GatewayContext;
  limiter: RateLimiter;
  slots: AttachSlots;
  recordingsDir: string;
  principalOf(request: FastifyRequest): Principal;
}

const NAME = { type: 'string', minLength: 1, maxLength: 64 } as const;
const TARGET = { host: { type: 'string', minLength: 1, maxLength: 255 }, user: { type: 'string', minLength: 1, maxLength: 64 }, name: NAME } as const;

/** Runs one session action as `principal`, with its stdout collected. */
async function run(ctx: GatewayContext, principal: Principal, action: SessionAction): Promise<PerformResult & { out: string }> {
  let out = '';
  const result = await perform(asPrincipal(ctx, principal), action, { onStdout: (c) => (out += c.toString('utf8')), onStderr: () => {} });
  return { ...result, out };
}

function isKnownHost(ctx: GatewayContext, host: string): boolean {
  return ctx.registry.inventory().hosts.some((h) => h.name === host);
}

/** An HTTP status for a refused or failed session action: 403 scope/policy, 404 unknown, 409 taken, 502 the host. */
function statusOf(ctx: GatewayContext, host: string, result: PerformResult): number {
  const message = result.message ?? '';
  switch (result.outcome) {
    case 'ok':
      return 200;
    case 'denied':
      return 403;
    case 'rejected':
      return /is not configured for/.test(message) ? 404 : 400;
    case 'rate_limited':
      return 429;
    case 'failed':
      // No such session, or no tmux server at all (said by remux, or by tmux through an agent).
      if (message.startsWith(`${NO_SUCH_SESSION} "`) || sessionMissing(message)) return 404;
      return message.startsWith(`${SESSION_EXISTS} "`) || sessionTaken(message) ? 409 : 502;
    default:
      return isKnownHost(ctx, host) ? 502 : 404;
  }
}

function refusal(ctx: GatewayContext, reply: FastifyReply, host: string, result: PerformResult): FastifyReply {
  const status = statusOf(ctx, host, result);
  const code = { 400: 'bad_request', 403: 'out_of_scope', 404: 'not_found', 409: 'conflict', 429: 'rate_limited' }[status] ?? 'failed';
  return fail(reply, status, result.outcome === 'denied' && result.decision ? 'denied' : code, result.message ?? result.outcome);
}

export function registerSessionRoutes(api: FastifyInstance, deps: SessionRouteDeps): void {
  const { ctx } = deps;
  /** One call, one token of the principal's rate limit, as /api/run and `remux session …` take: a created session runs its command. */
  const admitted = admittedBy(deps.ctx, deps.limiter);

  api.get<{ Querystring: { fresh: boolean } }>(
    '/api/sessions',
    // fresh: ask the principal's hosts now instead of reading the cache (only hosts in its scope).
    { preHandler: admitted, schema: { querystring: { type: 'object', additionalProperties: false, properties: { fresh: { type: 'boolean', default: false } } } } },
    async (request, reply) => {
      const principal = deps.principalOf(request);
      const fresh = request.query.fresh;
      const hosts = hostsInScope(principal.scope, ctx.registry.inventory());
      const results = await Promise.all(hosts.map(async (h) => ({ host: h.name, result: await run(ctx, principal, { kind: 'session.list', host: h.name, fresh }) })));
      // A host whose tmux users are all out of scope is left out, as hosts out of scope are.
      const shown = results.filter(({ result }) => result.outcome !== 'denied');
      if (shown.length === 0 && !principal.scope.admin) {
        const denied = results.find(({ result }) => result.outcome === 'denied')?.result.message;
        return fail(reply, 403, 'out_of_scope', denied ?? noHostsInScope(principal));
      }
      return {
        hosts: shown.map(({ host, result }): HostSessions => result.sessions ?? { host, checkedAt: new Date().toISOString(), sweepMs: 0, error: result.message, users: [] }),
      };
    },
  );

  api.post<{ Body: { host: string; user?: string; name: string; command?: string; policy?: string } }>(
    '/api/sessions',
    {
      preHandler: admitted,
      bodyLimit: COMMAND_BODY_LIMIT,
      schema: {
        body: {
          type: 'object',
          required: ['host', 'name'],
          additionalProperties: false,
          properties: { ...TARGET, command: { type: 'string', minLength: 1, maxLength: 65536 }, policy: { type: 'string', minLength: 1, maxLength: 255 } },
        },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const result = await run(ctx, deps.principalOf(request), {
        kind: 'session.new',
        host: b.host,
        session: b.name,
        ...(b.user !== undefined ? { tmuxUser: b.user } : {}),
        ...(b.command !== undefined ? { command: b.command } : {}),
        ...(b.policy !== undefined ? { policy: b.policy } : {}),
      });
      if (result.outcome !== 'ok') return refusal(ctx, reply, b.host, result);
      return reply.code(201).send({ host: b.host, name: b.name, actionId: result.actionId });
    },
  );

  api.post<{ Body: { host: string; user?: string; name: string; confirm: string } }>(
    '/api/sessions/kill',
    {
      preHandler: admitted,
      schema: {
        body: { type: 'object', required: ['host', 'name', 'confirm'], additionalProperties: false, properties: { ...TARGET, confirm: { type: 'string', maxLength: 64 } } },
      },
    },
    async (request, reply) => {
      const b = request.body;
      if (b.confirm !== b.name) return fail(reply, 400, 'bad_request', `confirm must repeat the session name "${b.name}" exactly`);
      const result = await run(ctx, deps.principalOf(request), { kind: 'session.kill', host: b.host, session: b.name, ...(b.user !== undefined ? { tmuxUser: b.user } : {}) });
      if (result.outcome !== 'ok') return refusal(ctx, reply, b.host, result);
      return { host: b.host, name: b.name, actionId: result.actionId };
    },
  );

  api.get<{ Querystring: { host: string; user?: string; name: string; lines?: number } }>(
    '/api/sessions/capture',
    {
      preHandler: admitted,
      schema: {
        querystring: {
          type: 'object',
          required: ['host', 'name'],
          additionalProperties: false,
          properties: { ...TARGET, lines: { type: 'integer', minimum: 1, maximum: 100000 } },
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const result = await run(ctx, deps.principalOf(request), {
        kind: 'session.capture',
        host: q.host,
        session: q.name,
        ...(q.user !== undefined ? { tmuxUser: q.user } : {}),
        ...(q.lines !== undefined ? { lines: q.lines } : {}),
      });
      if (result.outcome !== 'ok') return refusal(ctx, reply, q.host, result);
      return { host: q.host, name: q.name, text: result.out };
    },
  );

  api.get<{ Querystring: { host: string; user?: string; name: string; readOnly: boolean; cols: number; rows: number } }>(
    '/api/ws/terminal',
    {
      websocket: true,
      // An attach, refused or not, takes a token before the upgrade (a 429 past the limit): refusals, each
      // audited, come no faster than the principal's rate.
      preHandler: admitted,
      schema: {
        querystring: {
          type: 'object',
          required: ['host', 'name'],
          additionalProperties: false,
          properties: {
            ...TARGET,
            readOnly: { type: 'boolean', default: false },
            // Clamped again by the attach; these only keep nonsense out.
            cols: { type: 'integer', minimum: 1, maximum: 10000, default: 80 },
            rows: { type: 'integer', minimum: 1, maximum: 10000, default: 24 },
          },
        },
      },
    },
    (socket: WebSocket, request) => void terminal(deps, socket, request as FastifyRequest<{ Querystring: { host: string; user?: string; name: string; readOnly: boolean; cols: number; rows: number } }>),
  );
}

/** One browser attach: a slot, perform(session.attach), the recording, the bridge; everything given back however it ends. */
async function terminal(
  deps: SessionRouteDeps,
  socket: WebSocket,
  request: FastifyRequest<{ Querystring: { host: string; user?: string; name: string; readOnly: boolean; cols: number; rows: number } }>,
): Promise<void> {
  const { ctx } = deps;
  const principal = deps.principalOf(request);
  const q = request.query;
  // The whole reason goes in a frame first: a close reason holds 123 bytes, and a policy's reason is often longer.
  const refuse = (code: number, message: string): void => {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ type: 'refused', code, message }));
    socket.close(code, closeReason(message, 'refused: the reason is in the refused message before this close'));
  };
  const as = asPrincipal(ctx, principal);
  // Under `sessions`, an attach to a session being recorded whole names that recording; any other attach
  // (and every attach under `attaches`) gets its own.
  const whole = ctx.config.sessions.record === 'sessions' ? sessionRecording(ctx, q) : null;
  const recording = ctx.config.sessions.record === 'none' ? undefined : (whole ?? newRecordingId());
  const action: SessionAttachAction = {
    kind: 'session.attach',
    host: q.host,
    session: q.name,
    readOnly: q.readOnly,
    cols: q.cols,
    rows: q.rows,
    // A watch in the browser shows the session at its size, shrunk to fit the screen (web/pages/terminal.ts).
    followSize: q.readOnly,
    ...(q.user !== undefined ? { tmuxUser: q.user } : {}),
    ...(recording !== undefined ? { recording } : {}),
  };
  const slot = deps.slots.acquire(principal.name);
  if ('refusal' in slot) {
    // A refusal is audited like any other, with its reason.
    await recordRefusal(as, action, 'rate_limited', EXIT.RATE_LIMITED, slot.refusal);
    return refuse(CLOSE.tooMany, slot.refusal);
  }
  let recorder: AttachRecorder | null = null;
  try {
    const result = await perform(as, action, { onStdout: () => {}, onStderr: () => {} });
    const stream = result.attach;
    if (result.outcome !== 'ok' || !stream) {
      const status = statusOf(ctx, q.host, result);
      return refuse(status === 403 ? CLOSE.forbidden : status === 404 ? CLOSE.notFound : status === 400 ? CLOSE.policy : CLOSE.internal, result.message ?? result.outcome);
    }
    // The browser went away while the attach was being opened.
    if (socket.readyState !== socket.OPEN) return void (await stream.close());
    const user = q.user ?? ctx.sessions.target(q.host).user;
    if (recording !== undefined && recording !== whole) {
      recorder = new AttachRecorder(
        deps.recordingsDir,
        { host: q.host, user, session: q.name, principal: principal.name, readOnly: q.readOnly, actionId: result.actionId },
        stream.sessionSize?.current ?? clampSize(q.cols, q.rows),
        recordingRoom(deps.recordingsDir, ctx.config.sessions.recordings_max_total_mb),
        recording,
      );
    }
    const rec = recorder;
    await bridgeTerminal(socket, stream, {
      readOnly: q.readOnly,
      recording: recording ?? null,
      // The sizes the attach really took (clamped, changed), as a player must replay them.
      ...(rec ? { onOutput: (chunk: Buffer) => rec.output(chunk), onResize: (cols: number, rows: number) => rec.resize(cols, rows) } : {}),
    });
  } catch (err) {
    refuse(CLOSE.internal, `internal error: ${(err as Error).message}`);
  } finally {
    recorder?.end();
    slot.release();
  }
}

/** The whole-session recording running for the session asked for, or null (an unknown host or user: perform() says so). */
function sessionRecording(ctx: GatewayContext, q: { host: string; user?: string; name: string }): string | null {
  try {
    return ctx.sessions.recorder?.recordingOf(q.host, q.user ?? ctx.sessions.target(q.host).user, q.name) ?? null;
  } catch {
    return null;
  }
}
