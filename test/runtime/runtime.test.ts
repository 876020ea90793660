// The agentless runtime against real local python3 processes: the bootstrap's size, the handshake, the
// protocol's failure modes (malformed and oversized frames both ways, an unencodable result, a dead
// peer), concurrency, streaming, cancellation and timeouts that kill the remote work, stdio that tools
// and their children write never reaching the stream, remote exceptions as typed errors, log records,
// and the policy and audit of every tool call (denials, a symlink escape, records).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import { ADMIN_SCOPE } from '../../src/config/principals.js';
import { perform } from '../../src/core/perform.js';
import { stage0Command, stage1Frame, toolSource } from '../../src/runtime/bootstrap.js';
import { ArgumentError, ArgumentTypeError, CallTimeoutError, connect, connectStreams, DeniedError, Exec, FileSystem, ProtocolError, RemoteError, stage0Argv, Template, WindowOverrunError, type LogRecord } from '../../src/runtime/index.js';
import { Approvals, approvalsApprover } from '../../src/notify/service.js';
import { Service } from '../../src/runtime/tools-service.js';
import { failureKind } from '../../src/runtime/fanout.js';
import { Link } from '../../src/runtime/link.js';
import type { ChunkQueue } from '../../src/runtime/queue.js';
import { processTransport, streamTransport } from '../../src/runtime/transports.js';
import { pythonsHere, runtimeContext, tempRoot } from '../support/runtime.js';

function setup(t: TestContext, extraRules = '') {
  const root = tempRoot(t, 'remux-rt-');
  mkdirSync(join(root, 'secret'));
  mkdirSync(join(root, 'outside'));
  writeFileSync(join(root, 'a.txt'), 'hello\n');
  writeFileSync(join(root, 'secret/key'), 'k');
  writeFileSync(join(root, 'outside/passwd'), 'root:x:0:0\n');
  const { context, audit } = runtimeContext(
    t,
    `policies:
  rt:
    sandbox: false
    capabilities:
      - { operation: read_file, resource: ${root}/secret/**, effect: deny, reason: keys stay put }
      - { operation: read_file, resource: ${root}/outside/**, effect: deny, reason: not here }
      - { operation: read_file, resource: "${root}/**" }
      - { operation: read_file, resource: "/**/nonexistent-remux" }
      - { operation: write_file, resource: "${root}/w/**" }
      - { operation: list_directory, resource: "${root}|${root}/w|${root}/w/**" }
      - { operation: execute_binary, resource: "true|echo|sh|sleep|uname|cat|ls|yes|env" }
      - { operation: write_stdout, resource: { max_bytes: 100000, redact: ["SECRET=\\\\S+"] } }
${extraRules}`,
    'rt',
  );
  return { root, audit, context };
}

async function local(t: TestContext, extraRules = '', onLog?: (r: LogRecord) => void) {
  const s = setup(t, extraRules);
  const host = await connect('localhost', { context: s.context, ...(onLog ? { onLog } : {}) });
  t.after(() => host.close());
  return { ...s, host };
}

async function rawLink(t: TestContext, onLog?: (r: LogRecord) => void) {
  const transport = processTransport();
  const link = await Link.open(transport, onLog ? { onLog } : {});
  t.after(() => link.close());
  return { link, transport };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function gone(pid: number, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (!alive(pid)) return true;
    await sleep(25);
  }
  return !alive(pid);
}

test("the bootstrap: stage 0 is one short argv, stage 1 a compressed frame under 1 KB with it; the handshake says version 1 and the Python", async (t) => {
  const stage0 = Buffer.byteLength(stage0Command());
  const before = stage0 + stage1Frame().length;
  assert.ok(stage0 < 1024, `stage 0 is ${stage0} bytes`);
  assert.ok(before < 1024, `${before} bytes before the handshake (rmote: 11,117)`);
  t.diagnostic(`stage 0: ${stage0} B, stage 1: ${stage1Frame().length} B, before the handshake: ${before} B`);
  const { host } = await local(t);
  assert.equal(host.hello.v, 1);
  assert.deepEqual(host.hello.caps, ['stream', 'cancel', 'log', 'tools']);
  assert.match(host.hello.py, /^3\.\d+/);
  assert.equal(host.hello.cap, 16 << 20);
});

/** A fake host: reads stage 1 like stage 0 would, then runs `reply` (Python) with `w(bytes)` writing raw to stdout. */
function fakeHost(reply: string) {
  const program = `import sys,json,struct
r=sys.stdin.buffer.read
r(int.from_bytes(r(4),"big"))
def w(b):
    sys.stdout.buffer.write(b); sys.stdout.buffer.flush()
def f(m):
    b=json.dumps(m).encode(); w(struct.pack(">I",len(b))+b)
${reply}
sys.stdin.buffer.read()
`;
  const child = spawn('python3', ['-c', program], { stdio: ['pipe', 'pipe', 'inherit'] });
  return { child, open: () => Link.open(streamTransportOf(child)) };
}

/** connectStreams's transport, for a Link without a guard. */
const streamTransportOf = (child: ReturnType<typeof spawn>) => streamTransport(child.stdin!, child.stdout!, 'fake host');

test('a handshake of another protocol version is refused, naming both versions', async (t) => {
  const fake = fakeHost(`f({"t":"hello","v":99,"caps":[],"py":"3.11","pid":1,"cwd":"/","cap":16})`);
  t.after(() => fake.child.kill());
  await assert.rejects(fake.open(), (err: Error) => err instanceof ProtocolError && /version 99; remux speaks 1/.test(err.message));
});

test('the host sending a malformed frame or one over the cap fails the link with a clear error, never a hang', async (t) => {
  const hello = `f({"t":"hello","v":1,"caps":[],"py":"3.11","pid":1,"cwd":"/","cap":16})`;
  const bad = fakeHost(`${hello}\nimport time; time.sleep(0.2); w(struct.pack(">I",5)+b"{nope")`);
  const huge = fakeHost(`${hello}\nimport time; time.sleep(0.2); w(struct.pack(">I",1<<30))`);
  t.after(() => void [bad.child.kill(), huge.child.kill()]);
  const tool = toolSource('X', 'def f():\n    return 1\n');
  const a = (await bad.open()).call(tool, 'f', []).result;
  await assert.rejects(a, /malformed frame .*the link is closed/);
  const b = (await huge.open()).call(tool, 'f', []).result;
  await assert.rejects(b, /frame of 1073741824 bytes, more than the cap of 16777216/);
});

test("a host's exception, log records and message types reach us with their escapes made visible: nothing it sends drives the terminal they are printed on", async (t) => {
  // OSC 52 would write the reader's clipboard, CSI clear the screen; C1 CSI (\x9b) and a bidi override (U+202E) too.
  const evil = 'ok\\x1b]52;c;ZWNobyBoaQ==\\x07 \\x1b[2J\\r\\x9b31m\\u202e\\x00';
  const shown = 'ok\\x1b]52;c;ZWNobyBoaQ==\\x07 \\x1b[2J\\x0d\\x9b31m<U+202E>\\x00';
  const fake = fakeHost(`f({"t":"hello","v":1,"caps":[],"py":"3.11","pid":1,"cwd":"/","cap":16})
def frame():
    return json.loads(r(int.from_bytes(r(4),"big")))
frame()
c=frame()
e="${evil}"
f({"t":"log","id":c["id"],"level":"WARNING"+e,"name":"n"+e,"msg":"line 1\\n\\tline 2"+e})
f({"t":"error","id":c["id"],"type":"Evil"+e,"message":"boom\\nline 2"+e,"errno":None,"tb":"Traceback"+e})
c=frame()
f({"t":"nonsense"+e,"id":c["id"]})`);
  t.after(() => fake.child.kill());
  const logs: LogRecord[] = [];
  const link = await Link.open(streamTransportOf(fake.child), { onLog: (r) => logs.push(r) });
  t.after(() => link.close());
  const tool = toolSource('X', 'def f():\n    return 1\n');
  await assert.rejects(link.call(tool, 'f', []).result, (e: Error) => {
    assert.ok(e instanceof RemoteError);
    assert.equal(e.type, `Evil${shown}`);
    assert.equal(e.message, `Evil${shown}: boom\nline 2${shown}`, 'a newline stays a line break');
    assert.equal(e.remoteTraceback, `Traceback${shown}`);
    return true;
  });
  assert.deepEqual(logs, [{ id: 1, level: `WARNING${shown}`, name: `n${shown}`, msg: `line 1\n\tline 2${shown}` }]);
  await assert.rejects(link.call(tool, 'f', []).result, (e: Error) => e instanceof ProtocolError && e.message === `X.f: the host sent an unknown message type "nonsense${shown}"`);
});

test('frames we send: one that is not JSON, or names no method, fails with a ProtocolError; one over the cap closes the link with a reason', async (t) => {
  const { link, transport } = await rawLink(t);
  const tool = toolSource('Ok', 'def f():\n    return 7\n');
  assert.equal(await link.call(tool, 'f', []).result, 7);
  await assert.rejects(link.call(tool, 'missing', []).result, (e: Error) => e instanceof RemoteError && e.type === 'ProtocolError' && /no method 'missing'/.test(e.message));
  await assert.rejects(link.call(tool, '_private', []).result, (e: RemoteError) => e.type === 'ProtocolError');
  // The link still works after bad calls.
  assert.equal(await link.call(tool, 'f', []).result, 7);
  const pending = link.call(toolSource('Slow', 'import time\ndef f():\n    time.sleep(5)\n'), 'f', []).result;
  const head = Buffer.alloc(4);
  head.writeUInt32BE(64 << 20);
  transport.write(head);
  await assert.rejects(pending, /frame of 67108864 bytes is more than the cap/);
});

test('a malformed frame from us (not JSON) is answered with a clear error naming it', async (t) => {
  const { link, transport } = await rawLink(t);
  const body = Buffer.from('{not json');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  const pending = link.call(toolSource('Slow', 'import time\ndef f():\n    time.sleep(5)\n'), 'f', []).result;
  transport.write(Buffer.concat([head, body]));
  await assert.rejects(pending, /malformed frame: JSONDecodeError/);
});

test('an unencodable result, or one over the frame cap, is a typed EncodeError; the link goes on', async (t) => {
  const { link } = await rawLink(t);
  const tool = toolSource('Odd', 'def obj():\n    return object()\ndef big():\n    return "x" * (17 << 20)\ndef ok():\n    return [1, "two", None]\n');
  await assert.rejects(link.call(tool, 'obj', []).result, (e: Error) => e instanceof RemoteError && e.type === 'EncodeError' && /cannot be sent as JSON/.test(e.message));
  await assert.rejects(link.call(tool, 'big', []).result, (e: Error) => e instanceof RemoteError && e.type === 'EncodeError' && /more than the frame cap/.test(e.message));
  assert.deepEqual(await link.call(tool, 'ok', []).result, [1, 'two', null]);
});

/** A binary frame as the local side sends one: 0, the call id, the tag, the bytes. */
function binaryFrame(id: number, tag: number, data: Buffer): Buffer {
  const head = Buffer.alloc(10);
  head.writeUInt32BE(6 + data.length);
  head.writeUInt32BE(id, 5);
  head[9] = tag;
  return Buffer.concat([head, data]);
}

/** A tool whose call writes its input (rt.feed) into a pipe it reads to the end: how many bytes, and their sha256. */
const SINK = toolSource('Sink', 'import hashlib, os, time\ndef f():\n    r, w = os.pipe()\n    rt.feed(w)\n    h = hashlib.sha256()\n    n = 0\n    while True:\n        b = os.read(r, 65536)\n        if not b:\n            break\n        h.update(b)\n        n += len(b)\n    os.close(r)\n    return [n, h.hexdigest()]\ndef hold():\n    time.sleep(30)\n');

