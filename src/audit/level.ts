// How an action's level is derived, and which levels a `--level` filter shows.
import { AUDIT_LEVELS, type AuditDecision, type AuditEnd, type AuditLevel } from './types.js';

const SHOWN: Record<AuditLevel, readonly AuditLevel[]> = {
  info: AUDIT_LEVELS,
  warn: ['warn', 'error', 'deny'],
  error: ['error'],
  deny: ['deny'],
};

/** The levels `remux audit ls --level <filter>` lists. */
export function levelsShown(filter: AuditLevel): readonly AuditLevel[] {
  return SHOWN[filter];
}

export function beginLevel(decision: AuditDecision): AuditLevel {
  return decision === 'deny' ? 'deny' : 'info';
}

export function endLevel(decision: AuditDecision, end: AuditEnd): AuditLevel {
  if (end.refusal) return 'deny';
  // Refused before a policy could decide, with an error and no refusal: a host that could not be reached.
  if (decision === 'deny') return end.error ? 'error' : 'deny';
  if (end.error) return 'error';
  if ((end.exitCode !== null && end.exitCode !== 0) || end.signal || end.timedOut || end.truncated) return 'warn';
  return 'info';
}
