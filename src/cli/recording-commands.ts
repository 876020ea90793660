// `remux session recordings` and `remux session play`: the asciicast recordings in $REMUX_HOME/recordings
// (attaches, whole sessions), listed and played back in this terminal as `asciinema play` would.
// Local files of the user who runs the CLI, who sees them all; with REMUX_TOKEN, its principal sees what
// the console would show it (recordingOutOfScope, the API's own filter).
import { constants, createReadStream, openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../config/config.js';
import { recordingsDir } from '../config/paths.js';
import { findByIdPrefix, ScopeError, UsageError } from '../core/errors.js';
import { recordingOutOfScope } from '../core/scope.js';
import { hostsFile, loadInventory } from '../hosts/inventory.js';
import { inventoryEntry } from '../hosts/registry.js';
import { parseCastEvent } from '../sessions/cast-event.js';
import { describeRecording, isRecordingId, pageOfRecordings, recordingIds, recordingPath, type RecordingInfo } from '../sessions/recording.js';
import { tokenReader } from './context.js';
import { limitOption, printJson, printTable, utcCell } from './output.js';

export interface ListOptions {
  json?: boolean;
  limit?: string;
  before?: string;
}

/** What is recorded, by sessions.record: said where there is nothing to list. */
const WHAT_IS_RECORDED = {
  attaches: 'sessions.record: attaches: each attach, browser or CLI, is recorded',
  sessions: 'sessions.record: sessions: each session remux creates is recorded whole',
  none: 'sessions.record: none: nothing is recorded',
} as const;

/**
 * Why the CLI's principal may not see a recording (null: it may): REMUX_TOKEN's principal, as every command
 * line acts for it, sees what GET /api/recordings shows it; a token of no one is refused (exit 77). Null
 * without REMUX_TOKEN: the local user, whose files these are, sees them all.
 */
function refusalFor(): { name: string; refusal: (r: RecordingInfo) => string | null } | null {
  const who = tokenReader();
  if (who === null) return null;
  const { principal, principals } = who;
  // Read only for a token: without one, a hosts.yaml in the making changes nothing here.
  const inventory = loadInventory(hostsFile());
  return { name: principal.name, refusal: (r) => recordingOutOfScope(principal, r, principals, (name) => inventoryEntry(inventory, name)) };
}

export function listRecordingsCommand(opts: ListOptions): void {
  // As `remux audit ls --limit`: 0 is all.
  const limit = limitOption(opts.limit, 0);
  if (opts.before !== undefined && !isRecordingId(opts.before)) {
    throw new UsageError(`--before ${opts.before}: not a recording id; give the id of the last one listed before (like 20261205T021044Z-3f2a9c0d11be)`);
  }
  const viewer = refusalFor();
  const { recordings: all, next } = pageOfRecordings(recordingsDir(), {
    limit: limit === 0 ? Infinity : limit,
    before: opts.before,
    ...(viewer === null ? {} : { visible: (r: RecordingInfo) => viewer.refusal(r) === null }),
  });
  if (opts.json) return printJson(all);
  const { record, recordings_max_total_mb: maxMb, recordings_keep_days: keepDays } = loadConfig().config.sessions;
  if (all.length === 0) {
    process.stdout.write(`no recordings${opts.before === undefined ? '' : ` older than ${opts.before}`} in ${recordingsDir()} (${WHAT_IS_RECORDED[record]})\n`);
    return;
  }
  printTable(
    ['ID', 'STARTED (UTC)', 'KIND', 'HOST', 'USER', 'SESSION', 'PRINCIPAL', 'LENGTH', 'SIZE'],
    all.map((r) => [r.id, utcCell(r.started), r.kind ?? 'attach', r.host, r.user, r.session, r.principal, clock(r.duration), size(r.bytes)]),
  );
  const kept = [maxMb === null ? null : `${maxMb} MB in all`, keepDays === null ? null : `${keepDays} days`].filter((x) => x !== null);
  process.stdout.write(
    `${all.length} recordings, ${size(all.reduce((sum, r) => sum + r.bytes, 0))}${next === null ? '' : ` (older ones: --before ${next})`}; ` +
      (kept.length > 0 ? `the daemon removes the oldest beyond ${kept.join(' or ')} (sessions.recordings_max_total_mb, recordings_keep_days)\n` : 'kept without limit\n'),
  );
}

export interface PlayOptions {
  speed?: string;
  idleLimit?: string;
}

/**
 * What a recording can leave a terminal in when it stops before its end (cut short, or played only up to
 * Ctrl-C): tmux's attributes, hidden cursor, application keys, mouse, focus and paste modes, scroll region
 * (the cursor kept where it is) and alternate screen. Written after every play in a terminal, as the
 * attach itself puts them back when it detaches.
 */
const TERMINAL_RESET = '\x1b[0m\x1b[?25h\x1b[?1l\x1b>\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1005l\x1b[?1006l\x1b[?1004l\x1b[?2004l\x1b7\x1b[r\x1b8\x1b[?1049l';

/**
 * Writes the recording's output with its timing (sped up by --speed, pauses cut to --idle-limit), or at
 * once when stdout is not a terminal (as `asciinema cat`). Resizes and markers are not replayed. In a
 * terminal, Ctrl-C stops it (exit 130) and the terminal's modes are put back however it ends.
 */
export async function playCommand(ref: string, opts: PlayOptions): Promise<void> {
  const speed = positive('--speed', opts.speed ?? '1');
  const idleLimit = positive('--idle-limit', opts.idleLimit ?? '2');
  const info = findRecording(ref);
  // O_NOFOLLOW, as the console serves them: a link planted in place of a recording is not followed.
  // Read as it plays: a recording may be hundreds of MiB.
  const fd = openSync(recordingPath(recordingsDir(), info.id), constants.O_RDONLY | constants.O_NOFOLLOW);
  const input = createReadStream('', { fd });
  const lines = createInterface({ input, crlfDelay: Infinity });
  const live = process.stdout.isTTY === true;
  if (live && (process.stdout.columns < info.width || process.stdout.rows < info.height)) {
    process.stderr.write(`remux: recorded at ${info.width}x${info.height}; this terminal is ${process.stdout.columns}x${process.stdout.rows}, so lines may wrap\n`);
  }
  const stop = new AbortController();
  const keys = live ? readKeysWhilePlaying(() => stop.abort()) : null;
  let clockAt = 0;
  let header = true;
  try {
    for await (const line of lines) {
      if (header) {
        header = false;
        continue;
      }
      const event = parseCastEvent(line);
      if (event === null || event[1] !== 'o') continue;
      if (live) {
        const pause = Math.min(event[0] - clockAt, idleLimit) / speed;
        if (pause > 0) await sleep(pause * 1000, undefined, { signal: stop.signal }).catch(() => undefined);
      }
      if (stop.signal.aborted) break;
      clockAt = event[0];
      if (!process.stdout.write(event[2])) await new Promise((resolve) => process.stdout.once('drain', resolve));
    }
  } finally {
    lines.close();
    input.destroy();
    if (live) process.stdout.write(TERMINAL_RESET);
    keys?.();
  }
  if (stop.signal.aborted) process.exitCode = 130;
}

/**
 * Ctrl-C while a recording plays calls `interrupt`. With this terminal's keys read in raw mode, where
 * everything else is dropped: with them the terminal's own answers to the queries a recording holds
 * (tmux asks for the device attributes when it attaches), which would otherwise be typed into the shell
 * after it. Returns the undo.
 */
function readKeysWhilePlaying(interrupt: () => void): () => void {
  const stdin = process.stdin;
  // stdin elsewhere (a file, a pipe): Ctrl-C comes as the signal.
  process.on('SIGINT', interrupt);
  const onData = (data: Buffer): void => {
    if (data.includes(3)) interrupt();
  };
  if (stdin.isTTY) {
    stdin.setRawMode(true);
    stdin.on('data', onData);
  }
  return () => {
    process.off('SIGINT', interrupt);
    if (!stdin.isTTY) return;
    stdin.off('data', onData);
    stdin.setRawMode(false);
    stdin.pause();
  };
}

/**
 * A recording by its id or a unique prefix of it (ids begin with their start time: 20261205T…), among
 * those the CLI's principal may see. One it may not see, named alone, is refused with why (exit 77), as
 * the API's 403 says; a prefix is never ambiguous through recordings it may not see.
 */
function findRecording(ref: string): RecordingInfo {
  const dir = recordingsDir();
  const viewer = refusalFor();
  // By name first: only the recordings `ref` can name are read (a listing reads every one).
  const named = recordingIds(dir).flatMap((id) => (id.startsWith(ref) ? (describeRecording(dir, id) ?? []) : []));
  const visible = viewer === null ? named : named.filter((r) => viewer.refusal(r) === null);
  const refused = viewer !== null && visible.length === 0 && named.length === 1 ? viewer.refusal(named[0]!) : null;
  if (viewer !== null && refused !== null) throw new ScopeError(`out of scope for ${viewer.name}: recording ${named[0]!.id} ${refused}`);
  return findByIdPrefix(visible, ref, { missing: `no recording ${ref} in ${recordingsDir()}`, hint: 'see them with remux session recordings', plural: 'recordings' });
}

function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} ${text}: expected a number above 0`);
  return n;
}

/** 1:05:09, 5:09 */
function clock(seconds: number): string {
  const s = Math.round(seconds);
  const [h, m, sec] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

function size(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1 << 20 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}
