// Test helpers: CommandList values built by hand (the parser is not a dependency of exec), and a runner
// that collects what the caller would receive.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CommandList, Connector, Pipeline, Redirect, Stage } from '../../src/command/types.js';
import { runLocal } from '../../src/exec/index.js';
import { SPAWNER } from '../../src/exec/spawner.js';
import type { BwrapInfo, ExecRequest, ExecResult } from '../../src/exec/index.js';

export const PATH = '/usr/bin:/bin';

type RedirectSpec =
  | { kind: 'read'; path: string }
  | { kind: 'write'; fd: 1 | 2; path: string; append?: boolean }
  | { kind: 'dup' };

export function stage(argv: string[], ...redirects: RedirectSpec[]): Stage {
  return {
    argv,
    pos: 0,
    redirects: redirects.map((r): Redirect => {
      if (r.kind === 'read') return { kind: 'read', fd: 0, path: r.path, pos: 0 };
      if (r.kind === 'write') return { kind: 'write', fd: r.fd, path: r.path, append: r.append ?? false, pos: 0 };
      return { kind: 'dup', fd: 2, to: 1, pos: 0 };
    }),
  };
}

export const from = (p: string): RedirectSpec => ({ kind: 'read', path: p });
export const to = (p: string): RedirectSpec => ({ kind: 'write', fd: 1, path: p });
export const append = (p: string): RedirectSpec => ({ kind: 'write', fd: 1, path: p, append: true });
export const errTo = (p: string): RedirectSpec => ({ kind: 'write', fd: 2, path: p });
export const errToOut: RedirectSpec = { kind: 'dup' };

export function pipeline(...stages: Array<Stage | string[]>): Pipeline {
  return { stages: stages.map((s) => (Array.isArray(s) ? stage(s) : s)) };
}

/** list(p1, '&&', p2, '||', p3) — a bare argv or Stage is a one-stage pipeline. */
export function list(...parts: Array<Pipeline | Stage | string[] | Connector>): CommandList {
  const items: CommandList['items'] = [];
  let op: Connector | null = null;
  for (const part of parts) {
    if (typeof part === 'string') {
      op = part;
      continue;
    }
    const p = Array.isArray(part) || 'argv' in part ? pipeline(part) : part;
    items.push({ op, pipeline: p });
    op = null;
  }
  return { items };
}

export interface Ran {
  res: ExecResult;
  out: string;
  err: string;
  outBuf: Buffer;
}

export async function run(
  cmd: CommandList | string[],
  opts: Partial<Omit<ExecRequest, 'list' | 'onStdout' | 'onStderr'>> = {},
  probe?: () => BwrapInfo,
): Promise<Ran> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const res = await runLocal(
    {
    list: Array.isArray(cmd) ? list(cmd) : cmd,
    cwd: os.tmpdir(),
    env: { PATH },
    timeoutMs: 10_000,
    killGraceMs: 500,
    pipefail: false,
    output: { maxBytes: null, redact: [], redactBlocks: [] },
    sandbox: null,
    ...opts,
    onStdout: (c) => out.push(Buffer.from(c)),
    onStderr: (c) => err.push(Buffer.from(c)),
    },
    probe,
  );
  const outBuf = Buffer.concat(out);
  return { res, out: outBuf.toString(), err: Buffer.concat(err).toString(), outBuf };
}

const created: string[] = [];
process.on('exit', () => created.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A fresh directory under the system tmpdir, removed when the test process exits. */
export function tmpdir(prefix = 'remux-exec-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** A process counts as gone when it does not exist or is a zombie nobody reaped (PID 1 in a container may not). */
export function processGone(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

export function writeScript(dir: string, name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, body, { mode: 0o755 });
  return file;
}

/** The processes whose parent is `parent`. */
export function childrenOf(parent: number): number[] {
  return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((pid) => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent;
    } catch {
      return false;
    }
  });
}

/** Our running spawner: the child of this process that runs bin/remux-spawner. */
export function spawnerPids(): number[] {
  const spawner = fs.realpathSync(SPAWNER);
  return childrenOf(process.pid).filter((pid) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/exe`) === spawner;
    } catch {
      return false;
    }
  });
}

/** The spawner's children that are still forks of it (not yet executed): held stages. */
export function heldStages(): number[] {
  const spawner = fs.realpathSync(SPAWNER);
  return spawnerPids().flatMap((pid) => childrenOf(pid)).filter((pid) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/exe`) === spawner;
    } catch {
      return false;
    }
  });
}
