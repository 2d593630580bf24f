"""Retention: a limit on DEV drafts, and gc of old ones; releases are never removed."""

from __future__ import annotations

import json
import os
import time

import pytest
from click.testing import CliRunner
from conftest import assert_unchanged, git, prompt_text

from promptgit import Actor, Store
from promptgit.cli import cli
from promptgit.errors import InvalidContent, RuleViolation


def configure(store: Store, text: str) -> None:
    (store.path / "promptgit.yaml").write_text("version: 1\n" + text)
    os.utime(store.path / "promptgit.yaml", (time.time() + 1, time.time() + 1))  # a new mtime: re-read


def test_a_draft_beyond_max_drafts_is_refused_and_the_error_lists_what_to_delete(
    greeting: Store, actor: Actor
) -> None:
    configure(greeting, "retention: {max_drafts: 2}\n")
    greeting.new_version("greeting", actor=actor)  # v1.1: two DEV drafts now
    with assert_unchanged(greeting), pytest.raises(RuleViolation) as refused:
        greeting.new_version("greeting", actor=actor)
    assert str(refused.value) == (
        "prompt 'greeting' has 2 DEV drafts, the most promptgit.yaml allows (retention.max_drafts: 2): "
        "delete one first ('promptgit delete greeting@vX.Y'; deletable: v1.0)"
    )
    greeting.promote("greeting", "v1.0", actor=actor)  # in TST: no longer a DEV draft
    assert greeting.new_version("greeting", actor=actor).version == "v1.2"


def test_a_push_of_a_draft_beyond_the_limit_is_refused(greeting: Store, actor: Actor, tmp_path) -> None:  # type: ignore[no-untyped-def]
    configure(greeting, "retention: {max_drafts: 1}\n")
    repo = greeting.path / "greeting.git"
    git(tmp_path, "clone", "-q", str(repo), "w")
    w = tmp_path / "w"
    git(w, "checkout", "-q", "-b", "v1.1", "origin/v1.0")
    git(w, "commit", "-q", "--allow-empty", "-m", "Create v1.1", "--trailer", "Promptgit-Created: v1.1",
        "--trailer", "Promptgit-From: v1.0")  # fmt: skip
    out = __import__("subprocess").run(
        ["git", "-C", str(w), "push", "origin", "v1.1"], capture_output=True, text=True
    )
    assert out.returncode != 0 and "retention.max_drafts: 1" in out.stderr


def test_gc_deletes_old_drafts_only_and_repacks(greeting: Store, actor: Actor) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.0", actor=actor)  # v1.0 released
    old = Actor("Old", "old@example.com")
    greeting.new_version("greeting", actor=old)  # v1.1: will be old
    greeting.new_version("greeting", actor=old)  # v1.2: in TST, kept
    greeting.promote("greeting", "v1.2", actor=old)
    greeting.new_version("greeting", actor=actor)  # v1.3: current dev, kept
    configure(greeting, "retention: {draft_max_age_days: 30}\n")
    runner = CliRunner()
    base = ["--store", str(greeting.path)]
    dry = json.loads(runner.invoke(cli, [*base, "gc", "--dry-run", "--json"]).output)
    assert [r["deleted"] for r in dry] == [[]]  # nothing is 30 days old yet
    month_ago = time.time() - 31 * 86400
    os.environ["GIT_AUTHOR_DATE"] = f"@{int(month_ago)} +0000"
    try:  # an old draft, made with git as a month ago
        repo = greeting.path / "greeting.git"
        tip = git(repo, "rev-parse", "v1.1").strip()
        tree = git(repo, "rev-parse", "v1.1^{tree}").strip()
        old_rev = git(repo, "commit-tree", tree, "-p", tip, "-m", "an old edit").strip()
    finally:
        del os.environ["GIT_AUTHOR_DATE"]
    git(repo, "update-ref", "refs/heads/v1.1", old_rev, tip)
    with assert_unchanged(greeting):
        out = runner.invoke(cli, [*base, "gc", "--dry-run"])
    assert out.output == "greeting: would delete v1.1\n"
    out = runner.invoke(cli, [*base, "gc"])
    assert out.exit_code == 0 and out.output.startswith("greeting: deleted v1.1; ")
    assert greeting.version_ids("greeting") == ["v1.0", "v1.2", "v1.3"]
    assert len(list((repo / "objects" / "pack").glob("*.pack"))) == 1
    assert greeting.new_version("greeting", actor=actor).version == "v1.4"  # v1.1 stays retired


def test_a_bad_retention_setting_is_named(store: Store) -> None:
    configure(store, "retention: {max_drafts: 0}\n")
    with pytest.raises(InvalidContent, match="retention.max_drafts must be a positive whole number, not 0"):
        _ = store.config


def test_releases_are_never_collected(greeting: Store, actor: Actor) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.0", actor=actor)
    configure(greeting, "retention: {draft_max_age_days: 1}\n")
    assert [r.deleted for r in greeting.gc(actor=actor)] == [()]
    assert greeting.version_ids("greeting") == ["v1.0"]
    assert prompt_text() in greeting.get("greeting", "prod").source
