"""Lock files that a crash cannot leave stuck.

A lock file holds its owner: `PID STARTTIME HOST` (STARTTIME is the process's
start in clock ticks since boot, from /proc, so a reused pid is not mistaken
for the owner). A lock is stale, and may be broken, only when its owner is
provably gone: same host, and no process with that pid and start time. A lock
from another host (shared storage) or from an owner we cannot read is never
broken. The reference-transaction shim writes and checks the same line.

Ref locks (`refs/heads/v1.0.lock`) are libgit2's and git's and hold no owner,
so the library claims them first in `promptgit/owners/PID` (and a push in
`promptgit/push-PID.pushed`): a ref lock whose claimant is gone is stale.

A prompt's repository can move (archive, restore, rename: lifecycle.py), which
puts a fence, `promptgit/moving`, in it first and then waits for every claim to
go. A writer claims, then looks for the fence: one of the two always sees the
other, so no write runs in a repository while it moves. A claim never creates
the repository's own folder, so a writer that opened it before it moved cannot
leave a half repository behind at the old path. A push the fence did not stop
(its pre-receive ran first) is waited for, so its post-receive's writes pass it
(`admit`).
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConcurrentUpdate

TIMEOUT = 2.0  # seconds to wait for a lock a live owner holds (like git's filesRefLockTimeout)
GRACE = 5.0  # seconds an unreadable lock file may be in the middle of being written
OWNERS = "promptgit/owners"  # inside a repository: which refs each library writer is locking
FENCE = "promptgit/moving"  # inside a repository: it is being moved (archived, renamed...)
_admitted = threading.local()


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None (gone, or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def me() -> str:
    """This process, as a lock's owner line (read once per process: a fork is another)."""
    pid = os.getpid()
    if _me[0] != pid:
        _me[:] = [pid, f"{pid} {start_time(pid) or '-'} {socket.gethostname()}"]
    return str(_me[1])


_me: list[int | str] = [0, ""]


def owner_gone(line: str) -> bool:
    """Whether the owner a lock names is provably gone: never for another host's."""
    parts = line.split()
    if len(parts) != 3 or not parts[0].isdigit():
        return False
    pid, started, host = int(parts[0]), parts[1], parts[2]
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists, owned by another user: look at its start time
    now = start_time(pid)
    return started != "-" and now is not None and now != started


def stale(path: Path) -> bool:
    """Whether the lock file at `path` may be broken."""
    try:
        line = path.read_text().split("\n", 1)[0]  # a claim record: its first line
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False  # already gone: just try again
    except OSError:
        return False
    if not line.strip():
        return age > GRACE  # an owner that died between creating and writing it
    return owner_gone(line)


def _create(path: Path, line: str) -> bool:
    """Create `path` holding `line`, atomically (never an empty lock file); False if it exists."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{random.getrandbits(32):08x}")
    tmp.write_text(line + "\n")
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def held(path: Path, what: str, timeout: float = TIMEOUT) -> Iterator[None]:
    """Hold the lock file `path`, breaking it if its owner is gone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    line = me()
    while not _create(path, line):
        if stale(path):
            path.unlink(missing_ok=True)
            continue
        if time.monotonic() > deadline:
            raise ConcurrentUpdate(
                f"{what} has been busy for over {timeout:g} s (held by {_owner(path)}); retry in a "
                "moment, or run 'promptgit doctor --repair' if that process is gone"
            )
        time.sleep(random.uniform(0.002, 0.02))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _owner(path: Path) -> str:
    try:
        parts = path.read_text().split()
    except OSError:
        return "no one now"
    return f"pid {parts[0]} on {parts[2]}" if len(parts) == 3 else "a process that did not say"


@contextmanager
def claim(repo: Path, refs: Iterable[str]) -> Iterator[None]:
    """Record that this process is about to lock `refs` (see `break_stale`)."""
    record = repo / OWNERS / f"{os.getpid()}-{threading.get_ident()}"
    try:
        for folder in (repo / OWNERS).parent, repo / OWNERS:  # never `repo` itself
            folder.mkdir(exist_ok=True)
        record.write_text(me() + "\n" + "".join(f"{r}\n" for r in refs))
    except FileNotFoundError:
        raise ConcurrentUpdate(_gone(repo)) from None
    try:
        why = fenced(repo, getattr(_admitted, "on", False))  # after the claim is on disk: see above
        if why is not None:
            raise ConcurrentUpdate(why)
        yield
    finally:
        record.unlink(missing_ok=True)


