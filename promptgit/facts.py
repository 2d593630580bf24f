"""The derived-facts index: answers that never change for a given commit sha, kept
so reads need not walk history again. Never the source of truth.

`<store>/.promptgit/cache/facts.sqlite` holds

- per version tip (a revision sha): its creation commit and author, its name and
  description, and the tip's own author and summary, so listing 1,000 versions is
  one query instead of 10,000 commit reads;
- per stage log (a repository's dev, tst or prod), the versions its deployments
  have served up to a given deployment commit; a read extends it from the stage's
  current tip back to the remembered one;
- per deployment commit, the version it deployed: with the stage tips read from
  the ref files, a listing of 10,000 prompts opens no repository;
- per prompt.yaml (by the hash of its bytes), what it parses into, so a read of
  content the index has seen loads no YAML parser;
- per prompt, the version each stage serves, with the stamp of the ref files the
  stage tips were read from (`ref_files.refs_stamp`), so a listing stats two files a
  prompt instead of reading its refs; a stamp is only recorded once its files are
  a second old, so a change cannot hide inside a timestamp's granularity;
- per read command and its arguments (`show`, `versions`, `list`), the text it
  printed, with a digest of everything it was read from (answers.py): while that
  reads the same, so does the answer, printed without loading libgit2.

Every key is a commit sha (or a log whose remembered tip is checked by walking
back to it), so a fact can only be missing, never stale: reads stay exactly as
fresh as the refs they start from. Nothing ever waits on it: a busy index is
skipped (the read walks git instead), and a write's own reads use it the same. A missing,
corrupt or foreign file (another format or promptgit version) is set aside and
rebuilt by the next reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

PATH = ".promptgit/cache/facts.sqlite"
# What the rows mean. A promptgit that stores other facts, or the same ones
# differently, names another format, and its index is rebuilt, not misread.
FORMAT = "promptgit-facts-6"
ANSWERS = 1000  # printed answers kept (the latest per query; the oldest written go first)
ANSWER_BYTES = 32 << 20  # and at most this many characters of them in all
RECALLED = 20_000  # parsed facts one process keeps (each a few hundred bytes)
CHUNK = 500  # shas per query (SQLite's variable limit is higher; this keeps queries small)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions (tip TEXT PRIMARY KEY, fact TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS served (log TEXT PRIMARY KEY, tip TEXT NOT NULL, versions TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deployed (sha TEXT PRIMARY KEY, version TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contents (sha TEXT PRIMARY KEY, parsed TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stage_versions (
    name TEXT PRIMARY KEY, stamp TEXT NOT NULL, versions TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    query TEXT PRIMARY KEY, state TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL,
    answer TEXT NOT NULL
);
"""


