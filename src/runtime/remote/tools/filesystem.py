# FileSystem: runs in the remote interpreter after common.py (its _read and _put; stage 2 gives it `rt`).
# The local side has checked the policy against the path as resolved here (resolve below) and passes
# that resolved path; every open walks it without following a symlink, so one swapped in since the
# check fails (ELOOP), never followed.
import base64, codecs, errno, fnmatch, io, json, os, re, stat as st, sys

MAX_MATCHES = 100000


def _named(f):
    # Errors name the whole path the caller gave, not the last component the dir_fd walk opened (one
    # about another file, a temporary one, names that file whole already).
    def call(path, *args):
        try:
            return f(path, *args)
        except OSError as e:
            if not (isinstance(e.filename, str) and e.filename.startswith('/')):
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


# What one read hands over at most (tools.ts READ_MAX), and the pieces a larger one comes in: a file
# over a piece streams as chunks (each its own frame, under the link's frame cap), held back while the
# local side has not taken them (the call's window). readBytes's pieces are bytes, sent raw (stage 2's
# binary frames); a read of one piece or less is its result, base64 in the JSON.
MAX_READ = 256 << 20
PIECE = 1 << 20


@_named
def readBytes(path, offset=0, length=None):
    f, n = _opened(path, offset, length)
    if n <= PIECE:
        with f:
            return base64.b64encode(f.read(n)).decode()
    return _pieces(f, n, bytes)


@_named
def readText(path, encoding='utf-8'):
    f, n = _opened(path, 0, None)
    if n <= PIECE:
        with f:
            return f.read(n).decode(encoding)
    decoder = codecs.getincrementaldecoder(encoding)()

    def text():
        # A character split between two pieces is decoded with the second.
        for piece in _pieces(f, n, decoder.decode):
            if piece:
                yield piece
        tail = decoder.decode(b'', final=True)
        if tail:
            yield tail
    return text()


def _opened(path, offset, length):
    # The open file at offset, and how many bytes of it the read hands over (at most MAX_READ).
    if offset < 0 or (length is not None and length < 0):
        raise ValueError('offset and length are 0 or more, got %r and %r' % (offset, length))
    f = _open(path)
    try:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            # A /proc or /sys file says 0 whatever it holds: what it holds is read here, to its end.
            f.seek(offset)
            data = f.read(MAX_READ + 1 if length is None else min(length, MAX_READ + 1))
            f.close()
            f, size, offset = io.BytesIO(data), len(data), 0
        n = max(0, size - offset if length is None else min(length, size - offset))
        if n > MAX_READ:
            raise OSError(errno.EFBIG, '%d bytes, more than the %d MiB one read hands over; read it in parts (readBytes with offset and length)' % (n, MAX_READ >> 20), path)
        f.seek(offset)
        return f, n
    except BaseException:
        f.close()
        raise


def _pieces(f, n, encode):
    with f:
        while n > 0:
            data = f.read(min(PIECE, n))
            if not data:
                return
            n -= len(data)
            yield encode(data)


@_named
def writeText(path, text, mode=None, owner=None, group=None, diff=False, encoding='utf-8'):
    # Atomic (common.py's _put); unchanged content, mode and owner: no write. The diff only when asked:
    # it shows what the file held, which the local side then checked as a read.
    data = text.encode(encoding)
    old = _old(path) if diff else None
    changed, created = _put(path, data, mode, *_ids(owner, group))
    r = {'changed': changed, 'created': created}
    if diff:
        r['diff'] = _diff(old, data, path) if changed else ''
    return r


