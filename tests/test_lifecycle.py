"""A prompt's own life through the library, the CLI and plain git: archive, restore,
rename (and move between collections), delete for good. Each keeps every ref and
object, each refusal leaves the store byte for byte as it was, and a Store opened
before a move notices it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PROMPT, assert_unchanged, git, prompt_text, refs

from promptgit import Actor, Store
from promptgit.errors import (
    Conflict,
    Forbidden,
    InvalidContent,
    InvalidInput,
    InvalidName,
    NotFound,
    PromptArchived,
    PromptExists,
    PromptNotFound,
    PromptRenamed,
    RuleViolation,
)
from promptgit.prompt_events import PromptEvent

LOG = "refs/promptgit/lifecycle"
RELEASER = Actor("Rita", "rita@example.com", "releaser")
EDITOR = Actor("Ed", "ed@example.com", "editor")


@pytest.fixture
def history(greeting: Store, actor: Actor) -> Store:
    """greeting with a release, a TST draft, a DEV draft and a recorded test run."""
    tests = "cases:\n  - name: greets\n    vars: {name: Ada}\n    contains: Ada\n"
    greeting.edit("greeting", "v1.0", {"tests.yaml": tests}, "tests", actor=actor)
    greeting.test("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.new_version("greeting", actor=actor)
    greeting.edit("greeting", "v1.1", {"prompt.yaml": prompt_text("Hi")}, "warmer", actor=actor)
    greeting.promote("greeting", "v1.1", actor=actor)
    greeting.new_version("greeting", actor=actor)
    return greeting


def content_refs(path: Path) -> dict[str, str]:
    """Every ref but the lifecycle log, which the moves themselves append to."""
    return {r: sha for r, sha in refs(path).items() if r != LOG}


def entries(path: Path) -> list[str]:
    """The lifecycle log's entries as git shows them, newest first."""
    return git(path, "log", "--format=%an|%s|%(trailers:only,unfold,separator=;)", LOG).splitlines()


# --- archive and restore ----------------------------------------------------------


def test_archive_keeps_the_repository_whole_and_out_of_listings_and_reads(history: Store) -> None:
    store = history
    before = content_refs(store.path / "greeting.git")
    opened_before = Store(store.path)
    assert opened_before.get("greeting", "prod").version == "v1.0"

    event = store.archive("greeting", actor=RELEASER, reason="replaced by support/greeting")

    assert event == PromptEvent("archive", "greeting", None, event.stamp, "replaced by support/greeting")
    assert event.stamp.by == "Rita <rita@example.com>"
    assert store.names() == [] and store.list() == []
    assert [(a.name, a.archived) for a in store.archived()] == [("greeting", event)]
    kept = store.path / "_archive" / "greeting.git"
    assert not (store.path / "greeting.git").exists()
    assert content_refs(kept) == before  # every ref, so every object they reach
    assert git(kept, "fsck", "--strict", "--no-dangling") == ""
    assert entries(kept) == [
        "Rita|Archive greeting|Promptgit-Event: archive;Promptgit-Name: greeting;"
        f"Promptgit-Operation: {git(kept, 'log', '-1', '--format=%(trailers:key=Promptgit-Operation,valueonly)', LOG).strip()}"
    ]
    why = (
        f"prompt 'greeting' is archived (by Rita <rita@example.com> at {event.stamp.at}: replaced by "
        "support/greeting): restore it with 'promptgit restore greeting' (role releaser), or see "
        "'promptgit list --archived'"
    )
    for s in (store, opened_before):  # a Store opened before the move notices it too
        for read, args in (
            (s.get, ("greeting", "prod")),
            (s.versions, ("greeting",)),
            (s.show, ("greeting", "v1.1")),
            (s.log, ("greeting", "dev")),
            (s.render, ("greeting", "prod", {"name": "Ada"})),
        ):
            with pytest.raises(PromptArchived) as e:
                read(*args)  # type: ignore[operator]
            assert str(e.value) == why
        with pytest.raises(PromptArchived), assert_unchanged(s):
            s.edit("greeting", "v1.1", {"prompt.yaml": prompt_text("Yo")}, "late", actor=RELEASER)
    assert not (store.path / "greeting.git").exists()  # nobody wrote a half repository back


