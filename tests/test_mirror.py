"""Mirrors and read replicas, with real servers on 127.0.0.1 and real `promptgit
mirror` processes: a mirror converges on every kind of change, a server on it (and
a mirror of that server) answers exactly as the primary, ETags included, and a
read-only server or a mirror store refuses every change, naming the primary."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from conftest import PROMPT, assert_unchanged, git, prompt_text, refs
from server_helpers import Server, free_port

from promptgit import Actor, Store, tokens
from promptgit.cli import cli
from promptgit.errors import ReadOnlyStore
from promptgit.names import ROLES

OWNER = Actor("Owner", "owner@example.com")  # role admin
DEADLINE = 60.0  # seconds: generous, never a measurement
TESTS = "cases:\n  - name: greets\n    vars: {name: Ada}\n    contains: Ada\n"


def wait_until(check: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {deadline:g} s")
        time.sleep(0.05)


def repositories(root: Path) -> dict[str, dict[str, str]]:
    """Every repository of a store (live and archived) with every ref, as git sees them."""
    found = {}
    for folder, dirs, _files in os.walk(root):
        for d in [d for d in dirs if d.endswith(".git") or d.startswith(".")]:
            dirs.remove(d)  # neither into a repository nor into the store's own files
            path = Path(folder, d)
            if d.endswith(".git") and not d.startswith(".") and (path / "HEAD").is_file():
                found[path.relative_to(root).as_posix().removesuffix(".git")] = refs(path)
    return found


def redirects(root: Path) -> Any:
    path = root / ".promptgit" / "renames.json"
    return json.loads(path.read_text()) if path.exists() else {}


def converged(primary: Path, mirror: Path) -> bool:
    try:
        return repositories(primary) == repositories(mirror) and redirects(primary) == redirects(mirror)
    except AssertionError:  # a repository moved while it was being read: not yet
        return False


class Mirroring:
    """`promptgit mirror URL DIR` in a subprocess, until `stop()` (Ctrl-C)."""

    def __init__(self, url: str, path: Path, token: str | None) -> None:
        self.log = path.parent / f"mirror-{path.name}.log"
        self._out = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PROMPTGIT_TOKEN": token or ""}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "promptgit", "mirror", url, str(path)],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def said(self) -> str:
        return self.log.read_text()

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._out.close()
        assert code == 0, self.said()
        return self.said()


def mirror_once(url: str, path: Path, token: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["mirror", url, str(path), "--once"], env={"PROMPTGIT_TOKEN": token})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[tuple[Store, Server, dict[str, str]]]:
    """A store with two prompts and a token per role, served with tokens."""
    store = Store.init(tmp_path / "primary")
    keys = {role: tokens.create(store.path, f"{role}-bot", role) for role in ROLES}
    store.create("greeting", {"prompt.yaml": PROMPT, "tests.yaml": TESTS}, "first", actor=OWNER)
    store.create("team/faq", {"prompt.yaml": prompt_text("Hi")}, "first", actor=OWNER)
    server = Server(store.path)
    yield store, server, keys
    server.stop(grace=1)


def client(url: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60, follow_redirects=False)


def answers(c: httpx.Client, store: Store) -> dict[str, Any]:
    """What a server says about everything in `store`: listings, each prompt's
    versions, stages (body and ETag), stage logs and events, archived ones, and what
    renamed prompts' old names say."""
    out: dict[str, Any] = {}

    def ask(path: str) -> None:
        r = c.get(path)
        out[path] = (r.status_code, r.headers.get("etag"), r.headers.get("location"), r.json())

    ask("/prompts")
    ask("/archive")
    for name in store.names():
        ask(f"/prompts/{name}/versions")
        ask(f"/events/{name}")
        for stage in ("dev", "tst", "prod"):
            ask(f"/prompts/{name}/stages/{stage}")
            ask(f"/prompts/{name}/stages/{stage}/log")
    for old in redirects(store.path):
        ask(f"/prompts/{old}/stages/dev")
    for archived in store.archived():
        ask(f"/prompts/{archived.name}/stages/dev")
        ask(f"/events/{archived.name}")
    return out


