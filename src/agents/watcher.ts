// The watcher: reads the panes of agent sessions on local tmux servers, tells their state
// (permission, waiting, working, rate limited, idle), turns a new permission prompt into an approval,
// and types the chosen option's keys once it is answered — only while that same prompt is still on the
// screen, so an answer never lands in another prompt. A prompt answered at the terminal withdraws its
// approval; an approval that expires types nothing (the prompt stays for the person at the terminal).
//
// A session whose agent asks through its own hook (Claude Code's PermissionRequest, answered by remux:
// hooks.ts) gets one approval per prompt, the hook's: the watcher leaves a prompt to the hook's approval
// when the hook asked for it, and stays out for as long as that prompt is on the screen (also once the
// hook's approval expired: the prompt is the terminal's then); answered at the terminal, it withdraws
// the hook's approval as it would its own. Only a prompt the hook has not asked about within
// HOOK_GRACE_MS (a dialog no hook covers, a hook that failed) gets the watcher's approval, withdrawn
// should the hook ask after all.
//
// A daemon that stops hands its open questions over (stop(true)) instead of withdrawing them: the next
// one takes each over (inherit) if its prompt is still on its session's screen — an answer given
// meanwhile (`remux approvals answer` needs no daemon) is typed then — and withdraws it if not. One
// that crashed handed nothing over: the next daemon withdraws its own questions (their asker is gone,
// notify/approvals.ts orphans) and asks again about a prompt still on screen, and follows a hook's
// question still open, whose hook still waits.
//
// Cost: each tick is one tmux run per server (most often one) listing every pane (id and last-output time), which also captures
// the panes that were busy last tick; panes that turn out to have new output besides are captured in
// one more run. Output in the same second as the last capture cannot be told apart by the activity
// time (whole seconds), so a pane stays "hot" and is captured every tick until that time is two
// seconds old.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { TmuxSocket } from '../hosts/inventory.js';
import { HANDED_OVER, type ApprovalOutcome, type Approval, type AskRequest } from '../notify/approvals.js';
import { tmuxArgv, type SendItem } from '../sessions/tmux.js';
import { detect, type AgentProfile, type AgentState, type Detection, type Prompt } from './profiles.js';

export const DEFAULT_INTERVAL_MS = 500;
const HOT_SECONDS = 2;
const TMUX_TIMEOUT_MS = 5_000;
/** How long a hooked session's prompt waits for its hook's approval before the watcher asks itself. */
export const HOOK_GRACE_MS = 5_000;
/** Claude Code starts the hook as it draws the dialog: the hook's approval may predate the watcher's first look by this much. */
const HOOK_SLACK_MS = 2_000;

export interface WatchedSession {
  /** The tmux session the agent runs in. */
  session: string;
  agent: AgentProfile;
  /** Who the approval says asked: the agent session's owner or name. */
  principal: string;
  /** The command that attaches to the session, which messages carry. */
  attach?: string;
  /** The session as its approvals name it to a person (an agent session's name and ID); default: the tmux session. */
  title?: string;
  /**
   * Where its approvals say they come from (the console's "From"), for a person: the agent session's
   * name and what it runs. Never the hooks' source: hookLink tells their approvals apart by it.
   */
  source?: string;
  /** Set when the agent's own hook asks for its permission prompts. */
  hook?: HookLink;
  /** The tmux server it runs on, when not the watcher's: the one an agent session's record names. */
  socket?: TmuxSocket;
}

/** The approvals an agent's hook raised, as the watcher sees them. */
export interface HookLink {
  /** The oldest approval the hook created at or after `since` (ms), if any. */
  asked(since: number): { id: string; createdAt: number } | null;
  /** The newest approval of the hook's still open (its hook waits for it), if any. */
  waiting(): { id: string; createdAt: number } | null;
  /** Withdraws that approval if it still waits (its prompt was answered at the terminal). */
  withdraw(id: string): void;
}

/** What the watcher needs of the approvals service (src/notify/service.ts Approvals). */
export interface Asker {
  ask(request: AskRequest, signal?: AbortSignal, onWaiting?: (w: { approval: Approval }) => void): Promise<ApprovalOutcome>;
  /** Waits for an approval another watcher asked and handed over; `signal` withdraws it. */
  resume(id: string, signal?: AbortSignal): Promise<ApprovalOutcome>;
}

/** An open question a stopping watcher hands to the next one: its approval, and the prompt it is about. */
export interface HandedOver {
  session: string;
  fingerprint: string;
  approval: string;
  /** The approval is the agent's hook's (the watcher only follows it), created then. */
  hook?: { createdAt: number };
}

