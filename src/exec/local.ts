// Runs a parsed CommandList on this host without a shell: remux starts the stages (through remux-spawner,
// spawner.ts), wires the pipes, performs the redirections, applies limits and kills whole process groups.

import fs from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { CommandList, Pipeline, Redirect, Stage } from '../command/types.js';
import { OutputGate } from './output.js';
import type { Destination } from './output.js';
import { SandboxPool, type SandboxLease, type SandboxStatus } from './sandbox-pool.js';
import { bwrapAvailable, ENTER_HELPER, isInside, parseEnterReport, sandboxGone, sandboxLayout, visibleInside } from './sandbox.js';
import type { SandboxLayout } from './sandbox.js';
import { reopenPath, spawnPipeline, SpawnerDiedError, type FdMode, type StageFailure, type StageSpec, type StageStart } from './spawner.js';
import type { BwrapInfo, ExecErrorKind, ExecRequest, ExecResult } from './types.js';

/** The exit statuses of remux-sandbox-enter after a report (native/sandbox-enter.c: fail()). */
const REPORTED_STATUSES: ReadonlySet<number> = new Set([1, 125, 126, 127]);
/** One pool per bubblewrap binary (tests probe others). */
const pools = new Map<string, SandboxPool>();

const DEFAULT_KILL_GRACE_MS = 2000;
/** After SIGKILL, how long to wait for a group to vanish before giving up (a process stuck in D state). */
const KILL_WAIT_MS = 2000;
const POLL_MS = 20;

/** The long-lived sandboxes this process runs (daemon status). */
export function runningSandboxes(): SandboxStatus[] {
  return [...pools.values()].flatMap((p) => p.status());
}

/** `probe` tells whether bubblewrap can sandbox here (default: the cached real probe; tests pass a stub). */
export async function runLocal(req: ExecRequest, probe: () => BwrapInfo = bwrapAvailable): Promise<ExecResult> {
  return new Run(req, probe).execute();
}

/** Shell status of one stage: exit code, or 128+N when killed by signal N. */
interface Status {
  code: number;
  signal: NodeJS.Signals | null;
}

/** Where a stage's fd 1 or fd 2 goes. */
type Sink = { kind: 'next' } | { kind: 'caller'; dest: Destination } | { kind: 'file'; fd: number; append: boolean };
type Source = { kind: 'prev' } | { kind: 'caller' } | { kind: 'file'; fd: number };

interface Plan {
  argv: string[];
  /** Resolved program path; null when there is nothing to run (empty argv or a failure decided up front). */
  program: string | null;
  stdin: Source;
  stdout: Sink;
  stderr: Sink;
  /** Redirect fds we opened: reopened by the child (reopenPath), then closed here. */
  fds: number[];
  /** In the sandbox the redirections are performed inside it, in order: remux-sandbox-enter's options. */
  enterRedirects: string[];
  redirects: Redirect[];
  failed: Status | null;
  /** Runs outside the command's sandbox (ExecRequest.outside): started and redirected as without one. */
  outside: boolean;
}

interface Started {
  /** Our end of the stage's stdin when it reads the caller's stdin (unpiped when the pipeline ends). */
  stdin: Writable | null;
  status: Promise<Status>;
}

type StopReason = 'timeout' | 'abort' | 'truncated';

class Run {
  private readonly started = Date.now();
  private readonly graceMs: number;
  private readonly gate: OutputGate;
  private stopReason: StopReason | null = null;
  /** Process groups (leader pids) of the running pipeline. */
  private readonly groups = new Set<number>();
  /** Our read ends of caller-facing pipes, destroyed when the output cap is hit. */
  private readonly readers = new Set<Readable>();
  /** After the stages ended: readers no longer pause for the consumer (drainReaders). */
  private draining = false;
  private killTimer: NodeJS.Timeout | null = null;
  private stdinEnded = false;
  private error: string | null = null;
  private errorKind: ExecErrorKind | null = null;
  private cwd = '';
  private layout: SandboxLayout | null = null;
  private bwrapPath = '';
  private lease: SandboxLease | null = null;
  private pool: SandboxPool | null = null;
  /** The first pipeline's go (ExecRequest.durable), taken by the spawner, which holds it until then. */
  private release: Promise<boolean> | null = null;
  /** The action's audit begin was not written: nothing ran. */
  private unrecorded = false;

