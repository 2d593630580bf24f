"""Reading the model back out of git: deployments, versions and their revisions.

Pure reads over a `Repo`, shared by the policy and the store. Walks start at a
ref tip and stop as soon as the question is answered.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from . import names
from ._git import ZERO, Commit, Person, Repo
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


def _fields(message: str) -> tuple[str, Version, str] | None:
    """(action, version, revision) of a deployment's message, or None."""
    t = names.trailers(message)
    action, version, revision = (
        t.get("Promptgit-Action"),
        t.get("Promptgit-Version"),
        t.get("Promptgit-Revision"),
    )
    if action not in names.ACTIONS or version is None or revision is None:
        return None
    v = Version.maybe(version)
    return None if v is None else (action, v, revision)


def is_deployment(message: str) -> bool:
    """Whether a commit message records a well-formed deployment (a cheap test for walks)."""
    return _fields(message) is not None


def as_deployment(commit: Commit, stage: str) -> Deployment | None:
    """The deployment a commit records, or None when it is not one."""
    fields = _fields(commit.message)
    if fields is None:
        return None
    action, v, revision = fields
    return Deployment(commit.sha, stage, action, v, revision, commit.author, commit.message)


def _tip(repo: Repo, stage: str, tip: str | None) -> str | None:
    return tip if tip is not None else repo.ref(f"refs/heads/{stage}")


def _log(repo: Repo, stage: str, tip: str | None) -> Iterator[tuple[str, tuple[str, Version, str]]]:
    """(sha, fields) of a stage's deployments, newest first, read cheaply."""
    start = _tip(repo, stage, tip)
    if start is None:
        return
    for sha, message, parents in repo.messages(start):
        fields = _fields(message)
        if fields is None:
            return
        yield sha, fields
        if parents < 2:
            return  # a stage's first deployment: its only parent is a revision, not a deployment


def stage_log(repo: Repo, stage: str, tip: str | None = None) -> Iterator[Deployment]:
    """A stage's deployments, newest first; stops at the first non-deployment."""
    for sha, _ in _log(repo, stage, tip):
        d = as_deployment(repo.commit(sha), stage)
        assert d is not None
        yield d


def current(repo: Repo, stage: str, tip: str | None = None) -> Deployment | None:
    """What a stage serves now: its tip's deployment."""
    start = _tip(repo, stage, tip)
    return None if start is None else as_deployment(repo.commit(start), stage)


def last_served(repo: Repo, stage: str, version: Version, tip: str | None = None) -> Deployment | None:
    """The newest deployment of `version` in a stage's log."""
    for sha, (_action, v, _revision) in _log(repo, stage, tip):
        if v == version:
            return as_deployment(repo.commit(sha), stage)
    return None


def has_served_revision(repo: Repo, stage: str, revision: str, tip: str | None = None) -> bool:
    return any(fields[2] == revision for _sha, fields in _log(repo, stage, tip))


def has_served(repo: Repo, stage: str, version: Version, tip: str | None = None) -> bool:
    """Whether a stage ever deployed `version` (stops at the first deployment of it,
    or asks the index)."""
    if repo.facts is not None:
        return version in versions_in_log(repo, stage, tip)
    return any(fields[1] == version for _sha, fields in _log(repo, stage, tip))


def versions_in_log(repo: Repo, stage: str, tip: str | None = None) -> frozenset[Version]:
    """Every version a stage's log has deployed, up to `tip` (default: its tip now).
    With an index, only the deployments since the remembered tip are read: this
    process's last answer for the log, else the index's."""
    index = repo.facts
    start = _tip(repo, stage, tip)
    if index is None or start is None:
        return frozenset(fields[1] for _sha, fields in _log(repo, stage, start))
    hit = index.recall(f"served {start}")  # what a log served up to a commit never changes
    if isinstance(hit, frozenset):
        return hit
    key = f"{os.path.realpath(repo.path)} {stage}"
    last = index.recall(f"served log {key}")
    if isinstance(last, tuple):
        remembered: tuple[str, frozenset[Version]] | None = last
    else:
        row = index.served(key)
        if row is not None:
            remembered = row[0], frozenset(v for v in map(Version.maybe, row[1]) if v is not None)
        else:
            remembered = None
    found: set[Version] = set()
    for sha, fields in _log(repo, stage, start):
        if remembered is not None and sha == remembered[0]:
            found |= remembered[1]
            break
        found.add(fields[1])
    if remembered is None or remembered[0] != start:
        index.add_served(key, start, [str(v) for v in found])
    answer = frozenset(found)
    index.remember(f"served {start}", answer)
    index.remember(f"served log {key}", (start, answer))
    return answer


