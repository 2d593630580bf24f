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

from .errors import RenderError

_MISSING = re.compile(r"'([A-Za-z_][A-Za-z0-9_]*)' is undefined")

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment


MAX_SIZE = 1_000_000  # characters or items one operation may build
MAX_EXPONENT = 1000


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    """Jinja2's sandbox, plus limits on what one expression may allocate: the
    sandbox stops code from running, not `'x' * 4000000000` from eating memory."""
    from jinja2 import StrictUndefined
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import SandboxedEnvironment

    def too_big(what: str) -> SecurityError:
        return SecurityError(f"{what} would exceed {MAX_SIZE:,} characters or items")

    class Bounded(SandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "*":
                for seq, n in ((left, right), (right, left)):
                    if isinstance(seq, str | list | tuple) and isinstance(n, int) and len(seq) * n > MAX_SIZE:
                        raise too_big("repeating a sequence")
            if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponents above {MAX_EXPONENT} are not allowed")
            return super().call_binop(context, operator, left, right)

    env = Bounded(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    for name in ("center", "indent"):
        env.filters[name] = _bounded_width(env.filters[name], too_big)
    return env


def _bounded_width(filter_: Any, too_big: Any) -> Any:
    def bounded(value: Any, width: Any = 80, *args: Any, **kwargs: Any) -> Any:
        if isinstance(width, int) and width > MAX_SIZE:
            raise too_big("padding")
        return filter_(value, width, *args, **kwargs)

    return bounded


def variables_of(source: str) -> set[str]:
    """The variables a template reads from its caller (raises TemplateSyntaxError)."""
    from jinja2 import meta

    env = environment()
    return set(meta.find_undeclared_variables(env.parse(source))) - set(env.globals)


class Compiled:
    """One template, compiled once; rendering it is the hot path of `Store.get`."""

    __slots__ = ("_globals", "_template")

    def __init__(self, source: str) -> None:
        env = environment()
        self._template = env.from_string(source)
        # Template.render copies the template's ChainMap of globals on every
        # call; a plain dict copied once per render costs a third as much.
        self._globals = dict(self._template.globals)

    def render(self, values: Mapping[str, Any], where: str = "template") -> str:
        from jinja2 import TemplateError
        from jinja2.exceptions import SecurityError, UndefinedError

        t = self._template
        try:
            context = t.new_context({**self._globals, **values}, shared=True)
            parts, size = [], 0
            for piece in t.root_render_func(context):
                size += len(piece)
                if size > MAX_SIZE:  # loops can multiply output past any one operation's limit
                    raise SecurityError(f"the output would exceed {MAX_SIZE:,} characters")
                parts.append(piece)
            return "".join(parts)
        except UndefinedError as e:
            missing = _MISSING.fullmatch(str(e.message))
            hint = f": pass it, e.g. --var {missing.group(1)}=..." if missing else ""
            raise RenderError(f"{where}: {e.message}{hint}") from None
        except SecurityError as e:
            raise RenderError(f"{where}: the sandbox refused: {e}") from None
        except TemplateError as e:
            raise RenderError(f"{where}: {e}") from None
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as e:
            raise RenderError(f"{where}: {type(e).__name__}: {e}") from None


@lru_cache(maxsize=4096)
def compiled(source: str) -> Compiled:
    return Compiled(source)


def render_string(source: str, values: Mapping[str, Any], where: str = "template") -> str:
    """Render a template in the sandbox; every failure is a RenderError naming `where`."""
    from jinja2 import TemplateError

    try:
        template = compiled(source)
    except TemplateError as e:  # content is validated on write; this is a repo written by hand
        raise RenderError(f"{where}: {e}") from None
    return template.render(values, where)
