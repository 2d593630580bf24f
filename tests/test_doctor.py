"""`promptgit doctor` on damaged stores: what it finds, what --repair mends, and what
it leaves to a person, with the command to run."""

from __future__ import annotations

import json
import subprocess

from click.testing import CliRunner
from conftest import git, prompt_text

from promptgit import Actor, Store
from promptgit.cli import cli


def doctor(store: Store, *args: str) -> tuple[int, str]:
    out = CliRunner().invoke(cli, ["--store", str(store.path), "doctor", *args])
    return out.exit_code, out.output


def test_a_healthy_store_has_nothing_to_report(greeting: Store, actor: Actor) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)
    assert doctor(greeting) == (0, "no problems found\n")
    code, out = doctor(greeting, "--json")
    assert (code, json.loads(out)) == (0, [])


def test_missing_hooks_are_found_and_reinstalled(greeting: Store, actor: Actor) -> None:
    hook = greeting.path / "greeting.git" / "hooks" / "pre-receive"
    hook.unlink()
    code, out = doctor(greeting)
    assert code == 1
    assert "greeting: hooks: hook pre-receive is missing or not this promptgit's" in out
    assert "fix: promptgit hooks install greeting" in out
    code, out = doctor(greeting, "--repair")
    assert code == 0 and "(repaired)" in out
    assert hook.is_file()
    assert doctor(greeting) == (0, "no problems found\n")


def test_a_cut_short_release_is_finished(greeting: Store, actor: Actor) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)
    repo = greeting.path / "greeting.git"
    tip = git(repo, "rev-parse", "v1.0").strip()
    message = f"Promote v1.0 to prod\n\nPromptgit-Action: promote\nPromptgit-Version: v1.0\nPromptgit-Revision: {tip}\n"
    deploy = subprocess.run(["git", "-C", str(repo), "commit-tree", f"{tip}^{{tree}}", "-p", tip, "-m", message],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    git(repo, "update-ref", "refs/heads/prod", deploy)  # the release stopped after prod
    code, out = doctor(greeting, "--json")
    [finding] = json.loads(out)
    assert (code, finding["check"], finding["repairable"]) == (1, "releases", True)
    assert finding["problem"] == "prod serves v1.0, but its release was cut short (tag v1.0 missing)"
    code, out = doctor(greeting, "--repair", "--json")
    assert (code, [f["repaired"] for f in json.loads(out)]) == (0, [True])
    assert git(repo, "tag", "--list").split() == ["v1.0"]
    assert doctor(greeting) == (0, "no problems found\n")


def test_a_moved_tag_is_reported_with_its_fix_never_moved_back(greeting: Store, actor: Actor) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.new_version("greeting", actor=actor)
    greeting.edit("greeting", "v1.1", {"prompt.yaml": prompt_text("Hi")}, "hi", actor=actor)
    repo = greeting.path / "greeting.git"
    tag = git(repo, "rev-parse", "refs/tags/v1.0").strip()
    git(repo, "update-ref", "refs/tags/v1.0", git(repo, "rev-parse", "v1.1").strip())  # by hand
    code, out = doctor(greeting, "--repair")
    assert code == 1
    assert "greeting: tags: refs/tags/v1.0 has moved since it was created" in out
    assert (
        "fix: releases never move: point refs/tags/v1.0 back at its first value (git reflog refs/tags/v1.0)"
        in out
    )
    assert git(repo, "rev-parse", "refs/tags/v1.0").strip() != tag  # doctor rewrites no history


def test_a_draft_dev_never_recorded_is_finished(greeting: Store, actor: Actor) -> None:
    repo = greeting.path / "greeting.git"
    base = git(repo, "rev-parse", "v1.0").strip()
    c = subprocess.run(["git", "-C", str(repo), "commit-tree", f"{base}^{{tree}}", "-p", base, "-m",
                        "Create v1.1\n\nPromptgit-Created: v1.1\nPromptgit-From: v1.0"],
                       capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    git(repo, "update-ref", "refs/heads/v1.1", c)  # a new-version killed after its branch
    code, out = doctor(greeting)
    assert code == 1 and "drafts: v1.1 exists but dev never recorded its creation" in out
    assert doctor(greeting, "--repair")[0] == 0
    assert greeting.get("greeting", "dev").version == "v1.1"
    assert doctor(greeting) == (0, "no problems found\n")


def test_leftovers_of_a_killed_create_are_swept(store: Store, actor: Actor) -> None:
    leftover = store.path / ".create-999999999.1.abc123"  # pid 999999999 is gone
    (leftover / "repo.git").mkdir(parents=True)
    code, out = doctor(store)
    assert code == 1 and ".create-999999999.1.abc123 is left by a killed create" in out
    assert doctor(store, "--repair")[0] == 0
    assert not leftover.exists()


def test_doctor_names_an_unknown_prompt(store: Store) -> None:
    code, out = doctor(store, "nope")
    assert code == 1 and "no prompt named 'nope'" in out


def test_damaged_repositories_are_named_with_their_fix_and_the_rest_still_checked(
    greeting: Store, actor: Actor
) -> None:
    """Files git cannot read (a ref file holding no sha, a config that does not parse,
    a NAME.git folder with nothing or only a blank HEAD in it): doctor names each and
    goes on; a read of one names the prompt and doctor, never "a bug in promptgit"."""
    for name in ("broken", "badconfig"):
        greeting.create(name, {"prompt.yaml": prompt_text("Hi")}, "x", actor=actor)
    (greeting.path / "broken.git" / "refs" / "heads" / "dev").write_text("garbage\n")
    (greeting.path / "badconfig.git" / "config").write_text("[core\n")
    (greeting.path / "empty.git").mkdir()
    (greeting.path / "plain.git").mkdir()
    (greeting.path / "plain.git" / "HEAD").write_text("")
    (greeting.path / "greeting.git" / "hooks" / "pre-receive").unlink()  # checked after them all
    code, out = doctor(greeting)
    assert code == 1
    assert "broken: damaged: git cannot read the repository: refs/heads/dev: corrupted loose reference" in out
    assert "badconfig: damaged: git cannot read the repository:" in out
    assert "empty: damaged: git cannot read the repository: empty.git has no HEAD file" in out
    assert "plain: damaged: git cannot read the repository: cannot open repository plain.git" in out
    assert "fix: restore broken.git in the store from a clone or backup (git fetch from a mirror)" in out
    assert "greeting: hooks: hook pre-receive is missing" in out
    for name in ("broken", "badconfig", "empty", "plain"):
        for args in (["show", name], ["versions", name]):
            result = CliRunner().invoke(cli, ["--store", str(greeting.path), *args])
            assert result.exit_code == 1, args
            assert f"prompt '{name}' is damaged or unreadable" in result.output, args
            assert f"run 'promptgit doctor {name}'" in result.output and "bug" not in result.output, args
            assert str(greeting.path) not in result.output, args  # git's own paths left out
    listing = CliRunner().invoke(cli, ["--store", str(greeting.path), "list"])
    assert listing.exit_code == 1 and "is damaged or unreadable" in listing.output
