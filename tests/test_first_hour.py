"""What a new user meets in the first hour: whose name goes on a change, what the
demo makes, what a no-op rollback says, and a command table that tells the truth."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from conftest import PROMPT, git

from promptgit import content
from promptgit.cli import cli
from promptgit.errors import InvalidContent

ROOT = Path(__file__).resolve().parent.parent
HOW_TO_SET = (
    'set yours with: git config --global user.name "Your Name" && '
    "git config --global user.email you@example.com"
)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """promptgit in tmp_path (store ./prompts), with no identity in the environment:
    only git's config can name the author."""
    monkeypatch.chdir(tmp_path)
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "prompt.yaml").write_text(PROMPT)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    assert invoke("init").exit_code == 0
    return invoke


def author(store: Path, name: str = "greeting") -> str:
    return git(store / f"{name}.git", "log", "-1", "--format=%an <%ae>", "dev").strip()


# --- identity: as git resolves it ------------------------------------------------------


def test_identity_comes_from_git_config_global_and_its_includes(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "identity.inc").write_text("[user]\n\tname = Grace Hopper\n\temail = grace@example.com\n")
    (tmp_path / "global.cfg").write_text(f"[include]\n\tpath = {tmp_path / 'identity.inc'}\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "global.cfg"))
    (Path.home() / ".gitconfig").write_text("[user]\n\tname = Not Me\n\temail = not-me@example.com\n")
    result = run("create", "greeting", "-f", "prompt.yaml")
    assert result.exit_code == 0 and result.stderr == ""
    assert author(tmp_path / "prompts") == "Grace Hopper <grace@example.com>"


def test_identity_from_xdg_config_and_author_over_user(run, tmp_path: Path) -> None:
    xdg = Path.home() / ".config" / "git"
    xdg.mkdir(parents=True)
    (xdg / "config").write_text(
        "[user]\n\tname = Ada User\n\temail = ada@example.com\n[author]\n\tname = Ada Author\n"
    )
    assert run("create", "greeting", "-f", "prompt.yaml").exit_code == 0
    assert author(tmp_path / "prompts") == "Ada Author <ada@example.com>"


def test_without_any_identity_one_warning_says_how_to_set_one(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "absent.cfg"))
    monkeypatch.setenv("USER", "ada")
    guessed = f"ada <ada@{socket.gethostname()}>"
    result = run("demo")  # many writes, one command
    assert result.exit_code == 0
    assert (
        result.stderr
        == f"warning: git names no author, so promptgit records you as {guessed}; {HOW_TO_SET}\n"
    )
    assert author(tmp_path / "prompts", "demo/greeting") == guessed
    quiet = run("list")  # a read names no author: no warning
    assert quiet.stderr == ""


# --- the demo, rollback's echo, description's rule ---------------------------------


def test_demo_help_names_what_the_demo_creates() -> None:
    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert "a new prompt, demo/greeting, in the store" in result.output
    assert "'greeting'" not in result.output


def test_a_second_demo_says_it_uses_a_new_prompt(run, tmp_path: Path) -> None:
    first = run("demo")
    assert first.stdout.startswith("$ promptgit create demo/greeting -f prompt.yaml")
    second = run("demo")
    assert second.stdout.startswith(
        "demo/greeting is there from an earlier demo, so this one walks through a new prompt, "
        "demo/greeting-1\n\n$ promptgit create demo/greeting-1 -f prompt.yaml"
    )
    third = run("demo")
    assert third.stdout.startswith(
        "demo/greeting, demo/greeting-1 are there from earlier demos, so this one walks through "
        "a new prompt, demo/greeting-2\n"
    )


def test_a_rollback_to_what_the_stage_serves_echoes_the_normalized_version(run) -> None:
    run("create", "greeting", "-f", "prompt.yaml")
    run("promote", "greeting@v1.0")
    run("promote", "greeting@v1.0")
    assert (
        run("rollback", "greeting", "--to", "1.0").stdout
        == "prod already serves greeting@v1.0: nothing to do\n"
    )
    assert (
        run("rollback", "greeting", "--to", "v1.0").stdout
        == "prod already serves greeting@v1.0: nothing to do\n"
    )


def test_description_message_and_rule_agree() -> None:
    several = "description: |\n  Greets a customer.\n  Warmly.\ntemplate: Hi\n"
    assert content.parse_prompt(several)["description"] == "Greets a customer.\nWarmly.\n"
    with pytest.raises(InvalidContent, match=r"description: must be a string of text, not int"):
        content.parse_prompt("description: 5\ntemplate: Hi\n")


# --- the README's command table -------------------------------------------------------


def _leaves(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    out: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out |= _leaves(command, f"{prefix}{name} ")
        else:
            out[f"{prefix}{name}"] = command
    return out


def test_the_readme_command_table_lists_every_command_and_its_json_truthfully() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| command | what it does |") :]
    rows = re.findall(r"^\| `promptgit ([a-z -]+?)(?= [A-Z\[]|`)(.*?)` \|", table, re.M)
    listed = {name.strip(): rest for name, rest in rows}
    commands = _leaves(cli)
    assert sorted(listed) == sorted(commands)
    for name, command in commands.items():
        has_json = any(p.name == "as_json" for p in command.params)
        assert ("[--json]" in listed[name]) == has_json, name


# --- the test suite's own progress -------------------------------------------------------


def test_pytest_progress_only_moves_forward_and_ends_at_100_percent() -> None:
    """schemathesis loaded lazily (from a fixture) added its operations to pytest's
    count mid-run: the counter went backwards and ended at 97%."""
    import os
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_schema.py", "tests/test_wire.py"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PROMPTGIT_SCHEMA_EXAMPLES": "1"},
    )  # fmt: skip
    assert out.returncode == 0, out.stdout
    collected = int(re.search(r"^collected (\d+) items", out.stdout, re.M).group(1))  # type: ignore[union-attr]
    progress = [int(p) for p in re.findall(r"\[\s*(\d+)%\]$", out.stdout, re.M)]
    assert progress == sorted(progress) and progress[-1] == 100, out.stdout
    assert re.search(rf"^=+ {collected} passed in ", out.stdout, re.M), out.stdout
