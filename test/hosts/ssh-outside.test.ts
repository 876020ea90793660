// Stages let out of the sandbox (execute_binary rules with sandbox: false) on an SSH host with bubblewrap:
// in `ps ax | grep …`, ps sees the host's processes while grep stays in the sandbox, whether the host
// keeps a long-lived sandbox (holder) or starts a bwrap per command, over a channel or the resident executor.
import assert from 'node:assert/strict';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseCommand } from '../../src/command/parser.js';
import type { SandboxSpec } from '../../src/exec/types.js';
import type { SshHostEntry } from '../../src/hosts/inventory.js';
import { ConnectionPool, type PoolOptions } from '../../src/hosts/pool.js';
import type { Host } from '../../src/hosts/types.js';
import { type Fleet, type FleetHost, startFleet } from '../fleet/fleet.js';

const isRoot = process.getuid?.() === 0;
const MARKER = `remux-ssh-hidden-${process.pid}`;

let fleet: Fleet;
let h1: FleetHost;
let box: string;
let secretDir: string;
const pools: ConnectionPool[] = [];

before(async () => {
  // Holders need more sessions than a command.
  fleet = await startFleet({ count: 1, maxSessions: 6 });
  h1 = fleet.hosts[0] as FleetHost;
  box = mkdtempSync(join(fleet.dir, 'box-'));
  secretDir = mkdtempSync(join(fleet.dir, 'secret-'));
  writeFileSync(join(secretDir, 'key'), `${MARKER}\n`);
  symlinkSync(join(secretDir, 'key'), join(box, 'key-link'));
  writeFileSync(join(box, 'plain'), 'sleep 23456 in a file\n');
});
after(async () => {
  await Promise.all(pools.map((p) => p.closeAll()));
  await fleet.stop();
});

function host(opts: PoolOptions): Host {
  const p = new ConnectionPool({ knownHostsFile: fleet.knownHostsFile, maxChannels: 6, connectTimeoutMs: 5000, ...opts });
  pools.push(p);
  const entry: SshHostEntry = { name: h1.name, transport: 'ssh', address: h1.address, port: h1.port, user: h1.user, auth: { method: 'identity', file: h1.identityFile }, labels: {}, jump: null, builtin: false };
  return p.host(entry);
}

async function run(target: Host, command: string, outside: number[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const sandbox: SandboxSpec = { read: [box], write: [], hide: [], readOnly: [], network: false, owner: 'tester' };
  let stdout = '';
  let stderr = '';
  const r = await target.execute({
    list: parseCommand(command),
    cwd: box,
    timeoutMs: 30_000,
    pipefail: false,
    output: { maxBytes: null, redact: [], redactBlocks: [] },
    sandbox,
    outside,
    onStdout: (c) => (stdout += c.toString()),
    onStderr: (c) => (stderr += c.toString()),
  });
  return { code: r.exitCode, stdout, stderr };
}

const MODES: Array<[string, PoolOptions]> = [
  ['a long-lived sandbox, through the resident executor', { residentExecutor: 'always' }],
  ['a long-lived sandbox, over a channel', { residentExecutor: 'off' }],
  ['a bwrap per command', { sandboxHolders: false, residentExecutor: 'off' }],
];

for (const [mode, opts] of MODES) {
  describe(`stages outside the sandbox on an SSH host: ${mode}`, { skip: !isRoot && 'long-lived sandboxes need a root login' }, () => {
    test("ps ax sees the host's process, grep in the same pipeline stays in the sandbox", async () => {
      const sleeper = h1.spawn(['sleep', '23456']);
      try {
        const target = host(opts);
        await target.sandboxSupport();
        // Across pipelines: stage 1 is ps. grep -R follows key-link, which leads nowhere inside.
        const command = `cat plain && ps ax | grep -R -e 'sleep 23456' -e ${MARKER} - ${box}`;
        const r = await run(target, command, [1]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stdout, /^sleep 23456 in a file\n/);
        assert.match(r.stdout, /^\(standard input\):.*\bsleep 23456$/m, r.stdout);
        assert.ok(!r.stdout.includes(`key-link:${MARKER}`), `grep ran outside the sandbox:\n${r.stdout}`);
        assert.match(r.stderr, /key-link: No such file or directory/);
        // Without the stage let out, ps sees only the sandbox.
        const inside = await run(target, `ps ax | grep -c 'sleep 2345[6]'`, []);
        assert.equal(inside.stdout, '0\n', inside.stderr);
      } finally {
        sleeper.kill();
      }
    });

    test("a sandboxed stage's redirection is opened inside the sandbox", async () => {
      const target = host(opts);
      await target.sandboxSupport();
      // Opened outside, it would lead to the secret: grep would count its line.
      const r = await run(target, `ps ax | grep -c ${MARKER} < ${box}/key-link`, [0]);
      assert.notEqual(r.code, 0, r.stdout);
      assert.equal(r.stdout, '');
    });
  });
}
