// Host lookup for perform(): the built-in local host, inventory hosts reached over the SSH connection
// pool, and agent hosts reached over the connection their agent dialed to the daemon (AgentHub). The inventory is re-read when hosts.yaml changes (the daemon runs for days).
import { AGENTS_HOST, agentsHostEntry, recordedServer, recordedServers } from '../agents/tmux.js';
import type { Config } from '../config/config.js';
import { hostInScope, selectInScope } from '../core/scope.js';
import type { Principal } from '../core/types.js';
import { ReloadingFile } from '../config/reloading.js';
import { AgentHub } from '../gateway/relay/hub.js';
import { createAgentHost, notRelayedHere } from './agent.js';
import { createLocalHost, isLocalHostName } from './local.js';
import { hostNameProblem, hostsFile, loadInventory, type HostEntry, type Inventory, type SshHostEntry, type TmuxSocket } from './inventory.js';
import type { EarlySockets } from './early-sockets.js';
import type { ConnectionPool, PoolOptions } from './pool.js';
import { TransportError, type Host } from './types.js';

export interface RegistryOptions {
  config: Config;
  knownHostsFile: string;
  /** Trust unknown host keys on first use (recorded in known_hosts). Never trusts a changed key. */
  acceptNew: boolean;
  /** Told when a new host key was trusted because of acceptNew, so it can be audited. */
  onHostKeyAccepted?: PoolOptions['onHostKeyAccepted'];
  /** TCP connections already begun to the selected hosts (in-process fan-outs). */
  earlySockets?: EarlySockets;
  connectSignal?: PoolOptions['connectSignal'];
  env?: NodeJS.ProcessEnv;
}

export class HostRegistry {
  private readonly inventorySource: ReloadingFile<Inventory>;
  private readonly locals = new Map<string, Host>();
  private readonly agentHosts = new Map<string, Host>();
  /** The agents connected to this process (only the daemon serves the relay; elsewhere it stays empty). */
  readonly agents = new AgentHub();
  private pool: ConnectionPool | null = null;

  constructor(private readonly opts: RegistryOptions) {
    const file = hostsFile(opts.env);
    this.inventorySource = new ReloadingFile(file, (f) => loadInventory(f, opts.env), () => ({ file, hosts: [] }));
  }

  /** Where programs are looked up on every host (config exec.secure_path). */
  get securePath(): string {
    return this.opts.config.exec.secure_path;
  }

  inventory(): Inventory {
    return this.inventorySource.get();
  }

  /**
   * Host names a selector picks (`all`, names, globs, label terms) among those `principal` may use;
   * throws InventoryError (bad syntax; for admins also naming what exists) or ScopeError.
   */
  select(selector: string, principal: Principal): string[] {
    if (principal.scope.admin && isLocalHostName(selector)) return [selector];
    // The agents' tmux server is no inventory host (unless hosts.yaml names one so), yet named it is one host.
    const agents = selector === AGENTS_HOST ? this.entry(AGENTS_HOST)! : null;
    if (agents?.builtin === true && (principal.scope.admin || hostInScope(principal.scope, agents))) return [AGENTS_HOST];
    return selectInScope(principal, this.inventory(), selector).map((h) => h.name);
  }

  /** Loads the SSH machinery (ssh2) only when a selected host needs it; the CLI's local path stays light. */
  async prepare(names: readonly string[]): Promise<void> {
    if (this.pool || !names.some((n) => this.entry(n)?.transport === 'ssh')) return;
    const { ConnectionPool } = await import('./pool.js');
    const { config } = this.opts;
    this.pool = new ConnectionPool({
      knownHostsFile: this.opts.knownHostsFile,
      acceptNew: this.opts.acceptNew,
      securePath: config.exec.secure_path,
      connectTimeoutMs: config.ssh.connect_timeout_seconds * 1000,
      keepaliveIntervalMs: config.ssh.keepalive_interval_seconds * 1000,
      maxChannels: config.ssh.max_channels,
      breaker: { failureThreshold: config.ssh.breaker.failure_threshold, cooldownMs: config.ssh.breaker.cooldown_seconds * 1000 },
      backoff: { baseMs: config.ssh.backoff.base_ms, capMs: config.ssh.backoff.cap_ms },
      lookup: (name) => this.sshEntry(name),
      ...(this.opts.onHostKeyAccepted ? { onHostKeyAccepted: this.opts.onHostKeyAccepted } : {}),
      ...(this.opts.earlySockets ? { earlySockets: this.opts.earlySockets } : {}),
      ...(this.opts.connectSignal ? { connectSignal: this.opts.connectSignal } : {}),
    });
  }