# --- a mirror converges ---------------------------------------------------------------------


def test_a_mirror_converges_on_every_kind_of_change_and_its_server_answers_as_the_primary(
    primary: tuple[Store, Server, dict[str, str]], tmp_path: Path
) -> None:
    store, server, keys = primary
    copy = tmp_path / "replica"
    mirroring = Mirroring(server.url, copy, keys["reader"])
    replica: Server | None = None
    try:
        wait_until(lambda: converged(store.path, copy), "the first sync")
        replica = Server(copy)  # no tokens in the mirror store: loopback only, read-only
        ours, theirs = client(server.url, keys["admin"]), client(replica.url)
        work = tmp_path / "work"
        git(tmp_path, "clone", "-q", "-b", "v1.0", f"http://x:{keys['editor']}@{server.url[7:]}/git/team/faq.git", str(work))  # fmt: skip

        def push_an_edit() -> None:
            (work / "prompt.yaml").write_text(prompt_text("Pushed"))
            git(work, "commit", "-q", "-am", "pushed")
            git(work, "push", "-q", "origin", "v1.0")

        steps: list[tuple[str, Callable[[], object]]] = [
            ("edit", lambda: store.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hey")}, "hey", actor=OWNER)),
            ("promote to tst", lambda: store.promote("greeting", "v1.0", to="tst", actor=OWNER)),
            ("test run", lambda: store.test("greeting", "v1.0", actor=OWNER)),
            ("release", lambda: store.promote("greeting", "v1.0", to="prod", actor=OWNER)),
            ("new version", lambda: store.new_version("greeting", "v1.0", actor=OWNER)),
            ("another", lambda: store.new_version("greeting", "v1.0", actor=OWNER)),
            # a draft no stage serves: only its branch moves, and the mirror still sees it
            ("edit an unserved draft", lambda: store.edit("greeting", "v1.1", {"prompt.yaml": prompt_text("Yo")}, "yo", actor=OWNER)),
            ("release v1.1", lambda: (store.promote("greeting", "v1.1", to="tst", actor=OWNER),
                                      store.promote("greeting", "v1.1", to="prod", actor=OWNER))),
            ("rollback", lambda: store.rollback("greeting", "v1.0", stage="tst", actor=OWNER)),
            ("deprecate", lambda: store.deprecate("greeting", "v1.0", "too stiff", actor=OWNER)),
            ("a push over HTTP", push_an_edit),
            ("a new prompt", lambda: store.create("team/new", {"prompt.yaml": PROMPT}, "new", actor=OWNER)),
            ("archive", lambda: store.archive("team/faq", reason="merged into greeting", actor=OWNER)),
            ("rename", lambda: store.rename("greeting", "support/greeting", actor=OWNER)),
            ("restore", lambda: store.restore("team/faq", actor=OWNER)),
            ("delete for good", lambda: (store.archive("team/new", actor=OWNER),
                                         store.delete_prompt("team/new", actor=OWNER))),
        ]  # fmt: skip
        for what, step in steps:
            step()
            wait_until(lambda: converged(store.path, copy), f"the mirror after {what}")
            mirrored = Store(copy)
            assert answers(theirs, store) == answers(ours, store), what
            for name in store.names():
                for stage in ("dev", "tst", "prod"):
                    a, b = (s.tips(name)[stage] for s in (store, mirrored))
                    assert a == b, (what, name, stage)
                    if a is not None:
                        assert mirrored.get(name, stage).deployment == store.get(name, stage).deployment == a
        assert mirrored.versions("support/greeting") == store.versions("support/greeting")
        assert [e.event for e in mirrored.events("team/faq")] == ["restore", "archive"]
    finally:
        said = mirroring.stop()
        if replica is not None:
            replica.stop(grace=1)
    assert "promptgit mirror: fetched support/greeting; removed greeting" in said
    assert "moved team/faq to _archive/team/faq" in said and "moved _archive/team/faq to team/faq" in said
    assert said.endswith("promptgit mirror: stopped\n")


def test_a_promotion_reaches_the_readers_of_a_replica_and_of_a_replica_of_it(
    primary: tuple[Store, Server, dict[str, str]], tmp_path: Path
) -> None:
    """primary -> mirror A (served with its own tokens) -> mirror B of A's server (served):
    three servers; a reader watching B sees a promotion made on the primary."""
    store, server, keys = primary
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    assert mirror_once(server.url, a_dir, keys["reader"])[0] == 0
    app_key = Store(a_dir).create_token("app", "reader")  # a mirror has its own tokens
    a, b = Server(a_dir), None
    mirrors = [Mirroring(server.url, a_dir, keys["reader"]), Mirroring(a.url, b_dir, app_key)]
    try:
        wait_until(lambda: converged(store.path, b_dir), "the chain's first sync")
        b = Server(b_dir)
        reader = client(b.url)
        first = reader.get("/watch", params={"prompt": "greeting"}).json()
        seen: list[dict[str, Any]] = []
        watching = threading.Thread(
            target=lambda: seen.append(
                reader.get(
                    "/watch", params={"prompt": "greeting", "since": first["cursor"], "timeout": 60}
                ).json()
            )
        )
        watching.start()
        deployed = store.promote("greeting", "v1.0", to="tst", actor=OWNER).deployment
        watching.join(timeout=DEADLINE)
        assert seen and seen[0]["prompts"]["greeting"]["tst"] == deployed
        r = reader.get("/prompts/greeting/stages/tst")
        assert r.headers["etag"] == f'"{deployed}"'
        assert r.json() == client(server.url, keys["reader"]).get("/prompts/greeting/stages/tst").json()
        assert Store(b_dir).get("greeting", "tst").deployment == deployed
        # the token is never written down, in the mirror or its repositories
        for root in (a_dir, b_dir):
            for path in root.rglob("*"):
                if path.is_file():
                    data = path.read_bytes()
                    assert keys["reader"].encode() not in data and app_key.encode() not in data, path
    finally:
        for m in reversed(mirrors):
            m.stop()
        for s in (b, a):
            if s is not None:
                s.stop(grace=1)


def test_a_mirror_keeps_retrying_and_catches_up_when_the_primary_is_back(
    primary: tuple[Store, Server, dict[str, str]], tmp_path: Path
) -> None:
    store, server, keys = primary
    copy = tmp_path / "copy"
    mirroring = Mirroring(server.url, copy, keys["reader"])
    try:
        wait_until(lambda: converged(store.path, copy), "the first sync")
        server.stop(grace=1)
        wait_until(lambda: f"cannot reach the primary at {server.url}" in mirroring.said(), "a clear error")
        store.promote("greeting", "v1.0", to="tst", actor=OWNER)  # while nobody serves it
        wait_until(lambda: "retrying in 2 s" in mirroring.said(), "backoff")
        again = Server(store.path, port=server.port)
        try:
            wait_until(lambda: converged(store.path, copy), "catching up")
            wait_until(lambda: f"in sync with {server.url} again" in mirroring.said(), "saying so")
        finally:
            again.stop(grace=1)
    finally:
        mirroring.stop()


# --- read-only: the library, a mirror's server, and serve --read-only ------------------


def test_the_library_refuses_every_write_to_a_mirror_store_and_changes_nothing(
    primary: tuple[Store, Server, dict[str, str]], tmp_path: Path
) -> None:
    store, server, keys = primary
    copy = tmp_path / "copy"
    code, out, err = mirror_once(server.url, copy, keys["reader"])
    assert (code, out, err) == (0, f"fetched greeting, team/faq (2 from {server.url})\n", "")
    mirrored = Store(copy)
    message = f"this store is a read-only mirror of {server.url}: make changes there"
    writes: list[Callable[[], object]] = [
        lambda: mirrored.create("new", {"prompt.yaml": PROMPT}, "x", actor=OWNER),
        lambda: mirrored.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("X")}, "x", actor=OWNER),
        lambda: mirrored.new_version("greeting", "v1.0", actor=OWNER),
        lambda: mirrored.promote("greeting", "v1.0", actor=OWNER),
        lambda: mirrored.rollback("greeting", "v1.0", stage="dev", actor=OWNER),
        lambda: mirrored.delete("greeting", "v1.0", actor=OWNER),
        lambda: mirrored.deprecate("greeting", "v1.0", "why", actor=OWNER),
        lambda: mirrored.undeprecate("greeting", "v1.0", actor=OWNER),
        lambda: mirrored.test("greeting", "v1.0", actor=OWNER),
        lambda: mirrored.follow("greeting", "v1.0", actor=OWNER),
        lambda: mirrored.finish_releases("greeting", actor=OWNER),
        lambda: mirrored.install_hooks(),
        lambda: mirrored.sweep_creations(),
        lambda: mirrored.gc(actor=OWNER),
        lambda: mirrored.doctor(repair=True, actor=OWNER),
        lambda: mirrored.archive("greeting", actor=OWNER),
        lambda: mirrored.rename("greeting", "other", actor=OWNER),
        lambda: mirrored.restore("greeting", actor=OWNER),
        lambda: mirrored.delete_prompt("greeting", actor=OWNER),
        lambda: mirrored.review("greeting", "v1.0", "tone", actor=OWNER),
        lambda: mirrored.approve("greeting", "v1.0", "looks good", actor=OWNER),
    ]
    with assert_unchanged(mirrored):
        for write in writes:
            with pytest.raises(ReadOnlyStore) as refused:
                write()
            assert str(refused.value) == message and refused.value.primary == server.url
        # reads work, and every action the page offers is refused with the reason
        assert mirrored.get("greeting", "dev").render(name="Ada") == store.get("greeting", "dev").render(
            name="Ada"
        )
        assert mirrored.test("greeting", "v1.0", actor=OWNER, record=False).passed
        assert [c.prompt for c in mirrored.gc(dry_run=True, actor=OWNER)] == ["greeting", "team/faq"]
        actions = mirrored.actions("greeting", "admin")
        assert {
            (a.allowed, a.why) for acts in actions.versions.values() for a in acts.values() if a.applies
        } == {(False, message)}
    # the CLI says the same, in one line
    result = CliRunner().invoke(cli, ["--store", str(copy), "promote", "greeting@v1.0"])
    assert (result.exit_code, result.stderr) == (1, f"error: {message}\n")
    # a mirror's tokens are its own, not prompts: they may change
    assert mirrored.create_token("app", "reader")
    # a store opened read-only refuses the same way, without a primary to name
    with pytest.raises(
        ReadOnlyStore, match=r"^this store is served read-only \('promptgit serve --read-only'\)"
    ):
        Store(store.path, read_only=True).promote("greeting", "v1.0", actor=OWNER)
    # fail over: without mirror_of, and with the hooks installed, the copy is a primary
    config = copy / "promptgit.yaml"
    config.write_text("\n".join(ln for ln in config.read_text().splitlines() if "mirror_of" not in ln))
    assert mirrored.install_hooks() == ["greeting", "team/faq"]
    assert mirrored.promote("greeting", "v1.0", actor=OWNER).stage == "tst"
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", "-b", "v1.0", str(copy / "greeting.git"), str(work))
    (work / "prompt.yaml").write_text(prompt_text("Pushed"))
    git(work, "commit", "-q", "-am", "pushed")
    git(work, "push", "-q", "origin", "v1.0")  # the hooks run: tst follows the draft
    assert mirrored.get("greeting", "tst").source == prompt_text("Pushed")


