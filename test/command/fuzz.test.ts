// Random and mutated inputs: the parser either returns a well-formed CommandList that survives a render
// round trip, or throws a ParseError with a position inside the input. Nothing else, and never slowly.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommand } from '../../src/command/parser.js';
import { renderCommandList } from '../../src/command/render.js';
import { ParseError } from '../../src/command/types.js';
import type { CommandList } from '../../src/command/types.js';
import { HOSTILE, Picker, generateCorpus, seededRandom } from './support/corpus.js';

const RANDOM_INPUTS = 25_000;
const MUTATED_INPUTS = 35_000;

const ALPHABET = [
  ...'ab2 \t|&;<>()\'"\\$`*?[]{}~#!=:+-.,/%^@',
  ...'\0\x01\n\r\x1b\x7f\x85\x9f',
  'é', '😀', '中', '\u00a0', '\ud800', '\udc00',
];

function randomInput(p: Picker): string {
  return p.chars(ALPHABET, p.int(40));
}

function mutate(p: Picker, source: string): string {
  let s = source;
  const edits = 1 + p.int(4);
  for (let k = 0; k < edits; k++) {
    const at = p.int(s.length + 1);
    switch (p.int(4)) {
      case 0:
        s = s.slice(0, at) + p.pick(ALPHABET) + s.slice(at);
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + 1 + p.int(3));
        break;
      case 2:
        s = s.slice(0, at) + p.pick(ALPHABET) + s.slice(at + 1);
        break;
      default:
        s = s.slice(0, at) + p.pick(HOSTILE) + s.slice(at);
    }
  }
  return s;
}

/** The list without its source positions, which a render round trip does not preserve. */
function shape(list: CommandList): unknown {
  return list.items.map(({ op, pipeline }) => ({
    op,
    stages: pipeline.stages.map((stage) => ({
      argv: stage.argv,
      redirects: stage.redirects.map((r) => ({ ...r, pos: 0 })),
    })),
  }));
}

// Control characters other than tab, and unpaired surrogates, must never reach an accepted argv.
function hasForbiddenCodeUnit(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 32 && c !== 9) || (c >= 127 && c <= 159)) return true;
    if (c >= 0xd800 && c <= 0xdbff) {
      const low = s.charCodeAt(i + 1);
      if (!(low >= 0xdc00 && low <= 0xdfff)) return true;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return true;
    }
  }
  return false;
}

function check(source: string): boolean {
  let list: CommandList;
  try {
    list = parseCommand(source);
  } catch (error) {
    if (!(error instanceof ParseError)) throw error;
    assert.ok(Number.isInteger(error.position) && error.position >= 0 && error.position <= source.length, 'position');
    assert.ok(error.construct.length > 0);
    assert.ok(error.message.endsWith(`(at column ${error.position + 1})`), error.message);
    return false;
  }
  assert.ok(list.items.length > 0);
  let lastPos = -1;
  list.items.forEach(({ op, pipeline }, k) => {
    assert.equal(op === null, k === 0, 'only the first pipeline has no connector');
    assert.ok(pipeline.stages.length > 0);
    for (const stage of pipeline.stages) {
      assert.ok(stage.argv.length > 0, 'a stage has a command word');
      assert.ok(stage.pos > lastPos && stage.pos < source.length, 'stage positions increase inside the input');
      lastPos = stage.pos;
      for (const r of stage.redirects) {
        assert.ok(r.pos >= stage.pos && r.pos < source.length);
        if (r.kind !== 'dup') assert.ok(r.path.length > 0);
      }
    }
  });
  assert.ok(!hasForbiddenCodeUnit(source), 'accepted input contains a control character or lone surrogate');
  assert.deepEqual(shape(parseCommand(renderCommandList(list))), shape(list), 'render round trip');
  return true;
}

test('fuzz: random and mutated inputs give a CommandList or a ParseError, quickly', (t) => {
  const p = new Picker(seededRandom(0xf022));
  const seeds = generateCorpus(2_000, 0xc0ffee);
  let accepted = 0;
  // The slowest inputs, timed again below: one slow once may have met a GC pause or a busy machine,
  // one slow every time is a parser that backtracks or loops.
  let slowest: Array<{ source: string; ms: number }> = [];
  const cpu = process.cpuUsage();
  for (let k = 0; k < RANDOM_INPUTS + MUTATED_INPUTS; k++) {
    const source = k < RANDOM_INPUTS ? randomInput(p) : mutate(p, p.pick(seeds));
    const t0 = performance.now();
    try {
      if (check(source)) accepted++;
    } catch (error) {
      assert.fail(`input ${JSON.stringify(source)}: ${String(error)}`);
    }
    const ms = performance.now() - t0;
    if (slowest.length < 5 || ms > (slowest.at(-1)?.ms ?? 0)) slowest = [...slowest, { source, ms }].sort((a, b) => b.ms - a.ms).slice(0, 5);
  }
  // Processor time, not wall time: other processes on the machine do not count.
  const { user, system } = process.cpuUsage(cpu);
  const cpuMs = (user + system) / 1000;
  const total = RANDOM_INPUTS + MUTATED_INPUTS;
  const again = slowest.map(({ source }) => ({ source, ms: Math.min(...[1, 2, 3].map(() => timed(() => check(source)))) }));
  const worst = again.reduce((a, b) => (b.ms > a.ms ? b : a));
  t.diagnostic(`${total} inputs: accepted ${accepted}, rejected ${total - accepted}; ${cpuMs.toFixed(0)} ms of processor time; slowest ${slowest[0]?.ms.toFixed(2)} ms, at best ${worst.ms.toFixed(2)} ms when timed again`);
  assert.ok(accepted > total * 0.1, 'the fuzzer should reach the accepting paths too');
  assert.ok(worst.ms < 250, `input ${JSON.stringify(worst.source)} takes ${worst.ms} ms every time`);
  assert.ok(cpuMs < 10_000, `fuzzing took ${cpuMs} ms of processor time`);
});

function timed(f: () => unknown): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}
