"""The store and its reads: opening prompts, resolving NAME@REF, and every
question a user asks (list, get, show, versions, log, diff, render).

Reads never write: they start at ref tips and walk only as far as needed.
"""

from __future__ import annotations

import bisect
import builtins
import hashlib
import itertools
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from . import changes, config, content, history, names
from ._git import Commit, Repo
from .errors import (
    DamagedRepository,
    InvalidInput,
    PromptNotFound,
    ReadOnlyStore,
    RefNotFound,
    RenderError,
    StoreNotFound,
    reading,
)
from .facts import Facts
from .history import Deployment
from .model import (
    ApprovalInfo,
    Approvals,
    DeploymentInfo,
    Diff,
    DiffSide,
    Prompt,
    PromptDetails,
    PromptSummary,
    RenderedCase,
    RevisionInfo,
    Shown,
    StageRef,
    VersionDetail,
    VersionInfo,
)
from .names import STAGES, RefSpec, Version
from .ref_files import read_refs, refs_stamp

if TYPE_CHECKING:
    from . import policy

CONFIG_FILE = config.FILE
DEFAULT_STORE = "prompts"


def default_path() -> str:
    return os.environ.get("PROMPTGIT_STORE") or DEFAULT_STORE


@dataclass(frozen=True)
class Resolved:
    """A NAME@REF pinned down: the revision, its version, and how it was reached."""

    version: Version
    revision: str
    released: bool
    tip: str
    deployment: Deployment | None = None


SERVED_KEPT = 1024  # prompts `get` keeps ready (one per prompt and stage read lately)


