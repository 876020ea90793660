// The root of the command tree and how a command line's errors become exit codes. Shared by the CLI
// process (main.ts) and the daemon serving forwarded command lines, so both answer alike.
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { exitCodeOf } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import type { Invocation } from './invocation.js';

/**
 * A file of the installed package, e.g. `package.json` or `dist/web`. Relative to this module, which
 * sits at the same depth as the bundle (dist/src/cli/remux.cjs), so both find the same root.
 */
export function packageFile(relative: string): string {
  return fileURLToPath(new URL(`../../../${relative}`, import.meta.url));
}

let version: string | undefined;

/** The version of the code running (read once: the daemon builds a program for every forwarded command). */
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version: string }).version;
  return version;
}

/** The root command; subcommands registered after this inherit its output and error settings. */
export function createProgram(inv: Invocation): Command {
  return new Command('remux')
    .description('A secure gateway between people or their AI agents and machines: policy-checked, audited execution.')
    .version(packageVersion(), '-V, --version')
    .option('-v, --verbose', 'print more detail on errors')
    .configureOutput({
      writeOut: (text) => inv.stdout.write(text),
      writeErr: (text) => inv.stderr.write(text),
      getOutHelpWidth: () => inv.columns ?? 80,
      getErrHelpWidth: () => inv.columns ?? 80,
    })
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .addHelpText(
      'after',
      `
Examples:
  remux config init
  remux policy check read_only -- 'tail -n 5 /var/log/dpkg.log | grep install'
  remux client run localhost --policy read_only -- 'tail -n 5 /var/log/dpkg.log | grep install'
  remux hosts add web1 ops@10.0.0.5 --label env=prod && remux hosts check web1
  remux daemon start && remux client run env=prod -- uptime
  remux session ls --host env=prod && remux session attach build --host web1
  remux audit ls --level deny
  remux audit verify
  remux mcp config claude-code

Exit codes: the command's own status; 2 usage; 77 denied by policy; 75 rate limited; 255 transport error.
Environment: REMUX_HOME (default ~/.config/remux), REMUX_POLICY_CONFIG, REMUX_AUDIT_DB, REMUX_SOCKET,
REMUX_KNOWN_HOSTS (the seed's RPIPE_* names are read as aliases).`,
    );
}

/** Parses and runs `args` (the words after `remux`); every failure is reported on the invocation's stderr with its exit code. */
export async function runProgram(program: Command, args: string[], inv: Invocation): Promise<void> {
  // Every subcommand reports usage errors with exit 2 instead of commander's default 1.
  for (const cmd of allCommands(program)) cmd.exitOverride();
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      const benign = ['commander.helpDisplayed', 'commander.version', 'commander.help', 'commander.executeSubCommandAsync'];
      inv.setExitCode(benign.includes(err.code) ? EXIT.OK : EXIT.USAGE);
      const elsewhere = err.code === 'commander.unknownCommand' ? commandsNamed(program, args) : [];
      if (elsewhere.length > 0) inv.stderr.write(`hint: did you mean ${elsewhere.map((c) => `\`${c}\``).join(' or ')}?\n`);
    } else {
      // Not who it claims or not allowed there (77: retrying will not help), the caller's mistake (2; bad
      // input in a file comes with file:line), or a failure (1).
      const exitCode = exitCodeOf(err);
      const given = (err as { hint?: unknown }).hint;
      const hint = typeof given === 'string' ? given : err instanceof Error && err.name === 'ConfigError' ? 'fix the file at the line shown, then run the command again' : undefined;
      const verbose = exitCode === EXIT.FAILURE && program.opts<{ verbose?: boolean }>().verbose === true;
      report(inv, err instanceof Error ? err.message : String(err), exitCode, hint, verbose && err instanceof Error ? err.stack : undefined);
    }
  }
  inv.done?.();
}

function report(inv: Invocation, message: string, exitCode: number, hint?: string, stack?: string): void {
  inv.stderr.write(`remux: ${message}\n`);
  if (hint) inv.stderr.write(`hint: ${hint}\n`);
  if (stack) inv.stderr.write(`${stack}\n`);
  inv.setExitCode(exitCode);
}

/** `remux run` → `remux client run`: the commands of a group named like the unknown top-level word. */
function commandsNamed(program: Command, args: readonly string[]): string[] {
  const word = args.find((a) => !a.startsWith('-'));
  if (word === undefined || program.commands.some((c) => c.name() === word || c.aliases().includes(word))) return [];
  return program.commands.flatMap((group) => group.commands.filter((c) => c.name() === word || c.aliases().includes(word)).map((c) => `remux ${group.name()} ${c.name()}`));
}

function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(allCommands)];
}