  constructor(
    private readonly req: ExecRequest,
    private readonly probe: () => BwrapInfo,
  ) {
    this.graceMs = req.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    this.gate = new OutputGate(req.output, { stdout: req.onStdout, stderr: req.onStderr }, () => this.stop('truncated'));
    req.stdin?.once('end', () => (this.stdinEnded = true));
  }

  async execute(): Promise<ExecResult> {
    let refusal = this.prepare();
    if (refusal === null && this.req.durable) {
      // What has effects waits for the action's audit begin to be durable: a sandbox started, a redirect's
      // file created or truncated. A first pipeline with neither goes to the spawner at once, held there
      // until then: its fork and set-up overlap the begin's fsync (0.2 ms of a 2 ms run_command).
      const released = this.req.durable.then(
        () => this.stopReason === null,
        () => {
          this.unrecorded = true;
          return false;
        },
      );
      const first = this.req.list.items[0]?.pipeline.stages ?? [];
      if (this.layout === null && first.every((stage) => stage.redirects.length === 0)) this.release = released;
      else if (!(await released)) return this.result({ code: 125, signal: null });
    }
    refusal ??= await this.enterSandbox();
    if (refusal !== null) return this.result({ code: 125, signal: null });
    if (this.req.signal?.aborted) this.stopReason = 'abort';

    const onAbort = (): void => this.stop('abort');
    this.req.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = this.req.timeoutMs === null ? null : setTimeout(() => this.stop('timeout'), this.req.timeoutMs);
    try {
      return this.result(await this.runList(this.req.list));
    } finally {
      if (timer) clearTimeout(timer);
      if (this.killTimer) clearTimeout(this.killTimer);
      this.req.signal?.removeEventListener('abort', onAbort);
      this.lease?.release();
    }
  }

  /** Leases the running sandbox for this layout (started if needed); a sandbox that cannot start refuses the command. */
  private async enterSandbox(): Promise<string | null> {
    if (this.layout === null) return null;
    if (!fs.existsSync(ENTER_HELPER)) return this.fail('sandbox_unavailable', `the OS sandbox cannot be used: ${ENTER_HELPER} is missing (run npm run build)`);
    let pool = pools.get(this.bwrapPath);
    if (!pool) pools.set(this.bwrapPath, (pool = new SandboxPool(this.bwrapPath)));
    this.pool = pool;
    try {
      this.lease = await pool.acquire(this.layout);
    } catch (e) {
      return this.fail('sandbox_unavailable', `the OS sandbox could not be started: ${(e as Error).message}`);
    }
    return null;
  }

  /**
   * Stops a sandbox found dead and leases a new one for the layout. When none can start, the dead lease
   * stays (its namespaces closed): what comes next fails to join it, and nothing runs unsandboxed.
   */
  private async renewLease(): Promise<boolean> {
    if (this.lease === null || this.pool === null || this.layout === null) return false;
    this.lease.discard();
    try {
      this.lease = await this.pool.acquire(this.layout);
      return true;
    } catch {
      return false;
    }
  }

