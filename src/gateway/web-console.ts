// The daemon's web console and API follow the principals file while the daemon runs: served from the
// moment a principal exists, stopped when the last one is removed, and every change (removal, rotated
// token, edited scope) ends at once the browser sessions and WebSockets it no longer accepts.
//
// With no principal the server is stopped, not left answering 503: a daemon that never had one does not
// listen either, so both paths reach the same state, and nothing (TLS, routes, static files) is exposed
// that nobody may use. `remux daemon status` says why it is off. An unreadable principals file is
// different: the server stays up so that whoever tries learns why (503 naming file:line), and admits nobody.
//
// Its browser sessions and login lockouts outlive a graceful stop: handed to the next daemon (http/session-handover.ts).
import { remuxHome, sessionHandoverFile } from '../config/paths.js';
import type { Principals } from '../config/principals.js';
import { watchReloading } from '../config/reloading.js';
import type { GatewayContext } from '../core/context.js';
import type { HttpFlags, HttpServer, HttpSettings } from './http/server.js';
import { leaveHandover, takeHandover, type SessionHandover } from './http/session-handover.js';

/** Where the console is served (and, when the principals file is unreadable, why it admits nobody), or why it is off. */
export type WebState = { url: string; refusing?: string } | { off: string };

/** How often the principals file is checked: a change reaches the daemon within this. */
export const PRINCIPALS_POLL_MS = 250;
/** After a failed start (the port taken), the next attempt. */
const RETRY_MS = 5000;

interface WebDeps {
  ctx: GatewayContext;
  /** --listen, --tls-cert, …: checked when the daemon starts, whether or not a principal exists yet. */
  flags: HttpFlags;
  /** Starts the server (the daemon's routes and state), with the browser sessions the daemon before left. */
  serve(settings: HttpSettings, inherited: SessionHandover | null): Promise<HttpServer>;
  log(line: string): void;
  /** Where the browser sessions are handed over: $REMUX_HOME/run. */
  env: NodeJS.ProcessEnv;
}

export class WebConsole {
  private server: HttpServer | null = null;
  private state: WebState = { off: 'starting' };
  /** Changes are applied one at a time: a start and a stop never overlap. */
  private queue: Promise<void> = Promise.resolve();
  private retry: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly watcher: { stop(): void };
  /** The browser sessions the daemon before left, for the server the daemon starts with (none later: a console off at start had none to keep). */
  private inherited: SessionHandover | null = null;

  private constructor(
    private readonly deps: WebDeps,
    private readonly settings: HttpSettings,
  ) {
    this.watcher = watchReloading(() => deps.ctx.principals(), PRINCIPALS_POLL_MS, () => this.reconcile());
  }

  /**
   * Bad flags, a principals file that does not load, or a server that cannot start: the daemon does
   * not start (an error with the reason). No principal: it starts with the console off.
   */
  static async start(deps: WebDeps): Promise<WebConsole> {
    const { httpSettings } = await import('./http/server.js');
    const web = new WebConsole(deps, httpSettings(deps.ctx.config.http, deps.flags));
    try {
      const now = deps.ctx.principals();
      // Taken once the principals file loads: a start that it stops leaves them to the next.
      web.inherited = takeHandover(sessionHandoverFile(deps.env), remuxHome(deps.env), deps.log);
      await web.apply(now, true);
    } catch (err) {
      await web.close();
      throw err;
    }
    return web;
  }

  status(): WebState {
    return this.state;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher.stop();
    if (this.retry) clearTimeout(this.retry);
    await this.queue;
    if (!this.server) return;
    await this.server.close();
    const left = this.server.handOver();
    this.server = null;
    const { sessions, logins } = left;
    if (sessions.length + logins.failures.length + logins.known.length === 0) return;
    try {
      leaveHandover(sessionHandoverFile(this.deps.env), remuxHome(this.deps.env), left);
      this.deps.log(`browser sessions: ${sessions.length} left to the next daemon, and the failed token checks of ${logins.failures.length} client addresses`);
    } catch (err) {
      this.deps.log(`browser sessions: cannot leave them to the next daemon (their browsers log in again, its login lockouts start over): ${(err as Error).message}`);
    }
  }

  private reconcile(): void {
    this.queue = this.queue.then(async () => {
      let now: Principals | Error;
      try {
        now = this.deps.ctx.principals();
      } catch (err) {
        now = err as Error;
      }
      await this.apply(now, false).catch((err: unknown) => this.deps.log(`web console and API: ${(err as Error).message}`));
    });
  }

  private async apply(now: Principals | Error, first: boolean): Promise<void> {
    if (this.closed) return;
    const inherited = this.inherited;
    this.inherited = null;
    const { ctx, log } = this.deps;
    if (now instanceof Error) {
      if (first) throw now;
      this.server?.revoke(now);
      const why = `the principals file is invalid: ${now.message}`;
      this.state = this.server ? { url: this.server.url, refusing: why } : { off: why };
      log(`web console and API: ${this.server ? 'admitting nobody' : 'off'}: ${why}`);
      return;
    }
    if (now.entries.length === 0) {
      const off = `no principal is configured in ${ctx.principalsFile}; the console and API start as soon as one is added: remux principal add NAME --admin (or remux config init)`;
      if (inherited) log(`browser sessions: none of the daemon before taken back: ${off}`);
      if (this.server) {
        this.server.revoke(now);
        await this.server.close();
        this.server = null;
        log(`web console and API: stopped: the last principal was removed from ${ctx.principalsFile}`);
      } else if (first) {
        log(`web console and API: off: ${off}`);
      }
      this.state = { off };
      return;
    }
    if (this.server) {
      this.server.revoke(now);
      this.state = { url: this.server.url };
      return;
    }
    try {
      this.server = await this.deps.serve(this.settings, inherited);
      this.state = { url: this.server.url };
    } catch (err) {
      const why = `cannot serve on ${this.settings.host}:${this.settings.port}: ${(err as Error).message}`;
      if (first) throw new Error(why, { cause: err });
      const off = `${why}; trying again every ${RETRY_MS / 1000}s`;
      if (!('off' in this.state) || this.state.off !== off) log(`web console and API: ${off}`);
      this.state = { off };
      if (this.retry) clearTimeout(this.retry);
      this.retry = setTimeout(() => this.reconcile(), RETRY_MS);
      this.retry.unref();
    }
  }
}
