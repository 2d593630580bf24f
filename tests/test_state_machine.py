"""Random sequences of operations against the model's invariants (hypothesis).

After every step: stages only moved forward, tags never changed, prod serves a
release, every deployment's tree is its revision's tree, a refused operation
changed no ref, and the derived-facts index changed no answer (nor did the
answers the CLI prints from it). `git fsck` runs at the end of every sequence.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pygit2
from click.testing import CliRunner
from conftest import PROMPT, git
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from promptgit import Actor, Store
from promptgit.cli import cli
from promptgit.errors import PromptgitError
from promptgit.names import trailers

STAGES = ("dev", "tst", "prod")
# An index into the existing versions (newest last), or past them: a version that does not exist.
VERSIONS = st.integers(min_value=0, max_value=6)
WORDS = st.sampled_from(["Hello", "Hi", "Hey", "Good day", "Howdy"])


def stage_map(store: Store) -> dict[str, str]:
    return {v.version: v.stage for v in store.versions("greeting")}


class PromptLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="promptgit-sm-"))
        self.store = Store.init(self.tmp / "prompts")
        self.actor = Actor("Model", "model@example.com")
        self.repo_path = self.store.path / "greeting.git"
        self.tips: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.released: set[str] = set()
        self.deprecated_at_rollback: dict[str, set[str]] = {}

    def teardown(self) -> None:
        if self.repo_path.exists():
            assert git(self.repo_path, "fsck", "--strict", "--no-dangling").strip() == ""
        shutil.rmtree(self.tmp, ignore_errors=True)

    def refs(self) -> dict[str, str]:
        repo = pygit2.Repository(str(self.repo_path))
        return {r: str(repo.references[r].target) for r in repo.references if r.startswith("refs/")}

    def pick(self, index: int) -> str:
        existing = sorted(stage_map(self.store), key=lambda v: tuple(map(int, v[1:].split("."))))
        return existing[index] if index < len(existing) else f"v9.{index}"

    def attempt(self, op, *args, **kwargs) -> bool:  # type: ignore[no-untyped-def]
        """Run an operation; if it is refused, no ref may have changed."""
        before = self.refs()
        try:
            op(*args, **kwargs)
        except PromptgitError as e:
            event(f"{op.__name__} refused: {type(e).__name__}")
            assert self.refs() == before
            return False
        event(f"{op.__name__} done")
        return True

    @initialize()
    def create(self) -> None:
        self.store.create("greeting", {"prompt.yaml": PROMPT}, "first draft", actor=self.actor)

    @rule(index=VERSIONS, word=WORDS)
    def edit(self, index: int, word: str) -> None:
        version = self.pick(index)
        text = PROMPT.replace("Hello", word)
        self.attempt(
            self.store.edit, "greeting", version, {"prompt.yaml": text}, f"say {word}", actor=self.actor
        )

    @rule(index=VERSIONS, to=st.sampled_from([None, "tst", "prod"]))
    def promote(self, index: int, to: str | None) -> None:
        version = self.pick(index)
        done = self.attempt(self.store.promote, "greeting", version, to=to, actor=self.actor)
        if done and stage_map(self.store)[version] == "PROD":
            self.released.add(version)

    @rule(source=VERSIONS, major=st.booleans())
    def new_version(self, source: int, major: bool) -> None:
        self.attempt(self.store.new_version, "greeting", self.pick(source), major=major, actor=self.actor)

    @rule(version=VERSIONS, stage=st.sampled_from(STAGES))
    def rollback(self, version: int, stage: str) -> None:
        gone = {v.version for v in self.store.versions("greeting") if v.deprecated}
        if self.attempt(self.store.rollback, "greeting", self.pick(version), stage=stage, actor=self.actor):
            tip = self.store.log("greeting", stage)[0]
            self.deprecated_at_rollback[tip.deployment] = gone  # type: ignore[union-attr]

    @rule(version=VERSIONS)
    def delete(self, version: int) -> None:
        self.attempt(self.store.delete, "greeting", self.pick(version), actor=self.actor)

    @rule(version=VERSIONS, undo=st.booleans())
    def deprecate(self, version: int, undo: bool) -> None:
        if undo:
            self.attempt(self.store.undeprecate, "greeting", self.pick(version), actor=self.actor)
        else:
            self.attempt(self.store.deprecate, "greeting", self.pick(version), "model says", actor=self.actor)

    @rule(source=VERSIONS, label=st.sampled_from(["warm", "Warm", "formal", "v2 draft"]))
    def new_named_version(self, source: int, label: str) -> None:
        self.attempt(
            self.store.new_version, "greeting", self.pick(source), version_name=label, actor=self.actor
        )

    @rule()
    def gc(self) -> None:
        self.attempt(self.store.gc, actor=self.actor)

    @invariant()
    def names_are_unique_and_no_stage_serves_a_deprecated_release_by_rollback(self) -> None:
        infos = self.store.versions("greeting")
        labels = [v.name.casefold() for v in infos]
        assert len(labels) == len(set(labels)), labels
        gone = {v.version for v in infos if v.deprecated}
        for stage in STAGES:
            for d in self.store.log("greeting", stage):
                if d.action == "rollback" and d.version in gone:  # type: ignore[union-attr]
                    # a rollback to it happened only before it was deprecated
                    assert d.version not in self.deprecated_at_rollback.get(d.deployment, set())  # type: ignore[union-attr]
        for answers in self.store.actions("greeting", "admin").rollback.values():
            assert not any(a.allowed for v, a in answers.items() if v in gone)

    @invariant()
    def stages_only_move_forward_and_tags_never_change(self) -> None:
        repo = pygit2.Repository(str(self.repo_path))
        now = self.refs()
        for stage in STAGES:
            ref = f"refs/heads/{stage}"
            old, new = self.tips.get(ref), now.get(ref)
            if old is not None:
                assert new is not None, f"{stage} was deleted"
                assert old == new or repo.descendant_of(new, old), f"{stage} moved backwards"
            if new is not None:
                self.tips[ref] = new
        for ref, sha in self.tags.items():
            assert now.get(ref) == sha, f"{ref} moved"
        self.tags.update({r: s for r, s in now.items() if r.startswith("refs/tags/")})

    @invariant()
    def deployments_are_well_formed_and_prod_serves_a_release(self) -> None:
        repo = pygit2.Repository(str(self.repo_path))
        for stage in STAGES:
            ref = repo.references.get(f"refs/heads/{stage}")
            commit = ref.peel(pygit2.Commit) if ref else None
            while commit is not None:
                t = trailers(commit.message)
                if "Promptgit-Action" not in t:
                    break
                revision = repo[t["Promptgit-Revision"]]
                assert commit.tree_id == revision.tree_id
                assert commit.parent_ids[-1] == revision.id
                if stage == "prod":
                    tag = repo.references.get(f"refs/tags/{t['Promptgit-Version']}")
                    assert tag is not None and tag.peel(pygit2.Commit).id == revision.id
                commit = commit.parents[0] if commit.parents else None

    @invariant()
    def a_release_keeps_its_stage_and_tag(self) -> None:
        stages = stage_map(self.store)
        for version in self.released:
            assert stages.get(version) == "PROD"

    @invariant()
    def the_index_never_changes_an_answer(self) -> None:
        """The store's reads (which extend the derived-facts index) answer as a store
        that walks git for everything."""
        walked = Store(self.store.path, index=False)
        assert self.store.versions("greeting") == walked.versions("greeting")
        for v in walked.version_ids("greeting"):
            assert self.store.version("greeting", v) == walked.version("greeting", v)
            assert self.store.show("greeting", v) == walked.show("greeting", v)
        assert self.store.actions("greeting", "admin") == walked.actions("greeting", "admin")

    @invariant()
    def the_cli_never_prints_an_answer_kept_for_another_state(self) -> None:
        """`show` and `versions` print the index's answer while the prompt's refs read
        the same (answers.py); after every step, what they print is the store's answer."""
        walked = Store(self.store.path, index=False)

        def printed(*args: str) -> object:
            result = CliRunner().invoke(cli, ["--store", str(self.store.path), *args, "--json"])
            assert result.exit_code == 0, result.output
            return json.loads(result.output)

        assert printed("versions", "greeting") == [v.to_json() for v in walked.versions("greeting")]
        for v in walked.version_ids("greeting"):
            assert printed("show", f"greeting@{v}") == walked.show("greeting", v).to_json()


TestPromptLifecycle = PromptLifecycle.TestCase
TestPromptLifecycle.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
