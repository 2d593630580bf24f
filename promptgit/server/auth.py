"""Who is asking: a Bearer token (or basic auth's password, for git) names an actor
and a role. With no tokens configured the server is local-only and lets everyone
do everything, as the local user."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

from fastapi import Request

from ..model import Actor
from ..policy import allows
from ..store import Store
from ..tokens import verify


class AuthError(Exception):
    """401 (no or unknown token) or 403 (too little role), with the message to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Auth:
    def __init__(self, store: Store, local: Actor) -> None:
        self.store = store
        self.local = local  # who acts when no tokens are configured

    @property
    def open(self) -> bool:
        return not self.store.config.tokens

    def actor(self, token: str | None, needed: str, what: str = "this") -> Actor:
        """The actor behind `token`, if its role allows `needed`; else AuthError."""
        cfg = self.store.config
        if not cfg.tokens:
            return self.local
        if not token:
            raise AuthError(
                401, f"{what} needs a token with role '{needed}' or more: send Authorization: Bearer TOKEN"
            )
        actor = verify(cfg, token)
        if actor is None:
            raise AuthError(
                401,
                "unknown or revoked token: ask an admin for one ('promptgit token create NAME --role ROLE')",
            )
        if not allows(actor.role, needed):
            raise AuthError(
                403,
                f"{actor.name} has role '{actor.role}', and {what} needs role '{needed}': "
                "ask an admin for a token with that role",
            )
        return actor

    def require(self, needed: str) -> Callable[[Request], Awaitable[Actor]]:
        """A FastAPI dependency: the request's actor, with at least role `needed`."""
        from .api import ApiError

        async def dependency(request: Request) -> Actor:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            try:
                return self.actor(token.strip() if scheme.lower() == "bearer" else None, needed)
            except AuthError as e:
                code = "unauthorized" if e.status == 401 else "forbidden"
                headers = {"WWW-Authenticate": 'Bearer realm="promptgit"'} if e.status == 401 else None
                raise ApiError(e.status, code, e.message, headers) from None

        return dependency


def basic_password(header: str | None) -> str | None:
    """The password of an HTTP basic Authorization header (git sends the token there)."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None
