"""`promptgit.Client` against real servers on 127.0.0.1, with real client processes
where the promise is about them: a promotion reaching 20 watching clients, a killed
and restarted server, a start from snapshots with the server down, and a fork.
Nothing here times anything: each wait is for an event, with a generous deadline."""

from __future__ import annotations

import dataclasses
import http.server
import json
import logging
import queue
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PROMPT, prompt_text
from server_helpers import Server, free_port

from promptgit import Actor, Client, Prompt, Store
from promptgit import client_snapshots as snapshots
from promptgit.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    PromptArchived,
    ServerUnavailable,
)

NAME = "support/greeting"
OWNER = Actor("Owner", "owner@example.com")
DEADLINE = 60.0  # seconds any awaited event may take on a loaded machine
CHAT = """\
variables: [question]
messages:
  - {role: system, content: "You are a support agent."}
  - {role: user, content: "{{ question }}"}
"""


def released(store: Store, name: str = NAME, text: str = PROMPT) -> Store:
    """`name` at v1.0, released: prod, tst and dev all serve it."""
    store.create(name, {"prompt.yaml": text}, "first", actor=OWNER)
    store.promote(name, "v1.0", actor=OWNER)
    store.promote(name, "v1.0", actor=OWNER)
    return store


def release_next(store: Store, greeting: str, name: str = NAME) -> str:
    """A new version with `greeting`, promoted to prod; its number."""
    version = store.new_version(name, "prod", actor=OWNER).version
    store.edit(name, version, {"prompt.yaml": prompt_text(greeting)}, greeting, actor=OWNER)
    store.promote(name, version, actor=OWNER)
    store.promote(name, version, actor=OWNER)
    return version


