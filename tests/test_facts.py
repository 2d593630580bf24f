"""The derived-facts index (facts.py) is a cache: deleting, corrupting or racing it
never changes an answer, and reads stay exactly as fresh as git."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import PROMPT, git, prompt_text, settle

from promptgit import Actor, Store, facts

ADMIN = Actor("Owner", "owner@example.com", "admin")


def answers(store: Store) -> dict[str, Any]:
    """Every read the index serves, for every prompt."""
    out: dict[str, Any] = {}
    for name in store.names():
        out[name] = {
            "versions": store.versions(name),
            "each": [store.version(name, v) for v in store.version_ids(name)],
            "shown": [(s.info, s.prompt) for s in (store.show(name, v) for v in store.version_ids(name))],
            "actions": store.actions(name, "admin"),
        }
    return out


def walked(store: Store) -> dict[str, Any]:
    return answers(Store(store.path, index=False))


@pytest.fixture
def busy(store: Store) -> Store:
    """Two prompts with drafts, releases, a deprecation and a rollback."""
    for name in ("greeting", "team/welcome"):
        store.create(
            name, {"prompt.yaml": PROMPT}, "first", actor=ADMIN, version_name=f"{name.replace('/', ' ')} one"
        )
        for i in range(3):
            store.edit(name, "v1.0", {"prompt.yaml": prompt_text(f"Hi {i}")}, f"edit {i}", actor=ADMIN)
        store.promote(name, "v1.0", actor=ADMIN)
        store.promote(name, "v1.0", actor=ADMIN)
        store.new_version(name, "v1.0", actor=ADMIN, description="the next one")
        store.edit(name, "v1.1", {"prompt.yaml": prompt_text("Yo")}, "yo", actor=ADMIN)
        store.promote(name, "v1.1", actor=ADMIN)
        store.promote(name, "v1.1", actor=ADMIN)
        store.new_version(name, "v1.1", actor=ADMIN)
        store.promote(name, "v1.2", actor=ADMIN)
        store.promote(name, "v1.2", actor=ADMIN)
        store.deprecate(name, "v1.1", actor=ADMIN, reason="too casual")
        store.rollback(name, "v1.0", stage="prod", actor=ADMIN)
        store.new_version(name, "v1.0", actor=ADMIN)  # v1.3, a draft
    return store


def index_file(store: Store) -> Path:
    return store.path / facts.PATH


def test_indexed_answers_are_the_walked_answers(busy: Store) -> None:
    assert answers(busy) == walked(busy)
    assert index_file(busy).is_file()  # the reads built it
    assert answers(Store(busy.path)) == walked(busy)  # and a new Store reads it back


def test_a_write_after_the_index_was_built_shows_at_once(busy: Store) -> None:
    answers(busy)
    busy.edit("greeting", "v1.3", {"prompt.yaml": prompt_text("Fresh")}, "fresh", actor=ADMIN)
    busy.promote("greeting", "v1.3", actor=ADMIN)
    got = answers(busy)
    assert got == walked(busy)
    fresh = next(v for v in got["greeting"]["versions"] if v.version == "v1.3")
    assert (fresh.summary, fresh.stage) == ("fresh", "TST")


def test_a_deleted_index_is_rebuilt_with_the_same_answers(busy: Store) -> None:
    before = answers(busy)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index_file(busy)}{suffix}").unlink(missing_ok=True)
    assert answers(busy) == before  # the same Store, its connection gone from under it
    assert answers(Store(busy.path)) == before
    assert index_file(busy).is_file()


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"garbage, not a database at all" * 100,
        b"SQLite format 3\x00" + b"\xff" * 4000,
    ],
)
def test_a_corrupt_index_is_set_aside_and_rebuilt(busy: Store, damage: bytes) -> None:
    before = answers(busy)
    for suffix in ("", "-wal", "-shm"):  # a new file (this process has the old one open)
        Path(f"{index_file(busy)}{suffix}").unlink(missing_ok=True)
    index_file(busy).write_bytes(damage)
    assert answers(Store(busy.path)) == before
    with sqlite3.connect(index_file(busy)) as db:  # a valid index again
        assert db.execute("SELECT value FROM meta").fetchone() == (facts.FORMAT,)


def test_an_index_of_another_format_is_rebuilt_not_misread(busy: Store) -> None:
    before = answers(busy)
    with sqlite3.connect(index_file(busy)) as db:
        db.execute("UPDATE meta SET value = 'promptgit-facts-0'")
        db.execute('UPDATE versions SET fact = \'{"creation": "0000"}\'')  # what it meant then
    assert answers(Store(busy.path)) == before
    with sqlite3.connect(index_file(busy)) as db:
        assert db.execute("SELECT value FROM meta").fetchone() == (facts.FORMAT,)


def test_malformed_rows_are_walked_around(busy: Store) -> None:
    before = answers(busy)
    with sqlite3.connect(index_file(busy)) as db:
        db.execute("UPDATE versions SET fact = 'not json'")
        db.execute("UPDATE served SET versions = '[\"not a version\", 3]'")
        assert db.execute("SELECT count(*) FROM contents").fetchone()[0] > 1
        db.execute("UPDATE contents SET parsed = CASE WHEN rowid % 2 THEN 'not json' ELSE '[3]' END")
    # rows whose JSON is garbage are skipped; a served row is only trusted by its tip
    db2 = Store(busy.path)
    with sqlite3.connect(index_file(busy)) as db:
        db.execute("DELETE FROM served")
    assert answers(db2) == before


def test_content_json_cannot_hold_exactly_is_parsed_every_time(store: Store) -> None:
    """A YAML date or a number-keyed mapping would come back from JSON as something
    else: such a prompt.yaml is never remembered, and every read parses it."""
    odd = PROMPT + "parameters: {cutoff: 2024-01-01, 7: seven, ratio: .5}\n"
    store.create("odd", {"prompt.yaml": odd}, "first", actor=ADMIN)
    shown = store.show("odd", "v1.0").prompt.content["parameters"]
    assert Store(store.path).show("odd", "v1.0").prompt.content["parameters"] == shown
    assert Store(store.path, index=False).show("odd", "v1.0").prompt.content["parameters"] == shown
    assert shown[7] == "seven" and str(shown["cutoff"]) == "2024-01-01"
    with sqlite3.connect(index_file(store)) as db:
        assert db.execute("SELECT count(*) FROM contents").fetchone() == (0,)


def test_an_unwritable_index_only_costs_walks(busy: Store) -> None:
    before = walked(busy)
    index_file(busy).parent.mkdir(parents=True, exist_ok=True)
    index_file(busy).unlink(missing_ok=True)
    index_file(busy).mkdir()  # where the file should be, a folder: sqlite cannot open it
    try:
        assert answers(Store(busy.path)) == before
    finally:
        index_file(busy).rmdir()


def test_readers_racing_writers_and_a_deleter_agree_with_git(busy: Store) -> None:
    """Threads read through one Store and through new ones while another writes and a
    third keeps deleting the index: no read fails, and once the writes stop every
    answer is the walked one."""
    stop = threading.Event()
    failures: list[str] = []

    def read(new_stores: bool) -> None:
        store = busy
        while not stop.is_set():
            try:
                if new_stores:
                    store = Store(busy.path)
                answers(store)
            except Exception as e:  # any failure is the finding
                failures.append(repr(e))

    def delete() -> None:
        while not stop.is_set():
            for suffix in ("", "-wal", "-shm"):
                Path(f"{index_file(busy)}{suffix}").unlink(missing_ok=True)
            stop.wait(0.01)

    threads = [threading.Thread(target=read, args=(n,)) for n in (False, True, True)]
    threads.append(threading.Thread(target=delete))
    for t in threads:
        t.start()
    try:
        for i in range(15):
            busy.edit("greeting", "v1.3", {"prompt.yaml": prompt_text(f"Race {i}")}, f"race {i}", actor=ADMIN)
            if i % 5 == 0:
                busy.promote("greeting", "v1.3", to="tst", actor=ADMIN)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert answers(busy) == walked(busy)
    assert answers(Store(busy.path)) == walked(busy)


def test_a_locked_index_never_holds_up_a_write_or_a_read(busy: Store) -> None:
    before = answers(busy)
    with sqlite3.connect(index_file(busy), isolation_level=None) as db:
        db.execute("BEGIN EXCLUSIVE")  # another process holds the whole file
        busy.edit("greeting", "v1.3", {"prompt.yaml": prompt_text("Locked")}, "locked", actor=ADMIN)
        busy.promote("greeting", "v1.3", actor=ADMIN)
        during = answers(Store(busy.path))
        db.execute("ROLLBACK")
    assert during == answers(busy) == walked(busy) != before


def test_the_index_lives_outside_every_repository(busy: Store) -> None:
    answers(busy)
    assert index_file(busy).is_relative_to(busy.path / ".promptgit" / "cache")
    repositories = [p for p in busy.path.rglob("*.git") if (p / "HEAD").is_file()]
    assert len(repositories) == 2 and not any(index_file(busy).is_relative_to(r) for r in repositories)
    assert busy.names() == ["greeting", "team/welcome"]  # the cache folder is no prompt


# --- listings ----------------------------------------------------------------------


def test_a_listing_is_the_same_indexed_or_walked_and_pages_are_slices_of_it(busy: Store) -> None:
    for i in range(12):
        busy.create(f"p{i:02d}", {"prompt.yaml": PROMPT}, "first", actor=ADMIN)
    busy.promote("p03", "v1.0", actor=ADMIN)
    whole = busy.list()
    assert whole == Store(busy.path, index=False).list() == Store(busy.path).list()
    assert [p.name for p in whole] == sorted(p.name for p in whole)
    pages, after = [], None
    while True:
        page = busy.list(after=after, limit=5)
        if not page:
            break
        pages += page
        after = page[-1].name
    assert pages == whole
    assert busy.list(after="p03", limit=2) == [p for p in whole if p.name > "p03"][:2]
    assert busy.list(after="zzz") == []
    # a cursor stays good when the prompt it names goes away
    busy.archive("p03", actor=ADMIN)
    assert [p.name for p in busy.list(after="p03", limit=1)] == ["p04"]


def test_a_listing_reads_packed_refs_and_sees_every_write(busy: Store) -> None:
    repo = busy.path / "greeting.git"
    git(repo, "pack-refs", "--all")  # no loose stage refs now
    assert not (repo / "refs" / "heads" / "prod").exists()
    assert busy.list() == Store(busy.path, index=False).list()
    busy.promote("greeting", "v1.3", actor=ADMIN)  # a loose ref again, over the packed one
    listed = {p.name: p.current for p in busy.list()}
    assert listed["greeting"]["tst"] == "v1.3"
    assert busy.list() == Store(busy.path, index=False).list()


def remembered_tips(store: Store) -> dict[str, str]:
    with sqlite3.connect(index_file(store)) as db:
        return dict(db.execute("SELECT name, versions FROM stage_versions"))


def test_a_listing_remembers_tips_only_of_settled_files_and_never_misses_a_change(busy: Store) -> None:
    busy.list()
    assert remembered_tips(busy) == {}  # just written: a change in the same tick could hide
    settle(busy)
    before = busy.list()
    assert set(remembered_tips(busy)) == {"greeting", "team/welcome"}
    assert Store(busy.path).list() == before  # from the remembered tips
    busy.promote("greeting", "v1.3", actor=ADMIN)  # through the library
    assert {p.name: p.current for p in Store(busy.path).list()}["greeting"]["tst"] == "v1.3"
    settle(busy)
    Store(busy.path).list()
    repo = busy.path / "team" / "welcome.git"  # by hand, with git, then packed by git
    git(repo, "update-ref", "refs/heads/dev", git(repo, "rev-parse", "refs/heads/tst").strip())
    assert Store(busy.path).list() == Store(busy.path, index=False).list()
    settle(busy)
    Store(busy.path).list()
    git(repo, "pack-refs", "--all")
    assert Store(busy.path).list() == Store(busy.path, index=False).list()


def test_damaged_remembered_tips_are_read_around(busy: Store) -> None:
    settle(busy)
    before = busy.list()
    with sqlite3.connect(index_file(busy)) as db:
        db.execute("UPDATE stage_versions SET versions = 'not versions' WHERE name = 'greeting'")
        db.execute("UPDATE stage_versions SET versions = '- -' WHERE name = 'team/welcome'")  # too few
    assert Store(busy.path).list() == before
