"""`promptgit.Client`: the prompts a promptgit server serves, for applications.

    from promptgit import Client
    prompts = Client("https://prompts.example.com", token=TOKEN, cache_dir="/var/cache/prompts")
    prompts.get("support/greeting", stage="prod").render(name="Ada")

The interface is `Store.get`'s, and so is the `Prompt` it returns. Reads come from
memory. They stay fresh because one background thread per client keeps a watch
request open (`GET /watch`) for the prompts the client has served, and marks
exactly the copies whose stage moved; the next `get` of one fetches it again with
`If-None-Match`. Where the watch cannot be used, a copy older than `max_age`
seconds is revalidated the same way (a 304 is one small round trip).

When the server is unreachable or answers 5xx, `get` serves the last good copy
(from memory, else from the snapshot in `cache_dir`) with `stale=True` and its
`age`, logs one warning per prompt, and the thread retries with backoff until the
server answers again. 404, 410, 401 and 403 are configuration errors: they raise,
and are never served from a copy. A renamed prompt (308) is followed, with one
warning naming the new name.

This module needs the standard library only: no pygit2, no FastAPI, and Jinja2
only once a prompt renders.
"""

from __future__ import annotations

import dataclasses
import functools
import http.client
import logging
import math
import os
import random
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from . import client_snapshots as snapshots
from .client_http import Answer, Endpoint, abort
from .errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    PromptArchived,
    PromptgitError,
    ServerUnavailable,
)
from .model import Prompt
from .names import STAGES, RefSpec, Version, check_name, check_stage

__all__ = ["Client"]

log = logging.getLogger("promptgit.client")

MAX_AGE = 10.0  # seconds a copy is served without asking, where the watch cannot vouch for it
TIMEOUT = 10.0  # seconds for one request (each socket operation, and the whole answer)
POLL = 25.0  # seconds one watch request may wait at the server (which allows 60)
MAX_WATCHED = 500  # more names than the server takes in one watch: watch them all
BACKOFF_FIRST, BACKOFF_MAX = 0.25, 5.0  # seconds between retries while the server is away
WATCH_RETRY = 300.0  # seconds before asking again a server that has no watch endpoint
MAX_REDIRECTS = 3

Key = snapshots.Key
Tips = dict[str, str | None] | None


@dataclass(eq=False)
class _Entry:
    """A copy of one prompt read, and what is known about its freshness. Mutated under
    the client's lock; `get` reads its fields without it."""

    prompt: Prompt
    etag: str  # the server's ETag: the deployment for a stage, the revision for a version
    served: str  # the name the server served it under (a renamed prompt's new name)
    checked: float  # time.monotonic() when the server last vouched for this copy
    released: bool  # a release: its content never changes
    covered: bool = False  # the live watch vouches for it: served without asking
    dirty: bool = False  # the watch saw it change (or the server vanished): ask first
    from_snapshot: bool = False


class _Unavailable(Exception):  # a private signal: turned into stale copies or ServerUnavailable
    """No usable answer: the server is unreachable, timed out, answered 5xx, or
    answered something that is not promptgit's."""


