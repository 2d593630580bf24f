"""The state machine of test_state_machine.py under require_approvals {tst: 1, prod: 1},
with review branches and approvals mixed in: reviews started, pushed to (by different
authenticated pushers, through the real git binary and the installed hooks), rewritten,
deleted and landed on their draft, and approvals by the author and by reviewers.

After every step, besides the base invariants: no stage with a gate has ever served a
revision lacking its approvals (each deployment in its log, counted now: approvals are
append-only and a revision's authors never change), review branches are never served
nor numbered, and a refused push changed no ref."""

from __future__ import annotations

import os
import subprocess

from conftest import PROMPT, git
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule
from test_state_machine import WORDS, PromptLifecycle

from promptgit import Actor, history, policy
from promptgit.errors import PromptgitError
from promptgit.names import REVIEW

GATES = {"tst": 1, "prod": 1}
EXISTING = st.integers(min_value=0, max_value=5)  # an existing version (modulo how many there are)
BRANCHES = st.sampled_from(["a", "team/b"])
PEOPLE = st.sampled_from(["Model", "Reviewer", "Carol"])  # Model edits through the library


class ReviewLifecycle(PromptLifecycle):
    def __init__(self) -> None:
        super().__init__()
        (self.store.path / "promptgit.yaml").write_text("version: 1\nrequire_approvals: {tst: 1, prod: 1}\n")
        self.work = self.tmp / "work"
        self.commits = 0

    @initialize()
    def create(self) -> None:
        super().create()
        git(self.tmp, "clone", "-q", str(self.repo_path), str(self.work))

    def existing(self, index: int) -> int:
        return index % max(1, len(self.store.version_ids("greeting")))

    def person(self, name: str) -> Actor:
        return Actor(name, f"{name.lower()}@example.com", "editor")

    def push(self, pusher: str, *refspecs: str) -> bool:
        """Push as an authenticated `pusher` (REMOTE_USER, as a server sets it); a
        refused push must change no ref."""
        before = self.refs()
        env = {**os.environ, "REMOTE_USER": pusher, "PROMPTGIT_EMAIL": f"{pusher.lower()}@example.com",
               "PROMPTGIT_ROLE": "editor"}  # fmt: skip
        out = subprocess.run(["git", "-C", str(self.work), "push", "--atomic", "origin", *refspecs],
                             capture_output=True, text=True, env=env)  # fmt: skip
        assert "Traceback" not in out.stderr and "internal error" not in out.stderr, out.stderr
        if out.returncode != 0:
            assert self.refs() == before, out.stderr
            event(f"push {refspecs[0].split(':')[-1].split('/')[2]} refused")
            return False
        event(f"push {refspecs[0].split(':')[-1].split('/')[2]} done")
        return True

    @rule(index=EXISTING, branch=BRANCHES)
    def start_review(self, index: int, branch: str) -> None:
        self.attempt(self.store.review, "greeting", self.pick(self.existing(index)), branch, actor=self.actor)

    @rule(branch=BRANCHES, word=WORDS, pusher=PEOPLE)
    def push_to_review(self, branch: str, word: str, pusher: str) -> None:
        git(self.work, "fetch", "-q", "--prune", "origin")
        if not git(self.work, "branch", "-r", "--list", f"origin/review/{branch}").strip():
            return
        git(self.work, "checkout", "-q", "-B", "work", f"origin/review/{branch}")
        self.commits += 1  # every commit differs, so every push adds one
        (self.work / "prompt.yaml").write_text(PROMPT.replace("Hello", word) + f"# review {self.commits}\n")
        env = {**os.environ, "GIT_AUTHOR_NAME": pusher, "GIT_AUTHOR_EMAIL": f"{pusher.lower()}@example.com"}
        subprocess.run(["git", "-C", str(self.work), "commit", "-q", "-am", f"say {word}"],
                       env=env, check=True, capture_output=True)  # fmt: skip
        self.push(pusher, f"HEAD:refs/heads/review/{branch}")

    @rule(branch=BRANCHES, pusher=PEOPLE)
    def rewrite_review(self, branch: str, pusher: str) -> None:
        """A force-push back to its draft's tip, dropping its commits: allowed."""
        git(self.work, "fetch", "-q", "--prune", "origin")
        try:
            r = self.store.resolve("greeting", f"review/{branch}")
            tip = self.store.resolve("greeting", str(r.version)).revision  # a draft's, or a release's
        except PromptgitError:  # no such review, or its draft was deleted since
            return
        git(self.work, "checkout", "-q", "-B", "work", tip)
        self.push(pusher, f"+HEAD:refs/heads/review/{branch}")

    @rule(branch=BRANCHES, pusher=PEOPLE)
    def land_review(self, branch: str, pusher: str) -> None:
        try:
            r = self.store.resolve("greeting", f"review/{branch}")
        except PromptgitError:
            return
        git(self.work, "fetch", "-q", "--prune", "origin")
        self.push(pusher, f"refs/remotes/origin/review/{branch}:{r.version.branch}")

    @rule(branch=BRANCHES)
    def delete_review(self, branch: str) -> None:
        if self.repo_ref(f"{REVIEW}{branch}") is not None:
            assert self.push("Model", f":refs/heads/review/{branch}")

    @rule(index=EXISTING, who=PEOPLE)
    def approve(self, index: int, who: str) -> None:
        self.attempt(self.store.approve, "greeting", self.pick(self.existing(index)), actor=self.person(who))

    @rule(index=EXISTING, who=PEOPLE, to=st.sampled_from([None, "tst", "prod"]))
    def approve_then_promote(self, index: int, who: str, to: str | None) -> None:
        self.approve(index, who)
        self.promote(self.existing(index), to)

    @rule(branch=BRANCHES, who=PEOPLE)
    def approve_review(self, branch: str, who: str) -> None:
        if self.repo_ref(f"{REVIEW}{branch}") is not None:
            self.attempt(self.store.approve, "greeting", f"review/{branch}", actor=self.person(who))

    def repo_ref(self, ref: str) -> str | None:
        return self.refs().get(ref)

    @invariant()
    def no_gated_stage_ever_served_a_revision_lacking_its_approvals(self) -> None:
        repo = self.store.repository("greeting")
        for stage, need in GATES.items():
            for d in history.stage_log(repo, stage):
                found = policy.standing(repo, d.revision)
                assert len(found.counted) >= need, (stage, d.action, d.version, d.revision[:10])
                authors = history.authors(repo, d.revision)
                assert not authors.unaccounted or not found.counted
                assert not any(history.same_person(a.by, p) for a in found.counted for p in authors.people)

    @invariant()
    def review_branches_are_never_served_nor_numbered(self) -> None:
        """Every deployment serves a revision of its own version's line (a landed review's
        commits are on it), and every version is a vX.Y branch or tag."""
        repo = self.store.repository("greeting")
        versions = history.all_versions(repo)
        for stage in ("dev", "tst", "prod"):
            for d in history.stage_log(repo, stage):
                if d.version in versions:
                    assert repo.is_ancestor(d.revision, versions[d.version][0]), (stage, d.version)


TestReviewLifecycle = ReviewLifecycle.TestCase
TestReviewLifecycle.settings = settings(
    max_examples=25,  # every push starts the hooks' Python twice: seconds per sequence
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
