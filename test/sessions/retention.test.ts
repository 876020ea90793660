// Recordings retention (sessions/retention.ts): the oldest go first, over the size or the age kept;
// never one being written, never anything but our own files; the daemon applies it when it starts and
// audits what it removed.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { AttachRecorder } from '../../src/sessions/recording.js';
import { pruneRecordings, recordingRoom } from '../../src/sessions/retention.js';
import { remux, tempHome } from '../support/cli.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 11, 5, 12, 0, 0);

/** A recording id started `agoMs` before NOW. */
function idAt(agoMs: number, suffix: string): string {
  return `${new Date(NOW - agoMs).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${suffix.padStart(12, '0')}`;
}

/** A file named as a recording, `bytes` long, last changed `changedAgoMs` before NOW. */
function plant(dir: string, id: string, bytes: number, changedAgoMs = 2 * DAY): string {
  const file = join(dir, `${id}.cast`);
  writeFileSync(file, 'x'.repeat(bytes));
  const t = (NOW - changedAgoMs) / 1000;
  utimesSync(file, t, t);
  return file;
}

const castsIn = (dir: string): string[] =>
  readdirSync(dir)
    .filter((n) => n.endsWith('.cast'))
    .sort();

describe('recordings retention', () => {
  const root = mkdtempSync(join(tmpdir(), 'remux-retention-'));
  let n = 0;
  const freshDir = (): string => {
    const dir = join(root, String(n++));
    mkdirSync(dir);
    return dir;
  };
  after(() => rmSync(root, { recursive: true, force: true }));

  test('over the total size kept, the oldest go first until the rest fit', () => {
    const dir = freshDir();
    const ids = [4, 3, 2, 1].map((h, i) => idAt(h * HOUR, `a${i}`));
    for (const id of ids) plant(dir, id, 1000);
    const pruned = pruneRecordings(dir, { maxTotalBytes: 2500, keepMs: null, quietMs: HOUR }, NOW);
    assert.deepEqual(pruned, { ids: ids.slice(0, 2), bytes: 2000, reason: 'over the total size kept' });
    assert.deepEqual(castsIn(dir), ids.slice(2).map((id) => `${id}.cast`));
    // Within the limits: nothing to do.
    assert.equal(pruneRecordings(dir, { maxTotalBytes: 2500, keepMs: null, quietMs: HOUR }, NOW), null);
  });

  test('older than the days kept: removed, however little room they take', () => {
    const dir = freshDir();
    const old = idAt(40 * DAY, 'b1');
    const recent = idAt(2 * DAY, 'b2');
    plant(dir, old, 10);
    plant(dir, recent, 10);
    const pruned = pruneRecordings(dir, { maxTotalBytes: null, keepMs: 30 * DAY, quietMs: HOUR }, NOW);
    assert.deepEqual(pruned, { ids: [old], bytes: 10, reason: 'older than the days kept' });
    assert.deepEqual(castsIn(dir), [`${recent}.cast`]);
  });

  test('never one that may still be written: this process is writing it, or it changed within the quiet time', () => {
    const dir = freshDir();
    const writing = idAt(5 * HOUR, 'c1');
    const recorder = new AttachRecorder(dir, { host: 'h', user: 'u', session: 's', principal: 'p', readOnly: false, actionId: null }, { cols: 80, rows: 24 }, undefined, writing);
    recorder.output(Buffer.from('y'.repeat(5000)));
    const quietSince = (NOW - 2 * DAY) / 1000;
    utimesSync(recorder.path, quietSince, quietSince); // only its being written keeps it
    const busy = idAt(4 * HOUR, 'c2');
    plant(dir, busy, 5000, 10 * 60_000); // changed 10 minutes ago: a CLI attach may still write it
    const idle = idAt(3 * HOUR, 'c3');
    plant(dir, idle, 5000);
    const limits = { maxTotalBytes: 1, keepMs: HOUR, quietMs: HOUR };
    assert.deepEqual(pruneRecordings(dir, limits, NOW)?.ids, [idle]);
    assert.deepEqual(castsIn(dir), [`${writing}.cast`, `${busy}.cast`]);
    recorder.end();
    // Ended, it is a recording like any other.
    assert.deepEqual(pruneRecordings(dir, limits, NOW)?.ids, [writing]);
    assert.deepEqual(castsIn(dir), [`${busy}.cast`]);
  });

  test("a recording starting now gets the room the others leave, counting what this process's running recordings may still write", () => {
    const dir = freshDir();
    const meta = { host: 'h', user: 'u', session: 's', principal: 'p', readOnly: false, actionId: null };
    const MB = 2 ** 20;
    const first = new AttachRecorder(dir, meta, { cols: 80, rows: 24 }, recordingRoom(dir, 1));
    // It holds the whole MB: a second attach started at once gets nothing (before: another MB).
    assert.equal(recordingRoom(dir, 1), 0);
    first.output(Buffer.from('y'.repeat(100_000)));
    assert.equal(recordingRoom(dir, 1), 0, 'what it wrote is on disk, the rest still held');
    first.end();
    // Ended, only what it wrote counts.
    assert.equal(recordingRoom(dir, 1), MB - first.bytesWritten);
    const second = new AttachRecorder(dir, meta, { cols: 80, rows: 24 }, 300_000);
    assert.equal(recordingRoom(dir, 1), MB - first.bytesWritten - 300_000);
    second.end();
    assert.equal(recordingRoom(dir, 1), MB - first.bytesWritten - second.bytesWritten);
  });

  test('links and files that are not recordings are left alone', () => {
    const dir = freshDir();
    const outside = join(root, 'precious.txt');
    writeFileSync(outside, 'keep me');
    const link = join(dir, `${idAt(9 * DAY, 'd1')}.cast`);
    symlinkSync(outside, link);
    writeFileSync(join(dir, 'notes.cast'), 'not ours');
    writeFileSync(join(dir, `${idAt(9 * DAY, 'd2')}.cast.bak`), 'not ours');
    assert.equal(pruneRecordings(dir, { maxTotalBytes: 1, keepMs: DAY, quietMs: 0 }, NOW), null);
    assert.equal(readFileSync(outside, 'utf8'), 'keep me');
    assert.ok(existsSync(link));
    assert.equal(readdirSync(dir).length, 3);
  });
});

