"""The records promptgit's model asks of each write, written with raw pygit2 and
nothing else: no locks held, no rule checked, no crash recovery.

The write floor (`core.raw_commit`, `scale.floor_commit`) is what plain git needs
for one save: a blob, a tree, a commit and one compare-and-swap. A promptgit
write also records, by the model in DESIGN.md, the deployment on each stage it
moves (a commit on the stage branch) and who did it (an entry in the audit log,
`refs/promptgit/audit`), each ref moved by its own compare-and-swap. These
functions write just those objects and refs, in the order promptgit writes them
(audit entry first), so a bench can print how much of a write's ratio to the
floor is the model's and how much is promptgit's code on top.
"""

from __future__ import annotations

from collections.abc import Callable

import pygit2
from pygit2.enums import FileMode

AUDIT = "refs/promptgit/audit"
ZERO = "0" * 40


def _audit(
    repo: pygit2.Repository, sig: pygit2.Signature, summary: str, moves: list[tuple[str, str, str]]
) -> None:
    """Append an entry listing `moves` (ref, old, new) and move the audit ref, the
    same shape as promptgit's (names.audit_message)."""
    ref = repo.lookup_reference(AUDIT)
    lines = "".join(f"{name} {old} {new}\n" for name, old, new in moves)
    message = f"promptgit: {summary}\n\n{lines}\nPromptgit-Via: library\n"
    empty = repo.TreeBuilder().write()
    ref.set_target(repo.create_commit(None, sig, sig, message, empty, [ref.target]), summary)


def _deployment(
    repo: pygit2.Repository,
    sig: pygit2.Signature,
    stage: str,
    revision: pygit2.Oid,
    tree: pygit2.Oid,
    action: str,
) -> str:
    """A commit on `stage` whose second parent is the revision it now serves (its tree
    the revision's)."""
    tip = repo.lookup_reference(stage).target
    message = f"{action}\n\nPromptgit-Action: {action}\nPromptgit-Revision: {revision}\n"
    return str(repo.create_commit(None, sig, sig, message, tree, [tip, revision]))


def edit(repo: pygit2.Repository, sig: pygit2.Signature, branch: str, stage: str) -> Callable[[int], None]:
    """An edit of the draft on `branch` that `stage` serves: a revision, a deployment
    of it, an audit entry; three refs moved."""

    def write(i: int) -> None:
        blob = repo.create_blob(f"template: records {i}\n".encode())
        builder = repo.TreeBuilder()
        builder.insert("prompt.yaml", blob, FileMode.BLOB)
        draft, served = repo.lookup_reference(branch), repo.lookup_reference(stage)
        tree = builder.write()
        revision = repo.create_commit(None, sig, sig, f"records {i}\n", tree, [draft.target])
        deployment = _deployment(repo, sig, stage, revision, tree, "update")
        _audit(
            repo,
            sig,
            f"edit {i}",
            [(branch, str(draft.target), str(revision)), (stage, str(served.target), deployment)],
        )
        draft.set_target(revision, "edit")
        served.set_target(deployment, "edit")

    return write


def promote(repo: pygit2.Repository, sig: pygit2.Signature, branch: str, stage: str) -> Callable[[int], None]:
    """A promotion of the tip of `branch` to `stage`: a deployment, an audit entry;
    two refs moved."""

    def write(i: int) -> None:
        served = repo.lookup_reference(stage)
        tip = repo.lookup_reference(branch).peel(pygit2.Commit)  # as promote reads the draft's tip
        deployment = _deployment(repo, sig, stage, tip.id, tip.tree_id, "promote")
        _audit(repo, sig, f"promote {i}", [(stage, str(served.target), deployment)])
        served.set_target(deployment, "promote")

    return write


def new_version(
    repo: pygit2.Repository, sig: pygit2.Signature, base: str, stage: str
) -> Callable[[int], None]:
    """A new version from the tip of `base`, served by `stage`: its creation commit
    on a new branch, a deployment of it, an audit entry; three refs moved."""

    def write(i: int) -> None:
        tip = repo.lookup_reference(base).peel(pygit2.Commit)
        served = repo.lookup_reference(stage)
        first = repo.create_commit(None, sig, sig, f"records v{i}\n", tip.tree_id, [tip.id])
        deployment = _deployment(repo, sig, stage, first, tip.tree_id, "create")
        branch = f"refs/heads/records-{i}"
        _audit(
            repo,
            sig,
            f"new version {i}",
            [(branch, ZERO, str(first)), (stage, str(served.target), deployment)],
        )
        repo.references.create(branch, first)
        served.set_target(deployment, "new version")

    return write
