// The coding-agent sessions of `remux code` for the console: their records (state as the daemon's
// watcher last saw it, workspace, branch, sandbox) and where to attach them (host `agents`, the agents'
// tmux server). Scoped as tmux sessions are: a principal whose hosts match `agents` sees them. Each read
// goes through the one door (perform: agent.list, agent.logs), audited as `remux code ls` and `code logs`
// are, refusals included.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { endedUnsaid, logFileOf, readSessions } from '../../agents/store.js';
import { AGENTS_HOST, liveness } from '../../agents/tmux.js';
import { asPrincipal, type GatewayContext } from '../../core/context.js';
import { perform } from '../../core/perform.js';
import type { AgentReadAction, Principal } from '../../core/types.js';
import type { RateLimiter } from '../../hosts/rate-limit.js';
import { fail } from './errors.js';
import { admittedBy } from './routes.js';

/** What a read found missing: the action ends failed, and the answer is a 404 saying so. */
class NotFound extends Error {}

type Refused = { status: number; error: string; message: string };

/**
 * `read` as an admitted agent.list or agent.logs of `principal` (perform-agent.ts: scope, audit begin,
 * the read, audit end): what it returned, or its refusal or failure as an HTTP error.
 */
async function performed<T>(ctx: GatewayContext, principal: Principal, action: Omit<AgentReadAction, 'host'>, read: () => Promise<T> | T): Promise<{ value: T } | Refused> {
  const done: { value?: T; thrown?: unknown } = {};
  const agents = {
    async run() {
      try {
        done.value = await read();
      } catch (err) {
        done.thrown = err;
        throw err;
      }
    },
  };
  const result = await perform(Object.assign(asPrincipal(ctx, principal), { agents }), { ...action, host: AGENTS_HOST }, { onStdout: () => {}, onStderr: () => {} });
  if (result.outcome === 'ok') return { value: done.value as T };
  const message = result.message ?? result.outcome;
  if (result.outcome === 'denied') return { status: 403, error: 'out_of_scope', message: `${message} (agent sessions run on host "${AGENTS_HOST}")` };
  return done.thrown instanceof NotFound ? { status: 404, error: 'not_found', message } : { status: 500, error: 'failed', message };
}

export function registerAgentRoutes(api: FastifyInstance, ctx: GatewayContext, limiter: RateLimiter, principalOf: (request: FastifyRequest) => Principal): void {
  api.get('/api/agents', { preHandler: admittedBy(ctx, limiter) }, async (request, reply) => {
    const listed = await performed(ctx, principalOf(request), { kind: 'agent.list', detail: 'list agent sessions (web console)' }, () => {
      // Each on the tmux server its record names, whatever the daemon's own TMUX_TMPDIR.
      const live = liveness(process.env);
      return readSessions(process.env).map((s) => ({
        id: s.id,
        name: s.name,
        agent: s.agent,
        // A record whose tmux session and supervisor are gone is over, whatever it last said (`code ls` writes that down).
        state: endedUnsaid(s, live) ? 'exited' : s.state,
        exitStatus: s.exitStatus ?? null,
        workspace: s.workspace,
        branch: s.branch,
        sandbox: s.sandbox,
        created: s.created,
        error: s.error ?? null,
        attach: { host: AGENTS_HOST, name: s.tmux },
      }));
    });
    return 'value' in listed ? { sessions: listed.value } : fail(reply, listed.status, listed.error, listed.message);
  });

  // The screen an agent left when it exited by itself (its supervisor kept it): why it stopped.
  api.get<{ Params: { id: string } }>('/api/agents/:id/log', { preHandler: admittedBy(ctx, limiter) }, async (request, reply) => {
    const { id } = request.params;
    const read = await performed(ctx, principalOf(request), { kind: 'agent.logs', detail: `read the saved screen of agent session ${id} (web console)`, session: id }, async () => {
      const session = readSessions(process.env).find((s) => s.id === id);
      if (!session) throw new NotFound(`no agent session ${id}`);
      try {
        // O_NOFOLLOW: a link planted in place of the log is not followed.
        const file = await open(logFileOf(session.id, process.env), constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          return await file.readFile('utf8');
        } finally {
          await file.close();
        }
      } catch {
        throw new NotFound(`agent session ${session.id} has no saved screen: it is running, or it was killed rather than exiting`);
      }
    });
    return 'value' in read ? reply.type('text/plain; charset=utf-8').send(read.value) : fail(reply, read.status, read.error, read.message);
  });
}