def test_a_server_on_a_mirror_refuses_api_page_and_git_writes_with_the_primary_url(
    primary: tuple[Store, Server, dict[str, str]], tmp_path: Path
) -> None:
    _store, server, keys = primary
    copy = tmp_path / "copy"
    copy.mkdir()  # what a mirror killed while writing its config leaves
    (copy / ".promptgit.yaml.4242").write_text("version: 1\n")
    assert mirror_once(server.url, copy, keys["reader"])[0] == 0
    assert not (copy / ".promptgit.yaml.4242").exists()
    mirrored = Store(copy)
    local = {role: mirrored.create_token(f"{role}-here", role) for role in ROLES}
    replica = Server(copy)
    message = f"this store is a read-only mirror of {server.url}: make changes there"
    try:
        with assert_unchanged(mirrored):
            for role in ROLES:  # any valid token: the answer is where to go, not which role
                c = client(replica.url, local[role])
                for method, path, body in [
                    ("POST", "/prompts", {"name": "x", "content": PROMPT}),
                    ("PATCH", "/prompts/greeting/versions/v1.0", {"content": prompt_text("X")}),
                    ("POST", "/prompts/greeting/versions/v1.0/promote", None),
                    ("POST", "/prompts/greeting/versions", {"from": "v1.0"}),
                    ("POST", "/prompts/greeting/archive", None),
                    ("POST", "/prompts/greeting/rename", {"to": "other"}),
                ]:
                    r = c.request(method, path, json=body)
                    assert (r.status_code, r.json()) == (
                        403,
                        {"error": {"code": "read_only", "message": message}},
                    )
                # reads, and the render a reader may POST, still work
                assert (
                    c.post("/prompts/greeting/stages/dev/render", json={"vars": {"name": "Ada"}}).status_code
                    == 200
                )
            assert client(replica.url).post("/prompts/greeting/versions/v1.0/promote").status_code == 401
            # the page: its buttons are disabled with the reason, and a form post says it
            page = client(replica.url)
            page.cookies.set("promptgit_token", local["admin"])
            assert message in page.get("/ui/prompts/greeting").text
            r = page.post("/ui/prompts/greeting/versions/v1.0/promote", data={"to": "tst"})
            assert r.status_code == 403 and message in r.text
            # git: fetch works, a push is refused with where to push instead
            work = tmp_path / "work"
            host = replica.url.removeprefix("http://")
            git(
                tmp_path,
                "clone",
                "-q",
                "-b",
                "v1.0",
                f"http://x:{local['reader']}@{host}/git/greeting.git",
                str(work),
            )
            (work / "prompt.yaml").write_text(prompt_text("Pushed"))
            git(work, "commit", "-q", "-am", "pushed")
            git(work, "remote", "set-url", "origin", f"http://x:{local['admin']}@{host}/git/greeting.git")
            out = subprocess.run(
                ["git", "-C", str(work), "push", "origin", "v1.0"], capture_output=True, text=True
            )
            url = f"{server.url}/git/greeting.git"
            assert out.returncode != 0
            assert f"remote: {message} (push to {url}: git remote set-url --push origin {url})" in out.stderr
            # and a push straight into a mirror repository's folder is refused too
            out = subprocess.run(["git", "-C", str(work), "push", str(copy / "greeting.git"), "v1.0"],
                                 capture_output=True, text=True)  # fmt: skip
            assert out.returncode != 0 and f"remote: promptgit: {message}" in out.stderr
    finally:
        replica.stop(grace=1)


