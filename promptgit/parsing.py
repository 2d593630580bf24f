"""Limits a template must meet before Jinja's recursive parser and compiler see it.

Checked when content is written (InvalidContent) and when a template compiles
(RenderError, for old or hand-written content): number literals Python can
convert and nesting Jinja's parser can take, while lexing (the lexer is
iterative); the size and depth of the tree, and loops nested no deeper than
Python compiles, before the compiler (recursive, and quadratic in branches x
names in its symbol tracking, which jinja2.meta uses too).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.lexer import Lexer, Token

from .limits import MAX_LOOPS, MAX_NESTING, MAX_NODES, MAX_NUMBER_CHARS

if TYPE_CHECKING:
    from .sandbox import BoundedEnvironment

NESTING = (
    f"nests deeper than {MAX_NESTING} levels (blocks, brackets and operators inside one another), "
    "the limit: flatten it with {% set %} or macros"
)
LOOPS = f"nests {{% for %}} loops deeper than {MAX_LOOPS} levels, the limit: flatten the loops"
SIZE = (
    f"has over {MAX_NODES:,} tags, expressions and pieces of text, the limit for a prompt: "
    "split the prompt, or pass data in variables"
)


class LimitError(TemplateSyntaxError):
    """A template over one of the limits; the message names the limit and the fix."""


_OPEN_BLOCKS = {"for", "if", "macro", "call", "filter", "with", "block", "autoescape"}


class BoundedLexer(Lexer):
    """Jinja's lexer (iterative), refusing number literals Python cannot convert and
    nesting Jinja's recursive parser cannot take, with the line they are on."""

    def wrap(
        self, stream: Iterable[tuple[int, str, str]], name: str | None = None, filename: str | None = None
    ) -> Iterator[Token]:
        return super().wrap(_checked(stream, name, filename), name, filename)


def _checked(stream: Iterable[tuple[int, str, str]], name: str | None, filename: str | None) -> Iterator[Any]:
    depth = 0
    tag: str | None = None  # the first word of the block tag being read
    assigns = False  # a {% set %} with "=" is a statement; without, a block
    for lineno, token, value in stream:
        if token in ("integer", "float") and len(value) > MAX_NUMBER_CHARS:
            raise LimitError(
                f"a number of {len(value):,} characters is over the limit of {MAX_NUMBER_CHARS}: "
                "pass big numbers in as variables",
                lineno,
                name,
                filename,
            )
        if token == "operator":
            if value in "([{":
                depth += 1
            elif value in ")]}":
                depth -= 1
            elif value == "=":
                assigns = True
        elif token == "block_begin":
            tag, assigns = "", False
        elif token == "name" and tag == "":
            tag = value
            if value in _OPEN_BLOCKS:
                depth += 1
            elif value.startswith("end") and value != "endset":
                depth -= 1
        elif token == "block_end":
            if tag == "set" and not assigns:
                depth += 1
            elif tag == "endset":
                depth -= 1
            tag = None
        if depth > MAX_NESTING:
            raise LimitError(NESTING, lineno, name, filename)
        yield lineno, token, value


def parse(env: BoundedEnvironment, source: str, max_nodes: int = MAX_NODES) -> tuple[nodes.Template, int]:
    """The tree of a template within the limits, and its number of nodes (raises
    TemplateSyntaxError, or LimitError naming the limit)."""
    try:
        tree = env.parse(source)
    except RecursionError:  # unary chains (not not not ...) recurse in Jinja's parser
        raise LimitError(NESTING, 1) from None
    return tree, _check_tree(tree, max_nodes)


def _check_tree(tree: nodes.Template, max_nodes: int) -> int:
    """Count the nodes, and refuse a tree too big or too deep for Jinja's compiler
    (walked with a stack: the tree may be too deep for recursion)."""
    count = 0
    stack: list[tuple[nodes.Node, int, int]] = [(tree, 0, 0)]
    while stack:
        node, depth, loops = stack.pop()
        count += 1
        if count > max_nodes:
            raise LimitError(SIZE, node.lineno)
        children = list(node.iter_child_nodes())
        if children and not isinstance(node, nodes.Template | nodes.Output):
            depth += 1
            if depth > MAX_NESTING:
                raise LimitError(NESTING, node.lineno)
        if isinstance(node, nodes.For):
            loops += 1
            if loops > MAX_LOOPS:
                raise LimitError(LOOPS, node.lineno)
        stack.extend((child, depth, loops) for child in children)
    return count
