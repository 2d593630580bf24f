"""Costs as stores grow: a 10,000-prompt store, a long-lived draft, a server that
lists everything. Prints each figure beside its target; never fails on them.

    python bench/scale.py [--prompts 10000] [--edits 1000] [--versions 200] [--out bench/out]

The big store is built once through the library (in parallel processes) and
reused from `--out`; every measurement runs on it or on throwaway stores.

Rows:
- `list --json` (the CLI, a new process) and `Store.list()` with a warm index;
- `GET /prompts?limit=100`, one page, from a real `promptgit serve`;
- the server's memory before and after listing every prompt and reading every
  prompt's dev stage (open repositories and served prompts are bounded);
- `new_version` around the 10th and the `--versions`th version, the median of ten
  each (flat: the index
  answers which numbers are used and what dev served), beside a raw pygit2 floor;
- `edit` over `--edits` edits, through the store's own background repacks: the
  median against the floor, and the slowest single edit (no stall over 50 ms).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import _records
import httpx
import pygit2
from serve import start

from promptgit import Actor, Store

ACTOR = Actor("Bench", "bench@example.com", "admin")
SIGNATURE = pygit2.Signature(ACTOR.name, ACTOR.email)
PROMPT = "variables: [name]\ntemplate: |\n  Hello {{ name }}, how can I help? ({n})\n"
DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def row(label: str, ours: str, floor: str, ratio: str, target: str, meets: bool | None) -> None:
    verdict = "" if meets is None else ("yes" if meets else "NO")
    print(f"{label:<46} {ours:>12} {floor:>12} {ratio:>8}  {target:<24} {verdict}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# --- the 10,000-prompt store -------------------------------------------------------------


def _create(args: tuple[str, int, int]) -> None:
    path, start, stop = args
    store = Store(path)
    for i in range(start, stop):
        name = f"team{i % 50:02d}/prompt{i:05d}"
        store.create(name, {"prompt.yaml": PROMPT.replace("{n}", str(i))}, "first", actor=ACTOR)
        if i % 3 == 0:
            store.promote(name, "v1.0", actor=ACTOR)
        if i % 9 == 0:
            store.promote(name, "v1.0", actor=ACTOR)


def big_store(out: Path, prompts: int) -> Path:
    path = out / f"scale-{prompts}"
    done = path / ".built"
    if done.exists():
        return path
    Store.init(path)
    start = time.perf_counter()
    workers = max(2, os.cpu_count() or 2)
    step = -(-prompts // workers)
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_create, [(str(path), i, min(i + step, prompts)) for i in range(0, prompts, step)]))
    done.write_text(f"{prompts}\n")
    print(f"built {prompts} prompts in {time.perf_counter() - start:.0f} s at {path}")
    return path


def median_of(runs: int, call: object) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def listing(path: Path) -> None:
    Store(path).list()  # warm the index
    cli = [sys.executable, "-m", "promptgit", "--store", str(path), "list", "--json"]
    ours = median_of(5, lambda: subprocess.run(cli, check=True, capture_output=True))
    floor = median_of(5, lambda: subprocess.run([sys.executable, "-c", "import pygit2"], check=True))
    row("CLI list --json, warm index", ms(ours), ms(floor), f"{ours / floor:.2f}x", "< 300 ms", ours < 0.3)
    store = Store(path)
    inproc = median_of(5, store.list)
    row("Store.list(), warm index", ms(inproc), "-", "-", "< 300 ms", inproc < 0.3)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def serving(path: Path) -> None:
    proc, url = start(path)
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            before = rss_mb(proc.pid)
            pages, names, link = [], [], "/prompts?limit=100"
            while link:
                t = time.perf_counter()
                r = http.get(link)
                pages.append(time.perf_counter() - t)
                names += [p["name"] for p in r.json()]
                nxt = r.headers.get("link", "")
                link = nxt[1 : nxt.index(">")] if nxt else ""
            page = statistics.median(pages)
            row("GET /prompts?limit=100, one page", ms(page), "-", "-", "< 50 ms", page < 0.05)
            for name in names:
                http.get(f"/prompts/{name}/stages/dev")
            after = rss_mb(proc.pid)
            row(f"serve RSS, listing + {len(names)} stage reads", f"{after:.0f} MB", f"{before:.0f} MB", "-",
                "< 150 MB", after < 150)  # fmt: skip
    finally:
        proc.terminate()
        proc.wait()


# --- a long-lived prompt -------------------------------------------------------------


def in_turns(writes: list[Callable[[int], object]], i: int) -> list[float]:
    """Each of `writes` called once with `i`, in turn, and how long each took: ours and
    its floors side by side, so each sees the same machine."""
    took = []
    for write in writes:
        t = time.perf_counter()
        write(i)
        took.append(time.perf_counter() - t)
    return took


def copy(repo: pygit2.Repository, folder: str) -> pygit2.Repository:
    """A copy of `repo` for raw writes, leaving the store's own alone: taken while no
    background repack runs in it (they hold promptgit/repack.lock), so no file goes
    missing midway. Raw writes never meet a repack there either."""
    target = Path(tempfile.mkdtemp(dir=folder)) / "copy.git"
    with open(Path(repo.path) / "promptgit" / "repack.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.copytree(repo.path, target)
    return pygit2.Repository(str(target))


def floor_writes(repo: pygit2.Repository, ref: str) -> Callable[[int], None]:
    """Raw pygit2: a blob, a tree, a commit and a compare-and-swap ref move."""
    sig = pygit2.Signature("Bench", "bench@example.com")

    def write(i: int) -> None:
        blob = repo.create_blob(PROMPT.replace("{n}", f"floor {i}").encode())
        tb = repo.TreeBuilder()
        tb.insert("prompt.yaml", blob, pygit2.enums.FileMode.BLOB)
        old = repo.references[ref]
        old.set_target(repo.create_commit(None, sig, sig, f"floor {i}", tb.write(), [old.target]))

    return write


def compare(label: str, took: list[list[float]], target: str) -> None:
    """Two rows from the medians of `took` (per call: ours, the floor, the records
    alone): ours against the floor, and the records against it too."""
    mine, least, raw = (statistics.median(t[k] for t in took) for k in range(3))
    row(label, ms(mine), ms(least), f"{mine / least:.1f}x", target, mine <= 3 * least)
    row("  its records alone, raw pygit2", ms(raw), ms(least), f"{raw / least:.1f}x", "-", None)


def long_lived(versions: int, edits: int) -> None:
    """new_version then edit, each call taking turns with the floor and with the same
    records in raw pygit2 (_records.py), both written on a copy of the repository."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.init(Path(tmp) / "prompts")
        store.create("long", {"prompt.yaml": PROMPT.replace("{n}", "0")}, "first", actor=ACTOR)
        repo = pygit2.Repository(str(store.path / "long.git"))
        copied = copy(repo, tmp)
        copied.references.create("refs/heads/floor", copied.references["refs/heads/v1.0"].target)
        raw = [
            floor_writes(copied, "refs/heads/floor"),
            _records.new_version(copied, SIGNATURE, "refs/heads/floor", "refs/heads/dev"),
        ]
        took: dict[int, list[float]] = {}
        for n in range(2, versions + 1):
            took[n] = in_turns([lambda _: store.new_version("long", actor=ACTOR), *raw], n)
        # the median of ten versions around each point: one sample is at the mercy of
        # the machine, and of the version whose write packs the refs
        for first in (6, max(versions - 9, 16)):
            window = [took[n] for n in range(first, first + 10) if n in took]
            compare(f"new_version, versions {first}-{first + len(window) - 1}", window, "<= 3x, flat")
        draft = store.version_ids("long")[-1]
        copied = copy(repo, tmp)
        copied.references.create("refs/heads/floor", copied.references["refs/heads/v1.0"].target)
        raw = [
            floor_writes(copied, "refs/heads/floor"),
            _records.edit(copied, SIGNATURE, f"refs/heads/{draft}", "refs/heads/dev"),
        ]

        def edit(i: int) -> None:
            text = PROMPT.replace("{n}", f"edit {i}")
            store.edit("long", draft, {"prompt.yaml": text}, f"e{i}", actor=ACTOR)

        times = [in_turns([edit, *raw], versions + i) for i in range(edits)]
        packs = len(list((store.path / "long.git" / "objects" / "pack").glob("*.pack")))
        compare(f"edit, last 200 of {edits} ({packs} packs)", times[-200:], "<= 3x")
        worst = max(t[0] for t in times)
        row(f"edit, slowest of {edits}", ms(worst), "-", "-", "no stall over 50 ms", worst < 0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
    args.out.mkdir(parents=True, exist_ok=True)
    path = big_store(args.out, args.prompts)
    print(json.dumps({"prompts": args.prompts, "versions": args.versions, "edits": args.edits}))
    row("what", "ours", "floor", "ratio", "target", None)
    listing(path)
    serving(path)
    long_lived(args.versions, args.edits)


if __name__ == "__main__":
    main()
