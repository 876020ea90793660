// The local host's file operations on their own (hosts/local-files.ts), on real files: what they refuse
// whatever the policy said (FIFOs, directories, links met on the way), listings cut at their cap, and
// the resolution that the policy check is made against.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createLocalHost } from '../../src/hosts/local.js';
import type { HostFiles } from '../../src/hosts/types.js';

function setup(t: TestContext): { dir: string; files: HostFiles } {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'remux-localfiles-')));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, files: createLocalHost('localhost', '/usr/bin:/bin', undefined).files! };
}

test('a FIFO is refused at once (no hang waiting for a writer); a directory is not read', async (t) => {
  const { dir, files } = setup(t);
  execFileSync('mkfifo', [join(dir, 'pipe')]);
  const started = Date.now();
  await assert.rejects(files.read(join(dir, 'pipe'), { offset: 0, length: 10 }), { name: 'FileError', message: /not a regular file/ });
  assert.ok(Date.now() - started < 2000);
  await assert.rejects(files.write(join(dir, 'pipe'), Buffer.from('x'), { createDirs: false }), { name: 'FileError', message: /not a regular file/ });
  mkdirSync(join(dir, 'd'));
  await assert.rejects(files.read(join(dir, 'd'), { offset: 0, length: 10 }), { name: 'FileError', message: /not a regular file/ });
  await assert.rejects(files.list(join(dir, 'pipe'), 10), { name: 'FileError', message: /not a directory/ });
});

test('resolve: links followed (dangling ones to their target), `..` after them, the final link reported, errors per path', async (t) => {
  const { dir, files } = setup(t);
  mkdirSync(join(dir, 'real/inner'), { recursive: true });
  symlinkSync(join(dir, 'real/inner'), join(dir, 'in'));
  symlinkSync(join(dir, 'nowhere/x'), join(dir, 'dangling'));
  symlinkSync(join(dir, 'loop'), join(dir, 'loop'));
  const answers = await files.resolve([`${dir}/in/..`, join(dir, 'dangling'), join(dir, 'in/new/file'), join(dir, 'loop/x')]);
  assert.deepEqual(answers.slice(0, 3), [
    { real: join(dir, 'real'), finalLink: false },
    { real: join(dir, 'nowhere/x'), finalLink: true },
    { real: join(dir, 'real/inner/new/file'), finalLink: false },
  ]);
  assert.match((answers[3] as { error: string }).error, /too many symlinks/);
});

test('a listing is sorted, lstat-ed (links shown as links) and cut at its cap', async (t) => {
  const { dir, files } = setup(t);
  for (const n of ['c', 'a', 'b']) writeFileSync(join(dir, n), n);
  symlinkSync('/etc/passwd', join(dir, 'l'));
  const all = await files.list(dir, 10);
  assert.deepEqual(all.entries.map((e) => `${e.name}:${e.type}`), ['a:file', 'b:file', 'c:file', 'l:symlink']);
  assert.equal(all.truncated, false);
  const cut = await files.list(dir, 2);
  assert.deepEqual([cut.entries.map((e) => e.name), cut.truncated], [['a', 'b'], true]);
});