export interface WatcherOptions {
  /** The tmux server the agents run on unless their WatchedSession names one (null: the default one). */
  socket: TmuxSocket | null;
  approvals: Asker;
  intervalMs?: number;
  /** The host name approvals show. */
  host?: string;
  now?: () => number;
  /** HOOK_GRACE_MS unless told (tests). */
  hookGraceMs?: number;
}

export interface StateChange {
  session: string;
  state: AgentState;
  previous: AgentState | null;
  detection: Detection;
}

export interface WatcherEvents {
  state: [StateChange];
  /** An approval was created for a prompt. */
  asked: [{ session: string; approval: Approval; prompt: Prompt }];
  /** A prompt's approval taken over from the watcher of a daemon that stopped. */
  resumed: [{ session: string; approvalId: string; prompt: Prompt }];
  /** A prompt left to the approval the agent's hook created for it. */
  deferred: [{ session: string; approvalId: string; prompt: Prompt }];
  /** What became of it: keys typed, or why not. */
  settled: [{ session: string; prompt: Prompt; outcome: ApprovalOutcome; typed: boolean; why: string }];
  gone: [{ session: string }];
  error: [Error];
}

interface Pane {
  id: string;
  activity: number;
}

interface Tracked {
  watched: WatchedSession;
  pane: string | null;
  activity: number;
  screen: string | null;
  changedAt: number;
  state: AgentState | null;
  /**
   * The prompt on screen that has an approval: the watcher's own (abort withdraws it; `approval` once it
   * exists, `settled` once its outcome came), or its hook's.
   */
  open: { prompt: Prompt; abort: AbortController; approval?: string; settled?: boolean; hookApproval?: string } | null;
  /** A hooked session's prompt on screen: since when (its hook asks about then). */
  shown: { fingerprint: string; since: number } | null;
  /** Creation time of the last hook approval given to a prompt: each covers one prompt. */
  hookClaimed: number;
  /** The question a stopped watcher left open about this session, until this one first sees its screen. */
  inherited?: HandedOver;
}

export class Watcher extends EventEmitter<WatcherEvents> {
  private readonly sessions = new Map<string, Tracked>();
  private readonly intervalMs: number;
  private readonly now: () => number;
  /** Separates panes in one capture output; random so no screen can forge it. */
  private readonly marker = `remux-capture-${randomBytes(12).toString('hex')}`;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private ticking: Promise<void> | null = null;
  /** Answers being typed: a stop waits for them. */
  private readonly delivering = new Set<Promise<void>>();

  constructor(private readonly opts: WatcherOptions) {
    super();
    this.intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.now = opts.now ?? Date.now;
  }

  add(watched: WatchedSession): void {
    this.sessions.set(watched.session, { watched, pane: null, activity: -1, screen: null, changedAt: this.now(), state: null, open: null, shown: null, hookClaimed: -1 });
  }

  remove(session: string): void {
    const t = this.sessions.get(session);
    t?.open?.abort.abort();
    if (t?.inherited) this.drop(t.inherited, t.watched.hook);
    this.sessions.delete(session);
  }

  state(session: string): AgentState | null {
    return this.sessions.get(session)?.state ?? null;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const loop = (): void => {
      this.ticking = this.tick()
        .catch((err: unknown) => this.fail(err))
        .finally(() => {
          this.ticking = null;
          if (this.running) this.timer = setTimeout(loop, this.intervalMs);
        });
    };
    loop();
  }

