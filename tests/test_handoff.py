"""Pushes' hooks handed to `promptgit serve` (handoff.py): the same decisions and
messages as in the hook's own process, a clean fallback when no server runs, and a
refusal when a server that took the hook never answers."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import git, prompt_text
from server_helpers import Server
from test_hooks import Clone

from promptgit import Actor, Store, handoff

ADMIN = Actor("Owner", "owner@example.com", "admin")


def wait_for_socket(store: Store, present: bool = True) -> None:
    path = store.path / handoff.SOCKET
    deadline = time.monotonic() + 60
    while path.exists() != present:
        assert time.monotonic() < deadline, f"the hook socket never {'appeared' if present else 'went'}"
        time.sleep(0.05)


@pytest.fixture
def broken_promptgit(tmp_path: Path) -> dict[str, str]:
    """An environment in which a hook that imports promptgit in its own process fails:
    only a hook handed to the server (which imported it long ago) can succeed."""
    fake = tmp_path / "shadow" / "promptgit"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('the shadow promptgit')\n")
    return {**os.environ, "PYTHONPATH": str(fake.parent)}


@pytest.fixture
def served(greeting: Store) -> Iterator[Server]:
    server = Server(greeting.path)
    wait_for_socket(greeting)
    yield server
    server.stop()


def push(clone: Clone, env: dict[str, str], *refspecs: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(clone.path), "push", "--porcelain", "--atomic", "origin", *refspecs],
        capture_output=True,
        text=True,
        env=env,
    )


def test_with_a_server_running_the_hooks_run_in_it(
    greeting: Store, served: Server, tmp_path: Path, broken_promptgit: dict[str, str]
) -> None:
    clone = Clone(greeting, tmp_path / "work")
    clone.commit("v1.0", prompt_text("Handed"))
    out = push(clone, broken_promptgit, "v1.0")
    assert out.returncode == 0, out.stderr
    assert "dev now serves the tip of v1.0" in out.stderr
    assert greeting.get("greeting", "dev").source == prompt_text("Handed")


def test_without_a_server_the_hooks_run_in_their_own_process(
    greeting: Store, tmp_path: Path, broken_promptgit: dict[str, str]
) -> None:
    clone = Clone(greeting, tmp_path / "work")
    clone.commit("v1.0", prompt_text("Alone"))
    before = git(clone.remote, "rev-parse", "v1.0")
    out = push(clone, broken_promptgit, "v1.0")  # the shadow package breaks the in-process hook
    assert out.returncode != 0 and "the shadow promptgit" in out.stderr
    assert git(clone.remote, "rev-parse", "v1.0") == before
    ok = push(clone, dict(os.environ), "v1.0")
    assert ok.returncode == 0, ok.stderr


def test_a_refusal_reads_the_same_handed_over_or_not(greeting: Store, tmp_path: Path) -> None:
    greeting.promote("greeting", "v1.0", actor=ADMIN)
    greeting.promote("greeting", "v1.0", actor=ADMIN)
    clone = Clone(greeting, tmp_path / "work")
    clone.commit("prod", prompt_text("Rewrite"), "a commit on prod")

    def refusal() -> list[str]:
        out = push(clone, dict(os.environ), "prod")
        assert out.returncode != 0
        return [line for line in out.stderr.splitlines() if "promptgit:" in line]

    alone = refusal()
    server = Server(greeting.path)
    try:
        wait_for_socket(greeting)
        assert refusal() == alone
        assert any("nothing was changed" in line for line in alone)
    finally:
        server.stop()


@contextmanager
def hanging_up(path: Path) -> Iterator[None]:
    """A process listening at `path` that takes each hook handed to it and goes
    without an answer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)

    def hang_up() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(1 << 20)
            conn.close()  # gone without an answer

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        yield
    finally:
        listener.close()
        path.unlink()


def test_a_server_that_takes_the_hook_and_never_answers_refuses_the_push(
    greeting: Store, tmp_path: Path
) -> None:
    """Fail closed: a helper that accepted the hook and then died decides nothing."""
    with hanging_up(greeting.path / handoff.SOCKET):
        clone = Clone(greeting, tmp_path / "work")
        clone.commit("v1.0", prompt_text("Nobody answers"))
        before = git(clone.remote, "rev-parse", "v1.0")
        out = push(clone, dict(os.environ), "v1.0")
        assert out.returncode != 0
        assert (
            "push rejected: nothing was changed; the promptgit process it was handed to did not finish "
            "this hook" in out.stderr
        )
        assert git(clone.remote, "rev-parse", "v1.0") == before


