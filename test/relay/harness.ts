// An in-process relay for tests and the benchmark: the gateway's real /agent/connect route (fastify with
// @fastify/websocket, as the daemon serves it) with a real context (policies, SQLite audit, host
// registry), and real agents (runAgent) with contexts of their own, on loopback. Commands go through the
// gateway's perform() like every front end's, and on to the agent's perform().
import cookie from '@fastify/cookie';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAgent, type AgentEnd } from '../../src/agent/run.js';
import { hashToken, newToken } from '../../src/config/principals.js';
import { createContext, type GatewayContext } from '../../src/core/context.js';
import { perform } from '../../src/core/perform.js';
import type { PerformResult } from '../../src/core/types.js';
import { LoginGuard } from '../../src/gateway/http/auth.js';
import { MAX_FRAME_BYTES } from '../../src/gateway/relay/protocol.js';
import { registerRelay, relaySettings } from '../../src/gateway/relay/route.js';

/** Both sides allow these by default; tests narrow one side to see the other's refusal. */
export const POLICY = (programs: string, stdout = 'null'): string => `policies:
  read_only:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: ${programs} }
      - { operation: write_stdout, resource: ${stdout} }
`;

export const PROGRAMS = 'true|echo|sleep|cat|yes|head|printf|seq';

export interface RelayOptions {
  gatewayPolicy?: string;
  agentPolicy?: string;
  /** The relay: section of the gateway's config.yaml. */
  relay?: string;
  agents?: string[];
}

export interface StartedAgent {
  home: string;
  ctx: GatewayContext;
  /** Settles when the agent stops for good. */
  done: Promise<AgentEnd>;
  log: string[];
  stop(): Promise<AgentEnd>;
}

export interface Relay {
  ctx: GatewayContext;
  app: FastifyInstance;
  url: string;
  tokens: Record<string, string>;
  gatewayLog: string[];
  startAgent(name: string, opts?: { token?: string; policy?: string }): StartedAgent;
  waitConnected(name: string, timeoutMs?: number): Promise<void>;
  run(host: string, command: string, opts?: { policy?: string; cwd?: string; timeoutMs?: number | null; signal?: AbortSignal; stdin?: NodeJS.ReadableStream; onStdout?: (chunk: Buffer) => void }): Promise<PerformResult & { stdout: string; stderr: string }>;
  close(): Promise<void>;
}

function home(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'remux-relay-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

export async function startRelay(opts: RelayOptions = {}): Promise<Relay> {
  const names = opts.agents ?? ['laptop'];
  const tokens: Record<string, string> = {};
  const hosts = names.map((n) => {
    tokens[n] = newToken();
    return `  ${n}:\n    transport: agent\n    token_sha256: ${hashToken(tokens[n]!)}\n`;
  });
  const gwHome = home({
    'policies.yaml': opts.gatewayPolicy ?? POLICY(PROGRAMS),
    'hosts.yaml': `hosts:\n${hosts.join('')}`,
    'config.yaml': `exec:\n  timeout_seconds: 60\nrelay:\n${opts.relay ?? '  ping_interval_seconds: 1\n  pong_timeout_seconds: 1\n'}  request_timeout_seconds: 5\n`,
  });
  const ctx = createContext({ env: { REMUX_HOME: gwHome } });
  const gatewayLog: string[] = [];
  const app = Fastify({ logger: false, forceCloseConnections: true }) as unknown as FastifyInstance;
  await app.register(cookie);
  await app.register(websocket, { options: { maxPayload: MAX_FRAME_BYTES } });
  registerRelay(app, ctx, relaySettings(ctx.config.relay), new LoginGuard(), (line) => gatewayLog.push(line));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const url = `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const agents: StartedAgent[] = [];
  const homes = [gwHome];

  const relay: Relay = {
    ctx,
    app,
    url,
    tokens,
    gatewayLog,
    startAgent(name, a = {}) {
      const agentHome = home({ 'policies.yaml': a.policy ?? opts.agentPolicy ?? POLICY(PROGRAMS), 'config.yaml': 'exec:\n  timeout_seconds: 60\n' });
      homes.push(agentHome);
      const agentCtx = createContext({ env: { REMUX_HOME: agentHome } });
      const stop = new AbortController();
      const log: string[] = [];
      const done = runAgent({
        gateway: url,
        name,
        token: a.token ?? tokens[name] ?? 'rmx_none',
        ctx: agentCtx,
        version: 'test',
        log: (line) => log.push(line),
        signal: stop.signal,
        backoff: { baseMs: 50, capMs: 400 },
      });
      const started: StartedAgent = {
        home: agentHome,
        ctx: agentCtx,
        done,
        log,
        async stop() {
          stop.abort();
          const end = await done;
          await agentCtx.close();
          return end;
        },
      };
      agents.push(started);
      return started;
    },
    async waitConnected(name, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!ctx.registry.agents.get(name)?.open) {
        if (Date.now() > deadline) throw new Error(`agent ${name} did not connect within ${timeoutMs} ms; gateway log:\n${gatewayLog.join('\n')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async run(host, command, o = {}) {
      let stdout = '';
      let stderr = '';
      const r = await perform(
        ctx,
        { kind: 'exec', host, command, ...(o.policy !== undefined ? { policy: o.policy } : {}), ...(o.cwd !== undefined ? { cwd: o.cwd } : {}), ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) },
        {
          onStdout: o.onStdout ?? ((c) => (stdout += c.toString())),
          onStderr: (c) => (stderr += c.toString()),
          ...(o.signal ? { signal: o.signal } : {}),
          ...(o.stdin ? { stdin: o.stdin } : {}),
        },
      );
      return { ...r, stdout, stderr };
    },
    async close() {
      for (const a of agents) await a.stop().catch(() => undefined);
      await app.close();
      await ctx.close();
      for (const h of homes) rmSync(h, { recursive: true, force: true });
    },
  };
  return relay;
}
