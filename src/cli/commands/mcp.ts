import type { Command } from 'commander';
import { completes } from './completion.js';
import type { Invocation } from '../invocation.js';

export interface McpStdioOptions {
  stdio?: boolean;
  principal?: string;
  daemon?: boolean;
}

export interface McpConfigOptions {
  http?: boolean;
  url?: string;
  tokenFile?: string;
  principal?: string;
  name: string;
  json?: boolean;
}

// An interface: names are only ever added.
export const MCP_CLIENTS = ['claude-code', 'claude-desktop', 'cursor', 'codex', 'gemini', 'vscode', 'windsurf'] as const;
export type McpClientName = (typeof MCP_CLIENTS)[number];

export function registerMcp(program: Command, inv: Invocation): void {
  const mcp = program
    .command('mcp')
    .description('the MCP endpoint for AI clients: run_command, list_hosts and session tools, each call through policy and audit')
    .option('--stdio', 'serve MCP on stdin/stdout (what local clients start); through the running daemon when there is one')
    .option('--principal <name>', "act as this principal (its scope and policies); REMUX_TOKEN must hold its token (default: you, or REMUX_TOKEN's principal)")
    .option('--no-daemon', 'serve the session in this process even when a daemon is running')
    .addHelpText(
      'after',
      `
The daemon also serves MCP over Streamable HTTP at https://HOST:7777/mcp (and the legacy SSE transport
at /sse for older clients), with a principal's token as bearer: Authorization: Bearer TOKEN.

Examples:
  remux mcp --stdio
  REMUX_TOKEN=rmx_… remux mcp --stdio --principal ci
  remux mcp config claude-code
  remux mcp config cursor --http --token-file ~/.config/remux/ci.token`,
    )
    .action(async (opts: McpStdioOptions) => {
      if (!opts.stdio) throw new (await import('../output.js')).UsageError('say how to serve: remux mcp --stdio (the daemon serves HTTP at /mcp by itself)', 'remux mcp config claude-code prints what to paste into a client');
      const { mcpStdioCommand } = await import('../mcp-commands.js');
      await mcpStdioCommand(inv, opts);
    });

  completes(mcp.command('config'), { client: MCP_CLIENTS })
    .description('print the exact snippet to paste into an MCP client, token included')
    .argument('<client>', MCP_CLIENTS.join(' | '))
    .option('--http', 'connect over HTTPS to the daemon (URL and Authorization header) instead of starting `remux mcp --stdio`')
    .option('--url <url>', 'with --http: the endpoint (default: the running daemon\'s, else http.listen in config.yaml, path /mcp)')
    .option('--token-file <file>', 'read the token from this file (default: REMUX_TOKEN; else a placeholder is printed)')
    .option('--principal <name>', 'stdio: run as this principal (the token goes into the client\'s environment as REMUX_TOKEN)')
    .option('--name <name>', 'the server\'s name in the client', 'remux')
    .option('--json', 'print {"client","transport","snippet","notes"}')
    .addHelpText(
      'after',
      `
Where the snippet goes: claude-code, gemini and codex (stdio): run the printed command;
claude-desktop: merge it into claude_desktop_config.json; cursor: into .cursor/mcp.json (or
~/.cursor/mcp.json); codex --http: into ~/.codex/config.toml; vscode: into .vscode/mcp.json (or
the user mcp.json), the token asked for by VS Code, never in the file; windsurf: into
~/.codeium/windsurf/mcp_config.json.
A token is never invented: make one with \`remux principal add NAME --hosts SELECTOR\`.

Examples:
  remux mcp config claude-code
  remux mcp config claude-desktop --principal ci --token-file ci.token
  REMUX_TOKEN=rmx_… remux mcp config cursor --http
  remux mcp config claude-code --http --url https://gw.example.com:7777/mcp --json
  remux mcp config codex
  REMUX_TOKEN=rmx_… remux mcp config gemini --http
  remux mcp config vscode --principal ci
  remux mcp config windsurf --http --token-file ci.token`,
    )
    .action(async (client: string, opts: McpConfigOptions) => {
      const { mcpConfigCommand } = await import('../mcp-commands.js');
      // Commander gives `--principal` after `config` to `mcp` itself, which has one too.
      const principal = opts.principal ?? mcp.opts<McpStdioOptions>().principal;
      await mcpConfigCommand(inv, client, { ...opts, ...(principal !== undefined ? { principal } : {}) });
    });
}
