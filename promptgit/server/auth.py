"""Who is asking: a Bearer token (or basic auth's password, for git) names an actor
and a role. With no tokens configured the server is local-only and lets everyone
do everything, as the local user."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from ..model import Actor
from ..policy import allows
from ..store import Store
from ..tokens import verify
from .errors import AuthError


class Auth:
    """Decides who a request is. The mode is fixed when the server starts: a server
    started with tokens keeps requiring them even if they all get revoked, or the
    config disappears (it then lets no one in); an open one serves loopback only."""

    def __init__(self, store: Store, local: Actor, *, open: bool | None = None) -> None:
        self.store = store
        self.local = local  # who acts when no tokens are configured
        self.started_open = (not self._config().tokens) if open is None else open

    def _config(self) -> Any:
        from ..errors import InvalidContent

        try:
            return self.store.config
        except InvalidContent:
            # fail closed, telling the caller nothing about the file
            raise AuthError(
                503, "the server's promptgit.yaml does not validate: an admin must fix it"
            ) from None

    @property
    def open(self) -> bool:
        """No tokens now, and none when the server started: everyone is the local user."""
        return self.started_open and not self._config().tokens

    def actor(self, token: str | None, needed: str, what: str = "this") -> Actor:
        """The actor behind `token`, if its role allows `needed`; else AuthError."""
        cfg = self._config()
        if not cfg.tokens and self.started_open:
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
        """A FastAPI dependency: the request's actor, with at least role `needed`. A
        route that changes prompts (needing more than reader) on a read-only store is
        refused for any valid token with ReadOnlyStore, which names where to go."""

        async def dependency(request: Request) -> Actor:
            token = bearer(request.headers.get("authorization"))
            if needed != "reader":
                self._config()  # a broken promptgit.yaml answers 503, naming nothing
                if self.store.refuses_writes:
                    self.actor(token, "reader")  # who asks first: a stranger learns nothing
                    self.store.writable()
            return self.actor(token, needed)

        return dependency


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header."""
    scheme, _, token = (header or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def basic_password(header: str | None) -> str | None:
    """The password of an HTTP basic Authorization header (git sends the token there)."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None
