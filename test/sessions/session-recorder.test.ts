// Reading tmux control mode for the session recorder: tmux's octal escapes undone byte for byte, lines
// split anywhere across chunks, the terminal's \r dropped, a command's answer (between %begin and %end)
// never taken for output, layout changes as sizes, %exit as the end; the recorder's fixed argv; and the
// recorder itself on real tmux: the screen first, a stopping daemon, a session that is not there.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createContext, type GatewayContext } from '../../src/core/context.js';
import { ControlParser, recorderArgv, SessionRecordings, unescapeOutput, type ControlLine } from '../../src/sessions/session-recorder.js';

const lines = (chunks: Array<string | Buffer>): ControlLine[] => {
  const p = new ControlParser();
  return chunks.flatMap((c) => p.push(typeof c === 'string' ? Buffer.from(c, 'utf8') : c));
};
const outputs = (ls: ControlLine[]): string[] => ls.flatMap((l) => (l.kind === 'output' ? [l.data.toString('utf8')] : []));

describe('tmux control mode', () => {
  test('octal escapes become their bytes; a backslash not followed by three octal digits stays', () => {
    assert.equal(unescapeOutput(Buffer.from('a\\015\\012b\\134c\\033[1m')).toString('latin1'), 'a\r\nb\\c\x1b[1m');
    assert.equal(unescapeOutput(Buffer.from('\\9\\01x\\')).toString('latin1'), '\\9\\01x\\');
  });

  test('output lines, split anywhere, with UTF-8 passed through raw and the terminal\'s \\r dropped', () => {
    const raw = Buffer.from('%output %0 h\xc3\xa9llo\\015\\012\r\n%output %12 x y \r\n', 'latin1');
    const at = (n: number): Buffer[] => [raw.subarray(0, n), raw.subarray(n)];
    for (const n of [1, 11, 13, 20, raw.length - 1]) assert.deepEqual(outputs(lines(at(n))), ['héllo\r\n', 'x y '], `split at ${n}`);
  });

  test("a command's answer is never output, even a line that looks like it", () => {
    const ls = lines(['%begin 1 2 0\r\n%output %0 forged\r\n%end 1 2 0\r\n%output %0 real\r\n%begin 3 4 1\r\n%exit\r\n%error 3 4 1\r\n']);
    assert.deepEqual(outputs(ls), ['real']);
    assert.ok(!ls.some((l) => l.kind === 'exit'));
  });

  test('a layout change is a size; %session-changed the attach; %exit the end; other notifications nothing', () => {
    assert.deepEqual(lines(['%layout-change @0 a29d,90x20,0,0,0 a29d,90x20,0,0,0 *\n%session-changed $0 x\n%window-renamed @0 sh\n%exit\n']), [
      { kind: 'size', cols: 90, rows: 20 },
      { kind: 'attached' },
      { kind: 'other' },
      { kind: 'exit' },
    ]);
  });

  test("a command's answer comes whole, saying whether this client asked and whether it failed", () => {
    const ls = lines(['%begin 1 264 0\r\ncan\'t find session: x\r\n%error 1 264 0\r\n%begin 2 265 1\r\n80x24:0:1\r\n%end 2 265 1\r\n']).filter((l) => l.kind === 'reply');
    assert.deepEqual(ls, [
      { kind: 'reply', lines: ["can't find session: x"], error: true, own: false },
      { kind: 'reply', lines: ['80x24:0:1'], error: false, own: true },
    ]);
  });

  test('the recorder is a read-only control client that ignores size, as the session\'s tmux user', () => {
    assert.deepEqual(recorderArgv({ loginUser: 'ops', user: 'ops', socket: null }, 'build'), ['tmux', '-C', 'attach-session', '-r', '-f', 'ignore-size', '-t', '=build']);
    assert.deepEqual(recorderArgv({ loginUser: 'ops', user: 'deploy', socket: { kind: 'name', name: 'w' } }, '-x'), ['sudo', '-n', '-u', 'deploy', 'tmux', '-L', 'w', '-C', 'attach-session', '-r', '-f', 'ignore-size', '-t', '=-x']);
  });
});