def released_by_prod(repo: Repo, version: Version, revision: str, tip: str | None = None) -> bool:
    """Whether prod's log holds the promotion that released `revision` as `version`."""
    return any(f == ("promote", version, revision) for _sha, f in _log(repo, "prod", tip))


def is_creation(commit: Commit) -> Version | None:
    created = names.trailers(commit.message).get("Promptgit-Created")
    return Version.maybe(created) if created else None


def revisions(repo: Repo, tip: str) -> list[Commit]:
    """A version's revisions, newest first: its first-parent chain back to and
    including its creation commit."""
    return [repo.commit(sha) for sha in revision_shas(repo, tip)]


def revision_shas(repo: Repo, tip: str) -> list[str]:
    """The shas of `revisions(repo, tip)`, read cheaply."""
    out = []
    for sha, message, _parents in repo.messages(tip):
        out.append(sha)
        if names.trailers(message).get("Promptgit-Created"):
            break
    return out


def creation(repo: Repo, tip: str) -> Commit:
    """A version's creation commit (its first revision), found by a cheap walk."""
    return repo.commit(revision_shas(repo, tip)[-1])


def default_name(at: int, taken: Collection[str] = ()) -> str:
    """A version's name when none was given: its creation time in UTC, with ' (2)',
    ' (3)' ... when another version already has it."""
    from datetime import UTC, datetime

    base = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M")
    folded = {t.casefold() for t in taken}
    name, n = base, 1
    while name.casefold() in folded:
        n += 1
        name = f"{base} ({n})"
    return name


@dataclass(frozen=True)
class VersionFact:
    """What a version's tip says about the version, fixed for that sha: its creation
    commit, who created it and when, its name and description, and the tip's own
    author and summary."""

    creation: str
    created: Person
    name: str | None  # the creation commit's Promptgit-Name (None: made before names)
    description: str
    updated: Person
    summary: str

    def to_record(self) -> dict[str, Any]:
        return {
            "creation": self.creation,
            "created": _person_record(self.created),
            "name": self.name,
            "description": self.description,
            "updated": _person_record(self.updated),
            "summary": self.summary,
        }

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> VersionFact:
        created, updated = Person(*r["created"]), Person(*r["updated"])
        return cls(r["creation"], created, r["name"], r["description"], updated, r["summary"])


def _person_record(p: Person) -> list[Any]:
    return [p.name, p.email, p.time, p.offset]


KNOWN_WITHIN = 3  # revisions a walk looks up in the index before walking to the creation


def version_facts(repo: Repo, tips: Collection[str]) -> dict[str, VersionFact]:
    """The facts of each version tip: from the index when it has them; else by a walk
    to the creation (cut short by a remembered earlier tip), then remembered."""
    index = repo.facts
    found: dict[str, VersionFact] = {}
    if index is not None:
        for tip in tips:
            hit = index.recall(tip)
            if isinstance(hit, VersionFact):
                found[tip] = hit
        for tip, record in index.versions([t for t in tips if t not in found]).items():
            try:
                found[tip] = VersionFact.from_record(record)
            except (KeyError, TypeError):
                continue  # a malformed row: walk instead
            index.remember(tip, found[tip])
    new = {tip: _walk_fact(repo, tip) for tip in tips if tip not in found}
    if index is not None and new:
        index.add_versions({tip: fact.to_record() for tip, fact in new.items()})
        for tip, fact in new.items():
            index.remember(tip, fact)
    return {**found, **new}


def _walk_fact(repo: Repo, tip: str) -> VersionFact:
    last = repo.commit(tip)
    updated, summary = last.author, names.summary(last.message)
    sha = tip
    for n, (sha, message, _parents) in enumerate(repo.messages(tip)):
        if 0 < n <= KNOWN_WITHIN and repo.facts is not None:
            known = repo.facts.versions([sha]).get(sha)
            if known is not None:
                try:
                    before = VersionFact.from_record(known)
                except (KeyError, TypeError):
                    pass
                else:
                    return VersionFact(
                        before.creation, before.created, before.name, before.description, updated, summary
                    )
        if names.trailers(message).get("Promptgit-Created"):
            c = repo.commit(sha)
            name = names.trailers(c.message).get("Promptgit-Name")
            return VersionFact(sha, c.author, name, names.description_of(c.message), updated, summary)
    c = repo.commit(sha)  # a line with no creation mark: its first commit
    return VersionFact(sha, c.author, None, names.description_of(c.message), updated, summary)


