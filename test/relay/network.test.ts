// relay.allow_networks and relay.trusted_proxies: the client address is the TCP peer, or behind a
// trusted proxy the rightmost X-Forwarded-For hop that is not a trusted proxy; never the left end a
// client writes itself. IPv6 and IPv4-mapped addresses are compared as the addresses they are.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { clientAddress, clientKey, Networks, normalizeAddress } from '../../src/gateway/relay/network.js';
import { AGENT_PATH } from '../../src/gateway/relay/protocol.js';
import { startRelay } from './harness.js';

describe('addresses', () => {
  test('IPv4-mapped IPv6 addresses become the IPv4 address, in every spelling', () => {
    for (const a of ['::ffff:100.64.0.1', '::FFFF:100.64.0.1', '0:0:0:0:0:ffff:100.64.0.1', '::ffff:6440:1']) assert.equal(normalizeAddress(a), '100.64.0.1', a);
    assert.equal(normalizeAddress('100.64.0.1'), '100.64.0.1');
    assert.equal(normalizeAddress('FD7A:115C::1'), 'fd7a:115c::1');
    for (const bad of ['', 'example.com', '100.64.0.1:80', '1.2.3', '::ffff:1.2.3']) assert.equal(normalizeAddress(bad), null, bad);
  });

  test('a client is counted by its IPv4 address, or by its IPv6 /64, in every spelling', () => {
    for (const a of ['2001:db8:1:2::a', '2001:DB8:1:2:ffff:ffff:ffff:ffff', '2001:0db8:0001:0002:0:0:0:1', '2001:db8:1:2::192.0.2.1']) assert.equal(clientKey(a), '2001:db8:1:2::/64', a);
    assert.equal(clientKey('2001:db8:1:3::a'), '2001:db8:1:3::/64');
    assert.equal(clientKey('2001:db8::'), '2001:db8:0:0::/64');
    assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    for (const a of ['203.0.113.5', '::ffff:203.0.113.5', '::ffff:cb00:7105']) assert.equal(clientKey(a), '203.0.113.5', a);
    assert.notEqual(clientKey('203.0.113.5'), clientKey('203.0.113.6'), 'IPv4 addresses one by one');
    // NAT64 (64:ff9b::/96): the IPv4 clients a translator brings in are one by one too, not one /64.
    assert.equal(clientKey('64:ff9b::203.0.113.5'), '203.0.113.5 (NAT64)');
    assert.equal(clientKey('64:ff9b::cb00:7106'), '203.0.113.6 (NAT64)');
    assert.notEqual(clientKey('64:ff9b::203.0.113.5'), clientKey('203.0.113.5'), 'not the same client as the IPv4 address itself');
    assert.equal(clientKey('64:ff9b:1::cb00:7105'), '64:ff9b:1:0::/64', 'a local-use prefix (RFC 8215) is a network like any other');
  });

  test('CIDR blocks: IPv4, IPv6, and mapped addresses against IPv4 blocks', () => {
    const n = new Networks(['100.64.0.0/10', 'fd7a:115c:a1e0::/48', '10.1.2.3'], 'test');
    for (const inside of ['100.64.0.1', '100.127.255.255', '::ffff:100.100.1.1', 'fd7a:115c:a1e0:ab12::1', '10.1.2.3']) assert.equal(n.has(inside), true, inside);
    for (const outside of ['100.128.0.1', '100.63.255.255', '127.0.0.1', '::1', 'fd7a:115c:a1e1::1', '10.1.2.4', 'garbage']) assert.equal(n.has(outside), false, outside);
  });

  test('bad blocks in config are usage errors that name the key and the value', () => {
    assert.throws(() => new Networks(['100.64.0.0/33'], 'relay.allow_networks'), /relay.allow_networks: "100.64.0.0\/33" has a prefix length outside 0-32/);
    assert.throws(() => new Networks(['gw.example.com/8'], 'relay.trusted_proxies'), /relay.trusted_proxies: "gw.example.com\/8" is not an address/);
  });

  test('the client address: the peer, unless it is a trusted proxy; then the rightmost untrusted hop', () => {
    const none = new Networks([], 'x');
    const proxy = new Networks(['10.0.0.2', '10.0.0.3'], 'x');
    // No trusted proxy: the header is the client's own words and is ignored.
    assert.equal(clientAddress('203.0.113.9', '100.64.0.1', none), '203.0.113.9');
    // From an untrusted peer, even with proxies configured.
    assert.equal(clientAddress('::ffff:203.0.113.9', '100.64.0.1', proxy), '203.0.113.9');
    // Through the proxy: the hop it appended, whatever the client wrote to its left.
    assert.equal(clientAddress('10.0.0.2', '100.64.0.1, 203.0.113.9', proxy), '203.0.113.9');
    // Two trusted proxies in a row are skipped; several headers are one list.
    assert.equal(clientAddress('10.0.0.2', ['100.64.0.1, 203.0.113.9', '10.0.0.3'], proxy), '203.0.113.9');
    // A trusted proxy that sent nothing usable: unknown, so refused by the caller.
    assert.equal(clientAddress('10.0.0.2', undefined, proxy), null);
    assert.equal(clientAddress('10.0.0.2', '100.64.0.1, not-an-ip', proxy), null);
  });
});

