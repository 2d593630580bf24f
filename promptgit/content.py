"""The schema of a revision's files: `prompt.yaml` (required), `tests.yaml` (optional).

Validation is a pure function of the text, shared by the library (before it
writes anything) and the pre-receive hook (for every pushed commit). Errors
name the file, the line and the fix.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from . import limits
from .errors import InvalidContent

PROMPT_FILE = "prompt.yaml"
TESTS_FILE = "tests.yaml"
FILES = (PROMPT_FILE, TESTS_FILE)
MAX_FILE_BYTES = 1 << 20

PROMPT_KEYS = {
    "description": "a string of text",
    "model": "a string such as gpt-4o-mini",
    "parameters": "a mapping, e.g. {temperature: 0.2}",
    "variables": "a list of variable names, e.g. [name]",
    "template": "a string (a Jinja2 template)",
    "messages": "a list of {role, content} mappings",
}
MESSAGE_ROLES = ("system", "user", "assistant", "tool")  # chat roles, not access roles
TESTS_KEYS = {"cases": "a list of test cases, each a mapping with a name"}


def _yaml_loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load(text: str, file: str) -> Any:
    """Parse YAML within the limits: hostile YAML is refused here, at write, push and
    read time alike, before it can crash the process or make a reader hang."""
    import yaml

    try:
        _scan(text, file)
        return yaml.load(text, Loader=_yaml_loader())
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        raise InvalidContent(file, f"not valid YAML: {e.problem}; fix the syntax", line) from None
    except yaml.YAMLError as e:
        raise InvalidContent(file, f"not valid YAML: {e}") from None
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as e:
        # a scalar YAML cannot build, such as the date 2024-02-30
        raise InvalidContent(file, f"a value cannot be read: {e}; fix the value") from None


def _scan(text: str, file: str) -> None:
    """Walk the YAML events (libyaml's parser is iterative) and refuse what would hurt
    the composer or a reader: nesting past MAX_DEPTH (libyaml's composer recurses in
    C), aliases that repeat over MAX_ALIAS_NODES nodes (billion laughs) or that sit
    inside their own anchor (a loop), and numbers Python cannot convert.

    Aliases stay allowed: sharing a mapping between test cases is honest YAML; only
    the expansion is bounded. Sizes are counted over the node graph, so a chain of
    anchors that doubles at each step is caught after a few steps, not expanded.
    """
    import yaml
    from yaml import events

    sizes: dict[str, int] = {}  # anchor -> nodes its value expands to
    stack: list[list[Any]] = []  # open collections: [anchor, nodes so far]
    repeated = 0
    resolver = None
    for event in yaml.parse(text, Loader=_yaml_loader()):
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, events.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in stack):
                problem = f"alias *{event.anchor} is used inside its own anchor (a loop): write the value out"
                raise InvalidContent(file, problem, line)
            size = sizes.get(str(event.anchor), 1)  # an undefined alias: yaml.load says so
            repeated += size
            if repeated > limits.MAX_ALIAS_NODES:
                raise InvalidContent(
                    file,
                    f"aliases repeat over {limits.MAX_ALIAS_NODES:,} nodes, the limit: "
                    "write the values out, or alias less",
                    line,
                )
        elif isinstance(event, events.CollectionStartEvent):
            if len(stack) >= limits.MAX_DEPTH:
                problem = f"nests deeper than {limits.MAX_DEPTH} levels, the limit: flatten the structure"
                raise InvalidContent(file, problem, line)
            stack.append([event.anchor, 1])
            continue
        elif isinstance(event, events.CollectionEndEvent):
            anchor, size = stack.pop()
            if anchor is not None:
                sizes[anchor] = size
        elif isinstance(event, events.ScalarEvent):
            size = 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
            if len(event.value) > limits.MAX_NUMBER_CHARS:
                resolver = resolver or yaml.resolver.Resolver()
                tag = event.tag
                if tag in (None, "!"):
                    tag = resolver.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
                if tag in _NUMBER_TAGS:
                    raise InvalidContent(
                        file,
                        f"a number of {len(event.value):,} characters is over the limit of "
                        f"{limits.MAX_NUMBER_CHARS}: quote it to make it a string",
                        line,
                    )
        else:
            continue
        if stack:
            stack[-1][1] += size


_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _nodes(text: str, key: object) -> tuple[Any, Any] | None:
    """The (key node, value node) of a top-level key; the last one wins, as in PyYAML."""
    import yaml

    loader = _yaml_loader()
    try:
        root = yaml.compose(text, Loader=loader)
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode):
        return None
    found = None
    for k, v in root.value:
        if k.value == key or (
            isinstance(k, yaml.ScalarNode) and not k.style and yaml.load(k.value, Loader=loader) == key
        ):
            found = (k, v)
    return found


def line_of(text: str, key: object, index: int | None = None) -> int | None:
    """1-based line of a top-level key (or of item `index` of its list value)."""
    import yaml

    nodes = _nodes(text, key)
    if nodes is None:
        return 1 if text.strip() else None
    k, v = nodes
    if index is not None and isinstance(v, yaml.SequenceNode) and index < len(v.value):
        return int(v.value[index].start_mark.line) + 1
    return int(k.start_mark.line) + 1


def _template_error_line(text: str, lineno: int) -> int | None:
    """The file line of a syntax error at template line `lineno` of `template:`.

    A block scalar's lines are the file's lines below the key; a folded one (>)
    loses its line breaks, so its raw lines are parsed again to find the line.
    """
    from jinja2 import TemplateSyntaxError

    from .render import template_variables

    nodes = _nodes(text, "template")
    if nodes is None:
        return None
    value = nodes[1]
    first = int(value.start_mark.line) + 1  # 1-based line of the scalar's start
    if value.style not in ("|", ">"):
        return first + lineno - 1
    raw = textwrap.dedent("\n".join(text.splitlines()[first : int(value.end_mark.line)]))
    try:
        template_variables(raw)
    except TemplateSyntaxError as e:
        lineno = e.lineno or lineno
    return first + lineno


def mapping_of(text: str, file: str, keys: Mapping[str, str]) -> dict[str, Any]:
    return _mapping(_load(text, file), text, file, keys)


def _mapping(data: Any, text: str, file: str, keys: Mapping[str, str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidContent(file, "must be a YAML mapping of keys such as " + ", ".join(keys), 1)
    for key in data:
        if key not in keys:
            raise InvalidContent(
                file,
                f"unknown key {key!r}: allowed keys are {', '.join(keys)}",
                line_of(text, key),
            )
    return data


@lru_cache(maxsize=1024)
def parse_prompt(text: str, file: str = PROMPT_FILE, templates: bool = True) -> Mapping[str, Any]:
    """Validate prompt.yaml and return it as a mapping (shared: do not mutate).

    `templates=False` skips parsing the Jinja2 templates (and importing Jinja2):
    for reading a revision, whose content was validated when it was written.
    """
    data = mapping_of(text, file, PROMPT_KEYS)

    def bad(key: str, problem: str, index: int | None = None) -> InvalidContent:
        return InvalidContent(file, f"{key}: {problem}", line_of(text, key, index))

    for key in ("description", "model", "template"):
        if key in data and not isinstance(data[key], str):
            raise bad(key, f"must be {PROMPT_KEYS[key]}, not {type(data[key]).__name__}")
    if "parameters" in data and not isinstance(data["parameters"], dict):
        raise bad("parameters", f"must be {PROMPT_KEYS['parameters']}")
    if ("template" in data) == ("messages" in data):
        raise InvalidContent(file, "needs exactly one of 'template' (text) or 'messages' (chat)", 1)

    sources: list[tuple[str, str, int | None]] = []
    if "template" in data:
        sources.append(("template", data["template"], None))
    else:
        messages = data["messages"]
        if not isinstance(messages, list) or not messages:
            raise bad("messages", f"must be {PROMPT_KEYS['messages']} (at least one)")
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict) or set(msg) != {"role", "content"}:
                raise bad("messages", f"item {i + 1} must be a mapping with role and content", i)
            if msg["role"] not in MESSAGE_ROLES:
                raise bad("messages", f"item {i + 1}: role must be one of {', '.join(MESSAGE_ROLES)}", i)
            if not isinstance(msg["content"], str):
                raise bad("messages", f"item {i + 1}: content must be a string", i)
            sources.append(("messages", msg["content"], i))

    if not templates:
        return data
    used = _template_variables(text, file, sources)
    if "variables" in data:
        declared = data["variables"]
        if not isinstance(declared, list):
            raise bad("variables", f"must be {PROMPT_KEYS['variables']}")
        for item in declared:
            if not isinstance(item, str):
                raise bad(
                    "variables",
                    f"must be {PROMPT_KEYS['variables']}; {item!r} is not a name "
                    "(YAML reads words like no, yes, on, null as other types: quote them)",
                )
        if set(declared) != used:
            missing, extra = sorted(used - set(declared)), sorted(set(declared) - used)
            parts = []
            if missing:
                parts.append(f"the template uses {', '.join(missing)} but they are not declared")
            if extra:
                parts.append(f"{', '.join(extra)} declared but not used by the template")
            raise bad("variables", "; ".join(parts) + f" (the template uses: {sorted(used)})")
    return data


def _template_variables(text: str, file: str, sources: list[tuple[str, str, int | None]]) -> set[str]:
    """The variables the templates read; all of a prompt's templates share one size
    limit (limits.MAX_NODES), so a chat prompt cannot spread a huge one over messages."""
    from jinja2 import TemplateSyntaxError

    from .limits import MAX_NODES
    from .parsing import LimitError
    from .render import template_variables

    used: set[str] = set()
    nodes = 0
    for key, source, index in sources:
        try:
            names, size = template_variables(source, MAX_NODES - nodes)
        except TemplateSyntaxError as e:
            if key == "template":
                line = _template_error_line(text, e.lineno or 1)
            else:
                line = line_of(text, key, index)
            if isinstance(e, LimitError):
                raise InvalidContent(file, f"{key}: {e.message}", line) from None
            raise InvalidContent(
                file, f"{key}: template syntax error: {e.message}; fix the Jinja2 syntax", line
            ) from None
        used |= names
        nodes += size
    return used


CASE_KEYS = {
    "name": "a string naming the case",
    "vars": "a mapping of template variables",
    "contains": "a string (or list of strings) the output must contain",
    "not_contains": "a string (or list of strings) the output must not contain",
    "equals": "the exact output, a string",
    "regex": "a regular expression the output must match (re.search)",
    "max_chars": "the most characters the output may have, a whole number",
    "json": "true (the output parses as JSON) or a JSON Schema it must match",
    "error": "a string: rendering must fail with a message containing it",
}


@lru_cache(maxsize=1024)
def parse_tests(text: str, file: str = TESTS_FILE) -> Mapping[str, Any]:
    """Validate tests.yaml: a mapping with a list of named cases and their assertions."""
    data = _load(text, file)
    if data is None:
        return {"cases": []}  # an empty tests.yaml holds no cases
    data = _mapping(data, text, file, TESTS_KEYS)
    cases = data.get("cases", [])
    if not isinstance(cases, list):
        raise InvalidContent(file, "cases: must be a list", line_of(text, "cases"))
    names = set()
    for i, case in enumerate(cases):

        def bad(problem: str, i: int = i) -> InvalidContent:
            return InvalidContent(file, f"cases: item {i + 1}: {problem}", line_of(text, "cases", i))

        if not isinstance(case, dict) or not isinstance(case.get("name"), str):
            raise bad("must be a mapping with a name")
        if case["name"] in names:
            raise bad(f"duplicate case name {case['name']!r}")
        names.add(case["name"])
        _check_case(case, bad)
    return data


def _check_case(case: Mapping[str, Any], bad: Any) -> None:
    """One case's keys and assertion values (regexes compile, schemas are schemas)."""
    import re

    for key in case:
        if key not in CASE_KEYS:
            raise bad(f"unknown key {key!r}: allowed keys are {', '.join(CASE_KEYS)}")
    variables = case.get("vars", {})
    if not isinstance(variables, dict) or not all(isinstance(k, str) for k in variables):
        raise bad(f"vars must be {CASE_KEYS['vars']} whose names are strings")
    for key in ("contains", "not_contains"):
        value = case.get(key, [])
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in items):
            raise bad(f"{key} must be {CASE_KEYS[key]}")
    for key in ("equals", "regex", "error"):
        if key in case and not isinstance(case[key], str):
            raise bad(f"{key} must be {CASE_KEYS[key]}")
    if "regex" in case:
        try:
            re.compile(case["regex"])
        except re.error as e:
            raise bad(f"regex {case['regex']!r} does not compile: {e}") from None
    max_chars = case.get("max_chars", 0)
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 0:
        raise bad(f"max_chars must be {CASE_KEYS['max_chars']}")
    schema = case.get("json", True)
    if not isinstance(schema, bool | dict):
        raise bad(f"json must be {CASE_KEYS['json']}")
    if isinstance(schema, dict):
        from jsonschema import SchemaError, validators

        try:
            validators.validator_for(schema).check_schema(schema)
        except SchemaError as e:
            raise bad(f"json: not a valid JSON Schema: {e.message}") from None
    if "error" in case and set(case) & {"contains", "not_contains", "equals", "regex", "max_chars", "json"}:
        raise bad("a case that expects an error has no output to check: drop its other assertions")


def decode(file: str, data: bytes) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise InvalidContent(file, f"is {len(data)} bytes; the limit is {MAX_FILE_BYTES}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidContent(file, f"is not UTF-8 text (byte {e.start}); save it as UTF-8") from None


def check_files(files: Mapping[str, bytes]) -> None:
    """Validate a revision's whole tree: only prompt.yaml and tests.yaml, both valid."""
    extra = sorted(set(files) - set(FILES))
    if extra:
        raise InvalidContent(extra[0], "is not allowed: a revision holds only prompt.yaml and tests.yaml")
    if PROMPT_FILE not in files:
        raise InvalidContent(PROMPT_FILE, "is missing: every revision needs one")
    parse_prompt(decode(PROMPT_FILE, files[PROMPT_FILE]))
    if TESTS_FILE in files:
        parse_tests(decode(TESTS_FILE, files[TESTS_FILE]))