test("bytes travel raw both ways in binary frames: a call's input (every byte value, written as given: not copied behind its frame's head) and the chunks a tool yields as bytes or (tag, bytes); no base64 on the wire", async (t) => {
  const transport = processTransport();
  let wrote = 0;
  // Input bytes handed to the pipe as the caller's own memory.
  let uncopied = 0;
  const writev = transport.writev as (data: Buffer[]) => void;
  const counted = (data: Buffer[]): void => {
    data.forEach((d) => (wrote += d.length));
    if (data[1]?.buffer === input.buffer) uncopied += data[1].length;
    writev(data);
  };
  const link = await Link.open({ ...transport, write: (data) => ((wrote += data.length), transport.write(data)), writev: counted });
  t.after(() => link.close());
  // Every byte value, then random bytes: 1 MiB in 64 KiB pieces.
  const input = Buffer.concat([Buffer.from(Array.from({ length: 1024 }, (_, i) => i % 256)), randomBytes((1 << 20) - 1024)]);
  const pieces = Array.from({ length: 16 }, (_, i) => input.subarray(i * (64 << 10), (i + 1) * (64 << 10)));
  // The tool's code goes with its first call: not counted.
  await link.call(SINK, 'f', [], {}, Readable.from([Buffer.from('x')])).result;
  const before = wrote;
  assert.deepEqual(await link.call(SINK, 'f', [], {}, Readable.from(pieces)).result, [input.length, createHash('sha256').update(input).digest('hex')]);
  // As base64 in JSON it was 4/3 of that, and more.
  assert.ok(wrote - before < input.length * 1.01, `${wrote - before} bytes written for ${input.length} bytes of input`);
  assert.equal(uncopied, input.length);
  const out = toolSource('Out', 'def f():\n    yield bytes(range(256))\n    yield (2, b"\\x00\\xff")\n    yield "text"\n    yield (True, b"a bool is no tag")\ndef huge():\n    yield b"x" * (17 << 20)\n');
  const call = link.call(out, 'f', []);
  const chunks: unknown[] = [];
  // Its end: a tuple of a bool and bytes is neither a tagged chunk nor JSON.
  const unencodable = (e: Error): boolean => e instanceof RemoteError && e.type === 'EncodeError' && /cannot be sent as JSON/.test(e.message);
  await assert.rejects(async () => {
    for await (const c of call) chunks.push(c);
  }, unencodable);
  assert.deepEqual(chunks, [Buffer.from(Array.from({ length: 256 }, (_, i) => i)), [2, Buffer.from([0, 255])], 'text']);
  assert.deepEqual(await link.call(toolSource('Out2', 'def f():\n    yield (1, bytearray(b"ok"))\n    return 1\n'), 'f', []).result, 1);
  await assert.rejects(link.call(out, 'huge', []).result, (e: Error) => e instanceof RemoteError && e.type === 'EncodeError' && /the chunk is 17825798 bytes, more than the frame cap/.test(e.message));
});

test("a malformed binary frame from the host fails the link, naming it; one from us fails its call, as does input past the call's credit; the link goes on", async (t) => {
  const hello = `f({"t":"hello","v":1,"caps":[],"py":"3.11","pid":1,"cwd":"/","cap":16})`;
  const bad = fakeHost(`${hello}\nimport time; time.sleep(0.2); w(struct.pack(">I",3)+b"\\x00ab")`);
  t.after(() => void bad.child.kill());
  await assert.rejects((await bad.open()).call(toolSource('X', 'def f():\n    return 1\n'), 'f', []).result, (e: Error) => e instanceof ProtocolError && /malformed binary frame \(3 bytes\); the link is closed/.test(e.message));

  const { link, transport } = await rawLink(t);
  const nextId = (): number => (link as unknown as { nextId: number }).nextId;
  // Calls that take input none is sent for: the frames below are written by hand.
  let id = nextId();
  const tagged = link.call(SINK, 'hold', [], {}, new PassThrough()).result;
  transport.write(binaryFrame(id, 7, Buffer.from('x')));
  await assert.rejects(tagged, (e: Error) => e instanceof RemoteError && e.type === 'ProtocolError' && /malformed binary frame: 7 bytes, not 0, a 4-byte call id, tag 0 and input bytes/.test(e.message));
  id = nextId();
  const over = link.call(SINK, 'hold', [], {}, new PassThrough()).result;
  // The host granted a window of 256 KiB; 320 KiB come.
  for (let i = 0; i < 5; i++) transport.write(binaryFrame(id, 0, Buffer.alloc(64 << 10)));
  await assert.rejects(over, (e: Error) => e instanceof RemoteError && e.type === 'ProtocolError' && /input sent past its credit: 327680 bytes wait unwritten, the window is 262144/.test(e.message));
  id = nextId();
  const text = link.call(SINK, 'hold', [], {}, new PassThrough()).result;
  const body = Buffer.from(JSON.stringify({ t: 'input', id, d: 'aGk=' }));
  transport.write(Buffer.concat([Buffer.from([0, 0, 0, body.length]), body]));
  await assert.rejects(text, (e: Error) => e instanceof RemoteError && e.type === 'ProtocolError' && /input data comes in binary frames/.test(e.message));
  assert.deepEqual(await link.call(SINK, 'f', [], {}, Readable.from([Buffer.from('still works')])).result, [11, createHash('sha256').update('still works').digest('hex')]);
});

/**
 * A host that ignores flow control: it answers every call "flood" with 64 MiB of 64 KiB binary chunks,
 * whatever the call's window and whatever is acknowledged; "stray" with a chunk for call 99, never made;
 * "greedy" with credit for 1 GiB of input, whatever it was sent; any other call with two chunks and its result.
 */
const FLOODING_HOST = `f({"t":"hello","v":1,"caps":[],"py":"3.11","pid":1,"cwd":"/","cap":16})
def rf():
    h=r(4)
    return r(int.from_bytes(h,"big")) if len(h)==4 else None
def chunks(i, n):
    for _ in range(n):
        w(struct.pack(">IBIB",6+65536,0,i,1)+b"x"*65536)
rf()
while True:
    b=rf()
    if b is None:
        break
    if b[:1]==b"\\0":
        continue
    m=json.loads(b)
    if m["t"]!="call":
        continue
    if m["m"]=="flood":
        chunks(m["id"],1024)
    elif m["m"]=="stray":
        chunks(99,1)
    elif m["m"]=="greedy":
        f({"t":"credit","id":m["id"],"n":1<<30})
    else:
        chunks(m["id"],2)
        f({"t":"result","id":m["id"],"v":"ok"})`;

test("a host sending past a call's window fails that call (WindowOverrunError) and what it holds stays within the window; the link's other calls go on; a chunk for a call never made closes the link", { timeout: 60_000 }, async (t) => {
  const fake = fakeHost(FLOODING_HOST);
  t.after(() => void fake.child.kill());
  const link = await fake.open();
  t.after(() => link.close());
  const tool = toolSource('Flood', 'def flood():\n    pass\n');
  const frame = 6 + 65536;
  const window = 256 << 10;
  // Nobody takes its chunks: what the host sends past the window would have waited here.
  const flood = link.call(tool, 'flood', [], { window });
  await assert.rejects(flood.result, (e: Error) => {
    assert.ok(e instanceof WindowOverrunError && e instanceof ProtocolError, String(e));
    // 4 chunks fill the window; the 5th is past it.
    assert.equal(e.message, `Flood.flood (call ${e.callId}): the host sent a chunk of ${frame} bytes with ${4 * frame} bytes already unacknowledged, past the call's window of ${window}; the call was cancelled`);
    assert.deepEqual([e.call, e.held, e.chunk, e.limit], ['Flood.flood', 4 * frame, frame, window]);
    return true;
  });
  // A call after it comes back whole: the rest of the 64 MiB was read and dropped, not kept.
  const chunks: unknown[] = [];
  const next = link.call(tool, 'ok', [], { window });
  for await (const c of next) chunks.push(c);
  assert.equal(await next.result, 'ok');
  assert.equal(chunks.length, 2);
  const held = (s: unknown): number => (s as ChunkQueue<unknown, unknown>).bufferedBytes;
  assert.equal(held(flood), 4 * frame, 'the flooded call holds the window and no more');
  t.diagnostic(`held for the flooded call after 64 MiB came: ${held(flood)} bytes (window ${window})`);

  // A call without a window, not iterated: at most a frame's worth waits.
  const untaken = link.call(tool, 'flood', []);
  await assert.rejects(untaken.result, (e: Error) => e instanceof WindowOverrunError && e.limit === 16 << 20 && /more than a call without a window may hold \(16777216\); the call was cancelled$/.test(e.message));
  assert.equal(await link.call(tool, 'ok', []).result, 'ok');
  assert.ok(held(untaken) < (16 << 20) + frame, `${held(untaken)} bytes untaken`);

  const stray = link.call(tool, 'stray', []).result;
  await assert.rejects(stray, (e: Error) => e instanceof ProtocolError && e.message === 'the host sent a chunk for call 99, which was never made; the link is closed');
  assert.ok(link.closed);
});

test("a host giving back credit for more input than it was sent fails the call: the caller's input is read no further than the window", { timeout: 60_000 }, async (t) => {
  const fake = fakeHost(FLOODING_HOST);
  t.after(() => void fake.child.kill());
  const link = await fake.open();
  t.after(() => link.close());
  let taken = 0;
  const endless = new Readable({
    read() {
      taken += 64 << 10;
      this.push(Buffer.alloc(64 << 10));
    },
  });
  const call = link.call(toolSource('Flood', 'def greedy():\n    pass\n'), 'greedy', [], {}, endless);
  const outcome = await Promise.race([call.result.then(() => null, (e: Error) => e), sleep(5000).then(() => 'still running')]);
  assert.ok(outcome instanceof ProtocolError, String(outcome));
  assert.match(outcome.message, /^Flood\.greedy \(call 1\): the host gave back credit for 1073741824 bytes of input with \d+ sent and not given back; the call was cancelled$/);
  await sleep(200);
  // The window sent at once, and what the stream read ahead of it.
  assert.ok(taken <= (256 << 10) + 3 * (64 << 10), `${taken} bytes of input read`);
  assert.equal(await link.call(toolSource('Flood', 'def greedy():\n    pass\n'), 'ok', []).result, 'ok');
});

test('tools printing to stdout/stderr and children writing to fds 1 and 2 never reach the stream', async (t) => {
  const { link } = await rawLink(t);
  const tool = toolSource(
    'Noisy',
    'import os, subprocess, sys\ndef f():\n    print("to stdout" * 1000)\n    sys.stderr.write("to stderr\\n")\n    os.write(1, b"raw fd 1")\n    os.write(2, b"raw fd 2")\n    os.system("echo child; echo child >&2; sh -c \'echo grandchild; cat /dev/zero | head -c 100000\'")\n    subprocess.run(["sh", "-c", "echo sub; echo sub >&2"])\n    return "clean"\n',
  );
  const results = await Promise.all([link.call(tool, 'f', []).result, link.call(tool, 'f', []).result]);
  assert.deepEqual(results, ['clean', 'clean']);
  assert.equal(await link.call(tool, 'f', []).result, 'clean');
});

test('100 concurrent calls on one connection each get their own result', async (t) => {
  const { link } = await rawLink(t);
  const tool = toolSource('Echo', 'import time, random\ndef f(i):\n    time.sleep(random.random() / 50)\n    return i * 2\n');
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => link.call(tool, 'f', [i]).result));
  assert.deepEqual(results, Array.from({ length: 100 }, (_, i) => i * 2));
});

test('remote exceptions arrive typed: FileNotFoundError with errno 2 and the remote traceback', async (t) => {
  const { host, root } = await local(t);
  await assert.rejects(host.call(FileSystem.readText, `${root}/nope.txt`), (e: Error) => {
    assert.ok(e instanceof RemoteError);
    assert.equal(e.type, 'FileNotFoundError');
    assert.equal(e.errno, 2);
    assert.match(e.remoteTraceback ?? '', /Traceback[\s\S]*_open/);
    return true;
  });
  const { link } = await rawLink(t);
  await assert.rejects(link.call(toolSource('V', 'def f():\n    raise ValueError("bad value")\n'), 'f', []).result, { type: 'ValueError', message: 'ValueError: bad value', errno: null });
});

test('log records of remote tools are forwarded with their call id', async (t) => {
  const logs: LogRecord[] = [];
  const { link } = await rawLink(t, (r) => logs.push(r));
  await link.call(toolSource('L', 'import logging\ndef f():\n    logging.getLogger("mytool").warning("careful: %s", 42)\n    return 1\n'), 'f', []).result;
  assert.deepEqual(logs, [{ id: 1, level: 'WARNING', name: 'mytool', msg: 'careful: 42' }]);
});

test('a dead peer fails the calls in flight within 5 s', async (t) => {
  const { link } = await rawLink(t);
  const pending = link.call(toolSource('S', 'import time\ndef f():\n    time.sleep(60)\n'), 'f', []).result;
  const started = Date.now();
  process.kill(link.hello?.pid as number, 'SIGKILL');
  await assert.rejects(pending, ProtocolError);
  assert.ok(Date.now() - started < 5000);
  await assert.rejects(link.call(toolSource('T', 'def f():\n    return 1\n'), 'f', []).result, ProtocolError);
});

test('a host that goes silent without closing (its interpreter stopped) fails the calls in flight within 5 s', async (t) => {
  const { link } = await rawLink(t);
  const pid = link.hello?.pid as number;
  t.after(() => process.kill(pid, 'SIGKILL'));
  const tool = toolSource('S', 'import time\ndef f(s):\n    time.sleep(s)\n    return s\n');
  // A long call on a live host is not mistaken for a dead one: the host answers pings meanwhile.
  assert.equal(await link.call(tool, 'f', [5.5]).result, 5.5);
  const pending = link.call(tool, 'f', [60]).result;
  process.kill(pid, 'SIGSTOP');
  const started = Date.now();
  await assert.rejects(pending, (e: Error) => e instanceof ProtocolError && /has not answered for \d+ ms/.test(e.message));
  assert.ok(Date.now() - started < 5000, `${Date.now() - started} ms`);
});

