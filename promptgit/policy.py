"""The rules, in one place: is this set of ref updates allowed, and what may a
role do to each version now?

`check(repo, updates, role)` is a pure function of the repository and the
proposed `(ref, old, new)` updates. The library calls it (under the ref locks)
before every transaction; the pre-receive hook calls it for every push. So a
push can do exactly what the CLI can, and nothing more.

`actions(state, role)` answers, from a prompt's current state, which actions
each version allows and why not, with the same reasons `check` gives: the web
page's buttons and the API's `actions` come from it, so no interface decides a
rule itself.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import content, history, names
from ._git import Commit, Person, RefUpdate, Repo
from .errors import InvalidContent, InvalidName
from .limits import MAX_NOTES, MAX_REVIEWS
from .names import ROLES, Version

_RANK = {r: i for i, r in enumerate(ROLES)}


@dataclass(frozen=True)
class Violation:
    ref: str
    message: str
    kind: str = "rule"  # "rule", "invalid" (content) or "forbidden" (role)

    def __str__(self) -> str:
        return self.message


def allows(role: str, needed: str) -> bool:
    return _RANK.get(role, -1) >= _RANK[needed]


# --- reasons: one wording for the policy's refusals and the actions' answers ----------


def role_needed(action: str, needed: str, role: str) -> str:
    return f"{action} needs role '{needed}' (you have '{role}')"


def released(v: object) -> str:
    return f"{v} is released and immutable"


def current_dev(v: object) -> str:
    return f"{v} is the current DEV version"


def been_in_tst(v: object) -> str:
    return f"{v} has been in TST and can no longer be deleted"


def name_problem(repo: Repo, label: str, prompt: str) -> str | None:
    """Why `label` cannot name a new version of the prompt, or None."""
    from .errors import InvalidName

    try:
        names.check_version_name(label)
    except InvalidName as e:
        return str(e)
    taken = history.named(repo, label)
    if taken is not None:
        return f"prompt '{prompt}' already has a version named {label!r} ({taken}): names are unique"
    return None


# What each action needs, and how a refusal names it.
NEEDS = {
    "edit": ("editor", "changing a draft"),
    "test": ("editor", "recording a test run"),
    "promote:tst": ("editor", "promoting to TST"),
    "promote:prod": ("releaser", "promoting to PROD"),
    "new": ("editor", "creating a version"),
    "delete": ("editor", "changing a draft"),
    "rollback": ("editor", "rolling back dev or tst"),  # e.g. to abandon the current DEV draft
    "rollback:prod": ("releaser", "rolling back prod"),
    "release": ("releaser", "releasing"),
    "update": ("editor", "updating a stage"),
    "notes": ("editor", "writing notes"),
    "deprecate": ("releaser", "deprecating a release"),
    "archive": ("releaser", "archiving a prompt"),
    "restore": ("releaser", "restoring a prompt"),
    "rename": ("admin", "renaming a prompt"),
    "delete-prompt": ("admin", "deleting a prompt"),
    "review": ("editor", "pushing a review branch"),
    "approve": ("editor", "approving a revision"),
}


def deletable_drafts(repo: Repo) -> list[Version]:
    """DEV drafts that `delete` would take: not current in dev, never in TST."""
    dev = history.current(repo, "dev")
    in_tst = history.versions_in_log(repo, "tst")
    return [
        v
        for v, (_tip, released) in sorted(history.all_versions(repo).items())
        if not released and v not in in_tst and (dev is None or dev.version != v)
    ]


def draft_limit_problem(repo: Repo, max_drafts: int | None, prompt: str) -> str | None:
    """Why one more DEV draft would break retention.max_drafts, or None."""
    if max_drafts is None:
        return None
    in_tst = history.versions_in_log(repo, "tst")
    drafts = [
        v for v, (_t, released) in history.all_versions(repo).items() if not released and v not in in_tst
    ]
    if len(drafts) < max_drafts:
        return None
    spare = ", ".join(str(v) for v in deletable_drafts(repo)) or "none yet"
    return (
        f"prompt '{prompt}' has {len(drafts)} DEV drafts, the most promptgit.yaml allows "
        f"(retention.max_drafts: {max_drafts}): delete one first ('promptgit delete {prompt}@vX.Y'; "
        f"deletable: {spare})"
    )


def refusal(key: str, role: str) -> str:
    """Why `role` may not do action `key` (a NEEDS key); '' when it may."""
    needed, what = NEEDS[key]
    return "" if allows(role, needed) else role_needed(what, needed, role)


def require(key: str, actor_name: str, role: str) -> None:
    """Raise Forbidden, naming the role needed, unless `role` may do action `key`."""
    from .errors import Forbidden

    why = refusal(key, role)
    if why:
        raise Forbidden(f"{actor_name}: {why}")


@dataclass(frozen=True)
class Standing:
    """A revision's approvals as the gate counts them: `counted` are from distinct
    people who authored none of its version's revisions up to it; `by_authors` do not
    count. `authors` are those people (history.authors). When some revision of the
    version was put on the draft by nobody the audit log knows (`unaccounted`), its
    author might be any approver, so no approval counts: the gate fails closed."""

    counted: tuple[history.Approval, ...]
    by_authors: tuple[history.Approval, ...]
    authors: tuple[Person, ...]
    unaccounted: tuple[str, ...] = ()

    def why_not(self, approval: history.Approval, tip: str, version: object) -> str:
        """Why `approval` does not count toward the gate for `tip` ('' when it does):
        the one place these reasons are written."""
        if approval.revision != tip:
            return (
                f"approves {approval.revision[:10]}, an earlier revision: an edit after an approval "
                "needs a new one"
            )
        if approval in self.counted:
            return ""
        if self.unaccounted:
            return unaccounted(self.unaccounted)
        if approval in self.by_authors:
            return f"{approval.by.name} authored a revision of {version}: an author's approval does not count"
        return f"{approval.by.name} approved this revision before: each person counts once"


def unaccounted(shas: Sequence[str]) -> str:
    return (
        f"no audit entry says who put revision {shas[0][:10]} on the draft, so its author is unknown "
        "and no approval counts: start a new version from it ('promptgit new-version NAME --from "
        "VERSION'), whose revisions promptgit records, and approve that"
    )


def standing(repo: Repo, revision: str) -> Standing:
    recorded = history.approvals(repo, revision)
    if not recorded:  # the audit walk, only when needed
        return Standing((), (), ())
    found = history.authors(repo, revision)
    counted: list[history.Approval] = []
    by_authors: list[history.Approval] = []
    for a in recorded:
        if any(history.same_person(a.by, p) for p in found.people):
            by_authors.append(a)
        elif not found.unaccounted and not any(history.same_person(a.by, c.by) for c in counted):
            counted.append(a)
    return Standing(tuple(counted), tuple(by_authors), tuple(found.people), tuple(found.unaccounted))


def approvals_needed(stage: str, need: int, have: int, version: object, revision: str, prompt: str) -> str:
    plural = "s" if need != 1 else ""
    return (
        f"{stage} requires {need} approval{plural} of revision {revision[:10]} of {version}, and it has "
        f"{have}: {need - have} more needed, from someone who authored none of {version}'s revisions "
        f"('promptgit approve {prompt}@{version}'; an author's own approval does not count)"
    )


def approval_problem(
    repo: Repo, stage: str, required: Mapping[str, int], version: Version, revision: str, prompt: str
) -> str | None:
    """Why `revision` of `version` may not enter `stage` yet (require_approvals), or None."""
    need = required.get(stage, 0)
    if need <= 0:
        return None
    found = standing(repo, revision)
    if len(found.counted) >= need:
        return None
    why = approvals_needed(stage, need, len(found.counted), version, revision, prompt)
    if found.unaccounted:
        why += "; " + unaccounted(found.unaccounted)
    elif found.by_authors:
        who = ", ".join(sorted({a.by.name for a in found.by_authors}))
        why += f"; {who} approved it but authored it, which does not count"
    earlier = sum(len(history.approvals(repo, sha)) for sha in history.revision_shas(repo, revision)[1:])
    if earlier:
        why += (
            f"; {earlier} approval{'s' if earlier != 1 else ''} of earlier revisions of {version} "
            "do not carry over: an edit after an approval needs a new one"
        )
    return why


def deprecated(v: object, reason: str) -> str:
    return f"{v} is deprecated ({reason})"


def deprecation_problem(repo: Repo, v: Version, *, undo: bool) -> str | None:
    """Why `v` cannot be deprecated (or, with `undo`, undeprecated) now, or None."""
    gone = history.deprecated(repo)
    if undo:
        return None if v in gone else f"{v} is not deprecated"
    if history.version_tip(repo, v) is None:
        return f"there is no {v}"
    if not history.version_tip(repo, v)[1]:  # type: ignore[index]
        return f"{v} is a draft: only releases are deprecated; delete a draft instead"
    if v in gone:
        return f"{deprecated(v, gone[v])} already"
    now = history.current(repo, "prod")
    if now is not None and now.version == v:
        return f"prod serves {v} now: roll prod forward (release a newer version) or back first"
    return None


class _Check:
    """One evaluation: the repository, the whole push, and what it found."""

    def __init__(
        self,
        repo: Repo,
        updates: Sequence[RefUpdate],
        role: str,
        name: str,
        require_tests: Collection[str],
        max_drafts: int | None = None,
        require_approvals: Mapping[str, int] | None = None,
    ):
        self.max_drafts = max_drafts
        self.require_approvals = require_approvals or {}
        self.repo = repo
        self.updates = {u.ref: u for u in updates}
        self.role = role
        self.name = name
        self.require_tests = require_tests
        self.found: list[Violation] = []
        self._after: dict[str, set[str]] = {}  # see refs_after

    def bad(self, ref: str, message: str, kind: str = "rule") -> None:
        self.found.append(Violation(ref, message, kind))

    def need(self, ref: str, key: str) -> None:
        why = refusal(key, self.role)
        if why:
            self.bad(ref, why, "forbidden")

    def after(self, ref: str) -> str | None:
        u = self.updates.get(ref)
        return u.new if u is not None else self.repo.ref(ref)

    def released(self, v: Version) -> bool:
        return self.repo.ref(v.tag) is not None

    def tip_after(self, v: Version) -> str | None:
        """A version's tip once the push has landed."""
        tag = self.after(v.tag)
        if tag is not None:
            t = self.repo.tag(tag)
            return t.target if t is not None else None
        return self.after(v.branch)

    # --- per kind of ref -------------------------------------------------

    def forward_only(self, u: RefUpdate) -> None:
        """The second lock: outside review branches, a ref that stays only moves forward.
        (git's receive.denyNonFastForwards is off, so that review branches can be
        force-pushed; each kind's own rule says it first, this catches what none says.)"""
        assert u.old is not None and u.new is not None
        if any(v.ref == u.ref for v in self.found):
            return
        ahead = (
            self.repo.exists(u.old)
            and self.repo.kind(u.old) == "commit"
            and self.repo.kind(u.new) == "commit"
            and self.repo.is_ancestor(u.old, u.new)
        )
        if not ahead:
            self.bad(
                u.ref,
                f"{u.ref} {u.old[:10]} -> {u.new[:10]} is not a fast-forward: only review branches "
                "(refs/heads/review/*) may be force-pushed or rewritten; fetch, rebase and push again",
            )

    def other(self, u: RefUpdate) -> None:
        short = u.ref.rsplit("/", 1)[-1]
        if short in names.STAGES:
            self.bad(u.ref, f"'{short}' is a stage; stages live only at refs/heads/{short}")
        elif u.ref.startswith(names.NOTES_TESTS_REF):
            self.bad(u.ref, "test runs are recorded by 'promptgit test' only; they cannot be pushed")
        elif u.ref.startswith(names.NOTES_APPROVALS_REF):
            self.bad(
                u.ref,
                f"approvals are recorded by 'promptgit approve {self.name}@vX.Y' (or the server) only; "
                "they cannot be pushed, rewritten or deleted",
            )
        elif u.ref.startswith(names.RECORDS):
            self.bad(u.ref, "promptgit alone writes its records (the audit log); they cannot be pushed")
        else:
            self.bad(
                u.ref,
                "not a promptgit ref: push only the dev, tst and prod branches, "
                "vX.Y branches (drafts), review/BRANCH branches (reviews), vX.Y tags (releases) "
                "or refs/notes/*",
            )

    def tag(self, u: RefUpdate, v: Version) -> None:
        if u.old is not None:
            self.bad(u.ref, f"{v} is a release: its tag never moves and is never deleted")
            return
        self.need(u.ref, "release")
        t = self.repo.tag(u.new) if u.new else None
        if t is None or t.target_type != "commit" or t.name != str(v):
            self.bad(u.ref, f"must be an annotated tag named {v} on a revision (git tag -a {v})")
            return
        fix = f"release with 'promptgit promote {self.name}@{v} --to prod'"
        branch_tip = self.repo.ref(v.branch)
        prod_before = self.repo.ref("refs/heads/prod")
        if branch_tip is None:
            # No draft to release: only finishing a release that prod's log already
            # holds (a crash or a non-atomic push left the tag out) may create the tag.
            if not history.released_by_prod(self.repo, v, t.target, prod_before):
                self.bad(u.ref, f"{v} is not a draft, so it cannot be released; {fix}")
            return
        if t.target != branch_tip:
            self.bad(u.ref, f"the tag must point at the tip of {v} ({branch_tip[:10]})")
        if self.after(v.branch) is not None:
            self.bad(u.ref, f"a release deletes branch {v} in the same push (git push --atomic)")
        if not history.released_by_prod(self.repo, v, t.target, self.after("refs/heads/prod")):
            self.bad(u.ref, f"a tag is created only with the prod deployment that releases it; {fix}")

    def draft(self, u: RefUpdate, v: Version) -> None:
        releasing = self.updates.get(v.tag)
        if self.released(v):
            tag = self.repo.tag(self.repo.ref(v.tag) or "")
            if u.new is None and tag is not None and u.old and self.repo.is_ancestor(u.old, tag.target):
                return  # finishing a half-landed release: the tag holds the tip (or what followed)
            self.bad(
                u.ref,
                f"{released(v)}: make a new version with 'promptgit new-version {self.name} --from {v}'",
            )
            return
        pending = history.half_released(self.repo)
        if pending is not None and pending[0] == v:
            if u.new is None and u.old == pending[1]:
                return  # finishing the release: the branch goes
            self.bad(
                u.ref,
                f"{released(v)}: prod serves it and its release is being finished; push again in "
                f"a moment, or make a new version with 'promptgit new-version {self.name} --from {v}'",
            )
            return
        self.need(u.ref, "edit")
        if u.new is None:
            if releasing is None:
                self.delete_draft(u, v)
        elif u.old is None:
            self.new_draft(u, v)
        else:
            self.walk_revisions(u.ref, u.new, stop=u.old, version=v)

    def delete_draft(self, u: RefUpdate, v: Version) -> None:
        if not history.has_served(self.repo, "dev", v):
            self.bad(
                u.ref,
                f"{v} is not in dev's log yet, so deleting it would not retire its number: "
                "a push that created it is still being recorded; try again in a moment",
            )
            return
        dev = self.after("refs/heads/dev")
        serving = history.current(self.repo, "dev", dev) if dev else None
        if serving is not None and serving.version == v:
            other = next(
                (
                    d.version
                    for d in history.stage_log(self.repo, "dev", dev)
                    if d.version != v and history.version_tip(self.repo, d.version) is not None
                ),
                None,
            )
            fix = (
                f"make another version current in dev first: 'promptgit rollback {self.name} "
                f"--stage dev --to {other}', or 'promptgit new-version {self.name}'"
                if other
                else f"create another version first: 'promptgit new-version {self.name}'"
            )
            self.bad(u.ref, f"{current_dev(v)}: {fix}")
        if history.has_served(self.repo, "tst", v):
            self.bad(u.ref, been_in_tst(v))

    def new_draft(self, u: RefUpdate, v: Version) -> None:
        assert u.new is not None
        over = draft_limit_problem(self.repo, self.max_drafts, self.name)
        if over:
            self.bad(u.ref, over)
            return
        if history.has_served(self.repo, "dev", v):
            self.bad(u.ref, f"{v} was used before and is retired: version numbers are never reused")
            return
        creation = self.walk_revisions(u.ref, u.new, stop=None, version=v)
        if creation is None:
            return
        c = self.repo.commit(creation)
        fix = (
            f"begin the branch with a creation commit: git commit --allow-empty -m 'Create {v}' "
            f"--trailer 'Promptgit-Created: {v}' --trailer 'Promptgit-From: vX.Y'"
        )
        if history.is_creation(c) != v:
            self.bad(u.ref, f"commit {creation[:10]} creates another version; {fix}")
            return
        label = names.trailers(c.message).get("Promptgit-Name")
        problem = name_problem(self.repo, label, self.name) if label is not None else None
        if len(names.description_of(c.message)) > names.MAX_DESCRIPTION:
            problem = f"its description is over {names.MAX_DESCRIPTION:,} characters"
        if problem:
            self.bad(u.ref, f"creation commit {creation[:10]}: {problem}")
            return
        source_from = names.trailers(c.message).get("Promptgit-From")
        if not c.parents:
            if v != names.FIRST or self.repo.ref("refs/heads/dev") is not None:
                self.bad(u.ref, f"only a new prompt starts without a source; {fix}")
            return
        parent = self.repo.commit(c.parents[0])
        source = history.version_of(self.repo, parent.sha)
        source_tip = self.tip_after(source) if source else None
        if len(c.parents) != 1 or source is None or source_tip is None:
            self.bad(u.ref, f"the creation commit's parent must be a revision of a version; {fix}")
        elif not self.repo.is_ancestor(parent.sha, source_tip):
            self.bad(u.ref, f"the creation commit's parent is not a revision of {source}; {fix}")
        elif c.tree != parent.tree:
            self.bad(u.ref, "the creation commit must keep its source's content (use --allow-empty)")
        elif source_from is not None and source_from != str(source):
            self.bad(u.ref, f"Promptgit-From says {source_from} but the parent is from {source}")

    def walk_revisions(self, ref: str, new: str, stop: str | None, version: Version) -> str | None:
        """Check each revision from `new` back to `stop` (exclusive); with no stop,
        back to the creation commit, whose sha is returned."""
        if self.repo.kind(new) != "commit":
            self.bad(
                ref, f"{new[:10]} is a {self.repo.kind(new)}, not a commit: a draft is a line of commits"
            )
            return None
        for commit in self.repo.first_parents(new):
            if commit.sha == stop:
                return None
            t = names.trailers(commit.message)
            creation = history.is_creation(commit) is not None
            extra = set(t) - names.CREATION_TRAILERS
            if creation and extra:
                self.bad(
                    ref,
                    f"creation commit {commit.sha[:10]} also carries {', '.join(sorted(extra))}: "
                    "a creation commit names only its version (Promptgit-Created, Promptgit-From, "
                    "Promptgit-Name)",
                )
                return None
            if creation and stop is not None and not self.repo.is_ancestor(stop, commit.sha):
                break  # walked past the start of this version: old is not an ancestor
            if not self.check_revision(ref, commit, version, trailers_ok=creation and stop is None):
                return None
            if creation:
                return commit.sha
        if stop is not None:
            self.bad(ref, f"not a fast-forward of {version}: fetch, rebase and push again")
        else:
            self.bad(ref, f"a new draft must begin with a creation commit for {version}")
        return None

    def check_revision(self, ref: str, commit: Commit, version: Version, trailers_ok: bool = False) -> bool:
        """One pushed revision of `version` (on its draft or a review branch): no
        `Promptgit-*` trailer (unless `trailers_ok`: a new draft's creation commit), no
        merge, regular files only, valid content. False, once reported, if it fails."""
        t = names.trailers(commit.message)
        if t and not trailers_ok:
            self.bad(
                ref,
                f"commit {commit.sha[:10]} carries a {next(iter(t))} trailer: only promptgit "
                "writes those; remove it (git commit --amend) and push again",
            )
            return False
        if len(commit.parents) > 1:
            self.bad(
                ref,
                f"commit {commit.sha[:10]} is a merge: a version is a line of revisions. To land a "
                f"review branch, rebase it on {version} ('git rebase origin/{version}' on the review "
                f"branch), then fast-forward {version} to it ('git push origin HEAD:{version}'); "
                "for your own work, 'git pull --rebase'",
            )
            return False
        odd = self.repo.irregular(commit.tree)
        if odd:
            file, kind = sorted(odd.items())[0]
            self.bad(
                ref,
                f"commit {commit.sha[:10]}: {file} is a {kind}: commit it as a regular file "
                f"(git rm --cached {file}, copy the content in, git add {file})",
                "invalid",
            )
            return False
        try:
            content.check_files(self.repo.files(commit.tree))
        except InvalidContent as e:
            self.bad(ref, f"commit {commit.sha[:10]}: {e}", "invalid")
            return False
        return True

    def refs_after(self, kind: str, prefix: str) -> set[str]:
        """The prompt's refs of `kind` (names.classify_ref), all under `prefix`, once
        these updates land."""
        if kind not in self._after:
            mine = {r: u for r, u in self.updates.items() if names.classify_ref(r)[0] == kind}
            kept = {r for r in self.repo.refs(prefix) if r not in mine and names.classify_ref(r)[0] == kind}
            self._after[kind] = kept | {r for r, u in mine.items() if u.new is not None}
        return self._after[kind]

    def bounded(self, u: RefUpdate, kind: str, prefix: str, limit: int, what: str, fix: str) -> bool:
        """Whether creating `u` keeps the prompt's refs of `kind` within `limit` (else
        says so): every ref is read by each check and listing."""
        if u.old is not None or u.new is None:
            return True
        after = len(self.refs_after(kind, prefix))
        if after > limit:
            self.bad(
                u.ref, f"{self.name} would have {after} {what}, and a prompt keeps at most {limit}: {fix}"
            )
        return after <= limit

    def notes(self, u: RefUpdate) -> None:
        """A notes ref of the users' own: editors write it, up to MAX_NOTES of them."""
        self.need(u.ref, "notes")
        fix = (
            "write your notes into the ones there are, or delete some first "
            "('git push origin --delete refs/notes/NAME')"
        )
        self.bounded(u, "notes", "refs/notes/", MAX_NOTES, "notes refs", fix)

    def review(self, u: RefUpdate, branch: str) -> None:
        """A review branch: editors push, force-push and delete it freely; every
        revision it adds is checked like a draft's, so it can land on its draft by
        a fast-forward. It is never served and never numbered."""
        try:
            names.check_review(branch)
        except InvalidName as e:
            self.bad(u.ref, str(e))
            return
        self.need(u.ref, "review")
        if u.new is None:
            return
        fix = "delete the landed or abandoned ones first ('git push origin --delete review/BRANCH')"
        if not self.bounded(u, "review", names.REVIEW, MAX_REVIEWS, "review branches", fix):
            return
        fix = (
            f"start it from a draft's tip: 'git checkout -b review/{branch} origin/vX.Y', or "
            f"'promptgit review {self.name}@vX.Y {branch}'"
        )
        if self.repo.kind(u.new) != "commit":
            self.bad(u.ref, f"{u.new[:10]} is a {self.repo.kind(u.new)}, not a commit; {fix}")
            return
        base = history.version_of(self.repo, u.new)
        tip = self.tip_after(base) if base is not None else None
        if base is None or tip is None:
            self.bad(
                u.ref,
                f"review/{branch} holds no revision of an existing version (a stage's deployments, "
                f"or history of no version); {fix}",
            )
            return
        if self.repo.ref(base.tag) is not None or self.after(base.tag) is not None:
            self.bad(
                u.ref,
                f"review/{branch} proposes changes to {base}, which {released(base)}: review a "
                f"draft instead ('promptgit new-version {self.name} --from {base}')",
            )
            return
        for commit in self.repo.first_parents(u.new):
            if self.repo.is_ancestor(commit.sha, tip) or (
                u.old is not None and self.repo.exists(u.old) and self.repo.is_ancestor(commit.sha, u.old)
            ):
                return  # the draft's own history, or what the branch held before
            if not self.check_revision(u.ref, commit, base):
                return

    def stage(self, u: RefUpdate, stage: str) -> None:
        fix = "stages move only through 'promptgit promote' and 'promptgit rollback'"
        if u.new is None:
            self.bad(u.ref, f"stages are never deleted; {fix}")
            return
        if self.repo.kind(u.new) != "commit":
            self.bad(u.ref, f"a stage points only at deployment commits; {fix}")
            return
        c = self.repo.commit(u.new)
        plain = "Promptgit-Action" not in names.trailers(c.message)
        if plain and u.old is not None and len(c.parents) == 1 and self.repo.is_ancestor(u.old, u.new):
            self.bad(u.ref, self.not_a_deployment(stage, u.new))  # a commit made on the stage
            return
        expected_parents = 1 if u.old is None else 2
        if len(c.parents) != expected_parents or (u.old is not None and c.parents[0] != u.old):
            self.bad(
                u.ref,
                f"{stage} only grows by one deployment commit on top of its tip "
                f"(no rewind, rewrite or force-push); {fix}",
            )
            return
        d = history.as_deployment(c, stage)
        if d is None or d.revision != c.parents[-1]:
            self.bad(
                u.ref,
                f"{u.new[:10]} is not a well-formed deployment (Promptgit-Action, -Version and "
                f"-Revision trailers, second parent = the revision); "
                + (self.not_a_deployment(stage, u.new) if plain else fix),
            )
            return
        revision = self.repo.commit(d.revision)
        if c.tree != revision.tree:
            self.bad(u.ref, "a deployment's tree must equal its revision's tree")
        getattr(self, f"deploy_{d.action}")(u, d)

    def not_a_deployment(self, stage: str, sha: str) -> str:
        """Why a commit pushed onto a stage is refused, naming the draft to work on."""
        drafts = [
            d.version
            for d in (history.current(self.repo, stage), history.current(self.repo, "dev"))
            if d is not None and self.repo.ref(d.version.branch) is not None
        ]
        where = (
            f"work on the draft {stage} serves, or the current DEV draft: 'git checkout {drafts[0]}', "
            f"commit there and push it ('git push origin {drafts[0]}'); the stages serving it follow"
            if drafts
            else f"start a draft ('promptgit new-version {self.name}'), then 'git fetch', "
            "'git checkout vX.Y', commit there and push it"
        )
        return (
            f"{stage} is a stage: it holds only deployments, and {sha[:10]} is a commit, not one. "
            f"To change the prompt, {where}; stages move only through 'promptgit promote' and "
            "'promptgit rollback'"
        )

    def deploy_create(self, u: RefUpdate, d: history.Deployment) -> None:
        self.need(u.ref, "new")
        if d.stage != "dev":
            self.bad(u.ref, "a create deployment goes to dev only")
        elif self.tip_after(d.version) != d.revision or self.released(d.version):
            self.bad(u.ref, f"a create deployment deploys the tip of draft {d.version}")
        elif u.old is not None and history.has_served(self.repo, "dev", d.version, u.old):
            self.bad(u.ref, f"{d.version} was created before; a version is created once")

    def deploy_promote(self, u: RefUpdate, d: history.Deployment) -> None:
        v = d.version
        if d.stage == "dev":
            self.bad(u.ref, "nothing is promoted into dev; create or edit a draft instead")
            return
        if d.stage == "tst":
            self.need(u.ref, "promote:tst")
            self.gate(u, d)
            self.approved(u, d)
            if self.released(v):
                self.bad(u.ref, f"{v} is a release: a release is never promoted into tst")
            elif self.tip_after(v) != d.revision:
                self.bad(u.ref, f"a promotion deploys the tip of {v}")
            return
        self.need(u.ref, "promote:prod")
        self.gate(u, d)
        self.approved(u, d)
        if self.released(v):
            self.bad(
                u.ref,
                f"{v} is already released; to serve it again, roll back: "
                f"'promptgit rollback {self.name} --to {v}'",
            )
            return
        tag = self.updates.get(v.tag)
        if tag is None or tag.old is not None or self.tip_after(v) != d.revision:
            self.bad(
                u.ref,
                f"a release creates tag {v} on the deployed revision in the same push; "
                f"use 'promptgit promote {self.name}@{v} --to prod'",
            )
        if not history.has_served_revision(self.repo, "tst", d.revision):
            self.bad(
                u.ref,
                f"TST never served revision {d.revision[:10]} of {v}: promote it to TST first "
                f"('promptgit promote {self.name}@{v} --to tst')",
            )

    def gate(self, u: RefUpdate, d: history.Deployment) -> None:
        """require_tests: promoting needs a passing run on exactly this revision,
        in the environment of the stage before."""
        if d.stage not in self.require_tests:
            return
        before = "dev" if d.stage == "tst" else "tst"
        if not history.passed_in(history.test_runs(self.repo, d.revision), before):
            self.bad(
                u.ref,
                f"{d.stage} requires a passing test run of revision {d.revision[:10]} in the "
                f"{before} environment, and there is none: run "
                f"'promptgit test {self.name}@{d.version} --env {before}'",
            )

    def approved(self, u: RefUpdate, d: history.Deployment) -> None:
        """require_approvals: a revision enters a gated stage only with that many
        approvals of exactly it, from people who authored none of its revisions."""
        problem = approval_problem(
            self.repo, d.stage, self.require_approvals, d.version, d.revision, self.name
        )
        if problem:
            self.bad(u.ref, problem)

    def deploy_update(self, u: RefUpdate, d: history.Deployment) -> None:
        self.need(u.ref, "update")
        self.approved(u, d)
        v = d.version
        serving = history.current(self.repo, d.stage, u.old) if u.old else None
        if d.stage == "prod":
            self.bad(u.ref, "prod is never updated in place: release a new version")
        elif serving is None or serving.version != v:
            self.bad(u.ref, f"an update deploys the version {d.stage} already serves, not {v}")
        elif self.released(v):
            self.bad(u.ref, f"{v} is a release: releases are never updated")
        elif self.tip_after(v) != d.revision:
            self.bad(u.ref, f"an update deploys the tip of {v}")

    def deploy_rollback(self, u: RefUpdate, d: history.Deployment) -> None:
        self.need(u.ref, "rollback:prod" if d.stage == "prod" else "rollback")
        v = d.version
        if self.tip_after(v) is None:
            self.bad(u.ref, f"{v} no longer exists; roll back to a version that does")
            return
        if d.stage == "prod" and not self.released(v):
            self.bad(u.ref, f"prod rolls back only to a release, and {v} is a draft")
            return
        gone = history.deprecated(self.repo)
        if v in gone:
            self.bad(
                u.ref, f"{deprecated(v, gone[v])}: roll back to another version, or undeprecate it first"
            )
            return
        last = history.last_served(self.repo, d.stage, v, u.old) if u.old else None
        if last is None:
            self.bad(u.ref, f"{d.stage} never served {v}, so it cannot roll back to it")
        elif last.revision != d.revision:
            self.bad(
                u.ref,
                f"a rollback restores the revision {d.stage} last served for {v} "
                f"({last.revision[:10]}), not {d.revision[:10]}",
            )


