// tmux argv and answers without a tmux: names, the commands built, and how listings are read.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderCommandList } from '../../src/command/render.js';
import { clampSize } from '../../src/sessions/terminal-size.js';
import { isKeyName, lastLines, listCommand, parseList, sendCommand, sendItems, sendProblem, sessionMissing, sessionNameProblem, tmuxArgv, type TmuxTarget } from '../../src/sessions/tmux.js';

const ops: TmuxTarget = { loginUser: 'ops', user: 'ops', socket: null };
const deploy: TmuxTarget = { loginUser: 'ops', user: 'deploy', socket: { kind: 'name', name: 'work' } };

describe('session names', () => {
  test('letters, digits, _ and - up to 64 characters', () => {
    for (const ok of ['a', 'build-2', 'A_b-C', '-t', 'x'.repeat(64)]) assert.equal(sessionNameProblem(ok), null, ok);
  });
  test('hostile names are refused with the rule', () => {
    for (const bad of ['', 'a;b', '../x', 'x'.repeat(65), 'séance', 'a b', 'a:b', 'a.b', '$(id)', "a'b", 'a\nb', '会话']) {
      assert.match(sessionNameProblem(bad) ?? '', /^bad session name .*: use 1-64 letters, digits, "_" or "-"$/, JSON.stringify(bad));
    }
  });
});

describe('tmux argv', () => {
  test('the login user runs tmux directly; other users through sudo -n -u, with the socket', () => {
    assert.deepEqual(tmuxArgv(ops, ['ls']), ['tmux', 'ls']);
    assert.deepEqual(tmuxArgv(deploy, ['ls']), ['sudo', '-n', '-u', 'deploy', 'tmux', '-L', 'work', 'ls']);
    assert.deepEqual(tmuxArgv({ ...ops, socket: { kind: 'path', path: '/run/t/s' } }, ['ls']), ['tmux', '-S', '/run/t/s', 'ls']);
  });

  test('a name like an option is a target, matched exactly (=NAME), never an option', () => {
    const words = sendCommand(ops, '-t', [{ key: 'Enter' }]).items[0]!.pipeline.stages[0]!.argv;
    assert.deepEqual(words, ['tmux', 'send-keys', '-t', '=-t:', 'Enter']);
  });

  test('listing as another user probes sudo only when the listing failed', () => {
    assert.equal(
      renderCommandList(listCommand(deploy)),
      "'sudo' -n -u deploy tmux -L work list-sessions -F '#{session_windows}:#{session_created}:#{session_activity}:#{session_attached}:#{session_name}' ';' list-clients -F 'client:#{client_flags}:#{session_name}'" +
        " || 'sudo' -n -u deploy tmux -L work -V > /dev/null || 'printf' '%s\\n' remux:sudo-refused",
    );
  });
});

describe("tmux's words for a session that is not there", () => {
  test('no such session, and no server at all (3.3 and later phrasings); not other failures', () => {
    for (const missing of ["can't find session: =build\n", 'no server running on /tmp/tmux-0/default\n', 'error connecting to /tmp/tmux-1001/work (No such file or directory)\n', 'session not found: x\n']) {
      assert.ok(sessionMissing(missing), missing);
    }
    for (const other of ['duplicate session: build\n', 'error connecting to /tmp/tmux-0/default (Permission denied)\n', 'sudo: a password is required\n', '']) assert.ok(!sessionMissing(other), other);
  });
});

describe('reading a listing', () => {
  test('sessions with their numbers; a name is the rest of the line', () => {
    const r = parseList('ops', 0, '2:1700000000:1700000060:1:web:2\n1:1700000001:1700000002:0:a10\n1:1700000001:1700000002:0:a9\n', '');
    assert.equal(r.state, 'ok');
    assert.deepEqual(r.sessions.map((s) => s.name), ['a9', 'a10', 'web:2']);
    assert.deepEqual(r.sessions[2], { name: 'web:2', windows: 2, created: '2023-11-14T22:13:20.000Z', activity: '2023-11-14T22:14:20.000Z', attached: 1 });
  });

  test("remux's session recorder (control mode, read-only, ignoring size) is not counted as attached; anyone else is", () => {
    const listing = [
      '1:1700000000:1700000060:3:build',
      '1:1700000000:1700000060:1:web',
      'client:attached,focused,control-mode,ignore-size,read-only,UTF-8:build',
      'client:attached,focused,UTF-8:build',
      'client:attached,focused,control-mode,UTF-8:build', // iTerm2's tmux -CC: a person
      'client:attached,focused,read-only,UTF-8:web',
    ].join('\n');
    assert.deepEqual(parseList('ops', 0, `${listing}\n`, '').sessions.map((s) => [s.name, s.attached]), [['build', 2], ['web', 1]]);
  });

  test('no server, sudo refused and errors are different facts', () => {
    assert.equal(parseList('ops', 1, '', 'no server running on /tmp/tmux-0/default\n').state, 'no_server');
    assert.equal(parseList('ops', 1, '', 'error connecting to /tmp/tmux-1000/x (No such file or directory)\n').state, 'no_server');
    // The probe after a missing server succeeds: the list ends with status 0 and nothing listed.
    assert.equal(parseList('deploy', 0, '', 'no server running on /tmp/tmux-1001/work\n').state, 'no_server');
    assert.deepEqual(parseList('deploy', 0, 'remux:sudo-refused\n', 'sudo: a password is required\nsudo: a password is required\n'), {
      user: 'deploy',
      state: 'sudo_refused',
      detail: 'sudo: a password is required',
      sessions: [],
    });
    assert.deepEqual(parseList('ops', 1, '', 'error connecting to /tmp/x (Permission denied)\n'), {
      user: 'ops',
      state: 'error',
      detail: 'error connecting to /tmp/x (Permission denied)',
      sessions: [],
    });
    const missing = parseList('ops', 127, '', 'sh: 1: tmux: not found\n');
    assert.equal(missing.state, 'error');
    assert.match((missing as { detail: string }).detail, /^tmux is not installed or not in the secure PATH \(sh: 1: tmux: not found\)$/);
  });
});