def test_restore_brings_back_exactly_what_was_archived(history: Store, actor: Actor) -> None:
    store = history
    before = content_refs(store.path / "greeting.git")
    opened_before = Store(store.path)
    opened_before.versions("greeting")
    store.archive("greeting", actor=RELEASER)
    restored = store.restore("greeting", actor=RELEASER)

    assert restored.event == "restore" and restored.name == "greeting"
    assert store.archived() == []
    assert content_refs(store.path / "greeting.git") == before
    assert [e.event for e in store.events("greeting")] == ["restore", "archive"]
    # the Store opened before the archive reads and writes again
    assert opened_before.get("greeting", "prod").version == "v1.0"
    opened_before.edit("greeting", "v1.2", {"prompt.yaml": prompt_text("Hey")}, "back", actor=actor)
    assert store.get("greeting", "dev").source == prompt_text("Hey")


def test_an_archived_name_cannot_be_taken_until_deleted(greeting: Store, actor: Actor) -> None:
    greeting.archive("greeting", actor=RELEASER)
    with assert_unchanged(greeting), pytest.raises(Conflict) as e:
        greeting.create("greeting", {"prompt.yaml": PROMPT}, "again", actor=actor)
    assert str(e.value) == (
        "prompt 'greeting' is archived: restore it ('promptgit restore greeting'), or delete it for "
        "good ('promptgit delete-prompt greeting --yes') before creating another"
    )
    greeting.delete_prompt("greeting", actor=actor)
    greeting.create("greeting", {"prompt.yaml": PROMPT}, "again", actor=actor)
    assert greeting.versions("greeting")[0].summary == "again"
    assert [e.event for e in greeting.events("greeting")] == []  # a new prompt, a new log


# --- rename and move ---------------------------------------------------------------


def test_rename_moves_the_whole_history_and_the_old_name_points_to_the_new(
    history: Store, actor: Actor
) -> None:
    store = history
    before = content_refs(store.path / "greeting.git")
    opened_before = Store(store.path)
    opened_before.get("greeting", "prod")

    event = store.rename("greeting", "support/welcome", actor=actor)

    assert (event.event, event.previous, event.name) == ("rename", "greeting", "support/welcome")
    moved = store.path / "support" / "welcome.git"
    assert content_refs(moved) == before
    assert git(moved, "fsck", "--strict", "--no-dangling") == ""
    assert store.names() == ["support/welcome"]
    assert store.get("support/welcome", "prod").version == "v1.0"
    assert [v.version for v in store.versions("support/welcome")] == ["v1.0", "v1.1", "v1.2"]
    assert store.log("support/welcome", "v1.0")[0].tests  # the recorded test run moved with it
    for s in (store, opened_before):
        with pytest.raises(PromptRenamed) as e:
            s.get("greeting", "prod")
        assert e.value.new == "support/welcome"
        assert str(e.value).startswith(
            "prompt 'greeting' was renamed to 'support/welcome': use the new name "
            "(e.g. 'promptgit show support/welcome'); the old name points to it until "
        )
    assert opened_before.get("support/welcome", "dev").version == "v1.2"
    store.edit("support/welcome", "v1.2", {"prompt.yaml": prompt_text("Hey")}, "after the move", actor=actor)
    assert entries(moved)[0].startswith(
        "Ada Lovelace|Rename greeting to support/welcome|Promptgit-Event: rename;"
        "Promptgit-Name: greeting -> support/welcome;"
    )


def test_renames_chain_and_a_name_in_use_again_is_no_redirect(greeting: Store, actor: Actor) -> None:
    greeting.rename("greeting", "b", actor=actor)
    greeting.rename("b", "team/c", actor=actor)
    for old in ("greeting", "b"):
        with pytest.raises(PromptRenamed) as e:
            greeting.versions(old)
        assert e.value.new == "team/c"  # straight to where it is now
    greeting.create("b", {"prompt.yaml": PROMPT}, "a new b", actor=actor)
    assert greeting.versions("b")[0].summary == "a new b"
    greeting.rename("team/c", "greeting", actor=actor)  # back to its first name
    assert greeting.names() == ["b", "greeting"]
    assert [(e.previous, e.name) for e in greeting.events("greeting")] == [
        ("team/c", "greeting"),
        ("b", "team/c"),
        ("greeting", "b"),
    ]


