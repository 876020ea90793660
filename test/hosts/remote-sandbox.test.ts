// The bwrap prologue run by real dash and bash on this machine: the options it builds from a spec over
// a tree of symlinks and hostile names (order, dedupe, absent paths, read-only parts, hidden paths,
// /tmp, network, the working directory check), and the probe answer format.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { quoteWord } from '../../src/command/render.js';
import type { SandboxSpec } from '../../src/exec/types.js';
import { bwrapAvailable } from '../../src/exec/sandbox.js';
import { bwrapPrologue, parseHolderInfo, parseHolderProbe, parseProbe, runBwrap } from '../../src/hosts/remote-sandbox.js';

const SECURE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const SHELLS = ['dash', 'bash'];

let root: string;
before(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'remux-prologue-')));
});
after(() => rmSync(root, { recursive: true, force: true }));

function spec(parts: Partial<SandboxSpec>): SandboxSpec {
  return { read: [], write: [], hide: [], readOnly: [], network: false, owner: 'test', ...parts };
}

/** The bwrap options the prologue builds in `shell`, or what it printed when it refused. */
function options(shell: string, s: SandboxSpec, cwd = '/usr'): { args: string[]; refused: string } {
  const script = [`c=${cwd}`, ...bwrapPrologue(s, { securePath: SECURE_PATH, noBwrap: 'exit 9', cwdHidden: '{ echo hidden; exit 0; }' }), `printf '%s\\0' "$@"`].join('\n');
  const r = spawnSync(shell, ['-c', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  if (r.stdout === 'hidden\n') return { args: [], refused: 'hidden' };
  return { args: r.stdout.split('\0').slice(0, -1), refused: '' };
}

/** The policy mounts and later options (after the system part), as [flag, ...paths] groups. */
function mounts(args: string[]): string[][] {
  const groups: string[][] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--bind' || a === '--ro-bind' || a === '--symlink') {
      groups.push([a, args[i + 1] as string, args[i + 2] as string]);
      i += 2;
    } else if (a === '--tmpfs' || a === '--remount-ro' || a === '--chdir') {
      groups.push([a, args[i + 1] as string]);
      i += 1;
    } else if (a === '--setenv') {
      i += 2;
    }
  }
  // Only what involves the fixture or /tmp.
  return groups.filter((g) => g.slice(1).some((p) => p.startsWith(root) || p === '/tmp'));
}

