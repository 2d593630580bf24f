"""Throughput and latency of Langfuse's prompt API (what the Langfuse SDKs call,
GET /api/public/v2/prompts/NAME) beside the native hot path, GET
/prompts/NAME/stages/prod, on the same real server under wrk on loopback, each
with its token (Basic auth for Langfuse's, Bearer for the native one). Prints
figures and the ratio; never fails on them.

    python bench/langfuse.py [--seconds 10] [--connections 32] [--versions 10]

Needs wrk (Debian: apt-get install wrk; bench/run installs it).
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
from serve import start, wrk

from promptgit import Actor, Store

PROMPT = "model: gpt-4o-mini\nparameters: {temperature: 0.2}\nvariables: [name]\ntemplate: |\n  Hello {{ name }}, how can I help?\n"
TARGET_RATIO = 1.5  # the Langfuse route may cost at most this much more than the native one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--versions", type=int, default=10, help="versions of the prompt (v1.0 released)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk (bench/run does it)")
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    root = Path(tempfile.mkdtemp(prefix="promptgit-bench-langfuse-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        store = Store.init(root / "prompts")
        me = Actor("Bench", "bench@example.com")
        name = "support/greeting"
        store.create(name, {"prompt.yaml": PROMPT}, "first", actor=me)
        store.promote(name, "v1.0", actor=me)
        store.promote(name, "v1.0", actor=me)
        for _ in range(args.versions - 1):
            store.new_version(name, "v1.0", actor=me)
        token = store.create_token("bench", "reader")
        proc, base = start(store.path)
        bearer = f"Authorization: Bearer {token}"
        basic = "Authorization: Basic " + base64.b64encode(f"pk-lf-bench:{token}".encode()).decode()
        native = base + "/prompts/support/greeting/stages/prod"
        langfuse = base + "/api/public/v2/prompts/support%2Fgreeting"
        for url, header in [(native, bearer), (langfuse, basic), (langfuse + "?version=1000", basic)]:
            r = httpx.get(url, headers=[tuple(header.split(": ", 1))])  # type: ignore[list-item]
            assert r.status_code == 200, r.text

        wrk(native, 2, args.connections, bearer)  # warm up
        wrk(langfuse, 2, args.connections, basic)
        rows = [
            ("native GET stages/prod", wrk(native, args.seconds, args.connections, bearer)),
            ("Langfuse GET prompts/NAME (production)", wrk(langfuse, args.seconds, args.connections, basic)),
            (
                "Langfuse GET prompts/NAME?version=1000",
                wrk(langfuse + "?version=1000", args.seconds, args.connections, basic),
            ),
        ]
        floor = rows[0][1]
        print(
            f"{args.connections} connections, {args.seconds} s each, wrk -t1 on loopback, 2 cores shared; "
            f"one prompt with {args.versions} versions, tokens required"
        )
        print(f"{'request':<42} {'req/s':>8} {'p50':>8} {'p99':>8} {'vs native':>10}  target")
        for label, r in rows:
            ratio = floor["rps"] / r["rps"] if r["rps"] else float("inf")
            target = (
                ""
                if r is floor
                else f"<= {TARGET_RATIO:g}x: {'meets' if ratio <= TARGET_RATIO else 'MISSES'}"
            )
            errors = f"  ({int(r['errors'])} non-2xx/3xx)" if r["errors"] else ""
            print(
                f"{label:<42} {r['rps']:>8.0f} {r['p50']:>6.2f}ms {r['p99']:>6.2f}ms {ratio:>9.2f}x  {target}{errors}"
            )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
