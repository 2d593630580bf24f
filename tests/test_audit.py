"""The deployment log says who really did it and when: a pushed commit's author and
date are the pusher's claim; promptgit's audit log (refs/promptgit/audit, written
by promptgit alone) records the authenticated pusher and the server's clock."""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from conftest import PROMPT, git, refs
from server_helpers import Server

from promptgit import Actor, Store
from promptgit.cli import cli

FORGER = {
    "GIT_AUTHOR_NAME": "Release Manager",
    "GIT_AUTHOR_EMAIL": "rm@corp.example",
    "GIT_COMMITTER_NAME": "Release Manager",
    "GIT_COMMITTER_EMAIL": "rm@corp.example",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Store, Server, dict[str, str]]]:
    store = Store.init(tmp_path / "prompts")
    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=Actor("Owner", "owner@example.com"))
    keys = {role: store.create_token(f"{role}-bot", role) for role in ("reader", "editor", "releaser")}
    server = Server(store.path, {"HOME": str(tmp_path)})
    yield store, server, keys
    server.stop()


def git_as(
    token: str, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    header = "Authorization: Basic " + base64.b64encode(f"git:{token}".encode()).decode()
    full = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    return subprocess.run(
        ["git", "-c", f"http.extraHeader={header}", *args], cwd=cwd, capture_output=True, text=True, env=full
    )


def forged_promotion(work: Path) -> str:
    """A well-formed promotion of v1.0 to tst, authored by someone who did not push it."""
    tip = git(work, "rev-parse", "origin/v1.0").strip()
    message = f"Promote v1.0 to tst\n\nPromptgit-Action: promote\nPromptgit-Version: v1.0\nPromptgit-Revision: {tip}\n"
    out = subprocess.run(
        ["git", "-C", str(work), "commit-tree", f"{tip}^{{tree}}", "-p", tip, "-m", message],
        capture_output=True, text=True, env={**os.environ, **FORGER}, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def test_a_forged_identity_push_is_logged_as_the_real_pusher(
    site: tuple[Store, Server, dict[str, str]], tmp_path: Path
) -> None:
    store, server, keys = site
    assert (
        git_as(keys["editor"], tmp_path, "clone", "-q", f"{server.url}/git/greeting.git", "work").returncode
        == 0
    )
    work = tmp_path / "work"
    forged = forged_promotion(work)
    assert git(work, "log", "-1", "--format=%an %ad", forged).startswith("Release Manager")
    before = time.time()
    out = git_as(keys["editor"], work, "push", "origin", f"{forged}:refs/heads/tst")
    assert out.returncode == 0, out.stderr
    # the library, the API and the CLI all report the pusher and the server's clock
    [d] = store.log("greeting", "tst")
    assert (d.deployment, d.audited) == (forged, True)
    assert d.stamp.by == "editor-bot <editor-bot@promptgit>"
    assert d.stamp.time >= int(before) - 1  # not 2000-01-01
    api = httpx.get(
        f"{server.url}/prompts/greeting/stages/tst/log", headers={"Authorization": f"Bearer {keys['reader']}"}
    ).json()
    assert (api[0]["by"], api[0]["audited"]) == ("editor-bot <editor-bot@promptgit>", True)
    assert datetime.fromisoformat(api[0]["at"]).year >= 2026
    shown = CliRunner().invoke(cli, ["--store", str(store.path), "log", "greeting@tst"])
    assert "editor-bot" in shown.output and "Release Manager" not in shown.output
    # the page shows the same name
    page = httpx.get(f"{server.url}/ui/prompts/greeting", cookies={"promptgit_token": keys["reader"]}).text
    assert "editor-bot" in page and "Release Manager" not in page


def test_the_audit_log_cannot_be_pushed(site: tuple[Store, Server, dict[str, str]], tmp_path: Path) -> None:
    store, server, keys = site
    git_as(keys["editor"], tmp_path, "clone", "-q", f"{server.url}/git/greeting.git", "work")
    work = tmp_path / "work"
    remote = store.path / "greeting.git"
    assert (
        git_as(keys["editor"], work, "fetch", "-q", "origin", "refs/promptgit/audit:refs/audit").returncode
        == 0
    )
    tree = git(work, "hash-object", "-t", "tree", "-w", "/dev/null").strip()
    fake = git(work, "commit-tree", tree, "-p", "refs/audit", "-m", "nothing happened").strip()
    before = refs(remote)
    for target in ("refs/promptgit/audit", "refs/promptgit/other"):
        out = git_as(keys["editor"], work, "push", "origin", f"{fake}:{target}")
        assert out.returncode != 0
        assert "promptgit alone writes its records (the audit log); they cannot be pushed" in out.stderr
    out = git_as(keys["editor"], work, "push", "origin", ":refs/promptgit/audit")
    assert out.returncode != 0
    assert refs(remote) == before


def test_every_library_write_is_audited(greeting: Store, actor: Actor) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)
    entries = git(
        greeting.path / "greeting.git", "log", "--format=%an|%s", "refs/promptgit/audit"
    ).splitlines()
    assert entries == [
        "Ada Lovelace|promptgit: promote v1.0 to tst",
        "Ada Lovelace|promptgit: create greeting",
    ]
    body = git(greeting.path / "greeting.git", "log", "-1", "--format=%b", "refs/promptgit/audit")
    tst = git(greeting.path / "greeting.git", "rev-parse", "tst").strip()
    assert f"refs/heads/tst {'0' * 40} {tst}" in body and "Promptgit-Via: library" in body
    assert all(d.audited for d in greeting.log("greeting", "dev"))


def test_a_non_atomic_release_over_http_is_refused_with_its_reason(
    site: tuple[Store, Server, dict[str, str]], tmp_path: Path
) -> None:
    store, server, keys = site
    store.promote("greeting", "v1.0", actor=Actor("Owner", "owner@example.com"))
    git_as(keys["releaser"], tmp_path, "clone", "-q", f"{server.url}/git/greeting.git", "work")
    work = tmp_path / "work"
    tip = git(work, "rev-parse", "origin/v1.0").strip()
    message = f"Promote v1.0 to prod\n\nPromptgit-Action: promote\nPromptgit-Version: v1.0\nPromptgit-Revision: {tip}\n"
    deploy = git(work, "commit-tree", f"{tip}^{{tree}}", "-p", tip, "-m", message).strip()
    git(work, "tag", "-a", "v1.0", "-m", "Release v1.0", tip)
    release = [f"{deploy}:refs/heads/prod", "refs/tags/v1.0:refs/tags/v1.0", ":refs/heads/v1.0"]
    before = refs(store.path / "greeting.git")
    out = git_as(keys["releaser"], work, "push", "origin", *release)
    assert out.returncode != 0
    assert (
        "remote: promptgit: these refs depend on each other: push them together with 'git push --atomic'"
        in out.stderr
    )
    assert refs(store.path / "greeting.git") == before
    out = git_as(keys["releaser"], work, "push", "--atomic", "origin", *release)
    assert out.returncode == 0, out.stderr
    assert store.version("greeting", "v1.0").stage == "PROD"
