"""Langfuse's public prompt API, read by the real `langfuse` Python SDK in this process
against a real `promptgit serve` on 127.0.0.1: the SDK parses every answer with its
own models and raises its own errors, so what passes here is what an application
that only changed its host and keys sees."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import snapshot
from langfuse import Langfuse
from langfuse.api import Error, MethodNotAllowedError, NotFoundError, UnauthorizedError
from server_helpers import Server

from promptgit import Actor, Store
from promptgit.names import Version
from promptgit.server.langfuse import (
    LangfusePromptListOut,
    LangfusePromptOut,
    number,
    version_of,
)

ROOT = Path(__file__).resolve().parent.parent
OWNER = Actor("Owner", "owner@example.com")
GREETING = """\
model: gpt-4o-mini
parameters: {temperature: 0.2, max_tokens: 200}
variables: [name]
template: |
  Hello {{ name }}, how can I help?
"""
CHAT = """\
model: gpt-4o
variables: [question]
messages:
  - {role: system, content: "You are a support agent."}
  - {role: user, content: "Customer asks: {{ question }}"}
"""
JINJA = """\
variables: [name, vip]
template: "{% if vip %}Dear valued customer, {% endif %}Hello {{ name }}!"
"""
OTHERS = ["alpha", "beta", "gamma/one", "zeta"]
_keys = itertools.count()


def text(greeting: str) -> str:
    return GREETING.replace("Hello", greeting)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Server, str]]:
    """support/greeting: v1.0 in prod, v1.1 in tst, v1.2 a DEV draft; a released chat
    prompt; four more for paging; a reader token, so tokens are required."""
    store = Store.init(tmp_path_factory.mktemp("langfuse") / "prompts")
    store.create("support/greeting", {"prompt.yaml": GREETING}, "first", actor=OWNER)
    store.promote("support/greeting", "v1.0", actor=OWNER)
    store.promote("support/greeting", "v1.0", actor=OWNER)
    store.new_version("support/greeting", files={"prompt.yaml": text("Hi")}, message="warmer", actor=OWNER)
    store.promote("support/greeting", "v1.1", actor=OWNER)
    store.new_version("support/greeting", files={"prompt.yaml": text("Hey")}, message="casual", actor=OWNER)
    store.create("chat", {"prompt.yaml": CHAT}, "a chat", actor=OWNER)
    store.promote("chat", "v1.0", actor=OWNER)
    store.promote("chat", "v1.0", actor=OWNER)
    store.create("jinja", {"prompt.yaml": JINJA}, "with a block", actor=OWNER)
    for name in OTHERS:
        store.create(name, {"prompt.yaml": GREETING}, "first", actor=OWNER)
    token = store.create_token("app", "reader")
    server = Server(store.path, {"HOME": str(tmp_path_factory.mktemp("home"))})
    yield store, server, token
    server.stop()


@pytest.fixture
def client(
    served: tuple[Store, Server, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Langfuse]]:
    """Langfuse SDK clients on the served store (tracing off: they send no spans).
    The SDK keeps one client state per public key for the whole process, so each
    client gets its own public key (and with it its own prompt cache)."""
    monkeypatch.setenv("LANGFUSE_MEDIA_UPLOAD_ENABLED", "false")
    made: list[Langfuse] = []

    def make(secret: str | None = None, url: str | None = None) -> Langfuse:
        lf = Langfuse(
            public_key=f"pk-lf-test-{next(_keys)}",
            secret_key=served[2] if secret is None else secret,
            host=url or served[1].url,
            tracing_enabled=False,
        )
        made.append(lf)
        return lf

    yield make
    for lf in made:
        lf.shutdown()


def native(served: tuple[Store, Server, str], method: str, path: str, **kw: Any) -> httpx.Response:
    """promptgit's own API, with the same token as a Bearer."""
    headers = {"Authorization": f"Bearer {served[2]}"}
    return httpx.request(method, served[1].url + path, headers=headers, timeout=30, **kw)


