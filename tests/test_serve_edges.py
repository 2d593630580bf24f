"""`promptgit serve` at its edges, for real on 127.0.0.1: HEAD on every GET route,
If-Match that is not an ETag, /docs with no network, a busy port, package files
that vanish, and a Python without the server extra."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import PROMPT, prompt_text
from server_helpers import Server, free_port

import promptgit
from promptgit import Actor, Store

PACKAGE = Path(promptgit.__file__).parent
_fresh = itertools.count()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Server]]:
    store = Store.init(tmp_path_factory.mktemp("edges") / "prompts")
    owner = Actor("Owner", "owner@example.com")
    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=owner)
    store.promote("greeting", "v1.0", actor=owner)
    server = Server(store.path, {"HOME": str(tmp_path_factory.mktemp("home"))})
    yield store, server
    server.stop()


# Every GET route, with its path filled in; a test below checks none is missing.
GET_ROUTES = {
    "/prompts": "/prompts",
    "/prompts/{name}/versions": "/prompts/greeting/versions",
    "/prompts/{name}/versions/{version_id}/revisions": "/prompts/greeting/versions/v1.0/revisions",
    "/prompts/{name}/versions/{version_id}/approvals": "/prompts/greeting/versions/v1.0/approvals",
    "/prompts/{name}/versions/{version_id}": "/prompts/greeting/versions/v1.0",
    "/diff/{name}": "/diff/greeting?a=dev&b=tst",
    "/prompts/{name}/stages/{stage}/log": "/prompts/greeting/stages/tst/log",
    "/prompts/{name}/stages/{stage}": "/prompts/greeting/stages/tst",
    "/prompts/{name}/actions": "/prompts/greeting/actions",
    "/prompts/{name}": "/prompts/greeting",
    "/watch": "/watch?prompt=greeting",
    "/archive": "/archive",
    "/events/{name}": "/events/greeting",
    "/api/public/v2/prompts/{name}": "/api/public/v2/prompts/greeting?label=staging",
    "/api/public/v2/prompts": "/api/public/v2/prompts",
    "/": "/",
    "/ui/archive": "/ui/archive",
    "/ui/prompts/{name}/diff": "/ui/prompts/greeting/diff?a=dev&b=tst",
    "/ui/prompts/{name}/versions/{version}": "/ui/prompts/greeting/versions/v1.0",
    "/ui/prompts/{name}": "/ui/prompts/greeting",
    "/ui/static/style.css": "/ui/static/style.css",
    "/docs": "/docs",
    "/openapi.json": "/openapi.json",
    "/git/{name}.git/info/refs": "/git/greeting.git/info/refs?service=git-upload-pack",
}


def test_the_table_names_every_get_route(tmp_path: Path) -> None:
    from promptgit.server.api import create_api
    from promptgit.server.auth import Auth
    from promptgit.server.ui import mount_ui

    store = Store.init(tmp_path / "prompts")
    auth = Auth(store, Actor("Owner", "owner@example.com"), open=True)
    app = create_api(store, auth)
    mount_ui(app, store, auth)
    paths = {
        re.sub(r":path}", "}", route.path)
        for route in app.routes
        if "GET" in (getattr(route, "methods", None) or ())
    }
    assert paths | {"/git/{name}.git/info/refs"} == set(GET_ROUTES)


@pytest.mark.parametrize("route", GET_ROUTES)
def test_every_get_route_answers_head(served: tuple[Store, Server], route: str) -> None:
    url = served[1].url + GET_ROUTES[route]
    get = httpx.get(url, timeout=30)
    head = httpx.head(url, timeout=30)
    assert get.status_code == 200, get.text
    assert head.status_code == 200 and head.content == b""
    for header in ("content-type", "etag", "content-length"):
        assert head.headers.get(header) == get.headers.get(header), header


def test_head_on_a_post_only_route_is_405_like_get(served: tuple[Store, Server]) -> None:
    r = httpx.head(served[1].url + "/git/greeting.git/git-upload-pack", timeout=30)
    assert (r.status_code, r.headers["allow"]) == (405, "POST")


def test_the_readme_etag_recipe_gets_an_etag_over_head(served: tuple[Store, Server]) -> None:
    out = subprocess.run(
        ["curl", "-sI", served[1].url + "/prompts/greeting/versions/v1.0"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    tip = served[0].resolve("greeting", "v1.0").revision
    assert f'etag: "{tip}"' in out.stdout.lower()


@pytest.mark.parametrize("if_match", ["", "not an etag", '"unterminated', "deadbeef zzz", ","])
def test_an_empty_or_malformed_if_match_is_a_400_that_shows_a_valid_one(
    served: tuple[Store, Server], if_match: str
) -> None:
    store, server = served
    name = f"if-match-{next(_fresh)}"
    store.create(name, {"prompt.yaml": PROMPT}, "first", actor=Actor("Owner", "owner@example.com"))
    tip = store.resolve(name, "v1.0").revision
    for method, path, body in [
        ("PATCH", f"/prompts/{name}/versions/v1.0", {"content": prompt_text("Hey")}),
        ("POST", f"/prompts/{name}/versions/v1.0/promote", None),
    ]:
        r = httpx.request(method, server.url + path, json=body, headers={"If-Match": if_match}, timeout=30)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == {
            "code": "bad_request",
            "message": f"If-Match {if_match!r} is not an ETag: send the ETag a GET of this version "
            f'returned, e.g. If-Match: "{tip}" (or * for any revision); nothing was changed',
        }
    assert store.resolve(name, "v1.0").revision == tip  # no blind write
    assert store.serving(name, "tst") is None


def test_docs_need_no_network(served: tuple[Store, Server]) -> None:
    r = httpx.get(served[1].url + "/docs", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing from elsewhere
    for route in ("PATCH /prompts/{name}/versions/{version_id}", "GET /prompts/{name}/stages/{stage}"):
        assert f"<code>{route}</code>" in html
    assert 'id="schema-EditIn"' in html and "<code>change_summary</code>" in html
    assert httpx.get(served[1].url + "/redoc", timeout=30).status_code == 404  # it needed a CDN


# --- starting and stopping --------------------------------------------------------------


def serve(store: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`promptgit serve` that is expected to stop by itself."""
    return subprocess.run(
        [sys.executable, "-m", "promptgit", "--store", str(store), "serve", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_a_busy_port_is_named_before_anything_says_serving(store: Store) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = serve(store.path, "--port", str(port))
    assert out.returncode == 1
    assert out.stderr == (
        f"error: port {port} is in use on 127.0.0.1: stop what listens there, "
        "or serve on another port with --port\n"
    )


def _package_copy(where: Path) -> Path:
    """A copy of the promptgit package to run a server from, as an install would be."""
    shutil.copytree(PACKAGE, where / "promptgit", ignore=shutil.ignore_patterns("__pycache__"))
    return where


def _running_from(site: Path) -> dict[str, str]:
    """The environment of a Python that imports promptgit from `site` only
    (PYTHONSAFEPATH: not from the current directory, this checkout)."""
    return {"PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}


def test_a_server_keeps_its_page_when_the_package_files_vanish(store: Store, tmp_path: Path) -> None:
    site = _package_copy(tmp_path / "site")
    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=Actor("Owner", "owner@example.com"))
    server = Server(store.path, _running_from(site))
    try:
        shutil.rmtree(site / "promptgit" / "server" / "templates")  # a reinstall under a running server
        shutil.rmtree(site / "promptgit" / "server" / "static")
        for path in ("/", "/ui/prompts/greeting", "/ui/static/style.css", "/docs"):
            r = httpx.get(server.url + path, timeout=30)
            assert r.status_code == 200, (path, r.text)
    finally:
        server.stop()


def test_a_server_without_its_page_files_refuses_to_start_once(store: Store, tmp_path: Path) -> None:
    site = _package_copy(tmp_path / "site")
    (site / "promptgit" / "server" / "templates" / "prompt.html").unlink()
    out = serve(store.path, "--port", str(free_port()), env=_running_from(site))
    assert out.returncode == 1
    missing = site / "promptgit" / "server" / "templates" / "prompt.html"
    assert out.stderr == (
        f"error: the web page's files are missing ({missing}): promptgit's installation is "
        "incomplete or was replaced; reinstall promptgit and start the server again\n"
    )


def test_serve_without_the_server_extra_says_what_to_install(store: Store) -> None:
    """Hidden in this process's own Python; a test in a fresh venv (test_readme.py) does it for real."""
    code = (
        "import sys; sys.modules['uvicorn'] = sys.modules['fastapi'] = None\n"
        "from promptgit.cli import main; sys.argv = ['promptgit', '--store', sys.argv[1], 'serve']; main()"
    )
    out = subprocess.run([sys.executable, "-c", code, str(store.path)], capture_output=True, text=True)
    assert out.returncode == 1 and out.stdout == ""
    first, second = out.stderr.splitlines()
    assert first == "error: 'promptgit serve' needs the server extra, and this Python lacks fastapi, uvicorn"
    assert second.startswith(f"error: install it with: {sys.executable} -m pip install ")
    assert second.endswith("[server]'")


def test_a_damaged_repository_answers_500_naming_it_and_the_others_still_serve(tmp_path: Path) -> None:
    """A ref file holding no sha, a config that does not parse: reads of those prompts
    answer 500 `damaged`, naming the prompt with no server path in it, the operator's
    log says so too, and every other prompt is served."""
    store = Store.init(tmp_path / "prompts")
    owner = Actor("Owner", "owner@example.com")
    for name in ("greeting", "broken", "badconfig"):
        store.create(name, {"prompt.yaml": PROMPT}, "first", actor=owner)
    (store.path / "broken.git" / "refs" / "heads" / "dev").write_text("garbage\n")
    (store.path / "badconfig.git" / "config").write_text("[core\n")
    server = Server(store.path, {"HOME": str(tmp_path / "home")})
    try:
        for name in ("broken", "badconfig"):
            for path in (f"/prompts/{name}/stages/dev", f"/prompts/{name}/versions", f"/prompts/{name}"):
                r = httpx.get(server.url + path)
                assert r.status_code == 500, path
                error = r.json()["error"]
                assert error["code"] == "damaged", path
                assert f"prompt '{name}' is damaged or unreadable" in error["message"], path
                assert str(tmp_path) not in error["message"], path  # no server paths
        assert httpx.get(server.url + "/prompts/greeting/stages/dev").status_code == 200
    finally:
        server.stop()
    assert "prompt 'broken' is damaged or unreadable" in server.log.read_text()
