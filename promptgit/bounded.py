"""Render and test in a worker process, with a deadline and a memory ceiling.

`Prompt.render` runs in process: microseconds, bounded in memory by the
sandbox's checks, but not in time (two nested loops of 100,000 steps print
nothing and run for hours). Where the content or the variables come from
someone else (the CLI, the HTTP API, the page, test runs), use these:

    bounded.render(prompt, {"name": "Ada"})        # str, or a chat prompt's messages
    bounded.run_tests(prompt, tests, env, by, at)  # a prompt_tests.TestRun

Each call borrows a worker process from a small pool (started on demand, at most
limits.WORKERS; a one-shot CLI command starts one) and waits for its reply on a
pipe, which holds no lock and not the GIL. Past the deadline the worker is
killed, reaped, and replaced by the next call; past the memory ceiling
(RLIMIT_AS) it reports so and retires. A worker exits on EOF of its stdin, so it
does not outlive its parent, and caps its own CPU time per request, so a parent
killed mid-render leaves nothing running past the deadline either.
"""

from __future__ import annotations

import atexit
import json
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import Busy, InvalidContent, RenderError
from .limits import MEMORY, RENDER_TIMEOUT, TEST_TIMEOUT, WAIT, WORKERS

if TYPE_CHECKING:
    from .config import Environment
    from .model import Prompt
    from .prompt_tests import CaseResult, TestRun

__all__ = ["Pool", "render", "run_tests", "shutdown", "start"]

HEADER = struct.Struct(">Q")
MAX_REPLY = 64 << 20  # bytes: a reply holds at most limits.MAX_SIZE characters, JSON-escaped
START_TIMEOUT = 30.0  # seconds for a new worker to import Jinja2 and say it is ready


class _Late(Exception):
    """The worker did not answer in time (it has been killed)."""


class _OutOfMemory(Exception):
    """The worker hit its memory ceiling (it has retired)."""


class _Died(Exception):
    """The worker exited or broke the protocol; the message says how."""

    def __init__(self, how: str, clean: bool = False) -> None:
        super().__init__(how)
        self.clean = clean  # it exited with 0: only ever between requests, never in one


class _Unsendable(Exception):
    """The request cannot be pickled (a variable that is not plain data)."""


