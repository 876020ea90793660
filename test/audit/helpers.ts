// Shared by the audit tests: temp stores, sample records, raw access for tampering, child processes.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { AuditStore, type AuditAction, type AuditBegin } from '../../src/audit/index.js';

export function tempDbPath(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'remux-audit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'home', 'audit.db');
}

export function sampleBegin(overrides: Partial<AuditBegin> = {}): AuditBegin {
  return {
    principal: 'alice',
    host: 'web1',
    operation: 'execute_binary',
    argv: ['ls', '-l', '/var/log'],
    command: 'ls -l /var/log',
    policy: 'read_only',
    rule: 'read_only#0 (policies.yaml:3)',
    decision: 'allow',
    reason: 'ls is allowed',
    ...overrides,
  };
}

/** A policy denial as perform() records one: begin and end together, exit 77. */
export function recordDenied(store: AuditStore, rec: Omit<AuditBegin, 'decision'>): Promise<number> {
  return store.record({ ...rec, decision: 'deny' }, { exitCode: 77, durationMs: 0 });
}

/** A raw connection with the append-only triggers removed, as an attacker with file access would. */
export function tamper(path: string, fn: (db: Database.Database) => void): void {
  const db = new Database(path);
  try {
    db.exec('DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;');
    fn(db);
  } finally {
    db.close();
  }
}

export const WRITER = fileURLToPath(new URL('./fixtures/writer.js', import.meta.url));

export function spawnWriter(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [WRITER, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
}

/** Resolves with the remainder of the first stdout line (seen so far or later) starting with `prefix`. */
export function waitForLine(child: ChildProcess, prefix: string): Promise<string> {
  const lines = stdoutLines(child);
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const line = lines.seen.find((l) => l.startsWith(prefix));
      if (line === undefined) return false;
      resolve(line.slice(prefix.length).trim());
      return true;
    };
    if (check()) return;
    const onLine = (): void => {
      if (check()) lines.events.off('line', onLine);
    };
    lines.events.on('line', onLine);
    child.once('exit', (code, signal) => reject(new Error(`writer exited (${code ?? signal}) before "${prefix}"`)));
  });
}

const readers = new WeakMap<ChildProcess, { seen: string[]; events: Interface }>();

function stdoutLines(child: ChildProcess): { seen: string[]; events: Interface } {
  let r = readers.get(child);
  if (!r) {
    if (!child.stdout) throw new Error('child has no stdout pipe');
    const events = createInterface({ input: child.stdout });
    const seen: string[] = [];
    events.on('line', (line) => seen.push(line));
    r = { seen, events };
    readers.set(child, r);
  }
  return r;
}

export function waitForExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** After 4 writer processes of 200 actions each: one linear, verified chain holding every action, complete. */
export function assertFourWritersChained(path: string): AuditAction[] {
  const store = AuditStore.open(path);
  try {
    const result = store.verify();
    assert.equal(result.ok, true, result.firstBad?.reason);
    assert.equal(result.checked, 1600);
    const actions = store.list();
    assert.equal(actions.length, 800);
    assert.ok(actions.every((a) => a.status === 'complete'));
    for (let i = 0; i < 4; i++) assert.equal(store.list({ principal: `writer${i}` }).length, 200);
    return actions;
  } finally {
    store.close();
  }
}