  /** Checks that must pass before anything runs; returns the refusal message or null. */
  private prepare(): string | null {
    // A NUL would also split bwrap's --args stream and smuggle in options.
    const badVar = Object.entries(this.req.env).find(([k, v]) => k === '' || /[=\0]/.test(k) || v.includes('\0'));
    if (badVar) return this.fail('invalid', `invalid environment variable ${JSON.stringify(badVar[0])}`);
    const problem = directoryProblem(this.req.cwd);
    if (problem !== null) return this.fail('cwd', `cannot use working directory ${this.req.cwd}: ${problem}`);
    this.cwd = fs.realpathSync(this.req.cwd);
    if (this.req.sandbox === null) return null;
    const bwrap = this.probe();
    if (!bwrap.ok || bwrap.path === null) {
      return this.fail('sandbox_unavailable', `the OS sandbox cannot be used: ${bwrap.reason ?? 'bubblewrap is not usable'}`);
    }
    this.bwrapPath = bwrap.path;
    try {
      this.layout = sandboxLayout(this.req.sandbox);
    } catch (e) {
      return this.fail('invalid', `invalid sandbox paths: ${(e as Error).message}`);
    }
    // `/` is the sandbox's own root: always there, showing only what the sandbox shows.
    if (this.cwd !== '/' && !visibleInside(this.layout, this.cwd)) {
      const shown = this.layout.mounts.map((m) => m.path).join(', ') || 'none';
      return this.fail(
        'sandbox',
        `working directory ${this.cwd} is not visible in the sandbox, which shows only the policy's paths (${shown}): ` +
          'pass one of them with --cwd DIR, or run remux from there',
      );
    }
    return null;
  }

  /** sh semantics: `&&` runs on success, `||` on failure, `;` always; a skipped pipeline leaves the status alone. */
  private async runList(list: CommandList): Promise<Status> {
    let status: Status = { code: 0, signal: null };
    let first = 0;
    for (const { op, pipeline } of list.items) {
      const at = first;
      first += pipeline.stages.length;
      if (this.stopReason !== null || this.unrecorded) break;
      if (op === '&&' && status.code !== 0) continue;
      if (op === '||' && status.code === 0) continue;
      status = await this.runPipeline(pipeline, at);
    }
    return status;
  }

  /** `first`: the index of its first stage in the list (ExecRequest.outside counts across the list). */
  private async runPipeline(pipeline: Pipeline, first: number): Promise<Status> {
    const n = pipeline.stages.length;
    if (n === 0) return { code: 0, signal: null };
    const outside = (i: number): boolean => this.layout !== null && (this.req.outside?.includes(first + i) ?? false);
    const plans = pipeline.stages.map((stage, i) => this.plan(stage, i === 0, i === n - 1, outside(i)));
    const started = await this.start(plans);
    const statuses = started.map((s) => s.status);
    const stdinPipes = started.flatMap((s) => (s.stdin ? [s.stdin] : []));

    const results = await Promise.all(statuses);
    await this.reap([...this.groups]);
    this.groups.clear();
    await this.drainReaders();
    for (const w of stdinPipes) this.req.stdin?.unpipe(w);

    if (this.req.pipefail) {
      return [...results].reverse().find((s) => s.code !== 0) ?? { code: 0, signal: null };
    }
    return results[n - 1] as Status;
  }

