// Options (and behaviours) that make a program reach paths that are not on its command line: the analysis
// must set sandboxOnly, naming the tool and the option, and leave it null for the harmless neighbours.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { analyzeArgv } from '../../src/command/analysis.js';

/** argv, and the reason it needs the sandbox (a pattern), or null when the static check is enough. */
type Case = [argv: string[], reason: RegExp | null];

function cases(title: string, list: Case[]): void {
  describe(title, () => {
    for (const [argv, reason] of list) {
      test(`${argv.join(' ')} → ${reason === null ? 'static check' : 'sandbox only'}`, () => {
        const r = analyzeArgv(argv);
        assert.equal(r.refusal, null, `unexpected refusal ${JSON.stringify(r.refusal)}`);
        if (reason === null) assert.equal(r.sandboxOnly, null);
        else assert.match(r.sandboxOnly ?? '(null)', reason);
      });
    }
  });
}

cases('grep family', [
  [['grep', '-R', 'root', '/tmp/d'], /^grep -R follows symlinks met while recursing$/],
  [['grep', '--dereference-recursive', 'root', '/tmp/d'], /^grep --dereference-recursive follows symlinks/],
  [['grep', '--derefer', 'root', '/tmp/d'], /^grep --dereference-recursive follows/], // getopt_long abbreviation
  [['grep', '-Rn', 'root', '/tmp/d'], /^grep -R follows/],
  [['grep', '-inR', 'root'], /^grep -R follows/],
  [['egrep', '-R', 'a|b', 'd'], /^egrep -R follows/],
  [['rgrep', '-R', 'x', 'd'], /^rgrep -R follows/],
  [['zgrep', '--dereference-recursive', 'x', 'f.gz'], /^zgrep --dereference-recursive follows/],
  [['rg', '-L', 'x'], /^rg -L follows symlinks met while recursing$/],
  [['rg', '--follow', 'x', 'src'], /^rg --follow follows/],
  // -r follows only command-line symlinks, which the policy resolves.
  [['grep', '-r', 'root', '/tmp/d'], null],
  [['grep', '-d', 'recurse', 'root', '/tmp/d'], null],
  [['rgrep', 'x', 'd'], null],
  [['rg', '-n', 'x', 'src'], null],
  // Option values and operands that look like -R.
  [['grep', '-e', '-R', 'd'], null],
  [['grep', '-rf', '-R', 'd'], null],
  [['grep', '--', '-R', 'd'], null],
  [['grep', '-r', '--include', '-R', 'x', 'd'], null],
]);

describe('grep family: paths', () => {
  test('rgrep is grep -r: it lists its operands, or the working directory', () => {
    assert.deepEqual(analyzeArgv(['rgrep', 'x']).lists, ['.']);
    assert.deepEqual(analyzeArgv(['rgrep', 'x', 'a', 'b']).lists, ['a', 'b']);
  });
  test('zgrep --dereference-recursive makes grep search the working directory, not its operands', () => {
    const r = analyzeArgv(['zgrep', '--dereference-recursive', 'x', 'f.gz']);
    assert.deepEqual(r.lists, ['f.gz', '.']);
    assert.ok(r.reads.includes('.'));
  });
});

cases('find', [
  [['find', '-L', '/tmp/d'], /^find -L follows symlinks$/],
  [['find', '-L', '-D', 'tree', '/tmp/d'], /^find -L follows/],
  [['find', '/tmp/d', '-follow'], /^find -follow follows symlinks$/],
  [['find', '/tmp/d', '-type', 'f', '-follow', '-print'], /^find -follow/],
  [['find', '/tmp/d', '-exec', 'cat', '{}', ';'], /^find -exec gives the files it finds to cat, which may follow those that are symlinks$/],
  [['find', '/tmp/d', '-name', '*.log', '-execdir', 'wc', '-l', '{}', '+'], /^find -execdir gives the files it finds to wc/],
  [['find', '/tmp/d', '-ok', 'grep', 'x', '{}', ';'], /^find -ok gives the files it finds to grep/],
  [['find', '.', '-exec', 'du', '-L', '/x', ';'], /^du -L follows/], // from the command find runs
  [['find', '-L', '.', '-exec', 'du', '-L', '{}', '+'], /^find -L/], // the first reason is kept
  // -H follows only the start points, which the policy resolves.
  [['find', '-H', '/tmp/d'], null],
  [['find', '-P', '/tmp/d'], null],
  [['find', '/tmp/d', '-xtype', 'l'], null],
  [['find', '/tmp/d', '-delete'], null],
  [['find', '.', '-name', '-follow'], null],
  [['find', '.', '-path', '-L'], null],
  [['find', '.', '-exec', 'echo', '{}', ';'], null], // echo reads no file
  [['find', '.', '-exec', 'cat', '/x', ';'], null],
]);

