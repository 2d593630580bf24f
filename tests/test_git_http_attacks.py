"""Git over HTTP against hostile requests: every spelling of a path or service
that the guard could read one way and `git http-backend` another, sent byte for
byte over a raw socket (nothing normalizes it on the way), by every role.

The rule under test: authorization is decided on the exact request git acts on.
Anything that is not one of the three smart-HTTP endpoints in its one canonical
spelling is refused (400, 404 or 405) before git runs, whoever asks, and a push
attempt that is refused leaves the repository's files byte for byte as they were.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import BinaryIO

import pytest
from conftest import PROMPT, git, prompt_text, refs, snapshot
from server_helpers import Server

from promptgit import Actor, Store, tokens
from promptgit.server.githttp import Refusal, classify

ROLES = ("reader", "editor", "releaser", "admin")
WHO = ("anonymous", *ROLES)
TIME_LIMIT = 120  # seconds any one test may take, server start-up included
OWNER = Actor("Owner", "owner@example.com")


@pytest.fixture(autouse=True)
def time_limit() -> Iterator[None]:
    """Bound every test: a request the server never answers fails the test, not the run."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise TimeoutError(f"test took over {TIME_LIMIT} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TIME_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Served:
    store: Store
    server: Server
    keys: dict[str, str]
    push: bytes  # a receive-pack request body that would create greeting's v1.1 and a 2 MiB blob
    blob: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("home")
    store = Store.init(tmp_path_factory.mktemp("attacks") / "prompts")
    for name in ("greeting", "team/greeting"):
        store.create(name, {"prompt.yaml": PROMPT}, "first", actor=OWNER)
    keys = {role: tokens.create(store.path, f"{role}-bot", role) for role in ROLES}
    push, blob = push_body(store.path / "greeting.git", tmp_path_factory.mktemp("payload"))
    server = Server(store.path, {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"})
    yield Served(store, server, keys, push, blob)
    server.stop()


def push_body(repo: Path, tmp: Path, branch: str = "v1.1") -> tuple[bytes, str]:
    """A receive-pack request body (commands + pack, as `git push` sends it) that the
    hooks accept: a new draft `branch` with its creation commit, plus a 2 MiB blob.
    If git ever runs it, a ref and objects appear in `repo`."""
    work = tmp / f"payload-{repo.name}"
    git(tmp, "clone", "-q", "--no-hardlinks", str(repo), str(work))
    git(work, "checkout", "-q", "-b", branch, "origin/v1.0")
    git(work, "commit", "-q", "--allow-empty", "-m", f"Create {branch}", "--trailer", f"Promptgit-Created: {branch}",
        "--trailer", "Promptgit-From: v1.0")  # fmt: skip
    commit = git(work, "rev-parse", "HEAD").strip()
    (work / "noise.bin").write_bytes(secrets.token_bytes(2 * 1024 * 1024))
    blob = git(work, "hash-object", "-w", "noise.bin").strip()
    pack = subprocess.run(
        ["git", "-C", str(work), "pack-objects", "--stdout", "-q"],
        input=f"{commit}\n{blob}\n".encode(),
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    line = f"{'0' * 40} {commit} refs/heads/{branch}\0report-status\n".encode()
    return b"%04x" % (len(line) + 4) + line + b"0000" + pack, blob


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def send(
    server: Server, method: str, target: str | bytes, token: str | None = None, body: bytes = b"",
    content_type: str = "",
) -> Answer:  # fmt: skip
    """One request, its request line exactly as given, on a fresh connection.

    A body is offered with `Expect: 100-continue` and sent only if the server asks
    for it, which it does only once something reads it (git): a request refused
    up front is answered without the client having to push 2 MiB into a socket
    the server is about to close.
    """
    target_bytes = target if isinstance(target, bytes) else target.encode("latin-1")
    head = [method.encode() + b" " + target_bytes + b" HTTP/1.1", f"Host: 127.0.0.1:{server.port}".encode()]
    head.append(b"Connection: close")
    if token is not None:
        head.append(b"Authorization: Basic " + base64.b64encode(f"git:{token}".encode()))
    if content_type:
        head.append(f"Content-Type: {content_type}".encode())
    if body:
        head += [f"Content-Length: {len(body)}".encode(), b"Expect: 100-continue"]
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n")
        reader = sock.makefile("rb")
        status, headers = _head(reader)
        if status == 100:
            sock.sendall(body)
            status, headers = _head(reader)
        length = headers.get("content-length")
        if method == "HEAD":
            data = b""
        elif length is not None:
            data = reader.read(int(length))
        else:
            data = reader.read()
        return Answer(status, headers, data)


def _head(reader: BinaryIO) -> tuple[int, dict[str, str]]:
    status_line = reader.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
        key, _, value = line.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


# --- the matrix: every trick, every role ----------------------------------------------

G = "/git/greeting.git"
INFO = f"{G}/info/refs"
RP = f"{G}/git-receive-pack"
UP = f"{G}/git-upload-pack"

# (method, request target, status). The status is the same whoever asks: the
# request is classified before anyone's token is looked at.
ATTACKS = [
    # the reported bug and its relatives: a NUL, or an encoded anything, after the service
    pytest.param("POST", f"{RP}%00", 400, id="receive-pack-nul"),
    pytest.param("POST", f"{RP}%2500", 400, id="receive-pack-double-encoded-nul"),
    pytest.param("POST", f"{UP}%00", 400, id="upload-pack-nul"),
    pytest.param("POST", f"{G}/git-receive-pac%6b", 400, id="receive-pack-encoded-letter"),
    pytest.param("POST", f"{G}/git%2dreceive-pack", 400, id="receive-pack-encoded-dash"),
    pytest.param("POST", f"{RP}%3f", 400, id="receive-pack-encoded-question-mark"),
    pytest.param("POST", f"{RP}%0a", 400, id="receive-pack-newline"),
    pytest.param("POST", f"{RP}%09", 400, id="receive-pack-tab"),
    pytest.param("POST", f"{RP}%7f", 400, id="receive-pack-del"),
    pytest.param("POST", f"{RP}%20", 400, id="receive-pack-space"),
    pytest.param("POST", f"{RP}%c3%a9", 400, id="receive-pack-utf8"),
    pytest.param("POST", f"{RP}%ff", 400, id="receive-pack-invalid-utf8"),
    pytest.param("GET", f"{INFO}%00?service=git-upload-pack", 400, id="info-refs-nul"),
    # traversal, plain and encoded
    pytest.param("GET", f"{G}/../../promptgit.yaml", 400, id="dotdot"),
    pytest.param("GET", f"{G}/%2e%2e/%2e%2e/promptgit.yaml", 400, id="dotdot-encoded"),
    pytest.param("GET", f"{G}/%2E%2E/%2E%2E/promptgit.yaml", 400, id="dotdot-encoded-upper"),
    pytest.param("GET", f"{G}/%252e%252e/%252e%252e/promptgit.yaml", 400, id="dotdot-double-encoded"),
    pytest.param("GET", f"{G}/%c0%ae%c0%ae/%c0%ae%c0%ae/promptgit.yaml", 400, id="dotdot-overlong-utf8"),
    pytest.param("GET", f"{G}/..%2f..%2fpromptgit.yaml", 400, id="dotdot-encoded-slash"),
    pytest.param("GET", f"{G}/..%5c..%5cpromptgit.yaml", 400, id="dotdot-encoded-backslash"),
    pytest.param("GET", "/git/../promptgit.yaml", 400, id="dotdot-store-root"),
    pytest.param("POST", "/git/x/../greeting.git/git-receive-pack", 400, id="dotdot-in-name"),
    pytest.param("POST", "/git/./greeting.git/git-receive-pack", 400, id="dot-in-name"),
    pytest.param("POST", f"{G}/./git-receive-pack", 400, id="dot-before-service"),
    pytest.param("GET", f"{G}/info/../info/refs?service=git-upload-pack", 400, id="dotdot-in-endpoint"),
    # a '/' that is not a '/': the name must be spelled as it is
    pytest.param("POST", "/git/team%2fgreeting.git/git-receive-pack", 400, id="encoded-slash-in-name"),
    pytest.param("POST", "/git/team%2Fgreeting.git/git-receive-pack", 400, id="encoded-slash-upper"),
    pytest.param("POST", "/git/team%252fgreeting.git/git-receive-pack", 400, id="double-encoded-slash"),
    pytest.param(
        "GET", "/git/team%2fgreeting.git/info/refs?service=git-upload-pack", 400, id="encoded-slash-fetch"
    ),
    pytest.param("POST", "/git/gr%65eting.git/git-receive-pack", 400, id="encoded-letter-in-name"),
    pytest.param("POST", "/git/greeting%2egit/git-receive-pack", 400, id="encoded-dot-git"),
    pytest.param("GET", f"{G}/info%2frefs?service=git-upload-pack", 400, id="encoded-slash-in-endpoint"),
    pytest.param("POST", "/%67it/greeting.git/git-receive-pack", 400, id="encoded-prefix"),
    # separators and leftovers
    pytest.param("POST", f"{RP};x=1", 400, id="semicolon-after-service"),
    pytest.param("POST", f"{G};/git-receive-pack", 400, id="semicolon-after-repo"),
    pytest.param("GET", f"{INFO};?service=git-receive-pack", 400, id="semicolon-after-info-refs"),
    pytest.param("POST", f"{RP}/", 400, id="trailing-slash"),
    pytest.param("POST", f"{RP}.", 400, id="trailing-dot"),
    pytest.param("GET", f"{INFO}/?service=git-upload-pack", 400, id="trailing-slash-info-refs"),
    pytest.param("GET", f"{G}/", 400, id="trailing-slash-repo"),
    pytest.param("POST", f"{G}//git-receive-pack", 400, id="double-slash"),
    pytest.param("POST", "/git//greeting.git/git-receive-pack", 400, id="double-slash-before-name"),
    pytest.param("POST", f"{G}\\git-receive-pack", 400, id="backslash"),
    # wrong case
    pytest.param("POST", f"{G}/GIT-RECEIVE-PACK", 400, id="service-upper"),
    pytest.param("POST", f"{G}/Git-Receive-Pack", 400, id="service-mixed-case"),
    pytest.param("GET", f"{G}/INFO/REFS?service=git-receive-pack", 400, id="info-refs-upper"),
    pytest.param("POST", "/git/greeting.GIT/git-receive-pack", 400, id="dot-git-upper"),
    pytest.param("POST", "/git/Greeting.git/git-receive-pack", 400, id="name-upper"),
    pytest.param("GET", f"{INFO}?service=GIT-RECEIVE-PACK", 400, id="query-service-upper"),
    pytest.param("GET", f"{INFO}?Service=git-receive-pack", 400, id="query-key-upper"),
    # the query: exactly one service, spelled as is
    pytest.param("GET", f"{INFO}?service=git-receive-pack%00", 400, id="query-nul"),
    pytest.param("GET", f"{INFO}?service=git-upload-pack%00", 400, id="query-upload-nul"),
    pytest.param("GET", f"{INFO}?service=git%2dreceive-pack", 400, id="query-encoded"),
    pytest.param("GET", f"{INFO}?service=git-upload-pack&service=git-receive-pack", 400, id="query-repeated"),
    pytest.param(
        "GET", f"{INFO}?service=git-receive-pack&service=git-upload-pack", 400, id="query-repeated-2"
    ),
    pytest.param("GET", f"{INFO}?service=git-upload-pack&x=1", 400, id="query-extra-param"),
    pytest.param("GET", f"{INFO}?x=1&service=git-upload-pack", 400, id="query-leading-param"),
    pytest.param("GET", f"{INFO}?service=git-upload-pack&", 400, id="query-trailing-ampersand"),
    pytest.param(
        "GET", f"{INFO}?service=git-upload-pack;service=git-receive-pack", 400, id="query-semicolon"
    ),
    pytest.param("GET", f"{INFO}?service=git-receive-pack%26x", 400, id="query-encoded-ampersand"),
    pytest.param("GET", f"{INFO}?service=", 400, id="query-empty-service"),
    pytest.param("GET", f"{INFO}?service=git-upload-archive", 400, id="query-other-service"),
    pytest.param("GET", f"{INFO}?service=git-upload-pack%20", 400, id="query-trailing-space"),
    pytest.param("GET", INFO, 400, id="info-refs-dumb"),
    pytest.param("POST", f"{RP}?service=git-receive-pack", 400, id="query-on-receive-pack"),
    pytest.param("POST", f"{UP}?x", 400, id="query-on-upload-pack"),
    # dumb HTTP and other files of the repository
    pytest.param("GET", f"{G}/HEAD", 404, id="dumb-head"),
    pytest.param("GET", f"{G}/info/packs", 404, id="dumb-info-packs"),
    pytest.param("GET", f"{G}/objects/info/packs", 404, id="dumb-objects-info-packs"),
    pytest.param("GET", f"{G}/objects/info/alternates", 404, id="dumb-alternates"),
    pytest.param("GET", f"{G}/objects/ab/{'c' * 38}", 404, id="dumb-loose-object"),
    pytest.param("GET", f"{G}/objects/pack/pack-{'a' * 40}.pack", 404, id="dumb-pack"),
    pytest.param("GET", f"{G}/config", 404, id="config"),
    pytest.param("GET", f"{G}/hooks/pre-receive", 404, id="hook"),
    pytest.param("GET", f"{G}/refs/heads/dev", 404, id="ref-file"),
    pytest.param("GET", G, 404, id="repo-only"),
    pytest.param("POST", f"{G}/git-upload-archive", 404, id="upload-archive"),
    pytest.param("GET", "/git/promptgit.yaml", 404, id="store-config"),
    # the method must be the endpoint's
    pytest.param("GET", RP, 405, id="get-receive-pack"),
    pytest.param("GET", UP, 405, id="get-upload-pack"),
    pytest.param("PUT", RP, 405, id="put-receive-pack"),
    pytest.param("PATCH", RP, 405, id="patch-receive-pack"),
    pytest.param("DELETE", RP, 405, id="delete-receive-pack"),
    pytest.param("OPTIONS", RP, 405, id="options-receive-pack"),
    pytest.param("POST", f"{INFO}?service=git-receive-pack", 405, id="post-info-refs"),
    pytest.param("PUT", f"{INFO}?service=git-receive-pack", 405, id="put-info-refs"),
    pytest.param("HEAD", RP, 405, id="head-receive-pack"),  # HEAD is GET without the body
]


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(("method", "target", "status"), ATTACKS)
def test_every_trick_is_refused_before_git_runs(
    served: Served, who: str, method: str, target: str, status: int
) -> None:
    token = served.keys.get(who)
    body = served.push if method.upper() in ("POST", "PUT", "PATCH") else b""
    before = snapshot(served.store.path)
    r = send(served.server, method, target, token, body, "application/x-git-receive-pack-request")
    assert r.status == status, (r.status, r.body)
    if method != "HEAD":
        assert r.headers["content-type"].startswith("text/plain"), r.headers
        assert b"GET /git/NAME.git/info/refs?service=git-upload-pack" in r.body, r.body  # says what is valid
    if status == 405:
        assert r.headers["allow"] in ("GET", "POST")
    assert b"token" not in r.body and b"sha256" not in r.body  # nothing of promptgit.yaml
    assert snapshot(served.store.path) == before  # no ref, no object, no file changed
    assert not (served.store.path / "greeting.git" / "refs" / "heads" / "v1.1").exists()


# Requests that never reach promptgit's git app: the HTTP parser refuses them, or
# they do not start with /git/ and the API answers. Still never a 2xx or 5xx.
OUTSIDE = [
    pytest.param("POST", f"{RP}\x00".encode(), id="raw-nul"),
    pytest.param("POST", f"{RP}\x7f".encode(), id="raw-del"),
    pytest.param("POST", f"{RP}\t".encode(), id="raw-tab"),
    pytest.param("POST", f"{G}/git-receive-pack\xc3\xa9".encode("latin-1"), id="raw-utf8"),
    pytest.param("POST", b"//git/greeting.git/git-receive-pack", id="double-slash-prefix"),
    pytest.param("post", RP.encode(), id="lower-case-method"),
    pytest.param("POST", b"/GIT/greeting.git/git-receive-pack", id="prefix-upper"),
    pytest.param("POST", b"/prompts/../git/greeting.git/git-receive-pack", id="dotdot-from-api"),
    pytest.param("POST", b"/git", id="bare-prefix"),
    pytest.param("POST", b"*", id="asterisk"),
]


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(("method", "target"), OUTSIDE)
def test_requests_git_never_sees_are_refused_too(
    served: Served, who: str, method: str, target: bytes
) -> None:
    before = snapshot(served.store.path)
    r = send(
        served.server,
        method,
        target,
        served.keys.get(who),
        served.push,
        "application/x-git-receive-pack-request",
    )
    assert 400 <= r.status < 500, (r.status, r.body)
    assert snapshot(served.store.path) == before


def test_absolute_form_targets_are_classified_like_origin_form(served: Served) -> None:
    """`POST http://host/...%00` is the same attack: the path inside is what counts."""
    url = f"http://127.0.0.1:{served.server.port}"
    before = snapshot(served.store.path)
    for role in WHO:
        token = served.keys.get(role)
        r = send(
            served.server,
            "POST",
            f"{url}{RP}%00",
            token,
            served.push,
            "application/x-git-receive-pack-request",
        )
        assert r.status == 400, (r.status, r.body)
        r = send(served.server, "GET", f"{url}{G}/../../promptgit.yaml", token)
        assert r.status == 400, (r.status, r.body)
    assert snapshot(served.store.path) == before


# --- what is valid still works, with the right role ------------------------------------


def test_roles_on_the_canonical_endpoints(served: Served) -> None:
    s, keys = served.server, served.keys
    assert send(s, "GET", f"{INFO}?service=git-upload-pack").status == 401
    for role in ROLES:
        r = send(s, "GET", f"{INFO}?service=git-upload-pack", keys[role])
        assert r.status == 200 and r.headers["content-type"] == "application/x-git-upload-pack-advertisement"
    r = send(s, "GET", f"{INFO}?service=git-receive-pack", keys["reader"])
    assert r.status == 403 and b"pushing needs role 'editor'" in r.body
    for role in ("editor", "releaser", "admin"):
        r = send(s, "GET", f"{INFO}?service=git-receive-pack", keys[role])
        assert r.status == 200 and r.headers["content-type"] == "application/x-git-receive-pack-advertisement"
    assert (
        send(s, "GET", "/git/no-such-prompt.git/info/refs?service=git-upload-pack", keys["reader"]).status
        == 404
    )


def test_a_reader_posting_a_real_push_is_refused_and_nothing_lands(served: Served) -> None:
    before = snapshot(served.store.path)
    for who in ("anonymous", "reader"):
        r = send(served.server, "POST", RP, served.keys.get(who), served.push,
                 "application/x-git-receive-pack-request")  # fmt: skip
        assert r.status == (401 if who == "anonymous" else 403), (r.status, r.body)
    assert snapshot(served.store.path) == before


def test_the_attack_payload_would_land_if_git_ran_it(served: Served, tmp_path: Path) -> None:
    """The control for the matrix: the same kind of body, sent by an editor to the
    canonical path, does create the branch and store the 2 MiB blob, so the refusals
    above are refusals of a push that works, not of a malformed one."""
    store = served.store
    store.create("control", {"prompt.yaml": PROMPT}, "first", actor=OWNER)
    repo = store.path / "control.git"
    body, blob = push_body(repo, tmp_path)
    r = send(served.server, "POST", "/git/control.git/git-receive-pack", served.keys["editor"], body,
             "application/x-git-receive-pack-request")  # fmt: skip
    assert r.status == 200 and b"ok refs/heads/v1.1" in r.body, r.body
    assert "refs/heads/v1.1" in refs(repo)
    assert git(repo, "cat-file", "-t", blob).strip() == "blob"


# --- the real git binary ---------------------------------------------------------------


def run_git(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=90)


def test_real_git_clone_and_push_by_an_editor_and_a_reader(served: Served, tmp_path: Path) -> None:
    store = served.store
    store.create("real", {"prompt.yaml": PROMPT}, "first", actor=OWNER)
    repo = store.path / "real.git"

    def url(role: str) -> str:
        return f"http://git:{served.keys[role]}@127.0.0.1:{served.server.port}/git/real.git"

    out = run_git("clone", "-q", url("reader"), "as-reader", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    reader = tmp_path / "as-reader"
    git(reader, "checkout", "-q", "v1.0")
    (reader / "prompt.yaml").write_text(prompt_text("Howdy"))
    git(reader, "commit", "-qam", "by a reader")
    before = snapshot(repo)
    out = run_git("push", "origin", "v1.0", cwd=reader)
    assert out.returncode != 0 and "403" in out.stderr, out.stderr
    assert snapshot(repo) == before

    out = run_git("clone", "-q", url("editor"), "as-editor", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    editor = tmp_path / "as-editor"
    git(editor, "checkout", "-q", "v1.0")
    (editor / "prompt.yaml").write_text(prompt_text("Hi"))
    git(editor, "commit", "-qam", "by an editor")
    out = run_git("push", "origin", "v1.0", cwd=editor)
    assert out.returncode == 0, out.stderr
    assert "dev now serves the tip of v1.0" in out.stderr
    assert store.get("real", stage="dev").source == prompt_text("Hi")
    assert store.log("real", "dev")[0].stamp.by == "editor-bot <editor-bot@promptgit>"


# --- the classifier itself -------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "path_info", "query_string", "role"),
    [
        ("GET", "/git/greeting.git/info/refs", b"service=git-upload-pack", "/greeting.git/info/refs",
         "service=git-upload-pack", "reader"),
        ("GET", "/git/team/greeting.git/info/refs", b"service=git-receive-pack", "/team/greeting.git/info/refs",
         "service=git-receive-pack", "editor"),
        ("POST", "/git/greeting.git/git-upload-pack", b"", "/greeting.git/git-upload-pack", "", "reader"),
        ("POST", "/git/a.b/c-d.git/git-receive-pack", b"", "/a.b/c-d.git/git-receive-pack", "", "editor"),
    ],
)  # fmt: skip
def test_git_is_told_only_what_was_classified(
    method: str, path: str, query: bytes, path_info: str, query_string: str, role: str
) -> None:
    req = classify(method, path.encode(), path, query)
    assert (req.path_info, req.query_string, req.method, req.role) == (path_info, query_string, method, role)


@pytest.mark.parametrize(
    ("raw", "path", "status"),
    [
        (b"/git/greeting.git/git-receive-pack%00", "/git/greeting.git/git-receive-pack\x00", 400),
        (b"/git/team%2fgreeting.git/git-receive-pack", "/git/team/greeting.git/git-receive-pack", 400),
        (None, "/git/greeting.git/git-receive-pack\x00", 400),  # a server that gives no raw_path
        (b"/git/greeting.git/git-receive-pack", "/git/greeting.git/git-upload-pack", 400),  # they disagree
    ],
)
def test_the_raw_and_decoded_paths_must_be_the_same_string(raw: bytes | None, path: str, status: int) -> None:
    with pytest.raises(Refusal) as e:
        classify("POST", raw, path, b"")
    assert e.value.status == status
