"""Every push obeys the same rules as the CLI: the real git binary pushes to a
real store, so the installed hooks really run. A rejected push changes nothing."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import PROMPT, git, prompt_text, refs, snapshot

from promptgit import Actor, Store, hooks, receive

ROOT = Path(__file__).resolve().parent.parent


class Clone:
    """A working clone of prompts/greeting.git, pushing over a file path."""

    def __init__(self, store: Store, where: Path, name: str = "greeting") -> None:
        self.store = store
        self.remote = store.path / f"{name}.git"
        self.path = where
        git(where.parent, "clone", "-q", str(self.remote), str(where))

    def __call__(self, *args: str) -> str:
        return git(self.path, *args)

    def commit(self, branch: str, text: str, message: str = "edit via git", file: str = "prompt.yaml") -> str:
        """Commit on the local branch (made from origin's the first time)."""
        if self("branch", "--list", branch).strip():
            self("checkout", "-q", branch)
        else:
            self("checkout", "-q", "-b", branch, f"origin/{branch}")
        (self.path / file).write_text(text)
        self("add", file)
        self("commit", "-q", "-m", message)
        return self("rev-parse", "HEAD").strip()

    def push(self, *refspecs: str, atomic: bool = True) -> subprocess.CompletedProcess[str]:
        args = ["push", "--porcelain"] + (["--atomic"] if atomic else []) + ["origin", *refspecs]
        return subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, text=True)

    def release_by_hand(self, version: str, revision: str) -> list[str]:
        """The refspecs of a release built with plain git: a prod deployment of
        `revision` as `version`, an annotated tag, and the draft branch deleted."""
        message = (
            f"Promote {version} to prod\n\nPromptgit-Action: promote\n"
            f"Promptgit-Version: {version}\nPromptgit-Revision: {revision}\n"
        )
        deploy = self("commit-tree", f"{revision}^{{tree}}", "-p", revision, "-m", message).strip()
        self("tag", "-f", "-a", version, "-m", f"Release {version}", revision)
        return [
            f"{deploy}:refs/heads/prod",
            f"refs/tags/{version}:refs/tags/{version}",
            f":refs/heads/{version}",
        ]

    def accepted(self, *refspecs: str) -> str:
        out = self.push(*refspecs)
        assert out.returncode == 0, out.stderr
        return out.stderr

    def rejected(self, *refspecs: str, atomic: bool = True) -> str:
        """Push, expect the hook to refuse, and check the remote is byte for byte unchanged."""
        before = refs(self.remote)
        out = self.push(*refspecs, atomic=atomic)
        assert out.returncode != 0, out.stderr
        assert refs(self.remote) == before
        assert "promptgit: push rejected: nothing was changed" in out.stderr
        assert "Traceback" not in out.stderr
        return out.stderr


@pytest.fixture
def clone(greeting: Store, tmp_path: Path) -> Clone:
    return Clone(greeting, tmp_path / "work")


def released(store: Store, actor: Actor) -> None:
    store.promote("greeting", "v1.0", actor=actor)
    store.promote("greeting", "v1.0", actor=actor)


# --- installation -------------------------------------------------------------


def test_create_installs_hooks_and_safety_config(greeting: Store) -> None:
    repo = greeting.path / "greeting.git"
    for hook in hooks.HOOKS:
        path = repo / "hooks" / hook
        assert os.access(path, os.X_OK)
        assert path.read_text() == hooks.shim(hook, hooks._quote(os.path.abspath(os.sys.executable)))
    # off, so review branches can be force-pushed; the policy refuses every other rewrite
    assert git(repo, "config", "receive.denyNonFastForwards").strip() == "false"
    assert git(repo, "config", "core.logAllRefUpdates").strip() == "always"
    assert not list((repo / "hooks").glob("*.sample"))


