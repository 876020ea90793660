// The daemon watches `remux code` sessions: a permission prompt in an agent's pane becomes an approval,
// `remux code status` shows the session's state, and the approval's answer reaches the prompt as the
// keys it expects. Real daemon, real tmux (a private socket), the fake Claude-like prompt as the agent.
// Across a daemon restart the question stays the same one: taken over if its prompt is still there
// (answered meanwhile, the answer is typed then), withdrawn if not. After a crash, nothing was handed over:
// the next daemon withdraws the question nobody waits for and asks again about the prompt on screen.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { changeSessions, readSessions } from '../../src/agents/store.js';
import { processAlive } from '../../src/core/process.js';
import { REPO_ROOT, remux, tempHome } from '../support/cli.js';
import { endTmuxServer } from '../support/tmux.js';

const FAKE_PROMPT = join(REPO_ROOT, 'test', 'agents', 'fixtures', 'fake-prompt.mjs');

describe('the daemon watches agent sessions', { timeout: 120_000 }, () => {
  const t = tempHome();
  const socket = `remux-watch-${process.pid}`;
  const env = { ...t.env, REMUX_TMUX_SOCKET: socket };
  const work = mkdtempSync(join(tmpdir(), 'remux-watch-'));
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });

  before(async () => {
    assert.equal((await remux(['config', 'init'], { env })).code, 0);
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env });
    assert.equal(started.code, 0, started.stderr);
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env });
    endTmuxServer(socket);
    t.remove();
    rmSync(work, { recursive: true, force: true });
  });

  const status = async (id: string): Promise<string | undefined> => {
    const r = await remux(['code', 'status', '--json'], { env });
    return (JSON.parse(r.stdout) as Array<{ id: string; state: string }>).find((s) => s.id === id)?.state;
  };
  async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
    for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) {
      const v = await check();
      if (v !== undefined) return v;
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  test('a prompt becomes an approval and state permission; approving types the answer; the agent then waits', async () => {
    const made = await remux(['code', 'start', work, '--no-attach', '--sandbox', 'none', '-n', 'tests', '--agent', `env password=hunter2 node ${FAKE_PROMPT} 'npm test'`], { env, via: 'node' });
    assert.equal(made.code, 0, made.stderr);
    assert.doesNotMatch(made.stderr, /no daemon runs/, 'the daemon watches it');
    const id = made.stdout.split(' ')[0]!;
    const approval = await until('an approval for the prompt', async () => {
      const r = await remux(['approvals', 'ls', '--json'], { env });
      return (JSON.parse(r.stdout) as Array<{ id: string; what: string; principal: string; source: string; options: Array<{ id: string; label: string }> }>)[0];
    });
    assert.match(approval.what, new RegExp(`^answer the agent's prompt in agent session tests \\(${id}\\): `), 'a custom command: no profile name (generic) shown');
    assert.equal(approval.principal, `agent:${id}`, 'asked on behalf of the agent session, named as its hooks name it');
    // Where it comes from, as a person reads it (the console's "From"): not "agent:generic".
    assert.equal(approval.source, `the screen of agent session tests: env password=[REDACTED] node ${FAKE_PROMPT} 'npm test'`);
    assert.deepEqual(approval.options.map((o) => o.label), ['Yes', "Yes, and don't ask again for this command", 'No, and tell Claude what to do differently (esc)']);
    assert.equal(await until('state permission', async () => ((await status(id)) === 'permission' ? 'permission' : undefined)), 'permission');

    const answered = await remux(['approvals', 'answer', approval.id, approval.options[0]!.id], { env });
    assert.equal(answered.code, 0, answered.stderr);
    const pane = (): string => tmux('capture-pane', '-p', '-J', '-t', `=agent-${id}:`);
    await until('the answer on the screen', async () => (/chosen: 1 \(Yes\) for npm test/.test(pane()) ? true : undefined));
    assert.equal(await until('state waiting', async () => ((await status(id)) === 'waiting' ? 'waiting' : undefined)), 'waiting');
    const killed = await remux(['code', 'kill', id, '-f'], { env });
    assert.equal(killed.code, 0, killed.stderr);
  });

  test('daemon stop and start: the open question stays the one asked, answered even while no daemon ran; one whose prompt went meanwhile is withdrawn', async () => {
    const made = await remux(['code', 'start', work, '--no-attach', '--sandbox', 'none', '-n', 'restarts', '--agent', `node ${FAKE_PROMPT} 'make a' 'make b' 'make c'`], { env, via: 'node' });
    assert.equal(made.code, 0, made.stderr);
    const id = made.stdout.split(' ')[0]!;
    type Listed = { id: string; status: string; what: string; options: Array<{ id: string }> };
    const listed = async (): Promise<Listed[]> => (JSON.parse((await remux(['approvals', 'ls', '--all', '--json'], { env })).stdout) as Array<Listed & { principal: string }>).filter((a) => a.principal === `agent:${id}`);
    const asked = (command: string): Promise<Listed> => until(`the question about ${command}`, async () => (await listed()).find((a) => a.what.includes(command)));
    const pane = (): string => tmux('capture-pane', '-p', '-J', '-t', `=agent-${id}:`);
    const restart = async (meanwhile: () => Promise<void> | void = () => {}): Promise<void> => {
      const stopped = await remux(['daemon', 'stop'], { env });
      assert.equal(stopped.code, 0, stopped.stderr);
      await meanwhile();
      const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env });
      assert.equal(started.code, 0, started.stderr);
    };

    // Still on the screen: the same question, still open, and no second one; answered, its answer is typed.
    const a = await asked('make a');
    await restart();
    await sleep(2000); // the new daemon's watcher has looked at the screen (every 500 ms)
    assert.deepEqual((await listed()).map((x) => [x.id, x.status]), [[a.id, 'pending']], 'not withdrawn, not asked again');
    assert.match(readFileSync(join(t.home, 'run', 'daemon.log'), 'utf8'), /taking over 1 open question/);
    assert.equal((await remux(['approvals', 'answer', a.id, '1'], { env })).code, 0);
    await until('the answer typed', async () => (/chosen: 1 \(Yes\) for make a/.test(pane()) ? true : undefined));

    // Answered while no daemon ran: typed once the daemon is back.
    const b = await asked('make b');
    await restart(async () => {
      const answered = await remux(['approvals', 'answer', b.id, '2'], { env });
      assert.equal(answered.code, 0, answered.stderr);
    });
    await until('the answer given meanwhile typed', async () => (/chosen: 2 \(Yes, and don't ask again for this command\) for make b/.test(pane()) ? true : undefined));

    // Answered at the terminal while no daemon ran: withdrawn, not asked again.
    const c = await asked('make c');
    await restart(() => {
      tmux('send-keys', '-t', `=agent-${id}:`, '3');
    });
    await until('its withdrawal', async () => ((await listed()).find((x) => x.id === c.id)?.status === 'cancelled' ? true : undefined));
    assert.match(pane(), /chosen: 3 .* for make c/);
    assert.deepEqual((await listed()).map((x) => x.status), ['cancelled', 'answered', 'answered'], 'three prompts, three questions');
    const killed = await remux(['code', 'kill', id, '-f'], { env });
    assert.equal(killed.code, 0, killed.stderr);
  });

  test('a daemon that crashed (SIGKILL) handed nothing over: the next one withdraws its question, saying why, and asks again about the prompt still on screen', async () => {
    const made = await remux(['code', 'start', work, '--no-attach', '--sandbox', 'none', '-n', 'crashes', '--agent', `node ${FAKE_PROMPT} 'make d'`], { env, via: 'node' });
    assert.equal(made.code, 0, made.stderr);
    const id = made.stdout.split(' ')[0]!;
    type Listed = { id: string; status: string; why: string | null; what: string };
    const listed = async (): Promise<Listed[]> => (JSON.parse((await remux(['approvals', 'ls', '--all', '--json'], { env })).stdout) as Array<Listed & { principal: string }>).filter((a) => a.principal === `agent:${id}`);
    const first = await until('the question', async () => (await listed())[0]);
    const pid = Number(readFileSync(join(t.home, 'run', 'remux.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    await until('the daemon gone', async () => (processAlive(pid) ? undefined : true));
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env });
    assert.equal(started.code, 0, started.stderr);

    const [again, withdrawn] = await until('a second question', async () => {
      const now = await listed();
      return now.length === 2 ? now : undefined;
    });
    assert.equal(withdrawn?.id, first.id);
    assert.equal(withdrawn?.status, 'cancelled');
    assert.match(withdrawn?.why ?? '', /^the daemon that asked stopped \(crash between .+ UTC\); the agent's prompt will be asked again if still on screen$/);
    assert.equal(again?.status, 'pending');
    assert.equal(again?.what, first.what, 'the same prompt, asked again');
    const shown = await remux(['approvals', 'ls', '--all'], { env });
    assert.match(shown.stdout, new RegExp(`${first.id} +withdrawn: the daemon that asked stopped \\(crash`));
    assert.equal((await remux(['approvals', 'answer', again!.id, '1'], { env })).code, 0);
    const pane = (): string => tmux('capture-pane', '-p', '-J', '-t', `=agent-${id}:`);
    await until('the answer typed', async () => (/chosen: 1 \(Yes\) for make d/.test(pane()) ? true : undefined));
    const killed = await remux(['code', 'kill', id, '-f'], { env });
    assert.equal(killed.code, 0, killed.stderr);
  });

  test("a record from before socket paths were kept gets its server's path from the daemon that watches it there; its open question stays the one asked", async () => {
    const made = await remux(['code', 'start', work, '--no-attach', '--sandbox', 'none', '-n', 'old-record', '--agent', `node ${FAKE_PROMPT} 'make f'`], { env, via: 'node' });
    assert.equal(made.code, 0, made.stderr);
    const id = made.stdout.split(' ')[0]!;
    type Listed = { id: string; status: string; principal: string };
    const listed = async (): Promise<Listed[]> => (JSON.parse((await remux(['approvals', 'ls', '--all', '--json'], { env })).stdout) as Listed[]).filter((a) => a.principal === `agent:${id}`);
    const asked = await until('the question', async () => (await listed())[0]);
    const path = (): string | undefined => readSessions(env).find((s) => s.id === id)?.socket;
    const placed = path();
    assert.ok(placed);
    // As a remux before this one wrote it (under the store's lock: the daemon writes states meanwhile).
    changeSessions((sessions) => void delete sessions.find((s) => s.id === id)!.socket, env);
    assert.equal(await until('its path recorded again', async () => path()), placed);
    await sleep(2000); // the watcher has looked at the screen since (every 500 ms)
    assert.deepEqual((await listed()).map((a) => [a.id, a.status]), [[asked.id, 'pending']], 'not withdrawn, not asked again');
    assert.equal((await remux(['approvals', 'answer', asked.id, '1'], { env })).code, 0);
    const pane = (): string => tmux('capture-pane', '-p', '-J', '-t', `=agent-${id}:`);
    await until('the answer typed', async () => (/chosen: 1 \(Yes\) for make f/.test(pane()) ? true : undefined));
    const killed = await remux(['code', 'kill', id, '-f'], { env });
    assert.equal(killed.code, 0, killed.stderr);
  });

  test('a session started with another TMUX_TMPDIR than the daemon\'s (a terminal\'s, where the daemon is a service) is watched on its own server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'remux-watch-tmux-'));
    const server = join(dir, `tmux-${process.getuid!()}`, socket);
    try {
      const made = await remux(['code', 'start', work, '--no-attach', '--sandbox', 'none', '-n', 'elsewhere', '--agent', `node ${FAKE_PROMPT} 'make e'`], { env: { ...env, TMUX_TMPDIR: dir }, via: 'node' });
      assert.equal(made.code, 0, made.stderr);
      const id = made.stdout.split(' ')[0]!;
      const approval = await until('an approval for the prompt', async () => {
        const r = await remux(['approvals', 'ls', '--json'], { env });
        return (JSON.parse(r.stdout) as Array<{ id: string; principal: string }>).find((a) => a.principal === `agent:${id}`);
      });
      assert.equal(await until('state permission', async () => ((await status(id)) === 'permission' ? 'permission' : undefined)), 'permission');
      assert.equal((await remux(['approvals', 'answer', approval.id, '1'], { env })).code, 0);
      const pane = (): string => execFileSync('tmux', ['-S', server, 'capture-pane', '-p', '-J', '-t', `=agent-${id}:`], { encoding: 'utf8' });
      await until('the answer typed on its server', async () => (/chosen: 1 \(Yes\) for make e/.test(pane()) ? true : undefined));
      const killed = await remux(['code', 'kill', id, '-f'], { env });
      assert.equal(killed.code, 0, killed.stderr);
    } finally {
      spawnSync('tmux', ['-S', server, 'kill-server'], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
