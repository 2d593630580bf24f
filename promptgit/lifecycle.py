"""A prompt's own life: archive, restore, rename (or move to another collection),
and delete for good.

A prompt is one directory, `<store>/NAME.git`, so each of these is one
rename(2) of it, or nothing:

- archive moves it to `<store>/_archive/NAME.git`, out of every listing (`names()`
  skips folders starting with `_`) and every read (PromptArchived); restore
  moves it back;
- rename moves it to `<store>/NEW.git`; for `rename_redirect_days` the old name
  answers with PromptRenamed, naming the new one (`.promptgit/renames.json`);
- delete-prompt moves an archived one into `.promptgit/trash/` and removes it.

Each holds the store's lifecycle lock (`.promptgit/store.lock`), writes down what
it is about to do (`.promptgit/pending/OP`, so the next one finishes a move a
crash cut short), puts a fence in the repository (locks.FENCE) and waits until
no library write and no push is in it, then renames. A writer that comes later
sees the fence or the repository gone and stops with a clear error; a reader,
or a Store opened before, notices (whereabouts.py) and gets PromptArchived,
PromptRenamed or PromptNotFound, never a half-moved repository.

Each event is an entry in the prompt's own repository, on `refs/promptgit/lifecycle`
(prompt_events.py), so it travels with the repository: `promptgit log NAME
--events`, or `git log refs/promptgit/lifecycle`. A deleted prompt's events are
kept in `.promptgit/deleted.jsonl`.
"""

from __future__ import annotations

import builtins
import json
import os
import random
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import changes, locks, names, policy, prompt_events
from ._git import Repo
from .errors import (
    ConcurrentUpdate,
    Conflict,
    InvalidInput,
    NotFound,
    PromptExists,
    RuleViolation,
)
from .model import Actor, VersionInfo
from .operations import Files, Operations
from .prompt_events import ArchivedPrompt, PromptEvent, last, read_log
from .whereabouts import RENAMES, STATE

LOCK = f"{STATE}/store.lock"
DELETED = f"{STATE}/deleted.jsonl"
PENDING = f"{STATE}/pending"
TRASH = f"{STATE}/trash"
LOCK_WAIT = 30.0  # seconds to wait for another archive, restore, rename or delete
QUIET_WAIT = 10.0  # seconds to wait for the writes and pushes in a prompt to finish


