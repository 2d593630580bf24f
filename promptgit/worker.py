"""The worker process of `bounded.py`: `python -P -m promptgit.worker`.

It reads requests from stdin (8-byte length, then a pickle: only its parent
writes there) and writes replies to its stdout (8-byte length, then JSON: the
parent never unpickles what hostile content could shape). It exits on EOF, so
it does not outlive its parent, and sets its own CPU limit (RLIMIT_CPU) per
request, so even a parent killed mid-request leaves nothing running for long.
Memory is capped per request with RLIMIT_AS.

It imports only what rendering needs: Jinja2, and for test cases promptgit.prompt_tests
(no pygit2, no click, no server).
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import signal
import struct
import sys
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from .errors import InvalidContent, PromptgitError

HEADER = struct.Struct(">Q")


class _Prompt:
    """What rendering and a test case need of a model.Prompt, without importing the
    model (and pygit2 with it)."""

    def __init__(self, name: str, version: str, revision: str, content: Mapping[str, Any]) -> None:
        self.name, self.version, self.revision, self.content = name, version, revision, content

    def render(self, /, **variables: Any) -> str | list[dict[str, str]]:
        from .render import render_content

        return render_content(self.content, variables, f"{self.name}@{self.version}")


def _read(fd: int, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write(fd: int, reply: Mapping[str, Any]) -> None:
    data = json.dumps(reply).encode()
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _limit(timeout: float, memory: int | None) -> None:
    """This request's ceilings: CPU time (a backstop to the parent's wall-clock kill)
    and address space."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(usage.ru_utime + usage.ru_stime + timeout) + 2
    resource.setrlimit(
        resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard)
    )
    if memory:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(
            resource.RLIMIT_AS, (memory if hard == resource.RLIM_INFINITY else min(memory, hard), hard)
        )


def _unlimit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def _handle(request: Mapping[str, Any]) -> Any:
    if request["op"] == "render":
        from .render import render_content

        return render_content(request["content"], request["values"], request["where"])
    if request["op"] == "case":
        from . import prompt_tests

        env, key = request["env"], request.get("key")
        if env.api_key_env:  # the parent's current value, which it may have set after starting us
            if key is None:
                os.environ.pop(env.api_key_env, None)
            else:
                os.environ[env.api_key_env] = key
        prompt = _Prompt(**request["prompt"])
        return asdict(prompt_tests.run_case(prompt, request["case"], env))  # type: ignore[arg-type]
    raise ValueError(f"unknown request {request['op']!r}")


def _reply(request: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The reply, and whether this worker should retire (it ran out of memory, or grew
    to half its ceiling: the next request gets a fresh process)."""
    memory = request.get("memory")
    _limit(request["timeout"], memory)
    try:
        reply: dict[str, Any] = {"ok": _handle(request)}
    except MemoryError:
        reply = {"memory": True}
    except PromptgitError as e:
        if isinstance(e.__cause__, MemoryError):
            reply = {"memory": True}
        elif isinstance(e, InvalidContent):
            reply = {"error": "InvalidContent", "file": e.file, "problem": e.problem, "line": e.line}
        else:
            reply = {"error": type(e).__name__, "message": e.message, "missing": getattr(e, "missing", None)}
    except Exception as e:  # a bug, or a limit nothing foresaw: never a traceback
        reply = {"error": "crash", "message": f"{type(e).__name__}: {e}"}
    finally:
        _unlimit()
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return reply, "memory" in reply or bool(memory and grown > memory // 2)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    out = os.dup(1)
    os.dup2(2, 1)  # a stray print goes to stderr, never into a reply
    sys.stdout = sys.stderr
    from .render import environment

    environment()  # import and build Jinja2 now, before the first deadline starts
    _write(out, {"ready": os.getpid()})
    while True:
        header = _read(0, HEADER.size)
        if header is None:
            return  # the parent closed our stdin, or exited
        body = _read(0, HEADER.unpack(header)[0])
        if body is None:
            return
        reply, retire = _reply(pickle.loads(body))
        if retire:
            reply["retire"] = True  # the parent stops sending: it reaps us once we exit
        _write(out, reply)
        if retire:
            return


if __name__ == "__main__":
    main()
