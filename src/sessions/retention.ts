// Recordings retention: the daemon removes the oldest recordings once they are older than
// sessions.recordings_keep_days, or while all of them together take more than
// sessions.recordings_max_total_mb, so recordings never fill the disk the audit store writes to (a
// full disk would refuse every action). So does a CLI attach before it starts recording, so that
// without a daemon recordings still get room. A recording that may still be written is never removed:
// this process's own are known (isRecording), and one another process writes (a CLI attach) is left
// alone until it has been unchanged for longer than an attach may last. Each removal is audited by
// the process that made it; the audit records that named a removed recording stay.
import fs from 'node:fs';
import type { AuditStore } from '../audit/store.js';
import type { Config } from '../config/config.js';
import { isRecording, RECORDING_MAX_BYTES, recordingIds, recordingPath, roomHeld } from './recording.js';

export interface RetentionLimits {
  /** All recordings together may take this many bytes; null: no limit. */
  maxTotalBytes: number | null;
  /** Recordings started longer ago than this are removed; null: kept until the size limit needs room. */
  keepMs: number | null;
  /** A recording changed more recently than this may still be written by another process: kept. */
  quietMs: number;
}

export interface Pruned {
  /** The recordings removed, oldest first. */
  ids: string[];
  bytes: number;
  /** Which limit made room: for the audit record. */
  reason: string;
}

interface Entry {
  id: string;
  file: string;
  started: number;
  bytes: number;
  changed: number;
}

/** The start time an id carries (20261205T154501Z-…), in ms. */
function startedOf(id: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(id)!;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** Recordings in `dir` as files (links and anything else named like one are not ours), oldest first. */
function entries(dir: string): Entry[] {
  const found: Entry[] = [];
  for (const id of recordingIds(dir)) {
    const file = recordingPath(dir, id);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(file);
    } catch {
      continue; // removed meanwhile
    }
    if (!st.isFile()) continue;
    found.push({ id, file, started: startedOf(id), bytes: st.size, changed: st.mtimeMs });
  }
  return found.sort((a, b) => a.id.localeCompare(b.id));
}

/** How many recordings `dir` holds and their size together. */
export function recordingsUsage(dir: string): { count: number; bytes: number } {
  const all = entries(dir);
  return { count: all.length, bytes: all.reduce((sum, e) => sum + e.bytes, 0) };
}

/**
 * The bytes a recording starting now may write: what sessions.recordings_max_total_mb (null: no limit)
 * leaves once the recordings there and the room this process's running recordings still hold are
 * counted (roomHeld), at most RECORDING_MAX_BYTES. Retention runs every 10 minutes and keeps whatever
 * changed within an attach's lifetime, so without this, attach after attach (256 MiB each) could fill the
 * disk the audit store writes to. Recordings of other processes (CLI attaches) started at the same time
 * may each take the same room: they overshoot the total by at most one RECORDING_MAX_BYTES each.
 */
export function recordingRoom(dir: string, maxTotalMb: number | null): number {
  if (maxTotalMb === null) return RECORDING_MAX_BYTES;
  return Math.max(0, Math.min(RECORDING_MAX_BYTES, maxTotalMb * 2 ** 20 - recordingsUsage(dir).bytes - roomHeld()));
}

/** Removes what the limits no longer keep; what was removed, and why (null when nothing was). */
export function pruneRecordings(dir: string, limits: RetentionLimits, now = Date.now()): Pruned | null {
  const all = entries(dir);
  let total = all.reduce((sum, e) => sum + e.bytes, 0);
  const removed: Entry[] = [];
  const why = new Set<string>();
  for (const e of all) {
    const expired = limits.keepMs !== null && now - e.started > limits.keepMs;
    const over = limits.maxTotalBytes !== null && total > limits.maxTotalBytes;
    if (!expired && !over) continue;
    if (isRecording(e.id) || now - e.changed < limits.quietMs) continue;
    try {
      fs.unlinkSync(e.file);
    } catch {
      continue; // gone already, or not ours to remove: it stays counted
    }
    total -= e.bytes;
    removed.push(e);
    why.add(expired ? 'older than the days kept' : 'over the total size kept');
  }
  if (removed.length === 0) return null;
  return { ids: removed.map((e) => e.id), bytes: removed.reduce((sum, e) => sum + e.bytes, 0), reason: [...why].join('; ') };
}

/** sessions.* as limits: a recording unchanged for longer than an attach may last is no CLI attach's any more. */
export function retentionLimits(sessions: Config['sessions']): RetentionLimits {
  const { recordings_max_total_mb: maxMb, recordings_keep_days: keepDays, attach_lifetime_seconds: lifetime } = sessions;
  return { maxTotalBytes: maxMb === null ? null : maxMb * 2 ** 20, keepMs: keepDays === null ? null : keepDays * 86_400_000, quietMs: lifetime * 1000 + 60_000 };
}

/**
 * Applies the limits once; a removal is one audit action of `principal`'s (`recordings.prune`, the ids
 * removed, the limit that made room). Returns the line to log, or null when nothing was removed.
 */
export async function pruneAudited(dir: string, limits: RetentionLimits, audit: AuditStore, principal: string): Promise<string | null> {
  const pruned = pruneRecordings(dir, limits);
  if (!pruned) return null;
  const mb = (pruned.bytes / 2 ** 20).toFixed(1);
  await audit.record(
    { principal, host: 'localhost', operation: 'recordings.prune', resource: pruned.ids.join(' '), decision: 'allow', reason: `${pruned.ids.length} recordings, ${mb} MB: ${pruned.reason}` },
    { exitCode: 0, durationMs: 0 },
  );
  return `recordings: removed ${pruned.ids.length} (${mb} MB): ${pruned.reason}`;
}

/** How often the daemon applies the limits (and once when it starts). */
export const RETENTION_INTERVAL_MS = 10 * 60_000;

/** The daemon's retention: the limits applied now and every RETENTION_INTERVAL_MS (pruneAudited, as `daemon`). */
export function keepRecordingsWithin(dir: string, limits: RetentionLimits, audit: AuditStore, log: (line: string) => void, intervalMs = RETENTION_INTERVAL_MS): { stop(): void } {
  const run = (): void =>
    void pruneAudited(dir, limits, audit, 'daemon').then(
      (line) => line && log(line),
      (err: unknown) => log(`recordings: retention failed: ${err instanceof Error ? err.message : String(err)}`),
    );
  run();
  const timer = setInterval(run, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