class _Worker:
    def __init__(self) -> None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)  # the same promptgit as ours, whatever the caller's sys.path
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "promptgit.worker"],  # -P: never import from the cwd
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # the terminal's Ctrl-C goes to the parent, which kills us
            bufsize=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(self._in, False)
        try:
            self._receive(time.monotonic() + START_TIMEOUT)  # {"ready": pid}
        except BaseException:  # _Late, _Died, or Ctrl-C while it starts
            self.kill()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def call(self, data: bytes, timeout: float) -> Mapping[str, Any]:
        deadline = time.monotonic() + timeout
        self._send(HEADER.pack(len(data)) + data, deadline)
        return self._receive(deadline)  # type: ignore[no-any-return]

    def _send(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            self._wait(self._in, deadline, write=True)
            try:
                view = view[os.write(self._in, view) :]
            except BlockingIOError:
                continue
            except OSError as e:  # BrokenPipeError: it exited while idle, before reading this
                raise _Died(f"it exited ({e.strerror})", clean=self.proc.wait() == 0) from None

    def _receive(self, deadline: float) -> Any:
        (size,) = HEADER.unpack(self._read(HEADER.size, deadline))
        if size > MAX_REPLY:
            raise _Died(f"it sent a reply of {size} bytes")
        try:
            body = self._read(size, deadline)
        except _Died as e:
            raise _Died(str(e)) from None  # mid-reply: never clean
        try:
            return json.loads(body)
        except ValueError:
            raise _Died("it sent a reply that is not JSON") from None

    def _read(self, n: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        while n:
            self._wait(self._out, deadline, write=False)
            chunk = os.read(self._out, min(n, 1 << 20))
            if not chunk:
                code = self.proc.wait()
                how = f"it exited with code {code}" if code >= 0 else f"it was killed by signal {-code}"
                raise _Died(how, clean=code == 0 and not chunks)
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _wait(self, fd: int, deadline: float, write: bool) -> None:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise _Late
            ready = select.select([], [fd], [], left) if write else select.select([fd], [], [], left)
            if ready[0] or ready[1]:
                return

    def kill(self) -> None:
        """Kill and reap: no zombie is left behind."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._close()

    def retire(self) -> None:
        """Let it exit (EOF on its stdin), then reap it; kill it if it lingers."""
        self._close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()

    def _close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


class Pool:
    """At most `size` workers, started on demand; a caller waits up to `wait` seconds
    for a free one. Thread-safe; safe across fork (a child starts its own workers)."""

    def __init__(self, size: int = WORKERS, wait: float = WAIT) -> None:
        self.size, self.wait = size, wait
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._starting = 0
        self._pid = os.getpid()

    def call(self, request: Mapping[str, Any], timeout: float, memory: int | None) -> Any:
        """Run one request in a worker: its result, or _Late / _OutOfMemory / _Died /
        _Unsendable / a PromptgitError the worker raised / Busy."""
        try:
            data = pickle.dumps({**request, "timeout": timeout, "memory": memory}, pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as e:
            raise _Unsendable(str(e)) from None
        for attempt in (1, 2):
            worker = self._acquire()
            healthy = False
            try:
                reply = worker.call(data, timeout)
                healthy = "retire" not in reply
                break
            except _Died as e:
                if not e.clean or attempt == 2:
                    raise
                # it exited cleanly (EOF, retiring) before it read the request: once more
            except _Late:
                raise
            except BaseException:  # KeyboardInterrupt mid-request: never reuse it
                worker.kill()
                raise
            finally:
                self._release(worker, healthy and worker.proc.poll() is None)
        if "ok" in reply:
            return reply["ok"]
        if "memory" in reply:
            raise _OutOfMemory
        if reply.get("error") == "InvalidContent":
            raise InvalidContent(reply["file"], reply["problem"], reply["line"])
        raise RenderError(reply.get("message", "the worker failed"), reply.get("missing"))

    def _acquire(self) -> _Worker:
        deadline = time.monotonic() + self.wait
        with self._cond:
            self._after_fork()
            while True:
                while self._idle:
                    worker = self._idle.pop()
                    if worker.proc.poll() is None:
                        self._busy.add(worker)
                        return worker
                    worker.kill()  # it died while idle (the OOM killer, a signal): reap it
                if len(self._busy) + self._starting < self.size:
                    self._starting += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Busy(
                        f"all {self.size} render workers stayed busy for {self.wait:g} s: "
                        "try again shortly, or raise promptgit.limits.WORKERS"
                    )
                self._cond.wait(left)
        try:
            worker = _Worker()  # outside the lock: starting takes a moment
        except BaseException as e:
            with self._cond:
                self._starting -= 1
                self._cond.notify()
            if isinstance(e, _Late | _Died | OSError):
                raise RenderError(f"a render worker could not start: {e or 'no answer'}") from None
            raise
        with self._cond:
            self._starting -= 1
            self._busy.add(worker)
        return worker

    def _release(self, worker: _Worker, healthy: bool) -> None:
        with self._cond:
            self._busy.discard(worker)
            if healthy and os.getpid() == self._pid:
                self._idle.append(worker)
                worker = None  # type: ignore[assignment]
            self._cond.notify()
        if worker is None:
            return
        if worker.proc.poll() is None:
            worker.retire()
        else:
            worker.kill()

    def _after_fork(self) -> None:
        """In a forked child, forget the parent's workers (closing our copies of their
        pipes, so they still see EOF when the parent exits)."""
        if os.getpid() != self._pid:
            for worker in [*self._idle, *self._busy]:
                worker._close()
            self._idle, self._busy, self._starting, self._pid = [], set(), 0, os.getpid()

    def start(self, count: int = 1) -> None:
        """Start workers now (a server at start-up), so the first renders do not wait."""
        started = [self._acquire() for _ in range(min(count, self.size))]
        for worker in started:
            self._release(worker, True)

    def pids(self) -> list[int]:
        """The process ids of the live workers (for tests and monitoring)."""
        with self._cond:
            return sorted(w.pid for w in [*self._idle, *self._busy] if w.proc.poll() is None)

    def shutdown(self) -> None:
        """Stop every worker and reap it (at exit, and in tests)."""
        with self._cond:
            if os.getpid() != self._pid:
                return
            idle, busy = self._idle, list(self._busy)
            self._idle, self._busy = [], set()
        for worker in busy:
            worker.kill()
        for worker in idle:
            worker.retire()


POOL = Pool()
atexit.register(POOL.shutdown)


def start(count: int = 1) -> None:
    """Start `count` workers now (a server at start-up)."""
    POOL.start(count)


def shutdown() -> None:
    POOL.shutdown()


def render(
    prompt: Prompt,
    variables: Mapping[str, Any],
    *,
    timeout: float = RENDER_TIMEOUT,
    memory: int | None = MEMORY,
) -> str | list[dict[str, str]]:
    """`prompt.render(**variables)` in a worker: the same result or RenderError, and a
    RenderError naming the limit past `timeout` seconds or `memory` bytes; Busy when
    no worker frees up in limits.WAIT seconds."""
    where = f"{prompt.name}@{prompt.version}"
    content = {k: prompt.content[k] for k in ("template", "messages") if k in prompt.content}
    request = {"op": "render", "where": where, "content": content, "values": dict(variables)}
    try:
        result: str | list[dict[str, str]] = POOL.call(request, timeout, memory)
    except _Late:
        raise RenderError(
            f"rendering {where} took over {timeout:g} s, the limit: simplify the template's loops"
        ) from None
    except _OutOfMemory:
        raise RenderError(
            f"rendering {where} needed over {(memory or 0) >> 20} MiB, the limit: "
            "build smaller strings and lists in the template"
        ) from None
    except _Died as e:
        raise RenderError(
            f"rendering {where} stopped its worker process ({e}): simplify the template"
        ) from None
    except _Unsendable as e:
        raise _unsendable(where, e) from None
    return result


def run_tests(
    prompt: Prompt,
    tests: Mapping[str, Any],
    env: Environment,
    by: str,
    at: str,
    *,
    timeout: float | None = None,
    case_timeout: float = RENDER_TIMEOUT,
    memory: int | None = MEMORY,
) -> TestRun:
    """`prompt_tests.run` with each case in a worker: a case past `case_timeout` seconds
    (plus the environment's provider timeout) or `memory` bytes fails, naming the
    limit, and the others still run; past `timeout` for the whole run (default
    limits.TEST_TIMEOUT, plus each case's provider timeout) the cases not yet run
    fail as not run. Raises Busy only if no worker frees up at all."""
    from . import prompt_tests

    openai = env.provider == "openai"
    cases = list(tests.get("cases", []))
    per_case = case_timeout + (env.timeout if openai else 0)
    total = timeout if timeout is not None else TEST_TIMEOUT + (len(cases) * env.timeout if openai else 0)
    deadline = time.monotonic() + total
    key = os.environ.get(env.api_key_env) if env.api_key_env else None
    where = f"{prompt.name}@{prompt.version}"
    data = {"name": prompt.name, "version": prompt.version, "revision": prompt.revision,
            "content": dict(prompt.content)}  # fmt: skip

    def run_case(_: Any, case: Mapping[str, Any], env: Environment) -> CaseResult:
        name = str(case["name"])
        left = deadline - time.monotonic()
        if left <= 0:
            return prompt_tests.CaseResult(
                name, False, f"not run: the test run took over {total:g} s, the limit", 0.0
            )
        limit = min(per_case, left)
        request = {"op": "case", "prompt": data, "case": dict(case), "env": env, "key": key}
        start = time.monotonic()

        def failed(why: str) -> CaseResult:
            return prompt_tests.CaseResult(name, False, why, (time.monotonic() - start) * 1000)

        try:
            return prompt_tests.CaseResult(**POOL.call(request, limit, memory))
        except _Late:
            if limit < per_case:
                return failed(f"the test run took over {total:g} s, the limit, during this case")
            return failed(
                f"took over {limit:g} s, the limit: simplify the template's loops or the case's regex"
            )
        except _OutOfMemory:
            return failed(f"needed over {(memory or 0) >> 20} MiB, the limit: build smaller values")
        except _Died as e:
            return failed(f"stopped its worker process ({e})")
        except _Unsendable as e:
            return failed(str(_unsendable(where, e)))
        except RenderError as e:
            return failed(f"could not run: {e}")

    return prompt_tests.run(prompt, tests, env, by, at, case_runner=run_case)


def _unsendable(where: str, e: _Unsendable) -> RenderError:
    return RenderError(
        f"{where}: the variables cannot be sent to a render worker ({e}): "
        "pass plain data (strings, numbers, lists, mappings)"
    )
