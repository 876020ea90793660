// tmux sessions on an agent host with a real daemon (recording whole sessions) and a real `remux agent`
// process: a startup command runs in the OS sandbox the agent builds from both policies; keys sent are
// checked and audited by the agent as session.send, and a tmux user the agent does not list is refused
// there (77 at the gateway); the recorder's control client and its first-screen question are accepted, so the
// session is recorded from its creation; a console watch's first question (the session, its size) is accepted;
// what a browser pastes is held at the gateway while the agent's session has not taken it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { remux } from '../support/cli.js';
import { openTerminal } from '../support/console-daemon.js';
import { rssBytes } from '../support/procs.js';
import { AgentDaemon, waitFor, type AgentProcess } from './agent-process.js';

const me = userInfo().username;
const rules = `    capabilities:
      - { operation: execute_binary, resource: cat|sleep|echo }
      - { operation: write_stdout, resource: null }
`;
/** The gateway: static checks by default, the OS sandbox under `boxed`. */
const GATEWAY = `policies:\n  read_only:\n    sandbox: false\n${rules}  boxed:\n    sandbox: true\n${rules}`;
/** The agent's owner wants its sandbox for whatever runs there, its home (under /tmp) visible in it. */
const AGENT = `policies:\n  read_only:\n    sandbox: true\n${rules}      - { operation: read_file, resource: "/tmp/**" }\n`;

interface Listed {
  operation: string;
  principal: string;
  resource: string | null;
  decision: string;
  reason: string | null;
  recording: string | null;
  exitCode: number | null;
}

