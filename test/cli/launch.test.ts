// The launcher's code cache (src/cli/launch.cts): written once per command, used, and never trusted blindly.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { remux } from '../support/cli.js';

describe('code cache', () => {
  const cacheHome = mkdtempSync(join(tmpdir(), 'remux-cache-'));
  const env = { XDG_CACHE_HOME: cacheHome };
  const dir = join(cacheHome, 'remux');
  after(() => rmSync(cacheHome, { recursive: true, force: true }));

  const files = (): string[] => readdirSync(dir).sort();

  test('the first run of a command writes its cache; later runs keep it', async () => {
    const version = (await remux(['--version'], { env })).stdout;
    assert.match(version, /^\d+\.\d+\.\d+/);
    assert.equal((await remux(['policy', '--help'], { env })).code, 0);
    assert.deepEqual(files().map((f) => f.replace(/^[0-9a-f]{32}-/, '')), ['other.v8cache', 'policy.v8cache']);
    const policyCache = join(dir, files()[1] as string);
    const written = statSync(policyCache).mtimeMs;
    assert.equal((await remux(['policy', '--help'], { env })).code, 0);
    assert.equal(statSync(policyCache).mtimeMs, written, 'an accepted cache is not rewritten');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
  });

  test('a damaged cache is rejected, the command still runs, and the cache is rewritten', async () => {
    const file = join(dir, files().find((f) => f.endsWith('-other.v8cache')) as string);
    writeFileSync(file, 'not a code cache');
    const r = await remux(['--version'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\d+\.\d+\.\d+/);
    assert.notEqual(readFileSync(file, 'latin1'), 'not a code cache');
  });

  test("another build's cache of the same command is removed when a new one is written", async () => {
    const stale = join(dir, `${'0'.repeat(32)}-client.v8cache`);
    writeFileSync(stale, 'from an older build');
    assert.equal((await remux(['client', '--help'], { env })).code, 0);
    assert.deepEqual(files().filter((f) => f.endsWith('-client.v8cache')).length, 1);
    assert.ok(!files().includes(`${'0'.repeat(32)}-client.v8cache`));
  });

  test('a cache that someone else could have written is not used, and is replaced', async () => {
    const file = join(dir, files().find((f) => f.endsWith('-other.v8cache')) as string);
    assert.equal((await remux(['--version'], { env })).code, 0);
    const accepted = statSync(file).ino;
    assert.equal((await remux(['--version'], { env })).code, 0);
    assert.equal(statSync(file).ino, accepted, 'an accepted cache is kept');

    chmodSync(dir, 0o777);
    assert.equal((await remux(['--version'], { env })).code, 0);
    assert.notEqual(statSync(file).ino, accepted, 'a cache in a world-writable directory was used');
    chmodSync(dir, 0o700);

    if (process.getuid?.() === 0) {
      const before = statSync(file).ino;
      chownSync(file, 65534, 65534);
      assert.equal((await remux(['--version'], { env })).code, 0);
      assert.notEqual(statSync(file).ino, before, "another user's cache file was used");
      assert.equal(statSync(file).uid, 0);
    }
  });
});
