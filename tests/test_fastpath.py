"""The raw stage read (server/fastpath.py) answers exactly as the FastAPI route does:
the real server against the FastAPI app alone, on the same store, request for request."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import PROMPT, prompt_text
from fastapi.testclient import TestClient
from server_helpers import Server

from promptgit import Actor, Store
from promptgit.server.api import create_api
from promptgit.server.auth import Auth
from promptgit.server.bodies import LARGEST, Bodies

ADMIN = Actor("Owner", "owner@example.com", "admin")
COMPARED = ("etag", "content-type", "content-length", "location")


@pytest.fixture
def both(greeting: Store) -> Iterator[tuple[Store, httpx.Client, TestClient]]:
    store = greeting
    store.promote("greeting", "v1.0", actor=ADMIN)
    store.create("team/welcome", {"prompt.yaml": PROMPT}, "first", actor=ADMIN)
    store.create("old", {"prompt.yaml": PROMPT}, "first", actor=ADMIN)
    store.rename("old", "new", actor=ADMIN)
    store.create("gone", {"prompt.yaml": PROMPT}, "first", actor=ADMIN)
    store.archive("gone", actor=ADMIN, reason="unused")
    server = Server(store.path)
    fastapi = TestClient(create_api(Store(store.path), Auth(store, ADMIN, open=True)), base_url=server.url)
    try:
        with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as real:
            yield store, real, fastapi
    finally:
        server.stop()


def answer(r: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    return r.status_code, r.content, {k: r.headers[k] for k in COMPARED if k in r.headers}


PATHS = [
    "/prompts/greeting/stages/tst",
    "/prompts/greeting/stages/dev",
    "/prompts/greeting/stages/prod",  # nothing released: an error
    "/prompts/greeting/stages/qa",  # no such stage
    "/prompts/team/welcome/stages/dev",
    "/prompts/team%2Fwelcome/stages/dev",
    "/prompts/nosuch/stages/dev",
    "/prompts/old/stages/dev",  # renamed: 308 to the new name
    "/prompts/gone/stages/dev",  # archived: 410
    "/prompts/greeting/stages/tst/log",
    "/prompts/greeting/stages/tst?extra=1",
]


@pytest.mark.parametrize("path", PATHS)
def test_every_answer_is_the_fastapi_routes_answer(
    both: tuple[Store, httpx.Client, TestClient], path: str
) -> None:
    _store, real, fastapi = both
    assert answer(real.get(path)) == answer(fastapi.get(path, follow_redirects=False))


def test_if_none_match_gives_the_same_304s(both: tuple[Store, httpx.Client, TestClient]) -> None:
    store, real, fastapi = both
    tag = real.get("/prompts/greeting/stages/tst").headers["etag"]
    sha = tag.strip('"')
    for header in [tag, f"W/{tag}", sha, f'"nope", {tag}', "*", '"nope"', "", "garbage,,"]:
        path = "/prompts/greeting/stages/tst"
        got = real.get(path, headers={"If-None-Match": header})
        assert answer(got) == answer(fastapi.get(path, headers={"If-None-Match": header})), header
    assert real.get("/prompts/greeting/stages/tst", headers={"If-None-Match": tag}).status_code == 304
    # a new deployment: the old ETag no longer matches, and the body is the new one
    store.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hi")}, "friendlier", actor=ADMIN)
    fresh = real.get("/prompts/greeting/stages/tst", headers={"If-None-Match": tag})
    assert fresh.status_code == 200 and fresh.json()["source"] == prompt_text("Hi")
    assert answer(fresh) == answer(
        fastapi.get("/prompts/greeting/stages/tst", headers={"If-None-Match": tag})
    )


def test_head_is_the_gets_status_and_headers(both: tuple[Store, httpx.Client, TestClient]) -> None:
    _store, real, _fastapi = both
    got, head = real.get("/prompts/greeting/stages/tst"), real.head("/prompts/greeting/stages/tst")
    assert head.status_code == 200 and head.content == b""
    assert {k: head.headers[k] for k in ("etag", "content-length")} == {
        k: got.headers[k] for k in ("etag", "content-length")
    }


def test_the_raw_path_keeps_the_tokens_rule(greeting: Store) -> None:
    from promptgit import tokens

    greeting.promote("greeting", "v1.0", actor=ADMIN)
    key = tokens.create(greeting.path, "app", "reader")
    server = Server(greeting.path)
    try:
        url = server.url + "/prompts/greeting/stages/tst"
        assert httpx.get(url, timeout=30).status_code == 401
        bad = httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=30)
        assert bad.status_code == 401 and "unknown or revoked token" in bad.text
        assert httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code == 200
    finally:
        server.stop()


def test_good_reads_are_answered_in_front_of_fastapi_and_errors_are_not(greeting: Store) -> None:
    """Without this, the parity above would hold just as well if nothing took the raw path."""
    import asyncio

    from promptgit.server.fastpath import StageReads

    greeting.promote("greeting", "v1.0", actor=ADMIN)
    reads = StageReads(Store(greeting.path))

    def ask(path: str, method: str = "GET") -> tuple[bool, list[dict[str, object]]]:
        sent: list[dict[str, object]] = []

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "headers": []}
        return asyncio.run(reads(scope, send)), sent

    taken, sent = ask("/prompts/greeting/stages/tst")
    assert taken and sent[0]["status"] == 200
    assert ask("/prompts/greeting/stages/tst", "POST") == (False, [])
    for path in [
        "/prompts/greeting/stages/prod",
        "/prompts/nosuch/stages/dev",
        "/prompts/greeting/stages/qa",
    ]:
        assert ask(path) == (False, []), path


# --- Langfuse's prompt read (server/langfuse.py LangfuseReads) ---------------------------

LANGFUSE = "/api/public/v2/prompts/"
LANGFUSE_PATHS = [
    LANGFUSE + "greeting",  # nothing released: production is an error
    *(
        LANGFUSE + f"greeting?label={label}"
        for label in ("staging", "tst", "dev", "latest", "production", "bogus", "", "d%65v")
    ),
    LANGFUSE + "greeting?version=1000",
    LANGFUSE + "greeting?label=dev&label=tst",
    LANGFUSE + "greeting?label=dev&version=1000",
    LANGFUSE + "greeting?label=dev&extra=1",
    LANGFUSE + "team/welcome?label=dev",
    LANGFUSE + "team%2Fwelcome?label=latest",
    LANGFUSE + "nosuch?label=dev",
    LANGFUSE + "old?label=dev",  # renamed: 308 to the new name
    LANGFUSE + "gone?label=dev",  # archived: 410
    LANGFUSE + "greeting/?label=dev",
    LANGFUSE,
]


def test_every_langfuse_answer_is_the_fastapi_routes_answer(
    both: tuple[Store, httpx.Client, TestClient],
) -> None:
    _store, real, fastapi = both
    for path in LANGFUSE_PATHS:
        for _ in range(2):  # the second from the kept body, where one is kept
            assert answer(real.get(path)) == answer(fastapi.get(path, follow_redirects=False)), path


def test_a_kept_langfuse_body_follows_every_change(both: tuple[Store, httpx.Client, TestClient]) -> None:
    store, real, fastapi = both

    def same() -> dict[str, object]:
        for query in ("label=dev", "label=staging", "label=latest", "version=1000", "version=1001"):
            path = LANGFUSE + f"greeting?{query}"
            got = real.get(path)
            assert answer(got) == answer(fastapi.get(path)), query
        return dict(real.get(LANGFUSE + "greeting?label=latest").json())

    assert same()["version"] == 1000
    store.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hi")}, "friendlier", actor=ADMIN)
    assert "Hi" in str(same()["prompt"])
    store.new_version("greeting", actor=ADMIN)  # dev moves to v1.1, the latest
    assert same()["version"] == 1001
    store.rollback("greeting", "v1.0", stage="dev", actor=ADMIN)  # dev no longer serves the latest
    assert same()["labels"] == ["latest"]
    store.delete("greeting", "v1.1", actor=ADMIN)  # no stage tip moves
    assert same()["version"] == 1000


def test_a_kept_langfuse_version_body_follows_its_own_branch(
    both: tuple[Store, httpx.Client, TestClient],
) -> None:
    store, real, fastapi = both
    store.new_version("greeting", actor=ADMIN)  # v1.1
    store.new_version("greeting", "v1.0", actor=ADMIN)  # v1.2, the latest, served by dev
    path = LANGFUSE + "greeting?version=1001"  # v1.1, which no stage serves
    for _ in range(2):  # the second from the kept body
        assert answer(real.get(path)) == answer(fastapi.get(path))
    store.edit(
        "greeting", "v1.1", {"prompt.yaml": prompt_text("Yo")}, "casual", actor=ADMIN
    )  # no stage moves
    got = real.get(path)
    assert answer(got) == answer(fastapi.get(path))
    assert "Yo" in str(got.json()["prompt"])


def test_langfuse_reads_are_answered_in_front_of_fastapi_and_errors_are_not(
    both: tuple[Store, httpx.Client, TestClient],
) -> None:
    """Without this, the parity above would hold just as well if nothing took the raw path."""
    import asyncio

    store = Store(both[0].path)
    reads = create_api(store, Auth(store, ADMIN, open=True)).state.langfuse_reads

    def ask(path: str, query: bytes = b"", method: str = "GET") -> tuple[bool, int | None]:
        sent: list[dict[str, object]] = []

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "query_string": query, "headers": []}
        taken = asyncio.run(reads(scope, send))
        return taken, sent[0]["status"] if sent else None  # type: ignore[return-value]

    assert ask(LANGFUSE + "greeting", b"label=tst") == (True, 200)
    assert ask(LANGFUSE + "greeting", b"label=tst") == (True, 200)  # kept
    assert ask(LANGFUSE + "greeting", b"label=tst", "POST") == (False, None)
    assert ask(LANGFUSE + "greeting", b"version=1000") == (True, 200)
    assert ask(LANGFUSE + "greeting", b"version=1000") == (True, 200)  # kept
    kept = len(reads._bodies)
    for spelled in (b"version=01000", b"version=000001000"):  # the same version: the same body
        assert ask(LANGFUSE + "greeting", spelled) == (True, 200)
    assert len(reads._bodies) == kept
    for path, query in [
        (LANGFUSE + "greeting", b""),  # nothing in prod
        (LANGFUSE + "nosuch", b"label=dev"),
        (LANGFUSE + "greeting", b"label=qa"),
        (LANGFUSE + "greeting", b"version=1001"),  # no such version
        (LANGFUSE + "greeting", b"version=1000&label=dev"),
        (LANGFUSE + "greeting", b"version=v1.0"),
        (LANGFUSE + "old", b"label=dev"),
    ]:
        assert ask(path, query) == (False, None), (path, query)


def test_kept_bodies_are_bounded_in_number_and_bytes() -> None:
    bodies = Bodies(count=3, size=100)
    for i in range(5):
        bodies.put(("p", i), "tip", b"x" * 10)
    assert (
        len(bodies) == 3 and bodies.get(("p", 1), "tip") is None and bodies.get(("p", 4), "tip") == b"x" * 10
    )
    assert bodies.get(("p", 4), "another tip") is None  # read at other refs: not this body
    bodies.put(("p", 5), "tip", b"y" * 90)  # 100 bytes at most: the least recently used go
    assert [bodies.get(("p", i), "tip") is not None for i in (2, 3, 4, 5)] == [False, False, True, True]
    bodies.put(("p", 5), "tip", b"z" * 101)  # too large to keep: sent, and the older body gone
    assert len(bodies) == 1 and bodies.get(("p", 5), "tip") is None
    large = Bodies()
    large.put("p", "tip", b"w" * (LARGEST + 1))
    assert len(large) == 0
