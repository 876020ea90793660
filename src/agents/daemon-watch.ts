// The daemon watches every running agent session of `remux code`: their panes on the agents' tmux server
// (agents/watcher.ts), each with its agent's screen profile (a custom command gets the generic one). A
// permission prompt becomes an approval (console, phone, `remux approvals`), answered with the keys the
// prompt expects; the session's state (permission, waiting, working, rate_limited, idle) goes into its
// record, where `remux code status` shows it. Sessions started or ended while the daemon runs are picked
// up from the session store within a second. A session whose supervisor serves Claude Code's hooks asks
// for its permission prompts through them: the watcher leaves those prompts to the hooks' approvals.
// A daemon that stops leaves its open questions to the next one (promptHandoverFile): a question on a
// phone stays answerable across `remux daemon stop` and `start`, and is not asked a second time.
import { rmSync } from 'node:fs';
import { redactText } from '../audit/redact.js';
import { readPrivate, writeAtomic } from '../config/atomic-file.js';
import { promptHandoverFile } from '../config/paths.js';
import type { Approval } from '../notify/approvals.js';
import type { Approvals } from '../notify/service.js';
import { AGENT_HOST, attachCommand, hookPrincipal, PERMISSION_REQUEST_SOURCE, sessionTitle } from './hooks.js';
import { isAgentName, profile } from './profiles.js';
import { changeSessions, isOver, readSessions, type AgentSession } from './store.js';
import { newServer, placeSessions, serverOf } from './tmux.js';
import { Watcher, type HandedOver, type HookLink } from './watcher.js';

const SYNC_MS = 1000;

export interface AgentWatch {
  stop(): Promise<void>;
}

export function watchAgentSessions(approvals: Approvals, env: NodeJS.ProcessEnv, log: (line: string) => void): AgentWatch {
  const watcher = new Watcher({ socket: newServer(env), approvals, host: AGENT_HOST });
  /** The watched tmux sessions, with the socket path their record named then. */
  const watched = new Map<string, string | undefined>();
  const sync = (): void => {
    let sessions;
    try {
      sessions = readSessions(env);
      // Records from before socket paths were kept, found running on the daemon's own server, get its path
      // (written only then: a record whose session runs elsewhere is not rewritten every second).
      if (placeSessions(sessions, env) > 0) {
        sessions = changeSessions((all) => {
          placeSessions(all, env);
          return all;
        }, env);
      }
    } catch (err) {
      return log(`agent sessions: cannot read or update the session store: ${(err as Error).message}`);
    }
    // Watched once the supervisor has its sandbox up, on the server its record names (one from before paths
    // were kept that is not placed runs elsewhere); no longer once the session is over.
    const live = new Map(sessions.filter((s) => s.socket && s.state !== 'starting' && !isOver(s)).map((s) => [s.tmux, s]));
    for (const [tmux, s] of live) {
      if (watched.has(tmux) && watched.get(tmux) === s.socket) continue;
      // Restarted on another server (another TMUX_TMPDIR) since: watched there from now on.
      if (watched.has(tmux)) watcher.remove(tmux);
      watched.set(tmux, s.socket);
      log(`agent sessions: watching ${tmux} (${s.agent}${s.hooks ? ', prompts asked by its hooks' : ''})`);
      watcher.add({
        session: tmux,
        agent: profile(isAgentName(s.agent) ? s.agent : 'generic'),
        principal: hookPrincipal(s.id),
        attach: attachCommand(s.id),
        // As `remux code ls` shows it: its tmux session's name (agent-ID) is remux's own.
        title: sessionTitle(s.id, s.name),
        source: screenSource(s),
        ...(s.hooks ? { hook: hookLink(approvals, s.id) } : {}),
        // On the server it started on, whatever the daemon's own TMUX_TMPDIR.
        socket: serverOf(s, env),
      });
    }
    for (const tmux of watched.keys()) {
      if (live.has(tmux)) continue;
      watched.delete(tmux);
      watcher.remove(tmux);
    }
  };
  watcher.on('state', ({ session, state }) => {
    try {
      changeSessions((sessions) => {
        const s = sessions.find((x) => x.tmux === session);
        if (s && !isOver(s) && s.state !== 'starting') s.state = state;
      }, env);
    } catch (err) {
      log(`agent sessions: cannot record the state of ${session}: ${(err as Error).message}`);
    }
  });
  watcher.on('asked', ({ session, approval }) => log(`agent session ${session}: permission prompt, approval ${approval.id}`));
  watcher.on('resumed', ({ session, approvalId }) => log(`agent session ${session}: permission prompt, approval ${approvalId} taken over from the daemon before`));
  watcher.on('deferred', ({ session, approvalId }) => log(`agent session ${session}: permission prompt, asked by its hook (approval ${approvalId})`));
  watcher.on('error', (err) => log(`agent sessions: ${err.message}`));
  sync();
  watcher.inherit(takeHandover(approvals, env, log));
  const timer = setInterval(sync, SYNC_MS);
  timer.unref();
  watcher.start();
  return {
    async stop() {
      clearInterval(timer);
      const left = await watcher.stop(true);
      if (left.length === 0) return;
      try {
        writeAtomic(promptHandoverFile(env), `${JSON.stringify(left)}\n`);
        log(`agent sessions: ${left.length} open question(s) left to the next daemon`);
      } catch (err) {
        log(`agent sessions: cannot leave the open questions to the next daemon (they stay open until they expire): ${(err as Error).message}`);
      }
    },
  };
}

