// The approvals service: asking a person (an approval, announced on every notification channel with
// its decision links) and recording every answer in the audit trail as the answerer's own action.
// Used by perform()'s approver wherever no terminal can ask (the daemon, the API, MCP) and by every
// place that answers (CLI, console, decision links).
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { redactText } from '../audit/redact.js';
import type { AuditStore } from '../audit/store.js';
import type { Config } from '../config/config.js';
import { processAlive } from '../core/process.js';
import { approvalText, type ApprovalAnswer, type ApprovalSubject, type Principal } from '../core/types.js';
import type { Decision } from '../policy/types.js';
import { approvalsDbFile, approvalsKeyFile, consoleUrlFile } from '../config/paths.js';
import { isLoopback, parseListen } from '../gateway/http/listen.js';
import { ApprovalError, ApprovalStore, HEARTBEAT_MS, Withdrawal, type Approval, type ApprovalOutcome, type AskRequest, type Orphan } from './approvals.js';
import { channelName, notifyAll, takes, type Delivery, type Notification, type NotificationAction } from './channels.js';
import { FloodGate } from './flood.js';
import { answererWords } from '../audit/json.js';

/** A message over the flood limit: not sent; a later one says how many were held. */
const HELD = 'held: over the notify.flood limit (one message will say how many)';

export interface ApprovalsOptions {
  env: NodeJS.ProcessEnv;
  config: Config;
  audit: AuditStore;
  /** This process in words, for the reason its questions are withdrawn with should it end without settling them. */
  asker?: string;
  /**
   * notify as config.yaml says it now, read for each message: a long-lived asker other than the daemon (an
   * agent session's supervisor) would otherwise keep sending to a channel taken out of config.yaml, its
   * buttons answering, until the session ends. notify.flood stays as it was. Default: config.notify.
   */
  notify?: () => Config['notify'];
}

/** What the waiting caller is told while it waits. */
export interface Waiting {
  approval: Approval;
  deliveries: Delivery[];
}

export class Approvals {
  private opened: ApprovalStore | null = null;
  /** The console's URL while this process (the daemon) serves it. */
  private servedUrl: string | null = null;
  private readonly gate: FloodGate;

  constructor(private readonly opts: ApprovalsOptions) {
    this.gate = new FloodGate(
      opts.config.notify.flood,
      (n) => notifyAll(this.notifySettings.channels, n),
      (sender, count) => ({
        title: `${count} more message${count === 1 ? '' : 's'} from ${sender} held`,
        message: `${sender} sent more than notify.flood allows: ${count === 1 ? 'its message was' : 'they were'} not sent. Its questions wait in the console and in \`remux approvals ls\`.`,
        priority: 'high',
        event: 'notification.held',
        ...(this.baseUrl() === null ? {} : { url: new URL('/#/approvals', this.baseUrl() as string).href }),
      }),
    );
  }

  /** Opened on first use: a CLI that never asks never creates approvals.db. */
  get store(): ApprovalStore {
    return (this.opened ??= ApprovalStore.open(approvalsDbFile(this.opts.env), approvalsKeyFile(this.opts.env)));
  }

  close(): void {
    this.gate.close();
    this.opened?.close();
    this.opened = null;
  }

  get timeoutMs(): number {
    return this.opts.config.approvals.timeout_seconds * 1000;
  }

  /**
   * Puts the question to a person and waits for the answer, the deadline, or `signal` (which withdraws
   * it; aborted with a Withdrawal, saying why, audited as `approval.withdraw`). `onWaiting` hears the
   * approval once it exists and the channels were tried.
   */
  async ask({ attach, whenExpired, ...request }: AskRequest, signal?: AbortSignal, onWaiting?: (w: Waiting) => void): Promise<ApprovalOutcome> {
    const approval = this.store.create({ ...request, ttlMs: this.timeoutMs }, this.asker);
    const waiting = this.store.wait(approval.id, signal);
    const actions = this.actions(approval);
    // Nothing to link to (no console served, no notify.base_url): the message says where it can be answered.
    const unlinked = actions.length > 0 ? '' : `\nNo links (no console is served and notify.base_url is unset): answer on this machine with ${cliAnswer(approval)}`;
    const message: Notification = {
      title: `Approval needed${approval.host ? ` on ${approval.host}` : ''}`,
      sequence: approval.id,
      message: `${approval.principal} wants to ${approval.what}\n${approval.reason}\nFrom ${approval.from}${unlinked}`,
      priority: 'high',
      event: 'approval.requested',
      ...(this.pageUrl(approval) ? { url: this.pageUrl(approval) as string } : {}),
      ...(attach ? { attach } : {}),
      actions,
    };
    const channels = this.notifySettings.channels.filter((c) => takes(c, message.priority));
    const deliveries = await this.notify(approval.principal, message);
    if (actions.length > 0 && deliveries.some((d) => d.error !== HELD)) this.store.sentThrough(approval.id, channels.map(channelName));
    onWaiting?.({ approval, deliveries });
    const outcome = await this.ending(approval, waiting, whenExpired);
    if (outcome.status === 'cancelled' && signal?.reason instanceof Withdrawal) await this.auditWithdrawal(this.store.get(approval.id) ?? approval, approval.principal);
    return outcome;
  }