  /** Performs the stage's redirections in order (opening files) and finds its program, like sh's child would. */
  private plan(stage: Stage, first: boolean, last: boolean, outside: boolean): Plan {
    const plan: Plan = {
      argv: stage.argv,
      program: null,
      stdin: first ? { kind: 'caller' } : { kind: 'prev' },
      stdout: last ? { kind: 'caller', dest: 'stdout' } : { kind: 'next' },
      stderr: { kind: 'caller', dest: 'stderr' },
      fds: [],
      enterRedirects: [],
      redirects: stage.redirects,
      failed: null,
      outside,
    };
    for (const r of stage.redirects) {
      if (this.layout !== null && !outside) {
        // Checked here for a clear message; opened inside the sandbox, where the kernel has the last word.
        if (r.kind !== 'dup' && this.outsideSandbox(r) !== null) {
          plan.failed = { code: 1, signal: null };
          return plan;
        }
        plan.enterRedirects.push(...enterRedirect(r, this.cwd));
        continue;
      }
      if (r.kind === 'dup') {
        plan.stderr = plan.stdout;
        continue;
      }
      const fd = this.openRedirect(r);
      if (fd === null) {
        closeAll(plan.fds);
        plan.fds = [];
        plan.failed = { code: 1, signal: null };
        return plan;
      }
      plan.fds.push(fd);
      if (r.kind === 'read') plan.stdin = { kind: 'file', fd };
      else if (r.fd === 1) plan.stdout = { kind: 'file', fd, append: r.append };
      else plan.stderr = { kind: 'file', fd, append: r.append };
    }
    const name = stage.argv[0];
    if (name === undefined) return plan;
    const found = resolveProgram(name, this.req.env.PATH ?? '', this.cwd);
    if ('path' in found && this.layout !== null && !outside) {
      const real = realTarget(found.path);
      if (!visibleInside(this.layout, real)) {
        this.stageError('sandbox', `remux: ${name}: ${real} is not inside the sandbox's paths`);
        plan.failed = { code: 127, signal: null };
        return plan;
      }
    }
    if ('path' in found) plan.program = found.path;
    else {
      this.stageError(found.kind, `remux: ${name}: ${found.message}`);
      plan.failed = { code: found.code, signal: null };
    }
    return plan;
  }

  /** Opens a redirect target ourselves; null (after reporting, like sh) when it cannot be opened. */
  private openRedirect(r: Exclude<Redirect, { kind: 'dup' }>): number | null {
    const file = path.resolve(this.cwd, r.path);
    const report = (why: string): null => this.redirectFailed(r, why);
    const c = fs.constants;
    // O_NONBLOCK: opening a FIFO must never block the event loop; regular files ignore the flag.
    const flags =
      (r.kind === 'read' ? c.O_RDONLY : c.O_WRONLY | c.O_CREAT | (r.append ? c.O_APPEND : c.O_TRUNC)) |
      c.O_NOCTTY |
      c.O_NONBLOCK;
    let fd: number;
    try {
      fd = fs.openSync(file, flags, 0o666); // the kernel applies the umask
    } catch (e) {
      return report(errCode(e));
    }
    const st = fs.fstatSync(fd);
    if (st.isFIFO() || st.isSocket()) {
      fs.closeSync(fd);
      return report('FIFOs and sockets are not supported as redirect targets');
    }
    return fd;
  }

  /** A redirect target the sandbox does not show (or not writable): reported like sh would, with why. */
  private outsideSandbox(r: Exclude<Redirect, { kind: 'dup' }>): null | true {
    const layout = this.layout as SandboxLayout;
    const real = realTarget(path.resolve(this.cwd, r.path));
    if (real === '/dev/null') return null;
    // The sandbox's own /tmp (when nothing of the policy lies in it) is writable.
    const inPrivateTmp = layout.privateTmp && !layout.mounts.some((m) => isInside(m.path, '/tmp')) && isInside(real, '/tmp');
    const ok = inPrivateTmp || (visibleInside(layout, real) && (r.kind === 'read' || layout.writable.some((w) => isInside(real, w))));
    if (ok) return null;
    this.redirectFailed(r, `outside the sandbox's ${r.kind === 'read' ? 'read' : 'write'} paths`);
    return true;
  }

  private redirectFailed(r: Exclude<Redirect, { kind: 'dup' }>, why: string): null {
    this.stageError('redirect', `remux: cannot open ${r.path} for ${r.kind === 'read' ? 'reading' : 'writing'}: ${why}`);
    return null;
  }

