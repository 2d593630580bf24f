"""Core benchmark: promptgit's main operations beside their raw pygit2 floors.

    python bench/core.py [--versions 1000] [--revisions 10000] [--out bench/out]

Builds (or reuses) a store holding one prompt with many versions and revisions,
made through the real library, then times the hot read, an edit, a promotion,
the version list and two CLI round trips. Each figure is printed beside the
cheapest raw pygit2 (or bare Python) way to do the same work, with the ratio
and its target. Speed is measured, not asserted: the exit status is 0 whatever
the figures say.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import _records
import pygit2
from pygit2.enums import ConfigLevel, FileMode

import promptgit
from promptgit import facts
from promptgit.model import Actor
from promptgit.store import Store

NAME = "support/greeting"
ACTOR = Actor("Bench", "bench@example.com")
SIGNATURE = pygit2.Signature(ACTOR.name, ACTOR.email)
DEFAULT_OUT = Path(__file__).resolve().parent / "out"

# --- isolation ------------------------------------------------------------------


def isolate(out: Path) -> None:
    """No machine config can change a figure: no system config, an empty HOME.

    The environment covers the git binary (gc) and the CLI subprocesses; the
    search paths cover libgit2 in this process (pygit2 is already loaded).
    Subprocesses cache bytecode under `out`, as any installed package would
    (some environments set PYTHONDONTWRITEBYTECODE, which would make every CLI
    run recompile promptgit's modules).
    """
    home = out / "home"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "GIT_AUTHOR_NAME": ACTOR.name,
            "GIT_AUTHOR_EMAIL": ACTOR.email,
            "GIT_COMMITTER_NAME": ACTOR.name,
            "GIT_COMMITTER_EMAIL": ACTOR.email,
            "PYTHONPYCACHEPREFIX": str(out / "pycache"),
        }
    )
    for name in ("PROMPTGIT_STORE", "PYTHONDONTWRITEBYTECODE"):
        os.environ.pop(name, None)
    for level in (ConfigLevel.SYSTEM, ConfigLevel.XDG, ConfigLevel.GLOBAL, ConfigLevel.PROGRAMDATA):
        pygit2.settings.search_path[level] = str(home)


# --- the content of the prompt ----------------------------------------------------

GREETINGS = ["Hello", "Hi", "Good day", "Welcome back", "Greetings", "Hey there"]
OFFERS = [
    "how can I help you today?",
    "what can I do for you?",
    "what brings you here?",
    "how may I assist?",
]
TONES = ["friendly", "concise", "formal", "warm", "patient", "upbeat"]
RULES = [
    "Never promise refunds; link the refund policy instead.",
    "Ask for the order number before looking anything up.",
    "Escalate to a human when the customer asks twice.",
    "Answer in the customer's language.",
    "Do not reveal internal ticket notes.",
    "Summarise the issue back before proposing a fix.",
]


def prompt_text(rng: random.Random, serial: int) -> str:
    """A realistic prompt.yaml; `serial` makes every revision's text unique."""
    rules = "\n".join(f"  - {r}" for r in rng.sample(RULES, rng.randint(2, 4)))
    return (
        "description: Greets a customer by name and routes the request\n"
        "model: gpt-4o-mini\n"
        f"parameters: {{temperature: 0.{rng.randint(0, 9)}, max_tokens: {256 + 64 * rng.randint(0, 8)}}}\n"
        "variables: [name]\n"
        "template: |\n"
        f"  You are a {rng.choice(TONES)} support agent for Example Corp.\n"
        "  Rules:\n"
        f"{rules}\n"
        f"  Reply in at most {40 + serial} words.\n"
        "\n"
        f"  {rng.choice(GREETINGS)} {{{{ name }}}}, {rng.choice(OFFERS)}\n"
    )


# --- building the store -------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    versions: int
    revisions: int
    seed: int = 20240601

    @property
    def dirname(self) -> str:
        return f"store-v{self.versions}-r{self.revisions}-s{self.seed}"


@dataclass
class Manifest:
    """What was built, and how long it took; saved beside the store."""

    shape: dict[str, int]
    build_seconds: float
    versions: int
    revisions: int
    released: int
    in_tst: int
    draft_version: str
    prod_version: str
    packs_before_gc: int
    library: str  # the promptgit that built it


def library_id() -> str:
    """promptgit's version and, in a git checkout, its commit (+dirty when edited)."""
    package = Path(promptgit.__file__).parent

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=package, capture_output=True, text=True, check=False)

    head = git("rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        return promptgit.__version__
    dirty = "+dirty" if git("status", "--porcelain", "--", ".").stdout.strip() else ""
    return f"{promptgit.__version__} {head.stdout.strip()}{dirty}"


def spread_edits(n_versions: int, n_edits: int, rng: random.Random) -> list[int]:
    """How many edits each version gets: skewed, most get a few, some get many."""
    weights = [rng.expovariate(1.0) for _ in range(n_versions)]
    counts = [0] * n_versions
    for i in rng.choices(range(n_versions), weights=weights, k=n_edits):
        counts[i] += 1
    return counts


def fate_of(index: int, n_versions: int, rng: random.Random) -> str:
    """dev (stays a draft), tst (promoted) or prod (released). The last stays a DEV draft."""
    if index == n_versions - 1:
        return "dev"
    if index == 0:
        return "prod"  # so prod serves something from the start
    r = rng.random()
    return "prod" if r < 0.3 else "tst" if r < 0.75 else "dev"


class Builder:
    """Drives the real library through a realistic history."""

    def __init__(self, store: Store, shape: Shape) -> None:
        self.store = store
        self.shape = shape
        self.rng = random.Random(shape.seed)
        self.serial = 0

    def text(self) -> str:
        self.serial += 1
        return prompt_text(self.rng, self.serial)

    def edit(self, version: str, count: int) -> None:
        for _ in range(count):
            summary = self.rng.choice(["Tighten wording", "Add a rule", "Reorder rules", "Fix tone"])
            self.store.edit(NAME, version, {"prompt.yaml": self.text()}, summary, actor=ACTOR)

    def new_version(self, index: int, previous: str) -> str:
        if index % 100 == 0:
            info = self.store.new_version(NAME, previous, major=True, message="Next major", actor=ACTOR)
        elif self.rng.random() < 0.1:
            info = self.store.new_version(NAME, "prod", message="Restart from prod", actor=ACTOR)
        else:
            info = self.store.new_version(NAME, previous, message=f"Iterate on {previous}", actor=ACTOR)
        return info.version

    def lifecycle(self, version: str, edits: int, fate: str) -> None:
        """Edit in dev; promote to tst and edit more there; maybe release."""
        if fate == "dev":
            self.edit(version, edits)
            return
        before = math.ceil(edits * 2 / 3)
        self.edit(version, before)
        self.store.promote(NAME, version, to="tst", actor=ACTOR)
        self.edit(version, edits - before)  # these update tst too
        if fate == "prod":
            self.store.promote(NAME, version, to="prod", actor=ACTOR)

    def run(self, progress: Callable[[int, int], None]) -> None:
        n = self.shape.versions
        edits = spread_edits(n, self.shape.revisions - n, self.rng)
        self.store.create(NAME, {"prompt.yaml": self.text()}, "First draft", actor=ACTOR)
        version = "v1.0"
        for i in range(n):
            if i > 0:
                version = self.new_version(i, version)
            self.lifecycle(version, edits[i], fate_of(i, n, self.rng))
            progress(i + 1, n)


def count_packs(store_dir: Path) -> int:
    return len(list(store_dir.glob("**/objects/pack/*.pack")))


def git_gc(store_dir: Path) -> None:
    """Pack every repository. git 2.39 prints spurious "not a commit" errors for the
    reflogs of annotated tags (core.logAllRefUpdates=always), so stderr is shown
    only when gc fails."""
    for repo in store_dir.glob("**/*.git"):
        done = subprocess.run(
            ["git", "-C", str(repo), "gc", "-q"], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"git gc {repo} failed: {done.stderr}")


def describe(store: Store) -> dict[str, object]:
    """Counts read back through the library: what the store really holds."""
    infos = store.versions(NAME)
    revisions = sum(len(store.log(NAME, info.version)) for info in infos)
    dev = next(i.version for i in infos if "dev" in i.current_in)
    prod = next(i.version for i in infos if "prod" in i.current_in)
    return {
        "versions": len(infos),
        "revisions": revisions,
        "released": sum(i.stage == "PROD" for i in infos),
        "in_tst": sum(i.stage == "TST" for i in infos),
        "draft_version": dev,
        "prod_version": prod,
    }


def build(out: Path, shape: Shape) -> tuple[Path, Manifest]:
    """The store for `shape` under `out`: reused when a finished one is there."""
    final = out / shape.dirname
    manifest_path = out / f"{shape.dirname}.json"
    if final.is_dir() and manifest_path.is_file():
        manifest = Manifest(**json.loads(manifest_path.read_text()))
        print(f"reusing {final}, built by promptgit {manifest.library} (delete it to rebuild)")
        return final, manifest
    partial = out / f"{shape.dirname}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    store = Store.init(partial)
    print(f"building {shape.versions} versions / {shape.revisions} revisions in {final} ...")
    start = time.perf_counter()
    Builder(store, shape).run(progress_printer(start))
    seconds = time.perf_counter() - start
    packs = count_packs(partial)
    git_gc(partial)
    facts = describe(Store(partial))
    manifest = Manifest(
        asdict(shape),
        round(seconds, 1),
        packs_before_gc=packs,
        library=library_id(),
        **facts,  # type: ignore[arg-type]
    )
    partial.rename(final)
    manifest_path.write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    print(f"built in {seconds:.1f} s: {facts}")
    return final, manifest


def progress_printer(start: float) -> Callable[[int, int], None]:
    step = 0

    def show(done: int, total: int) -> None:
        nonlocal step
        if done * 20 // total > step or done == total:
            step = done * 20 // total
            elapsed = time.perf_counter() - start
            eta = elapsed / done * (total - done)
            print(f"  {done}/{total} versions, {elapsed:.0f} s elapsed, ~{eta:.0f} s to go", flush=True)

    return show


# --- timing -------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    samples: tuple[float, ...]  # seconds, one per call

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def measure(fn: Callable[[int], object], runs: int, warmup: int) -> Timing:
    """Call fn(i) `warmup` times untimed, then `runs` times, timing each call."""
    return measure_interleaved([fn], runs, warmup)[0]


def measure_pair(
    ours: Callable[[int], object], floor: Callable[[int], object], runs: int, warmup: int
) -> tuple[Timing, Timing]:
    """Like `measure`, alternating ours and its floor call by call, so that both
    see the same machine (caches, disk, other load) and drift cancels out."""
    timed_ours, timed_floor = measure_interleaved([ours, floor], runs, warmup)
    return timed_ours, timed_floor


def measure_interleaved(fns: list[Callable[[int], object]], runs: int, warmup: int) -> list[Timing]:
    """Each of `fns` timed, taking turns call by call."""
    samples: list[list[float]] = [[] for _ in fns]
    for i in range(warmup + runs):
        for fn, out in zip(fns, samples, strict=True):
            start = time.perf_counter()
            fn(i)
            if i >= warmup:
                out.append(time.perf_counter() - start)
    return [Timing(tuple(out)) for out in samples]


@dataclass(frozen=True)
class Row:
    operation: str
    ours: Timing
    floor: Timing | None
    max_ratio: float | None = None  # target: ours.median <= max_ratio * floor.median
    max_seconds: float | None = None  # target: ours.median <= max_seconds

    @property
    def ratio(self) -> float | None:
        return self.ours.median / self.floor.median if self.floor else None

    @property
    def target(self) -> str:
        if self.max_ratio is not None:
            return f"<= {self.max_ratio:g}x"
        return "-" if self.max_seconds is None else f"< {fmt(self.max_seconds)}"

    @property
    def meets(self) -> bool | None:
        """None: a row with no target (shown for comparison)."""
        if self.max_ratio is not None:
            return self.ratio is not None and self.ratio <= self.max_ratio
        return None if self.max_seconds is None else self.ours.median < self.max_seconds


# --- the measurements -----------------------------------------------------------------


def bench_get(store_dir: Path) -> Row:
    """The hot path, warm: the same Store object asked again and again."""
    store = Store(store_dir)
    repo = pygit2.Repository(str(store_dir / f"{NAME}.git"))

    def ours(_: int) -> object:
        return store.get(NAME, stage="prod").render(name="Ada")

    def floor(_: int) -> bytes:
        commit = repo.lookup_reference("refs/heads/prod").peel(pygit2.Commit)
        return commit.tree["prompt.yaml"].data

    timings = measure_pair(ours, floor, runs=20000, warmup=2000)
    return Row("get(prod).render() warm", *timings, max_ratio=2)


def bench_versions(store_dir: Path) -> list[Row]:
    """Warm (the same Store again) and cold (a new Store, as every CLI run is)."""
    store = Store(store_dir)
    count = len(store.versions(NAME))
    warm = measure(lambda _: store.versions(NAME), runs=15, warmup=2)
    cold = measure(lambda _: Store(store_dir).versions(NAME), runs=15, warmup=2)
    return [
        Row(f"versions() warm, {count} versions", warm, None, max_seconds=0.150),
        Row(f"versions() new Store, {count} versions", cold, None, max_seconds=0.150),
    ]


def raw_commit(repo: pygit2.Repository, branch: str) -> Callable[[int], None]:
    """The floor of a write: blob + tree + commit, then one compare-and-swap ref update."""

    def write(i: int) -> None:
        blob = repo.create_blob(f"template: floor {i}\n".encode())
        builder = repo.TreeBuilder()
        builder.insert("prompt.yaml", blob, FileMode.BLOB)
        ref = repo.lookup_reference(branch)
        commit = repo.create_commit(None, SIGNATURE, SIGNATURE, f"floor {i}\n", builder.write(), [ref.target])
        ref.set_target(commit, "bench: floor")  # fails if the ref moved since lookup

    return write


def bench_writes(ours_dir: Path, floor_dir: Path, draft: str) -> list[Row]:
    """Edit (dev serves the draft: a revision plus an update deployment), then promote to tst."""
    store = Store(ours_dir)
    rng = random.Random(7)

    def edit(i: int) -> None:
        text = prompt_text(rng, 100_000 + i)
        store.edit(NAME, draft, {"prompt.yaml": text}, f"Bench edit {i}", actor=ACTOR)

    def promote(_: int) -> None:
        store.promote(NAME, draft, to="tst", actor=ACTOR)

    floor_repo = pygit2.Repository(str(floor_dir / f"{NAME}.git"))
    branch = f"refs/heads/{draft}"
    floor = raw_commit(floor_repo, branch)
    # each beside the same records in raw pygit2 (on the floor's copy), sharing one
    # floor: how much of the ratio is the model's records, and how much promptgit's code
    edit_records = _records.edit(floor_repo, SIGNATURE, branch, "refs/heads/dev")
    promote_records = _records.promote(floor_repo, SIGNATURE, branch, "refs/heads/tst")
    edits, edit_raw, edit_floor = measure_interleaved([edit, edit_records, floor], runs=300, warmup=30)
    promotions, promote_raw, promote_floor = measure_interleaved([promote, promote_records, floor], 300, 30)
    return [
        Row(f"edit() {draft}, dev serves it", edits, edit_floor, max_ratio=3),
        Row("  its records alone, raw pygit2", edit_raw, edit_floor),
        Row(f"promote() {draft} to tst", promotions, promote_floor, max_ratio=3),
        Row("  its records alone, raw pygit2", promote_raw, promote_floor),
    ]


def command(argv: list[str], before: Callable[[], None] | None = None) -> Callable[[int], None]:
    """A subprocess run to time (after `before`, if given); a failing command stops the
    bench with its stderr."""

    def run(_: int) -> None:
        if before is not None:
            before()
        done = subprocess.run(argv, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}")

    return run


def promptgit_command() -> str:
    """The console script beside this Python (not a version manager's shim)."""
    beside = Path(sys.executable).parent / "promptgit"
    return str(beside) if beside.is_file() else shutil.which("promptgit") or "promptgit"


def bench_cli(store_dir: Path) -> list[Row]:
    """Each command as it runs again at the same state (its answer kept in the index,
    answers.py), and as it runs after any change (nothing kept: it reads the prompt)."""
    cli = promptgit_command()
    floor = command([sys.executable, "-c", "import pygit2"])

    def forget() -> None:  # ~1 ms, inside the timing
        with sqlite3.connect(store_dir / facts.PATH) as db:
            db.execute("DELETE FROM answers")

    rows = []
    for words in (["show", NAME, "--json"], ["versions", NAME, "--json"]):
        argv = [cli, "--store", str(store_dir), *words]
        label = f"CLI {' '.join(words[:1] + words[2:])}"
        rows.append(Row(label, *measure_pair(command(argv), floor, runs=15, warmup=2), max_ratio=1.3))
        timings = measure_pair(command(argv, forget), floor, runs=15, warmup=2)
        rows.append(Row(f"{label}, nothing kept", *timings, max_ratio=1.3))
    return rows


# --- reporting ------------------------------------------------------------------------


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def table(rows: list[Row]) -> str:
    head = ["operation", "ours median", "ours p95", "floor median", "ratio", "target", "meets"]
    body = [
        [
            r.operation,
            fmt(r.ours.median),
            fmt(r.ours.p95),
            fmt(r.floor.median) if r.floor else "-",
            f"{r.ratio:.2f}x" if r.ratio is not None else "-",
            r.target,
            "-" if r.meets is None else "yes" if r.meets else "NO",
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def save(rows: list[Row], manifest: Manifest, path: Path) -> None:
    data = {
        "library": library_id(),
        "manifest": asdict(manifest),
        "rows": [
            {
                "operation": r.operation,
                "ours_median_s": r.ours.median,
                "ours_p95_s": r.ours.p95,
                "floor_median_s": r.floor.median if r.floor else None,
                "ratio": r.ratio,
                "target": r.target,
                "meets": r.meets,
            }
            for r in rows
        ],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


@contextmanager
def working_copies(built: Path, out: Path) -> Iterator[tuple[Path, Path]]:
    """Two throwaway copies of the built store: one for us, one for the floor's writes."""
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=out))
    try:
        ours, floor = scratch / "ours", scratch / "floor"
        shutil.copytree(built, ours)
        shutil.copytree(built, floor)
        yield ours, floor
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--revisions", type=int, default=10000)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where stores and results go")
    args = parser.parse_args(argv)
    if args.revisions < args.versions:
        parser.error("--revisions counts every version's creation commit: give at least --versions")
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    isolate(out)

    built, manifest = build(out, Shape(args.versions, args.revisions))
    print(
        f"store: {manifest.versions} versions, {manifest.revisions} revisions, {manifest.released} released, "
        f"{manifest.in_tst} in TST; built in {manifest.build_seconds:.1f} s "
        f"({manifest.packs_before_gc} packs before gc); prod serves {manifest.prod_version}, "
        f"dev serves draft {manifest.draft_version}"
    )
    with working_copies(built, out) as (ours, floor):
        rows = [bench_get(ours), *bench_versions(ours), *bench_cli(ours)]
        rows += bench_writes(ours, floor, manifest.draft_version)
    versions = f"promptgit {library_id()}, pygit2 {pygit2.__version__}, libgit2 {pygit2.LIBGIT2_VERSION}"
    print(f"\nmeasured with {versions}")
    print(table(rows))
    save(rows, manifest, out / f"results-core-{built.name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
