"""The name, version and ref grammar of promptgit/names.py, as parametrize tables."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from promptgit.errors import InvalidInput, InvalidName
from promptgit.names import (
    ACTIONS,
    FIRST,
    MAX_NAME,
    NOTES_TESTS_REF,
    STAGES,
    RefSpec,
    Version,
    check_name,
    check_stage,
    classify_ref,
    creation_message,
    deployment_message,
    description_of,
    split_target,
    summary,
    trailers,
)

SHA = "0123456789abcdef0123456789abcdef01234567"

# --- check_name ---------------------------------------------------------------

VALID_NAMES = [
    "greeting",
    "support/greeting",
    "support/billing/refund-request",
    "a",
    "0",
    "9lives",
    "v1.0",
    "a.b_c-d",
    "a..b",  # dots inside a segment are not a path component
    "x.gitx",
    "x.git.bak",
    "x.lockfile",
    "my.git-stuff",
    "dev",  # stage names are fine as prompt names
    "prod/greeting",
    "gits",
    "uis",
    "versions2",
    "support/stagesx",
    "a" * 100,
    "a" * 100 + "/" + "b" * 99,  # exactly MAX_NAME characters
]

INVALID_NAMES = [
    pytest.param("", id="empty"),
    pytest.param(".", id="dot"),
    pytest.param("..", id="dotdot"),
    pytest.param("../etc/passwd", id="escape-up"),
    pytest.param("support/../../x", id="escape-middle"),
    pytest.param("support/./x", id="dot-segment"),
    pytest.param("/etc/passwd", id="absolute"),
    pytest.param("/greeting", id="leading-slash"),
    pytest.param("greeting/", id="trailing-slash"),
    pytest.param("support//greeting", id="empty-segment"),
    pytest.param("greeting.git", id="git-suffix"),
    pytest.param("support.git/greeting", id="git-suffix-collection"),
    pytest.param("a/b.git/c", id="git-suffix-middle"),
    pytest.param(".git", id="dot-git"),
    pytest.param("greeting.lock", id="lock-suffix"),
    pytest.param("support.lock/greeting", id="lock-suffix-collection"),
    pytest.param("versions", id="reserved-versions"),
    pytest.param("stages", id="reserved-stages"),
    pytest.param("git", id="reserved-git"),
    pytest.param("ui", id="reserved-ui"),
    pytest.param("actions", id="reserved-actions"),
    pytest.param("support/versions", id="reserved-last-segment"),
    pytest.param("ui/greeting", id="reserved-first-segment"),
    pytest.param("Greeting", id="upper-case"),
    pytest.param("support/Greeting", id="upper-case-segment"),
    pytest.param("GREETING.GIT", id="upper-case-git"),
    pytest.param(".hidden", id="leading-dot"),
    pytest.param("support/.hidden", id="leading-dot-segment"),
    pytest.param("_private", id="leading-underscore"),
    pytest.param("support/_x", id="leading-underscore-segment"),
    pytest.param("-rf", id="leading-dash"),
    pytest.param("support/-x", id="leading-dash-segment"),
    pytest.param("hello world", id="space"),
    pytest.param(" greeting", id="leading-space"),
    pytest.param("greeting ", id="trailing-space"),
    pytest.param("greeting\n", id="trailing-newline"),
    pytest.param("gree\x00ting", id="nul"),
    pytest.param("greet\\ing", id="backslash"),
    pytest.param("..\\x", id="backslash-escape"),
    pytest.param("greeting@v1.0", id="at-sign"),
    pytest.param("café", id="unicode-latin"),
    pytest.param("приветствие", id="unicode-cyrillic"),
    pytest.param("\uff47reeting", id="unicode-fullwidth"),
    pytest.param("\u0663", id="unicode-digit"),
    pytest.param("greeting\u200b", id="zero-width-space"),
    pytest.param("a" * 101, id="segment-too-long"),
    pytest.param("a" * 100 + "/" + "b" * 100, id="name-too-long"),
    pytest.param("/".join(["ab"] * 67) + "/c", id="many-segments-too-long"),
]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_check_name_accepts(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_check_name_rejects(name: str) -> None:
    with pytest.raises(InvalidName) as info:
        check_name(name)
    assert info.value.value == name
    assert str(info.value).startswith(f"invalid prompt name {name!r}: ")
    assert "[a-z0-9._-]" in str(info.value)


def test_check_name_rule_names_the_fix() -> None:
    with pytest.raises(InvalidName) as info:
        check_name("ui")
    message = str(info.value)
    assert "none ending in '.git' or '.lock'" in message
    assert "git, stages, ui, versions" in message


def test_check_name_over_long_says_the_limit() -> None:
    name = "a/" * 100 + "b"
    assert len(name) == MAX_NAME + 1
    with pytest.raises(InvalidName, match=r"1 to 200 characters"):
        check_name(name)


def test_invalid_name_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        check_name("..")


# A property: whatever check_name accepts is a path that stays inside the store.
_candidate = st.one_of(
    st.text(alphabet="ab9._-/\\ G\x00é", max_size=40),
    st.lists(
        st.one_of(
            st.from_regex(r"[a-z0-9][a-z0-9._-]{0,15}", fullmatch=True),
            st.sampled_from(["..", ".", "", "x.git", "y.lock", ".git", "git", "a.git.", "ui"]),
        ),
        min_size=1,
        max_size=8,
    ).map("/".join),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=_candidate)
@example(name="..")
@example(name="a/../..")
@example(name="a..b/c..")
@example(name="x.git")
def test_accepted_names_stay_inside_the_store(name: str) -> None:
    base = os.path.realpath("/srv/promptgit-store")
    try:
        check_name(name)
    except InvalidName:
        return
    segments = name.split("/")
    assert not any(s.endswith(".git") for s in segments)
    assert all(s not in ("", ".", "..") for s in segments)
    for relative in (name, name + ".git"):  # the collection folders and the bare repo itself
        resolved = os.path.realpath(os.path.join(base, relative))
        assert os.path.commonpath([base, resolved]) == base
        assert resolved != base
        assert resolved == os.path.join(base, *relative.split("/"))
    repo_segments = (name + ".git").split("/")
    assert [s for s in repo_segments if s.endswith(".git")] == [repo_segments[-1]]


# --- Version ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v2.3", Version(2, 3)),
        ("2.3", Version(2, 3)),
        ("v1.0", Version(1, 0)),
        ("v0.0", Version(0, 0)),
        ("v0.1", Version(0, 1)),
        ("v10.20", Version(10, 20)),
        ("v999999.999999", Version(999999, 999999)),
        (" v2.3 ", Version(2, 3)),
        ("v2.3\n", Version(2, 3)),
    ],
)
def test_version_parse_accepts(text: str, expected: Version) -> None:
    assert Version.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v",
        "v1",
        "1",
        "v1.",
        "v.1",
        "v1.0.0",
        "v01.0",
        "v1.00",
        "v1.01",
        "00.1",
        "V1.0",
        "vv1.0",
        "v-1.0",
        "v1.-1",
        "v+1.0",
        "v1,0",
        "v1 .0",
        "v 1.0",
        "v1.0a",
        "latest",
        "prod",
        "v1000000.0",
        "v1.1000000",
        "v\u0663.\u0660",
        "v\uff11.\uff10",
    ],
)
def test_version_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidName) as info:
        Version.parse(text)
    assert str(info.value) == (f"invalid version {text!r}: write it as vMAJOR.MINOR, e.g. v1.0 or v2.3")


def test_version_str_branch_and_tag() -> None:
    v = Version.parse("2.3")
    assert str(v) == "v2.3"
    assert v.branch == "refs/heads/v2.3"
    assert v.tag == "refs/tags/v2.3"
    assert Version(1, 0) == FIRST
    assert str(FIRST) == "v1.0"


def test_version_orders_numerically() -> None:
    assert Version.parse("v1.10") > Version.parse("v1.9")
    assert Version.parse("v2.0") > Version.parse("v1.99")
    assert Version.parse("v10.0") > Version.parse("v9.9")
    texts = ["v1.10", "v1.9", "v10.0", "v2.0", "v1.2", "v1.0"]
    assert [str(v) for v in sorted(Version.parse(t) for t in texts)] == [
        "v1.0",
        "v1.2",
        "v1.9",
        "v1.10",
        "v2.0",
        "v10.0",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v1.0", Version(1, 0)),
        ("v12.34", Version(12, 34)),
        ("1.0", None),  # a ref name needs the v
        ("v01.0", None),
        ("v1.0.0", None),
        (" v1.0", None),
        ("dev", None),
    ],
)
def test_version_maybe(text: str, expected: Version | None) -> None:
    assert Version.maybe(text) == expected


# --- RefSpec ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("dev", "stage", "dev"),
        ("tst", "stage", "tst"),
        ("prod", "stage", "prod"),
        (" prod ", "stage", "prod"),
        ("v2.3", "version", "v2.3"),
        ("2.3", "version", "v2.3"),
        ("v1.10", "version", "v1.10"),
        ("abcdef0", "revision", "abcdef0"),
        ("1234567", "revision", "1234567"),
        ("deadbeef", "revision", "deadbeef"),
        (SHA, "revision", SHA),
        (SHA[:39], "revision", SHA[:39]),
    ],
)
def test_refspec_parse(text: str, kind: str, value: str) -> None:
    spec = RefSpec.parse(text)
    assert (spec.kind, spec.value) == (kind, value)
    assert str(spec) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "DEV",  # a name must not pass for a stage, a number or a sha
        "Prod",
        SHA + "0",
        "ABCDEF0",
        "v01.0",
        "v1",
        "v1.0.0",
        "a/b",
        "x" * 81,
        "two\nlines",
    ],
)
def test_refspec_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidName) as info:
        RefSpec.parse(text)
    assert str(info.value) == (
        f"invalid ref {text.strip()!r}: use a stage (dev, tst, prod), a version (v2.3), "
        "a version's name, a review branch (review/BRANCH) or a revision sha (7+ hex digits)"
    )


@pytest.mark.parametrize(
    "text", ["staging", "main", "HEAD", "abcdef", "abcdefg", "dev~1", "warmer tone", "Prod tone", "x" * 80]
)
def test_refspec_parse_takes_anything_else_as_a_version_name(text: str) -> None:
    assert RefSpec.parse(text) == RefSpec("name", text)


# --- split_target -----------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "name", "kind", "value"),
    [
        ("greeting@v1.0", "greeting", "version", "v1.0"),
        ("greeting@1.0", "greeting", "version", "v1.0"),
        ("greeting@prod", "greeting", "stage", "prod"),
        ("support/greeting@tst", "support/greeting", "stage", "tst"),
        ("greeting@abcdef0", "greeting", "revision", "abcdef0"),
    ],
)
def test_split_target_with_ref(target: str, name: str, kind: str, value: str) -> None:
    got_name, spec = split_target(target)
    assert got_name == name
    assert spec is not None
    assert (spec.kind, spec.value) == (kind, value)


def test_split_target_without_ref() -> None:
    assert split_target("support/greeting") == ("support/greeting", None)


def test_split_target_empty_ref() -> None:
    with pytest.raises(InvalidName) as info:
        split_target("greeting@")
    assert str(info.value) == ("invalid ref 'greeting@': write NAME@REF, e.g. greeting@v1.0 or greeting@prod")


@pytest.mark.parametrize(
    ("target", "bad"),
    [
        ("Greeting@v1.0", "Greeting"),
        ("../x@v1.0", "../x"),
        ("@v1.0", ""),
        ("greeting.git@prod", "greeting.git"),
        ("ui", "ui"),
    ],
)
def test_split_target_bad_name(target: str, bad: str) -> None:
    with pytest.raises(InvalidName, match=r"^invalid prompt name ") as info:
        split_target(target)
    assert info.value.value == bad


@pytest.mark.parametrize("target", ["greeting@v1.0@x", "greeting@v1.0.0", "greeting@ "])
def test_split_target_bad_ref(target: str) -> None:
    with pytest.raises(InvalidName, match=r"^invalid ref "):
        split_target(target)


def test_check_stage() -> None:
    for stage in STAGES:
        assert check_stage(stage) == stage
    with pytest.raises(InvalidName) as info:
        check_stage("PROD")
    assert str(info.value) == "invalid stage 'PROD': use one of dev, tst, prod"


# --- classify_ref -------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("refs/heads/dev", ("stage", "dev")),
        ("refs/heads/tst", ("stage", "tst")),
        ("refs/heads/prod", ("stage", "prod")),
        ("refs/heads/v1.0", ("draft", Version(1, 0))),
        ("refs/heads/v2.10", ("draft", Version(2, 10))),
        ("refs/tags/v1.0", ("tag", Version(1, 0))),
        ("refs/tags/v0.3", ("tag", Version(0, 3))),
        ("refs/notes/commits", ("notes", "refs/notes/commits")),
        ("refs/notes/review", ("notes", "refs/notes/review")),
        (NOTES_TESTS_REF, ("tests", NOTES_TESTS_REF)),
        ("refs/tags/dev", ("other", "refs/tags/dev")),
        ("refs/tags/tst", ("other", "refs/tags/tst")),
        ("refs/tags/prod", ("other", "refs/tags/prod")),
        ("refs/heads/v01.2", ("other", "refs/heads/v01.2")),
        ("refs/heads/v1.02", ("other", "refs/heads/v1.02")),
        ("refs/heads/1.2", ("other", "refs/heads/1.2")),
        ("refs/heads/v1.2.3", ("other", "refs/heads/v1.2.3")),
        ("refs/heads/v1.2/x", ("other", "refs/heads/v1.2/x")),
        ("refs/tags/1.0", ("other", "refs/tags/1.0")),
        ("refs/tags/v1", ("other", "refs/tags/v1")),
        ("refs/heads/main", ("other", "refs/heads/main")),
        ("refs/heads/master", ("other", "refs/heads/master")),
        ("refs/heads/DEV", ("other", "refs/heads/DEV")),
        ("refs/heads/dev/x", ("other", "refs/heads/dev/x")),
        ("refs/remotes/origin/dev", ("other", "refs/remotes/origin/dev")),
        ("refs/remotes/origin/v1.0", ("other", "refs/remotes/origin/v1.0")),
        ("refs/pull/1/head", ("other", "refs/pull/1/head")),
        ("refs/stash", ("other", "refs/stash")),
        ("HEAD", ("other", "HEAD")),
        ("dev", ("other", "dev")),
        ("v1.0", ("other", "v1.0")),
    ],
)
def test_classify_ref(ref: str, expected: tuple[str, object]) -> None:
    assert classify_ref(ref) == expected


# --- trailers and the messages promptgit writes -------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Edit the greeting\n", {}),
        ("", {}),
        (
            "Promote v1.0 to tst\n\nPromptgit-Action: promote\nPromptgit-Version: v1.0\n",
            {"Promptgit-Action": "promote", "Promptgit-Version": "v1.0"},
        ),
        ("x\n\nPromptgit-Action:   create   \n", {"Promptgit-Action": "create"}),
        ("x\n\nPromptgit-Action:create", {"Promptgit-Action": "create"}),
        ("x\n\nPromptgit-Created: v2.4\nPromptgit-Created: v9.9\n", {"Promptgit-Created": "v2.4"}),
        ("x\n\nSigned-off-by: Ada <ada@example.com>\n", {}),
        ("x\n\n  Promptgit-Action: create\n", {}),  # indented: not a trailer
        ("x\n\nPromptgit-Action create\n", {}),
        ("x\n\nPromptgit-: create\n", {}),
        ("x\n\nNot-Promptgit-Action: create\n", {}),
        ("x\n\nPromptgit-Action: \n", {}),  # an empty value: not a trailer line, so no trailer block
    ],
)
def test_trailers(message: str, expected: dict[str, str]) -> None:
    assert trailers(message) == expected


def test_summary() -> None:
    assert summary("  Fix the greeting  \n\nbody\n") == "Fix the greeting"
    assert summary("") == ""


@pytest.mark.parametrize(
    ("action", "stage", "verb"),
    [
        ("create", "dev", "Create v2.4 on dev"),
        ("promote", "tst", "Promote v2.4 to tst"),
        ("promote", "prod", "Promote v2.4 to prod"),
        ("update", "tst", "Update tst to the new tip of v2.4"),
        ("rollback", "prod", "Roll prod back to v2.4"),
    ],
)
@pytest.mark.parametrize("note", ["", "Tighten the tone", "two lines\nof note"])
def test_deployment_message_round_trip(action: str, stage: str, verb: str, note: str) -> None:
    message = deployment_message(action, stage, Version(2, 4), SHA, note)
    assert summary(message) == verb
    assert trailers(message) == {
        "Promptgit-Action": action,
        "Promptgit-Version": "v2.4",
        "Promptgit-Revision": SHA,
    }
    assert message.endswith(
        f"\n\nPromptgit-Action: {action}\nPromptgit-Version: v2.4\nPromptgit-Revision: {SHA}\n"
    )
    if note:
        assert f"{verb}\n\n{note}\n\n" in message


def test_every_action_has_a_deployment_message() -> None:
    for action in sorted(ACTIONS):
        assert trailers(deployment_message(action, "dev", FIRST, SHA, ""))["Promptgit-Action"] == action
    with pytest.raises(KeyError):
        deployment_message("delete", "dev", FIRST, SHA, "")


@pytest.mark.parametrize(
    ("version", "source", "line", "head", "expected"),
    [
        (FIRST, None, "", "Create v1.0", {"Promptgit-Created": "v1.0"}),
        (FIRST, None, "first draft", "first draft", {"Promptgit-Created": "v1.0"}),
        (
            Version(2, 4),
            Version(2, 3),
            "",
            "Create v2.4 from v2.3",
            {"Promptgit-Created": "v2.4", "Promptgit-From": "v2.3"},
        ),
        (
            Version(3, 0),
            Version(2, 3),
            "Start the formal tone",
            "Start the formal tone",
            {"Promptgit-Created": "v3.0", "Promptgit-From": "v2.3"},
        ),
    ],
)
def test_creation_message_round_trip(
    version: Version, source: Version | None, line: str, head: str, expected: dict[str, str]
) -> None:
    message = creation_message(
        version, source, line, "warmer tone", "Why: customers asked.\n\nSecond paragraph."
    )
    assert summary(message) == head
    assert trailers(message) == {**expected, "Promptgit-Name": "warmer tone"}
    assert Version.maybe(trailers(message)["Promptgit-Created"]) == version
    assert description_of(message) == "Why: customers asked.\n\nSecond paragraph."
    assert description_of(creation_message(version, source, line, "n")) == ""


def test_deployment_note_cannot_forge_trailers() -> None:
    message = deployment_message("update", "dev", Version(1, 2), SHA, "Promptgit-Version: v9.9")
    assert trailers(message)["Promptgit-Version"] == "v1.2"


def test_creation_summary_cannot_forge_trailers() -> None:
    message = creation_message(Version(1, 1), FIRST, "Promptgit-Created: v7.0", "n", "Promptgit-Name: forged")
    assert trailers(message) == {"Promptgit-Created": "v1.1", "Promptgit-From": "v1.0", "Promptgit-Name": "n"}
