// The agent's side of one relay connection: each request from the gateway runs through this machine's
// own perform() (its own policies file, audit store and sandbox) as principal `agent:gateway-NAME`, so
// the gateway's policy and the owner's local policy must both allow it. Output streams back as it comes,
// no further ahead than the gateway's credit allows. Everything still running when the connection ends
// is cancelled: the caller is gone, and nothing is ever resumed or replayed.
import { asPrincipal, type GatewayContext } from '../core/context.js';
import { parseCommand } from '../command/parser.js';
import type { CommandList } from '../command/types.js';
import { EXIT } from '../core/exit-codes.js';
import { enforcementOn, errorText, perform, refuse, sandboxOn, type Asked } from '../core/perform.js';
import { LET_OUT, paneLetOut } from '../core/perform-session.js';
import { evaluate } from '../policy/evaluate.js';
import { checkFacts } from '../core/scope.js';
import type { Policy } from '../policy/types.js';
import { localPaneProgram, unsandboxedPaneProgram } from '../sessions/pane-sandbox.js';
import { single } from '../sessions/tmux.js';
import type { FileAction, PerformResult, Principal } from '../core/types.js';
import { ADMIN_SCOPE } from '../config/principals.js';
import { FILE_WRITE_MAX_BYTES } from '../core/perform-file.js';
import { CreditedInput } from '../exec/input-credit.js';
import type { ExecResult, OutputFlow, SandboxSpec } from '../exec/types.js';
import { ResolveError } from '../policy/resolve.js';
import { CHUNK_BYTES, FILE_LIST_FRAME_ENTRIES, HOLD_TIMEOUT_MS, INPUT_TAKEN_STEP_BYTES, PROTOCOL_VERSION, PROTOCOL_V2, TERMINAL_INPUT_MAX_BYTES, WINDOW_BYTES, type AgentFrame, type ExecFrame, type FileDone, type FileFrame, type GatewayFrame, type RelayAnswer } from '../gateway/relay/protocol.js';
import { FileError, type Host, type HostTerminal } from '../hosts/types.js';
import { OwnAnswers } from './answers.js';
import { checkOwnCommand, isListing, type OwnStartup } from './own.js';
import { intersectSandbox, outsideOfBoth } from './sandbox.js';
import { openCheckedTerminal } from './terminal.js';

/** Requests one connection may have running at once: a flood is refused, not queued. */
export const MAX_RUNNING = 512;

/** remux's own commands print session lists and pane captures: bounded all the same. */
const OWN_OUTPUT_MAX = 16 << 20;

/** The host every request runs on: this machine. */
const HERE = 'localhost';

interface Running {
  cancel(): void;
  credit(bytes: number): void;
  input?(data: Buffer): void;
  resize?(cols: number, rows: number): void;
  /** A command's standard input (exec with stdin: true). */
  stdin?: CreditedInput;
  /** More of a write's content (file-write with more). */
  part?(data: Buffer): void;
  /** The gateway's go for a held command (exec with hold). */
  go?(): void;
}

/**
 * A command held for the gateway's go (exec.hold, protocol 4): it is checked and recorded here meanwhile,
 * and started only once `released` says null. A cancel, or no go within the hold timeout, withdraws it:
 * `released` then says why, and the command is not run.
 */
class Hold {
  private settle!: (withdrawn: string | null) => void;
  readonly released = new Promise<string | null>((resolve) => (this.settle = resolve));
  private readonly timer: NodeJS.Timeout;

  constructor(timeoutMs: number) {
    this.timer = setTimeout(() => this.end(`the gateway did not release it within ${timeoutMs} ms`), timeoutMs);
  }

  go(): void {
    this.end(null);
  }

  /** Withdrawn (a cancel), or over (the request ended without waiting for its go: refused here). */
  end(withdrawn: string | null): void {
    clearTimeout(this.timer);
    this.settle(withdrawn);
  }
}

/** Output bytes sent but not yet credited by the gateway; full at WINDOW_BYTES (the command is not read meanwhile). */
export class Window implements OutputFlow {
  private unacked = 0;
  private waiters: Array<() => void> = [];
  private stopped = false;

  full(): boolean {
    return !this.stopped && this.unacked >= WINDOW_BYTES;
  }

