"""Races between real processes: compare-and-swap loses nothing, and a loser is told."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import git

from promptgit import Actor, Store

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from promptgit import Actor, Store
    from promptgit.errors import ConcurrentUpdate
    store_path, mode, me, rounds, expect = sys.argv[1:6]
    store = Store(store_path)
    actor = Actor(me, me + "@example.com")
    results = []
    start = float(sys.argv[6])
    while time.time() < start:
        time.sleep(0.001)
    for i in range(int(rounds)):
        text = "template: |\\n  {} round {} says {{{{ name }}}}\\n".format(me, i)
        while True:
            try:
                if mode == "edit":
                    r = store.edit("greeting", "v1.0", {"prompt.yaml": text}, me + " " + str(i),
                                   expect=expect or None, actor=actor)
                    results.append(["ok", r.revision])
                else:
                    v = store.new_version("greeting", "v1.0", actor=actor)
                    results.append(["ok", v.version])
                break
            except ConcurrentUpdate as e:
                results.append(["conflict", str(e)])
                if expect:
                    break
    print(json.dumps(results))
    """
)


def race(store: Store, mode: str, workers: int, rounds: int, expect: str = "") -> list[list[list[str]]]:
    import time

    start = str(time.time() + 1.0)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(store.path), mode, f"w{i}", str(rounds), expect, start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(workers)
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr
        out.append(json.loads(stdout))
    return out


def test_racing_edits_from_one_base_exactly_one_wins(greeting: Store) -> None:
    base = greeting.resolve("greeting", "v1.0").revision
    results = race(greeting, "edit", workers=6, rounds=1, expect=base)
    outcomes = [r[0][0] for r in results]
    assert outcomes.count("ok") == 1, outcomes
    assert outcomes.count("conflict") == 5
    for r in results:
        if r[0][0] == "conflict":
            assert "was changed by someone else" in r[0][1] and "your text is saved in" in r[0][1]
    revisions = greeting.log("greeting", "v1.0")
    assert len(revisions) == 2  # the base and the one winner
    winner = next(r[0][1] for r in results if r[0][0] == "ok")
    assert revisions[0].revision == winner
    assert greeting.get("greeting", "dev").revision == winner


def test_racing_edits_with_retries_lose_nothing(greeting: Store) -> None:
    workers, rounds = 4, 5
    results = race(greeting, "edit", workers=workers, rounds=rounds)
    saved = [entry[1] for r in results for entry in r if entry[0] == "ok"]
    assert len(saved) == workers * rounds
    chain = [r.revision for r in greeting.log("greeting", "v1.0")]
    assert set(saved) <= set(chain)  # every successful save is in the history
    assert len(chain) == workers * rounds + 1
    # dev followed every edit, one update deployment each, in order
    updates = [d.revision for d in greeting.log("greeting", "dev") if d.action == "update"]
    assert updates == chain[:-1]
    repo = greeting.path / "greeting.git"
    assert git(repo, "fsck", "--strict").strip() == ""


def test_racing_new_versions_get_distinct_numbers(greeting: Store) -> None:
    results = race(greeting, "new", workers=4, rounds=3)
    made = [entry[1] for r in results for entry in r if entry[0] == "ok"]
    assert len(made) == 12 and len(set(made)) == 12
    assert sorted(made, key=lambda v: int(v.split(".")[1])) == [f"v1.{i}" for i in range(1, 13)]
    created = [d.version for d in greeting.log("greeting", "dev") if d.action == "create"]
    assert sorted(created) == sorted([*made, "v1.0"])


def test_leftover_lock_is_a_clear_conflict(greeting: Store, actor: Actor) -> None:
    lock = Path(greeting.path / "greeting.git" / "refs" / "heads" / "dev.lock")
    lock.write_text("")
    try:
        import pytest

        from promptgit.errors import ConcurrentUpdate

        with pytest.raises(ConcurrentUpdate, match="another operation has held the lock"):
            greeting.edit("greeting", "v1.0", {"prompt.yaml": "template: hi\n"}, "x", actor=actor)
    finally:
        lock.unlink()
    assert len(greeting.log("greeting", "v1.0")) == 1
