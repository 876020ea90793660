// `remux mcp --stdio` end to end: the SDK's client starts the real launcher (bin/remux) as Claude Code
// would, and every call goes through the policy, the parser, scope and the audit store. First in the
// CLI process (no daemon), then handed to a running daemon.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { approvalsDbFile, approvalsKeyFile } from '../../src/config/paths.js';
import { ApprovalStore } from '../../src/notify/approvals.js';
import { REMUX_BIN, remux, tempHome } from '../support/cli.js';
import { addPrincipal, assertLongCallProgress, call, longCall, stdioClient, writeHome } from './support.js';

interface AuditRow {
  id: number;
  level: string;
  principal: string;
  host: string;
  operation: string;
  resource: string | null;
  command: string | null;
  decision: string;
  rule: string | null;
  reason: string | null;
  approval: { outcome: string; by: string | null; via: string | null; id: string | null } | null;
  exitCode: number | null;
  signal: string | null;
  truncated: boolean;
  error: string | null;
}

async function auditRows(env: Record<string, string>): Promise<AuditRow[]> {
  const r = await remux(['audit', 'ls', '--json', '-n', '0'], { env });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as AuditRow);
}

/**
 * A principal removed or its token rotated while its stdio session is open: the session's next call is
 * refused with why, and the session ends (as an HTTP session's next request gets 401).
 */
async function endsOnRevocation(env: Record<string, string>, policy: string): Promise<void> {
  for (const change of ['rotate', 'rm'] as const) {
    const name = `revoked-${change}`;
    const token = await addPrincipal(env, name, '--hosts', 'localhost', '--policy', policy);
    const { client, stderr } = await stdioClient({ ...env, REMUX_TOKEN: token }, ['--principal', name]);
    const closed = new Promise<void>((resolve) => (client.onclose = resolve));
    try {
      assert.equal((await call(client, 'list_hosts', {})).result.isError, undefined);
      const changed = await remux(['principal', change, name], { env });
      assert.equal(changed.code, 0, changed.stderr);
      const refused = await call(client, 'list_hosts', {});
      assert.equal(refused.result.isError, true);
      assert.match(refused.text, change === 'rm' ? /principal revoked-rm was removed: this MCP session has ended/ : /the token of revoked-rotate was rotated: this MCP session has ended/);
      await closed;
      // Through a daemon the client's process sees only the socket close: its line must not blame a stopped daemon alone.
      assert.match(stderr(), /^$|the daemon ended the MCP session: it stopped or restarted, or the session's token no longer holds/);
    } finally {
      await client.close();
    }
  }
}

/**
 * Messages past the 10 MiB the SDK's stdio reader takes by default: a write whose JSON is 12 MiB works,
 * one over what remux reads (or of more values) is a JSON-RPC error under its id, an answer larger than the SDK's client reads
 * is an error too, and the advertised limits are what a call can use; the session goes on after each.
 */
async function largeMessages(client: Client, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'newlines.txt');
  const wrote = await call(client, 'write_file', { host: 'localhost', path, content: '\n'.repeat(6 << 20) });
  assert.equal(wrote.result.isError, undefined, wrote.text);
  assert.equal((wrote.result.structuredContent as { bytes: number }).bytes, 6 << 20);
  const tooLong = await call(client, 'write_file', { host: 'localhost', path, content: 'x'.repeat((8 << 20) + 1) });
  assert.equal(tooLong.result.isError, true);
  assert.match(tooLong.text, /content/);
  // 3 MiB of newlines would be 6 MiB twice as JSON text: it comes as base64 (4 MiB twice).
  const read = await call(client, 'read_file', { host: 'localhost', path, length: 3 << 20 });
  assert.equal(read.result.isError, undefined, read.text);
  assert.deepEqual([(read.result.structuredContent as { encoding: string }).encoding, (read.result.structuredContent as { bytes: number }).bytes], ['base64', 3 << 20]);
  const readTooMuch = await call(client, 'read_file', { host: 'localhost', path, length: (3 << 20) + 1 });
  assert.equal(readTooMuch.result.isError, true);
  assert.match(readTooMuch.text, /length/);
  await assert.rejects(call(client, 'write_file', { host: 'localhost', path, content: 'x'.repeat(26 << 20) }), /MCP error -32600: the message of 26(\.\d)? MiB is larger than the 25 MiB remux reads: send less in one call \(write_file takes at most 8 MiB of text\)/);
  // Parsing costs by the value: a message of more than a tool call carries is not parsed at all.
  await assert.rejects(call(client, 'list_hosts', { pad: new Array(200_000).fill(0) }), /MCP error -32600: the message holds more than the 100000 JSON values remux reads in one: send fewer in one call/);
  // 10,000 names of 6 bytes a character as JSON: a listing the SDK's client could not read.
  const many = join(dir, 'many');
  mkdirSync(many);
  for (let i = 0; i < 10_000; i++) writeFileSync(join(many, `${'\u0001'.repeat(240)}${i}`), '');
  await assert.rejects(call(client, 'list_directory', { host: 'localhost', path: many }), /MCP error -32603: the answer of \d+(\.\d)? MiB is larger than the 9\.9 MiB an MCP client reads: ask for less in one call/);
  assert.equal((await call(client, 'list_hosts', {})).result.isError, undefined, 'the session goes on');
}

