// `remux agent`: dials the gateway's relay endpoint and stays connected, serving the gateway's requests
// (serve.ts). The token goes in the Authorization header of the upgrade request, never in the URL.
// A lost connection is dialed again after exponential backoff with full jitter (hosts/backoff.ts); a
// refused token, or another agent taking this name, ends the agent with the reason instead. A gateway of
// an older relay protocol, which refuses this agent's hello for its version alone, is dialed again at
// once with the version before, down to the oldest this agent speaks (it then asks nothing newer of
// it). What arrives after a silence is handled only once the gateway shows the connection is still its
// own (connectOnce).
import { homedir, userInfo } from 'node:os';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import type { GatewayContext } from '../core/context.js';
import { UsageError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { Backoff, type BackoffOptions } from '../hosts/backoff.js';
import { closeReason } from '../gateway/close-reason.js';
import { AGENT_PATH, BINARY_FRAME, CLOSE, GatewayFrameSchema, MAX_FRAME_BYTES, MIN_PROTOCOL_VERSION, parseFrame, PROTOCOL_VERSION, TERMINAL_INPUT_MAX_BYTES, type AgentFrame, type GatewayFrame, type Hello } from '../gateway/relay/protocol.js';
import { AgentSession } from './serve.js';

export interface AgentOptions {
  gateway: string;
  name: string;
  token: string;
  /** This machine's own context: its policies, audit store and local host. */
  ctx: GatewayContext;
  version: string;
  log(line: string): void;
  /** Aborting stops the agent (its connection is closed, running requests cancelled). */
  signal?: AbortSignal;
  backoff?: BackoffOptions;
  /** The WebSocket handshake, and the gateway's `registered` answer, must come within this long. */
  connectTimeoutMs?: number;
  /** PEM certificates trusted for the gateway besides the system's (--ca-file: the one it made), and the file they came from. */
  ca?: { pem: string; file: string };
}

/** Why the agent stopped for good: the exit status and the reason. */
export interface AgentEnd {
  exitCode: number;
  message: string;
  /** What the user can do about it. */
  hint?: string;
}

/** The gateway's certificate is not trusted here: a setting to fix, not a failure that retrying heals. */
const UNTRUSTED = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID']);

function untrusted(url: URL, err: NodeJS.ErrnoException, ca: AgentOptions['ca']): AgentEnd {
  const message = `the gateway's certificate is not trusted: ${err.message}`;
  if (err.code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return { exitCode: EXIT.USAGE, message, hint: `dial the gateway by a name its certificate holds (one the gateway made holds localhost, 127.0.0.1, ::1 and the address of its --listen), not ${url.hostname}` };
  }
  if (ca) return { exitCode: EXIT.USAGE, message, hint: `${ca.file} does not hold the certificate ${url.host} shows (the gateway's is $REMUX_HOME/tls/cert.pem there, unless it was given --tls-cert)` };
  return { exitCode: EXIT.USAGE, message, hint: `a gateway with a certificate of its own: copy its $REMUX_HOME/tls/cert.pem here and add --ca-file FILE` };
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/;

/** --gateway as the user wrote it, with the other scheme: what to dial instead. */
function withScheme(gateway: string, scheme: 'ws' | 'wss'): string {
  return gateway.replace(/^[a-z]+:/i, `${scheme}:`);
}

/** wss:// to a port that answered in plain text (a gateway with http.tls: false, or no gateway): retrying cannot fix it. */
function plainPort(url: URL, gateway: string): AgentEnd {
  const message = `${url.host} does not speak TLS (it answered wss:// in plain text): the gateway there serves plain HTTP, or it is not the gateway's port`;
  return {
    exitCode: EXIT.USAGE,
    message,
    hint: LOOPBACK.test(url.hostname)
      ? `dial ${withScheme(gateway, 'ws')} (plain, as the gateway there serves it: http.tls: false), or the port it serves TLS on`
      : `dial the port the gateway serves TLS on, or the TLS proxy in front of it (plain ws:// is for loopback only)`,
  };
}

/** ws:// to a port that serves TLS: retrying cannot fix it. */
function tlsPort(url: URL, gateway: string): AgentEnd {
  return { exitCode: EXIT.USAGE, message: `${url.host} serves TLS: plain ws:// cannot talk to it`, hint: `dial ${withScheme(gateway, 'wss')} (with --ca-file, a copy of the gateway's $REMUX_HOME/tls/cert.pem, when it made its own certificate)` };
}

/**
 * Whether host:port of a ws:// URL completes a TLS handshake. A TLS server hangs up on a plain handshake without
 * saying why; so does a gateway going away mid-handshake, which retrying heals. The certificate is not checked
 * (nothing is sent over it; ws:// is loopback alone).
 */
function answersTls(url: URL, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port || 80), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    const done = (yes: boolean): void => {
      socket.destroy();
      resolve(yes);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The relay endpoint for --gateway: wss:// (https:// accepted); plain ws:// only to this machine. */
export function relayUrl(gateway: string): URL {
  let url: URL;
  try {
    url = new URL(gateway);
  } catch {
    throw new UsageError(`--gateway ${gateway}: not a URL; write wss://HOST:PORT`);
  }
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol !== 'wss:' && url.protocol !== 'ws:') throw new UsageError(`--gateway ${gateway}: expected wss://HOST:PORT`);
  if (url.protocol === 'ws:' && !LOOPBACK.test(url.hostname)) {
    throw new UsageError(`--gateway ${gateway}: plain ws:// would send the agent token in clear; use wss://`);
  }
  if (url.username || url.password || url.search) throw new UsageError(`--gateway ${gateway}: no credentials or query in the URL (the token goes in --token-file)`);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${AGENT_PATH}`;
  url.hash = '';
  return url;
}

export async function runAgent(opts: AgentOptions): Promise<AgentEnd> {
  const url = relayUrl(opts.gateway);
  const backoff = new Backoff(opts.backoff);
  let attempt = 0;
  let version = PROTOCOL_VERSION;
  while (!opts.signal?.aborted) {
    const outcome = await connectOnce(url, opts, version);
    if ('older' in outcome && version > MIN_PROTOCOL_VERSION) {
      version -= 1;
      opts.log(`the gateway speaks an older relay protocol (${outcome.older}); speaking protocol ${version}: ${WITHOUT[version]}`);
      continue;
    }
    if ('end' in outcome) return outcome.end;
    if (outcome.hungUp && (await answersTls(url, opts.connectTimeoutMs ?? 15_000))) return tlsPort(url, opts.gateway);
    if (outcome.registered) attempt = 0;
    if (opts.signal?.aborted) break;
    const delay = backoff.nextDelay(attempt++);
    opts.log(`${outcome.why}; connecting again in ${delay} ms`);
    try {
      await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : {});
    } catch {
      break; // stopped while waiting
    }
  }
  return { exitCode: 0, message: 'stopped' };
}

/** What a gateway speaking only this version (and older) does without. */
const WITHOUT: Record<number, string> = {
  1: 'commands there get no standard input',
  2: `it does not hold back what is typed into a terminal here: a terminal whose session has not taken ${TERMINAL_INPUT_MAX_BYTES} bytes of it is stopped`,
  3: 'its commands come only once its audit record of them is on disk, not while this agent checks and records them',
  4: 'it does not say which stages its policy lets out of its sandbox (sandbox: false): they run in its sandbox here',
};

/** hungUp: a ws:// handshake the other end hung up on, as a TLS port does. */
type Outcome = { registered: boolean; why: string; hungUp?: boolean } | { end: AgentEnd } | { end: AgentEnd; older: string };

/** How a gateway that checks `v` as a literal refuses a newer one: its close reason names `v` alone. */
const OLDER_GATEWAY = /^expected hello: bad frame at v:/;
/** How the gateway refuses a token made for another host name (gateway/relay/route.ts): --name is to fix, not retry. */
const OTHER_NAME = /^this token is for agent (\S+), not /;

async function hello(opts: AgentOptions, version: number): Promise<Hello> {
  return {
    type: 'hello',
    v: version,
    name: opts.name,
    user: userInfo().username,
    home: homedir(),
    securePath: opts.ctx.config.exec.secure_path,
    sandbox: await opts.ctx.host('localhost').sandboxSupport(),
    version: opts.version,
  };
}

function connectOnce(url: URL, opts: AgentOptions, version: number): Promise<Outcome> {
  const connectTimeoutMs = opts.connectTimeoutMs ?? 15_000;
  return new Promise<Outcome>((resolve) => {
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${opts.token}` },
      maxPayload: MAX_FRAME_BYTES,
      handshakeTimeout: connectTimeoutMs,
      perMessageDeflate: false,
      ...(opts.ca ? { ca: [...rootCertificates, opts.ca.pem] } : {}),
    });
    const send = (frame: AgentFrame): void => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
    };
    const session = new AgentSession(opts.name, opts.ctx, send, version);
    let registered = false;
    let settled: Outcome | null = null;
    const settle = (outcome: Outcome): void => {
      settled ??= outcome;
    };
    // The gateway pings; one that stops (a dead path that never closes) is given up on.
    let silence: NodeJS.Timeout | null = null;
    const expectPing = (intervalMs: number): void => {
      if (silence) clearTimeout(silence);
      silence = setTimeout(() => {
        settle({ registered, why: `the gateway sent no ping for ${Math.round((2 * intervalMs + 5000) / 1000)} s` });
        ws.terminate();
      }, 2 * intervalMs + 5000);
      silence.unref();
    };
    let pingIntervalMs = 0;
    // What arrives after a silence longer than a ping interval (this process was stopped or asleep, or the
    // path was down) may have been sent on a connection the gateway has given up on since, failing its
    // callers with "may have run": running it now would replay it behind their backs. It is held until the
    // gateway answers a ping of ours on this connection, then handled in order; a connection that closes
    // instead drops it unrun. (The gateway gives up a pong timeout after a missed ping: the slack here,
    // at most 1 s, stays under any pong timeout of a second or more.)
    let lastHeard = 0;
    let held: GatewayFrame[] | null = null;
    const heard = (): void => {
      const now = performance.now();
      if (held === null && now - lastHeard > pingIntervalMs + Math.min(pingIntervalMs / 2, 1000)) {
        held = [];
        ws.ping();
      }
      lastHeard = now;
    };
    const registerTimer = setTimeout(() => {
      settle({ registered: false, why: `the gateway did not register this agent within ${connectTimeoutMs} ms` });
      ws.terminate();
    }, connectTimeoutMs);
    const onStop = (): void => ws.close(1000, 'agent stopping');
    opts.signal?.addEventListener('abort', onStop, { once: true });

    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 2000) body += chunk;
      });
      res.on('end', () => {
        let message = body.trim();
        try {
          message = (JSON.parse(body) as { message?: string }).message ?? message;
        } catch {
          // not the API's JSON: shown as it came
        }
        const status = res.statusCode ?? 0;
        const text = `the gateway refused the connection (HTTP ${status}${message ? `: ${message}` : ''})`;
        // A refused token does not heal by retrying. A refused network (403: the gateway's relay.allow_networks)
        // may, once the gateway's configuration or this machine's address changes: retried like a gateway that is down.
        settle(status === 401 ? { end: { exitCode: 77, message: text } } : { registered: false, why: text });
        ws.terminate();
      });
    });
    ws.on('open', () => {
      hello(opts, version).then(
        (h) => send(h),
        (err: unknown) => {
          settle({ end: { exitCode: 1, message: `cannot describe this machine: ${(err as Error).message}` } });
          ws.terminate();
        },
      );
    });
    ws.on('ping', () => {
      if (pingIntervalMs === 0) return;
      expectPing(pingIntervalMs);
      heard();
    });
    ws.on('pong', () => {
      const frames = held ?? [];
      held = null;
      for (const frame of frames) session.handle(frame);
    });
    ws.on('message', (data, isBinary) => {
      const parsed = isBinary ? BINARY_FRAME : parseFrame(GatewayFrameSchema, data as Buffer);
      if (!parsed.ok) {
        settle({ registered, why: `the gateway sent a bad frame (${parsed.error})` });
        return ws.close(CLOSE.protocol, closeReason(parsed.error, parsed.brief));
      }
      const frame = parsed.frame;
      if (!registered) {
        if (frame.type !== 'registered') {
          settle({ registered, why: `the gateway sent ${frame.type} before registering this agent` });
          return ws.close(CLOSE.protocol, 'expected registered');
        }
        registered = true;
        clearTimeout(registerTimer);
        pingIntervalMs = frame.pingIntervalMs;
        lastHeard = performance.now();
        expectPing(pingIntervalMs);
        opts.log(`connected to ${url.origin} as agent ${frame.name}`);
        return;
      }
      heard();
      if (held) held.push(frame);
      else session.handle(frame);
    });
    ws.on('error', (err: NodeJS.ErrnoException) => {
      if (UNTRUSTED.has(err.code ?? '')) settle({ end: untrusted(url, err, opts.ca) });
      // OpenSSL's "wrong version number": the first bytes back were not TLS (as a write error, EPROTO, when the handshake's write failed).
      else if (err.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || (err.code === 'EPROTO' && /wrong version number/.test(err.message))) settle({ end: plainPort(url, opts.gateway) });
      // A TLS port answers a plain ws:// handshake by hanging up (runAgent then asks it for TLS).
      else if (!registered && url.protocol === 'ws:' && (err.code === 'ECONNRESET' || err.message === 'socket hang up')) settle({ registered, why: `connection to ${url.origin} failed: ${err.message}`, hungUp: true });
      // Nothing listens there: the gateway is down or restarting, which retrying waits out.
      else if (err.code === 'ECONNREFUSED') settle({ registered, why: `connection to ${url.origin} refused: nothing listens on ${url.host} (the gateway's daemon is down, or listens on another port); waiting for it` });
      else settle({ registered, why: `connection to ${url.origin} failed: ${err.message}` });
    });
    ws.on('close', (code, reason) => {
      clearTimeout(registerTimer);
      if (silence) clearTimeout(silence);
      opts.signal?.removeEventListener('abort', onStop);
      session.cancelAll();
      if (held?.length) opts.log(`dropped ${held.length} frame${held.length === 1 ? '' : 's'} that came after a silence: the gateway had given up on that connection`);
      const why = reason.toString() || `code ${code}`;
      if (code === CLOSE.replaced) settle({ end: { exitCode: 1, message: `another agent took the name ${opts.name}: ${why}` } });
      else if (code === CLOSE.protocol && !registered) {
        const end: AgentEnd = { exitCode: 1, message: `the gateway refused this agent: ${why}` };
        const tokenFor = OTHER_NAME.exec(why)?.[1];
        if (tokenFor !== undefined) settle({ end: { exitCode: EXIT.USAGE, message: end.message, hint: `run it with --name ${tokenFor}, or make a token for ${opts.name} on the gateway: remux agent token ${opts.name}` } });
        else settle(OLDER_GATEWAY.test(why) ? { end, older: why } : { end });
      }
      else settle({ registered, why: `connection closed (${why})` });
      resolve(settled!);
    });
  });
}