def test_a_post_receive_nobody_finished_says_what_finishes_it(greeting: Store) -> None:
    """The push has landed: pushing the same again runs no hook, so the client names
    what does finish it (doctor --repair, or the next push or edit)."""
    import sys

    from promptgit import hooks

    path = greeting.path / handoff.SOCKET
    client = greeting.path / "greeting.git" / "hooks" / hooks.CLIENT
    with hanging_up(path):
        out = subprocess.run(
            [sys.executable, "-S", str(client), "post-receive", "12345", str(path)],
            input="", capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    assert out.returncode == 1
    assert out.stderr.startswith("promptgit: the push landed, but the promptgit process it was handed to")
    assert "'promptgit doctor --repair' on the store, or the next push or edit, finishes that" in out.stderr
    assert "push again" not in out.stderr


def test_the_helper_goes_with_its_server_and_pushes_fall_back(greeting: Store, tmp_path: Path) -> None:
    server = Server(greeting.path)
    wait_for_socket(greeting)
    server.proc.kill()  # not even a clean stop: the helper notices its parent is gone
    server.stop()
    wait_for_socket(greeting, present=False)
    clone = Clone(greeting, tmp_path / "work")
    clone.commit("v1.0", prompt_text("After the server"))
    out = push(clone, dict(os.environ), "v1.0")
    assert out.returncode == 0, out.stderr
    assert greeting.get("greeting", "dev").source == prompt_text("After the server")


def test_a_push_over_http_is_audited_as_its_token_through_the_helper(greeting: Store, tmp_path: Path) -> None:
    import base64

    from promptgit import tokens

    key = tokens.create(greeting.path, "ci-bot", "editor")
    server = Server(greeting.path)
    try:
        wait_for_socket(greeting)
        auth = "Authorization: Basic " + base64.b64encode(f"git:{key}".encode()).decode()
        work = tmp_path / "http"
        url = f"{server.url}/git/greeting.git"
        git(tmp_path, "-c", f"http.extraHeader={auth}", "clone", "-q", url, str(work))
        git(work, "checkout", "-q", "-b", "v1.0", "origin/v1.0")
        (work / "prompt.yaml").write_text(prompt_text("Over HTTP"))
        git(work, "commit", "-qam", "over http")
        git(work, "-c", f"http.extraHeader={auth}", "push", "-q", "origin", "v1.0")
    finally:
        server.stop()
    log = greeting.log("greeting", "dev")
    assert log[0].stamp.name == "ci-bot" and log[0].audited  # type: ignore[union-attr]


@pytest.fixture
def counted(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment in which every Python that starts with site-packages (so not the
    shims' `python -S` client) appends its arguments to a log: which hooks imported."""
    site = tmp_path / "counting"
    site.mkdir()
    log = tmp_path / "starts.log"
    (site / "sitecustomize.py").write_text(
        f"import sys\nwith open({str(log)!r}, 'a') as f:\n    f.write(' '.join(sys.argv[1:]) + '\\n')\n"
    )
    return {**os.environ, "PYTHONPATH": str(site)}, log


def test_without_a_server_a_push_imports_once_its_pre_receive_stays_for_its_post_receive(
    greeting: Store, tmp_path: Path, counted: tuple[dict[str, str], Path]
) -> None:
    env, log = counted
    clone = Clone(greeting, tmp_path / "work")
    clone.commit("v1.0", prompt_text("Warm"))
    out = push(clone, env, "v1.0")
    assert out.returncode == 0, out.stderr
    assert "dev now serves the tip of v1.0" in out.stderr  # post-receive's work, and its words
    assert [line.split()[:2] for line in log.read_text().splitlines()] == [["run", "pre-receive"]]
    assert greeting.get("greeting", "dev").source == prompt_text("Warm")
    assert greeting.log("greeting", "dev")[0].audited  # type: ignore[union-attr]
    leftover = greeting.path / "greeting.git" / "promptgit"
    deadline = time.monotonic() + 60
    while list(leftover.glob("push-*")):
        assert time.monotonic() < deadline, list(leftover.glob("push-*"))
        time.sleep(0.05)


def test_a_pre_receive_staying_for_a_push_that_never_lands_leaves_with_it(
    greeting: Store, tmp_path: Path, counted: tuple[dict[str, str], Path]
) -> None:
    """Accepted by pre-receive, then refused by the reference-transaction hook (a ref
    pre-receive read moved meanwhile): no post-receive comes, and the staying child
    goes once receive-pack has, leaving no socket behind."""
    env, log = counted
    repo = greeting.path / "greeting.git"
    hook = repo / "hooks" / "reference-transaction"
    original = hook.read_text()
    hook.write_text('#!/bin/sh\n[ "$1" = prepared ] && exit 1\nexit 0\n')
    try:
        clone = Clone(greeting, tmp_path / "work")
        clone.commit("v1.0", prompt_text("Never lands"))
        before = git(repo, "rev-parse", "v1.0")
        out = push(clone, env, "v1.0")
        assert out.returncode != 0
        assert git(repo, "rev-parse", "v1.0") == before
    finally:
        hook.write_text(original)
    assert [line.split()[:2] for line in log.read_text().splitlines()] == [["run", "pre-receive"]]
    deadline = time.monotonic() + 60
    while list((repo / "promptgit").glob("push-*.sock")) or _cwd_in(repo):
        assert time.monotonic() < deadline, "the staying pre-receive never left"
        time.sleep(0.05)


def _cwd_in(repo: Path) -> list[str]:
    """Processes whose working directory is the repository (a hook's, or its child's)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(os.readlink(f"/proc/{pid}/cwd")) == repo.resolve():
                found.append(pid)
        except OSError:
            continue
    return found


def test_hooks_are_handed_over_in_a_store_whose_path_is_longer_than_a_socket_path_may_be(
    tmp_path: Path, broken_promptgit: dict[str, str]
) -> None:
    deep = tmp_path / ("a-rather-long-folder-name-" * 3) / ("and-another-one-" * 3)
    store = Store.init(deep / "prompts")
    store.create("greeting", {"prompt.yaml": prompt_text("Hello")}, "first", actor=ADMIN)
    assert len(str(store.path / handoff.SOCKET)) > 108  # AF_UNIX's limit on a path
    server = Server(store.path)
    try:
        wait_for_socket(store)
        clone = Clone(store, tmp_path / "work")
        clone.commit("v1.0", prompt_text("Deep"))
        out = push(clone, broken_promptgit, "v1.0")  # only the server's helper can run it
        assert out.returncode == 0, out.stderr
    finally:
        server.stop()
    assert store.get("greeting", "dev").source == prompt_text("Deep")


def test_a_handed_hook_imports_nothing_heavy_of_its_own(greeting: Store, tmp_path: Path) -> None:
    """The helper imports, before it listens, what hooks import only when first used
    (pygit2, YAML, Jinja2, jsonschema): a child it forks for a hook imports none of
    them again. `-X importtime` reports every import, the helper's and its children's,
    on the same stderr."""
    import sys

    log = tmp_path / "imports.txt"
    with log.open("w") as err:
        helper = subprocess.Popen(
            [
                sys.executable,
                "-X",
                "importtime",
                "-m",
                "promptgit.handoff",
                str(greeting.path),
                str(os.getpid()),
            ],
            stderr=err,
        )
    try:
        wait_for_socket(greeting)
        before = log.read_text()

        def imported(text: str, names: tuple[str, ...]) -> list[str]:
            return [line for line in text.splitlines() if line.split("|")[-1].strip().startswith(names)]

        assert all(imported(before, (name,)) for name in ("pygit2.", "yaml.", "jinja2."))
        clone = Clone(greeting, tmp_path / "work")
        clone.commit("v1.0", prompt_text("Handed"))
        out = push(clone, dict(os.environ), "v1.0")
        assert out.returncode == 0, out.stderr
        assert "dev now serves the tip of v1.0" in out.stderr
        children = log.read_text()[len(before) :]
        assert imported(children, ("pygit2", "yaml", "jinja2", "jsonschema", "promptgit")) == []
    finally:
        helper.terminate()
        helper.wait(timeout=30)
