// A file-backed value that is re-read when the file changes (mtime or size), so a long-running
// daemon picks up edits to policies.yaml or hosts.yaml without a restart. A bad edit keeps
// throwing (with file:line) until it is fixed; the last good value is never used silently.
import { statSync } from 'node:fs';

export class ReloadingFile<T> {
  private stamp: string | null = null;
  private value: T | undefined;

  constructor(
    readonly file: string,
    private readonly load: (file: string) => T,
    /** Value when the file does not exist; undefined = let load() decide. */
    private readonly whenMissing?: () => T,
  ) {}

  get(): T {
    // Checked on every use: a missing file is an answer, not an exception (whose stack costs more than the stat).
    const st = statSync(this.file, { throwIfNoEntry: false });
    // No default: load() says what is missing and what to do (e.g. `remux config init`).
    if (st === undefined && !this.whenMissing) return this.load(this.file);
    const stamp = st === undefined ? 'missing' : `${st.mtimeMs}:${st.size}:${st.ino}`;
    if (stamp !== this.stamp || this.value === undefined) {
      this.value = stamp === 'missing' && this.whenMissing ? this.whenMissing() : this.load(this.file);
      this.stamp = stamp;
    }
    return this.value;
  }
}

/** How long a change must stay as it is before it counts (see watchReloading). */
export const SETTLE_MS = 100;

/**
 * Calls onChange whenever what `read` gives changes: a new value (ReloadingFile.get() returns the same
 * object until its file changes) or a new error. Polled, so that a daemon reacts to a change within
 * intervalMs whatever the editor's save strategy (rename, truncate, link). A change counts once it has
 * stayed for settleMs: a file written in place (truncated, then written, as `writeFileSync` and some
 * editors do) reads empty or cut for a moment, and acting on that (no principals: the console stops)
 * would be wrong.
 */
export function watchReloading(read: () => unknown, intervalMs: number, onChange: () => void, settleMs = SETTLE_MS): { stop(): void } {
  const current = (): unknown => {
    try {
      return read();
    } catch (err) {
      return (err as Error).message;
    }
  };
  let last = current();
  let settling: NodeJS.Timeout | null = null;
  const timer = setInterval(() => {
    if (settling) return;
    const seen = current();
    if (seen === last) return;
    settling = setTimeout(() => {
      settling = null;
      // Changed again meanwhile: the next poll sees it and waits for that one to settle.
      if (current() !== seen) return;
      last = seen;
      onChange();
    }, settleMs);
    settling.unref();
  }, intervalMs);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      if (settling) clearTimeout(settling);
    },
  };
}
