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
  constructor(message: string) {
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
