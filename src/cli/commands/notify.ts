import type { Command } from 'commander';
import { completes } from './completion.js';
import { examples } from '../output.js';
import { PRIORITIES } from '../../notify/priority.js';

export function registerNotify(program: Command): void {
  const notify = program
    .command('notify')
    .description('send notifications on the channels of config.yaml (notify.channels)')
    .addHelpText('after', examples('remux notify test', "remux notify send --title 'Deploy done' --message 'v2.3 everywhere' --priority low"));

  notify
    .command('test')
    .description('send a test message on every channel and say, per channel, whether it was delivered')
    .option('--json', 'print one result per channel as JSON')
    .addHelpText('after', '\nExit status 1 when a channel failed.\n\nExamples:\n  remux notify test\n  remux notify test --json | jq \'.[] | select(.ok | not)\'')
    .action(async (opts: { json?: boolean }) => {
      const { notifyTestCommand } = await import('../notify-commands.js');
      await notifyTestCommand(opts);
    });

  completes(notify.command('send'), { '--priority': PRIORITIES })
    .description('send a message of your own on every channel')
    .requiredOption('--title <title>', 'the title')
    .requiredOption('--message <message>', 'the text')
    .option('--priority <priority>', `${PRIORITIES.join(' | ')} (channels map it to their own scale)`, 'normal')
    .option('--url <url>', 'a link the message opens')
    .option('--json', 'print one result per channel as JSON')
    .addHelpText('after', '\nExamples:\n  remux notify send --title "Deploy done" --message "web1..web4 on v2.3" --priority low\n  remux notify send --title "Disk full" --message "db1: / at 97%" --priority high --url https://grafana.example/d/disk')
    .action(async (opts: { title: string; message: string; priority: string; url?: string; json?: boolean }) => {
      const { notifySendCommand } = await import('../notify-commands.js');
      await notifySendCommand(opts);
    });
}

export function registerApprovals(program: Command): void {
  const approvals = program
    .command('approvals')
    .description('questions waiting for a person: policy `ask` decisions and agent prompts; answer them here, in the console or from a notification')
    .addHelpText('after', examples('remux approvals ls', 'remux approvals approve 2a8b', 'remux approvals deny 2a8b'));

  approvals
    .command('ls')
    .alias('list')
    .description('list open approvals (newest first)')
    .option('-a, --all', 'also answered, expired and cancelled ones')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExamples:\n  remux approvals ls\n  remux approvals ls --all --json | jq \'.[] | {id, status, answer, answeredBy}\'')
    .action(async (opts: { all?: boolean; json?: boolean }) => {
      const { listApprovalsCommand } = await import('../notify-commands.js');
      await listApprovalsCommand(opts);
    });

  for (const [verb, effect] of [
    ['approve', 'allow'],
    ['deny', 'deny'],
  ] as const) {
    completes(approvals.command(verb), { id: 'approval' })
      .description(`${verb} an open approval (an ID prefix is enough when it is unique)`)
      .argument('<id>')
      .addHelpText('after', `\nExamples:\n  remux approvals ${verb} 2a8b`)
      .action(async (id: string) => {
        const { answerApprovalCommand } = await import('../notify-commands.js');
        await answerApprovalCommand(id, { effect });
      });
  }

  completes(approvals.command('answer'), { id: 'approval', option: 'approval-option' })
    .description("choose one of an approval's own options (an agent prompt's \"2\", …); see them with ls")
    .argument('<id>')
    .argument('<option>')
    .addHelpText('after', '\nExamples:\n  remux approvals answer 2a8b 2')
    .action(async (id: string, option: string) => {
      const { answerApprovalCommand } = await import('../notify-commands.js');
      await answerApprovalCommand(id, { option });
    });
}
