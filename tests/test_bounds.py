"""Hostile content is refused cleanly, or runs within bounded time and memory.

Each attack goes through the library functions that meet it: content.check_files /
parse_prompt / parse_tests at write, push and read time, Prompt.render in
process, and bounded.render / bounded.run_tests in a worker process with a
deadline. Attacks that could hang run under `guard`, a hang guard (generous, not
a timing assertion): a regression fails the test instead of stalling the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, TypeVar

import pytest

from promptgit import bounded, config, content
from promptgit.config import Environment
from promptgit.errors import Busy, InvalidContent, RenderError
from promptgit.model import Prompt
from promptgit.render import render_string

T = TypeVar("T")
HANG = 120.0  # seconds: far above any honest run; only a hang reaches it


def guard(fn: Callable[[], T], seconds: float = HANG) -> T:
    """Run fn in a daemon thread; fail (rather than hang) if it never returns."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # re-raised in the test's thread
            box["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still running after {seconds:g} s: a hang, not a bounded refusal")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def refused(fn: Callable[[], object], error: type[Exception]) -> Exception:
    with pytest.raises(error) as info:
        guard(fn)
    return info.value


# --- YAML: aliases, depth, numbers -------------------------------------------------


def laughs(levels: int = 9, key: str = "parameters") -> str:
    """Billion laughs: each anchor lists the previous one nine times (9**levels nodes)."""
    lines = [f"{key}:", "  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


BOMB_PROMPT = laughs() + "template: hi\n"


def test_billion_laughs_is_refused_at_write_push_and_read_time() -> None:
    for parse in (
        lambda: content.parse_prompt(BOMB_PROMPT),
        lambda: content.parse_prompt(BOMB_PROMPT, templates=False),  # reading a stored revision
        lambda: content.check_files({"prompt.yaml": BOMB_PROMPT.encode()}),  # pre-receive
    ):
        e = refused(parse, InvalidContent)
        assert isinstance(e, InvalidContent) and e.file == "prompt.yaml" and e.line == 6
        assert e.problem == "aliases repeat over 10,000 nodes, the limit: write the values out, or alias less"


def test_a_few_aliases_are_fine() -> None:
    text = (
        "parameters:\n  base: &b {temperature: 0.2}\n  copy: *b\n  merged: {<<: *b, top_p: 1}\ntemplate: hi\n"
    )
    params = content.parse_prompt(text)["parameters"]
    assert params["copy"] == {"temperature": 0.2} and params["merged"] == {"temperature": 0.2, "top_p": 1}


@pytest.mark.parametrize(
    "text",
    ["parameters: {a: &a [*a]}\ntemplate: hi\n", "parameters:\n  a: &a\n    b: *a\ntemplate: hi\n"],
)
def test_a_recursive_alias_is_refused(text: str) -> None:
    for templates in (True, False):
        e = refused(lambda t=templates: content.parse_prompt(text, templates=t), InvalidContent)
        assert isinstance(e, InvalidContent)
        assert e.problem == "alias *a is used inside its own anchor (a loop): write the value out"


def test_billion_laughs_in_test_vars_and_store_config_is_refused() -> None:
    tests = "cases:\n  - name: bomb\n    vars:\n" + laughs().replace("\n  ", "\n        ").replace(
        "parameters:", "      x:"
    )
    e = refused(lambda: content.parse_tests(tests), InvalidContent)
    assert isinstance(e, InvalidContent) and e.file == "tests.yaml"
    assert "over 10,000 nodes, the limit" in e.problem
    e = refused(lambda: config.parse("version: 1\n" + laughs(key="environments")), InvalidContent)
    assert isinstance(e, InvalidContent) and e.file == "promptgit.yaml"
    assert "over 10,000 nodes, the limit" in e.problem


@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_deep_nesting_is_refused_not_a_crash(opener: str) -> None:
    # 100,000 levels crashed the process (libyaml's composer recursed in C: a segfault)
    depth = 100_000
    if opener == "- ":  # a block sequence of sequences: "- - - x"
        text = "parameters:\n  a:\n    " + opener * depth + "x\ntemplate: hi\n"
    else:
        closer = {"[": "]", "{a: ": "}"}[opener]
        text = "parameters: {a: " + opener * depth + "1" + closer * depth + "}\ntemplate: hi\n"
    e = refused(lambda: content.parse_prompt(text, templates=False), InvalidContent)
    assert isinstance(e, InvalidContent) and e.line is not None
    assert e.problem == "nests deeper than 32 levels, the limit: flatten the structure"


@pytest.mark.parametrize(
    "value", ["1" * 100_000, "0x" + "f" * 100_000, '!!int "' + "1" * 5000 + '"', "1" * 101, "1." + "5" * 200]
)
def test_a_huge_number_is_refused(value: str) -> None:
    text = f"parameters:\n  seed: {value}\ntemplate: hi\n"
    e = refused(lambda: content.parse_prompt(text), InvalidContent)
    assert isinstance(e, InvalidContent) and e.line == 2
    assert e.problem.startswith("a number of ")
    assert e.problem.endswith(" characters is over the limit of 100: quote it to make it a string")


def test_a_value_yaml_cannot_build_is_invalid_content() -> None:
    e = refused(lambda: content.parse_prompt("parameters: {day: 2024-02-30}\ntemplate: hi\n"), InvalidContent)
    assert isinstance(e, InvalidContent)
    assert e.problem == "a value cannot be read: day is out of range for month; fix the value"


def test_numbers_and_nesting_within_the_limits_are_fine() -> None:
    text = "parameters: {seed: " + "9" * 100 + ", deep: " + "[" * 30 + "1" + "]" * 30 + "}\ntemplate: hi\n"
    params = content.parse_prompt(text)["parameters"]
    assert params["seed"] == int("9" * 100)


# --- templates: nesting, number literals, size ---------------------------------------


def prompt_yaml(template: str) -> str:
    return "template: " + json.dumps(template) + "\n"  # a JSON string is a YAML scalar


def stored(template: str | None = None, messages: list[str] | None = None) -> Prompt:
    """A Prompt as a hand-written repository could hold it: never validated."""
    body: dict[str, Any] = (
        {"template": template}
        if messages is None
        else {"messages": [{"role": "user", "content": m} for m in messages]}
    )
    return Prompt("greeting", "v1.0", "0" * 40, body)


NESTING = "nests deeper than 32 levels (blocks, brackets and operators inside one another), the limit: flatten it with {% set %} or macros"
DEEP = {
    "parentheses": "{{ " + "(" * 5000 + "x" + ")" * 5000 + " }}",
    "lists": "{{ " + "[" * 5000 + "]" * 5000 + " }}",
    "ifs": "{% if x %}" * 5000 + "{% endif %}" * 5000,
    "unclosed": "{% if x %}" * 10_000,
    "set blocks": "{% set a %}" * 5000 + "{% endset %}" * 5000,
    "nots": "{{ " + "not " * 5000 + "x }}",
    "minus": "{{ " + "- " * 5000 + "x }}",
    "additions": "{{ x" + " + x" * 3000 + " }}",
    "filters": "{{ x" + "|trim" * 3000 + " }}",
    "attributes": "{{ x" + ".a" * 3000 + " }}",
    "conditionals": "{{ " + "x if x else " * 3000 + "x }}",
}


@pytest.mark.parametrize("template", DEEP.values(), ids=DEEP.keys())
def test_deep_nesting_in_a_template_is_refused(template: str) -> None:
    e = refused(lambda: content.parse_prompt(prompt_yaml(template)), InvalidContent)
    assert isinstance(e, InvalidContent) and e.problem == f"template: {NESTING}"
    e = refused(lambda: stored(template).render(x=1), RenderError)
    assert str(e) == f"greeting@v1.0: {NESTING}"


def test_deeply_nested_loops_are_refused() -> None:
    template = "{% for a in x %}" * 25 + "{% endfor %}" * 25  # Python compiles at most 20 nested blocks
    e = refused(lambda: content.parse_prompt(prompt_yaml(template)), InvalidContent)
    assert isinstance(e, InvalidContent)
    assert e.problem == "template: nests {% for %} loops deeper than 16 levels, the limit: flatten the loops"
    e = refused(lambda: stored(template).render(x=[]), RenderError)
    assert str(e).startswith("greeting@v1.0: nests {% for %} loops deeper than 16 levels, the limit")


def test_nesting_within_the_limits_renders() -> None:
    template = (
        "{% for a in x %}"
        + "{% for a in a %}" * 15
        + "{{ a }}"
        + "{% endfor %}" * 16
        + "{{ "
        + "(" * 30
        + "1"
        + ")" * 30
        + " }}"
    )
    assert content.parse_prompt(prompt_yaml(template))["template"] == template
    assert stored(template).render(x=[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]) == "11"


@pytest.mark.parametrize("literal", ["1" * 100_000, "1." + "5" * 1000, "0x" + "f" * 1000])
def test_a_huge_number_literal_in_a_template_is_refused(literal: str) -> None:
    template = "{{ " + literal + " }}"
    e = refused(lambda: content.parse_prompt(prompt_yaml(template)), InvalidContent)
    assert isinstance(e, InvalidContent)
    assert e.problem == (
        f"template: a number of {len(literal):,} characters is over the limit of 100: "
        "pass big numbers in as variables"
    )
    e = refused(lambda: stored(template).render(), RenderError)
    assert str(e).startswith("greeting@v1.0: a number of ")


SIZE = "has over 5,000 tags, expressions and pieces of text, the limit for a prompt: split the prompt, or pass data in variables"


@pytest.mark.parametrize(
    "template",
    [
        "".join(f"{{{{a{i}}}}}" for i in range(100_000)),  # as many variables as 1 MiB holds
        "".join(f"{{% if a{i} %}}x{{% endif %}}" for i in range(35_000)),  # quadratic in Jinja's compiler
    ],
    ids=["variables", "branches"],
)
def test_a_huge_template_is_refused(template: str) -> None:
    text = prompt_yaml(template)
    e = refused(lambda: content.check_files({"prompt.yaml": text.encode()}), InvalidContent)
    assert isinstance(e, InvalidContent) and e.problem == f"template: {SIZE}"
    e = refused(lambda: stored(template).render(), RenderError)
    assert str(e) == f"greeting@v1.0: {SIZE}"


def test_the_size_limit_counts_all_of_a_chat_prompts_messages() -> None:
    message = "".join(f"{{{{a{i}}}}}" for i in range(1000))  # 1,002 nodes each: fine alone
    text = "messages:\n" + "".join(f"  - {{role: user, content: {json.dumps(message)}}}\n" for _ in range(6))
    e = refused(lambda: content.parse_prompt(text), InvalidContent)
    assert isinstance(e, InvalidContent) and e.problem == f"messages: {SIZE}" and e.line == 6


# --- rendering: memory bombs are refused before they allocate -------------------------

# X doubles 40 times (in a namespace: a plain {% set %} in a loop starts afresh each turn)
DOUBLE = "{% set ns = namespace(x='ab') %}{% for i in range(40) %}{% set ns.x = STEP %}{% endfor %}{{ END }}"


def double(step: str, end: str = "X|length") -> str:
    return DOUBLE.replace("STEP", step).replace("END", end).replace("X", "ns.x")


BOMBS = {
    "concat": double("X ~ X"),
    "plus": double("X + X"),
    "join": double("[X, X]|join"),
    "str.join": double("''.join([X, X])"),
    "join-separator": double("range(3)|join(X)"),
    "replace": double("X|replace('a', X)"),
    "str.replace": double("X.replace('', X)"),
    "format": double("'%s%s'|format(X, X)"),
    "percent": double("'%s%s' % (X, X)"),
    "percent-width": "{{ '%999999999s' % 'x' }}",
    "str.format": double("'{}{}'.format(X, X)"),
    "str.format-width": "{{ '{:999999999}'.format('x') }}",
    "wordwrap": double("(X ~ ' ab')|wordwrap(2, wrapstring=X)"),
    "indent": double("(X ~ '\\nab')|indent(X, first=True)"),
    "set-block": "{% macro f(n) %}{% if n %}{% set y %}{{ f(n - 1) }}{% endset %}{{ y }}{{ y }}"
    "{% else %}ab{% endif %}{% endmacro %}{{ f(40)|length }}",
    "macro": "{% macro f(s) %}{{ s }}{{ s }}{% endmacro %}" + double("f(X)"),
    "nested-lists": double("[X, X]", "X"),
    "nested-lists-tojson": double("[X, X]", "X|tojson"),
    "nested-lists-string": double("(X, X)", "X|string|length"),
    "nested-lists-upper": double("[X, X]", "X|upper|length"),
    "nested-lists-concat": double("[X, X]", "'' ~ X"),
    "sum": "{{ ([[1] * 900000] * 900)|sum(start=[])|length }}",
    "batch": "{{ [1]|batch(1000000000000, 0)|list|length }}",
    "slice": "{{ [1]|slice(1000000000)|list|length }}",
    "ljust": "{{ 'x'.ljust(10000000000) }}",
    "center": "{{ 'x'.center(10000000000) }}",
    "zfill": "{{ '1'.zfill(10000000000) }}",
    "expandtabs": "{{ ('\t' * 100).expandtabs(100000000) }}",
    "to_bytes": "{{ (1).to_bytes(10000000000, 'big')|length }}",
    "bytes": "{{ ('x'.encode() * 900000 + 'y'.encode() * 900000)|length }}",
    "squaring": double("X * X").replace("'ab'", "10 ** 999"),
    "power": "{{ (10 ** 999) ** 999 }}",
    "lipsum": "{{ lipsum(1000000000)|length }}",
    "many-big-strings": "{% set ns = namespace(items=[]) %}{% set big = 'x' * 900000 %}"
    "{% for i in range(100000) %}{% set ns.items = ns.items + [big ~ i] %}{% endfor %}{{ ns.items|length }}",
    "slices": "{% set big = 'x' * 999999 %}{% set ns = namespace(items=[]) %}{% for i in range(1000) %}"
    "{% set ns.items = ns.items + [big[i:]] %}{% endfor %}{{ ns.items|length }}",
    "split": "{% set s = 'x ' * 499999 %}{% set ns = namespace(items=[]) %}{% for i in range(1000) %}"
    "{% set ns.items = ns.items + [s.split()] %}{% endfor %}{{ ns.items|length }}",
    "extend": "{% set x = ['ab'] %}{% for i in range(40) %}{% set _ = x.extend(x) %}{% endfor %}{{ x|length }}",
}


@pytest.mark.parametrize("template", BOMBS.values(), ids=BOMBS.keys())
def test_a_memory_bomb_is_refused_before_it_allocates(template: str) -> None:
    e = refused(lambda: stored(template).render(), RenderError)
    message = str(e)
    assert message.startswith("greeting@v1.0: the sandbox refused: "), message
    assert any(
        limit in message
        for limit in (
            "would exceed 1,000,000 characters or items, the limit",
            "over 10,000,000 characters or items in all, the limit",
            "an integer of over 4,000 digits, the limit",
            "exponents above 1000 are not allowed",
        )
    ), message


def test_many_small_values_kept_in_a_list_count_against_the_budget() -> None:
    # each upper() is small (not charged on its own: the hot path); keeping them is charged
    template = "{% set l = [] %}{% for i in range(100000) %}{% set _ = l.append(s|upper) %}{% endfor %}"
    e = refused(lambda: stored(template).render(s="x" * 200), RenderError)
    assert "over 10,000,000 characters or items in all, the limit" in str(e)


def test_the_same_operations_work_within_the_limits() -> None:
    template = (
        "{{ 'ab' ~ 'cd' }} {{ 'ab' + 'cd' }} {{ [1] + [2] }} {{ ['a', 'b']|join('-') }} {{ 'a-b'|replace('-', '+') }} "
        "{{ '%s=%d'|format('n', 3) }} {{ '%s!' % 'hi' }} {{ '{}?'.format('ok') }} {{ 'x'.ljust(3) }}| "
        "{{ [[1, 2], [3]]|sum(start=[]) }} {{ [1, 2, 3]|batch(2, 0)|list }} {{ (2 ** 10) * 3 }} "
        "{% set ns = namespace(n='') %}{% for i in range(3) %}{% set ns.n = ns.n ~ i %}{% endfor %}{{ ns.n }} "
        "{{ {'a': [1, (2, 3)]} }} {{ [1, 2]|tojson }} {{ 'a\tb'.expandtabs(2) }} {{ lipsum(1, False)|length > 0 }}"
    )
    assert render_string(template, {}) == (
        "abcd abcd [1, 2] a-b a+b n=3 hi! ok? x  | [1, 2, 3] [[1, 2], [3, 0]] 3072 012 "
        "{'a': [1, (2, 3)]} [1, 2] a b True"
    )


def test_a_variable_may_be_called_self_or_variables() -> None:
    prompt = stored("{{ variables }} {{ where }} {{ source }} {{ values }}")
    assert prompt.render(self="s", variables="v", where="w", source="src", values="x") == "v w src x"
    assert render_string("{{ self }}", {"self": "s"}) != ""  # Jinja's own `self`, never a TypeError


# --- workers: a deadline and a memory ceiling ---------------------------------------

CPU_BOMBS = {
    "nested-loops": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "macro-tree": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
    "comparisons": "{% set ns = namespace(x='ab') %}{% for i in range(100000) %}{% for j in range(100000) %}"
    "{% if ns.x == 'ab' %}{% endif %}{% endfor %}{% endfor %}",
}


@pytest.mark.parametrize("template", CPU_BOMBS.values(), ids=CPU_BOMBS.keys())
def test_a_cpu_bomb_is_stopped_at_the_deadline(template: str) -> None:
    e = refused(lambda: bounded.render(stored(template), {}, timeout=2), RenderError)
    assert str(e) == "rendering greeting@v1.0 took over 2 s, the limit: simplify the template's loops"


def test_a_worker_renders_what_prompt_render_renders() -> None:
    text = stored("Hello {{ name }}!")
    chat = stored(messages=["You help {{ name }}.", "{{ question }}"])
    variables = {"name": "Ada", "question": "Where is my order?"}
    assert guard(lambda: bounded.render(text, variables)) == text.render(**variables) == "Hello Ada!"
    assert guard(lambda: bounded.render(chat, variables)) == chat.render(**variables)
    e = refused(lambda: bounded.render(text, {}), RenderError)
    assert str(e) == "greeting@v1.0: 'name' is undefined: give it a value"
    e = refused(lambda: bounded.render(stored(BOMBS["concat"]), {}), RenderError)
    assert "would exceed 1,000,000 characters or items, the limit" in str(e)
    e = refused(lambda: bounded.render(stored(DEEP["parentheses"]), {}), RenderError)
    assert str(e) == f"greeting@v1.0: {NESTING}"
    odd = {"self": "s", "prompt": "p", "variables": "v", "timeout": "t", "memory": "m"}
    assert guard(lambda: bounded.render(stored("{{ self }}{{ prompt }}{{ variables }}{{ timeout }}"), odd))


def test_variables_that_are_not_plain_data_are_refused_clearly() -> None:
    e = refused(lambda: bounded.render(stored("{{ f }}"), {"f": lambda: 1}), RenderError)
    assert str(e).startswith("greeting@v1.0: the variables cannot be sent to a render worker (")
    assert str(e).endswith("): pass plain data (strings, numbers, lists, mappings)")


def test_the_memory_ceiling_stops_a_render_and_the_worker_is_replaced() -> None:
    hungry = stored(
        "{% set ns = namespace(items=[]) %}{% for i in range(9) %}"
        "{% set ns.items = ns.items + ['x' * 999999] %}{% endfor %}{{ ns.items|length }}"
    )
    e = refused(lambda: bounded.render(hungry, {}, memory=1 << 20), RenderError)
    assert str(e) == (
        "rendering greeting@v1.0 needed over 1 MiB, the limit: build smaller strings and lists in the template"
    )
    assert guard(lambda: bounded.render(hungry, {})) == "9"  # the default ceiling (512 MiB) is plenty


def test_a_killed_worker_is_reaped_and_replaced() -> None:
    guard(lambda: bounded.render(stored("warm"), {}))
    before = set(bounded.POOL.pids())
    refused(lambda: bounded.render(stored(CPU_BOMBS["nested-loops"]), {}, timeout=1), RenderError)
    assert guard(lambda: bounded.render(stored("Hello {{ name }}"), {"name": "again"})) == "Hello again"
    for pid in before - set(bounded.POOL.pids()):
        with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
            os.waitpid(pid, os.WNOHANG)


def test_concurrent_renders_finish_while_one_worker_burns() -> None:
    results: dict[int, Any] = {}

    def one(i: int) -> None:
        try:
            if i == 0:
                results[i] = bounded.render(stored(CPU_BOMBS["nested-loops"]), {}, timeout=3)
            else:
                results[i] = bounded.render(stored("Hello {{ n }}"), {"n": i})
        except RenderError as e:
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG)
    assert not any(thread.is_alive() for thread in threads)
    assert [results[i] for i in (1, 2, 3)] == ["Hello 1", "Hello 2", "Hello 3"]
    assert isinstance(results[0], RenderError) and "took over 3 s, the limit" in str(results[0])


