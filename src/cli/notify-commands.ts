// Implementations of `remux notify test|send` and `remux approvals ls|approve|deny|answer`.
import { loadConfig, type Config } from '../config/config.js';
import { AuthError, findByIdPrefix } from '../core/errors.js';
import type { Principal } from '../core/types.js';
import { ApprovalError, type Approval, type ApprovalStore } from '../notify/approvals.js';
import { howClosed } from '../notify/closed.js';
import { unreachableLinks, type Approvals } from '../notify/service.js';
import { notifyAll, PRIORITIES, type Delivery, type Notification, type Priority } from '../notify/channels.js';
import { printJson, printTable, UsageError, utcCell, visible } from './output.js';

/** Sends `n` on every channel, printing each outcome; the config it sent by. */
async function send(n: Notification, json: boolean | undefined): Promise<Config> {
  const { config, file } = loadConfig();
  if (config.notify.channels.length === 0) {
    throw new UsageError(`no notification channels are configured${file ? ` in ${file}` : ''}`, 'add one under notify.channels in config.yaml (remux config init writes examples), then run remux notify test');
  }
  const results = await notifyAll(config.notify.channels, n);
  if (json) printJson(results);
  else for (const d of results) process.stdout.write(`${describe(d)}\n`);
  if (results.some((d) => !d.ok)) process.exitCode = 1;
  return config;
}

function describe(d: Delivery): string {
  if (d.skipped) return `${d.channel}: skipped (below its min_priority)`;
  if (d.ok) return `${d.channel}: delivered (HTTP ${d.status})`;
  return `${d.channel}: FAILED: ${d.error}${d.answer ? `: ${d.answer}` : ''}`;
}

export async function notifyTestCommand(opts: { json?: boolean }): Promise<void> {
  const config = await send({ title: 'remux test notification', message: 'If you read this, remux can reach you on this channel.', priority: 'high', event: 'test' }, opts.json);
  // The test message carries no links; an approval's will, and reaching the phone is not enough then.
  const unreachable = unreachableLinks(config, process.env);
  if (unreachable) process.stderr.write(`warning: ${unreachable}\n`);
}

export async function notifySendCommand(opts: { title: string; message: string; priority: string; url?: string; json?: boolean }): Promise<void> {
  if (!PRIORITIES.includes(opts.priority as Priority)) throw new UsageError(`--priority must be one of ${PRIORITIES.join(', ')}, got "${opts.priority}"`);
  if (opts.url !== undefined && !URL.canParse(opts.url)) throw new UsageError(`--url is not a URL: "${opts.url}"`);
  // An empty message reaches a phone as a blank notification (ntfy shows "triggered").
  for (const [flag, text] of [['--title', opts.title], ['--message', opts.message]] as const) {
    if (text.trim() === '') throw new UsageError(`${flag} is empty: say what the message is about`);
  }
  await send({ title: opts.title, message: opts.message, priority: opts.priority as Priority, ...(opts.url ? { url: opts.url } : {}) }, opts.json);
}

/** The approvals as the CLI's principal sees them (the local user, or REMUX_TOKEN's principal). */
async function withApprovals<T>(work: (approvals: Approvals, principal: Principal) => Promise<T> | T): Promise<T> {
  const { contextFor, createContext } = await import('../core/context.js');
  // Listing and answering need no policy: an agent session's prompts are asked before `remux config init` wrote any.
  const base = createContext({ policiesWhenNeeded: true });
  try {
    const ctx = contextFor(base, process.env);
    return await work(ctx.approvals, ctx.principal);
  } finally {
    await base.close();
  }
}

export function listApprovalsCommand(opts: { all?: boolean; json?: boolean }): Promise<void> {
  return withApprovals(({ store }) => {
    const approvals = store.list({ all: opts.all === true });
    if (opts.json) return printJson(approvals);
    if (approvals.length === 0) {
      process.stdout.write(opts.all ? 'no approvals\n' : 'no open approvals (remux approvals ls --all shows answered ones)\n');
      return;
    }
    printTable(
      ['ID', 'STATUS', 'ASKED BY', 'FROM', 'HOST', 'WHAT', 'OPTIONS', 'EXPIRES (UTC)'],
      // A closed one in the console's words (howClosed): withdrawn, not `cancelled`.
      approvals.map((a) => [a.id, a.status === 'pending' ? 'pending' : howClosed(a), a.principal, a.from, a.host, a.what, a.options.map((o) => `${o.id}=${o.label}`).join(' '), utcCell(a.expiresAt)]),
    );
  });
}

/** Answers approval `idPrefix` as the CLI's principal: with `option`, or the first option of `effect`. */
export function answerApprovalCommand(idPrefix: string, choice: { option: string } | { effect: 'allow' | 'deny' }): Promise<void> {
  return withApprovals(async (approvals, principal) => {
    try {
      const approval = findOpen(approvals.store, idPrefix);
      const option = 'option' in choice ? choice.option : optionOf(approval, choice.effect);
      const answered = await approvals.answer(approval.id, option, principal, 'cli');
      const label = answered.options.find((o) => o.id === option)?.label ?? option;
      process.stdout.write(`${answered.id}: answered "${label}" (${visible(answered.what)})\n`);
    } catch (err) {
      if (!(err instanceof ApprovalError)) throw err;
      if (err.code === 'forbidden') throw new AuthError(err.message, 'an admin principal answers, or the local user without REMUX_TOKEN');
      throw new UsageError(err.message, 'see the open ones with remux approvals ls');
    }
  });
}

/** `approve` / `deny` when the approval has them, else its first option with that effect. */
function optionOf(approval: Approval, effect: 'allow' | 'deny'): string {
  const named = approval.options.find((o) => o.id === (effect === 'allow' ? 'approve' : 'deny'));
  const option = named ?? approval.options.find((o) => o.effect === effect);
  if (option) return option.id;
  throw new UsageError(`approval ${approval.id} has no option that ${effect === 'allow' ? 'allows' : 'denies'}`, `choose one with remux approvals answer ${approval.id} OPTION (${approval.options.map((o) => o.id).join(', ')})`);
}

/**
 * The approval an ID or its first characters name. Closed ones keep their IDs, so a prefix is looked for
 * among the open ones first (the ones `approvals ls` shows): one that also starts closed ones' IDs still
 * names the open one; a closed one is found only to say why it cannot be answered.
 */
function findOpen(store: ApprovalStore, prefix: string): Approval {
  if (prefix === '') throw new UsageError('no approval ID given', 'see the open ones with remux approvals ls');
  const words = { missing: `no approval ${prefix}`, hint: 'see the open ones with remux approvals ls', plural: 'approvals' };
  const open = store.list({ limit: 1000 }).filter((a) => a.id.startsWith(prefix));
  return store.get(prefix) ?? findByIdPrefix(open.length > 0 ? open : store.list({ all: true, limit: 1000 }), prefix, words);
}
