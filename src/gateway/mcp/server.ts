// One MCP server instance for one client connection (a stdio process, an HTTP session): the tool table
// bound to the connection's principal. Each connection's handshake goes into the audit trail, with the
// client's name and version from `initialize` (the action records themselves have no field for them).
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { CallToolResult, RequestId, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import { packageVersion } from '../../cli/program.js';
import { ALIASES, TOOLS, toolResult, type Tell, type ToolDeps } from './tools.js';

/** Connection events are not actions on a host: they are recorded against this name. */
export const MCP_AUDIT_HOST = '(mcp)';

const INSTRUCTIONS =
  'remux runs commands on hosts under a policy, without a shell, and audits every call. Start with list_hosts. ' +
  'A refused call names the policy rule and the reason: adapt the command (another program, a narrower path) instead of retrying it unchanged. ' +
  'To change part of an existing file, use edit_file (exact replacements) rather than rewriting it with write_file.';

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** How an MCP client reached remux, for the audit record of its connection. */
export interface McpConnection {
  transport: 'stdio' | 'streamable-http' | 'sse';
  /** The client's address (HTTP), or that it is a process on this machine (stdio). */
  from: string;
}

/** What the stdio transports say a client came from: a process on this machine. */
export const LOCAL_PROCESS = 'a process on this machine';

/**
 * The audit record of a connection's handshake: `initialized` (the client connected), or `failed` (why:
 * a message that could not be read, an initialize refused) or `abandoned` (the connection ended first).
 */
export function auditConnect(
  deps: Pick<ToolDeps, 'ctx' | 'principal'>,
  connection: McpConnection,
  who: string,
  outcome: { initialized: true } | { failed: string } | { abandoned: true },
  durationMs = 0,
): void {
  const how = `over ${connection.transport} from ${connection.from}`;
  const [reason, error] =
    'initialized' in outcome
      ? [`MCP client ${who} connected ${how}`, null]
      : 'failed' in outcome
        ? [`MCP client ${who} ${how} failed the handshake`, outcome.failed]
        : [`MCP client ${who} ${how} ended the connection before the handshake finished`, 'abandoned: no initialized notification came'];
  void deps.ctx.audit
    .record(
      { principal: deps.principal.name, host: MCP_AUDIT_HOST, operation: 'mcp.connect', resource: who, decision: 'allow', reason },
      { exitCode: error === null ? 0 : null, durationMs, ...(error === null ? {} : { error }) },
    )
    .catch((err: unknown) => process.stderr.write(`remux: cannot audit the MCP connection of ${who}: ${err instanceof Error ? err.message : String(err)}\n`));
}

/** An MCP server that watches the handshake on the transport it is connected to (see createMcpServer). */
class WatchedServer extends McpServer {
  watch: (transport: Transport) => void = () => undefined;

  override async connect(transport: Transport): Promise<void> {
    this.watch(transport);
    return super.connect(transport);
  }
}

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
export function createMcpServer(deps: ToolDeps, connection: McpConnection, revoked?: () => string | null): McpServer {
  const server = new WatchedServer({ name: 'remux', version: packageVersion() }, { capabilities: { tools: {} }, instructions: INSTRUCTIONS });
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
  // write an audit record each time. Before it, the first failure is recorded (a client that initializes
  // after one is recorded as connected too), and a connection that ends with neither as abandoned.
  const began = performance.now();
  let handshake: 'open' | 'failed' | 'abandoned' | 'initialized' = 'open';
  const who = (): string => {
    const client = server.server.getClientVersion();
    return client ? `${client.name} ${client.version}` : 'unnamed client';
  };
  const settle = (outcome: Parameters<typeof auditConnect>[3]): void => auditConnect(deps, connection, who(), outcome, performance.now() - began);
  const failed = (why: string): void => {
    if (handshake !== 'open') return;
    handshake = 'failed';
    settle({ failed: why });
  };
  let connecting: NodeJS.Immediate | null = null;
  server.server.oninitialized = () => {
    if (handshake === 'initialized') return;
    handshake = 'initialized';
    connecting = setImmediate(() => {
      connecting = null;
      settle({ initialized: true });
    });
  };
  // Set before the SDK's own handlers, which it calls after these.
  server.watch = (transport) => {
    let initialize: RequestId | undefined;
    const { onmessage, onerror, onclose } = transport;
    transport.onmessage = (message, extra) => {
      if ('method' in message && message.method === 'initialize' && 'id' in message) initialize = message.id;
      onmessage?.(message, extra);
    };
    transport.onerror = (error) => {
      failed(error.message);
      onerror?.(error);
    };
    transport.onclose = () => {
      // A client that ends right after `initialized` (stdio: its process, and this one, end next) is recorded now.
      if (connecting !== null) {
        clearImmediate(connecting);
        connecting = null;
        settle({ initialized: true });
      }
      if (handshake === 'open') {
        handshake = 'abandoned';
        settle({ abandoned: true });
      }
      onclose?.();
    };
    const send = transport.send.bind(transport);
    transport.send = (message, options) => {
      if ('error' in message && initialize !== undefined && message.id === initialize) failed(`initialize refused: ${message.error.message}`);
      return send(message, options);
    };
  };
  return server;
}
