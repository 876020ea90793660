// Starts pipeline stages through remux-spawner (native/spawner.c), a small process started once: Node's
// child_process.spawn forks the whole calling process, which costs the daemon ~2 ms per stage.
// The pipes to the caller come back as handles over Node's IPC channel, wrapped in net.Sockets: the
// spawner speaks Node's own handle-passing messages (NODE_HANDLE, as cluster uses them), which have not
// changed since Node 0.x; a Node that changed them would fail every test of src/exec.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export const SPAWNER = fileURLToPath(new URL('../../../bin/remux-spawner', import.meta.url));

/**
 * Where a stage's fd goes: `caller` a pipe whose other end we get, `prev`/`next` the pipes between
 * neighbours (made by the spawner), `null` /dev/null, `open` one of the stage's opens, `dup` fd 1 (2>&1).
 */
export type FdMode = 'caller' | 'prev' | 'next' | 'null' | 'open' | 'dup';
const MODE_CHARS: Record<FdMode, string> = { caller: 'c', prev: 'p', next: 'x', null: 'n', open: 'o', dup: 'd' };

export interface StageSpec {
  program: string;
  /** argv[0] included. */
  argv: string[];
  fds: [FdMode, FdMode, FdMode];
  /** A report pipe on fd 3 (remux-sandbox-enter's), read when the stage ends. */
  report: boolean;
  /**
   * `serve`: the stage is `remux-sandbox-enter --serve` (fd 3 a socket to the spawner), known by this key,
   * never used twice. `via`: the key of such a running server, which starts this stage (remux-sandbox-enter's
   * command line, with a report) inside its sandbox when it can; otherwise the stage starts as it says.
   */
  server?: { serve: number } | { via: number };
  /** Opened in the child onto `fd` before it executes: usually `/proc/PID/fd/N` (see reopenPath). */
  opens: Array<{ fd: number; flags: number; path: string }>;
}

export interface PipelineSpec {
  cwd: string;
  env: Record<string, string>;
  /** null: a stage that does not run (its neighbours' pipes are still made and closed). */
  stages: Array<StageSpec | null>;
}

export interface StageExit {
  /** Shell status: the exit code, or 128+N when killed by signal N. */
  code: number;
  /** The signal's name (null for an unnamed one, such as a real-time signal). */
  signal: NodeJS.Signals | null;
  /** What the stage wrote on its report pipe. */
  report: string;
  /** The spawner stopped before the stage ended: its status is unknown. */
  lost: boolean;
}

export interface StageProcess {
  pid: number;
  /** Our ends of its `caller` fds: stdin writable, stdout/stderr readable. */
  stdio: [net.Socket | null, net.Socket | null, net.Socket | null];
  exit: Promise<StageExit>;
}

/**
 * Per stage: the process; why it could not be started (an errno name, or the spawner's death before it
 * said, when whether it started is unknown); or null when it was not asked for.
 */
export type StageStart = StageProcess | StageFailure | null;
export type StageFailure = { error: string; spawnerDied?: true };

/**
 * The spawner died before it reported the pipeline's start: whether its stages started is unknown (a stage
 * it had started dies with it: native/spawner.c sets its parent-death signal).
 */
export class SpawnerDiedError extends Error {}

/** The path a child opens to get the same file or namespace as one of our fds. */
export function reopenPath(fd: number): string {
  return `/proc/${process.pid}/fd/${fd}`;
}

/**
 * Starts the stages of one pipeline; rejects only when the spawner cannot be reached. With `release`, the
 * spawner prepares the stages at once (forked, set up) and lets them execute only once it resolves true
 * (the action's audit begin is durable); false kills them before their exec (reported as ECANCELED).
 * Stages for a stage server (`server`) cannot be held.
 */
export function spawnPipeline(spec: PipelineSpec, release?: Promise<boolean>): Promise<StageStart[]> {
  if (!startSpawner()) return Promise.reject(new Error(`${SPAWNER} is missing (run npm run build)`));
  return (spawner as Spawner).run(spec, release);
}

/**
 * Copies of process `pid`'s fds 0 and 1 (its stdin to read, its stdout to write), taken by the spawner
 * (pidfd_getfd: the kernel allows it where `pid` could be traced by the spawner). Rejects with the
 * errno's name when they cannot be taken.
 */
export function grabStdio(pid: number): Promise<[net.Socket, net.Socket]> {
  if (!startSpawner()) return Promise.reject(new Error(`${SPAWNER} is missing (run npm run build)`));
  return (spawner as Spawner).grab(pid);
}

/** The spawner's pid (started if it is not running); 0 when it cannot run. */
export function spawnerPid(): number {
  return startSpawner() ? ((spawner as Spawner).pid ?? 0) : 0;
}

