// `remux code` against real tmux (a private socket: REMUX_TMUX_SOCKET), real bubblewrap and
// sandbox-runtime, with a fake agent (fixtures/fake-agent.mjs) that probes its sandbox.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawn as ptySpawn } from 'node-pty';
import { launchArgv } from '../../src/agents/launch.js';
import { dockerArgv, ensureAgentState, settingsPrograms, srtConfig } from '../../src/agents/sandbox.js';
import { ConfigSchema } from '../../src/config/config.js';
import { REMUX_NODE_BIN, REPO_ROOT, remux, spawnRemux, tempHome } from '../support/cli.js';
import { until } from '../support/until.js';
import { endTmuxServer } from '../support/tmux.js';

const FAKE = join(REPO_ROOT, 'test', 'agents', 'fixtures', 'fake-agent.mjs');
const SUPERVISOR_MAIN = join(REPO_ROOT, 'dist', 'src', 'agents', 'supervisor.mjs');

/** pid → ppid of every process now. */
function processTable(): Map<number, number> {
  const table = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      table.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited meanwhile
    }
  }
  return table;
}

function descendants(root: number): number[] {
  const table = processTable();
  const found = [root];
  for (let i = 0; i < found.length; i++) for (const [pid, ppid] of table) if (ppid === found[i]) found.push(pid);
  return found;
}

function alive(pids: number[]): number[] {
  return pids.filter((p) => {
    try {
      return !readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z ');
    } catch {
      return false; // gone (ENOENT), or gone while being read (ESRCH)
    }
  });
}

