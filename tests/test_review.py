"""Review through git: review branches pushed, force-pushed and deleted with the real
git binary through the installed hooks, landed on their draft by a fast-forward; the
refusals that say where to work instead; and diffs between any two REFs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PROMPT, assert_unchanged, git, prompt_text, refs
from test_hooks import Clone

from promptgit import Actor, Store
from promptgit.cli import cli
from promptgit.errors import InvalidInput, RefNotFound, ReviewExists, RuleViolation

TESTS = """\
cases:
  - name: ada
    vars: {name: Ada}
    contains: Ada
  - name: bob
    vars: {name: Bob}
    contains: Bob
"""


@pytest.fixture
def clone(greeting: Store, actor: Actor, tmp_path: Path) -> Clone:
    greeting.edit("greeting", "v1.0", {"tests.yaml": TESTS}, "tests", actor=actor)
    return Clone(greeting, tmp_path / "work")


def on_review(clone: Clone, branch: str, text: str, message: str = "warmer") -> str:
    """Commit `text` on review branch `branch` (made from origin's v1.0 the first time)."""
    if clone("branch", "--list", branch).strip():
        clone("checkout", "-q", branch)
    else:
        clone("fetch", "-q")
        clone("checkout", "-q", "-b", branch, "origin/v1.0")
    (clone.path / "prompt.yaml").write_text(text)
    clone("add", "prompt.yaml")
    clone("commit", "-q", "-m", message)
    return clone("rev-parse", "HEAD").strip()


def invoke(store: Store, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, ["--store", str(store.path), *args])
    return r.exit_code, r.stdout, r.stderr


# --- review branches through git ------------------------------------------------------


def test_a_pushed_review_branch_is_kept_but_never_served_nor_numbered(clone: Clone, greeting: Store) -> None:
    before = {s: greeting.serving("greeting", s) for s in ("dev", "tst", "prod")}
    tip = on_review(clone, "review/alice/warmer", prompt_text("Hi"))
    clone.accepted("review/alice/warmer")
    assert refs(clone.remote)["refs/heads/review/alice/warmer"] == tip
    assert {s: greeting.serving("greeting", s) for s in ("dev", "tst", "prod")} == before
    assert greeting.version_ids("greeting") == ["v1.0"]
    assert greeting.reviews("greeting") == ["review/alice/warmer"]
    shown = greeting.show("greeting", "review/alice/warmer")
    assert (shown.prompt.version, shown.prompt.revision) == ("v1.0", tip)
    assert greeting.render("greeting", "review/alice/warmer", {"name": "Ada"}) == "Hi Ada, how can I help?\n"
    assert [r.summary for r in greeting.log("greeting", "review/alice/warmer")][:2] == ["warmer", "tests"]


def test_a_broken_review_branch_is_refused_with_the_file_and_line(clone: Clone, greeting: Store) -> None:
    on_review(clone, "review/broken", "variables: [name]\ntemplate: '{{ unclosed'\n")
    err = clone.rejected("review/broken")
    assert "refs/heads/review/broken: commit " in err and "prompt.yaml:2:" in err
    assert greeting.reviews("greeting") == []


def test_a_review_branch_may_be_force_pushed_and_deleted(clone: Clone, greeting: Store) -> None:
    on_review(clone, "review/x", prompt_text("Hi"))
    clone.accepted("review/x")
    clone("commit", "-q", "--amend", "-m", "warmer, reworded")
    amended = clone("rev-parse", "HEAD").strip()
    clone.accepted("+review/x")
    assert refs(clone.remote)["refs/heads/review/x"] == amended
    clone.accepted(":review/x")
    assert "refs/heads/review/x" not in refs(clone.remote)


def test_a_prompt_keeps_a_bounded_number_of_review_branches(
    clone: Clone, greeting: Store, actor: Actor
) -> None:
    from promptgit.limits import MAX_REVIEWS

    tip = on_review(clone, "review/r0", prompt_text("Hi"))
    specs = [f"{tip}:refs/heads/review/r{i}" for i in range(MAX_REVIEWS)]
    clone.accepted(*specs)  # exactly the limit, in one push
    before = refs(clone.remote)
    err = clone.rejected(f"{tip}:refs/heads/review/one-more")
    assert (
        f"greeting would have {MAX_REVIEWS + 1} review branches, and a prompt keeps at most {MAX_REVIEWS}"
        in err
    )
    assert refs(clone.remote) == before
    with assert_unchanged(greeting), pytest.raises(RuleViolation, match="at most 100: delete the landed"):
        greeting.review("greeting", "v1.0", "through-the-cli", actor=actor)
    clone.accepted(":review/r0", f"{tip}:refs/heads/review/one-more")  # one goes, one comes: allowed


def test_pushes_racing_to_add_review_branches_stay_within_the_bound(
    clone: Clone, greeting: Store, tmp_path: Path
) -> None:
    """Each push's pre-receive counts the branches there are; the reference-transaction
    hook re-checks under the write lock that none came meanwhile, so two pushes landing
    together cannot pass the bound between them (each alone is within it)."""
    import subprocess
    import threading

    from promptgit.limits import MAX_REVIEWS

    tip = on_review(clone, "review/r0", prompt_text("Hi"))
    clone.accepted("review/r0")
    other = Clone(greeting, tmp_path / "other")  # it has the tip too
    start = threading.Barrier(2)
    results: list[subprocess.CompletedProcess[str]] = []

    def push(c: Clone, prefix: str) -> None:
        specs = [f"{tip}:refs/heads/review/{prefix}{i}" for i in range(MAX_REVIEWS * 3 // 5)]
        start.wait()
        results.append(c.push(*specs, atomic=False))

    threads = [threading.Thread(target=push, args=(c, p)) for c, p in ((clone, "a"), (other, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reviews = [r for r in refs(clone.remote) if r.startswith("refs/heads/review/")]
    assert len(reviews) == 1 + MAX_REVIEWS * 3 // 5  # one push landed whole, the other not at all
    assert sorted(r.returncode == 0 for r in results) == [False, True]
    assert "Traceback" not in "".join(r.stderr for r in results)


def test_a_review_branch_must_start_from_a_draft(clone: Clone, greeting: Store, actor: Actor) -> None:
    clone("checkout", "-q", "-b", "review/from-dev", "origin/dev")  # a clone checks out dev
    (clone.path / "prompt.yaml").write_text(prompt_text("Hi"))
    clone("commit", "-qam", "on dev")
    err = clone.rejected("review/from-dev")
    assert "holds no revision of an existing version" in err
    assert "'git checkout -b review/from-dev origin/vX.Y'" in err
    clone("checkout", "-q", "-b", "review/merge", "origin/v1.0")
    clone("merge", "-q", "--no-ff", "-m", "merge dev", "review/from-dev")
    assert "is a merge" in clone.rejected("review/merge")


def test_a_review_of_a_release_is_refused(clone: Clone, greeting: Store, actor: Actor) -> None:
    on_review(clone, "review/late", prompt_text("Hi"))
    greeting.promote("greeting", "v1.0", actor=actor)
    greeting.promote("greeting", "v1.0", actor=actor)
    err = clone.rejected("review/late")
    assert "proposes changes to v1.0, which v1.0 is released and immutable" in err
    assert "'promptgit new-version greeting --from v1.0'" in err
    with pytest.raises(RuleViolation, match="v1.0 is released and immutable: review a draft instead"):
        greeting.review("greeting", "v1.0", "late", actor=actor)


# --- promptgit review, and landing ---------------------------------------------------------


def test_review_starts_a_branch_and_a_fast_forward_lands_it(
    clone: Clone, greeting: Store, actor: Actor
) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)  # tst serves v1.0 too: it follows as well
    code, out, _err = invoke(greeting, "review", "greeting@v1.0", "warmer")
    tip = greeting.resolve("greeting", "v1.0").revision
    assert code == 0 and out.startswith(f"started review/warmer at greeting@v1.0 ({tip[:10]})\n")
    assert "land it: git push origin review/warmer:v1.0" in out
    code, _out, err = invoke(greeting, "review", "greeting@v1.0", "warmer")
    assert code == 1 and "already has a review branch review/warmer" in err
    with assert_unchanged(greeting), pytest.raises(ReviewExists):
        greeting.review("greeting", "v1.0", "warmer", actor=actor)
    with pytest.raises(InvalidInput, match="invalid review branch 'review/bad..name'"):
        greeting.review("greeting", "v1.0", "bad..name", actor=actor)

    clone("fetch", "-q")
    clone("checkout", "-q", "review/warmer")
    for word in ("Hi", "Hey"):
        (clone.path / "prompt.yaml").write_text(prompt_text(word))
        clone("commit", "-qam", f"say {word}")
    clone.accepted("review/warmer")
    reviewed = clone("rev-parse", "HEAD").strip()
    assert greeting.get("greeting", "dev").revision == tip  # a review is never served

    err = clone.accepted("review/warmer:v1.0")  # land it: a fast-forward of the draft
    assert "dev now serves the tip of v1.0" in err and "tst now serves the tip of v1.0" in err
    assert greeting.resolve("greeting", "v1.0").revision == reviewed
    assert greeting.get("greeting", "dev").revision == reviewed
    assert greeting.get("greeting", "tst").revision == reviewed
    assert [r.summary for r in greeting.log("greeting", "v1.0")][:3] == ["say Hey", "say Hi", "tests"]
    clone.accepted(":review/warmer")  # done with it


def test_a_merge_into_a_draft_is_refused_with_how_to_land_a_review(clone: Clone, greeting: Store) -> None:
    on_review(clone, "review/x", prompt_text("Hi"))
    clone.accepted("review/x")
    clone.commit("v1.0", prompt_text("Hello") + "# another edit\n", "edit on the draft")
    clone.accepted("v1.0")
    clone("merge", "-q", "--no-edit", "-X", "theirs", "review/x")
    err = clone.rejected("v1.0")
    assert "is a merge: a version is a line of revisions. To land a review branch, rebase it on v1.0" in err
    assert "('git rebase origin/v1.0' on the review branch), then fast-forward v1.0 to it" in err
    # what it says works
    clone("reset", "-q", "--hard", "origin/v1.0")
    clone("checkout", "-q", "review/x")
    clone("rebase", "-q", "-X", "theirs", "origin/v1.0")
    clone.accepted("+review/x")
    clone.accepted("review/x:v1.0")
    assert greeting.get("greeting", "dev").source == prompt_text("Hi")


def test_a_commit_on_a_stage_is_refused_naming_the_draft_to_work_on(clone: Clone, greeting: Store) -> None:
    clone("checkout", "-q", "-B", "dev", "origin/dev")  # what a fresh clone checks out
    (clone.path / "prompt.yaml").write_text(prompt_text("Hi"))
    clone("commit", "-qam", "edit on dev")
    err = clone.rejected("dev")
    assert (
        "dev is a stage: it holds only deployments, and " in err
        and "To change the prompt, work on the draft dev serves, or the current DEV draft: "
        "'git checkout v1.0', commit there and push it ('git push origin v1.0')"
        in err
    )
    # what it says works: the same commit, on the draft
    clone("checkout", "-q", "-b", "v1.0", "origin/v1.0")
    clone("cherry-pick", "dev")
    assert "dev now serves the tip of v1.0" in clone.accepted("v1.0")


def test_every_other_rewrite_is_refused_by_the_second_lock(
    clone: Clone, greeting: Store, actor: Actor
) -> None:
    clone.commit("v1.0", prompt_text("Hi"), "hi")
    clone.accepted("v1.0")
    clone("reset", "-q", "--hard", "HEAD~1")
    clone.commit("v1.0", prompt_text("Hey"), "hey instead")
    assert "not a fast-forward of v1.0" in clone.rejected("+v1.0")
    # a notes ref of the user's own: git notes append, never rewrite
    clone("notes", "--ref=review", "add", "-m", "looks fine", "origin/v1.0")
    clone.accepted("refs/notes/review")
    clone("notes", "--ref=review", "add", "-f", "-m", "rewritten", "origin/v1.0")
    clone(
        "update-ref", "refs/notes/review", clone("commit-tree", "refs/notes/review^{tree}", "-m", "x").strip()
    )
    err = clone.rejected("+refs/notes/review")
    assert "refs/notes/review" in err and "is not a fast-forward: only review branches" in err


def test_a_repository_made_before_review_branches_says_how_to_allow_them(
    clone: Clone, greeting: Store, actor: Actor
) -> None:
    repo = greeting.path / "greeting.git"
    git(repo, "config", "receive.denyNonFastForwards", "true")  # as an older promptgit made it
    on_review(clone, "review/x", prompt_text("Hi"))
    clone.accepted("review/x")  # a first push and a fast-forward are fine
    clone("commit", "-q", "--amend", "-m", "reworded")
    err = clone.rejected("+review/x")
    assert "this repository predates review branches" in err
    assert "run 'promptgit hooks install greeting' once (or 'promptgit doctor --repair')" in err
    [finding] = greeting.doctor(actor=actor)
    assert finding.problem == "git config receive.denyNonFastForwards is not false"
    assert greeting.doctor(repair=True, actor=actor)[0].repaired
    clone.accepted("+review/x")


# --- diffs ----------------------------------------------------------------------------------


def test_diff_between_versions_and_against_a_review_branch(
    clone: Clone, greeting: Store, actor: Actor
) -> None:
    greeting.new_version("greeting", "v1.0", actor=actor)
    greeting.edit("greeting", "v1.1", {"prompt.yaml": prompt_text("Hi")}, "hi", actor=actor)
    d = greeting.diff("greeting", "v1.0", "v1.1")
    assert (d.a.ref, d.a.version, d.b.ref, d.b.version) == ("v1.0", "v1.0", "v1.1", "v1.1")
    assert d.files["tests.yaml"] == ""
    assert "-  Hello {{ name }}, how can I help?\n+  Hi {{ name }}, how can I help?" in d.files["prompt.yaml"]
    assert [(r.case, r.a, r.b) for r in d.rendered] == [
        ("ada", "Hello Ada, how can I help?\n", "Hi Ada, how can I help?\n"),
        ("bob", "Hello Bob, how can I help?\n", "Hi Bob, how can I help?\n"),
    ]
    assert d.rendered[0].diff == (
        "--- v1.0 (ada)\n+++ v1.1 (ada)\n@@ -1 +1 @@\n-Hello Ada, how can I help?\n+Hi Ada, how can I help?\n"
    )

    on_review(clone, "review/warmer", prompt_text("Hey"))
    (clone.path / "tests.yaml").write_text(TESTS.replace("name: bob", "name: cy").replace("Bob", "Cy"))
    clone("commit", "-qam", "cy")
    clone.accepted("review/warmer")
    code, out, _err = invoke(greeting, "diff", "greeting@v1.0", "greeting@review/warmer")
    assert code == 0
    assert "-  Hello {{ name }}, how can I help?\n+  Hey {{ name }}, how can I help?" in out
    assert "rendered for case 'ada':\n--- v1.0 (ada)\n+++ review/warmer (ada)\n" in out
    assert "rendered for case 'cy':" in out and "+Hey Cy, how can I help?" in out
    code, out, _err = invoke(greeting, "diff", "greeting@review/warmer", "greeting@dev", "--json")
    data = json.loads(out)
    assert data["a"]["ref"] == "review/warmer" and data["b"] == {
        "ref": "dev",
        "version": "v1.1",
        "revision": greeting.resolve("greeting", "v1.1").revision,
    }
    assert [r["case"] for r in data["rendered"]] == ["ada", "bob", "cy"]  # b's cases first
    bob = data["rendered"][1]
    assert (bob["a"], bob["b"]) == ("Hey Bob, how can I help?\n", "Hi Bob, how can I help?\n")


def test_a_diff_renders_hostile_templates_bounded(greeting: Store, actor: Actor) -> None:
    loops = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    slow = f'template: "{loops}"\n'
    one_case = TESTS.split("  - name: bob")[0]
    greeting.edit("greeting", "v1.0", {"tests.yaml": one_case}, "tests", actor=actor)
    greeting.new_version("greeting", "v1.0", actor=actor)
    greeting.edit("greeting", "v1.1", {"prompt.yaml": slow}, "slow", actor=actor)
    d = greeting.diff("greeting", "v1.0", "v1.1")
    assert d.rendered[0].a == "Hello Ada, how can I help?\n"
    assert d.rendered[0].b.startswith("(does not render: rendering greeting@v1.1 took over 5 s, the limit")


def test_a_diff_of_huge_renders_is_bounded_in_lines_compared_and_characters_shown(
    greeting: Store, actor: Actor
) -> None:
    """difflib is quadratic: 50,000 lines a side would take minutes, 50 cases an hour."""
    from promptgit.limits import DIFF_CHARS, DIFF_LINES

    def lines(expression: str) -> str:
        return f"template: |\n  {{% for i in range(50000) %}}{{{{ {expression} }}}}\n  {{% endfor %}}\n"

    one_case = TESTS.split("  - name: bob")[0]
    greeting.edit(
        "greeting", "v1.0", {"prompt.yaml": lines("i"), "tests.yaml": one_case}, "many", actor=actor
    )
    greeting.new_version("greeting", "v1.0", actor=actor)
    greeting.edit("greeting", "v1.1", {"prompt.yaml": lines("i * 7 % 50003")}, "shuffled", actor=actor)
    case = greeting.diff("greeting", "v1.0", "v1.1").rendered[0]
    assert case.diff.startswith("(not compared line by line: ")
    assert f"over the limit of {DIFF_LINES:,} a side; both renders are shown)" in case.diff
    for side in (case.a, case.b):
        shown, note = side.rsplit("\n", 1)
        assert (
            len(shown) == DIFF_CHARS
            and note.startswith("(… ")
            and note.endswith("more characters, not shown)")
        )


def test_diff_names_what_it_cannot_find(greeting: Store) -> None:
    with pytest.raises(RefNotFound, match=r"has no review branch review/nope \(review branches: none yet"):
        greeting.diff("greeting", "v1.0", "review/nope")
    code, _out, err = invoke(greeting, "diff", "greeting@v1.0", "other@v1.0")
    assert code == 2 and "give two refs of one prompt" in err
    code, out, _err = invoke(greeting, "diff", "greeting", "v1.0", "dev")  # the older spelling
    assert code == 0 and out.startswith("no difference between v1.0 and dev")


def test_a_review_branch_is_not_a_version_to_edit(clone: Clone, greeting: Store, actor: Actor) -> None:
    on_review(clone, "review/x", prompt_text("Hi"))
    clone.accepted("review/x")
    with (
        assert_unchanged(greeting),
        pytest.raises(InvalidInput, match="review/x is a review branch, not a version"),
    ):
        greeting.edit("greeting", "review/x", {"prompt.yaml": PROMPT}, "x", actor=actor)


def test_the_cli_keeps_a_review_ref_a_review_ref(greeting: Store, actor: Actor) -> None:
    """`edit` and `promote` pass NAME@review/x on as a review branch, not as a version
    named x (which would silently edit or promote that version)."""
    greeting.new_version("greeting", "v1.0", actor=actor, version_name="x")  # v1.1, named x
    greeting.review("greeting", "v1.0", "x", actor=actor)
    (greeting.path.parent / "p.yaml").write_text(prompt_text("Hey"))
    with assert_unchanged(greeting):
        for args in (
            ["edit", "greeting@review/x", "-f", str(greeting.path.parent / "p.yaml"), "-m", "y"],
            ["promote", "greeting@review/x"],
        ):
            code, _out, err = invoke(greeting, *args)
            assert code == 1 and err.startswith("error: review/x is a review branch, not a version"), err


def test_a_review_name_is_given_once_and_cannot_clash_with_another(greeting: Store, actor: Actor) -> None:
    with assert_unchanged(greeting), pytest.raises(InvalidInput, match="without its review/ prefix"):
        greeting.review("greeting", "v1.0", "review/x", actor=actor)
    greeting.review("greeting", "v1.0", "x", actor=actor)
    for clash in ("x/deeper",):
        with assert_unchanged(greeting), pytest.raises(ReviewExists, match="review branch review/x "):
            greeting.review("greeting", "v1.0", clash, actor=actor)
    greeting.review("greeting", "v1.0", "team/one", actor=actor)
    with assert_unchanged(greeting), pytest.raises(ReviewExists, match="review branch review/team/one "):
        greeting.review("greeting", "v1.0", "team", actor=actor)
