"""policy.check as a pure function: a table of proposed ref updates against one
real repository, each with the violations it must (or must not) produce."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from conftest import PROMPT, prompt_text

from promptgit import Actor, Store, history, names, policy
from promptgit._git import Person, RefUpdate, Repo
from promptgit.names import Version

WHO = Person("Policy Test", "policy@example.com", 1_700_000_000, 0)


@dataclass
class World:
    """greeting: v1.0 released (prod), v1.1 in TST (current tst), v1.2 current DEV,
    v1.3 deleted (retired), v1.4 an unused DEV draft."""

    repo: Repo

    def ref(self, name: str) -> str:
        sha = self.repo.ref(name)
        assert sha is not None, name
        return sha

    def tip(self, v: str) -> str:
        found = history.version_tip(self.repo, Version.parse(v))
        assert found is not None
        return found[0]

    def revision(self, v: str, text: str, parent: str | None = None, message: str = "edit\n") -> str:
        tree = self.repo.stage_tree({"prompt.yaml": text.encode()})
        return self.repo.stage_commit(tree, [parent or self.tip(v)], message, WHO)

    def deploy(self, stage: str, action: str, v: str, revision: str, parent: str | None = "tip") -> str:
        old = self.repo.ref(f"refs/heads/{stage}") if parent == "tip" else parent
        parents = [old, revision] if old else [revision]
        message = names.deployment_message(action, stage, Version.parse(v), revision, "")
        return self.repo.stage_commit(self.repo.commit(revision).tree, parents, message, WHO)

    def stage_update(self, stage: str, new: str) -> RefUpdate:
        return RefUpdate(f"refs/heads/{stage}", self.repo.ref(f"refs/heads/{stage}"), new)

    def release(self, v: str, revision: str | None = None) -> list[RefUpdate]:
        rev = revision or self.tip(v)
        tag = self.repo.stage_tag(v, rev, "Release\n", WHO)
        return [
            RefUpdate(f"refs/tags/{v}", None, tag),
            self.stage_update("prod", self.deploy("prod", "promote", v, rev)),
            RefUpdate(f"refs/heads/{v}", self.repo.ref(f"refs/heads/{v}"), None),
        ]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    store = Store.init(tmp_path_factory.mktemp("policy") / "prompts")
    a = Actor("Setup", "setup@example.com")
    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=a)
    store.promote("greeting", "v1.0", actor=a)
    store.promote("greeting", "v1.0", actor=a)
    store.new_version("greeting", "v1.0", actor=a)  # v1.1
    store.edit("greeting", "v1.1", {"prompt.yaml": prompt_text("Hi")}, "hi", actor=a)
    store.promote("greeting", "v1.1", actor=a)  # tst serves v1.1
    store.new_version("greeting", "v1.1", actor=a)  # v1.2
    store.new_version("greeting", "v1.1", actor=a)  # v1.3
    store.new_version("greeting", "v1.1", actor=a)  # v1.4
    store.rollback("greeting", "v1.2", stage="dev", actor=a)
    store.delete("greeting", "v1.3", actor=a)
    return World(Repo(str(store.path / "greeting.git")))


Case = Callable[[World], list[RefUpdate]]

ALLOWED: list[tuple[str, Case]] = [
    ("edit a DEV draft", lambda w: [RefUpdate("refs/heads/v1.4", w.tip("v1.4"), w.revision("v1.4", prompt_text("Yo")))]),
    ("edit a TST draft with tst's update", lambda w: (lambda r: [
        RefUpdate("refs/heads/v1.1", w.tip("v1.1"), r),
        w.stage_update("tst", w.deploy("tst", "update", "v1.1", r)),
    ])(w.revision("v1.1", prompt_text("Yo")))),
    ("promote a DEV draft to tst", lambda w: [w.stage_update("tst", w.deploy("tst", "promote", "v1.2", w.tip("v1.2")))]),
    ("release what tst serves", lambda w: w.release("v1.1")),
    ("roll prod back to the release it served", lambda w: [w.stage_update("prod", w.deploy("prod", "rollback", "v1.0", w.tip("v1.0")))]),
    ("roll tst back to a release it served", lambda w: [w.stage_update("tst", w.deploy("tst", "rollback", "v1.0", w.tip("v1.0")))]),
    ("delete an unused DEV draft", lambda w: [RefUpdate("refs/heads/v1.4", w.tip("v1.4"), None)]),
    ("write a note", lambda w: [RefUpdate("refs/notes/review", None, w.tip("v1.4"))]),
    ("a new draft from a release", lambda w: [RefUpdate("refs/heads/v2.0", None, w.repo.stage_commit(
        w.repo.commit(w.tip("v1.0")).tree, [w.tip("v1.0")], names.creation_message(Version(2, 0), Version(1, 0), "", "second"), WHO))]),
    ("nothing changes", lambda w: [RefUpdate("refs/heads/dev", w.ref("refs/heads/dev"), w.ref("refs/heads/dev"))]),
]  # fmt: skip

REFUSED: list[tuple[str, Case, str]] = [
    ("rewind a stage", lambda w: [RefUpdate("refs/heads/dev", w.ref("refs/heads/dev"), w.repo.commit(w.ref("refs/heads/dev")).parents[0])],
     "dev only grows by one deployment commit"),
    ("delete a stage", lambda w: [RefUpdate("refs/heads/tst", w.ref("refs/heads/tst"), None)], "stages are never deleted"),
    ("two deployments at once", lambda w: [w.stage_update("tst", w.deploy("tst", "promote", "v1.2", w.tip("v1.2"),
        parent=w.deploy("tst", "promote", "v1.4", w.tip("v1.4"))))], "only grows by one deployment commit"),
    ("a deployment whose tree is not its revision's", lambda w: [w.stage_update("tst", w.repo.stage_commit(
        w.repo.commit(w.tip("v1.0")).tree, [w.ref("refs/heads/tst"), w.tip("v1.2")],
        names.deployment_message("promote", "tst", Version(1, 2), w.tip("v1.2"), ""), WHO))],
     "a deployment's tree must equal its revision's tree"),
    ("a deployment naming another revision", lambda w: [w.stage_update("tst", w.repo.stage_commit(
        w.repo.commit(w.tip("v1.2")).tree, [w.ref("refs/heads/tst"), w.tip("v1.2")],
        names.deployment_message("promote", "tst", Version(1, 2), w.tip("v1.4"), ""), WHO))],
     "is not a well-formed deployment"),
    ("prod deploys what tst never served", lambda w: w.release("v1.2"), "TST never served revision"),
    ("release without the tag", lambda w: w.release("v1.1")[1:], "a release creates tag v1.1"),
    ("release keeping the branch", lambda w: w.release("v1.1")[:2], "a release deletes branch v1.1"),
    ("a tag without a release", lambda w: w.release("v1.1")[:1], "created only with the prod deployment"),
    ("a lightweight tag", lambda w: [RefUpdate("refs/tags/v1.4", None, w.tip("v1.4"))], "must be an annotated tag named v1.4"),
    ("move a release tag", lambda w: [RefUpdate("refs/tags/v1.0", w.ref("refs/tags/v1.0"), w.repo.stage_tag("v1.0", w.tip("v1.2"), "x\n", WHO))],
     "v1.0 is a release: its tag never moves"),
    ("promote a release into tst", lambda w: [w.stage_update("tst", w.deploy("tst", "promote", "v1.0", w.tip("v1.0")))],
     "a release is never promoted into tst"),
    ("promote an old revision", lambda w: [w.stage_update("tst", w.deploy("tst", "promote", "v1.2",
        w.repo.commit(w.tip("v1.1")).sha))], "a promotion deploys the tip of v1.2"),
    ("update prod", lambda w: [w.stage_update("prod", w.deploy("prod", "update", "v1.0", w.tip("v1.0")))], "prod is never updated in place"),
    ("update a stage serving another version", lambda w: [w.stage_update("tst", w.deploy("tst", "update", "v1.2", w.tip("v1.2")))],
     "an update deploys the version tst already serves, not v1.2"),
    ("create on tst", lambda w: [w.stage_update("tst", w.deploy("tst", "create", "v1.2", w.tip("v1.2")))], "goes to dev only"),
    ("create twice", lambda w: [w.stage_update("dev", w.deploy("dev", "create", "v1.2", w.tip("v1.2")))], "v1.2 was created before"),
    ("promote into dev", lambda w: [w.stage_update("dev", w.deploy("dev", "promote", "v1.4", w.tip("v1.4")))], "nothing is promoted into dev"),
    ("roll prod back to a draft", lambda w: [w.stage_update("prod", w.deploy("prod", "rollback", "v1.1", w.tip("v1.1")))],
     "prod rolls back only to a release"),
    ("roll tst back to what it never served", lambda w: [w.stage_update("tst", w.deploy("tst", "rollback", "v1.4", w.tip("v1.4")))],
     "tst never served v1.4"),
    ("roll back to a deleted version", lambda w: [w.stage_update("dev", w.deploy("dev", "rollback", "v1.3", w.tip("v1.2")))],
     "v1.3 no longer exists"),
    ("edit a release", lambda w: [RefUpdate("refs/heads/v1.0", None, w.revision("v1.0", prompt_text("Yo")))],
     "v1.0 is released and immutable"),
    ("delete the current DEV draft", lambda w: [RefUpdate("refs/heads/v1.2", w.tip("v1.2"), None)], "v1.2 is the current DEV version"),
    ("delete a draft that was in TST", lambda w: [RefUpdate("refs/heads/v1.1", w.tip("v1.1"), None)], "v1.1 has been in TST"),
    ("reuse a retired number", lambda w: [RefUpdate("refs/heads/v1.3", None, w.tip("v1.4"))], "v1.3 was used before and is retired"),
    ("a draft commit with a trailer", lambda w: [RefUpdate("refs/heads/v1.4", w.tip("v1.4"), w.revision(
        "v1.4", prompt_text("Yo"), message="x\n\nPromptgit-Version: v1.0\n"))], "carries a Promptgit-Version trailer"),
    ("invalid content", lambda w: [RefUpdate("refs/heads/v1.4", w.tip("v1.4"), w.revision("v1.4", "template: {{ x\n"))],
     "prompt.yaml:2: not valid YAML"),
    ("not a fast-forward", lambda w: [RefUpdate("refs/heads/v1.4", w.tip("v1.4"), w.revision("v1.4", prompt_text("Yo"), parent=w.tip("v1.2")))],
     "not a fast-forward of v1.4"),
    ("a ref outside the namespace", lambda w: [RefUpdate("refs/heads/main", None, w.tip("v1.4"))], "not a promptgit ref"),
    ("a tag named like a stage", lambda w: [RefUpdate("refs/tags/prod", None, w.tip("v1.4"))], "'prod' is a stage"),
    ("forge a test run", lambda w: [RefUpdate("refs/notes/promptgit-tests", None, w.tip("v1.4"))], "recorded by 'promptgit test' only"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "case"), ALLOWED, ids=[c[0] for c in ALLOWED])
def test_allowed(world: World, label: str, case: Case) -> None:
    try:
        assert policy.check(world.repo, case(world), "admin", "greeting") == []
    finally:
        world.repo.discard()


@pytest.mark.parametrize(("label", "case", "expected"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refused(world: World, label: str, case: Case, expected: str) -> None:
    try:
        found = policy.check(world.repo, case(world), "admin", "greeting")
    finally:
        world.repo.discard()
    assert found, f"{label}: allowed"
    assert any(expected in v.message for v in found), [v.message for v in found]


@pytest.mark.parametrize(
    ("role", "case", "needed"),
    [
        ("reader", ALLOWED[0][1], "editor"),
        ("editor", ALLOWED[3][1], "releaser"),
        ("editor", ALLOWED[4][1], "releaser"),
        ("nobody", ALLOWED[2][1], "editor"),
    ],
)
def test_roles(world: World, role: str, case: Case, needed: str) -> None:
    try:
        found = policy.check(world.repo, case(world), role, "greeting")
    finally:
        world.repo.discard()
    assert any(v.kind == "forbidden" and f"needs role '{needed}'" in v.message for v in found)


def test_check_reads_nothing_it_was_not_given(world: World) -> None:
    """Staged objects are invisible once discarded: the policy saw only the proposal."""
    rev = world.revision("v1.4", prompt_text("Yo"))
    assert world.repo.exists(rev)
    world.repo.discard()
    assert not world.repo.exists(rev)
