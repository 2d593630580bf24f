"""Moving prompts while others write, and dying midway: a rename or an archive that
races real processes editing through a Store opened before and pushing with git
loses nothing and leaves no half state, and kill -9 at any step of archive,
restore, rename or delete-prompt leaves a store the next operation finishes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import PROMPT, git, prompt_text, refs
from crash_helpers import KILLER

from promptgit import Actor, Store

ADMIN = Actor("Mover", "mover@example.com")

EDITOR = textwrap.dedent(
    """
    import json, sys
    from promptgit import Actor, Store
    from promptgit.errors import ConcurrentUpdate, PromptArchived, PromptRenamed
    store_path, me, rounds = sys.argv[1:4]
    store = Store(store_path)
    store.versions("greeting")  # opened before the move
    actor = Actor(me, me + "@example.com", "editor")
    saved, errors = [], []
    for i in range(int(rounds)):
        text = "template: |\\n  {} round {} says {{{{ name }}}}\\n".format(me, i)
        try:
            saved.append(store.edit("greeting", "v1.0", {"prompt.yaml": text}, me, actor=actor).revision)
        except (PromptArchived, PromptRenamed) as e:
            errors.append([type(e).__name__, str(e)])
            break
        except ConcurrentUpdate as e:
            errors.append(["ConcurrentUpdate", str(e)])
    print(json.dumps({"saved": saved, "errors": errors}))
    """
)

PUSHER = textwrap.dedent(
    """
    import json, pathlib, subprocess, sys
    work, rounds, marks = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
    def git(*args):
        return subprocess.run(["git", "-C", work, *args], capture_output=True, text=True)
    pushed, errors = [], []
    for i in range(rounds):
        out = git("fetch", "-q", "origin")
        if out.returncode == 0:
            git("reset", "-q", "--hard", "origin/v1.1")
            pathlib.Path(work, "prompt.yaml").write_text("template: pushed {} {{{{ name }}}}\\n".format(i))
            git("commit", "-q", "-am", "pushed {}".format(i))
            out = git("push", "origin", "HEAD:v1.1")
        if out.returncode == 0:
            if "the push landed, but" in out.stderr:
                errors.append(out.stderr)
            pushed.append(git("rev-parse", "HEAD").stdout.strip())
            (marks / str(i)).write_text("")
            continue
        errors.append(out.stderr)
        if "does not appear to be a git repository" in out.stderr or "archived" in out.stderr:
            break
    print(json.dumps({"pushed": pushed, "errors": errors}))
    """
)

# What a loser may be told: each names what happened and what to do.
CLEAR = (
    "is under way, so nothing was changed",  # met the move's fence
    "was moved away from",  # its repository went while it ran
    "changed while this operation ran",  # a lost compare-and-swap with another writer
    "was changed by someone else",
    "has held the lock on",
    "changed while this push was being checked",  # a push that lost to an edit
    "[rejected]",  # git's own non-fast-forward refusal, before any hook
    "does not appear to be a git repository",  # a push to the old path, after the move
)


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def race(store: Store, tmp_path: Path, move: object) -> tuple[dict[str, list[str]], list[str]]:
    """Two editors (Stores opened before) editing v1.0 and one pusher pushing to v1.1,
    the current DEV draft (so its post-receive moves dev), then `move` once some of
    their writes landed; returns ({version: every revision they were told was saved
    or pushed}, every error they got)."""
    store.new_version("greeting", actor=ADMIN)
    work, marks = tmp_path / "work", tmp_path / "marks"
    marks.mkdir()
    git(tmp_path, "clone", "-q", "-b", "v1.1", str(store.path / "greeting.git"), str(work))
    # the pusher first: a push fails whenever any other ref moved while it was checked,
    # so one lands before the editors start; then they all run into the move
    procs = [spawn(PUSHER, str(work), "40", str(marks))]
    deadline = time.monotonic() + 60
    while not list(marks.iterdir()):
        assert time.monotonic() < deadline and procs[0].poll() is None, "no push landed"
        time.sleep(0.05)
    procs += [spawn(EDITOR, str(store.path), f"ed{i}", "3000") for i in range(2)]
    while len(store.log("greeting", "v1.0")) <= 10:
        assert time.monotonic() < deadline, "the editors never got going"
        assert all(p.poll() is None for p in procs[1:]), [p.communicate() for p in procs]
        time.sleep(0.05)
    move()  # type: ignore[operator]
    saved: dict[str, list[str]] = {"v1.0": [], "v1.1": []}
    errors: list[str] = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr
        out = json.loads(stdout)
        saved["v1.0"] += out.get("saved", [])
        saved["v1.1"] += out.get("pushed", [])
        errors += [e[1] if isinstance(e, list) else e for e in out["errors"]]
    assert saved["v1.0"] and saved["v1.1"] and errors  # both sides of the race happened
    return saved, errors


def assert_whole(store: Store, name: str, saved: dict[str, list[str]], errors: list[str], gone: str) -> None:
    """Nothing lost, no half state, and every loser told clearly."""
    repo = store.path / f"{name}.git"
    assert git(repo, "fsck", "--strict", "--no-dangling") == ""
    for version, shas in saved.items():
        for sha in shas:
            git(repo, "merge-base", "--is-ancestor", sha, f"refs/heads/{version}")
    tip = refs(repo)["refs/heads/v1.1"]
    assert store.get(name, "dev").revision == tip, errors  # dev followed every push that landed
    assert store.doctor(actor=ADMIN) == []
    for e in errors:
        assert any(c in e for c in (*CLEAR, gone)), e
        assert "Traceback" not in e and "internal error" not in e, e
    assert list((store.path / ".promptgit" / "pending").iterdir()) == []
    assert not (repo / "promptgit" / "moving").exists()


def test_a_rename_racing_edits_and_pushes_loses_nothing(greeting: Store, tmp_path: Path) -> None:
    saved, errors = race(
        greeting, tmp_path, lambda: greeting.rename("greeting", "team/greeting", actor=ADMIN)
    )
    assert not (greeting.path / "greeting.git").exists()  # no half repository at the old path
    assert_whole(greeting, "team/greeting", saved, errors, "renamed to 'team/greeting'")
    assert [e.event for e in greeting.events("team/greeting")] == ["rename"]


def test_an_archive_racing_edits_and_pushes_loses_nothing(greeting: Store, tmp_path: Path) -> None:
    saved, errors = race(greeting, tmp_path, lambda: greeting.archive("greeting", actor=ADMIN))
    assert not (greeting.path / "greeting.git").exists()
    greeting.restore("greeting", actor=ADMIN)
    assert_whole(greeting, "greeting", saved, errors, "prompt 'greeting' is archived")
    assert [e.event for e in greeting.events("greeting")] == ["restore", "archive"]


# --- kill -9 at every step --------------------------------------------------------------

CRASHER = KILLER + textwrap.dedent(
    """
    import json, os, shutil, signal, sys
    from pathlib import Path
    from pygit2.transaction import ReferenceTransaction
    from promptgit import Actor, Store, _git, errors

    base, work = Path(sys.argv[1]), Path(sys.argv[2])
    actor = Actor("Crash Test", "crash@example.com")
    # op: (call, where the repository is before, where after, its name after)
    OPS = {
        "archive": (lambda s: s.archive("greeting", actor=actor, reason="r"),
                    "greeting.git", "_archive/greeting.git", "greeting"),
        "restore": (lambda s: s.restore("old", actor=actor), "_archive/old.git", "old.git", "old"),
        "rename": (lambda s: s.rename("greeting", "team/hello", actor=actor),
                   "greeting.git", "team/hello.git", "team/hello"),
        "delete-prompt": (lambda s: s.delete_prompt("old", actor=actor), "_archive/old.git", None, "old"),
    }

    def refs(path):
        repo = _git.Repo(str(path))
        return {r: sha for r, sha in repo.refs().items() if r != "refs/promptgit/lifecycle"}

    def fork(op, k):
        global kill_at, events
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(base, work, symlinks=True)
        pid = os.fork()
        if pid == 0:
            kill_at, events = k, 0
            OPS[op][0](Store(work))
            os._exit(min(events, 250) if k is None else 4)
        _, status = os.waitpid(pid, 0)
        return status

    def check(op):
        problems = []
        _call, src, dest, name = OPS[op]
        before = refs(base / src)
        here = [p for p in (src, dest) if p and (work / p / "HEAD").is_file()]
        moved = here != [src]
        if here and here != [src] and here != [dest] or (not here and op != "delete-prompt"):
            return [f"the repository is at {here}"]
        if here and refs(work / here[0]) != before:
            problems.append("its refs changed")
        store = Store(work)
        try:
            store.list(), store.archived()
            # the next lifecycle operation finishes or forgets what was cut short
            store.archive("bystander", actor=actor)
            store.restore("bystander", actor=actor)
        except errors.PromptgitError as e:
            return problems + [f"the next operation failed: {e}"]
        kind = {"delete-prompt": "delete"}.get(op, op)
        events = [e.event for e in store.events(name if moved else ("old" if op in ("restore", "delete-prompt") else "greeting"))]
        if events.count(kind) != (1 if moved else 0):
            problems.append(f"moved={moved} but the log says {events}")
        live = {"archive": None if moved else "greeting", "rename": name if moved else "greeting",
                "restore": "old" if moved else None, "delete-prompt": None}[op]
        if live is not None:
            try:
                store.edit(live, "v1.0", {"prompt.yaml": "template: after {{ name }}\\n"}, "after", actor=actor)
            except errors.PromptgitError as e:
                problems.append(f"a write after it failed: {e}")
        if op == "rename":
            try:
                store.versions("greeting")
                if moved:
                    problems.append("the old name still answers")
            except errors.PromptRenamed:
                if not moved:
                    problems.append("a redirect without a rename")
        for f in store.doctor(actor=actor):
            problems.append(f"doctor: {f.prompt}: {f.check}: {f.problem}")
        state = work / ".promptgit"
        left = [str(p.relative_to(work)) for p in state.rglob("*") if p.is_file()]
        left += [str(p.relative_to(work)) for p in work.rglob("moving")]
        left = [p for p in left if not p.endswith(("renames.json", "deleted.jsonl", "changed")) and "/cache/" not in p]
        if left:
            problems.append(f"left behind: {left}")
        return problems

    results = {}
    for op in OPS:
        status = fork(op, None)
        total = os.waitstatus_to_exitcode(status)
        assert 0 < total < 250, (op, total)
        for k in range(1, total + 1):
            status = fork(op, k)
            if not os.WIFSIGNALED(status):
                results[f"{op} @{k}"] = [f"not killed: {status}"]
                continue
            problems = check(op)
            if problems:
                results[f"{op} @{k}"] = problems
        results.setdefault(op + " steps", total)
    print(json.dumps(results))
    """
)


def test_kill_9_at_every_step_of_a_move_leaves_a_store_the_next_operation_finishes(
    tmp_path: Path,
) -> None:
    base = Store.init(tmp_path / "base")
    for name in ("greeting", "old", "bystander"):
        base.create(name, {"prompt.yaml": PROMPT}, "first", actor=ADMIN)
    base.promote("greeting", "v1.0", actor=ADMIN)
    base.new_version("greeting", actor=ADMIN)
    base.edit("greeting", "v1.1", {"prompt.yaml": prompt_text("Hi")}, "warmer", actor=ADMIN)
    base.archive("old", actor=ADMIN)
    out = subprocess.run(
        [sys.executable, "-c", CRASHER, str(base.path), str(tmp_path / "work")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    problems = {k: v for k, v in results.items() if not k.endswith(" steps")}
    assert problems == {}
    steps = {k: v for k, v in results.items() if k.endswith(" steps")}
    assert all(n > 5 for n in steps.values()), steps  # each op was cut at many points


@pytest.mark.parametrize("first", ["archive", "rename"])
def test_a_second_move_waits_for_the_first(greeting: Store, first: str) -> None:
    """Two movers at once: the store lock lets one through at a time, and the second
    finds the prompt where the first left it."""
    script = (
        "import sys\nfrom promptgit import Actor, Store\n"
        "s = Store(sys.argv[1]); a = Actor('M', 'm@example.com')\n"
        "try:\n"
        "    s.archive('greeting', actor=a) if sys.argv[2] == 'archive' else s.rename('greeting', 'moved', actor=a)\n"
        "    print('ok')\n"
        "except Exception as e:\n"
        "    print(type(e).__name__ + ': ' + str(e))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(greeting.path), first], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outs.count("ok") == 1, outs
    for o in outs:
        assert o == "ok" or o.startswith(
            (
                "PromptArchived: prompt 'greeting' is archived",
                "PromptRenamed: prompt 'greeting' was renamed to 'moved'",
            )
        ), o
    assert len(greeting.events("moved" if first == "rename" else "greeting")) == 1
