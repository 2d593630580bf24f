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
import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import names, tokens
from ._git import Repo
from .errors import PromptNotFound
from .lifecycle import Lifecycle
from .model import Actor, Collected, Finding, WebhookDelivery

__all__ = ["Store"]


class Store(Lifecycle):
    """A directory of prompt repositories, one bare repository per prompt.

    Safe to share between threads: each thread gets its own libgit2 repository
    objects, and every write is a compare-and-swap under ref locks.
    """

    # --- API tokens (promptgit.yaml keeps their salted hashes only) -------------------
    # A read-only store (a mirror) may still have its own tokens: they are not prompts.

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

    # --- replication: what `promptgit mirror` copies ----------------------------------

    def replicas(self) -> builtins.list[str]:
        """Every repository a mirror copies: each prompt, and each archived one as
        `_archive/NAME` (no prompt name starts with '_')."""
        return self.names() + [f"{names.ARCHIVE}/{a}" for a in self.archived_names()]

    def replica_state(self, name: str) -> dict[str, str | None]:
        """A repository `replicas` names, as a mirror compares it: the stage tips, and
        `refs`, a digest of every ref (drafts, tags, notes, promptgit's logs), so that
        any change at all makes a mirror fetch it again."""
        if name.startswith(f"{names.ARCHIVE}/"):
            path = self._archived_path(name.removeprefix(f"{names.ARCHIVE}/"))
            if not (path / "HEAD").is_file():
                raise PromptNotFound(name)
            refs = Repo(str(path)).refs()
        else:
            refs = self._open(name).refs()
        state: dict[str, str | None] = {s: refs.get(f"refs/heads/{s}") for s in names.STAGES}
        state["refs"] = refs_digest(refs)
        return state


def refs_digest(refs: Mapping[str, str]) -> str:
    """A digest of a repository's refs: equal digests, equal refs."""
    text = "".join(f"{sha} {ref}\n" for ref, sha in sorted(refs.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# Every write a user can ask for, refused on a read-only store before it starts (with
# when it writes, for those that can also just read). Tokens are not among them.
Writes = Callable[[Mapping[str, Any]], bool]  # whether a call (by its keyword arguments) writes
ALWAYS = ("create edit new_version promote rollback delete deprecate undeprecate follow record_push "
          "finish_releases install_hooks sweep_creations archive restore rename delete_prompt "
          "review approve")  # fmt: skip
_WRITES: dict[str, Writes] = {
    **{name: lambda kwargs: True for name in ALWAYS.split()},
    "test": lambda kwargs: bool(kwargs.get("record", True)),
    "gc": lambda kwargs: not kwargs.get("dry_run", False),
    "doctor": lambda kwargs: bool(kwargs.get("repair", False)),
}


def _refusing(method: Callable[..., Any], writes: Writes) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Store, *args: Any, **kwargs: Any) -> Any:
        if writes(kwargs):
            self.writable()
        return method(self, *args, **kwargs)

    return call


for _name, _writes in _WRITES.items():
    setattr(Store, _name, _refusing(getattr(Store, _name), _writes))
