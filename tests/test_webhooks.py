"""Signed webhooks, for real: `promptgit serve` on 127.0.0.1 posting to a loopback
receiver (http.server in a thread) that checks every signature with the README's
own code. Events made through the library in this process, while the server runs
or while it is stopped; the receiver failing, then taking them; two servers on one
store. Nothing is timed: each wait is for an event, with a generous deadline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import PROMPT, git, prompt_text
from server_helpers import Server

from promptgit import Actor, Store, config, webhook_events
from promptgit._git import Repo
from promptgit.cli import cli
from promptgit.errors import InvalidContent

KEY = "s3cret-signing-key"
README = Path(__file__).resolve().parent.parent / "README.md"
DEADLINE = 60.0


def readme_verifier() -> Callable[[bytes, bytes, str], bool]:
    """`verified` from the README's Webhooks section, run as written."""
    text = README.read_text()
    section = text[text.index("\n### Webhooks\n") :]
    code = re.search(r"^```python\n(.*?)^```$", section, re.S | re.M)
    assert code is not None, "the README's Webhooks section shows the signature check in Python"
    scope: dict[str, Any] = {}
    exec(code.group(1), scope)
    return scope["verified"]  # type: ignore[no-any-return]


@dataclass
class Got:
    headers: dict[str, str]
    body: dict[str, Any]
    verified: bool
    status: int


class Receiver:
    """A webhook receiver on 127.0.0.1: answers each POST with the next of `answers`,
    then `status`; records every request, and whether its signature checks out."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.answers = list(answers or [])
        self.status = 200
        self.got: list[Got] = []
        self.changed = threading.Condition()
        verified = readme_verifier()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verified(KEY.encode(), raw, self.headers.get("X-Promptgit-Signature-256", ""))
                with receiver.changed:
                    status = receiver.answers.pop(0) if receiver.answers else receiver.status
                    receiver.got.append(Got(dict(self.headers), json.loads(raw), ok, status))
                    receiver.changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "4")
                self.end_headers()
                self.wfile.write(b"oops" if status >= 300 else b"fine")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list[dict[str, Any]]:
        """The bodies it took (answered 2xx), in order."""
        return [g.body for g in self.got if g.status < 300]

    def wait(self, done: Callable[[list[dict[str, Any]]], bool], what: str) -> list[dict[str, Any]]:
        with self.changed:
            if not self.changed.wait_for(lambda: done(self.accepted()), DEADLINE):
                raise AssertionError(f"no {what} within {DEADLINE:g} s; got {self.accepted()}")
            return self.accepted()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


FIELDS = {
    "deploy": ("stage", "action", "version"),
    "release": ("version",),
    "deprecate": ("action", "version"),
    "archive": ("action",),
    "rename": ("from", "to"),
}


def kinds(bodies: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """(event, prompt, and what tells it apart) of each body."""
    return [(b["event"], b["prompt"], *(b[k] for k in FIELDS[b["event"]])) for b in bodies]


def has(*wanted: tuple[str, ...]) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda bodies: all(w in kinds(bodies) for w in wanted)


def configure(store: Store, *hooks: dict[str, Any]) -> None:
    lines = ["version: 1", "webhooks:"]
    for hook in hooks:
        lines.append(f"  - url: {hook['url']}")
        lines.append(f"    secret: {hook.get('secret', 'HOOK_KEY')}")
        if "events" in hook:
            lines.append(f"    events: [{', '.join(hook['events'])}]")
    (store.path / "promptgit.yaml").write_text("\n".join(lines) + "\n")


def eventually(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not done():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.05)


def started(store: Store) -> None:
    """Wait until the server has taken its webhook's starting point."""
    eventually(lambda: any("from now on" in e.detail for e in store.webhook_log(None)), "the webhook's start")


def serve(store: Store) -> Server:
    return Server(store.path, {"HOOK_KEY": KEY})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


# --- delivered, signed -------------------------------------------------------------------


