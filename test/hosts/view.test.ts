// The rows of `remux hosts list` (and GET /api/hosts) from the daemon's view of each host: a host whose
// circuit breaker saw failures, then a success, is shown as it is now, not with its last failure.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { HostStatus } from '../../src/gateway/protocol.js';
import { CircuitBreaker } from '../../src/hosts/breaker.js';
import { loadInventory } from '../../src/hosts/inventory.js';
import { hostRows } from '../../src/hosts/view.js';

test('a host that recovered shows no last error; one failing now shows its error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'remux-view-'));
  try {
    writeFileSync(join(dir, 'hosts.yaml'), 'hosts:\n  web1:\n    address: 127.0.0.1\n');
    const hosts = loadInventory(join(dir, 'hosts.yaml')).hosts.filter((h) => h.name === 'web1');
    const breaker = new CircuitBreaker('web1', { failureThreshold: 3 });
    const status = (connected: boolean): HostStatus => ({ name: 'web1', address: '127.0.0.1', port: 22, transport: 'ssh', labels: {}, connected, breaker: breaker.state(), lastRttMs: null, lastError: null, activeChannels: 0, queued: 0, sandbox: null });
    const row = async (connected: boolean) => (await hostRows(hosts, new Map([['web1', status(connected)]]), '/usr/bin:/bin'))[0]!;
    breaker.recordFailure('connect ECONNREFUSED 127.0.0.1:22');
    breaker.recordFailure('connect ECONNREFUSED 127.0.0.1:22');
    assert.equal((await row(false)).lastError, 'connect ECONNREFUSED 127.0.0.1:22', 'failing now: its error');
    breaker.recordSuccess();
    const recovered = await row(true);
    assert.equal(recovered.connected, true);
    assert.equal(recovered.lastError, null, 'connected again: the old error is not shown as if it were current');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
