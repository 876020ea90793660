// README, "Security notes": commands run with a minimal environment, so tokens and keys in the caller's
// environment never reach them. A secret in the environment of every process this test starts (the CLI,
// the daemon, the user's tmux server, an outbound agent: as when each is started from a shell that holds it),
// and REMUX_TOKEN in the caller's, must not show in what a command sees: run here (sandboxed or not),
// through the daemon, in a tmux pane, and on an outbound agent's machine. (Over SSH: cli-fleet.test.ts.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_SECURE_PATH } from '../../src/config/config.js';
import { remux, tempHome } from '../support/cli.js';
import { AgentDaemon } from '../relay/agent-process.js';

const SECRET = `leak-${randomBytes(8).toString('hex')}`;
process.env.LEAK_TEST_SECRET = SECRET;

/** What a command run directly (no shell, no tmux) may find in its environment, and TMUX_TMPDIR outside a sandbox. */
const PASSED = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TERM'];

const POLICIES = `policies:
  open:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: env|sh|sleep|echo }
      - { operation: write_stdout, resource: null }
  boxed:
    capabilities:
      - { operation: execute_binary, resource: env|sh|sleep|echo }
      - { operation: write_stdout, resource: null }
`;

/** `env`'s output as name → value. */
function parseEnv(text: string): Map<string, string> {
  return new Map(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

function assertMinimal(text: string, what: string, extra: string[] = []): void {
  assert.ok(!text.includes(SECRET), `${what}: the caller's secret reached the command:\n${text}`);
  assert.doesNotMatch(text, /rmx_/, `${what}: a token reached the command`);
  const env = parseEnv(text);
  assert.equal(env.get('PATH'), DEFAULT_SECURE_PATH, what);
  assert.deepEqual([...env.keys()].filter((n) => !PASSED.includes(n) && !extra.includes(n)), [], what);
}

describe('the minimal environment on this machine', () => {
  const h = tempHome();
  const socket = join(h.home, 'tmux.sock');
  let env: Record<string, string> = {};
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });

  before(async () => {
    const init = await remux(['config', 'init', '--json'], { env: { ...h.env, HOME: h.home } });
    assert.equal(init.code, 0, init.stderr);
    writeFileSync(join(h.home, 'policies.yaml'), POLICIES);
    writeFileSync(join(h.home, 'hosts.yaml'), `hosts:\n  box:\n    transport: local\n    tmux_socket: ${socket}\n`);
    writeFileSync(join(h.home, 'config.yaml'), 'sessions: { sweep_interval_seconds: 3600 }\n');
    const token = /rmx_[A-Za-z0-9_-]+/.exec(init.stdout + init.stderr)?.[0];
    assert.ok(token, init.stdout);
    // The caller acts as admin with its token: the token is in its environment like any other secret.
    env = { ...h.env, HOME: h.home, TMUX_TMPDIR: join(h.home, 'tmux'), REMUX_TOKEN: token };
    // The user's own tmux server, started from a shell that holds the secret: remux's panes are made in it.
    tmux('new-session', '-d', '-s', 'users-own', 'sleep 600');
    assert.match(tmux('show-environment', '-g'), new RegExp(`^LEAK_TEST_SECRET=${SECRET}$`, 'm'));
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env });
    try {
      tmux('kill-server');
    } catch {
      // none runs
    }
    for (let i = 0; i < 100 && existsSync(socket); i++) await sleep(10);
    h.remove();
  });

  for (const via of ['in process', 'through the daemon'] as const) {
    test(`client run, ${via}: sandboxed and not`, async () => {
      if (via === 'through the daemon') assert.equal((await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env })).code, 0);
      const daemon = via === 'in process' ? ['--no-daemon'] : [];
      for (const policy of ['open', 'boxed']) {
        const r = await remux(['client', 'run', 'localhost', '-p', policy, ...daemon, '--', 'env'], { env });
        assert.equal(r.code, 0, r.stderr);
        assertMinimal(r.stdout, `${via}, ${policy}`, policy === 'open' ? ['TMUX_TMPDIR'] : []);
      }
    });
  }

  test('a tmux pane, with and without the sandbox, made in process and by the daemon', async () => {
    for (const [name, policy, daemon] of [['p1', 'open', '--no-daemon'], ['p2', 'boxed', '--no-daemon'], ['p3', 'open', null], ['p4', 'boxed', null]] as const) {
      const made = await remux(['session', 'new', name, '--host', 'box', '-p', policy, ...(daemon ? [daemon] : []), '--cmd', "sh -c 'env; echo env-done; sleep 60'"], { env });
      assert.equal(made.code, 0, made.stderr);
      // The shell adds PWD; outside the sandbox tmux's TMUX and TMUX_PANE stay. Nothing of the tmux server's own environment.
      assertMinimal(await paneEnv(socket, name), `pane ${name} (${policy})`, ['PWD', 'SHLVL', '_', ...(policy === 'open' ? ['TMUX', 'TMUX_PANE'] : [])]);
    }
  });
});

