"""What the store hands back: small immutable records with their JSON shape.

Each record's `to_json` is the one wire shape of that record: the CLI's
`--json` prints it and the HTTP API returns it (the API's response models are
checked against these by a test; where the API uses other words for a field,
`server.api.api_words` renames it, in one place).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput
from .names import ROLES, STAGES
from .render import render_string

if TYPE_CHECKING:  # pygit2 loads only where git is read: promptgit.Client never needs it
    from ._git import Person


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
        from ._git import Person

        return Person(self.name, self.email).now()

    @classmethod
    def from_git(cls, role: str = "admin") -> Actor:
        """The local user, as git would name them (falls back like git: login@host)."""
        return cls.local(role)[0]

    @classmethod
    def local(cls, role: str = "admin") -> tuple[Actor, bool]:
        """The local user as git names them, and whether any part of it was guessed
        (git names no author: login@host stands in, which an interface should say)."""
        from ._git import git_identity

        name, email = git_identity()
        login = os.environ.get("USER") or os.environ.get("LOGNAME") or "promptgit"
        actor = cls(name or login, email or f"{login}@{socket.gethostname() or 'localhost'}", role)
        return actor, not (name and email)


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
    """One deployment of a stage's log. `stamp` is who really made it and when, from
    promptgit's audit log when `audited`; else (history from before the audit log,
    or a push whose post-receive never ran) what the commit itself claims."""

    deployment: str
    stage: str
    action: str
    version: str
    revision: str
    stamp: Person
    message: str
    audited: bool = False

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
            "audited": self.audited,
        }


@dataclass(frozen=True)
class VersionInfo:
    """A version's history entry. `name` and `description` are the version's own,
    fixed at creation; `summary` is its latest revision's."""

    version: str
    stage: str  # DEV, TST or PROD
    current_in: tuple[str, ...]
    revision: str
    created: Person
    updated: Person
    summary: str
    name: str = ""
    description: str = ""
    deprecated: str | None = None  # the reason, while a release is deprecated

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
            "version_name": self.name,
            "description": self.description,
            "deprecated": self.deprecated is not None,
            "deprecated_reason": self.deprecated,
        }


@dataclass(frozen=True)
class EditResult:
    """`edit`: the revision saved (or the tip, when nothing changed), the stages that
    now serve it, and the stages serving the version that wait for the new revision's
    approvals (require_approvals) before they follow."""

    version: str
    revision: str
    changed: bool
    deployed_to: tuple[str, ...]
    held: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "revision": self.revision,
            "changed": self.changed,
            "deployed_to": list(self.deployed_to),
            "held": list(self.held),
        }


@dataclass(frozen=True)
class StageRef:
    """What one stage serves: a version's revision, through a deployment commit."""

    version: str
    revision: str
    deployment: str

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "revision": self.revision, "deployment": self.deployment}


@dataclass(frozen=True)
class PromptDetails:
    """A prompt: what each stage serves, and how many versions it has."""

    name: str
    stages: Mapping[str, StageRef | None]
    versions: int

    def to_json(self) -> dict[str, Any]:
        refs = {s: self.stages.get(s) for s in STAGES}
        return {
            "name": self.name,
            **{s: ref.version if ref else None for s, ref in refs.items()},
            "stages": {s: ref.to_json() if ref else None for s, ref in refs.items()},
            "versions": self.versions,
        }


@dataclass(frozen=True)
class PromptSummary:
    name: str
    current: Mapping[str, str | None]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, **{s: self.current.get(s) for s in STAGES}}


@dataclass(frozen=True)
class Prompt:
    """One revision's content, ready to render. Returned by `Store.get` and `Client.get`.

    `stale` and `age` concern `Client` only (a `Store` read is always fresh): a copy
    served while the server could not be reached is `stale`, and `age` is how many
    seconds ago the server last vouched for it (infinite for a `fallback=`)."""

    name: str
    version: str
    revision: str
    content: Mapping[str, Any]
    source: str = ""  # prompt.yaml as written
    tests: str | None = None
    stage: str | None = None
    deployment: str | None = None
    stale: bool = field(default=False, compare=False)
    age: float = field(default=0.0, compare=False)

    @property
    def is_chat(self) -> bool:
        return "messages" in self.content

    def to_json(self) -> dict[str, Any]:
        """What a stage serves, as applications read it."""
        return {
            "name": self.name,
            "stage": self.stage,
            "version": self.version,
            "revision": self.revision,
            "deployment": self.deployment,
            "content": dict(self.content),
            "source": self.source,
        }

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


def rendered_json(out: str | list[dict[str, str]]) -> dict[str, Any]:
    """A render's result: `{"text": ...}`, or `{"messages": [...]}` for a chat prompt."""
    return {"messages": out} if isinstance(out, list) else {"text": out}


@dataclass(frozen=True)
class VersionDetail:
    """One version's history entry with the content of its tip."""

    info: VersionInfo
    prompt: Prompt

    def to_json(self) -> dict[str, Any]:
        return {
            **self.info.to_json(),
            "name": self.prompt.name,
            "content": dict(self.prompt.content),
            "source": self.prompt.source,
            "tests": self.prompt.tests,
        }


