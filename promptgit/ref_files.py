"""Refs read straight from a repository's files, the way git reads them, without
libgit2 (and without importing pygit2): for reading the tips of thousands of
repositories, and for the start-up of a command whose answer the index holds.

git and libgit2 only ever change a ref by renaming a new file over it (or removing
it), and rewrite packed-refs the same way; pack-refs writes packed-refs before it
removes the loose files. So reading the loose files first and packed-refs second
finds every ref, each at a value it had during the read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

_SHA = frozenset("0123456789abcdef")
_packed: dict[str, tuple[tuple[int, int, int], dict[str, str]]] = {}  # repository -> packed-refs


def read_refs(path: str, refs: Sequence[str]) -> dict[str, str | None] | None:
    """Direct refs read straight from a repository's files, the way git reads them
    (the loose file, else packed-refs), without opening it with libgit2: for reading
    the tips of thousands of repositories. One directory listing per folder tells
    which loose files exist. None when a ref is not a plain sha (a symbolic or
    unreadable one: ask `Repo.ref`) or the repository is gone."""
    out: dict[str, str | None] = {}
    packed: dict[str, str] | None = None
    listed: dict[str, set[str]] = {}
    for ref in refs:
        folder, _, leaf = ref.rpartition("/")
        if folder not in listed:
            try:
                with os.scandir(os.path.join(path, folder)) as entries:
                    listed[folder] = {e.name for e in entries}
            except FileNotFoundError:
                if not os.path.isfile(os.path.join(path, "HEAD")):
                    return None  # moved or deleted meanwhile: no answer rather than "no refs"
                listed[folder] = set()
            except OSError:
                return None
        try:
            text = _loose(path, ref) if leaf in listed[folder] else None
        except OSError:
            return None
        if text is None:
            if packed is None:
                packed = _packed_refs(path)
            out[ref] = packed.get(ref)
            continue
        if not _is_sha(text):
            return None
        out[ref] = text
    return out


def list_refs(path: str) -> dict[str, str] | None:
    """Every direct ref of a repository ({ref: sha}), the way git lists them: the
    loose files under refs/ first, then packed-refs (parsed again only when it
    changed) for the rest. In that order, a ref packed meanwhile (pack-refs writes
    packed-refs before it removes the loose file) is still found. Symbolic refs are
    left out; None when a loose file is neither a sha nor a symbolic ref."""
    loose: dict[str, str] = {}
    folders = ["refs"]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(os.path.join(path, folder)) as entries:
                found = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        except FileNotFoundError:
            continue  # emptied and removed meanwhile
        except OSError:
            return None
        for leaf, is_folder in found:
            ref = f"{folder}/{leaf}"
            if is_folder:
                folders.append(ref)
                continue
            if leaf.endswith(".lock"):
                continue
            try:
                text = _loose(path, ref)
            except OSError:
                return None
            if text is None or text.startswith("ref:"):
                continue  # packed meanwhile (packed-refs, read next, has it), or symbolic
            if not _is_sha(text):
                return None
            loose[ref] = text
    return {**_packed_refs(path), **loose}


def _loose(path: str, ref: str) -> str | None:
    """What a loose ref file says, or None when it is gone: packed meanwhile, since
    pack-refs writes packed-refs before it removes the file. OSError if unreadable."""
    try:
        with open(os.path.join(path, ref), "rb") as f:
            return f.read(100).strip().decode("ascii", "replace")
    except FileNotFoundError:
        return None


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and _SHA.issuperset(text)


SETTLED_NS = 1_000_000_000  # a stamp is trusted once its files are this old (see refs_stamp)


def refs_stamp(path: str, now_ns: int) -> tuple[str, bool] | None:
    """(stamp, settled) of the files a repository's branch tips are read from: the
    refs/heads folder and packed-refs. git and libgit2 only ever change a ref by
    renaming a new file over it (or removing it), and repack packed-refs the same
    way, so any change to a branch tip changes the folder's mtime or packed-refs'.
    A timestamp has a granularity, though: a change within the same tick as the last
    one could leave the same stamp. So a stamp is `settled` (fit to be remembered)
    only once both files are SETTLED_NS older than `now_ns`, when the stamp was taken;
    any later change then shows a later time. None when the files cannot be read."""
    try:
        heads = os.stat(f"{path}/refs/heads")
    except OSError:
        return None
    try:
        p = os.stat(f"{path}/packed-refs")
        packed, newest = f"{p.st_ino}.{p.st_size}.{p.st_mtime_ns}", max(heads.st_mtime_ns, p.st_mtime_ns)
    except FileNotFoundError:
        packed, newest = "-", heads.st_mtime_ns
    except OSError:
        return None
    return f"{heads.st_ino}.{heads.st_mtime_ns} {packed}", newest < now_ns - SETTLED_NS


def _packed_refs(path: str) -> dict[str, str]:
    """A repository's packed-refs ({ref: sha}), parsed again only when it changed."""
    file = os.path.join(path, "packed-refs")
    try:
        st = os.stat(file)
    except OSError:
        return {}
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    hit = _packed.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    refs: dict[str, str] = {}
    try:
        with open(file, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("#", "^")):
                    continue
                sha, _, ref = line.rstrip("\n").partition(" ")
                if ref and _is_sha(sha):
                    refs[ref] = sha
    except OSError:
        return {}
    if len(_packed) > 4096:
        _packed.clear()
    _packed[path] = (key, refs)
    return refs
