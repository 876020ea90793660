// The coding-agent sessions of `remux code` for the console: their records (state as the daemon's
// watcher last saw it, workspace, branch, sandbox) and where to attach them (host `agents`, the agents'
// tmux server). Scoped as tmux sessions are: a principal whose hosts match `agents` sees them.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isOver, readSessions } from '../../agents/store.js';
import { AGENTS_HOST, liveSessions } from '../../agents/tmux.js';
import type { GatewayContext } from '../../core/context.js';
import { hostInScope } from '../../core/scope.js';
import type { Principal } from '../../core/types.js';
import { fail } from './errors.js';

export function registerAgentRoutes(api: FastifyInstance, ctx: GatewayContext, principalOf: (request: FastifyRequest) => Principal): void {
  api.get('/api/agents', async (request, reply) => {
    const principal = principalOf(request);
    const entry = ctx.registry.entry(AGENTS_HOST);
    if (!entry || !hostInScope(principal.scope, entry)) return fail(reply, 403, 'out_of_scope', `out of scope for ${principal.name}: agent sessions run on host "${AGENTS_HOST}"`);
    const live = liveSessions(process.env);
    const sessions = readSessions(process.env).map((s) => ({
      id: s.id,
      name: s.name,
      agent: s.agent,
      // A record whose tmux session is gone is over, whatever it last said (`code ls` writes that down).
      state: !isOver(s) && !live.has(s.tmux) ? 'exited' : s.state,
      workspace: s.workspace,
      branch: s.branch,
      sandbox: s.sandbox,
      created: s.created,
      error: s.error ?? null,
      attach: { host: AGENTS_HOST, name: s.tmux },
    }));
    return { sessions };
  });
}
