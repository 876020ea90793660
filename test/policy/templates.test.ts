import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseCommand } from '../../src/command/parser.js';
import { OutputGate } from '../../src/exec/index.js';
import { ConfigError } from '../../src/config/source.js';
import { evaluate } from '../../src/policy/evaluate.js';
import { loadPolicyFile, parsePolicies } from '../../src/policy/load.js';
import { localResolver } from '../../src/policy/resolve.js';
import { addPolicyToFile, renderTemplate, TEMPLATE_NAMES, TEMPLATES } from '../../src/policy/templates.js';
import type { Decision, Policy } from '../../src/policy/types.js';

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'remux-templates-')));
after(() => rmSync(dir, { recursive: true, force: true }));
/** The developer template's workspace is ${HOME}/projects: HOME is this test's own directory. */
const ENV = { HOME: dir };
const WORKSPACE = join(dir, 'projects');
mkdirSync(join(WORKSPACE, 'app'), { recursive: true });
for (const f of ['x.py', 'x.js', 'x.sh', 'Makefile', 'package.json']) writeFileSync(join(WORKSPACE, 'app', f), '\n');

const policyFrom = (template: (typeof TEMPLATE_NAMES)[number]): Policy =>
  parsePolicies(renderTemplate(template, 'x'), `${template}.yaml`, ENV).get('x') as Policy;
/** A fresh private key in ssh-keygen's format for the type. */
function generateKey(type: string, extra: readonly string[]): string {
  const file = join(dir, `key-${type}`);
  const r = spawnSync('ssh-keygen', ['-q', '-t', type, ...extra, '-N', '', '-f', file]);
  assert.equal(r.status, 0, String(r.stderr));
  return readFileSync(file, 'utf8');
}
const run = (policy: Policy, command: string, cwd = '/') => evaluate(policy, parseCommand(command), { cwd, resolver: localResolver }).effect;
/** As perform decides on a host with a sandbox (default) or with static checks only. */
const decide = (policy: Policy, command: string, opts: { cwd?: string; sandbox?: boolean } = {}): Decision =>
  evaluate(policy, parseCommand(command), {
    cwd: opts.cwd ?? '/',
    resolver: localResolver,
    enforcement: opts.sandbox === false ? { sandbox: false, why: 'policy x has sandbox: false' } : { sandbox: true },
  });
/** The issue's examples: what a new user tries first. */
const ISSUE_CODE = ['make -C /tmp', 'npm test', 'git status', 'python3 /tmp/x.py', 'node /tmp/x.js', 'bash /tmp/x.sh'];

