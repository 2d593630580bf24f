"""kill -9 at every step of every multi-ref write: the store stays usable with no
hand repair, no ref ever names something missing, and after the next write
`doctor` finds nothing to repair.

A helper process builds a store, then for each operation forks a child that
counts its file and ref events (ref locks, transaction commits, lock files
linked and unlinked, objects written) and SIGKILLs itself at event k, for every
k the operation has. The parent then checks the copy the child left behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import PROMPT, git, prompt_text, refs
from crash_helpers import KILLER

from promptgit import Actor, Store

CRASHER = KILLER + textwrap.dedent(
    """
    import json, os, shutil, signal, sys
    from pathlib import Path
    from pygit2.transaction import ReferenceTransaction
    from promptgit import Actor, Store, _git, errors, names
    from promptgit.operations import Operations

    base, work = Path(sys.argv[1]), Path(sys.argv[2])
    actor = Actor("Crash Test", "crash@example.com")
    text = sys.argv[3]
    OPS = {
        "edit a draft tst serves": lambda s: s.edit("greeting", "v1.1", {"prompt.yaml": text}, "e", actor=actor),
        "new-version": lambda s: s.new_version("greeting", actor=actor),
        "promote to tst": lambda s: s.promote("greeting", "v1.2", to="tst", actor=actor),
        "release to prod": lambda s: s.promote("greeting", "v1.1", to="prod", actor=actor),
        "rollback dev": lambda s: s.rollback("greeting", "v1.1", stage="dev", actor=actor),
        "delete a draft": lambda s: s.delete("greeting", "v1.3", actor=actor),
        "record a test run": lambda s: s.test("greeting", "v1.1", actor=actor),
        "create a prompt": lambda s: s.create("other", {"prompt.yaml": text}, "new", actor=actor),
    }

    def run(op, k):
        global kill_at, events
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(base, work, symlinks=True)
        pid = os.fork()
        if pid == 0:
            kill_at, events = k, 0
            try:
                OPS[op](Store(work))
            except errors.PromptgitError as e:
                print(f"refused: {e}", file=sys.stderr)
                os._exit(3)
            os._exit(0 if k is None else 4)  # 4: finished before event k
        _, status = os.waitpid(pid, 0)
        return status

    def check(op):
        store = Store(work)
        problems = []
        # reads work, and every stage names a version that exists
        versions = {v.version for v in store.versions("greeting")}
        for stage in names.STAGES:
            served = store.serving("greeting", stage)
            if served is not None and served.version not in versions:
                problems.append(f"{stage} serves {served.version}, which does not exist")
        repo = store._open("greeting")
        for ref, sha in repo.refs().items():
            if not repo.exists(sha):
                problems.append(f"{ref} names missing {sha}")
        # the next write works with no hand repair ...
        try:
            store.new_version("greeting", actor=actor)
            if op == "create a prompt":
                store.create("third", {"prompt.yaml": text}, "new", actor=actor)
        except errors.PromptgitError as e:
            problems.append(f"the next write failed: {e}")
        # ... and leaves nothing to repair
        for f in store.doctor(actor=actor):
            problems.append(f"doctor: {f.prompt}: {f.check}: {f.problem}")
        return problems

    results = {}
    for op in OPS:
        status = run(op, None)
        assert status == 0, (op, status)
        total = events_in_child = None
        # count the events of a full run in a child, through its exit status
        pid = os.fork()
        if pid == 0:
            shutil.rmtree(work)
            shutil.copytree(base, work, symlinks=True)
            events = 0
            OPS[op](Store(work))
            os._exit(min(events, 250))
        _, status = os.waitpid(pid, 0)
        total = os.waitstatus_to_exitcode(status)
        kills = []
        for k in range(1, total + 1):
            status = run(op, k)
            killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            kills.append([k, killed, check(op)])
        results[op] = {"events": total, "kills": kills}
    print(json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def crashes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    """v1.0 released; v1.1 in tst (with tests.yaml); v1.2 current in dev; v1.3 a draft."""
    root = tmp_path_factory.mktemp("crash")
    store = Store.init(root / "base")
    a = Actor("Owner", "owner@example.com")
    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=a)
    store.promote("greeting", "v1.0", actor=a)
    store.promote("greeting", "v1.0", actor=a)
    tests = "cases:\n  - name: hi\n    vars: {name: Ada}\n    contains: Ada\n"
    store.new_version("greeting", actor=a)
    store.edit("greeting", "v1.1", {"prompt.yaml": prompt_text("Hi"), "tests.yaml": tests}, "hi", actor=a)
    store.promote("greeting", "v1.1", to="tst", actor=a)
    store.new_version("greeting", actor=a)  # v1.2
    store.new_version("greeting", actor=a)  # v1.3
    store.rollback("greeting", "v1.2", stage="dev", actor=a)
    out = subprocess.run(
        [sys.executable, "-c", CRASHER, str(root / "base"), str(root / "work"), prompt_text("Crashed")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)  # type: ignore[no-any-return]


OPERATIONS = [
    "edit a draft tst serves",
    "new-version",
    "promote to tst",
    "release to prod",
    "rollback dev",
    "delete a draft",
    "record a test run",
    "create a prompt",
]


@pytest.mark.parametrize("op", OPERATIONS)
def test_a_kill_at_any_step_leaves_a_usable_store(crashes: dict[str, dict[str, object]], op: str) -> None:
    result = crashes[op]
    kills = result["kills"]
    assert isinstance(kills, list)
    assert result["events"] == len(kills) >= 5, result["events"]  # the operation has many steps
    assert all(killed for _k, killed, _problems in kills)  # each child really died at its step
    found = {k: problems for k, _killed, problems in kills if problems}
    assert found == {}


def test_a_stale_lock_left_by_hand_is_reported_not_broken(greeting: Store, actor: Actor) -> None:
    """A ref lock no promptgit writer claims (a git command run by hand, say) is not
    ours to break: the write fails with the way out, and doctor names the file."""
    from promptgit.errors import ConcurrentUpdate

    lock = greeting.path / "greeting.git" / "refs" / "heads" / "dev.lock"
    lock.write_text("")
    with pytest.raises(
        ConcurrentUpdate, match="run 'promptgit doctor --repair' if no promptgit or git process"
    ):
        greeting.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hi")}, "x", actor=actor)
    [finding] = greeting.doctor(actor=actor)
    assert (finding.check, finding.repairable) == ("locks", False)
    assert str(lock) in finding.fix
    lock.unlink()
    assert greeting.doctor(actor=actor) == []


def test_a_lock_of_another_host_is_never_broken(greeting: Store, actor: Actor) -> None:
    from promptgit.errors import ConcurrentUpdate

    lock = greeting.path / "greeting.git" / "promptgit" / "write.lock"
    lock.parent.mkdir(exist_ok=True)
    lock.write_text("1 1 some-other-host\n")  # pid 1 here is not that host's pid 1
    with pytest.raises(ConcurrentUpdate, match="held by pid 1 on some-other-host"):
        greeting.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hi")}, "x", actor=actor)


def test_a_lock_of_a_dead_process_is_broken(greeting: Store, actor: Actor, tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    import socket

    lock = greeting.path / "greeting.git" / "promptgit" / "write.lock"
    lock.parent.mkdir(exist_ok=True)
    lock.write_text(f"{dead.stdout.strip()} 12345 {socket.gethostname()}\n")
    assert [f.check for f in greeting.doctor(actor=actor)] == ["locks"]
    greeting.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hi")}, "x", actor=actor)
    assert not lock.exists()


def test_a_push_breaks_the_ref_locks_a_killed_writer_left(
    greeting: Store, actor: Actor, tmp_path: Path
) -> None:
    """A writer killed while it held packed-refs.lock (packing refs, or deleting one) and
    a ref's lock: the next push needs no library write, nor a hand, to get through."""
    import socket

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    repo = greeting.path / "greeting.git"
    greeting.new_version("greeting", actor=actor)  # v1.1, a draft dev does not serve after the next
    greeting.new_version("greeting", actor=actor)
    (repo / "promptgit" / "owners").mkdir(parents=True, exist_ok=True)
    owner = f"{dead.stdout.strip()} 12345 {socket.gethostname()}"
    (repo / "promptgit" / "owners" / dead.stdout.strip()).write_text(f"{owner}\nrefs/heads/v1.1\n")
    (repo / "packed-refs.lock").write_text("")
    (repo / "refs" / "heads" / "v1.1.lock").write_text("")
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(repo), str(work))
    out = subprocess.run(
        ["git", "-C", str(work), "push", "origin", ":refs/heads/v1.1"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "refs/heads/v1.1" not in refs(repo)
    assert not (repo / "packed-refs.lock").exists() and not (repo / "refs" / "heads" / "v1.1.lock").exists()
