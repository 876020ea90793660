// Audit store write cost, with full durability (each commit followed by an fsync of the WAL) unless said otherwise:
//   (a) sequential begin+end pairs, each awaited (one action at a time: two commits per action);
//   (b) fan-outs of 20 concurrent begin+end pairs, as the daemon does for a 20-host command
//       (group commit: the begins share a commit, so do the ends);
//   (c) the same fan-outs with each action's end arriving from its own timer callback after a 1 ms
//       "command", as the ends of real remote commands do;
// and the cost of one insert with full and normal durability for comparison. Run standalone: node dist/bench/audit.js
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { AuditStore, type AuditBegin, type Durability } from '../src/audit/index.js';

const PAIRS = 2000;
const WIDTH = 20;
const FANOUTS = 100;

function beginRec(i: number): AuditBegin {
  return {
    principal: 'bench',
    host: `host${i % WIDTH}`,
    operation: 'execute_binary',
    argv: ['cat', `/var/log/app/${i}.log`],
    command: `cat /var/log/app/${i}.log`,
    policy: 'read_only',
    rule: 'read_only#1 (policies.yaml:7)',
    decision: 'allow',
    reason: 'cat is allowed',
  };
}

const END = { exitCode: 0, durationMs: 3, bytesOut: 4096, bytesErr: 0 };

async function sequential(store: AuditStore): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < PAIRS; i++) await store.end(await store.begin(beginRec(i)), END);
  return performance.now() - start;
}

interface FanoutFigures {
  actionsPerS: number;
  /** Wall time of one 20-action fan-out's audit writes (median). */
  fanoutMs: number;
  transactionsPerFanout: number;
}

async function fanouts(store: AuditStore, commandMs: number): Promise<FanoutFigures> {
  const before = store.writeStats().transactions;
  const times: number[] = [];
  const start = performance.now();
  for (let f = 0; f < FANOUTS; f++) {
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: WIDTH }, async (_, i) => {
        const id = await store.begin(beginRec(f * WIDTH + i));
        if (commandMs > 0) await sleep(commandMs);
        await store.end(id, END);
      }),
    );
    times.push(performance.now() - t0 - commandMs);
  }
  const ms = performance.now() - start;
  times.sort((a, b) => a - b);
  return {
    actionsPerS: ((FANOUTS * WIDTH) / ms) * 1000,
    fanoutMs: times[Math.floor(times.length / 2)] ?? 0,
    transactionsPerFanout: (store.writeStats().transactions - before) / FANOUTS,
  };
}

async function run(dir: string, durability: Durability): Promise<{
  pairsPerS: number;
  insertUs: number;
  fanout: FanoutFigures;
  fanoutSpread: FanoutFigures;
  verifyRowsPerS: number;
}> {
  const store = AuditStore.open(join(dir, `${durability}.db`), { durability });
  try {
    const ms = await sequential(store);
    const fanout = await fanouts(store, 0);
    const fanoutSpread = await fanouts(store, 1);
    const verifyStart = performance.now();
    const { checked } = store.verify();
    const verifyMs = performance.now() - verifyStart;
    return {
      pairsPerS: (PAIRS / ms) * 1000,
      insertUs: (ms * 1000) / (2 * PAIRS),
      fanout,
      fanoutSpread,
      verifyRowsPerS: (checked / verifyMs) * 1000,
    };
  } finally {
    store.close();
  }
}

export async function benchAudit(): Promise<{ name: string; figures: Record<string, number>; lines: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'remux-bench-audit-'));
  try {
    const full = await run(dir, 'full');
    const normal = await run(dir, 'normal');
    const figures = {
      pairs_per_s: Math.round(full.pairsPerS),
      fanout_actions_per_s: Math.round(full.fanout.actionsPerS),
      fanout_ms: Number(full.fanout.fanoutMs.toFixed(2)),
      fanout_transactions: full.fanout.transactionsPerFanout,
      fanout_spread_ms: Number(full.fanoutSpread.fanoutMs.toFixed(2)),
      fanout_spread_transactions: full.fanoutSpread.transactionsPerFanout,
      insert_us_full: Number(full.insertUs.toFixed(1)),
      insert_us_normal: Number(normal.insertUs.toFixed(1)),
      verify_rows_per_s: Math.round(full.verifyRowsPerS),
    };
    return {
      name: 'audit',
      figures,
      lines: [
        `audit: ${figures.pairs_per_s} actions/s as sequential begin+end pairs (full durability, ${PAIRS} pairs)`,
        `audit: ${figures.fanout_actions_per_s} actions/s as ${WIDTH}-action fan-outs (full durability, ${FANOUTS} fan-outs): ` +
          `${figures.fanout_ms} ms and ${figures.fanout_transactions} transactions per fan-out`,
        `audit: ${WIDTH}-action fan-outs whose ends arrive in separate callbacks (1 ms commands): ` +
          `${figures.fanout_spread_ms} ms of audit writes and ${figures.fanout_spread_transactions} transactions per fan-out`,
        `audit: one awaited insert ${figures.insert_us_full} µs with full durability, ${figures.insert_us_normal} µs with normal (no fsync) (${(full.insertUs / normal.insertUs).toFixed(1)}×)`,
        `audit: verify ${figures.verify_rows_per_s} rows/s`,
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const line of (await benchAudit()).lines) console.log(line);
}