def test_every_event_is_delivered_signed_in_order(greeting: Store, actor: Actor, receiver: Receiver) -> None:
    store = greeting  # v1.0 exists before the webhook: its creation is not sent
    configure(store, {"url": receiver.url})
    server = serve(store)
    try:
        started(store)
        store.promote("greeting", "v1.0", actor=actor)
        store.promote("greeting", "v1.0", actor=actor)
        store.new_version("greeting", actor=actor)
        store.edit("greeting", "v1.1", {"prompt.yaml": prompt_text("Hi")}, "warmer", actor=actor)
        store.promote("greeting", "v1.1", actor=actor)
        store.promote("greeting", "v1.1", actor=actor)
        store.rollback("greeting", "v1.0", stage="prod", actor=actor)
        store.deprecate("greeting", "v1.1", "too chatty", actor=actor)
        store.archive("greeting", actor=actor, reason="replaced")
        store.restore("greeting", actor=actor)
        store.rename("greeting", "support/greeting", actor=actor)
        expected = [
            ("deploy", "greeting", "tst", "promote", "v1.0"),
            ("deploy", "greeting", "prod", "promote", "v1.0"),
            ("release", "greeting", "v1.0"),
            ("deploy", "greeting", "dev", "create", "v1.1"),
            ("deploy", "greeting", "dev", "update", "v1.1"),
            ("deploy", "greeting", "tst", "promote", "v1.1"),
            ("deploy", "greeting", "prod", "promote", "v1.1"),
            ("release", "greeting", "v1.1"),
            ("deploy", "greeting", "prod", "rollback", "v1.0"),
            ("deprecate", "greeting", "deprecate", "v1.1"),
            ("archive", "greeting", "archive"),
            ("archive", "greeting", "restore"),
            ("rename", "support/greeting", "greeting", "support/greeting"),
        ]
        bodies = receiver.wait(lambda b: len(b) >= len(expected), "13 events")
    finally:
        server.stop()
    assert kinds(bodies) == expected
    assert all(g.verified for g in receiver.got), "every delivery is signed with the key"
    for got in receiver.got:
        assert got.headers["X-Promptgit-Event"] == got.body["event"]
        assert got.headers["X-Promptgit-Delivery"] == got.body["id"]
        assert got.headers["Content-Type"] == "application/json"
    assert len({b["id"] for b in bodies}) == len(bodies)
    deploy = bodies[0]
    assert deploy["by"] == "Ada Lovelace <ada@example.com>" and deploy["audited"] is True
    assert deploy["deployment"] == deploy["commit"] == store.log("support/greeting", "tst")[-1].deployment
    assert bodies[2]["revision"] == bodies[1]["revision"]  # the release is the prod promotion
    assert bodies[9]["reason"] == "too chatty" and bodies[10]["reason"] == "replaced"


def test_a_webhook_gets_only_the_events_it_lists(greeting: Store, actor: Actor, receiver: Receiver) -> None:
    configure(greeting, {"url": receiver.url, "events": ["release", "rename"]})
    server = serve(greeting)
    try:
        started(greeting)
        greeting.promote("greeting", "v1.0", actor=actor)
        greeting.promote("greeting", "v1.0", actor=actor)
        greeting.rename("greeting", "hello", actor=actor)
        bodies = receiver.wait(has(("rename", "hello", "greeting", "hello")), "the rename")
    finally:
        server.stop()
    assert kinds(bodies) == [("release", "greeting", "v1.0"), ("rename", "hello", "greeting", "hello")]