def test_serve_read_only_is_a_read_only_view_of_any_store(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "prompts")
    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=OWNER)
    server = Server(store.path, args=("--read-only",))
    message = (
        "this store is served read-only ('promptgit serve --read-only'): make changes through a "
        "server of it that is not read-only, or with the CLI where it lives"
    )
    try:
        c = client(server.url)
        with assert_unchanged(store):
            r = c.post("/prompts/greeting/versions/v1.0/promote")
            assert (r.status_code, r.json()["error"]) == (403, {"code": "read_only", "message": message})
            work = tmp_path / "work"
            git(tmp_path, "clone", "-q", "-b", "v1.0", f"{server.url}/git/greeting.git", str(work))
            (work / "prompt.yaml").write_text(prompt_text("Pushed"))
            git(work, "commit", "-q", "-am", "pushed")
            out = subprocess.run(
                ["git", "-C", str(work), "push", "origin", "v1.0"], capture_output=True, text=True
            )
            assert out.returncode != 0 and f"remote: {message}" in out.stderr
        # the store itself stays writable where it lives, and the view follows it
        deployed = store.promote("greeting", "v1.0", actor=OWNER).deployment
        wait_until(
            lambda: c.get("/prompts/greeting/stages/tst").headers.get("etag") == f'"{deployed}"', "the view"
        )
    finally:
        server.stop(grace=1)
    assert "(read-only) to this machine only, and everyone may read everything" in server.log.read_text()