def until(check: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Wait for `check()` to return something truthy, and return it."""
    end = time.monotonic() + deadline
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"still waiting for {what} after {deadline:g} s")
        time.sleep(0.02)


def watching(client: Client, name: str = NAME) -> None:
    until(lambda: name in client.status()["watching"], f"the watch to cover {name}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Store, Server]]:
    store = released(Store.init(tmp_path / "prompts"))
    server = Server(store.path, env={"PROMPTGIT_WATCH_RESCAN": "3600"})  # only the beacon wakes a watch
    yield store, server
    server.stop()


@pytest.fixture
def client(served: tuple[Store, Server], tmp_path: Path) -> Iterator[Client]:
    with Client(served[1].url, cache_dir=tmp_path / "cache", max_age=3600) as c:  # the watch, or nothing
        yield c


# --- real client processes ----------------------------------------------------------------

WATCHER = textwrap.dedent(
    """
    import json, logging, sys, threading, time
    from promptgit import Client
    url, name, count, cache = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    out = threading.Lock()

    def say(**event):
        with out:
            print(json.dumps(event), flush=True)

    def run(i):
        client = Client(url, cache_dir=None if cache == "-" else f"{cache}/{i}", max_age=3600)
        seen, ready = None, False
        while True:
            try:
                p = client.get(name)
                now = (p.version, p.stale, p.render(name="Ada"))
            except Exception as e:  # the test reads what happened
                now = ("error", type(e).__name__, str(e))
            if now != seen:
                seen = now
                say(client=i, version=now[0], stale=now[1], text=now[2])
            if not ready and name in client.status()["watching"]:
                ready = True
                say(client=i, ready=True)
            time.sleep(0.01)

    for i in range(count):
        threading.Thread(target=run, args=(i,), daemon=True).start()
    sys.stdin.read()  # until the test closes it
    """
)


class Clients:
    """Processes each running `count` clients (a thread and a Client each) that print
    every change in what they serve as a JSON line."""

    def __init__(self, url: str, processes: int, count: int, cache: Path | None = None) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.procs = []
        for n in range(processes):
            args = [url, NAME, str(count), str(cache / str(n)) if cache else "-"]
            proc = subprocess.Popen(
                [sys.executable, "-c", WATCHER, *args],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(n, count, proc), daemon=True).start()
        self.stderr: list[str] = []

    def _read(self, n: int, count: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            event["client"] += n * count
            self.events.put(event)

    def wait(self, done: Callable[[list[dict[str, Any]]], bool], what: str) -> None:
        end = time.monotonic() + DEADLINE
        while not done(self.seen):
            try:
                self.seen.append(self.events.get(timeout=max(0.0, end - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"still waiting for {what}; saw {self.seen[-5:]}") from None

    def latest(self) -> dict[int, dict[str, Any]]:
        """Each client's last reported read."""
        out: dict[int, dict[str, Any]] = {}
        for event in self.seen:
            if "version" in event:
                out[event["client"]] = event
        return out

    def stop(self) -> list[str]:
        """Stop the processes; their stderr."""
        errs = []
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            assert proc.stderr is not None
            errs.append(proc.stderr.read())
        return errs


def all_ready(n: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda seen: len({e["client"] for e in seen if e.get("ready")}) == n


def all_serve(n: int, version: str, stale: bool) -> Callable[[list[dict[str, Any]]], bool]:
    def done(seen: list[dict[str, Any]]) -> bool:
        latest: dict[int, dict[str, Any]] = {}
        for e in seen:
            if "version" in e:
                latest[e["client"]] = e
        return len(latest) == n and all(
            e["version"] == version and e["stale"] is stale for e in latest.values()
        )

    return done


def test_a_promotion_reaches_20_watching_clients(served: tuple[Store, Server]) -> None:
    store, server = served
    clients = Clients(server.url, processes=4, count=5)
    try:
        clients.wait(all_ready(20), "20 clients watching")
        assert {e["version"] for e in clients.latest().values()} == {"v1.0"}
        version = release_next(store, "Hi")
        clients.wait(all_serve(20, version, stale=False), f"20 clients serving {version}")
        assert {e["text"] for e in clients.latest().values()} == {"Hi Ada, how can I help?\n"}
    finally:
        errors = clients.stop()
    assert errors == [""] * 4  # no warning, no traceback


def test_killing_the_server_serves_stale_copies_and_a_restart_clears_the_flag(
    served: tuple[Store, Server], tmp_path: Path
) -> None:
    store, server = served
    clients = Clients(server.url, processes=2, count=2, cache=tmp_path / "caches")
    try:
        clients.wait(all_ready(4), "4 clients watching")
        server.kill()
        clients.wait(all_serve(4, "v1.0", stale=True), "4 clients serving stale copies")
        assert {e["text"] for e in clients.latest().values()} == {"Hello Ada, how can I help?\n"}
        restarted = Server(store.path, port=server.port)
        clients.wait(all_serve(4, "v1.0", stale=False), "the stale flag to clear")
        version = release_next(store, "Hi")  # and the watch works again
        clients.wait(all_serve(4, version, stale=False), f"4 clients serving {version}")
    finally:
        errors = clients.stop()
    restarted.stop()
    for err in errors:  # one warning per prompt and client for the outage, not one per call
        lines = err.splitlines()
        assert sum("marked stale" in line for line in lines) == 2, err
        assert sum("answers again" in line for line in lines) == 2, err
        assert "Traceback" not in err


def test_a_client_starts_from_its_snapshot_with_the_server_down(
    served: tuple[Store, Server], tmp_path: Path
) -> None:
    _, server = served
    cache = tmp_path / "cache"
    with Client(server.url, cache_dir=cache) as c:
        c.get(NAME)
        c.get(NAME, version="v1.0")
    server.stop()
    code = textwrap.dedent(
        f"""
        import json, sys
        from promptgit import Client
        c = Client({server.url!r}, cache_dir={str(cache)!r})
        for kw in ({{}}, {{"version": "v1.0"}}):
            p = c.get({NAME!r}, **kw)
            print(json.dumps([p.version, p.stage, p.stale, p.age > 0, p.render(name="Ada")]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert [json.loads(line) for line in out.stdout.splitlines()] == [
        ["v1.0", "prod", True, True, "Hello Ada, how can I help?\n"],
        ["v1.0", None, True, True, "Hello Ada, how can I help?\n"],
    ]
    assert "serving support/greeting@prod from its snapshot" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_forked_child_gets_its_own_connection_and_watch(served: tuple[Store, Server]) -> None:
    store, server = served
    code = textwrap.dedent(
        f"""
        import os, sys, time
        from promptgit import Client
        c = Client({server.url!r})
        assert c.get({NAME!r}).version == "v1.0"
        while {NAME!r} not in c.status()["watching"]:
            time.sleep(0.01)
        pid = os.fork()
        who = "child" if pid == 0 else "parent"
        assert c.status()["watching"] == ([] if pid == 0 else [{NAME!r}])
        assert c.get({NAME!r}).version == "v1.0"
        while {NAME!r} not in c.status()["watching"]:
            time.sleep(0.01)
        print(who, "ready", flush=True)
        while c.get({NAME!r}).version == "v1.0":
            time.sleep(0.01)
        print(who, c.get({NAME!r}).version, flush=True)
        if pid:
            os.waitpid(pid, 0)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline().strip(), proc.stdout.readline().strip()]
    assert sorted(lines) == ["child ready", "parent ready"], proc.stderr.read() if proc.stderr else ""
    version = release_next(store, "Hi")
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    assert sorted(out.split("\n")[:2]) == [f"child {version}", f"parent {version}"]


# --- in this process ----------------------------------------------------------------------


def test_get_returns_what_store_get_returns(served: tuple[Store, Server], client: Client) -> None:
    store, _ = served
    released(store, "chat", CHAT)
    for stage in ("prod", "tst", "dev"):
        ours, theirs = client.get(NAME, stage), store.get(NAME, stage)
        assert ours == dataclasses.replace(theirs, tests=None)  # a stage read carries no tests.yaml
        assert (ours.stale, ours.age) == (False, 0.0)
        assert ours.render(name="Ada") == theirs.render(name="Ada") == "Hello Ada, how can I help?\n"
    assert client.get("chat").render(question="Hi?") == store.get("chat").render(question="Hi?")
    by_version = client.get(NAME, version="v1.0")
    assert by_version == store.prompt(NAME, "v1.0")
    assert client.get(NAME, ref="v1.0") == by_version
    assert client.get(NAME, ref="tst") == client.get(NAME, "tst")
    assert client.get(NAME, version="1.0") is client.get(NAME, version="v1.0")  # one cached copy
    client.close()
    with pytest.raises(InvalidInput, match=r"Client\('http://127.0.0.1:\d+', cache_dir='.*'\) is closed"):
        client.get(NAME)


def test_bad_arguments_are_refused_before_any_request(client: Client) -> None:
    with pytest.raises(InvalidInput, match="use one of dev, tst, prod"):
        client.get(NAME, "staging")
    with pytest.raises(InvalidInput, match="invalid prompt name '../etc'"):
        client.get("../etc")
    with pytest.raises(InvalidInput, match=r"give one of stage=, version= or ref= to get\(\)"):
        client.get(NAME, "tst", version="v1.0")
    with pytest.raises(
        InvalidInput, match="ref='0123abcd' is a revision: a Client reads a stage or a version"
    ):
        client.get(NAME, ref="0123abcd")
    with pytest.raises(InvalidInput, match="invalid server URL 'ftp://x'"):
        Client("ftp://x")


def test_importing_the_client_loads_no_server_jinja2_or_pygit2() -> None:
    code = textwrap.dedent(
        """
        import sys
        heavy = ("fastapi", "starlette", "pydantic", "uvicorn", "jinja2", "pygit2", "yaml", "httpx")
        loaded = lambda: sorted(m for m in heavy if m in sys.modules)
        from promptgit import Client
        import promptgit.client
        print(loaded())
        from promptgit import Prompt
        Prompt("x", "v1.0", "", {"template": "Hi {{ name }}"}).render(name="Ada")
        print(loaded())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "['jinja2']"]


def test_warm_reads_come_from_memory_and_follow_promotions(
    served: tuple[Store, Server], client: Client
) -> None:
    store, _ = served
    first = client.get(NAME)
    watching(client)
    assert client.get(NAME) is first  # the same object: no request, no copy
    version = release_next(store, "Hi")
    until(lambda: client.get(NAME).version == version, f"the client to serve {version}")
    assert client.get(NAME).render(name="Ada") == "Hi Ada, how can I help?\n"
    assert client.get(NAME, "dev").version == version  # every stage the watch saw move
    assert client.get(NAME, version="v1.0") is client.get(NAME, version="v1.0")  # a release never changes


def test_a_new_name_joins_the_watch(served: tuple[Store, Server], client: Client) -> None:
    store, _ = served
    client.get(NAME)
    watching(client)
    released(store, "other")
    client.get("other")
    watching(client, "other")
    assert client.status()["watching"] == ["other", NAME]
    store.new_version("other", "prod", actor=OWNER)
    until(lambda: client.get("other", "dev").version == "v1.1", "dev's new draft")


def test_without_a_watch_copies_are_revalidated_after_max_age(served: tuple[Store, Server]) -> None:
    store, server = served
    with (
        Client(server.url, watch=False, max_age=3600) as patient,
        Client(server.url, watch=False, max_age=0) as eager,
    ):
        assert patient.get(NAME).version == eager.get(NAME).version == "v1.0"
        first = eager.get(NAME)
        assert eager.get(NAME) is first  # a 304 keeps the copy
        version = release_next(store, "Hi")
        assert eager.get(NAME).version == version  # asked again at once
        assert patient.get(NAME).version == "v1.0"  # within max_age: memory
        assert patient.status()["watching"] == []


def test_not_found_raises_and_the_fallback_is_not_used(client: Client) -> None:
    with pytest.raises(NotFound, match="no prompt named 'missing'"):
        client.get("missing", fallback="Hi")
    with pytest.raises(NotFound, match=r"prompt 'support/greeting' has no version v9.9 \(versions: v1.0\)"):
        client.get(NAME, version="v9.9")


def test_archived_and_deleted_prompts_raise_and_are_never_served_from_a_copy(
    served: tuple[Store, Server], tmp_path: Path
) -> None:
    store, server = served
    cache = tmp_path / "cache"
    with Client(server.url, cache_dir=cache) as c:
        c.get(NAME)
        watching(c)
        assert snapshots.path(cache, (NAME, "stage", "prod")).exists()
        store.archive(NAME, actor=OWNER, reason="replaced")

        def archived() -> bool:
            try:
                c.get(NAME)
            except PromptArchived as e:
                assert "is archived" in str(e) and "replaced" in str(e)
                return True
            return False

        until(archived, "the archive to reach the client")
        assert not snapshots.path(cache, (NAME, "stage", "prod")).exists()
        server.stop()
        with pytest.raises(ServerUnavailable):  # no copy left to serve, anywhere
            c.get(NAME)


def test_a_renamed_prompt_is_followed_with_one_warning(
    served: tuple[Store, Server], client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    store, _ = served
    client.get(NAME)
    store.rename(NAME, "support/welcome", actor=OWNER)
    with caplog.at_level(logging.WARNING, "promptgit.client"):
        until(lambda: client.get(NAME).name == "support/welcome", "the client to follow the rename")
        client.get(NAME)
    assert [r.getMessage() for r in caplog.records] == [
        f"prompt '{NAME}' was renamed to 'support/welcome' on {client.url}: serving 'support/welcome'; "
        "use the new name in get() (the old one stops answering when the server's redirect ends)"
    ]
    watching(client, "support/welcome")


def test_tokens_refused_raise_and_are_never_served_from_a_copy(served: tuple[Store, Server]) -> None:
    store, server = served
    token = store.create_token("app", "reader")
    store.create_token("other", "reader")  # revoking the last token would open this server again
    with Client(server.url) as anonymous, pytest.raises(Forbidden, match="needs a token with role 'reader'"):
        anonymous.get(NAME)
    with (
        Client(server.url, token="wrong") as wrong,
        pytest.raises(Forbidden, match="unknown or revoked token"),
    ):
        wrong.get(NAME)
    with Client(server.url, token=token) as c:
        assert c.get(NAME).version == "v1.0"
        watching(c)
        store.revoke_token("app")

        def refused() -> bool:
            try:
                c.get(NAME)
            except Forbidden as e:
                assert "Client sends its token= as Authorization: Bearer" in str(e)
                return True
            return False

        until(refused, "the revoked token to be refused")


def test_a_fallback_is_served_only_with_no_server_and_no_copy(caplog: pytest.LogCaptureFixture) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with Client(nowhere) as c, caplog.at_level(logging.WARNING, "promptgit.client"):
        with pytest.raises(ServerUnavailable) as info:
            c.get(NAME)
        assert str(info.value).startswith(
            f"promptgit server {nowhere} is unavailable (ConnectionRefusedError"
        )
        assert str(info.value).endswith(
            "and there is no copy of support/greeting@prod to serve (none in memory, no cache_dir): "
            "start the server or fix the URL, or pass fallback= to get() to serve a default until the server answers"
        )
        for _ in range(3):
            p = c.get(NAME, fallback="Hello {{ name }}")
            assert (p.name, p.version, p.stage, p.stale, p.age) == (
                NAME,
                "fallback",
                "prod",
                True,
                float("inf"),
            )
            assert p.render(name="Ada") == "Hello Ada"
        mine = Prompt(NAME, "v0", "", {"template": "Hey {{ name }}"})
        p = c.get(NAME, "tst", fallback=mine)
        assert (p.stale, p.render(name="Ada")) == (True, "Hey Ada")
        with pytest.raises(InvalidInput, match="fallback= is int"):
            c.get(NAME, "dev", fallback=3)  # type: ignore[arg-type]
    warnings = [r.getMessage() for r in caplog.records]
    assert len([w for w in warnings if "serving the fallback for support/greeting@prod" in w]) == 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: "\0garbage",
        lambda text: text.replace('"format_version": 1', '"format_version": 99'),
        lambda text: text.replace('"server": "http', '"server": "https'),  # another server's
        lambda text: text.replace('"template"', '"tmpl"'),  # a shape no render can use
        lambda text: json.dumps(json.loads(text) | {"key": ["other", "stage", "prod"]}),
    ],
    ids=["truncated", "garbage", "format", "foreign", "shape", "other-prompt"],
)
def test_a_damaged_snapshot_is_ignored_with_a_warning(
    served: tuple[Store, Server],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[str], str],
) -> None:
    _, server = served
    cache = tmp_path / "cache"
    with Client(server.url, cache_dir=cache) as c:
        c.get(NAME)
    file = snapshots.path(cache, (NAME, "stage", "prod"))
    file.write_text(damage(file.read_text()))
    with Client(server.url, cache_dir=cache) as c:  # the server answers: the snapshot is not even read
        assert c.get(NAME).stale is False
    assert json.loads(file.read_text())["format_version"] == 1  # rewritten whole
    file.write_text(damage(file.read_text()))
    server.stop()
    with Client(server.url, cache_dir=cache) as c, caplog.at_level(logging.WARNING, "promptgit.client"):
        with pytest.raises(ServerUnavailable):
            c.get(NAME)
        assert c.get(NAME, fallback="Hi").version == "fallback"
    ignored = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ignoring snapshot")]
    assert len(ignored) == 1 and ignored[0].startswith(f"ignoring snapshot {file} of {NAME}@prod: ")


def test_many_threads_share_one_client_through_promotions(
    served: tuple[Store, Server], client: Client
) -> None:
    store, _ = served
    failures: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                p = client.get(NAME)
                assert p.render(name="Ada") in (
                    "Hello Ada, how can I help?\n",
                    f"{p.version} Ada, how can I help?\n",
                )
                seen.add(p.version)
                time.sleep(0.001)  # leave the writer some of the GIL
        except BaseException as e:  # reported below
            failures.append(e)

    threads = [threading.Thread(target=read) for _ in range(16)]
    for t in threads:
        t.start()
    try:
        versions = []
        for _ in range(3):
            version = store.new_version(NAME, "prod", actor=OWNER).version
            store.edit(NAME, version, {"prompt.yaml": prompt_text(version)}, "next", actor=OWNER)
            store.promote(NAME, version, actor=OWNER)
            store.promote(NAME, version, actor=OWNER)
            versions.append(version)
        until(lambda: client.get(NAME).version == versions[-1], f"{versions[-1]} in every thread")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert versions[-1] in seen


# --- the client's own files, and hostile servers ------------------------------------------


@pytest.mark.parametrize(
    ("key", "file"),
    [
        (("greeting", "stage", "prod"), "greeting@prod.json"),
        (("support/greeting", "version", "v1.2"), "support%2Fgreeting@v1.2.json"),
        (("a/b/c", "version", "My name ../x"), "a%2Fb%2Fc@My%20name%20..%2Fx.json"),
    ],
)
def test_snapshot_files_stay_inside_cache_dir(tmp_path: Path, key: tuple[str, str, str], file: str) -> None:
    assert snapshots.path(tmp_path, key) == tmp_path / file


def test_a_killed_writers_temporary_snapshot_is_swept_when_a_client_starts(tmp_path: Path) -> None:
    import os

    cache = tmp_path / "cache"
    cache.mkdir()
    old, fresh = cache / ".tmp-killed.json", cache / ".tmp-writing.json"
    old.write_text("{")
    fresh.write_text("{")
    long_ago = time.time() - snapshots.LEFTOVER_AGE - 60
    os.utime(old, (long_ago, long_ago))
    with Client("http://127.0.0.1:1", cache_dir=cache, watch=False):
        pass
    assert not old.exists() and fresh.exists()  # a live writer's file is not touched


def test_a_long_name_is_hashed_into_one_file(tmp_path: Path) -> None:
    path = snapshots.path(tmp_path, ("a/" * 120 + "b", "stage", "prod"))
    assert path.parent == tmp_path and len(path.name) < 100 and path.name.startswith("h-")


class Hostile(http.server.BaseHTTPRequestHandler):
    """A server that is not promptgit, answering each path its own way."""

    def do_GET(self) -> None:
        if "/watch" in self.path:
            self.send_response(404)
            self.end_headers()
        elif "huge" in self.path:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                for _ in range(20):
                    self.wfile.write(b" " * (1 << 20))
            except OSError:
                pass
        elif "slow" in self.path:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.trickle(b" ")
        elif "drip" in self.path:  # the headers a byte at a time: every read meets its timeout
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            self.trickle(b"X")
        elif "html" in self.path:
            self.send_response(200)
            self.send_header("Content-Length", "15")
            self.end_headers()
            self.wfile.write(b"<html>hi</html>")
        elif "forbidden" in self.path:
            body = json.dumps({"error": {"code": "forbidden", "message": "no, this role may not"}}).encode()
            self.send_response(403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def trickle(self, byte: bytes) -> None:
        """A byte every half second, for 50 s (or until the client hangs up)."""
        try:
            for _ in range(100):
                self.wfile.write(byte)
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("huge", "an answer of over 8388608 bytes: the client stops there"),
        ("slow", "the answer took longer than 2 s"),
        ("drip", "the answer took longer than 2 s"),
        ("html", "its answer is not a promptgit prompt"),
        ("broken", "it answered HTTP 500"),
    ],
)
def test_a_hostile_server_costs_bounded_time_and_memory(hostile: str, name: str, reason: str) -> None:
    with Client(hostile, timeout=2) as c:
        with pytest.raises(ServerUnavailable) as info:
            c.get(name)
        assert reason in str(info.value)
        assert c.get(name, fallback="Hi").version == "fallback"


def test_a_403_raises(hostile: str) -> None:
    with Client(hostile) as c, pytest.raises(Forbidden, match="no, this role may not"):
        c.get("forbidden", fallback="Hi")


def test_a_server_without_a_watch_endpoint_is_revalidated_instead(
    hostile: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "promptgit.client"), Client(hostile) as c:
        with pytest.raises(ServerUnavailable):
            c.get("broken")
        until(
            lambda: any("has no watch endpoint" in r.getMessage() for r in caplog.records),
            "the client to notice the missing watch",
        )
        assert c.status()["watching"] == []
