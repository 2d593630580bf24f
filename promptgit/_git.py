"""The only module that imports pygit2: a small, typed view of one bare repository.

New objects are *staged*: hashed and held in memory, readable through the same
methods as stored ones, and written to the object database only when a ref
transaction has locked and re-checked its refs and the policy has said yes.
A refused operation therefore leaves no file behind, not even a loose object.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import random
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import changes, locks
from .errors import ConcurrentUpdate, InvalidInput
from .ref_files import list_refs

if TYPE_CHECKING:
    import pygit2

    from .facts import Facts
else:

    class _Pygit2:
        """pygit2, imported when first used (it costs ~50 ms): a read answered from
        the ref files and the index (a warm listing) never opens a repository."""

        def __getattr__(self, name: str) -> Any:
            import pygit2 as module

            globals()["pygit2"] = module
            return getattr(module, name)

    pygit2 = _Pygit2()

ZERO = "0" * 40
LOOSE_REFS_BEFORE_PACK = 32  # loose version branches and tags before the refs are packed
LOOSE_OBJECTS_BEFORE_PACK = 2000  # estimated like `git gc --auto` does, from objects/17


@dataclass(frozen=True)
class Person:
    """Who did it and when: an explicit actor, never process-wide identity."""

    name: str
    email: str
    time: int = 0
    offset: int = 0  # minutes east of UTC

    def now(self) -> Person:
        t = time.time()
        offset = (time.localtime(t).tm_gmtoff or 0) // 60
        return Person(self.name, self.email, int(t), offset)

    def raw(self) -> bytes:
        sign = "-" if self.offset < 0 else "+"
        hh, mm = divmod(abs(self.offset), 60)
        return f"{self.name} <{self.email}> {self.time} {sign}{hh:02d}{mm:02d}".encode()

    @property
    def at(self) -> str:
        """ISO 8601, in the offset the commit was made in."""
        tz = timezone(timedelta(minutes=self.offset))
        return datetime.fromtimestamp(self.time, tz).isoformat()

    @property
    def by(self) -> str:
        return f"{self.name} <{self.email}>"


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    tree: str
    parents: tuple[str, ...]
    message: str
    author: Person


@dataclass(frozen=True, slots=True)
class Tag:
    sha: str
    name: str
    target: str
    target_type: str
    message: str
    tagger: Person | None


@dataclass(frozen=True, slots=True)
class RefUpdate:
    """One proposed ref change; `old`/`new` None mean absent (create / delete)."""

    ref: str
    old: str | None
    new: str | None


@dataclass
class _Staged:
    raw: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    tags: dict[str, Tag] = field(default_factory=dict)
    trees: dict[str, dict[str, str]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)


def _hash(kind: str, raw: bytes) -> str:
    return hashlib.sha1(b"%s %d\0%s" % (kind.encode(), len(raw), raw)).hexdigest()


class Repo:
    """One bare prompt repository. Reads see staged objects; writes are staged."""

    def __init__(self, path: str, *, from_env: bool = False, beacon: Path | None = None) -> None:
        self._r: Any
        flag = pygit2.enums.RepositoryOpenFlag
        # inside a hook: honour GIT_DIR and the push quarantine
        self._flags = flag.FROM_ENV if from_env else flag.BARE | flag.NO_SEARCH
        try:
            self._r = pygit2.Repository(path, self._flags)
        except pygit2.GitError as e:
            raise InvalidInput(f"cannot open repository {path}: {e}") from None
        self.path = path
        self.beacon = beacon  # rung after every update (see changes.py)
        self.facts: Facts | None = None  # the store's derived-facts index, when reads may use it
        self._tag_targets: dict[str, str] = {}
        # answers derived from the refs alone, with the listing they were derived from
        # (history.all_versions): {what: (refs, answer)}
        self.kept: dict[str, tuple[Any, Any]] = {}
        self._staged = _Staged()

    @classmethod
    def init(cls, path: str, head: str, config: Mapping[str, str]) -> Repo:
        r = pygit2.init_repository(path, bare=True)
        for key, value in config.items():
            r.config[key] = value
        r.references.create("HEAD", head, force=True)
        return cls(path)

    def config(self, key: str) -> str | None:
        try:
            return str(self._r.config[key])
        except KeyError:
            return None

    def configure(self, config: Mapping[str, str]) -> None:
        """Set keys in the repository's own config file. A fresh view of the file: the
        repository's cached one skips a write whose value it still believes is set,
        though `git config` may have changed the file since."""
        local = pygit2.Config(os.path.join(self.path, "config"))
        for key, value in config.items():
            local[key] = value

    # --- refs --------------------------------------------------------------

    def ref(self, name: str) -> str | None:
        ref = self._r.references.get(name)
        return None if ref is None else str(ref.target)

    def refs(self, prefix: str = "refs/") -> dict[str, str]:
        """Every direct ref under `prefix` ({ref: sha}), read from the files
        (`list_refs`); a ref file only libgit2 can judge sends the listing to it."""
        listed = list_refs(self.path)
        if listed is None:
            listed = {}
            for ref in self._r.listall_reference_objects():
                if ref.type == pygit2.enums.ReferenceType.DIRECT:
                    listed[ref.name] = str(ref.target)
        return {ref: sha for ref, sha in listed.items() if ref.startswith(prefix)}

    def moves(self, name: str) -> list[tuple[str | None, str | None]]:
        """(old, new) of every update the ref's reflog records, oldest first."""
        ref = self._r.references.get(name)
        if ref is None:
            return []
        out = []
        for entry in ref.log():
            old, new = str(entry.oid_old), str(entry.oid_new)
            out.append((None if old == ZERO else old, None if new == ZERO else new))
        return out[::-1]

    def fsck(self) -> list[str]:
        """What `git fsck` finds wrong (missing or corrupt objects, broken links)."""
        out = subprocess.run(
            ["git", "-C", self.path, "fsck", "--no-progress", "--no-dangling"], capture_output=True, text=True
        )
        lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
        return lines if out.returncode != 0 or lines else []

    # --- reading objects ---------------------------------------------------

    def exists(self, sha: str) -> bool:
        return sha in self._staged.raw or sha in self._r

    def expand(self, prefix: str) -> str | None:
        """The full sha of an object named by a unique hex prefix (None: unknown or ambiguous)."""
        if prefix in self._staged.raw:
            return prefix
        try:
            obj = self._r.git_object_lookup_prefix(prefix)
        except (ValueError, KeyError, pygit2.GitError):
            return None
        return None if obj is None else str(obj.id)

    def kind(self, sha: str) -> str | None:
        if sha in self._staged.raw:
            return self._staged.raw[sha][0]
        obj = self._r.get(sha)
        return None if obj is None else str(obj.type_str)

    def commit(self, sha: str) -> Commit:
        staged = self._staged.commits.get(sha)
        if staged is not None:
            return staged
        c = self._r[sha]
        if c.type != pygit2.enums.ObjectType.COMMIT:
            raise KeyError(sha)
        a = c.author
        return Commit(
            sha=sha,
            tree=str(c.tree_id),
            parents=tuple(str(p) for p in c.parent_ids),
            message=c.raw_message.decode("utf-8", "replace"),
            author=Person(a.name or "?", a.email or "?", a.time, a.offset),
        )

    def tag(self, sha: str) -> Tag | None:
        staged = self._staged.tags.get(sha)
        if staged is not None:
            return staged
        t = self._r.get(sha)
        if t is None or t.type != pygit2.enums.ObjectType.TAG:
            return None
        tg = t.tagger
        tagger = Person(tg.name or "?", tg.email or "?", tg.time, tg.offset) if tg else None
        target = self._r.get(t.target)
        return Tag(sha, t.name, str(t.target), str(target.type_str), t.message or "", tagger)

    def tag_target(self, sha: str) -> str:
        """What an annotated tag points at (a lightweight tag: itself). A tag object
        never changes, so its answer is kept."""
        hit = self._tag_targets.get(sha)
        if hit is None:
            t = self.tag(sha)
            hit = self._tag_targets[sha] = t.target if t is not None else sha
        return hit

    def first_parents(self, sha: str) -> Iterator[Commit]:
        """The first-parent chain from `sha`, newest first."""
        cur: str | None = sha
        while cur is not None:
            c = self.commit(cur)
            yield c
            cur = c.parents[0] if c.parents else None

    def messages(self, sha: str) -> Iterator[tuple[str, str, int]]:
        """(sha, message, number of parents) along the first-parent chain, newest
        first: the cheap walk for long logs (about 1 µs a commit; `first_parents`
        builds whole records)."""
        cur: Any = sha
        while cur is not None:
            key = str(cur)
            staged = self._staged.commits.get(key)
            if staged is not None:
                yield key, staged.message, len(staged.parents)
                cur = staged.parents[0] if staged.parents else None
                continue
            c = self._r[cur]
            ids = c.parent_ids
            yield key, c.raw_message.decode("utf-8", "replace"), len(ids)
            cur = ids[0] if ids else None

    def files(self, tree: str) -> dict[str, bytes]:
        """A tree's entries as {name: bytes}; a subtree shows as 'name/' with no data."""
        staged = self._staged.trees.get(tree)
        if staged is not None:
            return {n: self.blob(s) for n, s in staged.items()}
        out: dict[str, bytes] = {}
        for entry in self._r[tree]:
            if entry.type == pygit2.enums.ObjectType.BLOB:
                out[entry.name] = entry.data
            else:
                out[entry.name + "/"] = b""
        return out

    def irregular(self, tree: str) -> dict[str, str]:
        """Entries of a tree that are not regular files: {name: 'symlink' | 'submodule' | ...}."""
        if tree in self._staged.trees:
            return {}  # promptgit stages regular files only
        kinds = {0o120000: "symbolic link", 0o160000: "submodule"}
        return {
            e.name: kinds.get(int(e.filemode), f"mode {int(e.filemode):o}")
            for e in self._r[tree]
            if (e.type == pygit2.enums.ObjectType.BLOB and int(e.filemode) not in (0o100644, 0o100755))
            or e.type == pygit2.enums.ObjectType.COMMIT
        }

    def blob(self, sha: str) -> bytes:
        staged = self._staged.blobs.get(sha)
        return staged if staged is not None else bytes(self._r[sha].data)

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True when `ancestor` is reachable from `descendant` (or equal to it)."""
        if ancestor == descendant:
            return True
        if ancestor in self._staged.raw:
            return False
        if descendant in self._staged.commits:
            return any(self.is_ancestor(ancestor, p) for p in self.commit(descendant).parents)
        return bool(self._r.descendant_of(descendant, ancestor))

    def diff(self, a: str, b: str) -> str:
        ta, tb = self._r[a].peel(pygit2.Tree), self._r[b].peel(pygit2.Tree)
        return str(self._r.diff(ta, tb, context_lines=3).patch or "")

    def diff_files(self, a: str, b: str) -> dict[str, str]:
        """The unified diff of each file that differs between two commits' trees."""
        ta, tb = self._r[a].peel(pygit2.Tree), self._r[b].peel(pygit2.Tree)
        out: dict[str, str] = {}
        for patch in self._r.diff(ta, tb, context_lines=3):
            delta = patch.delta
            path = (
                delta.new_file.path
                if delta.status != pygit2.enums.DeltaStatus.DELETED
                else delta.old_file.path
            )
            out[str(path)] = str(patch.text or "")
        return out

    # --- staging new objects -------------------------------------------------

    def _stage(self, kind: str, raw: bytes) -> str:
        sha = _hash(kind, raw)
        self._staged.raw[sha] = (kind, raw)
        return sha

    def stage_blob(self, data: bytes) -> str:
        sha = self._stage("blob", data)
        self._staged.blobs[sha] = data
        return sha

    def stage_tree(self, files: Mapping[str, bytes]) -> str:
        """A flat tree of files (name -> content)."""
        return self._stage_entries({name: ("100644", self.stage_blob(data)) for name, data in files.items()})

    def _stage_entries(self, entries: Mapping[str, tuple[str, str]]) -> str:
        """A tree from name -> (mode, sha), in git's order (a subtree sorts as 'name/')."""
        body = b""
        for name in sorted(entries, key=lambda n: n + "/" if entries[n][0] == "40000" else n):
            mode, sha = entries[name]
            body += mode.encode() + b" " + name.encode() + b"\0" + bytes.fromhex(sha)
        tree = self._stage("tree", body)
        self._staged.trees[tree] = {n: s for n, (m, s) in entries.items() if m != "40000"}
        return tree

    # --- notes ---------------------------------------------------------------------

    def note(self, ref: str, target: str) -> str | None:
        """The note on `target` in the notes ref (flat or fanned out, as git writes them)."""
        tip = self.ref(ref)
        if tip is None:
            return None
        tree = self._r[tip].tree
        for path in (target, f"{target[:2]}/{target[2:]}"):
            try:
                return str(tree[path].data.decode("utf-8", "replace"))
            except KeyError:
                continue
        return None

    def stage_note(self, ref: str, target: str, text: str, who: Person, message: str) -> RefUpdate:
        """A new notes commit setting the note on `target` (kept flat; other notes kept)."""
        old = self.ref(ref)
        entries: dict[str, tuple[str, str]] = {}
        if old is not None:
            for entry in self._r[old].tree:
                entries[entry.name] = (f"{int(entry.filemode):o}", str(entry.id))
        entries[target] = ("100644", self.stage_blob(text.encode()))
        tree = self._stage_entries(entries)
        commit = self.stage_commit(tree, [old] if old else [], message, who)
        return RefUpdate(ref, old, commit)

    def stage_commit(self, tree: str, parents: Sequence[str], message: str, author: Person) -> str:
        head = [f"tree {tree}"] + [f"parent {p}" for p in parents]
        raw = ("\n".join(head) + "\n").encode()
        raw += b"author " + author.raw() + b"\ncommitter " + author.raw() + b"\n\n"
        raw += message.encode()
        sha = self._stage("commit", raw)
        self._staged.commits[sha] = Commit(sha, tree, tuple(parents), message, author)
        return sha

    def stage_tag(self, name: str, target: str, message: str, tagger: Person) -> str:
        raw = f"object {target}\ntype commit\ntag {name}\n".encode()
        raw += b"tagger " + tagger.raw() + b"\n\n" + message.encode()
        sha = self._stage("tag", raw)
        self._staged.tags[sha] = Tag(sha, name, target, "commit", message, tagger)
        return sha

    def discard(self) -> None:
        self._staged = _Staged()

    def _write_staged(self) -> None:
        odb = self._r.odb
        for sha, (kind, raw) in self._staged.raw.items():
            written = str(_write_object(odb, getattr(pygit2.enums.ObjectType, kind.upper()), raw))
            if written != sha:  # our serializer and libgit2 must agree to the byte
                raise AssertionError(f"object hash mismatch: {written} != {sha}")
        self._staged = _Staged()

    # --- the one way refs change -------------------------------------------

    def update_refs(
        self,
        steps: Sequence[Sequence[RefUpdate]],
        *,
        read: Mapping[str, str | None],
        check: Any,
        who: Person,
        message: str,
        audit: tuple[str, str] | None = None,
    ) -> None:
        """Lock every ref changed or read, re-check them, run `check`, then write.

        `read` are refs the rules depend on (ref -> the value the caller saw).
        Every ref of every step, every ref read, and the audit log are locked
        first (one libgit2 transaction per step), then the repository's write
        lock is taken (the reference-transaction hook takes it for pushes too).
        Each ref must still hold the value the caller saw and `check` (the
        policy, on all steps' updates) must pass; then the staged objects are
        written and the steps' transactions committed in order. A crash between
        two steps leaves a state the next operation can detect and finish; no
        other writer can slip in between, since every lock is held to the end.

        `audit` (ref, message): first, an entry with that message, by `who`,
        now, is appended to that log (the audit log, which promptgit alone writes),
        so no change lands without its entry.
        """
        expected: dict[str, str | None] = dict(read)
        for step in steps:
            for u in step:
                expected.setdefault(u.ref, u.old)
        changed = {u.ref for step in steps for u in step}
        held_only = sorted(set(expected) - changed)
        # the audit entry goes first: a crash after it leaves an entry naming a change
        # that did not land (readers check the ref), never a change nobody is named for
        first = [audit[0]] if audit else []
        groups = [first] + [sorted({u.ref for u in step}) for step in steps] + [held_only]
        # pygit2's transaction cannot take a Signature (it passes bytes to C), so the
        # reflog identity is set on the repository for the duration of this update.
        self._r.set_ident(who.name, who.email)
        try:
            with self._locked(groups) as txns, self._write_lock():
                for name in sorted(expected):
                    now = self.ref(name)
                    if now != expected[name]:
                        raise ConcurrentUpdate(
                            f"{name.removeprefix('refs/heads/')} changed while this operation "
                            f"ran (it is now {_short(now)}, was {_short(expected[name])}): "
                            "someone else updated this prompt; look again and retry",
                            current=now,
                        )
                if check is not None:
                    check()
                if any(u.new is None for step in steps for u in step):
                    self._await_packed_refs()
                if audit is not None:
                    old = self.ref(audit[0])
                    entry = self.stage_commit(self.stage_tree({}), [old] if old else [], audit[1], who)
                    txns[0].set_target(audit[0], entry, message=_first_line(audit[1]))
                self._write_staged()
                for txn, step in zip(txns, [[], *steps, []], strict=True):
                    try:
                        for u in step:
                            if u.new is None:
                                txn.remove(u.ref)
                            else:
                                txn.set_target(u.ref, u.new, message=message)
                        txn.commit()
                    except pygit2.GitError as e:
                        # libgit2 may now believe what the files do not say (a packed ref
                        # it dropped from its view, not from packed-refs): look again
                        self._r = pygit2.Repository(self.path, self._flags)
                        raise ConcurrentUpdate(
                            f"another process got in the way of this operation ({e}), so it "
                            "stopped before its last step: look at the prompt again and retry "
                            "('promptgit doctor' names anything left half done)"
                        ) from None
                if any(u.old is None and u.new is not None for step in steps for u in step):
                    self._maybe_pack_refs()
        finally:
            self.discard()
            self._r.set_ident(None, None)
        if self.beacon is not None:
            changes.ring(self.beacon)
        self._maybe_pack()

    def _await_packed_refs(self) -> None:
        """Wait while another process holds packed-refs.lock (as git's
        core.packedRefsTimeout does), before anything is written. libgit2 deletes a
        packed ref by rewriting packed-refs, and when it cannot take that lock it fails
        at once, after removing the loose file: the ref falls back to its older packed
        value. git holds the lock while a push deletes refs, or packs them."""
        lock = Path(self.path) / "packed-refs.lock"
        deadline = time.monotonic() + locks.TIMEOUT
        while lock.exists():
            if locks.break_stale(Path(self.path), "packed-refs"):
                continue
            if time.monotonic() > deadline:
                raise ConcurrentUpdate(
                    f"another process (a push deleting refs, or git pack-refs) has held "
                    f"packed-refs.lock for over {locks.TIMEOUT:g} s, so nothing was changed: "
                    "retry; if no git or promptgit process is running, remove "
                    f"{lock}"
                )
            time.sleep(random.uniform(0.002, 0.02))

    def _write_lock(self) -> Any:
        """The repository-wide write lock, `promptgit/write.lock`.

        Taken after the ref locks, by the library and by the reference-transaction
        hook alike, so a push's re-check and a library write never interleave.
        A lock whose owner is gone is broken (locks.py)."""
        return locks.held(Path(self.path) / "promptgit" / "write.lock", "the repository's write lock")

    @contextmanager
    def _locked(self, groups: Sequence[Sequence[str]]) -> Iterator[list[Any]]:
        """One ref transaction per group, together holding every lock in `groups`;
        the caller commits them; all are freed (their locks let go) on the way out.

        Another writer holds a lock for milliseconds, so a busy lock is retried
        for a moment (like git's core.filesRefLockTimeout) before giving up; a
        lock left by a writer that is gone is broken (locks.break_stale).
        """
        deadline = time.monotonic() + locks.TIMEOUT
        every = [name for group in groups for name in group]
        with locks.claim(Path(self.path), every):
            while True:
                txns: list[Any] = []
                try:
                    for group in groups:
                        txns.append(self._r.transaction())
                        for name in group:
                            txns[-1].lock_ref(name)
                    break
                except pygit2.GitError:
                    _free(txns)
                    if locks.break_stale(Path(self.path), name):
                        continue
                    if time.monotonic() > deadline:
                        raise ConcurrentUpdate(
                            f"another operation has held the lock on {name} for over "
                            f"{locks.TIMEOUT:g} s; retry, or run 'promptgit doctor --repair' "
                            "if no promptgit or git process is running"
                        ) from None
                    time.sleep(random.uniform(0.002, 0.02))
            try:
                yield txns
            finally:
                _free(txns)

    def size(self) -> int:
        """Bytes of the object store (loose objects, packs and their indexes)."""
        total = 0
        for root, _dirs, files in os.walk(os.path.join(self.path, "objects")):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
        return total

    def repack(self) -> None:
        """Everything into one pack (nothing reachable is dropped; reflogs keep the rest),
        its deltas searched afresh and wide, and without a bitmap: a prompt's history is
        small, and a bitmap costs more bytes than its clones save time."""
        subprocess.run(
            ["git", "-C", self.path, "-c", "repack.writeBitmaps=false", "repack", "-a", "-d", "-f", "-q",
             "--window=250", "--depth=50"],
            check=False,
            capture_output=True,
        )  # fmt: skip
        subprocess.run(["git", "-C", self.path, "prune-packed", "-q"], check=False, capture_output=True)

    def _maybe_pack_refs(self) -> None:
        """Pack the refs once loose ones pile up (each version and release adds one),
        so listing a prompt's versions reads one file instead of hundreds. Called with
        the repository's write lock held: no promptgit write or push deletes a packed
        ref meanwhile. libgit2 packs like `git pack-refs --all`: it renames the new
        packed-refs in whole, then removes only the loose files still naming what it
        packed (skipping any another writer has locked). The writer's claim record
        covers packed-refs.lock, so a kill midway leaves a lock the next write breaks.
        It is only a speed-up: when it cannot, the refs simply stay loose."""
        loose = 0
        for folder in ("refs/heads", "refs/tags"):
            try:
                with os.scandir(os.path.join(self.path, folder)) as entries:
                    loose += sum(1 for e in entries if e.is_file(follow_symlinks=False))
            except OSError:
                continue
        if loose > LOOSE_REFS_BEFORE_PACK:
            # on a repository object of its own: libgit2 remembers which refs it packed
            # from loose files, and a later delete through the same object would try to
            # prune them again, failing on a ref another transaction of ours has locked
            with contextlib.suppress(pygit2.GitError, OSError):
                pygit2.Repository(self.path).compress_references()

    def _maybe_pack(self) -> None:
        """Pack once loose objects pile up (every write is a loose object), off the
        write path: see `pack_in_background`."""
        probe = os.path.join(self.path, "objects", "17")
        try:
            loose = len(os.listdir(probe)) * 256
        except FileNotFoundError:
            return
        if loose >= LOOSE_OBJECTS_BEFORE_PACK:
            pack_in_background(self.path)


