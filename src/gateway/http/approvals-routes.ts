// Approvals over HTTP.
//
// Decision links (public: the link's token is the credential, bound to one approval, one option and its
// expiry): GET /approvals/:id?option&token shows a confirm page and never changes anything; its button
// POSTs /api/approvals/:id/answer (a form), which is also what ntfy's HTTP action calls (JSON).
// Signed in (cookie or bearer, through the API's authentication): GET /api/approvals lists, GET /api/approvals/:id shows one,
// POST /api/approvals/:id {option} answers as the principal (admins only, never their own question).
import type { FastifyInstance, FastifyReply } from 'fastify';
import { utcCell } from '../../cli/output.js';
import { printable } from '../../command/invisible.js';
import type { GatewayContext } from '../../core/context.js';
import type { Principal } from '../../core/types.js';
import type { RateLimiter } from '../../hosts/rate-limit.js';
import { ApprovalError, type Approval } from '../../notify/approvals.js';
import { fail } from './errors.js';
import { admittedBy, principalOfRequest } from './routes.js';
import { howClosed } from '../../notify/closed.js';

const STATUS: Record<ApprovalError['code'], number> = { not_found: 404, conflict: 409, forbidden: 403, invalid: 400 };

const AnswerBody = {
  type: 'object',
  required: ['option'],
  additionalProperties: false,
  properties: { option: { type: 'string', maxLength: 32 }, token: { type: 'string', maxLength: 128 } },
} as const;

function refused(reply: FastifyReply, err: unknown): FastifyReply {
  if (!(err instanceof ApprovalError)) throw err;
  return fail(reply, STATUS[err.code], err.code, err.message);
}

export function registerApprovalLinks(app: FastifyInstance, ctx: GatewayContext): void {
  // The confirm page's form posts application/x-www-form-urlencoded.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  app.get<{ Params: { id: string }; Querystring: { option?: string; token?: string } }>('/approvals/:id', async (request, reply) => {
    const { option, token } = request.query;
    const approval = ctx.approvals.store.get(request.params.id);
    const valid = approval !== null && option !== undefined && token !== undefined && ctx.approvals.store.verifies(approval, option, token);
    if (!valid) return page(reply.code(403), 'Not a valid decision link', '<p>This link is not valid: it was changed, or it belongs to another remux.</p>');
    // Titled in one word: what is asked (a command of any length) is the first of the facts below.
    return page(reply, 'Approval', confirmBody(approval, option as string, token as string));
  });

  app.post<{ Params: { id: string }; Body: { option: string; token?: string } }>('/api/approvals/:id/answer', { schema: { body: AnswerBody } }, async (request, reply) => {
    const { option, token } = request.body;
    if (token === undefined) return fail(reply, 400, 'invalid', 'a decision link answers with its token; signed in, POST /api/approvals/ID instead');
    let answered: Approval;
    try {
      answered = await ctx.approvals.answerWithToken(request.params.id, option, token, request.headers['content-type']?.startsWith('application/json') ? 'ntfy' : 'link');
    } catch (err) {
      if (request.headers['content-type']?.startsWith('application/json')) return refused(reply, err);
      if (!(err instanceof ApprovalError)) throw err;
      return page(reply.code(STATUS[err.code]), 'Not answered', `<p>${escapeHtml(err.message)}</p>`);
    }
    if (request.headers['content-type']?.startsWith('application/json')) return { approval: answered };
    const label = answered.options.find((o) => o.id === answered.answer)?.label ?? answered.answer;
    return page(reply, 'Answered', `<p>You answered <strong>${escapeHtml(label ?? '')}</strong> to:</p>${summary(answered)}`);
  });
}

export function registerApprovalRoutes(api: FastifyInstance, ctx: GatewayContext, limiter: RateLimiter): void {
  api.get<{ Querystring: { all?: boolean } }>(
    '/api/approvals',
    { preHandler: admittedBy(ctx, limiter), schema: { querystring: { type: 'object', additionalProperties: false, properties: { all: { type: 'boolean' } } } } },
    async (request) => {
      const principal = principalOfRequest(request);
      const all = ctx.approvals.store.list({ all: request.query.all === true });
      return { approvals: all.filter((a) => visibleTo(principal, a)) };
    },
  );

  // One approval whatever its state: what a notification's link opens, still there once answered or expired.
  api.get<{ Params: { id: string } }>('/api/approvals/:id', { preHandler: admittedBy(ctx, limiter) }, async (request, reply) => {
    const approval = ctx.approvals.store.get(request.params.id);
    if (approval === null || !visibleTo(principalOfRequest(request), approval)) return fail(reply, 404, 'not_found', `no approval ${request.params.id}`);
    return { approval };
  });

  api.post<{ Params: { id: string }; Body: { option: string } }>(
    '/api/approvals/:id',
    { schema: { body: { ...AnswerBody, properties: { option: AnswerBody.properties.option } } } },
    async (request, reply) => {
      try {
        return { approval: await ctx.approvals.answer(request.params.id, request.body.option, principalOfRequest(request), 'web') };
      } catch (err) {
        return refused(reply, err);
      }
    },
  );
}

/** Admins answer approvals, so they see all; anyone else sees the questions asked for them. */
function visibleTo(principal: Principal, a: Approval): boolean {
  return principal.scope.admin || a.principal === principal.name;
}

/** The approval's facts, as the console's card shows them (table.facts: what and why keep their lines). */
function summary(a: Approval): string {
  const rows: Array<[string, string, string?]> = [
    ['What', printable(a.what), 'lines'],
    ['Asked by', a.principal],
    ['Host', a.host ?? '-'],
    ['Why', printable(a.reason), 'lines'],
    ['From', a.from],
    ['Expires', `${utcCell(a.expiresAt)} UTC`],
  ];
  return `<table class="facts">${rows.map(([k, v, cls]) => `<tr><th>${k}</th><td${cls ? ` class="${cls}"` : ''}>${escapeHtml(v)}</td></tr>`).join('')}</table>`;
}

function confirmBody(a: Approval, option: string, token: string): string {
  if (a.status !== 'pending') return `${summary(a)}<p>This approval is closed: ${escapeHtml(printable(howClosed(a)))}.</p>`;
  const chosen = a.options.find((o) => o.id === option);
  return (
    `${summary(a)}` +
    `<form class="decision" method="post" action="/api/approvals/${encodeURIComponent(a.id)}/answer">` +
    `<input type="hidden" name="option" value="${escapeHtml(option)}"><input type="hidden" name="token" value="${escapeHtml(token)}">` +
    `<button type="submit" class="${chosen?.effect === 'allow' ? '' : 'danger'}">${escapeHtml(chosen?.label ?? option)}</button>` +
    '</form><p class="muted">Nothing happens until you press the button.</p>'
  );
}

/** A whole page, styled by the console's stylesheet (same origin: the CSP allows it), no script. */
function page(reply: FastifyReply, title: string, body: string): FastifyReply {
  return reply
    .type('text/html; charset=utf-8')
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
        `<title>${escapeHtml(title)} · remux</title><link rel="stylesheet" href="/style.css"></head>` +
        `<body><header><h1>remux</h1></header><main><h2>${escapeHtml(title)}</h2>${body}</main></body></html>`,
    );
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
