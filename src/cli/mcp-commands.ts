// `remux mcp --stdio` and `remux mcp config CLIENT`: the snippet a user pastes into Claude Code, Claude
// Desktop, Cursor, Codex, Gemini CLI, VS Code or Windsurf, each in the format its own documentation gives
// (developers.openai.com/codex/mcp, geminicli.com/docs/tools/mcp-server,
// code.visualstudio.com/docs/copilot/reference/mcp-configuration, docs.windsurf.com/windsurf/cascade/mcp).
// Tokens are never invented: REMUX_TOKEN, --token-file, or a placeholder and how to make one.
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { loadConfig } from '../config/config.js';
import { envFirst, principalsFile, socketFileFast, tlsDir } from '../config/paths.js';
import { authenticate, loadPrincipals } from '../config/principals.js';
import { clientSocket } from '../config/daemon-record.js';
import { MCP_CLIENTS, type McpClientName, type McpConfigOptions, type McpStdioOptions } from './commands/mcp.js';
import type { Invocation } from './invocation.js';
import { UsageError } from './output.js';
import { packageFile } from './program.js';

export async function mcpStdioCommand(inv: Invocation, opts: McpStdioOptions): Promise<void> {
  const { runMcpStdio } = await import('../gateway/mcp/stdio.js');
  const configured = await socketFileFast(inv.env, async () => loadConfig(inv.env).config.daemon.socket);
  // stderr is the MCP client's log: the protocol is on stdout.
  const socket = clientSocket(configured, inv.env, (moved) => inv.stderr.write(`warning: ${moved}\n`));
  await runMcpStdio(inv, { ...(opts.principal !== undefined ? { principal: opts.principal } : {}), ...(opts.daemon === false ? { daemon: false } : {}) }, socket);
}

const PLACEHOLDER = '<TOKEN>';
const SERVER_NAME = /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}$/;
/** Where the missing token comes from: a named principal that exists has one already (printed once; rotate prints a new one). */
const makeToken = (principal: string | undefined): string =>
  principal === undefined ? 'make a token with `remux principal add NAME --hosts SELECTOR` (or --admin)' : `use ${principal}'s token (\`remux principal rotate ${principal}\` prints a new one)`;

interface Snippet {
  client: McpClientName;
  transport: 'stdio' | 'http';
  snippet: string;
  notes: string[];
}

export async function mcpConfigCommand(inv: Invocation, client: string, opts: McpConfigOptions): Promise<void> {
  if (!(MCP_CLIENTS as readonly string[]).includes(client)) throw new UsageError(`unknown MCP client "${client}": say one of ${MCP_CLIENTS.join(', ')}`);
  // The clients' `mcp add` commands read a name starting with "-" as one of their options, and refuse an empty one.
  if (!SERVER_NAME.test(opts.name)) throw new UsageError(`--name ${JSON.stringify(opts.name)}: name the server with letters, digits, ".", "_" or "-" (e.g. remux-prod), not starting with "-"`);
  if (opts.url !== undefined && !opts.http) throw new UsageError('--url goes with --http');
  if (opts.principal !== undefined && opts.http) throw new UsageError('--principal is for stdio; over --http the token itself names the principal');
  const token = readToken(inv, opts);
  if (opts.principal !== undefined) checkPrincipal(inv, opts.principal, token);
  const notes: string[] = [];
  const snippet = opts.http ? await httpSnippet(inv, client as McpClientName, opts, token, notes) : stdioSnippet(inv, client as McpClientName, opts, token, notes);
  // Only a snippet that holds the token can hold the placeholder: Codex reads it from its environment, VS Code asks for it.
  if (snippet.includes(PLACEHOLDER)) notes.unshift(`${PLACEHOLDER} is a placeholder: ${makeToken(opts.principal)}, then run this again with REMUX_TOKEN set or --token-file`);
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

/** The stdio snippet runs `remux mcp --stdio --principal NAME` on these files: one it would refuse to start is refused now, not in the client's log. */
function checkPrincipal(inv: Invocation, name: string, token: string | null): void {
  const principals = loadPrincipals(principalsFile(inv.env));
  if (!principals.entries.some((e) => e.name === name)) {
    throw new UsageError(`--principal ${name}: no such principal in ${principals.file}`, `add it with: remux principal add ${name} --hosts SELECTOR (its token is printed once)`);
  }
  if (token === null) return;
  const owner = authenticate(principals, token);
  if (owner?.name !== name) throw new UsageError(`--principal ${name}: the token given ${owner ? `belongs to principal ${owner.name}` : `matches no principal in ${principals.file}`}`, `give ${name}'s token (remux principal rotate ${name} makes a new one)`);
}

/** `remux` when it is on PATH, else the absolute path of this installation's launcher. */
function remuxCommand(env: NodeJS.ProcessEnv): string {
  const own = packageFile('bin/remux');
  const onPath = (env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && resolve(dir, 'remux') === own);
  return onPath ? 'remux' : own;
}

const shellQuote = (word: string): string => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

// A JSON string is a valid TOML basic string (same escapes, \uXXXX included); a key is bare when it may be.
const tomlKey = (key: string): string => (/^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key));

