"""Installing the server-side git hooks: the shims' text and `install`.

Each prompt repository gets three shims (the files in the top-level `hooks/`
folder, with the absolute path of this Python). pre-receive and post-receive
start `promptgit-handoff.py`, which hands the hook to a process that has its
imports done already (`promptgit serve`'s helper, or for a post-receive its own
push's pre-receive: handoff.py), else runs `python -m promptgit.handoff run HOOK`,
which runs receive.py, where the hooks' work lives. reference-transaction is sh
and awk only (no Python start-up). See receive.py for what each does. When the
installing Python is gone (a moved or deleted venv), the Python shims fall back
to a `promptgit` or python3 on PATH that imports promptgit, or refuse and name
`promptgit hooks install`.

Shims installed by promptgit 0.1 run `python -m promptgit.hooks HOOK`; that
entry point still works (below), and `promptgit hooks install` rewrites them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .names import CONFIG_FILE

HOOKS = ("pre-receive", "post-receive", "reference-transaction")
RULED = ("refs/heads/", "refs/tags/", "refs/notes/")  # what the rules read, so what a push re-checks

_SHIMS = {
    "pre-receive": """\
#!/bin/sh
# promptgit: every pushed ref is checked by the same policy as the CLI.
{find_python}
  echo "promptgit: push rejected: nothing was changed" >&2
  exit 1
fi
{find_store}
set -- "$store/{socket}"
# no `promptgit serve` to hand it to: run it here, without the client's start
[ -S "$1" ] || exec "$py" -m promptgit.handoff run pre-receive "$PPID"
exec "$py" -S "${{0%/*}}/{client}" pre-receive "$PPID" "$@"
""",
    "reference-transaction": """\
#!/bin/sh
# promptgit: with the refs being updated locked, take the repository's write lock
# (as the library does) and refuse if any other ref pre-receive read has changed
# since: pre-receive cannot lock what it reads. The lock is let go once the refs
# have landed. Plain sh and awk: Python here would double what hooks add to a push.
lock=promptgit/write.lock
state="promptgit/push-$PPID"
case "$1" in
  prepared) ;;
  committed|aborted) [ "$(cut -d' ' -f1 "$lock" 2>/dev/null)" = "$PPID" ] && rm -f "$lock"; exit 0 ;;
  *) exit 0 ;;
esac
[ -f "$state.refs" ] || exit 0  # not a push that pre-receive checked
updates=$(printf '%s\\n' "$(cat)" | grep -c .)
if [ -f "$state.atomic" ] && [ "$updates" -lt "$(grep -c . "$state.pushed")" ]; then
  echo "promptgit: these refs depend on each other: push them together with 'git push --atomic'" >&2
  exit 1
