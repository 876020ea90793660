// `remux completion bash|zsh|fish` prints a script (completion-scripts/remux.SHELL) that completes remux's
// command lines; the script asks the hidden `remux __complete -- WORDS…` what may come next, which reads
// commander's command tree, so completion follows the commands as they are. What a value is (a host, a
// policy…) comes from `completes()` where a command is defined, else from the name of its option or
// argument (../completion.ts).
import { Argument, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import type { Invocation } from '../invocation.js';
import { packageFile } from '../program.js';

/**
 * Where the candidates for a value come from: a source completion.ts knows (files in REMUX_HOME, local
 * tmux, the built-in tools), or a fixed list ([] for a new name: nothing, not even file names).
 */
export type ValueSource =
  | 'hosts'
  | 'host'
  | 'inventory-host'
  | 'policy'
  /** Several policies, a,b (principal --policy). */
  | 'policies'
  | 'policy-template'
  | 'principal'
  | 'tmux-session'
  | 'agent-session'
  | 'agent'
  | 'approval'
  | 'approval-option'
  | 'recording'
  | 'rpc-method'
  | readonly string[];

const declared = new WeakMap<Command, Record<string, ValueSource>>();

/**
 * Says what the values of `cmd`'s arguments (by name: `name`) or options (by long flag: `--policy`)
 * are, for completion; returns `cmd`.
 */
export function completes(cmd: Command, sources: Record<string, ValueSource>): Command {
  declared.set(cmd, { ...declared.get(cmd), ...sources });
  return cmd;
}

/** What `completes()` declared for `cmd`, by argument name or long flag. */
export function declaredSources(cmd: Command): Readonly<Record<string, ValueSource>> {
  return declared.get(cmd) ?? {};
}

export const SHELLS = ['bash', 'zsh', 'fish'] as const;

export function registerCompletion(program: Command, inv: Invocation): void {
  program
    .command('completion')
    .description('print a shell completion script (bash, zsh or fish): commands, options, host names and labels, policies, sessions')
    .addArgument(new Argument('<shell>', SHELLS.join(' | ')).choices(SHELLS))
    .addHelpText(
      'after',
      `
Examples:
  source <(remux completion bash)                                # bash: add this line to ~/.bashrc
  mkdir -p ~/.zfunc && remux completion zsh > ~/.zfunc/_remux    # zsh: and fpath=(~/.zfunc $fpath) before compinit in ~/.zshrc
  remux completion fish > ~/.config/fish/completions/remux.fish  # fish

Values come from your files as you type: hosts and labels (hosts.yaml, plus localhost), policies
(policies.yaml), principals (principals.yaml), agent session IDs and --agent's agents (remux code),
open approvals' IDs and options (remux approvals), recording IDs, tmux sessions of this machine (local
tmux only: completion never connects to a host) and rpc's built-in Tool.method names. zsh and fish
show what each is (an approval's question, a recording's host and session).
Completing writes nothing, starts no daemon and leaves the audit trail alone.`,
    )
    .action((shell: (typeof SHELLS)[number]) => {
      inv.stdout.write(readFileSync(packageFile(`src/cli/completion-scripts/remux.${shell}`), 'utf8'));
    });

  // What the scripts call: the words after `remux` up to the cursor, the last one being completed.
  program
    .command('__complete', { hidden: true })
    .argument('[words...]')
    .allowUnknownOption()
    .helpOption(false)
    .addHelpText('after', "\nExamples:\n  remux __complete -- client run web1 --policy ''   # the policies, then :0")
    .action(async (words: string[]) => {
      const { complete, formatCompletion } = await import('../completion.js');
      inv.stdout.write(formatCompletion(await complete(program, words.length > 0 ? words : [''], inv.env)));
    });
}
