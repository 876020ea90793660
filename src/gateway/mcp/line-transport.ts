// MCP over newline-delimited JSON (stdio, and the daemon's socket relaying a stdio client), in place of
// the SDK's StdioServerTransport: its reader refuses a line over 10 MiB by closing the transport, so a
// large write killed the session with no word (or, through the daemon, left it hanging forever). Here
// a message over our own limit is skipped and answered with a JSON-RPC error under its id, and an
// answer larger than the SDK's client reads (it drops the connection) is replaced by such an error.
import type { Readable, Writable } from 'node:stream';
import { STDIO_DEFAULT_MAX_BUFFER_SIZE } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, isJSONRPCRequest, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import { parseOffThread, POISONED, poisoned } from './parse-worker.js';

/** write_file's content at most (characters). */
export const MCP_WRITE_MAX = 8 << 20;

/**
 * The largest message remux reads (a stdio line, an HTTP body): a write_file of MCP_WRITE_MAX characters
 * of text, 3 bytes each at most in UTF-8, and the rest of its request. Only text mostly of control
 * characters (JSON escapes each to 6 bytes) needs more, and is refused. The daemon parses a message on
 * its one thread: 64 MiB of it held every other client up for seconds.
 */
export const MCP_MESSAGE_MAX = MCP_WRITE_MAX * 3 + (1 << 20);

/**
 * The JSON values a message may hold: tool arguments are a few values and large strings (send_keys:
 * 100 keys at most). Parsing costs by the value: 25 MiB of empty arrays took JSON.parse 8 s.
 */
export const MCP_MESSAGE_VALUES = 100_000;

/** The largest answer line the SDK's stdio client reads with its defaults, less one pipe read of what follows it. */
export const MCP_ANSWER_MAX = STDIO_DEFAULT_MAX_BUFFER_SIZE - (64 << 10);

const MiB = (n: number): string => `${Math.round((n / (1 << 20)) * 10) / 10} MiB`;

/** Why a message over `max` is not read; `bytes` null: how large it is is not known (a body not read to its end). */
export function tooLarge(bytes: number | null, max = MCP_MESSAGE_MAX): string {
  return `the message of ${bytes === null ? `more than ${MiB(max)}` : MiB(bytes)} is larger than the ${MiB(max)} remux reads: send less in one call (write_file takes at most ${MiB(MCP_WRITE_MAX)} of text)`;
}

/**
 * A message over LARGE_MESSAGE takes one of its principal's LARGE_MESSAGES places while it is read and
 * parsed, whatever the transport (HTTP bodies, stdio clients relayed by the daemon): parsed on the
 * daemon's one thread (a few hundred ms for the largest), one principal cannot queue up many such
 * parses, nor hold many such messages in memory at once, however many clients it runs.
 */
export const LARGE_MESSAGE = 1 << 20;
export const LARGE_MESSAGES = 2;

export class LargeMessages {
  private readonly taken = new Map<string, number>();

  /** A place for one of `principal`'s large messages, or null when it holds them all; the function gives it back (once). */
  take(principal: string): (() => void) | null {
    const taken = this.taken.get(principal) ?? 0;
    if (taken >= LARGE_MESSAGES) return null;
    this.taken.set(principal, taken + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = this.taken.get(principal)! - 1;
      if (left === 0) this.taken.delete(principal);
      else this.taken.set(principal, left);
    };
  }
}

/** Why a message is refused while its principal's large messages hold every place. */
export const busyText = (principal: string): string =>
  `principal ${principal} is already sending ${LARGE_MESSAGES} MCP messages over ${LARGE_MESSAGE >> 20} MiB: send this one once one of them is answered`;

export const TOO_MANY_VALUES = `the message holds more than the ${MCP_MESSAGE_VALUES} JSON values remux reads in one: send fewer in one call`;

/**
 * Counts the values of a JSON text as it arrives, chunk by chunk (each `[`, `{` and `,` outside a string
 * begins one), so that a message of too many is refused before JSON.parse spends seconds on it. A
 * string's content is skipped by searching for its next quote, which ends it unless an odd run of
 * backslashes comes right before: escapes are not visited one by one (text of control characters, each
 * a 6-byte escape, took the counter 100 ms for a 25 MiB message, on the daemon's one thread).
 */
export class ValueCounter {
  values = 0;
  private inString = false;
  /** The last chunk ended inside a string on an odd run of backslashes: the next byte is escaped. */
  private escaped = false;

  /** Counts `chunk`'s values; returns the count so far. */
  push(chunk: Uint8Array): number {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    const n = bytes.length;
    /** Backslashes right before `end`, back to `from` (no escape is open before `from`). */
    const run = (end: number, from: number): number => {
      let j = end;
      while (j > from && bytes[j - 1] === 0x5c) j--;
      return end - j;
    };
    let i = 0;
    while (i < n) {
      if (!this.inString) {
        const c = bytes[i++]!;
        if (c === 0x22) this.inString = true;
        else if (c === 0x5b || c === 0x7b || c === 0x2c) this.values++;
        continue;
      }
      if (this.escaped) {
        this.escaped = false;
        i++;
        continue;
      }
      const quote = bytes.indexOf(0x22, i);
      if (quote === -1) {
        this.escaped = run(n, i) % 2 === 1;
        break;
      }
      if (run(quote, i) % 2 === 0) this.inString = false;
      i = quote + 1;
    }
    return this.values;
  }
}

