import assert from 'node:assert/strict';
import { symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { parseCommand } from '../../src/command/parser.js';
import { evaluate, explain, mayReach, mayRunByName, sandboxSpec } from '../../src/policy/evaluate.js';
import { parsePolicies } from '../../src/policy/load.js';
import { localResolver, ResolveError } from '../../src/policy/resolve.js';
import { renderTemplate } from '../../src/policy/templates.js';
import type { Check, Decision, Enforcement, PathResolver, Policy } from '../../src/policy/types.js';
import { makeFixture, rawCommand } from './fixture.js';

const fx = makeFixture(`
  multi_only:
    capabilities:
      - { operation: execute_binary, resource: mls }
      - { operation: write_stdout, resource: null }
  any_but_mrm:
    capabilities:
      - { operation: execute_binary, resource: "*" }
      - { operation: execute_binary, resource: mrm, effect: deny }
      - { operation: write_stdout, resource: null }
  silent:
    capabilities:
      - { operation: execute_binary, resource: cat }
  muted:
    capabilities:
      - { operation: execute_binary, resource: cat }
      - { operation: write_stdout, resource: null }
      - { operation: write_stdout, resource: null, effect: deny, reason: no output here }
  keys_asked:
    capabilities:
      - { operation: execute_binary, resource: grep|cat|rm }
      - { operation: read_file, resource: "\${T}/**" }
      - { operation: list_directory, resource: "\${T}/**" }
      - { operation: write_file, resource: "\${T}/**" }
      - { operation: read_file, resource: "\${T}/data/*/key", effect: ask, reason: keys }
      - { operation: write_file, resource: "\${T}/data/sub/**", effect: deny }
      - { operation: write_stdout, resource: null }
  keys_let_out:
    capabilities:
      - { operation: execute_binary, resource: rm, sandbox: false }
      - { operation: execute_binary, resource: cat|sh }
      - { operation: read_file, resource: "\${T}/**" }
      - { operation: list_directory, resource: "\${T}/**" }
      - { operation: write_file, resource: "\${T}/**" }
      - { operation: write_file, resource: "\${T}/data/sub/**", effect: deny }
      - { operation: write_stdout, resource: null }
  limits:
    capabilities:
      - { operation: execute_binary, resource: cat }
      - operation: write_stdout
        resource: { max_bytes: 100, redact: ["secret", { from: "^BEGIN$", to: "^END$" }] }
      - operation: write_stdout
        resource: { max_bytes: 50, redact: ["(?i)token", { from: "(?i)^start$", to: "^stop$" }] }
      - { operation: write_stdout, resource: null }
  through_links:
    capabilities:
      - { operation: execute_binary, resource: "cat|\${T}/data/escape/run" }
      - { operation: read_file, resource: "\${T}/data/escape/**" }
      - { operation: write_stdout, resource: null }
`);
after(() => fx.remove());
const T = fx.root;
const named = (name: string): Policy => fx.policies.get(name) as Policy;

const denied = (d: Decision): Check[] => d.checks.filter((c) => c.effect === 'deny');
function assertDenied(d: Decision, resource: string, reason?: RegExp): void {
  assert.equal(d.effect, 'deny', explain(d).join('\n'));
  const hit = denied(d).find((c) => c.resource === resource);
  assert.ok(hit, `no deny check for ${resource}:\n${explain(d).join('\n')}`);
  if (reason) assert.match(hit.reason, reason);
}
function assertAllowed(d: Decision): void {
  assert.equal(d.effect, 'allow', explain(d).join('\n'));
}

describe('evaluate: basics', () => {
  test('an allowed pipeline: every program, path and the output are checked', () => {
    const d = fx.check(`cat ${T}/data/a.log | grep x`);
    assertAllowed(d);
    assert.deepEqual(
      d.checks.map((c) => [c.stage, c.operation, c.resource, c.effect]),
      [
        [0, 'execute_binary', `${T}/bin/cat`, 'allow'],
        [0, 'read_file', `${T}/data/a.log`, 'allow'],
        [1, 'execute_binary', `${T}/bin/grep`, 'allow'],
        [-1, 'write_stdout', '', 'allow'],
      ],
    );
    assert.equal(d.rule, null);
    assert.equal(d.policy, 'p');
    assert.equal(d.sandbox, true);
    assert.deepEqual(d.output, { maxBytes: 4096, redact: [], redactBlocks: [] });
    assert.equal(d.checks[1]?.rule?.index, 1);
    assert.equal(d.checks[1]?.rule?.source.line, 7);
  });

  test('stages are numbered across the whole command list', () => {
    const d = fx.check(`cat ${T}/data/a.log | grep x ; ls ${T}/data && head ${T}/data/sub/b.log`);
    assertAllowed(d);
    assert.deepEqual([...new Set(d.checks.map((c) => c.stage))], [0, 1, 2, 3, -1]);
  });

  test('relative paths are taken against cwd', () => {
    assertAllowed(fx.check('cat a.log sub/b.log', { cwd: `${T}/data` }));
    assertDenied(fx.check('cat f', { cwd: `${T}/outside` }), `${T}/outside/f`, /\(resolved from f\)/);
  });

  test('no matching rule denies, naming the policy and the resource', () => {
    const d = fx.check(`cat ${T}/outside/f`);
    assertDenied(d, `${T}/outside/f`);
    assert.equal(d.reason, `read_file ${T}/outside/f: no rule of policy p allows it`);
    assert.equal(d.rule, null);
  });

  test('a program not in the secure PATH is denied as not found', () => {
    const d = fx.check('nosuchprogram');
    assertDenied(d, 'nosuchprogram', /not found in secure PATH/);
  });

  test('a program the policy does not name is denied', () => {
    assertDenied(fx.check(`nice cat ${T}/data/a.log`), `${T}/bin/nice`, /no rule of policy p allows it \(resolved from nice\)/);
  });

  test('cwd must be absolute', () => {
    assert.throws(() => evaluate(fx.policy, parseCommand('cat x'), { cwd: 'relative', resolver: fx.resolver }), /cwd must be absolute/);
  });
});

describe('evaluate: deny beats ask beats allow', () => {
  test('deny rule wins over the allow rule that also matches, wherever it is listed', () => {
    const d = fx.check(`cat ${T}/data/secret/key`);
    assertDenied(d, `${T}/data/secret/key`, /denied by p#4 \(test-policies\.yaml:13\): secrets stay here/);
    assert.equal(d.rule?.index, 4);
    assert.equal(d.rule?.effect, 'deny');
  });

  test('ask wins over allow', () => {
    const d = fx.check(`cat ${T}/data/ask/q`);
    assert.equal(d.effect, 'ask');
    assert.equal(d.rule?.index, 5);
    assert.match(d.reason, /needs approval under p#5 \(test-policies\.yaml:\d+\)$/);
  });

  test('one deny anywhere denies the command, even next to an ask', () => {
    const d = fx.check(`cat ${T}/data/ask/q | grep x ; cat ${T}/data/secret/key`);
    assert.equal(d.effect, 'deny');
    assert.equal(d.rule?.index, 4);
    assert.ok(d.checks.some((c) => c.effect === 'ask'));
  });

  test('the decision names the first deny', () => {
    const d = fx.check(`cat ${T}/outside/f ${T}/data/secret/key`);
    assert.equal(d.reason, `read_file ${T}/outside/f: no rule of policy p allows it`);
    assert.equal(denied(d).length, 2);
  });
});

describe('evaluate: traversal and symlinks', () => {
  test('.. is resolved before matching: /var/log/../../etc/shadow is /etc/shadow', () => {
    const ro = parsePolicies(renderTemplate('read_only', 'ro'), 'p.yaml', {}).get('ro') as Policy;
    const d = evaluate(ro, parseCommand('cat /var/log/../../etc/shadow'), { cwd: '/', resolver: localResolver });
    assertDenied(d, '/etc/shadow');
    assert.equal(d.reason, 'read_file /etc/shadow: no rule of policy ro allows it (resolved from /var/log/../../etc/shadow)');
  });

  test('.. inside the tree that climbs out of it is denied', () => {
    assertDenied(fx.check(`cat ${T}/data/sub/../../outside/f`), `${T}/outside/f`);
    assertDenied(fx.check('cat ../outside/f', { cwd: `${T}/data` }), `${T}/outside/f`);
  });

  test('a directory symlink inside the allowed tree pointing outside is followed, then denied', () => {
    assertDenied(fx.check(`cat ${T}/data/escape/f`), `${T}/outside/f`, /resolved from .*\/data\/escape\/f/);
    assertDenied(fx.check(`ls ${T}/data/escape`), `${T}/outside`);
  });

  test('a file symlink to /etc/passwd is denied', () => {
    assertDenied(fx.check(`cat ${T}/data/passwd`), '/etc/passwd');
  });

  test('.. after a symlink climbs from the link target, as the kernel does', () => {
    // data/escape -> outside, so data/escape/../f is <root>/f, not data/f.
    const d = fx.check(`cat ${T}/data/escape/../datax/f`);
    assertDenied(d, `${T}/datax/f`);
  });

  test('a write through a dangling symlink is checked at the link target', () => {
    assertDenied(fx.check(`tee ${T}/out/dangle`), `${T}/outside/new`);
    assertDenied(fx.check(`cat ${T}/data/a.log > ${T}/out/dangle`), `${T}/outside/new`);
  });

  test('a symlink loop denies with the reason, and does not hang', () => {
    assertDenied(fx.check(`cat ${T}/data/loop1`), `${T}/data/loop1`, /cannot be checked: too many symlinks/);
    assertDenied(fx.check(`cat ${T}/data/loop1/x/y`), `${T}/data/loop1/x/y`, /cannot be checked/);
  });

  test('a deny rule catches the path as written even when its target is allowed', () => {
    // data/secret/out -> data/a.log, which read_file allows.
    assertDenied(fx.check(`cat ${T}/data/secret/out`), `${T}/data/a.log`, /denied by p#4/);
  });

  test('a deny rule catches a symlinked alias of the denied tree', () => {
    assertDenied(fx.check(`cat ${T}/data/alias/key`), `${T}/data/secret/key`, /denied by p#4/);
  });

  test('a deny rule whose own prefix is a symlink covers the real tree', () => {
    // linked -> data/hidden, and deny names linked/**.
    assertDenied(fx.check(`cat ${T}/data/hidden/k`), `${T}/data/hidden/k`, /denied by p#4/);
  });

  test('an allow rule that matches only the path as written, through a link, is named in the denial', () => {
    // data/escape -> outside: allow rules match resolved paths, so these never apply (like /var/run/** or
    // /bin/cat on Debian, where /var/run and /bin are links), and a plain "no rule allows it" hides why.
    const policy = named('through_links');
    const why = (n: number): RegExp =>
      new RegExp(`: no rule of policy through_links allows it: through_links#${n} \\(test-policies\\.yaml:\\d+\\) matches only the path as written, and an allow rule must match it with symlinks resolved \\(resolved from `);
    assertDenied(fx.check(`cat ${T}/data/escape/f`, { policy }), `${T}/outside/f`, why(1));
    assertDenied(fx.check(`${T}/data/escape/run`, { policy }), `${T}/outside/run`, why(0));
    // Still a deny, and a path no rule names keeps the plain reason.
    assertDenied(fx.check(`cat ${T}/outside/f`, { policy }), `${T}/outside/f`, /: no rule of policy through_links allows it$/);
  });

  test('paths that do not exist yet are checked by where they would be', () => {
    assertAllowed(fx.check(`cat ${T}/data/new/file`));
    assertAllowed(fx.check(`tee ${T}/out/new/file`));
    assertDenied(fx.check(`tee ${T}/outside/new`), `${T}/outside/new`);
  });
});

describe('evaluate: glob boundaries', () => {
  test('data/** does not match datax', () => {
    assertDenied(fx.check(`cat ${T}/datax/f`), `${T}/datax/f`);
  });

  test('data/** covers data itself for listing', () => {
    assertAllowed(fx.check(`ls ${T}/data`));
  });

  test('out/**/* allows files inside out but not out itself', () => {
    assertAllowed(fx.check(`tee ${T}/out/x`));
    assertDenied(fx.check(`tee ${T}/out`), `${T}/out`);
  });

  test('a program path glob: tools/* matches tools/x, never tools/sub/x', () => {
    assertAllowed(fx.check(`${T}/tools/x`));
    assertDenied(fx.check(`${T}/tools/sub/x`), `${T}/tools/sub/x`);
  });
});

describe('evaluate: programs', () => {
  test('./cat in the working directory is not the cat of the secure PATH', () => {
    assertDenied(fx.check('./cat a.log', { cwd: `${T}/data` }), `${T}/data/cat`, /resolved from \.\/cat/);
  });

  test('/tmp/evil/cat is not cat', () => {
    assertDenied(fx.check(`${T}/evil/cat ${T}/data/a.log`), `${T}/evil/cat`);
  });

  test('the full path of the allowed program, or a link to it, is allowed', () => {
    assertAllowed(fx.check(`${T}/bin/cat ${T}/data/a.log`));
    assertAllowed(fx.check(`${T}/data/mycat ${T}/data/a.log`));
  });

  test('a multi-call binary is allowed only under the allowed name', () => {
    const policy = named('multi_only');
    assertAllowed(fx.check('mls', { policy }));
    // mrm is the same file as mls, but would act as "mrm".
    assertDenied(fx.check(`${T}/bin/mrm`, { policy }), `${T}/bin/multi`);
    assertDenied(fx.check('mrm', { policy }), `${T}/bin/multi`);
  });

  test('denying one name of a multi-call binary does not deny its other names', () => {
    const policy = named('any_but_mrm');
    assertAllowed(fx.check('mls', { policy }));
    assertDenied(fx.check('mrm', { policy }), `${T}/bin/multi`, /denied by any_but_mrm#1/);
    assertDenied(fx.check(`${T}/bin/mrm`, { policy }), `${T}/bin/multi`, /denied by any_but_mrm#1/);
  });

  test('* allows any program of the secure PATH, and no other', () => {
    const policy = named('any_but_mrm');
    assertAllowed(fx.check('nice head', { policy }));
    assertAllowed(fx.check(`${T}/bin/nice`, { policy }));
    assertDenied(fx.check(`${T}/evil/cat`, { policy }), `${T}/evil/cat`);
    assertDenied(fx.check('./cat', { policy, cwd: `${T}/data` }), `${T}/data/cat`);
  });
});

describe('evaluate: wrappers and nested commands', () => {
  test('env, timeout and nice: the wrapped program and its paths are checked', () => {
    assertDenied(fx.check(`env cat ${T}/outside/f`), `${T}/outside/f`);
    assertDenied(fx.check(`env LANG=C cat ${T}/data/secret/key`), `${T}/data/secret/key`);
    assert.match(fx.check(`env LD_PRELOAD=${T}/evil/x.so cat ${T}/data/a.log`).reason, /LD_PRELOAD/);
    assertDenied(fx.check('timeout 5 cat /etc/shadow'), '/etc/shadow');
    assertAllowed(fx.check(`timeout 5 cat ${T}/data/a.log`));
    assertDenied(fx.check(`env ${T}/evil/cat`), `${T}/evil/cat`);
  });

  test('xargs feeding paths at run time is refused', () => {
    const d = fx.check(`ls ${T}/data | xargs cat`);
    assert.equal(d.effect, 'deny');
    assert.match(d.reason, /xargs/);
  });

  test("sh -c 'cat /etc/shadow' checks the inner command", () => {
    assertDenied(fx.check("sh -c 'cat /etc/shadow'"), '/etc/shadow');
    assertAllowed(fx.check(`sh -c 'cat ${T}/data/a.log | grep x'`));
    assertDenied(fx.check(`sh -c "sh -c 'cat ${T}/data/secret/key'"`), `${T}/data/secret/key`);
  });

  test('an inner command the parser rejects denies with the parse error', () => {
    const d = fx.check("sh -c 'cat $(echo /etc/shadow)'");
    assert.equal(d.effect, 'deny');
    assert.match(d.reason, /nested command .*: .*command substitution/);
  });

  test('nesting deeper than the limit is refused', () => {
    let inner = `cat ${T}/data/a.log`;
    for (let i = 0; i < 10; i++) inner = `sh -c ${JSON.stringify(inner).replace(/\$/g, '\\$')}`;
    const d = fx.check(inner);
    assert.equal(d.effect, 'deny');
    assert.match(d.reason, /nested|wrapper/);
  });
});

describe('evaluate: options only the OS sandbox can confine', () => {
  const staticOnly: Enforcement = { sandbox: false, why: 'policy p has sandbox: false' };
  const run = (command: string, enforcement?: Enforcement): Decision =>
    evaluate(fx.policy, parseCommand(command), enforcement ? { cwd: T, resolver: fx.resolver, enforcement } : { cwd: T, resolver: fx.resolver });
  const sandboxOnly = (d: Decision): Check[] => denied(d).filter((c) => /only the OS sandbox/.test(c.reason));

  // data/escape is a symlink to outside/, which no rule allows: grep -R would follow it, grep -r would not.
  test('grep -R with static checks only is denied, naming the option and why there is no sandbox', () => {
    const d = run(`grep -R x ${T}/data/sub`, staticOnly);
    assert.equal(d.effect, 'deny', explain(d).join('\n'));
    assert.equal(
      d.reason,
      'grep -R follows symlinks met while recursing, which only the OS sandbox can confine; this command would run with static checks only (policy p has sandbox: false)',
    );
    assert.deepEqual(denied(d).map((c) => [c.stage, c.operation, c.resource]), [[0, 'execute_binary', 'grep']]);
    assert.equal(d.sandbox, false);
  });

  test('without an enforcement the command is taken to run without the sandbox', () => {
    const d = run(`grep --dereference-recursive x ${T}/data`);
    assert.equal(d.effect, 'deny');
    assert.match(d.reason, /^grep --dereference-recursive follows symlinks met while recursing, which only the OS sandbox can confine; .*\(no OS sandbox\)$/);
  });

  test('inside the sandbox the same command is allowed, its paths still checked', () => {
    const d = run(`grep -R x ${T}/data`, { sandbox: true });
    assertAllowed(d);
    assert.equal(d.sandbox, true);
    assert.deepEqual(sandboxOnly(d), []);
    assertDenied(run(`grep -R x ${T}/outside`, { sandbox: true }), `${T}/outside`);
  });

  test('harmless neighbours pass with static checks only: grep -r, ls without -L', () => {
    assertAllowed(run(`grep -r x ${T}/data/sub`, staticOnly));
    assertAllowed(run(`ls -la ${T}/data`, staticOnly));
    assertAllowed(run(`ls -R ${T}/data`, staticOnly));
  });

  test('through wrappers and nested shells', () => {
    for (const command of [
      `env LANG=C timeout 5 grep -Rn x ${T}/data`,
      `timeout 9 ls -lL ${T}/data`,
      `sh -c 'ls -RL ${T}/data'`,
      `cat ${T}/data/a.log | sh -c "grep -R x ${T}/data"`,
    ]) {
      const d = run(command, staticOnly);
      assert.equal(d.effect, 'deny', `${command}\n${explain(d).join('\n')}`);
      assert.match(d.reason, /^(grep|ls) -[RL] follows symlinks.*, which only the OS sandbox can confine; .*\(policy p has sandbox: false\)$/, command);
      assertAllowed(run(command, { sandbox: true }));
    }
  });

  test('a tree read whole (grep -r) with a denied path below it is denied with static checks only; the sandbox hides that tree', () => {
    const d = run(`grep -r x ${T}/data`, staticOnly);
    assert.equal(d.effect, 'deny', explain(d).join('\n'));
    assert.match(d.reason, new RegExp(`^read_file ${T}/data: denied by p#\\d+ \\(test-policies\\.yaml:\\d+\\): secrets stay here; it covers paths below ${T}/data, which the command goes through$`));
    for (const command of [`tar -cf - ${T}/data`, `sh -c 'grep -rl x ${T}'`]) assert.equal(run(command, staticOnly).effect, 'deny', command);
    assertAllowed(run(`grep -r x ${T}/data`, { sandbox: true }));
    // Naming the file below is the same check as ever.
    assertAllowed(run(`cat ${T}/data/a.log`, staticOnly));
  });

  test('a glob rule the sandbox cannot enforce counts below a tree read or written whole, sandbox or not', () => {
    const keys = fx.policies.get('keys_asked') as Policy;
    const check = (command: string): Decision => evaluate(keys, parseCommand(command), { cwd: T, resolver: fx.resolver, enforcement: { sandbox: true } });
    const d = check(`grep -r x ${T}/data`);
    assert.equal(d.effect, 'ask', explain(d).join('\n'));
    assert.match(d.reason, /needs approval under keys_asked#\d+ .*: keys; it covers paths below/);
    assertAllowed(check(`grep -r x ${T}/datax`));
    assertAllowed(check(`grep x ${T}/data/a.log`));
    // rm -r of a tree holding a write-denied one: only the sandbox's read-only mount stops it there.
    writeFileSync(`${T}/bin/rm`, '#!/bin/sh\n', { mode: 0o755 });
    assertAllowed(check(`rm -r ${T}/data`));
    const rm = evaluate(keys, parseCommand(`rm -r ${T}/data`), { cwd: T, resolver: fx.resolver, enforcement: staticOnly });
    assert.equal(rm.effect, 'deny', explain(rm).join('\n'));
    assert.match(rm.reason, new RegExp(`^write_file ${T}/data: denied by keys_asked#\\d+ .*; it covers paths below`));
  });

  test('a stage a sandbox: false rule lets out is checked as it runs, with static checks only; the rest stays in', () => {
    const policy = named('keys_let_out');
    writeFileSync(`${T}/bin/rm`, '#!/bin/sh\n', { mode: 0o755 });
    const check = (command: string): Decision => evaluate(policy, parseCommand(command), { cwd: T, resolver: fx.resolver, enforcement: { sandbox: true } });
    // In the sandbox the read-only mount would stop rm below data/sub; outside, only the check can.
    const d = check(`cat ${T}/data/a.log; rm -r ${T}/data`);
    assert.equal(d.effect, 'deny', explain(d).join('\n'));
    assert.match(d.reason, new RegExp(`^write_file ${T}/data: denied by keys_let_out#5 .*; it covers paths below`));
    assert.deepEqual(
      d.bounds.map((b) => [b.stage, b.layer, b.outside?.index]),
      [
        [0, 'static+sandbox', undefined],
        [1, 'static', 0],
      ],
    );
    // Through sh, which its rule keeps in the sandbox, rm stays in too.
    const nested = check(`sh -c 'rm -r ${T}/data'`);
    assertAllowed(nested);
    assert.deepEqual(nested.bounds, [{ stage: 0, layer: 'static+sandbox' }]);
  });

  test('with static checks only, a written symlink must be writable where it lies too: rm or mv would replace the link itself', () => {
    writeFileSync(`${T}/out/target`, 'x\n');
    symlinkSync(`${T}/out/target`, `${T}/data/to-out`);
    try {
      // tee only writes through it, but the analysis does not tell such programs from rm and mv.
      for (const command of [`tee ${T}/data/to-out`, `sh -c 'tee ${T}/data/to-out'`]) {
        const d = run(command, staticOnly);
        assert.equal(d.effect, 'deny', `${command}\n${explain(d).join('\n')}`);
        assert.match(d.reason, new RegExp(`^write_file ${T}/data/to-out: the symlink itself, which the command may replace or remove: no rule of policy p allows it`));
      }
      // Writing through it opens what it leads to; in the sandbox the link's directory is read-only.
      assertAllowed(run(`cat ${T}/data/a.log > ${T}/data/to-out`, staticOnly));
      assertAllowed(run(`tee ${T}/data/to-out`, { sandbox: true }));
      assertAllowed(run(`tee ${T}/out/target`, staticOnly));
    } finally {
      unlinkSync(`${T}/data/to-out`);
    }
  });

  test('a refusal is not lifted by the sandbox', () => {
    const d = run(`env -S 'grep -R x ${T}/data'`, { sandbox: true });
    assert.equal(d.effect, 'deny');
    assert.match(d.reason, /env -S/);
  });
});

describe('evaluate: option injection and redirections', () => {
  test('option values that are paths are checked', () => {
    assertDenied(fx.check(`grep -f /etc/shadow ${T}/data/a.log`), '/etc/shadow');
    assertDenied(fx.check(`grep --file=/etc/shadow ${T}/data/a.log`), '/etc/shadow');
    assertDenied(fx.check(`sort -o /etc/passwd ${T}/data/a.log`), '/etc/passwd');
    assertDenied(fx.check(`sort --output=${T}/data/a.log ${T}/data/a.log`), `${T}/data/a.log`);
    assertDenied(fx.check(`tail --follow=name -n 1 ${T}/outside/f`), `${T}/outside/f`);
  });

  test('a file named like an option after -- is still a path', () => {
    assertDenied(fx.check(`cat -- ${T}/outside/f`), `${T}/outside/f`);
  });

  test('redirections are checked: < reads, > >> 2> write', () => {
    assertDenied(fx.check('cat < /etc/shadow'), '/etc/shadow');
    const d = fx.check(`cat ${T}/data/a.log > /etc/passwd`);
    assertDenied(d, '/etc/passwd');
    assert.equal(d.checks.find((c) => c.resource === '/etc/passwd')?.operation, 'write_file');
    assertDenied(fx.check(`cat ${T}/data/a.log 2> ${T}/data/err`), `${T}/data/err`);
    assertAllowed(fx.check(`cat ${T}/data/a.log >> ${T}/out/x 2> ${T}/out/err`));
    assertAllowed(fx.check(`cat ${T}/data/a.log 2>&1`));
  });
});

describe('evaluate: long and binary input', () => {
  test('a 100 KB path argument is denied quickly (longer than PATH_MAX) with a bounded reason', () => {
    const started = Date.now();
    const d = fx.check(rawCommand(['cat', `${T}/data/${'a/'.repeat(50_000)}x`]));
    assert.equal(d.effect, 'deny');
    assert.match(d.reason, /path too long/);
    assert.ok(Date.now() - started < 2000);
    assert.ok(d.reason.length < 600, `reason of ${d.reason.length} characters`);
  });

  test('a 100 KB argument that is not a path does not slow anything down', () => {
    const d = fx.check(rawCommand(['grep', 'x'.repeat(100_000), `${T}/data/a.log`]));
    assertAllowed(d);
  });

  test('control characters and invalid UTF-16 in paths never reach a reason raw', () => {
    const path = `${T}/outside/\x1b[31mred\x07\ud800`;
    const d = fx.check(rawCommand(['cat', path]));
    assertDenied(d, path);
    assert.doesNotMatch(d.reason, /[\x00-\x1f]/);
    assert.ok(d.reason.includes('\\u001b[31mred\\u0007'));
    for (const line of explain(d)) assert.doesNotMatch(line, /[\x00-\x1f\ud800-\udfff]/);
  });

  test('binary bytes in an allowed tree are ordinary names', () => {
    assertAllowed(fx.check(rawCommand(['cat', `${T}/data/\x01\xff`])));
  });

  test('a NUL byte in an argument is refused', () => {
    const d = fx.check(rawCommand(['cat', `${T}/data/a\0/etc/shadow`]));
    assert.equal(d.effect, 'deny');
    assert.match(d.reason, /NUL/);
  });
});

describe('evaluate: write_stdout', () => {
  test('a policy granting no write_stdout denies', () => {
    const d = fx.check('cat', { policy: named('silent') });
    assert.equal(d.effect, 'deny');
    assert.equal(d.reason, 'write_stdout: policy silent grants no write_stdout');
    assert.deepEqual(d.output, { maxBytes: null, redact: [], redactBlocks: [] });
  });

  test('a write_stdout deny rule beats the allow rule', () => {
    const d = fx.check('cat', { policy: named('muted') });
    assert.equal(d.effect, 'deny');
    assert.match(d.reason, /denied by muted#2 .*: no output here/);
    assert.deepEqual(d.output, { maxBytes: 0, redact: [], redactBlocks: [] });
  });

  test('limits merge: smallest max_bytes, union of redactions and blocks', () => {
    const d = fx.check('cat', { policy: named('limits') });
    assertAllowed(d);
    assert.equal(d.output.maxBytes, 50);
    assert.deepEqual(
      d.output.redact.map((r) => [r.source, r.flags]),
      [
        ['secret', 'g'],
        ['token', 'gi'],
      ],
    );
    assert.deepEqual(
      d.output.redactBlocks.map((b) => [b.from.source, b.from.flags, b.to.source]),
      [
        ['^BEGIN$', 'g', '^END$'],
        ['^start$', 'gi', '^stop$'],
      ],
    );
    assert.match(d.checks.at(-1)?.reason ?? '', /at most 50 bytes, 2 redaction patterns, 2 redaction blocks/);
    assert.match(explain(d).join('\n'), /output .*2 redaction patterns, 2 redaction blocks/);
  });
});

describe('explain and sandboxSpec', () => {
  test('explain prints the verdict, then one line per check', () => {
    const d = fx.check(`cat ${T}/data/a.log ${T}/outside/f`);
    const lines = explain(d);
    assert.equal(lines[0], `DENY under policy p: read_file ${T}/outside/f: no rule of policy p allows it`);
    assert.match(lines[1] ?? '', /^ {2}stage 1 {2}allow {2}execute_binary .*\/bin\/cat: allowed by p#0 \(test-policies\.yaml:5\) \(resolved from cat\)$/);
    assert.match(lines[3] ?? '', /^ {2}stage 1 {2}deny {3}read_file /);
    assert.match(lines[4] ?? '', /^ {2}output {3}allow {2}write_stdout \(at most 4096 bytes\): allowed by p#6/);
    assert.equal(lines.at(-1), '  runs inside the OS sandbox');
  });

  test('sandbox spec: literal prefixes of allow rules, nested roots folded; whole-tree denies hidden or read-only', () => {
    const spec = sandboxSpec(fx.policy, 'alice');
    assert.deepEqual([spec.read, spec.write, spec.owner, spec.network], [[`${T}/data`, `${T}/tools`], [`${T}/out`], 'alice', false]);
    const p = parsePolicies(
      `policies:
  m:
    capabilities:
      - { operation: read_file, resource: [/var/log/**, /var/log/nginx/*.log, /srv/*.txt, /etc/hosts] }
      - { operation: list_directory, resource: "/srv/data-[0-9]/**" }
      - { operation: write_file, resource: /tmp/**/*, effect: allow }
      - { operation: write_file, resource: /etc/**, effect: deny }
      - { operation: execute_binary, resource: cat|/opt/tools/bin/* }
      - { operation: read_file, resource: [/var/log/secure*, /var/log/private/**, /etc/hosts], effect: deny }
      - { operation: list_directory, resource: /srv/data-1, effect: ask }
      - { operation: network, resource: null }
`,
      'm.yaml',
      {},
    ).get('m') as Policy;
    assert.deepEqual(sandboxSpec(p, 'bob'), {
      read: ['/etc/hosts', '/opt/tools/bin', '/srv', '/var/log'],
      write: ['/tmp'],
      hide: ['/etc/hosts', '/srv/data-1', '/var/log/private'],
      // Names in one directory: hidden as they match; /etc/** as a write deny makes /etc read-only instead.
      hideMatching: ['/var/log/secure*'],
      readOnly: ['/etc'],
      network: true,
      owner: 'bob',
    });
  });

  test('an allow of /** mounts the root only', () => {
    const admin = parsePolicies(renderTemplate('admin', 'a'), 'a.yaml', {}).get('a') as Policy;
    const spec = sandboxSpec(admin, 'a');
    assert.deepEqual([spec.read, spec.write], [['/'], ['/']]);
    // Its ask rules: /etc and /boot stay read-only, /etc/shadow and /etc/gshadow hidden.
    assert.deepEqual([spec.hide, spec.readOnly], [['/etc/gshadow', '/etc/shadow'], ['/boot', '/etc']]);
  });
});

describe('evaluate: symlink swaps between evaluations are seen', () => {
  test('nothing is cached across calls', () => {
    const link = `${T}/data/swap`;
    symlinkSync(`${T}/data/a.log`, link);
    assertAllowed(fx.check(`cat ${link}`));
    unlinkSync(link);
    symlinkSync(`${T}/outside/f`, link);
    assertDenied(fx.check(`cat ${link}`), `${T}/outside/f`);
  });
});

describe('what a policy may reach (what an outbound agent answers its gateway about)', () => {
  const p = parsePolicies(
    `policies:
  p:
    capabilities:
      - { operation: execute_binary, resource: cat|/opt/tool/bin/run }
      - { operation: execute_code, resource: python3 }
      - { operation: read_file, resource: /srv/x/** }
      - { operation: list_directory, resource: /data/top }
      - { operation: write_file, resource: /srv/x/secret/**, effect: deny }
      - { operation: read_file, resource: /home/*/notes.txt, effect: ask }
      - { operation: read_file, resource: /root/**, effect: deny }
`,
    'p.yaml',
  ).get('p') as Policy;

  test('a path a rule matches, one above what it matches, one below a path it matches; never through a deny', () => {
    for (const path of ['/srv/x', '/srv/x/a/b', '/srv/x/secret/k', '/srv', '/', '/opt/tool/bin/run', '/opt/tool', '/data/top', '/data/top/sub/f', '/home/bob/notes.txt', '/home']) {
      assert.equal(mayReach(p, path), true, path);
    }
    for (const path of ['/etc/passwd', '/root', '/root/.ssh', '/srv/xy', '/data/other', '/home/bob/other', '/opt/tool/bin/other']) {
      assert.equal(mayReach(p, path), false, path);
    }
  });

  test('programs by name: a rule naming them (execute_binary or execute_code) or *', () => {
    assert.deepEqual(['cat', 'python3', 'sh', 'run'].map((n) => mayRunByName(p, n)), [true, true, false, false]);
    const any = parsePolicies('policies:\n  a:\n    capabilities:\n      - { operation: execute_binary, resource: "*" }\n', 'a.yaml').get('a') as Policy;
    assert.equal(mayRunByName(any, 'anything'), true);
  });

  test('a host that will not say where a program is: a link named like a tool runs as the file it is, and a program by path is not the host\'s own', () => {
    // As an agent answers for a name its own policy does not let run.
    const refusing: PathResolver = {
      realpath: (path, cwd) => localResolver.realpath(path, cwd),
      which(name) {
        if (name === 'cat') return localResolver.which(name);
        throw new ResolveError(`not told where ${name} is`);
      },
    };
    const link = `${T}/data/ls`;
    symlinkSync(localResolver.which('cat') as string, link);
    try {
      const d = evaluate(named('keys_asked'), rawCommand([link, `${T}/data/a.log`]), { cwd: '/', resolver: refusing });
      assertAllowed(d); // cat by a link in the allowed tree, never taken for ls
    } finally {
      unlinkSync(link);
    }
    // A program the policy lets callers write, run by its path: code they chose, whatever the host says of its name.
    const writable = parsePolicies(
      `policies:\n  w:\n    capabilities:\n      - { operation: execute_binary, resource: "${T}/**" }\n      - { operation: write_file, resource: "${T}/**" }\n`,
      'w.yaml',
    ).get('w') as Policy;
    const tool = `${T}/data/tool`;
    writeFileSync(tool, '#!/bin/sh\n', { mode: 0o755 });
    try {
      assertDenied(evaluate(writable, rawCommand([tool]), { cwd: '/', resolver: refusing }), tool, /is run from a path this policy lets callers write/);
    } finally {
      unlinkSync(tool);
    }
  });
});
