"""A prompt's life over HTTP: archive, restore, rename and delete in the API and the
page, and what the old name of a moved prompt answers.

- API: `GET /archive`, `POST /prompts/NAME/archive` and `.../restore` (releaser),
  `POST /prompts/NAME/rename` and `DELETE /prompts/NAME` (admin, archived prompts
  only), `GET /events/NAME`. An archived prompt answers every route with 410 and
  the reason; a renamed one, while its redirect lasts, with 308 to the same route
  under the new name.
- Page: `/ui/archive` lists archived prompts (Restore, Delete for good), and the
  prompt page gets Archive and Rename (`lifecycle.html`). A renamed prompt's old
  page address redirects to the new one.
- git over HTTP: `git_refusal` says why a prompt's repository is not served.

No `from __future__ import annotations` here: FastAPI reads the route signatures
at run time.
"""

from collections.abc import MutableMapping
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from ..errors import InvalidName, PromptArchived, PromptgitError, PromptRenamed
from ..lifecycle import why_not
from ..model import Actor
from ..names import STAGES, check_name
from ..store import Store
from .auth import Auth
from .errors import AuthError, LoginRequired, status_of

PAGES = "/ui/prompts/"
# Where a route names a prompt: the 308 of a renamed one swaps the name after these.
NAMED = ("/prompts/", "/events/", PAGES)
NO_STORE = [(b"cache-control", b"no-store")]


class PromptEventOut(BaseModel):
    event: str = Field(description="archive, restore, rename or delete")
    name: str = Field(description="The prompt's name after the event")
    from_: str | None = Field(alias="from", description="A rename's old name")
    at: str
    by: str
    reason: str


class ArchivedOut(BaseModel):
    name: str
    at: str | None = Field(description="When it was archived (null: archived by hand)")
    by: str | None
    reason: str


class ArchiveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", description="Why, in one line: the 410 of every read says it")


class RenameIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(description="The new name; `folder/name` moves it to another collection")


def mount_lifecycle(app: FastAPI, store: Store, auth: Auth) -> None:
    """The routes, the page and the redirects of renamed prompts (see the module)."""
    Reader = Annotated[Actor, Depends(auth.require("reader"))]
    Releaser = Annotated[Actor, Depends(auth.require("releaser"))]
    Admin = Annotated[Actor, Depends(auth.require("admin"))]
    tags: list[Any] = ["lifecycle"]
    gone: dict[int | str, dict[str, Any]] = {
        308: {"description": "Renamed: Location is the same route under the new name"},
        410: {"description": "Archived: the message says by whom, when and why"},
    }

    @app.get("/archive", response_model=list[ArchivedOut], tags=tags)
    def archived(actor: Reader) -> list[dict[str, Any]]:
        """The archived prompts, with who archived each, when and why."""
        return [a.to_json() for a in store.archived()]

    @app.post("/prompts/{name:path}/archive", response_model=PromptEventOut, tags=tags, responses=gone)
    def archive(name: str, actor: Releaser, body: ArchiveIn | None = None) -> dict[str, Any]:
        """Archive a prompt: its repository is kept whole, out of every listing and read
        (410) until restored."""
        return store.archive(name, actor=actor, reason=body.reason if body else "").to_json()

    @app.post("/prompts/{name:path}/restore", response_model=PromptEventOut, tags=tags)
    def restore(name: str, actor: Releaser) -> dict[str, Any]:
        """Bring an archived prompt back under its name."""
        return store.restore(name, actor=actor).to_json()

    @app.post("/prompts/{name:path}/rename", response_model=PromptEventOut, tags=tags, responses=gone)
    def rename(name: str, body: RenameIn, actor: Admin) -> dict[str, Any]:
        """Rename a prompt or move it to another collection, with all of its history; for
        `rename_redirect_days` the old name answers 308 to the new one."""
        return store.rename(name, body.to, actor=actor).to_json()

    @app.delete("/prompts/{name:path}", status_code=204, tags=tags, responses=gone)
    def delete_prompt(name: str, actor: Admin) -> Response:
        """Delete an archived prompt and all of its history, for good (409 if it is not archived)."""
        store.delete_prompt(name, actor=actor)
        return Response(status_code=204)

    @app.get("/events/{name:path}", response_model=list[PromptEventOut], tags=tags, responses=gone)
    def events(name: str, actor: Reader) -> list[dict[str, Any]]:
        """A prompt's archive, restore, rename and delete events, newest first (also once
        it is archived or deleted)."""
        return [e.to_json() for e in store.events(name)]

    async def renamed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PromptRenamed)
        status, code = status_of(exc)
        body = {"error": {"code": code, "message": str(exc)}}
        location = _moved(request.url.path, request.url.query, exc.name, exc.new)
        if location is None:
            return JSONResponse(body, status_code=404)
        return JSONResponse(body, status_code=status, headers={"Location": location})

    app.add_exception_handler(PromptRenamed, renamed)
    app.add_middleware(MovedPrompts, store=store)
    _mount_pages(app, store, auth)


def _moved(path: str, query: str, old: str, new: str) -> str | None:
    """The same route, with the prompt's new name in place of its old one."""
    for prefix in NAMED:
        head = prefix + old
        if path == head or path.startswith(head + "/"):
            return prefix + quote(new, safe="/") + path[len(head) :] + (f"?{query}" if query else "")
    return None


