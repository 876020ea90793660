// File actions through perform() on the real local host: real files in a temp tree, the real audit
// store, the policy matching of commands. Adversarial: `..`, the /tmp/allowed vs /tmp/allowed_evil
// prefix bypass (CVE-2025-53110), symlink escapes of the file and of a parent directory
// (CVE-2025-53109), a symlink as write target, NUL, a huge read capped, write atomicity under a
// concurrent reader, a failed write leaving the old file, a denial naming its rule, audit records.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { AuditStore } from '../../src/audit/index.js';
import { redactText } from '../../src/audit/redact.js';
import { loadConfig } from '../../src/config/config.js';
import { ADMIN_SCOPE } from '../../src/config/principals.js';
import { FILE_READ_DEFAULT_BYTES, FILE_WRITE_MAX_BYTES } from '../../src/core/perform-file.js';
import { perform, type PerformContext } from '../../src/core/perform.js';
import { approvalText, type Action, type PerformIO, type Principal } from '../../src/core/types.js';
import { createLocalHost } from '../../src/hosts/local.js';
import { Approvals, approvalsApprover } from '../../src/notify/service.js';
import { parsePolicies } from '../../src/policy/load.js';
import { tempDbPath } from '../audit/helpers.js';

/** A temp tree: allowed/ (the policy's tree), allowed_evil/ and outside/ (not covered). */
function tree(t: TestContext): string {
  // realpath: /tmp may itself be a link on some systems; the policy names the real tree.
  const root = mkdtempSync(join(tmpdir(), 'remux-files-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const d of ['allowed/sub', 'allowed/secret', 'allowed/ask', 'allowed_evil', 'outside']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'allowed/a.txt'), 'hello\n');
  writeFileSync(join(root, 'allowed/secret/key'), 'k');
  writeFileSync(join(root, 'allowed/ask/x'), 'x');
  writeFileSync(join(root, 'allowed_evil/loot'), 'evil');
  writeFileSync(join(root, 'outside/passwd'), 'root:x:0:0\n');
  return root;
}

function policiesFor(root: string) {
  return parsePolicies(
    `policies:
  files:
    sandbox: false
    capabilities:
      - { operation: read_file, resource: ${root}/allowed/secret/**, effect: deny, reason: keys stay put }
      - { operation: write_file, resource: ${root}/allowed/ask/**, effect: ask }
      - { operation: read_file, resource: ${root}/allowed/** }
      - { operation: write_file, resource: ${root}/allowed/** }
      - { operation: list_directory, resource: ${root}/allowed/** }
      - { operation: list_directory, resource: ${root}/allowed }
      - { operation: write_stdout, resource: { redact: ["SECRET=\\\\S+", { from: "-----BEGIN [A-Z ]*PRIVATE KEY-----", to: "-----END [A-Z ]*PRIVATE KEY-----" }] } }
`,
    'files.yaml',
    {},
  );
}

function setup(t: TestContext, principal: Principal = { name: 'alice', via: 'cli', scope: ADMIN_SCOPE }) {
  const root = tree(t);
  const audit = AuditStore.open(tempDbPath(t));
  t.after(() => audit.close());
  const host = createLocalHost('localhost', '/usr/bin:/bin', undefined);
  const ctx: PerformContext = {
    principal,
    policies: policiesFor(root),
    defaultPolicy: 'files',
    defaultTimeoutMs: null,
    defaultPipefail: false,
    audit,
    host: () => host,
    hostEntry: (name) => ({ name, transport: 'local', labels: {}, builtin: true }),
  };
  const io: PerformIO = { onStdout: () => {}, onStderr: () => {} };
  const run = (action: Action, withIo: PerformIO = io) => perform(ctx, action, withIo);
  return { root, audit, run, host };
}

/** The approvals service of a REMUX_HOME of its own (no channels), as the daemon runs it; closed and removed after the test. */
function approvalsService(t: TestContext, audit: AuditStore): Approvals {
  const home = mkdtempSync(join(tmpdir(), 'remux-approvals-'));
  const env = { REMUX_HOME: home };
  const approvals = new Approvals({ env, config: loadConfig(env).config, audit });
  t.after(() => {
    approvals.close();
    rmSync(home, { recursive: true, force: true });
  });
  return approvals;
}

test('read, write and list in the allowed tree; the audit names the operation, path and bytes, never the content', async (t) => {
  const { root, audit, run } = setup(t);
  const read = await run({ kind: 'file.read', host: 'localhost', path: `${root}/allowed/a.txt` });
  assert.equal(read.outcome, 'ok', read.message ?? '');
  assert.equal(read.content?.toString(), 'hello\n');
  assert.deepEqual([read.size, read.bytesOut, read.truncated], [6, 6, false]);
  assert.match(read.decision?.reason ?? '', /^read_file .*\/allowed\/a\.txt: allowed by files#2 \(files\.yaml:/);

  const part = await run({ kind: 'file.read', host: 'localhost', path: `${root}/allowed/a.txt`, offset: 1, length: 3 });
  assert.equal(part.content?.toString(), 'ell');

  const wrote = await run({ kind: 'file.write', host: 'localhost', path: `${root}/allowed/sub/new.txt`, content: 'secret body' });
  assert.equal(wrote.outcome, 'ok', wrote.message ?? '');
  assert.deepEqual([wrote.bytes, wrote.created], [11, true]);
  assert.equal(readFileSync(`${root}/allowed/sub/new.txt`, 'utf8'), 'secret body');
  assert.deepEqual(readdirSync(`${root}/allowed/sub`), ['new.txt'], 'no temporary file left behind');

  const listed = await run({ kind: 'file.list', host: 'localhost', path: `${root}/allowed` });
  assert.equal(listed.outcome, 'ok', listed.message ?? '');
  assert.deepEqual(listed.entries?.map((e) => [e.name, e.type]), [['a.txt', 'file'], ['ask', 'directory'], ['secret', 'directory'], ['sub', 'directory']]);

  const records = audit.list();
  assert.deepEqual(records.map((r) => [r.begin.operation, r.begin.principal, r.begin.decision, r.end?.exitCode]), [
    ['read_file', 'alice', 'allow', 0],
    ['read_file', 'alice', 'allow', 0],
    ['write_file', 'alice', 'allow', 0],
    ['list_directory', 'alice', 'allow', 0],
  ]);
  assert.equal(records[2]?.begin.resource, `${root}/allowed/sub/new.txt`);
  assert.equal(records[2]?.end?.bytesOut, 11);
  assert.equal(records[0]?.end?.bytesOut, 6);
  for (const r of records) assert.equal(JSON.stringify(r).includes('secret body'), false, 'file bodies never reach the audit');
});

test('an existing file keeps its mode; writes replace it whole', async (t) => {
  const { root, run } = setup(t);
  const file = `${root}/allowed/a.txt`;
  chmodSync(file, 0o640);
  const r = await run({ kind: 'file.write', host: 'localhost', path: file, content: Buffer.from('new') });
  assert.equal(r.outcome, 'ok', r.message ?? '');
  assert.equal(r.created, false);
  assert.equal(statSync(file).mode & 0o777, 0o640);
  assert.equal(readFileSync(file, 'utf8'), 'new');
});

test('`..` out of the allowed tree is denied: the resolved path is what is checked', async (t) => {
  const { root, run } = setup(t);
  const r = await run({ kind: 'file.read', host: 'localhost', path: `${root}/allowed/../outside/passwd` });
  assert.deepEqual([r.outcome, r.exitCode], ['denied', 77]);
  assert.match(r.message ?? '', new RegExp(`read_file ${root}/outside/passwd: no rule of policy files allows it \\(resolved from`));
  assert.equal(r.content, undefined);
});

test('prefix bypass: /allowed/** does not cover /allowed_evil (whole segments)', async (t) => {
  const { root, run } = setup(t);
  for (const action of [
    { kind: 'file.read', host: 'localhost', path: `${root}/allowed_evil/loot` },
    { kind: 'file.write', host: 'localhost', path: `${root}/allowed_evil/new`, content: 'x' },
    { kind: 'file.list', host: 'localhost', path: `${root}/allowed_evil` },
  ] as const) {
    const r = await run(action);
    assert.deepEqual([r.outcome, r.exitCode], ['denied', 77], `${action.kind}: ${r.message}`);
  }
  assert.equal(existsSync(`${root}/allowed_evil/new`), false);
});

test('symlink escapes: a file link and a parent directory link pointing outside are resolved and denied', async (t) => {
  const { root, run } = setup(t);
  symlinkSync(`${root}/outside/passwd`, `${root}/allowed/link`);
  symlinkSync(`${root}/outside`, `${root}/allowed/dirlink`);
  const viaFile = await run({ kind: 'file.read', host: 'localhost', path: `${root}/allowed/link` });
  assert.equal(viaFile.exitCode, 77);
  assert.match(viaFile.message ?? '', new RegExp(`read_file ${root}/outside/passwd: no rule .* \\(resolved from ${root}/allowed/link\\)`));
  const viaDir = await run({ kind: 'file.write', host: 'localhost', path: `${root}/allowed/dirlink/planted`, content: 'x' });
  assert.equal(viaDir.exitCode, 77);
  assert.equal(existsSync(`${root}/outside/planted`), false);
  const listing = await run({ kind: 'file.list', host: 'localhost', path: `${root}/allowed/dirlink` });
  assert.equal(listing.exitCode, 77);
  // A dangling link is followed to where a write would create its target, outside: denied too.
  symlinkSync(`${root}/outside/created`, `${root}/allowed/dangling`);
  const dangling = await run({ kind: 'file.write', host: 'localhost', path: `${root}/allowed/dangling`, content: 'x' });
  assert.equal(dangling.exitCode, 77);
  assert.equal(existsSync(`${root}/outside/created`), false);
});

test('a symlink as the write target is refused even inside the tree; the link and its target stay', async (t) => {
  const { root, run, audit } = setup(t);
  symlinkSync(`${root}/allowed/a.txt`, `${root}/allowed/inner-link`);
  const r = await run({ kind: 'file.write', host: 'localhost', path: `${root}/allowed/inner-link`, content: 'x' });
  assert.deepEqual([r.outcome, r.exitCode], ['denied', 77]);
  assert.match(r.message ?? '', /is a symlink .*a write never follows one/);
  assert.equal(lstatSync(`${root}/allowed/inner-link`).isSymbolicLink(), true);
  assert.equal(readFileSync(`${root}/allowed/a.txt`, 'utf8'), 'hello\n');
  assert.equal(audit.list().at(-1)?.begin.decision, 'deny');
});

test('the check-to-open race: a parent swapped for a symlink after the check is not followed', async (t) => {
  const { root } = setup(t);
  const host = createLocalHost('localhost', '/usr/bin:/bin', undefined);
  const files = host.files!;
  // The check resolved allowed/sub/f; then sub becomes a link to outside before the open.
  writeFileSync(`${root}/allowed/sub/f`, 'inside');
  const [resolved] = await files.resolve([`${root}/allowed/sub/f`]);
  assert.deepEqual(resolved, { real: `${root}/allowed/sub/f`, finalLink: false });
  rmSync(`${root}/allowed/sub`, { recursive: true });
  symlinkSync(`${root}/outside`, `${root}/allowed/sub`);
  writeFileSync(`${root}/outside/f`, 'outside');
  await assert.rejects(files.read(`${root}/allowed/sub/f`, { offset: 0, length: 100 }), { name: 'FileError', message: /not followed/ });
  await assert.rejects(files.write(`${root}/allowed/sub/f`, Buffer.from('x'), { createDirs: false }), { name: 'FileError' });
  await assert.rejects(files.write(`${root}/allowed/sub/f`, Buffer.from('x'), { createDirs: true }), { name: 'FileError' });
  await assert.rejects(files.list(`${root}/allowed/sub`, 10), { name: 'FileError' });
  assert.equal(readFileSync(`${root}/outside/f`, 'utf8'), 'outside');
  // A component further up swapped: the directory opened is not the one checked (/proc tells).
  mkdirSync(`${root}/outside/deep`);
  writeFileSync(`${root}/outside/deep/g`, 'outside');
  await assert.rejects(files.read(`${root}/allowed/sub/deep/g`, { offset: 0, length: 100 }), { name: 'FileError', message: /changed after it was checked/ });
  await assert.rejects(files.write(`${root}/allowed/sub/deep/g`, Buffer.from('x'), { createDirs: false }), { name: 'FileError', message: /changed after it was checked/ });
  assert.equal(readFileSync(`${root}/outside/deep/g`, 'utf8'), 'outside');
  // The final component swapped for a link: O_NOFOLLOW refuses it.
  symlinkSync(`${root}/outside/passwd`, `${root}/allowed/swapped`);
  await assert.rejects(files.read(`${root}/allowed/swapped`, { offset: 0, length: 100 }), { name: 'FileError', message: /is a symlink now/ });
});

test('NUL, relative paths and bad numbers are rejected with exit 2 before the host is asked', async (t) => {
  const { root, run, audit } = setup(t);
  const nul = await run({ kind: 'file.read', host: 'localhost', path: `${root}/allowed/a.txt\0/../../outside/passwd` });
  assert.deepEqual([nul.outcome, nul.exitCode], ['rejected', 2]);
  assert.match(nul.message ?? '', /contains a NUL byte/);
  const relative = await run({ kind: 'file.list', host: 'localhost', path: 'allowed' });
  assert.match(relative.message ?? '', /must be absolute/);
  const negative = await run({ kind: 'file.read', host: 'localhost', path: `${root}/allowed/a.txt`, offset: -1 });
  assert.match(negative.message ?? '', /offset must be a whole number/);
  assert.equal(audit.list().length, 3, 'refusals are audited too');
});

test('a huge file is read up to the cap and flagged truncated; a larger cap may be asked for', async (t) => {
  const { root, run, audit } = setup(t);
  const big = `${root}/allowed/big`;
  writeFileSync(big, Buffer.alloc(3 * FILE_READ_DEFAULT_BYTES, 0x61));
  const r = await run({ kind: 'file.read', host: 'localhost', path: big });
  assert.equal(r.outcome, 'ok');
  assert.deepEqual([r.content?.length, r.truncated, r.size], [FILE_READ_DEFAULT_BYTES, true, 3 * FILE_READ_DEFAULT_BYTES]);
  assert.equal(audit.list().at(-1)?.end?.truncated, true);
  const more = await run({ kind: 'file.read', host: 'localhost', path: big, maxBytes: 4 * FILE_READ_DEFAULT_BYTES });
  assert.deepEqual([more.content?.length, more.truncated], [3 * FILE_READ_DEFAULT_BYTES, false]);
  const tooMuch = await run({ kind: 'file.read', host: 'localhost', path: big, maxBytes: 1 << 30 });
  assert.equal(tooMuch.exitCode, 2);
  // Asking for exactly what is there is not a truncation.
  const exact = await run({ kind: 'file.read', host: 'localhost', path: big, length: 10 });
  assert.deepEqual([exact.content?.length, exact.truncated], [10, false]);
});

test('atomic writes: a concurrent reader sees the old or the new content, never a part', async (t) => {
  const { root, run } = setup(t);
  const file = `${root}/allowed/atomic`;
  const size = 4 << 20;
  const a = Buffer.alloc(size, 0x61);
  const b = Buffer.alloc(size, 0x62);
  writeFileSync(file, a);
  // A separate process reads the file in a loop while we replace it: every read must be all a or all b.
  const reader = spawn(process.execPath, [
    '-e',
    `const fs = require('fs'); let bad = 0, n = 0; const end = Date.now() + 1500;
     while (Date.now() < end) { const d = fs.readFileSync(process.argv[1]); n++; if (d.length !== ${size} || (d[0] !== d[d.length - 1]) || d.indexOf(d[0] === 0x61 ? 0x62 : 0x61) !== -1) bad++; }
     console.log(JSON.stringify({ bad, n }));`,
    file,
  ]);
  let out = '';
  reader.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise((resolve) => reader.once('close', resolve));
  let writes = 0;
  const until = Date.now() + 1200;
  while (Date.now() < until) {
    const r = await run({ kind: 'file.write', host: 'localhost', path: file, content: writes % 2 === 0 ? b : a });
    assert.equal(r.outcome, 'ok', r.message ?? '');
    writes++;
  }
  await closed;
  const { bad, n } = JSON.parse(out) as { bad: number; n: number };
  assert.ok(n > 10 && writes > 5, `reads ${n}, writes ${writes}`);
  assert.equal(bad, 0, 'no torn read');
});

test('a failed write leaves the old file intact and no temporary file', async (t) => {
  const { root, run } = setup(t);
  const dir = `${root}/allowed/sub`;
  const isRoot = process.getuid?.() === 0;
  // As root: a 64 KiB filesystem, so writing the temporary file fails midway (ENOSPC). Otherwise: a
  // directory that refuses new entries. Either way no room for the temporary file.
  if (isRoot) execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'remux-test', dir]);
  try {
    writeFileSync(`${dir}/keep`, 'old');
    if (!isRoot) chmodSync(dir, 0o555);
    const r = await run({ kind: 'file.write', host: 'localhost', path: `${dir}/keep`, content: Buffer.alloc(1 << 20, 0x6e) });
    if (!isRoot) chmodSync(dir, 0o755);
    assert.deepEqual([r.outcome, r.exitCode], ['failed', 1]);
    assert.match(r.message ?? '', /keep: /);
    assert.equal(readFileSync(`${dir}/keep`, 'utf8'), 'old');
    assert.deepEqual(readdirSync(dir), ['keep'], 'the temporary file was removed');
  } finally {
    if (isRoot) execFileSync('umount', [dir]);
  }
});

test('a file listed, or named as a directory to write in, is "not a directory": no talk of a swapped symlink (as over SFTP)', async (t) => {
  const { root, run } = setup(t);
  const listed = await run({ kind: 'file.list', host: 'localhost', path: `${root}/allowed/a.txt` });
  assert.deepEqual([listed.outcome, listed.exitCode, listed.message], ['failed', 1, `${root}/allowed/a.txt: not a directory`]);
  const under = await run({ kind: 'file.write', host: 'localhost', path: `${root}/allowed/a.txt/b`, content: 'b' });
  assert.deepEqual([under.outcome, under.message], ['failed', `${root}/allowed/a.txt: not a directory`]);
  assert.equal(readFileSync(`${root}/allowed/a.txt`, 'utf8'), 'hello\n');
});

test('create_dirs makes missing parents inside the tree; without it a missing parent fails', async (t) => {
  const { root, run } = setup(t);
  const without = await run({ kind: 'file.write', host: 'localhost', path: `${root}/allowed/x/y/z.txt`, content: 'z' });
  assert.deepEqual([without.outcome, without.exitCode], ['failed', 1]);
  // It says how to make the directory, not only that it is missing.
  assert.equal(without.message, `${root}/allowed/x/y: no such file or directory; nothing was written: create_dirs (--create-dirs on the command line) makes the missing directories`);
  // An edit makes no file: a missing one is named as it is, without the hint.
  const edited = await run({ kind: 'file.edit', host: 'localhost', path: `${root}/allowed/none.txt`, edits: [{ oldText: 'a', newText: 'b' }] });
  assert.equal(edited.message, `${root}/allowed/none.txt: no such file or directory`);
  const made = await run({ kind: 'file.write', host: 'localhost', path: `${root}/allowed/x/y/z.txt`, content: 'z', createDirs: true });
  assert.equal(made.outcome, 'ok', made.message ?? '');
  assert.equal(readFileSync(`${root}/allowed/x/y/z.txt`, 'utf8'), 'z');
  const outside = await run({ kind: 'file.write', host: 'localhost', path: `${root}/elsewhere/y/z.txt`, content: 'z', createDirs: true });
  assert.equal(outside.exitCode, 77);
  assert.equal(existsSync(`${root}/elsewhere`), false, 'no directory made outside the tree');
});

test('an approval its caller cancelled is audited as cancelled, not expired', async (t) => {
  const { root, run, audit } = setup(t);
  const approvals = approvalsService(t, audit);
  const caller = new AbortController();
  // The caller (an MCP client's request) goes away as soon as the approval waits; its deadline is 300 s off.
  const approve = approvalsApprover(approvals, 'bot', () => caller.abort(), caller.signal);
  const out = await run({ kind: 'file.write', host: 'localhost', path: `${root}/allowed/ask/x`, content: 'new' }, { onStdout: () => {}, onStderr: () => {}, approve });
  assert.equal(out.exitCode, 77);
  assert.match(out.message ?? '', /approval cancelled: the caller went away or cancelled before an answer/);
  assert.match(audit.list().at(-1)?.end?.refusal ?? '', /approval cancelled/);
  assert.doesNotMatch(audit.list().at(-1)?.end?.refusal ?? '', /expired/);
  const [cancelled] = approvals.store.list({ all: true });
  assert.deepEqual(audit.list().at(-1)?.end?.approval, { outcome: 'cancelled', by: null, via: null, id: cancelled?.id });
  assert.deepEqual(approvals.store.list({ all: true }).map((a) => a.status), ['cancelled']);
});

test('a deny names its rule and reason; ask goes to the approver, which may refuse; out of scope is refused first', async (t) => {
  const { root, run, audit } = setup(t);
  const denied = await run({ kind: 'file.read', host: 'localhost', path: `${root}/allowed/secret/key` });
  assert.equal(denied.exitCode, 77);
  assert.match(denied.message ?? '', /denied by files#0 \(files\.yaml:\d+\): keys stay put/);
  assert.equal(denied.decision?.rule?.index, 0);
  assert.match(audit.list().at(-1)?.begin.rule ?? '', /^files#0 deny read_file \(files\.yaml:\d+\)$/);

  const asked: string[] = [];
  const io = (answer: 'allow' | 'deny'): PerformIO => ({
    onStdout: () => {},
    onStderr: () => {},
    approve: (action) => {
      asked.push(`${action.kind} ${'path' in action ? action.path : ''}`);
      return Promise.resolve(answer);
    },
  });
  const refused = await run({ kind: 'file.write', host: 'localhost', path: `${root}/allowed/ask/x`, content: 'new' }, io('deny'));
  assert.equal(refused.exitCode, 77);
  assert.match(refused.message ?? '', /approval refused/);
  assert.equal(readFileSync(`${root}/allowed/ask/x`, 'utf8'), 'x');
  const approved = await run({ kind: 'file.write', host: 'localhost', path: `${root}/allowed/ask/x`, content: 'new' }, io('allow'));
  assert.equal(approved.outcome, 'ok', approved.message ?? '');
  assert.equal(readFileSync(`${root}/allowed/ask/x`, 'utf8'), 'new');
  assert.deepEqual(asked, [`file.write ${root}/allowed/ask/x`, `file.write ${root}/allowed/ask/x`]);
  const noApprover = await run({ kind: 'file.write', host: 'localhost', path: `${root}/allowed/ask/x`, content: 'z' });
  assert.match(noApprover.message ?? '', /no approver is available/);

  const scoped = setup(t, { name: 'bot', via: 'token', scope: { admin: false, hosts: 'web*', users: [], createAs: [], attach: 'read-only', policies: [] } });
  const out = await scoped.run({ kind: 'file.read', host: 'localhost', path: `${scoped.root}/allowed/a.txt` });
  assert.equal(out.exitCode, 77);
  assert.match(out.message ?? '', /out of scope for bot: host localhost/);
  assert.equal(scoped.audit.list().at(-1)?.begin.principal, 'bot');
});

test("a read's content gets the policy's redaction, as cat's output would: reading a file does not get around it", async (t) => {
  const { root, run } = setup(t);
  writeFileSync(join(root, 'allowed/env'), 'USER=bob\nSECRET=hunter2\n');
  const r = await run({ kind: 'file.read', host: 'localhost', path: join(root, 'allowed/env') });
  assert.equal(r.exitCode, 0, r.message ?? '');
  assert.equal(r.content?.toString(), 'USER=bob\n[REDACTED]\n');
  // Cut by its cap, a read says where to read on in the file's bytes, not in the redacted content's.
  const line = `SECRET=${'h'.repeat(40)}\n`;
  writeFileSync(join(root, 'allowed/many'), line.repeat(100));
  const part = await run({ kind: 'file.read', host: 'localhost', path: join(root, 'allowed/many'), maxBytes: line.length * 10 });
  assert.equal(part.content?.toString(), '[REDACTED]\n'.repeat(10));
  assert.deepEqual([part.truncated, part.nextOffset], [true, line.length * 10]);
  const on = await run({ kind: 'file.read', host: 'localhost', path: join(root, 'allowed/many'), offset: part.nextOffset!, maxBytes: line.length * 90 });
  assert.deepEqual([on.content?.toString(), on.truncated, on.nextOffset], ['[REDACTED]\n'.repeat(90), false, undefined], 'the rest, nothing skipped or read twice');
});

test('a part of a file (offset, length, the cap) is redacted as in the whole file: a start inside a key block or a cut through a secret hides it all', async (t) => {
  const { root, run } = setup(t);
  const text = 'USER=bob\nSECRET=hunter2\n-----BEGIN RSA PRIVATE KEY-----\nMIIEvQIBADANBgkq\n-----END RSA PRIVATE KEY-----\ntail\n';
  writeFileSync(join(root, 'allowed/env'), text);
  const read = async (offset: number, length?: number, maxBytes?: number): Promise<string> => {
    const r = await run({ kind: 'file.read', host: 'localhost', path: join(root, 'allowed/env'), offset, ...(length === undefined ? {} : { length }), ...(maxBytes === undefined ? {} : { maxBytes }) });
    assert.equal(r.exitCode, 0, r.message ?? '');
    return r.content?.toString() ?? '';
  };
  assert.equal(await read(text.indexOf('MIIE'), 8), '[REDACTED]\n', 'inside the block, past its BEGIN line');
  assert.equal(await read(text.indexOf('hunter2'), 7), '[REDACTED]\n', 'the secret without its SECRET=');
  assert.equal(await read(0, 12), 'USER=bob\n[REDACTED]\n', 'a cut through a secret');
  assert.equal(await read(0, undefined, 12), 'USER=bob\n[REDACTED]\n', 'the cap cutting it');
  assert.equal(await read(2, 4), 'ER=b', 'nothing to redact: cut where asked');
});

test('a part deep in a large file is redacted from the 64 KiB around it: the file is not read whole', async (t) => {
  const { root, run } = setup(t);
  const text = 'SECRET=hunter2\n-----BEGIN RSA PRIVATE KEY-----\nMIIEvQIBADANBgkq\n-----END RSA PRIVATE KEY-----\ntail\n';
  // 100 MiB of a hole, a newline, then the text: past anything a whole read would take (16 MiB), cheap on disk.
  const at = (100 << 20) + 1;
  const path = join(root, 'allowed/big');
  writeFileSync(path, '');
  truncateSync(path, at - 1);
  appendFileSync(path, `\n${text}`);
  const read = async (offset: number, length: number): Promise<string> => {
    const r = await run({ kind: 'file.read', host: 'localhost', path, offset, length });
    assert.equal(r.exitCode, 0, r.message ?? '');
    return r.content?.toString() ?? '';
  };
  assert.equal(await read(at + text.indexOf('MIIE'), 8), '[REDACTED]\n');
  assert.equal(await read(at + text.indexOf('hunter2'), 4), '[REDACTED]\n');
  assert.equal(await read(at + text.indexOf('tail'), 4), 'tail');
});

test("a part of a line that began more than 64 KiB before it: redaction's pieces cannot be cut from the line's start, so a secret anywhere near hides the whole part", async (t) => {
  const { root, run } = setup(t);
  const path = join(root, 'allowed/long');
  // Cut 64 KiB pieces from 64 KiB before the part, the secret would be split where the part starts
  // (SEC | RET=hunter2); a whole read cuts them from the line's start and redacts it.
  const line = `${'x'.repeat(100_000)} SECRET=hunter2 tail\n`;
  writeFileSync(path, `head\n${line}${'y'.repeat(200_000)}\n`);
  const read = async (offset: number, length: number): Promise<string> => {
    const r = await run({ kind: 'file.read', host: 'localhost', path, offset, length });
    assert.equal(r.exitCode, 0, r.message ?? '');
    return r.content?.toString() ?? '';
  };
  assert.equal(await read(5 + line.indexOf('SECRET') + 3, 8), '[REDACTED]');
  assert.equal(await read(5 + line.indexOf('SECRET') + 3, line.length - line.indexOf('SECRET') - 3), '[REDACTED]\n', 'to the end of the line');
  // Far from any secret, a part of a long line (or of a file with no newline at all) is cut where asked.
  assert.equal(await read(5 + line.length + 150_000, 5), 'yyyyy');
  assert.equal(await read(5 + 10, 3), 'xxx');
});

test('head and tail: lines as head -n and tail -n count them, with the first line number and byte offset; CRLF kept; a binary file by its \\n bytes; audited as a read', async (t) => {
  const { root, run, audit } = setup(t);
  const lines = async (path: string, by: { head: number } | { tail: number }) => {
    const r = await run({ kind: 'file.read', host: 'localhost', path: join(root, 'allowed', path), ...by });
    assert.equal(r.exitCode, 0, r.message ?? '');
    return { text: r.content?.toString('latin1'), lines: r.lines, firstLine: r.firstLine, offset: r.offset, truncated: r.truncated };
  };
  writeFileSync(join(root, 'allowed/three'), 'one\ntwo\nthree\n');
  assert.deepEqual(await lines('three', { head: 2 }), { text: 'one\ntwo\n', lines: 2, firstLine: 1, offset: 0, truncated: false });
  assert.deepEqual(await lines('three', { tail: 2 }), { text: 'two\nthree\n', lines: 2, firstLine: 2, offset: 4, truncated: false });
  // Fewer lines than asked: all of them.
  assert.deepEqual(await lines('three', { head: 10 }), { text: 'one\ntwo\nthree\n', lines: 3, firstLine: 1, offset: 0, truncated: false });
  assert.deepEqual(await lines('three', { tail: 10 }), { text: 'one\ntwo\nthree\n', lines: 3, firstLine: 1, offset: 0, truncated: false });
  // No final newline: the last line is a line all the same.
  writeFileSync(join(root, 'allowed/open'), 'one\ntwo\nthree');
  assert.deepEqual(await lines('open', { tail: 1 }), { text: 'three', lines: 1, firstLine: 3, offset: 8, truncated: false });
  assert.deepEqual(await lines('open', { head: 3 }), { text: 'one\ntwo\nthree', lines: 3, firstLine: 1, offset: 0, truncated: false });
  writeFileSync(join(root, 'allowed/crlf'), 'a\r\nb\r\nc\r\n');
  assert.deepEqual(await lines('crlf', { tail: 2 }), { text: 'b\r\nc\r\n', lines: 2, firstLine: 2, offset: 3, truncated: false });
  writeFileSync(join(root, 'allowed/empty'), '');
  assert.deepEqual(await lines('empty', { tail: 5 }), { text: '', lines: 0, firstLine: 1, offset: 0, truncated: false });
  writeFileSync(join(root, 'allowed/blob'), Buffer.from([0, 1, 0x0a, 0xff, 0xfe, 0x0a, 2]));
  assert.deepEqual(await lines('blob', { head: 1 }), { text: '\x00\x01\n', lines: 1, firstLine: 1, offset: 0, truncated: false });
  assert.deepEqual(await lines('blob', { tail: 1 }), { text: '\x02', lines: 1, firstLine: 3, offset: 6, truncated: false });
  const last = audit.list().at(-1);
  assert.deepEqual([last?.begin.operation, last?.begin.resource, last?.end?.exitCode, last?.end?.bytesOut], ['read_file', join(root, 'allowed/blob'), 0, 1]);
});

test('head and tail past the first 64 KiB window: read on until the lines are in; line numbers known once the read reached the start; the cap keeps whole lines of a tail', async (t) => {
  const { root, run } = setup(t);
  // 300 lines of 1000 bytes: a window of 64 KiB holds 65 of them.
  const line = (n: number): string => `${String(n).padStart(6, '0')} ${'x'.repeat(992)}\n`;
  const all = Array.from({ length: 300 }, (_, i) => line(i + 1)).join('');
  const path = join(root, 'allowed/long.log');
  writeFileSync(path, all);
  const read = async (by: { head: number } | { tail: number }, maxBytes?: number) => {
    const r = await run({ kind: 'file.read', host: 'localhost', path, ...by, ...(maxBytes === undefined ? {} : { maxBytes }) });
    assert.equal(r.exitCode, 0, r.message ?? '');
    return { text: r.content?.toString() ?? '', lines: r.lines, firstLine: r.firstLine, offset: r.offset, truncated: r.truncated };
  };
  assert.deepEqual(await read({ tail: 100 }), { text: all.slice(200_000), lines: 100, firstLine: null, offset: 200_000, truncated: false });
  assert.deepEqual(await read({ tail: 299 }), { text: all.slice(1000), lines: 299, firstLine: 2, offset: 1000, truncated: false }, 'read back to the start: numbered');
  assert.deepEqual(await read({ head: 100 }), { text: all.slice(0, 100_000), lines: 100, firstLine: 1, offset: 0, truncated: false });
  // The cap: a tail keeps the whole lines that fit in it; a head is cut there, as a ranged read is.
  assert.deepEqual(await read({ tail: 100 }, 50_500), { text: all.slice(250_000), lines: 50, firstLine: null, offset: 250_000, truncated: true });
  assert.deepEqual(await read({ head: 100 }, 50_500), { text: all.slice(0, 50_500), lines: 51, firstLine: 1, offset: 0, truncated: true });
  // A last line longer than the cap: its last bytes.
  writeFileSync(path, `a\n${'y'.repeat(100_000)}`);
  assert.deepEqual(await read({ tail: 1 }, 1000), { text: 'y'.repeat(1000), lines: 1, firstLine: null, offset: 100_002 - 1000, truncated: true });
});

test('head and tail go with nothing else that picks bytes: each conflict and a count below 1 is refused with exit 2, naming them', async (t) => {
  const { root, run } = setup(t);
  const path = join(root, 'allowed/a.txt');
  for (const [extra, said] of [
    [{ head: 1, tail: 1 }, 'head and tail cannot be used together'],
    [{ head: 1, offset: 2 }, 'head and offset cannot be used together'],
    [{ tail: 1, length: 2 }, 'tail and length cannot be used together'],
    [{ tail: 0 }, 'tail must be a whole number of lines from 1, got 0'],
    [{ head: 1.5 }, 'head must be a whole number of lines from 1, got 1.5'],
  ] as const) {
    const r = await run({ kind: 'file.read', host: 'localhost', path, ...extra });
    assert.deepEqual([r.outcome, r.exitCode], ['rejected', 2], JSON.stringify(extra));
    assert.ok(r.message?.includes(said), `${JSON.stringify(extra)}: ${r.message}`);
  }
});

test('a tail is redacted as in the whole file: a key block begun above it and a secret on a line the cap cuts into stay hidden', async (t) => {
  const { root, run } = setup(t);
  const path = join(root, 'allowed/env');
  const key = Array.from({ length: 20 }, () => 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC').join('\n');
  writeFileSync(path, `start\n-----BEGIN RSA PRIVATE KEY-----\n${key}\n-----END RSA PRIVATE KEY-----\nafter\n`);
  const tail = await run({ kind: 'file.read', host: 'localhost', path, tail: 3 });
  assert.equal(tail.content?.toString(), '[REDACTED]\n[REDACTED]\nafter\n');
  assert.equal(tail.lines, 3);
  // The cap leaves the last 1000 bytes of the secret's line, past `SECRET=`: shown as the whole line redacted.
  writeFileSync(path, `USER=bob\nSECRET=${'hunter2'.repeat(300)} end\n`);
  const cut = await run({ kind: 'file.read', host: 'localhost', path, tail: 1, maxBytes: 1000 });
  assert.equal(cut.content?.toString(), '[REDACTED] end\n');
  assert.equal(cut.truncated, true);
  const head = await run({ kind: 'file.read', host: 'localhost', path, head: 2, maxBytes: 12 });
  assert.equal(head.content?.toString(), 'USER=bob\n[REDACTED] end\n');
});

test('edit: replacements in order, written atomically with the mode kept; the diff redacted as output is, the secret kept in the file; audited as edit_file', async (t) => {
  const { root, audit, run } = setup(t);
  const path = `${root}/allowed/app.conf`;
  writeFileSync(path, 'workers = 4\nSECRET=hunter2\nname = x\n');
  chmodSync(path, 0o640);
  const r = await run({ kind: 'file.edit', host: 'localhost', path, edits: [{ oldText: 'workers = 4', newText: 'workers = 8' }, { oldText: 'name = x', newText: 'name = y' }] });
  assert.equal(r.outcome, 'ok', r.message ?? '');
  assert.equal(r.changed, true);
  assert.equal(readFileSync(path, 'utf8'), 'workers = 8\nSECRET=hunter2\nname = y\n', 'what redaction hides from the caller stays in the file');
  assert.equal(statSync(path).mode & 0o777, 0o640);
  assert.equal(r.diff, `--- ${path}\n+++ ${path}\n@@ -1,3 +1,3 @@\n-workers = 4\n+workers = 8\n [REDACTED]\n-name = x\n+name = y\n`);
  assert.deepEqual(readdirSync(`${root}/allowed`).filter((n) => n.startsWith('.')), [], 'no temporary file left');
  const [action] = audit.list({ limit: 1 });
  assert.deepEqual(action && [action.begin.operation, action.begin.resource, action.begin.decision, action.end?.exitCode], ['edit_file', path, 'allow', 0]);
});

test('edit: an old text missing, or there more than once, writes nothing and says which edit and where; a dry run writes nothing; no change is no write', async (t) => {
  const { root, run } = setup(t);
  const path = `${root}/allowed/twice.txt`;
  writeFileSync(path, 'a\nb\na\n');
  const twice = await run({ kind: 'file.edit', host: 'localhost', path, edits: [{ oldText: 'b', newText: 'c' }, { oldText: 'a', newText: 'z' }] });
  assert.deepEqual([twice.outcome, twice.exitCode], ['failed', 1]);
  assert.match(twice.message ?? '', /edit 2 of 2: old_text \(--old\) is in the file more than once \(lines 1 and 3\); include more of the lines around it/);
  assert.equal(readFileSync(path, 'utf8'), 'a\nb\na\n', 'the first edit was not written either');
  // Twice on one line is said so, not as "lines 1 and 1".
  const oneLine = await run({ kind: 'file.edit', host: 'localhost', path, edits: [{ oldText: 'a\nb\na', newText: 'x' }, { oldText: 'x', newText: 'xx' }, { oldText: 'x', newText: 'y' }] });
  assert.match(oneLine.message ?? '', /edit 3 of 3: old_text \(--old\) is in the file more than once \(twice on line 1\); include more/);
  const missing = await run({ kind: 'file.edit', host: 'localhost', path, edits: [{ oldText: 'q', newText: 'x' }] });
  assert.match(missing.message ?? '', /old_text \(--old\) is not in the file; read the file again/);
  const dry = await run({ kind: 'file.edit', host: 'localhost', path, edits: [{ oldText: 'b\n', newText: '' }], dryRun: true });
  assert.deepEqual([dry.outcome, dry.changed, dry.bytes], ['ok', true, undefined]);
  assert.match(dry.diff ?? '', /^-b$/m);
  assert.equal(readFileSync(path, 'utf8'), 'a\nb\na\n');
  const before = statSync(path).mtimeMs;
  const same = await run({ kind: 'file.edit', host: 'localhost', path, edits: [{ oldText: 'b', newText: 'b' }] });
  assert.deepEqual([same.outcome, same.changed, same.diff], ['ok', false, '']);
  assert.equal(statSync(path).mtimeMs, before, 'not written');
  const empty = await run({ kind: 'file.edit', host: 'localhost', path, edits: [{ oldText: '', newText: 'x' }] });
  assert.deepEqual([empty.outcome, empty.exitCode], ['rejected', 2]);
  assert.match(empty.message ?? '', /: old_text \(--old\) is empty; name the text to replace/);
});

test('edit: checked as write_file and read_file on the resolved path; never through a symlink; binary and redacted text refused', async (t) => {
  const { root, run } = setup(t);
  const edit = (path: string) => run({ kind: 'file.edit', host: 'localhost', path, edits: [{ oldText: 'k', newText: 'K' }] });
  // Writable there, but not readable: the diff would show it.
  const secret = await edit(`${root}/allowed/secret/key`);
  assert.equal(secret.outcome, 'denied');
  assert.match(secret.message ?? '', /edit_file returns a diff of what .*secret\/key holds, and the policy does not let you read it: .*keys stay put/);
  assert.equal(readFileSync(`${root}/allowed/secret/key`, 'utf8'), 'k');
  assert.equal((await edit(`${root}/allowed/../outside/passwd`)).outcome, 'denied');
  assert.equal((await edit(`${root}/allowed_evil/loot`)).outcome, 'denied');
  symlinkSync(`${root}/allowed/a.txt`, `${root}/allowed/link`);
  const link = await run({ kind: 'file.edit', host: 'localhost', path: `${root}/allowed/link`, edits: [{ oldText: 'hello', newText: 'bye' }] });
  assert.equal(link.outcome, 'denied');
  assert.match(link.message ?? '', /edit_file .*allowed\/link: is a symlink \(to .*allowed\/a\.txt\); a write never follows one/);
  assert.equal(readFileSync(`${root}/allowed/a.txt`, 'utf8'), 'hello\n');
  writeFileSync(`${root}/allowed/bin.dat`, Buffer.from([0x6b, 0xff, 0xfe]));
  assert.match((await edit(`${root}/allowed/bin.dat`)).message ?? '', /not UTF-8 text; replace it whole with write_file/);
  writeFileSync(`${root}/allowed/red.txt`, 'k [REDACTED]\n');
  assert.match((await edit(`${root}/allowed/red.txt`)).message ?? '', /holds \[REDACTED\], as redaction leaves it/);
  assert.equal(readFileSync(`${root}/allowed/red.txt`, 'utf8'), 'k [REDACTED]\n');
});

test("edit: edits and writes of one file take turns (none lost); a change made between the edit's read and its write is not written over", async (t) => {
  const { root, run, host } = setup(t);
  const path = `${root}/allowed/turns.txt`;
  writeFileSync(path, 'a=1\nb=1\nc=1\n');
  // Started together, each reads the file before the others write: without turns, all but one change would be lost.
  const edits = await Promise.all(['a', 'b', 'c'].map((k) => run({ kind: 'file.edit', host: 'localhost', path, edits: [{ oldText: `${k}=1`, newText: `${k}=2` }] })));
  assert.deepEqual(edits.map((r) => r.outcome), ['ok', 'ok', 'ok'], edits.map((r) => r.message).join('; '));
  assert.equal(readFileSync(path, 'utf8'), 'a=2\nb=2\nc=2\n');
  const [wrote, edited] = await Promise.all([
    run({ kind: 'file.write', host: 'localhost', path, content: 'a=3\nb=2\nc=2\n' }),
    run({ kind: 'file.edit', host: 'localhost', path, edits: [{ oldText: 'c=2', newText: 'c=3' }] }),
  ]);
  assert.deepEqual([wrote.outcome, edited.outcome], ['ok', 'ok'], edited.message ?? '');
  assert.equal(readFileSync(path, 'utf8'), 'a=3\nb=2\nc=3\n', 'the edit read what the write left');

  // Another program changes the file once the edit has read it.
  const files = host.files!;
  const read = files.read.bind(files);
  let reads = 0;
  files.read = async (p, range) => {
    const r = await read(p, range);
    if (p === path && ++reads === 1) writeFileSync(path, 'a=3\nb=9\nc=3\n');
    return r;
  };
  t.after(() => (files.read = read));
  const raced = await run({ kind: 'file.edit', host: 'localhost', path, edits: [{ oldText: 'a=3', newText: 'a=4' }] });
  assert.deepEqual([raced.outcome, raced.exitCode], ['failed', 1]);
  assert.match(raced.message ?? '', /the file changed while the edit was worked out \(another writer\); nothing was written: read it again and redo the edit/);
  assert.equal(readFileSync(path, 'utf8'), 'a=3\nb=9\nc=3\n', "the other writer's change stands");
});

test('edit: a rewrite too large to diff quickly is written, its diff left out with a note (the daemon is not held)', async (t) => {
  const { root, run } = setup(t);
  const path = `${root}/allowed/big.txt`;
  const lines = (tag: string): string => Array.from({ length: 60_000 }, (_, i) => `${tag} ${(i * 7919) % 60_000}`).join('\n');
  writeFileSync(path, `head\n${lines('old')}\ntail\n`);
  const started = Date.now();
  const r = await run({ kind: 'file.edit', host: 'localhost', path, edits: [{ oldText: lines('old'), newText: lines('new') }] });
  assert.equal(r.outcome, 'ok', r.message ?? '');
  assert.match(r.diff ?? '', /^\[remux: the diff of .*big\.txt is left out: the change is too large to work out in 250 ms; read the file to see it\]$/m);
  assert.equal(readFileSync(path, 'utf8'), `head\n${lines('new')}\ntail\n`);
  assert.ok(Date.now() - started < 5000, `bounded: ${Date.now() - started} ms`);
});

test('edit: one whose result would pass the write limit is refused, the file untouched', async (t) => {
  const { root, run } = setup(t);
  const path = `${root}/allowed/full.txt`;
  const body = `${'x'.repeat(FILE_WRITE_MAX_BYTES - 10)}\nend\n`;
  writeFileSync(path, body);
  const r = await run({ kind: 'file.edit', host: 'localhost', path, edits: [{ oldText: 'end', newText: 'e'.repeat(100) }] });
  assert.deepEqual([r.outcome, r.exitCode], ['failed', 1]);
  assert.match(r.message ?? '', new RegExp(`the edited file would be ${FILE_WRITE_MAX_BYTES + 92} bytes, more than the ${FILE_WRITE_MAX_BYTES} a write may carry`));
  assert.equal(readFileSync(path, 'utf8').length, body.length);
});

test('edit: an approver is asked with what changes, the secrets in it redacted, and the edit waits for the answer', async (t) => {
  const { root, run, audit } = setup(t);
  const approvals = approvalsService(t, audit);
  const path = `${root}/allowed/ask/x`;
  writeFileSync(path, 'x\npassword=old\n');
  // Answered (approved) as soon as the question is out.
  const approve = approvalsApprover(approvals, 'bot', (_text, approval) => approvals.store.answer(approval.id, 'approve', { by: 'cli:test', via: 'cli' }));
  const edits = [{ oldText: 'x', newText: 'y' }, { oldText: 'password=old', newText: 'password=hunter2' }, { oldText: 'y\n', newText: `${'z'.repeat(80)}\n` }];
  const r = await run({ kind: 'file.edit', host: 'localhost', path, edits }, { onStdout: () => {}, onStderr: () => {}, approve });
  assert.equal(r.outcome, 'ok', r.message ?? '');
  assert.equal(readFileSync(path, 'utf8'), `${'z'.repeat(80)}\npassword=hunter2\n`);
  const [asked] = approvals.store.list({ all: true });
  assert.equal(asked?.what, `edit_file ${path}: replace "x" with "y"; "password=[REDACTED]" with "password=[REDACTED]" and 1 more on localhost`);
  // On one line, each text cut at 60 characters.
  assert.equal(approvalText({ kind: 'file.edit', host: 'h', path: '/p', edits: [{ oldText: 'a'.repeat(100), newText: 'b\nc' }] }), `edit_file /p: replace "${'a'.repeat(59)}…" with "b\\nc"`);
});

test("a write's approval question quotes the start of its content, redacted for a push service; binary content by its size", () => {
  const write = (content: string | Buffer) => ({ kind: 'file.write' as const, host: 'h', path: '/etc/app.conf', content });
  assert.equal(approvalText(write('port = 80\ntoken: abc123\n')), 'write_file /etc/app.conf (24 bytes): "port = 80\\ntoken: abc123\\n"');
  assert.equal(approvalText(write('port = 80\ntoken: abc123\n'), redactText), 'write_file /etc/app.conf (24 bytes): "port = 80\\ntoken: [REDACTED]\\n"');
  assert.equal(approvalText(write(Buffer.from([0xff, 0x00, 0x01]))), 'write_file /etc/app.conf (3 bytes)');
  assert.equal(approvalText(write('')), 'write_file /etc/app.conf (0 bytes)');
});