def version_names(repo: Repo) -> Mapping[Version, tuple[str, str]]:
    """Every existing version's (name, description), from its creation commit. A
    version created before names existed is named by its creation time, in order.
    Kept with the versions it was read for (shared: do not change it)."""
    tips = all_versions(repo)
    kept = repo.kept.get("version_names")
    if kept is not None and kept[0] is tips:
        return kept[1]  # type: ignore[no-any-return]
    facts = version_facts(repo, [tip for tip, _released in tips.values()])
    found: dict[Version, tuple[str, str]] = {}
    unnamed: list[tuple[int, Version, str]] = []
    for v, (tip, _released) in tips.items():
        f = facts[tip]
        if f.name:
            found[v] = (f.name, f.description)
        else:
            unnamed.append((f.created.time, v, f.description))
    for at, v, description in sorted(unnamed):
        found[v] = (default_name(at, [n for n, _d in found.values()]), description)
    repo.kept["version_names"] = (tips, found)
    return found


def version_name(repo: Repo, v: Version, tip: str) -> tuple[str, str]:
    """One version's (name, description): its own creation commit answers, unless it
    predates names (then its default name depends on the others')."""
    f = version_facts(repo, [tip])[tip]
    if f.name:
        return f.name, f.description
    return version_names(repo).get(v, ("", ""))


def named(repo: Repo, name: str) -> Version | None:
    """The version with this name (ignoring case), if any."""
    folded = name.casefold()
    return next((v for v, (n, _d) in version_names(repo).items() if n.casefold() == folded), None)


def version_of(repo: Repo, sha: str) -> Version | None:
    """Which version a revision belongs to: the nearest creation commit's."""
    for _sha, message, _parents in repo.messages(sha):
        t = names.trailers(message)
        if t.get("Promptgit-Action"):
            return None  # a deployment, not a revision
        created = t.get("Promptgit-Created")
        if created:
            return Version.maybe(created)
    return None


def half_released(repo: Repo, refs: Mapping[str, str] | None = None) -> tuple[Version, str] | None:
    """The release prod's tip records whose tag has not landed yet (a crash or a
    non-atomic push cut it short): (version, revision), else None. Reads treat it
    as released, as the next write will make it. `refs`: a listing to read the refs
    from (default: read them now)."""
    if refs is None:
        d = current(repo, "prod")
        landed = d is not None and repo.ref(d.version.tag) is not None
    else:
        prod = refs.get("refs/heads/prod")
        d = None if prod is None else as_deployment(repo.commit(prod), "prod")
        landed = d is not None and d.version.tag in refs
    if d is None or d.action != "promote" or landed:
        return None
    return d.version, d.revision


def version_tip(repo: Repo, version: Version) -> tuple[str, bool] | None:
    """(tip revision, released?) of a version: the tag's commit wins over a
    leftover branch, and prod's release wins over a tag that has not landed
    (a half-landed release is a release)."""
    tag = repo.ref(version.tag)
    if tag is not None:
        t = repo.tag(tag)
        return (t.target if t is not None else tag), True
    pending = half_released(repo)
    if pending is not None and pending[0] == version:
        return pending[1], True
    branch = repo.ref(version.branch)
    return None if branch is None else (branch, False)


def all_versions(repo: Repo) -> Mapping[Version, tuple[str, bool]]:
    """Every existing version: {version: (tip revision, released?)}. The answer is a
    function of the ref listing alone, so it is kept with the listing and given again
    while the refs are the same (shared: do not change it)."""
    refs = repo.refs("refs/")  # one listing: it reads every ref's file
    kept = repo.kept.get("all_versions")
    if kept is not None and kept[0] == refs:
        return kept[1]  # type: ignore[no-any-return]
    out: dict[Version, tuple[str, bool]] = {}
    for ref, sha in refs.items():
        if ref.startswith("refs/heads/v"):
            v = Version.maybe(ref.removeprefix("refs/heads/"))
            if v is not None:
                out[v] = (sha, False)
    for ref, sha in refs.items():
        if ref.startswith("refs/tags/v"):
            v = Version.maybe(ref.removeprefix("refs/tags/"))
            if v is not None:
                out[v] = (repo.tag_target(sha), True)
    pending = half_released(repo, refs)
    if pending is not None:
        out[pending[0]] = (pending[1], True)
    repo.kept["all_versions"] = (refs, out)
    return out


