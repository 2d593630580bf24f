"""schemathesis against the served OpenAPI document: no 500 for anything a client
can send, and every response matches the schema it is documented with."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from conftest import PROMPT
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance
from server_helpers import Server

from promptgit import Actor, Store


@pytest.fixture(scope="module")
def served_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    store = Store.init(tmp_path_factory.mktemp("schema") / "prompts")
    owner = Actor("Owner", "owner@example.com")
    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=owner)
    store.create("team/support", {"prompt.yaml": PROMPT}, "first", actor=owner)
    store.promote("greeting", "v1.0", actor=owner)
    home = tmp_path_factory.mktemp("home")
    server = Server(store.path, {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"})
    try:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    finally:
        server.stop()


schema = schemathesis.pytest.from_fixture("served_schema")


@schema.parametrize()
@settings(max_examples=int(os.environ.get("PROMPTGIT_SCHEMA_EXAMPLES", "30")), deadline=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
def test_api_conforms(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance, content_type_conformance])
