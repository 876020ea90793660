// "Hold, then go" (relay protocol 4): the gateway sends a command while its audit begin is still going to
// disk; the agent checks it and writes its own begin meanwhile, and starts it only on the gateway's go.
// Real gateway route and perform(), real agents with their own SQLite audit stores, real commands: a
// gateway begin that fails runs nothing there (recorded as not run), an agent's refusal is still one, a
// go that never comes runs nothing, and an agent of protocol 3 gets the command only after the begin.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { WebSocket } from 'ws';
import { AgentSession } from '../../src/agent/serve.js';
import type { AuditAction } from '../../src/audit/types.js';
import { createContext } from '../../src/core/context.js';
import { AGENT_PATH, PROTOCOL_VERSION, type AgentFrame } from '../../src/gateway/relay/protocol.js';
import { heldStages } from '../exec/helpers.js';
import { POLICY, PROGRAMS, startRelay, type Relay, type StartedAgent } from './harness.js';

/** The actions of an audit store whose argv, joined, is `command`. */
const actions = (store: { list(o: object): AuditAction[] }, command: string): AuditAction[] => store.list({ level: 'info' }).filter((a) => (a.begin.argv ?? []).join(' ') === command);

const until = async (what: string, ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !ok(); i++) await sleep(25);
  assert.ok(ok(), what);
};

describe('relay: a command held for the gateway\'s go', () => {
  let relay: Relay;
  let agent: StartedAgent;
  before(async () => {
    // The agent's own policy does not allow seq, which the gateway's does.
    relay = await startRelay({ agentPolicy: POLICY(PROGRAMS.replace('|seq', '')) });
    agent = relay.startAgent('laptop');
    await relay.waitConnected('laptop');
  });
  after(() => relay.close());

  test('the gateway\'s audit begin failing: the agent runs nothing, and records the command as not run', async () => {
    // The gateway's store refuses this one begin, as a full disk or an I/O error would fail its transaction.
    const db = new Database(relay.ctx.auditFile);
    db.exec(`CREATE TRIGGER begin_fails BEFORE INSERT ON audit WHEN NEW.kind = 'begin' AND NEW.argv = '["echo","should-not-run"]' BEGIN SELECT RAISE(ABORT, 'the disk is gone'); END;`);
    try {
      let stdout = '';
      await assert.rejects(relay.run('laptop', 'echo should-not-run', { onStdout: (c) => (stdout += c.toString()) }), /the disk is gone/);
      await until('the agent ends its record', () => actions(agent.ctx.audit, 'echo should-not-run').some((a) => a.end !== null));
      const [held] = actions(agent.ctx.audit, 'echo should-not-run');
      assert.equal(held!.begin.decision, 'allow', 'the agent checked and recorded it before the gateway withdrew it');
      assert.equal(held!.end!.exitCode, 130);
      assert.match(held!.end!.error ?? '', /^not run: the gateway withdrew it before it started$/);
      assert.equal(stdout, '', 'nothing ran');
      assert.equal(actions(relay.ctx.audit, 'echo should-not-run').length, 0, 'the gateway has no record of it');
    } finally {
      db.exec('DROP TRIGGER begin_fails');
      db.close();
    }
    const after = await relay.run('laptop', 'echo fine');
    assert.equal(after.stdout, 'fine\n', 'the next command runs');
  });

  test('the agent\'s own refusal still arrives as a refusal (77), recorded on both sides', async () => {
    const r = await relay.run('laptop', 'seq 2');
    assert.equal(r.exitCode, 77, r.stderr);
    assert.match(r.stderr, /^remux: agent laptop's own policy: execute_binary \S*seq: no rule of policy read_only allows it \(resolved from seq\)\n$/, 'which side refused, said once');
    assert.equal(r.stdout, '');
    assert.equal(actions(relay.ctx.audit, 'seq 2')[0]?.end?.exitCode, 77);
    assert.equal(actions(agent.ctx.audit, 'seq 2')[0]?.begin.decision, 'deny');
  });

  test('a command runs once released, its output and status back', async () => {
    const r = await relay.run('laptop', 'echo released');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, 'released\n');
    assert.equal(actions(agent.ctx.audit, 'echo released')[0]?.end?.exitCode, 0);
  });
});

