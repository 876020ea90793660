// The remux daemon: keeps one context (audit store, policies, SSH connection pool) alive and serves
// the CLI over a Unix socket that only its owner can open (0700 directory, 0600 socket). Everything
// it runs goes through fanOut() -> perform(), exactly like the in-process path.
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { configFile, defaultSocketFile, recordingsDir, remuxHome, tlsDir } from '../config/paths.js';
import { keepRecordingsWithin, retentionLimits } from '../sessions/retention.js';
import { contextFor, createContext, type ContextOptions, type GatewayContext } from '../core/context.js';
import { EXIT } from '../core/exit-codes.js';
import { DAEMON_HOST, digestWords, RefusalDigest } from '../core/refusal-digest.js';
import { runningSandboxes } from '../exec/local.js';
import { startSpawner } from '../exec/spawner.js';
import { watchAgentSessions } from '../agents/daemon-watch.js';
import type { Approvals } from '../notify/service.js';
import { RateLimiter } from '../hosts/rate-limit.js';
import { hostStatuses } from '../hosts/view.js';
import { SessionRecordings } from '../sessions/session-recorder.js';
import { AttachSlots } from './attach-slots.js';
import { serveCli } from './cli-session.js';
import type { HttpFlags, HttpServer, HttpSettings } from './http/server.js';
import type { SessionHandover } from './http/session-handover.js';
import { LargeMessages } from './mcp/line-transport.js';
import { serveMcpSocket } from './mcp/stdio.js';
import { connectDaemon } from './client.js';
import { claimDaemon, type DaemonClaim } from './daemon-lock.js';
import { FirstLine, MAX_REQUEST_BYTES, type DaemonStatus, type Event } from './protocol.js';
import { WebConsole } from './web-console.js';

export interface DaemonOptions extends ContextOptions {
  socket: string;
  version: string;
  log?: (line: string) => void;
  /** The web console and API's flags (served once a principal exists; see web-console.ts). */
  http?: HttpFlags;
  /** Started in the background by `remux daemon start`, which `remux daemon restart` may then do again. */
  detached?: boolean;
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

  // Before anything else: of starts at the same moment, or on other sockets, one goes on.
  const claim = await claimDaemon(opts.socket, opts.env);
  try {
    return await serveDaemon(opts, claim, log);
  } catch (err) {
    claim.release();
    throw err;
  }
}