def public(served: tuple[Store, Server, str], path: str, method: str = "GET", **kw: Any) -> httpx.Response:
    """Langfuse's API as the SDKs call it: Basic auth, the token as the password."""
    return httpx.request(method, served[1].url + path, auth=("pk-anything", served[2]), timeout=30, **kw)


# --- the version numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "integer"),
    [
        ("v1.0", 1000),
        ("v1.1", 1001),
        ("v2.3", 2003),
        ("v2.10", 2010),
        ("v1.999", 1999),
        ("v0.0", 0),
        ("v0.7", 7),
        ("v10.0", 10000),
        ("v999999.999", 999_999_999),
        ("v1.1000", None),  # minor 1000 or more: no integer, refused rather than renumbered
        ("v3.999999", None),
    ],
)
def test_the_version_number_table(version: str, integer: int | None) -> None:
    v = Version.parse(version)
    assert number(v) == integer
    if integer is not None:
        assert version_of(integer) == v


def test_every_integer_names_one_version_and_back() -> None:
    for n in [*range(0, 3000, 7), 999_999_999]:
        assert number(version_of(n)) == n


# --- get_prompt ------------------------------------------------------------------------


def test_get_prompt_by_default_reads_production(
    served: tuple[Store, Server, str], client: Callable[..., Langfuse]
) -> None:
    p = client().get_prompt("support/greeting")
    assert p.name == "support/greeting"
    assert p.version == 1000
    assert p.prompt == "Hello {{ name }}, how can I help?\n"
    assert p.config == {"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 200}
    assert p.labels == ["production"]
    assert p.tags == []
    assert p.commit_message == "first"


def test_the_raw_answer_has_langfuses_shape(served: tuple[Store, Server, str]) -> None:
    r = public(served, "/api/public/v2/prompts/support%2Fgreeting?label=production")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "name": "support/greeting",
        "version": 1000,
        "type": "text",
        "prompt": "Hello {{ name }}, how can I help?\n",
        "config": {"temperature": 0.2, "max_tokens": 200, "model": "gpt-4o-mini"},
        "labels": ["production"],
        "tags": [],
        "commitMessage": "first",
    }
    LangfusePromptOut.model_validate(r.json())


@pytest.mark.parametrize(
    ("label", "version", "greeting", "labels"),
    [
        ("production", 1000, "Hello", ["production"]),
        ("prod", 1000, "Hello", ["production"]),
        ("staging", 1001, "Hi", ["staging"]),
        ("tst", 1001, "Hi", ["staging"]),
        ("dev", 1002, "Hey", ["dev", "latest"]),
        ("latest", 1002, "Hey", ["dev", "latest"]),
    ],
)
def test_get_prompt_by_label(
    client: Callable[..., Langfuse], label: str, version: int, greeting: str, labels: list[str]
) -> None:
    p = client().get_prompt("support/greeting", label=label)
    assert (p.version, p.labels) == (version, labels)
    assert p.compile(name="Ada") == f"{greeting} Ada, how can I help?\n"


def test_get_prompt_by_version(client: Callable[..., Langfuse]) -> None:
    lf = client()
    v11 = lf.get_prompt("support/greeting", version=1001)
    assert (v11.version, v11.labels, v11.commit_message) == (1001, ["staging"], "warmer")
    assert v11.compile(name="Ada") == "Hi Ada, how can I help?\n"
    assert lf.get_prompt("support/greeting", version=1000).labels == ["production"]


def test_a_chat_prompt(served: tuple[Store, Server, str], client: Callable[..., Langfuse]) -> None:
    p = client().get_prompt("chat", type="chat")
    assert p.version == 1000 and p.config == {"model": "gpt-4o"}
    assert p.labels == ["dev", "staging", "production", "latest"]
    compiled = p.compile(question="Where is my order?")
    rendered = native(
        served, "POST", "/prompts/chat/stages/prod/render", json={"vars": {"question": "Where is my order?"}}
    )
    assert (
        compiled
        == rendered.json()["messages"]
        == [
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": "Customer asks: Where is my order?"},
        ]
    )