test('FileSystem: readText, readBytes, stat, glob sorted, writeText atomic with its mode and idempotent', async (t) => {
  const { host, root } = await local(t);
  assert.equal(await host.call(FileSystem.readText, `${root}/a.txt`), 'hello\n');
  assert.deepEqual(await host.call(FileSystem.readBytes, `${root}/a.txt`), Buffer.from('hello\n'));
  const st = await host.call(FileSystem.stat, `${root}/a.txt`);
  assert.deepEqual([st.type, st.size], ['file', 6]);
  mkdirSync(join(root, 'w'));
  for (const n of ['c', 'a', 'b']) writeFileSync(join(root, 'w', `${n}.conf`), n);
  assert.deepEqual(await host.call(FileSystem.glob, `${root}/w/*.conf`), ['a', 'b', 'c'].map((n) => `${root}/w/${n}.conf`));
  const target = `${root}/w/new.txt`;
  assert.deepEqual(await host.call(FileSystem.writeText, target, 'v1\n', { mode: 0o640 }), { changed: true, created: true });
  assert.equal(readFileSync(target, 'utf8'), 'v1\n');
  assert.equal(statSync(target).mode & 0o777, 0o640);
  assert.deepEqual(await host.call(FileSystem.writeText, target, 'v1\n', { mode: 0o640 }), { changed: false, created: false });
  assert.deepEqual(await host.call(FileSystem.writeText, target, 'v2\n'), { changed: true, created: false });
  assert.equal(statSync(target).mode & 0o777, 0o640, 'an existing file keeps its mode');
});

test('a mode with the set-user-ID or set-group-ID bit is refused before anything is sent (writeText, Template.file), audited; the sticky bit passes', async (t) => {
  const { host, root, audit } = await local(t);
  mkdirSync(join(root, 'w'));
  const target = join(root, 'w/prog');
  const cases: Array<[number, RegExp]> = [
    [0o4755, /mode 04755 has the set-user-ID \(04000\) bit: refused/],
    [0o2755, /mode 02755 has the set-group-ID \(02000\) bit/],
    [0o6777, /mode 06777 has the set-user-ID \(04000\) and set-group-ID \(02000\) bits/],
    [0o10644, /mode: 010644 is not a file mode/],
    [-1, /mode: -1 is not a file mode/],
    [0.5, /mode: 0.5 is not a file mode/],
  ];
  for (const [mode, message] of cases) {
    const before = audit.list().length;
    const refused = (e: Error): boolean => e instanceof ArgumentError && /^FileSystem\.writeText: /.test(e.message) && message.test(e.message);
    await assert.rejects(host.call(FileSystem.writeText, target, '#!/bin/sh\n', { mode }), refused, String(mode));
    const record = audit.list()[before];
    assert.deepEqual([record?.end?.exitCode, record?.end?.refusal], [2, audit.list()[before]?.begin.reason], 'audited as rejected (exit 2)');
    await assert.rejects(host.call(Template.file, target, '#!/bin/sh\n', {}, { mode }), (e: Error) => e instanceof ArgumentError && message.test(e.message));
  }
  assert.equal(existsSync(target), false, 'nothing was written');
  assert.deepEqual(await host.call(FileSystem.writeText, target, 'x\n', { mode: 0o1755 }), { changed: true, created: true });
  assert.equal(statSync(target).mode & 0o7777, 0o1755);
});

test("a set-ID file's mode is never kept by a write (new content or a new owner would make a new set-ID program): refused until a mode is given", async (t) => {
  const { host, root } = await local(t);
  mkdirSync(join(root, 'w'));
  // Anyone may make a program of their own set-user-ID; given to root with its mode kept, it would run as root.
  const prog = join(root, 'w/prog');
  writeFileSync(prog, '#!/bin/sh\nid\n');
  const nobody = Number(execFileSync('id', ['-u', 'nobody']).toString());
  execFileSync('chown', ['nobody', prog]);
  execFileSync('chmod', ['4755', prog]);
  const refused = (e: Error): boolean => e instanceof RemoteError && e.type === 'PermissionError' && /the file is set-ID \(mode 04755\), which a file the runtime writes never keeps: give a mode without those bits \(e\.g\. 0755\) to replace it/.test(e.message);
  await assert.rejects(host.call(FileSystem.writeText, prog, '#!/bin/sh\nid\n', { owner: 'root' }), refused, 'a new owner');
  await assert.rejects(host.call(FileSystem.writeText, prog, '#!/bin/sh\nsh\n'), refused, 'new content');
  await assert.rejects(host.call(FileSystem.lineInFile, prog, 'sh'), refused, 'an edited line');
  await assert.rejects(host.call(Template.file, prog, '#!/bin/sh\nsh\n'), refused, 'a template');
  assert.deepEqual([readFileSync(prog, 'utf8'), statSync(prog).uid, statSync(prog).mode & 0o7777], ['#!/bin/sh\nid\n', nobody, 0o4755], 'the file is as it was');
  assert.deepEqual(await host.call(FileSystem.writeText, prog, '#!/bin/sh\nid\n', {}), { changed: false, created: false }, 'nothing to write: nothing refused');
  assert.deepEqual(await host.call(FileSystem.writeText, prog, '#!/bin/sh\nsh\n', { mode: 0o755, owner: 'root' }), { changed: true, created: false });
  assert.deepEqual([statSync(prog).uid, statSync(prog).mode & 0o7777], [0, 0o755]);
  execFileSync('chmod', ['2755', prog]);
  await assert.rejects(host.call(FileSystem.writeText, prog, 'x\n', { group: 'root' }), (e: Error) => e instanceof RemoteError && /set-ID \(mode 02755\)/.test(e.message), 'set-group-ID too');
});

test('built-in methods refuse arguments of the wrong type before anything is sent, naming each (ArgumentTypeError), audited as rejected', async (t) => {
  const { host, root, audit } = await local(t);
  mkdirSync(join(root, 'w'));
  // As plain JavaScript (or a cast) calls them.
  const js = host as unknown as { call(m: unknown, ...a: unknown[]): Promise<unknown>; exec(argv: unknown, o?: unknown): Promise<unknown> };
  const cases: Array<[() => Promise<unknown>, RegExp]> = [
    [() => js.call(FileSystem.readText, 42), /^FileSystem\.readText: the arguments do not have the declared types:\npath \(argument 1\): expected a string, got number 42$/],
    [() => js.call(FileSystem.readText), /path \(argument 1\): expected a string, got nothing/],
    [() => js.call(FileSystem.stat, {}), /^FileSystem\.stat: .*\npath \(argument 1\): expected a string, got an object/],
    [() => js.call(FileSystem.writeText, `${root}/w/x`, 123), /^FileSystem\.writeText: .*\ntext \(argument 2\): expected a string, got number 123$/],
    [() => js.call(FileSystem.writeText, `${root}/w/x`, 'x', 'rw'), /the options \(argument 3\): expected an object, got a string/],
    [() => js.call(FileSystem.writeText, `${root}/w/x`, 'x', { mode: '0644' }), /option mode: expected a number, got a string/],
    [() => js.call(Template.render, 'x', ['a']), /^Template\.render: .*\nvariables \(argument 2\): expected an object, got a list/],
    [() => js.call(Service.start, 7), /^Service\.start: .*\nname \(argument 1\): expected a string, got number 7/],
    [() => js.call(Service.converge, 'nginx', { started: 'yes' }), /option started: expected true or false, got a string/],
    [() => js.exec('uname -r'), /^Exec: .*\nargv \(argument 1\): expected a list of strings \(no shell splits a string into words\), got a string/],
    [() => js.exec(['true'], { cwd: 5 }), /option cwd: expected a string, got number 5/],
  ];
  for (const [call, message] of cases) await assert.rejects(call(), (e: Error) => e instanceof ArgumentTypeError && message.test(e.message) && e.actionId !== null, String(message));
  const exec = (): Promise<unknown> => (host as unknown as { callWith(o: unknown, m: unknown, ...a: unknown[]): Promise<unknown> }).callWith({ timeoutMs: 500 }, Exec.command, ['sleep', '77']);
  await assert.rejects(exec(), (e: Error) => e instanceof ArgumentError && /^Exec\.command: call\(\) does not run it; use host\.exec\(argv/.test(e.message));
  assert.equal(existsSync(`${root}/w/x`), false);
  const records = audit.list();
  assert.equal(records.length, cases.length + 1, 'each audited');
  for (const r of records) assert.deepEqual([r.end?.exitCode, r.end?.refusal === r.begin.reason], [2, true], r.begin.command ?? '');
});

test('FileSystem reads refuse a FIFO, a device or a directory at once, naming the path and what it is: a FIFO never blocks the open', async (t) => {
  const { host, root } = await local(t, '      - { operation: read_file, resource: /dev/null }');
  const fifo = join(root, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const refused = (type: string, errno: number, what: string, path: string) => (e: Error) =>
    e instanceof RemoteError && e.type === type && e.errno === errno && e.message.endsWith(`${what}, not a regular file: '${path}'`);
  await assert.rejects(host.callWith({ timeoutMs: 3000 }, FileSystem.readText, fifo), refused('OSError', 22, 'a FIFO', fifo));
  await assert.rejects(host.callWith({ timeoutMs: 3000 }, FileSystem.readBytes, fifo), refused('OSError', 22, 'a FIFO', fifo));
  await assert.rejects(host.callWith({ timeoutMs: 3000 }, FileSystem.readText, '/dev/null'), refused('OSError', 22, 'a character device', '/dev/null'));
  mkdirSync(join(root, 'w'));
  await assert.rejects(host.callWith({ timeoutMs: 3000 }, FileSystem.readText, `${root}/w`), refused('IsADirectoryError', 21, 'a directory', `${root}/w`));
});

test('FileSystem.stat reports a symlink itself (as lstat), with its target as written; checked as a read of where it leads', async (t) => {
  const { host, root } = await local(t);
  symlinkSync('a.txt', join(root, 'lnk'));
  symlinkSync(join(root, 'nothere'), join(root, 'dangling'));
  symlinkSync(join(root, 'secret/key'), join(root, 'to-secret'));
  const link = await host.call(FileSystem.stat, `${root}/lnk`);
  assert.deepEqual([link.type, link.target, link.size], ['symlink', 'a.txt', 5]);
  // Re-pointed while the checked answer is kept (1 s): what it leads to now was not checked.
  writeFileSync(join(root, 'other.txt'), 'other\n');
  rmSync(join(root, 'lnk'));
  symlinkSync('other.txt', join(root, 'lnk'));
  await assert.rejects(host.call(FileSystem.stat, `${root}/lnk`), (e: Error) => e instanceof RemoteError && e.errno === 11 && /changed since the policy checked it/.test(e.message));
  assert.deepEqual(await host.call(FileSystem.stat, `${root}/dangling`).then((s) => [s.type, s.target]), ['symlink', join(root, 'nothere')]);
  const file = await host.call(FileSystem.stat, `${root}/a.txt`);
  assert.deepEqual([file.type, file.size, 'target' in file], ['file', 6, false]);
  // Through a link in the middle of the path: the file at its end.
  symlinkSync(root, join(root, 'up'));
  assert.equal((await host.call(FileSystem.stat, `${root}/up/a.txt`)).type, 'file');
  assert.equal((await host.call(FileSystem.stat, `${root}/up`)).type, 'symlink');
  assert.equal((await host.call(FileSystem.stat, `${root}/up/`)).type, 'directory', 'a final / follows the link, as lstat does');
  await assert.rejects(host.call(FileSystem.stat, `${root}/to-secret`), (e: Error) => e instanceof DeniedError && /keys stay put/.test(e.message));
});

test('concurrent writeText calls to one path on one connection all succeed: each call has its own temporary file', async (t) => {
  const { host, root } = await local(t);
  mkdirSync(join(root, 'w'));
  const target = join(root, 'w/conc.txt');
  for (let round = 0; round < 3; round++) {
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => host.call(FileSystem.writeText, target, `writer ${round} ${i}\n`)));
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    assert.deepEqual(failed, [], `round ${round}`);
    assert.match(readFileSync(target, 'utf8'), new RegExp(`^writer ${round} \\d\\n$`));
  }
  assert.deepEqual(readdirSync(join(root, 'w')), ['conc.txt'], 'no temporary file is left');
});

