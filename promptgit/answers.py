"""A read command's printed answer, kept in the index by the state it was read from.

What `show` and `versions` print is a function of the prompt's refs (git objects
never change), the store's promptgit.yaml (its approval rules) and promptgit's own
code; `prompt_state` digests all three, reading the refs straight from the files.
What `list` prints is a function of the prompts' names and their stage tips, which
`listing_state` digests as the stamps of the files those are read from
(ref_files.refs_stamp), with the code. So a command whose answer the index holds
for the state it reads now prints it without loading libgit2, and any change is a
new state, never a stale answer. An answer is kept only when the state read after
it was produced is the one read before, so it was read from that state alone.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable

from .facts import Facts
from .names import CONFIG_FILE, store_names
from .ref_files import list_refs, refs_stamp

MAX_ANSWER = 2 << 20  # characters (a listing of 10,000 prompts is ~750 KB): longer is printed, not kept

_code: bytes | None = None


def answered(store: str, query: str, state: Callable[[str], str | None], produce: Callable[[], str]) -> str:
    """The answer to `query`: the index's for `state(store)` now, else `produce()`'s,
    kept for that state (None: nothing is kept or looked up)."""
    index = Facts(store)
    if not index.usable():
        return produce()  # nothing to look up or keep: no state to read, twice
    before = state(store)
    if before is not None:
        text = index.answer(query, before)
        if text is not None:
            return text
    text = produce()
    if before is not None and len(text) <= MAX_ANSWER and state(store) == before:
        index.add_answer(query, before, text)
    return text


def prompt_state(name: str) -> Callable[[str], str | None]:
    """The state of prompt `name` (passed names.check_name): a digest of every ref of
    its repository, the store's promptgit.yaml and promptgit's code; None when the
    repository is not there or not plain files (then the command reads it)."""

    def state(store: str) -> str | None:
        path = os.path.join(store, f"{name}.git")
        if not os.path.isfile(os.path.join(path, "HEAD")):
            return None  # archived, renamed or unknown: the read says which
        refs = list_refs(path)
        config = _config(store)
        if not refs or config is None:
            return None
        return _digest(
            [hashlib.sha256(config).digest(), *(f"{r} {s}\n".encode() for r, s in sorted(refs.items()))]
        )

    return state


def listing_state(store: str) -> str | None:
    """The state of the store's listing: every prompt's name and the stamp of its ref
    files, with promptgit's code; None unless every stamp is settled (a change
    within a timestamp's tick could leave the same stamp)."""
    if _config(store) is None:
        return None  # no store here: the read says so
    now, parts = time.time_ns(), []
    try:
        listed = store_names(store)
    except OSError:
        return None  # a folder unreadable, or removed meanwhile: the read says what it finds
    for name in listed:
        stamp = refs_stamp(os.path.join(store, f"{name}.git"), now)
        if stamp is None or not stamp[1]:
            return None
        parts.append(f"{name} {stamp[0]}\n".encode())
    return _digest(parts)


def _config(store: str) -> bytes | None:
    try:
        with open(os.path.join(store, CONFIG_FILE), "rb") as f:
            return f.read()
    except OSError:
        return None


def _digest(parts: Iterable[bytes]) -> str | None:
    code = _fingerprint()
    if not code:
        return None  # promptgit's own files cannot be told apart from an older install's
    digest = hashlib.sha256(code)
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def _fingerprint() -> bytes:
    """promptgit's code as installed: where it is, and each module's name, size, inode
    and times, so that an upgrade (or an edit in a development checkout) never prints
    an older answer. The change time too: packagers that set every file's modification
    time (Nix, SOURCE_DATE_EPOCH) cannot set it, and a file written anew gets a new one.
    Empty when there are no module files to read (run from a zip): then nothing is kept."""
    global _code
    if _code is None:
        here = os.path.dirname(os.path.abspath(__file__))
        try:
            with os.scandir(here) as entries:
                files = sorted((e.name, e.stat()) for e in entries if e.name.endswith((".py", ".pyc")))
        except OSError:
            files = []
        _code = "".join(
            f"{n} {st.st_size} {st.st_ino} {st.st_mtime_ns} {st.st_ctime_ns}\n" for n, st in files
        ).encode()
        _code = (here + "\n").encode() + _code if files else b""
    return _code