/** Polls the pane of `session` on the tmux server at `socket` until its startup command printed env-done: what env printed. */
async function paneEnv(socket: string, session: string): Promise<string> {
  let pane = '';
  for (let i = 0; i < 100 && !/^env-done$/m.test(pane); i++, await sleep(50)) pane = execFileSync('tmux', ['-S', socket, 'capture-pane', '-p', '-J', '-S', '-', '-t', `=${session}:`], { encoding: 'utf8' });
  assert.match(pane, /^env-done$/m);
  return pane.slice(0, pane.indexOf('env-done'));
}

describe('the minimal environment on an outbound agent', () => {
  const d = new AgentDaemon();
  const socket = join(d.ag.home, 'tmux.sock');
  let agent: Awaited<ReturnType<AgentDaemon['connectAgent']>> | undefined;
  before(async () => {
    // The agent runs what it is sent under its own default_policy (read_only), without a sandbox unless the gateway's policy asks for one.
    await d.setUp({ gatewayPolicies: POLICIES, agentPolicies: POLICIES.replace('  open:', '  read_only:') });
    const hosts = join(d.gw.home, 'hosts.yaml');
    writeFileSync(hosts, readFileSync(hosts, 'utf8').replace('    transport: agent\n', `    transport: agent\n    tmux_socket: ${socket}\n`));
    // The agent's user's own tmux server, started from a shell that holds the secret.
    execFileSync('tmux', ['-S', socket, 'new-session', '-d', '-s', 'users-own', 'sleep 600']);
    agent = await d.connectAgent();
  });
  after(async () => {
    try {
      execFileSync('tmux', ['-S', socket, 'kill-server']);
    } catch {
      // none runs
    }
    for (let i = 0; i < 100 && existsSync(socket); i++) await sleep(10);
    await d.tearDown(agent);
  });

  test("the agent's commands see none of the agent's or the gateway client's secrets, sandboxed or not", async () => {
    for (const policy of ['open', 'boxed']) {
      const r = await remux(['client', 'run', 'laptop', '-p', policy, '--', 'env'], { env: d.gw.env });
      assert.equal(r.code, 0, r.stderr);
      assertMinimal(r.stdout, `agent, ${policy}`, ['TMUX_TMPDIR']);
    }
  });

  test("a pane the agent makes outside the sandbox gets none of its tmux server's environment", async () => {
    const made = await remux(['session', 'new', 'pa', '--host', 'laptop', '-p', 'open', '--cmd', "sh -c 'env; echo env-done; sleep 60'"], { env: d.gw.env });
    assert.equal(made.code, 0, made.stderr);
    assertMinimal(await paneEnv(socket, 'pa'), 'agent pane', ['PWD', 'SHLVL', '_', 'TMUX', 'TMUX_PANE']);
  });
});
