"""The grammar of prompt names, versions, refs and promptgit's commit trailers.

Everything that builds or parses one of these names lives here, so the CLI,
the library and the hooks can never disagree about what `v2.3` or `prod` means.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from typing import Literal, get_args

from .errors import InvalidInput, InvalidName

Stage = Literal["dev", "tst", "prod"]
STAGES: tuple[str, ...] = get_args(Stage)  # in order: a version moves dev -> tst -> prod
PromotionStage = Literal["tst", "prod"]
PROMOTION_STAGES: tuple[str, ...] = get_args(PromotionStage)  # the stages a version is promoted into
Role = Literal["reader", "editor", "releaser", "admin"]
ROLES: tuple[str, ...] = get_args(Role)  # access roles, each allowing what the ones before do
STAGE_REFS = {f"refs/heads/{s}": s for s in STAGES}
RESERVED = frozenset({"versions", "stages", "actions", "git", "ui"})  # would shadow HTTP routes
ACTIONS = frozenset({"create", "promote", "update", "rollback"})
NOTES_TESTS_REF = "refs/notes/promptgit-tests"
NOTES_APPROVALS_REF = "refs/notes/promptgit-approvals"  # who approved which revision, and when
REVIEW = "refs/heads/review/"  # review branches: proposals on a draft, never served, never numbered
RECORDS = "refs/promptgit/"  # logs only promptgit writes: never pushed, never forged
AUDIT_REF = RECORDS + "audit"  # who really changed which refs, and when
EVENTS_REF = RECORDS + "events"  # a prompt's events: deprecations (who, when, why)
LIFECYCLE_REF = RECORDS + "lifecycle"  # a prompt's archive, restore and rename events
CONFIG_FILE = "promptgit.yaml"  # the store's settings, in its top folder: what makes a folder a store
ARCHIVE = "_archive"  # <store>/_archive/NAME.git: archived prompts, out of every listing
MAX_NAME = 200

_SEGMENT = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_VERSION = re.compile(r"v?(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})")
_SHA = re.compile(r"[0-9a-f]{7,40}")
_NUMBERISH = re.compile(r"v?[0-9]+(\.[0-9]+)*")  # v1, 1.2, v1.0.0: a name must not pass for a number
_HEXISH = re.compile(r"[0-9a-f]{7,}")
_ANY_TRAILER = re.compile(r"^[A-Za-z0-9-]+:[ \t]*\S")
_TRAILER = re.compile(r"^(Promptgit-[A-Za-z]+): *(.*?) *$", re.MULTILINE)

NAME_RULE = (
    "use lower-case segments of [a-z0-9._-] joined by '/', each starting with a "
    "letter or digit, none ending in '.git' or '.lock', none of " + ", ".join(sorted(RESERVED))
)


def check_name(name: str) -> str:
    """Return `name` if it is a safe prompt name, else raise InvalidName.

    Checked before any file is touched: a valid name is a relative path that
    cannot escape the store or shadow an HTTP route.
    """
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise InvalidName("prompt name", str(name), f"1 to {MAX_NAME} characters; {NAME_RULE}")
    if not all(_segment_ok(segment) for segment in name.split("/")):
        raise InvalidName("prompt name", name, NAME_RULE)
    return name


def _segment_ok(segment: str) -> bool:
    """Whether `segment` may be one part of a prompt name (NAME_RULE)."""
    return (
        bool(_SEGMENT.fullmatch(segment))
        and segment not in RESERVED
        and not segment.endswith((".git", ".lock"))
    )


_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def check_token_name(name: str) -> str:
    """A token's name: who the server records as the actor, so one short word."""
    if not isinstance(name, str) or not _TOKEN_NAME.fullmatch(name):
        raise InvalidName(
            "token name",
            str(name),
            "use 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
        )
    return name


@dataclass(frozen=True, order=True)
class Version:
    """`vMAJOR.MINOR`; orders numerically (v1.10 after v1.9)."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}"

    @property
    def branch(self) -> str:
        return f"refs/heads/{self}"

    @property
    def tag(self) -> str:
        return f"refs/tags/{self}"

    @classmethod
    def parse(cls, text: str) -> Version:
        """Accept `v2.3` or `2.3`; no leading zeros, so each number has one spelling."""
        m = _VERSION.fullmatch(text.strip()) if isinstance(text, str) else None
        if not m:
            raise InvalidName("version", str(text), "write it as vMAJOR.MINOR, e.g. v1.0 or v2.3")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def maybe(cls, text: str) -> Version | None:
        """The version a ref's leaf spells (`v2.3`, no bare `2.3`), else None."""
        return _version_named(text)


@functools.lru_cache(maxsize=8192)  # every listing parses every version ref's name
def _version_named(text: str) -> Version | None:
    m = _VERSION.fullmatch(text)
    return Version(int(m.group(1)), int(m.group(2))) if m and text.startswith("v") else None


FIRST = Version(1, 0)

