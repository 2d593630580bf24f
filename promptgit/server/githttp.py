"""git's smart HTTP protocol, served by the real `git http-backend`.

A raw ASGI app, not a Starlette route: Starlette's streaming response listens
for the client going away and swallows the rest of the request body, which
hangs a large push inside `unpack-objects`. Here the request body is fed to
the backend's stdin while its stdout streams back, neither ever held whole in
memory. Pushes run the repositories' installed hooks, so every rule holds;
the hooks learn the pusher from REMOTE_USER and their role from PROMPTGIT_ROLE.

Authorization is decided on the request git will act on: `classify` allow-lists
the three smart-HTTP endpoints in one canonical spelling, the role follows from
the service it found, and the backend's PATH_INFO and QUERY_STRING are rebuilt
from what it classified, so git never sees a path or service the guard did not.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidContent, InvalidName, ReadOnlyStore
from ..names import ARCHIVE, check_name
from .auth import Auth, basic_password
from .errors import AuthError, Refusal
from .lifecycle import git_refusal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("promptgit.git")
CHUNK = 64 * 1024

SERVICES = ("git-upload-pack", "git-receive-pack")
# endpoint (after NAME.git/) -> the one method it answers
ENDPOINTS = {"info/refs": "GET", "git-upload-pack": "POST", "git-receive-pack": "POST"}
# The only bytes a valid path is ever spelled with: no '%', ';', '\\', space or control.
_SPELLING = re.compile(rb"/git/[A-Za-z0-9._/-]+")


@dataclass(frozen=True)
class GitRequest:
    """A request classified as one of the three smart-HTTP endpoints. Everything
    `git http-backend` is told comes from here, never from the raw request."""

    name: str
    endpoint: str  # a key of ENDPOINTS
    service: str  # one of SERVICES

    @property
    def method(self) -> str:
        return ENDPOINTS[self.endpoint]

    @property
    def path_info(self) -> str:
        return f"/{self.name}.git/{self.endpoint}"

    @property
    def query_string(self) -> str:
        return f"service={self.service}" if self.endpoint == "info/refs" else ""

    @property
    def pushing(self) -> bool:
        return self.service == "git-receive-pack"

    @property
    def archived(self) -> bool:
        """`_archive/NAME`: an archived prompt, which mirrors fetch (and nobody pushes to)."""
        return self.name.startswith(f"{ARCHIVE}/")

    @property
    def role(self) -> str:
        return "editor" if self.pushing else "reader"


def classify(method: str, raw_path: bytes | None, path: str, query: bytes) -> GitRequest:
    """The smart-HTTP request this is, or Refusal.

    One canonical spelling: the path as sent must be plain ASCII with no
    percent-encoding (so what was sent, what the server decoded and what git
    will see are the same string), with no empty, '.' or '..' segment and no
    trailing '/' or '.'. It must end in one of the three endpoints exactly, the
    rest must be a valid prompt name (or `_archive/` and one: an archived prompt, for
    mirrors), the method must be the endpoint's, and the
    query must be exactly `service=<one of SERVICES>` for info/refs and empty
    otherwise. The role a request needs follows from the service classified here.
    """
    raw = path.encode("utf-8", "surrogateescape") if raw_path is None else raw_path
    if not _SPELLING.fullmatch(raw) or raw.decode("ascii") != path:
        raise Refusal(
            400,
            "malformed git path: only letters, digits, '.', '_', '-' and '/' may appear in it, "
            "with no percent-encoding, ';', spaces or control characters",
        )
    rest = path[len("/git/") :]
    if rest.endswith(("/", ".")) or any(seg in ("", ".", "..") for seg in rest.split("/")):
        raise Refusal(400, "malformed git path: no empty, '.' or '..' segment and no trailing '/' or '.'")
    endpoint = next((e for e in ENDPOINTS if rest.endswith(f".git/{e}")), None)
    if endpoint is None:
        if any(rest.lower().endswith(f".git/{e}") for e in ENDPOINTS):
            raise Refusal(400, "malformed git path: '.git' and the service names are lower-case")
        raise Refusal(404, "not a smart-HTTP git path (dumb HTTP, such as HEAD or objects/, is not served)")
    name = rest[: -len(f".git/{endpoint}")]
    try:
        check_name(name.removeprefix(f"{ARCHIVE}/"))
    except InvalidName as e:
        raise Refusal(400, f"malformed git path: {e}") from None
    if method != ENDPOINTS[endpoint]:
        raise Refusal(
            405, f"{endpoint} answers {ENDPOINTS[endpoint]} only, not {method}", ENDPOINTS[endpoint]
        )
    if endpoint == "info/refs":
        service = next((s for s in SERVICES if query == f"service={s}".encode()), None)
        if service is None:
            raise Refusal(
                400,
                "info/refs takes exactly one query parameter, written as is: "
                "service=git-upload-pack or service=git-receive-pack",
            )
        return GitRequest(name, endpoint, service)
    if query:
        raise Refusal(400, f"{endpoint} takes no query string")
    return GitRequest(name, endpoint, endpoint)


class GitHttp:
    def __init__(self, auth: Auth) -> None:
        self.auth = auth
        self.store = auth.store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            req = classify(
                scope["method"], scope.get("raw_path"), scope["path"], scope.get("query_string", b"")
            )
        except Refusal as e:
            allow = [(b"allow", e.allow.encode())] if e.allow else []
            return await _plain(send, e.status, e.message, allow)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        read_only = req.pushing and self._read_only()
        try:
            actor = self.auth.actor(
                basic_password(headers.get("authorization")),
                "reader" if read_only else req.role,  # who it is, then where to push instead
                "pushing" if req.pushing else "fetching",
            )
        except AuthError as e:
            extra = [(b"www-authenticate", b'Basic realm="promptgit"')] if e.status == 401 else []
            return await _plain(send, e.status, e.message, extra)
        if read_only:
            return await _plain(send, 403, self._push_refusal(req.name))
        if req.archived and req.pushing:
            name = req.name.removeprefix(f"{ARCHIVE}/")
            return await _plain(
                send, 403, f"prompt '{name}' is archived: restore it with 'promptgit restore {name}' first"
            )
        if not (self.store.path / f"{req.name}.git" / "HEAD").is_file():  # only now: no probing names
            if req.archived:
                return await _plain(
                    send, 404, f"no archived prompt named '{req.name.removeprefix(ARCHIVE + '/')}'"
                )
            base = f"{scope.get('scheme', 'http')}://{headers.get('host', 'localhost')}"
            return await _plain(send, *git_refusal(self.store, req.name, base))  # archived: 410
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/"),
            "GIT_PROJECT_ROOT": str(self.store.path.resolve()),
            "GIT_HTTP_EXPORT_ALL": "1",
            # what git acts on is what was classified, never the raw request
            "PATH_INFO": req.path_info,
            "QUERY_STRING": req.query_string,
            "REQUEST_METHOD": req.method,
            "CONTENT_TYPE": headers.get("content-type", ""),
            "REMOTE_ADDR": (scope.get("client") or ("", 0))[0],
            # receive-pack over HTTP is off unless a user is authenticated or this is set
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "PROMPTGIT_ROLE": actor.role,
        }
        if os.environ.get("PYTHONPATH"):  # the hooks run the promptgit this server runs
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        if not self.auth.open:
            env["REMOTE_USER"] = actor.name
        for header, var in (
            ("content-length", "CONTENT_LENGTH"),
            ("content-encoding", "HTTP_CONTENT_ENCODING"),
            ("git-protocol", "HTTP_GIT_PROTOCOL"),
        ):
            if header in headers:
                env[var] = headers[header]
        if req.pushing and req.method == "POST":
            receive, capabilities = await _peek_capabilities(receive, headers.get("content-encoding", ""))
            if capabilities is not None:
                # pre-receive can then refuse a push of refs that depend on each other
                # made without --atomic, with a message the pusher sees
                env["PROMPTGIT_PUSH_ATOMIC"] = "1" if "atomic" in capabilities else "0"
        await self._backend(env, receive, send)

    def _read_only(self) -> bool:
        try:
            return self.store.refuses_writes
        except InvalidContent:
            return False  # the auth check answers 503 for a broken promptgit.yaml

    def _push_refusal(self, name: str) -> str:
        """What a push to a read-only server is told (git prints it after 'remote:')."""
        try:
            primary = self.store.primary
        except InvalidContent:
            primary = None
        refusal = ReadOnlyStore(primary)
        if primary is None:
            return str(refusal)
        url = f"{primary}/git/{name}.git"
        return f"{refusal} (push to {url}: git remote set-url --push origin {url})"

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


async def _peek_capabilities(receive: Receive, encoding: str) -> tuple[Receive, set[str] | None]:
    """The capabilities a receive-pack request asks for (the words after the NUL of
    its first pkt-line), and a receive that still yields the whole body."""
    import zlib

    held: list[Message] = []
    raw = b""
    while len(raw) < 65536:
        message = await receive()
        held.append(message)
        raw += message.get("body", b"") if message["type"] == "http.request" else b""
        if message["type"] != "http.request" or not message.get("more_body", False) or len(raw) >= 4100:
            break
    try:
        data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, 4100) if encoding == "gzip" else raw
        size = int(data[:4], 16)
        line = data[4:size]
    except (ValueError, zlib.error):
        line = b""
    capabilities = set(line.split(b"\0", 1)[1].decode("latin-1").split()) if b"\0" in line else None

    async def replay() -> Message:
        return held.pop(0) if held else await receive()

    return replay, capabilities


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
