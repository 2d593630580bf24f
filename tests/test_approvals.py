"""Approvals that production enforces: recorded by promptgit alone, bound to one
revision, counted only from people who authored none of the version's revisions, and
required by one policy gate on every path into a stage: the library and the CLI, the
API, and a pushed deployment (the real git binary, the installed hooks)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from conftest import PROMPT, assert_unchanged, git, prompt_text
from server_helpers import Server
from test_hooks import Clone

from promptgit import Actor, Store, config
from promptgit.cli import cli
from promptgit.errors import ConcurrentUpdate, Forbidden, InvalidContent, InvalidInput, RuleViolation

ADA = Actor("Ada Lovelace", "ada@example.com", "editor")  # the author
BEA = Actor("Bea Reviewer", "bea@example.com", "editor")  # a reviewer
REL = Actor("Rel Manager", "rel@example.com", "releaser")  # promotes to prod, authors nothing


def gated(store: Store, gates: str) -> Store:
    (store.path / "promptgit.yaml").write_text(f"version: 1\nrequire_approvals: {gates}\n")
    store.create("greeting", {"prompt.yaml": PROMPT}, "first draft", actor=ADA)
    return store


def invoke(store: Store, who: Actor, *args: str) -> tuple[int, str, str]:
    env = {"GIT_AUTHOR_NAME": who.name, "GIT_AUTHOR_EMAIL": who.email}
    r = CliRunner(env=env).invoke(cli, ["--store", str(store.path), *args])
    return r.exit_code, r.stdout, r.stderr


def test_prod_needs_an_approval_of_exactly_its_revision_by_a_non_author(store: Store) -> None:
    gated(store, "{prod: 1, tst: 0}")
    store.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hi")}, "hi", actor=ADA)
    store.promote("greeting", "v1.0", actor=ADA)  # tst needs none
    tip = store.resolve("greeting", "v1.0").revision

    # without approvals
    with assert_unchanged(store), pytest.raises(RuleViolation) as refused:
        store.promote("greeting", "v1.0", to="prod", actor=REL)
    assert str(refused.value) == (
        f"prod requires 1 approval of revision {tip[:10]} of v1.0, and it has 0: 1 more needed, from "
        "someone who authored none of v1.0's revisions ('promptgit approve greeting@v1.0'; an "
        "author's own approval does not count)"
    )
    code, _out, err = invoke(store, REL, "promote", "greeting@v1.0", "--to", "prod")
    assert code == 1 and "it has 0: 1 more needed" in err

    # with the author's own approval: recorded, but it does not count
    code, out, err = invoke(store, ADA, "approve", "greeting@v1.0", "-m", "I checked it myself")
    assert (
        code == 0
        and out == f"approved greeting@v1.0 at revision {tip[:10]} as Ada Lovelace <ada@example.com>\n"
    )
    assert "warning: this approval does not count toward require_approvals: Ada Lovelace authored a " in err
    with pytest.raises(RuleViolation, match="Ada Lovelace approved it but authored it, which does not count"):
        store.promote("greeting", "v1.0", to="prod", actor=REL)

    # a reviewer's approval, then an edit: the approval stays with the old revision
    code, _out, err = invoke(store, BEA, "approve", "greeting@v1.0", "-m", "reads well")
    assert code == 0 and err == ""
    store.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hey")}, "hey", actor=ADA)
    new_tip = store.resolve("greeting", "v1.0").revision
    assert store.get("greeting", "tst").revision == new_tip  # tst is not gated: it follows
    with assert_unchanged(store), pytest.raises(RuleViolation) as refused:
        store.promote("greeting", "v1.0", to="prod", actor=REL)
    assert f"of revision {new_tip[:10]} of v1.0, and it has 0: 1 more needed" in str(refused.value)
    assert (
        "2 approvals of earlier revisions of v1.0 do not carry over: an edit after an approval needs a new one"
        in str(refused.value)
    )

    # a valid one
    a = store.approve("greeting", "v1.0", "still good", actor=BEA)
    assert (a.revision, a.counts, a.why, a.stamp.name) == (new_tip, True, "", "Bea Reviewer")
    assert store.approve("greeting", "v1.0", "again", actor=BEA).comment == "still good"  # once per person
    d = store.promote("greeting", "v1.0", to="prod", actor=REL)
    assert (d.stage, d.revision) == ("prod", new_tip)

    code, out, _err = invoke(store, REL, "approvals", "greeting@v1.0", "--json")
    data = json.loads(out)
    assert (data["ref"], data["revision"], data["counted"], data["required"]) == (
        "v1.0",
        new_tip,
        1,
        {"prod": 1},
    )
    assert data["authors"] == ["Ada Lovelace <ada@example.com>"]
    assert [(x["by"], x["counts"], x["comment"]) for x in data["approvals"]] == [
        ("Bea Reviewer <bea@example.com>", True, "still good"),
        ("Bea Reviewer <bea@example.com>", False, "reads well"),
        ("Ada Lovelace <ada@example.com>", False, "I checked it myself"),
    ]
    assert data["approvals"][1]["why"].startswith(f"approves {tip[:10]}, an earlier revision")
    # in git, for anyone who fetches them
    notes = git(store.path / "greeting.git", "notes", "--ref=promptgit-approvals", "show", new_tip)
    assert json.loads(notes.splitlines()[0])["comment"] == "still good"


def test_approving_needs_an_editor_and_a_draft(store: Store) -> None:
    gated(store, "{prod: 1}")
    reader = Actor("Reader", "reader@example.com", "reader")
    with assert_unchanged(store), pytest.raises(Forbidden, match="approving a revision needs role 'editor'"):
        store.approve("greeting", "v1.0", actor=reader)
    with assert_unchanged(store), pytest.raises(InvalidInput, match="the comment is 501 characters long"):
        store.approve("greeting", "v1.0", "x" * 501, actor=BEA)
    tip = store.resolve("greeting", "v1.0").revision
    with assert_unchanged(store), pytest.raises(InvalidInput, match="approve a version"):
        store.approve("greeting", tip[:10], actor=BEA)
    with assert_unchanged(store), pytest.raises(ConcurrentUpdate, match="look at the new revision"):
        store.approve("greeting", "v1.0", expect="0" * 40, actor=BEA)
    store.approve("greeting", "v1.0", actor=BEA)
    store.promote("greeting", "v1.0", actor=REL)
    store.promote("greeting", "v1.0", actor=REL)
    with assert_unchanged(store), pytest.raises(RuleViolation, match="a release is promoted no further"):
        store.approve("greeting", "v1.0", actor=BEA)
    code, _out, err = invoke(store, BEA, "approve", f"greeting@{tip[:10]}")
    assert code == 2 and "name a version or a review branch" in err


def test_a_gated_tst_keeps_the_approved_revision_until_an_edit_is_approved(store: Store) -> None:
    gated(store, "{tst: 1}")
    with pytest.raises(RuleViolation, match="tst requires 1 approval"):
        store.promote("greeting", "v1.0", actor=ADA)
    actions = store.actions("greeting", "editor").versions["v1.0"]
    assert not actions["promote"].allowed and actions["promote"].why.startswith("tst requires 1 approval")
    assert actions["approve"].allowed
    store.approve("greeting", "v1.0", actor=BEA)
    assert store.actions("greeting", "editor").versions["v1.0"]["promote"].allowed
    store.promote("greeting", "v1.0", actor=ADA)
    approved = store.get("greeting", "tst").revision

    result = store.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("Hi")}, "hi", actor=ADA)
    assert (result.deployed_to, result.held) == (("dev",), ("tst",))
    assert store.get("greeting", "tst").revision == approved  # never an unapproved revision
    [note] = store.show("greeting", "tst").notes
    assert note.startswith(f"tst serves an older revision of v1.0 ({approved[:10]}): the draft's tip ")
    assert store.doctor(actor=ADA) == []  # as it should be, not an edit cut short
    promote = store.actions("greeting", "editor").versions["v1.0"]["promote"]
    assert (promote.to, promote.allowed) == ("tst", False)
    store.approve("greeting", "v1.0", actor=BEA)
    store.promote("greeting", "v1.0", to="tst", actor=ADA)
    assert store.get("greeting", "tst").revision == result.revision


def test_an_edit_of_a_gated_tst_says_so_in_the_cli(store: Store, tmp_path: Path) -> None:
    gated(store, "{tst: 1}")
    store.approve("greeting", "v1.0", actor=BEA)
    store.promote("greeting", "v1.0", actor=ADA)
    (tmp_path / "p.yaml").write_text(prompt_text("Hi"))
    code, out, _err = invoke(store, ADA, "edit", "greeting@v1.0", "-f", str(tmp_path / "p.yaml"))
    assert code == 0
    assert out.splitlines()[1] == (
        "tst keeps serving the approved revision until this one is approved (require_approvals): "
        "then 'promptgit promote greeting@v1.0 --to tst'"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("require_approvals: [prod]", "require_approvals: must be a mapping of stage"),
        ("require_approvals: {dev: 1}", "unknown stage 'dev': use tst or prod"),
        (
            "require_approvals: {prod: -1}",
            "require_approvals.prod must be a whole number (0 or more), not -1",
        ),
        ("require_approvals: {prod: yes}", "not True"),
    ],
)
def test_require_approvals_is_validated(text: str, problem: str) -> None:
    with pytest.raises(
        InvalidContent, match=problem.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        config.parse(text)
    assert config.parse("require_approvals: {prod: 2, tst: 0}").require_approvals == {"prod": 2}


# --- pushes ----------------------------------------------------------------------------------


@pytest.fixture
def clone(store: Store, tmp_path: Path) -> Clone:
    gated(store, "{prod: 1}")
    store.promote("greeting", "v1.0", actor=ADA)
    return Clone(store, tmp_path / "work")


def test_pushed_approvals_are_refused(clone: Clone, store: Store) -> None:
    note = json.dumps({"version": "v1.0", "name": "Bea Reviewer", "email": "bea@example.com",
                       "time": 1, "offset": 0, "comment": "forged"})  # fmt: skip
    clone("notes", "--ref=promptgit-approvals", "add", "-m", note, "origin/v1.0")
    err = clone.rejected("refs/notes/promptgit-approvals")
    assert (
        "refs/notes/promptgit-approvals: approvals are recorded by 'promptgit approve greeting@vX.Y'" in err
    )
    store.approve("greeting", "v1.0", "real", actor=BEA)
    clone("fetch", "-q", "origin", "+refs/notes/promptgit-approvals:refs/notes/promptgit-approvals")
    clone("notes", "--ref=promptgit-approvals", "append", "-m", note, "origin/v1.0")
    assert "cannot be pushed, rewritten or deleted" in clone.rejected("refs/notes/promptgit-approvals")
    assert "cannot be pushed, rewritten or deleted" in clone.rejected(":refs/notes/promptgit-approvals")


def test_a_pushed_deployment_meets_the_same_gate(clone: Clone, store: Store) -> None:
    clone("fetch", "-q")
    tip = clone("rev-parse", "origin/v1.0").strip()
    release = clone.release_by_hand("v1.0", tip)
    err = clone.rejected(*release)
    assert f"refs/heads/prod: prod requires 1 approval of revision {tip[:10]} of v1.0, and it has 0" in err
    store.approve("greeting", "v1.0", actor=ADA)  # an author's: still refused
    assert "approved it but authored it, which does not count" in clone.rejected(*release)
    store.approve("greeting", "v1.0", actor=BEA)
    clone.accepted(*release)
    assert store.versions("greeting")[0].stage == "PROD"


def test_a_pushed_promotion_into_a_gated_tst_is_refused(store: Store, tmp_path: Path) -> None:
    gated(store, "{tst: 1}")
    c = Clone(store, tmp_path / "work")
    tip = c("rev-parse", "origin/v1.0").strip()
    message = f"Promote v1.0 to tst\n\nPromptgit-Action: promote\nPromptgit-Version: v1.0\nPromptgit-Revision: {tip}\n"
    deploy = c("commit-tree", f"{tip}^{{tree}}", "-p", tip, "-m", message).strip()
    assert "tst requires 1 approval" in c.rejected(f"{deploy}:refs/heads/tst")


# --- through the server: the token's name approves; a pusher is an author ----------------


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Store, Server, dict[str, str]]]:
    store = Store.init(tmp_path / "prompts")
    (store.path / "promptgit.yaml").write_text("version: 1\nrequire_approvals: {prod: 1}\n")
    keys = {n: store.create_token(n, role) for n, role in
            (("alice", "editor"), ("bea", "editor"), ("cy", "editor"), ("rel", "releaser"))}  # fmt: skip
    server = Server(store.path, {"HOME": str(tmp_path)})
    yield store, server, keys
    server.stop()


def call(
    server: Server, key: str, method: str, path: str, headers: dict[str, str] | None = None, **kw: object
) -> httpx.Response:
    auth = {"Authorization": f"Bearer {key}", **(headers or {})}
    return httpx.request(method, server.url + path, headers=auth, timeout=30, **kw)  # type: ignore[arg-type]


def test_the_api_approves_as_the_token_and_enforces_the_gate(
    site: tuple[Store, Server, dict[str, str]],
) -> None:
    store, server, keys = site
    r = call(server, keys["alice"], "POST", "/prompts", json={"name": "greeting", "content": PROMPT})
    assert r.status_code == 201, r.text
    assert call(server, keys["alice"], "POST", "/prompts/greeting/versions/v1.0/promote").status_code == 200
    r = call(server, keys["rel"], "POST", "/prompts/greeting/versions/v1.0/promote")
    assert r.status_code == 409 and "prod requires 1 approval" in r.json()["error"]["message"], r.text

    with assert_unchanged(store):  # no If-Match: nobody may approve a revision they did not see
        r = call(server, keys["bea"], "POST", "/prompts/greeting/versions/v1.0/approve")
    assert r.status_code == 428 and r.json()["error"]["message"].startswith("approving needs If-Match")
    r = call(server, keys["alice"], "POST", "/prompts/greeting/versions/v1.0/approve",
             json={"comment": "mine"}, headers={"If-Match": "*"})  # fmt: skip
    assert r.status_code == 200 and r.json()["counts"] is False
    assert r.json()["why"] == "alice authored a revision of v1.0: an author's approval does not count"
    r = call(server, keys["bea"], "POST", "/prompts/greeting/versions/v1.0/approve",
             headers={"If-Match": '"' + "0" * 40 + '"'})  # fmt: skip
    assert r.status_code == 412, r.text
    tip = store.resolve("greeting", "v1.0").revision
    r = call(
        server,
        keys["bea"],
        "POST",
        "/prompts/greeting/versions/v1.0/approve",
        headers={"If-Match": f'"{tip}"'},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["by"], r.json()["counts"], r.json()["revision"]) == ("bea <bea@promptgit>", True, tip)
    listed = call(server, keys["rel"], "GET", "/prompts/greeting/versions/v1.0/approvals").json()
    assert (listed["counted"], listed["authors"]) == (1, ["alice <alice@promptgit>"])
    assert call(server, keys["rel"], "GET", "/prompts/greeting/actions").json()["versions"]["v1.0"][
        "promote"
    ]["allowed"]
    r = call(server, keys["rel"], "POST", "/prompts/greeting/versions/v1.0/promote")
    assert r.status_code == 200 and r.json()["stage"] == "prod", r.text


def git_as(key: str, cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """The real git, authenticated to the server by a token (basic auth's password)."""
    header = "Authorization: Basic " + base64.b64encode(f"git:{key}".encode()).decode()
    out = subprocess.run(["git", "-c", f"http.extraHeader={header}", *args], cwd=cwd, capture_output=True,
                         text=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})})  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stderr


