"""The server-side hooks at work: every push obeys the same policy as the CLI.

Run by the shims that hooks.py installs, as `python -m promptgit.receive HOOK`:

- pre-receive: `policy.check` on the whole push, with the pushed objects seen
  through the quarantine (RepositoryOpenFlag.FROM_ENV). It never writes a ref;
  it records the refs it read, for the next hook.
- reference-transaction (prepared, a shell shim): runs with the refs being
  updated locked, and refuses if any other ref pre-receive read has changed
  since (pre-receive cannot lock what it reads).
- post-receive: the stages serving a pushed draft follow it, a new draft gets
  its `create` deployment, and a half-landed release is finished, through the
  same library code as `promptgit edit`. Safe to run twice or two at once.

The pusher is REMOTE_USER (set by `promptgit serve`); their role is
PROMPTGIT_ROLE (default admin: whoever can push over a file path or SSH can
write the repository's files anyway).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import locks
from .hooks import HOOKS, RULED
from .names import CONFIG_FILE, REVIEW

if TYPE_CHECKING:
    from .model import Actor

ZERO = "0" * 40
STATE_DIR = "promptgit"  # inside the repository: what pre-receive read, per push
STALE_SECONDS = 3600


def _updates(lines: Iterable[str]) -> list[tuple[str, str, str]]:
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3:
            out.append((parts[0], parts[1], parts[2]))
    return out


def _state(git_dir: str, push: str) -> Path:
    """Where pre-receive leaves what it read (push-PID.refs, push-PID.pushed);
    `push` is receive-pack's pid, the $PPID of every shim."""
    return Path(git_dir) / STATE_DIR / f"push-{int(push)}"


def _store_and_name(git_dir: str) -> tuple[Path, str]:
    """The store holding this repository, and the prompt's name in it."""
    repo = Path(git_dir).resolve()
    for parent in repo.parents:
        if (parent / CONFIG_FILE).is_file():
            rel = repo.relative_to(parent).as_posix()
            return parent, rel.removesuffix(".git")
    return repo.parent, repo.name.removesuffix(".git")


def _say(lines: Sequence[str]) -> None:
    for line in lines:
        print(f"promptgit: {line}", file=sys.stderr)


def pre_receive(lines: Iterable[str], git_dir: str, push: str) -> int:
    from . import config, names, policy
    from ._git import RefUpdate, Repo

    pushed = _updates(lines)
    updates = [
        RefUpdate(ref, None if old == ZERO else old, None if new == ZERO else new) for old, new, ref in pushed
    ]
    repo = Repo(git_dir, from_env=True)
    root, name = _store_and_name(git_dir)
    if name.split("/", 1)[0] == names.ARCHIVE:  # pushed by path, or a push the archive overtook
        prompt = name.split("/", 1)[-1]
        _say([f"prompt '{prompt}' is archived: restore it with 'promptgit restore {prompt}' first"])
        _say(["push rejected: nothing was changed"])
        return 1
    role = os.environ.get("PROMPTGIT_ROLE", "admin")
    settings = config.load(root)
    seen = repo.refs()  # before the check: a write landing during it must show as a change
    found = policy.check(
        repo,
        updates,
        role,
        name,
        require_tests=settings.require_tests,
        max_drafts=settings.max_drafts,
        require_approvals=settings.require_approvals,
    )
    if found:
        _say([f"{v.ref}: {v.message}" for v in found])
        _say(["push rejected: nothing was changed"])
        return 1
    forced = [
        u.ref
        for u in updates
        if names.classify_ref(u.ref)[0] == "review"
        and u.old is not None
        and u.new is not None
        and repo.exists(u.old)
        and not repo.is_ancestor(u.old, u.new)
    ]
    if forced and repo.config("receive.denyNonFastForwards") == "true":
        # a repository made before review branches: git itself would refuse, saying less
        _say(
            [
                f"{ref}: this repository predates review branches, so git refuses to force-push "
                f"them (receive.denyNonFastForwards): on the server, run 'promptgit hooks install "
                f"{name}' once (or 'promptgit doctor --repair'); promptgit's own check still refuses "
                "every other non-fast-forward"
                for ref in forced
            ]
            + ["push rejected: nothing was changed"]
        )
        return 1
    linked = len(updates) > 1 and any(
        u.new is None or names.classify_ref(u.ref)[0] in ("stage", "tag") for u in updates
    )
    if linked and _atomic(int(push)) is False:
        # refused here, where the pusher sees why and nothing lands; when it cannot be
        # told (an SSH client), the reference-transaction hook still refuses, less kindly
        _say(["these refs depend on each other: push them together with 'git push --atomic'"])
        _say(["push rejected: nothing was changed"])
        return 1
    for ref in [*(u.ref for u in updates), "packed-refs"]:
        # a lock a writer killed midway left would make git refuse this push: break it
        # (only when every writer that may hold it is gone), before this push claims them
        locks.break_stale(Path(git_dir), ref)
    creates_review = any(u.old is None and u.ref.startswith(REVIEW) for u in updates)
    _record(_state(git_dir, push), seen, [u.ref for u in updates], atomic=linked, reviews=creates_review)
    moving = locks.fenced(Path(git_dir))  # after the record, as a library write claims first
    if moving is not None:
        for leftover in _state(git_dir, push).parent.glob(f"push-{int(push)}.*"):
            leftover.unlink(missing_ok=True)
        _say([moving, "push rejected: nothing was changed"])
        return 1
    return 0