describe('templates', () => {
  test('every template renders to a valid, commented policy file', () => {
    assert.deepEqual(Object.keys(TEMPLATES).sort(), [...TEMPLATE_NAMES].sort());
    for (const name of TEMPLATE_NAMES) {
      const text = renderTemplate(name, `my_${name}`);
      assert.match(text, /^# remux policies\./);
      assert.doesNotMatch(text, /[&*]a\d/, 'no YAML anchors or aliases');
      const policies = parsePolicies(text, `${name}.yaml`, ENV);
      assert.deepEqual([...policies.keys()], [`my_${name}`]);
    }
  });

  test('restrictive grants no program and no path', () => {
    const p = policyFrom('restrictive');
    assert.deepEqual(
      p.rules.map((r) => r.operation),
      ['write_stdout'],
    );
    assert.equal(run(p, 'uname'), 'deny');
  });

  test('read_only: read tools over /var/log and /tmp, nothing that writes', () => {
    const p = policyFrom('read_only');
    assert.equal(run(p, 'tail -n 5 /var/log/dpkg.log'), 'allow');
    assert.equal(run(p, 'grep -ri error /var/log'), 'allow');
    assert.equal(run(p, 'ls -la /tmp'), 'allow');
    assert.equal(run(p, 'cat /etc/passwd'), 'deny');
    assert.equal(run(p, 'cat /var/log/../../etc/shadow'), 'deny');
    assert.equal(run(p, 'sort -o /tmp/out /var/log/dpkg.log'), 'deny');
    assert.equal(run(p, 'cat /var/log/dpkg.log > /tmp/copy'), 'deny');
    assert.equal(run(p, 'find /var/log -delete'), 'deny');
    for (const writer of ['sed', 'awk', 'tee', 'cp', 'rm', 'sh', 'date', 'hostname']) {
      assert.ok(!p.rules[0]?.resources?.includes(writer), writer);
    }
    const out = p.rules.find((r) => r.operation === 'write_stdout')?.output;
    assert.equal(out?.maxBytes, 10 * 1024 * 1024);
    assert.ok(out);
    // Through the exec layer's gate, fed in small chunks as a pipe would.
    const redact = (text: string): string => {
      const sent: Buffer[] = [];
      const gate = new OutputGate(out, { stdout: (c) => sent.push(c), stderr: () => assert.fail('stderr') }, () => assert.fail('cap'));
      const src = gate.source('stdout');
      const buf = Buffer.from(text);
      for (let i = 0; i < buf.length; i += 7) src.write(buf.subarray(i, i + 7));
      src.end();
      return Buffer.concat(sent).toString();
    };
    assert.equal(redact('user=bob password=hunter2 ok'), 'user=bob [REDACTED] ok');
    assert.equal(redact('db_password=hunter2 DB_TOKEN: abc'), 'db_[REDACTED] DB_[REDACTED]');
    assert.equal(redact('mypassword=unchanged'), 'mypassword=unchanged', 'a longer word is not the keyword');
    assert.equal(redact('Authorization: Bearer abc.def-ghi'), 'Authorization: [REDACTED]');
    assert.equal(redact('key AKIAABCDEFGHIJKLMNOP used'), 'key [REDACTED] used');
    assert.equal(redact('Accepted publickey for bob from 10.0.0.1'), 'Accepted publickey for bob from 10.0.0.1');
    // Real keys: RSA in PEM, ed25519 in OpenSSH format; every line goes, the log around them stays.
    const before = 'Jan 1 00:00:01 host sshd[1]: Accepted publickey for bob\n';
    const after = 'Jan 1 00:00:02 host sshd[1]: session opened\n';
    for (const [type, extra] of [['rsa', ['-b', '2048', '-m', 'PEM']], ['ed25519', []]] as const) {
      const key = generateKey(type, extra);
      const lines = key.trimEnd().split('\n');
      assert.match(lines[0] ?? '', type === 'rsa' ? /BEGIN RSA PRIVATE KEY/ : /BEGIN OPENSSH PRIVATE KEY/);
      assert.ok((lines.at(-2)?.length ?? 0) < (lines[1]?.length ?? 0), `${type}: the last body line is short`);
      assert.equal(redact(before + key + after), before + '[REDACTED]\n'.repeat(lines.length) + after, type);
    }
    // The block, written to YAML and loaded back, covers every private key marker.
    assert.deepEqual(
      out.redactBlocks.map((b) => [b.from.source, b.to.source]),
      [['-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----', '-----END [A-Z0-9 ]*PRIVATE KEY-----']],
    );
    for (const kind of ['EC ', 'ENCRYPTED ', 'DSA ', '']) {
      const key = `-----BEGIN ${kind}PRIVATE KEY-----\nMHcCAQEEI\nAoGCCqGSM49\n-----END ${kind}PRIVATE KEY-----\n`;
      assert.equal(redact(before + key + after), before + '[REDACTED]\n'.repeat(4) + after, kind);
    }
  });

  test('write_capable: writes inside /tmp, never /tmp itself or elsewhere', () => {
    const p = policyFrom('write_capable');
    assert.equal(run(p, 'cp /var/log/dpkg.log /tmp/dpkg.copy'), 'allow');
    assert.equal(run(p, 'mkdir -p /tmp/a/b'), 'allow');
    assert.equal(run(p, 'rm /tmp/a/b/c'), 'allow');
    assert.equal(run(p, 'rm -r /tmp'), 'deny');
    assert.equal(run(p, 'cp /var/log/dpkg.log /etc/x'), 'deny');
    assert.equal(run(p, 'cat /var/log/dpkg.log > /tmp/out'), 'allow');
  });

  test('admin: everything, asking before destructive programs and secrets', () => {
    const p = policyFrom('admin');
    assert.equal(run(p, 'cat /etc/hostname'), 'allow');
    assert.equal(run(p, 'rm -rf /tmp/x'), 'ask');
    assert.equal(run(p, '/usr/bin/rm /tmp/x'), 'ask');
    assert.equal(run(p, 'cat /etc/shadow'), 'ask');
    assert.equal(run(p, 'cat /root/.ssh/id_rsa'), 'ask');
    assert.equal(run(p, 'touch /etc/motd'), 'ask');
    assert.equal(run(p, 'touch /srv/motd'), 'allow');
    assert.equal(run(p, 'nosuchprogram-remux'), 'deny');
  });

  test('admin asks before stopping or restarting the machine, by any of its names or systemctl verbs', () => {
    const p = policyFrom('admin');
    const stops = ['shutdown -h now', 'reboot', 'halt', 'poweroff', 'telinit 0', 'init 6', 'systemctl reboot', 'systemctl -i poweroff', 'systemctl --no-wall halt', 'systemctl kexec', 'sudo /usr/bin/systemctl reboot',
      // The targets and services those verbs start, and the verbs that start a unit, by any of its names.
      'systemctl start poweroff.target', 'systemctl isolate poweroff', 'systemctl --no-block start reboot.target', 'systemctl soft-reboot', 'systemctl exit',
      'systemctl start systemd-reboot.service', 'systemctl isolate runlevel0.target', 'systemctl restart ctrl-alt-del.target', "systemctl start 'pow*.target'",
      'systemctl enable --now kexec.target', 'systemctl set-default poweroff.target', 'systemctl start shutdown.target',
      // Rescue and emergency mode stop every service and the network, the sleep verbs take the machine off-line.
      'systemctl rescue', 'systemctl emergency', 'systemctl suspend', 'systemctl hibernate', 'systemctl hybrid-sleep', 'systemctl suspend-then-hibernate',
      'systemctl isolate rescue.target', 'systemctl isolate emergency.target', 'systemctl start rescue.target', 'systemctl start emergency.target', 'systemctl start systemd-suspend.service'];
    for (const command of stops) {
      const d = decide(p, command, { cwd: '/tmp' });
      assert.equal(d.effect, 'ask', command);
      assert.match(d.reason, /^execute_binary \S+: (acts as \w+: )?needs approval under x#\d+ \(admin\.yaml:\d+\): destructive or disruptive program/, command);
    }
    for (const command of ['systemctl status', 'systemctl list-units reboot.target', 'systemctl start nginx.service', 'systemctl status poweroff.target', "systemctl restart 'ng*'", 'systemctl status rescue.target']) {
      assert.equal(decide(p, command, { cwd: '/tmp' }).effect, 'allow', command);
    }
  });

  test("admin: code remux cannot check (the issue's examples) asks, and runs only in the OS sandbox", () => {
    const p = policyFrom('admin');
    for (const command of ISSUE_CODE) {
      const d = decide(p, command, { cwd: '/tmp' });
      assert.equal(d.effect, 'ask', command);
      const program = command.split(' ')[0] as string;
      assert.equal(d.rule?.operation, 'execute_code', command);
      assert.match(d.reason, new RegExp(`^execute_code \\S+: ${program} .*; needs approval under x#\\d+ \\(admin\\.yaml:\\d+\\): runs code remux cannot check, bounded by the OS sandbox`), command);
      assert.deepEqual(d.bounds.map((b) => b.layer), ['sandbox'], command);
      // Static checks only: no approval can make such code safe there.
      const unsandboxed = decide(p, command, { cwd: '/tmp', sandbox: false });
      assert.equal(unsandboxed.effect, 'deny', command);
      assert.match(unsandboxed.reason, /only inside the OS sandbox, but this command would run with static checks only \(policy x has sandbox: false\); add unsandboxed: true to that rule/, command);
    }
    // A script made executable and run by its path is code too; the host's programs by path are not.
    assert.equal(decide(p, '/tmp/x.sh').effect, 'ask');
    assert.equal(decide(p, '/usr/bin/cat /etc/hostname').effect, 'allow');
    // The Makefile route around `ask` on rm is closed: make itself asks. Plain programs stay allowed.
    assert.equal(decide(p, 'ls /tmp').effect, 'allow');
    assert.equal(decide(p, 'python3 --version').effect, 'allow');
    assert.equal(decide(p, 'git --version').effect, 'allow');
    const cd = decide(p, 'cd /tmp && ls', { cwd: '/' });
    assert.equal(cd.effect, 'allow');
    assert.equal(cd.cwd, realpathSync('/tmp'));
    assert.deepEqual(cd.bounds, [{ stage: 1, layer: 'static+sandbox' }]);
  });

  test("developer: the workspace's own code runs sandboxed; the issue's examples outside it are denied", () => {
    const p = policyFrom('developer');
    const app = join(WORKSPACE, 'app');
    assert.ok(p.rules.some((r) => r.operation === 'read_file' && r.resources?.includes(`${WORKSPACE}/**`)), 'the workspace comes from ${HOME}');
    for (const command of ['make', 'make -C .', 'npm test', 'npx tsc', 'git status', 'git commit -m x', 'python3 x.py', 'node x.js', 'bash x.sh', 'sh -c "make check"']) {
      const d = decide(p, command, { cwd: app });
      assert.equal(d.effect, 'allow', `${command}: ${d.reason}`);
      assert.equal(d.bounds[0]?.layer, 'sandbox', command);
      assert.ok(d.checks.some((c) => c.operation === 'execute_code' && c.effect === 'allow'), command);
    }
    for (const command of ISSUE_CODE) {
      // From /tmp (outside the workspace), or naming /tmp: the workspace rules deny, whatever execute_code says.
      const d = decide(p, command, { cwd: '/tmp' });
      assert.equal(d.effect, 'deny', command);
      assert.match(d.reason, /^(read_file|list_directory) \/tmp\S*: no rule of policy x allows it/, command);
    }
    assert.equal(decide(p, 'cd /tmp && ls', { cwd: app }).effect, 'deny');
    const cd = decide(p, `cd ${app} && make`, { cwd: '/' });
    assert.deepEqual([cd.effect, cd.cwd], ['allow', app]);
    // Static checks only: code is refused, plain tools are not.
    const off = decide(p, 'make', { cwd: app, sandbox: false });
    assert.equal(off.effect, 'deny');
    assert.match(off.reason, /^execute_code \/usr\/bin\/make: make runs a Makefile's recipes, code that remux cannot check; allowed by x#1 \(developer\.yaml:\d+\) only inside the OS sandbox/);
    assert.equal(decide(p, 'ls', { cwd: app, sandbox: false }).effect, 'allow');
    assert.equal(decide(p, 'curl https://example.com', { cwd: app }).effect, 'deny', 'no network tool');
    assert.ok(!p.rules.some((r) => r.operation === 'network'), 'no network unless the user adds it');
    assert.equal(p.sandbox, 'on');
  });

  test('a policy without execute_code: interpreters with scripts and build tools are denied, saying how to allow them', () => {
    const p = parsePolicies(
      `policies:
  x:
    capabilities:
      - { operation: execute_binary, resource: "/**" }
      - { operation: read_file, resource: "/**" }
      - { operation: list_directory, resource: "/**" }
      - { operation: write_stdout, resource: null }
`,
      'old.yaml',
      {},
    ).get('x') as Policy;
    for (const command of ISSUE_CODE) {
      const d = decide(p, command, { cwd: '/tmp' });
      const program = command.split(' ')[0] as string;
      assert.equal(d.effect, 'deny', command);
      assert.match(d.reason, new RegExp(`^execute_code \\S+: ${program} .*; no execute_code rule of policy x allows ${program} \\(add one to run it in the OS sandbox\\)`), command);
    }
    assert.match(decide(p, 'python3 /tmp/x.py').reason, /python3 would run \/tmp\/x\.py: interpreters run code that remux cannot check/);
    assert.equal(decide(p, 'python3 --version').effect, 'allow');
  });

  test('developer with a workspace: rules on that directory, written so the grammar reads it exactly ($ doubled); globs and | refused', () => {
    const ws = join(dir, 'my$app');
    mkdirSync(ws, { recursive: true });
    writeFileSync(join(ws, 'Makefile'), '\n');
    const p = parsePolicies(renderTemplate('developer', 'x', { workspace: ws }), 'ws.yaml', {}).get('x') as Policy;
    assert.ok(p.rules.some((r) => r.operation === 'read_file' && r.resources?.includes(`${ws}/**`)), JSON.stringify(p.rules.map((r) => r.resources)));
    assert.equal(decide(p, 'make', { cwd: ws }).effect, 'allow');
    assert.equal(decide(p, `cat ${join(WORKSPACE, 'app', 'x.py')}`, { cwd: ws }).effect, 'deny', 'the default workspace is not granted');
    for (const bad of [join(dir, 'a*'), join(dir, 'a|b'), join(dir, '{a,b}'), 'relative/dir', '/']) {
      assert.throws(() => renderTemplate('developer', 'x', { workspace: bad }), /the workspace/, bad);
    }
    assert.throws(() => renderTemplate('read_only', 'x', { workspace: ws }), /developer template's/);
  });

  test('an invalid policy name is refused', () => {
    assert.throws(() => renderTemplate('read_only', 'bad name'), /invalid policy name/);
    assert.throws(() => addPolicyToFile(join(dir, 'never.yaml'), '../x', 'read_only'), /invalid policy name/);
  });
});

describe('addPolicyToFile', () => {
  test('creates the file when missing', () => {
    const file = join(dir, 'new.yaml');
    assert.deepEqual(addPolicyToFile(file, 'production', 'read_only'), { created: true });
    assert.deepEqual([...loadPolicyFile(file, {}).keys()], ['production']);
  });

  test('appends under policies:, keeping content, comments and formatting', () => {
    const file = join(dir, 'existing.yaml');
    const original = `# Team policies -- keep this header
policies:
  # the logs policy
  logs:
    capabilities:
      - operation: read_file # inline note
        resource: \${LOG_DIR:-/var/log}/**
`;
    writeFileSync(file, original);
    assert.deepEqual(addPolicyToFile(file, 'database', 'write_capable'), { created: false });
    const text = readFileSync(file, 'utf8');
    assert.ok(text.startsWith(original), text);
    assert.match(text, /# database: from the write_capable template/);
    assert.deepEqual([...loadPolicyFile(file, {}).keys()], ['logs', 'database']);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temp files left');
  });

  test('refuses a name already in the file, naming file and line, and leaves it untouched', () => {
    const file = join(dir, 'dup.yaml');
    writeFileSync(file, 'policies:\n  a:\n    capabilities: []\n  # second\n  prod:\n    capabilities: []\n');
    const before = readFileSync(file, 'utf8');
    assert.throws(
      () => addPolicyToFile(file, 'prod', 'admin'),
      (err: unknown) => err instanceof ConfigError && err.file === file && err.line === 5 && /policy "prod" already exists/.test(err.message),
    );
    assert.equal(readFileSync(file, 'utf8'), before);
  });

  test('an empty, comment-only or policies-less file gets a policies: map', () => {
    for (const [name, text] of [
      ['empty.yaml', ''],
      ['comments.yaml', '# just a comment\n'],
      ['bare.yaml', 'policies:\n'],
      ['flow.yaml', 'policies: {}\n'],
    ] as const) {
      const file = join(dir, name);
      writeFileSync(file, text);
      addPolicyToFile(file, 'p1', 'restrictive');
      addPolicyToFile(file, 'p2', 'read_only');
      assert.deepEqual([...loadPolicyFile(file, {}).keys()], ['p1', 'p2'], name);
      if (text.startsWith('#')) assert.match(readFileSync(file, 'utf8'), /# just a comment/);
    }
  });

  test('a file that is not a policy mapping is refused, not rewritten', () => {
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'policies: [\n');
    assert.throws(() => addPolicyToFile(broken, 'x', 'read_only'), ConfigError);
    const list = join(dir, 'list.yaml');
    writeFileSync(list, 'policies:\n  - a\n');
    assert.throws(() => addPolicyToFile(list, 'x', 'read_only'), /policies: must be a mapping/);
    assert.equal(readFileSync(list, 'utf8'), 'policies:\n  - a\n');
  });

  test('a new file is 0600; a file changed keeps the mode it has', () => {
    const made = join(dir, 'made.yaml');
    addPolicyToFile(made, 'p', 'read_only');
    assert.equal(statSync(made).mode & 0o777, 0o600);
    const file = join(dir, 'mode.yaml');
    writeFileSync(file, 'policies: {}\n');
    chmodSync(file, 0o644);
    addPolicyToFile(file, 'p', 'read_only');
    assert.equal(statSync(file).mode & 0o777, 0o644);
  });
});
