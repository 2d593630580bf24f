"""`GET /watch`: a long poll that answers as soon as a watched prompt's stages move.

A client sends the names it serves (none: every prompt) and the cursor of the
last answer it saw. The answer is each prompt's stage tips (the deployment
commits, which are the stage reads' ETags) and a cursor that digests them. The
request waits while the cursor it sent is still the current one, up to `timeout`
seconds, then answers anyway so the client can ask again.

One thread per server notices changes, whoever made them: it stats the store's
beacon (changes.py) every POLL seconds, which every promptgit write rings (the
library in any process, the API, a push's post-receive), and rereads the watched
prompts' tips every RESCAN seconds to catch writes that bypass promptgit. Only
that thread reads tips while requests wait, once per change for all of them, so
a thousand idle watchers cost a thousand parked coroutines and nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from .. import changes
from ..errors import InvalidInput, PromptgitError
from ..store import Store

POLL = 0.02  # seconds between two looks at the beacon: well inside the 100 ms promise
RESCAN = 2.0  # seconds between two rereads of the watched tips without a beacon
RESCAN_SETTING = "PROMPTGIT_WATCH_RESCAN"  # the environment variable that can set it
RESCAN_ALL = 15.0  # the same when some request watches every prompt (a mirror)
MAX_TIMEOUT = 60.0
MAX_NAMES = 500  # more than this: watch every prompt (no prompt= at all)

Tips = dict[str, str | None] | None  # a prompt's stage tips; None: no such prompt now
Answer = dict[str, Tips]


def cursor(answer: Answer) -> str:
    """A digest of the tips: equal cursors, equal tips."""
    text = json.dumps(answer, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def check_names(prompts: list[str]) -> list[str]:
    if len(prompts) > MAX_NAMES:
        raise InvalidInput(
            f"prompt is given {len(prompts)} times, and a watch takes at most {MAX_NAMES}: "
            "leave prompt out to watch every prompt"
        )
    return sorted(set(prompts))


class Watcher:
    """The server's one change-noticing thread, and the requests waiting on it.

    By default each prompt's entry is its stage tips; `replicas=True` makes one for
    mirrors, whose entries name every repository a mirror copies (archived prompts as
    `_archive/NAME`) with the stage tips and `refs`, a digest of every ref, so that
    a draft edit, a deprecation or a test run moves it too."""

    def __init__(
        self, store: Store, *, poll: float = POLL, rescan: float = RESCAN, replicas: bool = False
    ) -> None:
        self.store = store
        self.replicas = replicas
        self.poll = poll
        self.rescan = rescan
        self._lock = threading.Lock()
        self._watched: Counter[str] = Counter()  # names some waiting request watches
        self._everything = 0  # waiting requests that watch every prompt
        self._tips: dict[str, Tips] = {}  # the thread's last read of each watched name
        self._names: list[str] = []  # every prompt, when someone watches them all
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self._last_all: tuple[changes.Stamp | None, float, Answer, str] | None = None
        self._all: tuple[Answer, str] = ({}, cursor({}))  # every prompt's tips and their cursor

    # --- reading tips (in a worker thread, never on the event loop) ----------------

    def read(self, prompts: Iterable[str]) -> Answer:
        """Each prompt's stage tips now."""
        out: Answer = {}
        for name in prompts:
            try:
                out[name] = self.store.replica_state(name) if self.replicas else self.store.tips(name)
            except PromptgitError:  # missing, archived, renamed, or an invalid name
                out[name] = None
        return out

    def names(self) -> list[str]:
        return self.store.replicas() if self.replicas else self.store.names()

    def read_all(self) -> Answer:
        try:
            return self.read(self.names())
        except PromptgitError:  # the store itself is gone
            return {}

    def _now(self, prompts: list[str] | None) -> tuple[Answer, str]:
        """(tips, cursor) now, in a worker thread: a cursor of every prompt hashes them all."""
        if prompts is None:
            return self._everything_now()
        answer = self.read(prompts)
        return answer, cursor(answer)

    def _everything_now(self) -> tuple[Answer, str]:
        """`read_all`, shared: while the beacon has not moved (and for at most RESCAN
        seconds) every request for everything gets the same read, so a crowd of them
        costs one read of the whole store, not one each."""
        stamp = changes.stamp(self.store.path)
        with self._lock:
            last = self._last_all
        if last is not None and last[0] == stamp and time.monotonic() - last[1] < self.rescan:
            return last[2], last[3]
        answer = self.read_all()
        digest = cursor(answer)
        with self._lock:
            self._last_all = (stamp, time.monotonic(), answer, digest)
        return answer, digest

    # --- the request side (on the event loop) ---------------------------------------

    async def watch(self, prompts: list[str] | None, since: str | None, timeout: float) -> dict[str, Any]:
        """{cursor, prompts: the tips of `prompts` (None: every prompt)} once the cursor
        differs from `since`, or after `timeout` seconds whatever it is."""
        from starlette.concurrency import run_in_threadpool

        before = changes.stamp(self.store.path)
        answer, now = await run_in_threadpool(self._now, prompts)
        if since is None or now != since or self._closing:
            return {"cursor": now, "prompts": answer}
        self._start()
        assert self._changed is not None
        deadline = time.monotonic() + min(max(timeout, 0.0), MAX_TIMEOUT)
        self._enter(prompts, answer, now)
        if changes.stamp(self.store.path) != before:  # a write landed before the thread watched it
            answer, now = await run_in_threadpool(self._now, prompts)
            if now != since:
                self._leave(prompts)
                return {"cursor": now, "prompts": answer}
        try:
            while (left := deadline - time.monotonic()) > 0 and not self._closing:
                changed = self._changed
                try:
                    await asyncio.wait_for(changed.wait(), left)
                except TimeoutError:
                    break
                if self._closing:
                    break
                answer, now = self._cached(prompts)
                if now != since:
                    break
        finally:
            self._leave(prompts)
        return {"cursor": now, "prompts": answer}

    def close(self) -> None:
        """On the event loop, as the server shuts down: every waiting request answers now
        (its client asks again, and finds the server gone or back), so no long poll holds
        the shutdown up for its whole timeout."""
        self._closing = True
        if self._changed is not None:
            self._wake()

    def _start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="promptgit-watch", daemon=True)
        self._thread.start()

    def _enter(self, prompts: list[str] | None, answer: Answer, digest: str) -> None:
        with self._lock:
            if prompts is None:
                self._everything += 1
                if self._everything == 1:
                    self._names = sorted(answer)
                    self._all = (answer, digest)
            for name in answer if prompts is None else prompts:
                if prompts is not None:
                    self._watched[name] += 1
                self._tips.setdefault(name, answer[name])

    def _leave(self, prompts: list[str] | None) -> None:
        with self._lock:
            if prompts is None:
                self._everything -= 1
            else:
                self._watched.subtract(prompts)
                self._watched += Counter()  # drop the names nobody watches now
            keep = set(self._watched) | (set(self._names) if self._everything else set())
            self._tips = {n: t for n, t in self._tips.items() if n in keep}

    def _cached(self, prompts: list[str] | None) -> tuple[Answer, str]:
        """(tips, cursor) as the thread last read them: for every prompt, the answer and
        cursor it made once (so a crowd of watchers costs nothing more on the loop); for
        a few hundred names at most, built here."""
        with self._lock:
            if prompts is None:
                return self._all
            answer = {n: self._tips.get(n) for n in prompts}
        return answer, cursor(answer)

    def _wake(self) -> None:
        """On the event loop: wake every waiting request (each then compares its own)."""
        assert self._changed is not None
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # --- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        seen = changes.stamp(self.store.path)
        last_scan = last_full = time.monotonic()
        while True:
            time.sleep(self.poll)
            now = time.monotonic()
            stamp = changes.stamp(self.store.path)
            rang = stamp != seen
            if not rang and now - last_scan < self.rescan:
                continue
            seen, last_scan = stamp, now
            full = rang or now - last_full >= RESCAN_ALL
            if full:
                last_full = now
            try:
                moved = self._refresh(full)
            except Exception:  # a store mid-move: the next look reads it again
                continue
            if moved and self._loop is not None:
                self._loop.call_soon_threadsafe(self._wake)

    def _refresh(self, full: bool) -> bool:
        """Reread the watched tips; whether any changed."""
        with self._lock:
            watched = set(self._watched)
            everything = self._everything > 0
        names = self.names() if everything and full else None  # may raise: the caller retries
        fresh = self.read(sorted(watched | set(names or [])))
        with self._lock:
            before = (self._tips, self._names)
            if names is not None:
                self._names = names
            self._tips = {**self._tips, **fresh}
            moved = before != (self._tips, self._names)
            every = [*self._names] if everything and moved else None
            tips = self._tips
        if every is not None:  # here, not on the event loop: hashing every prompt's tips
            answer = {n: tips.get(n) for n in every}
            digest = cursor(answer)
            with self._lock:
                self._all = (answer, digest)
        return moved


def rescan_setting() -> float:
    """RESCAN, or the seconds $PROMPTGIT_WATCH_RESCAN gives (a store whose every write
    goes through promptgit can rescan rarely); Refused when it is not a number of
    seconds from 0.1 to 86400."""
    from .errors import Refused

    text = os.environ.get(RESCAN_SETTING)
    if text is None:
        return RESCAN
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0.1 <= seconds <= 86400:
        raise Refused(
            f"{RESCAN_SETTING}={text!r} is not a number of seconds from 0.1 to 86400: fix or unset it"
        )
    return seconds