  /** A withdrawal as `by`'s action in the audit trail. */
  private async auditWithdrawal(approval: Approval, by: string): Promise<void> {
    await this.opts.audit.record(
      { principal: by, host: approval.host ?? '-', operation: 'approval.withdraw', resource: approval.id, decision: 'deny', reason: `withdrawn for ${approval.principal} (${approval.what}): ${approval.why}` },
      { exitCode: 0, durationMs: 0 },
    );
  }

  /**
   * Waits for the end of approval `id`, asked by another process that handed it over (the daemon before
   * its restart), as ask() would have: `signal` withdraws it; one no longer open ends at once.
   */
  async resume(id: string, signal?: AbortSignal): Promise<ApprovalOutcome> {
    const approval = this.store.get(id);
    if (approval === null) return { status: 'cancelled' };
    return this.ending(approval, this.store.wait(id, signal));
  }

  /** This process takes over waiting for approval `id`, asked by the daemon before: no orphan of that one's. */
  claim(id: string): void {
    this.store.claim(id, this.asker);
  }

  /**
   * Withdraws every open approval whose asker ended without settling it (a crash): answered, it would
   * reach nobody. Each is audited as `by`'s action and its message replaced by one saying why, as a
   * withdrawal by its asker would be. Returns them.
   */
  async withdrawOrphans(by: string): Promise<Approval[]> {
    // All withdrawn at once, before anything is awaited: the daemon's agent watcher, which looks at the
    // screens meanwhile, never takes a hook's question about to be withdrawn for a prompt's.
    const withdrawn = this.store.orphans().flatMap((orphan) => {
      const why = orphanWhy(orphan);
      // Not withdrawn: settled meanwhile.
      return this.store.cancel(orphan.approval.id, why) ? [{ ...orphan.approval, status: 'cancelled' as const, why }] : [];
    });
    for (const approval of withdrawn) {
      await this.auditWithdrawal(approval, by);
      await this.replaceAsked(approval, 'cancelled', this.pageUrl(approval) ?? undefined);
    }
    return withdrawn;
  }

  private get notifySettings(): Config['notify'] {
    return this.opts.notify?.() ?? this.opts.config.notify;
  }

  private get asker(): string {
    return this.opts.asker ?? `remux (pid ${process.pid})`;
  }

  private async ending(approval: Approval, waiting: Promise<ApprovalOutcome>, whenExpired?: string): Promise<ApprovalOutcome> {
    const outcome = await waiting;
    // Withdrawn: with the reason it was withdrawn with, if any.
    if (outcome.status === 'cancelled') approval = this.store.get(approval.id) ?? approval;
    // Unanswered, its buttons on a phone would answer nothing (409), its `remux approvals` line neither: ntfy
    // replaces the notification with how it ended, the one message that says so (an agent's hook says nothing
    // more). An answered one is left: the button that answered cleared it, and a replacement would bring it back.
    if (outcome.status !== 'answered') await this.replaceAsked(approval, outcome.status, this.pageUrl(approval) ?? undefined, whenExpired);
    return outcome;
  }

  private async replaceAsked(approval: Approval, status: 'expired' | 'cancelled', url: string | undefined, whenExpired = 'not allowed, nothing was done on its behalf'): Promise<void> {
    const ended =
      status === 'expired'
        ? `No answer within ${Math.round(this.timeoutMs / 1000)} s: ${whenExpired}.`
        : approval.why !== null
          ? `Withdrawn: ${approval.why}.`
          : 'Withdrawn before an answer: answered where it was asked (an agent\'s terminal), or whoever asked stopped waiting.';
    await notifyAll(this.notifySettings.channels, {
      title: `Approval ${status === 'expired' ? 'expired' : 'withdrawn'}${approval.host ? ` on ${approval.host}` : ''}`,
      message: `${approval.principal} wanted to ${approval.what}\n${ended}`,
      priority: 'low',
      event: `approval.${status}`,
      sequence: approval.id,
      replacement: true,
      ...(url ? { url } : {}),
    });
  }

