// `remux session attach` as a user runs it: in a real terminal (a pty), typing into the session,
// detaching with tmux's own prefix-d, and the terminal back in its normal mode afterwards. A daemon
// runs alongside: what the CLI process changed itself shows in the daemon's cache at once.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { spawn } from 'node-pty';
import { holdAttachSlot } from '../../src/gateway/client.js';
import type { HostSessions } from '../../src/sessions/service.js';
import { remux, REMUX_NODE_BIN, REPO_ROOT, spawnRemux, tempHome } from '../support/cli.js';

describe('remux session attach in a terminal', { timeout: 120_000 }, () => {
  const h = tempHome();
  const socket = join(h.home, 'tmux.sock');
  // HOME: the tmux server reads no ~/.tmux.conf of the machine's, so C-b stays the prefix.
  const env = { ...h.env, HOME: h.home };
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });

  before(async () => {
    assert.equal((await remux(['config', 'init'], { env })).code, 0);
    writeFileSync(join(h.home, 'hosts.yaml'), `hosts:\n  box:\n    transport: local\n    tmux_socket: ${socket}\n`);
    writeFileSync(join(h.home, 'config.yaml'), 'sessions: { sweep_interval_seconds: 3600 }\n');
    assert.equal((await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env })).code, 0);
    // Made in this process: the daemon hears of it.
    const made = await remux(['session', 'new', 'cli', '--host', 'box', '--no-daemon'], { env });
    assert.equal(made.code, 0, made.stderr);
  });
  const attachedCount = async (): Promise<number | undefined> => {
    const r = await remux(['session', 'ls', '--host', 'box', '--json'], { env });
    const [listed] = JSON.parse(r.stdout) as HostSessions[];
    const user = listed?.users[0];
    return user?.state === 'ok' ? user.sessions.find((s) => s.name === 'cli')?.attached : undefined;
  };
  after(async () => {
    await remux(['daemon', 'stop'], { env });
    try {
      tmux('kill-server');
    } catch {
      // Already gone.
    }
    // The server removes its socket as it exits, after kill-server returned.
    for (let i = 0; i < 100 && existsSync(socket); i++) await sleep(10);
    h.remove();
  });

  test('types into the session, detaches with prefix-d, and restores the terminal', async () => {
    const script = `${JSON.stringify(process.execPath)} ${JSON.stringify(REMUX_NODE_BIN)} session attach cli --host box; echo "exit=$?"; stty -a`;
    const term = spawn('/bin/sh', ['-c', script], { cols: 90, rows: 25, cwd: REPO_ROOT, env: { ...process.env, ...env, TMUX: '' } });
    let out = '';
    term.onData((d) => (out += d));
    const exited = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
    for (let i = 0; i < 200 && tmux('list-clients').trim() === ''; i++) await sleep(20);
    assert.match(tmux('list-clients', '-F', '#{client_width}x#{client_height}'), /^90x25$/m, out);
    term.write('echo typed-in-cli-$((40+2))\r');
    for (let i = 0; i < 100 && !/^typed-in-cli-42$/m.test(tmux('capture-pane', '-p', '-t', '=cli:')); i++) await sleep(20);
    assert.match(tmux('capture-pane', '-p', '-t', '=cli:'), /^typed-in-cli-42$/m);
    assert.equal(await attachedCount(), 1);
    term.write('\x02d');
    assert.equal(await exited, 0);
    assert.equal(await attachedCount(), 0);
    assert.match(out, /exit=0/);
    // Canonical mode and echo are back: the attach restored what it changed.
    const stty = out.slice(out.indexOf('exit=0'));
    assert.match(stty, /(^|\s)icanon(\s|$)/m);
    assert.match(stty, /(^|\s)echo(\s|$)/m);
    assert.equal(tmux('list-clients'), '');
    // Recorded like a browser attach: the file in $REMUX_HOME/recordings holds what was typed, and the
    // attach's audit record names it.
    const [file] = readdirSync(join(h.home, 'recordings'));
    assert.ok(file, 'a recording was written');
    const [header, ...events] = readFileSync(join(h.home, 'recordings', file), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown);
    assert.deepEqual([(header as { width: number }).width, (header as { height: number }).height], [90, 25]);
    assert.match(events.map((e) => (e as [number, string, string])[2]).join(''), /typed-in-cli-42/);
    const audit = await remux(['audit', 'ls', '--json'], { env });
    const row = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { operation: string; recording?: string | null }).find((r) => r.operation === 'session.attach');
    assert.equal(row?.recording, file.replace(/\.cast$/, ''));
  });

  test("an attach counts in the daemon's limits: a principal's 6th is refused (75) until one ends", async () => {
    const daemon = join(h.home, 'run', 'remux.sock');
    const held: Array<{ release(): void }> = [];
    try {
      for (let i = 0; i < 5; i++) {
        const slot = await holdAttachSlot(daemon, undefined);
        assert.ok(slot && 'release' in slot, JSON.stringify(slot));
        held.push(slot);
      }
      const refused = await remux(['session', 'attach', 'cli', '--host', 'box'], { env });
      assert.equal(refused.code, 75);
      assert.match(refused.stderr, /^remux: cli:\S+ already has 5 attaches open \(the limit per principal is 5\); close one first$/m);
      held.pop()!.release();
      let again = await holdAttachSlot(daemon, undefined);
      for (let i = 0; i < 100 && again && 'refusal' in again; i++) {
        await sleep(10);
        again = await holdAttachSlot(daemon, undefined);
      }
      assert.ok(again && 'release' in again, 'an ended attach gives its slot back');
      held.push(again);
    } finally {
      for (const slot of held) slot.release();
    }
  });

  test('a startup command under the default policy (sandboxed) runs in bubblewrap, through the daemon; a denied one is refused with its rule', async () => {
    const log = join(h.home, 'app.log');
    writeFileSync(log, 'first line\n');
    const made = await remux(['session', 'new', 'tailer', '--host', 'box', '--cmd', `tail -f ${log}`], { env });
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stderr, /^created session tailer on box \(its command in the OS sandbox\)$/m);
    const pane = (): string => tmux('capture-pane', '-p', '-t', '=tailer:');
    for (let i = 0; i < 100 && !/^first line$/m.test(pane()); i++) await sleep(20);
    appendFileSync(log, 'second line\n');
    for (let i = 0; i < 100 && !/^second line$/m.test(pane()); i++) await sleep(20);
    assert.match(pane(), /^first line\nsecond line$/m);
    const panePid = tmux('display-message', '-p', '-t', '=tailer:', '#{pane_pid}').trim();
    assert.match(readlinkSync(`/proc/${panePid}/exe`), /\/bwrap$/);
    const denied = await remux(['session', 'new', 'wiper', '--host', 'box', '--cmd', `rm -rf ${log}`], { env });
    assert.equal(denied.code, 77, denied.stderr);
    assert.match(denied.stderr, /^remux: execute_binary \/usr\/bin\/rm: no rule of policy read_only allows it/m);
    // How to see why, as client run says it.
    assert.match(denied.stderr, new RegExp(`^hint: see why with \`remux policy check read_only -- 'rm -rf ${log}'\`$`, 'm'));
    assert.ok(existsSync(log));
  });

  test('new --json: the session as created, its tmux user resolved, how its command is bounded and the line that attaches', async () => {
    const made = await remux(['session', 'new', 'scripted', '--host', 'box', '--cmd', 'cat', '--json'], { env });
    assert.equal(made.code, 0, made.stderr);
    assert.deepEqual(JSON.parse(made.stdout), { host: 'box', user: userInfo().username, session: 'scripted', command: 'cat', policy: 'read_only', enforcement: 'sandbox', attach: 'remux session attach scripted --host box' });
    const plain = await remux(['session', 'new', 'plain', '--host', 'box', '--json', '--no-daemon'], { env });
    assert.deepEqual(JSON.parse(plain.stdout), { host: 'box', user: userInfo().username, session: 'plain', command: null, policy: null, enforcement: null, attach: 'remux session attach plain --host box' });
    const both = await remux(['session', 'new', 'both', '--host', 'box', '--json', '--attach'], { env });
    assert.equal(both.code, 2, both.stderr);
    assert.match(both.stderr, /--attach and --json do not go together/);
    for (const name of ['scripted', 'plain']) assert.equal((await remux(['session', 'kill', name, '--host', 'box', '-f'], { env })).code, 0);
  });

  test('kill asks to type the name (through the daemon): a wrong name kills nothing, the right one kills', async () => {
    assert.equal((await remux(['session', 'new', 'doomed', '--host', 'box'], { env })).code, 0);
    const killTyping = async (typed: string): Promise<{ code: number; out: string }> => {
      const term = spawn(process.execPath, [REMUX_NODE_BIN, 'session', 'kill', 'doomed', '--host', 'box'], { cols: 100, rows: 10, cwd: REPO_ROOT, env: { ...process.env, ...env } });
      let out = '';
      term.onData((d) => (out += d));
      const exited = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
      for (let i = 0; i < 200 && !out.includes('type its name to confirm:'); i++) await sleep(10);
      term.write(`${typed}\r`);
      return { code: await exited, out };
    };
    const wrong = await killTyping('doom');
    assert.equal(wrong.code, 1, wrong.out);
    assert.match(wrong.out, /kill session doomed on box and everything running in it\? type its name to confirm: /);
    assert.match(wrong.out, /not killed: "doom" is not "doomed"/);
    assert.match(tmux('list-sessions', '-F', '#{session_name}'), /^doomed$/m);
    const right = await killTyping('doomed');
    assert.equal(right.code, 0, right.out);
    assert.match(right.out, /killed session doomed on box/);
    assert.doesNotMatch(tmux('list-sessions', '-F', '#{session_name}'), /^doomed$/m);
  });

  test('attach with its input from a pipe detaches once the input ends (no terminal: no wait for the lifetime limit); the session goes on', async () => {
    const started = Date.now();
    const piped = await remux(['session', 'attach', 'cli', '--host', 'box'], { env, input: '' });
    assert.equal(piped.code, 0, piped.stderr);
    assert.ok(Date.now() - started < 30_000, 'detached when its input ended');
    assert.match(tmux('ls'), /^cli: /m);
  });

  test('new -a written with other short flags (-ac CMD), with a daemon running: the daemon hands it back, and it is made and attached here', async () => {
    const r = await remux(['session', 'new', 'joined', '--host', 'box', '-ac', 'cat'], { env, input: '' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^created session joined on box/m);
    assert.match(tmux('ls'), /^joined: /m, 'the session goes on after the attach');
    tmux('kill-session', '-t', '=joined');
  });

  test("an attach made by the CLI makes room for its recording first, as the daemon's retention would: the oldest go, audited", async () => {
    // The daemon's retention ran when it started, before these were planted: only the attach can make room.
    const dir = join(h.home, 'recordings');
    mkdirSync(dir, { recursive: true });
    const stamp = (msAgo: number): string => new Date(Date.now() - msAgo).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const old = [3, 2].map((days, i) => `${stamp(days * 86_400_000)}-${String(i).padStart(12, '0')}`);
    const unchanged = (Date.now() - 2 * 86_400_000) / 1000;
    for (const id of old) {
      writeFileSync(join(dir, `${id}.cast`), 'x'.repeat(600 << 10));
      utimesSync(join(dir, `${id}.cast`), unchanged, unchanged);
    }
    const config = join(h.home, 'config.yaml');
    const kept = readFileSync(config, 'utf8');
    writeFileSync(config, 'sessions: { sweep_interval_seconds: 3600, recordings_max_total_mb: 1 }\n');
    try {
      const before = new Set(readdirSync(dir));
      // Its input from a pipe kept open until the session's screen has had time to arrive.
      const attach = spawnRemux(['session', 'attach', 'cli', '--host', 'box'], { env, via: 'node' });
      let stderr = '';
      attach.stdout!.resume();
      attach.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      await sleep(1500);
      attach.stdin!.end();
      assert.equal(await new Promise((resolve) => attach.once('exit', resolve)), 0, stderr);
      const after = readdirSync(dir);
      assert.deepEqual([after.includes(`${old[0]}.cast`), after.includes(`${old[1]}.cast`)], [false, true], 'the oldest went, enough for 1 MB');
      const made = after.filter((n) => !before.has(n));
      assert.equal(made.length, 1);
      // Recorded, not stopped at once for want of room (what it did before: a header and the stop marker).
      const events = readFileSync(join(dir, made[0] as string), 'utf8').trim().split('\n').slice(1).map((l) => JSON.parse(l) as [number, string, string]);
      assert.ok(events.some(([, kind]) => kind === 'o'), 'the screen was recorded');
      assert.equal(events.some(([, kind, label]) => kind === 'm' && /size limit/.test(label)), false);
      const audit = await remux(['audit', 'ls', '--json'], { env });
      const prune = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { principal: string; operation: string; resource: string }).find((r) => r.operation === 'recordings.prune');
      assert.match(prune?.principal ?? '', /^cli:/);
      assert.equal(prune?.resource, old[0]);
    } finally {
      writeFileSync(config, kept);
    }
  });

  test('without --host, new, send, capture and kill act on this machine (localhost)', async () => {
    // TMUX_TMPDIR: localhost's tmux server is a private one here, never the machine's own.
    const tmpdir = join(h.home, 'local-tmux');
    mkdirSync(tmpdir, { mode: 0o700 });
    const local = { ...env, TMUX_TMPDIR: tmpdir };
    try {
      const made = await remux(['session', 'new', 'here', '--no-daemon'], { env: local });
      assert.equal(made.code, 0, made.stderr);
      assert.match(made.stderr, /created session here on localhost/);
      // On the server TMUX_TMPDIR names, the one this user's own `tmux ls` lists.
      assert.match(execFileSync('tmux', ['ls'], { env: { ...process.env, TMUX_TMPDIR: tmpdir }, encoding: 'utf8' }), /^here: 1 windows/m);
      assert.equal((await remux(['session', 'send', 'here', '--no-daemon', '--', 'echo local-$((40+2))', 'Enter'], { env: local })).code, 0);
      let captured = '';
      for (let i = 0; i < 100 && !/^local-42$/m.test(captured); i++) {
        await sleep(20);
        captured = (await remux(['session', 'capture', 'here', '--no-daemon'], { env: local })).stdout;
      }
      assert.match(captured, /^local-42$/m);
      // --json: the same text, in one document that names what was captured.
      const json = await remux(['session', 'capture', 'here', '--no-daemon', '--json'], { env: local });
      assert.equal(json.code, 0, json.stderr);
      const doc = JSON.parse(json.stdout) as Record<string, string>;
      assert.deepEqual([doc.host, doc.user, doc.session], ['localhost', userInfo().username, 'here']);
      assert.match(doc.text ?? '', /^local-42$/m);
      // A function key tmux lacks would be typed as its name: refused, naming the way to type it.
      const f13 = await remux(['session', 'send', 'here', '--no-daemon', '--', 'echo x', 'F13', 'Enter'], { env: local });
      assert.equal(f13.code, 2, f13.stderr);
      assert.match(f13.stderr, /"F13" is not a key tmux has \(F1 to F12\)[\s\S]*--literal/);
      const empty = await remux(['session', 'send', 'here', '--no-daemon', '--', ''], { env: local });
      assert.deepEqual([empty.code, empty.stderr], [2, 'remux: item 1 to send is empty: nothing would be typed\nhint: name a key (Enter, C-c) or give the text to type\n']);
      const typed = await remux(['session', 'send', 'here', '--no-daemon', '--literal', '--', 'echo F13'], { env: local });
      assert.equal(typed.code, 0, typed.stderr);
      await remux(['session', 'send', 'here', '--no-daemon', '--', 'Enter'], { env: local });
      for (let i = 0; i < 100 && !/^F13$/m.test(captured); i++) {
        await sleep(20);
        captured = (await remux(['session', 'capture', 'here', '--no-daemon'], { env: local })).stdout;
      }
      assert.match(captured, /^F13$/m);
      assert.doesNotMatch(captured, /^x$/m, 'nothing of the refused send was typed');
      const killed = await remux(['session', 'kill', 'here', '-f', '--no-daemon'], { env: local });
      assert.equal(killed.code, 0, killed.stderr);
      assert.match(killed.stderr, /killed session here on localhost/);
    } finally {
      // Normally gone with its last session.
      spawnSync('tmux', ['kill-server'], { env: { ...process.env, TMUX_TMPDIR: tmpdir }, stdio: 'ignore' });
    }
  });

  test('a principal that may only watch, attaching to type, is refused (77) with how to watch', async () => {
    const added = await remux(['principal', 'add', 'watcher', '--hosts', 'box', '--users', userInfo().username, '--read-only', '--json'], { env });
    assert.equal(added.code, 0, added.stderr);
    const { token } = JSON.parse(added.stdout) as { token: string };
    const r = await remux(['session', 'attach', 'cli', '--host', 'box'], { env: { ...env, REMUX_TOKEN: token } });
    assert.equal(r.code, 77, r.stderr);
    assert.equal(r.stderr, 'remux: out of scope for watcher: it may only watch sessions (attach: read-only)\nhint: watch it with: remux session attach cli --host box --read-only\n');
  });

  test("ls: an unreachable host's error runs to the end of its line and widens no column", async () => {
    const other = tempHome();
    try {
      writeFileSync(join(other.home, 'hosts.yaml'), `hosts:\n  box:\n    transport: local\n    tmux_socket: ${socket}\n  gone: { address: 127.0.0.1, port: 1, user: nobody }\n`);
      const r = await remux(['session', 'ls', '--host', 'box,gone', '--no-daemon'], { env: { ...other.env, HOME: other.home } });
      assert.equal(r.code, 255, r.stderr);
      const lines = r.stdout.trimEnd().split('\n');
      const note = lines.find((l) => l.startsWith('gone '));
      assert.match(note ?? '', /^gone +- +\(unreachable: gone \(127\.0\.0\.1:1\): .{30,}\)$/);
      // The header and the sessions' rows are as wide as their own cells, not as the error.
      for (const line of lines.filter((l) => l !== note)) assert.ok(line.length < 90, `not stretched by the error: ${JSON.stringify(line)}`);
      assert.match(r.stdout, /^box +\S+ +cli +1 +/m);
    } finally {
      other.remove();
    }
  });

  test('ls: a host whose tmux users are out of the principal\'s scope is said to be refused, not unreachable (77)', async () => {
    const added = await remux(['principal', 'add', 'no-users', '--hosts', 'box', '--json'], { env });
    assert.equal(added.code, 0, added.stderr);
    const { token } = JSON.parse(added.stdout) as { token: string };
    const r = await remux(['session', 'ls', '--host', 'box'], { env: { ...env, REMUX_TOKEN: token } });
    assert.equal(r.code, 77, r.stderr);
    assert.match(r.stdout, new RegExp(`^box +- +\\(denied: out of scope for no-users: tmux user ${userInfo().username} is not among its users \\(none\\)\\)$`, 'm'));
  });

  test('capture --lines that is not a whole number is refused in the words given (2)', async () => {
    for (const given of ['abc', '', '-5', '1.5']) {
      const r = await remux(['session', 'capture', 'cli', '--host', 'box', '--lines', given], { env });
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr, `remux: --lines must be a whole number from 1 to 1000000, got "${given}"\n`);
    }
  });

  test('before config init (no policies file) tmux works; only a startup command asks for the policies', async () => {
    const fresh = tempHome();
    const tmpdir = join(fresh.home, 'local-tmux');
    mkdirSync(tmpdir, { recursive: true, mode: 0o700 });
    const bare = { ...fresh.env, HOME: fresh.home, TMUX_TMPDIR: tmpdir };
    try {
      assert.equal(existsSync(join(fresh.home, 'policies.yaml')), false);
      // No tmux server yet: the row says so, once, in words.
      const none = await remux(['session', 'ls', '--no-daemon'], { env: bare });
      assert.equal(none.code, 0, none.stderr);
      assert.match(none.stdout, /^localhost +\S+ +\(no sessions, no tmux server running\)$/m);
      const made = await remux(['session', 'new', 'bare', '--no-daemon'], { env: bare });
      assert.equal(made.code, 0, made.stderr);
      const listed = await remux(['session', 'ls', '--json', '--no-daemon'], { env: bare });
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /"name": ?"bare"/);
      const withCommand = await remux(['session', 'new', 'cmd', '--cmd', 'sleep 100', '--no-daemon'], { env: bare });
      assert.equal(withCommand.code, 2);
      assert.match(withCommand.stderr, /no policies file at .*policies\.yaml\nhint: run `remux config init`/);
      assert.equal((await remux(['session', 'kill', 'bare', '-f', '--no-daemon'], { env: bare })).code, 0);
    } finally {
      spawnSync('tmux', ['kill-server'], { env: { ...process.env, TMUX_TMPDIR: tmpdir }, stdio: 'ignore' });
      fresh.remove();
    }
  });

  test('audit ls names each session operation and what it acted on', async () => {
    const r = await remux(['audit', 'ls'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ID\s+TIME \(UTC\)\s+LEVEL\s+PRINCIPAL\s+HOST\s+EXIT\s+TOOK\s+WHAT$/m);
    assert.match(r.stdout, /^\d+\s.*\sbox\s+0\s+\d+ms\s+session\.new \S+@box:cli$/m);
    assert.match(r.stdout, /\ssession\.attach \S+@box:cli$/m);
  });
});