/** Far more than the questions any number of sessions leave open. */
const MAX_HANDOVER_BYTES = 4 << 20;

/**
 * What the daemon before this one left open (the file is removed: taken over once). Only questions asked
 * for the session they name: the watcher may type their answers there.
 */
function takeHandover(approvals: Approvals, env: NodeJS.ProcessEnv, log: (line: string) => void): HandedOver[] {
  const file = promptHandoverFile(env);
  let text: string;
  try {
    text = readPrivate(file, MAX_HANDOVER_BYTES);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    rmSync(file, { force: true });
    log(`agent sessions: ${file} ${code === 'ELOOP' ? 'is a symbolic link, not followed' : (err as Error).message}: ignored, removed; the questions of the daemon before are asked again`);
    return [];
  }
  rmSync(file, { force: true });
  let left: unknown;
  try {
    left = JSON.parse(text);
  } catch (err) {
    log(`agent sessions: ${file} is not what a stopping daemon writes: ${(err as Error).message}`);
    return [];
  }
  let sessions;
  try {
    sessions = readSessions(env);
  } catch {
    return []; // sync() says why
  }
  const principals = new Map(sessions.map((s) => [s.tmux, hookPrincipal(s.id)]));
  const asked = (q: Partial<HandedOver>): boolean => {
    const principal = principals.get(q.session ?? '');
    return principal !== undefined && typeof q.approval === 'string' && approvals.store.get(q.approval)?.principal === principal;
  };
  const taken = (Array.isArray(left) ? (left as Array<Partial<HandedOver>>) : []).filter((q): q is HandedOver => typeof q.fingerprint === 'string' && asked(q));
  // Waited for by this daemon from now on, before it first looks at their screens: no orphans of a crash.
  for (const q of taken) if (!q.hook) approvals.claim(q.approval);
  log(`agent sessions: taking over ${taken.length} open question(s) of the daemon before`);
  return taken;
}

/**
 * Where the watcher's approvals of session `s` come from, as the console shows it: its name and what it
 * runs (a custom command's profile name, generic, told a person nothing), secrets redacted as in its question.
 */
function screenSource(s: AgentSession): string {
  const runs = redactText(s.agent);
  return `the screen of agent session ${s.name}: ${runs.length > 120 ? `${runs.slice(0, 119)}…` : runs}`;
}

/** The PermissionRequest approvals of agent session `id`'s hooks, in the approvals store its supervisor shares. */
export function hookLink(approvals: Approvals, id: string): HookLink {
  const principal = hookPrincipal(id);
  const hooks = (all: boolean): Approval[] => approvals.store.list({ all }).filter((a) => a.principal === principal && a.source === PERMISSION_REQUEST_SOURCE);
  return {
    asked(since) {
      const oldest = hooks(true).filter((a) => a.createdAt >= since).at(-1);
      return oldest ? { id: oldest.id, createdAt: oldest.createdAt } : null;
    },
    waiting() {
      const newest = hooks(false)[0];
      return newest ? { id: newest.id, createdAt: newest.createdAt } : null;
    },
    withdraw(id) {
      approvals.store.cancel(id);
    },
  };
}
