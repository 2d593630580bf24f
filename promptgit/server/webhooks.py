"""The server's webhook threads: one watching the change beacon and promptgit.yaml,
and one `Worker` per webhook, so a receiver that is down or slow only holds back
its own webhook. What they read, write and send is in ../webhooks.py.

A worker wakes when the store's beacon rings (changes.py: every promptgit write,
in any process, rings it; looked at every POLL seconds) and every RESCAN seconds
(a write that bypasses promptgit), takes its webhook's lock (one server per
webhook), loads the cursor, reads what is new out of git and delivers it in
order, moving the cursor after each delivery.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .. import __version__, changes, locks, webhook_events
from .._git import Repo
from ..config import Webhook
from ..errors import PromptgitError
from ..lifecycle import PENDING
from ..model import WebhookDelivery
from ..names import ARCHIVE
from ..store import Store
from ..webhooks import FOLDER, Cursor, Journal, delivery_id, failure, now, post, sign

BACKOFF = 1.0  # seconds before the first retry; doubled each time
MAX_BACKOFF = 300.0
POLL = 0.05  # seconds between two looks at the change beacon
RESCAN = 5.0  # seconds between two scans with no beacon (writes that bypass promptgit)
TAKEN = "another promptgit serve on this store delivers this webhook; this one takes over if that one stops"


class Worker:
    """Delivers one webhook's events, in order, from its cursor, in its own thread."""

    def __init__(self, store: Path, url: str, journal: Journal, stopping: threading.Event) -> None:
        self.store = Store(store)
        self.url = url
        self.journal = journal
        self.stopping = stopping  # the whole server stops
        self.quit = threading.Event()  # this webhook went from promptgit.yaml
        self.wake = threading.Event()
        self.folder = store / FOLDER
        self._hook: Webhook | None = None
        self._lock: IO[str] | None = None
        self._said: str | None = None  # the last notice, so each is said once
        self._repos: dict[Path, tuple[int, Repo]] = {}
        self.thread = threading.Thread(target=self._run, name=f"promptgit-webhook {url}", daemon=True)

    def _stopped(self) -> bool:
        return self.stopping.is_set() or self.quit.is_set()

    def _run(self) -> None:
        self.wake.set()
        try:
            while not self._stopped():
                self.wake.wait(RESCAN)
                self.wake.clear()
                if self._stopped():
                    break
                hook = self._current()
                if hook is None:
                    break
                if not self._locked(hook):
                    continue
                try:
                    if self._pass(hook):
                        self.wake.set()  # more was waiting than one scan reads
                except Exception as e:  # the store is unreadable now: say so, try again later
                    self._notice(False, f"could not read the store ({type(e).__name__}: {e}); retrying")
                    self._sleep(RESCAN)
        finally:
            if self._lock is not None:
                self._lock.close()

    def _current(self) -> Webhook | None:
        """This webhook as promptgit.yaml says now (a file that does not parse now keeps
        the last good one); None once it is gone from it."""
        with contextlib.suppress(PromptgitError):
            self._hook = next((w for w in self.store.config.webhooks if w.url == self.url), None)
        return self._hook

    def _locked(self, hook: Webhook) -> bool:
        """Whether this process delivers the webhook: it holds `KEY.lock` (flock, which
        the system lets go when the process ends, however it ends)."""
        if self._lock is not None:
            return True
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        f = open(self.folder / f"{hook.key}.lock", "a+", encoding="utf-8")  # noqa: SIM115 - held open
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            self._notice(True, TAKEN)
            return False
        f.truncate(0)
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._lock = f
        if self._said == TAKEN:
            self._notice(True, "took over delivering this webhook from the server that stopped")
        return True

    def _notice(self, ok: bool, detail: str) -> None:
        if detail != self._said:
            self._said = detail
            self.journal.write(WebhookDelivery(now(), self.url, ok, detail=detail))

    def _sleep(self, seconds: float) -> bool:
        """Wait, unless the server stops or the webhook goes first (then True)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.stopping.wait(min(left, 0.5)) or self.quit.is_set():
                return True
        return self._stopped()

    def _pass(self, hook: Webhook) -> bool:
        """Deliver what is new; whether more is waiting than one scan reads."""
        key = os.environ.get(hook.secret, "")
        if not key:
            self._notice(
                False,
                f"the environment variable {hook.secret} (this webhook's secret) is not set in the "
                "server's environment: its events wait until a server that has it runs",
            )
            return False
        cursor_path = self.folder / f"{hook.key}.json"
        found, busy = self._prompts()
        existed = cursor_path.exists()
        if busy and not existed:
            return False  # a prompt is moving: start once it has moved (the beacon rings then)
        cursor = Cursor.load(cursor_path, self.url)
        if cursor is None:  # a new webhook (or a cursor that is not one): from now on
            cursor = Cursor(cursor_path, self.url, {})
            for name, repo in found.items():
                with contextlib.suppress(Exception):  # moving now: then it is new, and all of it sent
                    cursor.put(name, webhook_events.tips(repo))
            cursor.save()
            events = ", ".join(sorted(hook.events))
            if existed:
                self._notice(
                    False,
                    f"the cursor {cursor_path.name} was damaged (kept as {cursor_path.name}.corrupt): "
                    f"delivering {events} events from now on; earlier ones may be missed",
                )
            else:
                self._notice(True, f"delivering {events} events from now on")
            return False
        scan = webhook_events.scan(found, cursor.known())
        cursor.gone(set(found) | busy | set(scan.skipped), time.time())
        if scan.skipped:
            unread = "; ".join(f"{name} ({why})" for name, why in sorted(scan.skipped.items()))
            self._notice(False, f"could not read {unread}: its events wait; trying again on the next change")
        for name, start in scan.starts.items():
            cursor.put(name, start)
        for record in scan.records:
            wanted = [e for e in record.events if e.kind in hook.events]
            for event in wanted:
                if not self._deliver(hook, key.encode(), event):
                    return False  # stopping: the cursor keeps what was delivered
            cursor.advance(record.prompt, record.log, record.commit)
            if wanted:
                cursor.save()
        for name, position in scan.positions.items():
            cursor.put(name, position)
        cursor.save()
        if not scan.skipped:
            self._said = None  # all well: a problem that comes back is said again
        return scan.more

    def _deliver(self, hook: Webhook, key: bytes, event: webhook_events.Event) -> bool:
        """Post one event until the receiver takes it (True) or the server stops (False)."""
        delivery = delivery_id(hook.url, event)
        body = json.dumps(event.payload(delivery), ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"promptgit-webhooks/{__version__}",
            "X-Promptgit-Event": event.kind,
            "X-Promptgit-Delivery": delivery,
            "X-Promptgit-Signature-256": sign(key, body),
        }
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            status: int | None = None
            try:
                status, answer = post(hook.url, body, headers)
                ok = 200 <= status < 300
                text = answer[:200].decode("utf-8", "replace").strip()
                detail = "" if ok else f"the receiver answered {status}" + (f": {text}" if text else "")
            except Exception as e:  # any failure of the request is the receiver's, and retried
                ok, detail = False, failure(e, hook.url)
            ms = round((time.monotonic() - started) * 1000, 1)
            self.journal.write(
                WebhookDelivery(
                    now(), hook.url, ok, event.kind, event.prompt, delivery, attempt, status, ms, detail
                )
            )
            if ok:
                return True
            delay = min(BACKOFF * 2 ** (attempt - 1), MAX_BACKOFF) * random.uniform(1.0, 1.2)
            if self._sleep(delay):
                return False

    def _prompts(self) -> tuple[dict[str, Repo], set[str]]:
        """Every prompt, live and archived, by name, each repository opened once for as
        long as its folder stays the same; and the prompts an archive, restore or rename
        is moving now (read once it is done: the beacon rings then)."""
        paths = {n: self.store.path / ARCHIVE / f"{n}.git" for n in self.store.archived_names()}
        paths.update({n: self.store.path / f"{n}.git" for n in self.store.names()})
        moving = _moving(self.store.path)
        busy = {name for name, path in paths.items() if path in moving}
        found: dict[str, Repo] = {}
        opened: dict[Path, tuple[int, Repo]] = {}
        for name, path in paths.items():
            if name in busy:
                continue
            try:
                inode = os.stat(path).st_ino
                hit = self._repos.get(path)
                repo = hit[1] if hit is not None and hit[0] == inode else Repo(str(path))
            except (OSError, PromptgitError):
                continue  # moved since it was listed: the next scan finds it where it went
            opened[path] = (inode, repo)
            found[name] = repo
        self._repos = opened
        return found, busy


def _moving(store: Path) -> set[Path]:
    """The folders a move under way (lifecycle.py's pending plans, whose owner runs)
    takes a repository from or to: until it records its event, the repository's name
    and its lifecycle log disagree."""
    out: set[Path] = set()
    folder = store / PENDING
    for journal in folder.glob("[!.]*") if folder.is_dir() else []:
        try:
            plan = json.loads(journal.read_text(encoding="utf-8").splitlines()[1])
            if not locks.stale(journal):
                out.update({store / plan["src"], store / plan["dest"]})
        except (OSError, ValueError, IndexError, KeyError, TypeError):
            continue  # being written, or gone: the next scan looks again
    return out


class Deliverer:
    """The server's webhook threads: `start()` when the server starts, `stop()` when it
    stops. A webhook added to promptgit.yaml while it runs gets its worker within a
    second; one removed has its worker stop."""

    def __init__(self, store: Path, say: Callable[[str], None] = lambda _line: None) -> None:
        self.path = store
        self.store = Store(store)
        self.say = say
        self.journal = Journal(store)
        self.stopping = threading.Event()
        self.workers: dict[str, Worker] = {}
        self._thread = threading.Thread(target=self._run, name="promptgit-webhooks", daemon=True)
        self._warned: str | None = None

    def start(self) -> None:
        hooks = self.store.config.webhooks
        self._forget_removed(hooks)
        if hooks:
            self.say(f"promptgit: delivering webhooks to {', '.join(w.url for w in hooks)}")
        self._reconcile()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every thread; a request under way has until `timeout` to end (an event
        the cursor did not record as delivered is delivered again by the next server)."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for worker in [*self.workers.values()]:
            worker.wake.set()
        for thread in [self._thread, *(w.thread for w in self.workers.values())]:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        seen = changes.stamp(self.path)
        checked = time.monotonic()
        while not self.stopping.wait(POLL):
            stamp = changes.stamp(self.path)
            if stamp != seen:
                seen = stamp
                for worker in [*self.workers.values()]:
                    worker.wake.set()
            if time.monotonic() - checked > 1.0:
                checked = time.monotonic()
                self._reconcile()

    def _reconcile(self) -> None:
        """One worker per webhook promptgit.yaml lists now (re-read when it changes)."""
        try:
            hooks = self.store.config.webhooks
        except PromptgitError as e:
            if str(e) != self._warned:
                self._warned = str(e)
                self.say(f"promptgit: webhooks: {e} (delivering to the webhooks it listed before)")
            return
        self._warned = None
        urls = {w.url for w in hooks}
        for url, worker in [*self.workers.items()]:
            if url not in urls:
                worker.quit.set()
                worker.wake.set()
            if url not in urls or not worker.thread.is_alive():
                del self.workers[url]
        for url in sorted(urls - set(self.workers)):
            worker = Worker(self.path, url, self.journal, self.stopping)
            self.workers[url] = worker
            worker.thread.start()

    def _forget_removed(self, hooks: tuple[Webhook, ...]) -> None:
        """Remove the cursors of webhooks promptgit.yaml no longer lists: one added back
        later starts afresh, from then."""
        folder = self.path / FOLDER
        keep = {w.key for w in hooks}
        for cursor in folder.glob("[!.]*.json") if folder.is_dir() else []:
            if cursor.stem not in keep:
                cursor.unlink(missing_ok=True)
        for tmp in folder.glob(".*.json.*") if folder.is_dir() else []:  # a cursor's write a crash cut short
            with contextlib.suppress(OSError):
                if time.time() - tmp.stat().st_mtime > 60:
                    tmp.unlink()
