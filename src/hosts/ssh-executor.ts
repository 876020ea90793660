// A resident executor on an SSH host: the agentless runtime's interpreter (src/runtime/, one exec
// channel) runs commands as sshd would for an exec channel, without a channel per command (issue 9: a
// channel open, exec request and sshd's fork are most of a warm command's cost). A command list starts
// the same wrapper script (ssh.ts wrapScript) in the user's login shell, its stdin a pipe the executor
// closes on stop, so the wrapper's own watcher (read on fd 3 / --watch 10) kills the process group,
// TERM then KILL. Where the shell is only glue, it is left out (its start is most of what is left):
// - a single unsandboxed program starts directly, doing what the wrapper would: the secure PATH, its
//   working directory (or the wrapper's refusal), its own process group, TERM to what it leaves in the
//   group when it ends, TERM then KILL on stop, its status as the shell reports it; the runtime's watcher
//   process kills its group if the interpreter dies under it;
// - a list for a long-lived sandbox gets holderWrapScript's checks here (working directory shown, the
//   holder's namespaces opened and its processes the same ones), then the sandbox's stage server
//   (remux-sandbox-enter --serve, one per holder) forks it inside and the executor watches it as a
//   single program; or, when there is no server, remux-sandbox-enter runs directly with the same
//   arguments and descriptors, its --watch pipe closed to stop it.
// The host side of all three is src/runtime/remote/tools/executor.py. Output flows through the link's
// window, so a slow reader pauses the command in its pipe. Commands with the caller's stdin
// (ssh-input.ts) and terminals keep channels.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { toolSource, stage0Command, remoteSource, type ToolSource } from '../runtime/bootstrap.js';
import { Link } from '../runtime/link.js';
import { channelTransport } from '../runtime/transports.js';
import { SshError, type ExecExit, type ExecOptions, type ResidentRun, type SshConnection } from './ssh.js';

/** Chunks in flight per command before the host holds the rest in the pipe (as an SSH window would). */
const WINDOW = 256 * 1024;
/** The oldest Python the runtime supports. */
const MIN_PYTHON = [3, 8] as const;

let tool: ToolSource | null = null;
const executorTool = (): ToolSource => (tool ??= toolSource('RemuxExecutor', `${remoteSource('tools/exec.py')}\n${remoteSource('tools/executor.py')}`));

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

export class ShellExecutor {
  private constructor(
    private readonly link: Link,
    private readonly shell: string,
    /** Single programs may start without the shell (see shell() in tools/executor.py). */
    private readonly direct: boolean,
    private readonly where: string,
    /** Why the connection closed, once it did: a command lost with it says so, as on a channel. */
    private readonly connection: { lost: string | null },
    /** Settles when its channel is gone (its slot is free). */
    readonly ended: Promise<unknown>,
  ) {}