cases('listers', [
  [['du', '-L', '-a', '/tmp/d'], /^du -L follows symlinks met while recursing$/],
  [['du', '-aL', '/tmp/d'], /^du -L follows/],
  [['du', '--dereference', '/tmp/d'], /^du --dereference follows/],
  [['ls', '-L', '-R', '/tmp/d'], /^ls -L follows symlinks to their targets$/],
  [['ls', '-RL', '/tmp/d'], /^ls -L follows/],
  [['ls', '-lL', '/tmp/d'], /^ls -L follows/],
  [['ls', '--dereference', '/tmp/d'], /^ls --dereference follows/],
  // -H, -D, --dereference-args and ls -H follow only command-line symlinks, which the policy resolves.
  [['du', '-a', '/tmp/d'], null],
  [['du', '-H', '/tmp/d'], null],
  [['du', '-D', '/tmp/d'], null],
  [['du', '--dereference-args', '/tmp/d'], null],
  [['du', '--derefer', '/tmp/d'], null], // ambiguous (--dereference, --dereference-args): du refuses it
  [['du', '-X', '-L', '/tmp/d'], null],
  [['ls', '-la', '/tmp/d'], null],
  [['ls', '-R', '/tmp/d'], null],
  [['ls', '-H', '/tmp/d'], null],
  [['ls', '--dereference-command-line-symlink-to-dir', '/tmp/d'], null],
  [['ls', '-I', '-L', '/tmp/d'], null],
]);

cases('copying and archiving', [
  [['cp', '-r', 'src', '/tmp/d'], /^cp -r writes through symlinks it meets in an existing destination tree$/],
  [['cp', '-R', 'src', '/tmp/d'], /^cp -R writes/],
  [['cp', '-aL', 'src', '/tmp/d'], /^cp -a writes/],
  [['cp', '--archive', 'src', '/tmp/d'], /^cp --archive writes/],
  [['cp', '--recur', 'src', '/tmp/d'], /^cp --recursive writes/],
  [['cp', '-L', 'a', 'b'], null], // without -r, only the command-line symlinks, which the policy resolves
  [['cp', '-H', 'a', 'b'], null],
  [['cp', 'a', 'b'], null],
  [['cp', '-S', '-r', 'a', 'b'], null], // -S takes the suffix "-r"
  [['scp', '-r', 'host:dir', '/tmp/d'], /^scp -r follows symlinks met while recursing$/],
  [['scp', 'a', 'host:'], null],
  [['tar', '-chf', 'a.tar', '/tmp/d'], /^tar -h archives the targets of symlinks$/],
  [['tar', 'chf', 'a.tar', '/tmp/d'], /^tar -h archives/], // old-style letters
  [['tar', '--dereference', '-cf', 'a.tar', '/tmp/d'], /^tar --dereference archives/],
  [['tar', '--deref', '-cf', 'a.tar', '/tmp/d'], /^tar --dereference archives/],
  [['tar', '-xf', 'a.tar', '-C', '/tmp/d'], /^tar -x writes through symlinks to directories in the destination$/],
  [['tar', '--extract', '--keep-directory-symlink', '-f', 'a.tar'], /^tar -x writes/],
  [['tar', '-df', 'a.tar', '-C', '/tmp/d'], /^tar -d reads the files that the archive names, through symlinks/],
  [['tar', '-cf', 'a.tar', '/tmp/d'], null],
  [['tar', '-cf', '-h', '/tmp/d'], null], // an archive named -h
  [['tar', '-tvf', 'a.tar'], null],
  [['tar', '-xOf', 'a.tar', 'member'], null], // to stdout: nothing is written
  [['rsync', '-aL', 'src/', 'dst/'], /^rsync -L copies the targets of symlinks$/],
  [['rsync', '--copy-links', 'src/', 'dst/'], /^rsync --copy-links copies/],
  [['rsync', '-ak', 'src/', 'dst/'], /^rsync -k copies the directories that symlinks point to$/],
  [['rsync', '--copy-dirlinks', 'src/', 'dst/'], /^rsync --copy-dirlinks copies/],
  [['rsync', '-a', '--copy-unsafe-links', 'src/', 'dst/'], /^rsync --copy-unsafe-links copies the targets of symlinks that point outside the tree$/],
  [['rsync', '-aK', 'src/', 'dst/'], /^rsync -K writes through symlinks to directories in the destination$/],
  [['rsync', '--keep-dirlinks', 'src/', 'host:dst/'], /^rsync --keep-dirlinks writes/],
  [['rsync', '-a', 'src/', 'dst/'], null],
  [['rsync', '-a', '--safe-links', 'src/', 'dst/'], null],
  [['rsync', '-B', '-L', 'src/', 'dst/'], null], // -B takes the block size
  [['git', 'apply', '--unsafe-paths', 'p.diff'], /^git apply --unsafe-paths writes the paths that the patch names/],
  [['git', 'apply', '--unsafe', 'p.diff'], /^git apply --unsafe-paths/],
  [['git', 'apply', '--check', 'p.diff'], null],
]);

