// Listing recordings (sessions/recording.ts listRecordings): a recording unchanged since the last listing is
// not read again, and one that changed, was replaced or removed is listed as it is now; a page of them
// reads only the files it needs, and names a next page only when that one has something to show.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AttachRecorder, listRecordings, pageOfRecordings } from '../../src/sessions/recording.js';
import { plantRecordings } from '../support/recordings.js';

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

test('a page of 100 of 5,000 recordings reads only the files down to its last and the next one shown; pages follow on by `before`', () => {
  const many = mkdtempSync(join(tmpdir(), 'remux-recpage-'));
  try {
    const ids = plantRecordings(many, 5000, (i) => ({ ...meta, session: `s${i}`, principal: i % 2 === 0 ? 'even' : 'odd' })).reverse();
    const first = pageOfRecordings(many, { limit: 100 });
    assert.deepEqual(first.recordings.map((r) => r.id), ids.slice(0, 100), 'the newest 100, newest first');
    assert.equal(first.examined, 101, 'no file older than the page was looked at but the one that says there is a next page');
    assert.equal(first.next, ids[99]);

    const second = pageOfRecordings(many, { limit: 100, before: first.next! });
    assert.deepEqual(second.recordings.map((r) => r.id), ids.slice(100, 200));
    assert.equal(second.examined, 101);
    // `before` need not be a recording that is still there: strictly older than it.
    const gone = `${ids[150]!.slice(0, -12)}ffffffffffff`;
    assert.deepEqual(pageOfRecordings(many, { limit: 2, before: gone }).recordings.map((r) => r.id), ids.slice(150, 152));

    // What `visible` leaves out does not count towards the page: 100 of one principal's, from 199 files.
    const odd = pageOfRecordings(many, { limit: 100, visible: (r) => r.principal === 'odd' });
    assert.equal(odd.recordings.length, 100);
    assert.ok(odd.recordings.every((r) => r.principal === 'odd'));
    assert.equal(odd.examined, 201, "199 files for the page, then an even one's and the next odd one's");
    assert.equal(odd.next, odd.recordings.at(-1)!.id);

    // A full page with nothing shown after it: no next (a link to an empty page), though older files are left.
    const newest = new Set(ids.slice(0, 150));
    const two = pageOfRecordings(many, { limit: 75, visible: (r) => newest.has(r.id) });
    assert.equal(two.next, ids[74], 'a second page is there');
    const last75 = pageOfRecordings(many, { limit: 75, before: two.next!, visible: (r) => newest.has(r.id) });
    assert.deepEqual(last75.recordings.map((r) => r.id), ids.slice(75, 150));
    assert.equal(last75.next, null, 'the 4,850 older ones are all left out');
    assert.equal(last75.examined, 4925);

    // The last page: nothing older left, no next.
    const last = pageOfRecordings(many, { limit: 100, before: ids[4950]! });
    assert.deepEqual(last.recordings.map((r) => r.id), ids.slice(4951));
    assert.equal(last.next, null);
    assert.equal(listRecordings(many).length, 5000, 'without a limit, all of them');
  } finally {
    rmSync(many, { recursive: true, force: true });
  }
});