def check(
    repo: Repo,
    updates: Sequence[RefUpdate],
    role: str,
    name: str = "NAME",
    *,
    require_tests: Collection[str] = (),
    library: bool = False,
    max_drafts: int | None = None,
    require_approvals: Mapping[str, int] | None = None,
) -> list[Violation]:
    """Every rule the proposed updates break, one violation per problem (empty: allowed).

    `repo` must see the proposed objects (staged by the library, or the push's
    quarantine in a hook). `name` only makes the suggested commands concrete.
    `require_tests` are the stages whose promotion needs a passing test run
    (promptgit.yaml), and `require_approvals` how many approvals a revision needs to
    enter each stage. `library` is True only for promptgit's own writes: it alone
    may record test runs and approvals.
    """
    c = _Check(repo, updates, role, name, require_tests, max_drafts, require_approvals)
    for u in updates:
        if u.old == u.new:
            continue
        kind, what = names.classify_ref(u.ref)
        if kind == "stage":
            c.stage(u, str(what))
        elif kind == "review":
            c.review(u, str(what))
        elif kind == "draft":
            assert isinstance(what, Version)
            c.draft(u, what)
        elif kind == "tag":
            assert isinstance(what, Version)
            c.tag(u, what)
        elif kind == "notes":
            c.notes(u)
        elif kind == "tests" and library:
            c.need(u.ref, "test")
        elif kind == "approvals" and library:
            c.need(u.ref, "approve")
        elif kind == "record" and library:
            pass  # promptgit's own append to a record it alone writes
        else:
            c.other(u)
        if kind != "review" and u.old is not None and u.new is not None:
            c.forward_only(u)
    return c.found


