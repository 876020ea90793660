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
      '\nNo output and exit 0 leaves the decision to Claude Code (its dialog shows): that is what an approval that\nexpires gives. Exit 1 on bad input or when remux cannot answer.\n\nExamples:\n  echo \'{"hook_event_name":"PermissionRequest","session_id":"s","cwd":"/w","tool_name":"Bash","tool_input":{"command":"ls"}}\' | remux code hook --session s',
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
  const [{ answerHook, parseHookInput }, { contextFor, createContext }, { notifyAll }, { parseCommand }, { evaluate }, { createLocalHost }, { policyFor }] = await Promise.all([
    import('../../agents/hooks.js'),
    import('../../core/context.js'),
    import('../../notify/channels.js'),
    import('../../command/parser.js'),
    import('../../policy/evaluate.js'),
    import('../../hosts/local.js'),
    import('../../core/scope.js'),
  ]);
  const input = parseHookInput(await readStdin());
  const base = createContext();
  try {
    const ctx = contextFor(base, process.env);
    const principal = `agent:${opts.session}`;
    const policyName = policyFor(ctx.principal, opts.policy, ctx.defaultPolicy);
    const output = await answerHook(input, {
      session: opts.session,
      ask: (request, signal) => ctx.approvals.ask(request, signal),
      timeoutSeconds: ctx.config.approvals.timeout_seconds,
      notify: (n) => notifyAll(ctx.config.notify.channels, n),
      checkCommand: (command, cwd) => {
        const policy = ctx.policies.get(policyName);
        if (!policy) throw new Error(`unknown policy "${policyName}" (known: ${[...ctx.policies.keys()].join(', ') || 'none'})`);
        if (!cwd.startsWith('/')) throw new Error(`the hook's cwd is not absolute: ${JSON.stringify(cwd)}`);
        const host = createLocalHost('localhost', ctx.config.exec.secure_path);
        // Static checks: the command runs in the agent's own sandbox, not in remux's.
        return Promise.resolve(evaluate(policy, parseCommand(command), { cwd, resolver: host.resolver, enforcement: { sandbox: false, why: 'checked before Claude Code runs it' } }));
      },
      record: async ({ command, decision, reason, checked }) => {
        await ctx.audit.record(
          { principal, host: 'localhost', operation: 'agent.bash', command, resource: opts.session, policy: policyName, rule: checked?.rule ? `${checked.rule.policy}#${checked.rule.index}` : null, decision, reason },
          { exitCode: null, durationMs: 0, ...(decision === 'deny' ? { refusal: reason } : {}) },
        );
      },
    });
    if (output !== null) process.stdout.write(`${JSON.stringify(output)}\n`);
  } finally {
    await base.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
