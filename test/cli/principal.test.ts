// End-to-end: `remux principal …` on a real principals file, and REMUX_TOKEN acting as a principal.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { remux, tempHome } from '../support/cli.js';

const POLICY = `policies:
  read_only:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: echo|true }
      - { operation: write_stdout, resource: null }
  echo_only:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: echo }
      - { operation: write_stdout, resource: null }
`;

/** What `principal rm` and `principal set` say when asked to leave no admin. */
const ONLY_ADMIN = (name: string): string =>
  `remux: ${name} is the only admin principal: without one, nobody could answer approvals or see the whole audit trail in the web console\nhint: make another principal admin first (remux principal set OTHER --admin, or remux principal add NAME --admin), then run this again; --force does it anyway`;

async function addPrincipal(env: Record<string, string>, ...args: string[]): Promise<string> {
  const r = await remux(['principal', 'add', ...args, '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  const added = JSON.parse(r.stdout) as { name: string; token: string };
  assert.equal(added.name, args[0]);
  return added.token;
}

describe('remux principal', () => {
  const h = tempHome();
  const file = join(h.home, 'principals.yaml');
  after(() => h.remove());

  test('add shows the token once and stores only its SHA-256, in a 0600 file; ls shows neither', async () => {
    const token = await addPrincipal(h.env, 'ci', '--hosts', 'env=prod', '--users', 'deploy,www', '--create-as', 'deploy', '--read-only', '--policy', 'read_only');
    assert.match(token, /^rmx_[A-Za-z0-9_-]{43}$/);
    const admin = await addPrincipal(h.env, 'boss', '--admin');
    assert.notEqual(admin, token);
    const stored = readFileSync(file, 'utf8');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(!stored.includes(token) && !stored.includes(admin), 'no token in clear');
    const hash = createHash('sha256').update(token).digest('hex');
    assert.ok(stored.includes(hash), 'the hash is what is kept');

    for (const args of [['principal', 'ls'], ['principal', 'ls', '--json']]) {
      const ls = await remux(args, { env: h.env });
      assert.equal(ls.code, 0, ls.stderr);
      assert.ok(!ls.stdout.includes(token) && !ls.stdout.includes(hash) && !/token|sha256/i.test(ls.stdout), `${args.join(' ')} shows no secret`);
    }
    const rows = JSON.parse((await remux(['principal', 'ls', '--json'], { env: h.env })).stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(
      rows.map(({ created: _created, ...rest }) => rest),
      [
        { name: 'ci', admin: false, hosts: 'env=prod', users: ['deploy', 'www'], createAs: ['deploy'], attach: 'read-only', policies: ['read_only'] },
        { name: 'boss', admin: true, hosts: 'all', users: ['*'], createAs: ['*'], attach: 'interactive', policies: [] },
      ],
    );
  });

  test('rotate replaces the token (the old hash is gone); rm removes; unknown names and bad scopes are usage errors', async () => {
    const before = readFileSync(file, 'utf8');
    const r = await remux(['principal', 'rotate', 'ci', '--json'], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    const { token } = JSON.parse(r.stdout) as { token: string };
    const after = readFileSync(file, 'utf8');
    assert.ok(after.includes(createHash('sha256').update(token).digest('hex')));
    assert.notEqual(after, before);

    assert.equal((await remux(['principal', 'rm', 'ci'], { env: h.env })).code, 0);
    assert.ok(!readFileSync(file, 'utf8').includes('ci:'));
    const unknown = await remux(['principal', 'rm', 'ci'], { env: h.env });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no principal named ci .*known: boss/);

    for (const [args, why] of [
      [['x'], /say which hosts/],
      [['x', '--admin', '--hosts', 'all'], /--admin takes no scope options/],
      [['x', '--hosts', 'web1,env=prod'], /mixes host names and labels/],
      [['x', '--hosts', 'all', '--users', 'Not A User'], /users\[0\]: a tmux user/],
      [['x', '--hosts', 'all', '--users', 'deploy', '--create-as', 'root'], /create_as\[0\]: root is not in users/],
      [['boss', '--admin'], /already exists/],
    ] as const) {
      const bad = await remux(['principal', 'add', ...args], { env: h.env });
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
      assert.match(bad.stderr, why);
    }
    assert.ok(!readFileSync(file, 'utf8').includes(' x:'), 'nothing written for a refused add');
  });

  test('every change of principals is audited by who made it and what was asked, never a token; a refused one too; none without an audit store', async () => {
    const own = tempHome();
    try {
      const token = await addPrincipal(own.env, 'ops', '--hosts', 'web*');
      assert.equal((await remux(['principal', 'set', 'ops', '--read-only'], { env: own.env })).code, 0);
      assert.equal((await remux(['principal', 'rotate', 'ops'], { env: own.env })).code, 0);
      assert.equal((await remux(['principal', 'set', 'nobody', '--hosts', 'x'], { env: own.env })).code, 2);
      assert.equal((await remux(['principal', 'rm', 'ops'], { env: own.env })).code, 0);
      const listed = await remux(['audit', 'ls', '--json'], { env: own.env });
      const records = listed.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { principal: string; host: string; operation: string; resource: string; command: string; exitCode: number; level: string })
        .filter((a) => a.operation.startsWith('principal.'));
      assert.deepEqual(
        records.map((a) => [a.operation, a.resource, a.command, a.exitCode, a.level]),
        [
          ['principal.add', 'ops', 'principal add ops --hosts web*', 0, 'info'],
          ['principal.set', 'ops', 'principal set ops --read-only', 0, 'info'],
          ['principal.rotate', 'ops', 'principal rotate ops', 0, 'info'],
          ['principal.set', 'nobody', 'principal set nobody --hosts x', 2, 'deny'],
          ['principal.rm', 'ops', 'principal rm ops', 0, 'info'],
        ],
      );
      assert.ok(records.every((a) => a.principal.startsWith('cli:') && a.host === '(config)'));
      assert.doesNotMatch(listed.stdout, new RegExp(token));
      // An audit store that cannot be written: the change is not made.
      const blocked = join(own.home, 'audit-blocked');
      writeFileSync(blocked, '');
      const refused = await remux(['principal', 'add', 'late', '--admin'], { env: { ...own.env, REMUX_AUDIT_DB: join(blocked, 'audit.db') } });
      assert.notEqual(refused.code, 0);
      assert.doesNotMatch(readFileSync(join(own.home, 'principals.yaml'), 'utf8'), /late/);
    } finally {
      own.remove();
    }
  });

  test('the last admin is neither removed nor made scoped unless forced: refused (exit 2) and audited as refused', async () => {
    const own = tempHome();
    try {
      const ownFile = join(own.home, 'principals.yaml');
      const run = (...args: string[]): ReturnType<typeof remux> => remux(['principal', ...args], { env: own.env });
      await addPrincipal(own.env, 'boss', '--admin');
      await addPrincipal(own.env, 'ops', '--hosts', 'all');
      const before = readFileSync(ownFile, 'utf8');
      for (const args of [['rm', 'boss'], ['set', 'boss', '--no-admin', '--hosts', 'all']]) {
        const refused = await run(...args);
        assert.deepEqual([refused.code, refused.stderr], [2, `${ONLY_ADMIN('boss')}\n`], args.join(' '));
      }
      assert.equal(readFileSync(ownFile, 'utf8'), before, 'nothing written');

      // With another admin, either is an ordinary change; the last one goes only with --force.
      await addPrincipal(own.env, 'alice', '--admin');
      assert.equal((await run('rm', 'boss')).code, 0);
      const forcedSet = await run('set', 'alice', '--no-admin', '--hosts', 'all', '--force');
      assert.equal(forcedSet.code, 0, forcedSet.stderr);
      await addPrincipal(own.env, 'carol', '--admin');
      assert.equal((await run('rm', 'carol')).code, 2);
      const forcedRm = await run('rm', 'carol', '--force');
      assert.equal(forcedRm.code, 0, forcedRm.stderr);
      const rows = JSON.parse((await run('ls', '--json')).stdout) as Array<{ name: string; admin: boolean }>;
      assert.deepEqual(rows.map((r) => [r.name, r.admin]), [['ops', false], ['alice', false]]);
      // Without an admin to lose, nothing is refused.
      assert.equal((await run('rm', 'alice')).code, 0);

      const records = (await remux(['audit', 'ls', '--json'], { env: own.env })).stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { operation: string; command: string; exitCode: number; level: string })
        .filter((a) => a.operation === 'principal.rm' || a.operation === 'principal.set');
      assert.deepEqual(
        records.map((a) => [a.command, a.exitCode, a.level]),
        [
          ['principal rm boss', 2, 'deny'],
          ['principal set boss --no-admin --hosts all', 2, 'deny'],
          ['principal rm boss', 0, 'info'],
          ['principal set alice --no-admin --hosts all --force', 0, 'info'],
          ['principal rm carol', 2, 'deny'],
          ['principal rm carol --force', 0, 'info'],
          ['principal rm alice', 0, 'info'],
        ],
      );
    } finally {
      own.remove();
    }
  });

  test('a bad principals file is reported with file:line', async () => {
    const bad = tempHome();
    try {
      writeFileSync(join(bad.home, 'principals.yaml'), `principals:\n  ops:\n    token_sha256: ${'a'.repeat(64)}\n    hosts: all\n    attach: sometimes\n`);
      const r = await remux(['principal', 'ls'], { env: bad.env });
      assert.equal(r.code, 2);
      assert.match(r.stderr, new RegExp(`${join(bad.home, 'principals.yaml')}:5: principals\\.ops\\.attach`));
      const health = JSON.parse((await remux(['status', 'health', '--json'], { env: bad.env })).stdout) as { checks: Array<{ name: string; ok: boolean; detail: string }> };
      const check = health.checks.find((c) => c.name === 'principals');
      assert.equal(check?.ok, false);
      assert.match(check?.detail ?? '', /principals\.yaml:5:/);
    } finally {
      bad.remove();
    }
  });
});

describe('remux principal set', () => {
  const h = tempHome();
  const file = join(h.home, 'principals.yaml');
  after(() => h.remove());
  const set = (...args: string[]): ReturnType<typeof remux> => remux(['principal', 'set', ...args], { env: h.env });
  const scopeOf = async (name: string): Promise<Record<string, unknown>> => {
    const rows = JSON.parse((await remux(['principal', 'ls', '--json'], { env: h.env })).stdout) as Array<Record<string, unknown>>;
    const { created: _created, ...scope } = rows.find((r) => r.name === name) ?? {};
    return scope;
  };
  /** A principal's lines in the file as written. */
  const linesOf = (name: string, text = readFileSync(file, 'utf8')): string => new RegExp(`^ {2}${name}:\\n(?: {4}.*\\n)+`, 'm').exec(text)?.[0] ?? '';

  test('changes only what is given; the token, the other principals, comments and ${VAR} references stay; the file mode too, never more readable than 0600', async () => {
    writeFileSync(join(h.home, 'policies.yaml'), POLICY);
    const token = await addPrincipal(h.env, 'ci', '--hosts', 'localhost', '--users', 'deploy,www', '--create-as', 'deploy', '--policy', 'echo_only');
    await addPrincipal(h.env, 'boss', '--admin');
    // What people write by hand: a comment on a principal and on a key, a value from the environment.
    writeFileSync(file, readFileSync(file, 'utf8').replace('  ci:\n', '  # the CI bot, see OPS-12\n  ci:\n').replace('hosts: localhost', 'hosts: ${CI_HOSTS:-localhost} # from the environment'));
    // Group-readable, as a hand-made file may be: a file of token hashes loses what is beyond 0600.
    chmodSync(file, 0o640);
    const bossBefore = linesOf('boss');

    const r = await set('ci', '--read-only', '--policy', 'read_only,echo_only');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'changed principal ci (its token stays the same):\n  attach: read-only (was interactive)\n  policies: read_only,echo_only (was echo_only)\n');
    assert.deepEqual(await scopeOf('ci'), { name: 'ci', admin: false, hosts: 'localhost', users: ['deploy', 'www'], createAs: ['deploy'], attach: 'read-only', policies: ['read_only', 'echo_only'] });
    const text = readFileSync(file, 'utf8');
    assert.match(text, /# the CI bot, see OPS-12\n {2}ci:\n/);
    assert.match(text, /hosts: \$\{CI_HOSTS:-localhost\} # from the environment\n/);
    assert.equal(linesOf('boss', text), bossBefore, 'another principal is left as it was');
    assert.ok(text.includes(createHash('sha256').update(token).digest('hex')), 'the token is kept');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    chmodSync(file, 0o400);
    assert.equal((await set('ci', '--interactive')).code, 0);
    assert.equal((await set('ci', '--read-only')).code, 0);
    assert.equal(statSync(file).mode & 0o777, 0o400, 'a narrower mode is kept');
    chmodSync(file, 0o600);
    assert.deepEqual(readdirSync(h.home).filter((f) => f.includes('principals')), ['principals.yaml'], 'no temp or lock file is left');

    // The same token, held to the new scope: its default policy is now read_only.
    const env = { ...h.env, REMUX_TOKEN: token };
    const ran = await remux(['client', 'run', 'localhost', '--', 'true'], { env });
    assert.equal(ran.code, 0, ran.stderr);
    const audit = (await remux(['audit', 'ls', '--json'], { env: h.env })).stdout.trim().split('\n').map((l) => JSON.parse(l) as { principal: string; policy: string; operation: string });
    assert.deepEqual(audit.filter((a) => !a.operation.startsWith('principal.')).map((a) => [a.principal, a.policy]), [['ci', 'read_only']]);

    const json = await set('ci', '--interactive', '--hosts', 'localhost', '--json');
    assert.equal(json.code, 0, json.stderr);
    const shown = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.deepEqual(shown.changed, ['attach'], 'the same hosts is no change');
    assert.equal(shown.attach, 'interactive');
    assert.ok(!/token|sha256/i.test(json.stdout), 'no secret in the answer');
    assert.match(readFileSync(file, 'utf8'), /hosts: \$\{CI_HOSTS:-localhost\}/, 'a key given its own value again is left as written');

    const before = readFileSync(file, 'utf8');
    const same = await set('ci', '--interactive');
    assert.equal(same.code, 0, same.stderr);
    assert.equal(same.stdout, 'principal ci already has that scope; nothing changed\n');
    assert.equal(readFileSync(file, 'utf8'), before);

    // add, rotate and rm change only their own keys too.
    assert.equal((await remux(['principal', 'rotate', 'ci'], { env: h.env })).code, 0);
    assert.match(readFileSync(file, 'utf8'), /# the CI bot, see OPS-12\n {2}ci:\n(?: {4}.*\n)* {4}hosts: \$\{CI_HOSTS:-localhost\} # from the environment\n/);
  });

  test('create_as follows --users when it was the same as users; narrowed, it keeps those still in --users', async () => {
    await addPrincipal(h.env, 'ops', '--hosts', 'localhost', '--users', 'deploy');
    assert.equal((await set('ops', '--users', 'deploy,www')).code, 0);
    assert.deepEqual((await scopeOf('ops')).createAs, ['deploy', 'www']);
    assert.equal((await set('ops', '--create-as', 'www')).code, 0);
    assert.equal((await set('ops', '--users', 'www,ci')).code, 0);
    assert.deepEqual(await scopeOf('ops'), { name: 'ops', admin: false, hosts: 'localhost', users: ['www', 'ci'], createAs: ['www'], attach: 'interactive', policies: [] });
    const leftOut = await set('ops', '--users', 'ci');
    assert.equal(leftOut.code, 0, leftOut.stderr);
    assert.equal(leftOut.stdout, 'changed principal ops (its token stays the same):\n  users: ci (was www,ci)\n  create as: - (was www)\n');
    assert.equal((await set('ops', '--create-as', 'ci')).code, 0);
    assert.equal((await set('ops', '--create-as', '')).code, 0);
    assert.deepEqual((await scopeOf('ops')).createAs, []);
  });

  test('admin and back: --admin drops the scope, --no-admin needs --hosts, the last admin is never made scoped', async () => {
    await addPrincipal(h.env, 'alice', '--admin');
    const only = await set('boss', '--no-admin', '--hosts', 'all');
    assert.equal(only.code, 0, only.stderr);
    assert.deepEqual(await scopeOf('boss'), { name: 'boss', admin: false, hosts: 'all', users: [], createAs: [], attach: 'interactive', policies: [] });
    assert.doesNotMatch(linesOf('boss'), /admin/);

    const before = readFileSync(file, 'utf8');
    const last = await set('alice', '--no-admin', '--hosts', 'all');
    assert.equal(last.code, 2);
    assert.equal(last.stderr, `${ONLY_ADMIN('alice')}\n`);
    assert.equal(readFileSync(file, 'utf8'), before);

    const promoted = await set('boss', '--admin');
    assert.equal(promoted.code, 0, promoted.stderr);
    assert.match(promoted.stdout, /^changed principal boss \(its token stays the same\):\n {2}admin: yes \(was no\)\n/);
    assert.match(linesOf('boss'), /^ {2}boss:\n {4}token_sha256: [0-9a-f]{64}\n {4}created: .*\n {4}admin: true\n$/, 'its scope keys are gone');
    assert.equal((await set('alice', '--no-admin', '--hosts', 'all', '--read-only')).code, 0, 'boss is an admin now');
  });

  test('bad input is refused as principal add refuses it, naming what is wrong; nothing is written', async () => {
    const before = readFileSync(file, 'utf8');
    for (const [args, why] of [
      [['nobody', '--hosts', 'all'], /^remux: no principal named nobody in .*principals\.yaml \(known: ci, boss, ops, alice\)\n$/],
      [['ci'], /^remux: nothing to change for principal ci: give what changes \(--hosts, --users/],
      [['ci', '--hosts', 'web1,env=prod'], /--hosts: selector "web1,env=prod" mixes host names and labels/],
      [['ci', '--users', 'Not A User'], /users\[0\]: a tmux user/],
      [['ci', '--create-as', 'root'], /create_as\[0\]: root is not in users: it may create sessions only as tmux users it may use; add root to its users too \(--users\)\n/],
      [['ci', '--policy', 'echo_only,nope'], /--policy: no policy named nope in .*policies\.yaml \(known: read_only, echo_only\)/],
      [['ci', '--read-only', '--interactive'], /--read-only and --interactive contradict each other/],
      [['ci', '--admin', '--hosts', 'all'], /--admin takes no scope options/],
      [['boss', '--users', 'deploy'], /boss is an admin: it reaches everything, so it has no scope to change\nhint: .*remux principal set boss --no-admin --hosts SELECTOR/],
      [['boss', '--no-admin', '--users', 'deploy'], /--no-admin: say which hosts boss may use from now on: --hosts SELECTOR/],
    ] as const) {
      const bad = await set(...args);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
      assert.match(bad.stderr, why);
    }
    assert.equal(readFileSync(file, 'utf8'), before);
  });

  test('concurrent `principal set` processes on one principal each change their own field: both land', async () => {
    const results = await Promise.all([set('ops', '--hosts', 'localhost,web1'), set('ops', '--read-only'), set('ops', '--policy', 'echo_only')]);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const scope = await scopeOf('ops');
    assert.deepEqual([scope.hosts, scope.attach, scope.policies], ['localhost,web1', 'read-only', ['echo_only']]);
  });
});

describe('changing the principals file: concurrent commands, locks, bad input', () => {
  const h = tempHome();
  const file = join(h.home, 'principals.yaml');
  const lock = `${file}.lock`;
  after(() => h.remove());

  test('10 concurrent `principal add` processes all land, each with its own working token; no lock or temp file is left', async () => {
    const names = Array.from({ length: 10 }, (_, i) => `bot${i}`);
    const tokens = await Promise.all(names.map((n) => addPrincipal(h.env, n, '--hosts', 'localhost')));
    const rows = JSON.parse((await remux(['principal', 'ls', '--json'], { env: h.env })).stdout) as Array<{ name: string }>;
    assert.deepEqual(rows.map((r) => r.name).sort(), names);
    const stored = readFileSync(file, 'utf8');
    for (const t of tokens) assert.ok(stored.includes(createHash('sha256').update(t).digest('hex')), 'every token\'s hash is kept');
    assert.deepEqual(readdirSync(h.home).filter((f) => f.includes('principals')), ['principals.yaml']);
  });

  test('a lock left by a process that is gone is reported at once, naming the lock file; nothing is written', async () => {
    const before = readFileSync(file, 'utf8');
    // A pid that cannot be running: above the kernel's pid_max.
    writeFileSync(lock, JSON.stringify({ pid: 2 ** 30, host: hostname(), since: '2026-12-01T00:00:00.000Z' }));
    const started = Date.now();
    const r = await remux(['principal', 'add', 'late', '--admin'], { env: h.env });
    assert.equal(r.code, 2, r.stderr);
    assert.ok(Date.now() - started < 4000, 'no waiting for a holder that is gone');
    assert.match(r.stderr, new RegExp(`locked by ${lock}, left by pid ${2 ** 30} on ${hostname()} \\(since 2026-12-01T00:00:00.000Z\\), which is no longer running`));
    assert.match(r.stderr, new RegExp(`rm ${lock}`));
    assert.equal(readFileSync(file, 'utf8'), before);
    assert.equal(existsSync(lock), true, 'a lock is never broken automatically');
  });

  test('a lock held by a live process: the command waits, then gives up naming the lock file and its holder', async () => {
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), since: '2026-12-04T08:00:00.000Z' }));
    const started = Date.now();
    const r = await remux(['principal', 'rm', 'bot0'], { env: h.env });
    const waited = Date.now() - started;
    assert.equal(r.code, 2, r.stderr);
    assert.ok(waited >= 5000, `waited ${waited} ms for the holder`);
    assert.match(r.stderr, new RegExp(`${file} is locked: ${lock} has been held by pid ${process.pid} on ${hostname()} since 2026-12-04T08:00:00.000Z; gave up after 5s`));
    assert.match(r.stderr, /the lock is stale: remove it/);
    assert.match(readFileSync(file, 'utf8'), /bot0:/, 'nothing removed');
  });

  test('a lock released while waiting: the command goes on', async () => {
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
    const pending = remux(['principal', 'rm', 'bot0'], { env: h.env });
    await new Promise((r) => setTimeout(r, 500));
    rmSync(lock);
    const r = await pending;
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(readFileSync(file, 'utf8'), /bot0:/);
  });

  test('bad names and duplicate names: clear usage errors, with file:line for the file', async () => {
    for (const [name, why] of [
      ['no/slash', /bad principal name "no\/slash": use 1-64 letters/],
      ['.hidden', /bad principal name "\.hidden"/],
      ['x'.repeat(65), /bad principal name/],
      ['bot1', /principal bot1 already exists in .*principals\.yaml/],
    ] as const) {
      const r = await remux(['principal', 'add', name, '--admin'], { env: h.env });
      assert.equal(r.code, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, why);
      // What is wrong with the name is said first, whatever else the command lacks (here --hosts).
      const unscoped = await remux(['principal', 'add', name], { env: h.env });
      assert.equal(unscoped.code, 2, `${name}: ${unscoped.stderr}`);
      assert.match(unscoped.stderr, why);
    }
    // A policy the policies file does not have would fail every command of the principal: refused, nothing added.
    writeFileSync(join(h.home, 'policies.yaml'), 'policies:\n  ops:\n    capabilities:\n      - { operation: execute_binary, resource: "true" }\n');
    const typo = await remux(['principal', 'add', 'typo', '--hosts', 'localhost', '--policy', 'ops,opz'], { env: h.env });
    assert.equal(typo.code, 2, typo.stderr);
    assert.match(typo.stderr, /--policy: no policy named opz in .*policies\.yaml \(known: ops\)/);
    assert.doesNotMatch(readFileSync(file, 'utf8'), /typo:/);
    assert.equal((await remux(['principal', 'add', 'typo', '--hosts', 'localhost', '--policy', 'ops'], { env: h.env })).code, 0);
    const hash = 'a'.repeat(64);
    const bad = tempHome();
    try {
      const badFile = join(bad.home, 'principals.yaml');
      writeFileSync(badFile, `principals:\n  ops:\n    token_sha256: ${hash}\n    admin: true\n  ops:\n    token_sha256: ${hash}\n    admin: true\n`);
      for (const args of [['ls'], ['add', 'other', '--admin']]) {
        const r = await remux(['principal', ...args], { env: bad.env });
        assert.equal(r.code, 2);
        assert.match(r.stderr, new RegExp(`${badFile}:5: duplicate key ops`));
      }
      writeFileSync(badFile, `principals:\n  'bad name':\n    token_sha256: ${hash}\n    admin: true\n`);
      const r = await remux(['principal', 'rotate', 'x'], { env: bad.env });
      assert.equal(r.code, 2);
      assert.match(r.stderr, new RegExp(`${badFile}:2: principals\\["bad name"\\]: invalid key: a principal name is 1-64`));
      assert.match(readFileSync(badFile, 'utf8'), /'bad name'/, 'a bad file is never rewritten');
    } finally {
      bad.remove();
    }
  });
});