/**
 * The id of a request known only by its first and last bytes: SDK clients put `"id"` last, others often
 * first. Inside a JSON string a quote is escaped, so an unescaped `"id":` there is a key.
 */
export function idOf(head: string, tail: string): RequestId | undefined {
  const ID = String.raw`"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")`;
  const found = new RegExp(String.raw`^\s*\{(?:\s*"jsonrpc"\s*:\s*"2\.0"\s*,)?\s*${ID}`).exec(head) ?? new RegExp(String.raw`,\s*${ID}\s*\}\s*$`).exec(tail);
  return found ? (JSON.parse(found[1]!) as RequestId) : undefined;
}

export class LineTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private chunks: Buffer[] = [];
  private size = 0;
  private counter = new ValueCounter();
  /** While a line not read goes by: its first and last bytes (for its id), its length so far, and why it is not read. */
  private skipping: { head: string; tail: Buffer; bytes: number; why: 'size' | 'values' | 'busy' } | null = null;
  /** The current line's large-message place, while it holds one. */
  private release: (() => void) | null = null;
  /** Settles once the lines read so far are delivered; null when they are. */
  private turn: Promise<void> | null = null;
  private closed = false;
  /** Requests delivered and not answered yet, by id: what answered() waits for. */
  private readonly unanswered = new Map<RequestId, unknown>();
  /** Set while answered() waits: called once none is left (or the transport closed). */
  private drained: (() => void) | null = null;

  /**
   * `large` (the daemon's clients): the line's principal's places for large messages, which a line over
   * LARGE_MESSAGE takes until it is parsed; without one it is refused, saying why (`busy`).
   */
  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly maxMessage = MCP_MESSAGE_MAX,
    private readonly large?: { take: () => (() => void) | null; busy: string },
  ) {}

  private readonly ondata = (chunk: Buffer): void => {
    let from = 0;
    for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
      this.take(chunk.subarray(from, nl));
      this.endLine();
      from = nl + 1;
    }
    if (from < chunk.length) this.take(chunk.subarray(from));
  };

  private readonly oninputerror = (error: Error): void => this.onerror?.(error);

  /** Part of the current line: kept while it fits, else only counted. */
  private take(part: Buffer): void {
    if (this.skipping === null) {
      const size = this.size + part.length;
      const why = size > this.maxMessage ? 'size' : !this.placed(size) ? 'busy' : this.counter.push(part) > MCP_MESSAGE_VALUES ? 'values' : null;
      if (why === null) {
        this.chunks.push(part);
        this.size = size;
        return;
      }
      const start = Buffer.concat([...this.chunks, part]);
      this.skipping = { head: start.subarray(0, 256).toString('utf8'), tail: Buffer.from(start.subarray(-256)), bytes: start.length, why };
      this.chunks = [];
      this.size = 0;
      this.giveBack();
      return;
    }
    this.skipping.bytes += part.length;
    this.skipping.tail = Buffer.concat([this.skipping.tail, part]).subarray(-256);
  }

  /** Whether a line of `size` bytes so far may be read on: a large one while it holds (or can take) a place. */
  private placed(size: number): boolean {
    if (size <= LARGE_MESSAGE || this.large === undefined || this.release !== null) return true;
    this.release = this.large.take();
    return this.release !== null;
  }

  private giveBack(): void {
    this.release?.();
    this.release = null;
  }

  private endLine(): void {
    const { skipping: skipped, chunks, size } = this;
    const release = this.release;
    this.chunks = [];
    this.size = 0;
    this.counter = new ValueCounter();
    this.skipping = null;
    this.release = null;
    if (skipped !== null) {
      const why = { size: () => tooLarge(skipped.bytes, this.maxMessage), values: () => TOO_MANY_VALUES, busy: () => this.large!.busy }[skipped.why]();
      return this.inTurn(() => this.refuse(idOf(skipped.head, skipped.tail.toString('utf8')), ErrorCode.InvalidRequest, why));
    }
    if (size <= LARGE_MESSAGE) {
      const line = Buffer.concat(chunks).toString('utf8');
      if (line.trim() === '') return;
      return this.inTurn(() => {
        let message: JSONRPCMessage;
        try {
          // Not parsed against JSONRPCMessageSchema here as the SDK's transport does: its Protocol checks each
          // message's shape itself (isJSONRPCRequest…, reporting any other as an unknown message) and each
          // request's params against its method's schema; the union parse cost ~0.03 ms a call.
          message = JSON.parse(line) as JSONRPCMessage;
          // As every HTTP body is parsed (fastify), and a large line off the thread.
          if (poisoned(message)) throw new SyntaxError(POISONED);
        } catch (err) {
          return this.parseFailed(line.slice(0, 256), line.slice(-256), err as Error);
        }
        this.deliver(message);
      });
    }
    // Its place is held until it is parsed; the lines after it wait their turn.
    const whole = Buffer.concat([chunks[0]!.subarray(0, 256), chunks.at(-1)!.subarray(-256)]);
    const [head, tail] = [whole.subarray(0, 256).toString('utf8'), whole.subarray(-256).toString('utf8')];
    const deliver = parseOffThread(chunks)
      .finally(release ?? undefined)
      .then(
        (message) => () => this.deliver(message as JSONRPCMessage),
        (err: Error) => () => this.parseFailed(head, tail, err),
      );
    this.inTurn(() => deliver.then((step) => step()));
  }

  /** Hands a message to the SDK, noting the requests it will answer (answered()). */
  private deliver(message: JSONRPCMessage): void {
    // Checked loosely here (the SDK checks each message itself; its schema costs a call ~0.01 ms): answered() checks what is left with the SDK's own test.
    const m = message as { id?: unknown; method?: unknown; params?: { requestId?: unknown } } | null;
    if (typeof m === 'object' && m !== null && typeof m.method === 'string') {
      if (typeof m.id === 'string' || typeof m.id === 'number') this.unanswered.set(m.id, m);
      // A request its client cancelled is not answered (the SDK drops its answer).
      else if (m.method === 'notifications/cancelled') this.answer(m.params?.requestId);
    }
    this.onmessage?.(message);
  }

  private answer(id: unknown): void {
    if ((typeof id !== 'string' && typeof id !== 'number') || !this.unanswered.delete(id)) return;
    if (this.unanswered.size === 0) this.drained?.();
  }

  /**
   * Resolves once every request read so far has been answered (or cancelled by its client), the lines
   * still being parsed delivered first: once a client's input has ended, what it asked by then is
   * answered before the session closes, as a script piping its requests in expects.
   */
  async answered(): Promise<void> {
    while (this.turn !== null) await this.turn;
    // What the SDK does not take as a request (a malformed one) it reports and leaves unanswered: nothing to wait for.
    for (const [id, m] of this.unanswered) if (!isJSONRPCRequest(m)) this.unanswered.delete(id);
    if (this.unanswered.size === 0 || this.closed) return;
    await new Promise<void>((resolve) => (this.drained = resolve));
  }

  /** The SDK's transport only reports and skips a line that is not JSON, leaving its sender waiting for an answer: JSON-RPC answers it with a parse error, under its id when one can be read from it. */
  private parseFailed(head: string, tail: string, err: Error): void {
    this.refuse(idOf(head, tail), ErrorCode.ParseError, `Parse error: ${err.message}`);
  }

  /** Runs `step` (a line's delivery) once the lines before it are delivered: at once unless a large one is still being parsed. */
  private inTurn(step: () => void | Promise<void>): void {
    const run = (): void | Promise<void> => (this.closed ? undefined : step()?.catch((err: unknown) => this.onerror?.(err as Error)));
    if (this.turn === null) {
      const pending = run();
      if (pending === undefined) return;
      this.turn = pending;
    } else this.turn = this.turn.then(run);
    const mine = this.turn;
    void mine.finally(() => {
      if (this.turn === mine) this.turn = null;
    });
  }

  /** Reports a line that is not read as a message and answers it with a JSON-RPC error (no id when none is known). */
  private refuse(id: RequestId | undefined, code: ErrorCode, message: string): void {
    this.onerror?.(new Error(message));
    void this.send({ jsonrpc: '2.0', ...(id !== undefined ? { id } : {}), error: { code, message } } as JSONRPCMessage);
  }

  async start(): Promise<void> {
    this.input.on('data', this.ondata);
    this.input.on('error', this.oninputerror);
  }

  async close(): Promise<void> {
    this.input.off('data', this.ondata);
    this.input.off('error', this.oninputerror);
    if (this.input.listenerCount('data') === 0) this.input.pause();
    // The lines read before the end are delivered (a large one may still be being parsed), and what is
    // answered at once is answered (closing aborts the requests under way), as when none waited on a parse.
    if (this.turn !== null) {
      await this.turn;
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.chunks = [];
    this.skipping = null;
    this.closed = true;
    this.giveBack();
    this.drained?.();
    this.onclose?.();
  }

  send(message: JSONRPCMessage): Promise<void> {
    if ('id' in message && ('result' in message || 'error' in message)) this.answer(message.id);
    let line = JSON.stringify(message);
    if (Buffer.byteLength(line) > MCP_ANSWER_MAX && 'result' in message) {
      const error = `the answer of ${MiB(Buffer.byteLength(line))} is larger than the ${MiB(MCP_ANSWER_MAX)} an MCP client reads: ask for less in one call`;
      line = JSON.stringify({ jsonrpc: '2.0', id: message.id, error: { code: ErrorCode.InternalError, message: error } });
    }
    return new Promise((resolve) => {
      if (this.output.write(`${line}\n`)) resolve();
      else this.output.once('drain', resolve);
    });
  }
}