test("a write that fails on its temporary file names that file, not the target", async (t) => {
  const { host, root } = await local(t);
  mkdirSync(join(root, 'w/imm'), { recursive: true });
  writeFileSync(join(root, 'w/imm/f.txt'), 'old\n');
  // An immutable directory: its files can be written, no file can be created in it (not even by root).
  execFileSync('chattr', ['+i', join(root, 'w/imm')]);
  try {
    await assert.rejects(host.call(FileSystem.writeText, join(root, 'w/imm/f.txt'), 'new\n'), (e: Error) => {
      assert.ok(e instanceof RemoteError, String(e));
      assert.equal(e.errno, 1);
      assert.match(e.message, new RegExp(`Operation not permitted: '${join(root, 'w/imm')}/\\.f\\.txt\\.remux-\\d+-[0-9a-f]+'$`));
      return true;
    });
  } finally {
    execFileSync('chattr', ['-i', join(root, 'w/imm')]);
  }
  assert.equal(readFileSync(join(root, 'w/imm/f.txt'), 'utf8'), 'old\n');
});

test('FileSystem.glob: ** never descends into a symlinked directory, so a tree with links back up ends at once; past the match cap it is an error', async (t) => {
  const { host, root } = await local(t);
  mkdirSync(join(root, 'w/g/d'), { recursive: true });
  // Two links back up: glob.glob's ** follows them, 2^40 paths before Python's path length stops it.
  symlinkSync('..', join(root, 'w/g/d/a'));
  symlinkSync('..', join(root, 'w/g/d/b'));
  writeFileSync(join(root, 'w/g/d/x.conf'), '');
  const g = `${root}/w/g`;
  const started = Date.now();
  assert.deepEqual(await host.callWith({ timeoutMs: 5000 }, FileSystem.glob, `${g}/**`), [`${g}/`, `${g}/d`, `${g}/d/a`, `${g}/d/b`, `${g}/d/x.conf`]);
  assert.deepEqual(await host.callWith({ timeoutMs: 5000 }, FileSystem.glob, `${g}/**/*.conf`), [`${g}/d/x.conf`]);
  // A * component follows a link, as everywhere.
  assert.deepEqual(await host.callWith({ timeoutMs: 5000 }, FileSystem.glob, `${g}/d/*/d/*.conf`), [`${g}/d/a/d/x.conf`, `${g}/d/b/d/x.conf`]);
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
  mkdirSync(join(root, 'w/many'));
  // 101 links to a directory of 1,000 files: 101,000 matches of many/*/l/*.
  for (let i = 0; i < 102; i++) mkdirSync(join(root, 'w/many', String(i)));
  for (let i = 0; i < 1000; i++) writeFileSync(join(root, 'w/many/0', String(i)), '');
  for (let i = 1; i < 102; i++) symlinkSync(join(root, 'w/many/0'), join(root, 'w/many', String(i), 'l'));
  await assert.rejects(host.call(FileSystem.glob, `${root}/w/many/*/*/*`), (e: Error) => e instanceof RemoteError && /more than 100000 matches; narrow the pattern/.test(e.message));
});

test('a cancelled or timed-out glob stops walking on the host: its interpreter is idle again at once', async (t) => {
  const { host, root } = await local(t);
  mkdirSync(join(root, 'w/g/d'), { recursive: true });
  symlinkSync('..', join(root, 'w/g/d/a'));
  symlinkSync('..', join(root, 'w/g/d/b'));
  // Each */d level doubles the walk through the two links: 2^30 directories, no match.
  const endless = `${root}/w/g/d${'/*/d'.repeat(30)}/nothing`;
  await assert.rejects(host.callWith({ timeoutMs: 300 }, FileSystem.glob, endless), CallTimeoutError);
  await idleSoon(host.hello.pid);
  const controller = new AbortController();
  const cancelled = host.callWith({ signal: controller.signal }, FileSystem.glob, endless);
  await sleep(300);
  controller.abort();
  await assert.rejects(cancelled);
  await idleSoon(host.hello.pid);
  assert.equal(await host.call(FileSystem.readText, `${root}/a.txt`), 'hello\n', 'the runtime goes on');
});

test('a timeoutMs that would end the call at once (0, negative, NaN, Infinity) or is no number is refused naming it; null is no limit', async (t) => {
  const { host, root } = await local(t);
  for (const timeoutMs of [0, -5, Number.NaN, Number.POSITIVE_INFINITY, '100' as unknown as number]) {
    const named = (e: Error) => e instanceof ArgumentError && e.message === `timeoutMs: milliseconds, more than 0 and at most 2147483647, or null for no limit; got ${typeof timeoutMs === 'number' ? timeoutMs : 'string'}`;
    await assert.rejects(host.callWith({ timeoutMs }, FileSystem.readText, `${root}/a.txt`), named);
    await assert.rejects(host.exec(['true'], {}, { timeoutMs }), named);
  }
  assert.equal(await host.callWith({ timeoutMs: null }, FileSystem.readText, `${root}/a.txt`), 'hello\n');
  assert.equal((await host.exec(['echo', 'on'], {}, { timeoutMs: null })).stdout, 'on\n');
});

test("a timeout that passes while the check asks the host (a stopped interpreter, as a hung file system would) is the call's timeout, not an unreachable host", async (t) => {
  const { host, root, audit } = await local(t);
  process.kill(host.hello.pid, 'SIGSTOP');
  t.after(() => process.kill(host.hello.pid, 'SIGCONT'));
  await assert.rejects(host.callWith({ timeoutMs: 300 }, FileSystem.readText, `${root}/a.txt`), (e: Error) => e instanceof CallTimeoutError && /^FileSystem\.readText: cannot resolve what it touches on localhost: .*no result within 300 ms/.test(e.message));
  await assert.rejects(host.exec(['uname'], {}, { timeoutMs: 300 }), (e: Error) => e instanceof CallTimeoutError && /^Exec: cannot resolve the command's paths on localhost: .*no result within 300 ms/.test(e.message));
  const records = audit.list().slice(-2);
  assert.deepEqual(records.map((r) => [r.begin.decision, r.end?.exitCode]), [['deny', 124], ['deny', 124]], 'audited: nothing ran, with the timeout\'s status');
});

test("an abort (Ctrl-C) while the check asks the host, or before it, ends the call with the caller's reason, audited as interrupted (130): not an unreachable host", async (t) => {
  const { host, root, audit } = await local(t);
  const interrupted = new Error('interrupted');
  // Already aborted: nothing is asked of the host.
  await assert.rejects(host.callWith({ signal: AbortSignal.abort(interrupted) }, FileSystem.readText, `${root}/a.txt`), (e: Error) => e === interrupted);
  await assert.rejects(host.exec(['uname'], {}, { signal: AbortSignal.abort(interrupted) }), (e: Error) => e === interrupted);
  // Aborted while the check waits for the host's answer (a stopped interpreter, as a slow one would).
  process.kill(host.hello.pid, 'SIGSTOP');
  t.after(() => process.kill(host.hello.pid, 'SIGCONT'));
  const controller = new AbortController();
  setTimeout(() => controller.abort(interrupted), 200);
  const err = await host.callWith({ signal: controller.signal }, FileSystem.readText, `${root}/elsewhere.txt`).catch((e: unknown) => e);
  assert.equal(err, interrupted);
  assert.equal(failureKind(err), 'failed', "fanout counts it as the call's failure, as an abort once the call runs");
  const records = audit.list().slice(-3);
  assert.deepEqual(records.map((r) => [r.begin.decision, r.end?.exitCode]), [['deny', 130], ['deny', 130], ['deny', 130]], "audited: nothing ran, with an interruption's status");
  assert.match(records[2]?.end?.error ?? '', /^FileSystem\.readText: cannot resolve what it touches on localhost: interrupted$/);
});

test("lineInFile's regexp that backtracks without end is stopped with its call (a timeout): the interpreter idle at once, nothing left searching", async (t) => {
  const { host, root } = await local(t);
  mkdirSync(join(root, 'w'));
  const conf = join(root, 'w/c');
  writeFileSync(conf, `${'a'.repeat(64)}!\n`);
  await assert.rejects(host.callWith({ timeoutMs: 1000 }, FileSystem.lineInFile, conf, 'x', { regexp: '^(a+)+$' }), CallTimeoutError);
  await idleSoon(host.hello.pid);
  const searching = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && (() => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('patterns, lines = json.load(sys.stdin)');
    } catch {
      return false;
    }
  })());
  assert.deepEqual(searching, [], 'no search process left');
  assert.equal(readFileSync(conf, 'utf8'), `${'a'.repeat(64)}!\n`, 'nothing written');
  const done = await host.callWith({ timeoutMs: 5000 }, FileSystem.lineInFile, conf, 'x', { regexp: '^a+!$' });
  assert.deepEqual([done.changed, readFileSync(conf, 'utf8')], [true, 'x\n'], 'the runtime goes on');
});

/** The interpreter `pid` uses (almost) no CPU within a second: the work of a stopped call ended. */
async function idleSoon(pid: number): Promise<void> {
  const ticks = (): number => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ').slice(11, 13).reduce((a, b) => a + Number(b), 0);
  await sleep(500);
  const before = ticks();
  await sleep(500);
  assert.ok(ticks() - before <= 5, `the interpreter used ${ticks() - before} ticks in the 500 ms after the call stopped`);
}

test('a path resolution kept for a moment never opens what was not checked: a link re-pointed, or a file swapped for a link', async (t) => {
  const { root, host } = await local(t);
  writeFileSync(join(root, 'other.txt'), 'other\n');
  symlinkSync(join(root, 'a.txt'), join(root, 'cur'));
  assert.equal(await host.call(FileSystem.readText, join(root, 'cur')), 'hello\n');
  // Within the moment the answer is kept: the link now leads to a denied file; the read stays on the checked one.
  rmSync(join(root, 'cur'));
  symlinkSync(join(root, 'secret/key'), join(root, 'cur'));
  assert.equal(await host.call(FileSystem.readText, join(root, 'cur')), 'hello\n');
  // The checked file itself replaced by a link to a denied one: the open refuses to follow it.
  assert.equal(await host.call(FileSystem.readText, join(root, 'other.txt')), 'other\n');
  rmSync(join(root, 'other.txt'));
  symlinkSync(join(root, 'secret/key'), join(root, 'other.txt'));
  await assert.rejects(host.call(FileSystem.readText, join(root, 'other.txt')), (e: Error) => e instanceof RemoteError && e.errno === 40);
  // Once it is asked again, the policy sees where the link leads.
  await sleep(1100);
  await assert.rejects(host.call(FileSystem.readText, join(root, 'cur')), DeniedError);
});

test('policy: denied reads, a symlink escape, writes outside the tree and a glob into a secret dir are refused and audited; nothing is sent', async (t) => {
  const { host, root, audit } = await local(t);
  await assert.rejects(host.call(FileSystem.readText, `${root}/secret/key`), (e: Error) => e instanceof DeniedError && /keys stay put/.test(e.message));
  symlinkSync(join(root, 'outside/passwd'), join(root, 'link'));
  await assert.rejects(host.call(FileSystem.readText, `${root}/link`), (e: Error) => e instanceof DeniedError && /not here/.test(e.message));
  await assert.rejects(host.call(FileSystem.writeText, `${root}/a.txt`, 'x'), DeniedError);
  assert.equal(readFileSync(join(root, 'a.txt'), 'utf8'), 'hello\n');
  await assert.rejects(host.call(FileSystem.readText, 'relative/path'), /must be absolute/);
  mkdirSync(join(root, 'w'));
  symlinkSync(join(root, 'secret'), join(root, 'w/sneaky'));
  await assert.rejects(host.call(FileSystem.glob, `${root}/w/*/*`), /in .*secret, which the policy does not let you list/);
  const denials = audit.list().filter((a) => a.begin.decision === 'deny');
  assert.ok(denials.length >= 4);
  const first = audit.list()[0];
  assert.equal(first?.begin.operation, 'read_file');
  assert.equal(first?.begin.command, 'FileSystem.readText');
  assert.equal(first?.begin.resource, `${root}/secret/key`);
});

test("policy: what readText and readBytes hand over gets the policy's redaction, as cat's output would", async (t) => {
  const { host, root } = await local(t);
  writeFileSync(join(root, 'env'), 'USER=bob\nSECRET=hunter2\n');
  assert.equal(await host.call(FileSystem.readText, `${root}/env`), 'USER=bob\n[REDACTED]\n');
  assert.equal((await host.call(FileSystem.readBytes, `${root}/env`)).toString(), 'USER=bob\n[REDACTED]\n');
});

