import type { Command } from 'commander';

export interface RunOptions {
  policy?: string;
  cwd?: string;
  timeout?: string;
  pipefail?: boolean;
  json?: boolean;
}

export interface BatchOptions extends RunOptions {
  commandsFile: string;
  stopOnError?: boolean;
}

function commonOptions(cmd: Command): Command {
  return cmd
    .option('-p, --policy <name>', 'policy to check the command against (default: default_policy in config.yaml)')
    .option('-C, --cwd <dir>', 'working directory on the host (local default: the current directory)')
    .option('--timeout <seconds>', 'kill the command after this many seconds (0 = no limit; default from config.yaml)')
    .option('--pipefail', "a pipeline's status is its last non-zero stage (like bash set -o pipefail)")
    .option('--json', 'print one JSON object per command (NDJSON) instead of the raw output');
}

export function registerClient(program: Command): void {
  const client = program.command('client').description('run commands on hosts under a policy, with audit');

  commonOptions(
    client
      .command('run')
      .description('run one command on a host: parsed strictly, checked against the policy, run without a shell, audited')
      .argument('<host>', 'host name: localhost (alias local) runs on this machine')
      .argument('<command...>', "the command after --; pipes, && || ; and < > >> 2> 2>&1 are understood"),
  )
    .addHelpText(
      'after',
      `
Examples:
  remux client run localhost -- uptime
  remux client run localhost --policy read_only -- 'tail -n 5 /var/log/dpkg.log | grep install'
  remux client run local --json -- 'df -h /'

Exit status: the command's own; 2 usage or rejected syntax; 77 denied by policy; 255 host unreachable.`,
    )
    .action(async (host: string, command: string[], opts: RunOptions) => {
      const { runCommand } = await import('../client-commands.js');
      await runCommand(host, command, opts);
    });

  commonOptions(
    client
      .command('batch')
      .description('run the commands of a file (one per line, # comments) in order on a host; every line is parsed before any runs')
      .argument('<host>', 'host name: localhost (alias local) runs on this machine')
      .requiredOption('-f, --commands-file <file>', 'file with one command per line'),
  )
    .option('--stop-on-error', 'stop at the first command that fails or is denied')
    .addHelpText(
      'after',
      `
Examples:
  remux client batch localhost --commands-file health.txt
  remux client batch localhost -f health.txt --json | jq -c '{line, exitCode}'

Exit status: 0 if every command succeeded; else 255 if the host was unreachable, 77 if any was denied, 1 if any failed.`,
    )
    .action(async (host: string, opts: BatchOptions) => {
      const { runBatch } = await import('../client-commands.js');
      await runBatch(host, opts);
    });
}
