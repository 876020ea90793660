// The daemon's MCP sessions over HTTP (Streamable HTTP and legacy SSE): one server instance each, bound
// to the principal that opened it, bounded in number per principal and ended when idle, so clients
// that never say goodbye cannot pile up servers.
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';

export interface McpSession {
  principal: string;
  transport: Transport;
  lastUsed: number;
  /** Ends the session unless a request comes first (see SessionLimits.firstUseMs); null once one came. */
  unused: NodeJS.Timeout | null;
}

export interface SessionLimits {
  /** Sessions one principal may hold; a new one beyond it ends that principal's least recently used. */
  perPrincipal: number;
  /** Sessions in all; beyond it a new one is refused (one principal cannot push others out). */
  total: number;
  idleMs: number;
  /**
   * A session that gets no request after the one that opened it (initialize; legacy: GET /sse) within
   * this is ended: its client never finished the handshake (an HTTP server bounds a request's headers so).
   */
  firstUseMs: number;
}

export const DEFAULT_LIMITS: SessionLimits = { perPrincipal: 32, total: 512, idleMs: 30 * 60_000, firstUseMs: 60_000 };

export class McpSessions {
  private readonly sessions = new Map<string, McpSession>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly limits: SessionLimits = DEFAULT_LIMITS) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, limits.idleMs)).unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Whether `principal` may open one more session now (ending its oldest if it is at its own limit). */
  admit(principal: string): boolean {
    const own = [...this.sessions.entries()].filter(([, s]) => s.principal === principal);
    if (own.length >= this.limits.perPrincipal) {
      const [oldest] = own.sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0]!;
      this.end(oldest);
      return true;
    }
    return this.sessions.size < this.limits.total;
  }

  add(id: string, principal: string, transport: Transport): void {
    const unused = setTimeout(() => this.end(id), this.limits.firstUseMs).unref();
    this.sessions.set(id, { principal, transport, lastUsed: Date.now(), unused });
  }

  /** The session `id` if it belongs to `principal`: another principal's session id is as good as unknown. */
  use(id: string, principal: string): McpSession | null {
    const s = this.sessions.get(id);
    if (!s || s.principal !== principal) return null;
    s.lastUsed = Date.now();
    if (s.unused !== null) clearTimeout(s.unused);
    s.unused = null;
    return s;
  }

  /** Forgets a session its transport closed. */
  forget(id: string): void {
    this.take(id);
  }

  end(id: string): void {
    void this.take(id)?.transport.close();
  }

  private take(id: string): McpSession | undefined {
    const s = this.sessions.get(id);
    if (s?.unused) clearTimeout(s.unused);
    this.sessions.delete(id);
    return s;
  }

  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    const all = [...this.sessions.values()];
    for (const s of all) if (s.unused) clearTimeout(s.unused);
    this.sessions.clear();
    await Promise.allSettled(all.map((s) => s.transport.close()));
  }

  private sweep(): void {
    const before = Date.now() - this.limits.idleMs;
    for (const [id, s] of this.sessions) if (s.lastUsed < before) this.end(id);
  }
}