test('policy: a part readBytes hands over (offset, length) is redacted as in the whole file: a start inside a key block or a cut through a secret hides it all', async (t) => {
  const redact = `[{ from: "^-----BEGIN PRIVATE KEY-----$", to: "^-----END PRIVATE KEY-----$" }, "(?i)apitoken\\\\s+\\\\S+"]`;
  const { host, root } = await local(t, `      - { operation: write_stdout, resource: { redact: ${redact} } }`);
  const pem = join(root, 'app.pem');
  const text = ['# app', '-----BEGIN PRIVATE KEY-----', 'MIIEvQIBADANBgkq', 'hkiG9w0BAQEFAASC', '-----END PRIVATE KEY-----', 'apitoken abc123', 'user app', ''].join('\n');
  writeFileSync(pem, text);
  const part = async (offset: number, length?: number): Promise<string> => (await host.call(FileSystem.readBytes, pem, { offset, ...(length === undefined ? {} : { length }) })).toString();
  const at = (s: string): number => text.indexOf(s);
  // Inside the block, past its BEGIN line: each line it touches is shown as the whole read shows it.
  assert.equal(await part(at('MIIE'), 20), '[REDACTED]\n[REDACTED]\n');
  assert.equal(await part(at('hkiG'), 4), '[REDACTED]\n');
  // A secret's line cut in two: neither half is handed over.
  assert.equal(await part(at('abc1'), 3), '[REDACTED]\n');
  assert.equal(await part(at('apitoken'), 11), '[REDACTED]\n');
  // Lines with nothing redacted are cut where asked; a read to the end shows the rest as a whole read does.
  assert.equal(await part(2, 3), 'app');
  assert.equal(await part(at('abc'), 11), '[REDACTED]\nuser');
  assert.equal(await part(at('hkiG')), '[REDACTED]\n[REDACTED]\n[REDACTED]\nuser app\n');
});

test("policy: a readBytes part of a line that began more than 64 KiB before it is [REDACTED] whole when a secret lies near (redaction's pieces cannot be cut from the line's start)", async (t) => {
  const { host, root } = await local(t, '      - { operation: write_stdout, resource: { redact: ["(?i)apitoken\\\\s+\\\\S+"] } }');
  const file = join(root, 'long.txt');
  const line = `${'x'.repeat(100_000)} apitoken abc123 tail\n`;
  writeFileSync(file, `# app\n${line}${'y'.repeat(200_000)}\n`);
  const part = async (offset: number, length: number): Promise<string> => (await host.call(FileSystem.readBytes, file, { offset, length })).toString();
  assert.equal(await part(6 + line.indexOf('apitoken') + 3, 10), '[REDACTED]');
  assert.equal(await part(6 + line.length + 150_000, 5), 'yyyyy');
});

test("policy: a diff an edit returns (writeText's, lineInFile's, Template.file's) gets the policy's redaction too", async (t) => {
  const { host, root } = await local(t);
  mkdirSync(join(root, 'w'));
  writeFileSync(join(root, 'w/env'), 'USER=bob\nSECRET=hunter2\n');
  const written = await host.call(FileSystem.writeText, `${root}/w/env`, 'USER=alice\nSECRET=hunter2\n', { diff: true });
  assert.match(written.diff ?? '', /^-USER=bob\n\+USER=alice\n \[REDACTED\]\n/m);
  assert.doesNotMatch(written.diff ?? '', /hunter2/);
  const edited = await host.call(FileSystem.lineInFile, `${root}/w/env`, 'SECRET=changed', { regexp: '^SECRET=' });
  assert.doesNotMatch(edited.diff, /hunter2|changed/);
  assert.match(edited.diff, /^-\[REDACTED\]\n\+\[REDACTED\]$/m);
  const templated = await host.call(Template.file, `${root}/w/env`, 'SECRET=${s}\n', { s: 'again' });
  assert.doesNotMatch(templated.diff, /changed|again/);
  assert.equal(readFileSync(join(root, 'w/env'), 'utf8'), 'SECRET=again\n', 'the file itself holds what was written');
});

test("policy: a diff is redacted as the file before and after would be read: a block's inner lines near a change and a ^-anchored secret behind a -/+ mark stay hidden", async (t) => {
  const redact = `[{ from: "^-----BEGIN PRIVATE KEY-----$", to: "^-----END PRIVATE KEY-----$" }, "^apitoken .*"]`;
  const { host, root } = await local(t, `      - { operation: write_stdout, resource: { redact: ${redact} } }`);
  mkdirSync(join(root, 'w'));
  const pem = join(root, 'w/app.pem');
  const body = Array.from({ length: 12 }, (_, i) => `body${i}`);
  const text = ['# app', '-----BEGIN PRIVATE KEY-----', ...body, '-----END PRIVATE KEY-----', 'apitoken abc123', 'user app', ''].join('\n');
  writeFileSync(pem, text);
  assert.doesNotMatch(await host.call(FileSystem.readText, pem), /body|abc123/, 'a read hides them');
  // One inner line replaced: its neighbours are context lines of the key, far below its BEGIN line.
  const edited = await host.call(FileSystem.lineInFile, pem, 'body6x', { regexp: '^body6$' });
  assert.doesNotMatch(edited.diff, /body|abc123/);
  assert.match(edited.diff, /^ \[REDACTED\]\n-\[REDACTED\]\n\+\[REDACTED\]\n \[REDACTED\]$/m);
  const near = await host.call(FileSystem.lineInFile, pem, 'user web', { regexp: '^user ' });
  assert.doesNotMatch(near.diff, /body|abc123/);
  assert.match(near.diff, /^ \[REDACTED\]\n-user app\n\+user web\n$/m);
  const rewritten = await host.call(FileSystem.writeText, pem, text.replace('body3', 'body3y').replace('apitoken abc123', 'apitoken def456'), { diff: true });
  assert.doesNotMatch(rewritten.diff ?? '', /body|abc123|def456/);
});

test('a diff shows 3 lines of context around each change, as diff -u (ranges, hunks apart or merged, a last line without a newline)', async (t) => {
  const { host, root } = await local(t);
  mkdirSync(join(root, 'w'));
  const file = join(root, 'w/long.conf');
  const lines = Array.from({ length: 40 }, (_, i) => `k${i}=${i}`);
  const cases: Array<[string, string]> = [
    [lines.join('\n') + '\n', lines.map((l, i) => (i === 20 ? 'k20=x' : l)).join('\n') + '\n'],
    [lines.join('\n') + '\n', ['new=1', ...lines.filter((_, i) => i !== 5 && i !== 13), 'end=1'].join('\n') + '\n'],
    [lines.join('\n') + '\n', lines.map((l, i) => (i === 2 || i === 9 ? `${l}!` : l)).join('\n')],
    ['a\nb', 'a\nc'],
    ['', 'a\n'],
  ];
  for (const [before, after] of cases) {
    writeFileSync(file, before);
    writeFileSync(`${file}.new`, after);
    const expected = execFileSync('sh', ['-c', 'diff -u "$1" "$2" | tail -n +3', 'sh', file, `${file}.new`]).toString();
    const r = await host.call(FileSystem.writeText, file, after, { diff: true });
    assert.equal(r.diff, `--- ${file}\n+++ ${file}\n${expected}`, JSON.stringify(after.slice(0, 40)));
  }
});

