// `remux doctor` (= `remux status health`): the disk where the audit store is written (a real 32 MiB
// tmpfs in a mount namespace of its own stands for a full disk), the recordings' limit, and whether
// notification links open on a phone (a real daemon for the address it serves on).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { startDaemon } from '../support/browser-daemon.js';
import { REMUX_BIN, remux, tempHome } from '../support/cli.js';
import { ECHO_POLICY } from '../support/policies.js';

interface Health {
  healthy: boolean;
  checks: Array<{ name: string; ok: boolean; warning?: boolean; detail: string }>;
}

describe('remux doctor', () => {
  const h = tempHome();
  writeFileSync(join(h.home, 'policies.yaml'), ECHO_POLICY);
  after(() => h.remove());

  test('is remux status health, with the disk and the recordings checked', async () => {
    const doctor = await remux(['doctor', '--json'], { env: h.env });
    const health = await remux(['status', 'health', '--json'], { env: h.env });
    const [a, b] = [JSON.parse(doctor.stdout) as Health, JSON.parse(health.stdout) as Health];
    assert.deepEqual(
      a.checks.map((c) => [c.name, c.ok]),
      b.checks.map((c) => [c.name, c.ok]),
    );
    assert.equal(doctor.code, health.code);
    const disk = a.checks.find((c) => c.name === 'disk');
    assert.match(disk?.detail ?? '', /^\d+(\.\d GiB| MiB) free of \d+(\.\d GiB| MiB) where the audit store is written \(/);
    const recordings = a.checks.find((c) => c.name === 'recordings');
    assert.match(recordings?.detail ?? '', /^0 in .*recordings, 0\.0 MB; the daemon keeps at most 10240 MB$/);
    // The text form lines its details up, past the longest name ("policy read_only" here).
    const text = await remux(['doctor'], { env: h.env });
    const rows = text.stdout.trim().split('\n').slice(0, -1);
    const starts = rows.map((row, i) => row.indexOf(a.checks[i]!.detail));
    assert.ok(a.checks.some((c) => c.name === 'policy read_only'), text.stdout);
    assert.equal(new Set(starts).size, 1, text.stdout);
  });

  test('a policy whose rules let programs out of the sandbox (sandbox: false) says which and where; counts are singular when one', async () => {
    const one = tempHome();
    try {
      writeFileSync(
        join(one.home, 'policies.yaml'),
        `policies:\n  read_only:\n    capabilities:\n      - { operation: execute_binary, resource: echo }\n      - operation: execute_binary\n        resource: [ ps, df ]\n        sandbox: false\n      - { operation: write_stdout, resource: null }\n`,
      );
      writeFileSync(join(one.home, 'hosts.yaml'), 'hosts:\n  web1:\n    address: 127.0.0.1\n');
      const r = await remux(['doctor', '--json'], { env: one.env });
      const checks = (JSON.parse(r.stdout) as Health).checks;
      const detail = (name: string): string | undefined => checks.find((c) => c.name === name)?.detail;
      assert.deepEqual(checks.find((c) => c.name === 'policy read_only'), { name: 'policy read_only', ok: true, detail: 'runs ps, df outside the OS sandbox, under static checks alone (sandbox: false at policies.yaml:5)' });
      assert.match(detail('policies') ?? '', /^1 policy in /);
      assert.match(detail('hosts') ?? '', /^1 host in /);
    } finally {
      one.remove();
    }
  });

  test('a default_policy that names no policy fails; a host whose identity file is missing is a warning naming it', async () => {
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: read_olny\n');
    writeFileSync(join(h.home, 'hosts.yaml'), `hosts:\n  web9:\n    address: 192.0.2.9\n    identity: ${join(h.home, 'no-key')}\n`);
    try {
      const r = await remux(['doctor', '--json'], { env: h.env });
      assert.equal(r.code, 1, r.stdout);
      const checks = (JSON.parse(r.stdout) as Health).checks;
      assert.deepEqual(checks.find((c) => c.name === 'default policy'), {
        name: 'default policy',
        ok: false,
        detail: `default_policy read_olny (${join(h.home, 'config.yaml')}) is not a policy of ${join(h.home, 'policies.yaml')} (read_only): commands without --policy are refused`,
      });
      assert.deepEqual(checks.find((c) => c.name === 'host web9'), {
        name: 'host web9',
        ok: true,
        warning: true,
        detail: `identity file ${join(h.home, 'no-key')} (${join(h.home, 'hosts.yaml')}) does not exist: connections to web9 fail until it does`,
      });
    } finally {
      rmSync(join(h.home, 'config.yaml'));
      rmSync(join(h.home, 'hosts.yaml'));
    }
  });

  test('recordings kept without a limit are a warning', async () => {
    writeFileSync(join(h.home, 'config.yaml'), 'sessions:\n  recordings_max_total_mb: null\n');
    try {
      const r = JSON.parse((await remux(['doctor', '--json'], { env: h.env })).stdout) as Health;
      const recordings = r.checks.find((c) => c.name === 'recordings');
      assert.deepEqual([recordings?.ok, recordings?.warning], [true, true]);
      assert.match(recordings?.detail ?? '', /kept without limit .*they may fill the disk/);
    } finally {
      rmSync(join(h.home, 'config.yaml'));
    }
  });

  test('notification links a phone cannot open (a loopback or wildcard console, no notify.base_url) are a warning that names notify.base_url', async () => {
    const notify = async (config: string): Promise<Health['checks'][number] | undefined> => {
      writeFileSync(join(h.home, 'config.yaml'), `${config}notify:\n  channels:\n    - { type: ntfy, topic: ops, token: tk_test }\n`);
      try {
        const r = await remux(['doctor', '--json'], { env: h.env });
        return (JSON.parse(r.stdout) as Health).checks.find((c) => c.name === 'notify');
      } finally {
        rmSync(join(h.home, 'config.yaml'));
      }
    };
    const loopback = await notify('');
    assert.deepEqual([loopback?.ok, loopback?.warning], [true, true]);
    assert.equal(
      loopback?.detail,
      "the links in notifications (approve, deny, open) lead to the daemon's console at 127.0.0.1:7777 (http.listen), an address only this machine reaches: a phone cannot open them; " +
        'set notify.base_url in config.yaml to the console\'s address as the phone reaches it (e.g. "base_url: https://remux.example.com:7777" under notify:)',
    );
    const wildcard = await notify('http:\n  listen: 0.0.0.0:7777\n');
    assert.equal(wildcard?.warning, true);
    assert.match(wildcard?.detail ?? '', /at 0\.0\.0\.0:7777 \(http\.listen\), the wildcard it listens on, which names no machine: a phone cannot open them; set notify\.base_url/);

    const elsewhere = await notify('http:\n  listen: 192.0.2.10:7777\n');
    assert.deepEqual([elsewhere?.ok, elsewhere?.warning], [true, undefined]);
    assert.equal(elsewhere?.detail, "1 channel (ntfy); links lead to the console's own address");
    writeFileSync(join(h.home, 'config.yaml'), 'notify:\n  base_url: https://gw.example:7777\n  channels:\n    - { type: ntfy, topic: ops, token: tk_test }\n');
    const set = (JSON.parse((await remux(['doctor', '--json'], { env: h.env })).stdout) as Health).checks.find((c) => c.name === 'notify');
    rmSync(join(h.home, 'config.yaml'));
    assert.deepEqual([set?.warning, set?.detail], [undefined, '1 channel (ntfy); links lead to https://gw.example:7777']);
    writeFileSync(join(h.home, 'config.yaml'), 'notify:\n  base_url: https://gw.example:7777\n  channels:\n    - { type: ntfy, topic: ops }\n    - { type: ntfy, url: https://ntfy.example/, topic: team, token: tk_x }\n');
    const open = (JSON.parse((await remux(['doctor', '--json'], { env: h.env })).stdout) as Health).checks.find((c) => c.name === 'notify');
    rmSync(join(h.home, 'config.yaml'));
    assert.deepEqual([open?.ok, open?.warning], [true, true], 'a topic without a token is a warning');
    assert.match(open?.detail ?? '', /^ntfy topic https:\/\/ntfy\.sh\/ops has no token: whoever subscribes to the topic's name reads every question and can answer it/);
    assert.doesNotMatch(open?.detail ?? '', /team/, 'a protected topic is not named');
    const none = (JSON.parse((await remux(['doctor', '--json'], { env: h.env })).stdout) as Health).checks.find((c) => c.name === 'notify');
    assert.deepEqual([none?.warning, none?.detail], [undefined, 'no channels (notify.channels): approvals are answered in the console or with remux approvals']);
  });

  test("a running daemon's loopback address (daemon start --listen) is what the warning names, whatever http.listen says", async () => {
    const d = await startDaemon({ 'policies.yaml': ECHO_POLICY, 'config.yaml': 'http:\n  listen: 192.0.2.10:7777\nnotify:\n  channels:\n    - { type: ntfy, topic: ops }\n' }, { name: 'boss', flags: ['--admin'] });
    try {
      const r = JSON.parse((await remux(['doctor', '--json'], { env: d.env })).stdout) as Health;
      const notify = r.checks.find((c) => c.name === 'notify');
      assert.equal(notify?.warning, true);
      assert.ok(notify?.detail.includes(`lead to the daemon's console at ${d.url}, an address only this machine reaches`), notify?.detail);
    } finally {
      await d.stop();
    }
  });

  test('a nearly full disk under the audit store fails the check; a full one refuses commands, saying why', { skip: process.getuid?.() !== 0 && 'needs root to mount a tmpfs' }, () => {
    const mnt = mkdtempSync(join(tmpdir(), 'remux-full-'));
    try {
      // In a mount namespace of its own: the tmpfs is gone with the command, whatever happens. The
      // audit store is made by the first command; then the disk is filled.
      const script = [
        'mount -t tmpfs -o size=32m tmpfs "$1" && mkdir "$1/home" && printf "%s" "$2" > "$1/home/policies.yaml" || exit 9',
        'export REMUX_HOME="$1/home"',
        '"$3" doctor; echo "doctor exit $?"',
        'dd if=/dev/zero of="$1/fill" bs=64k 2>/dev/null',
        '"$3" client run --no-daemon localhost -- echo it-ran; echo "run exit $?"',
      ].join('\n');
      const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('REMUX_') && !name.startsWith('RPIPE_')));
      const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', mnt, ECHO_POLICY, REMUX_BIN], { encoding: 'utf8', env });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^FAIL {2}disk +\d+ MiB free of 32 MiB where the audit store is written \(.*\): actions are refused once the audit store cannot write$/m);
      assert.match(r.stdout, /\nunhealthy\ndoctor exit 1\n/);
      assert.doesNotMatch(r.stdout, /it-ran/);
      assert.match(r.stdout, /\nrun exit 1\n$/);
      assert.match(r.stderr, /audit store .*audit\.db: .*; the disk holding it is full \(\d+ KiB free\): nothing runs until the audit can be written/);
    } finally {
      rmSync(mnt, { recursive: true, force: true });
    }
  });
});

