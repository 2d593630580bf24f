"""Paged listings: `GET /prompts` and the home page, with cursors that stay good."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import PROMPT
from server_helpers import Server

from promptgit import Actor, Store
from promptgit.server.ui import PROMPTS_PER_PAGE

ADMIN = Actor("Owner", "owner@example.com", "admin")
NAMES = [f"p{i:03d}" for i in range(PROMPTS_PER_PAGE + 5)] + ["team/a", "team/b"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Server]]:
    store = Store.init(tmp_path_factory.mktemp("paging") / "prompts")
    for name in NAMES:
        store.create(name, {"prompt.yaml": PROMPT}, "first", actor=ADMIN)
    store.promote("team/a", "v1.0", actor=ADMIN)
    server = Server(store.path)
    yield store, server
    server.stop()


def next_link(r: httpx.Response) -> str | None:
    found = re.fullmatch(r'<([^>]+)>; rel="next"', r.headers.get("link", ""))
    return found.group(1) if found else None


def test_following_the_next_links_lists_every_prompt_once(served: tuple[Store, Server]) -> None:
    store, server = served
    seen: list[dict[str, object]] = []
    url: str | None = "/prompts?limit=50"
    with httpx.Client(base_url=server.url, timeout=30) as http:
        while url is not None:
            r = http.get(url)
            assert r.status_code == 200
            assert len(r.json()) <= 50
            seen += r.json()
            url = next_link(r)
    assert [p["name"] for p in seen] == sorted(NAMES)
    assert seen == [p.to_json() for p in store.list()]
    assert {"name": "team/a", "dev": "v1.0", "tst": "v1.0", "prod": None} in seen


def test_a_whole_listing_fits_one_default_page_and_has_no_link(served: tuple[Store, Server]) -> None:
    _store, server = served
    r = httpx.get(server.url + "/prompts", timeout=30)
    assert len(r.json()) == len(NAMES) and "link" not in r.headers


def test_a_cursor_is_a_name_and_survives_the_prompt_it_names(served: tuple[Store, Server]) -> None:
    _store, server = served
    r = httpx.get(server.url + "/prompts", params={"after": "p100x", "limit": 2}, timeout=30)
    assert [p["name"] for p in r.json()] == ["p101", "p102"]
    assert next_link(r) == "/prompts?after=p102&limit=2"
    last = httpx.get(server.url + "/prompts", params={"after": "team/a"}, timeout=30)
    assert [p["name"] for p in last.json()] == ["team/b"] and next_link(last) is None


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "many"])
def test_a_bad_limit_is_a_clear_422(served: tuple[Store, Server], limit: str) -> None:
    _store, server = served
    r = httpx.get(server.url + "/prompts", params={"limit": limit}, timeout=30)
    assert r.status_code == 422 and "limit" in r.json()["error"]["message"]


def test_the_home_page_is_paged_with_a_next_page_link(served: tuple[Store, Server]) -> None:
    _store, server = served
    with httpx.Client(base_url=server.url, timeout=30) as http:
        first = http.get("/").text
        assert first.count('data-prompt="') == PROMPTS_PER_PAGE
        following = re.search(r'<a rel="next" href="([^"]+)">Next page</a>', first)
        assert following is not None
        second = http.get(following.group(1).replace("&amp;", "&")).text
        rows = re.findall(r'data-prompt="([^"]+)"', second)
        assert rows == sorted(NAMES)[PROMPTS_PER_PAGE:]
        assert "Next page" not in second and '<a href="/">First page</a>' in second


def test_a_prompt_page_shows_its_newest_versions_and_what_stages_serve(tmp_path: Path) -> None:
    from promptgit.server.ui import VERSIONS_PER_PAGE

    store = Store.init(tmp_path / "prompts")
    store.create("long", {"prompt.yaml": PROMPT}, "first", actor=ADMIN)
    store.promote("long", "v1.0", actor=ADMIN)
    store.promote("long", "v1.0", actor=ADMIN)  # prod serves v1.0, the oldest, throughout
    for _ in range(VERSIONS_PER_PAGE + 9):
        store.new_version("long", actor=ADMIN)
    every = store.version_ids("long")
    server = Server(store.path)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            first = http.get("/ui/prompts/long").text
            rows = re.findall(r'<tr data-version="([^"]+)"', first)
            assert rows == [*reversed(every[-VERSIONS_PER_PAGE:]), "v1.0"]  # newest first, prod pinned
            assert "with 1 older version a stage serves now" in first
            older = re.search(r'<a rel="next" href="([^"]+)">Older versions</a>', first)
            assert older is not None
            second = http.get(older.group(1)).text
            rows2 = re.findall(r'<tr data-version="([^"]+)"', second)
            assert rows2 == [every[-1], *reversed(every[:-VERSIONS_PER_PAGE])]  # dev's, pinned
            assert "Older versions" not in second and "Newest versions" in second
            assert len(first.encode()) < 200_000
    finally:
        server.stop()
