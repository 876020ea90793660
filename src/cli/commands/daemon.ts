import type { Command } from 'commander';
import { examples } from '../output.js';

export interface StartOptions {
  foreground?: boolean;
  socket?: string;
  knownHosts?: string;
  auditLogDir?: string;
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** false with --no-tls. */
  tls?: boolean;
  insecureNoTls?: boolean;
}

export function registerDaemon(program: Command): void {
  const daemon = program
    .command('daemon')
    .description('the remux daemon: pooled SSH connections, breakers and rate limits, on a private Unix socket')
    .addHelpText('after', examples('remux daemon start', 'remux daemon status', 'remux daemon logs --follow', 'remux daemon stop'));

  daemon
    .command('start')
    .description('start the daemon (in the background unless --foreground)')
    .option('--foreground', 'stay in the foreground and log to stderr')
    .option('--socket <path>', 'Unix socket (default: REMUX_SOCKET, else $REMUX_HOME/run/remux.sock)')
    .option('--known-hosts <file>', 'known_hosts file for host key checks (default: REMUX_KNOWN_HOSTS, else ~/.ssh/known_hosts)')
    .option('--audit-log-dir <dir>', 'keep the audit store in DIR/audit.db (default: REMUX_AUDIT_DB, else $REMUX_HOME/audit.db)')
    .option('--listen <host:port>', 'web console and API address (default: http.listen in config.yaml, else 127.0.0.1:7777)')
    .option('--tls-cert <file>', 'PEM certificate (with --tls-key; default: one it makes, kept in $REMUX_HOME/tls)')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--no-tls', 'serve plain HTTP: on a loopback address only')
    .option('--insecure-no-tls', 'serve plain HTTP on any address (only behind something else that encrypts)')
    .addHelpText(
      'after',
      `
The web console and API are served once a principal exists (remux principal add, or remux config init).

Examples:
  remux daemon start
  remux daemon start --listen 0.0.0.0:7777 --tls-cert /etc/remux/cert.pem --tls-key /etc/remux/key.pem
  remux daemon start --foreground --known-hosts ~/.ssh/known_hosts`,
    )
    .action(async (opts: StartOptions) => {
      const { startDaemonCommand } = await import('../daemon-commands.js');
      await startDaemonCommand(opts);
    });

  daemon
    .command('stop')
    .description('stop the daemon (open connections are closed; running commands are cancelled)')
    .addHelpText('after', '\nExamples:\n  remux daemon stop')
    .option('--socket <path>', 'Unix socket of the daemon')
    .action(async (opts: { socket?: string }) => {
      const { stopDaemonCommand } = await import('../daemon-commands.js');
      await stopDaemonCommand(opts);
    });

  daemon
    .command('status')
    .description('pid, uptime, hosts connected, circuit breakers, rate-limit buckets (exit 3 when not running)')
    .addHelpText('after', "\nExamples:\n  remux daemon status\n  remux daemon status --json | jq '.hosts[] | {name, connected, breaker}'")
    .option('--socket <path>', 'Unix socket of the daemon')
    .option('--json', 'print as JSON')
    .action(async (opts: { socket?: string; json?: boolean }) => {
      const { daemonStatusCommand } = await import('../daemon-commands.js');
      await daemonStatusCommand(opts);
    });
}

export function registerStatus(program: Command): void {
  const status = program
    .command('status')
    .description('system information and health checks')
    .addHelpText('after', examples('remux status', 'remux status health || echo broken'));

  status
    // `remux status` alone is `remux status info`.
    .command('info', { isDefault: true })
    .description('version, files, policies, hosts, sandbox support, and the daemon with its rate-limit state (the default)')
    .addHelpText('after', '\nExamples:\n  remux status\n  remux status info --json | jq .daemon.rateLimit')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const { statusInfoCommand } = await import('../daemon-commands.js');
      await statusInfoCommand(opts);
    });

  const health = async (opts: { json?: boolean }): Promise<void> => {
    const { statusHealthCommand } = await import('../daemon-commands.js');
    await statusHealthCommand(opts);
  };
  status
    .command('health')
    .description('check configuration, policies, hosts file, audit chain, disk space, recordings, sandbox and daemon; exit 1 if anything fails')
    .addHelpText('after', "\nExamples:\n  remux status health && echo healthy\n  remux status health --json | jq '.checks[] | select(.ok | not)'")
    .option('--json', 'print as JSON')
    .action(health);
  // What other tools call it (brew doctor, flutter doctor).
  program
    .command('doctor')
    .description('the health checks of remux status health; exit 1 if anything fails')
    .addHelpText('after', "\nExamples:\n  remux doctor\n  remux doctor --json | jq -r '.checks[] | select(.warning) | .detail'")
    .option('--json', 'print as JSON')
    .action(health);
}
