import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommand } from '../../src/command/parser.js';
import { ParseError } from '../../src/command/types.js';
import type { CommandList, Connector, Pipeline, Redirect, Stage } from '../../src/command/types.js';

const stage = (pos: number, argv: string[], ...redirects: Redirect[]): Stage => ({ argv, redirects, pos });
const pipe = (...stages: Stage[]): Pipeline => ({ stages });
const list = (first: Pipeline, ...rest: Array<[Connector, Pipeline]>): CommandList => ({
  items: [{ op: null, pipeline: first }, ...rest.map(([op, pipeline]) => ({ op, pipeline }))],
});
const simple = (pos: number, argv: string[], ...redirects: Redirect[]): CommandList =>
  list(pipe(stage(pos, argv, ...redirects)));
const read = (pos: number, path: string): Redirect => ({ kind: 'read', fd: 0, path, pos });
const write = (pos: number, path: string, fd: 1 | 2 = 1, append = false): Redirect => ({ kind: 'write', fd, path, append, pos });
const dup = (pos: number): Redirect => ({ kind: 'dup', fd: 2, to: 1, pos });

function rejection(source: string): { construct: string; position: number } {
  try {
    parseCommand(source);
  } catch (error) {
    if (error instanceof ParseError) return { construct: error.construct, position: error.position };
    throw error;
  }
  assert.fail(`accepted ${JSON.stringify(source)}`);
}

describe('parseCommand accepts', () => {
  const cases: Array<[string, CommandList]> = [
    ['ls', simple(0, ['ls'])],
    ['  ls  -la\t/tmp ', simple(2, ['ls', '-la', '/tmp'])],
    [`echo 'a b' "c d" e\\ f`, simple(0, ['echo', 'a b', 'c d', 'e f'])],
    [`echo '' "" ''""`, simple(0, ['echo', '', '', ''])],
    ['echo "a\\"b\\\\c\\$d\\`e\\x\\!"', simple(0, ['echo', 'a"b\\c$d`e\\x\\!'])],
    [`echo 'it'\\''s' "it's" 'say "hi"'`, simple(0, ['echo', "it's", "it's", 'say "hi"'])],
    [`echo a"b"'c'\\d`, simple(0, ['echo', 'abcd'])],
    [`echo '$HOME' "\\$HOME" \\$HOME '\`id\`' \\*`, simple(0, ['echo', '$HOME', '$HOME', '$HOME', '`id`', '*'])],
    [`echo "a|b&&c;d>e<f(g)" 'h{i,j}~#!'`, simple(0, ['echo', 'a|b&&c;d>e<f(g)', 'h{i,j}~#!'])],
    ['echo \\\'', simple(0, ['echo', "'"])],
    ['echo \\\t\\ ', simple(0, ['echo', '\t '])],
    ['echo "\ta"', simple(0, ['echo', '\ta'])],
    ['echo é 中文 😀 \u00a0', simple(0, ['echo', 'é', '中文', '😀', '\u00a0'])],
    ['\\😀', simple(0, ['😀'])],
    ['git show HEAD~1 a~', simple(0, ['git', 'show', 'HEAD~1', 'a~'])],
    ['echo a#b ] x]', simple(0, ['echo', 'a#b', ']', 'x]'])],
    ['echo a=b --opt=val', simple(0, ['echo', 'a=b', '--opt=val'])],
    [`'FOO=bar' x`, simple(0, ['FOO=bar', 'x'])],
    [`\\FOO=bar`, simple(0, ['FOO=bar'])],
    [`a-b=c`, simple(0, ['a-b=c'])],
    [`"if" x`, simple(0, ['if', 'x'])],
    ['\\time ls', simple(0, ['time', 'ls'])],
    ['ls if then', simple(0, ['ls', 'if', 'then'])],
    [`find . -name '*.ts' -exec grep -l x '{}' +`, simple(0, ['find', '.', '-name', '*.ts', '-exec', 'grep', '-l', 'x', '{}', '+'])],
    ['a|b', list(pipe(stage(0, ['a']), stage(2, ['b'])))],
    ['a | b |c', list(pipe(stage(0, ['a']), stage(4, ['b']), stage(7, ['c'])))],
    ['a && b || c ; d', list(pipe(stage(0, ['a'])), ['&&', pipe(stage(5, ['b']))], ['||', pipe(stage(10, ['c']))], [';', pipe(stage(14, ['d']))])],
    ['a&&b||c;d', list(pipe(stage(0, ['a'])), ['&&', pipe(stage(3, ['b']))], ['||', pipe(stage(6, ['c']))], [';', pipe(stage(8, ['d']))])],
    ['a;', simple(0, ['a'])],
    ['a ; b; \t', list(pipe(stage(0, ['a'])), [';', pipe(stage(4, ['b']))])],
    ['cat < in > out 2>&1', simple(0, ['cat'], read(4, 'in'), write(9, 'out'), dup(15))],
    ['>out cmd arg 2>>err', simple(0, ['cmd', 'arg'], write(0, 'out'), write(13, 'err', 2, true))],
    ['cmd 1>a 1>>b 2>c 2>>d >>e', simple(0, ['cmd'], write(4, 'a'), write(8, 'b', 1, true), write(13, 'c', 2), write(17, 'd', 2, true), write(22, 'e', 1, true))],
    ['cmd 2>&1 | grep x', list(pipe(stage(0, ['cmd'], dup(4)), stage(11, ['grep', 'x'])))],
    ['a 2>&1>f', simple(0, ['a'], dup(2), write(6, 'f'))],
    ['a 2>&1;b', list(pipe(stage(0, ['a'], dup(2))), [';', pipe(stage(7, ['b']))])],
    ['echo a2>f', simple(0, ['echo', 'a2'], write(7, 'f'))],
    [`echo '2'>f \\2>g`, simple(0, ['echo', '2', '2'], write(8, 'f'), write(13, 'g'))],
    ['echo 2 >f', simple(0, ['echo', '2'], write(7, 'f'))],
    ['echo 12 x>f', simple(0, ['echo', '12', 'x'], write(9, 'f'))],
    [`echo >'my file' <\t"in put"`, simple(0, ['echo'], write(5, 'my file'), read(16, 'in put'))],
    ['echo >a~ <"~"', simple(0, ['echo'], write(5, 'a~'), read(9, '~'))],
    ['echo x>f|y<g', list(pipe(stage(0, ['echo', 'x'], write(6, 'f')), stage(9, ['y'], read(10, 'g'))))],
    [`''`, simple(0, [''])],
    [`'' a`, simple(0, ['', 'a'])],
  ];
  for (const [source, expected] of cases) {
    test(JSON.stringify(source), () => assert.deepEqual(parseCommand(source), expected));
  }
});

