// GET /api/recordings a page at a time against a real daemon: `limit` (100 unless given) recordings the
// principal may see, newest first, a Link to the next page while older ones are left, `before` going on from
// a page's last id; a scoped principal's page is of its own recordings only (scope before the limit), and
// links to a next page only when that one holds some of them; a bad limit or before is a 400 naming it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { client, type Client } from '../support/https.js';
import { startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';
import { plantRecordings } from '../support/recordings.js';

describe('GET /api/recordings pages', { timeout: 60_000 }, () => {
  let d: ConsoleDaemon;
  let api: Client;
  /** Newest first: every third ops's (in its scope), the rest the admin's, and the 5 oldest the admin's. */
  let ids: string[];
  let opsIds: string[];

  before(async () => {
    d = await startConsoleDaemon({ boss: ['--admin'], ops: ['--hosts', 'box', '--users', '*'] });
    api = client(d.url, d.ca);
    const whose = (i: number): string => (i % 3 === 0 ? 'ops' : 'boss');
    const dir = join(d.home, 'recordings');
    const recent = plantRecordings(dir, 250, (i) => ({ host: 'box', user: d.me, session: `s${i}`, principal: whose(i), readOnly: false, actionId: null })).reverse();
    opsIds = recent.filter((_, i) => whose(249 - i) === 'ops');
    const older = plantRecordings(dir, 5, (i) => ({ host: 'box', user: d.me, session: `old${i}`, principal: 'boss', readOnly: false, actionId: null }), Date.UTC(2025, 0, 1));
    ids = [...recent, ...older.reverse()];
  });
  after(() => d.stop());

  const get = (who: string, query = ''): ReturnType<Client['request']> => api.request('GET', `/api/recordings${query}`, { headers: { authorization: `Bearer ${d.tokens[who]}` } });
  const listed = (answer: Awaited<ReturnType<Client['request']>>): string[] => answer.json<Array<{ id: string }>>().map((r) => r.id);

  test('100 unless asked, newest first, with a Link to the next page; following the links lists each once, the last page without one', async () => {
    const first = await get('boss');
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(listed(first), ids.slice(0, 100));
    assert.equal(first.headers.link, `</api/recordings?limit=100&before=${ids[99]}>; rel="next"`);

    const seen: string[] = [];
    let path: string | undefined = '/api/recordings?limit=60';
    for (let pages = 0; path !== undefined; pages++) {
      assert.ok(pages < 5, '255 recordings in 5 pages of 60');
      const page = await api.request('GET', path, { headers: { authorization: `Bearer ${d.tokens.boss}` } });
      assert.equal(page.status, 200, page.text);
      seen.push(...listed(page));
      path = /^<([^>]+)>; rel="next"$/.exec(String(page.headers.link ?? ''))?.[1];
    }
    assert.deepEqual(seen, ids);
  });

  test("a scoped principal's page is `limit` of the recordings it may see, not of all", async () => {
    const page = await get('ops', '?limit=10');
    assert.deepEqual(listed(page), opsIds.slice(0, 10));
    assert.equal(page.headers.link, `</api/recordings?limit=10&before=${opsIds[9]}>; rel="next"`);
    const next = await get('ops', `?limit=10&before=${opsIds[9]}`);
    assert.deepEqual(listed(next), opsIds.slice(10, 20));
    const rest = await get('ops', `?limit=1000&before=${opsIds[19]}`);
    assert.deepEqual(listed(rest), opsIds.slice(20));
    assert.equal(rest.headers.link, undefined, 'none older left');
  });

  test("a scoped principal's last full page links to nothing, though recordings it may not see are older", async () => {
    assert.equal(opsIds.length, 84);
    const page = await get('ops', '?limit=42');
    assert.deepEqual(listed(page), opsIds.slice(0, 42));
    assert.equal(page.headers.link, `</api/recordings?limit=42&before=${opsIds[41]}>; rel="next"`);
    const last = await get('ops', `?limit=42&before=${opsIds[41]}`);
    assert.deepEqual(listed(last), opsIds.slice(42));
    assert.equal(last.headers.link, undefined, 'the admin\'s 5 oldest are no page of ops\'s');
    assert.deepEqual(listed(await get('ops', `?limit=42&before=${opsIds[83]}`)), [], 'what the link would have led to');
  });

  test('a bad limit or before: 400 naming it', async () => {
    for (const [query, why] of [
      ['?limit=0', /limit must be >= 1/],
      ['?limit=1001', /limit must be <= 1000/],
      ['?limit=ten', /limit must be integer/],
      ['?before=yesterday', /before "yesterday": not a recording id; give the id of the last recording of the page before/],
    ] as const) {
      const answer = await get('boss', query);
      assert.equal(answer.status, 400, `${query}: ${answer.text}`);
      assert.match(answer.json<{ message: string }>().message, why, query);
    }
  });
});
