// `remux session …`: every command builds session actions and hands them to perform() (audited, with
// the daemon's warm connections and inventory cache when it runs, in this process otherwise). Attach
// needs this process's terminal, so it always runs here, through the same perform().
import { AGENTS_HOST } from '../agents/tmux.js';
import { quoteWord } from '../command/render.js';
import { EXIT } from '../core/exit-codes.js';
import type { GatewayContext } from '../core/context.js';
import type { PerformIO, PerformResult, SessionAction } from '../core/types.js';
import { hostsInScope } from '../core/scope.js';
import { everyStageLetOut } from '../policy/evaluate.js';
import { isSingleHostName, selectionFailureExit } from '../hosts/selectors.js';
import { rateLimitedMessage } from '../hosts/rate-limit.js';
import type { AttachEnd, AttachStream } from '../sessions/attach.js';
import { clampSize, type TerminalSize } from '../sessions/terminal-size.js';
import { AttachRecorder, newRecordingId } from '../sessions/recording.js';
import { pruneAudited, recordingRoom, retentionLimits } from '../sessions/retention.js';
import { recordingsDir } from '../config/paths.js';
import type { HostSessions } from '../sessions/service.js';
import { MAX_CAPTURE_LINES, noSessionsText, sendItems } from '../sessions/tmux.js';
import { approverFor, type Runner } from './client-commands.js';
import type { AttachOptions, CaptureOptions, KillOptions, LsOptions, NewOptions, SendOptions, SessionOptions } from './commands/session.js';
import type { Invocation } from './invocation.js';
import { formatTable, UsageError, type Cell, utcCell } from './output.js';

/** Runs `work` in the runner's context for `selector` once the request is admitted; closes what it opened. */
async function inContext(inv: Invocation, runner: Runner, selector: string, work: (ctx: GatewayContext) => Promise<number>): Promise<number> {
  try {
    // REMUX_TOKEN: act as that principal, with its scope (as client run does).
    const { contextFor } = await import('../core/context.js');
    const ctx = contextFor(await runner.context(selector), inv.env);
    const admitted = await runner.admit(ctx);
    if (!admitted.ok) {
      inv.stderr.write(`remux: ${rateLimitedMessage(admitted.retryInMs)}\n`);
      return EXIT.RATE_LIMITED;
    }
    return await work(ctx);
  } finally {
    await runner.close();
  }
}

export function listSessions(inv: Invocation, runner: Runner, opts: LsOptions): Promise<number> {
  return inContext(inv, runner, opts.host ?? 'localhost', async (ctx) => {
    let hosts: string[];
    try {
      // By default the hosts every listing shows (this machine, then the inventory's) that are in scope.
      const listed = hostsInScope(ctx.principal.scope, ctx.registry.inventory());
      hosts = opts.host !== undefined || listed.length === 0 ? ctx.registry.select(opts.host ?? 'all', ctx.principal) : listed.map((h) => h.name);
    } catch (err) {
      const { name, message } = err as Error;
      if (name !== 'InventoryError' && name !== 'ScopeError') throw err;
      inv.stderr.write(`remux: ${message}\n`);
      return name === 'ScopeError' ? EXIT.DENIED : selectionFailureExit(opts.host ?? 'all');
    }
    await ctx.registry.prepare(hosts);
    const { combinedExit, fanOut } = await import('../core/fanout.js');
    const results = await fanOut(
      ctx,
      hosts,
      (host) => ({ kind: 'session.list', host, ...(opts.refresh ? { fresh: true } : {}) }),
      { onOutput: () => {}, onResult: () => {} },
      { concurrency: ctx.config.fanout.concurrency },
    );
    // What kept a host out of the listing: its inventory's error (unreachable), or a refusal of the
    // listing itself (a principal's scope, the rate limit), which is said as such.
    const why = new Map<string, string>();
    const listed = hosts.map((host): HostSessions => {
      const r = results.get(host)!;
      if (r.sessions) return r.sessions;
      if (r.outcome !== 'unreachable') why.set(host, r.outcome.replace('_', ' '));
      return { host, checkedAt: new Date().toISOString(), sweepMs: 0, error: r.message ?? r.outcome, users: [] };
    });
    inv.stdout.write(opts.json ? `${JSON.stringify(listed, null, 2)}\n` : sessionsTable(listed, why));
    return combinedExit(results.values());
  });
}

/**
 * One row per session; a host or tmux user with none says why, its error or sudo's words a note to the
 * line's end. `why`: the hosts not listed for another reason than their reach, and that reason.
 */
