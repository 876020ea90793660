// The caller's stdin for a command on an SSH host, and the kill switch it displaces (see ssh.ts).
//
// Without stdin, the exec channel's stdin is the remote wrapper's kill switch. With stdin, the channel's
// stdin is the command's, and the kill switch is a second exec channel on the same connection, running
// killSwitchScript: a watcher in a session of its own that blocks reading its stdin and, on EOF, sends
// TERM to the command's process group, then KILL after the grace. EOF there means remux stopped the
// command (timeout, abort, output cap) or the connection died (sshd closes the pipes of every session).
//
// Fail closed: the list never runs unguarded. Both channels open at once; the wrapper reports its
// process group (`<marker>pg N` on stderr; sshd setsid()s each session, so the login shell leads it)
// and waits for a `go` line on its stdin (sh reads a pipe a byte at a time: it takes that line and no
// more). remux hands N to the watcher, which answers `armed`; only then does remux send `go`. A kill
// switch that cannot start ends the wrapper at its gate: nothing ran. The caller's stdin flows only
// once the list started (its `<marker>run` line): a refusal before it (bwrap, a long-lived sandbox that
// is gone) leaves the stdin unread, for a retry or for nobody.
//
// The caller's stdin is read only as the channel takes it: at most INPUT_WINDOW_BYTES written and not
// yet sent, and the SSH window (the server's, 2 MiB for OpenSSH) holds ssh2 back until the command
// reads. Its end is the channel's EOF: the command's EOF, nothing else. When the command ends normally
// the watcher gets `done` and exits without signalling.
import type { ClientChannel } from 'ssh2';
import { CreditedSender, INPUT_WINDOW_BYTES } from '../exec/input-credit.js';
import type { HostStream } from './types.js';

/** The wrapper's report of its process group, after its marker. */
export const GROUP_REPORT = 'pg ';
/** After the wrapper ended, how long the watcher may take to go before we stop waiting for it. */
const WATCHER_EXIT_MS = 1000;

/** The wrapper's lines that report its process group and wait for `go` (inside wrapScript). */
export function inputGate(marker: string): string[] {
  return [`echo ${marker}${GROUP_REPORT}$$ >&2`, 'read -r g; [ "$g" = go ] || exit 125'];
}

/**
 * The watcher, run by the login shell (dash or bash): the group comes on its stdin, then `done` (the
 * command ended: nothing to do) or EOF (kill it). The KILL after the grace is left to a background
 * process, so the watcher's channel closes at once; it only fires if the group still exists.
 */
export function killSwitchScript(killGraceMs: number): string {
  return [
    'read -r g || exit 0',
    // A group id, never 0 or 1 (`kill -- -1` would signal every process of the user).
    "case $g in '' | *[!0-9]* | 0* | 1) exit 0 ;; esac",
    'echo armed',
    'read -r w',
    '[ "$w" = done ] && exit 0',
    'kill -s TERM -- -$g 2>/dev/null',
    `{ command -p sleep ${killGraceMs / 1000}; kill -0 -- -$g && kill -s KILL -- -$g; } </dev/null >/dev/null 2>&1 &`,
  ].join('\n');
}

/** What GuardedInput needs of the connection: a second channel with pipes. */
export interface WatcherOpener {
  /** `name (address:port)`, for messages. */
  readonly where: string;
  openStream(command: string, purpose?: string): Promise<HostStream>;
}

/**
 * One command's stdin and its kill switch. Call openWatcher(), attach() with the command's channel once
 * open, group() when the wrapper reports it, listStarted() at its `run` line, stop() to kill the
 * command, finish() when its channel closed, and settled() before counting its channel slot free.
 */
export class GuardedInput {
  /** Why the kill switch could not be armed, naming the host (then the list did not start). */
  failure: string | null = null;
  /** `go` was sent: the list may have started. */
  wentAhead = false;
  private channel: ClientChannel | null = null;
  private watcher: HostStream | null = null;
  private watcherGone: Promise<unknown> = Promise.resolve();
  private groupId: string | null = null;
  private armed = false;
  private over: 'stopped' | 'finished' | null = null;
  private sender: CreditedSender | null = null;