@pytest.mark.parametrize(("days", "redirected"), [(0, False), (1, True)])
def test_rename_redirect_days_comes_from_promptgit_yaml(
    greeting: Store, actor: Actor, days: int, redirected: bool
) -> None:
    (greeting.path / "promptgit.yaml").write_text(f"version: 1\nrename_redirect_days: {days}\n")
    greeting.rename("greeting", "hello", actor=actor)
    with pytest.raises(PromptRenamed if redirected else PromptNotFound):
        greeting.get("greeting", "dev")


@pytest.mark.parametrize("value", ["-1", "soon", "true", "1.5"])
def test_rename_redirect_days_must_be_whole_days(greeting: Store, value: str) -> None:
    (greeting.path / "promptgit.yaml").write_text(f"version: 1\nrename_redirect_days: {value}\n")
    with pytest.raises(InvalidContent) as e:
        _ = greeting.config
    assert "promptgit.yaml:2: rename_redirect_days: must be a whole number of days (0 or more)" in str(
        e.value
    )


# --- delete for good -----------------------------------------------------------------


def test_delete_prompt_removes_an_archived_prompt_and_keeps_its_story(greeting: Store, actor: Actor) -> None:
    greeting.rename("greeting", "old/greeting", actor=actor)
    greeting.archive("old/greeting", actor=RELEASER, reason="retired")
    deleted = greeting.delete_prompt("old/greeting", actor=actor)
    assert deleted.event == "delete"
    assert not (greeting.path / "_archive" / "old" / "greeting.git").exists()
    assert greeting.archived() == [] and greeting.names() == []
    assert list((greeting.path / ".promptgit" / "trash").iterdir()) == []
    assert [(e.event, e.reason) for e in greeting.events("old/greeting")] == [
        ("delete", ""),
        ("archive", "retired"),
        ("rename", ""),
    ]
    with pytest.raises(PromptNotFound):  # its old name points nowhere now
        greeting.versions("greeting")


# --- every refusal changes nothing ---------------------------------------------------


def refusals(store: Store, actor: Actor) -> list[tuple[object, type[Exception], str]]:
    """(the call, the error, its message) for each refusal, on greeting, other, and
    archived prompt 'gone'."""
    return [
        (lambda: store.archive("greeting", actor=EDITOR), Forbidden,
         "Ed: archiving a prompt needs role 'releaser' (you have 'editor')"),
        (lambda: store.restore("gone", actor=EDITOR), Forbidden,
         "Ed: restoring a prompt needs role 'releaser' (you have 'editor')"),
        (lambda: store.rename("greeting", "x", actor=RELEASER), Forbidden,
         "Rita: renaming a prompt needs role 'admin' (you have 'releaser')"),
        (lambda: store.delete_prompt("gone", actor=RELEASER), Forbidden,
         "Rita: deleting a prompt needs role 'admin' (you have 'releaser')"),
        (lambda: store.rename("greeting", "other", actor=actor), PromptExists,
         "prompt 'other' already exists: pick another name, or edit it with 'promptgit edit other@dev'"),
        (lambda: store.rename("greeting", "gone", actor=actor), Conflict,
         "'gone' is the name of an archived prompt: pick another name, or delete that one for good "
         "first ('promptgit delete-prompt gone --yes')"),
        (lambda: store.rename("greeting", "team/versions", actor=actor), InvalidName,
         "invalid prompt name 'team/versions': use lower-case segments"),
        (lambda: store.rename("greeting", "_archive/x", actor=actor), InvalidName,
         "invalid prompt name '_archive/x'"),
        (lambda: store.rename("greeting", "greeting", actor=actor), InvalidInput,
         "'greeting' is already the prompt's name: give another one"),
        (lambda: store.rename("nope", "x", actor=actor), PromptNotFound, "no prompt named 'nope'"),
        (lambda: store.archive("gone", actor=actor), PromptArchived, "prompt 'gone' is archived"),
        (lambda: store.restore("greeting", actor=actor), NotFound,
         "no archived prompt named 'greeting' (archived: gone): see 'promptgit list --archived'"),
        (lambda: store.delete_prompt("greeting", actor=actor), RuleViolation,
         "prompt 'greeting' is not archived, and only an archived prompt can be deleted: archive it "
         "first ('promptgit archive greeting')"),
        (lambda: store.delete_prompt("nope", actor=actor), NotFound, "no archived prompt named 'nope'"),
        (lambda: store.archive("greeting", actor=actor, reason="x" * 501), InvalidInput,
         "the reason is 501 characters long: keep it under 500"),
    ]  # fmt: skip


