"""schemathesis against the served OpenAPI document: no 500 for anything a client
can send, and every response matches the schema it is documented with.

The schema is read when pytest collects, from the app itself (the same document
the server serves), so each operation is one collected test. Loading it from the
running server instead (`from_fixture`) made schemathesis add its operations to
the count while the run was under way: pytest's progress went backwards and
ended short of 100%."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from conftest import PROMPT
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance
from server_helpers import Server

from promptgit import Actor, Store


def _openapi() -> dict[str, Any]:
    from promptgit.server.api import create_api
    from promptgit.server.auth import Auth

    with tempfile.TemporaryDirectory() as where:
        store = Store(Path(where) / "prompts")
        return create_api(store, Auth(store, Actor("Owner", "owner@example.com"), open=True)).openapi()


schema = schemathesis.openapi.from_dict(_openapi())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    store = Store.init(tmp_path_factory.mktemp("schema") / "prompts")
    owner = Actor("Owner", "owner@example.com")
    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=owner)
    store.create("team/support", {"prompt.yaml": PROMPT}, "first", actor=owner)
    store.promote("greeting", "v1.0", actor=owner)
    home = tmp_path_factory.mktemp("home")
    served = Server(store.path, {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"})
    yield served
    served.stop()


def test_the_tested_schema_is_the_served_one(server: Server) -> None:
    import httpx

    assert httpx.get(f"{server.url}/openapi.json", timeout=30).json() == _openapi()


@schema.parametrize()
@settings(max_examples=int(os.environ.get("PROMPTGIT_SCHEMA_EXAMPLES", "30")), deadline=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
def test_api_conforms(case: schemathesis.Case, server: Server) -> None:
    case.call_and_validate(
        base_url=server.url,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
