// `remux session recordings` and `remux session play`, on recordings written by the recorder the
// terminal and the session recorder use (AttachRecorder), in a new REMUX_HOME: the list (text and JSON, a
// page at a time with --limit and --before), playback at once into a pipe and with its timing in a
// terminal (node-pty), speed and idle limit, and what is refused (an unknown or ambiguous id, a bad speed, a link planted as a recording).
import assert from 'node:assert/strict';
import { spawn as spawnChild } from 'node:child_process';
import { renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node-pty';
import { AttachRecorder } from '../../src/sessions/recording.js';
import { REMUX_NODE_BIN, REPO_ROOT, remux, tempHome } from '../support/cli.js';

describe('remux session recordings / play', () => {
  const h = tempHome();
  const dir = join(h.home, 'recordings');
  let slow = '';
  let quick = '';

  before(async () => {
    // Two pauses of 0.6 s between three lines: played at --speed 2 they take about 0.6 s in all.
    const a = new AttachRecorder(dir, { host: 'web1', user: 'ops', session: 'build', principal: 'alice', readOnly: false, actionId: 7 }, { cols: 80, rows: 24 });
    a.output(Buffer.from('first\r\n'));
    await sleep(600);
    a.output(Buffer.from('second \u2713\r\n'));
    await sleep(600);
    a.output(Buffer.from('third\r\n'));
    a.end();
    slow = a.id;
    const b = new AttachRecorder(dir, { host: 'db1', user: 'pg', session: 'psql', principal: 'bob', readOnly: true, actionId: 9, kind: 'session' }, { cols: 100, rows: 30 });
    b.output(Buffer.from('quick\r\n'));
    b.end();
    quick = b.id;
  });
  after(() => h.remove());

  test('lists them newest first, as a table and as JSON', async () => {
    const json = await remux(['session', 'recordings', '--json'], { env: h.env });
    assert.equal(json.code, 0, json.stderr);
    const list = JSON.parse(json.stdout) as Array<{ id: string; host: string; kind: string; principal: string; duration: number; width: number }>;
    assert.deepEqual(list.map((r) => [r.id, r.host, r.kind, r.principal, r.width]), [
      [quick, 'db1', 'session', 'bob', 100],
      [slow, 'web1', 'attach', 'alice', 80],
    ].sort((x, y) => String(y[0]).localeCompare(String(x[0]))));
    assert.ok((list.find((r) => r.id === slow)?.duration ?? 0) >= 1.2);
    const table = await remux(['session', 'recordings'], { env: h.env });
    assert.match(table.stdout, /^ID +STARTED \(UTC\) +KIND +HOST +USER +SESSION +PRINCIPAL +LENGTH +SIZE\n/);
    assert.match(table.stdout, new RegExp(`${slow} +\\S+ \\S+ +attach +web1 +ops +build +alice +0:01 +\\d+ B`));
    // The total, and the limits the daemon keeps them within (config.yaml's defaults here).
    assert.match(table.stdout, /\n2 recordings, \d+ B; the daemon removes the oldest beyond 10240 MB in all \(sessions\.recordings_max_total_mb, recordings_keep_days\)\n$/);
    // None yet: what sessions.record says is recorded.
    const empty = tempHome();
    try {
      assert.match((await remux(['session', 'recordings'], { env: empty.env })).stdout, /^no recordings in \S+ \(sessions\.record: attaches: each attach, browser or CLI, is recorded\)\n$/);
      writeFileSync(join(empty.home, 'config.yaml'), 'sessions:\n  record: none\n');
      assert.match((await remux(['session', 'recordings'], { env: empty.env })).stdout, /\(sessions\.record: none: nothing is recorded\)\n$/);
    } finally {
      empty.remove();
    }
  });

  test('--limit and --before list a page at a time; the table says where the next one starts', async () => {
    const [newer, older] = [slow, quick].sort().reverse();
    const first = await remux(['session', 'recordings', '--limit', '1', '--json'], { env: h.env });
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual((JSON.parse(first.stdout) as Array<{ id: string }>).map((r) => r.id), [newer]);
    const table = await remux(['session', 'recordings', '-n', '1'], { env: h.env });
    assert.match(table.stdout, new RegExp(`\\n1 recordings, \\d+ B \\(older ones: --before ${newer}\\); the daemon removes`));
    const next = await remux(['session', 'recordings', '--limit', '1', '--before', newer!, '--json'], { env: h.env });
    assert.deepEqual((JSON.parse(next.stdout) as Array<{ id: string }>).map((r) => r.id), [older]);
    const last = await remux(['session', 'recordings', '--limit', '1', '--before', newer!], { env: h.env });
    assert.doesNotMatch(last.stdout, /older ones/);
    assert.match((await remux(['session', 'recordings', '--before', older!], { env: h.env })).stdout, new RegExp(`^no recordings older than ${older} in `));
    assert.equal((await remux(['session', 'recordings', '--limit', '0', '--json'], { env: h.env })).stdout, (await remux(['session', 'recordings', '--json'], { env: h.env })).stdout, '0 is all');

    // The same words for every listing's --limit (audit ls too), and for what Number() would have taken.
    for (const [command, value] of [[['session', 'recordings'], 'ten'], [['session', 'recordings'], '-1'], [['audit', 'ls'], ''], [['audit', 'ls'], '1e3']] as const) {
      const limit = await remux([...command, '--limit', value], { env: h.env });
      assert.equal(limit.code, 2, `${command.join(' ')} --limit ${value}`);
      assert.match(limit.stderr, new RegExp(`--limit must be a whole number, 0 or more \\(0 lists all\\), got "${value}"`));
    }
    const before = await remux(['session', 'recordings', '--before', 'yesterday'], { env: h.env });
    assert.equal(before.code, 2);
    assert.match(before.stderr, /--before yesterday: not a recording id; give the id of the last one listed before/);
    assert.match((await remux(['session', 'recordings', '--help'], { env: h.env })).stdout, /remux session recordings --limit 20 --before \S+ +# the next 20/);
  });

  test('play into a pipe writes the output at once, in order, by id or a unique start of it', async () => {
    const r = await remux(['session', 'play', slow], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'first\r\nsecond \u2713\r\nthird\r\n');
    // No pauses when stdout is not a terminal: timed from the first line to the last, not from the start
    // of the CLI, which a loaded machine makes slow.
    const piped = spawnChild(process.execPath, [REMUX_NODE_BIN, 'session', 'play', slow], { cwd: REPO_ROOT, env: { ...process.env, ...h.env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let [firstAt, lastAt] = [0, 0];
    piped.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (firstAt === 0 && out.includes('first')) firstAt = Date.now();
      if (lastAt === 0 && out.includes('third')) lastAt = Date.now();
    });
    await new Promise((resolve) => piped.on('close', resolve));
    assert.equal(out, r.stdout);
    assert.ok(lastAt - firstAt < 600, `two pauses of 0.6 s: the last line came ${lastAt - firstAt} ms after the first`);
    assert.equal((await remux(['session', 'play', quick.slice(0, -4)], { env: h.env })).stdout, 'quick\r\n');
    const both = await remux(['session', 'play', '20'], { env: h.env });
    assert.equal(both.code, 2);
    assert.match(both.stderr, /2 recordings start with 20: 20\S+, 20\S+\nhint: give more of the ID/);
  });

  test('play in a terminal keeps the timing, sped up by --speed, pauses cut by --idle-limit', async () => {
    const timed = async (...args: string[]): Promise<{ ms: number; out: string }> => {
      const term = spawn(process.execPath, [REMUX_NODE_BIN, 'session', 'play', slow, ...args], { cols: 80, rows: 24, cwd: REPO_ROOT, env: { ...process.env, ...h.env } });
      let out = '';
      let firstAt = 0;
      term.onData((d) => {
        if (firstAt === 0 && d.includes('first')) firstAt = Date.now();
        out += d;
      });
      const code = await new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
      assert.equal(code, 0, out);
      return { ms: Date.now() - firstAt, out };
    };
    const normal = await timed();
    // The terminal's own ONLCR adds a \r to each recorded \r\n: shown the same.
    assert.match(normal.out, /first\r+\nsecond \u2713\r+\nthird\r+\n/);
    assert.ok(normal.ms >= 1100, `two pauses of 0.6 s: ${normal.ms} ms`);
    const fast = await timed('--speed', '4');
    assert.ok(fast.ms < 900, `at 4x: ${fast.ms} ms`);
    const cut = await timed('--idle-limit', '0.1');
    assert.ok(cut.ms < 900, `pauses cut to 0.1 s: ${cut.ms} ms`);
  });

  test('play in a terminal: Ctrl-C stops it (130) and the modes the recording set are put back; what is typed meanwhile is not left for the shell', async () => {
    // Cut short as an attach is when the daemon is killed: tmux's alternate screen and hidden cursor, never undone.
    const cut = new AttachRecorder(dir, { host: 'web1', user: 'ops', session: 'cut', principal: 'alice', readOnly: false, actionId: 11 }, { cols: 80, rows: 24 });
    cut.output(Buffer.from('\x1b[?1049h\x1b[?25l\x1b[?1h\x1b=on the alternate screen\r\n'));
    await sleep(1500);
    cut.output(Buffer.from('never shown\r\n'));
    cut.end();
    // The shell after it reads a line: only what is typed once the play is over.
    const script = `"$0" "$1" session play ${cut.id} --idle-limit 30; echo "status:$?"; read -r line; echo "after:$line"`;
    const term = spawn('/bin/sh', ['-c', script, process.execPath, REMUX_NODE_BIN], { cols: 80, rows: 24, cwd: REPO_ROOT, env: { ...process.env, ...h.env } });
    let out = '';
    term.onData((d) => (out += d));
    const exited = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
    const until = async (what: RegExp): Promise<void> => {
      for (let i = 0; i < 500 && !what.test(out); i++) await sleep(10);
      assert.match(out, what);
    };
    await until(/on the alternate screen/);
    // As a terminal answers the device-attributes query tmux sends on attach, and a key pressed meanwhile.
    term.write('\x1b[>0;276;0cx\r');
    await sleep(100);
    term.write('\x03');
    await until(/status:\d+/);
    term.write('typed\r');
    assert.equal(await exited, 0, out);
    const played = out.slice(out.indexOf('on the alternate screen'), out.indexOf('status:'));
    for (const mode of ['\x1b[?1049l', '\x1b[?25h', '\x1b[?1l', '\x1b>']) assert.ok(played.includes(mode), `${JSON.stringify(mode)} put back: ${JSON.stringify(played)}`);
    assert.doesNotMatch(played, /never shown/);
    assert.match(out, /status:130\r?\n/);
    assert.match(out, /after:typed\r?\n/);
  });

  test('refused: an unknown id, a bad speed, a link in place of a recording', async () => {
    const unknown = await remux(['session', 'play', '19990101'], { env: h.env });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no recording 19990101 in .*\nhint: see them with remux session recordings/);
    const speed = await remux(['session', 'play', slow, '--speed', '0'], { env: h.env });
    assert.equal(speed.code, 2);
    assert.match(speed.stderr, /--speed 0: expected a number above 0/);
    // The recording swapped for a link to another file: not followed.
    const file = join(dir, `${quick}.cast`);
    const secret = join(h.home, 'secret.cast');
    renameSync(file, secret);
    symlinkSync(secret, file);
    const linked = await remux(['session', 'play', quick], { env: h.env });
    assert.equal(linked.code, 2, linked.stderr);
    assert.match(linked.stderr, /no recording /);
    assert.doesNotMatch(linked.stdout, /quick/);
  });
});

describe('remux session recordings / play with REMUX_TOKEN', () => {
  const h = tempHome();
  const dir = join(h.home, 'recordings');
  const tokens: Record<string, string> = {};
  const ids: Record<string, string> = {};
  const as = (who: string): Record<string, string> => ({ ...h.env, REMUX_TOKEN: tokens[who] ?? who });

  before(async () => {
    for (const host of ['web1', 'db1']) assert.equal((await remux(['hosts', 'add', host, `ops@${host}.example`], { env: h.env })).code, 0);
    for (const [who, scope] of [['alice', ['--hosts', 'web1', '--users', 'ops']], ['root', ['--admin']]] as const) {
      const added = await remux(['principal', 'add', who, ...scope, '--json'], { env: h.env });
      assert.equal(added.code, 0, added.stderr);
      tokens[who] = (JSON.parse(added.stdout) as { token: string }).token;
    }
    // Alice's own attach in her scope; hers of a host and of a tmux user outside it; another principal's.
    const planted: Array<[string, string, string, string]> = [['mine', 'alice', 'web1', 'ops'], ['host', 'alice', 'db1', 'ops'], ['user', 'alice', 'web1', 'root'], ['other', 'bob', 'web1', 'ops']];
    for (const [key, principal, host, user] of planted) {
      const r = new AttachRecorder(dir, { host, user, session: key, principal, readOnly: false, actionId: 1 }, { cols: 80, rows: 24 });
      r.output(Buffer.from(`${key}\r\n`));
      r.end();
      ids[key] = r.id;
    }
  });
  after(() => h.remove());

  const listed = async (env: Record<string, string>): Promise<string[]> => {
    const r = await remux(['session', 'recordings', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as Array<{ session: string }>).map((x) => x.session).sort();
  };

  test('a token of no principal is refused (77) as by every command acting for a principal', async () => {
    for (const args of [['session', 'recordings'], ['session', 'play', ids.mine!]]) {
      const r = await remux(args, { env: as('rmx_not-a-token') });
      assert.equal(r.code, 77, `${args.join(' ')}: ${r.stdout}`);
      assert.match(r.stderr, /REMUX_TOKEN matches no principal in \S+principals\.yaml\nhint: check the token/);
      assert.equal(r.stdout, '');
    }
  });

  test("a scoped principal lists and plays only what the console shows it; an admin's token and no token, everything", async () => {
    assert.deepEqual(await listed(as('alice')), ['mine']);
    assert.deepEqual(await listed(as('root')), ['host', 'mine', 'other', 'user']);
    assert.deepEqual(await listed(h.env), ['host', 'mine', 'other', 'user']);
    assert.equal((await remux(['session', 'play', ids.mine!], { env: as('alice') })).stdout, 'mine\r\n');
    // A start all four share names hers alone: never ambiguous through what she may not see.
    assert.equal((await remux(['session', 'play', '20'], { env: as('alice') })).stdout, 'mine\r\n');
    for (const [key, why] of [['host', 'is of host db1, outside its scope'], ['user', 'is of tmux user root, outside its scope'], ['other', "is of another principal's attach or session"]] as const) {
      const r = await remux(['session', 'play', ids[key]!], { env: as('alice') });
      assert.equal(r.code, 77, `${key}: ${r.stdout}`);
      assert.equal(r.stderr.split('\n')[0], `remux: out of scope for alice: recording ${ids[key]} ${why}`);
      assert.equal(r.stdout, '');
      assert.equal((await remux(['session', 'play', ids[key]!], { env: as('root') })).stdout, `${key}\r\n`);
    }
  });
});
