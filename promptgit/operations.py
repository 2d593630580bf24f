"""The operations that change a store: create, edit, new-version, promote,
rollback, delete, test, and what post-receive does after a push.

Each computes the ref updates it proposes (with its new objects only staged),
then `Repo.update_refs` locks every ref it changes or reads, re-checks them,
asks `policy.check`, and only then writes objects and refs. A refused or lost
operation leaves the store exactly as it was.
"""

from __future__ import annotations

import builtins
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import changes, content, history, hooks, locks, names, policy, prompt_tests
from ._git import Person, RefUpdate, Repo
from .errors import (
    ConcurrentUpdate,
    Forbidden,
    InvalidInput,
    PromptExists,
    RefNotFound,
    ReviewExists,
    RuleViolation,
    VersionExists,
    VersionNameTaken,
)
from .model import Actor, ApprovalInfo, DeploymentInfo, EditResult, ReviewInfo, VersionInfo
from .names import RefSpec, Version
from .whereabouts import Whereabouts, notice

REPO_CONFIG = {
    "core.logAllRefUpdates": "always",
    # off so that review branches (refs/heads/review/*) can be force-pushed; pre-receive's
    # policy refuses every other non-fast-forward (policy.forward_only: the second lock)
    "receive.denyNonFastForwards": "false",
    "receive.denyDeletes": "false",
    "gc.auto": "0",  # promptgit packs for itself; never a surprise gc inside a push
}
Files = Mapping[str, str]
CREATING = ".create-"  # a prompt being created: built in <store>/.create-XXXX, then renamed


