"""What the crash tests' child processes share: a counter of file and ref events
that SIGKILLs its own process at event `kill_at` (a script prepends this text)."""

KILLER = """
import os, signal
from pygit2.transaction import ReferenceTransaction
from promptgit import _git

kill_at = None
events = 0


def counted(fn):
    def wrapper(*args, **kwargs):
        global events
        events += 1
        if kill_at is not None and events == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return fn(*args, **kwargs)
    return wrapper


ReferenceTransaction.lock_ref = counted(ReferenceTransaction.lock_ref)
ReferenceTransaction.commit = counted(ReferenceTransaction.commit)
_git.Repo._write_staged = counted(_git.Repo._write_staged)
for _name in ("link", "unlink", "rename", "replace", "mkdir", "rmdir"):
    setattr(os, _name, counted(getattr(os, _name)))
"""
