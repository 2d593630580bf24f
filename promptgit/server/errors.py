"""Every error the server answers with, in one place.

    Exception
    ├── ApiError      an answer decided by the HTTP layer (412, 400), already with its status
    ├── AuthError     401 (no or unknown token) or 403 (too little role); 503 when the
    │                 server's own promptgit.yaml is broken
    ├── Refusal       a git-over-HTTP request refused before git sees it (400, 404, 405)
    ├── PublicApiError an answer of the Langfuse-compatible API, in Langfuse's error shape
    ├── LoginRequired a page was asked for without a valid token: it answers the login form
    └── Refused       `promptgit serve` will not start as asked

Library errors (`promptgit.errors`) map to statuses through `STATUS`, the one
table the API and the page share. Every JSON error body is
`{"error": {"code", "message"}}`, except under /api/public (Langfuse's API), where
it is Langfuse's `{"message", "error"}`.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

from ..errors import (
    Busy,
    ConcurrentUpdate,
    Conflict,
    DamagedRepository,
    Forbidden,
    InvalidInput,
    NotFound,
    PrimaryError,
    PromptArchived,
    PromptgitError,
    PromptRenamed,
    ProviderError,
    ReadOnlyStore,
    RuleViolation,
    ServerUnavailable,
)

log = logging.getLogger("promptgit.api")

STATUS: list[tuple[type[PromptgitError], int, str]] = [
    (PromptArchived, 410, "archived"),
    (PromptRenamed, 308, "renamed"),  # with Location: the same route under the new name
    (NotFound, 404, "not_found"),
    (ConcurrentUpdate, 409, "conflict"),
    (Conflict, 409, "conflict"),
    (RuleViolation, 409, "rule"),
    (InvalidInput, 422, "invalid"),
    (Forbidden, 403, "forbidden"),
    # not 409: nothing a retry or a fresh read fixes; its own code, so a client tells it
    # from a role refusal and can follow the primary's URL in the message
    (ReadOnlyStore, 403, "read_only"),
    (ProviderError, 502, "provider"),
    (ServerUnavailable, 502, "unavailable"),  # raised by promptgit.Client, never by the server
    (PrimaryError, 502, "primary"),  # a mirror's upstream, were a server ever to sync one
    (Busy, 503, "busy"),
    (DamagedRepository, 500, "damaged"),  # the store's files, not the request: the operator's to mend
]


def status_of(exc: PromptgitError) -> tuple[int, str]:
    """The HTTP status and error code of a library error. A damaged repository is
    also logged: the operator, not the client, is the one to mend it."""
    if isinstance(exc, DamagedRepository):
        log.warning("%s", exc)
    for cls, status, code in STATUS:
        if isinstance(exc, cls):
            return status, code
    return 400, "error"


class ApiError(Exception):
    """An answer the HTTP layer decides itself, with its status, code and headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class AuthError(Exception):
    """401 (no or unknown token) or 403 (too little role), with the message to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def code(self) -> str:
        return {401: "unauthorized", 403: "forbidden"}.get(self.status, "unavailable")


VALID_GIT_PATHS = (
    "this server speaks git's smart HTTP only, at exactly: "
    "GET /git/NAME.git/info/refs?service=git-upload-pack (or ?service=git-receive-pack), "
    "POST /git/NAME.git/git-upload-pack, POST /git/NAME.git/git-receive-pack; "
    "NAME is a prompt name written as is (lower-case [a-z0-9._-] segments joined by '/'), "
    "without percent-encoding"
)


class Refusal(Exception):
    """A request refused before git sees it: 400 malformed, 404 not a smart-HTTP
    endpoint, 405 wrong method. The message says what a valid request looks like."""

    def __init__(self, status: int, reason: str, allow: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.message = f"{reason}\n{VALID_GIT_PATHS}"
        self.allow = allow


PUBLIC = "/api/public/"  # Langfuse's public API (server/langfuse.py): its errors in its shape
PUBLIC_ROUTES = (
    "Langfuse's API here is GET /api/public/v2/prompts (the list) and "
    "GET /api/public/v2/prompts/NAME (one prompt; NAME URL-encoded, e.g. support%2Fgreeting)"
)

# Langfuse's names for the kinds of error its public API answers with, by status
# (its `error` field); other statuses keep promptgit's own code there.
LANGFUSE_KINDS = {
    400: "InvalidRequestError",
    401: "UnauthorizedError",
    403: "ForbiddenError",
    404: "LangfuseNotFoundError",
    405: "MethodNotAllowedError",
}


class PublicApiError(Exception):
    """An answer of the Langfuse-compatible API (server/langfuse.py), sent in Langfuse's
    error shape `{"message", "error"}` so the Langfuse SDKs raise their own errors."""

    def __init__(
        self, status: int, message: str, headers: dict[str, str] | None = None, code: str = "error"
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers
        self.code = LANGFUSE_KINDS.get(status, code)


def public_error_body(status: int, message: str, code: str = "error") -> dict[str, str]:
    """Langfuse's error body: `error` names the kind (see LANGFUSE_KINDS)."""
    return {"message": message, "error": LANGFUSE_KINDS.get(status, code)}


class LoginRequired(Exception):
    """The page needs a token first; the page's handler answers with the login form."""


class Refused(Exception):
    """The server will not start as asked; the message says why and what to do."""


def challenge(status: int, scheme: str = "Bearer") -> dict[str, str] | None:
    """The WWW-Authenticate header a 401 carries (Bearer for the API, Basic for git)."""
    return {"WWW-Authenticate": f'{scheme} realm="promptgit"'} if status == 401 else None


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def install_handlers(app: FastAPI) -> None:
    """Map every exception a route can raise to one JSON error answer."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    async def library_error(request: Request, exc: PromptgitError) -> JSONResponse:
        retry = {"Retry-After": "1"} if isinstance(exc, Busy) else None
        missing = getattr(exc, "missing", None)  # a RenderError: say how to pass it in a request
        message = (
            f'{exc} (send it in "vars", e.g. {{"vars": {{"{missing}": "..."}}}})' if missing else str(exc)
        )
        return _answer(request, *status_of(exc), message, retry)

    async def api_error(request: Request, exc: ApiError | PublicApiError) -> JSONResponse:
        return _answer(request, exc.status, exc.code, exc.message, exc.headers)

    async def auth_error(request: Request, exc: AuthError) -> JSONResponse:
        return _answer(request, exc.status, exc.code, exc.message, challenge(exc.status))

    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return _answer(request, 422, "invalid", "; ".join(parts) or "invalid request")

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _answer(
            request, 500, "internal", f"unexpected {type(exc).__name__}: this is a bug in promptgit"
        )

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        message = str(exc.detail)
        if exc.status_code == 404 and request.url.path.startswith(PUBLIC):
            message += f": {PUBLIC_ROUTES}"
        return _answer(request, exc.status_code, code, message)

    handlers: list[tuple[type[Exception], Any]] = [
        (PromptgitError, library_error),
        (ApiError, api_error),
        (PublicApiError, api_error),
        (AuthError, auth_error),
        (RequestValidationError, validation_error),
        (Exception, unexpected),
        (HTTPException, http_error),
    ]
    for cls, handler in handlers:
        app.add_exception_handler(cls, handler)


def _answer(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The error answer, in Langfuse's shape under /api/public (its SDKs parse it)."""
    from fastapi.responses import JSONResponse

    if request.url.path.startswith(PUBLIC):
        body: dict[str, Any] = public_error_body(status, message, code)
    else:
        body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)
