# Service: systemd units through systemctl (after common.py). Each verb asks systemctl first and acts
# only when the unit is not already so; restart and reload always act.


def _active(cx, name):
    return _run(cx, ['systemctl', 'is-active', '--', name], check=False)[0] == 0


def _enabled(cx, name):
    # is-enabled prints enabled, enabled-runtime, static, alias, indirect, disabled, masked, …
    code, out, _ = _run(cx, ['systemctl', 'is-enabled', '--', name], check=False)
    return code == 0 and out.strip() in ('enabled', 'enabled-runtime', 'alias')


def _state(cx, name, changed):
    return {'changed': changed, 'active': _active(cx, name), 'enabled': _enabled(cx, name)}


def _verb(cx, verb, name, needed):
    if needed:
        _run(cx, ['systemctl', verb, '--', name])
    return _state(cx, name, needed)


def start(cx, name):
    return _verb(cx, 'start', name, not _active(cx, name))


def stop(cx, name):
    return _verb(cx, 'stop', name, _active(cx, name))


def restart(cx, name):
    return _verb(cx, 'restart', name, True)


def reload(cx, name):
    return _verb(cx, 'reload', name, True)


def enable(cx, name):
    return _verb(cx, 'enable', name, not _enabled(cx, name))


def disable(cx, name):
    return _verb(cx, 'disable', name, _enabled(cx, name))


def converge(cx, name, started=None, enabled=None):
    # Only what is asked for: started / enabled left out (None) are not touched.
    changed = False
    if enabled is not None and enabled != _enabled(cx, name):
        _run(cx, ['systemctl', 'enable' if enabled else 'disable', '--', name])
        changed = True
    if started is not None and started != _active(cx, name):
        _run(cx, ['systemctl', 'start' if started else 'stop', '--', name])
        changed = True
    return _state(cx, name, changed)
