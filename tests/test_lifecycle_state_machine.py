"""The state machine of test_state_machine.py, with the prompt's own moves mixed in:
archive (then restore) and rename (then back), between random edits, promotions,
rollbacks and deletes. After each move: every ref and every object is still
there, and while it was away the prompt answered only with where it went."""

from __future__ import annotations

from pathlib import Path

from conftest import git
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule
from test_state_machine import PromptLifecycle

from promptgit.errors import PromptArchived, PromptgitError, PromptRenamed

LOG = "refs/promptgit/lifecycle"


def objects(repo: Path) -> set[str]:
    return set(git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)").split())


class MovingPromptLifecycle(PromptLifecycle):
    def content(self) -> tuple[dict[str, str], set[str]]:
        return {r: s for r, s in self.refs().items() if r != LOG}, objects(self.repo_path)

    def refused_while_away(self, error: type[PromptgitError]) -> None:
        for call in (
            lambda: self.store.versions("greeting"),
            lambda: self.store.get("greeting", "dev"),
            lambda: self.store.new_version("greeting", actor=self.actor),
        ):
            try:
                call()
            except error:
                continue
            raise AssertionError(f"greeting answered while away, instead of {error.__name__}")
        assert not self.repo_path.exists()

    @rule(reason=st.sampled_from(["", "paused", "replaced"]))
    def archive_and_restore(self, reason: str) -> None:
        before, held = self.content()
        self.store.archive("greeting", actor=self.actor, reason=reason)
        self.refused_while_away(PromptArchived)
        assert [a.name for a in self.store.archived()] == ["greeting"]
        self.store.restore("greeting", actor=self.actor)
        after, kept = self.content()
        assert after == before and held <= kept

    @rule(new=st.sampled_from(["team/greeting", "welcome", "a/b/greeting"]))
    def rename_and_back(self, new: str) -> None:
        before, held = self.content()
        versions = self.store.versions("greeting")
        self.store.rename("greeting", new, actor=self.actor)
        self.refused_while_away(PromptRenamed)
        assert self.store.versions(new) == versions
        self.store.rename(new, "greeting", actor=self.actor)
        after, kept = self.content()
        assert after == before and held <= kept

    @rule(new=st.sampled_from(["greeting", "versions", "ui/x", "_archive/greeting", "taken"]))
    def refused_rename(self, new: str) -> None:
        if new == "taken" and "taken" not in self.store.names():
            self.store.create("taken", {"prompt.yaml": "template: x\n"}, "taken", actor=self.actor)
        before = self.refs()
        try:
            self.store.rename("greeting", new, actor=self.actor)
        except PromptgitError:
            assert self.refs() == before
            return
        raise AssertionError(f"renamed to {new!r}")


TestMovingPromptLifecycle = MovingPromptLifecycle.TestCase
TestMovingPromptLifecycle.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
