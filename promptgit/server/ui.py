"""The web page: server-rendered HTML over the same Store calls as the CLI.

Plain forms that work without JavaScript (it only adds confirmations), no
build step, no CDN. Every action goes through the library and its rules; an
error comes back as a message in the page. With tokens configured, the page
asks for one (kept in an HttpOnly, SameSite=Strict cookie) and hides or
disables what the token's role may not do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..errors import ConcurrentUpdate, PromptgitError
from ..lifecycle import why_not
from ..model import Actor, RevisionInfo, VersionInfo
from ..names import STAGES, RefSpec
from ..policy import Action
from ..store import Store
from .auth import Auth
from .errors import AuthError, LoginRequired, Refused, status_of

HERE = Path(__file__).parent
PAGES = ("archive.html", "base.html", "diff.html", "docs.html", "error.html", "index.html", "lifecycle.html",
         "login.html", "prompt.html", "version.html")  # fmt: skip
COOKIE = "promptgit_token"
LOG_LINES = 15
PROMPTS_PER_PAGE = 200  # the home page lists this many, then links the next page
VERSIONS_PER_PAGE = 50  # a prompt's page shows the newest this many, and whatever a stage serves
BADGE = {"DEV": "dev", "TST": "tst", "PROD": "prod"}


def _read_assets() -> tuple[dict[str, str], str]:
    """The page's templates and stylesheet, read once at start: a server whose package
    files vanish under it (a reinstall) keeps serving, and one started without them
    refuses once, saying so, instead of a 500 on every request."""
    try:
        templates = {name: (HERE / "templates" / name).read_text(encoding="utf-8") for name in PAGES}
        css = (HERE / "static" / "style.css").read_text(encoding="utf-8")
    except OSError as e:
        raise Refused(
            f"the web page's files are missing ({e.filename}): promptgit's installation is "
            "incomplete or was replaced; reinstall promptgit and start the server again"
        ) from None
    return templates, css


def _templates(sources: Mapping[str, str]) -> Any:
    from jinja2 import DictLoader, Environment, select_autoescape

    env = Environment(loader=DictLoader(dict(sources)), autoescape=select_autoescape(["html"]))
    env.filters["q"] = lambda s: quote(str(s), safe="/")
    env.globals["why_not"] = why_not  # the prompt's own buttons: archive, rename (lifecycle.py)
    return env


LABELS = {
    "edit": "Edit",
    "test": "Test",
    "approve": "Approve",
    "new": "Create New Version",
    "delete": "Delete",
}


def _type(schema: Mapping[str, Any]) -> str:
    """A JSON schema in a few characters: `str | None`, `list[VersionOut]`."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_type(s) for s in schema[key])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list[{_type(schema.get('items', {}))}]"
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    return {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}.get(
        kind, str(kind)
    )


def _parameter(p: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": p["name"], "where": p["in"], "required": p.get("required", False),
            "type": _type(p.get("schema", {}))}  # fmt: skip


def _response(code: str, r: Mapping[str, Any]) -> tuple[str, str, str]:
    schema = r.get("content", {}).get("application/json", {}).get("schema")
    return code, r.get("description", ""), _type(schema) if schema else ""