def test_compile_of_a_var_only_template_equals_promptgits_render(
    served: tuple[Store, Server, str], client: Callable[..., Langfuse]
) -> None:
    lf = client()
    for stage, label in [("prod", "production"), ("tst", "staging"), ("dev", "dev")]:
        for name in ["Ada", "Grace Hopper", "Ünïcødé {{ not a var }}", ""]:
            compiled = lf.get_prompt("support/greeting", label=label).compile(name=name)
            rendered = native(
                served,
                "POST",
                f"/prompts/support/greeting/stages/{stage}/render",
                json={"vars": {"name": name}},
            )
            assert compiled == rendered.json()["text"], (stage, name)
            assert compiled == served[0].get("support/greeting", stage).render(name=name)


def test_other_jinja_is_served_as_written_and_the_sdk_leaves_it(
    served: tuple[Store, Server, str], client: Callable[..., Langfuse]
) -> None:
    """What the README says: the SDK's compile() fills in {{ var }} only; a block stays
    as written, so such templates are rendered by promptgit instead."""
    p = client().get_prompt("jinja", label="dev")
    assert p.prompt == "{% if vip %}Dear valued customer, {% endif %}Hello {{ name }}!"
    assert p.compile(name="Ada", vip=True) == "{% if vip %}Dear valued customer, {% endif %}Hello Ada!"
    rendered = native(
        served, "POST", "/prompts/jinja/stages/dev/render", json={"vars": {"name": "Ada", "vip": True}}
    )
    assert rendered.json() == {"text": "Dear valued customer, Hello Ada!"}


def test_a_name_in_a_collection_arrives_url_encoded(
    served: tuple[Store, Server, str], client: Callable[..., Langfuse]
) -> None:
    assert client().get_prompt("gamma/one", label="dev").name == "gamma/one"
    encoded = public(served, "/api/public/v2/prompts/gamma%2Fone?label=dev")
    plain = public(served, "/api/public/v2/prompts/gamma/one?label=dev")
    assert encoded.status_code == plain.status_code == 200
    assert encoded.json() == plain.json()


def test_after_a_promotion_a_client_without_cache_sees_the_new_version(
    served: tuple[Store, Server, str], client: Callable[..., Langfuse]
) -> None:
    store = served[0]
    store.create("promoted", {"prompt.yaml": GREETING}, "first", actor=OWNER)
    store.promote("promoted", "v1.0", actor=OWNER)
    store.promote("promoted", "v1.0", actor=OWNER)
    lf = client()
    assert lf.get_prompt("promoted", cache_ttl_seconds=0).version == 1000
    store.new_version("promoted", files={"prompt.yaml": text("Hi")}, message="warmer", actor=OWNER)
    store.promote("promoted", "v1.1", actor=OWNER)
    store.promote("promoted", "v1.1", actor=OWNER)
    p = lf.get_prompt("promoted", cache_ttl_seconds=0)
    assert (p.version, p.labels) == (1001, ["dev", "staging", "production", "latest"])
    assert p.compile(name="Ada") == "Hi Ada, how can I help?\n"


