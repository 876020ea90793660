// The browser terminal's bridge (src/gateway/terminal.ts) between a real WebSocket on loopback and a
// real attach to tmux on a private socket: typing, read-only, a watch at its session's size, the flow
// control that stops reading the pty when the client does not acknowledge (a `yes` flood stays
// bounded), hostile client frames, the end of the session and of the attach's lifetime, recordings,
// and the attach slot limits.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { createContext, type GatewayContext } from '../../src/core/context.js';
import { perform } from '../../src/core/perform.js';
import { AttachSlots } from '../../src/gateway/attach-slots.js';
import { bridgeTerminal, CLOSE, COALESCE, INPUT_FLOW, type BridgeEnd, type TerminalBridgeOptions } from '../../src/gateway/terminal.js';
import { FOLLOW_SIZE_MS, type AttachEnd, type AttachStream } from '../../src/sessions/attach.js';
import { AttachRecorder, describeRecording, listRecordings, recordingPath } from '../../src/sessions/recording.js';

const POLICIES = `policies:
  sess:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: sleep|yes|cat }
      - { operation: write_stdout, resource: null }
`;

interface Client {
  ws: WebSocket;
  /** Output bytes received, as text. */
  text(): string;
  received(): number;
  /** Binary frames received. */
  frames(): number;
  control: Array<Record<string, unknown>>;
  closed: Promise<{ code: number; reason: string }>;
  send(message: unknown): void;
}

/** The binary frames the bridge hands to the server-side socket, as text, in order. */
function framesSent(ws: WebSocket): string[] {
  const sent: string[] = [];
  const send = ws.send.bind(ws) as (...a: unknown[]) => void;
  (ws as unknown as { send: (...a: unknown[]) => void }).send = (data, ...rest) => {
    if (Buffer.isBuffer(data)) sent.push(data.toString());
    send(data, ...rest);
  };
  return sent;
}