  onRoom(callback: () => void): void {
    if (this.full()) this.waiters.push(callback);
    else queueMicrotask(callback);
  }

  sent(bytes: number): void {
    this.unacked += bytes;
  }

  credit(bytes: number): void {
    this.unacked = Math.max(0, this.unacked - bytes);
    if (!this.full()) this.wake();
  }

  /** The request ended or was cancelled: nobody waits on credit any more. */
  stop(): void {
    this.stopped = true;
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** How often input waiting for a terminal's pty is looked at again, to report what it took. */
const INPUT_TAKEN_CHECK_MS = 20;

/**
 * Input for a terminal here, from the gateway: written to its pty, and bounded. Past
 * TERMINAL_INPUT_MAX_BYTES that the session has not taken, `overrun` is told why (a gateway that does not
 * hold its client back could fill this machine's memory); until then, when the gateway asked (protocol 3),
 * what the pty took is reported to it in steps of INPUT_TAKEN_STEP_BYTES, so it holds its client back.
 */
class TerminalInput {
  private written = 0;
  private reported = 0;
  private check: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly terminal: HostTerminal,
    private readonly report: ((bytes: number) => void) | null,
    private readonly overrun: (why: string) => void,
  ) {}

  write(data: Buffer): void {
    if (this.stopped) return;
    this.terminal.write(data);
    this.written += data.length;
    const waiting = this.terminal.pendingInput();
    if (waiting > TERMINAL_INPUT_MAX_BYTES) {
      this.stop();
      return this.overrun(`its session has not taken ${waiting} bytes of input (at most ${TERMINAL_INPUT_MAX_BYTES} may wait)`);
    }
    const report = this.report;
    if (report) {
      this.reportTaken(report);
      this.check ??= setInterval(() => this.reportTaken(report), INPUT_TAKEN_CHECK_MS);
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.check) clearInterval(this.check);
    this.check = null;
  }

  private reportTaken(report: (bytes: number) => void): void {
    const waiting = this.terminal.pendingInput();
    const taken = this.written - waiting;
    if (taken - this.reported >= INPUT_TAKEN_STEP_BYTES) {
      report(taken - this.reported);
      this.reported = taken;
    }
    // All taken: nothing changes until more is written.
    if (waiting === 0 && this.check) {
      clearInterval(this.check);
      this.check = null;
    }
  }
}

/** A write's content arriving in parts: whole once the last one is in, never more than a write may carry. */
class WriteParts {
  private readonly chunks: Buffer[];
  private size: number;
  private settle!: { resolve(content: Buffer): void; reject(err: Error): void };
  readonly whole = new Promise<Buffer>((resolve, reject) => (this.settle = { resolve, reject }));

  constructor(
    first: Buffer,
    private left: number,
  ) {
    this.chunks = [first];
    this.size = first.length;
    this.whole.catch(() => {}); // read by the write; a cancelled one is never awaited
  }

  add(data: Buffer): void {
    if (this.left === 0) return;
    this.left -= 1;
    this.size += data.length;
    if (this.size > FILE_WRITE_MAX_BYTES) return this.fail(new FileError(`the content is more than the ${FILE_WRITE_MAX_BYTES} bytes a write may carry`));
    this.chunks.push(data);
    if (this.left === 0) this.settle.resolve(Buffer.concat(this.chunks));
  }

  fail(err: Error): void {
    this.left = 0;
    this.settle.reject(err);
  }
}

export class AgentSession {
  private readonly running = new Map<number, Running>();
  readonly principal: Principal;

  constructor(
    private readonly name: string,
    private readonly ctx: GatewayContext,
    private readonly send: (frame: AgentFrame) => void,
    /** The relay protocol spoken on this connection: nothing newer is sent (a gateway of 1 refuses unknown fields). */
    private readonly version = PROTOCOL_VERSION,
    private readonly holdTimeoutMs = HOLD_TIMEOUT_MS,
  ) {
    this.principal = { name: `agent:gateway-${name}`, via: 'agent', scope: ADMIN_SCOPE };
  }

  get active(): number {
    return this.running.size;
  }