describe('send and capture', () => {
  test('key names are keys, everything else is text; --literal makes all text', () => {
    for (const key of ['Enter', 'C-c', 'M-x', 'C-M-Left', 'F12', 'Escape', 'S-Tab', 'BSpace']) assert.ok(isKeyName(key), key);
    for (const text of ['npm test', 'enter', 'C-', 'c', 'F13', 'Enter ', 'C-cc', '']) assert.ok(!isKeyName(text), text);
    assert.deepEqual(sendItems(['npm test', 'Enter'], false), [{ text: 'npm test' }, { key: 'Enter' }]);
    assert.deepEqual(sendItems(['Enter'], true), [{ text: 'Enter' }]);
    // tmux types a function key's name it does not have (F13) as text: refused unless typed as text on purpose.
    for (const word of ['F13', 'F0', 'C-F20']) assert.throws(() => sendItems(['ls', word], false), { name: 'UsageError', message: new RegExp(`"${word}" is not a key tmux has`) });
    assert.deepEqual(sendItems(['F13'], true), [{ text: 'F13' }]);
    // An empty item types nothing: refused, not reported as sent.
    for (const literal of [false, true]) assert.throws(() => sendItems(['ls', ''], literal), { name: 'UsageError', message: 'item 2 to send is empty: nothing would be typed' });
  });

  test('text is sent with -l after --; a final ; is escaped so tmux does not end its command there', () => {
    const list = sendCommand(ops, 's', [{ text: '-x ls;' }, { key: 'Enter' }]);
    assert.deepEqual(
      list.items.map((i) => [i.op, i.pipeline.stages[0]!.argv]),
      [
        [null, ['tmux', 'send-keys', '-t', '=s:', '-l', '--', '-x ls\\;']],
        ['&&', ['tmux', 'send-keys', '-t', '=s:', 'Enter']],
      ],
    );
  });

  test('a long text goes in pieces of at most 8 KiB of UTF-8, cut between characters, each its own tmux command', () => {
    const text = `${'a'.repeat(8191)}😀${'é'.repeat(5000)};`;
    const pieces = sendCommand(ops, 's', [{ text }]).items.map((i) => i.pipeline.stages[0]!.argv.at(-1)!);
    assert.deepEqual(pieces.map((p) => Buffer.byteLength(p)), [8191, 8192, 1814]);
    assert.equal(pieces.join('').replace(/\\;$/, ';'), text);
  });

  test('one send carries at most 100 items and 16384 characters: the rest is refused before anything is typed', () => {
    assert.equal(sendProblem(Array.from({ length: 100 }, () => ({ text: 'x'.repeat(163) }))), null);
    assert.equal(sendProblem([{ text: 'x'.repeat(16384) }]), null);
    assert.equal(sendProblem(Array.from({ length: 101 }, () => ({ key: 'Enter' }))), '101 items to send: at most 100 go in one send; send the rest in another');
    assert.equal(sendProblem([{ text: 'x'.repeat(16380) }, { key: 'Enter' }]), '16385 characters to send: at most 16384 go in one send; send the rest in another');
    assert.equal(sendProblem([]), 'nothing to send: give text or key names');
  });

  test('capture keeps the last N lines, without the blank rows under the prompt', () => {
    assert.equal(lastLines('a\nb\nc\n\n\n', 2), 'b\nc\n');
    assert.equal(lastLines('a\nb\n\n', null), 'a\nb\n');
    assert.equal(lastLines('\n\n', 5), '');
  });

  test('terminal sizes are clamped', () => {
    assert.deepEqual(clampSize(5000, 0), { cols: 1000, rows: 1 });
    assert.deepEqual(clampSize(-3, 10_000), { cols: 2, rows: 500 });
    assert.deepEqual(clampSize(80.4, 24), { cols: 80, rows: 24 });
  });
});
