// `remux mcp --stdio`: MCP for local clients (Claude Code, Claude Desktop, Cursor) that start remux as a
// child process. Like `client run`, it goes through a running daemon when there is one (its warm SSH
// connections, its rate limit), which serves the MCP session: on the client's own stdin and stdout when
// it can take them over (the native launcher's pipes or sockets), else on its socket, the process
// copying bytes between the two. Without a daemon it serves the session itself.
import type net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { z } from 'zod';
import type { Invocation } from '../../cli/invocation.js';
import { envFirst } from '../../config/paths.js';
import { authenticate, principalOf, unknownTokenError, type Principals } from '../../config/principals.js';
import type { GatewayContext } from '../../core/context.js';
import { AuthError, UsageError } from '../../core/errors.js';
import { EXIT } from '../../core/exit-codes.js';
import type { Principal } from '../../core/types.js';
import type { RateLimiter } from '../../hosts/rate-limit.js';
import { clientEnv, filesMismatch } from '../cli-session.js';
import { revocation } from '../http/auth.js';
import { grabStdio, spawnerPid } from '../../exec/spawner.js';
import { connectDaemon } from '../client.js';
import { cliRequest } from '../forward.js';
import { FirstLine, MAX_REQUEST_BYTES, type Event, type McpRequest } from '../protocol.js';
import { busyText, type LargeMessages, LineTransport, MCP_MESSAGE_MAX } from './line-transport.js';
import { createMcpServer, LOCAL_PROCESS } from './server.js';

export interface StdioOptions {
  /** --principal NAME: act as this principal, whose token REMUX_TOKEN must hold. */
  principal?: string;
  /** false with --no-daemon. */
  daemon?: boolean;
}

/**
 * Who a stdio session acts as: the principal of REMUX_TOKEN when set (as for every CLI command), else
 * the local user (the daemon socket's owner). --principal NAME insists on NAME's token. With a token,
 * `revoked` says before each call whether it still holds as it did (removed, rotated, scope edited:
 * the session ends, as an HTTP session's next request is refused and a browser's terminal closed).
 */
export function stdioPrincipal(ctx: GatewayContext, token: string | undefined, name: string | undefined): { principal: Principal; revoked?: () => string | null } {
  if (token === undefined || token === '') {
    if (name !== undefined) throw new UsageError(`--principal ${name} needs that principal's token in REMUX_TOKEN`, `the token was printed by \`remux principal add ${name}\` (or make a new one: remux principal rotate ${name})`);
    return { principal: { ...ctx.principal, via: 'mcp' } };
  }
  const entry = authenticate(ctx.principals(), token);
  if (!entry) throw unknownTokenError(ctx.principalsFile);
  if (name !== undefined && entry.name !== name) throw new AuthError(`REMUX_TOKEN belongs to principal ${entry.name}, not ${name}`);
  const revoked = (): string | null => {
    let now: Principals | Error;
    try {
      now = ctx.principals();
    } catch (err) {
      now = err as Error;
    }
    const why = revocation(entry, now);
    return why && `${why.reason}: this MCP session has ended; start a new one with a valid token`;
  };
  return { principal: principalOf(entry, 'mcp'), revoked };
}

/** The CLI process's side. Resolves when the client closes our stdin (or the daemon goes away). */
export async function runMcpStdio(inv: Invocation, opts: StdioOptions, socketPath: string): Promise<void> {
  if (opts.daemon !== false) {
    const forwarded = await viaDaemon(inv, opts, socketPath);
    if (forwarded === 'served') return;
    if (forwarded !== null) inv.stderr.write(`remux: the running daemon does not serve this MCP session (${forwarded}); serving it in this process\n`);
  }
  const { createContext } = await import('../../core/context.js');
  const ctx = createContext({ env: inv.env });
  try {
    const { principal, revoked } = stdioPrincipal(ctx, inv.env.REMUX_TOKEN, opts.principal);
    const server = createMcpServer({ ctx, principal, callerCwd: inv.cwd }, { transport: 'stdio', from: LOCAL_PROCESS }, revoked);
    const closed = new Promise<void>((resolve) => (server.server.onclose = resolve));
    const transport = new LineTransport(process.stdin, process.stdout);
    await server.connect(transport);
    process.stdin.once('end', () => void transport.answered().then(() => server.close()));
    await closed;
  } finally {
    await ctx.close();
  }
}

