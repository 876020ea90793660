// Audit store write cost: begin+end pairs per second under the default durability (synchronous=FULL),
// and the cost of one insert under FULL and NORMAL for comparison. Run standalone: node dist/bench/audit.js
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AuditStore, type Durability } from '../src/audit/index.js';

const PAIRS = 2000;

function run(dir: string, durability: Durability): { pairsPerS: number; insertUs: number; verifyRowsPerS: number } {
  const store = AuditStore.open(join(dir, `${durability}.db`), { durability });
  try {
    const start = performance.now();
    for (let i = 0; i < PAIRS; i++) {
      const id = store.begin({
        principal: 'bench',
        host: 'local',
        operation: 'execute_binary',
        argv: ['cat', `/var/log/app/${i}.log`],
        command: `cat /var/log/app/${i}.log`,
        policy: 'read_only',
        rule: 'read_only#1 (policies.yaml:7)',
        decision: 'allow',
        reason: 'cat is allowed',
      });
      store.end(id, { exitCode: 0, durationMs: 3, bytesOut: 4096, bytesErr: 0 });
    }
    const ms = performance.now() - start;
    const verifyStart = performance.now();
    const { checked } = store.verify();
    const verifyMs = performance.now() - verifyStart;
    return { pairsPerS: (PAIRS / ms) * 1000, insertUs: (ms * 1000) / (2 * PAIRS), verifyRowsPerS: (checked / verifyMs) * 1000 };
  } finally {
    store.close();
  }
}

export async function benchAudit(): Promise<{ name: string; figures: Record<string, number>; lines: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'remux-bench-audit-'));
  try {
    const full = run(dir, 'full');
    const normal = run(dir, 'normal');
    const figures = {
      pairs_per_s: Math.round(full.pairsPerS),
      insert_us_full: Number(full.insertUs.toFixed(1)),
      insert_us_normal: Number(normal.insertUs.toFixed(1)),
      verify_rows_per_s: Math.round(full.verifyRowsPerS),
    };
    return {
      name: 'audit',
      figures,
      lines: [
        `audit: ${figures.pairs_per_s} begin+end pairs/s (synchronous=FULL, ${PAIRS} pairs)`,
        `audit: one insert ${figures.insert_us_full} µs with FULL, ${figures.insert_us_normal} µs with NORMAL (${(full.insertUs / normal.insertUs).toFixed(1)}×)`,
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
