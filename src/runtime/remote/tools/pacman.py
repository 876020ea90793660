# Pacman and PacmanRepository (after common.py): packages through pacman, the sync databases, and a
# repository's section of pacman.conf with its signing key in pacman's keyring (pacman-key). Paths come
# resolved and checked by the local side.
import os, re


def _installed(cx, names):
    # name -> installed version, or None (pacman -Q prints "name version" for those it knows).
    _, out, _ = _run(cx, ['pacman', '-Q', '--'] + names, check=False)
    have = dict(l.split(' ', 1) for l in out.splitlines() if ' ' in l)
    return {n: have.get(n) for n in names}


def _outdated(cx, names):
    _, out, _ = _run(cx, ['pacman', '-Qu', '--'] + names, check=False)
    return set(l.split(' ', 1)[0] for l in out.splitlines() if l.strip())


def package(cx, names, state):
    before = _installed(cx, names)
    if state == 'present':
        act, argv = [n for n in names if before[n] is None], ['-S', '--needed']
    elif state == 'absent':
        act, argv = [n for n in names if before[n] is not None], ['-R']
    else:
        stale = _outdated(cx, names)
        act, argv = [n for n in names if before[n] is None or n in stale], ['-S']
    if act:
        _run(cx, ['pacman', '--noconfirm', '--noprogressbar'] + argv + ['--'] + act)
    return {'changed': bool(act), 'versions': _installed(cx, names)}


def _dbs(path):
    try:
        return sorted((e.name, e.stat().st_size, e.stat().st_mtime) for e in os.scandir(path) if e.is_file())
    except FileNotFoundError:
        return []


def update(cx, sync):
    seen = _dbs(sync)
    _run(cx, ['pacman', '--noconfirm', '--noprogressbar', '-Sy'])
    return {'changed': _dbs(sync) != seen}


def _sections(text):
    # [name or None for the preamble, body lines, tail lines]: the tail is the blank and comment lines
    # after a section's last setting, which belong to what follows (a commented-out [testing]).
    out = [[None, [], []]]
    for line in text.splitlines():
        m = re.match(r'\s*\[([^\]]+)\]\s*$', line)
        if m:
            out.append([m.group(1), [], []])
        part = out[-1]
        if not line.strip() or line.lstrip().startswith('#'):
            part[2].append(line)
        else:
            part[1] += part[2] + [line]
            part[2] = []
    return out


def _trust(cx, key, fingerprint):
    # pacman's keyring holds the key, locally signed; nothing is done when it lists the key already.
    if _run(cx, ['pacman-key', '--list-keys', fingerprint], check=False)[0] == 0:
        return False
    _run(cx, ['pacman-key', '--add'], input=key.encode())
    _run(cx, ['pacman-key', '--lsign-key', fingerprint])
    return True


def repository(cx, name, state, body, path, key, fingerprint):
    # The section [name] holds exactly `body`'s lines; a new one goes at the end. A key is trusted first,
    # so pacman.conf never names a repository whose key could not be added.
    keyChanged = _trust(cx, key, fingerprint) if key is not None else False
    old = _read(path)
    parts = _sections(old.decode())
    mine = [p for p in parts if p[0] == name]
    if state == 'absent':
        parts = [p for p in parts if p[0] != name]
    elif mine:
        mine[0][1] = ['[%s]' % name] + body
        parts = [p for p in parts if p[0] != name or p is mine[0]]
    else:
        if parts[-1][2][-1:] != ['']:
            parts[-1][2].append('')
        parts.append([name, ['[%s]' % name] + body, []])
    data = ('\n'.join(l for p in parts for l in p[1] + p[2]).rstrip('\n') + '\n').encode()
    changed, _ = _put(path, data)
    return {'changed': changed or keyChanged, 'diff': _diff(old, data, path)}