@dataclass(frozen=True)
class Shown:
    """`show`: a version (or what a stage serves) with its content."""

    prompt: Prompt
    stage: str
    current_in: tuple[str, ...]
    tip: str
    deployment: DeploymentInfo | None = None
    notes: tuple[str, ...] = field(default=())
    info: VersionInfo | None = None  # the version's own entry: name, description, deprecation

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
            "version_name": self.info.name if self.info else "",
            "description": self.info.description if self.info else "",
            "deprecated_reason": self.info.deprecated if self.info else None,
        }


@dataclass(frozen=True)
class Finding:
    """One problem `doctor` found: in which prompt (empty: the store), which check,
    what is wrong, the command that fixes it, and whether --repair can and did."""

    prompt: str
    check: str
    problem: str
    fix: str
    repairable: bool
    repaired: bool

    def repaired_if(self, done: bool) -> Finding:
        return Finding(self.prompt, self.check, self.problem, self.fix, self.repairable, done)

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "check": self.check,
            "problem": self.problem,
            "fix": self.fix,
            "repairable": self.repairable,
            "repaired": self.repaired,
        }


@dataclass(frozen=True)
class Collected:
    """`gc` on one prompt: the drafts it deleted (or would, on a dry run) and the
    size of the repository's objects before and after repacking."""

    prompt: str
    deleted: tuple[str, ...]
    bytes_before: int
    bytes_after: int
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "deleted": list(self.deleted),
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True)
class WebhookDelivery:
    """One line of the webhook delivery log: an attempt to deliver an event (`delivery`
    is its id, the same on every attempt), or a notice about the webhook (no event)."""

    at: str
    webhook: str  # its URL
    ok: bool
    event: str | None = None
    prompt: str | None = None
    delivery: str | None = None
    attempt: int = 0
    status: int | None = None  # the receiver's HTTP status, if it answered
    ms: float | None = None
    detail: str = ""  # what failed, or the notice

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "webhook": self.webhook,
            "ok": self.ok,
            "event": self.event,
            "prompt": self.prompt,
            "delivery": self.delivery,
            "attempt": self.attempt,
            "status": self.status,
            "ms": self.ms,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, line: str) -> WebhookDelivery | None:
        """A log line back (None: a line a crash cut short, or not one of these)."""
        import json

        try:
            d = json.loads(line)
            return cls(
                str(d["at"]), str(d["webhook"]), bool(d["ok"]), d.get("event"), d.get("prompt"),
                d.get("delivery"), int(d.get("attempt") or 0), d.get("status"), d.get("ms"),
                str(d.get("detail") or ""),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class ReviewInfo:
    """`review`: a review branch started at a draft's tip."""

    name: str
    branch: str  # review/BRANCH
    version: str
    revision: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "branch": self.branch, "version": self.version, "revision": self.revision}


@dataclass(frozen=True)
class ApprovalInfo:
    """One approval of one revision. `counts` toward require_approvals of the tip it
    was listed for, or `why` not (an author's, an earlier revision's, a repeat)."""

    revision: str
    version: str
    stamp: Person
    comment: str
    counts: bool
    why: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "version": self.version,
            "at": self.stamp.at,
            "by": self.stamp.by,
            "comment": self.comment,
            "counts": self.counts,
            "why": self.why,
        }


@dataclass(frozen=True)
class Approvals:
    """The approvals of a version's revisions (or a review branch's), newest first,
    for its tip `revision`: how many count, who its authors are (they cannot
    approve it), and how many each gated stage requires."""

    name: str
    ref: str  # the version (vX.Y) or review/BRANCH listed
    version: str
    revision: str
    approvals: tuple[ApprovalInfo, ...]
    authors: tuple[Person, ...]
    required: Mapping[str, int]

    @property
    def counted(self) -> int:
        return sum(a.counts for a in self.approvals)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ref": self.ref,
            "version": self.version,
            "revision": self.revision,
            "approvals": [a.to_json() for a in self.approvals],
            "counted": self.counted,
            "authors": [p.by for p in self.authors],
            "required": dict(self.required),
        }


@dataclass(frozen=True)
class DiffSide:
    """One side of a diff: the REF as given, and the version and revision it names."""

    ref: str
    version: str
    revision: str

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "version": self.version, "revision": self.revision}


@dataclass(frozen=True)
class RenderedCase:
    """One test case's variables rendered on both sides (or why a side could not
    render), and the unified diff between the two texts ('' when they are equal)."""

    case: str
    variables: Mapping[str, Any]
    a: str
    b: str
    diff: str

    def to_json(self) -> dict[str, Any]:
        return {"case": self.case, "vars": dict(self.variables), "a": self.a, "b": self.b, "diff": self.diff}


@dataclass(frozen=True)
class Diff:
    """`diff`: what changed from `a` to `b`: a unified diff per file (prompt.yaml,
    tests.yaml), and what the template renders for each test case's variables on
    both sides, which is what the model will actually get. `notes` say what was
    left out (cases past the limit, a side whose tests.yaml does not validate)."""

    name: str
    a: DiffSide
    b: DiffSide
    files: Mapping[str, str]  # file -> its unified diff ('' when unchanged)
    rendered: tuple[RenderedCase, ...]
    notes: tuple[str, ...] = ()

    @property
    def patch(self) -> str:
        """The files' diffs as one unified diff (what `git diff A B` prints)."""
        return "".join(self.files.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "files": dict(self.files),
            "rendered": [r.to_json() for r in self.rendered],
            "notes": list(self.notes),
        }
