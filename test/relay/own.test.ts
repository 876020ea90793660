// What an agent accepts as "remux's own" command (the session layer's tmux lines, the host check): the
// exact shapes sessions/tmux.ts makes, each accepted; everything a compromised gateway could slip in
// through tmux refused (a trailing shell-command, -c, #() in a format, other programs, redirects), and a
// startup command checked with the agent's own policy. And the sandbox both policies allow.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkOwnCommand, isListing, terminalKind } from '../../src/agent/own.js';
import { intersectSandbox, outsideOfBoth } from '../../src/agent/sandbox.js';
import { parseCommand } from '../../src/command/parser.js';
import { renderCommandList } from '../../src/command/render.js';
import type { CommandList } from '../../src/command/types.js';
import type { SandboxSpec } from '../../src/exec/types.js';
import { parsePolicies } from '../../src/policy/load.js';
import { createLocalResolver } from '../../src/policy/resolve.js';
import { recorderArgv } from '../../src/sessions/session-recorder.js';
import { attachArgv, captureCommand, killCommand, listCommand, newSessionArgv, newSessionCommand, sendCommand, shellProgram, single, SIZE_FORMAT, sizeCommand, sudoProbeCommand, type SendItem, type TmuxTarget } from '../../src/sessions/tmux.js';

const policy = parsePolicies(
  `policies:
  p:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: sleep|echo }
      - { operation: write_stdout, resource: null }
`,
  'policies.yaml',
).get('p')!;
const resolver = createLocalResolver();
const me: TmuxTarget = { loginUser: 'alice', user: 'alice', socket: null };
const other: TmuxTarget = { loginUser: 'alice', user: 'deploy', socket: { kind: 'path', path: '/tmp/t.sock' } };

/** As the agent receives it: rendered by the gateway, parsed again on the agent. */
const wire = (list: CommandList): CommandList => parseCommand(renderCommandList(list));
/** The agent's own tmux users: its login user alice, and deploy. */
const users = { loginUser: 'alice', users: ['alice', 'deploy'] };
const check = (list: CommandList): ReturnType<typeof checkOwnCommand> => checkOwnCommand(wire(list), policy, resolver, users);
/** The recorder's first screen, as session-recorder.ts asks for it. */
/** What the recorder asked as a command of its own before it asked its control client: now never accepted. */
const SCREEN_FORMAT = '#{window_width}x#{window_height}:#{cursor_x}:#{cursor_y}';

