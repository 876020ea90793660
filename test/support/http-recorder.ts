// A local HTTP server standing in for a push service: records every request, answers with `status`.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpRecorder {
  server: Server;
  requests: Recorded[];
  /** What the next requests are answered with. */
  status: { code: number };
  /** http://127.0.0.1:PORT */
  base(): string;
  listen(): Promise<void>;
  close(): Promise<void>;
}

export function httpRecorder(): HttpRecorder {
  const requests: Recorded[] = [];
  const status = { code: 200 };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', headers: req.headers, body });
      res.statusCode = status.code;
      res.end(status.code === 200 ? '{"ok":true}' : 'rate limited, slow down');
    });
  });
  return {
    server,
    requests,
    status,
    base: () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    listen: () => new Promise((resolve) => server.listen(0, '127.0.0.1', resolve)),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