RefKind = Literal["stage", "version", "revision", "name", "review"]
MAX_REVIEW = 200
_REVIEW_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
REVIEW_RULE = (
    "a review branch is review/BRANCH, BRANCH being segments of letters, digits, '.', '_' and '-' "
    "joined by '/', each starting with a letter or digit, none ending in '.' or '.lock', no '..' "
    f"(at most {MAX_REVIEW} characters)"
)


def check_review(branch: str) -> str:
    """BRANCH of `review/BRANCH` (any depth), or InvalidName: the names git and a URL
    take without quoting."""
    segments = branch.split("/") if isinstance(branch, str) else [""]
    if (
        len(branch) > MAX_REVIEW
        or ".." in branch
        or not all(_REVIEW_SEGMENT.fullmatch(s) and not s.endswith((".lock", ".")) for s in segments)
    ):
        raise InvalidName("review branch", f"review/{branch}", REVIEW_RULE)
    return branch


def review_ref(branch: str) -> str:
    """The ref of review branch BRANCH: refs/heads/review/BRANCH."""
    return REVIEW + check_review(branch)


@dataclass(frozen=True)
class RefSpec:
    """What a user wrote after `NAME@`: a stage, a version, a revision sha, a review
    branch (`review/BRANCH`, value BRANCH), or a version's name (anything else that is
    one line; looked up, ignoring case)."""

    kind: RefKind
    value: str

    def __str__(self) -> str:
        return f"review/{self.value}" if self.kind == "review" else self.value

    @classmethod
    def parse(cls, text: str) -> RefSpec:
        text = text.strip()
        if text.startswith("review/"):
            return cls("review", check_review(text.removeprefix("review/")))
        if text in STAGES:
            return cls("stage", text)
        if _VERSION.fullmatch(text):
            return cls("version", str(Version.parse(text)))
        if _SHA.fullmatch(text):
            return cls("revision", text)
        try:
            return cls("name", check_version_name(text))
        except InvalidName:
            raise InvalidName(
                "ref",
                text,
                "use a stage (dev, tst, prod), a version (v2.3), a version's name, a review "
                "branch (review/BRANCH) or a revision sha (7+ hex digits)",
            ) from None


def split_target(target: str) -> tuple[str, RefSpec | None]:
    """`greeting@v1.0` -> ('greeting', version v1.0); `greeting` -> ('greeting', None)."""
    name, sep, ref = target.partition("@")
    check_name(name)
    if sep and not ref:
        raise InvalidName("ref", target, "write NAME@REF, e.g. greeting@v1.0 or greeting@prod")
    return name, (RefSpec.parse(ref) if sep else None)


def check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise InvalidName("stage", stage, "use one of dev, tst, prod")
    return stage


# What a ref is, for the policy: stage, draft branch, review branch, release tag, note,
# promptgit's own notes (test runs, approvals) and records, or foreign.
RefClass = Literal["stage", "draft", "review", "tag", "notes", "tests", "approvals", "record", "other"]


def classify_ref(ref: str) -> tuple[RefClass, str | Version]:
    if ref in STAGE_REFS:
        return "stage", STAGE_REFS[ref]
    if ref.startswith(REVIEW):
        return "review", ref.removeprefix(REVIEW)  # checked by the policy, which names the rule
    for prefix, kind in (("refs/heads/", "draft"), ("refs/tags/", "tag")):
        if ref.startswith(prefix):
            version = Version.maybe(ref[len(prefix) :])
            if version is not None and str(version) == ref[len(prefix) :]:
                return kind, version  # type: ignore[return-value]
            return "other", ref
    if ref == NOTES_TESTS_REF:
        return "tests", ref
    if ref == NOTES_APPROVALS_REF:
        return "approvals", ref
    if ref.startswith(RECORDS):
        return "record", ref
    if ref.startswith("refs/notes/") and not ref.startswith((NOTES_TESTS_REF, NOTES_APPROVALS_REF)):
        return "notes", ref
    return "other", ref


# --- commit trailers -------------------------------------------------------


def trailers(message: str) -> dict[str, str]:
    """The `Promptgit-*` trailers of a commit message: only its last paragraph counts,
    as for git, so a summary or note line can never pose as a trailer."""
    last = message.strip().rsplit("\n\n", 1)[-1]
    if not all(_ANY_TRAILER.match(line) for line in last.splitlines()):
        return {}  # not a trailer block: git would not read it as one either
    found: dict[str, str] = {}
    for key, value in _TRAILER.findall(last):
        found.setdefault(key, value)
    return found


def audit_message(summary_line: str, updates: list[tuple[str, str | None, str | None]], via: str) -> str:
    """An audit entry: which refs changed (`REF OLD NEW`, absent as 40 zeros), and how."""
    zero = "0" * 40
    lines = [f"{ref} {old or zero} {new or zero}" for ref, old, new in updates]
    return f"{summary_line}\n\n" + "\n".join(lines) + f"\n\nPromptgit-Via: {via}\n"


def summary(message: str) -> str:
    return message.split("\n", 1)[0].strip()