/**
 * Starts the spawner now if it is not running (false when its program is missing). The daemon calls it
 * at start, so its first command does not pay the one fork of the daemon that starting it costs.
 */
export function startSpawner(): boolean {
  if (spawner) return true;
  if (!fs.existsSync(SPAWNER)) return false;
  spawner = new Spawner();
  return true;
}

const ERRNO_NAMES = new Map(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));
const SIGNAL_NAMES = new Map(Object.entries(os.constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

type Message =
  | { spawner: 'fd'; id: number; stage: number; fd: 0 | 1 | 2 }
  | { spawner: 'grabbed'; id: number; error: number }
  | { spawner: 'started'; id: number; pids: number[]; errors: number[] }
  | { spawner: 'exit'; id: number; stage: number; status: number; report: string };

/** A pipe end received from the spawner, not read until it is wrapped. */
interface PipeHandle {
  close(): void;
}

interface Pending {
  /** Only stage servers, which live as long as their sandbox: once started, they never keep remux running. */
  background: boolean;
  /** Counted in Spawner.foreground. */
  holding: boolean;
  handles: Map<number, Array<PipeHandle | null>>;
  started: { resolve: (s: StageStart[]) => void; reject: (e: Error) => void };
  exits: Map<number, (e: StageExit) => void>;
}

let spawner: Spawner | undefined;

class Spawner {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  /** grab(): the handles arrived so far, and its promise. */
  private readonly grabs = new Map<number, { handles: [PipeHandle | null, PipeHandle | null]; resolve(s: [net.Socket, net.Socket]): void; reject(e: Error): void }>();
  /** Pending pipelines that keep remux running. */
  private foreground = 0;
  private nextId = 1;
  private gone: Error | null = null;

  constructor() {
    this.child = spawn(SPAWNER, [], { stdio: ['pipe', 'ignore', 'inherit', 'ipc'], env: {}, serialization: 'json' });
    this.child.on('message', (m: Message, handle?: unknown) => this.receive(m, handle));
    this.child.once('error', (e) => this.stop(e));
    // 'close', not 'exit': it comes once the channel is read to its end, so a 'started' the spawner sent
    // before it died is taken first (its stages are then known, and killed as lost), not reported as never run.
    this.child.once('close', (code, signal) => this.stop(new SpawnerDiedError(`remux-spawner exited (${signal ?? code})`)));
    this.child.stdin?.on('error', () => {});
    this.idle();
  }

  run(spec: PipelineSpec, release?: Promise<boolean>): Promise<StageStart[]> {
    if (this.gone) return Promise.reject(this.gone);
    const id = this.nextId++;
    const request = encode(release ? 'hold' : 'run', id, spec);
    return new Promise((resolve, reject) => {
      const background = spec.stages.every((s) => s?.server !== undefined && 'serve' in s.server);
      this.pending.set(id, { background, holding: true, handles: new Map(), started: { resolve, reject }, exits: new Map() });
      if (++this.foreground === 1) this.busy();
      this.send(request);
      // A spawner gone meanwhile failed the pipeline already (stop()); its successor never hears of it.
      void release?.then((go) => {
        if (!this.gone) this.send(control(go ? 'go' : 'drop', id));
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  grab(pid: number): Promise<[net.Socket, net.Socket]> {
    if (this.gone) return Promise.reject(this.gone);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.grabs.set(id, { handles: [null, null], resolve, reject });
      this.send(Buffer.from(`grab\0${id}\0${pid}\0`));
    });
  }

  private grabbed(m: Message, handle: unknown): void {
    const g = this.grabs.get(m.id);
    if (!g) return;
    if (m.spawner === 'fd') {
      g.handles[m.fd === 0 ? 0 : 1] = handle as PipeHandle;
      return;
    }
    this.grabs.delete(m.id);
    const [input, output] = g.handles;
    if (m.spawner !== 'grabbed' || m.error !== 0 || !input || !output) {
      input?.close();
      output?.close();
      return g.reject(new Error(m.spawner === 'grabbed' ? (ERRNO_NAMES.get(m.error) ?? `errno ${m.error}`) : 'unexpected answer'));
    }
    // Its client's stdin, to read (unlike a stage's fd 0, which we write), and its stdout, to write.
    g.resolve([
      new net.Socket({ handle: input, readable: true, writable: false } as net.SocketConstructorOpts),
      new net.Socket({ handle: output, readable: false, writable: true } as net.SocketConstructorOpts),
    ]);
  }

  private send(request: Buffer): void {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(request.length);
    this.child.stdin?.write(Buffer.concat([len, request]));
  }

  private receive(m: Message, handle: unknown): void {
    if (this.grabs.has(m.id)) return this.grabbed(m, handle);
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.spawner === 'fd') {
      const handles = p.handles.get(m.stage) ?? [null, null, null];
      handles[m.fd] = handle as PipeHandle;
      p.handles.set(m.stage, handles);
    } else if (m.spawner === 'started') {
      p.started.resolve(
        m.pids.map((pid, stage): StageStart => {
          if (pid === 0) return m.errors[stage] ? { error: ERRNO_NAMES.get(m.errors[stage] as number) ?? `errno ${m.errors[stage]}` } : null;
          const exit = new Promise<StageExit>((resolve) => p.exits.set(stage, resolve));
          return { pid, stdio: sockets(p.handles.get(stage)), exit };
        }),
      );
      p.handles.clear();
      if (p.background) this.release(p);
      this.settled(m.id, p);
    } else if (m.spawner === 'exit') {
      const signal = m.status & 0x7f;
      p.exits.get(m.stage)?.({
        code: signal === 0 ? (m.status >> 8) & 0xff : 128 + signal,
        signal: signal === 0 ? null : (SIGNAL_NAMES.get(signal) ?? null),
        report: m.report,
        lost: false,
      });
      p.exits.delete(m.stage);
      this.settled(m.id, p);
    }
  }

  private settled(id: number, p: Pending): void {
    if (p.exits.size > 0) return;
    this.pending.delete(id);
    this.release(p);
  }

  private release(p: Pending): void {
    if (!p.holding) return;
    p.holding = false;
    if (--this.foreground === 0) this.idle();
  }

  /** The spawner never keeps remux running by itself; a pipeline waiting for it does. */
  private idle(): void {
    this.child.unref();
    this.child.channel?.unref();
    (this.child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  }

  private busy(): void {
    this.child.ref();
    this.child.channel?.ref();
  }

  /** The spawner is gone: what waited for it fails, and the next pipeline starts a new one. */
  private stop(e: Error): void {
    if (this.gone) return;
    this.gone = e;
    if (spawner === this) spawner = undefined;
    for (const p of this.pending.values()) {
      p.started.reject(e);
      for (const resolve of p.exits.values()) resolve({ code: 126, signal: null, report: '', lost: true });
      for (const handles of p.handles.values()) handles.forEach((h) => h?.close());
    }
    this.pending.clear();
    for (const g of this.grabs.values()) {
      g.reject(e);
      g.handles.forEach((h) => h?.close());
    }
    this.grabs.clear();
    this.child.kill('SIGKILL');
  }
}

/** `go` or `drop` of a held pipeline (native/spawner.c). */
function control(verb: 'go' | 'drop', id: number): Buffer {
  return Buffer.from(`${verb}\0${id}\0`);
}

/** The request (native/spawner.c): fields ended by NUL; a NUL inside one is refused like spawn() does. */
function encode(verb: 'run' | 'hold', id: number, spec: PipelineSpec): Buffer {
  const fields: string[] = [verb, String(id), spec.cwd];
  // Pushed one by one: a spread of a long argv would overflow the stack.
  const list = (items: string[]): void => {
    fields.push(String(items.length));
    for (const item of items) fields.push(item);
  };
  list(Object.entries(spec.env).map(([k, v]) => `${k}=${v}`));
  fields.push(String(spec.stages.length));
  for (const s of spec.stages) {
    if (s === null) {
      fields.push('-');
      continue;
    }
    const server = s.server && 'serve' in s.server ? ['z', s.server.serve] : s.server && s.report ? ['v', s.server.via] : null;
    fields.push(s.fds.map((m) => MODE_CHARS[m]).join('') + (server?.[0] ?? (s.report ? 'r' : '-')));
    if (server) fields.push(String(server[1]));
    fields.push(s.program);
    list(s.argv);
    fields.push(String(s.opens.length));
    for (const o of s.opens) fields.push(String(o.fd), String(o.flags), o.path);
  }
  const bad = fields.find((f) => f.includes('\0'));
  if (bad !== undefined) {
    throw Object.assign(new TypeError(`a NUL byte in ${JSON.stringify(bad.slice(0, 40))}`), { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return Buffer.from(fields.join('\0') + '\0');
}

/**
 * Our ends of a stage's caller pipes, wrapped only once the stage is handed over (a socket starts reading
 * at once: one wrapped earlier could reach its end, and close, before anyone listens).
 */
function sockets(handles: Array<PipeHandle | null> = []): StageProcess['stdio'] {
  const wrap = (fd: number): net.Socket | null => {
    const handle = handles[fd];
    return handle ? new net.Socket({ handle, readable: fd !== 0, writable: fd === 0 } as net.SocketConstructorOpts) : null;
  };
  return [wrap(0), wrap(1), wrap(2)];
}

