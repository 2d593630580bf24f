"""promptgit: a git-backed prompt store.

    from promptgit import Store
    Store("prompts").get("greeting", stage="prod").render(name="Ada")

    from promptgit import Client          # an application reading from a server
    Client("http://127.0.0.1:8080").get("greeting").render(name="Ada")

Importing this package is cheap; pygit2 and Jinja2 load when first needed.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public names, and the module each lives in (imported on first use).
_WHERE = {
    "Store": "store",
    "Client": "client",
    "Actor": "model",
    "Prompt": "model",
    "Shown": "model",
    "VersionInfo": "model",
    "VersionDetail": "model",
    "RevisionInfo": "model",
    "DeploymentInfo": "model",
    "PromptSummary": "model",
    "PromptDetails": "model",
    "StageRef": "model",
    "EditResult": "model",
    "TestRun": "prompt_tests",
    "CaseResult": "prompt_tests",
    "Actions": "policy",
    "Action": "policy",
}
__all__ = [
    "Action",
    "Actions",
    "Actor",
    "CaseResult",
    "Client",
    "DeploymentInfo",
    "EditResult",
    "Prompt",
    "PromptDetails",
    "PromptSummary",
    "RevisionInfo",
    "Shown",
    "StageRef",
    "Store",
    "TestRun",
    "VersionDetail",
    "VersionInfo",
    "__version__",
    "errors",
]

if TYPE_CHECKING:
    from . import errors
    from .client import Client
    from .model import (
        Actor,
        DeploymentInfo,
        EditResult,
        Prompt,
        PromptDetails,
        PromptSummary,
        RevisionInfo,
        Shown,
        StageRef,
        VersionDetail,
        VersionInfo,
    )
    from .policy import Action, Actions
    from .prompt_tests import CaseResult, TestRun
    from .store import Store


def __getattr__(name: str) -> Any:
    if name == "errors":
        return import_module(".errors", __name__)
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'promptgit' has no attribute {name!r}")