/** VS Code's input variable: it asks for the token once and stores it, so mcp.json (often committed) never holds it. */
function vscodeTokenInput(opts: McpConfigOptions, token: string | null, notes: string[]): { id: string; input: object } {
  const id = `${opts.name}-token`;
  notes.push(`VS Code asks for the token (input "${id}") the first time it starts the server and stores it, so mcp.json never holds it${token === null ? `: ${makeToken(opts.principal)}` : ''}`);
  return { id, input: { type: 'promptString', id, description: `Token for ${opts.name} (what \`remux principal add\` printed)`, password: true } };
}

// Seen with gemini 0.61: `gemini mcp list` shows the server "Disabled" in a folder it has not been told to trust.
const GEMINI_TRUST = 'Gemini CLI starts user-level MCP servers only in folders it trusts: answer its trust question in your project (or /permissions), else `gemini mcp list` shows remux as Disabled';

function stdioSnippet(inv: Invocation, client: McpClientName, opts: McpConfigOptions, token: string | null, notes: string[]): string {
  const command = remuxCommand(inv.env);
  const args = ['mcp', '--stdio', ...(opts.principal !== undefined ? ['--principal', opts.principal] : [])];
  // A client starts remux with its own environment: what decides remux's files and principal goes along.
  const env: Record<string, string> = {};
  const home = envFirst(inv.env, 'REMUX_HOME');
  if (home !== undefined) env.REMUX_HOME = resolve(inv.cwd, home);
  const vscodeInput = client === 'vscode' && opts.principal !== undefined ? vscodeTokenInput(opts, token, notes) : null;
  if (opts.principal !== undefined) env.REMUX_TOKEN = vscodeInput ? `\${input:${vscodeInput.id}}` : (token ?? PLACEHOLDER);
  else if (token !== null) notes.push('REMUX_TOKEN is set here but not put in the snippet: without --principal the session runs as you, the local user');
  const envFlags = (flag: string): string[] => Object.entries(env).flatMap(([k, v]) => [flag, `${k}=${v}`]);
  const server = { command, args, ...(Object.keys(env).length > 0 ? { env } : {}) };
  switch (client) {
    case 'claude-code':
      // The name goes before -e: Claude Code's -e/--env takes every word up to the next option, so a name after it is read as one more variable.
      return ['claude', 'mcp', 'add', opts.name, ...envFlags('-e'), '--', command, ...args].map(shellQuote).join(' ');
    case 'codex':
      return ['codex', 'mcp', 'add', opts.name, ...envFlags('--env'), '--', command, ...args].map(shellQuote).join(' ');
    case 'gemini':
      // --scope user (~/.gemini/settings.json): the default, the project's .gemini/settings.json, is refused in the home
      // directory and may be committed. Gemini's -e takes one word, and options it does not know (--stdio) are the server's.
      notes.push(GEMINI_TRUST);
      return ['gemini', 'mcp', 'add', '--scope', 'user', ...envFlags('-e'), opts.name, command, ...args].map(shellQuote).join(' ');
    case 'vscode':
      return JSON.stringify({ ...(vscodeInput ? { inputs: [vscodeInput.input] } : {}), servers: { [opts.name]: { type: 'stdio', ...server } } }, null, 2);
    case 'claude-desktop':
    case 'cursor':
    case 'windsurf':
      return JSON.stringify({ mcpServers: { [opts.name]: server } }, null, 2);
  }
}

