// GET /agent/connect: where outbound agents dial in (WebSocket). Before the upgrade: the client address
// must be in relay.allow_networks (read through the trusted proxy hop only), and the bearer token in the
// Authorization header must be the token of an agent host in hosts.yaml; that host's name is the only
// name the connection may take. Tokens are never read from the URL. Then the agent's hello, within the
// request timeout, and the connection serves that host (replacing an older connection of the same name)
// until its token is rotated or its host removed in hosts.yaml: then it is closed at once.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config/config.js';
import type { PrincipalEntry } from '../../config/principals.js';
import { watchReloading } from '../../config/reloading.js';
import type { GatewayContext } from '../../core/context.js';
import { bearerToken, checkToken, type LoginGuard } from '../http/auth.js';
import { fail, tooManyFailures } from '../http/errors.js';
import { AgentConnection } from './hub.js';
import { clientAddress, Networks } from './network.js';
import { closeReason } from '../close-reason.js';
import { AGENT_PATH, BINARY_FRAME, CLOSE, HelloSchema, MAX_FRAME_BYTES, parseFrame } from './protocol.js';

/** How often hosts.yaml is checked for rotated tokens and removed hosts while agents are connected. */
const HOSTS_POLL_MS = 250;

/** What a token check needs of an agent host: its name and token hash (it reaches nothing by itself). */
const NO_SCOPE = { admin: false, hosts: '', users: [], createAs: [], attach: 'read-only', policies: [] } as const;

export interface RelaySettings {
  allow: Networks;
  trusted: Networks;
  live: { pingIntervalMs: number; pongTimeoutMs: number; requestTimeoutMs: number };
}

/** relay: in config.yaml, checked (bad CIDR blocks are a usage error at start). */
export function relaySettings(config: Config['relay']): RelaySettings {
  return {
    allow: new Networks(config.allow_networks, 'relay.allow_networks'),
    trusted: new Networks(config.trusted_proxies, 'relay.trusted_proxies'),
    live: {
      pingIntervalMs: config.ping_interval_seconds * 1000,
      pongTimeoutMs: config.pong_timeout_seconds * 1000,
      requestTimeoutMs: config.request_timeout_seconds * 1000,
    },
  };
}

export function registerRelay(app: FastifyInstance, ctx: GatewayContext, settings: RelaySettings, guard: LoginGuard, log: (line: string) => void): void {
  const hub = ctx.registry.agents;
  hub.relaying = true;
  const admitted = new WeakMap<FastifyRequest, { name: string; address: string; tokenSha256: string }>();

  /** Each agent host's token hash in hosts.yaml as it is now; null while the file does not load. */
  const agentTokens = (): Map<string, string> | null => {
    try {
      return new Map(ctx.registry.inventory().hosts.flatMap((h) => (h.transport === 'agent' ? [[h.name, h.tokenSha256] as const] : [])));
    } catch {
      return null;
    }
  };
  // A file that does not load revokes nothing: no host of it can be used until it is fixed anyway.
  const watcher = watchReloading(() => ctx.registry.inventory(), HOSTS_POLL_MS, () => {
    const tokens = agentTokens();
    if (tokens) hub.revoke((name) => tokens.get(name));
  });
  app.addHook('onClose', async () => watcher.stop());

  const admit = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    // Agents are programs: a browser page (which always sends Origin on a WebSocket) has no business here.
    if (request.headers.origin !== undefined) return fail(reply, 403, 'forbidden_origin', 'agents connect without an Origin header');
    const address = clientAddress(request.socket.remoteAddress ?? '', request.headers['x-forwarded-for'], settings.trusted);
    if (address === null) return fail(reply, 403, 'forbidden_network', 'cannot tell the client address: a trusted proxy sent no usable X-Forwarded-For');
    if (settings.allow.size > 0 && !settings.allow.has(address)) {
      log(`relay: refused an agent from ${address}: not in relay.allow_networks`);
      return fail(reply, 403, 'forbidden_network', `agents may connect only from ${settings.allow.cidrs.join(', ')}`);
    }
    const token = bearerToken(request.headers.authorization);
    if (token === null) return fail(reply, 401, 'unauthenticated', 'send the agent token as Authorization: Bearer TOKEN');
    const entries: PrincipalEntry[] = [];
    for (const h of ctx.registry.inventory().hosts) {
      if (h.transport === 'agent') entries.push({ name: h.name, tokenSha256: h.tokenSha256, created: null, scope: NO_SCOPE });
    }
    const checked = await checkToken(guard, address, token, { file: ctx.registry.inventory().file, entries });
    if ('locked' in checked) return tooManyFailures(reply, checked.locked);
    if ('bad' in checked) {
      log(`relay: refused an agent from ${address}: the token matches no agent host`);
      return fail(reply, 401, 'unauthenticated', 'the token matches no agent host in the gateway\'s hosts.yaml');
    }
    admitted.set(request, { name: checked.entry.name, address, tokenSha256: checked.entry.tokenSha256 });
    return undefined;
  };

  app.get(AGENT_PATH, { websocket: true, preValidation: admit }, (socket, request) => {
    const who = admitted.get(request);
    if (!who) return socket.close(CLOSE.protocol, 'not admitted');
    const timer = setTimeout(() => socket.close(CLOSE.protocol, 'no hello in time'), settings.live.requestTimeoutMs);
    socket.once('close', () => clearTimeout(timer));
    socket.once('message', (data, isBinary) => {
      clearTimeout(timer);
      const parsed = isBinary ? BINARY_FRAME : parseFrame(HelloSchema, data as Buffer, MAX_FRAME_BYTES);
      if (!parsed.ok) return socket.close(CLOSE.protocol, closeReason(`expected hello: ${parsed.error}`, `expected hello: ${parsed.brief}`));
      // The agent reads the first name as the one to use (agent/run.ts OTHER_NAME); its own it knows.
      if (parsed.frame.name !== who.name) return socket.close(CLOSE.protocol, closeReason(`this token is for agent ${who.name}, not ${parsed.frame.name}`, `this token is for agent ${who.name}, not the name this agent gave`));
      // The token may have been rotated while the hello was awaited: then it must not replace a connection.
      if (agentTokens()?.get(who.name) !== who.tokenSha256) return socket.close(CLOSE.revoked, `the token of agent host ${who.name} was rotated, or the host removed`);
      const conn = new AgentConnection(socket, parsed.frame, who.address, who.tokenSha256, settings.live);
      const replacing = hub.get(who.name) !== undefined;
      hub.register(conn);
      conn.send({ type: 'registered', name: who.name, pingIntervalMs: settings.live.pingIntervalMs });
      log(`relay: agent ${who.name} connected from ${who.address} as ${parsed.frame.user}${replacing ? ' (replacing its previous connection)' : ''}`);
      conn.onClose((why) => {
        log(`relay: agent ${who.name} (${who.address}) disconnected: ${why}`);
        void ctx.sessions.refresh(who.name);
      });
      // The session cache asked this host while it was away: ask again now that it can answer.
      void ctx.sessions.refresh(who.name);
    });
  });
}
