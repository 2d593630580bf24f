"""Webhook events, read out of git: what happened to each prompt since a cursor.

Events come from the records promptgit keeps in every prompt's repository, the
source of truth, never from a side journal:

| log                                    | events                                            |
|----------------------------------------|---------------------------------------------------|
| `refs/heads/dev`, `tst`, `prod`        | deploy (create, promote, update, rollback); a     |
|                                        | promote to prod is also a release                 |
| `refs/promptgit/events`                | deprecate (deprecate, undeprecate)                |
| `refs/promptgit/lifecycle`             | archive (archive, restore), rename                |

A deployment's who and when come from the audit log (`refs/promptgit/audit`),
which says who really pushed, by the server's clock; a deployment it does not
list keeps the commit's own claim (`"audited": false`).

A cursor (`Position` per prompt) holds the newest commit of each log already
handled; every log only grows, so the new events are the commits from the tip
back to that one. Prompts are found by name, live and archived (an archived
prompt's folder moves to `_archive/` with its logs). A name the cursor does not
know, or knows for another repository (the commits it records are not in this
one), takes the position of the name it was renamed from: the newest rename in
its lifecycle log first, then any name the cursor knows that is gone now, whose
commits this repository holds. Else it is a new prompt, and its whole history
is new.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import history, names, prompt_events
from ._git import Person, Repo
from .model import DeploymentInfo

LOGS = ("refs/heads/dev", "refs/heads/tst", "refs/heads/prod", names.EVENTS_REF, names.LIFECYCLE_REF)
BATCH = 200  # commits per log per scan; a longer backlog is read on the next scan
MAX_WALK = 100_000  # commits a log is walked back looking for the cursor (a bound, never reached in use)

Position = dict[str, str | None]  # log ref -> the newest commit handled (None: nothing yet)


@dataclass(frozen=True)
class Event:
    """One event: `kind` (a config.WEBHOOK_EVENTS name) of `prompt` (its name when it
    happened), recorded by `commit` of `log`."""

    kind: str
    prompt: str
    log: str
    commit: str
    time: int  # when, in seconds since the epoch
    fields: Mapping[str, Any]

    def payload(self, delivery: str) -> dict[str, Any]:
        """The JSON a receiver gets."""
        return {
            "id": delivery,
            "event": self.kind,
            "prompt": self.prompt,
            "commit": self.commit,
            **self.fields,
        }


@dataclass(frozen=True)
class Record:
    """One new commit of one log, and the events it records (a deployment to prod
    by promotion is two: deploy and release)."""

    prompt: str  # the prompt's name now (the cursor's key)
    log: str
    commit: str
    time: int
    events: tuple[Event, ...]
    order: tuple[int, int, int] = (0, 0, 0)  # when: time, then the kind of log, then the audit log's order


@dataclass
class Scan:
    """What is new since a cursor, and where each prompt stands once it is handled."""

    records: list[Record] = field(default_factory=list)  # oldest first; each log keeps its own order
    starts: dict[str, Position] = field(default_factory=dict)  # prompts whose cursor entry is replaced
    positions: dict[str, Position] = field(default_factory=dict)  # each prompt's logs, all handled
    more: bool = False  # a log had more than BATCH new commits: scan again
    skipped: dict[str, str] = field(default_factory=dict)  # prompts that could not be read now, and why


def tips(repo: Repo) -> Position:
    """Where each log stands now: five ref reads."""
    return {log: repo.ref(log) for log in LOGS}


def scan(found: Mapping[str, Repo], known: Mapping[str, Position]) -> Scan:
    """The new commits of every prompt in `found` (name -> repository, live and
    archived) since `known` (the cursor), as records merged oldest first."""
    out = Scan()
    per_log: list[list[Record]] = []
    for name, repo in sorted(found.items()):
        try:
            now = tips(repo)
            base = known.get(name)
            if base is None or not _belongs(repo, base):
                base = _adopt(name, repo, known, found) or {}
                out.starts[name] = dict(base)
            if all(base.get(log) == now[log] for log in LOGS):
                out.positions[name] = now
                continue
            logs, position = _new(repo, now, base)
            if any(len(shas) > BATCH for shas in logs.values()):
                out.more = True
            audit = _audit(repo, {(log, sha) for log, shas in logs.items() for sha in shas[:BATCH]})
            renames = [
                (e.stamp.time, e.previous or "") for e in prompt_events.read_log(repo) if e.event == "rename"
            ]
            mine = []
            for log, shas in logs.items():
                batch = shas[:BATCH]
                if len(shas) > BATCH:
                    position[log] = batch[-1]
                mine.append([_record(name, repo, log, sha, audit, renames) for sha in batch])
        except Exception as e:  # the repository is damaged, or went while it was read
            out.skipped[name] = f"{type(e).__name__}: {e}"
            out.starts.pop(name, None)
            continue
        per_log.extend(mine)
        out.positions[name] = position
    # each log keeps its own order (the cursor moves along it); between logs, the
    # audit log orders deployments made in the same second, and then a deployment
    # comes before a deprecation, which comes before an archive or rename
    out.records = list(heapq.merge(*per_log, key=lambda r: r.order))
    return out


def _new(repo: Repo, now: Position, base: Position) -> tuple[dict[str, list[str]], Position]:
    """Each log's commits after `base` (oldest first), and the position past them all."""
    logs = {}
    for log in LOGS:
        tip, stop = now[log], base.get(log)
        if tip is not None and tip != stop:
            logs[log] = _since(repo, log, tip, stop)
    return logs, dict(now)


