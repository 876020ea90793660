// The agent-session API against a real daemon, real tmux (a private agents socket) and a `remux code`
// session: GET /api/agents and /api/agents/:id/log go through the one door, so each read and each
// refusal is in the audit as `remux code ls` and `code logs` are (agent.list, agent.logs); and a
// principal that watched an agent session gets that attach's recording (host `agents` is built in,
// not in hosts.yaml, and the recordings' scope check still finds it).
import assert from 'node:assert/strict';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT, remux } from '../support/cli.js';
import { client, type Client } from '../support/https.js';
import { openTerminal, startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';
import { endTmuxServer } from '../support/tmux.js';

const FAKE_AGENT = join(REPO_ROOT, 'test', 'agents', 'fixtures', 'fake-agent.mjs');

type Row = { principal: string; host: string; operation: string; decision: string; resource: string | null; exitCode: number | null; error: string | null };

describe('the agent-session API goes through the one door', { timeout: 90_000 }, () => {
  const socket = `remux-agents-api-${process.pid}`;
  const work = realpathSync(mkdtempSync(join(tmpdir(), 'remux-agents-api-')));
  let d: ConsoleDaemon;
  let api: Client;
  let id = '';

  before(async () => {
    d = await startConsoleDaemon({ boss: ['--admin'], watcher: ['--hosts', 'agents', '--users', '*', '--read-only'], stranger: ['--hosts', 'box'] }, '', { REMUX_TMUX_SOCKET: socket });
    api = client(d.url, d.ca);
    const made = await remux(['code', 'start', work, '--no-attach', '--sandbox', 'none', '-n', 'worker', '--agent', `node ${FAKE_AGENT}`], { env: { REMUX_HOME: d.home, REMUX_TMUX_SOCKET: socket }, via: 'node' });
    assert.equal(made.code, 0, made.stderr);
    id = made.stdout.split(' ')[0]!;
  });
  after(async () => {
    endTmuxServer(socket);
    await d?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const as = (who: string): { headers: Record<string, string> } => ({ headers: { authorization: `Bearer ${d.tokens[who]!}` } });
  const audited = async (who: string): Promise<Row[]> => (await api.request('GET', `/api/audit?principal=${who}&limit=100`, as('boss'))).json<Row[]>();

  test('listing and reading a saved screen are audited (agent.list, agent.logs), and so are their refusals', async () => {
    const listed = await api.request('GET', '/api/agents', as('watcher'));
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(listed.json<{ sessions: Array<{ id: string }> }>().sessions.map((s) => s.id), [id]);
    const log = await api.request('GET', `/api/agents/${id}/log`, as('watcher'));
    assert.equal(log.status, 404, log.text);
    assert.match(log.json<{ message: string }>().message, /has no saved screen: it is running/);

    const refused = await api.request('GET', '/api/agents', as('stranger'));
    assert.equal(refused.status, 403, refused.text);
    assert.match(refused.json<{ message: string }>().message, /^out of scope for stranger: host agents is not among its hosts \(box\) \(agent sessions run on host "agents"\)$/);
    assert.equal((await api.request('GET', `/api/agents/${id}/log`, as('stranger'))).status, 403);

    const mine = (await audited('watcher')).map((r) => [r.operation, r.host, r.decision, r.resource, r.exitCode]);
    assert.deepEqual(mine, [
      ['agent.list', 'agents', 'allow', null, 0],
      ['agent.logs', 'agents', 'allow', id, 1],
    ]);
    const theirs = (await audited('stranger')).map((r) => [r.operation, r.decision, r.exitCode]);
    assert.deepEqual(theirs, [
      ['agent.list', 'deny', 77],
      ['agent.logs', 'deny', 77],
    ]);
  });

  test("a watcher's recording of an agent session is listed and played to it", async () => {
    const sessions = (await api.request('GET', '/api/agents', as('watcher'))).json<{ sessions: Array<{ attach: { host: string; name: string } }> }>().sessions;
    const t = await openTerminal(d, { host: 'agents', name: sessions[0]!.attach.name, readOnly: 'true' }, as('watcher').headers);
    assert.equal(t.control[0]?.type, 'ready', JSON.stringify(t.control));
    const recording = String(t.control[0]?.recording);
    t.ws.close();
    await t.closed;
    const listed = await api.request('GET', '/api/recordings', as('watcher'));
    assert.deepEqual(listed.json<Array<{ id: string }>>().map((r) => r.id), [recording], listed.text);
    const played = await api.request('GET', `/api/recordings/${recording}`, as('watcher'));
    assert.equal(played.status, 200, played.text);
  });
});
