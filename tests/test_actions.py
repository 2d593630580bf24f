"""What each role may do to each version comes from one place, policy.actions: the
page's buttons and the API's `actions` are the same answers, for every stage a
version can be in and every role."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from conftest import PROMPT, prompt_text
from server_helpers import Server

from promptgit import Actor, Store
from promptgit.names import ROLES


class Buttons(HTMLParser):
    """Every action button of the versions table: {version: {action: (enabled, title)}},
    and the rollback buttons: {stage: [version, ...]}."""

    def __init__(self) -> None:
        super().__init__()
        self.buttons: dict[str, dict[str, tuple[bool, str]]] = {}
        self.rollbacks: dict[str, list[str]] = {}
        self.row: str | None = None
        self.log: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-version"):
            self.row = a["data-version"]
        if tag == "li" and a.get("data-stage"):
            self.log = (a["data-stage"] or "", a.get("data-version") or "")
        if tag == "button" and a.get("data-action") == "rollback" and self.log:
            if "disabled" not in a:  # offered, and this role may do it
                self.rollbacks.setdefault(self.log[0], []).append(self.log[1])
        elif tag == "button" and self.row and a.get("data-action") not in (None, "save"):
            self.buttons.setdefault(self.row, {})[a["data-action"] or ""] = (
                "disabled" not in a,
                a.get("title") or "",
            )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Server, dict[str, str]]]:
    """Versions in every state: v1.0 released (PROD), v1.1 in TST and served there at
    its tip, v1.2 in TST but edited since, v1.3 a DEV draft, v1.4 the current DEV."""
    store = Store.init(tmp_path_factory.mktemp("actions") / "prompts")
    a = Actor("Owner", "owner@example.com")
    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=a)
    store.promote("greeting", "v1.0", actor=a)
    store.promote("greeting", "v1.0", actor=a)
    for v, text in (("v1.1", "Hi"), ("v1.2", "Hey")):
        store.new_version("greeting", actor=a)
        store.edit("greeting", v, {"prompt.yaml": prompt_text(text)}, text, actor=a)
        store.promote("greeting", v, to="tst", actor=a)
    store.promote("greeting", "v1.1", to="tst", actor=a)  # tst serves v1.1 at its tip
    store.edit("greeting", "v1.2", {"prompt.yaml": prompt_text("Yo")}, "after tst", actor=a)
    store.new_version("greeting", actor=a)
    store.new_version("greeting", actor=a)
    keys = {role: store.create_token(f"{role}-bot", role) for role in ROLES}
    home = tmp_path_factory.mktemp("home")
    server = Server(store.path, {"HOME": str(home)})
    yield store, server, keys
    server.stop()


@pytest.mark.parametrize("role", ROLES)
def test_the_page_shows_what_the_api_allows(site: tuple[Store, Server, dict[str, str]], role: str) -> None:
    store, server, keys = site
    api = httpx.get(
        server.url + "/prompts/greeting/actions", headers={"Authorization": f"Bearer {keys[role]}"}
    ).json()
    html = httpx.get(server.url + "/ui/prompts/greeting", cookies={"promptgit_token": keys[role]}).text
    page = Buttons()
    page.feed(html)
    assert set(page.buttons) == set(api["versions"]) == {"v1.0", "v1.1", "v1.2", "v1.3", "v1.4"}
    for version, allowed in api["versions"].items():
        shown = page.buttons[version]
        assert set(shown) == set(allowed), version  # an action that does not apply is hidden
        for action, answer in allowed.items():
            assert shown[action] == (answer["allowed"], answer["why"]), (version, action)
    offered = {
        s: sorted(v for v, a in targets.items() if a["allowed"]) for s, targets in api["rollback"].items()
    }
    assert {s: sorted(set(v)) for s, v in page.rollbacks.items()} == {s: v for s, v in offered.items() if v}
    assert api == store.actions("greeting", role).to_json()


def test_the_answers_follow_the_rules(site: tuple[Store, Server, dict[str, str]]) -> None:
    store = site[0]
    editor = store.actions("greeting", "editor")
    v = editor.versions
    assert not v["v1.0"]["edit"].allowed and v["v1.0"]["edit"].why == "v1.0 is released and immutable"
    assert not v["v1.0"]["promote"].applies
    assert (v["v1.1"]["promote"].to, v["v1.1"]["promote"].allowed) == ("prod", False)
    assert v["v1.1"]["promote"].why == "promoting to PROD needs role 'releaser' (you have 'editor')"
    assert (v["v1.2"]["promote"].to, v["v1.2"]["promote"].allowed) == ("tst", True)
    assert v["v1.2"]["delete"].why == "v1.2 has been in TST and can no longer be deleted"
    assert v["v1.3"]["delete"].allowed
    assert v["v1.4"]["delete"].why == "v1.4 is the current DEV version"
    assert set(editor.rollback["prod"]) == set()  # only v1.0 was ever released, and prod serves it
    assert set(editor.rollback["dev"]) == {"v1.0", "v1.1", "v1.2", "v1.3"}
    releaser = store.actions("greeting", "releaser")
    assert releaser.versions["v1.1"]["promote"].allowed
    assert all(a.allowed for a in releaser.rollback["tst"].values())


def test_a_refusal_gives_the_same_reason_as_the_answer(
    site: tuple[Store, Server, dict[str, str]], tmp_path: Path
) -> None:
    store = site[0]
    answer = store.actions("greeting", "editor").versions["v1.1"]["promote"]
    from promptgit.errors import Forbidden

    with pytest.raises(Forbidden) as refused:
        store.promote("greeting", "v1.1", to="prod", actor=Actor("Ed", "ed@example.com", "editor"))
    assert str(refused.value) == f"Ed: {answer.why}"
