"""`GET /watch`: a long poll that answers when a watched stage moves, whoever moved it.

Every test waits for an event with a generous deadline and never asserts a time."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import PROMPT, git, prompt_text
from server_helpers import Server

from promptgit import Actor, Store, changes, tokens

OWNER = Actor("Owner", "owner@example.com")


@pytest.fixture
def served(greeting: Store) -> Iterator[tuple[Store, Server]]:
    """A server whose rescan never comes within a test: only the beacon can wake a watch."""
    server = Server(greeting.path, env={"PROMPTGIT_WATCH_RESCAN": "3600"})
    yield greeting, server
    server.stop()


def watch(server: Server, *names: str, since: str | None = None, timeout: float = 30) -> dict[str, Any]:
    params: list[tuple[str, str | float]] = [("prompt", n) for n in names]
    if since is not None:
        params += [("since", since), ("timeout", timeout)]
    r = httpx.get(server.url + "/watch", params=params, timeout=timeout + 30)
    assert r.status_code == 200, r.text
    return dict(r.json())


class Waiting:
    """A watch request in a thread, sent before the change it should see."""

    def __init__(self, server: Server, *names: str, since: str) -> None:
        self.answer: dict[str, Any] | None = None
        self.thread = threading.Thread(target=self._run, args=(server, names, since))
        self.thread.start()

    def _run(self, server: Server, names: tuple[str, ...], since: str) -> None:
        self.answer = watch(server, *names, since=since)

    def result(self) -> dict[str, Any]:
        self.thread.join(timeout=60)
        assert self.answer is not None, "the watch never answered"
        return self.answer


def test_without_since_it_answers_at_once_with_every_stage_tip(served: tuple[Store, Server]) -> None:
    store, server = served
    answer = watch(server, "greeting")
    repo = store.path / "greeting.git"
    assert answer["prompts"] == {
        "greeting": {"dev": git(repo, "rev-parse", "dev").strip(), "tst": None, "prod": None}
    }
    assert answer == watch(server, "greeting")  # same tips, same cursor
    assert watch(server, "greeting", "nosuch")["prompts"]["nosuch"] is None


def test_the_tips_are_the_stage_reads_etags(served: tuple[Store, Server]) -> None:
    store, server = served
    store.promote("greeting", "v1.0", actor=OWNER)
    tst = watch(server, "greeting")["prompts"]["greeting"]["tst"]
    etag = httpx.get(server.url + "/prompts/greeting/stages/tst").headers["etag"]
    assert etag == f'"{tst}"'


def test_a_library_write_in_another_process_wakes_a_waiting_watch(served: tuple[Store, Server]) -> None:
    store, server = served
    first = watch(server, "greeting")
    waiting = Waiting(server, "greeting", since=first["cursor"])
    subprocess.run(
        [sys.executable, "-m", "promptgit", "--store", str(store.path), "promote", "greeting@v1.0"],
        check=True,
        capture_output=True,
    )
    answer = waiting.result()
    assert answer["cursor"] != first["cursor"]
    assert (
        answer["prompts"]["greeting"]["tst"] == git(store.path / "greeting.git", "rev-parse", "tst").strip()
    )


def test_a_git_push_through_the_hooks_wakes_a_waiting_watch(
    served: tuple[Store, Server], tmp_path: Path
) -> None:
    store, server = served
    store.promote("greeting", "v1.0", actor=OWNER)
    first = watch(server, "greeting")
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(store.path / "greeting.git"), str(work))
    git(work, "checkout", "-q", "-b", "v1.0", "origin/v1.0")
    (work / "prompt.yaml").write_text(prompt_text("Hi"))
    git(work, "commit", "-qam", "friendlier")
    waiting = Waiting(server, "greeting", since=first["cursor"])
    git(work, "push", "-q", "origin", "v1.0")
    answer = waiting.result()["prompts"]["greeting"]
    assert answer["tst"] != first["prompts"]["greeting"]["tst"]  # tst follows the draft it serves
    assert store.get("greeting", "tst").source == prompt_text("Hi")


def test_an_api_write_wakes_a_waiting_watch(served: tuple[Store, Server]) -> None:
    _store, server = served
    first = watch(server, "greeting")
    waiting = Waiting(server, "greeting", since=first["cursor"])
    r = httpx.post(server.url + "/prompts/greeting/versions/v1.0/promote", json={}, timeout=30)
    assert r.status_code == 200, r.text
    assert waiting.result()["prompts"]["greeting"]["tst"] is not None


def test_archive_and_rename_read_as_a_prompt_gone(served: tuple[Store, Server]) -> None:
    store, server = served
    store.create("other", {"prompt.yaml": PROMPT}, "first", actor=OWNER)
    first = watch(server, "greeting", "other")
    waiting = Waiting(server, "greeting", "other", since=first["cursor"])
    store.archive("greeting", actor=Actor("Owner", "owner@example.com", "admin"), reason="unused")
    assert waiting.result()["prompts"]["greeting"] is None
    second = watch(server, "greeting", "other")
    waiting = Waiting(server, "other", "team/other", since=watch(server, "other", "team/other")["cursor"])
    store.rename("other", "team/other", actor=Actor("Owner", "owner@example.com", "admin"))
    renamed = waiting.result()["prompts"]
    assert renamed["other"] is None and renamed["team/other"] == second["prompts"]["other"]


def test_watching_every_prompt_sees_a_new_one(served: tuple[Store, Server]) -> None:
    store, server = served
    first = watch(server)
    assert set(first["prompts"]) == {"greeting"}
    waiting = Waiting(server, since=first["cursor"])
    store.create("team/welcome", {"prompt.yaml": PROMPT}, "first", actor=OWNER)
    assert set(waiting.result()["prompts"]) == {"greeting", "team/welcome"}


def test_a_watch_with_nothing_new_answers_unchanged_at_its_timeout(served: tuple[Store, Server]) -> None:
    _store, server = served
    first = watch(server, "greeting")
    assert watch(server, "greeting", since=first["cursor"], timeout=0.2) == first


def test_a_write_that_bypasses_promptgit_is_seen_by_the_rescan(greeting: Store) -> None:
    store, server = greeting, Server(greeting.path, env={"PROMPTGIT_WATCH_RESCAN": "0.5"})
    try:
        _bypassing_write_seen(store, server)
    finally:
        server.stop()


def test_a_rescan_setting_that_is_no_number_of_seconds_stops_serve(greeting: Store) -> None:
    for bad in ("abc", "0", "-1", "1e9", "nan"):
        with pytest.raises(RuntimeError, match="did not start") as e:
            Server(greeting.path, env={"PROMPTGIT_WATCH_RESCAN": bad})
        assert f"error: PROMPTGIT_WATCH_RESCAN='{bad}' is not a number of seconds from 0.1 to 86400" in str(
            e.value
        )


def _bypassing_write_seen(store: Store, server: Server) -> None:
    first = watch(server, "greeting")
    waiting = Waiting(server, "greeting", since=first["cursor"])
    repo = store.path / "greeting.git"
    before = changes.stamp(store.path)
    git(repo, "update-ref", "refs/heads/tst", git(repo, "rev-parse", "dev").strip())  # no beacon
    assert changes.stamp(store.path) == before
    assert waiting.result()["prompts"]["greeting"]["tst"] is not None


def test_bad_watches_are_clear_422s(served: tuple[Store, Server]) -> None:
    _store, server = served
    r = httpx.get(server.url + "/watch", params=[("prompt", f"p{i}") for i in range(501)], timeout=30)
    assert r.status_code == 422
    assert "at most 500" in r.json()["error"]["message"]
    r = httpx.get(server.url + "/watch", params={"prompt": "greeting", "timeout": 61}, timeout=30)
    assert r.status_code == 422
    assert "timeout" in r.json()["error"]["message"]


def test_a_watch_needs_a_reader_token_when_tokens_exist(greeting: Store) -> None:
    key = tokens.create(greeting.path, "app", "reader")
    server = Server(greeting.path)
    try:
        r = httpx.get(server.url + "/watch", params={"prompt": "greeting"}, timeout=30)
        assert r.status_code == 401
        ok = httpx.get(
            server.url + "/watch",
            params={"prompt": "greeting"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert ok.status_code == 200 and ok.json()["prompts"]["greeting"]["dev"]
    finally:
        server.stop()


def test_many_idle_watchers_and_stage_reads_both_answer(served: tuple[Store, Server]) -> None:
    """200 waiting watches hold no worker: stage reads still answer, and one write wakes all."""
    store, server = served
    store.promote("greeting", "v1.0", actor=OWNER)
    first = watch(server, "greeting")
    waiting = [Waiting(server, "greeting", since=first["cursor"]) for _ in range(200)]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for _ in range(50):
            assert http.get("/prompts/greeting/stages/tst").status_code == 200
    store.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hey")}, "shorter", actor=OWNER)
    answers = {w.result()["cursor"] for w in waiting}
    assert len(answers) == 1 and first["cursor"] not in answers


def test_watching_everything_shares_one_read_until_something_changes(greeting: Store) -> None:
    """A crowd of watch-everything requests (mirrors) costs one read of the whole store
    per change, not one each; a write makes the next request read again."""
    from promptgit.server.watch import Watcher

    watcher = Watcher(Store(greeting.path))
    first, digest = watcher._everything_now()
    assert watcher._everything_now()[0] is first
    greeting.create("other", {"prompt.yaml": PROMPT}, "first", actor=OWNER)  # rings the beacon
    again, moved = watcher._everything_now()
    assert again is not first and set(again) == {"greeting", "other"} and moved != digest
