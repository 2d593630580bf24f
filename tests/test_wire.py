"""One wire shape per record: the API's response models are the records' `to_json`,
field for field, so the CLI's --json and the API cannot drift apart."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import prompt_text
from pydantic import BaseModel

from promptgit import Actor, Store
from promptgit.names import RefSpec
from promptgit.server import api


@pytest.fixture
def released(greeting: Store, actor: Actor) -> Store:
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.new_version("greeting", actor=actor)
    greeting.edit("greeting", "v1.1", {"prompt.yaml": prompt_text("Hi")}, "warmer", actor=actor)
    tests = "cases:\n  - name: hello\n    vars: {name: Ada}\n"
    greeting.edit("greeting", "v1.1", {"tests.yaml": tests}, "tests", actor=actor)
    greeting.approve("greeting", "v1.1", "fine", actor=Actor("Bea", "bea@example.com"))
    return greeting


def fields(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def records(store: Store) -> list[tuple[type[BaseModel], dict[str, Any]]]:
    """(response model, a real record's JSON as the API sends it)."""
    return [
        (api.PromptSummaryOut, store.list()[0].to_json()),
        (api.PromptDetailsOut, store.details("greeting").to_json()),
        (api.StageRef, store.details("greeting").stages["prod"].to_json()),  # type: ignore[union-attr]
        (api.VersionOut, api.api_words(store.versions("greeting")[0].to_json())),
        (api.VersionDetailOut, api.api_words(store.version_detail("greeting", "v1.1").to_json())),
        (api.RevisionOut, store.log("greeting", "v1.1")[0].to_json()),
        (api.DeploymentOut, store.log("greeting", RefSpec("stage", "prod"))[0].to_json()),
        (api.StageOut, store.get("greeting", "prod").to_json()),
        (api.ActionsOut, store.actions("greeting", "editor").to_json()),
        (api.ApprovalsOut, store.approvals("greeting", "v1.1").to_json()),
        (api.ApprovalOut, store.approvals("greeting", "v1.1").approvals[0].to_json()),
        (api.DiffOut, store.diff("greeting", "v1.0", "v1.1").to_json()),
        (api.DiffSideOut, store.diff("greeting", "v1.0", "v1.1").a.to_json()),
        (api.RenderedCaseOut, store.diff("greeting", "v1.0", "v1.1").rendered[0].to_json()),
    ]


def test_every_response_model_is_its_records_json(released: Store, actor: Actor) -> None:
    for model, data in records(released):
        assert fields(model) == set(data), model.__name__
        model.model_validate(data)  # and the values have the declared types


def test_test_run_model_is_the_records_json(greeting: Store, actor: Actor) -> None:
    tests = "cases:\n  - name: hello\n    vars: {name: Ada}\n    contains: Ada\n"
    greeting.edit("greeting", "v1.0", {"tests.yaml": tests}, "tests", actor=actor)
    data = greeting.test("greeting", "v1.0", actor=actor, record=False).to_json()
    assert fields(api.TestRunOut) == set(data)
    assert fields(api.TestCaseOut) == set(data["cases"][0])
    api.TestRunOut.model_validate(data)


def test_api_words_rename_exactly_two_fields() -> None:
    record = {"version": "v1.0", "summary": "first", "stage": "DEV"}
    assert api.api_words(record) == {"version_id": "v1.0", "change_summary": "first", "stage": "DEV"}
