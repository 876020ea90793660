import type { Command } from 'commander';
import { examples } from '../output.js';
import type { ClientHost } from '../client-commands.js';

export interface RunOptions {
  policy?: string;
  group?: boolean;
  /** false with --no-daemon: run in-process even when a daemon is running. */
  daemon?: boolean;
  cwd?: string;
  timeout?: string;
  pipefail?: boolean;
  json?: boolean;
}

export interface BatchOptions extends RunOptions {
  commandsFile: string;
  stopOnError?: boolean;
}

interface FileOptions {
  policy?: string;
  daemon?: boolean;
}

export interface FileReadOptions extends FileOptions {
  offset?: string;
  length?: string;
  maxBytes?: string;
  head?: string;
  tail?: string;
  json?: boolean;
}

export interface FileWriteOptions extends FileOptions {
  createDirs?: boolean;
  json?: boolean;
}

export interface FileEditOptions extends FileOptions {
  old: string[];
  new: string[];
  dryRun?: boolean;
  json?: boolean;
}

export interface FileListOptions extends FileOptions {
  json?: boolean;
}

function fileOptions(cmd: Command): Command {
  return cmd
    .argument('<host>', 'one host name (localhost is this machine)')
    .argument('<path>', 'absolute path on that host; the policy is checked against it with symlinks resolved there')
    .option('-p, --policy <name>', 'policy to check the path against (default: default_policy in config.yaml)');
}

const FILE_HELP = `
Files are opened without following a symlink out of what the policy checked; no program runs, so the
OS sandbox plays no part: the policy's read_file / write_file / list_directory rules decide.
Exit status: 0 done, 1 the file operation failed (missing, not a regular file, changed under us),
2 usage, 77 denied, 75 rate limited, 255 host unreachable.`;

function commonOptions(cmd: Command): Command {
  return cmd
    .option('-p, --policy <name>', 'policy to check the command against (default: default_policy in config.yaml)')
    .option('-C, --cwd <dir>', 'working directory on the host (local default: the current directory)')
    .option('--timeout <seconds>', 'kill the command after this many seconds (0 = no limit; default from config.yaml)')
    .option('--pipefail', "a pipeline's status is its last non-zero stage (like bash set -o pipefail)")
    .option('--json', 'print one JSON object per host and command (NDJSON) instead of the raw output')
    .option('--group', 'on several hosts: print each host\'s output as one block at the end instead of prefixed lines')
    .option('--no-daemon', 'run in this process (cold connections) even when a daemon is running');
}

