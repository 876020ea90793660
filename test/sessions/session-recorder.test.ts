// Reading tmux control mode for the session recorder: tmux's octal escapes undone byte for byte, lines
// split anywhere across chunks, the terminal's \r dropped, a command's answer (between %begin and %end)
// never taken for output, layout changes as sizes, %exit as the end; and the recorder's fixed argv.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ControlParser, recorderArgv, unescapeOutput, type ControlLine } from '../../src/sessions/session-recorder.js';

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

  test('a layout change is a size; %exit the end; other notifications nothing', () => {
    assert.deepEqual(lines(['%layout-change @0 a29d,90x20,0,0,0 a29d,90x20,0,0,0 *\n%session-changed $0 x\n%exit\n']), [
      { kind: 'size', cols: 90, rows: 20 },
      { kind: 'other' },
      { kind: 'exit' },
    ]);
  });

  test('the recorder is a read-only control client that ignores size, as the session\'s tmux user', () => {
    assert.deepEqual(recorderArgv({ loginUser: 'ops', user: 'ops', socket: null }, 'build'), ['tmux', '-C', 'attach-session', '-r', '-f', 'ignore-size', '-t', '=build']);
    assert.deepEqual(recorderArgv({ loginUser: 'ops', user: 'deploy', socket: { kind: 'name', name: 'w' } }, '-x'), ['sudo', '-n', '-u', 'deploy', 'tmux', '-L', 'w', '-C', 'attach-session', '-r', '-f', 'ignore-size', '-t', '=-x']);
  });
});