def test_each_refusal_leaves_the_store_byte_for_byte_unchanged(greeting: Store, actor: Actor) -> None:
    greeting.create("other", {"prompt.yaml": PROMPT}, "other", actor=actor)
    greeting.create("gone", {"prompt.yaml": PROMPT}, "gone", actor=actor)
    greeting.archive("gone", actor=actor)
    for call, error, message in refusals(greeting, actor):
        with assert_unchanged(greeting), pytest.raises(error) as e:  # type: ignore[arg-type]
            call()  # type: ignore[operator]
        assert str(e.value).startswith(message), str(e.value)


# --- plain git, over a file path -----------------------------------------------------


def test_git_clones_a_moved_prompt_with_its_events_and_refuses_archived_pushes(
    greeting: Store, actor: Actor, tmp_path: Path
) -> None:
    greeting.rename("greeting", "team/greeting", actor=actor)
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", "-b", "v1.0", str(greeting.path / "team" / "greeting.git"), str(work))
    git(work, "fetch", "-q", "origin", f"{LOG}:{LOG}")
    assert git(work, "log", "--format=%s", LOG).splitlines() == ["Rename greeting to team/greeting"]

    # a push to the moved repository runs its hooks under the new name: dev follows
    (work / "prompt.yaml").write_text(prompt_text("Pushed"))
    git(work, "commit", "-q", "-am", "pushed after the move")
    git(work, "push", "-q", "origin", "v1.0")
    assert greeting.get("team/greeting", "dev").source == prompt_text("Pushed")

    # the old path is no repository at all (nothing was left behind there)
    old = subprocess.run(["git", "-C", str(work), "push", str(greeting.path / "greeting.git"), "v1.0"],
                         capture_output=True, text=True)  # fmt: skip
    assert old.returncode != 0 and "does not appear to be a git repository" in old.stderr

    # an archived repository refuses every push, by its path in the archive too
    greeting.archive("team/greeting", actor=actor)
    before = refs(greeting.path / "_archive" / "team" / "greeting.git")
    (work / "prompt.yaml").write_text(prompt_text("Too late"))
    git(work, "commit", "-q", "-am", "after the archive")
    archived = str(greeting.path / "_archive" / "team" / "greeting.git")
    out = subprocess.run(["git", "-C", str(work), "push", archived, "v1.0"], capture_output=True, text=True)
    assert out.returncode != 0
    assert (
        "remote: promptgit: prompt 'team/greeting' is archived: restore it with 'promptgit restore team/greeting' first"
        in out.stderr
    )
    assert refs(archived) == before


def test_a_push_to_the_lifecycle_log_is_refused(greeting: Store, actor: Actor, tmp_path: Path) -> None:
    greeting.archive("greeting", actor=actor)
    greeting.restore("greeting", actor=actor)
    repo = greeting.path / "greeting.git"
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(repo), str(work))
    git(work, "fetch", "-q", "origin", f"{LOG}:{LOG}")
    forged = git(work, "commit-tree", "-p", LOG, "-m", "Restore greeting", f"{LOG}^{{tree}}").strip()
    out = subprocess.run(
        ["git", "-C", str(work), "push", "origin", f"{forged}:{LOG}"], capture_output=True, text=True
    )
    assert out.returncode != 0 and "promptgit alone writes its records" in out.stderr
    assert [e.event for e in greeting.events("greeting")] == ["restore", "archive"]


# --- the CLI -----------------------------------------------------------------------------


