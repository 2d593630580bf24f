"""The five seed scenarios, end to end through the CLI, checked with the real git binary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PROMPT, git, prompt_text, refs

from promptgit.cli import cli


class Session:
    """A prompt engineer at a terminal in `root`, with the default store ./prompts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runner = CliRunner()
        self.repo = root / "prompts" / "greeting.git"

    def __call__(self, *args: str) -> str:
        result = self.runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output + result.stderr
        return result.stdout

    def refused(self, *args: str) -> str:
        before = refs(self.repo)
        result = self.runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 1, result.output
        assert refs(self.repo) == before
        return result.stderr

    def save(self, version: str, greeting: str, summary: str) -> None:
        (self.root / "prompt.yaml").write_text(prompt_text(greeting))
        self("edit", f"greeting@{version}", "-f", "prompt.yaml", "-m", summary)

    def stages(self) -> dict[str, tuple[str, list[str]]]:
        data = json.loads(self("versions", "greeting", "--json"))
        return {v["version"]: (v["stage"], v["current_in"]) for v in data}

    def git(self, *args: str) -> str:
        return git(self.repo, *args)

    def deployments(self, stage: str) -> list[str]:
        out = self.git(
            "log",
            "--first-parent",
            "--grep=^Promptgit-Action:",
            "--format=%(trailers:key=Promptgit-Action,valueonly,separator=)%x20%(trailers:key=Promptgit-Version,valueonly,separator=)",
            stage,
        )
        return [line.strip() for line in out.splitlines()]


