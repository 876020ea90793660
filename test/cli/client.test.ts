// End-to-end: the real `remux` binary, a real policy file, real processes, the real audit store.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawn } from 'node-pty';
import { REMUX_NODE_BIN, REPO_ROOT, remux, remuxFed, spawnRemux, tempHome } from '../support/cli.js';

const POLICY = `# test policies; \${DATA} comes from the environment
policies:
  logs:
    description: read the test data
    capabilities:
      - operation: execute_binary
        resource: cat|grep|tail|head|wc|sort|echo|sleep|ls|false|true
      - operation: read_file
        resource: \${DATA}/**
      - operation: write_file
        resource: \${DATA}/out/**
      - operation: list_directory
        resource: \${DATA}/**
      - operation: write_stdout
        resource: null
      - operation: read_file
        resource: \${DATA}/secret*
        effect: deny
        reason: secrets stay on the host
  capped:
    capabilities:
      - operation: execute_binary
        resource: cat|head
      - operation: read_file
        resource: \${DATA}/**
      - operation: write_stdout
        resource: { max_bytes: 10, redact: ['token=\\\\S+'] }
  boxed:
    sandbox: true
    capabilities:
      - operation: execute_binary
        resource: \${DATA}/bin/*
      - operation: read_file
        resource: \${DATA}/bin/**
      - operation: write_stdout
        resource: null
`;

