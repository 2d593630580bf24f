"""Where a prompt went: every Store call notices a prompt that was archived, renamed
or deleted, even under a Store opened before, and says so instead of answering
from a folder that is gone.

libgit2 reads a repository by path, so a repository that moved answers with its
refs gone or an error: each read is checked once it answers (`_moved`, one stat),
a failure is explained, and the object is forgotten so the next call opens what
the name is now. `get`, the hot path, is only explained when it fails. A write
never lands in a moved repository: its claim (locks.claim) finds it gone or
fenced. The old name of a renamed prompt answers PromptRenamed for
`rename_redirect_days`, from `.promptgit/renames.json`.
"""

from __future__ import annotations

import builtins
import functools
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import names, prompt_events
from ._git import Repo
from .errors import (
    ConcurrentUpdate,
    DamagedRepository,
    PromptArchived,
    PromptgitError,
    PromptNotFound,
    PromptRenamed,
    raise_if_damaged,
)
from .model import PromptSummary
from .reads import Reader

STATE = ".promptgit"  # the store's own files (names() skips dot-folders)
RENAMES = f"{STATE}/renames.json"
DAY = 86400
OPEN_REPOSITORIES = 64  # per thread; a server that lists 10,000 prompts keeps no more


class Whereabouts(Reader):
    """The Store's reads and writes, noticing a prompt that moved (see the module)."""

    _renames_seen: tuple[tuple[int, int, int], dict[str, dict[str, Any]]] | None = None

    def _opened(self) -> dict[str, tuple[Repo, int]]:
        """This thread's open repositories, with the inode of the folder each was opened at."""
        seen: dict[str, tuple[Repo, int]] | None = getattr(self._local, "opened", None)
        if seen is None:
            seen = self._local.opened = {}
        return seen

    def _open(self, name: str) -> Repo:
        """The prompt's repository; a name no prompt has now raises PromptArchived,
        PromptRenamed or PromptNotFound.

        A repository opened before is not checked here (a stat would double the
        cost of `get`): libgit2 reads by path, so a moved one answers with its refs
        gone or an error, which `_noticing` then explains with `_moved`, dropping
        it; and a write never lands in one (locks.claim)."""
        hit = self._opened().get(name)
        if hit is not None:
            return hit[0]
        path = self._repo_path(name)
        if not (path / "HEAD").is_file() and not path.is_dir():
            raise self.whereabouts(name)
        repo = super()._open(name)  # a folder with no HEAD in it: DamagedRepository
        opened = self._opened()
        try:
            opened[name] = (repo, os.stat(repo.path).st_ino)
        except OSError:
            raise self.whereabouts(name) from None
        if len(opened) > OPEN_REPOSITORIES:  # the least recently opened goes (memory stays bounded)
            self._forget(next(iter(opened)))
        return repo

    def _moved(self, name: str) -> PromptgitError | None:
        """Why the repository this thread opened for `name` is not there now (then it
        is forgotten, so the next call opens what the name is now), or None."""
        hit = self._opened().get(name)
        if hit is None:
            return None
        try:
            if os.stat(hit[0].path).st_ino == hit[1]:
                return None
            why: PromptgitError = ConcurrentUpdate(f"prompt '{name}' was replaced while this ran: look again")
        except OSError:
            why = self.whereabouts(name)
        self._forget(name)
        return why

    def _forget(self, *prompts: str) -> None:
        for name in prompts:
            self._opened().pop(name, None)
            getattr(self._local, "repos", {}).pop(name, None)

    def whereabouts(self, name: str) -> PromptgitError:
        """Why `name` is no prompt here now: archived, renamed (for a while), or unknown."""
        self.check()
        archived = self._archived_path(name)
        if (archived / "HEAD").is_file():
            archive = prompt_events.last(Repo(str(archived)), "archive")
            return PromptArchived(name, prompt_events.reason(archive))
        moved = self._redirect(name)
        if moved is not None:
            return PromptRenamed(name, *moved)
        return PromptNotFound(name, self.names())

    def renamed_to(self, name: str) -> str | None:
        """The new name of a prompt renamed from `name`, while its old name points to it."""
        try:
            if (self._repo_path(name) / "HEAD").is_file():
                return None
        except PromptgitError:
            return None
        moved = self._redirect(name)
        return moved[0] if moved else None

    def list(self, after: str | None = None, limit: int | None = None) -> builtins.list[PromptSummary]:
        """Prompts with the version current in each stage (see Reader.list); listed again
        when one moved while it was being read, so the answer never shows a half-read prompt."""
        for _ in range(5):
            try:
                found = super().list(after, limit)
            except (PromptArchived, PromptRenamed, PromptNotFound):
                continue
            except DamagedRepository as e:  # or moved while git read it
                if self._moved(e.name) is None:
                    raise
                continue
            if not any(self._moved(p.name) for p in found):
                return found
        return super().list(after, limit)

    def _archived_path(self, name: str) -> Path:
        return self.path / names.ARCHIVE / f"{names.check_name(name)}.git"

    def _renames_file(self) -> dict[str, dict[str, Any]]:
        """`.promptgit/renames.json` as it is: {old name: {"to": new name, "at": epoch}}."""
        path = self.path / RENAMES
        try:
            st = path.stat()
        except FileNotFoundError:
            return {}
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        seen = self._renames_seen
        if seen is not None and seen[0] == key:
            return seen[1]
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        good = {
            old: entry
            for old, entry in (data.items() if isinstance(data, dict) else [])
            if isinstance(entry, dict)
            and isinstance(entry.get("to"), str)
            and isinstance(entry.get("at"), int | float)
        }
        self._renames_seen = (key, good)
        return good

    def _redirect(self, name: str) -> tuple[str, str] | None:
        """(new name, until when) while `name`'s redirect lasts."""
        entry = self._renames_file().get(name)
        if entry is None:
            return None
        until = entry["at"] + self.config.rename_redirect_days * DAY
        if time.time() >= until:
            return None
        return entry["to"], datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d %H:%M UTC")