async function serveDaemon(opts: DaemonOptions, claim: DaemonClaim, log: (line: string) => void): Promise<RunningDaemon> {
  // What answers here, or on this home's default socket, holds no claim on the home (this daemon does): a
  // daemon of a remux from before the claim, or of another REMUX_HOME. A leftover socket file from a dead one does not answer.
  for (const socket of new Set([opts.socket, defaultSocketFile(opts.env)])) {
    const existing = await connectDaemon(socket, 1000);
    if (!existing) continue;
    existing.destroy();
    const stop = socket === opts.socket ? 'remux daemon stop' : `remux daemon stop --socket ${socket}`;
    throw new Error(`a daemon is already running on ${socket} (pid ${readPid(socket) ?? 'unknown'}) without holding ${remuxHome(opts.env)}: one of an older remux, or of another REMUX_HOME; stop it with: ${stop}`);
  }
  rmSync(opts.socket, { force: true });

  const ctx = createContext({ ...opts, asker: 'the daemon' });
  const recordings = ctx.config.sessions.record === 'sessions' ? new SessionRecordings({ sessions: ctx.sessions, registry: ctx.registry, audit: ctx.audit, dir: recordingsDir(opts.env), maxTotalMb: ctx.config.sessions.recordings_max_total_mb, log }) : null;
  ctx.sessions.recorder = recordings;
  const retention = keepRecordingsWithin(recordingsDir(opts.env), retentionLimits(ctx.config.sessions), ctx.audit, log);
  // One set of attach slots for the daemon: the limits count every attach it knows of, browser or CLI.
  const slots = new AttachSlots();
  // And one bound on the commands running, whichever front end started them (perform() takes the slot).
  const running = ctx.config.daemon.running_limit;
  // Refusals for too much of one principal: the first few of each 10 s recorded, the rest counted into one row.
  ctx.refusals = new RefusalDigest({
    write: (d) =>
      ctx.audit.record(
        { principal: d.principal, host: DAEMON_HOST, operation: 'refusals.counted', decision: 'deny', reason: digestWords(d) },
        { exitCode: EXIT.RATE_LIMITED, durationMs: 0, refusal: digestWords(d) },
      ),
  });
  const commands = new AttachSlots(
    { perPrincipal: running.per_principal, total: running.total },
    { what: 'commands', held: 'running', remedy: 'wait for one to end, or interrupt one', later: 'when one ends', setting: 'daemon.running_limit' },
  );
  ctx.running = commands;
  ctx.sessions.startSweeping(ctx.config.sessions.sweep_interval_seconds * 1000);
  const limiter = new RateLimiter({ ratePerSec: ctx.config.daemon.rate_limit.requests_per_second, burst: ctx.config.daemon.rate_limit.burst });
  // One count of each principal's large MCP messages, over HTTP and from stdio clients alike.
  const large = new LargeMessages();
  let http: WebConsole;
  try {
    http = await WebConsole.start({ ctx, flags: opts.http ?? {}, serve: (settings, inherited) => startWebServer(ctx, limiter, slots, large, opts, settings, inherited, log), log, env: opts.env ?? process.env });
  } catch (err) {
    retention.stop();
    await ctx.close();
    throw err;
  }
  // Started once nothing can fail the start any more: a refused start must leave nothing running.
  startSpawner();
  const agentWatch = watchAgentSessions(ctx.approvals, opts.env ?? process.env, log);
  // What a crashed daemon (or another asker) left open reaches nobody: withdrawn, saying why, now and
  // while it runs. After the agent watch took over what a stopping daemon handed over, which stays open.
  const orphans = sweepOrphans(ctx.approvals, ctx.config.approvals.orphan_sweep_seconds * 1000, log);
  const startedAt = new Date();
  const connections = new Set<net.Socket>();

  const server = net.createServer((socket) => {
    connections.add(socket);
    serveConnection(socket, { ctx, limiter, slots, commands, large, opts, startedAt, http, stop: () => void stop(), log });
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
      await http.close();
      await recordings?.stopAll();
      retention.stop();
      await orphans.stop();
      await agentWatch.stop();
      await ctx.refusals?.flush();
      await ctx.close();
      rmSync(opts.socket, { force: true });
      rmSync(pidFile(opts.socket), { force: true });
      claim.release();
      resolveStopped();
    })();
    return stopping;
  };
  return { socket: opts.socket, stopped, stop };
}

/**
 * Withdraws the questions whose asker ended (Approvals.withdrawOrphans) now and every `everyMs`: one killed
 * while the daemon runs (a `client run --no-daemon`, an agent session's supervisor) leaves its question on
 * the phone until it expires otherwise. One sweep at a time: the next is set once one ended.
 */
function sweepOrphans(approvals: Approvals, everyMs: number, log: (line: string) => void): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined = undefined;
  let stopped = false;
  let sweeping: Promise<void> = Promise.resolve();
  // A failure said once until a sweep succeeds again, not every interval.
  let failed: string | null = null;
  const sweep = (): void => {
    sweeping = approvals
      .withdrawOrphans('daemon')
      .then(
        (withdrawn) => {
          failed = null;
          for (const a of withdrawn) log(`approval ${a.id} withdrawn: ${a.why}`);
        },
        (err: unknown) => {
          const message = err instanceof Error ? err.message : String(err);
          if (message !== failed) log(`cannot withdraw the approvals nobody waits for any more: ${message}`);
          failed = message;
        },
      )
      .finally(() => {
        if (stopped) return;
        timer = setTimeout(sweep, everyMs);
        timer.unref();
      });
  };
  sweep();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await sweeping;
    },
  };
}