def test_latest_follows_new_and_deleted_versions(
    served: tuple[Store, Server, str], client: Callable[..., Langfuse]
) -> None:
    """The server keeps `latest` while dev's tip stays; a deletion does not move dev,
    so the deleted version must not stay latest."""
    store, lf = served[0], client()

    def latest() -> tuple[int, list[str]]:
        p = lf.get_prompt("drafts", label="latest", cache_ttl_seconds=0)
        return p.version, p.labels

    store.create("drafts", {"prompt.yaml": GREETING}, "first", actor=OWNER)
    assert latest() == (1000, ["dev", "latest"])
    store.new_version("drafts", actor=OWNER)
    assert latest() == (1001, ["dev", "latest"])
    store.rollback("drafts", "v1.0", stage="dev", actor=OWNER)  # dev serves v1.0; v1.1 is still the highest
    assert latest() == (1001, ["latest"])
    assert lf.get_prompt("drafts", label="dev", cache_ttl_seconds=0).labels == ["dev"]
    store.delete("drafts", "v1.1", actor=OWNER)  # dev's tip stays
    assert latest() == (1000, ["dev", "latest"])
    store.new_version("drafts", as_version="v3.0", actor=OWNER)
    assert latest() == (3000, ["dev", "latest"])


# --- errors ----------------------------------------------------------------------------


def test_a_missing_prompt_is_the_sdks_not_found(
    served: tuple[Store, Server, str], client: Callable[..., Langfuse]
) -> None:
    lf = client()
    with pytest.raises(NotFoundError) as e:
        lf.get_prompt("nowhere", max_retries=0)
    assert e.value.body["error"] == "LangfuseNotFoundError"
    assert e.value.body["message"].startswith(
        "Prompt not found: 'nowhere' with label 'production': no prompt named 'nowhere'"
    )
    with pytest.raises(NotFoundError) as e:
        lf.get_prompt("support/greeting", version=1009, max_retries=0)
    assert e.value.body["message"] == (
        "Prompt not found: 'support/greeting' with version 1009 (v1.9): prompt 'support/greeting' "
        "has no version v1.9 (versions: v1.0, v1.1, v1.2)"
    )
    with pytest.raises(NotFoundError) as e:
        lf.get_prompt("jinja", max_retries=0)  # nothing in prod yet
    assert e.value.body["message"] == (
        "Prompt not found: 'jinja' with label 'production': prompt 'jinja' has no deployment in prod yet"
    )
    with pytest.raises(NotFoundError) as e:
        lf.get_prompt("support/greeting", label="canary", max_retries=0)
    assert e.value.body["message"] == (
        "Prompt not found: 'support/greeting' with label 'canary': promptgit serves the labels "
        "production (prod), staging (tst), dev, tst, prod, latest (the highest version number)"
    )


def test_a_wrong_token_is_the_sdks_unauthorized(
    served: tuple[Store, Server, str], client: Callable[..., Langfuse]
) -> None:
    with pytest.raises(UnauthorizedError) as e:
        client(secret="not-a-token").get_prompt("support/greeting", max_retries=0)
    assert e.value.body == {
        "message": "send HTTP Basic auth with a promptgit token as the password (the Langfuse secret "
        "key; the public key may be anything): this one is unknown or revoked. An admin creates one "
        "with 'promptgit token create NAME --role reader'",
        "error": "UnauthorizedError",
    }
    for auth in [None, ("pk", "")]:
        r = httpx.get(served[1].url + "/api/public/v2/prompts/support%2Fgreeting", auth=auth, timeout=30)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Basic realm="promptgit"'
        assert r.json()["message"].endswith(
            "this request has none. An admin creates one with 'promptgit token create NAME --role reader'"
        )
    listed = httpx.get(served[1].url + "/api/public/v2/prompts", auth=("pk", "wrong"), timeout=30)
    assert listed.status_code == 401 and listed.json()["error"] == "UnauthorizedError"


def test_the_token_also_works_as_a_bearer(served: tuple[Store, Server, str]) -> None:
    r = native(served, "GET", "/api/public/v2/prompts/chat")
    assert r.status_code == 200 and r.json()["version"] == 1000


