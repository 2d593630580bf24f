"""Throughput and latency of the hot path, GET /prompts/NAME/stages/prod, under wrk
on loopback; a 304 (If-None-Match) beside a 200; and the floor: a bare ASGI app
answering the same body from the same uvicorn. Prints figures; never fails on them.

    python bench/serve.py [--seconds 10] [--connections 32]

Needs wrk (Debian: apt-get install wrk; bench/run installs it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

from promptgit import Actor, Store

PROMPT = "variables: [name]\ntemplate: |\n  Hello {{ name }}, how can I help?\n"
TARGET_RPS, TARGET_P99_MS = 5000, 10.0

FLOOR_APP = textwrap.dedent(
    """
    import json, sys
    BODY = open(sys.argv[1], "rb").read()
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"etag", b'"x"')]})
        await send({"type": "http.response.body", "body": BODY})
    import uvicorn
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if proc.poll() is not None:
                raise SystemExit(f"server exited early ({proc.returncode})") from None
            time.sleep(0.05)
    raise SystemExit("server did not start")


def start(store: Path, log: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """`promptgit serve` on `store` at a free loopback port, once it answers: the
    process and its base URL. The benchmarks share it (bench/run skips no script)."""
    port = free_port()
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "promptgit", "--store", str(store), "serve", "--port", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    wait_up(base + "/openapi.json", proc)
    return proc, base


def wrk(url: str, seconds: int, connections: int, header: str | None = None) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if header:
        cmd[1:1] = ["-H", header]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50": pct("50"),
        "p99": pct("99"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk (bench/run does it)")
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    root = Path(tempfile.mkdtemp(prefix="promptgit-bench-serve-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        store = Store.init(root / "prompts")
        me = Actor("Bench", "bench@example.com")
        store.create("support/greeting", {"prompt.yaml": PROMPT}, "first", actor=me)
        store.promote("support/greeting", "v1.0", actor=me)
        store.promote("support/greeting", "v1.0", actor=me)
        proc, base = start(store.path)
        procs.append(proc)
        url = f"{base}/prompts/support/greeting/stages/prod"
        first = httpx.get(url)
        etag = first.headers["etag"]
        body = root / "body.json"
        body.write_bytes(first.content)
        floor_port = free_port()
        procs.append(subprocess.Popen([sys.executable, "-c", FLOOR_APP, str(body), str(floor_port)]))
        floor_url = f"http://127.0.0.1:{floor_port}/"
        wait_up(floor_url, procs[-1])

        wrk(url, 2, args.connections)  # warm up
        rows = [
            ("bare ASGI app, same body (floor)", wrk(floor_url, args.seconds, args.connections)),
            ("GET stages/prod -> 200", wrk(url, args.seconds, args.connections)),
            (
                "GET stages/prod If-None-Match -> 304",
                wrk(url, args.seconds, args.connections, f"If-None-Match: {etag}"),
            ),
        ]
        floor = rows[0][1]
        print(f"{args.connections} connections, {args.seconds} s each, wrk -t1 on loopback, 2 cores shared")
        print(f"{'request':<40} {'req/s':>8} {'p50':>8} {'p99':>8} {'vs floor':>9}  target")
        for label, r in rows:
            ratio = floor["rps"] / r["rps"] if r["rps"] else float("inf")
            meets = r["rps"] >= TARGET_RPS and r["p99"] < TARGET_P99_MS
            target = (
                ""
                if r is floor
                else f">= {TARGET_RPS} req/s, p99 < {TARGET_P99_MS:g} ms: {'meets' if meets else 'MISSES'}"
            )
            errors = f"  ({int(r['errors'])} non-2xx/3xx)" if r["errors"] else ""
            print(
                f"{label:<40} {r['rps']:>8.0f} {r['p50']:>6.2f}ms {r['p99']:>6.2f}ms {ratio:>8.2f}x  {target}{errors}"
            )
        cheaper = rows[2][1]["rps"] > rows[1][1]["rps"]
        print(
            f"304 cheaper than 200: {'yes' if cheaper else 'NO'} ({rows[2][1]['rps']:.0f} vs {rows[1][1]['rps']:.0f} req/s)"
        )
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