class MovedPrompts:
    """What a moved prompt's old address answers must not outlive the move:

    - the page's old addresses of a renamed prompt redirect to the new ones (the
      page's handlers show errors in the page, so the 308 handler never sees theirs);
    - a 308 or a 410 is never stored by a browser or a proxy (both are cacheable by
      default, and would keep a restored prompt 'archived', or an old name that a new
      prompt took, or whose redirect ended, redirected)."""

    def __init__(self, app: Any, store: Store) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(PAGES):
            new = self._renamed(scope["path"][len(PAGES) :])
            if new is not None:
                old, target = new
                query = scope.get("query_string", b"").decode("latin-1")
                location = _moved(scope["path"], query, old, target) or "/"
                headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0")]
                await send({"type": "http.response.start", "status": 308, "headers": headers + NO_STORE})
                await send({"type": "http.response.body", "body": b""})
                return

        async def not_stored(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] in (308, 410):
                message["headers"] = [*message.get("headers", []), *NO_STORE]
            await send(message)

        await self.app(scope, receive, not_stored)

    def _renamed(self, rest: str) -> tuple[str, str] | None:
        """(old, new) when the longest prompt name `rest` starts with was renamed."""
        parts = rest.split("/")
        for i in range(len(parts), 0, -1):
            candidate = "/".join(parts[:i])
            try:
                check_name(candidate)
            except InvalidName:
                continue
            if (self.store.path / f"{candidate}.git" / "HEAD").is_file():
                return None  # a prompt: its own page
            new = self.store.renamed_to(candidate)
            if new is not None:
                return candidate, new
        return None


def git_refusal(store: Store, name: str, base: str) -> tuple[int, str]:
    """Why git over HTTP does not serve `name`: 410 archived, or where it went (git
    follows no 308 on a push, so the message names the new URL), or 404."""
    gone = store.whereabouts(name)
    if isinstance(gone, PromptArchived):
        return 410, str(gone)
    if isinstance(gone, PromptRenamed):
        url = f"{base}/git/{gone.new}.git"
        return 404, (
            f"prompt '{name}' was renamed to '{gone.new}': its repository is now {url} "
            f"(git remote set-url origin {url})"
        )
    return 404, f"no prompt named '{name}'"


# --- the page ------------------------------------------------------------------------


def _mount_pages(app: FastAPI, store: Store, auth: Auth) -> None:
    from .ui import BADGE, COOKIE, _read_assets, _templates

    templates = _templates(_read_assets()[0])  # read once at start, like the other pages

    def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = templates.get_template(template).render(open=auth.open, stages=STAGES, badge=BADGE, **context)
        return HTMLResponse(html, status_code=status)

    def who(request: Request) -> Actor:
        try:
            return auth.actor(request.cookies.get(COOKIE), "reader", "this page")
        except AuthError:
            raise LoginRequired() from None

    def listing(request: Request, status: int = 200, error: str = "", notice: str = "") -> HTMLResponse:
        actor = who(request)
        return page(
            "archive.html",
            status,
            actor=actor,
            archived=store.archived(),
            error=error or request.query_params.get("error", ""),
            notice=notice or request.query_params.get("notice", ""),
            restore_why=why_not("restore", actor.role),
            delete_why=why_not("delete-prompt", actor.role),
        )

    def act(request: Request, do: Any, back: str) -> Response:
        """Run one action as the page's actor (the library checks the role); then go
        where `do` says (PRG), or back to `back` with the error."""
        try:
            target = do(who(request))
        except PromptgitError as e:
            if back == "/ui/archive":
                return listing(request, status_of(e)[0], error=str(e))
            return RedirectResponse(f"{back}?{urlencode({'error': str(e)})}", status_code=303)
        return RedirectResponse(target, status_code=303)

    def notice(path: str, text: str) -> str:
        return f"{path}?{urlencode({'notice': text})}"

    @app.get("/ui/archive", response_class=HTMLResponse, include_in_schema=False)
    def archive_page(request: Request) -> Response:
        return listing(request)

    @app.post("/ui/prompts/{name:path}/archive", include_in_schema=False)
    def archive(request: Request, name: str, reason: str = Form("")) -> Response:
        def do(actor: Actor) -> str:
            store.archive(name, actor=actor, reason=reason)
            return notice("/ui/archive", f"Archived {name}")

        return act(request, do, PAGES + quote(name))

    @app.post("/ui/prompts/{name:path}/rename", include_in_schema=False)
    def rename(request: Request, name: str, to: str = Form(...)) -> Response:
        def do(actor: Actor) -> str:
            store.rename(name, to.strip(), actor=actor)
            return notice(PAGES + quote(to.strip()), f"Renamed {name} to {to.strip()}")

        return act(request, do, PAGES + quote(name))

    @app.post("/ui/archive/{name:path}/restore", include_in_schema=False)
    def restore(request: Request, name: str) -> Response:
        def do(actor: Actor) -> str:
            store.restore(name, actor=actor)
            return notice(PAGES + quote(name), f"Restored {name}")

        return act(request, do, "/ui/archive")

    @app.post("/ui/archive/{name:path}/delete", include_in_schema=False)
    def delete(request: Request, name: str) -> Response:
        def do(actor: Actor) -> str:
            store.delete_prompt(name, actor=actor)
            return notice("/ui/archive", f"Deleted {name} for good")

        return act(request, do, "/ui/archive")