describe('parseCommand rejects', () => {
  const cases: Array<[string, string, number]> = [
    ['', 'empty command', 0],
    ['   ', 'empty command', 3],
    ['$HOME', 'parameter expansion $NAME', 0],
    ['echo ${x}', 'parameter expansion ${…}', 5],
    ['echo $(id)', 'command substitution $(…)', 5],
    ['echo $((1+2))', 'arithmetic expansion $((…))', 5],
    ["echo $'a'", "ANSI-C quoting $'…'", 5],
    ['echo $"a"', 'locale translation $"…"', 5],
    ['echo $? $1', 'special parameter $?', 5],
    ['echo $1', 'special parameter $1', 5],
    ['echo a$', 'dollar sign $', 6],
    ['echo "$x"', 'parameter expansion $NAME', 6],
    ['echo "a$(id)"', 'command substitution $(…)', 7],
    ['echo "${x}"', 'parameter expansion ${…}', 6],
    ['echo "$"', 'dollar sign $', 6],
    ['echo "a`id`"', 'command substitution `…`', 7],
    ['echo `id`', 'command substitution `…`', 5],
    ['ls *.ts', 'unquoted glob *', 3],
    ['ls a?', 'unquoted glob ?', 4],
    ['ls [ab]', 'unquoted glob [', 3],
    ['[[ -f x ]]', 'unquoted glob [', 0],
    ['ls ~', 'tilde expansion ~', 3],
    ['ls ~/x', 'tilde expansion ~', 3],
    ['ls a=~', 'tilde expansion ~', 5],
    ['ls a:~', 'tilde expansion ~', 5],
    ['ls "a"~', 'tilde expansion ~', 6],
    ['ls >~', 'tilde expansion ~', 4],
    ['sleep 1 &', 'background &', 8],
    ['a & b', 'background &', 2],
    ['a &&& b', 'background &', 4],
    ['(ls)', 'subshell (', 0],
    ['ls )', 'subshell )', 3],
    ['f() x', 'subshell (', 1],
    ['echo a{b,c}', 'unquoted brace {', 6],
    ['{ ls; }', 'unquoted brace {', 0],
    ['echo }', 'unquoted brace }', 5],
    ['find -exec x {} +', 'unquoted brace {', 13],
    ['cat <<EOF', 'here-document <<', 4],
    ['cat <<<x', 'here-string <<<', 4],
    ['diff <(a) b', 'process substitution <(…)', 5],
    ['tee >(a)', 'process substitution >(…)', 4],
    ['echo 2>(a)', 'process substitution >(…)', 5],
    ['echo >|f', 'clobber redirection >|', 5],
    ['echo &>f', 'redirection &>', 5],
    ['echo &>>f', 'redirection &>', 5],
    ['echo >&2', 'file descriptor duplication >&', 5],
    ['echo 1>&2', 'file descriptor duplication >&', 5],
    ['echo 2>&1x', 'file descriptor duplication >&', 5],
    ['echo 2>&12', 'file descriptor duplication >&', 5],
    ['echo 2>&-', 'file descriptor duplication >&', 5],
    ['echo a2>&1', 'file descriptor duplication >&', 7],
    ['echo 2>>&1', 'missing redirection target', 8],
    ['echo 3>f', 'redirection of file descriptor 3', 5],
    ['echo 10>f', 'redirection of file descriptor 10', 5],
    ['echo 02>f', 'redirection of file descriptor 02', 5],
    ['cat 0<f', 'redirection of file descriptor 0', 4],
    ['cat 2<f', 'redirection of file descriptor 2', 4],
    ['cat <>f', 'read-write redirection <>', 4],
    ['cat <&0', 'file descriptor duplication <&', 4],
    ['echo a\nb', 'newline', 6],
    ['echo a\rb', 'carriage return', 6],
    ['echo a\0b', 'NUL byte', 6],
    ["echo 'a\nb'", 'newline', 7],
    ['echo "a\nb"', 'newline', 7],
    ['echo "a\\\nb"', 'newline', 8],
    ['echo a\\\nb', 'newline', 7],
    ['echo \x1b[0m', 'control character U+001B', 5],
    ['echo \x7f', 'control character U+007F', 5],
    ['echo \x85', 'control character U+0085', 5],
    ["echo '\x9f'", 'control character U+009F', 6],
    ['echo \\\x01', 'control character U+0001', 6],
    ['ls #c', 'comment #', 3],
    ['#c', 'comment #', 0],
    ['ls;#c', 'comment #', 3],
    ['ls >#f', 'comment #', 4],
    ['! ls', 'unquoted !', 0],
    ['echo a!b', 'unquoted !', 6],
    ['FOO=bar cmd', 'variable assignment', 0],
    ['FOO=', 'variable assignment', 0],
    ['>f FOO=bar cmd', 'variable assignment', 3],
    ['a+=1 cmd', 'variable assignment', 0],
    ['_x1="q" cmd', 'variable assignment', 0],
    ['a | B=1', 'variable assignment', 4],
    ['if true', 'reserved word if', 0],
    ['time ls', 'reserved word time', 0],
    ['ls && while x', 'reserved word while', 6],
    ['>f coproc x', 'reserved word coproc', 3],
    [']] x', 'reserved word ]]', 0],
    ['in', 'reserved word in', 0],
    ['a | | b', 'empty command', 4],
    ['| a', 'empty command', 0],
    ['a |', 'empty command', 3],
    ['a | ', 'empty command', 4],
    ['a &&', 'empty command', 4],
    ['a || ', 'empty command', 5],
    ['a && ; b', 'empty command', 5],
    ['; a', 'empty command', 0],
    [';', 'empty command', 0],
    ['a ; ; b', 'empty command', 4],
    ['a ;; b', 'case terminator ;;', 2],
    ['a ;& b', 'case terminator ;&', 2],
    ['a |& b', 'pipe |&', 2],
    ['> f', 'redirection without a command', 0],
    ['a | 2>&1', 'redirection without a command', 4],
    ['echo >', 'missing redirection target', 6],
    ['echo > | a', 'missing redirection target', 7],
    ['echo < <f', 'missing redirection target', 7],
    ['echo > 2>f', 'missing redirection target', 7],
    ['echo > (x)', 'missing redirection target', 7],
    ["echo > ''", 'empty redirection target', 7],
    ["echo 'abc", 'unterminated single quote', 5],
    ['echo "abc', 'unterminated double quote', 5],
    ['echo "a\\"', 'unterminated double quote', 5],
    [`echo 'a' "b' c`, 'unterminated double quote', 9],
    ['echo a\\', 'trailing backslash', 6],
    ['echo \ud800', 'unpaired UTF-16 surrogate', 5],
    ['echo \udc00x', 'unpaired UTF-16 surrogate', 5],
    ["echo '\ud83d'", 'unpaired UTF-16 surrogate', 6],
    ['echo \\\ud83d', 'unpaired UTF-16 surrogate', 6],
  ];
  for (const [source, construct, position] of cases) {
    test(JSON.stringify(source), () => assert.deepEqual(rejection(source), { construct, position }));
  }

  test('messages name the construct and a 1-based column', () => {
    assert.throws(() => parseCommand('echo "$(id)"'), {
      name: 'ParseError',
      message: 'command substitution $(…) is not allowed (at column 7)',
    });
    assert.throws(() => parseCommand("ls 'x"), { message: 'unterminated single quote (at column 4)' });
    assert.throws(() => parseCommand('a |'), { message: 'empty command (at column 4)' });
  });
});