def test_both_label_and_version_is_a_400(
    served: tuple[Store, Server, str], client: Callable[..., Langfuse]
) -> None:
    r = public(served, "/api/public/v2/prompts/chat?label=production&version=1000")
    assert r.status_code == 400
    assert r.json() == {
        "message": "Cannot specify both version and label: ask for label='production' or for "
        "version=1000, not both",
        "error": "InvalidRequestError",
    }
    with pytest.raises(Error) as e:  # the SDK's raw API call (get_prompt refuses it itself)
        client().api.prompts.get("chat", label="production", version=1000)
    assert e.value.status_code == 400


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("version=v1.0", "version must be a whole number from 0 to 999999999 (v2.3 is 2003), not 'v1.0'"),
        ("version=-1", "version must be a whole number from 0 to 999999999 (v2.3 is 2003), not '-1'"),
        (
            "version=1000000000",
            "version must be a whole number from 0 to 999999999 (v2.3 is 2003), not '1000000000'",
        ),
        ("version=%D9%A1", "version must be a whole number from 0 to 999999999 (v2.3 is 2003), not '\u0661'"),
    ],
)
def test_a_version_that_is_not_an_integer_is_a_400(
    served: tuple[Store, Server, str], query: str, message: str
) -> None:
    r = public(served, f"/api/public/v2/prompts/chat?{query}")
    assert (r.status_code, r.json()) == (400, {"message": message, "error": "InvalidRequestError"})


def test_an_invalid_name_is_a_400_that_says_the_rule(served: tuple[Store, Server, str]) -> None:
    r = public(served, "/api/public/v2/prompts/Bad%20Name")
    assert r.status_code == 400
    assert r.json()["message"].startswith("invalid prompt name 'Bad Name': use lower-case segments")


@pytest.mark.parametrize(
    "path", ["/api/public/v2/prompts/a%0Ab", "/api/public/traces", "/api/public/v2/prompt"]
)
def test_other_paths_under_api_public_are_404_in_langfuses_shape(
    served: tuple[Store, Server, str], path: str
) -> None:
    r = public(served, path)
    assert (r.status_code, r.json()) == (
        404,
        {
            "message": "Not Found: Langfuse's API here is GET /api/public/v2/prompts (the list) and "
            "GET /api/public/v2/prompts/NAME (one prompt; NAME URL-encoded, e.g. support%2Fgreeting)",
            "error": "LangfuseNotFoundError",
        },
    )


def test_writes_are_405_and_change_nothing(
    served: tuple[Store, Server, str], client: Callable[..., Langfuse]
) -> None:
    before = snapshot(served[0].path)
    for method, path in [
        ("POST", "/api/public/v2/prompts"),
        ("PATCH", "/api/public/v2/prompts/support%2Fgreeting/versions/1002"),
        ("DELETE", "/api/public/v2/prompts/support%2Fgreeting"),
        ("PUT", "/api/public/v2/prompts/chat"),
        ("PURGE", "/api/public/v2/prompts/chat"),
    ]:
        r = public(served, path, method=method, json={"labels": ["production"]})
        assert (r.status_code, r.headers["allow"]) == (405, "GET, HEAD"), (method, path)
        assert r.json() == {
            "message": f"{method} is not served here: promptgit's Langfuse API is read-only (GET). "
            "Create, edit and promote prompts with promptgit's own API (/prompts, see /docs) or its "
            "CLI, which enforce the stage rules",
            "error": "MethodNotAllowedError",
        }
    with pytest.raises(MethodNotAllowedError):
        client().create_prompt(name="chat", prompt="Hi {{ name }}", labels=["production"])
    assert snapshot(served[0].path) == before