/** 'served' once the daemon's session ended; null when no daemon runs; else why it declined. */
async function viaDaemon(inv: Invocation, opts: StdioOptions, socketPath: string): Promise<'served' | string | null> {
  const socket = await connectDaemon(socketPath);
  if (!socket) return null;
  const token = envFirst(inv.env, 'REMUX_TOKEN');
  const { env, cwd, version } = cliRequest(inv);
  const request: McpRequest = { type: 'mcp', version, cwd, env, ...(token ? { token } : {}), ...(opts.principal !== undefined ? { principal: opts.principal } : {}) };
  const answer = await new Promise<Event | null>((resolve) => {
    const reader = new FirstLine(MAX_REQUEST_BYTES);
    const onData = (chunk: Buffer): void => {
      const got = reader.push(chunk);
      if (!got) return;
      socket.off('data', onData);
      socket.off('close', onClose);
      if (got.rest.length > 0) socket.unshift(got.rest);
      resolve(JSON.parse(got.line) as Event);
    };
    const onClose = (): void => resolve(null);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.on('error', () => socket.destroy());
    socket.write(`${JSON.stringify(request)}\n`);
  });
  if (answer?.type === 'declined') return answer.reason;
  if (answer?.type !== 'done') {
    socket.destroy();
    if (answer?.type === 'error') throw answer.exitCode === EXIT.DENIED ? new AuthError(answer.message) : new UsageError(answer.message);
    throw new Error('the daemon closed the connection before the MCP session started');
  }
  // From here on the socket carries the MCP messages as they are (newline-delimited JSON).
  let inputEnded = false;
  process.stdin.once('end', () => (inputEnded = true));
  process.stdin.pipe(socket);
  socket.pipe(process.stdout);
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  process.stdin.unpipe(socket);
  if (!inputEnded) {
    // The daemon went away (stopped, restarted) or ended a session whose token no longer holds while the client was still talking: end, so the client notices.
    inv.stderr.write('remux: the daemon ended the MCP session: it stopped or restarted, or the session\'s token no longer holds (its last answer says so); start the client\'s session again\n');
    process.stdin.destroy();
    inv.setExitCode(EXIT.TRANSPORT);
  }
  return 'served';
}

const mcpRequestSchema = z.strictObject({
  type: z.literal('mcp'),
  version: z.string(),
  cwd: z.string().startsWith('/'),
  env: z.record(z.string(), z.string()),
  token: z.string().min(1).max(1024).optional(),
  principal: z.string().min(1).max(64).optional(),
  pid: z.number().int().positive().optional(),
});

