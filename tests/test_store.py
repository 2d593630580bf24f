"""The library's operations and their rules, against real bare repositories.

Every refused operation is checked to leave the store byte for byte unchanged.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from conftest import PROMPT, assert_unchanged, git, prompt_text, refs

from promptgit import Actor, Store
from promptgit.errors import (
    ConcurrentUpdate,
    Forbidden,
    InvalidContent,
    InvalidName,
    PromptExists,
    PromptNotFound,
    RefNotFound,
    RenderError,
    RuleViolation,
    StoreNotFound,
    VersionExists,
)
from promptgit.names import store_names


def files(greeting: str = "Hello") -> dict[str, str]:
    return {"prompt.yaml": prompt_text(greeting)}


def served(store: Store, stage: str) -> str:
    return store.get("greeting", stage).version


# --- create -------------------------------------------------------------------


def test_create_makes_v1_0_a_dev_draft_served_by_dev(greeting: Store) -> None:
    [info] = greeting.versions("greeting")
    assert (info.version, info.stage, info.current_in, info.summary) == (
        "v1.0",
        "DEV",
        ("dev",),
        "first draft",
    )
    repo = greeting.path / "greeting.git"
    assert set(refs(repo)) == {"refs/heads/dev", "refs/heads/v1.0", "refs/promptgit/audit"}
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/dev"
    assert git(repo, "show", "dev:prompt.yaml") == PROMPT
    assert git(repo, "config", "core.logAllRefUpdates").strip() == "always"
    assert git(repo, "config", "receive.denyNonFastForwards").strip() == "false"  # the policy refuses
    trailers = git(repo, "log", "-1", "--format=%(trailers:only)", "dev")
    assert "Promptgit-Action: create" in trailers and "Promptgit-Version: v1.0" in trailers


def test_create_in_a_collection(store: Store, actor: Actor) -> None:
    store.create("support/greeting", files(), "x", actor=actor)
    assert (store.path / "support" / "greeting.git").is_dir()
    assert [p.to_json() for p in store.list()] == [
        {"name": "support/greeting", "dev": "v1.0", "tst": None, "prod": None}
    ]


def test_create_twice_is_a_conflict_and_changes_nothing(greeting: Store, actor: Actor) -> None:
    with assert_unchanged(greeting), pytest.raises(PromptExists, match="'greeting' already exists"):
        greeting.create("greeting", files("Hi"), "again", actor=actor)


@pytest.mark.parametrize("name", ["../escape", "/abs", "Greeting", "a/../../b", "x.git", "git", "a//b", ""])
def test_bad_names_are_refused_before_any_file_is_touched(store: Store, actor: Actor, name: str) -> None:
    with assert_unchanged(store), pytest.raises(InvalidName):
        store.create(name, files(), "x", actor=actor)
    assert not (store.path.parent / "escape.git").exists()


def test_invalid_content_names_file_and_line_and_writes_nothing(store: Store, actor: Actor) -> None:
    bad = "template: |\n  Hello {{ name }\nvariables: [name]\n"
    with assert_unchanged(store), pytest.raises(InvalidContent) as e:
        store.create("greeting", {"prompt.yaml": bad}, "x", actor=actor)
    assert e.value.file == "prompt.yaml" and e.value.line == 2
    assert "template syntax error" in str(e.value)


def test_unknown_store_is_a_clear_error(tmp_path, actor: Actor) -> None:
    with pytest.raises(StoreNotFound, match="promptgit init"):
        Store(tmp_path / "nowhere").create("greeting", files(), "x", actor=actor)
    assert not (tmp_path / "nowhere").exists()


# --- edit -------------------------------------------------------------------


def test_edit_adds_a_revision_and_dev_follows(greeting: Store, actor: Actor) -> None:
    result = greeting.edit("greeting", "v1.0", files("Hi"), "tighten tone", actor=actor)
    assert result.changed and result.deployed_to == ("dev",)
    assert greeting.get("greeting", "dev").render(name="Ada") == "Hi Ada, how can I help?\n"
    revisions = greeting.log("greeting", "v1.0")
    assert [r.summary for r in revisions] == ["tighten tone", "first draft"]
    assert revisions[0].stamp.by == "Ada Lovelace <ada@example.com>"
    # the stage's log records the update, with the new revision
    [update, create] = greeting.log("greeting", "dev")
    assert (update.action, update.revision) == ("update", result.revision)
    assert create.action == "create"


def test_edit_with_same_content_changes_nothing(greeting: Store, actor: Actor) -> None:
    with assert_unchanged(greeting):
        result = greeting.edit("greeting", "v1.0", {"prompt.yaml": PROMPT}, "same", actor=actor)
    assert not result.changed


def test_edit_keeps_tests_yaml_when_only_prompt_given(greeting: Store, actor: Actor) -> None:
    tests = "cases:\n  - name: hello\n    vars: {name: Ada}\n"
    greeting.edit("greeting", "v1.0", {"prompt.yaml": PROMPT, "tests.yaml": tests}, "tests", actor=actor)
    greeting.edit("greeting", "v1.0", files("Hi"), "hi", actor=actor)
    assert greeting.prompt("greeting", "v1.0").tests == tests


def test_edit_with_stale_expect_is_a_conflict_that_keeps_the_text(greeting: Store, actor: Actor) -> None:
    base = greeting.resolve("greeting", "v1.0").revision
    winner = greeting.edit("greeting", "v1.0", files("Hi"), "first writer", actor=actor).revision
    with assert_unchanged(greeting), pytest.raises(ConcurrentUpdate) as e:
        greeting.edit("greeting", "v1.0", files("Hey"), "second writer", expect=base[:8], actor=actor)
    assert winner[:10] in str(e.value) and e.value.current == winner
    assert e.value.saved is not None
    with open(e.value.saved, encoding="utf-8") as f:
        assert f.read() == prompt_text("Hey")


def test_edit_of_a_release_is_refused(greeting: Store, actor: Actor) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.0", actor=actor)
    with assert_unchanged(greeting), pytest.raises(RuleViolation, match="released and immutable"):
        greeting.edit("greeting", "v1.0", files("Hi"), "sneaky", actor=actor)


def test_edit_of_unknown_version_lists_the_versions(greeting: Store, actor: Actor) -> None:
    with pytest.raises(RefNotFound, match=r"has no version v2.9 \(versions: v1.0\)"):
        greeting.edit("greeting", "v2.9", files("Hi"), "x", actor=actor)


def test_edit_with_invalid_content_writes_nothing(greeting: Store, actor: Actor) -> None:
    with assert_unchanged(greeting), pytest.raises(InvalidContent, match="unknown key 'temperature'"):
        greeting.edit("greeting", "v1.0", {"prompt.yaml": PROMPT + "temperature: 2\n"}, "x", actor=actor)


def test_edit_of_unknown_prompt(greeting: Store, actor: Actor) -> None:
    with pytest.raises(PromptNotFound, match=r"no prompt named 'farewell' \(prompts: greeting\)"):
        greeting.edit("farewell", "v1.0", files(), "x", actor=actor)


# --- promote -----------------------------------------------------------------


def test_promote_dev_to_tst_to_prod(greeting: Store, actor: Actor) -> None:
    d = greeting.promote("greeting", "v1.0", actor=actor)
    assert (d.stage, d.action, d.version) == ("tst", "promote", "v1.0")
    [info] = greeting.versions("greeting")
    assert (info.stage, info.current_in) == ("TST", ("dev", "tst"))
    d = greeting.promote("greeting", "v1.0", actor=actor)
    assert d.stage == "prod"
    repo = greeting.path / "greeting.git"
    assert "refs/heads/v1.0" not in refs(repo)
    assert git(repo, "cat-file", "-t", "v1.0").strip() == "tag"
    assert git(repo, "rev-parse", "v1.0^{commit}") == git(
        repo, "rev-parse", "prod^1"
    )  # first deployment: one parent
    assert greeting.versions("greeting")[0].stage == "PROD"


def test_promote_to_prod_needs_tst_to_have_served_the_tip(greeting: Store, actor: Actor) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.edit("greeting", "v1.0", files("Hi"), "after tst", actor=actor)  # tst follows
    greeting.new_version("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.1", actor=actor)  # tst now serves v1.1
    greeting.edit("greeting", "v1.0", files("Hey"), "not in tst", actor=actor)
    with assert_unchanged(greeting), pytest.raises(RuleViolation) as e:
        greeting.promote("greeting", "v1.0", to="prod", actor=actor)
    assert "TST never served revision" in str(e.value)
    assert "promptgit promote greeting@v1.0 --to tst" in str(e.value)


def test_promote_skipping_tst_is_refused(greeting: Store, actor: Actor) -> None:
    with assert_unchanged(greeting), pytest.raises(RuleViolation, match="promote it to TST first"):
        greeting.promote("greeting", "v1.0", to="prod", actor=actor)


def test_promote_to_tst_again_redeploys(greeting: Store, actor: Actor) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.0", to="tst", actor=actor)
    assert [d.action for d in greeting.log("greeting", "tst")] == ["promote", "promote"]


def test_promote_without_version_takes_the_stage_before(greeting: Store, actor: Actor) -> None:
    assert greeting.promote("greeting", actor=actor).stage == "tst"
    assert greeting.promote("greeting", to="prod", actor=actor).version == "v1.0"


def test_a_release_is_never_promoted_again(greeting: Store, actor: Actor) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.0", actor=actor)
    with assert_unchanged(greeting), pytest.raises(RuleViolation, match="never promoted into tst"):
        greeting.promote("greeting", "v1.0", to="tst", actor=actor)
    with assert_unchanged(greeting), pytest.raises(RuleViolation, match="already released"):
        greeting.promote("greeting", "v1.0", to="prod", actor=actor)


def test_promote_to_dev_is_a_usage_error(greeting: Store, actor: Actor) -> None:
    with pytest.raises(Exception, match="promote goes to tst or prod"):
        greeting.promote("greeting", "v1.0", to="dev", actor=actor)


# --- new version -----------------------------------------------------------


def test_new_version_numbers(greeting: Store, actor: Actor) -> None:
    assert greeting.new_version("greeting", "v1.0", actor=actor).version == "v1.1"
    assert greeting.new_version("greeting", "v1.0", actor=actor).version == "v1.2"
    assert greeting.new_version("greeting", "v1.0", major=True, actor=actor).version == "v2.0"
    assert greeting.new_version("greeting", "v2.0", actor=actor).version == "v2.1"
    assert greeting.new_version("greeting", "v1.0", as_version="3.7", actor=actor).version == "v3.7"
    assert greeting.new_version("greeting", "v3.7", actor=actor).version == "v3.8"
    assert served(greeting, "dev") == "v3.8"
    with assert_unchanged(greeting), pytest.raises(VersionExists, match="v1.1 is taken"):
        greeting.new_version("greeting", "v1.0", as_version="v1.1", actor=actor)


def test_new_version_copies_content_and_records_its_source(greeting: Store, actor: Actor) -> None:
    greeting.edit("greeting", "v1.0", files("Hi"), "hi", actor=actor)
    info = greeting.new_version("greeting", "v1.0", message="hotfix", actor=actor)
    assert greeting.prompt("greeting", info.version).source == prompt_text("Hi")
    repo = greeting.path / "greeting.git"
    trailers = git(repo, "log", "-1", "--format=%(trailers:only)", info.version)
    assert "Promptgit-Created: v1.1" in trailers and "Promptgit-From: v1.0" in trailers
    assert git(repo, "rev-parse", f"{info.version}^") == git(repo, "rev-parse", "v1.0")


def test_deleted_numbers_are_never_reused(greeting: Store, actor: Actor) -> None:
    greeting.new_version("greeting", "v1.0", actor=actor)  # v1.1, current dev
    greeting.rollback("greeting", "v1.0", stage="dev", actor=actor)
    greeting.delete("greeting", "v1.1", actor=actor)
    assert greeting.new_version("greeting", "v1.0", actor=actor).version == "v1.2"
    with pytest.raises(VersionExists, match="was used before"):
        greeting.new_version("greeting", "v1.0", as_version="v1.1", actor=actor)


def test_new_version_from_unknown_ref(greeting: Store, actor: Actor) -> None:
    with assert_unchanged(greeting), pytest.raises(RefNotFound, match="no deployment in prod"):
        greeting.new_version("greeting", "prod", actor=actor)


# --- rollback --------------------------------------------------------------


def released_twice(store: Store, actor: Actor) -> None:
    store.promote("greeting", "v1.0", actor=actor)
    store.promote("greeting", "v1.0", actor=actor)
    store.new_version("greeting", "v1.0", actor=actor)
    store.edit("greeting", "v1.1", files("Hi"), "hi", actor=actor)
    store.promote("greeting", "v1.1", actor=actor)
    store.promote("greeting", "v1.1", actor=actor)


def test_rollback_prod_appends_a_logged_deployment(greeting: Store, actor: Actor) -> None:
    released_twice(greeting, actor)
    repo = greeting.path / "greeting.git"
    before = git(repo, "rev-parse", "prod").strip()
    d = greeting.rollback("greeting", "v1.0", actor=actor)
    assert d is not None and d.action == "rollback"
    assert git(repo, "rev-parse", "prod^").strip() == before  # appended, never rewritten
    assert served(greeting, "prod") == "v1.0"
    assert greeting.get("greeting", "prod").render(name="Ada") == "Hello Ada, how can I help?\n"
    assert [v.stage for v in greeting.versions("greeting")] == ["PROD", "PROD"]


def test_rollback_to_what_is_served_changes_nothing(greeting: Store, actor: Actor) -> None:
    released_twice(greeting, actor)
    with assert_unchanged(greeting):
        assert greeting.rollback("greeting", "v1.1", actor=actor) is None


def test_rollback_prod_to_a_draft_or_unserved_version_is_refused(greeting: Store, actor: Actor) -> None:
    released_twice(greeting, actor)
    greeting.new_version("greeting", "v1.1", actor=actor)
    with assert_unchanged(greeting), pytest.raises(RuleViolation, match="only to a release"):
        greeting.rollback("greeting", "v1.2", actor=actor)
    with pytest.raises(RefNotFound):
        greeting.rollback("greeting", "v9.9", actor=actor)


def test_rollback_restores_the_revision_last_served(greeting: Store, actor: Actor) -> None:
    greeting.new_version("greeting", "v1.0", actor=actor)  # dev serves v1.1
    old = greeting.resolve("greeting", "v1.0").revision
    greeting.edit("greeting", "v1.0", files("Hi"), "not served by dev", actor=actor)
    d = greeting.rollback("greeting", "v1.0", stage="dev", actor=actor)
    assert d is not None and d.revision == old
    shown = greeting.show("greeting", "dev")
    assert shown.prompt.revision == old and shown.tip != old
    assert "older revision" in shown.notes[0]
    # the next edit brings dev to the new tip
    new = greeting.edit("greeting", "v1.0", files("Hey"), "again", actor=actor)
    assert new.deployed_to == ("dev",)


def test_rollback_never_served_is_refused(greeting: Store, actor: Actor) -> None:
    greeting.new_version("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.1", actor=actor)
    with assert_unchanged(greeting), pytest.raises(RuleViolation, match="tst never served v1.0"):
        greeting.rollback("greeting", "v1.0", stage="tst", actor=actor)


# --- delete ------------------------------------------------------------------


def test_delete_rules(greeting: Store, actor: Actor) -> None:
    greeting.new_version("greeting", "v1.0", actor=actor)  # v1.1 current dev
    with assert_unchanged(greeting), pytest.raises(RuleViolation, match="current DEV version"):
        greeting.delete("greeting", "v1.1", actor=actor)
    greeting.promote("greeting", "v1.0", actor=actor)  # v1.0 has been in tst
    with assert_unchanged(greeting), pytest.raises(RuleViolation, match="has been in TST"):
        greeting.delete("greeting", "v1.0", actor=actor)
    greeting.new_version("greeting", "v1.0", actor=actor)  # v1.2 current dev; v1.1 deletable
    greeting.delete("greeting", "v1.1", actor=actor)
    assert [v.version for v in greeting.versions("greeting")] == ["v1.0", "v1.2"]
    repo = greeting.path / "greeting.git"
    assert "Promptgit-Version: v1.1" in git(repo, "log", "--first-parent", "dev")  # the log names it


def test_delete_a_release_is_refused(greeting: Store, actor: Actor) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.0", actor=actor)
    with assert_unchanged(greeting), pytest.raises(RuleViolation, match="never deleted"):
        greeting.delete("greeting", "v1.0", actor=actor)


# --- roles -------------------------------------------------------------------


def test_an_editor_cannot_release_or_roll_back(greeting: Store) -> None:
    editor = Actor("Ed", "ed@example.com", role="editor")
    greeting.edit("greeting", "v1.0", files("Hi"), "ok", actor=editor)
    greeting.promote("greeting", "v1.0", actor=editor)
    with assert_unchanged(greeting), pytest.raises(Forbidden, match="needs role 'releaser'"):
        greeting.promote("greeting", "v1.0", actor=editor)
    reader = Actor("Rita", "rita@example.com", role="reader")
    with assert_unchanged(greeting), pytest.raises(Forbidden, match="needs role 'editor'"):
        greeting.edit("greeting", "v1.0", files("Hey"), "no", actor=reader)


def test_actor_identity_is_validated() -> None:
    with pytest.raises(Exception, match="invalid identity"):
        Actor("Eve <evil>", "eve@example.com")
    with pytest.raises(Exception, match="unknown role"):
        Actor("Eve", "eve@example.com", role="god")


# --- reads -------------------------------------------------------------------


def test_reads(greeting: Store, actor: Actor) -> None:
    greeting.edit("greeting", "v1.0", files("Hi"), "hi", actor=actor)
    shown = greeting.show("greeting")
    assert (shown.prompt.version, shown.stage, shown.deployment and shown.deployment.action) == (
        "v1.0",
        "DEV",
        "update",
    )
    sha = shown.prompt.revision
    assert greeting.show("greeting", sha[:7]).prompt.revision == sha
    assert greeting.show("greeting", "1.0").prompt.revision == sha
    first_draft = greeting.log("greeting", "v1.0")[1].revision
    patch = greeting.diff("greeting", first_draft[:8], "v1.0").patch
    assert "-  Hello {{ name }}" in patch and "+  Hi {{ name }}" in patch
    assert greeting.render("greeting", "dev", {"name": "Ada"}) == "Hi Ada, how can I help?\n"
    with pytest.raises(RenderError, match="'name' is undefined"):
        greeting.render("greeting", "dev")
    with pytest.raises(RefNotFound, match="no deployment in prod"):
        greeting.get("greeting", "prod")
    with pytest.raises(RefNotFound, match="revision abcdef0"):
        greeting.show("greeting", "abcdef0")


def test_get_follows_deployments(greeting: Store, actor: Actor) -> None:
    first = greeting.get("greeting", "dev")
    assert greeting.get("greeting", "dev") is first  # warm: one ref read
    other = Store(greeting.path)  # another process's view
    other.edit("greeting", "v1.0", files("Hi"), "hi", actor=actor)
    assert greeting.get("greeting", "dev").render(name="Ada") == "Hi Ada, how can I help?\n"


def test_versions_json_contract(greeting: Store, actor: Actor) -> None:
    greeting.new_version("greeting", "v1.0", message="second", actor=actor)
    data = [v.to_json() for v in greeting.versions("greeting")]
    assert [d["version"] for d in data] == ["v1.0", "v1.1"]
    assert set(data[0]) >= {
        "version",
        "stage",
        "current_in",
        "revision",
        "created_at",
        "updated_at",
        "summary",
    }
    assert data[1]["current_in"] == ["dev"] and data[0]["current_in"] == []
    assert data[1]["summary"] == "second"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", data[0]["created_at"])


# --- half-landed releases ------------------------------------------------------


@pytest.mark.parametrize(
    "left",
    ["tag and branch", "prod and branch", "prod only"],
    ids=["branch-not-deleted", "tag-missing", "tag-missing-branch-gone"],
)
def test_a_half_landed_release_is_finished(greeting: Store, actor: Actor, left: str) -> None:
    """libgit2 applies a transaction's refs in no set order, and a push without
    --atomic one by one: whatever part of a release landed, the next operation
    completes it."""
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.0", actor=actor)
    repo = greeting.path / "greeting.git"
    revision = git(repo, "rev-parse", "v1.0^{commit}").strip()
    if "branch" in left:
        git(repo, "update-ref", "refs/heads/v1.0", revision)
    if "tag" not in left:
        git(repo, "update-ref", "-d", "refs/tags/v1.0")
    assert greeting.finish_releases("greeting", actor=actor) == ["v1.0"]
    assert "refs/heads/v1.0" not in refs(repo)
    assert git(repo, "rev-parse", "v1.0^{commit}").strip() == revision
    assert git(repo, "cat-file", "-t", "v1.0").strip() == "tag"
    assert greeting.finish_releases("greeting", actor=actor) == []  # idempotent
    assert greeting.versions("greeting")[0].stage == "PROD"


def test_operations_finish_a_half_landed_release_first(greeting: Store, actor: Actor) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.0", actor=actor)
    repo = greeting.path / "greeting.git"
    git(repo, "update-ref", "refs/heads/v1.0", git(repo, "rev-parse", "v1.0^{commit}").strip())
    with pytest.raises(RuleViolation, match="released and immutable"):
        greeting.edit("greeting", "v1.0", files("Hi"), "x", actor=actor)
    greeting.new_version("greeting", "v1.0", actor=actor)
    assert "refs/heads/v1.0" not in refs(repo)


def test_folders_nested_deeper_than_recursion_goes_are_walked(greeting: Store) -> None:
    """Folders made by hand in the store, 1,500 deep: the store walk still finishes (a
    recursive one stops at Python's recursion limit, about 1,000), and the repository
    at the bottom, whose path is too long for a prompt name, is no prompt."""
    deep = top = str(greeting.path / "a")
    try:
        os.mkdir(top)
        for _ in range(1499):  # one level at a time: mkdir(parents=True) recurses too
            deep = os.path.join(deep, "a")
            os.mkdir(deep)
        git(greeting.path, "init", "-q", "--bare", os.path.join(deep, "lost.git"))
        strays: list[str] = []
        assert store_names(str(greeting.path), strays) == ["greeting"]
        assert strays == ["a/" * 1500 + "lost.git"]
        assert [p.name for p in greeting.list()] == ["greeting"]
    finally:  # rm, not shutil.rmtree (pytest's clean-up), which recurses as deep
        subprocess.run(["rm", "-rf", top], check=True)


def test_a_repository_with_no_valid_prompt_name_is_left_out_of_listings(
    greeting: Store, actor: Actor
) -> None:
    """`git init --bare prompts/Upper.git` by hand: listings skip it (they do not fail
    on it), and doctor names it with the fix."""
    greeting.create("support/faq", files(), "x", actor=actor)
    for stray in ("Upper.git", "support/Bad Name.git", "My Folder/inner.git", "ui.git"):
        git(greeting.path, "init", "-q", "--bare", str(greeting.path / stray))
    assert greeting.names() == ["greeting", "support/faq"]
    assert [p.name for p in greeting.list()] == ["greeting", "support/faq"]
    found = sorted((f.problem, f.fix) for f in greeting.doctor(actor=actor) if f.check == "stray")
    assert [p.split(" is in the store")[0] for p, _fix in found] == [
        "My Folder/inner.git",
        "Upper.git",
        "support/Bad Name.git",
        "ui.git",
    ]
    assert all(
        "no valid prompt name" in p and "move it out of the store, or rename it" in f for p, f in found
    )