class Client:
    """Read prompts from a promptgit server: fresh by push, served from memory, and
    still served (marked stale) while the server is away.

    - `url`: the server (what `promptgit serve` prints); `token`: a reader token.
    - `cache_dir`: where snapshots of every prompt served are kept, so a restarted
      application can serve while the server is down (None: memory only).
    - `max_age`: seconds a copy is served without asking the server, where the watch
      cannot vouch for it (`watch=False`, a server without `/watch`, a DEV or TST
      draft read by version).
    - `watch`: keep one watch request open for the prompts served (recommended).
    - `timeout`: seconds for one request.

    Safe to share between threads; after `os.fork()` the child drops the parent's
    connections and starts its own watch on its first `get`.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        max_age: float = MAX_AGE,
        watch: bool = True,
        timeout: float = TIMEOUT,
    ) -> None:
        if not (max_age >= 0 and timeout > 0 and math.isfinite(timeout)):
            raise InvalidInput(
                f"invalid max_age={max_age!r} or timeout={timeout!r}: give seconds, max_age >= 0, timeout > 0"
            )
        self._http = Endpoint(url, token, timeout)
        self.url = self._http.url
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if self.cache_dir is not None:
            snapshots.sweep(self.cache_dir)
        self.max_age = max_age
        self.watch = watch
        self.timeout = timeout
        self._entries: dict[Key, _Entry] = {}
        self._closed = False
        self._reset()
        with _registry_lock:
            _clients.add(self)

    def _reset(self) -> None:
        """The per-process state: locks, the thread and its connection (again after fork)."""
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._fetching: dict[Key, threading.Lock] = {}
        self._started = False
        self._thread: threading.Thread | None = None
        self._names: set[str] = set()  # every name asked for: what the watch watches
        self._names_gen = 0  # bumped when a name is added, so the watch asks again
        self._inflight: http.client.HTTPConnection | None = None
        self._watch_conn: http.client.HTTPConnection | None = None
        self._cursor: str | None = None
        self._tips: dict[str, Tips] = {}  # the live watch's last answer
        self._watching = False
        self._watch_retry_at = 0.0  # while the server has no watch endpoint: when to ask again
        self._failures = 0
        self._down: str | None = None  # why the server is unavailable, while it is
        self._warned: set[object] = set()  # what was warned about in this outage or process

    def __repr__(self) -> str:
        return f"Client({self.url!r}, cache_dir={str(self.cache_dir) if self.cache_dir else None!r})"

    # --- reading --------------------------------------------------------------------------

    def get(
        self,
        name: str,
        stage: str = "prod",
        *,
        version: str | None = None,
        ref: str | None = None,
        fallback: str | Prompt | None = None,
    ) -> Prompt:
        """What `stage` serves now (or `version`, e.g. "v1.2", or `ref`, anything
        NAME@REF takes except a revision), as `Store.get` returns it.

        `fallback` is served only when the server cannot answer and no copy is
        cached (in memory or `cache_dir`): a template string, or a `Prompt`; either
        way it comes back with `stale=True` and an infinite `age`. Without one that
        case raises `ServerUnavailable`. Not found (404), archived (410) and a token
        refused (401, 403) always raise."""
        key = (name, "stage", stage) if version is None and ref is None else _key(name, stage, version, ref)
        e = self._entries.get(key)
        if (
            e is not None
            and self._started
            and self._down is None
            and not e.dirty
            and (e.covered or time.monotonic() - e.checked < self.max_age)
        ):
            return e.prompt
        return self._get(key, fallback)

    def _get(self, key: Key, fallback: str | Prompt | None) -> Prompt:
        name, kind, value = key
        check_name(name)
        if kind == "stage":
            check_stage(value)
        if self._closed:
            raise InvalidInput(f"{self!r} is closed: make a new Client")
        self._start()
        with self._fetch_lock(key):
            e = self._entries.get(key)
            self._want(e.served if e is not None else name)
            down = self._down
            if down is not None:  # known away: serve a copy without a round trip
                e = e or self._from_snapshot(key)
                if e is not None:
                    return self._stale(key, e, down)
            elif e is not None and not e.dirty and (e.covered or time.monotonic() - e.checked < self.max_age):
                return e.prompt  # another thread fetched it while this one waited
            try:
                return self._fetch(key, e).prompt
            except _Unavailable as why:
                self._went_down(str(why))
                e = self._entries.get(key) or self._from_snapshot(key)
                if e is not None:
                    return self._stale(key, e, str(why))
                if fallback is not None:
                    return self._fallback(key, fallback, str(why))
                raise ServerUnavailable(
                    self.url, _what(key), str(why), str(self.cache_dir) if self.cache_dir else None
                ) from None

    def _fetch_lock(self, key: Key) -> threading.Lock:
        """One fetch per key at a time: the other threads wait, then read its result."""
        lock = self._fetching.get(key)
        if lock is None:
            with self._lock:
                lock = self._fetching.setdefault(key, threading.Lock())
        return lock

    def _fetch(self, key: Key, e: _Entry | None) -> _Entry:
        """Ask the server for `key` (with If-None-Match when there is a copy) and keep
        the answer; raise for a configuration error, _Unavailable for no answer."""
        name, kind, value = key
        served = e.served if e is not None else name
        headers = {"If-None-Match": f'"{e.etag}"'} if e is not None else {}
        for _ in range(MAX_REDIRECTS + 1):
            answer = self._ask(_path(served, kind, value), headers)
            if answer.status != 308:
                break
            served = self._renamed(key, served, answer)
            headers = {}
        else:
            raise _Unavailable(f"more than {MAX_REDIRECTS} redirects for {_what(key)}")
        status = answer.status
        if status < 500 and self._down is not None:
            self._came_back()
        if status == 304 and e is not None:
            with self._lock:
                e.checked, e.dirty, e.from_snapshot = time.monotonic(), False, False
                self._cover(key, e)
            return e
        if status == 200:
            return self._keep(key, served, answer)
        if status in (404, 410):
            self._forget(key)
            if status == 410:
                raise _remote(PromptArchived, answer.error(), name=served, reason="")
            raise _remote(NotFound, answer.error())
        if status in (401, 403):
            raise _remote(
                Forbidden,
                f"{answer.error()} (Client sends its token= as Authorization: Bearer; it needs role reader)",
            )
        if status >= 500:
            raise _Unavailable(f"it answered {answer.error()}")
        raise _remote(InvalidInput, f"{self.url} refused the read of {_what(key)}: {answer.error()}")

    def _ask(self, path: str, headers: Mapping[str, str]) -> Answer:
        try:
            return self._http.get(path, headers)
        except (OSError, http.client.HTTPException) as e:
            raise _Unavailable(_reason(e)) from None

    def _keep(self, key: Key, served: str, answer: Answer) -> _Entry:
        """A 200: the new copy, in memory and in its snapshot."""
        try:
            data = answer.json()
            if key[1] == "stage":
                prompt, released = snapshots.prompt_from(data), False
            else:
                prompt, released = snapshots.version_prompt(data)
        except (ValueError, RecursionError) as err:
            raise _Unavailable(f"its answer is not a promptgit prompt: {err}") from None
        etag = answer.headers.get("etag", "").removeprefix("W/").strip('"')
        if not etag:
            etag = (prompt.deployment or prompt.revision) if key[1] == "stage" else prompt.revision
        e = _Entry(prompt, etag, prompt.name or served, time.monotonic(), released)
        with self._lock:
            self._cover(key, e)
            self._entries[key] = e
        self._want(e.served)
        if self.cache_dir is not None:
            try:
                snapshots.write(
                    self.cache_dir, key, self.url, snapshots.Snapshot(prompt, etag, released, time.time())
                )
            except OSError as err:
                self._warn_once(
                    ("write", self.cache_dir),
                    "cannot write snapshots to cache_dir %s (%s): serving from memory only",
                    self.cache_dir,
                    err.strerror or err,
                )
        return e

    def _cover(self, key: Key, e: _Entry) -> None:
        """(Under the lock.) Whether the live watch vouches for a copy just confirmed:
        a stage's copy when the watch's last tip is its deployment (else it is marked
        dirty: the watch has seen another tip), a release always, a draft never."""
        tips = self._tips.get(e.served) if self._watching else None
        if tips is None:
            e.covered = False
        elif key[1] == "stage":
            e.covered = tips.get(key[2]) == e.prompt.deployment
            e.dirty = not e.covered
        else:
            e.covered = e.released

    def _renamed(self, key: Key, served: str, answer: Answer) -> str:
        """A 308: the prompt's new name, from Location; warned about once."""
        location = urlsplit(answer.headers.get("location", "")).path
        prefix, suffix = "/prompts/", _route(key[1], key[2])
        location = location.removeprefix(self._http.base)
        new = unquote(location[len(prefix) : len(location) - len(suffix)])
        try:
            if not (location.startswith(prefix) and location.endswith(suffix)):
                raise InvalidInput(location)
            check_name(new)
        except InvalidInput:
            raise _Unavailable(f"it redirected {_what(key)} to {location!r}, not to a prompt read") from None
        self._warn_once(
            ("renamed", key[0], new),
            "prompt '%s' was renamed to '%s' on %s: serving '%s'; use the new name in get() "
            "(the old one stops answering when the server's redirect ends)",
            key[0],
            new,
            self.url,
            new,
        )
        return new

    def _forget(self, key: Key) -> None:
        """Not found or archived: no copy of it is ever served again."""
        with self._lock:
            self._entries.pop(key, None)
        if self.cache_dir is not None:
            snapshots.remove(self.cache_dir, key)

    # --- serving without the server -------------------------------------------------------

    def _from_snapshot(self, key: Key) -> _Entry | None:
        if self.cache_dir is None:
            return None
        try:
            snap = snapshots.read(self.cache_dir, key, self.url)
        except ValueError as err:
            self._warn_once(
                ("snapshot", key),
                "ignoring snapshot %s of %s: %s",
                snapshots.path(self.cache_dir, key),
                _what(key),
                err,
            )
            return None
        if snap is None:
            return None
        checked = time.monotonic() - snap.age
        e = _Entry(
            snap.prompt, snap.etag, snap.prompt.name or key[0], checked, snap.released, from_snapshot=True
        )
        with self._lock:
            e = self._entries.setdefault(key, e)
        self._want(e.served)
        return e

    def _stale(self, key: Key, e: _Entry, why: str) -> Prompt:
        age = max(0.0, time.monotonic() - e.checked)
        self._warn_once(
            ("stale", key),
            "serving %s from %s, %.0f s old, marked stale: server %s is unavailable (%s); "
            "retrying in the background",
            _what(key),
            "its snapshot" if e.from_snapshot else "memory",
            age,
            self.url,
            why,
        )
        return dataclasses.replace(e.prompt, stale=True, age=age)

    def _fallback(self, key: Key, fallback: str | Prompt, why: str) -> Prompt:
        self._warn_once(
            ("stale", key),
            "serving the fallback for %s, marked stale: server %s is unavailable (%s) and no copy is cached",
            _what(key),
            self.url,
            why,
        )
        if isinstance(fallback, Prompt):
            return dataclasses.replace(fallback, stale=True, age=math.inf)
        if not isinstance(fallback, str):
            raise InvalidInput(f"fallback= is {type(fallback).__name__}: give a template string or a Prompt")
        stage = key[2] if key[1] == "stage" else None
        return Prompt(key[0], "fallback", "", {"template": fallback}, stage=stage, stale=True, age=math.inf)

    def _warn_once(self, what: object, message: str, *args: object) -> None:
        with self._lock:
            if what in self._warned:
                return
            self._warned.add(what)
        log.warning(message, *args)

    def _went_down(self, why: str) -> None:
        """The server stopped answering: copies are served stale until it is back; the
        thread retries (a watch request waiting on a dead connection is cut short)."""
        with self._lock:
            if self._down is not None:
                return
            self._down = why
            self._uncover()
            conn = self._inflight
            self._wake.notify_all()
        abort(conn)

    def _came_back(self) -> None:
        with self._lock:
            if self._down is None:
                return
            self._down = None
            self._failures = 0
            self._warned = {w for w in self._warned if not (isinstance(w, tuple) and w[0] == "stale")}
        log.warning("server %s answers again: serving fresh copies", self.url)

    def _uncover(self) -> None:
        """(Under the lock.) The watch stopped: what it vouched for was good until now."""
        now = time.monotonic()
        self._watching = False
        self._tips = {}
        self._cursor = None  # the next watch answers at once: what moved meanwhile
        for e in self._entries.values():
            if e.covered:
                e.covered, e.checked = False, now

    # --- the watch thread -----------------------------------------------------------------

    def _start(self) -> None:
        if self._started:
            return
        with self._lock:
            if self._started:
                return
            self._thread = threading.Thread(target=self._run, name="promptgit-client", daemon=True)
            self._started = True
        self._thread.start()

    def _want(self, name: str) -> None:
        """Make the watch cover `name`: a request waiting without it is cut short."""
        if name in self._names:
            return
        with self._lock:
            if name in self._names:
                return
            self._names.add(name)
            self._names_gen += 1
            conn = self._inflight
            self._wake.notify_all()
        abort(conn)

    def _run(self) -> None:
        """Watch while the server has a watch endpoint; else, while the server is away,
        revalidate every copy with backoff; else sleep until either is needed."""
        while not self._closed:
            if self.watch and time.monotonic() >= self._watch_retry_at:
                delay = self._watch_once()
            elif self._down is not None:
                delay = self._probe()
            else:
                with self._wake:
                    if self._down is None and not self._closed:
                        wait = self._watch_retry_at - time.monotonic() if self.watch else None
                        self._wake.wait(wait)
                continue
            if delay > 0:
                with self._wake:
                    if not self._closed:
                        self._wake.wait(delay)

    def _backoff(self) -> float:
        self._failures += 1
        return min(BACKOFF_FIRST * 2.0 ** (self._failures - 1), BACKOFF_MAX) * random.uniform(0.8, 1.2)

    def _watch_once(self) -> float:
        """One watch request; the seconds to wait before the next."""
        with self._wake:
            if not self._names and not self._closed:
                self._wake.wait(60)
            if not self._names or self._closed:
                return 0
            names = sorted(self._names)
            gen = self._names_gen
            conn = self._watch_conn or self._http.connect(POLL + self.timeout)
            self._inflight = conn
        query = [("prompt", n) for n in names] if len(names) <= MAX_WATCHED else []
        query += [("since", self._cursor)] if self._cursor else []
        query += [("timeout", f"{POLL:g}")]
        try:
            answer = self._http.request(conn, "/watch?" + urlencode(query), None, POLL + self.timeout)
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            with self._lock:
                self._inflight = self._watch_conn = None
                cut = gen != self._names_gen or self._closed
            if cut:
                return 0  # cut short to add a name: ask again at once
            if self._down is None and self._failures == 0:
                self._failures = 1
                return 0  # a dropped idle connection, perhaps: once more at once
            self._went_down(_reason(err))
            return self._backoff()
        keep = answer.status == 200 and conn.sock is not None  # asked again at once: no idle timeout
        if not keep:
            conn.close()
        with self._lock:
            self._inflight = None
            self._watch_conn = conn if keep else None
        if answer.status == 200:
            try:
                cursor, prompts = _watch_answer(answer.json())
            except (ValueError, RecursionError) as err:
                return self._watch_unusable(f"its /watch answer is not promptgit's: {err}")
            self._apply(cursor, prompts, names)
            self._came_back()
            self._failures = 0
            return 0
        if answer.status in (404, 405):
            self._warn_once(
                "no-watch",
                "server %s has no watch endpoint (%s): revalidating copies older than max_age=%gs instead",
                self.url,
                answer.error(),
                self.max_age,
            )
            with self._lock:
                self._watch_retry_at = time.monotonic() + WATCH_RETRY
                self._uncover()
            return 0
        if answer.status in (401, 403):
            with self._lock:  # every copy asks the server first, and the read raises the error
                self._uncover()
                for e in self._entries.values():
                    e.dirty = True
            self._came_back()
            return max(self._backoff(), BACKOFF_MAX)
        return self._watch_unusable(answer.error())

    def _watch_unusable(self, why: str) -> float:
        """The watch answered, but not usefully (a 5xx, a garbled reply): copies fall back
        to max_age, and the watch is asked again after a backoff."""
        self._warn_once(("watch", why), "the watch on %s failed (%s): retrying with backoff", self.url, why)
        with self._lock:
            self._uncover()
        return self._backoff()

    def _apply(self, cursor: str, prompts: Mapping[str, Tips], names: list[str]) -> None:
        """A watch answer: vouch for the copies it confirms, mark dirty those it does not."""
        with self._lock:
            now = time.monotonic()
            before = self._tips
            self._cursor = cursor
            self._tips = {n: prompts.get(n) for n in names}
            self._watching = True
            for key, e in self._entries.items():
                if e.served not in self._tips:
                    continue
                tips = self._tips[e.served]
                if tips is None:  # gone: deleted, archived or renamed
                    e.covered, e.dirty = False, True
                elif key[1] == "stage":
                    e.covered = tips.get(key[2]) == e.prompt.deployment
                    e.dirty = not e.covered
                elif e.released:
                    e.covered = True
                elif e.served in before and before[e.served] != tips:  # an edit moves the stages serving it
                    e.dirty = True
                if e.covered:
                    e.checked = now

    def _probe(self) -> float:
        """Without a watch, while the server is away: after a backoff, revalidate every copy.
        Any answer from the server ends the outage."""
        delay = self._backoff()
        with self._wake:
            if not self._closed:
                self._wake.wait(delay)
        with self._lock:
            keys = list(self._entries.items())
        for key, e in keys:
            if self._closed:
                return 0
            try:
                with self._fetch_lock(key):
                    self._fetch(key, e)
            except _Unavailable:
                return 0
            except PromptgitError:
                pass  # gone or refused: the next get of it raises
        return 0

    # --- status and lifetime --------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """For health checks: whether the server answers (and why not), the prompts the
        live watch covers, and how many copies are cached."""
        with self._lock:
            return {
                "url": self.url,
                "available": self._down is None,
                "unavailable_because": self._down,
                "watching": sorted(self._tips) if self._watching else [],
                "cached": len(self._entries),
            }

    def close(self) -> None:
        """Stop the watch and close the connections (copies already returned stay usable)."""
        with self._lock:
            self._closed = True
            self._started = False  # every get takes the slow path, which refuses
            conn, thread = self._inflight, self._thread
            self._wake.notify_all()
        abort(conn)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.timeout)
        if self._watch_conn is not None:
            self._watch_conn.close()
        self._http.forget()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _forked(self) -> None:
        """In a forked child: the parent's thread is gone and its connections are the
        parent's; keep the copies, unvouched, and start a watch on the next get."""
        conns = {self._watch_conn, self._inflight}
        down = self._down
        self._http.forget()
        self._reset()
        self._down = down
        for e in self._entries.values():
            e.covered = False
        for conn in conns:
            if conn is not None:
                conn.close()  # this process's copy of the socket; the parent's stays open


