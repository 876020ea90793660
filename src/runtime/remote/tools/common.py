# Helpers the tools share (sent ahead of each tool's own code, in the same namespace; stage 1 gives `rt`).
# The local side has checked the policy against each path as resolved here and passes that resolved
# path; every open walks it without following a symlink, so one swapped in since the check fails
# (ELOOP), never followed. Programs run by the path that was checked, with the secure PATH.
import contextlib, difflib, errno, fcntl, grp, json, os, pwd, stat as st, subprocess


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


_KINDS = ((st.S_ISDIR, 'a directory'), (st.S_ISFIFO, 'a FIFO'), (st.S_ISSOCK, 'a socket'), (st.S_ISCHR, 'a character device'), (st.S_ISBLK, 'a block device'), (st.S_ISLNK, 'a symlink'))


def _regular(mode, path):
    # Only regular files are read or replaced: a FIFO, socket or device may block, never end, or change
    # something when read.
    if not st.S_ISREG(mode):
        kind = next((k for isa, k in _KINDS if isa(mode)), 'a special file')
        e = IsADirectoryError if st.S_ISDIR(mode) else OSError
        raise e(errno.EISDIR if st.S_ISDIR(mode) else errno.EINVAL, '%s, not a regular file' % kind, path)


def _open(path):
    # The file opened for reading, binary.
    d, name = _parent(path)
    try:
        # O_NONBLOCK: the open of a FIFO without a writer would wait for one. What is not a regular file
        # is refused before any read; a regular one is then read blocking (never an EAGAIN midway).
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=d)
    finally:
        os.close(d)
    try:
        _regular(os.fstat(fd).st_mode, path)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, 'rb')


def _read(path):
    with _open(path) as f:
        return f.read()


def _old(path):
    # The file's bytes, or None when it does not exist.
    try:
        return _read(path)
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def _naming(filename, filename2=None):
    # An OSError of the temporary file names it whole, not the target (nor the bare name dir_fd calls give).
    try:
        yield
    except OSError as e:
        e.filename = filename
        if filename2 is not None:
            e.filename2 = filename2
        raise


def _put(path, data, mode=None, uid=None, gid=None, check=None):
    # Atomic: a temporary file beside the target, renamed over it; nothing happens when content, mode and
    # owner already agree. check(tmp) may refuse the new content (raise) before it is put in place.
    # Returns (changed, created).
    d, name = _parent(path)
    try:
        try:
            old = os.stat(name, dir_fd=d, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if old is not None:
            _regular(old.st_mode, path)
        want = mode if mode is not None else (st.S_IMODE(old.st_mode) if old else 0o644)
        owner = (uid if uid is not None else (old.st_uid if old else os.getuid()), gid if gid is not None else (old.st_gid if old else os.getgid()))
        if old is not None and st.S_IMODE(old.st_mode) == want and (old.st_uid, old.st_gid) == owner and old.st_size == len(data) and _read(path) == data:
            return False, False
        # A set-ID bit is never kept: with new content or a new owner (root, often) it would make a new
        # set-ID program, which a mode given may not either (method.ts fileMode).
        if want & (st.S_ISUID | st.S_ISGID):
            raise PermissionError(errno.EPERM, 'the file is set-ID (mode 0%o), which a file the runtime writes never keeps: give a mode without those bits (e.g. 0%o) to replace it' % (want, want & 0o1777), path)
        # A dot in the name: sudo (sudoers.d) and run-parts skip it while it exists. Unique per call: calls
        # run concurrently on threads of this one process, so a pid alone is shared.
        tmp = '.%s.remux-%d-%s' % (name, os.getpid(), os.urandom(6).hex())
        full = os.path.join(os.path.dirname(path), tmp)
        # Outside the cleanup below: a name some other writer holds is never ours to unlink.
        with _naming(full):
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=d)
        try:
            with os.fdopen(fd, 'wb') as f:
                with _naming(full):
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                if check is not None:
                    check(full)
                with _naming(full):
                    os.fchown(f.fileno(), *owner)
                    os.fchmod(f.fileno(), want)
            with _naming(full, path):
                os.rename(tmp, name, src_dir_fd=d, dst_dir_fd=d)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=d)
            except OSError:
                pass
            raise
        return True, old is None
    finally:
        os.close(d)


def _remove(path):
    # True when there was a file to remove.
    d, name = _parent(path)
    try:
        os.unlink(name, dir_fd=d)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(d)


def _mkdir(path, mode=None, uid=None, gid=None):
    # Ensures a directory (its parent must exist), never through a symlink, with this mode and owner
    # where given (a new one: 0755, this process's); True when it was created or its mode or owner changed.
    d, name = _parent(path)
    try:
        try:
            os.mkdir(name, 0o700, dir_fd=d)
            created = True
        except FileExistsError:
            created = False
        # Owner and mode are set through the directory opened, not its name: a program put in its place
        # meanwhile would get them.
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=d)
        except OSError as e:
            if e.errno in (errno.ENOTDIR, errno.ELOOP):
                raise NotADirectoryError(errno.ENOTDIR, 'not a directory', path) from None
            raise
    finally:
        os.close(d)
    try:
        s = os.fstat(fd)
        want = mode if mode is not None else (0o755 if created else st.S_IMODE(s.st_mode))
        owner = (s.st_uid if uid is None else uid, s.st_gid if gid is None else gid)
        changed = created
        if (s.st_uid, s.st_gid) != owner:
            os.fchown(fd, *owner)
            changed = True
        # After chown, which clears set-ID bits; a directory's set-group-ID bit is kept when asked for.
        if created or st.S_IMODE(s.st_mode) != want:
            os.fchmod(fd, want)
            changed = True
        return changed
    finally:
        os.close(fd)


