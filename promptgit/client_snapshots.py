"""What `promptgit.Client` reads and keeps: prompts as the server sends them, checked
before use, and snapshots of them in `cache_dir`, one file per prompt and stage (or
version), so an application can start and serve while its server is away.

A snapshot is written atomically (a temporary file in the same folder, fsync, then
`os.replace`): a reader sees the old file or the new one, never half of one. It
records the server's URL and a format version; a file that is corrupt, truncated,
from another server or another format is refused with the reason, never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .model import Prompt

FORMAT = "promptgit-client-snapshot"
FORMAT_VERSION = 1
MAX_BYTES = 8 << 20  # the largest answer a client reads (client_http.MAX_BODY)
MAX_STEM = 200  # characters of a file name before it is hashed instead

Key = tuple[str, str, str]  # (prompt name, "stage" or "version", stage or version)


# --- prompts as JSON --------------------------------------------------------------------


def prompt_json(prompt: Prompt) -> dict[str, Any]:
    return {
        "name": prompt.name,
        "version": prompt.version,
        "revision": prompt.revision,
        "content": dict(prompt.content),
        "source": prompt.source,
        "tests": prompt.tests,
        "stage": prompt.stage,
        "deployment": prompt.deployment,
    }


def prompt_from(data: Any) -> Prompt:
    """A Prompt from `prompt_json`'s shape (or a stage read's, which has no tests);
    ValueError naming the first field that is missing or of the wrong type, so a
    render never meets a shape it cannot handle."""
    if not isinstance(data, dict):
        raise ValueError("the prompt is not a JSON object")
    for key in ("name", "version", "revision", "source"):
        if not isinstance(data.get(key), str):
            raise ValueError(f"the prompt's {key} is not a string")
    for key in ("tests", "stage", "deployment"):
        if not isinstance(data.get(key), str | None):
            raise ValueError(f"the prompt's {key} is neither a string nor null")
    content = data.get("content")
    if not isinstance(content, dict):
        raise ValueError("the prompt's content is not an object")
    if "messages" in content:
        messages = content["messages"]
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages
        ):
            raise ValueError("the prompt's messages are not a list of {role, content} strings")
    elif not isinstance(content.get("template"), str):
        raise ValueError("the prompt's content has neither a template nor messages")
    return Prompt(
        name=data["name"],
        version=data["version"],
        revision=data["revision"],
        content=content,
        source=data["source"],
        tests=data.get("tests"),
        stage=data.get("stage"),
        deployment=data.get("deployment"),
    )


def version_prompt(data: Any) -> tuple[Prompt, bool]:
    """A version read's answer (`GET /prompts/NAME/versions/VERSION`) as a Prompt, and
    whether the version is released (its content then never changes)."""
    if not isinstance(data, dict) or not isinstance(data.get("version_id"), str):
        raise ValueError("the answer has no version_id")
    prompt = prompt_from({**data, "version": data["version_id"], "stage": None, "deployment": None})
    return prompt, data.get("stage") == "PROD"


# --- snapshot files ---------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    prompt: Prompt
    etag: str
    released: bool
    saved_at: float  # time.time() when it was written

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.saved_at)


def path(cache_dir: Path, key: Key) -> Path:
    """The file of `key` inside `cache_dir`, never outside it: every character that is
    not a letter, a digit or `_.-~` is percent-encoded (a `/` too), the name always
    ends in `@...json`, and a long one is replaced by its hash."""
    name, _kind, value = key
    stem = f"{quote(name, safe='')}@{quote(value, safe='')}"
    if len(stem) > MAX_STEM:
        stem = "h-" + hashlib.sha256("\0".join(key).encode()).hexdigest()
    return cache_dir / f"{stem}.json"


def write(cache_dir: Path, key: Key, server: str, snapshot: Snapshot) -> None:
    """Save `snapshot` for `key` atomically and durably (raises OSError)."""
    data = json.dumps(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "server": server,
            "key": list(key),
            "etag": snapshot.etag,
            "released": snapshot.released,
            "saved_at": snapshot.saved_at,
            "prompt": prompt_json(snapshot.prompt),
        }
    ).encode()
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = path(cache_dir, key)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a power cut
        dir_fd = os.open(cache_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


LEFTOVER_AGE = 600.0  # seconds after which a temporary snapshot file is a killed writer's


def sweep(cache_dir: Path) -> None:
    """Remove the temporary files of writers killed mid-write (a live one renames its
    file within milliseconds); what cannot be removed stays, harmlessly."""
    cutoff = time.time() - LEFTOVER_AGE
    with contextlib.suppress(OSError):
        for leftover in cache_dir.glob(".tmp-*.json"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()


def read(cache_dir: Path, key: Key, server: str) -> Snapshot | None:
    """The snapshot of `key`, None when there is none; ValueError saying why a file
    that is there cannot be trusted (corrupt, truncated, foreign, too large)."""
    target = path(cache_dir, key)
    try:
        with open(target, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ValueError(f"unreadable ({e.strerror or e})") from None
    if len(data) > MAX_BYTES:
        raise ValueError(f"over {MAX_BYTES} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise ValueError("not valid JSON (corrupt or truncated)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not a promptgit client snapshot")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"format version {doc.get('format_version')!r}; this client reads {FORMAT_VERSION}")
    if doc.get("server") != server:
        raise ValueError(f"saved from another server ({doc.get('server')!r})")
    if doc.get("key") != list(key):
        raise ValueError(f"for another prompt ({doc.get('key')!r})")
    etag, saved_at = doc.get("etag"), doc.get("saved_at")
    if (
        not isinstance(etag, str)
        or not isinstance(saved_at, int | float)
        or isinstance(saved_at, bool)
        or not math.isfinite(saved_at)
    ):
        raise ValueError("no etag or saved_at")
    return Snapshot(prompt_from(doc.get("prompt")), etag, doc.get("released") is True, float(saved_at))


def remove(cache_dir: Path, key: Key) -> None:
    """Forget `key`'s snapshot (the server said the prompt is gone)."""
    with contextlib.suppress(OSError):
        path(cache_dir, key).unlink()
