// A Claude Code session with remux's hooks gets one approval per permission prompt, the hook's, though
// the daemon's watcher sees the same dialog on its screen: real daemon, real tmux, a fake `claude` on
// PATH (fixtures/fake-claude.mjs) that draws the dialog while its PermissionRequest hook runs, as Claude
// Code does. Its approval says it comes from Claude Code in the session, by name. Also: an expired hook
// approval leaves the prompt to the terminal (no second approval, state permission, one message after the
// question: ntfy's replacement of it); answered at the terminal, the hook's approval is withdrawn; across a
// daemon restart the new watcher still leaves the prompt to the hook's approval, and so does the watcher
// of a daemon started after one that crashed (nothing handed over, the hook still waits); a dialog no
// hook asks about still gets the watcher's approval (the fallback, and proof the count could differ).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HOOK_GRACE_MS } from '../../src/agents/watcher.js';
import { AuditStore } from '../../src/audit/store.js';
import { processAlive } from '../../src/core/process.js';
import { ApprovalStore, type Approval } from '../../src/notify/approvals.js';
import { REPO_ROOT, remux, tempHome } from '../support/cli.js';
import { httpRecorder } from '../support/http-recorder.js';
import { until } from '../support/until.js';
import { endTmuxServer } from '../support/tmux.js';

const FAKE = join(REPO_ROOT, 'test', 'agents', 'fixtures', 'fake-claude.mjs');

