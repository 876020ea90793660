// The rendered string must mean exactly the given argv and redirections to real POSIX shells.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommand } from '../../src/command/parser.js';
import { quoteWord, renderCommandList } from '../../src/command/render.js';
import type { CommandList, Connector, Redirect, Stage } from '../../src/command/types.js';
import { Picker, seededRandom } from './support/corpus.js';
import { findProgram, run } from './support/shells.js';

const SHELLS = [
  ['sh', '/bin/sh'],
  ['bash', findProgram('bash')],
  ['dash', findProgram('dash')],
].filter((entry): entry is [string, string] => entry[1] !== null);

const stage = (argv: string[], ...redirects: Redirect[]): Stage => ({ argv, redirects, pos: 0 });
const sequence = (first: Stage[], ...rest: Array<[Connector, Stage[]]>): CommandList => ({
  items: [{ op: null, pipeline: { stages: first } }, ...rest.map(([op, stages]) => ({ op, pipeline: { stages } }))],
});
const write = (path: string, fd: 1 | 2 = 1, append = false): Redirect => ({ kind: 'write', fd, path, append, pos: 0 });
const read = (path: string): Redirect => ({ kind: 'read', fd: 0, path, pos: 0 });
const dup: Redirect = { kind: 'dup', fd: 2, to: 1, pos: 0 };

const HOSTILE_ARGV = [
  '', ' ', '  ', "'", '"', '\\', "''", '""', "\\'", "'\\''", 'it\'s "quoted"', 'a\'b"c\\d$e`f',
  '$HOME', '$(id)', '`id`', '${x}', '$((1))', "$'\\n'", '$', '\\$x', '*', '?', '[a]', '*.ts', '~', '~root',
  'a=~', '~/x', '!', '!!', '!$', '#', '#x', 'a#b', '-n', '-e', '-', '--', '--x=y', '=cmd', '%', '^', '^x',
  '\n', 'a\nb', '\r\n', '\t', '\\n', '\x01\x1b[0m\x7f', 'é', '中文', '😀', '\u00a0', '\u2028', 'e\u0301',
  '&&', '||', '|', ';', ';;', '&', '>', '>>', '<', '<<EOF', '2>&1', '(', ')', '{a,b}', '{}', 'if', 'time',
  'FOO=bar', 'a b c', 'x'.repeat(10_000),
];

function randomArgv(count: number): string[] {
  const p = new Picker(seededRandom(0x7e57));
  const alphabet = [
    ...Array.from({ length: 127 }, (_, k) => String.fromCharCode(k + 1)),
    'é', '😀', '中', '\u00a0', '\ufeff', '\u{10ffff}',
  ];
  return Array.from({ length: count }, () => p.chars(alphabet, p.int(12)));
}

/** What `printf '%s\0' ARGS…` writes. */
function nulJoined(args: string[]): Buffer {
  return Buffer.concat(args.map((a) => Buffer.from(`${a}\0`, 'utf8')));
}

describe('quoteWord', () => {
  test('leaves plain words bare and quotes everything else', () => {
    assert.equal(quoteWord('abc'), 'abc');
    assert.equal(quoteWord('-n'), '-n');
    assert.equal(quoteWord('./a/b.c,d:e@f%g+h=i'), './a/b.c,d:e@f%g+h=i');
    assert.equal(quoteWord(''), "''");
    assert.equal(quoteWord('a b'), "'a b'");
    assert.equal(quoteWord("it's"), "'it'\\''s'");
    assert.equal(quoteWord('=x'), "'=x'");
    assert.equal(quoteWord('~'), "'~'");
    assert.equal(quoteWord('a#b'), "'a#b'");
    assert.equal(quoteWord('é'), "'é'");
  });

  test('refuses what cannot be an argv element', () => {
    assert.throws(() => quoteWord('a\0b'), TypeError);
    assert.throws(() => quoteWord('\ud800'), TypeError);
    assert.throws(() => quoteWord('x\udc00'), TypeError);
    assert.equal(quoteWord('😀'), "'😀'");
  });
});

