import type { Command } from 'commander';
import { completes } from './completion.js';
import { examples } from '../output.js';
import { registerCodeHook } from './code-hook.js';
import { SANDBOX_KINDS } from '../../agents/store.js';

export function registerCode(program: Command): void {
  const code = program
    .command('code')
    .description('AI coding agents (claude, codex, gemini, aider, or a command) in sandboxed tmux sessions')
    .addHelpText('after', examples("remux code start ~/projects/myapp -p 'Fix the failing tests'", 'remux code ls', 'remux code attach 3f2a', 'remux code logs 3f2a', 'remux code rm --all-ended'));
  registerCodeHook(code);

  completes(code.command('start'), { '--agent': 'agent', '--sandbox': SANDBOX_KINDS })
    .description('start an agent in WORKSPACE, in its own tmux session (socket remux), inside a sandbox')
    .argument('<workspace>', 'the directory the agent works in (the only place it may write)')
    .option('-n, --name <name>', 'a name for the session')
    .option('-p, --prompt <prompt>', 'the first prompt')
    .option('--continue', "resume the agent's previous conversation in this workspace")
    .option('--no-attach', 'do not attach the terminal')
    .option('--agent <agent>', "claude | codex | gemini | aider | 'CMD' (default: agents.default_agent)")
    .option('--sandbox <sandbox>', `${SANDBOX_KINDS.join(' | ')} (default: agents.default_sandbox, srt)`)
    .option('--worktree <branch>', 'work in a new git worktree on BRANCH (under $REMUX_HOME/worktrees)')
    .option('--json', 'print the session as code ls --json does, with its host and the lines that attach, show and kill it (never attaches)')
    .addHelpText('after', '\nExamples:\n  remux code start ~/projects/myapp -p "Fix the failing tests"\n  remux code start . --agent codex --worktree fix-tests --no-attach\n  remux code start . --agent \'aider --model sonnet\' --sandbox none\n  id=$(remux code start . -p "Fix the failing tests" --json | jq -r .id)')
    .action(async (workspace: string, opts: Record<string, string | boolean | undefined>) => {
      const { startCommand } = await import('../code-commands.js');
      await startCommand(workspace, opts);
    });

  code
    .command('ls')
    .alias('list')
    .description('list running agent sessions with their workspace and branch')
    .option('-a, --all', 'also exited ones')
    .option('--json', 'print as JSON')
    .addHelpText('after', examples('remux code ls', 'remux code ls -a --json | jq -r \'.[] | select(.state == "exited") | .id\''))
    .action(async (opts: { all?: boolean; json?: boolean }) => (await import('../code-commands.js')).lsCommand(opts));

  code
    .command('status')
    .description('every agent session and its state')
    .option('--json', 'print as JSON')
    .addHelpText('after', examples('remux code status', 'remux code status --json'))
    .action(async (opts: { json?: boolean }) => (await import('../code-commands.js')).statusCommand(opts));

  completes(code.command('attach'), { id: 'agent-session' })
    .description('attach the terminal to a session (an ID prefix is enough)')
    .argument('<id>')
    .option('-r, --read-only', 'watch without typing (tmux attach -r), as session attach --read-only')
    .addHelpText('after', examples('remux code attach 3f2a       # detach with tmux\'s prefix, then d', 'remux code attach 3f2a -r    # watch it: keys typed reach nothing'))
    .action(async (id: string, opts: { readOnly?: boolean }) => (await import('../code-commands.js')).attachCommand(id, opts));

  completes(code.command('logs'), { id: 'agent-session' })
    .description("print a session's scrollback")
    .argument('<id>')
    .option('-f, --follow', 'keep printing what the agent writes')
    .addHelpText('after', examples('remux code logs 3f2a', 'remux code logs 3f2a --follow'))
    .action(async (id: string, opts: { follow?: boolean }) => (await import('../code-commands.js')).logsCommand(id, opts));

  completes(code.command('restart'), { id: 'agent-session' })
    .description('restart the agent in the same workspace (resuming its conversation where the agent can)')
    .argument('<id>')
    .addHelpText('after', examples('remux code restart 3f2a'))
    .action(async (id: string) => (await import('../code-commands.js')).restartCommand(id));

  completes(code.command('kill'), { id: 'agent-session' })
    .description('end a session and every process of its agent (asks to type the ID)')
    .argument('<id>')
    .option('-f, --force', 'do not ask')
    .option('--json', 'print {id, name, host, state} of the session killed as JSON')
    .addHelpText('after', examples('remux code kill 3f2a', 'remux code kill 3f2a -f', 'remux code kill 3f2a -f --json'))
    .action(async (id: string, opts: { force?: boolean; json?: boolean }) => (await import('../code-commands.js')).killCommand(id, opts));

  completes(code.command('rm'), { id: 'agent-session' })
    .alias('remove')
    .description(
      'remove ended sessions and what they left: records, saved screens, a worktree remux made if git finds it clean (one with changes is kept)',
    )
    .argument('[id...]', 'ended sessions (ID prefixes or names)')
    .option('--all-ended', 'every ended session (exited or failed)')
    .option('--json', 'print what was removed as JSON')
    .addHelpText('after', examples('remux code rm 3f2a', 'remux code rm 3f2a 9c1d', 'remux code rm --all-ended', 'remux code kill 3f2a -f && remux code rm 3f2a   # a running one is killed first'))
    .action(async (ids: string[], opts: { allEnded?: boolean; json?: boolean }) => (await import('../code-commands.js')).rmCommand(ids, opts));

}
