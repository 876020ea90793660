import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, test } from 'node:test';
import { analyzeArgv, mkfsPasses, PROC_ENVIRON, psPrintsEnvironments } from '../../src/command/analysis.js';
import { lookupTool } from '../../src/command/tools.js';
import { findProgram } from './support/shells.js';

/**
 * One case: argv and what the analysis must say. For an allowed command every list is compared exactly
 * (unlisted ones must be empty), binaries default to [argv[0]] and sandboxOnly must be null unless given.
 * For `refused` only the reason and the fields given are compared.
 */
interface Case {
  argv: string[];
  binaries?: string[];
  reads?: string[];
  writes?: string[];
  lists?: string[];
  nested?: string[];
  refused?: RegExp;
  sandboxOnly?: RegExp;
  /** Programs that run unchecked code (execute_code), and what each does. Compared exactly: default none. */
  code?: Array<[string, RegExp]>;
}

function check(c: Case): void {
  const r = analyzeArgv(c.argv);
  const label = JSON.stringify(c.argv);
  if (c.refused) {
    assert.ok(r.refusal !== null && c.refused.test(r.refusal), `${label}: refusal ${JSON.stringify(r.refusal)}`);
  } else {
    assert.equal(r.refusal, null, `${label}: unexpected refusal`);
  }
  if (c.sandboxOnly) {
    assert.ok(r.sandboxOnly !== null && c.sandboxOnly.test(r.sandboxOnly), `${label}: sandboxOnly ${JSON.stringify(r.sandboxOnly)}`);
  } else if (!c.refused) {
    assert.equal(r.sandboxOnly, null, `${label}: unexpected sandboxOnly`);
  }
  if (!c.refused || c.code) {
    const want = c.code ?? [];
    assert.deepEqual(r.code.map((x) => x.program), want.map(([p]) => p), `${label}: code programs`);
    want.forEach(([, does], i) => assert.match(r.code[i]?.does ?? '', does, `${label}: code[${i}]`));
  }
  const fields = ['binaries', 'reads', 'writes', 'lists', 'nested'] as const;
  for (const f of fields) {
    const want = c[f] ?? (c.refused ? undefined : f === 'binaries' ? [c.argv[0]] : []);
    if (want !== undefined) assert.deepEqual(r[f], want, `${label}: ${f}`);
  }
}

function cases(title: string, list: Case[]): void {
  describe(title, () => {
    for (const c of list) test(c.argv.join(' ').slice(0, 120), () => check(c));
  });
}

cases('readers', [
  { argv: ['tail', '-n', '5', '/var/log/dpkg.log'], reads: ['/var/log/dpkg.log'] },
  { argv: ['tail', '-n5', 'f'], reads: ['f'] },
  { argv: ['tail', '--lines=5', 'f'], reads: ['f'] },
  { argv: ['tail', '--lines', '5', 'f'], reads: ['f'] },
  { argv: ['tail', '-f', '/var/log/syslog'], reads: ['/var/log/syslog'] },
  { argv: ['tail', '-F', '--retry', 'f'], reads: ['f'] },
  { argv: ['tail', '--follow=name', 'f'], reads: ['f'] },
  { argv: ['tail', '--foll', '/etc/x'], reads: ['/etc/x'] }, // abbreviation of an optional-value option
  { argv: ['tail', '-c', '100', 'f'], reads: ['f'] },
  { argv: ['tail', '--pid=123', '-s', '2', '-f', 'f'], reads: ['f'] },
  { argv: ['tail', '-5', 'f'], reads: ['f'] },
  { argv: ['tail', '-n', '-5', 'a', 'b'], reads: ['a', 'b'] },
  { argv: ['tail', '--', '-n'], reads: ['-n'] },
  { argv: ['tail', '-'], reads: [] },
  { argv: ['head', '-c', '10', '/etc/hostname'], reads: ['/etc/hostname'] },
  { argv: ['head', '-q/etc/shadow'], reads: ['/etc/shadow'] }, // an unknown letter's attached path is still a read
  { argv: ['/usr/bin/cat', '/etc/hosts'], reads: ['/etc/hosts'] },
  { argv: ['cat', '-n', '--', '-weird'], reads: ['-weird'] },
  { argv: ['cat', '--bogus', '/etc/shadow'], reads: ['/etc/shadow'] },
  { argv: ['cat', '-', 'a', 'a'], reads: ['a'] },
  { argv: ['tac', '-s', 'x', 'f'], reads: ['f'] },
  { argv: ['rev', 'f'], reads: ['f'] },
  { argv: ['wc', '-l', 'a', 'b'], reads: ['a', 'b'] },
  { argv: ['wc', '--files0-from=list'], refused: /file names from a file/ },
  { argv: ['cut', '-d', '/', '-f', '2', '/etc/passwd'], reads: ['/etc/passwd'] },
  { argv: ['cut', '-d/', '-f2', 'f'], reads: ['f'] },
  { argv: ['paste', '-d', ',', 'a', 'b'], reads: ['a', 'b'] },
  { argv: ['join', '-t', ':', '-o', '1.1', 'a', 'b'], reads: ['a', 'b'] },
  { argv: ['comm', '-12', 'a', 'b'], reads: ['a', 'b'] },
  { argv: ['nl', '-ba', '-w', '3', 'f'], reads: ['f'] },
  { argv: ['od', '-An', '-tx1', '-N', '16', '/bin/ls'], reads: ['/bin/ls'] },
  { argv: ['od', '-w16', 'f'], reads: ['f'] },
  { argv: ['hexdump', '-C', '-n', '64', 'f'], reads: ['f'] },
  { argv: ['hexdump', '-f', 'fmt', 'f'], reads: ['fmt', 'f'] },
  { argv: ['strings', '-n', '8', 'f'], reads: ['f'] },
  { argv: ['file', '-m', 'magic', 'f'], reads: ['magic', 'f'] },
  { argv: ['file', '-f', 'list'], refused: /file names from a file/ },
  { argv: ['md5sum', 'a', 'b'], reads: ['a', 'b'] },
  { argv: ['sha256sum', '-c', 'sums'], refused: /file names from a file/ },
  { argv: ['sha256sum', '--check', 'sums'], refused: /file names from a file/ },
  { argv: ['b2sum', '-l', '256', 'f'], reads: ['f'] },
  { argv: ['base64', '-d', '-w', '0', 'f'], reads: ['f'] },
  { argv: ['fold', '-w', '80', 'f'], reads: ['f'] },
  { argv: ['fmt', '-w', '60', 'f'], reads: ['f'] },
  { argv: ['expand', '-t', '4', 'f'], reads: ['f'] },
  { argv: ['column', '-t', '-s', ',', 'f'], reads: ['f'] },
  { argv: ['zcat', 'a.gz'], reads: ['a.gz'] },
  { argv: ['bzcat', 'a.bz2'], reads: ['a.bz2'] },
  { argv: ['diff', 'a', 'b'], reads: ['a', 'b'], sandboxOnly: /diff follows symlinks inside directory operands/ },
  { argv: ['diff', '-U', '3', 'a', 'b'], reads: ['a', 'b'], sandboxOnly: /diff follows symlinks inside directory operands/ },
  { argv: ['diff', '-r', 'd1', 'd2'], reads: ['d1', 'd2'], lists: ['d1', 'd2'], sandboxOnly: /diff follows symlinks inside directory operands/ },
  { argv: ['diff', '--from-file=/etc/x', 'a'], reads: ['/etc/x', 'a'], sandboxOnly: /diff follows symlinks inside directory operands/ },
  { argv: ['diff', '-X', 'ex', 'd1', 'd2'], reads: ['ex', 'd1', 'd2'], sandboxOnly: /diff follows symlinks inside directory operands/ },
  { argv: ['diff', '-r', '--no-dereference', 'd1', 'd2'], reads: ['d1', 'd2'], lists: ['d1', 'd2'] },
  { argv: ['cmp', 'a', 'b', '10', '20'], reads: ['a', 'b'] },
  { argv: ['cmp', '-n', '100', 'a', 'b'], reads: ['a', 'b'] },
  { argv: ['less', 'f'], reads: ['f'] },
  { argv: ['less', '-N', '-o', '/tmp/log', 'f'], writes: ['/tmp/log'], reads: ['f'] },
  { argv: ['less', '+!id', 'f'], refused: /pager commands/ },
  { argv: ['more', '-n', '5', 'f'], reads: ['f'] },
  { argv: ['readlink', '-f', '/x'], reads: ['/x'] },
  { argv: ['realpath', '--relative-to=/a', 'b'], reads: ['/a', 'b'] },
  { argv: ['stat', '-c', '%s', 'f'], reads: ['f'] },
  { argv: ['df', '-h', '/home'] }, // filesystem usage only: no path is read
  { argv: ['date', '-f', '/etc/shadow'], reads: ['/etc/shadow'] },
  { argv: ['date', '--reference=/etc/x', '+%s'], reads: ['/etc/x'] },
  { argv: ['date', '+%Y-%m-%d'] },
  { argv: ['hostname', '-F', '/etc/x'], reads: ['/etc/x'] },
  { argv: ['journalctl', '-u', 'nginx', '-n', '50', '--no-pager'] },
  { argv: ['journalctl', '--file', '/var/log/journal/x.journal'], reads: ['/var/log/journal/x.journal'], sandboxOnly: /journalctl --file takes a glob/ },
  { argv: ['journalctl', '-D', '/var/log/journal'], reads: ['/var/log/journal'], lists: ['/var/log/journal'], sandboxOnly: /journalctl -D reads/ },
  { argv: ['journalctl', '--directory=/x'], reads: ['/x'], lists: ['/x'], sandboxOnly: /journalctl --directory reads/ },
  { argv: ['journalctl', '--root=/mnt'], reads: ['/mnt'], lists: ['/mnt'], sandboxOnly: /journalctl --root reads/ },
  { argv: ['journalctl', '/usr/sbin/sshd'], reads: ['/usr/sbin/sshd'] },
  { argv: ['journalctl', '_SYSTEMD_UNIT=x.service', '+', '_PID=1'] },
  { argv: ['journalctl', '--cursor-file=/tmp/c'], reads: ['/tmp/c'], writes: ['/tmp/c'] },
  { argv: ['journalctl', '--vacuum-size=1G'], refused: /modify the journal/ },
  { argv: ['systemctl', 'status', 'nginx'] },
  { argv: ['systemctl', 'link', '/opt/x.service'], reads: ['/opt/x.service'] },
  { argv: ['systemctl', '--root=/mnt', 'list-unit-files'], reads: ['/mnt'] },
  { argv: ['systemctl', 'edit', 'nginx'], refused: /editor/ },
]);

