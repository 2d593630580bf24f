"""API tokens: who may do what over HTTP. Only a salted hash is stored.

A token is `pg_` and 43 random URL-safe characters, printed once by `promptgit
token create`. Tokens are random enough that a fast salted SHA-256 is as safe
as a slow hash, and it keeps every request cheap. They live in the store's
promptgit.yaml under `tokens:` (name -> role, salt, hash, created).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import config
from .errors import ConcurrentUpdate, InvalidInput, NotFound
from .model import Actor
from .names import ROLES, check_token_name

PREFIX = "pg_"


def _digest(salt: str, token: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + token.encode()).hexdigest()


@contextmanager
def _locked(store: Path) -> Iterator[dict[str, Any]]:
    """promptgit.yaml as a mapping, written back atomically under a lock file."""
    import yaml

    lock = store / (config.FILE + ".lock")
    deadline = time.monotonic() + 2.0
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise ConcurrentUpdate(
                    f"{lock} is held by another promptgit process; retry, or remove it if none runs"
                ) from None
            time.sleep(0.01)
    try:
        path = store / config.FILE
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        config.parse(text)  # refuse to rewrite a file that does not validate
        data = yaml.safe_load(text) or {}
        yield data
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    finally:
        os.close(fd)
        lock.unlink(missing_ok=True)


def create(store: Path, name: str, role: str) -> str:
    """A new token for `name` with `role`; returns it (the only time it is shown)."""
    check_token_name(name)
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    token = PREFIX + secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    with _locked(store) as data:
        tokens = data.setdefault("tokens", {}) or {}
        data["tokens"] = tokens
        if name in tokens:
            raise InvalidInput(
                f"a token named {name!r} exists: revoke it first ('promptgit token revoke {name}')"
            )
        tokens[name] = {
            "role": role,
            "salt": salt,
            "hash": _digest(salt, token),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    return token


def revoke(store: Path, name: str) -> None:
    with _locked(store) as data:
        tokens = data.get("tokens") or {}
        if name not in tokens:
            known = ", ".join(sorted(tokens)) or "none"
            raise NotFound(f"no token named {name!r} (tokens: {known}): see 'promptgit token list'")
        del tokens[name]


def listing(cfg: config.Config) -> list[dict[str, str]]:
    return [
        {"name": name, "role": str(entry.get("role")), "created": str(entry.get("created", ""))}
        for name, entry in sorted(cfg.tokens.items())
    ]


def verify(cfg: config.Config, token: str) -> Actor | None:
    """The actor a token stands for, or None if no stored hash matches."""
    if not token.startswith(PREFIX):
        return None
    for name, entry in cfg.tokens.items():
        salt, digest, role = entry.get("salt"), entry.get("hash"), entry.get("role")
        if not (isinstance(salt, str) and isinstance(digest, str) and role in ROLES):
            continue
        try:
            if hmac.compare_digest(_digest(salt, token), digest):
                return Actor(name, f"{name}@promptgit", role)
        except ValueError:
            continue
    return None