  /**
   * Starts the pipeline's stages, directly or inside its sandbox, connected by pipes (made by the
   * spawner). `again`: a stage started once more because its sandbox was gone (watch).
   */
  private async start(plans: Plan[], again = false): Promise<Started[]> {
    const specs = plans.map((plan) => this.stageSpec(plan));
    const release = this.release;
    this.release = null;
    let starts: StageStart[];
    try {
      starts = specs.some((s) => s !== null)
        ? await spawnPipeline({ cwd: this.cwd, env: this.req.env, stages: specs }, release ?? undefined)
        : specs.map(() => null);
      // Dropped before their exec (stopped meanwhile, or the begin not written): not run, as a stage
      // stopped before it was asked for.
      if (release !== null && !(await release)) starts = specs.map(() => null);
    } catch (e) {
      const failure: StageFailure = e instanceof SpawnerDiedError ? { error: e.message, spawnerDied: true } : { error: errCode(e) };
      starts = specs.map((s) => s && failure);
    } finally {
      // The children have reopened them (or failed to start).
      plans.forEach((p) => closeAll(p.fds));
    }
    return plans.map((plan, i) => this.watch(plan, starts[i] ?? null, plans.length === 1 && !again));
  }

  /** What the spawner is asked for one stage; null when it does not run. */
  private stageSpec(plan: Plan): StageSpec | null {
    if (plan.failed !== null || plan.program === null || this.stopReason !== null) return null;
    const c = fs.constants;
    const opens: StageSpec['opens'] = [];
    const reopen = (fd: number, ours: number, flags: number): FdMode => {
      opens.push({ fd, flags, path: reopenPath(ours) });
      return 'open';
    };
    const source = (s: Source): FdMode =>
      s.kind === 'file' ? reopen(0, s.fd, c.O_RDONLY) : s.kind === 'prev' ? 'prev' : this.req.stdin && !this.stdinEnded ? 'caller' : 'null';
    // Reopened without O_TRUNC: we truncated it already, and another stage may be writing to it by now.
    const sink = (s: Sink, fd: 1 | 2): FdMode =>
      s.kind === 'file' ? reopen(fd, s.fd, c.O_WRONLY | (s.append ? c.O_APPEND : 0)) : s.kind === 'next' ? 'next' : 'caller';
    // 2>&1: one open file (or pipe) for both, so that writes neither overwrite each other nor reorder.
    const fds: StageSpec['fds'] = [source(plan.stdin), sink(plan.stdout, 1), plan.stderr === plan.stdout ? 'dup' : sink(plan.stderr, 2)];
    if (this.lease === null || plan.outside) return { program: plan.program, argv: plan.argv, fds, report: false, opens };
    const namespaces = this.lease.namespaceFds.map((fd, i) => ({ fd: 4 + i, flags: c.O_RDONLY, path: reopenPath(fd) }));
    return {
      program: ENTER_HELPER,
      argv: [ENTER_HELPER, ...plan.enterRedirects, '--cwd', this.cwd, '--', plan.program, ...plan.argv],
      fds,
      report: true,
      opens: [...opens, ...namespaces],
      ...(this.lease.server === null ? {} : { server: { via: this.lease.server } }),
    };
  }