def deployment_message(action: str, stage: str, version: Version, revision: str, note: str) -> str:
    verb = {
        "create": f"Create {version} on {stage}",
        "promote": f"Promote {version} to {stage}",
        "update": f"Update {stage} to the new tip of {version}",
        "rollback": f"Roll {stage} back to {version}",
    }[action]
    body = f"\n\n{note}" if note else ""
    return (
        f"{verb}{body}\n\n"
        f"Promptgit-Action: {action}\n"
        f"Promptgit-Version: {version}\n"
        f"Promptgit-Revision: {revision}\n"
    )


def creation_message(
    version: Version, source: Version | None, summary_line: str, name: str, description: str = ""
) -> str:
    """A version's creation commit: its summary, its description (the body), and the
    trailers that name it. Like any commit message, fixed once written."""
    head = summary_line or (f"Create {version} from {source}" if source else f"Create {version}")
    lines = [f"Promptgit-Created: {version}"]
    if source is not None:
        lines.append(f"Promptgit-From: {source}")
    lines.append(f"Promptgit-Name: {name}")
    body = f"{description.strip()}\n\n" if description.strip() else ""
    return head + "\n\n" + body + "\n".join(lines) + "\n"


CREATION_TRAILERS = frozenset({"Promptgit-Created", "Promptgit-From", "Promptgit-Name"})
MAX_VERSION_NAME = 80
VERSION_NAME_RULE = (
    f"a version's name is one line of 1 to {MAX_VERSION_NAME} characters, without '/' or '@', that does "
    "not look like a version number (v1.2), a stage (dev, tst, prod) or a revision (7 to 40 hex digits)"
)


def check_version_name(name: str) -> str:
    """A version's free-text name: unambiguous as a REF, and one line."""
    if (
        not isinstance(name, str)
        or not name.strip()
        or name != name.strip()
        or len(name) > MAX_VERSION_NAME
        or "/" in name
        or "@" in name
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
        or name.lower() in STAGES
        or _NUMBERISH.fullmatch(name.lower())
        or _HEXISH.fullmatch(name.lower())
    ):
        raise InvalidName("version name", str(name), VERSION_NAME_RULE)
    return name


def description_of(message: str) -> str:
    """A creation commit's description: the paragraphs between its summary and its trailers."""
    paragraphs = message.strip().split("\n\n")
    return "\n\n".join(paragraphs[1:-1]).strip() if len(paragraphs) > 2 else ""


def event_message(event: str, version: Version, reason: str) -> str:
    """An entry of the events log (EVENTS_REF): what happened to which version, and why."""
    body = f"{reason.strip()}\n\n" if reason.strip() else ""
    return f"{event.capitalize()} {version}\n\n{body}Promptgit-Event: {event}\nPromptgit-Version: {version}\n"


MAX_REASON = 500


def reason(text: str, what: str = "reason") -> str:
    """A reason given for an event (deprecate, archive), or an approval's comment: one
    line, at most MAX_REASON characters, so every listing that shows it stays a listing."""
    line = " ".join((text or "").split())
    if len(line) > MAX_REASON:
        raise InvalidInput(f"the {what} is {len(line)} characters long: keep it under {MAX_REASON}")
    return line


MAX_DESCRIPTION = 2000


def check_description(text: str) -> str:
    """A version's description: free text, at most MAX_DESCRIPTION characters."""
    if len(text) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"the description is {len(text):,} characters long: keep it under {MAX_DESCRIPTION:,} "
            "(say the rest in the prompt's tests or its repository)"
        )
    return text


def store_names(store: str, strays: list[str] | None = None) -> list[str]:
    """Every prompt in a store's folder, collections as `folder/name`, in name order:
    each `NAME.git` folder, in folders entered unless they are links or their names
    start with `.` (the store's own files) or `_` (the archive).

    A `.git` folder whose path is no valid prompt name (made by hand: `Upper.git`, a
    name over MAX_NAME) is no prompt: it is left out, and its path relative to the
    store added to `strays` if given (`promptgit doctor` names them)."""
    found: list[str] = []
    todo = [(store, "", True)]  # a stack, not recursion: any depth of folders made by hand
    while todo:
        folder, prefix, valid = todo.pop()
        with os.scandir(folder) as entries:
            dirs = [(e.name, e.is_symlink()) for e in entries if e.is_dir()]
        for name, link in dirs:
            if name.startswith((".", "_")):
                continue
            if name.endswith(".git"):
                ok = valid and _segment_ok(name[:-4]) and len(prefix) + len(name) - 4 <= MAX_NAME
                if ok:
                    found.append(prefix + name[:-4])
                elif strays is not None:
                    strays.append(prefix + name)
            elif not link:  # as os.walk: a linked folder is listed, not entered
                inside = valid and _segment_ok(name) and len(prefix) + len(name) + 2 <= MAX_NAME
                if inside or strays is not None:  # else nothing in it can be a prompt
                    todo.append((os.path.join(folder, name), f"{prefix}{name}/", inside))
    if strays is not None:
        strays.sort()
    return sorted(found)