def test_a_push_is_delivered_as_done_by_the_pusher(
    greeting: Store, actor: Actor, receiver: Receiver, tmp_path: Path
) -> None:
    configure(greeting, {"url": receiver.url, "events": ["deploy"]})
    server = serve(greeting)
    try:
        started(greeting)
        work = tmp_path / "work"
        git(tmp_path, "clone", "-q", str(greeting.path / "greeting.git"), str(work))  # as over SSH
        tip = git(work, "rev-parse", "origin/v1.0").strip()
        message = f"Promote v1.0 to tst\n\nPromptgit-Action: promote\nPromptgit-Version: v1.0\nPromptgit-Revision: {tip}\n"
        forged = subprocess.run(
            ["git", "-C", str(work), "commit-tree", f"{tip}^{{tree}}", "-p", tip, "-m", message],
            capture_output=True, text=True, check=True,
            env={**os.environ, "GIT_AUTHOR_NAME": "Release Manager", "GIT_AUTHOR_EMAIL": "rm@corp.example"},
        ).stdout.strip()  # fmt: skip
        git(work, "push", "-q", "origin", f"{forged}:refs/heads/tst")
        bodies = receiver.wait(has(("deploy", "greeting", "tst", "promote", "v1.0")), "the pushed promotion")
    finally:
        server.stop()
    assert bodies[0]["deployment"] == forged and bodies[0]["audited"] is True
    assert "Release Manager" not in bodies[0]["by"], "the pusher, not what the commit claims"
    assert receiver.got[0].verified


# --- retried, and nothing lost ------------------------------------------------------------


def test_a_failing_receiver_gets_the_event_again_until_it_takes_it(
    greeting: Store, actor: Actor, tmp_path: Path
) -> None:
    receiver = Receiver(answers=[500, 503])
    configure(greeting, {"url": receiver.url})
    server = serve(greeting)
    try:
        started(greeting)
        greeting.promote("greeting", "v1.0", actor=actor)
        receiver.wait(lambda b: len(b) == 1, "the promotion, on the third try")
    finally:
        server.stop()
        receiver.close()
    assert [g.status for g in receiver.got] == [500, 503, 200]
    assert len({g.body["id"] for g in receiver.got}) == 1, "every attempt carries the same delivery id"
    assert all(g.verified for g in receiver.got)

    run = CliRunner()
    table = run.invoke(cli, ["--store", str(greeting.path), "webhooks", "log"], catch_exceptions=False)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["AT", "WEBHOOK", "EVENT", "PROMPT", "TRY", "DELIVERY", "RESULT"]
    assert re.search(r"deploy\s+greeting\s+3\s+\S{8}\s+delivered \(200, ", lines[1]), lines[1]
    assert re.search(r"deploy\s+greeting\s+2\s+\S{8}\s+failed: the receiver answered 503: oops$", lines[2])
    assert re.search(r"deploy\s+greeting\s+1\s+\S{8}\s+failed: the receiver answered 500: oops$", lines[3])
    assert "delivering archive, deploy, deprecate, release, rename events from now on" in lines[4]

    failed = run.invoke(
        cli,
        ["--store", str(greeting.path), "webhooks", "log", "--failures", "--json"],
        catch_exceptions=False,
    )
    entries = json.loads(failed.stdout)
    assert [(e["attempt"], e["status"], e["ok"]) for e in entries] == [(2, 503, False), (1, 500, False)]
    assert entries[0]["delivery"] == receiver.got[0].body["id"] and entries[0]["webhook"] == receiver.url
    assert set(entries[0]) == {
        "at",
        "webhook",
        "ok",
        "event",
        "prompt",
        "delivery",
        "attempt",
        "status",
        "ms",
        "detail",
    }


