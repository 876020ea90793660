// A PerformContext for runtime tests: an admin principal on one local host, the given policies, a
// temporary audit store.
import { existsSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { AuditStore } from '../../src/audit/index.js';
import { ADMIN_SCOPE } from '../../src/config/principals.js';
import { createContext, type GatewayContext } from '../../src/core/context.js';
import type { PerformContext } from '../../src/core/perform.js';
import { createLocalHost } from '../../src/hosts/local.js';
import { parsePolicies } from '../../src/policy/load.js';
import type { Policy } from '../../src/policy/types.js';
import { tempDbPath } from '../audit/helpers.js';
import { startFleet, type Fleet } from '../fleet/fleet.js';
import { tempHome } from './cli.js';

export function runtimeContext(t: TestContext, policiesYaml: string, defaultPolicy: string, labels: Record<string, string> = {}): { context: PerformContext; audit: AuditStore } {
  const audit = AuditStore.open(tempDbPath(t));
  t.after(() => audit.close());
  return { context: localContext(audit, parsePolicies(policiesYaml, 'tools.yaml', {}), defaultPolicy, labels), audit };
}

/** A temporary directory for one test, by its real path (policies compare resolved paths), removed after it. */
export function tempRoot(t: TestContext, prefix: string): string {
  const root = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

/** Principal alice (admin scope) on this machine's `localhost`, with these policies, audited in `audit`. */
export function localContext(audit: AuditStore, policies: ReadonlyMap<string, Policy>, defaultPolicy: string, labels: Record<string, string> = {}): PerformContext {
  const host = createLocalHost('localhost', '/usr/bin:/bin', undefined);
  return {
    principal: { name: 'alice', via: 'cli', scope: ADMIN_SCOPE },
    policies,
    defaultPolicy,
    defaultTimeoutMs: null,
    defaultPipefail: false,
    audit,
    host: () => host,
    hostEntry: (name) => ({ name, transport: 'local', labels: { ...labels }, builtin: true }),
  };
}

export interface FleetHome {
  fleet: Fleet;
  home: string;
  /** The remux environment for this home and the fleet's known hosts. */
  env(): Record<string, string>;
  /** A context on that home, its hosts' connections prepared. */
  context(): Promise<GatewayContext>;
  stop(): Promise<void>;
}

/**
 * A fleet of `count` sshd hosts (h1, h2, …) in a remux home: hosts.yaml with their addresses and each
 * host's labels (default env=prod), and the given policies.yaml and config.yaml.
 */
export async function startFleetHome(files: { policies: string; config: string }, count = 2, labels: (i: number) => string = () => 'env: prod'): Promise<FleetHome> {
  const fleet = await startFleet({ count });
  const h = tempHome();
  const hosts = fleet.hosts
    .map((x, i) => `  ${x.name}:\n    address: ${x.address}\n    port: ${x.port}\n    user: ${x.user}\n    identity: ${x.identityFile}\n    labels: { ${labels(i)} }\n`)
    .join('');
  writeFileSync(join(h.home, 'hosts.yaml'), `hosts:\n${hosts}`);
  writeFileSync(join(h.home, 'policies.yaml'), files.policies);
  writeFileSync(join(h.home, 'config.yaml'), files.config);
  const env = (): Record<string, string> => ({ ...h.env, REMUX_KNOWN_HOSTS: fleet.knownHostsFile });
  const contexts: GatewayContext[] = [];
  return {
    fleet,
    home: h.home,
    env,
    async context() {
      const ctx = createContext({ env: env() });
      contexts.push(ctx);
      await ctx.registry.prepare(fleet.hosts.map((x) => x.name));
      return ctx;
    },
    async stop() {
      for (const ctx of contexts) await ctx.close();
      await fleet.stop();
      h.remove();
    },
  };
}

/** Every CPython 3 on this machine the runtime is tested with: Debian's, then pyenv's 3.x builds. */
export function pythonsHere(): string[] {
  const versions = existsSync('/root/.pyenv/versions') ? readdirSync('/root/.pyenv/versions').filter((v) => /^3\.(\d+)\./.test(v)) : [];
  return ['/usr/bin/python3', ...versions.map((v) => `/root/.pyenv/versions/${v}/bin/python3`)].filter((p) => existsSync(p));
}