describe("remux's own commands on an agent", () => {
  test('every command the session layer makes is accepted, for the login user and through sudo', () => {
    for (const t of [me, other]) {
      for (const list of [
        listCommand(t),
        sudoProbeCommand(t),
        newSessionCommand(t, 'build', '/home/alice', null),
        newSessionCommand(t, 'build', '/home/alice', shellProgram('sleep 100')),
        killCommand(t, 'build'),
        captureCommand(t, 'build', null),
        captureCommand(t, 'build', 500),
        sendCommand(t, 'build', [{ text: 'make test;' }, { key: 'Enter' }, { key: 'C-c' }]),
        sizeCommand(t, 'build'),
        single(['true']),
      ]) {
        assert.ok('ok' in check(list), renderCommandList(list));
      }
      assert.deepEqual(terminalKind(attachArgv(t, 'build', false), users), { kind: 'attach', session: 'build' });
      assert.deepEqual(terminalKind(attachArgv(t, 'build', true), users), { kind: 'attach', session: 'build' });
      assert.deepEqual(terminalKind(recorderArgv(t, 'build'), users), { kind: 'control', session: 'build' });
      // A watch asks for its session's size every few seconds: a listing, not an audit record each time.
      const size = sizeCommand(t, 'build').items[0]!.pipeline.stages[0]!.argv;
      assert.equal(isListing(size), true, size.join(' '));
    }
  });

  test('a startup command is handed back with the words before it, for the agent to enforce (and sandbox) here', () => {
    const plain = check(newSessionCommand(me, 'build', '/tmp', shellProgram('sleep 100')));
    assert.ok('ok' in plain);
    assert.deepEqual(plain.startup, { prefix: ['tmux', 'new-session', '-d', '-s', 'build', '-c', '/tmp', '--'], cwd: '/tmp', command: 'sleep 100', list: parseCommand('sleep 100') });
    const sudo = check(newSessionCommand(other, 'b', '/tmp', shellProgram("echo 'a b'")));
    assert.ok('ok' in sudo);
    assert.deepEqual(sudo.startup, { prefix: ['sudo', '-n', '-u', 'deploy', 'tmux', '-S', '/tmp/t.sock', 'new-session', '-d', '-s', 'b', '-c', '/tmp', '--'], cwd: '/tmp', command: "echo 'a b'", list: parseCommand("echo 'a b'") });
  });

  test('keys are handed back as the session and items sent (for the agent\'s own check and audit), exactly as typed', () => {
    const items: SendItem[] = [{ text: 'make test;' }, { key: 'Enter' }, { text: 'a \\; b' }, { key: 'C-c' }];
    const r = check(sendCommand(other, 'build', items));
    assert.ok('ok' in r);
    assert.deepEqual(r.send, { user: 'deploy', session: 'build', items });
    assert.equal(r.startup, null);
  });

  test("a startup command is checked with the agent's own policy", () => {
    const r = check(newSessionCommand(me, 'x', '/tmp', shellProgram('rm -rf /home/alice')));
    assert.ok('refusal' in r);
    assert.match(r.refusal, /startup command denied by the agent's own policy p: .*rm/);
    const unparsable = check(newSessionCommand(me, 'x', '/tmp', shellProgram('echo $(id)')));
    assert.ok('refusal' in unparsable);
    assert.match(unparsable.refusal, /startup command/);
  });

  test('whatever else a gateway sends as "remux\'s own" is refused', () => {
    const refused = [
      ['sh', '-c', 'id'],
      ['tmux', '-c', 'rm -rf ~'],
      ['tmux', 'new-session', '-d', '-s', 'x', '-c', '/tmp', 'rm -rf ~'], // trailing shell-command without --
      ['tmux', 'new-session', '-d', '-s', 'x', '-c', '/tmp', '--', '/bin/bash', '-c', 'id'],
      ['tmux', 'new-session', '-d', '-s', 'x', '-c', '/tmp', '--', '/bin/sh', '-c', 'sleep 1', 'extra'],
      ['tmux', 'list-sessions', '-F', '#(rm -rf ~)'],
      ['tmux', 'run-shell', 'id'],
      ['tmux', 'set-hook', '-g', 'session-created', 'run-shell id'],
      ['tmux', 'kill-session', '-t', 'x'], // not an exact target
      ['tmux', 'kill-session', '-t', '=x;id'],
      ['tmux', 'send-keys', '-t', '=x:', 'rm -rf ~', 'Enter'],
      ['tmux', 'capture-pane', '-p', '-J', '-t', '=x:', '-S', '-1', '-E', '5'],
      ['sudo', '-u', 'root', 'tmux', 'list-sessions'],
      ['sudo', '-n', '-u', 'root', 'sh'],
      ['printf', '%s\\n', 'anything'],
    ];
    for (const argv of refused) assert.ok('refusal' in check(single(argv)), argv.join(' '));
    // A pane program with anything added (arguments for $0/$@, bwrap and options of the gateway's choosing).
    for (const program of [
      ['/bin/sh', '-c', 'exec "$@"', 'sleep 1', '/usr/bin/bwrap', '--bind', '/', '/'],
      ['/bin/sh', '-c', 'sleep 1', 'extra'],
      ['/bin/sh', '-c'],
      ['/bin/sh', '-ce', 'sleep 1'],
    ]) {
      assert.ok('refusal' in check(single(newSessionArgv(me, 'x', '/tmp', program))), program.join(' ').slice(0, 80));
    }
    // The recorder's old screen command (it asks its control client now), with any format or pane.
    for (const args of [
      ['display-message', '-p', '-t', '=x:', '#(id)', ';', 'capture-pane', '-p', '-e', '-t', '=x:'],
      ['display-message', '-p', '-t', '=x:', SCREEN_FORMAT, ';', 'capture-pane', '-p', '-e', '-t', '=y:'],
      ['display-message', '-p', '-t', '=x:', SCREEN_FORMAT, ';', 'capture-pane', '-p', '-e', '-t', '=x:', ';', 'run-shell', 'id'],
      ['display-message', '-p', '-t', '=x:', SCREEN_FORMAT],
      // An attach's size question alone, about another session, with another format or more after it.
      ['display-message', '-p', '-t', '=x:', SIZE_FORMAT],
      ['has-session', '-t', '=x'],
      ['has-session', '-t', '=x', ';', 'display-message', '-p', '-t', '=y:', SIZE_FORMAT],
      ['has-session', '-t', '=x', ';', 'display-message', '-p', '-t', '=x:', '#(id)'],
      ['has-session', '-t', '=x', ';', 'display-message', '-p', '-t', '=x:', SIZE_FORMAT, ';', 'run-shell', 'id'],
    ]) {
      assert.ok('refusal' in check(single(['tmux', ...args])), args.join(' '));
    }
    // Keys for two sessions, or keys with another command: not what sendCommand makes.
    assert.ok('refusal' in checkOwnCommand(parseCommand("tmux send-keys -t '=a:' Enter && tmux send-keys -t '=b:' Enter"), policy, resolver, users));
    assert.ok('refusal' in checkOwnCommand(parseCommand("tmux send-keys -t '=a:' Enter && tmux kill-session -t '=a'"), policy, resolver, users));
    // A startup command with company.
    assert.ok('refusal' in checkOwnCommand(parseCommand("tmux new-session -d -s a -c /tmp -- /bin/sh -c 'sleep 1' && tmux kill-session -t '=b'"), policy, resolver, users));
    // A redirect other than the probe's /dev/null.
    assert.ok('refusal' in checkOwnCommand(parseCommand('tmux -V > /home/alice/.bashrc'), policy, resolver, users));
    // A good command chained with a bad one.
    assert.ok('refusal' in checkOwnCommand(parseCommand('true && sh -c id'), policy, resolver, users));
  });

  test("only tmux users the agent lists: keys, sessions, attaches as another user are refused, naming it", () => {
    const root: TmuxTarget = { loginUser: 'alice', user: 'root', socket: null };
    for (const list of [sendCommand(root, 'x', [{ key: 'Enter' }]), newSessionCommand(root, 'x', '/tmp', null), killCommand(root, 'x'), listCommand(root)]) {
      const r = check(list);
      assert.ok('refusal' in r, renderCommandList(list));
      assert.match(r.refusal, /tmux user root is not one of this agent's tmux users \(alice, deploy\)/);
    }
    const attach = terminalKind(attachArgv(root, 'x', false), users);
    assert.ok('refusal' in attach);
    assert.match(attach.refusal, /tmux user root/);
  });

  test('terminals: only a tmux attach, or the recorder\'s read-only control client exactly', () => {
    for (const argv of [
      ['bash'],
      ['tmux'],
      ['tmux', 'attach-session', '-t', 'x'],
      ['tmux', 'attach-session', '-t', '=x', '-c', '/'],
      ['tmux', 'attach-session', '-t', '=x', '-r'],
      ['tmux', 'new-session'],
      ['tmux', '-C', 'attach-session', '-t', '=x'], // a control client that may run commands
      ['tmux', '-C', 'attach-session', '-r', '-f', 'ignore-size', '-t', '=x', '-c', '/'],
      ['tmux', '-C', 'new-session'],
      ['tmux', '-CC', 'attach-session', '-r', '-f', 'ignore-size', '-t', '=x'],
    ]) {
      assert.ok('refusal' in terminalKind(argv, users), argv.join(' '));
    }
  });
});

describe('the sandbox both policies allow', () => {
  const spec = (s: Partial<SandboxSpec>): SandboxSpec => ({ read: [], write: [], hide: [], readOnly: [], network: true, owner: 'o', ...s });

  test('visible where both show, writable where both allow writes, hidden where either hides', () => {
    const agent = spec({ read: ['/usr', '/home/alice'], write: ['/home/alice/work'], hide: ['/home/alice/.ssh'], network: false, owner: 'agent' });
    const gateway = spec({ read: ['/usr/lib', '/etc'], write: ['/home/alice'], hide: ['/home/alice/work/secret'], readOnly: ['/home/alice/work/ro'], owner: 'gw' });
    const both = intersectSandbox(agent, gateway)!;
    assert.deepEqual(both.read.sort(), ['/home/alice', '/usr/lib'], 'the agent reads /home/alice, the gateway writes it: readable');
    assert.deepEqual(both.write, ['/home/alice/work']);
    assert.deepEqual(both.hide.sort(), ['/home/alice/.ssh', '/home/alice/work/secret']);
    assert.deepEqual(both.readOnly, ['/home/alice/work/ro']);
    assert.equal(both.network, false);
    // The gateway shows /home/alice writable, the agent only readable: readable it stays.
    const ro = intersectSandbox(spec({ read: ['/home/alice'] }), spec({ write: ['/home/alice'] }))!;
    assert.deepEqual(ro.read, ['/home/alice']);
    assert.deepEqual(ro.write, []);
  });

  test('one side without a sandbox: the other side\'s', () => {
    const s = spec({ read: ['/usr'] });
    assert.equal(intersectSandbox(null, s), s);
    assert.equal(intersectSandbox(s, null), s);
    assert.equal(intersectSandbox(null, null), null);
  });

  test('a stage leaves it where both let it out, or where one side has no sandbox and the other lets it out', () => {
    assert.deepEqual(outsideOfBoth([0, 2], [2, 3]), [2]);
    assert.deepEqual(outsideOfBoth([], [0, 1, 2]), [], "the gateway's list lets out nothing the agent's sandbox keeps");
    assert.deepEqual(outsideOfBoth(null, [1]), [1], 'the agent without a sandbox: the gateway\'s let-outs');
    assert.deepEqual(outsideOfBoth([1], null), [1], 'the gateway without a sandbox: the agent\'s');
    assert.deepEqual(outsideOfBoth(null, null), []);
  });
});
