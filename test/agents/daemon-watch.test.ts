// The daemon watches `remux code` sessions: a permission prompt in an agent's pane becomes an approval,
// `remux code status` shows the session's state, and the approval's answer reaches the prompt as the
// keys it expects. Real daemon, real tmux (a private socket), the fake Claude-like prompt as the agent.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT, remux, tempHome } from '../support/cli.js';
import { endTmuxServer } from '../support/tmux.js';

const FAKE_PROMPT = join(REPO_ROOT, 'test', 'agents', 'fixtures', 'fake-prompt.mjs');

describe('the daemon watches agent sessions', { timeout: 60_000 }, () => {
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
});
