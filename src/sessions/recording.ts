// Recordings as asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a JSON header line, then
// one JSON array per event: [seconds, "o", text] for output, [seconds, "r", "COLSxROWS"] for a resize,
// [seconds, "m", label] for a marker. An attach's (the browser terminal) or a whole session's
// (session-recorder.ts). Keystrokes are not recorded (they carry passwords); what they echo is. Files
// live in $REMUX_HOME/recordings, 0600, named by start time and a random suffix (never by host or
// session names); the header's `remux` field says whose attach or session it was.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';

/** Past this size a recording stops (with a marker); the attach goes on. */
export const RECORDING_MAX_BYTES = 256 << 20;

export interface RecordingMeta {
  host: string;
  user: string;
  session: string;
  principal: string;
  readOnly: boolean;
  /** The audit action that wrote it (the attach, or the session's `session.record`). */
  actionId: number | null;
  /** What was recorded: one attach (the default, and what older recordings are), or a whole session. */
  kind?: 'attach' | 'session';
}

export interface RecordingInfo extends RecordingMeta {
  id: string;
  /** Start, ISO 8601. */
  started: string;
  width: number;
  height: number;
  bytes: number;
  /** Seconds from the start to the last event. */
  duration: number;
}

const ID = /^\d{8}T\d{6}Z-[0-9a-f]{12}$/;
/** A recording's file name; the id is its first group. */
const RECORDING_FILE = /^(\d{8}T\d{6}Z-[0-9a-f]{12})\.cast$/;

/** The recordings this process is writing, by id: retention never removes them. */
const writing = new Map<string, AttachRecorder>();

export function isRecording(id: string): boolean {
  return writing.has(id);
}

/**
 * The bytes this process's recordings may still write together, each up to the room it was given: what a
 * recording starting now must leave them (recordingRoom), so that attaches started at once do not each
 * take the same room.
 */
export function roomHeld(): number {
  let held = 0;
  for (const r of writing.values()) held += r.roomLeft;
  return held;
}

export function isRecordingId(id: string): boolean {
  return ID.test(id);
}

export function recordingPath(dir: string, id: string): string {
  if (!isRecordingId(id)) throw new RangeError(`not a recording id: ${JSON.stringify(id)}`);
  return path.join(dir, `${id}.cast`);
}

