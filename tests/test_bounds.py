"""Hostile content is refused cleanly, or runs within bounded time and memory.

Each attack goes through the library functions that meet it: content.check_files /
parse_prompt / parse_tests at write, push and read time, Prompt.render in
process, and bounded.render / bounded.run_tests in a worker process with a
deadline. Attacks that could hang run under `guard`, a hang guard (generous, not
a timing assertion): a regression fails the test instead of stalling the suite.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from promptgit import config, content
from promptgit.errors import InvalidContent

T = TypeVar("T")
HANG = 120.0  # seconds: far above any honest run; only a hang reaches it


def guard(fn: Callable[[], T], seconds: float = HANG) -> T:
    """Run fn in a daemon thread; fail (rather than hang) if it never returns."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # re-raised in the test's thread
            box["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still running after {seconds:g} s: a hang, not a bounded refusal")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def refused(fn: Callable[[], object], error: type[Exception]) -> Exception:
    with pytest.raises(error) as info:
        guard(fn)
    return info.value


# --- YAML: aliases, depth, numbers -------------------------------------------------


def laughs(levels: int = 9, key: str = "parameters") -> str:
    """Billion laughs: each anchor lists the previous one nine times (9**levels nodes)."""
    lines = [f"{key}:", "  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


BOMB_PROMPT = laughs() + "template: hi\n"


def test_billion_laughs_is_refused_at_write_push_and_read_time() -> None:
    for parse in (
        lambda: content.parse_prompt(BOMB_PROMPT),
        lambda: content.parse_prompt(BOMB_PROMPT, templates=False),  # reading a stored revision
        lambda: content.check_files({"prompt.yaml": BOMB_PROMPT.encode()}),  # pre-receive
    ):
        e = refused(parse, InvalidContent)
        assert isinstance(e, InvalidContent) and e.file == "prompt.yaml" and e.line == 6
        assert e.problem == "aliases repeat over 10,000 nodes, the limit: write the values out, or alias less"


def test_a_few_aliases_are_fine() -> None:
    text = (
        "parameters:\n  base: &b {temperature: 0.2}\n  copy: *b\n  merged: {<<: *b, top_p: 1}\ntemplate: hi\n"
    )
    params = content.parse_prompt(text)["parameters"]
    assert params["copy"] == {"temperature": 0.2} and params["merged"] == {"temperature": 0.2, "top_p": 1}


@pytest.mark.parametrize(
    "text",
    ["parameters: {a: &a [*a]}\ntemplate: hi\n", "parameters:\n  a: &a\n    b: *a\ntemplate: hi\n"],
)
def test_a_recursive_alias_is_refused(text: str) -> None:
    for templates in (True, False):
        e = refused(lambda t=templates: content.parse_prompt(text, templates=t), InvalidContent)
        assert isinstance(e, InvalidContent)
        assert e.problem == "alias *a is used inside its own anchor (a loop): write the value out"


def test_billion_laughs_in_test_vars_and_store_config_is_refused() -> None:
    tests = "cases:\n  - name: bomb\n    vars:\n" + laughs().replace("\n  ", "\n        ").replace(
        "parameters:", "      x:"
    )
    e = refused(lambda: content.parse_tests(tests), InvalidContent)
    assert isinstance(e, InvalidContent) and e.file == "tests.yaml"
    assert "over 10,000 nodes, the limit" in e.problem
    e = refused(lambda: config.parse("version: 1\n" + laughs(key="environments")), InvalidContent)
    assert isinstance(e, InvalidContent) and e.file == "promptgit.yaml"
    assert "over 10,000 nodes, the limit" in e.problem


@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_deep_nesting_is_refused_not_a_crash(opener: str) -> None:
    # 100,000 levels crashed the process (libyaml's composer recursed in C: a segfault)
    depth = 100_000
    if opener == "- ":  # a block sequence of sequences: "- - - x"
        text = "parameters:\n  a:\n    " + opener * depth + "x\ntemplate: hi\n"
    else:
        closer = {"[": "]", "{a: ": "}"}[opener]
        text = "parameters: {a: " + opener * depth + "1" + closer * depth + "}\ntemplate: hi\n"
    e = refused(lambda: content.parse_prompt(text, templates=False), InvalidContent)
    assert isinstance(e, InvalidContent) and e.line is not None
    assert e.problem == "nests deeper than 32 levels, the limit: flatten the structure"


@pytest.mark.parametrize(
    "value", ["1" * 100_000, "0x" + "f" * 100_000, '!!int "' + "1" * 5000 + '"', "1" * 101, "1." + "5" * 200]
)
def test_a_huge_number_is_refused(value: str) -> None:
    text = f"parameters:\n  seed: {value}\ntemplate: hi\n"
    e = refused(lambda: content.parse_prompt(text), InvalidContent)
    assert isinstance(e, InvalidContent) and e.line == 2
    assert e.problem.startswith("a number of ")
    assert e.problem.endswith(" characters is over the limit of 100: quote it to make it a string")


def test_a_value_yaml_cannot_build_is_invalid_content() -> None:
    e = refused(lambda: content.parse_prompt("parameters: {day: 2024-02-30}\ntemplate: hi\n"), InvalidContent)
    assert isinstance(e, InvalidContent)
    assert e.problem == "a value cannot be read: day is out of range for month; fix the value"


def test_numbers_and_nesting_within_the_limits_are_fine() -> None:
    text = "parameters: {seed: " + "9" * 100 + ", deep: " + "[" * 30 + "1" + "]" * 30 + "}\ntemplate: hi\n"
    params = content.parse_prompt(text)["parameters"]
    assert params["seed"] == int("9" * 100)