@_named
def lineInFile(path, line, regexp=None, state='present', insertAfter=None, insertBefore=None, create=False, mode=None, owner=None, group=None):
    # As Ansible's lineinfile: present replaces the last line matching regexp (or finds the line itself)
    # and else adds it after the last line matching insertAfter, before the first matching insertBefore,
    # or at the end; absent removes every line matching regexp (or equal to line). Atomic, via _put.
    for name, p in (('regexp', regexp), ('insertAfter', insertAfter), ('insertBefore', insertBefore)):
        _check_pattern(name, p)
    old = _old(path)
    if old is None and not (create and state == 'present'):
        if state == 'absent':
            return {'changed': False, 'created': False, 'diff': ''}
        raise FileNotFoundError(errno.ENOENT, 'No such file or directory (create: true makes it)', path)
    text = (old or b'').decode('utf-8')
    lines = text.splitlines()
    found, afters, befores = _matching((regexp, insertAfter, insertBefore), lines)
    hits = found if regexp is not None else [i for i, l in enumerate(lines) if l == line]
    new = lines
    if state == 'absent':
        gone = set(hits)
        new = [l for i, l in enumerate(lines) if i not in gone]
    elif hits:
        new = lines[:hits[-1]] + [line] + lines[hits[-1] + 1:]
    elif line not in lines:
        at = len(lines)
        if afters:
            at = afters[-1] + 1
        elif befores:
            at = befores[0]
        new = lines[:at] + [line] + lines[at:]
    # Unchanged lines keep the file's bytes (its line endings too); an edited file ends in a newline
    # unless it had none and its last line is as it was.
    data = old if new == lines and old is not None else ('\n'.join(new) + ('\n' if new and (not text or text.endswith('\n') or new[-1] != lines[-1]) else '')).encode('utf-8')
    changed, created = _put(path, data, mode, *_ids(owner, group))
    return {'changed': changed, 'created': created, 'diff': _diff(old, data, path) if changed else ''}


def _check_pattern(name, pattern):
    # A bad one is refused by its name before the file is read (the search is _matching's).
    try:
        re.compile(pattern or '')
    except re.error as e:
        raise ValueError('%s %r is not a Python regular expression: %s' % (name, pattern, e)) from None


# The lines each pattern is found in, searched by a child interpreter: a search that backtracks without
# end never lets go of this one's lock (re holds the GIL), which would stop every call of the runtime,
# and a cancel (the call's timeout) cannot stop it; the child is killed with the call.
_SEARCH = '''import json, re, sys
patterns, lines = json.load(sys.stdin)
json.dump([[i for i, l in enumerate(lines) if re.search(p, l)] if p is not None else [] for p in patterns], sys.stdout)
'''


def _matching(patterns, lines):
    if all(p is None for p in patterns):
        return [[] for _ in patterns]
    p = rt.spawn([sys.executable or 'python3', '-I', '-S', '-c', _SEARCH], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(json.dumps([patterns, lines]).encode())
    rt.ungroup(p.pid)
    rt.check()
    if p.returncode != 0:
        raise RuntimeError('the search for the regular expressions failed (exit status %s): %s' % (p.returncode, err.decode('utf-8', 'replace').strip()[-2000:]))
    return json.loads(out)


@_named
def ensureDirectory(path, mode=None, owner=None, group=None, create=()):
    # The directory exists with this mode and owner. `create`: the missing directories above it that the
    # local side checked (outermost first), made 0755 and this process's; one missing that was not
    # checked is never made (the walk to it fails).
    made = [_mkdir(parent) for parent in create]
    try:
        return {'changed': _mkdir(path, mode, *_ids(owner, group)) or any(made)}
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, 'a directory above it is missing (parents: true makes them)', path) from None


