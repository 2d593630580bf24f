"""What the server-side hooks add to a push: a small draft edit pushed over a
file path, with the hooks installed and with none (the floor). Prints figures;
never fails on them.

    python bench/hooks.py [--pushes 15]

With `promptgit serve` running on the store, the hooks hand their work to it
(handoff.py): those rows show what a push costs then.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from promptgit import Actor, Store
from promptgit.hooks import SOCKET

PROMPT = "variables: [name]\ntemplate: |\n  Hello {{ name }}, how can I help?\n"
TARGET_MS = 300.0
TARGET_SERVED_MS = 150.0  # when `promptgit serve` runs on the store


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout


def timed_pushes(clone: Path, branch: str, pushes: int) -> list[float]:
    """Commit a one-line change and push it, `pushes` times; the push durations in ms."""
    git(clone, "checkout", "-q", branch)
    out = []
    for i in range(pushes):
        (clone / "prompt.yaml").write_text(PROMPT.replace("Hello", f"Hello #{i}"))
        git(clone, "commit", "-q", "-am", f"edit {i}")
        start = time.perf_counter()
        git(clone, "push", "-q", "origin", branch)
        out.append((time.perf_counter() - start) * 1000)
    return out


def setup(root: Path, hooks: bool, dev_serves_draft: bool) -> tuple[Path, str]:
    store = Store.init(root / "prompts")
    actor = Actor("Bench", "bench@example.com")
    store.create("greeting", {"prompt.yaml": PROMPT}, "first", actor=actor)
    if not dev_serves_draft:
        store.new_version("greeting", "v1.0", actor=actor)  # dev now serves v1.1; we push v1.0
    repo = store.path / "greeting.git"
    if not hooks:
        for hook in (repo / "hooks").iterdir():
            hook.unlink()
    clone = root / "clone"
    git(root, "clone", "-q", str(repo), str(clone))
    git(clone, "checkout", "-q", "-b", "v1.0", "origin/v1.0")
    git(clone, "checkout", "-q", "-")
    return clone, "v1.0"


def measure(hooks: bool, dev_serves_draft: bool, pushes: int, served: bool = False) -> list[float]:
    root = Path(tempfile.mkdtemp(prefix="promptgit-bench-hooks-"))
    server = None
    try:
        clone, branch = setup(root, hooks, dev_serves_draft)
        if served:  # `promptgit serve` on the store: the hooks hand their work to it
            server = subprocess.Popen(
                [sys.executable, "-m", "promptgit", "--store", str(root / "prompts"), "serve", "--port", "0"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 60
            while not (root / "prompts" / SOCKET).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        timed_pushes(clone, branch, 2)  # warm the page cache and git itself
        return timed_pushes(clone, branch, pushes)
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=15)
    args = parser.parse_args()
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    os.environ.setdefault("GIT_AUTHOR_NAME", "Bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    os.environ.setdefault("GIT_COMMITTER_NAME", "Bench")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@example.com")

    floor = statistics.median(measure(False, True, args.pushes))
    print(f"{'push of one draft edit':<52} {'median':>9} {'added':>9} {'ratio':>7}  target")
    print(f"{'no hooks (the floor)':<52} {floor:>7.1f}ms {'':>9} {'1.00x':>7}")
    for label, serves, served, target in (
        ("hooks, dev serves the draft (post-receive deploys)", True, False, TARGET_MS),
        ("hooks, no stage serves it", False, False, TARGET_MS),
        ("hooks handed to promptgit serve, dev serves the draft", True, True, TARGET_SERVED_MS),
        ("hooks handed to promptgit serve, no stage serves it", False, True, TARGET_SERVED_MS),
    ):
        ours = statistics.median(measure(True, serves, args.pushes, served))
        added = ours - floor
        verdict = "meets" if added < target else "MISSES"
        print(
            f"{label:<52} {ours:>7.1f}ms {added:>7.1f}ms {ours / floor:>6.2f}x  "
            f"adds < {target:.0f} ms: {verdict}"
        )


if __name__ == "__main__":
    main()