def test_a_pusher_is_an_author_whatever_the_commits_claim(
    site: tuple[Store, Server, dict[str, str]], tmp_path: Path
) -> None:
    """Over git's HTTP the pusher is the token's name, and the audit log records it: bea
    pushing a review branch of commits that claim to be Carl's makes bea an author of
    them once they land, so her approval does not count."""
    store, server, keys = site
    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=Actor("alice", "alice@promptgit"))
    work = tmp_path / "work"
    git_as(keys["bea"], tmp_path, "clone", "-q", f"{server.url}/git/greeting.git", str(work))
    git(work, "checkout", "-q", "-b", "review/carl", "origin/v1.0")
    (work / "prompt.yaml").write_text(prompt_text("Hi"))
    claimed = {"GIT_AUTHOR_NAME": "Carl Claimed", "GIT_AUTHOR_EMAIL": "carl@example.com"}
    git_as(keys["bea"], work, "commit", "-qam", "by carl?", env=claimed)
    git_as(keys["bea"], work, "push", "origin", "review/carl")
    assert store.reviews("greeting") == ["review/carl"]
    git_as(keys["alice"], work, "push", "origin", "review/carl:v1.0")  # alice lands it
    listed = call(server, keys["cy"], "GET", "/prompts/greeting/versions/v1.0/approvals").json()
    assert listed["authors"] == [
        "Carl Claimed <carl@example.com>",
        "alice <alice@promptgit>",
        "bea <bea@promptgit>",  # who really pushed it, from the audit log
    ]
    anything = {"If-Match": "*"}
    r = call(server, keys["bea"], "POST", "/prompts/greeting/versions/v1.0/approve", headers=anything)
    assert r.status_code == 200 and r.json()["counts"] is False
    r = call(server, keys["cy"], "POST", "/prompts/greeting/versions/v1.0/approve", headers=anything)
    assert r.json()["counts"] is True


