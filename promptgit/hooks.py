"""Server-side git hooks: every push obeys the same policy as the CLI.

Each prompt repository gets three shims (the files in the top-level `hooks/`
folder, with the absolute path of this Python) that run `python -m
promptgit.hooks HOOK`:

- pre-receive: `policy.check` on the whole push, with the pushed objects seen
  through the quarantine (RepositoryOpenFlag.FROM_ENV). It never writes a ref;
  it records the refs it read, for the next hook.
- reference-transaction (prepared): runs with the refs being updated locked,
  and refuses if any other ref pre-receive read has changed since (pre-receive
  cannot lock what it reads). It is sh and awk only: no Python start-up.
- post-receive: the stages serving a pushed draft follow it, a new draft gets
  its `create` deployment, and a half-landed release is finished, through the
  same library code as `promptgit edit`. Safe to run twice or two at once.

The pusher is REMOTE_USER (set by `promptgit serve`); their role is
PROMPTGIT_ROLE (default admin: whoever can push over a file path or SSH can
write the repository's files anyway).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Actor

HOOKS = ("pre-receive", "post-receive", "reference-transaction")
ZERO = "0" * 40
STATE_DIR = "promptgit"  # inside the repository: what pre-receive read, per push
STALE_SECONDS = 3600

_SHIMS = {
    "pre-receive": """\
#!/bin/sh
# promptgit: every pushed ref is checked by the same policy as the CLI.
exec {python} -m promptgit.hooks pre-receive "$PPID"
""",
    "reference-transaction": """\
#!/bin/sh
# promptgit: with the refs being updated locked, take the repository's write lock
# (as the library does) and refuse if any other ref pre-receive read has changed
# since: pre-receive cannot lock what it reads. The lock is let go once the refs
# have landed. Plain sh and awk: Python here would double what hooks add to a push.
lock=promptgit/write.lock
state="promptgit/push-$PPID"
case "$1" in
  prepared) ;;
  committed|aborted) [ "$(cat "$lock" 2>/dev/null)" = "$PPID" ] && rm -f "$lock"; exit 0 ;;
  *) exit 0 ;;
esac
[ -f "$state.refs" ] || exit 0  # not a push that pre-receive checked
updates=$(printf '%s\\n' "$(cat)" | grep -c .)
if [ -f "$state.atomic" ] && [ "$updates" -lt "$(grep -c . "$state.pushed")" ]; then
  echo "promptgit: these refs depend on each other: push them together with 'git push --atomic'" >&2
  exit 1
