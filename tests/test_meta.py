"""The public surface: what `__all__` promises exists, and nothing user-facing is missing."""

from __future__ import annotations

import inspect
import subprocess
import sys

import promptgit
from promptgit import errors


def test_package_all_is_the_public_api() -> None:
    assert sorted(promptgit.__all__) == ["Actor", "Prompt", "Store", "__version__", "errors"]
    for name in promptgit.__all__:
        assert getattr(promptgit, name) is not None


def test_errors_all_is_every_error_class() -> None:
    defined = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, errors.PromptgitError)
    }
    assert set(errors.__all__) == defined


def test_every_error_class_is_in_the_hierarchy_drawing() -> None:
    for name in errors.__all__:
        assert name in (errors.__doc__ or ""), f"{name} missing from the docstring's drawing"


def test_importing_promptgit_is_cheap() -> None:
    """`import promptgit` loads neither pygit2 nor Jinja2 (the CLI's start-up depends on it)."""
    code = "import sys, promptgit; print(sorted(m for m in ('pygit2', 'jinja2', 'yaml') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_help_does_not_load_pygit2() -> None:
    code = "import sys\nfrom promptgit.cli import cli\ntry:\n    cli(['--help'])\nexcept SystemExit:\n    pass\nprint('pygit2' in sys.modules, 'jinja2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False"
