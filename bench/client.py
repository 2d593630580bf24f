"""promptgit.Client on loopback: a warm read beside Store.get, how fast a promotion
reaches 50 watching clients, and what 1,000 idle watchers cost the stage read.
Prints figures beside their targets; never fails on them.

    python bench/client.py [--clients 50] [--rounds 10] [--watchers 1000] [--seconds 10]

The throughput part needs wrk (Debian: apt-get install wrk; bench/run installs it)
and is skipped without it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
from serve import start, wrk

from promptgit import Actor, Client, Store

NAME = "support/greeting"
ME = Actor("Bench", "bench@example.com")
PROMPT = "variables: [name]\ntemplate: |\n  Hello {{ name }}, how can I help?\n"
HEAVY = ("fastapi", "starlette", "pydantic", "uvicorn", "jinja2", "pygit2", "yaml", "httpx")
TARGET_WARM, TARGET_P99_MS, TARGET_SLOWER = 2.0, 250.0, 0.20

# One process holding `count` clients (a thread and a Client each), each reading the
# prompt every POLL seconds and printing the wall-clock time it first serves a version.
WATCHERS = textwrap.dedent(
    """
    import json, sys, threading, time
    from promptgit import Client
    url, name, count, poll = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    out = threading.Lock()

    def run(i):
        client = Client(url)
        seen = client.get(name).version
        while name not in client.status()["watching"]:
            time.sleep(0.01)
        with out:
            print(json.dumps({"ready": i}), flush=True)
        while True:
            version = client.get(name).version
            if version != seen:
                at = time.time()
                seen = version
                with out:
                    print(json.dumps({"client": i, "version": version, "at": at}), flush=True)
            time.sleep(poll)

    for i in range(count):
        threading.Thread(target=run, args=(i,), daemon=True).start()
    sys.stdin.read()
    """
)


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def per_call(fn: object, runs: int, warmup: int = 2000) -> list[float]:
    call = fn  # type: ignore[assignment]
    for _ in range(warmup):
        call()  # type: ignore[operator]
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        out.append(time.perf_counter() - start)
    return out


# --- the parts --------------------------------------------------------------------------


def import_time(root: Path) -> None:
    """A new process importing the client, with bytecode cached as an installed package
    would have it; the floor imports only the standard modules the client uses."""
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(root / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    def median(statement: str) -> float:
        code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
        run = [sys.executable, "-c", code]
        subprocess.run(run, env=env, capture_output=True, check=True)  # writes the bytecode
        return statistics.median(
            float(subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout)
            for _ in range(7)
        )

    ours = median("from promptgit import Client")
    floor = median("import http.client, json, logging, dataclasses, pathlib, tempfile, threading, weakref")
    check = f"import sys; from promptgit import Client; print([m for m in {HEAVY!r} if m in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout
    print(f"import: 'from promptgit import Client' {ours * 1e3:.1f} ms, of which the standard modules it")
    print(f"        uses {floor * 1e3:.1f} ms (medians of 7 new processes, bytecode cached)")
    print(f"        heavy modules it loads: {loaded.strip()} (target: [], until a prompt renders)")


def warm_reads(store: Store, url: str, runs: int) -> None:
    with Client(url) as client:
        client.get(NAME)
        deadline = time.monotonic() + 30
        while NAME not in client.status()["watching"] and time.monotonic() < deadline:
            time.sleep(0.01)
        rows = [
            ("Store.get(prod)", per_call(lambda: store.get(NAME, "prod"), runs)),
            ("Client.get(prod)", per_call(lambda: client.get(NAME, "prod"), runs)),
            ("Store.get(prod).render()", per_call(lambda: store.get(NAME, "prod").render(name="Ada"), runs)),
            (
                "Client.get(prod).render()",
                per_call(lambda: client.get(NAME, "prod").render(name="Ada"), runs),
            ),
        ]
    print(f"\nwarm reads, {runs:,} calls each after 2,000 untimed (one thread)")
    print(f"{'call':<28} {'median':>9} {'p95':>9}")
    for label, samples in rows:
        print(f"{label:<28} {statistics.median(samples) * 1e6:>7.2f}us {pct(samples, 0.95) * 1e6:>7.2f}us")
    for i in (0, 2):
        ratio = statistics.median(rows[i + 1][1]) / statistics.median(rows[i][1])
        meets = "meets" if ratio <= TARGET_WARM else "MISSES"
        print(f"ratio {rows[i + 1][0]} / {rows[i][0]}: {ratio:.2f}x  (target <= {TARGET_WARM:g}x: {meets})")


def propagation(store: Store, url: str, clients: int, rounds: int, poll: float) -> None:
    per_process = 10
    procs = []
    lines: list[dict[str, object]] = []
    arrived = threading.Condition()

    def read(proc: subprocess.Popen[str], offset: int) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            event["client"] = offset + event.get("client", event.get("ready", 0))
            with arrived:
                lines.append(event)
                arrived.notify_all()

    def wait(done: object, what: str) -> None:
        with arrived:
            if not arrived.wait_for(lambda: done(lines), timeout=120):  # type: ignore[operator]
                raise SystemExit(f"gave up waiting for {what}")

    try:
        for n in range(math.ceil(clients / per_process)):
            count = min(per_process, clients - n * per_process)
            proc = subprocess.Popen(
                [sys.executable, "-c", WATCHERS, url, NAME, str(count), str(poll)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            procs.append(proc)
            threading.Thread(target=read, args=(proc, n * per_process), daemon=True).start()
        wait(lambda seen: sum("ready" in e for e in seen) == clients, f"{clients} clients watching")
        delays: list[float] = []
        for _ in range(rounds):
            version = store.new_version(NAME, "prod", actor=ME).version
            store.edit(NAME, version, {"prompt.yaml": PROMPT.replace("Hello", version)}, "bench", actor=ME)
            store.promote(NAME, version, actor=ME)
            time.sleep(0.3)  # let the tst move settle, so only prod's is measured
            store.promote(NAME, version, actor=ME)
            returned = time.time()
            wait(lambda seen, v=version: sum(e.get("version") == v for e in seen) == clients, f"{version}")
            with arrived:
                delays += [float(e["at"]) - returned for e in lines if e.get("version") == version]  # type: ignore[arg-type]
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)
    ms = [d * 1e3 for d in delays]
    p99 = pct(ms, 0.99)
    print(
        f"\npropagation: promote to prod returning -> each of {clients} watching clients serving the new version"
    )
    print(
        f"({rounds} promotions, {len(ms)} samples; {len(procs)} processes of {per_process} clients; clients read"
    )
    print(f"every {poll * 1e3:g} ms, so up to {poll * 1e3:g} ms of each figure is the reader's own poll)")
    print(f"p50 {pct(ms, 0.5):.1f} ms   p90 {pct(ms, 0.9):.1f} ms   p99 {p99:.1f} ms   max {max(ms):.1f} ms")
    print(f"target p99 < {TARGET_P99_MS:g} ms: {'meets' if p99 < TARGET_P99_MS else 'MISSES'}")


def idle_watchers(url: str, watchers: int, seconds: int) -> None:
    if not shutil.which("wrk"):
        print("\nidle watchers: skipped, wrk is not installed (apt-get install wrk; bench/run does it)")
        return
    stage = f"{url}/prompts/{quote(NAME, safe='/')}/stages/prod"
    cursor = httpx.get(f"{url}/watch", params={"prompt": NAME}).json()["cursor"]
    host = url.split("//", 1)[1]
    request = (
        f"GET /watch?prompt={quote(NAME, safe='')}&since={cursor}&timeout=60 HTTP/1.1\r\nHost: {host}\r\n\r\n"
    ).encode()
    wrk(stage, 2, 32)  # warm up
    idle: list[float] = []
    busy: list[float] = []
    for _ in range(2):  # alternated, so drift in the machine's load hits both alike
        idle.append(wrk(stage, seconds, 32)["rps"])
        socks = []
        try:
            for _ in range(watchers):
                s = socket.create_connection(("127.0.0.1", int(host.rsplit(":", 1)[1])))
                s.sendall(request)
                socks.append(s)
            time.sleep(2)  # every request parked at the server
            for s in socks:
                s.setblocking(False)
                try:
                    answered = s.recv(1)
                except BlockingIOError:
                    answered = b""
                if answered:
                    raise SystemExit("an idle watcher was answered: the bench's prompt moved")
            busy.append(wrk(stage, seconds, 32)["rps"])
        finally:
            for s in socks:
                s.close()
        time.sleep(1)
    before, after = statistics.mean(idle), statistics.mean(busy)
    slower = 1 - after / before
    meets = "meets" if slower <= TARGET_SLOWER else "MISSES"
    print(f"\nstage-read throughput, GET stages/prod under wrk -t1 -c32, 2 x {seconds} s each, alternated")
    print(f"0 idle watchers      {before:>8.0f} req/s  ({', '.join(f'{r:.0f}' for r in idle)})")
    print(
        f"{watchers:,} idle watchers  {after:>8.0f} req/s  ({', '.join(f'{r:.0f}' for r in busy)}): "
        f"{slower * 100:+.1f}% slower; target <= 20%: {meets}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--poll", type=float, default=0.002, help="seconds between a bench client's reads")
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20000)
    args = parser.parse_args()
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    root = Path(tempfile.mkdtemp(prefix="promptgit-bench-client-"))
    proc = None
    try:
        store = Store.init(root / "prompts")
        store.create(NAME, {"prompt.yaml": PROMPT}, "first", actor=ME)
        store.promote(NAME, "v1.0", actor=ME)
        store.promote(NAME, "v1.0", actor=ME)
        proc, url = start(store.path)
        print(f"promptgit.Client against promptgit serve on loopback; {os.cpu_count()} cores shared\n")
        import_time(root)
        warm_reads(store, url, args.runs)
        propagation(store, url, args.clients, args.rounds, args.poll)
        idle_watchers(url, args.watchers, args.seconds)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