def test_a_version_without_an_integer_is_refused_never_renumbered(
    served: tuple[Store, Server, str], client: Callable[..., Langfuse]
) -> None:
    store = served[0]
    store.create("wide", {"prompt.yaml": GREETING}, "first", actor=OWNER)
    store.new_version("wide", as_version="v1.1000", actor=OWNER)  # dev serves it, and it is latest
    for label in ["dev", "latest"]:
        r = public(served, f"/api/public/v2/prompts/wide?label={label}")
        assert r.status_code == 422
        assert r.json() == {
            "message": "wide@v1.1000 has no Langfuse version number: its minor number is 1000 or more, "
            "and integers are MAJOR * 1000 + MINOR. Read it with promptgit's own API (GET "
            "/prompts/wide/versions/v1.1000), or release a version with a smaller number "
            "('promptgit new-version wide --major')",
            "error": "UnmappableVersion",
        }
    v10 = client().get_prompt("wide", version=1000)
    assert (v10.version, v10.labels) == (1000, [])  # v1.0 is neither served nor latest now
    listed = public(served, "/api/public/v2/prompts?name=wide").json()["data"]
    assert [(p["versions"], p["labels"]) for p in listed] == [([1000], [])]


def test_an_archived_prompt_is_410_and_a_renamed_one_redirects(served: tuple[Store, Server, str]) -> None:
    store = served[0]
    for name in ("old-name", "shelved"):
        store.create(name, {"prompt.yaml": GREETING}, "first", actor=OWNER)
    store.rename("old-name", "team/new-name", actor=OWNER)
    store.archive("shelved", actor=OWNER, reason="replaced by chat")
    moved = public(served, "/api/public/v2/prompts/old-name?label=dev")
    assert moved.status_code == 308
    assert moved.headers["location"] == "/api/public/v2/prompts/team%2Fnew-name?label=dev"
    assert moved.json()["message"].startswith("prompt 'old-name' was renamed to 'team/new-name'")
    followed = httpx.get(served[1].url + moved.headers["location"], auth=("pk", served[2]), timeout=30)
    assert followed.json()["name"] == "team/new-name"
    gone = public(served, "/api/public/v2/prompts/shelved")
    assert gone.status_code == 410 and gone.headers["cache-control"] == "no-store"
    assert gone.json()["error"] == "archived"
    assert "is archived (" in gone.json()["message"] and "replaced by chat" in gone.json()["message"]


# --- the list ----------------------------------------------------------------------------


def test_the_list_pages_like_langfuse(
    served: tuple[Store, Server, str], client: Callable[..., Langfuse]
) -> None:
    lf = client()
    everything = lf.api.prompts.list(limit=100)
    names = [p.name for p in everything.data]
    assert names == sorted(names) and {"support/greeting", "chat", *OTHERS} <= set(names)
    total = everything.meta.total_items
    assert total == len(names)
    pages = []
    for page in range(1, -(-total // 3) + 1):
        got = lf.api.prompts.list(page=page, limit=3)
        assert (got.meta.page, got.meta.limit, got.meta.total_items) == (page, 3, total)
        assert got.meta.total_pages == -(-total // 3)
        pages.extend(p.name for p in got.data)
    assert pages == names
    assert lf.api.prompts.list(page=99, limit=3).data == []
    default = public(served, "/api/public/v2/prompts")
    assert default.json()["meta"] == {
        "page": 1,
        "limit": 10,
        "totalItems": total,
        "totalPages": -(-total // 10),
    }
    LangfusePromptListOut.model_validate(default.json())


def test_a_listed_prompt_has_its_versions_labels_and_newest_config(
    served: tuple[Store, Server, str], client: Callable[..., Langfuse]
) -> None:
    [greeting] = client().api.prompts.list(name="support/greeting").data
    assert greeting.versions == [1000, 1001, 1002]
    assert greeting.labels == ["dev", "latest", "production", "staging"]
    assert (greeting.type, greeting.tags) == ("text", [])
    assert greeting.last_config == {"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 200}
    newest = served[0].version("support/greeting", "v1.2").updated.time
    assert greeting.last_updated_at.timestamp() == newest


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("name=support/greeting&label=production", {"support/greeting": [1000]}),
        ("name=support/greeting&label=prod", {"support/greeting": [1000]}),
        ("name=support/greeting&label=staging", {"support/greeting": [1001]}),
        ("name=support/greeting&version=1002", {"support/greeting": [1002]}),
        ("name=chat&label=latest", {"chat": [1000]}),
        ("name=support/greeting&tag=anything", {}),
        ("name=nowhere", {}),
        ("name=support/greeting&label=canary", {}),
    ],
)
def test_the_list_filters(
    served: tuple[Store, Server, str], query: str, expected: dict[str, list[int]]
) -> None:
    r = public(served, f"/api/public/v2/prompts?{query}")
    assert {p["name"]: p["versions"] for p in r.json()["data"]} == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "limit must be a whole number from 1 to 100, not '0'"),
        ("limit=101", "limit must be a whole number from 1 to 100, not '101'"),
        ("page=0", "page must be a whole number from 1 to 1000000, not '0'"),
        ("page=two", "page must be a whole number from 1 to 1000000, not 'two'"),
        ("version=1.0", "version must be a whole number from 0 to 999999999 (v2.3 is 2003), not '1.0'"),
    ],
)
def test_bad_paging_is_a_400(served: tuple[Store, Server, str], query: str, message: str) -> None:
    r = public(served, f"/api/public/v2/prompts?{query}")
    assert (r.status_code, r.json()) == (400, {"message": message, "error": "InvalidRequestError"})


