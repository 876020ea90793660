// `remux rpc HOST Exec.command`: what the command wrote is printed once it is over, as the bytes it wrote (as Exec.stream and `client run` print them), in this process and through the
// daemon; --json gives the SDK's strings.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { remux, remuxFed, tempHome } from '../support/cli.js';

const POLICIES = `policies:
  rt:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: "printf|head" }
      - { operation: read_file, resource: "/dev/zero" }
      - { operation: write_stdout }
`;

/** Bytes that are no UTF-8 (a lone 0xff, a cut-off sequence), and some that are. */
const BINARY = Buffer.from([0xff, 0xfe, 0x00, 0x41, 0xe2, 0x82, 0x0a, 0xc3, 0xa9]);
const printfOf = (bytes: Buffer): string => [...bytes].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');

describe('remux rpc HOST Exec.command prints the bytes the command wrote', { timeout: 120_000 }, () => {
  const h = tempHome();
  before(() => {
    writeFileSync(join(h.home, 'policies.yaml'), POLICIES);
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: rt\n');
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  const check = async (where: string, daemon: boolean): Promise<void> => {
    const env = daemon ? { ...h.env, REMUX_LAUNCHER_DEBUG: '1' } : h.env;
    const r = await remuxFed(['rpc', 'localhost', 'Exec.command', '--', 'printf', printfOf(BINARY)], Buffer.alloc(0), { env });
    assert.equal(r.code, 0, `${where}: ${r.stderr}`);
    assert.equal(/forwarding to the daemon/.test(r.stderr), daemon, r.stderr);
    // Not decoded on the way: no U+FFFD in place of what is not UTF-8.
    assert.deepEqual(r.stdout, BINARY, where);
    const big = await remuxFed(['rpc', 'localhost', 'Exec.command', '--', 'head', '-c', String(20 << 20), '/dev/zero'], Buffer.alloc(0), { env: h.env });
    assert.deepEqual([big.code, big.stdout.length, big.stdout.every((b) => b === 0)], [0, 20 << 20, true], `${where}: ${big.stderr}`);
    // --json: the SDK's result, its output as strings.
    const json = await remux(['rpc', 'localhost', 'Exec.command', '--json', '--', 'printf', 'a\\nb'], { env: h.env });
    assert.equal(json.code, 0, json.stderr);
    const line = JSON.parse(json.stdout) as { ok: boolean; value: { stdout: string; code: number } };
    assert.deepEqual([line.ok, line.value.stdout, line.value.code], [true, 'a\nb', 0], where);
  };

  test('in this process', () => check('in process', false));

  test('through the daemon', async () => {
    const started = await remux(['daemon', 'start'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
    await check('through the daemon', true);
  });
});