  /**
   * Connects a started stage to the caller and turns its end into a status. `mayRestart`: a stage alone in
   * its pipeline, started for the first time.
   */
  private watch(plan: Plan, start: StageStart, mayRestart: boolean): Started {
    const name = plan.argv[0] ?? plan.program ?? '';
    if (start === null) {
      const code = plan.failed?.code ?? (this.stopReason !== null ? 1 : 0);
      return { stdin: null, status: Promise.resolve({ code, signal: null }) };
    }
    if ('error' in start) return { stdin: null, status: Promise.resolve(this.spawnFailed(name, start)) };
    const [stdin, stdout, stderr] = start.stdio;
    for (const [stream, sink] of [
      [stdout, plan.stdout],
      [stderr, plan.stderr],
    ] as const) {
      if (stream !== null) this.attachReader(stream, sink.kind === 'caller' ? sink.dest : 'stdout');
    }
    if (stdin && this.req.stdin) {
      stdin.on('error', () => {}); // EPIPE when the stage exits without reading all its input
      this.req.stdin.pipe(stdin);
    }
    this.groups.add(start.pid);
    // Stopped while the spawner was starting it.
    if (this.stopReason !== null) signalGroups([start.pid], 'SIGTERM');

    // remux-sandbox-enter says on its report pipe why a stage did not run, and then exits with one of
    // REPORTED_STATUSES; nothing there means the program ran.
    const lease = plan.outside ? null : this.lease;
    const status = start.exit.then(async (exit): Promise<Status> => {
      const s: Status = { code: exit.code, signal: exit.signal };
      if (exit.lost) {
        this.stageError('spawn', `remux: ${name}: remux-spawner stopped while the command ran`);
        return s;
      }
      // Killed, and not by us: a sandbox stopped from outside takes its processes with it.
      if (s.signal === 'SIGKILL' && lease !== null && this.stopReason === null && (await sandboxEnded(lease))) {
        this.stageError('sandbox', `remux: ${name}: killed: its sandbox was stopped while it ran (from outside remux)`);
        return s;
      }
      if (lease === null || s.signal !== null || !REPORTED_STATUSES.has(s.code)) return s;
      if (exit.report === '' || this.stopReason !== null) return s;
      // The sandbox died after it was leased (its first process killed from outside): nothing ran. A
      // stage alone, not fed the caller's stdin (some may be lost in its pipe), runs once more in a new one.
      const callerStdin = Boolean(this.req.stdin) && plan.stdin.kind === 'caller';
      if (mayRestart && !callerStdin && sandboxGone(parseEnterReport(exit.report)) && (await this.renewLease())) {
        const [again] = await this.start([plan], true);
        if (again) return again.status;
      }
      const failure = this.enterFailure(exit.report, plan, name);
      this.stageError(failure.kind, `remux: ${failure.message}`);
      return { code: failure.code, signal: null };
    });
    return { stdin, status };
  }

  /** Words remux-sandbox-enter's report ("WHAT STATUS ERRNO [INDEX]") as the same failure outside the sandbox would be. */
  private enterFailure(report: string, plan: Plan, name: string): { kind: ExecErrorKind; code: number; message: string } {
    const { what, status: code, err, index, namespace } = parseEnterReport(report);
    const r = plan.redirects[index];
    const purpose = r?.kind === 'read' ? 'reading' : 'writing';
    switch (what) {
      case 'exec':
        return { kind: err === 'ENOENT' ? 'not_found' : err === 'EACCES' ? 'not_executable' : 'spawn', code, message: `${name}: cannot execute: ${err}` };
      case 'redirect':
      case 'fifo': {
        const why = what === 'fifo' ? 'FIFOs and sockets are not supported as redirect targets' : err;
        return { kind: 'redirect', code, message: `cannot open ${r && r.kind !== 'dup' ? r.path : '2>&1'} for ${purpose}: ${why}` };
      }
      case 'cwd':
        return { kind: 'cwd', code, message: `cannot use working directory ${this.cwd} inside the sandbox: ${err}` };
      case 'join':
        return { kind: 'sandbox', code, message: `${name}: cannot join the sandbox's ${namespace} namespace: ${err}` };
      case 'caps':
        return { kind: 'sandbox', code, message: `${name}: cannot drop its capabilities: ${err}` };
      case 'landlock':
        return { kind: 'sandbox', code, message: `${name}: cannot keep it from the host's abstract Unix sockets (Landlock): ${err}` };
      default:
        return { kind: 'sandbox', code, message: `${name}: the sandbox failed to start it (${report.trim()})` };
    }
  }

  private attachReader(stream: Readable, dest: Destination): void {
    const src = this.gate.source(dest);
    this.readers.add(stream);
    const flow = this.req.flow;
    stream.on('data', (chunk: Buffer) => {
      src.write(chunk);
      if (flow?.full() && !this.draining) {
        stream.pause();
        flow.onRoom(() => stream.resume());
      }
    });
    stream.on('error', () => {});
    stream.once('close', () => {
      src.end();
      this.readers.delete(stream);
    });
  }