function sessionsTable(listed: HostSessions[], why: ReadonlyMap<string, string>): string {
  const when = (iso: string): string => utcCell(iso, 'minute');
  const rows = listed.flatMap((h): Cell[][] => {
    if (h.error !== null) return [[h.host, null, `(${why.get(h.host) ?? 'unreachable'}: ${h.error})`]];
    return h.users.flatMap((u): Cell[][] => {
      const none = noSessionsText(u);
      if (none !== undefined) return [[h.host, u.user, `(${none})`]];
      return u.sessions.map((s) => [h.host, u.user, s.name, s.windows, when(s.created), when(s.activity), s.attached]);
    });
  });
  return formatTable(['HOST', 'USER', 'SESSION', 'WINDOWS', 'CREATED (UTC)', 'ACTIVITY (UTC)', 'ATTACHED'], rows);
}

/** A session lives on one host: --host names it, never a selector. */
function checkOneHost(host: string): void {
  if (!isSingleHostName(host)) throw new UsageError(`--host names one host for this command, got "${host}"`, 'list sessions across hosts with: remux session ls --host SELECTOR');
}

/** One session action on the host --host names: validated, admitted, performed; the result reported. */
function onSession(
  inv: Invocation,
  runner: Runner,
  opts: SessionOptions,
  action: (host: string) => SessionAction,
  after?: (ctx: GatewayContext, result: PerformResult) => Promise<number>,
  onStdout: (chunk: Buffer) => void = (chunk) => inv.stdout.write(chunk),
): Promise<number> {
  checkOneHost(opts.host);
  return inContext(inv, runner, opts.host, async (ctx) => {
    await ctx.registry.prepare([opts.host]);
    const { perform } = await import('../core/perform.js');
    const controller = new AbortController();
    const release = inv.onInterrupt((why) => controller.abort(why));
    try {
      const io: PerformIO = {
        onStdout,
        onStderr: (chunk) => inv.stderr.write(chunk),
        signal: controller.signal,
        approve: await approverFor(inv, ctx, controller.signal),
      };
      const asked = action(opts.host);
      const result = await perform(ctx, asked, io);
      if (result.outcome !== 'ok') {
        inv.stderr.write(`remux: ${result.message ?? result.outcome}\n`);
        // A startup command the policy refused: how to see why, as `client run` says it.
        if (asked.kind === 'session.new' && asked.command !== undefined && result.outcome === 'denied' && result.decision) {
          inv.stderr.write(`hint: see why with \`remux policy check ${result.decision.policy} -- ${quoteWord(asked.command)}\`\n`);
        }
        return result.exitCode;
      }
      if (asked.kind === 'session.new' || asked.kind === 'session.kill') await runner.sessionsChanged(opts.host);
      return after ? await after(ctx, result) : EXIT.OK;
    } finally {
      release();
    }
  });
}

const user = (opts: SessionOptions): { tmuxUser?: string } => (opts.user === undefined ? {} : { tmuxUser: opts.user });

export function newSession(inv: Invocation, runner: Runner, name: string, opts: NewOptions): Promise<number> {
  return onSession(
    inv,
    runner,
    opts,
    (host) => ({
      kind: 'session.new',
      host,
      ...user(opts),
      session: name,
      callerCwd: inv.cwd,
      ...(opts.cmd !== undefined ? { command: opts.cmd } : {}),
      ...(opts.policy !== undefined ? { policy: opts.policy } : {}),
    }),
    async (ctx, result) => {
      // How the startup command is bounded, as `client run` would be: the sandbox, or static checks only
      // (also where rules with sandbox: false let every stage out: perform-session's paneLetOut).
      const decision = result.decision;
      const enforcement = opts.cmd === undefined ? null : !decision?.sandbox ? 'static' : everyStageLetOut(decision) ? 'outside' : 'sandbox';
      const bound = { static: ' (its command with static checks only)', outside: ' (its command outside the OS sandbox: sandbox: false)', sandbox: ' (its command in the OS sandbox)' };
      inv.stderr.write(`created session ${name} on ${opts.host}${opts.user ? ` as ${opts.user}` : ''}${enforcement === null ? '' : bound[enforcement]}\n`);
      if (opts.json) {
        // What a script goes on with: the tmux user as resolved, and the line that attaches to it.
        const created = { host: opts.host, user: opts.user ?? ctx.sessions.target(opts.host).user, session: name, command: opts.cmd ?? null, policy: decision?.policy ?? null, enforcement, attach: `remux session attach ${quoteWord(name)} --host ${quoteWord(opts.host)}${opts.user ? ` --user ${quoteWord(opts.user)}` : ''}` };
        inv.stdout.write(`${JSON.stringify(created)}\n`);
      }
      return opts.attach ? attachIn(inv, runner, ctx, name, opts, false) : EXIT.OK;
    },
  );
}