test('a diff is bounded: a file over 1 MiB or a change too costly to compare gets a note instead, at once; a long file keeps its diff', async (t) => {
  const { host, root } = await local(t);
  mkdirSync(join(root, 'w'));
  const file = join(root, 'w/big.conf');
  // 1.5 MiB of 64-byte lines, one of them changed: the diff had every line as context, up to the frame.
  const lines = Array.from({ length: 24_576 }, (_, i) => `${String(i).padStart(8, '0')} ${'x'.repeat(54)}`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  const big = await host.call(FileSystem.writeText, file, `${lines.map((l, i) => (i === 100 ? 'changed' : l)).join('\n')}\n`, { diff: true });
  assert.deepEqual(big, { changed: true, created: false, diff: '(diff left out: the file is 1.5 MiB, over the 1 MiB a diff is made for)\n' });
  assert.equal(readFileSync(file, 'utf8').split('\n')[100], 'changed', 'the write is done');
  // 10000 lines of 101 values, reversed: difflib spent 5 s of the host's CPU matching them.
  const repeated = Array.from({ length: 10_000 }, (_, i) => `v${i % 101}`);
  writeFileSync(file, `${repeated.join('\n')}\n`);
  const started = Date.now();
  const costly = await host.call(FileSystem.writeText, file, `${[...repeated].reverse().join('\n')}\n`, { diff: true });
  assert.deepEqual(costly, { changed: true, created: false, diff: '(diff left out: the 9998 lines from the first change to the last are too many, or too alike, to compare quickly)\n' });
  assert.ok(Date.now() - started < 3000, `the write took ${Date.now() - started} ms`);
  // 12000 lines (750 KiB) with one replaced: only the lines around the change are compared.
  writeFileSync(file, `${lines.slice(0, 12_000).join('\n')}\n`);
  writeFileSync(`${file}.new`, `${lines.slice(0, 12_000).map((l, i) => (i === 6000 ? 'middle' : l)).join('\n')}\n`);
  const expected = execFileSync('sh', ['-c', 'diff -u "$1" "$2" | tail -n +3', 'sh', file, `${file}.new`]).toString();
  const edited = await host.call(FileSystem.lineInFile, file, 'middle', { regexp: `^${lines[6000] as string}$` });
  assert.equal(edited.diff, `--- ${file}\n+++ ${file}\n${expected}`);
});

test('FileSystem.writeText: an owner and group by name or number, converged on an unchanged file; a diff only when asked, checked as a read', async (t) => {
  const { host, root, audit } = await local(t, '      - { operation: write_file, resource: "/**/secret/**" }');
  mkdirSync(join(root, 'w'));
  const target = join(root, 'w/owned');
  const nobody = Number(execFileSync('id', ['-u', 'nobody']).toString());
  const nogroup = Number(execFileSync('getent', ['group', 'nogroup']).toString().split(':')[2]);
  assert.deepEqual(await host.call(FileSystem.writeText, target, 'x\n', { owner: 'nobody', group: 'nogroup', mode: 0o640 }), { changed: true, created: true });
  assert.deepEqual([statSync(target).uid, statSync(target).gid, statSync(target).mode & 0o777], [nobody, nogroup, 0o640]);
  assert.deepEqual(await host.call(FileSystem.writeText, target, 'x\n', { owner: String(nobody), group: String(nogroup) }), { changed: false, created: false }, 'the same owner by number');
  assert.deepEqual(await host.call(FileSystem.writeText, target, 'x\n', { owner: 'root' }), { changed: true, created: false }, 'only the owner differs');
  assert.deepEqual([statSync(target).uid, statSync(target).gid, statSync(target).mode & 0o777], [0, nogroup, 0o640], 'group and mode kept');
  await assert.rejects(host.call(FileSystem.writeText, target, 'y\n', { owner: 'no-such-user-remux' }), (e: Error) => e instanceof RemoteError && e.type === 'LookupError' && /no user named 'no-such-user-remux' on this host/.test(e.message));
  assert.equal(readFileSync(target, 'utf8'), 'x\n', 'an unknown owner writes nothing');
  assert.deepEqual(await host.call(FileSystem.writeText, target, 'x\ny\n', { diff: true }), { changed: true, created: false, diff: `--- ${target}\n+++ ${target}\n@@ -1 +1,2 @@\n x\n+y\n` });
  assert.deepEqual(await host.call(FileSystem.writeText, target, 'x\ny\n', { diff: true }), { changed: false, created: false, diff: '' });
  // Writing the secret directory is allowed, reading it is not: its diff would show what it held.
  writeFileSync(join(root, 'secret/conf'), 'old\n');
  await assert.rejects(host.call(FileSystem.writeText, join(root, 'secret/conf'), 'new\n', { diff: true }), (e: Error) => e instanceof DeniedError && /returns a diff of what .*secret\/conf held, and the policy does not let you read it: .*keys stay put/.test(e.message));
  assert.equal(readFileSync(join(root, 'secret/conf'), 'utf8'), 'old\n');
  assert.deepEqual(await host.call(FileSystem.writeText, join(root, 'secret/conf'), 'new\n'), { changed: true, created: false }, 'without a diff it is a write alone');
  assert.equal(audit.list().filter((a) => a.begin.command === 'FileSystem.writeText' && a.begin.decision === 'deny').length, 1);
});

test('FileSystem.lineInFile: added, found, replaced by regexp, placed after or before a match, removed; idempotent, atomic, with a diff', async (t) => {
  const { host, root } = await local(t);
  mkdirSync(join(root, 'w'));
  const conf = join(root, 'w/sshd_config');
  writeFileSync(conf, '# top\nPort 22\nPermitRootLogin yes\nInclude /etc/x\n');
  const edit = (line: string, o: Parameters<typeof FileSystem.lineInFile.operations>[0][2] = {}) => host.call(FileSystem.lineInFile, conf, line, o);
  const replaced = await edit('PermitRootLogin no', { regexp: '^#?PermitRootLogin\\b' });
  assert.deepEqual([replaced.changed, replaced.created], [true, false]);
  assert.match(replaced.diff, /^-PermitRootLogin yes\n\+PermitRootLogin no$/m);
  assert.deepEqual(await edit('PermitRootLogin no', { regexp: '^#?PermitRootLogin\\b' }), { changed: false, created: false, diff: '' }, 'a second run changes nothing');
  assert.equal((await edit('Port 22')).changed, false, 'a line the file has is found');
  assert.equal((await edit('PasswordAuthentication no', { insertAfter: '^Port ' })).changed, true);
  assert.equal((await edit('AllowUsers deploy', { insertBefore: '^Include ' })).changed, true);
  assert.equal((await edit('UseDNS no')).changed, true);
  assert.equal(readFileSync(conf, 'utf8'), '# top\nPort 22\nPasswordAuthentication no\nPermitRootLogin no\nAllowUsers deploy\nInclude /etc/x\nUseDNS no\n');
  assert.equal((await edit('', { regexp: '^Allow', state: 'absent' })).changed, true);
  assert.equal((await edit('UseDNS no', { state: 'absent' })).changed, true);
  assert.deepEqual(await edit('UseDNS no', { state: 'absent' }), { changed: false, created: false, diff: '' });
  assert.equal(readFileSync(conf, 'utf8'), '# top\nPort 22\nPasswordAuthentication no\nPermitRootLogin no\nInclude /etc/x\n');
  // A missing file: an error unless create; absent on it changes nothing.
  const fresh = join(root, 'w/fresh.conf');
  await assert.rejects(host.call(FileSystem.lineInFile, fresh, 'a=1'), (e: Error) => e instanceof RemoteError && e.type === 'FileNotFoundError' && /create: true makes it/.test(e.message));
  assert.deepEqual(await host.call(FileSystem.lineInFile, fresh, 'a=1', { state: 'absent' }), { changed: false, created: false, diff: '' });
  const created = await host.call(FileSystem.lineInFile, fresh, 'a=1', { create: true, mode: 0o600 });
  assert.deepEqual([created.changed, created.created, readFileSync(fresh, 'utf8'), statSync(fresh).mode & 0o777], [true, true, 'a=1\n', 0o600]);
  // An unchanged file keeps its bytes (CRLF line ends, no final newline); an edit of its last line adds one.
  writeFileSync(fresh, 'a=1\r\nb=2');
  assert.equal((await host.call(FileSystem.lineInFile, fresh, 'b=2')).changed, false);
  assert.equal(readFileSync(fresh, 'utf8'), 'a=1\r\nb=2');
  writeFileSync(fresh, 'a=1\nb=2');
  await host.call(FileSystem.lineInFile, fresh, 'a=0', { regexp: '^a=' });
  assert.equal(readFileSync(fresh, 'utf8'), 'a=0\nb=2', 'no newline added where the last line is as it was');
  await host.call(FileSystem.lineInFile, fresh, 'c=3');
  assert.equal(readFileSync(fresh, 'utf8'), 'a=0\nb=2\nc=3\n');
});

test('FileSystem.lineInFile refuses a bad regular expression, a line with a line break and an unknown state before writing; checked as write_file and read_file', async (t) => {
  const { host, root } = await local(t, '      - { operation: write_file, resource: "/**/secret/**" }');
  mkdirSync(join(root, 'w'));
  const conf = join(root, 'w/c');
  writeFileSync(conf, 'a\n');
  await assert.rejects(host.call(FileSystem.lineInFile, conf, 'b', { regexp: '(' }), (e: Error) => e instanceof RemoteError && e.type === 'ValueError' && /regexp '\(' is not a Python regular expression/.test(e.message));
  await assert.rejects(host.call(FileSystem.lineInFile, conf, 'b\nc'), (e: Error) => e instanceof ArgumentError && /line: one line, without a line break/.test(e.message));
  const js = host as unknown as { call(m: unknown, ...a: unknown[]): Promise<unknown> };
  await assert.rejects(js.call(FileSystem.lineInFile, conf, 'b', { state: 'gone' }), (e: Error) => e instanceof ArgumentError && /option state: present or absent, got "gone"/.test(e.message));
  assert.equal(readFileSync(conf, 'utf8'), 'a\n');
  await assert.rejects(host.call(FileSystem.lineInFile, `${root}/a.txt`, 'b'), (e: Error) => e instanceof DeniedError && /write_file/.test(e.message));
  writeFileSync(join(root, 'secret/conf'), 'k=1\n');
  await assert.rejects(host.call(FileSystem.lineInFile, join(root, 'secret/conf'), 'k=2', { regexp: '^k=' }), (e: Error) => e instanceof DeniedError && /keys stay put/.test(e.message));
  assert.equal(readFileSync(join(root, 'secret/conf'), 'utf8'), 'k=1\n');
});

test('FileSystem.ensureDirectory: made with its mode and owner, converged, idempotent; parents each checked as a write; never through a symlink', async (t) => {
  const { host, root, audit } = await local(t);
  mkdirSync(join(root, 'w'));
  const dir = join(root, 'w/data');
  assert.deepEqual(await host.call(FileSystem.ensureDirectory, dir), { changed: true });
  assert.equal(statSync(dir).mode & 0o7777, 0o755);
  assert.deepEqual(await host.call(FileSystem.ensureDirectory, dir), { changed: false });
  assert.deepEqual(await host.call(FileSystem.ensureDirectory, dir, { mode: 0o2770, group: 'nogroup' }), { changed: true });
  assert.deepEqual([statSync(dir).mode & 0o7777, statSync(dir).gid], [0o2770, Number(execFileSync('getent', ['group', 'nogroup']).toString().split(':')[2])]);
  assert.deepEqual(await host.call(FileSystem.ensureDirectory, dir, { mode: 0o2770 }), { changed: false });
  await assert.rejects(host.call(FileSystem.ensureDirectory, join(root, 'w/a/b/c')), (e: Error) => e instanceof RemoteError && e.type === 'FileNotFoundError' && /parents: true makes them/.test(e.message));
  assert.deepEqual(await host.call(FileSystem.ensureDirectory, join(root, 'w/a/b/c'), { parents: true }), { changed: true });
  assert.ok(statSync(join(root, 'w/a/b/c')).isDirectory());
  const record = audit.list().at(-1);
  assert.equal(record?.begin.resource, ['w/a', 'w/a/b', 'w/a/b/c'].map((p) => join(root, p)).join(' '), 'each directory made is checked and recorded');
  // A missing directory above it outside what the policy lets the caller write: nothing is made.
  await assert.rejects(host.call(FileSystem.ensureDirectory, join(root, 'x/y'), { parents: true }), (e: Error) => e instanceof DeniedError && new RegExp(`write_file .*${root}/x\\b`).test(e.message));
  await assert.rejects(host.call(FileSystem.ensureDirectory, 'w/a/b', { parents: true }), (e: Error) => e instanceof ArgumentError && /^FileSystem\.ensureDirectory: path: an absolute path is needed, got "w\/a\/b"$/.test(e.message));
  assert.equal(existsSync(join(root, 'x')), false);
  // A file in the way, and a symlink into a directory the policy does not let the caller write.
  writeFileSync(join(root, 'w/file'), '');
  await assert.rejects(host.call(FileSystem.ensureDirectory, join(root, 'w/file')), (e: Error) => e instanceof RemoteError && e.type === 'NotADirectoryError');
  symlinkSync(join(root, 'outside'), join(root, 'w/out'));
  await assert.rejects(host.call(FileSystem.ensureDirectory, join(root, 'w/out/made')), DeniedError);
  await assert.rejects(host.call(FileSystem.ensureDirectory, join(root, 'w/out')), (e: Error) => e instanceof DeniedError && /is a symlink/.test(e.message));
  assert.equal(existsSync(join(root, 'outside/made')), false);
});

test('ensureDirectory with parents: a caller who may not write the path is refused alike whichever directories above it exist (the host is asked only after that check)', async (t) => {
  const { host, root, audit } = await local(t);
  mkdirSync(join(root, 'secret/a/b'), { recursive: true });
  const refusal = async (path: string): Promise<string> => {
    const err = await host.call(FileSystem.ensureDirectory, path, { parents: true }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof DeniedError, String(err));
    return err.message;
  };
  // secret/a/b exists, secret/x does not: the words differ only by the path asked about.
  const existing = await refusal(join(root, 'secret/a/b/c/d'));
  const missing = await refusal(join(root, 'secret/x/y/c/d'));
  assert.equal(missing, existing.replaceAll('/a/b/', '/x/y/'));
  assert.match(existing, new RegExp(`${root}/secret/a/b/c/d`), 'the refusal names the path itself, not the first missing directory');
  const resources = audit.list().slice(-2).map((a) => a.begin.resource);
  assert.deepEqual(resources, [join(root, 'secret/a/b/c/d'), join(root, 'secret/x/y/c/d')], 'nor does the audit say which were missing');
});

test("ensureDirectory sets mode and owner on the directory it opened: a program swapped in for it meanwhile never gets them (a set-ID bit, root's)", async (t) => {
  const { host, root } = await local(t);
  mkdirSync(join(root, 'w/d'), { recursive: true });
  const prog = join(root, 'w/prog');
  writeFileSync(prog, '#!/bin/sh\nid\n', { mode: 0o755 });
  execFileSync('chown', ['nobody', prog]);
  // The caller's own program and the directory trade places (renameat2 RENAME_EXCHANGE) as fast as they can.
  const exchange = 'import ctypes, sys\nlibc = ctypes.CDLL(None)\nd, p = (a.encode() for a in sys.argv[1:])\nwhile libc.renameat2(-100, d, -100, p, 2) == 0:\n    pass';
  const swapper = spawn('python3', ['-c', exchange, join(root, 'w/d'), prog], { stdio: 'ignore' });
  // Stopped before the test's directory is removed (t.after), which it would keep changing.
  const stopped = new Promise((done) => swapper.once('exit', done));
  const stop = (): Promise<unknown> => (swapper.kill('SIGKILL'), stopped);
  const progMode = (): { mode: number; uid: number } => {
    for (const at of [prog, join(root, 'w/d'), prog]) {
      const s = statSync(at);
      if (s.isFile()) return { mode: s.mode & 0o7777, uid: s.uid };
    }
    return progMode();
  };
  let converged = 0;
  try {
    for (let i = 0; i < 2000; i++) {
      // A call that finds the program at the name fails (not a directory); one that finds the directory converges it.
      const r = await host.call(FileSystem.ensureDirectory, join(root, 'w/d'), i % 2 === 0 ? { mode: 0o6755, owner: 'root' } : { mode: 0o755, owner: 'nobody' }).catch(() => null);
      if (r) converged++;
      const p = progMode();
      assert.deepEqual([p.mode, p.uid === 0], [0o755, false], `after call ${i}: the program is as it was`);
    }
    assert.equal(swapper.exitCode, null, 'the swapping went on throughout');
    assert.ok(converged > 0, 'some calls found the directory');
  } finally {
    await stop();
  }
});

test('FileSystem reads larger than a frame come in chunks under flow control: bytes intact, a character split between pieces decoded whole, parts by offset and length', async (t) => {
  const { host, root } = await local(t);
  // 40 MiB: more than two frames' worth; every byte value, at offsets no piece boundary lines up with.
  const bytes = Buffer.alloc(40 << 20);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 13)) & 0xff;
  writeFileSync(join(root, 'big.bin'), bytes);
  assert.ok((await host.call(FileSystem.readBytes, join(root, 'big.bin'))).equals(bytes));
  assert.ok((await host.call(FileSystem.readBytes, join(root, 'big.bin'), { offset: 3 << 20, length: 5 })).equals(bytes.subarray(3 << 20, (3 << 20) + 5)));
  assert.ok((await host.call(FileSystem.readBytes, join(root, 'big.bin'), { offset: (40 << 20) - 3 })).equals(bytes.subarray(-3)));
  assert.equal((await host.call(FileSystem.readBytes, join(root, 'big.bin'), { offset: 50 << 20 })).length, 0, 'past the end: nothing');
  // Three-byte characters after one ASCII byte: every 1 MiB piece boundary falls inside one.
  const text = `x${'€'.repeat(7 << 20)}SECRET=hunter2\n`;
  writeFileSync(join(root, 'big.txt'), text);
  const read = await host.call(FileSystem.readText, join(root, 'big.txt'));
  assert.equal(read.length, text.length - 'SECRET=hunter2'.length + '[REDACTED]'.length);
  assert.equal(read, text.replace('SECRET=hunter2', '[REDACTED]'), 'decoded whole, and redacted as one');
});

test('a read of more than READ_MAX (256 MiB) is refused on the host, naming the size and the way to read it in parts', async (t) => {
  const { host, root } = await local(t);
  const sparse = join(root, 'sparse');
  writeFileSync(sparse, '');
  execFileSync('truncate', ['-s', '300M', sparse]);
  for (const read of [() => host.call(FileSystem.readBytes, sparse), () => host.call(FileSystem.readText, sparse)]) {
    await assert.rejects(read(), (e: Error) => e instanceof RemoteError && e.type === 'OSError' && e.errno === 27 && /314572800 bytes, more than the 256 MiB one read hands over; read it in parts \(readBytes with offset and length\)/.test(e.message));
  }
  assert.equal((await host.call(FileSystem.readBytes, sparse, { offset: 299 << 20 })).length, 1 << 20);
  await assert.rejects(host.call(FileSystem.readBytes, sparse, { offset: -1 }), (e: Error) => e instanceof RemoteError && e.type === 'ValueError');
});

