// Request bodies wait in the daemon's memory while they arrive (for up to http.request_timeout_seconds).
// Before any credential one is small (server.ts PUBLIC_BODY_LIMIT); after one, a route may take more (an
// MCP write_file: 25 MiB, /api/run: 256 KiB), and a principal could hold such bodies on as many
// connections as it opened: 300 MCP bodies of 1 MiB, each one byte short, held 320 MB of the daemon
// (1024 connections from each address). A principal's bodies arriving at once are bounded here in bytes,
// over the API and MCP alike: past the bound, 429 until one of them is answered.
import type { Socket } from 'node:net';
import { Transform, type Readable } from 'node:stream';

/** What one principal's bodies may hold at once: two of MCP's largest messages and room for the rest. */
export const BODY_BUDGET_BYTES = 64 << 20;

/** A body refused as it arrives: answered with `statusCode` and why, its connection closed (lingering). */
export class BodyRefused extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    /** The API's error code for it. */
    readonly code = statusCode === 429 ? 'too_busy' : 'too_large',
  ) {
    super(message);
  }
}

export class BodyBudget {
  private readonly held = new Map<string, number>();

  constructor(private readonly limit = BODY_BUDGET_BYTES) {}

  /**
   * One request's body counted against `principal`'s budget: take() each chunk's bytes before passing it
   * on (a BodyRefused once over the budget, else null). What it took is given back when `answered` closes
   * (the reply sent, or the connection gone).
   */
  open(principal: string, answered: { once(event: 'close', listener: () => void): unknown }): { take(bytes: number): BodyRefused | null } {
    let mine = 0;
    answered.once('close', () => {
      const left = (this.held.get(principal) ?? 0) - mine;
      mine = 0;
      if (left > 0) this.held.set(principal, left);
      else this.held.delete(principal);
    });
    return {
      take: (bytes) => {
        const now = this.held.get(principal) ?? 0;
        if (now + bytes > this.limit) {
          return new BodyRefused(429, `principal ${principal} already has ${Math.round(now / 2 ** 20)} MiB of request bodies arriving (its limit is ${this.limit >> 20} MiB): send this one once they are answered`);
        }
        this.held.set(principal, now + bytes);
        mine += bytes;
        return null;
      },
    };
  }

  /** `payload` as it arrives, each chunk taken from `principal`'s budget (see open); the stream fails with the refusal. */
  counted(principal: string, payload: Readable, answered: { once(event: 'close', listener: () => void): unknown }): Readable {
    const body = this.open(principal, answered);
    return payload.pipe(
      new Transform({
        transform: (chunk: Buffer, _encoding, done) => {
          const refused = body.take(chunk.length);
          if (refused) done(refused);
          else done(null, chunk);
        },
      }),
    );
  }
}

/** How long a connection whose body was refused unread stays open after its answer. */
const LINGER_MS = 2000;

/**
 * A connection closed on a body refused unread keeps its answer: the client is still sending, and a
 * socket closed while data arrives answers it with a reset, which can discard the answer in the
 * client's buffers before it reads it (the case for an HTTP server's lingering close). Node ends such
 * a connection with destroySoon once the answer is written: here our side ends (FIN) then, and the
 * socket is destroyed LINGER_MS later. What still comes is not read: the connection stops taking it
 * once its buffers are full.
 */
export function lingerOnClose(socket: Socket): void {
  socket.destroySoon = function lingering(this: Socket): void {
    this.end();
    setTimeout(() => this.destroy(), LINGER_MS).unref();
  };
}
