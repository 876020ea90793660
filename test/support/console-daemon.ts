// A daemon for the console's session tests: real tmux on this machine on a private socket (the
// machine's own tmux servers are never touched), HTTPS on a free loopback port, principals by name.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { againIfServerExited } from '../../src/sessions/tmux.js';
import { remux, tempHome } from './cli.js';

const POLICIES = `policies:
  read_only:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: sleep|cat|echo|yes }
      - { operation: write_stdout, resource: null }
`;

export interface ConsoleDaemon {
  home: string;
  /** The daemon's environment: what `remux daemon restart` (or a start after a stop) runs with. */
  env: Record<string, string>;
  url: string;
  origin: string;
  ca: string;
  /** The tmux user of the local host: whoever runs the tests. */
  me: string;
  tokens: Record<string, string>;
  tmux(...args: string[]): string;
  hasSession(name: string): boolean;
  stop(): Promise<void>;
}

/**
 * principals: name -> `remux principal add` flags; env: more of the daemon's environment (REMUX_TMUX_SOCKET);
 * moreHosts: hosts.yaml entries after `box`'s, indented as under `hosts:`; listen: a fixed port for a daemon started again.
 */
export async function startConsoleDaemon(principals: Record<string, string[]>, config = '', env: Record<string, string> = {}, moreHosts = '', listen = '127.0.0.1:0'): Promise<ConsoleDaemon> {
  const h = tempHome();
  const socket = join(h.home, 'tmux.sock');
  writeFileSync(join(h.home, 'policies.yaml'), POLICIES);
  writeFileSync(join(h.home, 'hosts.yaml'), `hosts:\n  box:\n    transport: local\n    tmux_socket: ${socket}\n${moreHosts}`);
  if (config) writeFileSync(join(h.home, 'config.yaml'), config);
  const tokens: Record<string, string> = {};
  for (const [name, flags] of Object.entries(principals)) {
    const r = await remux(['principal', 'add', name, ...flags, '--json'], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    tokens[name] = (JSON.parse(r.stdout) as { token: string }).token;
  }
  const daemonEnv = { ...h.env, HOME: h.home, SHELL: '/bin/sh', ...env };
  const started = await remux(['daemon', 'start', '--listen', listen], { env: daemonEnv });
  assert.equal(started.code, 0, started.stderr);
  const url = /web console and API: (\S+)/.exec(started.stdout)![1]!;
  // After a test killed the last session the server may still be exiting: once more then, as remux does.
  const tmux = (...args: string[]): string => againIfServerExited(() => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  return {
    home: h.home,
    env: daemonEnv,
    url,
    origin: new URL(url).origin,
    ca: readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8'),
    me: userInfo().username,
    tokens,
    tmux,
    hasSession: (name) => {
      try {
        tmux('has-session', '-t', `=${name}`);
        return true;
      } catch {
        return false;
      }
    },
    async stop() {
      await remux(['daemon', 'stop'], { env: h.env });
      try {
        tmux('kill-server');
      } catch {
        // No server left.
      }
      for (let i = 0; i < 100 && existsSync(socket); i++) await sleep(10);
      h.remove();
    },
  };
}

export interface TerminalClient {
  ws: WebSocket;
  /** Control messages (ready, exit) in order. */
  control: Array<Record<string, unknown>>;
  text(): string;
  closed: Promise<{ code: number; reason: string }>;
  send(message: object): void;
  /** Acknowledges everything received, as a browser does once it has rendered it. */
  ackAll(): void;
  /** Waits until the output shows `pattern`. */
  shows(pattern: RegExp): Promise<void>;
}

/** A terminal WebSocket as a script would open one; resolves once it is ready or closed. */
export async function openTerminal(d: Pick<ConsoleDaemon, 'url' | 'ca'>, query: Record<string, string>, headers: Record<string, string>): Promise<TerminalClient> {
  const ws = new WebSocket(`${d.url.replace(/^https/, 'wss')}api/ws/terminal?${new URLSearchParams(query)}`, { ca: d.ca, headers });
  const control: Array<Record<string, unknown>> = [];
  const chunks: Buffer[] = [];
  ws.on('message', (data: Buffer, isBinary) => {
    if (isBinary) chunks.push(data);
    else control.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const text = (): string => Buffer.concat(chunks).toString('utf8');
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.on('message', () => resolve());
    ws.once('close', () => resolve());
  });
  return {
    ws,
    control,
    text,
    closed,
    send: (m) => ws.send(JSON.stringify(m)),
    ackAll: () => ws.send(JSON.stringify({ type: 'ack', bytes: chunks.reduce((n, c) => n + c.length, 0) })),
    async shows(pattern) {
      for (let i = 0; i < 300 && !pattern.test(text()); i++) await sleep(10);
      assert.match(text(), pattern);
    },
  };
}

/** Sends `request` on a connection of its own: what came back, and when the daemon closed it (ms), or null within `waitMs`. */
export function rawExchange(d: ConsoleDaemon, request: string, waitMs: number): Promise<{ text: string; closedAfter: number | null }> {
  const url = new URL(d.url);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = tls.connect({ host: url.hostname, port: Number(url.port), ca: d.ca }, () => socket.write(request));
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    socket.on('error', reject);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closedAfter: null });
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closedAfter: Date.now() - started });
    });
  });
}
