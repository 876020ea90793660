# Exec: a program without a shell (argv), its output streamed back as chunks [1|2, base64]. It runs in
# its own process group, which a cancel or timeout kills whole (stage 2's rt.spawn).
import base64, os, selectors, shutil, subprocess, threading


def which(names, path):
    # For the policy check: each bare program name in `path`, symlinks resolved, or None.
    return [(lambda w: os.path.realpath(w) if w else None)(shutil.which(n, path=path)) for n in names]


def run(argv, cwd=None, path=None, input=None):
    env = dict(os.environ)
    if path is not None:
        env['PATH'] = path
    p = rt.spawn(argv, cwd=cwd, env=env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if input is not None:
        def feed():
            try:
                p.stdin.write(base64.b64decode(input))
                p.stdin.close()
            except OSError:
                pass
        threading.Thread(target=feed, daemon=True).start()
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ, 1)
    sel.register(p.stderr, selectors.EVENT_READ, 2)
    while sel.get_map():
        for key, _ in sel.select():
            data = os.read(key.fd, 65536)
            if data:
                yield [key.data, base64.b64encode(data).decode()]
            else:
                sel.unregister(key.fileobj)
    code = p.wait()
    return {'code': code if code >= 0 else None, 'signal': -code if code < 0 else None}