  handle(frame: GatewayFrame): void {
    switch (frame.type) {
      case 'registered':
        return;
      case 'credit':
        return this.running.get(frame.id)?.credit(frame.bytes);
      case 'cancel':
        return this.running.get(frame.id)?.cancel();
      case 'input':
        return this.running.get(frame.id)?.input?.(Buffer.from(frame.data, 'base64'));
      case 'resize':
        return this.running.get(frame.id)?.resize?.(frame.cols, frame.rows);
      case 'stdin': {
        // Input for a command that has ended is expected (it was in flight): dropped.
        const overrun = this.running.get(frame.id)?.stdin?.received(Buffer.from(frame.data, 'base64'));
        if (!overrun) return;
        this.running.get(frame.id)?.cancel();
        return this.send({ type: 'error', id: frame.id, message: `agent ${this.name} stopped the command: ${overrun}` });
      }
      case 'stdin-end':
        return this.running.get(frame.id)?.stdin?.finish();
      case 'file-write-part':
        return this.running.get(frame.id)?.part?.(Buffer.from(frame.content, 'base64'));
      case 'go':
        // A go for a command that has ended (refused here, withdrawn) is expected: dropped.
        return this.running.get(frame.id)?.go?.();
    }
    if (this.running.has(frame.id)) return this.send({ type: 'error', id: frame.id, message: `request id ${frame.id} is already running` });
    if (this.running.size >= MAX_RUNNING) return this.send({ type: 'error', id: frame.id, message: `agent ${this.name} is running ${MAX_RUNNING} requests already; try again later` });
    switch (frame.type) {
      case 'exec':
        return this.exec(frame);
      case 'resolve':
        return this.resolve(frame.id, frame.paths, frame.names);
      case 'terminal':
        return this.terminal(frame.id, frame.argv, frame.cols, frame.rows, frame.inputTaken === true);
      default:
        return this.file(frame);
    }
  }

  /**
   * A file operation of the gateway's: resolving is a question about this machine's paths; a read, write
   * or listing goes through this machine's own perform(), so its own policy must allow it too (and its
   * audit trail records it).
   */
  private file(f: FileFrame): void {
    const abort = new AbortController();
    // A write longer than a frame: its parts come next, and it is written once they are all in.
    const parts = f.type === 'file-write' && f.more !== undefined ? new WriteParts(Buffer.from(f.content, 'base64'), f.more) : null;
    this.running.set(f.id, {
      cancel: () => {
        abort.abort();
        parts?.fail(new FileError('the write was cancelled before all of its content arrived'));
      },
      credit: () => {},
      ...(parts ? { part: (data: Buffer) => parts.add(data) } : {}),
    });
    const done = (frame: Omit<FileDone, 'type' | 'id'>): void => this.send({ type: 'file-done', id: f.id, ...frame });
    const work = async (): Promise<void> => {
      if (f.type === 'file-resolve') {
        const files = this.ctx.host(HERE).files;
        if (!files) throw new FileError('this machine offers no file operations');
        const own = this.ownAnswers();
        const resolved = await files.resolve(f.paths);
        return done({ resolved: resolved.map((r, i) => own.path(f.paths[i]!, 'real' in r ? r.real : null, r)) });
      }
      const action: FileAction =
        f.type === 'file-read'
          ? { kind: 'file.read', host: HERE, path: f.path, offset: f.offset, length: f.length, maxBytes: f.length }
          : f.type === 'file-write'
            ? { kind: 'file.write', host: HERE, path: f.path, content: parts ? await parts.whole : Buffer.from(f.content, 'base64'), createDirs: f.createDirs }
            : { kind: 'file.list', host: HERE, path: f.path };
      const r = await perform(asPrincipal(this.ctx, this.principal), action, { onStdout: () => {}, onStderr: () => {}, signal: abort.signal });
      if (r.outcome !== 'ok') throw new FileError(this.notDone(r), { denied: r.outcome === 'denied' });
      if (f.type === 'file-read') return done({ content: (r.content ?? Buffer.alloc(0)).toString('base64'), size: r.size ?? 0 });
      if (f.type === 'file-write') return done({ created: r.created ?? false });
      const entries = r.entries ?? [];
      return done({ entries: entries.slice(0, FILE_LIST_FRAME_ENTRIES), truncated: r.truncated || entries.length > FILE_LIST_FRAME_ENTRIES });
    };
    work()
      .catch((err: unknown) => {
        const denied = err instanceof FileError && err.denied && this.version >= PROTOCOL_V2;
        this.send({ type: 'file-error', id: f.id, message: errorText(err), ...(denied ? { denied: true } : {}) });
      })
      .finally(() => this.running.delete(f.id));
  }

