// Notification channels: ntfy, Pushover, Slack, Discord and a generic JSON webhook. Each turns one
// Notification into the request its service documents; several are sent at once, each failure reported
// on its own. Decision links always lead to remux's confirm page (a GET there never changes anything);
// only ntfy can also answer in place, with an HTTP action that POSTs the option's token.
import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { REDACTED, redactText } from '../audit/redact.js';
import { showInvisible } from '../command/invisible.js';
import { post, type PostResult } from './http-post.js';

import type { Priority } from './priority.js';

export { PRIORITIES, type Priority } from './priority.js';

/** One answer of an approval, as a message shows it. */
export interface NotificationAction {
  label: string;
  /** What choosing it does: where not every option fits, one that denies is always kept. */
  effect: 'allow' | 'deny';
  /** The confirm page for this option (GET shows it; its button POSTs). */
  confirmUrl: string;
  /** Where a POST of `body` (JSON) answers at once: ntfy's HTTP action. */
  answer?: { url: string; body: string };
}

export interface Notification {
  title: string;
  message: string;
  priority: Priority;
  /** Where to look: the session in the console, or the approval. */
  url?: string;
  /** The command that attaches to the session from a terminal. */
  attach?: string;
  actions?: NotificationAction[];
  /** For the webhook's consumers: "notification", "approval.requested", … */
  event?: string;
  /**
   * ntfy's sequence ID (ntfy 2.16 and later): a later message with the same one replaces this notification
   * on the phone, buttons and all, instead of adding one. An approval's messages carry its ID.
   */
  sequence?: string;
  /**
   * Only the replacement of the notification with the same `sequence` (an approval's that ended unanswered,
   * whose buttons would answer nothing): sent on ntfy alone, on every ntfy channel whatever its min_priority
   * (the original went out at high priority); the other services cannot replace a message.
   */
  replacement?: boolean;
}

const PriorityMap = <T extends z.ZodType>(value: T) =>
  z.object({ low: value.optional(), normal: value.optional(), high: value.optional() }).strict().optional();

const common = {
  /** A name for messages and `notify test` output; default: the type. */
  name: z.string().min(1).optional(),
  /** Messages below this priority are not sent on this channel. */
  min_priority: z.enum(['low', 'normal', 'high']).default('low'),
  /** Send even when the URL resolves to a loopback, private or link-local address. */
  allow_internal: z.boolean().default(false),
};

export const ChannelSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('ntfy'),
      url: z.url().default('https://ntfy.sh'),
      topic: z.string().regex(/^[-_A-Za-z0-9]{1,64}$/, 'an ntfy topic is 1-64 letters, digits, - or _'),
      /** Access token (tk_…) for a protected topic. */
      token: z.string().min(1).optional(),
      /** ntfy priorities 1 (min) to 5 (max); defaults low 2, normal 3, high 5. */
      priority: PriorityMap(z.number().int().min(1).max(5)),
      ...common,
    })
    .strict(),
  z
    .object({
      type: z.literal('pushover'),
      url: z.url().default('https://api.pushover.net/1/messages.json'),
      token: z.string().min(1),
      user: z.string().min(1),
      /** Pushover priorities -2 to 1 (2 needs retry/expire); defaults low -1, normal 0, high 1. */
      priority: PriorityMap(z.number().int().min(-2).max(1)),
      ...common,
    })
    .strict(),
  z.object({ type: z.literal('slack'), webhook_url: z.url(), ...common }).strict(),
  z.object({ type: z.literal('discord'), webhook_url: z.url(), ...common }).strict(),
  z
    .object({
      type: z.literal('webhook'),
      url: z.url(),
      headers: z.record(z.string(), z.string()).default({}),
      /** When set, X-Remux-Signature: sha256=HMAC(secret, body) lets the receiver check the sender. */
      secret: z.string().min(16).optional(),
      ...common,
    })
    .strict(),
]);

export type ChannelConfig = z.infer<typeof ChannelSchema>;

export interface Delivery {
  channel: string;
  ok: boolean;
  /** The service's HTTP status, when it answered. */
  status?: number;
  /** Why it failed, in remux's words: never what the service answered (see `answer`). */
  error?: string;
  /**
   * The start of what the service answered a refused request with: for whoever set the channel up
   * (`notify test`, `notify send`), never for whoever asks a question. A service that echoes what it
   * was sent would show them the question's decision links, and they could answer it themselves.
   */
  answer?: string;
  /** Not sent: below the channel's min_priority. */
  skipped?: boolean;
}

