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
  const { g, out } = gate({ maxBytes: null, redact: [], redactBlocks: [] });
  const a = Buffer.from('no newline here');
  const src = g.source('stdout');
  src.write(a);
  assert.equal(out[0], a);
  assert.equal(g.bytesOut, a.length);
});

test('cap counts stdout and stderr together, delivers exactly maxBytes, fires once', () => {
  const { g, out, err, limits } = gate({ maxBytes: 10, redact: [], redactBlocks: [] });
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
  const { g, out } = gate({ maxBytes: 3, redact: [], redactBlocks: [] });
  g.source('stdout').write(Buffer.from('abc'));
  assert.equal(Buffer.concat(out).toString(), 'abc');
  assert.equal(g.truncated, false);
});

test('redaction catches a secret split across chunks and flushes the tail at end', () => {
  const { g, out } = gate({ maxBytes: null, redact: [/password=\S+/], redactBlocks: [] });
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
  const { g, out } = gate({ maxBytes: null, redact: [re, /\d{4}-\d{4}/], redactBlocks: [] });
  const src = g.source('stdout');
  src.write(Buffer.from('KEY: abc\nkey: x y\n1111-2222 and 3333-4444\n'));
  src.end();
  assert.equal(Buffer.concat(out).toString(), '[REDACTED]\nkey: x y\n[REDACTED] and [REDACTED]\n');
  assert.equal(re.lastIndex, 0);
});

test('redaction output goes to its own destination and counts redacted bytes', () => {
  const { g, err } = gate({ maxBytes: null, redact: [/secret/], redactBlocks: [] });
  const src = g.source('stderr');
  src.write(Buffer.from('a secret\n'));
  assert.equal(Buffer.concat(err).toString(), 'a [REDACTED]\n');
  assert.equal(g.bytesErr, 'a [REDACTED]\n'.length);
});

test('redaction matches non-ASCII patterns in UTF-8 and keeps non-UTF-8 bytes intact', () => {
  const { g, out } = gate({ maxBytes: null, redact: [/contraseña=\S+/], redactBlocks: [] });
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
  const { g, out } = gate({ maxBytes: null, redact: [/nomatch/], redactBlocks: [] });
  const src = g.source('stdout');
  src.write(Buffer.alloc(MAX_LINE_BUFFER + 10, 'a'));
  assert.equal(Buffer.concat(out).length, MAX_LINE_BUFFER);
  src.end();
  assert.equal(Buffer.concat(out).length, MAX_LINE_BUFFER + 10);
});

test('forced cuts do not split a UTF-8 sequence', () => {
  const { g, out } = gate({ maxBytes: null, redact: [/nomatch/], redactBlocks: [] });
  const src = g.source('stdout');
  const text = 'a'.repeat(MAX_LINE_BUFFER - 1) + 'é' + 'b';
  src.write(Buffer.from(text));
  src.end();
  assert.equal(out.length, 2);
  assert.equal(out[0]?.toString(), 'a'.repeat(MAX_LINE_BUFFER - 1));
  assert.equal(Buffer.concat(out).toString(), text);
});

const KEY_BLOCK = { from: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/, to: /-----END [A-Z0-9 ]*PRIVATE KEY-----/ };
const KEY = [
  '-----BEGIN RSA PRIVATE KEY-----',
  'MIIEowIBAAKCAQEAx'.padEnd(64, 'A'),
  'B'.repeat(64),
  'Cw==',
  '-----END RSA PRIVATE KEY-----',
].join('\n');

/** Feeds text `size` bytes at a time into one source, then ends it; returns what reached stdout. */
function feed(limits: OutputLimits, text: string, size: number): string {
  const { g, out } = gate(limits);
  const src = g.source('stdout');
  const buf = Buffer.from(text);
  for (let i = 0; i < buf.length; i += size) src.write(buf.subarray(i, i + size));
  src.end();
  return Buffer.concat(out).toString();
}

test('a block is redacted line by line across chunk boundaries; text around it untouched', () => {
  const text = `before the key password=x\n${KEY}\nafter the key\n`;
  const expected = 'before the key [REDACTED]\n' + '[REDACTED]\n'.repeat(5) + 'after the key\n';
  const limits = { maxBytes: null, redact: [/password=\S+/], redactBlocks: [KEY_BLOCK] };
  for (const size of [1, 7, 64, text.length]) assert.equal(feed(limits, text, size), expected, `chunks of ${size}`);
  // Blocks alone, no line patterns: still line-buffered, not the pass-through path.
  assert.equal(feed({ maxBytes: null, redact: [], redactBlocks: [KEY_BLOCK] }, `a\n${KEY}\nb`, 7), 'a\n' + '[REDACTED]\n'.repeat(5) + 'b');
});