  /** The connection ended: everything still running is stopped (its caller already got an error). */
  cancelAll(): void {
    for (const r of this.running.values()) r.cancel();
  }

  /** Sends output in frames of at most CHUNK_BYTES. */
  private out(id: number, stream: 'stdout' | 'stderr' | 'pty', chunk: Buffer, window: Window): void {
    for (let at = 0; at < chunk.length; at += CHUNK_BYTES) {
      const part = chunk.subarray(at, at + CHUNK_BYTES);
      window.sent(part.length);
      this.send({ type: 'out', id, stream, data: part.toString('base64') });
    }
  }

  private exec(f: ExecFrame): void {
    // remux's own commands are sent once the gateway's begin is durable (perform-session): never held.
    if (f.own && f.hold === true) return this.send({ type: 'error', id: f.id, message: `agent ${this.name} does not hold remux's own commands; nothing was run` });
    const abort = new AbortController();
    const window = new Window();
    // Granted as the command reads it: the gateway sends no further ahead (a gateway that does is cut off).
    const stdin = f.stdin === true && !f.own ? new CreditedInput((bytes) => this.send({ type: 'stdin-credit', id: f.id, bytes })) : undefined;
    stdin?.on('error', () => {}); // an overrun: the command is cancelled (below), its input cut
    const hold = f.hold === true ? new Hold(this.holdTimeoutMs) : null;
    this.running.set(f.id, {
      cancel: () => {
        hold?.end('the gateway withdrew it before it started');
        window.stop();
        abort.abort();
        stdin?.destroy();
      },
      credit: (bytes) => window.credit(bytes),
      ...(stdin ? { stdin } : {}),
      ...(hold ? { go: () => hold.go() } : {}),
    });
    if (f.own) {
      return void this.ownExec(f, window, abort.signal).finally(() => {
        window.stop();
        this.running.delete(f.id);
      });
    }
    const ctx = this.requestContext(f.sandbox === null ? null : { spec: f.sandbox, outside: f.outside ?? [] }, hold);
    // The stricter of the gateway's limit and this machine's own.
    const own = ctx.defaultTimeoutMs;
    const timeoutMs = f.timeoutMs === null ? own : own === null ? f.timeoutMs : Math.min(own, f.timeoutMs);
    const started = performance.now();
    perform(ctx, { kind: 'exec', host: HERE, command: f.command, cwd: f.cwd, timeoutMs, pipefail: f.pipefail }, {
      onStdout: (chunk) => this.out(f.id, 'stdout', chunk, window),
      onStderr: (chunk) => this.out(f.id, 'stderr', chunk, window),
      flow: window,
      signal: abort.signal,
      ...(stdin ? { stdin } : {}),
    })
      .then((r) => {
        const ranNot = r.outcome !== 'ok' && r.outcome !== 'failed' && r.outcome !== 'truncated';
        // A refusal here is this machine's own policy: said on stderr (its exit status says denied), as sh says a stage failed.
        if (ranNot && r.exitCode !== 125 && r.message) this.out(f.id, 'stderr', Buffer.from(`remux: ${this.notDone(r)}\n`), window);
        this.send({
          type: 'result',
          id: f.id,
          result: {
            exitCode: r.exitCode,
            signal: null,
            timedOut: r.timedOut,
            aborted: abort.signal.aborted,
            truncated: r.truncated,
            bytesOut: r.bytesOut,
            bytesErr: 0,
            durationMs: performance.now() - started,
            error: ranNot || r.exitCode === 125 ? r.message : null,
            errorKind: null,
          },
        });
      })
      .catch((err: unknown) => this.send({ type: 'error', id: f.id, message: `the agent failed: ${err instanceof Error ? err.message : String(err)}` }))
      .finally(() => {
        hold?.end('over');
        window.stop();
        stdin?.destroy();
        this.running.delete(f.id);
      });
  }

