// `remux mcp config CLIENT`: the exact snippets, tokens taken (never invented) from REMUX_TOKEN or
// --token-file, and a stdio snippet that really starts a working server when a client runs it.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { REMUX_BIN, remux, tempHome } from '../support/cli.js';
import { addPrincipal, writeHome } from './support.js';

describe('remux mcp config', () => {
  const h = tempHome();
  let token = '';

  before(async () => {
    writeHome(h.home);
    token = await addPrincipal(h.env, 'ci', '--hosts', 'localhost');
  });
  after(() => h.remove());

  test('claude-code, stdio: the `claude mcp add` line, with REMUX_HOME carried along', async () => {
    const r = await remux(['mcp', 'config', 'claude-code'], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    // The name first: Claude Code's -e takes every word up to the next option (a name after it is refused as a variable).
    assert.equal(r.stdout, `claude mcp add remux -e REMUX_HOME=${h.home} -- ${REMUX_BIN} mcp --stdio\n`);
    const ci = await remux(['mcp', 'config', 'claude-code', '--principal', 'ci'], { env: { ...h.env, REMUX_TOKEN: token } });
    assert.equal(ci.stdout, `claude mcp add remux -e REMUX_HOME=${h.home} -e REMUX_TOKEN=${token} -- ${REMUX_BIN} mcp --stdio --principal ci\n`);
    assert.equal(r.stderr, '');
  });

  test('claude-desktop, stdio as a principal: the JSON starts a server that answers as that principal', async () => {
    writeFileSync(join(h.home, 'ci.token'), `${token}\n`);
    const r = await remux(['mcp', 'config', 'claude-desktop', '--principal', 'ci', '--token-file', join(h.home, 'ci.token')], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    const config = JSON.parse(r.stdout) as { mcpServers: { remux: { command: string; args: string[]; env: Record<string, string> } } };
    const server = config.mcpServers.remux;
    assert.deepEqual(server, { command: REMUX_BIN, args: ['mcp', '--stdio', '--principal', 'ci'], env: { REMUX_HOME: h.home, REMUX_TOKEN: token } });
    // Run it as Claude Desktop would.
    const client = new Client({ name: 'desktop', version: '1' });
    await client.connect(new StdioClientTransport({ command: server.command, args: server.args, env: server.env }));
    try {
      const hosts = await client.callTool({ name: 'list_hosts', arguments: {} });
      assert.deepEqual((hosts.structuredContent as { hosts: Array<{ name: string }> }).hosts.map((x) => x.name), ['localhost']);
    } finally {
      await client.close();
    }
  });

  test('--http: URL and Authorization header from REMUX_TOKEN; a placeholder and how to make a token when there is none', async () => {
    const url = 'https://gw.example.com:7777/mcp';
    const cc = await remux(['mcp', 'config', 'claude-code', '--http', '--url', url], { env: { ...h.env, REMUX_TOKEN: token } });
    assert.equal(cc.code, 0, cc.stderr);
    assert.equal(cc.stdout, `claude mcp add --transport http remux ${url} --header 'Authorization: Bearer ${token}'\n`);
    const cursor = await remux(['mcp', 'config', 'cursor', '--http', '--url', url, '--json'], { env: h.env });
    assert.equal(cursor.code, 0, cursor.stderr);
    const out = JSON.parse(cursor.stdout) as { client: string; transport: string; snippet: string; notes: string[] };
    assert.equal(out.transport, 'http');
    assert.deepEqual(JSON.parse(out.snippet), { mcpServers: { remux: { url, headers: { Authorization: 'Bearer <TOKEN>' } } } });
    assert.match(out.notes.join('\n'), /placeholder: make a token with `remux principal add NAME/);
    const desktop = await remux(['mcp', 'config', 'claude-desktop', '--http', '--url', url], { env: { ...h.env, REMUX_TOKEN: token } });
    const bridge = (JSON.parse(desktop.stdout) as { mcpServers: { remux: { command: string; args: string[]; env: Record<string, string> } } }).mcpServers.remux;
    assert.deepEqual(bridge, { command: 'npx', args: ['-y', 'mcp-remote', url, '--header', 'Authorization:${REMUX_AUTH}'], env: { REMUX_AUTH: `Bearer ${token}` } });
    const local = await remux(['mcp', 'config', 'cursor', '--http'], { env: { ...h.env, REMUX_TOKEN: token } });
    assert.match(local.stdout, /"url": "https:\/\/127\.0\.0\.1:7777\/mcp"/, 'no daemon: config.yaml\'s http.listen');
  });

  test("--http to this daemon with its self-signed certificate: the mcp-remote bridge gets it in its environment; other clients are told to", async () => {
    const cert = join(h.home, 'tls', 'cert.pem');
    mkdirSync(join(h.home, 'tls'), { recursive: true });
    writeFileSync(cert, '-----BEGIN CERTIFICATE-----\n');
    try {
      const desktop = await remux(['mcp', 'config', 'claude-desktop', '--http', '--json'], { env: { ...h.env, REMUX_TOKEN: token } });
      const out = JSON.parse(desktop.stdout) as { snippet: string; notes: string[] };
      assert.deepEqual((JSON.parse(out.snippet) as { mcpServers: { remux: { env: Record<string, string> } } }).mcpServers.remux.env, { REMUX_AUTH: `Bearer ${token}`, NODE_EXTRA_CA_CERTS: cert });
      assert.doesNotMatch(out.notes.join('\n'), /NODE_EXTRA_CA_CERTS/);
      const cursor = await remux(['mcp', 'config', 'cursor', '--http', '--json'], { env: { ...h.env, REMUX_TOKEN: token } });
      assert.match((JSON.parse(cursor.stdout) as { notes: string[] }).notes.join('\n'), new RegExp(`start the client with NODE_EXTRA_CA_CERTS=${cert}`));
    } finally {
      rmSync(join(h.home, 'tls'), { recursive: true, force: true });
    }
  });

  test('bad input: an unknown client, a token file that is not one token, --url without --http, a plain-HTTP remote URL', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['mcp', 'config', 'vscode'], /unknown MCP client "vscode": say one of claude-code, claude-desktop, cursor/],
      [['mcp', 'config', 'cursor', '--http', '--token-file', join(h.home, 'missing')], /--token-file .*missing: no such file/],
      [['mcp', 'config', 'cursor', '--http', '--token-file', join(h.home, 'policies.yaml')], /expected one token .* found more than one word/],
      [['mcp', 'config', 'cursor', '--url', 'https://x/mcp'], /--url goes with --http/],
      [['mcp', 'config', 'cursor', '--http', '--url', 'http://gw.example.com/mcp'], /must not cross the network in clear/],
    ];
    for (const [args, message] of cases) {
      const r = await remux(args, { env: h.env });
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '', 'nothing half-written');
    }
  });

  test('--help shows examples', async () => {
    const r = await remux(['mcp', 'config', '--help'], { env: h.env });
    assert.match(r.stdout, /Examples:\n {2}remux mcp config claude-code\n/);
  });
});
