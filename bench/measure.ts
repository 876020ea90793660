import { performance } from 'node:perf_hooks';

/** Runs `body` over the items repeatedly for about `ms` milliseconds (after one warm-up pass); returns operations per second. */
export function throughput<T>(items: readonly T[], ms: number, body: (item: T) => unknown): number {
  let sink = 0;
  for (const item of items) if (body(item)) sink++; // warm-up
  let ops = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (const item of items) if (body(item)) sink++;
    ops += items.length;
    elapsed = performance.now() - started;
  }
  if (sink < 0) throw new Error('unreachable'); // keeps the results observable to the optimiser
  return (ops / elapsed) * 1000;
}