def test_top_level_hooks_are_the_installed_shims() -> None:
    """hooks/ in the repository and what `install` writes are one text: no drift."""
    for hook in hooks.HOOKS:
        path = ROOT / "hooks" / hook
        assert path.read_text() == hooks.shim(hook, '"${PROMPTGIT_PYTHON:-python3}"')
        assert os.access(path, os.X_OK)
    assert (ROOT / "hooks" / hooks.CLIENT).read_text() == hooks.CLIENT_TEXT


def _install_with_a_python_that_goes(repo: Path, where: Path) -> None:
    """Install the hooks with a Python in a "venv" of its own, then delete that venv."""
    (where / "bin").mkdir(parents=True)
    (where / "bin" / "python").symlink_to(os.sys.executable)
    hooks.install(repo, str(where / "bin" / "python"))
    (where / "bin" / "python").unlink()


def _path_without_promptgit(where: Path) -> str:
    """A PATH whose python3 (Debian's own, if any) cannot run promptgit's hooks:
    every tool of /usr/bin and /bin, none of this Python's folder."""
    return f"{where}:/usr/bin:/bin"


def test_a_shim_falls_back_to_a_python3_on_path_when_its_python_is_gone(
    clone: Clone, greeting: Store, tmp_path: Path
) -> None:
    repo = greeting.path / "greeting.git"
    _install_with_a_python_that_goes(repo, tmp_path / "venv")
    clone.commit("v1.0", "template: '{{ unclosed'\n", "broken")
    assert "prompt.yaml" in clone.rejected("HEAD:refs/heads/v1.0")  # the policy still ran
    clone("reset", "-q", "--hard", "HEAD~1")
    clone.commit("v1.0", prompt_text("Howdy"), "howdy")
    assert "not found" not in clone.accepted("v1.0")
    assert "Howdy" in greeting.get("greeting", "dev").source  # post-receive ran too


def test_a_shim_falls_back_to_the_python_behind_promptgit_on_path(
    clone: Clone, greeting: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = greeting.path / "greeting.git"
    _install_with_a_python_that_goes(repo, tmp_path / "venv")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "promptgit").write_text(f"#!{os.sys.executable}\nfrom promptgit.cli import main\nmain()\n")
    (bin_dir / "promptgit").chmod(0o755)
    monkeypatch.setenv("PATH", _path_without_promptgit(bin_dir))
    clone.commit("v1.0", prompt_text("Howdy"), "howdy")
    clone.accepted("v1.0")
    assert "Howdy" in greeting.get("greeting", "dev").source


