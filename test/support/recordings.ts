// Many recordings at once, written by the recorder the terminal uses (AttachRecorder), their ids a second
// apart so that their order is known: for the listing's paging.
import { AttachRecorder, newRecordingId, type RecordingMeta } from '../../src/sessions/recording.js';

/** `count` recordings in `dir`, the i-th started i seconds after `from` (as its id says) with `meta(i)`; their ids, oldest first. */
export function plantRecordings(dir: string, count: number, meta: (i: number) => RecordingMeta, from = Date.UTC(2026, 0, 1)): string[] {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = new AttachRecorder(dir, meta(i), { cols: 80, rows: 24 }, undefined, newRecordingId(new Date(from + i * 1000)));
    r.output(Buffer.from(`recording ${i}\r\n`));
    r.end();
    ids.push(r.id);
  }
  return ids;
}