test('a /proc file (its size says 0) is read whole, and in parts by offset and length', async (t) => {
  const { host } = await local(t, '      - { operation: read_file, resource: "/proc/version|/proc/meminfo" }');
  const version = readFileSync('/proc/version');
  assert.ok(version.length > 0);
  assert.equal(await host.call(FileSystem.readText, '/proc/version'), version.toString());
  assert.ok((await host.call(FileSystem.readBytes, '/proc/version')).equals(version));
  assert.ok((await host.call(FileSystem.readBytes, '/proc/version', { offset: 2, length: 5 })).equals(version.subarray(2, 7)));
  assert.match(await host.call(FileSystem.readText, '/proc/meminfo'), /^MemTotal: /);
});

test("policy: a path into the interpreter's own /proc entry (/proc/self, a link to it, /dev/stdin) is refused, not resolved as the interpreter's", async (t) => {
  const { host, root } = await local(t);
  symlinkSync('/proc/self/cwd', join(root, 'to-self'));
  for (const path of [`${root}/to-self/a.txt`, '/proc/self/status', '/dev/stdin']) {
    await assert.rejects(host.call(FileSystem.readText, path), (e: Error) => e instanceof DeniedError && /leads into the running program's own \/proc entry/.test(e.message), path);
  }
  assert.equal(await host.call(FileSystem.readText, `${root}/a.txt`), 'hello\n');
});

test('audit: an allowed call is recorded before it runs and completed with its outcome', async (t) => {
  const { host, root, audit } = await local(t);
  await host.call(FileSystem.readText, `${root}/a.txt`);
  await assert.rejects(host.call(FileSystem.readText, `${root}/gone`));
  await host.exec(['echo', 'hi']);
  const [read, missing, exec] = audit.list();
  assert.deepEqual([read?.begin.operation, read?.begin.decision, read?.begin.resource, read?.end?.exitCode, read?.end?.bytesOut], ['read_file', 'allow', `${root}/a.txt`, 0, 6]);
  assert.match(missing?.end?.error ?? '', /FileNotFoundError/);
  assert.deepEqual([exec?.begin.operation, exec?.begin.argv, exec?.end?.exitCode, exec?.end?.bytesOut], ['exec', ['echo', 'hi'], 0, 3]);
});

test('audit: a write records its mode and owner, and its content (a line too) by size only; a template its variables by name, never their values', async (t) => {
  const { host, root, audit } = await local(t);
  mkdirSync(join(root, 'w'));
  await host.call(FileSystem.writeText, `${root}/w/f`, 'SECRET=x\n', { mode: 0o640, owner: 'root' });
  await host.call(Template.file, `${root}/w/t`, 'pw=${password}\n', { password: 'hunter2', port: 1 }, { mode: 0o600 });
  await host.call(Template.render, 'x', {});
  await host.call(FileSystem.lineInFile, `${root}/w/f`, 'PASSWORD=hunter2', { regexp: '^PASSWORD=', insertAfter: '^SECRET=', mode: 0o600 });
  const [write, file, render, line] = audit.list().map((a) => a.begin.argv);
  assert.deepEqual(write, ['FileSystem.writeText', `${root}/w/f`, '<9 bytes>', '--mode', '0640', '--owner', 'root']);
  assert.deepEqual(file, ['Template.file', `${root}/w/t`, '<15 bytes>', '--mode', '0600', '--vars', 'password,port']);
  assert.deepEqual(render, ['Template.render', '<1 bytes>']);
  assert.deepEqual(line, ['FileSystem.lineInFile', `${root}/w/f`, '<16 bytes>', '--regexp', '^PASSWORD=', '--insert-after', '^SECRET=', '--mode', '0600']);
  assert.equal(readFileSync(`${root}/w/f`, 'utf8'), 'SECRET=x\nPASSWORD=hunter2\n');
  assert.doesNotMatch(JSON.stringify(audit.list()), /hunter2/);
});

test('audit: a call that only reads is begun while it reads and handed over once recorded; a call that changes anything is begun durably before it is sent', async (t) => {
  const { host, root, audit } = await local(t);
  await host.call(FileSystem.readText, `${root}/a.txt`);
  const commits = (): number => audit.writeStats().transactions;
  let before = commits();
  assert.equal(await host.call(FileSystem.readText, `${root}/a.txt`), 'hello\n');
  assert.equal(commits() - before, 1, 'its begin (with the last call\'s end) by the time the value is handed over; its end queued');
  assert.deepEqual(audit.list().at(-1)?.end?.exitCode, 0, 'complete for a reader: it writes what is queued first');
  assert.equal(commits() - before, 2);
  before = commits();
  await assert.rejects(host.call(FileSystem.readText, `${root}/gone`), RemoteError);
  assert.equal(commits() - before, 1);
  assert.match(audit.list().at(-1)?.end?.error ?? '', /FileNotFoundError/);

  mkdirSync(join(root, 'w'));
  before = commits();
  await host.call(FileSystem.writeText, `${root}/w/x.txt`, 'x\n');
  assert.equal(commits() - before, 1, 'a write: its begin committed alone, before the call');
  // While a command runs, its begin is already in the store.
  const running = host.exec(['sleep', '0.3']);
  await new Promise((r) => setTimeout(r, 150));
  const open = audit.list().at(-1);
  assert.deepEqual([open?.begin.argv, open?.end], [['sleep', '0.3'], null]);
  assert.equal((await running).code, 0);

  // A read whose record cannot be written is not handed over.
  audit.close();
  await assert.rejects(host.call(FileSystem.readText, `${root}/a.txt`), /audit store is closed/);
});

test('Exec: argv without a shell, output captured; a program the policy does not allow is refused, nested ones too', async (t) => {
  const { host } = await local(t);
  const r = await host.exec(['sh', '-c', 'echo out; cat nonexistent-remux']);
  assert.deepEqual([r.code, r.stdout, r.truncated], [1, 'out\n', false]);
  assert.match(r.stderr, /nonexistent-remux/);
  assert.equal((await host.exec(['echo', '$HOME;', 'ls'])).stdout, '$HOME; ls\n', 'no shell: metacharacters are plain words');
  assert.equal((await host.exec(['cat'], { input: 'fed\n' })).stdout, 'fed\n');
  await assert.rejects(host.exec(['rm', '-rf', '/tmp/x']), (e: Error) => e instanceof DeniedError && /rm/.test(e.message));
  await assert.rejects(host.exec(['sh', '-c', 'echo a; rm -rf /tmp/x']), DeniedError, 'a nested command is checked like client run does');
});

test('Exec output goes through the output limits of the policy: secrets redacted, an endless output cut and its command stopped, audited as client run audits that', async (t) => {
  const { host, audit, context } = await local(t);
  assert.equal((await host.exec(['echo', 'token', 'SECRET=hunter2', 'end'])).stdout, 'token [REDACTED] end\n');
  const started = Date.now();
  const r = await host.exec(['yes']);
  assert.equal(r.truncated, true);
  assert.equal(r.stdout.length, 100000);
  // The call answers how the command ended, as its record says.
  assert.deepEqual([r.code, r.signal], [null, osConstants.signals.SIGTERM]);
  assert.ok(Date.now() - started < 5000);
  // Stopped as the executors stop a command at the cap (TERM to its group): its status is what that left.
  const stopped = audit.list().at(-1)?.end;
  assert.deepEqual([stopped?.exitCode, stopped?.signal, stopped?.truncated, stopped?.timedOut, stopped?.error], [143, 'SIGTERM', true, false, null]);
  // perform (client run) records its own stop at the cap alike: the status the signal left, no error.
  const performed = await perform(context, { kind: 'exec', host: 'localhost', command: 'yes' }, { onStdout: () => {}, onStderr: () => {} });
  assert.equal(performed.outcome, 'truncated');
  const end = audit.list().at(-1)?.end;
  assert.deepEqual([end?.exitCode, end?.truncated, end?.timedOut, end?.error], [128 + (osConstants.signals[end?.signal as NodeJS.Signals] ?? NaN), true, false, null]);
});

test('under a policy that sandboxes commands, Exec runs in the OS sandbox on the host, as client run does: checked, audited, streamed', async (t) => {
  const s = setup(t, '  boxed:\n    capabilities:\n      - { operation: execute_binary, resource: "true|cat|ls" }\n      - { operation: read_file, resource: "/proc/**" }\n      - { operation: write_stdout }\n');
  const host = await connect('localhost', { context: s.context, policy: 'boxed' });
  t.after(() => host.close());
  // PID 1 there is the sandbox's own init, not this machine's.
  const inside = await host.exec(['cat', '/proc/1/comm']);
  assert.equal(inside.code, 0, inside.stderr);
  assert.notEqual(inside.stdout, readFileSync('/proc/1/comm', 'utf8'));
  assert.deepEqual(await host.exec(['cat'], { input: 'through stdin\n' }), { code: 0, signal: null, truncated: false, stdout: 'through stdin\n', stderr: '' });
  // What the policy does not grant is refused before anything runs; a program's failure is its status.
  await assert.rejects(host.exec(['uname']), (e: Error) => e instanceof DeniedError && /execute_binary \S*uname: no rule of policy boxed/.test(e.message));
  // A tool method that runs a program runs it in the runtime itself, which no sandbox holds: refused.
  await assert.rejects(host.call(Service.start, 'nginx'), (e: Error) => e instanceof DeniedError && e.message === 'policy boxed runs commands in the OS sandbox, but Service.start runs systemctl on localhost itself, outside it; call it under a policy with sandbox: false');
  const missing = await host.exec(['cat', '/proc/nonexistent-remux']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nonexistent-remux/);
  const records = s.audit.list().filter((a) => a.begin.operation === 'exec');
  assert.deepEqual(records.map((a) => [a.begin.operation, a.begin.command, a.begin.decision, a.end?.exitCode]), [
    ['exec', 'cat /proc/1/comm', 'allow', 0],
    ['exec', 'cat', 'allow', 0],
    ['exec', 'uname', 'deny', 77],
    ['exec', 'cat /proc/nonexistent-remux', 'allow', 1],
  ]);
});

test('under a policy that sandboxes commands, Exec stopped at the output cap ends as it does without one: SIGTERM, truncated, in its answer and its record', async (t) => {
  const s = setup(t, '  boxed:\n    capabilities:\n      - { operation: execute_binary, resource: "yes" }\n      - { operation: write_stdout, resource: { max_bytes: 100000 } }\n');
  const host = await connect('localhost', { context: s.context, policy: 'boxed' });
  t.after(() => host.close());
  const r = await host.exec(['yes']);
  assert.deepEqual([r.code, r.signal, r.truncated, r.stdout.length], [null, osConstants.signals.SIGTERM, true, 100000]);
  const end = s.audit.list().at(-1)?.end;
  assert.deepEqual([end?.exitCode, end?.signal, end?.truncated, end?.error], [143, 'SIGTERM', true, null]);
});

test('a runtime on a process\'s own pipes cannot sandbox what it starts: Exec under a sandboxing policy is refused there', async (t) => {
  const s = setup(t, '  boxed:\n    capabilities:\n      - { operation: execute_binary, resource: "true" }\n');
  const argv = stage0Argv();
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const host = await connectStreams(child.stdin, child.stdout, 'piped', { context: s.context, policy: 'boxed', stderr: child.stderr });
  t.after(() => host.close());
  await assert.rejects(host.exec(['true']), (e: Error) => e instanceof DeniedError && /OS sandbox, which a runtime on a process's own pipes cannot provide on piped/.test(e.message));
});

test('the local interpreter and its commands see the secure PATH and none of our secrets', async (t) => {
  process.env.REMUX_TOKEN = 'rmx_secret_token';
  t.after(() => delete process.env.REMUX_TOKEN);
  const { host } = await local(t);
  const env = (await host.exec(['env'])).stdout;
  assert.doesNotMatch(env, /rmx_secret_token/);
  assert.match(env, /^PATH=\/usr\/local\/sbin:/m);
});

test('Exec.stream: chunks arrive while the command still runs', async (t) => {
  const { host } = await local(t);
  const started = Date.now();
  const stream = host.stream(['sh', '-c', 'echo first; sleep 1; echo second']);
  const seen: Array<[string, number]> = [];
  for await (const c of stream) seen.push([c.data.toString(), Date.now() - started]);
  assert.deepEqual(seen.map(([d]) => d), ['first\n', 'second\n']);
  assert.ok((seen[0]?.[1] ?? 0) < 800, 'the first chunk came before the command ended');
  assert.equal((await stream.result).code, 0);
});

/** The pid of the process whose argv is exactly `argv`, once it runs. */
async function pidOf(argv: string[]): Promise<number> {
  const want = argv.join('\0') + '\0';
  for (let i = 0; i < 100; i++) {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readFileSync(`/proc/${entry}/cmdline`, 'utf8') === want) return Number(entry);
      } catch {
        // gone meanwhile
      }
    }
    await sleep(50);
  }
  throw new Error(`no process ${argv.join(' ')}`);
}

