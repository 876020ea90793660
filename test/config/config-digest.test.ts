// configDigest: what `remux daemon status` compares to tell that config.yaml changed since the daemon
// read it. A change of a setting counts; what changes no setting does not.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { configDigest, loadConfigFile } from '../../src/config/config.js';

const TEXT = 'exec:\n  timeout_seconds: 300   # seconds\n  pipefail: false\nfanout: { concurrency: 32 }\n';

test('comments, layout, quoting and key order are no change', () => {
  const same = [
    `# a comment\n${TEXT}`,
    'fanout:\n  concurrency: 32\nexec: { pipefail: false, timeout_seconds: 300 }\n',
    'exec:\n    timeout_seconds: 300\n    pipefail: false\nfanout:\n    concurrency: 32\n',
  ];
  for (const text of same) assert.equal(configDigest(text), configDigest(TEXT), text);
});

test('a setting changed, added or removed is a change; so is the order of a list', () => {
  const changed = [
    TEXT.replace('300', '600'),
    `${TEXT}default_policy: developer\n`,
    TEXT.replace('  pipefail: false\n', ''),
    // As written, before expansion: the reader's environment is not the file's content.
    TEXT.replace('300', '"${TIMEOUT:-300}"'),
  ];
  for (const text of changed) assert.notEqual(configDigest(text), configDigest(TEXT), text);
  assert.notEqual(configDigest('agents: { extra_domains: [a.com, b.com] }'), configDigest('agents: { extra_domains: [b.com, a.com] }'));
});

test('loadConfigFile gives the digest of the text it read; none for a missing file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'remux-digest-'));
  try {
    const file = join(dir, 'config.yaml');
    assert.equal(loadConfigFile(file).digest, null);
    writeFileSync(file, TEXT);
    assert.equal(loadConfigFile(file).digest, configDigest(TEXT));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
