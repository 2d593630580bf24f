"""git's smart HTTP protocol, served by the real `git http-backend`.

A raw ASGI app, not a Starlette route: Starlette's streaming response listens
for the client going away and swallows the rest of the request body, which
hangs a large push inside `unpack-objects`. Here the request body is fed to
the backend's stdin while its stdout streams back, neither ever held whole in
memory. Pushes run the repositories' installed hooks, so every rule holds;
the hooks learn the pusher from REMOTE_USER and their role from PROMPTGIT_ROLE.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..errors import InvalidName
from ..names import check_name
from .auth import Auth, basic_password
from .errors import AuthError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("promptgit.git")
_PATH = re.compile(r"^/git/(?P<name>.+?)\.git(?P<rest>/.*)?$")
CHUNK = 64 * 1024


class GitHttp:
    def __init__(self, auth: Auth) -> None:
        self.auth = auth
        self.store = auth.store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        m = _PATH.match(scope["path"])
        if m is None:
            return await _plain(send, 404, "not a repository path: use /git/NAME.git")
        name, rest = m.group("name"), m.group("rest") or "/"
        try:
            check_name(name)
        except InvalidName as e:
            return await _plain(send, 404, str(e))
        query = scope.get("query_string", b"").decode("latin-1")
        pushing = rest == "/git-receive-pack" or "service=git-receive-pack" in query
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            actor = self.auth.actor(
                basic_password(headers.get("authorization")),
                "editor" if pushing else "reader",
                "pushing" if pushing else "fetching",
            )
        except AuthError as e:
            extra = [(b"www-authenticate", b'Basic realm="promptgit"')] if e.status == 401 else []
            return await _plain(send, e.status, e.message, extra)
        if not (self.store.path / f"{name}.git" / "HEAD").is_file():  # only now: no probing names
            return await _plain(send, 404, f"no prompt named '{name}'")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/"),
            "GIT_PROJECT_ROOT": str(self.store.path.resolve()),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{name}.git{rest}",
            "QUERY_STRING": query,
            "REQUEST_METHOD": scope["method"],
            "CONTENT_TYPE": headers.get("content-type", ""),
            "REMOTE_ADDR": (scope.get("client") or ("", 0))[0],
            # receive-pack over HTTP is off unless a user is authenticated or this is set
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "PROMPTGIT_ROLE": actor.role,
        }
        if not self.auth.open:
            env["REMOTE_USER"] = actor.name
        for header, var in (
            ("content-length", "CONTENT_LENGTH"),
            ("content-encoding", "HTTP_CONTENT_ENCODING"),
            ("git-protocol", "HTTP_GIT_PROTOCOL"),
        ):
            if header in headers:
                env[var] = headers[header]
        await self._backend(env, receive, send)

    async def _backend(self, env: dict[str, str], receive: Receive, send: Send) -> None:
        proc = await asyncio.create_subprocess_exec(
            "git",
            "http-backend",
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin and proc.stdout and proc.stderr
        feeding = asyncio.create_task(_feed(receive, proc.stdin))
        errors = asyncio.create_task(proc.stderr.read())
        try:
            status, headers, first = await _cgi_head(proc.stdout)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            if first:
                await send({"type": "http.response.body", "body": first, "more_body": True})
            while chunk := await proc.stdout.read(CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await feeding
            await proc.wait()
            stderr = await errors
            if stderr:
                log.info("git http-backend: %s", stderr.decode(errors="replace").strip())


async def _feed(receive: Receive, stdin: asyncio.StreamWriter) -> None:
    """Copy the request body (already de-chunked by the server) into the backend."""
    try:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body = message.get("body", b"")
            if body:
                stdin.write(body)
                await stdin.drain()
            if not message.get("more_body", False):
                break
    except (BrokenPipeError, ConnectionResetError):
        pass  # the backend stopped reading; its answer says why
    finally:
        stdin.close()


async def _cgi_head(stdout: asyncio.StreamReader) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Parse the CGI header block: `Status:` and the headers, up to the blank line."""
    status = 200
    headers: list[tuple[bytes, bytes]] = []
    while True:
        line = await stdout.readline()
        if not line or line in (b"\r\n", b"\n"):
            break
        key, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers.append((key.strip().lower().encode(), value.strip().encode("latin-1")))
    return status, headers, b""


async def _plain(
    send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = (message + "\n").encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})
