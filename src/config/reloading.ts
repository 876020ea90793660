// A file-backed value that is re-read when the file changes (mtime or size), so a long-running
// daemon picks up edits to policies.yaml or hosts.yaml without a restart. A bad edit keeps
// throwing (with file:line) until it is fixed; the last good value is never used silently (only while
// a file written in place is still being written, for at most SETTLE_MS: see ReloadingFile.get).
import { statSync, type Stats } from 'node:fs';

/** How long a change must stay as it is before it counts (see watchReloading), and how long a write in place may take. */
export const SETTLE_MS = 100;

export class ReloadingFile<T> {
  private stamp: string | null = null;
  private value: T | undefined;
  /** Where the value was read: a file replaced by rename has a new inode, one written in place the same. */
  private ino: number | null = null;
  private mtimeMs: number | null = null;

  constructor(
    readonly file: string,
    private readonly load: (file: string) => T,
    /** Value when the file does not exist; undefined = let load() decide. */
    private readonly whenMissing?: () => T,
  ) {}

  get(): T {
    // Checked on every use: a missing file is an answer, not an exception (whose stack costs more than the stat).
    const st = statSync(this.file, { throwIfNoEntry: false });
    if (st === undefined) {
      // No default: load() says what is missing and what to do (e.g. `remux config init`).
      if (!this.whenMissing) return this.load(this.file);
      if (this.stamp !== 'missing' || this.value === undefined) this.keep('missing', null, null, this.whenMissing());
      return this.value as T;
    }
    const stamp = stampOf(st);
    if (stamp === this.stamp && this.value !== undefined) return this.value;
    // A file written in place (truncated, then written: `>` in a shell, writeFileSync, some editors) reads
    // empty or cut for a moment. Read then, it would say "no principals" (every request 401, counted toward
    // the address's lockout) or "no policy". While a write in place may be under way, the last value holds
    // and the stamp stays as it was, so the next use reads again. A rename brings a whole file: read at once.
    // A truncation sets the size and the mtime together, but stat can see the one before the other.
    const held = this.value !== undefined && st.ino === this.ino;
    const beingWritten = held && (st.mtimeMs === this.mtimeMs || inWriteWindow(st.mtimeMs));
    if (beingWritten && st.size === 0) return this.value as T;
    let value: T;
    try {
      value = this.load(this.file);
    } catch (err) {
      if (beingWritten) return this.value as T;
      throw err;
    }
    // Changed while it was read (a truncation between the stat and the read): not kept; the next use reads again.
    const after = statSync(this.file, { throwIfNoEntry: false });
    if (after === undefined || stampOf(after) !== stamp) return held ? (this.value as T) : value;
    this.keep(stamp, st.ino, st.mtimeMs, value);
    return value;
  }

  private keep(stamp: string, ino: number | null, mtimeMs: number | null, value: T): void {
    this.stamp = stamp;
    this.ino = ino;
    this.mtimeMs = mtimeMs;
    this.value = value;
  }
}

function stampOf(st: Stats): string {
  return `${st.mtimeMs}:${st.size}:${st.ino}`;
}

/** A change this recent may be a write still under way (see ReloadingFile.get). */
function inWriteWindow(mtimeMs: number): boolean {
  // Either side of now: Date.now() is whole milliseconds, an mtime is finer. A clock set back (an mtime
  // far in the future) must not hold a value for ever.
  return Math.abs(Date.now() - mtimeMs) < SETTLE_MS;
}

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