describe('the relay route with allow_networks', () => {
  const upgrade = (url: string, headers: Record<string, string>): Promise<number> =>
    new Promise((resolve) => {
      const ws = new WebSocket(`${url}${AGENT_PATH}`, { headers });
      ws.once('open', () => {
        ws.terminate();
        resolve(101);
      });
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('error', () => resolve(0));
    });

  test('only 100.64.0.0/10, no proxy: loopback is refused, and a forged X-Forwarded-For does not help', async () => {
    const relay = await startRelay({ relay: '  allow_networks: [100.64.0.0/10]\n' });
    try {
      const auth = { authorization: `Bearer ${relay.tokens.laptop}` };
      assert.equal(await upgrade(relay.url, auth), 403);
      assert.equal(await upgrade(relay.url, { ...auth, 'x-forwarded-for': '100.64.0.1' }), 403);
    } finally {
      await relay.close();
    }
  });

  test("an agent refused for its network keeps trying (the gateway's setting or this address may change), saying why; a refused token ends it", async () => {
    const relay = await startRelay({ relay: '  allow_networks: [100.64.0.0/10]\n' });
    try {
      const agent = relay.startAgent('laptop');
      const refusals = (): string[] => agent.log.filter((l) => /HTTP 403: .*100\.64\.0\.0\/10.*connecting again/.test(l));
      for (let i = 0; i < 100 && refusals().length < 2; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(refusals().length >= 2, agent.log.join('\n'));
      await agent.stop();
    } finally {
      await relay.close();
    }
    // With its network allowed, a wrong token ends the agent (exit 77): no retry heals that.
    const open = await startRelay();
    try {
      const forged = open.startAgent('laptop', { token: 'rmx_wrong' });
      const end = await forged.done;
      assert.equal(end.exitCode, 77, JSON.stringify(end));
      await forged.stop();
    } finally {
      await open.close();
    }
  });

  test('behind a trusted proxy (loopback here): the hop the proxy appended decides, not the left end', async () => {
    const relay = await startRelay({ relay: '  allow_networks: [100.64.0.0/10, "fd7a:115c:a1e0::/48"]\n  trusted_proxies: [127.0.0.1]\n' });
    try {
      const auth = { authorization: `Bearer ${relay.tokens.laptop}` };
      assert.equal(await upgrade(relay.url, { ...auth, 'x-forwarded-for': '100.64.0.1, 198.51.100.7' }), 403, 'spoofed left end');
      assert.equal(await upgrade(relay.url, { ...auth, 'x-forwarded-for': '198.51.100.7, 100.64.3.4' }), 101);
      assert.equal(await upgrade(relay.url, { ...auth, 'x-forwarded-for': '::ffff:100.64.3.4' }), 101, 'IPv4-mapped');
      assert.equal(await upgrade(relay.url, { ...auth, 'x-forwarded-for': 'fd7a:115c:a1e0::5' }), 101, 'IPv6');
      assert.equal(await upgrade(relay.url, auth), 403, 'no header from the proxy: unknown client');
      // The network check comes before the token check: a refused network learns nothing about tokens.
      assert.equal(await upgrade(relay.url, { authorization: 'Bearer rmx_wrong', 'x-forwarded-for': '198.51.100.7' }), 403);
    } finally {
      await relay.close();
    }
  });
});
