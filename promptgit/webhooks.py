"""Signed webhooks: what `promptgit serve` posts to the URLs promptgit.yaml lists.

    webhooks:
      - url: https://ci.example.com/promptgit
        secret: PROMPTGIT_HOOK_KEY      # the environment variable holding the signing key
        events: [deploy, release]       # default: deploy, release, deprecate, archive, rename

Only a running `promptgit serve` delivers (server/webhooks.py): the CLI and the
library never post anything. Events are read out of git (webhook_events.py), so
nothing is lost while no server runs: a server delivers, when it starts, what
happened since its webhook's cursor. This module holds what both sides share.

Per webhook, under `<store>/.promptgit/webhooks/` and named by its URL's digest:
- `KEY.json`, the cursor (`Cursor`): per prompt, the newest commit of each log
  delivered, written atomically after each delivery. Delivery is at least once: a
  crash between a delivery and the cursor's write delivers that event again, with
  the same id. A webhook a server sees for the first time starts from then; one
  removed from promptgit.yaml is forgotten when a server next starts.
- `KEY.lock`, held (flock) by the one server process that delivers this webhook.
  Other servers on the same store wait, and one of them takes over when it stops.
- `deliveries.jsonl` (all webhooks, `Journal`): every attempt and notice, rotated
  at 1 MiB into `deliveries.jsonl.1`; `promptgit webhooks log` reads both.

A delivery is a POST of JSON with `X-Promptgit-Event`, `X-Promptgit-Delivery`
(also the body's `id`: stable per event, so a receiver can drop a repeat) and
`X-Promptgit-Signature-256: sha256=HMAC-SHA256(key, raw body)`. A 2xx answer
delivers it; anything else is retried after 1 s, 2 s, 4 s ... (at most 5 min
apart), for as long as it takes, in order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import webhook_events
from .config import Config
from .errors import DeadlinePassed
from .model import WebhookDelivery

FOLDER = ".promptgit/webhooks"
_SHA = re.compile(r"[0-9a-f]{40}")
LOG = "deliveries.jsonl"
LOG_MAX = 1024 * 1024  # bytes; then the log moves to deliveries.jsonl.1 (one kept)
TIMEOUT = 10.0  # seconds for each step of a request: connect, send, each read
DEADLINE = 30.0  # seconds for a whole delivery, however its receiver trickles
MAX_ANSWER = 1024  # bytes of a receiver's answer read (and 200 of them logged)
FORGET_GONE = 7 * 86400  # seconds a prompt that went (deleted) stays in a cursor


def delivery_id(url: str, event: webhook_events.Event) -> str:
    """Stable per event and webhook: a redelivery carries the same id."""
    text = "\n".join((url, event.prompt, event.log, event.commit, event.kind))
    return str(uuid.UUID(hashlib.sha256(text.encode()).hexdigest()[:32]))


def sign(key: bytes, body: bytes) -> str:
    """The X-Promptgit-Signature-256 header's value for `body`."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def missing_secrets(config: Config, environ: Mapping[str, str]) -> list[str]:
    """What stops a server from signing: one line per webhook whose variable is unset."""
    return [
        f"webhook {w.url}: the environment variable {w.secret} (its secret in promptgit.yaml) "
        "is not set or empty: export the signing key in it before 'promptgit serve', or remove "
        "the webhook from promptgit.yaml"
        for w in config.webhooks
        if not environ.get(w.secret)
    ]


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """POST `body` to `url`: (status, the answer's first MAX_ANSWER bytes). No redirect
    is followed and no proxy used; each step of the request times out."""
    import http.client
    import ssl
    from urllib.parse import urlsplit

    from .client_http import within

    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        with within(conn, DEADLINE):  # a receiver trickling its answer holds no thread longer
            conn.request("POST", target, body, headers)
            answer = conn.getresponse()
            return answer.status, answer.read(MAX_ANSWER)
    finally:
        conn.close()


