"""Hostile input through every door: the CLI, the HTTP API and a push. Each attack is
refused cleanly or ends within its bounds, and one bomb never stalls the server."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from conftest import PROMPT, git, refs
from server_helpers import Server

from promptgit import Actor, Store
from promptgit.cli import cli

CPU_BOMB = (
    "template: |\n  {% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}done\n"
)
MEMORY_BOMB = (
    "template: |\n  {% set ns = namespace(x='ab') %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}"
    "{% endfor %}{{ ns.x|length }}\n"
)


def _laughs(levels: int = 9) -> str:
    lines = ['  l0: &l0 ["lol"]']
    for i in range(1, levels):
        lines.append(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    return "parameters:\n" + "\n".join(lines) + "\ntemplate: hi\n"


LAUGHS = _laughs()


@pytest.fixture
def bombs(tmp_path: Path) -> Store:
    store = Store.init(tmp_path / "prompts")
    a = Actor("Owner", "owner@example.com")
    store.create("cpu", {"prompt.yaml": CPU_BOMB}, "spins", actor=a)
    store.create("memory", {"prompt.yaml": MEMORY_BOMB}, "doubles", actor=a)
    store.create("greeting", {"prompt.yaml": PROMPT}, "fine", actor=a)
    return store


def cli_run(store: Store, *args: str, input: bytes | None = None) -> tuple[int, str]:
    out = CliRunner().invoke(cli, ["--store", str(store.path), *args], input=input)
    assert "Traceback" not in out.output
    return out.exit_code, out.output


def test_the_cli_ends_a_cpu_bomb_with_the_limit(bombs: Store) -> None:
    code, out = cli_run(bombs, "render", "cpu@dev")
    assert code == 1
    assert "error: rendering cpu@v1.0 took over 5 s, the limit: simplify the template's loops" in out


def test_the_cli_refuses_a_memory_bomb_before_it_allocates(bombs: Store) -> None:
    code, out = cli_run(bombs, "render", "memory@dev")
    assert code == 1 and "error: memory@v1.0:" in out and "the limit" in out


def test_the_cli_takes_any_variable_name_and_refuses_endless_input(bombs: Store, tmp_path: Path) -> None:
    code, out = cli_run(bombs, "render", "greeting@dev", "--var", "self=x", "--var", "name=Ada")
    assert (code, out) == (0, "Hello Ada, how can I help?\n")
    code, out = cli_run(bombs, "create", "zeros", "-f", "/dev/zero")
    assert code == 1 and "error: /dev/zero is over 1 MiB, the limit for a prompt file: shorten it" in out
    code, out = cli_run(bombs, "create", "laughs", "-f", "-", input=LAUGHS.encode())
    assert code == 1 and out.startswith("error: stdin:") and "alias" in out
    assert "laughs" not in bombs.names()


@pytest.fixture
def site(bombs: Store, tmp_path: Path) -> Iterator[tuple[Store, Server]]:
    server = Server(bombs.path, {"HOME": str(tmp_path)})
    yield bombs, server
    server.stop()


def test_one_bomb_never_stalls_the_server(site: tuple[Store, Server]) -> None:
    _store, server = site
    answers: dict[str, httpx.Response] = {}

    def bomb() -> None:
        answers["bomb"] = httpx.post(f"{server.url}/prompts/cpu/stages/dev/render", json={}, timeout=60)

    thread = threading.Thread(target=bomb)
    thread.start()
    others = []
    while thread.is_alive() and len(others) < 20:  # while the bomb runs, others are answered
        others.append(httpx.get(f"{server.url}/prompts/greeting/stages/dev", timeout=30).status_code)
        others.append(
            httpx.post(
                f"{server.url}/prompts/greeting/stages/dev/render", json={"vars": {"name": "Ada"}}, timeout=30
            ).status_code
        )
    thread.join(60)
    assert others and set(others) == {200}
    assert answers["bomb"].status_code == 422
    assert "took over 5 s, the limit" in answers["bomb"].json()["error"]["message"]
    memory = httpx.post(f"{server.url}/prompts/memory/stages/dev/render", json={}, timeout=30)
    assert memory.status_code == 422 and "the limit" in memory.json()["error"]["message"]
    odd = httpx.post(
        f"{server.url}/prompts/greeting/stages/dev/render", json={"vars": {"self": "x", "name": "A"}}
    )
    assert odd.json() == {"text": "Hello A, how can I help?\n"}


def test_content_stored_before_the_limits_is_refused_on_read_not_a_crash(site: tuple[Store, Server]) -> None:
    """A billion-laughs prompt.yaml written straight into git (no hooks) predates the
    limits: reading it is a clean error, and the server keeps serving."""
    store, server = site
    repo = store.path / "greeting.git"
    blob = subprocess.run(["git", "-C", str(repo), "hash-object", "-w", "--stdin"], input=LAUGHS,
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    tree = subprocess.run(["git", "-C", str(repo), "mktree"], input=f"100644 blob {blob}\tprompt.yaml\n",
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    tip = git(repo, "rev-parse", "v1.0").strip()
    message = f"Update dev\n\nPromptgit-Action: update\nPromptgit-Version: v1.0\nPromptgit-Revision: {tip}\n"
    bad = git(repo, "commit-tree", tree, "-p", tip, "-m", "bomb").strip()
    deploy = git(repo, "commit-tree", tree, "-p", git(repo, "rev-parse", "dev").strip(), "-p", bad,
                 "-m", message.replace(tip, bad)).strip()  # fmt: skip
    git(repo, "update-ref", "refs/heads/dev", deploy)
    got = httpx.get(f"{server.url}/prompts/greeting/stages/dev", timeout=30)
    assert got.status_code == 422 and "alias" in got.json()["error"]["message"]
    assert httpx.get(f"{server.url}/prompts/cpu/stages/dev", timeout=30).status_code == 200


def test_a_pushed_yaml_bomb_is_refused(bombs: Store, tmp_path: Path) -> None:
    repo = bombs.path / "greeting.git"
    git(tmp_path, "clone", "-q", str(repo), "w")
    w = tmp_path / "w"
    git(w, "checkout", "-q", "-b", "v1.0", "origin/v1.0")
    (w / "prompt.yaml").write_text(LAUGHS)
    git(w, "commit", "-qam", "laughs")
    before = refs(repo)
    out = subprocess.run(["git", "-C", str(w), "push", "origin", "v1.0"], capture_output=True, text=True)
    assert out.returncode != 0 and "remote: promptgit:" in out.stderr and "alias" in out.stderr
    assert refs(repo) == before
