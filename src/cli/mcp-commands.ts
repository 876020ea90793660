// `remux mcp --stdio` and `remux mcp config CLIENT`: the snippet a user pastes into Claude Code, Claude
// Desktop or Cursor. Tokens are never invented: REMUX_TOKEN, --token-file, or a placeholder and how to make one.
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { loadConfig } from '../config/config.js';
import { envFirst, socketFileFast, tlsDir } from '../config/paths.js';
import { MCP_CLIENTS, type McpClientName, type McpConfigOptions, type McpStdioOptions } from './commands/mcp.js';
import type { Invocation } from './invocation.js';
import { UsageError } from './output.js';
import { packageFile } from './program.js';

export async function mcpStdioCommand(inv: Invocation, opts: McpStdioOptions): Promise<void> {
  const { runMcpStdio } = await import('../gateway/mcp/stdio.js');
  const socket = await socketFileFast(inv.env, async () => loadConfig(inv.env).config.daemon.socket);
  await runMcpStdio(inv, { ...(opts.principal !== undefined ? { principal: opts.principal } : {}), ...(opts.daemon === false ? { daemon: false } : {}) }, socket);
}

const PLACEHOLDER = '<TOKEN>';

interface Snippet {
  client: McpClientName;
  transport: 'stdio' | 'http';
  snippet: string;
  notes: string[];
}

export async function mcpConfigCommand(inv: Invocation, client: string, opts: McpConfigOptions): Promise<void> {
  if (!(MCP_CLIENTS as readonly string[]).includes(client)) throw new UsageError(`unknown MCP client "${client}": say one of ${MCP_CLIENTS.join(', ')}`);
  if (opts.url !== undefined && !opts.http) throw new UsageError('--url goes with --http');
  if (opts.principal !== undefined && opts.http) throw new UsageError('--principal is for stdio; over --http the token itself names the principal');
  const token = readToken(inv, opts);
  const notes: string[] = [];
  if (token === null && (opts.http || opts.principal !== undefined)) {
    notes.push(`${PLACEHOLDER} is a placeholder: make a token with \`remux principal add NAME --hosts SELECTOR\` (or --admin), then run this again with REMUX_TOKEN set or --token-file`);
  }
  const snippet = opts.http ? await httpSnippet(inv, client as McpClientName, opts, token ?? PLACEHOLDER, notes) : stdioSnippet(inv, client as McpClientName, opts, token, notes);
  const out: Snippet = { client: client as McpClientName, transport: opts.http ? 'http' : 'stdio', snippet, notes };
  if (opts.json) return void inv.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  inv.stdout.write(`${snippet}\n`);
  for (const note of notes) inv.stderr.write(`note: ${note}\n`);
}

function readToken(inv: Invocation, opts: McpConfigOptions): string | null {
  if (opts.tokenFile !== undefined) {
    const file = resolve(inv.cwd, opts.tokenFile);
    let text: string;
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new UsageError(`--token-file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
    if (!/^\S+$/.test(text)) throw new UsageError(`--token-file ${file}: expected one token (as \`remux principal add\` prints it), found ${text === '' ? 'an empty file' : 'more than one word'}`);
    return text;
  }
  return envFirst(inv.env, 'REMUX_TOKEN') ?? null;
}

/** `remux` when it is on PATH, else the absolute path of this installation's launcher. */
function remuxCommand(env: NodeJS.ProcessEnv): string {
  const own = packageFile('bin/remux');
  const onPath = (env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && resolve(dir, 'remux') === own);
  return onPath ? 'remux' : own;
}

const shellQuote = (word: string): string => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

function stdioSnippet(inv: Invocation, client: McpClientName, opts: McpConfigOptions, token: string | null, notes: string[]): string {
  const command = remuxCommand(inv.env);
  const args = ['mcp', '--stdio', ...(opts.principal !== undefined ? ['--principal', opts.principal] : [])];
  // A client starts remux with its own environment: what decides remux's files and principal goes along.
  const env: Record<string, string> = {};
  const home = envFirst(inv.env, 'REMUX_HOME');
  if (home !== undefined) env.REMUX_HOME = resolve(inv.cwd, home);
  if (opts.principal !== undefined) env.REMUX_TOKEN = token ?? PLACEHOLDER;
  else if (token !== null) notes.push('REMUX_TOKEN is set here but not put in the snippet: without --principal the session runs as you, the local user');
  if (client === 'claude-code') {
    // The name goes before -e: Claude Code's -e/--env takes every word up to the next option, so a name after it is read as one more variable.
    const envFlags = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    return ['claude', 'mcp', 'add', opts.name, ...envFlags, '--', command, ...args].map(shellQuote).join(' ');
  }
  const server = { command, args, ...(Object.keys(env).length > 0 ? { env } : {}) };
  return JSON.stringify({ mcpServers: { [opts.name]: server } }, null, 2);
}

async function httpSnippet(inv: Invocation, client: McpClientName, opts: McpConfigOptions, token: string, notes: string[]): Promise<string> {
  const url = opts.url ?? (await daemonMcpUrl(inv));
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--url ${url}: not a URL (write e.g. https://gw.example.com:7777/mcp)`);
  }
  if (parsed.protocol !== 'https:' && !['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname)) throw new UsageError(`--url ${url}: a token must not cross the network in clear: use https://`);
  const selfSigned = join(tlsDir(inv.env), 'cert.pem');
  const cert = parsed.protocol === 'https:' && opts.url === undefined && existsSync(selfSigned) ? selfSigned : null;
  // Where the snippet starts a Node process itself (mcp-remote), the certificate goes into its environment.
  if (cert && client !== 'claude-desktop') {
    notes.push(`the daemon's certificate is self-signed: start the client with NODE_EXTRA_CA_CERTS=${cert} in its environment so it trusts it`);
  }
  const header = `Bearer ${token}`;
  switch (client) {
    case 'claude-code':
      return ['claude', 'mcp', 'add', '--transport', 'http', opts.name, url, '--header', `Authorization: ${header}`].map(shellQuote).join(' ');
    case 'cursor':
      return JSON.stringify({ mcpServers: { [opts.name]: { url, headers: { Authorization: header } } } }, null, 2);
    case 'claude-desktop':
      // Its config file starts local servers only: the mcp-remote bridge carries the session to the URL.
      notes.push('Claude Desktop reaches remote servers through the mcp-remote bridge (npx mcp-remote), which this snippet starts');
      return JSON.stringify(
        { mcpServers: { [opts.name]: { command: 'npx', args: ['-y', 'mcp-remote', url, '--header', 'Authorization:${REMUX_AUTH}'], env: { REMUX_AUTH: header, ...(cert ? { NODE_EXTRA_CA_CERTS: cert } : {}) } } } },
        null,
        2,
      );
  }
}

/** The running daemon's endpoint, else where config.yaml says it listens. */
async function daemonMcpUrl(inv: Invocation): Promise<string> {
  const { askDaemon } = await import('../gateway/client.js');
  const { config } = loadConfig(inv.env);
  const socket = await socketFileFast(inv.env, () => Promise.resolve(config.daemon.socket));
  const status = await askDaemon(socket, { type: 'status' }).catch(() => null);
  if (status?.type === 'status' && 'url' in status.status.http) return new URL('mcp', status.status.http.url).href;
  const [, host, port] = /^(.*):(\d+)$/.exec(config.http.listen) ?? [];
  const shown = host === '0.0.0.0' || host === '::' || host === '[::]' ? '127.0.0.1' : host;
  return `${config.http.tls && !config.http.insecure_no_tls ? 'https' : 'http'}://${shown}:${port}/mcp`;
}
