"""`promptgit doctor`: check every invariant of the model, and repair what can be
repaired without losing anything.

Repairs only finish what a crash interrupted or remove what a dead process left
(the next write would do most of it anyway); they never rewrite history. What
cannot be repaired safely is reported with the command that fixes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from . import history, hooks, locks, names, policy
from ._git import Repo
from .errors import DamagedRepository, PromptgitError, damage
from .model import Actor, Finding
from .operations import CREATING, REPO_CONFIG, Operations

REPAIR = "promptgit doctor --repair"
Found = Iterator[tuple[Finding, Callable[[], None]]]  # each problem, and how to mend it


def examine(store: Operations, prompts: Sequence[str], *, repair: bool, actor: Actor) -> list[Finding]:
    """Every problem found in the store (and in `prompts`, default all), repaired
    when `repair` and it can be."""
    found: list[Finding] = []
    for leftover in sorted(store.path.glob(CREATING + "*")):
        fix = "promptgit doctor --repair (a create was killed midway; nothing was created)"
        found.append(_finding("", "leftover", f"{leftover.name} is left by a killed create", fix))
    if repair and any(f.check == "leftover" for f in found):
        gone = set(store.sweep_creations())
        found = [f.repaired_if(f.problem.split()[0] in gone) for f in found]
    strays: list[str] = []
    every = [] if prompts else names.store_names(str(store.path), strays)
    for stray in strays:
        problem = (
            f"{stray} is in the store, but {stray[:-4]!r} is no valid prompt name, so promptgit leaves it out"
        )
        found.append(
            _finding(
                "", "stray", problem, f"move it out of the store, or rename it: {names.NAME_RULE}", False
            )
        )
    for name in prompts or every:
        try:
            found.extend(_prompt(store, name, repair, actor))
        except Exception as e:  # git cannot read it: say so, and go on to the next prompt
            unreadable = _unreadable(store, name, e)
            if unreadable is None:
                raise
            found.append(unreadable)
    return found


def _unreadable(store: Operations, name: str, e: Exception) -> Finding | None:
    """The finding for a prompt git cannot read (`e` says why), or None if `e` is
    not that."""
    hurt = e if isinstance(e, DamagedRepository) else damage(name, e, str(store.path))
    if hurt is None:
        return None
    fix = f"restore {name}.git in the store from a clone or backup (git fetch from a mirror)"
    return _finding(name, "damaged", f"git cannot read the repository: {hurt.detail}", fix, False)


def _finding(name: str, check: str, problem: str, fix: str, repairable: bool = True) -> Finding:
    return Finding(name, check, problem, fix, repairable, False)


def _prompt(store: Operations, name: str, repair: bool, actor: Actor) -> Iterator[Finding]:
    repo = store.repository(name)  # PromptNotFound, listing the prompts, if there is none
    path = Path(repo.path)
    checks: list[Callable[[Operations, Repo, str, Path], Found]] = [
        _objects,
        _locks,
        _hooks,
        _releases,
        _stages,
        _tags,
        _drafts,
    ]
    for check in checks:
        for finding, mend in check(store, repo, name, path):
            if repair and finding.repairable:
                try:
                    mend()
                except Exception as e:  # ours, or git's (a lock another process holds)
                    if not isinstance(e, PromptgitError) and damage(name, e, str(store.path)) is None:
                        raise
                    yield Finding(
                        name,
                        finding.check,
                        f"{finding.problem} (repair failed: {e})",
                        finding.fix,
                        True,
                        False,
                    )
                    continue
                finding = finding.repaired_if(True)
            yield finding
        repo = Repo(str(path))  # a repair may have moved refs: read afresh


def _nothing() -> None:
    pass


def _objects(
    store: Operations, repo: Repo, name: str, path: Path
) -> Iterator[tuple[Finding, Callable[[], None]]]:
    problems = repo.fsck()
    if problems:
        fix = f"restore {path} from a clone or backup (git fetch from a mirror); see 'git fsck' there"
        yield _finding(name, "objects", "; ".join(problems[:5]), fix, repairable=False), _nothing
    for ref, sha in repo.refs().items():
        if not repo.exists(sha):
            fix = f"restore the object from a clone, or point {ref} back with its reflog (git reflog {ref})"
            yield _finding(name, "refs", f"{ref} names {sha[:10]}, which is missing", fix, False), _nothing


def _locks(
    store: Operations, repo: Repo, name: str, path: Path
) -> Iterator[tuple[Finding, Callable[[], None]]]:
    write = path / "promptgit" / "write.lock"
    if write.exists() and locks.stale(write):
        yield (
            _finding(
                name,
                "locks",
                "promptgit/write.lock is held by a process that is gone",
                REPAIR,
            ),
            lambda: write.unlink(missing_ok=True),
        )
    for lock in sorted([*path.glob("refs/**/*.lock"), *path.glob("packed-refs.lock")]):
        ref = lock.relative_to(path).as_posix().removesuffix(".lock")
        claimed = locks.claimants(path, ref)
        if claimed and all(locks.owner_gone(owner) for _record, owner in claimed):
            yield (
                _finding(name, "locks", f"{ref}.lock is left by a writer that is gone", REPAIR),
                _mend(_break, path, ref),
            )
        elif not claimed and not locks.receiving(path):
            fix = f"if no git or promptgit process is using it, remove {lock}"
            yield (
                _finding(name, "locks", f"{ref}.lock is held, and no promptgit writer claims it", fix, False),
                _nothing,
            )
    for record in sorted((path / locks.OWNERS).glob("*")):
        if locks.stale(record):
            yield (
                _finding(
                    name,
                    "locks",
                    f"{locks.OWNERS}/{record.name} is left by a writer that is gone",
                    REPAIR,
                ),
                _mend(_remove, record),
            )


def _mend(do: Callable[..., None], *args: object) -> Callable[[], None]:
    return lambda: do(*args)


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _break(path: Path, ref: str) -> None:
    if not locks.break_stale(path, ref):
        (path / f"{ref}.lock").unlink(missing_ok=True)


def _hooks(
    store: Operations, repo: Repo, name: str, path: Path
) -> Iterator[tuple[Finding, Callable[[], None]]]:
    expected = hooks.shims()
    for hook, text in expected.items():
        installed = path / "hooks" / hook
        if not installed.is_file() or installed.read_text() != text:
            problem = f"hook {hook} is missing or not this promptgit's (pushes may skip the rules)"
            yield (
                _finding(name, "hooks", problem, f"promptgit hooks install {name}"),
                _mend(_reinstall, store, name),
            )
            return
    for key, value in REPO_CONFIG.items():
        if repo.config(key) != value:
            yield (
                _finding(
                    name, "hooks", f"git config {key} is not {value}", f"promptgit hooks install {name}"
                ),
                _mend(_reinstall, store, name),
            )
            return


def _releases(
    store: Operations, repo: Repo, name: str, path: Path
) -> Iterator[tuple[Finding, Callable[[], None]]]:
    pending = history.half_released(repo)
    if pending is not None:
        v, _revision = pending
        problem = f"prod serves {v}, but its release was cut short (tag {v} missing)"
        yield _finding(name, "releases", problem, REPAIR), lambda: _finish(store, name)
    prod = history.current(repo, "prod")
    if prod is not None and pending is None and repo.ref(prod.version.tag) is None:
        fix = f"roll prod back to a release ('promptgit rollback {name} --to vX.Y')"
        yield (
            _finding(name, "releases", f"prod serves {prod.version}, which is not a release", fix, False),
            _nothing,
        )
    for v, (_tip, released) in history.all_versions(repo).items():
        branch = repo.ref(v.branch)
        if released and branch is not None and repo.ref(v.tag) is not None:
            problem = f"{v} is released, but its draft branch is still there"
            yield (
                _finding(name, "releases", problem, REPAIR),
                lambda: _finish(store, name),
            )


def _reinstall(store: Operations, name: str) -> None:
    store.install_hooks([name])


def _finish(store: Operations, name: str) -> None:
    store.finish_releases(name, actor=Actor("promptgit doctor", "doctor@promptgit", "admin"))


def _stages(
    store: Operations, repo: Repo, name: str, path: Path
) -> Iterator[tuple[Finding, Callable[[], None]]]:
    for stage in names.STAGES:
        for d in history.stage_log(repo, stage):
            if not repo.exists(d.revision) or repo.commit(d.sha).tree != repo.commit(d.revision).tree:
                fix = f"the {stage} log is damaged; restore {path} from a clone"
                yield (
                    _finding(
                        name,
                        "stages",
                        f"{stage} deployment {d.sha[:10]} does not serve its revision",
                        fix,
                        False,
                    ),
                    _nothing,
                )
        now = history.current(repo, stage)
        if now is None or stage == "prod" or now.action == "rollback":
            continue
        tip = history.version_tip(repo, now.version)
        required = store.config.require_approvals
        if tip is not None and not tip[1] and tip[0] != now.revision:
            if policy.approval_problem(repo, stage, required, now.version, tip[0], name):
                continue  # the stage waits for the tip's approvals (require_approvals): as it should
            problem = (
                f"{stage} serves {now.version} at {now.revision[:10]}, not its tip {tip[0][:10]} "
                "(an edit was cut short)"
            )
            yield (
                _finding(name, "stages", problem, REPAIR),
                _mend(_follow, store, name, now.version),
            )


def _tags(
    store: Operations, repo: Repo, name: str, path: Path
) -> Iterator[tuple[Finding, Callable[[], None]]]:
    for ref in repo.refs("refs/tags/"):
        moves = repo.moves(ref)
        if len(moves) > 1 or (moves and moves[0][0] is not None):
            fix = f"releases never move: point {ref} back at its first value (git reflog {ref})"
            yield _finding(name, "tags", f"{ref} has moved since it was created", fix, False), _nothing


def _drafts(
    store: Operations, repo: Repo, name: str, path: Path
) -> Iterator[tuple[Finding, Callable[[], None]]]:
    if locks.receiving(path):
        return  # a push is landing: its post-receive will record what it created
    served = history.versions_in_log(repo, "dev")
    for v, (_tip, released) in sorted(history.all_versions(repo).items()):
        if not released and v not in served:
            problem = f"{v} exists but dev never recorded its creation (a new-version was cut short)"
            yield (
                _finding(name, "drafts", problem, REPAIR),
                _mend(_follow, store, name, v),
            )


def _follow(store: Operations, name: str, v: names.Version) -> None:
    store.follow(name, v, actor=Actor("promptgit doctor", "doctor@promptgit", "admin"))