describe('hooked Claude Code sessions: one approval per permission prompt', { timeout: 150_000 }, () => {
  const t = tempHome();
  const socket = `remux-hook-watch-${process.pid}`;
  const work = mkdtempSync(join(tmpdir(), 'remux-hook-watch-'));
  const bin = join(work, 'bin');
  const repo = join(work, 'repo');
  const env = { ...t.env, REMUX_TMUX_SOCKET: socket, PATH: `${bin}:${process.env.PATH}` };
  const channel = httpRecorder();
  let store: ApprovalStore;
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  const config = (timeout: number): void =>
    writeFileSync(
      join(t.home, 'config.yaml'),
      `approvals:\n  timeout_seconds: ${timeout}\nnotify:\n  channels:\n    - { type: webhook, url: "${channel.base()}/hook", allow_internal: true }\n    - { type: ntfy, url: "${channel.base()}", topic: t, allow_internal: true }\n`,
    );

  before(async () => {
    await channel.listen();
    mkdirSync(bin);
    mkdirSync(repo);
    writeFileSync(join(bin, 'claude'), `#!/bin/sh\nexec ${process.execPath} ${FAKE} "$@"\n`, { mode: 0o755 });
    assert.equal((await remux(['config', 'init'], { env })).code, 0);
    config(20);
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env });
    assert.equal(started.code, 0, started.stderr);
    store = ApprovalStore.open(join(t.home, 'approvals.db'), join(t.home, 'approvals.key'));
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env });
    endTmuxServer(socket);
    store.close();
    await channel.close();
    t.remove();
    rmSync(work, { recursive: true, force: true });
  });

  async function start(): Promise<string> {
    const r = await remux(['code', 'start', repo, '--no-attach', '--agent', 'claude', '--sandbox', 'none'], { env, via: 'node' });
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.split(' ')[0] as string;
    await until('fake claude', () => pane(id).includes('FAKE-CLAUDE ready hooks=Notification,PermissionRequest'), 15_000);
    return id;
  }
  const pane = (id: string): string => tmux('capture-pane', '-p', '-J', '-t', `=agent-${id}:`);
  let n = 0;
  const send = (id: string, line: string): void => {
    tmux('send-keys', '-t', `=agent-${id}:`, '-l', `t${++n} ${line}`);
    tmux('send-keys', '-t', `=agent-${id}:`, 'Enter');
  };
  /** Every approval about session `id`: its hook's and the watcher's (both ask as agent:ID). */
  const approvalsOf = (id: string): Approval[] => store.list({ all: true }).filter((a) => a.principal === `agent:${id}`);
  const state = async (id: string): Promise<string | undefined> => {
    const r = await remux(['code', 'status', '--json'], { env });
    return (JSON.parse(r.stdout) as Array<{ id: string; state: string }>).find((s) => s.id === id)?.state;
  };
  async function untilState(id: string, want: string): Promise<void> {
    for (const end = Date.now() + 15_000; Date.now() < end; await sleep(200)) if ((await state(id)) === want) return;
    throw new Error(`session ${id} never reached state ${want} (now ${await state(id)})`);
  }
  /** The daemon's watcher has left session `id`'s prompt to the hook's approval `approval` (its log says so). */
  const deferred = (id: string, approval: string): boolean =>
    readFileSync(join(t.home, 'run', 'daemon.log'), 'utf8').includes(`agent session agent-${id}: permission prompt, asked by its hook (approval ${approval})`);
  /** Notifications the channel received of `event` mentioning `text`. */
  const sent = (event: string, text: string): number => channel.requests.filter((r) => r.path === '/hook' && r.body.includes(`"event":"${event}"`) && r.body.includes(text)).length;
  /** What ntfy was sent mentioning `text`, in order. */
  const ntfy = (text: string): Array<{ title: string; message: string; sequence_id?: string }> =>
    channel.requests.filter((r) => r.path === '/' && r.body.includes(text)).map((r) => JSON.parse(r.body) as { title: string; message: string; sequence_id?: string });
  /** The session's name, as `remux code ls` shows it. */
  const nameOf = async (id: string): Promise<string> => {
    const r = await remux(['code', 'ls', '--json'], { env });
    return (JSON.parse(r.stdout) as Array<{ id: string; name: string }>).find((s) => s.id === id)!.name;
  };

  it('the hook asks, the watcher does not; answered on the phone, nothing is left pending', async () => {
    const id = await start();
    send(id, 'dialog npm publish');
    const asked = await until('the hook approval', () => approvalsOf(id)[0]);
    await untilState(id, 'permission');
    await until('the watcher leaving the prompt to the hook', () => deferred(id, asked.id));
    // Past the watcher's grace the dialog is still on screen, and still only the hook has asked.
    await sleep(HOOK_GRACE_MS + 1500);
    assert.match(pane(id), /Do you want to proceed\?/);
    assert.deepEqual(approvalsOf(id).map((a) => [a.principal, a.source, a.what]), [[`agent:${id}`, 'agent:claude', 'Bash: npm publish']]);
    // Where it comes from, in words; the watcher still tells it by its source (agent:claude), above.
    const from = `Claude Code in agent session ${await nameOf(id)} (${id})`;
    const listed = await remux(['approvals', 'ls', '--json'], { env });
    assert.deepEqual((JSON.parse(listed.stdout) as Approval[]).map((a) => [a.id, a.source, a.from]), [[asked.id, 'agent:claude', from]]);
    const table = await remux(['approvals', 'ls'], { env });
    assert.match(table.stdout, /^ID +STATUS +ASKED BY +FROM +HOST /);
    assert.ok(table.stdout.split('\n')[1]?.includes(from), table.stdout);

    const answered = await remux(['approvals', 'answer', asked.id, 'approve'], { env });
    assert.equal(answered.code, 0, answered.stderr);
    await until('the decision in claude', () => /HOOK decided .*"behavior":"allow"/.test(pane(id)), 15_000);
    const left = await remux(['approvals', 'ls', '--json'], { env });
    assert.deepEqual(JSON.parse(left.stdout), [], 'no sibling approval pending');
    assert.deepEqual(approvalsOf(id).map((a) => a.status), ['answered']);
    assert.equal(sent('approval.requested', 'npm publish'), 1, 'one question reached the phone');
    // Raised in the session's supervisor, not the daemon: still linked to the console the daemon serves.
    const message = JSON.parse(channel.requests.find((r) => r.body.includes('"event":"approval.requested"') && r.body.includes('npm publish'))!.body) as {
      title: string; message: string; url: string | null; attach: string | null; actions: Array<{ label: string; url: string }>;
    };
    const consoleUrl = (JSON.parse(readFileSync(join(t.home, 'run', 'console.json'), 'utf8')) as { url: string }).url;
    assert.equal(message.url, `${consoleUrl}#/approvals?id=${asked.id}`);
    assert.deepEqual(message.actions.map((a) => [a.label, a.url.startsWith(`${consoleUrl}approvals/${asked.id}?option=`)]), [['Approve', true], ['Deny', true]]);
    assert.equal(message.attach, `remux code attach ${id}`);
    assert.equal(message.title, 'Approval needed on localhost');
    assert.ok(message.message.endsWith(`\nFrom ${from}`), message.message);
    const audit = AuditStore.open(join(t.home, 'audit.db'));
    try {
      const answers = audit.list({}).map((e) => e.begin).filter((b) => b.operation === 'approval.answer');
      assert.deepEqual(answers.map((b) => b.resource), [asked.id], 'one answer, to the hook approval');
    } finally {
      audit.close();
    }
  });

  it('the hook approval expires: the prompt stays for the terminal, no watcher approval, state permission, one message after the question', async () => {
    config(2);
    const id = await start();
    config(20);
    send(id, 'dialog make release');
    const asked = await until('the hook approval', () => approvalsOf(id)[0]);
    await until('its expiry', () => store.get(asked.id)?.status === 'expired', 10_000);
    await until('the replacement of its notification', () => ntfy('make release').length > 1, 15_000);
    await sleep(HOOK_GRACE_MS + 1500);
    assert.match(pane(id), /Do you want to proceed\?/, 'the dialog waits at the terminal');
    assert.deepEqual(approvalsOf(id).map((a) => [a.id, a.status]), [[asked.id, 'expired']], 'the watcher raised none for the same prompt');
    assert.equal(await state(id), 'permission');
    // One message follows the question on the phone: the one replacing it, saying how it ended.
    const [question, ...after] = ntfy('make release');
    assert.deepEqual([question?.title, question?.sequence_id], ['Approval needed on localhost', asked.id]);
    assert.deepEqual(after.map((m) => [m.title, m.sequence_id]), [['Approval expired on localhost', asked.id]]);
    assert.match(after[0]!.message, /No answer within 2 s: the prompt waits at the terminal\.$/);
    // A webhook, which cannot replace a message, hears only the question.
    assert.equal(sent('approval.requested', 'make release'), 1);
    assert.equal(channel.requests.filter((r) => r.path === '/hook' && r.body.includes('make release')).length, 1);
  });

  it('answered at the terminal while the hook waits: its approval is withdrawn', async () => {
    const id = await start();
    send(id, 'dialog git push');
    const asked = await until('the hook approval', () => approvalsOf(id)[0]);
    await until('the watcher leaving the prompt to the hook', () => deferred(id, asked.id));
    send(id, 'terminal');
    await until('the hook approval withdrawn', () => store.get(asked.id)?.status === 'cancelled', 10_000);
    const left = await remux(['approvals', 'ls', '--json'], { env });
    assert.deepEqual(JSON.parse(left.stdout), []);
    assert.equal(sent('approval.expired', 'git push'), 0, 'a withdrawn approval is not reported as expired');
  });

  it('a daemon restart while the hook waits: the new watcher leaves the prompt to the same hook approval', async () => {
    config(60); // outlasts the restart and the watcher's grace
    const id = await start();
    config(20);
    send(id, 'dialog cargo publish');
    const asked = await until('the hook approval', () => approvalsOf(id)[0]);
    await until('the watcher leaving the prompt to the hook', () => deferred(id, asked.id));
    assert.equal((await remux(['daemon', 'stop'], { env })).code, 0);
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env });
    assert.equal(started.code, 0, started.stderr);
    // Past the new watcher's grace: it took the hook's approval for the prompt's, and asked nothing itself.
    await sleep(HOOK_GRACE_MS + 2500);
    assert.deepEqual(approvalsOf(id).map((a) => [a.id, a.status]), [[asked.id, 'pending']]);
    assert.equal((await remux(['approvals', 'answer', asked.id, 'approve'], { env })).code, 0);
    await until('the decision in claude', () => /HOOK decided .*"behavior":"allow"/.test(pane(id)), 15_000);
  });

  it('a daemon crash (SIGKILL) while the hook waits: its approval stays open (the supervisor waits), and the new watcher leaves the prompt to it', async () => {
    config(60); // outlasts the restart and the watcher's grace
    const id = await start();
    config(20);
    send(id, 'dialog npm publish');
    const asked = await until('the hook approval', () => approvalsOf(id)[0]);
    await until('the watcher leaving the prompt to the hook', () => deferred(id, asked.id));
    await sleep(3000); // the crash comes well after the hook asked, as it would on a phone's time
    const pid = Number(readFileSync(join(t.home, 'run', 'remux.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    await until('the daemon gone', () => !processAlive(pid) || undefined);
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env });
    assert.equal(started.code, 0, started.stderr);
    // Past the new watcher's grace: nothing handed over, yet it took the hook's approval for the prompt's.
    await sleep(HOOK_GRACE_MS + 2500);
    assert.deepEqual(approvalsOf(id).map((a) => [a.id, a.status]), [[asked.id, 'pending']], 'not withdrawn (its asker runs), not asked a second time');
    assert.equal((await remux(['approvals', 'answer', asked.id, 'approve'], { env })).code, 0);
    await until('the decision in claude', () => /HOOK decided .*"behavior":"allow"/.test(pane(id)), 15_000);
  });

  it('a dialog its hook does not ask about (none covers it, or the hook failed): the watcher asks after the grace', async () => {
    const id = await start();
    send(id, 'bare rm -rf build');
    await untilState(id, 'permission');
    const seen = Date.now();
    const asked = await until('the watcher approval', () => approvalsOf(id)[0], HOOK_GRACE_MS + 10_000);
    assert.ok(Date.now() - seen >= HOOK_GRACE_MS / 2, 'not before the hook had its chance');
    assert.match(asked.what, new RegExp(`answer claude's prompt in agent session \\S+ \\(${id}\\): .*rm -rf build`));
    assert.equal(asked.principal, `agent:${id}`, 'the same name as its hooks\' approvals');
    assert.equal(asked.host, 'localhost');
    const message = await until('its message', () => channel.requests.find((r) => r.body.includes('"event":"approval.requested"') && r.body.includes(asked.id)));
    assert.equal((JSON.parse(message.body) as { attach: string | null }).attach, `remux code attach ${id}`);
    assert.equal(approvalsOf(id).length, 1);
    await sleep(1500); // the watcher's next looks
    assert.equal(store.get(asked.id)?.status, 'pending', "the watcher's question stays open: not taken for its hook's and withdrawn");
    const killed = await remux(['code', 'kill', id, '-f'], { env });
    assert.equal(killed.code, 0, killed.stderr);
    await until('its approval withdrawn with the session', () => store.get(asked.id)?.status === 'cancelled', 10_000);
  });
});