def failure(e: BaseException, url: str) -> str:
    """A request's failure, in words."""
    if isinstance(e, DeadlinePassed):
        return str(e)
    if isinstance(e, TimeoutError):
        return f"no answer within {TIMEOUT:g} s"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused: is the receiver running?"
    if isinstance(e, OSError):
        return f"cannot reach {url}: {e.strerror or e}"
    return f"{type(e).__name__}: {e}"


# --- the delivery log ----------------------------------------------------------------


class Journal:
    """`deliveries.jsonl`: one JSON line per attempt or notice, rotated at LOG_MAX."""

    def __init__(self, store: Path) -> None:
        self.path = store / FOLDER / LOG
        self._lock = threading.Lock()

    def write(self, entry: WebhookDelivery) -> None:
        line = (json.dumps(entry.to_json(), ensure_ascii=False) + "\n").encode()
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if self.path.exists() and self.path.stat().st_size + len(line) > LOG_MAX:
                    os.replace(self.path, self.path.with_name(LOG + ".1"))
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
            except OSError:
                pass  # a full disk must not stop deliveries; the cursor still records them


def read_log(store: Path, limit: int | None = None, failures: bool = False) -> list[WebhookDelivery]:
    """The delivery log, newest first (at most `limit`; only failures and problems
    with `failures`)."""
    out: list[WebhookDelivery] = []
    for name in (LOG, LOG + ".1"):
        try:
            lines = (store / FOLDER / name).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            continue
        for line in reversed(lines):
            entry = WebhookDelivery.from_json(line)
            if entry is None or (failures and entry.ok):
                continue
            out.append(entry)
            if limit is not None and len(out) >= limit:
                return out
    return out


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- the cursor --------------------------------------------------------------------------


class Cursor:
    """`KEY.json`: per prompt, the newest commit of each log handled, and since when
    a prompt is gone (deleted, or renamed away), so it is dropped in the end."""

    def __init__(self, path: Path, url: str, prompts: dict[str, dict[str, Any]], text: str = "") -> None:
        self.path = path
        self.url = url
        self.prompts = prompts  # name -> {"logs": Position, "gone": epoch | None}
        self._text = text  # as it is on disk

    @classmethod
    def load(cls, path: Path, url: str) -> Cursor | None:
        """The cursor on disk; None when there is none (a new webhook). A file that is
        not one is put aside (`.corrupt`) and also answers None."""
        try:
            text = path.read_text(encoding="utf-8")
            prompts = json.loads(text)["prompts"]
            for entry in prompts.values():
                for log, sha in entry["logs"].items():
                    if not isinstance(log, str) or not (sha is None or _SHA.fullmatch(sha)):
                        raise TypeError(sha)
            return cls(path, url, prompts, text)
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError):  # damaged, not unreadable
            os.replace(path, path.with_name(f"{path.name}.corrupt"))
            return None

    def known(self) -> dict[str, webhook_events.Position]:
        return {name: entry["logs"] for name, entry in self.prompts.items()}

    def put(self, name: str, logs: webhook_events.Position) -> None:
        self.prompts[name] = {"logs": dict(logs), "gone": None}

    def advance(self, name: str, log: str, commit: str) -> None:
        self.prompts.setdefault(name, {"logs": {}, "gone": None})["logs"][log] = commit

    def gone(self, present: Collection[str], at: float) -> None:
        """Mark the prompts not found now; drop those gone for FORGET_GONE."""
        for name in [n for n in self.prompts if n not in present]:
            entry = self.prompts[name]
            if entry.get("gone") is None:
                entry["gone"] = at
            elif at - entry["gone"] > FORGET_GONE:
                del self.prompts[name]

    def save(self) -> None:
        """Write it whole or not at all (a temporary file, synced, renamed over it);
        nothing when it has not changed."""
        text = json.dumps({"url": self.url, "prompts": self.prompts}, sort_keys=True, separators=(",", ":"))
        if text == self._text:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._text = text
