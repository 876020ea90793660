# remux runtime, stage 2: the protocol loop in the remote interpreter (Python >= 3.8, stdlib only).
# Sent by the local side as the first frame after the handshake (stage1.py) and run in stage 1's
# globals: I and O (the private pipes), put, CAP. Messages: call / cancel / ack / input / ping (local
# side), chunk / result / error / log / credit / pong (us). Bytes travel raw, not as base64 in JSON: a
# frame whose body begins with a 0 byte (never JSON's first) is binary, 0, a 4-byte big-endian call id,
# a 1-byte tag, then the bytes: from the local side a call's input (tag 0), from us a chunk (tag 0: the
# bytes a tool yielded, else the tag of a (tag, bytes) it yielded, as Exec's (1|2, output)). Stage 1
# is untouched by it: it reads only stage 2's frame, and stage 2 comes from the local side it speaks to.
import threading, traceback, logging, signal, select, queue, io
# Frames are read through a buffer: a frame's head and its body, and small frames together, in one read,
# and a body copied once (stage 1's rd reads each in pieces and copies them twice).
RB = io.open(I, 'rb', buffering=1 << 20, closefd=False)
def rd(k):
    b = RB.read(k)
    if len(b) < k:
        raise EOFError
    return b
W = threading.Lock()
T = {}
C = {}
cur = threading.local()
class ProtocolError(Exception):
    pass
class EncodeError(Exception):
    pass
class Cancelled(Exception):
    pass
