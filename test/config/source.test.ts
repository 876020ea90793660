import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { z } from 'zod';
import { ConfigError, expandEnv, loadSourceFile, parseSource, renderPath, strictObject, validate } from '../../src/config/source.js';

/** The ConfigError thrown by fn (fails the test if none is). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('no error thrown');
}

describe('parseSource', () => {
  test('YAML and JSON give the same value', () => {
    const yaml = parseSource('a: 1\nb: [x, y]\n', 'f.yaml', {});
    const json = parseSource('{\n  "a": 1,\n  "b": ["x", "y"]\n}\n', 'f.json', {});
    assert.deepEqual(yaml.value, { a: 1, b: ['x', 'y'] });
    assert.deepEqual(json.value, yaml.value);
  });

  test('lineAt finds keys, sequence items and the nearest existing ancestor', () => {
    const doc = parseSource('top:\n  list:\n    - a\n    - name: b\n      deep: 1\n  other: 2\n', 'f.yaml', {});
    assert.equal(doc.lineAt([]), 1);
    assert.equal(doc.lineAt(['top', 'list']), 2);
    assert.equal(doc.lineAt(['top', 'list', 1]), 4);
    assert.equal(doc.lineAt(['top', 'list', 1, 'deep']), 5);
    assert.equal(doc.lineAt(['top', 'other']), 6);
    assert.equal(doc.lineAt(['top', 'list', 1, 'missing']), 4, 'missing key → its map item');
    assert.equal(doc.lineAt(['top', 'list', 7]), 2, 'missing index → the list key');
  });

  test('lineAt works in JSON too', () => {
    const doc = parseSource('{\n  "a": {\n    "b": [1,\n      2]\n  }\n}\n', 'f.json', {});
    assert.equal(doc.lineAt(['a', 'b']), 3);
    assert.equal(doc.lineAt(['a', 'b', 1]), 4);
  });

  test('a YAML syntax error names its line', () => {
    const err = configError(() => parseSource('a: 1\nb: [1, 2\nc: 3\n', 'bad.yaml', {}));
    assert.equal(err.file, 'bad.yaml');
    assert.ok(err.line >= 2, `line ${err.line}`);
    assert.match(err.message, /^bad\.yaml:\d+: /);
  });

  test('a bad indentation is an error, not a silently different document', () => {
    const err = configError(() => parseSource('a:\n  b: 1\n c: 2\n', 'f.yaml', {}));
    assert.equal(err.line, 3);
  });

  test('duplicate keys are errors naming the key, its line and the line of the first one', () => {
    const err = configError(() => parseSource('a: 1\nb:\n  x: 1\n  x: 2\n', 'f.yaml', {}));
    assert.equal(err.line, 4);
    assert.equal(err.detail, 'duplicate key x (first at line 3): rename or merge one of them');
    // The whole key, however long, block or flow style, quoted or not.
    const dup = (text: string, file = 'f.yaml'): string => configError(() => parseSource(text, file, {})).detail.replace(/ \(first at line \d+\).*/, '');
    assert.equal(dup('daemon:\n  x: 1\ndaemon:\n  x: 2\n'), 'duplicate key daemon');
    assert.equal(dup('labels: { env: a, env : b }\n'), 'duplicate key env');
    assert.equal(dup('"rate limit": 1\n"rate limit": 2\n'), 'duplicate key "rate limit"');
    assert.equal(dup('{"audit": 1, "audit": 2}', 'f.json'), 'duplicate key "audit"');
    // The first one is the one in the same mapping, wherever other mappings use that key too.
    assert.match(configError(() => parseSource('p:\n  x: 1\nq:\n  y: 1\n  z: 1\n  y: 2\n', 'f.yaml', {})).detail, /^duplicate key y \(first at line 4\)/);
  });

  test('several documents in one file are refused', () => {
    assert.equal(configError(() => parseSource('a: 1\n---\nb: 2\n', 'f.yaml', {})).line, 2);
  });

  test('an empty file is null, comments and all', () => {
    assert.equal(parseSource('# nothing here\n', 'f.yaml', {}).value, null);
  });
});