fi
tries=0
until (set -C; echo "$PPID" > "$lock") 2>/dev/null; do
  holder=$(cat "$lock" 2>/dev/null)
  if [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null; then rm -f "$lock"; continue; fi
  tries=$((tries + 1))
  [ "$tries" -gt 200 ] && {{ echo "promptgit: $lock is held by another update; push again" >&2; exit 1; }}
  sleep 0.01
done
changed=$(git for-each-ref --format='%(objectname) %(refname)' | awk '
  FILENAME == ARGV[1] {{ pushed[$0] = 1; next }}  # the pushed refs: git checks their old values
  FILENAME == ARGV[2] {{ if (!($2 in pushed)) seen[$2] = $1; next }}
  !($2 in pushed) {{ if (seen[$2] != $1) print $2; delete seen[$2] }}
  END {{ for (ref in seen) print ref }}' "$state.pushed" "$state.refs" -)
[ -z "$changed" ] && exit 0
rm -f "$lock"
for ref in $changed; do echo "promptgit: $ref changed while this push was being checked" >&2; done
echo "promptgit: push rejected: another update landed first; fetch and push again" >&2
exit 1
""",
    "post-receive": """\
#!/bin/sh
# promptgit: stages serving a pushed draft follow it, as after 'promptgit edit'.
# Python starts only for a new draft, a draft that dev or tst serves, a tag or prod.
input=$(cat)
served=$(git for-each-ref --format='%(contents:trailers:key=Promptgit-Version,valueonly)' \\
  refs/heads/dev refs/heads/tst)
printf '%s\\n' "$input" | while read -r old new ref; do
  case "$ref" in
    refs/tags/v*|refs/heads/prod) echo run ;;
    refs/heads/v*)
      case "$old $(echo "$served" | grep -x "${{ref#refs/heads/}}")" in
        0000000000000000000000000000000000000000*|*" v"*) echo run ;;
      esac ;;
  esac
done | grep -q run || {{ rm -f "promptgit/push-$PPID".*; exit 0; }}
printf '%s\\n' "$input" | exec {python} -m promptgit.hooks post-receive "$PPID"
""",
}


def shim(hook: str, python: str) -> str:
    """The text of a hook shim that runs `python` (already shell-quoted)."""
    return _SHIMS[hook].format(python=python)


def _quote(path: str) -> str:
    return "'" + path.replace("'", "'\\''") + "'"


def install(repo: str | os.PathLike[str], python: str | None = None) -> None:
    """(Re)install the shims into a bare repository, with this Python's absolute path."""
    hooks = Path(repo) / "hooks"
    hooks.mkdir(exist_ok=True)
    exe = _quote(os.path.abspath(python or sys.executable))
    for hook in HOOKS:
        path = hooks / hook
        tmp = path.with_suffix(".tmp")
        tmp.write_text(shim(hook, exe))
        tmp.chmod(0o755)
        tmp.replace(path)
    for sample in hooks.glob("*.sample"):
        sample.unlink()


# --- running inside git ------------------------------------------------------


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
        if (parent / "promptgit.yaml").is_file():
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
    role = os.environ.get("PROMPTGIT_ROLE", "admin")
    gates = config.load(root).require_tests
    seen = repo.refs()  # before the check: a write landing during it must show as a change
    found = policy.check(repo, updates, role, name, require_tests=gates)
    if found:
        _say([f"{v.ref}: {v.message}" for v in found])
        _say(["push rejected: nothing was changed"])
        return 1
    linked = len(updates) > 1 and any(
        u.new is None or names.classify_ref(u.ref)[0] in ("stage", "tag") for u in updates
    )
    _record(_state(git_dir, push), seen, [u.ref for u in updates], atomic=linked)
    return 0


def _record(state: Path, refs: dict[str, str], pushed: list[str], atomic: bool = False) -> None:
    """Keep what pre-receive read, in `git for-each-ref` order and format, for the
    reference-transaction shim to compare against with the refs locked. `atomic`:
    the pushed refs depend on each other, so they must land in one transaction."""
    state.parent.mkdir(exist_ok=True)
    for old in state.parent.glob("push-*"):  # left by pushes refused after pre-receive
        if not _running(old.name.split("-", 1)[1].split(".", 1)[0]) or (
            old.stat().st_mtime < time.time() - STALE_SECONDS
        ):
            old.unlink(missing_ok=True)
    state.with_suffix(".atomic").unlink(missing_ok=True)
    if atomic:
        state.with_suffix(".atomic").write_text("")
    state.with_suffix(".pushed").write_text("".join(f"{ref}\n" for ref in pushed))
    state.with_suffix(".refs").write_text("".join(f"{refs[r]} {r}\n" for r in sorted(refs)))


def _running(pid: str) -> bool:
    """Whether the receive-pack a state file belongs to still runs."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def post_receive(lines: Iterable[str], git_dir: str, push: str) -> int:
    from .errors import PromptgitError
    from .model import Actor
    from .names import Version
    from .store import Store

    for leftover in _state(git_dir, push).parent.glob(f"push-{int(push)}.*"):
        leftover.unlink(missing_ok=True)
    root, name = _store_and_name(git_dir)
    store = Store(root)
    pushed = _updates(lines)
    actor = _pusher([new for _old, new, _ref in pushed if new != ZERO])
    try:
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


def _pusher(tips: Sequence[str]) -> Actor:
    """Who pushed: REMOTE_USER from the server, else the pushed tip's committer."""
    from .errors import InvalidInput
    from .model import Actor

    role = os.environ.get("PROMPTGIT_ROLE", "admin")
    user = os.environ.get("REMOTE_USER")
    if user:
        return Actor(user, os.environ.get("PROMPTGIT_EMAIL") or f"{user}@promptgit", role)
    if tips:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%cn%x00%ce", tips[-1]], capture_output=True, text=True
        ).stdout.strip()
        name, _, email = out.partition("\0")
        try:
            return Actor(name, email, role)
        except InvalidInput:
            pass
    return Actor("git-push", "git-push@localhost", role)


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
