// WebSocket close reasons (the relay's, the console terminal's) are limited to 123 bytes by the protocol
// (RFC 6455 5.5: a control frame's 125 bytes, 2 of them the code), and `ws` throws on a longer one: in an
// event handler that is an uncaught exception. A reason cut to fit reads as another one (a name cut short, a
// character cut in half), so one too long is replaced whole by a shorter wording its caller gives.

export const MAX_CLOSE_REASON_BYTES = 123;

/** `reason` when it fits whole, else `shorter` (a wording of the caller's that fits; cut on a character boundary if it does not). */
export function closeReason(reason: string, shorter: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  let short = shorter;
  while (Buffer.byteLength(short) > MAX_CLOSE_REASON_BYTES) short = Array.from(short).slice(0, -1).join('');
  return short;
}
