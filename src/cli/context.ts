// What CLI commands share: opening the audit store and loading policies from the user's files.
import { AuditStore } from '../audit/store.js';
import { auditDbFile, policiesFile } from '../config/paths.js';
import { loadPolicies as loadPolicyFileOrExplain } from '../core/context.js';
import type { Policy } from '../policy/types.js';

export function loadPolicies(file = policiesFile()): Map<string, Policy> {
  return loadPolicyFileOrExplain(file);
}

export function openAudit(): AuditStore {
  return AuditStore.open(auditDbFile());
}