def run(store: Store, *args: str) -> tuple[int, str, str]:
    from promptgit.cli import cli

    result = CliRunner().invoke(cli, ["--store", str(store.path), *args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_archive_list_restore(greeting: Store) -> None:
    assert run(greeting, "list", "--archived") == (0, "no archived prompts\n", "")
    assert run(greeting, "archive", "greeting", "-m", "not used") == (
        0, "archived greeting: restore it with 'promptgit restore greeting'\n", "")  # fmt: skip
    code, out, err = run(greeting, "list", "--archived")
    at = greeting.archived()[0].archived.stamp.at  # type: ignore[union-attr]
    assert (code, err) == (0, "")
    assert out.splitlines()[1].split("  ")[0] == "greeting"
    assert out.splitlines()[1].endswith(f"{at[:19]}  Test Author <author@example.com>  not used")
    assert run(greeting, "list") == (0, "no prompts yet: promptgit create NAME -f prompt.yaml\n", "")
    code, out, err = run(greeting, "show", "greeting")
    assert (code, out) == (1, "")
    assert err == (
        f"error: prompt 'greeting' is archived (by Test Author <author@example.com> at {at}: not used): "
        "restore it with 'promptgit restore greeting' (role releaser), or see 'promptgit list --archived'\n"
    )
    assert run(greeting, "restore", "greeting") == (0, "restored greeting\n", "")
    code, out, err = run(greeting, "list", "--archived", "--json")
    assert (code, out) == (0, "[]\n")
    code, out, _ = run(greeting, "log", "greeting", "--events")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].endswith("  restore  greeting  Test Author <author@example.com>")
    assert lines[1].endswith("  archive  greeting  Test Author <author@example.com>  (not used)")


def test_cli_rename_and_delete_prompt(greeting: Store) -> None:
    assert run(greeting, "rename", "greeting", "team/hello") == (
        0, "renamed greeting to team/hello, with all of its history; 'greeting' points to it for 30 days\n", "")  # fmt: skip
    code, out, err = run(greeting, "versions", "greeting")
    assert code == 1 and err.startswith(
        "error: prompt 'greeting' was renamed to 'team/hello': use the new name (e.g. 'promptgit show team/hello')"
    )
    code, out, err = run(greeting, "log", "team/hello", "--events", "--json")
    assert (
        code == 0
        and '"event": "rename"' in out.replace('":"', '": "')
        and '"from": "greeting"' in out.replace('":"', '": "')
    )
    code, out, err = run(greeting, "log", "team/hello@dev", "--events")
    assert code == 2 and "--events shows the whole prompt's events: give team/hello, without @dev" in err
    code, out, err = run(greeting, "delete-prompt", "team/hello", "--yes")
    assert (code, out) == (1, "")
    assert err == (
        "error: prompt 'team/hello' is not archived, and only an archived prompt can be deleted: "
        "archive it first ('promptgit archive team/hello')\n"
    )
    run(greeting, "archive", "team/hello")
    with assert_unchanged(greeting):
        code, out, err = run(greeting, "delete-prompt", "team/hello")
    assert (
        code == 2 and "this deletes team/hello and all of its history for good: add --yes to confirm" in err
    )
    assert run(greeting, "delete-prompt", "team/hello", "--yes") == (
        0, "deleted team/hello and all of its history\n", "")  # fmt: skip
    code, out, _ = run(greeting, "log", "team/hello", "--events")
    assert [line.split()[1] for line in out.splitlines()] == ["delete", "archive", "rename"]


def test_cli_says_when_there_are_no_events(greeting: Store) -> None:
    assert run(greeting, "log", "greeting", "--events") == (
        0, "no events: greeting was never archived, restored or renamed\n", "")  # fmt: skip


def test_a_store_opened_before_reads_the_prompt_a_name_holds_now(greeting: Store, actor: Actor) -> None:
    """Deleted and created again under the same name: a Store that had the old one
    open answers from the new one, never from what it remembered."""
    opened_before = Store(greeting.path)
    assert [v.summary for v in opened_before.versions("greeting")] == ["first draft"]
    greeting.archive("greeting", actor=actor)
    greeting.delete_prompt("greeting", actor=actor)
    greeting.create("greeting", {"prompt.yaml": prompt_text("Hi")}, "second life", actor=actor)
    assert [v.summary for v in opened_before.versions("greeting")] == ["second life"]
    assert opened_before.get("greeting", "dev").source == prompt_text("Hi")
    opened_before.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hey")}, "edited", actor=actor)
    assert greeting.versions("greeting")[0].summary == "edited"