fi
# The lock holds its owner, "PID STARTTIME HOST" (receive-pack's, as promptgit/locks.py
# writes for the library), and is broken only when that owner is provably gone.
started() {{ awk '{{ sub(/.*\\) /, ""); print $20 }}' "/proc/$1/stat" 2>/dev/null; }}
gone() {{
  set -- $(cat "$lock" 2>/dev/null)
  [ $# -eq 3 ] && [ "$3" = "$(uname -n)" ] || return 1
  if [ -d /proc/self ]; then
    [ -d "/proc/$1" ] || return 0
    [ "$2" != - ] && [ "$(started "$1")" != "$2" ]
  else
    kill -0 "$1" 2>&1 | grep -qi 'no such process'
  fi
}}
mkdir -p promptgit
tmp="promptgit/.write.lock.$$"
echo "$PPID $(started "$PPID" || echo -) $(uname -n)" > "$tmp"
tries=0
until ln "$tmp" "$lock" 2>/dev/null; do
  if gone; then rm -f "$lock"; continue; fi
  tries=$((tries + 1))
  if [ "$tries" -gt 200 ]; then
    rm -f "$tmp"
    echo "promptgit: $lock is held by another update; push again" >&2
    exit 1
  fi
  sleep 0.01
done
rm -f "$tmp"
changed=$(git for-each-ref --format='%(objectname) %(refname)' refs/heads refs/tags refs/notes |
  awk -v reviews="$([ -f "$state.reviews" ] && echo 1 || echo 0)" '
  FILENAME == ARGV[1] {{ pushed[$0] = 1; next }}  # the pushed refs: git checks their old values
  # other review branches: pre-receive kept them only when their number matters
  index($2, "refs/heads/review/") == 1 && reviews == 0 {{ next }}
  FILENAME == ARGV[2] {{ if (!($2 in pushed)) seen[$2] = $1; next }}
  !($2 in pushed) {{ if (seen[$2] != $1) print $2; delete seen[$2] }}
  END {{ for (ref in seen) print ref }}' "$state.pushed" "$state.refs" -)
[ -z "$changed" ] && exit 0
rm -f "$lock"
for ref in $changed; do echo "promptgit: $ref changed while this push was being checked" >&2; done
echo "promptgit: push rejected: another update landed first; fetch and push again" >&2
exit 1
""",
    "post-receive": """\
#!/bin/sh
# promptgit: record who pushed (the audit log), then stages serving a pushed draft
# follow it, as after 'promptgit edit'.
{find_python}
  echo "promptgit: the push landed, but no stage followed it and the audit log missed it" >&2
  exit 1
fi
{find_store}
set -- "$here/{push_socket}" "$store/{socket}"
# neither this push's pre-receive staying for it nor `promptgit serve`: run it here
[ -S "$1" ] || [ -S "$2" ] || exec "$py" -m promptgit.handoff run post-receive "$PPID"
exec "$py" -S "${{0%/*}}/{client}" post-receive "$PPID" "$@"
""",
}

# Where a shim looks for a process to hand its hook to, and tells the client (the
# sockets it passes): the repository, and the store, the nearest folder above it
# holding promptgit.yaml (as receive.py finds it).
_FIND_STORE = f"""\
here=$(cd "${{GIT_DIR:-.}}" && pwd -P)
store=${{here%/*}}
while [ -n "$store" ] && [ ! -f "$store/{CONFIG_FILE}" ]; do store=${{store%/*}}; done"""

# Shared by the two Python shims. Only the fallback costs a Python start: while the
# installing Python exists, finding it is one shell builtin.
_FIND_PYTHON = """\
# Run by the Python that installed promptgit or, when that is gone (a moved or
# deleted venv), by the one behind a `promptgit` on PATH or a python3 that imports it.
py={python}
if ! command -v "$py" >/dev/null 2>&1; then
  gone=$py
  py=$( (sed -n '1s/^#![[:space:]]*//p' "$(command -v promptgit)"; echo python3) 2>/dev/null |
    while read -r candidate; do
      $candidate -c 'import sys, pygit2, promptgit.receive; print(sys.executable)' 2>/dev/null && break
    done)
fi
if [ -z "$py" ]; then
  echo "promptgit: $gone, the Python these hooks were installed with, is gone, and no promptgit" \\
    "or python3 on PATH imports promptgit: run 'promptgit hooks install'" \\
    "with the promptgit you use now" >&2"""


CLIENT = "promptgit-handoff.py"  # beside the shims: hands a hook to `promptgit serve` (handoff.py)
SOCKET = ".promptgit/hooks.sock"  # where `promptgit serve`'s helper listens, in the store
PUSH_SOCKET = "promptgit/push-{}.sock"  # in the repository: a pre-receive staying for its post-receive


def push_socket(push: str) -> str:
    """Where the pre-receive of push `push` (receive-pack's pid) waits for its post-receive."""
    return PUSH_SOCKET.format(int(push))


# The shims' client: no site-packages, no promptgit import. It tries the sockets its
# shim names, in order (for a post-receive, its own push's pre-receive staying for it,
# handoff.stay_for_post_receive; then `promptgit serve`'s helper) and hands the hook
# to the first that answers; with none, it runs the hook itself.
CLIENT_TEXT = """\
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
        f"hook ({why}): {then}\\n"
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
"""


def shim(hook: str, python: str) -> str:
    """The text of a hook shim that runs `python` (already shell-quoted)."""
    if hook == "reference-transaction":  # sh and awk only: its braces are the shell's
        return _SHIMS[hook].format(python=python)
    return _SHIMS[hook].format(
        find_python=_FIND_PYTHON.format(python=python),
        find_store=_FIND_STORE,
        socket=SOCKET,
        push_socket=PUSH_SOCKET.replace("{}", "$PPID"),
        client=CLIENT,
    )


def _quote(path: str) -> str:
    return "'" + path.replace("'", "'\\''") + "'"


def shims(python: str | None = None) -> dict[str, str]:
    """Every hook's shim text, running `python` (default: this Python)."""
    exe = _quote(os.path.abspath(python or sys.executable))
    return {hook: shim(hook, exe) for hook in HOOKS}


def install(repo: str | os.PathLike[str], python: str | None = None) -> None:
    """(Re)install the shims into a bare repository, with this Python's absolute path."""
    hooks = Path(repo) / "hooks"
    hooks.mkdir(exist_ok=True)
    for hook, text in [*shims(python).items(), (CLIENT, CLIENT_TEXT)]:
        path = hooks / hook
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.replace(path)
    for sample in hooks.glob("*.sample"):
        sample.unlink()


if __name__ == "__main__":  # the entry point of shims installed by promptgit 0.1
    from promptgit.receive import main

    sys.exit(main())