class Operations(Whereabouts):
    # --- writes -----------------------------------------------------------------

    def _apply(
        self,
        repo: Repo,
        name: str,
        updates: Sequence[RefUpdate],
        actor: Actor,
        message: str,
        read: Mapping[str, str | None] = {},
        library: bool = False,
        then: Sequence[Sequence[RefUpdate]] = (),
    ) -> None:
        """Apply `updates` (then each step of `then`, in order) if the policy allows
        all of them; see Repo.update_refs."""
        cfg = self.config
        steps = [updates, *then]
        every = [u for step in steps for u in step]

        def check() -> None:
            found = policy.check(
                repo,
                every,
                actor.role,
                name,
                require_tests=cfg.require_tests,
                library=library,
                max_drafts=cfg.max_drafts,
                require_approvals=cfg.require_approvals,
            )
            forbidden = [v for v in found if v.kind == "forbidden"]
            if forbidden:  # the first says it: the others need the same role for one action
                raise Forbidden(f"{actor.name}: {forbidden[0]}")
            if found:
                raise RuleViolation(found)

        entry = names.audit_message(message, [(u.ref, u.old, u.new) for u in every], "library")
        repo.update_refs(
            steps, read=read, check=check, who=actor.person(), message=message, audit=(names.AUDIT_REF, entry)
        )
        self._served.clear()

    def _deploy(
        self,
        repo: Repo,
        stage: str,
        action: str,
        version: Version,
        revision: str,
        who: Person,
        note: str = "",
        tip: str | None = None,
    ) -> RefUpdate:
        """Stage one deployment commit on top of `stage`'s tip (read now unless given)."""
        ref = f"refs/heads/{stage}"
        old = repo.ref(ref) if tip is None else tip
        parents = [old, revision] if old is not None else [revision]
        message = names.deployment_message(action, stage, version, revision, note)
        sha = repo.stage_commit(repo.commit(revision).tree, parents, message, who)
        return RefUpdate(ref, old, sha)

    def create(
        self,
        name: str,
        files: Files,
        message: str,
        *,
        actor: Actor,
        version_name: str | None = None,
        description: str = "",
    ) -> VersionInfo:
        """A new prompt: v1.0 as a DEV draft, served by dev. `version_name` names v1.0
        (default: its creation time in UTC); `description` describes it."""
        path = self._repo_path(name)
        self.check()
        data = _encode(files)
        content.check_files(data)
        names.check_description(description)
        if version_name is not None:
            names.check_version_name(version_name)
        if path.exists():
            raise PromptExists(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.sweep_creations()
        # the folder's name says whose it is (pid and start time): a kill at any moment,
        # even before a file could be written in it, leaves it recognisably stale
        pid, started, _host = locks.me().split()
        tmp = Path(tempfile.mkdtemp(prefix=f"{CREATING}{pid}.{started}.", dir=self.path))
        try:
            repo = Repo.init(str(tmp / "repo.git"), "refs/heads/dev", REPO_CONFIG)
            hooks.install(tmp / "repo.git")
            who = actor.person()
            v = names.FIRST
            tree = repo.stage_tree(data)
            label = version_name or history.default_name(who.time)
            rev = repo.stage_commit(
                tree, [], names.creation_message(v, None, message, label, description), who
            )
            dev = self._deploy(repo, "dev", "create", v, rev, who, tip=None)
            self._apply(repo, name, [RefUpdate(v.branch, None, rev), dev], actor, f"promptgit: create {name}")
            try:
                os.rename(tmp / "repo.git", path)
            except OSError:
                raise PromptExists(name) from None
            changes.touch(self.path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.versions(name)[0]

    def edit(
        self,
        name: str,
        version: str | Version,
        files: Files,
        message: str,
        *,
        expect: str | None = None,
        keep_text: bool = True,
        actor: Actor,
    ) -> EditResult:
        """A new revision of a draft; every stage serving it gets an `update`.

        `expect` is the revision the caller edited (default: the tip read now);
        if the draft moved since, this is a conflict, and with `keep_text` the
        caller's text is saved to a file the error names.
        """
        repo = self._open(name)
        self._recover(repo, name, actor)
        v = self._version_arg(repo, name, version)
        tip, released = self._tip(repo, name, v)
        old_files = repo.files(repo.commit(tip).tree)
        new_files = {**old_files, **_encode(files)}
        content.check_files(new_files)
        if expect is not None:
            expected = repo.expand(expect)
            if expected is None:
                raise RefNotFound(name, f"revision {expect} (given as --expect / If-Match)")
            if expected != tip:
                raise self._edit_conflict(name, v, tip, files, keep_text)
        if new_files == old_files and not released:
            return EditResult(str(v), tip, False, ())
        who = actor.person()
        rev = repo.stage_commit(repo.stage_tree(new_files), [tip], _message(message, v), who)
        branch = RefUpdate(v.branch, repo.ref(v.branch) if released else tip, rev)
        stage_tips = _stage_tips(repo)
        deploys = [] if released else self._follow(repo, v, rev, who, stage_tips, names.summary(message))
        held = [] if released else self._held(repo, v, rev, stage_tips)
        try:
            # the revision lands first, then the stages that follow it: no stage ever
            # names a revision its branch does not hold yet, whatever a crash interrupts
            self._apply(
                repo,
                name,
                [branch],
                actor,
                f"promptgit: edit {v}",
                read=stage_tips,
                then=[deploys] if deploys else [],
            )
        except ConcurrentUpdate:
            now = history.version_tip(repo, v)
            if now is not None and now[0] != tip:
                raise self._edit_conflict(name, v, now[0], files, keep_text) from None
            raise
        return EditResult(
            str(v), rev, True, tuple(u.ref.removeprefix("refs/heads/") for u in deploys), tuple(held)
        )

    def _follow(
        self,
        repo: Repo,
        v: Version,
        revision: str,
        who: Person,
        stage_tips: Mapping[str, str | None],
        note: str,
        keep_restored: bool = False,
    ) -> builtins.list[RefUpdate]:
        """`update` deployments for the stages serving `v` at another revision (but,
        with `keep_restored`, not for a stage a rollback restored to it)."""
        out = []
        held = self._held(repo, v, revision, stage_tips)
        for ref, stage_tip in stage_tips.items():
            stage = ref.removeprefix("refs/heads/")
            d = history.current(repo, stage, stage_tip) if stage_tip else None
            if keep_restored and d is not None and d.action == "rollback":
                continue
            if d is not None and d.version == v and d.revision != revision and stage not in held:
                out.append(self._deploy(repo, stage, "update", v, revision, who, note, stage_tip))
        return out

    def _held(
        self, repo: Repo, v: Version, revision: str, stage_tips: Mapping[str, str | None]
    ) -> builtins.list[str]:
        """The stages serving `v` that do not follow it to `revision`: require_approvals
        gates them, and `revision` lacks its approvals. They keep the approved revision
        until 'promptgit promote' moves them, once it has them."""
        out = []
        for ref, stage_tip in stage_tips.items():
            stage = ref.removeprefix("refs/heads/")
            d = history.current(repo, stage, stage_tip) if stage_tip else None
            if d is None or d.version != v or d.revision == revision:
                continue
            if policy.approval_problem(repo, stage, self.config.require_approvals, v, revision, ""):
                out.append(stage)
        return out

    def follow(
        self,
        name: str,
        version: str | Version,
        *,
        actor: Actor,
        attempts: int = 5,
        keep_restored: bool = False,
    ) -> builtins.list[str]:
        """After a push to a draft: the stages serving it move to its tip, and a
        new draft gets its `create` deployment (it becomes current in dev), as
        `edit` and `new-version` would have done. Idempotent; retries lost races.
        Returns the stages it moved. `keep_restored`: leave a stage a rollback
        restored to an older revision (finishing a crashed write, not a push)."""
        for _ in range(attempts):
            repo = self._open(name)
            self._finish_releases(repo, name, actor)
            v = self._version_arg(repo, name, version)
            tip = repo.ref(v.branch)
            if tip is None or repo.ref(v.tag) is not None:
                return []
            who = actor.person()
            stage_tips = _stage_tips(repo)
            updates = self._follow(repo, v, tip, who, stage_tips, "pushed with git", keep_restored)
            if not history.has_served(repo, "dev", v):
                dev = stage_tips["refs/heads/dev"]
                updates.append(self._deploy(repo, "dev", "create", v, tip, who, "pushed with git", dev))
            if not updates:
                return []
            read = {**stage_tips, v.branch: tip, v.tag: None}
            try:
                self._apply(repo, name, updates, actor, f"promptgit: follow {v}", read=read)
            except ConcurrentUpdate:
                continue
            return [u.ref.removeprefix("refs/heads/") for u in updates]
        raise ConcurrentUpdate(f"{name}@{version} kept changing; run the operation again")

    def record_push(self, name: str, updates: Sequence[RefUpdate], *, actor: Actor) -> None:
        """Append a push's ref updates to the audit log, as done by `actor` (the
        authenticated pusher), now: post-receive's first step."""
        repo = self._open(name)
        entry = names.audit_message(f"push by {actor}", [(u.ref, u.old, u.new) for u in updates], "push")
        repo.update_refs(
            [],
            read={},
            check=None,
            who=actor.person(),
            message="promptgit: push",
            audit=(names.AUDIT_REF, entry),
        )

    def sweep_creations(self) -> builtins.list[str]:
        """Remove what a `create` killed midway left: a `.create-*` folder whose owner
        is gone (a new repository is built there, then renamed into place)."""
        removed = []
        for leftover in sorted(self.path.glob(CREATING + "*")):
            pid, _, rest = leftover.name.removeprefix(CREATING).partition(".")
            started = rest.partition(".")[0]
            if pid.isdigit() and started:
                gone = locks.owner_gone(f"{pid} {started} {socket.gethostname()}")
            else:  # a folder of an older promptgit: its name does not say whose it is
                gone = time.time() - leftover.stat().st_mtime > locks.GRACE
            if gone:
                shutil.rmtree(leftover, ignore_errors=True)
                removed.append(leftover.name)
        return removed

    def _edit_conflict(
        self, name: str, v: Version, winner: str, files: Files, keep: bool
    ) -> ConcurrentUpdate:
        """The lost race, saying which revision won; with `keep`, the loser's text is
        saved to a file it names (the CLI's case: a server keeps it in its answer)."""
        saved = None
        if keep:
            fd, saved = tempfile.mkstemp(prefix=f"promptgit-{name.replace('/', '-')}-{v}-", suffix=".yaml")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(files.get(content.PROMPT_FILE, ""))
        kept = f"your text is saved in {saved}: " if saved else ""
        return ConcurrentUpdate(
            f"{name}@{v} was changed by someone else (it is now at revision {winner[:10]}); "
            f"{kept}look at the new revision ('promptgit show {name}@{v}'), merge, and edit again",
            current=winner,
            saved=saved,
        )

    def new_version(
        self,
        name: str,
        source: RefSpec | str | None = None,
        *,
        major: bool = False,
        as_version: str | None = None,
        message: str = "",
        files: Files | None = None,
        version_name: str | None = None,
        description: str = "",
        actor: Actor,
    ) -> VersionInfo:
        """A new DEV draft with the source's content; it becomes current in dev.

        `version_name` names it (unique, ignoring case; default: its creation time in
        UTC) and `description` describes it; both are fixed once created. `files`
        (optional) are saved as the draft's first edit; they are validated before
        anything is written, so bad content creates no version."""
        repo = self._open(name)
        self._recover(repo, name, actor)
        labels = {n.casefold(): v for v, (n, _d) in history.version_names(repo).items()}  # one walk
        names.check_description(description)
        if version_name is not None:
            names.check_version_name(version_name)
            if version_name.casefold() in labels:
                raise VersionNameTaken(name, version_name, str(labels[version_name.casefold()]))
        src = self._resolve(repo, name, source)
        if files:
            source_files = repo.files(repo.commit(src.revision).tree)
            content.check_files({**source_files, **_encode(files)})
        used = history.used_numbers(repo)
        if as_version is not None:
            v = Version.parse(as_version)
            if v in used:
                raise VersionExists(
                    name,
                    str(v),
                    "is taken" if v in history.all_versions(repo) else "was used before",
                )
        elif major:
            v = Version(max(u.major for u in used) + 1, 0)
        else:
            v = Version(src.version.major, max(u.minor for u in used if u.major == src.version.major) + 1)
        who = actor.person()
        label = version_name or history.default_name(who.time, list(labels))
        source_commit = repo.commit(src.revision)
        rev = repo.stage_commit(
            source_commit.tree,
            [src.revision],
            names.creation_message(v, src.version, message, label, description),
            who,
        )
        dev = self._deploy(repo, "dev", "create", v, rev, who, names.summary(message))
        source_ref = src.version.tag if src.released else src.version.branch
        read = {v.tag: None, source_ref: repo.ref(source_ref)}  # the number is free; the source holds
        # the branch first, then dev's create deployment: dev never names a version that is
        # not there yet (a crash between leaves a draft dev never served, which `delete`
        # and `doctor --repair` finish)
        self._apply(
            repo, name, [RefUpdate(v.branch, None, rev)], actor, f"promptgit: new version {v}", read=read,
            then=[[dev]],
        )  # fmt: skip
        if files:
            self.edit(name, v, files, message or "first content", expect=rev, actor=actor)
        return self._version_info(repo, v)

    def promote(
        self,
        name: str,
        version: str | Version | None = None,
        *,
        to: str | None = None,
        expect: str | None = None,
        actor: Actor,
    ) -> DeploymentInfo:
        """Deploy a draft's tip to tst, or release it to prod (tag, prod, branch gone).

        `expect`: the revision the caller means to promote; if the tip is another,
        nothing happens and ConcurrentUpdate says which revision it is now."""
        repo = self._open(name)
        self._recover(repo, name, actor)
        if to is not None:
            names.check_stage(to)
            if to == "dev":
                raise InvalidInput(
                    "promote goes to tst or prod; dev gets new drafts by create and new-version"
                )
        if version is None:
            to = to or "tst"
            source = "dev" if to == "tst" else "tst"
            d = history.current(repo, source)
            if d is None:
                raise RefNotFound(name, f"version in {source} to promote")
            v = d.version
        else:
            v = self._version_arg(repo, name, version)
        tip, released = self._tip(repo, name, v)
        if expect is not None and repo.expand(expect) != tip:
            raise ConcurrentUpdate(
                f"{name}@{v} is at revision {tip[:10]}, not {expect[:10]}: look again before promoting",
                current=tip,
            )
        if to is None:
            to = "prod" if released or history.has_served(repo, "tst", v) else "tst"
        who = actor.person()
        deploy = self._deploy(repo, to, "promote", v, tip, who)
        then: list[list[RefUpdate]] = []
        if to == "tst":
            updates = [deploy]
            read = {v.branch: None if released else tip, v.tag: repo.ref(v.tag)}
        else:
            # prod first, then the tag, then the branch goes: each step its own
            # transaction under the write lock, so whatever a crash leaves,
            # `_finish_releases` (which starts from prod's tip) completes it.
            tag = repo.stage_tag(str(v), tip, f"Release {v}\n", who)
            updates = [deploy]
            then = [[RefUpdate(v.tag, repo.ref(v.tag), tag)], [RefUpdate(v.branch, repo.ref(v.branch), None)]]
            read = {"refs/heads/tst": repo.ref("refs/heads/tst")}
        self._apply(repo, name, updates, actor, f"promptgit: promote {v} to {to}", read=read, then=then)
        return self._current_info(repo, to)

    def rollback(
        self, name: str, version: str | Version, *, stage: str = "prod", actor: Actor
    ) -> DeploymentInfo | None:
        """Make `stage` serve again the revision it last served for `version`.

        Returns None when the stage already serves that version (nothing changes)."""
        repo = self._open(name)
        self._recover(repo, name, actor)
        names.check_stage(stage)
        v = self._version_arg(repo, name, version)
        tip, _released = self._tip(repo, name, v)
        stage_tip = repo.ref(f"refs/heads/{stage}")
        now = history.current(repo, stage, stage_tip) if stage_tip else None
        if now is not None and now.version == v:
            return None
        last = history.last_served(repo, stage, v, stage_tip) if stage_tip else None
        revision = last.revision if last else tip
        deploy = self._deploy(repo, stage, "rollback", v, revision, actor.person(), tip=stage_tip)
        self._apply(
            repo,
            name,
            [deploy],
            actor,
            f"promptgit: roll {stage} back to {v}",
            read={v.tag: repo.ref(v.tag), v.branch: repo.ref(v.branch)},
        )
        return self._current_info(repo, stage)

    def deprecate(self, name: str, version: str | Version, reason: str, *, actor: Actor) -> VersionInfo:
        """Mark a release deprecated: rollback skips it. Not the one prod serves now."""
        why = names.reason(reason)
        if not why:
            raise InvalidInput("say why it is deprecated (-m REASON): the reason is shown wherever it is")
        return self._deprecation(name, version, why, actor, undo=False)

    def undeprecate(self, name: str, version: str | Version, *, actor: Actor) -> VersionInfo:
        """Take a deprecation back: rollback may go to the release again."""
        return self._deprecation(name, version, "", actor, undo=True)

    def _deprecation(
        self, name: str, version: str | Version, reason: str, actor: Actor, undo: bool
    ) -> VersionInfo:
        """Append a deprecate/undeprecate event to the events log, under the write lock
        and with prod locked, after the same checks `policy.deprecation_problem` makes."""
        policy.require("deprecate", actor.name, actor.role)
        repo = self._open(name)
        v = self._version_arg(repo, name, version)
        self._tip(repo, name, v)

        def check() -> None:
            problem = policy.deprecation_problem(repo, v, undo=undo)
            if problem:
                raise RuleViolation([problem])

        check()  # a clear answer before any lock is taken; again below, under the locks
        event = names.event_message("undeprecate" if undo else "deprecate", v, reason)
        read = {"refs/heads/prod": repo.ref("refs/heads/prod"), v.tag: repo.ref(v.tag)}
        who = actor.person()
        repo.update_refs([], read=read, check=check, who=who, message=event, audit=(names.EVENTS_REF, event))
        return self._version_info(repo, v)

    def delete(self, name: str, version: str | Version, *, actor: Actor) -> None:
        """Remove a DEV draft that never reached TST and is not current in dev."""
        repo = self._open(name)
        self._recover(repo, name, actor)
        v = self._version_arg(repo, name, version)
        self._tip(repo, name, v)  # RefNotFound, listing the versions, if it does not exist
        if not history.has_served(repo, "dev", v) and not locks.receiving(Path(repo.path)):
            # created by a new-version a crash cut short (no push is landing it): finish
            # its creation first, so its number is retired like any other's
            self.follow(name, v, actor=actor)
        branch, tag = repo.ref(v.branch), repo.ref(v.tag)
        update = RefUpdate(v.branch, branch, None) if branch else RefUpdate(v.tag, tag, None)
        read = _stage_tips(repo)
        self._apply(repo, name, [update], actor, f"promptgit: delete {v}", read=read)

    def test(
        self,
        name: str,
        ref: RefSpec | str | None = None,
        *,
        env: str | None = None,
        actor: Actor,
        record: bool = True,
    ) -> prompt_tests.TestRun:
        """Run the cases of tests.yaml on NAME@REF in a stage's environment, and record
        the run as a git note on the tested revision.

        The environment is `env`, else the stage REF names, else the stage of the
        version (DEV -> dev, TST -> tst, PROD -> prod).
        """
        repo = self._open(name)
        spec = RefSpec.parse(ref) if isinstance(ref, str) else ref
        r = self._resolve(repo, name, spec)
        if env is None:
            if spec is not None and spec.kind == "stage":
                env = spec.value
            else:
                env = self._stage(repo, r.version, r.released).lower()
        environment = self.config.environment(names.check_stage(env))
        prompt = self._prompt(repo, name, r.version, r.revision)
        cases = content.parse_tests(prompt.tests) if prompt.tests else {"cases": []}
        if not cases.get("cases"):
            fix = (
                f"a release is immutable, so add it to a new version: 'promptgit new-version {name} "
                f"--from {r.version}', then 'promptgit edit {name}@NEW --tests tests.yaml'"
                if r.released
                else f"'promptgit edit {name}@{r.version} --tests tests.yaml'"
            )
            raise InvalidInput(
                f"{name}@{r.version} has no test cases: add a tests.yaml beside prompt.yaml ({fix})"
            )
        now = actor.person()
        from . import bounded  # cases run in a worker: deadlines and a memory ceiling

        run = bounded.run_tests(prompt, cases, environment, now.by, now.at)
        if record:
            self._record_run(repo, name, run, actor)
        return run

    def _record_run(
        self, repo: Repo, name: str, run: prompt_tests.TestRun, actor: Actor, attempts: int = 5
    ) -> None:
        """Append the run to the revision's note, compare-and-swap on the notes ref."""
        for _ in range(attempts):
            old = repo.note(names.NOTES_TESTS_REF, run.revision) or ""
            text = old + ("" if not old or old.endswith("\n") else "\n") + run.note_line() + "\n"
            verdict = "passed" if run.passed else "failed"
            message = f"Test {run.version} ({run.revision[:10]}) in {run.env.stage}: {verdict}\n"
            update = repo.stage_note(names.NOTES_TESTS_REF, run.revision, text, actor.person(), message)
            try:
                self._apply(repo, name, [update], actor, "promptgit: record test run", library=True)
                return
            except ConcurrentUpdate:
                continue
        raise ConcurrentUpdate(
            f"could not record the test run of {name}: the notes kept changing; run it again"
        )

    def review(self, name: str, version: str | Version, branch: str, *, actor: Actor) -> ReviewInfo:
        """Start review branch `review/BRANCH` at a draft's tip: commit to it with git
        (editors may force-push or delete it), compare it with 'diff', and land it on
        the draft by a fast-forward push. It is never served and never numbered."""
        if branch.startswith("review/"):
            raise InvalidInput(
                f"give BRANCH without its review/ prefix: 'promptgit review {name}@{version} "
                f"{branch.removeprefix('review/')}' starts {branch}"
            )
        ref = names.review_ref(branch)
        repo = self._open(name)
        self._recover(repo, name, actor)
        v = self._version_arg(repo, name, version)
        tip, released = self._tip(repo, name, v)
        if released:
            raise RuleViolation(
                [f"{policy.released(v)}: review a draft instead ('promptgit new-version {name} --from {v}')"]
            )
        existing = repo.ref(ref)
        if existing is not None:
            raise ReviewExists(name, f"review/{branch}", existing)
        for other, sha in repo.refs(names.REVIEW).items():  # git keeps a/b and a apart as folders
            if other.startswith(ref + "/") or ref.startswith(other + "/"):
                raise ReviewExists(name, other.removeprefix("refs/heads/"), sha)
        self._apply(
            repo, name, [RefUpdate(ref, None, tip)], actor, f"promptgit: review {v} as review/{branch}",
            read={v.branch: tip, v.tag: None},
        )  # fmt: skip
        return ReviewInfo(name, f"review/{branch}", str(v), tip)

    def approve(
        self,
        name: str,
        ref: RefSpec | str,
        comment: str = "",
        *,
        expect: str | None = None,
        actor: Actor,
        attempts: int = 5,
    ) -> ApprovalInfo:
        """Approve the exact revision NAME@REF's tip has now (a draft, or a review
        branch), as `actor`, now: an append to the approvals notes, which promptgit alone
        writes. Approving again what one approved before changes nothing. An author's
        approval is recorded, but does not count toward require_approvals. `expect`: the
        revision the caller looked at; if the tip is another, nothing is recorded."""
        policy.require("approve", actor.name, actor.role)
        spec = RefSpec.parse(ref) if isinstance(ref, str) else ref
        if spec.kind == "revision":
            raise InvalidInput(
                f"approve a version (e.g. {name}@v1.2) or a review branch ({name}@review/BRANCH): an "
                "approval is of what its tip holds now, not of a revision named by its sha"
            )
        text = names.reason(comment, "comment")
        for _ in range(attempts):
            repo = self._open(name)
            if spec.kind == "review":
                r = self._resolve(repo, name, spec)
                held = names.review_ref(spec.value)
            else:
                v = self._version_arg(repo, name, spec.value)
                r = self._resolve(repo, name, str(v))
                held = v.branch
            if r.released:
                raise RuleViolation(
                    [
                        f"{policy.released(r.version)}: approvals gate promotions, and a release is "
                        "promoted no further"
                    ]
                )
            if expect is not None and repo.expand(expect) != r.tip:
                raise ConcurrentUpdate(
                    f"{name}@{spec} is at revision {r.tip[:10]}, not {expect[:10]}: look at the new "
                    "revision before approving it",
                    current=r.tip,
                )
            who = actor.person()
            mine = [
                a for a in history.approvals(repo, r.tip) if (a.by.name, a.by.email) == (who.name, who.email)
            ]
            if mine:
                return self._approval(repo, r.version, r.tip, mine[0].by)
            line = history.approval_line(str(r.version), who, text)
            message = f"Approve {r.version} ({r.tip[:10]})\n"
            for _attempt in range(5):
                # the notes tip the text was read at must be the one the new note
                # replaces, or an approval that landed in between would be lost
                before = repo.ref(names.NOTES_APPROVALS_REF)
                old = repo.note(names.NOTES_APPROVALS_REF, r.tip) or ""
                note = old + ("" if not old or old.endswith("\n") else "\n") + line + "\n"
                update = repo.stage_note(names.NOTES_APPROVALS_REF, r.tip, note, who, message)
                if update.old == before:
                    break
                repo.discard()
            else:
                raise ConcurrentUpdate(
                    f"other approvals of {name}@{spec} kept landing while yours was written: approve again"
                )
            try:
                self._apply(
                    repo, name, [update], actor, "promptgit: approve", read={held: r.tip}, library=True
                )
            except ConcurrentUpdate:
                now = repo.ref(held)
                if now != r.tip:
                    raise ConcurrentUpdate(
                        f"{name}@{spec} moved while you approved it (it is now at {_short(now)}): look "
                        "at the new revision, then approve again",
                        current=now,
                    ) from None
                continue  # another approval landed first: append to it
            return self._approval(repo, r.version, r.tip, who)
        raise ConcurrentUpdate(
            f"could not record the approval of {name}@{spec}: the notes kept changing; approve again"
        )

    def _approval(self, repo: Repo, v: Version, revision: str, who: Person) -> ApprovalInfo:
        """One recorded approval of `revision`, with whether it counts and why not."""
        mine = next(a for a in history.approvals(repo, revision) if a.by == who)
        why = policy.standing(repo, revision).why_not(mine, revision, v)
        return ApprovalInfo(revision, str(v), who, mine.comment, not why, why)

    def install_hooks(self, prompt_names: Sequence[str] = ()) -> builtins.list[str]:
        """(Re)install the git hooks and the safety config into prompts (default: all)."""
        done = []
        for name in prompt_names or self.names():
            repo = self._open(name)
            repo.configure(REPO_CONFIG)
            hooks.install(repo.path)
            done.append(name)
        return done

    def finish_releases(self, name: str, *, actor: Actor) -> builtins.list[str]:
        """Complete a release that a crash or a non-atomic push left half-landed.

        A release is one transaction (tag, prod, branch gone), but libgit2 and a
        push without --atomic apply refs one by one. Whatever part landed, the
        rest is finished here; returns the version it finished, if any.
        """
        return self._finish_releases(self._open(name), name, actor)

    def _recover(self, repo: Repo, name: str, actor: Actor) -> None:
        """Before a write: finish what a writer killed midway left. Cheap unless one
        was: a dead writer leaves its claim (locks.claim) or its push state behind.
        Then drafts dev never recorded get their `create` deployment, stages left
        behind a draft's tip follow it (a rollback's restore stays), and the dead
        writer's claims and ref locks go. A half-landed release is always checked."""
        path = Path(repo.path)
        dead = locks.dead(path)
        if dead:
            system = Actor(actor.name, actor.email, "admin")  # finishing what was authorized
            for v, (_tip, released) in sorted(history.all_versions(repo).items()):
                if not released:
                    self.follow(name, v, actor=system, keep_restored=True)
            locks.reap(path, dead)
        self._finish_releases(repo, name, actor)

    def _finish_releases(self, repo: Repo, name: str, actor: Actor) -> builtins.list[str]:
        """Finish the release prod's tip records, if part of it is missing.

        Checking prod's tip suffices: every operation that moves prod, and
        post-receive after a push to it, runs this first. A few ref reads.
        """
        prod = history.current(repo, "prod")
        if prod is None or prod.action != "promote":
            return []
        v = prod.version
        tag_sha, branch = repo.ref(v.tag), repo.ref(v.branch)
        updates = []
        if tag_sha is None and branch in (None, prod.revision):  # the tag never landed
            sha = repo.stage_tag(str(v), prod.revision, f"Release {v}\n", actor.person())
            updates.append(RefUpdate(v.tag, None, sha))
        tag = repo.tag(tag_sha) if tag_sha else None
        if branch is not None and (updates or (tag is not None and repo.is_ancestor(branch, tag.target))):
            # the branch outlived its release (at its tip, or at an older revision a cut-short
            # deletion of its packed copy left)
            updates.append(RefUpdate(v.branch, branch, None))
        if not updates:
            return []
        system = Actor(actor.name, actor.email, "admin")  # the release itself was authorized
        read = {"refs/heads/prod": prod.sha}
        self._apply(repo, name, updates, system, "promptgit: finish release", read=read)
        return [str(v)]


def _stage_tips(repo: Repo) -> dict[str, str | None]:
    """The tips of the stages an edit may update (prod is never updated in place)."""
    return {f"refs/heads/{s}": repo.ref(f"refs/heads/{s}") for s in names.STAGES if s != "prod"}


def _encode(files: Files) -> dict[str, bytes]:
    if content.PROMPT_FILE not in files and content.TESTS_FILE not in files:
        raise InvalidInput("nothing to save: give prompt.yaml (and optionally tests.yaml)")
    return {k: v.encode("utf-8") for k, v in files.items()}


def _message(message: str, v: Version) -> str:
    text = message.strip() or f"Edit {v}"
    return text + "\n"


def _short(sha: str | None) -> str:
    return sha[:10] if sha else "absent"


# A write that fails because its prompt moved says where it went (whereabouts.py).
notice(Operations, ("edit", "new_version", "promote", "rollback", "delete", "test", "follow", "record_push",
                    "finish_releases", "review", "approve"), False)  # fmt: skip