def api_docs(openapi: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAPI document as the /docs page shows it: every route, its parameters,
    body and answers, then every body's fields. Rendered here, so it needs no network."""
    operations = []
    for path, methods in openapi.get("paths", {}).items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            operations.append(
                {
                    "id": op.get("operationId", f"{method}-{path}"),
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": [_parameter(p) for p in op.get("parameters", [])],
                    "body": _type(body) if body else "",
                    "body_ref": "$ref" in (body or {}),
                    "responses": [_response(code, r) for code, r in op.get("responses", {}).items()],
                }
            )
    schemas = []
    for name, schema in sorted(openapi.get("components", {}).get("schemas", {}).items()):
        required = set(schema.get("required", []))
        fields = [
            {"name": f, "type": _type(s), "required": f in required, "description": s.get("description", "")}
            for f, s in schema.get("properties", {}).items()
        ]
        schemas.append((name, fields))
    info = openapi.get("info", {})
    return {
        "title": info.get("title", ""),
        "version": info.get("version", ""),
        "description": info.get("description", ""),
        "operations": operations,
        "schemas": schemas,
    }


def buttons(actions: Mapping[str, Action], actor: Actor | None = None) -> dict[str, dict[str, Any]]:
    """One version's buttons, as the policy answered: hidden when an action does not
    apply, disabled with the policy's reason as its tooltip when it is refused. The
    Approve button names who approves (the token's name)."""
    out = {}
    for key, a in actions.items():
        label = f"Promote to {a.to.upper()}" if key == "promote" and a.to else LABELS.get(key, key)
        if key == "approve" and actor is not None:
            label = f"Approve as {actor.name}"
        out[key] = {"show": a.applies, "enabled": a.allowed, "label": label, "title": a.why, "to": a.to or ""}
    return out


def mount_ui(app: FastAPI, store: Store, auth: Auth) -> None:
    sources, css = _read_assets()
    templates = _templates(sources)

    def who(request: Request, needed: str = "reader") -> Actor | None:
        """The page's actor, or None when a token is needed (the page asks for one)."""
        try:
            return auth.actor(request.cookies.get(COOKIE), needed, "this page")
        except AuthError:
            return None

    def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = templates.get_template(template).render(open=auth.open, stages=STAGES, badge=BADGE, **context)
        return HTMLResponse(html, status_code=status)

    def login(request: Request, message: str = "") -> HTMLResponse:
        return page("login.html", 401, message=message, next=request.url.path)

    def viewer(request: Request) -> Actor:
        """The one login check of every page: the page's actor, or the login form."""
        actor = who(request)
        if actor is None:
            raise LoginRequired()
        return actor

    signed_in = Depends(viewer)

    async def ask_to_login(request: Request, exc: Exception) -> Response:
        return login(request)

    app.add_exception_handler(LoginRequired, ask_to_login)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request, after: str | None = None, actor: Actor = signed_in) -> Response:
        listed = store.list(after=after, limit=PROMPTS_PER_PAGE + 1)
        more = len(listed) > PROMPTS_PER_PAGE
        folders: dict[str, list[Any]] = {}
        for p in listed[:PROMPTS_PER_PAGE]:
            folder, _, _leaf = p.name.rpartition("/")
            folders.setdefault(folder, []).append(p)
        following = listed[PROMPTS_PER_PAGE - 1].name if more else None
        folders_in_order = sorted(folders.items())
        return page("index.html", folders=folders_in_order, actor=actor, after=after, following=following)

    @app.post("/ui/login", include_in_schema=False)
    def do_login(request: Request, token: str = Form(""), next: str = Form("/")) -> Response:
        try:
            auth.actor(token.strip(), "reader", "this page")
        except AuthError as e:
            return page("login.html", 401, message=e.message, next=next)
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict")
        return response

    @app.post("/ui/logout", include_in_schema=False)
    def do_logout() -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    def prompt_page(
        request: Request,
        name: str,
        actor: Actor,
        status: int = 200,
        error: str = "",
        notice: str = "",
        editing: str | None = None,
        draft: Mapping[str, str] | None = None,
        results: Any = None,
    ) -> HTMLResponse:
        every = store.versions(name)
        versions, older, pinned = _page_of(every, request.query_params.get("before"))
        actions = store.actions(name, actor.role)
        versions = [v for v in versions if v.version in actions.versions]  # not deleted meanwhile
        current = {s: store.serving(name, s) for s in STAGES}
        logs = {
            s: store.log(name, RefSpec("stage", s), limit=LOG_LINES) if current[s] else [] for s in STAGES
        }
        editor_files: dict[str, str] = {}
        if editing:
            shown = store.prompt(name, editing)
            editor_files = {
                "prompt": draft["prompt"] if draft else shown.source,
                "tests": draft["tests"] if draft else (shown.tests or ""),
                "summary": draft["summary"] if draft else "",
                "expect": draft["expect"] if draft else shown.revision,
            }
        return page(
            "prompt.html",
            status,
            name=name,
            actor=actor,
            versions=versions,
            older=older,
            before=request.query_params.get("before"),
            pinned=pinned,
            buttons={v.version: buttons(actions.versions[v.version], actor) for v in versions},
            current=current,
            logs=logs,
            rollback=actions.rollback,
            error=error or request.query_params.get("error", ""),
            notice=notice or request.query_params.get("notice", ""),
            editing=editing or request.query_params.get("edit"),
            editor=editor_files,
            results=results,
            reviews=[(r, store.resolve(name, r).version) for r in store.reviews(name)],
        )

    @app.get("/ui/prompts/{name:path}/diff", response_class=HTMLResponse, include_in_schema=False)
    def diff(request: Request, name: str, actor: Actor = signed_in, a: str = "", b: str = "") -> Response:
        try:
            found = store.diff(name, a, b)
        except PromptgitError as e:
            return page("diff.html", status_of(e)[0], name=name, a=a, b=b, diff=None,
                        error=str(e), actor=actor)  # fmt: skip
        return page("diff.html", name=name, a=a, b=b, diff=found, error="", actor=actor)

    @app.get(
        "/ui/prompts/{name:path}/versions/{version}", response_class=HTMLResponse, include_in_schema=False
    )
    def version_page(request: Request, name: str, version: str, actor: Actor = signed_in) -> Response:
        try:
            detail = store.version_detail(name, version)  # a stage or a name means that version
            revisions = store.log(name, detail.info.version)
        except PromptgitError as e:
            return page("error.html", status_of(e)[0], message=str(e), actor=actor)
        runs = [(r, run) for r in revisions if isinstance(r, RevisionInfo) for run in r.tests]
        approve = store.actions(name, actor.role).versions[detail.info.version]["approve"]
        return page(
            "version.html",
            name=name,
            info=detail.info,
            prompt=detail.prompt,
            revisions=revisions,
            last_run=runs[-1] if runs else None,
            approvals=store.approvals(name, detail.info.version),
            approve=buttons({"approve": approve}, actor)["approve"],
            notice=request.query_params.get("notice", ""),
            error=request.query_params.get("error", ""),
            actor=actor,
        )

    @app.get("/ui/prompts/{name:path}", response_class=HTMLResponse, include_in_schema=False)
    def prompt(request: Request, name: str, actor: Actor = signed_in) -> Response:
        try:
            edit = request.query_params.get("edit")
            return prompt_page(request, name, actor, editing=edit)
        except PromptgitError as e:
            return page("error.html", status_of(e)[0], message=str(e), actor=actor)

    def refusal(request: Request, name: str, needed: str) -> Response:
        """The answer to someone whose token may not do this: sign in, or why not."""
        reader = who(request)
        if reader is None:
            return login(request)
        why = f"{reader.name} has role '{reader.role}'; this needs role '{needed}'"
        return prompt_page(request, name, reader, 403, error=why)

    def act(request: Request, name: str, needed: str, do: Any, done: str) -> Response:
        """Run one action; on success go back to the page (PRG), on failure show why there."""
        actor = who(request, needed)
        if actor is None:
            return refusal(request, name, needed)
        try:
            extra = do(actor) or {}
        except PromptgitError as e:
            return prompt_page(request, name, actor, status_of(e)[0], error=str(e))
        query = urlencode({"notice": done, **extra})
        return RedirectResponse(f"/ui/prompts/{quote(name)}?{query}", status_code=303)

    @app.post("/ui/prompts/{name:path}/versions/{version}/edit", include_in_schema=False)
    def edit(
        request: Request,
        name: str,
        version: str,
        prompt_yaml: str = Form(...),
        tests_yaml: str = Form(""),
        summary: str = Form(""),
        expect: str = Form(""),
    ) -> Response:
        actor = who(request, "editor")
        files = {"prompt.yaml": prompt_yaml.replace("\r\n", "\n")}
        if tests_yaml.strip():
            files["tests.yaml"] = tests_yaml.replace("\r\n", "\n")
        draft = {"prompt": files["prompt.yaml"], "tests": tests_yaml, "summary": summary, "expect": expect}
        if actor is None:
            return refusal(request, name, "editor")
        try:
            result = store.edit(
                name, version, files, summary, expect=expect or None, keep_text=False, actor=actor
            )
        except PromptgitError as e:
            # keep the text: the editor stays open with it, beside the error or the conflict
            error = f"Conflict: {e}" if isinstance(e, ConcurrentUpdate) else str(e)
            return prompt_page(
                request, name, actor, status_of(e)[0], error=error, editing=version, draft=draft
            )
        notice = f"Saved {version} as {result.revision[:10]}" if result.changed else f"{version} unchanged"
        return RedirectResponse(f"/ui/prompts/{quote(name)}?{urlencode({'notice': notice})}", status_code=303)

    @app.post("/ui/prompts/{name:path}/versions/{version}/test", include_in_schema=False)
    def test(request: Request, name: str, version: str) -> Response:
        actor = who(request, "editor")
        if actor is None:
            return refusal(request, name, "editor")
        try:
            run = store.test(name, version, actor=actor)
        except PromptgitError as e:
            return prompt_page(request, name, actor, status_of(e)[0], error=str(e))
        return prompt_page(request, name, actor, results=run)

    @app.post("/ui/prompts/{name:path}/versions/{version}/promote", include_in_schema=False)
    def promote(
        request: Request, name: str, version: str, expect: str = Form(""), to: str = Form("")
    ) -> Response:
        def do(actor: Actor) -> None:
            store.promote(name, version, to=to or None, expect=expect or None, actor=actor)

        return act(request, name, "editor", do, f"Promoted {version}")

    @app.post("/ui/prompts/{name:path}/versions/{version}/approve", include_in_schema=False)
    def approve(
        request: Request, name: str, version: str, expect: str = Form(""), comment: str = Form("")
    ) -> Response:
        """Approve the revision the page showed, as the signed-in token's name; back to
        the version's page, which lists the approvals."""
        actor = who(request, "editor")
        if actor is None:
            return refusal(request, name, "editor")
        back = f"/ui/prompts/{quote(name)}/versions/{quote(version)}"
        if not expect:  # the page always sends the revision it showed
            why = "this Approve came without the revision it approves: reload the page and approve again"
            return RedirectResponse(f"{back}?{urlencode({'error': why})}", status_code=303)
        try:
            a = store.approve(name, version, comment, expect=expect, actor=actor)
        except PromptgitError as e:
            return RedirectResponse(f"{back}?{urlencode({'error': str(e)})}", status_code=303)
        said = f"Approved {a.version} at {a.revision[:10]} as {a.stamp.name}"
        if not a.counts:
            said += f" (it does not count: {a.why})"
        return RedirectResponse(f"{back}?{urlencode({'notice': said})}", status_code=303)

    @app.post("/ui/prompts/{name:path}/versions/{version}/new", include_in_schema=False)
    def new(
        request: Request, name: str, version: str, version_name: str = Form(""), description: str = Form("")
    ) -> Response:
        def do(actor: Actor) -> dict[str, str]:
            info = store.new_version(
                name,
                version,
                message=f"Create from {version}",
                version_name=version_name.strip() or None,
                description=description,
                actor=actor,
            )
            return {"edit": info.version}

        return act(request, name, "editor", do, "Created a new version")

    @app.post("/ui/prompts/{name:path}/versions/{version}/delete", include_in_schema=False)
    def delete(request: Request, name: str, version: str) -> Response:
        return act(
            request, name, "editor", lambda a: store.delete(name, version, actor=a), f"Deleted {version}"
        )

    @app.post("/ui/prompts/{name:path}/stages/{stage}/rollback", include_in_schema=False)
    def rollback(request: Request, name: str, stage: str, version: str = Form(...)) -> Response:
        def do(actor: Actor) -> None:
            store.rollback(name, version, stage=stage, actor=actor)

        return act(request, name, "editor", do, f"Rolled {stage} back to {version}")

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs() -> Response:
        """The API's reference, rendered from its OpenAPI document: no CDN, works offline."""
        return page("docs.html", actor=None, **api_docs(app.openapi()))

    @app.get("/ui/static/style.css", include_in_schema=False)
    def style() -> Response:
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


def _page_of(every: Sequence[VersionInfo], before: str | None) -> tuple[list[VersionInfo], str | None, int]:
    """The versions a prompt's page shows, oldest first: the newest VERSIONS_PER_PAGE
    (before `before`, a version on the page before: a cursor that stays good), and every
    version a stage serves now, wherever it is. Also the cursor of the next, older page
    (None: this is the oldest), and how many were pinned from outside the page."""
    at = {v.version: i for i, v in enumerate(every)}
    end = at.get(before, len(every)) if before else len(every)
    start = max(0, end - VERSIONS_PER_PAGE)
    page = list(every[start:end])
    serving = [v for v in every if v.current_in and not start <= at[v.version] < end]
    shown = sorted([*serving, *page], key=lambda v: at[v.version])
    return shown, page[0].version if start and page else None, len(serving)