describe('REMUX_TOKEN in the CLI (no daemon)', () => {
  const h = tempHome();
  after(() => h.remove());

  test('acts as its principal, with its scope and default policy; a token of nobody is refused with 77', async () => {
    writeFileSync(join(h.home, 'policies.yaml'), POLICY);
    const token = await addPrincipal(h.env, 'echoer', '--hosts', 'localhost', '--policy', 'echo_only');
    const env = { ...h.env, REMUX_TOKEN: token };

    const ok = await remux(['client', 'run', 'localhost', '--', 'echo', 'as echoer'], { env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'as echoer\n');
    const otherPolicy = await remux(['client', 'run', 'localhost', '--policy', 'read_only', '--', 'true'], { env });
    assert.equal(otherPolicy.code, 77);
    assert.match(otherPolicy.stderr, /out of scope for echoer: policy read_only is not allowed \(allowed: echo_only\)/);
    const stranger = await remux(['client', 'run', 'localhost', '--', 'echo', 'x'], { env: { ...h.env, REMUX_TOKEN: 'rmx_not-a-token' } });
    assert.equal(stranger.code, 77);
    assert.match(stranger.stderr, /REMUX_TOKEN matches no principal/);
    assert.equal(stranger.stdout, '');

    const audit = (await remux(['audit', 'ls', '--json'], { env: h.env })).stdout.trim().split('\n').map((l) => JSON.parse(l) as { principal: string; level: string; operation: string });
    assert.deepEqual(audit.filter((a) => !a.operation.startsWith('principal.')).map((a) => [a.principal, a.level]), [['echoer', 'info'], ['echoer', 'deny']]);
  });

  test('session ls says when its hosts match no host in the inventory, and when a host it names is in its scope but not there', async () => {
    writeFileSync(join(h.home, 'hosts.yaml'), 'hosts:\n  db1: { address: 127.0.0.1, labels: { env: prod } }\n');
    const env = { ...h.env, REMUX_TOKEN: await addPrincipal(h.env, 'webops', '--hosts', 'web*', '--users', '*') };
    const none = await remux(['session', 'ls'], { env });
    assert.equal(none.code, 77);
    assert.equal(none.stderr, "remux: principal webops's hosts (web*) match no host in the inventory (hosts.yaml): add one (remux hosts add NAME USER@ADDRESS), or change its selector (remux principal set webops --hosts SELECTOR)\n");
    for (const args of [['session', 'ls', '--host', 'web9'], ['session', 'new', 'x', '--host', 'web9']]) {
      const missing = await remux(args, { env });
      assert.equal(missing.code, 77, args.join(' '));
      assert.equal(missing.stderr, "remux: host web9 is in principal webops's scope (web*) but not in the inventory (hosts.yaml): check the name, or add the host (remux hosts add web9 USER@ADDRESS)\n", args.join(' '));
    }
    const outside = await remux(['session', 'ls', '--host', 'db1'], { env });
    assert.equal(outside.code, 77);
    assert.match(outside.stderr, /^remux: principal webops's hosts \(web\*\) match no host in the inventory/, 'what it has, never whether db1 exists');
  });
});
