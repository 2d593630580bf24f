"""Every failure a user can cause, one class per kind.

Interfaces map these classes (never their text) to exit codes and HTTP
statuses. Each message names the bad value and says how to fix it.

    PromptgitError
    ├── NotFound            404   something named does not exist
    │   ├── StoreNotFound
    │   ├── PromptNotFound
    │   ├── PromptArchived      (410) archived: out of listings and reads until restored
    │   ├── PromptRenamed       (308) renamed or moved: names the new name, for a while
    │   └── RefNotFound         a version, stage or revision
    ├── Conflict            409   the store changed, or the name is taken
    │   ├── PromptExists
    │   ├── VersionExists
    │   ├── VersionNameTaken
    │   ├── ReviewExists        a review branch of that name exists
    │   └── ConcurrentUpdate    a lost compare-and-swap
    ├── RuleViolation       409   the release rules forbid it (policy.py)
    ├── InvalidInput        422   the caller's input is malformed
    │   ├── InvalidName
    │   ├── InvalidContent      prompt.yaml / tests.yaml
    │   └── RenderError         a missing variable, a sandbox refusal
    ├── Forbidden           403   the actor's role may not do it
    ├── ReadOnlyStore       403   a mirror, or a store served --read-only: changes go elsewhere
    ├── ProviderError       502   a test run's model server gave no answer (a failed case)
    ├── ServerUnavailable   502   promptgit.Client: no server answer and no copy to serve
    ├── PrimaryError        502   a mirror's primary did not answer as it should
    ├── Busy                503   every render worker stayed busy (bounded.py): retry
    └── DamagedRepository   500   git cannot read a prompt's repository: doctor names it

Beside them, one timeout that callers tell apart from a single slow read:

    TimeoutError
    └── DeadlinePassed      a whole HTTP answer took longer than it may (client_http.within)
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

__all__ = [
    "Busy",
    "ConcurrentUpdate",
    "Conflict",
    "DamagedRepository",
    "Forbidden",
    "InvalidContent",
    "InvalidInput",
    "InvalidName",
    "NotFound",
    "PrimaryError",
    "PromptArchived",
    "PromptExists",
    "PromptNotFound",
    "PromptRenamed",
    "PromptgitError",
    "ProviderError",
    "ReadOnlyStore",
    "RefNotFound",
    "RenderError",
    "ReviewExists",
    "RuleViolation",
    "ServerUnavailable",
    "StoreNotFound",
    "VersionExists",
    "VersionNameTaken",
]


class PromptgitError(Exception):
    """Base class: the message is what a user reads, already with the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(PromptgitError):
    pass


class StoreNotFound(NotFound):
    def __init__(self, path: str) -> None:
        super().__init__(
            f"no promptgit store at {path}: run 'promptgit init' there, "
            "or point --store / $PROMPTGIT_STORE at an existing store"
        )
        self.path = path


class PromptNotFound(NotFound):
    def __init__(self, name: str, known: Sequence[str] = ()) -> None:
        hint = f" (prompts: {', '.join(known[:10])})" if known else ""
        super().__init__(f"no prompt named '{name}'{hint}: check the name with 'promptgit list'")
        self.name = name


class PromptArchived(NotFound):
    """The prompt is in the store's archive area: kept whole, but out of every
    listing and read until someone restores it. `reason` says who, when and why."""

    def __init__(self, name: str, reason: str = "") -> None:
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"prompt '{name}' is archived{why}: restore it with 'promptgit restore {name}' "
            "(role releaser), or see 'promptgit list --archived'"
        )
        self.name = name
        self.reason = reason


class PromptRenamed(NotFound):
    """The prompt was renamed or moved to another collection; for a while
    (`rename_redirect_days`) its old name answers with this error, naming the new one."""

    def __init__(self, name: str, new: str, until: str) -> None:
        super().__init__(
            f"prompt '{name}' was renamed to '{new}': use the new name "
            f"(e.g. 'promptgit show {new}'); the old name points to it until {until}"
        )
        self.name = name
        self.new = new
        self.until = until


class RefNotFound(NotFound):
    def __init__(self, name: str, ref: str, known: Sequence[str] = ()) -> None:
        hint = f" (versions: {', '.join(known)})" if known else ""
        super().__init__(f"prompt '{name}' has no {ref}{hint}")
        self.name = name
        self.ref = ref


class Conflict(PromptgitError):
    pass


class PromptExists(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"prompt '{name}' already exists: pick another name, or edit it with 'promptgit edit {name}@dev'"
        )
        self.name = name


class VersionExists(Conflict):
    def __init__(self, name: str, version: str, why: str = "is taken") -> None:
        super().__init__(
            f"prompt '{name}' version {version} {why}: version numbers are never "
            "reused; leave out --as to get the next free number"
        )
        self.name = name
        self.version = version


class VersionNameTaken(Conflict):
    def __init__(self, name: str, label: str, taken_by: str) -> None:
        super().__init__(
            f"prompt '{name}' already has a version named {label!r} ({taken_by}): names are unique "
            "(ignoring case); pick another --name, or leave it out to name the version by its creation time"
        )
        self.name = name
        self.label = label


class ReviewExists(Conflict):
    def __init__(self, name: str, branch: str, revision: str) -> None:
        super().__init__(
            f"prompt '{name}' already has a review branch {branch} (at {revision[:10]}): pick another "
            f"name, or delete it first (git push origin :{branch})"
        )
        self.name = name
        self.branch = branch