def test_the_api_diffs_any_two_refs(site: tuple[Store, Server, dict[str, str]]) -> None:
    store, server, keys = site
    store.create("greeting", {"prompt.yaml": PROMPT, "tests.yaml": "cases:\n  - name: ada\n    vars: {name: Ada}\n"},
                 "first", actor=ADA)  # fmt: skip
    store.new_version("greeting", actor=ADA)
    store.edit("greeting", "v1.1", {"prompt.yaml": prompt_text("Hi")}, "hi", actor=ADA)
    store.review("greeting", "v1.1", "warmer", actor=ADA)
    r = call(server, keys["cy"], "GET", "/diff/greeting", params={"a": "v1.0", "b": "review/warmer"})
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["a"]["version"], d["b"]["ref"], d["b"]["version"]) == ("v1.0", "review/warmer", "v1.1")
    assert d["rendered"] == [
        {"case": "ada", "vars": {"name": "Ada"}, "a": "Hello Ada, how can I help?\n",
         "b": "Hi Ada, how can I help?\n",
         "diff": "--- v1.0 (ada)\n+++ review/warmer (ada)\n@@ -1 +1 @@\n-Hello Ada, how can I help?\n"
                 "+Hi Ada, how can I help?\n"}
    ]  # fmt: skip
    r = call(server, keys["cy"], "GET", "/diff/greeting", params={"a": "v1.0", "b": "review/nope"})
    assert r.status_code == 404 and "no review branch review/nope" in r.json()["error"]["message"]


