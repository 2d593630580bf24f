"""Mirror convergence delay: from `promote` returning on the primary to the readers of a
read replica seeing the new deployment. Three processes on loopback: the primary's
`promptgit serve`, `promptgit mirror` into a second store, and `promptgit serve` on
that store (the replica). Prints figures; never fails on them.

    python bench/mirror.py [--runs 50] [--prompts 100]

Each run redeploys one prompt to tst on the primary (`Store.promote`, in this
process) and measures, from the moment it returns:
- mirror refs: the mirror store's tst ref names the new deployment (git fetch done);
- replica watch: a long poll on the replica's /watch (started before the promotion)
  answers with the new tip (what a watching client learns);
- replica read: GET /prompts/NAME/stages/tst on the replica answers the new ETag.
The store holds `--prompts` prompts, so each watch answer names all of them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from serve import start

from promptgit import Actor, Store

PROMPT = "variables: [name]\ntemplate: |\n  Hello {{ name }}, how can I help?\n"
ME = Actor("Bench", "bench@example.com")
NAME = "support/greeting"


def until(
    check: object, what: str, proc: subprocess.Popen[bytes] | None = None, deadline: float = 120
) -> None:
    end = time.monotonic() + deadline
    while not check():  # type: ignore[operator]
        if (proc is not None and proc.poll() is not None) or time.monotonic() > end:
            raise SystemExit(f"{what} did not come up")
        time.sleep(0.01)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--prompts", type=int, default=100, help="prompts in the store (one is promoted)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="promptgit-bench-mirror-"))
    os.environ.update(GIT_CONFIG_NOSYSTEM="1", HOME=str(root))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        store = Store.init(root / "primary")
        store.create(NAME, {"prompt.yaml": PROMPT}, "first", actor=ME)
        store.promote(NAME, "v1.0", to="tst", actor=ME)
        for i in range(args.prompts - 1):
            store.create(f"other/p{i:04d}", {"prompt.yaml": PROMPT}, "first", actor=ME)
        primary, primary_url = start(store.path, root / "primary.log")
        procs.append(primary)
        copy = root / "replica"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "promptgit", "mirror", primary_url, str(copy)],
                stdout=(root / "mirror.log").open("ab"),
                stderr=subprocess.STDOUT,
            )
        )
        until(lambda: len(Store(copy).names()) == args.prompts if (copy / "promptgit.yaml").exists() else False,
              "the mirror's first sync", procs[-1])  # fmt: skip
        replica, replica_url = start(copy, root / "replica.log")
        procs.append(replica)
        mirrored = Store(copy)
        reader = httpx.Client(base_url=replica_url, timeout=60)
        watcher = httpx.Client(base_url=replica_url, timeout=90)
        read_path = f"/prompts/{NAME}/stages/tst"

        figures: dict[str, list[float]] = {"mirror refs": [], "replica watch": [], "replica read": []}
        for run in range(args.runs + 3):  # the first 3 warm up
            cursor = watcher.get("/watch", params={"prompt": NAME}).json()["cursor"]
            heard: list[float] = []
            watching = threading.Thread(
                target=lambda c=cursor, h=heard: (
                    watcher.get("/watch", params={"prompt": NAME, "since": c, "timeout": 60}),
                    h.append(time.perf_counter()),
                )
            )
            watching.start()
            time.sleep(0.05)  # the long poll is parked on the replica
            deployed = store.promote(NAME, "v1.0", to="tst", actor=ME).deployment
            began = time.perf_counter()
            refs_at = read_at = None
            while read_at is None or refs_at is None:
                now = time.perf_counter()
                if refs_at is None and mirrored.tips(NAME)["tst"] == deployed:
                    refs_at = now
                if read_at is None and reader.get(read_path).headers.get("etag") == f'"{deployed}"':
                    read_at = time.perf_counter()
                if now - began > 60:
                    raise SystemExit("the replica did not converge within 60 s")
            watching.join(timeout=60)
            if run >= 3:
                figures["mirror refs"].append((refs_at - began) * 1000)
                figures["replica watch"].append((heard[0] - began) * 1000)
                figures["replica read"].append((read_at - began) * 1000)
            time.sleep(0.1)

        print(
            f"{args.runs} promotions, {args.prompts} prompts in the store, 3 processes on loopback, 2 cores shared"
        )
        print(f"{'from promote() returning to':<34} {'p50':>9} {'p99':>9} {'max':>9} {'mean':>9}")
        for label, values in figures.items():
            print(
                f"{label:<34} {percentile(values, 50):>7.1f}ms {percentile(values, 99):>7.1f}ms "
                f"{max(values):>7.1f}ms {statistics.mean(values):>7.1f}ms"
            )
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()  # a server waits for open long polls before it exits
                p.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
