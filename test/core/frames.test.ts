// Frames cut out of a stream as it is read (core/frames.ts), as the client <-> daemon connection cuts them
// (protocol.ts FrameReader): whatever way the reads cut the stream, every frame comes out whole and in
// order; a frame inside one read is handed on as a view of it, not copied; one past the limit is refused
// from its header, before its bytes are waited for; bytes kept are never a small part of what they hold.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { owned } from '../../src/core/frames.js';
import { FRAME, frame, FrameReader } from '../../src/gateway/protocol.js';

function collect(max = 1 << 20): { reader: FrameReader; got: Array<[number, Buffer]> } {
  const got: Array<[number, Buffer]> = [];
  return { reader: new FrameReader((type, payload) => got.push([type, Buffer.from(payload)]), max), got };
}

test('frames come out whole and in order however the reads cut them: at every byte, several in one read, a header split', () => {
  const sent: Array<[number, Buffer]> = [
    [FRAME.stdin, randomBytes(70_000)],
    [FRAME.stdinEnd, Buffer.alloc(0)],
    [FRAME.answer, Buffer.from('yes')],
    [FRAME.stdin, randomBytes(3)],
  ];
  const stream = Buffer.concat(sent.map(([type, payload]) => frame(type, payload)));
  // Cut into pieces of each size from 1 byte up (1, 2, 3, 5, 7 … and reads larger than a frame).
  for (const size of [1, 2, 3, 4, 5, 6, 7, 64, 4096, 65_536, 70_005, stream.length]) {
    const { reader, got } = collect();
    for (let at = 0; at < stream.length; at += size) reader.push(stream.subarray(at, at + size));
    assert.deepEqual(got, sent, `reads of ${size} bytes`);
  }
});

test('a frame within one read is a view of that read (not copied); one over reads is joined once, holding only its own bytes', () => {
  const payloads: Buffer[] = [];
  const reader = new FrameReader((_type, payload) => payloads.push(payload), 1 << 20);
  const read = Buffer.concat([frame(FRAME.stdin, Buffer.from('one')), frame(FRAME.stdin, Buffer.from('two'))]);
  reader.push(read);
  assert.deepEqual(payloads.map(String), ['one', 'two']);
  for (const p of payloads) assert.equal(p.buffer, read.buffer, 'a view of the read');
  const big = frame(FRAME.stdin, Buffer.alloc(100_000, 7));
  const next = frame(FRAME.stdin, Buffer.from('after'));
  reader.push(big.subarray(0, 60_000));
  reader.push(Buffer.concat([big.subarray(60_000), next]));
  assert.equal(payloads.length, 4);
  assert.equal(payloads[2]!.length, 100_000);
  assert.ok(payloads[2]!.every((b) => b === 7));
  // Joined into a buffer of the frame alone: the next frame's bytes are not in it.
  assert.equal(payloads[2]!.buffer.byteLength, 100_005);
  assert.equal(String(payloads[3]), 'after');
});

test('a frame over the limit is refused from its header, before its bytes are waited for', () => {
  const { reader } = collect(1024);
  const head = frame(FRAME.stdin, Buffer.alloc(2048)).subarray(0, 5);
  assert.throws(() => reader.push(head), /protocol frame of 2048 bytes is over the 1024 limit/);
});

test('bytes kept are owned: a small frame in a large read is copied out of it, so what waits never holds much more than itself', () => {
  const payloads: Buffer[] = [];
  const reader = new FrameReader((_type, payload) => payloads.push(owned(payload)), 1 << 20);
  // One tiny stdin frame among 64 KiB of other frames, in one read: kept, it would hold the whole read.
  const read = Buffer.concat([frame(FRAME.stdin, Buffer.from('x')), frame(FRAME.answer, Buffer.alloc(65_000))]);
  reader.push(read);
  assert.equal(String(payloads[0]), 'x');
  assert.notEqual(payloads[0]!.buffer, read.buffer);
  assert.ok(payloads[0]!.buffer.byteLength <= 8192, 'a copy of its own (or in the small-buffer pool)');
  // Most of its read: kept as it is.
  assert.equal(payloads[1]!.buffer, read.buffer);
});
