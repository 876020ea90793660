// A PerformContext for runtime tests: an admin principal on one local host, the given policies, a
// temporary audit store.
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { AuditStore } from '../../src/audit/index.js';
import { ADMIN_SCOPE } from '../../src/config/principals.js';
import type { PerformContext } from '../../src/core/perform.js';
import { createLocalHost } from '../../src/hosts/local.js';
import { parsePolicies } from '../../src/policy/load.js';
import type { Policy } from '../../src/policy/types.js';
import { tempDbPath } from '../audit/helpers.js';

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
  const host = createLocalHost('localhost', '/usr/bin:/bin');
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
