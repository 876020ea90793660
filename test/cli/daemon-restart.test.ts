// `remux daemon restart` and the daemon saying that config.yaml changed since it started: a real daemon,
// a real tmux server (started by the daemon) and a real agent session, which a restart must leave alive.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { remux, spawnRemux, tempHome } from '../support/cli.js';
import { endTmuxServer } from '../support/tmux.js';
import { until } from '../support/until.js';

interface Status {
  pid: number;
  startedAt: string;
  startOptions: Record<string, unknown>;
  config: { file: string; changed: boolean; message?: string; error?: { file: string; line: number; detail: string } };
}

describe('remux daemon restart, and a config.yaml changed since the daemon started', { timeout: 120_000 }, () => {
  const h = tempHome();
  const tmuxSocket = join(h.home, 'tmux.sock');
  const agentsTmux = `remux-restart-${process.pid}`;
  // HOME: no ~/.tmux.conf of the machine's.
  const env = { ...h.env, HOME: h.home, REMUX_TMUX_SOCKET: agentsTmux };
  const configFile = join(h.home, 'config.yaml');
  const work = mkdtempSync(join(tmpdir(), 'remux-restart-'));
  let original = '';
  let agent = '';

  const status = async (): Promise<Status> => {
    const r = await remux(['daemon', 'status', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Status;
  };
  const statusText = async (): Promise<string> => (await remux(['daemon', 'status'], { env })).stdout;

  before(async () => {
    assert.equal((await remux(['config', 'init'], { env })).code, 0);
    original = readFileSync(configFile, 'utf8');
    writeFileSync(join(h.home, 'hosts.yaml'), `hosts:\n  box:\n    transport: local\n    tmux_socket: ${tmuxSocket}\n`);
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env });
    assert.equal(started.code, 0, started.stderr);
    // Made by the daemon: its tmux server is the daemon's child.
    const made = await remux(['session', 'new', 'keep', '--host', 'box'], { env });
    assert.equal(made.code, 0, made.stderr);
    const code = await remux(['code', 'start', work, '--no-attach', '--sandbox', 'none', '--agent', 'sleep 300', '-n', 'survivor'], { env, via: 'node' });
    assert.equal(code.code, 0, code.stderr);
    agent = code.stdout.split(' ')[0]!;
  });
  after(async () => {
    // Whatever a failed test left in it, the daemon stops.
    writeFileSync(configFile, original);
    await remux(['code', 'kill', agent, '-f'], { env, via: 'node' });
    await remux(['daemon', 'stop'], { env });
    try {
      execFileSync('tmux', ['-S', tmuxSocket, 'kill-server'], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    endTmuxServer(agentsTmux);
    h.remove();
    rmSync(work, { recursive: true, force: true });
  });

  test('a touch, a comment or a new layout is no change', async () => {
    assert.match(await statusText(), new RegExp(`^config ${configFile}, unchanged since the daemon started$`, 'm'));
    utimesSync(configFile, new Date(), new Date(Date.now() + 60_000));
    appendFileSync(configFile, '# a comment added later\n');
    assert.equal((await status()).config.changed, false);
    assert.doesNotMatch(await statusText(), /warning/);
    assert.doesNotMatch((await remux(['doctor'], { env })).stdout, /daemon config/);
  });

  test('a change of a setting: status and doctor say so, and what to do', async () => {
    writeFileSync(configFile, original.replace('timeout_seconds: 300               # a policy', 'timeout_seconds: 600               # a policy'));
    const s = await status();
    assert.equal(s.config.changed, true);
    const when = s.startedAt.replace(/\.\d+Z$/, 'Z');
    const message = `${configFile} changed since the daemon started at ${when}: run \`remux daemon restart\` to apply it`;
    assert.equal(s.config.message, message);
    assert.match(await statusText(), new RegExp(`^warning: ${escape(message)}$`, 'm'));
    const doctor = await remux(['doctor'], { env });
    assert.equal(doctor.code, 0, 'a warning, not a failure');
    assert.match(doctor.stdout, new RegExp(`^warn +daemon config +${escape(message)}$`, 'm'));
  });

  test('a file that no longer loads is named with file:line; restart then stops nothing', async () => {
    const lines = original.split('\n');
    const line = lines.findIndex((l) => l.startsWith('fanout:')) + 2;
    lines.splice(line - 1, 0, '  workers: 3');
    writeFileSync(configFile, lines.join('\n'));
    const before = await status();
    assert.equal(before.config.changed, true);
    assert.deepEqual(before.config.error && { file: before.config.error.file, line: before.config.error.line }, { file: configFile, line });
    assert.match(await statusText(), new RegExp(`^warning: ${escape(configFile)} changed since the daemon started at \\S+ and does not load: ${escape(configFile)}:${line}: .*workers.*: fix the file, then run \`remux daemon restart\`$`, 'm'));

    const r = await remux(['daemon', 'restart'], { env });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`^remux: not restarted: a new daemon would not start; the running one \\(pid ${before.pid}\\) goes on as it was$`, 'm'));
    assert.match(r.stderr, new RegExp(`^remux: ${escape(configFile)}:${line}: `, 'm'));
    assert.equal((await status()).pid, before.pid, 'the same daemon still serves');

    // Not YAML at all: the line of the syntax error.
    lines[line - 1] = 'extra: x: y';
    writeFileSync(configFile, lines.join('\n'));
    const broken = await status();
    assert.equal(broken.config.error?.file, configFile);
    assert.equal(broken.config.error?.line, line);
    assert.match(broken.config.error?.detail ?? '', /Nested mappings/);
    assert.equal((await remux(['daemon', 'restart'], { env })).code, 2);
    assert.equal((await status()).pid, before.pid);
  });

  test('restart applies the change with the options it was started with; tmux and agent sessions go on', async () => {
    writeFileSync(configFile, original.replace('timeout_seconds: 300               # a policy', 'timeout_seconds: 600               # a policy'));
    const before = await status();
    // A certificate that cannot serve is found before anything stops, too.
    const missing = join(h.home, 'missing.pem');
    const refused = await remux(['daemon', 'restart', '--listen', '127.0.0.1:0', '--tls-cert', missing, '--tls-key', missing], { env });
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, new RegExp(`^remux: the console's certificate ${escape(missing)} and key ${escape(missing)} cannot serve: ENOENT`, 'm'));
    assert.equal((await status()).pid, before.pid);

    const r = await remux(['daemon', 'restart'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^stopping pid ${before.pid}; starting again with the options it was started with: --listen 127\\.0\\.0\\.1:0\nstarted: pid (\\d+)`, 'm'));
    const after = await status();
    assert.notEqual(after.pid, before.pid);
    assert.deepEqual(after.startOptions, { listen: '127.0.0.1:0' });
    assert.equal(after.config.changed, false, 'the new daemon read the file as it is');

    const run = await remux(['client', 'run', 'local', '--', 'uname -s'], { env });
    assert.equal(run.stdout, 'Linux\n', run.stderr);
    const ls = await remux(['session', 'ls', '--host', 'box', '--json'], { env });
    const [listed] = JSON.parse(ls.stdout) as Array<{ users: Array<{ sessions: Array<{ name: string }> }> }>;
    assert.deepEqual(listed?.users[0]?.sessions.map((x) => x.name), ['keep'], 'the new daemon lists the tmux session');
    execFileSync('tmux', ['-S', tmuxSocket, 'has-session', '-t', '=keep']);
    const agents = JSON.parse((await remux(['code', 'ls', '--json'], { env, via: 'node' })).stdout) as Array<{ id: string; state: string }>;
    assert.notEqual(agents.find((a) => a.id === agent)?.state, undefined, 'the agent session is still listed as running');
    assert.doesNotMatch(agents.find((a) => a.id === agent)!.state, /exited|killed|failed/);
    // The old daemon's last line is its `stopping`: the new one's follow.
    const log = (): string => readFileSync(join(h.home, 'run', 'daemon.log'), 'utf8');
    await until('the new daemon watching the agent session', () => log().lastIndexOf('agent sessions: watching') > log().lastIndexOf(' stopping\n'));
  });

  test('a config.yaml that does not load does not keep stop from stopping; restart of a daemon not running starts it', async () => {
    writeFileSync(configFile, 'fanout: x: y\n');
    const stop = await remux(['daemon', 'stop'], { env });
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /^stopped \(pid \d+\)$/m);
    writeFileSync(configFile, original);
    const r = await remux(['daemon', 'restart', '--listen', '127.0.0.1:0'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^not running \(no daemon answers on .*\): starting it\nstarted: pid \d+/);
  });
});

test('a daemon started in the foreground is left to what started it: restart refuses it and stops nothing', { timeout: 60_000 }, async () => {
  const h = tempHome();
  assert.equal((await remux(['config', 'init'], { env: h.env })).code, 0);
  const daemon = spawnRemux(['daemon', 'start', '--foreground', '--listen', '127.0.0.1:0'], { env: h.env, via: 'node' });
  const exited = new Promise((resolve) => daemon.once('exit', resolve));
  try {
    const socket = join(h.home, 'run', 'remux.sock');
    await until('the foreground daemon listening', () => existsSync(socket));
    const pid = (JSON.parse((await remux(['daemon', 'status', '--json'], { env: h.env })).stdout) as { pid: number }).pid;
    assert.equal(pid, daemon.pid);
    const r = await remux(['daemon', 'restart'], { env: h.env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`^remux: the daemon \\(pid ${pid}\\) runs in the foreground .*\nhint: restart it there`));
    assert.equal((JSON.parse((await remux(['daemon', 'status', '--json'], { env: h.env })).stdout) as { pid: number }).pid, pid, 'still the same daemon');
  } finally {
    daemon.kill('SIGTERM');
    await exited;
    h.remove();
  }
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
