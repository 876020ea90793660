// The local host: commands run on this machine with no SSH and no shell, through exec/local.ts.
import { homedir, userInfo } from 'node:os';
import { runLocal } from '../exec/local.js';
import fs from 'node:fs';
import { bwrapAvailable, sandboxLayout, visibleInside } from '../exec/sandbox.js';
import type { ExecResult } from '../exec/types.js';
import { createLocalResolver } from '../policy/resolve.js';
import type { Host, HostExecRequest } from './types.js';

export const LOCAL_HOST_NAMES = ['localhost', 'local'] as const;

export function isLocalHostName(name: string): boolean {
  return (LOCAL_HOST_NAMES as readonly string[]).includes(name);
}

/** Variables passed through from the caller; everything else (tokens, keys, agent sockets) stays out. */
export const PASSED_ENV = ['HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TERM'];

export function commandEnv(securePath: string, from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = { PATH: securePath };
  for (const name of PASSED_ENV) {
    const value = from[name];
    if (value !== undefined) env[name] = value;
  }
  env.HOME ??= homedir();
  env.USER ??= userInfo().username;
  return env;
}

export function createLocalHost(name: string, securePath: string): Host {
  const resolver = createLocalResolver({ securePath });
  const env = commandEnv(securePath);
  return {
    name,
    resolver,
    defaultCwd: (callerCwd, sandbox) => {
      const cwd = callerCwd ?? process.cwd();
      if (sandbox === null) return cwd;
      try {
        return visibleInside(sandboxLayout(sandbox), fs.realpathSync(cwd)) ? cwd : '/';
      } catch {
        return cwd; // unusable: the run says why
      }
    },
    execute(req: HostExecRequest): Promise<ExecResult> {
      return runLocal({ ...req, env });
    },
    sandboxSupport() {
      const bwrap = bwrapAvailable();
      const detail = bwrap.ok ? `bubblewrap ${bwrap.version ?? '(unknown version)'}` : (bwrap.reason ?? 'bubblewrap is not usable');
      return Promise.resolve({ available: bwrap.ok, detail, ...(bwrap.warning ? { warning: bwrap.warning } : {}), staticFallback: false });
    },
  };
}
