// End-to-end: config init/show and the policy commands, as a new user runs them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { remux, tempHome } from '../support/cli.js';

describe('remux --version / --help', () => {
  test('prints the package version', async () => {
    const r = await remux(['--version']);
    assert.equal(r.code, 0);
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(r.stdout.trim(), pkg.version);
  });

  test('help shows examples and exit codes', async () => {
    const r = await remux(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Examples:/);
    assert.match(r.stdout, /77/);
    const sub = await remux(['client', 'run', '--help']);
    assert.match(sub.stdout, /remux client run localhost/);
  });

  test('an unknown option is a usage error (exit 2)', async () => {
    const r = await remux(['policy', 'list', '--bogus']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--bogus/);
  });

  test('an unknown command that is a command of a group is pointed to it (exit 2)', async () => {
    const run = await remux(['run', 'localhost', '--', 'true']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unknown command 'run'[\s\S]*hint: did you mean `remux client run`\?/);
    assert.match((await remux(['verify'])).stderr, /hint: did you mean `remux audit verify`\?/);
    const none = await remux(['frobnicate']);
    assert.equal(none.code, 2);
    assert.doesNotMatch(none.stderr, /hint:/);
  });
});

describe('remux config', () => {
  const h = tempHome();
  after(() => h.remove());

  test('init creates the files with private modes and an admin principal whose token is shown once; a second init keeps them', async () => {
    const first = await remux(['config', 'init', '--json'], { env: h.env });
    assert.equal(first.code, 0, first.stderr);
    const report = JSON.parse(first.stdout) as { files: Array<{ path: string; status: string }>; admin: { name: string; token: string } | null };
    assert.deepEqual(
      report.files.map((f) => [f.path.replace(h.home, '~'), f.status]),
      [
        ['~/config.yaml', 'created'],
        ['~/policies.yaml', 'created'],
        ['~/principals.yaml', 'created'],
        ['~/audit.db', 'created'],
      ],
    );
    assert.equal(statSync(h.home).mode & 0o777, 0o700);
    assert.equal(statSync(join(h.home, 'principals.yaml')).mode & 0o777, 0o600);
    assert.equal(report.admin?.name, 'admin');
    assert.match(report.admin?.token ?? '', /^rmx_[A-Za-z0-9_-]{43}$/, 'the token carries 32 random bytes');
    const stored = readFileSync(join(h.home, 'principals.yaml'), 'utf8');
    assert.ok(!stored.includes(report.admin?.token ?? '-'), 'only a hash of the token is stored');
    const second = await remux(['config', 'init', '--json'], { env: h.env });
    const again = JSON.parse(second.stdout) as typeof report;
    assert.ok(again.files.every((f) => f.status === 'kept'));
    assert.equal(again.admin, null, 'no second token');
    assert.equal(readFileSync(join(h.home, 'principals.yaml'), 'utf8'), stored);
  });

  test('after init, hosts list shows this machine, and says how to add a host', async () => {
    const r = await remux(['hosts', 'list'], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^NAME\s+ADDRESS\s+.*\nlocalhost\s+\(this machine\)\s+-\s+-\s+/);
    assert.match(r.stderr, /no hosts in .*hosts\.yaml yet; add one with: remux hosts add web1 ops@10\.0\.0\.5/);
    const json = JSON.parse((await remux(['hosts', 'list', '--json'], { env: h.env })).stdout) as Array<{ name: string; transport: string }>;
    assert.deepEqual(json.map((x) => [x.name, x.transport]), [['localhost', 'local']]);
  });

  test('show --json reports files, defaults and policies', async () => {
    const r = await remux(['config', 'show', '--json'], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    const view = JSON.parse(r.stdout) as { home: string; config: { default_policy: string }; policies: string[] };
    assert.equal(view.home, h.home);
    assert.equal(view.config.default_policy, 'read_only');
    assert.deepEqual([...view.policies].sort(), ['read_only', 'restrictive', 'write_capable']);
  });

  test('`remux status` alone is `remux status info`, --json included', async () => {
    const text = await remux(['status'], { env: h.env });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^remux {9}\d+\.\d+\.\d+ \(node v/);
    const json = JSON.parse((await remux(['status', '--json'], { env: h.env })).stdout) as { home: string };
    assert.equal(json.home, h.home);
  });

  test('a bad config.yaml is reported with file:line and exit 2', async () => {
    const bad = tempHome();
    try {
      writeFileSync(join(bad.home, 'config.yaml'), 'default_policy: read_only\nexec:\n  timeout_secs: 5\n');
      const r = await remux(['config', 'show'], { env: bad.env });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /config\.yaml:3/);
      assert.match(r.stderr, /timeout_secs/);
      // A limit longer than a timer holds would end every command at once: refused, saying the most.
      writeFileSync(join(bad.home, 'config.yaml'), 'default_policy: read_only\nexec:\n  timeout_seconds: 3000000\n');
      const long = await remux(['config', 'show'], { env: bad.env });
      assert.equal(long.code, 2);
      assert.match(long.stderr, /config\.yaml:3.*at most 2147483 \(about 24 days; null for no limit\)/);
    } finally {
      bad.remove();
    }
  });
});