# Every read notices a prompt that moved while it ran (its folder gone from under it
# makes libgit2 see no refs, or fail), and says where it went instead of a wrong
# answer; a write only needs its failure explained (a claim never writes into a
# moved repository, see locks.claim), and `get`, the hot path, the same.
_CHECKED_READS = ("details", "actions", "resolve", "versions", "version_ids", "version", "tips",
                  "version_detail", "show", "log", "diff", "render", "prompt", "repository",
                  "approvals", "reviews")  # fmt: skip
_EXPLAINED = ("get",)  # and every write: operations.py wraps those


def _noticing(method: Callable[..., Any], check_answer: bool) -> Callable[..., Any]:
    """`method`, saying where the prompt went when it moved while (or before) it ran.
    A read that met another repository under the same name (deleted and created
    again, renamed back) is asked once more, of the repository there now."""

    @functools.wraps(method)
    def call(self: Whereabouts, name: str, *args: Any, **kwargs: Any) -> Any:
        for again in (check_answer, False):
            try:
                answer = method(self, name, *args, **kwargs)
            except (PromptArchived, PromptRenamed):
                raise
            except Exception as e:
                moved = self._moved(name)
                if moved is None:
                    raise_if_damaged(name, e, str(self.path))
                    raise
                if again and isinstance(moved, ConcurrentUpdate):
                    continue
                raise moved from e
            moved = self._moved(name) if check_answer else None
            if again and isinstance(moved, ConcurrentUpdate):
                continue
            if moved is not None:
                raise moved
            return answer
        raise AssertionError("unreachable")

    return call


def notice(cls: type, methods: tuple[str, ...], check_answer: bool) -> None:
    """Wrap `cls`'s `methods` with `_noticing` (a subclass's writes: operations.py)."""
    for method in methods:
        setattr(cls, method, _noticing(getattr(cls, method), check_answer))


notice(Whereabouts, _CHECKED_READS, True)
notice(Whereabouts, _EXPLAINED, False)