interface Request {
  url: string;
  body: string;
  headers: Record<string, string>;
}

const JSON_TYPE = { 'content-type': 'application/json' };
const RANK: Record<Priority, number> = { low: 0, normal: 1, high: 2 };

export function channelName(channel: ChannelConfig): string {
  return channel.name ?? channel.type;
}

/** The request a channel's service expects for `n`. */
export function requestFor(channel: ChannelConfig, n: Notification): Request {
  switch (channel.type) {
    case 'ntfy':
      return ntfy(channel, n);
    case 'pushover':
      return pushover(channel, n);
    case 'slack':
      return { url: channel.webhook_url, headers: JSON_TYPE, body: JSON.stringify(slack(n)) };
    case 'discord':
      return { url: channel.webhook_url, headers: JSON_TYPE, body: JSON.stringify(discord(n)) };
    case 'webhook': {
      const body = JSON.stringify({
        event: n.event ?? 'notification',
        title: n.title,
        message: n.message,
        priority: n.priority,
        url: n.url ?? null,
        attach: n.attach ?? null,
        actions: (n.actions ?? []).map((a) => ({ label: a.label, url: a.confirmUrl })),
        sent_at: new Date().toISOString(),
      });
      const signature: Record<string, string> = channel.secret ? { 'x-remux-signature': `sha256=${createHmac('sha256', channel.secret).update(body).digest('hex')}` } : {};
      return { url: channel.url, headers: { ...channel.headers, ...JSON_TYPE, ...signature }, body };
    }
  }
}

/** Whether `channel` takes messages of `priority` (its min_priority). */
export function takes(channel: ChannelConfig, priority: Priority): boolean {
  return RANK[priority] >= RANK[channel.min_priority];
}

/**
 * What leaves for a service: the text with secrets redacted as the audit trail redacts them (the command
 * an approval is about, an agent's Bash command above all, may carry a token). An approval's message then
 * says so, and that its page hides the same: what is hidden is a secret's value, not what the action does.
 * Characters that would make the command look like another are named (showInvisible).
 */
function outgoing(n: Notification): Notification {
  const title = redactText(n.title);
  const message = redactText(n.message);
  const redacted = title !== n.title || message !== n.message;
  const note = redacted && n.actions?.length ? `\n(${REDACTED}: a secret's value, hidden here and on the approval's page as in the audit trail)` : '';
  const attach = n.attach === undefined ? {} : { attach: showInvisible(n.attach) };
  return { ...n, title: showInvisible(title), message: showInvisible(`${message}${note}`), ...attach };
}

/** Sends `n` on every channel at once, secrets redacted; never throws: each channel's outcome is in the result. */
export async function notifyAll(channels: readonly ChannelConfig[], sent: Notification, timeoutMs = 10_000): Promise<Delivery[]> {
  const n = outgoing(sent);
  return Promise.all(
    channels.map(async (channel): Promise<Delivery> => {
      const name = channelName(channel);
      if (n.replacement ? channel.type !== 'ntfy' : !takes(channel, n.priority)) return { channel: name, ok: true, skipped: true };
      let answer: PostResult;
      try {
        const request = requestFor(channel, n);
        answer = await post({ ...request, allowInternal: channel.allow_internal, timeoutMs });
      } catch (err) {
        return { channel: name, ok: false, error: (err as Error).message };
      }
      const ok = answer.status >= 200 && answer.status < 300;
      return ok ? { channel: name, ok, status: answer.status } : { channel: name, ok, status: answer.status, error: `HTTP ${answer.status}`, answer: answer.text.trim().slice(0, 200) };
    }),
  );
}

function bodyText(n: Notification): string {
  return n.attach ? `${n.message}\n\nattach: ${n.attach}` : n.message;
}

/**
 * The answers that fit in a service's `slots` buttons, in order. When not all fit, one whose effect is
 * deny is always among them (someone on a phone must be able to refuse), and `note` names every option.
 */
function fitActions(actions: readonly NotificationAction[], slots: number): { shown: NotificationAction[]; note: string | null } {
  if (actions.length <= slots) return { shown: [...actions], note: null };
  const first = actions.slice(0, slots);
  const deny = actions.find((a) => a.effect === 'deny');
  const shown = deny === undefined || first.includes(deny) ? first : [...actions.slice(0, slots - 1), deny];
  const hidden = actions.filter((a) => !shown.includes(a)).map((a) => a.label);
  return { shown, note: `Options: ${actions.map((a) => a.label).join(' · ')} (not a button here: ${hidden.join(' · ')}; open the approval to choose it)` };
}