def used_numbers(repo: Repo) -> set[Version]:
    """Every number ever used: existing versions and the retired ones the dev log names."""
    return set(all_versions(repo)) | versions_in_log(repo, "dev")


def test_runs(repo: Repo, revision: str) -> list[dict[str, Any]]:
    """The test runs recorded on a revision (one JSON line each), oldest first."""
    runs = []
    for line in (repo.note(names.NOTES_TESTS_REF, revision) or "").splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            runs.append(value)
    return runs


def passed_in(runs: list[dict[str, Any]], env: str) -> bool:
    """Whether one of the runs passed in the environment of stage `env`."""
    return any(r.get("passed") is True and r.get("env") == env for r in runs)


@dataclass(frozen=True)
class Audited:
    """Who really made a ref point at a commit, when, and how (library or push)."""

    by: Person
    via: str
    order: int = 0  # its place in the log, higher for newer (0: the newest entry read)


def audit_log(
    repo: Repo,
    tip: str | None = None,
    *,
    until: str | None = None,
    wanted: Collection[tuple[str, str]] | None = None,
) -> tuple[dict[tuple[str, str], Audited], bool]:
    """{(ref, new sha): the audit entry that set it}, newest first, and whether the
    walk stopped early: at `until` (an entry read before, not included), or once
    every one of `wanted` was found. Otherwise it reads the whole log.

    The log is promptgit's own (pushes to it are refused), so unlike a pushed
    commit's author it says who really did it: the token's name or the system
    user for a push, the actor for a library write."""
    start = tip if tip is not None else repo.ref(names.AUDIT_REF)
    found: dict[tuple[str, str], Audited] = {}
    if start is None:
        return found, False
    missing = set(wanted) if wanted is not None else None
    for n, commit in enumerate(repo.first_parents(start)):
        if commit.sha == until:
            return found, True
        via = names.trailers(commit.message).get("Promptgit-Via", "?")
        for ref, _old, new in entry_lines(commit.message):
            found.setdefault((ref, new), Audited(commit.author, via, -n))
            if missing is not None:
                missing.discard((ref, new))
        if missing is not None and not missing:
            return found, True
    return found, False


def deprecated(repo: Repo) -> dict[Version, str]:
    """Releases deprecated now, with the reason: the newest event per version decides."""
    tip = repo.ref(names.EVENTS_REF)
    seen: set[Version] = set()
    found: dict[Version, str] = {}
    for _sha, message, _parents in repo.messages(tip) if tip else ():
        t = names.trailers(message)
        v = Version.maybe(t.get("Promptgit-Version", ""))
        if v is None or v in seen or t.get("Promptgit-Event") not in ("deprecate", "undeprecate"):
            continue
        seen.add(v)
        if t["Promptgit-Event"] == "deprecate":
            found[v] = names.description_of(message) or "no reason given"
    return found


# --- approvals and who authored a revision ------------------------------------------------


@dataclass(frozen=True)
class Approval:
    """One approval of exactly one revision: who, when, and what they said."""

    revision: str
    version: str
    by: Person
    comment: str


def approvals(repo: Repo, revision: str) -> list[Approval]:
    """The approvals recorded on a revision (one JSON line each in the approvals notes
    ref, which promptgit alone writes), oldest first."""
    found = []
    for line in (repo.note(names.NOTES_APPROVALS_REF, revision) or "").splitlines():
        try:
            value = json.loads(line)
            by = Person(str(value["name"]), str(value["email"]), int(value["time"]), int(value["offset"]))
        except (ValueError, KeyError, TypeError):
            continue
        found.append(Approval(revision, str(value.get("version", "")), by, str(value.get("comment", ""))))
    return found


