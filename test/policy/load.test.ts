import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError } from '../../src/config/source.js';
import { loadPolicies, loadPolicyFile, parsePolicies } from '../../src/policy/load.js';
import { compileRedaction, isOperation } from '../../src/policy/schema.js';

const dir = mkdtempSync(join(tmpdir(), 'remux-load-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The single problem a policy text has, as "line: detail". */
function problem(text: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    parsePolicies(text, 'p.yaml', env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.issues.length, 1, err.message);
    return `${err.line}: ${err.detail}`;
  }
  assert.fail('accepted');
}

const one = (capability: string): string => `policies:\n  p:\n    capabilities:\n      - ${capability}\n`;

describe('loading a valid policy file', () => {
  test('YAML: names, rules, defaults, source lines', () => {
    const file = write(
      'ok.yaml',
      `# comment
policies:
  read_only:
    description: Logs
    capabilities:
      - operation: execute_binary
        resource: cat| grep |tail
      - operation: read_file
        resource: [/var/log/**, /tmp/**]
        effect: deny
        reason: nope
      - operation: write_stdout
        resource: null
  other:
    sandbox: true
    capabilities: []
`,
    );
    const policies = loadPolicyFile(file, {});
    assert.deepEqual([...policies.keys()], ['read_only', 'other']);
    const p = policies.get('read_only');
    assert.ok(p);
    assert.equal(p.description, 'Logs');
    assert.equal(p.sandbox, 'on', 'the OS sandbox is on unless the policy says sandbox: false');
    assert.deepEqual(p.source, { file, line: 3 });
    assert.deepEqual(
      p.rules.map((r) => [r.index, r.operation, r.effect, r.resources, r.reason, r.source.line]),
      [
        [0, 'execute_binary', 'allow', ['cat', 'grep', 'tail'], undefined, 6],
        [1, 'read_file', 'deny', ['/var/log/**', '/tmp/**'], 'nope', 8],
        [2, 'write_stdout', 'allow', null, undefined, 12],
      ],
    );
    assert.deepEqual(p.rules[2]?.output, { maxBytes: null, redact: [], redactBlocks: [] });
    assert.equal(policies.get('other')?.sandbox, 'on');
    assert.deepEqual(policies.get('other')?.rules, []);
  });

  test('sandbox: true, false, required and absent become the modes on, off, required and on', () => {
    const modes = parsePolicies(
      'policies:\n  a: { sandbox: true, capabilities: [] }\n  b: { sandbox: false, capabilities: [] }\n  c: { sandbox: required, capabilities: [] }\n  d: { capabilities: [] }\n',
      'modes.yaml',
      {},
    );
    assert.deepEqual([...modes.values()].map((p) => p.sandbox), ['on', 'off', 'required', 'on']);
  });

  test('JSON works the same, with lines', () => {
    const file = write(
      'ok.json',
      JSON.stringify({ policies: { j: { capabilities: [{ operation: 'read_file', resource: '/srv/**' }, { operation: 'write_stdout', resource: { max_bytes: 10 } }] } } }, null, 2),
    );
    const p = loadPolicyFile(file, {}).get('j');
    assert.equal(p?.rules[1]?.output?.maxBytes, 10);
    assert.equal(p?.rules[1]?.source.line, 9);
  });

  test('environment variables expand in resources', () => {
    const p = parsePolicies(one('operation: read_file\n        resource: ${APP_DIR:-/srv/app}/logs/**'), 'p.yaml', { APP_DIR: '/opt/x' }).get('p');
    assert.deepEqual(p?.rules[0]?.resources, ['/opt/x/logs/**']);
    const q = parsePolicies(one('operation: read_file\n        resource: ${APP_DIR:-/srv/app}/logs/**'), 'p.yaml', {}).get('p');
    assert.deepEqual(q?.rules[0]?.resources, ['/srv/app/logs/**']);
  });

  test('write_stdout limits compile; (?i) makes a pattern case-insensitive', () => {
    const p = parsePolicies(one('operation: write_stdout\n        resource: { max_bytes: 1024, redact: ["(?i)secret=\\\\S+", "AKIA[0-9A-Z]{16}"] }'), 'p.yaml', {}).get('p');
    const out = p?.rules[0]?.output;
    assert.equal(out?.maxBytes, 1024);
    assert.deepEqual(
      out?.redact.map((r) => [r.source, r.flags]),
      [
        ['secret=\\S+', 'gi'],
        ['AKIA[0-9A-Z]{16}', 'g'],
      ],
    );
    assert.equal('SECRET=abc and secret=def'.replace(out?.redact[0] as RegExp, 'X'), 'X and X');
  });

  test('later operations are accepted by name; unknown ones are not', () => {
    for (const op of ['network', 'session.attach', 'mcp.read_file', 'mcp.server.tool']) assert.ok(isOperation(op), op);
    for (const op of ['exec', 'session', 'session.', 'mcp.*', 'Network', 'read_file ']) assert.ok(!isOperation(op), op);
    const p = parsePolicies(one('{ operation: session.attach, resource: [prod-*] }'), 'p.yaml', {}).get('p');
    assert.equal(p?.rules[0]?.operation, 'session.attach');
  });
});

describe('every kind of bad input is an error with file:line', () => {
  test('bad YAML', () => {
    assert.match(problem('policies:\n  p:\n    capabilities: [\n'), /^\d+: /);
    assert.equal(problem('policies:\n  p:\n    capabilities: []\n  p:\n    capabilities: []\n'), '4: duplicate key p (first at line 2): rename or merge one of them');
    assert.equal(problem('policies:\n  read_only:\n    capabilities: []\n  read_only:\n    capabilities: []\n'), '4: duplicate key read_only (first at line 2): rename or merge one of them');
  });

  test('unknown keys, at every level', () => {
    assert.equal(problem('policies: {}\nversion: 2\n'), '2: version: unknown key (allowed keys: policies)');
    assert.throws(
      () => parsePolicies('policies:\n  p:\n    capabilites: []\n', 'p.yaml', {}),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message ===
          'p.yaml:2: policies.p.capabilities: missing (expected array)\n' +
            'p.yaml:3: policies.p.capabilites: unknown key (allowed keys: description, sandbox, capabilities)',
    );
    assert.equal(
      problem(one('operation: read_file\n        resource: /x\n        effects: deny')),
      '6: policies.p.capabilities[0].effects: unknown key (allowed keys: operation, resource, effect, reason, unsandboxed, sandbox)',
    );
    assert.equal(
      problem(one('operation: write_stdout\n        resource:\n          max_byte: 10')),
      '6: policies.p.capabilities[0].resource.max_byte: unknown key (allowed keys: max_bytes, redact)',
    );
  });

  test('unknown operation, listing the known ones', () => {
    assert.equal(
      problem(one('operation: exec\n        resource: ls')),
      '4: policies.p.capabilities[0].operation: unknown operation "exec" (known: execute_binary, execute_code, read_file, write_file, list_directory, write_stdout, network, session.<name>, mcp.<name>)',
    );
  });

  test('bad effect, bad types, missing keys', () => {
    assert.match(problem(one('operation: read_file\n        resource: /x\n        effect: maybe')), /^6: policies\.p\.capabilities\[0\]\.effect: Invalid option/);
    assert.equal(problem('policies:\n  p:\n    sandbox: yes please\n    capabilities: []\n'), '3: policies.p.sandbox: expected true, false or required');
    // YAML 1.2: `no` is a string, not false; said rather than taken for either.
    assert.equal(problem('policies:\n  p:\n    sandbox: no\n    capabilities: []\n'), '3: policies.p.sandbox: expected true, false or required');
    assert.equal(problem('policies:\n  p:\n    description: x\n'), '2: policies.p.capabilities: missing (expected array)');
    assert.equal(problem(one('operation: read_file')), '4: policies.p.capabilities[0].resource: missing: read_file needs the path globs it covers');
    assert.equal(
      problem(one('operation: execute_binary\n        resource: null')),
      '5: policies.p.capabilities[0].resource: expected a string (a|b alternatives) or a non-empty list of strings',
    );
    assert.equal(problem(one('resource: /x')), '4: policies.p.capabilities[0].operation: missing (expected string)');
  });

  test('execute_code: programs like execute_binary; unsandboxed only there, only true or false', () => {
    const p = parsePolicies(one('{ operation: execute_code, resource: make|npm, unsandboxed: true }'), 'p.yaml', {}).get('p');
    assert.deepEqual([p?.rules[0]?.operation, p?.rules[0]?.resources, p?.rules[0]?.unsandboxed], ['execute_code', ['make', 'npm'], true]);
    assert.equal(parsePolicies(one('{ operation: execute_code, resource: "*" }'), 'p.yaml', {}).get('p')?.rules[0]?.unsandboxed, undefined);
    assert.equal(problem(one('operation: execute_code')), '4: policies.p.capabilities[0].resource: missing: execute_code needs the programs it covers');
    assert.equal(
      problem(one('operation: execute_code\n        resource: py*')),
      '5: policies.p.capabilities[0].resource: "py*": a program name cannot be a glob; use * alone (any program in the secure PATH) or an absolute path glob',
    );
    assert.equal(
      problem(one('operation: execute_code\n        resource: make\n        unsandboxed: yes')),
      '6: policies.p.capabilities[0].unsandboxed: expected true or false',
    );
    assert.equal(
      problem(one('operation: execute_binary\n        resource: make\n        unsandboxed: true')),
      '6: policies.p.capabilities[0].unsandboxed: only execute_code rules take unsandboxed (this is execute_binary)',
    );
    assert.equal(
      problem(one('operation: execute_code\n        resource: make\n        effect: deny\n        unsandboxed: true')),
      '7: policies.p.capabilities[0].unsandboxed: a deny rule runs nothing: unsandboxed has no meaning here',
    );
  });

  test('sandbox: false only on execute_binary allow and ask rules; never lets execute_code out', () => {
    const p = parsePolicies(one('{ operation: execute_binary, resource: ps|df, effect: ask, sandbox: false }'), 'p.yaml', {}).get('p');
    assert.deepEqual([p?.rules[0]?.resources, p?.rules[0]?.sandbox], [['ps', 'df'], false]);
    assert.equal(parsePolicies(one('{ operation: execute_binary, resource: ps }'), 'p.yaml', {}).get('p')?.rules[0]?.sandbox, undefined);
    assert.equal(
      problem(one('operation: execute_code\n        resource: make\n        sandbox: false')),
      '6: policies.p.capabilities[0].sandbox: code remux cannot check never leaves the OS sandbox: sandbox is for execute_binary rules (unsandboxed: true is for hosts without a sandbox)',
    );
    assert.equal(
      problem(one('operation: execute_binary\n        resource: ps\n        effect: deny\n        sandbox: false')),
      '7: policies.p.capabilities[0].sandbox: a deny rule runs nothing: sandbox has no meaning here',
    );
    assert.equal(
      problem(one('operation: read_file\n        resource: /proc/**\n        sandbox: false')),
      '6: policies.p.capabilities[0].sandbox: only execute_binary rules take sandbox (this is read_file)',
    );
    assert.equal(problem(one('operation: execute_binary\n        resource: ps\n        sandbox: no')), '6: policies.p.capabilities[0].sandbox: expected true or false');
  });

  test('policy names', () => {
    assert.equal(
      problem('policies:\n  ok: { capabilities: [] }\n  "has space": { capabilities: [] }\n'),
      '3: policies["has space"]: invalid key: policy names are 1-64 characters of A-Z a-z 0-9 _ . -',
    );
    assert.match(problem(`policies:\n  ${'n'.repeat(65)}: { capabilities: [] }\n`), /^2: .*invalid key/);
  });

  test('bad resource shapes', () => {
    assert.equal(
      problem(one('operation: read_file\n        resource: 5')),
      '5: policies.p.capabilities[0].resource: expected a string (a|b alternatives) or a non-empty list of strings (YAML reads an unquoted 5 as a number, not as text: write "5" to mean the word)',
    );
    // The program `true` written bare is a boolean to YAML: the error says so, and how to write it.
    assert.equal(
      problem(one('operation: execute_binary\n        resource: [true, sleep]')),
      '5: policies.p.capabilities[0].resource: expected a string (a|b alternatives) or a non-empty list of strings (YAML reads an unquoted true as a boolean, not as text: write "true" to mean the word)',
    );
    assert.deepEqual(parsePolicies(one('operation: execute_binary\n        resource: ["true", sleep]'), 'p.yaml', {}).get('p')?.rules[0]?.resources, ['true', 'sleep']);
    assert.match(problem(one('operation: read_file\n        resource: []')), /^5: .*non-empty list/);
    assert.equal(problem(one('operation: execute_binary\n        resource: cat||ls')), '5: policies.p.capabilities[0].resource: empty entry');
    assert.match(problem(one('operation: write_stdout\n        resource: 100')), /^5: policies\.p\.capabilities\[0\]\.resource: expected object/);
    assert.match(problem(one('operation: write_stdout\n        resource: { max_bytes: 0 }')), /^5: .*resource\.max_bytes: Too small/);
    assert.match(problem(one('operation: write_stdout\n        resource: { max_bytes: 1.5 }')), /^5: .*resource\.max_bytes: expected int/);
  });

  test('relative paths, traversal and bad globs', () => {
    assert.equal(
      problem(one('operation: read_file\n        resource: var/log/**')),
      '5: policies.p.capabilities[0].resource: "var/log/**": not a valid path glob: must be an absolute path (start with /)',
    );
    assert.equal(
      problem(one('operation: read_file\n        resource:\n          - /ok/**\n          - /var/log/../../etc')),
      '7: policies.p.capabilities[0].resource[1]: "/var/log/../../etc": not a valid path glob: ".." segments are not allowed; write the normalised path',
    );
    assert.match(problem(one('operation: list_directory\n        resource: /var/log/[ab')), /^5: .*unbalanced \[/);
    assert.match(problem(one('operation: write_file\n        resource: "/tmp/{a,b"')), /^5: .*unbalanced \{/);
    assert.match(problem(one('operation: write_file\n        resource: /tmp/a**')), /^5: .*whole path segment/);
    assert.match(problem(one('operation: read_file\n        resource: /srv/x|logs/**')), /^5: .*"logs\/\*\*": .*absolute/);
    // A shell's ~ and $HOME are not expanded here: the error says what is.
    assert.equal(
      problem(one('operation: read_file\n        resource: ~/projects/**')),
      '5: policies.p.capabilities[0].resource: "~/projects/**": not a valid path glob: must be an absolute path (start with /); ~ is not expanded in policies: write ${HOME}/projects/**',
    );
    assert.equal(
      problem(one('operation: write_file\n        resource: $WORK/**')),
      '5: policies.p.capabilities[0].resource: "$WORK/**": not a valid path glob: must be an absolute path (start with /); $WORK is not expanded in policies: write ${WORK}/**',
    );
    assert.match(problem(one('operation: read_file\n        resource: ~user/x')), /absolute path \(start with \/\)$/);
  });

  test('program entries: names, * or absolute path globs', () => {
    assert.match(problem(one('operation: execute_binary\n        resource: py*')), /^5: .*"py\*": a program name cannot be a glob/);
    assert.match(problem(one('operation: execute_binary\n        resource: bin/cat')), /^5: .*"bin\/cat": not a valid path glob: must be an absolute/);
    assert.match(problem(one('operation: execute_binary\n        resource: ["a b"]')), /^5: .*"a b": not a valid program name/);
    assert.match(problem(one('operation: execute_binary\n        resource: /usr/bin/../bin/cat')), /^5: .*"\.\." segments/);
    assert.deepEqual(parsePolicies(one('operation: execute_binary\n        resource: "*|/opt/**|g++|["'), 'p.yaml', {}).get('p')?.rules[0]?.resources, ['*', '/opt/**', 'g++', '[']);
  });

  test('a redact entry may be a { from, to } block, with the same (?i) rule', () => {
    const text = one(
      'operation: write_stdout\n        resource:\n          redact:\n            - token=\\S+\n' +
        '            - from: "-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"\n              to: "-----END [A-Z0-9 ]*PRIVATE KEY-----"\n' +
        '            - { from: "(?i)^begin secret$", to: ^end }',
    );
    const out = parsePolicies(text, 'p.yaml', {}).get('p')?.rules[0]?.output;
    assert.deepEqual(
      out?.redact.map((r) => r.source),
      ['token=\\S+'],
    );
    assert.deepEqual(
      out?.redactBlocks.map((b) => [b.from.source, b.from.flags, b.to.source, b.to.flags]),
      [
        ['-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----', 'g', '-----END [A-Z0-9 ]*PRIVATE KEY-----', 'g'],
        ['^begin secret$', 'gi', '^end', 'g'],
      ],
    );
    const json = JSON.stringify({ policies: { j: { capabilities: [{ operation: 'write_stdout', resource: { redact: [{ from: 'a', to: 'b' }] } }] } } });
    assert.equal(parsePolicies(json, 'p.json', {}).get('j')?.rules[0]?.output?.redactBlocks.length, 1);
  });

  test('a redaction block: bad regexes, unknown or missing keys, wrong types, all at file:line', () => {
    const block = (entry: string): string => one(`operation: write_stdout\n        resource:\n          redact:\n            - ok\n${entry}`);
    assert.match(
      problem(block('            - from: "(unclosed"\n              to: end')),
      /^8: policies\.p\.capabilities\[0\]\.resource\.redact\[1\]\.from: invalid redaction pattern "\(unclosed": Invalid regular expression/,
    );
    assert.match(
      problem(block('            - from: begin\n              to: "[z-a]"')),
      /^9: policies\.p\.capabilities\[0\]\.resource\.redact\[1\]\.to: invalid redaction pattern "\[z-a\]"/,
    );
    assert.match(problem(block('            - { from: begin, to: "x?" }')), /^8: .*redact\[1\]\.to: invalid redaction pattern "x\?": matches the empty string/);
    assert.equal(
      problem(block('            - from: begin\n              to: end\n              until: never')),
      '10: policies.p.capabilities[0].resource.redact[1].until: unknown key (allowed keys: from, to)',
    );
    assert.equal(problem(block('            - from: begin')), '8: policies.p.capabilities[0].resource.redact[1].to: missing (expected string)');
    assert.match(problem(block('            - { from: begin, to: 5 }')), /^8: .*redact\[1\]\.to: expected string, received number/);
    assert.equal(problem(block('            - 42')), '8: policies.p.capabilities[0].resource.redact[1]: expected a regex string or a { from: REGEX, to: REGEX } block (YAML reads an unquoted 42 as a number, not as text: write "42" to mean the word)');
    assert.match(problem(block('            - [a, b]')), /^8: .*redact\[1\]: expected a regex string or a \{ from: REGEX, to: REGEX \} block/);
  });

  test('redaction patterns must compile, and must not match the empty string', () => {
    assert.match(
      problem(one('operation: write_stdout\n        resource:\n          redact:\n            - ok\n            - "(unclosed"')),
      /^8: policies\.p\.capabilities\[0\]\.resource\.redact\[1\]: invalid redaction pattern "\(unclosed": Invalid regular expression/,
    );
    assert.match(problem(one('operation: write_stdout\n        resource: { redact: ["x*"] }')), /^5: .*matches the empty string/);
    assert.throws(() => compileRedaction('(?i)'), /empty string/);
  });

  test('an unset environment variable', () => {
    assert.equal(
      problem(one('operation: read_file\n        resource: ${LOG_ROOT}/**')),
      '5: environment variable LOG_ROOT is not set (write ${LOG_ROOT:-default} to give a default)',
    );
  });

  test('several problems are all reported, in line order', () => {
    try {
      parsePolicies(one('operation: exec\n        resource: x\n      - operation: read_file\n        resource: rel'), 'p.yaml', {});
      assert.fail('accepted');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(
        err.issues.map((i) => i.line),
        [4, 7],
      );
      assert.match(err.message, /^p\.yaml:4: .*\np\.yaml:7: /);
    }
  });
});

describe('loadPolicies', () => {
  test('merges several files', () => {
    const a = write('a.yaml', 'policies:\n  one: { capabilities: [] }\n');
    const b = write('b.yaml', 'policies:\n  two: { capabilities: [] }\n');
    assert.deepEqual([...loadPolicies([a, b], {}).keys()], ['one', 'two']);
  });

  test('a name defined in two files is an error naming both places', () => {
    const a = write('dup-a.yaml', 'policies:\n  same: { capabilities: [] }\n');
    const b = write('dup-b.yaml', '# another file\npolicies:\n  other: { capabilities: [] }\n  same: { capabilities: [] }\n');
    assert.throws(
      () => loadPolicies([a, b], {}),
      (err: unknown) => err instanceof ConfigError && err.message === `${b}:4: policy "same" is already defined at ${a}:2`,
    );
  });

  test('a missing file names the file', () => {
    assert.throws(() => loadPolicies([join(dir, 'missing.yaml')], {}), /missing\.yaml: cannot read/);
  });
});