def test_what_happens_while_no_server_runs_is_delivered_when_one_starts(
    greeting: Store, actor: Actor, receiver: Receiver
) -> None:
    configure(greeting, {"url": receiver.url})
    server = serve(greeting)
    try:
        started(greeting)
        greeting.promote("greeting", "v1.0", actor=actor)
        receiver.wait(has(("deploy", "greeting", "tst", "promote", "v1.0")), "the first promotion")
        receiver.status = 500  # the receiver goes down: the next event is retried ...
        greeting.promote("greeting", "v1.0", actor=actor)
        with receiver.changed:
            assert receiver.changed.wait_for(lambda: receiver.got[-1].status == 500, DEADLINE)
    finally:
        server.stop()  # ... until the server stops
    # no server runs: a release, a new prompt and a rename happen
    greeting.new_version("greeting", actor=actor)
    greeting.create("fresh", {"prompt.yaml": PROMPT}, "first", actor=actor)
    greeting.rename("greeting", "team/greeting", actor=actor)
    receiver.status = 200
    server = serve(greeting)
    try:
        bodies = receiver.wait(
            has(
                ("deploy", "greeting", "prod", "promote", "v1.0"),
                ("release", "greeting", "v1.0"),
                ("deploy", "greeting", "dev", "create", "v1.1"),
                ("deploy", "fresh", "dev", "create", "v1.0"),
                ("rename", "team/greeting", "greeting", "team/greeting"),
            ),
            "what happened while the server was stopped",
        )
    finally:
        server.stop()
    # the renamed prompt kept its place: nothing delivered before is sent again
    seen = [(b["commit"], b["event"]) for b in bodies]
    assert len(seen) == len(set(seen)) == 6, kinds(bodies)
    assert all(g.verified for g in receiver.got)


def test_with_two_servers_one_delivers_and_the_other_takes_over(
    greeting: Store, actor: Actor, receiver: Receiver
) -> None:
    configure(greeting, {"url": receiver.url})
    servers = [serve(greeting), serve(greeting)]
    try:
        started(greeting)
        greeting.promote("greeting", "v1.0", actor=actor)
        receiver.wait(lambda b: len(b) == 1, "the promotion")
        lock = (
            greeting.path / ".promptgit" / "webhooks" / f"{config.Webhook(receiver.url, 'HOOK_KEY').key}.lock"
        )
        holder = next(s for s in servers if lock.read_text().strip() == str(s.proc.pid))
        holder.stop()
        greeting.promote("greeting", "v1.0", actor=actor)
        bodies = receiver.wait(has(("release", "greeting", "v1.0")), "the release, from the other server")
    finally:
        for server in servers:
            if server.proc.poll() is None:
                server.stop()
    assert kinds(bodies) == [
        ("deploy", "greeting", "tst", "promote", "v1.0"),
        ("deploy", "greeting", "prod", "promote", "v1.0"),
        ("release", "greeting", "v1.0"),
    ]
    notices = [e.detail for e in greeting.webhook_log(None) if e.event is None]
    assert any("takes over if that one stops" in n for n in notices)
    assert any("took over" in n for n in notices)


# --- promptgit.yaml and the environment --------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "line", "problem"),
    [
        (
            "  - url: ftp://example.com/x\n    secret: K",
            3,
            "webhooks[0]: url 'ftp://example.com/x' must start with http:// or https://",
        ),
        ("  - url: https://\n    secret: K", 3, "webhooks[0]: url 'https://' names no host"),
        (
            "  - url: https://ci:s3cret@hooks.example/x\n    secret: K",
            3,
            "webhooks[0]: url 'https://ci:s3cret@hooks.example/x' carries a user or password: remove it",
        ),
        (
            "  - url: http://h:99999/\n    secret: K",
            3,
            "webhooks[0]: url 'http://h:99999/' is not a valid URL",
        ),
        ("  - secret: K", 3, "webhooks[0]: url: give the http:// or https:// URL to POST each event to"),
        (
            "  - url: http://h/\n    secret: K\n    events: [deploy, deploys]",
            3,
            "webhooks[0]: unknown event 'deploys': use deploy, release, deprecate, archive, rename",
        ),
        ("  - url: http://h/\n    secret: K\n    events: []", 3, "webhooks[0]: events must be a list"),
        ("  - url: http://h/", 3, "webhooks[0]: secret: give the NAME of the environment variable"),
        (
            "  - url: http://h/\n    secret: 'hunter2!'",
            3,
            "webhooks[0]: secret must be the NAME of the environment variable",
        ),
        (
            "  - url: http://h/\n    secret: K\n    retries: 3",
            3,
            "webhooks[0]: unknown key 'retries': allowed keys are url, secret, events",
        ),
        (
            "  - url: http://h/\n    secret: K\n  - url: http://h/\n    secret: L",
            5,
            "webhooks[1]: url 'http://h/' is listed twice",
        ),
        ("  url: http://h/", 2, "webhooks: must be a list of webhooks"),
    ],
)
def test_a_bad_webhook_is_an_error_naming_its_line(entry: str, line: int, problem: str) -> None:
    with pytest.raises(InvalidContent) as e:
        config.parse(f"version: 1\nwebhooks:\n{entry}\n")
    assert e.value.line == line
    assert str(e.value).startswith(f"promptgit.yaml:{line}: {problem}"), str(e.value)