# What a diff sent from here may hold at most, as JSON (the frame cap is 16 MiB); the local side shows
# at most 256 KiB of it (diff-view.ts).
DIFF_CAP = 8 << 20
# Bounds on a diff's work, each well under a second of this host's CPU (measured on 2 cores): a text's
# bytes (reading, splitting, a row for each line: 1 MiB of empty lines, 0.3 s) and the places difflib
# looks at to match the lines between the first and the last change (_Matcher: 2M, about 0.3 s).
DIFF_BYTES = 1 << 20
DIFF_WORK = 2000000


class _TooMuchWork(Exception):
    pass


class _Matcher(difflib.SequenceMatcher):
    # difflib's matching with its work counted: find_longest_match, called for each stretch left between
    # matches, looks at each line of a's stretch and each place in b of that line. That is quadratic in
    # lines that repeat or in many scattered changes (10000 lines of 101 values, reversed: 5 s; 10000
    # distinct lines, every 7th changed: 2 s), so past DIFF_WORK it gives up.
    work = 0

    def find_longest_match(self, alo, ahi, blo, bhi):
        self.work += ahi - alo + sum(len(self.b2j.get(x, ())) for x in self.a[alo:ahi])
        if self.work > DIFF_WORK:
            raise _TooMuchWork()
        return difflib.SequenceMatcher.find_longest_match(self, alo, ahi, blo, bhi)


def _ids(owner, group):
    # A user and a group on this host, by name or number, as (uid, gid); None where not given.
    def one(value, by_name, what):
        if value is None:
            return None
        if value.isdigit():
            return int(value)
        try:
            return by_name(value)
        except KeyError:
            raise LookupError('no %s named %r on this host' % (what, value)) from None
    return one(owner, lambda n: pwd.getpwnam(n).pw_uid, 'user'), one(group, lambda n: grp.getgrnam(n).gr_gid, 'group')


def _diff(old, new, path):
    # A unified diff of two texts (bytes or None), '' when they are the same, with every line of both as
    # context: the local side redacts each text whole, as a read of it, and keeps 3 lines around each
    # change (diff-view.ts). A text's last line without a newline is marked as diff -u marks it. Cut at
    # a line once DIFF_CAP is reached, with a note. Past DIFF_BYTES or DIFF_WORK, a one-line note (not
    # starting with ---) says why it was left out.
    biggest = max(len(old or b''), len(new or b''))
    if biggest > DIFF_BYTES:
        return '(diff left out: the file is %.1f MiB, over the %d MiB a diff is made for)\n' % (biggest / (1 << 20), DIFF_BYTES >> 20)
    def lines(text):
        parts = (text or b'').decode('utf-8', 'replace').split('\n')
        return [p + '\n' for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    a, b = lines(old), lines(new)
    if a == b:
        return ''
    # Only the lines between the first and the last change are matched (diff -u does the same).
    both = min(len(a), len(b))
    head = 0
    while head < both and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < both - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    mid_a, mid_b = a[head:len(a) - tail], b[head:len(b) - tail]
    try:
        opcodes = _Matcher(None, mid_a, mid_b).get_opcodes()
    except _TooMuchWork:
        return '(diff left out: the %d lines from the first change to the last are too many, or too alike, to compare quickly)\n' % max(len(mid_a), len(mid_b))
    def span(count):
        # One hunk of every line, its range as diff -u writes it: ",1" left out, an empty text's 0,0.
        return '1' if count == 1 else '%d,%d' % (1 if count else 0, count)
    rows = ['--- %s\n' % (path if old is not None else '/dev/null'), '+++ %s\n' % (path if new is not None else '/dev/null'), '@@ -%s +%s @@\n' % (span(len(a)), span(len(b)))]
    rows += [' ' + l for l in a[:head]]
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == 'equal':
            rows += [' ' + l for l in mid_a[i1:i2]]
        else:
            rows += ['-' + l for l in mid_a[i1:i2]] + ['+' + l for l in mid_b[j1:j2]]
    rows += [' ' + l for l in a[len(a) - tail:]]
    rows = [r if r.endswith('\n') else r + '\n\\ No newline at end of file\n' for r in rows]
    out = ''.join(rows)
    if len(json.dumps(out)) <= DIFF_CAP:
        return out
    kept, size = [], 0
    for row in rows:
        size += len(json.dumps(row))
        if size > DIFF_CAP:
            break
        kept.append(row)
    return ''.join(kept) + '… (diff cut: more than %d MiB)\n' % (DIFF_CAP >> 20)


class CommandError(Exception):
    pass


def _run(cx, argv, check=True, input=None, env=None):
    # argv[0] is a program name the local side checked: it runs as the file it resolved to, with the
    # secure PATH, in its own process group (a cancel kills it), its output captured, never on our pipes.
    real = cx['programs'][argv[0]]
    e = dict(os.environ, PATH=cx['path'], LC_ALL='C')
    e.update(env or {})
    p = rt.spawn(argv, executable=real, env=e, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(input)
    rt.ungroup(p.pid)
    out, err = out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')
    if check and p.returncode != 0:
        raise CommandError('%s failed (exit status %s): %s' % (' '.join(argv), p.returncode, (err.strip() or out.strip())[-2000:]))
    return p.returncode, out, err