@_named
def stat(path, given):
    # As lstat: a symlink the given path ends in is reported itself, with its target as written. The policy
    # checked where the given path leads (path): what is reported must still be the given path's way there.
    name = os.path.basename(given)
    at = _realpath(os.path.dirname(given)).rstrip('/') + '/' + name if name not in ('', '.', '..') else path
    if at == '/':
        s, target = os.stat('/'), None
    else:
        d, last = _parent(at)
        try:
            s = os.stat(last, dir_fd=d, follow_symlinks=False)
            target = os.readlink(last, dir_fd=d) if st.S_ISLNK(s.st_mode) else None
        finally:
            os.close(d)
    if (at if target is None else _realpath(at)) != path:
        raise OSError(errno.EAGAIN, 'changed since the policy checked it (it led to %s); ask again' % path, given)
    kind = 'file' if st.S_ISREG(s.st_mode) else 'directory' if st.S_ISDIR(s.st_mode) else 'symlink' if target is not None else 'other'
    r = {'type': kind, 'size': s.st_size, 'mode': st.S_IMODE(s.st_mode), 'uid': s.st_uid, 'gid': s.st_gid, 'mtimeMs': s.st_mtime * 1000}
    if target is not None:
        r['target'] = target
    return r


def glob(pattern):
    # Sorted; each match with the resolved directory it was found in, for the local side's policy check.
    found = set()
    for m in _glob(pattern):
        found.add(m)
        if len(found) > MAX_MATCHES:
            raise ValueError('%s: more than %d matches; narrow the pattern' % (pattern, MAX_MATCHES))
    return [[m, os.path.realpath(os.path.dirname(m))] for m in sorted(found)]


def _glob(pattern):
    # glob.glob(pattern, recursive=True), except that ** matches only real directories, never one through
    # a symlink (a link is a match of a final ** itself), as pathlib's ** and bash's globstar (4.3+):
    # glob's own follows them (to 3.13 at least), and a tree with two links back up gives it 2^depth
    # paths. A * component still follows a link, as everywhere. A cancelled call stops the walk
    # (rt.check); so does MAX_MATCHES (glob above).
    if not pattern:
        return
    lead = pattern[:len(pattern) - len(pattern.lstrip('/'))]
    parts = []
    split = pattern[len(lead):].split('/')
    for n, p in enumerate(split):
        # a//b is a/b and **/** is **; a final '' (the pattern ends in /) matches directories only.
        if (p or n == len(split) - 1) and not (p == '**' and parts[-1:] == ['**']):
            parts.append(p)
    # (path matched so far, index of the part to match next, whether path is a directory below a **)
    todo = [(lead, 0, False)]
    while todo:
        rt.check()
        path, i, below = todo.pop()
        if i == len(parts):
            yield path
            continue
        part, last = parts[i], i == len(parts) - 1
        if part == '':
            if os.path.isdir(path or '.'):
                yield _join(path, '')
        elif part == '**':
            # Zero directories (a/** matches a/ itself), then each directory below, never through a link.
            if below or os.path.isdir(path or '.'):
                todo.append((_join(path, '') if last and not below else path, i + 1, False))
            for entry in _entries(path, '*'):
                if _is_dir(entry, False):
                    todo.append((_join(path, entry.name), i, True))
                elif last:
                    todo.append((_join(path, entry.name), i + 1, False))
        elif re.search('[*?[]', part):
            for entry in _entries(path, part):
                if last or _is_dir(entry):
                    todo.append((_join(path, entry.name), i + 1, False))
        elif not last:
            todo.append((_join(path, part), i + 1, False))
        elif os.path.lexists(_join(path, part)):
            yield _join(path, part)


def _join(path, name):
    return path + name if path == '' or path.endswith('/') else path + '/' + name


def _entries(path, part):
    # The entries of a directory whose names match part (hidden ones only when part starts with a dot).
    try:
        with os.scandir(path or '.') as it:
            return [e for e in it if fnmatch.fnmatchcase(e.name, part) and (part[0] == '.' or e.name[0] != '.')]
    except OSError:
        return []


def _is_dir(entry, follow=True):
    try:
        return entry.is_dir(follow_symlinks=follow)
    except OSError:
        return False


def missingParents(path, parents):
    # Asked before the check: the directories above path that do not exist, outermost first, for the
    # local side to check as writes (none unless parents).
    out = []
    p = os.path.dirname(path.rstrip('/'))
    while parents and p not in ('', '/') and not os.path.lexists(p):
        out.insert(0, p)
        p = os.path.dirname(p)
    return out
