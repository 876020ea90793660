# remux runtime, stage 1: what stage 0 (bootstrap.ts) runs, zlib-compressed, with full-line comments and
# blank lines stripped. As small as it can be: it protects the stream, says hello (protocol version,
# capabilities, the Python), and runs stage 2 (stage2.py, the protocol loop), which the local side sends
# as the first frame once it has checked the hello. Wire: a 4-byte big-endian length, then that many
# bytes of UTF-8 JSON; nothing else ever reaches the stream.
import os, sys, json, struct
V = 1
CAP = 16 << 20
# The protocol keeps private copies of the pipes; 0/1/2 become /dev/null, so nothing a tool or its
# children print can reach the stream. os.dup makes non-inheritable descriptors: children never see them.
I = os.dup(0)
O = os.dup(1)
n = os.open(os.devnull, os.O_RDWR)
for f in (0, 1, 2):
    os.dup2(n, f)
def put(b):
    v = memoryview(struct.pack('>I', len(b)) + b)
    while v:
        v = v[os.write(O, v):]
def rd(k):
    b = bytearray()
    while len(b) < k:
        c = os.read(I, k - len(b))
        if not c:
            raise EOFError
        b += c
    return bytes(b)
put(json.dumps({'t': 'hello', 'v': V, 'caps': ['stream', 'cancel', 'log', 'tools'], 'py': sys.version.split()[0], 'pid': os.getpid(), 'cwd': os.getcwd(), 'cap': CAP}).encode())
try:
    k = struct.unpack('>I', rd(4))[0]
    if k <= CAP:
        exec(compile(json.loads(rd(k))['src'], '<remux stage 2>', 'exec'))
except EOFError:
    pass
os._exit(0)
