"""What releases cost on disk: N releases of a ~2 KB prompt, each a small edit, packed.

    python bench/disk.py [--releases 200]

Prints the object store's bytes after `promptgit gc` (one pack), per release, and
beside it the floor: the same contents as plain commits on one branch, packed the
same way (what git itself needs for that history).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from promptgit import Actor, Store

BODY = "\n".join(f"  Line {i}: be kind, be brief, answer in the customer's language." for i in range(30))


def prompt(i: int) -> str:
    return f"description: release {i}\nvariables: [name]\ntemplate: |\n  Hello {{{{ name }}}} ({i})\n{BODY}\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--releases", type=int, default=200)
    n = parser.parse_args().releases
    root = Path(tempfile.mkdtemp(prefix="promptgit-disk-"))
    store = Store.init(root / "prompts")
    a = Actor("Bench", "bench@example.com")
    store.create("greeting", {"prompt.yaml": prompt(0)}, "first", actor=a)
    for i in range(n):
        if i:
            store.new_version("greeting", actor=a)
            store.edit("greeting", "dev", {"prompt.yaml": prompt(i)}, f"release {i}", actor=a)
        store.promote("greeting", "dev", to="tst", actor=a)
        store.promote("greeting", actor=a, to="prod")
    store.gc(actor=a)
    ours = store.repository("greeting").size()
    floor = root / "floor.git"
    subprocess.run(["git", "init", "-q", "--bare", str(floor)], check=True)
    work = root / "work"
    subprocess.run(["git", "clone", "-q", str(floor), str(work)], check=True, capture_output=True)
    for i in range(n):
        (work / "prompt.yaml").write_text(prompt(i))
        subprocess.run(["git", "-C", str(work), "add", "."], check=True)
        subprocess.run(
            ["git", "-C", str(work), "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", f"r{i}"],
            check=True,
        )
    subprocess.run(["git", "-C", str(work), "repack", "-a", "-d", "-q"], check=True)
    base = sum(f.stat().st_size for f in (work / ".git" / "objects").rglob("*") if f.is_file())
    print(f"{n} releases of a {len(prompt(0)):,}-byte prompt, packed")
    print(f"  promptgit: {ours:>10,} bytes  {ours / n:>8,.0f} per release")
    print(f"  plain git: {base:>10,} bytes  {base / n:>8,.0f} per commit   ratio {ours / base:.2f}x")


if __name__ == "__main__":
    main()
