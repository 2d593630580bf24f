"""TEST: run a revision's `tests.yaml` cases in a stage's environment.

Providers:
- `render` (default): the output is the rendered prompt itself, which checks
  templates, variables and wording without a model. A chat prompt's output is
  its messages as `[role]` blocks.
- `openai`: any OpenAI-compatible chat-completions server (OpenAI, llama.cpp,
  vLLM, Ollama); model and parameters from prompt.yaml, the environment's
  `model` overriding. The API key is read from the environment variable the
  store config names, and never written anywhere.

A run is recorded by the store as one JSON line in a git note on the tested
revision (`refs/notes/promptgit-tests`).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import Environment
from .errors import ProviderError, RenderError

if TYPE_CHECKING:  # not imported at run time: a render worker runs cases without pygit2
    from .model import Prompt

MAX_SHOWN = 200  # characters of actual output quoted in a failure


@dataclass(frozen=True)
class CaseResult:
    name: str
    passed: bool
    why: str
    ms: float
    output: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "why": self.why, "ms": round(self.ms, 2),
                "output": self.output}  # fmt: skip


@dataclass(frozen=True)
class TestRun:
    name: str
    version: str
    revision: str
    env: Environment
    model: str | None
    by: str
    at: str
    cases: tuple[CaseResult, ...]

    __test__ = False  # not a pytest class

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "revision": self.revision,
            "env": self.env.stage,
            "provider": self.env.provider,
            "model": self.model,
            "by": self.by,
            "at": self.at,
            "passed": self.passed,
            "cases": [c.to_json() for c in self.cases],
        }

    def note_line(self) -> str:
        """What the git note keeps: everything but the outputs, on one line."""
        data = self.to_json()
        data["cases"] = [{k: v for k, v in c.items() if k != "output"} for c in data["cases"]]
        return json.dumps(data, separators=(",", ":"), sort_keys=True)


CaseRunner = Callable[["Prompt", Mapping[str, Any], Environment], "CaseResult"]


def run(
    prompt: Prompt,
    tests: Mapping[str, Any],
    env: Environment,
    by: str,
    at: str,
    *,
    case_runner: CaseRunner | None = None,
) -> TestRun:
    """Run every case; a failing or erroring case never stops the others.

    In process and unbounded in time: a catastrophic regex or a template's loops can
    run for hours. `bounded.run_tests` runs each case in a worker with a deadline.
    """
    runner = case_runner or run_case
    results = tuple(runner(prompt, case, env) for case in tests.get("cases", []))
    model = (env.model or prompt.content.get("model")) if env.provider == "openai" else None
    return TestRun(prompt.name, prompt.version, prompt.revision, env, model, by, at, results)


def run_case(prompt: Prompt, case: Mapping[str, Any], env: Environment) -> CaseResult:
    start = time.perf_counter()
    name = case["name"]

    def result(why: str, output: str | None = None) -> CaseResult:
        return CaseResult(name, not why, why, (time.perf_counter() - start) * 1000, output)

    try:
        rendered = prompt.render(**{str(k): v for k, v in case.get("vars", {}).items()})
    except RenderError as e:
        expected = case.get("error")
        if expected is None:
            return result(f"rendering failed: {e}")
        if expected not in str(e):
            return result(f"rendering failed as expected, but with {str(e)!r}, not {expected!r}")
        return result("")
    if "error" in case:
        return result(f"expected rendering to fail with {case['error']!r}, but it rendered", _text(rendered))
    try:
        output = _text(rendered) if env.provider == "render" else complete(prompt, rendered, env)
    except ProviderError as e:
        return result(f"provider error: {e}")
    try:
        return result(check(case, output), output)
    except Exception as e:  # a case that cannot be checked fails; it never stops the others
        return result(f"could not check the output: {type(e).__name__}: {e}", output)


def _text(rendered: str | list[dict[str, str]]) -> str:
    if isinstance(rendered, str):
        return rendered
    return "\n".join(f"[{m['role']}]\n{m['content']}" for m in rendered)


def _shown(output: str) -> str:
    return repr(output if len(output) <= MAX_SHOWN else output[:MAX_SHOWN] + "...")


def check(case: Mapping[str, Any], output: str) -> str:
    """Why the output fails the case's assertions ("" when it passes them all)."""
    for needle in _as_list(case.get("contains")):
        if needle not in output:
            return f"does not contain {needle!r}; output: {_shown(output)}"
    for needle in _as_list(case.get("not_contains")):
        if needle in output:
            return f"contains {needle!r}, which it must not; output: {_shown(output)}"
    if "equals" in case and output != case["equals"]:
        return f"is not equal to {case['equals']!r}; output: {_shown(output)}"
    if "regex" in case and not re.search(case["regex"], output):
        return f"does not match /{case['regex']}/; output: {_shown(output)}"
    if "max_chars" in case and len(output) > case["max_chars"]:
        return f"has {len(output)} characters, more than max_chars {case['max_chars']}"
    if case.get("json") not in (None, False):
        try:
            value = json.loads(output)
        except ValueError as e:
            return f"is not JSON ({e}); output: {_shown(output)}"
        if isinstance(case["json"], dict):
            from jsonschema import validators

            schema = case["json"]
            errors = sorted(validators.validator_for(schema)(schema).iter_errors(value), key=str)
            if errors:
                where = "/".join(str(p) for p in errors[0].absolute_path) or "the top level"
                return f"does not match the JSON Schema at {where}: {errors[0].message}"
    return ""