# --- errors ---------------------------------------------------------------------------------


def test_a_wrong_token_a_missing_one_or_no_primary_is_a_clear_error_and_creates_nothing(
    primary: tuple[Store, Server, dict[str, str]], tmp_path: Path
) -> None:
    _store, server, keys = primary
    copy = tmp_path / "copy"
    fix = "give a token with role reader with --token or $PROMPTGIT_TOKEN"
    assert mirror_once(server.url, copy, "wrong") == (
        1,
        "",
        f"error: the primary at {server.url} refused the token given (401: unknown or revoked token: ask an "
        f"admin for one ('promptgit token create NAME --role ROLE')): {fix}\n",
    )
    code, _out, err = mirror_once(server.url, copy)
    assert code == 1 and err.startswith(f"error: the primary at {server.url} refused no token (401: ")
    nowhere = f"http://127.0.0.1:{free_port()}"
    code, _out, err = mirror_once(nowhere, copy, keys["reader"])
    assert code == 1 and err.startswith(f"error: cannot reach the primary at {nowhere} (")
    assert err.endswith("check the URL, and that 'promptgit serve' runs there\n")
    assert not copy.exists()
    code, _out, err = mirror_once(f"http://x:{keys['reader']}@127.0.0.1:1", copy)
    assert (code, err) == (1, "error: a URL must not carry a token or password: give the token separately "
                              "(the primary's URL, e.g. https://prompts.example.com)\n")  # fmt: skip

    # running on, it says so on every attempt and backs off
    mirroring = Mirroring(server.url, copy, "wrong")
    try:
        wait_until(lambda: "retrying in 2 s" in mirroring.said(), "a second attempt")
    finally:
        said = mirroring.stop()
    assert f"promptgit mirror: the primary at {server.url} refused the token given (401: " in said
    assert "; retrying in 1 s\n" in said


