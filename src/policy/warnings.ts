// What `remux policy validate` warns of: rules that load, but can never do what they say on this machine.
import fs from 'node:fs';
import type { Policy } from './types.js';

export interface PolicyWarning {
  file: string;
  line: number;
  policy: string;
  rule: number;
  message: string;
}

/** A glob character ends the literal part of a pattern (glob.ts's syntax). */
const GLOB = /[*?[{]/;

/**
 * Allow rules naming a path through a link (`/var/run/**`, `/bin/cat` on merged-/usr systems): they match
 * paths with their links resolved, so such a rule never matches, and the command it was written for is
 * denied by "no rule allows it". Deny and ask rules match the path as written too: not listed.
 */
export function policyWarnings(policies: ReadonlyMap<string, Policy>): PolicyWarning[] {
  const warnings: PolicyWarning[] = [];
  for (const policy of policies.values()) {
    for (const rule of policy.rules) {
      if (rule.effect !== 'allow' || rule.resources === null) continue;
      for (const resource of rule.resources) {
        const link = resource.startsWith('/') ? linkedPart(resource) : null;
        if (link === null) continue;
        warnings.push({
          file: rule.source.file,
          line: rule.source.line,
          policy: policy.name,
          rule: rule.index,
          message: `${policy.name}#${rule.index} ${rule.effect} ${rule.operation} ${resource} never matches here: ${link.path} leads to ${link.real}, and allow rules match paths with their links resolved; write ${link.real}${resource.slice(link.path.length)}`,
        });
      }
    }
  }
  return warnings;
}

/** The longest existing literal part of `pattern` (whole segments before any glob), when links lead it elsewhere. */
function linkedPart(pattern: string): { path: string; real: string } | null {
  const segments = pattern.split('/');
  const literal = segments.findIndex((s) => GLOB.test(s));
  for (let n = literal === -1 ? segments.length : literal; n > 1; n--) {
    const part = segments.slice(0, n).join('/');
    let real: string;
    try {
      real = fs.realpathSync.native(part);
    } catch {
      continue; // not here (yet): a shorter part may tell
    }
    return real === part ? null : { path: part, real };
  }
  return null;
}