export function readPid(socket: string): number | null {
  try {
    const pid = Number(readFileSync(pidFile(socket), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** The web console and API's server; WebConsole starts it while a principal exists (ARCHITECTURE §1.4: fail closed). */
async function startWebServer(
  ctx: GatewayContext,
  limiter: RateLimiter,
  slots: AttachSlots,
  large: LargeMessages,
  opts: DaemonOptions,
  settings: HttpSettings,
  inherited: SessionHandover | null,
  log: (line: string) => void,
): Promise<HttpServer> {
  const { startHttp } = await import('./http/server.js');
  return startHttp(ctx, limiter, settings, { tlsDir: tlsDir(opts.env), recordingsDir: recordingsDir(opts.env), slots, inherited, large }, log);
}

interface ServeDeps {
  ctx: GatewayContext;
  limiter: RateLimiter;
  /** Terminal attaches open. */
  slots: AttachSlots;
  /** Commands running (ctx.running). */
  commands: AttachSlots;
  large: LargeMessages;
  opts: DaemonOptions;
  startedAt: Date;
  http: WebConsole;
  stop(): void;
  log(line: string): void;
}

/** A connection carries one request line: `status` and `stop` get one answer line, `cli` a session of frames. */
function serveConnection(socket: net.Socket, deps: ServeDeps): void {
  const firstLine = new FirstLine(MAX_REQUEST_BYTES);
  const answer = (event: Event): void => void socket.end(`${JSON.stringify(event)}\n`);
  const onData = (chunk: Buffer): void => {
    let got: { line: string; rest: Buffer } | null;
    try {
      got = firstLine.push(chunk);
    } catch (err) {
      deps.log(`dropping a client: ${(err as Error).message}`);
      socket.destroy();
      return;
    }
    if (!got) return;
    socket.off('data', onData);
    let request: { type?: unknown; host?: unknown; token?: unknown };
    try {
      request = JSON.parse(got.line) as { type?: unknown; host?: unknown; token?: unknown };
    } catch {
      return answer({ type: 'error', message: 'malformed request: not JSON', exitCode: EXIT.USAGE });
    }
    switch (request.type) {
      case 'cli':
        return serveCli(socket, request, got.rest, { ctx: deps.ctx, limiter: deps.limiter, version: deps.opts.version });
      case 'mcp':
        return serveMcpSocket(socket, request, got.rest, { ctx: deps.ctx, limiter: deps.limiter, large: deps.large, version: deps.opts.version });
      case 'status':
        return answer({ type: 'status', status: daemonStatus(deps) });
      case 'stop':
        answer({ type: 'status', status: daemonStatus(deps) });
        return deps.stop();
      case 'attach-slot': {
        let principal: string;
        try {
          principal = contextFor(deps.ctx, typeof request.token === 'string' ? { REMUX_TOKEN: request.token } : {}).principal.name;
        } catch (err) {
          return answer({ type: 'error', message: (err as Error).message, exitCode: EXIT.DENIED });
        }
        const slot = deps.slots.acquire(principal);
        if ('refusal' in slot) return answer({ type: 'error', message: slot.refusal, exitCode: EXIT.RATE_LIMITED });
        // Held while the client's connection is open: its end (detach, exit, crash) gives the slot back.
        socket.once('close', () => slot.release());
        socket.write(`${JSON.stringify({ type: 'done' })}\n`);
        return;
      }
      case 'sessions-changed': {
        const host = request.host;
        if (typeof host !== 'string' || !deps.ctx.registry.entry(host)) return answer({ type: 'error', message: 'unknown host', exitCode: EXIT.USAGE });
        void deps.ctx.sessions.refresh(host).finally(() => answer({ type: 'done' }));
        return;
      }
      default:
        return answer({ type: 'error', message: 'unknown request type', exitCode: EXIT.USAGE });
    }
  };
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
}

function daemonStatus(deps: ServeDeps): DaemonStatus {
  const { ctx, limiter, opts, startedAt, http } = deps;
  return {
    pid: process.pid,
    version: opts.version,
    startedAt: startedAt.toISOString(),
    uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    socket: opts.socket,
    auditDb: ctx.auditFile,
    knownHosts: ctx.knownHostsFile,
    principal: ctx.principal.name,
    http: http.status(),
    hosts: hostStatuses(ctx),
    rateLimit: {
      ratePerSec: ctx.config.daemon.rate_limit.requests_per_second,
      burst: ctx.config.daemon.rate_limit.burst,
      buckets: limiter.snapshot().map((b) => ({ key: b.key, tokens: Math.round(b.tokens * 100) / 100 })),
    },
    commands: deps.commands.snapshot(),
    attaches: deps.slots.snapshot(),
    sandboxes: runningSandboxes(),
    memoryRssBytes: process.memoryUsage.rss(),
    config: { file: ctx.configFile ?? configFile(opts.env), digest: ctx.configDigest },
    detached: opts.detached === true,
    startOptions: {
      ...(opts.knownHosts ? { knownHosts: opts.knownHosts } : {}),
      // --audit-log-dir DIR is what makes auditDb DIR/audit.db.
      ...(opts.auditDb ? { auditLogDir: dirname(opts.auditDb) } : {}),
      ...opts.http,
    },
  };
}
