"""The porcelain: `Store`, what a user can do to a store of prompts.

    store = Store("prompts")
    store.get("greeting", stage="prod").render(name="Ada")
    store.edit("greeting", "v1.1", {"prompt.yaml": text}, "warmer", actor=Actor("Ada", "ada@example.com"))

Reads live in reads.py, writes in operations.py, and what moves a whole prompt
(archive, restore, rename, delete) in lifecycle.py; the CLI and the server call
only this class, one method per thing they show or do.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from . import tokens
from .lifecycle import Lifecycle
from .model import Actor, Finding

__all__ = ["Store"]


class Store(Lifecycle):
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

    # --- health ----------------------------------------------------------------------

    def doctor(
        self, prompts: Sequence[str] = (), *, repair: bool = False, actor: Actor
    ) -> builtins.list[Finding]:
        """Check every invariant (objects, locks, hooks, releases, stages, tags, drafts)
        of `prompts` (default: all); with `repair`, mend what can be mended safely."""
        from .doctor import examine

        self.check()
        return examine(self, prompts, repair=repair, actor=actor)
