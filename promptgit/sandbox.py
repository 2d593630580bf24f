"""Jinja2's sandbox, bounded in what a template may cost (imported on first render).

The sandbox stops a template from running code; `BoundedEnvironment` also stops
it from eating the memory of the process that renders it. It parses within the
limits of parsing.py, and checks, BEFORE it allocates, every operation that can
build a value much larger than its inputs (+, *, %, **, ~, slices, the filters
and str methods that pad, repeat, join or replace, growing a list or dict, block
and macro output), and charges what each builds to the render's budget, so a
loop cannot pile up many allowed values either. Values that print larger than
they are (a list holding another twice, forty times over) are measured on their
graph before they become text.

CPU time is not bounded here: `bounded.py` renders in a worker with a deadline.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping, Sized
from contextvars import ContextVar
from types import BuiltinMethodType
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter
from jinja2.lexer import Lexer
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import Namespace, generate_lorem_ipsum

from .limits import MAX_EXPONENT, MAX_INT_DIGITS, MAX_SIZE, MAX_TOTAL
from .parsing import BoundedLexer

MAX_INT_BITS = int(MAX_INT_DIGITS * 3.3219)  # log2(10) bits per decimal digit

# --- the render's budget ------------------------------------------------------------

# Characters and items built so far by the render running in this context (None
# outside a render: compile-time constant folding, where each operation is still
# bounded alone).
spent: ContextVar[list[int] | None] = ContextVar("promptgit_spent", default=None)


def _spend(n: int) -> None:
    total = spent.get()
    if total is not None:
        total[0] += n
        if total[0] > MAX_TOTAL:
            raise SecurityError(
                f"the template would build over {MAX_TOTAL:,} characters or items in all, "
                "the limit: build less inside loops"
            )


def _charge(n: int, what: str) -> None:
    """Refuse an operation that would build more than MAX_SIZE, else count it."""
    if n > MAX_SIZE:
        raise SecurityError(
            f"{what} would exceed {MAX_SIZE:,} characters or items, the limit: build smaller values"
        )
    _spend(n)


_SEQUENCES = (str, bytes, bytearray, list, tuple)
_SIZED = (*_SEQUENCES, dict, set)
_SCALARS = frozenset({int, float, bool, type(None)})
# A filter's result this small is not charged to the budget (it is the hot path): to
# pile many up, a template must keep them in a list, a dict or a string, and growing
# those is charged by what they hold.
_SMALL = 256
_GROWS = {"append", "extend", "insert", "update", "setdefault", "add"}
_CONTAINERS: tuple[type, ...] = (
    list,
    tuple,
    dict,
    set,
    frozenset,
    Namespace,
    type({}.keys()),
    type({}.values()),
)


def _children(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    if isinstance(value, Namespace):
        return _children(object.__getattribute__(value, "_Namespace__attrs"))
    return list(value)


def _weight(value: Any) -> int:
    """About how many characters str(value) or JSON of it would build, stopping just past
    MAX_SIZE. Counted on the graph of containers: a value that holds another twice,
    forty times over, weighs 2**40 without being walked 2**40 times."""
    if not isinstance(value, _CONTAINERS):
        return _scalar_weight(value)
    memo: dict[int, int] = {}
    keep: list[Any] = []  # children built on the fly (dict items) stay alive: ids stay unique
    stack: list[tuple[Any, list[Any] | None]] = [(value, None)]
    while stack:
        node, children = stack.pop()
        if children is None:
            if id(node) in memo:
                continue
            memo[id(node)] = 4  # while inside itself, a loop prints as [...]
            children = list(_children(node))
            keep.append(children)
            stack.append((node, children))
            stack.extend((c, None) for c in children if isinstance(c, _CONTAINERS) and id(c) not in memo)
            continue
        total = 2
        for child in children:
            total += 2 + (memo[id(child)] if isinstance(child, _CONTAINERS) else _scalar_weight(child))
            if total > MAX_SIZE:
                return total
        memo[id(node)] = total
    return memo[id(value)]


def _scalar_weight(value: Any) -> int:
    if isinstance(value, str | bytes | bytearray):
        return len(value) + 2
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    return 8


def _text(value: Any, what: str) -> str:
    """str(value), measured first when it is a container (it may print enormous)."""
    if type(value) is not str and isinstance(value, _CONTAINERS):
        _charge(_weight(value), what)
    return str(value)


# --- filters, methods and globals that build large values ----------------------------

_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


def _printf_size(fmt: str | bytes, args: Any) -> int:
    """An upper bound on the size of `fmt % args` (widths and precisions included)."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes | bytearray) else fmt
    values = (
        list(args.values())
        if isinstance(args, Mapping)
        else list(args)
        if isinstance(args, tuple)
        else [args]
    )
    widest = max([_weight(v) for v in values] or [0])
    stars = max([v for v in values if isinstance(v, int)] or [0])
    size = len(text)
    for match in _PRINTF.finditer(text):
        for number in match.groups():
            size += stars if number == "*" else int(number or 0)
        size += widest
    return size