describe('tmux sessions on an agent host, checked by both sides', { timeout: 120_000 }, () => {
  const d = new AgentDaemon();
  let agent: AgentProcess | undefined;
  const audit = async (env: Record<string, string>): Promise<Listed[]> => {
    const r = await remux(['audit', 'ls', '--json', '--limit', '0'], { env });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Listed);
  };
  /** The agent machine's tmux server of these tests (the gateway names its socket for the agent host). */
  const socket = join(d.ag.home, 'tmux.sock');
  /** The pane's process on the agent's machine, as its argv. */
  const paneArgv = (session: string): string[] => {
    const pid = execFileSync('tmux', ['-S', socket, 'list-panes', '-t', `=${session}`, '-F', '#{pane_pid}'], { encoding: 'utf8' }).trim();
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  };
  const session = (...args: string[]): Promise<Awaited<ReturnType<typeof remux>>> => remux(['session', ...args], { env: d.gw.env });

  before(async () => {
    await d.setUp({ gatewayPolicies: GATEWAY, agentPolicies: AGENT, gatewayConfig: 'sessions: { sweep_interval_seconds: 3600, record: sessions }\n' });
    editHosts((text) => text.replace('    transport: agent\n', `    transport: agent\n    tmux_socket: ${socket}\n`));
    agent = await d.connectAgent();
  });
  after(async () => {
    try {
      execFileSync('tmux', ['-S', socket, 'kill-server'], { stdio: 'ignore' });
    } catch {
      // no server left
    }
    await d.tearDown(agent);
  });
  const editHosts = (edit: (text: string) => string): void => {
    const file = join(d.gw.home, 'hosts.yaml');
    writeFileSync(file, edit(readFileSync(file, 'utf8')));
  };

  test('a startup command runs in the OS sandbox the agent builds: the gateway\'s and its own policy\'s', async () => {
    // The gateway asks for the sandbox (boxed), or not (read_only): the agent's own policy asks either way.
    for (const [name, policy] of [['boxed', 'boxed'], ['plain', 'read_only']] as const) {
      const made = await session('new', name, '--host', 'laptop', '-c', 'sleep 60', '--policy', policy);
      assert.equal(made.code, 0, made.stderr);
      const argv = paneArgv(name);
      assert.match(argv[0]!, /bwrap$/, `the pane runs bubblewrap: ${argv.join(' ')}`);
      // The startup command as the gateway rendered it for sh, run by sh inside; bwrap's options come
      // through a descriptor (--args), out of sight of the pane's processes.
      assert.deepEqual(argv.slice(1), ['--args', '9', '--', '/bin/sh', '-c', "'sleep' 60"]);
    }
    const reasons = (await audit(d.ag.env)).filter((a) => a.principal === 'agent:gateway-laptop' && a.operation === 'remux').map((a) => a.reason);
    assert.equal(reasons.filter((r) => /OS sandbox \(bubblewrap\) of both policies/.test(r ?? '')).length, 2, JSON.stringify(reasons));
  });

  test('keys: typed into the session, checked and audited by the agent as session.send; the session is recorded from its start', async () => {
    const made = await session('new', 'keys', '--host', 'laptop', '-c', 'cat');
    assert.equal(made.code, 0, made.stderr);
    const sent = await session('send', 'keys', '--host', 'laptop', '--', 'typed-through-relay', 'Enter');
    assert.equal(sent.code, 0, sent.stderr);
    await waitFor('the keys to reach cat', async () => (await session('capture', 'keys', '--host', 'laptop')).stdout.includes('typed-through-relay'));
    const sends = (await audit(d.ag.env)).filter((a) => a.operation === 'session.send');
    assert.deepEqual(
      sends.map((a) => [a.principal, a.resource, a.decision, a.exitCode]),
      [['agent:gateway-laptop', `${me}@localhost:keys`, 'allow', 0]],
    );
    // The recorder's control client and its first screen ran on the agent: the keys' echo is in the recording.
    const record = (await audit(d.gw.env)).find((a) => a.operation === 'session.record' && a.resource === `${me}@laptop:keys`);
    assert.ok(record?.recording, 'the session is being recorded');
    await waitFor('the echo in the recording', () => Promise.resolve(readFileSync(join(d.gw.home, 'recordings', `${record.recording}.cast`), 'utf8').includes('typed-through-relay')));
  });

  test("a watch in the console attaches through the agent: its question (the session is there, its size) is one of remux's own", async () => {
    const added = await remux(['principal', 'add', 'web', '--admin', '--json'], { env: d.gw.env });
    assert.equal(added.code, 0, added.stderr);
    const headers = { authorization: `Bearer ${(JSON.parse(added.stdout) as { token: string }).token}` };
    const daemon = { url: `${d.url.replace('wss://', 'https://')}/`, ca: readFileSync(d.caFile, 'utf8') };
    const watch = await openTerminal(daemon, { host: 'laptop', name: 'keys', readOnly: 'true' }, headers);
    assert.equal(watch.control[0]?.type, 'ready', JSON.stringify(await Promise.race([watch.closed, sleep(100)])));
    assert.ok(watch.control[0]?.size, 'at the session\'s size');
    await watch.shows(/typed-through-relay/);
    watch.ws.close();
    const missing = await openTerminal(daemon, { host: 'laptop', name: 'nope' }, headers);
    const closed = await missing.closed;
    assert.equal(closed.code, 4004);
    assert.match(closed.reason, /^no session "nope" on laptop/);
  });

  test('input a session on the agent has not taken holds the browser back at the gateway: the agent\'s memory does not grow', async () => {
    const made = await session('new', 'deaf', '--host', 'laptop', '-c', 'sleep 600');
    assert.equal(made.code, 0, made.stderr);
    const added = await remux(['principal', 'add', 'typist', '--admin', '--json'], { env: d.gw.env });
    assert.equal(added.code, 0, added.stderr);
    const headers = { authorization: `Bearer ${(JSON.parse(added.stdout) as { token: string }).token}` };
    const daemon = { url: `${d.url.replace('wss://', 'https://')}/`, ca: readFileSync(d.caFile, 'utf8') };
    const t = await openTerminal(daemon, { host: 'laptop', name: 'deaf' }, headers);
    assert.equal(t.control[0]?.type, 'ready', JSON.stringify(t.control));
    const before = rssBytes(agent!.child.pid!);
    // 64 MiB of pastes: tmux on the agent takes keys about a MiB a second, so nearly all of it waits.
    // Passed on whole, it all waited in the agent's memory. (One line: the pane echoes the first 4 KiB of
    // it, so the output this client does not acknowledge never stops the attach.)
    const paste = JSON.stringify({ type: 'input', data: 'x'.repeat((1 << 20) - 64) });
    for (let i = 0; i < 64; i++) t.ws.send(paste);
    await sleep(3000);
    const grew = rssBytes(agent!.child.pid!) - before;
    assert.ok(grew < 32 << 20, `the agent grew by ${(grew / 2 ** 20).toFixed(1)} MiB holding input`);
    assert.ok(t.ws.readyState === WebSocket.OPEN && t.ws.bufferedAmount > 16 << 20, `the browser still holds its input (${t.ws.bufferedAmount} bytes): the gateway stopped reading it`);
    t.ws.terminate();
    execFileSync('tmux', ['-S', socket, 'kill-session', '-t', '=deaf']);
  });

  test('a tmux user the gateway lists but the agent does not: refused by the agent, 77 at the gateway, audited there', async () => {
    editHosts((text) => text.replace('    transport: agent\n', `    transport: agent\n    tmux_users: [${me}, nobody]\n`));
    const sent = await session('send', 'keys', '--host', 'laptop', '--user', 'nobody', '--', 'id', 'Enter');
    assert.equal(sent.code, 77, sent.stderr);
    assert.match(sent.stderr, /agent laptop refused it: tmux user nobody is not one of this agent's tmux users \(/);
    const denied = (await audit(d.ag.env)).find((a) => a.decision === 'deny' && /nobody/.test(JSON.stringify(a)));
    assert.ok(denied, 'the agent recorded its refusal');
    const made = await session('new', 'as-nobody', '--host', 'laptop', '--user', 'nobody');
    assert.equal(made.code, 77, made.stderr);
  });
});
