// The README's "Exit codes" table through the real binary, for the rows no other test pins at the CLI:
// a stage killed by a signal (128+N) and a timeout (124), in process and through a daemon; several hosts
// (0, else 255 if any was unreachable, 77 if any was denied, 1 if any failed); a selector that picks
// nothing (2, said once by a batch); a scoped principal's list naming a host outside its scope (77).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../support/free-port.js';
import { runningWithArg } from '../support/procs.js';
import { remux, spawnRemux, tempHome } from '../support/cli.js';
import { until } from '../support/until.js';

const POLICIES = `policies:
  t:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: sleep|true|false|mkdir }
      - { operation: write_file, resource: "\${DATA}/**" }
      - { operation: write_stdout, resource: null }
  asks:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: "true", effect: ask }
      - { operation: write_stdout, resource: null }
`;

// Two names for this machine, and one nothing answers on (port 1; no key either).
const HOSTS = 'hosts:\n  a: { transport: local }\n  b: { transport: local }\n  dead: { address: 127.0.0.1, port: 1 }\n';

describe('exit codes of client run and batch', () => {
  const h = tempHome();
  const data = join(h.home, 'data');
  // No ssh-agent and no key in HOME: dead is unreachable at once, whoever runs the test.
  const env = { ...h.env, DATA: data, HOME: h.home, SSH_AUTH_SOCK: undefined };
  let botToken = '';

  before(async () => {
    mkdirSync(data);
    writeFileSync(join(h.home, 'policies.yaml'), POLICIES);
    writeFileSync(join(h.home, 'hosts.yaml'), HOSTS);
    writeFileSync(join(h.home, 'config.yaml'), `default_policy: t\nhttp:\n  listen: 127.0.0.1:${await freePort()}\n`);
    const bot = await remux(['principal', 'add', 'bot', '--hosts', 'a', '--policy', 't', '--json'], { env });
    assert.equal(bot.code, 0, bot.stderr);
    botToken = (JSON.parse(bot.stdout) as { token: string }).token;
  });
  after(() => h.remove());

  /** `client run localhost -- sleep SECONDS` killed with `signal` once it runs: remux's exit status. */
  async function killedStage(seconds: string, signal: NodeJS.Signals): Promise<number | null> {
    const child = spawnRemux(['client', 'run', 'localhost', '--', `sleep ${seconds}`], { env });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const [pid] = await until(`sleep ${seconds} to run`, () => {
      const pids = runningWithArg(seconds, 'sleep');
      return pids.length > 0 && pids;
    });
    process.kill(pid!, signal);
    return exited;
  }

  for (const via of ['in process', 'through a daemon'] as const) {
    describe(via, () => {
      before(async () => {
        if (via === 'through a daemon') assert.equal((await remux(['daemon', 'start'], { env })).code, 0);
      });
      after(async () => {
        if (via === 'through a daemon') await remux(['daemon', 'stop'], { env });
      });

      test('a stage killed by signal N gives 128+N (SIGKILL 137, SIGTERM 143)', async () => {
        const tag = via === 'in process' ? '1' : '2';
        assert.equal(await killedStage(`47.1${tag}`, 'SIGKILL'), 137);
        assert.equal(await killedStage(`47.2${tag}`, 'SIGTERM'), 143);
      });

      test('a timeout gives 124 and says so; in a batch too', async () => {
        const r = await remux(['client', 'run', 'localhost', '--timeout', '0.5', '--', 'sleep 5'], { env });
        assert.deepEqual([r.code, r.stderr], [124, 'remux: timed out; the process group was killed\n']);
        const batch = await remux(['client', 'batch', 'localhost', '--timeout', '0.5', '-f', '-', '--json'], { env, input: 'true\nsleep 5\n' });
        assert.equal(batch.code, 124, batch.stderr);
        const lines = batch.stdout.trim().split('\n').map((l) => JSON.parse(l) as { exitCode: number; timedOut: boolean });
        assert.deepEqual(lines.map((l) => [l.exitCode, l.timedOut]), [[0, false], [124, true]]);
      });
    });
  }

  test('several hosts: 1 if any failed, 255 if any was unreachable (before failed); the summary says which', async () => {
    // mkdir succeeds on exactly one of two hosts that are both this machine.
    const failed = await remux(['client', 'run', 'a,b', '--no-daemon', '--', `mkdir ${data}/once`], { env });
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /^2 hosts: 1 ok, 1 failed, 0 denied, 0 unreachable$/m);
    const unreachable = await remux(['client', 'run', 'a,b,dead', '--no-daemon', '--', `mkdir ${data}/twice`], { env });
    assert.equal(unreachable.code, 255, unreachable.stderr);
    assert.match(unreachable.stderr, /^3 hosts: 1 ok, 1 failed, 0 denied, 1 unreachable$/m);
    const ok = await remux(['client', 'run', 'a,b', '--no-daemon', '--', 'true'], { env });
    assert.equal(ok.code, 0, ok.stderr);
  });

  test('several hosts: 77 if any was denied (here an approval refused on one host), 255 still before it', async () => {
    for (const [selector, code] of [['a,b', 77], ['a,b,dead', 255]] as const) {
      const child = spawnRemux(['client', 'run', selector, '--no-daemon', '-p', 'asks', '--', 'true'], { env });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      let open: Array<{ id: string; host: string }> = [];
      for (const deadline = Date.now() + 15_000; open.length < 2; await sleep(100)) {
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          assert.fail(`both questions were not asked: ${stderr}`);
        }
        open = JSON.parse((await remux(['approvals', 'ls', '--json'], { env })).stdout) as typeof open;
      }
      for (const q of open) assert.equal((await remux(['approvals', q.host === 'a' ? 'approve' : 'deny', q.id], { env })).code, 0);
      assert.equal(await exited, code, stderr);
      assert.match(stderr, new RegExp(`^${selector.split(',').length} hosts: 1 ok, 0 failed, 1 denied, ${code === 255 ? 1 : 0} unreachable$`, 'm'));
    }
  });

  test('a list, glob or label selector that picks nothing is 2; a single unknown name 255; a batch says it once and stops', async () => {
    for (const [selector, code, said] of [['a,nosuch', 2, 'no host named "nosuch"'], ['zz*', 2, 'no host matches "zz*"'], ['env=prod', 2, 'no host matches "env=prod"'], ['nosuch', 255, 'no host named "nosuch"']] as const) {
      const r = await remux(['client', 'run', selector, '--no-daemon', '--', 'true'], { env });
      assert.equal(r.code, code, selector);
      assert.match(r.stderr, new RegExp(`^remux: ${said.replace('*', '\\*')};`), selector);
      const batch = await remux(['client', 'batch', selector, '--no-daemon', '-f', '-'], { env, input: 'true\ntrue\ntrue\n' });
      assert.equal(batch.code, code, selector);
      assert.match(batch.stderr, new RegExp(`^remux: ${said.replace('*', '\\*')};`), 'the selection error comes first');
      assert.equal(batch.stderr.split(said).length - 1, 1, batch.stderr);
      assert.doesNotMatch(batch.stderr, /==>/, 'a progress line for a command that never ran');
    }
  });

  test("a scoped principal: a list naming a host outside its scope is refused whole (77), naming it, the local host too; a batch says it once", async () => {
    const as = { ...env, REMUX_TOKEN: botToken };
    assert.equal((await remux(['client', 'run', 'a', '--no-daemon', '--', 'true'], { env: as })).code, 0);
    for (const outside of ['b', 'localhost']) {
      const r = await remux(['client', 'run', `a,${outside}`, '--no-daemon', '--', `mkdir ${data}/scoped-${outside}`], { env: as });
      assert.deepEqual([r.code, r.stderr], [77, `remux: out of scope for bot: "${outside}" picks none of its hosts (a)\n`]);
      assert.equal(existsSync(join(data, `scoped-${outside}`)), false, 'it ran on a');
    }
    const batch = await remux(['client', 'batch', 'a,b', '--no-daemon', '-f', '-'], { env: as, input: 'true\ntrue\n' });
    assert.equal(batch.code, 77);
    assert.equal(batch.stderr, 'remux: out of scope for bot: "b" picks none of its hosts (a)\n', 'said once, with no progress line before it');
  });
});