def test_a_mirror_only_goes_into_a_new_empty_or_its_own_directory(
    primary: tuple[Store, Server, dict[str, str]], tmp_path: Path
) -> None:
    store, server, keys = primary
    own = Store.init(tmp_path / "own")
    with assert_unchanged(own):
        assert mirror_once(server.url, own.path, keys["reader"])[2] == (
            f"error: {own.path} is a store of its own, not a mirror: mirror into a new or empty directory "
            "(a mirror's promptgit.yaml names its primary with mirror_of)\n"
        )
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    assert mirror_once(server.url, tmp_path / "full", keys["reader"])[2] == (
        f"error: {tmp_path / 'full'} exists and is not a promptgit store: mirror into a new or empty directory\n"
    )
    copy = tmp_path / "copy"
    copy.mkdir()  # what a mirror killed while writing its config leaves
    (copy / ".promptgit.yaml.4242").write_text("version: 1\n")
    assert mirror_once(server.url, copy, keys["reader"])[0] == 0
    assert not (copy / ".promptgit.yaml.4242").exists()
    assert mirror_once(server.url + "/", copy, keys["reader"]) == (
        0,
        f"nothing changed (2 from {server.url})\n",
        "",
    )
    assert mirror_once("http://127.0.0.1:1", copy)[2] == (
        f"error: {copy} is a mirror of {server.url}, not http://127.0.0.1:1: mirror {server.url} there, "
        "or mirror into another directory\n"
    )
    # a primary that lists nothing at all is taken for one in trouble: nothing is removed
    for name in ("greeting", "team/faq"):
        store.archive(name, actor=OWNER)
        store.delete_prompt(name, actor=OWNER)
    code, out, err = mirror_once(server.url, copy, keys["reader"])
    assert (code, out) == (0, f"nothing changed (0 from {server.url})\n")
    assert err == f"warning: {server.url} lists no prompt at all, so the 2 here were kept\n"
    assert Store(copy).names() == ["greeting", "team/faq"]


