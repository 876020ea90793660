// Claude Code's hooks with `--sandbox docker`, where no Docker engine runs: a fake `docker` on PATH
// (fixtures/fake-docker.sh) runs the container's command with the run's bind mounts made for real in a
// mount namespace (read-only ones read-only), its environment and nothing else of the caller's, so the
// hook goes the way it would in a container: `node /opt/remux/hook.cjs` (the standalone client, mounted)
// reaches the session's endpoint through its socket in the hook directory (mounted read-only), with the
// session's token. Real tmux, the real supervisor and endpoint, the fake `claude` of claude-hooks.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApprovalStore, type Approval } from '../../src/notify/approvals.js';
import { REPO_ROOT, remux, tempHome } from '../support/cli.js';
import { until } from '../support/until.js';

const FIXTURES = join(REPO_ROOT, 'test', 'agents', 'fixtures');

describe('remux code start --agent claude --sandbox docker: hooks through the mounted socket', { timeout: 60_000 }, () => {
  const t = tempHome();
  const socket = `remux-test-docker-hooks-${process.pid}`;
  const work = mkdtempSync(join(tmpdir(), 'remux-docker-hooks-'));
  const bin = join(work, 'bin');
  const repo = join(work, 'repo');
  const env = { ...t.env, REMUX_TMUX_SOCKET: socket, PATH: `${bin}:${process.env.PATH}` };
  let store: ApprovalStore;
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  const pane = (s: string): string => tmux('capture-pane', '-p', '-J', '-S', '-', '-t', `=${s}:`);
  let n = 0;
  async function send(s: string, line: string): Promise<string> {
    const tag = `t${++n}`;
    tmux('send-keys', '-t', `=${s}:`, '-l', `${tag} ${line}`);
    tmux('send-keys', '-t', `=${s}:`, 'Enter');
    const mine = (): string[] => pane(s).split('\n').filter((l) => l.startsWith(`${tag} `) && l.trimEnd() !== `${tag} ${line}`);
    await until(`the answer to ${line}`, () => mine().length >= 1, 15_000);
    return mine().join('\n');
  }
  const pending = (what: RegExp): Promise<Approval> => until(`an approval for ${what}`, () => store.list().find((a) => what.test(a.what)));

  before(() => {
    mkdirSync(bin);
    mkdirSync(repo);
    writeFileSync(join(bin, 'claude'), `#!/bin/sh\nexec ${process.execPath} ${join(FIXTURES, 'fake-claude.mjs')} "$@"\n`, { mode: 0o755 });
    symlinkSync(join(FIXTURES, 'fake-docker.sh'), join(bin, 'docker'));
    writeFileSync(join(t.home, 'config.yaml'), 'approvals:\n  timeout_seconds: 20\n');
    store = ApprovalStore.open(join(t.home, 'approvals.db'), join(t.home, 'approvals.key'));
  });
  after(() => {
    try {
      tmux('kill-server');
    } catch {
      // no server left
    }
    store.close();
    t.remove();
    rmSync(work, { recursive: true, force: true });
  });

  it('a permission request becomes an approval and its answer the decision; the hook directory cannot be changed from inside', async () => {
    const r = await remux(['code', 'start', repo, '--no-attach', '--agent', 'claude', '--sandbox', 'docker'], { env, via: 'node' });
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.split(' ')[0] as string;
    const s = `agent-${id}`;
    await until('fake claude', () => pane(s).includes('FAKE-CLAUDE ready'));
    assert.match(pane(s), /FAKE-CLAUDE ready hooks=Notification,PermissionRequest sandbox=none/);

    const approving = send(s, 'perm npm publish');
    const asked = await pending(/npm publish/);
    assert.deepEqual([asked.what, asked.principal], ['Bash: npm publish', `agent:${id}`]);
    store.answer(asked.id, 'approve', { by: 'alice', via: 'test' });
    assert.match(await approving, /HOOK exit=0 out=\{"hookSpecificOutput":\{"hookEventName":"PermissionRequest","decision":\{"behavior":"allow"\}\}\}/);

    const denying = send(s, 'perm git push --force');
    store.answer((await pending(/git push/)).id, 'deny', { by: 'bob', via: 'test' });
    assert.match(await denying, /"decision":\{"behavior":"deny","message":"denied by bob through remux"\}/);

    // The settings and token are mounted read-only: the agent cannot rewrite its hooks away.
    const hooks = join(t.home, 'agents', 'hooks', id);
    assert.match(await send(s, `write ${join(hooks, 'settings.json')}`), /WRITE denied EROFS/);
    assert.match(await send(s, `write ${join(hooks, 'token')}`), /WRITE denied EROFS/);
  });
});