def test_a_full_pool_says_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = bounded.Pool(size=1, wait=0.5)
    monkeypatch.setattr(bounded, "POOL", pool)

    def burn() -> None:
        with pytest.raises(RenderError):
            bounded.render(stored(CPU_BOMBS["nested-loops"]), {}, timeout=5)

    bomb = threading.Thread(target=burn)
    try:
        bomb.start()
        while not pool.pids():  # until the bomb holds the only worker
            threading.Event().wait(0.05)
        e = refused(lambda: bounded.render(stored("hi"), {}), Busy)
        assert str(e) == (
            "all 1 render workers stayed busy for 0.5 s: try again shortly, or raise promptgit.limits.WORKERS"
        )
    finally:
        bomb.join(HANG)
        pool.shutdown()
    assert pool.pids() == []


SCRIPT = """
import os, signal, sys, threading, time
from promptgit import bounded
from promptgit.model import Prompt
loops = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
if sys.argv[1] == "busy":  # SIGKILLed mid-render: the worker's own CPU limit (2 s + 2) ends it
    prompt = Prompt("p", "v1.0", "0", {"template": loops})
    threading.Thread(target=bounded.render, args=(prompt, {}), kwargs={"timeout": 2}, daemon=True).start()
    while not bounded.POOL.pids():
        time.sleep(0.05)
    time.sleep(0.5)
else:  # SIGKILLed while the worker idles: it reads EOF on its stdin
    bounded.render(Prompt("p", "v1.0", "0", {"template": "hi"}), {})
print(*bounded.POOL.pids(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no cleanup: the worker is on its own
"""


