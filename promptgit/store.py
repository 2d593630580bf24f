"""The porcelain: `Store`, what a user can do to a store of prompts.

    store = Store("prompts")
    store.get("greeting", stage="prod").render(name="Ada")
    store.edit("greeting", "v1.1", {"prompt.yaml": text}, "warmer", actor=Actor("Ada", "ada@example.com"))

Reads live in reads.py, writes in operations.py; the CLI and the server call
only this class, one method per thing they show or do.
"""

from __future__ import annotations

import builtins

from . import tokens
from .operations import Operations

__all__ = ["Store"]


class Store(Operations):
    """A directory of prompt repositories, one bare repository per prompt.

    Safe to share between threads: each thread gets its own libgit2 repository
    objects, and every write is a compare-and-swap under ref locks.
    """

    # --- API tokens (promptgit.yaml keeps their salted hashes only) -------------------

    def create_token(self, name: str, role: str) -> str:
        """A new token named `name` with `role`; the secret is returned this once."""
        self.check()
        return tokens.create(self.path, name, role)

    def tokens(self) -> builtins.list[dict[str, str]]:
        """Every token's name, role and creation time (never a secret)."""
        self.check()
        return tokens.listing(self.config)

    def revoke_token(self, name: str) -> None:
        """Revoke a token at once: a running server re-reads promptgit.yaml when it changes."""
        self.check()
        tokens.revoke(self.path, name)
