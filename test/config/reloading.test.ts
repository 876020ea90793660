import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { watchReloading } from '../../src/config/reloading.js';

/** What `read` returns call by call (the last one from then on), as a file read at each poll would. */
function scripted(...values: string[]): () => string {
  return () => (values.length > 1 ? (values.shift() as string) : (values[0] as string));
}

/** Watches `read` (polls every 5 ms, settles for 20), collects what read() gives when onChange runs, and stops after `ms`. */
async function changesSeen(read: () => string, ms = 300): Promise<string[]> {
  const seen: string[] = [];
  const watch = watchReloading(read, 5, () => seen.push(read()), 20);
  await sleep(ms);
  watch.stop();
  return seen;
}

describe('watchReloading', () => {
  test('a change is acted on once it has stayed', async () => {
    assert.deepEqual(await changesSeen(scripted('A', 'A', 'B')), ['B']);
  });

  test('what a file read mid-write gives (an empty file, then the new one) is never acted on: the new one is', async () => {
    // The first poll sees the file truncated; by the settle check it holds the new content.
    assert.deepEqual(await changesSeen(scripted('A', 'A', 'EMPTY', 'B')), ['B']);
  });

  test('a change undone before it settled is not acted on at all', async () => {
    assert.deepEqual(await changesSeen(scripted('A', 'A', 'EMPTY', 'A')), []);
  });

  test('an error is a change too (a bad edit is acted on, once it stays)', async () => {
    let calls = 0;
    const read = (): string => {
      calls++;
      if (calls > 2) throw new Error('principals.yaml:3: bad indentation');
      return 'A';
    };
    const seen: number[] = [];
    const watch = watchReloading(read, 5, () => seen.push(calls), 20);
    await sleep(300);
    watch.stop();
    assert.equal(seen.length, 1);
  });
});
