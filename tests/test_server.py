"""`promptgit serve` for real: a server process on 127.0.0.1, spoken to over HTTP,
cloned from and pushed to with the real git binary."""

from __future__ import annotations

import base64
import itertools
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from conftest import PROMPT, git, prompt_text, refs
from server_helpers import Server

from promptgit import Store, tokens
from promptgit.cli import cli

TESTS = "cases:\n  - name: greets\n    vars: {name: Ada}\n    contains: Ada\n"
_names = itertools.count()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Server]]:
    home = tmp_path_factory.mktemp("home")
    os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
    store = Store.init(tmp_path_factory.mktemp("served") / "prompts")
    server = Server(store.path, {"HOME": str(home), "GIT_AUTHOR_NAME": "Server Owner",
                                 "GIT_AUTHOR_EMAIL": "owner@example.com"})  # fmt: skip
    yield store, server
    server.stop()


@pytest.fixture
def api(served: tuple[Store, Server]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[1].url, timeout=30) as client:
        yield client


@pytest.fixture
def name(api: httpx.Client) -> str:
    """A fresh prompt (in a collection) for this test, created over the API."""
    n = f"team/greeting-{next(_names)}"
    r = api.post("/prompts", json={"name": n, "content": PROMPT, "tests": TESTS, "change_summary": "first"})
    assert r.status_code == 201, r.text
    return n


