// `remux code hook`: what Claude Code runs for its hooks (src/agents/hooks.ts). stdout carries only the
// decision JSON. Errors exit 1, never 2: for Claude Code exit 2 means "deny", and a hook that failed
// must leave the decision to the person at the terminal, not make it.
import type { Command } from 'commander';

export interface CodeHookOptions {
  session: string;
  policy?: string;
}

/** Adds `hook` to the `code` command group. */
export function registerCodeHook(code: Command): void {
  code
    .command('hook')
    .description("answer a Claude Code hook (PermissionRequest, PreToolUse, Notification): its JSON on stdin, the decision on stdout; Claude Code runs this, not people")
    .requiredOption('--session <id>', 'the agent session the hook belongs to')
    .option('--policy <name>', "the remux policy PreToolUse checks Bash commands with (default: the principal's, else default_policy)")
    .addHelpText(
      'after',
      '\nIt reads one hook input (JSON) on stdin, as Claude Code pipes it: not a terminal. No output and exit 0\nleaves the decision to Claude Code (its dialog shows): that is what an approval that expires gives.\nExit 1 on bad input or when remux cannot answer. A PermissionRequest (and a PreToolUse the policy\nasks about) waits for an answer to its approval, up to approvals.timeout_seconds (300 s by default):\nstderr says which approval and how to answer it. Interrupted meanwhile (SIGINT, SIGTERM, SIGHUP: Ctrl-C,\nClaude Code\'s own hook timeout, its terminal closing), it withdraws that approval, saying so, and exits\n130, 143 or 129.\n\nInside a session of `remux code start --agent claude` (REMUX_HOOK_DIR set), the supervisor of\nthat session answers, reached through the proxy of its sandbox with the session token.\n\nExamples:\n' +
        '  echo \'{"hook_event_name":"PreToolUse","session_id":"s","cwd":"/tmp","tool_name":"Bash","tool_input":{"command":"cat /etc/shadow"}}\' | remux code hook --session s   # the policy\'s verdict at once\n' +
        '  echo \'{"hook_event_name":"PermissionRequest","session_id":"s","cwd":"/w","tool_name":"Bash","tool_input":{"command":"ls"}}\' | remux code hook --session s   # waits for: remux approvals approve ID',
    )
    .action(async (opts: CodeHookOptions) => {
      try {
        await codeHook(opts);
      } catch (err) {
        process.stderr.write(`remux code hook: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
      }
    });
}

async function codeHook(opts: CodeHookOptions): Promise<void> {
  // Run by hand without a pipe, it would wait on a terminal for JSON nobody knows to type.
  if (process.stdin.isTTY) throw new Error("it reads a hook's input (JSON) on stdin, as Claude Code pipes it, and stdin is a terminal: pipe one in (remux code hook --help shows how)");
  const { HOOK_DIR_ENV } = await import('../../agents/hook-endpoint.js');
  const dir = process.env[HOOK_DIR_ENV];
  if (dir) {
    // Inside a remux agent session (maybe sandboxed): the session's supervisor answers.
    if (opts.policy !== undefined) throw new Error(`--policy does not apply inside a remux agent session (${HOOK_DIR_ENV} is set): its supervisor checks with the session's policy`);
    const { relayHook } = await import('../../agents/hook-client.js');
    return relayHook(dir, opts.session, process.stdin, process.stdout);
  }
  const [{ answerHook, parseHookInput }, { readAll }, { hookDeps }, { contextFor, createContext }, { policyFor }, { cliAnswer }, { Withdrawal }] = await Promise.all([
    import('../../agents/hooks.js'),
    import('../../agents/hook-client.js'),
    import('../../agents/hook-deps.js'),
    import('../../core/context.js'),
    import('../../core/scope.js'),
    import('../../notify/service.js'),
    import('../../notify/approvals.js'),
  ]);
  // Interrupted (Ctrl-C, Claude Code killing it at its own timeout, its terminal closing): a question it
  // asked is withdrawn, saying so, rather than left waiting for an answer nobody would hear; then it exits
  // as the signal says. Killed outright (SIGKILL), it leaves its question to the daemon's orphan sweep.
  const interrupted = new AbortController();
  let asked = false;
  for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.once(signal, () => {
      process.exitCode = status;
      if (!asked) process.exit(status);
      interrupted.abort(new Withdrawal(`its hook (remux code hook, pid ${process.pid}) was interrupted by ${signal} before an answer came`));
      process.stderr.write(`remux code hook: interrupted by ${signal}: its approval is withdrawn\n`);
    });
  }
  const input = parseHookInput(await readAll(process.stdin));
  // As `remux code start` needs none: PermissionRequest and Notification work without a policies file; a
  // PreToolUse check then denies, naming the missing file (fail closed), as the session's own endpoint does.
  const base = createContext({ policiesWhenNeeded: true });
  try {
    const ctx = contextFor(base, process.env);
    // Whoever waits on the hook (a person trying it, Claude Code's log) hears what for: stdout is the decision's.
    const onWaiting = ({ approval }: { approval: Parameters<typeof cliAnswer>[0] }): void =>
      void process.stderr.write(`remux code hook: waiting up to ${ctx.config.approvals.timeout_seconds} s for approval ${approval.id}: answer with ${cliAnswer(approval)} or in the web console; unanswered, it prints nothing\n`);
    const deps = hookDeps(opts.session, { config: ctx.config, approvals: ctx.approvals, audit: ctx.audit, policies: () => ctx.policies, policyName: policyFor(ctx.principal, opts.policy, ctx.defaultPolicy), env: process.env, onWaiting });
    const output = await answerHook(input, {
      ...deps,
      ask: (request) => {
        asked = true;
        return deps.ask(request, interrupted.signal);
      },
    });
    // Interrupted: no decision, the exit status says why.
    if (interrupted.signal.aborted) return;
    if (output !== null) process.stdout.write(`${JSON.stringify(output)}\n`);
  } finally {
    await base.close();
  }
}
