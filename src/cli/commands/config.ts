import type { Command } from 'commander';
import { examples } from '../output.js';

export function registerConfig(program: Command): void {
  const config = program
    .command('config')
    .description('create and inspect remux configuration')
    .addHelpText('after', examples('remux config init', 'remux config show --json'));

  config
    .command('init')
    .description('create $REMUX_HOME with config.yaml, policies.yaml, an admin principal (its token printed once) and the audit store; existing files are kept')
    .option('--json', 'print what was created as JSON')
    .addHelpText('after', '\nExamples:\n  remux config init\n  REMUX_HOME=/etc/remux remux config init')
    .action(async (opts: { json?: boolean }) => {
      const { initConfig } = await import('../config-files.js');
      const report = initConfig();
      if (opts.json) {
        const { printJson } = await import('../output.js');
        printJson(report);
        return;
      }
      for (const f of report.files) process.stdout.write(`${f.status === 'created' ? 'created' : 'kept   '}  ${f.path}\n`);
      if (report.admin) {
        process.stdout.write(`\nprincipal ${report.admin.name}: token (shown only now; keep it, e.g. in a password manager):\n${report.admin.token}\n`);
      }
      process.stdout.write(`\nNext: remux policy list, then remux client run localhost -- 'uptime'\n`);
    });

  config
    .command('show')
    .description('print the effective configuration: files, settings, policies, sandbox support')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExamples:\n  remux config show\n  remux config show --json | jq .policies')
    .action(async (opts: { json?: boolean }) => {
      const { describeConfig } = await import('../config-files.js');
      const { printJson } = await import('../output.js');
      const view = describeConfig();
      if (opts.json) return printJson(view);
      const out = (k: string, v: unknown): boolean => process.stdout.write(`${k.padEnd(16)} ${String(v)}\n`);
      out('home', view.home);
      out('config', view.files.config.exists ? view.files.config.path : `${view.files.config.path} (absent: defaults)`);
      out('policies', `${view.files.policies.path}${view.files.policies.exists ? '' : ' (absent: run remux config init)'}`);
      out('audit store', view.files.audit.path);
      out('principals', view.principals.length > 0 ? `${view.principals.join(', ')} (${view.files.principals.path})` : 'none: the web console and API stay off (remux principal add)');
      out('default policy', view.config.default_policy);
      out('principal', view.principal);
      out('timeout', view.config.exec.timeout_seconds === null ? 'none' : `${view.config.exec.timeout_seconds}s`);
      out('secure PATH', view.config.exec.secure_path);
      out('pipefail', view.config.exec.pipefail);
      out('policies', view.policies.join(', ') || '(none)');
      out('sandbox', view.sandbox.ok ? `bubblewrap ${view.sandbox.version ?? ''}`.trim() : `unavailable (${view.sandbox.reason ?? 'unknown'})`);
      for (const [name, value] of Object.entries(view.environment)) out(name, value);
    });
}
