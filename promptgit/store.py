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
from .model import Actor, Collected, Finding, WebhookDelivery

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

    # --- webhooks (delivered by `promptgit serve`, see webhooks.py) ---------------------

    def webhook_log(
        self, limit: int | None = 50, *, failures: bool = False
    ) -> builtins.list[WebhookDelivery]:
        """The webhook delivery log, newest first: every attempt (its status or what
        failed) and every notice; with `failures`, only what went wrong."""
        from . import webhooks

        self.check()
        return webhooks.read_log(self.path, limit, failures)

    # --- health ----------------------------------------------------------------------

    def doctor(
        self, prompts: Sequence[str] = (), *, repair: bool = False, actor: Actor
    ) -> builtins.list[Finding]:
        """Check every invariant (objects, locks, hooks, releases, stages, tags, drafts)
        of `prompts` (default: all); with `repair`, mend what can be mended safely."""
        from .doctor import examine

        self.check()
        return examine(self, prompts, repair=repair, actor=actor)

    def gc(
        self, prompts: Sequence[str] = (), *, dry_run: bool = False, actor: Actor
    ) -> builtins.list[Collected]:
        """Delete the DEV drafts retention.draft_max_age_days lets go (not current, never
        in TST, latest revision older than that; by the normal delete rules, so their
        numbers are retired), then repack each repository into one pack. Releases are
        never removed."""
        import time

        from . import history, policy

        self.check()
        days = self.config.draft_max_age_days
        out = []
        for name in prompts or self.names():
            repo = self._open(name)
            old = []
            if days is not None:
                cutoff = time.time() - days * 86400
                for v in policy.deletable_drafts(repo):
                    tip = history.version_tip(repo, v)
                    if tip is not None and repo.commit(tip[0]).author.time < cutoff:
                        old.append(str(v))
            before = repo.size()
            if not dry_run:
                for label in old:
                    self.delete(name, label, actor=actor)
                repo.repack()
            out.append(Collected(name, tuple(old), before, repo.size(), dry_run))
        return out
