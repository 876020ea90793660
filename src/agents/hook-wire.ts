// What a hook call and the session's endpoint (hook-endpoint.ts) agree on: names, header, and where the
// token and socket are in the session's hook directory. Kept apart from the endpoint so the hook client
// (hook-client.ts, and the standalone hook.cjs a Docker container runs) carries nothing else.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The name the sandbox's proxy routes to the endpoint (.invalid: it can never be a real host). */
export const HOOK_HOST = 'remux-hook.invalid';
export const HOOK_PATH = '/hook';
/** Set in the agent's environment: where the hook finds the token (and, outside srt, the socket). */
export const HOOK_DIR_ENV = 'REMUX_HOOK_DIR';
export const SESSION_HEADER = 'x-remux-session';

export const tokenFileOf = (dir: string): string => join(dir, 'token');
/** The endpoint's socket in `dir`. Named anew by each supervisor: closing a unix socket server unlinks its path, which must never be the next supervisor's (a restart). */
export function socketOf(dir: string): string {
  const name = readdirSync(dir).find((f) => /^hook-[0-9a-f]{16}\.sock$/.test(f));
  if (name === undefined) throw new Error(`no hook endpoint socket in ${dir} (has the session's supervisor ended?)`);
  return join(dir, name);
}
