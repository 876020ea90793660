// Pieces of the check of a tool call's declared operations (guard.ts): the rules a write of a whole tree
// reaches, one decision out of several, and how the call reads in the audit and to an approver.
import { posix } from 'node:path';
import { globPrefix } from '../policy/glob.js';
import type { Check, Decision, Policy } from '../policy/types.js';
import { FILE_OPERATIONS } from '../core/perform-file.js';
import type { Operation } from './method.js';

/**
 * A write anywhere under `root` reaches every write_file deny or ask rule for a path inside it (and any
 * pattern rule above it that could match inside): each is a check with that rule's effect. evaluatePath
 * has already decided `root` itself.
 */
export function treeChecks(policy: Policy, root: string): Check[] {
  const inside = (p: string): boolean => root === '/' || p === root || p.startsWith(`${root}/`);
  const checks: Check[] = [];
  for (const rule of policy.rules) {
    if (rule.operation !== 'write_file' || rule.effect === 'allow') continue;
    for (const glob of rule.resources ?? []) {
      const prefix = globPrefix(glob);
      const above = glob !== prefix && (prefix === '/' || root.startsWith(`${prefix}/`));
      if (!inside(prefix) && !above) continue;
      const ref = { policy: policy.name, index: rule.index, operation: rule.operation, effect: rule.effect, source: rule.source };
      const verdict = rule.effect === 'deny' ? 'denied' : 'needs approval';
      const why = rule.reason ? `: ${rule.reason}` : '';
      checks.push({
        operation: 'write_file',
        resource: root,
        stage: 0,
        effect: rule.effect,
        rule: ref,
        reason: `write_file anywhere under ${root}, which includes ${glob}: ${verdict} by ${policy.name}#${rule.index} (${posix.basename(rule.source.file)}:${rule.source.line})${why}`,
      });
    }
  }
  return checks;
}

/** A decision that needs no rule: the call touches nothing on the host. */
export function nothingTouched(policy: Policy, method: string): Decision {
  return {
    effect: 'allow',
    policy: policy.name,
    rule: null,
    reason: `${method} touches nothing on the host`,
    checks: [],
    output: { maxBytes: null, redact: [], redactBlocks: [] },
    sandbox: false,
    cwd: '/',
    bounds: [],
  };
}

/** The policy operation an Operation is checked as. */
export function policyOperation(op: Operation): string {
  return op.kind === 'exec' ? 'execute_binary' : FILE_OPERATIONS[op.kind];
}

/** For the audit: `read_file`, or `execute_binary,write_file` for several, `runtime.call` for none. */
export function auditOperation(ops: readonly Operation[]): string {
  return ops.length === 0 ? 'runtime.call' : [...new Set(ops.map(policyOperation))].join(',');
}

/** A command's argv, or a file operation's path. */
export function operationTarget(op: Operation): string {
  return op.kind === 'exec' ? op.argv.join(' ') : op.path;
}

/** In words, for an approver and refusals: `execute_binary systemctl, write_file / (anywhere under it)`. */
export function describeOperations(ops: readonly Operation[]): string {
  return ops
    .map((op) => `${policyOperation(op)} ${operationTarget(op)}${op.kind === 'file.write' && op.tree ? ' (anywhere under it)' : ''}${op.kind === 'file.write' && op.reads ? ' (and read_file)' : ''}`)
    .join(', ');
}