def _since(repo: Repo, log: str, tip: str, stop: str | None) -> list[str]:
    """The commits of `log` from `tip` back to (not including) `stop`, oldest first; the
    whole log when `stop` is not on it. A stage's log ends at its first deployment."""
    stage = log in names.STAGE_REFS
    out: list[str] = []
    for sha, message, parents in repo.messages(tip):
        if sha == stop or len(out) >= MAX_WALK:
            break
        if stage and not history.is_deployment(message):
            break
        out.append(sha)
        if stage and parents < 2:
            break
    out.reverse()
    return out


def _belongs(repo: Repo, position: Position) -> bool:
    """Whether a cursor entry describes this repository: it holds every commit recorded."""
    shas = [sha for sha in position.values() if sha]
    return bool(shas) and all(repo.exists(sha) for sha in shas)


def _adopt(name: str, repo: Repo, known: Mapping[str, Position], found: Iterable[str]) -> Position | None:
    """The cursor entry of the name this prompt was renamed from, if the cursor knows it."""
    candidates = [e.previous for e in prompt_events.read_log(repo) if e.event == "rename" and e.previous]
    candidates += sorted(set(known) - set(found))
    for other in candidates:
        position = known.get(other)
        if other != name and position is not None and _belongs(repo, position):
            return dict(position)
    return None


def _audit(repo: Repo, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], history.Audited]:
    deployments = {(log, sha) for log, sha in wanted if log in names.STAGE_REFS}
    return history.audit_log(repo, wanted=deployments)[0] if deployments else {}


def _name_at(name: str, renames: list[tuple[int, str]], at: int) -> str:
    """The prompt's name at time `at`: its name now, before the renames made since
    (`renames`: (when, from which name), newest first). A rename in the same second
    counts as later, as it is delivered later (see `scan`)."""
    for when, previous in renames:
        if when < at:
            break
        name = previous
    return name


def _record(
    name: str,
    repo: Repo,
    log: str,
    sha: str,
    audit: Mapping[tuple[str, str], history.Audited],
    renames: list[tuple[int, str]],
) -> Record:
    """The events one commit records, each under the prompt's name when it happened."""
    commit = repo.commit(sha)
    stamp = commit.author
    called = None  # a lifecycle entry names the prompt itself
    events: list[tuple[str, dict[str, Any]]] = []
    stage = names.STAGE_REFS.get(log)
    if stage is not None:
        d = history.as_deployment(commit, stage)
        assert d is not None, "a stage's log holds deployments only"
        audited = audit.get((log, sha))
        stamp = audited.by if audited else d.by
        info = DeploymentInfo(
            sha, stage, d.action, str(d.version), d.revision, stamp, d.summary, bool(audited)
        )
        events.append(("deploy", info.to_json()))
        if stage == "prod" and d.action == "promote":
            release = {"version": str(d.version), "revision": d.revision, "deployment": sha}
            events.append(("release", {**release, **_when(stamp)}))
    elif log == names.EVENTS_REF:
        t = names.trailers(commit.message)
        kind = t.get("Promptgit-Event")
        if kind in ("deprecate", "undeprecate"):
            reason = names.description_of(commit.message)
            events.append(
                ("deprecate", {"action": kind, "version": t.get("Promptgit-Version"), "reason": reason})
            )
    else:
        e = prompt_events.parse(commit)
        called = e.name if e is not None else None
        if e is not None and e.event in ("archive", "restore"):
            events.append(("archive", {"action": e.event, "reason": e.reason}))
        elif e is not None and e.event == "rename":
            events.append(("rename", {"from": e.previous, "to": e.name}))
    then = called or _name_at(name, renames, stamp.time)
    audited = audit.get((log, sha))
    rank = 0 if stage is not None else 1 if log == names.EVENTS_REF else 2
    return Record(
        name,
        log,
        sha,
        stamp.time,
        tuple(Event(kind, then, log, sha, stamp.time, {**_when(stamp), **fields}) for kind, fields in events),
        (stamp.time, rank, audited.order if audited else 0),
    )


def _when(stamp: Person) -> dict[str, str]:
    return {"at": stamp.at, "by": stamp.by}
