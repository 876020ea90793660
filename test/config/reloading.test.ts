import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReloadingFile, SETTLE_MS, watchReloading } from '../../src/config/reloading.js';

/** What `read` returns call by call (the last one from then on), as a file read at each poll would. */
function scripted(...values: string[]): () => string {
  return () => (values.length > 1 ? (values.shift() as string) : (values[0] as string));
}

/** Watches `read` (polls every 5 ms, settles for 20), collects what read() gives when onChange runs, and stops after `ms`. */
async function changesSeen(read: () => string, ms = 300): Promise<string[]> {
  const seen: string[] = [];
  const watch = watchReloading(read, 5, () => seen.push(read()), 20);
  await sleep(ms);
  watch.stop();
  return seen;
}

describe('watchReloading', () => {
  test('a change is acted on once it has stayed', async () => {
    assert.deepEqual(await changesSeen(scripted('A', 'A', 'B')), ['B']);
  });

  test('what a file read mid-write gives (an empty file, then the new one) is never acted on: the new one is', async () => {
    // The first poll sees the file truncated; by the settle check it holds the new content.
    assert.deepEqual(await changesSeen(scripted('A', 'A', 'EMPTY', 'B')), ['B']);
  });

  test('a change undone before it settled is not acted on at all', async () => {
    assert.deepEqual(await changesSeen(scripted('A', 'A', 'EMPTY', 'A')), []);
  });

  test('an error is a change too (a bad edit is acted on, once it stays)', async () => {
    let calls = 0;
    const read = (): string => {
      calls++;
      if (calls > 2) throw new Error('principals.yaml:3: bad indentation');
      return 'A';
    };
    const seen: number[] = [];
    const watch = watchReloading(read, 5, () => seen.push(calls), 20);
    await sleep(300);
    watch.stop();
    assert.equal(seen.length, 1);
  });
});

describe('ReloadingFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'remux-reloading-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;

  /**
   * A file holding `first` (last written at `mtime` when given), read through a ReloadingFile whose load
   * refuses the text "bad" as a config error would, and runs `afterRead` (once) after reading the file.
   */
  function reloading(first: string, opts: { mtime?: Date; afterRead?: (file: string) => void } = {}): { file: string; source: ReloadingFile<string> } {
    const file = join(dir, `f${n++}.yaml`);
    writeFileSync(file, first);
    if (opts.mtime) utimesSync(file, opts.mtime, opts.mtime);
    let afterRead = opts.afterRead;
    const source = new ReloadingFile(file, (f) => {
      const text = readFileSync(f, 'utf8');
      if (text === 'bad') throw new Error(`${f}:1: bad value`);
      if (text !== first && afterRead) {
        afterRead(f);
        afterRead = undefined;
      }
      return text;
    });
    assert.equal(source.get(), first);
    return { file, source };
  }

  /** Dates the file's last write `ms` from now (negative: in the past), as if that write had happened then. */
  function writtenAgo(file: string, ms: number): void {
    const when = new Date(Date.now() - ms);
    utimesSync(file, when, when);
  }

  test('a file written in place keeps its last value while it reads empty, and gives the new one once written', () => {
    const { file, source } = reloading('A');
    writeFileSync(file, ''); // truncated: the moment between `>` and the write
    assert.equal(source.get(), 'A');
    writeFileSync(file, 'BB');
    assert.equal(source.get(), 'BB');
  });

  test('an empty file is what the file says once the write is over', () => {
    const { file, source } = reloading('A');
    writeFileSync(file, '');
    assert.equal(source.get(), 'A');
    writtenAgo(file, SETTLE_MS * 2);
    assert.equal(source.get(), '');
  });

  test('a bad read during a write in place holds the last value; once the write is over, the error is thrown', () => {
    const { file, source } = reloading('A');
    writeFileSync(file, 'bad');
    assert.equal(source.get(), 'A');
    writtenAgo(file, SETTLE_MS * 2);
    assert.throws(() => source.get(), /:1: bad value/);
    assert.throws(() => source.get(), /:1: bad value/, 'a bad file keeps failing until fixed');
  });

  test('a file replaced by rename is read at once, even empty or bad: it was written whole', () => {
    const { file, source } = reloading('A');
    writeFileSync(`${file}.new`, '');
    renameSync(`${file}.new`, file);
    assert.equal(source.get(), '');
    writeFileSync(`${file}.new`, 'bad');
    renameSync(`${file}.new`, file);
    assert.throws(() => source.get(), /bad value/);
  });

  test('an empty file still showing the last mtime (stat saw the truncation half done) holds the last value', () => {
    const before = new Date('2026-01-01T00:00:00Z');
    const { file, source } = reloading('A', { mtime: before });
    writeFileSync(file, '');
    utimesSync(file, before, before);
    assert.equal(source.get(), 'A');
  });

  test('a file that changed while it was read is not kept: the next read takes it', () => {
    // The second version is read whole, then truncated in place before the read is checked: its text may
    // be cut, so the last value holds; once written again, the file is what it says.
    const { file, source } = reloading('A', { afterRead: (f) => writeFileSync(f, '') });
    writeFileSync(file, 'BB');
    assert.equal(source.get(), 'A');
    writeFileSync(file, 'CCC');
    assert.equal(source.get(), 'CCC');
  });

  test('an mtime in the future (a clock set back) holds nothing', () => {
    const { file, source } = reloading('A');
    writeFileSync(file, '');
    writtenAgo(file, -60_000);
    assert.equal(source.get(), '');
  });
});