def approval_line(version: str, who: Person, comment: str) -> str:
    """An approval as its note stores it: one JSON line."""
    data = {"version": version, "name": who.name, "email": who.email, "time": who.time,
            "offset": who.offset, "comment": comment}  # fmt: skip
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def same_person(a: Person, b: Person) -> bool:
    """Whether two identities name one person: the same name or the same email,
    ignoring case (git's '?' for a missing part never matches)."""
    return any(
        x and x != "?" and x.casefold() == y.casefold() for x, y in ((a.name, b.name), (a.email, b.email))
    )


def audit_entries(repo: Repo, tip: str | None = None) -> list[tuple[str, str | None, str | None, Person]]:
    """Every ref change of the audit log as (ref, old, new, who), oldest first."""
    start = tip if tip is not None else repo.ref(names.AUDIT_REF)
    cached = _ENTRIES.get(repo.path)
    if cached is not None and cached[0] == start:
        return cached[1]
    out: list[tuple[str, str | None, str | None, Person]] = []
    for commit in repo.first_parents(start) if start else ():
        lines = entry_lines(commit.message)
        out.extend((ref, _sha(old), _sha(new), commit.author) for ref, old, new in reversed(lines))
    out.reverse()
    remember(_ENTRIES, repo.path, (start, out))
    return out


_ENTRIES: dict[str, tuple[str | None, list[tuple[str, str | None, str | None, Person]]]] = {}
REMEMBERED = 64  # repositories whose audit log a process keeps read


def remember(cache: dict[Any, Any], key: Any, value: Any, keep: int = REMEMBERED) -> None:
    """Keep `value` for `key` in a cache shared by threads, letting the oldest go past
    `keep` entries (memory stays bounded)."""
    cache.pop(key, None)
    cache[key] = value
    while len(cache) > keep:
        try:
            cache.pop(next(iter(cache)), None)
        except (RuntimeError, StopIteration):  # another thread changed it meanwhile
            break


def entry_lines(message: str) -> list[tuple[str, str, str]]:
    """The ref changes an audit entry lists, "REF OLD NEW" a line, as written."""
    paragraphs = message.split("\n\n")
    lines = paragraphs[1].splitlines() if len(paragraphs) > 2 else []
    return [(p[0], p[1], p[2]) for p in (line.split(" ") for line in lines) if len(p) == 3]


def _sha(value: str) -> str | None:
    return None if value == ZERO else value


@dataclass(frozen=True)
class Authorship:
    """Who authored a revision (see `authors`), and which of its version's revisions
    no audit entry says who put on the draft (then nobody can say who did)."""

    people: list[Person]
    unaccounted: list[str]


def authors(repo: Repo, revision: str) -> Authorship:
    """Who authored `revision`: everyone who authored one of its version's revisions up
    to it (from its creation commit on), as the commits say, and as promptgit's audit
    log says who really put each of them on the draft or on a review branch (the
    editor, or the authenticated pusher: a pushed commit's author is only a claim)."""
    chain = revision_shas(repo, revision)
    people = [repo.commit(sha).author for sha in chain]
    created = is_creation(repo.commit(chain[-1]))
    branch = created.branch if created is not None else None
    landed: set[str] = set()  # brought by an entry: their bringer is known
    accounted: set[str] = set()  # ...and, for what the draft holds, by an entry of the draft's own
    draft_now = repo.ref(branch) if branch else None
    for ref, old, new, who in audit_entries(repo):
        if new is None or not (ref == branch or ref.startswith(names.REVIEW)) or not repo.exists(new):
            continue
        before = old if old is not None and repo.exists(old) else None
        brought = [
            sha
            for sha in chain
            if sha not in landed
            and repo.is_ancestor(sha, new)
            and not (before is not None and repo.is_ancestor(sha, before))
        ]
        if brought:
            landed.update(brought)
            people.append(who)
        # a review branch accounts for its own commits only while the draft does not hold
        # them: one started from (or landed on) the draft cannot say who put them there
        accounted.update(
            sha
            for sha in chain
            if repo.is_ancestor(sha, new)
            and not (before is not None and repo.is_ancestor(sha, before))
            and (ref == branch or draft_now is None or not repo.is_ancestor(sha, draft_now))
        )
    unique: list[Person] = []
    for p in people:
        if not any(q.name == p.name and q.email == p.email for q in unique):
            unique.append(p)
    return Authorship(unique, [sha for sha in chain if sha not in accounted])