def test_a_revision_nobody_is_recorded_to_have_put_there_lets_no_approval_count(store: Store) -> None:
    """A commit that reached the draft without an audit entry (a post-receive that never
    ran, a hand-run update-ref) has an unknown author: the gate fails closed."""
    gated(store, "{prod: 1, tst: 0}")
    repo = store.path / "greeting.git"
    work = store.path.parent / "work"
    git(store.path.parent, "clone", "-q", "-b", "v1.0", str(repo), str(work))
    (work / "prompt.yaml").write_text(prompt_text("Slipped in"))
    git(work, "commit", "-qam", "by hand", "--author", "Someone Else <else@example.com>")
    sha = git(work, "rev-parse", "HEAD").strip()
    git(repo, "fetch", "-q", str(work), "v1.0")  # the objects only (a fetch runs no hooks)
    git(repo, "update-ref", "refs/heads/v1.0", sha)  # the draft moved by hand: no audit entry
    store.promote("greeting", "v1.0", actor=ADA)
    store.approve("greeting", "v1.0", "looks fine", actor=BEA)
    with assert_unchanged(store), pytest.raises(RuleViolation) as refused:
        store.promote("greeting", "v1.0", to="prod", actor=REL)
    assert f"no audit entry says who put revision {sha[:10]} on the draft" in str(refused.value)
    listed = store.approvals("greeting", "v1.0").approvals
    assert [(a.counts, a.why.split(",")[0]) for a in listed] == [
        (False, f"no audit entry says who put revision {sha[:10]} on the draft")
    ]
    # starting a review from the draft records its starter, not who put the draft's commits there
    store.review("greeting", "v1.0", "second-look", actor=REL)
    with assert_unchanged(store), pytest.raises(RuleViolation, match="no audit entry says who put"):
        store.promote("greeting", "v1.0", to="prod", actor=REL)
    # nor does an edit on top of it: the edit's entry names its own revision only
    store.edit("greeting", "v1.0", {"prompt.yaml": prompt_text("On top")}, "on top", actor=ADA)
    store.approve("greeting", "v1.0", "fine", actor=BEA)
    with assert_unchanged(store), pytest.raises(RuleViolation, match=f"who put revision {sha[:10]}"):
        store.promote("greeting", "v1.0", to="prod", actor=REL)
    # the remedy the message names: a new version from it, whose revisions are recorded
    fresh = store.new_version("greeting", "v1.0", actor=ADA).version
    store.promote("greeting", fresh, actor=ADA)
    store.approve("greeting", fresh, "fine", actor=BEA)
    store.promote("greeting", fresh, to="prod", actor=REL)