describe('renderCommandList', () => {
  test('quotes the command name always, arguments only when needed', () => {
    const list = sequence([stage(['if', 'x', '2'], write('f'), dup)], ['||', [stage(['FOO=bar'], read('in'))]]);
    assert.equal(renderCommandList(list), "'if' x 2 > f 2>&1 || 'FOO=bar' < in");
  });

  test("names: 'plain' leaves a name bare where remux's parser reads it back as that name", () => {
    const list = sequence([stage(['uname', '-r'])], ['&&', [stage(['if', 'x'])]], ['||', [stage(['FOO=bar'])]], [';', [stage(['a b'])]], [';', [stage(['~x'])]]);
    assert.equal(renderCommandList(list, 'plain'), "uname -r && 'if' x || 'FOO=bar' ; 'a b' ; '~x'");
  });

  test('refuses malformed lists', () => {
    assert.throws(() => renderCommandList({ items: [] }), TypeError);
    assert.throws(() => renderCommandList(sequence([stage([])])), TypeError);
    assert.throws(() => renderCommandList(sequence([stage(['a'], write(''))])), TypeError);
    assert.throws(() => renderCommandList({ items: [{ op: '&&', pipeline: { stages: [stage(['a'])] } }] }), TypeError);
    assert.throws(() => renderCommandList(sequence([stage(['a', 'b\0'])])), TypeError);
  });

  test('the strict parser reads the rendering back as the same list', () => {
    const args = [...HOSTILE_ARGV, ...randomArgv(300)].filter((a) => !/[\0-\x08\n-\x1f\x7f-\x9f]/.test(a));
    const list = sequence(
      [stage(['printf', ...args], write('o u t'), dup), stage(['x'], read('~in'))],
      [';', [stage(['y'], write('#', 2, true))]],
      ['&&', [stage(['time', '$x'])]],
    );
    const shape = (l: CommandList): unknown =>
      l.items.map((item) => ({ ...item, pipeline: { stages: item.pipeline.stages.map((s) => ({ ...s, pos: 0, redirects: s.redirects.map((r) => ({ ...r, pos: 0 })) })) } }));
    assert.deepEqual(shape(parseCommand(renderCommandList(list))), shape(list));
    // Every hostile word as a command name too, in both renderings.
    for (const names of ['quoted', 'plain'] as const) {
      const named = sequence([stage([args[0]!, 'x'])], ...args.slice(1).map((a): [Connector, Stage[]] => [';', [stage([a])]]));
      assert.deepEqual(shape(parseCommand(renderCommandList(named, names))), shape(named), names);
    }
  });
});

describe('round trip through real shells', () => {
  let dir = '';
  let emptyBin = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'remux-render-'));
    emptyBin = join(dir, '.empty-bin');
    mkdirSync(emptyBin);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const env = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C.UTF-8' });

  for (const [name, shell] of SHELLS) {
    test(`${name}: hostile argv reach printf byte for byte`, async () => {
      const args = [...HOSTILE_ARGV, ...randomArgv(500)];
      const rendered = renderCommandList(sequence([stage(['printf', '%s\\0', ...args])]));
      const result = await run(shell, ['-c', rendered], { cwd: dir, env: env() });
      assert.equal(result.stderr, '');
      assert.equal(result.code, 0);
      assert.ok(result.stdout.equals(nulJoined(args)), 'printf output differs from the argv');
    });

    test(`${name}: a command name is never a keyword or an assignment`, async () => {
      for (const word of ['if', 'time', '!', '{', 'FOO=bar', '[[']) {
        const rendered = renderCommandList(sequence([stage([word, 'x'])]));
        const result = await run(shell, ['-c', rendered], { cwd: dir, env: { PATH: emptyBin } });
        assert.equal(result.code, 127, `${rendered}: ${result.stderr}`);
      }
    });

    test(`${name}: connectors and pipes`, async () => {
      const list = sequence(
        [stage(['printf', '%s\\n', 'b', 'a']), stage(['sort'])],
        ['&&', [stage(['false'])]],
        ['||', [stage(['printf', '[%s]', 'x y'])]],
        [';', [stage(['printf', '%s', '$end'])]],
      );
      const result = await run(shell, ['-c', renderCommandList(list)], { cwd: dir, env: env() });
      assert.equal(result.stdout.toString('utf8'), 'a\nb\n[x y]$end');
    });

    test(`${name}: redirections to hostile file names`, async () => {
      const sub = join(dir, name);
      mkdirSync(sub);
      const names = ["it's $x", 'a b', 'é*', '-n', '~', '#x', '"q"', 'back\\slash', '2'];
      writeFileSync(join(sub, 'in put'), 'from stdin');
      const items: Array<[Connector, Stage[]]> = names.map((n) => [';', [stage(['printf', '%s', n], write(n))]]);
      const list = sequence(
        [stage(['printf', '%s', 'one'], write('app\'end', 1, true))],
        [';', [stage(['printf', '%s', 'two'], write('app\'end', 1, true))]],
        [';', [stage(['cat'], read('in put'), write('copy'))]],
        [';', [stage(['cat', 'missing $file'], write('err file', 2))]],
        [';', [stage(['cat', 'missing'], write('both'), dup)]],
        [';', [stage(['cat', 'missing'], dup, write('neither'))]],
        [';', [stage(['printf', '%s', 'over'], write('two fd', 2), write('two fd', 1, true))]],
        ...items,
      );
      const result = await run(shell, ['-c', renderCommandList(list)], { cwd: sub, env: env() });
      const file = (n: string): string => readFileSync(join(sub, n), 'utf8');
      assert.equal(file("app'end"), 'onetwo');
      assert.equal(file('copy'), 'from stdin');
      assert.match(file('err file'), /missing \$file/);
      assert.match(file('both'), /missing/);
      assert.equal(file('neither'), '');
      assert.match(result.stdout.toString('utf8'), /missing/, '2>&1 before > sends errors to the old stdout');
      assert.equal(file('two fd'), 'over');
      for (const n of names) assert.equal(file(n), n);
      const expected = ["app'end", 'in put', 'copy', 'err file', 'both', 'neither', 'two fd', ...names];
      assert.deepEqual(readdirSync(sub).sort(), expected.sort());
    });
  }
});
