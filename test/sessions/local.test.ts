// Session actions through perform() against real tmux on this machine, on a private socket (-S in a
// temp dir: the machine's own tmux servers are never touched): the inventory and its cache, create
// with a policy-checked command, hostile names, send and capture, kill, and the attach primitive.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { asPrincipal, createContext, type GatewayContext } from '../../src/core/context.js';
import { EXIT } from '../../src/core/exit-codes.js';
import { perform } from '../../src/core/perform.js';
import type { PerformResult, Scope, SessionAction } from '../../src/core/types.js';
import type { AttachStream } from '../../src/sessions/attach.js';
import { Sessions } from '../../src/sessions/service.js';
import { until } from '../support/until.js';

const POLICIES = `policies:
  sess:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: sleep|echo|cat }
      - { operation: write_stdout, resource: null }
`;

describe('tmux sessions on the local host', { timeout: 60_000 }, () => {
  const home = mkdtempSync(join(tmpdir(), 'remux-sessions-'));
  const socket = join(home, 'tmux.sock');
  /** Host lone's server: one session at a time, so that a kill ends the server. */
  const loneSocket = join(home, 'lone.sock');
  let ctx: GatewayContext;
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
  const exists = (name: string): boolean => {
    try {
      tmux('has-session', '-t', `=${name}`);
      return true;
    } catch {
      return false;
    }
  };
  const run = async (action: SessionAction): Promise<PerformResult & { out: string }> => {
    let out = '';
    const r = await perform(ctx, action, { onStdout: (c) => (out += c.toString()), onStderr: () => {} });
    return { ...r, out };
  };
  const sessionsOf = async (fresh = false): Promise<string[]> => {
    const r = await run({ kind: 'session.list', host: 'box', fresh });
    const user = r.sessions?.users[0];
    assert.ok(user, JSON.stringify(r));
    return user.sessions.map((s) => s.name);
  };
  /** Polls the pane until `pattern` shows (tmux and the shell answer asynchronously). */
  const paneShows = async (name: string, pattern: RegExp): Promise<string> => {
    let text = '';
    for (let i = 0; i < 100 && !pattern.test(text); i++) {
      if (i > 0) await sleep(20);
      text = (await run({ kind: 'session.capture', host: 'box', session: name })).out;
    }
    assert.match(text, pattern);
    return text;
  };

  before(() => {
    writeFileSync(join(home, 'policies.yaml'), POLICIES);
    writeFileSync(join(home, 'hosts.yaml'), `hosts:\n  box:\n    transport: local\n    tmux_socket: ${socket}\n  lone:\n    transport: local\n    tmux_socket: ${loneSocket}\n`);
    ctx = createContext({ env: { REMUX_HOME: home, HOME: home } });
  });
  after(async () => {
    try {
      tmux('kill-server');
    } catch {
      // No server left.
    }
    await ctx.close();
    // The server removes its socket as it exits, after kill-server returned.
    for (let i = 0; i < 100 && existsSync(socket); i++) await sleep(10);
    rmSync(home, { recursive: true, force: true });
  });

  test('no server is its own state, then sessions appear in the cache as remux creates them', async () => {
    const first = await run({ kind: 'session.list', host: 'box' });
    assert.equal(first.outcome, 'ok');
    assert.deepEqual(first.sessions?.users.map((u) => u.state), ['no_server']);

    const made = await run({ kind: 'session.new', host: 'box', session: 's1', callerCwd: home });
    assert.equal(made.outcome, 'ok', made.message ?? '');
    // A change made through remux refreshed the cache at once: no fresh read needed.
    assert.deepEqual(await sessionsOf(), ['s1']);
    // A change made behind remux's back shows only after a refresh (a sweep, or --refresh).
    tmux('new-session', '-d', '-s', 'oob');
    assert.deepEqual(await sessionsOf(), ['s1']);
    assert.deepEqual(await sessionsOf(true), ['oob', 's1']);
    const s1 = (await run({ kind: 'session.list', host: 'box' })).sessions!.users[0]!;
    assert.equal(s1.state, 'ok');
    const listed = s1.sessions.find((s) => s.name === 's1')!;
    assert.equal(listed.windows, 1);
    assert.equal(listed.attached, 0);
    assert.ok(Math.abs(Date.parse(listed.created) - Date.now()) < 60_000);
  });

  test('send types text and keys; capture shows the pane, or its last N lines', async () => {
    const sent = await run({ kind: 'session.send', host: 'box', session: 's1', items: [{ text: 'echo sum-$((6*7));' }, { key: 'Enter' }] });
    assert.equal(sent.outcome, 'ok', sent.message ?? '');
    // The shell ran what was typed (the final ; arrived too): the sum, not the text; then wait for
    // its next prompt, so the last two lines are settled before they are read.
    await paneShows('s1', /^sum-42\n.*\S/m);
    const last = await run({ kind: 'session.capture', host: 'box', session: 's1', lines: 2 });
    assert.equal(last.out.split('\n').length, 3, JSON.stringify(last.out));
    assert.match(last.out, /^sum-42\n/);
  });

  test('a startup command allowed by the policy runs in the session; one it denies creates nothing', async () => {
    const ok = await run({ kind: 'session.new', host: 'box', session: 'sleeper', command: 'sleep 30', policy: 'sess', callerCwd: home });
    assert.equal(ok.outcome, 'ok', ok.message ?? '');
    const shell = tmux('display-message', '-p', '-t', '=sleeper:', '#{pane_pid}').trim();
    // The pane's shell starts it: a fork of the shell until it execs.
    const processes = (): string => execFileSync('ps', ['-o', 'args=', '--ppid', shell, '--pid', shell], { encoding: 'utf8' });
    await until('sleep 30 in the pane', () => /^sleep 30$/m.test(processes()) || undefined).catch(() => assert.fail(processes()));

    const denied = await run({ kind: 'session.new', host: 'box', session: 'evil', command: 'rm -rf /tmp/x', policy: 'sess', callerCwd: home });
    assert.equal(denied.outcome, 'denied');
    assert.equal(denied.exitCode, EXIT.DENIED);
    assert.match(denied.message ?? '', /execute_binary \/usr\/bin\/rm: no rule of policy sess allows it/);
    const syntax = await run({ kind: 'session.new', host: 'box', session: 'evil', command: 'echo $(id)', policy: 'sess', callerCwd: home });
    assert.equal(syntax.exitCode, EXIT.USAGE);
    assert.ok(!exists('evil'));
    const audited = ctx.audit.list({}).filter((a) => a.begin.operation === 'session.new' && a.begin.resource?.endsWith(':evil'));
    assert.equal(audited.length, 2);
    assert.ok(audited.every((a) => a.begin.decision === 'deny' && a.begin.principal === ctx.principal.name));
  });

  test('hostile names are refused before tmux runs; -t is a name, matched exactly', async () => {
    const before = tmux('list-sessions', '-F', '#{session_name}');
    for (const name of ['a;b', '../x', 'x'.repeat(65), '', 'séance', '$(id)', 'a:b']) {
      const r = await run({ kind: 'session.new', host: 'box', session: name, callerCwd: home });
      assert.equal(r.exitCode, EXIT.USAGE, name);
      assert.match(r.message ?? '', /^bad session name/);
      const k = await run({ kind: 'session.kill', host: 'box', session: name });
      assert.equal(k.exitCode, EXIT.USAGE, name);
    }
    assert.equal(tmux('list-sessions', '-F', '#{session_name}'), before);

    const dash = await run({ kind: 'session.new', host: 'box', session: '-t', callerCwd: home });
    assert.equal(dash.outcome, 'ok', dash.message ?? '');
    assert.ok(exists('-t'));
    // "s" is a prefix of "s1" and "sleeper": tmux would pick one of them for a bare -t s.
    const prefix = await run({ kind: 'session.kill', host: 'box', session: 's' });
    assert.equal(prefix.exitCode, EXIT.FAILURE);
    assert.match(prefix.message ?? '', /^no session "s" on box for tmux user \S+ \(sessions there: [^)]*\bs1\b[^)]*\); see `remux session ls --host box`$/);
    assert.ok(exists('s1') && exists('sleeper'));
    assert.equal((await run({ kind: 'session.kill', host: 'box', session: '-t' })).outcome, 'ok');
    assert.ok(!exists('-t'));
  });

  test('kill ends the session and the cache says so; killing it again fails: no such session, and which there are', async () => {
    const killed = await run({ kind: 'session.kill', host: 'box', session: 'sleeper' });
    assert.equal(killed.outcome, 'ok');
    assert.ok(!(await sessionsOf()).includes('sleeper'));
    const again = await run({ kind: 'session.kill', host: 'box', session: 'sleeper' });
    assert.equal(again.exitCode, EXIT.FAILURE);
    assert.match(again.message ?? '', /^no session "sleeper" on box for tmux user \S+ \(sessions there: (?![^)]*sleeper)/);
    const record = ctx.audit.list({}).filter((a) => a.begin.operation === 'session.kill' && a.begin.resource?.endsWith(':sleeper'));
    assert.deepEqual(record.map((a) => [a.begin.decision, a.end?.exitCode]), [['allow', 0], ['allow', 1]]);
  });

  test("a session made while another's kill ends the server (its last) is made, on a new server", async () => {
    // tmux answers a command sent to a server exiting with its last session "server exited unexpectedly".
    assert.equal((await run({ kind: 'session.new', host: 'lone', session: 'lone0', command: 'cat', policy: 'sess', callerCwd: home })).outcome, 'ok');
    for (let i = 1; i <= 40; i++) {
      const [killed, made] = await Promise.all([
        run({ kind: 'session.kill', host: 'lone', session: `lone${i - 1}` }),
        run({ kind: 'session.new', host: 'lone', session: `lone${i}`, command: 'cat', policy: 'sess', callerCwd: home }),
      ]);
      assert.equal(killed.outcome, 'ok', killed.message ?? '');
      assert.equal(made.outcome, 'ok', `try ${i}: ${made.message ?? ''}`);
    }
    execFileSync('tmux', ['-S', loneSocket, 'kill-server']);
  });

  test('empty sends and impossible line counts are usage errors; a listing for one user shows that user', async () => {
    assert.equal((await run({ kind: 'session.send', host: 'box', session: 's1', items: [] })).exitCode, EXIT.USAGE);
    for (const lines of [0, -5, 1.5, Number.NaN, 2_000_000]) {
      const r = await run({ kind: 'session.capture', host: 'box', session: 's1', lines });
      assert.equal(r.exitCode, EXIT.USAGE, String(lines));
      assert.match(r.message ?? '', /^lines to capture must be a whole number from 1 to 1000000/);
    }
    const me = ctx.sessions.users('box').loginUser;
    const mine = await run({ kind: 'session.list', host: 'box', tmuxUser: me });
    assert.deepEqual(mine.sessions?.users.map((u) => u.user), [me]);
  });

  test('a tmux user the host does not configure is a usage error', async () => {
    const r = await run({ kind: 'session.list', host: 'box', tmuxUser: 'nobody' });
    assert.equal(r.exitCode, EXIT.USAGE);
    assert.match(r.message ?? '', /tmux user "nobody" is not configured for box \(configured: .*\); add it to tmux_users/);
  });

  test("a principal's scope: other hosts read as unknown, its tmux users only, read-only ones cannot type, send or kill", async () => {
    const me = ctx.sessions.users('box').loginUser;
    const scoped = (scope: Partial<Scope>): GatewayContext =>
      asPrincipal(ctx, { name: 'p', via: 'token', scope: { admin: false, hosts: 'box', users: [me], createAs: [], attach: 'interactive', policies: [], ...scope } });
    const as = async (c: GatewayContext, action: SessionAction): Promise<PerformResult> => perform(c, action, { onStdout: () => {}, onStderr: () => {} });
    const elsewhere = await as(scoped({ hosts: 'web*' }), { kind: 'session.list', host: 'box' });
    assert.equal(elsewhere.exitCode, EXIT.DENIED);
    assert.match(elsewhere.message ?? '', /out of scope for p: host box is not among its hosts \(web\*\)/);
    const listed = await as(scoped({}), { kind: 'session.list', host: 'box' });
    assert.deepEqual(listed.sessions?.users.map((u) => u.user), [me]);
    const noUsers = await as(scoped({ users: [] }), { kind: 'session.list', host: 'box' });
    assert.equal(noUsers.exitCode, EXIT.DENIED, 'no user in scope: refused, not an empty list');
    const created = await as(scoped({}), { kind: 'session.new', host: 'box', session: 'nope' });
    assert.match(created.message ?? '', /may not create sessions as/);
    const watcher = scoped({ attach: 'read-only' });
    for (const action of [
      { kind: 'session.send', host: 'box', session: 's1', items: [{ text: 'x' }] },
      { kind: 'session.kill', host: 'box', session: 's1' },
      { kind: 'session.attach', host: 'box', session: 's1', readOnly: false, cols: 80, rows: 24 },
    ] as SessionAction[]) {
      const r = await as(watcher, action);
      assert.equal(r.exitCode, EXIT.DENIED, action.kind);
      assert.match(r.message ?? '', /it may only watch sessions/);
    }
    const watching = await as(watcher, { kind: 'session.attach', host: 'box', session: 's1', readOnly: true, cols: 80, rows: 24 });
    assert.ok(watching.attach, watching.message ?? '');
    await watching.attach.close();
  });

  describe('attach', () => {
    const attach = async (session: string, readOnly: boolean, size = { cols: 100, rows: 30 }): Promise<AttachStream> => {
      const r = await perform(ctx, { kind: 'session.attach', host: 'box', session, readOnly, ...size }, { onStdout: () => {}, onStderr: () => {} });
      assert.ok(r.attach, r.message ?? r.outcome);
      return r.attach;
    };
    const clients = (): string[] => tmux('list-clients', '-F', '#{client_pid} #{client_width}x#{client_height} #{client_readonly}').split('\n').filter(Boolean);
    /** The tmux client registers with its server a moment after its terminal opened. */
    const clientsWhen = async (ok: (list: string[]) => boolean): Promise<string[]> => {
      for (let i = 0; i < 100 && !ok(clients()); i++) await sleep(10);
      return clients();
    };

    test('typed input reaches the session; close ends the tmux client and completes the audit record', async () => {
      const stream = await attach('s1', false);
      let seen = '';
      stream.onData((c) => (seen += c.toString()));
      stream.write('echo via-attach-$((7*6))\r');
      await paneShows('s1', /^via-attach-42$/m);
      for (let i = 0; i < 50 && !seen.includes('via-attach-42'); i++) await sleep(20);
      assert.ok(seen.includes('via-attach-42'), 'the attach shows what the session printed');
      const [client] = await clientsWhen((l) => l.length === 1);
      assert.ok(client);
      const pid = Number(client.split(' ')[0]);
      assert.deepEqual(await stream.close(), { reason: 'closed', code: 1, signal: null });
      assert.deepEqual(clients(), []);
      // Late input goes nowhere.
      stream.write('late\r');
      stream.resize(80, 24);
      assert.ok(!existsSync(`/proc/${pid}`), 'the tmux client process is gone');
      const record = ctx.audit.list({}).filter((a) => a.begin.operation === 'session.attach').at(-1);
      assert.equal(record?.status, 'complete');
    });

    test('a read-only attach cannot type', async () => {
      const stream = await attach('s1', true);
      assert.match((await clientsWhen((l) => l.length === 1))[0] ?? '', / 1$/);
      stream.write('echo read-only-typed\r');
      await sleep(300);
      assert.doesNotMatch(tmux('capture-pane', '-p', '-t', '=s1:'), /read-only-typed/);
      await stream.close();
      const record = ctx.audit.list({}).filter((a) => a.begin.operation === 'session.attach').at(-1);
      assert.equal(record?.begin.reason, "remux's own tmux command (session.attach, read-only)");
    });

    test('resize is clamped to sane bounds', async () => {
      const stream = await attach('s1', false, { cols: 100_000, rows: 0 });
      assert.match((await clientsWhen((l) => l.length === 1))[0] ?? '', / 1000x1 /);
      stream.resize(120, 40);
      assert.match((await clientsWhen((l) => / 120x40 /.test(l[0] ?? '')))[0] ?? '', / 120x40 /);
      stream.resize(Number.NaN, 5);
      await stream.close();
    });

    test('pause stops reading: a yes flood does not pile up in memory, and flows again on resume', async () => {
      tmux('new-session', '-d', '-s', 'flood', '-x', '200', '-y', '50', 'yes');
      const stream = await attach('flood', false, { cols: 200, rows: 50 });
      let bytes = 0;
      stream.onData((c) => (bytes += c.length));
      await sleep(500);
      const perSecond = bytes * 2;
      assert.ok(perSecond > 100_000, `the flood reaches the attach (${perSecond} B/s)`);
      stream.pause();
      const atPause = bytes;
      const memory = process.memoryUsage().arrayBuffers;
      await sleep(1000);
      assert.equal(bytes, atPause, 'nothing delivered while paused');
      // Had reading gone on, a second of the flood would sit in buffers here.
      const grew = process.memoryUsage().arrayBuffers - memory;
      assert.ok(grew < perSecond / 4, `buffers grew ${grew} B while paused (flood ${perSecond} B/s)`);
      stream.resume();
      for (let i = 0; i < 100 && bytes === atPause; i++) await sleep(10);
      assert.ok(bytes > atPause, 'flows again after resume');
      // Closed while paused: the tmux client, blocked on its writes, still ends at once (TERM, not the KILL after the grace).
      stream.pause();
      await sleep(200);
      const closing = performance.now();
      assert.deepEqual(await stream.close(), { reason: 'closed', code: 1, signal: null });
      assert.ok(performance.now() - closing < 1000, `closed in ${performance.now() - closing} ms`);
      tmux('kill-session', '-t', '=flood');
    });

    test('the lifetime limit ends an attach', async () => {
      const short = { ...ctx, sessions: new Sessions(ctx.registry, 200) };
      const r = await perform(short, { kind: 'session.attach', host: 'box', session: 's1', readOnly: true, cols: 80, rows: 24 }, { onStdout: () => {}, onStderr: () => {} });
      assert.ok(r.attach);
      assert.equal((await r.attach.ended).reason, 'lifetime');
      assert.deepEqual(clients(), []);
      assert.equal(ctx.audit.list({}).filter((a) => a.begin.operation === 'session.attach').at(-1)?.end?.error, 'attach lifetime limit reached; detached');
    });

    test('attaching to a session that does not exist fails before any terminal opens', async () => {
      const r = await perform(ctx, { kind: 'session.attach', host: 'box', session: 'nope', readOnly: false, cols: 80, rows: 24 }, { onStdout: () => {}, onStderr: () => {} });
      assert.equal(r.attach, undefined);
      assert.equal(r.exitCode, EXIT.FAILURE);
      assert.match(r.message ?? '', /^no session "nope" on box /);
    });
  });
});
