# Exec: a program without a shell (argv), its output streamed back as chunks (1|2, bytes), which stage 2
# sends raw (binary frames tagged 1 or 2). It runs in its own process group, which a cancel or timeout
# kills whole (stage 2's rt.spawn and rt.group), and which stop() ends as the executors end a command at
# the output cap, its call still answering how it ended.
# Its stdin is /dev/null, or the call's input as the local side streams it (stage 2's rt.feed).
import os, select, shutil, signal, stat, subprocess, threading, time

# os.posix_spawn (a vfork in glibc) starts a program in a fraction of Popen's time: Popen forks the whole
# interpreter before Python 3.10 (about 1.3 ms more per run) and does more work after. subprocess says
# where it reports a failed exec properly; elsewhere, and whenever it would not do exactly what Popen
# does, Popen runs the program.
_SPAWN = getattr(subprocess, '_USE_POSIX_SPAWN', False)
_CLOSEFROM = getattr(os, 'POSIX_SPAWN_CLOSEFROM', None)
# Popen(restore_signals=True) gives the program these back at their default (Python ignores them).
_SIGDEF = [getattr(signal, n) for n in ('SIGPIPE', 'SIGXFZ', 'SIGXFSZ') if hasattr(signal, n)]
_NULL = os.open(os.devnull, os.O_RDWR)


def which(names, path):
    # For the policy check: each bare program name in `path`, symlinks resolved, or None.
    return [(lambda w: os.path.realpath(w) if w else None)(shutil.which(n, path=path)) for n in names]


def _inheritable():
    # Popen(close_fds=True) closes every descriptor above 2 in the child; posix_spawn keeps the inheritable
    # ones (ours are not, PEP 446: only code that asks makes one, or a parent that left one to us). These
    # are closed in the child; None when they cannot be listed.
    try:
        names = os.listdir('/proc/self/fd')
    except OSError:
        return None
    fds = []
    for name in names:
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                fds.append(fd)
        except OSError:
            pass
    return fds


def _program(name, cwd, env):
    # The file Popen would run first for a bare or absolute name, or None: Popen decides (a relative
    # path with a slash, or a cwd that is not already ours, resolves after its chdir; an error is its own).
    if cwd is not None:
        try:
            here, there = os.stat('.'), os.stat(cwd)
        except OSError:
            return None
        if (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino) or not os.access(cwd, os.X_OK):
            return None
    if '/' in name:
        return name if name.startswith('/') else None
    for d in os.get_exec_path(env):
        f = os.path.join(d, name)
        try:
            if stat.S_ISREG(os.stat(f).st_mode):
                return f
        except (OSError, ValueError):
            pass
    return None


