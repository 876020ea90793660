import type { Command } from 'commander';
import { completes } from './completion.js';
import type { ClientHost } from '../client-commands.js';

export interface RpcOptions {
  json?: boolean;
  python?: string;
  policy?: string;
  timeout?: string;
  mode?: string;
  /** false with --no-daemon. */
  daemon?: boolean;
  /** ES modules exporting custom tools (defineTool); the call then runs in this process. */
  tools?: string[];
  /** A custom method's arguments as a JSON array. */
  argsJson?: string;
}

const collect = (value: string, earlier: string[] = []): string[] => [...earlier, value];

/** `remux rpc`: one call of a runtime tool (src/runtime) on a host or a selector's hosts. */
export function registerRpc(program: Command, host: () => Promise<ClientHost>): void {
  completes(program.command('rpc'), { method: 'rpc-method' })
    .description('call a tool of the agentless runtime on hosts: a bare python3 there, nothing installed, every call checked and audited')
    .argument('<hosts>', 'a host name (localhost is this machine), a list a,b, a label selector env=prod, a glob web*, or all')
    .argument('<method>', 'Tool.method: FileSystem.readText|readBytes|stat|glob|writeText|lineInFile|ensureDirectory, Exec.command|stream, Service.*, User.*, Apt.*, AptRepository.*, Pacman.*, PacmanRepository.*, Logger.*, Quit.now, Template.render|file, or a custom tool\'s (--tools)')
    .argument('[args...]', "the method's arguments and --options (after -- for Exec)")
    // A tool's own options (--state present) are its arguments, parsed by the method's shape.
    .allowUnknownOption()
    .option('--json', 'JSON lines: one object per host, {"host","ok","value"} or {"host","ok":false,"kind","error":{type,message,errno}}; Exec.stream\'s output as {"host","stream","data"}; several hosts end with {"summary":{total,ok,changed,failed,denied,unreachable}}')
    .option('--python <path>', "the interpreter on the host (default python3; 3.8 or later); another one must be allowed outright by the policy (execute_binary, and execute_code with unsandboxed: true), since it runs before any call")
    .option('-p, --policy <name>', 'policy to check the call against (default: default_policy in config.yaml)')
    .option('--timeout <seconds>', 'stop the call (and kill its processes on the host) after this many seconds; 0 = no limit; default: exec.timeout_seconds of config.yaml (300), as for client run')
    .option('--no-daemon', 'run in this process (cold connections) even when a daemon is running')
    .option('--tools <file>', 'an ES module (.js/.mjs) whose exports include custom tools made with defineTool; repeatable. Runs in this process, never in the daemon', collect)
    .option('--args-json <json>', "a custom tool method's arguments as a JSON array, for any argument types")
    .option('--mode <octal>', "the mode of what a method writes (writeText, lineInFile, ensureDirectory, Template.file, a custom tool's mode option), e.g. 0644 (default: kept, or 0644 / 0755 for a new file); a set-user-ID or set-group-ID bit on a file is refused")
    .addHelpText(
      'after',
      `
Examples:
  remux rpc web1 FileSystem.readText /etc/hostname
  remux rpc localhost Exec.command -- uname -r
  remux rpc web1 Exec.command -- wc -l < access.log
  remux rpc localhost --python python3 Exec.stream -- ping -c 3 127.0.0.1
  remux rpc 'env=prod' FileSystem.stat /etc/nginx/nginx.conf --json
  remux rpc web1 FileSystem.writeText /etc/motd --mode 0644 < motd.txt
  remux rpc 'role=web' FileSystem.glob '/etc/nginx/sites-enabled/*'
  remux rpc 'env=prod' FileSystem.lineInFile /etc/ssh/sshd_config 'PermitRootLogin no' --regexp '^#?PermitRootLogin'
  remux rpc web1 FileSystem.ensureDirectory /srv/app/releases --parents --mode 0750 --owner deploy
  remux rpc web1 Apt.package nginx --state present
  remux rpc web1 Service.converge nginx --started true --enabled true
  remux rpc web1 Template.render nginx.conf.tmpl --var port=443
  remux rpc 'env=prod' Template.file /etc/nginx/conf.d/app.conf nginx.conf.tmpl --vars-file prod.yaml --mode 0644
  remux rpc web1 User.sudoer deploy --rules 'deploy ALL=(root) NOPASSWD: /usr/bin/systemctl'
  remux rpc arch1 PacmanRepository.present custom --servers 'https://repo.example/$arch' --key "$(cat repo.asc)" --key-fingerprint 0123…4567
  remux rpc web1 --tools ./mytools.mjs Deploy.status nginx --json
  remux rpc 'role=web' --tools ./mytools.mjs Deploy.release v42 --keep 3
  remux rpc web1 --tools ./mytools.mjs Deploy.plan --args-json '[{"steps":["a","b"]}]'

A tool's options: --name value or --name=value (a boolean alone is true; a list option repeats).
Each call is checked like the matching front-end action: file methods as read_file / write_file /
list_directory on the path as resolved on the host, Exec as the command \`client run\` would run (in
the OS sandbox when the policy sandboxes commands, started by the host's transport as \`client run\` starts it); other tools by what they
declare (execute_binary of the programs they run, write_file of what they write). Several hosts: a line per
host and a summary (changed / ok / failed / denied / unreachable).
Template.render and Template.file take the template as a local file (its name in errors: FILE:LINE) and
its variables as \`remux template render\` does (--var KEY=VALUE, --vars-file FILE); it renders on each
host, with that host's facts. Template.file prints created, changed or unchanged and the diff.
Input: Exec on one host named directly gets your stdin when it is a pipe or a file, as client run's
command does, read only as fast as the command reads it; several hosts get none.
Exit status: one host: 0, or Exec's own status; 1 the call failed on the host; 2 usage (a template
error too); 77 denied; 75 rate limited; 124 past the timeout; 255 unreachable. Several: 0 if all
succeeded, else the most serious kind.

Custom tools (--tools FILE): the module is imported here and its tools (defineTool, from
'remux/runtime') are called like the built-ins: same output, exit statuses and summary, each call
checked by the policy (the operations the method declares, and execute_code of the interpreter) and
audited under the same principal. The module is your code and runs with your privileges, so such a
call runs in this CLI process, as with --no-daemon, even when a daemon is running: the daemon never
imports user code. A .ts file must be compiled first (Node 20 has no TypeScript loader). A tool with a
built-in's name, or the same name in two files, is refused. Words map onto the method's z.tuple:
leading string, number, boolean or enum items are positional (in order; named by .describe('name'),
else ARG1, ARG2, …); a last item that is a z.object of such fields, or of lists of strings (repeat the
option), takes --name value options. Any other shape takes --args-json '[…]' only, which every custom
method accepts. The arguments are checked against the schema before anything is sent: a bad one exits 2
naming it (NAME (argument 1), --option, or argument N of the JSON).`,
    )
    .action(async (hosts: string, method: string, args: string[], opts: RpcOptions) => {
      const { rpcCommand } = await import('../rpc-commands.js');
      const where = await host();
      // Through a running daemon when there is one (its warm SSH connections), as `client run`. With
      // --tools, in this process (a daemon hands the line back): a custom tool's module is the user's code,
      // which the daemon never imports (it would run with the daemon's privileges).
      const runOpts = opts.tools !== undefined && opts.tools.length > 0 ? { ...opts, daemon: false, local: '--tools (the daemon never imports user code; the CLI runs the call itself)' } : opts;
      where.invocation.setExitCode(await where.run(runOpts, (runner) => rpcCommand(where.invocation, runner, hosts, method, args, opts)));
    });
}