  host(name: string): Host {
    const entry = this.entry(name);
    if (!entry) {
      const known = `known: localhost${this.inventory().hosts.map((h) => `, ${h.name}`).join('')}`;
      // A selector (env=prod, web*, all) reaches here from callers that take one host (MCP, the API): adding it could not help.
      if (hostNameProblem(name) !== null) throw new TransportError(`"${name}" is not a host name: name one host (${known})`);
      throw new TransportError(`unknown host "${name}" (${known}); add it with: remux hosts add ${name} USER@ADDRESS`);
    }
    if (entry.transport === 'local') {
      let host = this.locals.get(name);
      if (!host) {
        host = createLocalHost(name, this.opts.config.exec.secure_path, this.opts.config.daemon.socket);
        this.locals.set(name, host);
      }
      return host;
    }
    if (entry.transport === 'agent') {
      let host = this.agentHosts.get(name);
      if (!host) {
        host = createAgentHost(name, this.agents);
        this.agentHosts.set(name, host);
      }
      return host;
    }
    if (!this.pool) throw new Error(`internal: HostRegistry.prepare() was not called for ${name}`);
    return this.pool.host(entry);
  }

  /** Connection state of every SSH host the pool has seen (empty when no SSH host was used). */
  poolStatus(): ReturnType<ConnectionPool['status']> {
    return this.pool?.status() ?? [];
  }

  /** The login user on an agent's machine (the default tmux user there), known while it is connected. */
  agentUser(name: string): string {
    if (!this.agents.relaying) throw notRelayedHere(name);
    const status = this.agents.status(name);
    if (status.user === null) throw new TransportError(`agent ${name} is not connected (${status.lastError ?? 'never connected'})`);
    return status.user;
  }

  async close(): Promise<void> {
    this.agents.closeAll();
    this.opts.earlySockets?.closeUnused();
    await this.pool?.closeAll();
  }

  /** The inventory entry of `name` (the built-in local host included), or undefined. */
  entry(name: string): HostEntry | undefined {
    return inventoryEntry(this.inventory(), name, this.opts.env);
  }

  /**
   * The tmux server a command about `session` on `host` addresses: on the agents' own server, the one the
   * agent session's record names (remux code: its path, whatever this process's TMUX_TMPDIR); else the host's.
   */
  tmuxSocket(host: string, session?: string): TmuxSocket | null {
    const entry = this.entry(host);
    const agents = host === AGENTS_HOST && entry?.builtin === true && session !== undefined ? recordedServer(session, this.opts.env) : null;
    return agents ?? entry?.tmuxSocket ?? null;
  }

  /**
   * The tmux servers besides the host's own where sessions of `host` run, with the sessions each has: on
   * the agents' own server, the ones agent sessions' records name (started under another TMUX_TMPDIR).
   */
  otherTmuxServers(host: string): Array<{ server: TmuxSocket; sessions: Set<string> }> {
    return host === AGENTS_HOST && this.entry(host)?.builtin === true ? recordedServers(this.opts.env) : [];
  }

  private sshEntry(name: string): SshHostEntry | undefined {
    const entry = this.entry(name);
    return entry?.transport === 'ssh' ? entry : undefined;
  }
}

/** The entry of host `name` in `inventory`, the built-in hosts (localhost, agents) included, or undefined. */
export function inventoryEntry(inventory: Inventory, name: string, env: NodeJS.ProcessEnv = process.env): HostEntry | undefined {
  if (isLocalHostName(name)) return { name, transport: 'local', labels: {}, builtin: true };
  // The agents' tmux server (remux code), unless hosts.yaml names a host so: its sessions attach as any local one.
  if (name === AGENTS_HOST) return agentsHostEntry(inventory, env);
  return inventory.hosts.find((h) => h.name === name);
}
