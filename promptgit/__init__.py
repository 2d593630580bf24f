"""promptgit: a git-backed prompt store.

    from promptgit import Store
    Store("prompts").get("greeting", stage="prod").render(name="Ada")

Importing this package is cheap; pygit2 and Jinja2 load when first needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Actor", "Prompt", "Store", "__version__", "errors"]

if TYPE_CHECKING:
    from . import errors
    from .model import Actor, Prompt
    from .store import Store


def __getattr__(name: str) -> Any:
    if name == "Store":
        from .store import Store

        return Store
    if name in ("Actor", "Prompt"):
        from . import model

        return getattr(model, name)
    if name == "errors":
        from . import errors

        return errors
    raise AttributeError(f"module 'promptgit' has no attribute {name!r}")