describe('an agent holding a command', () => {
  const home = mkdtempSync(join(tmpdir(), 'remux-agent-hold-'));
  writeFileSync(join(home, 'policies.yaml'), POLICY(PROGRAMS));
  const ctx = createContext({ env: { REMUX_HOME: home } });
  const frames: AgentFrame[] = [];
  const session = new AgentSession('laptop', ctx, (f) => frames.push(f), PROTOCOL_VERSION, 400);
  const of = (id: number): AgentFrame[] => frames.filter((f) => 'id' in f && f.id === id);
  const exec = (id: number, command: string): void =>
    session.handle({ type: 'exec', id, command, cwd: '/', timeoutMs: 10_000, pipefail: false, sandbox: null, policy: 'read_only', own: false, hold: true });
  after(async () => {
    session.cancelAll();
    await ctx.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('checked and recorded at once, started only on its go', async () => {
    exec(1, 'echo went');
    await until('the agent records it', () => actions(ctx.audit, 'echo went').length === 1);
    // Prepared meanwhile: forked by this machine's spawner, waiting there to execute.
    await until('its stage is forked and waits', () => heldStages().length === 1);
    await sleep(100);
    assert.deepEqual(of(1), [], 'nothing runs before the go');
    session.handle({ type: 'go', id: 1 });
    await until('it ends', () => of(1).some((f) => f.type === 'result'));
    assert.equal(Buffer.from((of(1).find((f) => f.type === 'out') as { data: string }).data, 'base64').toString(), 'went\n');
    assert.equal((of(1).find((f) => f.type === 'result') as { result: { exitCode: number } }).result.exitCode, 0);
  });

  test('a go that never comes: after the hold timeout it is not run, and recorded so', async () => {
    const started = Date.now();
    exec(2, 'echo never-released');
    await until('it ends', () => of(2).some((f) => f.type === 'result'));
    assert.ok(Date.now() - started >= 400, `ended after ${Date.now() - started} ms`);
    const result = (of(2).find((f) => f.type === 'result') as { result: { exitCode: number; error: string | null } }).result;
    assert.equal(result.exitCode, 125);
    assert.equal(result.error, 'not run: the gateway did not release it within 400 ms');
    assert.ok(!of(2).some((f) => f.type === 'out'), 'no output: nothing ran');
    const [held] = actions(ctx.audit, 'echo never-released');
    assert.equal(held?.end?.error, 'not run: the gateway did not release it within 400 ms');
    session.handle({ type: 'go', id: 2 });
    await sleep(100);
    assert.equal(of(2).length, 1, 'a late go is dropped');
    assert.deepEqual(heldStages(), [], 'the stage prepared for it was killed unrun');
  });

  test('remux\'s own commands are never held: refused, not run', async () => {
    session.handle({ type: 'exec', id: 3, command: 'true', cwd: '/', timeoutMs: 10_000, pipefail: false, sandbox: null, policy: null, own: true, hold: true });
    assert.match((of(3)[0] as { message: string }).message, /does not hold remux's own commands; nothing was run/);
  });
});

describe('gateway: agents of protocol 3 and 4', () => {
  let relay: Relay;
  before(async () => {
    relay = await startRelay();
  });
  after(() => relay.close());

  /** A raw agent speaking protocol `v` that answers every exec with `ran` and status 0; the frames it got. */
  async function rawAgent(v: number): Promise<{ frames: Array<Record<string, unknown>>; close(): void }> {
    const ws = new WebSocket(`${relay.url}${AGENT_PATH}`, { headers: { authorization: `Bearer ${relay.tokens.laptop}` } });
    const frames: Array<Record<string, unknown>> = [];
    ws.on('message', (d) => {
      const f = JSON.parse(String(d)) as Record<string, unknown>;
      frames.push(f);
      // Protocol 4 answers a held command once released; protocol 3 knows nothing of holding.
      const answer = (f.type === 'exec' && f.hold !== true) || f.type === 'go';
      if (!answer) return;
      ws.send(JSON.stringify({ type: 'out', id: f.id, stream: 'stdout', data: Buffer.from('ran\n').toString('base64') }));
      ws.send(JSON.stringify({ type: 'result', id: f.id, result: { exitCode: 0, signal: null, timedOut: false, aborted: false, truncated: false, bytesOut: 4, bytesErr: 0, durationMs: 1, error: null, errorKind: null } }));
    });
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'hello', v, name: 'laptop', user: 'x', home: '/', securePath: '/usr/bin:/bin', sandbox: { available: false, detail: 't', staticFallback: false }, version: 't' }));
    await relay.waitConnected('laptop');
    return {
      frames,
      close: () => {
        ws.close();
      },
    };
  }

  test('an agent of protocol 3 gets the command without hold (after the begin), and it runs', async () => {
    const old = await rawAgent(3);
    try {
      const r = await relay.run('laptop', 'echo old');
      assert.equal(r.exitCode, 0, r.message ?? r.stderr);
      assert.equal(r.stdout, 'ran\n');
      const sent = old.frames.find((f) => f.type === 'exec' && f.own === false)!;
      assert.equal('hold' in sent, false, 'a frame protocol 3 knows');
      assert.ok(!old.frames.some((f) => f.type === 'go'));
    } finally {
      old.close();
    }
    await until('the old agent is gone', () => !relay.ctx.registry.agents.get('laptop')?.open);
  });

  test('an agent of protocol 4 gets it held, then its go', async () => {
    const agent = await rawAgent(4);
    try {
      const r = await relay.run('laptop', 'echo held');
      assert.equal(r.exitCode, 0, r.message ?? r.stderr);
      const sent = agent.frames.find((f) => f.type === 'exec' && f.own === false)!;
      assert.equal(sent.hold, true);
      assert.deepEqual(agent.frames.filter((f) => f.type === 'go'), [{ type: 'go', id: sent.id }]);
    } finally {
      agent.close();
    }
  });
});
