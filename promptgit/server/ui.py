"""The web page: server-rendered HTML over the same Store calls as the CLI.

Plain forms that work without JavaScript (it only adds confirmations), no
build step, no CDN. Every action goes through the library and its rules; an
error comes back as a message in the page. With tokens configured, the page
asks for one (kept in an HttpOnly, SameSite=Strict cookie) and hides or
disables what the token's role may not do.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..errors import ConcurrentUpdate, PromptgitError
from ..lifecycle import why_not
from ..model import Actor
from ..names import STAGES, RefSpec
from ..policy import Action
from ..store import Store
from .auth import Auth
from .errors import AuthError, LoginRequired, status_of

HERE = Path(__file__).parent
COOKIE = "promptgit_token"
LOG_LINES = 15
BADGE = {"DEV": "dev", "TST": "tst", "PROD": "prod"}


def _templates() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    env.filters["q"] = lambda s: quote(str(s), safe="/")
    env.globals["why_not"] = why_not  # the prompt's own buttons: archive, rename (lifecycle.py)
    return env


LABELS = {"edit": "Edit", "test": "Test", "new": "Create new", "delete": "Delete"}


def buttons(actions: Mapping[str, Action]) -> dict[str, dict[str, Any]]:
    """One version's buttons, as the policy answered: hidden when an action does not
    apply, disabled with the policy's reason as its tooltip when it is refused."""
    out = {}
    for key, a in actions.items():
        label = f"Promote to {a.to.upper()}" if key == "promote" and a.to else LABELS.get(key, key)
        out[key] = {"show": a.applies, "enabled": a.allowed, "label": label, "title": a.why, "to": a.to or ""}
    return out


def mount_ui(app: FastAPI, store: Store, auth: Auth) -> None:
    templates = _templates()

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
    def index(request: Request, actor: Actor = signed_in) -> Response:
        folders: dict[str, list[Any]] = {}
        for p in store.list():
            folder, _, _leaf = p.name.rpartition("/")
            folders.setdefault(folder, []).append(p)
        return page("index.html", folders=sorted(folders.items()), actor=actor)

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
        versions = store.versions(name)
        actions = store.actions(name, actor.role)
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
            buttons={v: buttons(acts) for v, acts in actions.versions.items()},
            current=current,
            logs=logs,
            rollback=actions.rollback,
            error=error or request.query_params.get("error", ""),
            notice=notice or request.query_params.get("notice", ""),
            editing=editing or request.query_params.get("edit"),
            editor=editor_files,
            results=results,
        )

    @app.get("/ui/prompts/{name:path}/diff", response_class=HTMLResponse, include_in_schema=False)
    def diff(request: Request, name: str, actor: Actor = signed_in, a: str = "", b: str = "") -> Response:
        try:
            text = store.diff(name, a, b)
        except PromptgitError as e:
            return page("diff.html", status_of(e)[0], name=name, a=a, b=b, lines=[],
                        error=str(e), actor=actor)  # fmt: skip
        return page("diff.html", name=name, a=a, b=b, lines=text.splitlines(), error="", actor=actor)

    @app.get(
        "/ui/prompts/{name:path}/versions/{version}", response_class=HTMLResponse, include_in_schema=False
    )
    def version_page(request: Request, name: str, version: str, actor: Actor = signed_in) -> Response:
        try:
            info = store.version(name, version)  # a stage name means the version it serves
            revisions = store.log(name, info.version)
        except PromptgitError as e:
            return page("error.html", status_of(e)[0], message=str(e), actor=actor)
        return page("version.html", name=name, info=info, revisions=revisions, actor=actor)

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

    @app.post("/ui/prompts/{name:path}/versions/{version}/new", include_in_schema=False)
    def new(request: Request, name: str, version: str) -> Response:
        def do(actor: Actor) -> dict[str, str]:
            info = store.new_version(name, version, message=f"Create from {version}", actor=actor)
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

        return act(request, name, "releaser", do, f"Rolled {stage} back to {version}")

    @app.get("/ui/static/style.css", include_in_schema=False)
    def style() -> Response:
        css = (HERE / "static" / "style.css").read_text()
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})
