"""Jinja2 in its sandbox, with strict undefined variables.

A template can never run code (the sandbox refuses attribute tricks), and a
missing variable is an error that names it. Jinja2 is imported on first use:
it costs ~50 ms, which commands that never render should not pay.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from . import limits
from .errors import RenderError

_MISSING = re.compile(r"'([A-Za-z_][A-Za-z0-9_]*)' is undefined")

if TYPE_CHECKING:
    from .sandbox import BoundedEnvironment


MAX_SIZE = limits.MAX_SIZE  # characters or items one operation may build
MAX_EXPONENT = limits.MAX_EXPONENT


@lru_cache(maxsize=1)
def environment() -> BoundedEnvironment:
    """Jinja2's sandbox, plus limits on what a template may cost (see sandbox.py): the
    sandbox stops code from running, not `'x' * 4000000000` from eating memory."""
    from .sandbox import BoundedEnvironment

    return BoundedEnvironment()


def template_variables(source: str, max_nodes: int = limits.MAX_NODES) -> tuple[set[str], int]:
    """The variables a template reads from its caller, and its size in nodes (raises
    TemplateSyntaxError; sandbox.LimitError, a subclass, for a template over a limit)."""
    from jinja2 import meta

    from .parsing import NESTING, LimitError, parse

    env = environment()
    tree, size = parse(env, source, max_nodes)
    try:
        return set(meta.find_undeclared_variables(tree)) - set(env.globals), size
    except RecursionError:
        raise LimitError(NESTING, 1) from None


def variables_of(source: str) -> set[str]:
    """The variables a template reads from its caller (raises TemplateSyntaxError)."""
    return template_variables(source)[0]


class Compiled:
    """One template, compiled once; rendering it is the hot path of `Store.get`."""

    __slots__ = ("_globals", "_spent", "_template")

    def __init__(self, source: str) -> None:
        from .parsing import NESTING, LimitError, parse
        from .sandbox import spent

        env = environment()
        tree, _ = parse(env, source)  # content is checked on write; this is old or hand-written
        try:
            self._template = env.from_string(tree)
        except (RecursionError, SyntaxError) as e:  # Python's own compiler limits (MemoryError: the worker's)
            raise LimitError(f"{NESTING} ({type(e).__name__})", 1) from None
        # Template.render copies the template's ChainMap of globals on every
        # call; a plain dict copied once per render costs a third as much.
        self._globals = dict(self._template.globals)
        self._spent = spent

    def render(self, values: Mapping[str, Any], where: str = "template") -> str:
        t = self._template
        budget = self._spent.set([0])  # what this render has built, against limits.MAX_TOTAL
        try:
            context = t.new_context({**self._globals, **values}, shared=True)
            parts, size = [], 0
            for piece in t.root_render_func(context):
                size += len(piece)
                if size > MAX_SIZE:  # loops can multiply output past any one operation's limit
                    _too_long()
                parts.append(piece)
            return "".join(parts)
        except RecursionError:
            raise RenderError(
                f"{where}: macros or loops recursed too deep, the limit: recurse less"
            ) from None
        except MemoryError as e:  # a backstop: the sandbox refuses what it can foresee
            raise RenderError(f"{where}: ran out of memory{_memory_limit()}: build smaller values") from e
        except Exception as e:
            error = _render_error(e, where)  # imports Jinja's exceptions only when one happens
            if error is None:
                raise
            raise error from None
        finally:
            self._spent.reset(budget)


def _too_long() -> None:
    from jinja2.exceptions import SecurityError

    raise SecurityError(f"the output would exceed {MAX_SIZE:,} characters, the limit: print less")


def _render_error(e: Exception, where: str) -> RenderError | None:
    """The RenderError a failure while rendering becomes (None: a bug, left to raise)."""
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError, UndefinedError

    if isinstance(e, UndefinedError):
        missing = _MISSING.fullmatch(str(e.message))
        name = missing.group(1) if missing else None
        return RenderError(f"{where}: {e.message}{': give it a value' if name else ''}", name)
    if isinstance(e, SecurityError):
        return RenderError(f"{where}: the sandbox refused: {e}")
    if isinstance(e, TemplateError):
        return RenderError(f"{where}: {e}")
    if isinstance(e, TypeError | ValueError | ArithmeticError | LookupError | AttributeError):
        return RenderError(f"{where}: {type(e).__name__}: {e}")
    return None


def _memory_limit() -> str:
    """', the limit: N MiB' where the process has one (a worker), else ''."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return ""
    return "" if soft == resource.RLIM_INFINITY else f" (over {soft >> 20} MiB, the limit)"


@lru_cache(maxsize=4096)
def compiled(source: str) -> Compiled:
    return Compiled(source)


def render_string(source: str, values: Mapping[str, Any], where: str = "template") -> str:
    """Render a template in the sandbox; every failure is a RenderError naming `where`."""
    from jinja2 import TemplateError, TemplateSyntaxError

    try:
        template = compiled(source)
    except TemplateSyntaxError as e:  # content is validated on write; this is a repo written by hand
        raise RenderError(f"{where}: {e.message}") from None
    except TemplateError as e:
        raise RenderError(f"{where}: {e}") from None
    return template.render(values, where)


def render_content(
    content: Mapping[str, Any], values: Mapping[str, Any], where: str
) -> str | list[dict[str, str]]:
    """A prompt.yaml's text, or for a chat prompt its messages, with `values` filled in
    (what Prompt.render does, for callers that hold no Prompt, such as the worker)."""
    if "messages" in content:
        return [
            {"role": m["role"], "content": render_string(m["content"], values, where)}
            for m in content["messages"]
        ]
    return render_string(content["template"], values, where)
