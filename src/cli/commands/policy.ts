import type { Command } from 'commander';
import { completes } from './completion.js';
import { examples } from '../output.js';

export function registerPolicy(program: Command): void {
  const policy = program
    .command('policy')
    .description('list, inspect, validate, create and try out capability policies')
    .addHelpText('after', examples('remux policy list', 'remux policy show read_only', "remux policy check read_only -- 'cat /var/log/syslog | grep error'", 'remux policy create ci --template developer'));

  policy
    .command('list')
    .alias('ls')
    .description('list the policies in the policies file')
    .addHelpText('after', "\nExamples:\n  remux policy list\n  remux policy list --json | jq -r '.[].name'")
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const { listPolicies } = await import('../policy-commands.js');
      listPolicies(opts);
    });

  completes(policy.command('show'), { name: 'policy' })
    .description('print one policy: its rules in order, with effect, operation, resources and source line')
    .addHelpText('after', '\nExamples:\n  remux policy show read_only\n  remux policy show read_only --json')
    .argument('<name>', 'policy name')
    .option('--json', 'print as JSON')
    .action(async (name: string, opts: { json?: boolean }) => {
      const { showPolicy } = await import('../policy-commands.js');
      showPolicy(name, opts);
    });

  policy
    .command('validate')
    .description('check a policy file; errors name file:line and what is wrong (exit 2); warns of allow rules that can never match here (a path through a link)')
    .argument('<file>', 'YAML or JSON policy file')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExamples:\n  remux policy validate ~/.config/remux/policies.yaml')
    .action(async (file: string, opts: { json?: boolean }) => {
      const { validatePolicyFile } = await import('../policy-commands.js');
      validatePolicyFile(file, opts);
    });

  completes(policy.command('create'), { name: [], '--template': 'policy-template' })
    .description('add a policy made from a template to a policies file; an existing name is never overwritten')
    .argument('<name>', 'name of the new policy')
    .requiredOption('-t, --template <template>', 'restrictive | read_only | write_capable | developer | admin')
    .option('-o, --output <file>', 'file to add it to (created if absent; default: the policies file)')
    .option('-w, --workspace <dir>', "developer template: the directory the agent works in (default: ${HOME}/projects, to edit)")
    .addHelpText(
      'after',
      '\nExamples:\n  remux policy create log_reader --template read_only\n  remux policy create ops --template write_capable --output production.yaml\n' +
        '  remux policy create agent --template developer --workspace ~/src/myapp',
    )
    .action(async (name: string, opts: { template: string; output?: string; workspace?: string }) => {
      const { createPolicy } = await import('../policy-commands.js');
      createPolicy(name, opts);
    });

  completes(policy.command('check'), { name: 'policy' })
    .description('explain, stage by stage, what a policy decides for a command, without running it')
    .argument('<name>', 'policy name')
    .argument('<command...>', "the command, after --, e.g. -- 'ps aux | grep node'")
    .option('-C, --cwd <dir>', 'directory relative paths are resolved against (default: current)')
    .option('--json', 'print the decision as JSON')
    .addHelpText(
      'after',
      "\nExit status: 0 allow, 77 deny or ask (an approval would be needed), 2 rejected by the parser.\nAn allowed command whose working directory does not exist still exits 0; the working directory line says so (client run would exit 125).\n\nExamples:\n  remux policy check read_only -- 'ps aux | grep node'\n  remux policy check read_only --json -- 'cat /var/log/../../etc/shadow'",
    )
    .action(async (name: string, command: string[], opts: { cwd?: string; json?: boolean }) => {
      const { checkPolicy } = await import('../policy-commands.js');
      await checkPolicy(name, command.join(' '), opts);
    });
}