  /**
   * remux's own command line (own.ts): run on this machine without the policy engine, which refuses tmux,
   * once its shape, its tmux user and any startup command in it passed. A startup command runs in the
   * sandbox both policies ask for, built here; keys sent are checked and audited as `session.send`, as
   * the gateway's perform-session does. Audited, except the periodic session listings.
   */
  private async ownExec(f: ExecFrame, window: Window, signal: AbortSignal): Promise<void> {
    const ctx = asPrincipal(this.ctx, this.principal);
    const started = performance.now();
    const fail = (exitCode: number, message: string): void => {
      this.out(f.id, 'stderr', Buffer.from(`remux: agent ${this.name}: ${message}\n`), window);
      this.send({ type: 'result', id: f.id, result: { exitCode, signal: null, timedOut: false, aborted: false, truncated: false, bytesOut: 0, bytesErr: 0, durationMs: performance.now() - started, error: message, errorKind: null } });
    };
    const asked: Asked = { principal: ctx.principal.name, host: HERE, operation: 'remux', command: f.command, argv: null, policy: '(none: remux tmux command)' };
    try {
      const policy = ctx.policies.get(ctx.defaultPolicy);
      if (!policy) return fail(EXIT.USAGE, `the agent's default_policy ${ctx.defaultPolicy} is not in ${ctx.policiesFile}`);
      const host = ctx.host(HERE);
      let list: CommandList;
      try {
        list = parseCommand(f.command);
      } catch (err) {
        return fail(EXIT.USAGE, (err as Error).message);
      }
      asked.argv = list.items.flatMap((i) => i.pipeline.stages.flatMap((s) => s.argv));
      const refused = async (exitCode: number, reason: string): Promise<void> => {
        await refuse(ctx, asked, started, 'denied', exitCode, reason, null);
        return fail(exitCode, reason);
      };
      const checked = checkOwnCommand(list, policy, host.resolver, ctx.sessions.users(HERE));
      if ('refusal' in checked) return await refused(EXIT.DENIED, checked.refusal);
      if (checked.send !== null) {
        // What perform-session checks of a send, for this machine's principal: its scope over the tmux user, and that it may type.
        asked.operation = 'session.send';
        asked.resource = `${checked.send.user}@${HERE}:${checked.send.session}`;
        const scoped = checkFacts(ctx.principal, { host: HERE, tmuxUser: checked.send.user, interactive: true }, ctx.defaultPolicy, (n) => ctx.hostEntry(n));
        if (!scoped.ok) return await refused(EXIT.DENIED, scoped.reason);
      }
      let run = list;
      let enforced = "remux's own command, requested by the gateway";
      if (checked.startup === null && f.sandbox !== null) return await refused(EXIT.DENIED, 'a sandbox came with a command that starts no session');
      if (checked.startup !== null) {
        const pane = await this.startupPane(checked.startup, policy, f.sandbox);
        if ('refusal' in pane) return await refused(pane.exitCode, pane.refusal);
        run = pane.list;
        enforced = pane.enforced;
      }
      const quiet = list.items.every((i) => i.pipeline.stages.every((s) => isListing(s.argv)));
      const actionId = quiet ? null : await ctx.audit.begin({ ...asked, decision: 'allow', rule: null, reason: enforced });
      const r = await host.execute({
        list: run,
        cwd: f.cwd,
        timeoutMs: f.timeoutMs,
        pipefail: f.pipefail,
        output: { maxBytes: OWN_OUTPUT_MAX, redact: [], redactBlocks: [] },
        sandbox: null,
        onStdout: (chunk) => this.out(f.id, 'stdout', chunk, window),
        onStderr: (chunk) => this.out(f.id, 'stderr', chunk, window),
        flow: window,
        signal,
      });
      if (actionId !== null) await ctx.audit.end(actionId, { exitCode: r.exitCode, signal: r.signal, durationMs: r.durationMs, bytesOut: r.bytesOut, bytesErr: r.bytesErr, truncated: r.truncated, timedOut: r.timedOut, error: r.error });
      this.send({ type: 'result', id: f.id, result: { ...r, durationMs: performance.now() - started } });
    } catch (err) {
      this.send({ type: 'error', id: f.id, message: `the agent failed: ${errorText(err)}` });
    }
  }

