// The coding-agent sessions of `remux code` for the console: their records (state as the daemon's
// watcher last saw it, workspace, branch, sandbox) and where to attach them (host `agents`, the agents'
// tmux server). Scoped as tmux sessions are: a principal whose hosts match `agents` sees them.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { endedUnsaid, logFileOf, readSessions } from '../../agents/store.js';
import { AGENTS_HOST, liveness } from '../../agents/tmux.js';
import type { GatewayContext } from '../../core/context.js';
import { hostInScope } from '../../core/scope.js';
import type { Principal } from '../../core/types.js';
import { fail } from './errors.js';

export function registerAgentRoutes(api: FastifyInstance, ctx: GatewayContext, principalOf: (request: FastifyRequest) => Principal): void {
  /** Why this principal may not see agent sessions, or null. */
  const refusal = (request: FastifyRequest): string | null => {
    const principal = principalOf(request);
    const entry = ctx.registry.entry(AGENTS_HOST);
    return entry && hostInScope(principal.scope, entry) ? null : `out of scope for ${principal.name}: agent sessions run on host "${AGENTS_HOST}"`;
  };

  api.get('/api/agents', async (request, reply) => {
    const refused = refusal(request);
    if (refused) return fail(reply, 403, 'out_of_scope', refused);
    // Each on the tmux server its record names, whatever the daemon's own TMUX_TMPDIR.
    const live = liveness(process.env);
    const sessions = readSessions(process.env).map((s) => ({
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
    return { sessions };
  });

  // The screen an agent left when it exited by itself (its supervisor kept it): why it stopped.
  api.get<{ Params: { id: string } }>('/api/agents/:id/log', async (request, reply) => {
    const refused = refusal(request);
    if (refused) return fail(reply, 403, 'out_of_scope', refused);
    const session = readSessions(process.env).find((s) => s.id === request.params.id);
    if (!session) return fail(reply, 404, 'not_found', `no agent session ${request.params.id}`);
    let text: string;
    try {
      // O_NOFOLLOW: a link planted in place of the log is not followed.
      const file = await open(logFileOf(session.id, process.env), constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        text = await file.readFile('utf8');
      } finally {
        await file.close();
      }
    } catch {
      return fail(reply, 404, 'not_found', `agent session ${session.id} has no saved screen: it is running, or it was killed rather than exiting`);
    }
    return reply.type('text/plain; charset=utf-8').send(text);
  });
}
