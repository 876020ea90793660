# FileSystem: runs in the remote interpreter after common.py (its _read and _put; stage 2 gives it `rt`).
# The local side has checked the policy against the path as resolved here (resolve below) and passes
# that resolved path; every open walks it without following a symlink, so one swapped in since the
# check fails (ELOOP), never followed.
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


class _Self(Exception):
    pass


def _realpath(path):
    # os.path.realpath of an absolute path, component by component, so that a way into this process's own
    # /proc entry (/proc/self, /proc/thread-self, /dev/fd, /dev/std*) is seen: resolved here it would name
    # this interpreter's directory, descriptors and files, where the program will find its own.
    own = '/proc/%d' % os.getpid()
    pending, current, missing, links = path.split('/')[::-1], '/', False, 0
    while pending:
        part = pending.pop()
        if part in ('', '.'):
            continue
        if part == '..':
            current = os.path.dirname(current)
            continue
        following = current.rstrip('/') + '/' + part
        if missing:
            current = following
            continue
        try:
            mode = os.lstat(following).st_mode
        except (FileNotFoundError, NotADirectoryError):
            mode = None
        if mode is not None and st.S_ISLNK(mode):
            links += 1
            if links > 40:
                raise OSError(40, 'Too many levels of symbolic links')
            target = os.readlink(following)
            pending += target.split('/')[::-1]
            if target.startswith('/'):
                current = '/'
            continue
        missing, current = mode is None, following
        if current == own or current.startswith(own + '/'):
            raise _Self()
    return current


def resolve(paths):
    # For the policy check: each path with its symlinks resolved as far as it exists.
    out = []
    for p in paths:
        try:
            out.append({'real': _realpath(p), 'finalLink': os.path.islink(p)})
        except _Self:
            out.append({'error': "%s leads into the running program's own /proc entry (/proc/self, /dev/fd, /dev/stdin...), which remux cannot check before the program runs; name the file itself" % p})
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
    # Atomic (common.py's _put); unchanged content and mode: no write.
    changed, created = _put(path, text.encode(encoding), mode)
    return {'changed': changed, 'created': created}


@_named
def stat(path):
    s = os.stat(path, follow_symlinks=False)
    kind = 'file' if st.S_ISREG(s.st_mode) else 'directory' if st.S_ISDIR(s.st_mode) else 'symlink' if st.S_ISLNK(s.st_mode) else 'other'
    return {'type': kind, 'size': s.st_size, 'mode': st.S_IMODE(s.st_mode), 'uid': s.st_uid, 'gid': s.st_gid, 'mtimeMs': s.st_mtime * 1000}


def glob(pattern):
    # Sorted; each match with the resolved directory it was found in, for the local side's policy check.
    return [[m, os.path.realpath(os.path.dirname(m))] for m in sorted(globbing.glob(pattern, recursive=True))]