_packing: dict[str, float] = {}  # repository -> when this process last started a repack
PACK_EVERY = 5.0  # seconds: one start per repository while a repack may still run


def pack_in_background(path: str) -> None:
    """Start `git repack --geometric=2 -d` detached and niced, and return at once: no write
    waits for a repack. Geometric packs (each at least twice the next) keep their
    number logarithmic in the objects, so libgit2 never scans dozens of packs.
    `flock -n` on `promptgit/repack.lock` runs at most one per repository; the
    kernel lets go of it when its holder dies, so a kill leaves nothing stuck, and
    git's own repack is safe for concurrent readers and writers."""
    now = time.monotonic()
    if now - _packing.get(path, -PACK_EVERY) < PACK_EVERY:
        return
    _packing[path] = now
    repack = "git -c repack.writeBitmaps=false repack -d -q --geometric=2 && git prune-packed -q"
    lock = os.path.join(path, "promptgit", "repack.lock")
    command = f"flock -n {shlex.quote(lock)} sh -c {shlex.quote(repack)}" if _has_flock() else repack
    # sh exits at once, leaving the repack to run on in its own session, at a lower
    # priority: on a busy machine the writes it follows keep the processor first
    subprocess.run(
        ["sh", "-c", f"cd {shlex.quote(path)} || exit; (nice -n 10 {command}) >/dev/null 2>&1 &"],
        check=False,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


@functools.cache
def _has_flock() -> bool:
    return shutil.which("flock") is not None


def _write_object(odb: Any, kind: Any, raw: bytes) -> Any:
    """Write one loose object. A repack running beside us (`pack_in_background`, or
    git's own) prunes loose objects and removes the fan-out folders it empties, and
    libgit2, unlike git, does not try again when `objects/37/` vanishes between its
    mkdir and its rename. Writing an object is idempotent, so try again here."""
    for attempt in range(WRITE_ATTEMPTS):
        try:
            return odb.write(kind, raw)
        except OSError as e:
            if attempt == WRITE_ATTEMPTS - 1 or "No such file or directory" not in str(e):
                raise
            time.sleep(0.001 * (attempt + 1))
    raise AssertionError("unreachable")


WRITE_ATTEMPTS = 10


def _free(txns: Sequence[Any]) -> None:
    """Free ref transactions without committing them (a committed one just goes)."""
    for txn in txns:
        txn.__exit__(RuntimeError, None, None)


def _first_line(message: str) -> str:
    return message.split("\n", 1)[0]


def _short(sha: str | None) -> str:
    return "absent" if sha is None else sha[:10]


def git_identity() -> tuple[str | None, str | None]:
    """The author's name and email as git itself resolves them: $GIT_AUTHOR_NAME and
    $GIT_AUTHOR_EMAIL, then author.* and user.* from git's own config resolution
    (system, $GIT_CONFIG_GLOBAL or ~/.gitconfig, $XDG_CONFIG_HOME/git/config,
    includes, `git -c`), then $EMAIL. None where nothing names one.

    It asks the git binary rather than reading files, so it agrees with `git commit`.
    Outside any repository (GIT_DIR=/dev/null): a store is not a working tree, and the
    current directory's repository config is not the user's identity."""
    name = os.environ.get("GIT_AUTHOR_NAME") or None
    email = os.environ.get("GIT_AUTHOR_EMAIL") or None
    if name and email:
        return name, email
    try:
        out = subprocess.run(
            ["git", "config", "-z", "--get-regexp", r"^(author|user)\.(name|email)$"],
            capture_output=True,
            env={**os.environ, "GIT_DIR": os.devnull},
            check=False,
        ).stdout.decode("utf-8", "replace")
    except OSError:  # no git binary: only the environment can say
        out = ""
    found: dict[str, str] = {}
    for entry in out.split("\0"):
        key, _, value = entry.partition("\n")
        if value:
            found[key] = value  # the last one wins, as in git
    name = name or found.get("author.name") or found.get("user.name")
    email = email or found.get("author.email") or found.get("user.email") or os.environ.get("EMAIL") or None
    return name, email
