import type { Command } from 'commander';
import { completes } from './completion.js';
import { examples } from '../output.js';

export interface AddOptions {
  port?: string;
  user?: string;
  identity?: string;
  agent?: boolean;
  passwordEnv?: string;
  label?: string[];
  jump?: string;
  tmuxSocket?: string;
  tmuxUsers?: string;
  replace?: boolean;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerHosts(program: Command): void {
  const hosts = program
    .command('hosts')
    .description('the host inventory ($REMUX_HOME/hosts.yaml): add, list, check, remove')
    .addHelpText('after', examples('remux hosts add web1 ops@10.0.0.5 --label env=prod', 'remux hosts check web1 --accept-new', 'remux hosts list --json'));

  completes(hosts.command('add'), { name: [], '--jump': 'inventory-host' })
    .description('add a host reached over SSH; its host key must be in known_hosts (or use hosts check --accept-new)')
    .argument('<name>', 'short name used in commands and selectors, e.g. web1')
    .argument('<address>', 'ADDRESS, USER@ADDRESS or USER@[IPv6]')
    .option('-p, --port <port>', 'SSH port (default 22)')
    .option('-u, --user <user>', 'login user (default: the user in ADDRESS, else your login name)')
    .option('-i, --identity <file>', 'private key file')
    .option('--agent', 'authenticate with ssh-agent ($SSH_AUTH_SOCK)')
    .option('--password-env <VAR>', 'read the password from this environment variable (never stored)')
    .option('-l, --label <key=value>', 'label for selectors; repeatable', collect)
    .option('-J, --jump <host>', 'reach it through another inventory host (like ssh ProxyJump)')
    .option('--tmux-socket <socket>', 'tmux server for its sessions: a name (tmux -L) or an absolute path (tmux -S)')
    .option('--tmux-users <u1,u2>', 'tmux users whose sessions remux shows and drives (default: the login user; others via sudo -n -u)')
    .option('--replace', 'overwrite an existing host of the same name')
    .addHelpText(
      'after',
      '\nExamples:\n  remux hosts add web1 ops@10.0.0.5 --port 22 --identity ~/.ssh/id_ed25519 --label env=prod\n  remux hosts add db1 10.0.1.7 -l env=prod -l role=db --jump web1\n  remux hosts add build1 ops@10.0.2.3 --tmux-users ops,deploy --tmux-socket work',
    )
    .action(async (name: string, address: string, opts: AddOptions) => {
      const { addHostCommand } = await import('../hosts-commands.js');
      addHostCommand(name, address, opts);
    });

  hosts
    .command('list')
    .alias('ls')
    .description('list hosts: address, labels, and (with a running daemon) connected?, breaker state, last RTT, enforcement (sandbox or static checks), last error')
    .addHelpText('after', '\nExamples:\n  remux hosts list\n  remux hosts list --json | jq -r \'.[] | select(.breaker == "open") | .name\'')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const { listHostsCommand } = await import('../hosts-commands.js');
      await listHostsCommand(opts);
    });

  hosts
    .command('check')
    .description('connect, verify the host key, run a trivial command and probe for the OS sandbox (bubblewrap) on each selected host, in parallel')
    .argument('[selector]', 'hosts to check (default: all)', 'all')
    .option('--accept-new', 'trust host keys seen for the first time and record them in known_hosts (never a changed key)')
    .option('--known-hosts <file>', 'known_hosts file (default: REMUX_KNOWN_HOSTS, else ~/.ssh/known_hosts)')
    .option('--json', 'one JSON object per host')
    .addHelpText('after', '\nExamples:\n  remux hosts check\n  remux hosts check env=prod --accept-new')
    .action(async (selector: string, opts: { acceptNew?: boolean; knownHosts?: string; json?: boolean }) => {
      const { checkHostsCommand } = await import('../hosts-commands.js');
      await checkHostsCommand(selector, opts);
    });

  completes(hosts.command('remove'), { name: 'inventory-host' })
    .alias('rm')
    .description('remove a host from the inventory')
    .addHelpText('after', '\nExamples:\n  remux hosts remove web1')
    .argument('<name>')
    .action(async (name: string) => {
      const { removeHostCommand } = await import('../hosts-commands.js');
      removeHostCommand(name);
    });
}
