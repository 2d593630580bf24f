"""`promptgit serve`: the JSON API, git over HTTP and the web page, in one process.

/git/NAME.git/...   git's smart HTTP protocol (raw ASGI, `git http-backend`)
/prompts/...        the JSON API (FastAPI; /docs and /openapi.json)
/                   the web page
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..model import Actor
from ..store import Store
from .auth import Auth

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


class Refused(Exception):
    """The server will not start as asked; the message says why and what to do."""


def build(store: Store, local: Actor) -> ASGIApp:
    """The whole server as one ASGI app: /git goes to git, the rest to FastAPI."""
    from .api import create_api
    from .githttp import GitHttp
    from .ui import mount_ui

    auth = Auth(store, local)
    api = create_api(store, auth)
    mount_ui(api, store, auth)
    git = GitHttp(auth)

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/git/"):
            await git(scope, receive, send)
        else:
            await api(scope, receive, send)

    return app


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_bind(store: Store, host: str) -> None:
    """With no tokens, anyone who can connect may do anything: loopback only."""
    if not store.config.tokens and host not in LOOPBACK:
        raise Refused(
            f"refusing to serve on {host} without tokens: anyone who can reach it could "
            "change any prompt. Create tokens first ('promptgit token create NAME --role ROLE'), "
            "or bind 127.0.0.1"
        )


def serve(store: Store, host: str, port: int, local: Actor, say: Callable[[str], None]) -> None:
    import uvicorn

    store.names()  # a missing store is a clear error before anything listens
    check_bind(store, host)
    if not store.config.tokens:
        say(
            f"promptgit: no tokens configured: serving {store.path} on http://{host}:{port} "
            f"to this machine only, and everyone may do everything as {local}"
        )
    else:
        say(f"promptgit: serving {store.path} on http://{host}:{port} (tokens required)")
    uvicorn.run(build(store, local), host=host, port=port, log_level="warning", access_log=False)