describe('environment expansion', () => {
  const env = { HOME: '/home/u', EMPTY: '', PORT: '2222', FLAG: 'true' };

  test('${VAR}, ${VAR:-default} and $$', () => {
    assert.equal(expandEnv('${HOME}/logs', env), '/home/u/logs');
    assert.equal(expandEnv('${NOPE:-/srv}', env), '/srv');
    assert.equal(expandEnv('${EMPTY:-fallback}', env), 'fallback', 'as in sh, :- also covers empty');
    assert.equal(expandEnv('${EMPTY}', env), '');
    assert.equal(expandEnv('${HOME:-x}', env), '/home/u');
    assert.equal(expandEnv('cost $$5 and $${HOME}', env), 'cost $5 and ${HOME}');
    assert.equal(expandEnv('$$$${HOME}', env), '$${HOME}');
    assert.equal(expandEnv('a $ alone and $HOME stay', env), 'a $ alone and $HOME stay');
    assert.equal(expandEnv('${NOPE:-}', env), '');
  });

  test('bad references are errors, not literal text', () => {
    assert.match((expandEnv('${NOPE}', env) as { error: string }).error, /NOPE is not set/);
    assert.match((expandEnv('${HOME', env) as { error: string }).error, /unterminated/);
    assert.match((expandEnv('${1X}', env) as { error: string }).error, /bad variable reference/);
    assert.match((expandEnv('${A:-${B}}', env) as { error: string }).error, /bad variable reference/);
    assert.match((expandEnv('${}', env) as { error: string }).error, /bad variable reference/);
  });

  test('values are expanded in place; unquoted ones take the type of what they expand to', () => {
    // Inside [ ] and { } YAML needs the reference quoted (a plain scalar cannot hold braces there).
    const doc = parseSource('port: ${PORT}\nquoted: "${PORT}"\nflag: ${FLAG}\nhome: ${HOME}\nlist:\n  - ${PORT:-1}\n  - x\n', 'f.yaml', env);
    assert.deepEqual(doc.value, { port: 2222, quoted: '2222', flag: true, home: '/home/u', list: [2222, 'x'] });
  });

  test('an expanded value is not expanded again, and keys stay literal', () => {
    const doc = parseSource('${HOME}: ${X}\n', 'f.yaml', { HOME: '/h', X: '${HOME}' });
    assert.deepEqual(doc.value, { '${HOME}': '${HOME}' });
  });

  test('an unset variable is an error at its line; all of them are reported', () => {
    const err = configError(() => parseSource('a: 1\nb: ${MISSING_ONE}\nc:\n  - "${MISSING_TWO}"\n', 'e.yaml', {}));
    assert.equal(err.line, 2);
    assert.match(err.message, /^e\.yaml:2: environment variable MISSING_ONE is not set/);
    assert.deepEqual(
      err.issues.map((i) => i.line),
      [2, 4],
    );
    assert.match(err.message, /\ne\.yaml:4: environment variable MISSING_TWO/);
  });

  test('JSON strings are expanded too', () => {
    assert.deepEqual(parseSource('{"dir": "${HOME}/x"}', 'f.json', env).value, { dir: '/home/u/x' });
  });
});