def test_archived_prompts_are_fetched_by_path_and_never_pushed_to(
    primary: tuple[Store, Server, dict[str, str]], tmp_path: Path
) -> None:
    store, server, keys = primary
    store.archive("team/faq", reason="old", actor=OWNER)
    host = server.url.removeprefix("http://")
    work = tmp_path / "work"
    git(
        tmp_path,
        "clone",
        "-q",
        "--mirror",
        f"http://x:{keys['reader']}@{host}/git/_archive/team/faq.git",
        str(work),
    )
    assert refs(work) == refs(store.path / "_archive" / "team" / "faq.git")
    editor = f"http://x:{keys['admin']}@{host}/git/_archive/team/faq.git"
    with assert_unchanged(store):
        out = subprocess.run(["git", "-C", str(work), "push", editor, "refs/heads/v1.0:refs/heads/v9.0"],
                             capture_output=True, text=True)  # fmt: skip
    assert out.returncode != 0
    assert (
        "remote: prompt 'team/faq' is archived: restore it with 'promptgit restore team/faq' first"
        in out.stderr
    )
    basic = base64.b64encode(f"x:{keys['reader']}".encode()).decode()
    for path, status in [
        ("_archive/nothing", 404),
        ("_archive/_archive/team/faq", 400),
        ("_archive/../team/faq", 400),
    ]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)  # sends the path as is
        conn.request("GET", f"/git/{path}.git/info/refs?service=git-upload-pack",
                     headers={"Authorization": f"Basic {basic}"})  # fmt: skip
        r = conn.getresponse()
        assert r.status == status, (path, r.read())
        conn.close()
    # the watch a mirror follows names it, with a digest of its refs
    answer = client(server.url, keys["reader"]).get("/watch", params={"mirror": "true"}).json()
    assert sorted(answer["prompts"]) == ["_archive/team/faq", "greeting"]
    assert set(answer["prompts"]["greeting"]) == {"dev", "tst", "prod", "refs"}


def test_a_prompt_the_primary_could_not_read_just_now_is_kept(
    primary: tuple[Store, Server, dict[str, str]], tmp_path: Path
) -> None:
    """The primary's watch says null for a prompt it could not read (moving, or an
    error there): the mirror neither fetches nor removes it, and the next answer decides."""
    from promptgit.mirror import Mirror

    _store, server, keys = primary
    copy = tmp_path / "copy"
    assert mirror_once(server.url, copy, keys["reader"])[0] == 0
    mirror = Mirror(server.url, copy, keys["reader"])
    answer = dict(mirror.watch())
    held = [n for n in answer if n]
    answer.pop(held[0])
    answer[""] = {**answer[""], "unknown": [held[0]]}
    done = mirror.sync(answer)
    assert done.removed == [] and held[0] in mirror.local()
    answer[""] = {**answer[""], "unknown": []}  # an answer that leaves it out: gone there
    assert mirror.sync(answer).removed == [held[0]]


def test_a_primary_that_redirects_gets_no_token_and_a_clear_error(tmp_path: Path) -> None:
    """The mirror's token goes to the primary it was given, never to where that points."""
    import http.server
    import threading

    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            if self.path.startswith("/elsewhere"):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")
                return
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/elsewhere")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        code, _out, err = mirror_once(url, tmp_path / "copy", "secret-token")
    finally:
        httpd.shutdown()
    assert code == 1 and f"the primary at {url} redirects to {url}/elsewhere" in err
    assert seen == ["Bearer secret-token"]  # the redirect's target never saw the token
    assert not (tmp_path / "copy").exists()
