// The runtime's protocol, local side. After stage 1 is written (bootstrap.ts) the host speaks first: a
// hello with its protocol version, capabilities and Python; checked, it is answered with stage 2 (the
// protocol loop's code, the first frame). Then frames both ways: a 4-byte big-endian length
// and that many bytes of UTF-8 JSON (never pickle, never eval: JSON.parse and a schema check of each
// message), or, when the body begins with a 0 byte (never JSON's first), a binary frame: 0, a 4-byte
// big-endian call id, a 1-byte tag and raw bytes (a call's input, a chunk of bytes: no base64 to encode
// and decode on either side). Requests carry ids; any number run at once; a call may send chunks before
// its result, and may take input as it runs (a command's stdin), sent under the host's credit.
import { printable } from '../command/invisible.js';
import { owned, ReadBuffer } from '../core/frames.js';
import { CreditedSender, INPUT_WINDOW_BYTES } from '../exec/input-credit.js';
import { PROTOCOL_VERSION, stage1Frame, stage2Source, type ToolSource } from './bootstrap.js';
import { CallTimeoutError, ProtocolError, RemoteError, WindowOverrunError } from './errors.js';
import { ChunkQueue, type CallStream } from './queue.js';

export type { CallStream } from './queue.js';

/** Frames above this are refused both ways (stage 1 has the same cap and says so in its hello). */
export const FRAME_CAP = 16 << 20;
/** A binary frame's body: the 0 byte, the call id, the tag; then its bytes. */
const BINARY_HEAD = 6;
const HELLO_TIMEOUT_MS = 20_000;
/** While calls are in flight and the host is quiet, it is pinged this often… */
const PING_EVERY_MS = 1000;
/** …and declared dead when it has said nothing for this long (a host gone without a FIN, a stopped sshd). */
export const SILENCE_LIMIT_MS = 4000;

/** A byte pipe to stage 0 on the host: a local process, an SSH exec channel, any stdin/stdout pair. */
export interface Transport {
  write(data: Buffer): void;
  /** Writes the buffers as one (a frame's head and its bytes), without joining them first; else write() gets them joined. */
  writev?(data: Buffer[]): void;
  onData(listener: (chunk: Buffer) => void): void;
  /** Called once when the pipe is gone, with why (and what the host wrote on stderr before stage 1, if anything). */
  onClose(listener: (reason: string) => void): void;
  close(): void;
}

export interface Hello {
  v: number;
  caps: string[];
  /** The host's Python version, e.g. 3.11.2. */
  py: string;
  pid: number;
  cwd: string;
  cap: number;
}

export interface LogRecord {
  id: number | null;
  level: string;
  name: string;
  msg: string;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Milliseconds the call may take (then it is cancelled on the host); null: no limit; left out: none, but Exec's is exec.timeout_seconds. */
  timeoutMs?: number | null;
  /**
   * Flow control: at most this many bytes of the call's chunks travel or wait here unconsumed; the host
   * holds the rest back (a command's output stays in its pipe). Only for callers that take the chunks.
   */
  window?: number;
}

interface Pending {
  what: string;
  queue: ChunkQueue<unknown, unknown>;
  /**
   * A chunk of `size` bytes arrived: true when the call may hold it, else the call is failed (a
   * WindowOverrunError) and cancelled, and the chunk must be dropped.
   */
  admit(size: number): boolean;
  /** Settles the call and lets go of its timer, abort listener and input. */
  settle(err: Error | null, value?: unknown): void;
  /** The host wrote this many bytes of the call's input on: it may have as many more. */
  credit?(bytes: number): void;
}

export interface LinkOptions {
  onLog?(record: LogRecord): void;
}

export class Link {
  /** What the host sent, until a frame of it is whole. */
  private readonly read = new ReadBuffer();
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly sentTools = new Set<string>();
  private broken: Error | null = null;
  private helloWaiter: { resolve(h: Hello): void; reject(e: Error): void } | null = null;
  private lastHeard = 0;
  private pinger: NodeJS.Timeout | null = null;
  hello: Hello | null = null;

  private constructor(
    private readonly transport: Transport,
    private opts: LinkOptions,
  ) {
    transport.onData((chunk) => this.receive(chunk));
    // The reason may hold what the host wrote on stderr.
    transport.onClose((reason) => this.fail(new ProtocolError(this.hello === null ? beforeHello(printable(reason)) : printable(reason))));
  }

