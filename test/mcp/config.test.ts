// `remux mcp config CLIENT`: the exact snippets, tokens taken (never invented) from REMUX_TOKEN or
// --token-file, and a stdio snippet that really starts a working server when a client runs it.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { parse as parseToml } from 'smol-toml';
import { REMUX_BIN, remux, tempHome } from '../support/cli.js';
import { addPrincipal, writeHome } from './support.js';

/** JSON as the snippets print it, to compare outputs exactly. */
const printed = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;
/** TOML as Codex reads it, in plain objects (smol-toml's have no prototype, which strict deepEqual tells apart). */
const toml = (text: string): unknown => JSON.parse(JSON.stringify(parseToml(text)));

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

  test('codex: `codex mcp add` for stdio; over --http the config.toml block, the token left in REMUX_TOKEN for Codex to read', async () => {
    const r = await remux(['mcp', 'config', 'codex'], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `codex mcp add remux --env REMUX_HOME=${h.home} -- ${REMUX_BIN} mcp --stdio\n`);
    const ci = await remux(['mcp', 'config', 'codex', '--principal', 'ci'], { env: { ...h.env, REMUX_TOKEN: token } });
    assert.equal(ci.stdout, `codex mcp add remux --env REMUX_HOME=${h.home} --env REMUX_TOKEN=${token} -- ${REMUX_BIN} mcp --stdio --principal ci\n`);
    const url = 'https://gw.example.com:7777/mcp';
    const http = await remux(['mcp', 'config', 'codex', '--http', '--url', url], { env: { ...h.env, REMUX_TOKEN: token } });
    assert.equal(http.code, 0, http.stderr);
    assert.equal(http.stdout, `[mcp_servers.remux]\nurl = "${url}"\nbearer_token_env_var = "REMUX_TOKEN"\n`);
    assert.deepEqual(toml(http.stdout), { mcp_servers: { remux: { url, bearer_token_env_var: 'REMUX_TOKEN' } } });
    assert.equal(http.stderr, 'note: Codex sends the token it finds in REMUX_TOKEN in its own environment, so config.toml never holds it: start Codex with REMUX_TOKEN set\n');
    // No token at hand: nothing in the block to replace, only how to make one.
    const none = await remux(['mcp', 'config', 'codex', '--http', '--url', url, '--name', 'gw.prod', '--json'], { env: h.env });
    const out = JSON.parse(none.stdout) as { snippet: string; notes: string[] };
    assert.deepEqual(toml(out.snippet), { mcp_servers: { 'gw.prod': { url, bearer_token_env_var: 'REMUX_TOKEN' } } });
    assert.deepEqual(out.notes, ['Codex sends the token it finds in REMUX_TOKEN in its own environment, so config.toml never holds it: start Codex with REMUX_TOKEN set; make a token with `remux principal add NAME --hosts SELECTOR` (or --admin)']);
  });

  test('gemini: `gemini mcp add` in the user scope, for stdio and for --http with the Authorization header', async () => {
    const r = await remux(['mcp', 'config', 'gemini'], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `gemini mcp add --scope user -e REMUX_HOME=${h.home} remux ${REMUX_BIN} mcp --stdio\n`);
    assert.match(r.stderr, /^note: Gemini CLI starts user-level MCP servers only in folders it trusts: .*shows remux as Disabled\n$/);
    const ci = await remux(['mcp', 'config', 'gemini', '--principal', 'ci'], { env: { ...h.env, REMUX_TOKEN: token } });
    assert.equal(ci.stdout, `gemini mcp add --scope user -e REMUX_HOME=${h.home} -e REMUX_TOKEN=${token} remux ${REMUX_BIN} mcp --stdio --principal ci\n`);
    const url = 'https://gw.example.com:7777/mcp';
    const http = await remux(['mcp', 'config', 'gemini', '--http', '--url', url], { env: { ...h.env, REMUX_TOKEN: token } });
    assert.equal(http.code, 0, http.stderr);
    assert.equal(http.stdout, `gemini mcp add --scope user --transport http remux ${url} --header 'Authorization: Bearer ${token}'\n`);
    assert.match(http.stderr, /^note: Gemini CLI starts user-level MCP servers only in folders it trusts/);
  });

  test('vscode: .vscode/mcp.json servers; the token an input VS Code asks for, never in the file, and the stdio entry runs as the principal', async () => {
    const r = await remux(['mcp', 'config', 'vscode'], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, printed({ servers: { remux: { type: 'stdio', command: REMUX_BIN, args: ['mcp', '--stdio'], env: { REMUX_HOME: h.home } } } }));
    const input = { type: 'promptString', id: 'remux-token', description: 'Token for remux (what `remux principal add` printed)', password: true };
    const ci = await remux(['mcp', 'config', 'vscode', '--principal', 'ci', '--json'], { env: { ...h.env, REMUX_TOKEN: token } });
    assert.equal(ci.code, 0, ci.stderr);
    const out = JSON.parse(ci.stdout) as { snippet: string; notes: string[] };
    const server = { type: 'stdio', command: REMUX_BIN, args: ['mcp', '--stdio', '--principal', 'ci'], env: { REMUX_HOME: h.home, REMUX_TOKEN: '${input:remux-token}' } };
    assert.equal(out.snippet, printed({ inputs: [input], servers: { remux: server } }).trimEnd());
    assert.doesNotMatch(ci.stdout, new RegExp(token));
    assert.deepEqual(out.notes, ['VS Code asks for the token (input "remux-token") the first time it starts the server and stores it, so mcp.json never holds it']);
    // No token at hand for a principal that exists: its own token is what to give (rotate prints a new one), not a new principal.
    const noToken = JSON.parse((await remux(['mcp', 'config', 'vscode', '--principal', 'ci', '--json'], { env: h.env })).stdout) as { notes: string[] };
    assert.match(noToken.notes.join('\n'), /stores it, so mcp\.json never holds it: use ci's token \(`remux principal rotate ci` prints a new one\)$/);
    // Started as VS Code does, the input replaced by what the user typed.
    const client = new Client({ name: 'vscode', version: '1' });
    await client.connect(new StdioClientTransport({ command: server.command, args: server.args, env: { ...server.env, REMUX_TOKEN: token } }));
    try {
      const hosts = await client.callTool({ name: 'list_hosts', arguments: {} });
      assert.deepEqual((hosts.structuredContent as { hosts: Array<{ name: string }> }).hosts.map((x) => x.name), ['localhost']);
    } finally {
      await client.close();
    }
    const url = 'https://gw.example.com:7777/mcp';
    const http = await remux(['mcp', 'config', 'vscode', '--http', '--url', url], { env: { ...h.env, REMUX_TOKEN: token } });
    assert.equal(http.code, 0, http.stderr);
    assert.equal(http.stdout, printed({ inputs: [input], servers: { remux: { type: 'http', url, headers: { Authorization: 'Bearer ${input:remux-token}' } } } }));
    assert.doesNotMatch(http.stderr, /placeholder/);
  });

  test('windsurf: mcp_config.json mcpServers; a remote server under serverUrl with the Authorization header', async () => {
    const r = await remux(['mcp', 'config', 'windsurf'], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, printed({ mcpServers: { remux: { command: REMUX_BIN, args: ['mcp', '--stdio'], env: { REMUX_HOME: h.home } } } }));
    const url = 'https://gw.example.com:7777/mcp';
    const http = await remux(['mcp', 'config', 'windsurf', '--http', '--url', url], { env: { ...h.env, REMUX_TOKEN: token } });
    assert.equal(http.code, 0, http.stderr);
    assert.equal(http.stdout, printed({ mcpServers: { remux: { serverUrl: url, headers: { Authorization: `Bearer ${token}` } } } }));
    const none = await remux(['mcp', 'config', 'windsurf', '--http', '--url', url], { env: h.env });
    assert.match(none.stdout, /"Authorization": "Bearer <TOKEN>"/);
    assert.match(none.stderr, /<TOKEN> is a placeholder: make a token with `remux principal add NAME/);
  });

  test("--http to this daemon with its own certificate: the mcp-remote bridge gets it in its environment; other clients are told to", async () => {
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
      const gemini = await remux(['mcp', 'config', 'gemini', '--http', '--json'], { env: { ...h.env, REMUX_TOKEN: token } });
      assert.match((JSON.parse(gemini.stdout) as { notes: string[] }).notes.join('\n'), new RegExp(`start the client with NODE_EXTRA_CA_CERTS=${cert}`));
      // Not Node, or not started from the user's shell: the system's trust store, a trusted certificate, or stdio.
      for (const [client, name] of [['codex', 'Codex'], ['vscode', 'VS Code'], ['windsurf', 'Windsurf']]) {
        const r = await remux(['mcp', 'config', client!, '--http', '--json'], { env: { ...h.env, REMUX_TOKEN: token } });
        const notes = (JSON.parse(r.stdout) as { notes: string[] }).notes.join('\n');
        assert.match(notes, new RegExp(`its own \\(in ${cert}, with the CA made to sign it\\) and ${name} checks certificates against the system's trusted ones: add ${cert} to them, .*http\\.tls_cert.*, or connect over stdio`), client);
        assert.doesNotMatch(notes, /NODE_EXTRA_CA_CERTS/, client);
      }
    } finally {
      rmSync(join(h.home, 'tls'), { recursive: true, force: true });
    }
  });

  test('bad input: an unknown client, a token file that is not one token, --url without --http, a plain-HTTP remote URL, a name no client takes, a principal the snippet could not start as', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['mcp', 'config', 'zed'], /unknown MCP client "zed": say one of claude-code, claude-desktop, cursor, codex, gemini, vscode, windsurf/],
      [['mcp', 'config', 'cursor', '--http', '--token-file', join(h.home, 'missing')], /--token-file .*missing: no such file/],
      [['mcp', 'config', 'cursor', '--http', '--token-file', join(h.home, 'policies.yaml')], /expected one token .* found more than one word/],
      [['mcp', 'config', 'cursor', '--url', 'https://x/mcp'], /--url goes with --http/],
      [['mcp', 'config', 'cursor', '--http', '--url', 'http://gw.example.com/mcp'], /must not cross the network in clear/],
      // `claude mcp add -rf …` would read the name as its options; an empty or spaced name no client takes.
      [['mcp', 'config', 'claude-code', '--name', '-rf'], /^remux: --name "-rf": name the server with letters, digits, "\.", "_" or "-" \(e\.g\. remux-prod\), not starting with "-"\n/],
      [['mcp', 'config', 'codex', '--name', ''], /^remux: --name "": name the server with/],
      [['mcp', 'config', 'vscode', '--name', 'my server'], /^remux: --name "my server": name the server with/],
      // A stdio snippet whose `remux mcp --stdio --principal` would refuse to start.
      [['mcp', 'config', 'claude-desktop', '--principal', 'cl'], /^remux: --principal cl: no such principal in .*principals\.yaml\nhint: add it with: remux principal add cl --hosts SELECTOR/],
      [['mcp', 'config', 'cursor', '--principal', 'ci', '--token-file', join(h.home, 'other.token')], /^remux: --principal ci: the token given belongs to principal other\nhint: give ci's token/],
      [['mcp', 'config', 'codex', '--principal', 'ci', '--token-file', join(h.home, 'stale.token')], /^remux: --principal ci: the token given matches no principal in .*principals\.yaml\n/],
    ];
    writeFileSync(join(h.home, 'other.token'), `${await addPrincipal(h.env, 'other', '--hosts', 'localhost')}\n`);
    writeFileSync(join(h.home, 'stale.token'), 'rmx_no-such-token\n');
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
    assert.match(r.stdout.replace(/\s+/g, ' '), /client claude-code \| claude-desktop \| cursor \| codex \| gemini \| vscode \| windsurf /);
    for (const client of ['codex', 'gemini', 'vscode', 'windsurf']) assert.match(r.stdout, new RegExp(`\n {2}(REMUX_TOKEN=rmx_… )?remux mcp config ${client}( |\n)`), client);
  });
});
