// One MCP server instance for one client connection (a stdio process, an HTTP session): the tool table
// bound to the connection's principal. The client's name and version from `initialize` go into the
// audit trail once per connection (the action records themselves have no field for them).
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import { packageVersion } from '../../cli/program.js';
import { ALIASES, TOOLS, toolResult, type Tell, type ToolDeps } from './tools.js';

/** Connection events are not actions on a host: they are recorded against this name. */
export const MCP_AUDIT_HOST = '(mcp)';

const INSTRUCTIONS =
  'remux runs commands on hosts under a policy, without a shell, and audits every call. Start with list_hosts. ' +
  'A refused call names the policy rule and the reason: adapt the command (another program, a narrower path) instead of retrying it unchanged. ' +
  'To change part of an existing file, use edit_file (exact replacements) rather than rewriting it with write_file.';

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** How a call is going (an approval awaited, a command running) told as progress notifications, when the client asked for them. */
function teller(extra: Extra): Tell | undefined {
  const token = extra._meta?.progressToken;
  if (token === undefined) return undefined;
  let step = 0;
  return (message) => void extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: ++step, message } }).catch(() => undefined);
}

/**
 * `revoked` (a connection with no daemon-side credential check of its own: stdio) says before each call
 * why the connection's credential no longer holds, or null: such a call is refused and the connection closed.
 */
export function createMcpServer(deps: ToolDeps, transport: 'stdio' | 'streamable-http' | 'sse', revoked?: () => string | null): McpServer {
  const server = new McpServer({ name: 'remux', version: packageVersion() }, { capabilities: { tools: {} }, instructions: INSTRUCTIONS });
  const checked = async (call: () => Promise<CallToolResult>): Promise<CallToolResult> => {
    const why = revoked?.();
    if (!why) return call();
    setImmediate(() => void server.close());
    return { content: [{ type: 'text', text: why }], isError: true };
  };
  for (const t of TOOLS) {
    server.registerTool(
      t.name,
      { title: t.title, description: t.description, inputSchema: t.input, outputSchema: t.output, annotations: t.annotations },
      (args: unknown, extra) => checked(async () => toolResult(await t.call(args as never, deps, extra.signal, teller(extra)))),
    );
  }
  for (const a of ALIASES) {
    const target = TOOLS.find((t) => t.name === a.of)!;
    server.registerTool(
      a.name,
      { title: target.title, description: a.description, inputSchema: a.input, outputSchema: target.output, annotations: target.annotations },
      (args: unknown, extra) => checked(async () => toolResult(await target.call(target.input.parse(a.toTarget(args as never)) as never, deps, extra.signal, teller(extra)))),
    );
  }
  // A client that sends `initialized` without waiting for the answer to `initialize` has it handled
  // first (requests are async, notifications not): read the client's name once that request has run.
  // Recorded once: a client repeating `initialized` (notifications take no rate-limit token) must not
  // write an audit record each time.
  let connected = false;
  server.server.oninitialized = () => {
    if (connected) return;
    connected = true;
    setImmediate(() => {
      const client = server.server.getClientVersion();
      const who = client ? `${client.name} ${client.version}` : 'unnamed client';
      void deps.ctx.audit
        .record(
          { principal: deps.principal.name, host: MCP_AUDIT_HOST, operation: 'mcp.connect', resource: who, decision: 'allow', reason: `MCP client ${who} connected over ${transport}` },
          { exitCode: 0, durationMs: 0 },
        )
        .catch((err: unknown) => process.stderr.write(`remux: cannot audit the MCP connection of ${who}: ${err instanceof Error ? err.message : String(err)}\n`));
    });
  };
  return server;
}