  /**
   * Stops polling and withdraws every open approval of its own; with `handOver`, leaves those open
   * instead and returns them (and the hooks' ones it follows) for the next watcher to inherit.
   */
  async stop(handOver = false): Promise<HandedOver[]> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    if (!handOver) {
      for (const t of this.sessions.values()) t.open?.abort.abort();
      return [];
    }
    for (const t of this.sessions.values()) if (t.open?.approval !== undefined && !t.open.settled) t.open.abort.abort(HANDED_OVER);
    // An outcome that came before the waits stopped is this watcher's to type: let it, and every typing, finish.
    await new Promise((r) => setImmediate(r));
    await Promise.all(this.delivering);
    const left: HandedOver[] = [];
    for (const t of this.sessions.values()) {
      if (t.inherited) left.push(t.inherited); // not looked at yet: still the next one's to take over
      const open = t.open;
      if (open === null) continue;
      const { session } = t.watched;
      const { fingerprint } = open.prompt;
      if (open.hookApproval !== undefined) left.push({ session, fingerprint, approval: open.hookApproval, hook: { createdAt: t.hookClaimed } });
      else if (open.approval !== undefined && !open.settled) left.push({ session, fingerprint, approval: open.approval });
      else if (open.approval === undefined) open.abort.abort(); // still being sent: no ID to hand over
    }
    return left;
  }

  /**
   * Takes over what a stopped watcher handed over (call once its sessions are added): each question is
   * followed again if its prompt is still on the session's screen when this watcher first looks, else
   * withdrawn; those of sessions no longer watched are withdrawn now.
   */
  inherit(questions: readonly HandedOver[]): void {
    for (const q of questions) {
      const t = this.sessions.get(q.session);
      if (t && t.screen === null) t.inherited = q;
      else this.drop(q, t?.watched.hook);
    }
  }

  /** Withdraws a handed-over question whose prompt is gone. */
  private drop(q: HandedOver, hook: HookLink | undefined): void {
    if (q.hook) hook?.withdraw(q.approval);
    else this.opts.approvals.resume(q.approval, AbortSignal.abort()).catch((err: unknown) => this.fail(err));
  }

  /** One look at every watched pane (the loop calls it; tests and benches may too). */
  async tick(): Promise<void> {
    // Nothing watched (a daemon with no agent session): no tmux run, twice a second, for nothing.
    if (this.sessions.size === 0) return;
    // Pane IDs are a server's own: each server's sessions are looked at together, each server on its own.
    const servers = new Map<string, { server: TmuxSocket | null; sessions: Tracked[] }>();
    for (const t of this.sessions.values()) {
      const server = this.serverOf(t);
      const key = JSON.stringify(server);
      (servers.get(key) ?? servers.set(key, { server, sessions: [] }).get(key)!).sessions.push(t);
    }
    await Promise.all([...servers.values()].map(({ server, sessions }) => this.look(server, sessions).catch((err: unknown) => this.fail(err))));
  }

  private serverOf(t: Tracked): TmuxSocket | null {
    return t.watched.socket ?? this.opts.socket;
  }

  /** One look at the panes of `sessions`, all on `server`. */
  private async look(server: TmuxSocket | null, sessions: Tracked[]): Promise<void> {
    const nowSec = Math.floor(this.now() / 1000);
    // Panes that were hot last tick are captured in the same tmux run as the listing: a busy agent
    // costs no second process.
    const early = sessions.filter((t) => t.pane !== null && nowSec - t.activity < HOT_SECONDS);
    const { panes, screens: earlyScreens } = await this.listPanes(server, early.map((t) => t.pane as string));
    const captured = new Map(early.map((t, i) => [t, earlyScreens[i]]));
    const due: Tracked[] = [];
    for (const t of sessions) {
      const pane = panes.get(t.watched.session);
      if (!pane) {
        if (t.pane !== null) this.lose(t);
        if (t.inherited) this.takeOver(t, t.inherited, null);
        continue;
      }
      const changed = pane.id !== t.pane || pane.activity !== t.activity || nowSec - pane.activity < HOT_SECONDS || t.screen === null;
      const screen = pane.id === t.pane ? captured.get(t) : undefined;
      t.pane = pane.id;
      t.activity = pane.activity;
      if (screen !== undefined) this.judge(t, screen);
      else if (changed) due.push(t);
      else this.judge(t, t.screen as string); // unchanged: only time moves (idle)
    }
    if (due.length === 0) return;
    const screens = await this.capture(server, due.map((t) => t.pane as string));
    due.forEach((t, i) => this.judge(t, screens[i] ?? ''));
  }

  private judge(t: Tracked, screen: string): void {
    if (screen !== t.screen) {
      t.screen = screen;
      t.changedAt = this.now();
    }
    const detection = detect(t.watched.agent, screen);
    if ((detection.state === 'waiting' || detection.state === 'running') && this.now() - t.changedAt >= t.watched.agent.idleMs) detection.state = 'idle';
    if (detection.state !== t.state) {
      const previous = t.state;
      t.state = detection.state;
      this.emit('state', { session: t.watched.session, state: detection.state, previous, detection });
    }
    const prompt = detection.prompt ?? null;
    if (t.inherited) this.takeOver(t, t.inherited, prompt);
    if (t.open && t.open.prompt.fingerprint !== prompt?.fingerprint) {
      // Answered at the terminal, or replaced by another prompt: the question is moot.
      t.open.abort.abort();
      if (t.open.hookApproval !== undefined) t.watched.hook?.withdraw(t.open.hookApproval);
      t.open = null;
    }
    if (!prompt) t.shown = null;
    else if (t.watched.hook && t.open?.hookApproval === undefined) this.followHook(t, t.watched.hook, prompt);
    else if (!t.open) this.ask(t, prompt);
  }

  /** The question a stopped watcher left about `t`'s prompt: followed again if that prompt is on screen, else withdrawn. */
  private takeOver(t: Tracked, q: HandedOver, prompt: Prompt | null): void {
    delete t.inherited;
    if (prompt?.fingerprint !== q.fingerprint) return this.drop(q, t.watched.hook);
    const abort = new AbortController();
    if (q.hook) {
      t.shown = { fingerprint: prompt.fingerprint, since: this.now() };
      t.hookClaimed = q.hook.createdAt;
      t.open = { prompt, abort, hookApproval: q.approval };
      return;
    }
    t.open = { prompt, abort, approval: q.approval };
    this.emit('resumed', { session: t.watched.session, approvalId: q.approval, prompt });
    this.follow(t, t.open, this.opts.approvals.resume(q.approval, abort.signal));
  }

  /**
   * A hooked session's prompt is its hook's to ask about: the watcher asks only once the hook stayed
   * silent past the grace, and withdraws its own question should the hook ask after all.
   */
  private followHook(t: Tracked, hook: HookLink, prompt: Prompt): void {
    if (t.shown?.fingerprint !== prompt.fingerprint) t.shown = { fingerprint: prompt.fingerprint, since: this.now() };
    // A watcher that never followed one of the session's hook approvals (the daemon before it crashed and
    // handed nothing over) takes the one still open as the prompt's: the hook waits while its dialog shows.
    const asked = hook.asked(Math.max(t.shown.since - HOOK_SLACK_MS, t.hookClaimed + 1)) ?? (t.hookClaimed === -1 ? hook.waiting() : null);
    if (asked) {
      t.open?.abort.abort();
      t.hookClaimed = asked.createdAt;
      t.open = { prompt, abort: new AbortController(), hookApproval: asked.id };
      this.emit('deferred', { session: t.watched.session, approvalId: asked.id, prompt });
    } else if (!t.open && this.now() - t.shown.since >= (this.opts.hookGraceMs ?? HOOK_GRACE_MS)) {
      this.ask(t, prompt);
    }
  }

  private ask(t: Tracked, prompt: Prompt): void {
    const abort = new AbortController();
    const open: NonNullable<Tracked['open']> = { prompt, abort };
    t.open = open;
    const { watched } = t;
    const asking = this.opts.approvals.ask(
      {
        principal: watched.principal,
        host: this.opts.host ?? null,
        // A custom command's profile is named generic: no name to show a person.
        what: `answer ${watched.agent.name === 'generic' ? 'the agent' : watched.agent.name}'s prompt in ${watched.title ?? `session ${watched.session}`}: ${oneLine(prompt.question)}`,
        reason: prompt.question,
        source: watched.source ?? `the screen of tmux session ${watched.session}`,
        options: prompt.options.map(({ id, label, effect }) => ({ id, label, effect })),
        ...(watched.attach ? { attach: watched.attach } : {}),
      },
      abort.signal,
      ({ approval }) => {
        open.approval = approval.id;
        this.emit('asked', { session: watched.session, approval, prompt });
      },
    );
    this.follow(t, open, asking);
  }

  /** Types the answer `asking` brings, if it is one. t.open stays until the prompt leaves the screen: the same prompt is never asked twice. */
  private follow(t: Tracked, open: NonNullable<Tracked['open']>, asking: Promise<ApprovalOutcome>): void {
    const { prompt } = open;
    asking
      .then(async (outcome) => {
        open.settled = true;
        const delivering = this.deliver(t, prompt, outcome);
        const done = delivering.then(() => {}, () => {});
        this.delivering.add(done);
        try {
          this.emit('settled', { session: t.watched.session, prompt, outcome, ...(await delivering) });
        } finally {
          this.delivering.delete(done);
        }
      })
      .catch((err: unknown) => {
        this.fail(err);
      });
  }

  /**
   * Types the answer's keys if, looking again now, the same prompt is on the screen. The keys are the
   * ones for the screen as it is now (the cursor may have moved since the question was asked).
   */
  private async deliver(t: Tracked, prompt: Prompt, outcome: ApprovalOutcome): Promise<{ typed: boolean; why: string }> {
    if (outcome.status !== 'answered') return { typed: false, why: `approval ${outcome.status}: the prompt is left to the terminal` };
    if (t.pane === null || !this.sessions.has(t.watched.session)) return { typed: false, why: 'the session is gone' };
    const server = this.serverOf(t);
    const [screen] = await this.capture(server, [t.pane]);
    const now = detect(t.watched.agent, screen ?? '').prompt;
    if (now?.fingerprint !== prompt.fingerprint) return { typed: false, why: 'the prompt is no longer on the screen' };
    const option = now.options.find((o) => o.id === outcome.option.id);
    if (!option) return { typed: false, why: `answer "${outcome.option.id}" is not an option of the prompt` };
    const gap = t.watched.agent.keyGapMs;
    if (gap === 0) await this.tmux(server, sendKeysArgs(t.pane, option.keys));
    else {
      for (const [i, key] of option.keys.entries()) {
        if (i > 0) await new Promise((r) => setTimeout(r, gap));
        await this.tmux(server, sendKeysArgs(t.pane, [key]));
      }
    }
    return { typed: true, why: `typed option ${option.id} (${option.label})` };
  }

  /** A failed tick or answer: told to 'error' listeners; without one (emit would throw), to stderr. The loop goes on. */
  private fail(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else process.stderr.write(`remux watcher: ${error.message}\n`);
  }

  private lose(t: Tracked): void {
    t.open?.abort.abort();
    t.open = null;
    t.shown = null;
    t.pane = null;
    t.screen = null;
    t.state = null;
    this.emit('gone', { session: t.watched.session });
  }

  /**
   * The active pane of each session's active window, with its window's last output time; and in the
   * same tmux run the screens of `alsoCapture`. A pane among them that is gone fails the whole run:
   * then the listing alone.
   */
  private async listPanes(server: TmuxSocket | null, alsoCapture: string[]): Promise<{ panes: Map<string, Pane>; screens: string[] }> {
    const list = ['list-panes', '-a', '-F', '#{window_active}#{pane_active} #{pane_id} #{window_activity} #{session_name}', ';', 'display-message', '-p', this.marker];
    let parts: string[];
    try {
      parts = (await this.tmux(server, [...list, ...alsoCapture.flatMap((p) => this.captureArgs(p))])).split(`${this.marker}\n`);
    } catch (err) {
      if (/no server running|error connecting/.test((err as Error).message)) return { panes: new Map(), screens: [] };
      if (alsoCapture.length === 0) throw err;
      return { panes: (await this.listPanes(server, [])).panes, screens: [] };
    }
    const panes = new Map<string, Pane>();
    for (const line of (parts[0] ?? '').split('\n')) {
      const m = /^11 (%\d+) (\d+) (.*)$/.exec(line);
      if (m) panes.set(m[3]!, { id: m[1]!, activity: Number(m[2]) });
    }
    return { panes, screens: parts.slice(1, 1 + alsoCapture.length) };
  }

  private captureArgs(pane: string): string[] {
    return [';', 'capture-pane', '-p', '-J', '-t', pane, ';', 'display-message', '-p', this.marker];
  }

  /** The visible screens of `panes`, in one tmux invocation. */
  private async capture(server: TmuxSocket | null, panes: string[]): Promise<string[]> {
    const out = await this.tmux(server, panes.flatMap((p) => this.captureArgs(p)).slice(1));
    return out.split(`${this.marker}\n`).slice(0, panes.length);
  }

  private tmux(server: TmuxSocket | null, args: string[]): Promise<string> {
    const [cmd, ...rest] = tmuxArgv({ loginUser: '', user: '', socket: server }, args);
    return new Promise((resolve, reject) => {
      execFile(cmd!, rest, { encoding: 'utf8', timeout: TMUX_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`tmux ${args[0]}: ${stderr.trim() || err.message}`));
        else resolve(stdout);
      });
    });
  }
}

/** One tmux invocation typing `keys` into `pane`: text literally (-l), named keys by name. */
export function sendKeysArgs(pane: string, keys: readonly SendItem[]): string[] {
  return keys.flatMap((k, i) => [...(i > 0 ? [';'] : []), 'send-keys', '-t', pane, ...('key' in k ? [k.key] : ['-l', '--', k.text])]);
}

function oneLine(text: string): string {
  const line = text.split('\n').map((l) => l.trim()).filter((l) => l !== '').join(' · ');
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}
