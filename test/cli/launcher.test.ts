// End-to-end: the native launcher (bin/remux) forwarding client commands to a daemon, against the
// Node CLI (bin/remux.js) and in-process runs of the same command lines; and the daemon's side of the
// forwarding protocol fed by hand, including hostile clients.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { remux, REMUX_BIN, REMUX_NODE_BIN, spawnRemux, tempHome } from '../support/cli.js';

// Static checks only: these tests are about forwarding (the caller's cwd, environment, signals), which
// a sandbox showing none of the test's directories would hide behind its own `/`.
const POLICY = `policies:
  read_only:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: echo|pwd|true|false|sleep|seq|uname }
      - { operation: execute_binary, resource: id, effect: ask }
      - { operation: write_stdout, resource: null }
      - { operation: read_file, resource: /etc/hostname }
`;

/** Whether a process whose command line is exactly `argv` is running on this machine. */
function running(argv: string[]): boolean {
  const wanted = `${argv.join('\0')}\0`;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8') === wanted) return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

async function until(what: string, check: () => boolean, timeoutMs = 8000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(25)) if (check()) return;
  assert.fail(`timed out waiting until ${what}`);
}

/** Runs `command` under script(1), which gives it a terminal; what we write to it arrives as typed input. */
function spawnScript(command: string, env: Record<string, string>): ChildProcessWithoutNullStreams {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(REMUX|RPIPE)_/.test(name)));
  return spawn('script', ['-qec', command, '/dev/null'], { env: { ...clean, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
}

interface Frame {
  type: string;
  payload: Buffer;
}

/** Sends `request` (an object, or raw bytes) on the daemon socket, then `extra`; collects frames until the daemon closes. */
function rawSession(socket: string, request: unknown, extra: Buffer[] = []): Promise<{ frames: Frame[]; text: string }> {
  return new Promise((resolve) => {
    const conn = net.connect(socket);
    const chunks: Buffer[] = [];
    conn.on('data', (c: Buffer) => chunks.push(c));
    // The daemon may drop a hostile client mid-write (ECONNRESET): what arrived until then is the answer.
    conn.on('error', () => undefined);
    conn.on('close', () => {
      const all = Buffer.concat(chunks);
      const frames: Frame[] = [];
      for (let at = 0; at + 5 <= all.length; ) {
        const length = all.readUInt32BE(at + 1);
        frames.push({ type: String.fromCharCode(all[at]!), payload: all.subarray(at + 5, at + 5 + length) });
        at += 5 + length;
      }
      resolve({ frames, text: all.toString('utf8') });
    });
    conn.write(Buffer.isBuffer(request) ? request : `${JSON.stringify(request)}\n`);
    for (const b of extra) conn.write(b);
  });
}

const frameOf = (type: string, payload: Buffer): Buffer => {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
};

describe('the remux launcher and a daemon', () => {
  const h = tempHome();
  const socket = join(h.home, 'run', 'remux.sock');
  const debug = { ...h.env, REMUX_LAUNCHER_DEBUG: '1' };
  const version = (JSON.parse(readFileSync(join(dirname(REMUX_NODE_BIN), '..', 'package.json'), 'utf8')) as { version: string }).version;
  const request = (args: string[], more: Record<string, unknown> = {}): Record<string, unknown> => ({
    type: 'cli', version, args, cwd: h.home, env: { REMUX_HOME: h.home }, stdinIsTTY: false, stderrIsTTY: false, ...more,
  });

  before(async () => {
    writeFileSync(join(h.home, 'policies.yaml'), POLICY);
    const r = await remux(['daemon', 'start'], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  test('client and session commands go to the daemon without Node; other commands run the Node CLI', async () => {
    const forwarded = await remux(['client', 'run', 'localhost', '--', 'echo', 'hi'], { env: debug });
    assert.equal(forwarded.code, 0, forwarded.stderr);
    assert.equal(forwarded.stdout, 'hi\n');
    assert.match(forwarded.stderr, new RegExp(`forwarding to the daemon on ${socket}`));
    const other = await remux(['--version'], { env: debug });
    assert.equal(other.stdout.trim(), version);
    assert.match(other.stderr, /running the Node CLI \(not a command the daemon serves\)/);
    const sessions = await remux(['session', 'ls', '--host', 'nosuch'], { env: debug });
    assert.equal(sessions.code, 255);
    assert.match(sessions.stderr, new RegExp(`forwarding to the daemon on ${socket}`));
    assert.match(sessions.stderr, /no host named "nosuch"/);
    // Attaching needs this terminal: the daemon declines, and Node runs it here.
    const attach = await remux(['session', 'attach', 's', '--host', 'nosuch'], { env: debug });
    assert.equal(attach.code, 255);
    assert.match(attach.stderr, /running the Node CLI \(the daemon declined: the daemon runs only .* other than attach, recordings and play\)/);
    // Recordings are the client's files, played on its terminal: the client lists and plays them (the
    // daemon used to run them, printing the list into its own log and nothing here).
    const recordings = await remux(['session', 'recordings', '--json'], { env: debug });
    assert.equal(recordings.code, 0, recordings.stderr);
    assert.match(recordings.stderr, /running the Node CLI \(the daemon declined: .* other than attach, recordings and play\)/);
    assert.deepEqual(JSON.parse(recordings.stdout), []);
    const play = await remux(['session', 'play', 'nosuch'], { env: debug });
    assert.equal(play.code, 2);
    assert.match(play.stderr, /no recording nosuch in /);
    const noDaemon = await remux(['client', 'run', 'localhost', '--no-daemon', '--', 'true'], { env: debug });
    assert.equal(noDaemon.code, 0, noDaemon.stderr);
    assert.match(noDaemon.stderr, /running the Node CLI \(the daemon declined: --no-daemon\)/);
  });

  test('forwarded, through the Node CLI and in-process, a command line gives the same output and exit status', async () => {
    const cases: string[][] = [
      ['client', 'run', 'localhost', '--', 'pwd'],
      ['client', 'run', 'localhost', '--', 'false'],
      ['client', 'run', 'localhost', '--', 'rm -rf /'],
      ['client', 'run', 'localhost', '--', 'echo "unterminated'],
      ['client', 'run', 'localhost,local', '--group', '--', 'echo', 'two'],
      ['client', 'run', 'nosuchhost', '--', 'true'],
      ['client', 'run', '--timeout', 'soon', 'localhost', '--', 'true'],
      ['client', 'run', '--help'],
      ['client', 'batch', 'localhost'],
    ];
    for (const args of cases) {
      const launcher = await remux(args, { env: h.env, cwd: h.home });
      const viaNode = await remux(args, { env: h.env, cwd: h.home, via: 'node' });
      const inProcess = await remux([...args.slice(0, 2), '--no-daemon', ...args.slice(2)], { env: h.env, cwd: h.home });
      for (const [name, other] of [['Node CLI', viaNode], ['in-process', inProcess]] as const) {
        assert.equal(launcher.code, other.code, `${args.join(' ')}: exit ${launcher.code} forwarded, ${other.code} ${name}\n${launcher.stderr}\n${other.stderr}`);
        assert.equal(launcher.stdout, other.stdout, `${args.join(' ')}: stdout differs from ${name}`);
        assert.equal(launcher.stderr, other.stderr, `${args.join(' ')}: stderr differs from ${name}`);
      }
    }
  });

  test('paths in the client environment resolve against the client, not the daemon', async () => {
    const other = join(h.home, 'elsewhere');
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'policies.yaml'), POLICY);
    for (const via of ['launcher', 'node'] as const) {
      const same = await remux(['client', 'run', 'localhost', '--', 'true'], { env: { ...h.env, REMUX_POLICY_CONFIG: './policies.yaml' }, cwd: h.home, via });
      assert.equal(same.code, 0, `${via}: ./policies.yaml from the daemon's home is its own file: ${same.stderr}`);
      const differs = await remux(['client', 'run', 'localhost', '--', 'true'], { env: { ...h.env, REMUX_POLICY_CONFIG: './policies.yaml' }, cwd: other, via });
      assert.equal(differs.code, 2, `${via}: ${differs.stderr}`);
      assert.match(differs.stderr, new RegExp(`you named ${join(other, 'policies.yaml')}`));
    }
    // The launcher finds the socket the way the Node CLI does: relative REMUX_HOME, ~, REMUX_SOCKET with dot segments.
    const ways: Array<[Record<string, string>, string]> = [
      [{ REMUX_HOME: '.' }, h.home],
      [{ REMUX_HOME: `~/${basename(h.home)}`, HOME: dirname(h.home) }, '/'],
      [{ REMUX_HOME: '/nonexistent', REMUX_SOCKET: 'x/./../run//remux.sock' }, h.home],
    ];
    for (const [env, cwd] of ways) {
      const r = await remux(['client', 'run', 'localhost', '--', 'echo', 'found'], { env: { REMUX_LAUNCHER_DEBUG: '1', ...env }, cwd });
      assert.equal(r.stdout, 'found\n', `${JSON.stringify(env)}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`forwarding to the daemon on ${socket}\n`), JSON.stringify(env));
    }
    // A socket named in config.yaml: only the Node CLI reads YAML, and it forwards itself.
    const h2 = tempHome();
    try {
      writeFileSync(join(h2.home, 'config.yaml'), `daemon:\n  socket: ${socket}\n`);
      const r = await remux(['client', 'run', 'localhost', '--', 'pwd'], { env: { ...h2.env, REMUX_LAUNCHER_DEBUG: '1' }, cwd: h2.home });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${h2.home}\n`);
      assert.match(r.stderr, /running the Node CLI \(config.yaml names the socket\)/);
    } finally {
      h2.remove();
    }
  });

  test('a client naming another known_hosts is refused with a hint, as one naming other policies: the daemon would check host keys against its own', async () => {
    const own = join(homedir(), '.ssh', 'known_hosts');
    const other = join(h.home, 'other_known_hosts');
    for (const via of ['launcher', 'node'] as const) {
      for (const name of ['REMUX_KNOWN_HOSTS', 'RPIPE_KNOWN_HOSTS']) {
        const same = await remux(['client', 'run', 'localhost', '--', 'true'], { env: { ...h.env, [name]: own }, via });
        assert.equal(same.code, 0, `${via} ${name}: the daemon's own file: ${same.stderr}`);
        const differs = await remux(['client', 'run', 'localhost', '--', 'true'], { env: { ...h.env, [name]: other }, via });
        assert.equal(differs.code, 2, `${via} ${name}: ${differs.stderr}`);
        assert.ok(differs.stderr.includes(`the running daemon uses known_hosts ${own} (you named ${other})`), differs.stderr);
      }
    }
  });

  test('a batch reads its commands file relative to the client directory', async () => {
    const dir = join(h.home, 'jobs');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'health.txt'), '# two checks\necho one\necho two\n');
    const r = await remux(['client', 'batch', 'localhost', '-f', 'health.txt', '--json'], { env: h.env, cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { line: number; stdout: string }).line), [2, 3]);
  });

  test('a batch reads its commands from stdin with -f -, parsing every line before any runs', async () => {
    const r = await remux(['client', 'batch', 'localhost', '-f', '-', '--json'], { env: h.env, input: 'echo one\n# a comment\necho two\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { line: number; stdout: string }).stdout), ['one\n', 'two\n']);
    const bad = await remux(['client', 'batch', 'localhost', '-f', '-'], { env: h.env, input: 'echo ran > /tmp/remux-stdin-batch-must-not-exist\nls {a,b}\n' });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /stdin:2: unquoted brace/);
    assert.equal(existsSync('/tmp/remux-stdin-batch-must-not-exist'), false);
    const none = await remux(['client', 'batch', 'localhost', '-f', '-'], { env: h.env, input: '' });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /nothing is piped in|stdin holds no commands/);
  });

  test('Ctrl-C cancels the command in the daemon; a killed client does too', async () => {
    const argv = ['sleep', '30.125'];
    const child = spawnRemux(['client', 'run', 'localhost', '--', ...argv], { env: h.env });
    await until('the command runs', () => running(argv));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    await until('the command is gone after Ctrl-C', () => !running(argv));

    const argv2 = ['sleep', '30.25'];
    const killed = spawnRemux(['client', 'run', 'localhost', '--', ...argv2], { env: h.env });
    await until('the command runs', () => running(argv2));
    killed.kill('SIGKILL');
    await until('the command is gone after the client was killed', () => !running(argv2));
  });

  test('a reader that goes away (| head) ends the client quietly and the command with it', async () => {
    for (const via of ['launcher', 'node'] as const) {
      const argv = ['seq', via === 'node' ? '2' : '1', '999999999'];
      const child = spawnRemux(['client', 'run', 'localhost', '--timeout', '0', '--', ...argv], { env: h.env, via });
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      await new Promise((r) => child.stdout!.once('data', r));
      child.stdout!.destroy();
      assert.equal(await exited, 0, via);
      await until('the command is gone', () => !running(argv));
    }
  });

  test('an `ask` is answered on the client terminal, forwarded or not', async () => {
    for (const [via, bin] of [['launcher', REMUX_BIN], ['node', `${process.execPath} ${REMUX_NODE_BIN}`]] as const) {
      for (const [answer, code] of [['y', 0], ['n', 77]] as const) {
        const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
          const term = spawnScript(`${bin} client run localhost -- id`, h.env);
          let out = '';
          let answered = false;
          // Once: a later chunk may come after the script ended, when its stdin is gone.
          term.stdin.on('error', () => {});
          term.stdout.on('data', (d: Buffer) => {
            out += d.toString();
            if (!answered && out.includes('[y/N]')) {
              answered = true;
              term.stdin.write(`${answer}\n`);
            }
          });
          term.on('close', (c) => resolve({ code: c, out }));
        });
        assert.equal(r.code, code, `${via} answered ${answer}: ${r.out}`);
        assert.match(r.out, /approval needed on localhost/);
        if (answer === 'y') assert.match(r.out, /uid=\d+/);
      }
    }
  });

  test('the question on the terminal names bidi controls and zero-width characters in what it asks about', async () => {
    // U+202E reverses what follows, U+200B hides inside a word: shown as they are, a command could look like another.
    const term = spawnScript(`${REMUX_BIN} client run localhost -- 'id x\u202eyz\u200b'`, h.env);
    let out = '';
    term.stdin.on('error', () => {});
    term.stdout.on('data', (d: Buffer) => {
      const before = out;
      out += d.toString();
      if (!before.includes('[y/N]') && out.includes('[y/N]')) term.stdin.write('n\n');
    });
    assert.equal(await new Promise((resolve) => term.on('close', resolve)), 77, out);
    assert.ok(out.includes('run `id x<U+202E>yz<U+200B>`? [y/N]'), out);
  });

  test('the daemon declines what it does not serve, before running or printing anything', async () => {
    for (const [req, why] of [
      [request(['client', 'run', 'localhost', '--', 'true'], { version: '0.0.0-other' }), /the daemon is remux .* this client 0.0.0-other/],
      [request(['config', 'init']), /only `client run\|batch\|read\|ls\|write\|edit`, `rpc` and `session` commands other than attach/],
      // write's stdin is its content: a client that does not send it (a terminal's, /dev/null) runs it itself.
      [request(['client', 'write', 'localhost', '/tmp/x']), /client write reads its content from a terminal or \/dev\/null/],
      // Attaching needs the client's own terminal: the client runs it.
      [request(['session', 'attach', 's1', '--host', 'localhost']), /other than attach/],
      [request(['session', 'new', 's1', '--host', 'localhost', '--attach']), /other than attach/],
      [request(['client', 'run', 'localhost', '--no-daemon', '--', 'true']), /--no-daemon/],
    ] as const) {
      const { frames } = await rawSession(socket, req);
      assert.equal(frames.length, 1, JSON.stringify(frames));
      assert.equal(frames[0]!.type, 'd');
      assert.match(frames[0]!.payload.toString(), why);
    }
  });

  test('remux rpc is served by the daemon (its warm connections), with the same answer as in process', async () => {
    const via = await remux(['rpc', 'localhost', 'FileSystem.readText', '/etc/hostname'], { env: { ...h.env, REMUX_LAUNCHER_DEBUG: '1' } });
    assert.equal(via.code, 0, via.stderr);
    assert.match(via.stderr, /forwarding to the daemon/);
    assert.doesNotMatch(via.stderr, /running the Node CLI/);
    assert.equal(via.stdout, readFileSync('/etc/hostname', 'utf8'));
    const alone = await remux(['rpc', 'localhost', '--no-daemon', 'FileSystem.readText', '/etc/hostname'], { env: h.env });
    assert.equal(alone.code, 0, alone.stderr);
    assert.equal(alone.stdout, via.stdout);
  });

  test('hostile clients: malformed requests, unknown frames and answers, floods', async () => {
    const malformed = await rawSession(socket, { ...request(['client']), args: 'client run' });
    assert.deepEqual(malformed.frames.map((f) => f.type), ['e', 'x']);
    assert.match(malformed.frames[0]!.payload.toString(), /malformed request from the client: args/);
    assert.equal(malformed.frames[1]!.payload.readInt32BE(0), 2);

    const notJson = await rawSession(socket, Buffer.from('{"type": \n'));
    assert.match(notJson.text, /malformed request: not JSON/);

    // Answers to questions never asked, Ctrl-C after the end, unknown frame types: ignored, the command runs.
    const stray = [frameOf('a', Buffer.from([0, 0, 0, 9, 121])), frameOf('z', Buffer.from('?')), frameOf('a', Buffer.alloc(0))];
    const ran = await rawSession(socket, request(['client', 'run', 'localhost', '--', 'echo', 'ok']), stray);
    assert.deepEqual(ran.frames.map((f) => f.type), ['o', 'x']);
    assert.equal(ran.frames[0]!.payload.toString(), 'ok\n');

    // Stdin a client did not offer is ignored; stdin past what the daemon granted (a window at most) cuts the client off.
    const unoffered = await rawSession(socket, request(['client', 'run', 'localhost', '--', 'echo', 'ok']), [frameOf('s', Buffer.from('x')), frameOf('n', Buffer.alloc(0))]);
    assert.deepEqual(unoffered.frames.map((f) => f.type), ['o', 'x']);
    // 2 MiB: more than the window plus all that the pipe to a command that never reads can take, however
    // the frames are split between reads (a loaded daemon grants again as that pipe fills).
    const overrun = await rawSession(socket, request(['client', 'run', 'localhost', '--', 'sleep', '30.7'], { stdin: true }), Array.from({ length: 32 }, () => frameOf('s', Buffer.alloc(64 << 10))));
    assert.ok(!overrun.frames.some((f) => f.type === 'x'), 'a client sending stdin past its credit is dropped');
    await until('the overrunning client\'s command is gone', () => !running(['sleep', '30.7']));

    // A request line over the limit, or an oversized client frame, drops the connection.
    const flood = await rawSession(socket, Buffer.alloc(2 << 20, 0x41));
    assert.equal(flood.text, '');
    const huge = Buffer.alloc(5);
    huge[0] = 0x61;
    huge.writeUInt32BE(1 << 30, 1);
    const dropped = await rawSession(socket, request(['client', 'run', 'localhost', '--', 'sleep', '30.5']), [huge]);
    assert.ok(!dropped.frames.some((f) => f.type === 'x'), 'a client sending an oversized frame is dropped');
    await until('the dropped client\'s command is gone', () => !running(['sleep', '30.5']));
    // The daemon is still there for everyone else.
    assert.equal((await remux(['client', 'run', 'localhost', '--', 'true'], { env: h.env })).code, 0);
  });
});
