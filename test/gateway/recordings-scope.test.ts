// A scoped principal's recordings against a real daemon and real tmux: its own attach's recording is
// listed and played while its scope reaches the host and tmux user, and neither once `principal set`
// narrows the scope (the daemon holds its next request to the new scope, recordings included), nor
// (with its audit actions) once the principal is removed and added again under its name.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { remux } from '../support/cli.js';
import { client, type Client } from '../support/https.js';
import { openTerminal, startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';

describe("a principal's recordings follow its scope", { timeout: 60_000 }, () => {
  let d: ConsoleDaemon;
  let api: Client;

  before(async () => {
    d = await startConsoleDaemon({ boss: ['--admin'], ops: ['--hosts', 'box', '--users', '*'] });
    api = client(d.url, d.ca);
  });
  after(() => d.stop());

  const as = (who: string): { headers: Record<string, string> } => ({ headers: { authorization: `Bearer ${d.tokens[who]}` } });
  const listed = async (who: string): Promise<string[]> => (await api.request('GET', '/api/recordings', as(who))).json<Array<{ id: string }>>().map((r) => r.id);

  test('listed and played while the scope reaches the host and user; neither once it is narrowed; an admin still sees it', async () => {
    d.tmux('new-session', '-d', '-s', 'w', 'cat');
    const t = await openTerminal(d, { host: 'box', name: 'w' }, as('ops').headers);
    assert.equal(t.control[0]?.type, 'ready', JSON.stringify(t.control));
    const id = String(t.control[0]?.recording);
    t.ws.close();
    await t.closed;
    assert.deepEqual(await listed('ops'), [id]);
    assert.equal((await api.request('GET', `/api/recordings/${id}`, as('ops'))).status, 200);

    const narrowed = async (flags: string[], why: RegExp): Promise<void> => {
      const set = await remux(['principal', 'set', 'ops', ...flags], { env: { REMUX_HOME: d.home } });
      assert.equal(set.code, 0, set.stderr);
      assert.deepEqual(await listed('ops'), [], flags.join(' '));
      const played = await api.request('GET', `/api/recordings/${id}`, as('ops'));
      assert.equal(played.status, 403, played.text);
      assert.match(played.text, why);
      assert.deepEqual(await listed('boss'), [id], 'an admin sees every recording');
    };
    await narrowed(['--hosts', 'web*'], /recording \S+ is of host box, outside its scope/);
    await narrowed(['--hosts', 'box', '--users', 'nobody-here'], new RegExp(`recording \\S+ is of tmux user ${d.me}, outside its scope`));
    assert.equal((await remux(['principal', 'set', 'ops', '--users', '*'], { env: { REMUX_HOME: d.home } })).code, 0);
    assert.deepEqual(await listed('ops'), [id], 'back in scope, listed again');

    // Removed and added again under its name: someone new, who does not get the old one's recordings or actions.
    const actions = async (): Promise<string[]> => (await api.request('GET', '/api/audit', as('ops'))).json<Array<{ operation: string }>>().map((a) => a.operation);
    assert.ok((await actions()).includes('session.attach'), 'its own attach is in its audit view');
    const env = { env: { REMUX_HOME: d.home } };
    assert.equal((await remux(['principal', 'rm', 'ops'], env)).code, 0);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // a creation time past the recording's second
    const added = await remux(['principal', 'add', 'ops', '--hosts', 'box', '--users', '*', '--json'], env);
    assert.equal(added.code, 0, added.stderr);
    d.tokens.ops = (JSON.parse(added.stdout) as { token: string }).token;
    assert.deepEqual(await listed('ops'), []);
    const played = await api.request('GET', `/api/recordings/${id}`, as('ops'));
    assert.equal(played.status, 403, played.text);
    assert.match(played.text, /recording \S+ was recorded before principal ops was created/);
    assert.deepEqual(await actions(), []);
    assert.deepEqual(await listed('boss'), [id]);
  });
});
