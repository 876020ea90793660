// execute_code (programs that run code remux cannot check) and leading `cd DIR &&`, decided by evaluate()
// over a real tree with symlinks (fixture.ts).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { leadingCd } from '../../src/command/cd.js';
import { parseCommand } from '../../src/command/parser.js';
import { ParseError } from '../../src/command/types.js';
import { explain } from '../../src/policy/evaluate.js';
import type { Decision, Policy } from '../../src/policy/types.js';
import { makeFixture } from './fixture.js';

const fx = makeFixture(`
  coder:
    capabilities:
      - { operation: execute_binary, resource: make|python3|bash|ls|cat|git|grep }
      - { operation: execute_code, resource: make|python3|bash }
      - { operation: execute_code, resource: git, effect: ask, reason: hooks }
      - { operation: read_file, resource: "\${T}/data/**" }
      - { operation: list_directory, resource: "\${T}/data/**" }
      - { operation: read_file, resource: "\${T}/data/secret/**", effect: deny }
      - { operation: write_stdout, resource: null }
  coder_static:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: make|python3 }
      - { operation: execute_code, resource: make }
      - { operation: execute_code, resource: python3, unsandboxed: true }
      - { operation: read_file, resource: "\${T}/data/**" }
      - { operation: list_directory, resource: "\${T}/data/**" }
      - { operation: write_stdout, resource: null }
  any_code_but_bash:
    capabilities:
      - { operation: execute_binary, resource: "*" }
      - { operation: execute_code, resource: "*" }
      - { operation: execute_code, resource: bash, effect: deny, reason: no shell scripts }
      - { operation: read_file, resource: "\${T}/**" }
      - { operation: list_directory, resource: "\${T}/**" }
      - { operation: write_stdout, resource: null }
  any_program:
    capabilities:
      - { operation: execute_binary, resource: "*" }
      - { operation: read_file, resource: "\${T}/**" }
      - { operation: list_directory, resource: "\${T}/**" }
      - { operation: write_stdout, resource: null }
  path_programs:
    capabilities:
      - { operation: execute_binary, resource: ["\${T}/tools/*", "\${T}/out/*", cat] }
      - { operation: write_file, resource: "\${T}/out/**/*" }
      - { operation: write_stdout, resource: null }
  path_programs_code:
    capabilities:
      - { operation: execute_binary, resource: ["\${T}/tools/*", "\${T}/out/*", cat] }
      - { operation: execute_code, resource: "\${T}/out/*" }
      - { operation: write_file, resource: "\${T}/out/**/*" }
      - { operation: write_stdout, resource: null }
`);
after(() => fx.remove());
const T = fx.root;
for (const name of ['make', 'python3', 'bash', 'git', 'node', 'pydoc3', 'pdb3']) writeFileSync(join(T, 'bin', name), '#!/bin/sh\n', { mode: 0o755 });
const policy = (name: string): Policy => fx.policies.get(name) as Policy;
const coder = policy('coder');
const show = (d: Decision): string => explain(d).join('\n');

function assertEffect(d: Decision, effect: Decision['effect'], reason?: RegExp): void {
  assert.equal(d.effect, effect, show(d));
  if (reason) assert.match(d.reason, reason, show(d));
}