describe('remux policy', () => {
  const h = tempHome();
  after(() => h.remove());

  test('list, show and validate the initial policies', async () => {
    await remux(['config', 'init'], { env: h.env });
    const list = await remux(['policy', 'list', '--json'], { env: h.env });
    assert.equal(list.code, 0, list.stderr);
    const names = (JSON.parse(list.stdout) as Array<{ name: string }>).map((p) => p.name);
    assert.deepEqual(names.sort(), ['read_only', 'restrictive', 'write_capable']);
    const show = await remux(['policy', 'show', 'read_only'], { env: h.env });
    assert.equal(show.code, 0);
    assert.match(show.stdout, /execute_binary/);
    assert.match(show.stdout, /\/var\/log/);
    assert.match(show.stdout, /redact-block=\/-----BEGIN \[A-Z0-9 \]\*PRIVATE KEY-----\/…\/-----END \[A-Z0-9 \]\*PRIVATE KEY-----\//);
    assert.match(show.stdout, /redact=\/\(\?i\)\\bbearer/);
    const json = await remux(['policy', 'show', 'read_only', '--json'], { env: h.env });
    const rules = (JSON.parse(json.stdout) as { rules: Array<{ output?: { redact: string[]; redact_blocks: unknown[] } }> }).rules;
    const output = rules.find((r) => r.output)?.output;
    assert.deepEqual(output?.redact_blocks, [{ from: '-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----', to: '-----END [A-Z0-9 ]*PRIVATE KEY-----' }]);
    assert.ok(output?.redact.every((r) => !r.includes('PRIVATE KEY')));
    const validate = await remux(['policy', 'validate', join(h.home, 'policies.yaml')], { env: h.env });
    assert.equal(validate.code, 0, validate.stderr);
    assert.match(validate.stdout, /^ok: /);
    assert.equal(validate.stderr, '', 'no warning of the initial policies');
  });

  test('validate warns (file:line, exit 0) of an allow rule through a link: it matches paths with links resolved, so never', async () => {
    const real = join(h.home, 'real');
    mkdirSync(join(real, 'logs'), { recursive: true });
    writeFileSync(join(real, 'tool'), '');
    symlinkSync(real, join(h.home, 'link'));
    const file = join(h.home, 'linked.yaml');
    writeFileSync(
      file,
      `policies:\n  p:\n    capabilities:\n      - { operation: execute_binary, resource: ${h.home}/link/tool }\n      - { operation: read_file, resource: "${h.home}/link/logs/**" }\n      - { operation: read_file, resource: "${h.home}/link/**", effect: deny }\n      - { operation: list_directory, resource: "${h.home}/link/**", effect: ask }\n      - { operation: read_file, resource: "${real}/**" }\n`,
    );
    const r = await remux(['policy', 'validate', file], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stderr,
      `${file}:4: warning: p#0 allow execute_binary ${h.home}/link/tool never matches here: ${h.home}/link/tool leads to ${real}/tool, and allow rules match paths with their links resolved; write ${real}/tool\n` +
        `${file}:5: warning: p#1 allow read_file ${h.home}/link/logs/** never matches here: ${h.home}/link/logs leads to ${real}/logs, and allow rules match paths with their links resolved; write ${real}/logs/**\n`,
      'deny and ask rules, which match the path as written too, and a rule on the real path are not warned of',
    );
    const json = JSON.parse((await remux(['policy', 'validate', file, '--json'], { env: h.env })).stdout) as { warnings: Array<{ line: number; rule: number }> };
    assert.deepEqual(json.warnings.map((w) => [w.line, w.rule]), [[4, 0], [5, 1]]);
  });

  test('validate names file:line of an unknown operation', async () => {
    const file = join(h.home, 'bad.yaml');
    writeFileSync(file, 'policies:\n  p:\n    capabilities:\n      - operation: execute_binary\n        resource: cat\n      - operation: exec\n        resource: ls\n');
    const r = await remux(['policy', 'validate', file], { env: h.env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.yaml:6/);
    assert.match(r.stderr, /exec/);
  });

  test('a tab used to indent is the one error said, at its line: not the misreadings it causes around it', async () => {
    const file = join(h.home, 'tab.yaml');
    writeFileSync(file, 'policies:\n  p:\n    capabilities:\n\t- { operation: read_file, resource: /tmp/** }\n');
    const r = await remux(['policy', 'validate', file], { env: h.env });
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `remux: ${file}:4: tabs are not allowed for indentation: indent with spaces\nhint: fix the file at the line shown, then run the command again\n`);
  });

  test('create writes from a template and never overwrites', async () => {
    const out = join(h.home, 'production.yaml');
    const first = await remux(['policy', 'create', 'production', '--template', 'read_only', '--output', out], { env: h.env });
    assert.equal(first.code, 0, first.stderr);
    const second = await remux(['policy', 'create', 'database', '--template', 'write_capable', '--output', out], { env: h.env });
    assert.equal(second.code, 0, second.stderr);
    const before = readFileSync(out, 'utf8');
    const again = await remux(['policy', 'create', 'production', '--template', 'admin', '--output', out], { env: h.env });
    assert.equal(again.code, 2);
    // The file is fine: the hint says what to do instead, not to fix it.
    assert.match(
      again.stderr,
      /^remux: .*production\.yaml:\d+: policy "production" already exists\nhint: the file is left as it was: choose another name, or edit policy production there\n$/,
    );
    assert.equal(readFileSync(out, 'utf8'), before, 'the file is unchanged');
    const v = await remux(['policy', 'validate', out, '--json'], { env: h.env });
    assert.deepEqual((JSON.parse(v.stdout) as { policies: string[] }).policies, ['production', 'database']);
    const unknown = await remux(['policy', 'create', 'x', '--template', 'nope', '--output', out], { env: h.env });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /read_only/);
    const badName = await remux(['policy', 'create', 'log reader', '--template', 'read_only', '--output', out], { env: h.env });
    assert.equal(badName.code, 2, 'a usage error, as an unknown template is');
    assert.match(badName.stderr, /^remux: invalid policy name "log reader": use 1-64 characters of A-Z a-z 0-9 _ \. -/);
    assert.equal(readFileSync(out, 'utf8'), before, 'the file is unchanged');
  });

  test('create --workspace: the developer policy works in that directory, named by its real path; a missing or wrong one is a usage error', async () => {
    const out = join(h.home, 'dev.yaml');
    const real = join(h.home, 'src', 'app');
    mkdirSync(real, { recursive: true });
    symlinkSync(real, join(h.home, 'app-link'));
    const r = await remux(['policy', 'create', 'agent', '--template', 'developer', '--workspace', join(h.home, 'app-link'), '--output', out], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(`workspace ${realpathSync(real)}`), r.stdout);
    const text = readFileSync(out, 'utf8');
    assert.ok(text.includes(`${realpathSync(real)}/**`) && !text.includes('app-link'), text);
    const missing = await remux(['policy', 'create', 'a2', '--template', 'developer', '--workspace', join(h.home, 'nope'), '--output', out], { env: h.env });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no such directory[\s\S]*mkdir -p/);
    const wrong = await remux(['policy', 'create', 'a3', '--template', 'read_only', '--workspace', real, '--output', out], { env: h.env });
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /--workspace goes with --template developer/);
    assert.equal(readFileSync(out, 'utf8'), text, 'refusals leave the file as it was');
  });

  test('check explains an allowed pipeline stage by stage without running it', async () => {
    const r = await remux(['policy', 'check', 'read_only', '--', 'tail -n 5 /var/log/dpkg.log | grep install'], { env: h.env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /tail/);
    assert.match(r.stdout, /grep/);
    assert.match(r.stdout, /\/var\/log\/dpkg\.log/);
    assert.match(r.stdout, /output .*\(at most 10485760 bytes, 6 redaction patterns, 1 redaction block\)/);
    const j = await remux(['policy', 'check', 'read_only', '--json', '--', 'uname'], { env: h.env });
    const output = (JSON.parse(j.stdout) as { output: { max_bytes: number; redact: string[]; redact_blocks: Array<{ from: string; to: string }> } }).output;
    assert.equal(output.max_bytes, 10485760);
    assert.equal(output.redact.length, 6);
    assert.deepEqual(output.redact_blocks, [{ from: '-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----', to: '-----END [A-Z0-9 ]*PRIVATE KEY-----' }]);
  });

  test("check says a working directory that does not exist, where client run exits 125 running nothing; still exit 0 for an allow", async () => {
    const missing = join(tmpdir(), `remux-no-such-dir-${process.pid}`);
    const cd = await remux(['policy', 'check', 'read_only', '--', `cd ${missing} && ls`], { env: h.env });
    assert.equal(cd.code, 0, cd.stdout + cd.stderr);
    assert.match(cd.stdout, /^ALLOW under policy read_only/);
    assert.ok(cd.stdout.includes(`  working directory: ${missing} (no such directory: client run would run nothing, exit 125)\n`), cd.stdout);
    const run = await remux(['client', 'run', 'localhost', '--', `cd ${missing} && ls`], { env: h.env });
    assert.equal(run.code, 125, 'as run finds it');
    const flag = await remux(['policy', 'check', 'read_only', '--json', '-C', missing, '--', 'ls'], { env: h.env });
    assert.equal(flag.code, 0);
    assert.equal((JSON.parse(flag.stdout) as { cwd_problem?: string }).cwd_problem, 'no such directory');
    const aFile = join(h.home, 'a-file');
    writeFileSync(aFile, '');
    const file = await remux(['policy', 'check', 'read_only', '-C', aFile, '--', 'ls'], { env: h.env });
    assert.ok(file.stdout.includes(`  working directory: ${aFile} (not a directory: client run would run nothing, exit 125)\n`), file.stdout);
    const there = await remux(['policy', 'check', 'read_only', '--json', '-C', tmpdir(), '--', 'ls'], { env: h.env });
    assert.equal((JSON.parse(there.stdout) as { cwd_problem?: string }).cwd_problem, undefined, 'nothing said of a directory that exists');
  });

  test('check denies traversal out of /var/log with exit 77 and the resolved path', async () => {
    const r = await remux(['policy', 'check', 'read_only', '--json', '--', 'cat /var/log/../../etc/shadow'], { env: h.env });
    assert.equal(r.code, 77);
    const d = JSON.parse(r.stdout) as { effect: string; reason: string };
    assert.equal(d.effect, 'deny');
    assert.match(d.reason, /\/etc\/shadow/);
  });

  test('check names bidi controls and zero-width characters, so a path cannot look like another (Trojan Source)', async () => {
    const r = await remux(['policy', 'check', 'read_only', '--', 'cat /var/log/x\u202egol.txt /var/lo\u200bg/y'], { env: h.env });
    assert.equal(r.code, 77, r.stdout + r.stderr);
    assert.match(r.stdout, /read_file \/var\/log\/x<U\+202E>gol\.txt: allowed/);
    assert.match(r.stdout, /read_file \/var\/lo<U\+200B>g\/y: no rule/);
    assert.doesNotMatch(r.stdout, /[\u202e\u200b]/u);
  });

  test('check names every character drawn as nothing or breaking a line unseen: soft hyphen, fillers, tags, separators', async () => {
    const r = await remux(['policy', 'check', 'read_only', '--', 'cat /var/log/a\u00adb\u3164c\u{e0041}d\u2028e\u034ff\ufe0fg'], { env: h.env });
    assert.match(r.stdout, /read_file "\/var\/log\/a<U\+00AD>b<U\+3164>c<U\+E0041>d<U\+2028>e<U\+034F>f<U\+FE0F>g": allowed/);
    for (const ch of ['\u00ad', '\u3164', '\u{e0041}', '\u2028', '\u034f', '\ufe0f']) assert.ok(!r.stdout.includes(ch), r.stdout);
  });
});