  constructor(
    private readonly source: NodeJS.ReadableStream,
    private readonly killGraceMs: number,
  ) {}

  /** Opens the kill switch's channel (once the command's was asked for). */
  openWatcher(opener: WatcherOpener): void {
    // openStream's errors name the host already.
    const failed = (err: unknown): void => this.fail(err instanceof Error ? err.message : `${opener.where}: ${String(err)}`);
    this.watcherGone = opener.openStream(killSwitchScript(this.killGraceMs), 'the kill switch for a command').then((w) => {
      this.watcherOpened(w, opener.where);
      return w.exited.then(() => {
        if (!this.armed) this.fail(`${opener.where}: the kill switch for a command ended before it was armed`);
      }, failed);
    }, failed);
  }

  /** The list started (the wrapper's `run` line): the caller's stdin flows from now on. */
  listStarted(): void {
    const channel = this.channel;
    if (!this.wentAhead || channel === null || this.sender !== null || this.over !== null) return;
    // ssh2 calls back once a chunk is inside the SSH window: only then is more read from the source.
    // A write that failed (the channel is ending) grants nothing: the command is done with its stdin.
    const sender = new CreditedSender(this.source, {
      data: (chunk) =>
        void channel.write(chunk, (err) => {
          if (!err) sender.grant(chunk.length);
        }),
      end: () => void channel.end(),
    });
    this.sender = sender;
    channel.once('close', () => sender.stop());
    sender.grant(INPUT_WINDOW_BYTES);
  }

  /** The command's channel is open. */
  attach(channel: ClientChannel): void {
    this.channel = channel;
    // A write racing the channel's end must not throw; how the command ended is told by its exit.
    channel.on('error', () => undefined);
    if (this.failure !== null || this.over === 'stopped') channel.end();
    else this.goIfReady();
  }

  /** The wrapper reported its process group (digits, checked again by the watcher). */
  group(id: string): void {
    if (this.groupId !== null || !/^[1-9][0-9]*$/.test(id) || id === '1') return;
    this.groupId = id;
    if (this.watcher !== null && this.over === null) this.watcher.write(Buffer.from(`${id}\n`));
  }

  /** remux stops the command: the kill switch fires (or, before `go`, the wrapper ends at its gate). */
  stop(): void {
    if (this.over !== null) return;
    this.over = 'stopped';
    this.sender?.stop();
    if (!this.wentAhead) this.channel?.end();
    this.watcher?.end();
  }

  /** The command's channel closed: the watcher goes without signalling anything. */
  finish(): void {
    this.sender?.stop();
    if (this.over !== null) return;
    this.over = 'finished';
    if (this.groupId !== null) this.watcher?.write(Buffer.from('done\n'));
    this.watcher?.end();
  }

  /** Resolves once the watcher's channel is gone (or after WATCHER_EXIT_MS). */
  async settled(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, WATCHER_EXIT_MS)));
    await Promise.race([this.watcherGone, late]);
    clearTimeout(timer);
  }

  private watcherOpened(w: HostStream, where: string): void {
    this.watcher = w;
    let said = '';
    w.onData((chunk) => {
      if (this.armed) return;
      said += chunk.toString();
      if (said === 'armed\n') {
        this.armed = true;
        this.goIfReady();
      } else if (!'armed\n'.startsWith(said)) this.fail(`${where}: the kill switch for a command said ${JSON.stringify(said.slice(0, 80))}`);
    });
    if (this.over !== null) return w.end();
    if (this.groupId !== null) w.write(Buffer.from(`${this.groupId}\n`));
  }

  private goIfReady(): void {
    const channel = this.channel;
    if (!this.armed || channel === null || this.wentAhead || this.over !== null) return;
    this.wentAhead = true;
    channel.write('go\n');
  }

  private fail(why: string): void {
    // Once the command went ahead or ended, a watcher that goes is no failure to start.
    if (this.wentAhead || this.failure !== null || this.over !== null) return;
    this.failure = why;
    this.channel?.end();
    this.watcher?.end();
  }
}
