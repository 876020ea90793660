import { Option, type Command } from 'commander';
import type { DaemonStartOptions } from '../../gateway/protocol.js';
import { examples } from '../output.js';

export interface StartOptions extends DaemonStartOptions {
  foreground?: boolean;
  socket?: string;
  /** Given by `daemon start` to the daemon it starts in the background (see there). */
  detached?: boolean;
}

export function registerDaemon(program: Command): void {
  const daemon = program
    .command('daemon')
    .description('the remux daemon: pooled SSH connections, breakers and rate limits, on a private Unix socket')
    .addHelpText('after', examples('remux daemon start', 'remux daemon status', 'remux daemon restart', 'remux daemon logs --follow', 'remux daemon stop'));

  // restart takes start's options (but --foreground): the same words mean the same daemon.
  const startOptions = (cmd: Command): Command =>
    cmd
      .option('--socket <path>', 'Unix socket (default: REMUX_SOCKET, else $REMUX_HOME/run/remux.sock)')
      .option('--known-hosts <file>', 'known_hosts file for host key checks (default: REMUX_KNOWN_HOSTS, else ~/.ssh/known_hosts)')
      .option('--audit-log-dir <dir>', 'keep the audit store in DIR/audit.db (default: REMUX_AUDIT_DB, else $REMUX_HOME/audit.db)')
      .option('--listen <host:port>', 'web console and API address (default: http.listen in config.yaml, else 127.0.0.1:7777)')
      .option('--tls-cert <file>', 'PEM certificate (with --tls-key; default: one it makes, kept in $REMUX_HOME/tls)')
      .option('--tls-key <file>', 'PEM private key for --tls-cert')
      .option('--no-tls', 'serve plain HTTP: on a loopback address only')
      .option('--insecure-no-tls', 'serve plain HTTP on any address (only behind something else that encrypts)');

  startOptions(
    daemon
      .command('start')
      .description('start the daemon (in the background unless --foreground)')
      .option('--foreground', 'stay in the foreground and log to stderr')
      // Only for the daemon that `daemon start` starts in the background: `restart` may stop and start
      // that one; one started in the foreground belongs to what started it (a terminal, systemd).
      .addOption(new Option('--detached').hideHelp()),
  )
    .addHelpText(
      'after',
      `
The web console and API are served once a principal exists (remux principal add, or remux config init).

One daemon serves a REMUX_HOME: a start while one runs, on whatever socket, is refused, naming it
($REMUX_HOME/run/daemon.json: pid, socket, start time; it holds $REMUX_HOME/run/daemon.lock while it
runs). status, stop and restart find it there when config.yaml has named another socket since.

Examples:
  remux daemon start
  remux daemon start --listen 0.0.0.0:7777 --tls-cert /etc/remux/cert.pem --tls-key /etc/remux/key.pem
  remux daemon start --foreground --known-hosts ~/.ssh/known_hosts`,
    )
    .action(async (opts: StartOptions) => {
      const { startDaemonCommand } = await import('../daemon-commands.js');
      await startDaemonCommand(opts);
    });

  startOptions(
    daemon
      .command('restart')
      .description('stop the daemon and start it again, to apply a changed config.yaml (running commands are cancelled; tmux and agent sessions go on)'),
  )
    .addHelpText(
      'after',
      `
The daemon reads config.yaml only when it starts (policies.yaml, principals.yaml and hosts.yaml it
re-reads when they change); remux daemon status and remux doctor say when config.yaml has changed since.

Before stopping anything, restart checks that a new daemon would start: config.yaml, policies.yaml,
principals.yaml, the console's options and certificate, and that the console's address, when it
is not the running daemon's, is free. If one does not load, it says where (file:line), exits 2 and
leaves the running daemon as it was.

Without options it starts the daemon again with the options it was started with (as shown by remux
daemon status --json, .startOptions); with any (--socket aside), with those alone. Not running: it
is started. A daemon started with --foreground (in a terminal, by systemd) is left to what started
it: restart refuses it (exit 2).

What a restart ends, as stop does: commands running through the daemon (cancelled on their hosts),
the browser's logins and attaches (log in and attach again), MCP sessions through the daemon (the
client starts them again), whole-session recordings (sessions.record: sessions; not resumed). What
goes on: tmux sessions and remux code agent sessions, which the new daemon finds again, and remux
session attach in a terminal.

Exit status: 0 when the new daemon answers; 2 when a file or an option would keep it from starting
(nothing was stopped); 1 when it did not start (its log's last lines are shown).

Examples:
  vi ~/.config/remux/config.yaml && remux daemon restart
  remux daemon restart --listen 0.0.0.0:7777 --tls-cert /etc/remux/cert.pem --tls-key /etc/remux/key.pem`,
    )
    .action(async (opts: StartOptions) => {
      const { restartDaemonCommand } = await import('../daemon-commands.js');
      await restartDaemonCommand(opts);
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
    .description('pid, uptime, whether config.yaml changed since it started, hosts connected, circuit breakers, rate-limit buckets (exit 3 when not running)')
    .addHelpText('after', "\nExamples:\n  remux daemon status\n  remux daemon status --json | jq '.hosts[] | {name, connected, breaker}'\n  remux daemon status --json | jq -r 'select(.config.changed) | .config.message'")
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
