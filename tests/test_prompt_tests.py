"""TEST: tests.yaml cases, providers (render, and a real chat-completions server on
127.0.0.1), runs recorded as git notes, and the require_tests gate."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from conftest import PROMPT, assert_unchanged, git, prompt_text

from promptgit import Actor, Store
from promptgit.cli import cli
from promptgit.config import Environment
from promptgit.errors import InvalidContent, InvalidInput, RuleViolation
from promptgit.model import Prompt
from promptgit.prompt_tests import check, run_case

TESTS = """\
cases:
  - name: greets by name
    vars: {name: Ada}
    contains: Ada
    not_contains: [sorry]
    max_chars: 100
  - name: needs a name
    vars: {}
    error: "'name' is undefined"
"""


def text_prompt(template: str = "Hello {{ name }}, how can I help?\n", **content: Any) -> Prompt:
    return Prompt("greeting", "v1.0", "0" * 40, {"template": template, **content})


RENDER = Environment("dev")


# --- assertions, one kind at a time ------------------------------------------


@pytest.mark.parametrize(
    ("case", "output", "why"),
    [
        ({"contains": "Ada"}, "Hello Ada", ""),
        ({"contains": ["Hello", "Ada"]}, "Hello Ada", ""),
        ({"contains": ["Hello", "Bob"]}, "Hello Ada", "does not contain 'Bob'; output: 'Hello Ada'"),
        ({"not_contains": "sorry"}, "Hello Ada", ""),
        (
            {"not_contains": ["x", "Ada"]},
            "Hello Ada",
            "contains 'Ada', which it must not; output: 'Hello Ada'",
        ),
        ({"equals": "Hello Ada"}, "Hello Ada", ""),
        ({"equals": "Hello Ada"}, "Hello Ada\n", "is not equal to 'Hello Ada'; output: 'Hello Ada\\n'"),
        ({"regex": r"^Hello \w+$"}, "Hello Ada", ""),
        ({"regex": r"^Bye"}, "Hello Ada", "does not match /^Bye/; output: 'Hello Ada'"),
        ({"max_chars": 9}, "Hello Ada", ""),
        ({"max_chars": 8}, "Hello Ada", "has 9 characters, more than max_chars 8"),
        ({"json": True}, '{"a": 1}', ""),
        (
            {"json": True},
            "not json",
            "is not JSON (Expecting value: line 1 column 1 (char 0)); output: 'not json'",
        ),
        ({"json": False}, "not json", ""),
        (
            {
                "json": {
                    "type": "object",
                    "required": ["answer"],
                    "properties": {"answer": {"type": "string"}},
                }
            },
            '{"answer": "yes"}',
            "",
        ),
        (
            {"json": {"type": "object", "properties": {"answer": {"type": "string"}}}},
            '{"answer": 42}',
            "does not match the JSON Schema at answer: 42 is not of type 'string'",
        ),
        (
            {"json": {"type": "object", "required": ["answer"]}},
            "{}",
            "does not match the JSON Schema at the top level: 'answer' is a required property",
        ),
    ],
)
def test_assertions(case: dict[str, Any], output: str, why: str) -> None:
    assert check(case, output) == why


def test_long_output_is_shortened_in_the_reason() -> None:
    why = check({"contains": "zzz"}, "a" * 500)
    assert why.endswith("...'") and len(why) < 260


def test_error_cases() -> None:
    p = text_prompt()
    ok = run_case(p, {"name": "n", "vars": {}, "error": "'name' is undefined"}, RENDER)
    assert ok.passed and ok.why == ""
    wrong = run_case(p, {"name": "n", "vars": {}, "error": "something else"}, RENDER)
    assert not wrong.passed
    assert (
        wrong.why.startswith("rendering failed as expected, but with ")
        and "not 'something else'" in wrong.why
    )
    rendered = run_case(p, {"name": "n", "vars": {"name": "Ada"}, "error": "x"}, RENDER)
    assert not rendered.passed and rendered.why == "expected rendering to fail with 'x', but it rendered"
    broken = run_case(p, {"name": "n", "vars": {}, "contains": "Ada"}, RENDER)
    assert not broken.passed and broken.why.startswith("rendering failed: greeting@v1.0: 'name' is undefined")


def test_chat_prompt_output_is_its_messages() -> None:
    p = Prompt("c", "v1.0", "0" * 40, {"messages": [{"role": "system", "content": "Be brief."},
                                                     {"role": "user", "content": "{{ q }}"}]})  # fmt: skip
    r = run_case(p, {"name": "n", "vars": {"q": "Hi?"}, "equals": "[system]\nBe brief.\n[user]\nHi?"}, RENDER)
    assert r.passed, r.why


@pytest.mark.parametrize(
    ("tests", "problem"),
    [
        ("cases:\n  - {name: a, contain: x}\n", "cases: item 1: unknown key 'contain'"),
        ("cases:\n  - {name: a, regex: '('}\n", "cases: item 1: regex '(' does not compile"),
        ("cases:\n  - {name: a, max_chars: -1}\n", "cases: item 1: max_chars must be"),
        ("cases:\n  - {name: a, json: {type: 5}}\n", "cases: item 1: json: not a valid JSON Schema"),
        ("cases:\n  - {name: a, vars: [1]}\n", "cases: item 1: vars must be a mapping"),
        ("cases:\n  - {name: a, contains: [1]}\n", "cases: item 1: contains must be"),
        (
            "cases:\n  - {name: a, error: x, contains: y}\n",
            "a case that expects an error has no output to check",
        ),
    ],
)
def test_bad_tests_yaml_is_refused_and_writes_nothing(
    greeting: Store, actor: Actor, tests: str, problem: str
) -> None:
    with assert_unchanged(greeting), pytest.raises(InvalidContent) as e:
        greeting.edit("greeting", "v1.0", {"prompt.yaml": PROMPT, "tests.yaml": tests}, "tests", actor=actor)
    assert e.value.file == "tests.yaml" and problem in str(e.value)


# --- runs recorded as notes ------------------------------------------------------


@pytest.fixture
def tested(greeting: Store, actor: Actor) -> Store:
    greeting.edit("greeting", "v1.0", {"prompt.yaml": PROMPT, "tests.yaml": TESTS}, "add tests", actor=actor)
    return greeting


def test_a_run_is_recorded_as_a_note_on_the_revision(tested: Store, actor: Actor) -> None:
    run = tested.test("greeting", "v1.0", actor=actor)
    assert run.passed and [c.name for c in run.cases] == ["greets by name", "needs a name"]
    assert run.env.stage == "dev"  # a DEV version runs in dev's environment
    tested.test("greeting", "dev", actor=actor)
    repo = tested.path / "greeting.git"
    note = git(repo, "notes", "--ref=promptgit-tests", "show", run.revision).splitlines()
    assert len(note) == 2
    first = json.loads(note[0])
    assert (first["passed"], first["env"], first["provider"], first["version"]) == (
        True,
        "dev",
        "render",
        "v1.0",
    )
    assert first["by"] == "Ada Lovelace <ada@example.com>"
    assert [c["name"] for c in first["cases"]] == ["greets by name", "needs a name"]
    assert "passed" in git(repo, "log", "-1", "--notes=promptgit-tests", "v1.0")
    [latest, *_] = tested.log("greeting", "v1.0")
    assert [t["passed"] for t in latest.to_json()["tests"]] == [True, True]


def test_a_failing_run_exits_1_with_the_reason(tested: Store, actor: Actor, tmp_path: Path) -> None:
    tested.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("sorry")}, "oops", actor=actor)
    result = CliRunner().invoke(cli, ["--store", str(tested.path), "test", "greeting@v1.0"])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("greeting@v1.0 revision ") and lines[0].endswith(
        " in the dev environment, provider render"
    )
    assert lines[1].split() == ["CASE", "RESULT", "TIME", "WHY"]
    assert "greets by name  FAIL" in result.stdout
    assert "contains 'sorry', which it must not; output: 'sorry Ada, how can I help?\\n'" in result.stdout
    assert lines[-1] == "1 passed, 1 failed"
    data = json.loads(
        CliRunner().invoke(cli, ["--store", str(tested.path), "test", "greeting", "--json"]).stdout
    )
    assert set(data) >= {"name", "version", "revision", "env", "provider", "passed", "cases"}
    log = CliRunner().invoke(cli, ["--store", str(tested.path), "log", "greeting@v1.0"]).stdout
    assert "[tests" in log


def test_no_tests_is_a_clear_error_and_records_nothing(greeting: Store, actor: Actor) -> None:
    with assert_unchanged(greeting), pytest.raises(InvalidInput, match="has no test cases: add a tests.yaml"):
        greeting.test("greeting", "v1.0", actor=actor)


# --- the gate -------------------------------------------------------------------


def gate(store: Store, text: str) -> None:
    (store.path / "promptgit.yaml").write_text(text)


def test_seed_loop_edit_in_tst_test_fix_test_release(tested: Store, actor: Actor) -> None:
    """The seed's daily loop with the gate on: a release needs a pass in tst's
    environment on exactly the revision being released."""
    gate(tested, "version: 1\nrequire_tests: [prod]\n")
    tested.promote("greeting", "v1.0", actor=actor)
    tested.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hi there, sorry")}, "in tst", actor=actor)
    failed = tested.test("greeting", "tst", actor=actor)
    assert not failed.passed
    with assert_unchanged(tested), pytest.raises(RuleViolation) as e:
        tested.promote("greeting", "v1.0", to="prod", actor=actor)
    assert "prod requires a passing test run of revision" in str(e.value)
    assert "in the tst environment, and there is none: run 'promptgit test greeting@v1.0 --env tst'" in str(
        e.value
    )
    tested.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hi")}, "fixed", actor=actor)
    tested.test("greeting", "v1.0", env="dev", actor=actor)  # a pass elsewhere does not count
    with pytest.raises(RuleViolation, match="prod requires a passing test run"):
        tested.promote("greeting", "v1.0", to="prod", actor=actor)
    assert tested.test("greeting", "tst", actor=actor).passed
    d = tested.promote("greeting", "v1.0", to="prod", actor=actor)
    assert d.stage == "prod"


def test_gate_on_tst_needs_a_pass_in_dev(tested: Store, actor: Actor) -> None:
    gate(tested, "require_tests: true\n")
    with pytest.raises(RuleViolation, match="tst requires a passing test run .* in the dev environment"):
        tested.promote("greeting", "v1.0", actor=actor)
    tested.test("greeting", "v1.0", actor=actor)
    assert tested.promote("greeting", "v1.0", actor=actor).stage == "tst"


def test_gate_holds_for_a_push(tested: Store, actor: Actor, tmp_path: Path) -> None:
    gate(tested, "require_tests: [prod]\n")
    tested.promote("greeting", "v1.0", actor=actor)
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(tested.path / "greeting.git"), str(work))
    rev = git(work, "rev-parse", "origin/v1.0").strip()
    message = f"Promote\n\nPromptgit-Action: promote\nPromptgit-Version: v1.0\nPromptgit-Revision: {rev}\n"
    deploy = git(work, "commit-tree", f"{rev}^{{tree}}", "-p", rev, "-m", message).strip()
    git(work, "tag", "-a", "v1.0", "-m", "Release", rev)
    import subprocess

    out = subprocess.run(
        ["git", "-C", str(work), "push", "--atomic", "origin", f"{deploy}:refs/heads/prod",
         "refs/tags/v1.0:refs/tags/v1.0", ":refs/heads/v1.0"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode != 0 and "prod requires a passing test run" in out.stderr


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("require_tests: sometimes\n", "promptgit.yaml:1: require_tests: must be true, false, or a list"),
        ("environments:\n  staging: {}\n", "environments: unknown stage 'staging'"),
        ("environments:\n  tst: {provider: openai}\n", "the openai provider needs base_url"),
        (
            "environments:\n  tst: {provider: magic}\n",
            "environments.tst.provider must be one of render, openai",
        ),
        ("environments:\n  tst: {timeout: 0}\n", "environments.tst.timeout must be a positive number"),
        ("colour: red\n", "unknown key 'colour'"),
    ],
)
def test_bad_store_config_is_a_clear_error(tested: Store, actor: Actor, text: str, problem: str) -> None:
    gate(tested, text)
    with pytest.raises(InvalidContent) as e:
        tested.test("greeting", "v1.0", actor=actor)
    assert problem in str(e.value)


# --- the openai provider against a real HTTP server on 127.0.0.1 -----------------


class ChatServer(BaseHTTPRequestHandler):
    """Speaks chat-completions; the model name picks the behaviour."""

    requests: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ChatServer.requests.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        model = body["model"]
        if self.path != "/v1/chat/completions":
            return self.reply(404, {"error": {"message": f"no route {self.path}"}})
        if model == "broken":
            return self.reply(500, {"error": {"message": "the model crashed", "type": "server_error"}})
        if model == "locked":
            return self.reply(401, {"error": {"message": "Incorrect API key provided"}})
        if model == "plain-error":
            return self.reply(503, b"upstream unavailable")
        if model == "garbage":
            return self.reply(200, b"<html>not json</html>")
        if model == "null-content":
            return self.reply(200, {"choices": [{"message": {"role": "assistant", "content": None}}]})
        if model == "trickle":  # headers at once, then one byte at a time: each read is quick
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.1)
            return None
        if model == "slow":
            time.sleep(1.5)
        if model == "bit-slow":
            time.sleep(0.2)
        answer = "ANSWER: " + body["messages"][-1]["content"]
        self.reply(200, {"choices": [{"message": {"role": "assistant", "content": answer}}]})

    def reply(self, status: int, payload: Any) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def chat_server() -> Iterator[str]:
    ChatServer.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), ChatServer)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def openai_env(url: str, model: str, **kw: Any) -> Environment:
    return Environment("tst", provider="openai", base_url=url, model=model, **kw)


def test_openai_provider_round_trip(chat_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_KEY", "sk-test-123")
    p = text_prompt(parameters={"temperature": 0.2})
    env = openai_env(chat_server, "echo", api_key_env="TEST_KEY", timeout=5)
    r = run_case(p, {"name": "n", "vars": {"name": "Ada"}, "contains": "ANSWER: Hello Ada"}, env)
    assert r.passed, r.why
    [request] = ChatServer.requests
    assert request["auth"] == "Bearer sk-test-123"
    assert request["body"] == {
        "model": "echo",
        "temperature": 0.2,
        "messages": [{"role": "user", "content": "Hello Ada, how can I help?\n"}],
    }


@pytest.mark.parametrize(
    ("model", "timeout", "why"),
    [
        ("broken", 5, "/v1/chat/completions answered 500: the model crashed"),
        ("locked", 5, "answered 401: Incorrect API key provided"),
        ("plain-error", 5, "answered 503: upstream unavailable"),
        ("garbage", 5, "answered something that is not a chat completion: '<html>not json</html>'"),
        ("slow", 0.3, "no answer from http://127.0.0.1:"),
        ("trickle", 0.5, "no answer from http://127.0.0.1:"),
        ("null-content", 5, "answered something that is not a chat completion"),
    ],
)
def test_openai_provider_failures_are_case_errors(
    chat_server: str, model: str, timeout: float, why: str
) -> None:
    r = run_case(
        text_prompt(), {"name": "n", "vars": {"name": "Ada"}}, openai_env(chat_server, model, timeout=timeout)
    )
    assert not r.passed
    assert r.why.startswith("provider error: ") and why in r.why
    if model in ("slow", "trickle"):
        assert r.why.endswith(f"within {timeout:g} s") and r.ms < 1400  # a whole-call deadline


def test_openai_provider_slow_but_in_time(chat_server: str) -> None:
    r = run_case(
        text_prompt(), {"name": "n", "vars": {"name": "Ada"}}, openai_env(chat_server, "bit-slow", timeout=5)
    )
    assert r.passed, r.why


def test_openai_provider_unreachable_and_missing_key(
    chat_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nobody listens there
    r = run_case(
        text_prompt(), {"name": "n", "vars": {"name": "A"}}, openai_env(f"http://127.0.0.1:{port}/v1", "m")
    )
    assert r.why.startswith(f"provider error: cannot reach http://127.0.0.1:{port}/v1/chat/completions")
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    r = run_case(
        text_prompt(),
        {"name": "n", "vars": {"name": "A"}},
        openai_env(chat_server, "echo", api_key_env="NO_SUCH_KEY"),
    )
    assert (
        r.why == "provider error: the environment variable NO_SUCH_KEY is not set: export the API key in it"
    )
    r = run_case(text_prompt(), {"name": "n", "vars": {"name": "A"}}, openai_env(chat_server, None))  # type: ignore[arg-type]
    assert "no model: set model in prompt.yaml" in r.why
    assert ChatServer.requests == []


def test_stage_environment_from_store_config(
    tested: Store, actor: Actor, chat_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`test NAME@tst` uses tst's environment from promptgit.yaml; the key is read
    from the variable it names and written nowhere."""
    monkeypatch.setenv("PG_TEST_KEY", "sk-secret-999")
    gate(tested, f"environments:\n  tst:\n    provider: openai\n    base_url: {chat_server}\n"
                 "    model: echo\n    api_key_env: PG_TEST_KEY\n    timeout: 5\n")  # fmt: skip
    tested.promote("greeting", "v1.0", actor=actor)
    run = tested.test("greeting", "tst", actor=actor)
    assert (run.env.stage, run.env.provider, run.model) == ("tst", "openai", "echo")
    assert run.cases[0].passed and run.cases[0].output == "ANSWER: Hello Ada, how can I help?\n"
    assert run.cases[1].passed  # the error case never reaches the model
    assert len(ChatServer.requests) == 1
    repo = tested.path / "greeting.git"
    assert "sk-secret-999" not in git(repo, "log", "--notes=promptgit-tests", "--all", "-p")
    assert "sk-secret-999" not in (tested.path / "promptgit.yaml").read_text()


def test_a_case_that_cannot_be_checked_fails_without_stopping_the_others() -> None:
    from promptgit.prompt_tests import run

    tests = {"cases": [
        {"name": "remote schema", "vars": {"name": "A"}, "json": {"$ref": "http://127.0.0.1:9/schema.json"}},
        {"name": "plain", "vars": {"name": "A"}, "contains": "A"},
    ]}  # fmt: skip
    p = text_prompt(template='{"who": "{{ name }}"}')
    result = run(p, tests, RENDER, "me", "now")
    assert [c.passed for c in result.cases] == [False, True]
    assert result.cases[0].why.startswith("could not check the output: ")


def test_vars_names_must_be_strings(greeting: Store, actor: Actor) -> None:
    with assert_unchanged(greeting), pytest.raises(InvalidContent, match="whose names are strings"):
        greeting.edit("greeting", "v1.0", {"prompt.yaml": PROMPT, "tests.yaml": "cases:\n  - {name: a, vars: {1: x}}\n"},
                      "t", actor=actor)  # fmt: skip
