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
