// A resident executor on an SSH host: the agentless runtime's interpreter (src/runtime/, one exec
// channel) starts the same wrapper script (ssh.ts wrapScript) in the user's login shell, as sshd would
// for an exec channel, without a channel per command (issue 9: a channel open, exec request and sshd's
// fork are most of a warm command's cost). The contract stays the channel's: the shell's stdin is a
// pipe the executor closes on stop, so the wrapper's own watcher (read on fd 3 / --watch 10) kills the
// process group, TERM then KILL; its output flows through the link's window, so a slow reader pauses
// the command in its pipe. Commands with the caller's stdin (ssh-input.ts) and terminals keep channels.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { toolSource, stage0Command, type ToolSource } from '../runtime/bootstrap.js';
import { Link } from '../runtime/link.js';
import { channelTransport } from '../runtime/transports.js';
import { SshError, type ExecExit, type ExecOptions, type SshConnection } from './ssh.js';

/** Chunks in flight per command before the host holds the rest in the pipe (as an SSH window would). */
const WINDOW = 256 * 1024;
/** The oldest Python the runtime supports. */
const MIN_PYTHON = [3, 8] as const;

// Runs `shell -c script` in its own process group (rt.spawn: a cancel kills it whole) with stdin a
// pipe kept open until `release` closes it: the wrapper's kill switch. The environment is the
// interpreter's, which is what sshd gives an exec channel.
const SHELL_TOOL = `
import base64, os, pwd, selectors, subprocess, threading
P = {}
# Releases that came before their command started (both are calls, on different threads).
R = set()
K = threading.Lock()
def shell():
    return pwd.getpwuid(os.getuid()).pw_shell or '/bin/sh'
def release(token):
    with K:
        p = P.get(token)
        if p is None:
            if len(R) > 1000:
                R.clear()
            R.add(token)
            return
    try:
        p.stdin.close()
    except OSError:
        pass
def run(token, sh, script):
    p = rt.spawn([sh, '-c', script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with K:
        P[token] = p
        early = token in R
        R.discard(token)
    if early:
        p.stdin.close()
    try:
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ, 1)
        sel.register(p.stderr, selectors.EVENT_READ, 2)
        while sel.get_map():
            for key, _ in sel.select():
                data = os.read(key.fd, 65536)
                if data:
                    yield [key.data, base64.b64encode(data).decode()]
                else:
                    sel.unregister(key.fileobj)
        code = p.wait()
    finally:
        with K:
            P.pop(token, None)
        try:
            p.stdin.close()
        except OSError:
            pass
    return {'code': code if code >= 0 else None, 'signal': -code if code < 0 else None}
`;
let tool: ToolSource | null = null;
const shellTool = (): ToolSource => (tool ??= toolSource('RemuxShell', SHELL_TOOL));

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

export class ShellExecutor {
  private constructor(
    private readonly link: Link,
    private readonly shell: string,
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
      const shell = await link.call<never, string>(shellTool(), 'shell', [], { timeoutMs: 10_000 }).result;
      const connection = { lost: null as string | null };
      conn.onClose((reason) => (connection.lost = reason));
      return new ShellExecutor(link, shell, conn.endpoint.name, connection, stream.exited.catch(() => undefined));
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
   * closed, then after stopGraceMs the whole group killed). Rejects with an SshError 'dropped' when
   * the executor dies under the command: its outcome is unknown and it is never run again.
   */
  async exec(command: string, opts: ExecOptions): Promise<ExecExit> {
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
      void this.link.call(shellTool(), 'release', [token]).result.catch(() => undefined);
      forceKill = setTimeout(() => cancel.abort(), opts.stopGraceMs ?? 0);
    };
    const call = this.link.call<[1 | 2, string], { code: number | null; signal: number | null }>(shellTool(), 'run', [token, this.shell, command], { signal: cancel.signal, window: WINDOW });
    if (opts.stop?.aborted) stop();
    else opts.stop?.addEventListener('abort', stop, { once: true });
    try {
      for await (const [fd, data] of call) {
        (fd === 1 ? opts.onStdout : opts.onStderr)(Buffer.from(data, 'base64'));
        const flow = opts.flow;
        if (flow?.full()) await new Promise<void>((room) => flow.onRoom(room));
      }
      const exit = await call.result;
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
