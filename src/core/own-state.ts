// remux's own state on this machine — its home (principals' token hashes, the approvals key that signs
// decision links, the audit store, policies, config, the daemon's socket) and the files the environment
// puts elsewhere — is no policy's resource for anyone acting through remux but the local user's own CLI,
// which owns those files anyway. Under the admin template an MCP client (even one started by the local
// user), a token's holder or the gateway through an agent could otherwise read approvals.key and answer
// its own asks, or rewrite policies.yaml or principals.yaml and widen its own scope. The protection is a
// deny rule added after the policy's own (deny beats allow whatever the order; the user's rules keep their
// numbers): the static check refuses naming it, and the OS sandbox hides those paths (sandboxSpec makes
// a denied tree invisible), so a command under execute_code cannot reach them either.
import { realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { auditDbFile, policiesFile, principalsFile, remuxHome, socketFile } from '../config/paths.js';
import type { Policy, Rule } from '../policy/types.js';
import type { Principal } from './types.js';

const OWN_STATE_SOURCE = 'built into remux';

const REASON = "remux's own files (its home, policies, principals, audit store, socket) are reachable only by the local user's CLI, never through remux";

/** Paths this process learned are remux's own (the daemon's socket, wherever --socket or config put it). */
const learned = new Set<string>();

/** Adds a file remux owns to its own state (a daemon's socket: whoever connects to it acts as the local user). */
export function addOwnState(path: string): void {
  learned.add(path);
}

let memo: { key: string; paths: string[] } | null = null;

/** Path globs of remux's own state here: its home, and each file the environment or the daemon put elsewhere. */
export function ownStatePaths(env: NodeJS.ProcessEnv = process.env): string[] {
  const named = [remuxHome(env), policiesFile(env), principalsFile(env), auditDbFile(env), socketFile(env), ...learned];
  const key = named.join('\0');
  if (memo?.key !== key) memo = { key, paths: resolvePaths(named) };
  return memo.paths;
}

function resolvePaths([homePath, ...files]: string[]): string[] {
  const home = real(homePath as string);
  const outside = files.map(real).filter((f) => !f.startsWith(`${home}/`));
  // The audit store is three files (its -wal and -shm beside it); a socket is matched as itself.
  return [`${home}/**`, ...new Set(outside.flatMap((f) => [f, `${f}-*`]))];
}

/** Rules match paths with their symlinks resolved: a file not made yet, by its directory's real path. */
function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(real(parent), basename(path));
  }
}

const protectedPolicies = new WeakMap<Policy, { key: string; policy: Policy }>();

/**
 * The policy a principal's action is checked under: as written for the local user's CLI; for anyone else
 * with remux's own state denied (read, write and list), whatever the policy allows.
 */
export function policyAs(principal: Principal, policy: Policy | undefined, env: NodeJS.ProcessEnv = process.env): Policy | undefined {
  if (!policy || principal.via === 'cli') return policy;
  const paths = ownStatePaths(env);
  const key = paths.join('\0');
  const cached = protectedPolicies.get(policy);
  if (cached?.key === key) return cached.policy;
  const source = { file: OWN_STATE_SOURCE, line: 0 };
  const rules: Rule[] = (['read_file', 'list_directory', 'write_file'] as const).map((operation, i) => ({
    index: policy.rules.length + i,
    operation,
    effect: 'deny',
    resources: paths,
    reason: REASON,
    source,
  }));
  const guarded: Policy = { ...policy, rules: [...policy.rules, ...rules] };
  protectedPolicies.set(policy, { key, policy: guarded });
  return guarded;
}