describe('execute_code', () => {
  test('an allowed code runner is a check of its stage, bounded by the OS sandbox alone', () => {
    const d = fx.check(`make -C ${T}/data | grep x`, { policy: coder });
    assertEffect(d, 'allow');
    const code = d.checks.filter((c) => c.operation === 'execute_code');
    assert.deepEqual(
      code.map((c) => [c.stage, c.resource, c.effect]),
      [[0, `${T}/bin/make`, 'allow']],
    );
    assert.match(code[0]?.reason ?? '', /^execute_code \S+: make runs a Makefile's recipes, code that remux cannot check; allowed by coder#1 \(test-policies\.yaml:\d+\), bounded by the OS sandbox/);
    assert.deepEqual(d.bounds, [
      { stage: 0, layer: 'sandbox', code: "make runs a Makefile's recipes, code that remux cannot check" },
      { stage: 1, layer: 'static+sandbox' },
    ]);
    assert.match(show(d), /stage 1 {2}bounded by the OS sandbox alone: make runs/);
    assert.match(show(d), /stage 2 {2}bounded by static checks, then the OS sandbox/);
  });

  test('execute_code does not replace execute_binary: a program the policy does not run stays denied', () => {
    const d = fx.check(`node ${T}/data/a.log`, { policy: coder });
    assertEffect(d, 'deny', /^execute_binary \S+\/node: no rule of policy coder allows it/);
  });

  test('the script is a read like any other: a denied path denies', () => {
    assertEffect(fx.check(`python3 ${T}/data/secret/key`, { policy: coder }), 'deny', /^read_file \S+\/data\/secret\/key: denied by coder#5/);
    assertEffect(fx.check(`bash ${T}/outside/f`, { policy: coder }), 'deny', /^read_file \S+\/outside\/f: no rule/);
    assertEffect(fx.check(`bash ${T}/data/a.log`, { policy: coder }), 'allow');
  });

  test('ask on execute_code asks (git: hooks and repository config)', () => {
    const d = fx.check(`git -C ${T}/data status`, { policy: coder });
    assertEffect(d, 'ask', /^execute_code \S+\/git: git runs hooks and programs named in the repository's config .*; needs approval under coder#2 \(test-policies\.yaml:\d+\): hooks, bounded by the OS sandbox/);
  });

  test('code runners are found through wrappers and nested shells, at the stage that starts them', () => {
    const d = fx.check(`cat ${T}/data/a.log | bash -c "make -C ${T}/data"`, { policy: coder });
    assertEffect(d, 'allow');
    assert.deepEqual(
      d.checks.filter((c) => c.operation === 'execute_code').map((c) => [c.stage, c.resource]),
      [[1, `${T}/bin/make`]],
    );
    assert.deepEqual(d.bounds.map((b) => b.layer), ['static+sandbox', 'sandbox']);
  });

  test('a deny rule beats an allow of any program', () => {
    const p = policy('any_code_but_bash');
    assertEffect(fx.check(`python3 ${T}/data/a.log`, { policy: p }), 'allow');
    assertEffect(fx.check(`bash ${T}/data/a.log`, { policy: p }), 'deny', /^execute_code \S+\/bash: bash would run the script .*; denied by any_code_but_bash#2 \(test-policies\.yaml:\d+\): no shell scripts/);
    // Under another name or by its path: still bash.
    assertEffect(fx.check(`${T}/bin/bash ${T}/data/a.log`, { policy: p }), 'deny', /denied by any_code_but_bash#2/);
  });

  test('without a sandbox the code is refused, naming the rule and the fix; unsandboxed: true lets it run, saying nothing bounds it', () => {
    const p = policy('coder_static');
    const make = fx.check(`make -C ${T}/data`, { policy: p });
    assertEffect(
      make,
      'deny',
      /^execute_code \S+\/make: make runs a Makefile's recipes, code that remux cannot check; allowed by coder_static#1 \(test-policies\.yaml:\d+\) only inside the OS sandbox, but this command would run with static checks only \(policy coder_static has sandbox: false\); add unsandboxed: true to that rule/,
    );
    assert.equal(make.rule, null, 'the allow rule did not decide: the missing sandbox did');
    const py = fx.check(`python3 ${T}/data/a.log`, { policy: p });
    assertEffect(py, 'allow');
    assert.match(py.checks.find((c) => c.operation === 'execute_code')?.reason ?? '', /with unsandboxed: true, so nothing bounds that code \(policy coder_static has sandbox: false\)/);
    assert.deepEqual(py.bounds.map((b) => b.layer), ['none']);
    assert.match(show(py), /bounded by nothing \(execute_code with unsandboxed: true\)/);
  });

  test('a program run from a path the policy lets callers write is code they chose', () => {
    writeFileSync(join(T, 'out', 'tool'), '#!/bin/sh\nrm -rf /\n', { mode: 0o755 });
    const p = policy('path_programs');
    assertEffect(fx.check('tools/x', { policy: p }), 'allow'); // not writable: a plain program
    assertEffect(
      fx.check('out/tool', { policy: p }),
      'deny',
      /^execute_code \S+\/out\/tool: tool is run from a path this policy lets callers write, so what it runs cannot be checked; no execute_code rule of policy path_programs allows tool/,
    );
    const granted = fx.check(`${T}/out/tool`, { policy: policy('path_programs_code') });
    assertEffect(granted, 'allow');
    assert.deepEqual(granted.bounds.map((b) => b.layer), ['sandbox']);
    // The secure PATH's own programs, by path too, are the host's.
    assertEffect(fx.check(`${T}/bin/cat`, { policy: p }), 'allow');
  });

  test('adversarial: Python tools that run the code they are given (pydoc imports what it documents, pdb runs its script) are code runners', () => {
    writeFileSync(join(T, 'data', 'evil.py'), 'import os\n');
    for (const command of [`pydoc3 ${T}/data/evil.py`, 'pydoc3 -p 0', `pdb3 ${T}/data/evil.py`]) {
      assertEffect(fx.check(command, { policy: policy('any_program') }), 'deny', /^execute_code \S+: (pydoc3|pdb3) would run/);
    }
    assertEffect(fx.check(`pydoc3 ${T}/data/evil.py`, { policy: policy('any_code_but_bash') }), 'allow');
  });

  test('python3 --version and git --version run no code', () => {
    for (const command of ['python3 --version', 'git --version', 'git version']) {
      const d = fx.check(command, { policy: coder });
      assert.ok(!d.checks.some((c) => c.operation === 'execute_code'), `${command}\n${show(d)}`);
    }
  });
});

describe('leading cd DIR', () => {
  test('sets the working directory of the rest: checked as list_directory, later relative paths from there', () => {
    const d = fx.check('cd data && cat a.log | grep x', { policy: coder });
    assertEffect(d, 'allow');
    assert.equal(d.cwd, `${T}/data`);
    assert.deepEqual(
      d.checks.filter((c) => c.stage >= 0).map((c) => [c.stage, c.operation, c.resource]),
      [
        [0, 'list_directory', `${T}/data`],
        [1, 'execute_binary', `${T}/bin/cat`],
        [1, 'read_file', `${T}/data/a.log`],
        [2, 'execute_binary', `${T}/bin/grep`],
      ],
    );
    assert.deepEqual(d.bounds.map((b) => b.stage), [1, 2], 'the cd itself does not run');
    assertEffect(fx.check('cd data; cd sub; cat b.log', { policy: coder }), 'allow');
    assert.equal(fx.check('cd data; cd sub; cat b.log', { policy: coder }).cwd, `${T}/data/sub`);
    assertEffect(fx.check('cd data && cat secret/key', { policy: coder }), 'deny', /^read_file \S+\/data\/secret\/key: denied/);
  });

  test('into a directory the policy does not list: denied', () => {
    assertEffect(fx.check('cd outside && ls', { policy: coder }), 'deny', new RegExp(`^list_directory ${T}/outside: no rule of policy coder allows it`));
    assertEffect(fx.check('cd /etc && cat passwd', { policy: coder }), 'deny', /^list_directory \/etc: no rule/);
  });

  test('.. traversal is resolved: out of the tree is denied, wherever the cd starts', () => {
    assertEffect(fx.check('cd data/../outside && ls', { policy: coder }), 'deny', new RegExp(`^list_directory ${T}/outside:`));
    assertEffect(fx.check('cd data && cd .. && ls', { policy: coder }), 'deny', new RegExp(`^list_directory ${T}: no rule`));
    assertEffect(fx.check('cd data/sub && cat ../../outside/f', { policy: coder }), 'deny', new RegExp(`^read_file ${T}/outside/f:`));
  });

  test('into a symlink that points outside: checked, and run, at its target', () => {
    const d = fx.check('cd data/escape && ls', { policy: coder });
    assertEffect(d, 'deny', new RegExp(`^list_directory ${T}/outside: no rule of policy coder allows it: coder#\\d+ \\(test-policies\\.yaml:\\d+\\) matches only the path as written, .* \\(resolved from data/escape\\)`));
    const any = fx.check('cd data/escape && cat f', { policy: policy('any_code_but_bash') });
    assertEffect(any, 'allow');
    assert.equal(any.cwd, `${T}/outside`, 'the command runs where the check looked, not through the link');
  });

  test('a cd that is not literal never parses: $VAR, ~, globs, command substitution', () => {
    for (const command of ['cd $HOME && ls', 'cd ~ && ls', 'cd da* && ls', 'cd "$(echo /)" && ls']) {
      assert.throws(() => parseCommand(command), ParseError, command);
    }
  });

  test('a cd anywhere but the start is refused with its position', () => {
    for (const [command, column] of [
      ['ls | cd data', 6],
      ['cat data/a.log && cd data && ls', 19],
      ['ls; cd data; ls', 5],
      ['cd data && ls | cd sub', 17],
    ] as const) {
      const d = fx.check(command, { policy: coder });
      assertEffect(d, 'deny', new RegExp(`^cd is supported only at the start of a command, as cd DIR && COMMAND \\(at column ${column}\\)$`));
    }
  });

  test('cd forms that name no literal directory, or lead nowhere, are refused with the reason', () => {
    for (const [command, reason] of [
      ['cd && ls', /cd without a directory \(the home directory\) is not supported/],
      ['cd - && ls', /cd - \(the previous directory\) is not supported/],
      ['cd data sub && ls', /cd takes one directory, got 2 arguments/],
      ['cd -P data && ls', /cd options are not supported: -P/],
      ['cd data > x && ls', /cd with a redirection is not supported/],
      ['cd data || ls', /cd DIR \|\| … is not supported/],
      ['cd data', /cd data with nothing after it: the directory does not carry over to later commands/],
      ["cd '' && ls", /cd to an empty directory name/],
    ] as const) {
      assertEffect(fx.check(command, { policy: coder }), 'deny', reason);
    }
  });

  test('inside sh -c a cd is the shell builtin, which stays refused', () => {
    assertEffect(fx.check('bash -c "cd data && ls"', { policy: coder }), 'deny', /shell builtin that changes the state/);
  });

  test('what runs is the rest of the list, from its first command', () => {
    const cd = leadingCd(parseCommand('cd a; cd b && ls -l | grep x && cat f'));
    assert.deepEqual(cd.dirs, [{ dir: 'a', stage: 0 }, { dir: 'b', stage: 1 }]);
    assert.deepEqual(
      cd.rest.items.map((i) => [i.op, i.pipeline.stages.map((s) => s.argv.join(' '))]),
      [
        [null, ['ls -l', 'grep x']],
        ['&&', ['cat f']],
      ],
    );
    assert.equal(cd.refusal, null);
  });
});
