// remux CLI entry. Only commander and the command definitions load at start-up; each action
// imports what it needs when it runs, so `remux --version` stays fast.
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { EXIT } from '../core/exit-codes.js';
import { registerAudit } from './commands/audit.js';
import { registerClient } from './commands/client.js';
import { registerConfig } from './commands/config.js';
import { registerDaemon, registerStatus } from './commands/daemon.js';
import { registerHosts } from './commands/hosts.js';
import { registerPolicy } from './commands/policy.js';
import { fail, UsageError } from './output.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const program = new Command('remux')
  .description('A secure gateway between people or their AI agents and machines: policy-checked, audited execution.')
  .version(packageVersion(), '-V, --version')
  .option('-v, --verbose', 'print more detail on errors')
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
  remux audit ls --level deny
  remux audit verify

Exit codes: the command's own status; 2 usage; 77 denied by policy; 75 rate limited; 255 transport error.
Environment: REMUX_HOME (default ~/.config/remux), REMUX_POLICY_CONFIG, REMUX_AUDIT_DB, REMUX_SOCKET,
REMUX_KNOWN_HOSTS (the seed's RPIPE_* names are read as aliases).`,
  );

// `remux audit ls | head` closes our stdout early: stop quietly, like other Unix tools.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

registerConfig(program);
registerPolicy(program);
registerHosts(program);
registerClient(program);
registerDaemon(program);
registerStatus(program);
registerAudit(program);

// Every subcommand reports usage errors with exit 2 instead of commander's default 1.
for (const cmd of allCommands(program)) cmd.exitOverride();

function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(allCommands)];
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    const benign = ['commander.helpDisplayed', 'commander.version', 'commander.help', 'commander.executeSubCommandAsync'];
    process.exitCode = benign.includes(err.code) ? EXIT.OK : EXIT.USAGE;
  } else if (err instanceof UsageError) {
    fail(err.message, EXIT.USAGE, err.hint);
  } else if (err instanceof Error && (err.name === 'ConfigError' || err.name === 'ParseError')) {
    // Bad input in a file or a command string: a usage error, reported with file:line or column.
    fail(err, EXIT.USAGE);
  } else {
    fail(err, EXIT.FAILURE, undefined, program.opts<{ verbose?: boolean }>().verbose === true);
  }
}
