"""The answers `show` and `versions` print, kept in the index by the state they were
read from (answers.py): printed again only while every ref of the prompt, the
store's promptgit.yaml and promptgit's code read the same."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROMPT, git, prompt_text, settle

from promptgit import Actor, Store, answers, facts

ADMIN = Actor("Owner", "owner@example.com", "admin")
PLANTED = "planted in the index\n"


def cli(store: Store, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "promptgit", "--store", str(store.path), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def plant(store: Store, digest: str = hashlib.sha256(PLANTED.encode()).hexdigest()) -> int:
    """Put PLANTED in place of every kept answer (with its digest, unless told another):
    what a read prints from the index."""
    with sqlite3.connect(store.path / facts.PATH) as db:
        return db.execute("UPDATE answers SET answer = ?, digest = ?", [PLANTED, digest]).rowcount


@pytest.fixture
def released(store: Store) -> Store:
    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=ADMIN)
    store.promote("greeting", "v1.0", actor=ADMIN)
    store.promote("greeting", "v1.0", actor=ADMIN)
    store.new_version("greeting", "v1.0", actor=ADMIN)
    return store


COMMANDS = [["show", "greeting", "--json"], ["show", "greeting@dev"], ["versions", "greeting"]]


def unkept(store: Store, *command: str) -> str:
    """What the command prints when the index keeps no answer: read from git."""
    with sqlite3.connect(store.path / facts.PATH) as db:
        db.execute("DELETE FROM answers")
    return cli(store, *command).stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_an_answer_is_printed_from_the_index_only_while_nothing_it_reads_changed(
    released: Store, command: list[str]
) -> None:
    first = cli(released, *command)
    assert first.returncode == 0, first.stderr
    assert cli(released, *command).stdout == first.stdout
    assert plant(released) == 1
    assert cli(released, *command).stdout == PLANTED  # the same state: the kept answer

    config = released.path / "promptgit.yaml"
    config.write_text(config.read_text() + "# a comment changes the state\n")
    assert cli(released, *command).stdout == first.stdout

    repo = released.path / "greeting.git"
    changes = [
        lambda: released.edit(
            "greeting", "v1.1", {"prompt.yaml": prompt_text("Fresh")}, "fresh", actor=ADMIN
        ),
        lambda: released.promote("greeting", "v1.1", actor=ADMIN),
        # any ref, even one promptgit never reads, written by git itself
        lambda: git(
            repo, "update-ref", "refs/notes/elsewhere", git(repo, "rev-parse", "refs/heads/dev").strip()
        ),
    ]
    for change in changes:
        plant(released)
        change()
        printed = cli(released, *command).stdout
        assert printed != PLANTED
        assert printed == unkept(released, *command)


def test_what_is_printed_is_what_a_read_without_the_index_prints(released: Store) -> None:
    for command in COMMANDS:
        cold = cli(released, *command).stdout
        for suffix in ("", "-wal", "-shm"):
            Path(f"{released.path / facts.PATH}{suffix}").unlink(missing_ok=True)
        assert cli(released, *command).stdout == cold  # read again, from git
        (released.path / facts.PATH).write_bytes(b"garbage, not a database" * 100)
        damaged = cli(released, *command)
        assert (damaged.returncode, damaged.stdout, damaged.stderr) == (0, cold, "")


def test_an_answer_read_while_the_refs_moved_is_not_kept(released: Store) -> None:
    store = str(released.path)
    before = answers.prompt_state("greeting")(store)
    assert before is not None

    def produce() -> str:
        released.edit("greeting", "v1.1", {"prompt.yaml": prompt_text("Meanwhile")}, "meanwhile", actor=ADMIN)
        return "read across a write\n"

    assert (
        answers.answered(store, "query", answers.prompt_state("greeting"), produce) == "read across a write\n"
    )
    index = facts.Facts(store)
    assert index.answer("query", before) is None
    now = answers.prompt_state("greeting")(store)
    assert now is not None and now != before
    assert (
        answers.answered(store, "query", answers.prompt_state("greeting"), lambda: "steady\n") == "steady\n"
    )
    assert index.answer("query", now) == "steady\n"
    assert (
        answers.answered(store, "query", answers.prompt_state("greeting"), lambda: "never asked\n")
        == "steady\n"
    )


def test_kept_answers_are_bounded_in_number_and_size(
    released: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = str(released.path)
    monkeypatch.setattr(facts, "ANSWERS", 3)
    for i in range(6):
        answers.answered(store, f"query {i}", answers.prompt_state("greeting"), lambda i=i: f"answer {i}\n")
    big = "x" * (answers.MAX_ANSWER + 1)
    assert answers.answered(store, "big", answers.prompt_state("greeting"), lambda: big) == big
    with sqlite3.connect(released.path / facts.PATH) as db:
        kept = [q for (q,) in db.execute("SELECT query FROM answers ORDER BY rowid")]
    assert kept == ["query 3", "query 4", "query 5"]
    monkeypatch.setattr(facts, "ANSWER_BYTES", 25)  # "answer N\n" is 9: the newest two fit
    answers.answered(store, "query 6", answers.prompt_state("greeting"), lambda: "answer 6\n")
    with sqlite3.connect(released.path / facts.PATH) as db:
        kept = [q for (q,) in db.execute("SELECT query FROM answers ORDER BY rowid")]
    assert kept == ["query 5", "query 6"]


@pytest.mark.parametrize("name", ["../outside", "/etc/passwd", "greeting/../../x", "missing"])
def test_a_bad_or_unknown_name_is_refused_as_before_and_nothing_is_kept(released: Store, name: str) -> None:
    for command in (["show", name], ["versions", name]):
        result = cli(released, *command)
        assert result.returncode == 1
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    index = released.path / facts.PATH
    if index.exists():
        with sqlite3.connect(index) as db:
            assert db.execute("SELECT count(*) FROM answers").fetchone() == (0,)


def test_a_renamed_prompt_is_explained_not_answered_from_the_index(released: Store) -> None:
    shown = cli(released, "show", "greeting")
    assert shown.returncode == 0
    released.rename("greeting", "hello", actor=ADMIN)
    moved = cli(released, "show", "greeting")
    assert moved.returncode == 1 and "renamed" in moved.stderr
    assert cli(released, "show", "hello").stdout.replace("hello@", "greeting@") == shown.stdout


def test_a_read_by_revision_sha_is_never_kept(released: Store) -> None:
    """A revision no ref reaches can be pruned without any ref changing."""
    sha = git(released.path / "greeting.git", "rev-parse", "refs/heads/dev").strip()
    for _ in range(2):
        assert cli(released, "show", f"greeting@{sha[:10]}").returncode == 0
    assert plant(released) == 0


@pytest.mark.parametrize("command", [["list", "--json"], ["list"]])
def test_a_listing_is_printed_from_the_index_only_while_every_stamp_holds(
    released: Store, command: list[str]
) -> None:
    released.create("team/faq", {"prompt.yaml": PROMPT}, "first", actor=ADMIN)
    settle(released, seconds=60)
    first = cli(released, *command)
    assert first.returncode == 0 and "team/faq" in first.stdout
    assert plant(released) == 0  # files changed within the last second: nothing kept
    settle(released)
    assert cli(released, *command).stdout == first.stdout
    assert plant(released) == 1
    assert cli(released, *command).stdout == PLANTED

    changes = [
        lambda: released.promote("greeting", "v1.1", actor=ADMIN),
        lambda: released.create("team/new", {"prompt.yaml": PROMPT}, "first", actor=ADMIN),
        lambda: released.archive("team/new", actor=ADMIN, reason="done"),
    ]
    for change in changes:
        settle(released)
        cli(released, *command)
        assert plant(released) == 1
        change()
        printed = cli(released, *command).stdout
        assert printed != PLANTED
        assert printed == unkept(released, *command)


def test_a_kept_answer_that_is_not_the_text_written_is_read_again(released: Store) -> None:
    """The index is written without syncs: a crash of the machine may garble a page."""
    first = cli(released, "show", "greeting")
    assert plant(released, digest="0" * 64) == 1
    assert cli(released, "show", "greeting").stdout == first.stdout


def test_reads_racing_writes_leave_no_answer_older_than_the_refs(released: Store) -> None:
    """Commands print while another process edits and promotes; once it stops, what
    they print is what a read without kept answers prints."""
    import threading

    stop = threading.Event()

    def write() -> None:
        writer = Store(released.path)
        i = 0
        while not stop.is_set():
            writer.edit("greeting", "v1.1", {"prompt.yaml": prompt_text(f"Hi {i}")}, f"edit {i}", actor=ADMIN)
            if i % 3 == 0:
                writer.promote("greeting", "v1.1", to="tst", actor=ADMIN)
            i += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        for _ in range(8):
            for command in COMMANDS:
                assert cli(released, *command).returncode == 0
    finally:
        stop.set()
        thread.join()
    for command in COMMANDS:
        assert cli(released, *command).stdout == unkept(released, *command)


def test_promptgit_run_from_a_zip_reads_and_keeps_nothing(released: Store, tmp_path: Path) -> None:
    """No module files to fingerprint (a zipped install): an upgrade could not be told
    from the code that kept an answer, so every command reads, and none fails."""
    import os
    import zipfile

    package = Path(answers.__file__).parent
    with zipfile.ZipFile(tmp_path / "promptgit.zip", "w") as z:
        for file in package.rglob("*"):
            if file.is_file() and "__pycache__" not in file.parts:
                z.write(file, str(file.relative_to(package.parent)))
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "promptgit.zip")}
    for *args, printed in (
        ["show", "greeting", "greeting@"],
        ["versions", "greeting", "v1.0"],
        ["list", "greeting"],
    ):
        for _ in range(2):
            run = subprocess.run(
                [sys.executable, "-m", "promptgit", "--store", str(released.path), *args],
                capture_output=True, text=True, check=False, env=env, cwd=tmp_path,
            )  # fmt: skip
            assert run.returncode == 0 and printed in run.stdout, (args, run.stderr)
    with sqlite3.connect(released.path / facts.PATH) as db:
        assert list(db.execute("SELECT query FROM answers")) == []


def test_an_index_that_cannot_be_used_reads_no_state(released: Store) -> None:
    """Nothing can be looked up or kept (here, a file where the cache folder goes):
    the command reads, without digesting the prompt's state for nothing."""
    import shutil

    cache = (released.path / facts.PATH).parent
    shutil.rmtree(cache, ignore_errors=True)
    cache.write_text("not a folder")
    asked: list[str] = []

    def state(store: str) -> str | None:
        asked.append(store)
        return "a state"

    assert answers.answered(str(released.path), "query", state, lambda: "read\n") == "read\n"
    assert asked == []
    assert cli(released, "show", "greeting").returncode == 0
