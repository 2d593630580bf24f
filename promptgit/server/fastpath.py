"""The hot read, `GET /prompts/NAME/stages/STAGE`, answered in raw ASGI in front of FastAPI.

Applications poll this route; FastAPI's routing and dependency solving cost more
than the read itself (one ref read when nothing changed). Here a request that can
be answered is answered with the same bytes and headers the FastAPI route sends
(`api.get_stage`, which still exists, so /openapi.json describes it), its body
cached by the deployment commit (a read that must parse runs off the event
loop); anything else (an error, a renamed or archived
prompt, a stage that is no stage) falls through to FastAPI, so every error is
FastAPI's own. The whole-app guard (auth, host, origin) has run before either.
"""

from __future__ import annotations

import json
import re
from collections.abc import MutableMapping
from typing import Any

from starlette.concurrency import run_in_threadpool

from ..store import Store
from .api import etag, matches
from .bodies import Bodies

STAGE_READ = re.compile(r"/prompts/(.+)/stages/(dev|tst|prod)")


class StageReads:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._bodies = Bodies()  # (name, stage) -> the body, by the deployment it serves

    async def __call__(self, scope: MutableMapping[str, Any], send: Any) -> bool:
        """Answer the request if it is a stage read that succeeds; whether it did."""
        found = STAGE_READ.fullmatch(scope["path"]) if scope["method"] == "GET" else None
        if found is None:
            return False
        name, stage = found.groups()
        try:
            prompt = self.store.ready(name, stage)  # at hand: answered on the loop
            if prompt is None:  # a first read parses prompt.yaml: off the loop
                prompt = await run_in_threadpool(self.store.get, name, stage)
        except Exception:  # FastAPI answers it, with its own error for it
            return False
        deployment = prompt.deployment or ""
        tag = etag(prompt.deployment or prompt.revision).encode()
        # the first If-None-Match, as FastAPI reads it
        wanted = next((v for k, v in scope["headers"] if k == b"if-none-match"), None)
        if wanted is not None and matches(wanted.decode("latin-1"), deployment, weak=True):
            await send({"type": "http.response.start", "status": 304, "headers": [(b"etag", tag)]})
            await send({"type": "http.response.body", "body": b""})
            return True
        body = self._body((name, stage), deployment, prompt.to_json)
        headers = [
            (b"etag", tag),
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True

    def _body(self, key: tuple[str, str], deployment: str, render: Any) -> bytes:
        body = self._bodies.get(key, deployment)
        if body is None:
            # as Starlette's JSONResponse renders it, byte for byte
            body = json.dumps(
                render(), ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
            ).encode()
            self._bodies.put(key, deployment, body)
        return body
