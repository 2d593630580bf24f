"""Packs stay tidy: repacks run off the write path, at most one at a time, and
writes and reads racing them lose nothing."""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import assert_unchanged, git, prompt_text

from promptgit import Actor, Store, _git


def packs(repo: Path) -> list[Path]:
    return sorted((repo / "objects" / "pack").glob("*.pack"))


def wait_for_repacks(repo: Path) -> None:
    """Wait until no background repack runs in the repository: each is started
    (before the write returns) as a process whose working directory it is."""
    deadline = time.monotonic() + 60
    while any(_cwd(pid) == repo.resolve() for pid in os.listdir("/proc") if pid.isdigit()):
        assert time.monotonic() < deadline, "a background repack never finished"
        time.sleep(0.02)


def _cwd(pid: str) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def test_writes_and_reads_racing_repacks_lose_nothing(
    greeting: Store, actor: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every write finds objects to pack, and may start a repack at once
    monkeypatch.setattr(_git, "LOOSE_OBJECTS_BEFORE_PACK", 1)
    monkeypatch.setattr(_git, "PACK_EVERY", 0.0)
    repo = greeting.path / "greeting.git"
    greeting.promote("greeting", "v1.0", actor=actor)
    wrong: list[str] = []
    done = threading.Event()

    def read() -> None:
        reader = Store(greeting.path)
        while not done.is_set():
            try:
                served = reader.get("greeting", "tst")
                assert served.source.startswith("description")
            except Exception as e:  # any failure is the finding
                wrong.append(repr(e))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for i in range(120):
            greeting.edit(
                "greeting", "v1.0", {"prompt.yaml": prompt_text(f"Hello {i}")}, f"edit {i}", actor=actor
            )
    finally:
        done.set()
        for t in readers:
            t.join()
    wait_for_repacks(repo)

    assert wrong == []
    assert greeting.get("greeting", "tst").source == prompt_text("Hello 119")
    assert len(greeting.log("greeting", "v1.0")) == 121  # every revision is there
    git(repo, "fsck", "--no-dangling")
    assert [f.code for f in greeting.doctor(["greeting"], actor=actor)] == []


def test_geometric_repacks_keep_the_number_of_packs_small(
    greeting: Store, actor: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_git, "PACK_EVERY", 0.0)
    repo = greeting.path / "greeting.git"
    for i in range(64):
        greeting.edit("greeting", "v1.0", {"prompt.yaml": prompt_text(f"Hi {i}")}, f"edit {i}", actor=actor)
        _git.pack_in_background(str(repo))  # a repack after every write: the worst case for the count
        wait_for_repacks(repo)
    # 64 repacks of a few objects each: geometric merging leaves log2-many packs, not 64
    assert 1 <= len(packs(repo)) <= 8


def test_a_repack_holding_the_lock_makes_others_skip_not_wait(
    greeting: Store, actor: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one repack holds the lock, a write neither waits nor starts a second."""
    monkeypatch.setattr(_git, "LOOSE_OBJECTS_BEFORE_PACK", 1)
    monkeypatch.setattr(_git, "PACK_EVERY", 0.0)
    repo = greeting.path / "greeting.git"
    wait_for_repacks(repo)
    before = packs(repo)
    lock = repo / "promptgit" / "repack.lock"
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        for i in range(5):
            greeting.edit("greeting", "v1.0", {"prompt.yaml": prompt_text(f"Yo {i}")}, "edit", actor=actor)
        assert packs(repo) == before  # every write returned; no repack ran meanwhile
    assert greeting.get("greeting", "dev").source == prompt_text("Yo 4")


def test_writes_survive_repacks_that_prune_the_folders_they_write_into(greeting: Store, actor: Actor) -> None:
    """git's repack -d and prune-packed remove the loose-object folders they empty; a
    write whose folder vanishes under it (libgit2 does not retry that) must still land."""
    repo = greeting.path / "greeting.git"
    stop = threading.Event()

    def repack() -> None:
        while not stop.is_set():
            subprocess.run(["git", "-C", str(repo), "repack", "-d", "-q", "--geometric=2"], check=False)
            subprocess.run(["git", "-C", str(repo), "prune-packed"], check=False)

    packers = [threading.Thread(target=repack) for _ in range(2)]
    for t in packers:
        t.start()
    try:
        for i in range(150):
            greeting.edit(
                "greeting", "v1.0", {"prompt.yaml": prompt_text(f"Packed {i}")}, f"edit {i}", actor=actor
            )
    finally:
        stop.set()
        for t in packers:
            t.join()
    assert greeting.get("greeting", "dev").source == prompt_text("Packed 149")
    git(repo, "fsck", "--no-dangling")


def test_refs_are_packed_as_versions_pile_up_and_every_later_write_still_lands(
    greeting: Store, actor: Actor
) -> None:
    """Past LOOSE_REFS_BEFORE_PACK new refs, a write packs them; releases and deletes
    (which rewrite packed-refs) still land whole, through the same Store, and every
    ref git lists is the one promptgit lists."""
    repo = greeting.path / "greeting.git"
    made = [
        greeting.new_version("greeting", actor=actor).version for _ in range(_git.LOOSE_REFS_BEFORE_PACK + 4)
    ]
    assert (repo / "packed-refs").is_file()
    loose = [p for p in (repo / "refs" / "heads").iterdir() if p.is_file()]
    assert len(loose) < _git.LOOSE_REFS_BEFORE_PACK  # most were packed, so a listing reads one file
    for v in made[:3]:  # a release deletes the packed version branch: packed-refs is rewritten
        greeting.promote("greeting", v, actor=actor)
        greeting.promote("greeting", v, actor=actor)
    greeting.delete("greeting", made[3], actor=actor)
    greeting.edit("greeting", made[4], {"prompt.yaml": prompt_text("after packing")}, "edit", actor=actor)
    listed = {
        line.split()[1]: line.split()[0]
        for line in git(repo, "for-each-ref", "--format=%(objectname) %(refname)").splitlines()
    }
    assert greeting.repository("greeting").refs() == listed
    assert all(f"refs/tags/{v}" in listed and f"refs/heads/{v}" not in listed for v in made[:3])
    assert f"refs/heads/{made[3]}" not in listed
    assert git(repo, "fsck", "--no-progress") == ""


def packed_draft(store: Store, actor: Actor) -> tuple[Path, str]:
    """greeting with enough versions that its refs were packed, and v1.1 in tst and
    edited since: its branch is packed at one revision and loose at a newer one."""
    repo = store.path / "greeting.git"
    made = [
        store.new_version("greeting", actor=actor).version for _ in range(_git.LOOSE_REFS_BEFORE_PACK + 4)
    ]
    v = made[0]
    assert f"refs/heads/{v}" in (repo / "packed-refs").read_text()
    store.promote("greeting", v, actor=actor)
    store.edit("greeting", v, {"prompt.yaml": prompt_text("edited after packing")}, "edit", actor=actor)
    assert (repo / "refs" / "heads" / v).is_file()
    return repo, v


def test_a_release_beside_a_git_process_holding_packed_refs_waits_then_changes_nothing(
    greeting: Store, actor: Actor
) -> None:
    """libgit2 deletes a packed branch by rewriting packed-refs: when git holds its lock
    (a push deleting refs), a release waits for it, then refuses having written nothing.
    It never removes the loose branch and leaves its older packed copy showing."""
    from promptgit.errors import ConcurrentUpdate

    repo, v = packed_draft(greeting, actor)
    tip = greeting.repository("greeting").ref(f"refs/heads/{v}")
    lock = repo / "packed-refs.lock"
    lock.write_text("")  # no promptgit process claims it: a git command's
    try:
        with assert_unchanged(greeting), pytest.raises(ConcurrentUpdate, match="packed-refs.lock"):
            greeting.promote("greeting", v, actor=actor)
    finally:
        lock.unlink()
    released = greeting.promote("greeting", v, actor=actor)  # the same Store: its view is right
    assert released.revision == tip
    refs = greeting.repository("greeting").refs()
    assert f"refs/heads/{v}" not in refs and f"refs/tags/{v}" in refs
    assert git(repo, "for-each-ref", f"refs/heads/{v}") == ""


def test_a_release_waits_out_a_short_hold_of_packed_refs(greeting: Store, actor: Actor) -> None:
    repo, v = packed_draft(greeting, actor)
    lock = repo / "packed-refs.lock"
    lock.write_text("")
    threading.Timer(0.2, lock.unlink).start()  # well inside locks.TIMEOUT
    greeting.promote("greeting", v, actor=actor)
    assert git(repo, "for-each-ref", f"refs/heads/{v}") == ""
    assert git(repo, "fsck", "--no-progress") == ""


def test_a_branch_a_cut_short_deletion_left_behind_its_release_is_finished(
    greeting: Store, actor: Actor
) -> None:
    """A release whose branch deletion was cut short after the loose file went leaves the
    branch at its older packed revision: the next write removes it like any leftover."""
    repo, v = packed_draft(greeting, actor)
    older = next(
        line.split()[0] for line in (repo / "packed-refs").read_text().splitlines() if line.endswith(f"/{v}")
    )
    greeting.promote("greeting", v, actor=actor)
    git(repo, "update-ref", f"refs/heads/{v}", older)  # what the cut-short deletion shows
    assert greeting.finish_releases("greeting", actor=actor) == [v]
    assert git(repo, "for-each-ref", f"refs/heads/{v}") == ""