def test_a_webhook_sends_every_event_unless_it_lists_some() -> None:
    parsed = config.parse("webhooks:\n  - url: https://h.example/x?a=1\n    secret: HOOK_KEY\n")
    assert parsed.webhooks == (
        config.Webhook("https://h.example/x?a=1", "HOOK_KEY", frozenset(config.WEBHOOK_EVENTS)),
    )
    assert config.parse("version: 1\n").webhooks == ()


def test_serve_refuses_to_start_while_a_webhook_secret_is_unset(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(store, {"url": "http://127.0.0.1:9/hook", "secret": "HOOK_KEY_UNSET"})
    monkeypatch.delenv("HOOK_KEY_UNSET", raising=False)
    result = CliRunner().invoke(cli, ["--store", str(store.path), "serve", "--port", "0"])
    assert result.exit_code == 1, result.output
    assert (
        "webhook http://127.0.0.1:9/hook: the environment variable HOOK_KEY_UNSET (its secret in "
        "promptgit.yaml) is not set or empty: export the signing key in it before 'promptgit serve', "
        "or remove the webhook from promptgit.yaml"
    ) in result.stderr
    assert "Traceback" not in result.output
    assert not (store.path / ".promptgit" / "webhooks").exists(), "nothing started"


def test_webhooks_log_says_when_there_is_nothing(store: Store) -> None:
    run = CliRunner()
    out = run.invoke(cli, ["--store", str(store.path), "webhooks", "log"])
    assert out.stdout == "no webhooks: list them in promptgit.yaml under webhooks: (see the README)\n"
    configure(store, {"url": "http://127.0.0.1:9/hook"})
    out = run.invoke(cli, ["--store", str(store.path), "webhooks", "log"])
    assert out.stdout == "no webhook deliveries yet: 'promptgit serve' delivers them while it runs\n"
    assert json.loads(run.invoke(cli, ["--store", str(store.path), "webhooks", "log", "--json"]).stdout) == []


# --- the cursor: what is new, read out of git -------------------------------------------


def found(store: Store) -> dict[str, Repo]:
    out = {n: Repo(str(store.path / "_archive" / f"{n}.git")) for n in store.archived_names()}
    out.update({n: Repo(str(store.path / f"{n}.git")) for n in store.names()})
    return out


def cursor_now(store: Store) -> dict[str, webhook_events.Position]:
    return {n: webhook_events.tips(r) for n, r in found(store).items()}


def new_events(store: Store, known: dict[str, webhook_events.Position]) -> list[tuple[str, ...]]:
    scan = webhook_events.scan(found(store), known)
    return [
        (e.kind, e.prompt, e.fields.get("action", ""), e.fields.get("version", ""))
        for r in scan.records
        for e in r.events
    ]


def test_a_renamed_or_archived_prompt_keeps_its_place_and_a_new_one_is_read_whole(
    greeting: Store, actor: Actor
) -> None:
    greeting.promote("greeting", "v1.0", actor=actor)
    known = cursor_now(greeting)
    assert new_events(greeting, known) == []
    greeting.rename("greeting", "team/greeting", actor=actor)
    greeting.create("greeting", {"prompt.yaml": PROMPT}, "a new one under the old name", actor=actor)
    greeting.archive("team/greeting", actor=actor)
    assert new_events(greeting, known) == [
        ("deploy", "greeting", "create", "v1.0"),  # the new prompt: all of it
        ("rename", "team/greeting", "", ""),  # the renamed one: only what is new
        ("archive", "team/greeting", "archive", ""),
    ]


def test_a_long_backlog_is_read_in_batches(greeting: Store, actor: Actor) -> None:
    known = cursor_now(greeting)
    for n in range(webhook_events.BATCH + 3):
        greeting.edit(
            "greeting", "v1.0", {"prompt.yaml": prompt_text(f"Hello {n}")}, f"edit {n}", actor=actor
        )
    scan = webhook_events.scan(found(greeting), known)
    assert scan.more and len(scan.records) == webhook_events.BATCH
    rest = webhook_events.scan(found(greeting), scan.positions)
    assert not rest.more and len(rest.records) == 3
    assert [r.commit for r in scan.records + rest.records] == [
        d.deployment for d in reversed(greeting.log("greeting", "dev"))
    ][1:]


# --- the server's threads, in this process ---------------------------------------------


@pytest.fixture
def deliverer(greeting: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Any]]:
    """Start the server's webhook threads on `greeting` (as `promptgit serve` does)."""
    from promptgit.server.webhooks import Deliverer

    monkeypatch.setenv("HOOK_KEY", KEY)
    running: list[Deliverer] = []

    def start() -> Deliverer:
        d = Deliverer(greeting.path)
        d.start()
        running.append(d)
        return d

    yield start
    for d in running:
        d.stop()


