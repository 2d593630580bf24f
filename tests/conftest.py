"""Shared fixtures: a real store in tmp_path, isolated from the developer's git config."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from promptgit import Actor, Store

PROMPT = """\
description: Greets a customer by name
variables: [name]
template: |
  Hello {{ name }}, how can I help?
"""


def prompt_text(greeting: str = "Hello") -> str:
    return PROMPT.replace("Hello", greeting)


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer config can change a result: fresh HOME, no system config."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Author")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "author@example.com")
    monkeypatch.delenv("PROMPTGIT_STORE", raising=False)
    monkeypatch.setenv("TMPDIR", str(home))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.init(tmp_path / "prompts")


@pytest.fixture
def actor() -> Actor:
    return Actor("Ada Lovelace", "ada@example.com")


@pytest.fixture
def greeting(store: Store, actor: Actor) -> Store:
    """A store holding prompt 'greeting' at v1.0, a DEV draft."""
    store.create("greeting", {"prompt.yaml": PROMPT}, "first draft", actor=actor)
    return store


def git(repo: Path | str, *args: str, check: bool = True) -> str:
    """Run the real git binary and return its stdout."""
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def refs(repo: Path | str) -> dict[str, str]:
    """Every ref of a repository, as the git binary sees it."""
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ", 1) for line in out.splitlines())


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root with its bytes: equal snapshots mean nothing changed.
    The derived-facts index (a cache that reads extend) is left out."""
    files = {}
    for dirpath, dirs, names in os.walk(root):
        if Path(dirpath).name == ".promptgit":
            dirs[:] = [d for d in dirs if d != "cache"]
        for name in names:
            path = Path(dirpath, name)
            if path.is_file():  # not the server's hook socket
                files[str(path.relative_to(root))] = path.read_bytes()
    return files


@contextmanager
def assert_unchanged(store: Store) -> Iterator[None]:
    """The block may fail, but must leave every file of the store byte for byte as it was."""
    before = snapshot(store.path)
    yield
    assert snapshot(store.path) == before


def settle(store: Store, seconds: int = -60) -> None:
    """Date every repository's ref files a minute ago, as a quiet store's are: past a
    timestamp's tick (ref_files.refs_stamp). With seconds > 0, later than now: not settled."""
    for repo in store.path.rglob("*.git"):
        for f in (repo / "refs" / "heads", repo / "packed-refs"):
            if f.exists():
                os.utime(f, ns=(time.time_ns() + seconds * 10**9,) * 2)
