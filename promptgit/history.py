"""Reading the model back out of git: deployments, versions and their revisions.

Pure reads over a `Repo`, shared by the policy and the store. Walks start at a
ref tip and stop as soon as the question is answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from . import names
from ._git import Commit, Person, Repo
from .names import Version


@dataclass(frozen=True)
class Deployment:
    """One commit of a stage's log: `action` put `revision` of `version` live."""

    sha: str
    stage: str
    action: str
    version: Version
    revision: str
    by: Person
    message: str

    @property
    def summary(self) -> str:
        return names.summary(self.message)


def as_deployment(commit: Commit, stage: str) -> Deployment | None:
    """The deployment a commit records, or None when it is not one."""
    t = names.trailers(commit.message)
    action, version, revision = (
        t.get("Promptgit-Action"),
        t.get("Promptgit-Version"),
        t.get("Promptgit-Revision"),
    )
    if action not in names.ACTIONS or version is None or revision is None:
        return None
    v = Version.maybe(version)
    if v is None:
        return None
    return Deployment(commit.sha, stage, action, v, revision, commit.author, commit.message)


def stage_log(repo: Repo, stage: str, tip: str | None = None) -> Iterator[Deployment]:
    """A stage's deployments, newest first; stops at the first non-deployment."""
    tip = tip if tip is not None else repo.ref(f"refs/heads/{stage}")
    if tip is None:
        return
    for commit in repo.first_parents(tip):
        d = as_deployment(commit, stage)
        if d is None:
            return
        yield d


def current(repo: Repo, stage: str, tip: str | None = None) -> Deployment | None:
    """What a stage serves now: its tip's deployment."""
    tip = tip if tip is not None else repo.ref(f"refs/heads/{stage}")
    return None if tip is None else as_deployment(repo.commit(tip), stage)


def last_served(repo: Repo, stage: str, version: Version, tip: str | None = None) -> Deployment | None:
    """The newest deployment of `version` in a stage's log."""
    return next((d for d in stage_log(repo, stage, tip) if d.version == version), None)


def has_served_revision(repo: Repo, stage: str, revision: str, tip: str | None = None) -> bool:
    return any(d.revision == revision for d in stage_log(repo, stage, tip))


def versions_in_log(repo: Repo, stage: str, tip: str | None = None) -> set[Version]:
    return {d.version for d in stage_log(repo, stage, tip)}


def is_creation(commit: Commit) -> Version | None:
    created = names.trailers(commit.message).get("Promptgit-Created")
    return Version.maybe(created) if created else None


def revisions(repo: Repo, tip: str) -> list[Commit]:
    """A version's revisions, newest first: its first-parent chain back to and
    including its creation commit."""
    out = []
    for commit in repo.first_parents(tip):
        out.append(commit)
        if is_creation(commit) is not None:
            break
    return out


def version_of(repo: Repo, sha: str) -> Version | None:
    """Which version a revision belongs to: the nearest creation commit's."""
    for commit in repo.first_parents(sha):
        if names.trailers(commit.message).get("Promptgit-Action"):
            return None  # a deployment, not a revision
        created = is_creation(commit)
        if created is not None:
            return created
    return None


def version_tip(repo: Repo, version: Version) -> tuple[str, bool] | None:
    """(tip revision, released?) of a version: the tag's commit wins over a
    leftover branch (a half-landed release is a release)."""
    tag = repo.ref(version.tag)
    if tag is not None:
        t = repo.tag(tag)
        return (t.target if t is not None else tag), True
    branch = repo.ref(version.branch)
    return None if branch is None else (branch, False)


def all_versions(repo: Repo) -> dict[Version, tuple[str, bool]]:
    """Every existing version: {version: (tip revision, released?)}."""
    out: dict[Version, tuple[str, bool]] = {}
    for ref, sha in repo.refs("refs/heads/v").items():
        v = Version.maybe(ref.removeprefix("refs/heads/"))
        if v is not None:
            out[v] = (sha, False)
    for ref, sha in repo.refs("refs/tags/v").items():
        v = Version.maybe(ref.removeprefix("refs/tags/"))
        if v is not None:
            t = repo.tag(sha)
            out[v] = ((t.target if t is not None else sha), True)
    return out


def used_numbers(repo: Repo) -> set[Version]:
    """Every number ever used: existing versions and the retired ones the dev log names."""
    return set(all_versions(repo)) | versions_in_log(repo, "dev")
