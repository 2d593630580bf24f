"""Lean start-up: what read commands, the hook client and the application client
import (modules, never times)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import settle

from promptgit import Actor, Store

ADMIN = Actor("Owner", "owner@example.com", "admin")

# Loaded only by what writes, decides rules, runs tests, serves or renders.
NOT_FOR_READS = {
    "promptgit.operations",
    "promptgit.lifecycle",
    "promptgit.policy",
    "promptgit.prompt_tests",
    "promptgit.tokens",
    "promptgit.hooks",
    "promptgit.store",
    "promptgit.bounded",
    "promptgit.server",
    "jinja2",
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic",
    "httpx",
    "http.client",
    "urllib.request",
}

PROBE = """
import runpy, sys, json
sys.argv = ["promptgit", *json.loads(sys.argv[1])]
try:
    runpy.run_module("promptgit", run_name="__main__")
except SystemExit:
    pass
print("\\nMODULES " + json.dumps(sorted(sys.modules)))
"""


def imported(*args: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.rsplit("MODULES ", 1)[1]))


def loaded(modules: set[str], names: set[str]) -> set[str]:
    return {m for m in modules if m in names or any(m.startswith(n + ".") for n in names)}


@pytest.mark.parametrize(
    "command",
    [
        ["show", "greeting", "--json"],
        ["show", "greeting@dev"],
        ["versions", "greeting", "--json"],
        ["list", "--json"],
        ["log", "greeting@dev", "--json"],
    ],
)
def test_a_read_command_loads_no_writes_rules_tests_or_server(greeting: Store, command: list[str]) -> None:
    modules = imported("--store", str(greeting.path), *command)
    assert "promptgit.reads" in modules  # it did read
    assert loaded(modules, NOT_FOR_READS) == set()


def test_a_write_command_still_loads_what_it_needs(greeting: Store) -> None:
    modules = imported("--store", str(greeting.path), "promote", "greeting@v1.0")
    assert {"promptgit.operations", "promptgit.policy"} <= modules


def test_help_loads_neither_the_store_nor_pygit2() -> None:
    modules = imported("--help")
    assert loaded(modules, {"pygit2", "promptgit.reads", "promptgit._git", "yaml"}) == set()


def test_the_application_client_loads_no_store_server_or_templates() -> None:
    code = "import sys, json; from promptgit import Client; print(json.dumps(sorted(sys.modules)))"
    modules = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                            check=True).stdout))  # fmt: skip
    assert (
        loaded(modules, {"pygit2", "jinja2", "fastapi", "yaml", "promptgit.store", "promptgit.reads"})
        == set()
    )


def test_a_warm_listing_opens_no_repository(greeting: Store) -> None:
    """Once the index keeps the listing for the stamps of every prompt's (settled) ref
    files (answers.py), `list` reads two stamps a prompt and prints it: neither
    libgit2 nor the reads are loaded."""
    greeting.create("team/faq", {"prompt.yaml": "template: Hi\n"}, "first", actor=ADMIN)
    settle(greeting)
    args = ("--store", str(greeting.path), "list", "--json")
    assert "pygit2" in imported(*args)  # it read the deployments
    warm = imported(*args)
    assert loaded(warm, {"pygit2", "promptgit.reads", "promptgit.model", "promptgit._git", "yaml"}) == set()


def test_a_warm_show_parses_no_yaml(greeting: Store) -> None:
    """prompt.yaml was validated when written: once the index has parsed these bytes,
    `show` takes the mapping from it and loads no YAML parser."""
    cold = imported("--store", str(greeting.path), "show", "greeting", "--json")
    assert "yaml" in cold  # nothing remembered yet: it parsed
    assert loaded(imported("--store", str(greeting.path), "show", "greeting", "--json"), {"yaml"}) == set()


@pytest.mark.parametrize("command", [["show", "greeting", "--json"], ["versions", "greeting"]])
def test_a_read_the_index_holds_the_answer_to_loads_not_even_libgit2(
    greeting: Store, command: list[str]
) -> None:
    """Once the index keeps the answer for the prompt's refs as they read now
    (answers.py), the same command prints it without reading the prompt."""
    args = ("--store", str(greeting.path), *command)
    assert "pygit2" in imported(*args)  # nothing kept yet: it read
    warm = imported(*args)
    assert loaded(warm, {"pygit2", "promptgit.reads", "promptgit.model", "promptgit._git", "yaml"}) == set()
    assert "promptgit.answers" in warm
