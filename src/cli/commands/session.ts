import type { Command } from 'commander';
import { completes } from './completion.js';
import { examples, UsageError } from '../output.js';
import type { ClientHost, Runner } from '../client-commands.js';
import type { ListOptions } from '../recording-commands.js';
import type { Invocation } from '../invocation.js';

export interface SessionOptions {
  host: string;
  user?: string;
  /** false with --no-daemon. */
  daemon?: boolean;
}

export interface LsOptions {
  host?: string;
  json?: boolean;
  refresh?: boolean;
  daemon?: boolean;
}

export interface NewOptions extends SessionOptions {
  cmd?: string;
  policy?: string;
  attach?: boolean;
  json?: boolean;
}

export interface AttachOptions extends SessionOptions {
  readOnly?: boolean;
}

export interface SendOptions extends SessionOptions {
  literal?: boolean;
}

export interface CaptureOptions extends SessionOptions {
  lines?: string;
  json?: boolean;
}

export interface KillOptions extends SessionOptions {
  force?: boolean;
}

function target(cmd: Command): Command {
  return cmd
    .argument('<name>', 'session name: 1-64 letters, digits, "_" or "-"')
    .option('-H, --host <host>', 'the host (one name; localhost, the default, is this machine)', 'localhost')
    .option('-u, --user <user>', "tmux user (one of the host's tmux_users; default: the login user)")
    .option('--no-daemon', 'run in this process even when a daemon is running');
}

/** `session new NAME` as parsed, without --attach: the part a daemon makes (values joined with `=`, the name after `--`: none is taken for an option). */
function creationArgs(name: string, opts: NewOptions): string[] {
  const given = { host: opts.host, user: opts.user, cmd: opts.cmd, policy: opts.policy };
  return ['session', 'new', ...Object.entries(given).flatMap(([flag, value]) => (value === undefined ? [] : [`--${flag}=${value}`])), '--', name];
}