def admit() -> None:
    """From now on, this thread's writes finish a push that a move is already waiting
    for (post-receive's): they pass the move's fence, which keeps only new work out."""
    _admitted.on = True


def fenced(repo: Path, admitted: bool = False) -> str | None:
    """Why no write may start in `repo` now: a move under way (its fence, unless
    its owner is gone or the write is `admitted`), or the repository no longer being
    there. None: write on."""
    fence = repo / FENCE
    try:
        lines = None if admitted else fence.read_text().splitlines()
    except OSError:
        lines = None
    if lines is not None and not stale(fence):
        what = lines[1] if len(lines) > 1 else "a move of this prompt"
        return f"{what} is under way, so nothing was changed: look again in a moment"
    if not (repo / "HEAD").is_file():
        return _gone(repo)
    return None


def _gone(repo: Path) -> str:
    return (
        f"the prompt was moved away from {repo} (archived, renamed or deleted) while this "
        "ran, so nothing was changed: look it up again"
    )


def claimants(repo: Path, ref: str) -> list[tuple[Path, str]]:
    """Every record claiming `ref`: (record file, owner line). Library writers claim
    in promptgit/owners/PID; a push claims its refs in promptgit/push-PID.pushed,
    owned by receive-pack (PID, whose start time it does not record)."""
    found = []
    for record in sorted((repo / OWNERS).glob("*")):
        try:
            owner, *claimed = record.read_text().splitlines()
        except (OSError, ValueError):
            continue
        if ref in claimed or ref == "packed-refs":
            found.append((record, owner))
    for record in sorted((repo / "promptgit").glob("push-*.pushed")):
        pid = record.name.removeprefix("push-").removesuffix(".pushed")
        try:
            claimed = record.read_text().splitlines()
        except OSError:
            continue
        if pid.isdigit() and (ref in claimed or ref == "packed-refs"):
            found.append((record, f"{pid} - {socket.gethostname()}"))
    return found


def break_stale(repo: Path, ref: str) -> bool:
    """Remove `ref`'s lock file if everyone who could hold it is gone; True if it did.

    A ref lock nobody claimed (a git command run by hand) is not ours to break:
    it is left, and the caller's error names `promptgit doctor`."""
    lock = repo / f"{ref}.lock"
    if not lock.exists():
        return False
    found = claimants(repo, ref)
    mine = str(os.getpid())
    others = [(record, owner) for record, owner in found if owner.split()[0] != mine]
    if not others or not all(owner_gone(owner) for _record, owner in others):
        return False
    lock.unlink(missing_ok=True)  # the claims stay: they tell the next write to finish (reap)
    return True


def running(pid: str) -> bool:
    """Whether process `pid` (receive-pack, for a push's state files) still runs."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def receiving(repo: Path) -> bool:
    """Whether a push into this repository is between its pre-receive and post-receive."""
    for state in (repo / "promptgit").glob("push-*.pushed"):
        if running(state.name.removeprefix("push-").removesuffix(".pushed")):
            return True
    return False


def dead(repo: Path) -> list[Path]:
    """Claims and push state left by writers that are gone: the sign that a write
    was cut short, and the next one must finish it (see Operations._recover)."""
    found = [record for record in sorted((repo / OWNERS).glob("*")) if stale(record)]
    for state in sorted((repo / "promptgit").glob("push-*.pushed")):
        if not running(state.name.removeprefix("push-").removesuffix(".pushed")):
            found.append(state)
    return found


def reap(repo: Path, records: Iterable[Path]) -> None:
    """Once their work is finished: break the ref locks only these dead writers held,
    then remove their records (and a dead push's other state files)."""
    records = list(records)
    for record in records:
        try:
            claimed = record.read_text().splitlines()
        except OSError:
            continue
        for ref in claimed[1:] if record.parent.name == "owners" else claimed:
            break_stale(repo, ref)
        break_stale(repo, "packed-refs")  # every writer may hold it (deleting or packing a ref)
    for record in records:
        if record.parent.name == "owners":
            record.unlink(missing_ok=True)
        else:
            for leftover in record.parent.glob(record.name.removesuffix(".pushed") + ".*"):
                leftover.unlink(missing_ok=True)
