// What CLI commands share: opening the audit store, loading policies from the user's files, and who the
// command line acts for.
import { AuditStore } from '../audit/store.js';
import { auditDbFile, policiesFile, principalsFile } from '../config/paths.js';
import { loadPrincipals, tokenPrincipal, type Principals } from '../config/principals.js';
import { loadPolicies as loadPolicyFileOrExplain } from '../core/context.js';
import type { Principal } from '../core/types.js';
import type { Policy } from '../policy/types.js';

export function loadPolicies(file = policiesFile()): Map<string, Policy> {
  return loadPolicyFileOrExplain(file);
}

export function openAudit(): AuditStore {
  return AuditStore.open(auditDbFile());
}

/**
 * REMUX_TOKEN's principal and the principals file it was found in (a token of no one: exit 77), or null
 * without a token: the local user, who owns the files and reads them all. The file is read only for a
 * token: without one, a principals.yaml in the making changes nothing.
 */
export function tokenReader(): { principal: Principal; principals: Principals } | null {
  let principals: Principals = { file: principalsFile(), entries: [] };
  const principal = tokenPrincipal(process.env, () => (principals = loadPrincipals(principals.file)));
  return principal === null ? null : { principal, principals };
}
