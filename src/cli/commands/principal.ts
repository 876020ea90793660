import type { Command } from 'commander';
import { completes } from './completion.js';
import { examples } from '../output.js';

export interface AddPrincipalOptions {
  admin?: boolean;
  hosts?: string;
  users?: string;
  createAs?: string;
  readOnly?: boolean;
  policy?: string[];
  json?: boolean;
}

export interface SetPrincipalOptions extends AddPrincipalOptions {
  interactive?: boolean;
  force?: boolean;
}

export interface RemovePrincipalOptions {
  force?: boolean;
}

/** What add and set say alike of options that mean the same in both. */
const HOSTS = 'hosts it may use: a selector as in client run (web1,web2 | web* | env=prod | all); this machine only by its name, localhost';
const READ_ONLY = 'its session attaches are read-only';
const LAST_ADMIN = 'do it even to the last admin principal (then nobody can answer approvals or see the whole audit trail in the web console)';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerPrincipal(program: Command): void {
  const principal = program
    .command('principal')
    .description('principals: who may use the daemon\'s web console and API (and REMUX_TOKEN), and what each may touch')
    .addHelpText('after', examples('remux principal add ci-bot --hosts env=staging --policy read_only --json', 'remux principal set ci-bot --hosts env=prod', 'remux principal ls', 'remux principal rotate ci-bot'));

  completes(principal.command('add'), { name: [], '--policy': 'policies' })
    .description('add a principal and print its new token (once: only a hash is stored)')
    .argument('<name>', 'name recorded in the audit trail, e.g. ci-bot')
    .option('--admin', 'reaches every host, user and policy, and sees the whole audit trail')
    .option('--hosts <selector>', HOSTS)
    .option('--users <u1,u2>', 'tmux users whose sessions it may use ("*" any; default none)')
    .option('--create-as <u1,u2>', 'tmux users it may create sessions as (default: --users)')
    .option('--read-only', READ_ONLY)
    .option('--policy <name>', 'a policy its commands may run under; repeatable or a,b; the first is its default (default: default_policy)', collect)
    .option('--json', 'print {"name","token"}')
    .addHelpText(
      'after',
      `
Examples:
  remux principal add alice --admin
  remux principal add ci --hosts env=prod --policy read_only --json
  remux principal add viewer --hosts 'web*' --users deploy --read-only`,
    )
    .action(async (name: string, opts: AddPrincipalOptions) => {
      const { addPrincipalCommand } = await import('../principal-commands.js');
      await addPrincipalCommand(name, opts);
    });

  completes(principal.command('set'), { name: 'principal', '--policy': 'policies' })
    .description("change a principal's scope: what is given changes (read as principal add reads it), the rest stays, and so does its token")
    .argument('<name>', 'a principal of principal ls')
    .option('--hosts <selector>', HOSTS)
    .option('--users <u1,u2>', 'tmux users whose sessions it may use ("*" any; \'\' none)')
    .option('--create-as <u1,u2>', "tmux users it may create sessions as ('' none; not given: it follows --users when it was the same as users, else keeps those still in --users)")
    .option('--read-only', READ_ONLY)
    .option('--interactive', 'its session attaches may type (undoes --read-only)')
    .option('--policy <name>', "the policies its commands may run under, replacing its list; repeatable or a,b; the first is its default ('' for default_policy)", collect)
    .option('--admin', 'make it an admin: every host, user and policy, and the whole audit trail (its scope goes)')
    .option('--no-admin', 'make an admin a scoped principal: give --hosts and the rest as for principal add (the last admin only with --force)')
    .option('--force', LAST_ADMIN)
    .option('--json', 'print the principal as principal ls --json does, with "changed": the fields that changed')
    .addHelpText(
      'after',
      `
The daemon follows the change at once: the principal's next request is held to the new scope, and its
open terminals and MCP sessions end (reconnecting decides again).

Examples:
  remux principal set ci --hosts env=staging
  remux principal set viewer --users deploy,www --interactive
  remux principal set ci --policy read_only,deploy     # read_only its default
  remux principal set ci --policy ''                   # back to default_policy
  remux principal set alice --no-admin --hosts 'web*' --users '*'
  remux principal set ci --admin`,
    )
    .action(async (name: string, opts: SetPrincipalOptions) => {
      const { setPrincipalCommand } = await import('../principal-commands.js');
      await setPrincipalCommand(name, opts);
    });

  principal
    .command('ls')
    .alias('list')
    .description('list principals and their scopes (never tokens or hashes)')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExamples:\n  remux principal ls\n  remux principal ls --json | jq -r \'.[] | select(.admin) | .name\'')
    .action(async (opts: { json?: boolean }) => {
      const { listPrincipalsCommand } = await import('../principal-commands.js');
      listPrincipalsCommand(opts);
    });

  completes(principal.command('rm'), { name: 'principal' })
    .alias('remove')
    .description('remove a principal: its token and web sessions stop working at once (the last admin only with --force)')
    .argument('<name>')
    .option('--force', LAST_ADMIN)
    .addHelpText('after', '\nExamples:\n  remux principal rm ci')
    .action(async (name: string, opts: RemovePrincipalOptions) => {
      const { removePrincipalCommand } = await import('../principal-commands.js');
      await removePrincipalCommand(name, opts);
    });

  completes(principal.command('rotate'), { name: 'principal' })
    .description('give a principal a new token (printed once); the old one and its web sessions stop working at once')
    .argument('<name>')
    .option('--json', 'print {"name","token"}')
    .addHelpText('after', '\nExamples:\n  remux principal rotate ci --json | jq -r .token')
    .action(async (name: string, opts: { json?: boolean }) => {
      const { rotatePrincipalCommand } = await import('../principal-commands.js');
      await rotatePrincipalCommand(name, opts);
    });
}
