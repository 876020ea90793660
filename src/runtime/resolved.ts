// Recent answers of one runtime connection to "where does this path really lead", for file methods only.
// Reusing one for a moment is safe there, unlike for commands (hosts/remote-resolver.ts caches no
// paths): a file method acts on the resolved path the policy checked, and the host opens it walking each
// component without following a symlink (remote/tools/filesystem.py). A path re-pointed since is
// then either still the checked file or fails (ELOOP); never something unchecked. It saves a round
// trip per call on a warm connection.
import type { Answer } from '../core/perform-file.js';

/** Paths remembered at most; beyond that the oldest half goes (paths come from callers: bounded memory). */
const MAX_PATHS = 4096;

export class ResolvedPaths {
  private readonly entries = new Map<string, { answer: Answer; until: number }>();

  constructor(
    readonly ttlMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Answers `paths` from memory where it can, asking `resolve` (the host) for the rest in one go. */
  async resolve(paths: readonly string[], ask: (paths: string[]) => Promise<Answer[]>): Promise<Answer[]> {
    const now = this.now();
    const known = paths.map((p) => {
      const hit = this.entries.get(p);
      return hit !== undefined && hit.until > now ? hit.answer : undefined;
    });
    const missing = paths.filter((_, i) => known[i] === undefined);
    if (missing.length === 0) return known as Answer[];
    const answers = await ask(missing);
    if (this.entries.size + missing.length > MAX_PATHS) [...this.entries.keys()].slice(0, this.entries.size / 2).forEach((k) => this.entries.delete(k));
    // Errors (no such file yet) are not kept: the next call asks again.
    missing.forEach((p, i) => {
      const a = answers[i];
      if (a !== undefined && !('error' in a)) this.entries.set(p, { answer: a, until: this.now() + this.ttlMs });
    });
    let next = 0;
    return known.map((k) => k ?? (answers[next++] as Answer));
  }
}