  /** Sends `n` on every channel, within `sender`'s share of notify.flood; beyond it each channel's delivery says held. */
  async notify(sender: string, n: Notification): Promise<Delivery[]> {
    const { channels } = this.notifySettings;
    // One that no channel takes (below every min_priority) pages nobody: counted, it held the questions after it.
    if (!channels.some((c) => takes(c, n.priority))) return notifyAll(channels, n);
    const sent = await this.gate.pass(sender, n);
    return sent ?? channels.map((c) => ({ channel: channelName(c), ok: false, error: HELD }));
  }

  /**
   * Answers as an authenticated principal, audited as that principal's action. Only admins answer, and
   * never their own questions (an AI client holding a token must not approve itself) — except the local
   * user at the CLI, who owns every file remux reads anyway.
   */
  async answer(id: string, option: string, principal: Principal, via: string): Promise<Approval> {
    const approval = this.store.get(id);
    if (approval !== null) {
      if (!principal.scope.admin) throw new ApprovalError(`${principal.name} may not answer approvals (only admin principals may)`, 'forbidden');
      if (principal.via !== 'cli' && principal.name === approval.principal) throw new ApprovalError(`${principal.name} asked this question and may not answer it`, 'forbidden');
    }
    return this.audited(() => this.store.answer(id, option, { by: principal.name, via }), principal.name);
  }

  /** Answers through a decision link (its token is the credential), audited on behalf of the link. */
  async answerWithToken(id: string, option: string, token: string, via: string): Promise<Approval> {
    return this.audited(() => this.store.answerWithToken(id, option, token, via), null);
  }

  /** One link per option; each leads to its confirm page, and ntfy can also POST the answer in place. */
  actions(approval: Approval): NotificationAction[] {
    const base = this.baseUrl();
    if (base === null) return [];
    return approval.options.map((o) => {
      const token = this.store.token(approval, o.id);
      const page = new URL(`/approvals/${encodeURIComponent(approval.id)}`, base);
      page.searchParams.set('option', o.id);
      page.searchParams.set('token', token);
      return {
        label: o.label,
        effect: o.effect,
        confirmUrl: page.href,
        answer: { url: new URL(`/api/approvals/${encodeURIComponent(approval.id)}/answer`, base).href, body: JSON.stringify({ option: o.id, token }) },
      };
    });
  }

  private pageUrl(approval: Approval): string | null {
    const base = this.baseUrl();
    return base === null ? null : new URL(`/#/approvals?id=${encodeURIComponent(approval.id)}`, base).href;
  }

  /**
   * The daemon's web server tells where it serves the console (null: no longer). Links use it when
   * notify.base_url is unset, here and — through consoleUrlFile — in every other remux process that
   * asks (an agent session's supervisor serving Claude Code's hooks).
   */
  publishConsoleUrl(url: string | null): void {
    const file = consoleUrlFile(this.opts.env);
    this.servedUrl = url;
    if (url === null) {
      if (readPublished(file)?.pid === process.pid) rmSync(file, { force: true });
      return;
    }
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ url, pid: process.pid })}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  }

  private baseUrl(): string | null {
    return this.notifySettings.base_url ?? this.servedUrl ?? publishedConsoleUrl(this.opts.env);
  }

  private async audited(answer: () => Approval, by: string | null): Promise<Approval> {
    const approval = answer();
    const option = approval.options.find((o) => o.id === approval.answer);
    await this.opts.audit.record(
      {
        principal: by ?? 'link',
        host: approval.host ?? '-',
        operation: 'approval.answer',
        resource: approval.id,
        decision: option?.effect === 'allow' ? 'allow' : 'deny',
        reason: `answered "${option?.label ?? approval.answer}" ${by === null ? `by ${answererWords(approval.answeredBy ?? 'link', approval.answeredVia)}` : `via ${approval.answeredVia}`} for ${approval.principal}: ${approval.what}`,
      },
      { exitCode: 0, durationMs: 0 },
    );
    return approval;
  }
}

function readPublished(file: string): { url: string; pid: number } | null {
  try {
    const value = JSON.parse(readFileSync(file, 'utf8')) as { url?: unknown; pid?: unknown };
    return typeof value.url === 'string' && typeof value.pid === 'number' ? { url: value.url, pid: value.pid } : null;
  } catch {
    return null;
  }
}

/** The console URL the running daemon published; none when its daemon is gone (a crash leaves the file). */
function publishedConsoleUrl(env: NodeJS.ProcessEnv): string | null {
  const published = readPublished(consoleUrlFile(env));
  if (published === null || !processAlive(published.pid)) return null;
  return published.url;
}

/**
 * Why the links in notifications (an approval's answers, Open) will not open on a phone, or null. Every
 * channel carries them; without notify.base_url they lead to the console's own URL (the running
 * daemon's, else http.listen's), and a loopback address there is this machine's alone, a wildcard one
 * (0.0.0.0, ::) no machine's.
 */
