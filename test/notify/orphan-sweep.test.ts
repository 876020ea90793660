// A running daemon withdraws the questions whose asker ended, not only a starting one: a `remux client run
// --no-daemon` waiting on a policy ask and SIGKILLed is withdrawn within one sweep (approvals.orphan_sweep_seconds,
// short here), audited, its message replaced, `approvals ls --all` saying why; a live asker's question stays.
// An asker of another boot (another machine sharing REMUX_HOME) is judged by its heartbeat (asker_seen),
// never by a pid of this machine: kept while fresh, withdrawn once stale, whatever that pid is here.
// Real daemon, real CLI processes; a local HTTP server stands in for ntfy.
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { AuditStore } from '../../src/audit/store.js';
import { approvalsDbFile, approvalsKeyFile } from '../../src/config/paths.js';
import { processAlive } from '../../src/core/process.js';
import { ApprovalStore, STALE_MS } from '../../src/notify/approvals.js';
import { ASK_ON_TOUCH_POLICY } from '../support/approvals.js';
import { remux, spawnRemux, tempHome } from '../support/cli.js';
import { httpRecorder } from '../support/http-recorder.js';
import { until } from '../support/until.js';

const SWEEP_MS = 300;
const UTC = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`;

describe('the running daemon withdraws the questions of askers that ended', { timeout: 120_000 }, () => {
  const h = tempHome();
  const push = httpRecorder();
  const spawned: ChildProcess[] = [];
  const status = (id: string): string | undefined => {
    const store = ApprovalStore.open(approvalsDbFile(h.env), approvalsKeyFile(h.env));
    try {
      return store.get(id)?.status;
    } finally {
      store.close();
    }
  };

  before(async () => {
    await push.listen();
    writeFileSync(join(h.home, 'policies.yaml'), ASK_ON_TOUCH_POLICY);
    writeFileSync(
      join(h.home, 'config.yaml'),
      `default_policy: ops\nnotify:\n  base_url: https://gw.example:7777\n  channels:\n    - { type: ntfy, url: "${push.base()}", topic: t, allow_internal: true }\napprovals:\n  orphan_sweep_seconds: ${SWEEP_MS / 1000}\n`,
    );
    const started = await remux(['daemon', 'start'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
  });
  after(async () => {
    for (const child of spawned) child.kill('SIGKILL');
    await remux(['daemon', 'stop'], { env: h.env });
    await push.close();
    h.remove();
  });

  /** `client run --no-daemon … touch FILE` (this CLI process is the asker), once it waits for approval ID. */
  async function askInProcess(file: string): Promise<{ id: string; child: ChildProcess }> {
    const child = spawnRemux(['client', 'run', '--no-daemon', 'localhost', '--', `touch ${file}`], { env: h.env });
    spawned.push(child);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const id = await until(`the question of touch ${file}`, () => /waiting for approval (\S+)/.exec(stderr)?.[1], 15_000);
    return { id, child };
  }

  test('a client run killed while it waits: withdrawn within a sweep, saying why, audited, its message replaced; a live one stays', async () => {
    const live = await askInProcess(join(h.home, 'live'));
    const doomed = await askInProcess(join(h.home, 'doomed'));
    const pid = doomed.child.pid as number;
    doomed.child.kill('SIGKILL');
    await until('the asker gone', () => !processAlive(pid) || undefined);
    const killed = Date.now();
    await until('withdrawn', () => status(doomed.id) === 'cancelled' || undefined, 10_000);
    // One sweep, with room for a loaded machine: the default interval (30 s) is far beyond.
    assert.ok(Date.now() - killed < 10 * SWEEP_MS, `withdrawn ${Date.now() - killed} ms after the kill`);

    const listed = await remux(['approvals', 'ls', '--all'], { env: h.env });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`withdrawn: remux \\(pid ${pid}\\) that asked stopped \\(crash between ${UTC} and \\d\\d:\\d\\d:\\d\\d UTC\\); nothing was done on its behalf`));

    const audit = AuditStore.open(join(h.home, 'audit.db'));
    const withdrawn = audit.list().filter((a) => a.begin.operation === 'approval.withdraw');
    audit.close();
    assert.deepEqual(
      withdrawn.map((a) => [a.begin.resource, a.begin.principal]),
      [[doomed.id, 'daemon']],
    );
    assert.match(withdrawn[0]?.begin.reason ?? '', new RegExp(`^withdrawn for .* \\(run \`touch .*doomed\` on localhost\\): remux \\(pid ${pid}\\) that asked stopped`));

    type Published = { title: string; message: string; sequence_id?: string };
    const replaced = await until('its message replaced', () =>
      push.requests.map((r) => JSON.parse(r.body) as Published).find((p) => p.sequence_id === doomed.id && p.title.startsWith('Approval withdrawn')),
    );
    assert.match(replaced.message, /\nWithdrawn: remux \(pid \d+\) that asked stopped \(crash between .*\); nothing was done on its behalf\.$/);

    // Several sweeps later the live asker's question is still open, and its answer still reaches it.
    await sleep(5 * SWEEP_MS);
    assert.equal(status(live.id), 'pending');
    const exited = new Promise<number | null>((resolve) => live.child.once('exit', resolve));
    const denied = await remux(['approvals', 'deny', live.id], { env: h.env });
    assert.equal(denied.code, 0, denied.stderr);
    assert.equal(await exited, 77, 'the live asker heard the answer');
  });

  test('an asker of another boot: kept while its heartbeat is fresh, whatever its pid is here; withdrawn once stale, saying so', async () => {
    const store = ApprovalStore.open(approvalsDbFile(h.env), approvalsKeyFile(h.env));
    const ask = (what: string): string => store.create({ principal: 'alice', host: 'web1', what, reason: 'r', source: 'policy:ops', ttlMs: 600_000 }).id;
    // A pid no process has here (one that ended), and one that runs here (this test): on another machine, neither means anything.
    const ended = spawnSync('true').pid;
    const [fresh, stale, runningHere] = [ask('run `a` on web1'), ask('run `b` on web1'), ask('run `c` on web1')];
    store.close();
    const db = new Database(approvalsDbFile(h.env));
    const elsewhere = db.prepare("UPDATE approvals SET asker = NULL, asker_pid = ?, asker_start = 'a-boot-of-another-machine/4711', asker_seen = ? WHERE id = ?");
    elsewhere.run(ended, Date.now(), fresh);
    elsewhere.run(ended, Date.now() - STALE_MS - 60_000, stale);
    elsewhere.run(process.pid, Date.now() - STALE_MS - 60_000, runningHere);

    await until('the stale ones withdrawn', () => (status(stale) === 'cancelled' && status(runningHere) === 'cancelled') || undefined, 10_000);
    await sleep(5 * SWEEP_MS);
    assert.equal(status(fresh), 'pending', 'its asker was heard from within the last heartbeats');
    const why = db.prepare<[string], { why: string }>('SELECT why FROM approvals WHERE id = ?');
    assert.match(
      why.get(stale)?.why ?? '',
      new RegExp(`^remux \\(pid ${ended}\\) that asked, on another boot \\(another machine sharing this REMUX_HOME, or this one before it restarted\\), has not been heard from since ${UTC} UTC; nothing was done on its behalf$`),
    );

    // Its heartbeats stop: withdrawn at the next sweep.
    elsewhere.run(ended, Date.now() - STALE_MS - 1_000, fresh);
    db.close();
    await until('withdrawn once stale', () => status(fresh) === 'cancelled' || undefined, 10_000);
  });
});
