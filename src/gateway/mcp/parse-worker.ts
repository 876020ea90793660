// JSON.parse of a large MCP message (up to 25 MiB: a write_file) off the daemon's one thread: there its
// decoding and parsing held every other client's requests up for a few hundred ms. One worker thread,
// started on first use, parses the messages handed to it one after another; the main thread only copies
// the bytes over and the parsed value back.
import { Worker } from 'node:worker_threads';

/** Why a message with a key JSON.parse keeps but an object assignment would take as a prototype is refused (fastify's words). */
export const POISONED = 'Object contains forbidden prototype property';

/**
 * Whether a parsed JSON value holds what fastify's JSON parser (secure-json-parse) refuses in every HTTP
 * body: a __proto__ key, or a constructor key holding a prototype. Every MCP message is held to it, on
 * every transport. Self-contained: the worker below runs its source.
 */
export function poisoned(value: unknown): boolean {
  const own = (o: object, key: string): boolean => Object.prototype.hasOwnProperty.call(o, key);
  const stack = [value];
  while (stack.length > 0) {
    const o = stack.pop();
    if (o === null || typeof o !== 'object') continue;
    if (own(o, '__proto__')) return true;
    const ctor = (o as { constructor?: unknown }).constructor;
    if (own(o, 'constructor') && ctor !== null && typeof ctor === 'object' && own(ctor, 'prototype')) return true;
    for (const key in o) stack.push((o as Record<string, unknown>)[key]);
  }
  return false;
}

// Evaluated as the worker's whole program (the CLI is one bundled file: there is no module to point at).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const poisoned = ${poisoned.toString()};
parentPort.on('message', ({ id, chunks }) => {
  let answer;
  try {
    const value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    answer = poisoned(value) ? { id, error: ${JSON.stringify(POISONED)} } : { id, value };
  } catch (err) {
    answer = { id, error: err instanceof Error ? err.message : String(err) };
  }
  parentPort.postMessage(answer);
});
`;

interface Parser {
  worker: Worker;
  waiting: Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>;
  next: number;
}

let parser: Parser | null = null;

function started(): Parser {
  if (parser !== null) return parser;
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  const p: Parser = { worker, waiting: new Map(), next: 0 };
  worker.on('message', ({ id, value, error }: { id: number; value?: unknown; error?: string }) => {
    const waiting = p.waiting.get(id);
    p.waiting.delete(id);
    if (p.waiting.size === 0) worker.unref();
    if (error !== undefined) waiting?.reject(new SyntaxError(error));
    else waiting?.resolve(value);
  });
  // A worker gone (out of memory, say) fails what it held; the next parse starts another.
  const gone = (err: Error): void => {
    if (parser === p) parser = null;
    for (const { reject } of p.waiting.values()) reject(err);
    p.waiting.clear();
  };
  worker.on('error', gone);
  worker.on('exit', (code) => gone(new Error(`the MCP parse worker ended (${code})`)));
  // Alive while it parses (the process waits for the answer), never once idle; set after its listeners, which would ref it again.
  worker.unref();
  parser = p;
  return p;
}

/**
 * The JSON text in `chunks` (UTF-8) parsed off the main thread; rejects with JSON.parse's SyntaxError
 * message, or POISONED (see poisoned()).
 */
export function parseOffThread(chunks: readonly Buffer[]): Promise<unknown> {
  const p = started();
  const id = p.next++;
  return new Promise((resolve, reject) => {
    p.waiting.set(id, { resolve, reject });
    p.worker.ref();
    p.worker.postMessage({ id, chunks });
  });
}
