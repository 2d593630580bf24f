"""The web page in a real headless Chromium (Debian's), driven by Playwright:
the seed scenarios by clicking, the button states of the seed's table for each
stage, the tooltip, the conflict case, a token-protected server, and a
screenshot saved by the run."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import PROMPT, prompt_text
from server_helpers import Server

from promptgit import Actor, Store, tokens

if os.environ.get("CI"):  # CI installs both (scripts/test): missing there is a failure, not a skip
    import playwright.sync_api as playwright
else:
    playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is installed by scripts/test")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
SHOTS = Path(
    os.environ.get("PROMPTGIT_SCREENSHOTS", Path(__file__).resolve().parent.parent / "build" / "screenshots")
)
TESTS = "cases:\n  - name: greets\n    vars: {name: Ada}\n    contains: Ada\n"

# The seed's table: stage -> button -> (shown, enabled, label)
TABLE = {
    "DEV": {"edit": (True, True, "Edit"), "test": (True, True, "Test"), "promote": (True, True, "Promote to TST"),
            "new": (True, True, "Create New Version")},
    "TST": {"edit": (True, True, "Edit"), "test": (True, True, "Test"), "promote": (True, True, "Promote to PROD"),
            "new": (True, True, "Create New Version"), "delete": (True, False, "Delete")},
    "PROD": {"edit": (True, False, "Edit"), "test": (True, True, "Test"), "promote": (False, False, ""),
             "new": (True, True, "Create New Version"), "delete": (True, False, "Delete")},
}  # fmt: skip

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: scripts/test should have installed Debian's chromium")
    pytest.skip("Debian's chromium is installed by scripts/test", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Server]]:
    store = Store.init(tmp_path_factory.mktemp("ui") / "prompts")
    home = tmp_path_factory.mktemp("home")
    server = Server(store.path, {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
                                 "GIT_AUTHOR_NAME": "Page User", "GIT_AUTHOR_EMAIL": "page@example.com"})  # fmt: skip
    yield store, server
    server.stop()


_count = iter(range(1000))


@pytest.fixture
def prompt(site: tuple[Store, Server]) -> str:
    name = f"support/greeting-{next(_count)}"
    site[0].create(
        name,
        {"prompt.yaml": PROMPT, "tests.yaml": TESTS},
        "first draft",
        actor=Actor("Ada", "ada@example.com"),
    )
    return name


@pytest.fixture
def page(browser: object, site: tuple[Store, Server], prompt: str) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    pg = context.new_page()
    pg.on("dialog", lambda dialog: dialog.accept())  # PROMOTE and DELETE ask first
    pg.goto(f"{site[1].url}/ui/prompts/{prompt}")
    yield pg
    context.close()


def row(pg: object, version: str) -> object:
    return pg.locator(f'tr[data-version="{version}"]')  # type: ignore[attr-defined]


def button(pg: object, version: str, action: str) -> object:
    return row(pg, version).locator(f'button[data-action="{action}"]')  # type: ignore[attr-defined]


def assert_buttons(pg: object, version: str, stage: str, current_dev: bool = False) -> None:
    """The row's buttons are exactly the seed's table for its stage."""
    r = row(pg, version)
    assert r.get_attribute("data-stage") == stage  # type: ignore[attr-defined]
    for action, (shown, enabled, label) in TABLE[stage].items():
        b = button(pg, version, action)
        if not shown:
            assert b.count() == 0, f"{stage}: {action} must be hidden"  # type: ignore[attr-defined]
            continue
        assert b.inner_text() == label, f"{stage}: {action}"  # type: ignore[attr-defined]
        assert b.is_enabled() is enabled, f"{stage}: {action} enabled={enabled}"  # type: ignore[attr-defined]
    if stage == "DEV":
        assert button(pg, version, "delete").is_enabled() is (not current_dev)  # type: ignore[attr-defined]
    if stage == "PROD":
        assert button(pg, version, "edit").get_attribute("title") == f"{version} is released and immutable"  # type: ignore[attr-defined]


def edit(pg: object, version: str, text: str, summary: str) -> None:
    button(pg, version, "edit").click()  # type: ignore[attr-defined]
    pg.fill("#prompt_yaml", text)  # type: ignore[attr-defined]
    pg.fill("#summary", summary)  # type: ignore[attr-defined]
    pg.click('button[data-action="save"]')  # type: ignore[attr-defined]
    assert pg.locator(".notice").inner_text().startswith(f"Saved {version} as ")  # type: ignore[attr-defined]


def test_iterate_on_a_dev_draft(page: object, site: tuple[Store, Server], prompt: str) -> None:
    assert_buttons(page, "v1.0", "DEV", current_dev=True)
    edit(page, "v1.0", prompt_text("Hi"), "friendlier")
    edit(page, "v1.0", prompt_text("Hey"), "shorter")
    assert row(page, "v1.0").locator("td").nth(4).inner_text() == "shorter"  # type: ignore[attr-defined]
    assert site[0].get(prompt, "dev").source == prompt_text("Hey")
    dev_log = page.locator('li[data-stage="dev"]')  # type: ignore[attr-defined]
    assert [dev_log.nth(i).locator(".action").text_content() for i in range(3)] == [
        "update",
        "update",
        "create",
    ]


def test_fix_in_tst_then_release(page: object, site: tuple[Store, Server], prompt: str) -> None:
    button(page, "v1.0", "promote").click()  # type: ignore[attr-defined]
    assert page.locator(".notice").inner_text() == "Promoted v1.0"  # type: ignore[attr-defined]
    assert_buttons(page, "v1.0", "TST")
    edit(page, "v1.0", prompt_text("Hi"), "fix found in TST")
    button(page, "v1.0", "test").click()  # type: ignore[attr-defined]
    assert "passed" in page.locator(".results h2").inner_text()  # type: ignore[attr-defined]
    assert page.locator(".results tbody tr").first.inner_text().startswith("greets\tpass")  # type: ignore[attr-defined]
    button(page, "v1.0", "promote").click()  # type: ignore[attr-defined]
    assert_buttons(page, "v1.0", "PROD")
    assert site[0].get(prompt, "prod").source == prompt_text("Hi")


def test_new_version_from_prod_opens_in_edit_mode(
    page: object, site: tuple[Store, Server], prompt: str
) -> None:
    a = Actor("Ada", "ada@example.com")
    site[0].promote(prompt, "v1.0", actor=a)
    site[0].promote(prompt, "v1.0", actor=a)
    page.reload()  # type: ignore[attr-defined]
    button(page, "v1.0", "new").click()  # type: ignore[attr-defined]
    assert page.locator(".notice").inner_text() == "Created a new version"  # type: ignore[attr-defined]
    assert page.locator('form.editor[aria-label="Edit v1.1"]').is_visible()  # type: ignore[attr-defined]
    assert page.input_value("#prompt_yaml") == PROMPT  # type: ignore[attr-defined]
    assert_buttons(page, "v1.1", "DEV", current_dev=True)
    page.fill("#prompt_yaml", prompt_text("Welcome"))  # type: ignore[attr-defined]
    page.click('button[data-action="save"]')  # type: ignore[attr-defined]
    assert site[0].get(prompt, "dev").source == prompt_text("Welcome")
    assert site[0].get(prompt, "prod").version == "v1.0"


def test_several_drafts_and_delete(page: object, site: tuple[Store, Server], prompt: str) -> None:
    a = Actor("Ada", "ada@example.com")
    site[0].promote(prompt, "v1.0", actor=a)  # v1.0 in TST
    site[0].new_version(prompt, "v1.0", actor=a)  # v1.1
    site[0].new_version(prompt, "v1.0", actor=a)  # v1.2, current DEV
    page.reload()  # type: ignore[attr-defined]
    assert_buttons(page, "v1.0", "TST")
    assert_buttons(page, "v1.1", "DEV", current_dev=False)
    assert_buttons(page, "v1.2", "DEV", current_dev=True)
    assert button(page, "v1.2", "delete").get_attribute("title") == "v1.2 is the current DEV version"  # type: ignore[attr-defined]
    button(page, "v1.1", "delete").click()  # type: ignore[attr-defined]
    assert page.locator(".notice").inner_text() == "Deleted v1.1"  # type: ignore[attr-defined]
    assert row(page, "v1.1").count() == 0  # type: ignore[attr-defined]


def test_production_hotfix_and_rollback_from_the_log(
    page: object, site: tuple[Store, Server], prompt: str
) -> None:
    a = Actor("Ada", "ada@example.com")
    s = site[0]
    for _ in range(2):
        s.promote(prompt, "v1.0", actor=a)
    s.new_version(prompt, "v1.0", actor=a)
    s.edit(prompt, "v1.1", {"prompt.yaml": prompt_text("Yo")}, "risky", actor=a)
    for _ in range(2):
        s.promote(prompt, "v1.1", actor=a)
    page.reload()  # type: ignore[attr-defined]
    page.locator('li[data-stage="prod"] button[data-action="rollback"]').click()  # type: ignore[attr-defined]
    assert page.locator(".notice").inner_text() == "Rolled prod back to v1.0"  # type: ignore[attr-defined]
    assert s.get(prompt, "prod").version == "v1.0"
    first = page.locator('li[data-stage="prod"]').first  # type: ignore[attr-defined]
    assert "rollback" in first.get_attribute("class") and "v1.0" in first.inner_text()
    # the hotfix: a new version from the bad release, fixed, promoted twice, by clicking
    button(page, "v1.1", "new").click()  # type: ignore[attr-defined]
    page.fill("#prompt_yaml", prompt_text("Hello again"))  # type: ignore[attr-defined]
    page.click('button[data-action="save"]')  # type: ignore[attr-defined]
    button(page, "v1.2", "promote").click()  # type: ignore[attr-defined]
    button(page, "v1.2", "promote").click()  # type: ignore[attr-defined]
    assert s.get(prompt, "prod").source == prompt_text("Hello again")
    assert [v.stage for v in s.versions(prompt)] == ["PROD", "PROD", "PROD"]
    # several drafts beside the releases, for the picture
    button(page, "v1.2", "new").click()  # type: ignore[attr-defined]
    page.click('button[data-action="save"]')  # type: ignore[attr-defined]
    button(page, "v1.3", "promote").click()  # type: ignore[attr-defined]
    button(page, "v1.3", "new").click()  # type: ignore[attr-defined]
    page.fill("#summary", "trying a warmer tone")  # type: ignore[attr-defined]
    page.fill("#prompt_yaml", prompt_text("Hi there"))  # type: ignore[attr-defined]
    page.click('button[data-action="save"]')  # type: ignore[attr-defined]
    assert_buttons(page, "v1.3", "TST")
    assert_buttons(page, "v1.4", "DEV", current_dev=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "prompt-page.png"), full_page=True)  # type: ignore[attr-defined]
    assert (SHOTS / "prompt-page.png").stat().st_size > 10_000


def test_a_lost_race_shows_the_conflict_and_keeps_the_text(
    page: object, site: tuple[Store, Server], prompt: str
) -> None:
    button(page, "v1.0", "edit").click()  # type: ignore[attr-defined]
    page.fill("#prompt_yaml", prompt_text("Mine"))  # type: ignore[attr-defined]
    site[0].edit(
        prompt,
        "v1.0",
        {"prompt.yaml": prompt_text("Theirs")},
        "someone else",
        actor=Actor("Bo", "bo@example.com"),
    )
    page.click('button[data-action="save"]')  # type: ignore[attr-defined]
    error = page.locator(".error").inner_text()  # type: ignore[attr-defined]
    assert error.startswith("Conflict: ") and "was changed by someone else" in error
    assert page.input_value("#prompt_yaml") == prompt_text("Mine")  # type: ignore[attr-defined]
    assert site[0].get(prompt, "dev").source == prompt_text("Theirs")


def test_errors_appear_in_the_page(page: object, site: tuple[Store, Server], prompt: str) -> None:
    button(page, "v1.0", "edit").click()  # type: ignore[attr-defined]
    page.fill("#prompt_yaml", "template: {{ oops\n")  # type: ignore[attr-defined]
    page.click('button[data-action="save"]')  # type: ignore[attr-defined]
    assert page.locator(".error").inner_text().startswith("prompt.yaml:")  # type: ignore[attr-defined]
    assert "Traceback" not in page.content()  # type: ignore[attr-defined]
    assert page.input_value("#prompt_yaml") == "template: {{ oops\n"  # type: ignore[attr-defined]


def test_keyboard_only(page: object) -> None:
    page.focus('tr[data-version="v1.0"] button[data-action="test"]')  # type: ignore[attr-defined]
    page.keyboard.press("Enter")  # type: ignore[attr-defined]
    assert "passed" in page.locator(".results h2").inner_text()  # type: ignore[attr-defined]
    page.keyboard.press("Tab")  # type: ignore[attr-defined]
    assert page.evaluate("document.activeElement.tagName") in ("A", "BUTTON", "INPUT")  # type: ignore[attr-defined]


def test_index_lists_collections_as_folders(browser: object, site: tuple[Store, Server], prompt: str) -> None:
    pg = browser.new_page()  # type: ignore[attr-defined]
    pg.goto(site[1].url + "/")
    assert "support/" in pg.locator("h2.folder-name").all_inner_texts()
    r = pg.locator(f'tr[data-prompt="{prompt}"]')
    assert r.locator(".badge.dev").inner_text() == "v1.0"
    pg.close()


def test_with_tokens_the_page_asks_and_limits(browser: object, tmp_path: Path) -> None:
    store = Store.init(tmp_path / "prompts")
    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=Actor("Ada", "ada@example.com"))
    reader = tokens.create(store.path, "rita", "reader")
    editor = tokens.create(store.path, "ed", "editor")
    server = Server(store.path, {"HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"})
    try:
        context = browser.new_context()  # type: ignore[attr-defined]
        pg = context.new_page()
        pg.on("dialog", lambda d: d.accept())
        pg.goto(server.url + "/ui/prompts/greeting")
        assert pg.locator("h1").inner_text() == "Sign in"
        pg.fill("#token", "pg_wrong")
        pg.click('button:has-text("Sign in")')
        assert "unknown or revoked token" in pg.locator(".error").inner_text()
        pg.fill("#token", reader)
        pg.click('button:has-text("Sign in")')
        assert pg.locator("h1").inner_text() == "greeting"
        assert re.search(r"rita · reader", pg.locator("header").inner_text())
        for action in ("edit", "test", "promote", "new", "delete"):
            b = button(pg, "v1.0", action)
            assert not b.is_enabled(), action  # type: ignore[attr-defined]
        assert (
            button(pg, "v1.0", "edit").get_attribute("title")
            == "changing a draft needs role 'editor' (you have 'reader')"
        )  # type: ignore[attr-defined]
        assert httpx.post(server.url + "/ui/prompts/greeting/versions/v1.0/promote").status_code == 401
        pg.click('button:has-text("Sign out")')
        pg.goto(server.url + "/ui/prompts/greeting")
        pg.fill("#token", editor)
        pg.click('button:has-text("Sign in")')
        button(pg, "v1.0", "promote").click()  # type: ignore[attr-defined]
        b = button(pg, "v1.0", "promote")
        assert b.inner_text() == "Promote to PROD" and not b.is_enabled()  # type: ignore[attr-defined]
        assert b.get_attribute("title") == "promoting to PROD needs role 'releaser' (you have 'editor')"  # type: ignore[attr-defined]
        assert store.get("greeting", "tst").version == "v1.0"
        assert store.log("greeting", "tst")[0].stamp.name == "ed"
        context.close()
    finally:
        server.stop()


def test_a_tst_version_tst_no_longer_serves_goes_back_to_tst_first(
    page: object, site: tuple[Store, Server], prompt: str
) -> None:
    """Edited while tst served another version, a TST draft's tip was never in TST:
    the page offers Promote to TST (prod takes only what tst served), then PROD."""
    a = Actor("Ada", "ada@example.com")
    s = site[0]
    s.promote(prompt, "v1.0", actor=a)
    s.new_version(prompt, "v1.0", actor=a)
    s.promote(prompt, "v1.1", actor=a)  # tst now serves v1.1
    s.edit(prompt, "v1.0", {"prompt.yaml": prompt_text("Later")}, "after tst moved on", actor=a)
    page.reload()  # type: ignore[attr-defined]
    b = button(page, "v1.0", "promote")
    assert b.inner_text() == "Promote to TST" and b.is_enabled()  # type: ignore[attr-defined]
    b.click()  # type: ignore[attr-defined]
    assert button(page, "v1.0", "promote").inner_text() == "Promote to PROD"  # type: ignore[attr-defined]
    button(page, "v1.0", "promote").click()  # type: ignore[attr-defined]
    assert s.get(prompt, "prod").source == prompt_text("Later")
    page.goto(f"{site[1].url}/ui/prompts/{prompt}/versions/prod")  # type: ignore[attr-defined]
    assert page.locator("h1").inner_text().startswith(f"{prompt}@v1.0")  # type: ignore[attr-defined]
    assert "after tst moved on" in page.locator("ol.revisions").inner_text()  # type: ignore[attr-defined]


def test_a_versions_life_on_the_page(page: object, site: tuple[Store, Server], prompt: str) -> None:
    """Create New Version asks for a name and a description; the version page shows
    the content, name, description, who and when, and its deprecation; a deprecated
    release's Roll back button is greyed with the reason."""
    store, server = site
    a = Actor("Ada", "ada@example.com")
    store.promote(prompt, "v1.0", actor=a)
    store.promote(prompt, "v1.0", actor=a)  # v1.0 released
    page.goto(f"{server.url}/ui/prompts/{prompt}")  # type: ignore[attr-defined]
    r = row(page, "v1.0")
    r.locator('input[name="version_name"]').fill("Warmer tone")  # type: ignore[attr-defined]
    r.locator('input[name="description"]').fill("For the holiday campaign.")  # type: ignore[attr-defined]
    button(page, "v1.0", "new").click()  # type: ignore[attr-defined]
    assert "Warmer tone" in row(page, "v1.1").inner_text()  # type: ignore[attr-defined]
    store.edit(prompt, "v1.1", {"prompt.yaml": PROMPT.replace("Hello", "Hey")}, "hey", actor=a)
    store.promote(prompt, "v1.1", actor=a)
    store.promote(prompt, "v1.1", actor=a)
    store.deprecate(prompt, "v1.0", "too formal", actor=a)
    page.goto(f"{server.url}/ui/prompts/{prompt}")  # type: ignore[attr-defined]
    back = page.locator('li[data-stage="prod"][data-version="v1.0"] button[data-action="rollback"]').first  # type: ignore[attr-defined]
    assert not back.is_enabled() and back.get_attribute("title") == "v1.0 is deprecated (too formal)"
    page.goto(f"{server.url}/ui/prompts/{prompt}/versions/Warmer tone")  # type: ignore[attr-defined]
    about = page.locator('section[aria-label="About this version"]').inner_text()  # type: ignore[attr-defined]
    assert "Warmer tone" in about and "For the holiday campaign." in about and "Created by Page User" in about
    assert "Hey {{ name }}" in page.locator('pre[aria-label="prompt.yaml"]').inner_text()  # type: ignore[attr-defined]
    assert page.locator('pre[aria-label="tests.yaml"]').count() == 1  # type: ignore[attr-defined]
    page.goto(f"{server.url}/ui/prompts/{prompt}/versions/v1.0")  # type: ignore[attr-defined]
    assert "Deprecated: too formal" in page.locator(".deprecated").inner_text()  # type: ignore[attr-defined]


def test_deleted_drafts_are_marked_in_the_dev_log(
    page: object, site: tuple[Store, Server], prompt: str
) -> None:
    store, server = site
    a = Actor("Ada", "ada@example.com")
    store.new_version(prompt, actor=a)  # v1.1, current dev
    store.rollback(prompt, "v1.0", stage="dev", actor=a)
    store.delete(prompt, "v1.1", actor=a)
    page.goto(f"{server.url}/ui/prompts/{prompt}")  # type: ignore[attr-defined]
    gone = page.locator('li[data-stage="dev"][data-version="v1.1"]').first  # type: ignore[attr-defined]
    assert "deleted" in gone.get_attribute("class") and "(deleted)" in gone.inner_text()
    kept = page.locator('li[data-stage="dev"][data-version="v1.0"]').first  # type: ignore[attr-defined]
    assert "(deleted)" not in kept.inner_text()
