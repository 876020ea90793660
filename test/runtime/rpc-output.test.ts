// What `remux rpc` says on one host, as a user reads it: writeText's outcome as the other edits say theirs
// (created / changed / unchanged, then the diff), a call interrupted (Ctrl-C) before it reached the host,
// and a policy ask without a terminal, which waits for an approval as `client run`'s does.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { remux, spawnRemux, tempHome } from '../support/cli.js';
import { until } from '../support/until.js';

describe('remux rpc output', { timeout: 120_000 }, () => {
  const h = tempHome();
  const slowPython = join(h.home, 'slow-python3');
  const started = join(h.home, 'python-started');
  // A compromised host: its "python3" answers the handshake, then sends FLOOD log records of 1 KiB for the
  // call (nothing holds log records back) before its result, and says when it has sent them all.
  const floodPython = join(h.home, 'flood-python3');
  const flooded = join(h.home, 'flooded');
  const FLOOD = 200_000;
  before(() => {
    writeFileSync(join(h.home, 'policies.yaml'), `policies:
  rt:
    sandbox: false
    capabilities:
      - { operation: read_file, resource: "${h.home}/asked/**", effect: ask }
      - { operation: write_file, resource: "${h.home}/asked/**", effect: ask }
      - { operation: read_file, resource: "${h.home}/**" }
      - { operation: list_directory, resource: "${h.home}/names" }
      - { operation: write_file, resource: "${h.home}/w/**" }
      - { operation: execute_binary, resource: "${slowPython}" }
      - { operation: execute_code, resource: "${slowPython}", unsandboxed: true }
      - { operation: execute_binary, resource: "${floodPython}" }
      - { operation: execute_code, resource: "${floodPython}", unsandboxed: true }
`);
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: rt\n');
    // An interpreter that takes a while to start, as over a slow link: says when it began, then starts python3.
    writeFileSync(slowPython, `#!/bin/sh\ntouch ${started}\nsleep 1.5\nexec /usr/bin/python3 "$@"\n`);
    chmodSync(slowPython, 0o755);
    writeFileSync(floodPython, `#!/usr/bin/python3
import sys, json, struct
r = sys.stdin.buffer.read
def w(b):
    sys.stdout.buffer.write(b); sys.stdout.buffer.flush()
def f(m):
    b = json.dumps(m).encode(); w(struct.pack(">I", len(b)) + b)
def frame():
    return json.loads(r(int.from_bytes(r(4), "big")))
r(int.from_bytes(r(4), "big"))
f({"t": "hello", "v": 1, "caps": [], "py": "3.11", "pid": 1, "cwd": "/", "cap": 16 << 20})
frame()
c = frame()
log = json.dumps({"t": "log", "id": c["id"], "level": "INFO", "name": "flood", "msg": "x" * 1000}).encode()
sys.stdout.buffer.write((struct.pack(">I", len(log)) + log) * ${FLOOD})
open("${flooded}", "w").close()
f({"t": "result", "id": c["id"], "v": None})
sys.stdin.buffer.read()
`);
    chmodSync(floodPython, 0o755);
  });
  after(() => h.remove());

  test('writeText says created, changed or unchanged as lineInFile and Template.file do, with its --diff as a diff (not JSON)', async () => {
    const path = join(h.home, 'w', 'motd');
    const write = (content: string, ...args: string[]) => remux(['rpc', 'localhost', 'FileSystem.writeText', path, ...args], { env: h.env, input: content });
    const created = await remux(['rpc', 'localhost', 'FileSystem.ensureDirectory', join(h.home, 'w')], { env: h.env });
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual(await write('hello\n').then((r) => [r.code, r.stdout]), [0, 'created\n']);
    assert.deepEqual(await write('hello\n', '--mode', '0644').then((r) => [r.code, r.stdout]), [0, 'unchanged\n']);
    const diff = await write('bye\n', '--diff');
    assert.deepEqual([diff.code, diff.stdout], [0, `changed\n--- ${path}\n+++ ${path}\n@@ -1 +1 @@\n-hello\n+bye\n`]);
    // --json keeps the value as it is.
    const json = await write('bye\n', '--json');
    assert.deepEqual(JSON.parse(json.stdout), { host: 'localhost', ok: true, value: { changed: false, created: false } });
  });

  test('a denial names what was denied and how to see why, as client run\'s does: a command\'s policy check line, a path\'s operation and rule', async () => {
    const exec = await remux(['rpc', 'localhost', 'Exec.command', '--', 'rm', '-rf', join(h.home, 'w')], { env: h.env });
    assert.equal(exec.code, 77, exec.stderr);
    assert.equal(exec.stderr.split('\n')[1], `hint: see why with \`remux policy check rt -- 'rm -rf ${join(h.home, 'w')}'\``);
    // The line it gives explains the denial.
    const check = await remux(['policy', 'check', 'rt', '--', `rm -rf ${join(h.home, 'w')}`], { env: h.env });
    assert.equal(check.code, 77);
    assert.match(check.stdout, /execute_binary \/\S*\/rm/);
    const read = await remux(['rpc', 'localhost', 'FileSystem.readText', '/etc/hostname'], { env: h.env });
    assert.equal(read.code, 77, read.stderr);
    assert.equal(read.stderr, 'remux: read_file /etc/hostname: no rule of policy rt allows it\nhint: FileSystem.readText asks for read_file /etc/hostname, which policy rt denies (no rule allows it): see its rules with `remux policy show rt`, or call with --policy NAME to use another one\n');
    // Refused by a rule: the rule, and where it is written.
    writeFileSync(join(h.home, 'policies.yaml'), readFileSync(join(h.home, 'policies.yaml'), 'utf8').replace('    capabilities:\n', `    capabilities:\n      - { operation: read_file, resource: "${h.home}/secret", effect: deny }\n`));
    const ruled = await remux(['rpc', 'localhost', 'FileSystem.readText', join(h.home, 'secret')], { env: h.env });
    assert.equal(ruled.code, 77, ruled.stderr);
    assert.match(ruled.stderr, new RegExp(`\nhint: FileSystem\\.readText asks for read_file ${join(h.home, 'secret')}, which policy rt denies \\(rule #0 at ${join(h.home, 'policies.yaml')}:5\\): see its rules`));
  });

  test('Ctrl-C before the call reached the host: "interrupted" and 130, not a host out of reach', async () => {
    const child = spawnRemux(['rpc', 'localhost', '--python', slowPython, 'FileSystem.readText', join(h.home, 'policies.yaml')], { env: h.env });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const status = new Promise<number | null>((resolve) => child.once('exit', resolve));
    // The interpreter is starting: the call is not sent yet.
    for (let waited = 0; !existsSync(started) && waited < 20_000; waited += 50) await sleep(50);
    assert.ok(existsSync(started), stderr);
    child.kill('SIGINT');
    assert.equal(await status, 130, stderr);
    assert.equal(stderr, 'remux: interrupted\n');
  });

  test('a list is printed a line per item, with what could forge a line or drive the terminal escaped (a glob of hostile names)', async () => {
    const dir = join(h.home, 'names');
    mkdirSync(dir);
    for (const name of ['plain', 'two\nlines', 'clear\x1b[2J']) writeFileSync(join(dir, name), '');
    const r = await remux(['rpc', 'localhost', 'FileSystem.glob', `${dir}/*`], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${dir}/clear\\x1b[2J\n${dir}/plain\n${dir}/two\\nlines\n`);
    const json = await remux(['rpc', 'localhost', 'FileSystem.glob', `${dir}/*`, '--json'], { env: h.env });
    assert.deepEqual(JSON.parse(json.stdout).value, [`${dir}/clear\x1b[2J`, `${dir}/plain`, `${dir}/two\nlines`]);
  });

  test('log records a host sends while the caller does not read are left out and counted, not held in the daemon', async () => {
    assert.equal((await remux(['daemon', 'start'], { env: h.env })).code, 0);
    try {
      const { pid } = JSON.parse((await remux(['daemon', 'status', '--json'], { env: h.env })).stdout) as { pid: number };
      const rss = (): number => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
      const before = rss();
      // Read by no one until the host has sent everything: 200 MB of records.
      const child = spawnRemux(['rpc', 'localhost', '--python', floodPython, 'Logger.log', 'info', 'hello'], { env: h.env });
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      await until('the host sent its records', () => existsSync(flooded), 60_000);
      await sleep(1000);
      const grew = rss() - before;
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      assert.equal(await exited, 0, stderr.slice(-500));
      assert.ok(grew < 64 << 20, `the daemon grew by ${(grew / 2 ** 20).toFixed(0)} MiB holding log records for a client that does not read`);
      assert.equal(stdout, '');
      // Said each time the output is read again after records were left out: once or more, as the machine's pace has it.
      const left = [...stderr.matchAll(/^remux: (\d+) log records? left out while the output was not read$/gm)].map((m) => Number(m[1]));
      assert.ok(left.length > 0, stderr.slice(0, 500));
      // What was not left out was written whole, a line each.
      const written = stderr.split('\n').filter((l) => l === `localhost: INFO flood: ${'x'.repeat(1000)}`).length;
      assert.equal(written + left.reduce((a, b) => a + b, 0), FLOOD);
    } finally {
      await remux(['daemon', 'stop'], { env: h.env });
    }
  });

  /** `remux rpc` in the background, without a terminal; the approval it waits for, once announced. */
  async function asking(args: string[], input?: string): Promise<{ id: string; stdout: () => string; stderr: () => string; exited: Promise<number | null> }> {
    const child = spawnRemux(['rpc', 'localhost', ...args], { env: h.env });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin?.end(input);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    for (let waited = 0; !/waiting for approval (\S+)/.test(stderr) && waited < 20_000; waited += 50) await sleep(50);
    const id = /waiting for approval (\S+)/.exec(stderr)?.[1];
    assert.ok(id, stderr);
    return { id, stdout: () => stdout, stderr: () => stderr, exited };
  }

  test('a policy ask without a terminal waits for an approval, as client run does: approved it runs, denied nothing is written', async () => {
    mkdirSync(join(h.home, 'asked'));
    writeFileSync(join(h.home, 'asked', 'conf'), 'old\n');
    const read = await asking(['FileSystem.readText', join(h.home, 'asked', 'conf')]);
    assert.match(read.stderr(), /answer: remux approvals approve \S+ \(or deny\)/);
    assert.equal((await remux(['approvals', 'approve', read.id], { env: h.env })).code, 0);
    assert.equal(await read.exited, 0, read.stderr());
    assert.equal(read.stdout(), 'old\n');
    // writeText's content is its stdin: the question cannot be asked there, and goes to the approvals.
    const write = await asking(['FileSystem.writeText', join(h.home, 'asked', 'conf')], 'new\n');
    assert.equal((await remux(['approvals', 'deny', write.id], { env: h.env })).code, 0);
    assert.equal(await write.exited, 77, write.stderr());
    assert.equal(readFileSync(join(h.home, 'asked', 'conf'), 'utf8'), 'old\n');
  });

  test('an inventory that does not load is said with its file:line and exit 2, as client run says it, not as a host out of reach', async () => {
    const broken = tempHome();
    try {
      writeFileSync(join(broken.home, 'policies.yaml'), readFileSync(join(h.home, 'policies.yaml')));
      writeFileSync(join(broken.home, 'config.yaml'), 'default_policy: rt\n');
      writeFileSync(join(broken.home, 'hosts.yaml'), 'hosts:\n  web1:\n    adress: 10.0.0.5\n');
      for (const selector of ['web1', 'env=prod']) {
        const r = await remux(['rpc', selector, 'FileSystem.readText', '/etc/hostname'], { env: broken.env });
        assert.equal(r.code, 2, `${selector}: ${r.stderr}`);
        assert.match(r.stderr, /^remux: \S*hosts\.yaml:\d+: hosts\.web1\.address: missing/, selector);
        assert.match(r.stderr, /\nhint: fix the file at the line shown, then run the command again\n$/, selector);
      }
    } finally {
      broken.remove();
    }
  });
});