@pytest.fixture
def me(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prompt.yaml").write_text(PROMPT)
    s = Session(tmp_path)
    s("init")
    s("create", "greeting", "-f", "prompt.yaml", "-m", "first draft")
    return s


def test_iterate_on_a_dev_draft(me: Session, tmp_path: Path) -> None:
    me.save("v1.0", "Hi", "friendlier")
    me.save("v1.0", "Hey", "shorter")
    me.save("v1.0", "Good day", "formal")
    assert me.git("log", "--format=%s", "v1.0").splitlines() == [
        "formal",
        "shorter",
        "friendlier",
        "first draft",
    ]
    assert me.git("show", "dev:prompt.yaml") == prompt_text("Good day")
    assert me.deployments("dev") == ["update v1.0", "update v1.0", "update v1.0", "create v1.0"]
    assert me.stages() == {"v1.0": ("DEV", ["dev"])}
    # a plain clone checks out what dev serves
    git(tmp_path, "clone", "-q", str(me.repo), "work")
    assert (tmp_path / "work" / "prompt.yaml").read_text() == prompt_text("Good day")
    assert me.git("fsck", "--strict").strip() == ""


def test_fix_in_tst_then_release(me: Session) -> None:
    me("promote", "greeting@v1.0")
    assert me.stages() == {"v1.0": ("TST", ["dev", "tst"])}
    me.save("v1.0", "Hi", "fix found in TST")
    assert me.git("show", "tst:prompt.yaml") == prompt_text("Hi")
    assert me.deployments("tst") == ["update v1.0", "promote v1.0"]
    me("promote", "greeting@v1.0")
    assert me.git("tag").split() == ["v1.0"]
    assert "refs/heads/v1.0" not in refs(me.repo)
    assert me.git("show", "prod:prompt.yaml") == prompt_text("Hi")
    assert me.git("cat-file", "-p", "v1.0").splitlines()[2] == "tag v1.0"
    assert me.stages() == {"v1.0": ("PROD", ["dev", "tst", "prod"])}
    err = me.refused("edit", "greeting@v1.0", "-f", "prompt.yaml")
    assert (
        "v1.0 is released and immutable: make a new version with 'promptgit new-version greeting --from v1.0'"
        in err
    )


def test_new_version_from_prod(me: Session) -> None:
    me("promote", "greeting@v1.0")
    me("promote", "greeting@v1.0")
    prod = me.git("rev-parse", "prod")
    assert me("new-version", "greeting", "--from", "v1.0").startswith("created greeting@v1.1")
    assert me.git("diff", "v1.0", "v1.1") == ""
    assert me.git("show", "dev:prompt.yaml") == PROMPT
    assert me.git("rev-parse", "prod") == prod  # prod untouched
    me.save("v1.1", "Hi", "next iteration")
    assert me.git("diff", "--stat", "v1.0", "v1.1").strip().startswith("prompt.yaml | 2")
    assert me.stages() == {"v1.0": ("PROD", ["tst", "prod"]), "v1.1": ("DEV", ["dev"])}


def test_several_drafts_at_once(me: Session) -> None:
    me("promote", "greeting@v1.0")
    me("promote", "greeting@v1.0")  # v1.0 PROD
    me("new-version", "greeting", "--from", "v1.0")  # v1.1
    me("promote", "greeting@v1.1")  # v1.1 TST
    me("new-version", "greeting", "--from", "v1.1")  # v1.2 DEV, current dev
    assert me.stages() == {
        "v1.0": ("PROD", ["prod"]),
        "v1.1": ("TST", ["tst"]),
        "v1.2": ("DEV", ["dev"]),
    }
    dev, prod = me.git("rev-parse", "dev"), me.git("rev-parse", "prod")
    me.save("v1.1", "Hi", "tst only")
    assert me.git("show", "tst:prompt.yaml") == prompt_text("Hi")
    assert me.git("rev-parse", "dev") == dev and me.git("rev-parse", "prod") == prod
    tst = me.git("rev-parse", "tst")
    me.save("v1.2", "Hey", "dev only")
    assert me.git("show", "dev:prompt.yaml") == prompt_text("Hey")
    assert me.git("rev-parse", "tst") == tst
    # an unused draft goes away; its number stays retired
    me("new-version", "greeting", "--from", "v1.0")  # v1.3 current dev
    me("rollback", "greeting", "--stage", "dev", "--to", "v1.2")
    me("delete", "greeting@v1.3")
    assert "v1.3" not in me.stages()
    assert me("new-version", "greeting", "--from", "v1.0").startswith("created greeting@v1.4")
    assert me.git("fsck", "--strict").strip() == ""


def test_production_hotfix_and_rollback(me: Session) -> None:
    me("promote", "greeting@v1.0")
    me("promote", "greeting@v1.0")
    me("new-version", "greeting")  # from prod: v1.1
    me.save("v1.1", "Yo", "risky wording")
    me("promote", "greeting@v1.1")
    me("promote", "greeting@v1.1")
    assert me.git("show", "prod:prompt.yaml") == prompt_text("Yo")
    # production is wrong: roll back at once, then hotfix through a new version
    out = me("rollback", "greeting", "--to", "v1.0")
    assert out.startswith("prod rolled back to greeting@v1.0")
    assert me.git("show", "prod:prompt.yaml") == PROMPT
    me("new-version", "greeting", "--from", "v1.1", "-m", "hotfix")  # v1.2
    me.save("v1.2", "Hello there", "hotfix wording")
    me("promote", "greeting@v1.2")
    me("promote", "greeting@v1.2")
    assert me.git("show", "prod:prompt.yaml") == prompt_text("Hello there")
    assert me.deployments("prod") == ["promote v1.2", "rollback v1.0", "promote v1.1", "promote v1.0"]
    # nothing ever deployed became unreachable, and the history was never rewritten
    for sha in me.git("log", "--first-parent", "--format=%H", "prod").split():
        assert me.git("merge-base", "--is-ancestor", sha, "prod") == ""
    assert me.git("tag").split() == ["v1.0", "v1.1", "v1.2"]
    assert me.stages()["v1.0"] == ("PROD", [])
    reflog = me.git("reflog", "show", "--format=%gs", "refs/heads/prod").splitlines()
    assert len(reflog) == 4
    assert me.git("fsck", "--strict").strip() == ""
    err = me.refused("rollback", "greeting", "--to", "v1.3")
    assert "has no version v1.3" in err


def test_an_editor_abandons_the_current_dev_draft(tmp_path: Path) -> None:
    """Scenario 4's "delete v2.4 if not needed", with an editor's rights only: the
    refusal names the exact rollback, the editor may roll dev back, then delete."""
    from promptgit import Actor, Store
    from promptgit.errors import RuleViolation

    store = Store.init(tmp_path / "prompts")
    owner, editor = Actor("Owner", "o@example.com"), Actor("Ed", "ed@example.com", "editor")
    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=owner)
    store.promote("greeting", "v1.0", actor=owner)
    store.promote("greeting", "v1.0", actor=owner)  # v1.0 released
    store.new_version("greeting", actor=editor)  # v1.1, current in dev
    with pytest.raises(RuleViolation) as refused:
        store.delete("greeting", "v1.1", actor=editor)
    assert str(refused.value) == (
        "v1.1 is the current DEV version: make another version current in dev first: "
        "'promptgit rollback greeting --stage dev --to v1.0', or 'promptgit new-version greeting'"
    )
    store.rollback("greeting", "v1.0", stage="dev", actor=editor)
    store.delete("greeting", "v1.1", actor=editor)
    assert store.version_ids("greeting") == ["v1.0"]
    assert store.get("greeting", "dev").version == "v1.0"
    from promptgit.errors import Forbidden

    store.new_version("greeting", actor=editor)  # v1.2
    store.promote("greeting", "v1.2", actor=editor)
    store.promote("greeting", "v1.2", actor=owner)  # released: prod serves v1.2
    with pytest.raises(Forbidden, match="rolling back prod needs role 'releaser' \\(you have 'editor'\\)"):
        store.rollback("greeting", "v1.0", stage="prod", actor=editor)