/** `remux mcp --stdio` on pipes of our own (stdin from `input` when given), with the lines it answers. */
function rawSession(env: Record<string, string>, input?: number, args: string[] = []): { child: ChildProcess; lines: string[]; ended: Promise<void>; send(message: object): void } {
  const child = spawn(REMUX_BIN, ['mcp', '--stdio', ...args], { env: { PATH: process.env.PATH, ...env, REMUX_LAUNCHER_DEBUG: '1' }, stdio: [input ?? 'pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  const ended = new Promise<void>((resolve) => child.stdout!.once('end', resolve));
  return { child, lines, ended, send: (message) => child.stdin!.write(`${JSON.stringify(message)}\n`) };
}

const INITIALIZE = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
const until = async (what: string, ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !ok(); i++) await sleep(25);
  assert.ok(ok(), what);
};

/** Whether a process runs with exactly this command line. */
const pgrep = (command: string): boolean => spawnSync('pgrep', ['-fx', command]).status === 0;

const slowCall = (id: number, command: string): object => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'run_command', arguments: { host: 'localhost', command } } });

/**
 * Requests piped in, the input closed right after them (a file, or a pipe ended at once): every request
 * is answered, a call still running when the input ended too, and then the session ends with exit 0.
 */
async function answersAfterInputEnds(env: Record<string, string>, how: 'pipe' | 'file', args: string[] = []): Promise<string> {
  const messages = [INITIALIZE, { jsonrpc: '2.0', method: 'notifications/initialized' }, slowCall(2, 'sleep 0.6 && echo answered late'), slowCall(3, 'echo quick')];
  const dir = mkdtempSync(join(tmpdir(), 'remux-mcp-eof-'));
  try {
    let input: number | undefined;
    if (how === 'file') {
      writeFileSync(join(dir, 'in.jsonl'), messages.map((m) => `${JSON.stringify(m)}\n`).join(''));
      input = openSync(join(dir, 'in.jsonl'), 'r');
    }
    const { child, lines, send } = rawSession(env, input, args);
    if (input !== undefined) closeSync(input);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // 'close': its stdout and stderr read to their ends too.
    const exit = new Promise<number | null>((resolve) => child.once('close', resolve));
    if (how === 'pipe') {
      for (const m of messages) send(m);
      child.stdin!.end();
    }
    assert.equal(await exit, 0, stderr);
    const answer = (id: number): string => lines.find((l) => l.includes(`"id":${id},`) || l.endsWith(`"id":${id}}`)) ?? assert.fail(`no answer to request ${id}: ${lines.join('\n')}`);
    assert.match(answer(2), /answered late\\n/);
    assert.match(answer(3), /quick\\n/);
    return stderr;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('remux mcp --stdio in the CLI process', () => {
  const h = tempHome();
  let client: Client;
  let stderr: () => string;
  const cwd = realpathSync(mkdtempSync(join(tmpdir(), 'remux-mcp-cwd-')));
  const tokens = { tight: '', web: '' };

  before(async () => {
    writeHome(h.home, { hosts: 'hosts:\n  web1: { address: 192.0.2.1, user: ops }\n' });
    tokens.tight = await addPrincipal(h.env, 'tight', '--hosts', 'localhost', '--policy', 'tight');
    tokens.web = await addPrincipal(h.env, 'web', '--hosts', 'web1');
    ({ client, stderr } = await stdioClient(h.env, [], cwd));
  });
  after(async () => {
    await client?.close();
    h.remove();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('lists the tools with precise input and output schemas, Code Remote\'s names among them', async () => {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), [
      'capture_session', 'check_agent_status', 'edit_file', 'list_directory', 'list_hosts', 'list_sessions', 'read_file', 'run_command', 'run_shell_command', 'send_keys', 'write_file',
    ]);
    // The server's instructions point a model at it for changes to existing files.
    assert.match(client.getInstructions() ?? '', /To change part of an existing file, use edit_file/);
    const edit = tools.find((t) => t.name === 'edit_file')!;
    assert.deepEqual(edit.inputSchema.required, ['host', 'path', 'edits']);
    assert.deepEqual((edit.inputSchema.properties?.edits as { items: { required: string[] } }).items.required, ['old_text', 'new_text']);
    const run = tools.find((t) => t.name === 'run_command')!;
    assert.deepEqual(run.inputSchema.required, ['host', 'command']);
    assert.equal(run.inputSchema.additionalProperties, false, 'unknown arguments are errors, not silently dropped');
    assert.deepEqual(Object.keys(run.inputSchema.properties ?? {}).sort(), ['command', 'cwd', 'host', 'timeout_s']);
    assert.ok(run.outputSchema?.properties?.truncated, 'structured results are described');
    assert.equal(run.annotations?.destructiveHint, true);
    assert.match(tools.find((t) => t.name === 'list_hosts')!.description ?? '', /local, ssh or agent/);
    // `lines` is the last N lines (as session capture --lines), which the description says.
    const lines = tools.find((t) => t.name === 'capture_session')!.inputSchema.properties?.lines as { description: string };
    assert.match(lines.description, /^The last N lines, scrollback included/);
    // "format" is for JSON Schema's own formats: strict validators refuse others (zod's startsWith wrote "starts_with").
    assert.doesNotMatch(JSON.stringify(tools.map((t) => t.inputSchema)), /"format"/);
    const alias = tools.find((t) => t.name === 'run_shell_command')!;
    assert.deepEqual(Object.keys(alias.inputSchema.properties ?? {}).sort(), ['command', 'machine', 'timeout', 'working_dir']);
  });

  test('run_command runs on localhost: stdout, stderr, exit status as text and as structured content; the client\'s directory is the default cwd', async () => {
    const ok = await call(client, 'run_command', { host: 'localhost', command: 'echo hello from mcp' });
    assert.equal(ok.result.isError, undefined);
    assert.equal(ok.data.stdout, 'hello from mcp\n');
    assert.equal(ok.data.exitCode, 0);
    assert.equal(ok.data.outcome, 'ok');
    assert.equal(ok.data.truncated, false);
    assert.match(ok.text, /^hello from mcp\n\[exit status 0\]$/);
    const where = await call(client, 'run_command', { host: 'localhost', command: 'pwd' });
    assert.equal(where.data.stdout, `${cwd}\n`);
    const failed = await call(client, 'run_command', { host: 'localhost', command: 'seq oops' });
    // A command that ran and failed is not a tool error: its exit status and stderr come back.
    assert.equal(failed.data.exitCode, 1);
    assert.match(failed.data.stderr, /^seq: invalid floating point argument: .oops.\n/);
    assert.equal(failed.data.outcome, 'failed');
    assert.match(failed.text, /^\[stderr\]\nseq: invalid .*\n.*\[exit status 1\]$/s);
  });

  test('a denied command is a tool error naming the rule and its reason, and is audited as this client\'s principal', async () => {
    const denied = await call(client, 'run_command', { host: 'localhost', command: 'rm -rf /tmp/nothing-here' });
    assert.equal(denied.result.isError, true);
    assert.equal(denied.data.outcome, 'denied');
    assert.equal(denied.data.exitCode, 77);
    assert.match(denied.text, /nothing is removed through MCP/);
    assert.match(denied.text, /rule: ops#1 deny execute_binary \(.*policies\.yaml:6\)/);
    const rows = await auditRows(h.env);
    const row = rows.find((r) => r.command === 'rm -rf /tmp/nothing-here')!;
    assert.equal(row.decision, 'deny');
    assert.match(row.rule ?? '', /^ops#1 deny/);
    assert.match(row.principal, /^cli:/);
    const connect = rows.find((r) => r.operation === 'mcp.connect')!;
    assert.equal(connect.resource, 'remux-test 1.0.0', 'the client\'s name and version from initialize are in the audit trail');
    assert.equal(connect.principal, row.principal);
  });

  test('an ask rule waits for an approval, told as progress; approved it runs, denied it is a tool error naming the rule', async () => {
    const store = ApprovalStore.open(approvalsDbFile(h.env), approvalsKeyFile(h.env));
    try {
      const answerNext = async (option: string): Promise<string> => {
        for (let i = 0; i < 500 && store.list().length === 0; i++) await sleep(20);
        const [open] = store.list();
        assert.ok(open, 'an approval was created');
        assert.equal(open.what, 'run `uname` on localhost');
        store.answer(open.id, option, { by: 'cli:test', via: 'cli' });
        return open.id;
      };
      const progress: string[] = [];
      const approved = client.callTool({ name: 'run_command', arguments: { host: 'localhost', command: 'uname' } }, undefined, { onprogress: (p) => progress.push(p.message ?? '') });
      const approvedId = await answerNext('approve');
      const ran = (await approved) as CallToolResult;
      assert.equal(ran.isError, undefined);
      assert.equal((ran.structuredContent as { stdout: string }).stdout, 'Linux\n');
      assert.match(progress[0] ?? '', /^waiting for approval \S+ \(\d+ s\): execute_binary \/usr\/bin\/uname: needs approval under ops#2/);

      const refused = call(client, 'run_command', { host: 'localhost', command: 'uname' });
      const refusedId = await answerNext('deny');
      const denied = await refused;
      assert.equal(denied.result.isError, true);
      assert.match(denied.text, /approval refused by cli:test via cli\nrule: ops#2 ask execute_binary/);
      // The command's own audit record names the answer: who, through what, which approval.
      const rows = await auditRows(h.env);
      const ranRow = rows.find((r) => r.id === (ran.structuredContent as { actionId: number }).actionId);
      assert.deepEqual(ranRow && [ranRow.decision, ranRow.level, ranRow.approval], ['ask', 'info', { outcome: 'approved', by: 'cli:test', via: 'cli', id: approvedId }]);
      const deniedRow = rows.find((r) => r.id === denied.data.actionId);
      assert.deepEqual(deniedRow && [deniedRow.decision, deniedRow.level, deniedRow.approval], ['ask', 'deny', { outcome: 'refused', by: 'cli:test', via: 'cli', id: refusedId }]);
    } finally {
      store.close();
    }
  });

  test('files: write, read back, list; a path outside the policy is a tool error naming the rule; binary comes back as base64', async () => {
    const dir = join(cwd, 'files');
    const wrote = await call(client, 'write_file', { host: 'localhost', path: join(dir, 'notes.txt'), content: 'héllo\n', create_dirs: true });
    assert.equal(wrote.result.isError, undefined, wrote.text);
    assert.deepEqual(wrote.result.structuredContent, { host: 'localhost', path: join(dir, 'notes.txt'), bytes: 7, created: true });
    const read = await call(client, 'read_file', { host: 'localhost', path: join(dir, 'notes.txt') });
    assert.equal(read.text, 'héllo\n');
    assert.equal((read.result.structuredContent as { encoding: string }).encoding, 'utf8');
    const part = await call(client, 'read_file', { host: 'localhost', path: join(dir, 'notes.txt'), offset: 3, length: 2 });
    assert.equal(part.text, 'll');
    assert.equal((part.result.structuredContent as { truncated: boolean }).truncated, false, 'asked for 2 bytes, got them');
    writeFileSync(join(dir, 'big.txt'), 'x'.repeat(100_000));
    const big = await call(client, 'read_file', { host: 'localhost', path: join(dir, 'big.txt') });
    assert.equal((big.result.structuredContent as { bytes: number; truncated: boolean }).truncated, true);
    assert.match(big.text, /^x{65536}\n\[remux: the bytes from offset 0 to 65536 of 100000; read on with offset 65536\]$/);
    assert.equal((big.result.structuredContent as { nextOffset: number }).nextOffset, 65536);
    writeFileSync(join(dir, 'blob.bin'), Buffer.from([0, 1, 2, 255]));
    const blob = await call(client, 'read_file', { host: 'localhost', path: join(dir, 'blob.bin') });
    assert.deepEqual(blob.result.structuredContent, { host: 'localhost', path: join(dir, 'blob.bin'), content: 'AAEC/w==', encoding: 'base64', size: 4, offset: 0, bytes: 4, truncated: false });
    const listed = await call(client, 'list_directory', { host: 'localhost', path: dir });
    assert.deepEqual((listed.result.structuredContent as { entries: Array<{ name: string; type: string }> }).entries.map((e) => [e.name, e.type]), [['big.txt', 'file'], ['blob.bin', 'file'], ['notes.txt', 'file']]);
    // One entry past what a listing shows: the text says which entries came and how to find the others.
    const crowded = join(dir, 'crowded');
    mkdirSync(crowded);
    for (let i = 0; i <= 10_000; i++) writeFileSync(join(crowded, `f${String(i).padStart(5, '0')}`), '');
    const full = await call(client, 'list_directory', { host: 'localhost', path: crowded });
    assert.equal((full.result.structuredContent as { entries: unknown[]; truncated: boolean }).truncated, true);
    assert.match(full.text, /\tf09999\n\[remux: the first 10000 entries by name; the directory holds more, which no listing shows: list a subdirectory, or look for a name with run_command \(find \S+\/crowded -maxdepth 1 -name PATTERN\)\]$/);
    const outside = await call(client, 'read_file', { host: 'localhost', path: '/etc/shadow' });
    assert.equal(outside.result.isError, true);
    assert.match(outside.text, /^remux denied: read_file \/etc\/shadow/);
    const traversal = await call(client, 'write_file', { host: 'localhost', path: `${dir}/../../../etc/remux-escape`, content: 'x' });
    assert.equal(traversal.result.isError, true);
    assert.match(traversal.text, /remux denied: write_file \/etc\/remux-escape/);
    // Text UTF-8 cannot hold is refused, not written as U+FFFD: the file keeps what it had.
    const lone = await call(client, 'write_file', { host: 'localhost', path: join(dir, 'notes.txt'), content: 'ok \ud800 then' });
    assert.equal(lone.result.isError, true);
    assert.match(lone.text, /the content has an unpaired UTF-16 surrogate \(\\ud800\) at character 3, which is not text a file can hold; send valid text/);
    assert.equal(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'héllo\n');
    const pair = await call(client, 'write_file', { host: 'localhost', path: join(dir, 'emoji.txt'), content: 'ok \ud83d\ude00' });
    assert.equal(pair.result.isError, undefined, pair.text);
    assert.equal(readFileSync(join(dir, 'emoji.txt'), 'utf8'), 'ok 😀');
  });

  test('read_file head and tail: the lines, then one line saying which (numbers when known), from which byte, and what the cap left out; a conflict is a tool error naming it', async () => {
    const dir = join(cwd, 'lines');
    mkdirSync(dir, { recursive: true });
    const log = join(dir, 'app.log');
    // 100 lines of 1000 bytes: more than one call's 64 KiB.
    const body = Array.from({ length: 100 }, (_, i) => `${String(i + 1).padStart(3, '0')} ${'w'.repeat(995)}\n`).join('');
    writeFileSync(log, body);
    const tail = await call(client, 'read_file', { host: 'localhost', path: log, tail: 2 });
    // Only the last 64 KiB were read: the lines before them were not counted.
    assert.equal(tail.text, `${body.slice(98_000)}[remux: the last 2 lines (line numbers unknown: the file before them was not read), from byte 98000 of 100000]`);
    const head = await call(client, 'read_file', { host: 'localhost', path: log, head: 1 });
    assert.equal(head.text, `${body.slice(0, 1000)}[remux: line 1, from byte 0 of 100000]`);
    assert.deepEqual(head.result.structuredContent, { host: 'localhost', path: log, content: body.slice(0, 1000), encoding: 'utf8', size: 100_000, offset: 0, bytes: 1000, truncated: false, lines: 1, firstLine: 1 });
    const far = await call(client, 'read_file', { host: 'localhost', path: log, tail: 90 });
    assert.equal(far.text, `${body.slice(35_000)}[remux: the last 65 lines (line numbers unknown: the file before them was not read), from byte 35000 of 100000; the lines before did not fit in 65536 bytes: read them with offset and length]`);
    assert.deepEqual([(far.data as unknown as { firstLine: number | null }).firstLine, far.data.truncated], [null, true]);
    const long = await call(client, 'read_file', { host: 'localhost', path: log, head: 90 });
    assert.match(long.text, /\n[0-9]{3} w+\n\[remux: lines 1-66, from byte 0 of 100000; cut at 65536 bytes: read on with offset 65536\]$/);
    writeFileSync(join(dir, 'open.txt'), 'a\nb');
    assert.equal((await call(client, 'read_file', { host: 'localhost', path: join(dir, 'open.txt'), tail: 1 })).text, 'b\n[remux: line 2, from byte 2 of 3]');
    writeFileSync(join(dir, 'blob.bin'), Buffer.from([0, 0x0a, 0xff]));
    assert.equal((await call(client, 'read_file', { host: 'localhost', path: join(dir, 'blob.bin'), tail: 1 })).text, '[base64]\n/w==\n[remux: line 2, from byte 2 of 3]');
    const both = await call(client, 'read_file', { host: 'localhost', path: log, head: 1, offset: 5 });
    assert.equal(both.result.isError, true);
    assert.match(both.text, /^remux rejected: read_file ".*app\.log": head and offset cannot be used together/);
    const { tools } = await client.listTools();
    const read = tools.find((t) => t.name === 'read_file')!;
    assert.deepEqual(Object.keys(read.inputSchema.properties ?? {}).sort(), ['head', 'host', 'length', 'offset', 'path', 'tail']);
  });

  test('edit_file: exact replacements, the diff as text and structured; a miss is a tool error naming the edit, the file untouched; dry_run writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'remux-mcp-edit-'));
    try {
      const path = join(dir, 'app.py');
      writeFileSync(path, 'def main():\n    return 1\n');
      const edited = await call(client, 'edit_file', { host: 'localhost', path, edits: [{ old_text: '    return 1', new_text: '    return 2' }] });
      assert.equal(edited.result.isError, undefined, edited.text);
      const diff = `--- ${path}\n+++ ${path}\n@@ -1,2 +1,2 @@\n def main():\n-    return 1\n+    return 2\n`;
      assert.deepEqual(edited.result.structuredContent, { host: 'localhost', path, changed: true, written: true, diff });
      assert.equal(edited.text, `edited ${path} on localhost\n${diff}`);
      assert.equal(readFileSync(path, 'utf8'), 'def main():\n    return 2\n');
      const dry = await call(client, 'edit_file', { host: 'localhost', path, edits: [{ old_text: 'main', new_text: 'run' }], dry_run: true });
      assert.match(dry.text, /^would edit /);
      assert.equal((dry.result.structuredContent as { written: boolean }).written, false);
      const miss = await call(client, 'edit_file', { host: 'localhost', path, edits: [{ old_text: 'def', new_text: 'async def' }, { old_text: 'return 1', new_text: 'x' }] });
      assert.equal(miss.result.isError, true);
      assert.match(miss.text, /^remux failed: edit_file .*app\.py: edit 2 of 2: old_text \(--old\) is not in the file \(as the edits before it left it\)/);
      assert.equal(readFileSync(path, 'utf8'), 'def main():\n    return 2\n');
      const schema = await call(client, 'edit_file', { host: 'localhost', path, edits: [] });
      assert.equal(schema.result.isError, true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("remux's own files are out of reach of an MCP client, whatever the policy allows (it covers /tmp, where this home is)", async () => {
    writeFileSync(approvalsKeyFile({ REMUX_HOME: h.home }), 'secret-key\n', { mode: 0o600 });
    const attempts = [
      await call(client, 'read_file', { host: 'localhost', path: approvalsKeyFile({ REMUX_HOME: h.home }) }),
      await call(client, 'read_file', { host: 'localhost', path: join(h.home, 'principals.yaml') }),
      await call(client, 'write_file', { host: 'localhost', path: join(h.home, 'policies.yaml'), content: 'policies: {}\n' }),
      await call(client, 'edit_file', { host: 'localhost', path: join(h.home, 'config.yaml'), edits: [{ old_text: 'default_policy', new_text: 'x' }] }),
      await call(client, 'run_command', { host: 'localhost', command: `printf x > ${join(h.home, 'config.yaml')}` }),
    ];
    for (const a of attempts) {
      assert.equal(a.result.isError, true, a.text);
      assert.match(a.text, /is remux's own \(its keys, configuration, stores or sockets\), which no command or file action reaches/, a.text);
    }
    assert.ok(!attempts.some((a) => a.text.includes('secret-key')));
    assert.match(readFileSync(join(h.home, 'policies.yaml'), 'utf8'), /ops:/, 'policies.yaml unchanged');
  });

  test('a command the parser refuses is a tool error with the construct and its position; nothing runs', async () => {
    for (const command of ['echo $(id)', 'echo `id`', 'echo hi > /dev/null; $HOME']) {
      const r = await call(client, 'run_command', { host: 'localhost', command });
      assert.equal(r.result.isError, true, command);
      assert.equal(r.data.outcome, 'rejected', command);
      assert.match(r.text, /column \d+/, command);
    }
  });

  test('output past the per-call cap is cut with a marker, and the command is stopped', async () => {
    const started = Date.now();
    const r = await call(client, 'run_command', { host: 'localhost', command: 'yes' });
    assert.ok(Date.now() - started < 10_000, '`yes` was stopped, not left to a timeout');
    assert.equal(r.data.truncated, true);
    assert.match(r.data.stdout, /^(y\n)+/);
    assert.match(r.data.stdout, /\n\[remux: stdout truncated: the MCP per-call cap of 65536 bytes was reached and the command was stopped; narrow the command/);
    assert.equal(r.data.stdout.indexOf('[remux'), 65536 + 1);
    // Stopped by remux at the cap: not a failure, not an interruption (130), and the message says which cap.
    assert.deepEqual([r.data.outcome, r.data.exitCode, r.data.message], ['truncated', 143, 'the MCP per-call cap of 65536 bytes per stream was reached; the command was stopped']);
    assert.match(r.text, /\[exit status 143: the MCP per-call cap of 65536 bytes per stream was reached; the command was stopped\]$/);
    // Its audit record says the same: stopped at an output cap (as client run's at the policy's), not interrupted.
    const row = (await auditRows(h.env)).find((a) => a.id === r.data.actionId);
    assert.deepEqual(row && [row.level, row.exitCode, row.signal, row.truncated, row.error], ['warn', 143, 'SIGTERM', true, null]);
  });

  test('bad arguments are refused by the schema, naming the argument', async () => {
    const r = await client.callTool({ name: 'run_command', arguments: { host: 'localhost', command: 'true', shell: true } });
    assert.equal(r.isError, true);
    assert.match(JSON.stringify(r.content), /shell/);
    const rel = await client.callTool({ name: 'run_command', arguments: { host: 'localhost', command: 'true', cwd: 'relative/dir' } });
    assert.equal(rel.isError, true);
    assert.match(JSON.stringify(rel.content), /cwd/);
  });

  test('Code Remote\'s names: run_shell_command with machine and working_dir, check_agent_status', async () => {
    const r = await call(client, 'run_shell_command', { machine: 'localhost', command: 'pwd', working_dir: '/tmp' });
    assert.equal(r.data.stdout, '/tmp\n');
    assert.equal(r.data.host, 'localhost');
    const denied = await call(client, 'run_shell_command', { machine: 'localhost', command: 'rm x' });
    assert.equal(denied.result.isError, true);
    assert.match(denied.text, /nothing is removed through MCP/);
    const hosts = (await client.callTool({ name: 'check_agent_status', arguments: {} })).structuredContent as { hosts: Array<{ name: string; transport: string; reachable: boolean | null }> };
    assert.deepEqual(hosts.hosts.map((x) => [x.name, x.transport, x.reachable]), [['localhost', 'local', true], ['web1', 'ssh', null]]);
  });

  test('--principal NAME acts as that principal (its scope, its policy\'s output limit); it needs NAME\'s own token', async () => {
    const tight = await stdioClient({ ...h.env, REMUX_TOKEN: tokens.tight }, ['--principal', 'tight']);
    try {
      const r = await call(tight.client, 'run_command', { host: 'localhost', command: 'seq 1 1000' });
      assert.equal(r.data.truncated, true);
      assert.match(r.data.stdout, /^1\n2\n/);
      assert.match(r.data.stdout, /\[remux: output truncated: the policy's write_stdout limit was reached and the command was stopped\]$/);
      assert.deepEqual([r.data.outcome, r.data.message], ['truncated', 'the output cap of policy tight (write_stdout max_bytes: 100) was reached; the command was stopped']);
      const row = (await auditRows(h.env)).find((a) => a.id === r.data.actionId);
      assert.deepEqual(row && [row.level, row.exitCode, row.truncated], ['warn', r.data.exitCode, true]);
      const out = await call(tight.client, 'run_command', { host: 'localhost', command: 'echo hi' });
      assert.equal(out.result.isError, true, 'the tight policy has no echo');
      const hosts = await call(tight.client, 'list_hosts', {});
      assert.deepEqual((hosts.result.structuredContent as { hosts: Array<{ name: string }> }).hosts.map((x) => x.name), ['localhost']);
    } finally {
      await tight.client.close();
    }
    const web = await stdioClient({ ...h.env, REMUX_TOKEN: tokens.web }, ['--principal', 'web']);
    try {
      const r = await call(web.client, 'run_command', { host: 'localhost', command: 'true' });
      assert.equal(r.result.isError, true);
      assert.match(r.text, /out of scope for web/);
    } finally {
      await web.client.close();
    }
    const noToken = await remux(['mcp', '--stdio', '--principal', 'tight'], { env: h.env });
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /--principal tight needs that principal's token in REMUX_TOKEN/);
    const wrong = await remux(['mcp', '--stdio', '--principal', 'tight'], { env: { ...h.env, REMUX_TOKEN: tokens.web } });
    assert.equal(wrong.code, 77);
    assert.match(wrong.stderr, /REMUX_TOKEN belongs to principal web, not tight/);
    const forged = await remux(['mcp', '--stdio'], { env: { ...h.env, REMUX_TOKEN: 'rmx_forged' } });
    assert.equal(forged.code, 77);
    assert.match(forged.stderr, /REMUX_TOKEN matches no principal in \S+principals\.yaml\nhint: check the token .*, or unset REMUX_TOKEN to act as yourself/);
    assert.equal(stderr(), '', 'the default session wrote nothing to stderr');
  });

  test("a principal removed or its token rotated ends its open session: the next call is refused with why", async () => {
    await endsOnRevocation(h.env, 'tight');
  });

  test('lines that are not JSON are answered with a parse error (under their id when it can be read), and so are those with a __proto__ or constructor.prototype key, as HTTP bodies are; the session goes on', async () => {
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } };
    const poisoned = [
      '{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"list_hosts","arguments":{},"__proto__":{"isError":true}}}',
      // JSON.parse reads the escaped key as __proto__ too.
      '{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"list_hosts","arguments":{"\\u005f_proto__":{"host":"x"}}}}',
      '{"jsonrpc":"2.0","id":13,"method":"ping","params":{"_meta":{"constructor":{"prototype":{"polluted":true}}}}}',
    ];
    const input = ['not json at all', '{"jsonrpc":"2.0","id":', '{"jsonrpc":"2.0","id":9,"method":"tools/list",}', JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }).replace('tools/list', 'tools/list\u0000'), ...poisoned, JSON.stringify(init), ''].join('\n');
    const r = await remux(['mcp', '--stdio'], { env: h.env, input });
    assert.equal(r.code, 0, r.stderr);
    const answers = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id?: number; result?: { serverInfo?: { name: string } }; error?: { code: number; message: string } });
    const parseErrors = answers.filter((a) => a.error?.code === -32700);
    assert.deepEqual(parseErrors.map((a) => a.id), [undefined, undefined, 9, 7, 11, 12, 13], r.stdout);
    for (const a of parseErrors) assert.match(a.error!.message, /^Parse error: /);
    for (const a of parseErrors.slice(4)) assert.equal(a.error!.message, 'Parse error: Object contains forbidden prototype property');
    const initialized = answers.find((a) => a.id === 1);
    assert.equal(initialized?.result?.serverInfo?.name, 'remux', r.stdout);
  });

  test('large messages: within the advertised limits they work, past them they are errors and the session goes on', async () => {
    await largeMessages(client, join(cwd, 'large'));
  });

  test('a line over 1 MiB is parsed off the main thread and still answered in turn: before the lines after it, a parse error under its id', async () => {
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } };
    const pad = 'p'.repeat(2 << 20);
    const lines = [
      JSON.stringify(init),
      JSON.stringify({ jsonrpc: '2.0', id: 50, method: 'ping', params: { _meta: { pad } } }),
      JSON.stringify({ jsonrpc: '2.0', id: 51, method: 'ping' }),
      `{"jsonrpc":"2.0","id":52,"method":"ping","params":{"_meta":{"pad":"${pad}"}},}`,
      JSON.stringify({ jsonrpc: '2.0', id: 53, method: 'ping' }),
      '',
    ];
    const r = await remux(['mcp', '--stdio'], { env: h.env, input: lines.join('\n') });
    assert.equal(r.code, 0, r.stderr);
    const answers = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id?: number; result?: object; error?: { code: number; message: string } });
    assert.deepEqual(answers.map((a) => [a.id, a.error?.code ?? 'ok']), [[1, 'ok'], [50, 'ok'], [51, 'ok'], [52, -32700], [53, 'ok']]);
    assert.match(answers[3]!.error!.message, /^Parse error: /);
  });

  test('requests piped in with the input closed right after them: all are answered, a call still running by then too; then the session ends (exit 0)', async () => {
    await answersAfterInputEnds(h.env, 'pipe', ['--no-daemon']);
  });

  test('remux mcp without --stdio is a usage error that says what to do', async () => {
    const r = await remux(['mcp'], { env: h.env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /remux mcp --stdio/);
  });
});

describe('remux mcp --stdio through a running daemon', () => {
  const h = tempHome();

  before(async () => {
    writeHome(h.home);
    await addPrincipal(h.env, 'boss', '--admin');
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  // Its rate limit counting the calls: http.test.ts (over HTTP and stdio, one principal's one bucket).
  test('the session is served by the daemon, with the same answers', async () => {
    const { client, pid } = await stdioClient(h.env);
    try {
      // The launcher itself relays the session: no Node process per MCP client.
      assert.equal(readlinkSync(`/proc/${pid}/exe`), realpathSync(REMUX_BIN));
      const r = await call(client, 'run_command', { host: 'localhost', command: 'echo via the daemon' });
      assert.equal(r.data.stdout, 'via the daemon\n');
      const denied = await call(client, 'run_command', { host: 'localhost', command: 'rm x' });
      assert.match(denied.text, /rule: ops#1 deny/);
    } finally {
      await client.close();
    }
  });

  test("the daemon takes over the client's stdin and stdout: no process copies the messages, and the client closing its input ends the session (exit 0)", async () => {
    const { child, lines, send } = rawSession(h.env);
    const stderr: string[] = [];
    child.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
    // Sent before the session is handed over: read by the daemon from the pipe all the same.
    send(INITIALIZE);
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'run_command', arguments: { host: 'localhost', command: 'echo handed over' } } });
    await until('the call is answered', () => lines.some((l) => l.includes('"id":2')));
    assert.match(lines.find((l) => l.includes('"id":2'))!, /handed over\\n/);
    assert.match(stderr.join(''), /the daemon serves the MCP session on our stdin and stdout/);
    assert.deepEqual([0, 1].map((fd) => readlinkSync(`/proc/${child.pid}/fd/${fd}`)), ['/dev/null', '/dev/null']);
    const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.stdin!.end();
    assert.equal(await exit, 0);
    assert.doesNotMatch(stderr.join(''), /ended the MCP session/);
  });

  test('requests piped in and the input closed at once: the daemon answers them all, a call still running by then too; exit 0', async () => {
    // Taken over (pipes), and copied by the CLI process (a file).
    assert.match(await answersAfterInputEnds(h.env, 'pipe'), /the daemon serves the MCP session on our stdin and stdout/);
    assert.match(await answersAfterInputEnds(h.env, 'file'), /the daemon serves the MCP session\n/);
  });

  test('the CLI process killed: the daemon ends the session, stops the call under way, and lets go of the client\'s output', async () => {
    for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
      const { child, lines, ended, send } = rawSession(h.env);
      send(INITIALIZE);
      await until('initialize is answered', () => lines.some((l) => l.includes('"id":1')));
      // A client shutting down closes its input, and kills the process that does not exit soon after.
      const command = `sleep 31.${signal.length}`;
      send(slowCall(2, command));
      await until(`${command} runs`, () => pgrep(command));
      if (signal === 'SIGTERM') child.stdin!.end();
      child.kill(signal);
      // The client's stdout ends only once the daemon closed its copy too.
      await Promise.race([ended, sleep(5000).then(() => assert.fail(`${signal}: the daemon kept the client's stdout open`))]);
      await until(`${signal}: ${command} is stopped`, () => !pgrep(command));
      assert.equal(lines.some((l) => l.includes('"id":2')), false);
    }
  });

  test('one socket as both stdin and stdout (not taken over: shutting one direction would shut both): copied by the CLI process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'remux-mcp-sock-'));
    const server = net.createServer();
    try {
      const path = join(dir, 's');
      await new Promise<void>((resolve) => server.listen(path, resolve));
      const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
      const client = net.connect(path);
      await new Promise((resolve) => client.once('connect', resolve));
      const child = spawn(REMUX_BIN, ['mcp', '--stdio'], { env: { PATH: process.env.PATH, ...h.env, REMUX_LAUNCHER_DEBUG: '1' }, stdio: [client, client, 'pipe'] });
      client.destroy();
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const ours = await accepted;
      let answers = '';
      ours.setEncoding('utf8').on('data', (d: string) => (answers += d));
      ours.write(`${JSON.stringify(INITIALIZE)}\n`);
      await until('initialize is answered', () => answers.includes('"id":1'));
      assert.match(answers, /"serverInfo":\{"name":"remux"/);
      assert.match(stderr, /the daemon serves the MCP session\n/);
      const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
      ours.end();
      assert.equal(await exit, 0);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('stdin from a file (nothing the daemon takes over): the messages are copied by the CLI process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'remux-mcp-file-'));
    try {
      const file = join(dir, 'in.jsonl');
      writeFileSync(file, `${JSON.stringify(INITIALIZE)}\n`);
      const input = openSync(file, 'r');
      const { child, lines } = rawSession(h.env, input);
      closeSync(input);
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      // 'close': its stderr read to its end too (its stdout can end first).
      await new Promise((resolve) => child.once('close', resolve));
      // Its input at its end, the session ends once what was asked by then is answered.
      assert.match(lines.find((l) => l.includes('"id":1')) ?? '', /"serverInfo":\{"name":"remux"/);
      assert.match(stderr, /the daemon serves the MCP session\n/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a long command tells the client it is still going (after 1, 2 and 4 s, then every 5 s: how long, how much output, its last line), so a timeout that progress resets does not end it', async () => {
    const { client } = await stdioClient(h.env);
    try {
      assertLongCallProgress(await longCall(client));
      // Not asked for, none is sent: the same answer.
      const quiet = await call(client, 'run_command', { host: 'localhost', command: 'echo done' });
      assert.equal(quiet.data.stdout, 'done\n');
    } finally {
      await client.close();
    }
  });

  test('large messages through the daemon: the same answers, never a session left hanging', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'remux-mcp-large-'));
    const { client } = await stdioClient(h.env);
    try {
      await largeMessages(client, dir);
    } finally {
      await client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a principal removed or its token rotated ends its open session in the daemon too', async () => {
    await endsOnRevocation(h.env, 'ops');
  });

  test('a session the daemon refuses (--principal without its token) is refused with the reason, as without a daemon', async () => {
    const r = await remux(['mcp', '--stdio', '--principal', 'boss'], { env: h.env, input: '' });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--principal boss needs that principal's token in REMUX_TOKEN/);
  });

  test('the daemon stopping ends the session: the client sees it closed, with the reason on stderr', async () => {
    const { client, stderr } = await stdioClient(h.env);
    const closed = new Promise<void>((resolve) => (client.onclose = resolve));
    assert.equal((await call(client, 'list_hosts', {})).result.isError, undefined);
    assert.equal((await remux(['daemon', 'stop'], { env: h.env })).code, 0);
    try {
      await closed;
      assert.match(stderr(), /the daemon ended the MCP session/);
    } finally {
      const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
      assert.equal(started.code, 0, started.stderr);
    }
  });

  test('a daemon using other policies declines, and the session is served in the CLI process instead', async () => {
    const other = join(h.home, 'other-policies.yaml');
    writeFileSync(other, 'policies:\n  ops:\n    sandbox: false\n    capabilities:\n      - { operation: execute_binary, resource: printf }\n      - { operation: write_stdout, resource: null }\n');
    const { client, stderr } = await stdioClient({ ...h.env, REMUX_POLICY_CONFIG: other });
    try {
      const r = await call(client, 'run_command', { host: 'localhost', command: 'echo no' });
      assert.equal(r.result.isError, true, 'the client\'s own policies apply: no echo there');
      assert.match(stderr(), /the running daemon does not serve this MCP session \(the running daemon uses policies .* \(you named .*other-policies\.yaml\)\); serving it in this process/);
    } finally {
      await client.close();
    }
  });
});
