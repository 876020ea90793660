// GET /api/audit a page at a time against a real daemon and its SQLite store: `limit` actions the principal
// may see, oldest first in the page, a Link to the older ones while some are left, `before` going on from a
// page's oldest id with the filters kept; a scoped principal's page is of its own actions only (scope before
// the limit); a bad before is a 400 naming it, and so is a before on the stream, which only goes forward.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AuditStore } from '../../src/audit/store.js';
import { client, type Client } from '../support/https.js';
import { startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';

describe('GET /api/audit pages', { timeout: 60_000 }, () => {
  let d: ConsoleDaemon;
  let api: Client;
  /** Every action in the store, newest first, and ops's among them. */
  let all: number[];
  let opsIds: number[];
  /** ops's that failed (exit 1: level warn). */
  let opsWarned: number[];

  before(async () => {
    d = await startConsoleDaemon({ boss: ['--admin'], ops: ['--hosts', 'box', '--users', '*'] });
    api = client(d.url, d.ca);
    // Written beside the daemon, as another remux process would: every third is ops's, the rest boss's.
    const store = AuditStore.open(join(d.home, 'audit.db'));
    for (let i = 0; i < 250; i++) {
      const principal = i % 3 === 0 ? 'ops' : 'boss';
      await store.record({ principal, host: 'box', operation: 'execute_binary', command: `echo ${i}`, decision: 'allow' }, { exitCode: i % 5 === 0 ? 1 : 0, durationMs: 1 });
    }
    const actions = store.list().reverse();
    store.close();
    all = actions.map((a) => a.id);
    opsIds = actions.filter((a) => a.begin.principal === 'ops').map((a) => a.id);
    opsWarned = actions.filter((a) => a.begin.principal === 'ops' && a.level === 'warn').map((a) => a.id);
  });
  after(() => d.stop());

  const get = (who: string, query = ''): ReturnType<Client['request']> => api.request('GET', `/api/audit${query}`, { headers: { authorization: `Bearer ${d.tokens[who]}` } });
  /** A page's ids newest first, as the pages come. */
  const listed = (answer: Awaited<ReturnType<Client['request']>>): number[] => answer.json<Array<{ id: number }>>().map((a) => a.id).reverse();
  const nextOf = (answer: Awaited<ReturnType<Client['request']>>): string | undefined => /^<([^>]+)>; rel="next"$/.exec(String(answer.headers.link ?? ''))?.[1];

  test('100 unless asked, with a Link to the older ones; following the links lists each action once, the last page without one', async () => {
    const first = await get('boss');
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(listed(first), all.slice(0, 100));
    assert.equal(first.headers.link, `</api/audit?limit=100&before=${all[99]}>; rel="next"`);

    const seen: number[] = [];
    let path: string | undefined = '/api/audit?limit=60';
    for (let pages = 0; path !== undefined; pages++) {
      assert.ok(pages < Math.ceil(all.length / 60), `${all.length} actions in pages of 60`);
      const page = await api.request('GET', path, { headers: { authorization: `Bearer ${d.tokens.boss}` } });
      assert.equal(page.status, 200, page.text);
      seen.push(...listed(page));
      path = nextOf(page);
    }
    assert.deepEqual(seen, all);
  });

  test('the next page keeps the filters', async () => {
    const first = await get('boss', '?principal=ops&level=warn&limit=5');
    assert.ok(opsWarned.length > 10);
    assert.deepEqual(listed(first), opsWarned.slice(0, 5));
    assert.equal(nextOf(first), `/api/audit?limit=5&before=${opsWarned[4]}&principal=ops&level=warn`);
    assert.deepEqual(listed(await get('boss', nextOf(first)!.slice('/api/audit'.length))), opsWarned.slice(5, 10));
  });

  test("a scoped principal's pages hold only its own actions, `limit` of them", async () => {
    const seen: number[] = [];
    let path: string | undefined = '/api/audit?limit=30';
    while (path !== undefined) {
      const page = await api.request('GET', path, { headers: { authorization: `Bearer ${d.tokens.ops}` } });
      assert.equal(page.status, 200, page.text);
      const ids = listed(page);
      if (nextOf(page) !== undefined) assert.equal(ids.length, 30, 'a page with older ones after it is full');
      seen.push(...ids);
      path = nextOf(page);
    }
    assert.deepEqual(seen, opsIds);
    assert.equal((await get('ops', `?principal=boss&before=${all[0]}`)).status, 403);
  });

  test('a bad before: 400 naming it', async () => {
    for (const before of ['yesterday', '0', '-3', '1.5', '12345678901234567890']) {
      const r = await get('boss', `?before=${before}`);
      assert.equal(r.status, 400, `${before}: ${r.text}`);
      assert.equal(r.json<{ message: string }>().message, `before "${before}": not an action id; give the id of the oldest action of the page before (a whole number, like 1234)`);
    }
    assert.deepEqual(listed(await get('boss', `?before=${all.at(-1)}`)), [], 'none older than the first');
  });

  test("the stream refuses a before by name, pointing at the listing, and any query parameter the listing does not take", async () => {
    const stream = (query: string): ReturnType<Client['request']> => api.request('GET', `/api/audit/stream${query}`, { headers: { authorization: `Bearer ${d.tokens.boss}` } });
    const paged = await stream(`?principal=ops&before=${opsIds[9]}`);
    assert.equal(paged.status, 400, paged.text);
    assert.equal(paged.json<{ message: string }>().message, 'before: the stream only goes forward, from the newest actions (or from Last-Event-ID); page back with GET /api/audit?before=ID, with the same filters');
    const unknown = await stream('?since=2026-01-01');
    assert.equal(unknown.status, 400, unknown.text);
    assert.match(unknown.text, /must NOT have additional properties/);
  });
});