export function attachSession(inv: Invocation, runner: Runner, name: string, opts: AttachOptions): Promise<number> {
  checkOneHost(opts.host);
  return inContext(inv, runner, opts.host, async (ctx) => {
    await ctx.registry.prepare([opts.host]);
    return attachIn(inv, runner, ctx, name, opts, opts.readOnly === true);
  });
}

/** Attaches this terminal; a running daemon hears of the attach and its end (the session's client count). */
async function attachIn(inv: Invocation, runner: Runner, ctx: GatewayContext, name: string, opts: SessionOptions, readOnly: boolean): Promise<number> {
  const slot = await runner.attachSlot();
  if ('refusal' in slot) {
    inv.stderr.write(`remux: ${slot.refusal}\n`);
    return slot.exitCode;
  }
  try {
    return await attachWithSlot(inv, runner, ctx, name, opts, readOnly);
  } finally {
    slot.release();
  }
}

/** How to watch a session read-only: an agent session's pane (agent-ID on host agents) as `remux code` names it. */
function watchCommand(name: string, host: string): string {
  const agent = host === AGENTS_HOST ? /^agent-(.+)$/.exec(name)?.[1] : undefined;
  return agent === undefined ? `remux session attach ${name} --host ${host} --read-only` : `remux code attach ${agent} -r`;
}

async function attachWithSlot(inv: Invocation, runner: Runner, ctx: GatewayContext, name: string, opts: SessionOptions, readOnly: boolean): Promise<number> {
  const { perform } = await import('../core/perform.js');
  const size = { cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 };
  // Recorded like a browser attach (sessions.record: attaches, the default); the audit record names it.
  const recording = ctx.config.sessions.record === 'attaches' ? newRecordingId() : undefined;
  const dir = recordingsDir(inv.env);
  // Without a daemon nothing else makes room: the oldest recordings go first, as the daemon's retention
  // would. Before the attach starts: its first screen must find the recorder there.
  if (recording) await pruneAudited(dir, retentionLimits(ctx.config.sessions), ctx.audit, ctx.principal.name);
  const result = await perform(
    ctx,
    { kind: 'session.attach', host: opts.host, ...user(opts), session: name, readOnly, ...size, ...(recording ? { recording } : {}) },
    { onStdout: () => {}, onStderr: () => {} },
  );
  if (!result.attach) {
    inv.stderr.write(`remux: ${result.message ?? result.outcome}\n`);
    // A principal that may only watch is told how to.
    if (result.outcome === 'denied' && !readOnly && ctx.principal.scope.attach === 'read-only') inv.stderr.write(`hint: watch it with: ${watchCommand(name, opts.host)}\n`);
    return result.exitCode;
  }
  const meta = { host: opts.host, user: opts.user ?? ctx.sessions.target(opts.host).user, session: name, principal: ctx.principal.name, readOnly, actionId: result.actionId };
  const recorder = recording ? new AttachRecorder(dir, meta, clampSize(size.cols, size.rows), recordingRoom(dir, ctx.config.sessions.recordings_max_total_mb), recording) : null;
  const stream = recorder ? recorded(result.attach, recorder) : result.attach;
  // The first screen tmux sends means its server counts this client.
  let attached: Promise<void> | null = null;
  stream.onData(() => void (attached ??= runner.sessionsChanged(opts.host)));
  const end = await connectTerminal(stream).finally(() => recorder?.end());
  await attached;
  await runner.sessionsChanged(opts.host);
  if (end.reason === 'lifetime') {
    inv.stderr.write(`remux: the attach reached its lifetime limit (sessions.attach_lifetime_seconds) and was closed; the session goes on\n`);
    return EXIT.FAILURE;
  }
  return end.code ?? EXIT.OK;
}

/** The attach as recorded: its output and its size changes (clamped, as taken) go to the recording too. */
function recorded(stream: AttachStream, recorder: AttachRecorder): AttachStream {
  stream.onData((chunk) => recorder.output(chunk));
  const resize = (cols: number, rows: number): TerminalSize | null => {
    const taken = stream.resize(cols, rows);
    if (taken) recorder.resize(taken.cols, taken.rows);
    return taken;
  };
  return Object.assign(Object.create(stream) as AttachStream, { resize });
}

