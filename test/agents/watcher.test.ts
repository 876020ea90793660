// The watcher against a fake Claude-Code-like agent (fixtures/fake-prompt.mjs) in real tmux on a
// private socket, with the real approvals service (SQLite store, audit): detection within 1 s, the
// answer typed as the prompt's key, a prompt answered at the terminal withdrawing its approval, a
// replaced prompt never receiving the old answer, and expiry typing nothing. A session whose agent's
// hook asks (Claude Code with remux's hooks) gets the hook's approval only, also once it expired.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { AuditStore } from '../../src/audit/store.js';
import { loadConfig } from '../../src/config/config.js';
import { ADMIN_SCOPE } from '../../src/config/principals.js';
import { hookLink } from '../../src/agents/daemon-watch.js';
import { PERMISSION_REQUEST_SOURCE } from '../../src/agents/hooks.js';
import { profile, withOverrides } from '../../src/agents/profiles.js';
import { Watcher, type WatcherEvents } from '../../src/agents/watcher.js';
import { Approvals } from '../../src/notify/service.js';
import { REPO_ROOT } from '../support/cli.js';

const FAKE = join(REPO_ROOT, 'test', 'agents', 'fixtures', 'fake-prompt.mjs');
const ADMIN = { name: 'tester', via: 'cli' as const, scope: ADMIN_SCOPE };

interface Rig {
  socket: string;
  approvals: Approvals;
  watcher: Watcher;
  tmux(...args: string[]): string;
  screen(session: string): string;
  start(session: string, ...commands: string[]): void;
  /** A session whose agent's hook asks as agent session `hooked` (watched with the daemon's hook link). */
  startHooked(session: string, hooked: string, ...commands: string[]): void;
  /** What that hook does: asks about its prompt (the approval, and what became of it). */
  hookAsks(hooked: string, what: string): { id: string; outcome: Promise<unknown> };
}

function rig(t: TestContext, timeoutSeconds = 60, hookGraceMs?: number): Rig {
  const home = mkdtempSync(join(tmpdir(), 'remux-watcher-'));
  const socket = join(home, 'tmux.sock');
  const env = { REMUX_HOME: home };
  const { config } = loadConfig(env);
  const audit = AuditStore.open(join(home, 'audit.db'));
  const approvals = new Approvals({ env, config: { ...config, approvals: { ...config.approvals, timeout_seconds: timeoutSeconds } }, audit });
  const watcher = new Watcher({ socket: { kind: 'path', path: socket }, approvals, host: 'localhost', ...(hookGraceMs === undefined ? {} : { hookGraceMs }) });
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
  // The hooks' approvals still waiting are withdrawn at the end (their waits would keep the test alive).
  const hooksDone = new AbortController();
  t.after(async () => {
    hooksDone.abort();
    await watcher.stop();
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
    approvals.close();
    audit.close();
    rmSync(home, { recursive: true, force: true });
  });
  return {
    socket,
    approvals,
    watcher,
    tmux,
    screen: (session) => tmux('capture-pane', '-p', '-J', '-t', `=${session}:`),
    start(session, ...commands) {
      tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '30', '--', process.execPath, FAKE, ...commands);
      watcher.add({ session, agent: profile('claude'), principal: `agent:${session}` });
    },
    startHooked(session, hooked, ...commands) {
      tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '30', '--', process.execPath, FAKE, ...commands);
      watcher.add({ session, agent: profile('claude'), principal: `code:${session}`, hook: hookLink(approvals, hooked) });
    },
    hookAsks(hooked, what) {
      // Created before ask() first awaits: in the store once this returns.
      const outcome = approvals.ask({ principal: `agent:${hooked}`, host: null, what, reason: 'Claude Code asks', source: PERMISSION_REQUEST_SOURCE }, hooksDone.signal);
      return { id: approvals.store.list().find((a) => a.what === what)!.id, outcome };
    },
  };
}

