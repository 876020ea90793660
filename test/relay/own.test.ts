// What an agent accepts as "remux's own" command (the session layer's tmux lines, the host check): the
// exact shapes sessions/tmux.ts makes, each accepted; everything a compromised gateway could slip in
// through tmux refused (a trailing shell-command, -c, #() in a format, other programs, redirects), and a
// startup command checked with the agent's own policy. And the sandbox both policies allow.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkOwnCommand, isAttachArgv } from '../../src/agent/own.js';
import { intersectSandbox } from '../../src/agent/sandbox.js';
import { parseCommand } from '../../src/command/parser.js';
import { renderCommandList } from '../../src/command/render.js';
import type { CommandList } from '../../src/command/types.js';
import type { SandboxSpec } from '../../src/exec/types.js';
import { parsePolicies } from '../../src/policy/load.js';
import { createLocalResolver } from '../../src/policy/resolve.js';
import { attachArgv, captureCommand, killCommand, listCommand, newSessionCommand, sendCommand, shellProgram, single, sudoProbeCommand, type TmuxTarget } from '../../src/sessions/tmux.js';

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
const check = (list: CommandList): ReturnType<typeof checkOwnCommand> => checkOwnCommand(wire(list), policy, resolver);

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
        single(['true']),
      ]) {
        assert.deepEqual(check(list), { ok: true }, renderCommandList(list));
      }
      assert.equal(isAttachArgv(attachArgv(t, 'build', false)), true);
      assert.equal(isAttachArgv(attachArgv(t, 'build', true)), true);
    }
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
    // A redirect other than the probe's /dev/null.
    assert.ok('refusal' in checkOwnCommand(parseCommand('tmux -V > /home/alice/.bashrc'), policy, resolver));
    // A good command chained with a bad one.
    assert.ok('refusal' in checkOwnCommand(parseCommand('true && sh -c id'), policy, resolver));
  });

  test('terminals: only a tmux attach', () => {
    for (const argv of [['bash'], ['tmux'], ['tmux', 'attach-session', '-t', 'x'], ['tmux', 'attach-session', '-t', '=x', '-c', '/'], ['tmux', 'new-session']]) {
      assert.equal(isAttachArgv(argv), false, argv.join(' '));
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
});