/** Bytes a process has written so far (/proc/PID/io wchar). */
const written = (pid: number): number => Number(/^wchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1]);

test('Exec.stream backpressure: a consumer that stops taking chunks pauses the command on the host; taking them resumes it', async (t) => {
  const flow = '  flow:\n    sandbox: false\n    capabilities:\n      - { operation: execute_binary, resource: "yes" }\n      - { operation: write_stdout }\n';
  const { context } = setup(t, flow);
  const host = await connect('localhost', { context, policy: 'flow' });
  t.after(() => host.close());
  const word = `remux-flow-${process.pid}`;
  const stop = new AbortController();
  const stream = host.stream(['yes', word], {}, { signal: stop.signal });
  const chunks = stream[Symbol.asyncIterator]();
  await chunks.next();
  const pid = await pidOf(['yes', word]);
  // Not consumed for a while: the output waiting here stays bounded and `yes` stops writing (its pipe is full).
  await sleep(500);
  const paused = written(pid);
  await sleep(500);
  assert.equal(written(pid), paused, 'yes went on writing while nobody read');
  const waiting = (stream as unknown as { bufferedBytes: number }).bufferedBytes;
  assert.ok(waiting <= 512 * 1024, `${waiting} bytes wait here`);
  // Taking chunks again lets it go on.
  let taken = 0;
  while (taken < 4 << 20) taken += ((await chunks.next()).value as { data: Buffer }).data.length;
  assert.ok(written(pid) > paused + (2 << 20), 'yes wrote on once its output was taken');
  stop.abort();
  await assert.rejects(stream.result);
  await chunks.return?.();
  // A stream nobody reads still ends with its timeout, and is audited.
  const unread = host.stream(['yes', word], {}, { timeoutMs: 500 });
  await assert.rejects(unread.result, CallTimeoutError);
  const records = context.audit.list().filter((a) => a.begin.argv?.join(' ') === `yes ${word}`);
  assert.deepEqual(records.map((a) => a.end?.timedOut).sort(), [false, true]);
});

test('cancellation and timeouts stop the work on the host: the whole process group is killed', async (t) => {
  const { host, audit } = await local(t);
  const controller = new AbortController();
  const cancelled = host.exec(['sh', '-c', 'sleep 61.25; echo never'], {}, { signal: controller.signal });
  const child = await pidOf(['sleep', '61.25']);
  controller.abort();
  await assert.rejects(cancelled);
  assert.ok(await gone(child, 3000), `the grandchild sleep ${child} was killed`);

  const started = Date.now();
  const timed = host.exec(['sh', '-c', 'sleep 62.25; echo never'], {}, { timeoutMs: 700 });
  const other = await pidOf(['sleep', '62.25']);
  await assert.rejects(timed, (e: Error) => e instanceof CallTimeoutError && e.message === "Exec sh -c 'sleep 62.25; echo never': no result within 700 ms; the host was told to stop it");
  assert.ok(Date.now() - started < 3000);
  assert.ok(await gone(other, 3000), `the timed-out sleep ${other} was killed`);
  const last = audit.list().at(-1);
  assert.equal(last?.end?.timedOut, true);
});

test('a stream abandoned by its consumer (a break out of for await, or return()) cancels the call: the command is killed, its record closed', async (t) => {
  const { host, audit } = await local(t);
  const broken = host.stream(['sh', '-c', 'echo start; sleep 63.25; echo never']);
  let first = 0;
  for await (const chunk of broken) {
    assert.equal(chunk.data.toString(), 'start\n');
    first = await pidOf(['sleep', '63.25']);
    break;
  }
  assert.ok(await gone(first, 3000), `the sleep ${first} was killed`);
  await assert.rejects(broken.result, /the caller stopped reading its output/);

  const returned = host.stream(['sh', '-c', 'echo start; sleep 64.25; echo never']);
  const chunks = returned[Symbol.asyncIterator]();
  await chunks.next();
  const second = await pidOf(['sleep', '64.25']);
  await chunks.return?.();
  assert.ok(await gone(second, 3000), `the sleep ${second} was killed`);
  await assert.rejects(returned.result);
  const records = audit.list().filter((a) => a.begin.argv?.[0] === 'sh');
  assert.equal(records.length, 2);
  for (const r of records) assert.match(r.end?.error ?? '', /the caller stopped reading its output/, 'closed at once, not when the host is closed');
});

test('connectStreams: any stdin/stdout pair running stage 0 (here a plain local process)', async (t) => {
  const { context } = setup(t);
  const argv = stage0Argv();
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const host = await connectStreams(child.stdin, child.stdout, 'localhost', { context, stderr: child.stderr });
  t.after(() => host.close());
  assert.equal((await host.exec(['uname', '-s'])).stdout.trim(), 'Linux');
});

test('every Python from 3.6 to 3.13 found here runs the runtime; Python 2 fails with its own error, not a hang', async (t) => {
  const pythons = pythonsHere();
  t.diagnostic(`interpreters: ${pythons.join(', ')}`);
  // An interpreter other than python3 is a program the policy must allow outright (see the --python test).
  const s = setup(t, '      - { operation: execute_binary, resource: "/**" }\n      - { operation: execute_code, resource: "/**", unsandboxed: true }\n');
  for (const python of pythons) {
    const host = await connect('localhost', { context: s.context, python });
    try {
      assert.equal(await host.call(FileSystem.readText, `${s.root}/a.txt`), 'hello\n', python);
      assert.equal((await host.exec(['echo', python])).stdout, `${python}\n`);
    } finally {
      await host.close();
    }
  }
  const py2 = '/root/.pyenv/versions/2.7.18/bin/python2';
  if (existsSync(py2)) await assert.rejects(connect('localhost', { context: s.context, python: py2 }), /has no attribute 'buffer'\n\(this interpreter is a Python 2: the runtime needs Python 3\.8 or later/);
});

test("another interpreter than python3 starts only where the policy allows running it outright: refused, it never runs, and the refusal is audited", async (t) => {
  // What `remux rpc --python PATH` gives: a program the caller wrote (where the policy lets it write) runs
  // as the runtime's user before any call.
  const s = setup(t);
  const marker = join(s.root, 'ran');
  mkdirSync(join(s.root, 'w'));
  const chosen = join(s.root, 'w', 'py.sh');
  writeFileSync(chosen, `#!/bin/sh\ntouch ${marker}\nexec python3 "$@"\n`, { mode: 0o755 });
  await assert.rejects(connect('localhost', { context: s.context, python: chosen }), (e: Error) => e instanceof DeniedError && /the runtime's interpreter \S+py\.sh: .*no (execute_code )?rule of policy rt allows/.test(e.message));
  assert.equal(existsSync(marker), false, 'the interpreter never started');
  const refusal = s.audit.list().at(-1);
  assert.deepEqual([refusal?.begin.operation, refusal?.begin.argv, refusal?.begin.decision, refusal?.end?.exitCode], ['exec', [chosen], 'deny', 77]);

  // Allowed as a program, and as code only inside the sandbox, which the runtime's interpreter is not in: still refused.
  const writable = `      - { operation: write_file, resource: "${s.root}/w/**" }\n`;
  const sandboxedOnly = setup(t, `${writable}      - { operation: execute_binary, resource: "${chosen}" }\n      - { operation: execute_code, resource: "${chosen}" }\n`);
  await assert.rejects(connect('localhost', { context: sandboxedOnly.context, python: chosen }), /the runtime's interpreter .*execute_code/);
  assert.equal(existsSync(marker), false);

  // Allowed outright: it starts, and its start is in the audit before the calls made in it.
  const allowed = setup(t, `${writable}      - { operation: execute_binary, resource: "${chosen}" }\n      - { operation: execute_code, resource: "${chosen}", unsandboxed: true }\n`);
  writeFileSync(join(allowed.root, 'b.txt'), 'b\n');
  const host = await connect('localhost', { context: allowed.context, python: chosen });
  t.after(() => host.close());
  assert.equal(await host.call(FileSystem.readText, join(allowed.root, 'b.txt')), 'b\n');
  assert.equal(existsSync(marker), true);
  const [start, read] = allowed.audit.list();
  assert.deepEqual([start?.begin.operation, start?.begin.argv, start?.begin.decision, read?.begin.operation], ['exec', [chosen], 'allow', 'read_file']);
});

test('tool code is sent once per connection and keyed by its hash: a changed tool of the same name is sent again', async (t) => {
  const { link } = await rawLink(t);
  const v1 = toolSource('Same', 'def f():\n    return 1\n');
  const v2 = toolSource('Same', 'def f():\n    return 2\n');
  assert.notEqual(v1.hash, v2.hash);
  assert.deepEqual(await Promise.all([link.call(v1, 'f', []).result, link.call(v1, 'f', []).result, link.call(v2, 'f', []).result]), [1, 1, 2]);
  assert.equal(await link.call(v1, 'f', []).result, 1);
});

test('an ask rule goes to the approver: refused, nothing is read and the audit says so; approved, the call runs', async (t) => {
  const s = setup(t, '      - { operation: read_file, resource: "/**/asked.txt", effect: ask }\n');
  writeFileSync(join(s.root, 'asked.txt'), 'asked\n');
  let answer: 'allow' | 'deny' = 'deny';
  const questions: string[] = [];
  const host = await connect('localhost', {
    context: s.context,
    approve: async (subject) => {
      questions.push(subject.kind);
      return answer;
    },
  });
  t.after(() => host.close());
  await assert.rejects(host.call(FileSystem.readText, `${s.root}/asked.txt`), (e: Error) => e instanceof DeniedError && /approval refused/.test(e.message));
  assert.equal(s.audit.list().at(-1)?.end?.refusal?.includes('approval refused'), true);
  answer = 'allow';
  assert.equal(await host.call(FileSystem.readText, `${s.root}/asked.txt`), 'asked\n');
  assert.deepEqual(questions, ['file.read', 'file.read']);
});

test("an approver's answer is in the call's audit record, naming who answered, through what and the approval: a command approved, a read refused", async (t) => {
  const s = setup(t, '      - { operation: read_file, resource: "/**/asked.txt", effect: ask }\n      - { operation: execute_binary, resource: uname, effect: ask }\n');
  writeFileSync(join(s.root, 'asked.txt'), 'asked\n');
  const home = tempRoot(t, 'remux-rt-approvals-');
  const approvals = new Approvals({ env: { REMUX_HOME: home }, config: loadConfig({ REMUX_HOME: home }).config, audit: s.audit });
  t.after(() => approvals.close());
  // Each question is answered by an admin in the console as soon as it waits: approve the command, deny the read.
  const approve = approvalsApprover(approvals, 'alice', (_text, approval) => {
    approvals.store.answer(approval.id, approval.what.includes('uname') ? 'approve' : 'deny', { by: 'ops-admin', via: 'web' });
  });
  const host = await connect('localhost', { context: s.context, approve });
  t.after(() => host.close());
  assert.equal((await host.exec(['uname'])).code, 0);
  const [ran] = approvals.store.list({ all: true });
  assert.deepEqual(
    [s.audit.list().at(-1)?.begin.decision, s.audit.list().at(-1)?.end?.approval],
    ['ask', { outcome: 'approved', by: 'ops-admin', via: 'web', id: ran?.id }],
  );
  await assert.rejects(host.call(FileSystem.readText, `${s.root}/asked.txt`), (e: Error) => e instanceof DeniedError && /approval refused by ops-admin via web$/.test(e.message));
  const refused = approvals.store.list({ all: true }).find((a) => a.id !== ran?.id);
  assert.deepEqual(s.audit.list().at(-1)?.end?.approval, { outcome: 'refused', by: 'ops-admin', via: 'web', id: refused?.id });
});

test('a principal whose scope does not reach the host is refused before anything is sent', async (t) => {
  const s = setup(t);
  const context = { ...s.context, principal: { name: 'bot', via: 'token' as const, scope: { ...ADMIN_SCOPE, admin: false, hosts: 'web*', policies: [] } } };
  const host = await connect('localhost', { context });
  t.after(() => host.close());
  await assert.rejects(host.call(FileSystem.readText, `${s.root}/a.txt`), DeniedError);
  await assert.rejects(host.exec(['true']), DeniedError);
  assert.deepEqual(s.audit.list().map((a) => [a.begin.principal, a.begin.decision]), [['bot', 'deny'], ['bot', 'deny']]);
});