  /** Writes stage 1, waits for the hello, checks it and sends stage 2. */
  static async open(transport: Transport, opts: LinkOptions = {}): Promise<Link> {
    const link = new Link(transport, opts);
    const hello = new Promise<Hello>((resolve, reject) => (link.helloWaiter = { resolve, reject }));
    const timer = setTimeout(() => link.fail(new ProtocolError(`no handshake from the host within ${HELLO_TIMEOUT_MS} ms`)), HELLO_TIMEOUT_MS);
    transport.write(stage1Frame());
    try {
      link.hello = await hello;
    } finally {
      clearTimeout(timer);
    }
    link.send({ t: 'stage2', src: stage2Source() });
    return link;
  }

  get closed(): boolean {
    return this.broken !== null;
  }

  /** Calls still waiting for their result. */
  get busy(): boolean {
    return this.pending.size > 0;
  }

  /** Where the host's log records go from now on (a link kept for reuse serves its next user). */
  set onLog(listener: ((record: LogRecord) => void) | undefined) {
    this.opts = listener ? { ...this.opts, onLog: listener } : {};
  }

  /**
   * Calls `method` of `tool` with JSON arguments; the tool's code goes along on its first call on this link.
   * `input` is streamed to the call as it runs (stage 2's rt.feed), read only as the host grants credit, at
   * most INPUT_WINDOW_BYTES ahead of what it wrote on; once the call is over no more is read or sent.
   */
  call<C = unknown, R = unknown>(tool: ToolSource, method: string, args: unknown[], opts: CallOptions = {}, input: NodeJS.ReadableStream | null = null): CallStream<C, R> {
    const id = this.nextId++;
    const what = `${tool.name}.${method}`;
    // What the consumer took, acknowledged in quarters of the window (fewer frames than one per chunk).
    let taken = 0;
    // Bytes of chunks received and not yet acknowledged: at least what the host counts against the window.
    let unacked = 0;
    const window = opts.window;
    const onTaken = (size: number): void => {
      taken += size;
      if (window === undefined || taken < window / 4 || !this.pending.has(id) || this.broken) return;
      this.send({ t: 'ack', id, n: taken });
      unacked -= taken;
      taken = 0;
    };
    const queue = new ChunkQueue<C, R>(window === undefined ? {} : { onTaken });
    let timer: NodeJS.Timeout | undefined;
    let sender: CreditedSender | null = null;
    // Input bytes sent that the host has not given credit back for.
    let inputOut = 0;
    const cancel = (why: Error): void => {
      if (!this.pending.has(id)) return;
      pending.settle(why);
      // The host stops the work: a subprocess's whole process group is killed.
      if (!this.broken) this.send({ t: 'cancel', id });
    };
    // The caller's own reason (the CLI's `interrupted`), before the call is sent as after.
    const aborted = (): Error => (opts.signal?.reason instanceof Error ? opts.signal.reason : new ProtocolError(`${what}: cancelled`));
    const onAbort = (): void => cancel(aborted());
    const pending: Pending = {
      what,
      queue: queue as ChunkQueue<unknown, unknown>,
      // The host sends a chunk only while less than the window waits unacknowledged (stage2.py's work), so
      // it is never more than the window and one frame; a call without a window may have a frame's worth
      // wait untaken (what a result may be). Past that only this call fails: the framing is intact and
      // the other calls' bytes are counted apart, as the host fails only the call whose input overruns.
      admit: (size) => {
        const held = window === undefined ? queue.bufferedBytes : unacked;
        const limit = window ?? FRAME_CAP;
        if (held >= limit) {
          cancel(new WindowOverrunError(what, id, held, size, limit, window !== undefined));
          return false;
        }
        unacked += size;
        return true;
      },
      settle: (err, value) => {
        this.pending.delete(id);
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        sender?.stop();
        queue.settle(err, value as R);
      },
      // The host gives back credit for input it wrote on, never for more than was sent and not yet given
      // back: one that grants itself more would have us read the caller's input into the pipe without bound.
      credit: (bytes) => {
        if (!sender) return;
        if (!(bytes > 0 && bytes <= inputOut)) return cancel(new ProtocolError(`${what} (call ${id}): the host gave back credit for ${bytes} bytes of input with ${inputOut} sent and not given back; the call was cancelled`));
        inputOut -= bytes;
        sender.grant(bytes);
      },
    };
    if (this.broken) queue.settle(this.broken);
    else if (opts.signal?.aborted) queue.settle(aborted());
    else {
      this.pending.set(id, pending);
      this.watch();
      const message: Record<string, unknown> = { t: 'call', id, tool: tool.hash, m: method, a: args, ...(window === undefined ? {} : { w: window }), ...(input ? { i: INPUT_WINDOW_BYTES } : {}) };
      if (!this.sentTools.has(tool.hash)) Object.assign(message, { name: tool.name, src: tool.source });
      try {
        this.send(message);
        this.sentTools.add(tool.hash);
      } catch (err) {
        pending.settle(err as Error);
        return queue;
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeoutMs != null) timer = setTimeout(() => cancel(new CallTimeoutError(what, opts.timeoutMs as number)), opts.timeoutMs);
      if (input) {
        // A first window at once (the host queues that much): no round trip before a short input goes.
        const data = (chunk: Buffer): void => {
          inputOut += chunk.length;
          this.sendBytes(id, chunk);
        };
        sender = new CreditedSender(input, { data, end: () => this.send({ t: 'input', id, d: null }) });
        sender.grant(INPUT_WINDOW_BYTES);
      }
    }
    return queue;
  }