class Reader:
    """A directory of prompt repositories. Thread-safe for reads through `get`."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, index: bool = True, read_only: bool = False
    ) -> None:
        """`index=False`: answer every read by walking git, without the derived-facts
        index (facts.py); the answers are the same. `read_only`: refuse every write
        (a mirror store refuses them anyway)."""
        self.path = Path(path if path is not None else default_path())
        self._facts = Facts(self.path) if index else None
        self.read_only = read_only
        self._local = threading.local()
        self._served: dict[tuple[str, str], tuple[str, Prompt]] = {}
        self._config: tuple[float, config.Config] | None = None

    # --- the store itself ---------------------------------------------------

    @classmethod
    def init(cls, path: str | os.PathLike[str] | None = None) -> Self:
        """Create the store directory and its promptgit.yaml (idempotent)."""
        store = cls(path)
        store.path.mkdir(parents=True, exist_ok=True)
        cfg = store.path / CONFIG_FILE
        if not cfg.exists():
            cfg.write_text(
                "# promptgit store configuration (never served; secrets by env var name only)\nversion: 1\n"
            )
        return store

    @property
    def config(self) -> config.Config:
        """promptgit.yaml, re-read when it changes (a stat per call)."""
        try:
            mtime = (self.path / config.FILE).stat().st_mtime
        except FileNotFoundError:
            return config.Config()
        if self._config is None or self._config[0] != mtime:
            self._config = (mtime, config.load(self.path))
        return self._config[1]

    def check(self) -> None:
        """Raise StoreNotFound unless this directory is a store (has promptgit.yaml)."""
        if not (self.path / CONFIG_FILE).is_file():
            raise StoreNotFound(str(self.path))

    @property
    def primary(self) -> str | None:
        """The URL of the server this store mirrors (promptgit.yaml's `mirror_of`), or None."""
        return self.config.mirror_of

    @property
    def refuses_writes(self) -> bool:
        """Whether no prompt may change here: served read-only, or a mirror. The one
        rule the library, the API and git over HTTP ask (InvalidContent: a broken
        promptgit.yaml, which each surface refuses in its own words)."""
        return self.read_only or self.primary is not None

    def writable(self) -> None:
        """Raise ReadOnlyStore, naming the primary, unless prompts may change here."""
        if self.refuses_writes:
            raise ReadOnlyStore(self.primary)

    def _repo_path(self, name: str) -> Path:
        return self.path / f"{names.check_name(name)}.git"

    def _open(self, name: str) -> Repo:
        """The prompt's repository, one object per thread: a libgit2 repository
        carries per-operation state (the reflog identity, ref transactions)."""
        repos: dict[str, Repo] | None = getattr(self._local, "repos", None)
        if repos is None:
            repos = self._local.repos = {}
        repo = repos.get(name)
        if repo is not None:
            return repo
        path = self._repo_path(name)
        if not (path / "HEAD").is_file():
            self.check()
            if path.is_dir():  # promptgit only ever moves a repository whole, by rename
                raise DamagedRepository(name, f"{name}.git has no HEAD file: no git repository is in it")
            raise PromptNotFound(name, self.names())
        try:
            repo = Repo(str(path), beacon=self.path / changes.BEACON)
        except InvalidInput as e:  # its HEAD is there, yet git cannot open it
            raise DamagedRepository(name, str(e), str(self.path)) from None
        repo.facts = self._facts
        repos[name] = repo
        return repo

    def repository(self, name: str) -> Repo:
        """The prompt's repository (for doctor, which reads below the model)."""
        return self._open(name)

    def names(self) -> builtins.list[str]:
        """Every prompt in the store, collections as `folder/name`."""
        self.check()
        return names.store_names(str(self.path))

    def list(self, after: str | None = None, limit: int | None = None) -> builtins.list[PromptSummary]:
        """Prompts with the version current in each stage, in name order: those after
        the name `after` (the last of the page before: a stable cursor), at most `limit`.

        The stage tips come straight from the ref files and their versions from the
        index, so a warm listing opens no repository."""
        listed = self.names()
        if after is not None:
            listed = listed[bisect.bisect_right(listed, after) :]
        if limit is not None:
            listed = listed[:limit]
        current = self._current(listed, everything=after is None and limit is None)
        return [PromptSummary(name, current[name]) for name in listed]

    def _current(self, listed: builtins.list[str], everything: bool) -> dict[str, dict[str, str | None]]:
        """{prompt: {stage: its current version, or None}}. The index remembers each
        prompt's answer with the stamp of the ref files it was read from (`refs_stamp`):
        while the stamp holds, so does the answer (a stage tip's version never changes).
        Otherwise the tips are read from the files and their versions from the index's
        deployments, else from the deployment commits."""
        index = self._facts
        known = {} if index is None else index.stage_versions(None if everything else listed)
        now = time.time_ns()
        store = str(self.path)
        out: dict[str, dict[str, str | None]] = {}
        read: dict[str, tuple[tuple[str, bool] | None, dict[str, str | None]]] = {}
        for name in listed:
            hit = known.get(name)
            path = f"{store}/{name if hit is not None else names.check_name(name)}.git"  # a row's name passed
            stamp = refs_stamp(path, now)
            if stamp is not None and hit is not None and hit[0] == stamp[0] and _versions(hit[1]):
                out[name] = dict(zip(STAGES, hit[1], strict=True))
                continue
            refs = read_refs(path, [f"refs/heads/{s}" for s in STAGES])  # after the stamp
            if refs is None:  # not plain files, or moved: libgit2 reads it (or says where it went)
                with reading(name, store):  # one damaged prompt: a listing says which
                    repo = self._open(name)
                    refs = {f"refs/heads/{s}": repo.ref(f"refs/heads/{s}") for s in STAGES}
                stamp = None
            read[name] = (stamp, {s: refs[f"refs/heads/{s}"] for s in STAGES})
        shas = {sha for _stamp, tips in read.values() for sha in tips.values() if sha}
        deployed = index.deployed(shas) if index is not None and shas else {}
        found: dict[str, str] = {}
        settled: dict[str, tuple[str, builtins.list[str | None]]] = {}
        for name, (stamp, tips) in read.items():
            current: dict[str, str | None] = {}
            for stage, sha in tips.items():
                version = None if sha is None else deployed.get(sha) or found.get(sha)
                if sha is not None and version is None:
                    with reading(name, store):
                        d = history.current(self._open(name), stage, sha)
                    if d is not None:
                        version = found[sha] = str(d.version)
                current[stage] = version
            out[name] = current
            if stamp is not None and stamp[1]:
                settled[name] = (stamp[0], [current[s] for s in STAGES])
        if index is not None:
            index.add_deployed(found)
            index.add_stage_versions(settled)
        return out

    def get(self, name: str, stage: str = "prod") -> Prompt:
        """What `stage` serves now. The hot path: one ref read when nothing changed."""
        key = (name, stage)
        repo = self._open(name)
        tip = repo.ref(f"refs/heads/{stage}")
        cached = self._served.get(key)
        if cached is not None and cached[0] == tip:
            return cached[1]
        if tip is None:
            names.check_stage(stage)
            raise RefNotFound(name, f"deployment in {stage} yet", [])
        d = history.current(repo, stage, tip)
        if d is None:
            raise RefNotFound(name, f"deployment at the tip of {stage}")
        prompt = self._prompt(repo, name, d.version, d.revision, stage=stage, deployment=tip)
        history.remember(self._served, key, (tip, prompt), SERVED_KEPT)
        return prompt

    def ready(self, name: str, stage: str) -> Prompt | None:
        """What `get` would answer, if it is at hand already (one ref read, no parse);
        else None. For an event loop, which must not wait on a parse."""
        cached = self._served.get((name, stage))
        if cached is None:
            return None
        return cached[1] if self._open(name).ref(f"refs/heads/{stage}") == cached[0] else None

    def tips(self, name: str) -> dict[str, str | None]:
        """Each stage's deployment commit (what its ETag names), or None where nothing
        was deployed: three ref reads, what a watcher compares."""
        repo = self._open(name)
        return {s: repo.ref(f"refs/heads/{s}") for s in STAGES}

    def serving(self, name: str, stage: str) -> Prompt | None:
        """What `stage` serves now, or None when nothing was ever deployed there."""
        try:
            return self.get(name, stage)
        except RefNotFound:  # a missing prompt (PromptNotFound) is still an error
            return None

    def details(self, name: str) -> PromptDetails:
        """What each stage serves, and how many versions the prompt has (refs only)."""
        stages: dict[str, StageRef | None] = {}
        for stage in STAGES:
            p = self.serving(name, stage)
            stages[stage] = StageRef(p.version, p.revision, p.deployment or "") if p else None
        return PromptDetails(name, stages, len(self.version_ids(name)))

    def actions(self, name: str, role: str) -> policy.Actions:
        """What `role` may do to each version now, and why not (policy.actions); on a
        read-only store, nothing, and the reason names where changes go."""
        from . import policy  # the rules load only when asked for

        found = policy.actions(self._state(name), role)
        try:
            self.writable()
        except ReadOnlyStore as e:
            return policy.refuse_all(found, str(e))
        return found

    def _state(self, name: str) -> policy.PromptState:
        from . import policy  # the rules load only when asked for

        repo = self._open(name)
        current = _current(repo)
        required = self.config.require_approvals
        versions = [
            policy.VersionState(v.version, v.stage, v.revision, self._gates(repo, name, v, required))
            for v in self.versions(name)
        ]
        return policy.PromptState(
            versions=versions,
            serving={s: (str(d.version), d.revision) if d else None for s, d in current.items()},
            served={s: {str(v) for v in history.versions_in_log(repo, s)} for s in STAGES},
            deprecated={str(v): why for v, why in history.deprecated(repo).items()},
        )

    @staticmethod
    def _gates(repo: Repo, name: str, v: VersionInfo, required: Mapping[str, int]) -> dict[str, str]:
        """Per gated stage, why the version's tip may not enter it yet (require_approvals)."""
        from . import policy  # the rules load only when asked for

        if v.stage == "PROD" or not required:
            return {}
        version = Version.parse(v.version)
        found = {s: policy.approval_problem(repo, s, required, version, v.revision, name) for s in required}
        return {s: why for s, why in found.items() if why}

    def _prompt(
        self,
        repo: Repo,
        name: str,
        version: Version,
        revision: str,
        stage: str | None = None,
        deployment: str | None = None,
    ) -> Prompt:
        files = repo.files(repo.commit(revision).tree)
        prompt_text = content.decode(content.PROMPT_FILE, files.get(content.PROMPT_FILE, b""))
        tests = files.get(content.TESTS_FILE)
        return Prompt(
            name=name,
            version=str(version),
            revision=revision,
            content=self._parsed(prompt_text),
            source=prompt_text,
            tests=content.decode(content.TESTS_FILE, tests) if tests is not None else None,
            stage=stage,
            deployment=deployment,
        )

    def _parsed(self, text: str) -> Mapping[str, Any]:
        """prompt.yaml's mapping (validated when it was written), from the index when it
        has parsed these bytes before: a warm `show` needs no YAML parser."""
        index = self._facts
        if index is None:
            return content.parse_prompt(text, templates=False)
        sha = hashlib.sha256(text.encode()).hexdigest()
        known = index.content(sha)
        if isinstance(known, dict):
            return known
        parsed = content.parse_prompt(text, templates=False)
        index.add_content(sha, parsed)
        return parsed

    def resolve(self, name: str, ref: RefSpec | str | None = None) -> Resolved:
        """Pin NAME@REF to a revision; no REF means prod if anything is released, else dev."""
        return self._resolve(self._open(name), name, ref)

    def _resolve(self, repo: Repo, name: str, ref: RefSpec | str | None) -> Resolved:
        spec = RefSpec.parse(ref) if isinstance(ref, str) else ref
        if spec is None:
            spec = RefSpec("stage", "prod" if repo.ref("refs/heads/prod") else "dev")
        if spec.kind == "stage":
            d = history.current(repo, spec.value)
            if d is None:
                raise RefNotFound(name, f"deployment in {spec.value} yet")
            tip = history.version_tip(repo, d.version)
            released = bool(tip and tip[1])
            return Resolved(d.version, d.revision, released, tip[0] if tip else d.revision, d)
        if spec.kind in ("version", "name"):
            v = self._version_arg(repo, name, spec.value)
            sha, released = self._tip(repo, name, v)
            return Resolved(v, sha, released, sha)
        if spec.kind == "review":
            return self._review(repo, name, spec.value)
        full = repo.expand(spec.value)
        if full is None or repo.kind(full) != "commit":
            raise RefNotFound(name, f"revision {spec.value}")
        d = history.as_deployment(repo.commit(full), "?")
        sha = d.revision if d is not None else full
        found = history.version_of(repo, sha)
        if found is None:
            raise RefNotFound(name, f"revision {spec.value} in any version")
        tip = history.version_tip(repo, found)
        return Resolved(found, sha, bool(tip and tip[1]), tip[0] if tip else sha)

    def _review(self, repo: Repo, name: str, branch: str) -> Resolved:
        """A review branch: its tip, and the version it proposes changes to."""
        tip = repo.ref(names.review_ref(branch))
        if tip is None:
            known = sorted(r.removeprefix("refs/heads/") for r in repo.refs(names.REVIEW))
            listed = (
                ", ".join(known) if known else f"none yet: 'promptgit review {name}@vX.Y BRANCH' starts one"
            )
            raise RefNotFound(name, f"review branch review/{branch} (review branches: {listed})")
        v = history.version_of(repo, tip)
        if v is None:
            raise RefNotFound(name, f"version that review/{branch} proposes changes to")
        found = history.version_tip(repo, v)
        return Resolved(v, tip, bool(found and found[1]), tip)

    def reviews(self, name: str) -> builtins.list[str]:
        """The prompt's review branches, as review/BRANCH."""
        return sorted(r.removeprefix("refs/heads/") for r in self._open(name).refs(names.REVIEW))

    @staticmethod
    def _stage(repo: Repo, v: Version, released: bool) -> str:
        """One version's stage, walking tst's log only until it is found."""
        return _label(released, not released and history.has_served(repo, "tst", v))

    def versions(self, name: str) -> builtins.list[VersionInfo]:
        """Every version with its stage, current stages, created/updated and summary."""
        repo = self._open(name)
        current, in_tst = _current(repo), history.versions_in_log(repo, "tst")
        tips = sorted(history.all_versions(repo).items())
        facts = history.version_facts(repo, [tip for _v, (tip, _released) in tips])
        labels, gone = history.version_names(repo), history.deprecated(repo)
        return [
            _info(v, facts[tip], tip, _label(released, v in in_tst), current, labels, gone)
            for v, (tip, released) in tips
        ]

    def version_ids(self, name: str) -> builtins.list[str]:
        """Every existing version's number, in order (no walk: refs only)."""
        return [str(v) for v in sorted(history.all_versions(self._open(name)))]

    def version(self, name: str, version: str | Version) -> VersionInfo:
        """One version's history entry: stage, current stages, created/updated, summary."""
        repo = self._open(name)
        v = self._version_arg(repo, name, version)
        self._tip(repo, name, v)
        return self._version_info(repo, v)

    def version_detail(self, name: str, version: str | Version) -> VersionDetail:
        """One version's history entry and the content of its tip."""
        info = self.version(name, version)
        return VersionDetail(info, self.prompt(name, info.version))

    def show(self, name: str, ref: RefSpec | str | None = None) -> Shown:
        repo = self._open(name)
        r = self._resolve(repo, name, ref)
        info = self._version_info(repo, r.version)  # its stage and the stages it is current in
        notes = []
        if r.deployment is not None and r.revision != r.tip:
            held = r.deployment.stage
            if r.deployment.action != "rollback" and self.config.require_approvals.get(held):
                notes.append(
                    f"{held} serves an older revision of {r.version} ({r.revision[:10]}): the draft's "
                    f"tip {r.tip[:10]} waits for its approvals (require_approvals) before {held} takes "
                    f"it; once approved, 'promptgit promote {name}@{r.version} --to {held}'"
                )
            else:
                notes.append(
                    f"{held} serves an older revision of {r.version} "
                    f"({r.revision[:10]}, restored by a rollback); the draft's tip is {r.tip[:10]}"
                )
        stage, deployed = (r.deployment.stage, r.deployment.sha) if r.deployment else (None, None)
        return Shown(
            prompt=self._prompt(repo, name, r.version, r.revision, stage, deployed),
            stage=info.stage,
            current_in=info.current_in,
            tip=r.tip,
            deployment=_deployment_info(repo, r.deployment) if r.deployment else None,
            notes=tuple(notes),
            info=info,
        )

    def log(
        self, name: str, ref: RefSpec | str | None = None, limit: int | None = None
    ) -> builtins.list[DeploymentInfo] | builtins.list[RevisionInfo]:
        """A stage's deployment log, or a version's revisions; newest first (at most `limit`)."""
        repo = self._open(name)
        spec = RefSpec.parse(ref) if isinstance(ref, str) else ref
        if spec is None:
            spec = RefSpec("stage", "prod" if repo.ref("refs/heads/prod") else "dev")
        if spec.kind == "stage":
            deployments = itertools.islice(history.stage_log(repo, spec.value), limit)
            audits = _audit(repo)
            return [_deployment_info(repo, d, audits) for d in deployments]
        r = self._resolve(repo, name, spec)
        return [
            _revision_info(c, history.test_runs(repo, c.sha)) for c in history.revisions(repo, r.revision)
        ]

    def diff(self, name: str, a: RefSpec | str, b: RefSpec | str) -> Diff:
        """What changed from NAME@A to NAME@B: a unified diff of prompt.yaml and
        tests.yaml, and each test case's variables rendered on both sides (in a worker
        with a deadline, as `render` does; at most limits.DIFF_CASES cases, within
        limits.DIFF_TIMEOUT seconds in all)."""
        repo = self._open(name)
        specs = [RefSpec.parse(r) if isinstance(r, str) else r for r in (a, b)]
        ra, rb = (self._resolve(repo, name, spec) for spec in specs)
        files = dict.fromkeys((content.PROMPT_FILE, content.TESTS_FILE), "")
        files.update(repo.diff_files(ra.revision, rb.revision))
        pa = self._prompt(repo, name, ra.version, ra.revision)
        pb = self._prompt(repo, name, rb.version, rb.revision)
        rendered, notes = _rendered(pa, pb, str(specs[0]), str(specs[1]))
        sides = [
            DiffSide(str(spec), str(r.version), r.revision) for spec, r in zip(specs, (ra, rb), strict=True)
        ]
        return Diff(name, sides[0], sides[1], files, rendered, notes)

    def approvals(self, name: str, ref: RefSpec | str) -> Approvals:
        """The approvals of NAME@REF's revisions (a version, or a review branch), newest
        first, each saying whether it counts toward require_approvals for the tip."""
        from . import policy  # the rules load only when asked for

        repo = self._open(name)
        spec = RefSpec.parse(ref) if isinstance(ref, str) else ref
        r = self._resolve(repo, name, spec)
        tip = r.tip
        found = policy.standing(repo, tip)
        listed = []
        for sha in history.revision_shas(repo, tip):  # a revision is approved only while a tip, so
            for a in reversed(history.approvals(repo, sha)):  # this order is newest first
                why = found.why_not(a, tip, r.version)
                listed.append(ApprovalInfo(sha, a.version or str(r.version), a.by, a.comment, not why, why))
        label = str(spec) if spec.kind == "review" else str(r.version)
        authors = tuple(history.authors(repo, tip).people)
        required = dict(self.config.require_approvals)
        return Approvals(name, label, str(r.version), tip, tuple(listed), authors, required)

    def render(
        self, name: str, ref: RefSpec | str | None = None, variables: Mapping[str, Any] | None = None
    ) -> str | builtins.list[dict[str, str]]:
        """Render NAME@REF in a worker process with a deadline and a memory ceiling
        (bounded.py), as the CLI and the server do: a runaway template ends in a
        RenderError naming the limit. `variables` is a mapping, so a variable may be
        called anything. For the in-process fast path use `get(...).render()`."""
        from . import bounded

        return bounded.render(self.prompt(name, ref), variables or {})

    def prompt(self, name: str, ref: RefSpec | str | None = None) -> Prompt:
        repo = self._open(name)
        r = self._resolve(repo, name, ref)
        return self._prompt(repo, name, r.version, r.revision)

    # --- helpers ------------------------------------------------------------------

    def _version_arg(self, repo: Repo, name: str, version: str | Version) -> Version:
        """A version given as v2.3 / 2.3, by its name, or as a stage meaning the version
        it serves."""
        if isinstance(version, Version):
            return version
        if version in STAGES:
            d = history.current(repo, version)
            if d is None:
                raise RefNotFound(name, f"deployment in {version} yet")
            return d.version
        spec = RefSpec.parse(version)
        if spec.kind == "review":
            raise InvalidInput(
                f"{spec} is a review branch, not a version: commit to it with git, and land it on "
                f"its draft by a fast-forward push (git push origin {spec}:vX.Y)"
            )
        if spec.kind != "name":
            return Version.parse(version)
        found = history.named(repo, spec.value)
        if found is None:
            known = [f"{n} ({v})" for v, (n, _d) in sorted(history.version_names(repo).items())]
            raise RefNotFound(name, f"version named {spec.value!r}", known)
        return found

    def _current_info(self, repo: Repo, stage: str) -> DeploymentInfo:
        d = history.current(repo, stage)
        assert d is not None, "a stage just deployed to has a deployment"
        return _deployment_info(repo, d)

    def _tip(self, repo: Repo, name: str, v: Version) -> tuple[str, bool]:
        """(tip, released?) of an existing version, else RefNotFound listing the versions."""
        found = history.version_tip(repo, v)
        if found is None:
            raise RefNotFound(name, f"version {v}", [str(k) for k in sorted(history.all_versions(repo))])
        return found

    def _version_info(self, repo: Repo, v: Version) -> VersionInfo:
        tip, released = history.version_tip(repo, v) or ("", False)
        stage = self._stage(repo, v, released)
        labels = {v: history.version_name(repo, v, tip)}  # not every version's walk
        fact = history.version_facts(repo, [tip])[tip]
        return _info(v, fact, tip, stage, _current(repo), labels, history.deprecated(repo))


def _info(
    v: Version,
    fact: history.VersionFact,
    tip: str,
    stage: str,
    current: Mapping[str, Deployment | None],
    labels: Mapping[Version, tuple[str, str]],
    gone: Mapping[Version, str],
) -> VersionInfo:
    label, description = labels.get(v, ("", ""))
    return VersionInfo(
        version=str(v),
        stage=stage,
        current_in=tuple(s for s, d in current.items() if d and d.version == v),
        revision=tip,
        created=fact.created,
        updated=fact.updated,
        summary=fact.summary,
        name=label,
        description=description,
        deprecated=gone.get(v),
    )


def _deployment_info(
    repo: Repo, d: Deployment, audits: Mapping[tuple[str, str], history.Audited] | None = None
) -> DeploymentInfo:
    """A deployment as the store reports it: who and when from the audit log (`audits`,
    the whole log's lookup for a long listing; else only as far back as this entry)."""
    key = (f"refs/heads/{d.stage}", d.sha)
    audited = audits.get(key) if audits is not None else _audited(repo, key)
    return DeploymentInfo(
        deployment=d.sha,
        stage=d.stage,
        action=d.action,
        version=str(d.version),
        revision=d.revision,
        stamp=audited.by if audited else d.by,
        message=d.summary,
        audited=audited is not None,
    )


_AUDITS: dict[str, tuple[str | None, dict[tuple[str, str], history.Audited]]] = {}


def _audited(repo: Repo, key: tuple[str, str]) -> history.Audited | None:
    """One audit entry. A process that has read the log extends its lookup; one that
    has not (a CLI run) reads from the tip only until it meets this entry."""
    if repo.path in _AUDITS:
        return _audit(repo).get(key)
    found, _reached = history.audit_log(repo, wanted=[key])
    return found.get(key)


def _audit(repo: Repo) -> dict[tuple[str, str], history.Audited]:
    """The repository's audit log as a lookup; when its tip moves, only the entries
    since the tip read last are read (the log only grows: promptgit alone writes it)."""
    tip = repo.ref(names.AUDIT_REF)
    cached = _AUDITS.get(repo.path)
    if cached is not None and cached[0] == tip:
        return cached[1]
    newer, reached = history.audit_log(repo, tip, until=cached[0] if cached else None)
    if cached is not None and reached:
        newer = {**cached[1], **newer}  # a newer entry for the same (ref, sha) wins, as in a whole read
    history.remember(_AUDITS, repo.path, (tip, newer))
    return newer


def _revision_info(c: Commit, tests: Sequence[dict[str, Any]] = ()) -> RevisionInfo:
    return RevisionInfo(c.sha, names.summary(c.message), c.author, c.message, tuple(tests))


def _current(repo: Repo) -> dict[str, Deployment | None]:
    """What each stage serves now: three tip reads."""
    return {s: history.current(repo, s) for s in STAGES}


def _label(released: bool, in_tst: bool) -> str:
    """A version's stage: the furthest stage whose log has deployed it."""
    return "PROD" if released else "TST" if in_tst else "DEV"


def _rendered(
    a: Prompt, b: Prompt, label_a: str, label_b: str
) -> tuple[tuple[RenderedCase, ...], tuple[str, ...]]:
    """Each test case of either side (b's first), rendered with its variables on both
    sides, and notes on what was left out."""
    import difflib
    import time

    from . import bounded
    from .errors import InvalidContent
    from .limits import DIFF_CASES, DIFF_LINES, DIFF_TIMEOUT, RENDER_TIMEOUT

    notes: list[str] = []
    cases: dict[str, tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]] = {}
    for side, (label, p) in enumerate(((label_b, b), (label_a, a))):
        try:
            parsed = content.parse_tests(p.tests) if p.tests else {"cases": []}
        except InvalidContent as e:
            notes.append(f"{label}'s tests.yaml does not validate, so its cases are not rendered: {e}")
            continue
        for case in parsed.get("cases", []):
            variables = case.get("vars") or {}
            pair = cases.get(str(case["name"]), (None, None))
            cases[str(case["name"])] = (pair[0], variables) if side == 0 else (variables, pair[1])
    if len(cases) > DIFF_CASES:
        notes.append(
            f"{len(cases) - DIFF_CASES} more test cases are not rendered (the limit is {DIFF_CASES})"
        )
    deadline = time.monotonic() + DIFF_TIMEOUT

    def text(p: Prompt, variables: Mapping[str, Any]) -> str:
        left = deadline - time.monotonic()
        if left <= 0:
            return f"(not rendered: this diff's renders took over {DIFF_TIMEOUT:g} s, the limit)"
        try:
            out = bounded.render(p, variables, timeout=min(RENDER_TIMEOUT, left))
        except RenderError as e:
            return f"(does not render: {e})"
        return "\n".join(f"[{m['role']}]\n{m['content']}" for m in out) if isinstance(out, list) else out

    rendered = []
    for name, (vars_a, vars_b) in itertools.islice(cases.items(), DIFF_CASES):
        va = vars_a if vars_a is not None else vars_b or {}
        vb = vars_b if vars_b is not None else vars_a or {}
        ta = _shown(text(a, va))
        tb = ta if (a.content == b.content and va == vb) else _shown(text(b, vb))
        la, lb = ta.splitlines(), tb.splitlines()
        if max(len(la), len(lb)) > DIFF_LINES:
            diff = (
                f"(not compared line by line: {len(la):,} and {len(lb):,} lines, over the limit of "
                f"{DIFF_LINES:,} a side; both renders are shown)\n"
            )
        else:
            lines = list(
                difflib.unified_diff(la, lb, f"{label_a} ({name})", f"{label_b} ({name})", lineterm="")
            )
            diff = "\n".join(lines) + "\n" if lines else ""
        rendered.append(RenderedCase(name, vb, ta, tb, diff))
    return tuple(rendered), tuple(notes)


def _shown(text: str) -> str:
    """A render as a diff shows it: its first limits.DIFF_CHARS characters."""
    from .limits import DIFF_CHARS

    if len(text) <= DIFF_CHARS:
        return text
    return f"{text[:DIFF_CHARS]}\n(… {len(text) - DIFF_CHARS:,} more characters, not shown)"


def _versions(remembered: Sequence[str | None]) -> bool:
    """Whether an index row holds one version (or none) per stage."""
    return len(remembered) == len(STAGES) and all(v is None or Version.maybe(v) for v in remembered)