def _as_list(value: Any) -> Sequence[str]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def complete(prompt: Prompt, rendered: str | list[dict[str, str]], env: Environment) -> str:
    """One chat-completions call; every failure becomes a ProviderError that says why."""
    import http.client
    import urllib.error
    import urllib.request

    assert env.base_url is not None
    url = env.base_url.rstrip("/") + "/chat/completions"
    model = env.model or prompt.content.get("model")
    if not model:
        raise ProviderError("no model: set model in prompt.yaml or in the environment in promptgit.yaml")
    messages = rendered if isinstance(rendered, list) else [{"role": "user", "content": rendered}]
    body = {**dict(prompt.content.get("parameters") or {}), "model": model, "messages": messages}
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if env.api_key_env:
        key = os.environ.get(env.api_key_env)
        if not key:
            raise ProviderError(
                f"the environment variable {env.api_key_env} is not set: export the API key in it"
            )
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    deadline = time.monotonic() + env.timeout  # for the whole call: a trickling server cannot stretch it
    late = ProviderError(f"no answer from {url} within {env.timeout:g} s")
    try:
        with urllib.request.urlopen(request, timeout=env.timeout) as response:
            raw = _read_until(response, deadline, late)
    except urllib.error.HTTPError as e:
        try:
            detail = _error_text(_read_until(e, deadline, late))
        except (OSError, http.client.HTTPException):
            detail = "(the error body could not be read)"
        raise ProviderError(f"{url} answered {e.code}: {detail}") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise late from None
        raise ProviderError(f"cannot reach {url}: {e.reason}") from None
    except TimeoutError:
        raise late from None
    except (OSError, http.client.HTTPException) as e:
        raise ProviderError(f"the connection to {url} failed: {type(e).__name__}: {e}") from None
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise TypeError(content)
        return content
    except (ValueError, KeyError, IndexError, TypeError):
        raise ProviderError(
            f"{url} answered something that is not a chat completion: {_shown(raw.decode(errors='replace'))}"
        ) from None


def _read_until(response: Any, deadline: float, late: ProviderError) -> bytes:
    """Read a whole body, giving up at `deadline` (socket timeouts bound each read only)."""
    chunks = []
    while chunk := response.read1(65536) if hasattr(response, "read1") else response.read(65536):
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise late
    return b"".join(chunks)


def _error_text(raw: bytes) -> str:
    """The message of an OpenAI-style error body, or the start of whatever came."""
    text = raw.decode("utf-8", "replace")
    try:
        data = json.loads(text)
        message = data["error"]["message"] if isinstance(data.get("error"), dict) else data.get("error")
        if message:
            return str(message)
    except (ValueError, AttributeError, TypeError, KeyError):
        pass
    return text[:MAX_SHOWN] or "(empty body)"