  /** Starts the interpreter on its own exec channel (not counted in conn.channels: no command); null when the host cannot have one. */
  static async start(conn: SshConnection, python = 'python3'): Promise<ShellExecutor | null> {
    const stream = await conn.openStream(stage0Command(python), 'the resident executor', true);
    let link: Link;
    try {
      link = await Link.open(channelTransport(stream, conn.endpoint.name));
    } catch {
      // No python3, or one that cannot run the runtime: the channel is already gone with it.
      return null;
    }
    const version = (link.hello?.py ?? '').split('.').map(Number);
    const [major = 0, minor = 0] = version;
    if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1])) {
      link.close();
      return null;
    }
    try {
      const [shell, direct] = await link.call<never, [string, boolean]>(executorTool(), 'shell', [], { timeoutMs: 10_000 }).result;
      const connection = { lost: null as string | null };
      conn.onClose((reason) => (connection.lost = reason));
      return new ShellExecutor(link, shell, direct, conn.endpoint.name, connection, stream.exited.catch(() => undefined));
    } catch {
      link.close();
      return null;
    }
  }

  /** Commands running through it now (a connection lost under them is the host's failure, as with channels). */
  running = 0;

  get closed(): boolean {
    return this.link.closed;
  }

  close(): void {
    this.link.close();
  }

  /**
   * conn.exec's contract without a channel: streams output, honours opts.flow and opts.stop (stdin
   * closed, then after stopGraceMs the whole group killed). With `program` (when this host can), that
   * program runs without the shell, saying on stderr what the wrapper would (program.marker). Rejects
   * with an SshError 'dropped' when the executor dies under the command: its outcome is unknown and it
   * is never run again.
   */
  async exec(command: () => string, opts: ExecOptions, how: ResidentRun | null = null): Promise<ExecExit> {
    if (opts.takeStdin || opts.input) throw new TypeError('the resident executor does not take the caller\'s stdin; such commands use a channel');
    if (this.connection.lost !== null) throw new SshError(this.connection.lost, 'dropped');
    // Nothing ran: the caller may take a channel instead.
    if (this.link.closed) throw new SshError(`${this.where}: the resident executor has ended`, 'channel');
    const token = randomBytes(8).toString('hex');
    this.running++;
    const cancel = new AbortController();
    let forceKill: NodeJS.Timeout | undefined;
    let stopped = false;
    const stop = (): void => {
      stopped = true;
      void this.link.call(executorTool(), 'release', [token]).result.catch(() => undefined);
      forceKill = setTimeout(() => cancel.abort(), opts.stopGraceMs ?? 0);
    };
    const direct = how !== null && 'program' in how && this.direct ? how.program : null;
    const entered = how !== null && 'enter' in how ? how.enter : null;
    const [method, args]: [string, unknown[]] = direct
      ? ['program', [token, direct.argv, direct.cwd, direct.securePath, direct.killGraceMs / 1000]]
      : entered
        ? ['enter', [token, entered.holder, entered.cwd, entered.securePath, entered.marker, entered.killGraceMs, entered.argv, entered.script, entered.namespaces, entered.passedEnv, entered.helperFd]]
        : ['script', [token, this.shell, command()]];
    const marker = direct?.marker ?? entered?.marker ?? null;
    const call = this.link.call<[1 | 2, Buffer], Status | { refused: string }>(executorTool(), method, args, { signal: cancel.signal, window: WINDOW });
    // The wrapper's announcement that the program starts, before anything it writes (in a sandbox, the helper or the list says it).
    let announced = direct === null;
    const announce = (): void => {
      if (!announced) opts.onStderr(Buffer.from(`${marker}run\n`));
      announced = true;
    };
    if (opts.stop?.aborted) stop();
    else opts.stop?.addEventListener('abort', stop, { once: true });
    try {
      for await (const [fd, data] of call) {
        announce();
        (fd === 1 ? opts.onStdout : opts.onStderr)(data);
        const flow = opts.flow;
        if (flow?.full()) await new Promise<void>((room) => flow.onRoom(room));
      }
      const exit = await call.result;
      if ('refused' in exit) {
        // The wrapper's refusal, in its words.
        opts.onStderr(Buffer.from(`${marker}${exit.refused}\n`));
        return { code: 125, signal: null };
      }
      announce();
      return { code: exit.code, signal: exit.signal === null ? null : (SIGNAL_NAMES.get(exit.signal) ?? null) };
    } catch (err) {
      // Killed after the grace, as a channel closed after stop: no status.
      if (stopped && cancel.signal.aborted) return { code: null, signal: null };
      // The link notices a lost connection before ssh2 reports it closed: give it a moment to.
      await new Promise((r) => setImmediate(r));
      if (this.connection.lost !== null) throw new SshError(this.connection.lost, 'dropped');
      throw new SshError(`${this.where}: the resident executor failed during the command (${(err as Error).message}); the command's outcome is unknown`, 'dropped');
    } finally {
      this.running--;
      clearTimeout(forceKill);
      opts.stop?.removeEventListener('abort', stop);
    }
  }
}

type Status = { code: number | null; signal: number | null };