def send(m):
    try:
        b = json.dumps(m, separators=(',', ':'), allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise EncodeError('the result cannot be sent as JSON: %s' % e)
    return out(b, 'message')
def out(b, what):
    if len(b) > CAP:
        raise EncodeError('the %s is %d bytes, more than the frame cap of %d' % (what, len(b), CAP))
    with W:
        put(b)
    return len(b)
BYTES = (bytes, bytearray, memoryview)
def chunk(i, x):
    # A chunk as a binary frame when it is bytes or (tag 1..255, bytes), else as JSON; its size in bytes.
    t = 0
    if isinstance(x, tuple) and len(x) == 2 and type(x[0]) is int and 0 < x[0] < 256 and isinstance(x[1], BYTES):
        t, x = x
    if not isinstance(x, BYTES):
        return send({'t': 'chunk', 'id': i, 'v': x})
    return out(struct.pack('>BIB', 0, i, t) + x, 'chunk')
def err(i, e):
    return {'t': 'error', 'id': i, 'type': type(e).__name__, 'message': str(e), 'errno': getattr(e, 'errno', None), 'tb': ''.join(traceback.format_exception(type(e), e, e.__traceback__))}
# Flow control of a call that asks for it (w: its window in bytes): chunks are sent while fewer than w
# bytes of them wait unacknowledged; then the call's generator is not pulled, so a command's output
# stays in its pipe and the command blocks. The local side acknowledges (ack {id, n}) what its consumer took.
class Call:
    def __init__(s, i, w, iw):
        s.id = i
        s.ev = threading.Event()
        s.kills = []
        s.w = w
        s.out = 0
        s.cv = threading.Condition()
        s.done = threading.Event()
        s.inp = Input(iw) if iw else None
    def took(s, n):
        with s.cv:
            s.out -= n
            s.cv.notify_all()
    def cancel(s):
        s.ev.set()
        s.took(0)
        if s.inp:
            s.inp.close()
        for k in list(s.kills):
            try:
                k()
            except Exception:
                pass
# Input of a call that streams it (i: its window in bytes): the local side sends its bytes in binary
# frames, and input {id, d: null} at its end, while fewer than i bytes of them wait unwritten here, and
# we grant it more (credit {id, n}) as rt.feed writes them on; so a big input never piles up here, nor
# there. Bytes past that credit fail the call: what waits here stays within its window.
class Input:
    def __init__(s, w):
        s.w = w
        s.q = queue.Queue()
        s.over = False
        # Received (the reading thread counts) and written on (rt.feed's): what waits is the difference.
        s.got = 0
        s.put_on = 0
    def put(s, d):
        if s.over:
            return
        if d is not None:
            s.got += len(d)
            if s.got - s.put_on > s.w:
                raise ProtocolError('input sent past its credit: %d bytes wait unwritten, the window is %d' % (s.got - s.put_on, s.w))
        s.q.put(d)
    # The call is over, or its input is no longer written: what comes later is dropped.
    def close(s):
        s.over = True
        s.q.put(None)
# A watcher process outlives this interpreter: the process groups of running children are registered
# with it, and when this interpreter ends without stopping them (killed, where no cancel runs), its stdin
# closes and it kills them, TERM then KILL after GRACE seconds, as the SSH wrapper's own watcher does.
# Registering is a write of the group id into a slot of a table in memory both share (memfd, Linux), which
# the watcher reads only once its stdin has closed: no message and no wake-up of the watcher per child.
# Without memfd, or with the table full, +PID / -PID lines go to its stdin instead. Its pipe and the table
# are non-inheritable: no child keeps them. It starts before the first child does (rt.spawning): started
# when that child was registered, its start-up was a window in which this interpreter, if killed, left the
# child running unwatched. A child is written to the table right after it starts (its pid is known only
# then): an interpreter killed in between leaves that one child unwatched.
WATCHER = """import os, signal, struct, sys, time
signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
g = set()
for l in sys.stdin:
    (g.add if l[0] == '+' else g.discard)(int(l[1:]))
if len(sys.argv) > 1:
    t = os.pread(int(sys.argv[1]), %d, 0)
    g.update(p for p in struct.unpack('<%%di' %% (len(t) // 4), t[:len(t) // 4 * 4]) if p > 0)
for s in (signal.SIGTERM, signal.SIGKILL):
    for p in g:
        try:
            os.killpg(p, s)
        except OSError:
            pass
    if g and s == signal.SIGTERM:
        time.sleep(%s)
"""
GRACE = 2
SLOTS = 4096
try:
    TABLE = os.memfd_create('remux-groups', os.MFD_CLOEXEC)
except (AttributeError, OSError):
    TABLE = None
FREE = list(range(SLOTS)) if TABLE is not None else []
SLOT = {}
WG = set()
WL = threading.Lock()
WP = [None]
def watcher():
    # A new watcher (none yet, or it died), told every group still running. Called holding WL.
    import subprocess
    table = () if TABLE is None else (TABLE,)
    p = WP[0] = subprocess.Popen([sys.executable or 'python3', '-S', '-c', WATCHER % (SLOTS * 4, GRACE)] + [str(f) for f in table], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, pass_fds=table)
    if WG:
        os.write(p.stdin.fileno(), ''.join('+%d\n' % g for g in WG).encode())
def watching():
    with WL:
        if WP[0] is None or WP[0].poll() is not None:
            watcher()
def watch(op, pid):
    with WL:
        if op == '+' and FREE:
            i = SLOT[pid] = FREE.pop()
            os.pwrite(TABLE, struct.pack('<i', pid), i * 4)
            return
        if op == '-' and pid in SLOT:
            i = SLOT.pop(pid)
            os.pwrite(TABLE, bytes(4), i * 4)
            FREE.append(i)
            return
        (WG.add if op == '+' else WG.discard)(pid)
        p = WP[0]
        if p is not None and p.poll() is None:
            try:
                os.write(p.stdin.fileno(), ('%s%d\n' % (op, pid)).encode())
                return
            except OSError:
                pass
        if WG:
            watcher()
# For tools: the running call, and children in their own process group that a cancel kills whole.
class rt:
    @staticmethod
    def call():
        return cur.c
    @staticmethod
    def spawn(argv, **kw):
        import subprocess
        rt.spawning()
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        rt.group(p.pid)
        return p
    # Raises Cancelled once the running call is cancelled: nothing more is started for it.
    @staticmethod
    def check():
        if cur.c.ev.is_set():
            raise Cancelled('cancelled')
    # Right before starting a child that rt.group will register: rt.check, and the watcher runs already,
    # so that registering the child is one write to it.
    @staticmethod
    def spawning():
        rt.check()
        watching()
    # A child of the running call that leads a process group of its own: a cancel kills the group whole,
    # a cancel that came while it was being started too, and so does the watcher if this interpreter
    # dies first. Once the child is reaped, rt.ungroup(pid) (its pid may then be reused).
    @staticmethod
    def group(pid):
        c = cur.c
        watch('+', pid)
        k = lambda: os.killpg(pid, signal.SIGKILL)
        c.kills.append(k)
        if c.ev.is_set():
            try:
                k()
            except OSError:
                pass
    @staticmethod
    def ungroup(pid):
        watch('-', pid)
    # Writes the running call's input into fd (a child's stdin) on a thread of its own, and closes fd at
    # the input's end, when the child stops reading it (EPIPE), or once the call is over: the child's end,
    # not its input's, ends the call. fd is made non-blocking, so a full pipe never holds the thread past that.
    @staticmethod
    def feed(fd):
        c = cur.c
        i = c.inp
        def write():
            owed = 0
            wait = select.poll()
            wait.register(fd, select.POLLOUT)
            try:
                os.set_blocking(fd, False)
                while True:
                    v = i.q.get()
                    if v is None or i.over:
                        return
                    n = len(v)
                    while v:
                        try:
                            v = v[os.write(fd, v):]
                        except BlockingIOError:
                            if i.over:
                                return
                            wait.poll(500)
                    owed += n
                    i.put_on += n
                    if owed >= i.w // 4:
                        send({'t': 'credit', 'id': c.id, 'n': owed})
                        owed = 0
            except OSError:
                pass
            finally:
                i.close()
                os.close(fd)
        threading.Thread(target=write, daemon=True).start()
    # Quit: once the calling call's result is sent, cancel what runs (as on EOF) and exit.
    @staticmethod
    def quit():
        me = cur.c
        def q():
            me.done.wait()
            for c in list(C.values()):
                c.cancel()
            os._exit(0)
        threading.Thread(target=q).start()
def work(c, f, a):
    cur.c = c
    try:
        r = f(*a)
        if hasattr(r, 'throw') and hasattr(r, 'send'):
            while True:
                try:
                    x = next(r)
                except StopIteration as e:
                    r = e.value
                    break
                if c.ev.is_set():
                    r.close()
                    raise Cancelled('cancelled')
                n = chunk(c.id, x)
                if c.w:
                    with c.cv:
                        c.out += n
                        while c.out >= c.w and not c.ev.is_set():
                            c.cv.wait()
        m = {'t': 'result', 'id': c.id, 'v': r}
        send(m)
    except BaseException as e:
        if not c.ev.is_set():
            try:
                send(err(c.id, e))
            except Exception as e2:
                send(err(c.id, e2))
    finally:
        C.pop(c.id, None)
        if c.inp:
            c.inp.close()
        c.done.set()
class H(logging.Handler):
    def emit(s, r):
        try:
            send({'t': 'log', 'id': getattr(getattr(cur, 'c', None), 'id', None), 'level': r.levelname, 'name': r.name, 'msg': r.getMessage()})
        except Exception:
            pass
logging.root.addHandler(H())
logging.root.setLevel(logging.INFO)
def handle(m):
    i = m['id']
    # Answered by this thread at once, however busy the calls are: the local side's liveness check.
    if m['t'] == 'ping':
        send({'t': 'pong', 'id': i})
        return
    if m['t'] in ('cancel', 'ack', 'input'):
        c = C.get(i)
        if not c:
            return
        if m['t'] == 'cancel':
            c.cancel()
        elif m['t'] == 'ack':
            c.took(m['n'])
        elif m['d'] is not None:
            raise ProtocolError('input data comes in binary frames, not in an input message')
        elif c.inp:
            c.inp.put(None)
        return
    if m['t'] != 'call':
        raise ProtocolError('unknown message type %r' % m['t'])
    h = m['tool']
    # A tool whose code fails to load keeps failing with that error: the local side sends it only once.
    if 'src' in m:
        g = {'rt': rt, '__name__': m['name']}
        try:
            exec(compile(m['src'], '<remux tool %s>' % m['name'], 'exec'), g)
            T[h] = g
        except Exception as e:
            T[h] = e
    if isinstance(T.get(h), Exception):
        send(err(i, T[h]))
        return
    g = T.get(h, {})
    f = g.get(m['m'])
    if m['m'].startswith('_') or not callable(f):
        # Named as its author knows it (a custom tool's name), not by the hash it is kept under.
        raise ProtocolError('no method %r in tool %s: its Python has no top-level function of that name' % (m['m'], g.get('__name__', h)))
    c = C[i] = Call(i, m.get('w'), m.get('i'))
    submit((c, f, m['a']))
# Calls run on worker threads kept between calls (starting a thread costs more than a short call); a
# worker is started when none is idle, and at most IDLE wait for the next call once a burst is over.
# An idle worker waits on a lock of its own: a call wakes exactly the one it is handed to.
IDLE = 16
L = threading.Lock()
idle = []
def worker(job):
    me = [None, threading.Lock()]
    me[1].acquire()
    while True:
        work(*job)
        with L:
            if len(idle) >= IDLE:
                return
            idle.append(me)
        me[1].acquire()
        job = me[0]
def submit(job):
    with L:
        w = idle.pop() if idle else None
    if w is None:
        threading.Thread(target=worker, args=(job,), daemon=True).start()
    else:
        w[0] = job
        w[1].release()
while True:
    try:
        k = struct.unpack('>I', rd(4))[0]
        if k > CAP:
            send({'t': 'error', 'id': None, 'type': 'ProtocolError', 'message': 'a frame of %d bytes is more than the cap of %d; the link is closed' % (k, CAP)})
            break
        b = rd(k)
    except EOFError:
        break
    m = None
    try:
        if b[:1] == b'\0':
            # A call's input: 0, its id, tag 0, the bytes. A malformed one fails its call, or the link without an id.
            m = {'id': struct.unpack('>I', b[1:5])[0] if len(b) >= 6 else None}
            if m['id'] is None or b[5] != 0:
                raise ProtocolError('malformed binary frame: %d bytes, not 0, a 4-byte call id, tag 0 and input bytes' % len(b))
            c = C.get(m['id'])
            if c and c.inp:
                c.inp.put(memoryview(b)[6:])
        else:
            m = json.loads(b)
            handle(m)
    except Exception as e:
        i = m.get('id') if isinstance(m, dict) else None
        send(err(i, e if isinstance(e, ProtocolError) else ProtocolError('malformed frame: %s: %s' % (type(e).__name__, e))))
        # The call it fails stops here too (its answer is that error).
        if type(i) is int and i in C:
            C[i].cancel()
for c in list(C.values()):
    c.cancel()
os._exit(0)
