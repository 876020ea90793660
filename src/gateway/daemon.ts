// The remux daemon: keeps one context (audit store, policies, SSH connection pool) alive and serves
// the CLI over a Unix socket that only its owner can open (0700 directory, 0600 socket). Everything
// it runs goes through fanOut() -> perform(), exactly like the in-process path.
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { createContext, type ContextOptions, type GatewayContext } from '../core/context.js';
import { EXIT } from '../core/exit-codes.js';
import { combinedExit, fanOut, summarize } from '../core/fanout.js';
import { recordRefusal } from '../core/perform.js';
import type { ApprovalAnswer, ExecAction } from '../core/types.js';
import { RateLimiter, rateLimitedMessage } from '../hosts/rate-limit.js';
import { selectionFailureExit } from '../hosts/selectors.js';
import { DaemonClient } from './client.js';
import { LineReader, MAX_REQUEST_BYTES, type DaemonStatus, type Event, type HostStatus, type Request, type RunRequest } from './protocol.js';

/** How long an `ask` waits for the client's answer before it expires (expired is never allow). */
const ASK_TIMEOUT_MS = 5 * 60_000;

export interface DaemonOptions extends ContextOptions {
  socket: string;
  version: string;
  log?: (line: string) => void;
}

export interface RunningDaemon {
  socket: string;
  stopped: Promise<void>;
  stop(): Promise<void>;
}

export function pidFile(socket: string): string {
  return join(dirname(socket), 'remux.pid');
}