describe('the browser terminal bridge', { timeout: 60_000 }, () => {
  const home = mkdtempSync(join(tmpdir(), 'remux-terminal-'));
  const socket = join(home, 'tmux.sock');
  let ctx: GatewayContext;
  let server: WebSocketServer;
  let port: number;
  /** What the next connection bridges to, and its outcome. */
  let next: { session: string; readOnly: boolean; followSize?: boolean; options?: Partial<TerminalBridgeOptions>; lifetimeMs?: number; stream?: AttachStream; done?: Promise<BridgeEnd> } = {
    session: '',
    readOnly: false,
  };
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });

  const newSession = async (session: string, command?: string): Promise<void> => {
    const r = await perform(ctx, { kind: 'session.new', host: 'box', session, ...(command ? { command, policy: 'sess' } : {}) }, { onStdout: () => {}, onStderr: () => {} });
    assert.equal(r.outcome, 'ok', r.message ?? '');
  };

  const connect = async (session: string, readOnly = false, options: Partial<TerminalBridgeOptions> = {}, followSize = false): Promise<Client> => {
    next = { session, readOnly, options, followSize };
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const chunks: Buffer[] = [];
    let bytes = 0;
    const control: Array<Record<string, unknown>> = [];
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        chunks.push(data as Buffer);
        bytes += (data as Buffer).length;
      } else control.push(JSON.parse(data.toString()) as Record<string, unknown>);
    });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    for (let i = 0; i < 100 && control.length === 0; i++) await sleep(10);
    return { ws, text: () => Buffer.concat(chunks).toString('utf8'), received: () => bytes, frames: () => chunks.length, control, closed, send: (m) => ws.send(JSON.stringify(m)) };
  };

  const until = async (what: string, cond: () => boolean, ms = 5000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await sleep(10);
    }
  };

  before(async () => {
    writeFileSync(join(home, 'policies.yaml'), POLICIES);
    writeFileSync(join(home, 'hosts.yaml'), `hosts:\n  box:\n    transport: local\n    tmux_socket: ${socket}\n`);
    ctx = createContext({ env: { REMUX_HOME: home, HOME: home } });
    server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 2 << 20 });
    server.on('connection', (ws) => {
      const { session, readOnly, options, followSize } = next;
      void (async () => {
        const r = await perform(ctx, { kind: 'session.attach', host: 'box', session, readOnly, followSize, cols: 80, rows: 24 }, { onStdout: () => {}, onStderr: () => {} });
        assert.ok(r.attach, r.message ?? '');
        next.stream = r.attach;
        next.done = bridgeTerminal(ws, r.attach, { readOnly, recording: null, ...options });
      })();
    });
    await new Promise((resolve) => server.once('listening', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    // Open clients too: a test that failed midway must not leave a socket holding the file open.
    for (const client of server.clients) client.terminate();
    server.close();
    try {
      tmux('kill-server');
    } catch {
      // No server left.
    }
    await ctx.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('ready first, then what is typed reaches the session and its echo comes back as binary frames', async () => {
    await newSession('t1');
    const c = await connect('t1');
    assert.deepEqual(c.control[0], { type: 'ready', readOnly: false, recording: null });
    c.send({ type: 'input', data: 'echo typed-$((6*7))\r' });
    await until('the echo', () => c.text().includes('typed-42'));
    c.ws.close();
    const end = await next.done!;
    assert.equal(end.end.reason, 'closed');
    assert.match(tmux('list-sessions', '-F', '#{session_name}:#{session_attached}'), /^t1:0$/m, 'the attach is gone, the session stays');
  });

  test('a read-only client cannot type', async () => {
    const c = await connect('t1', true);
    assert.equal(c.control[0]?.readOnly, true);
    c.send({ type: 'input', data: 'echo must-not-run\r' });
    await sleep(300);
    assert.doesNotMatch(tmux('capture-pane', '-p', '-t', '=t1:'), /must-not-run/);
    c.ws.close();
    await next.done;
  });

  test("a watch that follows its session takes the session's size, never changes it, and is told each change", async () => {
    tmux('new-session', '-d', '-s', 'wide', '-x', '120', '-y', '40');
    const windowSize = (): string => tmux('display-message', '-p', '-t', '=wide:', '#{window_width}x#{window_height}').trim();
    const resizes: string[] = [];
    // Alone with the session: a watcher's own size would be the window's (tmux sizes it to its clients).
    const c = await connect('wide', true, { onResize: (cols, rows) => resizes.push(`${cols}x${rows}`) }, true);
    assert.deepEqual(c.control[0], { type: 'ready', readOnly: true, recording: null, size: { cols: 120, rows: 41 } }, 'the window and its status line');
    c.send({ type: 'resize', cols: 40, rows: 20 });
    await until('the watcher is drawn', () => c.text().length > 0);
    await sleep(300);
    assert.equal(windowSize(), '120x40', 'a phone-sized watcher left the window as it was');
    assert.equal(tmux('list-clients', '-t', '=wide', '-F', '#{client_width}x#{client_height}').trim(), '120x41');

    // Someone resizes the window (an interactive client would): the watch follows within FOLLOW_SIZE_MS.
    tmux('resize-window', '-t', '=wide:', '-x', '100', '-y', '30');
    await until('the new size', () => c.control.some((m) => m.type === 'size'), FOLLOW_SIZE_MS * 3);
    assert.deepEqual(c.control.at(-1), { type: 'size', cols: 100, rows: 31 });
    assert.deepEqual(resizes, ['100x31'], 'a recording of the watch gets the session\'s sizes, not the client\'s');
    await until('the watcher\'s terminal took it', () => tmux('list-clients', '-t', '=wide', '-F', '#{client_width}x#{client_height}').trim() === '100x31');
    c.ws.close();
    await next.done;
    tmux('kill-session', '-t', '=wide');
  });

  test("a watch whose session's size the daemon cannot tell still ignores its client's resizes: alone with the session, they would size its window", async () => {
    // 80x23 and a status line: the size the watch opens at (80x24), so that opening changes nothing.
    tmux('new-session', '-d', '-s', 'unsized', '-x', '80', '-y', '23');
    const windowSize = (): string => tmux('display-message', '-p', '-t', '=unsized:', '#{window_width}x#{window_height}').trim();
    // The session's size comes back as nothing the daemon can read (sizeCommand's answer, and only it).
    const run = ctx.sessions.run.bind(ctx.sessions);
    ctx.sessions.run = async (...args) => {
      const answer = await run(...args);
      return /^\d+ \d+ (on|off|[2-5])\n?$/.test(answer.stdout) ? { ...answer, stdout: 'no size here\n' } : answer;
    };
    try {
      const c = await connect('unsized', true, {}, true);
      assert.equal(c.control[0]?.type, 'ready', JSON.stringify(c.control));
      c.send({ type: 'resize', cols: 40, rows: 10 });
      await until('the watcher is drawn', () => c.text().length > 0);
      await sleep(500);
      assert.equal(windowSize(), '80x23', "the watcher's resize left the window as it was");
      assert.equal(tmux('list-clients', '-t', '=unsized', '-F', '#{client_width}x#{client_height}').trim(), '80x24');
      c.ws.close();
      await next.done;
    } finally {
      ctx.sessions.run = run;
      tmux('kill-session', '-t', '=unsized');
    }
  });

  test('a client that does not acknowledge stops the flood at the high-water mark; acknowledging resumes it', async () => {
    await newSession('flood', 'yes');
    const flow = { highWater: 64 << 10, lowWater: 16 << 10 };
    const c = await connect('flood', false, { flow });
    await until('the high-water mark', () => c.received() > flow.highWater);
    await sleep(300);
    const stalled = c.received();
    await sleep(300);
    // At most the window plus one pty read past it, and then nothing more while unacknowledged.
    assert.ok(stalled <= flow.highWater + (64 << 10), `received ${stalled}`);
    assert.equal(c.received(), stalled, 'no more output without acknowledgements');
    // Acknowledge as a browser does after rendering: the output flows again, well past the window.
    const acker = setInterval(() => c.send({ type: 'ack', bytes: c.received() }), 5);
    await until('the flow to resume', () => c.received() > stalled + flow.highWater);
    clearInterval(acker);
    c.ws.close();
    const end = await next.done!;
    assert.ok(end.pauses >= 1, `paused ${end.pauses} times`);
    assert.ok(end.maxUnacked <= flow.highWater + (64 << 10), `max unacknowledged ${end.maxUnacked}`);
  });

  test('input the session has not taken stops the socket being read past INPUT_FLOW.highWater; all of it goes in, in the end', async () => {
    await newSession('slow-input', 'sleep 600');
    const c = await connect('slow-input');
    const stream = next.stream!;
    let written = 0;
    const write = stream.write.bind(stream);
    stream.write = (data) => {
      written += Buffer.byteLength(data);
      write(data);
    };
    // 8 MiB of pastes at once: tmux takes keys a MiB or two a second, far slower than loopback brings them.
    const paste = 'x'.repeat(INPUT_FLOW.highWater - 64);
    for (let i = 0; i < 8; i++) c.send({ type: 'input', data: paste });
    await sleep(300);
    // Read whole, all 8 MiB were handed to the session by now.
    assert.ok(written <= 5 * INPUT_FLOW.highWater, `${written} bytes of input handed to the session in 300 ms`);
    let most = 0;
    await until(
      'the session to take it all',
      () => {
        most = Math.max(most, stream.pendingInput());
        return c.ws.bufferedAmount === 0 && stream.pendingInput() === 0;
      },
      30_000,
    );
    // The mark, the frame that crossed it and one the socket had already brought in.
    assert.ok(most <= 3 * INPUT_FLOW.highWater, `the daemon held ${most} bytes of input`);
    c.ws.close();
    await next.done;
  });

  test('a flood reaches the client in frames at most every COALESCE.floodDelayMs, not one per pty read', async () => {
    await newSession('flood2', 'yes');
    const c = await connect('flood2');
    const acker = setInterval(() => c.send({ type: 'ack', bytes: c.received() }), 5);
    await until('the flood', () => c.received() > 64 << 10);
    const [frames0, bytes0, t0] = [c.frames(), c.received(), performance.now()];
    await sleep(1000);
    const [frames, bytes, ms] = [c.frames() - frames0, c.received() - bytes0, performance.now() - t0];
    clearInterval(acker);
    c.ws.close();
    await next.done;
    // tmux sends its client screen updates, not every line: tens of KiB a second at 80x24, 7 KiB on a
    // loaded machine; in pieces of about 50 bytes, so 2 KiB unframed would be far more frames than allowed.
    assert.ok(bytes > 2 << 10, `only ${bytes} bytes in ${ms.toFixed(0)} ms`);
    // Without coalescing a `yes` flood came as thousands of small frames a second; then 125 (every delayMs).
    assert.ok(frames <= (ms / COALESCE.floodDelayMs) * 1.5 + 5, `${frames} frames in ${ms.toFixed(0)} ms`);
  });

  test('hostile frames close the socket: binary input, unknown JSON, an ack of more than was sent', async () => {
    const cases: Array<[string, (c: Client) => void, number]> = [
      ['binary', (c) => c.ws.send(Buffer.from('echo raw\r')), CLOSE.unsupported],
      ['unknown', (c) => c.send({ type: 'exec', data: 'id' }), CLOSE.unsupported],
      ['not json', (c) => c.ws.send('echo hi'), CLOSE.unsupported],
      ['over-ack', (c) => c.send({ type: 'ack', bytes: 1e12 }), CLOSE.policy],
    ];
    for (const [name, act, code] of cases) {
      const c = await connect('t1');
      act(c);
      assert.equal((await c.closed).code, code, name);
      await next.done;
    }
    assert.doesNotMatch(tmux('capture-pane', '-p', '-t', '=t1:'), /echo raw|^hi$/m);
  });

  test('the session ending closes the socket normally with an exit message', async () => {
    await newSession('short');
    const c = await connect('short');
    tmux('kill-session', '-t', '=short');
    const closed = await c.closed;
    assert.equal(closed.code, CLOSE.normal);
    assert.equal(c.control.at(-1)?.type, 'exit');
  });

  test('recordings: asciicast v2 with the output and resizes, listed newest first, ids checked', async () => {
    const dir = join(home, 'recordings');
    const recorder = new AttachRecorder(dir, { host: 'box', user: 'root', session: 't1', principal: 'cli:test', readOnly: false, actionId: 7 }, { cols: 80, rows: 24 });
    const c = await connect('t1', false, { recording: recorder.id, onOutput: (chunk) => recorder.output(chunk), onResize: (cols, rows) => recorder.resize(cols, rows) });
    assert.equal(c.control[0]?.recording, recorder.id);
    c.send({ type: 'resize', cols: 100, rows: 30 });
    c.send({ type: 'input', data: 'echo recorded-$((2*21))\r' });
    await until('the echo', () => c.text().includes('recorded-42'));
    c.ws.close();
    await next.done;
    recorder.end();
    const lines = readFileSync(recorder.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown);
    const header = lines[0] as { version: number; width: number; remux: { session: string } };
    assert.equal(header.version, 2);
    assert.equal(header.width, 80);
    assert.equal(header.remux.session, 't1');
    const events = lines.slice(1) as Array<[number, string, string]>;
    assert.ok(events.some(([, kind, data]) => kind === 'r' && data === '100x30'));
    assert.ok(events.filter(([, kind]) => kind === 'o').map(([, , d]) => d).join('').includes('recorded-42'));
    assert.ok(events.every(([t], i) => i === 0 || t >= events[i - 1]![0]), 'times never go back');
    assert.equal(statSync(recorder.path).mode & 0o777, 0o600);
    const listed = listRecordings(dir);
    assert.equal(listed[0]?.id, recorder.id);
    assert.equal(listed[0]?.actionId, 7);
    assert.ok((describeRecording(dir, recorder.id)?.duration ?? 0) > 0);
    for (const bad of ['../../etc/passwd', `${recorder.id}/../x`, '', 'x.cast']) assert.throws(() => recordingPath(dir, bad), /not a recording id/);
  });

  test('a recording stops at its size limit with a marker; the attach is not affected', () => {
    const dir = join(home, 'recordings');
    const recorder = new AttachRecorder(dir, { host: 'box', user: 'root', session: 'big', principal: 'p', readOnly: false, actionId: null }, { cols: 80, rows: 24 }, 4096);
    for (let i = 0; i < 100; i++) recorder.output(Buffer.from('x'.repeat(100)));
    recorder.end();
    const text = readFileSync(recorder.path, 'utf8');
    assert.ok(text.length <= 4096 + 200, `${text.length} bytes`);
    assert.match(text.trim().split('\n').at(-1) ?? '', /"m","recording stopped: size limit reached"/);
  });
});

