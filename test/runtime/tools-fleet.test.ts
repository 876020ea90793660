// Built-in tools over real SSH (the test fleet's sshd hosts): their code goes over the pooled exec
// channel, and `remux rpc` fans a tool call out with its --options and a changed/ok summary. Service
// runs a fake systemctl (this machine has no systemd; test/support/fake-programs.ts) first on the
// configured secure_path, its state kept per host; Logger's records come back over the channel.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_SECURE_PATH } from '../../src/config/config.js';
import { type GatewayContext } from '../../src/core/context.js';
import { connect, Logger, Service, type LogRecord } from '../../src/runtime/index.js';
import { remux } from '../support/cli.js';
import { fakeSystemctl } from '../support/fake-programs.js';
import { startFleetHome, type FleetHome } from '../support/runtime.js';

describe('built-in tools over SSH', { timeout: 120_000 }, () => {
  let f: FleetHome;
  let ctx: GatewayContext;
  const fake = mkdtempSync(join(tmpdir(), 'remux-fake-'));
  const env = (): Record<string, string> => f.env();

  before(async () => {
    mkdirSync(join(fake, 'bin'));
    // Each fleet host's sessions carry RMXF_HOST: one unit state per host on this shared filesystem.
    writeFileSync(join(fake, 'bin/systemctl'), fakeSystemctl(`${join(fake, 'state')}/$RMXF_HOST`));
    chmodSync(join(fake, 'bin/systemctl'), 0o755);
    f = await startFleetHome({
      policies: 'policies:\n  svc:\n    sandbox: false\n    capabilities:\n      - { operation: execute_binary, resource: "systemctl" }\n',
      config: `default_policy: svc\nexec:\n  secure_path: ${join(fake, 'bin')}:${DEFAULT_SECURE_PATH}\n`,
    });
    ctx = await f.context();
  });
  after(async () => {
    await f?.stop();
    rmSync(fake, { recursive: true, force: true });
  });

  test('remux rpc fans Service.converge out with its options: every host changed, then none', async () => {
    const first = await remux(['rpc', 'env=prod', 'Service.converge', 'nginx', '--started', 'true', '--enabled', 'true'], { env: env() });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^h1: \{"changed":true,"active":true,"enabled":true\}$/m);
    assert.match(first.stdout, /^h2: \{"changed":true,"active":true,"enabled":true\}$/m);
    assert.match(first.stderr, /2 hosts: 2 changed, 2 ok, 0 failed, 0 denied, 0 unreachable/);
    const again = await remux(['rpc', 'env=prod', 'Service.converge', 'nginx', '--started', 'true', '--enabled', 'true'], { env: env() });
    assert.match(again.stderr, /2 hosts: 0 changed, 2 ok, 0 failed, 0 denied, 0 unreachable/);
  });

  test('over the pooled channel: a Service call audited with what it ran; Logger records come back', async () => {
    const logs: LogRecord[] = [];
    const host = await connect('h1', { context: ctx, securePath: ctx.config.exec.secure_path, onLog: (r) => logs.push(r) });
    try {
      assert.deepEqual(await host.call(Service.stop, 'nginx'), { changed: true, active: false, enabled: true });
      await host.call(Logger.log, 'warning', 'over ssh');
      assert.deepEqual(logs.map((r) => [r.level, r.msg]), [['WARNING', 'over ssh']]);
      const record = ctx.audit.list().find((a) => a.begin.host === 'h1' && a.begin.command === 'Service.stop');
      assert.deepEqual([record?.begin.operation, record?.begin.resource, record?.end?.exitCode], ['execute_binary', join(fake, 'bin/systemctl'), 0]);
    } finally {
      await host.close();
    }
  });
});