/** `host` says where the actions run: the CLI process (or a daemon it forwards to), or the daemon itself. */
export function registerSession(program: Command, host: () => Promise<ClientHost>): void {
  const session = program
    .command('session')
    .description('tmux sessions on your hosts: list, create, attach, send keys, capture, kill (audited); recordings, played back')
    .addHelpText('after', examples('remux session ls', "remux session new build --host web1 --cmd 'make test'", 'remux session attach build --host web1', 'remux session recordings'));
  const run = async (opts: { daemon?: boolean }, work: (inv: Invocation, runner: Runner) => Promise<number>): Promise<void> => {
    const where = await host();
    // tmux needs no policy: only a startup command does, and asks for the policies file when it comes.
    where.invocation.setExitCode(await where.run({ ...opts, policiesWhenNeeded: true }, (runner) => work(where.invocation, runner)));
  };

  completes(session.command('ls'), { '--host': 'hosts' })
    .alias('list')
    .description('sessions per host and tmux user: windows, created, last activity, clients attached (from the daemon\'s cache)')
    .option('-H, --host <selector>', 'hosts: a name, a list a,b, labels env=prod, a glob web*, or all (default: this machine, then every inventory host)')
    .option('--refresh', 'ask the hosts now instead of reading the cache')
    .option('--json', 'print one JSON document')
    .option('--no-daemon', 'run in this process even when a daemon is running')
    .addHelpText(
      'after',
      `
Examples:
  remux session ls
  remux session ls --host web1
  remux session ls --host env=prod --json | jq '.[].users[] | select(.state == "sudo_refused")'

A user row says "no server" when no tmux server runs for it, "sudo refused" when sudo -n -u USER
is not allowed: empty and forbidden are different facts. Exit status 255 if a host was unreachable.`,
    )
    .action(async (opts: LsOptions) => {
      const { listSessions } = await import('../session-commands.js');
      await run(opts, (inv, runner) => listSessions(inv, runner, opts));
    });

  // A new name: nothing to offer (not even files).
  target(completes(session.command('new'), { name: [] }))
    .description('create a detached session, optionally running a command checked against the policy like client run')
    .option('-c, --cmd <command>', 'startup command (parsed strictly and checked against the policy; default: the login shell)')
    .option('-p, --policy <name>', 'policy for the startup command (default: default_policy in config.yaml); where it uses the OS sandbox, the command runs in one for as long as the session lives')
    .option('-a, --attach', 'attach to it once created')
    .option('--json', 'print {host, user, session, command, policy, enforcement, attach} as JSON')
    .addHelpText(
      'after',
      `
Examples:
  remux session new build --host web1
  remux session new tests --host web1 --user deploy --cmd 'npm test' --policy dev
  remux session new work --attach                 # on this machine (--host localhost)
  remux session new build --host web1 --cmd 'make test' --json | jq -r .attach

Exit status: 0 created; 2 bad name, user or command syntax; 77 command denied by the policy;
1 tmux refused (a session of that name exists); 255 host unreachable.`,
    )
    .action(async (name: string, opts: NewOptions) => {
      const { attachSession, newSession } = await import('../session-commands.js');
      if (opts.attach && opts.json) throw new UsageError('--attach and --json do not go together', 'create it with --json, then attach with: remux session attach NAME --host HOST');
      if (!opts.attach) return run(opts, (inv, runner) => newSession(inv, runner, name, opts));
      // Attaching needs this process's terminal: the attach runs here (a daemon hands the whole line back).
      // A running daemon still makes the session, so that its recorder (sessions.record: sessions) has it
      // whole from its start; this process then attaches. Without one, both are done here.
      const where = await host();
      const made = opts.daemon === false ? null : await where.forward(creationArgs(name, opts));
      if (made === null) return run({ ...opts, daemon: false }, (inv, runner) => newSession(inv, runner, name, opts));
      if (made !== 0) return where.invocation.setExitCode(made);
      return run({ ...opts, daemon: false }, (inv, runner) => attachSession(inv, runner, name, { host: opts.host, ...(opts.user !== undefined ? { user: opts.user } : {}) }));
    });

  target(completes(session.command('attach'), { name: 'tmux-session' }))
    .description("attach this terminal to a session (detach with tmux's prefix, then d)")
    .option('-r, --read-only', 'watch without typing (tmux attach -r)')
    .addHelpText(
      'after',
      `
Examples:
  remux session attach build --host web1
  remux session attach build --host web1 --read-only

Runs in this process (it needs your terminal), through the same audited path as every action.`,
    )
    .action(async (name: string, opts: AttachOptions) => {
      const { attachSession } = await import('../session-commands.js');
      await run({ ...opts, daemon: false }, (inv, runner) => attachSession(inv, runner, name, opts));
    });

  target(completes(session.command('send'), { name: 'tmux-session' }))
    .description('type into a session: text as is, key names (Enter, C-c, Escape, Tab, Up, F1, M-x …) as keys')
    .argument('<keys...>', 'after --: text and key names, in order')
    .option('-l, --literal', 'every word is text, even one that looks like a key name')
    .addHelpText(
      'after',
      `
Examples:
  remux session send build --host web1 -- 'npm test' Enter
  remux session send build --host web1 -- C-c
  remux session send notes --host web1 --literal -- Enter`,
    )
    .action(async (name: string, keys: string[], opts: SendOptions) => {
      const { sendKeys } = await import('../session-commands.js');
      await run(opts, (inv, runner) => sendKeys(inv, runner, name, keys, opts));
    });

  target(completes(session.command('capture'), { name: 'tmux-session' }))
    .description("print what a session's pane shows")
    .option('-n, --lines <n>', 'the last N lines, scrollback included (default: the visible pane)')
    .option('--json', 'print {host, user, session, text} as JSON (as MCP capture_session answers)')
    .addHelpText('after', '\nExamples:\n  remux session capture build --host web1\n  remux session capture build --host web1 --lines 200\n  remux session capture build --host web1 --json | jq -r .text')
    .action(async (name: string, opts: CaptureOptions) => {
      const { captureSession } = await import('../session-commands.js');
      await run(opts, (inv, runner) => captureSession(inv, runner, name, opts));
    });

  target(completes(session.command('kill'), { name: 'tmux-session' }))
    .description('kill a session and everything running in it; asks you to type its name')
    .option('-f, --force', 'do not ask')
    .addHelpText('after', '\nExamples:\n  remux session kill build --host web1\n  remux session kill build --host web1 -f')
    .action(async (name: string, opts: KillOptions) => {
      const { killSession } = await import('../session-commands.js');
      await run(opts, (inv, runner) => killSession(inv, runner, name, opts));
    });

  completes(session.command('recordings'), { '--before': 'recording' })
    .description('the recordings in $REMUX_HOME/recordings (attaches, or whole sessions with sessions.record: sessions), newest first')
    .option('--json', 'print one JSON document')
    .option('-n, --limit <n>', 'only the newest N (default 0: all)')
    .option('--before <id>', 'only those older than this recording (the last one of the page before)')
    .addHelpText(
      'after',
      '\nExamples:\n  remux session recordings\n  remux session recordings --limit 20\n  remux session recordings --limit 20 --before 20261205T021044Z-3f2a9c0d11be   # the next 20\n  remux session recordings --json | jq \'.[] | select(.host == "web1") | .id\'',
    )
    .action(async (opts: ListOptions) => {
      const { listRecordingsCommand } = await import('../recording-commands.js');
      listRecordingsCommand(opts);
    });

  completes(session.command('play'), { id: 'recording' })
    .description('play a recording back in this terminal (its output with its timing; at once when stdout is not a terminal)')
    .argument('<id>', 'a recording id, or a unique start of one')
    .option('-s, --speed <factor>', 'play this many times faster', '1')
    .option('-i, --idle-limit <seconds>', 'cut longer pauses to this', '2')
    .addHelpText('after', '\nExamples:\n  remux session play 20261205T0210\n  remux session play 20261205T0210 --speed 4\n  remux session play 20261205T021044Z-3f2a9c0d11be > build.txt   # the output at once')
    .action(async (id: string, opts: { speed?: string; idleLimit?: string }) => {
      const { playCommand } = await import('../recording-commands.js');
      await playCommand(id, opts);
    });
}