class Facts:
    """One store's index; safe from many threads (a connection each) and processes."""

    def __init__(self, store: str | os.PathLike[str]) -> None:
        self.path = Path(store) / PATH
        self._local = threading.local()
        # This process's own memory in front of the file, keyed the same way (so never
        # stale): what a sha's facts were parsed into, for the next read that asks.
        self.recalled: dict[str, Any] = {}

    def recall(self, key: str) -> Any:
        return self.recalled.get(key)

    def remember(self, key: str, value: Any) -> None:
        if len(self.recalled) >= RECALLED:
            self.recalled.clear()  # rare; the file still has them
        self.recalled[key] = value

    # --- version tips ---------------------------------------------------------------

    def versions(self, tips: Collection[str]) -> dict[str, dict[str, Any]]:
        """The remembered facts of these version tips (the unknown ones are absent)."""
        found: dict[str, dict[str, Any]] = {}
        for tip, fact in self._many("SELECT tip, fact FROM versions WHERE tip IN", tips):
            try:
                found[tip] = json.loads(fact)
            except ValueError:
                continue
        return found

    def add_versions(self, facts: Mapping[str, Mapping[str, Any]]) -> None:
        self._write(
            "INSERT OR REPLACE INTO versions (tip, fact) VALUES (?, ?)",
            [(tip, json.dumps(fact, separators=(",", ":"))) for tip, fact in facts.items()],
        )

    # --- deployments -------------------------------------------------------------------

    def deployed(self, shas: Collection[str]) -> dict[str, str]:
        """The version each of these deployment commits deployed (unknown ones absent)."""
        return dict(self._many("SELECT sha, version FROM deployed WHERE sha IN", shas))

    def add_deployed(self, versions: Mapping[str, str]) -> None:
        self._write("INSERT OR REPLACE INTO deployed (sha, version) VALUES (?, ?)", list(versions.items()))

    # --- stage logs ------------------------------------------------------------------

    def served(self, log: str) -> tuple[str, set[str]] | None:
        """(tip, versions served up to it) remembered for a stage log, if any."""
        rows = self._query("SELECT tip, versions FROM served WHERE log = ?", [log])
        for tip, versions in rows:
            try:
                return tip, set(json.loads(versions))
            except ValueError:
                return None
        return None

    def add_served(self, log: str, tip: str, versions: Collection[str]) -> None:
        self._write(
            "INSERT OR REPLACE INTO served (log, tip, versions) VALUES (?, ?, ?)",
            [(log, tip, json.dumps(sorted(versions)))],
        )

    # --- parsed files ----------------------------------------------------------------

    def content(self, sha: str) -> Any:
        """What the file whose bytes hash to `sha` parsed into, or None if unknown."""
        for (parsed,) in self._query("SELECT parsed FROM contents WHERE sha = ?", [sha]):
            try:
                return json.loads(parsed)
            except ValueError:
                return None
        return None

    def add_content(self, sha: str, parsed: Any) -> None:
        """Remember `parsed` for `sha`, unless JSON cannot hold it exactly (a YAML date,
        a number-keyed mapping, NaN): then every read parses the file."""
        try:
            text = json.dumps(parsed, separators=(",", ":"))
        except (TypeError, ValueError):
            return
        if json.loads(text) == parsed:
            self._write("INSERT OR REPLACE INTO contents (sha, parsed) VALUES (?, ?)", [(sha, text)])

    # --- current versions, by the stamp of the ref files they were read from --------

    def stage_versions(self, names: Collection[str] | None) -> dict[str, tuple[str, list[str | None]]]:
        """{prompt: (stamp, [version or None, ...])} remembered for these prompts (None:
        all), in the order they were added in. The caller checks what they hold."""
        rows = (
            self._query("SELECT name, stamp, versions FROM stage_versions", [])
            if names is None
            else self._many("SELECT name, stamp, versions FROM stage_versions WHERE name IN", names)
        )
        return {
            name: (stamp, [None if v == "-" else v for v in str(versions).split(" ")])
            for name, stamp, versions in rows
        }

    def add_stage_versions(self, rows: Mapping[str, tuple[str, Sequence[str | None]]]) -> None:
        self._write(
            "INSERT OR REPLACE INTO stage_versions (name, stamp, versions) VALUES (?, ?, ?)",
            [(name, stamp, " ".join(v or "-" for v in versions)) for name, (stamp, versions) in rows.items()],
        )

    # --- printed answers, by the state they were read from ---------------------------

    def usable(self) -> bool:
        """Whether the index can be read and written here now (else reads walk git)."""
        return self._db() is not None

    def answer(self, query: str, state: str) -> str | None:
        """The text remembered for `query` at `state` (answers.py), or None; None too
        when it is not the text that was written (the file is written without syncs,
        so a machine's crash may leave a page half written)."""
        rows = self._query("SELECT digest, answer FROM answers WHERE query = ? AND state = ?", [query, state])
        for digest, text in rows:
            if isinstance(text, str) and _digest(text) == digest:
                return text
        return None

    def add_answer(self, query: str, state: str, text: str) -> None:
        """Remember `text` as `query`'s answer at `state`, in place of any other state's;
        only the latest written are kept, at most ANSWERS of them and ANSWER_BYTES in all."""
        self._write(
            "INSERT OR REPLACE INTO answers (query, state, digest, size, answer) VALUES (?, ?, ?, ?, ?)",
            [(query, state, _digest(text), len(text), text)],
            then=(
                "DELETE FROM answers WHERE rowid IN (SELECT rowid FROM (SELECT rowid,"
                " count(*) OVER newest AS n, sum(size) OVER newest AS total FROM answers"
                " WINDOW newest AS (ORDER BY rowid DESC)) WHERE n > ? OR total > ?)",
                [(ANSWERS, ANSWER_BYTES)],
            ),
        )

    # --- the file ----------------------------------------------------------------------

    def _many(self, select: str, keys: Collection[str]) -> list[tuple[Any, ...]]:
        keys = list(keys)
        rows: list[tuple[Any, ...]] = []
        for i in range(0, len(keys), CHUNK):
            part = keys[i : i + CHUNK]
            rows += self._query(f"{select} ({','.join('?' * len(part))})", part)
        return rows

    def _query(self, sql: str, args: list[str]) -> list[tuple[Any, ...]]:
        import sqlite3

        db = self._db()
        if db is None:
            return []
        try:
            return list(db.execute(sql, args))
        except sqlite3.OperationalError:  # busy, or the file went away: walk git instead
            return []
        except sqlite3.DatabaseError:
            self._set_aside()
            return []

    def _write(
        self, sql: str, rows: list[tuple[Any, ...]], then: tuple[str, list[tuple[Any, ...]]] | None = None
    ) -> None:
        """`sql` for each of `rows`, then `then`'s statement for each of its rows, in one
        transaction."""
        import sqlite3

        db = self._db()
        if db is None or not rows:
            return
        try:
            with db:
                db.executemany(sql, rows)
                if then is not None:
                    db.executemany(*then)
        except sqlite3.OperationalError:  # busy (another writer): this read's facts wait
            pass
        except sqlite3.DatabaseError:
            self._set_aside()

    def _db(self) -> Any:
        """This thread's connection, opened (and created, or rebuilt) on first use;
        None when the index cannot be used here (then every read walks git)."""
        db = getattr(self._local, "db", None)
        if db is not None and self._local.pid == os.getpid():
            return db
        import sqlite3

        for _attempt in range(2):  # a connection from before a fork is not ours to use
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                guard = self._guard()
                if guard is None:
                    return None  # another process is setting the index aside: walk for now
                with guard:
                    db = self._connect()
                self._local.db, self._local.pid = db, os.getpid()
                return db
            except sqlite3.OperationalError:
                return None  # busy or unwritable: no index for now
            except (sqlite3.DatabaseError, OSError):
                self._set_aside()
        return None

    def _connect(self) -> Any:
        """Open the file, creating or checking its tables (under `_guard`)."""
        import sqlite3

        db = sqlite3.connect(self.path, timeout=0, isolation_level=None)  # never wait: walk
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")  # a cache: losing its tail costs a walk
            db.executescript(SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if row is None:
                db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('format', ?)", [FORMAT])
            elif row[0] != FORMAT:
                raise sqlite3.DatabaseError(f"index format {row[0]!r}, not {FORMAT!r}")
        except BaseException:
            db.close()
            raise
        return db

    def _guard(self) -> Any:
        """An exclusive hold on `facts.sqlite.lock` while the file is created or set
        aside, so no process deletes the WAL of a database another just made; None when
        another holds it (never wait: walk git instead). The kernel lets go of it when
        its holder dies."""
        import fcntl

        try:
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None

        @contextlib.contextmanager
        def held() -> Iterator[None]:
            try:
                yield
            finally:
                os.close(fd)  # lets go of the lock

        return held()

    def _set_aside(self) -> None:
        """A corrupt or foreign index: drop it (its WAL too); the next use rebuilds."""
        db = getattr(self._local, "db", None)
        if db is not None and self._local.pid == os.getpid():
            db.close()
        self._local.db = None
        guard = self._guard()
        if guard is None:
            return  # another process is doing it (or creating a new one): leave it to it
        with guard:
            for suffix in ("-wal", "-shm", ""):  # its WAL first: never a WAL left for a new file
                with contextlib.suppress(OSError):
                    os.unlink(f"{self.path}{suffix}")


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()
