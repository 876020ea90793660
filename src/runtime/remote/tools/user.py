# User: accounts through useradd / usermod / userdel, authorized_keys and sudoers drop-ins (after
# common.py). Paths come resolved and checked by the local side (cx['paths']).
import grp, os, pwd


def _account(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def home(name):
    # Asked before the policy check: where a user's authorized_keys lives.
    a = _account(name)
    return a.pw_dir if a else None


def _groups(name):
    return sorted(g.gr_name for g in grp.getgrall() if name in g.gr_mem)


def _facts(name, changed):
    a = _account(name)
    if a is None:
        return {'changed': changed, 'exists': False}
    return {'changed': changed, 'exists': True, 'uid': a.pw_uid, 'gid': a.pw_gid, 'home': a.pw_dir, 'shell': a.pw_shell, 'groups': _groups(name)}


def present(cx, name, o):
    a = _account(name)
    if a is None:
        argv = ['useradd']
        if o.get('uid') is not None:
            argv += ['-u', str(o['uid'])]
        if o.get('group'):
            argv += ['-g', o['group']]
        if o.get('groups'):
            argv += ['-G', ','.join(o['groups'])]
        if o.get('shell'):
            argv += ['-s', o['shell']]
        if o.get('comment') is not None:
            argv += ['-c', o['comment']]
        if o.get('system'):
            argv += ['-r']
        argv += ['-d', o['home']] + (['-m'] if o.get('createHome', True) else ['-M'])
        _run(cx, argv + ['--', name])
        return _facts(name, True)
    # Only what differs is changed; the home directory is never moved.
    argv = ['usermod']
    if o.get('uid') is not None and o['uid'] != a.pw_uid:
        argv += ['-u', str(o['uid'])]
    if o.get('group') and grp.getgrgid(a.pw_gid).gr_name != o['group'] and str(a.pw_gid) != o['group']:
        argv += ['-g', o['group']]
    if o.get('groups') is not None and sorted(o['groups']) != _groups(name):
        argv += ['-G', ','.join(o['groups'])]
    if o.get('shell') and o['shell'] != a.pw_shell:
        argv += ['-s', o['shell']]
    if o.get('comment') is not None and o['comment'] != a.pw_gecos:
        argv += ['-c', o['comment']]
    if o.get('explicitHome') and o['home'] != a.pw_dir:
        argv += ['-d', o['home']]
    if len(argv) > 1:
        _run(cx, argv + ['--', name])
    return _facts(name, len(argv) > 1)


def absent(cx, name, removeHome=False):
    if _account(name) is None:
        return _facts(name, False)
    _run(cx, ['userdel'] + (['-r'] if removeHome else []) + ['--', name])
    return _facts(name, True)


def _blob(line):
    # The key itself (type and base64), whatever options precede it or comment follows.
    f = line.split()
    for i, w in enumerate(f[:-1]):
        if w.startswith(('ssh-', 'ecdsa-', 'sk-')):
            return (w, f[i + 1])
    return tuple(f)


def authorizedKey(cx, user, key, state, path):
    a = _account(user)
    if a is None:
        raise KeyError('no user %r on this host' % user)
    # ~/.ssh belongs to the user, who could point it elsewhere (at /root/.ssh): the checked path must be
    # the home's own, and the no-follow walk fails on a link put there since.
    own = os.path.join(os.path.realpath(a.pw_dir), '.ssh', 'authorized_keys')
    if path != own:
        raise PermissionError(1, '%s is a symlink to %s: refused, nothing was written' % (own, path))
    old = _old(path)
    lines = (old or b'').decode().splitlines()
    want = _blob(key)
    kept = [l for l in lines if not l.strip() or l.lstrip().startswith('#') or _blob(l) != want]
    if state == 'present':
        new = lines if len(kept) < len(lines) else lines + [key]
    else:
        new = kept
    data = ('\n'.join(new) + '\n').encode() if new else b''
    if old is None and state == 'absent':
        return {'changed': False, 'diff': ''}
    # ~/.ssh: 0700, the file 0600, both the user's (sshd refuses keys others could write).
    _mkdir(os.path.dirname(path), 0o700, a.pw_uid, a.pw_gid)
    changed, _ = _put(path, data, 0o600, a.pw_uid, a.pw_gid)
    return {'changed': changed, 'diff': _diff(old, data, path)}


def sudoer(cx, name, rules, state, path):
    old = _old(path)
    if state == 'absent':
        return {'changed': _remove(path), 'diff': _diff(old, None, path)}
    data = ''.join(r + '\n' for r in rules).encode()

    def valid(tmp):
        # sudo would refuse to run at all with a broken drop-in: visudo checks it before it is in place.
        code, out, err = _run(cx, ['visudo', '-c', '-f', tmp], check=False)
        if code != 0:
            raise ValueError('visudo refused the sudoers rules for %s, nothing was written: %s' % (name, (err.strip() or out.strip()).replace(tmp, path)))

    changed, _ = _put(path, data, 0o440, 0, 0, valid)
    return {'changed': changed, 'diff': _diff(old, data, path)}
