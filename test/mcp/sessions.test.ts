// The session tools an AI client watches agents with: list_sessions, capture_session, send_keys on a real
// tmux server, through perform() (scope on the tmux user, audit) like `remux session`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { tempHome } from '../support/cli.js';
import { addPrincipal, call, stdioClient, writeHome } from './support.js';

describe('MCP session tools on a real tmux server', { timeout: 60_000 }, () => {
  const h = tempHome();
  const socket = join(h.home, 'tmux.sock');
  // HOME: the tmux server reads no ~/.tmux.conf of the machine's.
  const env = { ...h.env, HOME: h.home };
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
  let client: Client;
  let token = '';

  before(async () => {
    writeHome(h.home, { hosts: `hosts:\n  box:\n    transport: local\n    tmux_socket: ${socket}\n  idle:\n    transport: local\n    tmux_socket: ${socket}-none\n` });
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: ops\nsessions: { sweep_interval_seconds: 3600 }\n');
    tmux('new-session', '-d', '-s', 'agent', '-x', '80', '-y', '20');
    token = await addPrincipal(env, 'viewer', '--hosts', 'box', '--users', 'nobody');
    ({ client } = await stdioClient(env));
  });
  after(async () => {
    await client?.close();
    try {
      tmux('kill-server');
    } catch {
      // Already gone.
    }
    for (let i = 0; i < 100 && existsSync(socket); i++) await sleep(10);
    h.remove();
  });

  test('list_sessions shows the agent\'s session; send_keys types into it; capture_session reads it back', async () => {
    const listed = await call(client, 'list_sessions', { host: 'box' });
    assert.equal(listed.result.isError, undefined, listed.text);
    const hosts = (listed.result.structuredContent as { hosts: Array<{ host: string; users: Array<{ state: string; sessions: Array<{ name: string }> }> }> }).hosts;
    assert.deepEqual(hosts.map((x) => [x.host, x.users[0]?.state, x.users[0]?.sessions.map((s) => s.name)]), [['box', 'ok', ['agent']]]);
    const sent = await call(client, 'send_keys', { host: 'box', session: 'agent', keys: ['echo typed-by-mcp-$((40+2))', 'Enter'] });
    assert.equal(sent.result.isError, undefined, sent.text);
    let screen = '';
    for (let i = 0; i < 100; i++) {
      screen = ((await call(client, 'capture_session', { host: 'box', session: 'agent' })).result.structuredContent as { text: string }).text;
      if (/^typed-by-mcp-42$/m.test(screen)) break;
      await sleep(50);
    }
    assert.match(screen, /^typed-by-mcp-42$/m, 'the keys were typed and Enter ran the line');
    const literal = await call(client, 'send_keys', { host: 'box', session: 'agent', keys: ['Enter'], literal: true });
    assert.equal(literal.result.isError, undefined);
    const missing = await call(client, 'capture_session', { host: 'box', session: 'no-such-session' });
    assert.equal(missing.result.isError, true);
  });

  test('send_keys types a long text whole, multi-byte characters and a final ; included: tmux takes 16 KiB a command', async () => {
    const typed = join(h.home, 'typed.txt');
    // No line discipline in the way (a canonical line holds 4095 bytes): cat gets every byte typed.
    tmux('new-session', '-d', '-s', 'paste', `stty -icanon -echo; exec cat > ${typed}`);
    const text = `${'é😀x'.repeat(3000)}${'a'.repeat(16384 - 3 * 4000 - 1)};`;
    assert.equal(text.length, 16384);
    const sent = await call(client, 'send_keys', { host: 'box', session: 'paste', keys: [text] });
    assert.equal(sent.result.isError, undefined, sent.text);
    let got = '';
    for (let i = 0; i < 200 && got !== text; i++) {
      await sleep(50);
      got = existsSync(typed) ? readFileSync(typed, 'utf8') : '';
    }
    assert.equal(got.length, text.length);
    assert.ok(got === text, 'the text arrived as sent');
  });

  test('send_keys refuses at the schema what one send cannot carry, before typing anything', async () => {
    // The terminal echoes whatever is typed: the pane shows it.
    tmux('new-session', '-d', '-s', 'quiet', 'exec sleep 600');
    const before = tmux('capture-pane', '-p', '-t', '=quiet:');
    const cases: Array<[string[], RegExp]> = [
      [Array<string>(101).fill('x'), /keys.*(100|too_big)/is],
      [['x'.repeat(16385)], /keys.*(16384|too_big)/is],
      [['echo typed', 'x'.repeat(10000), 'y'.repeat(6384)], /at most 16384 characters in all items together/],
    ];
    for (const [keys, why] of cases) {
      const refused = await call(client, 'send_keys', { host: 'box', session: 'quiet', keys });
      assert.equal(refused.result.isError, true, refused.text);
      assert.match(refused.text, /Invalid arguments for tool send_keys/);
      assert.match(refused.text, why);
    }
    await sleep(200);
    assert.equal(tmux('capture-pane', '-p', '-t', '=quiet:'), before, 'nothing was typed');
  });

  test('capture_session past 64 KiB keeps the latest lines, after a line saying how many earlier ones were left out', async () => {
    const row = (n: number): string => `row ${String(n).padStart(5, '0')} ${'x'.repeat(100)}`;
    tmux('new-session', '-d', '-s', 'log', '-x', '200', '-y', '20', `seq -f 'row %05g ${'x'.repeat(100)}' 1 3000; exec sleep 600`);
    let text = '';
    let truncated = false;
    for (let i = 0; i < 100 && !text.includes(row(3000)); i++) {
      if (i > 0) await sleep(50);
      ({ text, truncated } = (await call(client, 'capture_session', { host: 'box', session: 'log', lines: 10000 })).result.structuredContent as { text: string; truncated: boolean });
    }
    assert.equal(truncated, true);
    assert.ok(Buffer.byteLength(text) <= 64 << 10, `${Buffer.byteLength(text)} bytes`);
    const [marker, first, ...rest] = text.split('\n');
    assert.match(marker!, /^\[remux: the first \d+ of \d+ lines left out: a capture returns its latest 65536 bytes; ask for fewer lines\]$/);
    assert.match(first!, /^row \d{5} x{100}$/, 'whole lines follow');
    assert.equal(rest.at(-2), row(3000), 'the latest line is there');
    const tools = await client.listTools();
    assert.match(tools.tools.find((t) => t.name === 'capture_session')!.description!, /At most 10000 lines and 64 KiB of text: past that the latest lines are kept/);
  });

  test('list_sessions says in words why a host has none: no tmux server running there', async () => {
    const listed = await call(client, 'list_sessions', { host: 'idle' });
    assert.equal(listed.result.isError, undefined, listed.text);
    assert.match(listed.text, /^idle \S+: no sessions, no tmux server running$/, listed.text);
  });

  test('a principal without the tmux user in its scope is refused, and nothing is typed', async () => {
    const viewer = await stdioClient({ ...env, REMUX_TOKEN: token }, ['--principal', 'viewer']);
    try {
      const before = tmux('capture-pane', '-p', '-t', '=agent:');
      const sent = await call(viewer.client, 'send_keys', { host: 'box', session: 'agent', keys: ['echo intruder', 'Enter'] });
      assert.equal(sent.result.isError, true);
      assert.match(sent.text, /^remux refused: .*out of scope for viewer/);
      const read = await call(viewer.client, 'capture_session', { host: 'box', session: 'agent' });
      assert.equal(read.result.isError, true);
      await sleep(200);
      assert.equal(tmux('capture-pane', '-p', '-t', '=agent:'), before);
    } finally {
      await viewer.client.close();
    }
  });
});
