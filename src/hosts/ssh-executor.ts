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
//   holder's namespaces opened and its processes the same ones), then remux-sandbox-enter runs directly
//   with the same arguments and descriptors, its --watch pipe closed to stop it.
// Output flows through the link's window, so a slow reader pauses the command in its pipe. Commands with
// the caller's stdin (ssh-input.ts) and terminals keep channels.
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

// Appended to the runtime's Exec tool (tools/exec.py: _spawn, _pump, _reap). A release may come before
// its command has started (both are calls, on different threads): it is kept and applied at the start.
const EXECUTOR_TOOL = `
import errno, fcntl, pwd
P = {}
R = set()
K = threading.Lock()
def shell():
    # The login shell, and whether a program can run without it: a pidfd tells when the program ends
    # while what it left in its group still holds its pipes (Python 3.9, Linux 5.3).
    try:
        os.close(os.pidfd_open(os.getpid()))
        direct = True
    except (AttributeError, OSError):
        direct = False
    return [pwd.getpwuid(os.getuid()).pw_shell or '/bin/sh', direct]
def _stoppable(token, stop):
    with K:
        P[token] = stop
        early = token in R
        R.discard(token)
    if early:
        stop()
def release(token):
    with K:
        stop = P.get(token)
        if stop is None:
            if len(R) > 1000:
                R.clear()
            R.add(token)
            return
    stop()
def script(token, sh, text):
    p = rt.spawn([sh, '-c', text], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    def stop():
        try:
            p.stdin.close()
        except OSError:
            pass
    _stoppable(token, stop)
    reaped = False
    try:
        yield from _pump({p.stdout.fileno(): 1, p.stderr.fileno(): 2})
        code = _reap(p.pid, p)
        reaped = True
    finally:
        with K:
            P.pop(token, None)
        stop()
        _finish(p, None, None, None if reaped else lambda: _reap(p.pid, p))
    return _status(code)
def program(token, argv, cwd, path, grace):
    env = dict(os.environ, PATH=path)
    if cwd is not None:
        if not (os.path.isdir(cwd) and os.access(cwd, os.X_OK)):
            return {'refused': 'cwd'}
        env['PWD'] = os.path.normpath(os.path.join(os.getcwd(), cwd))
    p = None
    started = _spawn(argv, cwd, env, _NULL)
    if started is None:
        try:
            p = rt.spawn(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            if cwd is not None and e.filename == cwd:
                return {'refused': 'cwd'}
            yield [2, base64.b64encode(('%s: %s\\n' % (argv[0], e.strerror)).encode()).decode()]
            return {'code': 127 if e.errno == errno.ENOENT else 126, 'signal': None}
        started = (p.pid, p.stdout.fileno(), p.stderr.fileno())
    pid, out, err = started
    # Signals reach the group only while its leader is not reaped: until then its id cannot be reused.
    gone = []
    def group(sig):
        with K:
            if not gone:
                try:
                    os.killpg(pid, sig)
                except OSError:
                    pass
    def stop():
        group(signal.SIGTERM)
        t = threading.Timer(grace, group, (signal.SIGKILL,))
        t.daemon = True
        t.start()
    def reap():
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        with K:
            gone.append(True)
        return _reap(pid, p)
    _stoppable(token, stop)
    exited = os.pidfd_open(pid)
    reaped = False
    try:
        yield from _pump({out: 1, err: 2}, (exited, lambda: group(signal.SIGTERM)))
        code = reap()
        reaped = True
    finally:
        with K:
            P.pop(token, None)
        os.close(exited)
        _finish(p, out, err, None if reaped else reap)
    # As the wrapper's shell reports it: a program killed by signal N exits 128 + N.
    return {'code': code if code >= 0 else 128 - code, 'signal': None}
def _started(pid):
    # When a live process started (field 22 of /proc/PID/stat, the wrapper's \`shift 19\` after the
    # command name); None for a zombie, whose PID namespace cannot take a new process.
    with open('/proc/%d/stat' % pid) as f:
        s = f.read()
    fields = s[s.rindex(') ') + 2:].split()
    return None if fields[0] in 'ZX' else fields[19]
def _under(c, p):
    return p == '/' or c == p or c.startswith(p + '/')
def enter(token, h, cwd, path, marker, grace, argv, script, namespaces, passed, helper_fd):
    # What holderWrapScript does before it becomes remux-sandbox-enter, then enter run directly.
    try:
        c = os.path.realpath(cwd if cwd is not None else '.')
        usable = os.path.isdir(c) and os.access(c, os.X_OK)
    except (OSError, ValueError):
        usable = False
    if not usable:
        return {'refused': 'cwd'}
    if not (c == '/' or any(_under(c, p) for p in h['visible'])) or any(_under(c, p) for p in h['hidden']):
        return {'refused': 'cwd-hidden'}
    held = []
    try:
        # Above every descriptor the helper is given (0-10): the file actions cannot overwrite one.
        for ns in namespaces:
            fd = os.open('/proc/%d/ns/%s' % (h['init'], ns), os.O_RDONLY | os.O_CLOEXEC)
            held.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 11))
            os.close(fd)
        if _started(h['init']) != h['initStart'] or _started(h['keeper']) != h['keeperStart']:
            raise ValueError('not the holder')
    except (OSError, ValueError, IndexError):
        for fd in held:
            os.close(fd)
        return {'refused': 'holder-gone'}
    args = ['--watch', '10', str(grace), '--report-prefix', marker + 'enter ', '--env', 'PATH=' + path]
    for n in passed:
        if n in os.environ:
            args += ['--env', '%s=%s' % (n, os.environ[n])]
    args += ['--cwd', c]
    if argv:
        args += ['--started', marker + 'run', '--', argv[0]] + argv
    else:
        sh = os.environ.get('SHELL') or '/bin/sh'
        args += ['--', sh, sh, '-c', script]
    helper = '/proc/%d/fd/%d' % (h['keeper'], helper_fd)
    pipes = [os.pipe() for _ in range(3)]
    up = lambda fd: fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 11)
    given = [up(_NULL), up(pipes[0][1]), up(pipes[1][1]), None] + held + [up(pipes[2][0])]
    given[3] = given[2]
    mine = [pipes[0][0], pipes[1][0], pipes[2][1]]
    for fd in (pipes[0][1], pipes[1][1], pipes[2][0]):
        os.close(fd)
    try:
        rt.check()
        actions = _fd_actions(given)
        if actions is None:
            raise OSError(errno.EMFILE, 'cannot list the descriptors to close')
        pid = os.posix_spawn(helper, [helper] + args, dict(os.environ, PATH=path), file_actions=actions, setsid=True, setsigdef=_SIGDEF)
    except BaseException:
        for fd in mine:
            os.close(fd)
        raise
    finally:
        for fd in set(given):
            os.close(fd)
    rt.group(pid)
    out, err, watch = mine
    closed = []
    def stop():
        # The helper's --watch: EOF on its fd 10 is TERM, then KILL after the grace.
        with K:
            if not closed:
                closed.append(True)
                os.close(watch)
    _stoppable(token, stop)
    reaped = False
    try:
        yield from _pump({out: 1, err: 2})
        code = _reap(pid)
        reaped = True
    finally:
        with K:
            P.pop(token, None)
        stop()
        _finish(None, out, err, None if reaped else lambda: _reap(pid))
    return _status(code)
`;
let tool: ToolSource | null = null;
const executorTool = (): ToolSource => (tool ??= toolSource('RemuxExecutor', remoteSource('tools/exec.py') + EXECUTOR_TOOL));

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

export class ShellExecutor {
  private constructor(
    private readonly link: Link,
    private readonly shell: string,
    /** Single programs may start without the shell (see EXECUTOR_TOOL's shell()). */
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
  async exec(command: string, opts: ExecOptions, how: ResidentRun | null = null): Promise<ExecExit> {
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
        : ['script', [token, this.shell, command]];
    const marker = direct?.marker ?? entered?.marker ?? null;
    const call = this.link.call<[1 | 2, string], Status | { refused: string }>(executorTool(), method, args, { signal: cancel.signal, window: WINDOW });
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
        (fd === 1 ? opts.onStdout : opts.onStderr)(Buffer.from(data, 'base64'));
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