cases('programs without paths', [
  { argv: ['echo', '/etc/shadow'] },
  { argv: ['printf', '%s\\n', '/etc/shadow'] },
  // A shell's builtin printf -v / test -v runs command substitutions in the variable's subscript.
  { argv: ['printf', '-v', 'a[$(id)]', 'x'], refused: /printf -v names a shell variable/ },
  { argv: ['printf', '-va[$(id)]', 'x'], refused: /printf -v/ },
  { argv: ['printf', '--', '-v', 'x'] },
  { argv: ['printf', '%s', '-v'] },
  { argv: ['test', '-v', 'a[$(id)]'], refused: /test -v names a shell variable/ },
  { argv: ['[', '!', '-v', 'x', ']'], refused: /\[ -v/ },
  { argv: ['test', '-f', '/etc/shadow'], reads: ['/etc/shadow'] },
  { argv: ['read', 'x'], refused: /shell builtin/ },
  { argv: ['true'] },
  { argv: ['false'] },
  { argv: ['sleep', '1'] },
  { argv: ['yes'] },
  { argv: ['seq', '10'] },
  { argv: ['basename', '/a/b'] },
  { argv: ['dirname', '/a/b'] },
  { argv: ['tr', '-d', '/'] },
  { argv: ['id', '-u'] },
  { argv: ['whoami'] },
  { argv: ['uname', '-a'] },
  { argv: ['ps', 'aux'] },
  { argv: ['free', '-m'] },
  { argv: ['uptime'] },
  { argv: ['hostname'] },
]);

// BSD `e` prints every process's environment: a read of /proc/*/environ. A dashed word is a UNIX option
// (-e: every process) unless ps fails to parse it so and reads every word again as BSD options.
cases('ps: BSD e reads every environment', [
  { argv: ['ps', '-e'] },
  { argv: ['ps', '-ef'] },
  { argv: ['ps', '-eF', '-H'] },
  { argv: ['ps', '-eo', 'pid,user,args'] },
  { argv: ['ps', 'axo', 'pid,user,etime'] }, // the e's are in o's value
  { argv: ['ps', '--sort', 'pid', 'ax'] },
  { argv: ['ps', 'e'], reads: [PROC_ENVIRON] },
  { argv: ['ps', 'auxe'], reads: [PROC_ENVIRON] },
  { argv: ['ps', 'axe'], reads: [PROC_ENVIRON] },
  { argv: ['ps', '-auxe'], reads: [PROC_ENVIRON] }, // `-u xe` names no user: ps falls back to BSD auxe
  { argv: ['ps', '-ex'], reads: [PROC_ENVIRON] },
  { argv: ['ps', '-ef', '-u', 'xe'], reads: [PROC_ENVIRON] },
  { argv: ['ps', '-A', 'e'], reads: [PROC_ENVIRON] },
  // -C takes any command names: its list is read as BSD options only when another word fails as UNIX ones.
  { argv: ['ps', '-C', 'memcached'] },
  { argv: ['ps', '-C', 'redis-server', '-o', 'pid='] },
  { argv: ['ps', '-fC', 'xe'] },
  { argv: ['ps', '-Cxe'] },
  { argv: ['ps', '-C', 'xe', '-u', 'xe'], reads: [PROC_ENVIRON] },
  { argv: ['ps', '-u', 'xe', '-C', 'xe'], reads: [PROC_ENVIRON] },
]);

test('ps: what the check lets through prints no environment, run for real', (t) => {
  const ps = findProgram('ps');
  if (ps === null) return t.skip('no ps here');
  const marker = 'REMUX_PS_MARK=seen';
  // Every process of this user is listed by these, ps itself included, whose environment holds the marker.
  const shows = (args: string[]): boolean => spawnSync(ps, args, { env: { PATH: process.env.PATH ?? '', REMUX_PS_MARK: 'seen' }, encoding: 'utf8' }).stdout.includes(marker);
  const words = [['aux'], ['-ef'], ['-e'], ['-eo', 'pid,args'], ['axo', 'pid,args'], ['-ex'], ['-et'], ['-auxe'], ['auxe'], ['axe'], ['-ef', '-u', 'xe'], ['-e', '-u', 'xe'], ['-A', 'e'], ['--sort=pid', 'axe'], ['-C', 'xe'], ['-fC', 'xe'], ['-Cxe'], ['-C', 'memcached', '-o', 'pid=']];
  for (const args of words) {
    if (!psPrintsEnvironments(args)) assert.ok(!shows(args), `ps ${args.join(' ')} passed the check but printed an environment`);
  }
  // The ones that do print it are caught (and the marker is seen where ps prints environments).
  for (const args of [['auxe'], ['-auxe'], ['-ex']]) {
    assert.ok(shows(args), `ps ${args.join(' ')} prints environments here`);
    assert.ok(psPrintsEnvironments(args));
  }
});

test('xargs may not append words to ps (an appended e prints environments)', () => {
  assert.match(analyzeArgv(['xargs', 'ps', 'ax']).refusal ?? '', /xargs would pass unchecked arguments to ps/);
});

cases('searchers', [
  { argv: ['grep', 'foo', '/var/log/syslog'], reads: ['/var/log/syslog'] },
  { argv: ['grep', '/etc/shadow'], reads: [] }, // the pattern, reading stdin
  { argv: ['grep', '-e', 'foo', '-e', 'bar', 'f'], reads: ['f'] },
  { argv: ['grep', '-f', '/etc/shadow', 'x'], reads: ['/etc/shadow', 'x'] },
  { argv: ['grep', '-f/etc/shadow', 'x'], reads: ['/etc/shadow', 'x'] },
  { argv: ['grep', '--file=/etc/shadow', 'x'], reads: ['/etc/shadow', 'x'] },
  { argv: ['grep', '--fi=/etc/shadow', 'x'], reads: ['/etc/shadow'] }, // ambiguous abbreviation: unknown, its path still read
  { argv: ['grep', '-r', 'foo', '/etc'], reads: ['/etc'], lists: ['/etc'] },
  { argv: ['grep', '-rn', 'foo'], reads: ['.'], lists: ['.'] },
  { argv: ['grep', '-R', '--include=*.ts', 'foo', 'src'], reads: ['src'], lists: ['src'], sandboxOnly: /grep -R follows/ },
  { argv: ['grep', '-d', 'recurse', 'foo', 'dir'], reads: ['dir'], lists: ['dir'] },
  { argv: ['grep', '--exclude-from=/etc/x', 'foo', 'f'], reads: ['/etc/x', 'f'] },
  { argv: ['grep', '-A', '3', 'foo', 'f'], reads: ['f'] },
  { argv: ['grep', '-A3', '-5', 'foo', 'f'], reads: ['f'] },
  { argv: ['grep', '--', '-foo', 'f'], reads: ['f'] },
  { argv: ['egrep', 'a|b', 'f'], reads: ['f'] },
  { argv: ['zgrep', 'x', 'f.gz'], reads: ['f.gz'] },
  { argv: ['rg', 'foo'], reads: ['.'], lists: ['.'] },
  { argv: ['rg', '-n', 'foo', 'src', 'test'], reads: ['src', 'test'], lists: ['src', 'test'] },
  { argv: ['rg', '-r', 'x', 'foo', 'f'], reads: ['f'], lists: ['f'] },
  { argv: ['rg', '--files', '/etc'], reads: ['/etc'], lists: ['/etc'] },
  { argv: ['rg', '--pre', 'sh', 'foo'], refused: /rg --pre/ },
  { argv: ['rg', '--hostname-bin=/tmp/x', 'foo'], refused: /hostname-bin/ },
]);

cases('listers', [
  { argv: ['ls'], lists: ['.'] },
  { argv: ['ls', '-la', '/etc'], lists: ['/etc'] },
  { argv: ['ls', '-I', '*.o', 'dir'], lists: ['dir'] },
  { argv: ['ls', '--ignore=x', '-w', '80', 'a', 'b'], lists: ['a', 'b'] },
  { argv: ['du', '-sh', '/var'], lists: ['/var'] },
  { argv: ['du'], lists: ['.'] },
  { argv: ['du', '-X', '/etc/ex', 'd'], reads: ['/etc/ex'], lists: ['d'] },
  { argv: ['du', '--files0-from=-'], refused: /file names from a file/ },
]);

cases('writers', [
  { argv: ['tee', '/tmp/a', '/tmp/b'], writes: ['/tmp/a', '/tmp/b'] },
  { argv: ['tee', '-a', 'f'], writes: ['f'] },
  { argv: ['rm', '-rf', '/tmp/x'], writes: ['/tmp/x'], lists: ['/tmp/x'] },
  { argv: ['rm', '--', '-rf'], writes: ['-rf'] },
  { argv: ['rmdir', '-p', 'a/b'], writes: ['a/b'] },
  { argv: ['mkdir', '-p', '/a/b'], writes: ['/a/b'] },
  { argv: ['mkdir', '-m', '755', 'd'], writes: ['d'] },
  { argv: ['mkfifo', '/tmp/p'], writes: ['/tmp/p'] },
  { argv: ['touch', '-r', '/etc/passwd', 'f'], reads: ['/etc/passwd'], writes: ['f'] },
  { argv: ['touch', '-d', 'yesterday', 'f'], writes: ['f'] },
  { argv: ['truncate', '-s', '0', 'f'], writes: ['f'] },
  { argv: ['shred', '-u', '-n', '3', 'f'], writes: ['f'] },
  { argv: ['chmod', '644', 'f'], writes: ['f'] },
  { argv: ['chmod', '-R', '755', 'd'], writes: ['d'], lists: ['d'] },
  { argv: ['chmod', '-w', '/etc/shadow'], writes: ['/etc/shadow'] },
  { argv: ['chmod', '-R', '-x+X', 'd'], writes: ['d'], lists: ['d'] },
  { argv: ['chmod', 'u+x,g-w', 'f'], writes: ['f'] },
  { argv: ['chmod', '--reference=/etc/x', 'f'], reads: ['/etc/x'], writes: ['f'] },
  { argv: ['chmod', '--', '644', 'f'], writes: ['f'] },
  { argv: ['chown', 'root:root', 'f'], writes: ['f'] },
  { argv: ['chown', '-R', 'u', 'd'], writes: ['d'], lists: ['d'] },
  { argv: ['chown', '--reference=r', 'f'], reads: ['r'], writes: ['f'] },
  { argv: ['chgrp', 'adm', 'f'], writes: ['f'] },
  // Into a directory cp opens DEST/NAME, following a symlink there: that path is written too.
  { argv: ['cp', 'a', 'b'], reads: ['a'], writes: ['b', 'b/a'] },
  { argv: ['cp', 'dir/a', '/tmp/'], reads: ['dir/a'], writes: ['/tmp/', '/tmp/a'] },
  { argv: ['cp', '-T', 'a', 'b'], reads: ['a'], writes: ['b'] },
  { argv: ['cp', '--parents', 'a/b', '/abs/c', 'd'], reads: ['a/b', '/abs/c'], writes: ['d', 'd/a/b', 'd/abs/c'] },
  { argv: ['cp', '-r', '/a', '/b', '/c'], reads: ['/a', '/b'], writes: ['/c', '/c/a', '/c/b'], lists: ['/a', '/b'], sandboxOnly: /cp -r writes through symlinks/ },
  { argv: ['cp', '-t', '/dst', 'a', 'b'], writes: ['/dst', '/dst/a', '/dst/b'], reads: ['a', 'b'] },
  { argv: ['cp', '--target-directory=/dst', 'a'], writes: ['/dst', '/dst/a'], reads: ['a'] },
  { argv: ['cp', '-a', '--', '-src', 'dst'], reads: ['-src'], writes: ['dst', 'dst/-src'], lists: ['-src'], sandboxOnly: /cp -a writes through symlinks/ },
  { argv: ['mv', 'a', 'b'], reads: ['a'], writes: ['a', 'b'] },
  { argv: ['mv', '-t', 'd', 'a'], reads: ['a'], writes: ['d', 'a'] },
  { argv: ['ln', '-s', '/etc/shadow', 'link'], reads: ['/etc/shadow'], writes: ['link'] },
  { argv: ['ln', '/etc/shadow', 'hard'], reads: ['/etc/shadow'], writes: ['hard'] },
  { argv: ['ln', '-s', '/x'], reads: ['/x'], writes: ['.'] },
  { argv: ['install', '-m', '755', 'a', '/usr/local/bin/a'], reads: ['a'], writes: ['/usr/local/bin/a'] },
  { argv: ['install', '-d', '/opt/x', '/opt/y'], writes: ['/opt/x', '/opt/y'] },
  { argv: ['install', '--strip-program=sh', 'a', 'b'], refused: /strip-program/ },
  { argv: ['dd', 'if=/dev/sda', 'of=/tmp/img', 'bs=1M'], reads: ['/dev/sda'], writes: ['/tmp/img'] },
  { argv: ['split', '-l', '100', 'f', 'part_'], reads: ['f'], writes: ['part_'], sandboxOnly: /split writes its output files through symlinks/ },
  { argv: ['split', 'f'], reads: ['f'], writes: ['x'], sandboxOnly: /split writes/ },
  { argv: ['split', '--filter=sh', 'f'], refused: /filter/ },
  { argv: ['csplit', 'f', '/x/'], reads: ['f'], writes: ['xx'], sandboxOnly: /csplit writes/ },
  { argv: ['csplit', '-f', 'pre', 'f', '10'], reads: ['f'], writes: ['pre'], sandboxOnly: /csplit writes/ },
  { argv: ['patch', '-p1', '-i', 'fix.diff'], reads: ['fix.diff'], sandboxOnly: /^patch writes the files its patch names/ },
  { argv: ['patch', '-p1'], sandboxOnly: /^patch writes the files its patch names/ },
  { argv: ['patch', '/etc/hostname', 'fix.diff'], reads: ['/etc/hostname', 'fix.diff'], writes: ['/etc/hostname', 'fix.diff'], sandboxOnly: /^patch writes/ },
  { argv: ['patch', '-o', 'out.c', '-r', 'out.rej', 'a.c'], reads: ['a.c'], writes: ['out.c', 'out.rej', 'a.c'], sandboxOnly: /^patch writes/ },
  { argv: ['patch', '-d', 'src', 'a.c'], refused: /patch -d changes directory .*cd DIR && patch/ },
  { argv: ['patch', '--directory=src', '-p1'], refused: /patch -d/ },
  { argv: ['man', 'ls'] },
  { argv: ['man', '-l', './x.1'], reads: ['./x.1'] },
  { argv: ['man', '-P', 'sh -c id', 'ls'], refused: /man -P runs the pager command/ },
  { argv: ['man', '--pager=sh', 'ls'], refused: /man -P/ },
  { argv: ['man', '-Hsh', 'ls'], refused: /man -H runs a browser/ },
  { argv: ['apt-get', 'install', '-y', 'nginx'] },
  { argv: ['apt-get', '-q', '-y', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold', 'install', 'nginx'] },
  { argv: ['apt', 'install', './tool.deb'], reads: ['./tool.deb'], code: [['apt', /installs \.\/tool\.deb, whose maintainer scripts remux cannot check/]] },
  { argv: ['apt-get', 'reinstall', '/tmp/x.deb', 'curl'], reads: ['/tmp/x.deb'], code: [['apt-get', /installs \/tmp\/x\.deb/]] },
  { argv: ['apt-get', 'download', 'x/y'] },
  { argv: ['apt', '-o', 'APT::Update::Pre-Invoke::=id', 'update'], refused: /apt -o APT::Update::Pre-Invoke::=id: only options that choose what and how to install/ },
  { argv: ['apt-get', '-oDPkg::Post-Invoke::=sh -c id', 'install', 'x'], refused: /-o DPkg::Post-Invoke/ },
  { argv: ['apt-get', '--option=Dir::Bin::dpkg=/tmp/evil', 'install', 'x'], refused: /Dir::Bin::dpkg/ },
  { argv: ['apt-get', '-o', 'Acquire::http::Proxy-Auto-Detect=/tmp/x', 'update'], refused: /Proxy-Auto-Detect/ },
  { argv: ['apt-get', '-o', 'Dpkg::Options::=--pre-invoke=id', 'install', 'x'], refused: /Dpkg::Options::=--pre-invoke/ },
  { argv: ['apt-get', '-c', '/tmp/apt.conf', 'update'], refused: /apt -c reads a configuration file/ },
  { argv: ['dpkg', '-i', 'x.deb'], code: [['dpkg', /installs a package file, whose maintainer scripts/]] },
  { argv: ['dpkg', '--unpack', '/tmp/x.deb'], reads: ['/tmp/x.deb'], code: [['dpkg', /maintainer scripts/]] },
  { argv: ['dpkg', '-L', 'nginx'] },
  { argv: ['dpkg', '-c', '/tmp/x.deb'], reads: ['/tmp/x.deb'] },
  { argv: ['dpkg', '-x', '/tmp/a.deb', '/opt/out'], reads: ['/tmp/a.deb', '/opt/out'], writes: ['/opt/out'] },
  { argv: ['dpkg', '--pre-invoke=id', '-l'], refused: /dpkg --pre-invoke, --post-invoke and --status-logger run a shell command/ },
  { argv: ['dpkg', '--root=/mnt', '-l'], reads: ['/mnt'], writes: ['/mnt'], lists: ['/mnt'] },
  { argv: ['ssh-keygen', '-D', '/tmp/x.so'], refused: /ssh-keygen -D loads a PKCS#11 library/ },
  { argv: ['ssh-keygen', '-K', '-w', '/tmp/x.so'], refused: /ssh-keygen -w loads/ },
  { argv: ['ssh-keygen', '-t', 'ed25519', '-N', '', '-f', '/etc/ssh/k'], writes: ['/etc/ssh/k', '/etc/ssh/k.pub'] },
  { argv: ['ssh-keygen', '-t', 'ed25519'], sandboxOnly: /ssh-keygen without -f asks for the key file on its input/ },
  { argv: ['ssh-keygen', '-l', '-f', 'id.pub'], reads: ['id.pub'] },
  { argv: ['ssh-keygen', '-y', '-f', '/root/.ssh/id_ed25519'], reads: ['/root/.ssh/id_ed25519'] },
  { argv: ['ssh-keygen', '-lf', '/etc/ssh/ssh_host_ed25519_key.pub'], reads: ['/etc/ssh/ssh_host_ed25519_key.pub'] },
  { argv: ['ssh-keygen', '-p', '-N', 'new', '-f', 'k'], reads: ['k'], writes: ['k'] },
  { argv: ['ssh-keygen', '-R', 'web1', '-f', '/etc/ssh/ssh_known_hosts'], reads: ['/etc/ssh/ssh_known_hosts'], writes: ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts.old'] },
  { argv: ['ssh-keygen', '-R', 'web1'], sandboxOnly: /ssh-keygen without -f edits ~\/\.ssh\/known_hosts/ },
  { argv: ['ssh-keygen', '-F', 'web1'], sandboxOnly: /ssh-keygen without -f reads ~\/\.ssh\/known_hosts/ },
  { argv: ['ssh-keygen', '-H', '-f', 'kh'], reads: ['kh'], writes: ['kh', 'kh.old'] },
  { argv: ['ssh-keygen', '-A'], sandboxOnly: /ssh-keygen -A writes host keys under \/etc\/ssh/ },
  { argv: ['ssh-keygen', '-s', '/etc/ssh/ca', '-I', 'id', '/tmp/u.pub'], reads: ['/etc/ssh/ca', '/tmp/u.pub'], writes: ['/tmp/u-cert.pub'] },
  { argv: ['ssh-keygen', '-Y', 'sign', '-f', 'k', '-n', 'file', 'a.tar'], reads: ['k', 'a.tar'], writes: ['a.tar.sig'] },
  { argv: ['ssh-keygen', '-Y', 'verify', '-f', 'allowed', '-I', 'me', '-n', 'file', '-s', 'a.sig'], reads: ['a.sig', 'allowed'] },
  { argv: ['ssh-keygen', '-k', '-f', 'revoked.krl', 'u.pub'], reads: ['u.pub'], writes: ['revoked.krl'] },
  { argv: ['uniq', 'in', 'out'], reads: ['in'], writes: ['out'] },
  { argv: ['uniq', '-c', '-f', '2', 'in'], reads: ['in'] },
  { argv: ['xxd', '/bin/ls'], reads: ['/bin/ls'] },
  { argv: ['xxd', '-r', 'hex', 'out'], reads: ['hex'], writes: ['out'] },
  { argv: ['xxd', '-c', '8', '-l16', 'f'], reads: ['f'] },
  { argv: ['xxd', '-seek', '0', '/a', '/b'], reads: ['/a'], writes: ['/b'] },
  { argv: ['gzip', 'f'], reads: ['f'], writes: ['f'] },
  { argv: ['gzip', '-k', 'f'], reads: ['f'], writes: ['f'] }, // still creates f.gz
  { argv: ['gzip', '-c', 'f'], reads: ['f'] },
  { argv: ['gzip', '-r', 'd'], reads: ['d'], writes: ['d'], lists: ['d'] },
  { argv: ['gunzip', '-t', 'f.gz'], reads: ['f.gz'] },
  { argv: ['xz', '-d', 'f.xz'], reads: ['f.xz'], writes: ['f.xz'] },
  { argv: ['xz', '-l', 'f.xz'], reads: ['f.xz'] },
  { argv: ['xz', '--files=list'], refused: /file names from a file/ },
  { argv: ['bzip2', '-dc', 'f.bz2'], reads: ['f.bz2'] },
  { argv: ['zstd', '-o', 'out', 'f'], reads: ['f'], writes: ['out', 'f'] },
  { argv: ['zstd', '--filelist=x'], refused: /file names from a file/ },
  { argv: ['sort', '-o', '/etc/passwd', 'f'], reads: ['f'], writes: ['/etc/passwd'] },
  { argv: ['sort', '-o/etc/passwd'], writes: ['/etc/passwd'] },
  { argv: ['sort', '-ro/etc/passwd', 'f'], reads: ['f'], writes: ['/etc/passwd'] }, // -r is a flag: no spurious read
  { argv: ['sort', '--output=/x', 'f'], reads: ['f'], writes: ['/x'] },
  { argv: ['sort', '--out=/x', 'f'], reads: ['f'], writes: ['/x'] }, // getopt_long abbreviation
  { argv: ['sort', 'f', '-o', '/x'], reads: ['f'], writes: ['/x'] }, // GNU permutation
  { argv: ['sort', '-T', '/tmp', 'f'], reads: ['f'], writes: ['/tmp'] },
  { argv: ['sort', '-k2,2', '-t:', '/etc/passwd'], reads: ['/etc/passwd'] },
  { argv: ['sort', '-S', '1G', '-rn', 'f'], reads: ['f'] },
  { argv: ['sort', '--random-source=/dev/urandom', 'f'], reads: ['/dev/urandom', 'f'] },
  { argv: ['sort', '-Z', '/etc/shadow'], reads: ['/etc/shadow'] }, // unknown option never swallows an operand
  { argv: ['sort', '--bogus=/etc/x', 'f'], reads: ['/etc/x', 'f'] },
  { argv: ['sort', '--files0-from=/etc/shadow'], refused: /file names from a file/ },
  { argv: ['sort', '--compress-program=sh', 'f'], refused: /compress-program/ },
  { argv: ['sort', '--compress=sh', 'f'], refused: /compress-program/ },
  { argv: ['shuf', '-n', '1', 'f'], reads: ['f'] },
  { argv: ['shuf', '-e', 'a', '/b'] },
  { argv: ['shuf', '-o', '/x', 'f'], reads: ['f'], writes: ['/x'] },
]);

cases('programs that change file attributes, filesystems, mounts and system settings', [
  { argv: ['chattr', '+i', '/etc/passwd'], writes: ['/etc/passwd'] },
  { argv: ['chattr', '-R', '-a', '/var/log'], writes: ['/var/log'], lists: ['/var/log'] },
  { argv: ['chattr', '-a', '-i', '=e', 'f', 'g'], writes: ['f', 'g'] }, // -a -i are modes, not options
  { argv: ['chattr', '-Ra', '+i', 'd'], writes: ['d'], lists: ['d'] },
  { argv: ['chattr', '-v', '7', '-p', '3', '+i', '/etc/x'], writes: ['/etc/x'] }, // -v and -p take the next word
  { argv: ['chattr', '-pR', '3', 'd'], writes: ['d'], lists: ['d'] },
  { argv: ['chattr', '--', '-weird'], writes: ['-weird'] },
  { argv: ['chattr', '+i', 'f', '-a'], writes: ['f', '-a'] }, // modes end at the first file
  { argv: ['setcap', 'cap_net_raw+ep', '/usr/bin/x'], writes: ['/usr/bin/x'] },
  { argv: ['setcap', '-q', '-n', '1000', 'cap_net_admin=eip', '/a', '-r', '/b', '-', '/c'], writes: ['/a', '/b', '/c'] },
  { argv: ['setcap', '-v', 'cap_net_raw+ep', '/usr/bin/x'], reads: ['/usr/bin/x'] },
  { argv: ['fallocate', '-l', '1G', '/etc/x'], writes: ['/etc/x'] },
  { argv: ['fallocate', '-o', '0', '-l', '4096', '-p', 'f'], writes: ['f'] },
  { argv: ['fallocate', '--dig-holes', '/var/lib/x.img'], writes: ['/var/lib/x.img'] },
  { argv: ['mkswap', '-L', 'swap', '/dev/sdb2'], writes: ['/dev/sdb2'] },
  { argv: ['mkfs', '-t', 'ext4', '/dev/sdb1'], binaries: ['mkfs', 'mkfs.ext4'], writes: ['/dev/sdb1'] },
  { argv: ['mkfs.ext4', '-L', 'data', '-d', '/etc', 'disk.img'], reads: ['/etc'], writes: ['disk.img'], lists: ['/etc'] },
  { argv: ['/sbin/mke2fs', '-t', 'ext4', '/dev/sdb1'], writes: ['/dev/sdb1'] },
  { argv: ['mkfs.vfat', '-F', '32', '-n', 'BOOT', '/dev/sdc1'], writes: ['/dev/sdc1'] },
  { argv: ['mkfs.xfs', '-f', '/dev/sdd'], writes: ['/dev/sdd'] },
  { argv: ['wipefs', '-a', '/dev/sdb'], writes: ['/dev/sdb'] },
  { argv: ['blkdiscard', '-o', '0', '-l', '1M', '/dev/nvme0n1'], writes: ['/dev/nvme0n1'] },
  { argv: ['mknod', '/tmp/sda', 'b', '8', '0'], refused: /^mknod: a device node reads or writes a disk or memory directly.*use mkfifo/ },
  { argv: ['mount'] },
  { argv: ['mount', '-l', '-t', 'ext4'] },
  { argv: ['mount', '--bind', '/etc/shadow', '/tmp/x'], refused: /^mount: mounting makes files readable or writable at other paths/ },
  { argv: ['mount', '/dev/sdb1', '/mnt'], refused: /^mount: mounting/ },
  { argv: ['mount', '/mnt'], refused: /^mount: mounting/ }, // fstab names the rest
  { argv: ['mount', '-a'], refused: /^mount: mounting/ },
  { argv: ['mount', '--make-rshared', '/'], refused: /^mount: mounting/ },
  { argv: ['mount', '-t', 'fuse', 'sshfs#u@h:', '/mnt'], refused: /^mount: mounting/ },
  { argv: ['umount', '/mnt'], writes: ['/mnt'] },
  { argv: ['umount', '-R', '-l', '/mnt'], writes: ['/mnt'], lists: ['/mnt'] },
  { argv: ['umount', '-a'], refused: /^umount -a unmounts every filesystem/ },
  { argv: ['umount', '-A', '/dev/sdb1'], refused: /^umount -A/ },
  { argv: ['umount', '-N', '1', '/mnt'], refused: /^umount -N works in another mount namespace/ },
  { argv: ['umount', '.', './mnt', '/media/usb'], writes: ['.', './mnt', '/media/usb'] },
  // A device, a tag, a network share or a bare word can name what is mounted, wherever that is.
  { argv: ['umount', '/dev/sdb1'], refused: /^umount \/dev\/sdb1: a device, LABEL= or UUID=, network share or filesystem name \(tmpfs\) is unmounted wherever it is mounted, which cannot be checked; name the mount point by its path instead \(findmnt \/dev\/sdb1 shows it/ },
  { argv: ['umount', '-l', '/mnt', '/dev/disk/by-label/data'], refused: /^umount \/dev\/disk\/by-label\/data: / },
  { argv: ['umount', '/tmp/../dev/sdb1'], refused: /^umount \/tmp\/\.\.\/dev\/sdb1: / },
  { argv: ['umount', '-R', '//dev/sdb1'], refused: /^umount \/\/dev\/sdb1: / },
  { argv: ['umount', 'LABEL=data'], refused: /^umount LABEL=data: / },
  { argv: ['umount', 'nas:/export'], refused: /^umount nas:\/export: / },
  { argv: ['umount', 'tmpfs'], refused: /^umount tmpfs: .*\.\/NAME for one in the working directory/ },
  { argv: ['losetup'] },
  { argv: ['losetup', '-a'] },
  { argv: ['losetup', '/dev/loop0'], reads: ['/dev/loop0'] },
  { argv: ['losetup', '-j', '/tmp/img'], reads: ['/tmp/img'] },
  { argv: ['losetup', '-d', '/dev/loop0', '/dev/loop1'], writes: ['/dev/loop0', '/dev/loop1'] },
  { argv: ['losetup', '/dev/loop0', '/etc/shadow'], refused: /^losetup: attaching a file to a loop device makes it readable and writable as \/dev\/loopN/ },
  { argv: ['losetup', '-f', '--show', '/etc/shadow'], refused: /^losetup: attaching/ },
  { argv: ['losetup', '-o', '512', '/dev/loop0', 'img'], refused: /^losetup: attaching/ },
  { argv: ['losetup', '-D'], refused: /^losetup -D detaches every loop device/ },
  { argv: ['sysctl', '-w', 'net.ipv4.ip_forward=1'], writes: ['/proc/sys/net/ipv4/ip_forward'] },
  { argv: ['sysctl', 'net.ipv4.ip_forward=1', 'kernel.pid_max'], reads: ['/proc/sys/kernel/pid_max'], writes: ['/proc/sys/net/ipv4/ip_forward'], lists: ['/proc/sys/kernel/pid_max'] },
  { argv: ['sysctl', '-w', 'kernel.core_pattern=|/tmp/x %p'], writes: ['/proc/sys/kernel/core_pattern'] },
  { argv: ['sysctl', 'net/ipv4/ip_forward=1'], writes: ['/proc/sys/net/ipv4/ip_forward'] },
  { argv: ['sysctl', 'net.ipv4.conf.eth0/10.rp_filter=0'], writes: ['/proc/sys/net/ipv4/conf/eth0.10/rp_filter'] }, // a VLAN's dot is written as a slash
  { argv: ['sysctl', '-n', 'net.ipv4'], reads: ['/proc/sys/net/ipv4'], lists: ['/proc/sys/net/ipv4'] },
  { argv: ['sysctl', '-a'], reads: ['/proc/sys'], lists: ['/proc/sys'] },
  { argv: ['sysctl', '-p'], refused: /^sysctl -p\/--system applies the settings that files list.*use sysctl -w KEY=VALUE instead/ },
  { argv: ['sysctl', '-p/tmp/evil.conf'], refused: /^sysctl -p/ },
  { argv: ['sysctl', '-f', '/tmp/evil.conf'], refused: /^sysctl -p/ },
  { argv: ['sysctl', '--load=/tmp/evil.conf'], refused: /^sysctl -p/ },
  { argv: ['sysctl', '--system'], refused: /^sysctl -p/ },
]);

cases('wipefs: it lists signatures unless told to erase them', [
  { argv: ['wipefs', '/dev/sdb'], reads: ['/dev/sdb'] },
  { argv: ['wipefs', '-J', '-O', 'DEVICE,OFFSET', '-t', 'ext4', '/dev/sdb1', '/dev/sdb2'], reads: ['/dev/sdb1', '/dev/sdb2'] },
  { argv: ['wipefs', '--all', '-t', 'ext4', '/dev/sdb'], writes: ['/dev/sdb'] },
  { argv: ['wipefs', '-o', '0x438', '/dev/sdb'], writes: ['/dev/sdb'] },
  { argv: ['wipefs', '--off=0x438', '/dev/sdb'], writes: ['/dev/sdb'] }, // --offset, abbreviated
  { argv: ['wipefs', '-fa', '/dev/sdb'], writes: ['/dev/sdb'] },
  // -n does everything but the writes.
  { argv: ['wipefs', '-na', '/dev/sdb'], reads: ['/dev/sdb'] },
  { argv: ['wipefs', '--no-act', '-o', '0x438', '/dev/sdb'], reads: ['/dev/sdb'] },
  // Backups go to $HOME/wipefs-DEVICE-OFFSET.bak, named after offsets only the device knows.
  { argv: ['wipefs', '-a', '-b', '/dev/sdb'], refused: /^wipefs -b writes a backup of each signature it erases into \$HOME .*; run it without -b/ },
  { argv: ['wipefs', '--all', '--backup=/tmp', '/dev/sdb'], refused: /^wipefs -b/ },
  { argv: ['wipefs', '-ab/tmp', '/dev/sdb'], refused: /^wipefs -b/ },
]);

cases('mkfs and mkswap: the device, then its size in blocks', [
  { argv: ['mkfs.ext4', '/dev/sdb1', '1000'], writes: ['/dev/sdb1'] },
  { argv: ['mke2fs', '-t', 'ext4', '/dev/sdb1', '100k'], writes: ['/dev/sdb1'] },
  { argv: ['mke2fs', '/dev/sdb1', '-L', 'data', '100k'], writes: ['/dev/sdb1'] }, // options anywhere
  { argv: ['mkfs.ext4', '-F', '-d', './root', 'disk.img', '64M'], reads: ['./root'], writes: ['disk.img'], lists: ['./root'] },
  { argv: ['mkswap', '/dev/sdb1', '1024'], writes: ['/dev/sdb1'] },
  { argv: ['mkswap', '-f', '-L', 'swap', '--offset', '4096', '/dev/sdb1', '1024'], writes: ['/dev/sdb1'] },
  { argv: ['mkfs.fat', '/dev/sdb1', '1000'], writes: ['/dev/sdb1'] },
  { argv: ['mkfs.fat', '-C', '/tmp/fat.img', '1440'], writes: ['/tmp/fat.img'] },
  { argv: ['mkfs.vfat', '--offset', '2048', '--mbr=y', '/dev/sdb', '1000'], writes: ['/dev/sdb'] },
  { argv: ['mkfs', '-V', '/dev/sdb1', '1000'], binaries: ['mkfs', 'mkfs.ext2'], writes: ['/dev/sdb1'] },
  // After an option the table does not know, which may take the next word, every operand counts.
  { argv: ['mkfs.ext4', '-Y', 'x', '/dev/sdb1'], writes: ['x', '/dev/sdb1'] },
  // -J device= is an external journal, which mke2fs writes too.
  { argv: ['mke2fs', '-J', 'size=64,device=/dev/sdc1', '/dev/sdb1'], writes: ['/dev/sdc1', '/dev/sdb1'] },
]);

cases('mkfs runs mkfs.TYPE with the arguments after its own options', [
  { argv: ['mkfs', '-t', 'xfs', '-L', 'data', '/dev/sdb1'], binaries: ['mkfs', 'mkfs.xfs'], writes: ['/dev/sdb1'] },
  { argv: ['/sbin/mkfs', '--type=ext4', '-d', '/srv/root', 'img'], binaries: ['/sbin/mkfs', 'mkfs.ext4'], reads: ['/srv/root'], writes: ['img'], lists: ['/srv/root'] },
  { argv: ['mkfs', '-t', 'f2fs', '-f', '/dev/sdb1'], binaries: ['mkfs', 'mkfs.f2fs'], refused: /^mkfs\.f2fs -f: remux does not know the options/ },
  { argv: ['mkfs', '-t', '../tmp/x', '/dev/sdb1'], binaries: ['mkfs', 'mkfs.../tmp/x'], reads: ['/dev/sdb1'] }, // a path, run as it is
  { argv: ['mkfs', '-t', 'ext4', '/dev/sdb1', '-L', 'x'], binaries: ['mkfs', 'mkfs.ext4'] }, // getopt drops the device
  { argv: ['mkfs', '-V', '-V', '-t', 'ext4', '/dev/sdb1'] }, // a dry run
  { argv: ['mkfs', '--help'] },
  { argv: ['mkfs', '-t', 'ext4'] },
]);

test('mkfs passes mkfs.TYPE the arguments util-linux mkfs passes it', (t) => {
  const mkfs = findProgram('mkfs');
  if (mkfs === null) {
    t.skip('no mkfs here');
    return;
  }
  // mkfs.p4 and mkfs.ext2 (the default) record the argv they are run with; PATH holds nothing else.
  const dir = mkdtempSync(join(tmpdir(), 'remux-mkfs-'));
  const record = join(dir, 'argv');
  try {
    for (const name of ['mkfs.p4', 'mkfs.ext2']) writeFileSync(join(dir, name), `#!/bin/sh\nprintf '%s\\0' "$0" "$@" > ${record}\n`, { mode: 0o755 });
    const spec = lookupTool('mkfs');
    assert.ok(spec !== undefined);
    const argLists = [
      ['-t', 'p4', '-L', 'x', '/dev/sdb1'], ['/dev/sdb1', '-t', 'p4'], ['-t', 'p4', '/dev/sdb1', '-L', 'x'], ['/dev/sdb1', '-t', 'p4', '-L', 'x', '1000'],
      ['-tp4', '-f', 'd'], ['--type=p4', '-f', 'd', '9'], ['--type', 'p4', '--', '-x', 'd'], ['--ty', 'p4', 'd'], ['-Vtp4', 'd'], ['-Vt', 'p4', 'd'],
      ['-t', 'p4', '-qf', 'd'], ['-qf', 'd'], ['-t', 'p4'], ['d', '--', '-t', 'p4'], ['-t', 'p4', 'd', 'e', '-f', 'g'], ['--ver', 'd'], ['--verbose', '-tp4', 'x'],
      ['a', '-t', 'p4', 'b', '-V', 'c'], ['-t', 'p4', '-V', '-V', 'd'], ['-t'], ['-t', 'p4', '-Vq', 'd'], ['-t', 'p4', '--verbose=1', 'd'], ['-h', 'd'],
      ['-t', 'p4', 'd', '--', '-f'], ['p', 'q', '-t', 'p4', '-L', 'x', 'r'], ['-t', 'p4', '', 'd'],
    ];
    for (const args of argLists) {
      rmSync(record, { force: true });
      spawnSync(mkfs, args, { env: { PATH: dir }, stdio: 'ignore' });
      let real: string[] | null = null;
      try {
        const [program, ...rest] = readFileSync(record, 'utf8').split('\0').slice(0, -1);
        real = [basename(program as string), ...rest];
      } catch {
        // it ran nothing
      }
      assert.deepEqual(mkfsPasses(spec, mkfs, args), real, JSON.stringify(args));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

cases('mkfs.xfs and mkfs.btrfs options; mkfs.TYPE remux does not know', [
  { argv: ['mkfs.xfs', '-f', '-L', 'data', '-b', 'size=4096', '-m', 'crc=1', '/dev/sdd'], writes: ['/dev/sdd'] },
  { argv: ['mkfs.xfs', '-l', 'logdev=/dev/sde1,size=100m', '-r', 'rtdev=/dev/sdf', '/dev/sdd'], writes: ['/dev/sde1', '/dev/sdf', '/dev/sdd'] },
  { argv: ['mkfs.xfs', '-N', '-dfile,name=disk.img,size=1g'], writes: ['disk.img'] },
  { argv: ['mkfs.xfs', '-l', 'name=/tmp/log.img,file', '-r', 'name=/tmp/rt.img', '/tmp/data.img'], writes: ['/tmp/log.img', '/tmp/rt.img', '/tmp/data.img'] },
  { argv: ['mkfs.xfs', '-c', 'options=/tmp/x.conf', '/dev/sdd'], refused: /^mkfs\.xfs -c reads options from a file, which can name more devices and files to write; give them on the command line instead/ },
  { argv: ['mkfs.xfs', '-p', 'file=/tmp/proto', '/dev/sdd'], refused: /^mkfs\.xfs -p copies in the files that a prototype file names/ },
  { argv: ['mkfs.btrfs', '-f', '-L', 'data', '-d', 'raid1', '-m', 'raid1', '--csum', 'xxhash', '/dev/sdb', '/dev/sdc'], writes: ['/dev/sdb', '/dev/sdc'] },
  { argv: ['mkfs.btrfs', '--rootdir', '/srv/root', '--shrink', '-u', 'ro:etc', 'img'], reads: ['/srv/root'], writes: ['img'], lists: ['/srv/root'] },
  { argv: ['mkfs.btrfs', '-r/srv/root', 'img'], reads: ['/srv/root'], writes: ['img'], lists: ['/srv/root'] },
  // Whether an unknown mkfs.TYPE's options take values, and what those name, is unknown: refused. Its
  // operands may be a source tree and an image (mkfs.erofs IMAGE DIR): each is read, listed and written.
  { argv: ['mkfs.f2fs', '/dev/sdb1'], reads: ['/dev/sdb1'], writes: ['/dev/sdb1'], lists: ['/dev/sdb1'] },
  { argv: ['mkfs.erofs', 'out.img', './rootfs'], reads: ['out.img', './rootfs'], writes: ['out.img', './rootfs'], lists: ['out.img', './rootfs'] },
  { argv: ['mkfs.f2fs', '-l', 'data', '/dev/sdb1'], refused: /^mkfs\.f2fs -l: remux does not know the options of this mkfs\.TYPE.*run it without options, or use one whose options remux knows/ },
  { argv: ['mkfs.erofs', '--tar=f', 'out.img', 'x.tar'], refused: /^mkfs\.erofs --tar: remux does not know/ },
]);

cases('sed', [
  { argv: ['sed', '-n', '1p', 'f'], reads: ['f'] },
  { argv: ['sed', 's/a/b/', 'f', 'g'], reads: ['f', 'g'] },
  { argv: ['sed', '-i', 's/a/b/', 'f'], reads: ['f'], writes: ['f'] },
  { argv: ['sed', '-i.bak', '-e', 's/a/b/', 'f'], reads: ['f'], writes: ['f', 'f.bak'] },
  { argv: ['sed', '--in-place=.bak', 's/a/b/', 'f'], reads: ['f'], writes: ['f', 'f.bak'] },
  // With a * the backup is named after the file, in the file's directory.
  { argv: ['sed', "-i../../etc/cron.d/*", 's/a/b/', 'd/f', 'g'], reads: ['d/f', 'g'], writes: ['d/f', 'g', 'd/../../etc/cron.d/f', '../../etc/cron.d/g'] },
  { argv: ['sed', '-ni', 's/a/b/p', 'f'], reads: ['f'], writes: ['f'] },
  { argv: ['sed', '--follow-symlinks', '-i', 's/a/b/', 'f'], reads: ['f'], writes: ['f'] },
  { argv: ['sed', '--follow-symlinks', '-i~', 's/a/b/', 'f'], reads: ['f'], writes: ['f', 'f~'], sandboxOnly: /sed --follow-symlinks keeps -i backups/ },
  { argv: ['sed', '-e', 's/a/b/', '-e', 's/c/d/', 'f'], reads: ['f'] },
  { argv: ['sed', '-E', '-n', '-s', 's/(a)/\\1/p', 'f'], reads: ['f'] },
  { argv: ['sed', '-n', '/foo/,/bar/p', 'f'], reads: ['f'] },
  { argv: ['sed', 's/[/]/x/', 'f'], reads: ['f'] },
  { argv: ['sed', 's/[]/]/x/', 'f'], reads: ['f'] },
  { argv: ['sed', 's/[[:alpha:]]/x/g', 'f'], reads: ['f'] },
  { argv: ['sed', 's|/|\\\\|g', 'f'], reads: ['f'] },
  { argv: ['sed', 's/\\//x/', 'f'], reads: ['f'] },
  { argv: ['sed', 'y/abc/xyz/', 'f'], reads: ['f'] },
  { argv: ['sed', '$!N;s/\\n/ /', 'f'], reads: ['f'] },
  { argv: ['sed', ':a;N;$!ba;s/\\n/,/g', 'f'], reads: ['f'] },
  { argv: ['sed', '/x/{s/a/b/;p}', 'f'], reads: ['f'] },
  { argv: ['sed', '1!G;h;$!d', 'f'], reads: ['f'] },
  { argv: ['sed', '/x/I,+2d', 'f'], reads: ['f'] },
  { argv: ['sed', '0~4d', 'f'], reads: ['f'] },
  { argv: ['sed', 's/a/b/3g', 'f'], reads: ['f'] },
  { argv: ['sed', 'q5', 'f'], reads: ['f'] },
  { argv: ['sed', 'l 40', 'f'], reads: ['f'] },
  { argv: ['sed', '--sandbox', 's/a/b/I', 'f'], reads: ['f'] },
  { argv: ['sed', 'a hello w /tmp/x', 'f'], reads: ['f'] }, // one-line text, not a w command
  { argv: ['sed', '1i\\\nw /tmp/x', 'f'], reads: ['f'] }, // text on the next line
  { argv: ['sed', '-e', 'a\\', '-e', 'w /tmp/x', 'f'], reads: ['f'] }, // a\ continues into the next -e
  { argv: ['sed', '#comment w /tmp/x\np', 'f'], reads: ['f'] },
  { argv: ['sed', 'w /dev/stdout', 'f'], reads: ['f'] },
  { argv: ['sed', 's/a/b/w /etc/x', 'f'], reads: ['f'], writes: ['/etc/x'] },
  { argv: ['sed', 's/a/b/gw /tmp/x;p', 'f'], reads: ['f'], writes: ['/tmp/x;p'] }, // the file name runs to the newline
  { argv: ['sed', 's/a/b/ ; w /tmp/x', 'f'], reads: ['f'], writes: ['/tmp/x'] },
  { argv: ['sed', 'w /tmp/out', 'f'], reads: ['f'], writes: ['/tmp/out'] },
  { argv: ['sed', 'W /tmp/out', 'f'], reads: ['f'], writes: ['/tmp/out'] },
  { argv: ['sed', 'r /etc/shadow', 'f'], reads: ['/etc/shadow', 'f'] },
  { argv: ['sed', '1R /etc/shadow', 'f'], reads: ['/etc/shadow', 'f'] },
  { argv: ['sed', '--expression=r /etc/x', 'f'], reads: ['/etc/x', 'f'] },
  { argv: ['sed', '-n', 'e id', 'f'], refused: /e command/ },
  { argv: ['sed', '/x/ e', 'f'], refused: /e command/ },
  { argv: ['sed', 's/x/y/;e', 'f'], refused: /e command/ },
  { argv: ['sed', '1!{e id\n}', 'f'], refused: /e command/ },
  { argv: ['sed', 's/a/b/e', 'f'], refused: /s\/\/\/e/ },
  { argv: ['sed', 's/a/b/ge', 'f'], refused: /s\/\/\/e/ },
  { argv: ['sed', 's/[/]/x/e', 'f'], refused: /s\/\/\/e/ },
  { argv: ['sed', '-f', 'script.sed', 'f'], refused: /sed -f/ },
  { argv: ['sed', '--file=script.sed', 'f'], refused: /sed -f/ },
  { argv: ['sed', 's/a/b/x', 'f'], refused: /could not be parsed/ },
  { argv: ['sed', 'k', 'f'], refused: /could not be parsed/ },
  { argv: ['sed', 'y/ab/', 'f'], refused: /could not be parsed/ },
  { argv: ['sed', 's/a/b/w', 'f'], refused: /could not be parsed/ },
  { argv: ['sed', '-n'] },
]);

cases('awk', [
  { argv: ['awk', '{print $1}', 'f'], reads: ['f'] },
  { argv: ['/usr/bin/awk', '-F:', '$3 > 100 {print $1}', '/etc/passwd'], reads: ['/etc/passwd'] },
  { argv: ['gawk', 'NR>1{print}', 'f'], reads: ['f'] },
  { argv: ['mawk', '/a|b/', 'f'], reads: ['f'] },
  { argv: ['awk', '$0 ~ /x|y/ {n++} END{print n}', 'f'], reads: ['f'] },
  { argv: ['awk', '{ x = a || b }', 'f'], reads: ['f'] },
  { argv: ['awk', '{if ($1 > 5) print}', 'f'], reads: ['f'] },
  { argv: ['awk', '{ a[$1] += $2 } END { for (k in a) if (a[k] > 10) print k, a[k] }', 'f'], reads: ['f'] },
  { argv: ['awk', '{ print (a > b) }', 'f'], reads: ['f'] },
  { argv: ['awk', '{ n = split($0, parts, "/") }', 'f'], reads: ['f'] },
  { argv: ['awk', '{print "a|b > c"}', 'f'], reads: ['f'] },
  { argv: ['awk', '-F/', '{print $2}', 'f'], reads: ['f'] },
  { argv: ['awk', '{ print 4 / 2 / 1 }', 'f'], reads: ['f'] },
  { argv: ['awk', '/[/]x/ { print }', 'f'], reads: ['f'] },
  { argv: ['awk', 'BEGIN { while ((getline line) > 0) n++ }'] },
  { argv: ['awk', '-v', 'x=/etc/shadow', '{print x}', 'f'], reads: ['f'] },
  { argv: ['awk', '{print}', 'x=/etc/shadow', 'f'], reads: ['f'] },
  { argv: ['awk', '{print}', '/etc/passwd', '-F:'], reads: ['/etc/passwd', '-F:'] }, // after the program, operands only
  { argv: ['awk', '--', '{print}', 'f'], reads: ['f'] },
  { argv: ['awk', '{print}', '-'] },
  { argv: ['awk', '-W', 'version'] },
  { argv: ['awk', 'BEGIN{system("id")}'], refused: /system\(\)/ },
  { argv: ['awk', 'BEGIN{system ("id")}'], refused: /system\(\)/ },
  { argv: ['awk', '{print | "sh"}'], refused: /pipes/ },
  { argv: ['awk', '{print |& "sh"}'], refused: /pipes/ },
  { argv: ['awk', '{"date" | getline d}'], refused: /pipes/ },
  { argv: ['awk', '{print > "/tmp/x"}'], refused: /redirects output/ },
  { argv: ['awk', '{print >> "/tmp/x"}'], refused: /redirects output/ },
  { argv: ['awk', '{ printf("%s", $0) > "/tmp/x" }'], refused: /redirects output/ },
  { argv: ['awk', '{ print $1, $2 > "out" }'], refused: /redirects output/ },
  { argv: ['awk', '{print "x" > "/dev/stderr"}'], refused: /redirects output/ }, // conservative
  { argv: ['awk', '{ x = y > z }'], refused: /redirects output/ }, // an unparenthesised comparison in an action reads as redirection
  { argv: ['awk', '{getline line < "/etc/shadow"}'], refused: /getline </ },
  { argv: ['awk', 'BEGIN{while ((getline l < "/etc/shadow") > 0) print l}'], refused: /getline </ },
  { argv: ['awk', 'BEGIN{ARGV[1]="/etc/shadow"; ARGC=2} {print}'], refused: /ARGV/ },
  { argv: ['awk', '@include "x"'], refused: /@/ },
  { argv: ['awk', 'BEGIN{f="system"; @f("id")}'], refused: /@|system/ },
  { argv: ['awk', 'BEGIN { if (1) /x#/ ; system("id") }'], refused: /system/ }, // a regex after if (…), not a comment
  { argv: ['awk', '{ a = 4 / 2; system("id"); b = 1 / 1 }'], refused: /system/ }, // divisions, not a regex
  { argv: ['awk', '{ a = (4) /x#/ ; system("id") }'], refused: /could not be parsed/ }, // division then a comment: awk fails too
  { argv: ['awk', '{print "x}'], refused: /could not be parsed/ },
  { argv: ['awk', '-f', 'prog.awk', 'f'], refused: /awk -f/ },
  { argv: ['awk', '--exec=prog.awk'], refused: /awk -f/ },
  { argv: ['gawk', '-e', 'BEGIN{system("x")}'], refused: /system/ },
  { argv: ['gawk', '-l', 'ext', '{print}'], refused: /load/ },
  { argv: ['mawk', '-W', 'exec', 'prog'], refused: /-W exec/ },
  { argv: ['gawk', '-d/tmp/vars', 'BEGIN{}'], writes: ['/tmp/vars'] },
]);

cases('tar', [
  { argv: ['tar', '-czf', '/tmp/b.tgz', '/etc'], writes: ['/tmp/b.tgz'], reads: ['/etc'], lists: ['/etc'] },
  { argv: ['tar', 'czf', 'b.tgz', 'dir'], writes: ['b.tgz'], reads: ['dir'], lists: ['dir'] },
  { argv: ['tar', '-czf/tmp/x.tgz', 'd'], writes: ['/tmp/x.tgz'], reads: ['d'], lists: ['d'] },
  { argv: ['tar', '-xzf', 'a.tgz'], reads: ['a.tgz'], writes: ['.'], lists: ['.'], sandboxOnly: /tar -x writes through symlinks to directories/ },
  { argv: ['tar', '-xf', 'a.tar', '-C', '/opt'], reads: ['a.tar'], writes: ['/opt'], lists: ['/opt'], sandboxOnly: /tar -x writes through symlinks to directories/ },
  { argv: ['tar', '-C', '/opt', '-xf', 'a.tar'], reads: ['a.tar'], writes: ['/opt'], lists: ['/opt'], sandboxOnly: /tar -x writes through symlinks to directories/ },
  { argv: ['tar', 'xf', 'a.tar', '-C', '/opt'], reads: ['a.tar'], writes: ['/opt'], lists: ['/opt'], sandboxOnly: /tar -x writes through symlinks to directories/ },
  { argv: ['tar', '-tvf', 'a.tar'], reads: ['a.tar'] },
  { argv: ['tar', '-xOf', 'a.tar', 'member'], reads: ['a.tar'] },
  {
    argv: ['tar', '-cf', 'x.tar', '-C', '/etc', 'shadow', '-C', 'ssh', 'sshd_config'],
    writes: ['x.tar'],
    reads: ['/etc/shadow', '/etc/ssh/sshd_config'],
    lists: ['/etc/shadow', '/etc/ssh/sshd_config'],
  },
  { argv: ['tar', '-cf', 'a.tar', '--remove-files', 'd'], writes: ['a.tar', 'd'], reads: ['d'], lists: ['d'] },
  { argv: ['tar', '-rf', 'a.tar', 'f'], reads: ['a.tar', 'f'], writes: ['a.tar'], lists: ['f'] },
  { argv: ['tar', '--delete', '-f', 'a.tar', 'm'], reads: ['a.tar'], writes: ['a.tar'] },
  { argv: ['tar', '-cf', 'a.tar', '-X', '/etc/ex', 'd'], reads: ['/etc/ex', 'd'], writes: ['a.tar'], lists: ['d'] },
  { argv: ['tar', '-g', 'snap', '-cf', 'a.tar', 'd'], reads: ['snap', 'd'], writes: ['snap', 'a.tar'], lists: ['d'] },
  { argv: ['tar', '-cf', 'a.tar', '-N', '/etc/passwd', 'd'], reads: ['/etc/passwd', 'd'], writes: ['a.tar'], lists: ['d'] },
  { argv: ['tar', '-cf', 'a.tar', '-N', '2024-01-01', 'd'], reads: ['d'], writes: ['a.tar'], lists: ['d'] },
  { argv: ['tar', '-xf', 'a.tar', '--one-top-level=/tmp/o'], reads: ['a.tar'], writes: ['/tmp/o', '.'], lists: ['.'], sandboxOnly: /tar -x writes through symlinks to directories/ },
  { argv: ['tar', '-cf', '-', 'd'], reads: ['d'], lists: ['d'] },
  { argv: ['tar', '-xf', '-'], writes: ['.'], lists: ['.'], sandboxOnly: /tar -x writes through symlinks to directories/ },
  { argv: ['tar', '--force-local', '-cf', 'host:x.tar', 'd'], writes: ['host:x.tar'], reads: ['d'], lists: ['d'] },
  { argv: ['tar', '-cf', 'x', '--to-command=sh'], refused: /to-command/ },
  { argv: ['tar', '-cf', 'x', '--to-c=sh'], refused: /to-command/ },
  { argv: ['tar', '-xf', 'a.tar', '-P'], refused: /absolute-names/ },
  { argv: ['tar', '-cf', 'a.tar', '-T', 'list'], refused: /file names from a file/ },
  { argv: ['tar', '-cf', 'a.tar', '-I', 'sh', 'd'], refused: /use-compress-program/ },
  { argv: ['tar', '-cf', 'a.tar', '--use-compress-program=sh', 'd'], refused: /use-compress-program/ },
  { argv: ['tar', 'cIf', 'sh', 'a.tar', 'd'], refused: /use-compress-program/ }, // old-style letters with values
  { argv: ['tar', '-cf', 'a.tar', '--checkpoint=1', '--checkpoint-action=exec=sh', 'd'], refused: /checkpoint-action/ },
  { argv: ['tar', '-F', 'sh', '-cf', 'a.tar', 'd'], refused: /info-script/ },
  { argv: ['tar', '-cf', 'host:/x.tar', 'd'], refused: /remote archive/ },
  { argv: ['tar', '--rsh-command=/bin/sh', '-cf', 'h:x', 'd'], refused: /rsh/ },
]);

cases('find', [
  { argv: ['find'], lists: ['.'] },
  { argv: ['find', '/etc', '-name', '*.conf'], lists: ['/etc'] },
  { argv: ['find', '/a', '/b', '-type', 'f', '-print0'], lists: ['/a', '/b'] },
  { argv: ['find', '-L', '/srv', '-maxdepth', '2'], lists: ['/srv'], sandboxOnly: /find -L follows symlinks/ },
  { argv: ['find', '.', '-type', 'f', '-newer', '/etc/passwd'], reads: ['/etc/passwd'], lists: ['.'] },
  { argv: ['find', '.', '-newermt', '2024-01-01'], lists: ['.'] },
  { argv: ['find', '.', '-newerma', '/etc/x'], reads: ['/etc/x'], lists: ['.'] },
  { argv: ['find', '(', '-name', 'a', '-o', '-name', 'b', ')'], lists: ['.'] },
  { argv: ['find', '/tmp', '-delete'], writes: ['/tmp'], lists: ['/tmp'] },
  { argv: ['find', '/', '-fprint', '/tmp/out'], writes: ['/tmp/out'], lists: ['/'] },
  { argv: ['find', '/', '-fprintf', '/tmp/o', '%p'], writes: ['/tmp/o'], lists: ['/'] },
  { argv: ['find', '/', '-exec', 'cat', '{}', ';'], binaries: ['find', 'cat'], reads: ['/'], lists: ['/'], sandboxOnly: /find -exec gives the files it finds to cat/ },
  { argv: ['find', '/srv', '-name', '*.log', '-exec', 'rm', '{}', '+'], binaries: ['find', 'rm'], reads: ['/srv'], writes: ['/srv'], lists: ['/srv'], sandboxOnly: /find -exec gives the files it finds to rm/ },
  { argv: ['find', '/srv', '-exec', 'cp', '{}', '{}.bak', ';'], binaries: ['find', 'cp'], reads: ['/srv'], writes: ['/srv'], lists: ['/srv'], sandboxOnly: /find -exec gives the files it finds to cp/ },
  { argv: ['find', '/', '-exec', 'cat', '/etc/shadow', ';'], binaries: ['find', 'cat'], reads: ['/', '/etc/shadow'], lists: ['/'] },
  { argv: ['find', '/', '-ok', 'rm', '{}', ';'], binaries: ['find', 'rm'], reads: ['/'], writes: ['/'], lists: ['/'], sandboxOnly: /find -ok gives the files it finds to rm/ },
  { argv: ['find', '.', '-execdir', 'grep', '-l', 'foo', '{}', '+'], binaries: ['find', 'grep'], reads: ['.'], lists: ['.'], sandboxOnly: /find -execdir gives the files it finds to grep/ },
  { argv: ['find', '/x', '-exec', 'sudo', 'rm', '{}', '+'], binaries: ['find', 'sudo', 'rm'], reads: ['/x'], writes: ['/x'], lists: ['/x'], sandboxOnly: /find -exec gives the files it finds to sudo/ },
  { argv: ['find', '/', '-exec', 'sh', '-c', 'x', ';'], binaries: ['find', 'sh'], reads: ['/'], lists: ['/'], nested: ['x'] },
  { argv: ['find', '.', '-exec', 'echo', '+', ';'], binaries: ['find', 'echo'], reads: ['.'], lists: ['.'] }, // `+` not after {} is an argument
  { argv: ['find', '/', '-exec', 'sh', '-c', 'cat {}', ';'], refused: /shell command string/ },
  { argv: ['find', '.', '-exec', '{}', ';'], refused: /run the files it finds/ },
  { argv: ['find', '/', '-exec', 'cat', '{}/../../etc/shadow', ';'], refused: /substitute found file names/ },
  { argv: ['find', '/', '-exec', 'cat', 'x{}', ';'], refused: /substitute found file names/ },
  { argv: ['find', '.', '-execdir', 'cat', '../../x', ';'], refused: /execdir/ },
  { argv: ['find', '.', '-execdir', './run', '{}', ';'], refused: /execdir/ },
  { argv: ['find', '.', '-files0-from', 'list'], refused: /files0-from/ },
  { argv: ['find', '.', '-exec', 'python3', '-c', 'x', ';'], reads: ['.'], lists: ['.'], binaries: ['find', 'python3'], code: [['python3', /would run code from its command line or input: interpreters run code that remux cannot check/]] },
]);

const GIT: Array<[string, RegExp]> = [['git', /runs hooks and programs named in the repository's config/]];

cases('git', [
  { argv: ['git', 'status'], reads: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', 'log', '--oneline', '-n', '5'], reads: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', '-C', '/repo', 'log'], reads: ['/repo'], lists: ['/repo'], code: GIT },
  { argv: ['git', '-C', 'repo', '-C', 'sub', 'status'], reads: ['repo/sub'], lists: ['repo/sub'], code: GIT },
  { argv: ['git', '--no-pager', 'show', 'HEAD:src/a.ts'], reads: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', 'log', '--', 'src/x.ts'], reads: ['.', 'src/x.ts'], lists: ['.'], code: GIT },
  { argv: ['git', 'diff', '--output=/tmp/x'], writes: ['/tmp/x'], reads: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', '-C', '/repo', 'diff', '--no-index', 'a', '/etc/shadow'], reads: ['/repo', '/repo/a', '/etc/shadow'], lists: ['/repo'], code: GIT },
  { argv: ['git', '--work-tree=/w', 'status'], reads: ['/w'], lists: ['/w'], code: GIT },
  { argv: ['git', '--git-dir=/r/.git', '--work-tree=/w', 'commit', '-m', 'x'], reads: ['/r/.git', '/w'], writes: ['/r/.git', '/w'], lists: ['/r/.git', '/w'], code: GIT },
  { argv: ['git', 'blame', '--contents', '/etc/shadow', 'f'], reads: ['/etc/shadow', '.'], lists: ['.'], code: GIT },
  { argv: ['git', 'commit', '-m', 'x'], reads: ['.'], writes: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', 'add', '-A'], reads: ['.'], writes: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', 'branch'], reads: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', 'branch', 'new'], reads: ['.'], writes: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', 'stash', 'list'], reads: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', 'stash'], reads: ['.'], writes: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', 'checkout', 'list'], reads: ['.'], writes: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', 'hash-object', '-w', '/etc/shadow'], reads: ['.', '/etc/shadow'], writes: ['.', '/etc/shadow'], lists: ['.'], code: GIT },
  { argv: ['git', 'config', '--get', 'user.name'], reads: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', 'config', 'user.name'], reads: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', 'clone', 'https://x/y.git', '/tmp/y'], writes: ['/tmp/y'], lists: ['/tmp/y'], code: GIT },
  { argv: ['git', 'clone', '/srv/repo.git'], reads: ['/srv/repo.git'], writes: ['.'], lists: ['/srv/repo.git', '.'], code: GIT },
  { argv: ['git', 'init'], writes: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', 'archive', '-o', '/tmp/a.tar', 'HEAD'], writes: ['/tmp/a.tar'], reads: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', 'format-patch', 'HEAD~1'], writes: ['.'], reads: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', 'format-patch', '-o', '/tmp/p', 'HEAD~1'], writes: ['/tmp/p'], reads: ['.'], lists: ['.'], code: GIT },
  { argv: ['git', '--exec-path'], binaries: ['git'] },
  { argv: ['git', '-c', 'core.pager=sh', 'log'], refused: /git -c/ },
  { argv: ['git', '--config-env=core.pager=X', 'log'], refused: /git -c/ },
  { argv: ['git', '--exec-path=/tmp', 'log'], refused: /exec-path/ },
  { argv: ['git', 'config', 'user.name', 'X'], refused: /git config changes/ },
  { argv: ['git', 'config', '--global', 'core.pager', 'sh'], refused: /git config changes/ },
  { argv: ['git', 'config', '-e'], refused: /git config changes/ },
  { argv: ['git', 'config', 'set', 'x', 'y'], refused: /git config changes/ },
  { argv: ['git', 'clone', '--upload-pack=sh', 'x'], refused: /upload-pack/ },
  { argv: ['git', 'clone', '-u', 'sh', 'x'], refused: /upload-pack/ },
  { argv: ['git', 'clone', '-c', 'core.fsmonitor=x', 'url'], refused: /clone --config/ },
  { argv: ['git', 'clone', '--template=/tmp/t', 'url'], refused: /template/ },
  { argv: ['git', 'fetch', '--upload-pack=sh', 'origin'], refused: /upload-pack/ },
  { argv: ['git', 'ls-remote', '--upload-pack=sh', 'x'], refused: /upload-pack/ },
  { argv: ['git', 'push', '--receive-pack=sh', 'origin'], refused: /receive-pack/ },
  { argv: ['git', 'rebase', '-x', 'sh', 'main'], refused: /rebase --exec/ },
  { argv: ['git', 'rebase', '--exec=sh', 'main'], refused: /rebase --exec/ },
  { argv: ['git', 'rebase', '-i', 'HEAD~3'], refused: /editor/ },
  { argv: ['git', 'grep', '-Osh', 'foo'], refused: /open-files-in-pager/ },
  { argv: ['git', 'grep', '--open-files-in-pager', 'foo'], refused: /open-files-in-pager/ },
  { argv: ['git', 'archive', '--exec=sh', '--remote=x', 'HEAD'], refused: /archive --exec/ },
  { argv: ['git', 'submodule', 'update'], refused: /git submodule/ },
  { argv: ['git', 'difftool'], refused: /git difftool/ },
  { argv: ['git', 'bisect', 'run', 'x'], refused: /git bisect/ },
  { argv: ['git', 'myalias'], refused: /alias/ },
]);

cases('network clients', [
  { argv: ['curl', 'https://example.com'] },
  { argv: ['curl', '-fsSL', '-o', '/tmp/x', 'https://e'], writes: ['/tmp/x'] },
  { argv: ['curl', '-O', 'https://e/f.tgz'], writes: ['.'], sandboxOnly: /curl -O writes a file named after the URL, through a symlink/ },
  { argv: ['curl', '--remote-name-all', '--output-dir', '/tmp', 'https://e/f'], writes: ['/tmp'], sandboxOnly: /curl --remote-name-all writes/ },
  { argv: ['curl', '-O', '--no-clobber', 'https://e/f.tgz'], writes: ['.'] }, // creates the file with O_EXCL
  { argv: ['curl', '--output-dir', '/tmp/d', '-o', '../x', '-o', '/abs', 'https://e/a', 'https://e/b'], writes: ['/tmp/d', '../x', '/abs', '/tmp/d/../x', '/tmp/d//abs'] },
  { argv: ['curl', '-d', '@/etc/shadow', 'https://e'], reads: ['/etc/shadow'] },
  { argv: ['curl', '--data-binary', '@f', 'https://e'], reads: ['f'] },
  { argv: ['curl', '-d', 'a=b', 'https://e'] },
  { argv: ['curl', '-F', 'file=@/etc/shadow', 'https://e'], reads: ['/etc/shadow'] },
  { argv: ['curl', '-F', 'f=@"/etc/a;b";type=text/plain', 'https://e'], reads: ['/etc/a;b'] },
  { argv: ['curl', '-F', 'f=</etc/x;type=text/plain', 'https://e'], reads: ['/etc/x'] },
  { argv: ['curl', '-F', 'name=value', 'https://e'] },
  { argv: ['curl', '-T', '/etc/shadow', 'https://e'], reads: ['/etc/shadow'] },
  { argv: ['curl', '-T', 'f', 'file:///tmp/out'], reads: ['f'], writes: ['/tmp/out'] },
  { argv: ['curl', 'file:///etc/shadow'], reads: ['/etc/shadow'] },
  { argv: ['curl', 'FILE://localhost/etc/%73hadow?x'], reads: ['/etc/shadow'] },
  { argv: ['curl', '--url', 'file:///etc/x'], reads: ['/etc/x'] },
  { argv: ['curl', '-g', 'file:///etc/{a}'], reads: ['/etc/{a}'] },
  { argv: ['curl', '-b', 'cookies.txt', 'https://e'], reads: ['cookies.txt'] },
  { argv: ['curl', '-b', 'a=b', 'https://e'] },
  { argv: ['curl', '-c', '/tmp/jar', 'https://e'], writes: ['/tmp/jar'] },
  { argv: ['curl', '--unix-socket', '/var/run/docker.sock', 'http://x/'], writes: ['/var/run/docker.sock'] },
  { argv: ['curl', '-H', '@/etc/headers', 'https://e'], reads: ['/etc/headers'] },
  { argv: ['curl', '--data-urlencode', 'name@/etc/x', 'https://e'], reads: ['/etc/x'] },
  { argv: ['curl', '--data-urlencode', 'a=b@c', 'https://e'] },
  { argv: ['curl', 'file:///etc/{shadow,passwd}'], refused: /glob/ },
  { argv: ['curl', '-T', '/etc/{shadow,x}', 'https://e'], refused: /glob/ },
  { argv: ['curl', '-g', '-T', '/etc/{x}', 'https://e'], reads: ['/etc/{x}'] },
  { argv: ['curl', '-w', '%{http_code}%output{/tmp/w}', 'https://e'], writes: ['/tmp/w'] },
  { argv: ['curl', '-w', '%output{>>/tmp/w}x', 'https://e'], writes: ['/tmp/w'] },
  { argv: ['curl', '-w', '@/etc/fmt', 'https://e'], reads: ['/etc/fmt'] },
  { argv: ['curl', '--url-query', '@/etc/q', 'https://e'], reads: ['/etc/q'] },
  { argv: ['curl', '-K', '/etc/x', 'https://e'], refused: /curl --config/ },
  { argv: ['curl', '--config', 'x'], refused: /curl --config/ },
  { argv: ['wget', 'https://e/f'], writes: ['.'], sandboxOnly: /wget saves files under names taken from the URL or the server/ },
  { argv: ['wget', '-nv', 'https://e/f'], writes: ['.'], sandboxOnly: /wget saves files under names taken from the URL or the server/ },
  { argv: ['wget', '-O', '/tmp/f', 'https://e'], writes: ['/tmp/f'] },
  { argv: ['wget', '-qO-', 'https://e'] },
  { argv: ['wget', '-P', '/tmp', 'https://e'], writes: ['/tmp'], sandboxOnly: /wget saves files under names taken from the URL or the server/ },
  { argv: ['wget', '-i', '/etc/urls'], reads: ['/etc/urls'], writes: ['.'], sandboxOnly: /wget saves files under names taken from the URL or the server/ },
  { argv: ['wget', '--post-file=/etc/shadow', 'https://e'], reads: ['/etc/shadow'], writes: ['.'], sandboxOnly: /wget saves files under names taken from the URL or the server/ },
  { argv: ['wget', '--spider', 'https://e'] },
  { argv: ['wget', '-e', 'output_document=/etc/x', 'https://e'], refused: /execute/ },
  { argv: ['wget', '--config=/x', 'https://e'], refused: /wget --config/ },
  { argv: ['wget', '--use-askpass=sh', 'https://e'], refused: /askpass/ },
  { argv: ['ssh', 'host', 'uptime'], nested: ['uptime'] },
  { argv: ['ssh', 'host', 'ls', '-l', '/'], nested: ['ls -l /'] },
  { argv: ['ssh', '-p', '22', '-i', '/home/u/.ssh/id', 'host', 'ls'], reads: ['/home/u/.ssh/id'], nested: ['ls'] },
  { argv: ['ssh', 'host', '-l', 'user', 'ls'], nested: ['ls'] },
  { argv: ['ssh', '-o', 'ConnectTimeout=5', '-o', 'BatchMode yes', 'host', 'ls'], nested: ['ls'] },
  { argv: ['ssh', '-o', 'IdentityFile=/k', 'host', 'ls'], reads: ['/k'], nested: ['ls'] },
  { argv: ['ssh', '-o', 'UserKnownHostsFile /dev/null', 'host', 'ls'], reads: ['/dev/null'], writes: ['/dev/null'], nested: ['ls'] },
  { argv: ['ssh', '-E', '/tmp/log', 'host', 'ls'], writes: ['/tmp/log'], nested: ['ls'] },
  { argv: ['ssh', '-N', '-L', '8080:localhost:80', 'host'] },
  { argv: ['ssh', '-s', 'host', 'sftp'] },
  { argv: ['ssh', 'host'], refused: /reads commands from its input/ },
  { argv: ['ssh', '-o', 'ProxyCommand=sh -c x', 'host', 'ls'], refused: /ProxyCommand/ },
  { argv: ['ssh', '-oLocalCommand=x', '-oPermitLocalCommand=yes', 'host', 'ls'], refused: /LocalCommand/ },
  { argv: ['ssh', 'host', '-o', 'KnownHostsCommand=x', 'ls'], refused: /KnownHostsCommand/ },
  { argv: ['ssh', '-F', 'cfg', 'host', 'ls'], refused: /ssh -F/ },
  { argv: ['ssh', '-I', 'lib.so', 'host', 'ls'], refused: /PKCS/ },
  { argv: ['scp', '/etc/hosts', 'host:/tmp/'], reads: ['/etc/hosts'] },
  { argv: ['scp', 'host:/etc/x', '/tmp/x'], writes: ['/tmp/x', '/tmp/x/x'] },
  { argv: ['scp', 'host:f', 'a', '.'], reads: ['a'], writes: ['.', 'f', 'a'] },
  { argv: ['scp', '-r', 'dir', 'user@host:'], reads: ['dir'], lists: ['dir'], sandboxOnly: /scp -r follows symlinks met while recursing/ },
  { argv: ['scp', '-i', 'key', 'a', 'host:b'], reads: ['key', 'a'] },
  { argv: ['scp', '-S', 'sh', 'a', 'host:b'], refused: /scp -S/ },
  { argv: ['scp', '-o', 'ProxyCommand=x', 'a', 'host:b'], refused: /ProxyCommand/ },
  { argv: ['rsync', '-av', '/src/', 'host:/dst/'], reads: ['/src/'], lists: ['/src/'] },
  { argv: ['rsync', '-av', 'host:/src/', '/dst/'], writes: ['/dst/'] },
  { argv: ['rsync', '-a', 'rsync://host/mod/', '/dst'], writes: ['/dst'] },
  { argv: ['rsync', '/src'], reads: ['/src'], lists: ['/src'] },
  { argv: ['rsync', '--remove-source-files', 'a', '/b'], reads: ['a'], writes: ['a', '/b'] },
  { argv: ['rsync', '--exclude-from=/x', '-a', 'a', 'b'], reads: ['/x', 'a'], writes: ['b'], lists: ['a'] },
  { argv: ['rsync', '-f', 'merge /etc/rules', 'a', 'b'], reads: ['/etc/rules', 'a'], writes: ['b'] },
  { argv: ['rsync', '--log-file=/tmp/l', 'a', 'b'], reads: ['a'], writes: ['/tmp/l', 'b'] },
  // The receiver takes these relative to the destination directory.
  { argv: ['rsync', '-a', '--backup-dir=../bk', '--link-dest=/prev', '-T', 'tmp', 'a', '/dst'], reads: ['a', '/prev'], writes: ['/dst', '/dst/../bk', '/dst/tmp'], lists: ['a'] },
  { argv: ['rsync', '--compare-dest=../c', 'a', 'host:/dst'], reads: ['a'] }, // on the remote side
  { argv: ['rsync', '--partial-dir=.part', 'a', 'b'], reads: ['a'], writes: ['b', 'b/.part'] },
  { argv: ['rsync', '--partial-dir=../../p', 'a', 'b'], reads: ['a'], writes: ['b', 'b/../../p'], sandboxOnly: /rsync --partial-dir with \.\./ },
  { argv: ['rsync', '-e', 'ssh -p 2', 'a', 'host:b'], refused: /rsync -e/ },
  { argv: ['rsync', '--rsh=ssh', 'a', 'host:b'], refused: /rsync -e/ },
  { argv: ['rsync', '--rsync-path=sudo rsync', 'a', 'host:b'], refused: /rsync-path/ },
  { argv: ['rsync', '--files-from=list', '/', 'host:'], refused: /file names from a file/ },
  { argv: ['nc', 'host', '80'] },
  { argv: ['nc', '-l', '8080'] },
  { argv: ['nc', '-U', '/var/run/docker.sock'], writes: ['/var/run/docker.sock'] },
  { argv: ['nc', '-e', '/bin/sh', 'host', '80'], refused: /netcat/ },
  { argv: ['nc', '-c', 'sh', 'host', '80'], refused: /netcat/ },
  { argv: ['ncat', '--sh-exec', 'x', 'host', '80'], refused: /netcat/ },
]);

cases('wrappers', [
  { argv: ['env'] },
  { argv: ['env', 'LANG=C', 'sort', 'f'], binaries: ['env', 'sort'], reads: ['f'] },
  { argv: ['env', 'LC_ALL=en_US.UTF-8', 'TZ=America/New_York', 'date'], binaries: ['env', 'date'] },
  { argv: ['env', '-i', 'LANG=C', 'cat', 'f'], binaries: ['env', 'cat'], reads: ['f'] },
  { argv: ['env', '-u', 'HOME', 'cat', 'f'], binaries: ['env', 'cat'], reads: ['f'] },
  { argv: ['env', '--', 'cat', 'f'], binaries: ['env', 'cat'], reads: ['f'] },
  { argv: ['env', '-', 'cat', 'f'], binaries: ['env', 'cat'], reads: ['f'] },
  { argv: ['/usr/bin/env', '/usr/bin/cat', 'f'], binaries: ['/usr/bin/env', '/usr/bin/cat'], reads: ['f'] },
  { argv: ['env', '-S', 'cat /etc/shadow'], refused: /env -S/ },
  { argv: ['env', '--split-string=cat x'], refused: /env -S/ },
  { argv: ['env', '-vS', 'cat x'], refused: /env -S/ },
  { argv: ['env', '-C', '/etc', 'cat', 'shadow'], refused: /chdir/ },
  { argv: ['env', '--chd=/etc', 'cat', 'shadow'], refused: /chdir/ },
  { argv: ['env', '-iC/etc', 'cat', 'shadow'], refused: /chdir/ },
  { argv: ['env', 'LD_PRELOAD=/tmp/x.so', 'cat', 'f'], refused: /LD_PRELOAD/ },
  { argv: ['env', '-i', 'PATH=/tmp/evil', 'cat'], refused: /PATH=/ },
  { argv: ['env', 'FOO=bar', 'cat'], refused: /FOO=/ },
  { argv: ['env', 'TZ=/etc/shadow', 'date'], refused: /TZ=/ },
  { argv: ['env', 'LC_ALL=../../x', 'cat'], refused: /LC_ALL=/ },
  { argv: ['timeout', '5', 'cat', 'f'], binaries: ['timeout', 'cat'], reads: ['f'] },
  { argv: ['timeout', '-s', 'KILL', '5', 'cat', '/etc/shadow'], binaries: ['timeout', 'cat'], reads: ['/etc/shadow'] },
  { argv: ['timeout', '--signal=KILL', '-k', '1', '5s', 'cat', 'f'], binaries: ['timeout', 'cat'], reads: ['f'] },
  { argv: ['timeout', '--kill-after', '1', '5', 'cat', 'f'], binaries: ['timeout', 'cat'], reads: ['f'] },
  { argv: ['timeout', '5'] },
  { argv: ['nice', '-n', '5', '--', 'cat', '/etc/shadow'], binaries: ['nice', 'cat'], reads: ['/etc/shadow'] },
  { argv: ['nice', '-10', 'cat', 'f'], binaries: ['nice', 'cat'], reads: ['f'] },
  { argv: ['nice', '--adjustment=5', 'cat', 'f'], binaries: ['nice', 'cat'], reads: ['f'] },
  { argv: ['nice'] },
  { argv: ['nohup', 'cat', 'f'], binaries: ['nohup', 'cat'], reads: ['f'] },
  { argv: ['stdbuf', '-oL', 'grep', 'x', 'f'], binaries: ['stdbuf', 'grep'], reads: ['f'] },
  { argv: ['stdbuf', '-o', 'L', 'tail', '-f', 'f'], binaries: ['stdbuf', 'tail'], reads: ['f'] },
  { argv: ['setsid', '-f', 'sleep', '1'], binaries: ['setsid', 'sleep'] },
  { argv: ['ionice', '-c', '3', 'cat', 'f'], binaries: ['ionice', 'cat'], reads: ['f'] },
  { argv: ['ionice', '-p', '123'] },
  { argv: ['taskset', '-c', '0', 'cat', 'f'], binaries: ['taskset', 'cat'], reads: ['f'] },
  { argv: ['taskset', '0x1', 'cat', 'f'], binaries: ['taskset', 'cat'], reads: ['f'] },
  { argv: ['taskset', '-p', '123'] },
  { argv: ['chrt', '-f', '10', 'cat', 'f'], binaries: ['chrt', 'cat'], reads: ['f'] },
  { argv: ['chrt', '-p', '123'] },
  { argv: ['unbuffer', '-p', 'cat', 'f'], binaries: ['unbuffer', 'cat'], reads: ['f'] },
  // A multi-call program acts on the name it is run as: -a NAME changes what it does.
  { argv: ['exec', '-a', 'x', 'cat', 'f'], refused: /exec -a runs the program under another name/ },
  { argv: ['env', '--argv0=poweroff', 'systemctl'], refused: /env --argv0 runs the program under another name/ },
  { argv: ['exec', 'cat', 'f'], binaries: ['exec', 'cat'], reads: ['f'] },
  // GNU getopt takes any unambiguous abbreviation.
  { argv: ['tar', '-tf', 'a.tar', '--use=id'], refused: /tar --use-compress-program runs a program/ },
  { argv: ['tar', '-tf', 'a.tar', '--use-compress=id'], refused: /tar --use-compress-program runs a program/ },
  // Wrappers from util-linux, systemd and others run the command after their options.
  { argv: ['setarch', 'x86_64', '-R', 'rm', 'f'], binaries: ['setarch', 'rm'], writes: ['f'] },
  { argv: ['setarch', '-R', 'rm', 'f'], binaries: ['setarch', 'rm'], writes: ['f'] },
  { argv: ['linux64', 'rm', 'f'], binaries: ['linux64', 'rm'], writes: ['f'] },
  { argv: ['setarch', '--list'] },
  { argv: ['setarch', 'x86_64'], refused: /setarch without a command starts \/bin\/sh/ },
  { argv: ['prlimit', '--nofile=10', 'rm', 'f'], binaries: ['prlimit', 'rm'], writes: ['f'] },
  { argv: ['prlimit', '-p', '1'] },
  { argv: ['setpriv', '--reuid=1000', 'rm', 'f'], binaries: ['setpriv', 'rm'], writes: ['f'] },
  { argv: ['choom', '-n', '0', '--', 'rm', 'f'], binaries: ['choom', 'rm'], writes: ['f'] },
  { argv: ['uclampset', '-m', '0', 'rm', 'f'], binaries: ['uclampset', 'rm'], writes: ['f'] },
  { argv: ['systemd-cat', '-t', 'x', 'rm', 'f'], binaries: ['systemd-cat', 'rm'], writes: ['f'] },
  { argv: ['systemd-inhibit', '--why=x', 'rm', 'f'], binaries: ['systemd-inhibit', 'rm'], writes: ['f'] },
  { argv: ['dbus-run-session', '--', 'rm', 'f'], binaries: ['dbus-run-session', 'rm'], writes: ['f'] },
  { argv: ['fakeroot', 'rm', 'f'], binaries: ['fakeroot', 'rm'], writes: ['f'] },
  { argv: ['fakeroot'], refused: /fakeroot without a command starts a shell/ },
  { argv: ['ssh-agent', 'rm', 'f'], binaries: ['ssh-agent', 'rm'], writes: ['f'] },
  { argv: ['ssh-agent'], refused: /outlives the command/ },
  { argv: ['time', '-o', 'out', 'rm', 'f'], binaries: ['time', 'rm'], writes: ['out', 'f'] },
  { argv: ['sg', 'root', '-c', 'rm f'], refused: /sg: runs a shell/ },
  { argv: ['capsh', '--', '-c', 'rm f'], refused: /capsh: runs a command or a shell/ },
  { argv: ['start-stop-daemon', '--start', '--exec', '/bin/rm'], refused: /outside remux/ },
  // D-Bus callers other than busctl: logind's PowerOff, systemd's StartTransientUnit running any program.
  { argv: ['dbus-send', '--system', '--dest=org.freedesktop.login1', '/org/freedesktop/login1', 'org.freedesktop.login1.Manager.PowerOff', 'boolean:false'], refused: /dbus-send: calls D-Bus methods/ },
  { argv: ['gdbus', 'call', '--system', '--dest', 'org.freedesktop.systemd1', '--object-path', '/org/freedesktop/systemd1', '--method', 'org.freedesktop.systemd1.Manager.StartUnit', 'poweroff.target', 'replace'], refused: /gdbus: calls D-Bus methods/ },
  { argv: ['qdbus', '--system', 'org.freedesktop.login1', '/org/freedesktop/login1', 'org.freedesktop.login1.Manager.Reboot', 'false'], refused: /qdbus: calls D-Bus methods/ },
  { argv: ['/lib64/ld-linux-x86-64.so.2', '/bin/bash', '-c', 'rm f'], refused: /the dynamic loader runs the program given to it/ },
  { argv: ['ld.so', '/bin/true'], refused: /dynamic loader/ },
  { argv: ['vim.basic', '-c', '!rm f'], refused: /editors run commands/ },
  { argv: ['pager', '+!rm f', 'x'], refused: /a \+command runs pager commands/ },
  { argv: ['command', '-p', 'cat', 'f'], binaries: ['command', 'cat'], reads: ['f'] },
  { argv: ['command', '-v', 'cat'] },
  { argv: ['builtin', 'eval', 'cat /x'], binaries: ['builtin', 'eval'], nested: ['cat /x'] },
  { argv: ['eval', 'cat', '/x'], nested: ['cat /x'] },
  {
    argv: ['env', 'timeout', '1', 'nice', 'nohup', 'cat', '/x'],
    binaries: ['env', 'timeout', 'nice', 'nohup', 'cat'],
    reads: ['/x'],
  },
  { argv: [...Array<string>(20).fill('nohup'), 'cat', '/x'], refused: /nested wrapper/ },
  { argv: ['sudo', '-u', 'root', 'cat', '/etc/shadow'], binaries: ['sudo', 'cat'], reads: ['/etc/shadow'] },
  { argv: ['sudo', '-n', '-E', '-H', 'cat', 'f'], binaries: ['sudo', 'cat'], reads: ['f'] },
  { argv: ['sudo', '-u#0', '-g', 'adm', '--', 'cat', 'f'], binaries: ['sudo', 'cat'], reads: ['f'] },
  { argv: ['sudo', 'LANG=C', 'cat', 'f'], binaries: ['sudo', 'cat'], reads: ['f'] },
  { argv: ['sudo', '-s'], refused: /interactive shell/ },
  { argv: ['sudo', '-i'], refused: /interactive shell/ },
  { argv: ['sudo', '--shell'], refused: /interactive shell/ },
  { argv: ['sudo', '-e', '/etc/x'], refused: /editor/ },
  { argv: ['sudoedit', '/etc/x'], refused: /another user/ },
  { argv: ['sudo', 'FOO=bar', 'cat'], refused: /FOO=/ },
  { argv: ['sudo', '-D', '/etc', 'cat', 'shadow'], refused: /chdir/ },
  { argv: ['sudo', '-R', '/mnt', 'cat', 'x'], refused: /chroot/ },
  { argv: ['doas', '-u', 'root', 'cat', 'f'], binaries: ['doas', 'cat'], reads: ['f'] },
  { argv: ['doas', '-s'], refused: /doas -s/ },
  { argv: ['flock', '/tmp/l', 'cat', 'f'], binaries: ['flock', 'cat'], writes: ['/tmp/l'], reads: ['f'] },
  { argv: ['flock', '-n', '-w', '5', '/tmp/l', '-c', 'echo x'], writes: ['/tmp/l'], nested: ['echo x'] },
  { argv: ['flock', '9'] },
  { argv: ['busybox', 'cat', '/etc/x'], binaries: ['busybox', 'cat'], reads: ['/etc/x'] },
  { argv: ['busybox', 'sh', '-c', 'x'], binaries: ['busybox', 'sh'], nested: ['x'] },
  { argv: ['busybox', '--list'] },
  { argv: ['busybox', '--install', '-s'], refused: /--install/ },
]);

cases('xargs', [
  { argv: ['xargs'], binaries: ['xargs', 'echo'] },
  { argv: ['xargs', 'echo'], binaries: ['xargs', 'echo'] },
  { argv: ['xargs', '-0', '-n', '1', '-P', '4', 'echo'], binaries: ['xargs', 'echo'] },
  { argv: ['xargs', '-d', '\\n', '-E', 'END', 'echo'], binaries: ['xargs', 'echo'] },
  { argv: ['xargs', '-e', 'echo'], binaries: ['xargs', 'echo'] },
  { argv: ['xargs', '-I{}', 'echo', '{}'], binaries: ['xargs', 'echo'] },
  { argv: ['xargs', '-i', 'echo', '{}'], binaries: ['xargs', 'echo'] },
  { argv: ['xargs', '-a', '/etc/shadow', 'echo'], binaries: ['xargs', 'echo'], reads: ['/etc/shadow'] },
  { argv: ['xargs', '--arg-file=/etc/shadow', 'echo'], binaries: ['xargs', 'echo'], reads: ['/etc/shadow'] },
  { argv: ['xargs', 'timeout', '5', 'echo'], binaries: ['xargs', 'timeout', 'echo'] },
  { argv: ['xargs', 'sh', '-c', 'echo "$@"', 'sh'], binaries: ['xargs', 'sh'], nested: ['echo "$@"'] },
  { argv: ['xargs', '-I{}', 'sh', '-c', 'echo "$1"', 'sh', '{}'], binaries: ['xargs', 'sh'], nested: ['echo "$1"'] },
  { argv: ['xargs', '-I{}', 'sh', '-c', 'echo {}'], refused: /input into a shell command string/ },
  { argv: ['xargs', '-I', 'X', 'bash', '-c', 'echo X'], refused: /input into a shell command string/ },
  { argv: ['xargs', '-i', 'sh', '-c', 'echo {}'], refused: /input into a shell command string/ },
  { argv: ['xargs', '--replace=@', 'flock', '/tmp/l', '-c', 'rm @'], refused: /input into a shell command string/ },
  { argv: ['xargs', '-I{}', '{}'], refused: /unchecked arguments/ },
  { argv: ['xargs', 'cat'], refused: /xargs would pass unchecked arguments to cat/ },
  { argv: ['xargs', 'rm'], refused: /xargs would pass unchecked arguments to rm/ },
  { argv: ['xargs', '-I{}', 'cp', '{}', '/tmp'], refused: /unchecked arguments to cp/ },
  { argv: ['xargs', 'grep', 'foo'], refused: /unchecked arguments to grep/ },
  { argv: ['xargs', 'date'], refused: /unchecked arguments to date/ },
  { argv: ['xargs', 'unknownprog'], refused: /unchecked arguments to unknownprog/ },
  { argv: ['xargs', 'nice', 'cat'], refused: /unchecked arguments to cat/ },
  { argv: ['xargs', 'eval'], refused: /unchecked arguments to eval/ },
  { argv: ['xargs', 'timeout', '5'], refused: /supply the command/ },
  { argv: ['xargs', 'nice'], refused: /supply the command/ },
  { argv: ['xargs', 'env'], refused: /supply the command/ },
  { argv: ['xargs', 'sh', '-c'], refused: /command string/ },
  { argv: ['xargs', 'xargs'], refused: /command from its input/ },
  { argv: ['xargs', 'flock', '/tmp/l'], refused: /supply the command/ },
  { argv: ['xargs', 'busybox'], refused: /supply the command/ },
]);

cases('shells and interpreters', [
  { argv: ['sh', '-c', 'cat /etc/shadow'], nested: ['cat /etc/shadow'] },
  { argv: ['/bin/sh', '-c', 'x'], nested: ['x'] },
  { argv: ['bash', '-c', 'x', 'arg0', '/etc/shadow'], nested: ['x'] },
  { argv: ['bash', '-lc', 'x'], nested: ['x'] },
  { argv: ['bash', '-ec', 'x'], nested: ['x'] },
  { argv: ['bash', '-o', 'pipefail', '-c', 'x'], nested: ['x'] },
  { argv: ['bash', '-eo', 'pipefail', '-c', 'x'], nested: ['x'] },
  { argv: ['bash', '--norc', '--noprofile', '-c', 'x'], nested: ['x'] },
  { argv: ['sh', '-c', '--', 'x'], nested: ['x'] },
  { argv: ['dash', '-c', 'x'], nested: ['x'] },
  { argv: ['zsh', '-c', 'x'], nested: ['x'] },
  { argv: ['bash5.2', '-c', 'x'], nested: ['x'] },
  { argv: ['sh', '-c'] },
  // A script or the input is code remux cannot read: execute_code, and the script is read.
  { argv: ['sh', 'script.sh'], reads: ['script.sh'], code: [['sh', /^would run the script script\.sh, whose contents cannot be checked$/]] },
  { argv: ['bash', '/tmp/x.sh'], reads: ['/tmp/x.sh'], code: [['bash', /script \/tmp\/x\.sh/]] },
  { argv: ['bash', '--', 'script'], reads: ['script'], code: [['bash', /script script/]] },
  { argv: ['bash', '-e', 'x.sh', '/etc/shadow'], reads: ['x.sh'], code: [['bash', /script x\.sh/]] }, // later operands are $1…: data
  { argv: ['bash'], code: [['bash', /without -c reads commands from its input/]] },
  { argv: ['sh', '-s', 'a', '/b'], code: [['sh', /reads commands from its input/]] },
  { argv: ['/bin/sh', '-i'], refused: /interactive/ },
  { argv: ['bash', '-i', '-c', 'x'], refused: /interactive/ },
  { argv: ['fish', '-c', 'x'], refused: /not a POSIX shell/ },
  { argv: ['csh', '-c', 'x'], refused: /not a POSIX shell/ },
  { argv: ['python3', '-c', 'print(1)'], code: [['python3', /^would run code from its command line or input: interpreters run code that remux cannot check$/]] },
  { argv: ['python3', '/tmp/x.py'], reads: ['/tmp/x.py'], code: [['python3', /^would run \/tmp\/x\.py: interpreters/]] },
  // The script by a bare name is read too (as `bash x.sh`): where nothing else bounds the code (unsandboxed: true), its read is checked.
  { argv: ['python3', 'script.py'], reads: ['script.py'], code: [['python3', /^would run script\.py: interpreters/]] },
  { argv: ['python3', '-W', 'ignore', 'x.py', 'arg'], reads: ['x.py'], code: [['python3', /would run x\.py/]] },
  { argv: ['python3', '-c', 'print(1)', 'arg'], code: [['python3', /code from its command line/]] }, // after -c: the code's arguments, no script
  { argv: ['node', '-e', 'x', 'y.js'], code: [['node', /code from its command line/]] },
  { argv: ['python3'], code: [['python3', /interpreters/]] },
  { argv: ['python3', '--version'] },
  { argv: ['python3.12', '-c', 'x'], code: [['python3.12', /interpreters/]] },
  { argv: ['/usr/bin/perl', '-e', 'x'], code: [['/usr/bin/perl', /interpreters/]] },
  { argv: ['perl5.36', '-e', 'x'], code: [['perl5.36', /interpreters/]] },
  { argv: ['node', '-e', 'x'], code: [['node', /interpreters/]] },
  { argv: ['node', '/tmp/x.js'], reads: ['/tmp/x.js'], code: [['node', /would run \/tmp\/x\.js/]] },
  { argv: ['ruby', './x.rb', '--out=/data/o'], reads: ['./x.rb', '/data/o'], code: [['ruby', /would run \.\/x\.rb/]] },
  { argv: ['env', 'TZ=UTC', 'timeout', '5', 'python3', '-c', 'x'], binaries: ['env', 'timeout', 'python3'], code: [['python3', /interpreters/]] },
  { argv: ['sudo', 'bash', 'x.sh'], binaries: ['sudo', 'bash'], reads: ['x.sh'], code: [['bash', /script x\.sh/]] },
  { argv: ['xargs', 'python3'], refused: /unchecked arguments to python3/ },
  { argv: ['xargs', 'sh'], refused: /unchecked arguments to sh, which takes a script/ },
  { argv: ['xargs', 'make'], refused: /unchecked arguments to make/ },
  { argv: ['.', 'script'], refused: /shell script/ },
  { argv: ['source', 'x'], refused: /shell script/ },
  { argv: ['cd', '/etc'], refused: /shell builtin/ },
  { argv: ['export', 'PATH=/x'], refused: /shell builtin/ },
  { argv: ['hash', '-p', '/tmp/evil', 'cat'], refused: /shell builtin/ },
  { argv: ['watch', 'ls'], refused: /through a shell/ },
  { argv: ['parallel', 'echo', ':::', 'a'], refused: /through a shell/ },
  { argv: ['chroot', '/mnt', 'cat', 'x'], refused: /root/ },
  { argv: ['su', '-c', 'x'], refused: /another user/ },
  { argv: ['vim', 'f'], refused: /editors/ },
  { argv: ['tmux', 'new', 'x'], refused: /cannot be checked/ },
  { argv: ['strace', 'cat', 'f'], refused: /tracers/ },
  { argv: ['socat', '-', 'EXEC:sh'], refused: /addresses/ },
  { argv: ['dc', '-e', '!id'], refused: /runs commands/ },
  { argv: ['sqlite3', 'db', '.shell id'], refused: /runs commands/ },
  { argv: ['psql', '-c', '\\! id'], refused: /runs commands/ },
  { argv: ['rename', 's/x/`id`/e', 'f'], refused: /runs commands/ },
]);

cases('build tools and package managers: execute_code', [
  { argv: ['make', '-C', '/tmp'], reads: ['/tmp'], lists: ['/tmp'], code: [['make', /^runs a Makefile's recipes, code that remux cannot check$/]] },
  { argv: ['make', '-C', '/src', 'all'], reads: ['/src'], lists: ['/src'], code: [['make', /Makefile/]] },
  { argv: ['make'], reads: ['.'], lists: ['.'], code: [['make', /Makefile/]] },
  { argv: ['make', '-f', '/x/Makefile', 'PREFIX=/usr/local'], reads: ['/x/Makefile', '/usr/local', '.'], lists: ['.'], code: [['make', /Makefile/]] },
  { argv: ['gmake', '--directory=/w', '-j4'], reads: ['/w'], lists: ['/w'], code: [['gmake', /Makefile/]] },
  { argv: ['npm', 'test'], reads: ['.'], lists: ['.'], code: [['npm', /package scripts/]] },
  { argv: ['npm', '--prefix', '/w/app', 'run', 'build'], reads: ['/w/app'], lists: ['/w/app'], code: [['npm', /package scripts/]] },
  { argv: ['npx', 'tsc'], reads: ['.'], lists: ['.'], code: [['npx', /package scripts/]] },
  { argv: ['yarn', '--cwd', 'web', 'test'], reads: ['web'], lists: ['web'], code: [['yarn', /package scripts/]] },
  { argv: ['pnpm', '-C', '/w', 'install'], reads: ['/w'], lists: ['/w'], code: [['pnpm', /package scripts/]] },
  { argv: ['cargo', 'test', '--manifest-path', '/w/Cargo.toml'], reads: ['/w/Cargo.toml', '.'], lists: ['.'], code: [['cargo', /build scripts/]] },
  { argv: ['make', '-I', '/inc', '-C', 'sub'], reads: ['/inc', 'sub'], lists: ['sub'], code: [['make', /Makefile/]] },
  { argv: ['make', '-I', '/inc'], reads: ['/inc', '.'], lists: ['.'], code: [['make', /Makefile/]] },
  { argv: ['go', 'test', './...'], reads: ['./...', '.'], lists: ['.'], code: [['go', /go generate/]] },
  { argv: ['pip', 'install', '-r', 'requirements.txt', '.'], reads: ['requirements.txt', '.'], lists: ['.'], code: [['pip', /build or setup code/]] },
  { argv: ['pip3.11', 'install', '/w/pkg'], reads: ['/w/pkg', '.'], lists: ['.'], code: [['pip3.11', /setup code/]] },
  { argv: ['timeout', '600', 'make', 'check'], binaries: ['timeout', 'make'], reads: ['.'], lists: ['.'], code: [['make', /Makefile/]] },
]);

cases('container and cluster clients: execute_code', [
  { argv: ['docker', 'exec', 'web', 'rm', '-rf', '/'], reads: ['/'], code: [['docker', /^runs containers and commands in them, code that remux cannot check$/]] },
  { argv: ['kubectl', 'exec', 'pod', '--', 'sh', '-c', 'id'], code: [['kubectl', /containers/]] },
  { argv: ['docker', 'ps'], code: [['docker', /containers/]] }, // read-only verbs too: no per-verb execute_code
  { argv: ['/usr/bin/podman', 'run', '--rm', 'alpine'], code: [['/usr/bin/podman', /containers/]] },
  { argv: ['docker-compose', 'up'], code: [['docker-compose', /containers/]] },
  { argv: ['helm', 'install', 'x', 'chart'], code: [['helm', /containers/]] },
  { argv: ['oc', 'rsh', 'pod'], code: [['oc', /containers/]] },
  { argv: ['lxc-attach', '-n', 'c'], code: [['lxc-attach', /containers/]] },
  { argv: ['buildah', 'run', 'c', 'sh'], code: [['buildah', /containers/]] },
  ...['nerdctl', 'ctr', 'crictl', 'lxc', 'incus', 'podman-compose'].map((p): Case => ({ argv: [p, 'exec', 'x', 'id'], code: [[p, /containers/]] })),
]);

cases('ip, tc, zip and openssl: plain programs but for forms that run commands or load code', [
  { argv: ['ip', 'addr'] },
  { argv: ['ip', 'route', 'show', 'table', 'main'] },
  { argv: ['ip', 'netns', 'list'] },
  { argv: ['ip', '-br', '-c', 'a'] },
  { argv: ['ip', '-n', 'ns1', 'link'] },
  { argv: ['ip', 'n'] }, // neighbour
  { argv: ['ip', 'netns', 'exec', 'NS', 'rm', '-rf', '/'], refused: /^ip netns exec runs a command in a network namespace/ },
  { argv: ['ip', 'vrf', 'exec', 'V', 'cmd'], refused: /ip vrf exec/ },
  { argv: ['ip', '-all', 'netns', 'exec', 'cmd'], refused: /ip netns exec/ },
  { argv: ['ip', 'net', 'e', 'NS', 'id'], refused: /ip net e/ },
  { argv: ['ip', 'netns', 'ex', 'NS', 'id'], refused: /ip netns ex/ },
  { argv: ['ip', 'v', 'exe', 'V', 'id'], refused: /ip v exe/ },
  { argv: ['ip', '-n', 'exec', 'netns', 'exec', 'NS', 'id'], refused: /ip netns exec/ }, // -n takes a value
  { argv: ['ip', '-4', '--', 'netns', 'exec', 'NS', 'id'], refused: /ip netns exec/ },
  { argv: ['ip', '-', '9', 'netns', 'exec', 'NS', 'id'], refused: /ip netns exec/ }, // `-` is -loops, which takes a value
  { argv: ['ip', '-b', '/tmp/cmds'], refused: /^ip -b runs the commands in a file/ },
  { argv: ['ip', '-batch', '-'], refused: /ip -batch/ },
  { argv: ['ip', '-force', '--batch', 'f'], refused: /ip --batch/ },
  { argv: ['tc', 'qdisc', 'show', 'dev', 'eth0'] },
  { argv: ['tc', '-s', '-n', 'exec', 'qdisc'] }, // -n is -netns, which takes a value
  { argv: ['tc', 'filter', 'show', 'dev', 'eth0', 'ingress'] },
  // BPF code attached to a classifier or an action runs in the kernel: execute_code.
  {
    argv: ['tc', 'filter', 'add', 'dev', 'eth0', 'ingress', 'bpf', 'da', 'obj', '/tmp/p.o', 'sec', 'cls'],
    reads: ['/tmp/p.o'],
    code: [['tc', /^loads eBPF code from \/tmp\/p\.o into the kernel, where it runs on network traffic: code remux cannot check$/]],
  },
  { argv: ['tc', 'f', 'a', 'dev', 'eth0', 'egress', 'bpf', 'o', 'p.o'], reads: ['p.o'], code: [['tc', /^loads eBPF code from p\.o/]] }, // prefixes
  { argv: ['tc', 'filter', 'add', 'dev', 'eth0', 'parent', '1:', 'bpf', 'run', 'object-f', 'p.o'], reads: ['p.o'], code: [['tc', /eBPF code from p\.o/]] },
  {
    argv: ['tc', 'filter', 'add', 'dev', 'eth0', 'parent', '1:', 'bpf', 'bc', '4,40 0 0 12,21 0 1 2048,6 0 0 262144,6 0 0 0', 'flowid', '1:1'],
    code: [['tc', /^loads classic BPF code given on its command line into the kernel/]],
  },
  { argv: ['tc', 'filter', 'add', 'dev', 'eth0', 'parent', '1:', 'bpf', 'bytecode-file', '/tmp/ops', 'flowid', '1:1'], reads: ['/tmp/ops'], code: [['tc', /^loads classic BPF code from \/tmp\/ops/]] },
  {
    argv: ['tc', 'filter', 'add', 'dev', 'eth0', 'ingress', 'matchall', 'action', 'bpf', 'object-file', '/tmp/a.o', 'action', 'bpf', 'fd', 'm:x'],
    reads: ['/tmp/a.o', 'm:x'],
    code: [['tc', /^loads eBPF code from \/tmp\/a\.o/], ['tc', /^attaches the eBPF program pinned at m:x/]],
  },
  { argv: ['tc', 'actions', 'add', 'action', 'bpf', 'pinned', '/sys/fs/bpf/tc/globals/p'], reads: ['/sys/fs/bpf/tc/globals/p'], code: [['tc', /pinned at \/sys\/fs\/bpf\/tc\/globals\/p/]] },
  { argv: ['tc', 'exec', 'bpf', 'graft', 'm:globals/jmp_map', 'key', '0', 'run', 'sh', '-c', 'id'], refused: /^tc exec runs a command/ },
  { argv: ['tc', 'e', 'bpf', 'run', 'id'], refused: /^tc e runs a command/ },
  { argv: ['tc', '-d', '-cf', '/etc/x', 'ex', 'bpf', 'run', 'id'], reads: ['/etc/x'], refused: /^tc ex runs a command/ },
  { argv: ['tc', '-', 'exec', 'bpf', 'run', 'id'], refused: /^tc exec/ }, // `-` is -stats
  { argv: ['tc', '-b', '/tmp/cmds'], refused: /^tc -b runs the commands in a file/ },
  { argv: ['tc', '-force', '-batch', '-'], refused: /^tc -batch/ },
  { argv: ['zip', '-r', '/tmp/a.zip', './src'], reads: ['/tmp/a.zip', './src'] },
  { argv: ['zip', '/tmp/a.zip', 'f', '-T'], reads: ['/tmp/a.zip'] },
  { argv: ['zip', 'a.zip', 'f', '-T', '-TT', 'sh -c id'], refused: /^zip -TT\/--unzip-command runs a command/ },
  { argv: ['zip', 'a.zip', 'f', '-qTT=id'], refused: /zip -TT/ },
  { argv: ['zip', 'a.zip', 'f', '-T', '--unzip-command', 'id'], refused: /zip -TT/ },
  { argv: ['zip', 'a.zip', 'f', '--unzip=id'], refused: /zip -TT/ },
  { argv: ['openssl', 'x509', '-in', '/etc/ssl/c.pem', '-noout', '-text'], reads: ['/etc/ssl/c.pem'] },
  { argv: ['openssl', 'list', '-provider', 'legacy', '-providers'] },
  { argv: ['openssl', 'req', '-engine', 'pkcs11', '-new'], refused: /^openssl -engine loads an engine/ },
  { argv: ['openssl', 's_client', '--engine=x'], refused: /openssl -engine/ },
  { argv: ['openssl', 's_client', '-ssl_client_engine', 'x'], refused: /openssl -ssl_client_engine/ },
  { argv: ['openssl', 'engine', 'dynamic', '-pre', 'SO_PATH:/tmp/e.so'], reads: ['SO_PATH:/tmp/e.so'], refused: /^openssl engine loads engines/ },
  { argv: ['openssl', 'list', '-provider-path', '/tmp', '-provider', 'evil'], refused: /openssl -provider-path/ },
  { argv: ['openssl', 'list', '-provider', '/tmp/evil.so'], refused: /openssl -provider with a path/ },
  { argv: ['openssl', 'req', '-config', '/tmp/o.cnf', '-new'], refused: /^openssl -config reads a config file that can load engines and providers/ },
  { argv: ['openssl'], refused: /reads commands from its input/ },
]);

test('a link named ipOBJECT to ip runs ip with that object: ipnetns exec is ip netns exec', () => {
  const r = analyzeArgv(['/usr/local/bin/ipnetns', 'exec', 'NS', 'id'], () => 'ip');
  assert.match(r.refusal ?? '', /^ip netns exec runs a command/);
  assert.equal(analyzeArgv(['/usr/local/bin/ipnetns', 'list'], () => 'ip').refusal, null);
});

cases('programs remux does not know', [
  { argv: ['jq', '.a', '/tmp/f.json'], reads: ['/tmp/f.json'] },
  { argv: ['gcc', '-o', '/tmp/a.out', '-I/usr/include', 'x.c'], reads: ['/tmp/a.out', '/usr/include'] },
  { argv: ['foo', '-vo/etc/x'], reads: ['o/etc/x', '/etc/x'] },
  { argv: ['foo', '-o../x'], reads: ['../x'] },
  { argv: ['foo', '--config=/etc/x', '--level=3'], reads: ['/etc/x'] },
  { argv: ['foo', 'PREFIX=/usr/local'], reads: ['/usr/local'] },
  { argv: ['foo', 'https://e/x', 'host:/x'], reads: ['host:/x'] },
  { argv: ['foo', 'file:///etc/shadow'], reads: ['/etc/shadow'] },
  { argv: ['foo', '.', '..', '../x', './y'], reads: ['.', '..', '../x', './y'] },
  { argv: ['foo', 'secret.txt'] }, // bare words are not taken for paths: the sandbox is the second layer
]);

cases('edge cases', [
  { argv: [], refused: /empty command/ },
  { argv: ['cat', 'a\0b'], refused: /NUL/ },
  { argv: ['cat', '\u00ff\u00fe/x', '\u0001'], reads: ['\u00ff\u00fe/x', '\u0001'] },
  { argv: ['', '/x'], reads: ['/x'] },
  { argv: ['cat', ''] },
]);

describe('a multi-call program told by its verb to act as another of its names', () => {
  test('systemctl halt|poweroff|reboot|kexec acts as that program, wrapped or not; other verbs and later operands do not', () => {
    assert.deepEqual(analyzeArgv(['systemctl', '--no-wall', 'reboot']).actsAs, [{ program: 'systemctl', name: 'reboot' }]);
    assert.deepEqual(analyzeArgv(['sudo', '/usr/bin/systemctl', '-i', 'kexec']).actsAs, [{ program: '/usr/bin/systemctl', name: 'kexec' }]);
    assert.deepEqual(analyzeArgv(['systemctl', 'status', 'reboot']).actsAs, []);
    assert.deepEqual(analyzeArgv(['systemctl', '-p', 'reboot', 'show']).actsAs, []);
  });

  test('systemctl starting a unit that powers off or reboots acts as that program, by the unit\'s other names and globs too', () => {
    const acts = (...argv: string[]): string[] => analyzeArgv(['systemctl', ...argv]).actsAs.map((a) => a.name);
    assert.deepEqual(acts('start', 'poweroff.target'), ['poweroff']);
    assert.deepEqual(acts('isolate', 'reboot'), ['reboot']);
    assert.deepEqual(acts('--no-block', 'start', 'nginx', 'systemd-kexec.service'), ['kexec']);
    assert.deepEqual(acts('start', 'runlevel6.target', 'halt.target'), ['reboot', 'halt']);
    assert.deepEqual(acts('soft-reboot'), ['reboot']);
    assert.deepEqual(acts('start', '*.target').sort(), ['halt', 'kexec', 'poweroff', 'reboot', 'shutdown']);
    assert.deepEqual(acts('status', 'poweroff.target'), []);
    assert.deepEqual(acts('start', 'nginx.service', 'power.target'), []);
  });

  test('systemctl rescue|emergency and the sleep verbs, and starting their targets or services, act as shutdown', () => {
    const acts = (...argv: string[]): string[] => analyzeArgv(['systemctl', ...argv]).actsAs.map((a) => a.name);
    for (const verb of ['rescue', 'emergency', 'suspend', 'hibernate', 'hybrid-sleep', 'suspend-then-hibernate', 'sleep']) assert.deepEqual(acts(verb), ['shutdown'], verb);
    assert.deepEqual(acts('isolate', 'rescue'), ['shutdown']);
    assert.deepEqual(acts('isolate', 'runlevel1.target'), ['shutdown']);
    assert.deepEqual(acts('start', 'emergency.target'), ['shutdown']);
    assert.deepEqual(acts('start', 'rescue.service'), ['shutdown']);
    assert.deepEqual(acts('start', 'systemd-hibernate.service', 'systemd-suspend-then-hibernate.service'), ['shutdown']);
    assert.deepEqual(acts('--no-block', 'start', 'hybrid-sleep.target', 'reboot.target'), ['shutdown', 'reboot']);
    // Looking at them is not entering them.
    assert.deepEqual(acts('status', 'rescue.target'), []);
    assert.deepEqual(acts('start', 'systemd-rescue.service'), []);
  });
});

describe('scale', () => {
  test('10,000 arguments are analysed in linear time', () => {
    const paths = Array.from({ length: 10_000 }, (_, i) => `/data/f${i}`);
    const started = process.hrtime.bigint();
    const r = analyzeArgv(['cat', ...paths]);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.deepEqual(r.reads, paths);
    assert.ok(ms < 200, `took ${ms} ms`);
  });

  test('10,000 options and operands to a tool with option values', () => {
    const argv = ['sort'];
    for (let i = 0; i < 5_000; i++) argv.push('-k', `${i}`);
    argv.push('-o', '/out', ...Array.from({ length: 5_000 }, (_, i) => `in${i}`));
    const r = analyzeArgv(argv);
    assert.equal(r.reads.length, 5_000);
    assert.deepEqual(r.writes, ['/out']);
  });

  test('10,000 unknown-program arguments', () => {
    const r = analyzeArgv(['foo', ...Array.from({ length: 10_000 }, (_, i) => `--x${i}=/p/${i}`)]);
    assert.equal(r.reads.length, 10_000);
  });

  test('a long wrapper chain is refused, not recursed without bound', () => {
    const r = analyzeArgv([...Array<string>(10_000).fill('env'), 'cat', '/x']);
    assert.match(r.refusal ?? '', /nested wrapper/);
  });
});
