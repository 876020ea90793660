import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_LINE_BUFFER, OutputGate } from '../../src/exec/index.js';
import type { OutputLimits } from '../../src/policy/types.js';

function gate(limits: OutputLimits): { g: OutputGate; out: Buffer[]; err: Buffer[]; limits: number[] } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const hits: number[] = [];
  const g = new OutputGate(limits, { stdout: (c) => out.push(c), stderr: (c) => err.push(c) }, () => hits.push(1));
  return { g, out, err, limits: hits };
}

test('without patterns chunks pass through untouched (same Buffer objects)', () => {
  const { g, out } = gate({ maxBytes: null, redact: [] });
  const a = Buffer.from('no newline here');
  const src = g.source('stdout');
  src.write(a);
  assert.equal(out[0], a);
  assert.equal(g.bytesOut, a.length);
});

test('cap counts stdout and stderr together, delivers exactly maxBytes, fires once', () => {
  const { g, out, err, limits } = gate({ maxBytes: 10, redact: [] });
  const o = g.source('stdout');
  const e = g.source('stderr');
  o.write(Buffer.from('123456'));
  e.write(Buffer.from('abc'));
  o.write(Buffer.from('XYZ'));
  o.write(Buffer.from('more'));
  assert.equal(Buffer.concat(out).toString(), '123456X');
  assert.equal(Buffer.concat(err).toString(), 'abc');
  assert.equal(g.bytesOut + g.bytesErr, 10);
  assert.equal(g.truncated, true);
  assert.deepEqual(limits, [1]);
});

test('output exactly at the cap is not truncated', () => {
  const { g, out } = gate({ maxBytes: 3, redact: [] });
  g.source('stdout').write(Buffer.from('abc'));
  assert.equal(Buffer.concat(out).toString(), 'abc');
  assert.equal(g.truncated, false);
});

test('redaction catches a secret split across chunks and flushes the tail at end', () => {
  const { g, out } = gate({ maxBytes: null, redact: [/password=\S+/] });
  const src = g.source('stdout');
  src.write(Buffer.from('user=bob pass'));
  assert.equal(out.length, 0, 'incomplete line is held back');
  src.write(Buffer.from('word=hunter2\nnext line'));
  src.write(Buffer.from(' token=abc'));
  src.end();
  assert.equal(Buffer.concat(out).toString(), 'user=bob [REDACTED]\nnext line token=abc');
});

test('redaction: every match, per line anchors, flags kept, caller regex untouched', () => {
  const re = /^key:\s*\w+$/i;
  const { g, out } = gate({ maxBytes: null, redact: [re, /\d{4}-\d{4}/] });
  const src = g.source('stdout');
  src.write(Buffer.from('KEY: abc\nkey: x y\n1111-2222 and 3333-4444\n'));
  src.end();
  assert.equal(Buffer.concat(out).toString(), '[REDACTED]\nkey: x y\n[REDACTED] and [REDACTED]\n');
  assert.equal(re.lastIndex, 0);
});

test('redaction output goes to its own destination and counts redacted bytes', () => {
  const { g, err } = gate({ maxBytes: null, redact: [/secret/] });
  const src = g.source('stderr');
  src.write(Buffer.from('a secret\n'));
  assert.equal(Buffer.concat(err).toString(), 'a [REDACTED]\n');
  assert.equal(g.bytesErr, 'a [REDACTED]\n'.length);
});

test('redaction matches non-ASCII patterns in UTF-8 and keeps non-UTF-8 bytes intact', () => {
  const { g, out } = gate({ maxBytes: null, redact: [/contraseña=\S+/] });
  const src = g.source('stdout');
  const binary = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x0a]);
  src.write(Buffer.from('contraseña=ñandú ok\n'));
  src.write(binary);
  src.end();
  const all = Buffer.concat(out);
  assert.equal(all.subarray(0, all.length - binary.length).toString(), '[REDACTED] ok\n');
  assert.deepEqual(all.subarray(all.length - binary.length), binary);
});

test('a line longer than the buffer limit is delivered in pieces, not held forever', () => {
  const { g, out } = gate({ maxBytes: null, redact: [/nomatch/] });
  const src = g.source('stdout');
  src.write(Buffer.alloc(MAX_LINE_BUFFER + 10, 'a'));
  assert.equal(Buffer.concat(out).length, MAX_LINE_BUFFER);
  src.end();
  assert.equal(Buffer.concat(out).length, MAX_LINE_BUFFER + 10);
});

test('forced cuts do not split a UTF-8 sequence', () => {
  const { g, out } = gate({ maxBytes: null, redact: [/nomatch/] });
  const src = g.source('stdout');
  const text = 'a'.repeat(MAX_LINE_BUFFER - 1) + 'é' + 'b';
  src.write(Buffer.from(text));
  src.end();
  assert.equal(out.length, 2);
  assert.equal(out[0]?.toString(), 'a'.repeat(MAX_LINE_BUFFER - 1));
  assert.equal(Buffer.concat(out).toString(), text);
});