  /** Ends stdin: stage 2 cancels what runs (killing child process groups) and exits. */
  close(): void {
    this.fail(new ProtocolError('the runtime connection was closed'));
  }

  /** Pings a quiet host while calls wait on it; fails the link when it stays silent too long. */
  private watch(): void {
    if (this.pinger) return;
    this.lastHeard = Date.now();
    let lastTick = Date.now();
    this.pinger = setInterval(() => {
      // Our own event loop stalled: what the host sent is unread, not missing.
      if (Date.now() - lastTick > PING_EVERY_MS * 2) this.lastHeard = Date.now();
      lastTick = Date.now();
      if (this.pending.size === 0 || this.broken) {
        clearInterval(this.pinger ?? undefined);
        this.pinger = null;
        return;
      }
      const quiet = Date.now() - this.lastHeard;
      if (quiet >= SILENCE_LIMIT_MS) this.fail(new ProtocolError(`the host has not answered for ${quiet} ms (no reply to pings); the link is closed`));
      else if (quiet >= PING_EVERY_MS) this.send({ t: 'ping', id: 0 });
    }, PING_EVERY_MS / 2);
    this.pinger.unref();
  }

  private send(message: unknown): void {
    const body = Buffer.from(JSON.stringify(message));
    if (body.length > FRAME_CAP) throw new ProtocolError(`the request is ${body.length} bytes, more than the frame cap of ${FRAME_CAP}`);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    this.transport.write(Buffer.concat([head, body]));
  }

  /**
   * A call's input bytes, in a binary frame (tag 0); CreditedSender's chunks are far below the cap. The
   * bytes are not copied behind the head where the transport can write both at once (a pipe's writev).
   */
  private sendBytes(id: number, data: Buffer): void {
    const head = Buffer.alloc(4 + BINARY_HEAD);
    head.writeUInt32BE(BINARY_HEAD + data.length);
    head.writeUInt32BE(id, 5);
    if (this.transport.writev) this.transport.writev([head, data]);
    else this.transport.write(Buffer.concat([head, data]));
  }

  private receive(chunk: Buffer): void {
    if (this.broken) return;
    this.lastHeard = Date.now();
    this.read.push(chunk);
    while (this.read.length >= 4) {
      const size = this.read.peek(4).readUInt32BE(0);
      if (size > FRAME_CAP) return this.fail(new ProtocolError(`the host sent a frame of ${size} bytes, more than the cap of ${FRAME_CAP}; the link is closed`));
      if (this.read.length < 4 + size) return;
      const body = this.read.take(4 + size).subarray(4);
      if (body[0] === 0) {
        this.binary(body);
        if (this.broken) return;
        continue;
      }
      let message: unknown;
      try {
        message = JSON.parse(body.toString('utf8'));
      } catch (err) {
        return this.fail(new ProtocolError(`the host sent a malformed frame (${(err as Error).message}); the link is closed`));
      }
      this.dispatch(message, size);
      if (this.broken) return;
    }
  }

