// What `remux rpc` says on one host, as a user reads it: writeText's outcome as the other edits say theirs
// (created / changed / unchanged, then the diff).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { remux, tempHome } from '../support/cli.js';

describe('remux rpc output', { timeout: 120_000 }, () => {
  const h = tempHome();
  before(() => {
    writeFileSync(join(h.home, 'policies.yaml'), `policies:
  rt:
    sandbox: false
    capabilities:
      - { operation: read_file, resource: "${h.home}/**" }
      - { operation: write_file, resource: "${h.home}/w/**" }
`);
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: rt\n');
  });
  after(() => h.remove());

  test('writeText says created, changed or unchanged as lineInFile and Template.file do, with its --diff as a diff (not JSON)', async () => {
    const path = join(h.home, 'w', 'motd');
    const write = (content: string, ...args: string[]) => remux(['rpc', 'localhost', 'FileSystem.writeText', path, ...args], { env: h.env, input: content });
    const created = await remux(['rpc', 'localhost', 'FileSystem.ensureDirectory', join(h.home, 'w')], { env: h.env });
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual(await write('hello\n').then((r) => [r.code, r.stdout]), [0, 'created\n']);
    assert.deepEqual(await write('hello\n', '--mode', '0644').then((r) => [r.code, r.stdout]), [0, 'unchanged\n']);
    const diff = await write('bye\n', '--diff');
    assert.deepEqual([diff.code, diff.stdout], [0, `changed\n--- ${path}\n+++ ${path}\n@@ -1 +1 @@\n-hello\n+bye\n`]);
    // --json keeps the value as it is.
    const json = await write('bye\n', '--json');
    assert.deepEqual(JSON.parse(json.stdout), { host: 'localhost', ok: true, value: { changed: false, created: false } });
  });

});
