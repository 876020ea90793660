// End-to-end: the daemon serving the CLI on this machine (the fleet tests cover SSH hosts).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertSlowClientHoldsCommand } from '../support/backpressure.js';
import { remux, tempHome } from '../support/cli.js';

// Static checks only: the caller's directory (which this policy's paths do not cover) must show through.
const POLICY = `policies:
  read_only:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: echo|pwd|true|head }
      - { operation: read_file, resource: /dev/zero }
      - { operation: write_stdout, resource: null }
`;

describe('remux daemon with the local host', () => {
  const h = tempHome();
  before(async () => {
    writeFileSync(join(h.home, 'policies.yaml'), POLICY);
    const r = await remux(['daemon', 'start'], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^started: pid \d+/);
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  test('client run with a daemon runs in the caller\'s directory and is audited', async () => {
    const r = await remux(['client', 'run', 'localhost', '--', 'pwd'], { env: h.env, cwd: h.home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), h.home, 'the local host starts in the client\'s cwd, not the daemon\'s');
    const status = JSON.parse((await remux(['daemon', 'status', '--json'], { env: h.env })).stdout) as { running: boolean; pid: number };
    assert.equal(status.running, true);
    assert.ok(status.pid > 0);
    const audit = await remux(['audit', 'ls', '--json'], { env: h.env });
    assert.match(audit.stdout, /"command":"pwd"/);
  });

  test('a client that stops reading stops the command: the daemon does not buffer its output; nothing is lost', async () => {
    await assertSlowClientHoldsCommand(h.env, 'localhost');
  });

  test('a client whose environment names another policies file is refused, not silently served', async () => {
    const other = join(h.home, 'other-policies.yaml');
    writeFileSync(other, POLICY.replace('echo|pwd|true', 'echo'));
    const env = { ...h.env, REMUX_POLICY_CONFIG: other };
    const r = await remux(['client', 'run', 'localhost', '--', 'true'], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /the running daemon uses policies/);
    assert.match(r.stderr, /--no-daemon/);
    const inProcess = await remux(['client', 'run', 'localhost', '--no-daemon', '--', 'true'], { env });
    assert.equal(inProcess.code, 77, 'in-process, the named policies apply: true is not allowed there');
  });

  test('a second start reports the running daemon; stop then start again works', async () => {
    const again = await remux(['daemon', 'start'], { env: h.env });
    assert.match(again.stdout, /already running/);
    assert.equal((await remux(['daemon', 'stop'], { env: h.env })).code, 0);
    assert.equal((await remux(['daemon', 'status'], { env: h.env })).code, 3);
    const restarted = await remux(['daemon', 'start'], { env: h.env });
    assert.equal(restarted.code, 0, restarted.stderr);
    const r = await remux(['client', 'run', 'local', '--', 'echo back'], { env: h.env });
    assert.equal(r.stdout, 'back\n');
  });
});

test('a console address already taken: the daemon does not start, and says what to do', async () => {
  const h = tempHome();
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as AddressInfo).port;
  try {
    writeFileSync(join(h.home, 'policies.yaml'), POLICY);
    assert.equal((await remux(['principal', 'add', 'admin', '--admin'], { env: h.env })).code, 0);
    const r = await remux(['daemon', 'start', '--listen', `127.0.0.1:${port}`], { env: h.env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`remux: cannot serve on 127\\.0\\.0\\.1:${port}: address in use \\(EADDRINUSE\\): something else listens there .*; stop it, or start with --listen 127\\.0\\.0\\.1:${port + 1}`));
    assert.equal((await remux(['daemon', 'status'], { env: h.env })).code, 3, 'nothing left running');
  } finally {
    taken.close();
    h.remove();
  }
});