# What each needs, and how a refusal (and the page's tooltip) names it.
class Lifecycle(Operations):
    """The Store methods that move a prompt's repository (see the module)."""

    def create(
        self,
        name: str,
        files: Files,
        message: str,
        *,
        actor: Actor,
        version_name: str | None = None,
        description: str = "",
    ) -> VersionInfo:
        if (self._archived_path(name) / "HEAD").is_file():
            raise Conflict(
                f"prompt '{name}' is archived: restore it ('promptgit restore {name}'), or delete "
                f"it for good ('promptgit delete-prompt {name} --yes') before creating another"
            )
        self._forget(name)  # a new repository, whatever this thread opened under the name
        return super().create(
            name, files, message, actor=actor, version_name=version_name, description=description
        )

    # --- the operations -----------------------------------------------------------------

    def archived(self) -> builtins.list[ArchivedPrompt]:
        """Every archived prompt, with who archived it, when and why."""
        root = self.path / names.ARCHIVE
        return [
            ArchivedPrompt(n, last(Repo(str(root / f"{n}.git")), "archive")) for n in self.archived_names()
        ]

    def archived_names(self) -> builtins.list[str]:
        """Every archived prompt's name (folders only: no repository is opened)."""
        self.check()
        root = self.path / names.ARCHIVE
        return names.store_names(str(root)) if root.is_dir() else []

    def archive(self, name: str, *, actor: Actor, reason: str = "") -> PromptEvent:
        """Move the prompt, whole, into the archive area: out of every listing and read
        (PromptArchived) until `restore`. Needs role releaser."""
        _require(actor, "archive")
        reason = names.reason(reason)
        with self._lifecycle_lock():
            src = self._here(name)
            dest = self._archived_path(name)
            if dest.exists():
                raise Conflict(
                    f"an archived prompt named '{name}' exists already: delete it for good first "
                    f"('promptgit delete-prompt {name} --yes'), or rename this one"
                )
            return self._move(PromptEvent("archive", name, None, actor.person(), reason), src, dest)

    def restore(self, name: str, *, actor: Actor) -> PromptEvent:
        """Bring an archived prompt back, under its name. Needs role releaser."""
        _require(actor, "restore")
        with self._lifecycle_lock():
            src = self._archived(name)
            dest = self.path / f"{name}.git"
            if dest.exists():
                raise Conflict(
                    f"cannot restore '{name}': a prompt named '{name}' exists now; rename that "
                    f"one first ('promptgit rename {name} NEW')"
                )
            return self._move(PromptEvent("restore", name, None, actor.person()), src, dest)

    def rename(self, old: str, new: str, *, actor: Actor) -> PromptEvent:
        """Rename a prompt or move it to another collection (`team/greeting`), with all of
        its history; for `rename_redirect_days` the old name points to the new one.
        Refused if NEW is a prompt, an archived prompt or a reserved name. Needs role admin."""
        _require(actor, "rename")
        names.check_name(new)
        if new == old:
            raise InvalidInput(f"'{old}' is already the prompt's name: give another one")
        with self._lifecycle_lock():
            src = self._here(old)
            dest = self.path / f"{new}.git"
            if dest.exists():
                raise PromptExists(new)
            if self._archived_path(new).exists():
                raise Conflict(
                    f"'{new}' is the name of an archived prompt: pick another name, or delete that "
                    f"one for good first ('promptgit delete-prompt {new} --yes')"
                )
            return self._move(PromptEvent("rename", new, old, actor.person()), src, dest)

    def delete_prompt(self, name: str, *, actor: Actor) -> PromptEvent:
        """Remove an archived prompt and all of its history, for good. A prompt that is
        not archived cannot be deleted. Needs role admin."""
        _require(actor, "delete-prompt")
        with self._lifecycle_lock():
            if (
                not (self._archived_path(name) / "HEAD").is_file()
                and (self._repo_path(name) / "HEAD").is_file()
            ):
                raise RuleViolation(
                    [
                        f"prompt '{name}' is not archived, and only an archived prompt can be "
                        f"deleted: archive it first ('promptgit archive {name}')"
                    ]
                )
            src = self._archived(name)
            return self._move(PromptEvent("delete", name, None, actor.person()), src, None)

    def events(self, name: str) -> builtins.list[PromptEvent]:
        """A prompt's archive, restore, rename and delete events, newest first: from its
        own repository (live or archived), or once deleted from the store's record."""
        path = self._repo_path(name)
        self.check()
        for where in (path, self._archived_path(name)):
            if (where / "HEAD").is_file():
                return read_log(Repo(str(where)))
        gone = [e for record in self._deletions() if record["name"] == name for e in record["events"]]
        if gone:
            return [prompt_events.from_record(e) for e in gone]
        raise self.whereabouts(name)

    # --- moving a repository -------------------------------------------------------

    @contextmanager
    def _lifecycle_lock(self) -> Iterator[None]:
        self.check()
        what = "the store's lifecycle lock (another archive, restore, rename or delete)"
        with locks.held(self.path / LOCK, what, timeout=LOCK_WAIT):
            self._finish_pending()
            yield

    def _here(self, name: str) -> Path:
        path = self._repo_path(name)
        if not (path / "HEAD").is_file():
            raise self.whereabouts(name)
        return path

    def _archived(self, name: str) -> Path:
        path = self._archived_path(name)
        if not (path / "HEAD").is_file():
            known = ", ".join(a.name for a in self.archived()[:10]) or "none"
            raise NotFound(
                f"no archived prompt named '{name}' (archived: {known}): see 'promptgit list --archived'"
            )
        return path

    def _move(self, event: PromptEvent, src: Path, dest: Path | None) -> PromptEvent:
        """Rename `src` to `dest` (None: into the trash) once no write is in it, then
        record `event`.

        The plan is written first (`.promptgit/pending/OP`): a crash at any point
        leaves it for `_finish_pending`, which tells from where the repository is
        whether the rename happened, and finishes or forgets it."""
        op = _op_id()
        dest = dest or self.path / TRASH / f"{op}.git"
        plan = {
            "op": op,
            "event": prompt_events.to_record(event),
            "src": src.relative_to(self.path).as_posix(),
            "dest": dest.relative_to(self.path).as_posix(),
        }
        journal = self.path / PENDING / op
        _write_atomic(journal, f"{locks.me()}\n{json.dumps(plan)}\n")
        renames = self._renames_file()
        try:
            self._write_renames(redirects_after(renames, event))
            self._fence_and_rename(src, dest, _what(event))
        except BaseException:
            self._write_renames(renames)
            journal.unlink(missing_ok=True)
            raise
        _open_up(dest)
        self._record(plan, dest)
        journal.unlink(missing_ok=True)
        changes.touch(self.path)
        self._served.clear()
        self._forget(*(n for n in (event.name, event.previous) if n))
        return event

    def _fence_and_rename(self, src: Path, dest: Path, what: str) -> None:
        """Fence `src`, wait until no write or push is in it, and rename it to `dest`.

        A writer claims (locks.claim) and then looks for the fence; this puts the
        fence and then looks for claims: one of the two sees the other. A writer that
        claimed after the look sees the fence and gives up, but its claim may move
        with the folder before it removes it: `_move` clears such claims at `dest`."""
        fence = src / locks.FENCE
        fence.parent.mkdir(exist_ok=True)
        if fence.exists() and locks.stale(fence):
            fence.unlink(missing_ok=True)
        _write_atomic(fence, f"{locks.me()}\n{what}\n")
        try:
            deadline = time.monotonic() + QUIET_WAIT
            while (busy := _busy(src)) is not None:
                if time.monotonic() > deadline:
                    raise ConcurrentUpdate(
                        f"{busy} in {src.name} kept going for over {QUIET_WAIT:g} s, so nothing "
                        "was moved: retry in a moment"
                    )
                time.sleep(random.uniform(0.005, 0.03))
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists():
                raise Conflict(f"{dest.relative_to(self.path)} appeared meanwhile: nothing was moved")
            try:
                os.rename(src, dest)
            except OSError as e:
                raise Conflict(
                    f"could not move {src.name} to {dest.relative_to(self.path)} ({e.strerror}): "
                    "nothing was moved"
                ) from None
        except BaseException:
            fence.unlink(missing_ok=True)
            raise

    def _record(self, plan: dict[str, Any], dest: Path) -> None:
        """Write down the event of a finished move, by its actor, stamped when it was
        asked for: in the repository's lifecycle log, or for a deletion in the store's
        record (then the deleted repository goes)."""
        event = prompt_events.from_record(plan["event"])
        if event.event == "delete":
            if not any(r.get("op") == plan["op"] for r in self._deletions()):
                before = read_log(Repo(str(dest)))  # whole: the record is written before any removal
                record = {"op": plan["op"], "name": event.name,
                          "events": [prompt_events.to_record(e) for e in [event, *before]]}  # fmt: skip
                _append_line(self.path / DELETED, json.dumps(record))
            shutil.rmtree(dest, ignore_errors=True)
            return
        repo = Repo(str(dest))
        if any(op == plan["op"] for op in prompt_events.operations_in(repo)):
            return  # recorded before a crash cut the rest short
        message = prompt_events.message(event, plan["op"])
        repo.update_refs(
            [], read={}, check=None, who=event.stamp, message=prompt_events.subject(event),
            audit=(names.LIFECYCLE_REF, message),
        )  # fmt: skip

    def _finish_pending(self) -> None:
        """Finish or forget the moves a crash cut short (their owner is gone), and
        empty the trash of deletions nobody is doing."""
        pending = self.path / PENDING
        for journal in sorted(pending.glob("*")) if pending.is_dir() else []:
            if journal.name.startswith(".") or not locks.stale(journal):
                continue
            try:
                plan = json.loads(journal.read_text().splitlines()[1])
                src, dest = self.path / plan["src"], self.path / plan["dest"]
            except (OSError, ValueError, IndexError, KeyError):
                journal.unlink(missing_ok=True)
                continue
            if (src / "HEAD").is_file():  # the rename never happened
                (src / locks.FENCE).unlink(missing_ok=True)
                _sweep((src / locks.FENCE).parent)
                self._write_renames(_forget(self._renames_file(), plan))
            else:  # it did: let writers in, and record it (once), as the plan's actor
                _open_up(dest)
                self._record(plan, dest)
            journal.unlink(missing_ok=True)
        _sweep(self.path / STATE)
        _sweep(pending)
        trash = self.path / TRASH
        planned = {p.name for p in pending.glob("*")} if pending.is_dir() else set()
        for leftover in trash.glob("*") if trash.is_dir() else []:
            if leftover.name.removesuffix(".git") not in planned:
                shutil.rmtree(leftover, ignore_errors=True)

    def _write_renames(self, renames: dict[str, dict[str, Any]]) -> None:
        if renames == self._renames_file():
            return
        path = self.path / RENAMES
        if not renames:
            path.unlink(missing_ok=True)
        else:
            _write_atomic(path, json.dumps(renames, indent=1, sort_keys=True) + "\n")

    def _deletions(self) -> builtins.list[dict[str, Any]]:
        try:
            lines = (self.path / DELETED).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in reversed(lines):  # newest first
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line a crash cut short
            if isinstance(record, dict) and isinstance(record.get("events"), list):
                out.append(record)
        return out