# --- an open server ----------------------------------------------------------------------


def test_an_open_server_takes_any_keys_from_loopback_only(
    tmp_path: Path, client: Callable[..., Langfuse]
) -> None:
    store = Store.init(tmp_path / "prompts")
    store.create("greeting", {"prompt.yaml": GREETING}, "first", actor=OWNER)
    server = Server(store.path, {"HOME": str(tmp_path)})
    try:
        p = client(secret="anything", url=server.url).get_prompt("greeting", label="dev")
        assert p.version == 1000
        assert httpx.get(server.url + "/api/public/v2/prompts", timeout=30).status_code == 200
        r = httpx.get(server.url + "/api/public/v2/prompts", headers={"Host": "example.com"}, timeout=30)
        assert r.status_code == 403
        assert r.json() == {
            "message": "this server has no tokens, so it answers only to 127.0.0.1 or localhost, not example.com",
            "error": "ForbiddenError",
        }
    finally:
        server.stop()


# --- the README ----------------------------------------------------------------------------


def test_the_readmes_langfuse_snippet_runs(
    served: tuple[Store, Server, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """README's "Moving from Langfuse" Python block, as written, with the environment
    it names pointed at the test server."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n### Moving from Langfuse\n") :]
    section = section[: section.find("\n## ", 1)]
    [snippet] = re.findall(r"^```python\n(.*?)^```$", section, re.S | re.M)
    monkeypatch.setenv("LANGFUSE_HOST", served[1].url)
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", f"pk-lf-readme-{next(_keys)}")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", served[2])
    monkeypatch.setenv("LANGFUSE_TRACING_ENABLED", "false")
    monkeypatch.setenv("LANGFUSE_MEDIA_UPLOAD_ENABLED", "false")
    scope: dict[str, Any] = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    assert scope["text"] == "Hello Ada, how can I help?\n"
    scope["langfuse"].shutdown()


def test_a_kept_answer_is_never_given_to_a_revoked_token(served: tuple[Store, Server, str]) -> None:
    """The raw read keeps bodies, not decisions: every request's token is checked."""
    store, server = served[0], served[1]
    token = store.create_token("short-lived", "reader")
    url = server.url + "/api/public/v2/prompts/support%2Fgreeting?label=production"
    for _ in range(2):
        assert httpx.get(url, auth=("pk", token), timeout=30).status_code == 200
    store.revoke_token("short-lived")
    refused = httpx.get(url, auth=("pk", token), timeout=30)
    assert refused.status_code == 401 and refused.json()["error"] == "UnauthorizedError"
    assert httpx.get(url, timeout=30).status_code == 401
