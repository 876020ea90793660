// Approvals whose asker crashed: the process that waited for their answer is gone (SIGKILL), so an answer
// would reach nobody. withdrawOrphans (run by a starting daemon) withdraws them, saying why in words,
// audits it, and replaces each one's message on the phone once; the questions of live askers stay open.
// Real processes ask (a child node killed with SIGKILL); a local HTTP server stands in for ntfy.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { AuditStore } from '../../src/audit/store.js';
import { ConfigSchema } from '../../src/config/config.js';
import { approvalsDbFile } from '../../src/config/paths.js';
import { bootId, processAlive } from '../../src/core/process.js';
import { Approvals } from '../../src/notify/service.js';
import { httpRecorder } from '../support/http-recorder.js';
import { until } from '../support/until.js';

const SERVICE = new URL('../../src/notify/service.js', import.meta.url).href;
const CONFIG = new URL('../../src/config/config.js', import.meta.url).href;
const AUDIT = new URL('../../src/audit/store.js', import.meta.url).href;

test('the approvals of an asker that crashed are withdrawn once, saying why, audited, their message replaced; a live asker\'s stay open; a pid that runs as another process by now is no live asker', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'remux-orphans-'));
  const push = httpRecorder();
  await push.listen();
  const notify = { base_url: 'https://gw.example:7777', channels: [{ type: 'ntfy', url: push.base(), topic: 't', allow_internal: true }] };
  const env = { ...process.env, REMUX_HOME: home };
  const audit = AuditStore.open(join(home, 'audit.db'));
  const approvals = new Approvals({ env, config: ConfigSchema.parse({ notify }), audit, asker: 'the daemon' });
  const stopLive = new AbortController();
  t.after(async () => {
    stopLive.abort();
    approvals.close();
    audit.close();
    await push.close();
    rmSync(home, { recursive: true, force: true });
  });

  // The crashing asker: a daemon's agent watcher (an agent session's prompt) and a policy ask of a client's.
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { Approvals } from ${JSON.stringify(SERVICE)}; import { ConfigSchema } from ${JSON.stringify(CONFIG)}; import { AuditStore } from ${JSON.stringify(AUDIT)};
       const approvals = new Approvals({ env: process.env, config: ConfigSchema.parse(${JSON.stringify({ notify })}), audit: AuditStore.open(process.env.REMUX_HOME + '/audit.db'), asker: 'the daemon' });
       const tell = ({ approval }) => process.stdout.write(approval.id + '\\n');
       void approvals.ask({ principal: 'agent:3f2a', host: 'localhost', what: "answer Claude Code's prompt in agent session web (3f2a): Run make?", reason: 'Run make?', source: 'the screen of agent session web: claude', options: [{ id: '1', label: 'Yes', effect: 'allow' }] }, undefined, tell);
       void approvals.ask({ principal: 'alice', host: 'web1', what: 'run \`make release\` on web1', reason: 'releases are asked for', source: 'policy:ops' }, undefined, tell);`,
    ],
    { env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout });
  const ids: string[] = [];
  lines.on('line', (l) => ids.push(l));
  await until('both questions asked', () => ids.length === 2);
  const [agentId, policyId] = ids as [string, string];

  // A live asker (this process), and one whose pid runs but is another process by now (its start on this boot differs).
  // Its id once its question was sent: no message of its own arrives among those counted below.
  let liveId: string | undefined;
  const live = approvals.ask({ principal: 'bob', host: 'web2', what: 'run `ls` on web2', reason: 'r', source: 'policy:ops' }, stopLive.signal, ({ approval }) => (liveId = approval.id));
  await until('the live question', () => liveId);
  const reusedId = approvals.store.create({ principal: 'carol', host: 'web3', what: 'run `rm x` on web3', reason: 'r', source: 'policy:ops', ttlMs: 60_000 }).id;
  const db = new Database(approvalsDbFile(env));
  db.prepare('UPDATE approvals SET asker_start = ? WHERE id = ?').run(`${bootId()}/1`, reusedId);
  db.close();

  child.kill('SIGKILL');
  await until('the asker gone', () => !processAlive(child.pid as number) || undefined);
  const before = push.requests.length;
  const withdrawing = approvals.withdrawOrphans('daemon');
  // All closed before their messages and audit records are awaited: the daemon's agent watcher, which
  // looks at the screens meanwhile, must never take one about to be withdrawn for a prompt's question.
  assert.deepEqual([agentId, policyId, reusedId].map((id) => approvals.store.get(id)?.status), ['cancelled', 'cancelled', 'cancelled']);
  const withdrawn = await withdrawing;
  assert.deepEqual(withdrawn.map((a) => a.id).sort(), [agentId, policyId, reusedId].sort());

  const byId = (id: string) => approvals.store.get(id);
  const crash = String.raw`\(crash between \d{4}-\d\d-\d\d \d\d:\d\d:\d\d and \d\d:\d\d:\d\d UTC\)`;
  assert.equal(byId(agentId)?.status, 'cancelled');
  assert.match(byId(agentId)?.why ?? '', new RegExp(`^the daemon that asked stopped ${crash}; the agent's prompt will be asked again if still on screen$`));
  assert.match(byId(policyId)?.why ?? '', new RegExp(`^the daemon that asked stopped ${crash}; nothing was done on its behalf$`));
  assert.match(byId(reusedId)?.why ?? '', /^remux \(pid \d+\) that asked stopped /, 'its pid runs, but as another process');
  assert.equal(byId(liveId as string)?.status, 'pending', 'its asker still waits');
  assert.throws(() => approvals.store.answer(agentId, '1', { by: 'alice', via: 'cli' }), /no longer open: withdrawn: the daemon that asked stopped/, 'answering says why it is closed');

  type Published = { title: string; message: string; sequence_id?: string; actions?: Array<{ action: string }> };
  const published = (): Published[] => push.requests.slice(before).map((r) => JSON.parse(r.body) as Published);
  await until('the replacements', () => published().length === 3);
  const replaced = published().find((p) => p.sequence_id === agentId);
  assert.equal(replaced?.title, 'Approval withdrawn on localhost');
  assert.match(replaced?.message ?? '', new RegExp(`^agent:3f2a wanted to answer Claude Code's prompt in agent session web \\(3f2a\\): Run make\\?\\nWithdrawn: the daemon that asked stopped ${crash}; the agent's prompt will be asked again if still on screen\\.$`));
  assert.deepEqual(replaced?.actions?.map((a) => a.action), ['view'], 'no button that would answer nobody');

  const audited = audit.list().filter((a) => a.begin.operation === 'approval.withdraw');
  assert.deepEqual(audited.map((a) => a.begin.resource).sort(), [agentId, policyId, reusedId].sort());
  assert.equal(audited.find((a) => a.begin.resource === policyId)?.begin.principal, 'daemon');
  assert.match(audited.find((a) => a.begin.resource === policyId)?.begin.reason ?? '', /^withdrawn for alice \(run `make release` on web1\): the daemon that asked stopped/);

  // Once: a second daemon start finds nothing more to withdraw, and sends nothing.
  assert.deepEqual(await approvals.withdrawOrphans('daemon'), []);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(published().length, 3, 'one message per withdrawn question');
  stopLive.abort();
  assert.equal((await live).status, 'cancelled');
});