describe('attach slots', () => {
  test('per principal and in total, counted by principal; a release frees exactly one', () => {
    const slots = new AttachSlots({ perPrincipal: 2, total: 3 });
    const a1 = slots.acquire('alice');
    const a2 = slots.acquire('alice');
    const a3 = slots.acquire('alice');
    assert.ok('release' in a1 && 'release' in a2);
    assert.ok('refusal' in a3);
    assert.match(a3.refusal, /alice already has 2 attaches open \(the limit per principal is 2\)/);
    const b1 = slots.acquire('bob');
    assert.ok('release' in b1);
    const c1 = slots.acquire('carol');
    assert.ok('refusal' in c1 && /the daemon already serves 3 attaches/.test(c1.refusal));
    a1.release();
    a1.release();
    assert.equal(slots.count(), 2);
    assert.equal(slots.count('alice'), 1);
    assert.ok('release' in slots.acquire('carol'));
  });
});

/** The framing alone, with a scripted attach: what is read when, and whether reading was paused. */
describe('terminal output coalescing', () => {
  function scripted(pausesAtOnce = true): { stream: AttachStream; emit(chunk: string): void; end(): void; reading: () => boolean } {
    let listener: (chunk: Buffer) => void = () => {};
    let reading = true;
    let finish: (end: AttachEnd) => void = () => {};
    const ended = new Promise<AttachEnd>((resolve) => (finish = resolve));
    const end = (): void => finish({ reason: 'exited', code: 0 } as AttachEnd);
    const stream: AttachStream = {
      write: () => {},
      resize: () => null,
      pause: () => void (reading = false),
      resume: () => void (reading = true),
      pausesAtOnce,
      pendingInput: () => 0,
      onData: (l) => void (listener = l),
      close: () => (end(), ended),
      ended,
    };
    return { stream, emit: (chunk) => listener(Buffer.from(chunk)), end, reading: () => reading };
  }

  /** A socket pair on loopback; close both in the test's t.after, so a failed assertion leaves nothing open. */
  async function pair(): Promise<{ server: WebSocketServer; serverSide: WebSocket; frames: string[]; client: WebSocket }> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => server.once('listening', resolve));
    const accepted = new Promise<WebSocket>((resolve) => server.once('connection', resolve));
    const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const frames: string[] = [];
    client.on('message', (data, isBinary) => void (isBinary && frames.push((data as Buffer).toString())));
    return { server, serverSide: await accepted, frames, client };
  }

  test('output after a quiet moment is one frame at once; what follows within the delay is gathered, in order, read a piece per readRestMs', async (t) => {
    const { server, serverSide, frames, client } = await pair();
    t.after(() => {
      client.close();
      server.close();
    });
    // What the bridge hands to the socket, as it does (the client's view follows below).
    const sent = framesSent(serverSide);
    const s = scripted();
    // A delay no pause of a busy machine between two lines of this test can reach, and a rest well within it.
    const coalesce = { ...COALESCE, delayMs: 1000, readRestMs: 50 };
    const done = bridgeTerminal(serverSide, s.stream, { readOnly: false, recording: null, coalesce });
    s.emit('echo');
    assert.deepEqual(sent, ['echo'], 'the first output is not held back');
    s.emit('a');
    assert.equal(s.reading(), true, 'a single chunk after a frame does not stop reading');
    s.emit('b');
    s.emit('c');
    assert.deepEqual(sent, ['echo'], 'output within the delay is held');
    assert.equal(s.reading(), false, 'more output while a frame is due: a flood, the session rests');
    const rested = performance.now();
    for (let i = 0; i < 1000 && !s.reading(); i++) await sleep(2);
    assert.ok(performance.now() - rested < coalesce.delayMs / 2, 'reading resumes after readRestMs');
    assert.deepEqual(sent, ['echo'], 'the frame is still held: reading resumed before it was due');
    s.emit('d');
    assert.equal(s.reading(), false, 'each piece of a flood is followed by a rest');
    for (let i = 0; i < 1000 && sent.length < 2; i++) await sleep(2);
    assert.deepEqual(sent, ['echo', 'abcd']);
    s.emit('z'.repeat(coalesce.maxBytes));
    assert.equal(sent.at(-1)?.length, coalesce.maxBytes, 'a full frame goes without waiting');
    s.emit('tail');
    s.end();
    await done;
    assert.equal(sent.at(-1), 'tail', 'what is held when the attach ends is sent before the exit');
    for (let i = 0; i < 500 && frames.length < 4; i++) await sleep(2);
    assert.deepEqual(frames, ['echo', 'abcd', 'z'.repeat(coalesce.maxBytes), 'tail'], 'the client gets the same frames in order');
  });

  test('a flood is framed every floodDelayMs until someone types: then what is held goes at once and frames every delayMs', async (t) => {
    const { server, serverSide, client } = await pair();
    const sent = framesSent(serverSide);
    const s = scripted();
    // Delays far apart, so a busy machine cannot make one look like the other.
    const coalesce = { ...COALESCE, delayMs: 50, floodDelayMs: 2000, readRestMs: 5000 };
    const done = bridgeTerminal(serverSide, s.stream, { readOnly: false, recording: null, coalesce });
    t.after(() => {
      client.close();
      server.close();
    });
    const frame = async (n: number): Promise<number> => {
      const t0 = performance.now();
      for (let i = 0; i < 1000 && sent.length < n; i++) await sleep(1);
      return performance.now() - t0;
    };
    s.emit('a');
    s.emit('b');
    s.emit('c');
    await frame(2);
    assert.deepEqual(sent, ['a', 'bc'], 'output came while the frame was due: a flood');
    assert.equal(s.reading(), false, 'in a flood, the session rests past the frame');
    s.emit('d');
    s.emit('e');
    await sleep(coalesce.delayMs * 2);
    assert.deepEqual(sent, ['a', 'bc'], 'in a flood, frames wait longer than delayMs');
    client.send(JSON.stringify({ type: 'input', data: 'x' }));
    assert.ok((await frame(3)) < coalesce.floodDelayMs / 2, 'a keystroke sends what is held');
    assert.deepEqual(sent, ['a', 'bc', 'de']);
    s.emit('f');
    s.emit('g');
    // One frame, or two when more than delayMs passed since the last one (a busy machine): never held for floodDelayMs.
    const t0 = performance.now();
    for (let i = 0; i < 1000 && sent.slice(3).join('') !== 'fg'; i++) await sleep(1);
    assert.ok(performance.now() - t0 < coalesce.floodDelayMs / 2, 'while typing, a flood is framed every delayMs');
    assert.equal(sent.slice(3).join(''), 'fg');
    assert.equal(s.reading(), true, 'while typing, the session is read again once the frame goes, not after readRestMs');
    s.end();
    await done;
  });
  test('over a transport that buffers (SSH, an agent), a flood is framed the same but read without rests', async (t) => {
    const { server, serverSide, client } = await pair();
    t.after(() => {
      client.close();
      server.close();
    });
    const sent = framesSent(serverSide);
    const s = scripted(false);
    const coalesce = { ...COALESCE, delayMs: 1000, readRestMs: 50 };
    const done = bridgeTerminal(serverSide, s.stream, { readOnly: false, recording: null, coalesce });
    s.emit('a');
    s.emit('b');
    s.emit('c');
    assert.deepEqual(sent, ['a'], 'output within the delay is held');
    assert.equal(s.reading(), true, 'a flood over SSH is read on: resting would only leave megabytes in the channel to drain');
    for (let i = 0; i < 1000 && sent.length < 2; i++) await sleep(2);
    assert.deepEqual(sent, ['a', 'bc']);
    s.end();
    await done;
  });
});
