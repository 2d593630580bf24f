"""Review on the page, in real headless Chromium (Debian's) through Playwright: the
Approve button names who approves, the approvals are listed with whether each counts,
the promote button waits for them with the policy's reason, and the diff shows the
files and what the model gets for each test case."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PROMPT, git, prompt_text
from server_helpers import Server
from test_browser import CHROMIUM, SHOTS, button, playwright, row  # skips with it when there is no browser

from promptgit import Actor, Store

TESTS = "cases:\n  - name: greets\n    vars: {name: Ada}\n    contains: Ada\n"
ALICE = Actor("alice", "alice@promptgit", "editor")  # a token's actor: name@promptgit


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from test_browser import ARGS

    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Store, Server, dict[str, str]]]:
    store = Store.init(tmp_path / "prompts")
    (store.path / "promptgit.yaml").write_text("version: 1\nrequire_approvals: {prod: 1}\n")
    store.create("greeting", {"prompt.yaml": PROMPT, "tests.yaml": TESTS}, "first draft", actor=ALICE)
    store.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hi")}, "friendlier", actor=ALICE)
    store.promote("greeting", "v1.0", actor=ALICE)
    keys = {
        n: store.create_token(n, r) for n, r in (("alice", "editor"), ("bea", "editor"), ("rel", "releaser"))
    }
    server = Server(store.path, {"HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"})
    yield store, server, keys
    server.stop()


def as_user(browser: object, server: Server, key: str) -> object:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    context.add_cookies([{"name": "promptgit_token", "value": key, "url": server.url}])
    pg = context.new_page()
    pg.on("dialog", lambda dialog: dialog.accept())
    return pg


def test_approve_on_the_page_then_release(
    browser: object, site: tuple[Store, Server, dict[str, str]]
) -> None:
    store, server, keys = site
    tip = store.resolve("greeting", "v1.0").revision

    rel = as_user(browser, server, keys["rel"])
    rel.goto(f"{server.url}/ui/prompts/greeting")  # type: ignore[attr-defined]
    promote = button(rel, "v1.0", "promote")
    assert promote.inner_text() == "Promote to PROD" and not promote.is_enabled()  # type: ignore[attr-defined]
    assert promote.get_attribute(
        "title"
    ).startswith(  # type: ignore[attr-defined]
        f"prod requires 1 approval of revision {tip[:10]} of v1.0, and it has 0: 1 more needed"
    )
    assert button(rel, "v1.0", "approve").inner_text() == "Approve as rel"  # type: ignore[attr-defined]

    # the author approves: recorded and listed, but it does not count
    alice = as_user(browser, server, keys["alice"])
    alice.goto(f"{server.url}/ui/prompts/greeting/versions/v1.0")  # type: ignore[attr-defined]
    alice.fill('input[name="comment"]', "looks right to me")  # type: ignore[attr-defined]
    alice.click('.approve-form button[data-action="approve"]')  # type: ignore[attr-defined]
    notice = alice.locator(".notice").inner_text()  # type: ignore[attr-defined]
    assert notice.startswith(f"Approved v1.0 at {tip[:10]} as alice (it does not count: alice authored")
    listed = alice.locator(".approval-list li").all_inner_texts()  # type: ignore[attr-defined]
    assert len(listed) == 1 and "looks right to me" in listed[0] and "does not count" in listed[0]

    # a reviewer approves from the prompt page's row: the button names her
    bea = as_user(browser, server, keys["bea"])
    bea.goto(f"{server.url}/ui/prompts/greeting")  # type: ignore[attr-defined]
    approve = button(bea, "v1.0", "approve")
    assert approve.inner_text() == "Approve as bea" and approve.is_enabled()  # type: ignore[attr-defined]
    approve.click()  # type: ignore[attr-defined]
    assert bea.locator(".notice").inner_text() == f"Approved v1.0 at {tip[:10]} as bea"  # type: ignore[attr-defined]
    section = bea.locator('section[aria-label="Approvals"]').inner_text()  # type: ignore[attr-defined]
    assert (
        "1 approval of " in section
        and "prod requires 1" in section
        and "Authors (their approvals do not count): alice" in section
    )
    first = bea.locator(".approval-list li").first  # type: ignore[attr-defined]
    assert "bea approved" in first.inner_text() and "counts" in (first.get_attribute("class") or "")
    SHOTS.mkdir(parents=True, exist_ok=True)
    bea.screenshot(path=str(SHOTS / "approvals.png"), full_page=True)  # type: ignore[attr-defined]

    rel.reload()  # type: ignore[attr-defined]
    promote = button(rel, "v1.0", "promote")
    assert promote.is_enabled() and not promote.get_attribute("title")  # type: ignore[attr-defined]
    promote.click()  # type: ignore[attr-defined]
    assert rel.locator(".notice").inner_text() == "Promoted v1.0"  # type: ignore[attr-defined]
    assert store.get("greeting", "prod").revision == tip
    assert row(rel, "v1.0").locator('button[data-action="approve"]').count() == 0  # type: ignore[attr-defined]


def test_an_edit_since_the_page_was_shown_is_not_approved_blindly(
    browser: object, site: tuple[Store, Server, dict[str, str]]
) -> None:
    store, server, keys = site
    bea = as_user(browser, server, keys["bea"])
    bea.goto(f"{server.url}/ui/prompts/greeting/versions/v1.0")  # type: ignore[attr-defined]
    store.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Yo")}, "sneaky", actor=ALICE)
    bea.click('.approve-form button[data-action="approve"]')  # type: ignore[attr-defined]
    assert "look at the new revision before approving it" in bea.locator(".error").inner_text()  # type: ignore[attr-defined]
    assert store.approvals("greeting", "v1.0").approvals == ()


def test_the_diff_page_shows_the_files_and_what_the_model_gets(
    browser: object, site: tuple[Store, Server, dict[str, str]], tmp_path: Path
) -> None:
    store, server, keys = site
    store.new_version("greeting", "v1.0", actor=ALICE)
    store.review("greeting", "v1.1", "warmer", actor=ALICE)
    work = tmp_path / "work"  # a reviewer's commit, pushed with git
    git(tmp_path, "clone", "-q", str(store.path / "greeting.git"), str(work))
    git(work, "checkout", "-q", "review/warmer")
    (work / "prompt.yaml").write_text(prompt_text("Welcome"))
    git(work, "commit", "-qam", "warmer")
    git(work, "push", "-q", "origin", "review/warmer")

    pg = as_user(browser, server, keys["bea"])
    pg.goto(f"{server.url}/ui/prompts/greeting")  # type: ignore[attr-defined]
    link = pg.locator('a[data-review="review/warmer"]')  # type: ignore[attr-defined]
    assert link.get_attribute("href") == "/ui/prompts/greeting/diff?a=v1.1&b=review/warmer"
    pg.fill("#a", "v1.0")  # type: ignore[attr-defined]
    pg.fill("#b", "review/warmer")  # type: ignore[attr-defined]
    pg.click('form.diff-form button:has-text("Diff")')  # type: ignore[attr-defined]
    assert pg.locator("h1").inner_text() == "v1.0 → review/warmer"  # type: ignore[attr-defined]
    files = pg.locator('pre[aria-label="prompt.yaml"]')  # type: ignore[attr-defined]
    assert files.locator(".del").all_inner_texts() == ["-  Hi {{ name }}, how can I help?"]
    assert files.locator(".add").all_inner_texts() == ["+  Welcome {{ name }}, how can I help?"]
    rendered = pg.locator('pre[aria-label="rendered: greets"]')  # type: ignore[attr-defined]
    assert rendered.locator(".del").all_inner_texts() == ["-Hi Ada, how can I help?"]
    assert rendered.locator(".add").all_inner_texts() == ["+Welcome Ada, how can I help?"]
    pg.screenshot(path=str(SHOTS / "diff.png"), full_page=True)  # type: ignore[attr-defined]
    pg.goto(f"{server.url}/ui/prompts/greeting/diff?a=v1.0&b=review/nope")  # type: ignore[attr-defined]
    assert "no review branch review/nope" in pg.locator(".error").inner_text()  # type: ignore[attr-defined]