export async function startDaemon(opts: DaemonOptions): Promise<RunningDaemon> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`));
  const dir = dirname(opts.socket);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);

  // A live daemon answers on the socket; a leftover socket file from a dead one does not.
  const existing = await DaemonClient.connect(opts.socket, 1000);
  if (existing) {
    existing.close();
    throw new Error(`a daemon is already running on ${opts.socket} (pid ${readPid(opts.socket) ?? 'unknown'}); stop it with: remux daemon stop`);
  }
  rmSync(opts.socket, { force: true });

  const ctx = createContext(opts);
  const limiter = new RateLimiter({ ratePerSec: ctx.config.daemon.rate_limit.requests_per_second, burst: ctx.config.daemon.rate_limit.burst });
  const startedAt = new Date();
  const connections = new Set<net.Socket>();

  const server = net.createServer((socket) => {
    connections.add(socket);
    serveConnection(socket, { ctx, limiter, opts, startedAt, stop: () => void stop(), log });
    socket.on('close', () => connections.delete(socket));
  });

  // Created with a umask that leaves only the owner's bits, so the socket is never briefly open to others.
  const oldUmask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.socket, () => resolve());
    });
  } finally {
    process.umask(oldUmask);
  }
  chmodSync(opts.socket, 0o600);
  writeFileSync(pidFile(opts.socket), `${process.pid}\n`, { mode: 0o600 });
  log(`remux daemon ${opts.version} listening on ${opts.socket} (pid ${process.pid})`);

  let resolveStopped: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      log('stopping');
      server.close();
      for (const socket of connections) socket.end();
      await ctx.close();
      rmSync(opts.socket, { force: true });
      rmSync(pidFile(opts.socket), { force: true });
      resolveStopped();
    })();
    return stopping;
  };
  return { socket: opts.socket, stopped, stop };
}

export function readPid(socket: string): number | null {
  try {
    const pid = Number(readFileSync(pidFile(socket), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

interface ServeDeps {
  ctx: GatewayContext;
  limiter: RateLimiter;
  opts: DaemonOptions;
  startedAt: Date;
  stop(): void;
  log(line: string): void;
}

function serveConnection(socket: net.Socket, deps: ServeDeps): void {
  const inFlight = new Map<number, AbortController>();
  const pendingAsks = new Map<number, (answer: ApprovalAnswer) => void>();
  let nextAskId = 1;
  const send = (event: Event): void => {
    if (!socket.destroyed) socket.write(`${JSON.stringify(event)}\n`);
  };

  const reader = new LineReader((line) => {
    let request: Request;
    try {
      request = JSON.parse(line) as Request;
    } catch {
      send({ id: 0, type: 'error', message: 'malformed request: not JSON', exitCode: EXIT.USAGE });
      return;
    }
    switch (request.type) {
      case 'run': {
        const controller = new AbortController();
        inFlight.set(request.id, controller);
        const ask = (host: string, command: string, reason: string): Promise<ApprovalAnswer> =>
          new Promise((resolve) => {
            const askId = nextAskId++;
            const timer = setTimeout(() => settle('expired'), ASK_TIMEOUT_MS);
            const settle = (answer: ApprovalAnswer): void => {
              clearTimeout(timer);
              pendingAsks.delete(askId);
              resolve(answer);
            };
            pendingAsks.set(askId, settle);
            send({ id: request.id, type: 'ask', askId, host, command, reason });
          });
        void handleRun(request, deps, send, controller.signal, request.interactive ? ask : null)
          .catch((err: unknown) => send({ id: request.id, type: 'error', message: err instanceof Error ? err.message : String(err), exitCode: EXIT.FAILURE }))
          .finally(() => inFlight.delete(request.id));
        break;
      }
      case 'approve':
        pendingAsks.get(request.askId)?.(request.answer === 'allow' ? 'allow' : request.answer === 'expired' ? 'expired' : 'deny');
        break;
      case 'cancel':
        inFlight.get(request.ref)?.abort();
        break;
      case 'status':
        send({ id: request.id, type: 'status', status: daemonStatus(deps) });
        break;
      case 'stop':
        send({ id: request.id, type: 'status', status: daemonStatus(deps) });
        deps.stop();
        break;
      default:
        send({ id: (request as { id?: number }).id ?? 0, type: 'error', message: 'unknown request type', exitCode: EXIT.USAGE });
    }
  }, MAX_REQUEST_BYTES);

  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    try {
      reader.push(chunk);
    } catch (err) {
      deps.log(`dropping a client: ${(err as Error).message}`);
      socket.destroy();
    }
  });
  // A client that goes away (Ctrl-C, crash) cancels what it started; its open asks expire.
  socket.on('close', () => {
    for (const controller of inFlight.values()) controller.abort();
    for (const settle of pendingAsks.values()) settle('expired');
  });
  socket.on('error', () => socket.destroy());
}

async function handleRun(
  request: RunRequest,
  deps: ServeDeps,
  send: (event: Event) => void,
  signal: AbortSignal,
  ask: ((host: string, command: string, reason: string) => Promise<ApprovalAnswer>) | null,
): Promise<void> {
  const { ctx, limiter } = deps;
  const actionFor = (host: string): ExecAction => ({
    kind: 'exec',
    host,
    command: request.command,
    ...(request.policy ? { policy: request.policy } : {}),
    ...(request.cwd ? { cwd: request.cwd } : {}),
    ...(request.callerCwd ? { callerCwd: request.callerCwd } : {}),
    ...(request.timeoutMs !== undefined ? { timeoutMs: request.timeoutMs } : {}),
    ...(request.pipefail ? { pipefail: true } : {}),
  });

  // A client whose environment names other files must not silently get this daemon's policies or audit.
  const { policiesFile, auditDb } = request.expect ?? {};
  const mismatch = [
    ...(policiesFile !== undefined && policiesFile !== ctx.policiesFile ? [`policies ${ctx.policiesFile} (you named ${policiesFile})`] : []),
    ...(auditDb !== undefined && auditDb !== ctx.auditFile ? [`audit store ${ctx.auditFile} (you named ${auditDb})`] : []),
  ];
  if (mismatch.length > 0) {
    send({
      id: request.id,
      type: 'error',
      message: `the running daemon uses ${mismatch.join(' and ')}`,
      hint: 'run with --no-daemon, or restart the daemon in this environment: remux daemon stop && remux daemon start',
      exitCode: EXIT.USAGE,
    });
    return;
  }

  let hosts: string[];
  try {
    hosts = ctx.registry.select(request.selector);
  } catch (err) {
    send({ id: request.id, type: 'error', message: (err as Error).message, exitCode: selectionFailureExit(request.selector) });
    return;
  }

  // One token per request, however many hosts it fans out to.
  const admitted = limiter.take(ctx.principal.name);
  if (!admitted.ok) {
    const message = rateLimitedMessage(admitted.retryInMs);
    await Promise.all(hosts.map((host) => recordRefusal(ctx, actionFor(host), 'rate_limited', EXIT.RATE_LIMITED, message)));
    send({ id: request.id, type: 'error', message, exitCode: EXIT.RATE_LIMITED, retryInMs: admitted.retryInMs });
    return;
  }

  await ctx.registry.prepare(hosts);
  send({ id: request.id, type: 'hosts', hosts });
  const results = await fanOut(
    ctx,
    hosts,
    actionFor,
    {
      onOutput: (host, stream, chunk) => send({ id: request.id, type: 'out', host, stream, data: chunk.toString('base64') }),
      onResult: (host, result) => send({ id: request.id, type: 'result', host, result }),
    },
    {
      concurrency: ctx.config.fanout.concurrency,
      signal,
      ...(ask ? { approve: (action, decision) => ask(action.host, action.command, decision.reason) } : {}),
    },
  );
  send({ id: request.id, type: 'done', summary: summarize(results.values()), exitCode: combinedExit(results.values()) });
}

function daemonStatus(deps: ServeDeps): DaemonStatus {
  const { ctx, limiter, opts, startedAt } = deps;
  const pool = new Map(ctx.registry.poolStatus().map((s) => [s.name, s]));
  let inventoryHosts: HostStatus[] = [];
  try {
    inventoryHosts = ctx.registry.inventory().hosts.map((entry): HostStatus => {
      const s = pool.get(entry.name);
      return {
        name: entry.name,
        address: entry.transport === 'ssh' ? entry.address : null,
        port: entry.transport === 'ssh' ? entry.port : null,
        transport: entry.transport,
        labels: entry.labels,
        connected: s?.connected ?? entry.transport === 'local',
        breaker: s ? s.breaker : null,
        lastRttMs: s?.lastRttMs ?? null,
        lastError: s?.lastError ?? null,
        activeChannels: s?.activeChannels ?? 0,
        queued: s?.queued ?? 0,
      };
    });
  } catch {
    // A broken hosts.yaml must not break status; the next run request reports it with file:line.
  }
  return {
    pid: process.pid,
    version: opts.version,
    startedAt: startedAt.toISOString(),
    uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    socket: opts.socket,
    auditDb: ctx.auditFile,
    knownHosts: ctx.knownHostsFile,
    principal: ctx.principal.name,
    hosts: inventoryHosts,
    rateLimit: {
      ratePerSec: ctx.config.daemon.rate_limit.requests_per_second,
      burst: ctx.config.daemon.rate_limit.burst,
      buckets: limiter.snapshot().map((b) => ({ key: b.key, tokens: Math.round(b.tokens * 100) / 100 })),
    },
    memoryRssBytes: process.memoryUsage.rss(),
  };
}