test('a block that never ends keeps everything after its start redacted, even the unterminated tail', () => {
  const limits = { maxBytes: null, redact: [], redactBlocks: [KEY_BLOCK] };
  assert.equal(feed(limits, 'ok\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n\nshort', 7), 'ok\n[REDACTED]\n[REDACTED]\n[REDACTED]\n[REDACTED]');
});

test('two blocks in one stream, two kinds of block, and a block closed on its own line', () => {
  const other = { from: /^BEGIN SECRET$/, to: /^END SECRET$/ };
  const limits = { maxBytes: null, redact: [], redactBlocks: [KEY_BLOCK, other] };
  const text = `one\n${KEY}\ntwo\nBEGIN SECRET\ns3cr3t\nEND SECRET\nthree\n${KEY}\nfour\n`;
  const r = (n: number): string => '[REDACTED]\n'.repeat(n);
  assert.equal(feed(limits, text, 7), `one\n${r(5)}two\n${r(3)}three\n${r(5)}four\n`);
  // `to` further along the `from` line closes the block there; CRLF line ends keep their \r.
  const flat = feed(limits, '{"key":"-----BEGIN EC PRIVATE KEY-----\\nMHc\\n-----END EC PRIVATE KEY-----"}\r\nnext\r\n', 5);
  assert.equal(flat, '[REDACTED]\r\nnext\r\n');
  // A block only opens on its own `from`: an END line alone is just a line.
  assert.equal(feed(limits, 'END SECRET\nx\n', 3), 'END SECRET\nx\n');
});

test('block state is per source stream', () => {
  const { g, out, err } = gate({ maxBytes: null, redact: [], redactBlocks: [KEY_BLOCK] });
  const o = g.source('stdout');
  const e = g.source('stderr');
  o.write(Buffer.from('-----BEGIN PRIVATE KEY-----\nMIIE\n'));
  e.write(Buffer.from('warning: something\n'));
  o.write(Buffer.from('-----END PRIVATE KEY-----\nfine\n'));
  assert.equal(Buffer.concat(out).toString(), '[REDACTED]\n[REDACTED]\n[REDACTED]\nfine\n');
  assert.equal(Buffer.concat(err).toString(), 'warning: something\n');
});

test('a line longer than the buffer limit stays redacted in all its pieces inside a block', () => {
  const { g, out } = gate({ maxBytes: null, redact: [], redactBlocks: [KEY_BLOCK] });
  const src = g.source('stdout');
  src.write(Buffer.from('-----BEGIN PRIVATE KEY-----\n'));
  src.write(Buffer.alloc(MAX_LINE_BUFFER * 2 + 10, 'k'));
  src.write(Buffer.from('kkk\n-----END PRIVATE KEY-----\nafter\n'));
  src.end();
  assert.equal(Buffer.concat(out).toString(), '[REDACTED]\n[REDACTED]\n[REDACTED]\nafter\n');
  // A block opening in the middle of a long line also takes that line's further pieces.
  const second = gate({ maxBytes: null, redact: [], redactBlocks: [KEY_BLOCK] });
  const s2 = second.g.source('stdout');
  s2.write(Buffer.from('x'.repeat(MAX_LINE_BUFFER - 100) + '-----BEGIN PRIVATE KEY-----' + 'k'.repeat(MAX_LINE_BUFFER)));
  s2.write(Buffer.from('\n-----END PRIVATE KEY-----\ntail'));
  s2.end();
  assert.equal(Buffer.concat(second.out).toString(), '[REDACTED]\n[REDACTED]\ntail');
});

test('with neither patterns nor blocks the output is byte-exact, chunk for chunk', () => {
  const { g, out } = gate({ maxBytes: null, redact: [], redactBlocks: [] });
  const src = g.source('stdout');
  const chunks = [Buffer.from(`${KEY}\r\n`), Buffer.from([0xff, 0x00, 0x0a, 0x80]), Buffer.from('tail')];
  for (const c of chunks) src.write(c);
  src.end();
  assert.equal(out.length, chunks.length);
  out.forEach((c, i) => assert.equal(c, chunks[i]));
});
