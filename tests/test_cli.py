"""Every command through Click's CliRunner: exit codes, exact messages, JSON contracts."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from conftest import PROMPT, prompt_text, snapshot

from promptgit.cli import cli


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run promptgit in tmp_path with the default store ./prompts."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prompt.yaml").write_text(PROMPT)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def fails(result: Result, message: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output + result.stderr


@pytest.fixture
def seeded(run, tmp_path: Path):
    ok(run("init"))
    ok(run("create", "greeting", "-f", "prompt.yaml", "-m", "first draft"))
    return run


def write(tmp_path: Path, text: str, name: str = "prompt.yaml") -> str:
    (tmp_path / name).write_text(text)
    return name


def test_init_and_create(run) -> None:
    assert ok(run("init")) == "store ready at prompts\n"
    assert ok(run("init")) == "store ready at prompts\n"  # idempotent
    out = ok(run("create", "greeting", "-f", "prompt.yaml", "-m", "first draft", "--name", "warm welcome"))
    assert out.startswith("created greeting@v1.0 'warm welcome' (") and out.endswith("), served by dev\n")
    assert Path("prompts/greeting.git/HEAD").is_file()


def test_commands_without_a_store_say_how_to_make_one(run) -> None:
    fails(run("list"), "error: no promptgit store at prompts: run 'promptgit init' there")
    fails(run("create", "greeting", "-f", "prompt.yaml"), "run 'promptgit init'")


def test_store_option_and_env(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok(run("--store", "elsewhere", "init"))
    ok(run("--store", "elsewhere", "create", "a", "-f", "prompt.yaml"))
    monkeypatch.setenv("PROMPTGIT_STORE", str(tmp_path / "elsewhere"))
    assert json.loads(ok(run("list", "--json"))) == [{"name": "a", "dev": "v1.0", "tst": None, "prod": None}]


def test_create_errors(seeded, tmp_path: Path) -> None:
    fails(seeded("create", "greeting", "-f", "prompt.yaml"), "error: prompt 'greeting' already exists")
    fails(seeded("create", "../x", "-f", "prompt.yaml"), "error: invalid prompt name '../x'")
    fails(seeded("create", "b", "-f", "missing.yaml"), "error: No such file or directory missing.yaml")
    write(tmp_path, "template: [unclosed\n", "bad.yaml")
    fails(seeded("create", "b", "-f", "bad.yaml"), "error: bad.yaml:2: not valid YAML")
    fails(seeded("create", "b"), "Missing option '-f'", code=2)
    assert not Path("prompts/b.git").exists()


def test_edit_from_file_stdin_and_folder(seeded, tmp_path: Path) -> None:
    write(tmp_path, prompt_text("Hi"))
    out = ok(seeded("edit", "greeting@v1.0", "-f", "prompt.yaml", "-m", "tighten tone"))
    assert out.startswith("saved greeting@v1.0 as ") and out.endswith("; dev updated\n")
    out = ok(seeded("edit", "greeting@1.0", "-f", "-", "-m", "from stdin", input=prompt_text("Hey")))
    assert "saved greeting@v1.0" in out
    folder = tmp_path / "both"
    folder.mkdir()
    (folder / "prompt.yaml").write_text(prompt_text("Yo"))
    (folder / "tests.yaml").write_text("cases:\n  - name: greets\n")
    data = json.loads(ok(seeded("edit", "greeting", "-f", str(folder), "--json")))
    assert data["changed"] is True and data["deployed_to"] == ["dev"]
    shown = json.loads(ok(seeded("show", "greeting@v1.0", "--json")))
    assert shown["tests"] == "cases:\n  - name: greets\n"
    assert [e["summary"] for e in json.loads(ok(seeded("log", "greeting@v1.0", "--json")))] == [
        "Edit v1.0",
        "from stdin",
        "tighten tone",
        "first draft",
    ]


def test_edit_unchanged_and_errors(seeded, tmp_path: Path) -> None:
    assert ok(seeded("edit", "greeting@v1.0", "-f", "prompt.yaml")) == (
        "greeting@v1.0 unchanged: the content is the same as its tip\n"
    )
    fails(seeded("edit", "greeting@v1.0"), "give the content with -f FILE", code=2)
    fails(
        seeded("edit", "greeting@v9.9", "-f", "prompt.yaml"), "error: prompt 'greeting' has no version v9.9"
    )
    write(tmp_path, "template: Hello {{ name }}\nvariables: [nam]\n", "bad.yaml")
    fails(seeded("edit", "greeting@v1.0", "-f", "bad.yaml"), "error: bad.yaml:2: variables:")
    fails(
        seeded("edit", "greeting@v1.0", "-f", "prompt.yaml", "--expect", "0000000"),
        "error: prompt 'greeting' has no revision 0000000 (given as --expect / If-Match)",
    )


def test_edit_conflict_keeps_text(seeded, tmp_path: Path) -> None:
    base = json.loads(ok(seeded("show", "greeting@v1.0", "--json")))["revision"]
    write(tmp_path, prompt_text("Hi"))
    ok(seeded("edit", "greeting@v1.0", "-f", "prompt.yaml"))
    write(tmp_path, prompt_text("Hey"))
    before = snapshot(Path("prompts"))
    result = seeded("edit", "greeting@v1.0", "-f", "prompt.yaml", "--expect", base[:8])
    fails(result, "was changed by someone else (it is now at revision ")
    saved = result.stderr.split("your text is saved in ")[1].split(":")[0]
    assert Path(saved).read_text() == prompt_text("Hey")
    assert snapshot(Path("prompts")) == before


def test_edit_opens_the_editor_on_a_terminal(seeded, tmp_path: Path) -> None:
    """A real terminal (a pty) and a real $EDITOR: sed edits the file in place."""
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    env = {**os.environ, "EDITOR": "sed -i s/Hello/Howdy/", "VISUAL": ""}
    code = "from promptgit.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "edit", "greeting@v1.0", "-m", "in editor"],
        stdin=slave,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    os.close(slave)
    os.close(master)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("saved greeting@v1.0 as ")
    shown = json.loads(ok(seeded("show", "greeting@v1.0", "--json")))
    assert shown["source"] == PROMPT.replace("Hello", "Howdy")


def test_the_whole_loop_with_json(seeded, tmp_path: Path) -> None:
    d = json.loads(ok(seeded("promote", "greeting@v1.0", "--json")))
    assert (d["stage"], d["action"], d["version"]) == ("tst", "promote", "v1.0")
    assert ok(seeded("promote", "greeting@v1.0")).startswith("prod now serves greeting@v1.0 (")
    v = json.loads(ok(seeded("new-version", "greeting", "--from", "v1.0", "--json")))
    assert v["version"] == "v1.1" and v["stage"] == "DEV" and v["current_in"] == ["dev"]
    assert json.loads(ok(seeded("new-version", "greeting", "--major", "--json")))["version"] == "v2.0"
    assert "created greeting@v3.7" in ok(seeded("new-version", "greeting", "--as", "v3.7"))
    fails(seeded("new-version", "greeting", "--as", "v3.7"), "error: prompt 'greeting' version v3.7 is taken")
    fails(seeded("new-version", "greeting", "--as", "v3.8", "--major"), "exclude each other", code=2)
    versions = json.loads(ok(seeded("versions", "greeting", "--json")))
    assert [(x["version"], x["stage"], x["current_in"]) for x in versions] == [
        ("v1.0", "PROD", ["tst", "prod"]),
        ("v1.1", "DEV", []),
        ("v2.0", "DEV", []),
        ("v3.7", "DEV", ["dev"]),
    ]
    for key in ("revision", "created_at", "updated_at", "summary"):
        assert key in versions[0]
    listing = json.loads(ok(seeded("list", "--json")))
    assert listing == [{"name": "greeting", "dev": "v3.7", "tst": "v1.0", "prod": "v1.0"}]
    human = ok(seeded("list"))
    assert human.splitlines() == ["NAME      DEV   TST   PROD", "greeting  v3.7  v1.0  v1.0"]
    # show with no REF: prod, because something is released
    shown = json.loads(ok(seeded("show", "greeting", "--json")))
    assert set(shown) >= {"name", "version", "stage", "revision", "current_in", "content", "deployment"}
    assert shown["version"] == "v1.0" and shown["deployment"]["stage"] == "prod"
    assert shown["content"]["variables"] == ["name"]
    assert json.loads(ok(seeded("show", "greeting@v1.1", "--json")))["deployment"] is None
    log = json.loads(ok(seeded("log", "greeting@dev", "--json")))
    assert [(e["action"], e["version"]) for e in log] == [
        ("create", "v3.7"),
        ("create", "v2.0"),
        ("create", "v1.1"),
        ("create", "v1.0"),
    ]
    assert set(log[0]) >= {"deployment", "action", "version", "revision", "at", "by", "message"}
    assert log[0]["by"] == "Test Author <author@example.com>"
    # rollback and delete
    fails(
        seeded("rollback", "greeting", "--to", "v1.1"),
        "error: prod rolls back only to a release, and v1.1 is a draft",
    )
    assert (
        ok(seeded("rollback", "greeting", "--to", "v1.0"))
        == "prod already serves greeting@v1.0: nothing to do\n"
    )
    out = ok(seeded("rollback", "greeting", "--to", "v1.1", "--stage", "dev"))
    assert out.startswith("dev rolled back to greeting@v1.1 (")
    assert ok(seeded("delete", "greeting@v3.7")) == "deleted greeting@v3.7; the number v3.7 is retired\n"
    fails(
        seeded("delete", "greeting@v1.0"),
        "error: v1.0 is a release: its tag never moves and is never deleted",
    )
    fails(seeded("delete", "greeting"), "name the draft to delete, e.g. greeting@v1.2", code=2)
    fails(seeded("delete", "greeting@v1.1"), "v1.1 is the current DEV version")


def test_promote_errors(seeded) -> None:
    fails(seeded("promote", "greeting@v1.0", "--to", "prod"), "promote it to TST first")
    fails(seeded("promote", "greeting@v1.0", "--to", "dev"), "Invalid value for '--to'", code=2)
    fails(
        seeded("promote", "greeting", "--to", "prod"),
        "error: prompt 'greeting' has no version in tst to promote",
    )
    fails(seeded("promote", "nope@v1.0"), "error: no prompt named 'nope' (prompts: greeting)")


def test_render_text_and_chat(seeded, tmp_path: Path) -> None:
    assert ok(seeded("render", "greeting", "--var", "name=Ada")) == "Hello Ada, how can I help?\n"
    data = json.loads(ok(seeded("render", "greeting@dev", "--var", "name=Ada", "--json")))
    assert data == {"text": "Hello Ada, how can I help?\n"}
    fails(
        seeded("render", "greeting"),
        "error: greeting@v1.0: 'name' is undefined: give it a value (pass it with --var name=...)",
    )
    fails(seeded("render", "greeting", "--var", "oops"), "'oops': write KEY=VALUE", code=2)
    chat = "messages:\n  - {role: system, content: You help.}\n  - {role: user, content: '{{ q }}'}\n"
    write(tmp_path, chat, "chat.yaml")
    ok(seeded("create", "support/chat", "-f", "chat.yaml"))
    data = json.loads(ok(seeded("render", "support/chat", "--var", "q=Where?", "--json")))
    assert data == {
        "messages": [{"role": "system", "content": "You help."}, {"role": "user", "content": "Where?"}]
    }
    assert (
        ok(seeded("render", "support/chat", "--var", "q=Where?")) == "[system]\nYou help.\n[user]\nWhere?\n"
    )


def test_render_sandbox(seeded, tmp_path: Path) -> None:
    write(tmp_path, "template: \"{{ ''.__class__.__mro__[1].__subclasses__() }}\"\n", "evil.yaml")
    ok(seeded("create", "evil", "-f", "evil.yaml"))
    fails(seeded("render", "evil"), "error: evil@v1.0:")


def test_diff_and_show(seeded, tmp_path: Path) -> None:
    write(tmp_path, prompt_text("Hi"))
    ok(seeded("edit", "greeting", "-f", "prompt.yaml"))
    first = json.loads(ok(seeded("log", "greeting@v1.0", "--json")))[-1]["revision"]
    out = ok(seeded("diff", "greeting", first[:7], "v1.0"))
    assert "-  Hello {{ name }}, how can I help?" in out and "+  Hi {{ name }}, how can I help?" in out
    assert ok(seeded("diff", "greeting@dev", "greeting@v1.0")).startswith(
        "no difference between dev and v1.0 in prompt.yaml and tests.yaml\n"
    )
    human = ok(seeded("show", "greeting"))
    assert human.startswith("greeting@v1.0  DEV  revision ")
    assert "current in: dev" in human and "Hi {{ name }}" in human
    fails(seeded("show", "greeting@zzz"), "error: prompt 'greeting' has no version named 'zzz' (versions: ")
    fails(seeded("show", "greeting@a/b"), "error: invalid ref")
    fails(seeded("show", "greeting@prod"), "error: prompt 'greeting' has no deployment in prod yet")


def test_log_human(seeded) -> None:
    ok(seeded("promote", "greeting"))
    out = ok(seeded("log", "greeting@tst"))
    assert "promote  v1.0" in out and "Test Author <author@example.com>" in out


def test_every_command_has_help() -> None:
    runner = CliRunner()
    with click.Context(cli) as ctx:
        names = cli.list_commands(ctx)
        commands = {name: cli.get_command(ctx, name) for name in names}
    for name, command in commands.items():
        assert command is not None and command.help, f"{name} has no help text"
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output


def test_every_command_is_listed_where_it_is_loaded_from() -> None:
    """A command defined in cli_reads or cli_writes but missing from cli.READS or
    cli.WRITES would run only by luck (after another command loaded its module)."""
    import importlib

    from promptgit import cli as cli_module

    for module in ("promptgit.cli_reads", "promptgit.cli_writes"):
        importlib.import_module(module)
    defined_in = {
        name: command.callback.__module__ for name, command in cli.commands.items() if command.callback
    }
    listed = {**dict.fromkeys(cli_module.READS, "promptgit.cli_reads"),
              **dict.fromkeys(cli_module.WRITES, "promptgit.cli_writes")}  # fmt: skip
    # commands cli.py defines itself load with it; every other one is listed with its module
    assert {n: m for n, m in defined_in.items() if m != "promptgit.cli"} == listed


def test_unexpected_errors_are_one_line_and_traceback_is_opt_in(
    seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptgit import whereabouts

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(whereabouts.Whereabouts, "versions", boom)  # Store's reads too
    fails(
        seeded("versions", "greeting"), "error: unexpected RuntimeError: kaboom. This is a bug in promptgit"
    )
    with pytest.raises(RuntimeError):
        seeded("--traceback", "versions", "greeting")


def test_non_utf8_input_is_a_clear_error(seeded, tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes("template: caf\xe9\n".encode("latin-1"))
    fails(
        seeded("create", "cafe", "-f", "latin1.yaml"),
        "latin1.yaml is not UTF-8 text (byte 13): save it as UTF-8",
    )
    fails(seeded("edit", "greeting", "-f", "prompt.yaml", "--tests", "latin1.yaml"), "is not UTF-8 text")


def test_a_closed_pipe_ends_quietly(seeded, tmp_path: Path) -> None:
    """`promptgit log ... | head -1` must not print an error when head goes away."""
    import subprocess
    import sys

    for i in range(40):
        write(tmp_path, prompt_text(f"Hello {i}"))
        ok(seeded("edit", "greeting", "-f", "prompt.yaml", "-m", f"edit {i} " + "x" * 4000))
    code = "from promptgit.cli import main; main()"
    out = subprocess.run(
        f"{sys.executable} -c '{code}' log greeting@v1.0 | head -1",
        shell=True, cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert out.stdout.count("\n") == 1
    assert out.stderr == ""


def test_versions_have_names_and_descriptions(seeded) -> None:
    out = ok(seeded("new-version", "greeting", "--name", "Formal tone", "--description", "For banks."))
    assert out.startswith("created greeting@v1.1 'Formal tone' (")
    fails(seeded("new-version", "greeting", "--name", "formal TONE"),
          "error: prompt 'greeting' already has a version named 'formal TONE' (v1.1): names are unique")  # fmt: skip
    fails(seeded("new-version", "greeting", "--name", "v9.9"), "error: invalid version name 'v9.9'")
    shown = ok(seeded("show", "greeting@Formal tone"))
    assert (
        "greeting@v1.1  DEV" in shown and "name: Formal tone" in shown and "description: For banks." in shown
    )
    data = json.loads(ok(seeded("versions", "greeting", "--json")))
    assert [(v["version"], v["description"]) for v in data] == [("v1.0", ""), ("v1.1", "For banks.")]
    assert data[0]["version_name"][:2] == "20"  # named by its creation time, in UTC
    table = ok(seeded("versions", "greeting"))
    assert "NAME" in table.splitlines()[0] and "Formal tone" in table


def test_content_errors_name_the_users_own_file(seeded, tmp_path: Path) -> None:
    bad = Path("bad")
    bad.mkdir()
    (bad / "syntax.yaml").write_text("description: x\nvariables: [name]\ntemplate: |\n  Hi\n  {{ name\n")
    fails(
        seeded("edit", "greeting@v1.0", "-f", "bad/syntax.yaml"),
        "error: bad/syntax.yaml:5: template: template syntax error",
    )


def test_descriptions_and_reasons_are_bounded(seeded) -> None:
    fails(seeded("new-version", "greeting", "--description", "x" * 2001),
          "error: the description is 2,001 characters long: keep it under 2,000")  # fmt: skip
    ok(seeded("promote", "greeting@v1.0"))
    ok(seeded("promote", "greeting@v1.0", "--to", "prod"))
    ok(seeded("new-version", "greeting"))
    ok(seeded("promote", "greeting@v1.1"))
    ok(seeded("promote", "greeting@v1.1", "--to", "prod"))
    fails(seeded("deprecate", "greeting@v1.0", "-m", "y" * 501), "error: the reason is 501 characters long")