  /**
   * The tmux command that starts a session's startup command here: in the sandbox both policies ask for
   * (this machine's policy's, narrowed to the one the gateway sent), built on this machine with the pane
   * program of sessions/pane-sandbox.ts; plain /bin/sh when neither asks for one. The gateway sends none
   * when its policy lets every stage out (paneLetOut) or has no sandbox: this machine's then lets the
   * pane out only as its own policy does too.
   */
  /**
   * Why this machine did not do a request, for the gateway's caller: a refusal names this side's own policy (or
   * its approver), which the caller would otherwise take for the gateway's.
   */
  private notDone(r: PerformResult): string {
    return `agent ${this.name}${r.outcome === 'denied' ? "'s own policy" : ''}: ${r.message ?? r.outcome}`;
  }

  private async startupPane(startup: OwnStartup, policy: Policy, gatewaySandbox: SandboxSpec | null): Promise<{ list: CommandList; enforced: string } | { refusal: string; exitCode: number }> {
    const here = this.ctx.host(HERE);
    const enforcement = await enforcementOn(policy, here);
    if ('refusal' in enforcement) return { refusal: enforcement.refusal, exitCode: EXIT.DENIED };
    let letOut = false;
    if (enforcement.sandbox && gatewaySandbox === null) {
      const decision = evaluate(policy, startup.list, { cwd: startup.cwd, resolver: here.resolver, enforcement });
      const pane = paneLetOut(decision, startup.list);
      if ('refusal' in pane) return { refusal: pane.refusal, exitCode: EXIT.DENIED };
      letOut = pane.outside;
    }
    const own = enforcement.sandbox && !letOut ? sandboxOn(policy, this.principal.name, here) : null;
    const spec = intersectSandbox(own, gatewaySandbox);
    if (spec === null) return { list: single([...startup.prefix, ...unsandboxedPaneProgram(startup.command)]), enforced: enforcement.sandbox ? LET_OUT : `static checks only here (${enforcement.why})` };
    const program = localPaneProgram({ cwd: startup.cwd, spec, securePath: this.ctx.sessions.securePath, shellCommand: startup.command });
    if ('problem' in program) return { refusal: program.problem, exitCode: program.kind === 'sandbox' ? EXIT.DENIED : EXIT.FAILURE };
    return { list: single([...startup.prefix, ...program]), enforced: 'runs in the OS sandbox (bubblewrap) of both policies for the life of the session' };
  }

  /**
   * Path and program questions of the gateway's policy check, answered the way this machine's resolver
   * sees them, within this machine's own policy.
   */
  private resolve(id: number, paths: string[], names: string[]): void {
    const resolver = this.ctx.host(HERE).resolver;
    const answer = (fn: () => string): RelayAnswer => {
      try {
        return { path: fn() };
      } catch (err) {
        if (err instanceof ResolveError || (err as NodeJS.ErrnoException).code !== undefined) return { error: (err as Error).message };
        throw err;
      }
    };
    try {
      const own = this.ownAnswers();
      this.send({
        type: 'resolved',
        id,
        paths: paths.map((p) => {
          const found = answer(() => resolver.realpath(p, '/'));
          return own.path(p, 'path' in found ? found.path : null, found);
        }),
        names: names.map((n) => {
          const path = resolver.which(n);
          return own.program(n, path, path === null ? null : { path });
        }),
      });
    } catch (err) {
      this.send({ type: 'error', id, message: `cannot resolve paths: ${(err as Error).message}` });
    }
  }

  /** What the gateway may learn of this machine's paths and programs: what its own policy covers. */
  private ownAnswers(): OwnAnswers {
    return new OwnAnswers(this.ctx.policies.get(this.ctx.defaultPolicy), this.ctx.host(HERE).resolver, this.name, this.ctx.defaultPolicy);
  }

