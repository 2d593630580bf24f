"""A prompt's life over HTTP, on a real server with tokens: the API (410 with the
reason, 308 with Location, 403 for too little role, 404), git over HTTP after an
archive or a rename, and the records' wire shape."""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import PROMPT, assert_unchanged, git, prompt_text
from server_helpers import Server

from promptgit import Actor, Store, tokens
from promptgit.names import ROLES
from promptgit.server import lifecycle

_names = itertools.count()
OWNER = Actor("Owner", "owner@example.com")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Server, dict[str, str]]]:
    store = Store.init(tmp_path_factory.mktemp("life") / "prompts")
    keys = {role: tokens.create(store.path, f"{role}-bot", role) for role in ROLES}
    home = tmp_path_factory.mktemp("home")
    server = Server(store.path, {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"})
    yield store, server, keys
    server.stop()


@pytest.fixture
def store(served: tuple[Store, Server, dict[str, str]]) -> Store:
    return served[0]


@pytest.fixture
def as_role(served: tuple[Store, Server, dict[str, str]]) -> Iterator[dict[str, httpx.Client]]:
    _store, server, keys = served
    clients = {
        role: httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {key}"})
        for role, key in keys.items()
    }
    yield clients
    for c in clients.values():
        c.close()


@pytest.fixture
def name(store: Store) -> str:
    n = f"team/greeting-{next(_names)}"
    store.create(n, {"prompt.yaml": PROMPT}, "first", actor=OWNER)
    return n


def error(r: httpx.Response, status: int, code: str, text: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code, body
    assert text in body["error"]["message"], body["error"]["message"]


def test_archive_answers_410_with_the_reason_and_restore_brings_it_back(
    store: Store, as_role: dict[str, httpx.Client], name: str
) -> None:
    releaser, reader = as_role["releaser"], as_role["reader"]
    r = releaser.post(f"/prompts/{name}/archive", json={"reason": "superseded"})
    assert r.status_code == 200, r.text
    event = r.json()
    assert (event["event"], event["name"], event["from"], event["by"], event["reason"]) == (
        "archive", name, None, "releaser-bot <releaser-bot@promptgit>", "superseded")  # fmt: skip
    why = (
        f"prompt '{name}' is archived (by releaser-bot <releaser-bot@promptgit> at {event['at']}: "
        f"superseded): restore it with 'promptgit restore {name}' (role releaser), or see "
        "'promptgit list --archived'"
    )
    for path in ("", "/versions", "/versions/v1.0", "/stages/dev", "/actions", "/stages/dev/log"):
        r = reader.get(f"/prompts/{name}{path}")
        error(r, 410, "archived", why)
        assert r.headers["cache-control"] == "no-store"  # a restore must be seen at once
    error(releaser.post(f"/prompts/{name}/versions", json={}), 410, "archived", why)
    assert name not in [p["name"] for p in reader.get("/prompts").json()]
    listed = [a for a in reader.get("/archive").json() if a["name"] == name]
    assert listed == [{"name": name, "at": event["at"], "by": event["by"], "reason": "superseded"}]

    r = releaser.post(f"/prompts/{name}/restore")
    assert r.status_code == 200 and r.json()["event"] == "restore"
    assert reader.get(f"/prompts/{name}").json()["dev"] == "v1.0"
    assert [e["event"] for e in reader.get(f"/events/{name}").json()] == ["restore", "archive"]


def test_rename_answers_308_to_the_same_route_under_the_new_name(
    store: Store, as_role: dict[str, httpx.Client], name: str
) -> None:
    admin, reader, editor = as_role["admin"], as_role["reader"], as_role["editor"]
    new = name.replace("team/", "moved/")
    r = admin.post(f"/prompts/{name}/rename", json={"to": new})
    assert r.status_code == 200 and (r.json()["from"], r.json()["name"]) == (name, new)
    r = reader.get(f"/prompts/{name}/versions/v1.0?x=1")
    assert r.status_code == 308
    assert r.headers["location"] == f"/prompts/{new}/versions/v1.0?x=1"
    assert r.headers["cache-control"] == "no-store"  # the redirect ends, or the name is taken again
    assert r.json()["error"]["code"] == "renamed" and f"renamed to '{new}'" in r.json()["error"]["message"]
    assert reader.get(f"/prompts/{name}/stages/dev", follow_redirects=True).json()["name"] == new
    # a write to the old name is sent on, with its body, to the new one
    r = editor.post(
        f"/prompts/{name}/versions", json={"change_summary": "via the old name"}, follow_redirects=True
    )
    assert r.status_code == 201 and r.json()["change_summary"] == "via the old name"
    assert store.versions(new)[-1].summary == "via the old name"
    r = reader.get(f"/events/{name}")
    assert r.status_code == 308 and r.headers["location"] == f"/events/{new}"


def test_too_little_role_is_403_and_changes_nothing(
    store: Store, as_role: dict[str, httpx.Client], name: str
) -> None:
    store.create(f"{name}-gone", {"prompt.yaml": PROMPT}, "x", actor=OWNER)
    store.archive(f"{name}-gone", actor=OWNER)
    with assert_unchanged(store):
        error(as_role["editor"].post(f"/prompts/{name}/archive"), 403, "forbidden",
              "editor-bot has role 'editor', and this needs role 'releaser'")  # fmt: skip
        error(
            as_role["reader"].post(f"/prompts/{name}-gone/restore"), 403, "forbidden", "needs role 'releaser'"
        )
        error(as_role["releaser"].post(f"/prompts/{name}/rename", json={"to": "x"}), 403, "forbidden",
              "releaser-bot has role 'releaser', and this needs role 'admin'")  # fmt: skip
        error(as_role["releaser"].delete(f"/prompts/{name}-gone"), 403, "forbidden", "needs role 'admin'")


def test_refusals_are_404_409_422_and_change_nothing(
    store: Store, as_role: dict[str, httpx.Client], name: str
) -> None:
    admin = as_role["admin"]
    store.create(f"{name}-b", {"prompt.yaml": PROMPT}, "x", actor=OWNER)
    with assert_unchanged(store):
        error(admin.post("/prompts/team/nope/archive"), 404, "not_found", "no prompt named 'team/nope'")
        error(admin.post(f"/prompts/{name}/restore"), 404, "not_found", f"no archived prompt named '{name}'")
        error(admin.delete(f"/prompts/{name}"), 409, "rule", "only an archived prompt can be deleted")
        error(admin.delete("/prompts/team/nope"), 404, "not_found", "no archived prompt named 'team/nope'")
        error(
            admin.post(f"/prompts/{name}/rename", json={"to": f"{name}-b"}), 409, "conflict", "already exists"
        )
        error(
            admin.post(f"/prompts/{name}/rename", json={"to": "a/versions"}),
            422,
            "invalid",
            "invalid prompt name",
        )
        error(admin.post(f"/prompts/{name}/rename", json={"to": name, "x": 1}), 422, "invalid", "x")


def test_delete_for_good_over_the_api(store: Store, as_role: dict[str, httpx.Client], name: str) -> None:
    admin = as_role["admin"]
    assert admin.post(f"/prompts/{name}/archive").status_code == 200
    assert admin.delete(f"/prompts/{name}").status_code == 204
    assert name not in [a["name"] for a in admin.get("/archive").json()]
    error(admin.get(f"/prompts/{name}"), 404, "not_found", f"no prompt named '{name}'")
    assert [e["event"] for e in admin.get(f"/events/{name}").json()] == ["delete", "archive"]


def test_git_over_http_refuses_archived_and_names_the_new_url_of_renamed(
    served: tuple[Store, Server, dict[str, str]], name: str, tmp_path: Path
) -> None:
    store, server, keys = served
    host = server.url.removeprefix("http://")

    def url(n: str, role: str = "editor") -> str:
        return f"http://x:{keys[role]}@{host}/git/{n}.git"

    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", "-b", "v1.0", url(name), str(work))
    store.archive(name, actor=OWNER, reason="frozen")
    (work / "prompt.yaml").write_text(prompt_text("Late"))
    git(work, "commit", "-q", "-am", "late")
    for args in (["push", "origin", "v1.0"], ["fetch", "origin"]):
        out = subprocess.run(["git", "-C", str(work), *args], capture_output=True, text=True)
        assert out.returncode != 0
        assert f"remote: prompt '{name}' is archived (by Owner <owner@example.com>" in out.stderr
        assert "frozen): restore it with" in out.stderr and "returned error: 410" in out.stderr

    store.restore(name, actor=OWNER)
    new = name.replace("team/", "renamed/")
    store.rename(name, new, actor=OWNER)
    out = subprocess.run(["git", "-C", str(work), "push", "origin", "v1.0"], capture_output=True, text=True)
    new_url = f"http://{host}/git/{new}.git"
    assert out.returncode != 0
    assert (
        f"remote: prompt '{name}' was renamed to '{new}': its repository is now {new_url} "
        f"(git remote set-url origin {new_url})"
    ) in out.stderr
    git(work, "remote", "set-url", "origin", url(new))
    git(work, "push", "-q", "origin", "v1.0")  # the hooks run under the new name: dev follows
    assert store.get(new, "dev").source == prompt_text("Late")
    assert not (store.path / f"{name}.git").exists()


def test_the_lifecycle_records_are_their_wire_shape(store: Store, name: str) -> None:
    event = store.archive(name, actor=OWNER, reason="r")
    assert {f.alias or n for n, f in lifecycle.PromptEventOut.model_fields.items()} == set(event.to_json())
    lifecycle.PromptEventOut.model_validate(event.to_json())
    archived = next(a for a in store.archived() if a.name == name)
    assert set(lifecycle.ArchivedOut.model_fields) == set(archived.to_json())
    lifecycle.ArchivedOut.model_validate(archived.to_json())