describe('remux code', { timeout: 300_000 }, () => {
  const t = tempHome();
  const socket = `remux-test-${process.pid}`;
  const env = { ...t.env, REMUX_TMUX_SOCKET: socket };
  // Outside REMUX_HOME, which the sandbox hides as a whole.
  const work = mkdtempSync(join(tmpdir(), 'remux-agents-'));
  const repo = join(work, 'repo');
  const secret = join(work, 'secret.txt');
  const outside = join(work, 'outside.txt');
  let server: Server;
  let port = 0;
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  const code = (...args: string[]) => remux(['code', ...args], { env, via: 'node' });
  const list = async (all = true): Promise<Array<Record<string, unknown>>> => JSON.parse((await code('ls', '--json', ...(all ? ['-a'] : []))).stdout) as Array<Record<string, unknown>>;
  const agentCmd = (): string => `node ${FAKE} ${outside} ${secret} ${port}`;
  async function start(...args: string[]): Promise<Record<string, unknown>> {
    const r = await code('start', repo, '--no-attach', ...args);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.split(' ')[0] as string;
    return (await list()).find((s) => s.id === id) as Record<string, unknown>;
  }
  const liveTmux = (): string => {
    try {
      return tmux('list-sessions', '-F', '#{session_name}');
    } catch {
      return '';
    }
  };
  const pane = (s: Record<string, unknown>): string => tmux('capture-pane', '-p', '-J', '-S', '-', '-t', `=${String(s.tmux)}:`);

  before(async () => {
    mkdirSync(repo);
    execFileSync('git', ['-C', repo, 'init', '-q', '-b', 'main']);
    execFileSync('git', ['-C', repo, '-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-q', '--allow-empty', '-m', 'init']);
    writeFileSync(secret, 'TOP SECRET\n');
    mkdirSync(join(work, 'private', 'notes'), { recursive: true });
    writeFileSync(join(t.home, 'config.yaml'), `agents:\n  deny_read: [${secret}, ${join(work, 'private')}]\n`);
    server = createServer((s) => {
      s.on('error', () => {}); // the agent hangs up at once
      s.end('hello\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(() => {
    endTmuxServer(socket);
    server.close();
    t.remove();
    rmSync(work, { recursive: true, force: true });
  });

  it('runs the agent under srt: no write outside the workspace, no denied read, only allowlisted domains, no raw sockets', async () => {
    const s = await start('--agent', agentCmd(), '-n', 'probe');
    const text = await until('the probes', () => (pane(s).includes('PROBES done') ? pane(s) : false));
    assert.match(text, /FAKE-AGENT ready .*sandbox=1/);
    assert.match(text, /PROBE workspace-write: ALLOWED/);
    // A TMPDIR of its own, writable (sandbox-runtime's default, /tmp/claude, need not exist), gone once it ends.
    const tmp = new RegExp(`TMPDIR=(${tmpdir()}/remux-agent-${String(s.id)}-\\w+)`).exec(text)?.[1];
    assert.ok(tmp && existsSync(tmp), text);
    assert.match(text, /PROBE tmpdir-write: ALLOWED/);
    assert.match(text, /PROBE outside-write: DENIED/);
    assert.match(text, /PROBE ssh-read: DENIED/); // the configured deny_read file, as ~/.ssh is
    assert.match(text, /PROBE proxy-denied-domain: HTTP 403/);
    assert.match(text, /PROBE raw-connect: DENIED/);
    assert.equal(existsSync(outside), false);
    assert.equal(existsSync(join(repo, 'fake-agent-wrote.txt')), true);
  });

  it('an agent that exits at once: ls -a shows its status, logs its last screen, its TMPDIR is gone', async () => {
    const s = await start('--agent', `node ${FAKE} --exit 3`, '-n', 'leaver');
    const id = String(s.id);
    const records = (): Array<Record<string, unknown>> => (JSON.parse(readFileSync(join(t.home, 'agents', 'sessions.json'), 'utf8')) as { sessions: Array<Record<string, unknown>> }).sessions;
    const gone = await until('the exit', () => records().find((x) => x.id === id && x.state === 'exited'));
    assert.equal(gone.exitStatus, 3);
    assert.match((await code('ls', '-a')).stdout, new RegExp(`${id} +leaver .*exited \\(3\\)`));
    // status as ls says it; no pid: the supervisor's is gone, and may be another process's by now.
    assert.match((await code('status')).stdout, new RegExp(`${id} +leaver .*exited \\(3\\) +-\n`));
    assert.deepEqual((JSON.parse((await code('status', '--json')).stdout) as Array<Record<string, unknown>>).find((x) => x.id === id), { id, name: 'leaver', agent: `node ${FAKE} --exit 3`, state: 'exited', pid: null });
    const logs = await code('logs', id);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /FAKE-AGENT cannot go on: leaving with status 3\nremux: node \S+ --exit 3 exited \(status 3\)\n$/);
    assert.equal(logs.stderr, `remux: agent session ${id} has exited with status 3: this is its scrollback when it did\n`);
    assert.equal(statSync(join(t.home, 'agents', `${id}.log`)).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(tmpdir()).filter((n) => n.startsWith(`remux-agent-${id}-`)), []);
  });

  it('lists, shows status and logs by partial id, attaches through a terminal, restarts, and kill leaves no process', async () => {
    const s = await start('--agent', agentCmd(), '--worktree', 'feature-x');
    const id = String(s.id);
    assert.equal(s.branch, 'feature-x');
    assert.equal(s.workspace, join(t.home, 'worktrees', id));
    assert.match(execFileSync('git', ['-C', repo, 'worktree', 'list'], { encoding: 'utf8' }), /feature-x/);
    const ls = await code('ls');
    assert.match(ls.stdout, new RegExp(`${id}.*running.*srt.*worktrees/${id}\\s+feature-x`));
    assert.match((await code('status')).stdout, new RegExp(`${id}.*running`));
    // Host agents is one host for `session ls` as for attach (it is in no inventory).
    const sessions = await remux(['session', 'ls', '--host', 'agents', '--json'], { env, via: 'node' });
    assert.equal(sessions.code, 0, sessions.stderr);
    assert.match(sessions.stdout, new RegExp(`"name": "${String(s.tmux)}"`));
    await until('the banner', () => pane(s).includes('PROBES done'));
    const logs = await code('logs', id.slice(0, 5));
    assert.match(logs.stdout, /FAKE-AGENT ready/);
    const follow = spawnRemux(['code', 'logs', '-f', id.slice(0, 5)], { env, via: 'node' });
    let followed = '';
    follow.stdout?.on('data', (d: Buffer) => (followed += d.toString()));
    await until('the first capture', () => followed.includes('PROBES done'));
    tmux('send-keys', '-t', `=${String(s.tmux)}:`, 'followed line', 'Enter');
    await until('the new line followed', () => followed.includes('ECHO followed line'));
    follow.kill();

    const term = ptySpawn(process.execPath, [REMUX_NODE_BIN, 'code', 'attach', id.slice(0, 5)], { cols: 120, rows: 30, env: { ...process.env, ...env, TMUX: '', TERM: 'xterm-256color' } }); // the pty's own type, whatever the runner's TERM
    let seen = '';
    term.onData((d) => (seen += d));
    await until('the attached pane', () => seen.includes('PROBES done'));
    term.write('hello agent\r');
    await until('the echo', () => seen.includes('ECHO hello agent'));
    term.write('\x02d'); // detach
    await new Promise<void>((r) => term.onExit(() => r()));

    assert.equal((await code('restart', id.slice(0, 5))).code, 0);
    const restarted = (await list()).find((x) => x.id === id) as Record<string, unknown>;
    assert.notEqual(restarted.pid, s.pid);
    await until('the restarted agent', () => pane(restarted).includes('PROBES done'));

    const tree = descendants(Number(restarted.pid));
    assert.ok(tree.length >= 4, `supervisor, bash/bwrap, the agent, socat bridges: ${tree.length}`);
    const k = await code('kill', id.slice(0, 5));
    assert.notEqual(k.code, 0, 'without a terminal, kill asks and refuses');
    assert.equal((await code('kill', id.slice(0, 5), '-f')).code, 0);
    await until('every process gone', () => alive(tree).length === 0);
    const killed = (await list()).find((x) => x.id === id);
    // Killed, not exited by itself: no status of its own and no saved screen.
    assert.deepEqual([killed?.state, killed?.exitStatus, existsSync(join(t.home, 'agents', `${id}.log`))], ['exited', undefined, false]);
    assert.equal((await list(false)).some((x) => x.id === id), false, 'ls without -a hides exited sessions');
    const audit = await remux(['audit', 'ls', '--json'], { env, via: 'node' });
    for (const op of ['agent.start', 'agent.restart', 'agent.kill']) assert.match(audit.stdout, new RegExp(op));
    // The attach was a session attach on host agents: audited, and recorded like any other.
    const actions = audit.stdout.trim().split('\n').map((line) => JSON.parse(line) as { operation: string; host: string; resource: string; recording: string | null });
    const attached = actions.find((a) => a.operation === 'session.attach' && a.resource.endsWith(`@agents:agent-${id}`));
    assert.ok(attached?.recording, `a recorded session.attach of agent-${id} on host agents: ${JSON.stringify(attached)}`);
    assert.ok(existsSync(join(t.home, 'recordings', `${attached.recording}.cast`)), 'its recording');
  });

  it('kill -9 of the supervisor leaves nothing running, and ls then shows the session exited', async () => {
    const s = await start('--agent', agentCmd());
    await until('the agent', () => pane(s).includes('PROBES done'));
    const tree = descendants(Number(s.pid));
    const tmps = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith(`remux-agent-${String(s.id)}-`));
    assert.equal(tmps().length, 1, 'its TMPDIR while it runs');
    process.kill(Number(s.pid), 'SIGKILL');
    await until('every process gone', () => alive(tree).length === 0);
    await until('exited', () => execFileSync(process.execPath, [REMUX_NODE_BIN, 'code', 'ls', '-a', '--json'], { env: { ...process.env, ...env }, encoding: 'utf8' }).includes('"exited"'));
    assert.equal((await list()).find((x) => x.id === s.id)?.state, 'exited');
    // The supervisor could not remove its TMPDIR; seeing the session gone did.
    assert.deepEqual(tmps(), []);
  });

  it('a supervisor whose parent is gone without a hang-up reaching it stops its agent and exits', async () => {
    const r = await code('start', repo, '--no-attach', '--sandbox', 'none', '--agent', 'sleep 300');
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.split(' ')[0] as string;
    assert.equal((await code('kill', id, '-f')).code, 0);
    // The session's supervisor again, under a parent that dies by SIGKILL, with no terminal to hang up.
    const parent = spawn('sh', ['-c', `"${process.execPath}" "${SUPERVISOR_MAIN}" ${id} >/dev/null 2>&1 & echo $!; wait`], { env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const supervisor = Number((await once(parent.stdout!, 'data'))[0].toString().trim());
    try {
      const agent = await until('the agent', () => descendants(supervisor).find((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('sleep\x00300')) ?? false);
      process.kill(parent.pid!, 'SIGKILL');
      await until('the supervisor and its agent gone', () => alive([supervisor, agent]).length === 0);
    } finally {
      // Whatever is left when the check failed.
      for (const pid of alive([...descendants(supervisor), supervisor])) process.kill(pid, 'SIGKILL');
    }
  });

  describe('the tmux server a session started on, whatever TMUX_TMPDIR a later command has', () => {
    // Two TMUX_TMPDIRs of this test's own (a terminal's, a systemd service's): the same socket name, two servers.
    const dirs = [mkdtempSync(join(tmpdir(), 'remux-tmux-a-')), mkdtempSync(join(tmpdir(), 'remux-tmux-b-'))] as const;
    const inA = { ...env, TMUX_TMPDIR: dirs[0] };
    const inB = { ...env, TMUX_TMPDIR: dirs[1] };
    const serverIn = (dir: string): string => join(dir, `tmux-${process.getuid!()}`, socket);
    const codeIn = (where: Record<string, string>, ...args: string[]) => remux(['code', ...args], { env: where, via: 'node' });
    const listIn = async (where: Record<string, string>): Promise<Array<Record<string, unknown>>> => JSON.parse((await codeIn(where, 'ls', '-a', '--json')).stdout) as Array<Record<string, unknown>>;
    const sessionsOn = (path: string): string[] => {
      try {
        return execFileSync('tmux', ['-S', path, 'list-sessions', '-F', '#{session_name}'], { encoding: 'utf8' }).split('\n');
      } catch {
        return [];
      }
    };
    after(() => {
      for (const dir of dirs) {
        spawnSync('tmux', ['-S', serverIn(dir), 'kill-server'], { stdio: 'ignore' });
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('records the socket path; ls, logs, attach, restart and kill find it from another TMUX_TMPDIR', async () => {
      const r = await codeIn(inA, 'start', repo, '--no-attach', '--sandbox', 'none', '--agent', 'cat', '-n', 'moved');
      assert.equal(r.code, 0, r.stderr);
      const id = r.stdout.split(' ')[0]!;
      const s = (await listIn(inA)).find((x) => x.id === id)!;
      assert.equal(s.socket, serverIn(dirs[0]), 'the absolute path of the server it started on');

      const seenFromB = (await listIn(inB)).find((x) => x.id === id);
      assert.equal(seenFromB?.state, 'running');
      const logs = await codeIn(inB, 'logs', id);
      assert.equal(logs.code, 0, logs.stderr);
      assert.match(logs.stdout, /running UNSANDBOXED/);
      // Typed through an attach from B, read by cat on A's server.
      const term = ptySpawn(process.execPath, [REMUX_NODE_BIN, 'code', 'attach', id], { cols: 120, rows: 30, env: { ...process.env, ...inB, TMUX: '', TERM: 'xterm-256color' } });
      let shown = '';
      term.onData((d) => (shown += d));
      await until('the attached pane', () => shown.includes('running UNSANDBOXED'));
      term.write('typed-from-b\r');
      await until('the echo', () => shown.includes('typed-from-b'));
      term.write('\x02d'); // detach
      await new Promise<void>((resolve) => term.onExit(() => resolve()));
      await until('the keys on its screen, read from A', async () => (await codeIn(inA, 'logs', id)).stdout.includes('typed-from-b'));

      // A restart starts a new pane where a new session would: on B's server now, found from A.
      const restart = await codeIn(inB, 'restart', id);
      assert.equal(restart.code, 0, restart.stderr);
      assert.equal((await listIn(inA)).find((x) => x.id === id)?.socket, serverIn(dirs[1]));
      assert.deepEqual([sessionsOn(serverIn(dirs[0])).includes(`agent-${id}`), sessionsOn(serverIn(dirs[1])).includes(`agent-${id}`)], [false, true]);
      const kill = await codeIn(inA, 'kill', id, '-f');
      assert.equal(kill.code, 0, kill.stderr);
      assert.equal(sessionsOn(serverIn(dirs[1])).includes(`agent-${id}`), false, 'killed on its own server');
      assert.equal((await listIn(inA)).find((x) => x.id === id)?.state, 'exited');
    });

    it('session ls --host agents lists agent sessions on the servers their records name, beside the caller\'s own server\'s sessions', async () => {
      const r = await codeIn(inA, 'start', repo, '--no-attach', '--sandbox', 'none', '--agent', 'sleep 300', '-n', 'listed');
      assert.equal(r.code, 0, r.stderr);
      const id = r.stdout.split(' ')[0]!;
      // A session of A's server that no record names, and one of B's own.
      execFileSync('tmux', ['-S', serverIn(dirs[0]), 'new-session', '-d', '-s', 'unrecorded-on-a', 'sleep', '300']);
      execFileSync('tmux', ['-L', socket, 'new-session', '-d', '-s', 'own-on-b', 'sleep', '300'], { env: { ...process.env, TMUX_TMPDIR: dirs[1] } });
      const ls = await remux(['session', 'ls', '--host', 'agents', '--json'], { env: inB });
      assert.equal(ls.code, 0, ls.stderr);
      type Listing = Array<{ host: string; users: Array<{ state: string; sessions: Array<{ name: string }> }> }>;
      const names = (listing: string): string[] => (JSON.parse(listing) as Listing)[0]?.users.flatMap((u) => (u.state === 'ok' ? u.sessions.map((x) => x.name) : [])) ?? [];
      // Other tests' sessions still running (on this file's default server) are listed too.
      const listed = names(ls.stdout);
      assert.ok(listed.includes(`agent-${id}`) && listed.includes('own-on-b'), listed.join(' '));
      assert.ok(!listed.includes('unrecorded-on-a'), 'only the sessions records name on servers other than its own');
      const table = await remux(['session', 'ls', '--host', 'agents'], { env: inB });
      assert.match(table.stdout, new RegExp(`^agents +\\S+ +agent-${id} +1 `, 'm'));
      assert.equal((await codeIn(inB, 'kill', id, '-f')).code, 0);
      const after = names((await remux(['session', 'ls', '--host', 'agents', '--json'], { env: inB })).stdout);
      assert.ok(!after.includes(`agent-${id}`) && after.includes('own-on-b'), `an ended one is not listed: ${after.join(' ')}`);
    });

    it("a record from before socket paths were kept gets its server's path where it runs, never where a session of its name is not its own", async () => {
      const r = await codeIn(inA, 'start', repo, '--no-attach', '--sandbox', 'none', '--agent', 'sleep 300', '-n', 'old-style');
      assert.equal(r.code, 0, r.stderr);
      const id = r.stdout.split(' ')[0]!;
      await until('running', async () => (await listIn(inA)).find((x) => x.id === id && x.state === 'running'));
      // As a remux before this one wrote it: no socket.
      const file = join(t.home, 'agents', 'sessions.json');
      const records = JSON.parse(readFileSync(file, 'utf8')) as { sessions: Array<Record<string, unknown>> };
      for (const x of records.sessions) if (x.id === id) delete x.socket;
      writeFileSync(file, JSON.stringify(records));

      // From another server it is not marked exited, not placed there, and not killed behind its agent's back.
      const fromB = (await listIn(inB)).find((x) => x.id === id);
      assert.deepEqual([fromB?.state, fromB?.socket], ['running', undefined], 'not marked exited, no path');
      const refused = new RegExp(`agent session ${id} \\(old-style\\) runs \\(its supervisor is pid \\d+\\) on a tmux server this command does not see`);
      let kill = await codeIn(inB, 'kill', id, '-f');
      assert.equal(kill.code, 2);
      assert.match(kill.stderr, refused);
      assert.match(kill.stderr, /hint: run remux with the TMUX_TMPDIR \(and REMUX_TMUX_SOCKET\) the session was started with/);
      // A session of its name on B's server (anyone's, for anything) is not its session: its pane runs no supervisor of it.
      execFileSync('tmux', ['-L', socket, 'new-session', '-d', '-s', `agent-${id}`, 'sleep', '300'], { env: { ...process.env, TMUX_TMPDIR: dirs[1] } });
      assert.equal((await listIn(inB)).find((x) => x.id === id)?.socket, undefined, 'not placed on the server where its name is taken');
      kill = await codeIn(inB, 'kill', id, '-f');
      assert.equal(kill.code, 2, 'the other session of its name is not killed for it');
      assert.match(kill.stderr, refused);
      assert.ok(sessionsOn(serverIn(dirs[1])).includes(`agent-${id}`));
      assert.ok(existsSync(join(t.home, 'agents', `${id}.env`)), 'its secrets file is still there for its supervisor');

      // Looked at from its own server, it gets that server's path: from then on found from anywhere.
      assert.equal((await listIn(inA)).find((x) => x.id === id)?.socket, serverIn(dirs[0]));
      assert.equal((await codeIn(inB, 'kill', id, '-f')).code, 0, 'from B, killed on its own server');
      assert.equal(sessionsOn(serverIn(dirs[0])).includes(`agent-${id}`), false);
      assert.ok(sessionsOn(serverIn(dirs[1])).includes(`agent-${id}`), "the other session of its name is left alone");
    });
  });

  it('an agent that started and exited before the CLI looked is a start, not a supervisor failure', async () => {
    // `true` under --sandbox none: started and gone within a few ms, between two looks of the CLI.
    const r = await code('start', repo, '--no-attach', '--sandbox', 'none', '--agent', 'true', '-n', 'blink');
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.split(' ')[0]!;
    const s = await until('its exit recorded', async () => (await list()).find((x) => x.id === id && x.state === 'exited'));
    assert.equal(s?.exitStatus, 0);
  });

  it('attach -r watches the agent: what is typed there never reaches it, and the audit says read-only', async () => {
    const r = await code('start', repo, '--no-attach', '--sandbox', 'none', '--agent', 'cat', '-n', 'watched');
    assert.equal(r.code, 0, r.stderr);
    const s = (await list()).find((x) => x.id === r.stdout.split(' ')[0]) as Record<string, unknown>;
    const id = String(s.id);
    const term = ptySpawn(process.execPath, [REMUX_NODE_BIN, 'code', 'attach', '-r', id.slice(0, 5)], { cols: 120, rows: 30, env: { ...process.env, ...env, TMUX: '', TERM: 'xterm-256color' } });
    let seen = '';
    term.onData((d) => (seen += d));
    const ended = new Promise<void>((resolve) => term.onExit(() => resolve()));
    try {
      await until('the attached pane', () => seen.includes('UNSANDBOXED'));
      term.write('typed while watching\r');
      // A line sent to the pane afterwards shows in the watcher: by then the typed one would have too.
      tmux('send-keys', '-t', `=${String(s.tmux)}:`, 'sent to the pane', 'Enter');
      await until('the line sent to the pane, watched', () => seen.includes('sent to the pane'));
      assert.doesNotMatch(pane(s), /typed while watching/);
    } finally {
      term.kill();
      await ended;
    }
    const audit = (await remux(['audit', 'ls', '--json'], { env, via: 'node' })).stdout.trim().split('\n').map((line) => JSON.parse(line) as { operation: string; resource: string | null; reason: string | null });
    const attached = audit.find((a) => a.operation === 'session.attach' && a.resource?.endsWith(`@agents:agent-${id}`) === true);
    assert.match(attached?.reason ?? '', /read-only/, JSON.stringify(attached));
    await code('kill', id, '-f');
  });

  it('--sandbox none runs the agent unsandboxed and says so', async () => {
    const r = await code('start', repo, '--no-attach', '--sandbox', 'none', '--agent', agentCmd());
    assert.match(r.stdout, /sandbox none: UNSANDBOXED/);
    // No daemon runs in these tests: nothing turns the prompts on its screen into approvals, and the user is told.
    assert.equal(r.stderr, "remux: no daemon runs: the permission prompts on this session's screen become approvals (and notifications) once one does (remux daemon start)\n");
    const s = (await list()).find((x) => x.id === r.stdout.split(' ')[0]) as Record<string, unknown>;
    const text = await until('the probes', () => (pane(s).includes('PROBES done') ? pane(s) : false));
    assert.match(text, /running UNSANDBOXED/);
    assert.match(text, /sandbox=none/);
    assert.match(text, /PROBE ssh-read: ALLOWED/);
    await code('kill', String(s.id), '-f');
  });

  it('fails closed when the sandbox cannot start (no bwrap on PATH), and for docker without an engine', async () => {
    const before = (await list()).length;
    const r = await remux(['code', 'start', repo, '--no-attach', '--agent', agentCmd()], { env: { ...env, PATH: '/nonexistent' }, via: 'node' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--sandbox srt cannot start here: bwrap, socat, rg not found/);
    const d = await code('start', repo, '--no-attach', '--sandbox', 'docker', '--agent', agentCmd());
    assert.equal(d.code, 2);
    assert.match(d.stderr, /--sandbox docker: no Docker engine answers/);
    assert.equal((await list()).length, before, 'nothing recorded');
  });

  it('fails closed when sandbox-runtime cannot start in the supervisor (a broken socat): no agent, exit 1, recorded as failed', async () => {
    const bin = join(work, 'broken-bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'socat'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    const r = await remux(['code', 'start', repo, '--no-attach', '--agent', agentCmd()], { env: { ...env, PATH: `${bin}:${process.env.PATH}` }, via: 'node' });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /the srt sandbox cannot start, the agent was not started/);
    const failed = (await list()).find((s) => s.state === 'failed');
    assert.ok(failed, 'recorded as failed');
    assert.equal(liveTmux().includes(String(failed.tmux)), false);
    // One JSON record per line.
    const audited = (await remux(['audit', 'ls', '--json'], { env, via: 'node' })).stdout.trim().split('\n').map((line) => JSON.parse(line)) as Array<{
      operation: string;
      resource: string;
      status: string;
      exitCode: number | null;
      error: string | null;
    }>;
    const record = audited.find((a) => a.operation === 'agent.start' && a.resource.startsWith(`${String(failed.id)} `));
    assert.deepEqual([record?.status, record?.exitCode], ['complete', 1]);
    assert.match(record?.error ?? '', /the srt sandbox cannot start/);
  });

  it('start --json and kill --json: one JSON document a script goes on with (the ID, host agents, the next lines)', async () => {
    const started = await code('start', repo, '--sandbox', 'none', '--agent', 'sleep 300', '--json');
    assert.equal(started.code, 0, started.stderr);
    const s = JSON.parse(started.stdout) as Record<string, unknown>;
    const listed = (await list()).find((x) => x.id === s.id);
    assert.ok(listed, started.stdout);
    assert.deepEqual({ ...s, state: listed.state }, { ...listed, host: 'agents', attach: `remux code attach ${String(s.id)}`, logs: `remux code logs ${String(s.id)}`, kill: `remux code kill ${String(s.id)} -f` });
    assert.equal(liveTmux().includes(`agent-${String(s.id)}`), true);
    const killed = await code('kill', String(s.id), '-f', '--json');
    assert.equal(killed.code, 0, killed.stderr);
    assert.deepEqual(JSON.parse(killed.stdout), { id: s.id, name: s.name, host: 'agents', state: 'exited' });
    assert.equal(liveTmux().includes(`agent-${String(s.id)}`), false);
  });

  it('starts nothing when its audit record cannot be written first', async () => {
    const before = liveTmux();
    const since = new Date().toISOString();
    // A directory where the audit store should be: the store cannot open, so no begin can be written.
    const r = await remux(['code', 'start', repo, '--no-attach', '--sandbox', 'none', '--agent', 'sleep 300'], { env: { ...env, REMUX_AUDIT_DB: work }, via: 'node' });
    assert.notEqual(r.code, 0, r.stderr);
    assert.deepEqual(liveTmux(), before, 'no agent session was started');
    // Not even its record was written.
    assert.deepEqual((await list()).filter((s) => String(s.created) >= since), []);
  });

  it("keeps the agent's credentials off every command line: a 0600 env file its supervisor reads", async () => {
    const token = `sk-ant-test-${process.pid}`;
    // A stand-in `claude`: the test is about what remux passes it, not about Claude Code being installed.
    const bin = join(work, 'claude-bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'claude'), '#!/bin/sh\nexec sleep 600\n', { mode: 0o755 });
    const r = await remux(['code', 'start', repo, '--no-attach', '--sandbox', 'none', '--agent', 'claude'], {
      env: { ...env, ANTHROPIC_API_KEY: token, PATH: `${bin}:${process.env.PATH}` },
      via: 'node',
    });
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.split(' ')[0] as string;
    const file = join(t.home, 'agents', `${id}.env`);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(readFileSync(file, 'utf8'), `ANTHROPIC_API_KEY=${token}\n`);
    for (const pid of processTable().keys()) {
      let cmdline: string;
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      assert.equal(cmdline.includes(token), false, `process ${pid} has the secret on its command line`);
    }
  });

  it('refuses shell syntax in a custom agent command', async () => {
    const list = await code('start', repo, '--no-attach', '--agent', 'node x.mjs; rm -rf /tmp/x');
    assert.equal(list.code, 2);
    assert.match(list.stderr, /must be one command with its arguments: no pipes, lists or redirections/);
    const substitution = await code('start', repo, '--no-attach', '--agent', 'node $(cat /etc/passwd)');
    assert.equal(substitution.code, 2);
    assert.match(substitution.stderr, /command substitution/);
  });

  it("with REMUX_TOKEN, acts as that principal: refused out of its scope or with a token that matches no one, audited under its name in scope", async () => {
    const token = async (name: string, hosts: string, ...more: string[]): Promise<string> => {
      const r = await remux(['principal', 'add', name, '--hosts', hosts, ...more, '--json'], { env, via: 'node' });
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { token: string }).token;
    };
    const before = (await list()).length;
    const outsiderEnv = { ...env, REMUX_TOKEN: await token('outsider', 'web1') };
    const outsider = await remux(['code', 'start', repo, '--no-attach', '--sandbox', 'none', '--agent', 'sleep 300'], { env: outsiderEnv, via: 'node' });
    assert.equal(outsider.code, 77, outsider.stderr);
    assert.match(outsider.stderr, /out of scope for outsider: host agents is not among its hosts \(web1\)/);
    // A principal that may only watch sessions starts no agent either.
    const watcherEnv = { ...env, REMUX_TOKEN: await token('watcher', 'agents', '--read-only') };
    const watcher = await remux(['code', 'start', repo, '--no-attach', '--sandbox', 'none', '--agent', 'sleep 300'], { env: watcherEnv, via: 'node' });
    assert.equal(watcher.code, 77, watcher.stderr);
    assert.match(watcher.stderr, /out of scope for watcher: it may only watch sessions/);
    // Nor may it look at them, or find one to act on.
    for (const args of [['ls', '--json'], ['status'], ['logs', 'nosuch'], ['kill', 'nosuch', '-f']]) {
      const looked = await remux(['code', ...args], { env: outsiderEnv, via: 'node' });
      assert.deepEqual([looked.code, looked.stdout], [77, ''], `code ${args.join(' ')}: ${looked.stderr}`);
      assert.match(looked.stderr, /out of scope for outsider/);
    }
    const nobody = await remux(['code', 'start', repo, '--no-attach', '--sandbox', 'none', '--agent', 'sleep 300'], { env: { ...env, REMUX_TOKEN: 'rmx_not-a-token' }, via: 'node' });
    assert.equal(nobody.code, 77, nobody.stderr);
    assert.match(nobody.stderr, /REMUX_TOKEN matches no principal/);
    assert.equal((await list()).length, before, 'nothing recorded, nothing started');

    const coder = { ...env, REMUX_TOKEN: await token('coder', 'agents') };
    const started = await remux(['code', 'start', repo, '--no-attach', '--sandbox', 'none', '--agent', 'sleep 300'], { env: coder, via: 'node' });
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.split(' ')[0] as string;
    const listed = await remux(['code', 'ls', '--json'], { env: coder, via: 'node' });
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok((JSON.parse(listed.stdout) as Array<{ id: string }>).some((s) => s.id === id));
    // The watcher attaching to it is told how it may: in remux code's words, not as host agents' tmux session.
    const attaching = await remux(['code', 'attach', id], { env: watcherEnv, via: 'node' });
    assert.equal(attaching.code, 77, attaching.stderr);
    assert.match(attaching.stderr, new RegExp(`\\nhint: watch it with: remux code attach ${id} -r\\n$`));
    assert.equal((await remux(['code', 'kill', id, '-f'], { env: coder, via: 'node' })).code, 0);
    const audited = (await remux(['audit', 'ls', '--json'], { env, via: 'node' })).stdout.trim().split('\n').map((line) => JSON.parse(line)) as Array<{
      operation: string;
      resource: string;
      principal: string;
      decision: string;
      exitCode: number | null;
      error: string | null;
    }>;
    assert.deepEqual(
      audited.filter((a) => a.resource?.startsWith(`${id} `)).map((a) => [a.operation, a.principal]),
      [
        ['agent.start', 'coder'],
        ['agent.kill', 'coder'],
      ],
    );
    // The refusals are in the audit trail too, under the principals that asked, with why: the starts, the
    // listings, the read of a session's screen, the lookup of the session to kill (with what was asked for).
    const refused = audited.filter((a) => a.principal === 'outsider' || a.principal === 'watcher');
    assert.deepEqual(
      // (a start's resource is the ID it was given and its workspace)
      refused.map((a) => [a.operation, a.operation === 'agent.start' ? 'ID WORKSPACE' : a.resource, a.principal, a.decision, a.exitCode, /out of scope/.test(a.error ?? '')]),
      [
        ['agent.start', 'ID WORKSPACE', 'outsider', 'deny', 77, true],
        ['agent.start', 'ID WORKSPACE', 'watcher', 'deny', 77, true],
        ['agent.list', null, 'outsider', 'deny', 77, true],
        ['agent.list', null, 'outsider', 'deny', 77, true],
        ['agent.logs', 'nosuch', 'outsider', 'deny', 77, true],
        ['agent.list', 'nosuch', 'outsider', 'deny', 77, true],
        ['session.attach', `${userInfo().username}@agents:agent-${id}`, 'watcher', 'deny', 77, true],
      ],
    );
    // What an admitted principal reads is recorded as well.
    assert.ok(audited.some((a) => a.operation === 'agent.list' && a.principal === 'coder' && a.decision === 'allow'), 'code ls by coder is audited');
  });

  it("never hands the agent remux's own token, though the CLI that started the agents' tmux server had one; a sandboxed agent gets none of that environment's other secrets but what agents.pass_env names", async () => {
    const r = await remux(['principal', 'add', 'starter', '--hosts', 'agents', '--json'], { env, via: 'node' });
    assert.equal(r.code, 0, r.stderr);
    // A tmux server of its own, started by this CLI: the panes inherit its environment, REMUX_TOKEN included.
    const own = `${socket}-token`;
    const withToken = { ...env, REMUX_TMUX_SOCKET: own, REMUX_TOKEN: (JSON.parse(r.stdout) as { token: string }).token, REMUX_TEST_SECRET: 'a-cloud-key' };
    const config = join(t.home, 'config.yaml');
    const before = readFileSync(config, 'utf8');
    const banner = async (sandbox: string): Promise<string> => {
      const started = await remux(['code', 'start', repo, '--no-attach', '--sandbox', sandbox, '--agent', agentCmd()], { env: withToken, via: 'node' });
      assert.equal(started.code, 0, started.stderr);
      const tmuxName = `agent-${started.stdout.split(' ')[0]!}`;
      return until(`the ${sandbox} agent's banner`, () => /FAKE-AGENT ready .*/.exec(execFileSync('tmux', ['-L', own, 'capture-pane', '-p', '-J', '-t', `=${tmuxName}:`], { encoding: 'utf8' }))?.[0]);
    };
    try {
      for (const [sandbox, other] of [['srt', 'unset'], ['none', 'set']]) {
        const seen = await banner(sandbox as string);
        assert.match(seen, /remux-token=unset/, `--sandbox ${sandbox}: ${seen}`);
        assert.match(seen, new RegExp(`other-secret=${other}`), `--sandbox ${sandbox}: ${seen}`);
      }
      writeFileSync(config, `${before}  pass_env: [REMUX_TEST_SECRET]\n`);
      assert.match(await banner('srt'), /remux-token=unset other-secret=set/, 'agents.pass_env names what a sandboxed agent also gets');
    } finally {
      writeFileSync(config, before);
      endTmuxServer(own);
    }
  });

  it("refuses a workspace inside what the sandbox hides ($REMUX_HOME, agents.deny_read), a link to one too: the agent's write access would open it", async () => {
    const before = (await list()).length;
    symlinkSync(t.home, join(work, 'remux-home-link'));
    for (const [workspace, hidden] of [
      [t.home, t.home],
      [join(t.home, 'agents'), t.home],
      [join(work, 'remux-home-link'), t.home],
      [join(work, 'private', 'notes'), join(work, 'private')],
    ] as const) {
      const r = await code('start', workspace, '--no-attach', '--agent', agentCmd());
      assert.equal(r.code, 2, `${workspace}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`workspace \\S+ is inside ${hidden}, which agent sandboxes hide .*\nhint: choose a directory outside it`));
    }
    assert.equal((await list()).length, before, 'nothing started or recorded');
  });

  it('refuses an agent that is not installed here, saying how to install it; nothing is started or recorded', async () => {
    const before = (await list()).length;
    // A PATH with the sandbox's programs only: codex is nowhere on it.
    const bare = mkdtempSync(join(tmpdir(), 'remux-nopath-'));
    for (const p of ['bwrap', 'socat', 'rg']) symlinkSync(execFileSync('sh', ['-c', `command -v ${p}`], { encoding: 'utf8' }).trim(), join(bare, p));
    try {
      const codex = await remux(['code', 'start', repo, '--no-attach', '--agent', 'codex'], { env: { ...env, PATH: bare }, via: 'node' });
      assert.equal(codex.code, 2, codex.stderr);
      assert.equal(codex.stderr, 'remux: --agent codex: codex is not installed here (not found on PATH)\nhint: install it (npm install -g @openai/codex), or choose another --agent\n');
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
    const relative = await code('start', repo, '--no-attach', '--agent', './no-such-agent --fast');
    assert.equal(relative.code, 2);
    assert.match(relative.stderr, new RegExp(`\\./no-such-agent is not installed here \\(not found at ${repo}/no-such-agent\\)\nhint: install it, or give its full path`));
    // A misspelt agent is taken for a command of that name: the hint names the agent meant.
    const typo = await code('start', repo, '--no-attach', '--agent', 'claud');
    assert.equal(typo.code, 2);
    assert.equal(typo.stderr, 'remux: --agent claud: claud is not installed here (not found on PATH)\nhint: did you mean --agent claude? Otherwise install claud, or give its full path\n');
    // A known agent with arguments of its own (as in code start --help) is that agent, not a misspelling.
    const withArgs = await code('start', repo, '--no-attach', '--agent', 'aider --model sonnet');
    assert.equal(withArgs.stderr, 'remux: --agent aider --model sonnet: aider is not installed here (not found on PATH)\nhint: install it (python3 -m pip install aider-install && aider-install), or choose another --agent\n');
    assert.equal((await list()).length, before);
  });

  it('logs -f follows an agent to its end: its last lines, then how it ended', async () => {
    // It ends once told to (a file appears): only after `logs -f` follows it, however slow starting that is.
    const go = join(mkdtempSync(join(tmpdir(), 'remux-logs-f-')), 'go');
    const agent = `node -e "console.log('FOLLOW ME'); setInterval(() => { if (require('fs').existsSync('${go}')) { console.log('LAST WORDS'); process.exit(4); } }, 50)"`;
    const s = await start('--sandbox', 'none', '--agent', agent);
    const follow = spawnRemux(['code', 'logs', '-f', String(s.id)], { env, via: 'node' });
    let [stdout, stderr] = ['', ''];
    follow.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    follow.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    await until('the first capture', () => stdout.includes('FOLLOW ME'));
    writeFileSync(go, '');
    const [exitCode] = (await once(follow, 'close')) as [number | null]; // its output all read
    assert.equal(exitCode, 0, stderr);
    assert.match(stdout, /\nLAST WORDS\nremux: node -e .* exited \(status 4\)\n$/);
    assert.equal(stderr, `remux: agent session ${String(s.id)} has ended with status 4\n`);
  });

  it('a name used again once its session ended names the running session, then the newest', async () => {
    await start('--sandbox', 'none', '--agent', 'sleep 300', '-n', 'twice');
    assert.equal((await code('kill', 'twice', '-f')).code, 0);
    const second = await start('--sandbox', 'none', '--agent', 'sleep 300', '-n', 'twice');
    // Not the ended one again (killed "again", the running one left running).
    const killed = await code('kill', 'twice', '-f');
    assert.equal(killed.stdout, `${String(second.id)} twice: killed\n`, killed.stderr);
    assert.equal(liveTmux().includes(String(second.tmux)), false);
    const restarted = await code('restart', 'twice');
    assert.equal(restarted.stdout, `${String(second.id)} twice: restarted\n`, restarted.stderr);
    assert.equal((await code('kill', 'twice', '-f')).code, 0);
  });

  it('a start whose worktree cannot be made leaves no session behind to list or restart', async () => {
    const before = await list();
    // main is checked out in the repository already: git worktree add refuses it.
    const taken = await code('start', repo, '--no-attach', '--sandbox', 'none', '--agent', 'sleep 300', '--worktree', 'main');
    assert.equal(taken.code, 2, taken.stderr);
    assert.match(taken.stderr, /--worktree main: git worktree add failed: .*already (checked out|used by worktree)/s);
    assert.match(taken.stderr, new RegExp(`\nhint: a branch is checked out in one worktree at a time: .*remux code restart ID.*git -C ${repo} worktree remove PATH`));
    const notRepo = await code('start', work, '--no-attach', '--sandbox', 'none', '--agent', 'sleep 300', '--worktree', 'feature-y');
    assert.equal(notRepo.code, 2, notRepo.stderr);
    assert.match(notRepo.stderr, /is not a git repository/);
    // Such a record, restarted, ran the agent in the repository itself instead of a worktree.
    assert.deepEqual(await list(), before);
  });

  it('rm removes ended sessions and what they left, a clean worktree remux made too (one with changes is kept, and said so); refuses a running one; audited', async () => {
    const clean = await start('--sandbox', 'none', '--agent', 'sleep 300', '--worktree', 'rm-clean', '-n', 'rm-clean');
    const dirty = await start('--sandbox', 'none', '--agent', 'sleep 300', '--worktree', 'rm-dirty', '-n', 'rm-dirty');
    const plain = await start('--sandbox', 'none', '--agent', `node -e "console.log('BYE')"`, '-n', 'rm-plain');
    const ids = [clean.id, dirty.id, plain.id].map(String);
    const savedScreen = join(t.home, 'agents', `${String(plain.id)}.log`);
    const recorded = (): Array<{ id: string; state: string }> => (JSON.parse(readFileSync(join(t.home, 'agents', 'sessions.json'), 'utf8')) as { sessions: Array<{ id: string; state: string }> }).sessions;
    await until('rm-plain ended, its screen saved', () => existsSync(savedScreen) && recorded().find((s) => s.id === plain.id)?.state === 'exited');

    // A running session among those named: none is removed.
    const refused = await code('rm', 'rm-plain', 'rm-clean');
    assert.equal(refused.code, 2, refused.stderr);
    assert.equal(refused.stderr, `remux: agent session ${String(clean.id)} (rm-clean) is running: nothing was removed\nhint: end it first with remux code kill ${String(clean.id)}\n`);
    assert.equal((await list()).filter((s) => ids.includes(String(s.id))).length, 3);
    assert.equal(existsSync(savedScreen), true);

    for (const s of [clean, dirty]) assert.equal((await code('kill', String(s.id), '-f')).code, 0);
    writeFileSync(join(String(dirty.workspace), 'notes.txt'), 'work in progress\n');
    // A principal that may only watch removes nothing.
    const watchOnly = await remux(['principal', 'add', 'rm-watcher', '--hosts', 'agents', '--read-only', '--json'], { env, via: 'node' });
    const scoped = await remux(['code', 'rm', String(clean.id)], { env: { ...env, REMUX_TOKEN: (JSON.parse(watchOnly.stdout) as { token: string }).token }, via: 'node' });
    assert.equal(scoped.code, 77, scoped.stderr);
    assert.match(scoped.stderr, /out of scope for rm-watcher: it may only watch sessions/);
    assert.equal(existsSync(String(clean.workspace)), true);
    const removed = await code('rm', String(clean.id));
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.stdout, `${String(clean.id)} rm-clean: removed\n  worktree ${String(clean.workspace)} removed (branch rm-clean stays in ${repo})\n`);
    assert.equal(existsSync(String(clean.workspace)), false);
    assert.doesNotMatch(execFileSync('git', ['-C', repo, 'worktree', 'list'], { encoding: 'utf8' }), new RegExp(String(clean.id)));
    execFileSync('git', ['-C', repo, 'rev-parse', '--verify', '--quiet', 'refs/heads/rm-clean']); // its commits stay reachable

    const rest = await code('rm', '--all-ended', '--json');
    assert.equal(rest.code, 0, rest.stderr);
    const out = JSON.parse(rest.stdout) as Array<{ id: string; name: string; worktree: { path: string; removed: boolean; why?: string } | null }>;
    const kept = out.find((r) => r.id === dirty.id)?.worktree;
    assert.deepEqual([kept?.path, kept?.removed], [dirty.workspace, false]);
    assert.match(kept?.why ?? '', /modified or untracked files/);
    assert.equal(readFileSync(join(String(dirty.workspace), 'notes.txt'), 'utf8'), 'work in progress\n', 'the work in it stays');
    assert.deepEqual(out.find((r) => r.id === plain.id), { id: plain.id, name: 'rm-plain', worktree: null });
    assert.equal(existsSync(savedScreen), false);
    assert.deepEqual((await list()).filter((s) => s.state === 'exited' || s.state === 'failed'), [], 'ls -a lists no ended session any more');
    const text = await code('rm', '--all-ended');
    assert.equal(text.stdout, 'no ended agent sessions to remove\n', text.stderr);

    const audited = (await remux(['audit', 'ls', '--json'], { env, via: 'node' })).stdout.trim().split('\n').map((line) => JSON.parse(line)) as Array<{ operation: string; resource: string; principal: string; exitCode: number | null }>;
    const removals = (id: string): Array<[string, number | null]> => audited.filter((a) => a.operation === 'agent.remove' && a.resource.startsWith(`${id} `)).map((a) => [a.principal, a.exitCode]);
    const me = removals(String(plain.id))[0]?.[0] as string;
    assert.deepEqual(removals(String(clean.id)), [['rm-watcher', 77], [me, 0]], 'the refusal too');
    for (const id of [dirty.id, plain.id]) assert.deepEqual(removals(String(id)), [[me, 0]]);

    const gone = await code('rm', String(clean.id));
    assert.equal(gone.code, 2);
    assert.match(gone.stderr, new RegExp(`no agent session ${String(clean.id)}`));
    // A read of a session that is not there is audited with the status it exits with: the caller's mistake, 2.
    const unread = await code('logs', 'nosuch');
    assert.equal(unread.code, 2, unread.stderr);
    const reads = (await remux(['audit', 'ls', '--json'], { env, via: 'node' })).stdout.trim().split('\n').map((line) => JSON.parse(line) as { operation: string; resource: string | null; exitCode: number | null });
    assert.deepEqual(reads.filter((a) => a.operation === 'agent.logs' && a.resource === 'nosuch').map((a) => a.exitCode), [2]);
    const none = await code('rm');
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no agent session given\nhint: .*--all-ended/);
  });
});

describe('agent sandboxes (unit)', () => {
  it("an agent's state under $HOME is made when missing (the sandbox binds only what exists), and left alone when there", () => {
    const home = mkdtempSync(join(tmpdir(), 'remux-agent-home-'));
    try {
      ensureAgentState('claude', home);
      assert.equal(statSync(join(home, '.claude')).mode & 0o777, 0o700);
      assert.equal(readFileSync(join(home, '.claude.json'), 'utf8'), '{}\n');
      assert.equal(statSync(join(home, '.claude.json')).mode & 0o777, 0o600);
      assert.equal(readFileSync(join(home, '.claude', 'settings.json'), 'utf8'), '{}\n');
      for (const dir of ['plugins', 'hooks', 'commands', 'agents', 'skills', 'output-styles']) assert.equal(statSync(join(home, '.claude', dir)).mode & 0o777, 0o700, dir);
      assert.equal(readFileSync(join(home, '.claude', 'CLAUDE.md'), 'utf8'), '');
      writeFileSync(join(home, '.claude.json'), '{"kept":true}');
      ensureAgentState('claude', home);
      assert.equal(readFileSync(join(home, '.claude.json'), 'utf8'), '{"kept":true}');
      // A link in place of the file is neither followed nor replaced.
      rmSync(join(home, '.claude.json'));
      symlinkSync(join(home, 'elsewhere.json'), join(home, '.claude.json'));
      ensureAgentState('claude', home);
      assert.equal(existsSync(join(home, 'elsewhere.json')), false);
      ensureAgentState('codex', home);
      assert.ok(statSync(join(home, '.codex')).isDirectory());
      // Empty, as TOML: `{}` is not.
      assert.equal(readFileSync(join(home, '.codex', 'config.toml'), 'utf8'), '');
      assert.equal(readFileSync(join(home, '.codex', 'hooks.json'), 'utf8'), '{}\n');
      for (const dir of ['prompts', 'skills', 'rules', 'agents', 'plugins']) assert.equal(statSync(join(home, '.codex', dir)).mode & 0o777, 0o700, dir);
      // Empty instructions: codex skips them (an empty AGENTS.override.md leaves AGENTS.md in force).
      for (const file of ['AGENTS.md', 'AGENTS.override.md']) assert.equal(readFileSync(join(home, '.codex', file), 'utf8'), '', file);
      ensureAgentState('gemini', home);
      assert.equal(readFileSync(join(home, '.gemini', 'settings.json'), 'utf8'), '{}\n');
      // Trusts no folder, and parses (the sandbox's stand-in for a missing one would be an empty file, which does not).
      assert.equal(readFileSync(join(home, '.gemini', 'trustedFolders.json'), 'utf8'), '{}\n');
      for (const dir of ['extensions', 'commands', 'skills', 'agents', 'policies']) assert.equal(statSync(join(home, '.gemini', dir)).mode & 0o777, 0o700, dir);
      assert.equal(readFileSync(join(home, '.gemini', 'GEMINI.md'), 'utf8'), '');
      ensureAgentState('node x.mjs', home); // a custom command has no state of its own
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('codex runs without its shared background server (which cannot start in a sandbox), resumed or not', () => {
    assert.deepEqual(launchArgv({ agent: 'codex', prompt: 'fix it' }), ['codex', '--no-daemon', 'fix it']);
    assert.deepEqual(launchArgv({ agent: 'codex', continue: true }), ['codex', '--no-daemon', 'resume', '--last']);
    assert.deepEqual(launchArgv({ agent: 'claude', prompt: 'fix it', continue: true }), ['claude', '--continue', 'fix it']);
  });

  it('docker: non-root, no capabilities, no privilege gain, limits, read-only root, secrets by env file', () => {
    const argv = dockerArgv({ id: 'abc', workspace: '/w' }, ['claude', '--continue'], { image: 'img', memory: '4g', pidsLimit: 512, uid: 1000, gid: 1000, envFile: '/h/abc.env' });
    assert.deepEqual(argv, [
      'docker', 'run', '--rm', '-it', '--init', '--name', 'remux-agent-abc', '--user', '1000:1000', '--cap-drop', 'ALL',
      '--security-opt', 'no-new-privileges', '--pids-limit', '512', '--memory', '4g', '--read-only',
      '--tmpfs', '/tmp:rw,nosuid,nodev,size=512m', '--tmpfs', '/home/agent:rw,nosuid,nodev,size=256m', '--env', 'HOME=/home/agent',
      '--env-file', '/h/abc.env', '--mount', 'type=bind,source=/w,target=/workspace', '--workdir', '/workspace', 'img', 'claude', '--continue',
    ]);
  });

  it('docker: a comma or quote in a path stays in that path (docker reads --mount as CSV, a later field winning)', () => {
    const hooks = { dir: '/h/hooks/"x"', client: '/opt/hook.cjs' };
    const argv = dockerArgv({ id: 'abc', workspace: '/tmp/a,source=/' }, ['claude'], { image: 'img', memory: '4g', pidsLimit: 512, uid: 1000, gid: 1000, envFile: '/h/abc.env', hooks });
    const mounts = argv.filter((_, i) => argv[i - 1] === '--mount');
    assert.deepEqual(mounts, [
      'type=bind,"source=/tmp/a,source=/",target=/workspace',
      'type=bind,"source=/h/hooks/""x""","target=/h/hooks/""x""",readonly',
      'type=bind,source=/opt/hook.cjs,target=/opt/remux/hook.cjs,readonly',
    ]);
  });

  it('docker: an image that docker would read as an option (or as two words) is a config error', () => {
    for (const image of ['--privileged', '-v/:/host', 'node:20 --privileged', '']) {
      const parsed = ConfigSchema.safeParse({ agents: { docker: { image } } });
      assert.equal(parsed.success, false, image);
      assert.match(parsed.error?.issues[0]?.message ?? '', /an image reference .*not starting with "-"/);
    }
    assert.equal(ConfigSchema.parse({ agents: { docker: { image: 'ghcr.io/acme/agent@sha256:0123' } } }).agents.docker.image, 'ghcr.io/acme/agent@sha256:0123');
  });

  it("srt: agents.pass_env may not name a variable that moves an agent's settings out of the home the sandbox protects", () => {
    for (const [name, agent] of [['CLAUDE_CONFIG_DIR', "Claude Code's"], ['CODEX_HOME', "codex's"], ['GEMINI_CLI_HOME', "gemini's"], ['GEMINI_CLI_TRUSTED_FOLDERS_PATH', "gemini's"]] as const) {
      const parsed = ConfigSchema.safeParse({ agents: { pass_env: ['FOO', name] } });
      assert.equal(parsed.success, false, name);
      assert.deepEqual(parsed.error?.issues[0]?.path, ['agents', 'pass_env', 1]);
      assert.match(parsed.error?.issues[0]?.message ?? '', new RegExp(`^${name} moves ${agent} .* read-only: leave it out$`));
    }
    assert.deepEqual(ConfigSchema.parse({ agents: { pass_env: ['FOO', 'AWS_REGION'] } }).agents.pass_env, ['FOO', 'AWS_REGION']);
  });

  it("srt: the files claude's settings run (hooks, status line, apiKeyHelper, MCP servers' commands) in $HOME or the workspace are read-only", () => {
    const home = mkdtempSync(join(tmpdir(), 'remux-agent-home-'));
    const workspace = mkdtempSync(join(tmpdir(), 'remux-agent-ws-'));
    try {
      const files = ['.claude/statusline.sh', '.claude/keys.sh', 'bin/mcp-server.js', 'bin/pre.sh'].map((f) => join(home, f));
      mkdirSync(join(home, '.claude'), { recursive: true });
      mkdirSync(join(home, 'bin'));
      mkdirSync(join(workspace, '.claude', 'hooks'), { recursive: true });
      for (const f of [...files, join(workspace, '.claude', 'hooks', 'fmt.sh'), join(home, 'notes.txt')]) writeFileSync(f, '#!/bin/sh\n');
      writeFileSync(
        join(home, '.claude', 'settings.json'),
        JSON.stringify({
          statusLine: { type: 'command', command: '~/.claude/statusline.sh --short' },
          apiKeyHelper: '$HOME/.claude/keys.sh',
          hooks: { PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: 'bash "${HOME}/bin/pre.sh" && /usr/bin/true' }] }] },
          // Not a command: a file named here is not one the settings run.
          env: { NOTES: join(home, 'notes.txt') },
        }),
      );
      writeFileSync(join(home, '.claude.json'), JSON.stringify({ projects: { [workspace]: { mcpServers: { m: { command: 'node', args: [join(home, 'bin', 'mcp-server.js')] } } } } }));
      writeFileSync(join(workspace, '.claude', 'settings.json'), JSON.stringify({ hooks: { PostToolUse: [{ hooks: [{ type: 'command', command: '$CLAUDE_PROJECT_DIR/.claude/hooks/fmt.sh' }] }] } }));
      const found = settingsPrograms('claude', workspace, home).sort();
      assert.deepEqual(found, [...files, join(workspace, '.claude', 'hooks', 'fmt.sh')].sort());
      const cfg = srtConfig({ agent: 'claude', workspace, tmp: '/tmp/remux-agent-x' }, ConfigSchema.parse({}).agents, '/h/.remux', home);
      for (const f of found) assert.ok(cfg.filesystem.denyWrite.includes(f), f);
      // Other agents' settings are not Claude Code's.
      assert.deepEqual(settingsPrograms('codex', workspace, home), []);
    } finally {
      rmSync(home, { recursive: true, force: true });
      rmSync(workspace, { recursive: true, force: true });
    }
  });

  it("srt: codex's config.toml (home and workspace) and the programs its MCP servers and notify run in $HOME or the workspace are read-only", () => {
    const home = mkdtempSync(join(tmpdir(), 'remux-agent-home-'));
    const workspace = mkdtempSync(join(tmpdir(), 'remux-agent-ws-'));
    try {
      const files = ['bin/docs-mcp', 'lib/server.js', 'bin/notify.py'].map((f) => join(home, f));
      for (const dir of ['bin', 'lib', '.codex']) mkdirSync(join(home, dir));
      mkdirSync(join(workspace, '.codex'));
      mkdirSync(join(workspace, 'tools'));
      for (const f of [...files, join(workspace, 'tools', 'mcp.sh'), join(workspace, 'tools', 'stop.py'), join(home, 'notes.txt')]) writeFileSync(f, '#!/bin/sh\n');
      writeFileSync(
        join(home, '.codex', 'config.toml'),
        [
          'notify = ["python3", "~/bin/notify.py"]',
          '[mcp_servers.docs]',
          `command = "${join(home, 'bin', 'docs-mcp')}"`,
          '[mcp_servers."node one"]',
          'command = "node"',
          `args = [ # the script`,
          `  '${join(home, 'lib', 'server.js')}',`,
          ']',
          // Not a command: a file named here is not one codex runs.
          `env = { NOTES = "${join(home, 'notes.txt')}" }`,
          `[projects."${workspace}"]`,
          'trust_level = "trusted"',
        ].join('\n'),
      );
      writeFileSync(join(workspace, '.codex', 'config.toml'), `mcp_servers.local = { command = "${join(workspace, 'tools', 'mcp.sh')}" }\n`);
      // Its hooks.json (home and workspace) runs commands too.
      writeFileSync(join(workspace, '.codex', 'hooks.json'), JSON.stringify({ hooks: { Stop: [{ hooks: [{ type: 'command', command: `python3 ${join(workspace, 'tools', 'stop.py')}` }] }] } }));
      const programs = [...files, join(workspace, 'tools', 'mcp.sh'), join(workspace, 'tools', 'stop.py')];
      assert.deepEqual(settingsPrograms('codex', workspace, home).sort(), programs.sort());
      const cfg = srtConfig({ agent: 'codex', workspace, tmp: '/tmp/remux-agent-x' }, ConfigSchema.parse({}).agents, '/h/.remux', home);
      for (const f of [join(home, '.codex', 'config.toml'), join(workspace, '.codex', 'config.toml'), join(workspace, '.codex', 'hooks.json'), ...programs]) assert.ok(cfg.filesystem.denyWrite.includes(f), f);
      // A config.toml that is not TOML names no program (codex would not start on it either).
      writeFileSync(join(home, '.codex', 'config.toml'), `notify = ["${join(home, 'bin', 'notify.py')}"\n`);
      assert.deepEqual(settingsPrograms('codex', workspace, home).sort(), [join(workspace, 'tools', 'mcp.sh'), join(workspace, 'tools', 'stop.py')]);
    } finally {
      rmSync(home, { recursive: true, force: true });
      rmSync(workspace, { recursive: true, force: true });
    }
  });

  it("srt: gemini's settings.json (home and workspace) and the programs its MCP servers and hooks run in $HOME or the workspace are read-only", () => {
    const home = mkdtempSync(join(tmpdir(), 'remux-agent-home-'));
    const workspace = mkdtempSync(join(tmpdir(), 'remux-agent-ws-'));
    try {
      mkdirSync(join(home, '.gemini'));
      mkdirSync(join(home, 'bin'));
      mkdirSync(join(workspace, '.gemini', 'hooks'), { recursive: true });
      const files = [join(home, 'bin', 'mcp.js'), join(workspace, '.gemini', 'hooks', 'check.sh')];
      for (const f of [...files, join(home, 'notes.txt')]) writeFileSync(f, '#!/bin/sh\n');
      writeFileSync(join(home, '.gemini', 'settings.json'), JSON.stringify({ mcpServers: { m: { command: 'node', args: ['~/bin/mcp.js'], env: { NOTES: join(home, 'notes.txt') } } } }));
      writeFileSync(join(workspace, '.gemini', 'settings.json'), JSON.stringify({ hooks: { BeforeTool: [{ matcher: 'run_shell_command', hooks: [{ type: 'command', command: '$GEMINI_PROJECT_DIR/.gemini/hooks/check.sh' }] }] } }));
      assert.deepEqual(settingsPrograms('gemini', workspace, home).sort(), files.sort());
      const cfg = srtConfig({ agent: 'gemini', workspace, tmp: '/tmp/remux-agent-x' }, ConfigSchema.parse({}).agents, '/h/.remux', home);
      for (const f of [join(home, '.gemini', 'settings.json'), join(workspace, '.gemini', 'settings.json'), ...files]) assert.ok(cfg.filesystem.denyWrite.includes(f), f);
    } finally {
      rmSync(home, { recursive: true, force: true });
      rmSync(workspace, { recursive: true, force: true });
    }
  });

  it("srt: what the next codex or gemini loads (instructions, hooks, prompts and commands, skills, subagents, rules and policies, plugins and extensions) is read-only; the workspace's AGENTS.md and GEMINI.md are the project's", () => {
    const agents = ConfigSchema.parse({}).agents;
    const codex = srtConfig({ agent: 'codex', workspace: '/w', tmp: '/tmp/remux-agent-x' }, agents, '/h/.remux', '/home/u');
    assert.deepEqual(codex.filesystem.allowWrite, ['/w', '/tmp/remux-agent-x', '/home/u/.codex']);
    assert.deepEqual(codex.filesystem.denyWrite, [
      '/home/u/.codex/config.toml',
      '/home/u/.codex/hooks.json',
      '/home/u/.codex/prompts',
      '/home/u/.codex/skills',
      '/home/u/.codex/rules',
      '/home/u/.codex/agents',
      '/home/u/.codex/plugins',
      '/home/u/.codex/AGENTS.md',
      '/home/u/.codex/AGENTS.override.md',
      '/w/.codex/config.toml',
      '/w/.codex/hooks.json',
      // The whole folder: codex reads its rules, agents and skills, and may read more there.
      '/w/.codex',
      '/w/.agents/skills',
    ]);
    // A workspace of $HOME: its .codex is codex's own state, which it writes as it runs (its files stay read-only).
    const home = srtConfig({ agent: 'codex', workspace: '/home/u', tmp: '/tmp/remux-agent-x' }, agents, '/h/.remux', '/home/u');
    assert.ok(!home.filesystem.denyWrite.includes('/home/u/.codex'));
    assert.ok(home.filesystem.denyWrite.includes('/home/u/.codex/config.toml'));
    const gemini = srtConfig({ agent: 'gemini', workspace: '/w', tmp: '/tmp/remux-agent-x' }, agents, '/h/.remux', '/home/u');
    assert.deepEqual(gemini.filesystem.denyWrite, [
      '/home/u/.gemini/settings.json',
      '/home/u/.gemini/trustedFolders.json',
      '/home/u/.gemini/extensions',
      '/home/u/.gemini/commands',
      '/home/u/.gemini/skills',
      '/home/u/.gemini/agents',
      '/home/u/.gemini/policies',
      '/home/u/.gemini/GEMINI.md',
      '/w/.gemini/settings.json',
      '/w/.gemini/extensions',
      '/w/.gemini/commands',
      '/w/.gemini/skills',
      '/w/.gemini/agents',
      '/w/.gemini/policies',
      '/w/.agents/skills',
      '/home/u/.gemini/.env',
    ]);
  });

  it("srt: gemini's .env files are read-only where they are; none is put where it would hide the project's .env or ~/.env", () => {
    const home = mkdtempSync(join(tmpdir(), 'remux-agent-home-'));
    const workspace = mkdtempSync(join(tmpdir(), 'remux-agent-ws-'));
    try {
      mkdirSync(join(home, '.gemini'));
      mkdirSync(join(workspace, '.gemini'));
      const envs = (): string[] => srtConfig({ agent: 'gemini', workspace, tmp: '/tmp/remux-agent-x' }, ConfigSchema.parse({}).agents, '/h/.remux', home).filesystem.denyWrite.filter((p): p is string => typeof p === 'string' && p.endsWith('.env'));
      // Nothing anywhere: ~/.gemini/.env would be gemini's last choice, so a stand-in there hides nothing.
      assert.deepEqual(envs(), [join(home, '.gemini', '.env')]);
      // With a ~/.env, a stand-in at ~/.gemini/.env would be loaded instead of it.
      writeFileSync(join(home, '.env'), 'GEMINI_API_KEY=k\n');
      assert.deepEqual(envs(), []);
      // Those that are there are read-only; the workspace's own .env stays the project's.
      writeFileSync(join(home, '.gemini', '.env'), 'GEMINI_MODEL=m\n');
      writeFileSync(join(workspace, '.gemini', '.env'), 'GEMINI_MODEL=m\n');
      writeFileSync(join(workspace, '.env'), 'PORT=1\n');
      assert.deepEqual(envs(), [join(workspace, '.gemini', '.env'), join(home, '.gemini', '.env')]);
      // Other agents leave gemini's alone.
      assert.deepEqual(srtConfig({ agent: 'claude', workspace, tmp: '/tmp/remux-agent-x' }, ConfigSchema.parse({}).agents, '/h/.remux', home).filesystem.denyWrite.filter((p): p is string => typeof p === 'string' && p.endsWith('.env')), []);
    } finally {
      rmSync(home, { recursive: true, force: true });
      rmSync(workspace, { recursive: true, force: true });
    }
  });

  it("srt: gemini's instructions under the names its settings' context.fileName gives are read-only in ~/.gemini, not in the workspace", () => {
    const home = mkdtempSync(join(tmpdir(), 'remux-agent-home-'));
    const workspace = mkdtempSync(join(tmpdir(), 'remux-agent-ws-'));
    try {
      mkdirSync(join(home, '.gemini'));
      mkdirSync(join(workspace, '.gemini'));
      const denied = (agent: string): string[] => srtConfig({ agent, workspace, tmp: '/tmp/remux-agent-x' }, ConfigSchema.parse({}).agents, '/h/.remux', home).filesystem.denyWrite.filter((p) => typeof p === 'string');
      const named = (list: string[]): string[] => list.filter((p) => p.endsWith('.md') || p.endsWith('/x'));
      assert.deepEqual(named(denied('gemini')), [join(home, '.gemini', 'GEMINI.md')]);
      // A list (GEMINI.md once), from the user's settings or the workspace's; a path is no file name.
      writeFileSync(join(home, '.gemini', 'settings.json'), JSON.stringify({ context: { fileName: ['AGENTS.md', 'GEMINI.md', '../x', 'docs/CONTEXT.md'] } }));
      writeFileSync(join(workspace, '.gemini', 'settings.json'), JSON.stringify({ context: { fileName: 'CONTEXT.md' } }));
      assert.deepEqual(named(denied('gemini')), [join(home, '.gemini', 'GEMINI.md'), join(home, '.gemini', 'AGENTS.md'), join(home, '.gemini', 'CONTEXT.md')]);
      // Other agents' settings name no instructions of gemini's.
      writeFileSync(join(home, '.claude.json'), JSON.stringify({ context: { fileName: 'AGENTS.md' } }));
      assert.deepEqual(denied('claude').filter((p) => p.startsWith(join(home, '.gemini'))), []);
    } finally {
      rmSync(home, { recursive: true, force: true });
      rmSync(workspace, { recursive: true, force: true });
    }
  });

  it('srt: claude reaches api.anthropic.com, writes its workspace and ~/.claude, never reads ~/.ssh or remux home', () => {
    const agents = ConfigSchema.parse({ agents: { extra_domains: ['registry.npmjs.org'], credentials: ['~/.config/gh'] } }).agents;
    const cfg = srtConfig({ agent: 'claude', workspace: '/w', tmp: '/tmp/remux-agent-x' }, agents, '/h/.remux', '/home/u');
    assert.ok(cfg.network.allowedDomains.includes('api.anthropic.com'));
    assert.ok(cfg.network.allowedDomains.includes('registry.npmjs.org'));
    assert.deepEqual(cfg.filesystem.allowWrite, ['/w', '/tmp/remux-agent-x', '/home/u/.claude']);
    assert.ok(cfg.filesystem.denyRead.includes('/home/u/.ssh') && cfg.filesystem.denyRead.includes('/h/.remux'));
    // Claude Code's settings stay read-only (its hooks, remux's among them, its MCP servers and its
    // permissions live there), and so does what its next start loads from ~/.claude and the workspace.
    assert.deepEqual(cfg.filesystem.denyWrite, [
      '/home/u/.config/gh',
      '/home/u/.claude.json',
      '/home/u/.claude/settings.json',
      '/home/u/.claude/plugins',
      '/home/u/.claude/hooks',
      '/home/u/.claude/commands',
      '/home/u/.claude/agents',
      '/home/u/.claude/skills',
      '/home/u/.claude/output-styles',
      '/home/u/.claude/CLAUDE.md',
      '/w/.claude/settings.json',
      '/w/.claude/settings.local.json',
      '/w/.mcp.json',
      '/w/.claude/hooks',
      '/w/.claude/skills',
      '/w/.claude/commands',
      '/w/.claude/agents',
      '/w/.claude/output-styles',
    ]);
    const custom = srtConfig({ agent: 'node x.mjs', workspace: '/w', tmp: '/tmp/remux-agent-x' }, agents, '/h/.remux', '/home/u');
    assert.deepEqual(custom.network.allowedDomains, ['registry.npmjs.org']);
  });
});