def error(r: httpx.Response, status: int, code: str, text: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert text in body["error"]["message"], body["error"]["message"]


# --- prompts and versions ------------------------------------------------------


def test_create_list_and_details(api: httpx.Client, name: str) -> None:
    assert {"name": name, "dev": "v1.0", "tst": None, "prod": None} in api.get("/prompts").json()
    d = api.get(f"/prompts/{name}").json()
    assert (d["name"], d["dev"], d["tst"], d["prod"], d["versions"]) == (name, "v1.0", None, None, 1)
    assert d["stages"]["dev"]["version"] == "v1.0" and d["stages"]["prod"] is None
    error(api.post("/prompts", json={"name": name, "content": PROMPT}), 409, "conflict", "already exists")
    error(
        api.post("/prompts", json={"name": "../x", "content": PROMPT}),
        422,
        "invalid",
        "invalid prompt name '../x'",
    )
    error(
        api.post("/prompts", json={"name": "x", "content": "template: {{ oops\n"}),
        422,
        "invalid",
        "prompt.yaml:",
    )
    error(api.post("/prompts", json={"name": "x"}), 422, "invalid", "content: Field required")
    error(
        api.post("/prompts", content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "invalid",
        "JSON",
    )
    error(api.get("/prompts/nope/versions"), 404, "not_found", "no prompt named 'nope'")
    obj = {"name": f"{name}-obj", "content": {"template": "Hi {{ who }}", "variables": ["who"]}}
    assert api.post("/prompts", json=obj).status_code == 201


def test_version_history_and_new_versions(api: httpx.Client, name: str) -> None:
    [v1] = api.get(f"/prompts/{name}/versions").json()
    assert set(v1) >= {
        "version_id",
        "stage",
        "current_in",
        "created_at",
        "updated_at",
        "change_summary",
        "revision",
    }
    assert (v1["version_id"], v1["stage"], v1["current_in"], v1["change_summary"]) == (
        "v1.0",
        "DEV",
        ["dev"],
        "first",
    )
    r = api.post(f"/prompts/{name}/versions", json={"from": "v1.0", "description": "second try"})
    assert (
        r.status_code == 201
        and r.json()["version_id"] == "v1.1"
        and r.headers["etag"] == f'"{r.json()["revision"]}"'
    )
    assert r.json()["current_in"] == ["dev"]
    r = api.post(f"/prompts/{name}/versions", json={"version_name": "v3.0", "content": prompt_text("Yo")})
    assert r.status_code == 201 and r.json()["version_id"] == "v3.0"
    assert api.get(f"/prompts/{name}/versions/v3.0").json()["source"] == prompt_text("Yo")
    error(
        api.post(f"/prompts/{name}/versions", json={"version_name": "v3.0"}), 409, "conflict", "v3.0 is taken"
    )
    error(
        api.post(f"/prompts/{name}/versions", json={"from": "v9.9"}), 404, "not_found", "has no version v9.9"
    )
    assert api.post(f"/prompts/{name}/versions", json={"major": True}).json()["version_id"] == "v4.0"
    assert [v["version_id"] for v in api.get(f"/prompts/{name}/versions").json()] == [
        "v1.0",
        "v1.1",
        "v3.0",
        "v4.0",
    ]


def test_edit_with_etags(api: httpx.Client, name: str) -> None:
    r = api.get(f"/prompts/{name}/versions/v1.0")
    etag, first = r.headers["etag"], r.json()
    assert first["content"]["variables"] == ["name"] and first["tests"] == TESTS
    r = api.patch(f"/prompts/{name}/versions/v1.0", json={"content": prompt_text("Hi"), "change_summary": "hi"},
                  headers={"If-Match": etag})  # fmt: skip
    assert r.status_code == 200 and r.headers["etag"] != etag
    assert r.json()["change_summary"] == "hi" and r.json()["tests"] == TESTS  # tests.yaml kept
    stale = api.patch(
        f"/prompts/{name}/versions/v1.0", json={"content": prompt_text("Hey")}, headers={"If-Match": etag}
    )
    error(stale, 412, "precondition_failed", "which If-Match does not name")
    both = api.patch(f"/prompts/{name}/versions/v1.0", json={"content": prompt_text("Hey")},
                     headers={"If-Match": f'"{"0" * 40}", {r.headers["etag"]}'})  # fmt: skip
    assert both.status_code == 200  # a list that names the current revision matches
    weak = api.patch(f"/prompts/{name}/versions/v1.0", json={"content": prompt_text("Ho")},
                     headers={"If-Match": "W/" + both.headers["etag"]})  # fmt: skip
    error(weak, 412, "precondition_failed", "If-Match does not name")  # If-Match compares strongly
    assert api.get(f"/prompts/{name}/stages/dev").json()["source"] == prompt_text("Hey")  # dev followed
    error(api.patch(f"/prompts/{name}/versions/v1.0", json={}), 422, "invalid", "nothing to save")
    error(api.patch(f"/prompts/{name}/versions/v1.0", json={"content": "template: x\nbogus: 1\n"}), 422, "invalid",
          "prompt.yaml:2: unknown key 'bogus'")  # fmt: skip
    error(
        api.patch(f"/prompts/{name}/versions/v7.7", json={"content": PROMPT}),
        404,
        "not_found",
        "has no version v7.7",
    )
    error(  # any other one-line text is a version's name
        api.patch(f"/prompts/{name}/versions/garbage", json={"content": PROMPT}),
        404,
        "not_found",
        "has no version named 'garbage'",
    )
    error(
        api.patch(f"/prompts/{name}/versions/v1.2.3", json={"content": PROMPT}),
        422,
        "invalid",
        "invalid ref 'v1.2.3'",
    )
    revs = api.get(f"/prompts/{name}/versions/v1.0/revisions").json()
    assert [x["summary"] for x in revs] == ["Edit v1.0", "hi", "first"]


def test_promote_release_and_rules(api: httpx.Client, name: str) -> None:
    tip = api.get(f"/prompts/{name}/versions/v1.0").headers["etag"]
    error(api.post(f"/prompts/{name}/versions/v1.0/promote", headers={"If-Match": '"' + "0" * 40 + '"'}),
          412, "precondition_failed", "is at revision")  # fmt: skip
    error(api.post(f"/prompts/{name}/versions/v1.0/promote", headers={"If-Match": tip[1:8]}),
          412, "precondition_failed", "If-Match does not name")  # a short sha is not the ETag  # fmt: skip
    d = api.post(f"/prompts/{name}/versions/v1.0/promote", headers={"If-Match": tip}).json()
    assert (d["stage"], d["action"], d["version"]) == ("tst", "promote", "v1.0")
    d = api.post(f"/prompts/{name}/versions/v1.0/promote", json={"to": "prod"}).json()
    assert d["stage"] == "prod"
    error(api.patch(f"/prompts/{name}/versions/v1.0", json={"content": PROMPT + "# x\n"}), 409, "rule",
          "v1.0 is released and immutable")  # fmt: skip
    error(api.delete(f"/prompts/{name}/versions/v1.0"), 409, "rule", "never moves and is never deleted")
    api.post(f"/prompts/{name}/versions", json={"from": "v1.0"})
    error(
        api.post(f"/prompts/{name}/versions/v1.1/promote", json={"to": "prod"}),
        409,
        "rule",
        "promote it to TST first",
    )
    error(api.post(f"/prompts/{name}/versions/v1.1/promote", json={"to": "dev"}), 422, "invalid", "to:")


def test_rollback_and_revert(api: httpx.Client, name: str) -> None:
    for _ in range(2):
        api.post(f"/prompts/{name}/versions/v1.0/promote")
    api.post(f"/prompts/{name}/versions", json={"from": "v1.0", "content": prompt_text("Hi")})
    for _ in range(2):
        api.post(f"/prompts/{name}/versions/v1.1/promote")
    assert api.get(f"/prompts/{name}").json()["prod"] == "v1.1"
    r = api.post(f"/prompts/{name}/versions/v1.0/rollback")
    assert r.status_code == 200 and r.json()["prod"] == "v1.0"
    r = api.put(f"/prompts/{name}/versions/v1.0/revert?stage=prod")
    assert r.status_code == 200 and r.json()["prod"] == "v1.0"  # idempotent
    assert [e["action"] for e in api.get(f"/prompts/{name}/stages/prod/log").json()] == [
        "rollback",
        "promote",
        "promote",
    ]
    error(api.post(f"/prompts/{name}/versions/v9.9/rollback"), 404, "not_found", "has no version v9.9")
    api.post(f"/prompts/{name}/versions", json={"from": "v1.1"})  # v1.2, a draft
    error(
        api.post(f"/prompts/{name}/versions/v1.2/rollback"), 409, "rule", "prod rolls back only to a release"
    )
    r = api.put(f"/prompts/{name}/versions/v1.0/revert", json={"stage": "dev"})
    assert r.json()["dev"] == "v1.0"


def test_delete_a_draft(api: httpx.Client, name: str) -> None:
    api.post(f"/prompts/{name}/versions", json={"from": "v1.0"})  # v1.1 current dev
    error(api.delete(f"/prompts/{name}/versions/v1.1"), 409, "rule", "current DEV version")
    assert api.delete(f"/prompts/{name}/versions/v1.0").status_code == 204
    error(api.delete(f"/prompts/{name}/versions/v1.0"), 404, "not_found", "has no version v1.0")


def test_stage_reads_with_if_none_match(api: httpx.Client, name: str) -> None:
    r = api.get(f"/prompts/{name}/stages/dev")
    etag = r.headers["etag"]
    assert r.json()["deployment"] == etag.strip('"') and r.json()["version"] == "v1.0"
    r304 = api.get(f"/prompts/{name}/stages/dev", headers={"If-None-Match": etag})
    assert r304.status_code == 304 and r304.content == b"" and r304.headers["etag"] == etag
    assert api.get(f"/prompts/{name}/stages/dev", headers={"If-None-Match": "*"}).status_code == 304
    assert api.get(f"/prompts/{name}/stages/dev", headers={"If-None-Match": "W/" + etag}).status_code == 304
    api.patch(f"/prompts/{name}/versions/v1.0", json={"content": prompt_text("Hi")})
    r = api.get(f"/prompts/{name}/stages/dev", headers={"If-None-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] != etag
    error(api.get(f"/prompts/{name}/stages/prod"), 404, "not_found", "no deployment in prod yet")
    error(api.get(f"/prompts/{name}/stages/qa"), 422, "invalid", "stage")
    assert api.post(f"/prompts/{name}/stages/dev/render", json={"vars": {"name": "Ada"}}).json() == {
        "text": "Hi Ada, how can I help?\n"
    }
    error(
        api.post(f"/prompts/{name}/stages/dev/render", json={"vars": {}}),
        422,
        "invalid",
        """'name' is undefined: give it a value (send it in "vars", e.g. {"vars": {"name": "..."}})""",
    )
    log = api.get(f"/prompts/{name}/stages/dev/log").json()
    assert [e["action"] for e in log] == ["update", "create"]


def test_chat_render(api: httpx.Client) -> None:
    chat = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{ q }}"}]}
    assert api.post("/prompts", json={"name": "chatty", "content": chat}).status_code == 201
    r = api.post("/prompts/chatty/stages/dev/render", json={"vars": {"q": "Why?"}})
    assert r.json() == {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"}]
    }


def test_run_tests_over_http(api: httpx.Client, name: str) -> None:
    run = api.post(f"/prompts/{name}/versions/v1.0/test").json()
    assert run["passed"] is True and run["env"] == "dev" and run["cases"][0]["name"] == "greets"
    assert api.get(f"/prompts/{name}/versions/v1.0/revisions").json()[0]["tests"][0]["passed"] is True
    api.patch(f"/prompts/{name}/versions/v1.0", json={"tests": "cases: []\n"})
    error(api.post(f"/prompts/{name}/versions/v1.0/test"), 422, "invalid", "has no test cases")


def test_unknown_route_and_method(api: httpx.Client) -> None:
    error(api.get("/nothing-here"), 404, "not_found", "Not Found")
    error(api.put("/prompts"), 405, "method_not_allowed", "Method Not Allowed")


# --- git over HTTP ------------------------------------------------------------------


def test_clone_and_push_over_http(
    served: tuple[Store, Server], api: httpx.Client, name: str, tmp_path: Path
) -> None:
    store, server = served
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", f"{server.url}/git/{name}.git", str(work))
    git(work, "checkout", "-q", "v1.0")
    (work / "prompt.yaml").write_text(prompt_text("Hi"))
    git(work, "commit", "-qam", "over http")
    out = subprocess.run(["git", "-C", str(work), "push", "origin", "v1.0"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "dev now serves the tip of v1.0" in out.stderr
    assert api.get(f"/prompts/{name}/stages/dev").json()["source"] == prompt_text("Hi")
    before = refs(store.path / f"{name}.git")
    out = subprocess.run(
        ["git", "-C", str(work), "push", "origin", "HEAD:refs/heads/prod"], capture_output=True, text=True
    )
    assert out.returncode != 0 and "is not a well-formed deployment" in out.stderr
    assert refs(store.path / f"{name}.git") == before


def test_push_larger_than_a_mebibyte(
    served: tuple[Store, Server], api: httpx.Client, name: str, tmp_path: Path
) -> None:
    """git sends a pack over 1 MiB chunked; the body must reach git http-backend whole."""
    work = tmp_path / "big"
    git(tmp_path, "clone", "-q", f"{served[1].url}/git/{name}.git", str(work))
    git(work, "checkout", "-q", "v1.0")
    for i in range(3):
        noise = base64.b64encode(secrets.token_bytes(450_000)).decode()
        (work / "prompt.yaml").write_text(f"variables: [name]\ntemplate: |\n  Hello {{{{ name }}}} {noise}\n")
        git(work, "commit", "-qam", f"big {i}")
    out = subprocess.run(
        ["git", "-C", str(work), "push", "origin", "v1.0"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    revisions = api.get(f"/prompts/{name}/versions/v1.0/revisions").json()
    assert [r["summary"] for r in revisions[:3]] == ["big 2", "big 1", "big 0"]


def test_serve_refuses_other_addresses_without_tokens(served: tuple[Store, Server]) -> None:
    result = CliRunner().invoke(cli, ["--store", str(served[0].path), "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "refusing to serve on 0.0.0.0 without tokens" in result.stderr


# --- tokens and roles ----------------------------------------------------------------


@pytest.fixture(scope="module")
def authed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Server, dict[str, str]]]:
    home = tmp_path_factory.mktemp("home2")
    store = Store.init(tmp_path_factory.mktemp("authed") / "prompts")
    from promptgit import Actor

    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=Actor("Owner", "owner@example.com"))
    secrets_ = {
        role: tokens.create(store.path, f"{role}-bot", role) for role in ("reader", "editor", "releaser")
    }
    server = Server(store.path, {"HOME": str(home)})
    yield store, server, secrets_
    server.stop()


def as_(server: Server, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def test_roles_over_the_api(authed: tuple[Store, Server, dict[str, str]]) -> None:
    store, server, keys = authed
    with as_(server, None) as anon:
        r = anon.get("/prompts")
        error(r, 401, "unauthorized", "this needs a token with role 'reader' or more")
        assert r.headers["www-authenticate"].startswith("Bearer")
    with as_(server, "pg_wrong") as wrong:
        error(wrong.get("/prompts"), 401, "unauthorized", "unknown or revoked token")
    with as_(server, keys["reader"]) as reader:
        assert reader.get("/prompts").status_code == 200
        assert reader.get("/prompts/greeting/stages/dev").status_code == 200
        error(reader.patch("/prompts/greeting/versions/v1.0", json={"content": prompt_text("Hi")}), 403, "forbidden",
              "reader-bot has role 'reader', and this needs role 'editor'")  # fmt: skip
    with as_(server, keys["editor"]) as editor:
        assert (
            editor.patch("/prompts/greeting/versions/v1.0", json={"content": prompt_text("Hi")}).status_code
            == 200
        )
        assert editor.post("/prompts/greeting/versions/v1.0/promote").json()["stage"] == "tst"
        error(editor.post("/prompts/greeting/versions/v1.0/promote", json={"to": "prod"}), 403, "forbidden",
              "promoting to PROD needs role 'releaser' (you have 'editor')")  # fmt: skip
        error(
            editor.post("/prompts/greeting/versions/v1.0/rollback"), 403, "forbidden", "needs role 'releaser'"
        )
    with as_(server, keys["releaser"]) as releaser:
        d = releaser.post("/prompts/greeting/versions/v1.0/promote", json={"to": "prod"}).json()
        assert d["stage"] == "prod" and d["by"] == "releaser-bot <releaser-bot@promptgit>"
    assert store.versions("greeting")[0].updated.by == "editor-bot <editor-bot@promptgit>"


def basic(token: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"git:{token}".encode()).decode()


def test_roles_over_git(authed: tuple[Store, Server, dict[str, str]], tmp_path: Path) -> None:
    store, server, keys = authed
    url = f"{server.url}/git/greeting.git"
    no_prompt = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}

    def run(*args: str, token: str | None = None, cwd: Path = tmp_path) -> subprocess.CompletedProcess[str]:
        extra = ["-c", f"http.extraHeader={basic(token)}"] if token else []
        return subprocess.run(["git", *extra, *args], cwd=cwd, capture_output=True, text=True, env=no_prompt)

    out = run("clone", "-q", url, "anon")
    assert (out.returncode != 0 and "401" in out.stderr) or "Authentication failed" in out.stderr
    assert run("clone", "-q", url, "work", token=keys["reader"]).returncode == 0
    work = tmp_path / "work"
    git(work, "checkout", "-q", "-b", "v1.1", "origin/dev")
    base = git(work, "rev-parse", "origin/dev^2").strip()
    git(work, "reset", "-q", "--hard", base)
    git(work, "commit", "-q", "--allow-empty", "-m", "Create v1.1", "--trailer", "Promptgit-Created: v1.1",
        "--trailer", "Promptgit-From: v1.0")  # fmt: skip
    before = refs(store.path / "greeting.git")
    out = run("push", "origin", "v1.1", token=keys["reader"], cwd=work)
    assert out.returncode != 0 and "403" in out.stderr
    out = run("push", "origin", "v1.1", cwd=work)
    assert out.returncode != 0
    assert refs(store.path / "greeting.git") == before
    out = run("push", "origin", "v1.1", token=keys["editor"], cwd=work)
    assert out.returncode == 0, out.stderr
    assert "dev now serves the tip of v1.1" in out.stderr
    created = [d for d in store.log("greeting", "dev") if d.version == "v1.1"]
    assert created[0].stamp.by == "editor-bot <editor-bot@promptgit>"  # REMOTE_USER reached the hooks


def test_token_cli(authed: tuple[Store, Server, dict[str, str]]) -> None:
    store, server, _ = authed
    runner = CliRunner()
    result = runner.invoke(
        cli, ["--store", str(store.path), "token", "create", "temp-bot", "--role", "reader"]
    )
    assert result.exit_code == 0
    secret = result.stdout.strip()
    assert secret.startswith("pg_") and "not shown again" in result.stderr
    assert secret not in (store.path / "promptgit.yaml").read_text()
    listed = runner.invoke(cli, ["--store", str(store.path), "token", "list", "--json"])
    assert {"name": "temp-bot", "role": "reader"}.items() <= next(
        t for t in __import__("json").loads(listed.stdout) if t["name"] == "temp-bot"
    ).items()
    with as_(server, secret) as client:
        assert client.get("/prompts").status_code == 200
        assert runner.invoke(cli, ["--store", str(store.path), "token", "revoke", "temp-bot"]).exit_code == 0
        error(client.get("/prompts"), 401, "unauthorized", "unknown or revoked token")
    again = runner.invoke(cli, ["--store", str(store.path), "token", "revoke", "temp-bot"])
    assert again.exit_code == 1 and "no token named 'temp-bot'" in again.stderr
    dup = runner.invoke(
        cli, ["--store", str(store.path), "token", "create", "reader-bot", "--role", "reader"]
    )
    assert dup.exit_code == 1 and "a token named 'reader-bot' exists" in dup.stderr


# --- the guard in front of every route ------------------------------------------------


def test_open_server_answers_only_to_loopback_and_same_origin(api: httpx.Client, name: str) -> None:
    """No tokens means the server trusts whoever reaches it: a DNS-rebinding page
    (another Host) or a cross-site form or fetch (another Origin) must not."""
    error(
        api.get("/prompts", headers={"Host": "evil.example"}),
        403,
        "forbidden",
        "answers only to 127.0.0.1 or localhost",
    )
    assert api.get("/prompts", headers={"Host": "localhost:1234"}).status_code == 200
    promote = f"/prompts/{name}/versions/v1.0/promote"
    error(api.post(promote, headers={"Origin": "http://localhost:18090"}), 403, "forbidden", "another site")
    error(api.post(promote, headers={"Sec-Fetch-Site": "same-site"}), 403, "forbidden", "another site")
    error(api.post(f"/ui/prompts/{name}/versions/v1.0/promote", headers={"Sec-Fetch-Site": "cross-site"}), 403,
          "forbidden", "another site")  # fmt: skip
    assert api.get(f"/prompts/{name}").json()["tst"] is None  # none of them landed
    same = api.base_url.netloc.decode()
    assert (
        api.post(promote, headers={"Origin": f"http://{same}", "Sec-Fetch-Site": "same-origin"}).status_code
        == 200
    )
    r = api.get("/")
    assert (
        r.headers["x-frame-options"] == "DENY"
        and "frame-ancestors 'none'" in r.headers["content-security-policy"]
    )


def test_oversized_bodies_are_refused_unread(api: httpx.Client) -> None:
    error(api.post("/prompts", content=b"x" * (5 * 1024 * 1024), headers={"content-type": "application/json"}),
          413, "too_large", "over 4 MiB")  # fmt: skip


def test_a_server_started_with_tokens_never_falls_open(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "prompts")
    from promptgit import Actor

    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=Actor("Owner", "owner@example.com"))
    key = tokens.create(store.path, "only", "admin")
    server = Server(store.path, {"HOME": str(tmp_path)})
    try:
        with as_(server, key) as client:
            assert client.get("/prompts").status_code == 200
        tokens.revoke(store.path, "only")  # the last token goes: still closed
        with as_(server, None) as anon:
            error(anon.get("/prompts"), 401, "unauthorized", "needs a token")
            error(anon.post("/prompts/greeting/versions/v1.0/promote"), 401, "unauthorized", "needs a token")
            error(anon.post("/prompts", content=b"x" * 100_000, headers={"content-type": "application/json"}),
                  401, "unauthorized", "needs a token")  # fmt: skip
            (store.path / "promptgit.yaml").write_text("bogus: [\n")  # a broken config fails closed, quietly
            r = anon.get("/prompts")
            error(r, 503, "unavailable", "promptgit.yaml does not validate")
            assert "bogus" not in r.text
            assert anon.get("/git/greeting.git/info/refs?service=git-upload-pack").status_code == 503
    finally:
        server.stop()


def test_a_new_version_with_bad_content_creates_nothing(api: httpx.Client, name: str) -> None:
    before = api.get(f"/prompts/{name}").json()
    r = api.post(f"/prompts/{name}/versions", json={"from": "v1.0", "content": "template: [broken\n"})
    error(r, 422, "invalid", "prompt.yaml:2: not valid YAML")
    assert api.get(f"/prompts/{name}").json() == before  # dev unchanged, no number used
    assert api.post(f"/prompts/{name}/versions", json={"from": "v1.0"}).json()["version_id"] == "v1.1"


def test_a_render_that_would_explode_is_refused(api: httpx.Client) -> None:
    bomb = 'template: "{% for i in range(100000) %}{% for j in range(100000) %}{{ name }}{% endfor %}{% endfor %}"\n'
    assert api.post("/prompts", json={"name": "bomb", "content": bomb}).status_code == 201
    r = api.post("/prompts/bomb/stages/dev/render", json={"vars": {"name": "Ada"}})
    error(r, 422, "invalid", "the sandbox refused: the output would exceed 1,000,000 characters")