export function unreachableLinks(config: Config, env: NodeJS.ProcessEnv): string | null {
  if (config.notify.base_url !== undefined || config.notify.channels.length === 0) return null;
  const served = publishedConsoleUrl(env);
  let host: string;
  try {
    host = served ? new URL(served).hostname.replace(/^\[(.*)\]$/, '$1') : parseListen(config.http.listen).host;
  } catch {
    return null; // a bad http.listen: the daemon refuses to start, saying so
  }
  const address = served ?? `${config.http.listen} (http.listen)`;
  const why = isLoopback(host) ? 'an address only this machine reaches' : host === '0.0.0.0' || host === '::' ? 'the wildcard it listens on, which names no machine' : null;
  if (why === null) return null;
  return (
    `the links in notifications (approve, deny, open) lead to the daemon's console at ${address}, ${why}: a phone cannot open them; ` +
    `set notify.base_url in config.yaml to the console's address as the phone reaches it (e.g. "base_url: https://remux.example.com:7777" under notify:)`
  );
}

/**
 * Why an orphan is withdrawn, for a person: who asked, when it stopped, and what becomes of the question.
 * An agent session's prompt is still the watcher's to ask about while it is on the screen.
 */
function orphanWhy({ approval, asker, pid, seen, otherBoot }: Orphan): string {
  // It was last seen waiting at `seen`, and marks that every HEARTBEAT_MS while it runs.
  const [day, from] = new Date(seen).toISOString().slice(0, 19).split('T') as [string, string];
  const to = new Date(seen + HEARTBEAT_MS).toISOString().slice(11, 19);
  // Principals agent:ID are agent sessions (agents/hooks.ts hookPrincipal), watched while they run.
  const then = approval.principal.startsWith('agent:') ? "the agent's prompt will be asked again if still on screen" : 'nothing was done on its behalf';
  if (!otherBoot) return `${asker} that asked stopped (crash between ${day} ${from} and ${to} UTC); ${then}`;
  // Another machine's or this one's before a restart: which, and how it ended, cannot be told from here.
  const who = /\(pid \d+\)/.test(asker) ? asker : `${asker} (pid ${pid})`;
  return `${who} that asked, on another boot (another machine sharing this REMUX_HOME, or this one before it restarted), has not been heard from since ${day} ${from} UTC; ${then}`;
}

/** The command that answers `a` at the CLI: approve or deny, or one of an agent prompt's own options. */
export function cliAnswer(a: Approval): string {
  const ids = a.options.map((o) => o.id);
  return ids.join(' ') === 'approve deny' ? `remux approvals approve ${a.id} (or deny)` : `remux approvals answer ${a.id} ${ids.join('|')}`;
}

/**
 * perform()'s approver for callers without a terminal to ask on: a policy `ask` becomes an approval;
 * the action runs only on an answer whose effect is allow. `tell` shows the waiting state.
 */
export function approvalsApprover(
  approvals: Approvals,
  principal: string,
  tell: (text: string, approval: Approval) => void,
  signal?: AbortSignal,
): (action: ApprovalSubject, decision: Decision) => Promise<ApprovalAnswer> {
  return async (action, decision) => {
    // The approval's id, for the action's audit record: onWaiting hears it once the approval exists.
    let id: string | undefined;
    // The question goes to push services and whoever holds a link: what it quotes is redacted, as in the audit trail.
    const outcome = await approvals.ask(
      { principal, host: action.host, what: `${approvalText(action, redactText)} on ${action.host}`, reason: decision.reason, source: `policy:${decision.policy}` },
      signal,
      ({ approval, deliveries }) => {
        id = approval.id;
        const sent = deliveries.filter((d) => d.ok && !d.skipped).map((d) => d.channel);
        const failed = deliveries.filter((d) => !d.ok).map((d) => `${d.channel} (${d.error})`);
        tell(
          `waiting for approval ${approval.id} (${Math.round(approvals.timeoutMs / 1000)} s): ${decision.reason}\n` +
            `  answer: ${cliAnswer(approval)}, or in the web console` +
            (sent.length > 0 ? `; sent to ${sent.join(', ')}` : '; no notification channel configured (notify.channels)') +
            (failed.length > 0 ? `\n  not delivered: ${failed.join('; ')}` : '') +
            (deliveries.some((d) => d.answer) ? ' (`remux notify test` shows what the service answered)' : '') +
            '\n',
          approval,
        );
      },
    );
    if (outcome.status !== 'answered') return { effect: outcome.status, approval: id };
    return { effect: outcome.option.effect === 'allow' ? 'allow' : 'deny', by: outcome.by, via: outcome.via, approval: id };
  };
}
