"""What the store hands back: small immutable records with their JSON shape.

The JSON keys are a contract shared by the CLI's `--json` and the HTTP API.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._git import Person
from .errors import InvalidInput
from .names import STAGES
from .policy import ROLES
from .render import render_string


@dataclass(frozen=True)
class Actor:
    """Who performs an operation, and with what role; passed explicitly to every
    write so a threaded server records the right person."""

    name: str
    email: str
    role: str = "admin"

    def __post_init__(self) -> None:
        for part in (self.name, self.email):
            if not part or any(c in part for c in "<>\n\r\0"):
                raise InvalidInput(
                    f"invalid identity {self.name!r} <{self.email}>: give a name and an email, "
                    "neither empty nor containing <, > or a line break"
                )
        if self.role not in ROLES:
            raise InvalidInput(f"unknown role {self.role!r}: use one of {', '.join(ROLES)}")

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    def person(self) -> Person:
        """This actor, stamped with the current time and local offset."""
        return Person(self.name, self.email).now()

    @classmethod
    def from_git(cls, role: str = "admin") -> Actor:
        """The local user, as git would name them (falls back like git: login@host)."""
        from ._git import git_identity

        name, email = git_identity()
        login = os.environ.get("USER") or os.environ.get("LOGNAME") or "promptgit"
        return cls(name or login, email or f"{login}@{socket.gethostname() or 'localhost'}", role)


@dataclass(frozen=True)
class RevisionInfo:
    revision: str
    summary: str
    stamp: Person
    message: str = ""
    tests: tuple[Mapping[str, Any], ...] = ()  # recorded test runs, oldest first

    def to_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "at": self.stamp.at,
            "by": self.stamp.by,
            "summary": self.summary,
            "tests": [
                {k: run.get(k) for k in ("env", "provider", "passed", "at", "by")} for run in self.tests
            ],
        }


@dataclass(frozen=True)
class DeploymentInfo:
    deployment: str
    stage: str
    action: str
    version: str
    revision: str
    stamp: Person
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "stage": self.stage,
            "action": self.action,
            "version": self.version,
            "revision": self.revision,
            "at": self.stamp.at,
            "by": self.stamp.by,
            "message": self.message,
        }


@dataclass(frozen=True)
class VersionInfo:
    version: str
    stage: str  # DEV, TST or PROD
    current_in: tuple[str, ...]
    revision: str
    created: Person
    updated: Person
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "stage": self.stage,
            "current_in": list(self.current_in),
            "revision": self.revision,
            "created_at": self.created.at,
            "updated_at": self.updated.at,
            "created_by": self.created.by,
            "updated_by": self.updated.by,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class PromptSummary:
    name: str
    current: Mapping[str, str | None]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, **{s: self.current.get(s) for s in STAGES}}


@dataclass(frozen=True)
class Prompt:
    """One revision's content, ready to render. Returned by `Store.get`."""

    name: str
    version: str
    revision: str
    content: Mapping[str, Any]
    source: str = ""  # prompt.yaml as written
    tests: str | None = None
    stage: str | None = None
    deployment: str | None = None

    @property
    def is_chat(self) -> bool:
        return "messages" in self.content

    def render(self, /, **variables: Any) -> str | list[dict[str, str]]:
        """The text, or for a chat prompt the messages, with `variables` filled in (in
        process: use `bounded.render` for a deadline and a memory ceiling). `self` is
        positional-only, so a template variable may be called self."""
        where = f"{self.name}@{self.version}"
        if self.is_chat:
            return [
                {"role": m["role"], "content": render_string(m["content"], variables, where)}
                for m in self.content["messages"]
            ]
        return render_string(self.content["template"], variables, where)


@dataclass(frozen=True)
class Shown:
    """`show`: a version (or what a stage serves) with its content."""

    prompt: Prompt
    stage: str
    current_in: tuple[str, ...]
    tip: str
    deployment: DeploymentInfo | None = None
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.prompt.name,
            "version": self.prompt.version,
            "stage": self.stage,
            "revision": self.prompt.revision,
            "tip": self.tip,
            "current_in": list(self.current_in),
            "content": dict(self.prompt.content),
            "source": self.prompt.source,
            "tests": self.prompt.tests,
            "deployment": self.deployment.to_json() if self.deployment else None,
            "notes": list(self.notes),
        }
