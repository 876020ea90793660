// Adversarial: a URL that does not decode is refused by fastify before any route or hook runs. As a
// WebSocket upgrade, whose socket Node hands over past all of its own timeouts, its connection was never
// closed: a client without any credential held connections for ever, past http.request_timeout_seconds.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { rawExchange, startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';

describe('a URL that does not decode', () => {
  let d: ConsoleDaemon;
  before(async () => {
    // A request timeout far past what the test waits: a connection closed within the wait was closed with its answer.
    d = await startConsoleDaemon({ boss: ['--admin'] }, 'http: { request_timeout_seconds: 120 }\n');
  });
  after(() => d.stop());

  const head = (path: string, more = ''): string => `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${more}\r\n`;
  const upgrade = 'connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

  test('as a WebSocket upgrade, without credentials: refused and its connection closed with the answer, not held', async () => {
    for (const path of ['/%E0%A4%A', '/api/ws/terminal/%zz', '/agent/%C0']) {
      const r = await rawExchange(d, head(path, upgrade), 10_000);
      assert.match(r.text, /^HTTP\/1\.1 400 Bad Request\r\n/, path);
      assert.ok(r.closedAfter !== null, `${path}: the daemon did not close the connection (request timeout 120 s; waited 10 s)`);
      assert.match(r.text, /\{"error":"bad_request","message":".*is not a valid url component: a % in a URL starts the escape of a UTF-8 byte/, path);
    }
  });

  test('as any request: answered in the API\'s words, with the headers every answer carries', async () => {
    const r = await rawExchange(d, head('/api/%E0%A4%A', 'connection: close\r\n'), 4000);
    assert.match(r.text, /^HTTP\/1\.1 400 Bad Request\r\n/);
    for (const header of ['content-security-policy: default-src \'self\'', 'x-frame-options: DENY', 'x-content-type-options: nosniff', 'cache-control: no-store', 'strict-transport-security: max-age=']) {
      assert.ok(r.text.toLowerCase().includes(header.toLowerCase()), `${header} in\n${r.text}`);
    }
    assert.match(r.text, /content-type: application\/json; charset=utf-8/i);
  });
});
