"""The porcelain: `Store`, what a user can do to a store of prompts.

    store = Store("prompts")
    store.get("greeting", stage="prod").render(name="Ada")
    store.edit("greeting", "v1.1", {"prompt.yaml": text}, "warmer", actor=Actor("Ada", "ada@example.com"))

Reads live in reads.py, writes in operations.py; the CLI and the server call
only this class.
"""

from __future__ import annotations

from .operations import REPO_CONFIG, EditResult, Files, Operations
from .reads import CONFIG_FILE, DEFAULT_STORE, Resolved, default_path

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_STORE",
    "REPO_CONFIG",
    "EditResult",
    "Files",
    "Resolved",
    "Store",
    "default_path",
]


class Store(Operations):
    """A directory of prompt repositories, one bare repository per prompt.

    Safe to share between threads: each thread gets its own libgit2 repository
    objects, and every write is a compare-and-swap under ref locks.
    """
