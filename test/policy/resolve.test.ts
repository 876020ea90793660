import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createLocalResolver, localResolver, ResolveError } from '../../src/policy/resolve.js';

const root = realpathSync(mkdtempSync(join(tmpdir(), 'remux-resolve-')));
after(() => rmSync(root, { recursive: true, force: true }));
const at = (p: string): string => join(root, p);

mkdirSync(at('a/b'), { recursive: true });
writeFileSync(at('a/b/file'), 'x');
symlinkSync(at('a/b'), at('a/to-b'));
symlinkSync('b/file', at('a/rel-link'));
symlinkSync(at('nowhere/new'), at('a/dangling'));
symlinkSync('dangling', at('a/to-dangling'));
symlinkSync('loop-b', at('a/loop-a'));
symlinkSync('loop-a', at('a/loop-b'));
symlinkSync('/', at('a/to-root'));

describe('realpath', () => {
  const { realpath } = localResolver;

  test('existing paths resolve through symlinks', () => {
    assert.equal(realpath(at('a/to-b/file'), '/'), at('a/b/file'));
    assert.equal(realpath(at('a/rel-link'), '/'), at('a/b/file'));
    assert.equal(realpath(at('a/to-root/etc'), '/'), '/etc');
  });

  test('relative paths are taken against cwd, which does not need to be the process cwd', () => {
    assert.equal(realpath('file', at('a/b')), at('a/b/file'));
    assert.equal(realpath('./b/../b/file', at('a')), at('a/b/file'));
    assert.equal(realpath('.', at('a/to-b')), at('a/b'));
  });

  test('.. applies after a symlink is followed, as in the kernel', () => {
    // a/to-b -> a/b, so a/to-b/.. is a; and a/to-root/.. is / (not a).
    // Built as strings: path.join would itself normalise the .. away, lexically.
    assert.equal(realpath(`${root}/a/to-b/../rel-link`, '/'), at('a/b/file'));
    assert.equal(realpath(`${root}/a/to-root/../etc`, '/'), '/etc');
    assert.equal(realpath(`${root}/a/to-root/../nonexistent-remux/x`, '/'), '/nonexistent-remux/x');
  });

  test('a missing tail is appended to the real existing prefix', () => {
    assert.equal(realpath(at('a/to-b/new/deeper'), '/'), at('a/b/new/deeper'));
    assert.equal(realpath(`${root}/a/to-b/new/../other`, '/'), at('a/b/other'));
    assert.equal(realpath(at('a/b/file/below'), '/'), at('a/b/file/below'), 'a path through a file');
  });

  test('dangling symlinks resolve to their target, also through a chain', () => {
    assert.equal(realpath(at('a/dangling'), '/'), at('nowhere/new'));
    assert.equal(realpath(at('a/to-dangling'), '/'), at('nowhere/new'));
    assert.equal(realpath(at('a/dangling/x'), '/'), at('nowhere/new/x'));
  });

  test('symlink loops throw ResolveError', () => {
    assert.throws(() => realpath(at('a/loop-a'), '/'), ResolveError);
    assert.throws(() => realpath(at('a/loop-a/x/y'), '/'), /too many symlinks/);
  });

  test('NUL bytes, over-long paths and relative cwds throw ResolveError', () => {
    assert.throws(() => realpath('/etc/\0passwd', '/'), /NUL/);
    assert.throws(() => realpath(`/${'x'.repeat(5000)}`, '/'), /path too long/);
    assert.throws(() => realpath(`/${'é'.repeat(2100)}`, '/'), /path too long/, 'PATH_MAX counts bytes');
    assert.throws(() => realpath('x', 'relative/dir'), /not absolute/);
  });

  test("paths into the resolving process's own /proc entry are refused: they would name remux's, not the program's", () => {
    symlinkSync('/proc/self/cwd', at('a/to-self-cwd'));
    for (const path of ['/proc/self/cwd/key', '/proc/self/status', '/proc/thread-self/environ', '/dev/stdin', '/dev/fd/0', '/dev/stderr', `/proc/${process.pid}/environ`, at('a/to-self-cwd/key'), '/proc/self']) {
      assert.throws(() => realpath(path, '/'), /own \/proc entry .*remux cannot check before the program runs/, path);
    }
    assert.throws(() => realpath('cwd/x', '/proc/self'), /own \/proc entry/, 'relative to such a cwd too');
    // Another process's entry names the same thing for remux and for the program.
    assert.equal(realpath('/proc/1/status', '/'), '/proc/1/status');
    assert.equal(realpath('/dev/null', '/'), '/dev/null');
  });

  test('the root and normal forms', () => {
    assert.equal(realpath('/', '/'), '/');
    assert.equal(realpath('//etc//', '/'), '/etc');
    assert.equal(realpath('/nonexistent-remux-dir//x/', '/'), '/nonexistent-remux-dir/x');
  });
});

describe('which', () => {
  const bin1 = at('bin1');
  const bin2 = at('bin2');
  mkdirSync(bin1);
  mkdirSync(bin2);
  writeFileSync(join(bin1, 'noexec'), '');
  writeFileSync(join(bin2, 'noexec'), '');
  chmodSync(join(bin2, 'noexec'), 0o755);
  mkdirSync(join(bin1, 'adir'));
  writeFileSync(join(bin2, 'tool'), '');
  chmodSync(join(bin2, 'tool'), 0o755);
  symlinkSync(join(bin2, 'tool'), join(bin1, 'alias'));
  const resolver = createLocalResolver({ securePath: `${bin1}:${bin2}:relative/ignored`, whichTtlMs: 0 });

  test('finds executables in secure PATH order, resolved', () => {
    assert.equal(resolver.which('tool'), join(bin2, 'tool'));
    assert.equal(resolver.which('alias'), join(bin2, 'tool'));
  });

  test('skips non-executable files and directories', () => {
    assert.equal(resolver.which('noexec'), join(bin2, 'noexec'));
    assert.equal(resolver.which('adir'), null);
  });

  test('never looks at the caller PATH, and refuses names that are paths', () => {
    const saved = process.env.PATH;
    process.env.PATH = bin2;
    try {
      assert.equal(createLocalResolver({ securePath: bin1, whichTtlMs: 0 }).which('tool'), null);
    } finally {
      process.env.PATH = saved;
    }
    for (const name of ['', '.', '..', 'bin2/tool', '../bin2/tool', 'to\0ol']) assert.equal(resolver.which(name), null, name);
  });

  test('the default secure PATH finds system programs', () => {
    assert.match(localResolver.which('sh') ?? '', /^\/(usr\/)?bin\//);
    assert.equal(localResolver.which('surely-not-a-program-remux'), null);
  });

  test('with a TTL the answer is reused; with 0 a swap is seen at once', () => {
    const cached = createLocalResolver({ securePath: bin1, whichTtlMs: 60_000 });
    const fresh = createLocalResolver({ securePath: bin1, whichTtlMs: 0 });
    writeFileSync(join(bin1, 'swap'), '');
    chmodSync(join(bin1, 'swap'), 0o755);
    assert.equal(cached.which('swap'), join(bin1, 'swap'));
    unlinkSync(join(bin1, 'swap'));
    symlinkSync(join(bin2, 'tool'), join(bin1, 'swap'));
    assert.equal(cached.which('swap'), join(bin1, 'swap'), 'within the TTL');
    assert.equal(fresh.which('swap'), join(bin2, 'tool'));
  });
});