  /** Waits for caller-facing pipes to reach EOF; a writer that escaped our process groups cannot hold us forever. */
  private async drainReaders(): Promise<void> {
    const open = [...this.readers];
    if (open.length === 0) return;
    // The stages are done: what is left is at most a pipe's buffer each, read now whatever the
    // consumer's backlog (flow), so the grace below only bounds writers that escaped.
    this.draining = true;
    open.forEach((s) => s.resume());
    const closed = Promise.all(open.map((s) => new Promise((resolve) => s.once('close', resolve))));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise((resolve) => (timer = setTimeout(resolve, this.graceMs)));
    await Promise.race([closed, late]);
    clearTimeout(timer);
    open.forEach((s) => s.destroy());
  }

  /** Timeout, abort or output cap: TERM every group now, KILL what is left after the grace. */
  private stop(reason: StopReason): void {
    if (this.stopReason !== null) return;
    this.stopReason = reason;
    // TERM before the pipes close at the cap: a writer then ends by TERM (143), as the runtime's own
    // Exec stops one, not by the SIGPIPE of its next write. The last stage first: TERMed after its
    // upstream, it could read their end, write what it holds into the still open pipe and exit 0.
    signalGroups(liveGroups([...this.groups]).reverse(), 'SIGTERM');
    if (reason === 'truncated') this.readers.forEach((s) => s.destroy());
    this.killTimer = setTimeout(() => signalGroups(liveGroups([...this.groups]), 'SIGKILL'), this.graceMs);
  }

  /**
   * After the stage leaders exited: whatever is still alive in their groups (background grandchildren) is
   * terminated too, so nothing outlives the command. Resolves when the groups are empty.
   */
  private async reap(pgids: number[]): Promise<void> {
    let alive = liveGroups(pgids);
    if (alive.length === 0) return;
    signalGroups(alive, 'SIGTERM');
    const t0 = Date.now();
    let killed = false;
    while (alive.length > 0 && Date.now() - t0 < this.graceMs + KILL_WAIT_MS) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      alive = liveGroups(alive);
      if (!killed && Date.now() - t0 >= this.graceMs) {
        signalGroups(alive, 'SIGKILL');
        killed = true;
      }
    }
  }

  private spawnFailed(name: string, failure: StageFailure): Status {
    const code = failure.error;
    const notFound = code === 'ENOENT';
    const why = failure.spawnerDied ? `${code} before it reported the start: whether the command ran is unknown` : `cannot execute: ${code}`;
    this.stageError(notFound ? 'not_found' : code === 'EACCES' ? 'not_executable' : 'spawn', `remux: ${name}: ${why}`);
    return { code: notFound ? 127 : 126, signal: null };
  }

  /** A stage failure: told on stderr like sh does, and remembered (the first one) for the result. */
  private stageError(kind: ExecErrorKind, message: string): void {
    this.gate.message('stderr', message + '\n');
    this.fail(kind, message);
  }

  private fail(kind: ExecErrorKind, message: string): string {
    if (this.error === null) {
      this.error = message;
      this.errorKind = kind;
    }
    return message;
  }

  private result(status: Status): ExecResult {
    if (this.unrecorded) this.fail('invalid', 'not run: its audit record could not be written');
    const timedOut = this.stopReason === 'timeout';
    const aborted = this.stopReason === 'abort';
    return {
      exitCode: this.unrecorded ? 125 : timedOut ? 124 : aborted ? 130 : status.code,
      signal: status.signal,
      timedOut,
      aborted,
      truncated: this.gate.truncated,
      bytesOut: this.gate.bytesOut,
      bytesErr: this.gate.bytesErr,
      durationMs: Date.now() - this.started,
      error: this.error,
      errorKind: this.errorKind,
    };
  }
}