for (const shell of SHELLS) {
  describe(`bwrap prologue in ${shell}`, () => {
    test('physical paths, parents before children whatever the written order, write wins over read', () => {
      const x = join(root, `order-${shell}`);
      mkdirSync(join(x, 'y', 'z'), { recursive: true });
      symlinkSync(join(x, 'y', 'z'), join(root, `deep-${shell}`));
      symlinkSync(x, join(root, `top-${shell}`));
      const s = spec({ read: [join(root, `deep-${shell}`), join(x, 'y', 'z')], write: [join(root, `top-${shell}`, 'y', '..', 'y', '..')] });
      const { args } = options(shell, s);
      assert.deepEqual(mounts(args), [
        ['--tmpfs', '/tmp'],
        ['--bind', x, x],
        ['--ro-bind', join(x, 'y', 'z'), join(x, 'y', 'z')],
      ]);
      const same = options(shell, spec({ read: [x], write: [join(root, `top-${shell}`)] }));
      assert.deepEqual(mounts(same.args).filter((g) => g[0] !== '--tmpfs'), [['--bind', x, x]]);
    });

    test('absent paths are not mounted; a policy path covering /tmp keeps the host /tmp', () => {
      assert.deepEqual(mounts(options(shell, spec({ read: [join(root, 'absent'), join(root, 'absent', 'x')] })).args), [['--tmpfs', '/tmp']]);
      const withTmp = options(shell, spec({ read: ['/'] })).args;
      assert.ok(!withTmp.some((a, i) => a === '--tmpfs' && withTmp[i + 1] === '/tmp'), 'the host /tmp, not an empty one');
      assert.deepEqual(withTmp.slice(withTmp.indexOf('/') - 1, withTmp.indexOf('/') + 2), ['--ro-bind', '/', '/']);
      // --proc and --dev come after the policy's mounts.
      assert.ok(withTmp.indexOf('--proc') > withTmp.indexOf('/'));
    });

    test('read-only parts only inside writable mounts, hidden paths last (directories emptied, files nulled)', () => {
      const w = join(root, `w-${shell}`);
      const r = join(root, `r-${shell}`);
      mkdirSync(join(w, 'keep'), { recursive: true });
      mkdirSync(join(r, 'priv'), { recursive: true });
      writeFileSync(join(r, 'key'), 'k');
      mkdirSync(join(root, `elsewhere-${shell}`));
      const s = spec({
        read: [r],
        write: [w],
        readOnly: [join(w, 'keep'), join(r, 'priv'), join(root, `elsewhere-${shell}`)],
        hide: [join(r, 'priv'), join(r, 'key'), join(w, 'keep')],
      });
      const { args } = options(shell, s);
      assert.deepEqual(mounts(args), [
        ['--tmpfs', '/tmp'],
        ['--ro-bind', r, r],
        ['--bind', w, w],
        ['--ro-bind', join(w, 'keep'), join(w, 'keep')],
        ['--tmpfs', join(r, 'priv')],
        ['--remount-ro', join(r, 'priv')],
        ['--ro-bind', '/dev/null', join(r, 'key')],
        ['--tmpfs', join(w, 'keep')],
        ['--remount-ro', join(w, 'keep')],
      ]);
    });

    test('Unix sockets shown but not writable are covered with /dev/null, before the hidden paths; writable ones stay', async () => {
      const w = join(root, `sw-${shell}`);
      const r = join(root, `sr-${shell}`);
      mkdirSync(join(w, 'keep'), { recursive: true });
      mkdirSync(join(r, 'gone'), { recursive: true });
      const at = { shown: join(r, 'a *.sock'), open: join(w, 'b.sock'), locked: join(w, 'keep', 'c.sock'), hidden: join(r, 'gone', 'd.sock') };
      const servers = await Promise.all(Object.values(at).map((p) => new Promise<Server>((resolve) => { const srv = createServer(); srv.listen(p, () => resolve(srv)); })));
      try {
        const { args } = options(shell, spec({ read: [r], write: [w], readOnly: [join(w, 'keep')], hide: [join(r, 'gone')] }));
        assert.deepEqual(mounts(args), [
          ['--tmpfs', '/tmp'],
          ['--ro-bind', r, r],
          ['--bind', w, w],
          ['--ro-bind', join(w, 'keep'), join(w, 'keep')],
          ['--ro-bind', '/dev/null', at.shown],
          ['--ro-bind', '/dev/null', at.hidden],
          ['--ro-bind', '/dev/null', at.locked],
          ['--tmpfs', join(r, 'gone')],
          ['--remount-ro', join(r, 'gone')],
        ]);
      } finally {
        for (const srv of servers) srv.close();
      }
    });

    test('hostile names come through byte for byte', () => {
      const names = ["a b", "it's", '$HOME', '`id`', '-n', 'x\ny', 'trail\n', '*'].map((n) => join(root, `${shell}-${n}`));
      for (const n of names) mkdirSync(n);
      const binds = mounts(options(shell, spec({ read: names })).args).filter((g) => g[0] !== '--tmpfs');
      assert.ok(binds.every((g) => g[0] === '--ro-bind' && g[1] === g[2]));
      const got = binds.map((g) => g[1]);
      assert.deepEqual([...got].sort(), [...names].sort());
    });

    test('network: --share-net after --unshare-all only when granted', () => {
      const off = options(shell, spec({})).args;
      assert.ok(!off.includes('--share-net'));
      const on = options(shell, spec({ network: true })).args;
      assert.equal(on.indexOf('--share-net'), on.indexOf('--unshare-all') + 1);
    });

    test('adversarial: runBwrap keeps the options out of every /proc/PID/cmdline inside; the command gets the stdin of the whole', { skip: bwrapAvailable().ok ? false : 'no usable bubblewrap' }, () => {
      const box = join(root, `args-${shell}`);
      mkdirSync(join(box, 'hidden-dir'), { recursive: true });
      writeFileSync(join(box, 'hidden-file'), 'secret\n');
      const s = spec({ read: [box], hide: [join(box, 'hidden-dir'), join(box, 'hidden-file')] });
      const inside = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done; ls /proc/self/fd; cat";
      const script = [`c=${box}`, ...bwrapPrologue(s, { securePath: SECURE_PATH, noBwrap: 'exit 9', cwdHidden: 'exit 8' }), runBwrap(`-- /bin/sh -c ${quoteWord(inside)}`)].join('\n');
      const r = spawnSync(shell, ['-c', script], { encoding: 'utf8', input: 'from stdin\n' });
      assert.equal(r.status, 0, r.stderr);
      for (const name of ['hidden-dir', 'hidden-file', '--ro-bind']) assert.equal(r.stdout.includes(name), false, `${name} in:\n${r.stdout}`);
      assert.match(r.stdout, /^\S*bwrap --args 9 -- \/bin\/sh -c /m, "the listing shows the sandbox's pid 1");
      assert.doesNotMatch(r.stdout, /^[89]$/m, 'the options pipe and the saved stdin are not kept');
      assert.match(r.stdout, /from stdin\n$/);
    });

    test('the working directory must be visible: a system directory or a mount, not a hidden path or the private /tmp', () => {
      const box = join(root, `box-${shell}`);
      mkdirSync(join(box, 'priv'), { recursive: true });
      const s = spec({ read: [box], hide: [join(box, 'priv')] });
      assert.equal(options(shell, s, '/usr/bin').refused, '');
      assert.equal(options(shell, s, box).refused, '');
      assert.equal(options(shell, s, join(box, 'priv')).refused, 'hidden');
      assert.equal(options(shell, s, '/tmp').refused, 'hidden');
      assert.equal(options(shell, s, root).refused, 'hidden');
      assert.deepEqual(mounts(options(shell, s, box).args).at(-1), ['--chdir', box]);
    });
  });
}