def _fd_actions(sources):
    # posix_spawn's file actions giving the child sources[i] as its descriptor i (each source numbered
    # len(sources) or above), every other one closed as Popen(close_fds=True) would; None when they
    # cannot be listed.
    give = [(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate(sources)]
    if _CLOSEFROM is not None:
        return give + [(_CLOSEFROM, len(sources))]
    fds = _inheritable()
    if fds is None:
        return None
    return [(os.POSIX_SPAWN_CLOSE, fd) for fd in fds] + give


def _spawn(argv, cwd, env, stdin):
    # (pid, stdout fd, stderr fd) of the program started by posix_spawn in a session of its own, or None
    # when Popen should start it (any doubt, or any failure: Popen tries again and raises its own error).
    if not _SPAWN or not argv:
        return None
    exe = _program(argv[0], cwd, env)
    if exe is None:
        return None
    rt.spawning()
    out, err = os.pipe(), os.pipe()
    actions = _fd_actions([stdin, out[1], err[1]])
    if actions is None:
        for fd in out + err:
            os.close(fd)
        return None
    try:
        pid = os.posix_spawn(exe, argv, env, file_actions=actions, setsid=True, setsigdef=_SIGDEF)
    except Exception:
        pid = None
    os.close(out[1])
    os.close(err[1])
    if pid is None:
        os.close(out[0])
        os.close(err[0])
        return None
    rt.group(pid)
    return pid, out[0], err[0]


def _code(status):
    # As Popen.returncode: the exit status, or minus the signal that ended it.
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _reap(pid, p=None):
    # The returncode of a grouped child once it has ended (rt.group): reaped, then forgotten by the watcher.
    try:
        return p.wait() if p else _code(os.waitpid(pid, 0)[1])
    finally:
        rt.ungroup(pid)


def _status(code):
    # A returncode as the call's result.
    return {'code': code if code >= 0 else None, 'signal': -code if code < 0 else None}


def _finish(p, out, err, reap):
    # Closes a started program's pipes; `reap` (it was stopped early: a cancel kills its group) runs on
    # a thread of its own, to reap it once it is gone.
    if p:
        p.stdout.close()
        p.stderr.close()
    else:
        os.close(out)
        os.close(err)
    if reap:
        threading.Thread(target=reap, daemon=True).start()


def _pump(streams, exited=None):
    # Yields (1|2, bytes) chunks from {fd: 1|2} as they come, until every stream has ended. `exited`:
    # (pidfd, callback), the callback run once the process has exited, its streams perhaps still open.
    poll = select.poll()
    for fd in streams:
        poll.register(fd, select.POLLIN)
    if exited:
        poll.register(exited[0], select.POLLIN)
    streams = dict(streams)
    while streams:
        for fd, _ in poll.poll():
            if exited and fd == exited[0]:
                poll.unregister(fd)
                exited[1]()
                continue
            data = os.read(fd, 65536)
            if data:
                yield (streams[fd], data)
            else:
                poll.unregister(fd)
                del streams[fd]


# The running commands stop() may end: the caller's key -> the process group; a key leaves before its
# command is reaped, so a group id reused after that is never signalled.
_STOPPABLE = {}
_STOPPABLE_LOCK = threading.Lock()
# As the executors: TERM, then KILL what is left after this many seconds.
_STOP_GRACE = 2


def stop(key):
    # The caller's output cap: TERM the command's group, KILL it after the grace; run() then answers with
    # the status that left (what `client run` reports of a command stopped at the cap). False: no such command runs.
    with _STOPPABLE_LOCK:
        pid = _STOPPABLE.get(key)
        if pid is None or not _signal_group(pid, signal.SIGTERM):
            return False

    def kill():
        time.sleep(_STOP_GRACE)
        with _STOPPABLE_LOCK:
            if _STOPPABLE.get(key) == pid:
                _signal_group(pid, signal.SIGKILL)
    threading.Thread(target=kill, daemon=True).start()
    return True


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
        return True
    except OSError:
        return False


def _unstoppable(key, pid):
    # Waits (without reaping) until the command has exited, then forgets its key: from then on its group
    # id may be reused, and stop() must not reach it. Without waitid (macOS), once its output has ended.
    if key is None:
        return
    try:
        if hasattr(os, 'waitid'):
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    finally:
        with _STOPPABLE_LOCK:
            _STOPPABLE.pop(key, None)


def run(argv, cwd=None, path=None, stdin=False, key=None):
    # stdin: the call streams its input (rt.feed) into the command's stdin, else that is /dev/null.
    env = dict(os.environ)
    if path is not None:
        env['PATH'] = path
    feed = os.pipe() if stdin else None
    p = None
    try:
        started = _spawn(argv, cwd, env, feed[0] if feed else _NULL)
        if started is None:
            p = rt.spawn(argv, cwd=cwd, env=env, stdin=feed[0] if feed else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            started = (p.pid, p.stdout.fileno(), p.stderr.fileno())
    except BaseException:
        if feed:
            os.close(feed[1])
        raise
    finally:
        if feed:
            os.close(feed[0])
    pid, out, err = started
    if key is not None:
        with _STOPPABLE_LOCK:
            _STOPPABLE[key] = pid
    if feed:
        rt.feed(feed[1])
    reaped = False
    try:
        yield from _pump({out: 1, err: 2})
        _unstoppable(key, pid)
        code = _reap(pid, p)
        reaped = True
        return _status(code)
    finally:
        if not reaped:
            with _STOPPABLE_LOCK:
                _STOPPABLE.pop(key, None)
        _finish(p, out, err, None if reaped else lambda: _reap(pid, p))