  private dispatch(raw: unknown, size: number): void {
    const m = raw as Record<string, unknown>;
    if (typeof m !== 'object' || m === null || typeof m.t !== 'string') return this.fail(new ProtocolError('the host sent a message without a type; the link is closed'));
    if (this.hello === null && this.helloWaiter) {
      const hello = checkHello(m);
      if (hello instanceof Error) return this.fail(hello);
      const waiter = this.helloWaiter;
      this.helloWaiter = null;
      this.hello = hello;
      return waiter.resolve(hello);
    }
    if (m.t === 'pong') return;
    if (m.t === 'log') {
      this.opts.onLog?.({ id: typeof m.id === 'number' ? m.id : null, level: printable(String(m.level)), name: printable(String(m.name)), msg: printable(String(m.msg)) });
      return;
    }
    const id = m.id;
    if (m.t === 'error' && id === null) return this.fail(new ProtocolError(`the host refused the link: ${printable(String(m.type))}: ${printable(String(m.message))}`));
    if (typeof id !== 'number') return this.fail(new ProtocolError(`the host sent a ${printable(m.t)} without a call id; the link is closed`));
    const pending = this.callOf(id, printable(m.t));
    if (!pending) return;
    switch (m.t) {
      case 'chunk':
        if (pending.admit(size)) pending.queue.push(m.v, size);
        return;
      case 'credit':
        return pending.credit?.(typeof m.n === 'number' ? m.n : 0);
      case 'result':
        return pending.settle(null, m.v);
      case 'error':
        return pending.settle(remoteError(m));
      default:
        pending.settle(new ProtocolError(`${pending.what}: the host sent an unknown message type "${printable(m.t)}"`));
    }
  }

  /** A chunk of bytes: a Buffer (tag 0), or [tag, Buffer] (Exec's [1|2, output]). */
  private binary(body: Buffer): void {
    if (body.length < BINARY_HEAD || this.hello === null) return this.fail(new ProtocolError(`the host sent a malformed binary frame (${body.length} bytes${this.hello === null ? ', before its handshake' : ''}); the link is closed`));
    const id = body.readUInt32BE(1);
    const pending = this.callOf(id, 'chunk');
    if (!pending || !pending.admit(body.length)) return;
    const tag = body[5] as number;
    const data = owned(body.subarray(BINARY_HEAD));
    pending.queue.push(tag === 0 ? data : [tag, data], body.length);
  }

  /**
   * The call a message from the host is for. One cancelled, timed out or failed here may still answer: it
   * is over for us, and what comes for it is dropped (undefined). A call never made fails the link: a host
   * that mixes up its calls cannot be trusted with which answer is whose.
   */
  private callOf(id: number, type: string): Pending | undefined {
    const pending = this.pending.get(id);
    if (!pending && (id < 1 || id >= this.nextId || !Number.isInteger(id))) this.fail(new ProtocolError(`the host sent a ${type} for call ${id}, which was never made; the link is closed`));
    return pending;
  }

  private fail(err: Error): void {
    if (this.broken) return;
    this.broken = err;
    if (this.pinger) clearInterval(this.pinger);
    this.pinger = null;
    // A link that failed is not used again: the host's interpreter gets EOF and exits.
    this.transport.close();
    if (this.helloWaiter) this.helloWaiter.reject(err);
    this.helloWaiter = null;
    for (const pending of [...this.pending.values()]) pending.settle(err);
  }
}

function remoteError(m: Record<string, unknown>): RemoteError {
  return new RemoteError(
    typeof m.type === 'string' ? printable(m.type) : 'Error',
    typeof m.message === 'string' ? printable(m.message) : '',
    typeof m.errno === 'number' ? m.errno : null,
    typeof m.tb === 'string' ? printable(m.tb) : null,
  );
}

/** Python 2 has no sys.stdin.buffer: stage 0 stops at its first statement, in words only a traceback says. */
const PYTHON2_STAGE0 = /AttributeError: 'file' object has no attribute 'buffer'/;

/** Why the host's interpreter ended before its handshake, and what to do when the traceback shows it is a Python 2. */
function beforeHello(reason: string): string {
  return PYTHON2_STAGE0.test(reason) ? `${reason}\n(this interpreter is a Python 2: the runtime needs Python 3.8 or later; name one with --python, or install python3 there)` : reason;
}

function checkHello(m: Record<string, unknown>): Hello | ProtocolError {
  if (m.t !== 'hello') return new ProtocolError(`the host's first message is "${printable(String(m.t))}", not the handshake`);
  if (m.v !== PROTOCOL_VERSION) return new ProtocolError(`the host speaks runtime protocol version ${printable(String(JSON.stringify(m.v)))}; remux speaks ${PROTOCOL_VERSION}`);
  if (!Array.isArray(m.caps) || typeof m.py !== 'string' || typeof m.pid !== 'number' || typeof m.cwd !== 'string' || typeof m.cap !== 'number') {
    return new ProtocolError('the host sent a handshake without caps, py, pid, cwd or cap');
  }
  return m as unknown as Hello;
}
