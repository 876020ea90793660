// The principal's rate limit on reads and attaches, against a real daemon: the queries (audit, recordings,
// hosts, approvals, agents) take tokens, a page of rows a token per 100 asked for; and a terminal attach
// takes one before its upgrade, so that refused attaches (each audited) come no faster than the rate:
// a read-only viewer's flood of interactive attaches, refused at the rate limit, writes a bounded number of rows.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { remux } from '../support/cli.js';
import { client, type Client } from '../support/https.js';
import { startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';

describe("reads and attaches take the principal's rate-limit tokens", { timeout: 60_000 }, () => {
  let d: ConsoleDaemon;
  let api: Client;

  before(async () => {
    // No refill to speak of: the burst is all there is.
    d = await startConsoleDaemon({ viewer: ['--hosts', 'box', '--users', '*', '--read-only'], boss: ['--admin'] }, 'daemon:\n  rate_limit: { requests_per_second: 0.001, burst: 15 }\n');
    api = client(d.url, d.ca);
    d.tmux('new-session', '-d', '-s', 'work', 'cat');
  });
  after(() => d.stop());

  const as = (who: string): Record<string, string> => ({ authorization: `Bearer ${d.tokens[who]!}` });
  const status = async (path: string, who = 'viewer'): Promise<number> => (await api.request('GET', path, { headers: as(who) })).status;
  const viewerRows = async (): Promise<number> => (await api.request('GET', '/api/audit?principal=viewer&limit=100', { headers: as('boss') })).json<unknown[]>().length;

  test('a page of 1000 costs 10; queries cost one each; past the burst, every query and attach is 429', async () => {
    // Refused attaches are audited (an interactive attach of a read-only viewer): each took a token first.
    for (let i = 0; i < 2; i++) {
      const refused = await api.upgrade('/api/ws/terminal?host=box&name=work', as('viewer'));
      assert.equal(refused.status, 101);
      ('socket' in refused ? refused.socket : null)?.destroy();
    }
    assert.equal(await status('/api/audit?limit=1000'), 200); // 10: 3 left
    assert.equal(await status('/api/audit?limit=1000'), 429, 'a page of 1000 needs 10 tokens');
    assert.equal(await status('/api/hosts'), 200);
    assert.equal(await status('/api/approvals'), 200);
    assert.equal(await status('/api/recordings'), 200); // the last token
    for (const path of ['/api/hosts', '/api/approvals', '/api/recordings', '/api/agents', '/api/audit', '/api/audit?limit=1']) {
      const r = await api.request('GET', path, { headers: as('viewer') });
      assert.equal(r.status, 429, `${path}: ${r.text}`);
      assert.equal(r.json().error, 'rate_limited');
      assert.match(String(r.headers['retry-after']), /^\d+$/);
    }

    // Each refusal is audited, as the request it refused.
    const refusedReads = (await api.request('GET', '/api/audit?principal=viewer&limit=100', { headers: as('boss') }))
      .json<Array<{ operation: string; resource: string | null; exitCode: number | null }>>()
      .filter((r) => r.operation === 'http.request' && r.exitCode === 75)
      .map((r) => r.resource);
    for (const path of ['/api/audit', '/api/hosts', '/api/approvals', '/api/recordings', '/api/agents']) assert.ok(refusedReads.includes(`GET ${path}`), `${path} in ${JSON.stringify(refusedReads)}`);

    // A flood of attaches now: refused before the upgrade, a few recorded one by one, the rest counted (test below).
    const rows = await viewerRows();
    const flood = await Promise.all(Array.from({ length: 50 }, () => api.upgrade('/api/ws/terminal?host=box&name=work', as('viewer'))));
    assert.deepEqual([...new Set(flood.map((r) => r.status))], [429]);
    const added = (await viewerRows()) - rows;
    assert.ok(added <= 10, `${added} audit rows for 50 attaches refused at the rate limit`);
    // Another principal's tokens are its own.
    assert.equal(await status('/api/hosts', 'boss'), 200);
  });
});

describe('refusals past the rate limit are counted, not each recorded', { timeout: 60_000 }, () => {
  let d: ConsoleDaemon;
  let api: Client;

  before(async () => {
    d = await startConsoleDaemon({ viewer: ['--hosts', 'box', '--read-only'] }, 'daemon:\n  rate_limit: { requests_per_second: 0.001, burst: 1 }\n');
    api = client(d.url, d.ca);
  });
  after(() => d.stop());

  type Row = { operation: string; exitCode: number | null; reason: string | null };
  // Read from the store as its local user (an admin's API reads would take tokens of this tiny limit).
  const rows = async (): Promise<Row[]> => {
    const r = await remux(['audit', 'ls', '--principal', 'viewer', '--limit', '0', '--json'], { env: { REMUX_HOME: d.home } });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Row);
  };

  test('a flood of 25 refused /api/run: the first 10 recorded one by one, then one row saying 15 more', async () => {
    const run = () => api.request('POST', '/api/run', { headers: { authorization: `Bearer ${d.tokens.viewer!}` }, body: { selector: 'box', command: 'echo hi' } });
    assert.equal((await run()).status, 200);
    for (let i = 0; i < 25; i++) assert.equal((await run()).status, 429);
    const limited = (await rows()).filter((r) => r.exitCode === 75);
    assert.equal(limited.length, 10, JSON.stringify(limited));
    assert.ok(limited.every((r) => r.operation === 'exec' && /^rate limited, retry in \d+ ms$/.test(r.reason ?? '')));

    // At the window's end (10 s), one row counts the rest.
    let counted: Row | undefined;
    for (let i = 0; i < 60 && counted === undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      counted = (await rows()).find((r) => r.operation === 'refusals.counted');
    }
    assert.ok(counted, 'the summary row was written');
    assert.equal(counted.exitCode, 75);
    assert.match(counted.reason ?? '', /^15 more refusals of viewer \(rate limited, or too many running or open\) in the 10 s from \S+, counted rather than recorded one by one after the first 10: exec 15$/);
  });
});
