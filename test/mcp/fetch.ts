// fetch() that trusts only the daemon's own (self-signed) certificate, for the SDK's HTTP client
// transports in tests and the benchmark: Node's global fetch cannot be given a CA per call.
import https from 'node:https';
import { Readable } from 'node:stream';

export function caFetch(ca: string): (url: string | URL, init?: RequestInit) => Promise<Response> {
  const agent = new https.Agent({ ca, keepAlive: true });
  return (url, init = {}) =>
    new Promise((resolve, reject) => {
      const headers = new Headers(init.headers);
      const req = https.request(new URL(url), { method: init.method ?? 'GET', headers: Object.fromEntries(headers.entries()), agent }, (res) => {
        const out = new Headers();
        for (const [name, value] of Object.entries(res.headers)) for (const v of [value ?? []].flat()) out.append(name, v);
        const empty = res.statusCode === 204 || res.statusCode === 304 || init.method === 'HEAD';
        resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream), { status: res.statusCode ?? 0, headers: out }));
      });
      req.on('error', reject);
      init.signal?.addEventListener('abort', () => req.destroy(new DOMException('aborted', 'AbortError')), { once: true });
      req.end(typeof init.body === 'string' ? init.body : undefined);
    });
}
