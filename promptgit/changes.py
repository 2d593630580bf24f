"""Telling watchers that the store changed: a beacon file every write appends to.

Every promptgit write (the library, the API and the page, a push's post-receive,
an archive or rename) appends one byte to `<store>/.promptgit/changed` once its
refs have landed. A watcher (`promptgit serve`'s watch endpoint, its webhooks)
polls the file's stat, one system call, and on a change reads the ref tips it
cares about. The beacon is only a hint: the ref tips are the truth, and a
watcher also rescans now and then to catch what bypasses promptgit (a hand-run
`git update-ref` on the server).

The file is truncated when it grows past `MAX_SIZE`; its stat (inode, size,
mtime) still changes on every write, so no write goes unnoticed.
"""

from __future__ import annotations

import os
from pathlib import Path

BEACON = ".promptgit/changed"
MAX_SIZE = 64 * 1024

Stamp = tuple[int, int, int]  # inode, size, mtime in ns


def touch(store: str | os.PathLike[str]) -> None:
    """Tell watchers of `store` that something changed. Never fails a write: a lost
    beacon only delays watchers until their next rescan."""
    ring(Path(store) / BEACON)


def ring(path: Path) -> None:
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, b".")
            if os.fstat(fd).st_size > MAX_SIZE:
                os.ftruncate(fd, 0)
                os.write(fd, b".")
        finally:
            os.close(fd)
    except OSError:
        pass


def stamp(store: str | os.PathLike[str]) -> Stamp | None:
    """What the beacon looks like now (None: nothing has rung it yet)."""
    try:
        st = os.stat(Path(store) / BEACON)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
