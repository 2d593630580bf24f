import _socket as socket  # the socket module's C core: the module itself takes 15 ms to import
import json
import os
import struct
import sys

hook, push, sockets = sys.argv[1], sys.argv[2], sys.argv[3:]


def run_here():
    os.execv(sys.executable, [sys.executable, "-m", "promptgit.handoff", "run", hook, push])


def refuse(why):
    outcome, then = "push rejected: nothing was changed;", "push again"
    if hook == "post-receive":  # pushing the same again runs no hook: say what finishes it
        outcome = "the push landed, but"
        then = "stages may not follow it yet: 'promptgit doctor --repair' on the store, or the next "
        then += "push or edit, finishes that"
    sys.stderr.write(
        f"promptgit: {outcome} the promptgit process it was handed to did not finish this "
        f"hook ({why}): {then}\n"
    )
    sys.exit(1)


def read(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("the server closed the connection")
        data += chunk
    return data


def connect(path):  # only a process of this user decides this user's push
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(2)
    try:
        conn.connect(os.path.relpath(path))  # a socket's path may not exceed 107 bytes
        if struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1] == os.getuid():
            return conn
    except OSError:
        pass
    conn.close()
    return None


conn = next((c for c in map(connect, sockets) if c is not None), None)
if conn is None:
    run_here()
stdin = sys.stdin.buffer.read()
header = json.dumps({"hook": hook, "push": push, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
try:
    conn.settimeout(300)
    conn.sendall(struct.pack(">I", len(header)) + header + struct.pack(">I", len(stdin)) + stdin)
    answer = json.loads(read(conn, struct.unpack(">I", read(conn, 4))[0]))
except Exception as e:
    refuse(type(e).__name__ + (f": {e}" if str(e) else ""))
sys.stderr.write(answer["stderr"])
sys.exit(answer["code"])