// Clients told to trust the daemon through the system's certificate store: NODE_EXTRA_CA_CERTS does not reach Codex
// (Rust), nor dependably VS Code or Windsurf, desktop apps seldom started from the user's shell.
const SYSTEM_TRUST: Partial<Record<McpClientName, string>> = { codex: 'Codex', vscode: 'VS Code', windsurf: 'Windsurf' };

async function httpSnippet(inv: Invocation, client: McpClientName, opts: McpConfigOptions, token: string | null, notes: string[]): Promise<string> {
  const url = opts.url ?? (await daemonMcpUrl(inv, notes));
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--url ${url}: not a URL (write e.g. https://gw.example.com:7777/mcp)`);
  }
  if (parsed.protocol !== 'https:' && !['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname)) throw new UsageError(`--url ${url}: a token must not cross the network in clear: use https://`);
  const selfSigned = join(tlsDir(inv.env), 'cert.pem');
  const cert = parsed.protocol === 'https:' && opts.url === undefined && existsSync(selfSigned) ? selfSigned : null;
  const systemTrust = SYSTEM_TRUST[client];
  if (cert && systemTrust !== undefined) {
    notes.push(
      `the daemon's certificate is its own (in ${cert}, with the CA made to sign it) and ${systemTrust} checks certificates against the system's trusted ones: add ${cert} to them, give the daemon a certificate from a CA the system trusts (http.tls_cert and http.tls_key in config.yaml), or connect over stdio (without --http)`,
    );
  } else if (cert && client !== 'claude-desktop') {
    // Where the snippet starts a Node process itself (mcp-remote), the certificate goes into its environment instead.
    notes.push(`the daemon's certificate is its own: start the client with NODE_EXTRA_CA_CERTS=${cert} in its environment so it trusts it`);
  }
  const header = `Bearer ${token ?? PLACEHOLDER}`;
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
    case 'codex':
      // Codex takes no token in config.toml: bearer_token_env_var names the variable it reads the token from when it starts.
      notes.push(`Codex sends the token it finds in REMUX_TOKEN in its own environment, so config.toml never holds it: start Codex with REMUX_TOKEN set${token === null ? `; ${makeToken(opts.principal)}` : ''}`);
      return [`[mcp_servers.${tomlKey(opts.name)}]`, `url = ${JSON.stringify(url)}`, 'bearer_token_env_var = "REMUX_TOKEN"'].join('\n');
    case 'gemini':
      notes.push(GEMINI_TRUST);
      return ['gemini', 'mcp', 'add', '--scope', 'user', '--transport', 'http', opts.name, url, '--header', `Authorization: ${header}`].map(shellQuote).join(' ');
    case 'vscode': {
      const { id, input } = vscodeTokenInput(opts, token, notes);
      return JSON.stringify({ inputs: [input], servers: { [opts.name]: { type: 'http', url, headers: { Authorization: `Bearer \${input:${id}}` } } } }, null, 2);
    }
    case 'windsurf':
      // serverUrl: the field Windsurf's documentation gives a remote server (Cursor's is url).
      return JSON.stringify({ mcpServers: { [opts.name]: { serverUrl: url, headers: { Authorization: header } } } }, null, 2);
  }
}

/** The running daemon's endpoint, else where config.yaml says it listens; a daemon on another socket than the one named now is noted. */
async function daemonMcpUrl(inv: Invocation, notes: string[]): Promise<string> {
  const { askDaemon } = await import('../gateway/client.js');
  const { config } = loadConfig(inv.env);
  const socket = clientSocket(await socketFileFast(inv.env, () => Promise.resolve(config.daemon.socket)), inv.env, (moved) => notes.push(moved));
  const status = await askDaemon(socket, { type: 'status' }).catch(() => null);
  if (status?.type === 'status' && 'url' in status.status.http) return new URL('mcp', status.status.http.url).href;
  const [, host, port] = /^(.*):(\d+)$/.exec(config.http.listen) ?? [];
  const shown = host === '0.0.0.0' || host === '::' || host === '[::]' ? '127.0.0.1' : host;
  return `${config.http.tls && !config.http.insecure_no_tls ? 'https' : 'http'}://${shown}:${port}/mcp`;
}
