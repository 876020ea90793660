# FileSystem: runs in the remote interpreter (stage 2 gives it `rt`). The local side has checked the
# policy against the path as resolved here (resolve below) and passes that resolved path; every open
# walks it without following a symlink, so one swapped in since the check fails (ELOOP), never followed.
import base64, glob as globbing, os, stat as st


def _named(f):
    # Errors name the whole path the caller gave, not the last component the dir_fd walk opened.
    def call(path, *args):
        try:
            return f(path, *args)
        except OSError as e:
            e.filename = path
            raise
    return call


def _parent(path):
    # An fd of the parent directory, each component opened with O_NOFOLLOW, and the last name.
    parts = [p for p in path.split('/') if p]
    if not path.startswith('/') or not parts:
        raise ValueError('an absolute path to a file is needed, got %r' % path)
    fd = os.open('/', os.O_RDONLY | os.O_DIRECTORY)
    try:
        for p in parts[:-1]:
            nxt = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def _read(path):
    d, name = _parent(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=d)
    finally:
        os.close(d)
    with os.fdopen(fd, 'rb') as f:
        if not st.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(21, 'not a regular file', path)
        return f.read()


def resolve(paths):
    # For the policy check: each path with its symlinks resolved as far as it exists.
    out = []
    for p in paths:
        try:
            out.append({'real': os.path.realpath(p), 'finalLink': os.path.islink(p)})
        except OSError as e:
            out.append({'error': '%s: %s' % (p, e.strerror)})
    return out


@_named
def readBytes(path):
    return base64.b64encode(_read(path)).decode()


@_named
def readText(path, encoding='utf-8'):
    return _read(path).decode(encoding)


@_named
def writeText(path, text, mode=None, encoding='utf-8'):
    # Atomic: a temporary file beside the target, renamed over it. Unchanged content and mode: no write.
    data = text.encode(encoding)
    d, name = _parent(path)
    try:
        try:
            old = os.stat(name, dir_fd=d, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if old is not None and not st.S_ISREG(old.st_mode):
            raise IsADirectoryError(21, 'not a regular file', path)
        want = mode if mode is not None else (st.S_IMODE(old.st_mode) if old else 0o644)
        if old is not None and st.S_IMODE(old.st_mode) == want and old.st_size == len(data) and _read(path) == data:
            return {'changed': False, 'created': False}
        tmp = '.%s.remux-%d' % (name, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=d)
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(data)
                os.fchmod(f.fileno(), want)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, name, src_dir_fd=d, dst_dir_fd=d)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=d)
            except OSError:
                pass
            raise
        return {'changed': True, 'created': old is None}
    finally:
        os.close(d)


@_named
def stat(path):
    s = os.stat(path, follow_symlinks=False)
    kind = 'file' if st.S_ISREG(s.st_mode) else 'directory' if st.S_ISDIR(s.st_mode) else 'symlink' if st.S_ISLNK(s.st_mode) else 'other'
    return {'type': kind, 'size': s.st_size, 'mode': st.S_IMODE(s.st_mode), 'uid': s.st_uid, 'gid': s.st_gid, 'mtimeMs': s.st_mtime * 1000}


def glob(pattern):
    # Sorted; each match with the resolved directory it was found in, for the local side's policy check.
    return [[m, os.path.realpath(os.path.dirname(m))] for m in sorted(globbing.glob(pattern, recursive=True))]
