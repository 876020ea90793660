import { EXIT } from './exit-codes.js';

/** Bad flags, arguments or setup that the user can fix: reported with a hint, exit 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The principal may not touch what it asked for (core/scope.ts): HTTP 403, exit 77. */
export class ScopeError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'ScopeError';
  }
}

/** A token or session that proves nobody (REMUX_TOKEN, Authorization, cookie): HTTP 401, exit 77. */
export class AuthError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

/**
 * The exit status a failure gives, as the CLI reports it (cli/program.ts) and the audit records it: the
 * caller's mistake in words, flags or a file 2, a refusal of who asked 77, anything else 1. By name, since
 * ConfigError and ParseError live with what they check.
 */
export function exitCodeOf(err: unknown): number {
  const name = err instanceof Error ? err.name : '';
  if (name === 'AuthError' || name === 'ScopeError') return EXIT.DENIED;
  if (name === 'UsageError' || name === 'ConfigError' || name === 'ParseError') return EXIT.USAGE;
  return EXIT.FAILURE;
}

/**
 * The item `ref` names among `items`: the one whose id it is, else the only one whose id starts with it
 * (CLI arguments take any unique start of an id). None or several: a UsageError that says which.
 */
export function findByIdPrefix<T extends { id: string }>(items: readonly T[], ref: string, words: { missing: string; hint: string; plural: string }): T {
  const exact = items.find((item) => item.id === ref);
  if (exact) return exact;
  const matches = items.filter((item) => item.id.startsWith(ref));
  if (matches.length === 1) return matches[0] as T;
  if (matches.length === 0) throw new UsageError(words.missing, words.hint);
  throw new UsageError(`${matches.length} ${words.plural} start with ${ref}: ${matches.map((item) => item.id).join(', ')}`, 'give more of the ID');
}