/** The daemon's side: one MCP session on a client's socket connection, as its principal. */
export function serveMcpSocket(socket: net.Socket, raw: unknown, rest: Buffer, deps: { ctx: GatewayContext; limiter: RateLimiter; large: LargeMessages; version: string }): void {
  const answer = (event: Event): boolean => socket.write(`${JSON.stringify(event)}\n`);
  const parsed = mcpRequestSchema.safeParse(raw);
  if (!parsed.success) return void socket.end(`${JSON.stringify({ type: 'error', message: `malformed MCP request: ${parsed.error.issues[0]?.message ?? ''}`, exitCode: EXIT.USAGE })}\n`);
  const request = parsed.data;
  if (request.version !== deps.version) {
    answer({ type: 'declined', reason: `the daemon is remux ${deps.version}, this client ${request.version}; restart it: remux daemon restart` });
    return void socket.end();
  }
  const mismatch = filesMismatch(deps.ctx, clientEnv(request.env, request.cwd));
  if (mismatch !== null) {
    answer({ type: 'declined', reason: mismatch });
    return void socket.end();
  }
  let credential: ReturnType<typeof stdioPrincipal>;
  try {
    credential = stdioPrincipal(deps.ctx, request.token, request.principal);
  } catch (err) {
    answer({ type: 'error', message: (err as Error).message, exitCode: err instanceof AuthError ? EXIT.DENIED : EXIT.USAGE });
    return void socket.end();
  }
  const { principal, revoked } = credential;
  const server = createMcpServer({ ctx: deps.ctx, principal, callerCwd: request.cwd, admit: (name) => deps.limiter.take(name) }, { transport: 'stdio', from: LOCAL_PROCESS }, revoked);
  // The principal's large messages count with those it sends over HTTP and from its other stdio clients.
  const serve = (input: Readable, output: Writable): LineTransport => {
    const transport = new LineTransport(input, output, MCP_MESSAGE_MAX, { take: () => deps.large.take(principal.name), busy: busyText(principal.name) });
    void server.connect(transport);
    return transport;
  };
  const relay = (): void => {
    answer({ type: 'done' });
    // The CLI process shuts its side once the client's input ended: what was asked by then is still
    // answered, so our side stays open until the session ends. Its socket closing (the process killed:
    // a client that would not wait) ends the session at once, and with it the calls under way.
    socket.allowHalfOpen = true;
    socket.on('close', () => void server.close());
    // The server ending the session (a revoked credential) ends the connection: the CLI's relay then exits.
    server.server.onclose = () => socket.end();
    const transport = serve(socket, socket);
    socket.once('end', () => void transport.answered().then(() => server.close()));
  };
  const ptracer = request.pid === undefined ? 0 : spawnerPid();
  if (ptracer === 0) {
    if (rest.length > 0) socket.unshift(rest);
    return relay();
  }
  // Taken over, the client's stdin and stdout are read and written here: no process copies each message
  // between them and this socket (two wake-ups of a process per call, 0.1-0.2 ms of a 2 ms run_command).
  const handedOff = (input: net.Socket, output: net.Socket): void => {
    if (socket.destroyed) {
      input.destroy();
      return void output.destroy();
    }
    answer({ type: 'done', handoff: true });
    const transport = serve(input, output);
    let inputEnded = false;
    input.once('end', () => (inputEnded = true));
    const end = (): void => void server.close();
    // The client's output closed, or the CLI process gone (killed: `socket` closes, below): the session is
    // over, and the calls under way are stopped. Its input at its end: once what it asked is answered.
    input.once('close', () => (inputEnded ? void transport.answered().then(end) : end()));
    input.on('error', end);
    output.on('error', end);
    server.server.onclose = () => {
      input.destroy();
      output.end();
      // `ended` tells the CLI process the client ended the session; without it, it says the daemon did.
      if (inputEnded) socket.end(`${JSON.stringify({ type: 'ended' } satisfies Event)}\n`);
      else socket.end();
    };
  };
  answer({ type: 'handoff', ptracer });
  const ready = new FirstLine(MAX_REQUEST_BYTES);
  const onData = (chunk: Buffer): void => {
    let got: ReturnType<FirstLine['push']>;
    try {
      got = ready.push(chunk);
    } catch {
      return void socket.destroy();
    }
    if (!got) return;
    socket.off('data', onData);
    if (got.line !== '{"type":"ready"}') return void socket.destroy();
    grabStdio(request.pid!).then(
      ([input, output]) => handedOff(input, output),
      // Not allowed here (a kernel without pidfd_getfd, a ptrace policy, a seccomp filter): copied as before.
      () => (socket.destroyed ? void server.close() : relay()),
    );
  };
  socket.on('data', onData);
  socket.once('close', () => void server.close());
  if (rest.length > 0) onData(rest);
}