# --- what a role may do now -----------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One action on one version: `applies` False means it makes no sense for this
    version at all (an interface hides it); else `allowed`, or `why` not."""

    allowed: bool
    why: str = ""
    to: str | None = None  # promote: the stage it would deploy to
    applies: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "why": self.why, "to": self.to}


@dataclass(frozen=True)
class VersionState:
    """What the rules need to know of one version."""

    version: str
    stage: str  # DEV, TST or PROD
    revision: str  # its tip
    gates: Mapping[str, str] = field(default_factory=dict)  # stage -> why its tip may not enter it yet


@dataclass(frozen=True)
class PromptState:
    """A prompt as the rules see it: its versions, what each stage serves now as
    (version, revision), and which versions each stage has ever deployed."""

    versions: Sequence[VersionState]
    serving: Mapping[str, tuple[str, str] | None]
    served: Mapping[str, Collection[str]] = field(default_factory=dict)
    deprecated: Mapping[str, str] = field(default_factory=dict)  # version -> reason


@dataclass(frozen=True)
class Actions:
    """Per version: edit, test, promote, new, delete. Per stage: the versions it may
    roll back to, each with whether this role may do it."""

    versions: Mapping[str, Mapping[str, Action]]
    rollback: Mapping[str, Mapping[str, Action]]

    def to_json(self) -> dict[str, Any]:
        return {
            "versions": {
                v: {k: a.to_json() for k, a in acts.items() if a.applies} for v, acts in self.versions.items()
            },
            "rollback": {s: {v: a.to_json() for v, a in acts.items()} for s, acts in self.rollback.items()},
        }


def _by_role(key: str, role: str, to: str | None = None) -> Action:
    why = refusal(key, role)
    return Action(not why, why, to)


def version_actions(state: PromptState, v: VersionState, role: str) -> dict[str, Action]:
    """What `role` may do to version `v` now, and why not."""
    dev = state.serving.get("dev")
    tst = state.serving.get("tst")
    if v.stage == "PROD":
        edit = Action(False, released(v.version))
        promote = Action(False, f"{v.version} is already released", applies=False)
        delete = Action(False, released(v.version))
    elif v.stage == "TST":
        edit = _by_role("edit", role)
        if tst == (v.version, v.revision):
            promote = _by_role("promote:prod", role, "prod")
        else:  # prod takes only a revision tst has served: its tip goes to tst first
            promote = _by_role("promote:tst", role, "tst")
        delete = Action(False, been_in_tst(v.version))
    else:
        edit = _by_role("edit", role)
        promote = _by_role("promote:tst", role, "tst")
        is_current = dev is not None and dev[0] == v.version
        delete = Action(False, current_dev(v.version)) if is_current else _by_role("delete", role)
    gate = v.gates.get(promote.to or "")
    if promote.allowed and gate:
        promote = Action(False, gate, promote.to)
    approve = (
        Action(False, released(v.version), applies=False) if v.stage == "PROD" else _by_role("approve", role)
    )
    return {
        "edit": edit,
        "test": _by_role("test", role),
        "promote": promote,
        "approve": approve,
        "new": _by_role("new", role),
        "delete": delete,
    }


def rollback_targets(state: PromptState, role: str) -> dict[str, dict[str, Action]]:
    """Per stage, the versions it served before and may serve again: they still
    exist, and for prod they are releases; the one it serves now is not offered."""
    existing = {v.version: v for v in state.versions}
    out: dict[str, dict[str, Action]] = {}
    for stage, served in state.served.items():
        now = state.serving.get(stage)
        out[stage] = {
            version: Action(False, deprecated(version, state.deprecated[version]))
            if version in state.deprecated
            else _by_role("rollback:prod" if stage == "prod" else "rollback", role)
            for version in sorted(served, key=_version_key)
            if version in existing
            and (now is None or now[0] != version)
            and (stage != "prod" or existing[version].stage == "PROD")
        }
    return out


def actions(state: PromptState, role: str) -> Actions:
    return Actions(
        {v.version: version_actions(state, v, role) for v in state.versions},
        rollback_targets(state, role),
    )


def refuse_all(found: Actions, why: str) -> Actions:
    """`found` with every action refused for `why` (a read-only store: nothing changes here)."""

    def no(a: Action) -> Action:
        return replace(a, allowed=False, why=why) if a.applies else a

    return Actions(
        {v: {k: no(a) for k, a in acts.items()} for v, acts in found.versions.items()},
        {s: {v: no(a) for v, a in acts.items()} for s, acts in found.rollback.items()},
    )


def _version_key(text: str) -> tuple[int, ...]:
    v = Version.maybe(text)
    return (v.major, v.minor) if v else (-1,)