describe('remux doctor: the sandbox and abstract sockets', () => {
  const h = tempHome();
  writeFileSync(join(h.home, 'policies.yaml'), 'policies:\n  web:\n    capabilities:\n      - { operation: execute_binary, resource: curl }\n      - { operation: network }\n  quiet:\n    capabilities:\n      - { operation: execute_binary, resource: echo }\n');
  after(() => h.remove());
  // The kernel as one without Landlock: a seccomp filter answers landlock_create_ruleset (444) with ENOSYS.
  const withoutLandlock = [
    'import ctypes, os, struct, sys',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'code = b"".join(struct.pack("<HBBI", *i) for i in [(0x20, 0, 0, 0), (0x15, 0, 1, 444), (0x06, 0, 0, 0x00050000 | 38), (0x06, 0, 0, 0x7fff0000)])',
    'buf = ctypes.create_string_buffer(code)',
    'class Prog(ctypes.Structure): _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]',
    'prog = Prog(4, ctypes.addressof(buf))',
    'assert libc.prctl(38, 1, 0, 0, 0) == 0 and libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0, ctypes.get_errno()',
    'os.execv(sys.argv[1], sys.argv[1:])',
  ].join('\n');
  const sandboxWarnings = (r: { stdout: string }): string[] =>
    (JSON.parse(r.stdout) as Health).checks.filter((c) => c.name === 'sandbox' && c.warning && /abstract Unix sockets/.test(c.detail)).map((c) => c.detail);

  test("a sandboxed policy with network is a warning where the kernel cannot keep the host's abstract sockets out (Landlock scopes), and only there", { skip: spawnSync(join(REMUX_BIN, '..', 'remux-sandbox-enter'), ['--landlock-abi']).status! < 6 && 'this kernel lacks Landlock scopes itself' }, () => {
    const here = spawnSync(REMUX_BIN, ['doctor', '--json'], { env: { ...process.env, ...h.env }, encoding: 'utf8' });
    assert.deepEqual(sandboxWarnings(here), [], 'Linux 6.12+: no warning');
    const old = spawnSync('python3', ['-c', withoutLandlock, REMUX_BIN, 'doctor', '--json'], { env: { ...process.env, ...h.env }, encoding: 'utf8' });
    assert.deepEqual(sandboxWarnings(old), [
      "web grant network: their sandboxed commands share the host's abstract Unix sockets (X11, D-Bus, …) on this kernel; Linux 6.12 or later keeps them out (Landlock scopes)",
    ]);
  });
});
