"""Langfuse's public prompt API, read-only, so that the Langfuse SDKs (and tools built
on them: promptfoo's `langfuse://` prompts, LiteLLM) read prompts from promptgit
with only their host and keys changed.

    GET /api/public/v2/prompts/NAME?label=L | ?version=N   one prompt, Langfuse's shape
    GET /api/public/v2/prompts?page=&limit=&name=&label=&tag=&version=   Langfuse's paging
    any other method on these paths                         405: writes stay with promptgit

- NAME arrives URL-encoded (`support%2Fgreeting`): collections work as in Langfuse's folders.
- Labels are stages: `production` is prod, `staging` is tst, and `dev`, `tst`, `prod`
  name themselves; `latest` is the highest version number, drafts included. No
  label and no version means production, as in the SDKs.
- Versions are integers: vMAJOR.MINOR is MAJOR * 1000 + MINOR (v2.3 is 2003), stable
  for ever. A version whose minor number is 1000 or more has no integer and is
  refused, never renumbered.
- Authentication is HTTP Basic with a promptgit token as the password (Langfuse's
  secret key); the user name (the public key) is ignored. Role reader.
- Errors are Langfuse's `{"message", "error"}` (`PublicApiError`).

No `from __future__ import annotations` here: FastAPI reads the route signatures
at run time.
"""

import json
from collections.abc import Mapping, MutableMapping
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from ..errors import InvalidInput, NotFound, PromptgitError, PromptRenamed, RefNotFound
from ..model import Actor, Prompt
from ..names import STAGES, RefSpec, Version
from ..store import Store
from .auth import Auth, basic_password, bearer
from .bodies import Bodies
from .errors import AuthError, PublicApiError, challenge, public_error_body, status_of

PROMPTS = "/api/public/v2/prompts"

# A label the API is asked for -> the stage it reads; `latest` is handled apart.
LABELS = {"production": "prod", "staging": "tst", "dev": "dev", "tst": "tst", "prod": "prod"}
# A stage -> the label a response shows for it (Langfuse's words where it has them).
STAGE_LABELS = {"prod": "production", "tst": "staging", "dev": "dev"}
LATEST = "latest"
DEFAULT_LABEL = "production"
KNOWN_LABELS = "production (prod), staging (tst), dev, tst, prod, latest (the highest version number)"

MINORS = 1000  # v2.3 -> 2 * MINORS + 3
MAX_NUMBER_DIGITS = 9  # major has at most 6 digits (names.py): 999999 * 1000 + 999 has 9
MAX_LIMIT, DEFAULT_LIMIT, MAX_PAGE = 100, 10, 1_000_000


def number(version: Version) -> int | None:
    """The integer Langfuse knows `version` by, or None when its minor number has none."""
    return version.major * MINORS + version.minor if version.minor < MINORS else None


