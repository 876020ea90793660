# Apt and AptRepository (after common.py): packages through apt-get and dpkg-query, the package lists,
# and DEB822 sources with their signing keys. Paths come resolved and checked by the local side.
import base64, os

_APT = ['-q', '-y', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold']
_ENV = {'DEBIAN_FRONTEND': 'noninteractive'}


def _installed(cx, names):
    # name -> installed version, or None.
    code, out, _ = _run(cx, ['dpkg-query', '-W', '-f', '${binary:Package}\\t${Package}\\t${db:Status-Abbrev}\\t${Version}\\n', '--'] + names, check=False)
    found = {}
    for line in out.splitlines():
        full, pkg, status, version = (line.split('\t') + ['', '', '', ''])[:4]
        if status.startswith('ii'):
            found[full] = found[pkg] = version
    return {n: found.get(n) for n in names}


def _candidate(cx, name):
    _, out, _ = _run(cx, ['apt-cache', 'policy', '--', name], check=False)
    for line in out.splitlines():
        if line.strip().startswith('Candidate:'):
            v = line.split(':', 1)[1].strip()
            return None if v == '(none)' else v
    return None


def package(cx, names, state):
    before = _installed(cx, names)
    if state == 'present':
        act = [n for n in names if before[n] is None]
        verb = 'install'
    elif state == 'absent':
        act = [n for n in names if before[n] is not None]
        verb = 'remove'
    else:
        act = [n for n in names if before[n] is None or before[n] != _candidate(cx, n)]
        verb = 'install'
    if act:
        _run(cx, ['apt-get'] + _APT + [verb, '--'] + act, env=_ENV)
    return {'changed': bool(act), 'versions': _installed(cx, names)}


def _lists(path):
    # What the package lists are now: names, sizes and mtimes.
    try:
        return sorted((e.name, e.stat().st_size, e.stat().st_mtime) for e in os.scandir(path) if e.is_file())
    except FileNotFoundError:
        return []


def update(cx, ttl, lists):
    now = __import__('time').time()
    seen = _lists(lists)
    if ttl is not None and seen and now - max(m for _, _, m in seen) < ttl:
        return {'changed': False, 'skipped': True}
    _run(cx, ['apt-get', '-q', 'update'], env=_ENV)
    return {'changed': _lists(lists) != seen, 'skipped': False}


def repository(cx, state, sources, text, keys, key):
    # keys: the key files this repository may have (.asc, .gpg); present writes `key` to the first.
    old = _old(sources)
    if state == 'absent':
        removed = [_remove(p) for p in [sources] + keys]
        return {'changed': any(removed), 'diff': _diff(old, None, sources)}
    data = text.encode()
    keyChanged = False
    if key is not None:
        # /etc/apt/keyrings is where Debian keeps the keys sources name by Signed-By (root's, 0755).
        _mkdir(os.path.dirname(keys[0]), 0o755, 0, 0)
        keyChanged, _ = _put(keys[0], base64.b64decode(key), 0o644, 0, 0)
    changed, _ = _put(sources, data, 0o644, 0, 0)
    return {'changed': changed or keyChanged, 'diff': _diff(old, data, sources)}
