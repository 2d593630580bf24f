"""A prompt's life in the page, in real headless Chromium: archive from the prompt's
page, the archived listing, restore, rename, delete for good, and the buttons a
role may not use shown disabled with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PROMPT
from server_helpers import Server
from test_browser import ARGS, CHROMIUM, playwright

from promptgit import Actor, Store, tokens
from promptgit.names import ROLES

OWNER = Actor("Owner", "owner@example.com")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Server, dict[str, str]]]:
    store = Store.init(tmp_path_factory.mktemp("life-ui") / "prompts")
    keys = {role: tokens.create(store.path, f"{role[0:3]}", role) for role in ROLES}
    home = tmp_path_factory.mktemp("home")
    server = Server(store.path, {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"})
    yield store, server, keys
    server.stop()


def signed_in(browser: object, server: Server, key: str) -> object:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    context.add_cookies([{"name": "promptgit_token", "value": key, "url": server.url}])
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # archive, rename and delete ask first
    return page


def test_archive_restore_rename_and_delete_by_clicking(
    browser: object, site: tuple[Store, Server, dict[str, str]]
) -> None:
    store, server, keys = site
    store.create("support/welcome", {"prompt.yaml": PROMPT}, "first", actor=OWNER)
    pg = signed_in(browser, server, keys["admin"])
    pg.goto(f"{server.url}/ui/prompts/support/welcome")  # type: ignore[attr-defined]

    pg.fill("#archive_reason", "replaced by support/hello")  # type: ignore[attr-defined]
    pg.click('button[data-prompt-action="archive"]')  # type: ignore[attr-defined]
    assert pg.url == f"{server.url}/ui/archive?notice=Archived+support%2Fwelcome"  # type: ignore[attr-defined]
    assert pg.locator(".notice").inner_text() == "Archived support/welcome"  # type: ignore[attr-defined]
    row = pg.locator('tr[data-prompt="support/welcome"]')  # type: ignore[attr-defined]
    assert "replaced by support/hello" in row.inner_text()
    assert store.names() == [] or "support/welcome" not in store.names()
    pg.goto(server.url + "/")  # type: ignore[attr-defined]
    assert pg.locator('tr[data-prompt="support/welcome"]').count() == 0  # type: ignore[attr-defined]
    pg.goto(f"{server.url}/ui/prompts/support/welcome")  # type: ignore[attr-defined]
    assert "prompt 'support/welcome' is archived" in pg.locator(".error").inner_text()  # type: ignore[attr-defined]

    pg.click('a:has-text("All prompts")')  # type: ignore[attr-defined]
    pg.click('a:has-text("Archived prompts")')  # type: ignore[attr-defined]
    row = pg.locator('tr[data-prompt="support/welcome"]')  # type: ignore[attr-defined]
    row.locator('button[data-prompt-action="restore"]').click()
    assert pg.locator("h1").inner_text() == "support/welcome"  # type: ignore[attr-defined]
    assert pg.locator(".notice").inner_text() == "Restored support/welcome"  # type: ignore[attr-defined]

    pg.fill("#rename_to", "team/welcome")  # type: ignore[attr-defined]
    pg.click('button[data-prompt-action="rename"]')  # type: ignore[attr-defined]
    assert pg.locator("h1").inner_text() == "team/welcome"  # type: ignore[attr-defined]
    assert pg.locator(".notice").inner_text() == "Renamed support/welcome to team/welcome"  # type: ignore[attr-defined]
    pg.goto(f"{server.url}/ui/prompts/support/welcome")  # type: ignore[attr-defined]
    assert pg.url == f"{server.url}/ui/prompts/team/welcome"  # the old address leads to the new page

    pg.fill("#rename_to", "team/versions")  # type: ignore[attr-defined]
    pg.click('button[data-prompt-action="rename"]')  # type: ignore[attr-defined]
    assert "invalid prompt name 'team/versions'" in pg.locator(".error").inner_text()  # type: ignore[attr-defined]
    assert store.names() == ["team/welcome"]

    pg.click('button[data-prompt-action="archive"]')  # type: ignore[attr-defined]
    pg.locator('tr[data-prompt="team/welcome"] button[data-prompt-action="delete"]').click()  # type: ignore[attr-defined]
    assert pg.locator(".notice").inner_text() == "Deleted team/welcome for good"  # type: ignore[attr-defined]
    assert pg.locator('tr[data-prompt="team/welcome"]').count() == 0  # type: ignore[attr-defined]
    assert store.archived() == []
    pg.context.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("role", ROLES)
def test_the_buttons_a_role_may_not_use_are_disabled_with_the_reason(
    browser: object, site: tuple[Store, Server, dict[str, str]], role: str
) -> None:
    store, server, keys = site
    live, gone = f"roles/{role}", f"roles/{role}-gone"
    for n in (live, gone):
        store.create(n, {"prompt.yaml": PROMPT}, "first", actor=OWNER)
    store.archive(gone, actor=OWNER)
    pg = signed_in(browser, server, keys[role])
    pg.goto(f"{server.url}/ui/prompts/{live}")  # type: ignore[attr-defined]
    expected = {
        "archive": "" if role in ("releaser", "admin") else f"archiving a prompt needs role 'releaser' (you have '{role}')",
        "rename": "" if role == "admin" else f"renaming a prompt needs role 'admin' (you have '{role}')",
    }  # fmt: skip
    for action, why in expected.items():
        b = pg.locator(f'button[data-prompt-action="{action}"]')  # type: ignore[attr-defined]
        assert b.is_enabled() is (not why), action
        assert (b.get_attribute("title") or "") == why
    pg.goto(f"{server.url}/ui/archive")  # type: ignore[attr-defined]
    row = pg.locator(f'tr[data-prompt="{gone}"]')  # type: ignore[attr-defined]
    restore = row.locator('button[data-prompt-action="restore"]')
    delete = row.locator('button[data-prompt-action="delete"]')
    assert restore.is_enabled() is (role in ("releaser", "admin"))
    assert delete.is_enabled() is (role == "admin")
    if role in ("reader", "editor"):
        assert (
            restore.get_attribute("title") == f"restoring a prompt needs role 'releaser' (you have '{role}')"
        )
    pg.context.close()  # type: ignore[attr-defined]


def test_a_role_that_posts_anyway_is_refused_in_the_page(
    browser: object, site: tuple[Store, Server, dict[str, str]], tmp_path: Path
) -> None:
    store, server, keys = site
    store.create("roles/forced", {"prompt.yaml": PROMPT}, "first", actor=OWNER)
    pg = signed_in(browser, server, keys["editor"])
    pg.goto(f"{server.url}/ui/prompts/roles/forced")  # type: ignore[attr-defined]
    pg.evaluate(  # type: ignore[attr-defined]
        "document.querySelectorAll('button[data-prompt-action], #archive_reason')"
        ".forEach(b => { b.disabled = false; b.removeAttribute('aria-disabled') })"
    )
    pg.click('button[data-prompt-action="archive"]')  # type: ignore[attr-defined]
    assert (
        pg.locator(".error").inner_text()  # type: ignore[attr-defined]
        == "edi: archiving a prompt needs role 'releaser' (you have 'editor')"
    )
    assert "roles/forced" in store.names()
    pg.context.close()  # type: ignore[attr-defined]
