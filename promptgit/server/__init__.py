"""`promptgit serve`: the JSON API, git over HTTP and the web page, in one process.

/git/NAME.git/...   git's smart HTTP protocol (raw ASGI, `git http-backend`)
/prompts/...        the JSON API (FastAPI; /docs and /openapi.json)
/api/public/...     Langfuse's public prompt API, read-only (server/langfuse.py)
/                   the web page
"""

from __future__ import annotations

import errno
import json
import os
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .. import handoff
from ..model import Actor
from ..store import Store
from .auth import Auth, bearer
from .errors import PUBLIC, AuthError, Refused, challenge, error_body, public_error_body

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


MAX_BODY = 4 * 1024 * 1024  # an API or page request; pushes to /git stream through
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
]


def build(
    store: Store,
    local: Actor,
    *,
    open: bool | None = None,
    stopping: list[Callable[[], None]] | None = None,
) -> ASGIApp:
    """The whole server as one ASGI app: /git goes to git, the rest to FastAPI,
    both behind one guard (see `_refusal`). `stopping` receives what to call on the
    event loop when the server begins to shut down."""
    from .api import create_api
    from .fastpath import StageReads
    from .githttp import GitHttp
    from .ui import mount_ui

    auth = Auth(store, local, open=open)
    api = create_api(store, auth)
    if stopping is not None:
        stopping.extend(w.close for w in api.state.watchers)
    mount_ui(api, store, auth)
    git = GitHttp(auth)
    fast_reads = (StageReads(store), api.state.langfuse_reads)  # answered in front of FastAPI

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await api(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = _refusal(auth, scope, headers)
        if refusal is not None:
            return await _json_error(send, *refusal, public=scope["path"].startswith(PUBLIC))

        head = scope["method"] == "HEAD"
        if head:  # every GET route answers HEAD: the GET's status and headers, no body
            scope = {**scope, "method": "GET"}

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        if scope["path"].startswith("/git/"):
            return await git(scope, receive, send_with_headers)
        for fast in fast_reads:
            if await fast(scope, send_with_headers):
                return None
        await api(scope, _capped(receive), send_with_headers)

    return app


def _refusal(
    auth: Auth, scope: MutableMapping[str, Any], headers: dict[str, str]
) -> tuple[int, str, str] | None:
    """Why a request is refused before any route sees it, or None.

    - Open (no tokens): the server trusts whoever reaches it, so it answers only
      requests addressed to a loopback name (a DNS-rebinding page cannot use it).
    - A state change from another origin is refused (a web page elsewhere cannot
      make a visitor's browser change prompts; git and curl send no Origin).
    - A body too large for any API call is refused before it is read, and an API
      call without a valid token is refused before its body is read. (Langfuse's
      read-only API under /api/public decides on the exact request, in its routes:
      its token comes as a Basic auth password, and it reads no body.)
    """
    try:
        is_open = auth.open
    except AuthError as e:
        return e.status, e.code, e.message
    host = headers.get("host", "")
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    if is_open and hostname not in ("127.0.0.1", "localhost", "[::1]", "::1"):
        return (
            403,
            "forbidden",
            (
                "this server has no tokens, so it answers only to 127.0.0.1 or localhost, "
                f"not {hostname or '?'}"
            ),
        )
    if scope["method"] not in SAFE_METHODS:
        fetch_site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        if (fetch_site and fetch_site not in ("same-origin", "none")) or (
            origin and origin.split("://", 1)[-1] != host
        ):
            return 403, "forbidden", "a request from another site may not change prompts"
    if scope["path"].startswith("/git/"):
        return None
    if int(headers.get("content-length") or 0) > MAX_BODY:
        return 413, "too_large", f"the request body is over {MAX_BODY // (1024 * 1024)} MiB"
    if scope["path"].startswith("/prompts") and not is_open:
        try:
            auth.actor(bearer(headers.get("authorization")), "reader")
        except AuthError as e:
            return e.status, e.code, e.message
    return None


def _capped(receive: Any) -> Any:
    """A receive that stops a chunked body once it passes MAX_BODY (as if the
    client went away), so nothing reads an endless body into memory."""
    seen = 0

    async def wrapped() -> Any:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                return {"type": "http.disconnect"}
        return message

    return wrapped


async def _json_error(send: Any, status: int, code: str, message: str, *, public: bool = False) -> None:
    """A refusal in the API's error shape, or in Langfuse's for its API (`public`)."""
    if public:
        body = json.dumps(public_error_body(status, message, code)).encode()
    else:
        body = error_body(code, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scheme = "Basic" if public else "Bearer"
    headers += [(k.lower().encode(), v.encode()) for k, v in (challenge(status, scheme) or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers + SECURITY_HEADERS})
    await send({"type": "http.response.body", "body": body})


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_bind(store: Store, host: str) -> None:
    """With no tokens, anyone who can connect may do anything: loopback only."""
    if not store.config.tokens and host not in LOOPBACK:
        raise Refused(
            f"refusing to serve on {host} without tokens: anyone who can reach it could "
            "change any prompt. Create tokens first ('promptgit token create NAME --role ROLE'), "
            "or bind 127.0.0.1"
        )


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, or Refused saying why not (before anything says
    "serving"). uvicorn serves on it, so nothing can take the port in between."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise Refused(
                f"port {port} is in use on {host}: stop what listens there, "
                "or serve on another port with --port"
            ) from None
        raise Refused(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def serve(store: Store, host: str, port: int, local: Actor, say: Callable[[str], None]) -> None:
    import uvicorn

    from ..webhooks import missing_secrets
    from .webhooks import Deliverer

    store.names()  # a missing store is a clear error before anything listens
    check_bind(store, host)
    unsigned = missing_secrets(store.config, os.environ)
    if unsigned:
        raise Refused("\n".join(unsigned))
    stopping: list[Callable[[], None]] = []
    app = build(store, local, open=not store.config.tokens, stopping=stopping)
    sock = listen(host, port)
    port = sock.getsockname()[1]
    primary = store.primary
    how = f"read-only, a mirror of {primary}" if primary else "read-only" if store.read_only else ""
    if not store.config.tokens:
        everyone = "may read everything" if how else f"may do everything as {local}"
        say(
            f"promptgit: no tokens configured: serving {store.path} on http://{host}:{port} "
            f"{f'({how}) ' if how else ''}to this machine only, and everyone {everyone}"
        )
    else:
        mode = f"{how}, tokens required" if how else "tokens required"
        say(f"promptgit: serving {store.path} on http://{host}:{port} ({mode})")

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            for stop in stopping:  # waiting watch requests answer, so they hold nothing up
                stop()
            await super().shutdown(sockets)

    config = uvicorn.Config(app, log_level="warning", access_log=False)
    deliverer = Deliverer(store.path, say)  # webhooks: only a running server delivers them
    deliverer.start()
    helper = handoff.start(store.path)  # pushes' hooks run in it, their imports done
    try:
        Server(config).run(sockets=[sock])
    finally:
        helper.terminate()
        deliverer.stop()