/**
 * This process's terminal, raw, wired to the attach until it ends; the terminal is restored on every
 * way out (the attach ends, a signal, an exception, process exit). Output waits for stdout to drain.
 */
async function connectTerminal(stream: AttachStream): Promise<AttachEnd> {
  const { stdin, stdout } = process;
  const raw = stdin.isTTY === true;
  const restore = (): void => {
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  };
  const onInput = (chunk: Buffer): void => stream.write(chunk);
  const onResize = (): void => void stream.resize(stdout.columns, stdout.rows);
  const onSignal = (): void => void stream.close();
  // Ending the attach because the input ended is a detach: success, however tmux's client took being closed.
  let detached = false;
  const onInputEnd = (): void => {
    detached = true;
    onSignal();
  };
  const signals = ['SIGTERM', 'SIGHUP'] as const;
  process.once('exit', restore);
  for (const s of signals) process.on(s, onSignal);
  try {
    if (raw) stdin.setRawMode(true);
    stdin.on('data', onInput);
    // Input from a pipe or a file (</dev/null, a script): once it ends nothing more can come, so detach
    // rather than hold the attach until its lifetime limit. (A script types with `remux session send`.)
    if (!raw) stdin.once('end', onInputEnd);
    stdin.resume();
    stdout.on('resize', onResize);
    stream.onData((chunk) => {
      if (stdout.write(chunk)) return;
      stream.pause();
      stdout.once('drain', () => stream.resume());
    });
    const end = await stream.ended;
    return detached && end.reason === 'closed' ? { ...end, code: 0, signal: null } : end;
  } finally {
    stdin.off('data', onInput);
    stdin.off('end', onInputEnd);
    stdout.off('resize', onResize);
    for (const s of signals) process.off(s, onSignal);
    process.off('exit', restore);
    restore();
  }
}

export function sendKeys(inv: Invocation, runner: Runner, name: string, words: string[], opts: SendOptions): Promise<number> {
  return onSession(inv, runner, opts, (host) => ({ kind: 'session.send', host, ...user(opts), session: name, items: sendItems(words, opts.literal === true) }));
}

export function captureSession(inv: Invocation, runner: Runner, name: string, opts: CaptureOptions): Promise<number> {
  // Said in the user's words: Number() would make "abc" NaN and "" 0.
  if (opts.lines !== undefined && !/^\d+$/.test(opts.lines)) throw new UsageError(`--lines must be a whole number from 1 to ${MAX_CAPTURE_LINES}, got "${opts.lines}"`);
  const lines = opts.lines === undefined ? {} : { lines: Number(opts.lines) };
  const action = (host: string): SessionAction => ({ kind: 'session.capture', host, ...user(opts), session: name, ...lines });
  if (!opts.json) return onSession(inv, runner, opts, action);
  // The text whole, then one document naming what was captured (the tmux user as resolved).
  const text: Buffer[] = [];
  const print = (ctx: GatewayContext): Promise<number> => {
    const captured = { host: opts.host, user: opts.user ?? ctx.sessions.target(opts.host).user, session: name, text: Buffer.concat(text).toString('utf8') };
    inv.stdout.write(`${JSON.stringify(captured)}\n`);
    return Promise.resolve(EXIT.OK);
  };
  return onSession(inv, runner, opts, action, print, (chunk) => text.push(chunk));
}

export async function killSession(inv: Invocation, runner: Runner, name: string, opts: KillOptions): Promise<number> {
  if (!opts.force) {
    if (!inv.stdinIsTTY) throw new UsageError(`session kill asks you to type the session name, but stdin is not a terminal`, 'pass -f to kill without asking');
    const typed = await inv.question(`kill session ${name} on ${opts.host} and everything running in it? type its name to confirm: `, new AbortController().signal);
    if (typed.trim() !== name) {
      inv.stderr.write(`remux: not killed: "${typed.trim()}" is not "${name}"\n`);
      return EXIT.FAILURE;
    }
  }
  return onSession(inv, runner, opts, (host) => ({ kind: 'session.kill', host, ...user(opts), session: name }), () => {
    inv.stderr.write(`killed session ${name} on ${opts.host}\n`);
    return Promise.resolve(EXIT.OK);
  });
}