describe('remux client run / batch on localhost', () => {
  const h = tempHome();
  const data = join(h.home, 'data');
  const env = { ...h.env, DATA: data };

  before(async () => {
    mkdirSync(join(data, 'out'), { recursive: true });
    mkdirSync(join(data, 'bin'), { recursive: true });
    writeFileSync(join(data, 'app.log'), 'start\ninstall foo\nrun\ninstall bar\nstop\n');
    writeFileSync(join(data, 'secret.txt'), 'hunter2\n');
    writeFileSync(join(data, 'token.log'), 'token=abc123 ok\n');
    // More than a pipe holds: cat is still writing when the cap stops it.
    writeFileSync(join(data, 'big.log'), 'x'.repeat(1 << 20));
    writeFileSync(join(h.home, 'outside.txt'), 'outside-the-policy\n');
    // A program that reads a file it was never given as an argument: only the sandbox can stop it.
    writeFileSync(join(data, 'bin', 'sneak'), `#!/bin/sh\nexec cat ${join(h.home, 'outside.txt')}\n`);
    chmodSync(join(data, 'bin', 'sneak'), 0o755);
    writeFileSync(join(data, 'bin', 'done'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(data, 'bin', 'done'), 0o755);
    writeFileSync(join(h.home, 'policies.yaml'), POLICY);
    const init = await remux(['config', 'init'], { env });
    assert.equal(init.code, 0, init.stderr);
  });
  after(() => h.remove());

  test('runs a pipeline with no shell and prints its output', async () => {
    const r = await remux(['client', 'run', 'localhost', '--policy', 'logs', '--', `tail -n 4 ${data}/app.log | grep install | sort -r`], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'install foo\ninstall bar\n');
  });

  test('several words after -- are joined like ssh does', async () => {
    const r = await remux(['client', 'run', 'local', '-p', 'logs', '--', 'head', '-n', '1', `${data}/app.log`], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'start\n');
  });

  test("exit status is the command's own", async () => {
    const r = await remux(['client', 'run', 'localhost', '-p', 'logs', '--', `grep nomatch ${data}/app.log`], { env });
    assert.equal(r.code, 1);
    const f = await remux(['client', 'run', 'localhost', '-p', 'logs', '--', 'false || true && false'], { env });
    assert.equal(f.code, 1);
  });

  test('a denied command exits 77, names the rule and runs nothing', async () => {
    const r = await remux(['client', 'run', 'localhost', '-p', 'logs', '--', `cat ${data}/app.log > ${data}/not-allowed.txt`], { env });
    assert.equal(r.code, 77);
    assert.match(r.stderr, /denied/);
    assert.match(r.stderr, /not-allowed\.txt/);
    assert.equal(existsSync(join(data, 'not-allowed.txt')), false, 'the redirect target must not be created');
  });

  test("a denial's hint is the policy check of that very command, quoted for the shell", async () => {
    const command = `cat ${data}/app.log > '${data}/not allowed.txt'`;
    const r = await remux(['client', 'run', 'localhost', '-p', 'logs', '--', command], { env });
    assert.equal(r.code, 77);
    const hint = /^hint: see why with `(remux policy check logs -- .*)`$/m.exec(r.stderr);
    assert.ok(hint, r.stderr);
    // A shell reads the hint's argument back as the command itself, which policy check denies too.
    const check = await remux(['policy', 'check', 'logs', '--', command], { env });
    assert.equal(check.code, 77);
    const shell = execFileSync('sh', ['-c', `printf '%s\\n' ${hint[1]!.replace(/^remux policy check logs -- /, '')}`], { encoding: 'utf8' });
    assert.equal(shell, `${command}\n`);
  });

  test("a denial's hint passes --cwd on: policy check, run where the user is, looks at the same paths", async () => {
    // From data/out, `cat secret.txt` is out/secret.txt (allowed); with --cwd data it is the denied one.
    const where = { env, cwd: join(data, 'out') };
    const r = await remux(['client', 'run', 'localhost', '-p', 'logs', '--cwd', data, '--', 'cat secret.txt'], where);
    assert.equal(r.code, 77, r.stderr);
    const hint = /^hint: see why with `remux (policy check logs --cwd .* -- .*)`$/m.exec(r.stderr);
    assert.ok(hint, r.stderr);
    const args = execFileSync('sh', ['-c', `printf '%s\\0' ${hint[1]!}`], { encoding: 'utf8' }).split('\0').slice(0, -1);
    const check = await remux(args, where);
    assert.equal(check.code, 77, check.stdout);
    assert.match(check.stdout, new RegExp(`^DENY under policy logs: read_file ${data}/secret\\.txt: denied by logs#\\d+`));
  });

  test('deny rules beat allow rules, after traversal is normalised', async () => {
    const r = await remux(['client', 'run', 'localhost', '-p', 'logs', '--', `cat ${data}/out/../secret.txt`], { env });
    assert.equal(r.code, 77);
    assert.match(r.stderr, /secret\.txt/);
    assert.doesNotMatch(r.stdout, /hunter2/);
  });

  test("a path through /proc/self is refused: checked in remux's process it would name remux's directory, not the program's", async () => {
    // remux runs in DATA/out (allowed), the command in DATA, where secret.txt is denied: checked as
    // remux's /proc/self/cwd/secret.txt (DATA/out/secret.txt, allowed), it would print the secret.
    const r = await remux(['client', 'run', 'localhost', '-p', 'logs', '--cwd', data, '--', 'cat /proc/self/cwd/secret.txt'], { env, cwd: join(data, 'out') });
    assert.equal(r.code, 77, r.stdout + r.stderr);
    assert.match(r.stderr, /leads into the running program's own \/proc entry/);
    assert.doesNotMatch(r.stdout, /hunter2/);
  });

  test('redirections are performed by remux on allowed paths', async () => {
    const r = await remux(['client', 'run', 'localhost', '-p', 'logs', '--', `grep install ${data}/app.log > ${data}/out/installs.txt`], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(data, 'out', 'installs.txt'), 'utf8'), 'install foo\ninstall bar\n');
  });

  test('shell constructs are rejected with their name and column, exit 2', async () => {
    const r = await remux(['client', 'run', 'localhost', '-p', 'logs', '--', 'echo $(id)'], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /column 6/);
    assert.match(r.stderr, /\$\(/);
  });

  test('a command the parser rejects is rejected as such on every host of a fan-out, reachable or not (not reported as their connection errors)', async () => {
    const other = tempHome();
    try {
      // This describe's policies; port 1 of loopback: nothing listens there, a connection is refused at once.
      writeFileSync(join(other.home, 'policies.yaml'), readFileSync(join(h.home, 'policies.yaml')));
      writeFileSync(join(other.home, 'hosts.yaml'), 'hosts:\n  down1: { address: 127.0.0.1, port: 1, labels: { env: gone } }\n  down2: { address: 127.0.0.1, port: 1, labels: { env: gone } }\n');
      const r = await remux(['client', 'run', 'env=gone', '-p', 'logs', '--', 'echo $(id)'], { env: { ...other.env, DATA: data } });
      assert.equal(r.code, 2, r.stderr);
      for (const host of ['down1', 'down2']) assert.match(r.stderr, new RegExp(`${host}: rejected: .*column 6`), r.stderr);
      assert.doesNotMatch(r.stderr, /: unreachable|ECONNREFUSED/, r.stderr);
    } finally {
      other.remove();
    }
  });

  test('a reader that goes away (| head) stops the command: its end is audited (141, as SIGPIPE gives); remux exits 0 and says nothing, as before', async () => {
    // 4 MiB: far more than the pipes between hold, and remux reads the command's output only as fast as its
    // own stdout takes it, so cat is still writing when the reader goes.
    const big = Array(4).fill(`${data}/big.log`);
    for (const args of [['client', 'run', 'localhost', '-p', 'logs', '--', `cat ${big.join(' ')}`], ['rpc', 'localhost', '-p', 'logs', 'Exec.stream', '--', 'cat', ...big]]) {
      const child = spawnRemux(args, { env });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout!.once('data', () => child.stdout!.destroy());
      const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      assert.equal(code, 0, `${args[0]}: ${stderr}`);
      assert.equal(stderr, '', args[0]);
      const last = JSON.parse((await remux(['audit', 'ls', '--json', '--limit', '1'], { env })).stdout) as { status: string; exitCode: number; command: string };
      assert.deepEqual([last.status, last.exitCode], ['complete', 141], `${args[0]}: ${JSON.stringify(last)}`);
      assert.match(last.command, /^cat .*big\.log$/);
    }
  });

  test('a stdin left open never keeps remux once the command is done: run in the OS sandbox, and in process, with and without reading it', async () => {
    // The command's exit unpipes the caller's stdin; Node could restart a read on it after pausing it,
    // which held remux for as long as the pipe stayed open (about 1 run in 10 here): run many times.
    for (let i = 0; i < 12; i++) {
      for (const [policy, command] of [['boxed', `${data}/bin/done`], ['logs', 'true'], ['logs', 'head -c 2']] as const) {
        const r = await remuxFed(['client', 'run', 'localhost', '-p', policy, '--', command], 'open', { env, via: i % 2 === 0 ? 'launcher' : 'node' });
        assert.ok(r.seconds < 20, `run ${i}, ${policy}: ${command}: took ${r.seconds} s with a stdin never closed`);
        assert.equal(r.code, 0, `run ${i}, ${policy}: ${command}: ${r.stderr}`);
      }
    }
  });

  test('rpc prints nothing for a method that returns nothing (Logger.log), its log line on stderr', async () => {
    const r = await remux(['rpc', 'localhost', '-p', 'logs', 'Logger.log', 'warning', 'deploying'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /localhost: WARNING remux: deploying/);
  });

  test('an unknown host exits 255 and says so', async () => {
    const r = await remux(['client', 'run', 'nosuchhost', '-p', 'logs', '--', 'true'], { env });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /nosuchhost/);
  });

  test('an unknown policy is a usage error naming the known ones', async () => {
    const r = await remux(['client', 'run', 'localhost', '-p', 'nope', '--', 'true'], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /nope/);
    assert.match(r.stderr, /logs/);
    // Not named by the command: the error says where the name came from (a typo there fails every command).
    const other = tempHome();
    try {
      writeFileSync(join(other.home, 'policies.yaml'), readFileSync(join(h.home, 'policies.yaml')));
      writeFileSync(join(other.home, 'config.yaml'), 'default_policy: nosuch\n');
      const typo = await remux(['client', 'run', 'localhost', '--', 'true'], { env: { ...other.env, DATA: data } });
      assert.equal(typo.code, 2, typo.stderr);
      assert.match(typo.stderr, /unknown policy "nosuch", named by default_policy in config\.yaml, \(known: [^)]*logs/);
    } finally {
      other.remove();
    }
  });

  test('an unknown --policy on a fan-out (client run, batch, rpc) is said once, before any host is reached', async () => {
    const other = tempHome();
    try {
      writeFileSync(join(other.home, 'policies.yaml'), readFileSync(join(h.home, 'policies.yaml')));
      // Port 1 of loopback: a host that was reached would say it is unreachable.
      writeFileSync(join(other.home, 'hosts.yaml'), 'hosts:\n  down1: { address: 127.0.0.1, port: 1, labels: { env: gone } }\n  down2: { address: 127.0.0.1, port: 1, labels: { env: gone } }\n');
      writeFileSync(join(other.home, 'two.txt'), 'true\ntrue\n');
      for (const args of [
        ['client', 'run', 'env=gone', '-p', 'nope', '--', 'true'],
        ['client', 'batch', 'env=gone', '-p', 'nope', '-f', join(other.home, 'two.txt')],
        ['rpc', 'env=gone', '-p', 'nope', 'Exec.command', '--', 'true'],
      ]) {
        const r = await remux(args, { env: { ...other.env, DATA: data } });
        assert.equal(r.code, 2, `${args[1]}: ${r.stderr}`);
        assert.equal(r.stderr.match(/unknown policy "nope" \(known: [^)]*logs/g)?.length, 1, `${args[1]}: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /down1|down2|unreachable/, `${args[1]}: ${r.stderr}`);
      }
    } finally {
      other.remove();
    }
  });

  test('a fan-out on a terminal counts finished hosts on its progress line, --group too (its output waits for the end)', async () => {
    // localhost,local is one host, and a fan-out: a list. stderr must be a terminal for the progress line.
    for (const mode of [[], ['--group']]) {
      const term = spawn(process.execPath, [REMUX_NODE_BIN, 'client', 'run', 'localhost,local', ...mode, '-p', 'logs', '--', 'echo hi'], { cols: 120, rows: 24, cwd: REPO_ROOT, env: { ...process.env, ...env } });
      let out = '';
      term.onData((d) => (out += d));
      const code = await new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
      assert.equal(code, 0, out);
      assert.match(out, /\[0\/1\] ok 0 {2}failed 0/, `${mode.join(' ')}: ${out}`);
      assert.match(out, /\[1\/1\] ok 1 {2}failed 0/, `${mode.join(' ')}: the finished host is counted: ${out}`);
    }
  });

  test('--json prints one object with output, status and decision', async () => {
    const r = await remux(['client', 'run', 'localhost', '-p', 'logs', '--json', '--', `wc -l ${data}/app.log`], { env });
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(result.exitCode, 0);
    assert.equal(result.outcome, 'ok');
    assert.match(String(result.stdout), /^5 /);
    assert.equal((result.decision as { effect: string }).effect, 'allow');
    assert.equal(typeof result.auditId, 'number');
  });

  test('the policy output cap and redaction apply before output leaves', async () => {
    const r = await remux(['client', 'run', 'localhost', '-p', 'capped', '--', `cat ${data}/token.log`], { env });
    assert.doesNotMatch(r.stdout, /abc123/);
    const big = await remux(['client', 'run', 'localhost', '-p', 'capped', '--', `cat ${data}/app.log`], { env });
    assert.equal(Buffer.byteLength(big.stdout), 10);
  });

  test("output stopped at the policy's cap is `truncated`, naming the cap: text, --json, batch and the audit record agree", async () => {
    const command = `cat ${data}/big.log`;
    const cap = 'the output cap of policy capped (write_stdout max_bytes: 10) was reached; the command was stopped';
    const text = await remux(['client', 'run', 'localhost', '-p', 'capped', '--', command], { env });
    assert.equal(text.stdout, 'x'.repeat(10));
    assert.equal(text.stderr, `remux: truncated: ${cap}\n`);
    const json = await remux(['client', 'run', 'localhost', '-p', 'capped', '--json', '--', command], { env });
    const r = JSON.parse(json.stdout) as { outcome: string; exitCode: number; message: string; truncated: boolean; auditId: number };
    assert.deepEqual([r.outcome, r.message, r.truncated], ['truncated', cap, true]);
    // The exit status stays how cat ended once stopped (SIGPIPE or SIGTERM), as the README's table says.
    assert.ok([141, 143].includes(r.exitCode), `exit ${r.exitCode}`);
    assert.equal(json.code, r.exitCode);
    const batch = await remux(['client', 'batch', 'localhost', '-p', 'capped', '--json', '-f', '-'], { env, input: `${command}\n` });
    const line = JSON.parse(batch.stdout) as { outcome: string; message: string };
    assert.deepEqual([line.outcome, line.message], ['truncated', cap]);
    const ls = await remux(['audit', 'ls', '--json', '--limit', '0'], { env });
    const record = ls.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: number; level: string; exitCode: number; truncated: boolean }).find((a) => a.id === r.auditId);
    assert.deepEqual(record && [record.level, record.exitCode, record.truncated], ['warn', r.exitCode, true]);
  });

  test('a sandboxed policy stops a statically allowed program from reading outside the policy', async (t) => {
    if (!existsSync('/usr/bin/bwrap')) return t.skip('bubblewrap is not installed (npm test installs it)');
    const r = await remux(['client', 'run', 'localhost', '-p', 'boxed', '-C', data, '--', `${data}/bin/sneak`], { env });
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout, /outside-the-policy/);
  });

  test('batch parses every line first: a bad line runs nothing', async () => {
    const file = join(h.home, 'bad.txt');
    writeFileSync(file, `grep install ${data}/app.log > ${data}/out/batch1.txt\n# comment\necho \`id\`\n`);
    const r = await remux(['client', 'batch', 'localhost', '-p', 'logs', '--commands-file', file], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.txt:3/);
    assert.equal(existsSync(join(data, 'out', 'batch1.txt')), false);
  });

  test('batch runs each line in order and reports the most serious failure', async () => {
    const file = join(h.home, 'cmds.txt');
    writeFileSync(file, `head -n 1 ${data}/app.log\n\ncat ${data}/secret.txt\ntail -n 1 ${data}/app.log\n`);
    const r = await remux(['client', 'batch', 'localhost', '-p', 'logs', '-f', file, '--json'], { env });
    assert.equal(r.code, 77);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { line: number; exitCode: number; stdout: string });
    assert.deepEqual(lines.map((l) => [l.line, l.exitCode]), [[1, 0], [3, 77], [4, 0]]);
    assert.equal(lines[2]?.stdout, 'stop\n');
  });

  test('a batch denied line after line prints how to see why once, not once a line', async () => {
    const file = join(h.home, 'denied.txt');
    writeFileSync(file, `cat ${data}/secret.txt\ncat ${data}/secret.txt\ncat ${data}/secret.txt\n`);
    const r = await remux(['client', 'batch', 'localhost', '-p', 'logs', '-f', file], { env });
    assert.equal(r.code, 77);
    assert.equal(r.stderr.match(/^remux: denied: /gm)?.length, 3, r.stderr);
    assert.equal(r.stderr.match(/^hint: see why with `remux policy check logs -- /gm)?.length, 1, r.stderr);
  });

  test('every action above is in the audit trail, and the chain verifies', async () => {
    const ls = await remux(['audit', 'ls', '--json', '--limit', '0'], { env });
    assert.equal(ls.code, 0, ls.stderr);
    const actions = ls.stdout.trim().split('\n').map((l) => JSON.parse(l) as { level: string; command: string; host: string; principal: string });
    assert.ok(actions.length >= 12, `expected at least 12 actions, got ${actions.length}`);
    assert.ok(actions.some((a) => a.level === 'deny' && a.command.includes('secret.txt')));
    assert.ok(actions.every((a) => a.principal.startsWith('cli:')));
    const denied = await remux(['audit', 'ls', '--json', '--level', 'deny', '--limit', '0'], { env });
    const deniedActions = denied.stdout.trim().split('\n').map((l) => JSON.parse(l) as { level: string });
    assert.ok(deniedActions.length >= 3);
    assert.ok(deniedActions.every((a) => a.level === 'deny'));
    const v = await remux(['audit', 'verify'], { env });
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /^ok: \d+ records verified/);
  });
});
