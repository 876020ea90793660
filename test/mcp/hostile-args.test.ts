// Tool arguments a model (or whoever drives it) may send that no host can take as given: a NUL, or an
// unpaired UTF-16 surrogate, which Node would send as U+FFFD, a name other than the one the policy was
// checked on. Each is refused before anything runs or is typed, saying which argument and why.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { tempHome } from '../support/cli.js';
import { call, stdioClient, writeHome } from './support.js';

describe('MCP tool arguments no host can take as given are refused before anything runs', () => {
  const h = tempHome();
  let client: Client;
  let dir = '';

  before(async () => {
    writeHome(h.home);
    dir = mkdtempSync(join(tmpdir(), 'remux-mcp-hostile-'));
    ({ client } = await stdioClient(h.env, ['--no-daemon']));
  });
  after(async () => {
    await client?.close();
    rmSync(dir, { recursive: true, force: true });
    h.remove();
  });

  test('a working directory with a NUL or an unpaired surrogate: rejected, the command not run', async () => {
    for (const [cwd, why] of [[`${dir}/\0x`, 'the path contains a NUL byte'], [`${dir}/\ud800`, 'the path has an unpaired UTF-16 surrogate (\\ud800) at character']] as const) {
      const r = await call(client, 'run_command', { host: 'localhost', command: 'printf ran', cwd });
      assert.equal(r.result.isError, true, r.text);
      assert.equal(r.data.outcome, 'rejected');
      assert.equal(r.data.stdout, '');
      assert.ok(r.text.startsWith(`remux rejected: working directory ${JSON.stringify(cwd)}: ${why}`), r.text);
    }
  });

  test('a file path with an unpaired surrogate: rejected, no file named with U+FFFD in its place', async () => {
    const write = await call(client, 'write_file', { host: 'localhost', path: `${dir}/w\udc00.txt`, content: 'x' });
    assert.equal(write.result.isError, true, write.text);
    assert.match(write.text, /the path has an unpaired UTF-16 surrogate \(\\udc00\) at character/);
    assert.deepEqual(readdirSync(dir), []);
    for (const [name, args] of [['read_file', {}], ['list_directory', {}], ['edit_file', { edits: [{ old_text: 'a', new_text: 'b' }] }]] as const) {
      const r = await call(client, name, { host: 'localhost', path: `${dir}/\ud83d`, ...args });
      assert.equal(r.result.isError, true, `${name}: ${r.text}`);
      assert.match(r.text, /unpaired UTF-16 surrogate/, name);
    }
  });

  test('send_keys with a NUL or an unpaired surrogate in an item: refused before any item is typed', async () => {
    for (const [keys, why] of [[['ls', 'a\0b'], 'item 2 to send has NUL (at index 1)'], [['\ud800x'], 'item 1 to send has an unpaired surrogate (at index 0)']] as const) {
      const r = await call(client, 'send_keys', { host: 'localhost', session: 'none', keys });
      assert.equal(r.result.isError, true, r.text);
      assert.equal(r.text, `remux refused: ${why}, which no argument of tmux can carry; send valid text`);
    }
  });
});
