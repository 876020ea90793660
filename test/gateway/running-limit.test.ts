// The daemon's bound on commands running at once (daemon.running_limit), adversarially: a read-only
// viewer opening /api/run after /api/run of a command that never ends, against a real daemon running
// real processes. The bound holds per principal and in total, over HTTP, the CLI socket and MCP alike; a
// refusal says which limit and is audited; a command that ends gives its slot back.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { remux } from '../support/cli.js';
import { client, type Client } from '../support/https.js';
import { call, httpClient } from '../mcp/support.js';
import { startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';

// A duration no other test runs: the processes counted are this test's.
const LONG = 'sleep 987';

/** The processes of LONG running now. */
function running(): number {
  try {
    return Number(execFileSync('pgrep', ['-c', '-x', '-f', LONG], { encoding: 'utf8' }).trim());
  } catch {
    return 0; // pgrep exits 1 when none matches
  }
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !ok(); i++) await sleep(50);
  assert.ok(ok(), `timed out waiting for ${what}`);
}

describe('commands running at once, per principal and in total', { timeout: 90_000 }, () => {
  let d: ConsoleDaemon;
  let api: Client;
  const open: IncomingMessage[] = [];

  before(async () => {
    d = await startConsoleDaemon(
      { viewer: ['--hosts', 'box', '--read-only'], other: ['--hosts', 'box'], third: ['--hosts', 'box'], boss: ['--admin'] },
      'daemon:\n  running_limit: { per_principal: 3, total: 5 }\n',
    );
    api = client(d.url, d.ca);
  });
  after(async () => {
    for (const res of open) res.destroy();
    await d.stop();
  });

  /** An /api/run of LONG on box whose answer stays open (its stream is kept, unread past its first line). */
  const holdRun = (principal: string): Promise<IncomingMessage> => {
    const url = new URL(d.url);
    return new Promise((resolve, reject) => {
      const req = https.request(
        { method: 'POST', host: url.hostname, port: url.port, path: '/api/run', ca: d.ca, agent: false, headers: { authorization: `Bearer ${d.tokens[principal]!}`, 'content-type': 'application/json' } },
        (res) => {
          assert.equal(res.statusCode, 200);
          open.push(res);
          resolve(res);
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ selector: 'box', command: LONG }));
    });
  };
  const run = (principal: string, command = 'echo hi') =>
    api.request('POST', '/api/run', { headers: { authorization: `Bearer ${d.tokens[principal]!}` }, body: { selector: 'box', command } });

  test('past its 3, a viewer is refused the next (429 naming the limit, audited), on HTTP, the CLI socket and MCP; others are not', async () => {
    for (let i = 0; i < 3; i++) await holdRun('viewer');
    await until('3 commands running', () => running() === 3);

    const refused = await run('viewer');
    assert.equal(refused.status, 429, refused.text);
    assert.deepEqual(refused.json(), {
      error: 'too_many_commands',
      message: 'viewer already has 3 commands running (the limit per principal, daemon.running_limit.per_principal in config.yaml, is 3); wait for one to end, or interrupt one',
    });
    // The CLI's commands reach the same daemon through its socket: refused alike, with the rate limit's exit status.
    const cli = await remux(['client', 'run', 'box', 'echo hi'], { env: { ...d.env, REMUX_TOKEN: d.tokens.viewer! } });
    assert.equal(cli.code, 75, cli.stderr);
    assert.match(cli.stderr, /viewer already has 3 commands running/);
    // And an MCP client of the same principal: a tool error naming the limit.
    const mcp = await httpClient(new URL('mcp', d.url).href, d.ca, d.tokens.viewer!);
    try {
      const tool = await call(mcp, 'run_command', { host: 'box', command: 'echo hi' });
      assert.equal(tool.result.isError, true, tool.text);
      assert.equal(tool.data.outcome, 'rate_limited');
      assert.match(tool.text, /viewer already has 3 commands running/);
    } finally {
      await mcp.close();
    }
    assert.equal(running(), 3, 'nothing more was started');

    // `daemon status` says who runs how many, against which limits.
    const status = await remux(['daemon', 'status', '--json'], { env: d.env });
    assert.deepEqual(JSON.parse(status.stdout).commands, { held: 3, limit: { perPrincipal: 3, total: 5 }, principals: [{ principal: 'viewer', held: 3 }] });
    const text = await remux(['daemon', 'status'], { env: d.env });
    assert.match(text.stdout, /^commands running: 3 \(limits: 3 per principal, 5 in all\): viewer 3$/m);
    assert.match(text.stdout, /^attaches open: 0 \(limits: 5 per principal, 30 in all\)$/m);

    // Another principal has its own 3.
    const other = await run('other');
    assert.equal(other.status, 200, other.text);
    assert.match(other.text, /"exitCode":0/);

    const audit = await api.request('GET', '/api/audit?principal=viewer&limit=100', { headers: { authorization: `Bearer ${d.tokens.boss!}` } });
    const rows = audit.json<Array<{ exitCode: number | null; reason: string | null }>>();
    assert.equal(rows.filter((r) => r.exitCode === 75 && /viewer already has 3 commands running/.test(r.reason ?? '')).length, 3, audit.text);
  });

  test("the daemon's total bounds every principal together; a command that ends gives its slot back", async () => {
    // viewer holds 3 (above): 2 more of `other` reach the total of 5.
    for (let i = 0; i < 2; i++) await holdRun('other');
    await until('5 commands running', () => running() === 5);
    const third = await run('third');
    assert.equal(third.status, 429, third.text);
    assert.equal(third.json<{ message: string }>().message, 'the daemon already serves 5 commands (its limit: daemon.running_limit.total in config.yaml); try again when one ends');
    assert.match((await remux(['daemon', 'status'], { env: d.env })).stdout, /^commands running: 5 \(limits: 3 per principal, 5 in all\): viewer 3, other 2$/m);

    // The viewer's first stream goes away: its command is interrupted, and its slot is free again.
    open.shift()!.destroy();
    await until('the interrupted command to end', () => running() === 4);
    let again = await run('third');
    for (let i = 0; i < 100 && again.status === 429; i++) {
      await sleep(50);
      again = await run('third');
    }
    assert.equal(again.status, 200, again.text);
    assert.match(again.text, /"exitCode":0/);
  });
});
