// Everything perform() needs, built from the user's files. The CLI builds one per command; the
// daemon builds one at start and keeps it (policies and hosts are re-read when their files change).
import { existsSync } from 'node:fs';
import { AuditStore } from '../audit/store.js';
import { cliPrincipal, loadConfig, type Config } from '../config/config.js';
import { auditDbFile, knownHostsFile, policiesFile, principalsFile } from '../config/paths.js';
import { ADMIN_SCOPE, loadPrincipals, tokenPrincipal, type Principals } from '../config/principals.js';
import { ReloadingFile } from '../config/reloading.js';
import type { EarlySockets } from '../hosts/early-sockets.js';
import { HostRegistry } from '../hosts/registry.js';
import { Approvals } from '../notify/service.js';
import { loadPolicyFile } from '../policy/load.js';
import { Sessions } from '../sessions/service.js';
import type { Policy } from '../policy/types.js';
import { UsageError } from './errors.js';
import type { PerformContext } from './perform.js';
import type { Principal } from './types.js';

export interface GatewayContext extends PerformContext {
  config: Config;
  sessions: Sessions;
  configFile: string | null;
  /** configDigest of the config.yaml read (null: none), to tell a user when the file has changed since. */
  configDigest: string | null;
  registry: HostRegistry;
  knownHostsFile: string;
  policiesFile: string;
  auditFile: string;
  principalsFile: string;
  /** The principals file, re-read when it changes (`remux principal add` needs no daemon restart). */
  principals(): Principals;
  /** Questions for a person (policy `ask` without a terminal, agent prompts) and their audited answers. */
  approvals: Approvals;
  close(): Promise<void>;
}

export interface ContextOptions {
  env?: NodeJS.ProcessEnv;
  /** --known-hosts; else REMUX_KNOWN_HOSTS, config, ~/.ssh/known_hosts. */
  knownHosts?: string;
  /** --accept-new: trust unknown host keys on first use (recorded). */
  acceptNew?: boolean;
  /** Told of each key --accept-new trusted (after it is recorded and queued for the audit trail). */
  onHostKeyAccepted?: (host: string, fingerprint: string, knownHostsFile: string) => void;
  /** --audit-log-dir of the seed's daemon: the store goes in DIR/audit.db. */
  auditDb?: string;
  /** TCP connections already begun to the hosts this context will use. */
  earlySockets?: EarlySockets;
  /** A context one CLI process owns: its Ctrl-C, which ends every SSH connect under way at once (see PoolOptions.connectSignal). */
  connectSignal?: AbortSignal;
  /** For a command that may need no policy (an attach): a missing policies file is reported once one is needed; a bad one still now. */
  policiesWhenNeeded?: boolean;
  /** This process in words, as the reason its approvals are withdrawn with names it should it crash (default: remux (pid N)). */
  asker?: string;
}

export function loadPolicies(file: string): Map<string, Policy> {
  if (!existsSync(file)) {
    throw new UsageError(`no policies file at ${file}`, 'run `remux config init` to create one, or set REMUX_POLICY_CONFIG');
  }
  return loadPolicyFile(file);
}

export function createContext(opts: ContextOptions = {}): GatewayContext {
  const env = opts.env ?? process.env;
  const { config, file: configFile, digest: configDigest } = loadConfig(env);
  const policies = new ReloadingFile(policiesFile(env), loadPolicies);
  // Fail now, with file:line, rather than on the first command.
  if (!opts.policiesWhenNeeded || existsSync(policies.file)) policies.get();
  const auditFile = opts.auditDb ?? auditDbFile(env);
  const audit = AuditStore.open(auditFile);
  const known = opts.knownHosts ?? knownHostsFile(env, config.ssh.known_hosts);
  const principal = cliPrincipal(config);
  const principals = new ReloadingFile(principalsFile(env), loadPrincipals, () => ({ file: principalsFile(env), entries: [] }));
  const registry = new HostRegistry({
    config,
    env,
    knownHostsFile: known,
    acceptNew: opts.acceptNew === true,
    ...(opts.earlySockets ? { earlySockets: opts.earlySockets } : {}),
    ...(opts.connectSignal ? { connectSignal: opts.connectSignal } : {}),
    // Trusting a new host key is a security decision: it goes into the audit trail. The SSH layer does
    // not wait for this callback (the key is already in known_hosts), so the write is not awaited; it is
    // queued at once, and close() writes whatever is still queued.
    onHostKeyAccepted: (host, fingerprint) => {
      audit
        .record(
          { principal, host, operation: 'host_key.accept', resource: fingerprint, decision: 'allow', reason: `trusted on first use (--accept-new), recorded in ${known}` },
          { exitCode: 0, durationMs: 0 },
        )
        .catch((err: unknown) => {
          process.stderr.write(`remux: cannot audit the new host key of ${host} (${fingerprint}): ${err instanceof Error ? err.message : String(err)}\n`);
        });
      opts.onHostKeyAccepted?.(host, fingerprint, known);
    },
  });
  const sessions = new Sessions(registry, config.sessions.attach_lifetime_seconds * 1000);
  const approvals = new Approvals({ env, config, audit, ...(opts.asker ? { asker: opts.asker } : {}) });
  return {
    config,
    configFile,
    configDigest,
    registry,
    sessions,
    knownHostsFile: known,
    policiesFile: policies.file,
    auditFile,
    principalsFile: principals.file,
    principals: () => principals.get(),
    approvals,
    // The local user owns every file remux reads: acting as it, remux is an admin.
    principal: { name: principal, via: 'cli', scope: ADMIN_SCOPE },
    get policies() {
      return policies.get();
    },
    defaultPolicy: config.default_policy,
    defaultTimeoutMs: config.exec.timeout_seconds === null ? null : config.exec.timeout_seconds * 1000,
    defaultPipefail: config.exec.pipefail,
    audit,
    host: (name) => registry.host(name),
    hostEntry: (name) => registry.entry(name),
    async close() {
      sessions.stopSweeping();
      await registry.close();
      approvals.close();
      audit.close();
    },
  };
}

/** The same context acting for another principal (its scope, its name in the audit trail). */
export function asPrincipal(ctx: GatewayContext, principal: Principal): GatewayContext {
  // A prototype link, not a copy: the policies getter and everything else stay live and shared.
  return Object.assign(Object.create(ctx) as GatewayContext, { principal });
}

/**
 * The context a command line runs in: as the principal whose token REMUX_TOKEN holds (with its scope),
 * else as the local user. A token that matches no principal is refused (exit 77), never ignored.
 */
export function contextFor(ctx: GatewayContext, env: NodeJS.ProcessEnv): GatewayContext {
  const principal = tokenPrincipal(env, () => ctx.principals());
  return principal === null ? ctx : asPrincipal(ctx, principal);
}
