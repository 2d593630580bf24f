"""The records of a prompt's own life, and how its lifecycle log writes them.

Each archive, restore and rename is an empty-tree commit on the prompt's own
`refs/promptgit/lifecycle` (which promptgit alone writes; pushes to
`refs/promptgit/*` are refused), so the history travels with the repository:

    Rename greeting to support/welcome

    Promptgit-Event: rename
    Promptgit-Name: greeting -> support/welcome
    Promptgit-Operation: 1796072101-4242-0a1b2c3d

An archive's reason is the body. The author is who did it, and when.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import names
from ._git import Commit, Person, Repo

EVENTS = ("archive", "restore", "rename", "delete")


@dataclass(frozen=True)
class PromptEvent:
    """One archive, restore, rename or delete of a prompt, as its log records it."""

    event: str  # one of EVENTS
    name: str  # the prompt's name after the event
    previous: str | None  # a rename's old name
    stamp: Person  # who, and when
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "name": self.name,
            "from": self.previous,
            "at": self.stamp.at,
            "by": self.stamp.by,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ArchivedPrompt:
    """An archived prompt, and its archive event (None when it was archived by hand)."""

    name: str
    archived: PromptEvent | None

    def to_json(self) -> dict[str, Any]:
        e = self.archived
        return {
            "name": self.name,
            "at": e.stamp.at if e else None,
            "by": e.stamp.by if e else None,
            "reason": e.reason if e else "",
        }


def subject(event: PromptEvent) -> str:
    """A log entry's first line."""
    if event.event == "rename":
        return f"Rename {event.previous} to {event.name}"
    return f"{event.event.capitalize()} {event.name}"


def message(event: PromptEvent, op: str) -> str:
    """A lifecycle log entry: the subject, the reason, and the trailers it is read by."""
    body = f"\n\n{event.reason}" if event.reason else ""
    named = f"{event.previous} -> {event.name}" if event.previous else event.name
    return (
        f"{subject(event)}{body}\n\n"
        f"Promptgit-Event: {event.event}\n"
        f"Promptgit-Name: {named}\n"
        f"Promptgit-Operation: {op}\n"
    )


def parse(c: Commit) -> PromptEvent | None:
    """The event a log entry records (None: not an entry of this log)."""
    t = names.trailers(c.message)
    kind, named = t.get("Promptgit-Event"), t.get("Promptgit-Name", "")
    if kind not in EVENTS or not named:
        return None
    previous, arrow, new = named.partition(" -> ")
    paragraphs = c.message.strip().split("\n\n")
    why = paragraphs[1].strip() if len(paragraphs) > 2 else ""
    return PromptEvent(kind, new if arrow else named, previous if arrow else None, c.author, why)


def _entries(repo: Repo) -> Iterator[Commit]:
    tip = repo.ref(names.LIFECYCLE_REF)
    return repo.first_parents(tip) if tip else iter(())


def read_log(repo: Repo) -> list[PromptEvent]:
    """The prompt's events, newest first."""
    return [e for e in map(parse, _entries(repo)) if e is not None]


def operations_in(repo: Repo) -> Iterator[str]:
    """The operation ids the log records (so a move finished after a crash logs once)."""
    for c in _entries(repo):
        yield names.trailers(c.message).get("Promptgit-Operation", "")


def last(repo: Repo, kind: str) -> PromptEvent | None:
    """The newest event of `kind`."""
    return next((e for e in read_log(repo) if e.event == kind), None)


def reason(event: PromptEvent | None) -> str:
    """Who archived it, when and why, for PromptArchived's message."""
    if event is None:
        return ""
    why = f": {event.reason}" if event.reason else ""
    return f"by {event.stamp.by} at {event.stamp.at}{why}"


def to_record(e: PromptEvent) -> dict[str, Any]:
    """An event as JSON that keeps its stamp whole (a move's plan, a deleted prompt's record)."""
    s = e.stamp
    return {"event": e.event, "name": e.name, "from": e.previous, "reason": e.reason,
            "by_name": s.name, "by_email": s.email, "time": s.time, "offset": s.offset}  # fmt: skip


def from_record(d: dict[str, Any]) -> PromptEvent:
    stamp = Person(d["by_name"], d["by_email"], int(d["time"]), int(d["offset"]))
    return PromptEvent(d["event"], d["name"], d.get("from"), stamp, d.get("reason", ""))
