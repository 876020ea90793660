// Policy files → Policy values, every problem reported as file:line.
import { ConfigError, loadSourceFile, parseSource, validate } from '../config/source.js';
import type { SourceDoc } from '../config/source.js';
import { PolicyFileSchema } from './schema.js';
import type { Policy } from './types.js';

function policiesFromDoc(doc: SourceDoc): Map<string, Policy> {
  const parsed = validate(doc, PolicyFileSchema);
  const policies = new Map<string, Policy>();
  for (const [name, p] of Object.entries(parsed.policies)) {
    const at = ['policies', name];
    const policy: Policy = {
      name,
      sandbox: p.sandbox,
      rules: p.capabilities.map((spec, index) => ({
        ...spec,
        index,
        source: { file: doc.file, line: doc.lineAt([...at, 'capabilities', index]) },
      })),
      source: { file: doc.file, line: doc.lineAt(at) },
    };
    if (p.description !== undefined) policy.description = p.description;
    policies.set(name, policy);
  }
  return policies;
}

export function loadPolicyFile(file: string, env: NodeJS.ProcessEnv = process.env): Map<string, Policy> {
  return policiesFromDoc(loadSourceFile(file, env));
}

/** The same from text (stdin, tests); `file` names the source in errors. */
export function parsePolicies(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Map<string, Policy> {
  return policiesFromDoc(parseSource(text, file, env));
}

/** Several files merged; a policy name defined twice is an error naming both places. */
export function loadPolicies(files: readonly string[], env: NodeJS.ProcessEnv = process.env): Map<string, Policy> {
  const merged = new Map<string, Policy>();
  for (const file of files) {
    for (const [name, policy] of loadPolicyFile(file, env)) {
      const earlier = merged.get(name);
      if (earlier) {
        const { file: f, line } = policy.source;
        throw new ConfigError(f, line, `policy "${name}" is already defined at ${earlier.source.file}:${earlier.source.line}`);
      }
      merged.set(name, policy);
    }
  }
  return merged;
}
