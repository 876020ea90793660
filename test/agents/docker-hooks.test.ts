// Claude Code's hooks with `--sandbox docker`, where no Docker engine runs: a fake `docker` on PATH
// (fixtures/fake-docker.sh) runs the container's command with the run's bind mounts made for real in a
// mount namespace (read-only ones read-only), its environment and nothing else of the caller's, so the
// hook goes the way it would in a container: `node /opt/remux/hook.cjs` (the standalone client, mounted)
// reaches the session's endpoint through its socket in the hook directory (mounted read-only), with the
// session's token. Real tmux, the real supervisor and endpoint, the fake `claude` of claude-hooks.test.ts.
import assert from 'node:assert/strict';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { claudeBed } from '../support/claude-bed.js';
import { REPO_ROOT } from '../support/cli.js';

describe('remux code start --agent claude --sandbox docker: hooks through the mounted socket', { timeout: 60_000 }, () => {
  const bed = claudeBed('docker-hooks');
  const { store, start, send, pane, pending } = bed;

  before(() => {
    symlinkSync(join(REPO_ROOT, 'test', 'agents', 'fixtures', 'fake-docker.sh'), join(bed.bin, 'docker'));
    writeFileSync(join(bed.home, 'config.yaml'), 'approvals:\n  timeout_seconds: 20\n');
  });
  after(() => bed.close());

  it('a permission request becomes an approval and its answer the decision; the hook directory cannot be changed from inside', async () => {
    const s = await start('--sandbox', 'docker');
    assert.match(pane(s), /FAKE-CLAUDE ready hooks=Notification,PermissionRequest sandbox=none/);

    const approving = send(s, 'perm npm publish');
    const asked = await pending(/npm publish/);
    assert.deepEqual([asked.what, asked.principal], ['Bash: npm publish', `agent:${s.id}`]);
    store.answer(asked.id, 'approve', { by: 'alice', via: 'test' });
    assert.match(await approving, /HOOK exit=0 out=\{"hookSpecificOutput":\{"hookEventName":"PermissionRequest","decision":\{"behavior":"allow"\}\}\}/);

    const denying = send(s, 'perm git push --force');
    store.answer((await pending(/git push/)).id, 'deny', { by: 'bob', via: 'test' });
    assert.match(await denying, /"decision":\{"behavior":"deny","message":"denied by bob through remux"\}/);

    // The settings and token are mounted read-only: the agent cannot rewrite its hooks away.
    const hooks = join(bed.home, 'agents', 'hooks', s.id);
    assert.match(await send(s, `write ${join(hooks, 'settings.json')}`), /WRITE denied EROFS/);
    assert.match(await send(s, `write ${join(hooks, 'token')}`), /WRITE denied EROFS/);
  });
});
