"""`promptgit mirror URL DIR`: a read-only copy of a server's store, kept in sync by git.

    promptgit mirror https://prompts.example.com /srv/prompts    # until Ctrl-C
    PROMPTGIT_TOKEN=... promptgit mirror URL DIR --once           # one sync, then exit

DIR is a store whose promptgit.yaml says `mirror_of: URL`, so every write to it
is refused (ReadOnlyStore names URL), and `promptgit serve DIR` is a read replica.
Each prompt is a bare repository fetched whole from `URL/git/NAME.git` by the real
git (`+refs/*:refs/*`, so drafts, tags, test-run notes and promptgit's own logs come
too, and every answer, ETags included, is the primary's), archived prompts from
`URL/git/_archive/NAME.git`.

What to fetch comes from the primary's watch endpoint (`GET /watch?mirror=true`):
one long poll answers as soon as any repository's refs change, with a digest of
each one's refs; a repository is fetched only when its digest differs from the
local copy's. So nothing polls, a restart fetches only what changed meanwhile,
and a mirror of a mirror works the same way.

Each change lands whole: a fetch is one ref transaction (`git fetch --atomic
--prune`), a new prompt is fetched beside the store and renamed into place, a
prompt gone from the primary is renamed out of the store before it is removed,
an archive or restore on the primary is a rename here, and a rename's old name
points to the new one as on the primary (rebuilt from the lifecycle logs). After
each change the store's beacon rings, so a server on DIR tells its watchers.

The token is never written down: it comes from --token or $PROMPTGIT_TOKEN each
run, and reaches git in its environment (an `http.extraHeader` through
GIT_CONFIG_* variables), never on a command line or in a repository's config.
"""

from __future__ import annotations

import base64
import builtins
import fcntl
import http.client
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import changes, config, names, prompt_events
from ._git import Repo
from .errors import Conflict, InvalidInput, InvalidName, PrimaryError, PromptgitError
from .lifecycle import TRASH, redirects_after
from .store import Store, refs_digest

WATCH_TIMEOUT = 30.0  # seconds one long poll may wait on the primary
MAX_ANSWER = 64 * 1024 * 1024  # bytes of one watch answer: ~250,000 prompts
FETCH_TIMEOUT = 600  # seconds one git fetch may take in all
WORKERS = 4  # prompts fetched at once
BACKOFF = (1.0, 60.0)  # seconds to wait after a failure: first, and at most
INCOMING = ".mirror-"  # a new prompt being fetched: <store>/.mirror-XXXX/repo.git, then renamed
LOCK = ".promptgit/mirror.lock"  # held by the one `promptgit mirror` syncing the store
ARCHIVED = f"{names.ARCHIVE}/"

State = Mapping[str, Any]


@dataclass
class Synced:
    """What one sync changed in the mirror."""

    fetched: builtins.list[str] = field(default_factory=list)  # new or changed repositories
    moved: builtins.list[tuple[str, str]] = field(default_factory=list)  # archived or restored
    removed: builtins.list[str] = field(default_factory=list)  # gone from the primary
    kept: builtins.list[str] = field(default_factory=list)  # not removed: see `sync`
    total: int = 0  # repositories the primary has

    @property
    def changed(self) -> bool:
        return bool(self.fetched or self.moved or self.removed)

    def __str__(self) -> str:
        parts = [f"fetched {', '.join(self.fetched)}"] if self.fetched else []
        parts += [f"moved {a} to {b}" for a, b in self.moved]
        parts += [f"removed {', '.join(self.removed)}"] if self.removed else []
        return "; ".join(parts) or "nothing changed"


