// Listing recordings (sessions/recording.ts listRecordings): a recording unchanged since the last listing is
// not read again, and one that changed, was replaced or removed is listed as it is now.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AttachRecorder, listRecordings } from '../../src/sessions/recording.js';

const dir = mkdtempSync(join(tmpdir(), 'remux-reclist-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const meta = { host: 'box', user: 'me', session: 's', principal: 'p', readOnly: false, actionId: null };

test('a listing follows what changed since the last one: a recording written on, replaced by a link, removed', () => {
  const a = new AttachRecorder(dir, { ...meta, session: 'a' }, { cols: 80, rows: 24 });
  a.output(Buffer.from('one\r\n'));
  const b = new AttachRecorder(dir, { ...meta, session: 'b' }, { cols: 80, rows: 24 });
  b.output(Buffer.from('two\r\n'));
  b.end();
  const first = new Map(listRecordings(dir).map((r) => [r.session, r]));
  assert.deepEqual([...first.keys()].sort(), ['a', 'b']);

  // Still being written: the next listing shows its new size and duration.
  appendFileSync(a.path, `${JSON.stringify([12.5, 'o', 'later'])}\n`);
  const grown = listRecordings(dir).find((r) => r.session === 'a')!;
  assert.ok(grown.bytes > first.get('a')!.bytes, 'its new size');
  assert.equal(grown.duration, 12.5, 'its new last event');

  // Replaced by a link (to a recording of another session): not listed, as describeRecording would not.
  const moved = join(dir, 'elsewhere');
  renameSync(b.path, moved);
  symlinkSync(moved, b.path);
  assert.deepEqual(listRecordings(dir).map((r) => r.session), ['a']);

  // Removed: gone from the next listing.
  unlinkSync(a.path);
  assert.deepEqual(listRecordings(dir), []);
  a.end();
});