cases('changing modes and owners', [
  [['chown', '-R', '-L', 'u', '/tmp/d'], /^chown -L follows symlinks met while recursing$/],
  [['chown', '-RH', 'u', '/tmp/d'], /^chown -H changes the targets of symlinks met while recursing$/],
  [['chown', '--recursive', '-L', 'u', '/tmp/d'], /^chown -L follows/],
  [['chgrp', '-LR', 'adm', '/tmp/d'], /^chgrp -L follows/],
  [['chmod', '-R', '-L', '644', '/tmp/d'], /^chmod -L follows/],
  [['chown', '-L', 'u', '/tmp/d'], null], // no effect without -R
  [['chown', '-H', 'u', 'f'], null],
  [['chown', '-R', 'u', '/tmp/d'], null], // changes the links themselves
  [['chown', '-R', '-P', 'u', '/tmp/d'], null],
  [['chmod', '-R', 'go-w', '/tmp/d'], null],
]);

cases('compressors', [
  [['gzip', '-rf', '/tmp/d'], /^gzip -f follows symlinks met while recursing$/],
  [['gzip', '--recursive', '--force', '/tmp/d'], /^gzip --force follows/],
  [['gunzip', '-r', '-f', '/tmp/d'], /^gunzip -f follows/],
  [['zstd', '-r', '-f', '/tmp/d'], /^zstd -f follows/],
  [['gzip', '-r', '/tmp/d'], null], // skips symlinks
  [['gzip', '-f', 'f'], null],
  [['zstd', '-r', '/tmp/d'], null],
  [['zstd', '-f', 'f'], null],
]);

cases('comparing, splitting, paging', [
  [['diff', '-r', 'a', 'b'], /^diff follows symlinks inside directory operands \(unless --no-dereference\)$/],
  [['diff', 'a', 'b'], /^diff follows symlinks inside directory operands/], // directories compare their files
  [['diff', '-r', '--no-dereference', 'a', 'b'], null],
  [['diff', '--no-deref', 'a', 'b'], null],
  [['cmp', 'a', 'b'], null],
  [['split', '-l', '10', 'f', 'part_'], /^split writes its output files through symlinks of the same names$/],
  [['csplit', 'f', '10'], /^csplit writes its output files/],
  [['less', '-t', 'main'], /^less -t opens the file that a tags file names$/],
  [['less', '--tag=main'], /^less --tag opens/],
  [['less', '-T', 'tags', 'f'], null],
  [['less', '-N', 'f'], null],
  // Writes magic.mgc (or NAME.mgc) where it runs: a write the command line never names.
  [['file', '-C', '-m', '/tmp/magic'], /^file -C writes a compiled magic file into the working directory/],
  [['file', '--compile'], /^file --compile writes/],
  [['file', '-zC', '-m', '/tmp/magic'], /^file -C writes/],
  [['file', '-z', '-m', '/tmp/magic', 'f'], null],
]);

cases('through wrappers', [
  [['env', 'LANG=C', 'grep', '-R', 'x', '/tmp/d'], /^grep -R follows/],
  [['timeout', '5', 'nice', '-n', '5', 'du', '-L', '/tmp/d'], /^du -L follows/],
  [['sudo', '-u', 'root', 'find', '-L', '/'], /^find -L follows/],
  [['nohup', 'stdbuf', '-oL', 'ls', '-RL', '/tmp/d'], /^ls -L follows/],
  [['flock', '/tmp/l', 'tar', '-chf', 'a.tar', 'd'], /^tar -h archives/],
  [['busybox', 'grep', '-R', 'x', 'd'], /^grep -R follows/],
  [['/usr/bin/env', '/usr/bin/rsync', '-aL', 'a', 'b'], /^rsync -L copies/],
  [['find', '.', '-exec', 'timeout', '5', 'grep', '-R', 'x', '/y', ';'], /^grep -R follows/],
  [['env', 'grep', '-r', 'x', '/tmp/d'], null],
  [['timeout', '-s', 'KILL', '5', 'du', '-sh', '/tmp/d'], null],
  [['grep', '-R', '--dereference-recursive', 'x', 'd'], /^grep -R follows/], // the first reason is kept
]);
