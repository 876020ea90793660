// The MCP tools: one table, each entry a precise schema (descriptions written for a model) and a thin
// handler that builds an Action and hands it to perform(), as every adapter does (ARCHITECTURE §1.1).
// Adding a tool (read_file, write_file, list_directory once the file.* actions exist) is one entry here.
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { asPrincipal, type GatewayContext } from '../../core/context.js';
import { EXIT } from '../../core/exit-codes.js';
import { fanOut } from '../../core/fanout.js';
import { perform, recordRefusal, ruleText } from '../../core/perform.js';
import { hostsInScope, noHostsInScope } from '../../core/scope.js';
import { OutputCapReached, type Action, type ExecAction, type FileAction, type PerformIO, type PerformResult, type Principal, type SessionAction } from '../../core/types.js';
import { approvalsApprover } from '../../notify/service.js';
import { rateLimitedMessage, type TakeResult } from '../../hosts/rate-limit.js';
import { hostStatuses } from '../../hosts/view.js';
import { noSessionsText, SEND_ITEMS_MAX, SEND_TEXT_MAX, sendItems } from '../../sessions/tmux.js';
import { MCP_WRITE_MAX } from './line-transport.js';
import { CappedOutput, latestLines, MCP_OUTPUT_CAP, POLICY_LIMIT_MARKER, truncationMarker } from './capture.js';
import { OutputTail, runningText, ticker } from './progress.js';

/** What a tool call runs with: the principal's context and what its transport adds. */
export interface ToolDeps {
  ctx: GatewayContext;
  principal: Principal;
  /** The daemon's per-principal rate limit, one token a tool call; absent in a CLI process (as for `client run` there). */
  admit?(principal: string): TakeResult;
  /** Default working directory on hosts sharing this machine's filesystem (stdio: where the client started us). */
  callerCwd?: string;
}

interface Reply<O> {
  structured: O;
  text: string;
  isError?: boolean;
}

interface Tool<I extends z.ZodObject = z.ZodObject, O extends z.ZodObject = z.ZodObject> {
  name: string;
  title: string;
  description: string;
  input: I;
  output: O;
  annotations: ToolAnnotations;
  /** `tell` shows the caller how the call is going (an approval awaited, a command running); absent when it did not ask. */
  call(args: z.infer<I>, deps: ToolDeps, signal: AbortSignal, tell: Tell | undefined): Promise<Reply<z.infer<O>>>;
}

/** Another server's name for one of our tools (Code Remote's), with its argument names. */
interface Alias<I extends z.ZodObject = z.ZodObject> {
  name: string;
  of: string;
  description: string;
  input: I;
  toTarget(args: z.infer<I>): Record<string, unknown>;
}

const tool = <I extends z.ZodObject, O extends z.ZodObject>(t: Tool<I, O>): Tool => t as unknown as Tool;
const alias = <I extends z.ZodObject>(a: Alias<I>): Alias => a as unknown as Alias;