# --- fork safety: one hook for every client ---------------------------------------------

_clients: weakref.WeakSet[Client] = weakref.WeakSet()
_registry_lock = threading.Lock()
_held: list[Client] = []


def _before_fork() -> None:
    """Fork with no client lock held, so the child's copies are consistent."""
    _registry_lock.acquire()
    _held[:] = list(_clients)
    for c in _held:
        c._lock.acquire()


def _after_fork_parent() -> None:
    for c in _held:
        c._lock.release()
    _held.clear()
    _registry_lock.release()


def _after_fork_child() -> None:
    global _registry_lock
    for c in _held:
        c._forked()
    _held.clear()
    _registry_lock = threading.Lock()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent, after_in_child=_after_fork_child)


# --- small helpers ------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _key(name: str, stage: str, version: str | None, ref: str | None) -> Key:
    if (version is not None) + (ref is not None) + (stage != "prod") > 1:
        raise InvalidInput("give one of stage=, version= or ref= to get()")
    if version is not None:
        return (name, "version", str(Version.parse(version)))
    spec = RefSpec.parse(str(ref))
    if spec.kind == "revision":
        raise InvalidInput(
            f"ref={ref!r} is a revision: a Client reads a stage or a version (e.g. ref='v1.2' or ref='prod')"
        )
    return (name, "stage" if spec.kind == "stage" else "version", spec.value)


