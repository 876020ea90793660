// readPrivate: how a daemon reads what the one before it left (browser sessions, agent prompts). Only a
// regular file of this user's that nobody else may read or write, never through a link, bounded in size;
// anything else is refused saying what it is, and what a link points to is left as it is.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readPrivate, writeAtomic } from '../../src/config/atomic-file.js';

const dir = mkdtempSync(join(tmpdir(), 'remux-read-private-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a file written by writeAtomic reads back', () => {
  const file = join(dir, 'left.json');
  writeAtomic(file, '{"a":1}\n');
  assert.equal(readPrivate(file, 1024), '{"a":1}\n');
});

test('a symbolic link is not followed (ELOOP), even to a private file of ours; its target is left as it was', () => {
  const target = join(dir, 'target.json');
  writeAtomic(target, 'secret\n');
  const link = join(dir, 'link.json');
  symlinkSync(target, link);
  assert.throws(() => readPrivate(link, 1024), (err: NodeJS.ErrnoException) => err.code === 'ELOOP');
  assert.equal(readFileSync(target, 'utf8'), 'secret\n');
});

test('a file others may read or write is refused, naming its mode', () => {
  const file = join(dir, 'open.json');
  writeFileSync(file, '{}');
  chmodSync(file, 0o644);
  assert.throws(() => readPrivate(file, 1024), /may be read or written by others \(mode 644\)/);
  chmodSync(file, 0o620);
  assert.throws(() => readPrivate(file, 1024), /mode 620/);
});

test('a file larger than the bound is refused before it is read', () => {
  const file = join(dir, 'big.json');
  writeAtomic(file, 'x'.repeat(2048));
  assert.throws(() => readPrivate(file, 1024), /is larger than 1024 bytes/);
});

test('a FIFO in its place is refused at once, not waited on for a writer', () => {
  const fifo = join(dir, 'fifo.json');
  execFileSync('mkfifo', ['-m', '600', fifo]);
  assert.throws(() => readPrivate(fifo, 1024), /is not a regular file/);
});

test("another user's file is refused", { skip: process.getuid?.() !== 0 && 'needs root to give a file away' }, () => {
  const file = join(dir, 'theirs.json');
  writeAtomic(file, '{}');
  execFileSync('chown', ['65534', file]);
  assert.throws(() => readPrivate(file, 1024), /belongs to uid 65534, not this daemon's user/);
});