type Resolution =
  | { path: string }
  | { kind: 'not_found' | 'not_executable'; code: 126 | 127; message: string };

/**
 * sh's lookup: a name with a slash is a path (relative to cwd); a bare name is searched in PATH's absolute
 * entries (relative entries such as `.` are ignored). A match that is not executable yields 126 only if no
 * executable match follows.
 */
export function resolveProgram(name: string, searchPath: string, cwd: string): Resolution {
  const candidates = name.includes('/')
    ? [path.resolve(cwd, name)]
    : searchPath
        .split(':')
        .filter((dir) => path.isAbsolute(dir))
        .map((dir) => path.join(dir, name));
  let denied: string | null = null;
  for (const file of candidates) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(file, { throwIfNoEntry: false });
    } catch {
      continue;
    }
    if (st === undefined) continue;
    if (st.isDirectory()) {
      denied ??= 'Is a directory';
      continue;
    }
    try {
      fs.accessSync(file, fs.constants.X_OK);
    } catch {
      denied ??= 'Permission denied';
      continue;
    }
    if (!st.isFile()) {
      denied ??= 'Permission denied';
      continue;
    }
    return { path: file };
  }
  if (denied !== null) return { kind: 'not_executable', code: 126, message: denied };
  return { kind: 'not_found', code: 127, message: name.includes('/') ? 'No such file or directory' : 'command not found' };
}

/** Whether the lease's sandbox has ended, asked for up to 100 ms: its init may still be emptying its PID namespace. */
async function sandboxEnded(lease: SandboxLease): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    if (!lease.alive) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return false;
}

function signalGroups(pgids: number[], sig: NodeJS.Signals): void {
  for (const pgid of pgids) {
    try {
      process.kill(-pgid, sig);
    } catch {
      // ESRCH: the group is already gone.
    }
  }
}

/**
 * Groups that still have a live member. Zombies do not count: where PID 1 does not reap orphans
 * (containers), `kill(-pgid, 0)` keeps succeeding for a group of zombies, so on Linux we read /proc.
 */
function liveGroups(pgids: number[]): number[] {
  // After every command, and the usual answer is ESRCH: an exception without a stack costs far less.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  let exists: number[];
  try {
    exists = pgids.filter((pgid) => {
      try {
        process.kill(-pgid, 0);
        return true;
      } catch (e) {
        return errCode(e) === 'EPERM';
      }
    });
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
  if (exists.length === 0 || process.platform !== 'linux') return exists;
  const wanted = new Set(exists);
  const live = new Set<number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // "pid (comm) state ppid pgrp …": comm may contain spaces and parentheses, so split after the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const group = Number(pgrp);
    if (wanted.has(group) && state !== 'Z' && state !== 'X') live.add(group);
  }
  return [...live];
}

/** A redirection as remux-sandbox-enter performs it inside the sandbox (absolute path: its cwd is set there). */
function enterRedirect(r: Redirect, cwd: string): string[] {
  if (r.kind === 'dup') return ['--dup'];
  const file = path.resolve(cwd, r.path);
  if (r.kind === 'read') return ['--read', file];
  return [r.append ? '--append' : '--write', String(r.fd), file];
}

/** The path a redirect would really touch: symlinks resolved as far as the path exists. */
function realTarget(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    const parent = path.dirname(file);
    return parent === file ? file : path.join(realTarget(parent), path.basename(file));
  }
}

/** Why `dir` cannot be a working directory here, in words (client run's refusal, policy check's line), or null. */
export function directoryProblem(dir: string): string | null {
  try {
    return fs.statSync(dir).isDirectory() ? null : 'not a directory';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'no such directory' : code === 'ENOTDIR' ? 'a part of it is not a directory' : code === 'EACCES' ? 'permission denied' : errCode(e);
  }
}

function errCode(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : e instanceof Error ? e.message : String(e);
}

function closeAll(fds: number[]): void {
  for (const fd of fds) fs.closeSync(fd);
}