# --- helpers ------------------------------------------------------------------------


def why_not(action: str, role: str) -> str:
    """Why `role` may not archive, restore, rename or delete-prompt ('' when it may)."""
    return policy.refusal(action, role)


def _require(actor: Actor, action: str) -> None:
    policy.require(action, actor.name, actor.role)


def _op_id() -> str:
    return f"{int(time.time())}-{os.getpid()}-{random.getrandbits(32):08x}"


def _write_atomic(path: Path, text: str) -> None:
    """Write `path` whole or not at all: a temporary file, renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{random.getrandbits(32):08x}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _sweep(folder: Path) -> None:
    """Remove the temporary files (`.NAME.PID.RANDOM`) writers that are gone left in `folder`."""
    for tmp in folder.glob(".*.*.*"):
        _name, pid, rand = tmp.name.rsplit(".", 2)
        if pid.isdigit() and len(rand) == 8 and not locks.running(pid):
            tmp.unlink(missing_ok=True)


def _append_line(path: Path, line: str) -> None:
    """Append one line, after ending a line a crash cut short (so it stays one bad line)."""
    with path.open("a+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell():
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write(line.encode("utf-8") + b"\n")


def _open_up(repo: Path) -> None:
    """Let writers into a repository that has just moved: clear the claims of writers
    that saw the fence and gave up (theirs moved with the folder before they could
    remove them, see `_fence_and_rename`), then the fence."""
    for record in (repo / locks.OWNERS).glob("*"):
        if not locks.stale(record):
            record.unlink(missing_ok=True)
    (repo / locks.FENCE).unlink(missing_ok=True)
    _sweep((repo / locks.FENCE).parent)


def _busy(repo: Path) -> str | None:
    """What is writing in `repo` now: a library write (a live claim) or a push."""
    for record in (repo / locks.OWNERS).glob("*"):
        if not locks.stale(record):
            return "a write"
    if locks.receiving(repo) or _receiving_in(repo):
        return "a push"
    return None


def _receiving_in(repo: Path) -> bool:
    """Whether a `git receive-pack` works in `repo` now, from its start to the end of
    its post-receive (its working folder is the repository). Linux's /proc; elsewhere
    the push's own state files (locks.receiving) answer alone."""
    target = os.path.realpath(repo)
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return False
    for pid in pids:
        try:
            if os.readlink(f"/proc/{pid}/cwd") != target:
                continue
            if b"receive-pack" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def _what(event: PromptEvent) -> str:
    if event.event == "rename":
        return f"a rename of '{event.previous}' to '{event.name}'"
    noun = {"archive": "an archive", "restore": "a restore", "delete": "a deletion"}[event.event]
    return f"{noun} of '{event.name}'"


def redirects_after(renames: dict[str, dict[str, Any]], event: PromptEvent) -> dict[str, dict[str, Any]]:
    """The redirects once `event` is done: a rename adds old -> new (and the names that
    pointed to old point to new); a name that is a prompt again points nowhere."""
    out = {k: dict(v) for k, v in renames.items() if k != event.name}
    if event.event == "rename" and event.previous:
        for entry in out.values():
            if entry["to"] == event.previous:
                entry["to"] = event.name
        out[event.previous] = {"to": event.name, "at": event.stamp.time}
    if event.event == "delete":
        out = {k: v for k, v in out.items() if v["to"] != event.name}
    return out


def _forget(renames: dict[str, dict[str, Any]], plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The redirects without the one a rename that never happened wrote."""
    event = plan.get("event", {})
    old, new = event.get("from"), event.get("name")
    if event.get("event") != "rename" or renames.get(old, {}).get("to") != new:
        return renames
    return {k: v for k, v in renames.items() if k != old}
