"""Deprecated releases: rollback skips them, in the library, the CLI, the API, a push
and the page's answers; only releasers deprecate; the events log is promptgit's own."""

from __future__ import annotations

import subprocess

import pytest
from click.testing import CliRunner
from conftest import assert_unchanged, git, prompt_text

from promptgit import Actor, Store
from promptgit.cli import cli
from promptgit.errors import Forbidden, InvalidInput, RuleViolation


@pytest.fixture
def two_releases(greeting: Store, actor: Actor) -> Store:
    """v1.0 and v1.1 released; prod serves v1.1."""
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.new_version("greeting", actor=actor)
    greeting.edit("greeting", "v1.1", {"prompt.yaml": prompt_text("Hi")}, "hi", actor=actor)
    greeting.promote("greeting", "v1.1", actor=actor)
    greeting.promote("greeting", "v1.1", actor=actor)
    return greeting


def test_rollback_skips_a_deprecated_release(two_releases: Store, actor: Actor) -> None:
    store = two_releases
    info = store.deprecate("greeting", "v1.0", "leaks the customer's name", actor=actor)
    assert (info.deprecated, info.to_json()["deprecated"]) == ("leaks the customer's name", True)
    with assert_unchanged(store), pytest.raises(RuleViolation) as refused:
        store.rollback("greeting", "v1.0", actor=actor)
    assert "v1.0 is deprecated (leaks the customer's name)" in str(refused.value)
    answer = store.actions("greeting", "releaser").rollback["prod"]["v1.0"]
    assert (answer.allowed, answer.why) == (False, "v1.0 is deprecated (leaks the customer's name)")
    store.undeprecate("greeting", "v1.0", actor=actor)
    assert store.rollback("greeting", "v1.0", actor=actor) is not None
    assert store.get("greeting", "prod").version == "v1.0"


def test_what_cannot_be_deprecated(two_releases: Store, actor: Actor) -> None:
    store = two_releases
    store.new_version("greeting", actor=actor)  # v1.2, a draft
    with assert_unchanged(store):
        with pytest.raises(RuleViolation, match="prod serves v1.1 now: roll prod forward"):
            store.deprecate("greeting", "v1.1", "old", actor=actor)
        with pytest.raises(RuleViolation, match="v1.2 is a draft: only releases are deprecated"):
            store.deprecate("greeting", "v1.2", "old", actor=actor)
        with pytest.raises(InvalidInput, match="say why it is deprecated"):
            store.deprecate("greeting", "v1.0", " ", actor=actor)
        with pytest.raises(
            Forbidden, match="deprecating a release needs role 'releaser' \\(you have 'editor'\\)"
        ):
            store.deprecate("greeting", "v1.0", "old", actor=Actor("Ed", "ed@example.com", "editor"))
        with pytest.raises(RuleViolation, match="v1.0 is not deprecated"):
            store.undeprecate("greeting", "v1.0", actor=actor)


def test_the_cli_marks_and_refuses(two_releases: Store, actor: Actor) -> None:
    run = CliRunner()
    base = ["--store", str(two_releases.path)]
    out = run.invoke(cli, [*base, "deprecate", "greeting@v1.0", "-m", "too curt"])
    assert (out.exit_code, out.output) == (0, "deprecated greeting@v1.0: too curt\n")
    table = run.invoke(cli, [*base, "versions", "greeting"]).output
    assert "PROD (deprecated)" in table
    out = run.invoke(cli, [*base, "rollback", "greeting", "--to", "v1.0"])
    assert out.exit_code == 1 and "error: v1.0 is deprecated (too curt)" in out.output


def test_the_events_log_is_git_and_cannot_be_pushed(two_releases: Store, actor: Actor, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = two_releases
    store.deprecate("greeting", "v1.0", "too curt", actor=actor)
    repo = store.path / "greeting.git"
    assert git(repo, "log", "--format=%an|%s", "refs/promptgit/events").splitlines() == [
        "Ada Lovelace|Deprecate v1.0"
    ]
    subprocess.run(["git", "clone", "-q", str(repo), str(tmp_path / "w")], check=True)
    w = tmp_path / "w"
    git(w, "fetch", "-q", "origin", "refs/promptgit/events:refs/events")
    tree = git(w, "hash-object", "-t", "tree", "-w", "/dev/null").strip()
    forged = git(w, "commit-tree", tree, "-p", "refs/events", "-m",
                 "Undeprecate v1.0\n\nPromptgit-Event: undeprecate\nPromptgit-Version: v1.0").strip()  # fmt: skip
    out = subprocess.run(["git", "-C", str(w), "push", "origin", f"{forged}:refs/promptgit/events"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode != 0 and "promptgit alone writes its records" in out.stderr
    assert store.versions("greeting")[0].deprecated == "too curt"