def test_a_shim_without_any_python_for_promptgit_refuses_and_says_how_to_fix_it(
    clone: Clone, greeting: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = greeting.path / "greeting.git"
    _install_with_a_python_that_goes(repo, tmp_path / "venv")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", _path_without_promptgit(empty))
    monkeypatch.delenv("PYTHONPATH", raising=False)  # nothing on PATH can find this checkout
    clone.commit("v1.0", prompt_text("Howdy"), "howdy")
    err = clone.rejected("v1.0")
    gone = tmp_path / "venv" / "bin" / "python"
    assert (
        f"promptgit: {gone}, the Python these hooks were installed with, is gone, and no promptgit "
        "or python3 on PATH imports promptgit: run 'promptgit hooks install' with the promptgit "
        "you use now"
    ) in err
    assert "not found" not in err


def test_a_shim_installed_by_promptgit_0_1_still_runs(clone: Clone, greeting: Store) -> None:
    """Shims written before the hooks' runtime moved to promptgit.receive call
    `-m promptgit.hooks`: a push through them is still checked and followed."""
    repo = greeting.path / "greeting.git"
    for hook in ("pre-receive", "post-receive"):
        path = repo / "hooks" / hook
        path.write_text(path.read_text().replace("-m promptgit.receive", "-m promptgit.hooks"))
    clone.commit("v1.0", "template: '{{ unclosed'\n", "broken")
    assert "prompt.yaml" in clone.rejected("HEAD:refs/heads/v1.0")
    clone("reset", "-q", "--hard", "HEAD~1")
    clone.commit("v1.0", prompt_text("Howdy"), "howdy")
    clone.accepted("v1.0")
    assert "Howdy" in greeting.get("greeting", "dev").source  # post-receive moved dev


def test_hooks_install_cli_reinstalls(greeting: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from promptgit.cli import cli

    repo = greeting.path / "greeting.git"
    (repo / "hooks" / "pre-receive").unlink()
    git(repo, "config", "receive.denyNonFastForwards", "true")  # as a store made before review branches
    result = CliRunner().invoke(cli, ["--store", str(greeting.path), "hooks", "install"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("hooks installed in 1 prompt(s), running ")
    assert (repo / "hooks" / "pre-receive").is_file()
    assert git(repo, "config", "receive.denyNonFastForwards").strip() == "false"
    result = CliRunner().invoke(cli, ["--store", str(greeting.path), "hooks", "install", "nope"])
    assert result.exit_code == 1 and "no prompt named 'nope'" in result.stderr


def test_hooks_work_from_a_path_with_spaces(tmp_path: Path, actor: Actor) -> None:
    store = Store.init(tmp_path / "my prompts" / "store dir")
    store.create("team/greeting", {"prompt.yaml": PROMPT}, "first", actor=actor)
    c = Clone(store, tmp_path / "a clone", "team/greeting")
    c.commit("v1.0", prompt_text("Hi"))
    assert "dev now serves the tip of v1.0" in c.accepted("v1.0")
    repo = store.path / "team" / "greeting.git"
    assert git(repo, "show", "dev:prompt.yaml") == prompt_text("Hi")
    c("fetch", "-q")
    c("checkout", "-q", "-B", "dev", "origin/dev")
    c("commit", "-q", "--allow-empty", "-m", "sneaky")
    assert "dev is a stage: it holds only deployments" in c.rejected("dev")


# --- accepted pushes ----------------------------------------------------------


def test_push_to_a_draft_updates_the_stages_serving_it(clone: Clone, greeting: Store, actor: Actor) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)  # dev and tst both serve v1.0
    rev = clone.commit("v1.0", prompt_text("Hi"), "friendlier, via git")
    err = clone.accepted("v1.0")
    assert "remote: promptgit: dev now serves the tip of v1.0" in err
    assert "remote: promptgit: tst now serves the tip of v1.0" in err
    remote = clone.remote
    assert git(remote, "show", "dev:prompt.yaml") == prompt_text("Hi")
    assert git(remote, "show", "tst:prompt.yaml") == prompt_text("Hi")
    [update, *_] = greeting.log("greeting", "tst")
    assert (update.action, update.revision) == ("update", rev)
    # the pusher as authenticated (here the system user), not the commits' author
    assert update.stamp.by == f"{getpass.getuser()} <{getpass.getuser()}@{socket.gethostname()}>"
    assert update.audited
    # exactly what `promptgit edit` would have done: CLI and push agree afterwards
    greeting.promote("greeting", "v1.0", actor=actor)
    assert greeting.get("greeting", "prod").revision == rev


def test_push_to_a_draft_no_stage_serves_starts_no_python(
    clone: Clone, greeting: Store, actor: Actor
) -> None:
    greeting.new_version("greeting", "v1.0", actor=actor)  # dev now serves v1.1
    dev = git(clone.remote, "rev-parse", "dev")
    clone.commit("v1.0", prompt_text("Hi"))
    err = clone.accepted("v1.0")
    assert "now serves" not in err
    assert git(clone.remote, "rev-parse", "dev") == dev


def test_push_a_new_draft_branch(clone: Clone, greeting: Store) -> None:
    clone("checkout", "-q", "-b", "v1.1", "origin/v1.0")
    clone("commit", "-q", "--allow-empty", "-m", "Create v1.1",
          "--trailer", "Promptgit-Created: v1.1", "--trailer", "Promptgit-From: v1.0")  # fmt: skip
    (clone.path / "prompt.yaml").write_text(prompt_text("Howdy"))
    clone("commit", "-q", "-am", "new wording")
    err = clone.accepted("v1.1")
    assert "dev now serves the tip of v1.1" in err
    assert [(v.version, v.stage, v.current_in) for v in greeting.versions("greeting")] == [
        ("v1.0", "DEV", ()),
        ("v1.1", "DEV", ("dev",)),
    ]
    assert git(clone.remote, "show", "dev:prompt.yaml") == prompt_text("Howdy")
    assert greeting.log("greeting", "dev")[0].action == "create"


def test_push_deletes_an_unused_draft(clone: Clone, greeting: Store, actor: Actor) -> None:
    greeting.new_version("greeting", "v1.0", actor=actor)  # v1.1 current dev; v1.0 unused
    clone("fetch", "-q")
    clone.accepted(":v1.0")
    assert "refs/heads/v1.0" not in refs(clone.remote)


def test_push_a_release_built_by_hand(clone: Clone, greeting: Store, actor: Actor) -> None:
    """Plain git can do what `promote --to prod` does: tag, deployment, branch gone."""
    greeting.promote("greeting", "v1.0", actor=actor)
    clone("fetch", "-q")
    rev = clone("rev-parse", "origin/v1.0").strip()
    release = clone.release_by_hand("v1.0", rev)
    clone.accepted(*release)
    assert greeting.versions("greeting")[0].stage == "PROD"
    assert greeting.get("greeting", "prod").revision == rev


# --- rejected pushes ------------------------------------------------------------


def test_force_push_or_rewind_of_a_stage(clone: Clone, greeting: Store, actor: Actor) -> None:
    greeting.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hi")}, "hi", actor=actor)
    released(greeting, actor)
    clone("fetch", "-q")
    for stage in ("dev", "tst", "prod"):
        err = clone.rejected(f"+origin/{stage}~1:refs/heads/{stage}")
        assert f"refs/heads/{stage}: {stage} only grows by one deployment commit on top of its tip" in err
    clone("checkout", "-q", "-B", "dev", "origin/dev")
    (clone.path / "prompt.yaml").write_text(prompt_text("Hacked"))
    clone("commit", "-q", "-am", "edit dev directly")
    err = clone.rejected("dev")  # v1.0 is released: no draft to point to, so start one
    assert "dev is a stage: it holds only deployments" in err
    assert "start a draft ('promptgit new-version greeting'), then 'git fetch', 'git checkout vX.Y'" in err
    rev = clone("rev-parse", "origin/dev").strip()
    merge = clone("commit-tree", f"{rev}^{{tree}}", "-p", rev, "-p", f"{rev}^2", "-m", "no trailers").strip()
    assert f"{merge[:10]} is not a well-formed deployment" in clone.rejected(f"{merge}:refs/heads/dev")


def test_delete_a_stage(clone: Clone) -> None:
    assert "stages are never deleted" in clone.rejected(":dev")


def test_move_delete_or_recreate_a_release_tag(clone: Clone, greeting: Store, actor: Actor) -> None:
    released(greeting, actor)
    greeting.new_version("greeting", "v1.0", actor=actor)
    clone("fetch", "-q", "--tags")
    clone("tag", "-f", "-a", "v1.0", "-m", "moved", "origin/v1.1")
    assert "v1.0 is a release: its tag never moves and is never deleted" in clone.rejected("+refs/tags/v1.0")
    assert "its tag never moves" in clone.rejected(":refs/tags/v1.0")


def test_commit_to_a_released_version(clone: Clone, greeting: Store, actor: Actor) -> None:
    clone("fetch", "-q")
    base = clone("rev-parse", "origin/v1.0").strip()
    released(greeting, actor)
    clone("checkout", "-q", "-b", "v1.0", base)
    (clone.path / "prompt.yaml").write_text(prompt_text("Late"))
    clone("commit", "-q", "-am", "too late")
    err = clone.rejected("v1.0")
    assert (
        "refs/heads/v1.0: v1.0 is released and immutable: make a new version with 'promptgit new-version greeting --from v1.0'"
        in err
    )


def test_forged_deployment_of_a_revision_tst_never_served(clone: Clone, greeting: Store) -> None:
    rev = clone("rev-parse", "origin/v1.0").strip()
    release = clone.release_by_hand("v1.0", rev)
    err = clone.rejected(*release)
    assert "TST never served revision" in err and "promptgit promote greeting@v1.0 --to tst" in err
    # nor can tst be fed a version that does not exist
    message = f"Promote v1.7 to tst\n\nPromptgit-Action: promote\nPromptgit-Version: v1.7\nPromptgit-Revision: {rev}\n"
    forged = clone("commit-tree", f"{rev}^{{tree}}", "-p", rev, "-m", message).strip()
    assert "a promotion deploys the tip of v1.7" in clone.rejected(f"{forged}:refs/heads/tst")


@pytest.mark.parametrize(
    ("file", "text", "expected"),
    [
        ("prompt.yaml", "template: |\n  Hello {{ name }\n", "prompt.yaml:2: template: template syntax error"),
        ("prompt.yaml", "template: x\ncolour: red\n", "prompt.yaml:2: unknown key 'colour'"),
        ("tests.yaml", "cases: 3\n", "tests.yaml:1: cases: must be a list"),
        (
            "notes.txt",
            "hello\n",
            "notes.txt: is not allowed: a revision holds only prompt.yaml and tests.yaml",
        ),
    ],
)
def test_invalid_content_in_any_pushed_commit(clone: Clone, file: str, text: str, expected: str) -> None:
    clone.commit("v1.0", text, "bad", file=file)
    clone.commit("v1.0", prompt_text("Fine again"), "fixed later")  # the bad one is not the tip
    err = clone.rejected("v1.0")
    assert expected in err and "refs/heads/v1.0: commit " in err


def test_refs_outside_promptgits_namespace(clone: Clone) -> None:
    assert "'prod' is a stage; stages live only at refs/heads/prod" in clone.rejected(
        "origin/v1.0:refs/tags/prod"
    )
    assert "not a promptgit ref" in clone.rejected("origin/v1.0:refs/heads/feature")
    assert "recorded by 'promptgit test' only" in clone.rejected("origin/v1.0:refs/notes/promptgit-tests")


def test_a_prompt_keeps_a_bounded_number_of_notes_refs(clone: Clone) -> None:
    """Notes of the users' own are editors' to write, but every ref is read by each
    check and listing: their number is bounded like review branches."""
    from promptgit.limits import MAX_NOTES

    clone.accepted(*(f"origin/v1.0:refs/notes/n{i}" for i in range(MAX_NOTES)))  # exactly the limit
    err = clone.rejected("origin/v1.0:refs/notes/one-more")
    assert f"greeting would have {MAX_NOTES + 1} notes refs, and a prompt keeps at most {MAX_NOTES}" in err
    clone.accepted(":refs/notes/n0", "origin/v1.0:refs/notes/one-more")  # one goes, one comes


def test_delete_a_draft_that_is_current_dev_or_was_in_tst(
    clone: Clone, greeting: Store, actor: Actor
) -> None:
    assert "v1.0 is the current DEV version" in clone.rejected(":v1.0")
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.new_version("greeting", "v1.0", actor=actor)
    assert "v1.0 has been in TST and can no longer be deleted" in clone.rejected(":v1.0")


def test_new_draft_branches_that_break_the_rules(clone: Clone, greeting: Store, actor: Actor) -> None:
    greeting.new_version("greeting", "v1.0", actor=actor)  # v1.1
    greeting.new_version("greeting", "v1.0", actor=actor)  # v1.2, current dev
    greeting.delete("greeting", "v1.1", actor=actor)  # retired
    clone("fetch", "-q")
    clone("checkout", "-q", "-b", "work", "origin/v1.0")
    assert "v1.1 was used before and is retired" in clone.rejected("work:refs/heads/v1.1")
    err = clone.rejected("work:refs/heads/v1.5")  # branched without a creation commit
    assert "creates another version; begin the branch with a creation commit" in err
    clone("commit", "-q", "--allow-empty", "-m", "Create", "--trailer", "Promptgit-Created: v1.6")
    assert "creates another version" in clone.rejected("work:refs/heads/v1.5")
    clone("checkout", "-q", "--orphan", "fresh")
    clone("commit", "-q", "-m", "Create", "--trailer", "Promptgit-Created: v1.5")
    assert "only a new prompt starts without a source" in clone.rejected("fresh:refs/heads/v1.5")
    assert "not a promptgit ref" in clone.rejected("work:refs/heads/v01.5")


def test_trailer_or_merge_commits_on_a_draft(clone: Clone) -> None:
    clone("checkout", "-q", "-B", "v1.0", "origin/v1.0")
    (clone.path / "prompt.yaml").write_text(prompt_text("Hi"))
    clone("commit", "-q", "-am", "graft", "--trailer", "Promptgit-Created: v1.0")
    assert "carries a Promptgit-Created trailer: only promptgit writes those" in clone.rejected("v1.0")
    clone("reset", "-q", "--hard", "origin/v1.0")
    clone("checkout", "-q", "-b", "side")
    clone("commit", "-q", "--allow-empty", "-m", "side")
    clone("checkout", "-q", "v1.0")
    clone("commit", "-q", "--allow-empty", "-m", "main")
    clone("merge", "-q", "--no-edit", "side")
    assert "is a merge: a version is a line of revisions" in clone.rejected("v1.0")


def test_a_push_mixing_valid_and_invalid_updates_lands_nothing(clone: Clone) -> None:
    clone.commit("v1.0", prompt_text("Hi"), "a fine edit")
    for atomic in (True, False):
        err = clone.rejected("v1.0", "origin/v1.0:refs/heads/feature", atomic=atomic)
        assert "refs/heads/feature: not a promptgit ref" in err


def test_an_editor_cannot_release_over_a_push(
    clone: Clone, greeting: Store, actor: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)
    monkeypatch.setenv("PROMPTGIT_ROLE", "editor")  # what `promptgit serve` sets for an editor's token
    clone("fetch", "-q")
    rev = clone("rev-parse", "origin/v1.0").strip()
    release = clone.release_by_hand("v1.0", rev)
    err = clone.rejected(*release)
    assert "promoting to PROD needs role 'releaser' (you have 'editor')" in err


# --- the re-check with refs locked ------------------------------------------------


def test_reference_transaction_refuses_when_a_ref_read_has_changed(greeting: Store, actor: Actor) -> None:
    """pre-receive cannot lock what it reads: if dev moved between its check and
    the update, the installed shim (sh and awk, run with the refs locked) refuses."""
    repo = greeting.path / "greeting.git"
    shim = repo / "hooks" / "reference-transaction"
    new = "1" * 40
    update = f"{'0' * 40} {new} refs/heads/v1.1\n"

    def run(state: str = "prepared") -> subprocess.CompletedProcess[str]:
        # The shim's $PPID is this test's process: it plays receive-pack.
        return subprocess.run([str(shim), state], cwd=repo, input=update, capture_output=True, text=True)

    assert run().returncode == 0  # no record: not a push pre-receive checked
    receive._record(receive._state(str(repo), str(os.getpid())), refs(repo), ["refs/heads/v1.1"])
    assert run().returncode == 0  # nothing changed since: the write lock is now held ...
    assert (repo / "promptgit" / "write.lock").read_text().split()[0] == str(os.getpid())
    assert run("committed").returncode == 0  # ... until the refs have landed
    assert not (repo / "promptgit" / "write.lock").exists()
    greeting.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hi")}, "meanwhile", actor=actor)
    out = run()
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        "promptgit: refs/heads/dev changed while this push was being checked",
        "promptgit: refs/heads/v1.0 changed while this push was being checked",
        "promptgit: push rejected: another update landed first; fetch and push again",
    ]
    assert not (repo / "promptgit" / "write.lock").exists()  # a refusal lets go of the lock
    # a ref that appeared, or disappeared, since counts too
    receive._record(receive._state(str(repo), str(os.getpid())), refs(repo), ["refs/heads/v1.1"])
    git(repo, "update-ref", "refs/heads/v1.7", git(repo, "rev-parse", "v1.0").strip())
    assert "refs/heads/v1.7 changed" in run().stderr


def test_a_creation_commit_cannot_forge_a_stage_history(clone: Clone, greeting: Store, actor: Actor) -> None:
    """A creation commit carrying deployment trailers could pose as a tst deployment
    once tst's first deployment sits on it (review finding): refused at the push."""
    clone("fetch", "-q")
    base = clone("rev-parse", "origin/v1.0").strip()
    tree = clone("rev-parse", f"{base}^{{tree}}").strip()
    forged = clone("commit-tree", tree, "-p", base, "-m", "Create v1.1\n\nPromptgit-Created: v1.1\n"
                   f"Promptgit-From: v1.0\nPromptgit-Action: promote\nPromptgit-Version: v1.0\nPromptgit-Revision: {base}").strip()  # fmt: skip
    err = clone.rejected(f"{forged}:refs/heads/v1.1")
    assert "also carries Promptgit-Action, Promptgit-Revision, Promptgit-Version" in err


def test_a_stage_log_ends_at_its_first_deployment(greeting: Store, actor: Actor) -> None:
    """Even if a revision's message looked like a deployment, the log stops at the
    stage's first deployment (whose only parent is that revision)."""
    from promptgit import history
    from promptgit._git import Repo

    repo = Repo(str(greeting.path / "greeting.git"))
    greeting.promote("greeting", "v1.0", actor=actor)
    assert [d.action for d in history.stage_log(repo, "tst")] == ["promote"]
    assert history.versions_in_log(repo, "tst") == {history.Version(1, 0)}


def test_a_tag_for_a_number_without_a_draft(clone: Clone, greeting: Store, actor: Actor) -> None:
    """A retired (or never used) number cannot be released by pushing a tag and a
    prod deployment of another version's revision (review finding)."""
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.new_version("greeting", "v1.0", actor=actor)
    greeting.rollback("greeting", "v1.0", stage="dev", actor=actor)
    greeting.delete("greeting", "v1.1", actor=actor)  # v1.1 is retired
    clone("fetch", "-q")
    rev = clone("rev-parse", "origin/v1.0").strip()
    release = clone.release_by_hand("v1.1", rev)
    err = clone.rejected(*release[:2])  # the branch was deleted long ago
    assert "v1.1 is not a draft, so it cannot be released" in err


def test_a_release_needs_an_atomic_push(clone: Clone, greeting: Store, actor: Actor) -> None:
    """Without --atomic git lands refs one by one; a release's refs depend on each other."""
    greeting.promote("greeting", "v1.0", actor=actor)
    clone("fetch", "-q")
    rev = clone("rev-parse", "origin/v1.0").strip()
    release = clone.release_by_hand("v1.0", rev)
    before = refs(clone.remote)
    objects = snapshot(clone.remote / "objects")
    out = clone.push(*release, atomic=False)
    assert out.returncode != 0
    # refused by pre-receive, so the pusher reads why and nothing lands, not even objects
    assert (
        "remote: promptgit: these refs depend on each other: push them together with 'git push --atomic'"
        in out.stderr
    )
    assert refs(clone.remote) == before
    assert snapshot(clone.remote / "objects") == objects
    assert "remote: promptgit: finished" not in clone.push(*release, atomic=True).stderr
    assert greeting.version("greeting", "v1.0").stage == "PROD"


def test_deleting_a_draft_dev_has_not_recorded(greeting: Store, actor: Actor) -> None:
    """A draft whose create deployment is not in dev's log yet (its push is still
    being recorded) cannot be deleted: its number would not be retired."""
    from promptgit.errors import RuleViolation

    repo = greeting.path / "greeting.git"
    base = git(repo, "rev-parse", "v1.0").strip()
    tree = git(repo, "rev-parse", "v1.0^{tree}").strip()
    c = subprocess.run(["git", "-C", str(repo), "commit-tree", tree, "-p", base, "-m",
                        "Create v1.5\n\nPromptgit-Created: v1.5\nPromptgit-From: v1.0"],
                       capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    git(repo, "update-ref", "refs/heads/v1.5", c)  # as if its push had landed, before post-receive
    state = repo / "promptgit" / f"push-{os.getpid()}.pushed"  # ... and its receive-pack still runs
    state.parent.mkdir(exist_ok=True)
    state.write_text("refs/heads/v1.5\n")
    with pytest.raises(RuleViolation, match="v1.5 is not in dev's log yet"):
        greeting.delete("greeting", "v1.5", actor=actor)
    # once no push is landing it (a crash cut it short), delete finishes its creation
    # first, so its number is retired, and then the usual rules apply
    state.unlink()
    with pytest.raises(RuleViolation, match="v1.5 is the current DEV version"):
        greeting.delete("greeting", "v1.5", actor=actor)
    assert greeting.get("greeting", "dev").version == "v1.5"
    greeting.rollback("greeting", "v1.0", stage="dev", actor=actor)
    greeting.delete("greeting", "v1.5", actor=actor)
    assert "v1.5" not in greeting.version_ids("greeting")


def test_a_symlinked_prompt_yaml_is_refused(clone: Clone, greeting: Store) -> None:
    """A prompt.yaml committed as a symbolic link (mode 120000) would make dev follow
    a path on the server's disk: only regular files are content."""
    clone("checkout", "-q", "-b", "v1.0", "origin/v1.0")
    (clone.path / "prompt.yaml").unlink()
    (clone.path / "prompt.yaml").symlink_to("/etc/passwd")
    clone("add", "prompt.yaml")
    clone("commit", "-q", "-m", "a link")
    err = clone.rejected("v1.0")
    assert "prompt.yaml is a symbolic link: commit it as a regular file" in err


def test_a_push_cannot_hijack_a_half_landed_release(clone: Clone, greeting: Store, actor: Actor) -> None:
    """prod serves v1.0 but its tag has not landed (a crash): the release is a release
    for reads, and a push that edits the draft is refused until it is finished."""
    greeting.promote("greeting", "v1.0", actor=actor)
    repo = greeting.path / "greeting.git"
    tip = git(repo, "rev-parse", "v1.0").strip()
    tst = git(repo, "rev-parse", "tst").strip()
    message = f"Promote v1.0 to prod\n\nPromptgit-Action: promote\nPromptgit-Version: v1.0\nPromptgit-Revision: {tip}\n"
    deploy = subprocess.run(["git", "-C", str(repo), "commit-tree", f"{tip}^{{tree}}", "-p", tip, "-m", message],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    git(repo, "update-ref", "refs/heads/prod", deploy)  # as if the release stopped after prod
    assert git(repo, "rev-parse", "tst").strip() == tst
    assert greeting.version("greeting", "v1.0").stage == "PROD"  # reads answer from prod's log
    clone.commit("v1.0", prompt_text("Hijack"), "sneak in")
    assert "v1.0 is released and immutable: prod serves it" in clone.rejected("v1.0")
    greeting.finish_releases("greeting", actor=actor)
    assert git(repo, "tag", "--list").split() == ["v1.0"]
    assert "refs/heads/v1.0" not in refs(repo)