describe('the session recorder on this machine', { timeout: 30_000 }, () => {
  let home: string;
  let ctx: GatewayContext;
  let recordings: SessionRecordings;
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-S', join(home, 'tmux.sock'), ...args], { encoding: 'utf8' });
  const dir = (): string => join(home, 'recordings');

  before(() => {
    home = mkdtempSync(join(tmpdir(), 'remux-rec-'));
    writeFileSync(join(home, 'hosts.yaml'), `hosts:\n  box:\n    transport: local\n    tmux_socket: ${join(home, 'tmux.sock')}\n`);
    writeFileSync(join(home, 'policies.yaml'), 'policies:\n  none:\n    capabilities: []\n');
    ctx = createContext({ env: { ...process.env, REMUX_HOME: home } });
    recordings = new SessionRecordings({ sessions: ctx.sessions, registry: ctx.registry, audit: ctx.audit, dir: dir(), maxTotalMb: null });
  });
  after(async () => {
    await ctx.close();
    try {
      tmux('kill-server');
    } catch {
      // No server left.
    }
    rmSync(home, { recursive: true, force: true });
  });

  test('starts with the screen as it was, and a daemon that stops ends the recording and its audit action', async () => {
    tmux('new-session', '-d', '-s', 'w', '-x', '60', '-y', '10', '/bin/sh');
    tmux('send-keys', '-t', '=w:', 'echo before-$((1+1))', 'Enter');
    for (let i = 0; i < 100 && !tmux('capture-pane', '-p', '-t', '=w:').includes('before-2'); i++) await sleep(10);
    const target = ctx.sessions.target('box');
    await recordings.created('box', target, 'w', 'alice');
    const id = recordings.recordingOf('box', target.user, 'w');
    assert.ok(id);
    tmux('send-keys', '-t', '=w:', 'echo during-$((2+2))', 'Enter');
    // Up to 5 s: under a full suite's load the shell's echo can take a second to reach the recording.
    for (let i = 0; i < 500 && !readFileSync(join(dir(), `${id}.cast`), 'utf8').includes('during-4'); i++) await sleep(10);
    await recordings.stopAll();
    assert.equal(recordings.recordingOf('box', target.user, 'w'), null);
    assert.deepEqual(tmux('list-sessions', '-F', '#{session_name}').trim().split('\n'), ['w'], 'the session goes on');
    const [header, first, ...rest] = readFileSync(join(dir(), `${id}.cast`), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown);
    assert.deepEqual([(header as { width: number }).width, (header as { height: number }).height], [60, 10]);
    assert.match((first as [number, string, string])[2], /^\x1b\[H\x1b\[2J.*before-2/s, 'the screen as it was comes first');
    assert.ok(rest.some((e) => (e as [number, string, string])[2].includes('during-4')));
    const action = ctx.audit.list().find((a) => a.begin.recording === id)!;
    assert.deepEqual([action.begin.operation, action.begin.principal, action.begin.resource, action.status, action.end?.error], ['session.record', 'alice', `${target.user}@box:w`, 'complete', null]);
    // Nothing more is started once the daemon is stopping.
    await recordings.created('box', target, 'w', 'alice');
    assert.equal(recordings.recordingOf('box', target.user, 'w'), null);
  });

  test('a recording that cannot start is an audited error, and leaves no file', async () => {
    const fresh = new SessionRecordings({ sessions: ctx.sessions, registry: ctx.registry, audit: ctx.audit, dir: dir(), maxTotalMb: null });
    const before = existsSync(dir()) ? readdirSync(dir()).length : 0;
    await fresh.created('box', ctx.sessions.target('box'), 'no-such-session', 'alice');
    const action = ctx.audit.list().at(-1)!;
    assert.equal(action.begin.operation, 'session.record');
    assert.equal(action.level, 'error');
    assert.match(action.end?.error ?? '', /^the recording could not start: .*no-such-session/);
    assert.equal(existsSync(dir()) ? readdirSync(dir()).length : 0, before);
  });
});
