// MCP against a real SSH host (test/fleet/fleet.ts): run_command reaches it through the daemon's pooled
// connection, over stdio (the session handed to the daemon) and over HTTPS, and list_hosts checks it.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFleet, type Fleet } from '../fleet/fleet.js';
import { remux, tempHome } from '../support/cli.js';
import { addPrincipal, call, daemonUrl, httpClient, stdioClient, writeHome } from './support.js';

describe('MCP tools on a real SSH host', { timeout: 120_000 }, () => {
  let fleet: Fleet;
  const h = tempHome();
  const env = (): Record<string, string> => ({ ...h.env, REMUX_KNOWN_HOSTS: fleet.knownHostsFile });
  let token = '';
  let url = '';

  before(async () => {
    fleet = await startFleet({ count: 1 });
    writeHome(h.home);
    // A cut host is given up on quickly.
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: ops\nssh:\n  connect_timeout_seconds: 1\n  keepalive_interval_seconds: 1\n');
    const host = fleet.hosts[0]!;
    const added = await remux(['hosts', 'add', host.name, `${host.user}@${host.address}`, '--port', String(host.port), '--identity', host.identityFile, '--label', 'env=test'], { env: env() });
    assert.equal(added.code, 0, added.stderr);
    token = await addPrincipal(env(), 'ops', '--hosts', 'env=test');
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: env() });
    assert.equal(started.code, 0, started.stderr);
    url = new URL('mcp', await daemonUrl(env())).href;
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: env() });
    await fleet?.stop();
    h.remove();
  });

  test('over stdio through the daemon: the command runs on the host (its sshd saw us), a denied one does not', async () => {
    const host = fleet.hosts[0]!;
    const { client } = await stdioClient(env());
    try {
      const r = await call(client, 'run_command', { host: 'h1', command: 'printenv RMXF_HOST SSH_CONNECTION' });
      assert.equal(r.data.outcome, 'ok', r.text);
      const [name, connection] = r.data.stdout.trim().split('\n');
      assert.equal(name, 'h1');
      assert.equal(connection?.split(' ')[2], host.address, 'the SSH server address the session saw is the host\'s');
      const denied = await call(client, 'run_command', { host: 'h1', command: 'rm -f /tmp/x' });
      assert.equal(denied.result.isError, true);
      assert.match(denied.text, /nothing is removed through MCP/);
      const hosts = (await call(client, 'list_hosts', { check: true })).result.structuredContent as { hosts: Array<{ name: string; reachable: boolean | null; labels: Record<string, string> }> };
      assert.deepEqual(hosts.hosts.map((x) => [x.name, x.reachable]), [['localhost', true], ['h1', true]]);
      assert.deepEqual(hosts.hosts[1]!.labels, { env: 'test' });
    } finally {
      await client.close();
    }
  });

  test('over HTTPS as a scoped principal: the host in its scope runs, localhost is out of it', async () => {
    const ca = readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8');
    const client = await httpClient(url, ca, token);
    try {
      const r = await call(client, 'run_command', { host: 'h1', command: 'echo from h1', cwd: '/tmp' });
      assert.equal(r.data.stdout, 'from h1\n', r.text);
      const out = await call(client, 'run_command', { host: 'localhost', command: 'true' });
      assert.equal(out.result.isError, true);
      assert.match(out.text, /out of scope for ops/);
      const hosts = (await call(client, 'list_hosts', {})).result.structuredContent as { hosts: Array<{ name: string; reachable: boolean | null; detail: string | null }> };
      assert.deepEqual(hosts.hosts.map((x) => [x.name, x.reachable]), [['h1', true]], 'the daemon\'s pooled connection is up');
      assert.match(hosts.hosts[0]!.detail ?? '', /^connected \(last round trip \d+\.\d ms\)$/, 'the round trip rounded as `hosts list` shows it');
    } finally {
      await client.close();
    }
  });

  test('an unreachable host is a tool error saying so', async () => {
    const { client } = await stdioClient(env());
    await fleet.hosts[0]!.cut();
    try {
      const r = await call(client, 'run_command', { host: 'h1', command: 'true', timeout_s: 5 });
      assert.equal(r.result.isError, true);
      assert.equal(r.data.outcome, 'unreachable');
      assert.match(r.text, /^remux not run: .*h1/);
    } finally {
      await fleet.hosts[0]!.heal();
      await client.close();
    }
  });
});
