// What every SQLite store of remux's needs on opening that better-sqlite3 does not do by itself.
import type Database from 'better-sqlite3';

/**
 * Puts `db` in WAL mode, waiting up to `timeoutMs` for other connections. On a new database the pragma
 * reads the header, then writes it: when another connection is writing meanwhile (another process
 * opening the same new store, 10 `remux principal add` in a fresh home), SQLite refuses the upgrade at
 * once ("database is locked") rather than call its busy handler, which could deadlock a read
 * transaction. Tried again until the other is done.
 */
export function useWal(db: Database.Database, timeoutMs: number): string {
  for (const deadline = Date.now() + timeoutMs; ; ) {
    try {
      return String(db.pragma('journal_mode = WAL', { simple: true }));
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw err;
      // Synchronous, as SQLite's own busy handler sleeps: the store opens synchronously.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}
