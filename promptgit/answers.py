"""A read command's printed answer, kept in the index by the state it was read from.

What `show` and `versions` print is a function of the prompt's refs (git objects
never change), the store's promptgit.yaml (its approval rules) and promptgit's own
code. `state` digests all three, reading the refs straight from the files: so a
command whose answer the index holds for the state it reads now prints it without
loading libgit2, and any change to a ref, the configuration or the code is a new
state, never a stale answer. An answer is only kept when the state read after it
was produced is the one read before, so it was read from that state alone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from .facts import Facts
from .ref_files import list_refs

MAX_ANSWER = 1 << 20  # characters: a longer answer is printed, not kept

_code: bytes | None = None


def answered(store: str, name: str, query: str, produce: Callable[[], str]) -> str:
    """The answer to `query` about prompt `name`: the index's for the state read now,
    else `produce()`'s (kept for that state). `name` has passed names.check_name."""
    index = Facts(store)
    before = state(store, name)
    if before is not None:
        text = index.answer(query, before)
        if text is not None:
            return text
    text = produce()
    if before is not None and len(text) <= MAX_ANSWER and state(store, name) == before:
        index.add_answer(query, before, text)
    return text


def state(store: str, name: str) -> str | None:
    """A digest of every ref of prompt `name`'s repository, the store's promptgit.yaml
    and promptgit's code; None when the repository is not there or not plain files
    (then the command reads, and nothing is kept)."""
    path = os.path.join(store, f"{name}.git")
    if not os.path.isfile(os.path.join(path, "HEAD")):
        return None  # archived, renamed or unknown: the read says which
    refs = list_refs(path)
    if not refs:
        return None
    try:
        with open(os.path.join(store, "promptgit.yaml"), "rb") as f:
            config = f.read()
    except OSError:
        return None
    digest = hashlib.sha256(_fingerprint())
    digest.update(hashlib.sha256(config).digest())
    digest.update("".join(f"{ref} {sha}\n" for ref, sha in sorted(refs.items())).encode())
    return digest.hexdigest()


def _fingerprint() -> bytes:
    """promptgit's code as installed: each module's name, size and time, so that an
    upgrade (or an edit in a development checkout) never prints an older answer."""
    global _code
    if _code is None:
        here = os.path.dirname(os.path.abspath(__file__))
        with os.scandir(here) as entries:
            files = sorted((e.name, e.stat()) for e in entries if e.name.endswith(".py"))
        _code = "".join(f"{n} {st.st_size} {st.st_mtime_ns}\n" for n, st in files).encode()
    return _code