describe('probe answers', () => {
  test('none, started, failed', () => {
    assert.deepEqual(parseProbe(Buffer.from('none\0'), 'h1', SECURE_PATH), { available: false, detail: `no bwrap in PATH ${SECURE_PATH}`, staticFallback: true });
    assert.deepEqual(parseProbe(Buffer.from('found\0bubblewrap 0.12.1\0ok\0'), 'h1', SECURE_PATH), { available: true, detail: 'bubblewrap 0.12.1', staticFallback: true });
    assert.equal(parseProbe(Buffer.from('found\0bubblewrap 0.11.9\0ok\0'), 'h1', SECURE_PATH).warning?.startsWith('bubblewrap 0.11.9 on h1 is older than 0.12.0'), true);
    assert.deepEqual(parseProbe(Buffer.from('found\0bubblewrap 0.8.0\0failed\0\nbwrap: Creating new namespace failed: nope\nmore\0'), 'h1', SECURE_PATH), {
      available: false,
      detail: 'bwrap 0.8.0 cannot start a sandbox: bwrap: Creating new namespace failed: nope',
      staticFallback: true,
    });
    assert.throws(() => parseProbe(Buffer.from('found\0x'), 'h1', SECURE_PATH), /does not end with NUL/);
    assert.throws(() => parseProbe(Buffer.from('what\0'), 'h1', SECURE_PATH), /unexpected/);
  });
});

describe('long-lived sandbox answers', () => {
  const helper = { binary: Buffer.from('\x7fELF'), arch: 'x86_64' };
  test('the helper is sent only to a host of its architecture', () => {
    const ok = Buffer.from('found\0bubblewrap 0.8.0\0ok\0arch\0x86_64\0');
    assert.equal(parseHolderProbe(ok, helper).helper, helper);
    assert.deepEqual(parseHolderProbe(Buffer.from('found\0bubblewrap 0.8.0\0ok\0arch\0aarch64\0'), helper), {
      helper: null,
      detail: 'no long-lived sandboxes (the host is aarch64, remux-sandbox-enter is built for x86_64)',
    });
    assert.equal(parseHolderProbe(ok, null).helper, null, 'not built');
    assert.equal(parseHolderProbe(Buffer.from('found\0bubblewrap 0.8.0\0failed\0why\0'), helper).helper, null, 'no sandbox at all');
  });

  test("a holder's report: bwrap's JSON and the inner shell's ready in either order; incomplete is null; garbage throws", () => {
    const head = 'v/usr\0v/srv/app\0h/srv/app/secret\0keeper\x00100\x00555\x00';
    const json = '{\n    "child-pid": 123\n}\n';
    const expected = { keeper: 100, keeperStart: '555', init: 123, initStart: '777', visible: ['/usr', '/srv/app'], hidden: ['/srv/app/secret'] };
    assert.deepEqual(parseHolderInfo(Buffer.from(`${head}${json}ready\x00777\x00`)), expected);
    assert.deepEqual(parseHolderInfo(Buffer.from(`${head}ready\x00777\x00${json}`)), expected);
    assert.equal(parseHolderInfo(Buffer.from(`${head}${json}`)), null);
    assert.equal(parseHolderInfo(Buffer.from(`${head}ready\x00777\x00{"child-pid": 1`)), null);
    assert.throws(() => parseHolderInfo(Buffer.from(`x/etc\0keeper\x00100\x00555\x00${json}ready\x00777\x00`)), /unexpected answer/);
  });
});
