import type { Command } from 'commander';
import type { ClientHost } from '../client-commands.js';

export interface RpcOptions {
  json?: boolean;
  python?: string;
  policy?: string;
  timeout?: string;
  mode?: string;
  /** false with --no-daemon. */
  daemon?: boolean;
}

/** `remux rpc`: one call of a runtime tool (src/runtime) on a host or a selector's hosts. */
export function registerRpc(program: Command, host: () => Promise<ClientHost>): void {
  program
    .command('rpc')
    .description('call a tool of the agentless runtime on hosts: a bare python3 there, nothing installed, every call checked and audited')
    .argument('<hosts>', 'a host name (localhost is this machine), a list a,b, a label selector env=prod, a glob web*, or all')
    .argument('<method>', 'Tool.method: FileSystem.readText|readBytes|stat|glob|writeText, Exec.command|stream, Service.*, User.*, Apt.*, AptRepository.*, Pacman.*, PacmanRepository.*, Logger.*, Quit.now')
    .argument('[args...]', "the method's arguments and --options (after -- for Exec)")
    // A tool's own options (--state present) are its arguments, parsed by the method's shape.
    .allowUnknownOption()
    .option('--json', 'one JSON object per host: {"host","ok","value"} or {"host","ok":false,"error":{type,message,errno}}')
    .option('--python <path>', 'the interpreter on the host (default python3; 3.8 or later)')
    .option('-p, --policy <name>', 'policy to check the call against (default: default_policy in config.yaml)')
    .option('--timeout <seconds>', 'stop the call (and kill its processes on the host) after this many seconds')
    .option('--no-daemon', 'run in this process (cold connections) even when a daemon is running')
    .option('--mode <octal>', 'FileSystem.writeText: the file mode, e.g. 0644 (default: kept, or 0644 for a new file)')
    .addHelpText(
      'after',
      `
Examples:
  remux rpc web1 FileSystem.readText /etc/hostname
  remux rpc localhost Exec.command -- uname -r
  remux rpc localhost --python python3 Exec.stream -- ping -c 3 127.0.0.1
  remux rpc 'env=prod' FileSystem.stat /etc/nginx/nginx.conf --json
  remux rpc web1 FileSystem.writeText /etc/motd --mode 0644 < motd.txt
  remux rpc 'role=web' FileSystem.glob '/etc/nginx/sites-enabled/*'
  remux rpc web1 Apt.package nginx --state present
  remux rpc web1 Service.converge nginx --started true --enabled true
  remux rpc web1 User.sudoer deploy --rules 'deploy ALL=(root) NOPASSWD: /usr/bin/systemctl'

A tool's options: --name value or --name=value (a boolean alone is true; a list option repeats).
Each call is checked like the matching front-end action: file methods as read_file / write_file /
list_directory on the path as resolved on the host, Exec as the command \`client run\` would run (a
policy that sandboxes commands refuses Exec: the runtime cannot sandbox); other tools by what they
declare (execute_binary of the programs they run, write_file of what they write). Several hosts: a line per
host and a summary (changed / ok / failed / denied / unreachable).
Exit status: one host: 0, or Exec's own status; 1 the call failed on the host; 2 usage; 77 denied;
75 rate limited; 255 unreachable. Several: 0 if all succeeded, else the most serious kind.`,
    )
    .action(async (hosts: string, method: string, args: string[], opts: RpcOptions) => {
      const { rpcCommand } = await import('../rpc-commands.js');
      const where = await host();
      // Through a running daemon when there is one (its warm SSH connections), as `client run`.
      where.invocation.setExitCode(await where.run(opts, (runner) => rpcCommand(where.invocation, runner, hosts, method, args, opts)));
    });
}