def _format_size(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """An upper bound on the size of `fmt.format(*args, **kwargs)`."""
    values = [*args, *kwargs.values()]
    widest = max([_weight(v) for v in values] or [0])
    numbers = max([v for v in values if isinstance(v, int)] or [0])
    size = len(fmt)
    for _, field, spec, _ in string.Formatter().parse(fmt):
        if field is None:
            continue
        size += widest
        if spec:
            size += sum(int(n) for n in re.findall(r"\d+", spec)) + (numbers if "{" in spec else 0)
    return size


def _replace_size(s: str | bytes, old: Any, new: Any, count: Any = -1) -> int:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return len(s)
    n = s.count(old) if old else len(s) + 1  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        n = min(n, count)
    return len(s) + n * max(0, len(new) - len(old))


def _join_size(separator: Any, items: list[Any]) -> int:
    sizes = sum(len(i) if isinstance(i, str | bytes) else _weight(i) for i in items)
    return sizes + len(separator) * max(0, len(items) - 1)


def _method_size(owner: str | bytes | bytearray, name: str, args: tuple[Any, ...]) -> int | None:
    """An upper bound on what a str or bytes method builds; None when it is no bigger
    than its input."""
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        return max(len(owner), args[0])
    if name == "expandtabs":
        tab = args[0] if args and isinstance(args[0], int) else 8
        return len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * max(tab, 0)  # type: ignore[arg-type]
    if name == "replace" and len(args) >= 2:
        return _replace_size(owner, *args[:3])  # type: ignore[arg-type]
    if name == "translate" and args and isinstance(args[0], dict):
        widest = max([len(v) for v in args[0].values() if isinstance(v, str)] or [1])
        return len(owner) * widest
    if name == "encode":
        return len(owner) * 4
    return None


def _filters(env: BoundedEnvironment) -> None:
    """Wrap Jinja's filters: estimate and charge before the ones that multiply their
    input, measure containers before the ones that print them, and charge what each
    builds."""
    builds = {
        "capitalize", "center", "dictsort", "escape", "e", "forceescape", "format", "indent", "list",
        "lower", "pprint", "replace", "reverse", "sort", "string", "striptags", "title", "tojson", "trim",
        "truncate", "unique", "upper", "urlencode", "urlize", "wordwrap", "xmlattr", "items",
    }  # fmt: skip
    prints = builds - {"dictsort", "list", "reverse", "sort", "unique", "items"} | {"wordcount", "safe"}

    def center(value: Any, width: Any = 80, *_: Any, **__: Any) -> int:
        return max(len(_text(value, "centering")), int(width) if isinstance(width, int) else 0)

    def indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> int:
        text = _text(s, "indenting")
        pad = int(width) if isinstance(width, int) else len(str(width))
        return len(text) + (text.count("\n") + 1) * max(pad, 0)

    def wordwrap(
        s: Any, width: Any = 79, long: Any = True, wrapstring: Any = None, *_: Any, **__: Any
    ) -> int:
        text = _text(s, "wrapping")
        return len(text) + (len(text) + 1) * (len(wrapstring) if isinstance(wrapstring, str) else 1)

    def replace(s: Any, old: Any, new: Any, count: Any = None, **__: Any) -> int:
        return _replace_size(_text(s, "replacing"), str(old), str(new), count if count is not None else -1)

    def format_(value: Any, *args: Any, **kwargs: Any) -> int:
        return _printf_size(_text(value, "formatting"), kwargs or args)

    def batch(value: Any, linecount: Any = 0, fill_with: Any = None, **__: Any) -> int:
        return linecount if fill_with is not None and isinstance(linecount, int) else 0

    def slice_(value: Any, slices: Any = 0, fill_with: Any = None, **__: Any) -> int:
        return slices if isinstance(slices, int) else 0

    estimates: dict[str, Callable[..., int]] = {
        "center": center, "indent": indent, "wordwrap": wordwrap, "replace": replace,
        "format": format_, "batch": batch, "slice": slice_,
    }  # fmt: skip
    for name, filter_ in list(env.filters.items()):
        env.filters[name] = _bounded_filter(
            name, filter_, estimates.get(name), name in prints, name in builds
        )
    env.filters["join"] = _bounded_join(env.filters["join"])
    env.filters["sum"] = _bounded_sum(env.filters["sum"])


def _bounded_filter(
    name: str, filter_: Any, estimate: Callable[..., int] | None, prints: bool, builds: bool
) -> Any:
    if estimate is None and not prints and not builds:
        return filter_  # returns or looks at what it was given: nothing to bound
    skip = 1 if getattr(filter_, "jinja_pass_arg", None) is not None else 0
    what = "padding" if name in ("center", "indent") else f"the filter {name}"

    def bounded(*args: Any, **kwargs: Any) -> Any:
        if estimate is not None:
            _charge(estimate(*args[skip:], **kwargs), what)
        elif prints and len(args) > skip:
            value = args[skip]
            if type(value) is not str and isinstance(value, _CONTAINERS):
                _charge(_weight(value), what)
        result = filter_(*args, **kwargs)
        if builds and isinstance(result, _SEQUENCES) and len(result) > _SMALL:
            _built(len(result), what)
        return result

    def lean(value: Any, *args: Any, **kwargs: Any) -> Any:
        """The same for most filters, on the hot path: forwarding empty *args and
        **kwargs costs more than the filter itself."""
        if type(value) is not str and prints and isinstance(value, _CONTAINERS):
            _charge(_weight(value), what)
        result = filter_(value, *args, **kwargs) if args or kwargs else filter_(value)
        if builds and isinstance(result, _SEQUENCES) and len(result) > _SMALL:
            _built(len(result), what)
        return result

    if estimate is None and not skip:
        return lean
    if skip:
        bounded.jinja_pass_arg = filter_.jinja_pass_arg  # type: ignore[attr-defined]
    return bounded


def _built(n: int, what: str) -> None:
    """_charge, for the hot path: one call, the budget read once."""
    total = spent.get()
    if n > MAX_SIZE or (total is not None and total[0] + n > MAX_TOTAL):
        _charge(n, what)
    elif total is not None:
        total[0] += n


def _bounded_join(join: Any) -> Any:
    def bounded(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
        items = list(value)
        _charge(len(items), "the filter join")
        if attribute is not None:
            getter = make_attrgetter(eval_ctx.environment, attribute)
            items = [getter(item) for item in items]
        _charge(_join_size(str(d), items), "the filter join")
        return join(eval_ctx, items, d)  # type: ignore[no-any-return]

    bounded.jinja_pass_arg = join.jinja_pass_arg  # type: ignore[attr-defined]
    return bounded


def _bounded_sum(sum_: Any) -> Any:
    def bounded(environment: Any, iterable: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
        items = list(iterable)
        if attribute is not None:
            getter = make_attrgetter(environment, attribute)
            items = [getter(item) for item in items]
        if isinstance(start, _SEQUENCES) or any(isinstance(i, _SEQUENCES) for i in items):
            running = len(start) if isinstance(start, _SEQUENCES) else 0
            copied = 0
            for item in items:  # sum() copies the running total at each step
                running += len(item) if isinstance(item, _SEQUENCES) else 0
                copied += running
                _charge(running, "the filter sum")
            _spend(copied)
        return sum_(environment, items, start=start)

    bounded.jinja_pass_arg = sum_.jinja_pass_arg  # type: ignore[attr-defined]
    return bounded


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if all(isinstance(v, int) for v in (n, min, max)):
        _charge(n * (abs(min) + abs(max)) * 12, "lipsum")
    return str(generate_lorem_ipsum(n, html, min, max))


# --- the environment ---------------------------------------------------------------


class _Buffer(list[str]):
    """The output of a macro, a {% set %} block or a {% filter %} block: bounded as it
    grows (Jinja joins these lists only when the block ends)."""

    __slots__ = ("size",)

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def append(self, piece: str) -> None:
        self.size += len(piece)
        if self.size > MAX_SIZE:
            _charge(self.size, "the output of a macro or block")
        _spend(len(piece))
        super().append(piece)

    def extend(self, pieces: Iterable[str]) -> None:
        for piece in pieces:
            self.append(piece)


class _CodeGenerator(CodeGenerator):
    """Jinja's compiler, with output, block buffers, `~` and slices going through the
    bounded versions."""

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.new_buffer()")

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:  # never: autoescape is off
            super()._output_child_pre(node, frame, finalize)
        else:
            self.write("environment.to_text(")  # str(), measuring containers first

    @optimizeconst
    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if not isinstance(node.arg, nodes.Slice):
            return super().visit_Getitem(node, frame)
        self.write("environment.slice_bounded(")  # Jinja writes slices as x[a:b], unchecked
        self.visit(node.node, frame)
        for part in (node.arg.start, node.arg.stop, node.arg.step):
            self.write(", ")
            if part is None:
                self.write("None")
            else:
                self.visit(part, frame)
        self.write(")")
        return None

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat_bounded((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedEnvironment(SandboxedEnvironment):
    """The sandbox, with strict undefined variables and every allocating operation
    bounded, including growing a list, dict or set in place."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        self._bounded_lexer = BoundedLexer(self)
        self.globals["lipsum"] = _lipsum
        _filters(self)

    @property
    def lexer(self) -> Lexer:
        return self._bounded_lexer

    @staticmethod
    def new_buffer() -> _Buffer:
        return _Buffer()

    @staticmethod
    def to_text(value: Any) -> str:
        """Every {{ value }} passes here: a container is measured before it becomes text."""
        cls = type(value)
        if cls is str:
            return value  # type: ignore[no-any-return]
        if cls not in _SCALARS and isinstance(value, _CONTAINERS):
            _charge(_weight(value), "printing a value")
        return str(value)

    @staticmethod
    def concat_bounded(values: tuple[Any, ...]) -> str:
        try:  # the common case: strings only, joined once their size is known
            size = sum(map(len, values))
            if size <= MAX_SIZE:
                text = "".join(values)
                _spend(size)
                return text
        except TypeError:  # a number, or a list that must print first
            pass
        parts = []
        size = 0
        for value in values:
            if type(value) is not str:
                value = _text(value, "joining values with ~")
            size += len(value)
            parts.append(value)
        _charge(size, "joining values with ~")
        return "".join(parts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "+":
            if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
                _charge(len(left) + len(right), "joining two values with +")
        elif operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, _SEQUENCES) and isinstance(n, int):
                    _charge(len(seq) * n, "repeating a sequence")
            if isinstance(left, int) and isinstance(right, int):
                _check_bits(left.bit_length() + right.bit_length(), "multiplying")
        elif operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponents above {MAX_EXPONENT} are not allowed, the limit")
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
                _check_bits(left.bit_length() * right, "raising to a power")
        elif operator == "%" and isinstance(left, str | bytes):
            _charge(_printf_size(left, right), "formatting with %")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str | bytes | bytearray):
            if name == "join" and args:
                items = list(args[0])
                _charge(_join_size(owner, items), f"{type(owner).__name__}.join")
                args = (items, *args[1:])
            else:
                size = _method_size(owner, name, args)
                if size is not None:
                    _charge(size, f"{type(owner).__name__}.{name}")
        elif isinstance(owner, list | dict | set) and name in _GROWS:
            if name in ("extend", "update"):
                args = tuple(a if isinstance(a, Sized) else list(a) for a in args)
                added = [v for a in args for v in (a.values() if isinstance(a, Mapping) else a)]
                added += kwargs.values()
            else:
                added = list(args[-1:])  # append(x), insert(i, x), add(x), setdefault(k, x)
            if len(owner) + len(added) > MAX_SIZE:
                _charge(len(owner) + len(added), f"{type(owner).__name__}.{name}")
            _spend(len(added) + sum(len(v) for v in added if isinstance(v, str | bytes)))
        elif isinstance(owner, int) and name == "to_bytes":
            length = args[0] if args else kwargs.get("length", 1)
            if isinstance(length, int):
                _charge(length, "int.to_bytes")
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(__obj, BuiltinMethodType) and isinstance(result, _SIZED):
            _spend(len(result))  # split(), copy(), keys()...: new values, even when not bigger
            if isinstance(owner, str | bytes) and isinstance(result, list | tuple):
                _spend(len(owner))  # and the pieces they hold
        return result

    @staticmethod
    def slice_bounded(value: Any, start: Any, stop: Any, step: Any) -> Any:
        part = slice(start, stop, step)
        if isinstance(value, _SEQUENCES):
            _spend(len(range(*part.indices(len(value)))))  # a slice is a copy
        return value[part]

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        format_ = super().wrap_str_format(value)
        if format_ is None:
            return None
        fmt = value.__self__

        def bounded(*args: Any, **kwargs: Any) -> str:
            if value.__name__ == "format_map" and args and isinstance(args[0], Mapping):
                _charge(_format_size(fmt, (), args[0]), "str.format_map")
            else:
                _charge(_format_size(fmt, args, kwargs), "str.format")
            return format_(*args, **kwargs)

        return bounded


def _check_bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise SecurityError(
            f"{what} would make an integer of over {MAX_INT_DIGITS:,} digits, the limit: use smaller numbers"
        )