def version_of(n: int) -> Version:
    """The version an integer names (every integer names exactly one)."""
    return Version(n // MINORS, n % MINORS)


# --- the wire shapes (Langfuse's, as its SDKs parse them) ----------------------------


class LangfuseChatMessage(BaseModel):
    role: str
    content: str


class LangfusePromptOut(BaseModel):
    name: str
    version: int = Field(description="vMAJOR.MINOR as MAJOR * 1000 + MINOR: v2.3 is 2003")
    type: Literal["text", "chat"]
    prompt: str | list[LangfuseChatMessage] = Field(description="The template, or a chat's messages")
    config: dict[str, Any] = Field(description="prompt.yaml's parameters, and its model as `model`")
    labels: list[str] = Field(description="production, staging, dev: the stages serving it; latest")
    tags: list[str]
    commitMessage: str | None = Field(description="The served revision's change summary")


class LangfusePromptMetaOut(BaseModel):
    name: str
    type: Literal["text", "chat"]
    versions: list[int]
    labels: list[str]
    tags: list[str]
    lastUpdatedAt: str
    lastConfig: dict[str, Any]


class LangfusePageMeta(BaseModel):
    page: int
    limit: int
    totalItems: int
    totalPages: int


class LangfusePromptListOut(BaseModel):
    data: list[LangfusePromptMetaOut]
    meta: LangfusePageMeta


class LangfuseErrorOut(BaseModel):
    message: str
    error: str = Field(description="The kind, as Langfuse names it (e.g. LangfuseNotFoundError)")


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Responses documented with Langfuse's error body (overriding the app's own)."""
    texts = {
        308: "The prompt was renamed: Location is the same request under its new name",
        400: "Invalid request: both label and version, a version that is not an integer, ...",
        401: "No token in the Basic auth password, or an unknown one",
        403: "The server answers only to loopback (no tokens configured)",
        404: "No such prompt, label or version",
        410: "The prompt is archived",
        422: "The version's minor number is 1000 or more: it has no Langfuse integer",
        503: "The server's promptgit.yaml does not validate",
    }
    return {s: {"model": LangfuseErrorOut, "description": texts[s]} for s in statuses}


# --- the routes ----------------------------------------------------------------------


def mount_langfuse(app: FastAPI, store: Store, auth: Auth) -> None:
    """Langfuse's prompt routes on `app` (see the module)."""
    Reader = Annotated[Actor, Depends(_reader(auth))]
    tags: list[Any] = ["langfuse"]

    @lru_cache(maxsize=4096)
    def served(name: str, version: str, revision: str) -> tuple[str, Any, dict[str, Any], str]:
        """(type, prompt, config, commitMessage) of one revision: a revision never
        changes, so this is read once (and bounded: an LRU of 4096 revisions)."""
        prompt = store.prompt(name, RefSpec("version", version))
        if prompt.revision != revision:  # a stage serves an older revision (a rollback restore)
            prompt = store.prompt(name, RefSpec("revision", revision))
        summary = next(
            (r.summary for r in store.log(name, RefSpec("version", version)) if r.revision == revision),  # type: ignore[union-attr]
            "",
        )
        content = prompt.content
        config = {**content.get("parameters", {})}
        if content.get("model") is not None:
            config["model"] = content["model"]
        if prompt.is_chat:
            messages = [{"role": m["role"], "content": m["content"]} for m in content["messages"]]
            return "chat", messages, config, summary
        return "text", content["template"], config, summary

    newest: dict[str, tuple[str, Version]] = {}  # name -> (dev's tip, the latest version then)

    def latest(name: str, current: Mapping[str, Prompt | None]) -> Version | None:
        """The highest version number (`_latest`), kept while dev's tip stays: a new
        version always moves dev (its `create` deployment), and only a draft dev does
        not serve can be deleted, so a kept one dev no longer serves is checked to
        exist. Listing a prompt's refs costs more than the rest of a read together."""
        dev = current["dev"]
        tip = dev.deployment if dev is not None else None
        cached = newest.get(name)
        if (
            dev is not None
            and cached is not None
            and cached[0] == tip
            and (dev.version == str(cached[1]) or _exists(store, name, cached[1]))
        ):
            return cached[1]
        found = _latest(store, name)
        if tip is not None and found is not None:
            newest[name] = (tip, found)
        return found

    def body(
        name: str, version: Version, revision: str, current: Mapping[str, Prompt | None]
    ) -> dict[str, Any]:
        n = _number_or_refuse(name, version)
        kind, prompt, config, summary = served(name, str(version), revision)
        labels = [STAGE_LABELS[s] for s, p in current.items() if p is not None and p.version == str(version)]
        if version == latest(name, current):
            labels.append(LATEST)
        return {
            "name": name,
            "version": n,
            "type": kind,
            "prompt": prompt,
            "config": config,
            "labels": labels,
            "tags": [],
            "commitMessage": summary or None,
        }

    def read(name: str, label: str | None, version: str | None) -> tuple[dict[str, Any], bool]:
        """One prompt's body for `label` or `version`, and whether it holds for as long
        as the three stage tips do (dev serves the latest version: see `latest`) and,
        for a version, its own branch and tag."""
        if label and version:
            raise PublicApiError(
                400,
                f"Cannot specify both version and label: ask for label={label!r} or for "
                f"version={version}, not both",
            )
        number = _integer("version", version, MAX_NUMBER_DIGITS) if version else None
        wanted = label or DEFAULT_LABEL
        current = {stage: store.serving(name, stage) for stage in STAGES}  # one ref read each
        if number is not None:
            v = version_of(number)
            revision = store.resolve(name, RefSpec("version", str(v))).revision
        elif wanted == LATEST:
            found = latest(name, current)
            if found is None:
                what = _what(label, version)
                raise PublicApiError(404, f"Prompt not found: '{name}' {what}: it has no versions")
            v = found
            revision = store.resolve(name, RefSpec("version", str(v))).revision
        elif wanted in LABELS:
            stage = LABELS[wanted]
            now = current[stage] or store.get(name, stage)  # nothing there: get says so
            v, revision = Version.parse(now.version), now.revision
        else:
            raise PublicApiError(
                404,
                f"Prompt not found: '{name}' {_what(label, version)}: promptgit serves the labels "
                f"{KNOWN_LABELS}",
            )
        dev = current["dev"]
        holds = dev is not None and str(latest(name, current)) == dev.version
        return body(name, v, revision, current), holds

    @app.get(
        PROMPTS + "/{name:path}",
        response_model=LangfusePromptOut,
        responses=_errors(308, 400, 401, 403, 404, 410, 422, 503),
        tags=tags,
    )
    def get_prompt(
        name: str,
        request: Request,
        actor: Reader,
        label: Annotated[str | None, Query(description="production, staging, dev, tst, prod, latest")] = None,
        version: Annotated[str | None, Query(description="An integer: v2.3 is 2003")] = None,
    ) -> JSONResponse:
        """One prompt as Langfuse's SDKs read it: by label (a stage, or latest; default
        production) or by version (an integer), never both. (A successful read is
        answered in front of this route: `LangfuseReads`.)"""
        try:
            return JSONResponse(read(name, label, version)[0])
        except PromptgitError as e:
            raise _public(e, request, f"Prompt not found: '{name}' {_what(label, version)}") from None

    @app.get(
        PROMPTS,
        response_model=LangfusePromptListOut,
        responses=_errors(400, 401, 403, 503),
        tags=tags,
    )
    def list_prompts(
        request: Request,
        actor: Reader,
        page: Annotated[str | None, Query(description="From 1 (default 1)")] = None,
        limit: Annotated[str | None, Query(description="1 to 100 (default 10)")] = None,
        name: Annotated[str | None, Query(description="Only this prompt")] = None,
        label: Annotated[str | None, Query(description="Only versions with this label")] = None,
        tag: Annotated[str | None, Query(description="Only prompts with this tag (there are none)")] = None,
        version: Annotated[str | None, Query(description="Only this version (an integer)")] = None,
    ) -> JSONResponse:
        """The prompts, by name, with their version integers and labels, in Langfuse's
        pages (`meta`: page, limit, totalItems, totalPages)."""
        p = _integer("page", page, 7, 1, MAX_PAGE) if page else 1
        size = _integer("limit", limit, 3, 1, MAX_LIMIT) if limit else DEFAULT_LIMIT
        only = _integer("version", version, MAX_NUMBER_DIGITS) if version else None
        wanted = None if not label else STAGE_LABELS.get(LABELS.get(label, ""), label)
        try:
            listed = store.names()
            if name:  # read one prompt, not the store
                listed = [name] if name in listed else []
            if tag:
                listed = []  # promptgit prompts carry no tags
            if only is None and wanted is None:  # every prompt is listed: read only the page's
                shown = [(prompt, _rows(store, prompt)) for prompt in listed[(p - 1) * size : p * size]]
                total = len(listed)
            else:  # the prompts with a matching version: read them all
                matches = []
                for prompt in listed:
                    rows = [
                        (n, v, ls)
                        for n, v, ls in _rows(store, prompt)
                        if (only is None or n == only) and (wanted is None or wanted in ls)
                    ]
                    if rows:
                        matches.append((prompt, rows))
                total = len(matches)
                shown = matches[(p - 1) * size : p * size]
            data = [_meta(store, prompt, rows, served) for prompt, rows in shown]
        except PromptgitError as e:  # say, a prompt archived while this list was read
            raise _public(e, request, "Prompts not listed") from None
        return JSONResponse(
            {
                "data": data,
                "meta": {"page": p, "limit": size, "totalItems": total, "totalPages": -(-total // size)},
            }
        )

    for path in (PROMPTS, PROMPTS + "/{name:path}"):  # GET matches first; the rest land here
        app.router.routes.append(Route(path, _ReadOnly(), include_in_schema=False))
    app.state.langfuse_reads = LangfuseReads(store, auth, read)


class LangfuseReads:
    """`GET /api/public/v2/prompts/NAME` (no query, one `label=` or one `version=`), the
    read the SDKs repeat, answered in raw ASGI in front of FastAPI, as
    server/fastpath.py does the stage read: the route's own `read`, its body kept with
    the three stage tips it was read at (a stage tip never comes back), and for a
    version its branch and tag, while dev serves the latest version (then no version
    can be added or deleted without moving dev). A request it cannot answer (any
    error, any other query) goes on to the route, so every error is the route's."""

    def __init__(self, store: Store, auth: Auth, read: Any) -> None:
        self.store, self.auth, self.read = store, auth, read
        self._bodies = Bodies()  # (name, label or version number) -> the body, by the refs read

    async def __call__(self, scope: MutableMapping[str, Any], send: Any) -> bool:
        """Answer the request if it is such a read and succeeds; whether it did."""
        path, query = scope["path"], scope["query_string"]
        if scope["method"] != "GET" or not path.startswith(PROMPTS + "/") or len(path) == len(PROMPTS) + 1:
            return False
        label = version = None
        if query.startswith(b"label="):
            label = query.removeprefix(b"label=").decode("latin-1")
            if not (label in LABELS or label == LATEST):
                return False
        elif query.startswith(b"version="):
            version = query.removeprefix(b"version=").decode("latin-1")
        elif query:
            return False
        name = path[len(PROMPTS) + 1 :]
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"").decode("latin-1")
        token = basic_password(header) or bearer(header)
        try:
            if token is None and not self.auth.open:
                return False
            self.auth.actor(token, "reader")
            tips = tuple(self.store.tips(name).values())  # the stamp: read before the body
            key: tuple[str, str | int | None] = (name, label)
            if version is not None:  # not a whole number: the route's 400
                number = _integer("version", version, MAX_NUMBER_DIGITS)
                v = version_of(number)
                repo = self.store.repository(name)
                tips += (repo.ref(v.branch), repo.ref(v.tag))
                key = (name, number)  # 1000 and 01000 are one version, and one body
            body = self._bodies.get(key, tips)
            if body is None:
                content, holds = await run_in_threadpool(self.read, name, label, version)
                body = json.dumps(  # as Starlette's JSONResponse renders it, byte for byte
                    content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
                ).encode()
                if holds:
                    self._bodies.put(key, tips, body)
        except Exception:  # the route answers it, with its own error for it
            return False
        headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True


# --- helpers -------------------------------------------------------------------------


class _ReadOnly:
    """Every other method on Langfuse's routes: 405. An ASGI app, not a function, so that
    Starlette routes every method to it, unknown ones included."""

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        method = str(scope["method"])[:20]
        message = (
            f"{method} is not served here: promptgit's Langfuse API is read-only (GET). Create, "
            "edit and promote prompts with promptgit's own API (/prompts, see /docs) or its CLI, "
            "which enforce the stage rules"
        )
        answer = JSONResponse(
            public_error_body(405, message), status_code=405, headers={"Allow": "GET, HEAD"}
        )
        await answer(scope, receive, send)


def _reader(auth: Auth) -> Any:
    """A dependency: the request's actor, from the Basic auth password (or a Bearer
    token), with role reader; else a PublicApiError with a Basic challenge."""

    async def dependency(request: Request) -> Actor:
        header = request.headers.get("authorization")
        token = basic_password(header) or bearer(header)
        try:
            if token is None and not auth.open:
                raise AuthError(401, "no token")
            return auth.actor(token, "reader")
        except AuthError as e:
            message = {
                401: (
                    "send HTTP Basic auth with a promptgit token as the password (the Langfuse "
                    "secret key; the public key may be anything): "
                    + ("this request has none" if token is None else "this one is unknown or revoked")
                    + ". An admin creates one with 'promptgit token create NAME --role reader'"
                ),
            }.get(e.status, e.message)
            raise PublicApiError(e.status, message, challenge(e.status, "Basic")) from None

    return dependency


def _public(e: PromptgitError, request: Request, not_found: str) -> PublicApiError:
    """A library error as the Langfuse API answers it: not found in Langfuse's words
    (then promptgit's reason), a rename as a 308 to the same request under the new name,
    bad input as a 400."""
    if isinstance(e, PromptRenamed):
        query = request.url.query
        location = f"{PROMPTS}/{quote(e.new, safe='')}" + (f"?{query}" if query else "")
        return PublicApiError(308, str(e), {"Location": location}, code="renamed")
    status, code = status_of(e)
    if isinstance(e, InvalidInput):
        return PublicApiError(400, str(e))
    if isinstance(e, NotFound) and status == 404:
        return PublicApiError(404, f"{not_found}: {e}")
    return PublicApiError(status, str(e), code=code)


def _what(label: str | None, version: str | None) -> str:
    """What a request asked for, in its error messages."""
    if version:
        n = _integer("version", version, MAX_NUMBER_DIGITS)
        return f"with version {version} ({version_of(n)})"
    return f"with label '{label or DEFAULT_LABEL}'"


def _integer(field: str, text: str, digits: int, low: int = 0, high: int | None = None) -> int:
    """A query parameter that must be a whole number (bounded in length, then in value)."""
    top = high if high is not None else 10**digits - 1
    if not (text.isascii() and text.isdigit() and len(text) <= digits) or not low <= int(text) <= top:
        example = " (v2.3 is 2003)" if field == "version" else ""
        raise PublicApiError(
            400, f"{field} must be a whole number from {low} to {top}{example}, not {text[:40]!r}"
        )
    return int(text)


def _exists(store: Store, name: str, version: Version) -> bool:
    try:
        store.resolve(name, RefSpec("version", str(version)))
    except RefNotFound:
        return False
    return True


def _latest(store: Store, name: str) -> Version | None:
    """The highest version number, drafts included (Langfuse's `latest`)."""
    versions = [Version.parse(v) for v in store.version_ids(name)]
    return max(versions) if versions else None


def _number_or_refuse(name: str, version: Version) -> int:
    n = number(version)
    if n is None:
        raise PublicApiError(
            422,
            f"{name}@{version} has no Langfuse version number: its minor number is "
            f"{MINORS} or more, and integers are MAJOR * {MINORS} + MINOR. Read it with "
            f"promptgit's own API (GET /prompts/{name}/versions/{version}), or release a "
            f"version with a smaller number ('promptgit new-version {name} --major')",
            code="UnmappableVersion",
        )
    return n


def _rows(store: Store, name: str) -> list[tuple[int, Version, list[str]]]:
    """(integer, version, labels) of each version that has an integer, oldest first."""
    stages: dict[str, list[str]] = {}
    for stage in STAGES:
        p = store.serving(name, stage)
        if p is not None:
            stages.setdefault(p.version, []).append(STAGE_LABELS[stage])
    versions = sorted(Version.parse(v) for v in store.version_ids(name))
    latest = versions[-1] if versions else None
    out = []
    for v in versions:
        n = number(v)
        if n is not None:
            out.append((n, v, [*stages.get(str(v), []), *([LATEST] if v == latest else [])]))
    return out


def _meta(store: Store, name: str, rows: list[tuple[int, Version, list[str]]], served: Any) -> dict[str, Any]:
    """One prompt of the list: its matching versions, their labels, and the newest one's
    type and config."""
    newest = rows[-1][1]
    kind, _prompt, config, _summary = served(name, str(newest), store.resolve(name, str(newest)).revision)
    wanted = {str(v) for _n, v, _ls in rows}
    updated = max(
        (info.updated for info in store.versions(name) if info.version in wanted), key=lambda p: p.time
    )
    return {
        "name": name,
        "type": kind,
        "versions": [n for n, _v, _ls in rows],
        "labels": sorted({label for _n, _v, ls in rows for label in ls}),
        "tags": [],
        "lastUpdatedAt": updated.at,
        "lastConfig": config,
    }