def _path(name: str, kind: str, value: str) -> str:
    return f"/prompts/{quote(name, safe='/')}{_route(kind, value)}"


def _route(kind: str, value: str) -> str:
    return f"/{'stages' if kind == 'stage' else 'versions'}/{quote(value, safe='')}"


def _what(key: Key) -> str:
    return f"{key[0]}@{key[2]}"


def _reason(e: BaseException) -> str:
    if isinstance(e, TimeoutError | ConnectionError):
        text = str(e) or type(e).__name__
        return text if isinstance(e, TimeoutError) and str(e) else f"{type(e).__name__}: {text}"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _remote(cls: type[PromptgitError], message: str, **attrs: str) -> PromptgitError:
    """A library error class carrying the server's message (which already says the fix)."""
    err = cls.__new__(cls)
    PromptgitError.__init__(err, message)
    for k, v in attrs.items():
        setattr(err, k, v)
    return err


def _watch_answer(data: Any) -> tuple[str, dict[str, Tips]]:
    """A watch answer's cursor and tips, checked (ValueError names what is wrong)."""
    if not isinstance(data, dict) or not isinstance(data.get("cursor"), str) or len(data["cursor"]) > 200:
        raise ValueError("no cursor")
    prompts = data.get("prompts")
    if not isinstance(prompts, dict):
        raise ValueError("no prompts")
    for tips in prompts.values():
        if tips is not None and not (
            isinstance(tips, dict)
            and set(tips) <= set(STAGES)
            and all(isinstance(t, str | None) for t in tips.values())
        ):
            raise ValueError("tips that are not {stage: sha or null}")
    return data["cursor"], prompts