describe('hostile input', () => {
  const MB = 1 << 20;

  test('1 MB word and 1 MB of pipes are parsed quickly', () => {
    const started = performance.now();
    const word = 'a'.repeat(MB);
    assert.deepEqual(parseCommand(`echo ${word}`), simple(0, ['echo', word]));
    const stages = parseCommand('a | '.repeat(MB / 4) + 'a').items[0]?.pipeline.stages;
    assert.equal(stages?.length, MB / 4 + 1);
    const items = parseCommand('a && '.repeat(MB / 5) + 'a').items;
    assert.equal(items.length, Math.floor(MB / 5) + 1);
    assert.deepEqual(parseCommand(`x ${"''".repeat(MB / 2)}`), simple(0, ['x', '']));
    assert.deepEqual(parseCommand(`x "${'\\"'.repeat(MB / 2)}"`), simple(0, ['x', '"'.repeat(MB / 2)]));
    // About 1 s here, 6 s beside the rest of the suite; work quadratic in 1 MB would take many minutes.
    assert.ok(performance.now() - started < 30_000, 'hostile 1 MB inputs took too long');
  });

  test('1 MB of nesting attempts fails at the first construct', () => {
    const cases: Array<[string, string, number]> = [
      ['('.repeat(MB), 'subshell (', 0],
      ['$('.repeat(MB / 2), 'command substitution $(…)', 0],
      [`x ${'{'.repeat(MB)}`, 'unquoted brace {', 2],
      ['`'.repeat(MB), 'command substitution `…`', 0],
      [`x "${'$('.repeat(MB / 2)}`, 'command substitution $(…)', 3],
      [`x '${'x'.repeat(MB)}`, 'unterminated single quote', 2],
      [`x "${'\\"'.repeat(MB / 2)}`, 'unterminated double quote', 2],
      [`x ${'a'.repeat(MB)}\n`, 'newline', MB + 2],
      ['|'.repeat(MB), 'empty command', 0],
      [`x ${'>'.repeat(MB)}`, 'missing redirection target', 4],
    ];
    for (const [source, construct, position] of cases) assert.deepEqual(rejection(source), { construct, position });
  });

  test('every Latin-1 byte inside a word', () => {
    for (let b = 0; b < 256; b++) {
      const ch = String.fromCharCode(b);
      const source = `echo x${ch}y`;
      if (b >= 0xa0 || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39)) {
        assert.deepEqual(parseCommand(source).items[0]?.pipeline.stages[0]?.argv, ['echo', `x${ch}y`], `byte ${b}`);
      } else if (b < 0x20 ? b !== 9 : b === 0x7f || (b >= 0x80 && b <= 0x9f)) {
        assert.equal(rejection(source).position, 6, `byte ${b}`);
      } else {
        // Punctuation: either a literal or a named rejection at a position inside the string.
        try {
          parseCommand(source);
        } catch (error) {
          assert.ok(error instanceof ParseError, `byte ${b}`);
          assert.ok(error.position >= 5 && error.position <= source.length, `byte ${b}`);
        }
      }
    }
  });

  test('random binary strings never throw anything but ParseError', () => {
    let seed = 7;
    const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    for (let k = 0; k < 2000; k++) {
      const bytes = Buffer.from(Array.from({ length: next() % 64 }, () => next() >>> 24));
      for (const source of [bytes.toString('latin1'), bytes.toString('utf8'), bytes.toString('utf16le')]) {
        try {
          parseCommand(source);
        } catch (error) {
          assert.ok(error instanceof ParseError);
          assert.ok(error.position >= 0 && error.position <= source.length);
        }
      }
    }
  });
});
