# The resident executor on an SSH host (src/hosts/ssh-executor.ts): appended to exec.py (_spawn,
# _fd_actions, _pump, _reap, _status, _finish) and run in the runtime's interpreter. `script` runs the
# wrapper in the login shell; `program` a single unsandboxed program as the wrapper would; `enter`
# a command for a long-lived sandbox, after the wrapper's checks: forked by the sandbox's stage server
# (remux-sandbox-enter --serve, native/sandbox-enter.c) and watched as `program` is, or else run by
# remux-sandbox-enter itself. A release may come before its command has started (both are calls, on
# different threads): it is kept and applied at the start.
import errno, fcntl, pwd, socket, struct
P = {}
R = set()
K = threading.Lock()
# Stage servers, one per holder (its init's pid and start): [pid, socket, lock]. A server ends when its
# socket closes, or when the holder's init ends (its fd 0 is a pidfd of it).
SV = {}
SL = threading.Lock()
# What a server takes in one request (native/serve.h).
SERVE_MAX_BYTES = 128 * 1024
SERVE_MAX_FIELDS = 8192


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


def _supervise(token, pid, out, err, grace, p=None):
    # A started program leading its own process group, its output pumped: TERM then KILL after `grace` s
    # on stop, TERM to what it left in its group once it ended. Its returncode.
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
    # Once the program has ended, TERM to what it left in its group, once (the wrapper's `kill -s TERM 0`):
    # when it ends while its pipes are open, or once they closed and it ended after.
    swept = []
    def sweep():
        if not swept:
            swept.append(True)
            group(signal.SIGTERM)
    def reap():
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        sweep()
        with K:
            gone.append(True)
        return _reap(pid, p)
    _stoppable(token, stop)
    exited = os.pidfd_open(pid)
    reaped = False
    try:
        yield from _pump({out: 1, err: 2}, (exited, sweep))
        code = reap()
        reaped = True
    finally:
        with K:
            P.pop(token, None)
        os.close(exited)
        _finish(p, out, err, None if reaped else reap)
    return code


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
            yield (2, ('%s: %s\n' % (argv[0], e.strerror)).encode())
            return {'code': 127 if e.errno == errno.ENOENT else 126, 'signal': None}
        started = (p.pid, p.stdout.fileno(), p.stderr.fileno())
    pid, out, err = started
    code = yield from _supervise(token, pid, out, err, grace, p)
    # As the wrapper's shell reports it: a program killed by signal N exits 128 + N.
    return {'code': code if code >= 0 else 128 - code, 'signal': None}


def _started(pid):
    # When a live process started (field 22 of /proc/PID/stat, the wrapper's `shift 19` after the
    # command name); None for a zombie, whose PID namespace cannot take a new process.
    with open('/proc/%d/stat' % pid) as f:
        s = f.read()
    fields = s[s.rindex(') ') + 2:].split()
    return None if fields[0] in 'ZX' else fields[19]


def _under(c, p):
    return p == '/' or c == p or c.startswith(p + '/')


def _drop_server(key, z):
    # A server that ended or failed us is not asked again; it ends once its socket is closed.
    with SL:
        if SV.get(key) is z:
            del SV[key]
            z[1].close()


def _server_ended(key, z):
    os.waitpid(z[0], 0)
    _drop_server(key, z)


def _server(h, held, helper):
    # The holder's stage server, started on first use; None when there cannot be one (no pidfds or
    # socket.send_fds: Python < 3.9), or it could not start.
    if not hasattr(socket, 'send_fds') or not hasattr(os, 'pidfd_open'):
        return None
    key = (h['init'], h['initStart'])
    with SL:
        z = SV.get(key)
        if z is not None:
            return z
    init, pair, given, pid = None, None, [], None
    try:
        init = os.pidfd_open(h['init'])
        pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for fd in (init, _NULL, _NULL, pair[1].fileno()):
            given.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 11))
        actions = _fd_actions(given + held)
        if actions is not None:
            pid = os.posix_spawn(helper, [helper, '--serve'], {}, file_actions=actions, setsid=True, setsigdef=_SIGDEF)
    except OSError:
        pass
    # The server has its own copies now; without a server, the helper runs the command.
    for fd in given + ([init] if init is not None else []):
        os.close(fd)
    if pair is not None:
        pair[1].close()
        if pid is None:
            pair[0].close()
    if pid is None:
        return None
    a = pair[0]
    a.settimeout(5)
    z = [pid, a, threading.Lock()]
    with SL:
        other = SV.setdefault(key, z)
    threading.Thread(target=_server_ended, args=(key, z), daemon=True).start()
    if other is not z:
        # Another command started one meanwhile: this one ends at once.
        a.close()
    return other


def _served(h, z, argv, fds):
    # Sends a command to the holder's server: the pid of its stage, or None (the helper then runs it).
    payload = b'\0'.join([b'%d' % len(argv), b'0'] + [os.fsencode(a) for a in argv]) + b'\0'
    if len(payload) > SERVE_MAX_BYTES or len(argv) > SERVE_MAX_FIELDS:
        return None
    answer = b''
    with z[2]:
        try:
            socket.send_fds(z[1], [payload], fds)
            answer = z[1].recv(8)
        except OSError:
            pass
    if len(answer) == 4:
        pid = struct.unpack('i', answer)[0]
        if pid > 0:
            return pid
    # Gone, stuck, or the sandbox takes no process any more (its init ended): not asked again.
    _drop_server((h['init'], h['initStart']), z)
    return None


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
    args = ['--report-prefix', marker + 'enter ', '--env', 'PATH=' + path]
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
    try:
        rt.spawning()
        z = _server(h, held, helper)
    except BaseException:
        for fd in held:
            os.close(fd)
        raise
    if z is not None:
        out, err = os.pipe(), os.pipe()
        try:
            pid = _served(h, z, [helper] + args, [_NULL, out[1], err[1], err[1]])
        finally:
            os.close(out[1])
            os.close(err[1])
        if pid is not None:
            for fd in held:
                os.close(fd)
            rt.group(pid)
            code = yield from _supervise(token, pid, out[0], err[0], grace / 1000)
            return _status(code)
        os.close(out[0])
        os.close(err[0])
    args = ['--watch', '10', str(grace)] + args
    pipes = [os.pipe() for _ in range(3)]
    up = lambda fd: fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 11)
    given = [up(_NULL), up(pipes[0][1]), up(pipes[1][1]), None] + held + [up(pipes[2][0])]
    given[3] = given[2]
    mine = [pipes[0][0], pipes[1][0], pipes[2][1]]
    for fd in (pipes[0][1], pipes[1][1], pipes[2][0]):
        os.close(fd)
    try:
        rt.spawning()
        actions = _fd_actions(given)
        if actions is None:
            raise OSError(errno.EMFILE, 'cannot list the descriptors to close')
        pid = os.posix_spawn(helper, [helper] + args, dict(os.environ, PATH=path), file_actions=actions, setsid=True, setsigdef=_SIGDEF)
    except BaseException as e:
        for fd in mine:
            os.close(fd)
        # The keeper ended since it was checked, and its fd with it: nothing ran.
        if isinstance(e, FileNotFoundError) and e.filename == helper:
            return {'refused': 'holder-gone'}
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