describe('the daemon keeps recordings within sessions.recordings_max_total_mb', () => {
  const h = tempHome();
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  test('applied as it starts: the oldest removed, and one audit action names them', async () => {
    const dir = join(h.home, 'recordings');
    mkdirSync(dir);
    // Started hours and days ago (by their ids) and unchanged for two days: no attach writes them.
    const ago = Date.now() - NOW;
    const ids = [3 * DAY, 2 * DAY, HOUR].map((t, i) => idAt(t - ago, `e${i}`));
    for (const id of ids) plant(dir, id, 600 << 10, 2 * DAY - ago);
    writeFileSync(join(h.home, 'config.yaml'), 'sessions:\n  recordings_max_total_mb: 1\n');
    writeFileSync(join(h.home, 'policies.yaml'), 'policies:\n  read_only:\n    capabilities: []\n');
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
    let audit: Array<{ principal: string; operation: string; resource: string; reason: string; status: string }> = [];
    for (let i = 0; i < 100 && !audit.some((a) => a.operation === 'recordings.prune'); i++) {
      await new Promise((r) => setTimeout(r, 50));
      const out = (await remux(['audit', 'ls', '--json'], { env: h.env })).stdout.trim();
      audit = out ? out.split('\n').map((line) => JSON.parse(line)) : [];
    }
    const pruned = audit.find((a) => a.operation === 'recordings.prune');
    assert.deepEqual([pruned?.principal, pruned?.resource, pruned?.status], ['daemon', ids.slice(0, 2).join(' '), 'complete']);
    assert.match(pruned?.reason ?? '', /^2 recordings, 1\.2 MB: over the total size kept$/);
    assert.deepEqual(castsIn(dir), [`${ids[2]}.cast`]);
  });
});