// https://docs.ntfy.sh/publish/#publish-as-json: POST to the server's root, the topic in the body; at most 3 actions.
function ntfy(channel: Extract<ChannelConfig, { type: 'ntfy' }>, n: Notification): Request {
  const priority = { low: 2, normal: 3, high: 5, ...channel.priority }[n.priority];
  // ntfy shows at most 3 actions; "Open" takes one when there is a page.
  const { shown, note } = fitActions(n.actions ?? [], n.url ? 2 : 3);
  const actions: object[] = shown.map((a) =>
    a.answer
      ? { action: 'http', label: a.label, url: a.answer.url, method: 'POST', headers: JSON_TYPE, body: a.answer.body, clear: true }
      : { action: 'view', label: a.label, url: a.confirmUrl, clear: true },
  );
  if (n.url) actions.push({ action: 'view', label: 'Open', url: n.url });
  const payload = {
    topic: channel.topic,
    title: n.title,
    message: note ? `${bodyText(n)}\n\n${note}` : bodyText(n),
    priority,
    tags: n.priority === 'high' ? ['warning'] : [],
    ...(n.url ? { click: n.url } : {}),
    ...(actions.length > 0 ? { actions } : {}),
    ...(n.sequence ? { sequence_id: n.sequence } : {}),
  };
  const auth: Record<string, string> = channel.token ? { authorization: `Bearer ${channel.token}` } : {};
  return { url: channel.url, headers: { ...JSON_TYPE, ...auth }, body: JSON.stringify(payload) };
}

// https://pushover.net/api: form fields token, user, message, title, priority, url, url_title.
function pushover(channel: Extract<ChannelConfig, { type: 'pushover' }>, n: Notification): Request {
  const priority = { low: -1, normal: 0, high: 1, ...channel.priority }[n.priority];
  const links = (n.actions ?? []).map((a) => `${a.label}: ${a.confirmUrl}`).join('\n');
  const form = new URLSearchParams({
    token: channel.token,
    user: channel.user,
    title: n.title,
    message: links ? `${bodyText(n)}\n\n${links}` : bodyText(n),
    priority: String(priority),
  });
  if (n.url) {
    form.set('url', n.url);
    form.set('url_title', 'Open in remux');
  }
  return { url: channel.url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() };
}

// Slack incoming webhook (https://api.slack.com/messaging/webhooks): text as the fallback, Block Kit
// buttons that open the confirm pages (an incoming webhook cannot receive button callbacks).
function slack(n: Notification): object {
  // An actions block holds at most 5 elements; "Open" takes one when there is a page.
  const { shown, note } = fitActions(n.actions ?? [], n.url ? 4 : 5);
  const text = [n.attach ? `${escapeSlack(n.message)}\n\`${escapeSlack(n.attach)}\`` : escapeSlack(n.message), ...(note ? [escapeSlack(note)] : [])].join('\n\n');
  const buttons = [
    ...shown.map((a, i) => ({ type: 'button', text: { type: 'plain_text', text: a.label }, url: a.confirmUrl, ...(i === 0 ? { style: 'primary' } : {}) })),
    ...(n.url ? [{ type: 'button', text: { type: 'plain_text', text: 'Open' }, url: n.url }] : []),
  ];
  return {
    text: `${n.title}: ${n.message}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: n.title.slice(0, 150) } },
      { type: 'section', text: { type: 'mrkdwn', text } },
      ...(buttons.length > 0 ? [{ type: 'actions', elements: buttons }] : []),
    ],
  };
}

function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

// Discord webhook (https://discord.com/developers/docs/resources/webhook#execute-webhook): an embed with
// the links; no mentions are ever parsed out of the text.
function discord(n: Notification): object {
  const links = (n.actions ?? []).map((a) => `[${a.label}](${a.confirmUrl})`).join(' · ');
  const COLORS: Record<Priority, number> = { low: 0x8a8f98, normal: 0x3b82f6, high: 0xef4444 };
  return {
    content: n.title.slice(0, 2000),
    allowed_mentions: { parse: [] },
    embeds: [
      {
        title: n.title.slice(0, 256),
        description: [bodyText(n), links].filter(Boolean).join('\n\n').slice(0, 4096),
        color: COLORS[n.priority],
        ...(n.url ? { url: n.url } : {}),
      },
    ],
  };
}
