"""The JSON API: the CLI's operations over HTTP, with the same rules and error texts.

Errors are `{"error": {"code", "message"}}`, mapped from the library's error
classes in one table. Versions and stages carry an ETag (the revision, or the
deployment commit); PATCH and promote honour If-Match (412 on a mismatch) and
reading a stage honours If-None-Match (304).

No `from __future__ import annotations` here: FastAPI reads the route
signatures at run time, and the dependencies are local to `create_api`.
"""

import re
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode

import yaml
from fastapi import Depends, FastAPI, Header, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from .. import __version__
from ..errors import ConcurrentUpdate, InvalidInput
from ..model import Actor, rendered_json
from ..names import PromotionStage, RefSpec, Stage, Version, check_stage
from ..store import Store
from .auth import Auth
from .errors import ApiError, install_handlers
from .langfuse import mount_langfuse
from .lifecycle import mount_lifecycle
from .watch import MAX_TIMEOUT, Watcher, check_names, rescan_setting

MAX_PAGE = 1000  # prompts per page of GET /prompts

# The API's own words for two record fields (its first clients' vocabulary).
API_WORDS = {"version": "version_id", "summary": "change_summary"}


def api_words(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record's JSON with the API's words for its fields (see API_WORDS)."""
    return {API_WORDS.get(k, k): v for k, v in record.items()}


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in [
        (400, "Bad request"),
        (401, "No token, or an unknown one"),
        (403, "The token's role may not do this"),
        (404, "No such prompt, version or stage"),
        (409, "A rule forbids it, or someone changed it first"),
        (412, "If-Match names another revision"),
        (428, "If-Match is required: approve names the revision it approves"),
        (422, "Invalid input"),
        (308, "The prompt was renamed: Location is the same route under its new name"),
        (410, "The prompt is archived: the message says by whom, when and why"),
    ]
}


# --- request and response bodies ---------------------------------------------------


class PromptSummaryOut(BaseModel):
    name: str
    dev: str | None
    tst: str | None
    prod: str | None


class StageRef(BaseModel):
    version: str
    revision: str
    deployment: str


class PromptDetailsOut(BaseModel):
    name: str
    dev: str | None
    tst: str | None
    prod: str | None
    stages: dict[str, StageRef | None]
    versions: int


class VersionOut(BaseModel):
    version_id: str
    stage: str
    current_in: list[str]
    revision: str
    created_at: str
    updated_at: str
    created_by: str
    updated_by: str
    change_summary: str = Field(description="The latest revision's summary")
    version_name: str = Field(description="The version's name, fixed at creation (unique, ignoring case)")
    description: str = Field(description="The version's description, fixed at creation")
    deprecated: bool
    deprecated_reason: str | None


class VersionDetailOut(VersionOut):
    name: str
    content: dict[str, Any]
    source: str
    tests: str | None


class RevisionOut(BaseModel):
    revision: str
    at: str
    by: str
    summary: str
    tests: list[dict[str, Any]]


class DeploymentOut(BaseModel):
    deployment: str
    stage: str
    action: str
    version: str
    revision: str
    at: str = Field(description="When, by the server's clock (from the audit log when audited)")
    by: str = Field(description="Who: the actor or the authenticated pusher (when audited)")
    message: str
    audited: bool = Field(
        description="True: by and at come from promptgit's audit log, not from what the commit claims"
    )


class ActionOut(BaseModel):
    allowed: bool
    why: str
    to: str | None = None


class ActionsOut(BaseModel):
    versions: dict[str, dict[str, ActionOut]] = Field(
        description="Per version: edit, test, promote (with `to`), new, delete"
    )
    rollback: dict[str, dict[str, ActionOut]] = Field(
        description="Per stage: the versions it may roll back to"
    )


class StageOut(BaseModel):
    name: str
    stage: str | None
    version: str
    revision: str
    deployment: str
    content: dict[str, Any]
    source: str


class WatchOut(BaseModel):
    cursor: str = Field(description="Send it back as since= to wait for the next change")
    prompts: dict[str, dict[str, str | None] | None] = Field(
        description="Each watched prompt's stage tips (the stage reads' ETags), with mirror=true also "
        "`refs` (a digest of all its refs); null: no such prompt now"
    )


class RenderOut(BaseModel):
    text: str | None = None
    messages: list[dict[str, str]] | None = None


class TestCaseOut(BaseModel):
    name: str
    passed: bool
    why: str
    ms: float
    output: str | None


class TestRunOut(BaseModel):
    name: str
    version: str
    revision: str
    env: str
    provider: str
    model: str | None
    by: str
    at: str
    passed: bool
    cases: list[TestCaseOut]


class DiffSideOut(BaseModel):
    ref: str = Field(description="The REF as given")
    version: str
    revision: str


class RenderedCaseOut(BaseModel):
    case: str
    vars: dict[str, Any] = Field(description="The case's variables (b's, where the sides differ)")
    a: str = Field(description="What a's template renders for them (or why it does not render)")
    b: str
    diff: str = Field(description="A unified diff of the two texts; empty when they are equal")


class DiffOut(BaseModel):
    name: str
    a: DiffSideOut
    b: DiffSideOut
    files: dict[str, str] = Field(description="prompt.yaml and tests.yaml: each one's unified diff")
    rendered: list[RenderedCaseOut] = Field(description="Each test case rendered on both sides")
    notes: list[str] = Field(
        description="What was left out: cases past the limit, tests that do not validate"
    )


class ApprovalOut(BaseModel):
    revision: str
    version: str
    at: str
    by: str = Field(description="The approver: the token's name through the server")
    comment: str
    counts: bool = Field(description="Whether it counts toward require_approvals for the tip")
    why: str = Field(description="Why it does not count: an author's, an earlier revision's, a repeat")


class ApprovalsOut(BaseModel):
    name: str
    ref: str
    version: str
    revision: str = Field(description="The tip: the revision a promotion would deploy")
    approvals: list[ApprovalOut] = Field(description="Newest first, over every revision of the version")
    counted: int = Field(description="Approvals of the tip that count")
    authors: list[str] = Field(description="Who authored the tip's revisions: their approvals do not count")
    required: dict[str, int] = Field(description="require_approvals: per stage, how many are needed")


Content = str | dict[str, Any]


class CreatePromptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    content: Content = Field(description="prompt.yaml, as YAML text or as a JSON object")
    tests: Content | None = None
    change_summary: str = ""
    version_name: str | None = Field(None, description="A name for v1.0 (default: its creation time, UTC)")
    description: str = Field("", description="What v1.0 is for; fixed once created")


class NewVersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: str | None = Field(
        None, alias="from", description="Source version or stage (default: prod, else dev)"
    )
    version_name: str | None = Field(
        None,
        description="The version's name (unique, ignoring case; default: its creation time, UTC); "
        "shaped like vX.Y it asks for that never-used number instead",
    )
    major: bool = False
    description: str = Field("", description="What the version is for; fixed once created")
    change_summary: str | None = None
    content: Content | None = Field(None, description="Content for a first edit of the new draft")
    tests: Content | None = None


class EditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: Content | None = None
    tests: Content | None = None
    change_summary: str = ""


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: PromotionStage | None = None


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: Stage | None = None


class DeprecateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(description="Why; shown wherever the release is")


class RenderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vars: dict[str, Any] = {}


class TestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    env: Stage | None = None


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field("", description="One line, at most 500 characters")


# --- helpers -----------------------------------------------------------------------


def _text(value: Content | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)


def _files(content: Content | None, tests: Content | None) -> dict[str, str]:
    files = {}
    if content is not None:
        files["prompt.yaml"] = _text(content) or ""
    if tests is not None:
        files["tests.yaml"] = _text(tests) or ""
    return files


_ETAG = re.compile(r'\*|(W/)?"[^"]*"|[0-9a-fA-F]{4,64}')  # a quoted entity-tag, or a bare sha


def etag(sha: str) -> str:
    return f'"{sha}"'


def matches(header: str, sha: str, *, weak: bool) -> bool:
    """Whether an If-Match (strong comparison) or If-None-Match (weak) header names `sha`."""
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            if not weak:
                continue
            tag = tag[2:]
        if tag.strip('"') == sha:
            return True
    return False


def _precondition(store: Store, name: str, version: str, if_match: str | None) -> str | None:
    """The revision an If-Match pins (the current tip, for the write's compare-and-swap),
    or 412 when it names another; None when there is no If-Match."""
    if if_match is None:
        return None
    tip = store.resolve(name, version).revision
    tags = [tag.strip() for tag in if_match.split(",") if tag.strip()]
    if not tags or not all(_ETAG.fullmatch(tag) for tag in tags):
        # empty or garbled (say, a recipe whose ETag came back empty): never a blind write
        raise ApiError(
            400,
            "bad_request",
            f"If-Match {if_match!r} is not an ETag: send the ETag a GET of this version returned, "
            f'e.g. If-Match: "{tip}" (or * for any revision); nothing was changed',
        )
    if not matches(if_match, tip, weak=False):
        raise ApiError(
            412,
            "precondition_failed",
            f"{name}@{version} is at revision {tip[:10]}, which If-Match does not name: "
            "GET it again for its ETag, look at the change, and retry",
        )
    return tip


def _version_ref(version_id: str) -> RefSpec:
    spec = RefSpec.parse(version_id)
    if spec.kind == "revision":
        raise InvalidInput(f"invalid version {version_id!r}: write it as vMAJOR.MINOR, e.g. v1.0")
    return spec


def create_api(store: Store, auth: Auth) -> FastAPI:
    app = FastAPI(
        title="promptgit",
        version=__version__,
        description="A git-backed prompt store: versions, stages DEV -> TST -> PROD, releases.",
        responses=ERRORS,
        docs_url=None,  # the page serves /docs without a CDN (server/ui.py)
        redoc_url=None,
    )

    install_handlers(app)

    reader = Depends(auth.require("reader"))
    editor = Depends(auth.require("editor"))
    Reader = Annotated[Actor, reader]
    Editor = Annotated[Actor, editor]

    @app.get(
        "/prompts",
        response_model=list[PromptSummaryOut],
        responses={200: {"headers": {"Link": {"description": 'The next page: <URL>; rel="next"'}}}},
        tags=["prompts"],
    )
    def list_prompts(
        actor: Reader,
        response: Response,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Prompts per page")] = MAX_PAGE,
        after: Annotated[str | None, Query(description="List the prompts after this name")] = None,
    ) -> list[dict[str, Any]]:
        """Prompts in name order with the version current in each stage, a page at a
        time: when there are more, the Link header names the next page (`after` the
        last name of this one, a cursor that stays good whatever is created or deleted)."""
        listed = store.list(after=after, limit=limit + 1)
        if len(listed) > limit:
            following = urlencode({"after": listed[limit - 1].name, "limit": limit})
            response.headers["Link"] = f'</prompts?{following}>; rel="next"'
        return [p.to_json() for p in listed[:limit]]

    @app.post("/prompts", status_code=201, response_model=PromptDetailsOut, tags=["prompts"])
    def create_prompt(body: CreatePromptIn, actor: Editor) -> dict[str, Any]:
        """Create a prompt: v1.0, a DEV draft served by dev."""
        store.create(
            body.name,
            _files(body.content, body.tests),
            body.change_summary,
            version_name=body.version_name,
            description=body.description,
            actor=actor,
        )
        return store.details(body.name).to_json()

    @app.get("/prompts/{name:path}/versions", response_model=list[VersionOut], tags=["versions"])
    def list_versions(name: str, actor: Reader) -> list[dict[str, Any]]:
        """The version history: every version with its stage, stages it is current in,
        created/updated times and change summary."""
        return [api_words(v.to_json()) for v in store.versions(name)]

    @app.post("/prompts/{name:path}/versions", status_code=201, response_model=VersionOut, tags=["versions"])
    def new_version(name: str, body: NewVersionIn, actor: Editor, response: Response) -> dict[str, Any]:
        """A new version as a DEV draft (current in dev); never changes what another stage serves."""
        files = _files(body.content, body.tests)
        number = body.version_name if body.version_name and Version.maybe(body.version_name) else None
        info = store.new_version(
            name,
            body.from_,
            major=body.major,
            as_version=number,
            version_name=None if number else body.version_name,
            description=body.description,
            message=body.change_summary or "",
            files=files or None,
            actor=actor,
        )
        response.headers["ETag"] = etag(info.revision)
        return api_words(info.to_json())

    @app.get(
        "/prompts/{name:path}/versions/{version_id}/revisions",
        response_model=list[RevisionOut],
        tags=["versions"],
    )
    def revisions(name: str, version_id: str, actor: Reader) -> list[dict[str, Any]]:
        """A version's revisions (every save), newest first, with recorded test runs."""
        return [r.to_json() for r in store.log(name, _version_ref(version_id))]

    @app.post(
        "/prompts/{name:path}/versions/{version_id}/promote", response_model=DeploymentOut, tags=["versions"]
    )
    def promote(
        name: str,
        version_id: str,
        actor: Editor,
        body: PromoteIn | None = None,
        if_match: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        """DEV -> TST, or TST -> PROD (needs role releaser). If-Match: the revision meant."""
        version = _version_ref(version_id).value
        expect = _precondition(store, name, version, if_match)
        try:
            d = store.promote(name, version, to=body.to if body else None, expect=expect, actor=actor)
        except ConcurrentUpdate as e:
            if expect is not None:
                raise ApiError(412, "precondition_failed", str(e)) from None
            raise
        return d.to_json()

    @app.post(
        "/prompts/{name:path}/versions/{version_id}/rollback",
        response_model=PromptDetailsOut,
        tags=["versions"],
    )
    @app.put(
        "/prompts/{name:path}/versions/{version_id}/revert",
        response_model=PromptDetailsOut,
        tags=["versions"],
    )
    def rollback(
        name: str,
        version_id: str,
        actor: Editor,
        body: RollbackIn | None = None,
        stage: Annotated[Stage | None, Query()] = None,
    ) -> dict[str, Any]:
        """Restore this version as current in a stage (query or body `stage`, default prod)
        by a logged rollback deployment; doing it again changes nothing. POST .../rollback
        and PUT .../revert are the same operation."""
        target = check_stage(stage or (body.stage if body else None) or "prod")
        store.rollback(name, _version_ref(version_id).value, stage=target, actor=actor)
        return store.details(name).to_json()

    @app.post(
        "/prompts/{name:path}/versions/{version_id}/deprecate", response_model=VersionOut, tags=["versions"]
    )
    def deprecate(name: str, version_id: str, body: DeprecateIn, actor: Editor) -> dict[str, Any]:
        """Deprecate a release (needs role releaser): rollbacks skip it. Not the one prod serves."""
        return api_words(
            store.deprecate(name, _version_ref(version_id).value, body.reason, actor=actor).to_json()
        )

    @app.post(
        "/prompts/{name:path}/versions/{version_id}/undeprecate", response_model=VersionOut, tags=["versions"]
    )
    def undeprecate(name: str, version_id: str, actor: Editor) -> dict[str, Any]:
        """Take a deprecation back (needs role releaser)."""
        return api_words(store.undeprecate(name, _version_ref(version_id).value, actor=actor).to_json())

    @app.post("/prompts/{name:path}/versions/{version_id}/test", response_model=TestRunOut, tags=["versions"])
    def run_tests(name: str, version_id: str, actor: Editor, body: TestIn | None = None) -> dict[str, Any]:
        """Run the version's tests.yaml cases and record the run (200 whether or not it passed)."""
        run = store.test(name, _version_ref(version_id), env=body.env if body else None, actor=actor)
        return run.to_json()

    @app.post(
        "/prompts/{name:path}/versions/{version_id}/approve", response_model=ApprovalOut, tags=["review"]
    )
    def approve(
        name: str,
        version_id: str,
        actor: Editor,
        body: ApproveIn | None = None,
        if_match: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        """Approve the exact revision the version's tip has now, as the token's name.
        If-Match (required, 428 without): the revision you looked at (412 if the draft
        has moved since; * for whatever it is now). An
        author's approval is recorded, but does not count (`counts`, `why`)."""
        version = _version_ref(version_id).value
        if if_match is None:
            raise ApiError(
                428,
                "precondition_required",
                f"approving needs If-Match: the ETag of the revision you reviewed (GET "
                f"/prompts/{name}/versions/{version} gives it), so an approval never lands on a "
                "revision you did not see; nothing was changed",
            )
        expect = _precondition(store, name, version, if_match)
        comment = body.comment if body else ""
        try:
            return store.approve(name, version, comment, expect=expect, actor=actor).to_json()
        except ConcurrentUpdate as e:
            if expect is not None:
                raise ApiError(412, "precondition_failed", str(e)) from None
            raise

    @app.get(
        "/prompts/{name:path}/versions/{version_id}/approvals", response_model=ApprovalsOut, tags=["review"]
    )
    def approvals(name: str, version_id: str, actor: Reader) -> dict[str, Any]:
        """The approvals of the version's revisions, newest first, each saying whether it
        counts toward require_approvals for the tip."""
        return store.approvals(name, _version_ref(version_id)).to_json()

    @app.get("/diff/{name:path}", response_model=DiffOut, tags=["review"])
    def diff(
        name: str,
        actor: Reader,
        a: Annotated[str, Query(description="A REF: version, stage, revision or review/BRANCH")],
        b: Annotated[str, Query(description="Another REF")],
    ) -> dict[str, Any]:
        """What changed from NAME@a to NAME@b: a unified diff of prompt.yaml and tests.yaml,
        and the template rendered with each test case's variables on both sides."""
        return store.diff(name, a, b).to_json()

    @app.get(
        "/prompts/{name:path}/versions/{version_id}",
        response_model=VersionDetailOut,
        responses={304: {"description": "Not modified (If-None-Match)"}},
        tags=["versions"],
    )
    def get_version(
        name: str,
        version_id: str,
        actor: Reader,
        response: Response,
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> Any:
        """One version: its details and its content, with ETag = its tip revision; send it
        back in If-None-Match to get a cheap 304 until the draft changes (a release never does)."""
        detail = _version_detail(store, name, _version_ref(version_id).value, response)
        if if_none_match is not None and matches(if_none_match, detail["revision"], weak=True):
            return Response(status_code=304, headers={"ETag": etag(detail["revision"])})
        return detail

    @app.patch(
        "/prompts/{name:path}/versions/{version_id}", response_model=VersionDetailOut, tags=["versions"]
    )
    def edit(
        name: str,
        version_id: str,
        body: EditIn,
        actor: Editor,
        response: Response,
        if_match: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        """Edit a draft in place: a new revision; stages serving it follow. If-Match: the
        revision you edited (412 if the draft has moved since)."""
        version = _version_ref(version_id).value
        files = _files(body.content, body.tests)
        if not files:
            raise InvalidInput("nothing to save: give content (prompt.yaml) and/or tests")
        expect = _precondition(store, name, version, if_match)
        try:
            store.edit(name, version, files, body.change_summary, expect=expect, keep_text=False, actor=actor)
        except ConcurrentUpdate as e:
            if expect is not None:
                raise ApiError(412, "precondition_failed", str(e)) from None
            raise
        return _version_detail(store, name, version, response)

    @app.delete("/prompts/{name:path}/versions/{version_id}", status_code=204, tags=["versions"])
    def delete(name: str, version_id: str, actor: Editor) -> Response:
        """Delete a DEV draft that never reached TST and is not current in dev."""
        store.delete(name, _version_ref(version_id).value, actor=actor)
        return Response(status_code=204)

    @app.get("/prompts/{name:path}/stages/{stage}/log", response_model=list[DeploymentOut], tags=["stages"])
    def stage_log(name: str, stage: Stage, actor: Reader) -> list[dict[str, Any]]:
        """A stage's deployment log, newest first: who deployed or rolled back what, when."""
        return [d.to_json() for d in store.log(name, RefSpec("stage", stage))]

    @app.post(
        "/prompts/{name:path}/stages/{stage}/render",
        response_model=RenderOut,
        response_model_exclude_none=True,
        tags=["stages"],
    )
    def render(name: str, stage: Stage, actor: Reader, body: RenderIn | None = None) -> dict[str, Any]:
        """Render what the stage serves with the given variables (in Jinja2's sandbox)."""
        return rendered_json(store.render(name, RefSpec("stage", stage), body.vars if body else {}))

    @app.get(
        "/prompts/{name:path}/stages/{stage}",
        response_model=StageOut,
        responses={304: {"description": "Not modified (If-None-Match)"}},
        tags=["stages"],
    )
    async def get_stage(
        name: str,
        stage: Stage,
        actor: Reader,
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        """What a stage serves: the hot path for applications. ETag = the deployment commit;
        send it back in If-None-Match to get a cheap 304 until the next deployment.
        (A successful read is answered in front of this route: server/fastpath.py.)"""
        prompt = store.get(name, stage)
        tag = etag(prompt.deployment or prompt.revision)
        if if_none_match is not None and matches(if_none_match, prompt.deployment or "", weak=True):
            return Response(status_code=304, headers={"ETag": tag})
        return JSONResponse(prompt.to_json(), headers={"ETag": tag})

    watcher = Watcher(store, rescan=rescan_setting())
    mirrors = Watcher(store, rescan=watcher.rescan, replicas=True)
    app.state.watchers = (watcher, mirrors)  # serve() closes them first on shutdown

    @app.get("/watch", response_model=WatchOut, tags=["stages"])
    async def watch(
        actor: Reader,
        prompt: Annotated[list[str] | None, Query(description="A prompt to watch; none: all")] = None,
        since: Annotated[str | None, Query(description="The cursor of the last answer seen")] = None,
        timeout: Annotated[float, Query(ge=0, le=MAX_TIMEOUT)] = 30,
        mirror: Annotated[
            bool,
            Query(
                description="Answer what 'promptgit mirror' copies: archived prompts too (as "
                "_archive/NAME), each entry with `refs`, a digest of every ref of the repository"
            ),
        ] = False,
    ) -> dict[str, Any]:
        """Each watched prompt's stage tips, as soon as they differ from the answer whose
        cursor is `since` (or after `timeout` seconds, unchanged): how applications learn,
        within a fraction of a second, that a stage moved."""
        prompts = check_names(prompt) if prompt else None
        return await (mirrors if mirror else watcher).watch(prompts, since, timeout)

    @app.get("/prompts/{name:path}/actions", response_model=ActionsOut, tags=["prompts"])
    def actions(name: str, actor: Reader) -> dict[str, Any]:
        """What the caller's role may do now to each version, and why not: the rules the
        web page's buttons follow."""
        return store.actions(name, actor.role).to_json()

    @app.get("/prompts/{name:path}", response_model=PromptDetailsOut, tags=["prompts"])
    def details(name: str, actor: Reader) -> dict[str, Any]:
        """A prompt: the version, revision and deployment current in each stage."""
        return store.details(name).to_json()

    mount_lifecycle(app, store, auth)  # archive, restore, rename, delete: server/lifecycle.py
    mount_langfuse(app, store, auth)  # Langfuse's public prompt API, read-only: server/langfuse.py
    return app


def _version_detail(store: Store, name: str, version: str, response: Response) -> dict[str, Any]:
    detail = store.version_detail(name, version)
    response.headers["ETag"] = etag(detail.info.revision)
    return api_words(detail.to_json())