const HOST = z.string().min(1).max(255).describe('Host name as list_hosts shows it; "localhost" is the machine remux runs on.');
const SESSION = z.string().min(1).max(64).describe('tmux session name, as list_sessions shows it.');
const TMUX_USER = z.string().min(1).max(64).optional().describe("tmux user owning the session (list_sessions shows them); default: the host's login user.");
/** An absolute path: a pattern, not zod's startsWith, whose JSON Schema says `"format": "starts_with"` (no JSON Schema format). */
const absolute = (): z.ZodString => z.string().regex(/^\//, 'must be an absolute path (starting with /)').max(4096);
const OUTCOME = z.enum(['ok', 'failed', 'truncated', 'denied', 'rejected', 'rate_limited', 'unreachable', 'error']);

// ---- run_command -----------------------------------------------------------------------------------

const RunInput = z.strictObject({
  host: HOST,
  command: z
    .string()
    .min(1)
    .max(65536)
    .describe(
      'The command line. Parsed strictly by remux, never by a shell: pipes |, && || ;, redirections < > >> 2> 2>&1 and quotes work; ' +
        '$(...), backticks, globs and variables are refused with the position. Every program and path is checked against the policy.',
    ),
  cwd: absolute().optional().describe('Absolute working directory on the host. Default: the home directory (or, over stdio on this machine, where the client started remux).'),
  timeout_s: z.number().int().min(1).max(86400).optional().describe('Kill the command (its whole process group) after this many seconds. Default: exec.timeout_seconds in config.yaml.'),
});

const RunOutput = z.object({
  host: z.string(),
  command: z.string(),
  outcome: OUTCOME.describe('ok: ran, exit 0; failed: ran, non-zero; truncated: output reached a cap (message says which) and remux stopped the command; denied: policy or scope refused; rejected: syntax; unreachable: host down'),
  exitCode: z.number().int().describe('The command\'s exit status (stopped by a signal: 128 + its number); 77 denied, 2 rejected, 75 rate limited, 255 unreachable.'),
  stdout: z.string(),
  stderr: z.string(),
  truncated: z.boolean().describe('Output was cut (policy limit or the MCP per-call cap) and the command stopped.'),
  timedOut: z.boolean(),
  durationMs: z.number(),
  actionId: z.number().int().nullable().describe('The audit record of this call (remux audit show ID).'),
  rule: z.string().nullable().describe('The policy rule that decided, when one did.'),
  message: z.string().nullable().describe('Why it was refused or did not finish normally; null on a normal run.'),
});

type RunArgs = z.infer<typeof RunInput>;

/**
 * The call's token of the principal's rate limit: why it is refused, or null. Every tool takes one, as
 * every CLI command does: a loop of reads, writes or keys is as much a flood as a loop of commands.
 */
function overLimit(deps: ToolDeps): string | null {
  const admitted = deps.admit?.(deps.principal.name) ?? { ok: true as const };
  return admitted.ok ? null : rateLimitedMessage(admitted.retryInMs);
}

/** perform() for an admitted call; past the limit the action is refused and audited as rate limited instead. */
async function performAdmitted(deps: ToolDeps, action: Action, io: PerformIO, limited: string | null): Promise<PerformResult> {
  const ctx = asPrincipal(deps.ctx, deps.principal);
  if (limited !== null) return recordRefusal(ctx, action, 'rate_limited', EXIT.RATE_LIMITED, limited);
  // The SSH machinery loads on first use (a CLI process has not needed it before).
  await ctx.registry.prepare([action.host]);
  return perform(ctx, action, io);
}

/** A progress message to the client, when it asked for them (a progressToken). */
export type Tell = (text: string) => void;

/** A policy `ask` becomes an approval (console, phone, CLI); the call waits for it, telling the client. */
function approve(deps: ToolDeps, tell: Tell | undefined, signal: AbortSignal): NonNullable<PerformIO['approve']> {
  return approvalsApprover(deps.ctx.approvals, deps.principal.name, (text) => tell?.(text.trim()), signal);
}

async function runCommand(args: RunArgs, deps: ToolDeps, signal: AbortSignal, tell: Tell | undefined): Promise<Reply<z.infer<typeof RunOutput>>> {
  const action: ExecAction = {
    kind: 'exec',
    host: args.host,
    command: args.command,
    ...(args.cwd !== undefined ? { cwd: args.cwd } : {}),
    ...(deps.callerCwd !== undefined ? { callerCwd: deps.callerCwd } : {}),
    ...(args.timeout_s !== undefined ? { timeoutMs: args.timeout_s * 1000 } : {}),
  };
  let result: PerformResult;
  const stop = new AbortController();
  // Past our cap the command is stopped, and perform() reports and audits it as truncated at that cap.
  const capReached = (): void => stop.abort(new OutputCapReached(`the MCP per-call cap of ${MCP_OUTPUT_CAP} bytes per stream`));
  const stdout = new CappedOutput(MCP_OUTPUT_CAP, capReached);
  const stderr = new CappedOutput(MCP_OUTPUT_CAP, capReached);
  // The client cancelling the call (or going away) stops the command, as Ctrl-C does for `client run`.
  const onCancel = (): void => stop.abort();
  signal.addEventListener('abort', onCancel, { once: true });
  // A long command (a build, a test suite) tells the client it is still going, and what it printed last.
  const tail = new OutputTail();
  const progress = tell && ticker(tell, (ms) => runningText(args.host, ms, tail));
  const asked = approve(deps, tell, stop.signal);
  const io: PerformIO = {
    onStdout: (c) => (stdout.push(c), tail.push(c)),
    onStderr: (c) => (stderr.push(c), tail.push(c)),
    signal: stop.signal,
    // An approval tells its own waiting state; the command runs once it is answered.
    approve: async (subject, decision) => {
      progress?.pause();
      try {
        return await asked(subject, decision);
      } finally {
        progress?.resume();
      }
    },
  };
  try {
    result = await performAdmitted(deps, action, io, overLimit(deps));
  } finally {
    progress?.stop();
    signal.removeEventListener('abort', onCancel);
  }
  const capped = stdout.capped || stderr.capped;
  const out = stdout.text() + (stdout.capped ? truncationMarker('stdout', MCP_OUTPUT_CAP) : result.truncated && !capped ? POLICY_LIMIT_MARKER : '');
  const err = stderr.text() + (stderr.capped ? truncationMarker('stderr', MCP_OUTPUT_CAP) : '');
  const rule = result.decision ? ruleText(result.decision) : null;
  const structured = {
    host: args.host,
    command: args.command,
    outcome: result.outcome,
    exitCode: result.exitCode,
    stdout: out,
    stderr: err,
    truncated: result.truncated || capped,
    timedOut: result.timedOut,
    durationMs: Math.round(result.durationMs * 1000) / 1000,
    actionId: result.actionId,
    rule,
    message: result.message,
  };
  if (result.outcome !== 'ok' && result.outcome !== 'failed' && result.outcome !== 'truncated') {
    const what = { denied: 'denied', rejected: 'rejected', rate_limited: 'rate limited', unreachable: 'not run', error: 'not run' }[result.outcome];
    return { structured, isError: true, text: `remux ${what}: ${result.message ?? result.outcome}${rule ? `\nrule: ${rule}` : ''}` };
  }
  const parts = [out, err !== '' ? `[stderr]\n${err}` : '', `[exit status ${result.exitCode}${result.message ? `: ${result.message}` : ''}]`].filter((p) => p !== '');
  return { structured, text: parts.map((p, i) => (i < parts.length - 1 && !p.endsWith('\n') ? `${p}\n` : p)).join('') };
}

// ---- list_hosts ------------------------------------------------------------------------------------

const HostsInput = z.strictObject({
  check: z.boolean().optional().describe('Connect to every host now (runs `true`, audited) to say for certain whether it is reachable. Default false: report what is known.'),
});

const HostsOutput = z.object({
  hosts: z.array(
    z.object({
      name: z.string(),
      transport: z.string().describe('local (this machine), ssh, or agent (a machine that dialled in with `remux agent`)'),
      labels: z.record(z.string(), z.string()),
      reachable: z.boolean().nullable().describe('null: not known yet (no connection tried); call again with check: true'),
      detail: z.string().nullable().describe('Why it is not reachable, or what is known.'),
    }),
  ),
});

async function listHosts(args: z.infer<typeof HostsInput>, deps: ToolDeps, signal: AbortSignal): Promise<Reply<z.infer<typeof HostsOutput>>> {
  const limited = overLimit(deps);
  if (limited !== null) return { structured: { hosts: [] }, isError: true, text: `remux rate limited: ${limited}` };
  const ctx = asPrincipal(deps.ctx, deps.principal);
  const visible = hostsInScope(deps.principal.scope, deps.ctx.registry.inventory());
  if (visible.length === 0) {
    const message = noHostsInScope(deps.principal);
    return { structured: { hosts: [] }, isError: true, text: message };
  }
  const live = new Map(hostStatuses(ctx).map((s) => [s.name, s]));
  if (args.check) await ctx.registry.prepare(visible.map((h) => h.name));
  const probed = args.check
    ? await fanOut(ctx, visible.map((h) => h.name), (host) => ({ kind: 'probe', host }), { onOutput: () => {}, onResult: () => {} }, { concurrency: ctx.config.fanout.concurrency, signal })
    : null;
  const hosts = visible.map((h) => {
    const p = probed?.get(h.name);
    const s = live.get(h.name);
    let reachable: boolean | null;
    let detail: string | null;
    if (p) [reachable, detail] = [p.outcome === 'ok', p.message];
    else if (h.transport === 'local') [reachable, detail] = [true, null];
    else if (s?.connected) [reachable, detail] = [true, s.lastRttMs !== null ? `connected (last round trip ${s.lastRttMs.toFixed(1)} ms)` : 'connected'];
    else if (s?.breaker?.state === 'open' || s?.lastError) [reachable, detail] = [false, s.lastError ?? s.breaker?.lastError ?? 'circuit breaker open'];
    else [reachable, detail] = [null, 'not connected yet'];
    return { name: h.name, transport: h.transport, labels: h.labels, reachable, detail };
  });
  const text = hosts.map((h) => `${h.name}\t${h.transport}\t${h.reachable === null ? 'unknown' : h.reachable ? 'reachable' : 'unreachable'}\t${Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(',')}${h.detail ? `\t${h.detail}` : ''}`);
  return { structured: { hosts }, text: text.join('\n') || '(no hosts)' };
}

// ---- sessions --------------------------------------------------------------------------------------

const TmuxSessionOut = z.object({ name: z.string(), windows: z.number(), created: z.string(), activity: z.string(), attached: z.number() });
const SessionsOutput = z.object({
  hosts: z.array(
    z.object({
      host: z.string(),
      checkedAt: z.string(),
      error: z.string().nullable(),
      users: z.array(z.object({ user: z.string(), state: z.string(), detail: z.string().optional(), sessions: z.array(TmuxSessionOut) })),
    }),
  ),
});

/** Runs one session action of a call (`limited`: its rate-limit refusal); its stdout (a capture: at most the session layer's cap). */
async function session(deps: ToolDeps, action: SessionAction, limited: string | null): Promise<{ result: PerformResult; stdout: string }> {
  const out: Buffer[] = [];
  const result = await performAdmitted(deps, action, { onStdout: (c) => out.push(c), onStderr: () => {} }, limited);
  return { result, stdout: Buffer.concat(out).toString('utf8') };
}

const refused = (result: PerformResult): string => `remux refused: ${result.message ?? result.outcome}`;

const SessionTarget = { host: HOST, session: SESSION, user: TMUX_USER };
const target = (a: { host: string; session: string; user?: string | undefined }) => ({ host: a.host, session: a.session, ...(a.user !== undefined ? { tmuxUser: a.user } : {}) });

/** capture_session's `lines` at most (the CLI's --lines goes further: a terminal is not a model's context). */
const CAPTURE_LINES_MAX = 10_000;
const CaptureOutput = z.object({
  host: z.string(),
  session: z.string(),
  text: z.string(),
  truncated: z.boolean().describe(`Earlier lines were left out: the text is the latest ${MCP_OUTPUT_CAP / 1024} KiB of the capture, after a line saying how many.`),
});
const SendOutput = z.object({ host: z.string(), session: z.string(), sent: z.number().int() });

// ---- files -----------------------------------------------------------------------------------------

const PATH = absolute().describe('Absolute path on the host. Checked against the policy as resolved on the host (symlinks followed there); a write never follows a symlink.');

/** Runs one file action as the principal; a refusal or failure becomes the tool's error text. */
async function fileAction(deps: ToolDeps, action: FileAction, signal: AbortSignal, tell: Tell | undefined): Promise<{ result: PerformResult; error: string | null }> {
  const result = await performAdmitted(deps, action, { onStdout: () => {}, onStderr: () => {}, signal, approve: approve(deps, tell, signal) }, overLimit(deps));
  if (result.outcome === 'ok') return { result, error: null };
  const rule = result.decision ? ruleText(result.decision) : null;
  const what = { failed: 'failed', truncated: 'truncated', denied: 'denied', rejected: 'rejected', rate_limited: 'rate limited', unreachable: 'not run', error: 'not run', ok: '' }[result.outcome];
  return { result, error: `remux ${what}: ${result.message ?? result.outcome}${rule ? `\nrule: ${rule}` : ''}` };
}

const ReadOutput = z.object({
  host: z.string(),
  path: z.string().describe('The file read, as resolved on the host.'),
  content: z.string(),
  encoding: z.enum(['utf8', 'base64']).describe('base64 when the bytes are not UTF-8 text.'),
  size: z.number().int().describe('The whole file\'s size in bytes.'),
  offset: z.number().int(),
  bytes: z.number().int().describe('Bytes returned.'),
  truncated: z.boolean().describe('More was asked for than one call returns (the cap): read on from nextOffset; with tail, the earlier lines were left out.'),
  nextOffset: z.number().int().optional().describe('When truncated (not a tail): the offset to read on from (redacted content may be shorter or longer than the bytes it covers).'),
  lines: z.number().int().optional().describe('With head or tail: the lines returned.'),
  firstLine: z.number().int().nullable().optional().describe('With head or tail: the number of the first line returned; null when a tail did not read back to the file\'s start.'),
});

const WriteOutput = z.object({ host: z.string(), path: z.string(), bytes: z.number().int(), created: z.boolean() });

const EditOutput = z.object({
  host: z.string(),
  path: z.string().describe('The file edited, as resolved on the host.'),
  changed: z.boolean().describe('false: the edits leave the file as it was (nothing written).'),
  written: z.boolean().describe('The new content was written (false for a dry run or no change).'),
  diff: z.string().describe('Unified diff of the change, redacted as the policy redacts output; cut past 64 KiB.'),
});

const ListOutput = z.object({
  host: z.string(),
  path: z.string(),
  entries: z.array(z.object({ name: z.string(), type: z.enum(['file', 'directory', 'symlink', 'other']), size: z.number(), mode: z.string(), modified: z.string() })),
  truncated: z.boolean(),
});

/**
 * What one read_file call returns at most. An answer carries the content twice (text and structured):
 * as base64, 2 × 4 MiB stays within what an SDK client reads over stdio with its defaults (10 MiB).
 */
const READ_MAX = 3 << 20;

/**
 * UTF-8 text as it is; anything else (a NUL, an invalid sequence) as base64, and so is text whose JSON
 * escapes (a control character takes 6 bytes) would make it larger than READ_MAX as base64.
 */
function textOrBase64(bytes: Buffer): { content: string; encoding: 'utf8' | 'base64' } {
  const text = bytes.toString('utf8');
  const clean = !bytes.includes(0) && Buffer.from(text, 'utf8').equals(bytes);
  const fits = clean && Buffer.byteLength(JSON.stringify(text)) <= (READ_MAX / 3) * 4;
  return fits ? { content: text, encoding: 'utf8' } : { content: bytes.toString('base64'), encoding: 'base64' };
}

/** The line after a head or tail read's content: which lines, from which byte, and what the cap left out. */
function linesNote(r: { lines: number; firstLine: number | null; offset: number; nextOffset?: number; size: number; truncated: boolean }, tail: boolean): string {
  if (r.lines === 0) return '[remux: the file is empty]';
  const which =
    r.firstLine === null
      ? `the last ${r.lines} line${r.lines === 1 ? '' : 's'} (line numbers unknown: the file before them was not read)`
      : r.lines === 1 ? `line ${r.firstLine}` : `lines ${r.firstLine}-${r.firstLine + r.lines - 1}`;
  const cut = !r.truncated
    ? ''
    : tail
      ? `; the lines before did not fit in ${MCP_OUTPUT_CAP} bytes: read them with offset and length`
      : `; cut at ${MCP_OUTPUT_CAP} bytes: read on with offset ${r.nextOffset}`;
  return `[remux: ${which}, from byte ${r.offset} of ${r.size}${cut}]`;
}

// ---- the table -------------------------------------------------------------------------------------

export const TOOLS: readonly Tool[] = [
  tool({
    name: 'run_command',
    title: 'Run a command on a host',
    description:
      'Run one command line on a host through remux: checked against the policy (programs, paths, output limits), run without a shell, ' +
      'audited. Returns stdout, stderr, the exit status and whether output was truncated. A refusal (policy, scope, syntax) is an error ' +
      'whose text names the rule and the reason: change the command rather than retrying it as is.',
    input: RunInput,
    output: RunOutput,
    annotations: { destructiveHint: true, openWorldHint: true },
    call: runCommand,
  }),
  tool({
    name: 'list_hosts',
    title: 'List hosts',
    description: 'List the hosts this principal may use: name, transport (local, ssh or agent), labels, and whether each is reachable.',
    input: HostsInput,
    output: HostsOutput,
    annotations: { readOnlyHint: true, openWorldHint: true },
    call: listHosts,
  }),
  tool({
    name: 'list_sessions',
    title: 'List tmux sessions',
    description: 'List the tmux sessions (e.g. coding agents at work) on one host or on every host this principal may use, per tmux user.',
    input: z.strictObject({ host: HOST.optional().describe('Only this host; default: every host in scope.') }),
    output: SessionsOutput,
    annotations: { readOnlyHint: true, openWorldHint: true },
    async call(args, deps) {
      const hosts = args.host !== undefined ? [args.host] : hostsInScope(deps.principal.scope, deps.ctx.registry.inventory()).map((h) => h.name);
      // One call, one token, however many hosts it lists (as a fan-out of `client run`).
      const limited = overLimit(deps);
      const results = await Promise.all(hosts.map(async (host) => ({ host, ...(await session(deps, { kind: 'session.list', host }, limited)) })));
      const shown = results.filter(({ result }) => result.outcome !== 'denied');
      const firstRefusal = results.find(({ result }) => result.outcome !== 'ok');
      // A listing of every host shows each one's error; one host's, or a call past the rate limit, is refused.
      if (shown.length === 0 || ((args.host !== undefined || limited !== null) && firstRefusal)) {
        return { structured: { hosts: [] }, isError: true, text: firstRefusal ? refused(firstRefusal.result) : `no host in scope for ${deps.principal.name}` };
      }
      const listed = shown.map(({ host, result }) => {
        const s = result.sessions ?? { host, checkedAt: new Date().toISOString(), error: result.message, users: [] };
        return { host: s.host, checkedAt: s.checkedAt, error: s.error, users: s.users };
      });
      const text = listed.flatMap((h) =>
        h.error !== null ? [`${h.host}: ${h.error}`] : h.users.flatMap((u) => (u.sessions.length === 0 ? [`${h.host} ${u.user}: ${noSessionsText(u)}`] : u.sessions.map((s) => `${h.host} ${u.user} ${s.name}\t${s.windows} window(s)\t${s.attached} attached\tactive ${s.activity}`))),
      );
      return { structured: { hosts: listed }, text: text.join('\n') };
    },
  }),
  tool({
    name: 'capture_session',
    title: 'Read a tmux session\'s screen',
    description:
      'Read what a tmux session shows: the visible pane, or the last `lines` lines of its history. Use it to watch an agent working in the session. ' +
      `At most ${CAPTURE_LINES_MAX} lines and ${MCP_OUTPUT_CAP / 1024} KiB of text: past that the latest lines are kept, the text begins with a [remux: …] line saying how many earlier ones were left out, and truncated is true.`,
    input: z.strictObject({
      ...SessionTarget,
      lines: z.number().int().min(1).max(CAPTURE_LINES_MAX).optional().describe(`The last N lines, scrollback included (not the visible pane plus N more); default: the visible pane only. At most ${CAPTURE_LINES_MAX}.`),
    }),
    output: CaptureOutput,
    annotations: { readOnlyHint: true, openWorldHint: true },
    async call(args, deps) {
      const { result, stdout } = await session(deps, { kind: 'session.capture', ...target(args), ...(args.lines !== undefined ? { lines: args.lines } : {}) }, overLimit(deps));
      const latest = latestLines(stdout, MCP_OUTPUT_CAP);
      const structured = { host: args.host, session: args.session, text: latest.text, truncated: latest.truncated };
      if (result.outcome !== 'ok') return { structured: { ...structured, text: '' }, isError: true, text: refused(result) };
      return { structured, text: structured.text };
    },
  }),
  tool({
    name: 'send_keys',
    title: 'Type into a tmux session',
    description:
      'Type into a tmux session, e.g. answer an agent\'s prompt: each item of `keys` is sent in order; a tmux key name (Enter, Escape, Tab, Up, C-c, …) ' +
      'is that key, anything else is typed as text. Send "Enter" as its own item to submit a line.',
    input: z.strictObject({
      ...SessionTarget,
      keys: z
        .array(z.string().min(1).max(SEND_TEXT_MAX))
        .min(1)
        .max(SEND_ITEMS_MAX)
        .refine((keys) => keys.reduce((n, k) => n + k.length, 0) <= SEND_TEXT_MAX, `at most ${SEND_TEXT_MAX} characters in all items together`)
        .describe(`e.g. ["yes", "Enter"] or ["C-c"]. At most ${SEND_ITEMS_MAX} items and ${SEND_TEXT_MAX} characters in all: send more in another call.`),
      literal: z.boolean().optional().describe('Type every item as text, even ones that look like key names.'),
    }),
    output: SendOutput,
    annotations: { destructiveHint: true, openWorldHint: true },
    async call(args, deps) {
      const { result } = await session(deps, { kind: 'session.send', ...target(args), items: sendItems(args.keys, args.literal === true) }, overLimit(deps));
      const structured = { host: args.host, session: args.session, sent: result.outcome === 'ok' ? args.keys.length : 0 };
      if (result.outcome !== 'ok') return { structured, isError: true, text: refused(result) };
      return { structured, text: `sent ${args.keys.length} item(s) to ${args.session} on ${args.host}` };
    },
  }),
  tool({
    name: 'read_file',
    title: 'Read a file on a host',
    description:
      'Read a file on a host (policy: read_file on its resolved path). Text comes back as is, other bytes as base64. One call returns at most ' +
      '64 KiB unless `length` asks for more (up to 3 MiB, so that the answer fits what an MCP client reads); `truncated` says there is more: read on with `offset`. ' +
      "Use the 'head' parameter to read only the first N lines of a file, or the 'tail' parameter to read only the last N lines (the end of a log), at most 64 KiB of them.",
    input: z.strictObject({
      host: HOST,
      path: PATH,
      offset: z.number().int().min(0).optional().describe('First byte to read; default 0.'),
      length: z.number().int().min(1).max(READ_MAX).optional().describe('Bytes to read from offset (at most 3 MiB); default: to the end, up to 64 KiB.'),
      head: z.number().int().min(1).optional().describe('If provided, returns only the first N lines of the file (not with tail, offset or length).'),
      tail: z.number().int().min(1).optional().describe('If provided, returns only the last N lines of the file (not with head, offset or length).'),
    }),
    output: ReadOutput,
    annotations: { readOnlyHint: true, openWorldHint: true },
    async call(args, deps, signal, tell) {
      const action: FileAction = {
        kind: 'file.read',
        host: args.host,
        path: args.path,
        ...(args.offset !== undefined ? { offset: args.offset } : {}),
        ...(args.head !== undefined ? { head: args.head } : {}),
        ...(args.tail !== undefined ? { tail: args.tail } : {}),
        // A model's context is not a log file: by default one call returns what a command's output may.
        ...(args.length !== undefined ? { length: args.length, maxBytes: args.length } : { maxBytes: MCP_OUTPUT_CAP }),
      };
      const { result, error } = await fileAction(deps, action, signal, tell);
      const bytes = result.content ?? Buffer.alloc(0);
      const body = textOrBase64(bytes);
      const byLines = result.lines !== undefined ? { lines: result.lines, firstLine: result.firstLine ?? null } : {};
      const next = result.nextOffset !== undefined ? { nextOffset: result.nextOffset } : {};
      const structured = { host: args.host, path: result.path ?? args.path, ...body, size: result.size ?? 0, offset: result.offset ?? args.offset ?? 0, bytes: bytes.length, truncated: result.truncated, ...next, ...byLines };
      if (error !== null) return { structured: { ...structured, content: '' }, isError: true, text: error };
      const shown = body.encoding === 'utf8' ? body.content : `[base64]\n${body.content}`;
      if (result.lines !== undefined) return { structured, text: shown + (shown === '' || shown.endsWith('\n') ? '' : '\n') + linesNote({ ...structured, lines: result.lines, firstLine: result.firstLine ?? null }, args.tail !== undefined) };
      const more = result.truncated ? `\n[remux: the bytes from offset ${structured.offset} to ${result.nextOffset} of ${structured.size}; read on with offset ${result.nextOffset}]` : '';
      return { structured, text: shown + more };
    },
  }),
  tool({
    name: 'write_file',
    title: 'Write a file on a host',
    description:
      'Write a whole file on a host (policy: write_file on its resolved path): written to a temporary file beside it and renamed over it, ' +
      'so readers never see half a file; the mode of an existing file is kept. A symlink is never followed. create_dirs makes missing parent directories. ' +
      'The content is at most 8 MiB.',
    input: z.strictObject({
      host: HOST,
      path: PATH,
      content: z.string().max(MCP_WRITE_MAX).describe('The new content, as UTF-8 text: at most 8 MiB (8388608 characters).'),
      create_dirs: z.boolean().optional().describe('Create missing parent directories; default false.'),
    }),
    output: WriteOutput,
    annotations: { destructiveHint: true, idempotentHint: true, openWorldHint: true },
    async call(args, deps, signal, tell) {
      const action: FileAction = { kind: 'file.write', host: args.host, path: args.path, content: args.content, ...(args.create_dirs ? { createDirs: true } : {}) };
      const { result, error } = await fileAction(deps, action, signal, tell);
      const structured = { host: args.host, path: result.path ?? args.path, bytes: result.bytes ?? 0, created: result.created ?? false };
      if (error !== null) return { structured, isError: true, text: error };
      return { structured, text: `${structured.created ? 'created' : 'wrote'} ${structured.path} on ${args.host} (${structured.bytes} bytes)` };
    },
  }),
  tool({
    name: 'edit_file',
    title: 'Edit a file on a host',
    description:
      'Replace exact text in a text file on a host, leaving the rest of it as it is (policy: write_file and read_file on its resolved path). ' +
      'Each old_text must appear exactly once in the file (include enough of the surrounding lines to make it unique; whitespace counts); ' +
      'edits apply in order, each to the result of those before it, and if any does not match, nothing is written. ' +
      'The file is then replaced atomically, its mode kept; a symlink is never followed. Returns a unified diff. ' +
      'Prefer this to write_file for changing an existing file: it sends only the change, and what redaction hid from you when you read the file stays in it.',
    input: z.strictObject({
      host: HOST,
      path: PATH,
      edits: z
        .array(
          z.strictObject({
            old_text: z.string().min(1).describe('Text to replace, copied exactly from the file, once in it.'),
            new_text: z.string().describe('What replaces it ("" deletes it).'),
          }),
        )
        .min(1)
        .max(100),
      dry_run: z.boolean().optional().describe('Only show the diff; write nothing. Default false.'),
    }),
    output: EditOutput,
    annotations: { destructiveHint: true, idempotentHint: false, openWorldHint: true },
    async call(args, deps, signal, tell) {
      const edits = args.edits.map((e) => ({ oldText: e.old_text, newText: e.new_text }));
      const action: FileAction = { kind: 'file.edit', host: args.host, path: args.path, edits, ...(args.dry_run ? { dryRun: true } : {}) };
      const { result, error } = await fileAction(deps, action, signal, tell);
      const diff = result.diff ?? '';
      const cut = Buffer.byteLength(diff) > MCP_OUTPUT_CAP;
      const shown = cut ? `${Buffer.from(diff).subarray(0, MCP_OUTPUT_CAP).toString('utf8')}\n[remux: the diff is longer than ${MCP_OUTPUT_CAP} bytes; read the file for the rest]` : diff;
      const changed = result.changed ?? false;
      const structured = { host: args.host, path: result.path ?? args.path, changed, written: changed && !args.dry_run && error === null, diff: shown };
      if (error !== null) return { structured, isError: true, text: error };
      const head = !changed ? `unchanged: ${structured.path} on ${args.host} already reads so` : `${args.dry_run ? 'would edit' : 'edited'} ${structured.path} on ${args.host}`;
      return { structured, text: changed ? `${head}\n${shown}` : head };
    },
  }),
  tool({
    name: 'list_directory',
    title: 'List a directory on a host',
    description: 'List a directory on a host (policy: list_directory on its resolved path): each entry\'s name, type, size, mode and modification time, by name.',
    input: z.strictObject({ host: HOST, path: PATH }),
    output: ListOutput,
    annotations: { readOnlyHint: true, openWorldHint: true },
    async call(args, deps, signal, tell) {
      const { result, error } = await fileAction(deps, { kind: 'file.list', host: args.host, path: args.path }, signal, tell);
      const entries = (result.entries ?? []).map((e) => ({ name: e.name, type: e.type, size: e.size, mode: (e.mode & 0o7777).toString(8).padStart(4, '0'), modified: new Date(e.mtimeMs).toISOString() }));
      const structured = { host: args.host, path: result.path ?? args.path, entries, truncated: result.truncated };
      if (error !== null) return { structured, isError: true, text: error };
      const lines = entries.map((e) => `${e.type === 'directory' ? 'dir ' : e.type === 'symlink' ? 'link' : e.type === 'file' ? 'file' : '?   '}\t${e.size}\t${e.name}`);
      // No listing shows the rest (none takes an offset): say which entries these are and what else finds one.
      const more = `\n[remux: the first ${entries.length} entries by name; the directory holds more, which no listing shows: list a subdirectory, or look for a name with run_command (find ${structured.path} -maxdepth 1 -name PATTERN)]`;
      return { structured, text: (lines.join('\n') || '(empty)') + (result.truncated ? more : '') };
    },
  }),
];

/** Code Remote's tool names, so prompts and clients written for it work unchanged. */
export const ALIASES: readonly Alias[] = [
  alias({
    name: 'run_shell_command',
    of: 'run_command',
    description: 'Same as run_command, with Code Remote\'s argument names (machine, command, working_dir, timeout).',
    input: z.strictObject({
      machine: HOST,
      command: RunInput.shape.command,
      working_dir: RunInput.shape.cwd,
      timeout: RunInput.shape.timeout_s,
    }),
    toTarget: (a) => ({ host: a.machine, command: a.command, ...(a.working_dir !== undefined ? { cwd: a.working_dir } : {}), ...(a.timeout !== undefined ? { timeout_s: a.timeout } : {}) }),
  }),
  alias({
    name: 'check_agent_status',
    of: 'list_hosts',
    description: 'Same as list_hosts (Code Remote\'s name).',
    input: z.strictObject({}),
    toTarget: () => ({}),
  }),
];

export function toolResult(reply: Reply<unknown>): CallToolResult {
  return {
    content: [{ type: 'text', text: reply.text }],
    structuredContent: reply.structured as Record<string, unknown>,
    ...(reply.isError ? { isError: true } : {}),
  };
}