class Mirror:
    """One mirror: the primary's URL, the local store, and how to talk to both."""

    def __init__(self, url: str, path: str | os.PathLike[str], token: str | None = None) -> None:
        problem = config.check_url(url)
        if problem:
            raise InvalidInput(f"{problem} (the primary's URL, e.g. https://prompts.example.com)")
        self.url = url.rstrip("/")
        self.path = Path(path)
        self.store = Store(self.path)
        self.token = token or None
        self._redirected: frozenset[str] | None = None  # the names redirects were last built for
        self._synced: dict[str, str] = {}  # repository -> the refs digest last fetched for it

    # --- the store ---------------------------------------------------------------------

    def check(self) -> None:
        """Raise Conflict unless DIR is new, empty, or a mirror of this primary already."""
        if (self.path / config.FILE).is_file():
            primary = self.store.primary
            if primary is None:
                raise Conflict(
                    f"{self.path} is a store of its own, not a mirror: mirror into a new or empty "
                    "directory (a mirror's promptgit.yaml names its primary with mirror_of)"
                )
            if primary.rstrip("/") != self.url:
                raise Conflict(
                    f"{self.path} is a mirror of {primary}, not {self.url}: mirror {primary} "
                    "there, or mirror into another directory"
                )
        elif self.path.exists() and (not self.path.is_dir() or any(map(_not_ours, self.path.iterdir()))):
            raise Conflict(
                f"{self.path} exists and is not a promptgit store: mirror into a new or empty directory"
            )

    def create(self) -> None:
        """Make DIR a mirror store of the primary (once the primary has answered)."""
        cfg = self.path / config.FILE
        if cfg.is_file():
            return
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{config.FILE}.{os.getpid()}"
        tmp.write_text(
            "# promptgit store configuration (never served; secrets by env var name only)\n"
            "version: 1\n"
            "# A read-only mirror, kept in sync by 'promptgit mirror'. To make it writable (fail\n"
            "# over), stop the mirror, remove this line, and run 'promptgit hooks install'.\n"
            f"mirror_of: {self.url}\n",
            encoding="utf-8",
        )
        os.replace(tmp, cfg)
        for leftover in self.path.glob(f".{config.FILE}.*"):  # of a `mirror` killed right here
            leftover.unlink(missing_ok=True)

    @contextmanager
    def _only_one(self) -> Iterator[None]:
        """One `promptgit mirror` per store at a time (a lock the kernel drops with us)."""
        self.create()
        lock = self.path / LOCK
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Conflict(f"another 'promptgit mirror' is syncing {self.path}: stop it first") from None
            yield

    def local(self) -> builtins.list[str]:
        """The repositories this mirror holds, named as the watch names them."""
        return self.store.replicas()

    # --- talking to the primary --------------------------------------------------------

    def watch(self, since: str | None = None, timeout: float = WATCH_TIMEOUT) -> dict[str, State]:
        """The primary's repositories with their ref digests; with `since`, once they
        differ from that answer (or after `timeout` seconds). Includes "" -> cursor."""
        query = {"mirror": "true", "timeout": f"{timeout:g}"}
        if since:
            query["since"] = since
        data = self._get(f"/watch?{urllib.parse.urlencode(query)}", timeout + 30)
        prompts = data.get("prompts") if isinstance(data, dict) else None
        cursor = data.get("cursor") if isinstance(data, dict) else None
        if not isinstance(prompts, dict) or not isinstance(cursor, str):
            raise PrimaryError(f"{self.url} answered /watch with something else than a promptgit watch")
        out: dict[str, State] = {}
        unknown: list[str] = []
        for name, state in prompts.items():
            if state is None:  # moving, or unreadable there just now: neither fetched nor removed
                unknown.append(name)
                continue
            if not isinstance(state, dict) or not isinstance(state.get("refs"), str):
                raise PrimaryError(
                    f"{self.url} does not serve mirrors (its watch answers no refs digest): "
                    "upgrade promptgit there"
                )
            try:
                names.check_name(name.removeprefix(ARCHIVED))
            except InvalidName as e:
                raise PrimaryError(f"{self.url} named a prompt no store can hold: {e}") from None
            out[name] = state
        out[""] = {"cursor": cursor, "unknown": unknown}
        return out

    def _get(self, path: str, timeout: float) -> Any:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with _NO_REDIRECTS.open(request, timeout=timeout) as response:
                body = response.read(MAX_ANSWER + 1)
        except urllib.error.HTTPError as e:
            if 300 <= e.code < 400:  # the token goes to the primary only, never where it points
                raise PrimaryError(
                    f"the primary at {self.url} redirects to {e.headers.get('Location', '?')[:200]}: "
                    "give the URL it redirects to (a mirror follows no redirect)"
                ) from None
            raise self._refused(e.code, _error_message(e)) from None
        except urllib.error.URLError as e:
            raise PrimaryError(
                f"cannot reach the primary at {self.url} ({e.reason}): check the URL, "
                "and that 'promptgit serve' runs there"
            ) from None
        except (OSError, http.client.HTTPException) as e:
            raise PrimaryError(
                f"the primary at {self.url} stopped answering ({e or type(e).__name__})"
            ) from None
        if len(body) > MAX_ANSWER:
            raise PrimaryError(f"{self.url} answered /watch with over {MAX_ANSWER // 2**20} MiB")
        try:
            return json.loads(body)
        except ValueError:
            raise PrimaryError(f"{self.url} answered /watch with something else than JSON") from None

    def _refused(self, status: int, message: str) -> PrimaryError:
        if status in (401, 403):
            given = "the token given" if self.token else "no token"
            return PrimaryError(
                f"the primary at {self.url} refused {given} ({status}: {message}): give a token "
                "with role reader with --token or $PROMPTGIT_TOKEN"
            )
        if status == 404:
            return PrimaryError(f"{self.url} is no promptgit server with a watch endpoint (404 on /watch)")
        return PrimaryError(f"the primary at {self.url} answered {status}: {message}")

    def _git_env(self) -> dict[str, str]:
        """git's environment: the token as a header in GIT_CONFIG_* (never argv or a
        file), no prompt for a password, and a stall is an error."""
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
        settings = [
            ("maintenance.auto", "false"),  # run after the fetch instead: see _fetch_quietly
            ("credential.helper", ""),  # no helper stores or offers a password
            ("http.followRedirects", "false"),  # the header goes to the primary only
            ("http.lowSpeedLimit", "1"),
            ("http.lowSpeedTime", "60"),
        ]
        if self.token:
            basic = base64.b64encode(f"mirror:{self.token}".encode()).decode()
            settings.append(("http.extraHeader", f"Authorization: Basic {basic}"))
        first = int(env.get("GIT_CONFIG_COUNT", "0") or 0)  # after the caller's own, if any
        env["GIT_CONFIG_COUNT"] = str(first + len(settings))
        for i, (key, value) in enumerate(settings, start=first):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
        return env

    def _git(self, repo: Path, *args: str) -> None:
        try:
            out = subprocess.run(
                ["git", "-C", str(repo), *args],
                env=self._git_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=FETCH_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise PrimaryError(f"git {args[0]} from {self.url} took over {FETCH_TIMEOUT} s") from None
        if out.returncode != 0:
            lines = [ln.strip() for ln in out.stderr.splitlines() if ln.strip()]
            said = "; ".join(lines[-3:]) or f"exit status {out.returncode}"
            if "401" in said or "could not read Username" in said or "Authentication failed" in said:
                raise self._refused(401, said)
            raise PrimaryError(f"git {args[0]} from {self.url} failed: {said}")

    # --- one sync --------------------------------------------------------------------------

    def sync(self, answer: Mapping[str, State]) -> Synced:
        """Make the mirror hold what `answer` (a `watch`) says the primary holds.

        A repository whose refs differ is fetched; one the primary moved to or from its
        archive is moved here first; one the primary no longer has is removed, unless
        the answer names nothing at all (a primary in trouble, not one emptied: nothing
        is removed then, and `kept` says so). One the primary could not read just now
        (null in its answer) is left as it is."""
        remote = {n: s for n, s in answer.items() if n}
        unknown = set(answer.get("", {}).get("unknown") or ())
        held = set(self.local())
        done = Synced(total=len(remote))
        todo = [n for n in sorted(remote) if n not in held or self._differs(n, remote[n]["refs"])]
        for name in todo:
            if name not in held:
                other = name.removeprefix(ARCHIVED) if name.startswith(ARCHIVED) else ARCHIVED + name
                if other in held and other not in remote:  # archived or restored there
                    self._move(other, name)
                    self._synced.pop(other, None)
                    held = (held - {other}) | {name}
                    done.moved.append((other, name))
        errors: list[PromptgitError] = []
        with ThreadPoolExecutor(min(WORKERS, max(1, len(todo)))) as pool:
            results = pool.map(lambda n: self._fetch_quietly(n, held), todo)
            for name, error in zip(todo, results, strict=True):
                if error is None:
                    done.fetched.append(name)
                    self._synced[name] = self._digest(name) or ""
                else:
                    self._synced.pop(name, None)
                    errors.append(error)
        if errors:  # nothing is removed before everything new is here (a rename's new name)
            raise errors[0]
        gone = sorted(held - set(remote) - unknown)
        if not remote and gone:
            done.kept = gone
            return done
        if self._redirected != frozenset(remote):
            self._redirect()
            self._redirected = frozenset(remote)
        for name in gone:
            self._remove(name)
            self._synced.pop(name, None)
            done.removed.append(name)
        return done

    def _differs(self, name: str, digest: str) -> bool:
        """Whether the local copy's refs differ from `digest`: from memory once this
        process has fetched it (one look per answer, whatever the store's size)."""
        known = self._synced.get(name)
        if known is None:
            known = self._digest(name)
        return known != digest

    def _digest(self, name: str) -> str | None:
        """The local copy's refs digest, read now (None: no copy)."""
        path = self._path(name)
        try:
            return refs_digest(Repo(str(path)).refs()) if (path / "HEAD").is_file() else None
        except PromptgitError:  # not a repository git can open: fetch it again
            return None

    def _fetch_quietly(self, name: str, held: set[str]) -> PromptgitError | None:
        try:
            if name in held:
                self._fetch(self._path(name), name)
            else:
                self._clone(name)
        except PromptgitError as e:
            return e
        changes.touch(self.path)  # a server on this store tells its watchers now
        # git's housekeeping (packing loose objects), kept out of the fetch so that it
        # runs after the beacon, not before; a failure here loses nothing
        with suppress(PrimaryError):
            self._git(self._path(name), "maintenance", "run", "--auto", "--quiet")
        return None

    def _path(self, name: str) -> Path:
        return self.path / f"{name}.git"

    def _fetch(self, repo: Path, name: str) -> None:
        """One ref transaction: every ref as the primary has it, the ones it dropped gone."""
        url = f"{self.url}/git/{name}.git"
        self._git(
            repo, "fetch", "--quiet", "--atomic", "--prune", "--no-write-fetch-head", url, "+refs/*:refs/*"
        )

    def _clone(self, name: str) -> None:
        """A prompt new here: fetched whole beside the store, then renamed into place."""
        tmp = Path(tempfile.mkdtemp(prefix=INCOMING, dir=self.path))
        try:
            repo = tmp / "repo.git"
            Repo.init(str(repo), "refs/heads/dev", MIRROR_CONFIG)
            _refuse_pushes(repo, self.url)
            self._fetch(repo, name)
            dest = self._path(name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(repo, dest)
            except OSError as e:
                raise PrimaryError(f"could not put {name} in place at {dest}: {e.strerror}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _move(self, old: str, new: str) -> None:
        dest = self._path(new)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self._path(old), dest)
        changes.touch(self.path)

    def _remove(self, name: str) -> None:
        """Out of the store in one rename, then deleted (a reader never sees half of it)."""
        trash = self.path / TRASH / f"mirror-{os.getpid()}-{random.getrandbits(32):08x}.git"
        trash.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self._path(name), trash)
        changes.touch(self.path)
        shutil.rmtree(trash, ignore_errors=True)

    def _redirect(self) -> None:
        """Point renamed prompts' old names to their new ones, as the primary does: its
        redirects follow from the rename, archive and restore events in the lifecycle
        logs, which came with the repositories."""
        events = []
        for name in self.local():
            log = prompt_events.read_log(Repo(str(self._path(name))))
            events += [(e.stamp.time, -i, e) for i, e in enumerate(log)]  # the log is newest first
        renames: dict[str, dict[str, Any]] = {}
        for _time, _order, event in sorted(events, key=lambda t: t[:2]):
            renames = redirects_after(renames, event)
        self.store._write_renames(renames)

    def sweep(self) -> None:
        """Remove what a mirror killed midway left: new prompts half fetched, the trash,
        and the lock files of a `git fetch` killed with it. Run holding `mirror.lock`:
        the mirror is then the one writer of every repository here, so any lock in
        them is a dead fetch's, and would make every later fetch fail."""
        for leftover in self.path.glob(INCOMING + "*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in (self.path / TRASH).glob("mirror-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for name in self.local():
            repo = self._path(name)
            for lock in [*repo.glob("*.lock"), *(repo / "refs").rglob("*.lock")]:
                lock.unlink(missing_ok=True)

    # --- running ---------------------------------------------------------------------------

    def once(self) -> Synced:
        """Sync once with what the primary has now. Nothing is created in DIR unless
        the primary answers."""
        self.check()
        answer = self.watch()
        with self._only_one():
            self.sweep()
            return self.sync(answer)

    def run(
        self,
        say: Callable[[str], None],
        *,
        sleep: Callable[[float], None] = time.sleep,
        rounds: int | None = None,
    ) -> None:
        """Sync, then follow the primary's changes until interrupted (or for `rounds`
        answers). A failure (the primary away, a refused token, a failed fetch) is said
        once per attempt and retried with backoff; the first answer after it syncs
        everything again. DIR is created once the primary first answers."""
        self.check()
        with ExitStack() as stack:
            locked = False
            cursor: str | None = None
            wait, failing = BACKOFF[0], False
            while rounds is None or rounds > 0:
                rounds = None if rounds is None else rounds - 1
                try:
                    answer = self.watch(cursor)
                    if not locked:
                        stack.enter_context(self._only_one())
                        self.sweep()
                        locked = True
                    if answer[""]["cursor"] != cursor:
                        done = self.sync(answer)
                        if done.changed or cursor is None:
                            say(f"promptgit mirror: {done} ({done.total} from {self.url})")
                        if done.kept:
                            say(
                                f"promptgit mirror: {self.url} lists no prompt at all, so the "
                                f"{len(done.kept)} here are kept until it lists some again"
                            )
                    cursor = answer[""]["cursor"]
                    if failing:
                        say(f"promptgit mirror: in sync with {self.url} again")
                    wait, failing = BACKOFF[0], False
                except (PrimaryError, PromptgitError, OSError) as e:  # a full disk too: say it, retry
                    why = str(e) if isinstance(e, PromptgitError) else f"{e.strerror or e} ({self.path})"
                    say(f"promptgit mirror: {why}; retrying in {wait:g} s")
                    sleep(wait)
                    cursor, failing, wait = None, True, min(wait * 2, BACKOFF[1])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is then an HTTPError, answered above


_NO_REDIRECTS = urllib.request.build_opener(_NoRedirect)


MIRROR_CONFIG = {
    "core.logAllRefUpdates": "always",
    "gc.autoDetach": "false",  # git's own housekeeping after a fetch: in it, not behind it
    "maintenance.autoDetach": "false",
}


def _refuse_pushes(repo: Path, url: str) -> None:
    """A push straight into a mirror's repository (by its path) is refused, naming the primary."""
    quoted = "'" + url.replace("'", "'\\''") + "'"
    hook = repo / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(
        "#!/bin/sh\n"
        "# promptgit: a read-only mirror ('promptgit mirror'); changes are made on its primary.\n"
        f'echo "promptgit: this store is a read-only mirror of "{quoted}": make changes there" >&2\n'
        "exit 1\n"
    )
    hook.chmod(0o755)


def _error_message(e: urllib.error.HTTPError) -> str:
    """The message of a promptgit error answer, else the status's reason."""
    try:
        body = json.loads(e.read(65536))
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError, OSError):
        return str(e.reason)


def _not_ours(entry: Path) -> bool:
    """Whether a file in a mirror's directory is something other than the config file a
    killed `promptgit mirror` was writing (which the next run replaces)."""
    return not entry.name.startswith(f".{config.FILE}.")
