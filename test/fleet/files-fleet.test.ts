// File actions over real SSH (SFTP on the pooled connection) against a real sshd from the fleet, which
// shares this machine's filesystem: the same adversarial cases as test/core/perform-file.test.ts, with
// the paths resolved by the server. Then the CLI: client write | read | ls, in process and through a
// daemon.
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createContext, type GatewayContext } from '../../src/core/context.js';
import { FILE_READ_DEFAULT_BYTES } from '../../src/core/perform-file.js';
import { perform } from '../../src/core/perform.js';
import type { Action } from '../../src/core/types.js';
import { remux, tempHome } from '../support/cli.js';
import { startFleet, type Fleet } from './fleet.js';

describe('file actions over SSH (SFTP)', { timeout: 90_000 }, () => {
  let fleet: Fleet;
  const h = tempHome();
  const env = (): Record<string, string> => ({ ...h.env, REMUX_KNOWN_HOSTS: fleet.knownHostsFile });
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'remux-sftp-')));
  let ctx: GatewayContext;
  const run = (action: Action) => perform(ctx, action, { onStdout: () => {}, onStderr: () => {} });

  before(async () => {
    fleet = await startFleet({ count: 1 });
    const h1 = fleet.hosts[0]!;
    for (const d of ['allowed/sub', 'allowed/secret', 'allowed_evil', 'outside']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'allowed/a.txt'), 'hello\n');
    writeFileSync(join(root, 'allowed/secret/key'), 'k');
    writeFileSync(join(root, 'allowed_evil/loot'), 'evil');
    writeFileSync(join(root, 'outside/passwd'), 'root:x:0:0\n');
    writeFileSync(
      join(h.home, 'hosts.yaml'),
      `hosts:\n  h1:\n    address: ${h1.address}\n    port: ${h1.port}\n    user: ${h1.user}\n    identity: ${h1.identityFile}\n`,
    );
    writeFileSync(
      join(h.home, 'policies.yaml'),
      `policies:
  files:
    sandbox: false
    capabilities:
      - { operation: read_file, resource: ${root}/allowed/secret/**, effect: deny, reason: keys stay put }
      - { operation: read_file, resource: ${root}/allowed/** }
      - { operation: write_file, resource: ${root}/allowed/** }
      - { operation: list_directory, resource: "${root}/allowed|${root}/allowed/**" }
`,
    );
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: files\n');
    ctx = createContext({ env: env() });
    await ctx.registry.prepare(['h1']);
  });
  after(async () => {
    await ctx?.close();
    await remux(['daemon', 'stop'], { env: env() });
    await fleet?.stop();
    h.remove();
    rmSync(root, { recursive: true, force: true });
  });

  test('read, write (atomic, mode kept, no temporary left) and list on the host; audited with the principal', async () => {
    const read = await run({ kind: 'file.read', host: 'h1', path: `${root}/allowed/a.txt`, offset: 1, length: 3 });
    assert.equal(read.outcome, 'ok', read.message ?? '');
    assert.deepEqual([read.content?.toString(), read.size], ['ell', 6]);

    chmodSync(join(root, 'allowed/a.txt'), 0o640);
    const wrote = await run({ kind: 'file.write', host: 'h1', path: `${root}/allowed/a.txt`, content: 'replaced over sftp' });
    assert.equal(wrote.outcome, 'ok', wrote.message ?? '');
    assert.equal(wrote.created, false);
    assert.equal(readFileSync(join(root, 'allowed/a.txt'), 'utf8'), 'replaced over sftp');
    assert.equal(statSync(join(root, 'allowed/a.txt')).mode & 0o777, 0o640);
    const created = await run({ kind: 'file.write', host: 'h1', path: `${root}/allowed/new/deeper/n.txt`, content: Buffer.from('n'), createDirs: true });
    assert.equal(created.outcome, 'ok', created.message ?? '');
    assert.equal(readFileSync(join(root, 'allowed/new/deeper/n.txt'), 'utf8'), 'n');

    const listed = await run({ kind: 'file.list', host: 'h1', path: `${root}/allowed` });
    assert.equal(listed.outcome, 'ok', listed.message ?? '');
    assert.deepEqual(listed.entries?.map((e) => `${e.type}:${e.name}`), ['file:a.txt', 'directory:new', 'directory:secret', 'directory:sub']);
    assert.equal(listed.entries?.[0]?.mode, 0o640);

    const records = ctx.audit.list({ host: 'h1' });
    assert.deepEqual(records.slice(-4).map((r) => [r.begin.operation, r.begin.principal.startsWith('cli:'), r.begin.resource, r.end?.exitCode]), [
      ['read_file', true, `${root}/allowed/a.txt`, 0],
      ['write_file', true, `${root}/allowed/a.txt`, 0],
      ['write_file', true, `${root}/allowed/new/deeper/n.txt`, 0],
      ['list_directory', true, `${root}/allowed`, 0],
    ]);
    assert.equal(records.at(-3)?.end?.bytesOut, 18);
    assert.equal(JSON.stringify(records).includes('replaced over sftp'), false, 'no file body in the audit');
  });

  test('traversal, prefix bypass and symlink escapes are resolved on the host and denied', async () => {
    symlinkSync(`${root}/outside/passwd`, `${root}/allowed/link`);
    symlinkSync(`${root}/outside`, `${root}/allowed/dirlink`);
    symlinkSync(`${root}/outside/created`, `${root}/allowed/dangling`);
    const cases: Action[] = [
      { kind: 'file.read', host: 'h1', path: `${root}/allowed/../outside/passwd` },
      { kind: 'file.read', host: 'h1', path: `${root}/allowed_evil/loot` },
      { kind: 'file.list', host: 'h1', path: `${root}/allowed_evil` },
      { kind: 'file.read', host: 'h1', path: `${root}/allowed/link` },
      { kind: 'file.write', host: 'h1', path: `${root}/allowed/dirlink/planted`, content: 'x' },
      { kind: 'file.write', host: 'h1', path: `${root}/allowed/dirlink/a/b`, content: 'x', createDirs: true },
      { kind: 'file.write', host: 'h1', path: `${root}/allowed/dangling`, content: 'x' },
    ];
    for (const action of cases) {
      const r = await run(action);
      assert.deepEqual([r.outcome, r.exitCode], ['denied', 77], `${action.kind} ${'path' in action ? action.path : ''}: ${r.message}`);
      assert.match(r.message ?? '', new RegExp(`${root}/(outside|allowed_evil)\\S*: no rule of policy files allows it`));
    }
    assert.deepEqual(readdirSync(`${root}/outside`), ['passwd'], 'nothing planted outside');
    const viaLink = await run({ kind: 'file.read', host: 'h1', path: `${root}/allowed/link` });
    assert.match(viaLink.message ?? '', new RegExp(`\\(resolved from ${root}/allowed/link\\)`));
  });

  test('a symlink as write target is refused; the check-to-open race is caught on the host', async () => {
    symlinkSync(`${root}/allowed/sub/t`, `${root}/allowed/inner-link`);
    writeFileSync(`${root}/allowed/sub/t`, 'target');
    const r = await run({ kind: 'file.write', host: 'h1', path: `${root}/allowed/inner-link`, content: 'x' });
    assert.equal(r.exitCode, 77);
    assert.match(r.message ?? '', /a write never follows one/);
    assert.equal(lstatSync(`${root}/allowed/inner-link`).isSymbolicLink(), true);
    assert.equal(readFileSync(`${root}/allowed/sub/t`, 'utf8'), 'target');

    // The host's operations on a checked path whose components became symlinks afterwards.
    const files = ctx.registry.host('h1').files!;
    mkdirSync(`${root}/allowed/race`);
    writeFileSync(`${root}/allowed/race/f`, 'inside');
    const [resolved] = await files.resolve([`${root}/allowed/race/f`]);
    assert.deepEqual(resolved, { real: `${root}/allowed/race/f`, finalLink: false });
    rmSync(`${root}/allowed/race`, { recursive: true });
    symlinkSync(`${root}/outside`, `${root}/allowed/race`);
    writeFileSync(`${root}/outside/f`, 'outside');
    await assert.rejects(files.read(`${root}/allowed/race/f`, { offset: 0, length: 100 }), { name: 'FileError', message: /not followed/ });
    await assert.rejects(files.write(`${root}/allowed/race/f`, Buffer.from('x'), { createDirs: false }), { name: 'FileError', message: /symlink/ });
    await assert.rejects(files.write(`${root}/allowed/race/f`, Buffer.from('x'), { createDirs: true }), { name: 'FileError', message: /symlink/ });
    await assert.rejects(files.list(`${root}/allowed/race`, 10), { name: 'FileError', message: /symlink/ });
    symlinkSync(`${root}/outside/passwd`, `${root}/allowed/swapped`);
    await assert.rejects(files.read(`${root}/allowed/swapped`, { offset: 0, length: 100 }), { name: 'FileError', message: /is a symlink now/ });
    assert.equal(readFileSync(`${root}/outside/f`, 'utf8'), 'outside');
    rmSync(`${root}/outside/f`);
  });

  test('NUL rejected; a denial names its rule; a huge file is capped and flagged', async () => {
    const nul = await run({ kind: 'file.read', host: 'h1', path: `${root}/allowed/a.txt\0x` });
    assert.deepEqual([nul.outcome, nul.exitCode], ['rejected', 2]);
    const denied = await run({ kind: 'file.read', host: 'h1', path: `${root}/allowed/secret/key` });
    assert.equal(denied.exitCode, 77);
    assert.match(denied.message ?? '', /denied by files#0 \(policies\.yaml:\d+\): keys stay put/);
    assert.match(ctx.audit.list().at(-1)?.begin.rule ?? '', /^files#0 deny read_file/);
    writeFileSync(`${root}/allowed/big`, Buffer.alloc(FILE_READ_DEFAULT_BYTES * 2 + 5, 0x62));
    const big = await run({ kind: 'file.read', host: 'h1', path: `${root}/allowed/big` });
    assert.equal(big.outcome, 'ok', big.message ?? '');
    assert.deepEqual([big.content?.length, big.truncated, big.size], [FILE_READ_DEFAULT_BYTES, true, FILE_READ_DEFAULT_BYTES * 2 + 5]);
    assert.ok(big.content?.every((b) => b === 0x62));
  });

  test('atomic over SFTP: a concurrent reader never sees a part; a failed write leaves the old file', async () => {
    const file = `${root}/allowed/atomic`;
    const size = 2 << 20;
    writeFileSync(file, Buffer.alloc(size, 0x61));
    let torn = 0;
    let reads = 0;
    let writing = true;
    const reader = (async () => {
      while (writing) {
        const d = readFileSync(file);
        reads++;
        if (d.length !== size || d.indexOf(d[0] === 0x61 ? 0x62 : 0x61) !== -1) torn++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 0; i < 6; i++) {
      const r = await run({ kind: 'file.write', host: 'h1', path: file, content: Buffer.alloc(size, i % 2 === 0 ? 0x62 : 0x61) });
      assert.equal(r.outcome, 'ok', r.message ?? '');
    }
    writing = false;
    await reader;
    assert.ok(reads > 6, `reads ${reads}`);
    assert.equal(torn, 0);

    // A write that fails midway (the server killed while it writes the temporary file): the old file stays.
    const h1 = fleet.hosts[0]!;
    writeFileSync(`${root}/allowed/sub/keep`, 'old');
    const pending = run({ kind: 'file.write', host: 'h1', path: `${root}/allowed/sub/keep`, content: Buffer.alloc(16 << 20, 0x6e) });
    let killed = false;
    for (let i = 0; i < 2000 && !killed; i++) {
      const temp = readdirSync(`${root}/allowed/sub`).find((n) => n.startsWith('.remux-'));
      if (temp !== undefined && statSync(`${root}/allowed/sub/${temp}`).size > 0) {
        h1.kill();
        killed = true;
      } else await new Promise((r) => setTimeout(r, 1));
    }
    assert.ok(killed, 'the write was caught midway');
    const failed = await pending;
    assert.deepEqual([failed.outcome, failed.exitCode], ['unreachable', 255], failed.message ?? '');
    assert.equal(readFileSync(`${root}/allowed/sub/keep`, 'utf8'), 'old');
    await h1.restart();
    for (const n of readdirSync(`${root}/allowed/sub`)) if (n.startsWith('.remux-')) rmSync(`${root}/allowed/sub/${n}`);
    // A directory as the target is not replaced.
    mkdirSync(`${root}/allowed/sub/adir`);
    const dir = await run({ kind: 'file.write', host: 'h1', path: `${root}/allowed/sub/adir`, content: 'x' });
    assert.deepEqual([dir.outcome, dir.exitCode], ['failed', 1]);
    assert.match(dir.message ?? '', /not a regular file/);
    assert.equal(statSync(`${root}/allowed/sub/adir`).isDirectory(), true);
  });

  test('edit over SFTP: replaced atomically with the mode kept; a symlink refused; the CLI prints the diff, in process and through the daemon', async () => {
    const path = `${root}/allowed/edit.conf`;
    writeFileSync(path, 'port = 80\nhost = a\n');
    chmodSync(path, 0o600);
    const r = await run({ kind: 'file.edit', host: 'h1', path, edits: [{ oldText: 'port = 80', newText: 'port = 443' }] });
    assert.equal(r.outcome, 'ok', r.message ?? '');
    assert.equal(readFileSync(path, 'utf8'), 'port = 443\nhost = a\n');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    symlinkSync(path, `${root}/allowed/edit.link`);
    const link = await run({ kind: 'file.edit', host: 'h1', path: `${root}/allowed/edit.link`, edits: [{ oldText: 'host', newText: 'x' }] });
    assert.match(link.message ?? '', /is a symlink/);
    const cli = await remux(['client', 'edit', 'h1', path, '--old', 'host = a', '--new', 'host = b', '--no-daemon'], { env: env() });
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout, `--- ${path}\n+++ ${path}\n@@ -1,2 +1,2 @@\n port = 443\n-host = a\n+host = b\n`);
    const unpaired = await remux(['client', 'edit', 'h1', path, '--old', 'a', '--old', 'b', '--new', 'c', '--no-daemon'], { env: env() });
    assert.deepEqual([unpaired.code, unpaired.stderr.trim()], [2, 'remux: --old and --new go in pairs: got 2 --old and 1 --new']);
    const start = await remux(['daemon', 'start'], { env: env() });
    assert.equal(start.code, 0, start.stderr);
    const viaDaemon = await remux(['client', 'edit', 'h1', path, '--old', 'port = 443', '--new', 'port = 8443', '--json'], { env: env() });
    assert.equal(viaDaemon.code, 0, viaDaemon.stderr);
    assert.deepEqual(JSON.parse(viaDaemon.stdout), { path, changed: true, written: true, diff: `--- ${path}\n+++ ${path}\n@@ -1,2 +1,2 @@\n-port = 443\n+port = 8443\n host = b\n` });
    const missing = await remux(['client', 'edit', 'h1', path, '--old', 'port = 1', '--new', 'x'], { env: env() });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /old_text \(--old\) is not in the file/);
    await remux(['daemon', 'stop'], { env: env() });
  });

  test('CLI: client write from stdin, read, ls --json; in process and through the daemon', async () => {
    const path = `${root}/allowed/cli.txt`;
    const wrote = await remux(['client', 'write', 'h1', path, '--json'], { env: env(), input: 'from stdin\n' });
    assert.equal(wrote.code, 0, wrote.stderr);
    assert.deepEqual(JSON.parse(wrote.stdout), { path, bytes: 11, created: true });
    assert.equal(readFileSync(path, 'utf8'), 'from stdin\n');
    const read = await remux(['client', 'read', 'h1', path, '--offset', '5', '--no-daemon'], { env: env() });
    assert.deepEqual([read.code, read.stdout], [0, 'stdin\n']);
    const denied = await remux(['client', 'read', 'h1', `${root}/outside/passwd`, '--no-daemon'], { env: env() });
    assert.equal(denied.code, 77);
    assert.match(denied.stderr, /^remux: read_file .*outside\/passwd: no rule of policy files allows it/m);
    const bad = await remux(['client', 'read', 'h1', path, '--length', 'ten', '--no-daemon'], { env: env() });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--length must be a whole number of bytes from 0, got "ten"/);

    const start = await remux(['daemon', 'start'], { env: env() });
    assert.equal(start.code, 0, start.stderr);
    const ls = await remux(['client', 'ls', 'h1', `${root}/allowed/sub`, '--json'], { env: env() });
    assert.equal(ls.code, 0, ls.stderr);
    const listed = JSON.parse(ls.stdout) as { path: string; entries: Array<{ name: string; type: string }>; truncated: boolean };
    assert.deepEqual(listed.entries.map((e) => e.name), ['adir', 'keep', 't']);
    const viaDaemon = await remux(['client', 'read', 'h1', path], { env: { ...env(), REMUX_LAUNCHER_DEBUG: '1' } });
    assert.deepEqual([viaDaemon.code, viaDaemon.stdout], [0, 'from stdin\n']);
    assert.match(viaDaemon.stderr, /forwarding to the daemon/);
    assert.doesNotMatch(viaDaemon.stderr, /running the Node CLI/);
    const table = await remux(['client', 'ls', 'localhost', `${root}/allowed/sub`], { env: env() });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^TYPE\s+MODE\s+SIZE\s+MODIFIED \(UTC\)\s+NAME\ndirectory\s+0755\s+\d+\s+\S+ \S+\s+adir\nfile\s+0644\s+3\s+\S+ \S+\s+keep\nfile\s+0644\s+6\s+\S+ \S+\s+t\n$/);
    // write runs in this process even with a daemon up (its stdin is the content).
    const again = await remux(['client', 'write', 'h1', path, '--json'], { env: env(), input: 'second' });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), { path, bytes: 6, created: false });
    assert.equal(readFileSync(path, 'utf8'), 'second');
    // A missing directory over SFTP: the error says how to make it.
    const noDir = await remux(['client', 'write', 'h1', `${root}/allowed/absent/x.txt`], { env: env(), input: 'x' });
    assert.equal(noDir.code, 1);
    assert.equal(noDir.stderr, `remux: ${root}/allowed/absent: no such file or directory; nothing was written: create_dirs (--create-dirs on the command line) makes the missing directories\n`);
  });

  test('head and tail over SFTP, past the first 64 KiB; client read --head/--tail (--json), a conflict exit 2; through the daemon too', async () => {
    const path = `${root}/allowed/app.log`;
    // 200 lines of 1000 bytes and a last line without its newline.
    const body = Array.from({ length: 200 }, (_, i) => `${String(i + 1).padStart(4, '0')} ${'z'.repeat(994)}\n`).join('');
    writeFileSync(path, `${body}last`);
    const tail = await run({ kind: 'file.read', host: 'h1', path, tail: 101 });
    assert.equal(tail.outcome, 'ok', tail.message ?? '');
    assert.deepEqual([tail.content?.toString(), tail.lines, tail.firstLine, tail.offset, tail.truncated], [`${body.slice(100_000)}last`, 101, null, 100_000, false]);
    const head = await run({ kind: 'file.read', host: 'h1', path, head: 70 });
    assert.deepEqual([head.content?.toString(), head.lines, head.firstLine, head.offset], [body.slice(0, 70_000), 70, 1, 0]);
    const all = await run({ kind: 'file.read', host: 'h1', path, tail: 500 });
    assert.deepEqual([all.content?.length, all.lines, all.firstLine, all.offset], [200_004, 201, 1, 0]);
    const audited = ctx.audit.list({ host: 'h1' }).at(-1);
    assert.deepEqual([audited?.begin.operation, audited?.begin.resource, audited?.end?.bytesOut], ['read_file', path, 200_004]);

    writeFileSync(path, 'one\r\ntwo\r\nthree\r\n');
    const cli = await remux(['client', 'read', 'h1', path, '--tail', '2', '--no-daemon'], { env: env() });
    assert.deepEqual([cli.code, cli.stdout, cli.stderr], [0, 'two\r\nthree\r\n', '']);
    const json = await remux(['client', 'read', 'h1', path, '--head', '1', '--json'], { env: env() });
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), { path, size: 17, offset: 0, bytes: 5, truncated: false, lines: 1, firstLine: 1, encoding: 'utf8', content: 'one\r\n' });
    const viaDaemon = await remux(['client', 'read', 'h1', path, '--tail', '1'], { env: env() });
    assert.deepEqual([viaDaemon.code, viaDaemon.stdout], [0, 'three\r\n']);
    const conflict = await remux(['client', 'read', 'h1', path, '--tail', '1', '--offset', '3', '--no-daemon'], { env: env() });
    assert.equal(conflict.code, 2);
    assert.match(conflict.stderr, /tail and offset cannot be used together/);
    const notLines = await remux(['client', 'read', 'h1', path, '--head', 'ten', '--no-daemon'], { env: env() });
    assert.deepEqual([notLines.code, notLines.stderr.trim()], [2, 'remux: --head must be a whole number of lines from 1, got "ten"']);
    // Out of range: said with the flag's name, as the command line gave it.
    const noLines = await remux(['client', 'read', 'h1', path, '--tail', '0', '--no-daemon'], { env: env() });
    assert.deepEqual([noLines.code, noLines.stderr.trim()], [2, 'remux: --tail must be a whole number of lines from 1, got "0"']);
    const overCap = await remux(['client', 'read', 'h1', path, '--max-bytes', '100000000', '--no-daemon'], { env: env() });
    assert.deepEqual([overCap.code, overCap.stderr.trim()], [2, 'remux: --max-bytes must be a whole number of bytes from 1 to 16777216, got "100000000"']);
  });
});
