// A client for the daemon's HTTPS server in tests: requests that trust only the daemon's own
// certificate, and raw WebSocket upgrades (so refused upgrades show their HTTP status).
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

export interface Client {
  request(method: string, path: string, opts?: { headers?: Record<string, string>; body?: unknown }): Promise<Answer>;
  upgrade(path: string, headers: Record<string, string>): Promise<{ status: 101; socket: Socket } | Answer>;
}

export function client(baseUrl: string, ca: string): Client {
  const base = new URL(baseUrl);
  const options = (method: string, path: string, headers: Record<string, string>): https.RequestOptions => ({
    method,
    host: base.hostname,
    port: base.port,
    path,
    ca,
    headers,
    agent: false,
  });
  const answer = (res: IncomingMessage): Promise<Answer> =>
    new Promise((resolve, reject) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: <T>() => JSON.parse(text) as T }));
    });
  return {
    request(method, path, opts = {}) {
      const headers = { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers };
      return new Promise((resolve, reject) => {
        const req = https.request(options(method, path, headers), (res) => void answer(res).then(resolve, reject));
        req.on('error', reject);
        // A string is sent as it is (a form); anything else as JSON.
        req.end(opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
      });
    },
    upgrade(path, headers) {
      return new Promise((resolve, reject) => {
        const req = https.request(
          options('GET', path, {
            connection: 'Upgrade',
            upgrade: 'websocket',
            'sec-websocket-version': '13',
            'sec-websocket-key': randomBytes(16).toString('base64'),
            ...headers,
          }),
        );
        req.on('upgrade', (res, socket) => resolve({ status: 101, socket: socket as Socket }));
        req.on('response', (res) => void answer(res).then(resolve, reject));
        req.on('error', reject);
        req.end();
      });
    },
  };
}

/** Sends one masked text frame (as a browser must) and resolves with the text of the first frame back. */
export function wsRoundTrip(socket: Socket, text: string): Promise<string> {
  const payload = Buffer.from(text);
  if (payload.length > 125) throw new Error('test frames stay small');
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const length = got[1]! & 0x7f;
      const start = length === 126 ? 4 : 2;
      const size = length === 126 ? got.readUInt16BE(2) : length;
      if (got.length >= start + size) {
        socket.destroy();
        resolve(got.subarray(start, start + size).toString('utf8'));
      }
    });
    socket.on('error', reject);
  });
}