  private terminal(id: number, argv: string[], cols: number, rows: number, reportTaken: boolean): void {
    const window = new Window();
    let cancelled = false;
    let kill = (): void => {
      cancelled = true;
    };
    this.running.set(id, { cancel: () => kill(), credit: (bytes) => window.credit(bytes) });
    openCheckedTerminal(asPrincipal(this.ctx, this.principal), HERE, argv, { cols, rows }).then(
      (opened) => {
        if ('refusal' in opened) {
          this.running.delete(id);
          return this.send({ type: 'error', id, message: opened.refusal });
        }
        const { terminal } = opened;
        kill = () => terminal.kill();
        if (cancelled) terminal.kill();
        this.send({ type: 'opened', id });
        const resumeWhenRoom = (): void => window.onRoom(() => terminal.resume());
        terminal.onData((chunk) => {
          this.out(id, 'pty', chunk, window);
          if (window.full()) {
            terminal.pause();
            resumeWhenRoom();
          }
        });
        const input = new TerminalInput(terminal, reportTaken ? (bytes) => this.send({ type: 'input-taken', id, bytes }) : null, (why) => {
          terminal.kill();
          this.send({ type: 'error', id, message: `agent ${this.name} stopped the terminal: ${why}` });
        });
        this.running.set(id, {
          cancel: () => terminal.kill(),
          credit: (bytes) => window.credit(bytes),
          // Typing into a control client would be running tmux commands: only the recorder's screen question, once.
          ...(opened.control ? { input: this.controlInput(id, terminal, opened.control.screen) } : { input: (data: Buffer) => input.write(data), resize: (c: number, r: number) => terminal.resize(c, r) }),
        });
        void opened.ended.then((exit) => {
          window.stop();
          input.stop();
          this.running.delete(id);
          this.send({ type: 'exit', id, code: exit.code, signal: exit.signal });
        });
      },
      (err: unknown) => {
        this.running.delete(id);
        this.send({ type: 'error', id, message: err instanceof Error ? err.message : String(err) });
      },
    );
  }

  /**
   * What a control client (the session recorder's) takes: its screen question, once, exactly; anything
   * else would be a tmux command (run-shell, new-window) and stops the terminal.
   */
  private controlInput(id: number, terminal: HostTerminal, screen: Buffer): (data: Buffer) => void {
    let asked = false;
    return (data) => {
      if (!asked && data.equals(screen)) {
        asked = true;
        return terminal.write(data);
      }
      terminal.kill();
      this.send({ type: 'error', id, message: `agent ${this.name} stopped the terminal: a control client takes no input but the recorder's screen question` });
    };
  }

  /**
   * This machine's context, acting as the gateway's agent principal, its sandbox narrowed to the gateway's
   * too, and a stage let out of it only where both policies let it out (outsideOfBoth). A held command is started only on the gateway's go: perform() has checked it and its begin is
   * durable by then; withdrawn, it is recorded as not run (130 for a cancel, as a caller gone before it
   * started; 125 for a go that never came).
   */
  private requestContext(gateway: { spec: SandboxSpec; outside: readonly number[] } | null, hold: Hold | null): GatewayContext {
    const base = asPrincipal(this.ctx, this.principal);
    if (gateway === null && hold === null) return base;
    const host = (name: string): Host => {
      const h = this.ctx.host(name);
      const run: Host['execute'] = (req) => {
        if (gateway === null) return h.execute(req);
        const { outside: own, ...rest } = req;
        const outside = outsideOfBoth(req.sandbox === null ? null : (own ?? []), gateway.outside);
        return h.execute({ ...rest, sandbox: intersectSandbox(req.sandbox, gateway.spec), ...(outside.length > 0 ? { outside } : {}) });
      };
      const execute: Host['execute'] = async (req) => {
        if (hold === null) return run(req);
        let withdrawn: string | null = null;
        const notRun = (): ExecResult => {
          const cancelled = req.signal?.aborted === true;
          return { exitCode: cancelled ? 130 : 125, signal: null, timedOut: false, aborted: cancelled, truncated: false, bytesOut: 0, bytesErr: 0, durationMs: 0, error: `not run: ${withdrawn}`, errorKind: null };
        };
        const released = hold.released.then((why) => {
          withdrawn = why;
          if (why !== null) throw new Error(why);
        });
        // A host that prepares a command until it may start (this machine's spawner) gets it at once: it
        // starts once both the gateway's go and this machine's own begin came, and not at all otherwise.
        if (h.startsOnceDurable) {
          const result = await run({ ...req, durable: Promise.all([req.durable, released]) });
          return withdrawn === null ? result : notRun();
        }
        await released.catch(() => {});
        return withdrawn === null ? run(req) : notRun();
      };
      return { ...h, execute };
    };
    return Object.assign(Object.create(base) as GatewayContext, { host });
  }
}