def test_a_damaged_cursor_is_put_aside_and_said(
    greeting: Store, actor: Actor, receiver: Receiver, deliverer: Callable[[], Any]
) -> None:
    configure(greeting, {"url": receiver.url})
    folder = greeting.path / ".promptgit" / "webhooks"
    folder.mkdir(parents=True)
    cursor = folder / f"{config.Webhook(receiver.url, 'HOOK_KEY').key}.json"
    cursor.write_text('{"prompts": {"greeting": {"logs": {"refs/heads/dev": "not a sha"}}}}')
    deliverer()
    started(greeting)
    assert (folder / f"{cursor.name}.corrupt").read_text().startswith('{"prompts"')
    assert greeting.webhook_log(1)[0].detail == (
        f"the cursor {cursor.name} was damaged (kept as {cursor.name}.corrupt): delivering archive, "
        "deploy, deprecate, release, rename events from now on; earlier ones may be missed"
    )
    greeting.promote("greeting", "v1.0", actor=actor)
    receiver.wait(has(("deploy", "greeting", "tst", "promote", "v1.0")), "the promotion")
    delivered = receiver.accepted()[0]["commit"]
    tst = lambda: json.loads(cursor.read_text())["prompts"]["greeting"]["logs"]["refs/heads/tst"]  # noqa: E731
    eventually(lambda: tst() == delivered, "the cursor moving past the delivered promotion")


def test_a_webhook_removed_from_the_config_is_forgotten(
    greeting: Store, receiver: Receiver, deliverer: Callable[[], Any]
) -> None:
    configure(greeting, {"url": receiver.url})
    first = deliverer()
    started(greeting)
    cursor = greeting.path / ".promptgit" / "webhooks" / f"{config.Webhook(receiver.url, 'K').key}.json"
    assert cursor.is_file()
    (greeting.path / "promptgit.yaml").write_text("version: 1\n")
    worker = first.workers.get(receiver.url)
    if worker is not None:
        worker.thread.join(DEADLINE)  # it stops once the config no longer lists it
        assert not worker.thread.is_alive()
    first.stop()
    deliverer()
    assert not cursor.exists(), "added back later, it starts afresh"