function next<K extends keyof WatcherEvents>(w: Watcher, event: K, timeoutMs = 5_000): Promise<WatcherEvents[K][0]> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    once(w, event).then(([value]) => value as WatcherEvents[K][0]),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${event} event in ${timeoutMs} ms`)), timeoutMs))),
  ]).finally(() => clearTimeout(timer));
}

async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a new prompt becomes an approval within 1 s; the answer is typed as arrows from the cursor, then Enter', async (t) => {
  const r = rig(t);
  r.start('agent1');
  r.watcher.start();
  await until('the input line', () => r.watcher.state('agent1') === 'waiting');
  r.tmux('kill-session', '-t', '=agent1');
  r.start('agent1', 'rm -rf build');
  // Timed from when the prompt is on the screen: the fake agent's own start (a Node process, 0.2-0.5 s on a
  // loaded 2-core machine) is not the watcher's.
  let askedAt = 0;
  const asking = next(r.watcher, 'asked').then((a) => ((askedAt = Date.now()), a));
  let shown = 0;
  await until('the prompt on screen', () => askedAt !== 0 || (/rm -rf build/.test(r.screen('agent1')) && (shown = Date.now()) > 0), 10_000);
  const asked = await asking;
  const latency = askedAt - (shown || askedAt);
  assert.ok(latency < 1000, `detected ${latency} ms after the prompt was on screen`);
  assert.equal(asked.session, 'agent1');
  assert.deepEqual(asked.approval.options.map((o) => [o.id, o.effect]), [['1', 'allow'], ['2', 'allow'], ['3', 'deny']]);
  assert.match(asked.approval.what, /rm -rf build/);
  // Not its hooks' source (agent:claude), by which the watcher tells their approvals from its own.
  assert.equal(asked.approval.source, 'the screen of tmux session agent1');
  assert.equal(r.approvals.store.get(asked.approval.id)?.status, 'pending');

  const settled = next(r.watcher, 'settled');
  await r.approvals.answer(asked.approval.id, '2', ADMIN, 'cli');
  const s = await settled;
  assert.equal(s.typed, true, s.why);
  await until('the fake agent to print the choice', () => r.screen('agent1').includes("chosen: 2 (Yes, and don't ask again for this command) for rm -rf build"));
  assert.doesNotMatch(r.screen('agent1'), /ignored:/, 'no stray keys');
});

test('the cursor moved at the terminal: the same approval stays, and the keys start from where the cursor is now', async (t) => {
  const r = rig(t);
  r.start('agent7', 'docker system prune');
  r.watcher.start();
  const asked = await next(r.watcher, 'asked');
  r.tmux('send-keys', '-t', '=agent7:', 'Down');
  await new Promise((res) => setTimeout(res, 150));
  r.tmux('send-keys', '-t', '=agent7:', 'Down');
  await until('the cursor on 3', () => r.screen('agent7').includes('❯ 3. No'));
  await new Promise((res) => setTimeout(res, 1200)); // a few ticks: the prompt is the same one
  assert.equal(r.approvals.store.get(asked.approval.id)?.status, 'pending');
  const settled = next(r.watcher, 'settled');
  await r.approvals.answer(asked.approval.id, '1', ADMIN, 'cli');
  assert.equal((await settled).typed, true);
  await until('option 1 chosen', () => r.screen('agent7').includes('chosen: 1 (Yes) for docker system prune'));
  assert.doesNotMatch(r.screen('agent7'), /ignored:/);
});

test('a prompt answered at the terminal cancels its approval', async (t) => {
  const r = rig(t);
  r.start('agent2', 'git push --force');
  r.watcher.start();
  const asked = await next(r.watcher, 'asked');
  const settled = next(r.watcher, 'settled');
  r.tmux('send-keys', '-t', '=agent2:', '3');
  const s = await settled;
  assert.deepEqual(s.outcome, { status: 'cancelled' });
  assert.equal(s.typed, false);
  assert.equal(r.approvals.store.get(asked.approval.id)?.status, 'cancelled');
  assert.match(r.screen('agent2'), /chosen: 3 \(No/);
});

test('an answer never lands in the next prompt: a replaced prompt gets its own approval', async (t) => {
  const r = rig(t);
  r.start('agent3', 'ls', 'rm -rf /');
  r.watcher.start();
  const first = await next(r.watcher, 'asked');
  assert.match(first.approval.what, /\bls\b/);
  const second = next(r.watcher, 'asked');
  r.tmux('send-keys', '-t', '=agent3:', '1'); // the person at the terminal allows `ls`
  const s = await second;
  assert.match(s.approval.what, /rm -rf \//);
  assert.equal(r.approvals.store.get(first.approval.id)?.status, 'cancelled');
  // The old approval can no longer be answered, so its "allow" can never reach `rm -rf /`.
  await assert.rejects(r.approvals.answer(first.approval.id, '1', ADMIN, 'cli'), /no longer open/);
  assert.doesNotMatch(r.screen('agent3'), /for rm -rf \//);
});

test('the keys are not typed when the prompt changed between the answer and the typing', async (t) => {
  const r = rig(t);
  r.start('agent4', 'make deploy', 'make clean');
  // A slow watcher: the screen changes after the answer and before it looks again.
  const slow = new Watcher({ socket: { kind: 'path', path: r.socket }, approvals: r.approvals, intervalMs: 60_000 });
  t.after(() => slow.stop());
  slow.add({ session: 'agent4', agent: profile('claude'), principal: 'agent:agent4' });
  await until('the first prompt', () => r.screen('agent4').includes('make deploy'));
  const asked = next(slow, 'asked');
  await slow.tick();
  const a = await asked;
  r.tmux('send-keys', '-t', '=agent4:', '3'); // answered at the terminal; the next prompt shows
  await until('the next prompt', () => r.screen('agent4').includes('make clean'));
  const settled = next(slow, 'settled');
  await r.approvals.answer(a.approval.id, '1', ADMIN, 'cli'); // before the watcher noticed
  const s = await settled;
  assert.equal(s.typed, false);
  assert.match(s.why, /no longer on the screen/);
  await new Promise((res) => setTimeout(res, 300));
  assert.doesNotMatch(r.screen('agent4'), /for make clean/, 'make clean still waits for its own answer');
});

test('expiry types nothing: the prompt stays for the terminal', async (t) => {
  const r = rig(t, 1);
  r.start('agent5', 'curl https://example.com | sh');
  r.watcher.start();
  const asked = await next(r.watcher, 'asked');
  const s = await next(r.watcher, 'settled', 5_000);
  assert.deepEqual(s.outcome, { status: 'expired' });
  assert.equal(s.typed, false);
  assert.equal(r.approvals.store.get(asked.approval.id)?.status, 'expired');
  await new Promise((res) => setTimeout(res, 700));
  assert.match(r.screen('agent5'), /Do you want to proceed\?/);
  assert.doesNotMatch(r.screen('agent5'), /chosen:/);
  assert.equal(r.approvals.store.list().length, 0, 'the same prompt is not asked again');
});

test('states: working, waiting, idle (unchanged for idle_seconds), gone', async (t) => {
  const r = rig(t);
  r.tmux('new-session', '-d', '-s', 'agent6', '--', '/bin/sh', '-c', 'printf "✻ Thinking… (esc to interrupt)\\n"; sleep 1; printf "\\033[2J\\033[H❯ \\n  ? for shortcuts\\n"; sleep 30');
  r.watcher.add({ session: 'agent6', agent: withOverrides(profile('claude'), { idle_seconds: 1.5 }), principal: 'agent:agent6' });
  const states: string[] = [];
  r.watcher.on('state', (c) => states.push(c.state));
  r.watcher.start();
  await until('idle', () => states.includes('idle'));
  // A first look may come before the shell printed anything (an empty pane: running, nothing recognised).
  assert.deepEqual(states[0] === 'running' ? states.slice(1) : states, ['working', 'waiting', 'idle']);
  const gone = next(r.watcher, 'gone');
  r.tmux('kill-session', '-t', '=agent6');
  assert.equal((await gone).session, 'agent6');
});

test('a custom command (generic profile): running while its screen changes, idle once it stays unchanged for idle_seconds', async (t) => {
  const r = rig(t);
  r.tmux('new-session', '-d', '-s', 'custom1', '--', '/bin/sh', '-c', 'for i in 1 2 3 4 5 6; do echo "step $i"; sleep 0.25; done; sleep 30');
  r.watcher.add({ session: 'custom1', agent: withOverrides(profile('generic'), { idle_seconds: 1 }), principal: 'agent:custom1' });
  const states: string[] = [];
  const at: number[] = [];
  const started = Date.now();
  r.watcher.on('state', (c) => {
    states.push(c.state);
    at.push(Date.now() - started);
  });
  r.watcher.start();
  await until('idle', () => states.includes('idle'));
  assert.deepEqual(states, ['running', 'idle']);
  // The output moved for about 1.5 s, then 1 s unchanged: never idle while it printed.
  assert.ok(at[1]! >= 2000, `idle after ${at[1]} ms`);
});

test("hooked: the prompt is left to its hook's approval, also once that expired; the watcher asks none", async (t) => {
  const r = rig(t, 2, 1000);
  const asked: string[] = [];
  r.watcher.on('asked', ({ approval }) => asked.push(approval.id));
  const hook = r.hookAsks('h8', 'Bash: npm publish');
  r.startHooked('agent8', 'h8', 'npm publish');
  r.watcher.start();
  const deferred = await next(r.watcher, 'deferred');
  assert.equal(deferred.approvalId, hook.id);
  assert.equal(r.watcher.state('agent8'), 'permission');
  await hook.outcome;
  assert.equal(r.approvals.store.get(hook.id)?.status, 'expired');
  await new Promise((res) => setTimeout(res, 2000)); // past the grace, the expired prompt still on screen
  assert.match(r.screen('agent8'), /Do you want to proceed\?/);
  assert.equal(r.watcher.state('agent8'), 'permission');
  assert.deepEqual(asked, []);
  assert.deepEqual(r.approvals.store.list({ all: true }).map((a) => a.id), [hook.id]);
});

test("hooked: answered at the terminal, the hook's approval is withdrawn; the next prompt waits for its own", async (t) => {
  const r = rig(t, 60, 1000);
  const first = r.hookAsks('h9', 'Bash: git push');
  r.startHooked('agent9', 'h9', 'git push', 'make clean');
  r.watcher.start();
  assert.equal((await next(r.watcher, 'deferred')).approvalId, first.id);
  r.tmux('send-keys', '-t', '=agent9:', '3');
  await until('the hook approval withdrawn', () => r.approvals.store.get(first.id)?.status === 'cancelled');
  // The next prompt is not the first one's: the old approval covers one prompt only.
  const second = r.hookAsks('h9', 'Bash: make clean');
  assert.equal((await next(r.watcher, 'deferred')).approvalId, second.id);
  assert.deepEqual(r.approvals.store.list().map((a) => a.id), [second.id]);
});

test('hooked, but the hook stays silent: the watcher asks after the grace, and withdraws that should the hook ask late', async (t) => {
  const r = rig(t, 60, 1000);
  r.startHooked('agent10', 'h10', 'rm -rf build');
  r.watcher.start();
  await until('the prompt', () => r.watcher.state('agent10') === 'permission');
  const seen = Date.now();
  const own = await next(r.watcher, 'asked');
  assert.ok(Date.now() - seen >= 700, `asked ${Date.now() - seen} ms after the prompt showed: the hook had its grace`);
  assert.equal(own.approval.principal, 'code:agent10');
  const late = r.hookAsks('h10', 'Bash: rm -rf build');
  assert.equal((await next(r.watcher, 'deferred')).approvalId, late.id);
  await until("the watcher's own withdrawn", () => r.approvals.store.get(own.approval.id)?.status === 'cancelled');
  assert.deepEqual(r.approvals.store.list().map((a) => a.id), [late.id]);
});

test('with no session to watch, the watcher runs no tmux; once one is added, it looks every interval', async (t) => {
  // A tmux on the PATH that logs each run, then is the real one.
  const dir = mkdtempSync(join(tmpdir(), 'remux-watcher-path-'));
  const log = join(dir, 'runs');
  writeFileSync(join(dir, 'tmux'), `#!/bin/sh\necho run >> ${log}\nexec ${execFileSync('sh', ['-c', 'command -v tmux'], { encoding: 'utf8' }).trim()} "$@"\n`, { mode: 0o755 });
  const path = process.env.PATH;
  process.env.PATH = `${dir}:${path}`;
  const home = mkdtempSync(join(tmpdir(), 'remux-watcher-'));
  const audit = AuditStore.open(join(home, 'audit.db'));
  const approvals = new Approvals({ env: { REMUX_HOME: home }, config: loadConfig({ REMUX_HOME: home }).config, audit });
  const watcher = new Watcher({ socket: { kind: 'path', path: join(home, 'tmux.sock') }, approvals, host: 'localhost', intervalMs: 20 });
  t.after(async () => {
    await watcher.stop();
    process.env.PATH = path;
    approvals.close();
    audit.close();
    rmSync(home, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });
  const runs = (): number => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').length - 1 : 0);
  watcher.start();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(runs(), 0);
  watcher.add({ session: 'agent', agent: profile('claude'), principal: 'code:agent' });
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(runs() >= 3, `${runs()} tmux runs in 300 ms at a 20 ms interval`);
});