def _atomic(receive_pack: int) -> bool | None:
    """Whether the client pushes with --atomic: from `promptgit serve`, which read the
    request's capabilities, or for a push over a file path from the `git push` that
    started receive-pack; None when it cannot be told."""
    told = os.environ.get("PROMPTGIT_PUSH_ATOMIC")
    if told in ("0", "1"):
        return told == "1"
    pid = receive_pack
    for _ in range(4):
        pid = _parent(pid)
        if pid <= 1:
            return None
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            return None
        if Path(argv[0]).name != "git" or "push" not in argv:
            continue
        options = argv[argv.index("push") + 1 :]
        flags = [o for o in options if o in ("--atomic", "--no-atomic")]
        if flags:
            return flags[-1] == "--atomic"  # the last one wins, as for git
        return False  # git has no setting that makes a push atomic: only the flag does
    return None


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _record(
    state: Path, refs: dict[str, str], pushed: list[str], atomic: bool = False, reviews: bool = False
) -> None:
    """Keep what pre-receive read, in `git for-each-ref` order and format, for the
    reference-transaction shim to compare against with the refs locked. `atomic`:
    the pushed refs depend on each other, so they must land in one transaction.
    `reviews`: the push creates a review branch, so it depends on how many others
    there are (limits.MAX_REVIEWS)."""
    state.parent.mkdir(exist_ok=True)
    for old in state.parent.glob("push-*"):  # left by pushes refused after pre-receive
        if not locks.running(old.name.split("-", 1)[1].split(".", 1)[0]) or (
            old.stat().st_mtime < time.time() - STALE_SECONDS
        ):
            old.unlink(missing_ok=True)
    for marker, wanted in ((".atomic", atomic), (".reviews", reviews)):
        state.with_suffix(marker).unlink(missing_ok=True)
        if wanted:  # read by the reference-transaction shim
            state.with_suffix(marker).write_text("")
    state.with_suffix(".pushed").write_text("".join(f"{ref}\n" for ref in pushed))
    # only what the rules read: a push logged meanwhile in promptgit's own records
    # (the audit log), or another review branch pushed meanwhile (unless this push
    # creates one), changes nothing this push depends on
    kept = sorted(r for r in refs if r.startswith(RULED) and (reviews or not r.startswith(REVIEW)))
    state.with_suffix(".refs").write_text("".join(f"{refs[r]} {r}\n" for r in kept))


def post_receive(lines: Iterable[str], git_dir: str, push: str) -> int:
    from ._git import RefUpdate
    from .errors import PromptgitError
    from .model import Actor
    from .names import Version
    from .store import Store

    for leftover in _state(git_dir, push).parent.glob(f"push-{int(push)}.*"):
        leftover.unlink(missing_ok=True)
    root, name = _store_and_name(git_dir)
    store = Store(root)
    pushed = _updates(lines)
    actor = _pusher()
    locks.admit()  # a move that fenced the repository meanwhile waits for this push to finish
    try:
        # first, who really pushed (whatever the pushed commits claim), by the server's clock
        store.record_push(
            name, [RefUpdate(ref, _sha(old), _sha(new)) for old, new, ref in pushed], actor=actor
        )
        for _old, new, ref in pushed:
            v = Version.maybe(ref.removeprefix("refs/heads/")) if ref.startswith("refs/heads/v") else None
            if v is not None and new != ZERO:
                for stage in store.follow(name, v, actor=actor):
                    _say([f"{stage} now serves the tip of {v}"])
        finished = store.finish_releases(name, actor=Actor(actor.name, actor.email, "admin"))
        if finished:
            _say([f"finished the release of {', '.join(finished)}"])
    except PromptgitError as e:
        # The push has landed; say what could not follow, and how to finish it.
        _say([f"the push landed, but: {e}", f"run 'promptgit edit {name}' or push again"])
        return 1
    return 0


def _sha(value: str) -> str | None:
    return None if value == ZERO else value


def _pusher() -> Actor:
    """Who pushed, as authenticated, never as the pushed commits claim: REMOTE_USER
    (the token's name, set by `promptgit serve`, or the web server's user), else the
    system user running receive-pack (an SSH or file-path push)."""
    import socket

    from .errors import InvalidInput
    from .model import Actor

    role = os.environ.get("PROMPTGIT_ROLE", "admin")
    remote = os.environ.get("REMOTE_USER")
    user = remote or _system_user()
    host = "promptgit" if remote else socket.gethostname() or "localhost"
    email = os.environ.get("PROMPTGIT_EMAIL") or f"{user}@{host}"
    try:
        return Actor(user, email, role)
    except InvalidInput:
        return Actor("unknown-pusher", "unknown-pusher@localhost", role)


def _system_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    hook = args[0] if args else ""
    push = args[1] if len(args) > 1 and args[1].isdigit() else str(os.getppid())
    git_dir = os.environ.get("GIT_DIR", ".")
    lines = sys.stdin.read().splitlines()
    try:
        if hook == "pre-receive":
            return pre_receive(lines, git_dir, push)
        if hook == "post-receive":
            return post_receive(lines, git_dir, push)
    except Exception as e:  # a hook must never show a traceback
        outcome = "the push landed" if hook == "post-receive" else "push rejected: nothing was changed"
        _say([f"internal error in {hook}: {type(e).__name__}: {e}", outcome])
        return 1
    _say([f"unknown hook {hook!r}: expected one of {', '.join(HOOKS)}"])
    return 2


if __name__ == "__main__":
    sys.exit(main())
