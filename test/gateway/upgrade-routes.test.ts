// Adversarial: @fastify/websocket upgrades a request on any GET route and then closes it where the route
// is not a WebSocket. The daemon answered 101 Switching Protocols to anyone, on the console's files and
// the MCP metadata, before any credential, and held the connection through a close handshake of up to 30 s.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { rawExchange, startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';

describe('a WebSocket upgrade to a route that is not a WebSocket', () => {
  let d: ConsoleDaemon;
  before(async () => {
    d = await startConsoleDaemon({ boss: ['--admin'] });
  });
  after(() => d.stop());

  const upgrade = (path: string, more = ''): string =>
    `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n${more}\r\n`;

  test('is refused (400) and its connection closed with the answer, with or without credentials', async () => {
    const cases: Array<[string, string]> = [
      ['/', ''],
      ['/index.html', ''],
      ['/.well-known/oauth-protected-resource/mcp', ''],
      ['/approvals/x?option=a&token=b', ''],
      ['/api/hosts', `authorization: Bearer ${d.tokens.boss}\r\n`],
    ];
    for (const [path, more] of cases) {
      // Held, it would last the close handshake's 30 s: closed within the wait, it was closed with the answer.
      const r = await rawExchange(d, upgrade(path, more), 10_000);
      assert.match(r.text, /^HTTP\/1\.1 400 Bad Request\r\n/, `${path}: ${r.text.split('\r\n')[0]}`);
      assert.match(r.text, new RegExp(`\\{"error":"bad_request","message":"${path.split('?')[0]!.replace(/\./g, '\\.')} is not a WebSocket endpoint"\\}`));
      assert.ok(r.closedAfter !== null, `${path}: the connection was not closed with its answer (waited 10 s)`);
    }
  });

  test('the WebSocket endpoints still upgrade, and an unknown path is still 404', async () => {
    const ping = await rawExchange(d, upgrade('/api/ws/ping', `authorization: Bearer ${d.tokens.boss}\r\n`), 500);
    assert.match(ping.text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    const unknown = await rawExchange(d, upgrade('/no/such/route'), 5000);
    assert.match(unknown.text, /^HTTP\/1\.1 404 Not Found\r\n/);
    assert.notEqual(unknown.closedAfter, null);
  });
});
