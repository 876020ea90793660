// Builds what a CLI command needs from the user's files: config, policies, audit store, hosts.
import { existsSync } from 'node:fs';
import { AuditStore } from '../audit/store.js';
import { cliPrincipal, loadConfig, type LoadedConfig } from '../config/config.js';
import { auditDbFile, policiesFile } from '../config/paths.js';
import type { PerformContext } from '../core/perform.js';
import { createLocalHost, isLocalHostName } from '../hosts/local.js';
import { TransportError, type Host } from '../hosts/types.js';
import { loadPolicyFile } from '../policy/load.js';
import type { Policy } from '../policy/types.js';
import { UsageError } from './output.js';

export function loadPolicies(file = policiesFile()): Map<string, Policy> {
  if (!existsSync(file)) {
    throw new UsageError(`no policies file at ${file}`, 'run `remux config init` to create one, or set REMUX_POLICY_CONFIG');
  }
  return loadPolicyFile(file);
}

export function openAudit(): AuditStore {
  return AuditStore.open(auditDbFile());
}

export interface CliContext extends PerformContext {
  loaded: LoadedConfig;
  close(): void;
}

export function loadContext(): CliContext {
  const loaded = loadConfig();
  const { config } = loaded;
  const policies = loadPolicies();
  const audit = openAudit();
  const hosts = new Map<string, Host>();
  return {
    loaded,
    principal: { name: cliPrincipal(config), via: 'cli' },
    policies,
    defaultPolicy: config.default_policy,
    defaultTimeoutMs: config.exec.timeout_seconds === null ? null : config.exec.timeout_seconds * 1000,
    defaultPipefail: config.exec.pipefail,
    audit,
    host(name: string): Host {
      const known = hosts.get(name);
      if (known) return known;
      if (!isLocalHostName(name)) {
        throw new TransportError(`unknown host "${name}": only localhost (alias local) is available in this version`);
      }
      const host = createLocalHost(name, config.exec.secure_path);
      hosts.set(name, host);
      return host;
    },
    close: () => audit.close(),
  };
}
