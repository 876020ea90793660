import type { Command } from 'commander';
import { AUDIT_LEVELS } from '../../audit/types.js';
import { completes } from './completion.js';
import { examples } from '../output.js';

export interface LsOptions {
  follow?: boolean;
  level?: string;
  host?: string;
  principal?: string;
  limit?: string;
  before?: string;
  json?: boolean;
}

function lsCommand(cmd: Command): Command {
  return completes(cmd, { '--level': AUDIT_LEVELS })
    .option('-f, --follow', 'keep printing new actions as they are recorded (Ctrl-C to stop)')
    .option('-l, --level <level>', 'info (all) | warn (warn, error, deny) | error | deny', undefined)
    .option('--host <name>', 'only actions on this host')
    .option('--principal <name>', 'only actions by this principal')
    .option('-n, --limit <n>', 'show the newest N actions (default 50; 0 = all)')
    .option('--before <id>', 'only actions older than this one (the oldest ID of the page before)')
    .option('--json', 'one JSON object per action (NDJSON)')
    .addHelpText('after', '\nExamples:\n  remux audit ls\n  remux audit ls --level deny --json\n  remux audit ls --follow\n  remux audit ls --limit 20 --before 1234   # the 20 before action 1234\n\nA row is cut to a line: remux audit show ID prints one action whole (argv, rule, reason and enforcement,\napproval, exit status, durations, error).')
    .action(async (opts: LsOptions) => {
      const { listAudit } = await import('../audit-commands.js');
      await listAudit(opts);
    });
}

export function registerAudit(program: Command): void {
  const audit = program
    .command('audit')
    .description('read, follow, verify and export the audit trail')
    .addHelpText('after', examples('remux audit ls --level deny', 'remux audit ls --follow', 'remux audit show 1234', 'remux audit verify', 'remux audit export --jsonl > audit.jsonl'));

  lsCommand(audit.command('ls').alias('list').description('list recorded actions, oldest first'));

  audit
    .command('show')
    .description('print one recorded action whole: argv, decision, rule, reason and enforcement, approval, exit status, durations, error')
    .argument('<id>', 'an action ID, as audit ls shows it')
    .option('--json', 'print it as one JSON object (the fields of audit ls --json)')
    .addHelpText('after', examples('remux audit show 1234', 'remux audit show 1234 --json | jq .argv'))
    .action(async (id: string, opts: { json?: boolean }) => {
      const { showAudit } = await import('../audit-commands.js');
      showAudit(id, opts);
    });

  audit
    .command('verify')
    .description('check the hash chain of the audit store; exit 1 and the first bad record if it was edited, deleted or reordered')
    .addHelpText('after', '\nExamples:\n  remux audit verify\n  remux audit verify --json | jq .head   # keep the head elsewhere: removal of the newest records shows against it\n  remux audit verify --anchor 42:9f86d081…   # exit 1 unless record 42 is still there, unchanged')
    .option('--json', 'print the result as JSON')
    .option('--anchor <seq:hash>', 'a head kept from an earlier verify: the chain must still hold that record, unchanged')
    .action(async (opts: { json?: boolean; anchor?: string }) => {
      const { verifyAudit } = await import('../audit-commands.js');
      verifyAudit(opts);
    });

  audit
    .command('export')
    .description('write every audit record with its hashes, for archiving or external verification')
    .option('--jsonl', 'JSON lines (the only format, and the default)')
    .addHelpText(
      'after',
      "\nExamples:\n  remux audit export --jsonl > audit-$(date +%F).jsonl\nWith REMUX_TOKEN of a principal that is not an admin: only its own actions' records, without the hashes\n(a part of the chain cannot be verified, and its neighbours' hashes are other principals').",
    )
    .action(async () => {
      const { exportAudit } = await import('../audit-commands.js');
      exportAudit();
    });

  // The seed's `remux daemon logs` keeps working; `daemon start|stop|status` arrive with the daemon.
  const daemon = program.commands.find((c) => c.name() === 'daemon') ?? program.command('daemon').description('the remux daemon');
  lsCommand(daemon.command('logs').description('alias of `remux audit ls`'));
}
