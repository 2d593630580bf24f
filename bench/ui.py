"""How long the prompt page takes for a prompt with 1,000 versions (target: under
100 ms), beside its floor: the JSON version history the page is built from.
Prints figures; never fails on them.

    python bench/ui.py [--versions 1000] [--requests 30]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from serve import start

from promptgit import Actor, Store

PROMPT = "variables: [name]\ntemplate: |\n  Hello {{ name }}, how can I help?\n"
TARGET_MS = 100.0
TARGET_BYTES = 200_000


def build(store: Store, versions: int) -> str:
    """One prompt: every 4th version released, every 4th+1 in TST, the rest DEV drafts."""
    me = Actor("Bench", "bench@example.com")
    name = "support/greeting"
    store.create(name, {"prompt.yaml": PROMPT}, "first", actor=me)
    for i in range(1, versions):
        info = store.new_version(name, "dev", actor=me)
        store.edit(
            name, info.version, {"prompt.yaml": PROMPT.replace("Hello", f"Hello #{i}")}, f"edit {i}", actor=me
        )
        if i % 4 in (0, 1):
            store.promote(name, info.version, actor=me)
        if i % 4 == 0:
            store.promote(name, info.version, actor=me)
    return name


def timed(client: httpx.Client, path: str, n: int) -> list[float]:
    client.get(path)  # warm
    out = []
    for _ in range(n):
        start = time.perf_counter()
        r = client.get(path)
        out.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, r.text[:200]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    root = Path(tempfile.mkdtemp(prefix="promptgit-bench-ui-"))
    proc = None
    try:
        store = Store.init(root / "prompts")
        began = time.perf_counter()
        name = build(store, args.versions)
        print(f"built {args.versions} versions in {time.perf_counter() - began:.1f} s")
        proc, base = start(store.path)
        with httpx.Client(base_url=base, timeout=30) as client:
            floor = timed(client, f"/prompts/{name}/versions", args.requests)
            page = timed(client, f"/ui/prompts/{name}", args.requests)
            size = len(client.get(f"/ui/prompts/{name}").content)
        f, p = statistics.median(floor), statistics.median(page)
        verdict = "meets" if p < TARGET_MS else "MISSES"
        print(f"{'request':<44} {'median':>9} {'p95':>9} {'ratio':>7}  target")
        print(
            f"{'GET /prompts/NAME/versions (JSON, the floor)':<44} {f:>7.1f}ms {sorted(floor)[int(len(floor) * 0.95) - 1]:>7.1f}ms {'1.00x':>7}"
        )
        print(
            f"{'GET /ui/prompts/NAME (the page)':<44} {p:>7.1f}ms {sorted(page)[int(len(page) * 0.95) - 1]:>7.1f}ms {p / f:>6.2f}x  < {TARGET_MS:.0f} ms: {verdict}"
        )
        print(
            f"{'the page, bytes':<44} {size:>9,} {'':>9} {'':>7}  < {TARGET_BYTES:,}: {'meets' if size < TARGET_BYTES else 'MISSES'}"
        )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
