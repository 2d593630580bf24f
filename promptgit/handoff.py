"""Handing a push's hooks to `promptgit serve`, which has their code imported already.

A Python hook spends most of its time importing (pygit2, the policy, the store).
While `promptgit serve` runs, it keeps a helper process (this module's `serve`)
with all of that imported, listening on `<store>/.promptgit/hooks.sock`. The
hook shims start a tiny client (hooks.CLIENT_TEXT, standard library only, `python -S`)
that sends the hook's name, environment, working directory and input there; the
helper forks, and the child runs exactly what the hook would have run,
`receive.main`, with that environment, then sends back its messages and exit
code. One policy, one code path: only the imports are saved.

It fails closed. When nothing listens (no server, or the helper is gone) the
client runs the hook in its own process as before; once connected, anything
short of an answer (the helper killed, a timeout) refuses the push. The socket
is the server user's alone (mode 0600, and the peer's uid is checked), since
what it runs records who pushed.

Without a server, a pre-receive that ran in its own process and accepted the push
stays for its post-receive (`stay_for_post_receive`): a child with everything
imported listens on `<repo>/promptgit/push-PID.sock` (PID: receive-pack's) until
the post-receive's client hands it the hook, or receive-pack is gone. Same
protocol, same `receive.main`: a push pays for the imports once, not twice.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from . import locks
from .hooks import SOCKET, push_socket

# Imported once, in the helper, for every child: the modules a hook runs, and what
# they import only when first used (so that a command that only reads never pays
# for them; a hook always does).
PRELOADED = (
    *(f"promptgit.{m}" for m in ("receive", "store", "policy", "operations", "lifecycle", "content")),
    *(f"promptgit.{m}" for m in ("render", "parsing", "sandbox", "prompt_tests", "webhooks")),
    *("pygit2", "yaml", "jinja2.sandbox", "jinja2.meta", "jsonschema", "sqlite3", "datetime", "getpass"),
)
MAX_FRAME = 64 * 1024 * 1024  # a push's ref lines and environment: far below this


def serve(store: Path, parent: int) -> None:
    """Listen on the store's hook socket and run each hook handed over, in a child of
    this (single-threaded) process. Ends when `parent` (the server) is gone."""
    import importlib

    for module in PRELOADED:
        importlib.import_module(module)

    folder = (store / SOCKET).parent.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)  # a socket's path may not exceed 107 bytes: bind by its name alone
    path = Path((store / SOCKET).name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = path.with_name(f".hooks.{os.getpid()}.sock")
    tmp.unlink(missing_ok=True)
    listener.bind(str(tmp))
    os.chmod(tmp, 0o600)
    listener.listen(64)
    os.replace(tmp, path)  # a server started later takes over the name
    ours = os.stat(path).st_ino
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    listener.settimeout(1.0)
    try:
        while os.getppid() == parent:
            conn = _accept(listener)
            if conn is None:
                continue
            if os.fork() == 0:
                # the hook waits for what it starts (git, a repack): an ignored SIGCHLD,
                # which this process uses to reap its children, would survive into them
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                listener.close()
                code = 1
                try:
                    _run(conn)
                    code = 0
                finally:
                    os._exit(code)
            conn.close()
    finally:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == ours:
                path.unlink()


WAIT_FOR_POST_RECEIVE = 600.0  # seconds at most; it normally comes within milliseconds


def stay_for_post_receive(git_dir: str, push: str) -> None:
    """Fork a child that keeps this process's imports for the push's post-receive
    (see the module's doc); return at once in the parent. The child lets go of git's
    pipes first, so git never waits for it, and leaves when receive-pack does. Any
    failure here only means the post-receive imports for itself."""
    path = Path(os.path.relpath(Path(git_dir) / push_socket(push)))  # a socket's path: <= 107 bytes
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        path.unlink(missing_ok=True)
        listener.bind(str(path))
        os.chmod(path, 0o600)
        listener.listen(1)
        ours = os.stat(path).st_ino
    except OSError:
        listener.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() != 0:
        listener.close()
        return
    try:
        os.setsid()  # not stopped by a Ctrl-C meant for the push; it ends with it anyway
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        listener.settimeout(0.2)
        deadline = time.monotonic() + WAIT_FOR_POST_RECEIVE
        while time.monotonic() < deadline and locks.running(push):
            conn = _accept(listener)
            if conn is None:
                continue
            listener.close()
            _run(conn)
            break
    finally:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == ours:
                path.unlink()
        os._exit(0)


def _accept(listener: socket.socket) -> socket.socket | None:
    """The next connection from a process of this user, or None (the listener's timeout
    passed, or another user knocked): what runs here records who pushed."""
    try:
        conn, _addr = listener.accept()
    except TimeoutError:
        return None
    if _peer_uid(conn) != os.getuid():
        conn.close()
        return None
    return conn


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _run(conn: socket.socket) -> None:
    """In a forked child: become the hook's process (its environment, folder and
    input), run it, and answer with its messages and exit code."""
    from .receive import main

    conn.settimeout(60)
    header = json.loads(_frame(conn))
    stdin = _frame(conn)
    os.chdir(header["cwd"])
    os.environ.clear()
    os.environ.update(header["env"])
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="replace")
    messages = io.StringIO()
    sys.stderr = sys.stdout = messages
    code = main([str(header["hook"]), str(header["push"])])
    answer = json.dumps({"code": code, "stderr": messages.getvalue()}).encode()
    conn.settimeout(None)
    conn.sendall(struct.pack(">I", len(answer)) + answer)
    conn.close()


def _frame(conn: socket.socket) -> bytes:
    size = struct.unpack(">I", _exactly(conn, 4))[0]
    if size > MAX_FRAME:
        raise ValueError(f"a frame of {size} bytes")
    return _exactly(conn, size)


def _exactly(conn: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = conn.recv(min(n - len(data), 1 << 20))
        if not chunk:
            raise EOFError("the hook went away")
        data += chunk
    return bytes(data)


def start(store: Path) -> subprocess.Popen[bytes]:
    """Start the helper for `serve`'s store; returns its process (stop it with
    `.terminate()`). Its failure to start only means hooks run in their own process."""
    return subprocess.Popen(
        # absolute: a store folder named `run` is not the shims' `run HOOK PUSH`
        [sys.executable, "-m", "promptgit.handoff", str(store.absolute()), str(os.getpid())],
        stdin=subprocess.DEVNULL,
    )


def run_here(hook: str, push: str) -> int:
    """A hook in its own process (the client found no process to hand it to): run it
    and, after an accepted pre-receive, stay for the push's post-receive."""
    from .receive import main

    code = main([hook, push])
    if hook == "pre-receive" and code == 0:
        stay_for_post_receive(os.environ.get("GIT_DIR", "."), push)
    return code


if __name__ == "__main__":
    if sys.argv[1] == "run":  # python -m promptgit.handoff run HOOK PUSH: the shims' client
        sys.exit(run_here(sys.argv[2], sys.argv[3]))
    serve(Path(sys.argv[1]), int(sys.argv[2]))
