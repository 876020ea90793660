// A PerformContext for runtime tests: an admin principal on one local host, the given policies, a
// temporary audit store.
import type { TestContext } from 'node:test';
import { AuditStore } from '../../src/audit/index.js';
import { ADMIN_SCOPE } from '../../src/config/principals.js';
import type { PerformContext } from '../../src/core/perform.js';
import { createLocalHost } from '../../src/hosts/local.js';
import { parsePolicies } from '../../src/policy/load.js';
import { tempDbPath } from '../audit/helpers.js';

export function runtimeContext(t: TestContext, policiesYaml: string, defaultPolicy: string): { context: PerformContext; audit: AuditStore } {
  const audit = AuditStore.open(tempDbPath(t));
  t.after(() => audit.close());
  const host = createLocalHost('localhost', '/usr/bin:/bin');
  const context: PerformContext = {
    principal: { name: 'alice', via: 'cli', scope: ADMIN_SCOPE },
    policies: parsePolicies(policiesYaml, 'tools.yaml', {}),
    defaultPolicy,
    defaultTimeoutMs: null,
    defaultPipefail: false,
    audit,
    host: () => host,
    hostEntry: (name) => ({ name, transport: 'local', labels: {}, builtin: true }),
  };
  return { context, audit };
}