describe("policy check, as the issue's new user tried it: admin and developer templates", () => {
  const h = tempHome();
  after(() => h.remove());
  const file = join(h.home, 'agents.yaml');
  // The developer workspace is ${HOME}/projects: here the test's own home.
  const env = { ...h.env, REMUX_POLICY_CONFIG: file, HOME: h.home };
  const app = join(h.home, 'projects', 'app');
  const issue = ['make -C /tmp', 'npm test', 'git status', 'python3 /tmp/x.py', 'node /tmp/x.js', 'bash /tmp/x.sh'];

  test('create both, then check the examples', async () => {
    mkdirSync(app, { recursive: true });
    for (const template of ['admin', 'developer']) {
      const r = await remux(['policy', 'create', template, '--template', template, '--output', file], { env });
      assert.equal(r.code, 0, r.stderr);
    }
    for (const command of issue) {
      const admin = await remux(['policy', 'check', 'admin', '--', command], { env, cwd: '/tmp' });
      assert.equal(admin.code, 77, command);
      assert.match(admin.stdout, /^ASK under policy admin: execute_code \S+: .* needs approval under admin#\d+ \(agents\.yaml:\d+\): runs code remux cannot check, bounded by the OS sandbox/, command);
      assert.match(admin.stdout, /stage 1 {2}bounded by the OS sandbox alone: /, command);
      const dev = await remux(['policy', 'check', 'developer', '--', command], { env, cwd: '/tmp' });
      assert.equal(dev.code, 77, command);
      // /tmp, or `/` where a run starts (the sandbox does not show the caller's /tmp: npm test, git status).
      assert.match(dev.stdout, /^DENY under policy developer: (read_file|list_directory) \/(tmp\S*)?: /, command);
    }
    const cd = await remux(['policy', 'check', 'admin', '--json', '--', 'cd /tmp && ls'], { env });
    assert.equal(cd.code, 0, cd.stdout);
    assert.equal(JSON.parse(cd.stdout).cwd, '/tmp');
    assert.equal((await remux(['policy', 'check', 'developer', '--', 'cd /tmp && ls'], { env })).code, 77);
    // In the workspace the developer's agent runs its project's code, sandboxed, without asking.
    for (const command of ['make', 'npm test', 'git status', 'python3 x.py', 'bash x.sh', `cd ${app} && make`]) {
      const r = await remux(['policy', 'check', 'developer', '--json', '--', command], { env, cwd: app });
      assert.equal(r.code, 0, `${command}: ${r.stdout}`);
      assert.equal(JSON.parse(r.stdout).bounds.at(-1).layer, 'sandbox', command);
    }
  });

  // Every name and verb is decided in process by test/policy/templates.test.ts; here a few, as a user runs them.
  test('admin asks before stopping or restarting the machine, by any of its names or systemctl verbs', async () => {
    for (const command of ['shutdown -h now', 'sudo /usr/bin/systemctl reboot', "systemctl start 'pow*.target'", 'systemctl rescue']) {
      const r = await remux(['policy', 'check', 'admin', '--', command], { env, cwd: '/tmp' });
      assert.equal(r.code, 77, `${command}: ${r.stdout}`);
      assert.match(r.stdout, /^ASK under policy admin: execute_binary \S+: (acts as \w+: )?needs approval under admin#\d+ \(agents\.yaml:\d+\): destructive or disruptive program/, command);
    }
    const r = await remux(['policy', 'check', 'admin', '--', 'systemctl status poweroff.target'], { env, cwd: '/tmp' });
    assert.equal(r.code, 0, r.stdout);
  });
});

describe('the read_only template redacts secrets before output leaves', () => {
  const h = tempHome();
  after(() => h.remove());

  test('a private key and a token read from /tmp come out redacted', async () => {
    await remux(['config', 'init'], { env: h.env });
    const dir = mkdtempSync('/tmp/remux-redact-');
    try {
      writeFileSync(join(dir, 'app.log'), 'user=alice password=hunter2 ok\n');
      const keys: string[] = [];
      for (const [name, args] of [['rsa', ['-t', 'rsa', '-b', '2048', '-m', 'PEM']], ['ed', ['-t', 'ed25519']]] as const) {
        const keygen = spawnSync('ssh-keygen', ['-q', ...args, '-N', '', '-f', join(dir, name)]);
        assert.equal(keygen.status, 0, String(keygen.stderr));
        keys.push(readFileSync(join(dir, name), 'utf8'));
      }
      const r = await remux(['client', 'run', 'localhost', '--policy', 'read_only', '--', `cat ${dir}/rsa ${dir}/app.log ${dir}/ed`], { env: h.env });
      assert.equal(r.code, 0, r.stderr);
      const keyLines = keys.flatMap((k) => k.trimEnd().split('\n'));
      assert.ok(keyLines.length > 30);
      const shown = new Set(r.stdout.split('\n'));
      // Every line, the short last body lines too (as a substring only when long enough not to occur by chance).
      for (const line of keyLines) {
        assert.ok(!shown.has(line) && (line.length < 8 || !r.stdout.includes(line)), `key material leaked: ${line}`);
      }
      // One [REDACTED] per key line, in place: the log line between the keys survives where it was.
      const rsaLines = keys[0]?.trimEnd().split('\n').length ?? 0;
      assert.equal(r.stdout, `${'[REDACTED]\n'.repeat(rsaLines)}user=alice [REDACTED] ok\n${'[REDACTED]\n'.repeat(keyLines.length - rsaLines)}`);
      assert.doesNotMatch(r.stdout, /PRIVATE KEY/);
      assert.doesNotMatch(r.stdout, /hunter2/);
      assert.match(r.stdout, /user=alice/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('remux hosts add', () => {
  const h = tempHome();
  after(() => h.remove());

  test('an --identity file that does not exist is added with a note saying so; one that exists, without', async () => {
    const missing = join(h.home, 'no-such-key');
    const r = await remux(['hosts', 'add', 'web1', 'ops@192.0.2.1', '--identity', missing], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, `note: the identity file ${missing} does not exist (yet): connections to web1 fail until it does\n`);
    assert.match(readFileSync(join(h.home, 'hosts.yaml'), 'utf8'), new RegExp(`identity: ${missing}\n`));
    writeFileSync(missing, 'a key\n', { mode: 0o600 });
    const again = await remux(['hosts', 'add', 'web2', 'ops@192.0.2.2', '--identity', missing], { env: h.env });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stderr, '');
  });

  test('a missing identity file fails the host (255) saying how to make the key or where to change it, before any connection', async () => {
    const missing = join(h.home, 'never-made-key');
    assert.equal((await remux(['hosts', 'add', 'nokey', 'ops@127.0.0.1', '--port', '1', '--identity', missing], { env: h.env })).code, 0);
    writeFileSync(join(h.home, 'policies.yaml'), 'policies:\n  p:\n    capabilities:\n      - { operation: execute_binary, resource: "true" }\n');
    const told = `nokey (127.0.0.1:1): identity file ${missing} does not exist: make the key there (ssh-keygen -t ed25519 -f ${missing}, its .pub in the host's authorized_keys) or change the host's identity in hosts.yaml`;
    const run = await remux(['client', 'run', 'nokey', '--policy', 'p', '--', 'true'], { env: h.env });
    assert.equal(run.code, 255, run.stderr);
    assert.equal(run.stderr, `remux: unreachable: ${told}\n`);
    const check = await remux(['hosts', 'check', 'nokey'], { env: h.env });
    assert.equal(check.code, 255, check.stderr);
    assert.ok(check.stdout.includes(told), check.stdout);
  });

  test('a name already in the inventory is refused (exit 2) saying how to overwrite it, the file untouched; --replace does', async () => {
    const file = join(h.home, 'hosts.yaml');
    assert.equal((await remux(['hosts', 'add', 'dup1', 'ops@192.0.2.7'], { env: h.env })).code, 0);
    const before = readFileSync(file, 'utf8');
    const r = await remux(['hosts', 'add', 'dup1', 'ops@192.0.2.8'], { env: h.env });
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `remux: host dup1 already exists in ${file}: add --replace to overwrite it, or pick another name\n`);
    assert.equal(readFileSync(file, 'utf8'), before);
    const replaced = await remux(['hosts', 'add', 'dup1', 'ops@192.0.2.8', '--replace'], { env: h.env });
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.match(readFileSync(file, 'utf8'), /dup1:\n {4}address: 192\.0\.2\.8\n/);
  });
});

describe('concurrent edits of hosts.yaml and policies.yaml queue up (FILE.lock) instead of losing one', () => {
  const h = tempHome();
  after(() => h.remove());

  test('8 concurrent `hosts add` and 6 concurrent `policy create` all land; no lock or temp file is left', async () => {
    const hosts = Array.from({ length: 8 }, (_, i) => `web${i}`);
    const policies = Array.from({ length: 6 }, (_, i) => `p${i}`);
    const results = await Promise.all([
      ...hosts.map((n, i) => remux(['hosts', 'add', n, `ops@192.0.2.${i + 1}`], { env: h.env })),
      ...policies.map((n) => remux(['policy', 'create', n, '--template', 'read_only'], { env: h.env })),
    ]);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const listed = JSON.parse((await remux(['hosts', 'list', '--json'], { env: h.env })).stdout) as Array<{ name: string }>;
    assert.deepEqual(listed.map((x) => x.name).filter((n) => n !== 'localhost').sort(), hosts);
    const text = readFileSync(join(h.home, 'policies.yaml'), 'utf8');
    for (const p of policies) assert.match(text, new RegExp(`^  ${p}:`, 'm'), p);
    const left = spawnSync('ls', ['-a', h.home], { encoding: 'utf8' }).stdout.split('\n');
    assert.deepEqual(left.filter((f) => f.endsWith('.lock') || f.endsWith('.tmp')), []);
  });
});
