// A terminal the gateway asks the agent for: only a tmux attach in the exact shape the session layer makes,
// or the session recorder's read-only control client (remux's own argv, never a user string; the policy
// engine refuses tmux as a program), as a tmux user this machine lists, audited here in perform()'s order:
// check, audit begin, run, audit end.
import { performance } from 'node:perf_hooks';
import { quoteWord } from '../command/render.js';
import type { GatewayContext } from '../core/context.js';
import { EXIT } from '../core/exit-codes.js';
import { errorText, refuse, type Asked } from '../core/perform.js';
import type { HostTerminal, TerminalSize } from '../hosts/types.js';
import { screenCommands } from '../sessions/session-recorder.js';
import { terminalKind } from './own.js';

/**
 * control: the recorder's control client, whose input would be tmux commands (a read-only client may still
 * run-shell): the caller passes on only `control.screen`, the recorder's one question, once.
 */
export type CheckedTerminal =
  | { terminal: HostTerminal; control: { screen: Buffer } | null; ended: Promise<{ code: number | null; signal: string | null }> }
  | { refusal: string };

export async function openCheckedTerminal(ctx: GatewayContext, hostName: string, argv: string[], size: TerminalSize): Promise<CheckedTerminal> {
  const started = performance.now();
  const asked: Asked = { principal: ctx.principal.name, host: hostName, operation: 'session.attach', command: argv.map(quoteWord).join(' '), argv, policy: '(none: remux tmux command)' };
  const kind = terminalKind(argv, ctx.sessions.users(hostName));
  if ('refusal' in kind) {
    await refuse(ctx, asked, started, 'denied', EXIT.DENIED, kind.refusal, null);
    return { refusal: kind.refusal };
  }
  const host = ctx.host(hostName);
  const actionId = await ctx.audit.begin({ ...asked, decision: 'allow', rule: null, reason: 'attach requested by the gateway' });
  let terminal: HostTerminal;
  try {
    terminal = await host.openTerminal(argv, size);
  } catch (err) {
    await ctx.audit.end(actionId, { exitCode: null, durationMs: performance.now() - started, error: errorText(err) });
    throw err;
  }
  const ended = terminal.exited.then(async (exit) => {
    await ctx.audit.end(actionId, { exitCode: exit.code, signal: exit.signal, durationMs: performance.now() - started });
    return exit;
  });
  return { terminal, control: kind.kind === 'control' ? { screen: Buffer.from(screenCommands(kind.session)) } : null, ended };
}