@pytest.mark.parametrize("state", ["idle", "busy"])
def test_a_worker_does_not_outlive_its_parent(state: str) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, state], capture_output=True, text=True, timeout=HANG)
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 1, out
    for _ in range(int(HANG * 10)):
        if not _running(pids[0]):
            break
        threading.Event().wait(0.1)
    assert not _running(pids[0])


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie is for init to reap
    except FileNotFoundError:
        return False


def test_the_worker_imports_only_what_rendering_needs() -> None:
    code = (
        "import sys, promptgit.worker, promptgit.prompt_tests, promptgit.render\n"
        "promptgit.render.environment()\n"
        "print(sorted(m for m in ('pygit2', 'click', 'fastapi', 'promptgit.model', 'promptgit.store') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- test runs: each case bounded, the run too -----------------------------------------

GREETING_TESTS = {
    "cases": [
        {"name": "greets", "vars": {"name": "Ada"}, "contains": "Hello Ada"},
        {"name": "redos", "vars": {"name": "a" * 40 + "b"}, "regex": "^Hello (a+)+$"},
        {"name": "still runs", "vars": {"name": "Bo"}, "equals": "Hello Bo"},
    ]
}


def test_a_catastrophic_regex_fails_its_case_and_the_others_still_run() -> None:
    prompt = stored("Hello {{ name }}")
    run = guard(
        lambda: bounded.run_tests(prompt, GREETING_TESTS, Environment("dev"), "Ada", "now", case_timeout=1)
    )
    assert [(c.name, c.passed, c.why) for c in run.cases] == [
        ("greets", True, ""),
        ("redos", False, "took over 1 s, the limit: simplify the template's loops or the case's regex"),
        ("still runs", True, ""),
    ]
    assert not run.passed and run.revision == "0" * 40 and run.env.stage == "dev"


def test_a_whole_run_has_a_deadline_too() -> None:
    tests = {"cases": [{**GREETING_TESTS["cases"][1], "name": f"redos {i}"} for i in range(3)]}
    run = guard(
        lambda: bounded.run_tests(
            stored("Hello {{ name }}"), tests, Environment("dev"), "Ada", "now", timeout=1.5, case_timeout=1
        )
    )
    assert [c.why for c in run.cases] == [
        "took over 1 s, the limit: simplify the template's loops or the case's regex",
        "the test run took over 1.5 s, the limit, during this case",
        "not run: the test run took over 1.5 s, the limit",
    ]


def test_memory_and_render_failures_in_a_case_are_case_failures() -> None:
    tests = {
        "cases": [
            {"name": "bomb", "vars": {}, "contains": "x"},
            {"name": "expected", "vars": {}, "error": "would exceed 1,000,000"},
        ]
    }
    run = guard(lambda: bounded.run_tests(stored(BOMBS["plus"]), tests, Environment("dev"), "Ada", "now"))
    bomb, expected = run.cases
    assert not bomb.passed and bomb.why.startswith("rendering failed: greeting@v1.0: the sandbox refused: ")
    assert expected.passed


class _Echo(BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Echo.seen.append(self.headers.get("Authorization"))
        data = json.dumps(
            {"choices": [{"message": {"content": "ANSWER " + body["messages"][-1]["content"]}}]}
        )
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data.encode())

    def log_message(self, *args: Any) -> None:
        pass


def test_the_openai_provider_works_from_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    guard(lambda: bounded.render(stored("warm"), {}))  # a worker started before the key is set
    monkeypatch.setenv("BOUNDS_TEST_KEY", "sk-bounds")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = Environment(
            "tst", "openai", f"http://127.0.0.1:{server.server_address[1]}/v1", "m", "BOUNDS_TEST_KEY", 5
        )
        tests = {"cases": [{"name": "n", "vars": {"name": "Ada"}, "equals": "ANSWER Hello Ada"}]}
        run = guard(lambda: bounded.run_tests(stored("Hello {{ name }}"), tests, env, "Ada", "now"))
    finally:
        server.shutdown()
        server.server_close()
    assert [(c.passed, c.why) for c in run.cases] == [(True, "")]
    assert run.model == "m" and _Echo.seen == ["Bearer sk-bounds"]