/** A fresh recording id: start time and a random suffix, never host or session names. */
export function newRecordingId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(6).toString('hex')}`;
}

export class AttachRecorder {
  readonly id: string;
  readonly path: string;
  private readonly fd: number;
  private readonly started = performance.now();
  private readonly decoder = new StringDecoder('utf8');
  private bytes = 0;
  private over = false;

  constructor(
    dir: string,
    meta: RecordingMeta,
    size: { cols: number; rows: number },
    private readonly maxBytes = RECORDING_MAX_BYTES,
    /** Chosen beforehand when the attach's audit record must name it. */
    id = newRecordingId(),
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const now = new Date();
    this.id = id;
    this.path = recordingPath(dir, this.id);
    // wx: a new file only, never through a link someone planted.
    this.fd = fs.openSync(this.path, 'wx', 0o600);
    writing.set(this.id, this);
    const header = { version: 2, width: size.cols, height: size.rows, timestamp: Math.floor(now.getTime() / 1000), title: `${meta.user}@${meta.host}:${meta.session}`, env: { TERM: 'xterm-256color' }, remux: meta };
    this.append(JSON.stringify(header));
  }

  output(chunk: Buffer): void {
    const text = this.decoder.write(chunk);
    if (text !== '') this.event('o', text);
  }

  resize(cols: number, rows: number): void {
    this.event('r', `${cols}x${rows}`);
  }

  end(): void {
    if (this.over) return;
    const rest = this.decoder.end();
    if (rest !== '') this.event('o', rest);
    this.over = true;
    fs.closeSync(this.fd);
    writing.delete(this.id);
  }

  /** Ended, or stopped at its size limit. */
  get stopped(): boolean {
    return this.over;
  }

  get bytesWritten(): number {
    return this.bytes;
  }

  /** What it may still write before its size limit stops it. */
  get roomLeft(): number {
    return this.over ? 0 : Math.max(0, this.maxBytes - this.bytes);
  }

  private event(kind: 'o' | 'r' | 'm', data: string): void {
    if (this.over) return;
    const line = JSON.stringify([Number(((performance.now() - this.started) / 1000).toFixed(6)), kind, data]);
    if (this.bytes + line.length > this.maxBytes) {
      this.append(JSON.stringify([Number(((performance.now() - this.started) / 1000).toFixed(6)), 'm', 'recording stopped: size limit reached']));
      this.end();
      return;
    }
    this.append(line);
  }

  private append(line: string): void {
    const buf = Buffer.from(`${line}\n`);
    fs.writeSync(this.fd, buf);
    this.bytes += buf.length;
  }
}

/** The ids of the files in `dir` named as recordings (none when it cannot be read). */
export function recordingIds(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((name) => RECORDING_FILE.exec(name)?.[1] ?? []);
}

/** The recordings in `dir`, newest first; unreadable or foreign files are left out. */
export function listRecordings(dir: string): RecordingInfo[] {
  return pageOfRecordings(dir).recordings;
}

export interface RecordingsPage {
  recordings: RecordingInfo[];
  /** The `before` of the next page (the id of this one's last recording), or null when none older that `visible` lets through is left. */
  next: string | null;
  /** The files looked at: the page's, those `visible` left out among them, and past a full page those down to the next one it lets through. */
  examined: number;
}

/**
 * The recordings in `dir`, newest first, from the newest older than `before` (an id) on, until `limit` of
 * them are ones `visible` lets through; unreadable or foreign files are left out. An id begins with its
 * start time, so the names alone put them in order: past a full page, files are read only down to the
 * first one `visible` lets through, which says there is a next page (and is cached for it).
 */
export function pageOfRecordings(dir: string, { limit = Infinity, before, visible = () => true }: { limit?: number; before?: string; visible?: (r: RecordingInfo) => boolean } = {}): RecordingsPage {
  // Code-unit order, the order `before` compares in: ids are all digits, T, Z, - and lower-case hex.
  const ids = recordingIds(dir).sort().reverse();
  const known = describedIn(dir, ids);
  const shown = (id: string): RecordingInfo | null => {
    const info = describeKnown(dir, id, known);
    return info && visible(info) ? info : null;
  };
  const recordings: RecordingInfo[] = [];
  let i = before === undefined ? 0 : ids.findIndex((id) => id < before);
  if (i === -1) i = ids.length;
  const first = i;
  for (; i < ids.length && recordings.length < limit; i++) {
    const info = shown(ids[i]!);
    if (info) recordings.push(info);
  }
  // A next page only when it would show something: files older than this page may all be left out.
  let ahead = i;
  while (ahead < ids.length && !shown(ids[ahead]!)) ahead++;
  const more = ahead < ids.length;
  return { recordings, next: more ? ids[i - 1]! : null, examined: (more ? ahead + 1 : ahead) - first };
}

/** What was last read of each recording, by directory, with the file's size, time and inode then. */
interface Described {
  size: number;
  mtimeMs: number;
  ino: number;
  info: RecordingInfo | null;
}
const described = new Map<string, Map<string, Described>>();

/** What was read in `dir` before, less the recordings no longer there (`ids`: those that are). */
function describedIn(dir: string, ids: string[]): Map<string, Described> {
  const known = described.get(dir) ?? new Map<string, Described>();
  described.set(dir, known);
  const present = new Set(ids);
  for (const id of known.keys()) if (!present.has(id)) known.delete(id);
  return known;
}

/**
 * A recording as describeRecording reads it, unless unchanged since it was last read (the daemon lists on
 * every console request: 72 KiB read per recording each time, on its event loop).
 */
function describeKnown(dir: string, id: string, known: Map<string, Described>): RecordingInfo | null {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(recordingPath(dir, id));
  } catch {
    known.delete(id);
    return null;
  }
  const cached = known.get(id);
  if (cached && cached.size === st.size && cached.mtimeMs === st.mtimeMs && cached.ino === st.ino) return cached.info;
  const info = st.isFile() ? describeRecording(dir, id) : null;
  known.set(id, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, info });
  return info;
}

/** One recording's header and extent; null when it is not one of ours. */
export function describeRecording(dir: string, id: string): RecordingInfo | null {
  const file = recordingPath(dir, id);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    const { size } = fs.fstatSync(fd);
    const head = Buffer.alloc(Math.min(size, 8192));
    fs.readSync(fd, head, 0, head.length, 0);
    const tail = Buffer.alloc(Math.min(size, 65536));
    fs.readSync(fd, tail, 0, tail.length, size - tail.length);
    const header = JSON.parse(head.toString('utf8').split('\n')[0] ?? '') as { width?: number; height?: number; timestamp?: number; remux?: RecordingMeta };
    if (!header.remux || typeof header.timestamp !== 'number') return null;
    const last = tail.toString('utf8').trimEnd().split('\n').at(-1) ?? '';
    let duration = 0;
    try {
      const event = JSON.parse(last) as unknown;
      if (Array.isArray(event) && typeof event[0] === 'number') duration = event[0];
    } catch {
      // A recording cut short (the daemon was killed): its duration is unknown.
    }
    return { id, kind: 'attach', ...header.remux, started: new Date(header.timestamp * 1000).toISOString(), width: header.width ?? 0, height: header.height ?? 0, bytes: size, duration };
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}
