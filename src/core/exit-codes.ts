// Exit codes of `remux client run` and friends (ARCHITECTURE.md §3): the command's own status,
// otherwise one of these. Scripts and AI tools branch on them, so they never change.
export const EXIT = {
  OK: 0,
  /** A command failed, or a check found a problem (e.g. audit verify on a tampered store). */
  FAILURE: 1,
  /** Bad flags, bad arguments, or a command string the strict parser rejects. */
  USAGE: 2,
  /** Denied by policy, or an approval was refused or expired. */
  DENIED: 77,
  /** Rate limited (EX_TEMPFAIL): nothing ran; retry after the delay the message gives. */
  RATE_LIMITED: 75,
  /** Connection or transport error (as ssh does): the command could not be run on the host. */
  TRANSPORT: 255,
} as const;