class ConcurrentUpdate(Conflict):
    """A compare-and-swap lost: someone else moved a ref first."""

    def __init__(self, message: str, *, current: str | None = None, saved: str | None = None):
        super().__init__(message)
        self.current = current
        self.saved = saved


class RuleViolation(PromptgitError):
    """The policy refused a proposed set of ref updates; one line per violation."""

    def __init__(self, violations: Sequence[object]) -> None:
        self.violations = list(violations)
        super().__init__("\n".join(str(v) for v in self.violations))


class InvalidInput(PromptgitError):
    pass


class InvalidName(InvalidInput):
    def __init__(self, what: str, value: str, rule: str) -> None:
        super().__init__(f"invalid {what} {value!r}: {rule}")
        self.value = value


class InvalidContent(InvalidInput):
    """A prompt.yaml or tests.yaml that does not validate, with file and line."""

    def __init__(self, file: str, problem: str, line: int | None = None) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {problem}")
        self.file = file
        self.line = line
        self.problem = problem


class RenderError(InvalidInput):
    """A template that cannot render with the given variables. `missing` names the
    variable no value was given for, so each interface can say how to pass one."""

    def __init__(self, message: str, missing: str | None = None) -> None:
        super().__init__(message)
        self.missing = missing


class DamagedRepository(PromptgitError):
    """git cannot read the prompt's repository: a file in it is damaged (a ref file
    holding no sha, a config that does not parse), missing, or not readable by this
    user. Nothing promptgit writes leaves that; a disk, or a hand, does. `detail` is
    git's reason, with the path up to the repository's folder left out (an HTTP
    answer says no server paths)."""

    def __init__(self, name: str, detail: str, store: str = "") -> None:
        for folder in {store, os.path.realpath(store)} if store else ():
            detail = detail.replace(folder.rstrip("/") + "/", "")
        detail = re.sub(r"[^\s'\"(]*/" + re.escape(f"{name}.git"), f"{name}.git", detail)  # else
        super().__init__(
            f"the repository of prompt '{name}' is damaged or unreadable ({detail}): run "
            f"'promptgit doctor {name}' on the store to see what is wrong, then restore what "
            "is damaged from a clone or a mirror"
        )
        self.name = name
        self.detail = detail


def damage(name: str, e: BaseException, store: str) -> DamagedRepository | None:
    """DamagedRepository if `e` is libgit2 failing to read `name`'s repository in
    `store` (not a bug of promptgit's: its files are not what git writes), else None."""
    pygit2 = sys.modules.get("pygit2")  # not imported yet: then `e` is no GitError
    if pygit2 is None or not isinstance(e, pygit2.GitError):
        return None
    return DamagedRepository(name, str(e), store)


def raise_if_damaged(name: str, e: BaseException, store: str) -> None:
    hurt = damage(name, e, store)
    if hurt is not None:
        raise hurt from e


@contextmanager
def reading(name: str, store: str) -> Iterator[None]:
    """libgit2 failing to read `name`'s repository, inside, is DamagedRepository."""
    try:
        yield
    except Exception as e:
        raise_if_damaged(name, e, store)
        raise


class Forbidden(PromptgitError):
    """The actor's role does not allow the action; the message names the role needed."""


class ReadOnlyStore(PromptgitError):
    """The store is a read-only mirror of `primary` (kept in sync by 'promptgit mirror'),
    or is served read-only (`primary` None): prompts change elsewhere, never here."""

    def __init__(self, primary: str | None) -> None:
        if primary:
            message = f"this store is a read-only mirror of {primary}: make changes there"
        else:
            message = (
                "this store is served read-only ('promptgit serve --read-only'): make changes "
                "through a server of it that is not read-only, or with the CLI where it lives"
            )
        super().__init__(message)
        self.primary = primary


class ProviderError(PromptgitError):
    """The model server could not give an answer; the message says why. A test run
    records it as the case's failure."""


class ServerUnavailable(PromptgitError):
    """`promptgit.Client` could not get an answer from its server (unreachable, timed
    out, a 5xx or a reply that is not promptgit's) and has no copy of the prompt to
    serve: none in memory, none in `cache_dir`, and no `fallback=`."""

    def __init__(self, url: str, what: str, reason: str, cache_dir: str | None) -> None:
        where = f"none in memory or in cache_dir {cache_dir}" if cache_dir else "none in memory, no cache_dir"
        super().__init__(
            f"promptgit server {url} is unavailable ({reason}) and there is no copy of {what} to serve "
            f"({where}): start the server or fix the URL, or pass fallback= to get() to serve a "
            "default until the server answers"
        )
        self.url = url
        self.reason = reason


class PrimaryError(PromptgitError):
    """The server a mirror copies could not be reached, refused the token, or answered
    what no promptgit server does; the message names it and what to check."""


class Busy(PromptgitError):
    """Every worker that renders or tests stayed busy past the wait: nothing was
    wrong with the request, so try again (HTTP 503 with Retry-After)."""


class DeadlinePassed(TimeoutError):
    """A whole HTTP answer did not come within its deadline, though each read may have
    been quick: a peer trickling bytes (client_http.within). Not a PromptgitError: a
    client or a webhook delivery turns it into its own words."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the answer took longer than {seconds:g} s")
