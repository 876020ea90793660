// How the HTTP API says no: a status and `{"error": code, "message": why}`.
import type { FastifyReply } from 'fastify';
import { rateLimitedMessage } from '../../hosts/rate-limit.js';

export function fail(reply: FastifyReply, status: number, error: string, message: string): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send({ error, message });
}

export function tooManyFailures(reply: FastifyReply, retryAfterMs: number): FastifyReply {
  const seconds = Math.ceil(retryAfterMs / 1000);
  reply.header('retry-after', String(seconds));
  return fail(reply, 429, 'locked_out', `too many failed token checks from this address; try again in ${seconds} s`);
}

export function tooManyLogins(reply: FastifyReply, retryAfterMs: number): FastifyReply {
  const seconds = Math.ceil(retryAfterMs / 1000);
  reply.header('retry-after', String(seconds));
  return fail(reply, 429, 'too_many_logins', `too many logins from this address or of this principal; try again in ${seconds} s (a script can send its token as Authorization: Bearer instead)`);
}

/** The principal's rate limit said no: 429, with when to retry. */
export function rateLimited(reply: FastifyReply, retryInMs: number): FastifyReply {
  reply.header('retry-after', String(Math.ceil(retryInMs / 1000)));
  return fail(reply, 429, 'rate_limited', rateLimitedMessage(retryInMs));
}

/**
 * An unreadable principals file admits nobody. Whoever asks is not authenticated (no token can be
 * checked), so the answer names nothing of the daemon's files: the daemon log and `remux daemon
 * status` say what is wrong, file:line, to the operator.
 */
export function principalsInvalid(reply: FastifyReply): FastifyReply {
  return fail(reply, 503, 'principals_invalid', "the server's configuration is invalid: nobody is admitted until it is fixed; ask its operator (remux daemon status says what is wrong)");
}

/** An Origin that is not allowed. Which origins are is the operator's to know (config.yaml), not whoever sent a forged one. */
export function forbiddenOrigin(reply: FastifyReply, origin: string): FastifyReply {
  return fail(reply, 403, 'forbidden_origin', `Origin ${origin} is not allowed (allowed: the daemon's own origin and those in http.origins, config.yaml)`);
}