/** `host` says where the commands execute: the CLI process (or a daemon it forwards to), or the daemon itself. */
export function registerClient(program: Command, host: () => Promise<ClientHost>): void {
  const client = program
    .command('client')
    .description('run commands, and read, write and list files, on hosts under a policy, with audit')
    .addHelpText('after', examples("remux client run localhost -- 'df -h /'", 'remux client run env=prod --group -- uptime', 'remux client batch web1 --commands-file health.txt', 'remux client read web1 /etc/os-release', 'remux client ls web1 /etc --json'));

  commonOptions(
    client
      .command('run')
      .description('run one command on a host: parsed strictly, checked against the policy, run without a shell, audited')
      .argument('<hosts>', 'a host name (localhost runs here), a list a,b, a label selector env=prod,role=web, a glob web*, or all')
      .argument('<command...>', "the command after --; pipes, && || ; and < > >> 2> 2>&1 are understood"),
  )
    .addHelpText(
      'after',
      `
Examples:
  remux client run localhost -- uptime
  remux client run localhost --policy read_only -- 'tail -n 5 /var/log/dpkg.log | grep install'
  remux client run web1 -- 'df -h /'
  remux client run 'env=prod' -- uptime
  remux client run all --json -- uname -r

Output: one host named directly prints its output as is; several hosts prefix every line with the
host name (or --group), show progress on a terminal and end with a summary.
Input: one host named directly gets your stdin when it is a pipe or a file (echo hi | remux client
run laptop -- cat), read only as fast as the command reads it; several hosts and a batch get none.
Exit status: one host: the command's own. Several: 0 if every host succeeded, else 255 if any was
unreachable, 77 if any was denied, 1 if any failed. Always: 2 usage or rejected syntax, 75 rate
limited. With a running daemon (remux daemon start) connections stay warm between commands.`,
    )
    .action(async (hosts: string, command: string[], opts: RunOptions) => {
      const { runCommand } = await import('../client-commands.js');
      const where = await host();
      where.invocation.setExitCode(await where.run(opts, (runner) => runCommand(where.invocation, runner, hosts, command, opts)));
    });

  commonOptions(
    client
      .command('batch')
      .description('run the commands of a file (one per line, # comments) in order on a host; every line is parsed before any runs')
      .argument('<hosts>', 'a host name, a list, a label selector or all (as for client run)')
      .requiredOption('-f, --commands-file <file>', 'file with one command per line; - reads them from stdin'),
  )
    .option('--stop-on-error', 'stop at the first command that fails or is denied')
    .addHelpText(
      'after',
      `
Examples:
  remux client batch localhost --commands-file health.txt
  remux client batch localhost -f health.txt --json | jq -c '{line, exitCode}'
  printf 'uptime\\ndf -h /\\n' | remux client batch localhost -f -

Exit status: 0 if every command succeeded; else 255 if the host was unreachable, 77 if any was denied, 1 if any failed.`,
    )
    .action(async (hosts: string, opts: BatchOptions) => {
      const { runBatch } = await import('../client-commands.js');
      const where = await host();
      where.invocation.setExitCode(await where.run(opts, (runner) => runBatch(where.invocation, runner, hosts, opts)));
    });

  fileOptions(client.command('read').description('print a file of a host (at most 1 MiB unless --max-bytes says more), checked and audited'))
    .option('--offset <bytes>', 'start this many bytes into the file')
    .option('--length <bytes>', 'read at most this many bytes')
    .option('--max-bytes <bytes>', 'the read cap (default 1048576, at most 16777216); a longer read is cut and says so on stderr')
    .option('--head <lines>', 'print only the first N lines (not with --tail, --offset or --length)')
    .option('--tail <lines>', 'print only the last N lines (not with --head, --offset or --length)')
    .option('--json', 'print {path, size, offset, bytes, truncated, encoding, content} as JSON (content base64 when not UTF-8); with --head or --tail also lines and firstLine (null: unknown)')
    .option('--no-daemon', 'run in this process even when a daemon is running')
    .addHelpText(
      'after',
      `\nExamples:\n  remux client read web1 /var/log/syslog --offset 0 --length 4096\n  remux client read web1 /var/log/syslog --tail 50\n  remux client read web1 /etc/app.conf --head 20 --json\nLines end at \\n bytes, whatever the file holds (a \\r before one is kept); a final \\n ends the\nlast line, as tail -n counts. --tail reads back from the end: a large log is not read whole.\n${FILE_HELP}`,
    )
    .action(async (hostName: string, path: string, opts: FileReadOptions) => {
      const { readFileCommand } = await import('../file-commands.js');
      const where = await host();
      where.invocation.setExitCode(await where.run(opts, (runner) => readFileCommand(where.invocation, runner, hostName, path, opts)));
    });

  fileOptions(client.command('write').description('replace (or create) a file of a host with stdin, atomically (temporary file + rename), checked and audited'))
    .option('--create-dirs', 'create missing parent directories')
    .option('--json', 'print {path, bytes, created} as JSON (created: the file did not exist)')
    .option('--no-daemon', 'run in this process even when a daemon is running')
    .addHelpText(
      'after',
      `\nExamples:\n  remux client write web1 /srv/app/config.yaml < config.yaml\n  remux client write web1 /srv/app/new/config.yaml --create-dirs --json < config.yaml\nStdin is the content, at most 16 MiB. A piped or redirected stdin goes to a running daemon like \`client run\`\n(agent hosts are reached only through it); a terminal's is read in this process.\n${FILE_HELP}`,
    )
    .action(async (hostName: string, path: string, opts: FileWriteOptions) => {
      const { writeFileCommand } = await import('../file-commands.js');
      const where = await host();
      // The caller's stdin as a command would get it; a terminal (or /dev/null) in this process is read as it is.
      const content = where.invocation.stdin ?? process.stdin;
      where.invocation.setExitCode(await where.run(opts, (runner) => writeFileCommand(where.invocation, runner, hostName, path, opts, content)));
    });

  const repeated = (value: string, previous: string[]): string[] => [...previous, value];
  fileOptions(client.command('edit').description('replace exact text in a text file of a host, the rest left as it is; prints the diff; checked (write_file and read_file) and audited'))
    .requiredOption('--old <text>', 'text to replace: once in the file, exactly (repeat with --new for several edits, applied in order)', repeated, [])
    .requiredOption('--new <text>', 'what replaces the --old before it ("" deletes it)', repeated, [])
    .option('--dry-run', 'only print the diff; write nothing')
    .option('--json', 'print {path, changed, written, diff} as JSON')
    .option('--no-daemon', 'run in this process even when a daemon is running')
    .addHelpText(
      'after',
      `\nExamples:\n  remux client edit web1 /etc/app.conf --old 'workers = 4' --new 'workers = 8'\n  remux client edit web1 /etc/app.conf --old 'a' --new 'b' --old 'c' --new 'd' --dry-run\nIf an --old is not in the file exactly once, nothing is written (exit 1, saying which and where). The file is\nreplaced atomically with its mode kept; if another writer changed it while the edit was worked out, nothing is\nwritten (exit 1: read it again and redo the edit).\n${FILE_HELP}`,
    )
    .action(async (hostName: string, path: string, opts: FileEditOptions) => {
      const { editFileCommand } = await import('../file-commands.js');
      const where = await host();
      where.invocation.setExitCode(await where.run(opts, (runner) => editFileCommand(where.invocation, runner, hostName, path, opts)));
    });

  fileOptions(client.command('ls').description("list a directory of a host (entries are lstat'ed: links shown as links), checked and audited"))
    .option('--json', 'print {path, entries, truncated} as JSON')
    .option('--no-daemon', 'run in this process even when a daemon is running')
    .addHelpText('after', `\nExamples:\n  remux client ls web1 /etc --json\n${FILE_HELP}`)
    .action(async (hostName: string, path: string, opts: FileListOptions) => {
      const { listDirectoryCommand } = await import('../file-commands.js');
      const where = await host();
      where.invocation.setExitCode(await where.run(opts, (runner) => listDirectoryCommand(where.invocation, runner, hostName, path, opts)));
    });
}
