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
      // The SDK passes one long-lived signal to every request: each listener goes when its request does.
      const abort = (): void => void req.destroy(new DOMException('aborted', 'AbortError'));
      init.signal?.addEventListener('abort', abort, { once: true });
      req.on('close', () => init.signal?.removeEventListener('abort', abort));
      req.end(typeof init.body === 'string' ? init.body : undefined);
    });
}
