// What starts the runtime on a host: stage 0, a one-line `python3 -c` program given as the command's
// argv, reads a length-prefixed zlib stage 1 (remote/stage1.py) from stdin and runs it. Stage 1 is only
// what must come before the handshake: it protects the stream and says hello. Once the local side has
// checked the hello (version, Python) it sends stage 2 (remote/stage2.py, the protocol loop) as the
// first frame (link.ts). Tool code (remote/tools/*.py) is not part of either: it is sent on first use.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { quoteWord } from '../command/render.js';

/** The protocol version stage 1 speaks; the handshake refuses any other. */
export const PROTOCOL_VERSION = 1;

/** Stage 0: reads 4 bytes of length, then that much zlib, and runs it. Double quotes only: it is single-quoted for sh. */
export const STAGE0 = 'import sys,zlib;r=sys.stdin.buffer.read;exec(zlib.decompress(r(int.from_bytes(r(4),"big"))))';

// The same relative path from dist/src/runtime/*.js and from the bundle dist/src/cli/remux.cjs: the
// package root, whose src/runtime/remote is shipped (package.json "files").
const REMOTE_DIR = fileURLToPath(new URL('../../../src/runtime/remote/', import.meta.url));

export function remoteSource(name: string): string {
  return readFileSync(`${REMOTE_DIR}${name}`, 'utf8');
}

/** Full-line comments and blank lines go; indentation shrinks to one space a level (the source uses four). */
export function minify(source: string): string {
  return source
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trim().startsWith('#'))
    .map((line) => {
      const body = line.trimStart();
      return ' '.repeat((line.length - body.length) / 4) + body;
    })
    .join('\n');
}

let stage1: Buffer | null = null;

/** The bytes written to stdin before the handshake: a 4-byte length and the compressed stage 1. */
export function stage1Frame(): Buffer {
  if (!stage1) {
    const packed = deflateSync(minify(remoteSource('stage1.py')), { level: 9 });
    const head = Buffer.alloc(4);
    head.writeUInt32BE(packed.length);
    stage1 = Buffer.concat([head, packed]);
  }
  return stage1;
}

/**
 * The interpreter the runtime starts in unless told otherwise: the host's own python3, found as its login
 * shell finds it. Any other is a program the caller chose, checked by the policy first (admitInterpreter).
 */
export const DEFAULT_PYTHON = 'python3';

/** The argv that starts stage 0 with `python` (a local process, `docker exec -i CONTAINER …`). */
export function stage0Argv(python = DEFAULT_PYTHON): string[] {
  return [python, '-c', STAGE0];
}

/** The same as one sh command line, for an SSH exec channel. */
export function stage0Command(python = DEFAULT_PYTHON): string {
  return `exec ${stage0Argv(python).map(quoteWord).join(' ')}`;
}

let stage2: string | null = null;

/** The protocol loop, sent as the first frame after the handshake. */
export function stage2Source(): string {
  return (stage2 ??= minify(remoteSource('stage2.py')));
}

/** A tool's remote code, keyed by its content hash: a changed tool is a different key, so it is sent again. */
export interface ToolSource {
  name: string;
  source: string;
  hash: string;
}

export function toolSource(name: string, source: string): ToolSource {
  const body = minify(source);
  return { name, source: body, hash: createHash('sha256').update(body).digest('hex').slice(0, 32) };
}
