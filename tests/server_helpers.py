"""A real `promptgit serve` process on a free 127.0.0.1 port, for the server tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`python -m promptgit --store STORE serve` in a subprocess, stopped by `stop()`.
    `args` are more options of serve (e.g. --read-only); `port` a given port (to
    start a server again where clients expect it)."""

    def __init__(
        self,
        store: Path,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = store.parent / f"serve-{self.port}.log"
        self._out = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "promptgit",
                "--store",
                str(store),
                "serve",
                "--port",
                str(self.port),
                *args,
            ],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url + "/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"promptgit serve did not start: {self.log.read_text()}") from None
                time.sleep(0.05)

    def stop(self, grace: float = 10) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds (uvicorn waits for open long polls)."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._out.close()

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to answer anyone."""
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._out.close()