describe('validate', () => {
  const Schema = strictObject({
    name: z.string(),
    port: z.number().int().positive(),
    items: z.array(strictObject({ id: z.string(), size: z.number().optional() })),
    map: z.record(z.string().regex(/^[a-z]+$/, { error: 'lowercase names only' }), z.boolean()).optional(),
  });

  test('valid input passes through', () => {
    const doc = parseSource('name: x\nport: 22\nitems:\n  - id: a\n', 'f.yaml', {});
    assert.deepEqual(validate(doc, Schema), { name: 'x', port: 22, items: [{ id: 'a' }] });
  });

  test('a wrong type names the key path and its line', () => {
    const doc = parseSource('name: x\nport: 22\nitems:\n  - id: a\n  - id: b\n    size: big\n', 'cfg.yaml', {});
    const err = configError(() => validate(doc, Schema));
    assert.equal(err.line, 6);
    assert.equal(err.message, 'cfg.yaml:6: items[1].size: expected number, received string');
  });

  test('text written bare that YAML reads as a number or boolean: the error says how to quote it', () => {
    const err = configError(() => validate(parseSource('name: 1.10\nport: 22\nitems: []\n', 'cfg.yaml', {}), Schema));
    assert.equal(err.message, 'cfg.yaml:1: name: expected string, received number (YAML reads an unquoted 1.10 as a number, not as text: write "1.10" to mean the word)');
    const inList = configError(() => validate(parseSource('name: x\nport: 22\nitems:\n  - id: false\n', 'cfg.yaml', {}), Schema));
    assert.match(inList.message, /items\[0\]\.id: expected string, received boolean \(YAML reads an unquoted false as a boolean/);
    // Quoted, or not a string where one is wanted: nothing to add.
    assert.equal(configError(() => validate(parseSource('name: x\nport: "22"\nitems: []\n', 'cfg.yaml', {}), Schema)).message, 'cfg.yaml:2: port: expected number, received string');
    assert.doesNotMatch(configError(() => validate(parseSource('name: null\nport: 22\nitems: []\n', 'cfg.yaml', {}), Schema)).message, /YAML reads/);
  });

  test('an unknown key is named, at its own line, with the allowed keys', () => {
    const doc = parseSource('name: x\nport: 22\nitems:\n  - id: a\n    colour: red\n', 'cfg.yaml', {});
    const err = configError(() => validate(doc, Schema));
    assert.equal(err.message, 'cfg.yaml:5: items[0].colour: unknown key (allowed keys: id, size)');
  });

  test('unknown keys of a plain zod .strict() object are named too', () => {
    const doc = parseSource('a: 1\nb: 2\nc: 3\n', 'f.yaml', {});
    const err = configError(() => validate(doc, z.object({ a: z.number() }).strict()));
    assert.deepEqual(
      err.issues.map((i) => [i.line, i.detail]),
      [
        [2, 'b: unknown key'],
        [3, 'c: unknown key'],
      ],
    );
  });

  test('a missing key points at the nearest existing ancestor', () => {
    const doc = parseSource('name: x\nport: 22\nitems:\n  - size: 1\n', 'cfg.yaml', {});
    const err = configError(() => validate(doc, Schema));
    assert.equal(err.message, 'cfg.yaml:4: items[0].id: missing (expected string)');
  });

  test('an invalid record key gives its own message', () => {
    const doc = parseSource('name: x\nport: 1\nitems: []\nmap:\n  ok: true\n  Bad: true\n', 'cfg.yaml', {});
    assert.equal(configError(() => validate(doc, Schema)).message, 'cfg.yaml:6: map.Bad: invalid key: lowercase names only');
  });

  test('several problems come back together, in line order', () => {
    const doc = parseSource('port: -1\nitems:\n  - id: 1\nname: 5\n', 'cfg.yaml', {});
    const err = configError(() => validate(doc, Schema));
    assert.deepEqual(
      err.issues.map((i) => i.line),
      [1, 3, 4],
    );
    assert.equal(err.message.split('\n').length, 3);
  });

  test('an empty document fails as a whole', () => {
    const err = configError(() => validate(parseSource('', 'empty.yaml', {}), Schema));
    assert.equal(err.line, 1);
    assert.match(err.message, /^empty\.yaml:1: expected object, received null/);
  });

  test('renderPath quotes keys that are not identifiers', () => {
    assert.equal(renderPath(['policies', 'read_only', 'capabilities', 2, 'operation']), 'policies.read_only.capabilities[2].operation');
    assert.equal(renderPath(['policies', 'a.b', 0]), 'policies["a.b"][0]');
  });
});

describe('loadSourceFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'remux-source-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('reads a file and expands from the given environment', () => {
    const file = join(dir, 'a.yaml');
    writeFileSync(file, 'x: ${WHO:-nobody}\n');
    assert.deepEqual(loadSourceFile(file, { WHO: 'me' }).value, { x: 'me' });
    assert.deepEqual(loadSourceFile(file, {}).value, { x: 'nobody' });
  });

  test('a missing file is a ConfigError naming the file', () => {
    const file = join(dir, 'nope.yaml');
    const err = configError(() => loadSourceFile(file, {}));
    assert.equal(err.file, file);
    assert.equal(err.line, 0);
    assert.match(err.message, new RegExp(`^${file}: cannot read: .*ENOENT`));
  });

  test('binary garbage is a syntax error, not a crash', () => {
    const file = join(dir, 'bin.yaml');
    writeFileSync(file, Buffer.from([0x00, 0xff, 0x3a, 0x0a, 0x5b, 0x7b, 0x00, 0x0a]));
    configError(() => loadSourceFile(file, {}));
  });
});
