"""HTTP for `promptgit.Client`, with the standard library only (an application needs
no server extras): one keep-alive connection per thread, a timeout on every socket
operation and a deadline on every request, and a cap on what an answer may make
the client read. Transport failures are `OSError`s (timeouts included) or
`http.client.HTTPException`s; what an answer means is the client's business.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import __version__
from .errors import DeadlinePassed, InvalidInput

MAX_BODY = 8 << 20  # bytes of one answer: a prompt's files are at most 1 MiB each
USER_AGENT = f"promptgit-client/{__version__}"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError (or RecursionError) when it is not."""
        return json.loads(self.body)

    def error(self) -> str:
        """The message of a `{"error": {"code", "message"}}` body, else a short excerpt."""
        try:
            message = self.json()["error"]["message"]
            if isinstance(message, str):
                return message[:1000]
        except (ValueError, RecursionError, KeyError, TypeError):
            pass
        text = self.body[:200].decode("utf-8", "replace").strip()
        return f"HTTP {self.status}" + (f": {text}" if text else "")


class Endpoint:
    """A promptgit server's base URL, its token, and a connection per thread."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise InvalidInput(
                f"invalid server URL {url!r}: give the address promptgit serve prints, "
                "e.g. http://127.0.0.1:8080 (http or https, no query)"
            )
        self.url = url.rstrip("/")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.base = parts.path.rstrip("/")  # a server behind a path prefix
        self.timeout = timeout
        self._headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._local = threading.local()

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        """A new connection (opened on its first request) whose socket operations
        each time out after `timeout` seconds."""
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Answer:
        """GET `path` on this thread's keep-alive connection. A reused connection the
        server has closed meanwhile is retried once on a new one (a GET is safe to repeat)."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        reused = conn is not None
        if conn is None:
            conn = self._local.conn = self.connect(self.timeout)
        try:
            return self.request(conn, path, headers, self.timeout)
        except (ConnectionError, http.client.BadStatusLine):
            conn.close()
            self._local.conn = None
            if not reused:
                raise
        except (OSError, http.client.HTTPException):
            conn.close()
            self._local.conn = None
            raise
        conn = self._local.conn = self.connect(self.timeout)
        try:
            return self.request(conn, path, headers, self.timeout)
        except (OSError, http.client.HTTPException):
            conn.close()
            self._local.conn = None
            raise

    def request(
        self,
        conn: http.client.HTTPConnection,
        path: str,
        headers: Mapping[str, str] | None,
        deadline_after: float,
    ) -> Answer:
        """One GET on `conn`, its whole answer read within `deadline_after` seconds (a
        server that trickles bytes cannot hold the caller longer) and at most MAX_BODY."""
        with within(conn, deadline_after):
            return self._exchange(conn, path, headers, deadline_after)

    def _exchange(
        self, conn: http.client.HTTPConnection, path: str, headers: Mapping[str, str] | None, seconds: float
    ) -> Answer:
        deadline = time.monotonic() + seconds
        conn.request("GET", self.base + path, headers={**self._headers, **(headers or {})})
        resp = conn.getresponse()
        length = resp.getheader("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            raise http.client.HTTPException(
                f"an answer of {length} bytes: the client reads at most {MAX_BODY}"
            )
        chunks, size = [], 0
        while True:
            if time.monotonic() > deadline:
                raise DeadlinePassed(seconds)
            chunk = resp.read1(65536)  # what one recv brings: a trickle still meets the deadline
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_BODY:
                raise http.client.HTTPException(f"an answer of over {MAX_BODY} bytes: the client stops there")
            chunks.append(chunk)
        if resp.length:  # the server closed before sending what Content-Length said
            raise http.client.IncompleteRead(b"".join(chunks), resp.length)
        resp.read()  # ends the answer, so the connection can carry the next request
        if resp.will_close:
            conn.close()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, b"".join(chunks))

    def forget(self) -> None:
        """After fork: drop this process's copies of the parent's connections (closing a
        copied socket leaves the parent's connection open) and start afresh."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local = threading.local()


@contextlib.contextmanager
def within(conn: http.client.HTTPConnection, seconds: float) -> Iterator[None]:
    """Cut `conn` off if what runs inside takes over `seconds` in all (connecting,
    sending, the status line, the headers, the body), then raise DeadlinePassed: a peer
    that trickles a byte at a time meets every socket timeout but not this one."""
    fired = threading.Event()

    def cut() -> None:
        fired.set()
        abort(conn)

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    late = DeadlinePassed(seconds)
    try:
        yield
    except (OSError, http.client.HTTPException):
        if fired.is_set():
            raise late from None
        raise
    finally:
        timer.cancel()
    if fired.is_set():  # cut mid-answer, it may still have parsed as a short one
        raise late


def abort(conn: http.client.HTTPConnection | None) -> None:
    """Wake a thread blocked reading `conn`: its request fails at once."""
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
