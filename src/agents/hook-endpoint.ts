// The hook endpoint of one Claude Code session: an HTTP server on a unix socket, served by the session's
// supervisor (outside the sandbox), that answers Claude Code hooks for that session and nothing else.
//
// Why this shape: inside sandbox-runtime the hook can neither read $REMUX_HOME nor open a unix socket
// (seccomp refuses AF_UNIX), and its network is the domain-allowlist proxy. So the session's proxy routes
// one reserved name, HOOK_HOST, to this socket (srt's mitmProxy); no other session's proxy does. The
// caller proves it belongs to the session with a per-session token read from a file only this session's
// sandbox can see ($REMUX_HOME stays hidden except this session's own directory), never a command line.
// The endpoint can only ask the questions a hook asks: it runs nothing and answers no approval.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { sameSecret } from '../gateway/http/auth.js';
import { Withdrawal } from '../notify/approvals.js';
import { parseHookInput, type HookInput, type HookOutput } from './hooks.js';
import { HOOK_HOST, HOOK_PATH, SESSION_HEADER, tokenFileOf } from './hook-wire.js';
import { agentsDir } from './store.js';

export { HOOK_DIR_ENV, HOOK_HOST, HOOK_PATH, SESSION_HEADER, socketOf, tokenFileOf } from './hook-wire.js';

const MAX_BODY = 1024 * 1024;
/** Why the question of a hook that hung up is withdrawn. */
const HOOK_GONE = "the agent's hook stopped waiting for it (interrupted, or killed at Claude Code's hook timeout)";
/** Hooks waiting at once; more is a flood (each one could page a person). */
const MAX_PENDING = 8;

export function hookDirOf(id: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(agentsDir(env), 'hooks', id);
}

export interface HookEndpointOptions {
  /** The remux session id; requests for any other id are refused. */
  session: string;
  dir: string;
  answer(input: HookInput, signal: AbortSignal): Promise<HookOutput | null>;
  log?(line: string): void;
}

export interface HookEndpoint {
  socket: string;
  close(): Promise<void>;
}

function reply(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
}

async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A fresh token and socket in the session's own directory (0700); the old ones, if any, are replaced. */
export async function serveHookEndpoint(opts: HookEndpointOptions): Promise<HookEndpoint> {
  const socket = join(opts.dir, `hook-${randomBytes(8).toString('hex')}.sock`);
  if (Buffer.byteLength(socket) > 107) throw new Error(`the hook socket path is too long for a unix socket (${socket}): use a shorter REMUX_HOME`);
  rmSync(opts.dir, { recursive: true, force: true });
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('hex');
  writeFileSync(tokenFileOf(opts.dir), token, { mode: 0o600, flag: 'wx' });
  let pending = 0;
  const server: Server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      opts.log?.(`hook endpoint: ${(err as Error).message}`);
      if (!res.headersSent) reply(res, 500, { error: (err as Error).message });
    });
  });
  // A hook waits as long as its approval may: no request or socket timeout of our own.
  server.requestTimeout = 0;
  server.timeout = 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Through the proxy the target is absolute (http://HOOK_HOST/hook); directly it is /hook.
    const url = new URL(req.url ?? '/', `http://${HOOK_HOST}`);
    if (url.pathname !== HOOK_PATH || url.search !== '' || url.hostname !== HOOK_HOST) return reply(res, 404, { error: `this endpoint only answers POST ${HOOK_PATH}` });
    if (req.method !== 'POST') return reply(res, 405, { error: `this endpoint only answers POST ${HOOK_PATH}` });
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ') || !sameSecret(auth.slice(7), token)) return reply(res, 401, { error: "missing or wrong hook token (it is in the session's hook directory)" });
    const session = req.headers[SESSION_HEADER];
    if (session !== opts.session) return reply(res, 403, { error: `this endpoint answers hooks of session ${opts.session} only, not ${JSON.stringify(session ?? null)}` });
    if (pending >= MAX_PENDING) return reply(res, 429, { error: `${MAX_PENDING} hooks of this session are already waiting` });
    pending++;
    try {
      const body = await readBody(req);
      if (body === null) return reply(res, 413, { error: `the hook input is over ${MAX_BODY} bytes` });
      let input: HookInput;
      try {
        input = parseHookInput(body);
      } catch (err) {
        return reply(res, 400, { error: (err as Error).message });
      }
      // A hook killed while it waits (Ctrl-C, Claude Code's timeout, the session ending) withdraws its question, saying so.
      const gone = new AbortController();
      res.once('close', () => gone.abort(new Withdrawal(HOOK_GONE)));
      const output = await opts.answer(input, gone.signal);
      if (!res.destroyed) reply(res, 200, { output });
    } finally {
      pending--;
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  chmodSync(socket, 0o600);
  return {
    socket,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // After a restart the directory may be the next supervisor's already: only our own is removed.
      if (existsSync(tokenFileOf(opts.dir)) && readFileSync(tokenFileOf(opts.dir), 'utf8') === token) rmSync(opts.dir, { recursive: true, force: true });
    },
  };
}
